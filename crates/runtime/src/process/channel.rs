//! The sync channel between the runtime (parent) and the processes it
//! starts (container init, exec'd process): one unix stream socket carrying
//! length-prefixed JSON messages, with file descriptors passed alongside
//! via SCM_RIGHTS.

use std::io::{IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use super::{ExecConfig, InitConfig};

/// Environment variable that tells a re-executed `berth-runtime init` which
/// fd is its end of the channel.
pub const SYNC_FD_ENV: &str = "_BERTH_SYNC_FD";

/// Messages from the runtime to the child.
#[derive(Debug, Serialize, Deserialize)]
pub enum ParentMsg {
    /// Everything the container's init needs; fds: [exec.fifo (O_PATH),
    /// console socket (when the process has a terminal)].
    Init(Box<InitConfig>),
    /// Everything an exec'd process needs; fds: [console socket (when -t)].
    Exec(Box<ExecConfig>),
    /// To a forked child (init or exec'd process), which has its
    /// configuration already: it may go on (and is in its cgroup, unless
    /// it was told it is placed later). For an
    /// init, `hook_state` is the OCI state (with its host pid) for the
    /// createContainer and startContainer hooks, and fds: [exec.fifo
    /// (O_PATH)]; for exec, both empty.
    Begin { hook_state: String },
    /// To a forked init told [`super::InitConfig::placed_later`]: it is in
    /// its cgroup now (see [`super::parent::create`]).
    Placed,
    /// The prestart and createRuntime hooks ran.
    HooksDone,
    /// The parent recorded the exec'd process: it may execve.
    Go,
}

/// Messages from the child to the runtime.
#[derive(Debug, Serialize, Deserialize)]
pub enum ChildMsg {
    /// The mounts are prepared (before pivot): run prestart/createRuntime.
    RunHooks,
    /// A seccomp notify fd for the listener socket; fds: [notify fd].
    SeccompNotify,
    /// The init finished setting up and waits on exec.fifo.
    Ready,
    /// The exec'd process's host pid, sent by its intermediate.
    ExecPid(i32),
    /// Setup failed; the text names the step and the cause.
    Error(String),
}

/// Errors on the channel: the peer died or sent garbage.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("sync channel closed by the other side")]
    Closed,
    #[error("sync channel i/o")]
    Io(#[source] std::io::Error),
    #[error("sync channel: bad message")]
    Decode(#[source] serde_json::Error),
}

pub struct Channel {
    sock: UnixStream,
    /// The peer was seen gone (EOF or EPIPE).
    peer_gone: bool,
}

impl Channel {
    /// A connected pair (both ends close-on-exec).
    pub fn pair() -> std::io::Result<(Channel, Channel)> {
        let (a, b) = UnixStream::pair()?;
        Ok((Channel::new(a), Channel::new(b)))
    }

    /// Takes over the channel fd named in [`SYNC_FD_ENV`].
    pub fn from_env() -> Option<Channel> {
        let fd: RawFd = std::env::var(SYNC_FD_ENV).ok()?.parse().ok()?;
        std::env::remove_var(SYNC_FD_ENV);
        // SAFETY: the parent put this fd in our environment; nothing else in
        // this freshly exec'd process owns it.
        let sock = unsafe { UnixStream::from_raw_fd(fd) };
        Some(Channel::new(sock))
    }

    fn new(sock: UnixStream) -> Channel {
        Channel {
            sock,
            peer_gone: false,
        }
    }

    /// Whether an earlier send or receive found the peer gone: then the
    /// peer (the runtime's parent) stopped on purpose and reports why itself.
    pub fn peer_gone(&self) -> bool {
        self.peer_gone
    }

    pub fn raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    pub fn send<T: Serialize>(&mut self, msg: &T, fds: &[RawFd]) -> Result<(), ChannelError> {
        let body = serde_json::to_vec(msg).map_err(ChannelError::Decode)?;
        let len = u32::try_from(body.len())
            .map_err(|_| ChannelError::Io(std::io::Error::other("message over 4 GiB")))?;
        let mut buf = Vec::with_capacity(body.len() + 4);
        buf.extend_from_slice(&len.to_le_bytes());
        buf.extend_from_slice(&body);
        let cmsgs: Vec<ControlMessage> = if fds.is_empty() {
            vec![]
        } else {
            vec![ControlMessage::ScmRights(fds)]
        };
        let sent = loop {
            match sendmsg::<()>(
                self.sock.as_raw_fd(),
                &[IoSlice::new(&buf)],
                &cmsgs,
                MsgFlags::MSG_NOSIGNAL,
                None,
            ) {
                Ok(n) => break n,
                Err(nix::Error::EINTR) => continue,
                Err(nix::Error::EPIPE) => {
                    self.peer_gone = true;
                    return Err(ChannelError::Closed);
                }
                Err(e) => return Err(ChannelError::Io(e.into())),
            }
        };
        self.sock.write_all(&buf[sent..]).map_err(ChannelError::Io)
    }

    /// Sends the single raw byte a child waits for before it re-executes
    /// (see [`super::spawn::Reexec`]).
    pub fn send_id_maps_written(&mut self) -> Result<(), ChannelError> {
        self.sock.write_all(&[1]).map_err(ChannelError::Io)
    }

    /// Receives one message and the fds that came with it.
    pub fn recv<T: DeserializeOwned>(&mut self) -> Result<(T, Vec<OwnedFd>), ChannelError> {
        let mut len = [0u8; 4];
        let mut cmsg_space = nix::cmsg_space!([RawFd; 4]);
        let mut fds = Vec::new();
        let got = loop {
            let mut iov = [IoSliceMut::new(&mut len)];
            match recvmsg::<()>(
                self.sock.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg_space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(msg) => {
                    for c in msg.cmsgs().map_err(|e| ChannelError::Io(e.into()))? {
                        if let ControlMessageOwned::ScmRights(raw) = c {
                            for fd in raw {
                                // SAFETY: the kernel just installed these fds
                                // for us; we are their only owner.
                                fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
                            }
                        }
                    }
                    break msg.bytes;
                }
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(ChannelError::Io(e.into())),
            }
        };
        if got == 0 {
            self.peer_gone = true;
            return Err(ChannelError::Closed);
        }
        if got < 4 {
            self.sock.read_exact(&mut len[got..]).map_err(read_err)?;
        }
        let mut body = vec![0u8; u32::from_le_bytes(len) as usize];
        self.sock.read_exact(&mut body).map_err(read_err)?;
        let msg = serde_json::from_slice(&body).map_err(ChannelError::Decode)?;
        Ok((msg, fds))
    }
}

fn read_err(e: std::io::Error) -> ChannelError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        ChannelError::Closed
    } else {
        ChannelError::Io(e)
    }
}
