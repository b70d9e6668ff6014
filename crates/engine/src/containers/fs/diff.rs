//! `diff`: the container's changes against its image, read from its
//! overlay upper directory as Docker's overlay2 driver reads them
//! (moby `pkg/archive` `changes` with `overlayDeletedFile`).
//!
//! - a whiteout (char device 0:0) is `D`, and so is an opaque directory
//!   (its old contents are gone; what it holds now follows as `A`/`C`);
//! - anything else is `C` when the path exists in one of the image's
//!   layers, else `A`; a directory that only came up because something
//!   below it changed, with the same mode, owner and mtime as below, is not
//!   listed by itself;
//! - the parent of an added or deleted path is `C` (unless it is `/`).
//!
//! Order: a walk with each directory's names in byte order, parents first.
//!
//! Docker keeps the mount points of /etc/hosts, /etc/hostname,
//! /etc/resolv.conf, /dev, /proc, /sys … in an "init" layer between the
//! image and the container's layer, so `diff` never lists them. berth has
//! no such layer: the runtime creates those stubs in the upper directory,
//! and they are left out here when they are still the empty stubs.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{openat, openat2, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstatat, FileStat, Mode, SFlag};

use super::error::ContainerFsError;
use super::resolve::file_kind;
use crate::containers::ContainerService;
use crate::error::EngineError;

/// Paths that Docker's init layer holds: stubs of them are not changes.
const INIT_LAYER_PATHS: &[&str] = &[
    "/.dockerenv",
    "/dev",
    "/dev/console",
    "/dev/pts",
    "/dev/shm",
    "/etc/hostname",
    "/etc/hosts",
    "/etc/mtab",
    "/etc/resolv.conf",
    "/proc",
    "/sys",
];

const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Modified,
    Added,
    Deleted,
}

impl ChangeKind {
    /// Docker's letter (`C`, `A`, `D`).
    pub fn letter(self) -> char {
        match self {
            ChangeKind::Modified => 'C',
            ChangeKind::Added => 'A',
            ChangeKind::Deleted => 'D',
        }
    }

    /// Docker's API number (`Kind` in `GET /containers/{id}/changes`).
    pub fn api_kind(self) -> u8 {
        match self {
            ChangeKind::Modified => 0,
            ChangeKind::Added => 1,
            ChangeKind::Deleted => 2,
        }
    }
}

/// One line of `diff`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    /// Absolute path inside the container.
    pub path: String,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind.letter(), self.path)
    }
}

impl ContainerService<'_> {
    /// `diff`: the changes of container `word` against its image (running
    /// or not; nothing is mounted for it).
    pub fn changes(&self, word: &str) -> Result<Vec<Change>, EngineError> {
        let rec = self.get(word)?;
        Ok(self.walk_upper(&rec.id)?.changes)
    }

    /// The init-layer stubs (see the module docs) in container `id`'s upper
    /// directory, as absolute paths: what `commit` leaves out of the layer.
    pub(crate) fn init_stubs(&self, id: &str) -> Result<Vec<String>, EngineError> {
        Ok(self.walk_upper(id)?.stubs)
    }

    fn walk_upper(&self, id: &str) -> Result<Walk, EngineError> {
        let m = self.engine.snapshots().mounts(id)?;
        let lowers = m
            .absolute_lowerdirs()
            .iter()
            .map(|d| open_dir(d))
            .collect::<Result<Vec<_>, _>>()?;
        let upper = open_dir(&m.upper)?;
        let mut walk = Walk {
            lowers,
            changes: Vec::new(),
            changed_dirs: HashSet::new(),
            stubs: Vec::new(),
        };
        walk.dir(&upper, "")?;
        Ok(walk)
    }
}

fn open_dir(path: &Path) -> Result<OwnedFd, ContainerFsError> {
    openat(
        nix::fcntl::AT_FDCWD,
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ContainerFsError::sys("open", path.display().to_string(), e))
}

struct Walk {
    /// The image's layers (diff dirs), top first.
    lowers: Vec<OwnedFd>,
    changes: Vec<Change>,
    changed_dirs: HashSet<String>,
    /// Init-layer stubs left out, and directories that hold only those.
    stubs: Vec<String>,
}

impl Walk {
    /// Walks the upper directory `dir`, which is `path` in the container
    /// (`""` for the root).
    fn dir(&mut self, dir: &OwnedFd, path: &str) -> Result<(), ContainerFsError> {
        let mut names: Vec<Vec<u8>> = Vec::new();
        let mut listing = Dir::openat(
            dir.as_fd(),
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| ContainerFsError::sys("open directory", display(path), e))?;
        for ent in listing.iter() {
            let ent = ent.map_err(|e| ContainerFsError::sys("read directory", display(path), e))?;
            let n = ent.file_name().to_bytes();
            if n != b"." && n != b".." {
                names.push(n.to_vec());
            }
        }
        drop(listing);
        names.sort();
        for name in names {
            let child = format!("{path}/{}", String::from_utf8_lossy(&name));
            let name = OsStr::from_bytes(&name);
            let st = match fstatat(dir.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                Err(Errno::ENOENT) => continue, // removed under the walk
                Err(e) => return Err(ContainerFsError::sys("stat", child, e)),
            };
            let child_fd = if file_kind(&st) == SFlag::S_IFDIR {
                match openat(
                    dir.as_fd(),
                    name,
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                ) {
                    Ok(fd) => Some(fd),
                    Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP) => continue,
                    Err(e) => return Err(ContainerFsError::sys("open", child, e)),
                }
            } else {
                None
            };
            self.entry(&child, &st, child_fd.as_ref())?;
            if let Some(fd) = &child_fd {
                self.dir(fd, &child)?;
            }
        }
        Ok(())
    }

    fn entry(
        &mut self,
        path: &str,
        st: &FileStat,
        dir_fd: Option<&OwnedFd>,
    ) -> Result<(), ContainerFsError> {
        let kind = file_kind(st);
        let whiteout = kind == SFlag::S_IFCHR && st.st_rdev == 0;
        let opaque = dir_fd.is_some_and(is_opaque);
        let below = self.lower_stat(path);
        let change_kind = if whiteout || opaque {
            ChangeKind::Deleted
        } else if let Some(low) = &below {
            if kind == SFlag::S_IFDIR && file_kind(low) == SFlag::S_IFDIR && same_dir(st, low) {
                return Ok(());
            }
            if kind == SFlag::S_IFDIR && file_kind(low) == SFlag::S_IFDIR {
                if let Some(fd) = dir_fd {
                    if only_stubs_below(fd, path) && same_owner_mode(st, low) {
                        self.stubs.push(path.to_string());
                        return Ok(());
                    }
                }
            }
            ChangeKind::Modified
        } else {
            if is_init_stub(path, st, dir_fd) {
                self.stubs.push(path.to_string());
                return Ok(());
            }
            ChangeKind::Added
        };
        if kind == SFlag::S_IFDIR {
            self.changed_dirs.insert(path.to_string());
        }
        if matches!(change_kind, ChangeKind::Added | ChangeKind::Deleted) {
            let parent = match path.rfind('/') {
                Some(0) | None => "/",
                Some(i) => &path[..i],
            };
            if parent != "/" && !self.changed_dirs.contains(parent) {
                self.changes.push(Change {
                    kind: ChangeKind::Modified,
                    path: parent.to_string(),
                });
                self.changed_dirs.insert(parent.to_string());
            }
        }
        self.changes.push(Change {
            kind: change_kind,
            path: path.to_string(),
        });
        Ok(())
    }

    /// The path in the topmost image layer that has it (symlinks in the
    /// layers are never followed: they are the image's, not the host's).
    fn lower_stat(&self, path: &str) -> Option<FileStat> {
        let rel = path.trim_start_matches('/');
        let (parent, base) = match rel.rsplit_once('/') {
            Some((p, b)) => (p, b),
            None => ("", rel),
        };
        for layer in &self.lowers {
            let parent_fd = if parent.is_empty() {
                None
            } else {
                let how = OpenHow::new()
                    .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
                    .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
                match openat2(layer.as_fd(), Path::new(parent), how) {
                    Ok(fd) => Some(fd),
                    Err(_) => continue,
                }
            };
            let dir = parent_fd.as_ref().map_or(layer.as_fd(), |f| f.as_fd());
            if let Ok(st) = fstatat(dir, base, AtFlags::AT_SYMLINK_NOFOLLOW) {
                // A whiteout in a layer hides the path of the layers below.
                if file_kind(&st) == SFlag::S_IFCHR && st.st_rdev == 0 {
                    return None;
                }
                return Some(st);
            }
        }
        None
    }
}

fn same_dir(a: &FileStat, b: &FileStat) -> bool {
    a.st_size == b.st_size
        && a.st_mode == b.st_mode
        && a.st_mtime == b.st_mtime
        && a.st_mtime_nsec == b.st_mtime_nsec
}

fn same_owner_mode(a: &FileStat, b: &FileStat) -> bool {
    a.st_mode == b.st_mode && a.st_uid == b.st_uid && a.st_gid == b.st_gid
}

fn is_opaque(fd: &OwnedFd) -> bool {
    let Ok(name) = std::ffi::CString::new(OPAQUE_XATTR) else {
        return false;
    };
    let mut buf = [0u8; 4];
    // SAFETY: fgetxattr writes at most 4 bytes into `buf`, alive for the
    // call; the name is NUL-terminated and the fd open.
    let n = unsafe {
        libc::fgetxattr(
            std::os::fd::AsRawFd::as_raw_fd(fd),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    n == 1 && buf[0] == b'y'
}

/// An empty file or directory the runtime made as a mount point that
/// Docker's init layer would hold.
fn is_init_stub(path: &str, st: &FileStat, dir_fd: Option<&OwnedFd>) -> bool {
    if !INIT_LAYER_PATHS.contains(&path) {
        return false;
    }
    match file_kind(st) {
        SFlag::S_IFREG => st.st_size == 0,
        SFlag::S_IFDIR => dir_fd.is_some_and(|fd| only_stubs_below(fd, path)),
        _ => false,
    }
}

/// Whether everything in the upper directory `fd` (`path`) is an init-layer stub.
fn only_stubs_below(fd: &OwnedFd, path: &str) -> bool {
    let Ok(mut listing) = Dir::openat(
        fd.as_fd(),
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) else {
        return false;
    };
    let mut names = Vec::new();
    for ent in listing.iter() {
        let Ok(ent) = ent else { return false };
        let n = ent.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(n.to_vec());
        }
    }
    drop(listing);
    names.iter().all(|n| {
        let child = format!("{path}/{}", String::from_utf8_lossy(n));
        let name = OsStr::from_bytes(n);
        let Ok(st) = fstatat(fd.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) else {
            return false;
        };
        let child_fd = (file_kind(&st) == SFlag::S_IFDIR)
            .then(|| {
                openat(
                    fd.as_fd(),
                    name,
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .ok()
            })
            .flatten();
        is_init_stub(&child, &st, child_fd.as_ref())
    })
}

fn display(path: &str) -> String {
    if path.is_empty() {
        "/".to_string()
    } else {
        path.to_string()
    }
}
