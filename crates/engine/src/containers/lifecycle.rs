//! start, stop, kill, wait, restart, pause, unpause, rename.
//!
//! A started container is supervised by its monitor; these operations signal
//! the container's process directly (through a pidfd, so a recycled pid is
//! never signalled) and wait for the monitor, whose exit command
//! (`berth container cleanup`) records the exit in the database.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use berth_monitor::files as monfiles;

use super::paths::ContainerPaths;
use super::spec;
use super::store::{self, ContainerRecord, Status};
use super::ContainerService;
use crate::error::EngineError;
use crate::lock::FileLock;

/// A start in progress (see [`ContainerService::start_begin`]); holds the
/// container's lock until finished.
pub struct StartTicket {
    rec: ContainerRecord,
    paths: ContainerPaths,
    _lock: FileLock,
    spawned: Option<berth_monitor::client::SpawnedMonitor>,
}

impl StartTicket {
    /// The monitor's state dir (its attach socket is there).
    pub fn run_dir(&self) -> &std::path::Path {
        &self.paths.run_dir
    }

    pub fn record(&self) -> &ContainerRecord {
        &self.rec
    }

    /// Whether the container was already running (nothing was launched).
    pub fn already_running(&self) -> bool {
        self.spawned.is_none()
    }
}

/// How long `stop`/`rm -f` wait for the monitor to finish its cleanup after
/// the container's process is gone.
pub(super) const MONITOR_GRACE: Duration = Duration::from_secs(30);

impl ContainerService<'_> {
    fn lock(&self, paths: &ContainerPaths) -> Result<FileLock, EngineError> {
        if let Some(parent) = paths.lock_file().parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| EngineError::io(format!("creating {}", parent.display()), e))?;
        }
        FileLock::exclusive(&paths.lock_file())
    }

    /// `start`: runs a created or exited container; a running one is left alone.
    pub fn start(&self, word: &str) -> Result<ContainerRecord, EngineError> {
        let ticket = self.start_begin(word, false)?;
        self.start_finish(ticket)
    }

    /// First half of a start: checks the state, mounts the rootfs, writes
    /// the bundle and launches the monitor. With `wait_attach` the monitor
    /// starts the container only when an attach client connects (`run`
    /// without `-d`, `start -a`): connect to [`StartTicket::run_dir`], then
    /// call [`Self::start_finish`].
    pub fn start_begin(&self, word: &str, wait_attach: bool) -> Result<StartTicket, EngineError> {
        let found = store::find(self.engine.db().conn(), word)?;
        let paths = self.paths(&found.id);
        let lock = self.lock(&paths)?;
        let rec = self.refresh(found)?;
        match rec.status {
            Status::Running | Status::Restarting => {
                return Ok(StartTicket {
                    rec,
                    paths,
                    _lock: lock,
                    spawned: None,
                })
            }
            Status::Paused => {
                return Err(EngineError::Conflict(format!(
                    "cannot start a paused container {}, try unpause instead",
                    rec.name
                )))
            }
            Status::Removing | Status::Dead => {
                return Err(EngineError::Conflict(format!(
                    "container {} is marked for removal and cannot be started",
                    rec.name
                )))
            }
            Status::Created | Status::Exited => {}
        }
        let spawned = self
            .mount_rootfs(&rec, &paths)
            .and_then(|()| self.engine.networks().attach_container(&rec))
            .and_then(|netns| self.write_bundle(&rec, &paths, netns))
            .and_then(|()| self.launch(&rec, &paths, wait_attach));
        match spawned {
            Ok(s) => Ok(StartTicket {
                rec,
                paths,
                _lock: lock,
                spawned: Some(s),
            }),
            Err(e) => {
                self.record_start_failure(&rec, &paths, &e);
                Err(e)
            }
        }
    }

    /// Second half of a start: waits for the monitor's report and records it.
    pub fn start_finish(&self, ticket: StartTicket) -> Result<ContainerRecord, EngineError> {
        let StartTicket {
            rec,
            paths,
            _lock,
            spawned,
        } = ticket;
        let Some(spawned) = spawned else {
            return Ok(rec);
        };
        match super::launch::monitor_ready(&rec, &paths, spawned) {
            Ok(launched) => {
                let mut run = rec.run.clone();
                run.pid = launched.pid;
                run.monitor_pid = launched.monitor_pid;
                run.error.clear();
                run.exit_code = 0;
                run.oom_killed = false;
                run.manually_stopped = false;
                run.restart_count = 0;
                run.finished_at.clear();
                run.started_at = monfiles::read_state(&paths.run_dir)
                    .ok()
                    .flatten()
                    .and_then(|s| s.started_at)
                    .unwrap_or_else(now_rfc3339);
                let rec = ContainerRecord {
                    status: Status::Running,
                    run,
                    ..rec
                };
                self.save_state_with_event(&rec, "start", &[])?;
                Ok(rec)
            }
            Err(e) => {
                self.record_start_failure(&rec, &paths, &e);
                Err(e)
            }
        }
    }

    fn record_start_failure(&self, rec: &ContainerRecord, paths: &ContainerPaths, e: &EngineError) {
        self.engine.volumes().release_stopped(rec);
        self.engine.networks().detach_container(&rec.id);
        self.unmount_rootfs(paths);
        let mut run = rec.run.clone();
        run.error = e.to_string();
        run.pid = 0;
        run.monitor_pid = 0;
        if let EngineError::StartFailed { exit_code, .. } = e {
            run.exit_code = *exit_code;
        }
        // A container that never ran stays `created`, as in Docker.
        let status = if rec.run.started_at.is_empty() {
            Status::Created
        } else {
            Status::Exited
        };
        if let Err(save) = self.save_state(&rec.id, status, &run) {
            tracing::warn!("container {}: recording the start failure: {save}", rec.id);
        }
    }

    /// Mounts the container's overlay (again) at its rootfs path.
    pub(crate) fn mount_rootfs(
        &self,
        rec: &ContainerRecord,
        paths: &ContainerPaths,
    ) -> Result<(), EngineError> {
        self.unmount_rootfs(paths);
        // A `--rm` container's writable layer is thrown away at exit: it
        // need not survive a host crash, so it skips overlay's sync (which
        // the unmount would otherwise wait for), as podman does for --rm.
        let volatile = rec.host_config.auto_remove;
        if volatile {
            // A volatile overlay leaves `work/incompat/volatile` behind and
            // refuses to mount again while it exists (it cannot tell a crash
            // from a clean stop). A `--rm` container is only started again by
            // `restart`, after a clean stop in this boot (after a host crash
            // its cleanup removes it), so its upper dir is intact.
            let stale = self
                .engine
                .snapshots()
                .mounts(&rec.id)?
                .work
                .join("work/incompat");
            if let Err(e) = std::fs::remove_dir_all(&stale) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    return Err(EngineError::io(format!("removing {}", stale.display()), e));
                }
            }
        }
        self.engine
            .snapshots()
            .mount_with(&rec.id, &paths.rootfs, volatile)?;
        Ok(())
    }

    pub(crate) fn unmount_rootfs(&self, paths: &ContainerPaths) {
        super::unmount::detach(&paths.rootfs);
    }

    /// [`Self::unmount_rootfs`] for a container whose writable layer is
    /// deleted next: without waiting for overlayfs's sync.
    pub(crate) fn unmount_rootfs_discarding(&self, paths: &ContainerPaths) {
        if let Some(last_reference) = super::unmount::detach_discarding(&paths.rootfs) {
            self.engine.deferred().release(last_reference);
        }
    }

    fn write_bundle(
        &self,
        rec: &ContainerRecord,
        paths: &ContainerPaths,
        netns: Option<std::path::PathBuf>,
    ) -> Result<(), EngineError> {
        // Like Docker, /etc/hosts and resolv.conf are made at each start
        // (the host's resolvers may have changed since the create).
        let net = self.engine.networks().etc_inputs(rec)?;
        let files = super::create::etc_files_for(rec, &net)?;
        // The run dir is gone after a reboot.
        std::fs::create_dir_all(&paths.run_dir)
            .map_err(|e| EngineError::io(format!("creating {}", paths.run_dir.display()), e))?;
        super::defaults::write_etc_files(&paths.run_dir, &files)
            .map_err(|e| EngineError::InvalidArgument(e.to_string()))?;
        let caps = spec::effective_capabilities(&rec.host_config)?;
        let seccomp = self.seccomp_for(rec, &caps)?;
        let mut joins = self.namespace_joins(rec)?;
        if netns.is_some() {
            joins.net = netns;
        }
        // `--link` adds the linked containers' variables (Docker's legacy links).
        let link_env = self.engine.networks().link_env(rec)?;
        let mut config = rec.config.clone();
        config.env.extend(link_env);
        let bins = self.binaries()?;
        let init = rec.host_config.init.unwrap_or(false);
        // `--network container:X` shares X's names as well as its network.
        let etc_paths = match rec.host_config.network_mode.strip_prefix("container:") {
            Some(other) => self.paths(&self.get(other)?.id),
            None => paths.clone(),
        };
        let hostname = etc_paths.hostname();
        let hosts = etc_paths.hosts();
        let resolv = etc_paths.resolv_conf();
        // Volumes ready (mounted, filled from the image) and every mount
        // as a bind of a host directory.
        let host = self.engine.volumes().prepare_start(rec, &paths.rootfs)?;
        let input = spec::SpecInput {
            id: &rec.id,
            config: &config,
            host: &host,
            rootfs: &paths.rootfs,
            etc_files: spec::EtcFiles {
                hostname: Some(&hostname),
                hosts: Some(&hosts),
                resolv_conf: Some(&resolv),
            },
            namespace_joins: joins,
            init_binary: init.then_some(bins.init.as_path()),
            seccomp,
            cgroup_v2: host_facts().cgroup_v2,
        };
        let spec = spec::build_spec(&input)?;
        let json = serde_json::to_vec(&spec)
            .map_err(|e| EngineError::Corrupt(format!("encoding the OCI spec: {e}")))?;
        let file = paths.spec();
        berth_monitor::files::write_atomic(&file, &json)
            .map_err(|e| EngineError::io(format!("writing {}", file.display()), e))
    }

    /// The seccomp filter, chosen as Docker chooses it (see
    /// [`super::defaults::container_seccomp`]).
    fn seccomp_for(
        &self,
        rec: &ContainerRecord,
        caps: &[String],
    ) -> Result<Option<oci_spec::runtime::LinuxSeccomp>, EngineError> {
        use super::defaults::seccomp;
        let bad = |e: seccomp::SeccompProfileError| {
            EngineError::InvalidArgument(format!("--security-opt seccomp: {e}"))
        };
        let opts = rec.host_config.security_opt.clone().unwrap_or_default();
        let choice = seccomp::SeccompChoice::from_security_opt(&opts).map_err(bad)?;
        seccomp::container_seccomp(
            &choice,
            rec.host_config.privileged,
            caps,
            seccomp::host_arch(),
            host_facts().kernel,
        )
        .map_err(bad)
    }

    /// Resolves `container:X` modes to the namespaces of X's process.
    fn namespace_joins(&self, rec: &ContainerRecord) -> Result<spec::NamespaceJoins, EngineError> {
        let mut joins = spec::NamespaceJoins::default();
        let h = &rec.host_config;
        for (mode, slot, ns) in [
            (&h.network_mode, &mut joins.net, "net"),
            (&h.pid_mode, &mut joins.pid, "pid"),
            (&h.ipc_mode, &mut joins.ipc, "ipc"),
        ] {
            if let Some(other) = mode.strip_prefix("container:") {
                let target = self.get(other)?;
                if target.status != Status::Running || target.run.pid <= 0 {
                    return Err(EngineError::Conflict(format!(
                        "cannot join container {other}: container {} is not running",
                        target.id
                    )));
                }
                if target.id == rec.id {
                    return Err(EngineError::InvalidArgument(
                        "a container cannot join its own namespaces".into(),
                    ));
                }
                *slot = Some(std::path::PathBuf::from(format!(
                    "/proc/{}/ns/{ns}",
                    target.run.pid
                )));
            }
        }
        Ok(joins)
    }

    pub(crate) fn save_state(
        &self,
        id: &str,
        status: Status,
        run: &store::RunState,
    ) -> Result<(), EngineError> {
        let mut db = self.engine.db();
        let tx = db.write()?;
        store::set_state(&tx, id, status, run)?;
        tx.commit()
            .map_err(|e| EngineError::db("committing a container state", e))
    }

    /// Stores `rec`'s status and run state and records the event `action`
    /// about it, in one transaction.
    pub(crate) fn save_state_with_event(
        &self,
        rec: &ContainerRecord,
        action: &str,
        extra: &[(&str, String)],
    ) -> Result<(), EngineError> {
        let mut db = self.engine.db();
        let tx = db.write()?;
        store::set_state(&tx, &rec.id, rec.status, &rec.run)?;
        super::events::insert_event(&tx, rec, action, extra)?;
        tx.commit()
            .map_err(|e| EngineError::db("committing a container state", e))
    }

    /// `stop`: the stop signal, then SIGKILL after `timeout` seconds
    /// (`None`: the container's `--stop-timeout`, else 10). Stopping a
    /// stopped container is not an error.
    pub fn stop(&self, word: &str, timeout: Option<i64>) -> Result<ContainerRecord, EngineError> {
        self.stop_with(word, None, timeout)
    }

    /// `stop -s SIGNAL`: as [`Self::stop`] with another first signal.
    pub fn stop_with(
        &self,
        word: &str,
        signal: Option<&str>,
        timeout: Option<i64>,
    ) -> Result<ContainerRecord, EngineError> {
        let rec = self.get(word)?;
        let signal = match signal {
            Some(s) => parse_signal(s)?,
            None if rec.config.stop_signal.is_empty() => libc::SIGTERM,
            None => parse_signal(&rec.config.stop_signal)?,
        };
        if !rec.status.is_active() {
            return Ok(rec);
        }
        let timeout = timeout
            .or(rec.config.stop_timeout)
            .unwrap_or(super::DEFAULT_STOP_TIMEOUT);
        self.halt(&rec, signal, timeout)?;
        self.event(&rec, "stop");
        match self.get(&rec.id) {
            // `--rm`: the exit's cleanup already removed it; the stop itself
            // succeeded, as Docker's does.
            Err(EngineError::NoSuchContainer(_)) if rec.host_config.auto_remove => Ok(rec),
            other => other,
        }
    }

    /// Sends `signal`, waits `timeout` s, then SIGKILL; then waits for the
    /// monitor to record the exit.
    pub(crate) fn halt(
        &self,
        rec: &ContainerRecord,
        signal: i32,
        timeout: i64,
    ) -> Result<(), EngineError> {
        let paths = self.paths(&rec.id);
        self.mark_stopping(rec, &paths)?;
        // Asked before the signal, so the monitor sees it at the exit: the
        // exit command's work is then done here (one process less).
        let claim = berth_monitor::client::CleanupClaim::connect(&paths.run_dir)
            .ok()
            .flatten();
        let pid = rec.run.pid;
        if pid > 0 {
            if let Some(pidfd) = pidfd_open(pid) {
                send(&pidfd, signal);
                if rec.status == Status::Paused {
                    self.runtime_command(rec, &["resume", &rec.id]).ok();
                }
                let wait = Duration::from_secs(u64::try_from(timeout.max(0)).unwrap_or(0));
                if !wait_exit(&pidfd, wait) {
                    send(&pidfd, libc::SIGKILL);
                    if !wait_exit(&pidfd, Duration::from_secs(10)) {
                        return Err(EngineError::Conflict(format!(
                            "container {} did not exit 10 s after SIGKILL (a process stuck in the kernel?)",
                            rec.id
                        )));
                    }
                }
            }
        }
        match claim.and_then(|c| c.wait(MONITOR_GRACE)) {
            Some(code) => self.cleanup_handed_over(&rec.id, code)?,
            None => self.wait_monitor(rec, &paths),
        }
        Ok(())
    }

    /// Tells the monitor not to restart the container, and remembers that a
    /// user stopped it (`unless-stopped`).
    fn mark_stopping(
        &self,
        rec: &ContainerRecord,
        paths: &ContainerPaths,
    ) -> Result<(), EngineError> {
        let marker = paths.run_dir.join(monfiles::STOPPING);
        std::fs::write(&marker, b"")
            .map_err(|e| EngineError::io(format!("writing {}", marker.display()), e))?;
        let mut run = rec.run.clone();
        run.manually_stopped = true;
        self.save_state(&rec.id, rec.status, &run)
    }

    /// Waits for the monitor to finish (its exit command has then recorded
    /// the exit); a monitor that died without doing so is replaced by an
    /// inline cleanup.
    fn wait_monitor(&self, rec: &ContainerRecord, paths: &ContainerPaths) {
        let monitor = if rec.run.monitor_pid > 0 {
            rec.run.monitor_pid
        } else {
            super::launch::read_pid(&paths.run_dir.join(monfiles::MONITOR_PID))
        };
        if monitor > 0 {
            if let Some(fd) = pidfd_open(monitor) {
                if wait_exit(&fd, MONITOR_GRACE) {
                    // Its exit command ran; if it was killed, fall through.
                }
            }
        }
        // The lookup's own statement: an `if let` scrutinee would keep the
        // db guard alive through `cleanup`, which locks it again (deadlock).
        let current = store::get(self.engine.db().conn(), &rec.id);
        if let Ok(Some(now)) = current {
            if now.status.is_active() {
                if let Err(e) = self.cleanup(&rec.id, None, false) {
                    tracing::warn!("container {}: cleanup after its monitor: {e}", rec.id);
                }
            }
        }
    }

    /// `kill`: sends a signal (default SIGKILL) to the container's init.
    pub fn kill(&self, word: &str, signal: Option<&str>) -> Result<ContainerRecord, EngineError> {
        let rec = self.get(word)?;
        let sig = match signal {
            Some(s) => parse_signal(s)?,
            None => libc::SIGKILL,
        };
        if !matches!(rec.status, Status::Running | Status::Paused) || rec.run.pid <= 0 {
            return Err(EngineError::Conflict(format!(
                "cannot kill container: {word}: container {} is not running",
                rec.id
            )));
        }
        let paths = self.paths(&rec.id);
        let stop_signal = if rec.config.stop_signal.is_empty() {
            libc::SIGTERM
        } else {
            parse_signal(&rec.config.stop_signal).unwrap_or(libc::SIGTERM)
        };
        // Like Docker: killing with SIGKILL or the stop signal is a manual
        // stop (no restart); other signals (SIGHUP to reload) are not.
        if sig == libc::SIGKILL || sig == stop_signal {
            self.mark_stopping(&rec, &paths)?;
        }
        let pidfd = pidfd_open(rec.run.pid)
            .ok_or_else(|| EngineError::Conflict(format!("container {} is not running", rec.id)))?;
        send(&pidfd, sig);
        if rec.status == Status::Paused && sig == libc::SIGKILL {
            self.runtime_command(&rec, &["resume", &rec.id]).ok();
        }
        self.event_with(&rec, "kill", &[("signal", sig.to_string())]);
        Ok(rec)
    }

    /// `wait`: blocks until the container stops; returns its exit code.
    pub fn wait(&self, word: &str) -> Result<i32, EngineError> {
        let rec = self.get(word)?;
        if !rec.status.is_active() {
            return Ok(rec.run.exit_code);
        }
        let paths = self.paths(&rec.id);
        match berth_monitor::client::wait(&paths.run_dir) {
            Ok(code) => {
                // The monitor's exit command has run; the record is final.
                Ok(code)
            }
            Err(e) => {
                tracing::debug!("waiting through the monitor of {}: {e}", rec.id);
                self.wait_monitor(&rec, &paths);
                Ok(self.get(&rec.id).map(|r| r.run.exit_code).unwrap_or(-1))
            }
        }
    }

    /// `restart`: stop (if running), then start.
    pub fn restart(
        &self,
        word: &str,
        signal: Option<&str>,
        timeout: Option<i64>,
    ) -> Result<ContainerRecord, EngineError> {
        let rec = self.get(word)?;
        // A `--rm` container survives a restart (Docker's behaviour): its
        // exit cleanup sees this marker and keeps it.
        let marker = self.paths(&rec.id).run_dir.join(super::RESTARTING_MARKER);
        if rec.host_config.auto_remove && rec.status.is_active() {
            std::fs::write(&marker, b"")
                .map_err(|e| EngineError::io(format!("writing {}", marker.display()), e))?;
        }
        let restarted = self
            .stop_with(&rec.id, signal, timeout)
            .and_then(|rec| self.start(&rec.id));
        let _ = std::fs::remove_file(&marker);
        let rec = restarted?;
        self.event(&rec, "restart");
        Ok(rec)
    }

    /// `pause`: freezes every process of the container.
    pub fn pause(&self, word: &str) -> Result<ContainerRecord, EngineError> {
        let rec = self.get(word)?;
        match rec.status {
            Status::Running => {}
            Status::Paused => {
                return Err(EngineError::Conflict(format!(
                    "container {} is already paused",
                    rec.id
                )))
            }
            _ => {
                return Err(EngineError::Conflict(format!(
                    "container {} is not running",
                    rec.id
                )))
            }
        }
        self.runtime_command(&rec, &["pause", &rec.id])?;
        self.save_state(&rec.id, Status::Paused, &rec.run)?;
        self.event(&rec, "pause");
        self.get(&rec.id)
    }

    /// `unpause`: thaws a paused container.
    pub fn unpause(&self, word: &str) -> Result<ContainerRecord, EngineError> {
        let rec = self.get(word)?;
        if rec.status != Status::Paused {
            return Err(EngineError::Conflict(format!(
                "container {} is not paused",
                rec.id
            )));
        }
        self.runtime_command(&rec, &["resume", &rec.id])?;
        self.save_state(&rec.id, Status::Running, &rec.run)?;
        self.event(&rec, "unpause");
        self.get(&rec.id)
    }

    /// `rename`.
    pub fn rename(&self, word: &str, new_name: &str) -> Result<(), EngineError> {
        let rec = self.get(word)?;
        let new_name = new_name.trim_start_matches('/');
        super::defaults::names::validate_name(new_name)
            .map_err(|e| EngineError::InvalidArgument(e.to_string()))?;
        if new_name == rec.name {
            return Err(EngineError::InvalidArgument(
                "Renaming a container with the same name as its current name".into(),
            ));
        }
        {
            let mut db = self.engine.db();
            let tx = db.write()?;
            store::rename(&tx, &rec.id, new_name)?;
            tx.commit()
                .map_err(|e| EngineError::db("committing a rename", e))?;
        }
        self.event_with(&rec, "rename", &[("oldName", format!("/{}", rec.name))]);
        Ok(())
    }

    /// Host pids of every process in the container (`runtime ps`).
    pub fn pids(&self, rec: &ContainerRecord) -> Result<Vec<i32>, EngineError> {
        let out = self.runtime_command(rec, &["ps", "--format", "json", &rec.id])?;
        serde_json::from_slice::<Option<Vec<i32>>>(&out.stdout)
            .map(Option::unwrap_or_default)
            .map_err(|e| EngineError::Corrupt(format!("runtime ps of {}: {e}", rec.id)))
    }

    /// `container prune`: removes stopped containers (`until=`, `label=` filters).
    pub fn prune(&self, filters: &[String]) -> Result<PruneReport, EngineError> {
        let mut until = None;
        let mut labels = Vec::new();
        for f in filters {
            match f.split_once('=') {
                Some(("until", v)) => until = Some(parse_until(v)?),
                Some(("label", v)) => labels.push((v.to_string(), true)),
                Some(("label!", v)) => labels.push((v.to_string(), false)),
                _ => {
                    return Err(EngineError::InvalidArgument(format!(
                        "invalid filter '{f}': container prune takes until= and label="
                    )))
                }
            }
        }
        let mut report = PruneReport::default();
        for rec in self.list(true, &super::ContainerFilters::default())? {
            if !matches!(rec.status, Status::Exited | Status::Created | Status::Dead) {
                continue;
            }
            if until.is_some_and(|t| rec.created >= t) {
                continue;
            }
            let label_ok = labels.iter().all(|(l, want)| {
                let has = match l.split_once('=') {
                    Some((k, v)) => rec.config.labels.get(k).is_some_and(|x| x == v),
                    None => rec.config.labels.contains_key(l),
                };
                has == *want
            });
            if !label_ok {
                continue;
            }
            let size = dir_size(&self.paths(&rec.id).rootfs.with_file_name("upper"));
            self.remove_record(&rec)?;
            report.removed.push(rec.id.clone());
            report.reclaimed += size;
        }
        Ok(report)
    }

    /// Runs `<runtime> --root R ARGS…` for this container; its stderr
    /// becomes the error.
    pub(crate) fn runtime_command(
        &self,
        rec: &ContainerRecord,
        args: &[&str],
    ) -> Result<std::process::Output, EngineError> {
        let (runtime, root) = super::launch::runtime_for(self, rec)?;
        let out = std::process::Command::new(&runtime)
            .arg("--root")
            .arg(&root)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| EngineError::io(format!("running {}", runtime.display()), e))?;
        if !out.status.success() {
            let msg = String::from_utf8_lossy(&out.stderr);
            return Err(EngineError::Conflict(format!(
                "{} {}: {}",
                runtime.display(),
                args.first().copied().unwrap_or(""),
                msg.trim()
            )));
        }
        Ok(out)
    }
}

/// Facts about the host the spec and seccomp profile depend on.
pub(crate) struct HostFacts {
    /// `/sys/fs/cgroup` is a cgroup2 mount (pure v2).
    pub cgroup_v2: bool,
    /// Kernel (major, minor).
    pub kernel: (u32, u32),
}

pub(crate) fn host_facts() -> &'static HostFacts {
    static FACTS: std::sync::OnceLock<HostFacts> = std::sync::OnceLock::new();
    FACTS.get_or_init(|| {
        let cgroup_v2 = nix::sys::statfs::statfs("/sys/fs/cgroup")
            .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC);
        let release = nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut parts = release.split(|c: char| !c.is_ascii_digit());
        let major = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        let minor = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        HostFacts {
            cgroup_v2,
            kernel: (major, minor),
        }
    })
}

/// What `container prune` removed.
#[derive(Debug, Clone, Default)]
pub struct PruneReport {
    pub removed: Vec<String>,
    pub reclaimed: u64,
}

/// `until=` values: RFC 3339 times, Unix timestamps, or durations (`10m`) ago.
fn parse_until(v: &str) -> Result<chrono::DateTime<chrono::Utc>, EngineError> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    if let Ok(secs) = v.parse::<i64>() {
        return chrono::DateTime::from_timestamp(secs, 0)
            .ok_or_else(|| EngineError::InvalidArgument(format!("invalid until filter {v}")));
    }
    let (num, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len()));
    let n: i64 = num.parse().map_err(|_| {
        EngineError::InvalidArgument(format!(
            "invalid until filter {v}: use a time or a duration such as 10m"
        ))
    })?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => {
            return Err(EngineError::InvalidArgument(format!(
                "invalid until filter {v}: use a time or a duration such as 10m"
            )))
        }
    };
    Ok(chrono::Utc::now() - chrono::Duration::seconds(secs))
}

/// Bytes of the regular files under `dir` (0 when it is missing).
pub(crate) fn dir_size(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for ent in rd.flatten() {
            match ent.file_type() {
                Ok(t) if t.is_dir() => stack.push(ent.path()),
                Ok(t) if t.is_file() => total += ent.metadata().map(|m| m.len()).unwrap_or(0),
                _ => {}
            }
        }
    }
    total
}

pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// `SIGTERM`, `TERM`, `term`, `15`, `SIGRTMIN+3`.
pub fn parse_signal(s: &str) -> Result<i32, EngineError> {
    let bad = || {
        EngineError::InvalidArgument(format!(
            "Invalid signal: {s}: use a name such as SIGTERM or KILL, or a number from 1 to 64"
        ))
    };
    if let Ok(n) = s.parse::<i32>() {
        return if (1..=64).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    if let Some(rest) = name.strip_prefix("SIGRTMIN") {
        let off: i32 = if rest.is_empty() {
            0
        } else {
            rest.strip_prefix('+')
                .and_then(|n| n.parse().ok())
                .ok_or_else(bad)?
        };
        let n = libc::SIGRTMIN() + off;
        return if n <= libc::SIGRTMAX() {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    if let Some(rest) = name.strip_prefix("SIGRTMAX") {
        let off: i32 = if rest.is_empty() {
            0
        } else {
            rest.strip_prefix('-')
                .and_then(|n| n.parse().ok())
                .ok_or_else(bad)?
        };
        let n = libc::SIGRTMAX() - off;
        return if n >= libc::SIGRTMIN() {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    name.parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .map_err(|_| bad())
}

/// A pidfd for `pid`, or `None` when the process is gone.
pub(crate) fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the kernel just returned this fd; nothing else owns it.
    Some(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn send(pidfd: &OwnedFd, sig: i32) {
    // SAFETY: pidfd_send_signal with a valid pidfd, a signal number and no
    // siginfo; failure (the process already exited) is fine.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        );
    }
}

/// Waits until the process behind `pidfd` exits; false on timeout.
pub(crate) fn wait_exit(pidfd: &OwnedFd, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut pfd = libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n > 0 {
            return true;
        }
        if n == 0 {
            return false;
        }
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return false;
        }
    }
}
