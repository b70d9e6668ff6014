//! CVE-2021-30465 and friends: symlinks in the image must never redirect a
//! mount, a device node or a created mount point to the host.

mod support;

use std::os::unix::fs::symlink;
use std::path::Path;

use berth_rootfs::{open_in_root, CreateKind};
use berth_testutil::require_root;
use support::{ok, run, spec, Fixture, Setup};

fn assert_untouched(dir: &Path) {
    let entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert!(
        entries.is_empty(),
        "host directory {} was written to: {entries:?}",
        dir.display()
    );
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let d = dir.to_string_lossy();
    assert!(
        !info.lines().any(|l| l.contains(d.as_ref())),
        "something is mounted on {d}"
    );
}

#[test]
fn symlinked_destinations_land_inside_the_rootfs() {
    require_root!();
    let mut fx = Fixture::new("cve-2021-30465");
    // one host directory per link, so that no two mounts share a target
    let victims: Vec<_> = (0..5).map(|i| fx.host_dir(&format!("victim{i}"))).collect();
    let victim_file = fx.dir.join("victim-file");
    std::fs::write(&victim_file, "host secret\n").unwrap_or_else(|e| panic!("{e}"));
    let src = fx.host_dir("bind-src");
    let src_file = fx.dir.join("bind-file");
    std::fs::write(&src_file, "from bind\n").unwrap_or_else(|e| panic!("{e}"));

    let r = &fx.rootfs;
    let v: Vec<String> = victims
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let up = "../".repeat(12);
    let mk = |target: &str, link: &str| {
        symlink(target, r.join(link)).unwrap_or_else(|e| panic!("{link}: {e}"))
    };
    mk(&v[0], "evil");
    mk(&format!("{up}{}", v[1].trim_start_matches('/')), "evil-rel");
    mk(&v[2], "evil-dir");
    mk(&victim_file.to_string_lossy(), "etc/evil-file");
    mk(&v[3], "dev/evil-sub");
    // exists on the host only: masking it must be skipped, not done on the host
    let victim_mask = fx.dir.join("victim-mask");
    std::fs::write(&victim_mask, "host\n").unwrap_or_else(|e| panic!("{e}"));
    mk(&victim_mask.to_string_lossy(), "etc/evil-mask");
    // a loop, and a chain that bounces through ".." at the root
    mk("loop-b", "loop-a");
    mk("loop-a", "loop-b");
    mk(&format!("../../..{}", v[4]), "bin/evil-up");

    let json = format!(
        r#"{{"ociVersion":"1.0.2","root":{{"path":"rootfs"}},"mounts":[
        {{"destination":"/proc","type":"proc","source":"proc"}},
        {{"destination":"/evil","type":"tmpfs","source":"tmpfs","options":["size=1m"]}},
        {{"destination":"/evil-rel","type":"bind","source":"{src}","options":["rbind","rw"]}},
        {{"destination":"/evil-dir/sub","type":"tmpfs","source":"tmpfs"}},
        {{"destination":"/etc/evil-file","type":"bind","source":"{src_file}","options":["bind","rw"]}},
        {{"destination":"/bin/evil-up","type":"tmpfs","source":"tmpfs"}}],
        "linux":{{"devices":[{{"path":"/dev/evil-sub/null","type":"c","major":1,"minor":3}}],
        "maskedPaths":["/etc/evil-mask"],"readonlyPaths":["/evil-rel"]}}}}"#,
        src = src.display(),
        src_file = src_file.display(),
    );
    let script = r#"
        echo pwned > /evil/pwned
        echo pwned > /evil-dir/sub/pwned 2>/dev/null
        cat /etc/evil-file
        echo pwned >> /etc/evil-file
        stat -c '%t:%T' /dev/evil-sub/null
        echo pwned > /bin/evil-up/pwned
        if echo pwned > /evil-rel/pwned 2>/dev/null; then echo evil-rel-writable; fi
        echo done
    "#;
    let out = ok(&run(&fx, &spec(&json), &Setup::default(), script));
    assert!(
        out.contains("from bind") && out.contains("1:3") && out.ends_with("done\n"),
        "{out}"
    );
    assert!(
        !out.contains("evil-rel-writable"),
        "readonlyPaths through a symlink: {out}"
    );

    for victim in &victims {
        assert_untouched(victim);
    }
    assert_eq!(
        std::fs::read_to_string(&victim_mask).unwrap_or_default(),
        "host\n"
    );
    assert_eq!(
        std::fs::read_to_string(&victim_file).unwrap_or_default(),
        "host secret\n"
    );
    assert!(
        std::fs::read_dir(&src).map(|d| d.count()).unwrap_or(1) == 0,
        "bind source written through ro path"
    );
    // the mount points were created where the links point, inside the rootfs
    for v in &v {
        assert!(
            r.join(v.trim_start_matches('/')).is_dir(),
            "{v} not created inside the rootfs"
        );
    }
    fx.assert_no_host_mounts();
}

#[test]
fn open_in_root_never_leaves_the_root() {
    let fx = Fixture::new("open-in-root");
    let victim = fx.host_dir("victim");
    let v = victim.to_string_lossy().into_owned();
    let r = &fx.rootfs;
    symlink(&v, r.join("abs")).unwrap_or_else(|e| panic!("{e}"));
    symlink(
        format!("{}{}", "../".repeat(10), v.trim_start_matches('/')),
        r.join("tmp/rel"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    symlink("/proc/self/root", r.join("magic")).unwrap_or_else(|e| panic!("{e}"));
    symlink("x", r.join("self-loop-x")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::rename(r.join("self-loop-x"), r.join("x")).unwrap_or_else(|e| panic!("{e}"));

    let inside = |fd: &std::os::fd::OwnedFd| {
        use std::os::fd::AsRawFd;
        std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap_or_default()
    };
    for (path, create) in [
        ("/abs/a/b", Some(CreateKind::Directory)),
        ("/tmp/rel/c", Some(CreateKind::File)),
        ("../../../abs/d", Some(CreateKind::Directory)),
        ("/magic/e", Some(CreateKind::Directory)),
    ] {
        let fd = open_in_root(r, Path::new(path), create).unwrap_or_else(|e| panic!("{path}: {e}"));
        let real = inside(&fd);
        assert!(real.starts_with(r), "{path} resolved to {}", real.display());
    }
    assert_untouched(&victim);
    assert!(r.join(v.trim_start_matches('/')).join("a/b").is_dir());
    assert!(r.join(v.trim_start_matches('/')).join("c").is_file());
    assert!(
        r.join("proc/self/root/e").is_dir(),
        "the magic link is just a path inside the root"
    );

    let err = open_in_root(r, Path::new("/x/y"), Some(CreateKind::Directory)).err();
    assert_eq!(err.and_then(|e| e.errno()), Some(nix::errno::Errno::ELOOP));
    let err = open_in_root(r, Path::new("/missing/file"), None).err();
    assert_eq!(err.and_then(|e| e.errno()), Some(nix::errno::Errno::ENOENT));
    assert!(
        !r.join("missing").exists(),
        "nothing is created without `create`"
    );
}

#[test]
fn image_symlinks_in_dev_are_replaced_by_nodes() {
    require_root!();
    let mut fx = Fixture::new("dev-links");
    let r = fx.rootfs.clone();
    std::fs::write(r.join("etc/secret"), "image secret\n").unwrap_or_else(|e| panic!("{e}"));
    let host_file = fx.dir.join("host-console");
    std::fs::write(&host_file, "").unwrap_or_else(|e| panic!("{e}"));
    symlink("/etc/secret", r.join("dev/null")).unwrap_or_else(|e| panic!("{e}"));
    symlink(&host_file, r.join("dev/console")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(r.join("dev/zero"), "not a device").unwrap_or_else(|e| panic!("{e}"));

    let pty = nix::pty::openpty(None, None).unwrap_or_else(|e| panic!("openpty: {e}"));
    let slave = nix::unistd::ttyname(&pty.slave).unwrap_or_else(|e| panic!("ttyname: {e}"));
    // no /dev tmpfs: the nodes go into the image's own /dev
    let json = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},"mounts":[
        {"destination":"/proc","type":"proc","source":"proc"}],
        "linux":{"maskedPaths":["/proc/timer_list"]}}"#;
    let setup = Setup {
        console: Some(slave),
        ..Setup::default()
    };
    let script = "stat -c '%n %F %t:%T' /dev/null /dev/zero /dev/console; cat /etc/secret; wc -c < /proc/timer_list";
    let out = ok(&run(&fx, &spec(json), &setup, script));
    assert!(
        out.contains("/dev/null character special file 1:3"),
        "{out}"
    );
    assert!(
        out.contains("/dev/zero character special file 1:5"),
        "{out}"
    );
    assert!(
        out.contains("/dev/console character special file 88:"),
        "{out}"
    );
    assert!(
        out.contains("image secret\n0\n"),
        "masking used the real /dev/null: {out}"
    );
    assert_eq!(std::fs::read_to_string(&host_file).unwrap_or_default(), "");
    assert_eq!(
        std::fs::read_to_string(r.join("etc/secret")).unwrap_or_default(),
        "image secret\n"
    );
    fx.assert_no_host_mounts();
}
