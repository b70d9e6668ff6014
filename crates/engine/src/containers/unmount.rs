//! Taking a container's rootfs overlay down.
//!
//! The last reference to an overlay mount shuts its superblock down, and
//! overlayfs then syncs the whole upper filesystem (`ovl_sync_fs` →
//! `sync_filesystem` of the host's /var/lib filesystem, every dirty inode
//! of it, not only the container's): tens of milliseconds on a quiet disk,
//! seconds on a busy one. When the writable layer is about to be deleted
//! that wait buys nothing, so [`detach_discarding`] returns the last
//! reference, which the engine closes in its background process
//! ([`crate::detached::Deferred`]).

use std::os::fd::OwnedFd;
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::mount::{umount2, MntFlags};
use nix::sys::stat::Mode;

/// Detaches every mount stacked on `rootfs`. Lazy, so that a host process
/// with its cwd in there does not keep the container from being cleaned
/// up; the superblock goes when its last user does.
/// Returns whether anything was mounted there.
pub(crate) fn detach(rootfs: &Path) -> bool {
    let mut detached = false;
    loop {
        match umount2(rootfs, MntFlags::MNT_DETACH) {
            Ok(()) => detached = true,
            Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => break,
            Err(e) => {
                tracing::warn!("unmounting {}: {e}", rootfs.display());
                break;
            }
        }
    }
    detached
}

/// [`detach`] for a rootfs whose writable layer is deleted next: the
/// overlay's final shutdown (and its sync) is left to whoever closes the
/// returned descriptor, the last reference to the mount (`None` when
/// nothing was mounted). The mount is gone from the mount table when this
/// returns, and its upper and work directories may be removed at once (the
/// detached superblock only holds their inodes until it is released).
pub(crate) fn detach_discarding(rootfs: &Path) -> Option<OwnedFd> {
    // An O_PATH descriptor of the mount's root pins the mount: after the
    // lazy unmount below, it is the last reference.
    let holder = open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ok();
    // With nothing unmounted the holder is a plain directory's.
    if detach(rootfs) {
        holder
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The mount is out of the table when `detach_discarding` returns, and
    /// its directories can be removed right away.
    #[test]
    fn detach_discarding_unmounts_and_allows_removal() {
        berth_testutil::require_root!();
        let dir = tempfile::tempdir().unwrap();
        let (lower, upper, work, merged) = (
            dir.path().join("lower"),
            dir.path().join("upper"),
            dir.path().join("work"),
            dir.path().join("merged"),
        );
        for d in [&lower, &upper, &work, &merged] {
            std::fs::create_dir(d).unwrap();
        }
        std::fs::write(lower.join("f"), b"lower").unwrap();
        let data = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.display(),
            upper.display(),
            work.display()
        );
        nix::mount::mount(
            Some("overlay"),
            &merged,
            Some("overlay"),
            nix::mount::MsFlags::empty(),
            Some(data.as_str()),
        )
        .unwrap();
        std::fs::write(merged.join("g"), b"upper").unwrap();
        let holder = detach_discarding(&merged);
        assert!(holder.is_some());
        let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !table.contains(merged.to_str().unwrap()),
            "still mounted: {table}"
        );
        assert!(upper.join("g").exists());
        std::fs::remove_dir_all(&upper).unwrap();
        std::fs::remove_dir_all(&work).unwrap();
        drop(holder);
        // A second call on a plain directory is harmless.
        assert!(detach_discarding(&merged).is_none());
    }
}
