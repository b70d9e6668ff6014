//! Waiting for container processes: our own child with signal forwarding
//! (`run`, `exec`), and any process by pidfd (`delete --force`).

use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::error::RuntimeError;

/// Signals `run`/`exec` pass on to the container process, like runc's
/// signal proxy.
const FORWARDED: [Signal; 8] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCONT,
];

/// runc's exit code for a wait status: the code, or 128 + signal.
pub fn exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}

/// Blocks the forwarded signals and SIGCHLD; call before the child can exit
/// so no SIGCHLD is lost.
pub fn block_signals() -> Result<SigSet, RuntimeError> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    for s in FORWARDED {
        set.add(s);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
        .map_err(|e| RuntimeError::sys("block signals", e))?;
    Ok(set)
}

/// Waits for our child `pid` to exit while forwarding signals to it (the
/// set from [`block_signals`] must be blocked). Returns its exit code.
pub fn wait_forwarding(pid: Pid, set: &SigSet) -> Result<i32, RuntimeError> {
    loop {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(status) => {
                if let Some(code) = exit_code(status) {
                    return Ok(code);
                }
            }
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(RuntimeError::sys(format!("wait for {pid}"), e)),
        }
        match set.wait() {
            Ok(Signal::SIGCHLD) => {}
            Ok(sig) => {
                let _ = nix::sys::signal::kill(pid, sig);
            }
            Err(nix::Error::EINTR) => {}
            Err(e) => return Err(RuntimeError::sys("sigwait", e)),
        }
    }
}

/// Waits until `pid` (not necessarily our child) is gone, up to `timeout`.
/// Returns whether it exited.
pub fn wait_gone(pid: i32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    // SAFETY: pidfd_open with a pid and no flags returns a new fd or -1.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if pidfd >= 0 {
        let fd = pidfd as libc::c_int;
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
        // SAFETY: poll on one valid pollfd.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        // SAFETY: closing the pidfd we opened.
        unsafe { libc::close(fd) };
        // Reap it when it happens to be our child (a `run` in progress).
        let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
        return rc > 0;
    }
    while Instant::now() < deadline {
        match crate::state::proc_stat(pid) {
            None => return true,
            Some((_, 'Z')) => return true,
            _ => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    false
}
