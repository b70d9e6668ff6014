//! berth's image layer: content store, references, image documents, layers and
//! overlay snapshots.
//!
//! - [`Digest`], [`Reference`]: identifiers (`sha256:…`, `busybox` →
//!   `docker.io/library/busybox:latest`).
//! - [`ContentStore`]: blobs by digest under `<root>/content`.
//! - [`model`]: OCI and Docker schema2 manifests, indexes and configs.
//! - [`LayerStore`]: unpacked layers keyed by chain id under `<root>/layers`,
//!   applied by a hand-written, escape-proof tar unpacker.
//! - [`diff_from_upper`]: layer tar from an overlay upper dir (commit/build).
//! - [`OverlaySnapshotter`]: writable overlay snapshots on top of layers.
//!
//! Refinements of the first published API: `OverlaySnapshotter::open` takes
//! the [`LayerStore`] its snapshots stack on; `prepare` takes an optional
//! parent chain id (`None`: an empty base). [`LayerStore::write_tar`]
//! reproduces the applied diff id only for tars berth generated itself, so
//! save/push keep original layer blobs in the [`ContentStore`] (see its docs).
//! [`LayerStore::apply`] reads its stream to the end (trailing tar padding
//! included) before it returns.

mod compression;
mod content;
mod digest;
mod error;
mod fsutil;
mod layer;
pub mod model;
mod overlay_mount;
mod reference;
pub mod registry;
mod snapshot;

pub use compression::{decompress, detect_compression, Compression};
pub use content::{BlobWriter, ContentStore, GcStats};
pub use digest::{Digest, Hasher, HashingReader, HashingWriter};
pub use error::{ErrorKind, ImageError, ReferenceError};
pub use layer::{chain_id, diff_from_upper, LayerInfo, LayerStore};
pub use reference::{Reference, DEFAULT_DOMAIN, DEFAULT_TAG};
pub use snapshot::{recycle as recycle_snapshot, OverlaySnapshotter, SnapshotMount};
