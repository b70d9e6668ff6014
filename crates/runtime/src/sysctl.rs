//! `linux.sysctl`: which keys are namespaced (checked like runc before
//! anything is created) and writing them under `/proc/sys` after pivot.

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::config::creates_namespace;

fn has_namespace(spec: &Spec, typ: LinuxNamespaceType) -> bool {
    crate::config::namespace_set(spec).contains(&typ)
}

/// Checks that `key` lives in a namespace the container owns, so writing it
/// cannot change the host.
pub fn check_namespaced(spec: &Spec, key: &str) -> Result<(), String> {
    const IPC_KEYS: [&str; 7] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
    ];
    if IPC_KEYS.contains(&key) || key == "kernel.shm_rmid_forced" || key.starts_with("fs.mqueue.") {
        if has_namespace(spec, LinuxNamespaceType::Ipc) {
            return Ok(());
        }
        return Err("needs a private IPC namespace".into());
    }
    if let Some(rest) = key.strip_prefix("net.") {
        if rest.is_empty() {
            return Err("empty net sysctl".into());
        }
        if creates_namespace(spec, LinuxNamespaceType::Network)
            || spec
                .linux()
                .as_ref()
                .and_then(|l| l.namespaces().as_ref())
                .is_some_and(|ns| {
                    ns.iter()
                        .any(|n| n.typ() == LinuxNamespaceType::Network && n.path().is_some())
                })
        {
            return Ok(());
        }
        return Err("needs a private network namespace".into());
    }
    if key == "kernel.hostname" || key == "kernel.domainname" {
        if !has_namespace(spec, LinuxNamespaceType::Uts) {
            return Err("needs a private UTS namespace".into());
        }
        let field = if key == "kernel.hostname" {
            "hostname"
        } else {
            "domainname"
        };
        return Err(format!(
            "conflicts with the OCI {field:?} field; set that instead"
        ));
    }
    Err("is not in a separate kernel namespace".into())
}

/// Writes every sysctl under `/proc/sys` (call after pivot: the container's
/// own /proc).
pub fn apply(sysctl: &std::collections::HashMap<String, String>) -> Result<(), String> {
    for (key, value) in sysctl {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        std::fs::write(&path, value.as_bytes())
            .map_err(|e| format!("sysctl {key}={value}: write {path}: {e}"))?;
    }
    Ok(())
}
