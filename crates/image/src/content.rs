//! Content-addressed blob store: `<root>/content/sha256/<hex>`.
//!
//! Writers stream into `<root>/content/ingest/<unique>` (hashing while writing),
//! fsync, verify the digest and rename into place. The rename is atomic, and
//! renaming over an identical blob written concurrently by someone else is
//! harmless, so concurrent writers of the same blob need no coordination.
//! Each ingest file is `flock`ed by its writer: `gc` removes only ingest files
//! whose writer is gone.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::digest::{Digest, HashingWriter};
use crate::error::ImageError;
use crate::fsutil::{self, RemoveOnDrop};

/// What a [`ContentStore::gc`] removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcStats {
    pub blobs_removed: usize,
    pub bytes_freed: u64,
    pub ingest_removed: usize,
}

/// Blobs (manifests, configs, compressed layers) by sha256.
#[derive(Debug, Clone)]
pub struct ContentStore {
    blobs: PathBuf,
    ingest: PathBuf,
}

impl ContentStore {
    /// Opens (creating) the store under `<root>/content`.
    pub fn open(root: &Path) -> Result<Self, ImageError> {
        let blobs = root.join("content").join("sha256");
        let ingest = root.join("content").join("ingest");
        fsutil::create_dir_all(&blobs)?;
        fsutil::create_dir_all(&ingest)?;
        Ok(Self { blobs, ingest })
    }

    /// Path a blob is (or would be) stored at.
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.blobs.join(d.hex())
    }

    /// Streams `r` into the store. With `expected`, a mismatch stores nothing and
    /// returns [`ImageError::DigestMismatch`]; when the expected blob is already
    /// present, `r` is not read at all.
    pub fn write(
        &self,
        mut r: impl Read,
        expected: Option<&Digest>,
    ) -> Result<(Digest, u64), ImageError> {
        if let Some(d) = expected {
            if let Ok(size) = self.size(d) {
                return Ok((*d, size));
            }
        }
        let mut writer = self.writer()?;
        io::copy(&mut r, &mut writer).map_err(|e| ImageError::io("write blob", &writer.path, e))?;
        writer.commit(expected)
    }

    /// Stores `b` and returns its digest.
    pub fn write_bytes(&self, b: &[u8]) -> Result<Digest, ImageError> {
        let d = Digest::of_bytes(b);
        self.write(b, Some(&d)).map(|(d, _)| d)
    }

    /// Creates and locks a fresh ingest file, retrying if `gc` removed it between
    /// creation and locking.
    fn create_ingest(&self) -> Result<(File, PathBuf), ImageError> {
        loop {
            let path = self.ingest.join(fsutil::unique_name(""));
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .open(&path)
                .map_err(|e| ImageError::io("create ingest file", &path, e))?;
            fsutil::flock(&file, &path, false)?;
            if fsutil::still_linked(&file, &path) {
                return Ok((file, path));
            }
        }
    }

    /// Opens a blob for reading.
    pub fn open_blob(&self, d: &Digest) -> Result<File, ImageError> {
        let p = self.blob_path(d);
        File::open(&p).map_err(|e| self.not_found_or(d, "open blob", &p, e))
    }

    /// Reads a whole blob (manifests, configs) and verifies it against its digest.
    pub fn read(&self, d: &Digest) -> Result<Vec<u8>, ImageError> {
        let p = self.blob_path(d);
        let b = fs::read(&p).map_err(|e| self.not_found_or(d, "read blob", &p, e))?;
        let actual = Digest::of_bytes(&b);
        if actual != *d {
            return Err(ImageError::DigestMismatch {
                expected: *d,
                actual,
            });
        }
        Ok(b)
    }

    /// Re-hashes a stored blob, for `fsck`-style checks of large blobs.
    pub fn verify(&self, d: &Digest) -> Result<(), ImageError> {
        let mut f = self.open_blob(d)?;
        let mut w = HashingWriter::new(io::sink());
        io::copy(&mut f, &mut w).map_err(|e| ImageError::io("read blob", self.blob_path(d), e))?;
        let (_, actual, _) = w.finish();
        if actual != *d {
            return Err(ImageError::DigestMismatch {
                expected: *d,
                actual,
            });
        }
        Ok(())
    }

    pub fn contains(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    pub fn size(&self, d: &Digest) -> Result<u64, ImageError> {
        let p = self.blob_path(d);
        fs::metadata(&p)
            .map(|m| m.len())
            .map_err(|e| self.not_found_or(d, "stat blob", &p, e))
    }

    /// Removes a blob; a missing blob is [`ImageError::BlobNotFound`].
    pub fn remove(&self, d: &Digest) -> Result<(), ImageError> {
        let p = self.blob_path(d);
        fs::remove_file(&p).map_err(|e| self.not_found_or(d, "remove blob", &p, e))
    }

    /// Every stored blob, sorted. Files that are not named by a digest are skipped.
    pub fn list(&self) -> Result<Vec<Digest>, ImageError> {
        let rd = fs::read_dir(&self.blobs)
            .map_err(|e| ImageError::io("read directory", &self.blobs, e))?;
        let mut out = Vec::new();
        for ent in rd {
            let ent = ent.map_err(|e| ImageError::io("read directory", &self.blobs, e))?;
            if let Some(d) = ent
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok())
            {
                out.push(d);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Mark-and-sweep: removes every blob not in `keep` (the caller marks by
    /// walking its images' manifests) and ingest files whose writer is gone.
    /// The caller must hold its image-metadata lock so no new reference to an
    /// unmarked blob appears during the sweep.
    pub fn gc(&self, keep: &HashSet<Digest>) -> Result<GcStats, ImageError> {
        let mut stats = GcStats::default();
        for d in self.list()? {
            if keep.contains(&d) {
                continue;
            }
            let size = self.size(&d).unwrap_or(0);
            match self.remove(&d) {
                Ok(()) => {
                    stats.blobs_removed += 1;
                    stats.bytes_freed += size;
                }
                Err(e) if e.kind() == crate::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        stats.ingest_removed = self.remove_stale_ingest()?;
        Ok(stats)
    }

    fn remove_stale_ingest(&self) -> Result<usize, ImageError> {
        let rd = fs::read_dir(&self.ingest)
            .map_err(|e| ImageError::io("read directory", &self.ingest, e))?;
        let mut removed = 0;
        for ent in rd {
            let ent = ent.map_err(|e| ImageError::io("read directory", &self.ingest, e))?;
            let path = ent.path();
            let Ok(f) = File::open(&path) else { continue };
            // A live writer holds the lock; a dead one released it with its fd.
            if fsutil::flock(&f, &path, true).unwrap_or(false) {
                match fs::remove_file(&path) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(ImageError::io("remove ingest file", &path, e)),
                }
            }
        }
        Ok(removed)
    }

    fn not_found_or(&self, d: &Digest, op: &'static str, p: &Path, e: io::Error) -> ImageError {
        if e.kind() == io::ErrorKind::NotFound {
            ImageError::BlobNotFound {
                digest: *d,
                store: self.blobs.clone(),
            }
        } else {
            ImageError::io(op, p, e)
        }
    }
}

/// A writer into the store for callers that produce a blob incrementally
/// (e.g. a registry download or a tar being built); `commit` verifies and
/// renames it into place.
pub struct BlobWriter<'a> {
    store: &'a ContentStore,
    path: PathBuf,
    guard: RemoveOnDrop,
    inner: HashingWriter<io::BufWriter<File>>,
}

impl ContentStore {
    /// Starts an incremental blob write.
    pub fn writer(&self) -> Result<BlobWriter<'_>, ImageError> {
        let (file, path) = self.create_ingest()?;
        Ok(BlobWriter {
            store: self,
            guard: RemoveOnDrop(Some(path.clone())),
            path,
            inner: HashingWriter::new(io::BufWriter::with_capacity(1 << 20, file)),
        })
    }
}

impl BlobWriter<'_> {
    /// Finishes the blob: verifies against `expected` if given, fsyncs and
    /// renames it into place. Returns its digest and size.
    pub fn commit(mut self, expected: Option<&Digest>) -> Result<(Digest, u64), ImageError> {
        let (buf, actual, size) = self.inner.finish();
        let file = buf
            .into_inner()
            .map_err(|e| ImageError::io("write blob", &self.path, e.into_error()))?;
        if let Some(expected) = expected {
            if *expected != actual {
                return Err(ImageError::DigestMismatch {
                    expected: *expected,
                    actual,
                });
            }
        }
        file.sync_all()
            .map_err(|e| ImageError::io("fsync blob", &self.path, e))?;
        let dest = self.store.blob_path(&actual);
        fs::rename(&self.path, &dest)
            .map_err(|e| ImageError::io("rename blob into place", &dest, e))?;
        self.guard.disarm();
        fsutil::sync_dir(&self.store.blobs)?;
        Ok((actual, size))
    }
}

impl Write for BlobWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
