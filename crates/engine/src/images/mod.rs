//! The image service: image metadata in SQLite over the content and layer stores.

pub mod change;
pub(crate) mod commit;
mod gc;
mod gzip;
mod http;
mod ingest;
mod inspect;
mod layer_tars;
pub(crate) mod list;
mod pull;
mod push;
mod remove;
mod resolve;
mod save;
mod sources;
mod store;
mod transfer;

use berth_image::{Digest, Reference};
use chrono::{DateTime, Utc};

use crate::Engine;

pub use ingest::{ImportOptions, ImportSource, LoadReport, LoadedImage};
pub use inspect::HistoryEntry;
pub use list::{ImageFilters, ImageSummary};
pub use pull::PullReport;
pub use push::PushReport;
pub use remove::{PruneFilters, PruneReport, RemoveEvent};
pub use transfer::{LayerStatus, NoProgress, TransferProgress};

/// The id (`sha256:…`) of the image `name` refers to among `images`, if any.
pub(crate) fn resolve_id(images: &[ImageRecord], name: &str) -> Option<String> {
    resolve::resolve(images, name)
        .ok()
        .map(|(i, _)| images[i].id.to_string())
}

/// Image operations on one [`Engine`].
pub struct ImageService<'e> {
    engine: &'e Engine,
}

impl<'e> ImageService<'e> {
    pub(crate) fn new(engine: &'e Engine) -> Self {
        Self { engine }
    }
}

/// One image as stored: the row, its tags, digests and layers.
#[derive(Debug, Clone)]
pub(crate) struct ImageRecord {
    pub id: Digest,
    pub manifest_digest: Option<Digest>,
    pub config_json: String,
    pub config: berth_image::model::ImageConfig,
    pub created: Option<DateTime<Utc>>,
    pub size: u64,
    pub parent: Option<Digest>,
    pub last_tag_time: Option<String>,
    /// Full names, sorted.
    pub tags: Vec<Reference>,
    /// `repo@sha256:…`, full names.
    pub digests: Vec<Reference>,
    pub layers: Vec<LayerRef>,
}

#[derive(Debug, Clone)]
pub(crate) struct LayerRef {
    pub chain_id: Digest,
    pub diff_id: Digest,
    pub blob_digest: Option<Digest>,
    pub size: u64,
}

impl ImageRecord {
    pub fn is_dangling(&self) -> bool {
        self.tags.is_empty() && self.digests.is_empty()
    }

    pub fn labels(&self) -> std::collections::BTreeMap<String, String> {
        self.config
            .config
            .as_ref()
            .map(|c| c.labels.clone())
            .unwrap_or_default()
    }
}
