//! `exec`: a process in a running container, through its OCI runtime's
//! `exec` (which takes the container's process settings as the base and
//! applies the overrides), run by the caller with its own stdio.

use std::process::Command;

use super::store::Status;
use super::ContainerService;
use crate::error::EngineError;

/// What `berth exec` asks for.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    pub command: Vec<String>,
    /// `K=V` added to the container's environment.
    pub env: Vec<String>,
    /// `name|uid[:group|gid]`, resolved in the container's /etc files.
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub tty: bool,
    pub detach: bool,
    /// All capabilities (Docker's `exec --privileged`).
    pub privileged: bool,
    /// A file for the runtime's own log (`--log`): its errors there tell a
    /// failed start from the process's own exit status.
    pub runtime_log: Option<std::path::PathBuf>,
}

/// berth-runtime's flag that keeps its errors out of stderr (see
/// [`ContainerService::exec_command`]).
pub const EXEC_ERRORS_TO_LOG_ONLY: &str = "--log-errors-only";

impl ContainerService<'_> {
    /// The runtime command that runs `req` in container `word`.
    /// The runtime command for `exec`. When it carries
    /// [`EXEC_ERRORS_TO_LOG_ONLY`], a failure to start the process is in
    /// `req.runtime_log` only and the caller reports it.
    pub fn exec_command(&self, word: &str, req: &ExecRequest) -> Result<Command, EngineError> {
        let rec = self.get(word)?;
        match rec.status {
            Status::Running => {}
            Status::Paused => {
                return Err(EngineError::Conflict(format!(
                    "Container {} is paused, unpause the container before exec",
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
        if req.command.is_empty() || req.command[0].is_empty() {
            return Err(EngineError::InvalidArgument(
                "exec needs a command to run: berth exec CONTAINER COMMAND [ARG...]".into(),
            ));
        }
        let (runtime, root) = super::launch::runtime_for(self, &rec)?;
        let mut cmd = Command::new(&runtime);
        cmd.arg("--root").arg(&root);
        if let Some(log) = &req.runtime_log {
            cmd.arg("--log").arg(log);
            // berth's runtime can leave its errors to the log, for the
            // caller to report them in Docker's words; runc and crun print
            // them on stderr themselves.
            if runtime.file_name() == Some(std::ffi::OsStr::new("berth-runtime")) {
                cmd.arg(EXEC_ERRORS_TO_LOG_ONLY);
            }
        }
        cmd.arg("exec");
        if req.tty {
            cmd.arg("--tty");
        }
        if req.detach {
            cmd.arg("--detach");
        }
        if let Some(w) = req.workdir.as_deref().filter(|w| !w.is_empty()) {
            if !w.starts_with('/') {
                return Err(EngineError::InvalidArgument(format!(
                    "the working directory '{w}' is invalid, it needs to be an absolute path"
                )));
            }
            cmd.arg("--cwd").arg(w);
        }
        for e in &req.env {
            if e.contains('=') {
                cmd.arg("--env").arg(e);
            }
        }
        if let Some(user) = req.user.as_deref().filter(|u| !u.is_empty()) {
            let paths = self.paths(&rec.id);
            let resolved = super::spec::resolve_user(&paths.rootfs, user, &[])?;
            cmd.arg("--user")
                .arg(format!("{}:{}", resolved.uid(), resolved.gid()));
            for g in resolved.additional_gids().iter().flatten() {
                cmd.arg("--additional-gids").arg(g.to_string());
            }
        }
        if req.privileged {
            for cap in super::spec::HostInfo::get().capabilities.iter() {
                cmd.arg("--cap").arg(cap);
            }
        }
        cmd.arg(&rec.id).args(&req.command);
        Ok(cmd)
    }
}
