//! Layer tars from directories: an overlay upper dir (commit, build) or a
//! stored layer's diff dir (save, push). Both hold the layer's own changes with
//! overlay's whiteout encoding, so one writer serves both.
//!
//! The output is deterministic: entries in byte order of their names (parents
//! before children), numeric owners only, GNU headers (long names via GNU
//! extensions), xattrs as PAX `SCHILY.xattr.*` records sorted by name. So a tar
//! written here, applied, and written again is byte-identical.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use tar::{EntryType, Header};

use crate::digest::{Digest, HashingWriter};
use crate::error::ImageError;

const WHITEOUT_XATTR: &str = "trusted.overlay.whiteout";
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Generates a layer tar from an overlay upper dir (for commit/build): overlay
/// whiteouts (char 0:0 device, or `trusted.overlay.whiteout` on a file) become
/// `.wh.NAME`, opaque dirs (`trusted.overlay.opaque=y`) get a
/// `.wh..wh..opq` entry; returns the diff id (sha256 of the bytes written).
/// Sockets are skipped (they cannot be archived); `trusted.overlay.*` and
/// `security.selinux` xattrs are not carried (overlay-internal and host-specific).
pub fn diff_from_upper(upper: &Path, w: impl Write) -> Result<Digest, ImageError> {
    let mut writer = TreeWriter {
        root: upper,
        builder: tar::Builder::new(HashingWriter::new(w)),
        links: HashMap::new(),
    };
    writer.walk(upper, &mut Vec::new())?;
    let hashing = writer
        .builder
        .into_inner()
        .map_err(|e| writer_err(upper, b"", e))?;
    let (mut w, digest, _) = hashing.finish();
    w.flush().map_err(|e| writer_err(upper, b"", e))?;
    Ok(digest)
}

fn writer_err(root: &Path, entry: &[u8], source: io::Error) -> ImageError {
    ImageError::TarWrite {
        path: root.to_path_buf(),
        entry: String::from_utf8_lossy(entry).into_owned(),
        source,
    }
}

struct TreeWriter<'a, W: Write> {
    root: &'a Path,
    builder: tar::Builder<HashingWriter<W>>,
    /// (dev, ino) of multiply-linked files already written → their tar name.
    links: HashMap<(u64, u64), Vec<u8>>,
}

impl<W: Write> TreeWriter<'_, W> {
    fn err(&self, entry: &[u8], source: io::Error) -> ImageError {
        writer_err(self.root, entry, source)
    }

    fn walk(&mut self, dir: &Path, rel: &mut Vec<u8>) -> Result<(), ImageError> {
        let rd = fs::read_dir(dir).map_err(|e| self.err(rel, e))?;
        let mut names = Vec::new();
        for ent in rd {
            names.push(ent.map_err(|e| self.err(rel, e))?.file_name());
        }
        names.sort();
        for name in names {
            let len = rel.len();
            if !rel.is_empty() {
                rel.push(b'/');
            }
            rel.extend_from_slice(name.as_bytes());
            let abs = dir.join(&name);
            let res = self.entry(&abs, rel, name.as_bytes());
            rel.truncate(len);
            res?;
        }
        Ok(())
    }

    fn entry(&mut self, abs: &Path, rel: &mut Vec<u8>, name: &[u8]) -> Result<(), ImageError> {
        let md = fs::symlink_metadata(abs).map_err(|e| self.err(rel, e))?;
        let ft = md.file_type();
        if ft.is_socket() {
            return Ok(());
        }
        let xattrs = self.xattrs(abs, rel)?;
        let is_whiteout = (ft.is_char_device() && md.rdev() == 0)
            || (ft.is_file() && xattrs.iter().any(|(k, _)| k == WHITEOUT_XATTR));
        if is_whiteout {
            let mut wh_path = rel[..rel.len() - name.len()].to_vec();
            wh_path.extend_from_slice(b".wh.");
            wh_path.extend_from_slice(name);
            let mut h = self.header(&md, EntryType::Regular, 0o600);
            return self.append(&mut h, &wh_path, io::empty());
        }
        let carried: Vec<(String, Vec<u8>)> = xattrs
            .iter()
            .filter(|(k, _)| !k.starts_with("trusted.overlay.") && k != "security.selinux")
            .cloned()
            .collect();
        if !carried.is_empty() {
            let records: Vec<(String, &[u8])> = carried
                .iter()
                .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v.as_slice()))
                .collect();
            self.builder
                .append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), *v)))
                .map_err(|e| self.err(rel, e))?;
        }
        let perm = md.mode() & 0o7777;
        if ft.is_dir() {
            let mut h = self.header(&md, EntryType::Directory, perm);
            let mut dir_path = rel.clone();
            dir_path.push(b'/');
            self.append(&mut h, &dir_path, io::empty())?;
            if xattrs.iter().any(|(k, v)| k == OPAQUE_XATTR && v == b"y") {
                let mut opq = rel.clone();
                opq.extend_from_slice(b"/.wh..wh..opq");
                let mut h = self.header(&md, EntryType::Regular, md.mode() & 0o777);
                self.append(&mut h, &opq, io::empty())?;
            }
            return self.walk(abs, rel);
        }
        if ft.is_file() {
            if md.nlink() > 1 {
                let key = (md.dev(), md.ino());
                if let Some(first) = self.links.get(&key).cloned() {
                    let mut h = self.header(&md, EntryType::Link, perm);
                    return self
                        .builder
                        .append_link(
                            &mut h,
                            Path::new(OsStr::from_bytes(rel)),
                            Path::new(OsStr::from_bytes(&first)),
                        )
                        .map_err(|e| self.err(rel, e));
                }
                self.links.insert(key, rel.clone());
            }
            let mut h = self.header(&md, EntryType::Regular, perm);
            h.set_size(md.len());
            let f = File::open(abs).map_err(|e| self.err(rel, e))?;
            return self.append(&mut h, rel, io::BufReader::with_capacity(1 << 20, f));
        }
        if ft.is_symlink() {
            let target = fs::read_link(abs).map_err(|e| self.err(rel, e))?;
            let mut h = self.header(&md, EntryType::Symlink, perm);
            return self
                .builder
                .append_link(&mut h, Path::new(OsStr::from_bytes(rel)), &target)
                .map_err(|e| self.err(rel, e));
        }
        let kind = if ft.is_char_device() {
            EntryType::Char
        } else if ft.is_block_device() {
            EntryType::Block
        } else {
            EntryType::Fifo
        };
        let mut h = self.header(&md, kind, perm);
        if kind != EntryType::Fifo {
            let rdev = md.rdev();
            let (major, minor) = (libc::major(rdev), libc::minor(rdev));
            h.set_device_major(major).map_err(|e| self.err(rel, e))?;
            h.set_device_minor(minor).map_err(|e| self.err(rel, e))?;
        }
        self.append(&mut h, rel, io::empty())
    }

    fn header(&self, md: &fs::Metadata, kind: EntryType, mode: u32) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(u64::from(md.uid()));
        h.set_gid(u64::from(md.gid()));
        h.set_mtime(u64::try_from(md.mtime()).unwrap_or(0));
        h.set_size(0);
        h
    }

    fn append(
        &mut self,
        h: &mut Header,
        path: &[u8],
        data: impl io::Read,
    ) -> Result<(), ImageError> {
        self.builder
            .append_data(h, Path::new(OsStr::from_bytes(path)), data)
            .map_err(|e| self.err(path, e))
    }

    /// Extended attributes by name, sorted; names that are not UTF-8 cannot be
    /// PAX keys and are skipped.
    fn xattrs(&self, abs: &Path, rel: &[u8]) -> Result<Vec<(String, Vec<u8>)>, ImageError> {
        let names = match xattr::list(abs) {
            Ok(n) => n,
            Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(self.err(rel, e)),
        };
        let mut out = Vec::new();
        for n in names {
            let Some(key) = n.to_str() else { continue };
            if let Some(v) = xattr::get(abs, &n).map_err(|e| self.err(rel, e))? {
                out.push((key.to_string(), v));
            }
        }
        out.sort();
        Ok(out)
    }
}
