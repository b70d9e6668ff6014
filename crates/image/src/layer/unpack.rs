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
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{futimens, Mode, SFlag};
use nix::sys::time::TimeSpec;
use tar::EntryType;

use super::fsops::{self, Reach};

mod entries;
use super::hashpipe::HashPipe;
use crate::compression::decompress_unbuffered;
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
/// hardlinks to lower files), `None` while those layers are not stored yet
/// (such a hardlink then fails with [`ImageError::LowerLayersPending`]). `label` names the layer in errors. With
/// `start_writeback`, each file's data is sent to disk as soon as it is
/// written (for a durable apply, which ends with a `syncfs`).
pub(crate) fn unpack(
    dest: &Path,
    r: impl Read,
    label: &str,
    lowers: Option<&[PathBuf]>,
    start_writeback: bool,
) -> Result<Unpacked, ImageError> {
    let root = openat(
        nix::fcntl::AT_FDCWD,
        dest,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ImageError::io("open layer directory", dest, e.into()))?;
    let decompressed = decompress_unbuffered(r)?;
    std::thread::scope(|scope| {
        let pipe = HashPipe::new(scope, decompressed).map_err(|source| ImageError::LayerTar {
            layer: label.to_string(),
            source,
        })?;
        let mut archive = tar::Archive::new(pipe);
        let mut u = Unpacker {
            root,
            label,
            lowers,
            cache_path: Vec::new(),
            cache_fd: None,
            buf: vec![0u8; COPY_BUFFER],
            path: Vec::new(),
            deferred_dirs: Vec::new(),
            size: 0,
            start_writeback,
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
    label: &'a str,
    lowers: Option<&'a [PathBuf]>,
    /// The last parent directory used. Tar entries come grouped by directory,
    /// so one cached descriptor saves most lookups. It stays valid: an entry
    /// only removes children of its own parent, and looking up a non-root
    /// parent replaces the cache first; root-level entries clear it.
    cache_path: Vec<u8>,
    cache_fd: Option<OwnedFd>,
    buf: Vec<u8>,
    /// Normalised path of the current entry (reused to avoid allocations).
    path: Vec<u8>,
    /// Directory mtimes, applied after all entries (children change them).
    deferred_dirs: Vec<(Vec<u8>, TimeSpec, TimeSpec)>,
    size: u64,
    /// Start each regular file's writeback once its data is written.
    start_writeback: bool,
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

/// A failed system call on one entry, without borrowing the unpacker.
fn entry_io(label: &str, raw: &[u8], op: &'static str, e: Errno) -> ImageError {
    entry_io_error(label, raw, op, errno_io(e))
}

fn entry_io_error(label: &str, raw: &[u8], op: &'static str, source: std::io::Error) -> ImageError {
    ImageError::LayerEntryIo {
        layer: label.to_string(),
        entry: String::from_utf8_lossy(raw).into_owned(),
        op,
        source,
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
        entry_io(self.label, entry, op, e)
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
            // A root-level entry may replace an ancestor of the cached
            // directory (e.g. dir `a` by a symlink `a`), so forget it.
            self.cache_fd = None;
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
        // Pre-POSIX tars mark directories only by a trailing slash.
        let kind = match kind {
            EntryType::Regular | EntryType::Continuous if raw.ends_with(b"/") => {
                EntryType::Directory
            }
            k => k,
        };
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
    // The sign belongs to the whole value: "-0.5" is half a second before
    // the epoch although its seconds part parses as 0.
    if s.starts_with('-') && nanos > 0 {
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
        assert_eq!(
            parse_pax_time("-1.25"),
            Some(TimeSpec::new(-2, 750_000_000))
        );
        assert_eq!(parse_pax_time("-0.5"), Some(TimeSpec::new(-1, 500_000_000)));
        assert_eq!(parse_pax_time("x"), None);
    }
}
