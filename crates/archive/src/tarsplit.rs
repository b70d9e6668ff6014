//! Byte-exact layer tars without keeping a second copy of the layer.
//!
//! `save` must reproduce a layer tar bit for bit (its sha256 is the diff id
//! the image config names), but keeping the original tar next to the
//! unpacked layer doubles disk use and the bytes written by `load`. Like
//! containers/storage's tar-split, [`TarSplitter`] watches the tar stream
//! while it is unpacked and records everything except regular files'
//! contents (headers, PAX/GNU metadata, padding, the end marker); the
//! contents are read back from the unpacked files by [`TarJoiner`].
//!
//! A path whose content appears twice in one tar (the second copy wins on
//! disk) cannot be rebuilt this way; the splitter reports it and the caller
//! keeps the original tar instead.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use crate::error::ArchiveError;

const BLOCK: usize = 512;
const MAGIC: &[u8; 8] = b"BSPLIT1\n";
const REC_RAW: u8 = 0;
const REC_FILE: u8 = 1;

enum State {
    /// Collecting a 512-byte header.
    Header,
    /// Inside an entry's data, recorded verbatim (metadata entries, sparse files).
    RawData {
        left: u64,
        pad: usize,
        meta: Option<MetaKind>,
    },
    /// Inside a regular file's data, not recorded.
    FileData { left: u64, pad: usize },
    /// Padding after file data, recorded verbatim.
    Padding { left: usize },
    /// After the end marker (or a parse failure): everything is recorded raw.
    Trailer,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum MetaKind {
    Pax,
    GnuLongName,
}

/// Records the non-content parts of a tar stream fed to it with [`Write`].
pub struct TarSplitter {
    out: Vec<u8>,
    raw: Vec<u8>,
    block: Vec<u8>,
    state: State,
    meta: Vec<u8>,
    pending_path: Option<String>,
    seen: HashSet<String>,
    total: u64,
    /// Why the stream cannot be rebuilt from the unpacked files, if so.
    unsplittable: Option<String>,
}

impl Default for TarSplitter {
    fn default() -> Self {
        Self::new()
    }
}

impl TarSplitter {
    pub fn new() -> Self {
        let mut out = Vec::with_capacity(64 * 1024);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&0u64.to_le_bytes());
        Self {
            out,
            raw: Vec::new(),
            block: Vec::with_capacity(BLOCK),
            state: State::Header,
            meta: Vec::new(),
            pending_path: None,
            seen: HashSet::new(),
            total: 0,
            unsplittable: None,
        }
    }

    /// The split description, or why the tar must be kept whole.
    pub fn finish(mut self) -> Result<Vec<u8>, String> {
        if let Some(why) = self.unsplittable {
            return Err(why);
        }
        if !matches!(self.state, State::Header | State::Trailer) || !self.block.is_empty() {
            // A stream ending mid-entry: the unpacker rejects it anyway.
            return Err("tar stream ends inside an entry".to_string());
        }
        self.flush_raw();
        self.out[8..16].copy_from_slice(&self.total.to_le_bytes());
        Ok(self.out)
    }

    fn flush_raw(&mut self) {
        if !self.raw.is_empty() {
            self.out.push(REC_RAW);
            self.out
                .extend_from_slice(&(self.raw.len() as u64).to_le_bytes());
            self.out.append(&mut self.raw);
        }
    }

    fn file_record(&mut self, path: &str, size: u64) {
        self.flush_raw();
        self.out.push(REC_FILE);
        self.out
            .extend_from_slice(&(path.len() as u32).to_le_bytes());
        self.out.extend_from_slice(path.as_bytes());
        self.out.extend_from_slice(&size.to_le_bytes());
    }

    fn give_up(&mut self, why: String) {
        if self.unsplittable.is_none() {
            self.unsplittable = Some(why);
        }
    }

    fn on_header(&mut self, h: &[u8]) {
        if h.iter().all(|&b| b == 0) {
            // End-of-archive blocks and whatever follows are kept verbatim.
            self.raw.extend_from_slice(h);
            self.state = State::Trailer;
            return;
        }
        self.raw.extend_from_slice(h);
        let Some(size) = parse_size(&h[124..136]) else {
            self.give_up("unparseable tar header size".to_string());
            self.state = State::Trailer;
            return;
        };
        let pad = ((BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64) as usize;
        let kind = h[156];
        let path = self.pending_path.take().unwrap_or_else(|| header_path(h));
        match kind {
            b'x' => {
                self.state = State::RawData {
                    left: size,
                    pad,
                    meta: Some(MetaKind::Pax),
                }
            }
            b'L' => {
                self.state = State::RawData {
                    left: size,
                    pad,
                    meta: Some(MetaKind::GnuLongName),
                }
            }
            b'0' | 0 | b'7' if size > 0 => match clean_path(&path) {
                Some(p) if !is_whiteout(&p) => {
                    if !self.seen.insert(p.clone()) {
                        self.give_up(format!("{p:?} appears twice in the layer"));
                    }
                    self.file_record(&p, size);
                    self.state = State::FileData { left: size, pad };
                }
                _ => {
                    self.state = State::RawData {
                        left: size,
                        pad,
                        meta: None,
                    }
                }
            },
            _ => {
                self.state = if size > 0 {
                    State::RawData {
                        left: size,
                        pad,
                        meta: None,
                    }
                } else {
                    State::Header
                };
            }
        }
        if let State::RawData {
            left: 0, pad: 0, ..
        } = self.state
        {
            self.state = State::Header;
        }
    }

    /// Called when a metadata entry's data is complete.
    fn on_meta(&mut self, kind: MetaKind) {
        let data = std::mem::take(&mut self.meta);
        match kind {
            MetaKind::GnuLongName => {
                let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
                self.pending_path = Some(String::from_utf8_lossy(&data[..end]).into_owned());
            }
            MetaKind::Pax => {
                if let Some(p) = pax_path(&data) {
                    self.pending_path = Some(p);
                }
            }
        }
    }
}

impl Write for TarSplitter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.total += buf.len() as u64;
        let mut rest = buf;
        while !rest.is_empty() {
            match &mut self.state {
                State::Header => {
                    let want = BLOCK - self.block.len();
                    let take = want.min(rest.len());
                    self.block.extend_from_slice(&rest[..take]);
                    rest = &rest[take..];
                    if self.block.len() == BLOCK {
                        let h = std::mem::take(&mut self.block);
                        self.on_header(&h);
                        self.block = h;
                        self.block.clear();
                    }
                }
                State::RawData { left, pad, meta } => {
                    let take = (*left).min(rest.len() as u64) as usize;
                    self.raw.extend_from_slice(&rest[..take]);
                    if meta.is_some() {
                        self.meta.extend_from_slice(&rest[..take]);
                    }
                    *left -= take as u64;
                    rest = &rest[take..];
                    if *left == 0 {
                        let (pad, meta) = (*pad, *meta);
                        self.state = if pad > 0 {
                            State::Padding { left: pad }
                        } else {
                            State::Header
                        };
                        if let Some(kind) = meta {
                            self.on_meta(kind);
                        }
                    }
                }
                State::FileData { left, pad } => {
                    let take = (*left).min(rest.len() as u64) as usize;
                    *left -= take as u64;
                    rest = &rest[take..];
                    if *left == 0 {
                        let pad = *pad;
                        self.state = if pad > 0 {
                            State::Padding { left: pad }
                        } else {
                            State::Header
                        };
                    }
                }
                State::Padding { left } => {
                    let take = (*left).min(rest.len());
                    self.raw.extend_from_slice(&rest[..take]);
                    *left -= take;
                    rest = &rest[take..];
                    if *left == 0 {
                        self.state = State::Header;
                    }
                }
                State::Trailer => {
                    self.raw.extend_from_slice(rest);
                    rest = &[];
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The size of the tar a split description rebuilds.
pub fn split_tar_size(split: &[u8]) -> Result<u64, ArchiveError> {
    if split.len() < 16 || &split[..8] != MAGIC {
        return Err(ArchiveError::invalid("layer tar split", "bad magic"));
    }
    let mut n = [0u8; 8];
    n.copy_from_slice(&split[8..16]);
    Ok(u64::from_le_bytes(n))
}

/// Rebuilds a tar from a split description and the unpacked layer in `root`.
pub struct TarJoiner {
    split: Vec<u8>,
    pos: usize,
    root: PathBuf,
    current: Option<(std::io::Take<File>, u64, String)>,
    raw_left: usize,
}

impl TarJoiner {
    pub fn new(split: Vec<u8>, root: &Path) -> Result<Self, ArchiveError> {
        split_tar_size(&split)?;
        Ok(Self {
            split,
            pos: 16,
            root: root.to_path_buf(),
            current: None,
            raw_left: 0,
        })
    }

    fn corrupt(what: &str) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("layer tar split is corrupt: {what}"),
        )
    }

    fn u64_at(&self, at: usize) -> io::Result<u64> {
        let b = self
            .split
            .get(at..at + 8)
            .ok_or_else(|| Self::corrupt("short record"))?;
        let mut n = [0u8; 8];
        n.copy_from_slice(b);
        Ok(u64::from_le_bytes(n))
    }

    /// Opens a record; returns false at the end.
    fn next_record(&mut self) -> io::Result<bool> {
        let Some(&tag) = self.split.get(self.pos) else {
            return Ok(false);
        };
        match tag {
            REC_RAW => {
                let len = self.u64_at(self.pos + 1)? as usize;
                self.pos += 9;
                if self.pos + len > self.split.len() {
                    return Err(Self::corrupt("raw record past the end"));
                }
                self.raw_left = len;
            }
            REC_FILE => {
                let b = self
                    .split
                    .get(self.pos + 1..self.pos + 5)
                    .ok_or_else(|| Self::corrupt("short record"))?;
                let plen = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
                let start = self.pos + 5;
                let path = self
                    .split
                    .get(start..start + plen)
                    .ok_or_else(|| Self::corrupt("short path"))?;
                let path = String::from_utf8(path.to_vec())
                    .map_err(|_| Self::corrupt("path is not UTF-8"))?;
                let size = self.u64_at(start + plen)?;
                self.pos = start + plen + 8;
                let full = self.root.join(&path);
                let f = std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&full)
                    .map_err(|e| {
                        io::Error::new(e.kind(), format!("reading {}: {e}", full.display()))
                    })?;
                self.current = Some((f.take(size), size, path));
            }
            _ => return Err(Self::corrupt("unknown record")),
        }
        Ok(true)
    }
}

impl Read for TarJoiner {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.raw_left > 0 {
                let n = self.raw_left.min(buf.len());
                buf[..n].copy_from_slice(&self.split[self.pos..self.pos + n]);
                self.pos += n;
                self.raw_left -= n;
                return Ok(n);
            }
            if let Some((f, left, path)) = &mut self.current {
                if *left > 0 {
                    let want = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                    let n = f.read(&mut buf[..want])?;
                    if n == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("unpacked file {path:?} is shorter than in its layer tar"),
                        ));
                    }
                    *left -= n as u64;
                    return Ok(n);
                }
                self.current = None;
            }
            if !self.next_record()? {
                return Ok(0);
            }
        }
    }
}

/// Octal (NUL/space padded) or base-256 size field.
fn parse_size(field: &[u8]) -> Option<u64> {
    if field[0] & 0x80 != 0 {
        let mut v: u64 = 0;
        for &b in &field[1..] {
            v = v.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(v);
    }
    let s = std::str::from_utf8(field).ok()?;
    let s = s.trim_matches(|c: char| c == '\0' || c == ' ');
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(s, 8).ok()
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// `prefix/name` of a ustar header (GNU headers have no prefix field).
fn header_path(h: &[u8]) -> String {
    let name = cstr(&h[0..100]);
    let is_ustar = &h[257..263] == b"ustar\0";
    let prefix = if is_ustar {
        cstr(&h[345..500])
    } else {
        String::new()
    };
    if prefix.is_empty() {
        name
    } else {
        format!("{prefix}/{name}")
    }
}

/// The `path=` record of a PAX extended header.
fn pax_path(data: &[u8]) -> Option<String> {
    let mut rest = data;
    let mut found = None;
    while !rest.is_empty() {
        let sp = rest.iter().position(|&b| b == b' ')?;
        let len: usize = std::str::from_utf8(&rest[..sp]).ok()?.parse().ok()?;
        if len == 0 || len > rest.len() {
            return found;
        }
        let record = &rest[sp + 1..len];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Some(v) = record.strip_prefix(b"path=") {
            found = Some(String::from_utf8_lossy(v).into_owned());
        }
        rest = &rest[len..];
    }
    found
}

/// The path of an entry relative to the layer root, as the unpacker places it.
fn clean_path(p: &str) -> Option<String> {
    let mut parts = Vec::new();
    for c in Path::new(p).components() {
        match c {
            Component::Normal(s) => parts.push(s.to_str()?),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    if parts.is_empty() {
        None
    } else {
        Some(parts.join("/"))
    }
}

fn is_whiteout(p: &str) -> bool {
    p.rsplit('/')
        .next()
        .is_some_and(|base| base.starts_with(".wh."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(entries: &[(&str, Vec<u8>)], long: bool) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in entries {
            let mut h = if long {
                tar::Header::new_ustar()
            } else {
                tar::Header::new_gnu()
            };
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(1);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, path, &data[..]).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn round_trip(tar_bytes: &[u8], chunk: usize) {
        let dir = tempfile::tempdir().unwrap();
        tar::Archive::new(tar_bytes).unpack(dir.path()).unwrap();
        let mut s = TarSplitter::new();
        for c in tar_bytes.chunks(chunk) {
            s.write_all(c).unwrap();
        }
        let split = s.finish().unwrap();
        assert_eq!(split_tar_size(&split).unwrap(), tar_bytes.len() as u64);
        assert!(split.len() < tar_bytes.len() / 2 || tar_bytes.len() < 8192);
        let mut out = Vec::new();
        TarJoiner::new(split, dir.path())
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, tar_bytes);
    }

    #[test]
    fn rebuilds_gnu_and_long_names_byte_for_byte() {
        let long_name = format!("dir/{}/file", "x".repeat(150));
        let entries = vec![
            ("a.txt", b"hello".to_vec()),
            ("empty", Vec::new()),
            ("big.bin", (0..70_000u32).map(|i| (i * 7) as u8).collect()),
            (long_name.as_str(), b"long".to_vec()),
            ("exact", vec![1u8; 1024]),
        ];
        for long in [false, true] {
            let t = build(&entries, long);
            for chunk in [1, 7, 512, 4096, 1 << 20] {
                round_trip(&t, chunk);
            }
        }
    }

    #[test]
    fn duplicate_paths_are_unsplittable() {
        let t = build(&[("a", b"1".to_vec()), ("./a", b"2".to_vec())], false);
        let mut s = TarSplitter::new();
        s.write_all(&t).unwrap();
        assert!(s.finish().unwrap_err().contains("appears twice"));
    }

    #[test]
    fn truncated_stream_is_unsplittable() {
        let t = build(&[("a", vec![5u8; 3000])], false);
        let mut s = TarSplitter::new();
        s.write_all(&t[..1500]).unwrap();
        assert!(s.finish().is_err());
    }

    #[test]
    fn changed_file_is_detected_by_length() {
        let t = build(&[("a", vec![5u8; 3000])], false);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), [5u8; 10]).unwrap();
        let mut s = TarSplitter::new();
        s.write_all(&t).unwrap();
        let mut j = TarJoiner::new(s.finish().unwrap(), dir.path()).unwrap();
        let err = j.read_to_end(&mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("shorter"), "{err}");
    }
}
