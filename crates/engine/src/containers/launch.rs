//! Starting a container's monitor and learning how the start went.
//!
//! The engine writes `monitor.json` and spawns `berth-monitor` through the
//! monitor crate's client, which hands it a ready pipe and reads one JSON
//! line back: the container's pid, or the runtime's error with Docker's
//! exit code. The monitor daemonizes, so the spawned process is reaped at
//! once; with `wait_attach` it starts the container only once an attach
//! client is connected, so that an attached `run` sees all output.

use std::path::PathBuf;

use berth_monitor::client::SpawnedMonitor;
use berth_monitor::config as mon;
use berth_monitor::error::ClientError;

use super::paths::ContainerPaths;
use super::store::ContainerRecord;
use super::ContainerService;
use crate::error::EngineError;

/// What a successful launch reports.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Launched {
    pub pid: i32,
    pub monitor_pid: i32,
}

/// The runtime binary and its state root for a container's `--runtime`.
pub(crate) fn runtime_for(
    svc: &ContainerService<'_>,
    c: &ContainerRecord,
) -> Result<(PathBuf, PathBuf), EngineError> {
    let runroot = &svc.engine.config().runroot;
    let name = c.host_config.runtime.as_str();
    Ok(match name {
        "" | "berth" => (svc.binaries()?.runtime.clone(), runroot.join("runtime")),
        "runc" | "crun" => (
            super::binaries::in_path(name).ok_or_else(|| {
                EngineError::InvalidArgument(format!(
                    "runtime {name} is not installed: install it or use --runtime berth"
                ))
            })?,
            runroot.join(name),
        ),
        path => (PathBuf::from(path), runroot.join("custom-runtime")),
    })
}

fn log_config(c: &ContainerRecord, paths: &ContainerPaths) -> Result<mon::LogConfig, EngineError> {
    let lc = &c.host_config.log_config;
    let driver = match lc.kind.as_str() {
        "" | "json-file" => mon::LogDriver::JsonFile,
        "local" => mon::LogDriver::Local,
        "none" => mon::LogDriver::None,
        other => {
            return Err(EngineError::InvalidArgument(format!(
                "no log driver named '{other}': use json-file, local or none"
            )))
        }
    };
    let mut max_size = None;
    let mut max_file = 1;
    for (k, v) in &lc.config {
        match k.as_str() {
            "max-size" => {
                max_size = Some(parse_size(v).ok_or_else(|| {
                    EngineError::InvalidArgument(format!(
                        "invalid log-opt max-size={v}: use a size such as 10m"
                    ))
                })?)
            }
            "max-file" => {
                max_file = v.parse::<u32>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    EngineError::InvalidArgument(format!(
                        "invalid log-opt max-file={v}: use a number of files ≥ 1"
                    ))
                })?
            }
            // Accepted by Docker's drivers; berth's rotation does not compress.
            "compress" | "mode" | "max-buffer-size" | "labels" | "env" | "tag" => {}
            other => {
                return Err(EngineError::InvalidArgument(format!(
                    "unknown log opt '{other}' for {} log driver",
                    if lc.kind.is_empty() {
                        "json-file"
                    } else {
                        &lc.kind
                    }
                )))
            }
        }
    }
    if max_file > 1 && max_size.is_none() {
        return Err(EngineError::InvalidArgument(
            "max-file can only be used together with max-size".into(),
        ));
    }
    Ok(mon::LogConfig {
        driver,
        path: paths.log_file(),
        max_size,
        max_file,
    })
}

/// `10m`, `1g`, `512k`, plain bytes (Docker's `units.RAMInBytes`).
pub(crate) fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let digits_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(digits_end);
    let n: f64 = num.parse().ok()?;
    let mult: u64 = match unit.trim_end_matches('b').trim_end_matches('i') {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => return None,
    };
    Some((n * mult as f64) as u64)
}

fn restart_policy(c: &ContainerRecord) -> mon::RestartPolicy {
    let rp = &c.host_config.restart_policy;
    let name = match rp.name.as_str() {
        "always" => mon::RestartPolicyName::Always,
        "unless-stopped" => mon::RestartPolicyName::UnlessStopped,
        "on-failure" => mon::RestartPolicyName::OnFailure,
        _ => mon::RestartPolicyName::No,
    };
    mon::RestartPolicy {
        name,
        max_retries: u32::try_from(rp.maximum_retry_count.max(0)).unwrap_or(u32::MAX),
    }
}

fn health(c: &ContainerRecord) -> Option<mon::HealthConfig> {
    let h = c.config.healthcheck.as_ref()?;
    if h.test.is_empty() || h.test[0] == "NONE" {
        return None;
    }
    let ns = |v: i64, default: u64| if v > 0 { v as u64 } else { default };
    let test = if h.test[0] == "CMD" || h.test[0] == "CMD-SHELL" {
        h.test.clone()
    } else {
        // A bare command string is a shell command (Docker's API allows it).
        vec!["CMD-SHELL".into(), h.test.join(" ")]
    };
    Some(mon::HealthConfig {
        test,
        interval_ns: ns(h.interval, 30_000_000_000),
        timeout_ns: ns(h.timeout, 30_000_000_000),
        start_period_ns: ns(h.start_period, 0),
        retries: if h.retries > 0 { h.retries as u32 } else { 3 },
    })
}

impl ContainerService<'_> {
    /// Where and how the container's output is logged.
    pub fn log_config(&self, c: &ContainerRecord) -> Result<mon::LogConfig, EngineError> {
        log_config(c, &self.paths(&c.id))
    }

    /// Writes `monitor.json` and starts the monitor in the background; its
    /// report (pid or error) is read with [`monitor_ready`].
    pub(crate) fn launch(
        &self,
        c: &ContainerRecord,
        paths: &ContainerPaths,
        wait_attach: bool,
    ) -> Result<SpawnedMonitor, EngineError> {
        let bins = self.binaries()?;
        let (runtime, runtime_root) = runtime_for(self, c)?;
        let cfg = self.engine.config();
        let exit_command = vec![
            bins.cli.display().to_string(),
            "--root".into(),
            cfg.root.display().to_string(),
            "--runroot".into(),
            cfg.runroot.display().to_string(),
            "container".into(),
            "cleanup".into(),
            c.id.clone(),
        ];
        let config = mon::MonitorConfig {
            id: c.id.clone(),
            runtime,
            runtime_root,
            runtime_state_readable: matches!(c.host_config.runtime.as_str(), "" | "berth"),
            bundle: paths.bundle(),
            state_dir: paths.run_dir.clone(),
            tty: c.config.tty,
            open_stdin: c.config.open_stdin,
            stdin_once: c.config.stdin_once,
            log: log_config(c, paths)?,
            restart: restart_policy(c),
            health: health(c),
            exit_command,
            wait_for_attach: wait_attach,
        };
        let path = paths.monitor_config();
        berth_monitor::files::write_json_atomic(&path, &config)
            .map_err(|e| EngineError::io(format!("writing {}", path.display()), e))?;
        // Stale files of an earlier run would make the new one look finished.
        for stale in [
            berth_monitor::files::EXIT,
            berth_monitor::files::STATE,
            berth_monitor::files::HEALTH,
            berth_monitor::files::STOPPING,
        ] {
            let _ = std::fs::remove_file(paths.run_dir.join(stale));
        }
        let spawn = || {
            berth_monitor::client::spawn(&bins.monitor, &path, &paths.run_dir)
                .map_err(|e| start_error(c, e))
        };
        match self
            .engine
            .take_standby_monitor()
            .map(|m| m.launch(&path, &paths.run_dir))
        {
            None => spawn(),
            Some(Ok(spawned)) => Ok(spawned),
            // The monitor read the config and refused it: a fresh one would too.
            Some(Err(e @ ClientError::Start { .. })) => Err(start_error(c, e)),
            Some(Err(e)) => {
                tracing::debug!("standby monitor unusable ({e}); starting another");
                spawn()
            }
        }
    }
}

/// Starts a monitor that waits for the next container this command starts
/// (hand it to [`crate::Engine::keep_standby_monitor`]); `None` when none
/// could be started (that start then spawns its monitor as usual).
pub fn start_standby_monitor() -> Option<berth_monitor::client::StandbyMonitor> {
    let monitor = super::binaries::find("BERTH_MONITOR", "berth-monitor").ok()?;
    berth_monitor::client::StandbyMonitor::start(&monitor)
        .map_err(|e| tracing::debug!("standby monitor: {e}"))
        .ok()
}

/// Waits for a launched monitor's report.
pub(crate) fn monitor_ready(
    c: &ContainerRecord,
    paths: &ContainerPaths,
    spawned: SpawnedMonitor,
) -> Result<Launched, EngineError> {
    let pid = spawned.wait_ready().map_err(|e| start_error(c, e))?;
    Ok(Launched {
        pid,
        monitor_pid: read_pid(&paths.run_dir.join(berth_monitor::files::MONITOR_PID)),
    })
}

fn start_error(c: &ContainerRecord, e: ClientError) -> EngineError {
    match e {
        ClientError::Start { message, exit_code } => EngineError::StartFailed {
            message: runtime_create_failed(&message),
            exit_code,
        },
        other => EngineError::StartFailed {
            message: format!("starting the monitor of container {}: {other}", c.id),
            exit_code: 125,
        },
    }
}

/// The runtime's reason a container did not start, in Docker's words
/// (`OCI runtime create failed: …: unknown`; runc's own message already
/// says `unable to start container process`, berth-runtime's says which
/// step failed).
fn runtime_create_failed(message: &str) -> String {
    let reason = match message.strip_prefix("berth-runtime: ") {
        Some(m) => match m.strip_prefix("container init: ") {
            Some(step) => format!("unable to start container process: {step}"),
            None => m.to_string(),
        },
        None => message.to_string(),
    };
    format!("failed to create task for container: OCI runtime create failed: {reason}: unknown")
}

pub(crate) fn read_pid(path: &std::path::Path) -> i32 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}
