//! Flag vectors → create requests and Docker's error texts.

use std::collections::BTreeMap;

use berth_engine::containers::model::{
    CreateRequest, DeviceMapping, Empty, HealthConfig, MountSpec, PortBinding, RestartPolicy,
    ThrottleDevice, TmpfsOptions, Ulimit, VolumeDriverConfig, VolumeOptions, WeightDevice,
};
use clap::Parser;

use super::*;

#[derive(Debug, Parser)]
#[command(name = "berth")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    Run(RunArgs),
    Create(CreateArgs),
}

fn parse_run(args: &[&str]) -> RunArgs {
    let argv = ["berth", "run"].iter().chain(args);
    match Cli::try_parse_from(argv) {
        Ok(Cli {
            command: Command::Run(run),
        }) => run,
        Ok(other) => panic!("parsed as {other:?}"),
        Err(e) => panic!("clap rejected {args:?}: {e}"),
    }
}

fn parse_create(args: &[&str]) -> CreateArgs {
    let argv = ["berth", "create"].iter().chain(args);
    match Cli::try_parse_from(argv) {
        Ok(Cli {
            command: Command::Create(create),
        }) => create,
        Ok(other) => panic!("parsed as {other:?}"),
        Err(e) => panic!("clap rejected {args:?}: {e}"),
    }
}

/// `berth run FLAGS… busybox` → the request.
fn run(flags: &[&str]) -> CreateRequest {
    let mut args = flags.to_vec();
    args.push("busybox");
    match parse_run(&args).to_request() {
        Ok(r) => r,
        Err(e) => panic!("{flags:?} failed: {e}"),
    }
}

/// `berth run FLAGS… busybox` → the error text.
fn run_err(flags: &[&str]) -> String {
    let mut args = flags.to_vec();
    args.push("busybox");
    match parse_run(&args).to_request() {
        Ok(r) => panic!("{flags:?} was accepted: {r:?}"),
        Err(e) => e.to_string(),
    }
}

fn clap_error_kind(args: &[&str]) -> clap::error::ErrorKind {
    let argv = ["berth", "run"].iter().chain(args);
    match Cli::try_parse_from(argv) {
        Ok(cli) => panic!("{args:?} parsed: {cli:?}"),
        Err(e) => e.kind(),
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// A unique file under the system temp dir, removed on drop.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(name: &str, content: &[u8]) -> Self {
        let path = std::env::temp_dir().join(format!(
            "berth-runargs-{}-{}-{name}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::write(&path, content).expect("write temp file");
        Self(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    u64::from(nanos) ^ (NEXT.fetch_add(1, Ordering::Relaxed) << 32)
}

#[test]
fn command_line_shape_like_docker() {
    // Flag parsing stops at the image: what follows is the command.
    let r = parse_run(&["-it", "--rm", "busybox", "ls", "-l", "--rm"]);
    assert!(r.create.interactive && r.create.tty && r.create.rm);
    assert_eq!(r.create.image(), "busybox");
    assert_eq!(r.create.command(), strings(&["ls", "-l", "--rm"]));
    let r = parse_run(&["busybox", "-l"]);
    assert_eq!(r.create.command(), strings(&["-l"]));
    let r = parse_run(&["-dit", "busybox"]);
    assert!(r.detach && r.create.interactive && r.create.tty);
    // -h is --hostname; values may start with '-'.
    let r = parse_run(&["-h", "web", "--name=-x", "--memory-swap", "-1", "busybox"]);
    assert_eq!(r.create.hostname.as_deref(), Some("web"));
    assert_eq!(r.create.name.as_deref(), Some("-x"));
    // Booleans take =value like pflag's, never a separate argument.
    let r = parse_run(&["--rm=false", "--sig-proxy=false", "-t=true", "busybox"]);
    assert!(!r.create.rm && !r.sig_proxy && r.create.tty);
    let r = parse_run(&["-t", "false"]);
    assert_eq!(r.create.image(), "false");
    assert!(r.sig_proxy, "--sig-proxy defaults to true");
    assert_eq!(r.create.restart, "no");
    assert_eq!(r.create.pull, "missing");
    // Hidden Docker aliases.
    let r = parse_run(&[
        "--net",
        "host",
        "--net-alias",
        "a",
        "--dns-opt",
        "ndots:1",
        "x",
    ]);
    assert_eq!(r.create.network, strings(&["host"]));
    assert_eq!(r.create.network_alias, strings(&["a"]));
    assert_eq!(r.create.dns_option, strings(&["ndots:1"]));

    use clap::error::ErrorKind;
    assert_eq!(
        clap_error_kind(&["--bogus", "busybox"]),
        ErrorKind::UnknownArgument
    );
    assert_eq!(
        clap_error_kind(&["-x", "busybox"]),
        ErrorKind::UnknownArgument
    );
    assert_eq!(clap_error_kind(&[]), ErrorKind::MissingRequiredArgument);
    assert_eq!(clap_error_kind(&["--help"]), ErrorKind::DisplayHelp);
    assert_eq!(
        clap_error_kind(&["--rm=maybe", "busybox"]),
        ErrorKind::ValueValidation
    );
    let c = parse_create(&["--name", "db", "-e", "A=1", "postgres", "-c", "x"]);
    assert_eq!(c.image(), "postgres");
    assert_eq!(c.command(), strings(&["-c", "x"]));
}

#[test]
fn attach_and_stdin_like_docker() {
    let c = parse_create(&["busybox"]).to_request().unwrap().config;
    assert!(!c.attach_stdin && c.attach_stdout && c.attach_stderr);
    assert!(!c.open_stdin && !c.stdin_once && !c.tty);

    let c = run(&["-i", "-t"]).config;
    assert!(c.attach_stdin && c.attach_stdout && c.attach_stderr);
    assert!(c.open_stdin && c.stdin_once && c.tty);

    // -d attaches nothing but keeps stdin open.
    let c = run(&["-d", "-i"]).config;
    assert!(!c.attach_stdin && !c.attach_stdout && !c.attach_stderr);
    assert!(c.open_stdin && !c.stdin_once);

    let c = run(&["-a", "stdout", "-a", "STDERR"]).config;
    assert!(!c.attach_stdin && c.attach_stdout && c.attach_stderr);
    let c = run(&["-a", "stdin"]).config;
    assert!(c.attach_stdin && !c.attach_stdout && !c.attach_stderr && !c.stdin_once);

    assert_eq!(
        run_err(&["-a", "stdio"]),
        "invalid argument \"stdio\" for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR"
    );
    assert_eq!(
        run_err(&["-d", "-a", "stdout"]),
        "conflicting options: cannot specify both --attach and --detach"
    );
}

#[test]
fn command_entrypoint_workdir_user() {
    let r = parse_run(&[
        "--entrypoint",
        "",
        "-w",
        "/srv",
        "-u",
        "1000:1000",
        "busybox",
    ])
    .to_request()
    .unwrap();
    assert_eq!(r.config.entrypoint, Some(strings(&[""])));
    assert_eq!(r.config.cmd, None);
    assert_eq!(r.config.working_dir, "/srv");
    assert_eq!(r.config.user, "1000:1000");
    assert_eq!(r.config.image, "busybox");

    let r = parse_run(&["--entrypoint", "/bin/sh", "busybox", "-c", "echo hi"])
        .to_request()
        .unwrap();
    assert_eq!(r.config.entrypoint, Some(strings(&["/bin/sh"])));
    assert_eq!(r.config.cmd, Some(strings(&["-c", "echo hi"])));
    assert_eq!(run(&[]).config.entrypoint, None);

    let r = run(&["-h", "web", "--domainname", "example.org"]);
    assert_eq!(
        (r.config.hostname.as_str(), r.config.domainname.as_str()),
        ("web", "example.org")
    );
    assert_eq!(
        run_err(&["-w", "srv"]),
        "the working directory 'srv' is invalid, it needs to be an absolute path"
    );
}

#[test]
fn environment_from_flags_files_and_host() {
    let set = format!("BERTH_RUNARGS_SET_{}", std::process::id());
    let unset = format!("BERTH_RUNARGS_UNSET_{}", std::process::id());
    std::env::set_var(&set, "from host");
    std::env::remove_var(&unset);
    let file = TempFile::new(
        "env",
        format!(
            "\u{feff}# comment\n\n  A=1\nB=x=y\r\n{set}\n{unset}\nEMPTY=\n   # indented comment\n"
        )
        .as_bytes(),
    );
    let e_set = format!("-e{set}");
    let r = run(&[
        "--env-file",
        file.path(),
        "-e",
        "C=3",
        &e_set,
        "-e",
        &unset,
        "-e",
        "A=override",
    ]);
    assert_eq!(
        r.config.env,
        strings(&[
            "A=1",
            "B=x=y",
            &format!("{set}=from host"),
            "EMPTY=",
            "C=3",
            &format!("{set}=from host"),
            "A=override",
        ])
    );

    assert_eq!(
        run_err(&["-e", "=x"]),
        "invalid argument \"=x\" for \"-e, --env\" flag: invalid environment variable: =x"
    );
    let bad = TempFile::new("badenv", b"OK=1\nA B=2\n");
    assert_eq!(
        run_err(&["--env-file", bad.path()]),
        format!(
            "invalid env file ({}): variable 'A B' contains whitespaces",
            bad.path()
        )
    );
    let nameless = TempFile::new("nameless", b"=2\n");
    assert_eq!(
        run_err(&["--env-file", nameless.path()]),
        format!(
            "invalid env file ({}): no variable name on line '=2'",
            nameless.path()
        )
    );
    assert_eq!(
        run_err(&["--env-file", "/nonexistent/berth.env"]),
        "open /nonexistent/berth.env: no such file or directory"
    );
}

#[test]
fn labels_from_flags_and_files() {
    let file = TempFile::new("labels", b"# labels\nteam=infra\nbare\nx=from-file\n");
    let r = run(&[
        "--label-file",
        file.path(),
        "-l",
        "a=b",
        "--label",
        "flag",
        "-l",
        "x=flag",
    ]);
    let expected: BTreeMap<String, String> =
        [("team", "infra"), ("a", "b"), ("flag", ""), ("x", "flag")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    // A bare key in a label file is dropped (no lookup), as in Docker.
    assert_eq!(r.config.labels, expected);
    assert_eq!(
        run_err(&["-l", "=x"]),
        "invalid argument \"=x\" for \"-l, --label\" flag: invalid label '=x': empty name"
    );
    assert_eq!(
        run_err(&["-l", "a b=c"]),
        "invalid argument \"a b=c\" for \"-l, --label\" flag: label 'a b' contains whitespaces"
    );
}

fn binding(ip: &str, port: &str) -> PortBinding {
    PortBinding {
        host_ip: ip.to_string(),
        host_port: port.to_string(),
    }
}

#[test]
fn publish_forms() {
    let r = run(&[
        "-p",
        "8080:80",
        "-p",
        "127.0.0.1:9090:90",
        "-p",
        "127.0.0.1::70",
        "-p",
        "60",
        "-p",
        "53:53/udp",
        "-p",
        "132/sctp",
        "-p",
        "[::1]:8443:443",
        "-p",
        "::1:2222:22",
        "-p",
        "8080:80",
        "-p",
        "published=7000,target=700,protocol=udp",
        "-p",
        "5000-5010:500",
        "-P",
    ]);
    let b = &r.host_config.port_bindings;
    assert_eq!(b["80/tcp"], vec![binding("", "8080"), binding("", "8080")]);
    assert_eq!(b["90/tcp"], vec![binding("127.0.0.1", "9090")]);
    assert_eq!(b["70/tcp"], vec![binding("127.0.0.1", "")]);
    assert_eq!(b["60/tcp"], vec![binding("", "")]);
    assert_eq!(b["53/udp"], vec![binding("", "53")]);
    assert_eq!(b["132/sctp"], vec![binding("", "")]);
    assert_eq!(b["443/tcp"], vec![binding("::1", "8443")]);
    assert_eq!(b["22/tcp"], vec![binding("::1", "2222")]);
    assert_eq!(b["700/udp"], vec![binding("", "7000")]);
    assert_eq!(b["500/tcp"], vec![binding("", "5000-5010")]);
    assert_eq!(b.len(), 10);
    let exposed: Vec<&String> = r.config.exposed_ports.as_ref().unwrap().keys().collect();
    assert_eq!(exposed.len(), 10);
    assert!(r.host_config.publish_all_ports);

    let r = run(&["-p", "8080-8081:80-81/udp"]);
    let b = &r.host_config.port_bindings;
    assert_eq!(b["80/udp"], vec![binding("", "8080")]);
    assert_eq!(b["81/udp"], vec![binding("", "8081")]);
    let r = run(&["-p", "127.0.0.1::3000-3001"]);
    assert_eq!(
        r.host_config.port_bindings["3001/tcp"],
        vec![binding("127.0.0.1", "")]
    );

    assert_eq!(run(&[]).config.exposed_ports, None);
    assert!(run(&[]).host_config.port_bindings.is_empty());

    for (spec, message) in [
        ("80/foo", "invalid proto: foo"),
        ("1.2.3:80:80", "invalid IP address: 1.2.3"),
        (
            "8000-8001:80-82",
            "invalid ranges specified for container and host Ports: 80-82 and 8000-8001",
        ),
        ("x:80", "invalid hostPort: x"),
        ("80-x", "invalid containerPort: 80-x"),
        ("70000", "invalid containerPort: 70000"),
        ("8080:", "no port specified: 8080:<empty>"),
        (
            "target=80,bogus",
            "invalid publish opts format (should be name=value but got 'bogus')",
        ),
    ] {
        assert_eq!(run_err(&["-p", spec]), message, "-p {spec}");
    }
}

#[test]
fn expose_ports_and_ranges() {
    let r = run(&["--expose", "80", "--expose", "7000-7002/udp", "-p", "80:80"]);
    let exposed: Vec<&str> = r
        .config
        .exposed_ports
        .as_ref()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(exposed, ["7000/udp", "7001/udp", "7002/udp", "80/tcp"]);
    assert_eq!(r.config.exposed_ports.unwrap()["80/tcp"], Empty {});
    assert_eq!(
        run_err(&["--expose", "80:80"]),
        "invalid port format for --expose: 80:80"
    );
    assert_eq!(
        run_err(&["--expose", "x"]),
        "invalid range format for --expose: x, error: strconv.ParseUint: parsing \"x\": invalid syntax"
    );
    assert_eq!(
        run_err(&["--expose", "90-80"]),
        "invalid range format for --expose: 90-80, error: invalid range specified for port: 90-80"
    );
}

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

#[test]
fn restart_policies() {
    let policy = |name: &str, count| RestartPolicy {
        name: name.into(),
        maximum_retry_count: count,
    };
    assert_eq!(run(&[]).host_config.restart_policy, policy("no", 0));
    assert_eq!(
        run(&["--restart", "on-failure:3"])
            .host_config
            .restart_policy,
        policy("on-failure", 3)
    );
    assert_eq!(
        run(&["--restart", "on-failure"]).host_config.restart_policy,
        policy("on-failure", 0)
    );
    assert_eq!(
        run(&["--restart", "always"]).host_config.restart_policy,
        policy("always", 0)
    );
    assert_eq!(
        run(&["--restart", "unless-stopped"])
            .host_config
            .restart_policy,
        policy("unless-stopped", 0)
    );
    assert!(run(&["--rm", "--restart", "no"]).host_config.auto_remove);
    for (value, message) in [
        ("always:3", "invalid restart policy: maximum retry count can only be used with 'on-failure'"),
        ("no:-1", "invalid restart policy: maximum retry count can only be used with 'on-failure' and cannot be negative"),
        ("on-failure:-1", "invalid restart policy: maximum retry count cannot be negative"),
        (":3", "invalid restart policy format: no policy provided before colon"),
        ("on-failure:x", "invalid restart policy format: maximum retry count must be an integer"),
        ("sometimes", "invalid restart policy: unknown policy 'sometimes'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"),
    ] {
        assert_eq!(run_err(&["--restart", value]), message, "--restart {value}");
    }
    assert_eq!(
        run_err(&["--rm", "--restart", "always"]),
        "conflicting options: cannot specify both --restart and --rm"
    );
}

#[test]
fn volumes_binds_and_anonymous() {
    let cwd = std::env::current_dir().unwrap();
    let h = run(&[
        "-v",
        "/data",
        "-v",
        "/srv:/srv:ro",
        "-v",
        "cache:/cache",
        "-v",
        "/a:/b:ro,Z,rshared",
        "-v",
        "./rel:/rel:nocopy",
        "-v",
        "/srv:/srv:ro",
    ]);
    assert_eq!(
        h.host_config.binds,
        Some(strings(&[
            "/srv:/srv:ro",
            "cache:/cache",
            "/a:/b:ro,Z,rshared",
            &format!("{}/rel:/rel:nocopy", cwd.display()),
        ]))
    );
    let volumes: Vec<&String> = h.config.volumes.as_ref().unwrap().keys().collect();
    assert_eq!(volumes, ["/data"]);
    assert_eq!(run(&[]).config.volumes, None);
    assert_eq!(run(&[]).host_config.binds, None);

    for (spec, message) in [
        ("", "invalid empty volume spec"),
        ("/a::/b", "invalid spec: /a::/b: empty section between colons"),
        ("/a:/b:ro:x", "invalid spec: /a:/b:ro:x: too many colons"),
        ("foo/bar:/x", "create foo/bar: \"foo/bar\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"),
        ("~/x:/x", "create ~/x: \"~/x\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"),
        ("/data:ro", "invalid volume specification: '/data:ro'"),
        ("/a:/b:bogus", "invalid mode: bogus"),
        ("/a:/b:ro,rw", "invalid mode: ro,rw"),
        ("/a:/", "invalid volume specification: '/a:/': invalid mount config for type \"bind\": invalid specification: destination can't be '/'"),
        ("/a:b", "invalid volume specification: '/a:b': invalid mount config for type \"bind\": invalid mount path: 'b' mount path must be absolute"),
        ("data", "invalid volume specification: 'data': invalid mount config for type \"volume\": invalid mount path: 'data' mount path must be absolute"),
    ] {
        assert_eq!(run_err(&["-v", spec]), message, "-v {spec:?}");
    }
    // Another volume driver names its volumes its own way.
    let h = run(&["--volume-driver", "nfs", "-v", "share/x:/x"]).host_config;
    assert_eq!(h.volume_driver, "nfs");
    assert_eq!(h.binds, Some(strings(&["share/x:/x"])));
}

#[test]
fn mount_flag() {
    let cwd = std::env::current_dir().unwrap();
    let h = run(&[
        "--mount", "type=bind,src=/srv,dst=/srv,readonly,bind-propagation=rslave,bind-nonrecursive",
        "--mount", "type=volume,source=data,target=/data,volume-nocopy,volume-opt=type=tmpfs,volume-label=a=b,volume-driver=local,volume-subpath=sub",
        "--mount", "type=tmpfs,destination=/tmp,tmpfs-size=64m,tmpfs-mode=1777",
        "--mount", "target=/anon",
        "--mount", "type=bind,source=./rel,target=/rel,ro=false",
        "--mount", "\"type=bind\",\"src=/with,comma\",dst=/c",
    ])
    .host_config;
    let mounts = h.mounts.unwrap();
    assert_eq!(mounts.len(), 6);
    assert_eq!(mounts[0].kind, "bind");
    assert_eq!(
        (mounts[0].source.as_str(), mounts[0].target.as_str()),
        ("/srv", "/srv")
    );
    assert!(mounts[0].read_only);
    let bind = mounts[0].bind_options.as_ref().unwrap();
    assert_eq!(bind.propagation, "rslave");
    assert!(bind.non_recursive);
    assert_eq!(
        mounts[1],
        MountSpec {
            kind: "volume".into(),
            source: "data".into(),
            target: "/data".into(),
            volume_options: Some(VolumeOptions {
                no_copy: true,
                labels: [("a".to_string(), "b".to_string())].into(),
                driver_config: Some(VolumeDriverConfig {
                    name: "local".into(),
                    options: [("type".to_string(), "tmpfs".to_string())].into(),
                }),
                subpath: "sub".into(),
            }),
            ..Default::default()
        }
    );
    assert_eq!(mounts[2].kind, "tmpfs");
    assert_eq!(
        mounts[2].tmpfs_options,
        Some(TmpfsOptions {
            size_bytes: 64 << 20,
            mode: 0o1777
        })
    );
    assert_eq!(
        (mounts[3].kind.as_str(), mounts[3].source.as_str()),
        ("volume", "")
    );
    assert_eq!(mounts[4].source, format!("{}/rel", cwd.display()));
    assert!(!mounts[4].read_only);
    assert_eq!(mounts[5].source, "/with,comma");

    for (value, reason) in [
        ("type=bind", "target is required"),
        (
            "type=bind,target=/x,bogus=1",
            "unexpected key 'bogus' in 'bogus=1'",
        ),
        (
            "type=bind,target=/x,flag",
            "invalid field 'flag' must be a key=value pair",
        ),
        (
            "target=/x,tmpfs-size=1m",
            "cannot mix 'tmpfs-*' options with mount type 'volume'",
        ),
        (
            "type=tmpfs,target=/x,volume-nocopy",
            "cannot mix 'volume-*' options with mount type 'tmpfs'",
        ),
        (
            "type=volume,target=/x,bind-propagation=shared",
            "cannot mix 'bind-*' options with mount type 'volume'",
        ),
        (
            "type=tmpfs,target=/x,tmpfs-mode=9",
            "invalid value for tmpfs-mode: 9",
        ),
        (
            "type=tmpfs,target=/x,tmpfs-size=big",
            "invalid value for tmpfs-size: big",
        ),
        (
            "type=bind,target=/x,readonly=maybe",
            "invalid value for readonly: maybe",
        ),
        (
            "type=\"bind,target=/x",
            "parse error on line 1, column 6: bare \" in non-quoted-field",
        ),
    ] {
        assert_eq!(
            run_err(&["--mount", value]),
            format!("invalid argument {value:?} for \"--mount\" flag: {reason}"),
            "--mount {value}"
        );
    }
    for (value, message) in [
        ("type=bind,target=/x", "invalid mount config for type \"bind\": field Source must not be empty"),
        ("type=bind,src=rel,target=/x", "invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute"),
        ("type=bind,src=/a,target=x", "invalid mount config for type \"bind\": invalid mount path: 'x' mount path must be absolute"),
        ("type=bind,src=/a,target=/", "invalid mount config for type \"bind\": invalid specification: destination can't be '/'"),
        ("type=bind,src=/a,target=/x,bind-propagation=sideways", "invalid mount config for type \"bind\": invalid propagation mode: sideways"),
        ("type=volume,target=/x,ro", "invalid mount config for type \"volume\": must not set ReadOnly mode when using anonymous volumes"),
        ("type=tmpfs,src=/a,target=/x", "invalid mount config for type \"tmpfs\": field Source must not be specified"),
        ("type=floppy,target=/x", "invalid mount config for type \"floppy\": mount type unknown"),
    ] {
        assert_eq!(run_err(&["--mount", value]), message, "--mount {value}");
    }
}

#[test]
fn tmpfs_and_volumes_from() {
    let h = run(&[
        "--tmpfs",
        "/run",
        "--tmpfs",
        "/tmp:rw,size=64m,mode=1777",
        "--volumes-from",
        "data:ro",
        "--volumes-from",
        "other",
    ])
    .host_config;
    let tmpfs = h.tmpfs.unwrap();
    assert_eq!(tmpfs["/run"], "");
    assert_eq!(tmpfs["/tmp"], "rw,size=64m,mode=1777");
    assert_eq!(h.volumes_from, Some(strings(&["data:ro", "other"])));
    assert_eq!(
        run_err(&["--tmpfs", "tmp"]),
        "invalid mount path: 'tmp' mount path must be absolute"
    );
    assert_eq!(
        run_err(&["--tmpfs", "/"]),
        "invalid specification: destination can't be '/'"
    );
    assert_eq!(
        run_err(&["--volumes-from", "data:rshared"]),
        "invalid mode: rshared"
    );
    assert_eq!(
        run_err(&["--volumes-from", "data:nocopy"]),
        "invalid mode: nocopy"
    );
    assert_eq!(
        run_err(&["--volumes-from", ""]),
        "volumes-from specification cannot be an empty string"
    );
    assert_eq!(
        run(&["--storage-opt", "size=10G"]).host_config.storage_opt,
        Some([("size".to_string(), "10G".to_string())].into())
    );
    assert_eq!(
        run_err(&["--storage-opt", "size"]),
        "invalid storage option"
    );
}

#[test]
fn security_options() {
    let profile = TempFile::new(
        "seccomp.json",
        b"{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\",\n  \"syscalls\": []\n}\n",
    );
    let seccomp = format!("seccomp={}", profile.path());
    let h = run(&[
        "--security-opt",
        "no-new-privileges",
        "--security-opt",
        "no-new-privileges=false",
        "--security-opt",
        "apparmor=unconfined",
        "--security-opt",
        "label=disable",
        "--security-opt",
        "label=level:s0:c100,c200",
        "--security-opt",
        &seccomp,
        "--security-opt",
        "seccomp=unconfined",
        "--security-opt",
        "systempaths=unconfined",
        "--privileged",
        "--cap-add",
        "NET_ADMIN",
        "--cap-add",
        "cap_sys_time",
        "--cap-drop",
        "ALL",
        "--group-add",
        "audio",
        "--read-only",
    ])
    .host_config;
    assert_eq!(
        h.security_opt,
        Some(strings(&[
            "no-new-privileges",
            "no-new-privileges=false",
            "apparmor=unconfined",
            "label=disable",
            "label=level:s0:c100,c200",
            "seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[]}",
            "seccomp=unconfined",
        ]))
    );
    assert_eq!(h.masked_paths, Some(vec![]));
    assert_eq!(h.readonly_paths, Some(vec![]));
    assert!(h.privileged && h.readonly_rootfs);
    assert_eq!(h.cap_add, Some(strings(&["NET_ADMIN", "cap_sys_time"])));
    assert_eq!(h.cap_drop, Some(strings(&["ALL"])));
    assert_eq!(h.group_add, Some(strings(&["audio"])));
    let plain = run(&[]).host_config;
    assert_eq!(
        (plain.masked_paths, plain.readonly_paths, plain.security_opt),
        (None, None, None)
    );

    assert_eq!(
        run_err(&["--security-opt", "foo"]),
        "Invalid --security-opt: \"foo\""
    );
    assert_eq!(
        run_err(&["--security-opt", "apparmor="]),
        "Invalid --security-opt: \"apparmor=\""
    );
    assert_eq!(
        run_err(&["--security-opt", "foo=bar"]),
        "invalid --security-opt 2: \"foo=bar\""
    );
    assert_eq!(
        run_err(&["--security-opt", "systempaths=x"]),
        "invalid --security-opt 2: \"systempaths=x\""
    );
    assert_eq!(
        run_err(&["--security-opt", "no-new-privileges=maybe"]),
        "invalid --security-opt 2: \"no-new-privileges=maybe\""
    );
    assert_eq!(
        run_err(&["--security-opt", "label=bogus"]),
        "bad label option \"bogus\", valid options 'disable' or \n'user, role, level, type, filetype' followed by ':' and a value"
    );
    assert_eq!(
        run_err(&["--security-opt", "seccomp=/nonexistent/profile.json"]),
        "opening seccomp profile (/nonexistent/profile.json) failed: open /nonexistent/profile.json: no such file or directory"
    );
    let not_json = TempFile::new("seccomp-bad.json", b"{ nope");
    assert!(
        run_err(&["--security-opt", &format!("seccomp={}", not_json.path())]).starts_with(
            &format!(
                "compacting json for seccomp profile ({}) failed: ",
                not_json.path()
            )
        )
    );
    assert_eq!(
        run_err(&["--cap-add", "NET_WIZARD"]),
        "unknown capability: \"CAP_NET_WIZARD\""
    );
    assert_eq!(
        run_err(&["--cap-drop", "bogus"]),
        "unknown capability: \"CAP_BOGUS\""
    );
}

#[test]
fn namespace_modes() {
    let h = run(&[
        "--pid",
        "host",
        "--ipc",
        "shareable",
        "--uts",
        "host",
        "--userns",
        "host",
        "--cgroupns",
        "private",
    ])
    .host_config;
    assert_eq!(
        (
            h.pid_mode.as_str(),
            h.ipc_mode.as_str(),
            h.uts_mode.as_str(),
            h.userns_mode.as_str(),
            h.cgroupns_mode.as_str()
        ),
        ("host", "shareable", "host", "host", "private")
    );
    let h = run(&["--pid", "container:db", "--ipc", "container:db"]).host_config;
    assert_eq!(
        (h.pid_mode.as_str(), h.ipc_mode.as_str()),
        ("container:db", "container:db")
    );
    for (flags, message) in [
        (["--pid", "foo"], "--pid: invalid PID mode"),
        (["--pid", "container:"], "--pid: invalid PID mode"),
        (["--uts", "private"], "--uts: invalid UTS mode"),
        (["--userns", "keep-id"], "--userns: invalid USER mode"),
        (["--cgroupns", "shared"], "--cgroupns: invalid CGROUP mode"),
        (["--ipc", "public"], "invalid IPC mode: public"),
    ] {
        assert_eq!(run_err(&flags), message, "{flags:?}");
    }
}

#[test]
fn networks_and_dns() {
    let r = run(&[
        "--network",
        "host",
        "--dns",
        "8.8.8.8",
        "--dns",
        " ::ffff:1.1.1.1 ",
        "--dns-search",
        "example.com.",
        "--dns-option",
        "ndots:2",
        "--add-host",
        "db:10.0.0.2",
        "--add-host",
        "v6=[::1]",
        "--add-host",
        "gw:host-gateway",
        "--link",
        "db:database",
    ]);
    let h = &r.host_config;
    assert_eq!(h.network_mode, "host");
    assert_eq!(h.dns, strings(&["8.8.8.8", "1.1.1.1"]));
    assert_eq!(h.dns_search, strings(&["example.com"]));
    assert_eq!(h.dns_options, strings(&["ndots:2"]));
    assert_eq!(
        h.extra_hosts,
        Some(strings(&["db:10.0.0.2", "v6:::1", "gw:host-gateway"]))
    );
    assert_eq!(h.links, Some(strings(&["db:database"])));
    assert_eq!(run(&[]).host_config.network_mode, "");

    let args = parse_run(&[
        "--network",
        "appnet",
        "--network-alias",
        "web",
        "--ip",
        "10.1.0.5",
        "--ip6",
        "fd00::5",
        "--mac-address",
        "92:d0:c6:0a:29:33",
        "--link",
        "db",
        "--link-local-ip",
        "169.254.1.1",
        "busybox",
    ]);
    let request = args.to_request().unwrap();
    assert_eq!(request.host_config.network_mode, "appnet");
    assert_eq!(request.config.mac_address, "92:d0:c6:0a:29:33");
    assert_eq!(
        args.create.networks().unwrap(),
        [NetworkAttachment {
            network: "appnet".into(),
            aliases: strings(&["web"]),
            links: strings(&["db"]),
            ipv4_address: "10.1.0.5".into(),
            ipv6_address: "fd00::5".into(),
            link_local_ips: strings(&["169.254.1.1"]),
            mac_address: "92:d0:c6:0a:29:33".into(),
            ..Default::default()
        }]
    );
    // Long syntax, and several networks (flags go to the first).
    let args = parse_run(&[
        "--network",
        "name=front,alias=www,driver-opt=com.example.mtu=1400,gw-priority=10",
        "--network",
        "back",
        "--ip",
        "10.2.0.2",
        "busybox",
    ]);
    assert_eq!(args.to_request().unwrap().host_config.network_mode, "front");
    let networks = args.create.networks().unwrap();
    assert_eq!(networks.len(), 2);
    assert_eq!(networks[0].aliases, strings(&["www"]));
    assert_eq!(networks[0].driver_opts["com.example.mtu"], "1400");
    assert_eq!(
        (networks[0].gw_priority, networks[0].ipv4_address.as_str()),
        (10, "10.2.0.2")
    );
    assert_eq!(
        networks[1],
        NetworkAttachment {
            network: "back".into(),
            ..Default::default()
        }
    );
    // Without --network: Docker's "default" endpoint, legacy links stay off it.
    let args = parse_run(&["--link", "db", "busybox"]);
    assert_eq!(
        args.create.networks().unwrap(),
        [NetworkAttachment {
            network: "default".into(),
            ..Default::default()
        }]
    );

    for (flags, message) in [
        (&["--network-alias", "web"][..], "network-scoped aliases are only supported for user-defined networks"),
        (&["--network", "host", "--network", "appnet"], "conflicting options: cannot attach both user-defined and non-user-defined network-modes"),
        (&["--network", "a", "--network", "a"], "network \"a\" is specified multiple times"),
        (&["--ip", "1.2.3.4", "--network", "name=n,ip=1.2.3.5"], "conflicting options: cannot specify both --ip and per-network IPv4 address"),
        (&["--network", "name=n,foo=bar"], "invalid argument \"name=n,foo=bar\" for \"--network\" flag: invalid field key foo"),
        (&["--network", "alias=a"], "invalid argument \"alias=a\" for \"--network\" flag: network name/id is not specified"),
        (&["--network", "name=n,gw-priority=x"], "invalid argument \"name=n,gw-priority=x\" for \"--network\" flag: invalid gw-priority (x): invalid syntax"),
        (&["--network", "container:"], "invalid network mode: container:"),
        (&["--network", "n", "--ip", "10.0.0.300"], "invalid IPv4 address: 10.0.0.300"),
        (&["--network", "n", "--ip6", "10.0.0.3"], "invalid IPv6 address: 10.0.0.3"),
        (&["--mac-address", "zz:zz"], "zz:zz is not a valid mac address"),
        (&["--dns", "dns.google"], "invalid argument \"dns.google\" for \"--dns\" flag: IP address is not correctly formatted: dns.google"),
        (&["--dns-search", "-bad-"], "invalid argument \"-bad-\" for \"--dns-search\" flag: -bad- is not a valid domain"),
        (&["--add-host", "nohost"], "invalid argument \"nohost\" for \"--add-host\" flag: bad format for add-host: \"nohost\""),
        (&["--add-host", "h:1.2.3"], "invalid argument \"h:1.2.3\" for \"--add-host\" flag: invalid IP address in add-host: \"1.2.3\""),
        (&["--link", "a:b:c"], "invalid argument \"a:b:c\" for \"--link\" flag: bad format for links: a:b:c"),
    ] {
        assert_eq!(run_err(flags), message, "{flags:?}");
    }
}

#[test]
fn names_signals_timeouts() {
    assert_eq!(
        run(&["--name", "web_1.a-b"]).name.as_deref(),
        Some("web_1.a-b")
    );
    assert_eq!(run(&["--name", "/web"]).name.as_deref(), Some("web"));
    assert_eq!(run(&[]).name, None);
    for bad in ["-web", "a", "web/1", "wéb"] {
        assert_eq!(
            run_err(&["--name", bad]),
            format!("Invalid container name ({bad}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        );
    }
    for signal in [
        "SIGTERM",
        "term",
        "Sigusr1",
        "9",
        "RTMIN",
        "SIGRTMIN+3",
        "RTMAX-14",
        "64",
    ] {
        assert_eq!(run(&["--stop-signal", signal]).config.stop_signal, signal);
    }
    for bad in ["FOO", "0", "65", "RTMIN+16", "RTMAX-15", "RTMIN+03"] {
        assert_eq!(
            run_err(&["--stop-signal", bad]),
            format!("invalid signal: {bad}")
        );
    }
    assert_eq!(run(&["--stop-timeout", "30"]).config.stop_timeout, Some(30));
    assert_eq!(run(&["--stop-timeout", "-1"]).config.stop_timeout, Some(-1));
    assert_eq!(run(&[]).config.stop_timeout, None);
    assert_eq!(
        run_err(&["--stop-timeout", "10s"]),
        "invalid argument \"10s\" for \"--stop-timeout\" flag: strconv.ParseInt: parsing \"10s\": invalid syntax"
    );
    assert_eq!(run(&["--init"]).host_config.init, Some(true));
    assert_eq!(run(&["--init=false"]).host_config.init, Some(false));
    assert_eq!(run(&[]).host_config.init, None);
}

#[test]
fn healthchecks() {
    let c = run(&[
        "--health-cmd",
        "wget -q localhost",
        "--health-interval",
        "1m30s",
        "--health-timeout",
        "500ms",
        "--health-start-period",
        "1.5s",
        "--health-start-interval",
        "2s",
        "--health-retries",
        "3",
    ])
    .config;
    assert_eq!(
        c.healthcheck,
        Some(HealthConfig {
            test: strings(&["CMD-SHELL", "wget -q localhost"]),
            interval: 90_000_000_000,
            timeout: 500_000_000,
            start_period: 1_500_000_000,
            start_interval: 2_000_000_000,
            retries: 3,
        })
    );
    // Settings without a command keep the image's test.
    let c = run(&["--health-retries", "5"]).config;
    assert_eq!(
        c.healthcheck,
        Some(HealthConfig {
            retries: 5,
            ..Default::default()
        })
    );
    assert_eq!(run(&["--health-interval", "0s"]).config.healthcheck, None);
    assert_eq!(
        run(&["--no-healthcheck"]).config.healthcheck,
        Some(HealthConfig {
            test: strings(&["NONE"]),
            ..Default::default()
        })
    );
    assert_eq!(
        run_err(&["--no-healthcheck", "--health-cmd", "true"]),
        "--no-healthcheck conflicts with --health-* options"
    );
    assert_eq!(
        run_err(&["--health-interval", "-1s"]),
        "--health-interval cannot be negative"
    );
    assert_eq!(
        run_err(&["--health-retries", "-1"]),
        "--health-retries cannot be negative"
    );
    for (value, reason) in [
        ("5", "time: missing unit in duration \"5\""),
        ("5x", "time: unknown unit \"x\" in duration \"5x\""),
        ("soon", "time: invalid duration \"soon\""),
        ("", "time: invalid duration \"\""),
    ] {
        assert_eq!(
            run_err(&["--health-timeout", value]),
            format!("invalid argument \"{value}\" for \"--health-timeout\" flag: {reason}")
        );
    }
}

#[test]
fn logging_runtime_and_maps() {
    let h = run(&[
        "--log-driver",
        "json-file",
        "--log-opt",
        "max-size=10m",
        "--log-opt",
        "max-file=3",
        "--runtime",
        "crun",
        "--sysctl",
        "net.ipv4.ip_forward=1",
        "--sysctl",
        "kernel.shmmax=1000",
        "--annotation",
        "org.example/key=value",
        "--cgroup-parent",
        "/berth-test",
        "--cidfile",
        "/tmp/cid",
        "--isolation",
        "default",
    ])
    .host_config;
    assert_eq!(h.log_config.kind, "json-file");
    assert_eq!(h.log_config.config["max-size"], "10m");
    assert_eq!(h.log_config.config["max-file"], "3");
    assert_eq!(h.runtime, "crun");
    let sysctls = h.sysctls.unwrap();
    assert_eq!(
        (
            sysctls["net.ipv4.ip_forward"].as_str(),
            sysctls["kernel.shmmax"].as_str()
        ),
        ("1", "1000")
    );
    assert_eq!(h.annotations.unwrap()["org.example/key"], "value");
    assert_eq!(h.cgroup_parent, "/berth-test");
    assert_eq!(h.container_id_file, "/tmp/cid");
    assert_eq!(h.isolation, "default");
    let plain = run(&[]).host_config;
    assert_eq!(plain.log_config.kind, "");
    assert_eq!(
        (
            plain.sysctls,
            plain.annotations,
            plain.tmpfs,
            plain.storage_opt
        ),
        (None, None, None, None)
    );
    assert_eq!(
        run_err(&["--log-driver", "none", "--log-opt", "max-size=1m"]),
        "invalid logging opts for driver none"
    );
    assert_eq!(
        run_err(&["--sysctl", "kernel.hostname=x"]),
        "invalid argument \"kernel.hostname=x\" for \"--sysctl\" flag: sysctl 'kernel.hostname=x' is not allowed"
    );
}

#[test]
fn pull_policy_and_unsupported_flags() {
    assert_eq!(
        parse_run(&["busybox"]).create.pull_policy().unwrap(),
        PullPolicy::Missing
    );
    assert_eq!(
        parse_run(&["--pull", "always", "busybox"])
            .create
            .pull_policy()
            .unwrap(),
        PullPolicy::Always
    );
    assert_eq!(
        parse_run(&["--pull=never", "busybox"])
            .create
            .pull_policy()
            .unwrap(),
        PullPolicy::Never
    );
    assert_eq!(
        run_err(&["--pull", "sometimes"]),
        "invalid pull option: 'sometimes': must be one of \"always\", \"missing\" or \"never\""
    );
    assert_eq!(
        run_err(&["--use-api-socket"]),
        "--use-api-socket is not supported by berth: bind-mount the API socket with -v instead"
    );
    let r = parse_run(&[
        "-q",
        "--platform",
        "linux/amd64",
        "--disable-content-trust=false",
        "busybox",
    ]);
    assert!(r.create.quiet && !r.create.disable_content_trust);
    assert_eq!(r.create.platform.as_deref(), Some("linux/amd64"));
}

#[test]
fn detach_keys() {
    assert_eq!(parse_run(&["busybox"]).detach_keys().unwrap(), None);
    assert_eq!(
        parse_run(&["--detach-keys", "ctrl-p,ctrl-q", "busybox"])
            .detach_keys()
            .unwrap(),
        Some(vec![16, 17])
    );
    assert_eq!(
        parse_run(&["--detach-keys", "ctrl-@,a,ctrl-_", "busybox"])
            .detach_keys()
            .unwrap(),
        Some(vec![0, b'a', 31])
    );
    let err = parse_run(&["--detach-keys", "ctrl-P", "busybox"])
        .detach_keys()
        .unwrap_err();
    assert_eq!(err.to_string(), "Invalid detach keys (ctrl-P) provided");
}

#[test]
fn usage_error_for_the_cli() {
    let err = parse_run(&["-m", "x", "busybox"]).to_request().unwrap_err();
    let cli = err.to_cli_error("run");
    assert_eq!(cli.code, 125);
    assert_eq!(
        cli.message,
        "berth: invalid argument \"x\" for \"-m, --memory\" flag: invalid size: 'x'\nSee 'berth run --help'."
    );
}

#[test]
fn request_serializes_with_docker_names() {
    let r = run(&[
        "-p",
        "80:80",
        "--cpus",
        "1",
        "-e",
        "A=1",
        "--restart",
        "always",
    ]);
    let host = serde_json::to_value(&r.host_config).unwrap();
    assert_eq!(host["PortBindings"]["80/tcp"][0]["HostPort"], "80");
    assert_eq!(host["NanoCpus"], 1_000_000_000);
    assert_eq!(host["RestartPolicy"]["Name"], "always");
    let config = serde_json::to_value(&r.config).unwrap();
    assert_eq!(config["Env"][0], "A=1");
    assert!(config["ExposedPorts"]["80/tcp"].is_object());
}

#[test]
fn go_value_parsers() {
    use super::values::{go_duration, go_int, go_uint};
    assert_eq!(go_duration("1h2m3.5s"), Ok(3_723_500_000_000));
    assert_eq!(go_duration("-1.5us"), Ok(-1500));
    assert_eq!(go_duration("0"), Ok(0));
    assert_eq!(go_duration(".5s"), Ok(500_000_000));
    assert_eq!(go_duration("1µs"), Ok(1000));
    assert!(go_duration("1.s").is_ok());
    assert_eq!(go_duration("."), Err("time: invalid duration \".\"".into()));
    assert_eq!(
        go_duration("3000000h"),
        Err("time: invalid duration \"3000000h\"".into())
    );
    assert_eq!(go_int("0o17", 64), Ok(15));
    assert_eq!(go_int("017", 64), Ok(15));
    assert_eq!(go_int("-0b11", 64), Ok(-3));
    assert_eq!(go_int("1_000", 64), Ok(1000));
    assert_eq!(go_int("-9223372036854775808", 64), Ok(i64::MIN));
    assert!(go_int("9223372036854775808", 64)
        .unwrap_err()
        .ends_with("value out of range"));
    assert!(go_int("1__0", 64).unwrap_err().ends_with("invalid syntax"));
    assert!(go_int("", 64).unwrap_err().ends_with("invalid syntax"));
    assert_eq!(go_uint("65535", 16), Ok(65535));
    assert!(go_uint("-1", 16).unwrap_err().ends_with("invalid syntax"));
}
