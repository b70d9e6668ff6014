//! Mounting an overlay with many lower layers.
//!
//! Two ways, tried in order:
//! 1. The new mount API (`fsopen`/`fsconfig`/`fsmount`/`move_mount`) with one
//!    `lowerdir+` parameter per layer (Linux ≥ 6.8): absolute paths, no limit
//!    on the total length, no working-directory games.
//! 2. `mount(2)` with relative short-link lowerdirs, made by a forked child
//!    that changes into the layers directory (the caller's cwd is shared by
//!    all its threads and must not change). Limited to one page of options.
//!
//! The new mount API is called through `libc::syscall`: nix has no bindings
//! for it, and rustix's would bring a second syscall crate for four calls.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;

/// Why the new mount API could not be used.
pub(crate) enum NewApiError {
    /// Kernel without `fsopen` or without overlay's `lowerdir+`: use mount(2).
    Unsupported,
    Failed(io::Error),
}

fn cstr(p: &[u8]) -> io::Result<CString> {
    CString::new(p).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// Mounts overlay at `target` with the new mount API.
pub(crate) fn mount_new_api(
    lowers: &[&Path],
    upper: &Path,
    work: &Path,
    target: &Path,
    volatile: bool,
) -> Result<(), NewApiError> {
    let fail = NewApiError::Failed;
    let c_target = cstr(target.as_os_str().as_bytes()).map_err(fail)?;
    // SAFETY: fsopen with a NUL-terminated file system name; the result is
    // checked before being wrapped into an owned descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_fsopen, c"overlay".as_ptr(), FSOPEN_CLOEXEC) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::ENOSYS | libc::EPERM) => NewApiError::Unsupported,
            _ => NewApiError::Failed(e),
        });
    }
    // SAFETY: fd is a fresh descriptor returned by fsopen and owned by nobody else.
    let fs = unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) };
    set_string(&fs, c"source", b"overlay").map_err(fail)?;
    for (i, l) in lowers.iter().enumerate() {
        if let Err(e) = set_string(&fs, c"lowerdir+", l.as_os_str().as_bytes()) {
            // Kernels before 6.8 reject the parameter itself.
            if i == 0 && e.raw_os_error() == Some(libc::EINVAL) {
                return Err(NewApiError::Unsupported);
            }
            return Err(fail(e));
        }
    }
    set_string(&fs, c"upperdir", upper.as_os_str().as_bytes()).map_err(fail)?;
    set_string(&fs, c"workdir", work.as_os_str().as_bytes()).map_err(fail)?;
    if volatile {
        set_flag(&fs, c"volatile").map_err(fail)?;
    }
    // SAFETY: FSCONFIG_CMD_CREATE takes no key or value; fs is a valid fs context.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    if rc < 0 {
        return Err(fail(with_fs_log(&fs, io::Error::last_os_error())));
    }
    // SAFETY: fsmount on a created context; the result is checked.
    let mfd = unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, 0) };
    if mfd < 0 {
        return Err(fail(with_fs_log(&fs, io::Error::last_os_error())));
    }
    // SAFETY: mfd is a fresh mount descriptor returned by fsmount.
    let mnt = unsafe { OwnedFd::from_raw_fd(mfd as libc::c_int) };
    // SAFETY: move_mount of a detached mount descriptor (empty path) onto
    // target, an absolute NUL-terminated path.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mnt.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            c_target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if rc < 0 {
        return Err(fail(io::Error::last_os_error()));
    }
    Ok(())
}

fn set_flag(fs: &OwnedFd, key: &std::ffi::CStr) -> io::Result<()> {
    // SAFETY: key is a NUL-terminated string alive for the call; a flag
    // takes no value; fs is a valid fs context descriptor.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_SET_FLAG,
            key.as_ptr(),
            std::ptr::null::<libc::c_char>(),
            0,
        )
    };
    if rc < 0 {
        return Err(with_fs_log(fs, io::Error::last_os_error()));
    }
    Ok(())
}

fn set_string(fs: &OwnedFd, key: &std::ffi::CStr, value: &[u8]) -> io::Result<()> {
    let value = cstr(value)?;
    // SAFETY: key and value are NUL-terminated strings alive for the call; fs
    // is a valid fs context descriptor.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_SET_STRING,
            key.as_ptr(),
            value.as_ptr(),
            0,
        )
    };
    if rc < 0 {
        return Err(with_fs_log(fs, io::Error::last_os_error()));
    }
    Ok(())
}

/// Appends the file system's own message (read from the context) to `e`.
fn with_fs_log(fs: &OwnedFd, e: io::Error) -> io::Error {
    let mut buf = [0u8; 512];
    // SAFETY: reading into a valid buffer of buf.len() bytes from a valid fd.
    let n = unsafe { libc::read(fs.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if n <= 0 {
        return e;
    }
    let msg = String::from_utf8_lossy(&buf[..n as usize])
        .trim()
        .to_string();
    io::Error::new(e.kind(), format!("{e} ({msg})"))
}

/// Mounts overlay at `target` (absolute) with `mount(2)`, from a forked child
/// whose cwd is `cwd`, so that relative lowerdirs in `data` resolve there.
pub(crate) fn mount_in_dir(cwd: &Path, target: &Path, data: &str) -> io::Result<()> {
    let c_target = cstr(target.as_os_str().as_bytes())?;
    let c_dir = cstr(cwd.as_os_str().as_bytes())?;
    let c_data = cstr(data.as_bytes())?;
    let c_overlay = c"overlay";
    // SAFETY: the child only makes async-signal-safe syscalls (chdir, mount,
    // _exit) on memory prepared before the fork, so forking a multi-threaded
    // process is sound.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: see above; all pointers are valid NUL-terminated strings.
        unsafe {
            if libc::chdir(c_dir.as_ptr()) != 0 {
                libc::_exit(*libc::__errno_location());
            }
            let rc = libc::mount(
                c_overlay.as_ptr(),
                c_target.as_ptr(),
                c_overlay.as_ptr(),
                0,
                c_data.as_ptr().cast(),
            );
            libc::_exit(if rc == 0 {
                0
            } else {
                *libc::__errno_location()
            });
        }
    }
    let status = loop {
        let mut status = 0;
        // SAFETY: waiting for the child just forked; status is a valid out pointer.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc == pid {
            break status;
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    };
    match (libc::WIFEXITED(status), libc::WEXITSTATUS(status)) {
        (true, 0) => Ok(()),
        (true, errno) => Err(io::Error::from_raw_os_error(errno)),
        _ => Err(io::Error::other("mount helper process died")),
    }
}
