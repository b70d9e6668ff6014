//! The registry's store under its root directory:
//!
//! ```text
//! blobs/sha256/<ab>/<hex>                          content, by digest, shared by all repositories
//! repositories/<name>/_layers/sha256/<hex>         empty link: the blob belongs to this repository
//! repositories/<name>/_manifests/revisions/sha256/<hex>   link to a manifest, holding its media type
//! repositories/<name>/_manifests/tags/<tag>        the digest the tag points at
//! _uploads/<uuid>/{data,repository}                upload sessions in progress
//! _tmp/                                            files being written, renamed into place
//! ```
//!
//! Every file a reader can see is complete: blobs are renamed from their
//! upload session after their digest was verified, links and tags are
//! written beside and renamed. Concurrent pushes of one blob each write
//! their own session and rename the same verified content over each other.
//! Repository components cannot start with `_`, so `_layers`, `_manifests`
//! and `_uploads` never collide with a repository's name.

mod manifests;
mod uploads;

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub use manifests::StoredManifest;
pub use uploads::{hash_file, write_chunks, UploadSessions, UploadState};

use crate::error::StorageError;
use crate::names::Digest;

/// The registry's on-disk store (synchronous; the server calls it from
/// blocking tasks).
#[derive(Debug)]
pub struct Storage {
    root: PathBuf,
}

impl Storage {
    /// Opens (creating) the store at `root` and drops temporary files left
    /// by a crash.
    pub fn open(root: &Path) -> Result<Self, StorageError> {
        let s = Self {
            root: root.to_path_buf(),
        };
        for d in [
            s.root.join("blobs/sha256"),
            s.root.join("repositories"),
            s.uploads_dir(),
        ] {
            mkdirs(&d)?;
        }
        let tmp = s.tmp_dir();
        match fs::remove_dir_all(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StorageError::io("remove", tmp, e)),
        }
        mkdirs(&tmp)?;
        s.purge_stale_uploads(uploads::STALE_UPLOAD_AGE);
        Ok(s)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        let hex = d.hex();
        self.root.join("blobs/sha256").join(&hex[..2]).join(hex)
    }

    /// The size of a stored blob, if the store has it.
    pub fn blob_size(&self, d: &Digest) -> Result<Option<u64>, StorageError> {
        let p = self.blob_path(d);
        match fs::metadata(&p) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageError::io("stat", p, e)),
        }
    }

    pub(crate) fn repo_dir(&self, name: &str) -> PathBuf {
        self.root.join("repositories").join(name)
    }

    fn layer_link(&self, name: &str, d: &Digest) -> PathBuf {
        self.repo_dir(name).join("_layers/sha256").join(d.hex())
    }

    /// The size of blob `d` when repository `name` holds it.
    pub fn repo_blob_size(&self, name: &str, d: &Digest) -> Result<Option<u64>, StorageError> {
        if !exists(&self.layer_link(name, d))? {
            return Ok(None);
        }
        self.blob_size(d)
    }

    /// Makes blob `d` (already stored) part of repository `name`.
    pub fn link_blob(&self, name: &str, d: &Digest) -> Result<(), StorageError> {
        let link = self.layer_link(name, d);
        if exists(&link)? {
            return Ok(());
        }
        self.write_atomic(&link, b"")
    }

    /// Removes blob `d` from repository `name`; false when it had none. The
    /// content stays for other repositories (no garbage collection here).
    pub fn unlink_blob(&self, name: &str, d: &Digest) -> Result<bool, StorageError> {
        remove_file(&self.layer_link(name, d))
    }

    /// Stores `data` as a blob (manifests: small, verified by hashing here).
    pub fn put_small_blob(&self, data: &[u8]) -> Result<Digest, StorageError> {
        let d = Digest::of_bytes(data);
        let p = self.blob_path(&d);
        if !exists(&p)? {
            self.write_atomic(&p, data)?;
        }
        Ok(d)
    }

    pub fn read_blob(&self, d: &Digest) -> Result<Option<Vec<u8>>, StorageError> {
        let p = self.blob_path(d);
        match fs::read(&p) {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageError::io("read", p, e)),
        }
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("_tmp")
    }

    pub(crate) fn uploads_dir(&self) -> PathBuf {
        self.root.join("_uploads")
    }

    /// Writes `data` to `target` so that readers see the old file or the
    /// whole new one, never a part.
    pub(crate) fn write_atomic(&self, target: &Path, data: &[u8]) -> Result<(), StorageError> {
        let tmp = self.tmp_dir().join(random_id());
        let mut f = fs::File::create(&tmp).map_err(|e| StorageError::io("create", &tmp, e))?;
        f.write_all(data)
            .map_err(|e| StorageError::io("write", &tmp, e))?;
        drop(f);
        self.rename_into_place(&tmp, target)
    }

    /// Renames `from` to `target`, creating `target`'s parent on the way.
    pub(crate) fn rename_into_place(&self, from: &Path, target: &Path) -> Result<(), StorageError> {
        if let Some(parent) = target.parent() {
            mkdirs(parent)?;
        }
        fs::rename(from, target).map_err(|e| {
            let _ = fs::remove_file(from);
            StorageError::io("rename into", target, e)
        })
    }
}

/// 128 random bits in hex: upload session ids and temporary file names.
pub(crate) fn random_id() -> String {
    let a: u128 = rand::random();
    format!("{a:032x}")
}

pub(crate) fn mkdirs(p: &Path) -> Result<(), StorageError> {
    fs::create_dir_all(p).map_err(|e| StorageError::io("create directory", p, e))
}

pub(crate) fn exists(p: &Path) -> Result<bool, StorageError> {
    match fs::symlink_metadata(p) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(StorageError::io("stat", p, e)),
    }
}

/// Removes a file; false when there was none.
pub(crate) fn remove_file(p: &Path) -> Result<bool, StorageError> {
    match fs::remove_file(p) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(StorageError::io("remove", p, e)),
    }
}
