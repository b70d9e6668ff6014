//! Latency of the engine's calls, for docs/benchmarks (ignored by default;
//! run with `cargo nextest run -p berth-dns --run-ignored only latency`,
//! `BERTH_DNS_BINARY=.../dist/berth-dns` to time the shipped server).

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use berth_dns::control;
use common::*;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// (time on a CPU, time waiting for one) of `pid`'s main thread, in ns.
fn schedstat(pid: i32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).unwrap();
    let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().unwrap());
    (fields.next().unwrap(), fields.next().unwrap())
}

#[test]
#[ignore = "a measurement, not a check"]
fn reload_and_start_latency() {
    let binary = std::env::var_os("BERTH_DNS_BINARY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(BINARY));
    let dns = Dns::new();
    let listen = ip(40, 0);
    let mut cfg = network("timing", &[listen], &[], &[("172.31.40.2", &["web"])]);
    dns.write(&cfg);

    let mut starts = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        control::reload_or_start(dns.path(), &binary).unwrap();
        starts.push(t.elapsed());
        let t = Instant::now();
        let pid = dns.pid().unwrap();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        wait_until(Duration::from_secs(2), || !alive(pid));
        let _ = t;
    }
    control::reload_or_start(dns.path(), &binary).unwrap();
    let server = dns.pid().unwrap();
    let before = schedstat(server);
    let mut reloads = Vec::new();
    for i in 0..50u8 {
        cfg.records.push(berth_dns::config::Record {
            ip: vec![format!("172.31.41.{}", i + 2).parse().unwrap()],
            names: vec![format!("c{i}")],
            container: None,
        });
        dns.write(&cfg);
        let t = Instant::now();
        control::reload_or_start(dns.path(), &binary).unwrap();
        reloads.push(t.elapsed());
    }
    let after = schedstat(server);
    eprintln!(
        "berth-dns: per reload, the server's main thread ran {:?} and waited {:?} for a CPU",
        Duration::from_nanos((after.0 - before.0) / 50),
        Duration::from_nanos((after.1 - before.1) / 50),
    );
    eprintln!(
        "berth-dns: start (reload_or_start, none running) median {:?}; reload (SIGHUP + handshake, 1..50 records) median {:?}, max {:?}",
        median(starts),
        median(reloads.clone()),
        reloads.iter().max().unwrap()
    );
}
