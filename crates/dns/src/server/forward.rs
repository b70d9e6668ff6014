//! Forwarding the names berth-dns does not know to the upstream servers:
//! UDP first, TCP when the UDP answer is truncated, the next upstream when
//! one times out or fails, SERVFAIL when all do. The upstream's answer is
//! relayed as it came (only the id is the client's again).

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use hickory_proto::op::{Message, ResponseCode};

use super::answer::{encode_limited, response_to, ForwardRequest};
use super::log::Log;
use crate::config::DNS_PORT;

/// The time one upstream gets before the next is tried.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
/// The time a forwarded query may take in all: below the 5 s after which
/// glibc and musl resolvers give up on a server and retry.
const TOTAL_BUDGET: Duration = Duration::from_millis(4500);

/// Where forwarded queries go, and how.
pub struct Forwarder {
    host: Mutex<HostNameservers>,
    /// berth-dns's own listen addresses: never forwarded to (a loop).
    own: RwLock<Vec<IpAddr>>,
    log: &'static Log,
}

/// The host's nameservers from resolv.conf, re-read when the file changes
/// (DHCP, systemd-resolved and NetworkManager rewrite it at run time).
struct HostNameservers {
    path: PathBuf,
    stamp: Option<(SystemTime, u64)>,
    servers: Vec<SocketAddr>,
}

/// How one exchange with one upstream ended.
enum Exchange {
    Answer(Vec<u8>),
    /// A SERVFAIL/REFUSED/NOTIMP answer: the next upstream may do better,
    /// but it is relayed if none does.
    Failure(Vec<u8>),
    /// The answer did not fit (over UDP: retry over TCP; over TCP: a
    /// broken upstream).
    Truncated,
    Error(String),
}

impl Forwarder {
    pub fn new(log: &'static Log) -> Self {
        let path = std::env::var_os("BERTH_DNS_RESOLV_CONF")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/etc/resolv.conf"));
        Forwarder {
            host: Mutex::new(HostNameservers {
                path,
                stamp: None,
                servers: Vec::new(),
            }),
            own: RwLock::new(Vec::new()),
            log,
        }
    }

    pub fn set_own_addrs(&self, addrs: Vec<IpAddr>) {
        if let Ok(mut own) = self.own.write() {
            *own = addrs;
        }
    }

    /// The response to relay to the client for `request`.
    pub fn forward(&self, request: &ForwardRequest) -> Vec<u8> {
        let upstreams = self.upstreams(&request.upstreams);
        let deadline = Instant::now() + TOTAL_BUDGET;
        let mut fallback: Option<Vec<u8>> = None;
        if upstreams.is_empty() {
            self.log.problem(
                "no-upstreams",
                "no upstream nameserver (none configured, none in the host's resolv.conf): answering SERVFAIL",
            );
        }
        for upstream in &upstreams {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let timeout = UPSTREAM_TIMEOUT.min(deadline - now);
            let mut outcome =
                exchange_udp(*upstream, &request.query, request.client_limit, timeout);
            if let Exchange::Truncated = outcome {
                // Over TCP, then as many records as fit the client's size
                // (with TC set): clients without TCP (musl before 1.2.4)
                // still get addresses, the others retry over TCP.
                let timeout =
                    UPSTREAM_TIMEOUT.min(deadline.saturating_duration_since(Instant::now()));
                outcome = exchange_tcp(*upstream, &request.query, timeout);
            }
            match outcome {
                Exchange::Answer(bytes) => return self.relay(request, bytes),
                Exchange::Failure(bytes) => fallback = Some(bytes),
                Exchange::Truncated => {
                    self.log.problem(
                        &format!("truncated-{upstream}"),
                        &format!("upstream {upstream}: truncated answer over TCP"),
                    );
                }
                Exchange::Error(e) => {
                    self.log.problem(
                        &format!("upstream-{upstream}"),
                        &format!("upstream {upstream}: {e}"),
                    );
                }
            }
        }
        match fallback {
            Some(bytes) => self.relay(request, bytes),
            None => servfail(request),
        }
    }

    /// The client's id back on the upstream's answer; an answer larger than
    /// the client takes over UDP is cut to the records that fit, with TC.
    fn relay(&self, request: &ForwardRequest, mut bytes: Vec<u8>) -> Vec<u8> {
        bytes[..2].copy_from_slice(&request.message.metadata.id.to_be_bytes());
        if bytes.len() <= request.client_limit {
            return bytes;
        }
        fit(&bytes, request.client_limit).unwrap_or_else(|| {
            let mut reply = response_to(&request.message, ResponseCode::NoError);
            reply.metadata.truncation = true;
            encode_limited(&reply, request.client_limit).unwrap_or_else(|| servfail(request))
        })
    }

    /// The network's upstreams, or the host's; never berth-dns itself.
    fn upstreams(&self, configured: &[SocketAddr]) -> Vec<SocketAddr> {
        let mut list = if configured.is_empty() {
            match self.host.lock() {
                Ok(mut host) => host.current(self.log),
                Err(_) => Vec::new(),
            }
        } else {
            configured.to_vec()
        };
        if let Ok(own) = self.own.read() {
            list.retain(|u| !(u.port() == DNS_PORT && own.contains(&u.ip())));
        }
        list
    }
}

impl HostNameservers {
    fn current(&mut self, log: &Log) -> Vec<SocketAddr> {
        let stamp = std::fs::metadata(&self.path)
            .ok()
            .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()));
        if stamp != self.stamp || self.stamp.is_none() {
            self.servers = match std::fs::read_to_string(&self.path) {
                Ok(text) => parse_resolv_conf(&text),
                Err(e) => {
                    log.problem("resolv-conf", &format!("read {}: {e}", self.path.display()));
                    Vec::new()
                }
            };
            self.stamp = stamp;
        }
        self.servers.clone()
    }
}

/// The `nameserver` lines of a resolv.conf. A loopback nameserver
/// (systemd-resolved's 127.0.0.53) is fine: berth-dns runs in the host's
/// network namespace.
pub fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            if words.next() != Some("nameserver") {
                return None;
            }
            let addr = words.next()?;
            // Link-local IPv6 with a zone (fe80::1%eth0) has no portable
            // SocketAddr form here; such servers are skipped.
            addr.parse::<IpAddr>()
                .ok()
                .map(|ip| SocketAddr::new(ip, DNS_PORT))
        })
        .collect()
}

/// `answer` cut to `limit` bytes: the additional and authority sections
/// go first, then answers from the end; TC set.
fn fit(answer: &[u8], limit: usize) -> Option<Vec<u8>> {
    let mut message = Message::from_vec(answer).ok()?;
    message.metadata.truncation = true;
    message.additionals.clear();
    message.authorities.clear();
    message.signature = None;
    loop {
        let bytes = message.to_vec().ok()?;
        if bytes.len() <= limit {
            return Some(bytes);
        }
        message.answers.pop()?;
    }
}

fn servfail(request: &ForwardRequest) -> Vec<u8> {
    let reply = response_to(&request.message, ResponseCode::ServFail);
    encode_limited(&reply, request.client_limit).unwrap_or_else(|| {
        // A header alone always encodes; this is the raw form of it.
        let mut raw = vec![0u8; 12];
        raw[..2].copy_from_slice(&request.message.metadata.id.to_be_bytes());
        raw[2] = 0x81;
        raw[3] = 0x82;
        raw
    })
}

/// One query over UDP. The upstream sees the client's own EDNS size, so an
/// answer longer than `limit` (the client's size) breaks the protocol: it
/// is taken as truncated, and asked for again over TCP.
fn exchange_udp(upstream: SocketAddr, query: &[u8], limit: usize, timeout: Duration) -> Exchange {
    let local: SocketAddr = match upstream {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let result = (|| -> std::io::Result<Exchange> {
        // A fresh socket per query: a random source port (with the random
        // id, 32 bits an off-path attacker must guess), and no state to
        // share between forwarding threads.
        let socket = UdpSocket::bind(local)?;
        socket.connect(upstream)?;
        let (id, packet) = with_random_id(query);
        socket.send(&packet)?;
        let deadline = Instant::now() + timeout;
        // Sized by the client's limit, not 64 KiB: a burst of forwards
        // would otherwise leave megabytes of heap behind.
        let mut buf = vec![0u8; limit + 1];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(Exchange::Error(format!(
                    "no answer over UDP within {} ms",
                    timeout.as_millis()
                )));
            }
            socket.set_read_timeout(Some(left))?;
            let n = match socket.recv(&mut buf) {
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    continue
                }
                Err(e) => return Err(e),
            };
            // Anything else on the port (a late answer, a spoofing attempt)
            // is ignored; the wait goes on.
            if is_answer_to(&buf[..n], id, &packet) {
                if buf[2] & 0x02 != 0 || n > limit {
                    return Ok(Exchange::Truncated);
                }
                return Ok(classify(buf[..n].to_vec()));
            }
        }
    })();
    result.unwrap_or_else(|e| Exchange::Error(format!("UDP: {e}")))
}

fn exchange_tcp(upstream: SocketAddr, query: &[u8], timeout: Duration) -> Exchange {
    if timeout.is_zero() {
        return Exchange::Error("no time left for TCP".into());
    }
    let result = (|| -> std::io::Result<Exchange> {
        let deadline = Instant::now() + timeout;
        let mut stream = TcpStream::connect_timeout(&upstream, timeout)?;
        let (id, packet) = with_random_id(query);
        let len = u16::try_from(packet.len())
            .map_err(|_| std::io::Error::other("query longer than 65535 bytes"))?;
        let mut framed = len.to_be_bytes().to_vec();
        framed.extend_from_slice(&packet);
        stream.set_write_timeout(Some(timeout))?;
        stream.write_all(&framed)?;
        let mut read_exact = |buf: &mut [u8]| -> std::io::Result<()> {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no answer over TCP in time",
                ));
            }
            stream.set_read_timeout(Some(left))?;
            stream.read_exact(buf)
        };
        let mut len = [0u8; 2];
        read_exact(&mut len)?;
        let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
        read_exact(&mut answer)?;
        if !is_answer_to(&answer, id, &packet) {
            return Ok(Exchange::Error(
                "TCP answer does not match the query".into(),
            ));
        }
        if answer[2] & 0x02 != 0 {
            return Ok(Exchange::Truncated);
        }
        Ok(classify(answer))
    })();
    result.unwrap_or_else(|e| Exchange::Error(format!("TCP: {e}")))
}

fn classify(answer: Vec<u8>) -> Exchange {
    let rcode = answer[3] & 0x0f;
    if [
        ResponseCode::ServFail.low(),
        ResponseCode::NotImp.low(),
        ResponseCode::Refused.low(),
    ]
    .contains(&rcode)
    {
        Exchange::Failure(answer)
    } else {
        Exchange::Answer(answer)
    }
}

/// The query with a fresh random id (the client's id may be predictable).
fn with_random_id(query: &[u8]) -> (u16, Vec<u8>) {
    let id = random_u16();
    let mut packet = query.to_vec();
    packet[..2].copy_from_slice(&id.to_be_bytes());
    (id, packet)
}

fn random_u16() -> u16 {
    let mut buf = [0u8; 2];
    // SAFETY: getrandom writes at most buf.len() bytes into the valid,
    // exclusively borrowed buffer.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n != 2 {
        // getrandom(2) does not fail for 2 bytes once the pool is
        // initialised; the clock is a weak but working fallback.
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        return (nanos ^ (nanos >> 16)) as u16;
    }
    u16::from_be_bytes(buf)
}

/// Whether `answer` is a response to `query` (sent with `id`): same id,
/// QR set, and the same question (case-insensitive, as some servers echo
/// the name in another case).
fn is_answer_to(answer: &[u8], id: u16, query: &[u8]) -> bool {
    if answer.len() < 12 || answer[..2] != id.to_be_bytes() || answer[2] & 0x80 == 0 {
        return false;
    }
    let Some(end) = question_end(query) else {
        return false;
    };
    answer.len() >= end
        && answer[4..6] == query[4..6]
        && answer[12..end].eq_ignore_ascii_case(&query[12..end])
}

/// Where the question section of a one-question query ends.
fn question_end(query: &[u8]) -> Option<usize> {
    if query.len() < 12 || query[4..6] != [0, 1] {
        return None;
    }
    let mut at = 12;
    loop {
        let len = usize::from(*query.get(at)?);
        if len == 0 {
            at += 1;
            break;
        }
        if len & 0xc0 != 0 {
            // Compression in a question: clients do not send it.
            return None;
        }
        at += 1 + len;
    }
    let end = at + 4;
    (end <= query.len()).then_some(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_nameservers() {
        let text = "# generated\nsearch example.com\nnameserver 127.0.0.53\nnameserver  fd00::1\nnameserver fe80::1%eth0\noptions edns0\n";
        assert_eq!(
            parse_resolv_conf(text),
            vec![
                "127.0.0.53:53".parse().unwrap(),
                "[fd00::1]:53".parse().unwrap()
            ]
        );
    }

    #[test]
    fn big_answers_keep_the_records_that_fit() {
        use hickory_proto::op::Query;
        use hickory_proto::rr::{rdata::A, Name, RData, Record, RecordType};
        let name = Name::from_ascii("many.example.").unwrap();
        let mut m = Message::response(7, hickory_proto::op::OpCode::Query);
        m.add_query(Query::query(name.clone(), RecordType::A));
        for i in 0..60u8 {
            m.add_answer(Record::from_rdata(
                name.clone(),
                30,
                RData::A(A([10, 1, 0, i].into())),
            ));
        }
        let cut = fit(&m.to_vec().unwrap(), 512).unwrap();
        assert!(cut.len() <= 512);
        let cut = Message::from_vec(&cut).unwrap();
        assert!(cut.metadata.truncation);
        assert!(
            cut.answers.len() > 10 && cut.answers.len() < 60,
            "{}",
            cut.answers.len()
        );
        assert_eq!(cut.answers[0], m.answers[0]);
    }

    #[test]
    fn answers_must_match_id_and_question() {
        // id 0x1234, RD, one question "a." A IN
        let query = [
            0x12, 0x34, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 0, 0, 1, 0, 1,
        ];
        let mut answer = query.to_vec();
        answer[2] |= 0x80;
        assert!(is_answer_to(&answer, 0x1234, &query));
        answer[13] = b'A';
        assert!(is_answer_to(&answer, 0x1234, &query));
        assert!(!is_answer_to(&answer, 0x1235, &query));
        answer[13] = b'b';
        assert!(!is_answer_to(&answer, 0x1234, &query));
        assert!(!is_answer_to(&query, 0x1234, &query), "not a response");
    }
}
