//! Unpacking a tar stream (plain or compressed) into a directory inside a
//! root: `cp` into a container (root = its rootfs) and out of one (root =
//! the host's `/`).
//!
//! Each entry's parent directory is resolved inside the root (symlinks
//! followed as if the root were `/`, as Docker's chrooted untar does;
//! missing parents created), and the entry itself is made with `*at`
//! calls relative to that directory's fd with `O_NOFOLLOW`/`O_EXCL`. Owner,
//! mode, times and xattrs are set through fds of the objects made, never by
//! path, so a running container cannot redirect them to the host. Names
//! with `..` are refused; an existing directory is never replaced by a
//! non-directory nor the other way round (Docker's `NoOverwriteDirNonDir`).

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use berth_rootfs::CreateKind;
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, makedev, mkdirat, mknodat, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, linkat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use tar::EntryType;

use super::error::ContainerFsError;
use super::resolve::{clean, file_kind};

/// Who owns what an extraction makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    /// The uid/gid the archive says (`cp -a`).
    FromArchive,
    /// Everything owned by one user (`cp` into a container: its root).
    Fixed(u32, u32),
    /// Left as created: the caller's (`cp` out of a container, as Docker's
    /// CLI does with `NoLchown`).
    Caller,
}

#[derive(Debug, Clone)]
pub struct ExtractOptions {
    pub ownership: Ownership,
    /// Docker's `RebaseArchiveEntries`: entries named `old` or `old/…` are
    /// extracted as `new` or `new/…`.
    pub rebase: Option<(String, String)>,
}

/// Extracts `r` into `dest` (a path inside `root`, resolved inside it).
pub(crate) fn extract(
    root: &Path,
    dest: &str,
    r: impl Read,
    opts: &ExtractOptions,
) -> Result<(), ContainerFsError> {
    let plain = berth_image::decompress(r).map_err(|e| {
        ContainerFsError::io(
            "reading the archive",
            io::Error::new(io::ErrorKind::InvalidData, e),
        )
    })?;
    let mut archive = tar::Archive::new(plain);
    let mut dir_times: Vec<(PathBuf, i64)> = Vec::new();
    let entries = archive
        .entries()
        .map_err(|e| ContainerFsError::io("reading the archive", e))?;
    let mut x = Extractor { root, dest, opts };
    for entry in entries {
        let mut entry = entry.map_err(|e| ContainerFsError::io("reading the archive", e))?;
        if let Some(dir) = x.entry(&mut entry)? {
            dir_times.push(dir);
        }
    }
    // Directory times last: making their entries changed them.
    for (path, mtime) in dir_times.iter().rev() {
        if let Ok(fd) = berth_rootfs::open_in_root(root, path, None) {
            set_times_fd(&fd, mtime_spec(*mtime));
        }
    }
    Ok(())
}

struct Extractor<'a> {
    root: &'a Path,
    dest: &'a str,
    opts: &'a ExtractOptions,
}

impl Extractor<'_> {
    /// The entry's name relative to the destination, cleaned and rebased;
    /// `None` for the destination itself.
    fn relative_name(&self, raw: &[u8]) -> Result<Option<String>, ContainerFsError> {
        let raw = String::from_utf8_lossy(raw);
        // Cleaned first: writers differ in `./x` against `x`.
        let mut name = clean(raw.trim_start_matches('/'));
        if let Some((old, new)) = &self.opts.rebase {
            let old = clean(old);
            if name == old {
                name.clone_from(new);
            } else if old == "." {
                // The archive of a directory's contents: all of it is inside.
                name = format!("{new}/{name}");
            } else if let Some(rest) = name.strip_prefix(&format!("{old}/")) {
                name = format!("{new}/{rest}");
            }
            name = clean(&name);
        }
        if name == ".." || name.starts_with("../") {
            return Err(ContainerFsError::Breakout {
                name: raw.into_owned(),
                dest: self.dest.to_string(),
            });
        }
        Ok((name != ".").then_some(name))
    }

    /// Makes one entry; returns a directory whose time is set at the end.
    fn entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
    ) -> Result<Option<(PathBuf, i64)>, ContainerFsError> {
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader | EntryType::XHeader | EntryType::GNULongName
        ) {
            return Ok(None);
        }
        let raw_name = entry.path_bytes().into_owned();
        let Some(rel) = self.relative_name(&raw_name)? else {
            return Ok(None);
        };
        let shown = String::from_utf8_lossy(&raw_name).into_owned();
        let full = Path::new(self.dest).join(&rel);
        let (parent_rel, base) = match rel.rsplit_once('/') {
            Some((p, b)) => (Path::new(self.dest).join(p), b.to_string()),
            None => (PathBuf::from(self.dest), rel.clone()),
        };
        let parent =
            berth_rootfs::open_in_root(self.root, &parent_rel, Some(CreateKind::Directory))
                .map_err(|e| {
                    ContainerFsError::sys(
                        "create directory",
                        parent_rel.display().to_string(),
                        e.errno().unwrap_or(Errno::EIO),
                    )
                })?;
        let header = entry.header();
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        let mtime = i64::try_from(header.mtime().unwrap_or(0)).unwrap_or(0);
        let owner = match self.opts.ownership {
            Ownership::FromArchive => Some((
                u32::try_from(header.uid().unwrap_or(0)).unwrap_or(0),
                u32::try_from(header.gid().unwrap_or(0)).unwrap_or(0),
            )),
            Ownership::Fixed(u, g) => Some((u, g)),
            Ownership::Caller => None,
        };
        let is_dir = kind == EntryType::Directory;
        let existing = fstatat(parent.as_fd(), base.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW).ok();
        if let Some(st) = &existing {
            let exists_dir = file_kind(st) == SFlag::S_IFDIR;
            match (exists_dir, is_dir) {
                (true, false) => {
                    return Err(ContainerFsError::OverwriteDirWithFile {
                        path: full.display().to_string(),
                        name: shown,
                    })
                }
                (false, true) => {
                    return Err(ContainerFsError::OverwriteFileWithDir {
                        path: full.display().to_string(),
                        name: shown,
                    })
                }
                (false, false) => unlinkat(&parent, base.as_str(), UnlinkatFlags::NoRemoveDir)
                    .map_err(|e| ContainerFsError::sys("remove", full.display().to_string(), e))?,
                (true, true) => {}
            }
        }
        let sys = |op: &'static str| {
            let path = full.display().to_string();
            move |e: Errno| ContainerFsError::sys(op, path, e)
        };
        match kind {
            EntryType::Directory => {
                if existing.is_none() {
                    mkdirat(&parent, base.as_str(), Mode::from_bits_truncate(0o700))
                        .map_err(sys("mkdir"))?;
                }
                let fd = openat(
                    &parent,
                    base.as_str(),
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(sys("open"))?;
                let file = File::from(fd);
                set_owner_mode(&file, owner, mode).map_err(sys("chown/chmod"))?;
                set_xattrs(&file, entry)?;
                return Ok(Some((full, mtime)));
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let fd = openat(
                    &parent,
                    base.as_str(),
                    OFlag::O_CREAT
                        | OFlag::O_EXCL
                        | OFlag::O_WRONLY
                        | OFlag::O_NOFOLLOW
                        | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(sys("create"))?;
                let mut file = File::from(fd);
                io::copy(entry, &mut file)
                    .map_err(|e| ContainerFsError::io(format!("writing {}", full.display()), e))?;
                set_owner_mode(&file, owner, mode).map_err(sys("chown/chmod"))?;
                set_xattrs(&file, entry)?;
                set_times_fd(&file, mtime_spec(mtime));
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                symlinkat(OsStr::from_bytes(&target), &parent, base.as_str())
                    .map_err(sys("symlink"))?;
                if let Some((u, g)) = owner {
                    fchownat(
                        &parent,
                        base.as_str(),
                        Some(Uid::from_raw(u)),
                        Some(Gid::from_raw(g)),
                        AtFlags::AT_SYMLINK_NOFOLLOW,
                    )
                    .map_err(sys("chown"))?;
                }
                let t = mtime_spec(mtime);
                // Best effort, as lutimes is for Docker.
                let _ = utimensat(
                    &parent,
                    base.as_str(),
                    &t,
                    &t,
                    UtimensatFlags::NoFollowSymlink,
                );
            }
            EntryType::Link => {
                let target_raw = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                let Some(target_rel) = self.relative_name(&target_raw)? else {
                    return Err(ContainerFsError::Breakout {
                        name: String::from_utf8_lossy(&target_raw).into_owned(),
                        dest: self.dest.to_string(),
                    });
                };
                let (t_parent, t_base) = match target_rel.rsplit_once('/') {
                    Some((p, b)) => (Path::new(self.dest).join(p), b.to_string()),
                    None => (PathBuf::from(self.dest), target_rel.clone()),
                };
                let t_dir =
                    berth_rootfs::open_in_root(self.root, &t_parent, None).map_err(|e| {
                        ContainerFsError::sys(
                            "open link target directory",
                            t_parent.display().to_string(),
                            e.errno().unwrap_or(Errno::EIO),
                        )
                    })?;
                linkat(
                    &t_dir,
                    t_base.as_str(),
                    &parent,
                    base.as_str(),
                    AtFlags::empty(),
                )
                .map_err(sys("link"))?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let sflag = match kind {
                    EntryType::Char => SFlag::S_IFCHR,
                    EntryType::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                let dev = makedev(
                    u64::from(header.device_major().ok().flatten().unwrap_or(0)),
                    u64::from(header.device_minor().ok().flatten().unwrap_or(0)),
                );
                mknodat(
                    &parent,
                    base.as_str(),
                    sflag,
                    Mode::from_bits_truncate(0o600),
                    dev,
                )
                .map_err(sys("mknod"))?;
                let fd = openat(
                    &parent,
                    base.as_str(),
                    OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(sys("open"))?;
                set_owner_mode_path_fd(&fd, owner, mode).map_err(sys("chown/chmod"))?;
                set_times_fd(&fd, mtime_spec(mtime));
            }
            // Other types (GNU volume labels, …) have nothing to make.
            _ => {}
        }
        Ok(None)
    }
}

fn mtime_spec(mtime: i64) -> TimeSpec {
    TimeSpec::new(mtime, 0)
}

fn set_owner_mode(file: &File, owner: Option<(u32, u32)>, mode: u32) -> Result<(), Errno> {
    if let Some((u, g)) = owner {
        nix::unistd::fchown(file, Some(Uid::from_raw(u)), Some(Gid::from_raw(g)))?;
    }
    // After chown, which clears set-id bits.
    nix::sys::stat::fchmod(file, Mode::from_bits_truncate(mode))
}

/// chown/chmod of the object behind an `O_PATH` fd (a device or fifo,
/// which must not be opened for real).
fn set_owner_mode_path_fd(fd: &OwnedFd, owner: Option<(u32, u32)>, mode: u32) -> Result<(), Errno> {
    if let Some((u, g)) = owner {
        fchownat(
            fd,
            "",
            Some(Uid::from_raw(u)),
            Some(Gid::from_raw(g)),
            AtFlags::AT_EMPTY_PATH,
        )?;
    }
    nix::sys::stat::fchmodat(
        nix::fcntl::AT_FDCWD,
        proc_fd_path(fd).as_str(),
        Mode::from_bits_truncate(mode),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
}

/// Sets atime and mtime of the object behind `fd` (any kind of fd) through
/// its `/proc/self/fd` link; failures are ignored, as Docker ignores them.
fn set_times_fd(fd: &impl AsFd, t: TimeSpec) {
    let _ = utimensat(
        nix::fcntl::AT_FDCWD,
        proc_fd_path(fd).as_str(),
        &t,
        &t,
        UtimensatFlags::FollowSymlink,
    );
}

fn proc_fd_path(fd: &impl AsFd) -> String {
    format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd())
}

/// The entry's `SCHILY.xattr.*` PAX records, set on `file`; a file system
/// without xattrs (or refusing one) only warns, as in Docker.
fn set_xattrs<R: Read>(file: &File, entry: &mut tar::Entry<'_, R>) -> Result<(), ContainerFsError> {
    let Ok(Some(exts)) = entry.pax_extensions() else {
        return Ok(());
    };
    for ext in exts.flatten() {
        let Ok(key) = ext.key() else { continue };
        let Some(name) = key.strip_prefix("SCHILY.xattr.") else {
            continue;
        };
        let Ok(cname) = CString::new(name) else {
            continue;
        };
        let value = ext.value_bytes();
        // SAFETY: fsetxattr reads `value.len()` bytes from `value` and the
        // NUL-terminated name, both alive for the call; the fd is open.
        let rc = unsafe {
            libc::fsetxattr(
                file.as_raw_fd(),
                cname.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        };
        if rc != 0 {
            let err = Errno::last();
            if matches!(err, Errno::ENOTSUP | Errno::EPERM) {
                tracing::warn!("ignoring xattr {name}: {err}");
            } else {
                return Err(ContainerFsError::sys("setxattr", name.to_string(), err));
            }
        }
    }
    Ok(())
}
