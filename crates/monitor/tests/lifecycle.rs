//! Start, output, exit codes, OOM, restarts, the stop marker, the exit
//! command and start failures, against berth-runtime and runc.

mod common;

use berth_monitor::config::{RestartPolicy, RestartPolicyName};
use berth_monitor::ClientError;
use berth_testutil::require_root;
use common::{wait_until, Ct, Rt};
use serde_json::json;

fn output_and_exit_code(rt: Rt) {
    let ct = Ct::new(
        "out",
        rt,
        &[
            "sh",
            "-c",
            "echo hello; echo oops >&2; printf partial; exit 7",
        ],
    );
    let pid = ct.start().expect("start");
    assert!(pid > 0);
    assert_eq!(ct.wait(), 7);
    let exit = ct.exit_state();
    assert_eq!(exit.exit_code, 7);
    assert!(!exit.oom_killed);
    assert_eq!(exit.restart_count, 0);
    assert!(exit.started_at.is_some());
    let mut logs = ct.logs();
    logs.sort();
    assert_eq!(
        logs,
        [
            ("stderr".to_string(), "oops\n".to_string()),
            ("stdout".to_string(), "hello\n".to_string()),
            ("stdout".to_string(), "partial".to_string()),
        ]
    );
    // Docker's exact line format.
    let raw = std::fs::read_to_string(&ct.config.log.path).expect("log");
    let first = raw
        .lines()
        .find(|l| l.contains("hello"))
        .expect("hello line");
    assert!(
        first.starts_with("{\"log\":\"hello\\n\",\"stream\":\"stdout\",\"time\":\"20"),
        "{first}"
    );
    let state = ct.state();
    assert_eq!(state.status, berth_monitor::files::Status::Exited);
    assert_eq!(state.exit_code, Some(7));
    // The monitor is gone and the runtime forgot the container.
    wait_until("monitor exit", || {
        !berth_monitor::files::monitor_alive(ct.state_dir())
    });
    assert!(!ct.state_dir().join("attach").exists());
    let st = std::process::Command::new(rt.path())
        .arg("--root")
        .arg(&ct.config.runtime_root)
        .args(["state", &ct.config.id])
        .output()
        .expect("state");
    assert!(!st.status.success(), "container still known to the runtime");
}

#[test]
fn output_and_exit_code_berth_runtime() {
    require_root!();
    output_and_exit_code(Rt::Berth);
}

#[test]
fn output_and_exit_code_runc() {
    require_root!();
    output_and_exit_code(Rt::Runc);
}

#[test]
fn signal_exit_is_128_plus_signal() {
    require_root!();
    let ct = Ct::new("sig", Rt::Berth, &["sleep", "100"]);
    ct.start().expect("start");
    assert_eq!(ct.state().status, berth_monitor::files::Status::Running);
    ct.kill("KILL");
    assert_eq!(ct.wait(), 137);
    assert_eq!(ct.exit_state().exit_code, 137);
}

fn missing_executable(rt: Rt) {
    let ct = Ct::new("missing", rt, &["/bin/definitely-not-here"]);
    match ct.start() {
        Err(ClientError::Start { message, exit_code }) => {
            assert_eq!(exit_code, 127, "{message}");
            assert!(message.contains("definitely-not-here"), "{message}");
            assert!(!message.contains('\n'));
        }
        other => panic!("expected a start error, got {other:?}"),
    }
    let exit = ct.exit_state();
    assert_eq!(exit.exit_code, 127);
    assert!(exit.error.is_some());
    let ct = Ct::new("noexec", rt, &["/etc/passwd"]);
    match ct.start() {
        Err(ClientError::Start { exit_code, message }) => assert_eq!(exit_code, 126, "{message}"),
        other => panic!("expected a start error, got {other:?}"),
    }
    let ct = Ct::new("notinpath", rt, &["nosuchcommand"]);
    match ct.start() {
        Err(ClientError::Start { exit_code, message }) => assert_eq!(exit_code, 127, "{message}"),
        other => panic!("expected a start error, got {other:?}"),
    }
}

#[test]
fn missing_executable_reports_127_berth_runtime() {
    require_root!();
    missing_executable(Rt::Berth);
}

#[test]
fn missing_executable_reports_127_runc() {
    require_root!();
    missing_executable(Rt::Runc);
}

#[test]
fn oom_kill_is_recorded() {
    require_root!();
    let ct = Ct::new(
        "oom",
        Rt::Berth,
        &[
            "sh",
            "-c",
            "x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo survived ${#x}",
        ],
    );
    let id = ct.config.id.clone();
    ct.edit(|c| {
        c["linux"]["resources"]["memory"] =
            json!({"limit": 16 * 1024 * 1024, "swap": 16 * 1024 * 1024});
        c["linux"]["cgroupsPath"] = json!(format!("/berth-{id}"));
    });
    ct.start().expect("start");
    let code = ct.wait();
    let exit = ct.exit_state();
    assert!(exit.oom_killed, "not recorded as OOM-killed (exit {code})");
    assert_ne!(code, 0);
    assert!(ct.state().oom_killed);
}

#[test]
fn oom_kill_is_recorded_runc() {
    require_root!();
    let ct = Ct::new(
        "oomrunc",
        Rt::Runc,
        &[
            "sh",
            "-c",
            "x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo survived ${#x}",
        ],
    );
    // An explicit cgroupsPath (as the engine writes) lets the monitor find
    // the cgroup even when the init is OOM-killed before it looked.
    let id = ct.config.id.clone();
    ct.edit(|c| {
        c["linux"]["resources"]["memory"] =
            json!({"limit": 16 * 1024 * 1024, "swap": 16 * 1024 * 1024});
        c["linux"]["cgroupsPath"] = json!(format!("/berth-{id}"));
    });
    ct.start().expect("start");
    ct.wait();
    assert!(ct.exit_state().oom_killed);
}

#[test]
fn a_normal_exit_is_no_oom_kill_under_a_limit() {
    require_root!();
    let ct = Ct::new("nooom", Rt::Berth, &["true"]);
    ct.edit(|c| {
        c["linux"]["resources"]["memory"] = json!({"limit": 64 * 1024 * 1024});
    });
    ct.start().expect("start");
    assert_eq!(ct.wait(), 0);
    assert!(!ct.exit_state().oom_killed);
}

#[test]
fn on_failure_2_runs_three_times() {
    require_root!();
    let mut ct = Ct::new(
        "onfail",
        Rt::Berth,
        &["sh", "-c", "echo run >> /runs; exit 3"],
    );
    ct.config.restart = RestartPolicy {
        name: RestartPolicyName::OnFailure,
        max_retries: 2,
    };
    ct.start().expect("start");
    assert_eq!(ct.wait(), 3);
    let runs = std::fs::read_to_string(ct.rootfs("/runs")).expect("runs");
    assert_eq!(runs.lines().count(), 3);
    assert_eq!(ct.exit_state().restart_count, 2);
    // The log got every run's output.
    let logs = ct.logs();
    assert_eq!(logs.len(), 0, "nothing on stdout: {logs:?}");
}

#[test]
fn on_failure_does_not_restart_a_success() {
    require_root!();
    let mut ct = Ct::new("onfail0", Rt::Berth, &["sh", "-c", "echo run; exit 0"]);
    ct.config.restart = RestartPolicy {
        name: RestartPolicyName::OnFailure,
        max_retries: 0,
    };
    ct.start().expect("start");
    assert_eq!(ct.wait(), 0);
    assert_eq!(ct.exit_state().restart_count, 0);
    assert_eq!(ct.logs().len(), 1);
}

#[test]
fn stopping_marker_ends_an_always_restarting_container() {
    require_root!();
    let mut ct = Ct::new(
        "always",
        Rt::Berth,
        // PID 1 ignores an untrapped SIGTERM: trap it like a real service.
        &[
            "sh",
            "-c",
            "trap 'exit 143' TERM; echo run >> /runs; echo started; sleep 100 & wait",
        ],
    );
    ct.config.restart = RestartPolicy {
        name: RestartPolicyName::Always,
        max_retries: 0,
    };
    ct.start().expect("start");
    let runs = || {
        std::fs::read_to_string(ct.rootfs("/runs"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    };
    wait_until("first run", || runs() == 1);
    // An exit without the marker restarts (always: even exit code 0 or a kill).
    ct.kill("KILL");
    wait_until("second run", || {
        runs() == 2 && ct.state().status == berth_monitor::files::Status::Running
    });
    assert_eq!(ct.state().restart_count, 1);
    // A stop: marker first, then the signal.
    std::fs::write(ct.state_dir().join("stopping"), b"").expect("marker");
    ct.kill("TERM");
    assert_eq!(ct.wait(), 143);
    assert_eq!(runs(), 2);
    assert_eq!(ct.exit_state().restart_count, 1);
    let started = ct.logs().iter().filter(|(_, l)| l == "started\n").count();
    assert_eq!(started, 2);
}

#[test]
fn exit_command_runs_once_with_the_code() {
    require_root!();
    let mut ct = Ct::new("exitcmd", Rt::Berth, &["sh", "-c", "exit 5"]);
    let out = ct.tmp.join("exit-command.out");
    ct.config.restart = RestartPolicy {
        name: RestartPolicyName::OnFailure,
        max_retries: 1,
    };
    // Slow on purpose: wait must not return before it finished.
    ct.config.exit_command = vec![
        "/bin/sh".into(),
        "-c".into(),
        format!(
            "sleep 0.3; echo \"code=$BERTH_EXIT_CODE\" >> {}",
            out.display()
        ),
    ];
    ct.start().expect("start");
    assert_eq!(ct.wait(), 5);
    assert_eq!(
        std::fs::read_to_string(&out).expect("exit command output"),
        "code=5\n"
    );
}

#[test]
fn a_second_monitor_for_the_same_state_dir_is_refused() {
    require_root!();
    let ct = Ct::new("twice", Rt::Berth, &["sleep", "100"]);
    ct.start().expect("start");
    match ct.start() {
        Err(ClientError::Start { message, exit_code }) => {
            assert_eq!(exit_code, 125);
            assert!(message.contains("already runs"), "{message}");
        }
        other => panic!("second monitor: {other:?}"),
    }
    // The first one is untouched.
    assert_eq!(ct.state().status, berth_monitor::files::Status::Running);
    ct.kill("KILL");
    assert_eq!(ct.wait(), 137);
}

/// Regression guard for the monitor's footprint (numbers in the crate docs).
#[test]
fn an_idle_monitor_stays_small() {
    require_root!();
    let ct = Ct::new("mem", Rt::Berth, &["sleep", "100"]);
    ct.start().expect("start");
    let pid = ct.monitor_pid().expect("monitor pid");
    let rollup = || std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).expect("smaps");
    let field = |name: &str| -> u64 {
        rollup()
            .lines()
            .find_map(|l| {
                l.strip_prefix(name)?
                    .trim()
                    .strip_suffix(" kB")?
                    .parse()
                    .ok()
            })
            .unwrap_or(u64::MAX)
    };
    // The monitor trims itself right after its ready report.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while field("Pss:") >= 1024 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (pss, anon) = (field("Pss:"), field("Anonymous:"));
    assert!(pss < 1024, "PSS {pss} kB");
    assert!(anon < 512, "anonymous {anon} kB");
    ct.kill("KILL");
    assert_eq!(ct.wait(), 137);
}

#[test]
fn a_stop_during_a_long_backoff_ends_at_once() {
    require_root!();
    let mut ct = Ct::new(
        "backoff",
        Rt::Berth,
        &["sh", "-c", "echo run >> /runs; exit 1"],
    );
    ct.config.restart = RestartPolicy {
        name: RestartPolicyName::Always,
        max_retries: 0,
    };
    ct.start().expect("start");
    // Backoffs so far: 100, 200, 400, 800 ms; the next one is 1.6 s.
    wait_until("four restarts", || ct.state().restart_count >= 4);
    wait_until("backing off", || {
        ct.state().status == berth_monitor::files::Status::Restarting
    });
    let asked = std::time::Instant::now();
    std::fs::write(ct.state_dir().join("stopping"), b"").expect("marker");
    assert_eq!(ct.wait(), 1);
    let took = asked.elapsed();
    assert!(
        took < std::time::Duration::from_millis(1000),
        "stop took {took:?}"
    );
    let restarts = ct.exit_state().restart_count;
    assert!((4..=5).contains(&restarts), "{restarts} restarts");
}

#[test]
fn a_standby_monitor_runs_the_container_it_is_handed() {
    require_root!();
    let ct = Ct::new(
        "standby",
        Rt::Berth,
        &["sh", "-c", "echo from-standby; exit 4"],
    );
    let pid = ct.start_standby().expect("start");
    assert!(pid > 0);
    assert_eq!(ct.wait(), 4);
    assert_eq!(ct.exit_state().exit_code, 4);
    assert_eq!(
        ct.logs(),
        [("stdout".to_string(), "from-standby\n".to_string())]
    );
    wait_until("monitor exit", || {
        !berth_monitor::files::monitor_alive(ct.state_dir())
    });
}

#[test]
fn a_standby_monitor_reports_a_config_it_cannot_use() {
    require_root!();
    let tmp = berth_testutil::TempDir::new("standby-bad").expect("tmp");
    let standby =
        berth_monitor::client::StandbyMonitor::start(std::path::Path::new(common::MONITOR))
            .expect("standby");
    match standby.launch(&tmp.join("missing.json"), &tmp.join("state")) {
        Err(ClientError::Start { exit_code, message }) => {
            assert_eq!(exit_code, 125);
            assert!(message.contains("missing.json"), "{message}");
        }
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => panic!("a missing config was accepted"),
    }
}

#[test]
fn an_unused_standby_monitor_is_gone_when_dropped() {
    require_root!();
    let tmp = berth_testutil::TempDir::new("standby-unused").expect("tmp");
    // A path of its own, to tell this monitor from other tests' ones.
    let bin = tmp.join("berth-monitor-unused");
    std::fs::copy(common::MONITOR, &bin).expect("copy monitor");
    let standby = berth_monitor::client::StandbyMonitor::start(&bin).expect("standby");
    let running = || {
        std::fs::read_dir("/proc")
            .expect("/proc")
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .filter(|c| c.starts_with(bin.as_os_str().as_encoded_bytes()))
            .count()
    };
    wait_until("the standby monitor waits", || running() > 0);
    drop(standby);
    assert_eq!(running(), 0, "the unused standby monitor outlived its drop");
}
