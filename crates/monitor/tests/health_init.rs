//! Health checks through `<runtime> exec`, and berth-init as a container's
//! PID 1.

mod common;

use std::time::Duration;

use berth_monitor::config::HealthConfig;
use berth_monitor::files::{self, HealthStatus};
use berth_testutil::require_root;
use common::{wait_until, Ct, Rt, INIT};

const MS: u64 = 1_000_000;

fn health(ct: &Ct) -> Option<files::HealthState> {
    files::read_health(ct.state_dir()).expect("read health.json")
}

#[test]
fn health_check_becomes_healthy() {
    require_root!();
    let mut ct = Ct::new("healthy", Rt::Berth, &["sleep", "100"]);
    ct.config.health = Some(HealthConfig {
        test: vec!["CMD-SHELL".into(), "echo ok from $0; exit 0".into()],
        interval_ns: 200 * MS,
        timeout_ns: 5000 * MS,
        start_period_ns: 0,
        retries: 3,
    });
    ct.start().expect("start");
    let h = health(&ct).expect("health.json at start");
    assert_eq!(h.status, HealthStatus::Starting);
    wait_until("healthy", || {
        health(&ct).is_some_and(|h| h.status == HealthStatus::Healthy)
    });
    wait_until("several probes", || {
        health(&ct).is_some_and(|h| h.log.len() >= 3)
    });
    let h = health(&ct).expect("health");
    assert_eq!(h.failing_streak, 0);
    let last = h.log.last().expect("a result");
    assert_eq!(last.exit_code, 0);
    assert_eq!(last.output, "ok from /bin/sh\n");
    assert!(last.start <= last.end);
    wait_until("at most five kept", || {
        health(&ct).is_some_and(|h| h.log.len() == 5)
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(health(&ct).expect("health").log.len(), 5);
    ct.kill("KILL");
    assert_eq!(ct.wait(), 137);
}

#[test]
fn health_check_failures_make_it_unhealthy_and_timeouts_count() {
    require_root!();
    let mut ct = Ct::new("unhealthy", Rt::Berth, &["sleep", "100"]);
    // `sleep 5` outlives the 300 ms timeout; every probe fails.
    ct.config.health = Some(HealthConfig {
        test: vec!["CMD".into(), "sleep".into(), "5".into()],
        interval_ns: 100 * MS,
        timeout_ns: 300 * MS,
        start_period_ns: 0,
        retries: 2,
    });
    ct.start().expect("start");
    wait_until("unhealthy", || {
        health(&ct).is_some_and(|h| h.status == HealthStatus::Unhealthy)
    });
    let h = health(&ct).expect("health");
    assert!(h.failing_streak >= 2, "{h:?}");
    let last = h.log.last().expect("result");
    assert_eq!(last.exit_code, -1);
    assert!(
        last.output.starts_with("Health check exceeded timeout"),
        "{last:?}"
    );
    // The timed-out probe's process in the container was killed.
    std::thread::sleep(Duration::from_millis(300));
    let ps = std::process::Command::new(ct.rt.path())
        .arg("--root")
        .arg(&ct.config.runtime_root)
        .args(["ps", &ct.config.id])
        .output()
        .expect("ps");
    let listing = String::from_utf8_lossy(&ps.stdout);
    let sleeps = listing.lines().filter(|l| l.contains("sleep 5")).count();
    assert!(sleeps <= 1, "timed-out probes left behind: {listing}");
    ct.kill("KILL");
    assert_eq!(ct.wait(), 137);
}

#[test]
fn health_check_exit_code_failure_and_start_period() {
    require_root!();
    let mut ct = Ct::new("hfail", Rt::Runc, &["sleep", "100"]);
    // Failures inside the start period do not count.
    ct.config.health = Some(HealthConfig {
        test: vec!["CMD-SHELL".into(), "echo bad; exit 2".into()],
        interval_ns: 100 * MS,
        timeout_ns: 5000 * MS,
        start_period_ns: 1500 * MS,
        retries: 1,
    });
    ct.start().expect("start");
    wait_until("two probes", || {
        health(&ct).is_some_and(|h| h.log.len() >= 2)
    });
    let early = health(&ct).expect("health");
    if early.log.len() < 4 {
        assert_eq!(early.status, HealthStatus::Starting, "{early:?}");
        assert_eq!(early.failing_streak, 0);
    }
    wait_until("unhealthy after the start period", || {
        health(&ct).is_some_and(|h| h.status == HealthStatus::Unhealthy)
    });
    let h = health(&ct).expect("health");
    let last = h.log.last().expect("result");
    assert_eq!(last.exit_code, 2);
    assert_eq!(last.output, "bad\n");
    ct.kill("KILL");
    assert_eq!(ct.wait(), 137);
}

#[test]
fn berth_init_is_static_and_propagates_exit_status() {
    let file = std::process::Command::new("file")
        .arg("-L")
        .arg(INIT)
        .output()
        .expect("file");
    let desc = String::from_utf8_lossy(&file.stdout);
    assert!(desc.contains("static"), "{desc}");
    assert!(!desc.contains("interpreter"), "{desc}");
    let code = |script: &str| {
        std::process::Command::new(INIT)
            .args(["/bin/sh", "-c", script])
            .status()
            .expect("berth-init")
            .code()
    };
    assert_eq!(code("exit 3"), Some(3));
    assert_eq!(code("kill -KILL $$"), Some(137));
    let missing = std::process::Command::new(INIT)
        .arg("/nonexistent")
        .status()
        .expect("berth-init");
    assert_eq!(missing.code(), Some(127));
}

#[test]
fn berth_init_reaps_zombies_and_forwards_sigterm() {
    require_root!();
    let script = "trap 'echo got TERM; exit 3' TERM; \
                  (sleep 0.2 &); (sleep 0.2 &); sleep 1; \
                  echo zombies=$(cat /proc/[0-9]*/stat | grep -c ') Z '); \
                  echo ready; while true; do sleep 0.1; done";
    let ct = Ct::new(
        "init",
        Rt::Berth,
        &["/sbin/docker-init", "sh", "-c", script],
    );
    std::fs::create_dir_all(ct.rootfs("/sbin")).expect("sbin");
    std::fs::copy(INIT, ct.rootfs("/sbin/docker-init")).expect("copy init");
    ct.start().expect("start");
    wait_until("ready", || ct.logs().iter().any(|(_, l)| l == "ready\n"));
    let logs = ct.logs();
    assert!(
        logs.iter().any(|(_, l)| l == "zombies=0\n"),
        "orphans left as zombies: {logs:?}"
    );
    // SIGTERM to PID 1 (berth-init) reaches the shell, whose exit code
    // becomes the container's.
    ct.kill("TERM");
    assert_eq!(ct.wait(), 3);
    assert!(ct.logs().iter().any(|(_, l)| l == "got TERM\n"));
}
