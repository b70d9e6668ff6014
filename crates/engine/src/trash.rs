//! Removed containers' files, deleted in the background.
//!
//! `rm` and `run --rm` answer once a container is gone from every listing
//! and its name is free; deleting its writable layer and directories
//! (tens of directory removals on the host's filesystem, a few
//! milliseconds) need not hold them up. Each is renamed into the trash of
//! its filesystem (`<root>/trash`, `<runroot>/trash`): one rename, as
//! final as the deletion for everything that reads the stores. A detached
//! process (see [`crate::detached`]) then empties the trash, including
//! what an earlier emptier left when it was killed, so a crash costs disk
//! space until the next removal, never consistency.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Marks an entry an emptier has claimed: `<name>.deleting-<pid>`.
const CLAIM: &str = ".deleting-";

/// One filesystem's trash directory.
#[derive(Debug, Clone)]
pub(crate) struct Trash {
    dir: PathBuf,
}

impl Trash {
    /// The trash for things under `state_dir` (created when first used).
    pub(crate) fn under(state_dir: &Path) -> Trash {
        Trash {
            dir: state_dir.join("trash"),
        }
    }

    /// A fresh path in the trash for something called `name`, to rename
    /// into; `None` when the trash cannot be made.
    pub(crate) fn slot(&self, name: &str) -> Option<PathBuf> {
        std::fs::create_dir_all(&self.dir).ok()?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Some(self.dir.join(format!("{name}.{nanos}")))
    }

    /// Moves `path` into the trash, or deletes it here when it cannot be
    /// moved (another filesystem). A missing `path` is fine.
    pub(crate) fn discard(&self, path: &Path) -> std::io::Result<()> {
        let name = path
            .file_name()
            .map_or_else(|| "entry".into(), |n| n.to_string_lossy().into_owned());
        if let Some(slot) = self.slot(&name) {
            match std::fs::rename(path, &slot) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(_) => {}
            }
        }
        match std::fs::remove_dir_all(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            r => r,
        }
    }

    /// Whether the trash holds at most `max` entries, all levels counted:
    /// emptying it then costs less than starting a process to do it.
    pub(crate) fn is_small(&self, max: usize) -> bool {
        fn fits(dir: &Path, left: &mut usize) -> bool {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return true;
            };
            for e in entries.flatten() {
                if *left == 0 {
                    return false;
                }
                *left -= 1;
                if e.file_type().is_ok_and(|t| t.is_dir()) && !fits(&e.path(), left) {
                    return false;
                }
            }
            true
        }
        let mut left = max;
        fits(&self.dir, &mut left)
    }

    /// Deletes everything in the trash that no live emptier has claimed.
    pub(crate) fn empty(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let me = std::process::id();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let target = match name.rsplit_once(CLAIM) {
                Some((_, pid)) if claimant_alive(pid) => continue,
                // Its emptier died: take it over.
                Some(_) => entry.path(),
                None => {
                    // Claim it first: two emptiers deleting one tree would
                    // each stop at the first entry the other removed.
                    let claimed = self.dir.join(format!("{name}{CLAIM}{me}"));
                    if std::fs::rename(entry.path(), &claimed).is_err() {
                        continue;
                    }
                    claimed
                }
            };
            // A removed container's snapshot becomes a skeleton for the
            // next one where the store takes it (see berth_image::recycle_snapshot).
            let snapshots = self.dir.parent().map(|root| root.join("snapshots"));
            if snapshots.is_some_and(|store| berth_image::recycle_snapshot(&target, &store)) {
                continue;
            }
            let _ = std::fs::remove_dir_all(&target).or_else(|_| std::fs::remove_file(&target));
        }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }
}

/// `berth system empty-trash DIR...`: empties the trash directories
/// `dirs` (what [`crate::detached::Deferred`] hands to a new process when
/// the caller has threads and cannot fork).
pub fn empty_dirs(dirs: &[PathBuf]) {
    for d in dirs {
        Trash { dir: d.clone() }.empty();
    }
}

fn claimant_alive(pid: &str) -> bool {
    let Ok(pid) = pid.parse::<i32>() else {
        return false;
    };
    pid > 0 && std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discard_then_empty_removes_everything_and_takes_over_dead_claims() {
        let root = tempfile::tempdir().unwrap();
        let trash = Trash::under(root.path());
        let victim = root.path().join("snap");
        std::fs::create_dir_all(victim.join("upper/etc")).unwrap();
        std::fs::write(victim.join("upper/etc/hosts"), b"x").unwrap();
        trash.discard(&victim).unwrap();
        assert!(!victim.exists());
        // Missing paths are fine.
        trash.discard(&victim).unwrap();
        // A claim by a dead emptier (pid 0 never is one) and one by a live one.
        let dead = root.path().join("trash").join(format!("old.1{CLAIM}0"));
        std::fs::create_dir_all(dead.join("d")).unwrap();
        let live = root
            .path()
            .join("trash")
            .join(format!("busy.1{CLAIM}{}", std::process::id()));
        std::fs::create_dir_all(&live).unwrap();
        trash.empty();
        let left: Vec<_> = std::fs::read_dir(root.path().join("trash"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(left, vec![live]);
    }

    #[test]
    fn a_trash_is_small_up_to_its_entry_count_at_every_level() {
        let root = tempfile::tempdir().unwrap();
        let trash = Trash::under(root.path());
        // Missing: nothing to empty.
        assert!(trash.is_small(0));
        let victim = root.path().join("ctr");
        std::fs::create_dir_all(victim.join("a/b")).unwrap();
        std::fs::write(victim.join("a/b/f"), b"x").unwrap();
        trash.discard(&victim).unwrap();
        // ctr.<nanos>, a, b, f: four entries.
        assert!(trash.is_small(4));
        assert!(!trash.is_small(3));
    }
}
