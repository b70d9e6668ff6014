//! The container's stdio for one run: pipes, or a pty whose master the
//! runtime sends over a console socket.

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

use super::runtime::RunStdio;
use crate::error::MonitorError;
use crate::logs::LogStream;

/// The monitor's ends of one run's stdio.
pub struct ContainerIo {
    /// Output still open, with the stream it counts as.
    pub outputs: Vec<(LogStream, OwnedFd)>,
    /// Where attached clients' input goes (pipe write end or pty master).
    pub stdin: Option<OwnedFd>,
    /// The pty master, for resizes.
    pub pty: Option<RawFd>,
}

/// Prepared before the runtime runs; [`Prepared::finish`] after it succeeded.
pub struct Prepared {
    /// Taken by the runtime's spawn.
    pub runtime_stdio: Option<RunStdio>,
    /// Where the runtime's own messages can be read when it fails.
    pub error_output: OwnedFd,
    kind: Kind,
}

enum Kind {
    Pipes {
        stdout: OwnedFd,
        stdin: Option<OwnedFd>,
    },
    Tty {
        listener: UnixListener,
        /// The path the runtime connects to.
        socket: PathBuf,
        /// Keeps a `/proc/self/fd/<n>/…` path of a long socket path valid.
        _dir: Option<OwnedFd>,
    },
}

pub fn pipe() -> Result<(OwnedFd, OwnedFd), MonitorError> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(MonitorError::sys("pipe2"))
}

pub fn set_nonblocking(fd: &OwnedFd) -> Result<(), MonitorError> {
    let flags = fcntl(fd, FcntlArg::F_GETFL).map_err(MonitorError::sys("fcntl F_GETFL"))?;
    let flags = OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK;
    fcntl(fd, FcntlArg::F_SETFL(flags)).map_err(MonitorError::sys("fcntl F_SETFL"))?;
    Ok(())
}

fn dev_null() -> Result<OwnedFd, MonitorError> {
    std::fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map(OwnedFd::from)
        .map_err(MonitorError::io("open", "/dev/null"))
}

impl Prepared {
    /// Pipes: stdin (a pipe when `open_stdin`, else /dev/null), stdout and
    /// stderr; the runtime's own errors arrive on the stderr pipe.
    pub fn pipes(open_stdin: bool) -> Result<Prepared, MonitorError> {
        let (stdin_r, stdin_w) = if open_stdin {
            let (r, w) = pipe()?;
            set_nonblocking(&w)?;
            (r, Some(w))
        } else {
            (dev_null()?, None)
        };
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        set_nonblocking(&out_r)?;
        set_nonblocking(&err_r)?;
        Ok(Prepared {
            runtime_stdio: Some(RunStdio {
                stdin: stdin_r,
                stdout: out_w,
                stderr: err_w,
            }),
            error_output: err_r,
            kind: Kind::Pipes {
                stdout: out_r,
                stdin: stdin_w,
            },
        })
    }

    /// A console socket at `socket` for the runtime; its stdout and stderr
    /// go to a pipe of their own.
    pub fn tty(socket: &Path) -> Result<Prepared, MonitorError> {
        match std::fs::remove_file(socket) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(MonitorError::io("remove stale console socket", socket)(e))
            }
            _ => {}
        }
        // A long state dir path is bound (and handed to the runtime) through
        // this process's fd of the directory: /proc/<pid>/fd/<n>/console.sock.
        let (addr, dir) = crate::sockaddr::unix_addr(socket)
            .map_err(MonitorError::sys("console socket address"))?;
        let fd = nix::sys::socket::socket(
            nix::sys::socket::AddressFamily::Unix,
            nix::sys::socket::SockType::Stream,
            nix::sys::socket::SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(MonitorError::sys("socket(AF_UNIX) for the console"))?;
        nix::sys::socket::bind(fd.as_raw_fd(), &addr)
            .map_err(|e| MonitorError::io("bind console socket", socket)(e.into()))?;
        nix::sys::socket::listen(
            &fd,
            nix::sys::socket::Backlog::new(1).unwrap_or(nix::sys::socket::Backlog::MAXCONN),
        )
        .map_err(MonitorError::sys("listen on console socket"))?;
        let listener = UnixListener::from(fd);
        let runtime_path = match &dir {
            Some(d) => PathBuf::from(format!(
                "/proc/{}/fd/{}/{}",
                std::process::id(),
                d.as_raw_fd(),
                socket
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            )),
            None => socket.to_path_buf(),
        };
        listener
            .set_nonblocking(true)
            .map_err(MonitorError::io("set nonblocking", socket))?;
        let (err_r, err_w) = pipe()?;
        set_nonblocking(&err_r)?;
        let err_w2 = err_w
            .try_clone()
            .map_err(MonitorError::io("dup runtime output pipe", socket))?;
        Ok(Prepared {
            runtime_stdio: Some(RunStdio {
                stdin: dev_null()?,
                stdout: err_w,
                stderr: err_w2,
            }),
            error_output: err_r,
            kind: Kind::Tty {
                listener,
                socket: runtime_path,
                _dir: dir,
            },
        })
    }

    pub fn console_socket(&self) -> Option<&Path> {
        match &self.kind {
            Kind::Tty { socket, .. } => Some(socket),
            Kind::Pipes { .. } => None,
        }
    }

    /// After the runtime started the container: the monitor's ends.
    pub fn finish(self, open_stdin: bool) -> Result<ContainerIo, MonitorError> {
        match self.kind {
            Kind::Pipes { stdout, stdin } => Ok(ContainerIo {
                outputs: vec![
                    (LogStream::Stdout, stdout),
                    (LogStream::Stderr, self.error_output),
                ],
                stdin,
                pty: None,
            }),
            Kind::Tty {
                listener, socket, ..
            } => {
                let master = receive_master(&listener, &socket);
                let _ = std::fs::remove_file(&socket);
                let master = master?;
                set_nonblocking(&master)?;
                let stdin = if open_stdin {
                    Some(
                        master
                            .try_clone()
                            .map_err(MonitorError::io("dup pty master", &socket))?,
                    )
                } else {
                    None
                };
                let pty = Some(master.as_raw_fd());
                Ok(ContainerIo {
                    outputs: vec![(LogStream::Stdout, master)],
                    stdin,
                    pty,
                })
            }
        }
    }
}

/// Accepts the runtime's connection (already queued: the runtime exited)
/// and takes the pty master out of its SCM_RIGHTS message.
fn receive_master(listener: &UnixListener, socket: &Path) -> Result<OwnedFd, MonitorError> {
    let (conn, _) = listener.accept().map_err(MonitorError::io(
        "accept on console socket (runtime sent no pty)",
        socket,
    ))?;
    conn.set_nonblocking(false)
        .map_err(MonitorError::io("set blocking", socket))?;
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 4]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(MonitorError::sys("recvmsg on console socket"))?;
    let mut received: Vec<OwnedFd> = Vec::new();
    for cmsg in msg
        .cmsgs()
        .map_err(MonitorError::sys("parse console socket message"))?
    {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            for fd in fds {
                // SAFETY: SCM_RIGHTS installed these fds in this process
                // just now; nothing else owns them.
                received.push(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    let mut fds = received.into_iter();
    let master = fds.next().ok_or_else(|| MonitorError::Io {
        what: "console socket message without a pty fd",
        path: socket.to_path_buf(),
        source: std::io::Error::from(std::io::ErrorKind::InvalidData),
    })?;
    Ok(master)
}

/// Sets the pty's window size.
pub fn resize(pty: RawFd, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from the pointer, which lives
    // for the call; a stale fd only makes the ioctl fail.
    unsafe {
        libc::ioctl(pty, libc::TIOCSWINSZ, &ws);
    }
}
