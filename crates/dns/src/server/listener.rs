//! The sockets of one listen address (UDP and TCP, port 53) and the thread
//! that serves them. Local answers are sent from the listener thread;
//! forwarded queries and TCP connections get short-lived threads of their
//! own (bounded in number), so a slow upstream never delays local names.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    bind as bind_fd, listen, setsockopt, socket, sockopt, AddressFamily, Backlog, SockFlag,
    SockType, SockaddrStorage,
};

use super::answer::{self, Action, ForwardRequest};
use super::catalog::Catalog;
use super::forward::Forwarder;
use super::log::Log;

/// Forwarded queries in flight at once; beyond, SERVFAIL at once.
const MAX_FORWARDS: usize = 128;
/// TCP connections served at once; beyond, new ones are closed.
const MAX_TCP_CONNECTIONS: usize = 64;
/// An idle TCP connection is closed after this long (RFC 7766 §6.2.3).
const TCP_IDLE: Duration = Duration::from_secs(10);
/// Stacks of the short-lived threads: they parse and build DNS messages
/// only, and small stacks keep the process small.
const WORKER_STACK: usize = 256 * 1024;

/// What every thread of the server shares.
pub struct Shared {
    pub catalog: RwLock<Arc<Catalog>>,
    pub forwarder: Forwarder,
    pub log: &'static Log,
    forwards: AtomicUsize,
    connections: AtomicUsize,
}

impl Shared {
    pub fn new(log: &'static Log) -> Self {
        Shared {
            catalog: RwLock::new(Arc::new(Catalog::default())),
            forwarder: Forwarder::new(log),
            log,
            forwards: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
        }
    }

    fn catalog(&self) -> Arc<Catalog> {
        match self.catalog.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// The bound sockets of one address, before its thread runs (the daemon
/// binds before it forks, so bind errors reach the engine).
pub struct Bound {
    addr: IpAddr,
    udp: UdpSocket,
    tcp: TcpListener,
}

impl Bound {
    pub fn addr(&self) -> IpAddr {
        self.addr
    }
}

/// A listen address being served.
pub struct Listener {
    pub addr: IpAddr,
    /// Dropping it wakes the thread (end of file on its end of the pair).
    stop: UnixStream,
    thread: JoinHandle<()>,
}

/// Binds UDP and TCP on `addr`:`port`. IP_FREEBIND: the address need not be
/// on an interface yet (a bridge being set up again, IPv6 duplicate address
/// detection still running), so the order in which the engine configures
/// the bridge and reloads berth-dns does not matter.
pub fn bind(addr: IpAddr, port: u16) -> Result<Bound, String> {
    let sockaddr = SockaddrStorage::from(SocketAddr::new(addr, port));
    let udp = bound_socket(addr, SockType::Datagram, &sockaddr)
        .map_err(|e| format!("{addr}:{port}/udp: {e}"))?;
    let tcp = bound_socket(addr, SockType::Stream, &sockaddr)
        .and_then(|fd| {
            listen(&fd, Backlog::new(64).map_err(|e| e.to_string())?)
                .map_err(|e| format!("listen: {e}"))?;
            Ok(fd)
        })
        .map_err(|e| format!("{addr}:{port}/tcp: {e}"))?;
    Ok(Bound {
        addr,
        udp: UdpSocket::from(udp),
        tcp: TcpListener::from(tcp),
    })
}

fn bound_socket(
    addr: IpAddr,
    kind: SockType,
    sockaddr: &SockaddrStorage,
) -> Result<OwnedFd, String> {
    let family = match addr {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    let fd = socket(
        family,
        kind,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(|e| format!("socket: {e}"))?;
    if kind == SockType::Stream {
        // TIME_WAIT connections of a previous server must not block the
        // port. (Not for UDP: there SO_REUSEADDR would let two servers
        // share the address silently.)
        setsockopt(&fd, sockopt::ReuseAddr, &true).map_err(|e| format!("SO_REUSEADDR: {e}"))?;
    }
    match addr {
        IpAddr::V4(_) => {
            setsockopt(&fd, sockopt::IpFreebind, &true).map_err(|e| format!("IP_FREEBIND: {e}"))?
        }
        IpAddr::V6(_) => {
            setsockopt(&fd, sockopt::Ipv6V6Only, &true).map_err(|e| format!("IPV6_V6ONLY: {e}"))?;
            let one: libc::c_int = 1;
            // SAFETY: setsockopt reads an int option of the given size from
            // a valid pointer; fd is an open socket we own.
            let rc = unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_IPV6,
                    libc::IPV6_FREEBIND,
                    (&one as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if rc != 0 {
                return Err(format!(
                    "IPV6_FREEBIND: {}",
                    std::io::Error::last_os_error()
                ));
            }
        }
    }
    bind_fd(fd.as_raw_fd(), sockaddr).map_err(|e| format!("bind: {e}"))?;
    Ok(fd)
}

impl Listener {
    pub fn spawn(bound: Bound, shared: Arc<Shared>) -> std::io::Result<Listener> {
        let (stop, wake) = UnixStream::pair()?;
        let addr = bound.addr;
        let thread = std::thread::Builder::new()
            .name(format!("listen-{addr}"))
            .stack_size(WORKER_STACK)
            .spawn(move || serve(bound, wake, shared))?;
        Ok(Listener { addr, stop, thread })
    }

    /// Stops the thread and closes the sockets (joined: the address can be
    /// bound again right after).
    pub fn stop(self) {
        drop(self.stop);
        let _ = self.thread.join();
    }
}

fn serve(bound: Bound, wake: UnixStream, shared: Arc<Shared>) {
    let udp = Arc::new(bound.udp);
    let mut buf = vec![0u8; 65535];
    loop {
        let mut fds = [
            PollFd::new(udp.as_fd(), PollFlags::POLLIN),
            PollFd::new(bound.tcp.as_fd(), PollFlags::POLLIN),
            PollFd::new(wake.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                shared.log.problem(
                    &format!("poll-{}", bound.addr),
                    &format!("{}: poll: {e}", bound.addr),
                );
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        }
        let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
        let (udp_ready, tcp_ready, stop) = (ready(&fds[0]), ready(&fds[1]), ready(&fds[2]));
        if stop {
            return;
        }
        if udp_ready {
            drain_udp(&udp, bound.addr, &shared, &mut buf);
        }
        if tcp_ready {
            accept_all(&bound.tcp, bound.addr, &shared);
        }
    }
}

fn drain_udp(udp: &Arc<UdpSocket>, addr: IpAddr, shared: &Arc<Shared>, buf: &mut [u8]) {
    loop {
        let (n, client) = match udp.recv_from(buf) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // ICMP errors of earlier sends surface here (ECONNREFUSED),
            // once each: back to poll, which reports what is still queued.
            Err(_) => return,
        };
        let catalog = shared.catalog();
        let (action, note) = answer::handle(
            &catalog,
            addr,
            client.ip(),
            &buf[..n],
            false,
            shared.log.debug_enabled(),
        );
        if let Some(note) = note {
            shared.log.debug(&format!("udp {addr}: {note}"));
        }
        match action {
            Action::Reply(bytes) => {
                let _ = udp.send_to(&bytes, client);
            }
            Action::Forward(request) => forward_udp(request, udp, client, shared),
            Action::Drop => {}
        }
    }
}

fn forward_udp(
    request: ForwardRequest,
    udp: &Arc<UdpSocket>,
    client: SocketAddr,
    shared: &Arc<Shared>,
) {
    if shared.forwards.fetch_add(1, Ordering::SeqCst) >= MAX_FORWARDS {
        shared.forwards.fetch_sub(1, Ordering::SeqCst);
        shared.log.problem(
            "forward-limit",
            &format!("more than {MAX_FORWARDS} forwarded queries in flight: answering SERVFAIL"),
        );
        let reply =
            answer::response_to(&request.message, hickory_proto::op::ResponseCode::ServFail);
        if let Some(bytes) = answer::encode_limited(&reply, request.client_limit) {
            let _ = udp.send_to(&bytes, client);
        }
        return;
    }
    let (udp, worker_shared) = (udp.clone(), shared.clone());
    let spawned = std::thread::Builder::new()
        .name("forward".into())
        .stack_size(WORKER_STACK)
        .spawn(move || {
            let bytes = worker_shared.forwarder.forward(&request);
            let _ = udp.send_to(&bytes, client);
            worker_shared.forwards.fetch_sub(1, Ordering::SeqCst);
        });
    if let Err(e) = spawned {
        shared.forwards.fetch_sub(1, Ordering::SeqCst);
        shared.log.problem(
            "spawn-forward",
            &format!("cannot start a forwarding thread: {e}"),
        );
    }
}

fn accept_all(tcp: &TcpListener, addr: IpAddr, shared: &Arc<Shared>) {
    loop {
        let stream = match tcp.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // EMFILE and the like: logged, and the listener goes on.
                shared
                    .log
                    .problem(&format!("accept-{addr}"), &format!("{addr}: accept: {e}"));
                return;
            }
        };
        if shared.connections.fetch_add(1, Ordering::SeqCst) >= MAX_TCP_CONNECTIONS {
            shared.connections.fetch_sub(1, Ordering::SeqCst);
            shared.log.problem(
                "tcp-limit",
                &format!("more than {MAX_TCP_CONNECTIONS} TCP connections: closing new ones"),
            );
            continue;
        }
        let worker_shared = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("tcp".into())
            .stack_size(WORKER_STACK)
            .spawn(move || {
                serve_tcp(stream, addr, &worker_shared);
                worker_shared.connections.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            shared.connections.fetch_sub(1, Ordering::SeqCst);
            shared
                .log
                .problem("spawn-tcp", &format!("cannot start a TCP thread: {e}"));
        }
    }
}

/// One TCP connection: length-prefixed requests answered in order until
/// the client closes or stays idle too long.
fn serve_tcp(mut stream: TcpStream, addr: IpAddr, shared: &Shared) {
    let Ok(peer) = stream.peer_addr() else {
        return;
    };
    if stream.set_nonblocking(false).is_err()
        || stream.set_read_timeout(Some(TCP_IDLE)).is_err()
        || stream.set_write_timeout(Some(TCP_IDLE)).is_err()
    {
        return;
    }
    loop {
        let mut len = [0u8; 2];
        if stream.read_exact(&mut len).is_err() {
            return;
        }
        let mut request = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if stream.read_exact(&mut request).is_err() {
            return;
        }
        let catalog = shared.catalog();
        let (action, note) = answer::handle(
            &catalog,
            addr,
            peer.ip(),
            &request,
            true,
            shared.log.debug_enabled(),
        );
        drop(catalog);
        if let Some(note) = note {
            shared.log.debug(&format!("tcp {addr}: {note}"));
        }
        let reply = match action {
            Action::Reply(bytes) => bytes,
            Action::Forward(request) => shared.forwarder.forward(&request),
            Action::Drop => return,
        };
        let Ok(n) = u16::try_from(reply.len()) else {
            return;
        };
        let mut framed = n.to_be_bytes().to_vec();
        framed.extend_from_slice(&reply);
        if stream.write_all(&framed).is_err() {
            return;
        }
    }
}
