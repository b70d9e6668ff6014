//! The monitor process: starts the container through the runtime, carries
//! its stdio, records its exit, restarts it, runs health checks, serves
//! the attach socket. One thread, one `poll` loop, no async runtime.

mod attach;
mod daemon;
mod health;
mod oom;
mod run;
mod runtime;
mod stdio;
mod trim;

use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::SystemTime;

use crate::config::MonitorConfig;
use crate::error::MonitorError;
use crate::files;

pub use daemon::{GO_FD, READY_FD};
/// Also what `berth exec` uses to tell Docker's 126/127 from its runtime's log.
pub use runtime::classify_failure;

/// `berth-monitor <monitor.json>`: everything the binary does. Returns the
/// process's exit status (0 once the container stopped for good and was
/// cleaned up; 125–127 when the first start failed).
pub fn main(config_path: &Path) -> i32 {
    let mut ready = daemon::ReadyPipe::take();
    let prepared = prepare(config_path);
    let (config, attach) = match prepared {
        Ok(p) => p,
        Err(e) => {
            ready.failed(&e.to_string(), 125);
            return 125;
        }
    };
    if let Err(e) = daemon::daemonize() {
        ready.failed(&e.to_string(), 125);
        return 125;
    }
    supervise(config, attach, &mut ready)
}

/// `berth-monitor --standby`: detaches at once, then waits for the path of
/// its `monitor.json` on [`GO_FD`] and carries on as [`main`] does, with a
/// `{"listening":true}` line on the ready pipe where [`main`]'s caller sees
/// its child exit. A caller starts it before it knows the container (while
/// it opens its state and writes the bundle), so that the exec and the
/// forks are done by then. End of input without a path: exits quietly (the
/// caller had no container to start after all).
pub fn standby_main() -> i32 {
    let mut ready = daemon::ReadyPipe::take();
    let go = daemon::take_go_pipe();
    if let Err(e) = daemon::daemonize() {
        ready.failed(&e.to_string(), 125);
        return 125;
    }
    let Some(config_path) = go.and_then(daemon::read_config_path) else {
        // Exit with the ready pipe still open: its end, which the caller
        // waits for, then comes with the process's own.
        std::process::exit(0);
    };
    let (config, attach) = match prepare(&config_path) {
        Ok(p) => p,
        Err(e) => {
            ready.failed(&e.to_string(), 125);
            return 125;
        }
    };
    ready.listening();
    supervise(config, attach, &mut ready)
}

/// The detached monitor, its config read and its socket bound: leaves the
/// caller's working directory, logs to `monitor.log`, runs the container.
fn supervise(
    config: MonitorConfig,
    attach: attach::AttachServer,
    ready: &mut daemon::ReadyPipe,
) -> i32 {
    let _ = std::env::set_current_dir("/");
    let log_path = files::path(&config.state_dir, files::MONITOR_LOG);
    // From here on errors can only be written down.
    let _ = daemon::redirect_stdio(Some(&log_path));
    match run::Supervisor::new(config, attach) {
        Ok(mut sup) => sup.run(ready),
        Err(e) => {
            log(&format!("monitor setup: {e}"));
            ready.failed(&e.to_string(), 125);
            125
        }
    }
}

/// What happens before the caller is released: the config is read and the
/// attach socket bound, so a caller may connect as soon as its child exits.
fn prepare(config_path: &Path) -> Result<(MonitorConfig, attach::AttachServer), MonitorError> {
    let mut config = MonitorConfig::load(config_path)?;
    // The monitor leaves the caller's working directory (which may be on a
    // filesystem that is to be unmounted): relative paths are resolved now.
    let cwd = std::env::current_dir().map_err(MonitorError::io("getcwd", "."))?;
    // A bare runtime name is looked up in PATH; one with a slash is a path.
    if config.runtime.is_relative() && config.runtime.components().count() > 1 {
        config.runtime = cwd.join(&config.runtime);
    }
    if config.bundle.is_relative() {
        config.bundle = cwd.join(&config.bundle);
    }
    if config.runtime_root.is_relative() {
        config.runtime_root = cwd.join(&config.runtime_root);
    }
    std::fs::create_dir_all(&config.state_dir)
        .map_err(MonitorError::io("create state dir", &config.state_dir))?;
    if let Some(pid) = running_monitor(&config.state_dir) {
        return Err(MonitorError::AlreadyRunning {
            state_dir: config.state_dir.clone(),
            pid,
        });
    }
    for stale in [
        files::EXIT,
        files::STOPPING,
        files::CONTAINER_PID,
        files::HEALTH,
    ] {
        let p = files::path(&config.state_dir, stale);
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(MonitorError::io("remove stale file", p)(e))
            }
            _ => {}
        }
    }
    let attach = attach::AttachServer::bind(&files::path(&config.state_dir, files::ATTACH_SOCKET))?;
    // Keep the listener out of forked children's hands but alive here.
    debug_assert!(attach.listener().as_raw_fd() > 2);
    Ok((config, attach))
}

/// The pid of a live monitor recorded in `state_dir` (its command name
/// checked, so that a reused pid does not count).
fn running_monitor(state_dir: &Path) -> Option<i32> {
    if !files::monitor_alive(state_dir) {
        return None;
    }
    let pid: i32 = std::fs::read_to_string(files::path(state_dir, files::MONITOR_PID))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    comm.starts_with("berth-monitor").then_some(pid)
}

/// A line in `monitor.log` (the monitor's stderr after it detached).
pub(crate) fn log(message: &str) {
    eprintln!(
        "{} {}",
        crate::timefmt::rfc3339_nano_fixed(SystemTime::now()),
        message
    );
}
