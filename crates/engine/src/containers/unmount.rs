//! Taking a container's rootfs overlay down.
//!
//! The last reference to an overlay mount shuts its superblock down, and
//! overlayfs then syncs the whole upper filesystem (`ovl_sync_fs` →
//! `sync_filesystem` of the host's /var/lib filesystem, every dirty inode
//! of it, not only the container's): tens of milliseconds on a quiet disk,
//! seconds on a busy one. When the writable layer is about to be deleted
//! that wait buys nothing, so [`detach_discarding`] hands the last
//! reference to a short-lived background process and returns at once.

use std::os::fd::{AsRawFd, OwnedFd};
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
/// overlay's final shutdown (and its sync) happens in a background process
/// instead of the caller. The mount is gone from the mount table when this
/// returns, and its upper and work directories may be removed at once (the
/// detached superblock only holds their inodes until it is released).
pub(crate) fn detach_discarding(rootfs: &Path) {
    // An O_PATH descriptor of the mount's root pins the mount: after the
    // lazy unmount below, it is the last reference.
    let holder = open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ok();
    // With nothing unmounted the holder is a plain directory's: no sync
    // to hand off, and no fork.
    if let (true, Some(fd)) = (detach(rootfs), holder) {
        release_in_background(fd);
    }
}

/// Closes `fd` in a detached background process (crate::detached), or
/// here when the caller cannot fork one.
fn release_in_background(fd: OwnedFd) {
    let raw = fd.as_raw_fd();
    // The job closes its copy of `fd`; the caller's is dropped below.
    // SAFETY: `raw` is this process's (the job runs in a forked copy
    // whose descriptor table holds it), closed once there.
    let job = move || unsafe {
        libc::close(raw);
    };
    crate::detached::run_detached(Some(raw), job);
    drop(fd);
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
        detach_discarding(&merged);
        let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !table.contains(merged.to_str().unwrap()),
            "still mounted: {table}"
        );
        assert!(upper.join("g").exists());
        std::fs::remove_dir_all(&upper).unwrap();
        std::fs::remove_dir_all(&work).unwrap();
        // A second call on a plain directory is harmless.
        detach_discarding(&merged);
    }
}
