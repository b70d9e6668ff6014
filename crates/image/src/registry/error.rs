//! Errors of the registry client, each one line that says what failed, why,
//! and what to do.

use std::path::PathBuf;

use crate::digest::Digest;
use crate::error::{ErrorKind, ImageError};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Nothing answered at the registry's address (refused, unresolvable,
    /// timed out).
    #[error(
        "registry {endpoint} is unreachable: {source} (is a registry listening at {endpoint}?)"
    )]
    Unreachable {
        endpoint: String,
        #[source]
        source: Box<ureq::Error>,
    },
    /// The TLS handshake failed, typically an unknown CA.
    #[error(
        "TLS handshake with registry {endpoint} failed: {source}: put the registry's CA certificate in {certs_dir}/ca.crt, or list {endpoint} in insecure-registries in {config}"
    )]
    Tls {
        endpoint: String,
        certs_dir: PathBuf,
        config: PathBuf,
        #[source]
        source: Box<ureq::Error>,
    },
    /// The registry refused our credentials (or demands some).
    #[error("unauthorized: {detail}: {hint}")]
    Unauthorized { detail: String, hint: String },
    /// The tag or digest does not exist in the repository.
    #[error("manifest for {reference} not found: manifest unknown: {detail}")]
    ManifestUnknown { reference: String, detail: String },
    /// The repository does not exist.
    #[error("repository {repository} not found: name unknown: {detail}")]
    NameUnknown { repository: String, detail: String },
    /// Any other error status.
    #[error("{method} {url}: {status} {detail}")]
    Status {
        method: String,
        url: String,
        status: u16,
        detail: String,
    },
    /// Another transport failure (a dropped connection after retries).
    #[error("{method} {url}: {source}")]
    Transport {
        method: String,
        url: String,
        #[source]
        source: Box<ureq::Error>,
    },
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    /// The registry answered something the protocol does not allow.
    #[error("registry {endpoint}: {reason}")]
    Protocol { endpoint: String, reason: String },
    #[error("reading {path}: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading blob {digest} from {repository}: {source}")]
    BlobRead {
        repository: String,
        digest: Digest,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Image(#[from] ImageError),
}

impl RegistryError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::ManifestUnknown { .. } | Self::NameUnknown { .. } => ErrorKind::NotFound,
            Self::Unauthorized { .. } | Self::Config { .. } => ErrorKind::InvalidArgument,
            Self::DigestMismatch { .. } | Self::Protocol { .. } => ErrorKind::Corrupt,
            Self::Status { status, .. } if *status == 404 => ErrorKind::NotFound,
            Self::Image(e) => e.kind(),
            _ => ErrorKind::Io,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// Whether trying again later may succeed (connection failures, 5xx,
    /// 429), for the retry loops.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport { .. } | Self::Unreachable { .. } => true,
            Self::Status { status, .. } => *status >= 500 || *status == 429 || *status == 408,
            Self::BlobRead { .. } => true,
            _ => false,
        }
    }
}
