//! The monitor's files in `state_dir` and the JSON documents it persists.
//!
//! | file | written by | content |
//! |---|---|---|
//! | `monitor.pid` | monitor | the monitor's pid (decimal) |
//! | `container.pid` | runtime (`--pid-file`) | the container init's host pid |
//! | `state.json` | monitor, on every change | [`MonitorState`] |
//! | `exit.json` | monitor, once at the end | [`ExitState`] |
//! | `health.json` | monitor, after each probe | [`HealthState`] (Docker's `State.Health`) |
//! | `attach` | monitor | SOCK_SEQPACKET socket, see [`crate::protocol`] |
//! | `stopping` | engine, before it signals a stop | presence prevents a restart |
//! | `monitor.log` | monitor | errors after it detached from the caller |
//! | `console.sock` | monitor, during a tty start | receives the pty master |
//! | `health-probe.pid` | runtime (`exec --pid-file`) | the running probe's host pid |
//!
//! Every JSON document is replaced atomically (written to a temporary file,
//! then renamed), so readers never see a partial one.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const MONITOR_PID: &str = "monitor.pid";
pub const CONTAINER_PID: &str = "container.pid";
pub const STATE: &str = "state.json";
pub const EXIT: &str = "exit.json";
pub const HEALTH: &str = "health.json";
pub const ATTACH_SOCKET: &str = "attach";
pub const STOPPING: &str = "stopping";
pub const MONITOR_LOG: &str = "monitor.log";
pub const CONSOLE_SOCKET: &str = "console.sock";

pub fn path(state_dir: &Path, name: &str) -> PathBuf {
    state_dir.join(name)
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The runtime is being asked to start the container.
    Created,
    Running,
    /// Exited; waiting out the backoff before the next run.
    Restarting,
    /// Stopped for good.
    Exited,
}

/// `state.json`: the live state of the container as the monitor sees it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MonitorState {
    pub status: Status,
    /// The monitor's pid.
    pub monitor_pid: i32,
    /// The container init's host pid while running, else 0.
    pub pid: i32,
    /// Start of the current (or last) run, RFC 3339 with nanoseconds.
    pub started_at: Option<String>,
    /// End of the last run.
    pub finished_at: Option<String>,
    /// Exit code of the last run (128+n for signal n).
    pub exit_code: Option<i32>,
    /// The last run was killed by the kernel's OOM killer.
    pub oom_killed: bool,
    /// Restarts done by the restart policy.
    pub restart_count: u32,
    /// Why the last (re)start failed, if it did.
    pub error: Option<String>,
}

/// `exit.json`: how the container ended, written once it stopped for good.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExitState {
    pub exit_code: i32,
    pub oom_killed: bool,
    pub started_at: Option<String>,
    pub finished_at: String,
    pub restart_count: u32,
    /// Set when the last start failed (the exit code is then 125–127).
    pub error: Option<String>,
}

/// `health.json`, shaped like Docker's `State.Health`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HealthState {
    #[serde(rename = "Status")]
    pub status: HealthStatus,
    #[serde(rename = "FailingStreak")]
    pub failing_streak: u32,
    #[serde(rename = "Log")]
    pub log: Vec<HealthResult>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Starting,
    Healthy,
    Unhealthy,
}

/// One probe, like Docker's `HealthcheckResult`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HealthResult {
    #[serde(rename = "Start")]
    pub start: String,
    #[serde(rename = "End")]
    pub end: String,
    /// 0 healthy, 1 unhealthy, -1 when the probe could not run or timed out.
    #[serde(rename = "ExitCode")]
    pub exit_code: i32,
    #[serde(rename = "Output")]
    pub output: String,
}

/// Writes `value` as JSON to `path` atomically (tmp file + rename).
pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let data = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    write_atomic(path, &data)
}

pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(data)?;
    drop(f);
    std::fs::rename(&tmp, path)
}

/// Reads a JSON document; `Ok(None)` when the file does not exist.
pub fn read_json<T: for<'de> Deserialize<'de>>(
    path: &Path,
) -> Result<Option<T>, crate::error::ClientError> {
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(crate::error::ClientError::io("read", path)(e)),
    };
    serde_json::from_slice(&data)
        .map(Some)
        .map_err(|source| crate::error::ClientError::Parse {
            path: path.to_path_buf(),
            source,
        })
}

/// Reads `exit.json` of a container.
pub fn read_exit(state_dir: &Path) -> Result<Option<ExitState>, crate::error::ClientError> {
    read_json(&path(state_dir, EXIT))
}

/// Reads `state.json` of a container.
pub fn read_state(state_dir: &Path) -> Result<Option<MonitorState>, crate::error::ClientError> {
    read_json(&path(state_dir, STATE))
}

/// Reads `health.json` of a container.
pub fn read_health(state_dir: &Path) -> Result<Option<HealthState>, crate::error::ClientError> {
    read_json(&path(state_dir, HEALTH))
}

/// Whether the monitor recorded in `monitor.pid` is still alive.
pub fn monitor_alive(state_dir: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path(state_dir, MONITOR_PID)) else {
        return false;
    };
    let Ok(pid) = text.trim().parse::<i32>() else {
        return false;
    };
    // A zombie still answers kill(0): only a live, non-zombie pid counts.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}
