//! Path forms as Docker's archive package handles them, and opening a path
//! inside a root without leaving it.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};

/// Lexically cleaned like Go's `filepath.Clean`: no `//`, no `.`, `..`
/// folded (never above `/` for an absolute path).
pub(crate) fn clean(path: &str) -> String {
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !absolute {
                    parts.push("..");
                }
            }
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    match (absolute, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// Whether `path` names "the contents of" a directory: `x/.` or `.`.
pub(crate) fn specifies_current_dir(path: &str) -> bool {
    path == "." || path.ends_with("/.")
}

/// Whether `path` asserts a directory: it ends in `/` or `/.`.
pub(crate) fn asserts_directory(path: &str) -> bool {
    path.ends_with('/') || specifies_current_dir(path)
}

/// Docker's `PreserveTrailingDotOrSeparator(Join("/", path), path)`: the
/// path inside a container as an absolute, clean path that keeps a
/// trailing `/.` or `/`.
pub(crate) fn container_abs_path(path: &str) -> String {
    let cleaned = clean(&format!("/{path}"));
    if specifies_current_dir(path) && !cleaned.ends_with("/.") {
        if cleaned == "/" {
            return "/.".to_string();
        }
        return format!("{cleaned}/.");
    }
    if path.ends_with('/') && !cleaned.ends_with('/') {
        return format!("{cleaned}/");
    }
    cleaned
}

/// Docker's `SplitPathDirEntry`: the directory and the last element of the
/// cleaned path, where a trailing `.` stays the last element (`a/b/.` →
/// `a/b`, `.`).
pub fn split_path_dir_entry(path: &str) -> (String, String) {
    let mut cleaned = clean(path);
    if specifies_current_dir(path) {
        cleaned = if cleaned == "/" {
            "/.".to_string()
        } else {
            format!("{cleaned}/.")
        };
    }
    match cleaned.rfind('/') {
        Some(0) => ("/".to_string(), cleaned[1..].to_string()),
        Some(i) => (cleaned[..i].to_string(), cleaned[i + 1..].to_string()),
        None => (".".to_string(), cleaned),
    }
}

/// The name the top entry of an archive of `abs` gets (Docker rebases the
/// archive to `filepath.Base(absPath)`): the last element, `.` for `x/.`
/// and for `/` itself (whose contents are archived).
pub(crate) fn archive_base(abs: &str) -> String {
    let (_, base) = split_path_dir_entry(abs);
    if base.is_empty() || base == "/" {
        ".".to_string()
    } else {
        base
    }
}

/// Opens `abs` (absolute, in the form of [`container_abs_path`]) inside
/// `root` as an `O_PATH` fd. Symlinks on the way are followed as if
/// `root` were `/`; the last element is not followed unless
/// `follow_final` or the path ends in `/` or `/.`.
pub(crate) fn open_in_root(root: &Path, abs: &str, follow_final: bool) -> Result<OwnedFd, Errno> {
    let (dir, base) = split_path_dir_entry(abs);
    if follow_final || asserts_directory(abs) || base == "/" || base == "." || base == ".." {
        let fd = rootfs_open(root, Path::new(abs))?;
        // `x/` must be a directory (after following), as for the kernel.
        if asserts_directory(abs) && !is_dir(&nix::sys::stat::fstat(&fd)?) {
            return Err(Errno::ENOTDIR);
        }
        return Ok(fd);
    }
    let parent = rootfs_open(root, Path::new(&dir))?;
    openat(
        parent.as_fd(),
        base.as_str(),
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// `berth_rootfs::open_in_root` with the errno kept.
pub(crate) fn rootfs_open(root: &Path, path: &Path) -> Result<OwnedFd, Errno> {
    berth_rootfs::open_in_root(root, path, None).map_err(|e| e.errno().unwrap_or(Errno::EIO))
}

pub(crate) fn file_kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT
}

pub(crate) fn is_dir(st: &FileStat) -> bool {
    file_kind(st) == SFlag::S_IFDIR
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_keep_docker_forms() {
        assert_eq!(clean("/a//b/./c/../d/"), "/a/b/d");
        assert_eq!(clean("/../.."), "/");
        assert_eq!(clean("a/../.."), "..");
        assert_eq!(container_abs_path("etc"), "/etc");
        assert_eq!(container_abs_path("/etc/"), "/etc/");
        assert_eq!(container_abs_path("/etc/."), "/etc/.");
        assert_eq!(container_abs_path("/"), "/");
        assert_eq!(container_abs_path("."), "/.");
        assert_eq!(container_abs_path("/../etc"), "/etc");
        assert_eq!(split_path_dir_entry("/a/b/."), ("/a/b".into(), ".".into()));
        assert_eq!(split_path_dir_entry("/a/b/"), ("/a".into(), "b".into()));
        assert_eq!(split_path_dir_entry("/a"), ("/".into(), "a".into()));
        assert_eq!(split_path_dir_entry("a"), (".".into(), "a".into()));
        assert_eq!(archive_base("/etc/"), "etc");
        assert_eq!(archive_base("/etc/."), ".");
        assert_eq!(archive_base("/"), ".");
        assert!(asserts_directory("/x/") && asserts_directory("/x/.") && !asserts_directory("/x"));
    }
}
