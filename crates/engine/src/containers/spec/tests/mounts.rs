//! The mounts `build_spec` produces: read-only rootfs, user mounts over
//! the defaults, /dev/shm per IPC mode, propagation.

use serde_json::json;

use super::*;

#[test]
fn readonly_rootfs_and_user_mounts() {
    let f = Fixture::new();
    let data = f.tmp.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let host = HostConfig {
        readonly_rootfs: true,
        binds: Some(vec![
            format!("{}:/etc/hosts:ro", f.etc[1].display()),
            format!("{}:/var/lib/data", data.display()),
        ]),
        mounts: Some(vec![MountSpec {
            kind: "bind".into(),
            source: data.display().to_string(),
            target: "/var".into(),
            read_only: true,
            ..Default::default()
        }]),
        tmpfs: Some([("/run".to_string(), "size=1m,exec".to_string())].into()),
        shm_size: 1 << 20,
        ..Default::default()
    };
    let (s, _) = f.build(&cmd(&["true"]), &host).unwrap();
    assert_eq!(s["root"]["readonly"], true);
    let dests = destinations(&s);
    assert_eq!(
        dests.iter().filter(|d| *d == "/etc/hosts").count(),
        1,
        "{dests:?}"
    );
    // Shallow before deep: /var before /var/lib/data.
    let pos = |d: &str| dests.iter().position(|x| x == d).unwrap();
    assert!(pos("/var") < pos("/var/lib/data"));
    assert_eq!(
        options(mount(&s, "/etc/hosts").unwrap()),
        ["rbind", "rro", "rprivate"]
    );
    assert_eq!(mount(&s, "/etc/hosts").unwrap()["source"], json!(f.etc[1]));
    assert_eq!(
        options(mount(&s, "/etc/hostname").unwrap()),
        ["rbind", "ro", "rprivate"]
    );
    assert_eq!(
        options(mount(&s, "/var/lib/data").unwrap()),
        ["rbind", "rprivate"]
    );
    assert_eq!(
        options(mount(&s, "/var").unwrap()),
        ["rbind", "rro", "rprivate"]
    );
    assert_eq!(
        options(mount(&s, "/run").unwrap()),
        ["noexec", "nosuid", "nodev", "rprivate", "size=1m", "exec"]
            .iter()
            .filter(|o| **o != "noexec")
            .copied()
            .collect::<Vec<_>>()
    );
    assert!(options(mount(&s, "/sys/fs/cgroup").unwrap()).contains(&"ro"));
    assert!(!options(mount(&s, "/dev").unwrap()).contains(&"ro"));
    assert!(options(mount(&s, "/dev/shm").unwrap()).contains(&"size=1048576"));
}

#[test]
fn user_dev_replaces_dev_mounts() {
    let f = Fixture::new();
    let host = HostConfig {
        tmpfs: Some([("/dev".to_string(), String::new())].into()),
        ..Default::default()
    };
    let (s, _) = f.build(&cmd(&["true"]), &host).unwrap();
    let dests = destinations(&s);
    assert!(!dests.iter().any(|d| d.starts_with("/dev/")), "{dests:?}");
    assert_eq!(mount(&s, "/dev").unwrap()["type"], "tmpfs");
}

#[test]
fn ipc_modes_and_shm() {
    let f = Fixture::new();
    let (s, _) = f
        .build(
            &cmd(&["true"]),
            &HostConfig {
                ipc_mode: "none".into(),
                ..Default::default()
            },
        )
        .unwrap();
    assert!(mount(&s, "/dev/shm").is_none());
    assert!(namespaces_of(&s).contains(&"ipc".to_string()));
    let (s, _) = f
        .build(
            &cmd(&["true"]),
            &HostConfig {
                ipc_mode: "host".into(),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(mount(&s, "/dev/shm").unwrap()["source"], "/dev/shm");
    assert!(!namespaces_of(&s).contains(&"ipc".to_string()));
    let joins = NamespaceJoins {
        ipc: Some("/proc/4242/ns/ipc".into()),
        ..Default::default()
    };
    let host = HostConfig {
        ipc_mode: "container:db".into(),
        ..Default::default()
    };
    let (s, _) = f.build_with(&cmd(&["true"]), &host, joins, false).unwrap();
    assert_eq!(
        mount(&s, "/dev/shm").unwrap()["source"],
        "/proc/4242/root/dev/shm"
    );
    let ipc = &s["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["type"] == "ipc")
        .unwrap()["path"];
    assert_eq!(ipc, "/proc/4242/ns/ipc");
}

#[test]
fn shared_propagation_needs_a_shared_source() {
    let f = Fixture::new();
    let src = f.tmp.join("shared-src");
    std::fs::create_dir_all(&src).unwrap();
    let host = HostConfig {
        binds: Some(vec![format!("{}:/mnt:rshared", src.display())]),
        ..Default::default()
    };
    // Whether the temp dir's mount is shared depends on the host: check
    // that the spec agrees with mountinfo either way.
    match f.build(&cmd(&["true"]), &host) {
        Ok((s, _)) => {
            assert_eq!(s["linux"]["rootfsPropagation"], "shared");
            assert_eq!(options(mount(&s, "/mnt").unwrap()), ["rbind", "rshared"]);
        }
        Err(e) => assert!(e.to_string().contains("is not a shared mount"), "{e}"),
    }
}
