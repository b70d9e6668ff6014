//! Why a volume operation failed, in Docker's words where Docker has some.

use std::path::PathBuf;

use crate::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// Docker's `get NAME: no such volume`.
    #[error("get {0}: no such volume")]
    NotFound(String),
    /// Docker's refusal to remove a volume that containers reference.
    #[error("remove {name}: volume is in use - [{}]", containers.join(", "))]
    InUse {
        name: String,
        containers: Vec<String>,
    },
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    Conflict(String),
    /// A system call on a volume's files failed.
    #[error("{context}: {}", path.display())]
    Io {
        context: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A tar archive could not be read or written.
    #[error("{context}: {source}")]
    Archive {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl VolumeError {
    pub(crate) fn io(
        context: impl Into<String>,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            context: context.into(),
            path: path.into(),
            source,
        }
    }

    pub(crate) fn sys(context: impl Into<String>, path: impl Into<PathBuf>, e: nix::Error) -> Self {
        Self::io(context, path, std::io::Error::from(e))
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Self::InvalidArgument(msg.into())
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::InUse { .. } | Self::Conflict(_) => ErrorKind::Conflict,
            Self::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Self::Io { .. } => ErrorKind::Internal,
            Self::Archive { .. } => ErrorKind::DataLoss,
        }
    }
}
