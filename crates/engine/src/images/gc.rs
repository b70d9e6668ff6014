//! Garbage collection of layers and blobs no image references.

use std::collections::HashSet;

use berth_image::Digest;

use super::{store, ImageService};
use crate::error::EngineError;
use crate::lock::FileLock;

impl ImageService<'_> {
    /// Removes spool files and per-layer lock files that killed loads left
    /// in `<root>/tmp`. Safe under the exclusive store lock: no load holds a
    /// layer lock then, and a spool file still being read by a load is only
    /// unlinked (its reader keeps its descriptor).
    fn sweep_tmp(&self) {
        let dir = self.engine.tmp_dir();
        let Ok(rd) = std::fs::read_dir(&dir) else {
            return;
        };
        for ent in rd.flatten() {
            let name = ent.file_name();
            let name = name.to_string_lossy();
            let ours = name.starts_with("load-")
                || (name.starts_with("layer-") && name.ends_with(".lock"));
            if ours {
                if let Err(e) = std::fs::remove_file(ent.path()) {
                    tracing::debug!("removing {}: {e}", ent.path().display());
                }
            }
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct GcResult {
    /// Chain ids of removed layers, top layers first.
    pub layers_removed: Vec<Digest>,
    pub bytes_freed: u64,
}

impl ImageService<'_> {
    /// Removes every layer and blob no image row references. Waits for
    /// running loads (which hold the store lock shared) to finish first.
    pub(crate) fn collect_garbage(&self) -> Result<GcResult, EngineError> {
        let _lock = FileLock::exclusive(&self.engine.store_lock_path())?;
        let images = store::load_all(self.engine.db().conn())?;
        let mut keep_layers: HashSet<Digest> = HashSet::new();
        let mut keep_blobs: HashSet<Digest> = HashSet::new();
        for img in &images {
            keep_blobs.insert(img.id);
            keep_blobs.extend(img.manifest_digest);
            for l in &img.layers {
                keep_layers.insert(l.chain_id);
                keep_blobs.extend(l.blob_digest);
            }
        }
        let layers = &self.engine.layers;
        let mut result = GcResult::default();
        let mut garbage: Vec<_> = layers
            .list()?
            .into_iter()
            .filter(|l| !keep_layers.contains(&l.chain_id))
            .collect();
        // Children before parents: the store refuses to remove a parent.
        while !garbage.is_empty() {
            let parents: HashSet<Digest> = layers.list()?.iter().filter_map(|l| l.parent).collect();
            let (leaves, rest): (Vec<_>, Vec<_>) = garbage
                .into_iter()
                .partition(|l| !parents.contains(&l.chain_id));
            if leaves.is_empty() {
                // The rest are parents of layers still referenced by images; they stay.
                break;
            }
            for l in leaves {
                layers.remove(&l.chain_id)?;
                result.bytes_freed += l.size;
                result.layers_removed.push(l.chain_id);
            }
            garbage = rest;
        }
        self.engine.sweep_splits(&keep_layers)?;
        self.sweep_tmp();
        let stats = self.engine.content.gc(&keep_blobs)?;
        result.bytes_freed += stats.bytes_freed;
        Ok(result)
    }
}
