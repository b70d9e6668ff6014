//! Manifests, tags and the catalog: per-repository links over the shared blobs.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{exists, remove_file, Storage};
use crate::error::StorageError;
use crate::names::{valid_repository, valid_tag, Digest, Reference};

/// A manifest as pushed: its bytes and the media type it was pushed with.
#[derive(Debug, Clone)]
pub struct StoredManifest {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Vec<u8>,
}

impl Storage {
    fn revision_link(&self, name: &str, d: &Digest) -> PathBuf {
        self.repo_dir(name)
            .join("_manifests/revisions/sha256")
            .join(d.hex())
    }

    fn tags_dir(&self, name: &str) -> PathBuf {
        self.repo_dir(name).join("_manifests/tags")
    }

    /// Stores a manifest (already validated) in repository `name`, and
    /// points `tag` at it.
    pub fn put_manifest(
        &self,
        name: &str,
        bytes: &[u8],
        media_type: &str,
        tag: Option<&str>,
    ) -> Result<Digest, StorageError> {
        let d = self.put_small_blob(bytes)?;
        self.write_atomic(&self.revision_link(name, &d), media_type.as_bytes())?;
        if let Some(tag) = tag {
            self.write_atomic(&self.tags_dir(name).join(tag), d.to_string().as_bytes())?;
        }
        Ok(d)
    }

    /// The digest a tag points at.
    pub fn resolve_tag(&self, name: &str, tag: &str) -> Result<Option<Digest>, StorageError> {
        let p = self.tags_dir(name).join(tag);
        match fs::read_to_string(&p) {
            Ok(s) => Ok(Digest::parse(s.trim())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageError::io("read", p, e)),
        }
    }

    /// Whether repository `name` has manifest `d`, and with which media type.
    pub fn manifest_media_type(
        &self,
        name: &str,
        d: &Digest,
    ) -> Result<Option<String>, StorageError> {
        let p = self.revision_link(name, d);
        match fs::read_to_string(&p) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageError::io("read", p, e)),
        }
    }

    pub fn get_manifest(
        &self,
        name: &str,
        reference: &Reference,
    ) -> Result<Option<StoredManifest>, StorageError> {
        let digest = match reference {
            Reference::Digest(d) => d.clone(),
            Reference::Tag(t) => match self.resolve_tag(name, t)? {
                Some(d) => d,
                None => return Ok(None),
            },
        };
        let Some(media_type) = self.manifest_media_type(name, &digest)? else {
            return Ok(None);
        };
        let Some(bytes) = self.read_blob(&digest)? else {
            return Ok(None);
        };
        Ok(Some(StoredManifest {
            digest,
            media_type,
            bytes,
        }))
    }

    /// Removes manifest `d` and every tag pointing at it; false when the
    /// repository had no such manifest.
    pub fn delete_manifest(&self, name: &str, d: &Digest) -> Result<bool, StorageError> {
        if !remove_file(&self.revision_link(name, d))? {
            return Ok(false);
        }
        for tag in self.tags(name)?.unwrap_or_default() {
            if self.resolve_tag(name, &tag)?.as_ref() == Some(d) {
                remove_file(&self.tags_dir(name).join(&tag))?;
            }
        }
        Ok(true)
    }

    pub fn delete_tag(&self, name: &str, tag: &str) -> Result<bool, StorageError> {
        remove_file(&self.tags_dir(name).join(tag))
    }

    fn is_repository(&self, dir: &Path) -> Result<bool, StorageError> {
        Ok(exists(&dir.join("_manifests"))? || exists(&dir.join("_layers"))?)
    }

    /// The tags of repository `name`, sorted; `None` for an unknown repository.
    pub fn tags(&self, name: &str) -> Result<Option<Vec<String>>, StorageError> {
        if !self.is_repository(&self.repo_dir(name))? {
            return Ok(None);
        }
        let dir = self.tags_dir(name);
        let mut tags = Vec::new();
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Some(tags)),
            Err(e) => return Err(StorageError::io("read directory", dir, e)),
        };
        for e in rd {
            let e = e.map_err(|e| StorageError::io("read directory", &dir, e))?;
            if let Some(t) = e.file_name().to_str().filter(|t| valid_tag(t)) {
                tags.push(t.to_string());
            }
        }
        tags.sort();
        Ok(Some(tags))
    }

    /// Every repository's name, sorted.
    pub fn repositories(&self) -> Result<Vec<String>, StorageError> {
        let mut out = Vec::new();
        let base = self.root.join("repositories");
        self.walk_repositories(&base, "", &mut out)?;
        out.sort();
        Ok(out)
    }

    fn walk_repositories(
        &self,
        dir: &Path,
        prefix: &str,
        out: &mut Vec<String>,
    ) -> Result<(), StorageError> {
        let rd = match fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(StorageError::io("read directory", dir, e)),
        };
        for e in rd {
            let e = e.map_err(|e| StorageError::io("read directory", dir, e))?;
            let Some(component) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if component.starts_with('_') || !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let name = if prefix.is_empty() {
                component
            } else {
                format!("{prefix}/{component}")
            };
            if !valid_repository(&name) {
                continue;
            }
            let path = e.path();
            if self.is_repository(&path)? {
                out.push(name.clone());
            }
            self.walk_repositories(&path, &name, out)?;
        }
        Ok(())
    }
}
