//! Errors of the image crate and their coarse categories.

use std::path::PathBuf;

use crate::digest::Digest;

/// Coarse error category that front ends map to exit codes / HTTP statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    InvalidArgument,
    Conflict,
    Corrupt,
    Io,
}

/// Errors from parsing an image reference (`busybox`, `localhost:5000/a/b:t`, `name@sha256:…`).
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("invalid reference format: {reference:?} is empty")]
    Empty { reference: String },
    #[error("invalid reference format: repository name ({name}) must be lowercase")]
    Uppercase { reference: String, name: String },
    #[error("invalid repository name ({reference}), cannot specify 64-byte hexadecimal strings")]
    HexRepository { reference: String },
    #[error(
        "invalid reference format: {reference:?}: repository name is longer than 255 characters"
    )]
    NameTooLong { reference: String },
    #[error("invalid reference format: {reference:?}: invalid domain {domain:?}")]
    InvalidDomain { reference: String, domain: String },
    #[error("invalid reference format: {reference:?}: invalid path component {component:?}")]
    InvalidPathComponent {
        reference: String,
        component: String,
    },
    #[error("invalid reference format: {reference:?}: invalid tag {tag:?}")]
    InvalidTag { reference: String, tag: String },
    #[error("invalid reference format: {reference:?}: invalid digest {digest:?}")]
    InvalidDigest { reference: String, digest: String },
}

/// Errors from digests, the content store, image documents, layers and snapshots.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid digest {value:?}: {reason}")]
    InvalidDigest { value: String, reason: &'static str },
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("blob {digest} not found in content store {store}")]
    BlobNotFound { digest: Digest, store: PathBuf },
    #[error("layer {chain_id} not found in layer store {store}")]
    LayerNotFound { chain_id: Digest, store: PathBuf },
    /// A layer applied before the layers below it were stored
    /// ([`crate::LayerStore::apply_before_parent`]) hardlinks to a file of a
    /// lower layer; apply it again once its parent is stored.
    #[error(
        "layer {layer}: entry {entry:?} links to a file of a lower layer, which is not stored yet"
    )]
    LowerLayersPending { layer: String, entry: String },
    #[error("layer {chain_id} is in use: it is the parent of layer {child}")]
    LayerInUse { chain_id: Digest, child: Digest },
    #[error("layer {chain_id}: corrupt metadata {path}: {reason}")]
    LayerCorrupt {
        chain_id: Digest,
        path: PathBuf,
        reason: String,
    },
    /// A tar entry that cannot be applied safely (path escapes, symlink traversal, …).
    #[error("layer {layer}: entry {entry:?}: {reason}")]
    LayerEntry {
        layer: String,
        entry: String,
        reason: String,
    },
    /// A syscall on a tar entry failed.
    #[error("layer {layer}: entry {entry:?}: {op}: {source}")]
    LayerEntryIo {
        layer: String,
        entry: String,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("layer {layer}: reading tar stream: {source}")]
    LayerTar {
        layer: String,
        #[source]
        source: std::io::Error,
    },
    #[error("writing layer tar from {path}: entry {entry:?}: {source}")]
    TarWrite {
        path: PathBuf,
        entry: String,
        #[source]
        source: std::io::Error,
    },
    #[error("decompressing {what}: {source}")]
    Decompress {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing {what}: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid {what}: {reason}")]
    InvalidDocument { what: String, reason: String },
    #[error("unsupported media type {media_type:?} for {what}")]
    UnsupportedMediaType {
        what: &'static str,
        media_type: String,
    },
    #[error("invalid platform {platform:?}: {reason}")]
    InvalidPlatform {
        platform: String,
        reason: &'static str,
    },
    #[error(
        "no matching manifest for {platform} in the manifest list entries (available: {available})"
    )]
    NoMatchingPlatform { platform: String, available: String },
    #[error("snapshot {key:?} not found in {store}")]
    SnapshotNotFound { key: String, store: PathBuf },
    #[error("snapshot {key:?} already exists in {store}")]
    SnapshotExists { key: String, store: PathBuf },
    #[error("invalid snapshot key {key:?}: {reason}")]
    InvalidSnapshotKey { key: String, reason: &'static str },
    #[error("snapshot {key:?}: overlay mount options are {len} bytes, over the {limit}-byte limit of mount(2)")]
    MountOptionsTooLong {
        key: String,
        len: usize,
        limit: usize,
    },
    #[error("snapshot is still mounted at {target}")]
    SnapshotMounted { target: PathBuf },
    #[error("{op} {target}: {source}")]
    Mount {
        op: &'static str,
        target: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Reference(#[from] ReferenceError),
}

impl ImageError {
    /// The category of this error, for exit codes and HTTP statuses.
    pub fn kind(&self) -> ErrorKind {
        use ImageError::*;
        match self {
            Io { source, .. } | LayerEntryIo { source, .. } | Mount { source, .. } => {
                match source.kind() {
                    std::io::ErrorKind::NotFound => ErrorKind::NotFound,
                    std::io::ErrorKind::AlreadyExists => ErrorKind::Conflict,
                    _ => ErrorKind::Io,
                }
            }
            TarWrite { .. } => ErrorKind::Io,
            InvalidDigest { .. }
            | InvalidPlatform { .. }
            | InvalidSnapshotKey { .. }
            | MountOptionsTooLong { .. }
            | UnsupportedMediaType { .. }
            | Reference(_) => ErrorKind::InvalidArgument,
            DigestMismatch { .. }
            | LayerCorrupt { .. }
            | LayerEntry { .. }
            | LayerTar { .. }
            | Decompress { .. }
            | Json { .. }
            | InvalidDocument { .. } => ErrorKind::Corrupt,
            BlobNotFound { .. }
            | LayerNotFound { .. }
            | SnapshotNotFound { .. }
            | NoMatchingPlatform { .. } => ErrorKind::NotFound,
            LayerInUse { .. }
            | LowerLayersPending { .. }
            | SnapshotExists { .. }
            | SnapshotMounted { .. } => ErrorKind::Conflict,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ImageError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

impl ReferenceError {
    /// Reference errors are always the caller's input.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}
