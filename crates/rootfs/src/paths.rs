//! Inside the new root: masked paths, read-only paths, the read-only root
//! and the root's propagation.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fstat, SFlag};

use crate::mounts::with_label;
use crate::options;
use crate::options::RecursiveAttrs;
use crate::resolve::{fd_path, open_beneath};
use crate::sys::{mount_flags, mount_setattr, remount_bind_path};
use crate::{RootfsError, RootfsOptions};

/// The path mount(2) should use for `fd`. After the root switch every lookup
/// is confined to the new root anyway; /proc/self/fd is still preferred (it
/// pins the inode), but a container without /proc falls back to the path.
fn target(fd: BorrowedFd<'_>, path: &Path) -> PathBuf {
    if Path::new("/proc/self/fd").is_dir() {
        fd_path(fd)
    } else {
        path.to_path_buf()
    }
}

fn open_root() -> Result<std::os::fd::OwnedFd, Errno> {
    nix::fcntl::open(
        "/",
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
}

/// Hides `path`: /dev/null over a file, an empty read-only tmpfs over a directory.
pub(crate) fn mask(path: &Path, opts: &RootfsOptions) -> Result<(), RootfsError> {
    let context = format!("linux.maskedPaths ({})", path.display());
    let root = open_root().map_err(|e| RootfsError::sys(&context, "open /", e))?;
    let fd = match open_beneath(root.as_fd(), path, None) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(RootfsError::sys(&context, "open", e)),
    };
    let kind = SFlag::from_bits_truncate(
        fstat(&fd)
            .map_err(|e| RootfsError::sys(&context, "stat", e))?
            .st_mode,
    ) & SFlag::S_IFMT;
    let target = target(fd.as_fd(), path);
    if kind == SFlag::S_IFDIR {
        let data = with_label("", opts.mount_label);
        mount(
            Some("tmpfs"),
            &target,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            (!data.is_empty()).then_some(data.as_str()),
        )
        .map_err(|e| RootfsError::sys(&context, "mount read-only tmpfs", e))
    } else {
        mount(
            Some("/dev/null"),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| RootfsError::sys(&context, "bind mount /dev/null", e))
    }
}

/// Makes `path` and everything mounted below it read-only, keeping the
/// nosuid/nodev/noexec of what is there (a plain remount would drop them).
pub(crate) fn make_readonly(path: &Path) -> Result<(), RootfsError> {
    let context = format!("linux.readonlyPaths ({})", path.display());
    let ctx = context.as_str();
    let sys = |op| move |e| RootfsError::sys(ctx, op, e);
    let root = open_root().map_err(sys("open /"))?;
    let fd = match open_beneath(root.as_fd(), path, None) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(sys("open")(e)),
    };
    let t = target(fd.as_fd(), path);
    mount(
        Some(&t),
        &t,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(sys("bind mount onto itself"))?;
    let fd = open_beneath(root.as_fd(), path, None).map_err(sys("open bind mount"))?;
    let kept = mount_flags(fd.as_fd()).map_err(sys("statvfs"))?;
    let t = target(fd.as_fd(), path);
    remount_bind_path(&t, fd.as_fd(), kept | MsFlags::MS_RDONLY, false)
        .map_err(sys("remount read-only"))?;
    // mounts below (binfmt_misc under /proc/sys) are covered too, where the kernel can
    let attrs = RecursiveAttrs {
        set: libc::MOUNT_ATTR_RDONLY,
        clear: 0,
    };
    match mount_setattr(fd.as_fd(), attrs, true) {
        Ok(()) | Err(Errno::ENOSYS) => Ok(()),
        Err(e) => Err(sys("mount_setattr rro")(e)),
    }
}

/// Remounts "/" read-only (spec.root.readonly), keeping its other flags.
pub(crate) fn readonly_root() -> Result<(), RootfsError> {
    let sys = |op| move |e| RootfsError::sys("root.readonly", op, e);
    let root = open_root().map_err(sys("open /"))?;
    let kept = mount_flags(root.as_fd()).map_err(sys("statvfs /"))?;
    remount_bind_path(
        Path::new("/"),
        root.as_fd(),
        kept | MsFlags::MS_RDONLY,
        false,
    )
    .map_err(sys("remount / read-only"))
}

/// Applies linux.rootfsPropagation to the new "/" (it was applied to the old one before the switch).
pub(crate) fn root_propagation(name: &str) -> Result<(), RootfsError> {
    let context = format!("linux.rootfsPropagation ({name})");
    let flag = options::propagation(name)
        .ok_or_else(|| RootfsError::invalid(&context, "not a propagation mode"))?;
    mount(None::<&str>, "/", None::<&str>, flag, None::<&str>)
        .map_err(|e| RootfsError::sys(&context, "mount", e))
}

/// Remounts the /dev tmpfs read-only once the devices are in it (runc does the same).
pub(crate) fn readonly_dev() -> Result<(), RootfsError> {
    let sys = |op| move |e| RootfsError::sys("mounts (/dev)", op, e);
    let flags = MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    let root = open_root().map_err(sys("open /"))?;
    let dev = open_beneath(root.as_fd(), Path::new("/dev"), None).map_err(sys("open /dev"))?;
    let kept = mount_flags(dev.as_fd()).map_err(sys("statvfs /dev"))? - MsFlags::MS_RDONLY;
    let t = target(dev.as_fd(), Path::new("/dev"));
    mount(None::<&str>, &t, None::<&str>, flags | kept, None::<&str>)
        .map_err(sys("remount read-only"))
}
