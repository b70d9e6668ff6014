//! Hiding the grace period of a cgroup v1 migration.
//!
//! Moving a process between cgroups takes the kernel's global
//! `cgroup_threadgroup_rwsem` for writing. When no migration happened
//! lately, that first waits for an RCU grace period (rcu_sync_enter: 5-25 ms
//! on the dev VM, the largest single cost of `run` on v1 and hybrid hosts;
//! crun and runc wait for it too). Writers that arrive while one is waiting
//! share that grace period, and for a grace period after the last one left,
//! writers do not wait at all.
//!
//! So the runtime's `create` and `exec` start a helper early whose only job
//! is one such migration: it writes `0` (itself) to the cgroup.procs of the
//! cgroup it already is in, in a hierarchy without controllers where one
//! exists, so nothing about it changes. It sleeps through the grace period
//! on its own while the runtime parses the config, makes the cgroup and
//! clones the init, and by the time the runtime moves the init, the
//! migration no longer waits (measured: 5-12 ms → 20 µs). On pure cgroup v2
//! hosts the init is born in its cgroup (clone3) and no helper is started.
//!
//! berth's `run` and `start` start one too, first thing: the runtime's own
//! helper comes only a few milliseconds before its migration, less than a
//! grace period, while from the CLI's start the CLI's work (record,
//! snapshot, bundle), the monitor's start and the runtime's parsing all
//! overlap with it. The monitor primes once more right before it runs the
//! runtime: a writer that comes within a grace period of the last one
//! does not wait, and each extends that window.
//!
//! The helper waits holding the kernel's `cgroup_mutex`, so everything else
//! that takes it (cgroup mkdir and rmdir) waits for the same grace period:
//! `create` makes its cgroup directories before it starts the helper.

use std::ffi::CString;
use std::path::Path;

use nix::unistd::Pid;

/// The helper, reaped on drop.
pub struct MigrationPrimer {
    helper: Option<Pid>,
}

impl MigrationPrimer {
    /// Starts the helper where a migration is to come: on v1 and hybrid
    /// hosts, and with `on_v2` on pure v2 hosts too (`exec` moves its
    /// process there as well; `create` clones straight into the cgroup).
    /// Never fails: no helper only means the migration waits as it would
    /// anyway. The caller must be single-threaded: the helper is forked.
    pub fn start(on_v2: bool) -> MigrationPrimer {
        let none = MigrationPrimer { helper: None };
        if !on_v2 && Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            return none;
        }
        let targets = own_procs_files();
        if targets.is_empty() {
            return none;
        }
        // SAFETY: a raw clone without CLONE_VM is fork without the atfork
        // handlers; callers are single-threaded (documented above), and the
        // child only calls open, write and _exit on memory made before.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_clone,
                libc::SIGCHLD as libc::c_ulong,
                0usize,
                0usize,
                0usize,
                0usize,
            )
        };
        match rc {
            0 => prime(&targets),
            pid if pid > 0 => MigrationPrimer {
                helper: Some(Pid::from_raw(pid as i32)),
            },
            _ => none,
        }
    }
}

impl Drop for MigrationPrimer {
    fn drop(&mut self) {
        if let Some(pid) = self.helper.take() {
            let _ = nix::sys::wait::waitpid(pid, None);
        }
    }
}

/// In the helper: the first of `targets` that opens gets "0". Only open,
/// write and _exit, with paths made before the fork.
fn prime(targets: &[CString]) -> ! {
    for t in targets {
        // SAFETY: open/write/close/_exit on a NUL-terminated path and a
        // static buffer; nothing here allocates or takes locks.
        unsafe {
            let fd = libc::open(t.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd >= 0 {
                libc::write(fd, b"0".as_ptr().cast(), 1);
                libc::close(fd);
                libc::_exit(0);
            }
        }
    }
    // SAFETY: _exit is always safe.
    unsafe { libc::_exit(0) }
}

/// cgroup.procs of our own cgroup in each hierarchy: v1 ones mounted at
/// /sys/fs/cgroup/<name>, controller-less (`name=`) ones first, then the
/// v2 one at /sys/fs/cgroup (pure v2 hosts).
fn own_procs_files() -> Vec<CString> {
    let Ok(text) = std::fs::read_to_string("/proc/self/cgroup") else {
        return Vec::new();
    };
    let mut named = Vec::new();
    let mut controlled = Vec::new();
    let mut unified = Vec::new();
    for line in text.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if path.contains("..") {
            continue;
        }
        let path = path.trim_start_matches('/');
        let (file, list) = match controllers.strip_prefix("name=") {
            _ if controllers.is_empty() => {
                (format!("/sys/fs/cgroup/{path}/cgroup.procs"), &mut unified)
            }
            Some(name) => (
                format!("/sys/fs/cgroup/{name}/{path}/cgroup.procs"),
                &mut named,
            ),
            None => (
                format!("/sys/fs/cgroup/{controllers}/{path}/cgroup.procs"),
                &mut controlled,
            ),
        };
        if let Ok(c) = CString::new(file) {
            list.push(c);
        }
    }
    named.extend(controlled);
    named.extend(unified);
    named
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_procs_files_name_every_hierarchy_named_ones_first() {
        let lines = std::fs::read_to_string("/proc/self/cgroup").expect("cgroups");
        let files: Vec<String> = own_procs_files()
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect();
        assert_eq!(files.len(), lines.lines().count(), "{files:?}");
        assert!(files
            .iter()
            .all(|f| f.starts_with("/sys/fs/cgroup/") && f.ends_with("/cgroup.procs")));
        if lines.contains(":name=systemd:") {
            assert!(files[0].starts_with("/sys/fs/cgroup/systemd/"), "{files:?}");
        }
    }

    /// The helper's migration is a no-op for it and reaped: nothing is
    /// left, and the caller's own cgroups are unchanged.
    #[test]
    fn primer_leaves_no_trace() {
        let before = std::fs::read_to_string("/proc/self/cgroup").expect("cgroups");
        {
            let _primer = MigrationPrimer::start(true);
        }
        assert_eq!(
            std::fs::read_to_string("/proc/self/cgroup").expect("cgroups"),
            before
        );
        // No child left to reap.
        assert_eq!(
            nix::sys::wait::waitpid(None, Some(nix::sys::wait::WaitPidFlag::WNOHANG)),
            Err(nix::Error::ECHILD)
        );
    }
}
