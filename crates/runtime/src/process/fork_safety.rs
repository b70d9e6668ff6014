//! When a process entering a container may be a plain fork of the runtime
//! instead of a second execution of it from its sealed view
//! ([`super::sealed_exe`]).
//!
//! A forked process runs the host's runtime binary until its last step,
//! the execveat of the sealed dmz ([`super::dmz`]): `/proc/<pid>/exe` of it
//! names the host file, and whoever may open that link holds a handle to
//! the binary that becomes writable once no runtime process executes it
//! (CVE-2019-5736). The fork makes itself non-dumpable as its first step,
//! and then `ptrace_may_access()` lets only holders of CAP_SYS_PTRACE in
//! the user namespace owning its mm through. A fork keeps its parent's mm
//! owner, the runtime's user namespace, so the fork is used only where no
//! process that can see it can hold that capability there:
//!
//! - the process lives in a pid namespace the container created (a new one
//!   for the init; the init's for exec), so only the container's own
//!   processes (and the host) can see it, not those of other containers
//!   sharing a pid namespace;
//! - CAP_SYS_PTRACE is in none of the capability sets of the container's
//!   process, nor of the exec'd one, nor of any process exec'd earlier
//!   ([`PTRACE_EXEC_MARKER`]): no process of the container can gain it;
//! - the container has no user namespace. (A forked process in one would be
//!   safe from ptrace, but its own `/proc/self` files belong to the host's
//!   root then, so the init could not write `oom_score_adj` or reopen its
//!   files as the container's root; those keep the re-exec.)
//! - the dmz exists (x86_64, executable memfds allowed) and the runtime is
//!   single-threaded, so that the child's copy of the address space is
//!   consistent (no lock held by another thread).
//!
//! runc 1.2's runc-dmz made the same trade (`isDmzBinarySafe`); berth adds
//! the pid namespace and user namespace conditions and the exec marker.
//!
//! Left open, as in runc: a process of *another* container that joins this
//! container's pid namespace (by path) with CAP_SYS_PTRACE and without a
//! user namespace can race a later `exec` into this container in the
//! ~1 ms between its fork and its execveat.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use oci_spec::runtime::{Capability, LinuxNamespaceType, Process, Spec};

/// Created in the container's state directory when an `exec` gave a
/// process CAP_SYS_PTRACE: later execs into that container re-execute the
/// runtime instead of forking.
pub const PTRACE_EXEC_MARKER: &str = "ptrace-exec";

/// Whether `process` (or anything it execs) can hold CAP_SYS_PTRACE: it is
/// in one of its capability sets, or the process keeps root's full sets
/// because it names none.
pub fn may_hold_ptrace(process: &Process) -> bool {
    let Some(caps) = process.capabilities() else {
        return true;
    };
    [
        caps.bounding(),
        caps.effective(),
        caps.permitted(),
        caps.inheritable(),
        caps.ambient(),
    ]
    .into_iter()
    .any(|set| {
        set.as_ref()
            .is_some_and(|s| s.contains(&Capability::SysPtrace))
    })
}

/// Whether this process has exactly one thread (`/proc/self/task` has one
/// link per thread besides `.` and `..`).
pub fn single_threaded() -> bool {
    std::fs::metadata("/proc/self/task").is_ok_and(|m| m.nlink() == 3)
}

fn namespace(spec: &Spec, typ: LinuxNamespaceType) -> Option<Option<&Path>> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .and_then(|list| list.iter().find(|ns| ns.typ() == typ))
        .map(|ns| ns.path().as_deref())
}

/// The container's own configuration allows a forked init: it creates its
/// pid namespace, has no user namespace and no process of it can hold
/// CAP_SYS_PTRACE. (The runtime's side, [`single_threaded`] and the dmz,
/// is checked where the process is started.)
pub fn config_allows_fork(spec: &Spec) -> bool {
    cfg!(target_arch = "x86_64")
        && matches!(namespace(spec, LinuxNamespaceType::Pid), Some(None))
        && namespace(spec, LinuxNamespaceType::User).is_none()
        && !spec.process().as_ref().is_none_or(may_hold_ptrace)
}

/// Whether a process exec'd into the container described by `config`
/// (state dir `container_dir`) with `process` may be forked.
pub fn exec_may_fork(config: &Spec, process: &Process, container_dir: &Path) -> bool {
    config_allows_fork(config)
        && !may_hold_ptrace(process)
        && !container_dir.join(PTRACE_EXEC_MARKER).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(edit: impl FnOnce(&mut serde_json::Value)) -> Spec {
        let mut v: serde_json::Value =
            serde_json::from_str(include_str!("../default-spec.json")).expect("default spec");
        edit(&mut v);
        serde_json::from_value(v).expect("spec")
    }

    #[test]
    fn default_spec_allows_the_fork() {
        let s = spec(|_| {});
        assert!(
            config_allows_fork(&s) == cfg!(target_arch = "x86_64"),
            "runc's default spec"
        );
    }

    #[test]
    fn ptrace_anywhere_forbids_it() {
        for set in [
            "bounding",
            "effective",
            "permitted",
            "inheritable",
            "ambient",
        ] {
            let s = spec(|v| {
                v["process"]["capabilities"][set] = serde_json::json!(["CAP_SYS_PTRACE"]);
            });
            assert!(!config_allows_fork(&s), "{set}");
        }
        // No capabilities at all: root keeps everything.
        let s = spec(|v| {
            v["process"]
                .as_object_mut()
                .map(|p| p.remove("capabilities"));
        });
        assert!(!config_allows_fork(&s));
    }

    #[test]
    fn shared_pid_or_user_namespaces_forbid_it() {
        let s = spec(|v| {
            let ns = v["linux"]["namespaces"].as_array_mut().expect("namespaces");
            ns.retain(|n| n["type"] != "pid");
        });
        assert!(!config_allows_fork(&s), "host pid namespace");
        let s = spec(|v| {
            for n in v["linux"]["namespaces"]
                .as_array_mut()
                .expect("namespaces")
                .iter_mut()
            {
                if n["type"] == "pid" {
                    n["path"] = serde_json::json!("/proc/1/ns/pid");
                }
            }
        });
        assert!(!config_allows_fork(&s), "joined pid namespace");
        let s = spec(|v| {
            v["linux"]["namespaces"]
                .as_array_mut()
                .expect("namespaces")
                .push(serde_json::json!({"type": "user"}));
        });
        assert!(!config_allows_fork(&s), "user namespace");
    }

    #[test]
    fn single_threaded_counts_threads() {
        let t = std::thread::spawn(|| std::thread::sleep(std::time::Duration::from_millis(200)));
        assert!(!single_threaded());
        t.join().expect("join");
    }
}
