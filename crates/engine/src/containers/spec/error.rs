//! Why a container's OCI spec could not be built.
//!
//! Messages start with Docker's own wording where Docker has one (scripts
//! and users match on it) and go on with the flag or field at fault and what
//! to do about it.

use std::path::PathBuf;

use crate::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// Input that can never work (Docker's validation errors).
    #[error("{0}")]
    InvalidArgument(String),
    /// Something berth does not do yet (named volumes, user namespaces).
    #[error("{0}")]
    Unsupported(String),
    #[error("unable to find user {user}: no matching entries in passwd file")]
    UserNotFound { user: String },
    #[error("unable to find group {group}: no matching entries in group file")]
    GroupNotFound { group: String },
    /// `--device` names a path that is neither a device nor a directory of devices.
    #[error("error gathering device information while adding custom device {path:?}: {why}")]
    Device { path: String, why: String },
    /// A host file the spec depends on could not be read.
    #[error("{context}: {path}")]
    Io {
        context: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The engine passed inconsistent input (a bug in berth, not the user's fault).
    #[error("internal error: {0}")]
    Internal(String),
}

impl SpecError {
    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Self::InvalidArgument(msg.into())
    }

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

    /// The engine's category, mapped to exit codes and HTTP statuses.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidArgument(_) | Self::Unsupported(_) => ErrorKind::InvalidArgument,
            Self::UserNotFound { .. } | Self::GroupNotFound { .. } | Self::Device { .. } => {
                ErrorKind::NotFound
            }
            Self::Io { .. } | Self::Internal(_) => ErrorKind::Internal,
        }
    }

    /// The exit code `docker run` gives for this error: 125 for everything
    /// the daemon refuses, except that Docker's CLI reports 127 when the
    /// message says "no such file or directory", which a missing `--device`
    /// does.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Device { why, .. } if why.contains("no such file or directory") => 127,
            _ => 125,
        }
    }
}
