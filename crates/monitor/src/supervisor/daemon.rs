//! Detaching from the caller and reporting readiness.

use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::unistd::{fork, setsid, ForkResult};

use crate::error::MonitorError;

/// The fd the caller passes the ready pipe's write end on.
pub const READY_FD: RawFd = 3;

/// The fd a standby monitor (`--standby`) reads the path of its config
/// from: one line, or end of input when there is no container to start.
pub const GO_FD: RawFd = 4;

/// Takes [`GO_FD`] when it is open (close-on-exec, as fd 3).
pub fn take_go_pipe() -> Option<std::fs::File> {
    take_fd(GO_FD)
}

/// The config path a standby monitor was given; `None` at end of input.
pub fn read_config_path(go: std::fs::File) -> Option<std::path::PathBuf> {
    use std::io::BufRead;
    use std::os::unix::ffi::OsStringExt;
    let mut line = Vec::new();
    std::io::BufReader::new(go)
        .read_until(b'\n', &mut line)
        .ok()?;
    if line.pop() != Some(b'\n') || line.is_empty() {
        return None;
    }
    Some(std::ffi::OsString::from_vec(line).into())
}

fn take_fd(raw: RawFd) -> Option<std::fs::File> {
    // SAFETY: F_GETFD only inspects the fd table.
    if unsafe { libc::fcntl(raw, libc::F_GETFD) } < 0 {
        return None;
    }
    // SAFETY: the fd is open (checked above) and by the calling convention
    // belongs to the monitor alone.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let _ = nix::fcntl::fcntl(
        &fd,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    );
    Some(std::fs::File::from(fd))
}

/// The ready pipe: one JSON line (a standby monitor writes a
/// `{"listening":true}` line before it), then closed.
pub struct ReadyPipe(Option<std::fs::File>);

impl ReadyPipe {
    /// Takes fd 3 when it is open (and marks it close-on-exec so that the
    /// runtime and the container never inherit it).
    pub fn take() -> ReadyPipe {
        ReadyPipe(take_fd(READY_FD))
    }

    /// A standby monitor's attach socket is bound: its caller may connect.
    pub fn listening(&mut self) {
        if let Some(f) = &mut self.0 {
            let _ = f.write_all(b"{\"listening\":true}\n");
        }
    }

    pub fn started(&mut self, pid: i32) {
        self.send(&serde_json::json!({ "pid": pid }));
    }

    pub fn failed(&mut self, message: &str, exit_code: i32) {
        self.send(&serde_json::json!({ "error": message, "exit_code": exit_code }));
    }

    fn send(&mut self, value: &serde_json::Value) {
        if let Some(mut f) = self.0.take() {
            let mut line = value.to_string();
            line.push('\n');
            let _ = f.write_all(line.as_bytes());
        }
    }
}

/// Double fork and setsid: the caller's child exits at once (so it can be
/// reaped quickly), the grandchild runs on in a session of its own with
/// stdio on /dev/null. Returns in the grandchild only.
pub fn daemonize() -> Result<(), MonitorError> {
    // SAFETY: the monitor is single-threaded here; the child only calls
    // async-signal-safe functions before continuing as the process.
    match unsafe { fork() }.map_err(MonitorError::sys("fork"))? {
        ForkResult::Parent { .. } => {
            // SAFETY: _exit skips atexit handlers and buffered stdio, which
            // belong to the continuing child.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Child => {}
    }
    setsid().map_err(MonitorError::sys("setsid"))?;
    // SAFETY: as above, still single-threaded.
    match unsafe { fork() }.map_err(MonitorError::sys("fork"))? {
        ForkResult::Parent { .. } => {
            // SAFETY: as above.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Child => {}
    }
    redirect_stdio(None)
}

/// Points stdin and stdout at /dev/null and stderr at `log` (appending)
/// or /dev/null.
pub fn redirect_stdio(log: Option<&Path>) -> Result<(), MonitorError> {
    let null = std::fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(MonitorError::io("open", "/dev/null"))?;
    let err: OwnedFd = match log {
        Some(p) => std::fs::File::options()
            .create(true)
            .append(true)
            .open(p)
            .map_err(MonitorError::io("open monitor log", p))?
            .into(),
        None => null
            .try_clone()
            .map_err(MonitorError::io("dup", "/dev/null"))?
            .into(),
    };
    let null: OwnedFd = null.into();
    for (src, target) in [(&null, 0), (&null, 1), (&err, 2)] {
        // SAFETY: dup2 onto the standard fds, which this process owns.
        if unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(src), target) } < 0 {
            return Err(MonitorError::Sys {
                what: "dup2 onto stdio",
                source: nix::Error::last(),
            });
        }
    }
    Ok(())
}
