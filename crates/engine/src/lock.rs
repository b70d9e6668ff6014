//! File locks between berth processes sharing a state root.
//!
//! Loads and imports hold the *store lock* shared while they add layers and
//! blobs that no image references yet; garbage collection holds it exclusive,
//! so it never sweeps what a running load is about to reference. A per-layer
//! lock makes concurrent loads of a shared layer unpack it once.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use fs2::FileExt;

use crate::error::EngineError;

/// A held `flock`, released on drop (the kernel also releases it when the
/// process dies, so a killed load never blocks later ones).
pub(crate) struct FileLock {
    file: File,
    path: PathBuf,
}

impl FileLock {
    fn open(path: &Path) -> Result<File, EngineError> {
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| EngineError::io(format!("opening lock file {}", path.display()), e))
    }

    pub(crate) fn shared(path: &Path) -> Result<Self, EngineError> {
        let file = Self::open(path)?;
        file.lock_shared()
            .map_err(|e| EngineError::io(format!("locking {} (shared)", path.display()), e))?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
        })
    }

    pub(crate) fn exclusive(path: &Path) -> Result<Self, EngineError> {
        let file = Self::open(path)?;
        file.lock_exclusive()
            .map_err(|e| EngineError::io(format!("locking {}", path.display()), e))?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
        })
    }
}

impl FileLock {
    /// The exclusive lock if nobody holds the file locked; `None` if
    /// somebody does or it cannot be opened.
    pub(crate) fn try_exclusive(path: &Path) -> Option<Self> {
        let file = Self::open(path).ok()?;
        file.try_lock_exclusive().ok()?;
        Some(Self {
            file,
            path: path.to_path_buf(),
        })
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        if let Err(e) = FileExt::unlock(&self.file) {
            tracing::debug!("unlocking {}: {e}", self.path.display());
        }
    }
}
