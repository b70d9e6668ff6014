//! berth-dns answering real clients: names, aliases, PTR, isolation between
//! networks, forwarding (with a fake upstream), TCP.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, RecordType};

fn v4(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn names_and_aliases_resolve_case_insensitively() {
    let dns = Dns::new();
    let listen = ip(1, 0);
    dns.write(&network(
        "front",
        &[listen],
        &[],
        &[
            ("172.31.7.2,fd31:7::2", &["web", "3f2a9c1b7d4e", "Alias1"]),
            ("172.31.7.3", &["db"]),
        ],
    ));
    dns.reload().unwrap();

    for name in [
        "web",
        "WEB",
        "web.",
        "Web.Front",
        "alias1",
        "ALIAS1.",
        "3f2a9c1b7d4e",
    ] {
        let reply = query_udp(listen, name, RecordType::A);
        assert_eq!(
            reply.metadata.response_code,
            ResponseCode::NoError,
            "{name}"
        );
        assert!(reply.metadata.authoritative, "{name}");
        assert_eq!(addresses(&reply), vec![v4("172.31.7.2")], "{name}");
        assert_eq!(reply.answers[0].ttl, 60);
    }
    let reply = query_udp(listen, "web", RecordType::AAAA);
    assert_eq!(addresses(&reply), vec![v4("fd31:7::2")]);
    // a local name without an address of the type: empty answer, not forwarded
    let reply = query_udp(listen, "db", RecordType::AAAA);
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(reply.answers.is_empty());

    // a real client
    let (ok, out) = nslookup("web", listen);
    assert!(ok, "{out}");
    assert!(
        out.contains("172.31.7.2") && out.contains("fd31:7::2"),
        "{out}"
    );
    let (ok, out) = nslookup("ALIAS1", listen);
    assert!(ok && out.contains("172.31.7.2"), "{out}");
}

#[test]
fn reverse_lookups_name_the_container() {
    let dns = Dns::new();
    let listen = ip(2, 0);
    dns.write(&network(
        "revnet",
        &[listen],
        &[],
        &[("172.31.8.2", &["web", "alias"])],
    ));
    dns.reload().unwrap();
    let reply = query_udp(listen, "2.8.31.172.in-addr.arpa.", RecordType::PTR);
    assert_eq!(reply.answers.len(), 1);
    assert_eq!(
        reply.answers[0].data,
        RData::PTR(hickory_proto::rr::rdata::PTR(
            Name::from_ascii("web.revnet.").unwrap()
        ))
    );
    let (ok, out) = nslookup("172.31.8.2", listen);
    assert!(ok && out.contains("web.revnet"), "{out}");
}

#[test]
fn names_of_another_network_are_not_answered_there() {
    let dns = Dns::new();
    let (front, back) = (ip(3, 0), ip(3, 1));
    let upstream = FakeUpstream::start(SocketAddr::new(ip(3, 2), 5353));
    let up = vec![upstream.addr.to_string()];
    dns.write(&network(
        "front",
        &[front],
        &up,
        &[("172.31.9.2", &["web"])],
    ));
    dns.write(&network("back", &[back], &up, &[("172.31.10.2", &["db"])]));
    dns.reload().unwrap();

    assert_eq!(
        addresses(&query_udp(back, "db", RecordType::A)),
        vec![v4("172.31.10.2")]
    );
    // on front's address, "db" is not a local name: the upstream's answer
    let reply = query_udp(front, "db", RecordType::A);
    assert!(!reply.metadata.authoritative);
    assert_eq!(addresses(&reply), vec![IpAddr::V4(FAKE_ANSWER)]);
    assert_eq!(upstream.asked(), vec!["db".to_string()]);
    let reply = query_udp(front, "nx.db", RecordType::A);
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    // nor its reverse name
    let reply = query_udp(front, "2.10.31.172.in-addr.arpa.", RecordType::PTR);
    assert!(reply.answers.is_empty());
}

#[test]
fn a_container_on_two_networks_sees_both() {
    let dns = Dns::new();
    let (front, back) = (ip(4, 0), ip(4, 1));
    let mut f = network("front", &[front], &[], &[("172.31.11.2", &["web"])]);
    let mut b = network("back", &[back], &[], &[("172.31.12.2", &["db"])]);
    // "mid" is on both networks; the client address is its front address
    let client = ip(4, 3);
    for (net, addr) in [(&mut f, client), (&mut b, v4("172.31.12.3"))] {
        net.records.push(berth_dns::config::Record {
            ip: vec![addr],
            names: vec!["mid".into()],
            container: Some("c0ffee".into()),
        });
    }
    dns.write(&f);
    dns.write(&b);
    dns.reload().unwrap();
    let socket = std::net::UdpSocket::bind((client, 0)).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let req = request("db", RecordType::A, None);
    socket.send_to(&req.to_vec().unwrap(), (front, 53)).unwrap();
    let mut buf = [0u8; 512];
    let n = socket.recv(&mut buf).unwrap();
    let reply = hickory_proto::op::Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(addresses(&reply), vec![v4("172.31.12.2")]);
}

#[test]
fn unknown_names_are_forwarded_to_the_upstream_with_its_port() {
    let dns = Dns::new();
    let listen = ip(5, 0);
    let upstream = FakeUpstream::start(SocketAddr::new(ip(5, 1), 5353));
    dns.write(&network(
        "fwd",
        &[listen],
        &[upstream.addr.to_string()],
        &[("172.31.13.2", &["web"])],
    ));
    dns.reload().unwrap();

    let reply = query_udp(listen, "example.test", RecordType::A);
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert_eq!(addresses(&reply), vec![IpAddr::V4(FAKE_ANSWER)]);
    assert_eq!(
        query_udp(listen, "nx.example", RecordType::A)
            .metadata
            .response_code,
        ResponseCode::NXDomain
    );
    let (ok, out) = nslookup("www.example.test", listen);
    assert!(ok && out.contains("192.0.2.7"), "{out}");
    assert!(upstream.asked().contains(&"example.test".to_string()));
    assert!(
        !upstream.asked().contains(&"web".to_string()),
        "local names stay local"
    );
}

#[test]
fn a_dead_upstream_is_skipped_and_all_dead_is_servfail() {
    let dns = Dns::new();
    let (listen, lonely) = (ip(6, 0), ip(6, 1));
    let upstream = FakeUpstream::start(SocketAddr::new(ip(6, 2), 5353));
    // Nothing listens on ip(6, 3): ICMP port unreachable, at once.
    let dead = SocketAddr::new(ip(6, 3), 5353).to_string();
    dns.write(&network(
        "a",
        &[listen],
        &[dead.clone(), upstream.addr.to_string()],
        &[],
    ));
    dns.write(&network("b", &[lonely], std::slice::from_ref(&dead), &[]));
    dns.reload().unwrap();

    let reply = query_udp(listen, "example.test", RecordType::A);
    assert_eq!(addresses(&reply), vec![IpAddr::V4(FAKE_ANSWER)]);
    // an upstream's SERVFAIL is relayed when no upstream does better
    assert_eq!(
        query_udp(listen, "fail.test", RecordType::A)
            .metadata
            .response_code,
        ResponseCode::ServFail
    );

    let started = Instant::now();
    for _ in 0..3 {
        let reply = query_udp(lonely, "example.test", RecordType::A);
        assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // one line for the problem, not one per query
    let log = dns.log();
    assert_eq!(log.matches(&format!("upstream {dead}")).count(), 1, "{log}");
}

#[test]
fn truncated_upstream_answers_are_fetched_over_tcp() {
    let dns = Dns::new();
    let listen = ip(7, 0);
    let upstream = FakeUpstream::start(SocketAddr::new(ip(7, 1), 5353));
    dns.write(&network("tc", &[listen], &[upstream.addr.to_string()], &[]));
    dns.reload().unwrap();

    // a client with a large EDNS buffer gets everything over UDP
    let reply = query_udp_with(listen, &request("big.test", RecordType::A, Some(4096)));
    assert_eq!(reply.answers.len(), 100);
    assert!(!reply.metadata.truncation);
    assert!(
        upstream
            .tcp_queries
            .load(std::sync::atomic::Ordering::SeqCst)
            >= 1
    );
    // a classic 512-byte client gets what fits and TC
    let reply = query_udp(listen, "big.test", RecordType::A);
    assert!(reply.metadata.truncation);
    assert!(!reply.answers.is_empty() && reply.answers.len() < 100);
    // and everything over TCP
    let replies = query_tcp(listen, &[request("big.test", RecordType::A, None)]);
    assert_eq!(replies[0].answers.len(), 100);
}

#[test]
fn tcp_queries_are_answered_in_order_on_one_connection() {
    let dns = Dns::new();
    let listen = ip(8, 0);
    let upstream = FakeUpstream::start(SocketAddr::new(ip(8, 1), 5353));
    dns.write(&network(
        "tcp",
        &[listen],
        &[upstream.addr.to_string()],
        &[("172.31.14.2", &["web"]), ("172.31.14.3", &["db"])],
    ));
    dns.reload().unwrap();
    let replies = query_tcp(
        listen,
        &[
            request("web", RecordType::A, None),
            request("example.test", RecordType::A, None),
            request("db.", RecordType::A, None),
        ],
    );
    assert_eq!(addresses(&replies[0]), vec![v4("172.31.14.2")]);
    assert_eq!(addresses(&replies[1]), vec![IpAddr::V4(FAKE_ANSWER)]);
    assert_eq!(addresses(&replies[2]), vec![v4("172.31.14.3")]);
    assert_eq!(
        upstream
            .tcp_queries
            .load(std::sync::atomic::Ordering::SeqCst),
        0,
        "UDP first upstream"
    );
}

#[test]
fn host_resolv_conf_is_the_default_upstream() {
    // The server reads BERTH_DNS_RESOLV_CONF instead of /etc/resolv.conf
    // when set (tests only; the variable is inherited from this process).
    let dns = Dns::new();
    let listen = ip(9, 0);
    let upstream = FakeUpstream::start(SocketAddr::new(ip(9, 1), 53));
    let resolv = dns.path().join("host-resolv.conf");
    std::fs::write(
        &resolv,
        format!("search example.com\nnameserver {}\n", upstream.addr.ip()),
    )
    .unwrap();
    dns.write(&network("hostup", &[listen], &[], &[]));
    let status = std::process::Command::new(BINARY)
        .arg("--config-dir")
        .arg(dns.path())
        .env("BERTH_DNS_RESOLV_CONF", &resolv)
        .status()
        .unwrap();
    assert!(status.success());
    let reply = query_udp(listen, "example.test", RecordType::A);
    assert_eq!(addresses(&reply), vec![IpAddr::V4(FAKE_ANSWER)]);
    // changes of the host's file are followed
    std::fs::write(&resolv, format!("nameserver {}\n", ip(9, 4))).unwrap();
    let reply = query_udp(listen, "example.test", RecordType::A);
    assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
}

/// An IPv6 address on `lo` for the test's duration.
struct Ipv6OnLo(String);

impl Ipv6OnLo {
    fn add(addr: &str) -> Self {
        let status = std::process::Command::new("ip")
            .args([
                "-6",
                "addr",
                "add",
                &format!("{addr}/128"),
                "dev",
                "lo",
                "nodad",
            ])
            .status()
            .expect("run ip");
        assert!(status.success(), "ip -6 addr add {addr}");
        Ipv6OnLo(addr.to_string())
    }
}

impl Drop for Ipv6OnLo {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["-6", "addr", "del", &format!("{}/128", self.0), "dev", "lo"])
            .status();
    }
}

#[test]
fn ipv6_listen_addresses_are_served() {
    let dns = Dns::new();
    let addr = format!("fd88:{:x}::1", std::process::id() % 0xffff);
    let _lo = Ipv6OnLo::add(&addr);
    let listen: IpAddr = addr.parse().unwrap();
    dns.write(&network(
        "six",
        &[listen],
        &[],
        &[("fd88:1::2,172.31.15.2", &["web"])],
    ));
    dns.reload().unwrap();
    let socket = std::net::UdpSocket::bind("[::1]:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let req = request("web", RecordType::AAAA, None);
    socket
        .send_to(&req.to_vec().unwrap(), (listen, 53))
        .unwrap();
    let mut buf = [0u8; 512];
    let n = socket.recv(&mut buf).unwrap();
    let reply = hickory_proto::op::Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(addresses(&reply), vec![v4("fd88:1::2")]);
    let (ok, out) = nslookup("web", listen);
    assert!(ok && out.contains("172.31.15.2"), "{out}");
}

/// A network namespace joined to the host by a veth pair: the host end
/// has `host_ip`, the namespace end `ns_ip` (a /30). Removed on drop.
struct VethNetns {
    ns: String,
    host_link: String,
}

impl VethNetns {
    fn create(host_ip: &str, ns_ip: &str) -> Self {
        let pid = std::process::id();
        let guard = VethNetns {
            ns: format!("bthdns{pid}"),
            host_link: format!("bthd{pid}h"),
        };
        let ns_link = format!("bthd{pid}c");
        let run = |args: &[&str]| {
            let status = std::process::Command::new("ip")
                .args(args)
                .status()
                .expect("run ip");
            assert!(status.success(), "ip {}", args.join(" "));
        };
        run(&["netns", "add", &guard.ns]);
        run(&[
            "link",
            "add",
            &guard.host_link,
            "type",
            "veth",
            "peer",
            "name",
            &ns_link,
        ]);
        run(&["link", "set", &ns_link, "netns", &guard.ns]);
        run(&[
            "addr",
            "add",
            &format!("{host_ip}/30"),
            "dev",
            &guard.host_link,
        ]);
        run(&["link", "set", &guard.host_link, "up"]);
        run(&[
            "-n",
            &guard.ns,
            "addr",
            "add",
            &format!("{ns_ip}/30"),
            "dev",
            &ns_link,
        ]);
        run(&["-n", &guard.ns, "link", "set", &ns_link, "up"]);
        run(&["-n", &guard.ns, "link", "set", "lo", "up"]);
        guard
    }

    /// `busybox nslookup NAME SERVER` inside the namespace.
    fn nslookup(&self, name: &str, server: &str) -> (bool, String) {
        let out = std::process::Command::new("ip")
            .args([
                "netns", "exec", &self.ns, "busybox", "nslookup", name, server,
            ])
            .output()
            .expect("run ip netns exec");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// `getent hosts NAME` inside the namespace with `resolv_conf` as its
    /// /etc/resolv.conf (`ip netns exec` bind-mounts /etc/netns/NS/*):
    /// glibc's resolver, as most containers have it.
    fn getent(&self, resolv_conf: &str, name: &str) -> (bool, String) {
        let dir = format!("/etc/netns/{}", self.ns);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(format!("{dir}/resolv.conf"), resolv_conf).unwrap();
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", &self.ns, "getent", "ahosts", name])
            .output()
            .expect("run ip netns exec");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }
}

impl Drop for VethNetns {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(format!("/etc/netns/{}", self.ns));
        // /etc/netns itself when nothing else is in it
        let _ = std::fs::remove_dir("/etc/netns");
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.ns])
            .status();
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.host_link])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

#[test]
fn a_container_namespace_asks_its_gateway_address() {
    let dns = Dns::new();
    let n = std::process::id() % 250;
    let (gateway, client) = (format!("100.88.{n}.1"), format!("100.88.{n}.2"));
    // The server is told about the network before the gateway address
    // exists (it binds with IP_FREEBIND); the order must not matter.
    dns.write(&network(
        "ctr",
        &[gateway.parse().unwrap()],
        &[],
        &[
            (client.as_str(), &["client"]),
            ("100.88.250.9", &["web", "www"]),
        ],
    ));
    dns.reload().unwrap();
    let netns = VethNetns::create(&gateway, &client);
    let (ok, out) = netns.nslookup("www", &gateway);
    assert!(ok && out.contains("100.88.250.9"), "{out}");
    let (ok, out) = netns.nslookup(&client, &gateway);
    assert!(ok && out.contains("client.ctr"), "{out}");
    // glibc, with a search domain the network does not know (asked
    // first: "web" has fewer dots than ndots:1) and options kept
    let resolv =
        format!("nameserver {gateway}\nsearch corp.invalid\noptions timeout:2 attempts:1\n");
    let (ok, out) = netns.getent(&resolv, "WEB");
    assert!(ok && out.contains("100.88.250.9"), "{out}");
    let (ok, out) = netns.getent(&resolv, "web.ctr.");
    assert!(ok && out.contains("100.88.250.9"), "{out}");
}
