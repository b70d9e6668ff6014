//! Switching the root to the prepared rootfs.

use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, chroot, fchdir, pivot_root};

use crate::mountinfo::read_mountinfo;
use crate::{RootfsError, RootfsOptions};

pub(crate) fn pivot(opts: &RootfsOptions) -> Result<(), RootfsError> {
    if opts.no_pivot {
        move_root(opts)?;
    } else {
        pivot_root_in_place(opts)?;
    }
    chdir("/").map_err(|e| RootfsError::sys("pivot", "chdir /", e))
}

/// runc's pivot_root(".", "."): the old root ends up mounted on top of the new
/// one, where it is detached; no directory in the image is needed for it.
fn pivot_root_in_place(opts: &RootfsOptions) -> Result<(), RootfsError> {
    let sys =
        |op| move |e| RootfsError::sys(format!("pivot_root to {}", opts.rootfs.display()), op, e);
    let dir_flags = OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC;
    let old_root = open("/", dir_flags, Mode::empty()).map_err(sys("open /"))?;
    let new_root = open(opts.rootfs, dir_flags, Mode::empty()).map_err(sys("open rootfs"))?;
    fchdir(&new_root).map_err(sys("fchdir rootfs"))?;
    pivot_root(".", ".").map_err(sys("pivot_root"))?;
    // "." is the old root now, stacked on the new one
    fchdir(&old_root).map_err(sys("fchdir old root"))?;
    // so the unmount cannot propagate to the host
    mount(
        None::<&str>,
        ".",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(sys("make old root rslave"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(sys("detach old root"))?;
    Ok(())
}

/// `--no-pivot` (a rootfs on a ramfs, where pivot_root is impossible): move
/// the rootfs over "/" and chroot into it. Host mounts outside the rootfs
/// would stay reachable through the namespace, so they are detached first.
fn move_root(opts: &RootfsOptions) -> Result<(), RootfsError> {
    let sys =
        |op| move |e| RootfsError::sys(format!("move root to {}", opts.rootfs.display()), op, e);
    detach_outside(opts.rootfs)?;
    chdir(opts.rootfs).map_err(sys("chdir rootfs"))?;
    mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
        .map_err(sys("move rootfs to /"))?;
    chroot(".").map_err(sys("chroot"))?;
    Ok(())
}

fn detach_outside(rootfs: &Path) -> Result<(), RootfsError> {
    let context = format!("move root to {}", rootfs.display());
    let mut points: Vec<PathBuf> = read_mountinfo(&context)?
        .into_iter()
        .map(|e| e.mount_point)
        .filter(|p| p != Path::new("/") && !p.starts_with(rootfs) && !rootfs.starts_with(p))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    points.dedup();
    for p in points {
        match umount2(&p, MntFlags::MNT_DETACH) {
            // already gone with a parent, or locked in a user namespace: nothing more to do
            Ok(()) | Err(Errno::EINVAL | Errno::ENOENT | Errno::EPERM) => {}
            Err(e) => {
                return Err(RootfsError::sys(
                    format!("{context}: detach {}", p.display()),
                    "umount2",
                    e,
                ))
            }
        }
    }
    Ok(())
}
