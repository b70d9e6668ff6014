//! The errors of the engine's side of berth-dns (config files, control).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("invalid network name {name:?} for a dns config file: {reason}")]
    InvalidNetworkName { name: String, reason: &'static str },

    #[error("network {network}: invalid dns upstream {upstream:?}: expected an IP address, optionally with a port (10.0.0.2, 10.0.0.2:5353, [fd00::1]:53)")]
    InvalidUpstream { network: String, upstream: String },

    #[error("network {network}: invalid dns name {name:?}: {reason}")]
    InvalidName {
        network: String,
        name: String,
        reason: &'static str,
    },

    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("parse dns config {path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    #[error("start {binary}: {source}")]
    Spawn {
        binary: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("berth-dns failed to start: {message} (log: {log})")]
    Start { message: String, log: PathBuf },

    #[error("signal berth-dns (pid {pid}): {source}")]
    Signal {
        pid: i32,
        #[source]
        source: nix::Error,
    },

    /// The server runs, but some listen addresses could not be bound (the
    /// other networks are served). Callers may treat this as a warning.
    #[error("berth-dns cannot listen on {}", .failures.join("; "))]
    Listen { failures: Vec<String> },
}

impl DnsError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
