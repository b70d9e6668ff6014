//! The supervisor's state machine and its poll loop.
//!
//! ```text
//!   start ──ok──► running ──exit──► (stop marker? policy?) ──restart──► restarting
//!     │                                   │                                │ backoff
//!     │ failed (first start:              └──for good──► finish ◄──failed──┘ start
//!     ▼  ready pipe error)                       exit.json, exit command,
//!   exit.json                                    exit frames, exit
//! ```

use std::os::fd::{AsFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};

use super::attach::{AttachServer, ClientInput};
use super::daemon::ReadyPipe;
use super::health::HealthMonitor;
use super::log;
use super::oom::OomCounter;
use super::runtime::{classify_failure, Runtime};
use super::stdio::{ContainerIo, Prepared};
use crate::config::{MonitorConfig, WAIT_FOR_ATTACH_LIMIT};
use crate::error::MonitorError;
use crate::files::{self, ExitState, MonitorState, Status};
use crate::logs::{LogStream, LogWriter};
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
    buf: Vec<u8>,
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
            buf: Vec::new(),
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
            Ok(pid) => {
                ready.started(pid);
                super::trim::drop_startup_pages();
            }
            Err(f) => {
                // Files first: the caller may look at them once told.
                self.record_failed_start(&f);
                self.write_exit();
                ready.failed(&f.message, f.exit_code);
                self.attach
                    .broadcast(LogStream::Stderr, format!("{}\n", f.message).as_bytes());
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
            oom: OomCounter::locate(pid),
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
        Ok(pid)
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

    fn poll_once(&mut self) -> Result<(), MonitorError> {
        let now = Instant::now();
        let mut deadline: Option<Instant> = self.restart_at;
        if let Some(h) = &self.health {
            deadline = Some(deadline.map_or(h.deadline(), |d| d.min(h.deadline())));
        }
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                // Round up so that the timer has passed when poll returns.
                let ms = d.saturating_duration_since(now).as_millis() + 1;
                PollTimeout::try_from(ms.min(60_000) as i32).unwrap_or(PollTimeout::MAX)
            }
        };
        let ready = self.poll_sources(timeout)?;
        let mut outputs = Vec::new();
        let mut clients = Vec::new();
        let (mut signals, mut listener, mut stdin, mut probe) = (false, false, false, false);
        for (source, revents) in ready {
            if revents.is_empty() {
                continue;
            }
            match source {
                Source::Signals => signals = true,
                Source::Listener => listener = true,
                Source::Output(i) => outputs.push(i),
                Source::Stdin => stdin = true,
                Source::Client(i) => clients.push((i, revents)),
                Source::Probe => probe = true,
            }
        }
        for &i in outputs.iter().rev() {
            self.read_output(i, false);
        }
        if probe {
            if let Some(h) = &mut self.health {
                h.read_output();
            }
        }
        if stdin {
            self.write_stdin();
        }
        let mut input = Vec::new();
        for &(i, revents) in clients.iter().rev() {
            if revents.contains(PollFlags::POLLOUT) {
                self.attach.flush(i);
            }
            if revents.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
                self.attach.read_client(i, &mut input);
            }
        }
        for i in input {
            self.client_input(i);
        }
        if listener {
            self.attach.accept();
        }
        if signals {
            self.handle_signals();
        }
        if let Some(h) = &mut self.health {
            if Instant::now() >= h.deadline() {
                h.tick(&self.runtime);
            }
        }
        if self.restart_at.is_some_and(|t| Instant::now() >= t) {
            self.restart_at = None;
            self.restart();
        }
        Ok(())
    }

    fn poll_sources(&self, timeout: PollTimeout) -> Result<Vec<(Source, PollFlags)>, MonitorError> {
        let mut sources = vec![Source::Signals, Source::Listener];
        let mut fds = vec![
            PollFd::new(self.signals.as_fd(), PollFlags::POLLIN),
            PollFd::new(self.attach.listener(), PollFlags::POLLIN),
        ];
        if let Some(io) = &self.io {
            for (i, (_, fd)) in io.outputs.iter().enumerate() {
                sources.push(Source::Output(i));
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
            }
            if let Some(fd) = &io.stdin {
                if !self.stdin_buf.is_empty() {
                    sources.push(Source::Stdin);
                    fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLOUT));
                }
            }
        }
        let take_input = self.stdin_buf.len() < STDIN_HIGH_WATER;
        for (i, c) in self.attach.clients.iter().enumerate() {
            let mut events = PollFlags::empty();
            if take_input {
                events |= PollFlags::POLLIN;
            }
            if c.wants_write() {
                events |= PollFlags::POLLOUT;
            }
            sources.push(Source::Client(i));
            fds.push(PollFd::new(c.fd.as_fd(), events));
        }
        if let Some(fd) = self.health.as_ref().and_then(|h| h.output_fd()) {
            sources.push(Source::Probe);
            fds.push(PollFd::new(fd, PollFlags::POLLIN));
        }
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => {
                return Err(MonitorError::Sys {
                    what: "poll",
                    source: e,
                })
            }
        }
        Ok(sources
            .into_iter()
            .zip(
                fds.iter()
                    .map(|f| f.revents().unwrap_or(PollFlags::empty())),
            )
            .collect())
    }

    /// Reads output `index` until it would block (or, when `drain`, until
    /// nothing is left), passing it to the log and the clients; closes it
    /// at EOF.
    fn read_output(&mut self, index: usize, drain: bool) {
        let Some(io) = &mut self.io else { return };
        let Some((stream, fd)) = io.outputs.get(index) else {
            return;
        };
        let stream = *stream;
        // Allocated on first output: an idle container's monitor keeps none.
        if self.buf.is_empty() {
            self.buf.resize(READ_CHUNK, 0);
        }
        let mut closed = false;
        // A bounded number of reads keeps one busy stream from starving
        // the rest of the loop.
        // Draining after the exit is bounded too: a process left behind
        // without a pid namespace may write on forever.
        let mut rounds = if drain { 4096 } else { 8 };
        while rounds > 0 {
            rounds -= 1;
            match nix::unistd::read(fd, &mut self.buf) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => {
                    let now = SystemTime::now();
                    if let Err(e) = self.log.write(stream, &self.buf[..n], now) {
                        log(&format!("log: {e}"));
                    }
                    self.attach.broadcast(stream, &self.buf[..n]);
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => break,
                // EIO: the pty's other side is closed.
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
        if closed {
            if let Err(e) = self.log.flush_partial(stream, SystemTime::now()) {
                log(&format!("log: {e}"));
            }
            io.outputs.remove(index);
        }
    }

    fn write_stdin(&mut self) {
        let Some(io) = &mut self.io else { return };
        let Some(fd) = &io.stdin else {
            self.stdin_buf.clear();
            return;
        };
        while !self.stdin_buf.is_empty() {
            match nix::unistd::write(fd, &self.stdin_buf) {
                Ok(n) => {
                    self.stdin_buf.drain(..n);
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return,
                Err(_) => {
                    // The container closed its stdin: nothing more goes in.
                    self.stdin_buf.clear();
                    io.stdin = None;
                    return;
                }
            }
        }
        if self.stdin_closing {
            self.stdin_closing = false;
            self.stdin_closed = true;
            io.stdin = None;
        }
    }

    fn client_input(&mut self, input: ClientInput) {
        match input {
            ClientInput::Stdin(data) => {
                let accepting = self.io.as_ref().is_some_and(|io| io.stdin.is_some());
                if accepting && !self.stdin_closing {
                    self.stdin_buf.extend_from_slice(&data);
                    self.write_stdin();
                }
            }
            ClientInput::Resize { rows, cols } => {
                if let Some(pty) = self.io.as_ref().and_then(|io| io.pty) {
                    super::stdio::resize(pty, rows, cols);
                }
            }
            ClientInput::StdinDone => {
                // With a tty the pty stays open for output; only pipes close.
                if self.config.stdin_once && !self.config.tty && !self.stdin_closed {
                    self.stdin_closing = true;
                    self.write_stdin();
                }
            }
        }
    }

    fn handle_signals(&mut self) {
        while let Ok(Some(info)) = self.signals.read_signal() {
            let signo = i32::try_from(info.ssi_signo).unwrap_or(0);
            if signo != libc::SIGCHLD {
                log(&format!("ignoring signal {signo}"));
            }
        }
        loop {
            let (pid, code) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid.as_raw(), code),
                Ok(WaitStatus::Signaled(pid, sig, _)) => (pid.as_raw(), 128 + sig as i32),
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
                Ok(_) => continue,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    log(&format!("waitpid: {e}"));
                    return;
                }
            };
            if self.current.as_ref().is_some_and(|c| c.pid == pid) {
                self.container_exited(code);
            } else if let Some(h) = &mut self.health {
                h.reaped(pid, code);
            }
        }
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
        let oom_killed = run.oom.as_ref().is_some_and(OomCounter::oom_killed);
        if let Err(e) = self.runtime.delete() {
            log(&format!("delete after exit: {e}"));
        }
        let _ = std::fs::remove_file(files::path(self.state_dir(), files::CONTAINER_PID));
        self.state.pid = 0;
        self.state.exit_code = Some(code);
        self.state.oom_killed = oom_killed;
        self.state.finished_at = Some(timefmt::rfc3339_nano_fixed(finished));
        let stopping = files::path(self.state_dir(), files::STOPPING).exists();
        let restart = !stopping
            && self
                .config
                .restart
                .should_restart(code, self.state.restart_count);
        if !restart {
            self.state.status = Status::Exited;
            self.save_state();
            self.done = Some(code);
            return;
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
            self.save_state();
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
        if let Some((program, args)) = self.config.exit_command.split_first() {
            let status = Command::new(program)
                .args(args)
                .env("BERTH_EXIT_CODE", code.to_string())
                .stdin(Stdio::null())
                .status();
            match status {
                Ok(s) if s.success() => {}
                Ok(s) => log(&format!("exit command {program}: {s}")),
                Err(e) => log(&format!("exit command {program}: {e}")),
            }
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
