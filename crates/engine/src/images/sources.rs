//! Where each layer came from: the registry blobs (compressed, as pulled)
//! whose content is a layer, keyed by the layer's diff id.
//!
//! Pulled layers are stored unpacked (plus a tar-split description), not as
//! their compressed blobs, as Docker and podman do. A push of the same
//! layer to a registry that already has, or can mount, the original blob
//! then sends nothing and keeps the blob digest, so pulled images keep
//! their manifest digests when pushed. (Docker's `v2metadata` does this.)
//! One small JSON file per diff id: `<root>/layer-sources/<diff hex>.json`.

use std::io::Write;
use std::path::PathBuf;

use berth_image::Digest;
use serde::{Deserialize, Serialize};

use crate::error::EngineError;
use crate::Engine;

/// One registry blob that holds a layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LayerSource {
    /// As references name it (`docker.io`, `localhost:5000`).
    pub registry: String,
    pub repository: String,
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
}

/// At most this many sources are kept per layer (the newest).
const MAX_SOURCES: usize = 16;

impl Engine {
    fn sources_path(&self, diff_id: &Digest) -> PathBuf {
        self.config
            .root
            .join("layer-sources")
            .join(format!("{}.json", diff_id.hex()))
    }

    /// The known sources of layer `diff_id`, newest first.
    pub(crate) fn layer_sources(&self, diff_id: &Digest) -> Vec<LayerSource> {
        std::fs::read(self.sources_path(diff_id))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Records that `source` holds layer `diff_id`. Concurrent writers may
    /// lose each other's entry, which only costs an upload later.
    pub(crate) fn add_layer_source(
        &self,
        diff_id: &Digest,
        source: LayerSource,
    ) -> Result<(), EngineError> {
        let mut all = self.layer_sources(diff_id);
        all.retain(|s| s != &source);
        all.insert(0, source);
        all.truncate(MAX_SOURCES);
        let path = self.sources_path(diff_id);
        let dir = path.parent().unwrap_or(&self.config.root).to_path_buf();
        std::fs::create_dir_all(&dir)
            .map_err(|e| EngineError::io(format!("creating {}", dir.display()), e))?;
        let bytes = serde_json::to_vec(&all)
            .map_err(|e| EngineError::Corrupt(format!("encoding layer sources: {e}")))?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".source-")
            .tempfile_in(&dir)
            .map_err(|e| EngineError::io(format!("creating a file in {}", dir.display()), e))?;
        tmp.write_all(&bytes)
            .map_err(|e| EngineError::io(format!("writing {}", tmp.path().display()), e))?;
        tmp.persist(&path)
            .map_err(|e| EngineError::io(format!("storing {}", path.display()), e.error))?;
        Ok(())
    }
}
