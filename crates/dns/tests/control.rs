//! berth-dns's life: started once however many callers race, reloaded on
//! SIGHUP (through `reload_or_start` or by hand), stopped when idle or on
//! SIGTERM, start-up failures reported.

mod common;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use berth_dns::config;
use berth_dns::control;
use berth_dns::DnsError;
use common::*;
use hickory_proto::rr::RecordType;

fn v4(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn reload_picks_up_new_records_and_listen_addresses_at_once() {
    let dns = Dns::new();
    let (a, b) = (ip(20, 0), ip(20, 1));
    dns.write(&network("one", &[a], &[], &[("172.31.20.2", &["web"])]));
    dns.reload().unwrap();
    let pid = dns.pid().expect("running");

    // a new container and a new network: served when reload_or_start
    // returns, by the same process
    dns.write(&network(
        "one",
        &[a],
        &[],
        &[("172.31.20.2", &["web"]), ("172.31.20.3", &["api"])],
    ));
    dns.write(&network("two", &[b], &[], &[("172.31.21.2", &["db"])]));
    dns.reload().unwrap();
    assert_eq!(dns.pid(), Some(pid));
    assert_eq!(
        addresses(&query_udp(a, "api", RecordType::A)),
        vec![v4("172.31.20.3")]
    );
    assert_eq!(
        addresses(&query_udp(b, "db", RecordType::A)),
        vec![v4("172.31.21.2")]
    );

    // a removed network: its address is closed (and free again)
    config::remove(dns.path(), "two").unwrap();
    dns.reload().unwrap();
    assert!(try_query_udp(
        b,
        &request("db", RecordType::A, None),
        Duration::from_millis(300)
    )
    .is_none());
    drop(UdpSocket::bind(SocketAddr::new(b, 53)).expect("the address is free again"));
    assert_eq!(
        addresses(&query_udp(a, "web", RecordType::A)),
        vec![v4("172.31.20.2")]
    );
}

#[test]
fn a_plain_sighup_reloads_within_a_bounded_time() {
    let dns = Dns::new();
    let (a, b) = (ip(21, 0), ip(21, 1));
    dns.write(&network("hup", &[a], &[], &[("172.31.22.2", &["web"])]));
    dns.reload().unwrap();
    let pid = dns.pid().unwrap();
    dns.write(&network(
        "hup",
        &[a, b],
        &[],
        &[("172.31.22.2", &["web"]), ("172.31.22.3", &["new"])],
    ));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    let served = wait_until(Duration::from_secs(2), || {
        try_query_udp(
            b,
            &request("new", RecordType::A, None),
            Duration::from_millis(100),
        )
        .is_some_and(|r| addresses(&r) == vec![v4("172.31.22.3")])
    });
    assert!(served, "log: {}", dns.log());
}

#[test]
fn concurrent_callers_start_one_server() {
    let dns = Dns::new();
    let listen = ip(22, 0);
    dns.write(&network(
        "race",
        &[listen],
        &[],
        &[("172.31.23.2", &["web"])],
    ));
    let barrier = Arc::new(Barrier::new(4));
    let dir = dns.path().to_path_buf();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (barrier, dir) = (barrier.clone(), dir.clone());
            std::thread::spawn(move || {
                barrier.wait();
                control::reload_or_start(&dir, std::path::Path::new(BINARY))
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap().unwrap();
    }
    let servers = servers_of(dns.path());
    assert_eq!(servers.len(), 1, "{servers:?}");
    assert_eq!(dns.pid(), Some(servers[0]));
    assert_eq!(
        addresses(&query_udp(listen, "web", RecordType::A)),
        vec![v4("172.31.23.2")]
    );
}

#[test]
fn stop_if_idle_stops_only_when_no_network_is_left() {
    let dns = Dns::new();
    let (a, b) = (ip(23, 0), ip(23, 1));
    dns.write(&network("n1", &[a], &[], &[]));
    dns.write(&network("n2", &[b], &[], &[]));
    dns.reload().unwrap();
    let pid = dns.pid().unwrap();

    config::remove(dns.path(), "n1").unwrap();
    control::stop_if_idle(dns.path()).unwrap();
    assert!(alive(pid));

    config::remove(dns.path(), "n2").unwrap();
    control::stop_if_idle(dns.path()).unwrap();
    assert!(!alive(pid));
    assert!(!dns.path().join(config::PID_FILE).exists());
    assert!(servers_of(dns.path()).is_empty());
    // nothing to stop: fine, also for a directory that does not exist
    control::stop_if_idle(dns.path()).unwrap();
    control::stop_if_idle(&dns.path().join("missing")).unwrap();
    // reload_or_start with no network: nothing started
    dns.reload().unwrap();
    assert!(servers_of(dns.path()).is_empty());
}

#[test]
fn sigterm_exits_cleanly_and_frees_the_addresses() {
    let dns = Dns::new();
    let listen = ip(24, 0);
    dns.write(&network("term", &[listen], &[], &[]));
    dns.reload().unwrap();
    let pid = dns.pid().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(wait_until(Duration::from_secs(2), || !alive(pid)));
    assert!(!dns.path().join(config::PID_FILE).exists());
    drop(UdpSocket::bind(SocketAddr::new(listen, 53)).expect("the address is free"));
    assert!(dns.log().contains("stopping (signal)"), "{}", dns.log());
    // the next reload_or_start starts a new one
    dns.reload().unwrap();
    assert_ne!(dns.pid(), Some(pid));
    assert!(dns.pid().is_some());
}

#[test]
fn a_killed_server_is_replaced_by_the_next_reload() {
    let dns = Dns::new();
    let listen = ip(25, 0);
    dns.write(&network(
        "kill",
        &[listen],
        &[],
        &[("172.31.25.2", &["web"])],
    ));
    dns.reload().unwrap();
    let pid = dns.pid().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(wait_until(Duration::from_secs(2), || !alive(pid)));
    // the stale pid file names a dead process
    dns.reload().unwrap();
    let new = dns.pid().unwrap();
    assert_ne!(new, pid);
    assert_eq!(
        addresses(&query_udp(listen, "web", RecordType::A)),
        vec![v4("172.31.25.2")]
    );
}

#[test]
fn an_address_in_use_is_a_clear_error() {
    let dns = Dns::new();
    let (taken, free) = (ip(26, 0), ip(26, 1));
    let _squatter = UdpSocket::bind(SocketAddr::new(taken, 53)).unwrap();
    dns.write(&network("busy", &[taken], &[], &[]));
    let err = dns.reload().unwrap_err();
    assert!(matches!(err, DnsError::Start { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("{taken}:53/udp")) && msg.contains("in use"),
        "{msg}"
    );
    assert!(servers_of(dns.path()).is_empty());

    // with another network that can be served: it runs, and says what not
    dns.write(&network("fine", &[free], &[], &[("172.31.26.2", &["web"])]));
    let err = dns.reload().unwrap_err();
    assert!(
        matches!(&err, DnsError::Listen { failures } if failures.len() == 1),
        "{err:?}"
    );
    assert_eq!(
        addresses(&query_udp(free, "web", RecordType::A)),
        vec![v4("172.31.26.2")]
    );
}

#[test]
fn the_server_exits_by_itself_when_its_files_are_gone() {
    let dns = Dns::new();
    let listen = ip(27, 0);
    dns.write(&network("idle", &[listen], &[], &[]));
    dns.reload().unwrap();
    let pid = dns.pid().unwrap();
    // not for the engine's own temporary files
    dns.write(&network("idle", &[listen], &[], &[]));
    std::thread::sleep(Duration::from_millis(100));
    assert!(alive(pid));
    config::remove(dns.path(), "idle").unwrap();
    assert!(
        wait_until(Duration::from_secs(2), || !alive(pid)),
        "log: {}",
        dns.log()
    );
    assert!(dns.log().contains("no network files left"), "{}", dns.log());
    assert!(!dns.path().join(config::PID_FILE).exists());
}

#[test]
fn the_server_exits_at_once_when_its_directory_is_removed() {
    // A test or a user removing a runroot without `network rm`: the
    // gateway address must not stay taken.
    let dns = Dns::new();
    let dir = dns.path().join("runroot/dns");
    let listen = ip(29, 0);
    config::write(&dir, &network("gone", &[listen], &[], &[])).unwrap();
    control::reload_or_start(&dir, std::path::Path::new(BINARY)).unwrap();
    let pid = control::running_pid(&dir).unwrap();
    std::fs::remove_dir_all(dns.path().join("runroot")).unwrap();
    assert!(wait_until(Duration::from_secs(2), || !alive(pid)));
    drop(UdpSocket::bind(SocketAddr::new(listen, 53)).expect("the address is free"));
}

#[test]
fn bad_arguments_and_empty_directories_fail_with_a_message() {
    let dns = Dns::new();
    let out = Command::new(BINARY).arg("--bogus").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown argument"));
    let out = Command::new(BINARY)
        .arg("--config-dir")
        .arg(dns.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to serve"));
    // a broken network file is named
    std::fs::write(dns.path().join("broken.json"), "{").unwrap();
    let out = Command::new(BINARY)
        .arg("--config-dir")
        .arg(dns.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("broken.json"));
}

#[test]
fn a_hung_server_is_replaced() {
    let dns = Dns::new();
    let listen = ip(28, 0);
    dns.write(&network(
        "hung",
        &[listen],
        &[],
        &[("172.31.28.2", &["web"])],
    ));
    dns.reload().unwrap();
    let pid = dns.pid().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGSTOP,
    )
    .unwrap();
    dns.write(&network(
        "hung",
        &[listen],
        &[],
        &[("172.31.28.3", &["web"])],
    ));
    let started = std::time::Instant::now();
    dns.reload().unwrap();
    assert!(started.elapsed() < Duration::from_secs(8));
    assert!(wait_until(Duration::from_secs(2), || !alive(pid)));
    assert_ne!(dns.pid(), Some(pid));
    assert_eq!(
        addresses(&query_udp(listen, "web", RecordType::A)),
        vec![v4("172.31.28.3")]
    );
}
