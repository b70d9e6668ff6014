//! The seam to berth-dns (crates/dns, see DNS-INTERFACE.md): one JSON file
//! per user network under `<runroot>/dns/`, then "reload or start" of the
//! one berth-dns process of this runroot. This module writes the documented
//! format itself and signals the process directly, so that the engine does
//! not depend on the dns crate yet; at merge it becomes calls to
//! `berth_dns::config::{write, remove}` and
//! `berth_dns::control::{reload_or_start, stop_if_idle}`.

use std::os::unix::ffi::OsStrExt;
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

/// The pid of the live berth-dns serving `d` (its command line names the
/// directory, so a recycled pid is never signalled).
fn running_pid(d: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(d.join(PID_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    if stat
        .rsplit_once(") ")
        .is_some_and(|(_, rest)| rest.starts_with('Z'))
    {
        return None;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let dir = std::fs::canonicalize(d).ok()?;
    let serves = cmdline
        .split(|b| *b == 0)
        .any(|arg| Path::new(std::ffi::OsStr::from_bytes(arg)) == dir);
    serves.then_some(pid)
}

/// The readiness protocol of berth-dns (DNS-INTERFACE.md, crates/dns
/// control.rs): a fresh token in `berth-dns.reload`, then SIGHUP to the
/// running server or a start of the binary (which returns once its daemon
/// serves); the server writes the token back in `berth-dns.ready` when the
/// files are applied, so a container started next can query at once.
fn reload_or_start(d: &Path, bin: &Path) -> Result<(), EngineError> {
    let d = std::fs::canonicalize(d)
        .map_err(|e| EngineError::io(format!("resolving {}", d.display()), e))?;
    let _lock = crate::lock::FileLock::exclusive(&d.join("berth-dns.lock"))?;
    let token = format!("{:016x}", rand::random::<u64>());
    berth_monitor::files::write_atomic(
        &d.join("berth-dns.reload"),
        format!("{token}\n").as_bytes(),
    )
    .map_err(|e| EngineError::io(format!("writing {}/berth-dns.reload", d.display()), e))?;
    let ready = |pid: Option<i32>| -> bool {
        let Ok(data) = std::fs::read(d.join("berth-dns.ready")) else {
            return false;
        };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&data) else {
            return false;
        };
        v["token"] == token.as_str() && pid.is_none_or(|p| v["pid"] == p)
    };
    if let Some(pid) = running_pid(&d) {
        // SAFETY: kill(2) of a pid just checked to be berth-dns.
        unsafe { libc::kill(pid, libc::SIGHUP) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && running_pid(&d) == Some(pid) {
            if ready(Some(pid)) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        if running_pid(&d) == Some(pid) {
            // SAFETY: as above; a server that cannot reload cannot serve.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    let _ = std::fs::remove_file(d.join("berth-dns.ready"));
    let out = std::process::Command::new(bin)
        .arg("--config-dir")
        .arg(&d)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output()
        .map_err(|e| EngineError::io(format!("starting {}", bin.display()), e))?;
    if !out.status.success() || !ready(None) {
        return Err(EngineError::Conflict(format!(
            "berth-dns did not start: {}: see {}/berth-dns.log",
            String::from_utf8_lossy(&out.stderr).trim(),
            d.display()
        )));
    }
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
