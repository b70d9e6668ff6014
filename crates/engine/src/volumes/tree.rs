//! Copying a directory tree with everything that makes it the same tree:
//! owners, modes (setuid bits too), times, xattrs, symlinks, device nodes,
//! fifos and hard links inside the tree (copy-up, snapshots, restores).
//!
//! Every object is reached relative to its parent's fd with `O_NOFOLLOW`,
//! so a container that swaps a directory for a symlink while its volume is
//! copied cannot make the copy read or write outside the trees. File data
//! is cloned (`FICLONE`, a reflink on btrfs/XFS) where the filesystem can,
//! else copied (`copy_file_range`): a copy never shares an inode with its
//! source, so later writes to one never show in the other.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{
    fchmod, fchmodat, fstatat, mkdirat, mknodat, utimensat, FchmodatFlags, FileStat, Mode, SFlag,
    UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, linkat, symlinkat, Gid, Uid};

/// `FICLONE` (`_IOW(0x94, 9, int)`).
const FICLONE: libc::c_ulong = 0x4004_9409;

fn kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT
}

/// Opens a directory for reading its entries.
pub(crate) fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    openat(
        nix::fcntl::AT_FDCWD,
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )
    .map_err(io::Error::from)
}

/// Opens the directory `name` below `dir` without following a symlink.
fn open_dir_at(dir: BorrowedFd<'_>, name: &OsStr) -> Result<OwnedFd, Errno> {
    openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )
}

/// The names in a directory, sorted, without `.` and `..`.
pub(crate) fn entries(dir: BorrowedFd<'_>) -> io::Result<Vec<OsString>> {
    let fd = openat(
        dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut d = nix::dir::Dir::from_fd(fd)?;
    let mut names = Vec::new();
    for ent in d.iter() {
        let ent = ent?;
        let name = ent.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(name).to_os_string());
        }
    }
    names.sort();
    Ok(names)
}

/// Whether `path` is a directory with nothing in it (missing counts as empty).
pub(crate) fn is_empty(path: &Path) -> io::Result<bool> {
    match std::fs::read_dir(path) {
        Ok(mut rd) => Ok(rd.next().is_none()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e),
    }
}

/// Removes `path` and everything below it; missing is fine.
pub(crate) fn remove_all(path: &Path) -> io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Bytes of the regular files below `path`, each inode counted once.
pub(crate) fn size(path: &Path) -> u64 {
    fn walk(dir: BorrowedFd<'_>, seen: &mut std::collections::HashSet<(u64, u64)>) -> u64 {
        let Ok(names) = entries(dir) else { return 0 };
        let mut total = 0;
        for name in names {
            let Ok(st) = fstatat(dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) else {
                continue;
            };
            match kind(&st) {
                SFlag::S_IFDIR => {
                    if let Ok(sub) = open_dir_at(dir, &name) {
                        total += walk(sub.as_fd(), seen);
                    }
                }
                SFlag::S_IFREG if seen.insert((st.st_dev, st.st_ino)) => {
                    total += u64::try_from(st.st_size).unwrap_or(0);
                }
                _ => {}
            }
        }
        total
    }
    match open_dir(path) {
        Ok(fd) => walk(fd.as_fd(), &mut Default::default()),
        Err(_) => 0,
    }
}

/// Copies trees; remembers hard links so that files linked together in
/// the source are linked together in the copy (and nowhere else).
pub(crate) struct TreeCopier {
    /// (dev, ino) of a multiply-linked source file → its path in the copy,
    /// relative to the copy's root.
    links: HashMap<(u64, u64), PathBuf>,
    dst_root: OwnedFd,
    /// Test-only crash point, ticked once per object copied.
    fault: super::fault::Countdown,
    /// Filling a directory others may be writing to (see [`Self::fill_dir`]).
    fill: bool,
}

/// Names a filling copy writes a file under before renaming it: what a
/// crash leaves of an unfinished file, removed by the next fill.
const FILL_TMP_PREFIX: &str = ".berth-copyup-";

impl TreeCopier {
    /// Copies the contents of the directory `src` (not followed if a
    /// symlink) into the existing directory `dst`, then gives `dst` the
    /// owner, mode, xattrs and times of `src`. `fault_point` names the
    /// operation for [`super::fault`].
    pub(crate) fn copy_dir(src: BorrowedFd<'_>, dst: &Path, fault_point: &str) -> io::Result<()> {
        Self::run(src, dst, fault_point, false)
    }

    /// Copies what `dst` lacks of `src` into `dst`, which may already hold
    /// files (of an earlier, interrupted fill, or written by containers
    /// using it): nothing in `dst` is replaced or removed, directories
    /// present in both are filled in turn, and each file is written under
    /// a temporary name and renamed into place without replacing, so that
    /// a crash never leaves a partial file under a real name.
    pub(crate) fn fill_dir(src: BorrowedFd<'_>, dst: &Path, fault_point: &str) -> io::Result<()> {
        Self::run(src, dst, fault_point, true)
    }

    fn run(src: BorrowedFd<'_>, dst: &Path, fault_point: &str, fill: bool) -> io::Result<()> {
        let dst_fd = open_dir(dst)?;
        let mut c = TreeCopier {
            links: HashMap::new(),
            dst_root: dst_fd.try_clone()?,
            fault: super::fault::Countdown::new(fault_point),
            fill,
        };
        c.contents(src, dst_fd.as_fd(), Path::new(""))
            .map_err(|e| {
                io::Error::new(e.kind(), format!("copying into {}: {e}", dst.display()))
            })?;
        let st = nix::sys::stat::fstat(src)?;
        set_attrs_fd(src, &st, dst_fd.as_fd())
    }

    /// Whether an object was created: in a fill, one a user of the volume
    /// made meanwhile under that name wins.
    fn created(&self, made: nix::Result<()>) -> io::Result<bool> {
        match made {
            Ok(()) => Ok(true),
            Err(Errno::EEXIST) if self.fill => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// In a fill: removes the unfinished files of an interrupted fill and
    /// says which names `dst` already has.
    fn existing(&self, dst: BorrowedFd<'_>) -> io::Result<std::collections::HashSet<OsString>> {
        if !self.fill {
            return Ok(Default::default());
        }
        let mut names = std::collections::HashSet::new();
        for name in entries(dst)? {
            if name.as_bytes().starts_with(FILL_TMP_PREFIX.as_bytes()) {
                match nix::unistd::unlinkat(
                    dst,
                    name.as_os_str(),
                    nix::unistd::UnlinkatFlags::NoRemoveDir,
                ) {
                    Ok(()) | Err(Errno::ENOENT) => {}
                    Err(e) => return Err(e.into()),
                }
                continue;
            }
            names.insert(name);
        }
        Ok(names)
    }

    fn contents(&mut self, src: BorrowedFd<'_>, dst: BorrowedFd<'_>, rel: &Path) -> io::Result<()> {
        let existing = self.existing(dst)?;
        for name in entries(src)? {
            let present = existing.contains(&name);
            let name = name.as_os_str();
            let st = match fstatat(src, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) => st,
                // Removed while we copy (a running container): skip it.
                Err(Errno::ENOENT) => continue,
                Err(e) => return Err(e.into()),
            };
            let here = rel.join(name);
            if present && kind(&st) != SFlag::S_IFDIR {
                continue;
            }
            match kind(&st) {
                SFlag::S_IFDIR => {
                    let s = match open_dir_at(src, name) {
                        Ok(fd) => fd,
                        Err(Errno::ENOENT | Errno::ELOOP | Errno::ENOTDIR) => continue,
                        Err(e) => return Err(e.into()),
                    };
                    if present {
                        // Filled in turn if it is a directory (never
                        // followed if a symlink), else left as it is.
                        match open_dir_at(dst, name) {
                            Ok(d) => {
                                self.contents(s.as_fd(), d.as_fd(), &here)?;
                                set_attrs_fd(s.as_fd(), &st, d.as_fd())?;
                            }
                            Err(Errno::ENOTDIR | Errno::ELOOP | Errno::ENOENT) => {}
                            Err(e) => return Err(e.into()),
                        }
                        self.fault.tick();
                        continue;
                    }
                    if !self.created(mkdirat(dst, name, Mode::from_bits_truncate(0o700)))? {
                        continue;
                    }
                    let d = open_dir_at(dst, name)?;
                    self.contents(s.as_fd(), d.as_fd(), &here)?;
                    set_attrs_fd(s.as_fd(), &st, d.as_fd())?;
                }
                SFlag::S_IFREG => {
                    if st.st_nlink > 1 {
                        if let Some(first) = self.links.get(&(st.st_dev, st.st_ino)) {
                            let linked = linkat(
                                self.dst_root.as_fd(),
                                first.as_path(),
                                dst,
                                name,
                                AtFlags::empty(),
                            );
                            self.created(linked)?;
                            self.fault.tick();
                            continue;
                        }
                    }
                    let s = match openat(
                        src,
                        name,
                        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    ) {
                        Ok(fd) => fd,
                        Err(Errno::ENOENT | Errno::ELOOP) => continue,
                        Err(e) => return Err(e.into()),
                    };
                    let mut tmp = OsString::from(FILL_TMP_PREFIX);
                    tmp.push(name);
                    let create_as = if self.fill { tmp.as_os_str() } else { name };
                    let d = openat(
                        dst,
                        create_as,
                        OFlag::O_WRONLY
                            | OFlag::O_CREAT
                            | OFlag::O_EXCL
                            | OFlag::O_NOFOLLOW
                            | OFlag::O_CLOEXEC,
                        Mode::from_bits_truncate(0o600),
                    )?;
                    copy_data(&s, &d)?;
                    set_attrs_fd(s.as_fd(), &st, d.as_fd())?;
                    if self.fill {
                        match nix::fcntl::renameat2(
                            dst,
                            create_as,
                            dst,
                            name,
                            nix::fcntl::RenameFlags::RENAME_NOREPLACE,
                        ) {
                            Ok(()) => {}
                            // Written meanwhile by a user of the volume: theirs stays.
                            Err(Errno::EEXIST) => {
                                nix::unistd::unlinkat(
                                    dst,
                                    create_as,
                                    nix::unistd::UnlinkatFlags::NoRemoveDir,
                                )?;
                                self.fault.tick();
                                continue;
                            }
                            Err(e) => return Err(e.into()),
                        }
                    }
                    if st.st_nlink > 1 {
                        self.links.insert((st.st_dev, st.st_ino), here);
                    }
                }
                SFlag::S_IFLNK => {
                    let target = match readlinkat(src, name) {
                        Ok(t) => t,
                        Err(Errno::ENOENT | Errno::EINVAL) => continue,
                        Err(e) => return Err(e.into()),
                    };
                    if self.created(symlinkat(target.as_os_str(), dst, name))? {
                        set_attrs_at(src, dst, name, &st, false)?;
                    }
                }
                SFlag::S_IFCHR | SFlag::S_IFBLK | SFlag::S_IFIFO => {
                    let made = mknodat(
                        dst,
                        name,
                        kind(&st),
                        Mode::from_bits_truncate(0o600),
                        st.st_rdev,
                    );
                    if self.created(made)? {
                        set_attrs_at(src, dst, name, &st, true)?;
                    }
                }
                // Sockets belong to the process that bound them.
                _ => {}
            }
            self.fault.tick();
        }
        Ok(())
    }
}

/// A reflink where the filesystem can, else a data copy.
fn copy_data(src: &OwnedFd, dst: &OwnedFd) -> io::Result<()> {
    // SAFETY: FICLONE takes the source fd as its argument; both fds are open.
    let r = unsafe { libc::ioctl(dst.as_raw_fd(), FICLONE as _, src.as_raw_fd()) };
    if r == 0 {
        return Ok(());
    }
    let mut s = File::from(src.try_clone()?);
    let mut d = File::from(dst.try_clone()?);
    io::copy(&mut s, &mut d)?;
    Ok(())
}

fn proc_path(dir: BorrowedFd<'_>, name: &OsStr) -> PathBuf {
    let mut p = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    p.push(name);
    p
}

fn proc_fd(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Copies the xattrs of `from` to `to` (paths that are not followed).
/// Attributes the target refuses (a `security.` one without the right, a
/// filesystem without user xattrs) are skipped, as `cp -a` does.
/// `deref`: the paths are `/proc/self/fd/N` links to the objects.
fn copy_xattrs(from: &Path, to: &Path, deref: bool) -> io::Result<()> {
    let listed = if deref {
        xattr::list_deref(from)
    } else {
        xattr::list(from)
    };
    let names = match listed {
        Ok(n) => n,
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTSUP) | Some(libc::EPERM)) => {
            return Ok(())
        }
        Err(e) => return Err(e),
    };
    for name in names {
        let value = if deref {
            xattr::get_deref(from, &name)?
        } else {
            xattr::get(from, &name)?
        };
        let Some(value) = value else {
            continue;
        };
        let set = if deref {
            xattr::set_deref(to, &name, &value)
        } else {
            xattr::set(to, &name, &value)
        };
        if let Err(e) = set {
            match e.raw_os_error() {
                Some(libc::ENOTSUP) | Some(libc::EPERM) | Some(libc::EACCES) => {
                    tracing::debug!("xattr {:?} of {}: {e}", name, to.display());
                }
                _ => return Err(e),
            }
        }
    }
    Ok(())
}

fn times(st: &FileStat) -> (TimeSpec, TimeSpec) {
    (
        TimeSpec::new(st.st_atime, st.st_atime_nsec),
        TimeSpec::new(st.st_mtime, st.st_mtime_nsec),
    )
}

/// Owner, then mode (a chown clears setuid bits), xattrs, times.
fn set_attrs_fd(src: BorrowedFd<'_>, st: &FileStat, dst: BorrowedFd<'_>) -> io::Result<()> {
    nix::unistd::fchown(
        dst,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    )?;
    fchmod(dst, Mode::from_bits_truncate(st.st_mode & 0o7777))?;
    copy_xattrs(&proc_fd(src), &proc_fd(dst), true)?;
    let (atime, mtime) = times(st);
    nix::sys::stat::futimens(dst, &atime, &mtime)?;
    Ok(())
}

/// The same for objects that cannot be opened (symlinks, devices).
fn set_attrs_at(
    src_dir: BorrowedFd<'_>,
    dst_dir: BorrowedFd<'_>,
    name: &OsStr,
    st: &FileStat,
    chmod: bool,
) -> io::Result<()> {
    fchownat(
        dst_dir,
        name,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )?;
    if chmod {
        fchmodat(
            dst_dir,
            name,
            Mode::from_bits_truncate(st.st_mode & 0o7777),
            FchmodatFlags::FollowSymlink,
        )?;
    }
    copy_xattrs(&proc_path(src_dir, name), &proc_path(dst_dir, name), false)?;
    let (atime, mtime) = times(st);
    utimensat(
        dst_dir,
        name,
        &atime,
        &mtime,
        UtimensatFlags::NoFollowSymlink,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn copies_owners_modes_links_xattrs() {
        let tmp = berth_testutil::TempDir::new("volume-tree").unwrap();
        let src = tmp.join("src");
        std::fs::create_dir_all(src.join("sub/deep")).unwrap();
        std::fs::write(src.join("sub/file"), b"hello").unwrap();
        std::fs::hard_link(src.join("sub/file"), src.join("hard")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", src.join("abs-link")).unwrap();
        std::os::unix::fs::symlink("sub/file", src.join("rel-link")).unwrap();
        nix::unistd::mkfifo(&src.join("fifo"), Mode::from_bits_truncate(0o640)).unwrap();
        std::os::unix::fs::chown(src.join("sub"), Some(1000), Some(1000)).unwrap();
        std::os::unix::fs::lchown(src.join("abs-link"), Some(1001), Some(1002)).unwrap();
        std::fs::set_permissions(src.join("sub"), std::fs::Permissions::from_mode(0o750)).unwrap();
        std::fs::set_permissions(
            src.join("sub/file"),
            std::fs::Permissions::from_mode(0o4755),
        )
        .unwrap();
        let xattrs = xattr::set(src.join("sub/file"), "user.berth", b"v").is_ok();
        std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o711)).unwrap();

        let dst = tmp.join("dst");
        std::fs::create_dir(&dst).unwrap();
        let src_fd = open_dir(&src).unwrap();
        TreeCopier::copy_dir(src_fd.as_fd(), &dst, "test").unwrap();

        let m = |p: &str| std::fs::symlink_metadata(dst.join(p)).unwrap();
        assert_eq!(m("").mode() & 0o7777, 0o711);
        assert_eq!((m("sub").uid(), m("sub").gid()), (1000, 1000));
        assert_eq!(m("sub").mode() & 0o7777, 0o750);
        assert_eq!(m("sub/file").mode() & 0o7777, 0o4755);
        assert_eq!(std::fs::read(dst.join("sub/file")).unwrap(), b"hello");
        assert_eq!(m("hard").ino(), m("sub/file").ino());
        assert_ne!(
            m("hard").ino(),
            std::fs::metadata(src.join("hard")).unwrap().ino()
        );
        assert_eq!(
            std::fs::read_link(dst.join("abs-link")).unwrap(),
            Path::new("/etc/passwd")
        );
        assert_eq!((m("abs-link").uid(), m("abs-link").gid()), (1001, 1002));
        assert!(m("fifo").file_type().is_fifo_like());
        assert!(m("sub/deep").is_dir());
        assert_eq!(
            m("sub/file").mtime(),
            std::fs::metadata(src.join("sub/file")).unwrap().mtime()
        );
        if xattrs {
            assert_eq!(
                xattr::get(dst.join("sub/file"), "user.berth")
                    .unwrap()
                    .unwrap(),
                b"v"
            );
        }
        // The copy is independent of its source.
        std::fs::write(dst.join("sub/file"), b"changed").unwrap();
        assert_eq!(std::fs::read(src.join("sub/file")).unwrap(), b"hello");
        assert_eq!(size(&dst), 7);
        remove_all(&dst).unwrap();
        assert!(is_empty(&dst).unwrap());
    }

    #[test]
    fn fill_keeps_what_is_there_and_finishes_the_rest() {
        let tmp = berth_testutil::TempDir::new("volume-fill").unwrap();
        let src = tmp.join("src");
        std::fs::create_dir_all(src.join("d")).unwrap();
        for f in ["a", "b", "d/c"] {
            std::fs::write(src.join(f), format!("image {f}")).unwrap();
        }
        std::os::unix::fs::symlink("a", src.join("l")).unwrap();
        // An interrupted fill: `a` done, `d` made, `b` half-written under
        // its temporary name; a user wrote `d/c` and `u` meanwhile.
        let dst = tmp.join("dst");
        std::fs::create_dir_all(dst.join("d")).unwrap();
        std::fs::write(dst.join("a"), "image a").unwrap();
        std::fs::write(dst.join(format!("{FILL_TMP_PREFIX}b")), "ima").unwrap();
        std::fs::write(dst.join("d/c"), "user c").unwrap();
        std::fs::write(dst.join("u"), "user u").unwrap();
        let src_fd = open_dir(&src).unwrap();
        TreeCopier::fill_dir(src_fd.as_fd(), &dst, "test").unwrap();
        let read = |p: &str| std::fs::read_to_string(dst.join(p)).unwrap();
        assert_eq!(read("a"), "image a");
        assert_eq!(read("b"), "image b");
        assert_eq!(read("d/c"), "user c");
        assert_eq!(read("u"), "user u");
        assert_eq!(std::fs::read_link(dst.join("l")).unwrap(), Path::new("a"));
        let mut names: Vec<_> = entries(open_dir(&dst).unwrap().as_fd())
            .unwrap()
            .into_iter()
            .map(|n| n.to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["a", "b", "d", "l", "u"]);
    }

    #[test]
    fn copies_symlink_xattrs() {
        let tmp = berth_testutil::TempDir::new("volume-lxattr").unwrap();
        let src = tmp.join("src");
        std::fs::create_dir(&src).unwrap();
        std::os::unix::fs::symlink("nowhere", src.join("l")).unwrap();
        // `user.*` is refused on symlinks; `trusted.*` needs root.
        if xattr::set(src.join("l"), "trusted.berth", b"v").is_err() {
            eprintln!("skipped: no trusted.* xattrs on symlinks here");
            return;
        }
        let dst = tmp.join("dst");
        std::fs::create_dir(&dst).unwrap();
        TreeCopier::copy_dir(open_dir(&src).unwrap().as_fd(), &dst, "test").unwrap();
        assert_eq!(
            xattr::get(dst.join("l"), "trusted.berth")
                .unwrap()
                .as_deref(),
            Some(&b"v"[..])
        );
    }

    trait FifoLike {
        fn is_fifo_like(&self) -> bool;
    }
    impl FifoLike for std::fs::FileType {
        fn is_fifo_like(&self) -> bool {
            std::os::unix::fs::FileTypeExt::is_fifo(self)
        }
    }
}
