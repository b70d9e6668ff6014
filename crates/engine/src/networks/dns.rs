//! The seam to berth-dns (crates/dns, see DNS-INTERFACE.md): one JSON file
//! per user network under `<runroot>/dns/`, then "reload or start" of the
//! one berth-dns process of this runroot. This module writes the documented
//! format itself and signals the process directly, so that the engine does
//! not depend on the dns crate yet; at merge it becomes calls to
//! `berth_dns::config::{write, remove}` and
//! `berth_dns::control::{reload_or_start, stop_if_idle}`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;

use super::model::NetworkRecord;
use super::{store, NetworkService};
use crate::error::EngineError;

const PID_FILE: &str = "berth-dns.pid";

fn dir(runroot: &Path) -> PathBuf {
    runroot.join("dns")
}

/// The berth-dns binary, when installed (beside berth, `BERTH_DNS`, $PATH).
pub(super) fn binary() -> Option<PathBuf> {
    crate::containers::binaries::find("BERTH_DNS", "berth-dns").ok()
}

impl NetworkService<'_> {
    /// Rewrites the network's file from its running endpoints (or removes
    /// it when none is left) and tells berth-dns.
    pub(super) fn sync_dns(&self, n: &NetworkRecord) -> Result<(), EngineError> {
        let Some(bin) = binary() else {
            return Ok(());
        };
        let eps = store::endpoints_of_network(self.engine.db().conn(), &n.id)?;
        let running: Vec<_> = eps.iter().filter(|e| e.state.is_some()).collect();
        let d = dir(&self.runroot());
        if running.is_empty() {
            remove(&self.runroot(), &n.name);
            stop_if_idle(&d);
            return Ok(());
        }
        let names = self.container_names(running.iter().map(|e| e.container_id.as_str()))?;
        let mut records = Vec::new();
        for (ep, name) in running.iter().zip(names) {
            let Some(s) = &ep.state else { continue };
            let mut all = vec![name, ep.container_id[..12].to_string()];
            all.extend(ep.request.aliases.iter().cloned());
            records.push(json!({"ip": [s.ip], "names": all}));
        }
        // `--link NAME:ALIAS` on a user network: ALIAS names NAME.
        for ep in &running {
            for link in &ep.request.links {
                let (target, alias) = link
                    .split_once(':')
                    .unwrap_or((link.as_str(), link.as_str()));
                let target = target.trim_start_matches('/');
                let Ok(t) = self.engine.containers().get(target) else {
                    continue;
                };
                if let Some(s) = running
                    .iter()
                    .find(|e| e.container_id == t.id)
                    .and_then(|e| e.state.as_ref())
                {
                    records.push(json!({"ip": [s.ip], "names": [alias]}));
                }
            }
        }
        let cfg = json!({
            "network": n.name,
            "listen": [n.config.gateway],
            "upstreams": [],
            "search": [],
            "records": records,
        });
        std::fs::create_dir_all(&d)
            .map_err(|e| EngineError::io(format!("creating {}", d.display()), e))?;
        let path = d.join(format!("{}.json", n.name));
        let bytes = serde_json::to_vec_pretty(&cfg)
            .map_err(|e| EngineError::Corrupt(format!("encoding {}: {e}", path.display())))?;
        berth_monitor::files::write_atomic(&path, &bytes)
            .map_err(|e| EngineError::io(format!("writing {}", path.display()), e))?;
        reload_or_start(&d, &bin)
    }
}

/// Removes a network's file (missing is fine).
pub(super) fn remove(runroot: &Path, network: &str) {
    let d = dir(runroot);
    let _ = std::fs::remove_file(d.join(format!("{network}.json")));
    stop_if_idle(&d);
}

fn running_pid(d: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(d.join(PID_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    (comm.trim() == "berth-dns").then_some(pid)
}

/// SIGHUP to a running berth-dns, else starts one and waits until it has
/// written its pid file (it binds its listeners before that).
fn reload_or_start(d: &Path, bin: &Path) -> Result<(), EngineError> {
    if let Some(pid) = running_pid(d) {
        // SAFETY: kill(2) of a pid just checked to be berth-dns.
        unsafe { libc::kill(pid, libc::SIGHUP) };
        return Ok(());
    }
    let _ = std::fs::remove_file(d.join(PID_FILE));
    let log = std::fs::File::create(d.join("berth-dns.log"))
        .map_err(|e| EngineError::io(format!("creating {}/berth-dns.log", d.display()), e))?;
    let err = log
        .try_clone()
        .map_err(|e| EngineError::io("duplicating a log fd", e))?;
    let mut cmd = std::process::Command::new(bin);
    cmd.arg("--config-dir")
        .arg(d)
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(err);
    // SAFETY: setsid in the child before exec is async-signal-safe.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| EngineError::io(format!("starting {}", bin.display()), e))?;
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if running_pid(d).is_some() {
            // berth-dns outlives this command (init reaps it).
            drop(child);
            return Ok(());
        }
        if let Ok(Some(st)) = child.try_wait() {
            return Err(EngineError::Conflict(format!(
                "berth-dns exited at start ({st}): see {}/berth-dns.log",
                d.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    tracing::warn!("berth-dns did not report ready within 3 s");
    drop(child);
    Ok(())
}

/// Stops berth-dns when no network file is left.
fn stop_if_idle(d: &Path) {
    let any = std::fs::read_dir(d)
        .map(|rd| {
            rd.flatten()
                .any(|e| e.path().extension().is_some_and(|x| x == "json"))
        })
        .unwrap_or(false);
    if !any {
        if let Some(pid) = running_pid(d) {
            // SAFETY: kill(2) of a pid just checked to be berth-dns.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
    }
}

/// Stops berth-dns and removes every network file (reset).
pub(super) fn stop_all(runroot: &Path) {
    let d = dir(runroot);
    if let Some(pid) = running_pid(&d) {
        // SAFETY: kill(2) of a pid just checked to be berth-dns.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    let _ = std::fs::remove_dir_all(&d);
}
