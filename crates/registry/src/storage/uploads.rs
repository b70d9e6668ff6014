//! Upload sessions: `_uploads/<uuid>/data` grows chunk by chunk; the running
//! sha256 is kept in memory so that completing a multi-gigabyte upload does
//! not read it again (after a restart it is recomputed from the file).

use std::collections::HashMap;
use std::fs;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;

use super::{random_id, Storage};
use crate::error::StorageError;
use crate::names::Digest;

/// Bytes gathered before a write(2): chunks arrive from the socket in
/// pieces of a few KiB.
const WRITE_BUFFER: usize = 1 << 20;

/// Sessions untouched this long are removed when the store is opened
/// (distribution's default purge age).
pub(super) const STALE_UPLOAD_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// What the server knows of a session between requests.
#[derive(Debug)]
pub struct UploadState {
    /// Bytes received so far.
    pub size: u64,
    /// The sha256 of those bytes; `None` when it must be recomputed.
    pub hasher: Option<Sha256>,
    /// Completed or cancelled: a request that waited for the lock finds it gone.
    pub closed: bool,
}

/// The sessions in progress, one async lock each so that two requests on
/// one session run one after the other.
#[derive(Default)]
pub struct UploadSessions {
    map: Mutex<HashMap<String, Arc<tokio::sync::Mutex<UploadState>>>>,
}

impl UploadSessions {
    pub fn insert(&self, uuid: &str) -> Arc<tokio::sync::Mutex<UploadState>> {
        let s = Arc::new(tokio::sync::Mutex::new(UploadState {
            size: 0,
            hasher: Some(Sha256::new()),
            closed: false,
        }));
        self.lock().insert(uuid.to_string(), s.clone());
        s
    }

    /// The session `uuid` of repository `name`, also one started before a
    /// restart of the server.
    pub fn get(
        &self,
        storage: &Storage,
        name: &str,
        uuid: &str,
    ) -> Result<Option<Arc<tokio::sync::Mutex<UploadState>>>, StorageError> {
        if !valid_uuid(uuid) || storage.upload_repository(uuid)?.as_deref() != Some(name) {
            return Ok(None);
        }
        let mut map = self.lock();
        if let Some(s) = map.get(uuid) {
            return Ok(Some(s.clone()));
        }
        let data = storage.upload_data_path(uuid);
        let size = fs::metadata(&data)
            .map_err(|e| StorageError::io("stat", &data, e))?
            .len();
        let s = Arc::new(tokio::sync::Mutex::new(UploadState {
            size,
            hasher: None,
            closed: false,
        }));
        map.insert(uuid.to_string(), s.clone());
        Ok(Some(s))
    }

    pub fn remove(&self, uuid: &str) {
        self.lock().remove(uuid);
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, Arc<tokio::sync::Mutex<UploadState>>>> {
        // A panic while holding this lock cannot leave the map half-updated.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn valid_uuid(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Storage {
    fn upload_dir(&self, uuid: &str) -> PathBuf {
        self.uploads_dir().join(uuid)
    }

    pub fn upload_data_path(&self, uuid: &str) -> PathBuf {
        self.upload_dir(uuid).join("data")
    }

    /// Starts a session for repository `name`; returns its id.
    pub fn create_upload(&self, name: &str) -> Result<String, StorageError> {
        let uuid = random_id();
        let dir = self.upload_dir(&uuid);
        fs::create_dir(&dir).map_err(|e| StorageError::io("create directory", &dir, e))?;
        let data = dir.join("data");
        fs::File::create(&data).map_err(|e| StorageError::io("create", &data, e))?;
        let repo = dir.join("repository");
        fs::write(&repo, name).map_err(|e| StorageError::io("write", &repo, e))?;
        Ok(uuid)
    }

    /// The repository a session belongs to; `None` for no such session.
    pub fn upload_repository(&self, uuid: &str) -> Result<Option<String>, StorageError> {
        let p = self.upload_dir(uuid).join("repository");
        match fs::read_to_string(&p) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageError::io("read", p, e)),
        }
    }

    /// Moves a verified upload into the blob store and links it into `name`.
    pub fn commit_upload(&self, uuid: &str, name: &str, d: &Digest) -> Result<(), StorageError> {
        self.rename_into_place(&self.upload_data_path(uuid), &self.blob_path(d))?;
        self.remove_upload(uuid)?;
        self.link_blob(name, d)
    }

    /// Removes sessions whose data was last written more than `age` ago
    /// (clients that gave up); best effort, a session it cannot remove stays.
    pub(super) fn purge_stale_uploads(&self, age: Duration) {
        let Ok(rd) = fs::read_dir(self.uploads_dir()) else {
            return;
        };
        let now = SystemTime::now();
        for e in rd.flatten() {
            let data = e.path().join("data");
            let stale = fs::metadata(&data)
                .and_then(|m| m.modified())
                .map(|t| now.duration_since(t).unwrap_or_default() > age)
                .unwrap_or(true);
            if stale {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }

    pub fn remove_upload(&self, uuid: &str) -> Result<(), StorageError> {
        let dir = self.upload_dir(uuid);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::io("remove", dir, e)),
        }
    }
}

/// Appends the chunks from `rx` to `path` at `offset` (anything past it,
/// left by an interrupted request, is cut first), hashing as it goes.
/// Returns the bytes written and the updated hasher, or the hasher gone
/// when a write failed after hashing.
pub fn write_chunks(
    path: &Path,
    offset: u64,
    mut hasher: Option<Sha256>,
    mut rx: mpsc::Receiver<Bytes>,
) -> Result<(u64, Option<Sha256>), StorageError> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| StorageError::io("open", path, e))?;
    f.set_len(offset)
        .map_err(|e| StorageError::io("truncate", path, e))?;
    f.seek(SeekFrom::Start(offset))
        .map_err(|e| StorageError::io("seek", path, e))?;
    let mut w = BufWriter::with_capacity(WRITE_BUFFER, f);
    let mut written = 0u64;
    while let Some(chunk) = rx.blocking_recv() {
        if let Some(h) = hasher.as_mut() {
            h.update(&chunk);
        }
        if let Err(e) = w.write_all(&chunk) {
            return Err(StorageError::io("write", path, e));
        }
        written += chunk.len() as u64;
    }
    w.flush().map_err(|e| StorageError::io("write", path, e))?;
    Ok((written, hasher))
}

/// The sha256 of a file (a session resumed after a restart).
pub fn hash_file(path: &Path) -> Result<Sha256, StorageError> {
    let mut f = fs::File::open(path).map_err(|e| StorageError::io("open", path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; WRITE_BUFFER];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| StorageError::io("read", path, e))?;
        if n == 0 {
            return Ok(h);
        }
        h.update(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_sessions_are_purged_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path()).unwrap();
        let (old, fresh) = (s.create_upload("a").unwrap(), s.create_upload("a").unwrap());
        let week_ago = SystemTime::now() - STALE_UPLOAD_AGE - Duration::from_secs(60);
        fs::File::options()
            .write(true)
            .open(s.upload_data_path(&old))
            .unwrap()
            .set_modified(week_ago)
            .unwrap();
        let s = Storage::open(dir.path()).unwrap();
        assert_eq!(s.upload_repository(&old).unwrap(), None);
        assert_eq!(s.upload_repository(&fresh).unwrap().as_deref(), Some("a"));
    }
}
