//! Health checks with Docker's semantics.
//!
//! The first probe runs one interval after the container started, then one
//! interval after the previous probe ended. A probe is `<runtime> exec ID
//! argv` (CMD-SHELL through `/bin/sh -c`); past the timeout the process in
//! the container and the runtime are killed and the probe counts as failed
//! (exit code -1). Exit 0 makes the container healthy and resets the failing
//! streak; a failure within the start period does not count, otherwise it
//! extends the streak and `retries` failures in a row make it unhealthy.
//! The last five results are kept, their output cut to 4 KiB, in
//! `health.json`.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::runtime::Runtime;
use super::stdio::{pipe, set_nonblocking};
use crate::config::HealthConfig;
use crate::error::MonitorError;
use crate::files::{self, HealthResult, HealthState, HealthStatus};
use crate::timefmt;

const KEEP_RESULTS: usize = 5;
const MAX_OUTPUT: usize = 4096;

pub struct HealthMonitor {
    config: HealthConfig,
    argv: Vec<String>,
    path: PathBuf,
    pid_file: PathBuf,
    state: HealthState,
    started: Instant,
    next: Instant,
    probe: Option<Probe>,
}

struct Probe {
    runtime_pid: i32,
    output_fd: Option<OwnedFd>,
    output: Vec<u8>,
    start: SystemTime,
    deadline: Instant,
    exit: Option<i32>,
    timed_out: bool,
}

impl HealthMonitor {
    /// For a container that has just started.
    pub fn new(config: &HealthConfig, state_dir: &std::path::Path) -> Result<Self, MonitorError> {
        let now = Instant::now();
        let h = HealthMonitor {
            config: config.clone(),
            argv: config.command()?,
            path: files::path(state_dir, files::HEALTH),
            pid_file: state_dir.join("health-probe.pid"),
            state: HealthState {
                status: HealthStatus::Starting,
                failing_streak: 0,
                log: Vec::new(),
            },
            started: now,
            next: now + Duration::from_nanos(config.interval_ns),
            probe: None,
        };
        h.save();
        Ok(h)
    }

    fn save(&self) {
        if let Err(e) = files::write_json_atomic(&self.path, &self.state) {
            eprintln!("write {}: {e}", self.path.display());
        }
    }

    /// When the supervisor must call [`HealthMonitor::tick`] next.
    pub fn deadline(&self) -> Instant {
        match &self.probe {
            Some(p) => p.deadline,
            None => self.next,
        }
    }

    /// The running probe's output pipe, to poll.
    pub fn output_fd(&self) -> Option<BorrowedFd<'_>> {
        self.probe.as_ref()?.output_fd.as_ref().map(|f| f.as_fd())
    }

    /// Starts a probe when one is due, or times out the running one.
    pub fn tick(&mut self, runtime: &Runtime) {
        let now = Instant::now();
        if let Some(p) = &mut self.probe {
            if now >= p.deadline && p.exit.is_none() && !p.timed_out {
                p.timed_out = true;
                // The process in the container first (its host pid is in
                // the pid file), then the runtime that waits for it.
                if let Some(pid) = read_pid(&self.pid_file) {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
                let _ = kill(Pid::from_raw(p.runtime_pid), Signal::SIGKILL);
            }
            return;
        }
        if now < self.next {
            return;
        }
        let _ = std::fs::remove_file(&self.pid_file);
        let start = SystemTime::now();
        let spawned = pipe().and_then(|(r, w)| {
            set_nonblocking(&r)?;
            let pid = runtime.spawn_exec(&self.argv, &self.pid_file, &w)?;
            Ok((r, pid))
        });
        match spawned {
            Ok((r, pid)) => {
                self.probe = Some(Probe {
                    runtime_pid: pid,
                    output_fd: Some(r),
                    output: Vec::new(),
                    start,
                    deadline: now + Duration::from_nanos(self.config.timeout_ns),
                    exit: None,
                    timed_out: false,
                })
            }
            Err(e) => self.record(start, -1, format!("health probe: {e}")),
        }
    }

    /// Reads the probe's output; EOF closes the pipe.
    pub fn read_output(&mut self) {
        let Some(p) = &mut self.probe else { return };
        let Some(fd) = &p.output_fd else { return };
        let mut buf = [0u8; 4096];
        loop {
            match nix::unistd::read(fd, &mut buf) {
                Ok(0) => {
                    p.output_fd = None;
                    break;
                }
                Ok(n) => {
                    let room = MAX_OUTPUT.saturating_sub(p.output.len());
                    p.output.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => break,
            }
        }
    }

    /// Handles a reaped child: true when it was the probe.
    pub fn reaped(&mut self, pid: i32, code: i32) -> bool {
        let Some(p) = &mut self.probe else {
            return false;
        };
        if p.runtime_pid != pid {
            return false;
        }
        p.exit = Some(code);
        // What the probe printed is in the pipe already; a process it left
        // behind may keep the pipe open, so do not wait for EOF.
        self.read_output();
        let Some(p) = self.probe.take() else {
            return true;
        };
        let (code, output) = if p.timed_out {
            (
                -1,
                format!(
                    "Health check exceeded timeout ({})",
                    fmt_duration(self.config.timeout_ns)
                ),
            )
        } else {
            (code, String::from_utf8_lossy(&p.output).into_owned())
        };
        self.record(p.start, code, output);
        true
    }

    fn record(&mut self, start: SystemTime, exit_code: i32, output: String) {
        let now = Instant::now();
        let in_start_period =
            now.duration_since(self.started) < Duration::from_nanos(self.config.start_period_ns);
        if exit_code == 0 {
            self.state.status = HealthStatus::Healthy;
            self.state.failing_streak = 0;
        } else if !in_start_period {
            self.state.failing_streak += 1;
            if self.state.failing_streak >= self.config.retries {
                self.state.status = HealthStatus::Unhealthy;
            }
        }
        self.state.log.push(HealthResult {
            start: timefmt::rfc3339_nano_fixed(start),
            end: timefmt::rfc3339_nano_fixed(SystemTime::now()),
            exit_code,
            output,
        });
        if self.state.log.len() > KEEP_RESULTS {
            let extra = self.state.log.len() - KEEP_RESULTS;
            self.state.log.drain(..extra);
        }
        self.next = now + Duration::from_nanos(self.config.interval_ns);
        self.save();
    }

    /// The container stopped: kill a running probe (its runtime is reaped
    /// by the supervisor's loop like any other child).
    pub fn stop(&mut self) {
        if let Some(p) = self.probe.take() {
            let _ = kill(Pid::from_raw(p.runtime_pid), Signal::SIGKILL);
        }
        let _ = std::fs::remove_file(&self.pid_file);
    }
}

fn read_pid(path: &std::path::Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Go's `time.Duration` formatting for whole and fractional seconds.
fn fmt_duration(ns: u64) -> String {
    let d = Duration::from_nanos(ns);
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}s", d.as_secs_f64())
    }
}
