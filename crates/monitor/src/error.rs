//! Error types: [`MonitorError`] for the monitor process and its config,
//! [`LogError`] for log writing and reading, [`ClientError`] for the client
//! side (`attach`, `wait`, `spawn`).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Sys {
        what: &'static str,
        #[source]
        source: nix::Error,
    },
    #[error("parse monitor config {path}: {source}")]
    Config {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("monitor config field {field}: {reason}")]
    InvalidConfig { field: &'static str, reason: String },
    #[error("spawn {program}: {source}")]
    Spawn {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("start container {id}: {message}")]
    Start {
        id: String,
        message: String,
        /// Docker's exit code for the failure: 125, 126 or 127.
        exit_code: i32,
    },
    #[error("a monitor (pid {pid}) already runs for {state_dir}")]
    AlreadyRunning { state_dir: PathBuf, pid: i32 },
    #[error(transparent)]
    Log(#[from] LogError),
}

impl MonitorError {
    pub(crate) fn sys(what: &'static str) -> impl FnOnce(nix::Error) -> MonitorError {
        move |source| MonitorError::Sys { what, source }
    }

    pub(crate) fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> MonitorError {
        let path = path.into();
        move |source| MonitorError::Io { what, path, source }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("log file {path} at byte {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("log driver none keeps no logs to read")]
    NoLogs,
    #[error("write log entry to the reader's sink: {0}")]
    Sink(#[source] std::io::Error),
}

impl LogError {
    pub(crate) fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> LogError {
        let path = path.into();
        move |source| LogError::Io { what, path, source }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Sys {
        what: &'static str,
        #[source]
        source: nix::Error,
    },
    #[error("monitor of {state_dir} is gone without recording an exit status")]
    MonitorGone { state_dir: PathBuf },
    #[error("parse {path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("monitor protocol: {0}")]
    Protocol(String),
    /// The monitor could not start the container; `exit_code` is Docker's
    /// (125 runtime error, 126 not executable, 127 not found).
    #[error("{message}")]
    Start { message: String, exit_code: i32 },
}

impl ClientError {
    pub(crate) fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> ClientError {
        let path = path.into();
        move |source| ClientError::Io { what, path, source }
    }

    pub(crate) fn sys(what: &'static str) -> impl FnOnce(nix::Error) -> ClientError {
        move |source| ClientError::Sys { what, source }
    }
}
