//! CVE-2019-5736 defence: processes that enter a container never run from
//! a writable view of the host's runtime binary, so `/proc/<pid>/exe` of
//! any runtime process a container can see cannot be opened for writing.
//!
//! Two ways, cheapest first (runc 1.2 does the same):
//! 1. a detached, read-only bind mount of the binary (`open_tree` +
//!    `mount_setattr(MOUNT_ATTR_RDONLY)`): two syscalls, no copy. The mount
//!    exists in no mount namespace, so nobody can remount it read-write by
//!    path, and every reopen through `/proc/<pid>/exe` or
//!    `/proc/self/fd/N` goes through that read-only mount (EROFS).
//! 2. where that is not possible (no CAP_SYS_ADMIN, pre-5.12 kernels): a
//!    sealed memfd copy (F_SEAL_SEAL|SHRINK|GROW|WRITE) made in the kernel
//!    with copy_file_range (sendfile as fallback).

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use crate::error::RuntimeError;

const SEALS: libc::c_int =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

fn memfd_create(flags: libc::c_uint) -> std::io::Result<OwnedFd> {
    // SAFETY: the name is a valid NUL-terminated string; memfd_create
    // returns a new fd or -1.
    let fd = unsafe { libc::memfd_create(c"berth-runtime".as_ptr(), flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the fd was just created and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// An executable fd for the runtime binary that cannot be written through:
/// a read-only detached bind mount, or else a sealed memfd copy.
pub fn sealed_self() -> Result<OwnedFd, RuntimeError> {
    match readonly_bind_of_self() {
        Ok(fd) => Ok(fd),
        Err(_) => sealed_self_copy(),
    }
}

fn readonly_bind_of_self() -> std::io::Result<OwnedFd> {
    const OPEN_TREE_CLONE: libc::c_uint = 1;
    const MOUNT_ATTR_RDONLY: u64 = 1;
    #[repr(C)]
    struct MountAttr {
        attr_set: u64,
        attr_clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    // SAFETY: open_tree with a valid NUL-terminated path and flags returns a
    // new fd or -1.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            c"/proc/self/exe".as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the fd was just created and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) };
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: mount_setattr reads the valid attr struct of the given size.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(fd)
}

/// A sealed, executable memfd holding a copy of `/proc/self/exe`.
pub fn sealed_self_copy() -> Result<OwnedFd, RuntimeError> {
    let exe = File::open("/proc/self/exe")
        .map_err(|e| RuntimeError::io("open /proc/self/exe for the sealed copy", e))?;
    let size = exe
        .metadata()
        .map_err(|e| RuntimeError::io("stat /proc/self/exe", e))?
        .len();

    // MFD_EXEC (Linux 6.3) keeps the copy executable where vm.memfd_noexec
    // would otherwise default new memfds to non-executable.
    const MFD_EXEC: libc::c_uint = 0x0010;
    let base = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    let memfd = match memfd_create(base | MFD_EXEC) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            memfd_create(base).map_err(|e| RuntimeError::io("memfd_create", e))?
        }
        Err(e) => return Err(RuntimeError::io("memfd_create", e)),
    };

    let mut remaining = size;
    let mut use_sendfile = false;
    while remaining > 0 {
        let chunk = usize::try_from(remaining)
            .unwrap_or(usize::MAX)
            .min(1 << 30);
        let n = if use_sendfile {
            // SAFETY: both fds are valid for the duration of the call; a
            // null offset means the input file's own offset is used.
            unsafe {
                libc::sendfile(
                    memfd.as_raw_fd(),
                    exe.as_raw_fd(),
                    std::ptr::null_mut(),
                    chunk,
                )
            }
        } else {
            // SAFETY: both fds are valid; null offsets use the files' own
            // offsets.
            unsafe {
                libc::copy_file_range(
                    exe.as_raw_fd(),
                    std::ptr::null_mut(),
                    memfd.as_raw_fd(),
                    std::ptr::null_mut(),
                    chunk,
                    0,
                )
            }
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if !use_sendfile
                && matches!(
                    e.raw_os_error(),
                    Some(libc::EXDEV | libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP)
                )
            {
                use_sendfile = true;
                continue;
            }
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(RuntimeError::io("copy /proc/self/exe into the memfd", e));
        }
        if n == 0 {
            return Err(RuntimeError::io(
                "copy /proc/self/exe into the memfd",
                std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "binary shrank"),
            ));
        }
        remaining -= n as u64;
    }
    // SAFETY: fcntl on a valid fd with an integer argument.
    if unsafe { libc::fcntl(memfd.as_fd().as_raw_fd(), libc::F_ADD_SEALS, SEALS) } < 0 {
        return Err(RuntimeError::io(
            "seal the memfd copy",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(memfd)
}
