//! The default profile in a real busybox container run by an OCI runtime:
//! runc (installed on test machines) always, and berth-runtime when it has
//! been built next to the test executable. The process holds CAP_SYS_ADMIN
//! both times, so only the filter decides whether unshare(2) works.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use berth_testutil::TempDir;

use super::{caps, DOCKER_CAPS};
use crate::containers::defaults::seccomp::{
    default_profile, host_arch, host_kernel_version, to_oci,
};

/// A container id unique to this process and call, recognisable as berth's.
fn unique_id() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "berth-seccomp-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Deletes the container whatever happens to the test.
struct ContainerGuard<'a> {
    runtime: &'a Path,
    state: &'a Path,
    id: String,
}

impl Drop for ContainerGuard<'_> {
    fn drop(&mut self) {
        let _ = Command::new(self.runtime)
            .arg("--root")
            .arg(self.state)
            .args(["delete", "--force", &self.id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A busybox bundle with runc's default config, reused for several runs.
struct Bundle {
    tmp: TempDir,
}

impl Bundle {
    fn new() -> Self {
        let tmp = TempDir::new("seccomp-ctr").unwrap();
        let rootfs = tmp.join("bundle/rootfs");
        std::fs::create_dir_all(&rootfs).unwrap();
        berth_testutil::busybox_rootfs(&rootfs).unwrap();
        let status = Command::new("runc")
            .args(["spec", "--bundle"])
            .arg(tmp.join("bundle"))
            .status()
            .unwrap();
        assert!(status.success(), "runc spec");
        Self { tmp }
    }

    /// Runs `sh -c script` under `runtime` with the default profile resolved
    /// for `seccomp_caps`; returns the exit code and stderr.
    fn run(&self, runtime: &Path, seccomp_caps: &[String], script: &str) -> (i32, String) {
        let bundle = self.tmp.join("bundle");
        let state = self.tmp.join("state");
        let seccomp = to_oci(
            &default_profile().unwrap(),
            seccomp_caps,
            host_arch(),
            host_kernel_version().unwrap(),
        )
        .unwrap()
        .unwrap();
        let config_path = bundle.join("config.json");
        let mut config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&config_path).unwrap()).unwrap();
        let process_caps: Vec<String> = caps(&["CAP_SYS_ADMIN"]);
        config["process"]["terminal"] = false.into();
        config["process"]["args"] = serde_json::json!(["sh", "-c", script]);
        for set in ["bounding", "effective", "permitted"] {
            config["process"]["capabilities"][set] = serde_json::json!(process_caps);
        }
        config["root"]["readonly"] = false.into();
        config["linux"]["seccomp"] = serde_json::to_value(&seccomp).unwrap();
        std::fs::write(&config_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();

        let id = unique_id();
        let _guard = ContainerGuard {
            runtime,
            state: &state,
            id: id.clone(),
        };
        // Output goes to a file: the container inherits stdio and a pipe
        // could stay open after the runtime exits.
        let err_path = self.tmp.join("stderr");
        let status = Command::new(runtime)
            .arg("--root")
            .arg(&state)
            .args(["run", "--bundle"])
            .arg(&bundle)
            .arg(&id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .status()
            .unwrap();
        let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
        (status.code().unwrap_or(-1), stderr)
    }
}

fn check_runtime(runtime: &Path) {
    let bundle = Bundle::new();
    let script = "unshare -u true";
    let without: Vec<String> = DOCKER_CAPS.iter().map(|c| c.to_string()).collect();
    let (code, stderr) = bundle.run(runtime, &without, script);
    assert_eq!(code, 1, "{}: {stderr}", runtime.display());
    assert!(stderr.contains("Operation not permitted"), "{stderr}");

    let (code, stderr) = bundle.run(runtime, &caps(&["CAP_SYS_ADMIN"]), script);
    assert_eq!(code, 0, "{}: {stderr}", runtime.display());

    // An ordinary workload runs under the default profile.
    let (code, stderr) = bundle.run(
        runtime,
        &without,
        "ls / >/dev/null && ps >/dev/null && test -r /proc/self/status",
    );
    assert_eq!(code, 0, "{}: {stderr}", runtime.display());
}

/// berth-runtime as cargo places it: beside the test executable's `deps/`.
fn berth_runtime() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let deps = exe.parent()?;
    [
        deps.join("berth-runtime"),
        deps.parent()?.join("berth-runtime"),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

#[test]
fn unshare_is_filtered_in_a_runc_container() {
    berth_testutil::require_root!();
    check_runtime(Path::new("runc"));
}

#[test]
fn unshare_is_filtered_in_a_berth_runtime_container() {
    berth_testutil::require_root!();
    let Some(runtime) = berth_runtime() else {
        eprintln!(
            "SKIPPED: berth-runtime is not built beside the tests (cargo build -p berth-runtime)"
        );
        return;
    };
    check_runtime(&runtime);
}
