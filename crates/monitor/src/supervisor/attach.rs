//! The attach socket's server side: clients, their output queues, their
//! input (see [`crate::protocol`]).

use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::{
    accept4, bind, listen, recv, send, socket, AddressFamily, Backlog, MsgFlags, SockFlag, SockType,
};

use crate::error::MonitorError;
use crate::logs::LogStream;
use crate::protocol::{Frame, MAX_DATA, MAX_FRAME};

/// Output queued for one client beyond what its socket buffer holds; more
/// is dropped so that a slow client never holds up the container.
const CLIENT_QUEUE_LIMIT: usize = 1024 * 1024;

pub struct AttachServer {
    listener: OwnedFd,
    path: PathBuf,
    pub clients: Vec<Client>,
}

pub struct Client {
    pub fd: OwnedFd,
    queue: VecDeque<Vec<u8>>,
    queued: usize,
    /// The client said it feeds stdin (matters for `stdin_once`).
    pub feeds_stdin: bool,
    /// The client wants only the exit frame (`wait`).
    muted: bool,
    /// The client does the exit command's work (take-cleanup).
    takes_cleanup: bool,
    /// It was told the exit with exit-cleanup: nothing more is sent.
    told: bool,
}

/// What a client asked for, for the supervisor to act on.
pub enum ClientInput {
    Stdin(Vec<u8>),
    Resize {
        rows: u16,
        cols: u16,
    },
    /// The client's input ended or the client left while feeding stdin.
    StdinDone,
}

impl AttachServer {
    pub fn bind(path: &Path) -> Result<AttachServer, MonitorError> {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(MonitorError::io("remove stale attach socket", path)(e))
            }
            _ => {}
        }
        let listener = socket(
            AddressFamily::Unix,
            SockType::SeqPacket,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            None,
        )
        .map_err(MonitorError::sys("socket(AF_UNIX, SOCK_SEQPACKET)"))?;
        let (addr, _dir) =
            crate::sockaddr::unix_addr(path).map_err(MonitorError::sys("attach socket address"))?;
        bind(listener.as_raw_fd(), &addr).map_err(MonitorError::sys("bind attach socket"))?;
        // Attaching is as good as a shell in the container: owner only.
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .map_err(MonitorError::io("chmod attach socket", path))?;
        listen(&listener, Backlog::new(16).unwrap_or(Backlog::MAXCONN))
            .map_err(MonitorError::sys("listen on attach socket"))?;
        Ok(AttachServer {
            listener,
            path: path.to_path_buf(),
            clients: Vec::new(),
        })
    }

    pub fn listener(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }

    /// Takes every pending connection.
    pub fn accept(&mut self) {
        loop {
            match accept4(
                self.listener.as_raw_fd(),
                SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            ) {
                Ok(fd) => {
                    // SAFETY: accept4 returned a new fd owned by nobody else.
                    let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
                    self.clients.push(Client {
                        fd,
                        queue: VecDeque::new(),
                        queued: 0,
                        feeds_stdin: false,
                        muted: false,
                        takes_cleanup: false,
                        told: false,
                    });
                }
                Err(Errno::EINTR) | Err(Errno::ECONNABORTED) => continue,
                Err(_) => return,
            }
        }
    }

    /// Sends output to every client, dropping it for clients that are full.
    pub fn broadcast(&mut self, stream: LogStream, data: &[u8]) {
        if self.clients.is_empty() {
            return;
        }
        for chunk in data.chunks(MAX_DATA) {
            let frame = match stream {
                LogStream::Stdout => Frame::Stdout(chunk),
                LogStream::Stderr => Frame::Stderr(chunk),
            }
            .encode();
            for c in &mut self.clients {
                c.push(&frame);
            }
        }
    }

    /// Sends what the clients' sockets now accept.
    pub fn flush(&mut self, index: usize) {
        if let Some(c) = self.clients.get_mut(index) {
            c.flush_queue();
        }
    }

    /// Reads a readable client's frames; drops it when it hung up. Input is
    /// appended to `input`.
    pub fn read_client(&mut self, index: usize, input: &mut Vec<ClientInput>) {
        let mut buf = vec![0u8; MAX_FRAME];
        let Some(client) = self.clients.get_mut(index) else {
            return;
        };
        let mut gone = false;
        loop {
            match recv(client.fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
                Ok(0) => {
                    gone = true;
                    break;
                }
                Ok(n) => match Frame::decode(&buf[..n]) {
                    Some(Frame::AttachStdin) => client.feeds_stdin = true,
                    Some(Frame::NoOutput) => {
                        client.muted = true;
                        client.queue.clear();
                        client.queued = 0;
                    }
                    Some(Frame::TakeCleanup) => client.takes_cleanup = true,
                    Some(Frame::Stdin(d)) => input.push(ClientInput::Stdin(d.to_vec())),
                    Some(Frame::Resize { rows, cols }) => {
                        input.push(ClientInput::Resize { rows, cols })
                    }
                    Some(Frame::CloseStdin) if client.feeds_stdin => {
                        client.feeds_stdin = false;
                        input.push(ClientInput::StdinDone);
                    }
                    _ => {}
                },
                Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => continue,
                Err(_) => {
                    gone = true;
                    break;
                }
            }
        }
        if gone {
            let c = self.clients.remove(index);
            if c.feeds_stdin {
                input.push(ClientInput::StdinDone);
            }
        }
    }

    /// After the container stopped for good: tells the first connected
    /// client that asked for it (take-cleanup) the exit with exit-cleanup,
    /// after its queued output. Returns whether one took the cleanup; the
    /// caller then skips its exit command.
    pub fn hand_over_cleanup(&mut self, exit_code: i32) -> bool {
        self.accept();
        // Frames sent before the exit (take-cleanup comes right after the
        // connection) may not have been read yet.
        let mut ignored = Vec::new();
        for i in (0..self.clients.len()).rev() {
            self.read_client(i, &mut ignored);
        }
        let frame = Frame::ExitCleanup(exit_code).encode();
        for c in self.clients.iter_mut().filter(|c| c.takes_cleanup) {
            c.flush_before_last_frame();
            if send(c.fd.as_raw_fd(), &frame, MsgFlags::MSG_NOSIGNAL).is_ok() {
                c.told = true;
                return true;
            }
        }
        false
    }

    /// Ends every connection: queued output (briefly), then the exit frame
    /// (a client told with exit-cleanup only sees its connection close).
    pub fn finish(&mut self, exit_code: i32) {
        self.accept();
        let exit = Frame::Exit(exit_code).encode();
        for mut c in self.clients.drain(..) {
            if c.told {
                continue;
            }
            c.flush_before_last_frame();
            let _ = send(c.fd.as_raw_fd(), &exit, MsgFlags::MSG_NOSIGNAL);
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Client {
    /// Blocking (with a timeout) from here on, its queued output sent.
    fn flush_before_last_frame(&mut self) {
        crate::sockaddr::set_timeout(&self.fd, false, Duration::from_secs(2));
        set_blocking(&self.fd);
        self.flush_blocking();
    }

    pub fn wants_write(&self) -> bool {
        !self.queue.is_empty()
    }

    fn push(&mut self, frame: &[u8]) {
        if self.muted {
            return;
        }
        if self.queue.is_empty() {
            match send(
                self.fd.as_raw_fd(),
                frame,
                MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
            ) {
                Ok(_) => return,
                Err(Errno::EAGAIN) => {}
                // A broken client is noticed and removed by its hangup.
                Err(_) => return,
            }
        }
        if self.queued + frame.len() <= CLIENT_QUEUE_LIMIT {
            self.queued += frame.len();
            self.queue.push_back(frame.to_vec());
        }
    }

    fn flush_queue(&mut self) {
        while let Some(frame) = self.queue.front() {
            match send(
                self.fd.as_raw_fd(),
                frame,
                MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
            ) {
                Err(Errno::EAGAIN) => return,
                Err(Errno::EINTR) => continue,
                Err(_) => {
                    self.queue.clear();
                    self.queued = 0;
                    return;
                }
                Ok(_) => {
                    self.queued -= frame.len();
                    self.queue.pop_front();
                }
            }
        }
    }

    fn flush_blocking(&mut self) {
        for frame in self.queue.drain(..) {
            if send(self.fd.as_raw_fd(), &frame, MsgFlags::MSG_NOSIGNAL).is_err() {
                break;
            }
        }
        self.queued = 0;
    }
}

fn set_blocking(fd: &OwnedFd) {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    if let Ok(flags) = fcntl(fd, FcntlArg::F_GETFL) {
        let flags = OFlag::from_bits_retain(flags) - OFlag::O_NONBLOCK;
        let _ = fcntl(fd, FcntlArg::F_SETFL(flags));
    }
}
