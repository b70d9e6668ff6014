//! Creating each kind of tar entry inside the layer directory. Every call is
//! relative to a directory descriptor reached without symlinks, and none
//! follows the final path component.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{
    fchmod, fchmodat, futimens, mkdirat, mknodat, utimensat, FchmodatFlags, Mode, SFlag,
    UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, Gid, Uid};

use super::{
    entry_io, entry_io_error, normalize, split_parent, Meta, Unpacker, OPAQUE_MARKER, OPAQUE_XATTR,
    WHITEOUT_META_PREFIX, WHITEOUT_PREFIX,
};
use crate::error::ImageError;
use crate::layer::fsops::{self, Reach};

/// Starts writing the file's dirty pages to disk without waiting for them.
///
/// A durable apply ends with one `syncfs`. Without this, nothing reaches the
/// disk before that call (the kernel's background writeback starts only at
/// `dirty_background_ratio` of memory, gigabytes on a large host), so the
/// whole layer would be written while `apply` waits. Started per file, the
/// writes overlap with unpacking the next entries, and the final `syncfs`
/// mostly waits for writes already under way plus the journal commit.
///
/// Only a hint: a file system without it (or a failing write, which the
/// `syncfs` reports) must not fail the apply, so the result is ignored.
fn start_writeback(fd: BorrowedFd<'_>) {
    use std::os::fd::AsRawFd;
    // SAFETY: plain syscall on a descriptor borrowed for the call's duration;
    // no memory is passed.
    let _ = unsafe { libc::sync_file_range(fd.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE) };
}

/// Runs `create`; when the name is taken, removes what is there (never
/// following it) and runs it once more, the way `tar -x` replaces entries.
fn create_replacing<T>(
    dir: BorrowedFd<'_>,
    name: &[u8],
    fail: impl Fn(&'static str, Errno) -> ImageError,
    op: &'static str,
    mut create: impl FnMut() -> Result<T, Errno>,
) -> Result<T, ImageError> {
    match create() {
        Err(Errno::EEXIST) => {
            fsops::remove_at(dir, name).map_err(|e| fail("replace existing entry", e))?;
            create()
        }
        other => other,
    }
    .map_err(|e| fail(op, e))
}

/// Owner of an entry that is not opened (symlink, node, whiteout), set by
/// name without following it.
fn lchown_at(dir: BorrowedFd<'_>, name: &[u8], meta: &Meta) -> Result<(), Errno> {
    fchownat(
        dir,
        name,
        Some(Uid::from_raw(meta.uid)),
        Some(Gid::from_raw(meta.gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
}

/// Times of an entry that is not opened, set by name without following it.
fn set_times_at(dir: BorrowedFd<'_>, name: &[u8], meta: &Meta) -> Result<(), Errno> {
    utimensat(
        dir,
        name,
        &meta.atime,
        &meta.mtime,
        UtimensatFlags::NoFollowSymlink,
    )
}

impl Unpacker<'_> {
    pub(super) fn root_dir(&mut self, raw: &[u8], meta: Meta) -> Result<(), ImageError> {
        let root = self.root.as_fd();
        fchown(
            root,
            Some(Uid::from_raw(meta.uid)),
            Some(Gid::from_raw(meta.gid)),
        )
        .map_err(|e| self.fail(raw, "fchown", e))?;
        fchmod(root, Mode::from_bits_truncate(meta.mode))
            .map_err(|e| self.fail(raw, "fchmod", e))?;
        self.set_xattrs_fd(raw, root, &meta)?;
        self.deferred_dirs
            .push((Vec::new(), meta.atime, meta.mtime));
        Ok(())
    }

    pub(super) fn whiteout(
        &mut self,
        raw: &[u8],
        parent: &[u8],
        name: &[u8],
        meta: &Meta,
    ) -> Result<(), ImageError> {
        if name == OPAQUE_MARKER {
            let dir = self.parent_fd(parent, raw)?;
            return fsops::fsetxattr(dir, OPAQUE_XATTR, b"y")
                .map_err(|e| self.fail(raw, "set opaque xattr", e));
        }
        if name.starts_with(WHITEOUT_META_PREFIX) {
            // aufs metadata (.wh..wh.plnk, .wh..wh.aufs): meaningless on overlay.
            return Ok(());
        }
        let target = &name[WHITEOUT_PREFIX.len()..];
        if target.is_empty() || target == b"." || target == b".." {
            return Err(self.refuse(raw, "invalid whiteout name"));
        }
        let label = self.label;
        let dir = self.parent_fd(parent, raw)?;
        let fail = |op, e| entry_io(label, raw, op, e);
        fsops::remove_at(dir, target).map_err(|e| fail("remove whited-out entry", e))?;
        mknodat(dir, target, SFlag::S_IFCHR, Mode::empty(), 0)
            .map_err(|e| fail("mknod whiteout", e))?;
        lchown_at(dir, target, meta).map_err(|e| fail("lchown whiteout", e))?;
        set_times_at(dir, target, meta).map_err(|e| fail("set whiteout times", e))
    }

    pub(super) fn regular<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        raw: &[u8],
        parent: &[u8],
        name: &[u8],
        meta: &Meta,
    ) -> Result<(), ImageError> {
        let label = self.label;
        let fail = |op, e| entry_io(label, raw, op, e);
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mut buf = std::mem::take(&mut self.buf);
        let res = (|| {
            let dir = self.parent_fd(parent, raw)?;
            let fd = create_replacing(dir, name, fail, "create file", || {
                openat(dir, name, flags, Mode::from_bits_truncate(0o600))
            })?;
            let mut file = File::from(fd);
            let mut written = 0u64;
            loop {
                let n = match entry.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(source) => {
                        return Err(ImageError::LayerTar {
                            layer: label.to_string(),
                            source,
                        })
                    }
                };
                file.write_all(&buf[..n])
                    .map_err(|e| entry_io_error(label, raw, "write", e))?;
                written += n as u64;
            }
            self.size += written;
            let fd = file.as_fd();
            if self.start_writeback && written > 0 {
                start_writeback(fd);
            }
            fchown(
                fd,
                Some(Uid::from_raw(meta.uid)),
                Some(Gid::from_raw(meta.gid)),
            )
            .map_err(|e| fail("fchown", e))?;
            // After chown, which clears set-id bits and file capabilities.
            fchmod(fd, Mode::from_bits_truncate(meta.mode)).map_err(|e| fail("fchmod", e))?;
            self.set_xattrs_fd(raw, fd, meta)?;
            futimens(fd, &meta.atime, &meta.mtime).map_err(|e| fail("set times", e))
        })();
        self.buf = buf;
        res
    }

    pub(super) fn directory(
        &mut self,
        raw: &[u8],
        path: &[u8],
        parent: &[u8],
        name: &[u8],
        meta: Meta,
    ) -> Result<(), ImageError> {
        let label = self.label;
        let fail = |op, e| entry_io(label, raw, op, e);
        let dir = self.parent_fd(parent, raw)?;
        match mkdirat(dir, name, Mode::from_bits_truncate(0o700)) {
            Ok(()) => {}
            Err(Errno::EEXIST) => {
                let st = fsops::lstat_at(dir, name).map_err(|e| fail("lstat", e))?;
                if !fsops::is_kind(&st, SFlag::S_IFDIR) {
                    fsops::remove_at(dir, name).map_err(|e| fail("replace existing entry", e))?;
                    mkdirat(dir, name, Mode::from_bits_truncate(0o700))
                        .map_err(|e| fail("mkdir", e))?;
                }
            }
            Err(e) => return Err(fail("mkdir", e)),
        }
        let own = openat(
            dir,
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| fail("open directory", e))?;
        fchown(
            &own,
            Some(Uid::from_raw(meta.uid)),
            Some(Gid::from_raw(meta.gid)),
        )
        .map_err(|e| fail("fchown", e))?;
        fchmod(&own, Mode::from_bits_truncate(meta.mode)).map_err(|e| fail("fchmod", e))?;
        self.set_xattrs_fd(raw, own.as_fd(), &meta)?;
        self.deferred_dirs
            .push((path.to_vec(), meta.atime, meta.mtime));
        Ok(())
    }

    pub(super) fn symlink(
        &mut self,
        raw: &[u8],
        parent: &[u8],
        name: &[u8],
        target: &[u8],
        meta: &Meta,
    ) -> Result<(), ImageError> {
        let label = self.label;
        let fail = |op, e| entry_io(label, raw, op, e);
        if target.contains(&0) {
            return Err(self.refuse(raw, "symlink target contains a NUL byte"));
        }
        let dir = self.parent_fd(parent, raw)?;
        create_replacing(dir, name, fail, "symlink", || symlinkat(target, dir, name))?;
        lchown_at(dir, name, meta).map_err(|e| fail("lchown", e))?;
        if !meta.xattrs.is_empty() {
            let p = fsops::open_path_at(dir, name).map_err(|e| fail("open symlink", e))?;
            self.set_xattrs_opath(raw, p.as_fd(), meta)?;
        }
        let dir = self.parent_fd(parent, raw)?;
        set_times_at(dir, name, meta).map_err(|e| fail("set times", e))
    }

    pub(super) fn node(
        &mut self,
        raw: &[u8],
        parent: &[u8],
        name: &[u8],
        kind: SFlag,
        dev: libc::dev_t,
        meta: &Meta,
    ) -> Result<(), ImageError> {
        let label = self.label;
        let fail = |op, e| entry_io(label, raw, op, e);
        let perm = Mode::from_bits_truncate(meta.mode);
        let dir = self.parent_fd(parent, raw)?;
        create_replacing(dir, name, fail, "mknod", || {
            mknodat(dir, name, kind, perm, dev)
        })?;
        lchown_at(dir, name, meta).map_err(|e| fail("lchown", e))?;
        // The node was just created by us in a private staging directory, so
        // following the final component reaches exactly it.
        fchmodat(dir, name, perm, FchmodatFlags::FollowSymlink).map_err(|e| fail("chmod", e))?;
        set_times_at(dir, name, meta).map_err(|e| fail("set times", e))?;
        if !meta.xattrs.is_empty() {
            let p = fsops::open_path_at(dir, name).map_err(|e| fail("open node", e))?;
            self.set_xattrs_opath(raw, p.as_fd(), meta)?;
        }
        Ok(())
    }

    pub(super) fn hardlink(
        &mut self,
        raw: &[u8],
        parent: &[u8],
        name: &[u8],
        target_raw: &[u8],
    ) -> Result<(), ImageError> {
        if target_raw.first() == Some(&b'/') {
            return Err(self.refuse(
                raw,
                format!(
                    "hardlink target {:?} is an absolute path",
                    String::from_utf8_lossy(target_raw)
                ),
            ));
        }
        let mut target = Vec::with_capacity(target_raw.len());
        normalize(target_raw, &mut target).map_err(|reason| {
            self.refuse(
                raw,
                format!(
                    "hardlink target {:?}: {reason}",
                    String::from_utf8_lossy(target_raw)
                ),
            )
        })?;
        if target.is_empty() {
            return Err(self.refuse(raw, "hardlink target is the layer root"));
        }
        let (tparent, tname) = split_parent(&target);
        let tdir = match fsops::open_dir_beneath(self.root.as_fd(), tparent) {
            Ok(fd) => Some(fd),
            Err(Reach::Missing) => None,
            Err(r) => return Err(self.reach_err(raw, r, "hardlink target directory")),
        };
        let label = self.label;
        let fail = |op, e| entry_io(label, raw, op, e);
        let exists = match &tdir {
            Some(t) => match fsops::lstat_at(t.as_fd(), tname) {
                Ok(st) if fsops::is_kind(&st, SFlag::S_IFDIR) => {
                    return Err(self.refuse(raw, "hardlink target is a directory"))
                }
                Ok(_) => true,
                Err(Errno::ENOENT) => false,
                Err(e) => return Err(fail("lstat hardlink target", e)),
            },
            None => false,
        };
        if !exists {
            return self.copy_up(raw, parent, name, &target);
        }
        let tdir = tdir.ok_or_else(|| self.refuse(raw, "hardlink target does not exist"))?;
        let dir = self.parent_fd(parent, raw)?;
        // AT_FLAGS empty: a symlink target is linked itself, never followed.
        match linkat(tdir.as_fd(), tname, dir, name, AtFlags::empty()) {
            Err(Errno::EEXIST) => {
                let a = fsops::lstat_at(tdir.as_fd(), tname).map_err(|e| fail("lstat", e))?;
                let b = fsops::lstat_at(dir, name).map_err(|e| fail("lstat", e))?;
                if a.st_ino == b.st_ino && a.st_dev == b.st_dev {
                    return Ok(());
                }
                fsops::remove_at(dir, name).map_err(|e| fail("replace existing entry", e))?;
                linkat(tdir.as_fd(), tname, dir, name, AtFlags::empty())
            }
            other => other,
        }
        .map_err(|e| fail("link", e))
    }

    /// A hardlink whose target is in a lower layer: overlay cannot share inodes
    /// across layers, so the file is copied into this layer (what overlay's own
    /// copy-up would do).
    fn copy_up(
        &mut self,
        raw: &[u8],
        parent: &[u8],
        name: &[u8],
        target: &[u8],
    ) -> Result<(), ImageError> {
        let label = self.label;
        let fail = |op, e| entry_io(label, raw, op, e);
        let how = OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
            .resolve(
                ResolveFlag::RESOLVE_BENEATH
                    | ResolveFlag::RESOLVE_NO_SYMLINKS
                    | ResolveFlag::RESOLVE_NO_MAGICLINKS,
            );
        let Some(lowers) = self.lowers else {
            return Err(ImageError::LowerLayersPending {
                layer: label.to_string(),
                entry: String::from_utf8_lossy(raw).into_owned(),
            });
        };
        let mut source = None;
        for lower in lowers {
            let Ok(lroot) = openat(
                nix::fcntl::AT_FDCWD,
                lower.as_path(),
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            ) else {
                continue;
            };
            let (tparent, tname) = split_parent(target);
            let Ok(tdir) = fsops::open_dir_beneath(lroot.as_fd(), tparent) else {
                continue;
            };
            match fsops::lstat_at(tdir.as_fd(), tname) {
                Ok(st) if fsops::is_kind(&st, SFlag::S_IFREG) => {
                    let fd = openat2(tdir.as_fd(), tname, how)
                        .map_err(|e| fail("open lower hardlink target", e))?;
                    source = Some((File::from(fd), st));
                    break;
                }
                // A whiteout or anything but a regular file hides what is below.
                Ok(_) => break,
                Err(_) => continue,
            }
        }
        let Some((mut src, st)) = source else {
            return Err(self.refuse(
                raw,
                format!(
                    "hardlink target {:?} does not exist in this layer or below",
                    String::from_utf8_lossy(target)
                ),
            ));
        };
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let dir = self.parent_fd(parent, raw)?;
        let fd = create_replacing(dir, name, fail, "create file", || {
            openat(dir, name, flags, Mode::from_bits_truncate(0o600))
        })?;
        let mut dst = File::from(fd);
        let n = std::io::copy(&mut src, &mut dst)
            .map_err(|e| entry_io_error(label, raw, "copy lower hardlink target", e))?;
        self.size += n;
        fchown(
            &dst,
            Some(Uid::from_raw(st.st_uid)),
            Some(Gid::from_raw(st.st_gid)),
        )
        .map_err(|e| fail("fchown", e))?;
        fchmod(&dst, Mode::from_bits_truncate(st.st_mode & 0o7777))
            .map_err(|e| fail("fchmod", e))?;
        let mtime = TimeSpec::new(st.st_mtime, st.st_mtime_nsec);
        futimens(&dst, &mtime, &mtime).map_err(|e| fail("set times", e))
    }

    fn set_xattrs_fd(&self, raw: &[u8], fd: BorrowedFd<'_>, meta: &Meta) -> Result<(), ImageError> {
        for (name, value) in &meta.xattrs {
            self.xattr_result(raw, name, fsops::fsetxattr(fd, name, value))?;
        }
        Ok(())
    }

    fn set_xattrs_opath(
        &self,
        raw: &[u8],
        fd: BorrowedFd<'_>,
        meta: &Meta,
    ) -> Result<(), ImageError> {
        for (name, value) in &meta.xattrs {
            self.xattr_result(raw, name, fsops::setxattr_opath(fd, name, value))?;
        }
        Ok(())
    }

    /// Like Docker, an xattr the file system does not support is skipped
    /// (e.g. `security.selinux` without SELinux); any other failure is an error.
    fn xattr_result(
        &self,
        raw: &[u8],
        name: &[u8],
        r: Result<(), Errno>,
    ) -> Result<(), ImageError> {
        match r {
            Ok(()) | Err(Errno::ENOTSUP) => Ok(()),
            Err(e) => {
                let op = if name == b"security.capability" {
                    "set file capabilities"
                } else {
                    "setxattr"
                };
                Err(self.fail(raw, op, e))
            }
        }
    }
}
