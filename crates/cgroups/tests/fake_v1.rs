//! The v1 manager over a fake cgroupfs: no root and no /sys needed.

mod fake_support;

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use berth_cgroups::{manager_at, CgroupMode, ErrorKind, Hierarchy};
use fake_support::*;
use oci_spec::runtime::{LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResourcesBuilder};

#[test]
fn v1_apply_writes_every_controller() {
    let tmp = tempfile::tempdir().unwrap();
    let (hierarchies, leaf) = fake_v1(tmp.path(), "/berth/c1");
    let m = manager_at(CgroupMode::Legacy, hierarchies, Path::new("/berth/c1")).unwrap();
    assert_eq!(m.mode(), CgroupMode::Legacy);
    assert_eq!(m.path(), Path::new("/berth/c1"));
    m.create().unwrap();
    m.apply(&full_resources()).unwrap();

    let mem = &leaf["memory"];
    // Limits grow: memory+swap first, then memory (current limit is huge,
    // so memory first here, then memory+swap).
    assert_eq!(
        read(mem.join("memory.limit_in_bytes")),
        format!("{UNLIMITED_V1}104857600")
    );
    assert_eq!(read(mem.join("memory.memsw.limit_in_bytes")), "209715200");
    assert_eq!(read(mem.join("memory.soft_limit_in_bytes")), "52428800");
    assert!(
        !mem.join("memory.kmem.limit_in_bytes").exists(),
        "absent kmem file is skipped, not created"
    );
    assert_eq!(read(mem.join("memory.kmem.tcp.limit_in_bytes")), "1048576");
    assert_eq!(read(mem.join("memory.swappiness")), "60");
    assert!(read(mem.join("memory.oom_control")).ends_with('1'));

    let cpu = &leaf["cpu"];
    assert_eq!(
        leaf["cpu"], leaf["cpuacct"],
        "co-mounted controllers share a directory"
    );
    assert_eq!(read(cpu.join("cpu.shares")), "512");
    assert_eq!(read(cpu.join("cpu.cfs_period_us")), "100000");
    assert_eq!(read(cpu.join("cpu.cfs_quota_us")), "50000");
    assert_eq!(read(cpu.join("cpu.rt_period_us")), "1000000");
    assert_eq!(
        read(cpu.join("cpu.rt_runtime_us")),
        "",
        "runtime 0 means unset"
    );
    assert_eq!(read(cpu.join("cpu.idle")), "0");
    assert_eq!(
        read(leaf["cpuset"].join("cpuset.cpus")),
        "0-1".to_string() + "0"
    );
    assert_eq!(read(leaf["pids"].join("pids.max")), "10");

    let blkio = &leaf["blkio"];
    assert_eq!(read(blkio.join("blkio.weight")), "500");
    assert_eq!(read(blkio.join("blkio.leaf_weight")), "300");
    assert_eq!(read(blkio.join("blkio.weight_device")), "8:0 200");
    assert_eq!(read(blkio.join("blkio.leaf_weight_device")), "8:0 100");
    assert_eq!(
        read(blkio.join("blkio.throttle.read_bps_device")),
        "8:0 1048576"
    );
    assert_eq!(
        read(blkio.join("blkio.throttle.write_iops_device")),
        "8:0 100"
    );
    assert_eq!(read(blkio.join("blkio.throttle.write_bps_device")), "");

    assert_eq!(
        read(leaf["hugetlb"].join("hugetlb.2MB.limit_in_bytes")),
        "4194304"
    );
    assert_eq!(read(leaf["net_cls"].join("net_cls.classid")), "1048577");
    // One "ifname prio" pair per write.
    assert_eq!(
        read(leaf["net_prio"].join("net_prio.ifpriomap")),
        concat!("eth0 5", "lo 2")
    );

    // No devices.list to compare with: reset to deny-all, then allow what
    // the rules leave allowed (c 1:3 rwm minus m).
    let dev = &leaf["devices"];
    assert_eq!(read(dev.join("devices.deny")), "a");
    assert_eq!(read(dev.join("devices.allow")), "c 1:3 rw");

    // With the kernel's list at hand, an update writes only the change.
    fs::write(dev.join("devices.list"), "c 1:3 rw\nc 1:5 rwm\n").unwrap();
    fs::write(dev.join("devices.deny"), "").unwrap();
    fs::write(dev.join("devices.allow"), "").unwrap();
    let update = LinuxResourcesBuilder::default()
        .devices(vec![
            device_rule(false, None, "rwm"),
            device_rule(true, Some((1, 3)), "rwm"),
        ])
        .build()
        .unwrap();
    m.apply(&update).unwrap();
    assert_eq!(read(dev.join("devices.allow")), "c 1:3 m");
    assert_eq!(read(dev.join("devices.deny")), "c 1:5 rwm");
}

#[test]
fn v1_create_copies_cpuset_into_every_level() {
    let tmp = tempfile::tempdir().unwrap();
    let (hierarchies, leaf) = fake_v1(tmp.path(), "/berth/c1");
    let m = manager_at(CgroupMode::Legacy, hierarchies, Path::new("berth/c1")).unwrap();
    m.create().unwrap();
    let cpuset_root = tmp.path().join("cpuset");
    for dir in [cpuset_root.join("berth"), leaf["cpuset"].clone()] {
        assert_eq!(read(dir.join("cpuset.cpus")), "0-1", "{}", dir.display());
        assert_eq!(read(dir.join("cpuset.mems")), "0", "{}", dir.display());
    }
    // Values already set are left alone on a second create.
    m.create().unwrap();
    assert_eq!(read(leaf["cpuset"].join("cpuset.cpus")), "0-1");
    // Hierarchies without cpuset just get the directories.
    let fresh = manager_at(
        CgroupMode::Legacy,
        vec![Hierarchy {
            version: 1,
            mount_point: tmp.path().join("memory"),
            controllers: vec!["memory".into()],
        }],
        Path::new("/other/deep/c2"),
    )
    .unwrap();
    fresh.create().unwrap();
    assert!(tmp.path().join("memory/other/deep/c2").is_dir());
}

#[test]
fn v1_pids_zero_or_negative_is_max_and_memory_shrinks_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let (hierarchies, leaf) = fake_v1(tmp.path(), "/c");
    let m = manager_at(CgroupMode::Legacy, hierarchies, Path::new("/c")).unwrap();
    let res = LinuxResourcesBuilder::default()
        .pids(LinuxPidsBuilder::default().limit(-1i64).build().unwrap())
        .memory(LinuxMemoryBuilder::default().limit(-1i64).build().unwrap())
        .build()
        .unwrap();
    m.apply(&res).unwrap();
    assert_eq!(read(leaf["pids"].join("pids.max")), "max");
    // Unlimited memory with no swap setting lifts memory+swap first.
    assert_eq!(
        read(leaf["memory"].join("memory.memsw.limit_in_bytes")),
        "-1"
    );
    assert_eq!(
        read(leaf["memory"].join("memory.limit_in_bytes")),
        format!("{UNLIMITED_V1}-1")
    );

    // Shrinking below the current limit: memory first, then memory+swap.
    fs::write(leaf["memory"].join("memory.limit_in_bytes"), "1073741824").unwrap();
    fs::write(leaf["memory"].join("memory.memsw.limit_in_bytes"), "").unwrap();
    let res = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(1000i64)
                .swap(2000i64)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    m.apply(&res).unwrap();
    assert_eq!(
        read(leaf["memory"].join("memory.limit_in_bytes")),
        "10737418241000"
    );
    assert_eq!(
        read(leaf["memory"].join("memory.memsw.limit_in_bytes")),
        "2000"
    );
}

#[test]
fn v1_refuses_unified_keys_bad_values_and_missing_controllers() {
    let tmp = tempfile::tempdir().unwrap();
    let (hierarchies, _) = fake_v1(tmp.path(), "/c");
    let only_memory: Vec<Hierarchy> = hierarchies
        .iter()
        .filter(|h| h.controllers == ["memory"])
        .cloned()
        .collect();
    let m = manager_at(CgroupMode::Legacy, hierarchies, Path::new("/c")).unwrap();
    let unified = LinuxResourcesBuilder::default()
        .unified(HashMap::from([(
            "memory.high".to_string(),
            "1000".to_string(),
        )]))
        .build()
        .unwrap();
    let err = m.apply(&unified).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    let swappy = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .swappiness(101u64)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    assert!(m
        .apply(&swappy)
        .unwrap_err()
        .to_string()
        .contains("swappiness"));

    let m = manager_at(CgroupMode::Legacy, only_memory, Path::new("/c")).unwrap();
    let pids = LinuxResourcesBuilder::default()
        .pids(LinuxPidsBuilder::default().limit(5i64).build().unwrap())
        .build()
        .unwrap();
    let err = m.apply(&pids).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert!(err.to_string().contains("pids controller"), "{err}");
    // Paths may not climb out of the hierarchy.
    let err = manager_at(CgroupMode::Legacy, vec![], Path::new("/../../etc"))
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
}

#[test]
fn v1_write_errors_name_the_file_and_value() {
    let tmp = tempfile::tempdir().unwrap();
    let (hierarchies, leaf) = fake_v1(tmp.path(), "/c");
    fs::remove_file(leaf["pids"].join("pids.max")).unwrap();
    let m = manager_at(CgroupMode::Legacy, hierarchies, Path::new("/c")).unwrap();
    let res = LinuxResourcesBuilder::default()
        .pids(LinuxPidsBuilder::default().limit(7i64).build().unwrap())
        .build()
        .unwrap();
    let err = m.apply(&res).unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("cgroup: write 7 to "), "{msg}");
    assert!(msg.contains("/pids/c/pids.max"), "{msg}");
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[test]
fn v1_stats_and_oom_count_read_the_kernel_counters() {
    let tmp = tempfile::tempdir().unwrap();
    let (hierarchies, leaf) = fake_v1(tmp.path(), "/c");
    fs::write(
        leaf["memory"].join("memory.memsw.limit_in_bytes"),
        UNLIMITED_V1,
    )
    .unwrap();
    fs::write(
        leaf["memory"].join("memory.kmem.tcp.limit_in_bytes"),
        UNLIMITED_V1,
    )
    .unwrap();
    fs::write(leaf["pids"].join("pids.max"), "max\n").unwrap();
    let m = manager_at(CgroupMode::Legacy, hierarchies, Path::new("/c")).unwrap();
    let s = m.stats().unwrap();
    assert_eq!(s.cpu.usage.total, 123_456_789);
    assert_eq!(s.cpu.usage.percpu, vec![100_000_000, 23_456_789]);
    assert!(s.cpu.usage.user > 0 && s.cpu.usage.kernel > s.cpu.usage.user);
    assert_eq!(
        (
            s.cpu.throttling.periods,
            s.cpu.throttling.throttled_periods,
            s.cpu.throttling.throttled_time
        ),
        (10, 3, 5000)
    );
    assert_eq!(s.memory.usage.usage, 4096);
    assert_eq!(s.memory.usage.max, 8192);
    assert_eq!(s.memory.usage.failcnt, 1);
    assert_eq!(s.memory.usage.limit, 9_223_372_036_854_771_712);
    assert_eq!(s.memory.cache, 100);
    assert_eq!(s.memory.raw["rss"], 200);
    assert_eq!(s.pids.current, 3);
    assert_eq!(s.blkio.io_service_bytes_recursive.len(), 2);
    assert_eq!(s.blkio.io_service_bytes_recursive[0].op, "Read");
    assert_eq!(s.blkio.io_service_bytes_recursive[0].value, 4096);
    assert!(s.hugetlb.contains_key("2MB"));
    assert_eq!(m.oom_kill_count().unwrap(), 2);
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["cpu"]["usage"]["total"], 123_456_789);
    assert_eq!(json["cpu"]["throttling"]["throttled_periods"], 3);
    assert_eq!(
        json["memory"]["usage"]["limit"],
        9_223_372_036_854_771_712u64
    );
    assert_eq!(json["memory"]["raw"]["cache"], 100);
    assert_eq!(json["blkio"]["ioServiceBytesRecursive"][1]["op"], "Write");
    assert_eq!(json["hugetlb"]["2MB"]["failcnt"], 0);
    assert!(json["memory"].get("kernelTCP").is_some());
}

#[test]
fn v1_rdma_limits_and_hugetlb_page_sizes() {
    let tmp = tempfile::tempdir().unwrap();
    let mount = tmp.path().join("rdma");
    touch(&mount.join("r"), &[("rdma.max", ""), ("cgroup.procs", "")]);
    let h = vec![Hierarchy {
        version: 1,
        mount_point: mount.clone(),
        controllers: vec!["rdma".into()],
    }];
    let m = manager_at(CgroupMode::Legacy, h, Path::new("/r")).unwrap();
    let limits = HashMap::from([
        (
            "mlx5_1".to_string(),
            oci_spec::runtime::LinuxRdmaBuilder::default()
                .hca_objects(10u32)
                .build()
                .unwrap(),
        ),
        (
            "mlx4_0".to_string(),
            oci_spec::runtime::LinuxRdmaBuilder::default()
                .hca_handles(2u32)
                .hca_objects(2000u32)
                .build()
                .unwrap(),
        ),
    ]);
    let res = LinuxResourcesBuilder::default()
        .rdma(limits)
        .build()
        .unwrap();
    m.apply(&res).unwrap();
    assert_eq!(
        read(mount.join("r/rdma.max")),
        concat!(
            "mlx4_0 hca_handle=2 hca_object=2000",
            "mlx5_1 hca_object=10"
        )
    );

    // A page size is part of a file name: nothing but letters and digits.
    let (hierarchies, _) = fake_v1(tmp.path(), "/c");
    let m = manager_at(CgroupMode::Legacy, hierarchies, Path::new("/c")).unwrap();
    let res = LinuxResourcesBuilder::default()
        .hugepage_limits(vec![oci_spec::runtime::LinuxHugepageLimitBuilder::default(
        )
        .page_size("../../x")
        .limit(1i64)
        .build()
        .unwrap()])
        .build()
        .unwrap();
    assert_eq!(
        m.apply(&res).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
}
