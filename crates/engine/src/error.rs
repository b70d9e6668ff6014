//! The engine's error type and its coarse categories.

use std::path::Path;

/// Category of an [`EngineError`], mapped to exit codes by the CLI and to
/// HTTP statuses by the API server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    Conflict,
    InvalidArgument,
    /// Stored or received data failed verification (digest mismatch, truncated archive).
    DataLoss,
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("No such image: {0}")]
    NoSuchImage(String),
    #[error("multiple IDs found with provided prefix: {0}")]
    AmbiguousId(String),
    /// `run`/`create` of an image that is not stored (and cannot be pulled).
    #[error("Unable to find image '{0}' locally")]
    ImageNotFoundLocally(String),
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    #[error("Multiple IDs found with provided prefix: {0}")]
    AmbiguousContainer(String),
    #[error("network {0} not found")]
    NoSuchNetwork(String),
    #[error(transparent)]
    Net(#[from] berth_net::NetError),
    /// The container could not be started; `exit_code` is Docker's 125, 126
    /// (not executable) or 127 (not found).
    #[error("{message}")]
    StartFailed { message: String, exit_code: i32 },
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    Conflict(String),
    #[error("database: {context}")]
    Db {
        context: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Image(#[from] berth_image::ImageError),
    #[error(transparent)]
    Archive(#[from] berth_archive::ArchiveError),
    /// Pull, push and login failures (see `images/pull.rs`).
    #[error(transparent)]
    Registry(#[from] berth_image::registry::RegistryError),
    #[error("corrupt state: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Spec(#[from] crate::containers::spec::SpecError),
    #[error(transparent)]
    ContainerFs(#[from] crate::containers::fs::ContainerFsError),
    #[error(transparent)]
    Volume(#[from] crate::volumes::VolumeError),
}

impl EngineError {
    pub fn db(context: impl Into<String>, source: rusqlite::Error) -> Self {
        Self::Db {
            context: context.into(),
            source,
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    /// Adds the database path to a database error's context.
    pub(crate) fn context_for(self, path: &Path) -> Self {
        match self {
            Self::Db { context, source } => Self::Db {
                context: format!("{context} in {}", path.display()),
                source,
            },
            other => other,
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NoSuchImage(_)
            | Self::NoSuchContainer(_)
            | Self::ImageNotFoundLocally(_)
            | Self::NoSuchNetwork(_) => ErrorKind::NotFound,
            Self::Net(e) => match e {
                berth_net::NetError::Invalid(_) => ErrorKind::InvalidArgument,
                berth_net::NetError::Conflict(_) => ErrorKind::Conflict,
                _ => ErrorKind::Internal,
            },
            Self::AmbiguousId(_) | Self::AmbiguousContainer(_) | Self::InvalidArgument(_) => {
                ErrorKind::InvalidArgument
            }
            Self::StartFailed { .. } => ErrorKind::Internal,
            Self::Spec(e) => e.kind(),
            Self::ContainerFs(e) => e.kind(),
            Self::Volume(e) => e.kind(),
            Self::Conflict(_) => ErrorKind::Conflict,
            Self::Db { .. } | Self::Io { .. } | Self::Corrupt(_) => ErrorKind::Internal,
            Self::Image(e) => image_kind(e),
            Self::Registry(e) => match e {
                berth_image::registry::RegistryError::Image(i) => image_kind(i),
                other => match other.kind() {
                    berth_image::ErrorKind::NotFound => ErrorKind::NotFound,
                    berth_image::ErrorKind::InvalidArgument => ErrorKind::InvalidArgument,
                    berth_image::ErrorKind::Corrupt => ErrorKind::DataLoss,
                    _ => ErrorKind::Internal,
                },
            },
            Self::Archive(e) => match e.kind() {
                berth_archive::ArchiveErrorKind::InvalidArgument => ErrorKind::InvalidArgument,
                berth_archive::ArchiveErrorKind::DataLoss => ErrorKind::DataLoss,
                berth_archive::ArchiveErrorKind::NotFound => ErrorKind::NotFound,
                berth_archive::ArchiveErrorKind::Internal => ErrorKind::Internal,
            },
        }
    }
}

fn image_kind(e: &berth_image::ImageError) -> ErrorKind {
    use berth_image::ErrorKind as K;
    match e.kind() {
        K::NotFound => ErrorKind::NotFound,
        K::InvalidArgument => ErrorKind::InvalidArgument,
        K::Conflict => ErrorKind::Conflict,
        K::Corrupt => ErrorKind::DataLoss,
        K::Io => ErrorKind::Internal,
    }
}
