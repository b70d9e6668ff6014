//! Random access to the files of an archive: an indexed tar file or a directory.
//!
//! Archives name their parts in metadata that `docker save` writes *after*
//! the layers, so a loader needs random access. A seekable, uncompressed tar
//! file is indexed in place (headers only, data skipped with seeks) and its
//! layers are later read straight from their offsets: one read of the data,
//! no copy. Pipes and compressed archives are first decompressed into a spool
//! file next to the store, which is removed when the source is dropped.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};

use berth_image::Digest;

use crate::error::ArchiveError;

/// Where one archive member's data lies.
#[derive(Debug, Clone, Copy)]
struct TarEntry {
    offset: u64,
    size: u64,
}

enum Backing {
    Tar {
        file: File,
        entries: HashMap<String, TarEntry>,
        _spool: Option<tempfile::TempPath>,
    },
    Dir(PathBuf),
}

/// The files of an archive, addressed by their normalised relative paths.
pub struct ArchiveSource {
    backing: Backing,
}

const SPOOL_BUFFER: usize = 1 << 20;

impl ArchiveSource {
    /// Opens `path`: a directory (OCI image layout), or a tar file, plain or
    /// gzip/zstd compressed. Compressed files are spooled into `spool_dir`.
    pub fn open_path(path: &Path, spool_dir: &Path) -> Result<Self, ArchiveError> {
        let meta = std::fs::metadata(path).map_err(|e| ArchiveError::io("opening", path, e))?;
        if meta.is_dir() {
            return Ok(Self {
                backing: Backing::Dir(path.to_path_buf()),
            });
        }
        let file = File::open(path).map_err(|e| ArchiveError::io("opening", path, e))?;
        Self::open_file(file, spool_dir)
    }

    /// Opens an archive from an open file; regular uncompressed files are
    /// indexed in place, anything else is spooled.
    pub fn open_file(mut file: File, spool_dir: &Path) -> Result<Self, ArchiveError> {
        let is_regular = file
            .metadata()
            .map(|m| m.file_type().is_file())
            .unwrap_or(false);
        if is_regular {
            let mut magic = [0u8; 4];
            let n = file
                .read_at(&mut magic, 0)
                .map_err(|source| ArchiveError::Read { source })?;
            if berth_image::detect_compression(&magic[..n]) == berth_image::Compression::None {
                file.seek(SeekFrom::Start(0))
                    .map_err(|source| ArchiveError::Read { source })?;
                let entries = index_tar(&mut file)?;
                return Ok(Self {
                    backing: Backing::Tar {
                        file,
                        entries,
                        _spool: None,
                    },
                });
            }
        }
        Self::open_reader(file, spool_dir)
    }

    /// Decompresses `reader` (if compressed) into a spool file in `spool_dir`
    /// and indexes it.
    pub fn open_reader(reader: impl Read, spool_dir: &Path) -> Result<Self, ArchiveError> {
        std::fs::create_dir_all(spool_dir)
            .map_err(|e| ArchiveError::io("creating", spool_dir, e))?;
        let spool = tempfile::Builder::new()
            .prefix("load-")
            .tempfile_in(spool_dir)
            .map_err(|e| ArchiveError::io("creating a spool file in", spool_dir, e))?;
        let (mut file, spool_path) = spool.into_parts();
        let mut input = berth_image::decompress(reader)?;
        {
            let mut w = io::BufWriter::with_capacity(SPOOL_BUFFER, &mut file);
            io::copy(&mut input, &mut w).map_err(|source| ArchiveError::Read { source })?;
            w.flush()
                .map_err(|e| ArchiveError::io("writing", &*spool_path, e))?;
        }
        file.seek(SeekFrom::Start(0))
            .map_err(|e| ArchiveError::io("seeking", &*spool_path, e))?;
        let entries = index_tar(&mut file)?;
        Ok(Self {
            backing: Backing::Tar {
                file,
                entries,
                _spool: Some(spool_path),
            },
        })
    }

    /// Whether the archive has a file at `path`.
    pub fn exists(&self, path: &str) -> bool {
        let Some(path) = normalize(path) else {
            return false;
        };
        match &self.backing {
            Backing::Tar { entries, .. } => entries.contains_key(&path),
            Backing::Dir(root) => root.join(&path).is_file(),
        }
    }

    /// The size of the file at `path`.
    pub fn size(&self, path: &str, by: &str) -> Result<u64, ArchiveError> {
        let norm = normalize(path).ok_or_else(|| missing(path, by))?;
        match &self.backing {
            Backing::Tar { entries, .. } => entries
                .get(&norm)
                .map(|e| e.size)
                .ok_or_else(|| missing(path, by)),
            Backing::Dir(root) => std::fs::metadata(root.join(&norm))
                .map(|m| m.len())
                .map_err(|_| missing(path, by)),
        }
    }

    /// Opens the file at `path`; `by` names what referred to it, for errors.
    pub fn open(&self, path: &str, by: &str) -> Result<Box<dyn Read + Send + '_>, ArchiveError> {
        let norm = normalize(path).ok_or_else(|| missing(path, by))?;
        match &self.backing {
            Backing::Tar { file, entries, .. } => {
                let e = entries.get(&norm).ok_or_else(|| missing(path, by))?;
                Ok(Box::new(SliceReader {
                    file,
                    pos: e.offset,
                    end: e.offset + e.size,
                }))
            }
            Backing::Dir(root) => {
                let p = root.join(&norm);
                let f = File::open(&p).map_err(|_| missing(path, by))?;
                Ok(Box::new(BufReader::with_capacity(SPOOL_BUFFER, f)))
            }
        }
    }

    /// Reads a small file (a JSON document) completely.
    pub fn read_small(&self, path: &str, by: &str) -> Result<Vec<u8>, ArchiveError> {
        const LIMIT: u64 = 64 << 20;
        let size = self.size(path, by)?;
        if size > LIMIT {
            return Err(ArchiveError::invalid(
                path,
                format!("{size} bytes is too large for a metadata file"),
            ));
        }
        let mut buf = Vec::with_capacity(size as usize);
        self.open(path, by)?
            .read_to_end(&mut buf)
            .map_err(|source| ArchiveError::Read { source })?;
        Ok(buf)
    }

    /// Reads a blob and checks it against `digest`.
    pub fn read_verified(
        &self,
        path: &str,
        digest: &Digest,
        by: &str,
    ) -> Result<Vec<u8>, ArchiveError> {
        let bytes = self.read_small(path, by)?;
        let actual = Digest::of_bytes(&bytes);
        if &actual != digest {
            return Err(ArchiveError::DigestMismatch {
                what: path.to_string(),
                expected: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(bytes)
    }
}

fn missing(path: &str, by: &str) -> ArchiveError {
    ArchiveError::MissingEntry {
        path: path.to_string(),
        by: by.to_string(),
    }
}

/// `./a/../b//c` → `b/c`; `None` for paths escaping the archive root.
fn normalize(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(s) => parts.push(s.to_str()?),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::Prefix(_) => return None,
        }
    }
    Some(parts.join("/"))
}

/// Records the data offset of every regular file, following symlinks and
/// hard links between members (old `docker save` links identical layers).
fn index_tar(file: &mut File) -> Result<HashMap<String, TarEntry>, ArchiveError> {
    let mut entries = HashMap::new();
    let mut links: Vec<(String, String)> = Vec::new();
    let file_len = file
        .metadata()
        .map_err(|source| ArchiveError::Read { source })?
        .len();
    {
        let mut archive = tar::Archive::new(&mut *file);
        let iter = archive
            .entries_with_seek()
            .map_err(|source| ArchiveError::Read { source })?;
        let mut saw_any = false;
        for entry in iter {
            let entry = entry.map_err(|e| ArchiveError::Malformed {
                reason: e.to_string(),
            })?;
            saw_any = true;
            let path = entry.path().map_err(|e| ArchiveError::Malformed {
                reason: e.to_string(),
            })?;
            let Some(name) = path.to_str().and_then(normalize) else {
                continue;
            };
            let kind = entry.header().entry_type();
            if kind.is_file() {
                let offset = entry.raw_file_position();
                let size = entry.size();
                if offset + size > file_len {
                    return Err(ArchiveError::Malformed {
                        reason: format!(
                            "member {name:?} ends at byte {} but the file has {file_len}",
                            offset + size
                        ),
                    });
                }
                entries.insert(name, TarEntry { offset, size });
            } else if kind.is_symlink() || kind.is_hard_link() {
                let target = entry
                    .link_name()
                    .map_err(|e| ArchiveError::Malformed {
                        reason: e.to_string(),
                    })?
                    .and_then(|t| t.to_str().map(str::to_string))
                    .unwrap_or_default();
                let resolved = if kind.is_symlink() && !target.starts_with('/') {
                    let parent = Path::new(&name)
                        .parent()
                        .map(|p| p.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    format!("{parent}/{target}")
                } else {
                    target
                };
                if let Some(resolved) = normalize(&resolved) {
                    links.push((name, resolved));
                }
            }
        }
        if !saw_any {
            return Err(ArchiveError::Malformed {
                reason: "no members".to_string(),
            });
        }
    }
    // Links may point at links; a few rounds resolve any sane chain.
    for _ in 0..8 {
        for (name, target) in &links {
            if let Some(e) = entries.get(target).copied() {
                entries.entry(name.clone()).or_insert(e);
            }
        }
    }
    Ok(entries)
}

/// Reads `[pos, end)` of a shared file with `pread`, so several members
/// can be read at once from different threads.
struct SliceReader<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for SliceReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end - self.pos;
        if left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "archive member is truncated",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// Passes data through, hashing it; at end of stream the digest must equal
/// `expected` or the read fails with `InvalidData`, so a consumer never
/// treats unverified bytes as complete. Without `expected` nothing is hashed:
/// sha256 costs about as much CPU as unpacking a layer, and a digest no one
/// compares is wasted work.
pub struct VerifyingReader<R> {
    inner: R,
    hasher: berth_image::Hasher,
    expected: Option<Digest>,
    what: String,
    done: bool,
}

impl<R: Read> VerifyingReader<R> {
    pub fn new(inner: R, expected: Option<Digest>, what: impl Into<String>) -> Self {
        Self {
            inner,
            hasher: berth_image::Hasher::new(),
            expected,
            what: what.into(),
            done: false,
        }
    }

    /// Reads whatever the consumer left (tar padding) and checks the digest.
    pub fn finish(mut self) -> Result<(), ArchiveError> {
        io::copy(&mut self, &mut io::sink()).map_err(|source| ArchiveError::Read { source })?;
        Ok(())
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n > 0 {
            if self.expected.is_some() {
                self.hasher.update(&buf[..n]);
            }
            return Ok(n);
        }
        self.done = true;
        if let Some(expected) = &self.expected {
            let hasher = std::mem::replace(&mut self.hasher, berth_image::Hasher::new());
            let actual = hasher.finish();
            if &actual != expected {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "digest mismatch for {}: expected {expected}, got {actual}",
                        self.what
                    ),
                ));
            }
        }
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_paths() {
        assert_eq!(normalize("./a/b").as_deref(), Some("a/b"));
        assert_eq!(normalize("a/../b").as_deref(), Some("b"));
        assert_eq!(normalize("../x"), None);
    }

    #[test]
    fn verifying_reader_rejects_mismatch() {
        let d = Digest::of_bytes(b"hello");
        let mut ok = VerifyingReader::new(&b"hello"[..], Some(d), "x");
        let mut s = Vec::new();
        ok.read_to_end(&mut s).unwrap();
        let mut bad = VerifyingReader::new(&b"hellO"[..], Some(d), "x");
        let err = bad.read_to_end(&mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("digest mismatch for x"), "{err}");
    }

    #[test]
    fn indexes_tar_and_follows_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tar");
        let mut b = tar::Builder::new(File::create(&path).unwrap());
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o644);
        b.append_data(&mut h, "d1/layer.tar", &b"12345"[..])
            .unwrap();
        let mut l = tar::Header::new_gnu();
        l.set_entry_type(tar::EntryType::Symlink);
        l.set_size(0);
        b.append_link(&mut l, "d2/layer.tar", "../d1/layer.tar")
            .unwrap();
        b.into_inner().unwrap();
        let src = ArchiveSource::open_path(&path, dir.path()).unwrap();
        let mut s = String::new();
        src.open("./d2/layer.tar", "test")
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "12345");
        assert!(src.open("nope", "test").is_err());
    }
}
