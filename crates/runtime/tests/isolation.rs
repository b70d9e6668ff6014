//! What the container can see and do: namespaces, user-namespace id maps,
//! cgroup limits, capabilities, seccomp, read-only and masked paths,
//! sysctl, rlimits.

mod common;

use berth_testutil::require_root;
use common::*;
use serde_json::json;

fn host_ns(name: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{name}"))
        .expect("host ns")
        .to_string_lossy()
        .into_owned()
}

#[test]
fn namespaces_are_private() {
    require_root!();
    let env = Env::new("ns", &["true"]);
    env.edit(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().expect("namespaces");
        ns.push(json!({"type": "cgroup"}));
        ns.push(json!({"type": "time"}));
        c["linux"]["timeOffsets"] = json!({"boottime": {"secs": 1_000_000, "nanosecs": 0}});
    });
    let out = env.sh(
        "hostname; echo pid=$$; ls /sys/class/net | tr '\\n' ' '; echo; \
         for n in ipc uts net mnt pid cgroup time; do readlink /proc/self/ns/$n; done; \
         cat /proc/self/cgroup | head -n 3; cut -d. -f1 /proc/uptime",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "berth-test");
    assert_eq!(lines[1], "pid=1");
    assert_eq!(
        lines[2].trim(),
        "lo",
        "only loopback in a new network namespace"
    );
    for (i, n) in ["ipc", "uts", "net", "mnt", "pid", "cgroup", "time"]
        .iter()
        .enumerate()
    {
        assert_ne!(
            lines[3 + i],
            host_ns(n),
            "{n} namespace shared with the host"
        );
    }
    // In its own cgroup namespace the container's cgroup is the root.
    for l in &lines[10..13] {
        assert!(l.ends_with(":/"), "cgroup namespace root: {l}");
    }
    let uptime: u64 = lines[13].parse().expect("uptime");
    assert!(
        uptime >= 1_000_000,
        "time namespace boottime offset: {uptime}"
    );
}

#[test]
fn loopback_is_up_in_a_new_network_namespace() {
    require_root!();
    let env = Env::new("lo", &["true"]);
    let out = env.sh("cat /sys/class/net/lo/operstate /sys/class/net/lo/flags");
    // IFF_UP is bit 0 of the flags.
    let flags = out.lines().nth(1).expect("flags");
    let flags = u32::from_str_radix(flags.trim_start_matches("0x"), 16).expect("hex");
    assert_eq!(flags & 1, 1, "lo is down: {out}");
}

#[test]
fn user_namespace_maps_ids() {
    require_root!();
    let env = Env::new("userns", &["true"]);
    // The unprivileged container root must be able to reach its rootfs.
    std::fs::set_permissions(
        env.tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    env.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .expect("namespaces")
            .push(json!({"type": "user"}));
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    });
    let out = env.sh("cat /proc/self/uid_map /proc/self/gid_map; id -u; stat -c %u /bin/busybox; touch /tmp/owned");
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["0", "200000", "65536"]);
    assert_eq!(lines[1], ["0", "200000", "65536"]);
    assert_eq!(lines[2], ["0"]);
    // Host root is unmapped inside: its files show as the overflow uid.
    assert_eq!(lines[3], ["65534"]);
    let meta = std::fs::metadata(env.rootfs("/tmp/owned")).expect("file made in the container");
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 200000);
}

#[test]
fn dropped_capabilities_are_denied() {
    require_root!();
    // runc's default spec keeps only AUDIT_WRITE, KILL, NET_BIND_SERVICE.
    let env = Env::new("caps", &["true"]);
    let (code, _, err) = env.run_args(&["sh", "-c", "touch /tmp/f && chown 1:1 /tmp/f"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("Operation not permitted"), "{err}");
    let (code, _, err) = env.run_args(&["ping", "-c", "1", "-W", "1", "127.0.0.1"]);
    assert_ne!(code, Some(0), "ping without CAP_NET_RAW succeeded");
    assert!(
        err.contains("ermission denied") || err.contains("not permitted"),
        "{err}"
    );

    // With the capabilities granted both work: the failures above were the caps.
    env.edit(|c| {
        for set in ["bounding", "effective", "permitted"] {
            let list = c["process"]["capabilities"][set]
                .as_array_mut()
                .expect("caps");
            list.push(json!("CAP_CHOWN"));
            list.push(json!("CAP_NET_RAW"));
        }
    });
    env.sh("touch /tmp/f && chown 1:1 /tmp/f && ping -c 1 -W 1 127.0.0.1 >/dev/null");
}

#[test]
fn seccomp_rule_returns_eperm() {
    require_root!();
    let env = Env::new("seccomp", &["true"]);
    env.edit(|c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
        });
    });
    let (code, _, err) = env.run_args(&["mkdir", "/tmp/blocked"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("Operation not permitted"), "{err}");
    assert!(!env.rootfs("/tmp/blocked").exists());
    // Without no_new_privs the filter is loaded while CAP_SYS_ADMIN is held.
    env.edit(|c| c["process"]["noNewPrivileges"] = json!(false));
    let (code, _, err) = env.run_args(&["mkdir", "/tmp/blocked"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("Operation not permitted"), "{err}");
    env.sh("touch /tmp/allowed");
}

/// The last exec goes through the dmz with execveat; a profile that
/// refuses execveat (and allows execve) still runs the process, through
/// /proc/self/fd/N of the same sealed memfd.
#[test]
fn seccomp_refusing_execveat_still_starts_the_process() {
    require_root!();
    let env = Env::new("seccomp-execveat", &["true"]);
    for nnp in [true, false] {
        env.edit(|c| {
            c["process"]["noNewPrivileges"] = json!(nnp);
            c["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [{"names": ["execveat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
            });
        });
        assert_eq!(env.sh("echo started"), "started\n", "noNewPrivileges {nnp}");
    }
}

#[test]
fn readonly_rootfs_and_masked_paths() {
    require_root!();
    let env = Env::new("ro", &["true"]);
    env.edit(|c| c["root"]["readonly"] = json!(true));
    let (code, _, err) = env.run_args(&["touch", "/newfile"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("Read-only file system"), "{err}");
    // runc's default spec masks /proc/timer_list, /proc/keys, /proc/acpi,
    // /sys/firmware (those this kernel has) and makes /proc/sys read-only;
    // a file and a directory of the image are masked on request.
    std::fs::write(env.rootfs("/etc/secret"), "secret").expect("secret");
    std::fs::create_dir_all(env.rootfs("/etc/secretdir")).expect("dir");
    std::fs::write(env.rootfs("/etc/secretdir/key"), "key").expect("key");
    env.edit(|c| {
        let m = c["linux"]["maskedPaths"]
            .as_array_mut()
            .expect("maskedPaths");
        m.push(json!("/etc/secret"));
        m.push(json!("/etc/secretdir"));
    });
    let out = env.sh(
        "wc -c < /proc/timer_list; wc -c < /proc/keys; ls /proc/acpi | wc -l; ls /sys/firmware | wc -l; \
         wc -c < /etc/secret; ls /etc/secretdir | wc -l; \
         echo x > /proc/sys/kernel/domainname 2>/dev/null && echo writable || echo readonly",
    );
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(lines, ["0", "0", "0", "0", "0", "0", "readonly"]);
}

/// The cgroup filesystems show the container's own cgroup whether they are
/// mounted last (nothing later below them: the init mounts the rest while
/// it is moved into its cgroup) or in their place (a later mount below
/// them, which must land on top).
#[test]
fn cgroup_mounts_show_the_containers_cgroup_in_either_order() {
    require_root!();
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        eprintln!("skipped: a pure cgroup v2 host (the init is born in its cgroup)");
        return;
    }
    // pids.max exists in every v1 pids cgroup but the root one.
    let script = "cat /sys/fs/cgroup/pids/pids.max; \
                  grep -c ' /sys/fs/cgroup/memory ' /proc/self/mountinfo; \
                  grep ' /sys/fs/cgroup/memory ' /proc/self/mountinfo | tail -n 1 | grep -o ' - [a-z0-9]*'";
    let env = Env::new("cgmounts", &["true"]);
    let out = env.sh(script);
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(lines[0], "max", "the pids cgroup mounted last: {out}");
    assert_eq!(lines[1], "1", "{out}");

    env.edit(|c| {
        c["mounts"].as_array_mut().expect("mounts").push(
            json!({"destination": "/sys/fs/cgroup/memory", "type": "tmpfs", "source": "tmpfs"}),
        );
    });
    let out = env.sh(script);
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(lines[0], "max", "the pids cgroup mounted in place: {out}");
    assert_eq!(lines[1], "2", "{out}");
    assert_eq!(lines[2], "- tmpfs", "the later mount is on top: {out}");
}

#[test]
fn cgroup_memory_limit_oom_kills() {
    require_root!();
    let env = Env::new("oom", &["true"]);
    env.edit(|c| {
        c["linux"]["resources"]["memory"] =
            json!({"limit": 16 * 1024 * 1024, "swap": 16 * 1024 * 1024});
    });
    // The shell grows a 64 MB variable: the OOM killer ends it.
    let (code, out, _) = env.run_args(&[
        "sh",
        "-c",
        "x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo survived ${#x}",
    ]);
    assert!(!out.contains("survived"), "no OOM kill: {out}");
    assert_eq!(code, Some(137), "exit code of an OOM-killed init");
}

#[test]
fn cgroup_pids_and_cpu_limits_hold() {
    require_root!();
    let env = Env::new(
        "pids",
        &[
            "sh",
            "-c",
            "(for i in $(seq 40); do sleep 100 & done) 2>/tmp/forkerr; exec sleep 100",
        ],
    );
    env.edit(|c| {
        c["linux"]["resources"]["pids"] = json!({"limit": 10});
        c["linux"]["resources"]["cpu"] = json!({"quota": 50000, "period": 100000, "shares": 512});
    });
    let id = unique_id("pids");
    let _g = env.create(&id);
    env.ok(&["start", &id]);
    wait_file(&env.rootfs("/tmp/forkerr"), |s| s.contains("fork"));
    let pids: Vec<i32> =
        serde_json::from_str(&env.ok(&["ps", "--format", "json", &id])).expect("ps");
    assert!(
        pids.len() <= 10,
        "{} processes despite pids.max 10",
        pids.len()
    );
    let cpu = ["/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpu"]
        .iter()
        .map(|d| std::path::Path::new(d).join(&id))
        .find(|p| p.join("cpu.cfs_quota_us").exists());
    if let Some(cpu) = cpu {
        assert_eq!(
            std::fs::read_to_string(cpu.join("cpu.cfs_quota_us"))
                .expect("quota")
                .trim(),
            "50000"
        );
        assert_eq!(
            std::fs::read_to_string(cpu.join("cpu.shares"))
                .expect("shares")
                .trim(),
            "512"
        );
    } else {
        let v2 = std::path::Path::new("/sys/fs/cgroup")
            .join(&id)
            .join("cpu.max");
        assert_eq!(
            std::fs::read_to_string(v2).expect("cpu.max").trim(),
            "50000 100000"
        );
    }
    // update changes a live limit.
    env.ok(&["update", "--pids-limit", "20", "--cpu-quota", "30000", &id]);
    if let Some(cpu) = ["/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpu"]
        .iter()
        .map(|d| std::path::Path::new(d).join(&id))
        .find(|p| p.join("cpu.cfs_quota_us").exists())
    {
        assert_eq!(
            std::fs::read_to_string(cpu.join("cpu.cfs_quota_us"))
                .expect("quota")
                .trim(),
            "30000"
        );
    }
    let stats = env.ok(&["events", "--stats", &id]);
    let ev: serde_json::Value = serde_json::from_str(stats.trim()).expect("stats json");
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["id"], id.as_str());
    assert!(ev["data"].is_object());
    env.ok(&["delete", "--force", &id]);
    assert!(cgroup_leftovers(&id).is_empty());
}

#[test]
fn sysctl_and_rlimits_apply() {
    require_root!();
    let env = Env::new("sysctl", &["true"]);
    env.edit(|c| {
        c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256}]);
    });
    let out = env.sh("cat /proc/sys/net/ipv4/ip_forward; ulimit -n; ulimit -Hn");
    assert_eq!(out.lines().collect::<Vec<_>>(), ["1", "256", "512"]);
}

#[test]
fn process_starts_with_no_signal_ignored_or_blocked() {
    require_root!();
    // The runtime ignores SIGPIPE (Rust's startup) and blocks the signals
    // it forwards; none of that may reach the user's process (what the
    // runtime's own caller ignored may, as with runc and crun).
    fn mask(status: &str, field: &str) -> u64 {
        let line = status
            .lines()
            .find(|l| l.starts_with(field))
            .unwrap_or_else(|| panic!("no {field} in {status}"));
        let hex = line.split_whitespace().nth(1).unwrap_or_default();
        u64::from_str_radix(hex, 16).unwrap_or_else(|e| panic!("{line}: {e}"))
    }
    const SIGPIPE_BIT: u64 = 1 << (libc::SIGPIPE - 1);
    let env = Env::new("signals", &["true"]);
    let (code, out, err) = env.run_args(&["cat", "/proc/self/status"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(mask(&out, "SigBlk:"), 0, "{out}");
    assert_eq!(
        mask(&out, "SigIgn:") & SIGPIPE_BIT,
        0,
        "SIGPIPE ignored: {out}"
    );
}

#[test]
fn process_user_and_cwd() {
    require_root!();
    let env = Env::new("user", &["true"]);
    std::fs::create_dir_all(env.rootfs("/work/dir")).expect("mkdir");
    env.edit(|c| {
        c["process"]["user"] =
            json!({"uid": 1000, "gid": 1000, "additionalGids": [5, 6], "umask": 63});
        c["process"]["cwd"] = json!("/work/dir");
    });
    let out = env.sh("id -u; id -g; id -G; pwd; umask");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["1000", "1000", "1000 5 6", "/work/dir", "0077"]
    );
}

#[test]
fn joins_namespaces_by_path() {
    require_root!();
    let env = Env::new("join", &["sleep", "100"]);
    let a = unique_id("joina");
    let _ga = env.create(&a);
    env.ok(&["start", &a]);
    let pid = env.state(&a)["pid"].as_i64().expect("pid");
    // A second container joins the first one's network and UTS namespaces.
    let env_b = Env::new("joinb", &["true"]);
    env_b.edit(|c| {
        c["hostname"] = serde_json::Value::Null;
        let ns = c["linux"]["namespaces"].as_array_mut().expect("namespaces");
        for n in ns.iter_mut() {
            if n["type"] == "network" {
                n["path"] = json!(format!("/proc/{pid}/ns/net"));
            }
            if n["type"] == "uts" {
                n["path"] = json!(format!("/proc/{pid}/ns/uts"));
            }
        }
    });
    let out = env_b.sh("readlink /proc/self/ns/net; readlink /proc/self/ns/uts; readlink /proc/self/ns/ipc; hostname");
    let lines: Vec<&str> = out.lines().collect();
    let theirs = |n: &str| {
        std::fs::read_link(format!("/proc/{pid}/ns/{n}"))
            .expect("ns")
            .to_string_lossy()
            .into_owned()
    };
    assert_eq!(lines[0], theirs("net"));
    assert_eq!(lines[1], theirs("uts"));
    assert_ne!(lines[2], theirs("ipc"), "ipc was not asked to be shared");
    assert_eq!(lines[3], "berth-test");
}

#[test]
fn personality_and_domainname() {
    require_root!();
    let env = Env::new("persona", &["true"]);
    env.edit(|c| {
        c["linux"]["personality"] = json!({"domain": "LINUX32"});
        c["domainname"] = json!("berth.example");
    });
    let out = env.sh("uname -m; cat /proc/sys/kernel/domainname");
    assert_eq!(out.lines().collect::<Vec<_>>(), ["i686", "berth.example"]);
}

#[test]
fn events_report_stats_and_oom_kills() {
    require_root!();
    let env = Env::new(
        "events",
        &[
            "sh",
            "-c",
            "sleep 1; (x=$(head -c 67108864 /dev/zero | tr '\\0' a)); sleep 100",
        ],
    );
    env.edit(|c| {
        c["linux"]["resources"]["memory"] =
            json!({"limit": 16 * 1024 * 1024, "swap": 16 * 1024 * 1024});
    });
    let id = unique_id("events");
    let _g = env.create(&id);
    env.ok(&["start", &id]);
    let mut child = env
        .cmd()
        .args(["events", "--interval", "200ms", &id])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("events");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let (mut saw_stats, mut saw_oom) = (false, false);
    while !(saw_stats && saw_oom) && std::time::Instant::now() < deadline {
        let Ok(line) = rx.recv_timeout(std::time::Duration::from_millis(500)) else {
            continue;
        };
        let ev: serde_json::Value = serde_json::from_str(&line).expect("event json line");
        assert_eq!(ev["id"], id.as_str());
        match ev["type"].as_str() {
            Some("stats") => saw_stats = ev["data"].is_object(),
            Some("oom") => saw_oom = true,
            other => panic!("unexpected event type {other:?}"),
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(saw_stats, "no stats event");
    assert!(saw_oom, "no oom event");
    // The container itself survived the OOM kill of its subshell.
    assert_eq!(env.status(&id), "running");
}

/// The file of `controller` (v1) for container `id`, or the v2 file.
fn cgroup_file(controller: &str, v1_file: &str, v2_file: &str, id: &str) -> std::path::PathBuf {
    let v1 = std::path::Path::new("/sys/fs/cgroup")
        .join(controller)
        .join(id)
        .join(v1_file);
    if v1.exists() {
        v1
    } else {
        std::path::Path::new("/sys/fs/cgroup")
            .join(id)
            .join(v2_file)
    }
}

#[test]
fn update_from_flags_and_from_json_on_stdin() {
    require_root!();
    let env = Env::new("update", &["sleep", "100"]);
    let id = unique_id("update");
    let _g = env.create(&id);
    env.ok(&["start", &id]);
    env.ok(&["update", "--memory", "64m", "--memory-swap", "64m", &id]);
    let mem = std::fs::read_to_string(cgroup_file(
        "memory",
        "memory.limit_in_bytes",
        "memory.max",
        &id,
    ))
    .expect("memory limit");
    assert_eq!(mem.trim(), (64u64 << 20).to_string());

    let mut child = env
        .cmd()
        .args(["update", "-r", "-", &id])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("update");
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(br#"{"pids": {"limit": 33}}"#)
            .expect("write");
    }
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{}", stderr(&out));
    let pids = std::fs::read_to_string(cgroup_file("pids", "pids.max", "pids.max", &id))
        .expect("pids.max");
    assert_eq!(pids.trim(), "33");

    // A wrongly typed request names the field and changes nothing.
    let out = env.rt(&["update", "--resources", "/dev/null", &id]);
    assert_eq!(out.status.code(), Some(1));
    let bad = env.tmp.join("bad.json");
    std::fs::write(&bad, r#"{"pids": {"limit": "many"}}"#).expect("write");
    let out = env.rt(&["update", "-r", bad.to_str().expect("utf8"), &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("pids.limit"), "{}", stderr(&out));
    let pids = std::fs::read_to_string(cgroup_file("pids", "pids.max", "pids.max", &id))
        .expect("pids.max");
    assert_eq!(pids.trim(), "33");
}

#[test]
fn ambient_capabilities_reach_a_non_root_user() {
    require_root!();
    let env = Env::new("ambient", &["true"]);
    env.edit(|c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        for set in [
            "bounding",
            "effective",
            "permitted",
            "inheritable",
            "ambient",
        ] {
            c["process"]["capabilities"][set] = json!(["CAP_CHOWN"]);
        }
    });
    // /tmp is world-writable: uid 1000 makes a file and gives it away,
    // which only CAP_CHOWN allows.
    let out = env.sh("touch /tmp/given && chown 0:0 /tmp/given && grep CapAmb /proc/self/status");
    assert!(out.contains("0000000000000001"), "{out}");
    let meta = std::fs::metadata(env.rootfs("/tmp/given")).expect("file");
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 0);
}

#[test]
fn devices_oom_score_adj_lsm_labels_and_annotations() {
    require_root!();
    let env = Env::new("extras", &["true"]);
    env.edit(|c| {
        // Not among the always-allowed devices: opening it needs a cgroup
        // rule in resources.devices (the runtime adds none for spec devices,
        // like runc).
        c["linux"]["devices"] = json!([
            {"path": "/dev/net/tun", "type": "c", "major": 10, "minor": 200, "fileMode": 438}
        ]);
        c["linux"]["resources"]["devices"] = json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rw"}
        ]);
        c["process"]["oomScoreAdj"] = json!(500);
        c["process"]["apparmorProfile"] = json!("berth-test-profile");
        c["annotations"] = json!({"org.example.key": "value"});
    });
    let (code, out, err) = env.run_args(&[
        "sh",
        "-c",
        "exec 3<>/dev/net/tun && cat /proc/self/oom_score_adj",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.trim(), "500");
    // No AppArmor here (or not applied): a warning, not a failure.
    assert!(err.contains("warning: process.apparmorProfile"), "{err}");

    env.edit(|c| c["process"]["args"] = json!(["sleep", "100"]));
    let id = unique_id("extras");
    let _g = env.create(&id);
    assert_eq!(env.state(&id)["annotations"]["org.example.key"], "value");
}

#[test]
fn exec_joins_a_user_namespace() {
    require_root!();
    let env = Env::new("execuserns", &["sleep", "100"]);
    std::fs::set_permissions(
        env.tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    env.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .expect("namespaces")
            .push(json!({"type": "user"}));
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 300000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 300000, "size": 65536}]);
    });
    let id = unique_id("execuserns");
    let _g = env.create(&id);
    env.ok(&["start", &id]);
    let out = env.rt(&[
        "exec",
        &id,
        "sh",
        "-c",
        "cat /proc/self/uid_map; id -u; touch /tmp/by-exec",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["0", "300000", "65536"]);
    assert_eq!(lines[1], ["0"]);
    let meta = std::fs::metadata(env.rootfs("/tmp/by-exec")).expect("file made by exec");
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 300000);
}
