//! Fixtures for berth-dns's tests: a private config directory whose server
//! is killed on drop, loopback listen addresses per test (all of 127/8 is
//! local, and the server binds with IP_FREEBIND anyway), DNS clients
//! (hickory-built UDP/TCP queries, busybox nslookup), and a fake upstream.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use berth_dns::config::{self, NetworkDns, Record as ConfigRecord};
use berth_testutil::TempDir;
use hickory_proto::op::{Edns, Message, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};

pub const BINARY: &str = env!("CARGO_BIN_EXE_berth-dns");

/// A loopback address for test number `test` (distinct per test), slot
/// `n` (0..5), varied by pid so two runs of the suite rarely meet.
pub fn ip(test: u8, n: u8) -> IpAddr {
    let base = (std::process::id() % 50) as u8 * 5 + 1;
    IpAddr::V4(Ipv4Addr::new(127, 88, test, base + n))
}

/// A config directory; the berth-dns serving it is killed on drop.
pub struct Dns {
    pub dir: TempDir,
}

impl Dns {
    pub fn new() -> Self {
        Dns {
            dir: TempDir::new("dns").expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, cfg: &NetworkDns) {
        config::write(self.path(), cfg).expect("write network file");
    }

    pub fn reload(&self) -> Result<(), berth_dns::DnsError> {
        berth_dns::control::reload_or_start(self.path(), Path::new(BINARY))
    }

    pub fn pid(&self) -> Option<i32> {
        let dir = std::fs::canonicalize(self.path()).ok()?;
        berth_dns::control::running_pid(&dir)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path().join(config::LOG_FILE)).unwrap_or_default()
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        for pid in servers_of(self.path()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            wait_until(Duration::from_secs(2), || !alive(pid));
        }
    }
}

/// The pids of every berth-dns process started for `dir` or a directory
/// below it.
pub fn servers_of(dir: &Path) -> Vec<i32> {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut pids = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let ours = args.first().is_some_and(|a| a.ends_with(b"berth-dns"))
            && args.windows(2).any(|w| {
                w[0] == b"--config-dir"
                    && Path::new(std::str::from_utf8(w[1]).unwrap_or("")).starts_with(&dir)
            });
        if ours && alive(pid) {
            pids.push(pid);
        }
    }
    pids
}

/// Whether a thread of `pid` still runs (a killed process's main thread
/// is a zombie before its other threads, which hold its sockets, are gone).
pub fn alive(pid: i32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|task| {
        std::fs::read_to_string(task.path().join("stat")).is_ok_and(|stat| {
            let state = stat.rsplit_once(") ").and_then(|(_, r)| r.chars().next());
            !matches!(state, Some('Z' | 'X') | None)
        })
    })
}

pub fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    done()
}

/// A network file: listen addresses, upstreams, records (ip, names).
pub fn network(
    name: &str,
    listen: &[IpAddr],
    upstreams: &[String],
    records: &[(&str, &[&str])],
) -> NetworkDns {
    NetworkDns {
        network: name.into(),
        listen: listen.to_vec(),
        upstreams: upstreams.to_vec(),
        search: vec![],
        records: records
            .iter()
            .map(|(ip, names)| ConfigRecord {
                ip: ip
                    .split(',')
                    .map(|s| s.parse().expect("record ip"))
                    .collect(),
                names: names.iter().map(|s| s.to_string()).collect(),
                container: None,
            })
            .collect(),
    }
}

pub fn request(name: &str, qtype: RecordType, edns: Option<u16>) -> Message {
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).expect("name"), qtype));
    if let Some(size) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        m.set_edns(e);
    }
    m
}

/// One UDP query to `server`:53 (from an address of the same test, so
/// the answer's source can be checked), the reply within 6 s.
pub fn query_udp(server: IpAddr, name: &str, qtype: RecordType) -> Message {
    query_udp_with(server, &request(name, qtype, None))
}

pub fn query_udp_with(server: IpAddr, m: &Message) -> Message {
    try_query_udp(server, m, Duration::from_secs(6)).expect("UDP answer")
}

pub fn try_query_udp(server: IpAddr, m: &Message, timeout: Duration) -> Option<Message> {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind client");
    socket.set_read_timeout(Some(timeout)).expect("timeout");
    let target = SocketAddr::new(server, 53);
    socket.send_to(&m.to_vec().expect("encode"), target).ok()?;
    let mut buf = vec![0u8; 65535];
    let (n, from) = socket.recv_from(&mut buf).ok()?;
    assert_eq!(from, target, "the answer comes from the address asked");
    let reply = Message::from_vec(&buf[..n]).expect("parse reply");
    assert_eq!(reply.metadata.id, m.metadata.id);
    Some(reply)
}

/// One or more queries over one TCP connection.
pub fn query_tcp(server: IpAddr, queries: &[Message]) -> Vec<Message> {
    let mut stream = TcpStream::connect((server, 53)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(6)))
        .unwrap();
    queries
        .iter()
        .map(|m| {
            let bytes = m.to_vec().unwrap();
            let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(&bytes);
            stream.write_all(&framed).unwrap();
            let mut len = [0u8; 2];
            stream.read_exact(&mut len).expect("TCP answer length");
            let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
            stream.read_exact(&mut buf).expect("TCP answer");
            let reply = Message::from_vec(&buf).unwrap();
            assert_eq!(reply.metadata.id, m.metadata.id);
            reply
        })
        .collect()
}

pub fn addresses(m: &Message) -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

/// `busybox nslookup NAME SERVER`: (exit success, output).
pub fn nslookup(name: &str, server: IpAddr) -> (bool, String) {
    let out = Command::new("busybox")
        .args(["nslookup", name, &server.to_string()])
        .output()
        .expect("run busybox nslookup (busybox-static)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A DNS server standing in for the host's resolver on `addr` (UDP and
/// TCP). It answers `A` with 192.0.2.7 for any name, except:
/// `nx.*` NXDOMAIN, `fail.*` SERVFAIL, `big.*` 100 A records (truncated
/// over UDP, complete over TCP).
pub struct FakeUpstream {
    pub addr: SocketAddr,
    pub udp_queries: Arc<AtomicUsize>,
    pub tcp_queries: Arc<AtomicUsize>,
    pub names: Arc<std::sync::Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

pub const FAKE_ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 7);

impl FakeUpstream {
    pub fn start(addr: SocketAddr) -> Self {
        let udp = UdpSocket::bind(addr).expect("bind fake upstream UDP");
        udp.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let tcp = TcpListener::bind(addr).expect("bind fake upstream TCP");
        tcp.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let udp_queries = Arc::new(AtomicUsize::new(0));
        let tcp_queries = Arc::new(AtomicUsize::new(0));
        let names = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut threads = Vec::new();
        {
            let (stop, count, names) = (stop.clone(), udp_queries.clone(), names.clone());
            threads.push(std::thread::spawn(move || {
                let mut buf = vec![0u8; 65535];
                while !stop.load(Ordering::SeqCst) {
                    let Ok((n, from)) = udp.recv_from(&mut buf) else {
                        continue;
                    };
                    count.fetch_add(1, Ordering::SeqCst);
                    if let Some(reply) = fake_answer(&buf[..n], false, &names) {
                        let _ = udp.send_to(&reply, from);
                    }
                }
            }));
        }
        {
            let (stop, count, names) = (stop.clone(), tcp_queries.clone(), names.clone());
            threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let Ok((mut s, _)) = tcp.accept() else {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    };
                    s.set_nonblocking(false).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                    let mut len = [0u8; 2];
                    if s.read_exact(&mut len).is_err() {
                        continue;
                    }
                    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
                    if s.read_exact(&mut buf).is_err() {
                        continue;
                    }
                    count.fetch_add(1, Ordering::SeqCst);
                    if let Some(reply) = fake_answer(&buf, true, &names) {
                        let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
                        framed.extend_from_slice(&reply);
                        let _ = s.write_all(&framed);
                    }
                }
            }));
        }
        FakeUpstream {
            addr,
            udp_queries,
            tcp_queries,
            names,
            stop,
            threads,
        }
    }

    /// The names asked so far, lowercase without the trailing dot.
    pub fn asked(&self) -> Vec<String> {
        self.names.lock().unwrap().clone()
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn fake_answer(packet: &[u8], tcp: bool, names: &std::sync::Mutex<Vec<String>>) -> Option<Vec<u8>> {
    let req = Message::from_vec(packet).ok()?;
    let q = req.queries.first()?.clone();
    let name = q
        .name()
        .to_ascii()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    names.lock().unwrap().push(name.clone());
    let mut reply = Message::response(req.metadata.id, OpCode::Query);
    reply.metadata.recursion_desired = req.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.add_query(q.clone());
    if name.starts_with("nx.") {
        reply.metadata.response_code = ResponseCode::NXDomain;
    } else if name.starts_with("fail.") {
        reply.metadata.response_code = ResponseCode::ServFail;
    } else if name.starts_with("big.") {
        if tcp {
            for i in 0..100u8 {
                reply.add_answer(Record::from_rdata(
                    q.name().clone(),
                    30,
                    RData::A(A(Ipv4Addr::new(198, 51, 100, i))),
                ));
            }
        } else {
            reply.metadata.truncation = true;
        }
    } else if q.query_type() == RecordType::A {
        reply.add_answer(Record::from_rdata(
            q.name().clone(),
            30,
            RData::A(A(FAKE_ANSWER)),
        ));
    }
    reply.to_vec().ok()
}
