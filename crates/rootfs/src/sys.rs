//! Thin wrappers over the mount syscalls, always acting on an fd that was
//! resolved inside the root (through `/proc/self/fd/N`), never on a path an
//! image could redirect.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use nix::sys::statvfs::{fstatvfs, FsFlags};

use crate::options::{RecursiveAttrs, ATIME_FLAGS};
use crate::resolve::fd_path;

/// Flags an unprivileged (user namespace) remount may not drop when the
/// mount it copies has them: the kernel "locks" them. runc's statfsToMountFlags.
pub(crate) const LOCKABLE_FLAGS: MsFlags = MsFlags::MS_RDONLY
    .union(MsFlags::MS_NOSUID)
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC)
    .union(ATIME_FLAGS);

/// mount(2) onto the inode `target` refers to.
pub(crate) fn mount_at(
    source: Option<&Path>,
    target: BorrowedFd<'_>,
    fs_type: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), Errno> {
    let data = data.filter(|d| !d.is_empty());
    mount(source, &fd_path(target), fs_type, flags, data)
}

/// The flags the mount `fd` is on has now, as mount(2) flags.
pub(crate) fn mount_flags(fd: BorrowedFd<'_>) -> Result<MsFlags, Errno> {
    let st = fstatvfs(fd)?;
    let f = st.flags();
    let mut flags = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(fs) {
            flags |= ms;
        }
    }
    Ok(flags)
}

/// Changes the per-mount flags of the bind mount `fd` is the root of
/// (MS_REMOUNT|MS_BIND: the filesystem itself is untouched).
///
/// Where the kernel refuses (EPERM: flags locked because the mount came from
/// a more privileged namespace), retries once keeping the locked flags of the
/// mount, and its atime mode unless the caller chose one: runc does the same.
pub(crate) fn remount_bind(
    fd: BorrowedFd<'_>,
    flags: MsFlags,
    atime_given: bool,
) -> Result<(), Errno> {
    remount_bind_path(&fd_path(fd), fd, flags, atime_given)
}

/// [`remount_bind`] through `target`, a path naming the mount `fd` is the root of.
pub(crate) fn remount_bind_path(
    target: &Path,
    fd: BorrowedFd<'_>,
    flags: MsFlags,
    atime_given: bool,
) -> Result<(), Errno> {
    let flags = (flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT))
        | MsFlags::MS_BIND
        | MsFlags::MS_REMOUNT;
    let remount = |flags: MsFlags| mount(None::<&str>, target, None::<&str>, flags, None::<&str>);
    match remount(flags) {
        Err(Errno::EPERM) => {
            let mut kept = mount_flags(fd)? & LOCKABLE_FLAGS;
            if atime_given {
                kept -= ATIME_FLAGS;
            }
            let flags = if atime_given {
                flags
            } else {
                flags - ATIME_FLAGS
            };
            remount(flags | kept)
        }
        other => other,
    }
}

/// mount_setattr(2) (Linux 5.12) on the mount `fd` is the root of, and with
/// `recursive` on every mount below it.
pub(crate) fn mount_setattr(
    fd: BorrowedFd<'_>,
    attrs: RecursiveAttrs,
    recursive: bool,
) -> Result<(), Errno> {
    let attr = libc::mount_attr {
        attr_set: attrs.set,
        attr_clr: attrs.clear,
        propagation: 0,
        userns_fd: 0,
    };
    let mut flags = libc::AT_EMPTY_PATH;
    if recursive {
        flags |= libc::AT_RECURSIVE;
    }
    // SAFETY: the path is a NUL-terminated empty string, `attr` is a valid
    // mount_attr that outlives the call, and its size is passed alongside.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    Errno::result(rc).map(drop)
}
