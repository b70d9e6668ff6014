//! One DNS request in, one decision out: an answer from the catalog, an
//! error response, or "forward this to the upstreams".

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};

use hickory_proto::op::{Edns, Message, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use super::catalog::Catalog;

/// TTL of local answers. Docker's embedded DNS says 600 s; berth says 60 s:
/// a container's address changes whenever it is re-created (`rm` + `run`
/// of the same name, compose up), and a resolver that caches (nginx, the
/// JVM, systemd-resolved or dnsmasq inside a container) would otherwise
/// keep the dead address for ten minutes. The lookups are local and cheap,
/// so a short TTL costs nothing noticeable.
pub const LOCAL_TTL: u32 = 60;

/// The UDP payload size berth-dns advertises in EDNS (the DNS flag day 2020
/// value, which avoids IP fragmentation).
pub const EDNS_PAYLOAD: u16 = 1232;

/// The largest UDP response without EDNS.
pub const CLASSIC_UDP_SIZE: usize = 512;

/// What to do with a request.
#[derive(Debug)]
pub enum Action {
    Reply(Vec<u8>),
    Forward(ForwardRequest),
    /// Not a request (a response, or too short to reply to): ignore it.
    Drop,
}

/// A request the catalog cannot answer.
#[derive(Debug, Clone)]
pub struct ForwardRequest {
    pub query: Vec<u8>,
    /// The parsed request, to build SERVFAIL or truncated replies.
    pub message: Message,
    /// Upstreams of the network asked; empty: the host's.
    pub upstreams: Vec<SocketAddr>,
    /// The largest response the client accepts on its transport.
    pub client_limit: usize,
}

/// Rotates the order of multi-address answers between queries (Docker
/// shuffles them), so that clients taking the first address spread over the
/// containers sharing an alias.
static ROTATION: AtomicUsize = AtomicUsize::new(0);

/// Decides what to do with `packet`, received on `listen` from `source`
/// over UDP (`tcp` false) or TCP. With `debug`, also says what it did, for
/// the log.
pub fn handle(
    catalog: &Catalog,
    listen: IpAddr,
    source: IpAddr,
    packet: &[u8],
    tcp: bool,
    debug: bool,
) -> (Action, Option<String>) {
    let request = match Message::from_vec(packet) {
        Ok(m) => m,
        Err(_) => return (format_error(packet), Some("unparsable request".into())),
    };
    if request.metadata.message_type != MessageType::Query {
        return (Action::Drop, None);
    }
    let client_limit = if tcp {
        usize::from(u16::MAX)
    } else {
        usize::from(request.max_payload()).max(CLASSIC_UDP_SIZE)
    };
    if request.metadata.op_code != OpCode::Query {
        let reply = response_to(&request, ResponseCode::NotImp);
        return (
            reply_action(reply, client_limit),
            Some("not a query".into()),
        );
    }
    if request.queries.len() != 1 {
        let reply = response_to(&request, ResponseCode::FormErr);
        return (
            reply_action(reply, client_limit),
            Some("not one question".into()),
        );
    }
    let Some(network) = catalog.network_at(listen) else {
        // The listener outlived its network by a moment (reload).
        let reply = response_to(&request, ResponseCode::Refused);
        return (reply_action(reply, client_limit), Some("no network".into()));
    };
    let question = &request.queries[0];
    let qname = question.name().clone();
    let qtype = question.query_type();
    let describe =
        |what: &str| debug.then(|| format!("{} {qtype} from {source}: {what}", qname.to_ascii()));

    if question.query_class() == DNSClass::IN {
        if let Some(answers) = local_answers(catalog, listen, source, &qname, qtype) {
            let note = describe(&format!("local, {} answers", answers.len()));
            let mut reply = response_to(&request, ResponseCode::NoError);
            reply.metadata.authoritative = true;
            reply.answers = answers;
            return (reply_action(reply, client_limit), note);
        }
    }
    let note = describe("forwarded");
    (
        Action::Forward(ForwardRequest {
            query: packet.to_vec(),
            upstreams: network.upstreams.clone(),
            message: request,
            client_limit,
        }),
        note,
    )
}

/// The records answering `qname`/`qtype` from the catalog, or `None` when
/// the name is not a local one (and must be forwarded). A local name asked
/// for a type it does not have gets an empty answer (NODATA), not a
/// forward: the upstream cannot know better.
fn local_answers(
    catalog: &Catalog,
    listen: IpAddr,
    source: IpAddr,
    qname: &Name,
    qtype: RecordType,
) -> Option<Vec<Record>> {
    let ascii = qname.to_ascii();
    if qtype == RecordType::PTR || (qtype == RecordType::ANY && is_arpa(&ascii)) {
        let ip = arpa_address(qname)?;
        let target = catalog.reverse(listen, source, ip)?;
        let target = Name::from_ascii(format!("{target}.")).ok()?;
        return Some(vec![Record::from_rdata(
            qname.clone(),
            LOCAL_TTL,
            RData::PTR(PTR(target)),
        )]);
    }
    let found = catalog.lookup(listen, source, &ascii)?;
    let mut records: Vec<Record> = found
        .addrs
        .iter()
        .filter_map(|ip| match (ip, qtype) {
            (IpAddr::V4(v4), RecordType::A | RecordType::ANY) => Some(RData::A(A(*v4))),
            (IpAddr::V6(v6), RecordType::AAAA | RecordType::ANY) => Some(RData::AAAA(AAAA(*v6))),
            _ => None,
        })
        .map(|rdata| Record::from_rdata(qname.clone(), LOCAL_TTL, rdata))
        .collect();
    if records.len() > 1 {
        let shift = ROTATION.fetch_add(1, Ordering::Relaxed) % records.len();
        records.rotate_left(shift);
    }
    Some(records)
}

fn is_arpa(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.ends_with(".in-addr.arpa.") || name.ends_with(".ip6.arpa.")
}

/// The address a full reverse name stands for (`2.0.20.172.in-addr.arpa.`).
fn arpa_address(name: &Name) -> Option<IpAddr> {
    let net = name.parse_arpa_name().ok()?;
    let full = match net.addr() {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    };
    (net.prefix_len() == full).then(|| net.addr())
}

/// A response header and question for `request`.
pub fn response_to(request: &Message, code: ResponseCode) -> Message {
    let mut reply = Message::response(request.metadata.id, request.metadata.op_code);
    reply.metadata = Metadata::response_from_request(&request.metadata);
    reply.metadata.recursion_available = true;
    reply.metadata.response_code = code;
    reply.queries = request.queries.clone();
    if request.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD);
        reply.edns = Some(edns);
    }
    reply
}

/// Encodes `reply`; a reply larger than the client accepts goes out with
/// only its question and the TC bit, so the client retries over TCP.
pub fn encode_limited(reply: &Message, limit: usize) -> Option<Vec<u8>> {
    let bytes = reply.to_vec().ok()?;
    if bytes.len() <= limit {
        return Some(bytes);
    }
    reply.truncate().to_vec().ok()
}

fn reply_action(reply: Message, limit: usize) -> Action {
    encode_limited(&reply, limit).map_or(Action::Drop, Action::Reply)
}

/// FORMERR for a request hickory cannot parse, built from its raw header
/// (id, opcode and RD kept, counts zero), when it looks like a request.
fn format_error(packet: &[u8]) -> Action {
    if packet.len() < 12 || packet[2] & 0x80 != 0 {
        return Action::Drop;
    }
    let mut reply = [0u8; 12];
    reply[..2].copy_from_slice(&packet[..2]);
    reply[2] = 0x80 | (packet[2] & 0x79); // QR, opcode, RD
    reply[3] = 0x80 | ResponseCode::FormErr.low(); // RA, FORMERR
    Action::Reply(reply.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{NetworkDns, Record as ConfigRecord};
    use hickory_proto::op::Query;

    fn catalog() -> Catalog {
        Catalog::new(&[NetworkDns {
            network: "n1".into(),
            listen: vec!["10.5.0.1".parse().unwrap()],
            upstreams: vec!["127.0.0.9:5353".into()],
            search: vec![],
            records: vec![ConfigRecord {
                ip: vec!["10.5.0.2".parse().unwrap(), "fd05::2".parse().unwrap()],
                names: vec!["web".into(), "alias".into()],
                container: None,
            }],
        }])
        .0
    }

    fn query(name: &str, qtype: RecordType) -> Vec<u8> {
        let mut m = Message::query();
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
        m.to_vec().unwrap()
    }

    fn ask(packet: &[u8]) -> Action {
        handle(
            &catalog(),
            "10.5.0.1".parse().unwrap(),
            "10.5.0.3".parse().unwrap(),
            packet,
            false,
            false,
        )
        .0
    }

    fn reply(packet: &[u8]) -> Message {
        match ask(packet) {
            Action::Reply(bytes) => Message::from_vec(&bytes).unwrap(),
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    #[test]
    fn a_aaaa_any_and_nodata() {
        let r = reply(&query("Web.", RecordType::A));
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert!(r.metadata.authoritative && r.metadata.recursion_available);
        assert_eq!(r.answers.len(), 1);
        assert_eq!(r.answers[0].ttl, LOCAL_TTL);
        assert_eq!(r.answers[0].data, RData::A(A("10.5.0.2".parse().unwrap())));
        let r = reply(&query("alias", RecordType::AAAA));
        assert_eq!(
            r.answers[0].data,
            RData::AAAA(AAAA("fd05::2".parse().unwrap()))
        );
        assert_eq!(reply(&query("web", RecordType::ANY)).answers.len(), 2);
        let r = reply(&query("web", RecordType::MX));
        assert_eq!(r.metadata.response_code, ResponseCode::NoError);
        assert!(r.answers.is_empty());
    }

    #[test]
    fn ptr_for_local_addresses_and_forward_for_others() {
        let r = reply(&query("2.0.5.10.in-addr.arpa.", RecordType::PTR));
        assert_eq!(
            r.answers[0].data,
            RData::PTR(PTR(Name::from_ascii("web.n1.").unwrap()))
        );
        assert!(matches!(
            ask(&query("9.0.5.10.in-addr.arpa.", RecordType::PTR)),
            Action::Forward(_)
        ));
    }

    #[test]
    fn unknown_names_are_forwarded_to_the_networks_upstreams() {
        match ask(&query("example.com.", RecordType::A)) {
            Action::Forward(f) => {
                assert_eq!(f.upstreams, vec!["127.0.0.9:5353".parse().unwrap()]);
                assert_eq!(f.client_limit, CLASSIC_UDP_SIZE);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn malformed_and_non_query_requests() {
        let Action::Reply(bytes) = ask(&[0x12, 0x34, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xff]) else {
            panic!("expected FORMERR");
        };
        assert_eq!(&bytes[..2], &[0x12, 0x34]);
        assert_eq!(bytes[3] & 0x0f, 1);
        assert!(matches!(ask(&[1, 2, 3]), Action::Drop));
        let mut notify = Message::query();
        notify.metadata.op_code = OpCode::Notify;
        notify.add_query(Query::query(
            Name::from_ascii("web.").unwrap(),
            RecordType::SOA,
        ));
        let r = reply(&notify.to_vec().unwrap());
        assert_eq!(r.metadata.response_code, ResponseCode::NotImp);
    }

    #[test]
    fn oversized_replies_are_truncated_for_udp() {
        let mut big = response_to(
            &Message::from_vec(&query("web.", RecordType::A)).unwrap(),
            ResponseCode::NoError,
        );
        for i in 0..100u8 {
            big.answers.push(Record::from_rdata(
                Name::from_ascii("web.").unwrap(),
                LOCAL_TTL,
                RData::A(A([10, 0, 0, i].into())),
            ));
        }
        let bytes = encode_limited(&big, CLASSIC_UDP_SIZE).unwrap();
        let m = Message::from_vec(&bytes).unwrap();
        assert!(m.metadata.truncation && m.answers.is_empty());
        assert!(bytes.len() <= CLASSIC_UDP_SIZE);
    }

    #[test]
    fn random_and_mutated_packets_never_panic() {
        let catalog = catalog();
        let valid = query("web.", RecordType::A);
        // xorshift: deterministic, no dependency
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..20_000 {
            let packet: Vec<u8> = if round % 2 == 0 {
                let len = (next() % 80) as usize;
                (0..len).map(|_| next() as u8).collect()
            } else {
                let mut p = valid.clone();
                for _ in 0..=(next() % 4) {
                    let at = (next() as usize) % p.len();
                    p[at] = next() as u8;
                }
                p.truncate(p.len() - (next() % 3) as usize);
                p
            };
            for tcp in [false, true] {
                let _ = handle(
                    &catalog,
                    "10.5.0.1".parse().unwrap(),
                    "10.5.0.3".parse().unwrap(),
                    &packet,
                    tcp,
                    true,
                );
            }
        }
    }
}
