//! Foreground `run` of a container with `process.terminal` and no
//! `--console-socket`: like runc, the runtime relays between its own stdio
//! and the container's pty, putting a terminal stdin into raw mode and
//! passing on window-size changes and signals.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{self, SetArg, Termios};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::wait::exit_code;
use crate::error::RuntimeError;

/// Restores the terminal's mode when the relay ends, however it ends.
struct RawMode {
    saved: Option<Termios>,
}

impl RawMode {
    fn enter(stdin: BorrowedFd<'_>) -> RawMode {
        let Ok(saved) = termios::tcgetattr(stdin) else {
            return RawMode { saved: None };
        };
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(stdin, SetArg::TCSANOW, &raw);
        RawMode { saved: Some(saved) }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, saved);
        }
    }
}

fn copy_winsize(from: BorrowedFd<'_>, to: BorrowedFd<'_>) {
    // SAFETY: winsize is plain data; the ioctls read/write the valid struct.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(from.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(to.as_raw_fd(), libc::TIOCSWINSZ, &ws);
        }
    }
}

fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(0) => return,
            Ok(n) => data = &data[n..],
            Err(nix::Error::EINTR | nix::Error::EAGAIN) => continue,
            Err(_) => return,
        }
    }
}

/// Relays stdio to and from `master` until the init `pid` exits; returns
/// its exit code. The signals in `set` must be blocked.
pub fn relay_and_wait(pid: Pid, master: OwnedFd, set: &SigSet) -> Result<i32, RuntimeError> {
    let sigfd = SignalFd::with_flags(set, SfdFlags::SFD_CLOEXEC)
        .map_err(|e| RuntimeError::sys("signalfd", e))?;
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let stdin_tty = nix::unistd::isatty(stdin.as_fd()).unwrap_or(false);
    let _raw = if stdin_tty {
        Some(RawMode::enter(stdin.as_fd()))
    } else {
        None
    };
    if stdin_tty {
        copy_winsize(stdin.as_fd(), master.as_fd());
    }
    let mut stdin_open = true;
    let mut master_open = true;
    let mut buf = [0u8; 8192];
    let mut status: Option<i32> = None;
    loop {
        if let Some(code) = status {
            if !master_open {
                return Ok(code);
            }
        }
        let mut fds = [
            libc::pollfd {
                fd: sigfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: if master_open { master.as_raw_fd() } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: if stdin_open { stdin.as_raw_fd() } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // Once the init is gone only what is left in the pty is drained.
        let timeout = if status.is_some() { 100 } else { -1 };
        // SAFETY: poll on three valid pollfd structs.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 3, timeout) };
        if n < 0 {
            if nix::Error::last() == nix::Error::EINTR {
                continue;
            }
            return Err(RuntimeError::sys("poll", nix::Error::last()));
        }
        if n == 0 {
            master_open = false;
            continue;
        }
        if fds[0].revents & libc::POLLIN != 0 {
            if let Ok(Some(info)) = sigfd.read_signal() {
                match Signal::try_from(info.ssi_signo as i32) {
                    Ok(Signal::SIGCHLD) => {
                        if let Ok(ws) = waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                            if !matches!(ws, WaitStatus::StillAlive) {
                                status = exit_code(ws);
                            }
                        }
                    }
                    Ok(Signal::SIGWINCH) => copy_winsize(stdin.as_fd(), master.as_fd()),
                    Ok(sig) => {
                        let _ = nix::sys::signal::kill(pid, sig);
                    }
                    Err(_) => {}
                }
            }
        }
        if fds[1].revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
            match nix::unistd::read(&master, &mut buf) {
                Ok(0) | Err(nix::Error::EIO) => master_open = false,
                Ok(n) => write_all(stdout.as_fd(), &buf[..n]),
                Err(nix::Error::EINTR | nix::Error::EAGAIN) => {}
                Err(_) => master_open = false,
            }
        }
        if stdin_open && fds[2].revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
            match nix::unistd::read(stdin.as_fd(), &mut buf) {
                Ok(0) | Err(_) => {
                    stdin_open = false;
                    // End of input: the pty's EOF character, so a shell
                    // reading commands from a pipe ends too.
                    if !stdin_tty {
                        write_all(master.as_fd(), &[0x04]);
                    }
                }
                Ok(n) => write_all(master.as_fd(), &buf[..n]),
            }
        }
    }
}
