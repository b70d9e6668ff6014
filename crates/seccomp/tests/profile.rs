//! A real-world profile: podman's default seccomp profile, converted to OCI
//! the way an engine does, must compile, load and run busybox.

mod common;

use berth_testutil::{require_root, TempDir};
use common::{assert_fails_with, program, run_filtered, stderr, stdout};
use serde_json::{json, Value};

/// The subset of a containers/common profile (podman's and Docker's default,
/// with `includes`/`excludes` conditions) that applies to an x86-64
/// container without extra capabilities, as OCI `linux.seccomp`.
fn oci_from_containers_profile(profile: &Value) -> Value {
    let architectures: Vec<Value> = profile["archMap"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["architecture"] == "SCMP_ARCH_X86_64")
        .flat_map(|m| {
            let mut archs = vec![m["architecture"].clone()];
            archs.extend(
                m["subArchitectures"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            );
            archs
        })
        .collect();
    let syscalls: Vec<Value> = profile["syscalls"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|rule| {
            let includes = &rule["includes"];
            let arch_ok = includes["arches"]
                .as_array()
                .is_none_or(|a| a.iter().any(|x| x == "amd64" || x == "x86_64"));
            arch_ok && includes["caps"].as_array().is_none_or(|c| c.is_empty())
        })
        .map(|rule| {
            let mut rule = rule.clone();
            if let Some(object) = rule.as_object_mut() {
                for key in ["includes", "excludes", "comment"] {
                    object.remove(key);
                }
            }
            rule
        })
        .collect();
    json!({
        "defaultAction": profile["defaultAction"],
        "defaultErrnoRet": profile["defaultErrnoRet"],
        "architectures": architectures,
        "syscalls": syscalls
    })
}

#[test]
fn podman_default_profile_compiles_loads_and_runs_busybox() {
    require_root!();
    let path = "/usr/share/containers/seccomp.json";
    let Ok(text) = std::fs::read(path) else {
        eprintln!("SKIPPED: {path} (package golang-github-containers-common) is not installed");
        return;
    };
    let profile: Value = serde_json::from_slice(&text).expect("profile is JSON");
    let spec = oci_from_containers_profile(&profile);
    let started = std::time::Instant::now();
    let filtered = program(spec.clone());
    eprintln!(
        "compiled {path}: {} instructions in {:?}, warnings: {:?}",
        filtered.instruction_count(),
        started.elapsed(),
        filtered.warnings()
    );
    let dir = TempDir::new("seccomp-profile").expect("tempdir");
    let parsed = berth_seccomp::parse_spec(&spec).expect("spec");
    berth_seccomp::compile_cached(&parsed, &dir.join("cache")).expect("fills the cache");
    let started = std::time::Instant::now();
    let cached =
        berth_seccomp::compile_cached(&parsed, &dir.join("cache")).expect("from the cache");
    eprintln!("from the cache in {:?}", started.elapsed());
    assert_eq!(cached.instruction_count(), filtered.instruction_count());
    let script = format!(
        "echo ok && mkdir {0}/made && ls -d {0}/made",
        dir.path().display()
    );
    let out = run_filtered(&filtered, &["sh", "-c", &script]);
    assert!(
        out.status.success(),
        "busybox under the default profile: {:?} {}",
        out.status,
        stderr(&out)
    );
    assert_eq!(stdout(&out), format!("ok\n{}/made\n", dir.path().display()));

    // chroot needs CAP_SYS_CHROOT in the profile: its explicit ERRNO(EPERM) rule answers.
    let out = run_filtered(
        &filtered,
        &["chroot", dir.path().to_str().expect("utf-8"), "/bin/true"],
    );
    // chroot must not go through the default profile.
    assert_fails_with(&out, "Operation not permitted");
}
