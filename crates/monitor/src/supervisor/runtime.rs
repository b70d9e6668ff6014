//! Driving the OCI runtime through runc's command line.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::config::MonitorConfig;
use crate::error::MonitorError;

/// The runtime binary, its root and the container id.
pub struct Runtime {
    bin: PathBuf,
    root: PathBuf,
    id: String,
    /// berth-runtime's state, which the monitor can read (see
    /// [`MonitorConfig::runtime_state_readable`]).
    state_readable: bool,
}

/// What the runtime's stdio is connected to for `run -d`; with pipes the
/// container inherits them.
pub struct RunStdio {
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

impl Runtime {
    pub fn new(config: &MonitorConfig) -> Runtime {
        Runtime {
            bin: config.runtime.clone(),
            root: config.runtime_root.clone(),
            id: config.id.clone(),
            state_readable: config.runtime_state_readable,
        }
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(&self.root);
        c
    }

    /// `run -d --pid-file P [--console-socket S] --bundle B ID`: starts the
    /// container in one exec. Returns once the runtime exited; `Err` carries
    /// the runtime's exit status (the caller reads its message from the
    /// stderr pipe).
    pub fn run_detached(
        &self,
        bundle: &Path,
        pid_file: &Path,
        console_socket: Option<&Path>,
        stdio: RunStdio,
    ) -> Result<std::process::ExitStatus, MonitorError> {
        let mut c = self.command();
        c.arg("run").arg("-d").arg("--pid-file").arg(pid_file);
        if let Some(s) = console_socket {
            c.arg("--console-socket").arg(s);
        }
        c.arg("--bundle").arg(bundle).arg(&self.id);
        c.stdin(Stdio::from(stdio.stdin))
            .stdout(Stdio::from(stdio.stdout))
            .stderr(Stdio::from(stdio.stderr));
        let mut child = c.spawn().map_err(|source| MonitorError::Spawn {
            program: self.bin.clone(),
            source,
        })?;
        // The Command (and with it the container's ends of the pipes) is
        // dropped here; only the container keeps them.
        drop(c);
        child.wait().map_err(|source| MonitorError::Spawn {
            program: self.bin.clone(),
            source,
        })
    }

    /// `delete --force ID`; the runtime's messages go to the monitor's log.
    pub fn delete(&self) -> Result<(), MonitorError> {
        self.spawn_delete()?.wait()
    }

    /// Starts `delete --force ID` without waiting for it, nor for its
    /// exec, so that it overlaps with other work (the exit files, the exit
    /// command). Its messages go to the monitor's stderr (its log). With
    /// berth-runtime's state readable, the forked child deletes a stopped
    /// container itself and execs the runtime only for anything else.
    pub fn spawn_delete(&self) -> Result<PendingDelete, MonitorError> {
        let args: [&std::ffi::OsStr; 5] = [
            "--root".as_ref(),
            self.root.as_os_str(),
            "delete".as_ref(),
            "--force".as_ref(),
            self.id.as_ref(),
        ];
        let spawned = if self.state_readable {
            let mut delete_here = || {
                match berth_runtime_state::delete_stopped(&self.root, &self.id) {
                    Ok(berth_runtime_state::Deletion::Done) => return true,
                    Ok(berth_runtime_state::Deletion::LeftToRuntime) => {}
                    Err(e) => eprintln!("delete {}: {e}; running the runtime's delete", self.id),
                }
                false
            };
            crate::spawn_unwaited::spawn_unless_done(&self.bin, &args, true, &mut delete_here)
        } else {
            crate::spawn_unwaited::spawn(&self.bin, &args, true, &[])
        };
        let pid = spawned.map_err(|source| MonitorError::Spawn {
            program: self.bin.clone(),
            source,
        })?;
        Ok(PendingDelete {
            bin: self.bin.clone(),
            id: self.id.clone(),
            pid,
        })
    }
}

/// A `delete` started by [`Runtime::spawn_delete`].
pub struct PendingDelete {
    bin: PathBuf,
    id: String,
    pid: nix::unistd::Pid,
}

impl PendingDelete {
    pub fn wait(self) -> Result<(), MonitorError> {
        use nix::sys::wait::{waitpid, WaitStatus};
        let status = loop {
            match waitpid(self.pid, None) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => break other,
            }
        };
        match status {
            Ok(WaitStatus::Exited(_, 0)) => Ok(()),
            Ok(s) => Err(MonitorError::Start {
                id: self.id,
                message: format!("{} delete --force failed: {s:?}", self.bin.display()),
                exit_code: 125,
            }),
            Err(e) => Err(MonitorError::Spawn {
                program: self.bin,
                source: e.into(),
            }),
        }
    }
}

impl Runtime {
    /// Starts `exec --pid-file P ID argv…` with stdout and stderr on `output`
    /// (a health probe); returns the runtime's pid.
    pub fn spawn_exec(
        &self,
        argv: &[String],
        pid_file: &Path,
        output: &OwnedFd,
    ) -> Result<i32, MonitorError> {
        let dup = |fd: &OwnedFd| {
            fd.as_fd()
                .try_clone_to_owned()
                .map_err(MonitorError::io("dup probe pipe", pid_file))
        };
        let child = self
            .command()
            .arg("exec")
            .arg("--pid-file")
            .arg(pid_file)
            .arg(&self.id)
            .args(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::from(dup(output)?))
            .stderr(Stdio::from(dup(output)?))
            .spawn()
            .map_err(|source| MonitorError::Spawn {
                program: self.bin.clone(),
                source,
            })?;
        // Reaped by the monitor's waitpid(-1) loop, not through `Child`.
        i32::try_from(child.id()).map_err(|_| MonitorError::InvalidConfig {
            field: "runtime",
            reason: "pid out of range".into(),
        })
    }
}

/// One line out of what the runtime printed when it failed, and Docker's
/// exit code for it: 127 when the program was not found, 126 when it is not
/// executable, 125 for everything else.
pub fn classify_failure(output: &[u8], status: std::process::ExitStatus) -> (String, i32) {
    let text = String::from_utf8_lossy(output);
    let lines: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(logrus_message)
        .collect();
    let message = lines
        .iter()
        // crun warns about hybrid cgroups before its error, and when it
        // refuses the host outright that warning is its only line.
        .rfind(|l| !l.starts_with("cgroups in hybrid mode"))
        .or(lines.last())
        .cloned()
        .unwrap_or_else(|| format!("runtime failed ({status}) without a message"));
    let lower = message.to_lowercase();
    let exec_failure = lower.contains("exec") || lower.contains("executable");
    let code = if lower.contains("executable file not found")
        || (exec_failure && lower.contains("no such file or directory"))
    {
        127
    } else if exec_failure && lower.contains("permission denied") {
        126
    } else {
        125
    };
    (message, code)
}

/// runc logs `time="…" level=error msg="…"`: the message, unquoted.
fn logrus_message(line: &str) -> String {
    let Some(start) = line.find("msg=\"") else {
        return line.to_string();
    };
    let mut out = String::new();
    let mut chars = line[start + 5..].chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            '"' => break,
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn classifies_like_docker() {
        let st = std::process::ExitStatus::from_raw(256);
        let runc = br#"time="2026-11-23T06:18:21Z" level=error msg="runc run failed: unable to start container process: exec: \"nosuchcmd\": executable file not found in $PATH""#;
        let (msg, code) = classify_failure(runc, st);
        assert_eq!(code, 127);
        assert_eq!(
            msg,
            "runc run failed: unable to start container process: exec: \"nosuchcmd\": executable file not found in $PATH"
        );
        let berth = b"berth-runtime: container init: exec: \"/bin/nosuch\": stat /bin/nosuch: no such file or directory\n";
        assert_eq!(classify_failure(berth, st).1, 127);
        let perm = b"berth-runtime: container init: exec: \"/bin/noexec\": permission denied\n";
        assert_eq!(classify_failure(perm, st).1, 126);
        let other = b"berth-runtime: bundle /x: config.json: no such file or directory\n";
        assert_eq!(classify_failure(other, st).1, 125);
        assert_eq!(classify_failure(b"", st).1, 125);
        let crun = b"cgroups in hybrid mode not supported, drop all controllers from cgroupv2\n";
        assert_eq!(
            classify_failure(crun, st),
            (
                "cgroups in hybrid mode not supported, drop all controllers from cgroupv2".into(),
                125
            )
        );
    }
}
