//! Root tests: a container in a user namespace, and cgroup mounts with and
//! without a cgroup namespace.

mod support;

use std::path::Path;

use berth_testutil::require_root;
use nix::mount::MsFlags;
use support::{default_spec, has, mount_opts, ok, run, spec, Fixture, Setup};

#[test]
fn user_namespace_binds_devices_and_keeps_locked_flags() {
    require_root!();
    let mut fx = Fixture::new("userns");
    // a host mount with nosuid,nodev: inside a user namespace those flags are locked
    let src = fx.host_dir("locked");
    fx.host_tmpfs(&src, MsFlags::MS_NOSUID | MsFlags::MS_NODEV);
    std::fs::write(src.join("f"), "locked").unwrap_or_else(|e| panic!("{e}"));
    let json = format!(
        r#"{{"ociVersion":"1.0.2","root":{{"path":"rootfs"}},"mounts":[
        {{"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","mode=755"]}},
        {{"destination":"/sys","type":"sysfs","source":"sysfs","options":["nosuid","noexec","nodev","ro"]}},
        {{"destination":"/data","type":"bind","source":"{}","options":["rbind","ro"]}},
        {{"destination":"/sys/fs/cgroup","type":"cgroup","source":"cgroup","options":["nosuid","noexec","nodev","relatime","ro"]}},
        {{"destination":"/dev/mqueue","type":"mqueue","source":"mqueue","options":["nosuid","noexec","nodev"]}},
        {{"destination":"/hostproc","type":"bind","source":"/proc","options":["rbind"]}}],
        "linux":{{"namespaces":[{{"type":"mount"}},{{"type":"user"}}],
        "devices":[{{"path":"/dev/fuse","type":"c","major":10,"minor":229}}]}}}}"#,
        src.display()
    );
    let setup = Setup {
        user_ns: true,
        ..Setup::default()
    };
    let script = r#"
        stat -c '%n %t:%T' /dev/null /dev/fuse
        echo x > /dev/null && echo null-ok
        cat /data/f; echo
        if touch /data/new 2>/dev/null; then echo data-writable; fi
        ls /sys | grep -c kernel
        ls /sys/fs/cgroup
        # no pid namespace of its own, so no proc mount: the host's, bound, shows this process
        grep -E ' /sys/fs/cgroup/[^ ]* | /dev/mqueue ' /hostproc/self/mountinfo
    "#;
    let out = ok(&run(&fx, &spec(&json), &setup, script));
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let v1_memory = cgroups
        .lines()
        .any(|l| l.split(':').nth(1) == Some("memory"));
    if v1_memory {
        let (o, t, _) = mount_opts(&out, "/sys/fs/cgroup/memory");
        assert_eq!(t, "cgroup");
        assert!(has(&o, "ro") && has(&o, "nosuid"), "{o:?}");
    }
    let (_, t, _) = mount_opts(&out, "/dev/mqueue");
    assert_eq!(t, "mqueue", "{out}");
    assert!(
        out.contains("/dev/null 1:3") && out.contains("/dev/fuse a:e5"),
        "{out}"
    );
    assert!(out.contains("null-ok") && out.contains("locked"), "{out}");
    assert!(!out.contains("data-writable"), "{out}");
    fx.assert_no_host_mounts();
}

#[test]
fn cgroup_v1_hierarchies_are_own_cgroups() {
    require_root!();
    if !Path::new("/sys/fs/cgroup/memory").is_dir() {
        eprintln!("SKIPPED: no cgroup v1 memory hierarchy on this host");
        return;
    }
    let mut fx = Fixture::new("cgv1");
    let script = r#"
        ls /sys/fs/cgroup
        readlink /sys/fs/cgroup/cpu
        [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ] && echo memory-ok
        if mkdir /sys/fs/cgroup/memory/berth-x 2>/dev/null; then echo cgroup-writable; fi
        cat /proc/self/mountinfo
    "#;
    let out = ok(&run(&fx, &default_spec("", ""), &Setup::default(), script));
    assert!(out.contains("memory-ok"), "{out}");
    assert!(!out.contains("cgroup-writable"), "{out}");
    if Path::new("/sys/fs/cgroup/cpu,cpuacct").is_dir() {
        assert!(out.contains("cpu,cpuacct\n"), "{out}");
    }
    let (o, t, _) = mount_opts(&out, "/sys/fs/cgroup/memory");
    assert_eq!(t, "cgroup");
    assert!(has(&o, "ro") && has(&o, "nosuid"), "{o:?}");
    // the bind shows this process' own memory cgroup as its root
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let own = own
        .lines()
        .find_map(|l| l.split(':').nth(1).filter(|c| *c == "memory").map(|_| l));
    let own_path = own.and_then(|l| l.splitn(3, ':').nth(2)).unwrap_or("/");
    let line = support::mount_line(&out, "/sys/fs/cgroup/memory").unwrap_or("");
    assert_eq!(line.split(' ').nth(3), Some(own_path), "{line}");

    // with a cgroup namespace the hierarchies are mounted fresh, rooted at the namespace
    let setup = Setup {
        cgroup_ns: true,
        ..Setup::default()
    };
    let out = ok(&run(
        &fx,
        &default_spec("", ""),
        &setup,
        "cat /proc/self/mountinfo",
    ));
    let line = support::mount_line(&out, "/sys/fs/cgroup/memory").unwrap_or("");
    assert_eq!(line.split(' ').nth(3), Some("/"), "{line}");
    let (o, t, _) = mount_opts(&out, "/sys/fs/cgroup/memory");
    assert_eq!(t, "cgroup");
    assert!(has(&o, "ro"), "{o:?}");
    fx.assert_no_host_mounts();
}

#[test]
fn cgroup2_bind_without_namespace_and_fresh_with_one() {
    require_root!();
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let Some(own_v2) = own.lines().find_map(|l| l.strip_prefix("0::")) else {
        eprintln!("SKIPPED: no cgroup2 hierarchy on this host");
        return;
    };
    let mut fx = Fixture::new("cgv2");
    let mounts = r#"{"destination":"/cg2","type":"cgroup2","source":"cgroup2","options":["nosuid","noexec","nodev","ro"]}"#;
    let script = "grep ' /cg2 ' /proc/self/mountinfo; [ -f /cg2/cgroup.procs ] && echo procs-ok";
    let out = ok(&run(
        &fx,
        &default_spec(mounts, ""),
        &Setup::default(),
        script,
    ));
    let (o, t, _) = mount_opts(&out, "/cg2");
    assert_eq!(t, "cgroup2");
    assert!(has(&o, "ro"), "{o:?}");
    assert!(out.contains("procs-ok"), "{out}");
    let line = support::mount_line(&out, "/cg2").unwrap_or("");
    assert_eq!(line.split(' ').nth(3), Some(own_v2), "{line}");

    let setup = Setup {
        cgroup_ns: true,
        ..Setup::default()
    };
    let out = ok(&run(&fx, &default_spec(mounts, ""), &setup, script));
    let line = support::mount_line(&out, "/cg2").unwrap_or("");
    assert_eq!(line.split(' ').nth(3), Some("/"), "{line}");
    fx.assert_no_host_mounts();
}
