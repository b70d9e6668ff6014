//! Specs from `build_spec` run for real: a busybox rootfs, the spec written
//! into a bundle, and the `berth-runtime` binary (built by
//! `cargo build -p berth-runtime` into the same target directory) running
//! it. The container reports what it sees; every container is force-deleted
//! by a guard, and its cgroups are checked to be gone.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use berth_engine::containers::model::{ContainerConfig, HostConfig, MountSpec, Ulimit};
use berth_engine::containers::spec::{build_spec, EtcFiles, NamespaceJoins, SpecInput};
use berth_testutil::TempDir;

/// Docker's 14 default capabilities as a /proc/<pid>/status mask.
const DEFAULT_CAP_MASK: &str = "00000000a80425fb";

fn runtime_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    // target/debug/deps/container_spec-… → target/debug/berth-runtime
    let bin = exe.parent()?.parent()?.join("berth-runtime");
    bin.is_file().then_some(bin)
}

/// Skips the test (returning early) when it cannot run here.
macro_rules! require_runtime {
    () => {{
        berth_testutil::require_root!();
        match runtime_binary() {
            Some(bin) => bin,
            None => {
                eprintln!(
                    "SKIPPED: no berth-runtime beside the test binary; run `cargo build -p berth-runtime` with the same CARGO_TARGET_DIR"
                );
                return;
            }
        }
    }};
}

fn cgroup_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

fn unique_id() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{:016x}{:032x}{:016x}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Cgroup directories left for `id` under any hierarchy.
fn cgroup_leftovers(id: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for top in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
        let name = format!("berth-{id}");
        let direct = Path::new(top).join(&name);
        if direct.exists() {
            found.push(direct);
        }
        for h in std::fs::read_dir(top).into_iter().flatten().flatten() {
            let p = h.path().join(&name);
            if p.exists() {
                found.push(p);
            }
        }
    }
    found
}

/// Force-deletes the container whatever happens to the test.
struct Guard<'a> {
    bin: &'a Path,
    state: &'a Path,
    id: String,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        let _ = Command::new(self.bin)
            .arg("--root")
            .arg(self.state)
            .args(["delete", "--force", &self.id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

struct Case {
    bin: PathBuf,
    tmp: TempDir,
    rootfs: PathBuf,
}

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    id: String,
}

impl Case {
    fn new(bin: PathBuf, name: &str) -> Case {
        let tmp = TempDir::new(name).expect("tempdir");
        let rootfs = tmp.join("rootfs");
        std::fs::create_dir_all(&rootfs).expect("rootfs dir");
        berth_testutil::busybox_rootfs(&rootfs).expect("busybox rootfs");
        Case { bin, tmp, rootfs }
    }

    /// Runs `sh -c script` with the spec built from `config` and `host`.
    fn run(&self, script: &str, mut config: ContainerConfig, host: &HostConfig) -> Outcome {
        config.cmd = Some(vec!["sh".into(), "-c".into(), script.into()]);
        let id = unique_id();
        let short = &id[..12];
        let etc = self.tmp.join(format!("etc-{short}"));
        std::fs::create_dir_all(&etc).expect("etc dir");
        let hostname = if config.hostname.is_empty() {
            short.to_string()
        } else {
            config.hostname.clone()
        };
        std::fs::write(etc.join("hostname"), format!("{hostname}\n")).expect("hostname");
        std::fs::write(
            etc.join("hosts"),
            format!("127.0.0.1\tlocalhost\n127.0.0.1\t{hostname}\n"),
        )
        .expect("hosts");
        std::fs::write(etc.join("resolv.conf"), "nameserver 192.0.2.53\n").expect("resolv.conf");
        let (h, hs, r) = (
            etc.join("hostname"),
            etc.join("hosts"),
            etc.join("resolv.conf"),
        );
        let spec = build_spec(&SpecInput {
            id: &id,
            config: &config,
            host,
            rootfs: &self.rootfs,
            etc_files: EtcFiles {
                hostname: Some(&h),
                hosts: Some(&hs),
                resolv_conf: Some(&r),
            },
            namespace_joins: NamespaceJoins::default(),
            init_binary: None,
            seccomp: None,
            cgroup_v2: cgroup_v2(),
        })
        .expect("build_spec");
        let bundle = self.tmp.join(format!("bundle-{short}"));
        std::fs::create_dir_all(&bundle).expect("bundle dir");
        std::fs::write(
            bundle.join("config.json"),
            serde_json::to_vec_pretty(&spec).expect("spec json"),
        )
        .expect("write config.json");
        let state = self.tmp.join("state");
        let (out_path, err_path) = (
            self.tmp.join(format!("out-{short}")),
            self.tmp.join(format!("err-{short}")),
        );
        let status = {
            let _guard = Guard {
                bin: &self.bin,
                state: &state,
                id: id.clone(),
            };
            // Output through files: the container inherits them and a pipe
            // could outlive the command.
            Command::new(&self.bin)
                .arg("--root")
                .arg(&state)
                .arg("run")
                .arg("--bundle")
                .arg(&bundle)
                .arg(&id)
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(&out_path).expect("stdout file"))
                .stderr(std::fs::File::create(&err_path).expect("stderr file"))
                .status()
                .expect("run berth-runtime")
        };
        let leftovers = cgroup_leftovers(&id);
        assert!(leftovers.is_empty(), "cgroups left behind: {leftovers:?}");
        Outcome {
            code: status.code(),
            stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
            stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
            id,
        }
    }

    /// Like [`Case::run`], asserting exit code 0; returns stdout.
    fn ok(&self, script: &str, config: ContainerConfig, host: &HostConfig) -> String {
        let o = self.run(script, config, host);
        assert_eq!(
            o.code,
            Some(0),
            "script {script:?} failed: stdout {:?} stderr {:?}",
            o.stdout,
            o.stderr
        );
        o.stdout
    }
}

fn field<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(name))
        .map(str::trim)
        .unwrap_or_else(|| panic!("{name} missing in {out:?}"))
}

#[test]
fn default_capabilities_and_cap_flags() {
    let bin = require_runtime!();
    let case = Case::new(bin, "spec-caps");
    let out = case.ok(
        "grep Cap /proc/self/status",
        ContainerConfig::default(),
        &HostConfig::default(),
    );
    assert_eq!(field(&out, "CapEff:"), DEFAULT_CAP_MASK);
    assert_eq!(field(&out, "CapBnd:"), DEFAULT_CAP_MASK);
    assert_eq!(field(&out, "CapInh:"), "0000000000000000");
    let host = HostConfig {
        cap_add: Some(vec!["net_admin".into()]),
        cap_drop: Some(vec!["CAP_NET_RAW".into()]),
        ..Default::default()
    };
    let out = case.ok(
        "grep CapEff /proc/self/status",
        ContainerConfig::default(),
        &host,
    );
    // + NET_ADMIN (bit 12), - NET_RAW (bit 13)
    assert_eq!(field(&out, "CapEff:"), "00000000a80415fb");
}

#[test]
fn user_lookup_in_the_rootfs() {
    let bin = require_runtime!();
    let case = Case::new(bin, "spec-user");
    let config = ContainerConfig {
        user: "nobody".into(),
        ..Default::default()
    };
    let out = case.ok(
        "id; grep CapEff /proc/self/status",
        config,
        &HostConfig::default(),
    );
    assert!(
        out.contains("uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)"),
        "{out}"
    );
    assert_eq!(
        field(&out, "CapEff:"),
        "0000000000000000",
        "no effective caps for a non-root user"
    );
    let config = ContainerConfig {
        user: "1234:5678".into(),
        ..Default::default()
    };
    let host = HostConfig {
        group_add: Some(vec!["root".into(), "4242".into()]),
        ..Default::default()
    };
    let out = case.ok("id -u; id -g; id -G", config, &host);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["1234", "5678", "5678 0 4242"]
    );
}

#[test]
fn masked_and_readonly_paths() {
    let bin = require_runtime!();
    let case = Case::new(bin, "spec-masked");
    let out = case.ok(
        "wc -c < /proc/interrupts; ls /sys/firmware | wc -l; grep ' /proc/sys ' /proc/mounts; echo 1 > /proc/sys/kernel/ns_last_pid && echo WROTE || echo REFUSED",
        ContainerConfig::default(),
        &HostConfig::default(),
    );
    let lines: Vec<&str> = out.lines().collect();
    // Both have content on the host: the zeros come from the masks.
    assert!(!std::fs::read_to_string("/proc/interrupts")
        .unwrap()
        .is_empty());
    assert!(std::fs::read_dir("/sys/firmware").unwrap().next().is_some());
    assert_eq!(lines[0].trim(), "0", "/proc/interrupts masked: {out}");
    assert_eq!(lines[1].trim(), "0", "/sys/firmware masked: {out}");
    assert!(
        lines[2].contains(" ro,") || lines[2].contains(" ro "),
        "/proc/sys read-only: {out}"
    );
    assert_eq!(lines.last(), Some(&"REFUSED"), "{out}");
}

#[test]
fn dev_contents_shm_and_hostname() {
    let bin = require_runtime!();
    let case = Case::new(bin, "spec-dev");
    let host = HostConfig {
        shm_size: 8 << 20,
        ..Default::default()
    };
    let o = case.run(
        "ls /dev; echo ---; grep ' /dev/shm ' /proc/mounts; echo ---; hostname; cat /etc/hostname; echo $HOSTNAME; cat /etc/resolv.conf; cat /proc/sys/kernel/domainname",
        ContainerConfig {
            domainname: "example.test".into(),
            ..Default::default()
        },
        &host,
    );
    assert_eq!(o.code, Some(0), "{} {}", o.stdout, o.stderr);
    let parts: Vec<&str> = o.stdout.split("---\n").collect();
    let dev: Vec<&str> = parts[0].split_whitespace().collect();
    for want in [
        "null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "shm", "mqueue", "fd",
        "stdin",
    ] {
        assert!(dev.contains(&want), "/dev lacks {want}: {dev:?}");
    }
    for unwanted in ["kvm", "loop0", "sda", "vda", "mem"] {
        assert!(
            !dev.contains(&unwanted),
            "/dev has host device {unwanted}: {dev:?}"
        );
    }
    assert!(parts[1].contains("size=8192k"), "shm: {}", parts[1]);
    let names: Vec<&str> = parts[2].lines().collect();
    let short = &o.id[..12];
    assert_eq!(names[..3], [short, short, short], "{names:?}");
    assert_eq!(names[3], "nameserver 192.0.2.53");
    assert_eq!(names[4], "example.test");
}

#[test]
fn resource_limits_reach_the_cgroup() {
    let bin = require_runtime!();
    let case = Case::new(bin, "spec-memory");
    let host = HostConfig {
        memory: 64 << 20,
        pids_limit: Some(42),
        cpu_shares: 512,
        ..Default::default()
    };
    let script = if cgroup_v2() {
        "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory.swap.max /sys/fs/cgroup/pids.max"
    } else {
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.shares"
    };
    let out = case.ok(script, ContainerConfig::default(), &host);
    let values: Vec<&str> = out.lines().collect();
    assert_eq!(values[0], (64u64 << 20).to_string());
    if cgroup_v2() {
        // v2 counts swap apart from memory: the 2x default leaves 64 MiB of swap.
        assert_eq!(values[1], (64u64 << 20).to_string());
    } else {
        assert_eq!(values[1], (128u64 << 20).to_string());
        assert_eq!(values[3], "512");
    }
    assert_eq!(values[2], "42");
}

#[test]
fn readonly_rootfs_with_tmpfs_and_binds() {
    let bin = require_runtime!();
    let case = Case::new(bin, "spec-readonly");
    let data = case.tmp.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("file"), "from the host\n").unwrap();
    let host = HostConfig {
        readonly_rootfs: true,
        tmpfs: Some([("/tmp".to_string(), "size=2m".to_string())].into()),
        binds: Some(vec![format!("{}:/data:ro", data.display())]),
        mounts: Some(vec![MountSpec {
            kind: "bind".into(),
            source: data.display().to_string(),
            target: "/rw".into(),
            ..Default::default()
        }]),
        ulimits: Some(vec![Ulimit {
            name: "nofile".into(),
            soft: 100,
            hard: 200,
        }]),
        ..Default::default()
    };
    let script = "touch /x 2>/dev/null && echo ROOT-WRITABLE; touch /tmp/ok && echo TMP-OK; \
        cat /data/file; touch /data/x 2>/dev/null && echo DATA-WRITABLE; touch /rw/made && echo RW-OK; \
        echo x >> /etc/hosts 2>/dev/null && echo HOSTS-WRITABLE; ulimit -n; ulimit -Hn";
    let out = case.ok(script, ContainerConfig::default(), &host);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["TMP-OK", "from the host", "RW-OK", "100", "200"],
        "{out}"
    );
    assert!(data.join("made").exists());
}

#[test]
fn privileged_container_runs() {
    let bin = require_runtime!();
    let case = Case::new(bin, "spec-privileged");
    let host = HostConfig {
        privileged: true,
        ..Default::default()
    };
    let own = std::fs::read_to_string("/proc/self/status").unwrap();
    let out = case.ok(
        "grep CapEff /proc/self/status; grep ' /sys ' /proc/mounts; ls /dev | wc -l",
        ContainerConfig::default(),
        &host,
    );
    assert_eq!(field(&out, "CapEff:"), field(&own, "CapEff:"));
    let sys = out.lines().nth(1).unwrap();
    assert!(sys.contains(" rw,"), "/sys writable: {sys}");
    let devices: usize = out.lines().last().unwrap().trim().parse().unwrap();
    assert!(
        devices > 15,
        "privileged sees the host's devices ({devices})"
    );
}

#[test]
fn unknown_user_is_refused_before_running() {
    let tmp = TempDir::new("spec-nouser").unwrap();
    berth_testutil::busybox_rootfs(tmp.path()).unwrap();
    let config = ContainerConfig {
        user: "ghost".into(),
        cmd: Some(vec!["true".into()]),
        ..Default::default()
    };
    let id = unique_id();
    let e = build_spec(&SpecInput {
        id: &id,
        config: &config,
        host: &HostConfig::default(),
        rootfs: tmp.path(),
        etc_files: EtcFiles::default(),
        namespace_joins: NamespaceJoins::default(),
        init_binary: None,
        seccomp: None,
        cgroup_v2: cgroup_v2(),
    })
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "unable to find user ghost: no matching entries in passwd file"
    );
    assert_eq!(e.exit_code(), 125);
}

/// The same specs under runc and crun: checks that the spec is portable
/// and that the expectations above are the reference runtimes' behaviour.
#[test]
fn peer_runtimes_run_the_same_specs() {
    berth_testutil::require_root!();
    let peers: Vec<PathBuf> = ["/usr/sbin/runc", "/usr/bin/runc", "/usr/bin/crun"]
        .into_iter()
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .collect();
    if peers.is_empty() {
        eprintln!("SKIPPED: neither runc nor crun is installed");
        return;
    }
    // crun refuses hybrid hosts whose cgroup2 hierarchy holds controllers
    // (this VM's has hugetlb), whatever the spec says.
    let hybrid_with_controllers =
        std::fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers")
            .is_ok_and(|c| !c.trim().is_empty());
    for peer in peers {
        if peer.ends_with("crun") && hybrid_with_controllers {
            eprintln!("SKIPPED for crun: it does not support this hybrid cgroup layout");
            continue;
        }
        check_peer(peer);
    }
}

fn check_peer(peer: PathBuf) {
    let name = peer.display().to_string();
    let case = Case::new(peer, "spec-peer");
    let config = ContainerConfig {
        user: "nobody".into(),
        ..Default::default()
    };
    let host = HostConfig {
        memory: 64 << 20,
        readonly_rootfs: true,
        tmpfs: Some([("/tmp".to_string(), String::new())].into()),
        ..Default::default()
    };
    let script = if cgroup_v2() {
        "id; grep CapBnd /proc/self/status; wc -c < /proc/interrupts; cat /sys/fs/cgroup/memory.max"
    } else {
        "id; grep CapBnd /proc/self/status; wc -c < /proc/interrupts; cat /sys/fs/cgroup/memory/memory.limit_in_bytes"
    };
    let out = case.ok(script, config, &host);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("uid=65534(nobody)"), "{name}: {out}");
    assert_eq!(field(&out, "CapBnd:"), DEFAULT_CAP_MASK, "{name}");
    assert_eq!(lines[2].trim(), "0", "{name}");
    assert_eq!(lines[3], (64u64 << 20).to_string(), "{name}");
    let out = case.ok(
        "grep CapEff /proc/self/status",
        ContainerConfig::default(),
        &HostConfig {
            privileged: true,
            ..Default::default()
        },
    );
    let own = std::fs::read_to_string("/proc/self/status").unwrap();
    assert_eq!(field(&out, "CapEff:"), field(&own, "CapEff:"), "{name}");
}

/// `--device` with cgroup permissions and a block I/O throttle, seen from
/// inside under berth-runtime and runc: the node exists, reads pass,
/// writes are refused by the device cgroup, and the throttle is in the
/// container's blkio cgroup.
#[test]
fn devices_and_block_io() {
    let bin = require_runtime!();
    // A block device this process can open (a VM may refuse its disks).
    let Some(disk) = ["/dev/loop0", "/dev/vda", "/dev/sda", "/dev/nvme0n1"]
        .into_iter()
        .find(|p| {
            std::fs::metadata(p)
                .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_block_device(&m.file_type()))
                && std::fs::File::open(p).is_ok()
        })
    else {
        eprintln!("SKIPPED: no readable block device on this host");
        return;
    };
    let mut runtimes = vec![bin];
    runtimes.extend(
        ["/usr/sbin/runc", "/usr/bin/runc"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.is_file()),
    );
    for runtime in runtimes {
        check_device_access(runtime, disk);
    }
}

fn check_device_access(runtime: PathBuf, disk: &str) {
    let rdev = std::os::unix::fs::MetadataExt::rdev(&std::fs::metadata(disk).unwrap());
    let numbers = format!(
        "{}:{}",
        nix::sys::stat::major(rdev),
        nix::sys::stat::minor(rdev)
    );
    let name = runtime.display().to_string();
    let case = Case::new(runtime, "spec-devices");
    let host = HostConfig {
        devices: vec![berth_engine::containers::model::DeviceMapping {
            path_on_host: disk.into(),
            path_in_container: "/dev/xdisk".into(),
            cgroup_permissions: "r".into(),
        }],
        blkio_device_read_bps: vec![berth_engine::containers::model::ThrottleDevice {
            path: disk.into(),
            rate: 1 << 20,
        }],
        ..Default::default()
    };
    let throttle = if cgroup_v2() {
        "cat /sys/fs/cgroup/io.max"
    } else {
        "cat /sys/fs/cgroup/blkio/blkio.throttle.read_bps_device"
    };
    let script = format!(
        "ls -l /dev/xdisk; dd if=/dev/xdisk of=/dev/null bs=512 count=1 2>/dev/null && echo READ-OK; \
         dd if=/dev/zero of=/dev/xdisk bs=512 count=1 conv=notrunc 2>&1 | grep -q 'Operation not permitted' && echo WRITE-REFUSED || echo WRITE-ALLOWED; {throttle}"
    );
    let out = case.ok(&script, ContainerConfig::default(), &host);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with('b'), "{name}: a block node: {out}");
    assert_eq!(lines[1], "READ-OK", "{name}: {out}");
    // Read-only for both runtimes: the device's access comes from the
    // spec's cgroup rules alone.
    assert_eq!(lines[2], "WRITE-REFUSED", "{name}: {out}");
    assert!(
        lines[3].contains(&numbers) && lines[3].contains("1048576"),
        "{name}: throttle for {numbers}: {out}"
    );
}

/// Namespace modes in a running container: the cgroup namespace default
/// (the host's on v1/hybrid, private on v2) and `--cgroupns private`,
/// `--network host` with the host's name and interfaces, and sysctls in
/// the container's own namespaces (Docker's defaults and `--sysctl`).
#[test]
fn namespaces_and_sysctls() {
    let bin = require_runtime!();
    let case = Case::new(bin, "spec-namespaces");
    let o = case.run(
        "grep -E '^(0|[0-9]+:memory):' /proc/self/cgroup",
        ContainerConfig::default(),
        &HostConfig::default(),
    );
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    let line = o.stdout.lines().next().unwrap_or_default().to_string();
    if cgroup_v2() {
        assert!(line.ends_with(":/"), "private by default on v2: {line}");
    } else {
        assert!(
            line.ends_with(&format!(":/berth-{}", o.id)),
            "the host's on v1: {line}"
        );
    }
    let host = HostConfig {
        cgroupns_mode: "private".into(),
        ..Default::default()
    };
    let out = case.ok(
        "grep -E '^[0-9]+:memory:' /proc/self/cgroup || grep '^0::' /proc/self/cgroup",
        ContainerConfig::default(),
        &host,
    );
    assert!(out.trim_end().ends_with(":/"), "--cgroupns private: {out}");

    let host = HostConfig {
        network_mode: "host".into(),
        ..Default::default()
    };
    let out = case.ok(
        "hostname; echo $HOSTNAME; ls /sys/class/net",
        ContainerConfig::default(),
        &host,
    );
    let own = nix::unistd::gethostname()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], [own.as_str(), own.as_str()]);
    let mut inside: Vec<&str> = lines[2..]
        .iter()
        .flat_map(|l| l.split_whitespace())
        .collect();
    let mut outside: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    inside.sort_unstable();
    outside.sort();
    assert_eq!(inside, outside, "the host's interfaces");

    let host = HostConfig {
        sysctls: Some(
            [
                ("net.ipv4.ip_forward".to_string(), "1".to_string()),
                ("kernel.shmmax".to_string(), "12345678".to_string()),
            ]
            .into(),
        ),
        ..Default::default()
    };
    let out = case.ok(
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax /proc/sys/net/ipv4/ip_unprivileged_port_start; ls /sys/class/net",
        ContainerConfig::default(),
        &host,
    );
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["1", "12345678", "0", "lo"]
    );
}
