//! Path resolution confined to the container's root (CVE-2021-30465: a
//! symlink in the image must never redirect a mount to the host).
//!
//! openat2(RESOLVE_IN_ROOT) does it in the kernel; where openat2 is missing,
//! or where missing components have to be created, a component-by-component
//! walk with O_NOFOLLOW does the same in user space, treating `root` as "/"
//! for absolute symlinks and for ".." (like chroot would).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, readlinkat, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstat, mkdirat, Mode, SFlag};

use crate::{CreateKind, RootfsError};

/// Linux's own limit on symlinks followed in one lookup.
const MAX_SYMLINKS: usize = 40;

const PATH_FLAGS: OFlag = OFlag::O_PATH.union(OFlag::O_CLOEXEC);

pub(crate) fn open_in_root(
    root: &Path,
    path: &Path,
    create: Option<CreateKind>,
) -> Result<OwnedFd, RootfsError> {
    let context = || format!("resolve {} in {}", path.display(), root.display());
    let root_fd = openat(
        nix::fcntl::AT_FDCWD,
        root,
        OFlag::O_DIRECTORY | PATH_FLAGS,
        Mode::empty(),
    )
    .map_err(|e| RootfsError::sys(context(), "open root", e))?;
    open_beneath(root_fd.as_fd(), path, create).map_err(|e| RootfsError::sys(context(), "open", e))
}

/// Resolves `path` inside the directory `root`, which acts as "/".
pub(crate) fn open_beneath(
    root: BorrowedFd<'_>,
    path: &Path,
    create: Option<CreateKind>,
) -> Result<OwnedFd, Errno> {
    let relative = relative(path);
    match kernel_resolve(root, &relative) {
        Ok(fd) => return Ok(fd),
        Err(Errno::ENOENT) if create.is_some() => {}
        Err(Errno::ENOSYS | Errno::EPERM) => {} // no openat2, or a seccomp filter refusing it
        Err(e) => return Err(e),
    }
    walk(root, &relative, create)
}

/// `path` without its leading "/" ("" for the root itself).
fn relative(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| !matches!(c, Component::RootDir | Component::Prefix(_)))
        .collect()
}

fn kernel_resolve(root: BorrowedFd<'_>, path: &Path) -> Result<OwnedFd, Errno> {
    let how = OpenHow::new()
        .flags(PATH_FLAGS)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let target = if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    };
    // EAGAIN: a rename or mount elsewhere raced the lookup; the kernel asks to retry.
    let mut tries = 0;
    loop {
        match openat2(root, target, how) {
            Err(Errno::EAGAIN) if tries < 16 => tries += 1,
            other => return other,
        }
    }
}

/// The user-space walk: one component at a time, never following a symlink
/// with the kernel, substituting symlink targets itself.
fn walk(root: BorrowedFd<'_>, path: &Path, create: Option<CreateKind>) -> Result<OwnedFd, Errno> {
    // Stack of opened directories from root (exclusive) down to the current one;
    // ".." pops, which can never go above `root`.
    let mut stack: Vec<OwnedFd> = Vec::new();
    let mut pending: Vec<PathBuf> = components_reversed(path);
    let mut links = 0;
    let mut last: Option<OwnedFd> = None;

    while let Some(name) = pending.pop() {
        let is_final = pending.is_empty();
        last = None;
        if name.as_os_str() == ".." {
            stack.pop();
            continue;
        }
        if name.as_os_str() == "." {
            continue;
        }
        let dir = stack.last().map_or(root, |fd| fd.as_fd());
        let fd = match openat(
            dir,
            name.as_path(),
            PATH_FLAGS | OFlag::O_NOFOLLOW,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) if create.is_some() => {
                create_component(dir, &name, is_final, create)?;
                openat(
                    dir,
                    name.as_path(),
                    PATH_FLAGS | OFlag::O_NOFOLLOW,
                    Mode::empty(),
                )?
            }
            Err(e) => return Err(e),
        };
        let kind = SFlag::from_bits_truncate(fstat(&fd)?.st_mode) & SFlag::S_IFMT;
        if kind == SFlag::S_IFLNK {
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(Errno::ELOOP);
            }
            let target = readlinkat(&fd, "")?;
            let target = Path::new(&target);
            if target.is_absolute() {
                stack.clear();
            }
            pending.extend(components_reversed(target));
            if pending.is_empty() {
                // a link to "/" itself
                last = Some(reopen(root)?);
            }
            continue;
        }
        if is_final {
            last = Some(fd);
        } else {
            if kind != SFlag::S_IFDIR {
                return Err(Errno::ENOTDIR);
            }
            stack.push(fd);
        }
    }
    match last {
        Some(fd) => Ok(fd),
        // the walk ended on "." or ".." (or the path was empty): the current directory
        None => match stack.pop() {
            Some(fd) => Ok(fd),
            None => reopen(root),
        },
    }
}

fn components_reversed(path: &Path) -> Vec<PathBuf> {
    let mut parts: Vec<PathBuf> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(PathBuf::from(n)),
            Component::ParentDir => Some(PathBuf::from("..")),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => None,
        })
        .collect();
    parts.reverse();
    parts
}

fn create_component(
    dir: BorrowedFd<'_>,
    name: &Path,
    is_final: bool,
    create: Option<CreateKind>,
) -> Result<(), Errno> {
    let result = if is_final && create == Some(CreateKind::File) {
        openat(
            dir,
            name,
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        )
        .map(drop)
    } else {
        mkdirat(dir, name, Mode::from_bits_truncate(0o755))
    };
    match result {
        // someone else created it in between: the re-open decides what it is
        Ok(()) | Err(Errno::EEXIST) => Ok(()),
        Err(e) => Err(e),
    }
}

fn reopen(fd: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    openat(fd, ".", PATH_FLAGS, Mode::empty())
}

/// `/proc/self/fd/N`: the path through which a syscall that only takes paths
/// (mount) reaches exactly the inode `fd` refers to.
pub(crate) fn fd_path(fd: BorrowedFd<'_>) -> PathBuf {
    use std::os::fd::AsRawFd;
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::symlink;

    use super::*;

    fn real(fd: &OwnedFd) -> PathBuf {
        std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap_or_default()
    }

    /// The user-space walk (used where openat2 is missing) gives the same answers.
    #[test]
    fn walk_stays_inside_and_creates() {
        let base = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let root = base.path().join("root");
        let host = base.path().join("host");
        std::fs::create_dir_all(root.join("a/b")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir_all(&host).unwrap_or_else(|e| panic!("{e}"));
        let h = host.to_string_lossy().into_owned();
        symlink(&h, root.join("abs")).unwrap_or_else(|e| panic!("{e}"));
        symlink(format!("../../../../../../..{h}"), root.join("a/rel"))
            .unwrap_or_else(|e| panic!("{e}"));
        symlink("b", root.join("a/tob")).unwrap_or_else(|e| panic!("{e}"));
        symlink("/", root.join("toroot")).unwrap_or_else(|e| panic!("{e}"));
        symlink("l2", root.join("l1")).unwrap_or_else(|e| panic!("{e}"));
        symlink("l1", root.join("l2")).unwrap_or_else(|e| panic!("{e}"));
        let root_fd = openat(
            nix::fcntl::AT_FDCWD,
            &root,
            OFlag::O_DIRECTORY | PATH_FLAGS,
            Mode::empty(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let r = root_fd.as_fd();
        let inner = root.join(h.trim_start_matches('/'));

        let fd = walk(r, Path::new("abs/x/y"), Some(CreateKind::Directory))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(real(&fd), inner.join("x/y"));
        let fd =
            walk(r, Path::new("a/rel/f"), Some(CreateKind::File)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(real(&fd), inner.join("f"));
        assert!(inner.join("f").is_file());
        let fd = walk(r, Path::new("a/tob/../../.."), None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(real(&fd), root);
        let fd = walk(r, Path::new("toroot"), None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(real(&fd), root);
        let fd = walk(r, Path::new("a/tob"), None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(real(&fd), root.join("a/b"));
        assert_eq!(
            walk(r, Path::new("l1/x"), Some(CreateKind::Directory)).err(),
            Some(Errno::ELOOP)
        );
        assert_eq!(
            walk(r, Path::new("nope/x"), None).err(),
            Some(Errno::ENOENT)
        );
        std::fs::write(root.join("file"), "").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            walk(r, Path::new("file/x"), Some(CreateKind::Directory)).err(),
            Some(Errno::ENOTDIR)
        );
        assert!(
            std::fs::read_dir(&host).map(|d| d.count()).unwrap_or(1) == 0,
            "host written to"
        );

        // the kernel's resolution agrees where it is available
        if let Ok(fd) = kernel_resolve(r, Path::new("a/rel/f")) {
            assert_eq!(real(&fd), inner.join("f"));
        }
    }
}
