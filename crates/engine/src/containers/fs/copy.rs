//! The container's side of `cp`: stat a path, archive it, extract into a
//! directory (Docker's `ContainerStatPath`, `ContainerArchivePath`,
//! `ContainerExtractToDir`).

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::readlinkat;
use nix::sys::stat::{fstat, SFlag};

use super::archive::TreeArchiver;
use super::error::ContainerFsError;
use super::extract::{extract, ExtractOptions};
use super::resolve::{archive_base, clean, container_abs_path, file_kind, open_in_root};
use crate::containers::ContainerService;
use crate::error::EngineError;

/// What `cp` learns about a path (Docker's `container.PathStat`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathStat {
    /// The last element of the path.
    pub name: String,
    pub size: i64,
    /// `st_mode` (type and permission bits).
    pub mode: u32,
    pub mtime: i64,
    /// For a symlink: where it leads, resolved inside the container
    /// (absolute); empty otherwise.
    pub link_target: String,
}

impl PathStat {
    pub fn is_dir(&self) -> bool {
        SFlag::from_bits_truncate(self.mode) & SFlag::S_IFMT == SFlag::S_IFDIR
    }

    pub fn is_symlink(&self) -> bool {
        SFlag::from_bits_truncate(self.mode) & SFlag::S_IFMT == SFlag::S_IFLNK
    }

    /// A directory or a regular file: what `cp` may write onto.
    pub fn is_dir_or_regular(&self) -> bool {
        let kind = SFlag::from_bits_truncate(self.mode) & SFlag::S_IFMT;
        kind == SFlag::S_IFDIR || kind == SFlag::S_IFREG
    }
}

impl ContainerService<'_> {
    /// Stat of `path` in container `word`. The last element is not
    /// followed unless `follow_link` (or the path ends in `/` or `/.`);
    /// a symlink's [`PathStat::link_target`] is resolved in the container.
    pub fn stat_path(
        &self,
        word: &str,
        path: &str,
        follow_link: bool,
    ) -> Result<PathStat, EngineError> {
        let rec = self.get(word)?;
        let root = self.open_root(&rec)?;
        let abs = container_abs_path(path);
        let fd = open_or_not_found(&root.path(), &abs, follow_link, word, path)?;
        Ok(stat_of(&root.path(), &fd, &abs)?)
    }

    /// `cp CONTAINER:PATH …`: writes a tar of `path` (a directory with
    /// everything below it) to `w`, its top entry named as Docker names it
    /// (`etc` for `/etc` and `/etc/`, `.` for `/etc/.`, whose contents are
    /// what is copied). With `follow_link` a symlink as the last element is
    /// followed (inside the container) and archived under the link's name.
    /// Returns the stat of what was archived.
    ///
    /// What the running container mounted for itself (volumes, binds,
    /// tmpfs) is not seen: see the module docs.
    pub fn archive_path(
        &self,
        word: &str,
        path: &str,
        follow_link: bool,
        w: impl Write,
    ) -> Result<PathStat, EngineError> {
        let rec = self.get(word)?;
        let root = self.open_root(&rec)?;
        let abs = container_abs_path(path);
        let fd = open_or_not_found(&root.path(), &abs, follow_link, word, path)?;
        let stat = stat_of(&root.path(), &fd, &abs)?;
        let mut archiver = TreeArchiver::new(w);
        archiver.append(&fd, archive_base(&abs).as_bytes())?;
        let mut w = archiver.finish()?;
        w.flush()
            .map_err(|e| ContainerFsError::io("writing the archive", e))?;
        Ok(stat)
    }

    /// `cp … CONTAINER:DIR`: extracts the tar (plain or compressed) `r`
    /// into the existing directory `dir` of container `word` (symlinks on
    /// the way followed inside the container). Everything made is owned
    /// by the container's root unless `opts.ownership` says otherwise.
    pub fn extract_to_dir(
        &self,
        word: &str,
        dir: &str,
        r: impl Read,
        opts: &ExtractOptions,
    ) -> Result<(), EngineError> {
        let rec = self.get(word)?;
        if rec.host_config.readonly_rootfs {
            return Err(ContainerFsError::ReadOnlyRootfs {
                path: dir.to_string(),
                container: word.to_string(),
            }
            .into());
        }
        let root = self.open_root(&rec)?;
        let abs = container_abs_path(dir);
        let fd = open_or_not_found(&root.path(), &abs, true, word, dir)?;
        let st = fstat(&fd).map_err(|e| ContainerFsError::sys("stat", dir, e))?;
        if file_kind(&st) != SFlag::S_IFDIR {
            return Err(ContainerFsError::NotADirectory {
                path: dir.to_string(),
                container: word.to_string(),
            }
            .into());
        }
        let resolved = inside_path(&root.path(), &fd).unwrap_or_else(|| clean(&abs));
        Ok(extract(&root.path(), &resolved, r, opts)?)
    }
}

fn open_or_not_found(
    root: &Path,
    abs: &str,
    follow: bool,
    word: &str,
    path: &str,
) -> Result<OwnedFd, ContainerFsError> {
    open_in_root(root, abs, follow).map_err(|e| match e {
        Errno::ENOENT => ContainerFsError::FileNotFound {
            path: path.to_string(),
            container: word.to_string(),
        },
        e => ContainerFsError::sys("resolve", path, e),
    })
}

pub(crate) fn stat_of(root: &Path, fd: &OwnedFd, abs: &str) -> Result<PathStat, ContainerFsError> {
    let st = fstat(fd).map_err(|e| ContainerFsError::sys("stat", abs, e))?;
    let name = archive_base(abs);
    let mut link_target = String::new();
    if file_kind(&st) == SFlag::S_IFLNK {
        link_target = match open_in_root(root, &clean(abs), true) {
            Ok(target) => inside_path(root, &target).unwrap_or_default(),
            Err(_) => String::new(),
        };
        if link_target.is_empty() {
            // Dangling: where it would lead, lexically (as Docker's client joins it).
            let target =
                readlinkat(fd, "").map_err(|e| ContainerFsError::sys("readlink", abs, e))?;
            let target = target.to_string_lossy();
            link_target = if target.starts_with('/') {
                clean(&target)
            } else {
                let (dir, _) = super::resolve::split_path_dir_entry(abs);
                clean(&format!("{dir}/{target}"))
            };
        }
    }
    Ok(PathStat {
        name,
        size: st.st_size,
        mode: st.st_mode,
        mtime: st.st_mtime,
        link_target,
    })
}

/// The path of `fd` inside `root` (both as the kernel names them now).
fn inside_path(root: &Path, fd: &OwnedFd) -> Option<String> {
    let root_real = std::fs::read_link(root).ok()?;
    let real = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
    let rel = real.strip_prefix(&root_real).ok()?;
    Some(format!("/{}", rel.display()))
}
