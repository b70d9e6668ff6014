//! `*at` file-system operations relative to directory descriptors, the building
//! blocks of the escape-proof unpacker. Every path given here is a single name
//! or a path already checked to contain no `..`, and every lookup refuses
//! symlinks (`O_NOFOLLOW`, `RESOLVE_NO_SYMLINKS`).

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstatat, FileStat, Mode, SFlag};
use nix::unistd::{unlinkat, UnlinkatFlags};

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_CLOEXEC)
    .union(OFlag::O_NOFOLLOW);

/// Why a directory could not be reached without leaving the tree or following a symlink.
#[derive(Debug)]
pub(crate) enum Reach {
    /// Refused for safety; the text names the offending component.
    Refused(String),
    Missing,
    Io(Errno),
}

/// Opens `rel` (no `..`, no leading `/`) beneath `root` as a directory, refusing
/// symlinks anywhere on the way. One `openat2` call; falls back to a
/// component-wise walk where openat2 is unavailable.
pub(crate) fn open_dir_beneath(root: BorrowedFd<'_>, rel: &[u8]) -> Result<OwnedFd, Reach> {
    if rel.is_empty() {
        return openat(root, ".", DIR_FLAGS, Mode::empty()).map_err(Reach::Io);
    }
    let how = OpenHow::new().flags(DIR_FLAGS).resolve(
        ResolveFlag::RESOLVE_BENEATH
            | ResolveFlag::RESOLVE_NO_SYMLINKS
            | ResolveFlag::RESOLVE_NO_MAGICLINKS,
    );
    match openat2(root, rel, how) {
        Ok(fd) => Ok(fd),
        Err(Errno::ENOENT) => Err(Reach::Missing),
        Err(Errno::ENOSYS | Errno::EPERM) => walk(root, rel, false),
        // Find out which component is the symlink or non-directory.
        Err(Errno::ELOOP | Errno::ENOTDIR | Errno::EXDEV) => walk(root, rel, false),
        Err(e) => Err(Reach::Io(e)),
    }
}

/// Like [`open_dir_beneath`] but creates missing directories (mode 0755, as
/// Docker does for parents a tar does not list).
pub(crate) fn open_or_create_dir_beneath(
    root: BorrowedFd<'_>,
    rel: &[u8],
) -> Result<OwnedFd, Reach> {
    match open_dir_beneath(root, rel) {
        Err(Reach::Missing) => walk(root, rel, true),
        other => other,
    }
}

fn walk(root: BorrowedFd<'_>, rel: &[u8], create: bool) -> Result<OwnedFd, Reach> {
    let mut cur: Option<OwnedFd> = None;
    let mut consumed = 0usize;
    for comp in rel.split(|b| *b == b'/') {
        consumed += comp.len() + 1;
        if comp.is_empty() || comp == b"." {
            continue;
        }
        if comp == b".." {
            return Err(Reach::Refused("path escapes the layer root".into()));
        }
        let dir = cur.as_ref().map_or(root, |f| f.as_fd());
        let next = match openat(dir, comp, DIR_FLAGS, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) if create => {
                match nix::sys::stat::mkdirat(dir, comp, Mode::from_bits_truncate(0o755)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(Reach::Io(e)),
                }
                openat(dir, comp, DIR_FLAGS, Mode::empty())
                    .map_err(|e| classify(dir, comp, rel, consumed, e))?
            }
            Err(e) => return Err(classify(dir, comp, rel, consumed, e)),
        };
        cur = Some(next);
    }
    match cur {
        Some(fd) => Ok(fd),
        None => openat(root, ".", DIR_FLAGS, Mode::empty()).map_err(Reach::Io),
    }
}

fn classify(dir: BorrowedFd<'_>, comp: &[u8], rel: &[u8], consumed: usize, e: Errno) -> Reach {
    let prefix =
        String::from_utf8_lossy(&rel[..consumed.saturating_sub(1).min(rel.len())]).into_owned();
    match e {
        Errno::ENOENT => Reach::Missing,
        Errno::ELOOP | Errno::ENOTDIR => match lstat_at(dir, comp) {
            Ok(st) if is_kind(&st, SFlag::S_IFLNK) => Reach::Refused(format!(
                "path goes through symlink {prefix:?} (writes never follow symlinks)"
            )),
            Ok(_) => Reach::Refused(format!("parent {prefix:?} is not a directory")),
            Err(e) => Reach::Io(e),
        },
        e => Reach::Io(e),
    }
}

pub(crate) fn lstat_at(dir: BorrowedFd<'_>, name: &[u8]) -> Result<FileStat, Errno> {
    fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
}

pub(crate) fn is_kind(st: &FileStat, kind: SFlag) -> bool {
    (st.st_mode & libc::S_IFMT) == kind.bits()
}

/// Removes `name` in `dir`, recursively if it is a directory; missing is fine.
pub(crate) fn remove_at(dir: BorrowedFd<'_>, name: &[u8]) -> Result<(), Errno> {
    let st = match lstat_at(dir, name) {
        Ok(st) => st,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    if is_kind(&st, SFlag::S_IFDIR) {
        let fd = openat(dir, name, DIR_FLAGS, Mode::empty())?;
        empty_dir(fd)?;
        unlinkat(dir, name, UnlinkatFlags::RemoveDir)
    } else {
        unlinkat(dir, name, UnlinkatFlags::NoRemoveDir)
    }
}

fn empty_dir(fd: OwnedFd) -> Result<(), Errno> {
    let dup = nix::unistd::dup(&fd)?;
    let mut d = nix::dir::Dir::from_fd(dup)?;
    let mut names: Vec<Vec<u8>> = Vec::new();
    for ent in d.iter() {
        let ent = ent?;
        let n = ent.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(n.to_vec());
        }
    }
    for n in names {
        remove_at(fd.as_fd(), &n)?;
    }
    Ok(())
}

/// Sets an extended attribute on an open file or directory.
pub(crate) fn fsetxattr(fd: BorrowedFd<'_>, name: &[u8], value: &[u8]) -> Result<(), Errno> {
    let cname = CString::new(name).map_err(|_| Errno::EINVAL)?;
    // SAFETY: fd is a valid open descriptor, cname is NUL-terminated and value
    // is a valid buffer of value.len() bytes, all borrowed for the call.
    let rc = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            cname.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    Errno::result(rc).map(drop)
}

/// Sets an extended attribute on the inode an `O_PATH` descriptor refers to
/// (devices, fifos: opening them for real could block or reach a driver).
/// `/proc/self/fd/N` resolves to the inode itself, never through a symlink.
pub(crate) fn setxattr_opath(fd: BorrowedFd<'_>, name: &[u8], value: &[u8]) -> Result<(), Errno> {
    let path =
        CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).map_err(|_| Errno::EINVAL)?;
    let cname = CString::new(name).map_err(|_| Errno::EINVAL)?;
    // SAFETY: both strings are NUL-terminated and value is valid for its
    // length for the duration of the call.
    let rc = unsafe {
        libc::setxattr(
            path.as_ptr(),
            cname.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    Errno::result(rc).map(drop)
}

/// Opens `name` in `dir` as an `O_PATH` descriptor without following it.
pub(crate) fn open_path_at(dir: BorrowedFd<'_>, name: &[u8]) -> Result<OwnedFd, Errno> {
    openat(
        dir,
        name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}
