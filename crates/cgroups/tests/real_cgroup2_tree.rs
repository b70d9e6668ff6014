//! The v2 manager on the real cgroup2 tree of a hybrid host (device
//! programs and cgroup.freeze need no controllers), as root.

mod real_support;

use std::fs;
use std::io::Write;
use std::time::Duration;

use berth_testutil::require_root;
use oci_spec::runtime::{LinuxDeviceType, LinuxResourcesBuilder};
use real_support::*;

#[test]
fn v2_device_program_denies_dev_null_on_the_cgroup2_tree() {
    require_root!();
    let Some(cg) = TestCgroup::on_unified_tree("bpfdev") else {
        eprintln!("SKIPPED: no cgroup2 hierarchy mounted");
        return;
    };
    cg.manager.create().unwrap();
    let deny_null = LinuxResourcesBuilder::default()
        .devices(vec![
            device(false, None, 0, 0, "rwm"),
            device(true, Some(LinuxDeviceType::C), 1, 5, "rwm"),
        ])
        .build()
        .unwrap();
    cg.manager.apply(&deny_null).unwrap();
    let probe = "if echo x > /dev/null; then echo null-ok; else echo null-denied; fi; \
                 /bin/busybox head -c 3 /dev/zero | /bin/busybox wc -c; read again; \
                 if echo x > /dev/null; then echo null-ok; else echo null-denied; fi";

    // Outside the cgroup the same script opens /dev/null.
    let mut control = Script::spawn(probe);
    control.go();
    assert_eq!(control.line(), "null-ok");

    let mut script = Script::spawn(probe);
    cg.manager.add_task(script.pid()).unwrap();
    let own = fs::read_to_string(format!("/proc/{}/cgroup", script.pid())).unwrap();
    assert!(
        own.lines()
            .any(|l| l.starts_with("0::") && l.ends_with(&cg.manager.path().display().to_string())),
        "{own}"
    );
    script.go();
    assert_eq!(script.line(), "null-denied");
    assert_eq!(script.line(), "3", "/dev/zero (1:5) stays allowed");

    // An update replaces the program: allowing 1:3 takes effect, so the
    // old, denying program is gone (all attached programs must allow).
    let allow_null = LinuxResourcesBuilder::default()
        .devices(vec![
            device(false, None, 0, 0, "rwm"),
            device(true, Some(LinuxDeviceType::C), 1, 5, "rwm"),
            device(true, Some(LinuxDeviceType::C), 1, 3, "rw"),
        ])
        .build()
        .unwrap();
    cg.manager.apply(&allow_null).unwrap();
    script
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"again\n")
        .unwrap();
    assert_eq!(script.line(), "null-ok");
}

#[test]
fn v2_freeze_works_on_the_cgroup2_tree() {
    require_root!();
    let Some(cg) = TestCgroup::on_unified_tree("v2freeze") else {
        eprintln!("SKIPPED: no cgroup2 hierarchy mounted");
        return;
    };
    cg.manager.create().unwrap();
    let mut script = Script::spawn("/bin/busybox sleep 30; echo done");
    cg.manager.add_task(script.pid()).unwrap();
    script.go();
    let sleeper = || {
        cg.manager
            .pids()
            .unwrap()
            .into_iter()
            .find(|p| *p != script.pid())
    };
    wait_until("sleep to start", Duration::from_secs(5), || {
        sleeper().is_some()
    });
    let sleeper = sleeper().unwrap();
    cg.manager.freeze().unwrap();
    assert!(cg.manager.is_frozen().unwrap());
    let events = read_trim(unified_dir(cg.manager.path()).join("cgroup.events"));
    assert!(events.contains("frozen 1"), "{events}");
    // do_freezer_trap() is often inlined into get_signal(). wchan reads "0"
    // while the task is between scheduler states (seen under load), so it
    // is sampled until it names the freezer.
    let mut wchan = String::new();
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        wchan = read_trim(format!("/proc/{sleeper}/wchan"));
        if ["do_freezer_trap", "get_signal"].contains(&wchan.as_str()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        ["do_freezer_trap", "get_signal"].contains(&wchan.as_str()),
        "the sleeper waits in the freezer, not in {wchan}"
    );
    cg.manager.thaw().unwrap();
    assert!(!cg.manager.is_frozen().unwrap());
    let events = read_trim(unified_dir(cg.manager.path()).join("cgroup.events"));
    assert!(events.contains("frozen 0"), "{events}");
}

#[test]
fn v2_device_program_with_many_rules_loads() {
    require_root!();
    let Some(cg) = TestCgroup::on_unified_tree("bpfmany") else {
        eprintln!("SKIPPED: no cgroup2 hierarchy mounted");
        return;
    };
    cg.manager.create().unwrap();
    // A long list, as Kubernetes device plugins produce: ~10 instructions
    // per rule, all verified.
    let mut rules = vec![device(false, None, 0, 0, "rwm")];
    for minor in 0..500 {
        rules.push(device(true, Some(LinuxDeviceType::C), 240, minor, "rw"));
    }
    rules.push(device(true, Some(LinuxDeviceType::C), 1, 3, "rwm"));
    let res = LinuxResourcesBuilder::default()
        .devices(rules)
        .build()
        .unwrap();
    cg.manager.apply(&res).unwrap();
    let mut script =
        Script::spawn("if echo x > /dev/null; then echo null-ok; else echo null-denied; fi");
    cg.manager.add_task(script.pid()).unwrap();
    script.go();
    assert_eq!(script.line(), "null-ok");
}
