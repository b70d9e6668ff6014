//! The managers over a fake cgroupfs in a temporary directory: no root and
//! no /sys needed. Files are created up front (as the kernel would), and
//! writes append, so a file's content is every value written, in order.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use berth_cgroups::{manager_at, CgroupMode, ErrorKind, Hierarchy};
use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxDeviceType,
    LinuxHugepageLimitBuilder, LinuxInterfacePriorityBuilder, LinuxMemoryBuilder,
    LinuxNetworkBuilder, LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder,
    LinuxThrottleDeviceBuilder, LinuxWeightDeviceBuilder,
};

const UNLIMITED_V1: &str = "9223372036854771712\n";

fn touch(dir: &Path, files: &[(&str, &str)]) {
    fs::create_dir_all(dir).unwrap();
    for (name, content) in files {
        fs::write(dir.join(name), content).unwrap();
    }
}

fn read(path: impl AsRef<Path>) -> String {
    fs::read_to_string(path.as_ref()).unwrap_or_else(|e| panic!("{}: {e}", path.as_ref().display()))
}

/// v1 controller → files its cgroup directories have.
fn v1_files(controllers: &str) -> Vec<(&'static str, &'static str)> {
    let mut files = vec![("cgroup.procs", "")];
    for c in controllers.split(',') {
        files.extend_from_slice(match c {
            "cpu" => &[
                ("cpu.shares", ""),
                ("cpu.cfs_quota_us", ""),
                ("cpu.cfs_period_us", ""),
                ("cpu.rt_period_us", ""),
                ("cpu.rt_runtime_us", ""),
                ("cpu.idle", ""),
                (
                    "cpu.stat",
                    "nr_periods 10\nnr_throttled 3\nthrottled_time 5000\n",
                ),
            ][..],
            "cpuacct" => &[
                ("cpuacct.usage", "123456789\n"),
                ("cpuacct.usage_percpu", "100000000 23456789 \n"),
                ("cpuacct.stat", "user 5\nsystem 7\n"),
            ][..],
            "cpuset" => &[("cpuset.cpus", ""), ("cpuset.mems", "")][..],
            "memory" => &[
                ("memory.limit_in_bytes", UNLIMITED_V1),
                ("memory.memsw.limit_in_bytes", ""),
                ("memory.soft_limit_in_bytes", ""),
                ("memory.kmem.tcp.limit_in_bytes", ""),
                ("memory.swappiness", ""),
                (
                    "memory.oom_control",
                    "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
                ),
                ("memory.usage_in_bytes", "4096\n"),
                ("memory.max_usage_in_bytes", "8192\n"),
                ("memory.failcnt", "1\n"),
                ("memory.stat", "cache 100\nrss 200\n"),
            ][..],
            "pids" => &[("pids.max", ""), ("pids.current", "3\n")][..],
            "blkio" => &[
                ("blkio.weight", ""),
                ("blkio.weight_device", ""),
                ("blkio.leaf_weight", ""),
                ("blkio.leaf_weight_device", ""),
                ("blkio.throttle.read_bps_device", ""),
                ("blkio.throttle.write_bps_device", ""),
                ("blkio.throttle.read_iops_device", ""),
                ("blkio.throttle.write_iops_device", ""),
                (
                    "blkio.throttle.io_service_bytes_recursive",
                    "8:0 Read 4096\n8:0 Write 512\nTotal 4608\n",
                ),
            ][..],
            "devices" => &[("devices.allow", ""), ("devices.deny", "")][..],
            "freezer" => &[("freezer.state", "")][..],
            "hugetlb" => &[
                ("hugetlb.2MB.limit_in_bytes", ""),
                ("hugetlb.2MB.usage_in_bytes", "0\n"),
            ][..],
            "net_cls" => &[("net_cls.classid", "")][..],
            "net_prio" => &[("net_prio.ifpriomap", "")][..],
            _ => &[][..],
        });
    }
    files
}

const V1_MOUNTS: &[&str] = &[
    "cpu,cpuacct",
    "cpuset",
    "memory",
    "pids",
    "blkio",
    "devices",
    "freezer",
    "hugetlb",
    "net_cls",
    "net_prio",
    "name=systemd",
];

/// A fake v1 host with the container's directories (under `cg`) already
/// populated. Returns the hierarchies and controller → leaf directory.
fn fake_v1(root: &Path, cg: &str) -> (Vec<Hierarchy>, HashMap<String, PathBuf>) {
    let mut hierarchies = Vec::new();
    let mut leaves = HashMap::new();
    for controllers in V1_MOUNTS {
        let mount = root.join(controllers.replace("name=", ""));
        let files = v1_files(controllers);
        touch(&mount, &files);
        if *controllers == "cpuset" {
            touch(&mount, &[("cpuset.cpus", "0-1\n"), ("cpuset.mems", "0\n")]);
        }
        let leaf = mount.join(cg.trim_start_matches('/'));
        // Every level has the controller's files, as in a real cgroupfs.
        let mut level = mount.clone();
        for part in Path::new(cg.trim_start_matches('/')).components() {
            level.push(part);
            touch(&level, &files);
        }
        for c in controllers.split(',') {
            leaves.insert(c.to_string(), leaf.clone());
        }
        hierarchies.push(Hierarchy {
            version: 1,
            mount_point: mount,
            controllers: controllers.split(',').map(str::to_string).collect(),
        });
    }
    (hierarchies, leaves)
}

const V2_FILES: &[(&str, &str)] = &[
    ("cgroup.controllers", "cpuset cpu io memory hugetlb pids\n"),
    ("cgroup.subtree_control", ""),
    ("cgroup.procs", ""),
    ("cgroup.freeze", ""),
    ("cpu.weight", ""),
    ("cpu.max", ""),
    ("cpu.idle", ""),
    ("cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 4\nnr_throttled 1\nthrottled_usec 20\n"),
    ("cpuset.cpus", ""),
    ("cpuset.mems", ""),
    ("memory.max", ""),
    ("memory.low", ""),
    ("memory.high", ""),
    ("memory.swap.max", ""),
    ("memory.current", "8192\n"),
    ("memory.peak", "16384\n"),
    ("memory.swap.current", "0\n"),
    ("memory.events", "low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\n"),
    ("memory.stat", "anon 4096\nfile 2048\n"),
    ("pids.max", ""),
    ("pids.current", "2\n"),
    ("io.weight", ""),
    ("io.max", ""),
    ("io.stat", "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n"),
    ("hugetlb.2MB.max", ""),
    ("hugetlb.2MB.current", "0\n"),
    ("hugetlb.2MB.events", "max 0\n"),
];

/// A fake cgroup2 tree with every level of `cg` populated.
fn fake_v2(mount: &Path, cg: &str) -> PathBuf {
    touch(mount, V2_FILES);
    let mut level = mount.to_path_buf();
    for part in Path::new(cg.trim_start_matches('/')).components() {
        level.push(part);
        touch(&level, V2_FILES);
    }
    level
}

fn v2_hierarchy(mount: &Path) -> Hierarchy {
    Hierarchy {
        version: 2,
        mount_point: mount.to_path_buf(),
        controllers: vec![],
    }
}

fn full_resources() -> LinuxResources {
    let throttle = |rate: u64| {
        LinuxThrottleDeviceBuilder::default()
            .major(8i64)
            .minor(0i64)
            .rate(rate)
            .build()
            .unwrap()
    };
    LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(104_857_600i64)
                .swap(209_715_200i64)
                .reservation(52_428_800i64)
                .kernel(10_485_760i64)
                .kernel_tcp(1_048_576i64)
                .swappiness(60u64)
                .disable_oom_killer(true)
                .build()
                .unwrap(),
        )
        .cpu(
            LinuxCpuBuilder::default()
                .shares(512u64)
                .quota(50_000i64)
                .period(100_000u64)
                .realtime_period(1_000_000u64)
                .realtime_runtime(0i64)
                .cpus("0")
                .mems("0")
                .idle(0i64)
                .build()
                .unwrap(),
        )
        .pids(LinuxPidsBuilder::default().limit(10i64).build().unwrap())
        .block_io(
            LinuxBlockIoBuilder::default()
                .weight(500u16)
                .leaf_weight(300u16)
                .weight_device(vec![LinuxWeightDeviceBuilder::default()
                    .major(8i64)
                    .minor(0i64)
                    .weight(200u16)
                    .leaf_weight(100u16)
                    .build()
                    .unwrap()])
                .throttle_read_bps_device(vec![throttle(1_048_576)])
                .throttle_write_iops_device(vec![throttle(100)])
                .build()
                .unwrap(),
        )
        .hugepage_limits(vec![LinuxHugepageLimitBuilder::default()
            .page_size("2MB")
            .limit(4_194_304i64)
            .build()
            .unwrap()])
        .network(
            LinuxNetworkBuilder::default()
                .class_id(0x100001u32)
                .priorities(vec![
                    LinuxInterfacePriorityBuilder::default()
                        .name("eth0")
                        .priority(5u32)
                        .build()
                        .unwrap(),
                    LinuxInterfacePriorityBuilder::default()
                        .name("lo")
                        .priority(2u32)
                        .build()
                        .unwrap(),
                ])
                .build()
                .unwrap(),
        )
        .devices(vec![
            LinuxDeviceCgroupBuilder::default()
                .allow(false)
                .access("rwm")
                .build()
                .unwrap(),
            LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .typ(LinuxDeviceType::C)
                .major(1i64)
                .minor(3i64)
                .access("rwm")
                .build()
                .unwrap(),
            LinuxDeviceCgroupBuilder::default()
                .allow(false)
                .typ(LinuxDeviceType::C)
                .major(1i64)
                .minor(3i64)
                .access("m")
                .build()
                .unwrap(),
        ])
        .build()
        .unwrap()
}

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
            LinuxDeviceCgroupBuilder::default()
                .allow(false)
                .access("rwm")
                .build()
                .unwrap(),
            LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .typ(LinuxDeviceType::C)
                .major(1i64)
                .minor(3i64)
                .access("rwm")
                .build()
                .unwrap(),
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

fn v2_resources() -> LinuxResources {
    let mut res = full_resources();
    // v2 has no realtime, net_cls/net_prio, and devices need a real cgroup
    // for the eBPF program (tested as root in tests/real_cgroups.rs).
    let mut cpu = res.cpu().clone().unwrap();
    cpu.set_realtime_period(None);
    cpu.set_realtime_runtime(None);
    cpu.set_shares(Some(1024));
    res.set_cpu(Some(cpu));
    res.set_network(None);
    res.set_devices(None);
    res.set_unified(Some(HashMap::from([(
        "memory.high".to_string(),
        "90000000".to_string(),
    )])));
    res
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
