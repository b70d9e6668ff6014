//! The runtime's error type and the one-line rendering the CLI prints.

use std::path::PathBuf;

use crate::config::ConfigError;

/// Coarse categories the CLI (and embedders such as the engine) map to
/// exit codes or API statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    Conflict,
    InvalidArgument,
    Other,
}

/// Everything that can go wrong in a runtime command.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Config(#[from] ConfigError),

    #[error("container {0} does not exist")]
    NotFound(String),

    #[error("container with id exists: {0}")]
    Exists(String),

    #[error("invalid container id {id:?}: {reason}")]
    InvalidId { id: String, reason: &'static str },

    #[error("cannot {action} container {id}: container is {status}")]
    InvalidState {
        id: String,
        action: &'static str,
        status: String,
    },

    #[error("{0}")]
    InvalidArgument(String),

    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{context}")]
    Sys {
        context: String,
        #[source]
        source: nix::Error,
    },

    #[error("cgroup {path}")]
    Cgroup {
        path: PathBuf,
        #[source]
        source: berth_cgroups::CgroupError,
    },

    #[error("{hook} hook #{index} ({path})")]
    Hook {
        hook: &'static str,
        index: usize,
        path: PathBuf,
        #[source]
        source: HookFailure,
    },

    /// An error the container's init (or an exec'd process's setup) reported
    /// back over the sync channel; the message already names its context.
    #[error("container init: {0}")]
    Init(String),

    #[error("{context}: {reason}")]
    Protocol {
        context: &'static str,
        reason: String,
    },
}

/// Why a hook failed.
#[derive(Debug, thiserror::Error)]
pub enum HookFailure {
    #[error("cannot start: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("timed out after {0}s")]
    Timeout(i64),
    #[error("{status}, stderr: {stderr}")]
    Failed { status: String, stderr: String },
}

impl From<berth_runtime_state::StateError> for RuntimeError {
    fn from(e: berth_runtime_state::StateError) -> Self {
        use berth_runtime_state::StateError;
        match e {
            StateError::Io { context, source } => RuntimeError::Io { context, source },
            StateError::Parse { path, reason } => RuntimeError::Protocol {
                context: "state.json",
                reason: format!("{}: {reason}", path.display()),
            },
            StateError::Cgroup { path, source } => RuntimeError::Cgroup { path, source },
        }
    }
}

impl RuntimeError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        RuntimeError::Io {
            context: context.into(),
            source,
        }
    }

    pub fn sys(context: impl Into<String>, source: nix::Error) -> Self {
        RuntimeError::Sys {
            context: context.into(),
            source,
        }
    }

    pub fn cgroup(path: impl Into<PathBuf>, source: berth_cgroups::CgroupError) -> Self {
        RuntimeError::Cgroup {
            path: path.into(),
            source,
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            RuntimeError::NotFound(_) => ErrorKind::NotFound,
            RuntimeError::Exists(_) | RuntimeError::InvalidState { .. } => ErrorKind::Conflict,
            RuntimeError::Config(_)
            | RuntimeError::InvalidId { .. }
            | RuntimeError::InvalidArgument(_) => ErrorKind::InvalidArgument,
            _ => ErrorKind::Other,
        }
    }
}

/// Renders an error and its causes as one line: `outer: cause: root cause`.
pub fn one_line(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !out.ends_with(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out.replace('\n', " ")
}
