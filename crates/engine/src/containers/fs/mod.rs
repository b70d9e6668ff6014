//! A container's filesystem from the host: `diff`, `cp` (both ways),
//! `export` and `commit`.
//!
//! Paths inside a container are resolved within its rootfs only (openat2
//! `RESOLVE_IN_ROOT`, or the user-space walk of `berth-rootfs` where openat2
//! is missing), and trees are walked and written through directory fds with
//! `O_NOFOLLOW`, so a symlink a container makes (`ln -s / /escape`) never
//! leads a copy to the host's files, also while the container runs and
//! changes its files under the walk.
//!
//! The host sees a container's files through its overlay mount
//! (`<root>/snapshots/<id>/merged`): the running container's mount while it
//! runs, a mount made for the operation (and removed after it, under the
//! container's lock so that it cannot start meanwhile) while it is stopped.
//! What the container mounted inside its own mount namespace (volumes, bind
//! mounts, `--tmpfs`, /proc, /dev) is not part of that view: `cp` and
//! `export` see the container's own files only.

mod archive;
mod commit;
mod copy;
mod diff;
mod error;
mod export;
mod extract;
mod host;
mod resolve;

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;

use super::paths::ContainerPaths;
use super::store::ContainerRecord;
use super::ContainerService;
use crate::error::EngineError;
use crate::lock::FileLock;

pub use commit::CommitOptions;
pub use copy::PathStat;
pub use diff::{Change, ChangeKind};
pub use error::ContainerFsError;
pub use extract::{ExtractOptions, Ownership};
pub use host::{
    archive_host_path, copy_info_destination_path, extract_on_host, prepare_archive_copy,
    source_archive_name, split_path_dir_entry, CopyInfo, HostSource, PreparedCopy,
};

/// A container's merged filesystem, open for one operation: an `O_PATH` fd
/// of its root and, for a stopped container, the mount made for it.
pub(crate) struct ContainerRoot<'a> {
    fd: OwnedFd,
    /// Set when this operation mounted the rootfs (unmounted on drop).
    mounted: Option<(&'a ContainerService<'a>, ContainerPaths)>,
    _lock: Option<FileLock>,
}

impl ContainerRoot<'_> {
    pub(crate) fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    /// `/proc/self/fd/N`: a path that reaches exactly this root, for the
    /// in-root resolution helpers that take a path.
    pub(crate) fn path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }
}

impl Drop for ContainerRoot<'_> {
    fn drop(&mut self) {
        if let Some((service, paths)) = &self.mounted {
            service.unmount_rootfs(paths);
        }
    }
}

impl<'e> ContainerService<'e> {
    /// Opens `rec`'s merged rootfs: the running container's overlay, or
    /// (stopped, created) a mount made now and removed when the returned
    /// value is dropped; the container's lock is held meanwhile so that a
    /// `start` waits for the operation.
    pub(crate) fn open_root<'a>(
        &'a self,
        rec: &ContainerRecord,
    ) -> Result<ContainerRoot<'a>, EngineError>
    where
        'e: 'a,
    {
        let paths = self.paths(&rec.id);
        if rec.status.is_active() {
            if let Some(fd) = open_overlay(&paths.rootfs)? {
                return Ok(ContainerRoot {
                    fd,
                    mounted: None,
                    _lock: None,
                });
            }
        }
        // The lifecycle's lock (`start` takes it too).
        if let Some(parent) = paths.lock_file().parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| EngineError::io(format!("creating {}", parent.display()), e))?;
        }
        let lock = FileLock::exclusive(&paths.lock_file())?;
        // Under the lock: it may have started (or exited) since `rec` was read.
        let rec = self.get(&rec.id)?;
        if rec.status.is_active() {
            if let Some(fd) = open_overlay(&paths.rootfs)? {
                return Ok(ContainerRoot {
                    fd,
                    mounted: None,
                    _lock: Some(lock),
                });
            }
        }
        self.mount_rootfs(&rec, &paths)?;
        let service: &'a ContainerService<'a> = self;
        let root = ContainerRoot {
            fd: open_dir_path(&paths.rootfs)?,
            mounted: Some((service, paths)),
            _lock: Some(lock),
        };
        if !is_overlay(&root.fd) {
            return Err(EngineError::Corrupt(format!(
                "container {}: the rootfs mount at {} is not an overlay",
                rec.id,
                root.path().display()
            )));
        }
        Ok(root)
    }
}

fn open_dir_path(path: &Path) -> Result<OwnedFd, EngineError> {
    openat(
        nix::fcntl::AT_FDCWD,
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| EngineError::io(format!("opening {}", path.display()), e.into()))
}

/// The container's overlay at `path`, or `None` when nothing is mounted
/// there (the container exited between its record and this look).
fn open_overlay(path: &Path) -> Result<Option<OwnedFd>, EngineError> {
    let fd = match open_dir_path(path) {
        Ok(fd) => fd,
        Err(EngineError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    Ok(is_overlay(&fd).then_some(fd))
}

fn is_overlay(fd: &OwnedFd) -> bool {
    nix::sys::statfs::fstatfs(fd)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::OVERLAYFS_SUPER_MAGIC)
}
