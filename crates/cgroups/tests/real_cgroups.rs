//! The managers on this host's real cgroups, as root. Each test makes its
//! own cgroup, /berth-test-<pid>-<n>-<name>, and a guard kills whatever
//! runs in it and removes it, also when the test fails.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use berth_cgroups::{manager, manager_at, CgroupManager, CgroupMode, Hierarchy};
use berth_testutil::{require_root, BUSYBOX};
use oci_spec::runtime::{
    LinuxCpuBuilder, LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType,
    LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResourcesBuilder,
};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn unique_path(name: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    PathBuf::from(format!("/berth-test-{}-{n}-{name}", std::process::id()))
}

/// A busybox shell script that waits for a line on stdin before it runs,
/// so that it can be moved into the cgroup first.
struct Script {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Script {
    fn spawn(script: &str) -> Script {
        let mut child = Command::new(BUSYBOX)
            .args(["sh", "-c", &format!("read go; {script}")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn busybox sh");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Script {
            child,
            stdin,
            stdout,
        }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn go(&mut self) {
        let stdin = self.stdin.as_mut().expect("stdin");
        stdin.write_all(b"go\n").expect("start the script");
        stdin.flush().expect("flush");
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("read a line from the script");
        line.trim().to_string()
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The test's cgroup: on drop, thaws it, kills everything in it and removes
/// it from every hierarchy.
struct TestCgroup {
    manager: Box<dyn CgroupManager>,
    unified_root_before: Option<String>,
}

impl TestCgroup {
    fn new(name: &str) -> TestCgroup {
        let manager = manager(&unique_path(name)).expect("cgroup manager for this host");
        TestCgroup {
            manager,
            unified_root_before: None,
        }
    }

    /// A pure-v2 manager over the hybrid host's cgroup2 tree, to exercise
    /// the v2 code on real cgroup2 (device programs and cgroup.freeze work
    /// there without controllers).
    fn on_unified_tree(name: &str) -> Option<TestCgroup> {
        let h = berth_cgroups::hierarchies()
            .expect("hierarchies")
            .into_iter()
            .find(|h| h.version == 2)?;
        let before = fs::read_to_string(h.mount_point.join("cgroup.subtree_control")).ok();
        let mount_point = h.mount_point.clone();
        let manager = manager_at(
            CgroupMode::Unified,
            vec![Hierarchy {
                version: 2,
                mount_point,
                controllers: vec![],
            }],
            &unique_path(name),
        )
        .expect("v2 manager");
        Some(TestCgroup {
            manager,
            unified_root_before: before,
        })
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = self.manager.thaw();
        for _ in 0..50 {
            let pids = self.manager.pids().unwrap_or_default();
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Err(e) = self.manager.destroy() {
            eprintln!("cleanup of {} failed: {e}", self.manager.path().display());
        }
        // A v2 manager enables the root's controllers for its subtree, as
        // runc does; on this shared host put the root back as it was.
        if let Some(before) = &self.unified_root_before {
            if let Some(h) = berth_cgroups::hierarchies()
                .ok()
                .and_then(|h| h.into_iter().find(|h| h.version == 2))
            {
                let file = h.mount_point.join("cgroup.subtree_control");
                let now = fs::read_to_string(&file).unwrap_or_default();
                for c in now
                    .split_whitespace()
                    .filter(|c| !before.split_whitespace().any(|b| b == *c))
                {
                    let _ = fs::write(&file, format!("-{c}"));
                }
            }
        }
    }
}

fn v1_dir(controller: &str, path: &Path) -> PathBuf {
    let h = berth_cgroups::hierarchies()
        .unwrap()
        .into_iter()
        .find(|h| h.version == 1 && h.controllers.iter().any(|c| c == controller))
        .unwrap_or_else(|| panic!("no v1 {controller} hierarchy"));
    h.mount_point.join(path.strip_prefix("/").unwrap())
}

fn unified_dir(path: &Path) -> PathBuf {
    let h = berth_cgroups::hierarchies()
        .unwrap()
        .into_iter()
        .find(|h| h.version == 2)
        .expect("cgroup2 mount");
    h.mount_point.join(path.strip_prefix("/").unwrap())
}

fn read_trim(path: impl AsRef<Path>) -> String {
    fs::read_to_string(path.as_ref())
        .unwrap_or_else(|e| panic!("{}: {e}", path.as_ref().display()))
        .trim()
        .to_string()
}

fn proc_state(pid: i32) -> char {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The state follows the parenthesised command name.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    after.chars().next().unwrap()
}

fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn device(
    allow: bool,
    typ: Option<LinuxDeviceType>,
    major: i64,
    minor: i64,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut b = LinuxDeviceCgroupBuilder::default()
        .allow(allow)
        .access(access);
    if let Some(t) = typ {
        b = b.typ(t).major(major).minor(minor);
    }
    b.build().unwrap()
}

fn host_mode() -> CgroupMode {
    berth_cgroups::detect_mode().expect("detect the cgroup mode")
}

#[test]
fn limits_are_written_and_read_back_as_the_kernel_stores_them() {
    require_root!();
    let cg = TestCgroup::new("limits");
    let m = &cg.manager;
    m.create().unwrap();
    m.create().expect("create is idempotent");
    let res = LinuxResourcesBuilder::default()
        // Not a multiple of the page size: the kernel rounds it down.
        .memory(
            LinuxMemoryBuilder::default()
                .limit(100_000_001i64)
                .build()
                .unwrap(),
        )
        .cpu(
            LinuxCpuBuilder::default()
                .shares(512u64)
                .quota(50_000i64)
                .period(100_000u64)
                .build()
                .unwrap(),
        )
        .pids(LinuxPidsBuilder::default().limit(20i64).build().unwrap())
        .devices(vec![
            device(false, None, 0, 0, "rwm"),
            device(true, Some(LinuxDeviceType::C), 1, 3, "rwm"),
            device(true, Some(LinuxDeviceType::C), 136, -1, "rw"),
        ])
        .build()
        .unwrap();
    m.apply(&res).unwrap();
    match host_mode() {
        CgroupMode::Legacy | CgroupMode::Hybrid => {
            let p = m.path();
            assert_eq!(
                read_trim(v1_dir("memory", p).join("memory.limit_in_bytes")),
                "99999744"
            );
            assert_eq!(
                read_trim(v1_dir("cpu", p).join("cpu.cfs_quota_us")),
                "50000"
            );
            assert_eq!(
                read_trim(v1_dir("cpu", p).join("cpu.cfs_period_us")),
                "100000"
            );
            assert_eq!(read_trim(v1_dir("cpu", p).join("cpu.shares")), "512");
            assert_eq!(read_trim(v1_dir("pids", p).join("pids.max")), "20");
            let devices = v1_dir("devices", p);
            assert_eq!(
                read_trim(devices.join("devices.list")),
                "c 1:3 rwm\nc 136:* rw"
            );
            // An update with a child cgroup present: the kernel refuses a
            // reset ("a") then, so only the difference may be written.
            fs::create_dir(devices.join("child")).unwrap();
            let update = LinuxResourcesBuilder::default()
                .devices(vec![
                    device(false, None, 0, 0, "rwm"),
                    device(true, Some(LinuxDeviceType::C), 1, 3, "rw"),
                    device(true, Some(LinuxDeviceType::C), 1, 5, "rwm"),
                ])
                .build()
                .unwrap();
            let updated = m.apply(&update);
            fs::remove_dir(devices.join("child")).unwrap();
            updated.unwrap();
            assert_eq!(
                read_trim(devices.join("devices.list")),
                "c 1:3 rw\nc 1:5 rwm"
            );
            if host_mode() == CgroupMode::Hybrid {
                assert!(
                    unified_dir(p).is_dir(),
                    "the cgroup2 side tree gets the cgroup too"
                );
                // linux.resources.unified goes to the cgroup2 side; a core
                // file works there without controllers.
                let res = LinuxResourcesBuilder::default()
                    .unified(std::collections::HashMap::from([(
                        "cgroup.max.descendants".to_string(),
                        "7".to_string(),
                    )]))
                    .build()
                    .unwrap();
                m.apply(&res).unwrap();
                assert_eq!(
                    read_trim(unified_dir(p).join("cgroup.max.descendants")),
                    "7"
                );
            }
            // pids.max lifted again; stats see both.
            let res = LinuxResourcesBuilder::default()
                .pids(LinuxPidsBuilder::default().limit(-1i64).build().unwrap())
                .build()
                .unwrap();
            m.apply(&res).unwrap();
            assert_eq!(read_trim(v1_dir("pids", p).join("pids.max")), "max");
            // A memory limit of zero pages.
            let res = LinuxResourcesBuilder::default()
                .memory(LinuxMemoryBuilder::default().limit(1i64).build().unwrap())
                .build()
                .unwrap();
            m.apply(&res).expect("an empty cgroup accepts any limit");
            assert_eq!(
                read_trim(v1_dir("memory", p).join("memory.limit_in_bytes")),
                "0"
            );
        }
        CgroupMode::Unified => {
            let dir = unified_dir(m.path());
            assert_eq!(read_trim(dir.join("memory.max")), "99999744");
            assert_eq!(read_trim(dir.join("cpu.max")), "50000 100000");
            assert_eq!(read_trim(dir.join("pids.max")), "20");
        }
    }
    let path = m.path().to_path_buf();
    m.destroy().unwrap();
    m.destroy().expect("destroy is idempotent");
    if host_mode() != CgroupMode::Unified {
        assert!(!v1_dir("memory", &path).exists());
        assert!(!v1_dir("pids", &path).exists());
    }
    assert!(!unified_dir(&path).exists());
}

#[test]
fn nested_cgroups_get_cpuset_from_their_parents() {
    require_root!();
    let parent = TestCgroup::new("nest");
    let child = TestCgroup {
        manager: manager(&parent.manager.path().join("inner")).unwrap(),
        unified_root_before: None,
    };
    child.manager.create().unwrap();
    if host_mode() != CgroupMode::Unified {
        let root_cpus = read_trim(
            v1_dir("cpuset", Path::new("/x"))
                .parent()
                .unwrap()
                .join("cpuset.cpus"),
        );
        for p in [parent.manager.path(), child.manager.path()] {
            let dir = v1_dir("cpuset", p);
            assert_eq!(
                read_trim(dir.join("cpuset.cpus")),
                root_cpus,
                "{}",
                dir.display()
            );
            assert!(!read_trim(dir.join("cpuset.mems")).is_empty());
        }
    }
    // A task can join the nested cgroup (an empty cpuset would refuse it).
    let mut script = Script::spawn("echo in");
    child.manager.add_task(script.pid()).unwrap();
    script.go();
    assert_eq!(script.line(), "in");
    // The child guard is dropped first (reverse order), then the parent.
    drop(script);
    drop(child);
    parent.manager.destroy().unwrap();
    assert!(!unified_dir(parent.manager.path()).exists());
}

#[test]
fn add_task_moves_a_process_everywhere_and_pids_lists_it() {
    require_root!();
    let cg = TestCgroup::new("tasks");
    cg.manager.create().unwrap();
    let mut script = Script::spawn("/bin/busybox sleep 30 & echo $!; wait");
    cg.manager.add_task(script.pid()).unwrap();
    script.go();
    let grandchild: i32 = script.line().parse().unwrap();
    let pids = cg.manager.pids().unwrap();
    assert_eq!(pids, {
        let mut v = vec![script.pid(), grandchild];
        v.sort();
        v
    });
    let own = fs::read_to_string(format!("/proc/{grandchild}/cgroup")).unwrap();
    let path = cg.manager.path().display().to_string();
    let lines: Vec<&str> = own
        .lines()
        .filter(|l| l.ends_with(&format!(":{path}")))
        .collect();
    let hierarchies = berth_cgroups::hierarchies().unwrap();
    assert_eq!(lines.len(), hierarchies.len(), "in every hierarchy: {own}");
}

#[test]
fn freeze_stops_a_process_and_thaw_resumes_it() {
    require_root!();
    let cg = TestCgroup::new("freeze");
    cg.manager.create().unwrap();
    let tmp = berth_testutil::TempDir::new("cgfreeze").unwrap();
    let ticks = tmp.join("ticks");
    let mut script = Script::spawn(&format!(
        "while :; do echo x >> {}; /bin/busybox usleep 10000; done",
        ticks.display()
    ));
    cg.manager.add_task(script.pid()).unwrap();
    script.go();
    let size = || fs::metadata(&ticks).map(|m| m.len()).unwrap_or(0);
    wait_until("the loop to run", Duration::from_secs(5), || size() > 4);

    cg.manager.freeze().unwrap();
    assert!(cg.manager.is_frozen().unwrap());
    if matches!(host_mode(), CgroupMode::Legacy | CgroupMode::Hybrid) {
        assert_eq!(
            read_trim(v1_dir("freezer", cg.manager.path()).join("freezer.state")),
            "FROZEN"
        );
        // v1 frozen tasks show as uninterruptible.
        assert_eq!(proc_state(script.pid()), 'D');
    }
    let frozen_at = size();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(size(), frozen_at, "no progress while frozen");

    cg.manager.thaw().unwrap();
    assert!(!cg.manager.is_frozen().unwrap());
    wait_until("progress after thaw", Duration::from_secs(5), || {
        size() > frozen_at
    });
    assert_ne!(proc_state(script.pid()), 'D');
}

#[test]
fn pids_limit_stops_forks() {
    require_root!();
    let cg = TestCgroup::new("pidsmax");
    cg.manager.create().unwrap();
    let res = LinuxResourcesBuilder::default()
        .pids(LinuxPidsBuilder::default().limit(5i64).build().unwrap())
        .build()
        .unwrap();
    cg.manager.apply(&res).unwrap();
    // ash gives up when a background fork fails, so the shell exits once
    // the limit is hit and leaves the sleeps it could start.
    let mut script = Script::spawn(
        "i=0; while [ $i -lt 20 ]; do /bin/busybox sleep 30 >/dev/null 2>&1 & i=$((i+1)); done; echo all-spawned",
    );
    cg.manager.add_task(script.pid()).unwrap();
    script.go();
    let stderr = script.child.wait_with_output_keep();
    assert!(
        stderr.contains("can't fork"),
        "the shell reports the failed fork: {stderr}"
    );
    let pids = cg.manager.pids().unwrap();
    assert_eq!(
        pids.len(),
        4,
        "four sleeps besides the shell made the five: {pids:?}"
    );
    let stats = cg.manager.stats().unwrap();
    assert_eq!(stats.pids.current, 4);
    assert_eq!(stats.pids.limit, 5);
    let failed = v1_or_v2_pids_events(cg.manager.path());
    assert!(failed > 0, "pids.events max {failed}");
}

fn v1_or_v2_pids_events(path: &Path) -> u64 {
    let dir = match host_mode() {
        CgroupMode::Unified => unified_dir(path),
        _ => v1_dir("pids", path),
    };
    let events = read_trim(dir.join("pids.events"));
    events
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Reads what the child wrote to stderr so far, after it exited.
trait StderrText {
    fn wait_with_output_keep(&mut self) -> String;
}

impl StderrText for Child {
    fn wait_with_output_keep(&mut self) -> String {
        let _ = self.wait();
        let mut s = String::new();
        if let Some(mut e) = self.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut s);
        }
        s
    }
}

#[test]
fn memory_limit_oom_kills_a_memory_hog() {
    require_root!();
    let cg = TestCgroup::new("oom");
    cg.manager.create().unwrap();
    let limit = 32 * 1024 * 1024i64;
    let res = LinuxResourcesBuilder::default()
        // memory+swap equal to memory: no swapping out of the OOM.
        .memory(
            LinuxMemoryBuilder::default()
                .limit(limit)
                .swap(limit)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    cg.manager.apply(&res).unwrap();
    assert_eq!(cg.manager.oom_kill_count().unwrap(), 0);
    // dd reads into one buffer of `bs` bytes: 200 MiB of touched memory.
    let mut script =
        Script::spawn("/bin/busybox dd if=/dev/zero of=/dev/null bs=200M count=1; echo rc=$?");
    cg.manager.add_task(script.pid()).unwrap();
    script.go();
    assert_eq!(script.line(), "rc=137", "dd is SIGKILLed by the OOM killer");
    script.child.wait().unwrap();
    let kills = cg.manager.oom_kill_count().unwrap();
    assert!(kills > 0, "oom_kill count {kills}");
    let stats = cg.manager.stats().unwrap();
    // (failcnt stays 0 on this 6.x kernel even as the OOM killer runs, so
    // the peak usage is what shows the limit was reached.)
    assert!(
        stats.memory.usage.max <= limit as u64 && stats.memory.usage.max > limit as u64 / 2,
        "{:?}",
        stats.memory.usage
    );
    assert_eq!(stats.memory.usage.limit, limit as u64);
}

#[test]
fn stats_report_sane_numbers() {
    require_root!();
    let cg = TestCgroup::new("stats");
    cg.manager.create().unwrap();
    let res = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(256 * 1024 * 1024i64)
                .build()
                .unwrap(),
        )
        .pids(LinuxPidsBuilder::default().limit(50i64).build().unwrap())
        .build()
        .unwrap();
    cg.manager.apply(&res).unwrap();
    let mut script = Script::spawn(
        "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; echo busy-done; read stop",
    );
    cg.manager.add_task(script.pid()).unwrap();
    script.go();
    assert_eq!(script.line(), "busy-done");
    let s = cg.manager.stats().unwrap();
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    assert!(
        s.cpu.usage.total > 10_000_000,
        "at least 10 ms of CPU: {:?}",
        s.cpu.usage
    );
    assert!(s.cpu.usage.total < 600_000_000_000);
    assert!(s.cpu.usage.user + s.cpu.usage.kernel > 0);
    if host_mode() != CgroupMode::Unified {
        assert!(s.cpu.usage.percpu.len() >= cpus, "{:?}", s.cpu.usage.percpu);
        let sum: u64 = s.cpu.usage.percpu.iter().sum();
        assert!(sum.abs_diff(s.cpu.usage.total) <= s.cpu.usage.total / 10 + 1_000_000);
    }
    assert!(s.memory.usage.usage > 0 && s.memory.usage.usage < 256 * 1024 * 1024);
    assert_eq!(s.memory.usage.limit, 256 * 1024 * 1024);
    assert!(!s.memory.raw.is_empty());
    assert_eq!(s.pids.current, 1);
    assert_eq!(s.pids.limit, 50);
    let json = serde_json::to_value(&s).unwrap();
    assert!(json["cpu"]["usage"]["total"].as_u64().unwrap() > 0);
    assert_eq!(json["pids"]["limit"], 50);
    eprintln!("stats: {json}");
}

#[test]
fn v2_device_program_denies_dev_null_on_the_cgroup2_tree() {
    require_root!();
    let Some(cg) = TestCgroup::on_unified_tree("bpfdev") else {
        eprintln!("SKIPPED: no cgroup2 hierarchy mounted");
        return;
    };
    cg.manager.create().unwrap();
    let deny_null = LinuxResourcesBuilder::default()
        .devices(vec![
            device(false, None, 0, 0, "rwm"),
            device(true, Some(LinuxDeviceType::C), 1, 5, "rwm"),
        ])
        .build()
        .unwrap();
    cg.manager.apply(&deny_null).unwrap();
    let probe = "if echo x > /dev/null; then echo null-ok; else echo null-denied; fi; \
                 /bin/busybox head -c 3 /dev/zero | /bin/busybox wc -c; read again; \
                 if echo x > /dev/null; then echo null-ok; else echo null-denied; fi";

    // Outside the cgroup the same script opens /dev/null.
    let mut control = Script::spawn(probe);
    control.go();
    assert_eq!(control.line(), "null-ok");

    let mut script = Script::spawn(probe);
    cg.manager.add_task(script.pid()).unwrap();
    let own = fs::read_to_string(format!("/proc/{}/cgroup", script.pid())).unwrap();
    assert!(
        own.lines()
            .any(|l| l.starts_with("0::") && l.ends_with(&cg.manager.path().display().to_string())),
        "{own}"
    );
    script.go();
    assert_eq!(script.line(), "null-denied");
    assert_eq!(script.line(), "3", "/dev/zero (1:5) stays allowed");

    // An update replaces the program: allowing 1:3 takes effect, so the
    // old, denying program is gone (all attached programs must allow).
    let allow_null = LinuxResourcesBuilder::default()
        .devices(vec![
            device(false, None, 0, 0, "rwm"),
            device(true, Some(LinuxDeviceType::C), 1, 5, "rwm"),
            device(true, Some(LinuxDeviceType::C), 1, 3, "rw"),
        ])
        .build()
        .unwrap();
    cg.manager.apply(&allow_null).unwrap();
    script
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"again\n")
        .unwrap();
    assert_eq!(script.line(), "null-ok");
}

#[test]
fn v2_freeze_works_on_the_cgroup2_tree() {
    require_root!();
    let Some(cg) = TestCgroup::on_unified_tree("v2freeze") else {
        eprintln!("SKIPPED: no cgroup2 hierarchy mounted");
        return;
    };
    cg.manager.create().unwrap();
    let mut script = Script::spawn("/bin/busybox sleep 30; echo done");
    cg.manager.add_task(script.pid()).unwrap();
    script.go();
    let sleeper = || {
        cg.manager
            .pids()
            .unwrap()
            .into_iter()
            .find(|p| *p != script.pid())
    };
    wait_until("sleep to start", Duration::from_secs(5), || {
        sleeper().is_some()
    });
    let sleeper = sleeper().unwrap();
    cg.manager.freeze().unwrap();
    assert!(cg.manager.is_frozen().unwrap());
    let events = read_trim(unified_dir(cg.manager.path()).join("cgroup.events"));
    assert!(events.contains("frozen 1"), "{events}");
    let wchan = read_trim(format!("/proc/{sleeper}/wchan"));
    // do_freezer_trap() is often inlined into get_signal().
    assert!(
        ["do_freezer_trap", "get_signal"].contains(&wchan.as_str()),
        "the sleeper waits in the freezer, not in {wchan}"
    );
    cg.manager.thaw().unwrap();
    assert!(!cg.manager.is_frozen().unwrap());
    let events = read_trim(unified_dir(cg.manager.path()).join("cgroup.events"));
    assert!(events.contains("frozen 0"), "{events}");
}
