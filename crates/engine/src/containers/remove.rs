//! `rm`, the exit-time cleanup, and reconciling the stored state with what
//! the monitor (or its absence) says.
//!
//! Every step here is idempotent: the monitor's exit command, a `stop`
//! that finds the monitor gone, `rm -f` and an `--rm` container's own
//! cleanup may race, and a `berth` killed half-way is finished by the next.

use berth_monitor::files as monfiles;
use serde_json::Value;

use super::lifecycle::{now_rfc3339, pidfd_open, wait_exit};
use super::paths::ContainerPaths;
use super::store::{self, ContainerRecord, Status};
use super::ContainerService;
use crate::error::EngineError;
use crate::trash::Trash;

/// The removing marker's content for `rm -fv`.
const REMOVING_WITH_VOLUMES: &[u8] = b"volumes";

impl ContainerService<'_> {
    /// `rm [-f]`: removes a container; a running one only with `force`
    /// (which kills it first).
    pub fn remove(&self, word: &str, force: bool) -> Result<ContainerRecord, EngineError> {
        self.remove_with_volumes(word, force, false)
    }

    /// `rm [-f] [-v]`: with `volumes`, the container's anonymous volumes
    /// that no other container uses go too (named volumes never do).
    pub fn remove_with_volumes(
        &self,
        word: &str,
        force: bool,
        volumes: bool,
    ) -> Result<ContainerRecord, EngineError> {
        let rec = self.get(word)?;
        if rec.status.is_active() {
            if !force {
                let what = if rec.status == Status::Paused {
                    "container is paused and must be unpaused first"
                } else {
                    "container is running: stop the container before removing or force remove"
                };
                return Err(EngineError::Conflict(format!(
                    "cannot remove container \"/{}\": {what}",
                    rec.name
                )));
            }
            // Its exit cleanup then knows that the container goes next: it
            // removes it (with the anonymous volumes when the marker says
            // so), at the same time as the monitor's runtime delete.
            let marker = self.paths(&rec.id).run_dir.join(super::REMOVING_MARKER);
            let content: &[u8] = if volumes { REMOVING_WITH_VOLUMES } else { b"" };
            std::fs::write(&marker, content)
                .map_err(|e| EngineError::io(format!("writing {}", marker.display()), e))?;
            self.halt(&rec, libc::SIGKILL, 0)?;
        } else if rec.run.pid > 0 {
            // An unsupervised process of a container the monitor lost.
            if let Some(fd) = pidfd_open(rec.run.pid) {
                if process_in_container(rec.run.pid, &rec.id) {
                    // SAFETY: plain kill(2) of a pid we just checked.
                    unsafe { libc::kill(rec.run.pid, libc::SIGKILL) };
                    wait_exit(&fd, std::time::Duration::from_secs(10));
                }
            }
        }
        let rec = store::get(self.engine.db().conn(), &rec.id)?.unwrap_or(rec);
        self.remove_record_with(&rec, volumes, RuntimeState::Check)?;
        Ok(rec)
    }

    /// Removes everything of a stopped container: runtime state, mounts,
    /// snapshot, files, the row. Missing pieces are fine.
    pub(crate) fn remove_record(&self, rec: &ContainerRecord) -> Result<(), EngineError> {
        self.remove_record_with(rec, false, RuntimeState::Check)
    }

    /// [`Self::remove_record`], and with `volumes` the anonymous volumes.
    pub(crate) fn remove_record_with(
        &self,
        rec: &ContainerRecord,
        volumes: bool,
        runtime: RuntimeState,
    ) -> Result<(), EngineError> {
        let paths = self.paths(&rec.id);
        if store::get(self.engine.db().conn(), &rec.id)?.is_none() {
            return Ok(());
        }
        if rec.status != Status::Removing {
            self.save_state(&rec.id, Status::Removing, &rec.run)?;
        }
        if runtime == RuntimeState::Check {
            self.delete_runtime_state(rec);
        }
        self.engine.networks().detach_container(&rec.id);
        self.remove_files(rec, &paths)?;
        let mounts = self.engine.volumes().mounts_of(&rec.id)?;
        {
            let mut db = self.engine.db();
            let tx = db.write()?;
            store::delete(&tx, &rec.id)?;
            super::events::insert_event(&tx, rec, "destroy", &[])?;
            tx.commit()
                .map_err(|e| EngineError::db("committing a container removal", e))?;
        }
        self.engine.volumes().release_removed(&mounts, volumes);
        Ok(())
    }

    /// `<runtime> delete --force` when the runtime still has state for it.
    /// Not while the monitor runs its own `delete` (RuntimeState::DeletedElsewhere):
    /// the state is still there then, and a second `delete` would race it.
    fn delete_runtime_state(&self, rec: &ContainerRecord) {
        let Ok((_, root)) = super::launch::runtime_for(self, rec) else {
            return;
        };
        if root.join(&rec.id).exists() {
            if let Err(e) = self.runtime_command(rec, &["delete", "--force", &rec.id]) {
                tracing::warn!("container {}: {e}", rec.id);
            }
        }
    }

    pub(crate) fn remove_files(
        &self,
        rec: &ContainerRecord,
        paths: &ContainerPaths,
    ) -> Result<(), EngineError> {
        self.unmount_rootfs_discarding(paths);
        // Renamed into the trash here, deleted by a background process
        // (crate::trash): gone for every reader either way.
        let cfg = self.engine.config();
        let (trash, run_trash) = (Trash::under(&cfg.root), Trash::under(&cfg.runroot));
        let removed = match trash.slot(&rec.id) {
            Some(slot) => self.engine.snapshots().discard(&rec.id, &slot),
            None => self.engine.snapshots().remove(&rec.id),
        };
        match removed {
            Ok(()) => {}
            Err(e) if e.kind() == berth_image::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        for (dir, trash) in [(&paths.dir, &trash), (&paths.run_dir, &run_trash)] {
            trash
                .discard(dir)
                .map_err(|e| EngineError::io(format!("removing {}", dir.display()), e))?;
        }
        let _ = std::fs::remove_file(paths.lock_file());
        let mut deferred = self.engine.deferred();
        deferred.empty(trash);
        deferred.empty(run_trash);
        Ok(())
    }

    pub(crate) fn delete_row(&self, id: &str) -> Result<(), EngineError> {
        let mut db = self.engine.db();
        let tx = db.write()?;
        store::delete(&tx, id)?;
        tx.commit()
            .map_err(|e| EngineError::db("committing a container removal", e))
    }

    /// The monitor's exit command (`berth container cleanup ID`): records
    /// how the container ended, unmounts its rootfs, honours `--rm`.
    /// `exit_code` is what the monitor passed; `exit.json` says more.
    /// `runtime_deleted_by_monitor`: the monitor runs the runtime's `delete`
    /// itself, at the same time as this.
    pub fn cleanup(
        &self,
        id: &str,
        exit_code: Option<i32>,
        runtime_deleted_by_monitor: bool,
    ) -> Result<(), EngineError> {
        let Some(rec) = store::get(self.engine.db().conn(), id)? else {
            return Ok(());
        };
        let paths = self.paths(&rec.id);
        let exit = monfiles::read_exit(&paths.run_dir).ok().flatten();
        let mut run = rec.run.clone();
        match &exit {
            Some(x) => {
                run.exit_code = x.exit_code;
                run.oom_killed = x.oom_killed;
                run.finished_at = x.finished_at.clone();
                run.restart_count = i64::from(x.restart_count);
                if let Some(s) = &x.started_at {
                    run.started_at = s.clone();
                }
                if let Some(err) = &x.error {
                    run.error = err.clone();
                }
            }
            None => {
                // The monitor died without a word (killed): the process is
                // gone too, or we would not be here.
                run.exit_code = exit_code.unwrap_or(if rec.status.is_active() {
                    137
                } else {
                    run.exit_code
                });
                if run.finished_at.is_empty() || rec.status.is_active() {
                    run.finished_at = now_rfc3339();
                }
            }
        }
        run.pid = 0;
        run.monitor_pid = 0;
        let was_active = rec.status.is_active();
        let auto_remove =
            rec.host_config.auto_remove && !paths.run_dir.join(super::RESTARTING_MARKER).exists();
        // `rm -f` stopped it (see `remove_with_volumes`).
        let removing = std::fs::read(paths.run_dir.join(super::REMOVING_MARKER)).ok();
        let removed_next = auto_remove || removing.is_some();
        // One that goes next is recorded as being removed at once, not as
        // exited first (a transaction less): `ps -a` says so should this
        // process die before the end, and `rm -f` finishes it.
        let rec = ContainerRecord {
            status: if removed_next {
                Status::Removing
            } else {
                Status::Exited
            },
            run,
            ..rec
        };
        if was_active {
            let code = rec.run.exit_code.to_string();
            self.save_state_with_event(&rec, "die", &[("exitCode", code)])?;
        } else {
            self.save_state(&rec.id, rec.status, &rec.run)?;
        }
        if !runtime_deleted_by_monitor {
            self.delete_runtime_state(&rec);
        }
        self.engine.networks().detach_container(&rec.id);
        self.engine.volumes().release_stopped(&rec);
        if !removed_next {
            self.unmount_rootfs(&paths);
            let _ = std::fs::remove_file(paths.spec());
        } else {
            self.unmount_rootfs_discarding(&paths);
            // config.json goes to the trash with the run dir: unlinked
            // here, its block would be freed (and on ext4 mounted
            // `discard`, discarded) before the unlink returns.
            // `--rm` takes the container's anonymous volumes along, as
            // Docker does; `rm -f` when it was `rm -fv`.
            let volumes = auto_remove || removing.as_deref() == Some(REMOVING_WITH_VOLUMES);
            let runtime = if runtime_deleted_by_monitor {
                RuntimeState::DeletedElsewhere
            } else {
                RuntimeState::Check
            };
            self.remove_record_with(&rec, volumes, runtime)?;
        }
        Ok(())
    }

    /// The exit command's work done by an attached `run --rm` that the
    /// monitor handed it (berth_monitor's take-cleanup): [`Self::cleanup`]
    /// while the monitor deletes the runtime's state, then waits for the
    /// monitor to finish that, as waiting for its exit command did.
    pub fn cleanup_handed_over(&self, id: &str, exit_code: i32) -> Result<(), EngineError> {
        let paths = self.paths(id);
        let monitor = super::launch::read_pid(&paths.run_dir.join(monfiles::MONITOR_PID));
        let monitor = (monitor > 0).then(|| pidfd_open(monitor)).flatten();
        self.cleanup(id, Some(exit_code), true)?;
        if let Some(fd) = monitor {
            wait_exit(&fd, super::lifecycle::MONITOR_GRACE);
        }
        Ok(())
    }

    /// Brings a record up to date with its monitor: restarts it counted, a
    /// monitor that died, a start whose `berth` was killed before it could
    /// record it.
    pub(crate) fn refresh(&self, rec: ContainerRecord) -> Result<ContainerRecord, EngineError> {
        if !matches!(
            rec.status,
            Status::Created | Status::Running | Status::Paused | Status::Restarting
        ) {
            return Ok(rec);
        }
        let paths = self.paths(&rec.id);
        let state = match monfiles::read_state(&paths.run_dir) {
            Ok(Some(s)) => s,
            Ok(None) | Err(_) if rec.status == Status::Created => return Ok(rec),
            _ => monfiles::MonitorState {
                status: monfiles::Status::Exited,
                monitor_pid: rec.run.monitor_pid,
                pid: rec.run.pid,
                started_at: None,
                finished_at: None,
                exit_code: None,
                oom_killed: false,
                restart_count: 0,
                error: None,
            },
        };
        if monfiles::monitor_alive(&paths.run_dir) {
            let mut rec = rec;
            let status = match (state.status, rec.status) {
                (_, Status::Paused) => Status::Paused,
                (monfiles::Status::Restarting, _) => Status::Restarting,
                (monfiles::Status::Running, _) => Status::Running,
                // Created (starting) or Exited (its exit command is running).
                (_, Status::Created) => {
                    if state.status == monfiles::Status::Created {
                        return Ok(rec);
                    }
                    Status::Running
                }
                (_, s) => s,
            };
            let was = rec.status;
            rec.status = status;
            if state.pid > 0 {
                rec.run.pid = state.pid;
            }
            rec.run.monitor_pid = state.monitor_pid;
            rec.run.restart_count = i64::from(state.restart_count);
            if let Some(s) = state.started_at {
                rec.run.started_at = s;
            }
            if let Some(code) = state.exit_code {
                if status == Status::Restarting {
                    rec.run.exit_code = code;
                }
            }
            if was == Status::Created && status != Status::Created {
                // A start whose `berth` died before recording it.
                self.save_state(&rec.id, status, &rec.run)?;
            }
            return Ok(rec);
        }
        if rec.status == Status::Created && state.status == monfiles::Status::Created {
            return Ok(rec);
        }
        // No monitor. A container process that still runs keeps the
        // container running (unsupervised); otherwise finish its cleanup.
        let pid = if state.pid > 0 {
            state.pid
        } else {
            rec.run.pid
        };
        if pid > 0 && process_in_container(pid, &rec.id) {
            return Ok(rec);
        }
        self.cleanup(&rec.id, None, false)?;
        match store::get(self.engine.db().conn(), &rec.id)? {
            Some(r) => Ok(r),
            None => Err(EngineError::NoSuchContainer(rec.id)),
        }
    }

    /// Docker's `State.Health`, when the container has a health check.
    pub(crate) fn health_json(&self, rec: &ContainerRecord) -> Option<Value> {
        let h = monfiles::read_health(&self.paths(&rec.id).run_dir)
            .ok()
            .flatten();
        match h {
            Some(h) => serde_json::to_value(h).ok(),
            None if rec.status.is_active()
                && rec
                    .config
                    .healthcheck
                    .as_ref()
                    .is_some_and(|h| !h.test.is_empty() && h.test[0] != "NONE") =>
            {
                Some(serde_json::json!({"Status": "starting", "FailingStreak": 0, "Log": []}))
            }
            None => None,
        }
    }

    /// `starting`, `healthy`, `unhealthy` or `none`.
    pub fn health_status(&self, rec: &ContainerRecord) -> String {
        self.health_json(rec)
            .and_then(|h| h.get("Status").and_then(Value::as_str).map(String::from))
            .unwrap_or_else(|| "none".into())
    }
}

/// Whether `pid` is alive (not a zombie) and in a cgroup named after `id`,
/// so that a recycled pid is never taken for the container.
fn process_in_container(pid: i32, id: &str) -> bool {
    let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false);
    alive && std::fs::read_to_string(format!("/proc/{pid}/cgroup")).is_ok_and(|cg| cg.contains(id))
}

/// Whether removing a record looks for the runtime's state of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RuntimeState {
    /// Delete it if it is there.
    Check,
    /// The container's monitor deletes it, at the same time.
    DeletedElsewhere,
}
