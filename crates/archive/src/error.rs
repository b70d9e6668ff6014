//! Errors of archive reading and writing.

use std::path::PathBuf;

/// Coarse category of an [`ArchiveError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveErrorKind {
    /// The caller asked for something the archive cannot be (wrong format name …).
    InvalidArgument,
    /// The archive is truncated, malformed or fails digest verification.
    DataLoss,
    /// A file the archive names is absent from it.
    NotFound,
    /// Local I/O failed.
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading archive: {source}")]
    Read {
        #[source]
        source: std::io::Error,
    },
    #[error("writing archive entry {entry}: {source}")]
    Write {
        entry: String,
        #[source]
        source: std::io::Error,
    },
    #[error("archive is truncated or not a tar archive: {reason}")]
    Malformed { reason: String },
    #[error("archive has no {0} (neither a docker-archive nor an OCI layout)")]
    UnknownFormat(&'static str),
    #[error("file {path:?} named by the archive's {by} is missing from it")]
    MissingEntry { path: String, by: String },
    #[error("parsing {what} in archive: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid {what} in archive: {reason}")]
    Invalid { what: String, reason: String },
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("unsupported archive format {0:?} (use docker-archive or oci-archive)")]
    UnsupportedFormat(String),
    #[error(transparent)]
    Image(#[from] berth_image::ImageError),
}

impl ArchiveError {
    pub fn kind(&self) -> ArchiveErrorKind {
        match self {
            Self::UnsupportedFormat(_) => ArchiveErrorKind::InvalidArgument,
            Self::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                ArchiveErrorKind::NotFound
            }
            Self::Io { .. } | Self::Write { .. } => ArchiveErrorKind::Internal,
            Self::Image(e) => match e.kind() {
                berth_image::ErrorKind::NotFound => ArchiveErrorKind::NotFound,
                berth_image::ErrorKind::InvalidArgument => ArchiveErrorKind::InvalidArgument,
                berth_image::ErrorKind::Corrupt => ArchiveErrorKind::DataLoss,
                _ => ArchiveErrorKind::Internal,
            },
            Self::Read { .. }
            | Self::Malformed { .. }
            | Self::UnknownFormat(_)
            | Self::MissingEntry { .. }
            | Self::Json { .. }
            | Self::Invalid { .. }
            | Self::DigestMismatch { .. } => ArchiveErrorKind::DataLoss,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn json(what: impl Into<String>, source: serde_json::Error) -> Self {
        Self::Json {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            what: what.into(),
            reason: reason.into(),
        }
    }
}
