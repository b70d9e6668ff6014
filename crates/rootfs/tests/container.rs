//! Root tests: a real container filesystem, checked from inside with busybox.

mod support;

use std::path::Path;

use berth_testutil::require_root;
use support::{default_spec, has, mount_opts, ok, run, Fixture, Setup};

#[test]
fn default_mounts_have_their_types_and_flags() {
    require_root!();
    let mut fx = Fixture::new("defaults");
    let out = run(
        &fx,
        &default_spec("", ""),
        &Setup::default(),
        "cat /proc/self/mountinfo",
    );
    let info = ok(&out);

    let (o, t, _) = mount_opts(&info, "/");
    assert!(has(&o, "rw"), "{o:?}");
    let _ = t;
    let (o, t, _) = mount_opts(&info, "/proc");
    assert_eq!(t, "proc");
    assert!(has(&o, "rw"));
    let (o, t, s) = mount_opts(&info, "/dev");
    assert_eq!(t, "tmpfs");
    assert!(
        has(&o, "nosuid") && !has(&o, "relatime") && !has(&o, "noatime"),
        "strictatime: {o:?}"
    );
    assert!(s.contains("size=65536k") && s.contains("mode=755"), "{s}");
    let (o, t, s) = mount_opts(&info, "/dev/pts");
    assert_eq!(t, "devpts");
    assert!(has(&o, "nosuid") && has(&o, "noexec"));
    assert!(s.contains("ptmxmode=666") && s.contains("mode=620"), "{s}");
    let (o, t, _) = mount_opts(&info, "/dev/shm");
    assert_eq!(t, "tmpfs");
    assert!(has(&o, "nosuid") && has(&o, "nodev") && has(&o, "noexec"));
    let (_, t, _) = mount_opts(&info, "/dev/mqueue");
    assert_eq!(t, "mqueue");
    let (o, t, _) = mount_opts(&info, "/sys");
    assert_eq!(t, "sysfs");
    assert!(has(&o, "ro") && has(&o, "nosuid") && has(&o, "nodev") && has(&o, "noexec"));
    let (o, _, _) = mount_opts(&info, "/sys/fs/cgroup");
    assert!(has(&o, "ro"), "{o:?}");
    // masked and read-only paths
    let (o, t, _) = mount_opts(&info, "/sys/firmware");
    assert_eq!(t, "tmpfs");
    assert!(has(&o, "ro"));
    let (o, t, _) = mount_opts(&info, "/proc/sys");
    assert_eq!(t, "proc");
    assert!(
        has(&o, "ro") && has(&o, "nosuid") && has(&o, "nodev") && has(&o, "noexec"),
        "{o:?}"
    );
    let (_, t, _) = mount_opts(&info, "/proc/keys");
    assert_eq!(
        t, "tmpfs",
        "/proc/keys is masked by the /dev tmpfs's /dev/null"
    );
    fx.assert_no_host_mounts();
}

#[test]
fn masked_and_readonly_paths_are_enforced() {
    require_root!();
    let mut fx = Fixture::new("masked");
    let script = r#"
        for f in /proc/kcore /proc/keys /proc/timer_list; do [ -e $f ] && echo "$f=$(wc -c < $f)"; done
        echo "acpi=$(ls -A /proc/acpi | wc -l)"
        echo "firmware=$(ls -A /sys/firmware | wc -l)"
        if touch /sys/firmware/x 2>/dev/null; then echo firmware-writable; fi
        { if cat /proc/sys/kernel/printk_ratelimit > /proc/sys/kernel/printk_ratelimit; then echo procsys-writable; fi; } 2>&1
        if echo h > /proc/sysrq-trigger 2>/dev/null; then echo sysrq-writable; fi
        [ -e /does/not/exist ] || echo skipped-missing
    "#;
    let out = ok(&run(&fx, &default_spec("", ""), &Setup::default(), script));
    for f in ["/proc/kcore", "/proc/keys", "/proc/timer_list"] {
        if Path::new(f).exists() {
            assert!(out.contains(&format!("{f}=0\n")), "{f} not masked: {out}");
        }
    }
    assert!(out.contains("acpi=0"), "{out}");
    assert!(out.contains("firmware=0"), "{out}");
    assert!(!out.contains("writable"), "{out}");
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(out.contains("skipped-missing"), "{out}");
    fx.assert_no_host_mounts();
}

#[test]
fn devices_and_dev_symlinks() {
    require_root!();
    let mut fx = Fixture::new("devices");
    let linux = r#""devices":[
        {"path":"/dev/fuse","type":"c","major":10,"minor":229,"fileMode":384,"uid":1000,"gid":1001},
        {"path":"/dev/berth-loop","type":"b","major":7,"minor":200,"fileMode":432},
        {"path":"/dev/sub/fifo","type":"p","major":0,"minor":0,"fileMode":420}]"#;
    let script = r#"
        stat -c '%n %F %t:%T %a %u:%g' /dev/fuse /dev/berth-loop /dev/sub/fifo /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty
        for l in fd stdin stdout stderr ptmx; do echo "$l -> $(readlink /dev/$l)"; done
        echo data > /dev/null && head -c 4 /dev/zero | wc -c
    "#;
    let out = ok(&run(
        &fx,
        &default_spec("", linux),
        &Setup::default(),
        script,
    ));
    for want in [
        "/dev/fuse character special file a:e5 600 1000:1001",
        "/dev/berth-loop block special file 7:c8 660 0:0",
        "/dev/sub/fifo fifo 0:0 644 0:0",
        "/dev/null character special file 1:3 666 0:0",
        "/dev/zero character special file 1:5 666 0:0",
        "/dev/full character special file 1:7 666 0:0",
        "/dev/random character special file 1:8 666 0:0",
        "/dev/urandom character special file 1:9 666 0:0",
        "/dev/tty character special file 5:0 666 0:0",
        "fd -> /proc/self/fd",
        "stdin -> /proc/self/fd/0",
        "stdout -> /proc/self/fd/1",
        "stderr -> /proc/self/fd/2",
        "ptmx -> pts/ptmx",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    assert!(out.trim_end().ends_with('4'), "{out}");
    fx.assert_no_host_mounts();
}

#[test]
fn console_is_the_given_pty() {
    require_root!();
    let mut fx = Fixture::new("console");
    let pty = nix::pty::openpty(None, None).unwrap_or_else(|e| panic!("openpty: {e}"));
    let slave = nix::unistd::ttyname(&pty.slave).unwrap_or_else(|e| panic!("ttyname: {e}"));
    let st = nix::sys::stat::stat(&slave).unwrap_or_else(|e| panic!("stat: {e}"));
    let want = format!(
        "{:x}:{:x}",
        nix::sys::stat::major(st.st_rdev),
        nix::sys::stat::minor(st.st_rdev)
    );
    let setup = Setup {
        console: Some(slave),
        ..Setup::default()
    };
    let out = ok(&run(
        &fx,
        &default_spec("", ""),
        &setup,
        "stat -c '%F %t:%T' /dev/console",
    ));
    assert_eq!(out.trim(), format!("character special file {want}"));
    fx.assert_no_host_mounts();
}

#[test]
fn binds_honour_ro_and_flags() {
    require_root!();
    let mut fx = Fixture::new("binds");
    let ro = fx.host_dir("ro-src");
    let rw = fx.host_dir("rw-src");
    std::fs::write(ro.join("file"), "hello").unwrap_or_else(|e| panic!("{e}"));
    let file = fx.dir.join("hostname");
    std::fs::write(&file, "berth-host\n").unwrap_or_else(|e| panic!("{e}"));
    let mounts = format!(
        r#"{{"destination":"/data/ro","type":"bind","source":"{}","options":["rbind","ro","nosuid","nodev","noexec","noatime"]}},
        {{"destination":"/data/rw","source":"{}","options":["bind","rw","relatime","sync","dirsync"]}},
        {{"destination":"/etc/hostname","type":"bind","source":"{}","options":["bind","ro"]}},
        {{"destination":"/data/nsf","type":"bind","source":"{rw}","options":["bind","nosymfollow","nodiratime","strictatime"]}},
        {{"destination":"/data/shared","type":"bind","source":"{rw}","options":["rbind","rshared"]}},
        {{"destination":"/data/unbindable","type":"bind","source":"{rw}","options":["bind","runbindable"]}},
        {{"destination":"/data/private","type":"bind","source":"{rw}","options":["rbind","private"]}}"#,
        ro.display(),
        rw.display(),
        file.display(),
        rw = rw.display(),
    );
    let script = r#"
        cat /proc/self/mountinfo
        cat /data/ro/file; echo
        if echo x > /data/ro/new 2>/dev/null; then echo ro-writable; fi
        echo written > /data/rw/new
        cat /etc/hostname
    "#;
    let out = ok(&run(
        &fx,
        &default_spec(&mounts, ""),
        &Setup::default(),
        script,
    ));
    let (o, _, _) = mount_opts(&out, "/data/ro");
    for f in ["ro", "nosuid", "nodev", "noexec", "noatime"] {
        assert!(has(&o, f), "/data/ro lacks {f}: {o:?}");
    }
    let (o, _, s) = mount_opts(&out, "/data/rw");
    assert!(has(&o, "rw") && has(&o, "relatime"), "{o:?}");
    assert!(s.contains("rw"), "{s}");
    let (o, _, _) = mount_opts(&out, "/etc/hostname");
    assert!(has(&o, "ro"));
    let (o, _, _) = mount_opts(&out, "/data/nsf");
    assert!(
        has(&o, "nosymfollow") && has(&o, "nodiratime") && !has(&o, "relatime"),
        "{o:?}"
    );
    let optional = |mp: &str| {
        let line = support::mount_line(&out, mp).unwrap_or("");
        line.split(" - ")
            .next()
            .unwrap_or("")
            .split(' ')
            .skip(6)
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert!(
        optional("/data/shared")
            .iter()
            .any(|f| f.starts_with("shared:")),
        "{:?}",
        optional("/data/shared")
    );
    assert!(optional("/data/unbindable")
        .iter()
        .any(|f| f == "unbindable"));
    assert!(
        optional("/data/private").is_empty(),
        "{:?}",
        optional("/data/private")
    );
    assert!(out.contains("hello\n"));
    assert!(out.contains("berth-host"));
    assert!(!out.contains("ro-writable"), "{out}");
    assert_eq!(
        std::fs::read_to_string(rw.join("new")).unwrap_or_default(),
        "written\n"
    );
    assert!(!ro.join("new").exists());
    fx.assert_no_host_mounts();
}

#[test]
fn tmpfs_options_are_passed_as_data() {
    require_root!();
    let mut fx = Fixture::new("tmpfs");
    let mounts = r#"{"destination":"/run/small","type":"tmpfs","source":"tmpfs","options":["nosuid","nodev","size=1m","mode=700","uid=1000","gid=1001"]},
        {"destination":"/dev/shm","type":"tmpfs","source":"shm","options":["remount","nosuid","nodev","size=2m"]}"#;
    let script = r#"
        stat -c '%a %u %g' /run/small
        if dd if=/dev/zero of=/run/small/big bs=1024 count=2048 2>/dev/null; then echo fit; else echo full; fi
        echo "size=$(wc -c < /run/small/big)"
        grep ' /run/small ' /proc/self/mountinfo
        grep ' /dev/shm ' /proc/self/mountinfo
    "#;
    let out = ok(&run(
        &fx,
        &default_spec(mounts, ""),
        &Setup::default(),
        script,
    ));
    assert!(out.starts_with("700 1000 1001"), "{out}");
    assert!(out.contains("full") && !out.contains("fit"), "{out}");
    assert!(out.contains("size=1048576"), "{out}");
    assert!(out.contains("size=1024k"), "{out}");
    let (o, _, s) = mount_opts(&out, "/dev/shm");
    assert!(s.contains("size=2048k"), "remount changed the size: {s}");
    assert!(
        !has(&o, "noexec"),
        "remount sets the flags it is given: {o:?}"
    );
    fx.assert_no_host_mounts();
}

#[test]
fn readonly_root_refuses_writes() {
    require_root!();
    let mut fx = Fixture::new("roroot");
    let mounts = r#"{"destination":"/tmp","type":"tmpfs","source":"tmpfs","options":["nosuid"]}"#;
    let setup = Setup {
        readonly: true,
        ..Setup::default()
    };
    let script = r#"
        if touch /newfile 2>/tmp/err; then echo root-writable; fi
        cat /tmp/err
        echo ok > /tmp/scratch && cat /tmp/scratch
        awk '$5 == "/"' /proc/self/mountinfo
    "#;
    let out = ok(&run(&fx, &default_spec(mounts, ""), &setup, script));
    assert!(!out.contains("root-writable"), "{out}");
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(out.contains("ok\n"), "{out}");
    assert!(!fx.rootfs.join("newfile").exists());
    fx.assert_no_host_mounts();
}

#[test]
fn readonly_dev_tmpfs_still_gets_devices() {
    require_root!();
    let mut fx = Fixture::new("rodev");
    let mut spec = default_spec("", "");
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    let dev = mounts
        .iter_mut()
        .find(|m| m.destination() == Path::new("/dev"));
    if let Some(dev) = dev {
        dev.set_options(Some(vec!["nosuid".into(), "ro".into(), "mode=755".into()]));
    }
    spec.set_mounts(Some(mounts));
    let script = "stat -c %t:%T /dev/null; if touch /dev/x 2>/dev/null; then echo dev-writable; fi";
    let out = ok(&run(&fx, &spec, &Setup::default(), script));
    assert!(out.contains("1:3"), "{out}");
    assert!(!out.contains("dev-writable"), "{out}");
    fx.assert_no_host_mounts();
}

#[test]
fn no_pivot_moves_the_root() {
    require_root!();
    let mut fx = Fixture::new("nopivot");
    let setup = Setup {
        no_pivot: true,
        ..Setup::default()
    };
    let script = "ls /; cat /etc/passwd | head -1; grep -c . /proc/self/mountinfo";
    let out = ok(&run(&fx, &default_spec("", ""), &setup, script));
    assert!(out.contains("root:x:0:0"), "{out}");
    assert!(
        !out.contains("lost+found") && !out.contains("home\n"),
        "{out}"
    );
    fx.assert_no_host_mounts();
}

#[test]
fn mount_errors_name_the_mount() {
    require_root!();
    let mut fx = Fixture::new("error");
    let mounts = r#"{"destination":"/x","type":"berthnosuchfs","source":"none"}"#;
    let out = run(&fx, &default_spec(mounts, ""), &Setup::default(), "true");
    assert_eq!(out.status.code(), Some(support::SETUP_FAILED));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("prepare: rootfs: mounts[7] (berthnosuchfs on /x): mount: ENODEV"),
        "{err}"
    );
    // a relative /proc escape is refused before anything is mounted
    let mounts = r#"{"destination":"/proc/../proc/self","type":"tmpfs","source":"tmpfs"}"#;
    let out = run(&fx, &default_spec(mounts, ""), &Setup::default(), "true");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("mounts[7] (tmpfs on /proc/../proc/self): /proc/self is inside /proc"),
        "{err}"
    );
    fx.assert_no_host_mounts();
}

/// The whole setup (default spec: 7 mounts, 6 devices, 11 masked and 5
/// read-only paths) costs a few milliseconds over a plain fork+exec.
#[test]
fn setup_cost_is_milliseconds() {
    require_root!();
    let mut fx = Fixture::new("timing");
    let spec = default_spec("", "");
    let median = |mut v: Vec<std::time::Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let mut plain = Vec::new();
    let mut full = Vec::new();
    for _ in 0..15 {
        let t = std::time::Instant::now();
        let status = std::process::Command::new("/bin/busybox")
            .arg("true")
            .status();
        assert!(status.is_ok_and(|s| s.success()));
        plain.push(t.elapsed());
        let t = std::time::Instant::now();
        ok(&run(&fx, &spec, &Setup::default(), "true"));
        full.push(t.elapsed());
    }
    let (plain, full) = (median(plain), median(full));
    eprintln!("fork+exec: {plain:?}; with prepare+pivot+finalize: {full:?} (medians of 15)");
    assert!(
        full < plain + std::time::Duration::from_millis(250),
        "setup took {full:?}"
    );
    fx.assert_no_host_mounts();
}
