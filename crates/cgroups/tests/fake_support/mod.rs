//! A fake cgroupfs in a temporary directory: files are created up front
//! (as the kernel would), and writes append, so a file's content is every
//! value written, in order.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use berth_cgroups::Hierarchy;
use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxDeviceCgroup, LinuxDeviceCgroupBuilder,
    LinuxDeviceType, LinuxHugepageLimitBuilder, LinuxInterfacePriorityBuilder, LinuxMemoryBuilder,
    LinuxNetworkBuilder, LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder,
    LinuxThrottleDeviceBuilder, LinuxWeightDeviceBuilder,
};

pub const UNLIMITED_V1: &str = "9223372036854771712\n";

pub fn touch(dir: &Path, files: &[(&str, &str)]) {
    fs::create_dir_all(dir).unwrap();
    for (name, content) in files {
        fs::write(dir.join(name), content).unwrap();
    }
}

pub fn read(path: impl AsRef<Path>) -> String {
    fs::read_to_string(path.as_ref()).unwrap_or_else(|e| panic!("{}: {e}", path.as_ref().display()))
}

/// v1 controller → files its cgroup directories have.
pub fn v1_files(controllers: &str) -> Vec<(&'static str, &'static str)> {
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

pub const V1_MOUNTS: &[&str] = &[
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
pub fn fake_v1(root: &Path, cg: &str) -> (Vec<Hierarchy>, HashMap<String, PathBuf>) {
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

pub const V2_FILES: &[(&str, &str)] = &[
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
pub fn fake_v2(mount: &Path, cg: &str) -> PathBuf {
    touch(mount, V2_FILES);
    let mut level = mount.to_path_buf();
    for part in Path::new(cg.trim_start_matches('/')).components() {
        level.push(part);
        touch(&level, V2_FILES);
    }
    level
}

pub fn v2_hierarchy(mount: &Path) -> Hierarchy {
    Hierarchy {
        version: 2,
        mount_point: mount.to_path_buf(),
        controllers: vec![],
    }
}

/// A device cgroup rule for all devices (`None`) or one character device.
pub fn device_rule(
    allow: bool,
    char_device: Option<(i64, i64)>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut rule = LinuxDeviceCgroupBuilder::default()
        .allow(allow)
        .access(access);
    if let Some((major, minor)) = char_device {
        rule = rule.typ(LinuxDeviceType::C).major(major).minor(minor);
    }
    rule.build().unwrap()
}

pub fn full_resources() -> LinuxResources {
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
            device_rule(false, None, "rwm"),
            device_rule(true, Some((1, 3)), "rwm"),
            device_rule(false, Some((1, 3)), "m"),
        ])
        .build()
        .unwrap()
}

pub fn v2_resources() -> LinuxResources {
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
