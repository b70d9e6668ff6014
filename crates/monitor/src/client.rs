//! The side the engine and the CLI use: start a monitor ([`spawn`]), attach
//! to its container ([`attach`]), wait for its exit ([`wait`]).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::{
    connect, recv, send, shutdown, socket, AddressFamily, MsgFlags, Shutdown, SockFlag, SockType,
};

use crate::error::ClientError;
use crate::files;
use crate::protocol::{Frame, MAX_DATA, MAX_FRAME};

/// A monitor that has detached from its caller; its ready report is pending.
pub struct SpawnedMonitor {
    ready: BufReader<std::fs::File>,
    state_dir: PathBuf,
}

/// A monitor started before its container is known (`berth-monitor
/// --standby`): its exec and its detaching forks happen while the caller
/// prepares the container, off the start's critical path. [`Self::launch`]
/// hands it the config; dropping it unused lets it exit.
pub struct StandbyMonitor {
    /// Its first process (it forks and exits at once).
    first: nix::unistd::Pid,
    reaped: bool,
    /// Both taken by `launch`.
    go: Option<std::fs::File>,
    ready: Option<BufReader<std::fs::File>>,
}

impl StandbyMonitor {
    /// Starts `berth-monitor --standby` (fd 3: ready pipe, fd 4: the pipe
    /// its config path comes on). Returns without waiting for it.
    pub fn start(monitor_bin: &Path) -> Result<StandbyMonitor, ClientError> {
        let (ready_r, ready_w) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(ClientError::sys("pipe2"))?;
        let (go_r, go_w) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(ClientError::sys("pipe2"))?;
        let first = crate::spawn_unwaited::spawn(
            monitor_bin,
            &["--standby".as_ref()],
            false,
            &[
                (ready_w.as_raw_fd(), crate::supervisor::READY_FD),
                (go_r.as_raw_fd(), crate::supervisor::GO_FD),
            ],
        )
        .map_err(ClientError::io("run monitor", monitor_bin))?;
        Ok(StandbyMonitor {
            first,
            reaped: false,
            go: Some(go_w.into()),
            ready: Some(BufReader::new(ready_r.into())),
        })
    }

    /// Gives the monitor `config_path` and waits until its attach socket is
    /// bound (what [`spawn`] returns at). `state_dir` is the config's.
    pub fn launch(
        mut self,
        config_path: &Path,
        state_dir: &Path,
    ) -> Result<SpawnedMonitor, ClientError> {
        use std::os::unix::ffi::OsStrExt;
        let mut line = config_path.as_os_str().as_bytes().to_vec();
        line.push(b'\n');
        let (Some(mut go), Some(ready)) = (self.go.take(), self.ready.take()) else {
            return Err(ClientError::Protocol("standby monitor used twice".into()));
        };
        let sent = go.write_all(&line);
        drop(go);
        // Its first process exits as soon as it forked: reaped here.
        self.reap();
        let mut spawned = SpawnedMonitor {
            ready,
            state_dir: state_dir.to_path_buf(),
        };
        sent.map_err(ClientError::io(
            "hand the config to the monitor",
            config_path,
        ))?;
        match spawned.read_report()? {
            Report::Listening => Ok(spawned),
            Report::Started(pid) => Err(ClientError::Protocol(format!(
                "monitor reported pid {pid} before its socket"
            ))),
        }
    }

    fn reap(&mut self) {
        if !std::mem::replace(&mut self.reaped, true) {
            let _ = nix::sys::wait::waitpid(self.first, None);
        }
    }
}

impl Drop for StandbyMonitor {
    fn drop(&mut self) {
        // Unused: the go pipe closes, which tells the monitor to exit; its
        // first process exited at once (a fork and `_exit`) and is reaped,
        // and the end of the ready pipe says that the monitor is gone too
        // (nothing of an unused standby outlives its caller).
        drop(self.go.take());
        self.reap();
        if let Some(mut ready) = self.ready.take() {
            let _ = std::io::copy(&mut ready, &mut std::io::sink());
        }
    }
}

/// Makes `fds` (source, target) the child's fds `target`, close-on-exec
/// cleared, between fork and exec.
fn pass_fds(cmd: &mut Command, fds: &[(RawFd, RawFd)]) {
    let fds = fds.to_vec();
    // SAFETY: the closure only calls dup2 (async-signal-safe) between fork
    // and exec; dup2 clears close-on-exec on the new fds. The sources are
    // pipe ends the caller just made, never one of the targets.
    unsafe {
        cmd.pre_exec(move || {
            for &(src, target) in &fds {
                if libc::dup2(src, target) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// A line of the ready pipe.
enum Report {
    Listening,
    Started(i32),
}

/// Starts `berth-monitor <config_path>` and waits for its first process to
/// exit (quick: it forks into the background). When this returns, the
/// attach socket of the container exists. `state_dir` is the config's.
pub fn spawn(
    monitor_bin: &Path,
    config_path: &Path,
    state_dir: &Path,
) -> Result<SpawnedMonitor, ClientError> {
    let (r, w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(ClientError::sys("pipe2"))?;
    let mut cmd = Command::new(monitor_bin);
    cmd.arg(config_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    pass_fds(&mut cmd, &[(w.as_raw_fd(), crate::supervisor::READY_FD)]);
    let status = cmd
        .status()
        .map_err(ClientError::io("run monitor", monitor_bin))?;
    drop(w);
    let spawned = SpawnedMonitor {
        ready: BufReader::new(std::fs::File::from(r)),
        state_dir: state_dir.to_path_buf(),
    };
    if !status.success() {
        // The monitor failed before it detached; its report says why.
        return match spawned.wait_ready() {
            Err(e) => Err(e),
            Ok(_) => Err(ClientError::Protocol(format!(
                "monitor exited with {status} after reporting a start"
            ))),
        };
    }
    Ok(spawned)
}

impl SpawnedMonitor {
    /// Waits for the monitor's report: the container's pid once it runs,
    /// or [`ClientError::Start`] with Docker's exit code.
    pub fn wait_ready(mut self) -> Result<i32, ClientError> {
        loop {
            if let Report::Started(pid) = self.read_report()? {
                return Ok(pid);
            }
        }
    }

    fn read_report(&mut self) -> Result<Report, ClientError> {
        let mut line = String::new();
        self.ready.read_line(&mut line).map_err(ClientError::io(
            "read ready pipe of monitor",
            &self.state_dir,
        ))?;
        if line.trim().is_empty() {
            return Err(ClientError::MonitorGone {
                state_dir: self.state_dir.clone(),
            });
        }
        let v: serde_json::Value =
            serde_json::from_str(&line).map_err(|source| ClientError::Parse {
                path: self.state_dir.join("(ready pipe)"),
                source,
            })?;
        if v.get("listening").is_some() {
            return Ok(Report::Listening);
        }
        if let Some(pid) = v.get("pid").and_then(serde_json::Value::as_i64) {
            return i32::try_from(pid)
                .map(Report::Started)
                .map_err(|_| ClientError::Protocol(format!("pid {pid}")));
        }
        Err(ClientError::Start {
            message: v
                .get("error")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("monitor failed without a message")
                .to_string(),
            exit_code: v
                .get("exit_code")
                .and_then(serde_json::Value::as_i64)
                .and_then(|c| i32::try_from(c).ok())
                .unwrap_or(125),
        })
    }
}

/// [`spawn`] and [`SpawnedMonitor::wait_ready`] in one: the container's pid.
pub fn start(monitor_bin: &Path, config_path: &Path, state_dir: &Path) -> Result<i32, ClientError> {
    spawn(monitor_bin, config_path, state_dir)?.wait_ready()
}

/// How to attach.
pub struct AttachOptions {
    /// Input for the container's stdin (`None`: output only).
    pub stdin: Option<Box<dyn Read + Send>>,
    pub stdout: Box<dyn Write + Send>,
    pub stderr: Box<dyn Write + Send>,
    /// The container has a tty: the local terminal (fd 0, when it is one)
    /// goes into raw mode and its size follows SIGWINCH.
    pub tty: bool,
    /// Input that detaches instead of being sent; `None` for Docker's
    /// default ctrl-p ctrl-q, an empty sequence disables detaching.
    pub detach_keys: Option<Vec<u8>>,
    /// Ask to do the exit command's work (see the protocol's
    /// take-cleanup): the outcome may then be
    /// [`AttachOutcome::CleanupHandedOver`].
    pub take_cleanup: bool,
}

/// Docker's default detach sequence: ctrl-p, ctrl-q.
pub const DEFAULT_DETACH_KEYS: &[u8] = &[0x10, 0x11];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachOutcome {
    /// The container stopped for good with this exit code.
    Exited(i32),
    /// The user typed the detach keys; the container runs on.
    Detached,
    /// The container stopped for good with this exit code, and its exit
    /// command's work is the caller's (it asked with `take_cleanup`); the
    /// monitor exits once the runtime's state is deleted.
    CleanupHandedOver(i32),
}

fn connect_attach(state_dir: &Path) -> Result<Option<OwnedFd>, ClientError> {
    let path = files::path(state_dir, files::ATTACH_SOCKET);
    let fd = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(ClientError::sys("socket(AF_UNIX, SOCK_SEQPACKET)"))?;
    let (addr, _dir) =
        crate::sockaddr::unix_addr(&path).map_err(ClientError::sys("attach socket address"))?;
    match connect(fd.as_raw_fd(), &addr) {
        Ok(()) => Ok(Some(fd)),
        Err(Errno::ENOENT) | Err(Errno::ECONNREFUSED) => Ok(None),
        Err(e) => Err(ClientError::Sys {
            what: "connect to attach socket",
            source: e,
        }),
    }
}

/// The exit code from `exit.json`, waiting while the monitor still runs
/// (it may be between removing its socket and exiting).
fn exit_from_file(state_dir: &Path) -> Result<i32, ClientError> {
    loop {
        if let Some(exit) = files::read_exit(state_dir)? {
            return Ok(exit.exit_code);
        }
        if !files::monitor_alive(state_dir) {
            // exit.json is written before the monitor ends: look once more.
            return match files::read_exit(state_dir)? {
                Some(exit) => Ok(exit.exit_code),
                None => Err(ClientError::MonitorGone {
                    state_dir: state_dir.to_path_buf(),
                }),
            };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the container stopped for good (after its exit command ran)
/// and returns its exit code; also works when the monitor has already
/// exited (`berth wait`).
pub fn wait(state_dir: &Path) -> Result<i32, ClientError> {
    let Some(fd) = connect_attach(state_dir)? else {
        return exit_from_file(state_dir);
    };
    // Older monitors ignore this and send output, which is skipped below.
    let _ = send_frame(&fd, &Frame::NoOutput);
    let mut buf = vec![0u8; MAX_FRAME];
    loop {
        match recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
            Ok(0) => return exit_from_file(state_dir),
            Ok(n) => {
                if let Some(Frame::Exit(code)) = Frame::decode(&buf[..n]) {
                    return Ok(code);
                }
            }
            Err(Errno::EINTR) => continue,
            Err(Errno::ECONNRESET) => return exit_from_file(state_dir),
            Err(e) => {
                return Err(ClientError::Sys {
                    what: "recv from attach socket",
                    source: e,
                })
            }
        }
    }
}

/// A connection to the monitor that asked to do the container's exit
/// cleanup (take-cleanup) and wants no output: `stop` and `rm -f` make it
/// before they signal the container, and then do the cleanup with the
/// state they have open instead of waiting for the monitor's exit command.
pub struct CleanupClaim {
    sock: OwnedFd,
}

impl CleanupClaim {
    /// `None` when the monitor's socket is gone (the monitor ended).
    pub fn connect(state_dir: &Path) -> Result<Option<CleanupClaim>, ClientError> {
        let Some(sock) = connect_attach(state_dir)? else {
            return Ok(None);
        };
        send_frame(&sock, &Frame::NoOutput)?;
        send_frame(&sock, &Frame::TakeCleanup)?;
        Ok(Some(CleanupClaim { sock }))
    }

    /// Waits (at most `limit`) for the container to stop for good: its exit
    /// code when the cleanup was handed over (the monitor then exits once
    /// the runtime's state is deleted), `None` when the monitor ran its
    /// exit command or went away.
    pub fn wait(self, limit: Duration) -> Option<i32> {
        crate::sockaddr::set_timeout(&self.sock, true, limit);
        let mut buf = vec![0u8; MAX_FRAME];
        loop {
            match recv(self.sock.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                Ok(0) => return None,
                Ok(n) => match Frame::decode(&buf[..n]) {
                    Some(Frame::ExitCleanup(code)) => return Some(code),
                    Some(Frame::Exit(_)) => return None,
                    _ => {}
                },
                Err(Errno::EINTR) => continue,
                Err(_) => return None,
            }
        }
    }
}

/// Attaches to the container's stdio until it stops for good or the user
/// detaches.
pub fn attach(state_dir: &Path, options: AttachOptions) -> Result<AttachOutcome, ClientError> {
    let AttachOptions {
        stdin,
        mut stdout,
        mut stderr,
        tty,
        detach_keys,
        take_cleanup,
    } = options;
    let Some(sock) = connect_attach(state_dir)? else {
        return exit_from_file(state_dir).map(AttachOutcome::Exited);
    };
    if take_cleanup {
        send_frame(&sock, &Frame::TakeCleanup)?;
    }
    let sock = Arc::new(sock);
    let detached = Arc::new(AtomicBool::new(false));
    // Raw mode only when the terminal's input goes to the container.
    let _raw = if tty && stdin.is_some() {
        RawTerminal::enable(0)
    } else {
        None
    };
    let _winch = if tty {
        WinchForwarder::start(&sock)
    } else {
        None
    };
    if let Some(input) = stdin {
        send_frame(&sock, &Frame::AttachStdin)?;
        let keys = detach_keys.unwrap_or_else(|| DEFAULT_DETACH_KEYS.to_vec());
        let (sock, detached) = (Arc::clone(&sock), Arc::clone(&detached));
        std::thread::spawn(move || forward_stdin(input, &sock, &keys, &detached));
    }
    let mut buf = vec![0u8; MAX_FRAME];
    loop {
        let n = match recv(sock.as_raw_fd(), &mut buf, MsgFlags::empty()) {
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(Errno::ECONNRESET) => 0,
            Err(e) => {
                return Err(ClientError::Sys {
                    what: "recv from attach socket",
                    source: e,
                })
            }
        };
        if n == 0 {
            if detached.load(Ordering::SeqCst) {
                return Ok(AttachOutcome::Detached);
            }
            return exit_from_file(state_dir).map(AttachOutcome::Exited);
        }
        let out = match Frame::decode(&buf[..n]) {
            Some(Frame::Stdout(d)) => stdout.write_all(d).and_then(|()| stdout.flush()),
            Some(Frame::Stderr(d)) => stderr.write_all(d).and_then(|()| stderr.flush()),
            Some(Frame::Exit(code)) => return Ok(AttachOutcome::Exited(code)),
            Some(Frame::ExitCleanup(code)) => return Ok(AttachOutcome::CleanupHandedOver(code)),
            _ => Ok(()),
        };
        out.map_err(ClientError::io("write attached output of", state_dir))?;
    }
}

fn send_frame(sock: &OwnedFd, frame: &Frame<'_>) -> Result<(), ClientError> {
    loop {
        match send(sock.as_raw_fd(), &frame.encode(), MsgFlags::MSG_NOSIGNAL) {
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(e) => {
                return Err(ClientError::Sys {
                    what: "send to attach socket",
                    source: e,
                })
            }
        }
    }
}

/// Sends input as stdin frames, holding back a possible start of the
/// detach sequence until it is complete (detach) or broken (sent).
fn forward_stdin(
    mut input: Box<dyn Read + Send>,
    sock: &OwnedFd,
    keys: &[u8],
    detached: &AtomicBool,
) {
    let mut buf = vec![0u8; MAX_DATA];
    let mut matched = 0usize;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => {
                let _ = send_frame(sock, &Frame::CloseStdin);
                return;
            }
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => {
                let _ = send_frame(sock, &Frame::CloseStdin);
                return;
            }
        };
        let mut out = Vec::with_capacity(n + keys.len());
        for &b in &buf[..n] {
            if !keys.is_empty() && b == keys[matched] {
                matched += 1;
                if matched == keys.len() {
                    if !out.is_empty() {
                        let _ = send_frame(sock, &Frame::Stdin(&out));
                    }
                    detached.store(true, Ordering::SeqCst);
                    let _ = shutdown(sock.as_raw_fd(), Shutdown::Both);
                    return;
                }
                continue;
            }
            out.extend_from_slice(&keys[..matched]);
            matched = 0;
            if !keys.is_empty() && b == keys[0] {
                matched = 1;
            } else {
                out.push(b);
            }
        }
        if !out.is_empty() && send_frame(sock, &Frame::Stdin(&out)).is_err() {
            return;
        }
    }
}

/// The local terminal in raw mode, restored on drop.
struct RawTerminal {
    fd: RawFd,
    saved: nix::sys::termios::Termios,
}

impl RawTerminal {
    fn enable(fd: RawFd) -> Option<RawTerminal> {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        // SAFETY: fd 0 stays open for the life of the process.
        let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        let saved = tcgetattr(borrowed).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(borrowed, SetArg::TCSANOW, &raw).ok()?;
        Some(RawTerminal { fd, saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        // SAFETY: as in enable.
        let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(self.fd) };
        let _ =
            nix::sys::termios::tcsetattr(borrowed, nix::sys::termios::SetArg::TCSANOW, &self.saved);
    }
}

/// Write end of the SIGWINCH self-pipe, for the signal handler.
static WINCH_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_winch(_: libc::c_int) {
    let fd = WINCH_PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe; the buffer is a local.
        unsafe {
            libc::write(fd, [0u8].as_ptr().cast(), 1);
        }
    }
}

/// Sends the terminal's size now and on every SIGWINCH while it lives.
struct WinchForwarder {
    write_end: Option<OwnedFd>,
    previous: Option<nix::sys::signal::SigAction>,
}

fn terminal_size() -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    for fd in [0, 1] {
        // SAFETY: TIOCGWINSZ writes one winsize into `ws`, which outlives
        // the call.
        if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0 && ws.ws_row > 0 {
            return Some((ws.ws_row, ws.ws_col));
        }
    }
    None
}

impl WinchForwarder {
    fn start(sock: &Arc<OwnedFd>) -> Option<WinchForwarder> {
        use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
        if let Some((rows, cols)) = terminal_size() {
            let _ = send_frame(sock, &Frame::Resize { rows, cols });
        }
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ok()?;
        WINCH_PIPE.store(w.as_raw_fd(), Ordering::SeqCst);
        let action = SigAction::new(
            SigHandler::Handler(on_winch),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        // SAFETY: the handler only loads an atomic and calls write(2).
        let previous = unsafe { sigaction(Signal::SIGWINCH, &action) }.ok();
        let sock = Arc::clone(sock);
        std::thread::spawn(move || {
            let mut b = [0u8; 64];
            // Ends when the write end is closed (the forwarder dropped).
            while matches!(nix::unistd::read(&r, &mut b), Ok(n) if n > 0) {
                if let Some((rows, cols)) = terminal_size() {
                    if send_frame(&sock, &Frame::Resize { rows, cols }).is_err() {
                        return;
                    }
                }
            }
        });
        Some(WinchForwarder {
            write_end: Some(w),
            previous,
        })
    }
}

impl Drop for WinchForwarder {
    fn drop(&mut self) {
        if let Some(prev) = &self.previous {
            // SAFETY: restores the handler that was installed before.
            let _ =
                unsafe { nix::sys::signal::sigaction(nix::sys::signal::Signal::SIGWINCH, prev) };
        }
        WINCH_PIPE.store(-1, Ordering::SeqCst);
        self.write_end = None;
    }
}
