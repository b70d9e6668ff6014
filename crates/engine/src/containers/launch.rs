//! Starting a container's monitor and learning how the start went.
//!
//! The engine writes `monitor.json`, spawns `berth-monitor` with the write
//! end of a pipe as fd 3 and reads one JSON line from it: the container's
//! pid, or the runtime's error with Docker's exit code. The monitor
//! daemonizes (double fork), so the spawned process is reaped at once.

use std::io::{BufRead, BufReader};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use berth_monitor::config as mon;
use serde::Deserialize;

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

#[derive(Deserialize)]
struct ReadyLine {
    pid: Option<i32>,
    error: Option<String>,
    exit_code: Option<i32>,
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
                    EngineError::InvalidArgument(format!("invalid log-opt max-size={v}: use a size such as 10m"))
                })?)
            }
            "max-file" => {
                max_file = v.parse::<u32>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    EngineError::InvalidArgument(format!("invalid log-opt max-file={v}: use a number of files ≥ 1"))
                })?
            }
            // Accepted by Docker's drivers; berth's rotation does not compress.
            "compress" | "mode" | "max-buffer-size" | "labels" | "env" | "tag" => {}
            other => {
                return Err(EngineError::InvalidArgument(format!(
                    "unknown log opt '{other}' for {} log driver",
                    if lc.kind.is_empty() { "json-file" } else { &lc.kind }
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

    /// Writes `monitor.json` and starts the monitor; returns once the
    /// container runs or failed to start.
    pub(crate) fn launch(
        &self,
        c: &ContainerRecord,
        paths: &ContainerPaths,
        wait_attach: bool,
    ) -> Result<Launched, EngineError> {
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
            bundle: paths.bundle(),
            state_dir: paths.run_dir.clone(),
            tty: c.config.tty,
            open_stdin: c.config.open_stdin,
            stdin_once: c.config.stdin_once,
            log: log_config(c, paths)?,
            restart: restart_policy(c),
            health: health(c),
            exit_command,
            wait_attach,
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
        let (read_end, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| EngineError::io("creating the monitor's ready pipe", e.into()))?;
        let mut cmd = Command::new(&bins.monitor);
        cmd.arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let write_raw = write_end.as_raw_fd();
        // SAFETY: the closure runs in the forked child before exec and only
        // calls dup2 (async-signal-safe) on fds that are open in the parent.
        unsafe {
            cmd.pre_exec(move || {
                // dup2 onto itself keeps close-on-exec set: clear it instead.
                let r = if write_raw == 3 {
                    libc::fcntl(3, libc::F_SETFD, 0)
                } else {
                    libc::dup2(write_raw, 3)
                };
                if r < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| {
            EngineError::io(format!("starting {}", bins.monitor.display()), e)
        })?;
        drop(write_end);
        let line = read_line(read_end)?;
        // The monitor's first process exits once it has forked the daemon.
        let _ = child.wait();
        let ready: ReadyLine = serde_json::from_str(line.trim()).map_err(|_| {
            EngineError::StartFailed {
                message: if line.trim().is_empty() {
                    format!("the monitor of container {} exited without reporting; see {}", c.id, paths.run_dir.join(berth_monitor::files::MONITOR_LOG).display())
                } else {
                    format!("the monitor of container {} reported: {}", c.id, line.trim())
                },
                exit_code: 125,
            }
        })?;
        match (ready.pid, ready.error) {
            (Some(pid), None) => Ok(Launched {
                pid,
                monitor_pid: read_pid(&paths.run_dir.join(berth_monitor::files::MONITOR_PID)),
            }),
            (_, Some(message)) => Err(EngineError::StartFailed {
                message,
                exit_code: ready.exit_code.unwrap_or(125),
            }),
            (None, None) => Err(EngineError::StartFailed {
                message: format!("the monitor of container {} reported neither a pid nor an error", c.id),
                exit_code: 125,
            }),
        }
    }
}

fn read_line(fd: OwnedFd) -> Result<String, EngineError> {
    let mut line = String::new();
    BufReader::new(std::fs::File::from(fd))
        .read_line(&mut line)
        .map_err(|e| EngineError::io("reading the monitor's ready pipe", e))?;
    Ok(line)
}

pub(crate) fn read_pid(path: &std::path::Path) -> i32 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}
