//! The manager for this host's cgroup mode on real cgroups, as root. Each
//! test makes its own cgroup, /berth-test-<pid>-<n>-<name>, and a guard
//! kills whatever runs in it and removes it, also when the test fails.

mod real_support;

use std::fs;
use std::path::Path;
use std::time::Duration;

use berth_cgroups::{manager, CgroupMode};
use berth_testutil::require_root;
use oci_spec::runtime::{
    LinuxCpuBuilder, LinuxDeviceType, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResourcesBuilder,
};
use real_support::*;

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
fn destroy_with_a_live_process_fails_fast_and_then_succeeds() {
    require_root!();
    let cg = TestCgroup::new("busy");
    cg.manager.create().unwrap();
    let mut script = Script::spawn("echo in; read stop");
    cg.manager.add_task(script.pid()).unwrap();
    script.go();
    assert_eq!(script.line(), "in");
    let start = std::time::Instant::now();
    let err = cg.manager.destroy().unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(err.kind(), berth_cgroups::ErrorKind::Busy, "{err}");
    assert!(
        err.to_string()
            .contains(&cg.manager.path().display().to_string()),
        "{err}"
    );
    drop(script);
    // The exited process leaves the cgroup asynchronously; destroy waits.
    cg.manager.destroy().unwrap();
    assert!(cg.manager.pids().is_err(), "the cgroup is gone");
}
