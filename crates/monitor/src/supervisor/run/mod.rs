//! The supervisor's state machine and its poll loop.
//!
//! ```text
//!   start ──ok──► running ──exit──► (stop marker? policy?) ──restart──► restarting
//!     │                                   │                                │ backoff
//!     │ failed (first start:              └──for good──► finish ◄──failed──┘ start
//!     ▼  ready pipe error)                       exit.json, exit command,
//!   exit.json                                    exit frames, exit
//! ```

use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

mod traffic;

use super::attach::AttachServer;
use super::daemon::ReadyPipe;
use super::health::HealthMonitor;
use super::log;
use super::oom::OomCounter;
use super::runtime::{classify_failure, PendingDelete, Runtime};
use super::stdio::{ContainerIo, Prepared};
use crate::config::{MonitorConfig, EXIT_CODE_ENV, RUNTIME_DELETE_ENV, WAIT_FOR_ATTACH_LIMIT};
use crate::error::MonitorError;
use crate::files::{self, ExitState, MonitorState, Status};
use crate::logs::LogWriter;
use crate::timefmt;

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A run at least this long resets the backoff (Docker's rule).
const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(10);
/// Buffered input beyond which clients are not read until the container
/// took some: input is never dropped, its senders wait.
const STDIN_HIGH_WATER: usize = 64 * 1024;
const READ_CHUNK: usize = 32 * 1024;

pub struct Supervisor {
    config: MonitorConfig,
    runtime: Runtime,
    attach: AttachServer,
    log: LogWriter,
    signals: SignalFd,
    io: Option<ContainerIo>,
    stdin_buf: Vec<u8>,
    /// Close the container's stdin once `stdin_buf` is written.
    stdin_closing: bool,
    /// `stdin_once` fired: later runs get no stdin either.
    stdin_closed: bool,
    current: Option<CurrentRun>,
    health: Option<HealthMonitor>,
    restart_at: Option<Instant>,
    backoff: Duration,
    state: MonitorState,
    /// Set when the container stopped for good: its exit code.
    done: Option<i32>,
    /// The runtime's delete of the last run, started as soon as the
    /// container stopped for good; waited for in `finish`, after the exit
    /// files and alongside the exit command.
    pending_delete: Option<PendingDelete>,
    /// The current run's OOM counter is still to be located (done when the
    /// poll loop first finds nothing to do, see `poll_once`).
    oom_pending: bool,
    buf: Vec<u8>,
    code_pages: super::trim::CodePages,
}

struct CurrentRun {
    pid: i32,
    started: Instant,
    oom: Option<OomCounter>,
}

struct StartFailure {
    message: String,
    exit_code: i32,
}

#[derive(Clone, Copy)]
enum Source {
    Signals,
    Listener,
    Output(usize),
    Stdin,
    Client(usize),
    Probe,
}

impl Supervisor {
    pub fn new(config: MonitorConfig, attach: AttachServer) -> Result<Supervisor, MonitorError> {
        let state_dir = config.state_dir.clone();
        files::write_atomic(
            &files::path(&state_dir, files::MONITOR_PID),
            std::process::id().to_string().as_bytes(),
        )
        .map_err(MonitorError::io(
            "write",
            files::path(&state_dir, files::MONITOR_PID),
        ))?;
        // The container's init is re-parented here when the runtime exits.
        // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) takes plain integers.
        if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
            return Err(MonitorError::Sys {
                what: "prctl(PR_SET_CHILD_SUBREAPER)",
                source: Errno::last(),
            });
        }
        let mut mask = SigSet::empty();
        for s in [
            Signal::SIGCHLD,
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGHUP,
            Signal::SIGQUIT,
        ] {
            mask.add(s);
        }
        // Children get an empty mask back from std's spawn.
        mask.thread_block()
            .map_err(MonitorError::sys("block signals"))?;
        let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .map_err(MonitorError::sys("signalfd"))?;
        let log = LogWriter::open(&config.log)?;
        let state = MonitorState {
            status: Status::Created,
            monitor_pid: i32::try_from(std::process::id()).unwrap_or(0),
            pid: 0,
            started_at: None,
            finished_at: None,
            exit_code: None,
            oom_killed: false,
            restart_count: 0,
            error: None,
        };
        Ok(Supervisor {
            runtime: Runtime::new(&config),
            config,
            attach,
            log,
            signals,
            io: None,
            stdin_buf: Vec::new(),
            stdin_closing: false,
            stdin_closed: false,
            current: None,
            health: None,
            restart_at: None,
            backoff: FIRST_BACKOFF,
            state,
            done: None,
            pending_delete: None,
            oom_pending: false,
            buf: Vec::new(),
            code_pages: super::trim::CodePages::locate(),
        })
    }

    fn state_dir(&self) -> &std::path::Path {
        &self.config.state_dir
    }

    fn save_state(&self) {
        let p = files::path(self.state_dir(), files::STATE);
        if let Err(e) = files::write_json_atomic(&p, &self.state) {
            log(&format!("write {}: {e}", p.display()));
        }
    }

    /// Runs the container until it stopped for good; returns the monitor's
    /// exit status.
    pub fn run(&mut self, ready: &mut ReadyPipe) -> i32 {
        self.save_state();
        if self.config.wait_for_attach {
            self.wait_for_first_client();
        }
        match self.start() {
            Ok(pid) => ready.started(pid),
            Err(f) => {
                // Files first: the caller may look at them once told.
                self.record_failed_start(&f);
                self.write_exit();
                // The error goes to the caller through the ready pipe (berth
                // prints it once, as Docker does); attached clients only
                // learn the exit code.
                ready.failed(&f.message, f.exit_code);
                self.attach.finish(f.exit_code);
                return f.exit_code;
            }
        }
        while self.done.is_none() {
            if let Err(e) = self.poll_once() {
                log(&format!("monitor loop: {e}"));
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let code = self.done.unwrap_or(0);
        self.finish(code);
        0
    }

    fn wait_for_first_client(&mut self) {
        let mut fds = [PollFd::new(self.attach.listener(), PollFlags::POLLIN)];
        let timeout = PollTimeout::try_from(WAIT_FOR_ATTACH_LIMIT).unwrap_or(PollTimeout::MAX);
        let _ = poll(&mut fds, timeout);
        self.attach.accept();
    }

    fn start(&mut self) -> Result<i32, StartFailure> {
        let fail = |message: String| StartFailure {
            message,
            exit_code: 125,
        };
        let pid_file = files::path(self.state_dir(), files::CONTAINER_PID);
        let _ = std::fs::remove_file(&pid_file);
        let mut prepared = if self.config.tty {
            Prepared::tty(&files::path(self.state_dir(), files::CONSOLE_SOCKET))
        } else {
            Prepared::pipes(self.config.open_stdin && !self.stdin_closed)
        }
        .map_err(|e| fail(e.to_string()))?;
        let stdio = prepared
            .runtime_stdio
            .take()
            .ok_or_else(|| fail("runtime stdio already used".into()))?;
        // The runtime moves the init into its cgroups, and on cgroup v1 the
        // first migration after a quiet spell waits for an RCU grace period
        // (see berth_cgroups::MigrationPrimer). berth's CLI primed one at
        // its start; priming again here, a few milliseconds before the
        // runtime's move, keeps the kernel's fast path open until then.
        // The helper only opens, writes and exits: safe with threads too.
        let _primer = berth_cgroups::MigrationPrimer::start(false);
        let status = self
            .runtime
            .run_detached(
                &self.config.bundle,
                &pid_file,
                prepared.console_socket(),
                stdio,
            )
            .map_err(|e| fail(e.to_string()))?;
        if !status.success() {
            let output = read_available(&prepared.error_output);
            let (message, exit_code) = classify_failure(&output, status);
            if let Err(e) = self.runtime.delete() {
                log(&format!("cleanup after failed start: {e}"));
            }
            return Err(StartFailure { message, exit_code });
        }
        let pid = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
            .ok_or_else(|| fail(format!("runtime wrote no pid to {}", pid_file.display())));
        let io = pid.and_then(|pid| {
            prepared
                .finish(self.config.open_stdin && !self.stdin_closed)
                .map(|io| (pid, io))
                .map_err(|e| fail(e.to_string()))
        });
        let (pid, io) = match io {
            Ok(v) => v,
            Err(f) => {
                let _ = self.runtime.delete();
                return Err(f);
            }
        };
        self.io = Some(io);
        self.current = Some(CurrentRun {
            pid,
            started: Instant::now(),
            // Found after the caller was told (see `watch_oom`).
            oom: None,
        });
        self.health = match &self.config.health {
            Some(h) => match HealthMonitor::new(h, &self.config.state_dir) {
                Ok(m) => Some(m),
                Err(e) => {
                    log(&format!("health check: {e}"));
                    None
                }
            },
            None => None,
        };
        self.state.status = Status::Running;
        self.state.pid = pid;
        self.state.started_at = Some(timefmt::rfc3339_nano_fixed(SystemTime::now()));
        self.state.finished_at = None;
        self.state.error = None;
        self.save_state();
        self.oom_pending = true;
        Ok(pid)
    }

    /// Finds the current run's OOM-kill counter. Not part of `start`, nor
    /// of the loop's first round: the caller of a first start waits for its
    /// pid, a container that is done at once is waited for by its caller,
    /// and this reads mountinfo and the cgroup files, which the counter
    /// only needs by the exit (an init that died already is found through
    /// the spec, see `container_exited`).
    pub(super) fn locate_oom(&mut self) {
        self.oom_pending = false;
        if let Some(run) = &mut self.current {
            run.oom = OomCounter::locate(run.pid, &self.config.bundle);
        }
    }

    fn record_failed_start(&mut self, f: &StartFailure) {
        log(&format!("start failed: {}", f.message));
        self.state.status = Status::Exited;
        self.state.pid = 0;
        self.state.exit_code = Some(f.exit_code);
        self.state.error = Some(f.message.clone());
        self.state.finished_at = Some(timefmt::rfc3339_nano_fixed(SystemTime::now()));
        self.save_state();
    }

    fn container_exited(&mut self, code: i32) {
        let Some(run) = self.current.take() else {
            return;
        };
        let finished = SystemTime::now();
        if let Some(io) = &self.io {
            for i in (0..io.outputs.len()).rev() {
                self.read_output(i, true);
            }
        }
        if let Some(io) = self.io.take() {
            for (stream, _) in &io.outputs {
                if let Err(e) = self.log.flush_partial(*stream, finished) {
                    log(&format!("log: {e}"));
                }
            }
        }
        self.stdin_buf.clear();
        if let Some(mut h) = self.health.take() {
            h.stop();
        }
        self.oom_pending = false;
        let oom = run
            .oom
            .or_else(|| OomCounter::locate(run.pid, &self.config.bundle));
        let oom_killed = oom.as_ref().is_some_and(OomCounter::oom_killed);
        let stopping = files::path(self.state_dir(), files::STOPPING).exists();
        let restart = !stopping
            && self
                .config
                .restart
                .should_restart(code, self.state.restart_count);
        if !restart {
            // First, as its process takes a while: the files below are
            // written meanwhile (the delete reads none of them; the counter
            // above had to be read before it removes the cgroup).
            match self.runtime.spawn_delete() {
                Ok(p) => self.pending_delete = Some(p),
                Err(e) => log(&format!("delete after exit: {e}")),
            }
        }
        let _ = std::fs::remove_file(files::path(self.state_dir(), files::CONTAINER_PID));
        self.state.pid = 0;
        self.state.exit_code = Some(code);
        self.state.oom_killed = oom_killed;
        self.state.finished_at = Some(timefmt::rfc3339_nano_fixed(finished));
        if !restart {
            // state.json is saved by `finish`, after the exit is handed on.
            self.state.status = Status::Exited;
            self.done = Some(code);
            return;
        }
        if let Err(e) = self.runtime.delete() {
            log(&format!("delete after exit: {e}"));
        }
        if run.started.elapsed() >= BACKOFF_RESET_AFTER {
            self.backoff = FIRST_BACKOFF;
        }
        let delay = self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        self.restart_at = Some(Instant::now() + delay);
        self.state.status = Status::Restarting;
        self.save_state();
    }

    fn restart(&mut self) {
        let code = self.state.exit_code.unwrap_or(0);
        if files::path(self.state_dir(), files::STOPPING).exists() {
            self.state.status = Status::Exited;
            self.done = Some(code);
            return;
        }
        self.state.restart_count += 1;
        if let Err(f) = self.start() {
            self.record_failed_start(&f);
            self.done = Some(f.exit_code);
        }
    }

    fn write_exit(&self) {
        let exit = ExitState {
            exit_code: self.state.exit_code.unwrap_or(0),
            oom_killed: self.state.oom_killed,
            started_at: self.state.started_at.clone(),
            finished_at: self
                .state
                .finished_at
                .clone()
                .unwrap_or_else(|| timefmt::rfc3339_nano_fixed(SystemTime::now())),
            restart_count: self.state.restart_count,
            error: self.state.error.clone(),
        };
        let p = files::path(self.state_dir(), files::EXIT);
        if let Err(e) = files::write_json_atomic(&p, &exit) {
            log(&format!("write {}: {e}", p.display()));
        }
    }

    /// The container stopped for good: exit.json, the exit command, then
    /// the exit frames.
    fn finish(&mut self, code: i32) {
        self.write_exit();
        // The runtime's delete (cgroups, state) and the exit command (the
        // rootfs, the record, `--rm`) touch disjoint things: they run side
        // by side, which an attached `run --rm` waits for.
        let pending = self.pending_delete.take();
        // An attached `run --rm` does the exit command's work itself, with
        // the state it has open (see protocol: take-cleanup).
        // (Only with the runtime's delete under way: the client's cleanup
        // leaves that to the monitor.)
        let handed_over = pending.is_some() && self.attach.hand_over_cleanup(code);
        // Only now, when that client has what it needs (exit.json): a
        // replaced state.json is a freed block, which some filesystems
        // (ext4 mounted `discard`) discard before the rename returns,
        // holding the directory's lock (0.3-0.9 ms on the dev VM, while the
        // client works in that directory). The exit command below reads
        // it, so it comes before that. A client that took the cleanup over
        // removes the container and reads none of it; should it die
        // first, whoever finds this monitor gone goes by exit.json.
        if !handed_over {
            self.save_state();
        }
        if let (false, Some((program, args))) =
            (handed_over, self.config.exit_command.split_first())
        {
            let status = Command::new(program)
                .args(args)
                .env(EXIT_CODE_ENV, code.to_string())
                .env(
                    RUNTIME_DELETE_ENV,
                    if pending.is_some() { "1" } else { "0" },
                )
                .stdin(Stdio::null())
                .status();
            match status {
                Ok(s) if s.success() => {}
                Ok(s) => log(&format!("exit command {program}: {s}")),
                Err(e) => log(&format!("exit command {program}: {e}")),
            }
        }
        if let Some(Err(e)) = pending.map(|p| p.wait()) {
            log(&format!("delete after exit: {e}"));
        }
        self.attach.finish(code);
    }
}

/// Everything readable from a non-blocking fd right now.
fn read_available(fd: &OwnedFd) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = nix::unistd::read(fd, &mut buf) {
        if n == 0 || out.len() > 64 * 1024 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    out
}
