//! spec and features.

use serde_json::json;

use crate::cli::SpecArgs;
use crate::error::RuntimeError;

/// runc's `spec` output, byte for byte (runc 1.1's template).
pub const DEFAULT_SPEC: &str = include_str!("../default-spec.json");
/// runc's `spec --rootless` output.
pub const DEFAULT_ROOTLESS_SPEC: &str = include_str!("../default-spec-rootless.json");

pub fn spec(a: &SpecArgs) -> Result<(), RuntimeError> {
    let path = a.bundle.join("config.json");
    if path.exists() {
        return Err(RuntimeError::InvalidArgument(
            "File config.json exists. Remove it first.".into(),
        ));
    }
    let content = if a.rootless {
        DEFAULT_ROOTLESS_SPEC
    } else {
        DEFAULT_SPEC
    };
    std::fs::write(&path, content)
        .map_err(|e| RuntimeError::io(format!("write {}", path.display()), e))
}

const MOUNT_OPTIONS: &[&str] = &[
    "acl",
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noacl",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "private",
    "ratime",
    "rbind",
    "rdev",
    "rdiratime",
    "relatime",
    "remount",
    "rexec",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnorelatime",
    "rnostrictatime",
    "rnosuid",
    "rnosymfollow",
    "ro",
    "rprivate",
    "rrelatime",
    "rro",
    "rrw",
    "rshared",
    "rslave",
    "rstrictatime",
    "rsuid",
    "rsymfollow",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "symfollow",
    "sync",
    "tmpcopyup",
    "unbindable",
];

pub fn features() -> Result<(), RuntimeError> {
    let caps: Vec<String> = {
        let mut v: Vec<_> = caps::runtime::thread_all_supported().into_iter().collect();
        v.sort_by_key(|c| c.index());
        v.into_iter().map(|c| c.to_string()).collect()
    };
    let seccomp = berth_seccomp::features();
    let cgroup_mode = berth_cgroups::detect_mode().ok();
    let doc = json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.2.0",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": MOUNT_OPTIONS,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps,
            "cgroup": {
                "v1": true,
                "v2": true,
                "systemd": false,
                "systemdUser": false,
                "rdma": false,
            },
            "seccomp": {
                "enabled": true,
                "actions": seccomp.actions,
                "operators": seccomp.operators,
                "archs": seccomp.archs,
                "knownFlags": seccomp.known_flags,
                "supportedFlags": seccomp.supported_flags,
            },
            "apparmor": { "enabled": false },
            "selinux": { "enabled": false },
            "intelRdt": { "enabled": false },
        },
        "annotations": {
            "org.berth.runtime.version": env!("CARGO_PKG_VERSION"),
            "org.berth.runtime.cgroup.mode": cgroup_mode.map(|m| format!("{m:?}").to_lowercase()),
        },
    });
    let s = serde_json::to_string_pretty(&doc).map_err(|e| RuntimeError::Protocol {
        context: "features",
        reason: e.to_string(),
    })?;
    println!("{s}");
    Ok(())
}
