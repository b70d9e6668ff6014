//! The crate's error type: every variant names what was being set up
//! (`mounts[3] (tmpfs on /run)`, `linux.devices[0] (/dev/fuse)`, …) and the
//! operation that failed; the OS error is the `#[source]`.

use std::path::PathBuf;

use nix::errno::Errno;

/// Errors of the container's filesystem setup.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// A system call failed while setting up `context`.
    #[error("rootfs: {context}: {op}")]
    Sys {
        context: String,
        op: &'static str,
        #[source]
        source: Errno,
    },
    /// A file operation the setup depends on failed (reading mountinfo or
    /// /proc/self/cgroup, looking at a bind source).
    #[error("rootfs: {context}: {op} {path}")]
    Io {
        context: String,
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The spec asks for something that cannot be done safely or at all.
    #[error("rootfs: {context}: {reason}")]
    Invalid { context: String, reason: String },
}

impl RootfsError {
    pub(crate) fn sys(context: impl Into<String>, op: &'static str, source: Errno) -> Self {
        Self::Sys {
            context: context.into(),
            op,
            source,
        }
    }

    pub(crate) fn invalid(context: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            context: context.into(),
            reason: reason.into(),
        }
    }

    /// The errno behind the failure, when there is one.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Self::Sys { source, .. } => Some(*source),
            Self::Io { source, .. } => source.raw_os_error().map(Errno::from_raw),
            Self::Invalid { .. } => None,
        }
    }
}
