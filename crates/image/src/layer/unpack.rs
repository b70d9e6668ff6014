//! The escape-proof layer unpacker.
//!
//! Written by hand over the `tar` crate's entry reader instead of using
//! `tar::Archive::unpack` because the latter resolves paths through the
//! file system (a symlink created by an earlier entry can redirect a later
//! write), cannot translate `.wh.` whiteouts into overlay whiteouts, and sets
//! directory mtimes as it goes (to be clobbered by later entries). Here every
//! entry is resolved relative to a directory descriptor of the layer root with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` and created with `*at`
//! calls that never follow the final component, so no write can leave the
//! layer directory whatever the tar contains.
//!
//! Policy for hostile or odd entries:
//! - absolute names and hardlink targets are refused; `..` that would climb
//!   above the root is refused; `a/../b` is normalised to `b`;
//! - a path whose parent goes through a symlink is refused (also a symlink made
//!   earlier in the same layer);
//! - an entry over an existing non-directory (e.g. a file over a symlink)
//!   replaces it, as `tar -x` does: the symlink is removed, never written through;
//! - hardlink targets must resolve inside the layer without symlinks; a target
//!   that only exists in a lower layer is copied up;
//! - `trusted.overlay.*` xattrs in the tar are dropped: overlay metadata is
//!   expressed only through `.wh.` entries, so a layer cannot plant redirects.

use std::borrow::Cow;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{
    fchmod, fchmodat, futimens, mkdirat, mknodat, utimensat, FchmodatFlags, Mode, SFlag,
    UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, Gid, Uid};
use tar::EntryType;

use super::fsops::{self, Reach};
use super::hashpipe::HashPipe;
use crate::compression::decompress;
use crate::digest::Digest;
use crate::error::ImageError;

pub(crate) struct Unpacked {
    pub diff_id: Digest,
    /// Bytes of regular-file content written.
    pub size: u64,
}

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
pub(crate) const OPAQUE_XATTR: &[u8] = b"trusted.overlay.opaque";
const COPY_BUFFER: usize = 1 << 20;

/// Unpacks the (possibly compressed) tar `r` into the existing, empty directory
/// `dest`; `lowers` are the diff dirs of the layers below, top first (for
/// hardlinks to lower files). `label` names the layer in errors.
pub(crate) fn unpack(
    dest: &Path,
    r: impl Read,
    label: &str,
    lowers: &[PathBuf],
) -> Result<Unpacked, ImageError> {
    let root = openat(
        nix::fcntl::AT_FDCWD,
        dest,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ImageError::io("open layer directory", dest, e.into()))?;
    let decompressed = decompress(r)?;
    std::thread::scope(|scope| {
        let pipe = HashPipe::new(scope, decompressed).map_err(|source| ImageError::LayerTar {
            layer: label.to_string(),
            source,
        })?;
        let mut archive = tar::Archive::new(pipe);
        let mut u = Unpacker {
            root,
            dest,
            label,
            lowers,
            cache_path: Vec::new(),
            cache_fd: None,
            buf: vec![0u8; COPY_BUFFER],
            path: Vec::new(),
            deferred_dirs: Vec::new(),
            size: 0,
        };
        let tar_err = |source| ImageError::LayerTar {
            layer: label.to_string(),
            source,
        };
        for entry in archive.entries().map_err(tar_err)? {
            let mut entry = entry.map_err(tar_err)?;
            u.entry(&mut entry)?;
        }
        u.finish_dirs()?;
        let size = u.size;
        drop(u);
        // The diff id covers the whole uncompressed stream, including padding
        // after the end-of-archive blocks that the entry reader stops at.
        let (diff_id, _) = archive.into_inner().finish().map_err(tar_err)?;
        Ok(Unpacked { diff_id, size })
    })
}

struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    atime: TimeSpec,
    mtime: TimeSpec,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

struct Unpacker<'a> {
    root: OwnedFd,
    dest: &'a Path,
    label: &'a str,
    lowers: &'a [PathBuf],
    /// The last parent directory used. Tar entries come grouped by directory,
    /// so one cached descriptor saves most lookups. It stays valid: an entry
    /// can only remove children of its own parent, never the parent itself.
    cache_path: Vec<u8>,
    cache_fd: Option<OwnedFd>,
    buf: Vec<u8>,
    /// Normalised path of the current entry (reused to avoid allocations).
    path: Vec<u8>,
    /// Directory mtimes, applied after all entries (children change them).
    deferred_dirs: Vec<(Vec<u8>, TimeSpec, TimeSpec)>,
    size: u64,
}

/// Lexically normalises a tar path into `out`: drops `.` and empty components,
/// resolves `..` without ever climbing above the root.
fn normalize(raw: &[u8], out: &mut Vec<u8>) -> Result<(), &'static str> {
    out.clear();
    if raw.first() == Some(&b'/') {
        return Err("absolute path not allowed in a layer");
    }
    if raw.contains(&0) {
        return Err("path contains a NUL byte");
    }
    for comp in raw.split(|b| *b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                if out.is_empty() {
                    return Err("path escapes the layer root");
                }
                let cut = out.iter().rposition(|b| *b == b'/').unwrap_or(0);
                out.truncate(cut);
            }
            c => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(c);
            }
        }
    }
    Ok(())
}

fn split_parent(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|b| *b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (&[], path),
    }
}

fn errno_io(e: Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(e as i32)
}

impl<'a> Unpacker<'a> {
    fn refuse(&self, entry: &[u8], reason: impl Into<String>) -> ImageError {
        ImageError::LayerEntry {
            layer: self.label.to_string(),
            entry: String::from_utf8_lossy(entry).into_owned(),
            reason: reason.into(),
        }
    }

    fn fail(&self, entry: &[u8], op: &'static str, e: Errno) -> ImageError {
        ImageError::LayerEntryIo {
            layer: self.label.to_string(),
            entry: String::from_utf8_lossy(entry).into_owned(),
            op,
            source: errno_io(e),
        }
    }

    fn reach_err(&self, entry: &[u8], r: Reach, what: &str) -> ImageError {
        match r {
            Reach::Refused(reason) => self.refuse(entry, reason),
            Reach::Missing => self.refuse(entry, format!("{what} does not exist")),
            Reach::Io(e) => self.fail(entry, "open parent directory", e),
        }
    }

    /// The descriptor of directory `parent` (normalised), created if missing.
    fn parent_fd(&mut self, parent: &[u8], entry: &[u8]) -> Result<BorrowedFd<'_>, ImageError> {
        if parent.is_empty() {
            return Ok(self.root.as_fd());
        }
        if self.cache_fd.is_none() || self.cache_path != parent {
            let fd = fsops::open_or_create_dir_beneath(self.root.as_fd(), parent)
                .map_err(|r| self.reach_err(entry, r, "parent directory"))?;
            self.cache_path.clear();
            self.cache_path.extend_from_slice(parent);
            self.cache_fd = Some(fd);
        }
        match &self.cache_fd {
            Some(fd) => Ok(fd.as_fd()),
            None => Ok(self.root.as_fd()),
        }
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), ImageError> {
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader
                | EntryType::XHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink
        ) {
            return Ok(());
        }
        let raw: Vec<u8> = match entry.path_bytes() {
            Cow::Borrowed(b) => b.to_vec(),
            Cow::Owned(b) => b,
        };
        let mut path = std::mem::take(&mut self.path);
        let res = normalize(&raw, &mut path)
            .map_err(|reason| self.refuse(&raw, reason))
            .and_then(|()| {
                let meta = self.meta(entry, &raw)?;
                self.dispatch(entry, kind, &raw, &path, meta)
            });
        self.path = path;
        res
    }

    fn meta<R: Read>(&self, entry: &mut tar::Entry<'_, R>, raw: &[u8]) -> Result<Meta, ImageError> {
        let h = entry.header();
        let bad = |what: &str, e: std::io::Error| {
            self.refuse(raw, format!("invalid {what} in header: {e}"))
        };
        let mut uid = h.uid().map_err(|e| bad("uid", e))?;
        let mut gid = h.gid().map_err(|e| bad("gid", e))?;
        let mode = h.mode().map_err(|e| bad("mode", e))? & 0o7777;
        let mut mtime = TimeSpec::new(
            i64::try_from(h.mtime().map_err(|e| bad("mtime", e))?).unwrap_or(i64::MAX),
            0,
        );
        let mut atime = None;
        let mut xattrs = Vec::new();
        let pax = entry.pax_extensions().map_err(|e| bad("pax header", e))?;
        if let Some(pax) = pax {
            for ext in pax {
                let ext = ext.map_err(|e| bad("pax record", e))?;
                let Ok(key) = ext.key() else { continue };
                let value = ext.value_bytes();
                if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                    if !name.as_bytes().starts_with(b"trusted.overlay.") {
                        xattrs.push((name.as_bytes().to_vec(), value.to_vec()));
                    }
                    continue;
                }
                let text = std::str::from_utf8(value).unwrap_or("");
                match key {
                    "uid" => {
                        uid = text
                            .parse()
                            .map_err(|_| self.refuse(raw, "invalid pax uid"))?
                    }
                    "gid" => {
                        gid = text
                            .parse()
                            .map_err(|_| self.refuse(raw, "invalid pax gid"))?
                    }
                    "mtime" => {
                        mtime = parse_pax_time(text)
                            .ok_or_else(|| self.refuse(raw, "invalid pax mtime"))?
                    }
                    "atime" => atime = parse_pax_time(text),
                    _ => {}
                }
            }
        }
        let uid =
            u32::try_from(uid).map_err(|_| self.refuse(raw, format!("uid {uid} out of range")))?;
        let gid =
            u32::try_from(gid).map_err(|_| self.refuse(raw, format!("gid {gid} out of range")))?;
        Ok(Meta {
            uid,
            gid,
            mode,
            atime: atime.unwrap_or(mtime),
            mtime,
            xattrs,
        })
    }

    fn dispatch<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        kind: EntryType,
        raw: &[u8],
        path: &[u8],
        meta: Meta,
    ) -> Result<(), ImageError> {
        if path.is_empty() {
            if kind != EntryType::Directory {
                return Err(self.refuse(raw, "entry names the layer root but is not a directory"));
            }
            return self.root_dir(raw, meta);
        }
        let (parent, name) = split_parent(path);
        if name.starts_with(WHITEOUT_PREFIX) {
            return self.whiteout(raw, parent, name, &meta);
        }
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.regular(entry, raw, parent, name, &meta)
            }
            EntryType::Directory => self.directory(raw, path, parent, name, meta),
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|c| c.into_owned())
                    .ok_or_else(|| self.refuse(raw, "symlink without a target"))?;
                self.symlink(raw, parent, name, &target, &meta)
            }
            EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .map(|c| c.into_owned())
                    .ok_or_else(|| self.refuse(raw, "hardlink without a target"))?;
                self.hardlink(raw, parent, name, &target)
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let h = entry.header();
                let major = h.device_major().ok().flatten().unwrap_or(0);
                let minor = h.device_minor().ok().flatten().unwrap_or(0);
                let sflag = match kind {
                    EntryType::Char => SFlag::S_IFCHR,
                    EntryType::Block => SFlag::S_IFBLK,
                    _ => SFlag::S_IFIFO,
                };
                self.node(
                    raw,
                    parent,
                    name,
                    sflag,
                    nix::sys::stat::makedev(major.into(), minor.into()),
                    &meta,
                )
            }
            other => Err(self.refuse(
                raw,
                format!("unsupported tar entry type {:?}", other.as_byte() as char),
            )),
        }
    }

    fn root_dir(&mut self, raw: &[u8], meta: Meta) -> Result<(), ImageError> {
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

    fn whiteout(
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
        let fail = |op, e: Errno| ImageError::LayerEntryIo {
            layer: label.to_string(),
            entry: String::from_utf8_lossy(raw).into_owned(),
            op,
            source: errno_io(e),
        };
        fsops::remove_at(dir, target).map_err(|e| fail("remove whited-out entry", e))?;
        mknodat(dir, target, SFlag::S_IFCHR, Mode::empty(), 0)
            .map_err(|e| fail("mknod whiteout", e))?;
        fchownat(
            dir,
            target,
            Some(Uid::from_raw(meta.uid)),
            Some(Gid::from_raw(meta.gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| fail("lchown whiteout", e))?;
        utimensat(
            dir,
            target,
            &meta.atime,
            &meta.mtime,
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(|e| fail("set whiteout times", e))
    }

    fn regular<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        raw: &[u8],
        parent: &[u8],
        name: &[u8],
        meta: &Meta,
    ) -> Result<(), ImageError> {
        let label = self.label;
        let fail = |op, e: Errno| ImageError::LayerEntryIo {
            layer: label.to_string(),
            entry: String::from_utf8_lossy(raw).into_owned(),
            op,
            source: errno_io(e),
        };
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let mut buf = std::mem::take(&mut self.buf);
        let res = (|| {
            let dir = self.parent_fd(parent, raw)?;
            let fd = match openat(dir, name, flags, Mode::from_bits_truncate(0o600)) {
                Err(Errno::EEXIST) => {
                    fsops::remove_at(dir, name).map_err(|e| fail("replace existing entry", e))?;
                    openat(dir, name, flags, Mode::from_bits_truncate(0o600))
                }
                other => other,
            }
            .map_err(|e| fail("create file", e))?;
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
                    .map_err(|source| ImageError::LayerEntryIo {
                        layer: label.to_string(),
                        entry: String::from_utf8_lossy(raw).into_owned(),
                        op: "write",
                        source,
                    })?;
                written += n as u64;
            }
            self.size += written;
            let fd = file.as_fd();
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

    fn directory(
        &mut self,
        raw: &[u8],
        path: &[u8],
        parent: &[u8],
        name: &[u8],
        meta: Meta,
    ) -> Result<(), ImageError> {
        let label = self.label;
        let fail = |op, e: Errno| ImageError::LayerEntryIo {
            layer: label.to_string(),
            entry: String::from_utf8_lossy(raw).into_owned(),
            op,
            source: errno_io(e),
        };
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

    fn symlink(
        &mut self,
        raw: &[u8],
        parent: &[u8],
        name: &[u8],
        target: &[u8],
        meta: &Meta,
    ) -> Result<(), ImageError> {
        let label = self.label;
        let fail = |op, e: Errno| ImageError::LayerEntryIo {
            layer: label.to_string(),
            entry: String::from_utf8_lossy(raw).into_owned(),
            op,
            source: errno_io(e),
        };
        if target.contains(&0) {
            return Err(self.refuse(raw, "symlink target contains a NUL byte"));
        }
        let dir = self.parent_fd(parent, raw)?;
        match symlinkat(target, dir, name) {
            Err(Errno::EEXIST) => {
                fsops::remove_at(dir, name).map_err(|e| fail("replace existing entry", e))?;
                symlinkat(target, dir, name)
            }
            other => other,
        }
        .map_err(|e| fail("symlink", e))?;
        fchownat(
            dir,
            name,
            Some(Uid::from_raw(meta.uid)),
            Some(Gid::from_raw(meta.gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| fail("lchown", e))?;
        if !meta.xattrs.is_empty() {
            let p = fsops::open_path_at(dir, name).map_err(|e| fail("open symlink", e))?;
            self.set_xattrs_opath(raw, p.as_fd(), meta)?;
        }
        let dir = self.parent_fd(parent, raw)?;
        utimensat(
            dir,
            name,
            &meta.atime,
            &meta.mtime,
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(|e| fail("set times", e))
    }

    fn node(
        &mut self,
        raw: &[u8],
        parent: &[u8],
        name: &[u8],
        kind: SFlag,
        dev: libc::dev_t,
        meta: &Meta,
    ) -> Result<(), ImageError> {
        let label = self.label;
        let fail = |op, e: Errno| ImageError::LayerEntryIo {
            layer: label.to_string(),
            entry: String::from_utf8_lossy(raw).into_owned(),
            op,
            source: errno_io(e),
        };
        let perm = Mode::from_bits_truncate(meta.mode);
        let dir = self.parent_fd(parent, raw)?;
        match mknodat(dir, name, kind, perm, dev) {
            Err(Errno::EEXIST) => {
                fsops::remove_at(dir, name).map_err(|e| fail("replace existing entry", e))?;
                mknodat(dir, name, kind, perm, dev)
            }
            other => other,
        }
        .map_err(|e| fail("mknod", e))?;
        fchownat(
            dir,
            name,
            Some(Uid::from_raw(meta.uid)),
            Some(Gid::from_raw(meta.gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| fail("lchown", e))?;
        // The node was just created by us in a private staging directory, so
        // following the final component reaches exactly it.
        fchmodat(dir, name, perm, FchmodatFlags::FollowSymlink).map_err(|e| fail("chmod", e))?;
        utimensat(
            dir,
            name,
            &meta.atime,
            &meta.mtime,
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(|e| fail("set times", e))?;
        if !meta.xattrs.is_empty() {
            let p = fsops::open_path_at(dir, name).map_err(|e| fail("open node", e))?;
            self.set_xattrs_opath(raw, p.as_fd(), meta)?;
        }
        Ok(())
    }

    fn hardlink(
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
        let fail = |op, e: Errno| ImageError::LayerEntryIo {
            layer: label.to_string(),
            entry: String::from_utf8_lossy(raw).into_owned(),
            op,
            source: errno_io(e),
        };
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
        let fail = |op, e: Errno| ImageError::LayerEntryIo {
            layer: label.to_string(),
            entry: String::from_utf8_lossy(raw).into_owned(),
            op,
            source: errno_io(e),
        };
        let how = OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
            .resolve(
                ResolveFlag::RESOLVE_BENEATH
                    | ResolveFlag::RESOLVE_NO_SYMLINKS
                    | ResolveFlag::RESOLVE_NO_MAGICLINKS,
            );
        let mut source = None;
        for lower in self.lowers {
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
        let fd = match openat(dir, name, flags, Mode::from_bits_truncate(0o600)) {
            Err(Errno::EEXIST) => {
                fsops::remove_at(dir, name).map_err(|e| fail("replace existing entry", e))?;
                openat(dir, name, flags, Mode::from_bits_truncate(0o600))
            }
            other => other,
        }
        .map_err(|e| fail("create file", e))?;
        let mut dst = File::from(fd);
        let n = std::io::copy(&mut src, &mut dst).map_err(|source| ImageError::LayerEntryIo {
            layer: label.to_string(),
            entry: String::from_utf8_lossy(raw).into_owned(),
            op: "copy lower hardlink target",
            source,
        })?;
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
            Err(e) => Err(ImageError::LayerEntryIo {
                layer: self.label.to_string(),
                entry: String::from_utf8_lossy(raw).into_owned(),
                op: if name == b"security.capability" {
                    "set file capabilities"
                } else {
                    "setxattr"
                },
                source: errno_io(e),
            }),
        }
    }

    /// Sets directory times last (deepest first), since creating entries in a
    /// directory changes its mtime.
    fn finish_dirs(&mut self) -> Result<(), ImageError> {
        let dirs = std::mem::take(&mut self.deferred_dirs);
        for (path, atime, mtime) in dirs.iter().rev() {
            let fd = if path.is_empty() {
                None
            } else {
                match fsops::open_dir_beneath(self.root.as_fd(), path) {
                    Ok(fd) => Some(fd),
                    // Replaced or whited out by a later entry of this layer.
                    Err(_) => continue,
                }
            };
            let target = fd.as_ref().map_or(self.root.as_fd(), |f| f.as_fd());
            futimens(target, atime, mtime)
                .map_err(|e| self.fail(path, "set directory times", e))?;
        }
        let _ = self.dest;
        Ok(())
    }
}

/// Parses a PAX time (`1700000000.123456789`, possibly negative).
fn parse_pax_time(s: &str) -> Option<TimeSpec> {
    let (secs, frac) = match s.split_once('.') {
        Some((a, b)) => (a, b),
        None => (s, ""),
    };
    let secs: i64 = secs.parse().ok()?;
    let mut nanos: i64 = 0;
    for (i, c) in frac.bytes().take(9).enumerate() {
        if !c.is_ascii_digit() {
            return None;
        }
        nanos += i64::from(c - b'0') * 10i64.pow(8 - i as u32);
    }
    if secs < 0 && nanos > 0 {
        return Some(TimeSpec::new(secs - 1, 1_000_000_000 - nanos));
    }
    Some(TimeSpec::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> Result<String, &'static str> {
        let mut out = Vec::new();
        normalize(s.as_bytes(), &mut out).map(|()| String::from_utf8(out).unwrap())
    }

    #[test]
    fn normalizes_paths() {
        assert_eq!(norm("./a/b/").unwrap(), "a/b");
        assert_eq!(norm("a//./b").unwrap(), "a/b");
        assert_eq!(norm("a/../b").unwrap(), "b");
        assert_eq!(norm("./").unwrap(), "");
        assert_eq!(norm("../etc/passwd"), Err("path escapes the layer root"));
        assert_eq!(norm("a/../../etc"), Err("path escapes the layer root"));
        assert_eq!(
            norm("/etc/passwd"),
            Err("absolute path not allowed in a layer")
        );
    }

    #[test]
    fn pax_times() {
        assert_eq!(
            parse_pax_time("1700000000.5"),
            Some(TimeSpec::new(1_700_000_000, 500_000_000))
        );
        assert_eq!(parse_pax_time("12"), Some(TimeSpec::new(12, 0)));
        assert_eq!(parse_pax_time("x"), None);
    }
}
