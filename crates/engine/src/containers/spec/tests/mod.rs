//! `build_spec` as a whole: the produced spec, serialized to JSON.

mod mounts;

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::*;
use crate::containers::model::{ContainerConfig, HostConfig, MountSpec};

const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

struct Fixture {
    tmp: berth_testutil::TempDir,
    rootfs: PathBuf,
    etc: [PathBuf; 3],
}

impl Fixture {
    fn new() -> Self {
        let tmp = berth_testutil::TempDir::new("spec-build").unwrap();
        let rootfs = tmp.join("rootfs");
        std::fs::create_dir_all(rootfs.join("etc")).unwrap();
        std::fs::write(
            rootfs.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            rootfs.join("etc/group"),
            "root:x:0:\nnogroup:x:65534:\napp:x:1000:\nwheel:x:10:app\n",
        )
        .unwrap();
        let etc = ["hostname", "hosts", "resolv.conf"].map(|n| {
            let p = tmp.join(n);
            std::fs::write(&p, "x\n").unwrap();
            p
        });
        Fixture { tmp, rootfs, etc }
    }

    fn build(
        &self,
        config: &ContainerConfig,
        host: &HostConfig,
    ) -> Result<(Value, Vec<String>), SpecError> {
        self.build_with(config, host, NamespaceJoins::default(), false)
    }

    fn build_with(
        &self,
        config: &ContainerConfig,
        host: &HostConfig,
        joins: NamespaceJoins,
        cgroup_v2: bool,
    ) -> Result<(Value, Vec<String>), SpecError> {
        let init = self.tmp.join("berth-init");
        let input = SpecInput {
            id: ID,
            config,
            host,
            rootfs: &self.rootfs,
            etc_files: EtcFiles {
                hostname: Some(&self.etc[0]),
                hosts: Some(&self.etc[1]),
                resolv_conf: Some(&self.etc[2]),
            },
            namespace_joins: joins,
            init_binary: Some(&init),
            seccomp: Some(LinuxSeccomp::default()),
            cgroup_v2,
        };
        let (spec, warnings) = build_on(&input, &info())?;
        let text = serde_json::to_string(&spec).unwrap();
        // What the runtime will read back.
        let back: oci_spec::runtime::Spec = serde_json::from_str(&text).unwrap();
        assert_eq!(back, spec);
        Ok((serde_json::from_str(&text).unwrap(), warnings))
    }
}

fn info() -> HostInfo {
    let mut all: Vec<::caps::Capability> = ::caps::all().into_iter().collect();
    all.sort_by_key(|c| c.index());
    HostInfo {
        cpus: 2,
        online_cpus: "0-1".into(),
        online_mems: "0".into(),
        swap_limit: true,
        cpu_realtime: false,
        capabilities: all
            .iter()
            .map(|c| c.to_string())
            .filter(|c| c != "CAP_SYS_RESOURCE")
            .collect(),
    }
}

fn cmd(args: &[&str]) -> ContainerConfig {
    ContainerConfig {
        cmd: Some(args.iter().map(|s| s.to_string()).collect()),
        ..Default::default()
    }
}

fn mount<'a>(spec: &'a Value, dest: &str) -> Option<&'a Value> {
    spec["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["destination"] == dest)
}

fn destinations(spec: &Value) -> Vec<String> {
    spec["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["destination"].as_str().unwrap().to_string())
        .collect()
}

fn options(m: &Value) -> Vec<&str> {
    m["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap())
        .collect()
}

fn namespaces_of(spec: &Value) -> Vec<String> {
    spec["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn docker_defaults() {
    let f = Fixture::new();
    let (s, warnings) = f
        .build(&cmd(&["sh", "-c", "true"]), &HostConfig::default())
        .unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let p = &s["process"];
    assert_eq!(p["args"], json!(["sh", "-c", "true"]));
    assert_eq!(
        p["env"],
        json!([format!("PATH={DEFAULT_PATH_ENV}"), "HOSTNAME=0123456789ab"])
    );
    assert_eq!(p["cwd"], "/");
    assert_eq!(p["terminal"], false);
    assert_eq!(
        p["user"],
        json!({"uid": 0, "gid": 0, "additionalGids": [0]})
    );
    assert_eq!(p["capabilities"]["bounding"].as_array().unwrap().len(), 14);
    assert!(p.get("rlimits").is_none(), "no default rlimits: {p}");
    assert!(p.get("noNewPrivileges").is_none() && p.get("oomScoreAdj").is_none());
    assert!(p.get("consoleSize").is_none());
    assert_eq!(s["hostname"], "0123456789ab");
    assert_eq!(s["root"], json!({"path": f.rootfs, "readonly": false}));
    assert_eq!(
        destinations(&s),
        [
            "/proc",
            "/dev",
            "/dev/pts",
            "/sys",
            "/sys/fs/cgroup",
            "/dev/mqueue",
            "/dev/shm",
            "/etc/resolv.conf",
            "/etc/hostname",
            "/etc/hosts"
        ]
    );
    assert_eq!(mount(&s, "/sys/fs/cgroup").unwrap()["type"], "cgroup");
    assert_eq!(
        options(mount(&s, "/sys").unwrap()),
        ["nosuid", "noexec", "nodev", "ro"]
    );
    assert_eq!(
        options(mount(&s, "/dev/shm").unwrap()),
        ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]
    );
    assert_eq!(
        mount(&s, "/etc/hosts").unwrap(),
        &json!({"destination": "/etc/hosts", "type": "bind", "source": f.etc[1], "options": ["rbind", "rprivate"]})
    );
    let l = &s["linux"];
    assert_eq!(namespaces_of(&s), ["mount", "network", "uts", "pid", "ipc"]);
    assert_eq!(l["cgroupsPath"], format!("/berth-{ID}"));
    assert_eq!(
        l["resources"]["devices"][0],
        json!({"allow": false, "access": "rwm"})
    );
    assert!(l["maskedPaths"]
        .as_array()
        .unwrap()
        .contains(&json!("/proc/kcore")));
    assert_eq!(l["readonlyPaths"].as_array().unwrap().len(), 5);
    assert!(l.get("seccomp").is_some());
    assert!(l.get("rootfsPropagation").is_none());
    assert!(l["resources"].get("memory").is_none());
    if Path::new("/proc/sys/net/ipv4/ip_unprivileged_port_start").exists() {
        assert_eq!(l["sysctl"]["net.ipv4.ip_unprivileged_port_start"], "0");
    }
}

#[test]
fn process_settings() {
    let f = Fixture::new();
    let config = ContainerConfig {
        entrypoint: Some(vec!["/entry".into()]),
        cmd: Some(vec!["arg".into()]),
        env: vec![
            "PATH=/bin".into(),
            "A=1".into(),
            "HOSTNAME".into(),
            "B=2".into(),
            "A=3".into(),
        ],
        tty: true,
        working_dir: "/srv/app/../data".into(),
        user: "app".into(),
        hostname: "web".into(),
        domainname: "example.org".into(),
        ..Default::default()
    };
    let host = HostConfig {
        console_size: [24, 80],
        group_add: Some(vec!["nogroup".into()]),
        oom_score_adj: 500,
        security_opt: Some(vec!["no-new-privileges".into(), "apparmor=foo".into()]),
        ulimits: Some(vec![crate::containers::model::Ulimit {
            name: "nofile".into(),
            soft: 64,
            hard: 128,
        }]),
        annotations: Some([("org.example/k".to_string(), "v".to_string())].into()),
        ..Default::default()
    };
    let (s, warnings) = f.build(&config, &host).unwrap();
    assert_eq!(warnings.len(), 1, "apparmor warns: {warnings:?}");
    let p = &s["process"];
    assert_eq!(p["args"], json!(["/entry", "arg"]));
    assert_eq!(p["env"], json!(["PATH=/bin", "TERM=xterm", "A=3", "B=2"]));
    assert_eq!(p["terminal"], true);
    assert_eq!(p["consoleSize"], json!({"height": 24, "width": 80}));
    assert_eq!(p["cwd"], "/srv/data");
    assert!(
        f.rootfs.join("srv/data").is_dir(),
        "the working directory is created"
    );
    assert_eq!(
        p["user"],
        json!({"uid": 1000, "gid": 1000, "additionalGids": [1000, 10, 65534]})
    );
    assert_eq!(p["oomScoreAdj"], 500);
    assert_eq!(p["noNewPrivileges"], true);
    assert_eq!(
        p["rlimits"],
        json!([{"type": "RLIMIT_NOFILE", "hard": 128, "soft": 64}])
    );
    assert_eq!(s["hostname"], "web");
    assert_eq!(s["domainname"], "example.org");
    assert_eq!(s["annotations"], json!({"org.example/k": "v"}));
}

#[test]
fn init_wraps_the_command() {
    let f = Fixture::new();
    let host = HostConfig {
        init: Some(true),
        ..Default::default()
    };
    let (s, _) = f.build(&cmd(&["sleep", "1"]), &host).unwrap();
    assert_eq!(s["process"]["args"], json!([INIT_PATH, "--", "sleep", "1"]));
    let m = mount(&s, INIT_PATH).unwrap();
    assert_eq!(m["source"], json!(f.tmp.join("berth-init")));
    assert_eq!(options(m), ["bind", "ro"]);
    // In another PID namespace there is an init already.
    let host = HostConfig {
        init: Some(true),
        pid_mode: "host".into(),
        ..Default::default()
    };
    let (s, _) = f.build(&cmd(&["sleep", "1"]), &host).unwrap();
    assert_eq!(s["process"]["args"], json!(["sleep", "1"]));
    assert!(mount(&s, INIT_PATH).is_none());
    assert!(!namespaces_of(&s).contains(&"pid".to_string()));
}

#[test]
fn privileged() {
    let f = Fixture::new();
    let host = HostConfig {
        privileged: true,
        ..Default::default()
    };
    let (s, _) = f.build(&cmd(&["true"]), &host).unwrap();
    let l = &s["linux"];
    assert_eq!(l["maskedPaths"], json!([]));
    assert_eq!(l["readonlyPaths"], json!([]));
    assert_eq!(
        l["resources"]["devices"],
        json!([{"allow": true, "access": "rwm"}])
    );
    assert!(l["devices"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["path"] == "/dev/null"));
    assert!(l.get("seccomp").is_none(), "privileged runs unconfined");
    assert!(!options(mount(&s, "/sys").unwrap()).contains(&"ro"));
    assert!(!options(mount(&s, "/sys/fs/cgroup").unwrap()).contains(&"ro"));
    let bounding = s["process"]["capabilities"]["bounding"].as_array().unwrap();
    assert_eq!(bounding.len(), info().capabilities.len());
    assert!(!bounding.contains(&json!("CAP_SYS_RESOURCE")));
}

#[test]
fn cgroup_v2_host() {
    let f = Fixture::new();
    let (s, _) = f
        .build_with(
            &cmd(&["true"]),
            &HostConfig::default(),
            NamespaceJoins::default(),
            true,
        )
        .unwrap();
    assert_eq!(mount(&s, "/sys/fs/cgroup").unwrap()["type"], "cgroup2");
    assert!(namespaces_of(&s).contains(&"cgroup".to_string()));
    let host = HostConfig {
        cgroup_parent: "/custom/parent/".into(),
        ..Default::default()
    };
    let (s, _) = f.build(&cmd(&["true"]), &host).unwrap();
    assert_eq!(s["linux"]["cgroupsPath"], format!("/custom/parent/{ID}"));
}

#[test]
fn host_namespaces() {
    let f = Fixture::new();
    let host = HostConfig {
        network_mode: "host".into(),
        uts_mode: "host".into(),
        ..Default::default()
    };
    let (s, _) = f.build(&cmd(&["true"]), &host).unwrap();
    assert_eq!(namespaces_of(&s), ["mount", "pid", "ipc"]);
    assert!(s.get("hostname").is_none());
    let name = nix::unistd::gethostname()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(s["process"]["env"]
        .as_array()
        .unwrap()
        .contains(&json!(format!("HOSTNAME={name}"))));
    assert!(
        s["linux"].get("sysctl").is_none(),
        "no network defaults in the host's namespace"
    );
}

#[test]
fn resources_and_devices_in_spec() {
    let f = Fixture::new();
    let host = HostConfig {
        memory: 32 << 20,
        nano_cpus: 500_000_000,
        pids_limit: Some(64),
        devices: vec![crate::containers::model::DeviceMapping {
            path_on_host: "/dev/zero".into(),
            path_in_container: "/dev/myzero".into(),
            cgroup_permissions: "r".into(),
        }],
        ..Default::default()
    };
    let (s, _) = f.build(&cmd(&["true"]), &host).unwrap();
    let r = &s["linux"]["resources"];
    assert_eq!(r["memory"], json!({"limit": 32 << 20, "swap": 64 << 20}));
    assert_eq!(r["cpu"], json!({"quota": 50000, "period": 100000}));
    assert_eq!(r["pids"], json!({"limit": 64}));
    assert_eq!(
        r["devices"].as_array().unwrap().last().unwrap(),
        &json!({"allow": true, "type": "c", "major": 1, "minor": 5, "access": "r"})
    );
    assert_eq!(s["linux"]["devices"][0]["path"], "/dev/myzero");
}

#[test]
fn refused_input() {
    let f = Fixture::new();
    let err = |config: ContainerConfig, host: HostConfig| f.build(&config, &host).unwrap_err();
    let e = err(ContainerConfig::default(), HostConfig::default());
    assert!(e.to_string().starts_with("no command specified"), "{e}");
    assert_eq!(e.exit_code(), 125);
    let e = err(
        ContainerConfig {
            hostname: "h".repeat(65),
            ..cmd(&["true"])
        },
        HostConfig::default(),
    );
    assert!(
        e.to_string().contains("is too long (maximum 64 bytes)"),
        "{e}"
    );
    let e = err(
        cmd(&["true"]),
        HostConfig {
            oom_score_adj: 1001,
            ..Default::default()
        },
    );
    assert!(
        e.to_string()
            .starts_with("Invalid value 1001, range for oom score adj is [-1000, 1000]"),
        "{e}"
    );
    let e = err(
        cmd(&["true"]),
        HostConfig {
            cgroup_parent: "../escape".into(),
            ..Default::default()
        },
    );
    assert!(e.to_string().contains("--cgroup-parent"), "{e}");
    let e = err(
        ContainerConfig {
            working_dir: "rel".into(),
            ..cmd(&["true"])
        },
        HostConfig::default(),
    );
    assert!(
        e.to_string()
            .starts_with("the working directory 'rel' is invalid"),
        "{e}"
    );
    std::fs::write(f.rootfs.join("file"), "").unwrap();
    let e = err(
        ContainerConfig {
            working_dir: "/file".into(),
            ..cmd(&["true"])
        },
        HostConfig::default(),
    );
    assert!(
        e.to_string()
            .starts_with("Cannot mkdir: /file is not a directory"),
        "{e}"
    );
    let e = err(
        ContainerConfig {
            user: "ghost".into(),
            ..cmd(&["true"])
        },
        HostConfig::default(),
    );
    assert_eq!(
        e.to_string(),
        "unable to find user ghost: no matching entries in passwd file"
    );
    let e = err(
        cmd(&["true"]),
        HostConfig {
            memory: 1 << 20,
            ..Default::default()
        },
    );
    assert!(
        e.to_string()
            .starts_with("Minimum memory limit allowed is 6MB"),
        "{e}"
    );
    let e = err(
        cmd(&["true"]),
        HostConfig {
            shm_size: -1,
            ..Default::default()
        },
    );
    assert!(
        e.to_string().starts_with("SHM size can not be less than 0"),
        "{e}"
    );
    let e = err(
        cmd(&["true"]),
        HostConfig {
            binds: Some(vec!["vol:/data".into()]),
            ..Default::default()
        },
    );
    // Volumes are resolved to host directories before a spec is built.
    assert!(
        e.to_string()
            .contains("was not resolved to its directory before building the spec"),
        "{e}"
    );
    let e = err(
        cmd(&["true"]),
        HostConfig {
            network_mode: "host".into(),
            sysctls: Some([("net.core.somaxconn".to_string(), "1".to_string())].into()),
            ..Default::default()
        },
    );
    assert!(e.to_string().contains("host's network namespace"), "{e}");
    let e = err(
        cmd(&["true"]),
        HostConfig {
            isolation: "hyperv".into(),
            ..Default::default()
        },
    );
    assert!(
        e.to_string().starts_with("invalid isolation (hyperv)"),
        "{e}"
    );
    let e = err(
        cmd(&["true"]),
        HostConfig {
            device_requests: Some(vec![json!({"Count": -1})]),
            ..Default::default()
        },
    );
    assert!(e.to_string().contains("--gpus"), "{e}");
    let e = err(
        cmd(&["true"]),
        HostConfig {
            cap_add: Some(vec!["NOPE".into()]),
            ..Default::default()
        },
    );
    assert!(
        e.to_string()
            .starts_with("unknown capability: \"CAP_NOPE\""),
        "{e}"
    );
}

#[test]
fn container_id_must_be_a_plain_name() {
    let f = Fixture::new();
    let (config, host) = (cmd(&["true"]), HostConfig::default());
    for id in ["short", "../../../../etc/x", "0123456789ab/cd"] {
        let input = SpecInput {
            id,
            config: &config,
            host: &host,
            rootfs: &f.rootfs,
            etc_files: EtcFiles::default(),
            namespace_joins: NamespaceJoins::default(),
            init_binary: None,
            seccomp: None,
            cgroup_v2: false,
        };
        let e = build_on(&input, &info()).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Internal, "{id}: {e}");
    }
}

#[test]
fn resolve_user_for_exec() {
    let f = Fixture::new();
    let u = resolve_user(&f.rootfs, "app", &["nogroup".into()]).unwrap();
    assert_eq!((u.uid(), u.gid()), (1000, 1000));
    assert_eq!(u.additional_gids().as_deref(), Some(&[1000, 10, 65534][..]));
    assert!(matches!(
        resolve_user(&f.rootfs, "ghost", &[]),
        Err(SpecError::UserNotFound { .. })
    ));
}
