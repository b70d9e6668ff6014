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
    eprintln!(
        "berth-dns: start (reload_or_start, none running) median {:?}; reload (SIGHUP + handshake, 1..50 records) median {:?}, max {:?}",
        median(starts),
        median(reloads.clone()),
        reloads.iter().max().unwrap()
    );
}
