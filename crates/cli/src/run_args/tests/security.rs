//! Security options, capabilities, namespaces, logging and other maps.

use super::*;

#[test]
fn security_options() {
    let profile = TempFile::new(
        "seccomp.json",
        b"{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\",\n  \"syscalls\": [], \"z\": 1.50, \"a\": \"x \\\" y\"\n}\n",
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
        "--cap-add",
        "net_admin",
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
            "seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\",\"syscalls\":[],\"z\":1.50,\"a\":\"x \\\" y\"}",
            "seccomp=unconfined",
        ]))
    );
    assert_eq!(h.masked_paths, Some(vec![]));
    assert_eq!(h.readonly_paths, Some(vec![]));
    assert!(h.privileged && h.readonly_rootfs);
    // As Docker's API client sends them: normalized, sorted, unique.
    assert_eq!(h.cap_add, Some(strings(&["CAP_NET_ADMIN", "CAP_SYS_TIME"])));
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
