//! The host's side of `cp`, as Docker's CLI does it (`archive.CopyTo`,
//! `CopyInfoSourcePath`, `CopyInfoDestinationPath`, `PrepareArchiveCopy`):
//! which directory an archive is extracted into and under which name.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;

use nix::errno::Errno;
use nix::sys::stat::{fstat, lstat, stat, SFlag};

use super::archive::TreeArchiver;
use super::error::ContainerFsError;
use super::extract::{extract, ExtractOptions, Ownership};
use super::resolve::{archive_base, asserts_directory, open_in_root};

pub use super::resolve::split_path_dir_entry;

/// One side of a copy (Docker's `archive.CopyInfo`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyInfo {
    pub path: String,
    pub exists: bool,
    pub is_dir: bool,
    /// The name the source's archive entries carry when it differs from
    /// the last element of `path` (a followed symlink).
    pub rebase_name: Option<String>,
}

/// Where to extract and how to rename the entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedCopy {
    pub dir: String,
    pub rebase: Option<(String, String)>,
}

/// Docker's `PrepareArchiveCopy`: a source archive whose top entry is
/// named [`source_archive_name`] goes into an existing directory as is,
/// onto an existing file or a new path under the destination's name.
pub fn prepare_archive_copy(
    src: &CopyInfo,
    dst: &CopyInfo,
) -> Result<PreparedCopy, ContainerFsError> {
    let (dst_dir, dst_base) = split_path_dir_entry(&dst.path);
    let src_base = source_archive_name(src);
    let renamed = PreparedCopy {
        dir: dst_dir,
        rebase: Some((src_base, dst_base)),
    };
    if dst.exists && dst.is_dir {
        return Ok(PreparedCopy {
            dir: dst.path.clone(),
            rebase: None,
        });
    }
    if dst.exists && src.is_dir {
        return Err(ContainerFsError::CannotCopyDir);
    }
    if dst.exists || src.is_dir {
        return Ok(renamed);
    }
    if asserts_directory(&dst.path) {
        return Err(ContainerFsError::DirNotExists);
    }
    Ok(renamed)
}

/// The name of the top entry of the source's archive.
pub fn source_archive_name(src: &CopyInfo) -> String {
    src.rebase_name
        .clone()
        .unwrap_or_else(|| archive_base(&src.path))
}

/// Docker's `CopyInfoDestinationPath` on the host: symlinks as the last
/// element are followed (up to 10, a dangling one names the file to make);
/// a missing destination needs an existing parent directory.
pub fn copy_info_destination_path(path: &str) -> Result<CopyInfo, ContainerFsError> {
    let mut path = path.to_string();
    let mut st = lstat(path.as_str());
    let mut hops = 0;
    while let Ok(s) = &st {
        if SFlag::from_bits_truncate(s.st_mode) & SFlag::S_IFMT != SFlag::S_IFLNK {
            break;
        }
        hops += 1;
        if hops > 10 {
            return Err(ContainerFsError::TooManySymlinks(path));
        }
        let target = std::fs::read_link(&path)
            .map_err(|e| ContainerFsError::io(format!("readlink {path}"), e))?;
        let target = target.to_string_lossy().into_owned();
        path = if target.starts_with('/') {
            target
        } else {
            let (parent, _) = split_path_dir_entry(&path);
            format!("{parent}/{target}")
        };
        st = lstat(path.as_str());
    }
    match st {
        Ok(s) => Ok(CopyInfo {
            path,
            exists: true,
            is_dir: SFlag::from_bits_truncate(s.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR,
            rebase_name: None,
        }),
        Err(Errno::ENOENT) => {
            let (parent, _) = split_path_dir_entry(&path);
            let ps = stat(parent.as_str())
                .map_err(|e| ContainerFsError::sys("stat", parent.clone(), e))?;
            if SFlag::from_bits_truncate(ps.st_mode) & SFlag::S_IFMT != SFlag::S_IFDIR {
                return Err(ContainerFsError::NotDirectory(parent));
            }
            Ok(CopyInfo {
                path,
                ..Default::default()
            })
        }
        Err(e) => Err(ContainerFsError::sys("lstat", path, e)),
    }
}

/// A file or directory of the host to copy into a container.
pub struct HostSource {
    fd: OwnedFd,
    info: CopyInfo,
}

impl HostSource {
    /// Docker's `CopyInfoSourcePath`: symlinks before the last element are
    /// followed; the last one too with `follow_link` (the archive then
    /// carries the link's name).
    pub fn open(path: &str, follow_link: bool) -> Result<Self, ContainerFsError> {
        let fd = open_in_root(Path::new("/"), path, follow_link)
            .map_err(|e| ContainerFsError::sys("lstat", path, e))?;
        let st = fstat(&fd).map_err(|e| ContainerFsError::sys("stat", path, e))?;
        let is_dir = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR;
        Ok(Self {
            fd,
            info: CopyInfo {
                path: path.to_string(),
                exists: true,
                is_dir,
                rebase_name: None,
            },
        })
    }

    pub fn info(&self) -> &CopyInfo {
        &self.info
    }

    /// Writes the source as a tar (top entry named [`source_archive_name`]).
    pub fn write_archive<W: Write>(&self, w: W) -> Result<W, ContainerFsError> {
        let mut archiver = TreeArchiver::new(w);
        archiver.append(&self.fd, source_archive_name(&self.info).as_bytes())?;
        let mut w = archiver.finish()?;
        w.flush()
            .map_err(|e| ContainerFsError::io("writing the archive", e))?;
        Ok(w)
    }
}

/// [`HostSource::open`] and [`HostSource::write_archive`] in one.
pub fn archive_host_path(
    path: &str,
    follow_link: bool,
    w: impl Write,
) -> Result<CopyInfo, ContainerFsError> {
    let src = HostSource::open(path, follow_link)?;
    src.write_archive(w)?;
    Ok(src.info)
}

/// Extracts an archive into the host directory `dir` (`cp` out of a
/// container): files are the caller's, as with Docker's CLI.
pub fn extract_on_host(
    dir: &str,
    r: impl Read,
    rebase: Option<(String, String)>,
) -> Result<(), ContainerFsError> {
    let opts = ExtractOptions {
        ownership: Ownership::Caller,
        rebase,
    };
    extract(Path::new("/"), dir, r, &opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(path: &str, exists: bool, is_dir: bool) -> CopyInfo {
        CopyInfo {
            path: path.into(),
            exists,
            is_dir,
            rebase_name: None,
        }
    }

    #[test]
    fn archive_copies_are_prepared_as_docker_does() {
        let into = |dir: &str| PreparedCopy {
            dir: dir.into(),
            rebase: None,
        };
        let renamed = |dir: &str, old: &str, new: &str| PreparedCopy {
            dir: dir.into(),
            rebase: Some((old.into(), new.into())),
        };
        // into an existing directory: as is
        assert_eq!(
            prepare_archive_copy(&info("/etc", true, true), &info("/tmp/d", true, true)).ok(),
            Some(into("/tmp/d"))
        );
        // a directory to a new name: renamed
        assert_eq!(
            prepare_archive_copy(&info("/etc", true, true), &info("/tmp/new", false, false)).ok(),
            Some(renamed("/tmp", "etc", "new"))
        );
        // contents (`/.`) to a new name
        assert_eq!(
            prepare_archive_copy(&info("/etc/.", true, true), &info("/tmp/new", false, false)).ok(),
            Some(renamed("/tmp", ".", "new"))
        );
        // a file onto a file
        assert_eq!(
            prepare_archive_copy(&info("/a/f", true, false), &info("/tmp/g", true, false)).ok(),
            Some(renamed("/tmp", "f", "g"))
        );
        assert!(matches!(
            prepare_archive_copy(&info("/etc", true, true), &info("/tmp/g", true, false)),
            Err(ContainerFsError::CannotCopyDir)
        ));
        assert!(matches!(
            prepare_archive_copy(
                &info("/a/f", true, false),
                &info("/tmp/nope/", false, false)
            ),
            Err(ContainerFsError::DirNotExists)
        ));
    }
}
