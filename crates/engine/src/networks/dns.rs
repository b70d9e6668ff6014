//! User networks' names, served by berth-dns (crates/dns): one config file
//! per network under `<runroot>/dns/`, then "reload or start" of the one
//! berth-dns process of this runroot (`berth_dns::control`).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use berth_dns::config::{NetworkDns, Record};

use super::model::{EndpointState, NetworkRecord};
use super::{store, NetworkService};
use crate::error::EngineError;

fn dir(runroot: &Path) -> PathBuf {
    runroot.join("dns")
}

/// The berth-dns binary, when installed (beside berth, `BERTH_DNS`, $PATH).
pub(super) fn binary() -> Option<PathBuf> {
    crate::containers::binaries::find("BERTH_DNS", "berth-dns").ok()
}

fn dns_error(e: berth_dns::DnsError) -> EngineError {
    EngineError::Conflict(e.to_string())
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
            let Some(ips) = ep.state.as_ref().and_then(state_addresses) else {
                continue;
            };
            let mut names = vec![name, ep.container_id[..12].to_string()];
            names.extend(ep.request.aliases.iter().cloned());
            records.push(Record {
                ip: ips,
                names,
                container: Some(ep.container_id.clone()),
            });
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
                if let Some(ips) = running
                    .iter()
                    .find(|e| e.container_id == t.id)
                    .and_then(|e| e.state.as_ref())
                    .and_then(state_addresses)
                {
                    records.push(Record {
                        ip: ips,
                        names: vec![alias.to_string()],
                        container: None,
                    });
                }
            }
        }
        let cfg = NetworkDns {
            network: n.name.clone(),
            listen: std::iter::once(IpAddr::V4(n.gateway()?))
                .chain(n.ipv6()?.map(|(_, g)| IpAddr::V6(g)))
                .collect(),
            upstreams: Vec::new(),
            search: Vec::new(),
            records,
        };
        berth_dns::config::write(&d, &cfg).map_err(dns_error)?;
        match berth_dns::control::reload_or_start(&d, &bin) {
            // The server runs; only some addresses could not be bound.
            Err(e @ berth_dns::DnsError::Listen { .. }) => {
                tracing::warn!("network {}: {e}", n.name);
                Ok(())
            }
            other => other.map_err(dns_error),
        }
    }
}

/// An endpoint's addresses: IPv4, and IPv6 on an `--ipv6` network (AAAA
/// records; on IPv4-only networks berth-dns answers AAAA queries for its
/// names with no records, NODATA).
fn state_addresses(s: &EndpointState) -> Option<Vec<IpAddr>> {
    let v4: IpAddr = s.ip.parse().ok()?;
    Some(std::iter::once(v4).chain(s.ip6.parse().ok()).collect())
}

/// Removes a network's file (missing is fine), and stops berth-dns when
/// it was the last.
pub(super) fn remove(runroot: &Path, network: &str) {
    let d = dir(runroot);
    if let Err(e) = berth_dns::config::remove(&d, network) {
        tracing::warn!("network {network}: {e}");
    }
    stop_if_idle(&d);
}

fn stop_if_idle(d: &Path) {
    if let Err(e) = berth_dns::control::stop_if_idle(d) {
        tracing::warn!("stopping berth-dns of {}: {e}", d.display());
    }
}

/// Stops berth-dns and removes every network file (reset).
pub(super) fn stop_all(runroot: &Path) {
    let d = dir(runroot);
    if let Some(pid) = berth_dns::control::running_pid(&d) {
        // SAFETY: kill(2) of a pid berth_dns just checked to be its server.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    let _ = std::fs::remove_dir_all(&d);
}
