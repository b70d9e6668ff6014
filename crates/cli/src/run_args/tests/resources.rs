//! Memory, CPU, block I/O, ulimits and devices.

use super::*;

#[test]
fn memory_sizes_and_swap() {
    let h = run(&[
        "-m",
        "20m",
        "--memory-reservation",
        "10M",
        "--memory-swap",
        "1g",
        "--shm-size",
        "512k",
    ])
    .host_config;
    assert_eq!(h.memory, 20 << 20);
    assert_eq!(h.memory_reservation, 10 << 20);
    assert_eq!(h.memory_swap, 1 << 30);
    assert_eq!(h.shm_size, 512 << 10);
    assert_eq!(run(&["-m", "1048576"]).host_config.memory, 1_048_576);
    assert_eq!(run(&["-m", "1.5g"]).host_config.memory, 3 << 29);
    assert_eq!(
        run(&["--memory-swap", "-1", "-m", "64m"])
            .host_config
            .memory_swap,
        -1
    );
    assert_eq!(run(&["--memory-swap=-1"]).host_config.memory_swap, -1);
    assert_eq!(run(&[]).host_config.memory_swap, 0);
    assert_eq!(
        run_err(&["-m", "x"]),
        "invalid argument \"x\" for \"-m, --memory\" flag: invalid size: 'x'"
    );
    assert_eq!(
        run_err(&["--memory-swap", "-2"]),
        "invalid argument \"-2\" for \"--memory-swap\" flag: invalid size: '-2'"
    );
    assert_eq!(
        run_err(&["--shm-size", "10zb"]),
        "invalid argument \"10zb\" for \"--shm-size\" flag: invalid suffix: 'zb'"
    );

    let h = run(&[
        "--memory-swappiness",
        "0",
        "--oom-kill-disable",
        "--oom-score-adj",
        "-500",
        "--pids-limit",
        "-1",
    ])
    .host_config;
    assert_eq!(h.memory_swappiness, Some(0));
    assert_eq!(h.oom_kill_disable, Some(true));
    assert_eq!(h.oom_score_adj, -500);
    assert_eq!(h.pids_limit, Some(-1));
    let h = run(&[]).host_config;
    assert_eq!(
        (h.memory_swappiness, h.oom_kill_disable, h.pids_limit),
        (None, Some(false), None)
    );
    assert_eq!(
        run(&["--memory-swappiness", "-1"])
            .host_config
            .memory_swappiness,
        None
    );
    assert_eq!(
        run_err(&["--memory-swappiness", "101"]),
        "invalid value: 101. Valid memory swappiness range is 0-100"
    );
}

#[test]
fn kernel_memory_is_ignored_with_a_warning() {
    let args = parse_run(&["--kernel-memory", "50m", "busybox"]);
    let request = args.to_request().unwrap();
    assert_eq!(request.host_config, run(&[]).host_config);
    assert_eq!(
        args.create.warnings(),
        ["Your kernel does not support kernel memory limit capabilities or the cgroup is not mounted. Limitation discarded."]
    );
    assert!(parse_run(&["busybox"]).create.warnings().is_empty());
    assert_eq!(
        parse_run(&["--oom-kill-disable", "busybox"]).create.warnings(),
        ["OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources."]
    );
    assert!(parse_run(&["--oom-kill-disable", "-m", "1g", "busybox"])
        .create
        .warnings()
        .is_empty());
    assert_eq!(
        run_err(&["--kernel-memory", "lots"]),
        "invalid argument \"lots\" for \"--kernel-memory\" flag: invalid size: 'lots'"
    );
}

#[test]
fn cpu_flags() {
    assert_eq!(run(&["--cpus", "0.3"]).host_config.nano_cpus, 300_000_000);
    assert_eq!(run(&["--cpus", "1.5"]).host_config.nano_cpus, 1_500_000_000);
    assert_eq!(run(&["--cpus", "2"]).host_config.nano_cpus, 2_000_000_000);
    assert_eq!(run(&["--cpus", "3/2"]).host_config.nano_cpus, 1_500_000_000);
    assert_eq!(run(&["--cpus", "1e-3"]).host_config.nano_cpus, 1_000_000);
    assert_eq!(run(&["--cpus", "0"]).host_config.nano_cpus, 0);
    assert_eq!(
        run_err(&["--cpus", "abc"]),
        "invalid argument \"abc\" for \"--cpus\" flag: failed to parse abc as a rational number"
    );
    assert_eq!(
        run_err(&["--cpus", "0.0000000001"]),
        "invalid argument \"0.0000000001\" for \"--cpus\" flag: value is too precise"
    );
    let h = run(&[
        "-c",
        "512",
        "--cpu-period",
        "100000",
        "--cpu-quota",
        "50000",
        "--cpu-rt-period",
        "1000000",
        "--cpu-rt-runtime",
        "950000",
        "--cpuset-cpus",
        "0-1",
        "--cpuset-mems",
        "0",
    ])
    .host_config;
    assert_eq!(
        (h.cpu_shares, h.cpu_period, h.cpu_quota),
        (512, 100_000, 50_000)
    );
    assert_eq!(
        (h.cpu_realtime_period, h.cpu_realtime_runtime),
        (1_000_000, 950_000)
    );
    assert_eq!(
        (h.cpuset_cpus.as_str(), h.cpuset_mems.as_str()),
        ("0-1", "0")
    );
    // pflag integers take Go's base prefixes.
    assert_eq!(run(&["--cpu-shares", "0x400"]).host_config.cpu_shares, 1024);
    assert_eq!(
        run_err(&["-c", "x"]),
        "invalid argument \"x\" for \"-c, --cpu-shares\" flag: strconv.ParseInt: parsing \"x\": invalid syntax"
    );
    assert_eq!(
        run_err(&["--cpu-quota", "99999999999999999999"]),
        "invalid argument \"99999999999999999999\" for \"--cpu-quota\" flag: strconv.ParseInt: parsing \"99999999999999999999\": value out of range"
    );
}

#[test]
fn block_io_flags() {
    let h = run(&[
        "--blkio-weight",
        "300",
        "--blkio-weight-device",
        "/dev/sda:200",
        "--device-read-bps",
        "/dev/sda:1mb",
        "--device-write-bps",
        "/dev/sdb:10",
        "--device-read-iops",
        "/dev/sda:1000",
        "--device-write-iops",
        "/dev/sdb:5",
    ])
    .host_config;
    assert_eq!(h.blkio_weight, 300);
    let weight = |p: &str, w| WeightDevice {
        path: p.into(),
        weight: w,
    };
    let throttle = |p: &str, r| ThrottleDevice {
        path: p.into(),
        rate: r,
    };
    assert_eq!(h.blkio_weight_device, [weight("/dev/sda", 200)]);
    assert_eq!(h.blkio_device_read_bps, [throttle("/dev/sda", 1 << 20)]);
    assert_eq!(h.blkio_device_write_bps, [throttle("/dev/sdb", 10)]);
    assert_eq!(h.blkio_device_read_iops, [throttle("/dev/sda", 1000)]);
    assert_eq!(h.blkio_device_write_iops, [throttle("/dev/sdb", 5)]);
    assert_eq!(
        run_err(&["--blkio-weight", "70000"]),
        "invalid argument \"70000\" for \"--blkio-weight\" flag: strconv.ParseUint: parsing \"70000\": value out of range"
    );
    assert_eq!(
        run_err(&["--blkio-weight-device", "/dev/sda:5"]),
        "invalid argument \"/dev/sda:5\" for \"--blkio-weight-device\" flag: invalid weight for device: /dev/sda:5"
    );
    assert_eq!(
        run_err(&["--device-read-bps", "sda:1"]),
        "invalid argument \"sda:1\" for \"--device-read-bps\" flag: bad format for device path: sda:1"
    );
    assert_eq!(
        run_err(&["--device-write-iops", "/dev/sda"]),
        "invalid argument \"/dev/sda\" for \"--device-write-iops\" flag: bad format: /dev/sda"
    );
    assert_eq!(
        run_err(&["--device-read-iops", "/dev/sda:1k"]),
        "invalid argument \"/dev/sda:1k\" for \"--device-read-iops\" flag: invalid rate for device: /dev/sda:1k. The correct format is <device-path>:<number>. Number must be a positive integer"
    );
}

#[test]
fn ulimits() {
    let h = run(&[
        "--ulimit",
        "nproc=10",
        "--ulimit",
        "nofile=1024:2048",
        "--ulimit",
        "core=-1",
        "--ulimit",
        "nproc=20:30",
    ])
    .host_config;
    let u = |name: &str, soft, hard| Ulimit {
        name: name.into(),
        soft,
        hard,
    };
    // Sorted by name; a repeated name keeps the last value.
    assert_eq!(
        h.ulimits,
        Some(vec![
            u("core", -1, -1),
            u("nofile", 1024, 2048),
            u("nproc", 20, 30)
        ])
    );
    assert_eq!(run(&[]).host_config.ulimits, None);
    for (value, reason) in [
        ("nofile=a", "strconv.ParseInt: parsing \"a\": invalid syntax"),
        ("nofile", "invalid ulimit argument: nofile"),
        ("bogus=1", "invalid ulimit type: bogus"),
        ("nofile=10:5", "ulimit soft limit must be less than or equal to hard limit: 10 > 5"),
        ("nofile=-1:5", "ulimit soft limit must be less than or equal to hard limit: soft: -1 (unlimited), hard: 5"),
        ("nofile=1:2:3", "too many limit value arguments - 1:2:3, can only have up to two, `soft[:hard]`"),
    ] {
        assert_eq!(
            run_err(&["--ulimit", value]),
            format!("invalid argument \"{value}\" for \"--ulimit\" flag: {reason}")
        );
    }
}

#[test]
fn devices_and_cgroup_rules() {
    let h = run(&[
        "--device",
        "/dev/fuse",
        "--device",
        "/dev/sda:/dev/xvda",
        "--device",
        "/dev/null:r",
        "--device",
        "/dev/zero:/dev/z:rw",
        "--device-cgroup-rule",
        "c 1:3 mr",
        "--device-cgroup-rule",
        "a *:* rwm",
    ])
    .host_config;
    let d = |h: &str, c: &str, p: &str| DeviceMapping {
        path_on_host: h.into(),
        path_in_container: c.into(),
        cgroup_permissions: p.into(),
    };
    assert_eq!(
        h.devices,
        [
            d("/dev/fuse", "/dev/fuse", "rwm"),
            d("/dev/sda", "/dev/xvda", "rwm"),
            d("/dev/null", "/dev/null", "r"),
            d("/dev/zero", "/dev/z", "rw"),
        ]
    );
    assert_eq!(
        h.device_cgroup_rules,
        Some(strings(&["c 1:3 mr", "a *:* rwm"]))
    );
    assert_eq!(
        run_err(&["--device", "/dev/a:/dev/b:xyz"]),
        "bad mode specified: xyz"
    );
    assert_eq!(
        run_err(&["--device", "a:b:c:d"]),
        "bad format for path: a:b:c:d"
    );
    assert_eq!(
        run_err(&["--device", "dev/fuse"]),
        "dev/fuse is not an absolute path"
    );
    assert_eq!(
        run_err(&["--device-cgroup-rule", "x 1:2 r"]),
        "invalid argument \"x 1:2 r\" for \"--device-cgroup-rule\" flag: invalid device cgroup format 'x 1:2 r'"
    );
    assert_eq!(
        run_err(&["--device", "nvidia.com/gpu=all"]),
        "CDI device injection is not supported by berth: nvidia.com/gpu=all"
    );
    assert_eq!(
        run_err(&["--gpus", "all"]),
        "could not select device driver \"\" with capabilities: [[gpu]]"
    );
}
