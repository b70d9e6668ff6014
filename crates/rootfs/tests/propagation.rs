//! Root tests: mount propagation (per mount and of the root) and recursive attributes.

mod support;

use berth_testutil::require_root;
use nix::mount::MsFlags;
use support::{default_spec, has, mount_opts, ok, run, Fixture, Setup};

/// rslave: a mount the host makes later under the source shows up inside;
/// rprivate: it does not.
fn propagation_case(option: &str, expect_seen: bool) {
    let mut fx = Fixture::new(&format!("prop-{option}"));
    let src = fx.host_dir("shared-src");
    // its own shared peer group, whatever the host's / is
    let s = src.to_string_lossy().into_owned();
    fx.host_mount(&s, &src, None, MsFlags::MS_BIND, None);
    fx.host_mount("", &src, None, MsFlags::MS_SHARED, None);
    std::fs::create_dir(src.join("sub")).unwrap_or_else(|e| panic!("{e}"));
    let mounts = format!(
        r#"{{"destination":"/shared","type":"bind","source":"{s}","options":["rbind","{option}"]}}"#
    );
    let script = r#"
        touch /shared/ready
        i=0; while [ ! -e /shared/go ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
        if grep -q ' /shared/sub ' /proc/self/mountinfo; then echo seen; else echo unseen; fi
    "#;
    let child = support::spawn(&fx, &default_spec(&mounts, ""), &Setup::default(), script);
    let mut waited = 0;
    while !src.join("ready").exists() && waited < 400 {
        std::thread::sleep(std::time::Duration::from_millis(25));
        waited += 1;
    }
    fx.host_tmpfs(&src.join("sub"), MsFlags::empty());
    std::fs::write(src.join("go"), "").unwrap_or_else(|e| panic!("{e}"));
    let out = ok(&child.wait_with_output().unwrap_or_else(|e| panic!("{e}")));
    assert_eq!(
        out.trim(),
        if expect_seen { "seen" } else { "unseen" },
        "{option}"
    );
    fx.assert_no_host_mounts();
}

#[test]
fn rslave_bind_sees_later_host_mounts() {
    require_root!();
    propagation_case("rslave", true);
}

#[test]
fn rprivate_bind_does_not_see_later_host_mounts() {
    require_root!();
    propagation_case("rprivate", false);
}

#[test]
fn recursive_readonly_covers_submounts() {
    require_root!();
    let mut fx = Fixture::new("rro");
    let src = fx.host_dir("tree");
    std::fs::create_dir(src.join("sub")).unwrap_or_else(|e| panic!("{e}"));
    fx.host_tmpfs(&src.join("sub"), MsFlags::empty());
    let mounts = format!(
        r#"{{"destination":"/tree","type":"bind","source":"{}","options":["rbind","rro","rnosuid"]}}"#,
        src.display()
    );
    let script = r#"
        if touch /tree/x 2>/dev/null; then echo top-writable; fi
        if touch /tree/sub/x 2>/dev/null; then echo sub-writable; fi
        grep ' /tree/sub ' /proc/self/mountinfo
    "#;
    let out = ok(&run(
        &fx,
        &default_spec(&mounts, ""),
        &Setup::default(),
        script,
    ));
    assert!(!out.contains("writable"), "{out}");
    let (o, _, _) = mount_opts(&out, "/tree/sub");
    assert!(has(&o, "ro") && has(&o, "nosuid"), "{o:?}");
    fx.assert_no_host_mounts();
}

#[test]
fn shared_rootfs_propagation_is_applied_to_new_root() {
    require_root!();
    let mut fx = Fixture::new("rootprop");
    let out = ok(&run(
        &fx,
        &default_spec("", r#""rootfsPropagation":"rprivate""#),
        &Setup::default(),
        "awk '$5 == \"/\"' /proc/self/mountinfo",
    ));
    let head = out.split(" - ").next().unwrap_or("");
    assert!(
        !head.contains("shared:") && !head.contains("master:"),
        "{out}"
    );
    fx.assert_no_host_mounts();
}
