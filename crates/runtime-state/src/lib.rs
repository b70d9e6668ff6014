//! berth-runtime's state of one container, `<root>/<id>/state.json` in a
//! directory guarded by an flock, as far as a process other than the
//! runtime needs it: whether the container's init still runs, where its
//! cgroup is, and the delete of a container that stopped.
//!
//! Why a crate of its own: the monitor deletes its stopped container at
//! every exit. Doing that itself, in a forked child, spares the exec of
//! the runtime (a static binary of several MB that relocates itself, ~0.6
//! ms) on the way from a container's exit to the end of `run --rm`; and
//! the monitor must not link the runtime (its spec model, seccomp) for it.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub const STATE_FILE: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";

/// How long a delete retries the rmdir of a cgroup whose last processes
/// are still leaving it (× 2 ms).
const CGROUP_REMOVE_ATTEMPTS: u32 = 100;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("removing cgroup {path}: {source}")]
    Cgroup {
        path: PathBuf,
        #[source]
        source: berth_cgroups::CgroupError,
    },
}

impl StateError {
    fn io(context: impl Into<String>, source: std::io::Error) -> StateError {
        StateError::Io {
            context: context.into(),
            source,
        }
    }
}

/// The part of state.json that tells whether the container still runs and
/// where its cgroup is.
#[derive(Debug, Clone, Deserialize)]
pub struct StateHead {
    pub init_pid: i32,
    /// Start time of the init in clock ticks since boot (field 22 of
    /// /proc/pid/stat): tells a reused pid from the init.
    pub init_start_time: u64,
    pub cgroup_path: PathBuf,
}

impl StateHead {
    /// Whether the init process still runs (and is ours, not a reused pid).
    pub fn init_alive(&self) -> bool {
        init_alive(self.init_pid, self.init_start_time)
    }
}

/// Whether `pid` runs and started at `start_time` (clock ticks since boot).
pub fn init_alive(pid: i32, start_time: u64) -> bool {
    if pid <= 0 {
        return false;
    }
    match proc_stat(pid) {
        Some((start, state)) => start == start_time && state != 'Z' && state != 'X',
        None => false,
    }
}

/// The start time (clock ticks since boot) and state letter of `pid`.
pub fn proc_stat(pid: i32) -> Option<(u64, char)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start
    // after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    // `rest` starts at field 3; starttime is field 22.
    let start = fields.nth(18)?.parse().ok()?;
    Some((start, state))
}

/// Opens the container directory `path` and takes its exclusive flock,
/// held as long as the returned file is open.
pub fn lock_dir(path: &Path) -> std::io::Result<File> {
    let dir = File::open(path)?;
    // SAFETY: flock on a valid fd we own; the lock lives as long as `dir`.
    if unsafe { libc::flock(dir.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(dir)
}

/// The head of `<dir>/state.json`, and whether its spec may have poststop
/// hooks (the word appears in the file): without them the spec need not be
/// read at all, which for Docker's default seccomp profile is most of it.
pub fn read_head(dir: &Path) -> Result<(StateHead, bool), StateError> {
    let file = dir.join(STATE_FILE);
    let data =
        std::fs::read(&file).map_err(|e| StateError::io(format!("read {}", file.display()), e))?;
    let head = serde_json::from_slice(&data).map_err(|e| StateError::Parse {
        path: file,
        reason: e.to_string(),
    })?;
    let may_have_poststop = data.windows(8).any(|w| w == b"poststop");
    Ok((head, may_have_poststop))
}

/// Removes a stopped container's cgroup `path` (none there is no error),
/// waiting for its last processes to leave it.
pub fn remove_cgroup(path: &Path) -> Result<(), StateError> {
    if let Ok(cg) = berth_cgroups::manager(path) {
        berth_cgroups::destroy_retrying(cg.as_ref(), CGROUP_REMOVE_ATTEMPTS).map_err(|source| {
            StateError::Cgroup {
                path: path.to_path_buf(),
                source,
            }
        })?;
    }
    Ok(())
}

/// Removes a stopped container's cgroup, then its directory `dir` (locked
/// by the caller).
pub fn remove_stopped(dir: &Path, head: &StateHead) -> Result<(), StateError> {
    remove_cgroup(&head.cgroup_path)?;
    std::fs::remove_dir_all(dir).map_err(|e| StateError::io(format!("remove {}", dir.display()), e))
}

/// What [`delete_stopped`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Deletion {
    /// The container's cgroup and state are gone (or were never there).
    Done,
    /// Its init still runs or its spec may have poststop hooks: that is
    /// `berth-runtime delete`'s to do.
    LeftToRuntime,
}

/// `berth-runtime --root ROOT delete ID` for a container that stopped and
/// has no poststop hooks, under the same lock; anything else is left.
pub fn delete_stopped(root: &Path, id: &str) -> Result<Deletion, StateError> {
    if id.is_empty() || id.contains('/') || id == "." || id == ".." {
        return Ok(Deletion::LeftToRuntime);
    }
    let dir = root.join(id);
    let _lock = match lock_dir(&dir) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Deletion::Done),
        Err(e) => return Err(StateError::io(format!("open {}", dir.display()), e)),
    };
    let (head, may_have_poststop) = match read_head(&dir) {
        Ok(h) => h,
        // A create that died before its first state: the runtime's delete
        // knows what to do with that.
        Err(_) => return Ok(Deletion::LeftToRuntime),
    };
    if head.init_alive() || may_have_poststop {
        return Ok(Deletion::LeftToRuntime);
    }
    remove_stopped(&dir, &head)?;
    Ok(Deletion::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_state(root: &Path, id: &str, body: &str) -> PathBuf {
        let dir = root.join(id);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(STATE_FILE), body).unwrap();
        dir
    }

    #[test]
    fn a_stopped_container_is_deleted_and_a_missing_one_is_done() {
        let root = tempfile::tempdir().unwrap();
        // pid 0 never runs; a cgroup path that exists nowhere is no error.
        let dir = write_state(
            root.path(),
            "c1",
            r#"{"init_pid":0,"init_start_time":1,"cgroup_path":"/berth-runtime-state-test-none","config":{}}"#,
        );
        assert_eq!(delete_stopped(root.path(), "c1").unwrap(), Deletion::Done);
        assert!(!dir.exists());
        assert_eq!(delete_stopped(root.path(), "c1").unwrap(), Deletion::Done);
    }

    #[test]
    fn running_hooked_or_unreadable_containers_are_left_to_the_runtime() {
        let root = tempfile::tempdir().unwrap();
        let (me, _) = proc_stat(std::process::id() as i32).unwrap();
        let running = format!(
            r#"{{"init_pid":{},"init_start_time":{me},"cgroup_path":"/x"}}"#,
            std::process::id()
        );
        let cases = [
            ("running", running.as_str()),
            (
                "hooked",
                r#"{"init_pid":0,"init_start_time":1,"cgroup_path":"/x","config":{"hooks":{"poststop":[]}}}"#,
            ),
            ("garbled", "{"),
        ];
        for (id, body) in cases {
            let dir = write_state(root.path(), id, body);
            assert_eq!(
                delete_stopped(root.path(), id).unwrap(),
                Deletion::LeftToRuntime,
                "{id}"
            );
            assert!(dir.join(STATE_FILE).exists(), "{id}");
        }
        for id in ["", "..", "a/b"] {
            assert_eq!(
                delete_stopped(root.path(), id).unwrap(),
                Deletion::LeftToRuntime
            );
        }
    }

    #[test]
    fn proc_stat_reads_our_own_start_time_and_state() {
        let (start, state) = proc_stat(std::process::id() as i32).unwrap();
        assert!(start > 0);
        assert!(matches!(state, 'R' | 'S'), "{state}");
        assert!(init_alive(std::process::id() as i32, start));
        assert!(!init_alive(std::process::id() as i32, start + 1));
        assert!(!init_alive(0, 0));
    }
}
