//! File-system helpers shared by the stores (unique names, locks, durable
//! renames, cleanup guards), with the path in every error.

use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::ImageError;

/// A name unique across processes and calls: pid, time and a per-process counter.
pub(crate) fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}{}-{nanos:x}-{n}", std::process::id())
}

/// Takes an exclusive `flock` on `f`; `nonblocking` returns Ok(false) when held elsewhere.
pub(crate) fn flock(f: &impl AsFd, path: &Path, nonblocking: bool) -> Result<bool, ImageError> {
    use std::os::fd::AsRawFd;
    let op = if nonblocking {
        libc::LOCK_EX | libc::LOCK_NB
    } else {
        libc::LOCK_EX
    };
    loop {
        // SAFETY: flock on a valid, open descriptor borrowed for the call.
        let rc = unsafe { libc::flock(f.as_fd().as_raw_fd(), op) };
        if rc == 0 {
            return Ok(true);
        }
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) if nonblocking => return Ok(false),
            _ => return Err(ImageError::io("flock", path, err)),
        }
    }
}

/// True when `path` still names the inode open as `f` (it was not removed and
/// replaced between creating and locking it).
pub(crate) fn still_linked(f: &File, path: &Path) -> bool {
    match (f.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// fsyncs a directory so that renames into it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), ImageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| ImageError::io("fsync directory", dir, e))
}

/// ext4's `FS_TOPDIR_FL` (`chattr +T`): not in the libc crate.
const FS_TOPDIR_FL: libc::c_int = 0x0002_0000;

/// Asks the file system to treat each directory made in `dir` as the top
/// of its own hierarchy (`chattr +T`): ext4's Orlov allocator then places
/// each new subdirectory, and the files made in it, in a lightly used block
/// group instead of packing everything next to `dir`.
///
/// Why: an unpacked layer is thousands of new inodes. Packed next to the
/// store they land in the group that also holds the inodes of layers just
/// removed, and on ext4 without a journal every inode allocation skips
/// recently freed inodes one by one (`recently_deleted`, a minute or more
/// after the delete): after `rmi`, a pull of an image with 5,000 files
/// spent 2–4 s of system time in that scan, more than the unpacking itself
/// (docs/benchmarks.md). With the hint each layer starts in a group of its
/// own. Returns whether the flag is set; file systems without it (xfs,
/// btrfs, tmpfs, overlay) refuse it, which changes nothing else.
pub(crate) fn mark_top_of_hierarchies(dir: &Path) -> bool {
    use std::os::fd::AsRawFd;
    let Ok(f) = File::open(dir) else {
        return false;
    };
    let fd = f.as_raw_fd();
    let mut flags: libc::c_int = 0;
    // SAFETY: FS_IOC_GETFLAGS writes one int through the pointer, which
    // points at a live local; `fd` is open for the call's duration.
    if unsafe { libc::ioctl(fd, libc::FS_IOC_GETFLAGS, &mut flags) } != 0 {
        return false;
    }
    if flags & FS_TOPDIR_FL != 0 {
        return true;
    }
    flags |= FS_TOPDIR_FL;
    // SAFETY: FS_IOC_SETFLAGS reads one int through the pointer, which
    // points at a live local; `fd` is open for the call's duration.
    unsafe { libc::ioctl(fd, libc::FS_IOC_SETFLAGS, &flags) == 0 }
}

/// Whether `dir` carries the hint of [`mark_top_of_hierarchies`].
#[cfg(test)]
pub(crate) fn is_top_of_hierarchies(dir: &Path) -> bool {
    use std::os::fd::AsRawFd;
    let Ok(f) = File::open(dir) else {
        return false;
    };
    let mut flags: libc::c_int = 0;
    // SAFETY: as in mark_top_of_hierarchies.
    let rc = unsafe { libc::ioctl(f.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) };
    rc == 0 && flags & FS_TOPDIR_FL != 0
}

pub(crate) fn create_dir_all(dir: &Path) -> Result<(), ImageError> {
    std::fs::create_dir_all(dir).map_err(|e| ImageError::io("create directory", dir, e))
}

/// Removes a file or directory tree; a missing path is not an error.
pub(crate) fn remove_all(path: &Path) -> Result<(), ImageError> {
    let res = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) => Err(e),
    };
    match res {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ImageError::io("remove", path, e)),
    }
}

/// Deletes a path when dropped unless disarmed.
pub(crate) struct RemoveOnDrop(pub Option<PathBuf>);

impl RemoveOnDrop {
    pub(crate) fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = remove_all(&p);
        }
    }
}
