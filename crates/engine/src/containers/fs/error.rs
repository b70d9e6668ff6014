//! Errors of `cp`, `diff`, `export` and `commit`; the texts that Docker's
//! daemon and CLI print are kept where users (and scripts) match on them.

use nix::errno::Errno;

use crate::error::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum ContainerFsError {
    /// Docker's `containerFileNotFound`.
    #[error("Could not find the file {path} in container {container}")]
    FileNotFound { path: String, container: String },
    /// `cp SRC CONTAINER:DIR` where DIR is not a directory.
    #[error("extraction point is not a directory: {path} in container {container}")]
    NotADirectory { path: String, container: String },
    #[error(
        "container rootfs is marked read-only: cannot copy to {path} in container {container}"
    )]
    ReadOnlyRootfs { path: String, container: String },
    /// A tar entry (or hard link target) leads out of the extraction directory.
    #[error("invalid archive entry {name:?}: it points outside of {dest}")]
    Breakout { name: String, dest: String },
    #[error("cannot overwrite directory {path:?} with non-directory {name:?}")]
    OverwriteDirWithFile { path: String, name: String },
    #[error("cannot overwrite non-directory {path:?} with directory {name:?}")]
    OverwriteFileWithDir { path: String, name: String },
    /// Docker's `ErrCannotCopyDir`: a directory onto an existing file.
    #[error("cannot copy directory")]
    CannotCopyDir,
    /// Docker's `ErrDirNotExists`: a file to `missing/` (a path that asserts a directory).
    #[error("no such directory")]
    DirNotExists,
    #[error("not a directory: {0}")]
    NotDirectory(String),
    #[error("too many symlinks in {0}")]
    TooManySymlinks(String),
    /// A system call on `path` failed.
    #[error("{op} {path}")]
    Sys {
        op: &'static str,
        path: String,
        #[source]
        source: Errno,
    },
    /// Reading or writing a file or stream failed.
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl ContainerFsError {
    pub(crate) fn sys(op: &'static str, path: impl Into<String>, source: Errno) -> Self {
        Self::Sys {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::FileNotFound { .. } => ErrorKind::NotFound,
            Self::Sys {
                source: Errno::ENOENT,
                ..
            } => ErrorKind::NotFound,
            Self::NotADirectory { .. }
            | Self::Breakout { .. }
            | Self::OverwriteDirWithFile { .. }
            | Self::OverwriteFileWithDir { .. }
            | Self::CannotCopyDir
            | Self::DirNotExists
            | Self::NotDirectory(_)
            | Self::TooManySymlinks(_) => ErrorKind::InvalidArgument,
            Self::ReadOnlyRootfs { .. } => ErrorKind::Conflict,
            Self::Sys { .. } | Self::Io { .. } => ErrorKind::Internal,
        }
    }
}
