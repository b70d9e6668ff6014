//! The hybrid and v2 managers over a fake cgroupfs: no root and no /sys
//! needed.

mod fake_support;

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use berth_cgroups::{manager_at, CgroupMode, ErrorKind};
use fake_support::*;
use oci_spec::runtime::{
    LinuxCpuBuilder, LinuxMemoryBuilder, LinuxNetworkBuilder, LinuxPidsBuilder,
    LinuxResourcesBuilder,
};

#[test]
fn hybrid_uses_v1_for_resources_and_the_unified_tree_for_unified_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut hierarchies, leaf) = fake_v1(tmp.path(), "/berth/h1");
    let unified_leaf = fake_v2(&tmp.path().join("unified"), "/berth/h1");
    hierarchies.push(v2_hierarchy(&tmp.path().join("unified")));
    let m = manager_at(CgroupMode::Hybrid, hierarchies, Path::new("/berth/h1")).unwrap();
    assert_eq!(m.mode(), CgroupMode::Hybrid);
    m.create().unwrap();
    // The side tree's controllers are not delegated.
    assert_eq!(read(tmp.path().join("unified/cgroup.subtree_control")), "");
    let mut res = full_resources();
    res.set_unified(Some(HashMap::from([(
        "memory.high".to_string(),
        "50000000".to_string(),
    )])));
    m.apply(&res).unwrap();
    assert_eq!(read(unified_leaf.join("memory.high")), "50000000");
    assert_eq!(read(leaf["pids"].join("pids.max")), "10");
    m.add_task(4242).unwrap();
    for c in ["memory", "pids", "cpu", "name=systemd"] {
        assert_eq!(read(leaf[c].join("cgroup.procs")), "4242", "{c}");
    }
    assert_eq!(read(unified_leaf.join("cgroup.procs")), "4242");
    // A fake cgroup.procs lists what was written.
    assert_eq!(m.pids().unwrap(), vec![4242]);
    // Freezing goes through the v1 freezer.
    m.freeze().unwrap();
    assert_eq!(read(leaf["freezer"].join("freezer.state")), "FROZEN");
    assert!(m.is_frozen().unwrap());
    assert_eq!(read(unified_leaf.join("cgroup.freeze")), "");
}

#[test]
fn hybrid_without_a_cgroup2_mount_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (hierarchies, _) = fake_v1(tmp.path(), "/c");
    let err = manager_at(CgroupMode::Hybrid, hierarchies, Path::new("/c"))
        .err()
        .unwrap();
    assert!(err.to_string().contains("cgroup2"), "{err}");
}

#[test]
fn v2_create_enables_controllers_along_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let leaf = fake_v2(tmp.path(), "/berth/v1");
    let m = manager_at(
        CgroupMode::Unified,
        vec![v2_hierarchy(tmp.path())],
        Path::new("/berth/v1"),
    )
    .unwrap();
    assert_eq!(m.mode(), CgroupMode::Unified);
    m.create().unwrap();
    let all = "+cpuset +cpu +io +memory +hugetlb +pids";
    assert_eq!(read(tmp.path().join("cgroup.subtree_control")), all);
    assert_eq!(read(tmp.path().join("berth/cgroup.subtree_control")), all);
    assert_eq!(
        read(leaf.join("cgroup.subtree_control")),
        "",
        "the leaf keeps its processes"
    );
}

#[test]
fn v2_apply_converts_oci_values() {
    let tmp = tempfile::tempdir().unwrap();
    let leaf = fake_v2(tmp.path(), "/berth/v2");
    let m = manager_at(
        CgroupMode::Unified,
        vec![v2_hierarchy(tmp.path())],
        Path::new("/berth/v2"),
    )
    .unwrap();
    m.apply(&v2_resources()).unwrap();
    assert_eq!(
        read(leaf.join("cpu.weight")),
        "100",
        "1024 shares is the default weight"
    );
    assert_eq!(read(leaf.join("cpu.max")), "50000 100000");
    assert_eq!(read(leaf.join("cpu.idle")), "0");
    assert_eq!(read(leaf.join("cpuset.cpus")), "0");
    assert_eq!(read(leaf.join("memory.max")), "104857600");
    assert_eq!(
        read(leaf.join("memory.swap.max")),
        "104857600",
        "swap = memory+swap - memory"
    );
    assert_eq!(read(leaf.join("memory.low")), "52428800");
    assert_eq!(read(leaf.join("memory.high")), "90000000");
    assert_eq!(read(leaf.join("pids.max")), "10");
    assert_eq!(
        read(leaf.join("io.weight")),
        format!("{}{}", 4950, "8:0 1920")
    );
    assert_eq!(
        read(leaf.join("io.max")),
        concat!("8:0 rbps=1048576", "8:0 wiops=100")
    );
    assert_eq!(read(leaf.join("hugetlb.2MB.max")), "4194304");

    // Unlimited: "max" everywhere.
    fs::write(leaf.join("cpu.max"), "").unwrap();
    fs::write(leaf.join("memory.max"), "").unwrap();
    fs::write(leaf.join("memory.swap.max"), "").unwrap();
    fs::write(leaf.join("pids.max"), "").unwrap();
    let res = LinuxResourcesBuilder::default()
        .cpu(
            LinuxCpuBuilder::default()
                .quota(-1i64)
                .period(100_000u64)
                .build()
                .unwrap(),
        )
        .memory(LinuxMemoryBuilder::default().limit(-1i64).build().unwrap())
        .pids(LinuxPidsBuilder::default().limit(0i64).build().unwrap())
        .build()
        .unwrap();
    m.apply(&res).unwrap();
    assert_eq!(read(leaf.join("cpu.max")), "max 100000");
    assert_eq!(read(leaf.join("memory.max")), "max");
    assert_eq!(read(leaf.join("memory.swap.max")), "max");
    assert_eq!(read(leaf.join("pids.max")), "max");

    // Without swap accounting, "no swap" needs no file.
    fs::remove_file(leaf.join("memory.swap.max")).unwrap();
    let res = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(5000i64)
                .swap(5000i64)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    m.apply(&res).unwrap();
    let res = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(5000i64)
                .swap(9000i64)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    assert_eq!(m.apply(&res).unwrap_err().kind(), ErrorKind::NotFound);

    // checkBeforeUpdate refuses a limit below the usage (8192 here).
    fs::write(leaf.join("memory.max"), "").unwrap();
    let res = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(4096i64)
                .check_before_update(true)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let err = m.apply(&res).unwrap_err();
    assert!(err.to_string().contains("8192"), "{err}");
    assert_eq!(read(leaf.join("memory.max")), "");
}

#[test]
fn v2_refuses_what_it_cannot_do() {
    let tmp = tempfile::tempdir().unwrap();
    let leaf = fake_v2(tmp.path(), "/v3");
    let m = manager_at(
        CgroupMode::Unified,
        vec![v2_hierarchy(tmp.path())],
        Path::new("/v3"),
    )
    .unwrap();
    let with_unified = |k: &str| {
        LinuxResourcesBuilder::default()
            .unified(HashMap::from([(k.to_string(), "1".to_string())]))
            .build()
            .unwrap()
    };
    for bad in ["../cgroup.procs", "a/b", "..", ""] {
        let err = m.apply(&with_unified(bad)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{bad}: {err}");
    }
    let err = m.apply(&with_unified("misc.max")).unwrap_err();
    assert!(err.to_string().contains("misc controller"), "{err}");

    let rt = LinuxResourcesBuilder::default()
        .cpu(
            LinuxCpuBuilder::default()
                .realtime_runtime(1000i64)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    assert!(m.apply(&rt).unwrap_err().to_string().contains("realtime"));
    let net = LinuxResourcesBuilder::default()
        .network(
            LinuxNetworkBuilder::default()
                .class_id(1u32)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    assert!(m.apply(&net).unwrap_err().to_string().contains("net_cls"));
    let swap_only = LinuxResourcesBuilder::default()
        .memory(LinuxMemoryBuilder::default().swap(1000i64).build().unwrap())
        .build()
        .unwrap();
    assert_eq!(
        m.apply(&swap_only).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );

    // A controller the cgroup does not have.
    fs::write(leaf.join("cgroup.controllers"), "cpu memory\n").unwrap();
    let pids = LinuxResourcesBuilder::default()
        .pids(LinuxPidsBuilder::default().limit(3i64).build().unwrap())
        .build()
        .unwrap();
    let err = m.apply(&pids).unwrap_err();
    assert!(err.to_string().contains("pids controller"), "{err}");
    assert_eq!(fs::read_to_string(leaf.join("pids.max")).unwrap(), "");
}

#[test]
fn v2_stats_oom_count_and_freeze_files() {
    let tmp = tempfile::tempdir().unwrap();
    let leaf = fake_v2(tmp.path(), "/s");
    let m = manager_at(
        CgroupMode::Unified,
        vec![v2_hierarchy(tmp.path())],
        Path::new("/s"),
    )
    .unwrap();
    fs::write(leaf.join("memory.max"), "max\n").unwrap();
    fs::write(leaf.join("memory.swap.max"), "max\n").unwrap();
    fs::write(leaf.join("pids.max"), "max\n").unwrap();
    let s = m.stats().unwrap();
    assert_eq!(s.cpu.usage.total, 1_500_000);
    assert_eq!(s.cpu.usage.user, 1_000_000);
    assert_eq!(s.cpu.usage.kernel, 500_000);
    assert_eq!(s.cpu.throttling.throttled_time, 20_000);
    assert_eq!(s.memory.usage.usage, 8192);
    assert_eq!(s.memory.usage.max, 16384);
    assert_eq!(s.memory.usage.failcnt, 5);
    assert_eq!(s.memory.usage.limit, u64::MAX);
    assert_eq!(s.memory.swap.usage, 8192, "swap is reported as memory+swap");
    assert_eq!(s.memory.cache, 2048);
    assert_eq!((s.pids.current, s.pids.limit), (2, 0));
    let bytes: Vec<(String, u64)> = s
        .blkio
        .io_service_bytes_recursive
        .iter()
        .map(|e| (e.op.clone(), e.value))
        .collect();
    assert_eq!(
        bytes,
        vec![("Read".to_string(), 4096), ("Write".to_string(), 8192)]
    );
    assert_eq!(s.blkio.io_serviced_recursive.len(), 2);
    assert_eq!(m.oom_kill_count().unwrap(), 1);

    // Freezing writes cgroup.freeze and waits for cgroup.events.
    fs::write(leaf.join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
    m.freeze().unwrap();
    assert_eq!(read(leaf.join("cgroup.freeze")), "1");
    assert!(m.is_frozen().unwrap());
}
