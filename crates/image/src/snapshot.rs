//! Overlay snapshots.
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::error::ImageError;
use crate::layer::LayerStore;

/// Writable overlay snapshots under `<root>/snapshots/<key>/{upper,work,merged}`.
pub struct OverlaySnapshotter {
    dir: PathBuf,
    layers: LayerStore,
}

/// How to mount a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotMount {
    pub key: String,
    /// Short link names relative to `layers_dir`, top first.
    pub lowerdirs: Vec<String>,
    pub layers_dir: PathBuf,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub merged: PathBuf,
    /// overlay mount data; relative lowerdirs: mount with cwd = `layers_dir`.
    pub options: String,
}

impl OverlaySnapshotter {
    pub fn open(root: &Path, layers: LayerStore) -> Result<Self, ImageError> {
        let _ = (root, &layers);
        todo!()
    }
    pub fn prepare(&self, key: &str, parent: Option<&Digest>) -> Result<SnapshotMount, ImageError> {
        let _ = (key, parent, &self.dir, &self.layers);
        todo!()
    }
    pub fn mount(&self, key: &str, target: &Path) -> Result<(), ImageError> {
        let _ = (key, target);
        todo!()
    }
    pub fn unmount(&self, target: &Path) -> Result<(), ImageError> {
        let _ = target;
        todo!()
    }
    pub fn remove(&self, key: &str) -> Result<(), ImageError> {
        let _ = key;
        todo!()
    }
}
