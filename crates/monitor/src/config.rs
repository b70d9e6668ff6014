//! The monitor's input: `monitor.json`, written by the engine.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::MonitorError;

/// Everything one monitor needs to run one container (`monitor.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MonitorConfig {
    /// Container id, as given to the runtime.
    pub id: String,
    /// OCI runtime binary speaking runc's CLI (`berth-runtime`, `runc`, `crun`).
    pub runtime: PathBuf,
    /// The runtime's state root, passed as `--root`.
    pub runtime_root: PathBuf,
    /// The runtime is berth-runtime, whose state the monitor can read: it
    /// then deletes a container that stopped itself (see
    /// `berth_runtime_state::delete_stopped`) instead of running `delete`.
    #[serde(default)]
    pub runtime_state_readable: bool,
    /// Bundle directory holding `config.json`.
    pub bundle: PathBuf,
    /// The monitor's own files (see [`crate::files`]).
    pub state_dir: PathBuf,
    /// The container's process has a terminal (`process.terminal` in the
    /// bundle must agree): output comes from a pty master.
    #[serde(default)]
    pub tty: bool,
    /// Keep the container's stdin open and feed it from attached clients.
    #[serde(default)]
    pub open_stdin: bool,
    /// Close the container's stdin when the first stdin client detaches.
    #[serde(default)]
    pub stdin_once: bool,
    /// Start the container only once a client has connected to the attach
    /// socket (for a foreground `run`/`start -a`: no output is missed). The
    /// socket exists as soon as the `berth-monitor` the caller started has
    /// exited; after [`WAIT_FOR_ATTACH_LIMIT`] the container starts anyway.
    #[serde(default)]
    pub wait_for_attach: bool,
    #[serde(default)]
    pub log: LogConfig,
    #[serde(default)]
    pub restart: RestartPolicy,
    #[serde(default)]
    pub health: Option<HealthConfig>,
    /// Run once after the container stopped for good (not between restarts),
    /// with [`EXIT_CODE_ENV`] and [`RUNTIME_DELETE_ENV`] in its environment;
    /// the monitor waits for it before it reports the exit to attached
    /// clients.
    #[serde(default)]
    pub exit_command: Vec<String>,
}

impl MonitorConfig {
    /// Reads and checks a `monitor.json`.
    pub fn load(path: &Path) -> Result<MonitorConfig, MonitorError> {
        let data = std::fs::read(path).map_err(|source| MonitorError::Io {
            what: "read monitor config",
            path: path.to_path_buf(),
            source,
        })?;
        let config: MonitorConfig =
            serde_json::from_slice(&data).map_err(|source| MonitorError::Config {
                path: path.to_path_buf(),
                source,
            })?;
        config.validate()?;
        Ok(config)
    }

    /// Rejects values the monitor cannot act on.
    pub fn validate(&self) -> Result<(), MonitorError> {
        let invalid = |field: &'static str, reason: &str| MonitorError::InvalidConfig {
            field,
            reason: reason.to_string(),
        };
        if self.id.is_empty() || self.id.contains('/') {
            return Err(invalid("id", "must be non-empty without '/'"));
        }
        if !self.state_dir.is_absolute() {
            return Err(invalid("state_dir", "must be absolute"));
        }
        if self.log.driver != LogDriver::None && !self.log.path.is_absolute() {
            return Err(invalid("log.path", "must be absolute"));
        }
        if self.log.max_file == 0 {
            return Err(invalid("log.max_file", "must be at least 1"));
        }
        if self.log.max_size == Some(0) {
            return Err(invalid("log.max_size", "must be positive"));
        }
        if let Some(h) = &self.health {
            h.command()?;
            if h.interval_ns == 0 || h.timeout_ns == 0 {
                return Err(invalid("health", "interval and timeout must be positive"));
            }
        }
        Ok(())
    }
}

/// How long a monitor with `wait_for_attach` waits for its first client.
pub const WAIT_FOR_ATTACH_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Where and how the container's output is stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LogConfig {
    #[serde(default)]
    pub driver: LogDriver,
    /// The current log file; rotated ones are `<path>.1` (newest) … `<path>.<max_file-1>`.
    #[serde(default)]
    pub path: PathBuf,
    /// Rotate when the current file would grow beyond this many bytes.
    #[serde(default)]
    pub max_size: Option<u64>,
    /// Files kept, the current one included; 1 truncates instead of rotating.
    #[serde(default = "default_max_file")]
    pub max_file: u32,
}

fn default_max_file() -> u32 {
    1
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            driver: LogDriver::None,
            path: PathBuf::new(),
            max_size: None,
            max_file: 1,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum LogDriver {
    /// Docker's json-file format, one JSON object per line.
    JsonFile,
    /// berth's binary framing (see [`crate::logs::local`]).
    Local,
    #[default]
    None,
}

/// Docker's restart policies.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct RestartPolicy {
    pub name: RestartPolicyName,
    /// For `on-failure`: at most this many restarts; 0 means unlimited.
    #[serde(default)]
    pub max_retries: u32,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicyName {
    #[default]
    No,
    Always,
    UnlessStopped,
    OnFailure,
}

impl RestartPolicy {
    /// Whether a container that exited with `exit_code` after `restarts`
    /// restarts should run again (the stop marker is checked separately).
    pub fn should_restart(&self, exit_code: i32, restarts: u32) -> bool {
        match self.name {
            RestartPolicyName::No => false,
            RestartPolicyName::Always | RestartPolicyName::UnlessStopped => true,
            RestartPolicyName::OnFailure => {
                exit_code != 0 && (self.max_retries == 0 || restarts < self.max_retries)
            }
        }
    }
}

/// Docker's `HEALTHCHECK`, durations in nanoseconds like the Engine API.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HealthConfig {
    /// `["CMD", argv…]`, `["CMD-SHELL", command]` (run by `/bin/sh -c`).
    pub test: Vec<String>,
    #[serde(default = "default_health_duration")]
    pub interval_ns: u64,
    #[serde(default = "default_health_duration")]
    pub timeout_ns: u64,
    #[serde(default)]
    pub start_period_ns: u64,
    #[serde(default = "default_retries")]
    pub retries: u32,
}

fn default_health_duration() -> u64 {
    30_000_000_000
}

fn default_retries() -> u32 {
    3
}

impl HealthConfig {
    /// The argv to run in the container for one probe.
    pub fn command(&self) -> Result<Vec<String>, MonitorError> {
        let invalid = |reason: &str| MonitorError::InvalidConfig {
            field: "health.test",
            reason: reason.to_string(),
        };
        match self.test.split_first() {
            Some((kind, rest)) if kind == "CMD" && !rest.is_empty() => Ok(rest.to_vec()),
            Some((kind, rest)) if kind == "CMD-SHELL" && rest.len() == 1 => Ok(vec![
                "/bin/sh".into(),
                "-c".into(),
                rest[0].clone(),
            ]),
            Some((kind, _)) if kind == "CMD-SHELL" => {
                Err(invalid("CMD-SHELL takes exactly one command string"))
            }
            _ => Err(invalid(
                "must be [\"CMD\", argv…] or [\"CMD-SHELL\", command] (NONE disables: leave health out)",
            )),
        }
    }
}

/// The exit command's environment variable with the container's exit code.
pub const EXIT_CODE_ENV: &str = "BERTH_EXIT_CODE";

/// The exit command's environment variable that says whether the monitor
/// deletes the runtime's state of the container itself, side by side with
/// the exit command (`1`), or left it to the exit command (`0`).
pub const RUNTIME_DELETE_ENV: &str = "BERTH_RUNTIME_DELETE_BY_MONITOR";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_failure_counts_retries_and_ignores_success() {
        let p = RestartPolicy {
            name: RestartPolicyName::OnFailure,
            max_retries: 2,
        };
        assert!(p.should_restart(1, 0));
        assert!(p.should_restart(1, 1));
        assert!(!p.should_restart(1, 2));
        assert!(!p.should_restart(0, 0));
        let unlimited = RestartPolicy {
            name: RestartPolicyName::OnFailure,
            max_retries: 0,
        };
        assert!(unlimited.should_restart(3, 1000));
        let always = RestartPolicy {
            name: RestartPolicyName::Always,
            max_retries: 0,
        };
        assert!(always.should_restart(0, 5));
    }

    #[test]
    fn health_test_forms() {
        let mut h = HealthConfig {
            test: vec!["CMD-SHELL".into(), "exit 0".into()],
            interval_ns: 1,
            timeout_ns: 1,
            start_period_ns: 0,
            retries: 1,
        };
        assert_eq!(
            h.command().ok(),
            Some(vec!["/bin/sh".into(), "-c".into(), "exit 0".into()])
        );
        h.test = vec!["CMD".into(), "true".into()];
        assert_eq!(h.command().ok(), Some(vec!["true".into()]));
        h.test = vec!["NONE".into()];
        assert!(h.command().is_err());
    }

    #[test]
    fn minimal_json_gets_defaults() {
        let c: MonitorConfig = serde_json::from_str(
            r#"{"id":"a","runtime":"/r","runtime_root":"/rr","bundle":"/b","state_dir":"/s",
                "log":{"driver":"json-file","path":"/l"},"restart":{"name":"on-failure","max_retries":2}}"#,
        )
        .expect("parse");
        assert_eq!(c.log.max_file, 1);
        assert_eq!(c.log.driver, LogDriver::JsonFile);
        assert_eq!(c.restart.name, RestartPolicyName::OnFailure);
        assert!(c.validate().is_ok());
    }
}
