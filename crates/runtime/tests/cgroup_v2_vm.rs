//! berth-runtime on a pure cgroup v2 host, for real: `scripts/cgroup-v2-vm.sh`
//! boots a QEMU (TCG) guest with `cgroup_no_v1=all` and an initramfs holding
//! this binary and busybox bundles, runs the runtime there (limits, OOM kill,
//! fork limit, update, freeze, stats, eBPF device filter, cgroup namespace,
//! delete) and reads every effect back from the guest's /sys/fs/cgroup.
//!
//! The host is hybrid (an empty cgroup2 tree), so these v2 paths cannot run
//! here outside a VM. Without qemu-system-x86_64 or a guest kernel the test
//! prints `SKIPPED: …` and returns: report it as skipped, not as passed.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// The script's exit status for "cannot run here" (automake's SKIP code).
const SKIP_STATUS: i32 = 77;

#[test]
fn cgroup_v2_checks_pass_in_a_pure_v2_guest() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/cgroup-v2-vm.sh");
    let started = Instant::now();
    let out = Command::new("bash")
        .arg(&script)
        .arg(env!("CARGO_BIN_EXE_berth-runtime"))
        .output()
        .expect("run scripts/cgroup-v2-vm.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let transcript = format!("--- guest and script output ---\n{stdout}\n--- stderr ---\n{stderr}");

    if out.status.code() == Some(SKIP_STATUS) {
        let reason = stdout
            .lines()
            .find_map(|l| l.strip_prefix("SKIPPED: "))
            .unwrap_or("scripts/cgroup-v2-vm.sh cannot run here");
        println!("SKIPPED: {reason}");
        return;
    }

    let checks: Vec<&str> = stdout.lines().filter(|l| l.starts_with("CHECK ")).collect();
    let failed: Vec<&&str> = checks.iter().filter(|l| !l.contains(" PASS ")).collect();
    assert!(
        out.status.success() && failed.is_empty(),
        "cgroup v2 checks failed in the guest: {failed:#?}\n{transcript}"
    );
    // The script names how many checks it requires; every one must have
    // reported, so a guest that died half-way cannot pass.
    let required = stdout
        .lines()
        .find_map(|l| {
            l.strip_prefix("all ")?
                .split_once(" cgroup v2 checks passed")
        })
        .and_then(|(n, _)| n.parse::<usize>().ok())
        .unwrap_or_else(|| panic!("the script did not say how many checks passed\n{transcript}"));
    assert!(
        required >= 16,
        "the script requires only {required} checks\n{transcript}"
    );
    assert_eq!(
        checks.len(),
        required,
        "checks reported vs required\n{transcript}"
    );
    println!("{stdout}");
    println!(
        "cgroup v2 VM test took {:.1}s",
        started.elapsed().as_secs_f64()
    );
}
