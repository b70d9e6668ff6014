//! create/start/run/state/kill/delete/pause/resume/list/exec against the
//! real binary, with busybox bundles.

mod common;

use std::time::Duration;

use berth_testutil::require_root;
use common::*;

#[test]
fn spec_then_run_walkthrough() {
    require_root!();
    let env = Env::new("walk", &["true"]);
    // `spec` refuses to overwrite, like runc.
    let again = run_captured(env.cmd().arg("spec").current_dir(&env.bundle), &env.tmp);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("config.json exists"),
        "{}",
        stderr(&again)
    );

    let id = unique_id("walk");
    let out = run_captured(
        env.cmd().args(["run", &id]).current_dir(&env.bundle),
        &env.tmp,
    );
    assert!(out.status.success(), "run: {}", stderr(&out));
    // run deletes the container afterwards: no state, no cgroup.
    assert!(!env.root.join(&id).exists());
    assert!(
        cgroup_leftovers(&id).is_empty(),
        "{:?}",
        cgroup_leftovers(&id)
    );
}

#[test]
fn foreground_run_relays_the_terminal_of_runcs_default_spec() {
    require_root!();
    let env = Env::new("tty", &["sh"]);
    // runc's default: terminal true, `sh`, read-only root.
    env.edit(|c| {
        c["process"]["terminal"] = serde_json::json!(true);
        c["root"]["readonly"] = serde_json::json!(true);
    });
    let id = unique_id("tty");
    let _g = env.guard(&id);
    let mut child = env
        .cmd()
        .args(["run", "--bundle", env.bundle_str(), &id])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(b"[ -t 0 ] && echo on-a-tty-$(hostname)\nexit 4\n")
            .expect("write");
    }
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("on-a-tty-berth-test"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn foreground_run_can_be_inspected_and_killed() {
    require_root!();
    let env = Env::new("fg", &["sleep", "100"]);
    let id = unique_id("fg");
    let _g = env.guard(&id);
    let mut child = env
        .cmd()
        .args(["run", "--bundle", env.bundle_str(), &id])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while env.rt(&["state", &id]).status.code() != Some(0) {
        assert!(std::time::Instant::now() < deadline, "never became visible");
        std::thread::sleep(Duration::from_millis(20));
    }
    env.wait_status(&id, "running");
    // A pid-namespace init without handlers only receives SIGKILL.
    env.ok(&["kill", &id, "KILL"]);
    let status = child.wait().expect("wait run");
    assert_eq!(status.code(), Some(137));
    assert!(!env.root.join(&id).exists());
    assert!(cgroup_leftovers(&id).is_empty());
}

#[test]
fn spec_output_is_runcs_template() {
    let tmp = berth_testutil::TempDir::new("spec").expect("tmp");
    let out = std::process::Command::new(BIN)
        .args(["spec", "--bundle"])
        .arg(tmp.path())
        .output()
        .expect("spec");
    assert!(out.status.success());
    let c: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.join("config.json")).expect("read"))
            .expect("json");
    assert_eq!(c["process"]["args"], serde_json::json!(["sh"]));
    assert_eq!(c["root"]["path"], "rootfs");
    assert_eq!(c["hostname"], "runc");
    assert_eq!(c["linux"]["namespaces"].as_array().map(Vec::len), Some(5));
    let rootless = tmp.join("rl");
    std::fs::create_dir(&rootless).expect("mkdir");
    let out = std::process::Command::new(BIN)
        .args(["spec", "--rootless", "--bundle"])
        .arg(&rootless)
        .output()
        .expect("spec");
    assert!(out.status.success());
    let c: serde_json::Value =
        serde_json::from_slice(&std::fs::read(rootless.join("config.json")).expect("read"))
            .expect("json");
    assert!(c["linux"]["uidMappings"].is_array());
}

#[test]
fn run_propagates_exit_codes() {
    require_root!();
    let env = Env::new("exit", &["sh", "-c", "exit 7"]);
    let id = unique_id("exit");
    let out = env.rt(&["run", "--bundle", env.bundle_str(), &id]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));

    // Outside a pid namespace (a pid-namespace init ignores its own kill).
    env.edit(|c| {
        c["process"]["args"] = serde_json::json!(["sh", "-c", "kill -KILL $$"]);
        let ns = c["linux"]["namespaces"].as_array_mut().expect("namespaces");
        ns.retain(|n| n["type"] != "pid");
    });
    let id = unique_id("exit");
    let out = env.rt(&["run", "--bundle", env.bundle_str(), &id]);
    assert_eq!(out.status.code(), Some(128 + 9), "{}", stderr(&out));
    assert!(!env.root.join(&id).exists());
}

#[test]
fn create_start_state_kill_delete() {
    require_root!();
    let env = Env::new("life", &["sleep", "100"]);
    let id = unique_id("life");
    let guard = env.create(&id);
    let st = env.state(&id);
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], id.as_str());
    assert_eq!(st["ociVersion"], "1.0.2-dev");
    assert_eq!(st["bundle"], env.bundle_str());
    assert!(st["rootfs"]
        .as_str()
        .is_some_and(|r| r.ends_with("/rootfs")));
    assert!(st["created"].is_string());
    assert!(st["owner"].is_string());
    let pid = st["pid"].as_i64().expect("pid");
    assert!(pid > 0);
    // The init waits on exec.fifo: not yet running the user's process.
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("cmdline");
    assert!(!String::from_utf8_lossy(&cmdline).contains("sleep"));

    // Creating the same id again is a conflict.
    let dup = env.rt(&["create", "--bundle", env.bundle_str(), &id]);
    assert_eq!(dup.status.code(), Some(1));
    assert!(stderr(&dup).contains("exists"), "{}", stderr(&dup));

    env.ok(&["start", &id]);
    env.wait_status(&id, "running");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("cmdline");
    assert!(String::from_utf8_lossy(&cmdline).starts_with("sleep"));
    // A second start is refused.
    assert!(!env.rt(&["start", &id]).status.success());
    // delete without --force refuses a running container.
    let del = env.rt(&["delete", &id]);
    assert_eq!(del.status.code(), Some(1));
    assert!(stderr(&del).contains("running"), "{}", stderr(&del));

    env.ok(&["kill", &id, "KILL"]);
    env.wait_status(&id, "stopped");
    assert_eq!(env.state(&id)["pid"], 0);
    env.ok(&["delete", &id]);
    assert!(!env.root.join(&id).exists());
    assert!(cgroup_leftovers(&id).is_empty());
    let gone = env.rt(&["state", &id]);
    assert_eq!(gone.status.code(), Some(1));
    assert!(
        stderr(&gone).contains("does not exist"),
        "{}",
        stderr(&gone)
    );
    drop(guard);
}

#[test]
fn kill_accepts_signal_names_and_numbers() {
    require_root!();
    // The shell traps USR1 and TERM and records them.
    let env = Env::new("sig", &["sh", "-c", "trap 'echo usr1 >> /tmp/log' USR1; trap 'echo term >> /tmp/log; exit 0' TERM; while true; do sleep 0.05; done"]);
    let id = unique_id("sig");
    let _g = env.create(&id);
    env.ok(&["start", &id]);
    env.wait_status(&id, "running");
    std::thread::sleep(Duration::from_millis(200));
    env.ok(&["kill", &id, "SIGUSR1"]);
    wait_file(&env.rootfs("/tmp/log"), |s| s.contains("usr1"));
    env.ok(&["kill", &id, "10"]);
    wait_file(&env.rootfs("/tmp/log"), |s| s.matches("usr1").count() == 2);
    env.ok(&["kill", &id]);
    wait_file(&env.rootfs("/tmp/log"), |s| s.contains("term"));
    env.wait_status(&id, "stopped");
    let bad = env.rt(&["kill", &id, "NOSUCHSIG"]);
    assert_eq!(bad.status.code(), Some(1));
    env.ok(&["delete", &id]);
}

#[test]
fn run_detached_and_delete_force() {
    require_root!();
    let env = Env::new("detach", &["sleep", "100"]);
    let id = unique_id("detach");
    let _g = env.guard(&id);
    let pidfile = env.tmp.join("pid");
    env.ok(&[
        "run",
        "-d",
        "--pid-file",
        pidfile.to_str().expect("utf8"),
        "--bundle",
        env.bundle_str(),
        &id,
    ]);
    assert_eq!(env.status(&id), "running");
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid");
    assert_eq!(env.state(&id)["pid"].as_i64(), Some(i64::from(pid)));
    env.ok(&["delete", "--force", &id]);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}/stat")).exists() || {
            // it may still be a zombie of our reaper; it must not be running
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s.contains(") Z"))
                .unwrap_or(true)
        }
    );
    assert!(!env.root.join(&id).exists());
    assert!(cgroup_leftovers(&id).is_empty());
}

#[test]
fn kill_all_signals_every_process() {
    require_root!();
    // No pid namespace: killing the init would not take the children along.
    let env = Env::new("killall", &["sh", "-c", "sleep 100 & sleep 100 & wait"]);
    env.edit(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().expect("namespaces");
        ns.retain(|n| n["type"] != "pid");
    });
    let id = unique_id("killall");
    let _g = env.create(&id);
    env.ok(&["start", &id]);
    env.wait_status(&id, "running");
    let json = env.ok(&["ps", "--format", "json", &id]);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut pids: Vec<i32> = serde_json::from_str(&json).expect("ps json");
    while pids.len() < 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        pids = serde_json::from_str(&env.ok(&["ps", "--format", "json", &id])).expect("ps json");
    }
    assert_eq!(pids.len(), 3, "{pids:?}");
    env.ok(&["kill", "--all", &id, "KILL"]);
    env.wait_status(&id, "stopped");
    // The signals are sent to a frozen cgroup, which is then thawed: each
    // process dies on its own schedule (in D while it exits) after the init.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    for p in pids {
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            if stat.is_empty() || stat.contains(") Z") {
                break;
            }
            let wchan = std::fs::read_to_string(format!("/proc/{p}/wchan")).unwrap_or_default();
            assert!(
                std::time::Instant::now() < deadline,
                "{p} survived: {stat} (wchan {wchan})"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    env.ok(&["delete", &id]);
}

#[test]
fn pause_and_resume_freeze_the_container() {
    require_root!();
    let env = Env::new(
        "pause",
        &[
            "sh",
            "-c",
            "i=0; while true; do i=$((i+1)); echo $i > /tmp/c.tmp; mv /tmp/c.tmp /tmp/counter; sleep 0.02; done",
        ],
    );
    let id = unique_id("pause");
    let _g = env.create(&id);
    env.ok(&["start", &id]);
    let counter = env.rootfs("/tmp/counter");
    wait_file(&counter, |s| s.trim().parse::<u64>().is_ok_and(|n| n > 2));
    env.ok(&["pause", &id]);
    assert_eq!(env.status(&id), "paused");
    std::thread::sleep(Duration::from_millis(100));
    let frozen = std::fs::read_to_string(&counter).expect("counter");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        std::fs::read_to_string(&counter).expect("counter"),
        frozen,
        "progressed while paused"
    );
    // pause twice is refused, resume works once.
    assert!(!env.rt(&["pause", &id]).status.success());
    env.ok(&["resume", &id]);
    assert_eq!(env.status(&id), "running");
    let before: u64 = frozen.trim().parse().expect("n");
    wait_file(&counter, |s| {
        s.trim().parse::<u64>().is_ok_and(|n| n > before + 2)
    });
    assert!(!env.rt(&["resume", &id]).status.success());
    // delete --force of a paused container works too.
    env.ok(&["pause", &id]);
    env.ok(&["delete", "--force", &id]);
    assert!(cgroup_leftovers(&id).is_empty());
}

#[test]
fn list_shows_runc_columns() {
    require_root!();
    let env = Env::new("list", &["sleep", "100"]);
    let a = unique_id("lista");
    let b = unique_id("listb");
    let _ga = env.create(&a);
    let _gb = env.create(&b);
    env.ok(&["start", &b]);
    let table = env.ok(&["list"]);
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().expect("header").split_whitespace().collect();
    assert_eq!(
        header,
        ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0][0], a);
    assert_eq!(rows[0][2], "created");
    assert_eq!(rows[1][2], "running");
    assert_eq!(rows[1][5], "root");
    let quiet = env.ok(&["list", "-q"]);
    assert_eq!(quiet.lines().collect::<Vec<_>>(), [a.as_str(), b.as_str()]);
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["list", "--format", "json"])).expect("json");
    assert_eq!(json.as_array().map(Vec::len), Some(2));
    assert_eq!(json[1]["status"], "running");
}

#[test]
fn features_has_runcs_shape() {
    let out = std::process::Command::new(BIN)
        .arg("features")
        .output()
        .expect("features");
    assert!(out.status.success());
    let f: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(f["ociVersionMin"].is_string() && f["ociVersionMax"].is_string());
    assert!(f["hooks"].as_array().is_some_and(|h| h.len() == 6));
    assert!(f["mountOptions"]
        .as_array()
        .is_some_and(|m| m.iter().any(|o| o == "rbind")));
    let ns = f["linux"]["namespaces"].as_array().expect("namespaces");
    assert!(ns.iter().any(|n| n == "time"));
    assert!(f["linux"]["capabilities"]
        .as_array()
        .is_some_and(|c| c.iter().any(|c| c == "CAP_SYS_ADMIN")));
    assert_eq!(f["linux"]["cgroup"]["v1"], true);
    assert_eq!(f["linux"]["seccomp"]["enabled"], true);
    assert!(
        f["linux"]["apparmor"].is_object()
            && f["linux"]["selinux"].is_object()
            && f["linux"]["intelRdt"].is_object()
    );
    assert!(f["annotations"].is_object());
}

#[test]
fn systemd_cgroup_is_refused() {
    let out = std::process::Command::new(BIN)
        .args(["--systemd-cgroup", "list"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--systemd-cgroup is not supported"));
    assert_eq!(stderr(&out).lines().count(), 1);
}
