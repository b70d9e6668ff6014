//! berth's nftables tables (`ip` and `ip6`) from the stored state: every bridge network's
//! masquerade/isolation rules and every running container's published
//! ports (see `berth_net::firewall`: one atomic nft run replaces the table).

use std::net::{Ipv4Addr, Ipv6Addr};

use berth_net::firewall::{self, FirewallState, NetworkRules, PortRule};
use berth_net::Proto;

use super::{store, NetworkService};
use crate::error::EngineError;

impl NetworkService<'_> {
    /// Rewrites the table (takes the network lock).
    pub(super) fn sync_firewall(&self) -> Result<(), EngineError> {
        let _lock = self.lock()?;
        self.sync_firewall_locked()
    }

    /// Rewrites the table; the caller holds the network lock.
    pub(super) fn sync_firewall_locked(&self) -> Result<(), EngineError> {
        let state = self.firewall_state()?;
        firewall::apply(&self.nft_table(), &state)?;
        Ok(())
    }

    fn firewall_state(&self) -> Result<FirewallState, EngineError> {
        let db = self.engine.db();
        let conn = db.conn();
        let mut st = FirewallState::default();
        for n in store::all(conn)?.into_iter().filter(|n| n.is_bridge()) {
            st.networks.push(NetworkRules {
                name: n.name.clone(),
                bridge: n.config.host_link.clone(),
                subnet: n.subnet()?,
                subnet6: n.ipv6()?.map(|(s, _)| s),
                internal: n.config.internal,
                icc: n.icc(),
            });
        }
        let endpoints = store::all_endpoints(conn)?;
        for (cid, ports) in store::all_published_ports(conn)? {
            // Ports go to the container's first network's addresses.
            let Some((ip, ip6)) = endpoints
                .iter()
                .filter(|e| e.container_id == cid)
                .filter_map(|e| e.state.as_ref())
                .find_map(|s| {
                    let ip = s.ip.parse::<Ipv4Addr>().ok()?;
                    Some((ip, s.ip6.parse::<Ipv6Addr>().ok()))
                })
            else {
                continue;
            };
            for p in ports {
                let Some(proto) = Proto::parse(&p.proto) else {
                    continue;
                };
                st.ports.push(PortRule {
                    container: cid.clone(),
                    proto,
                    host_ip: match p.host_ip.as_str() {
                        "" | "0.0.0.0" => None,
                        s => s.parse().ok(),
                    },
                    host_port: p.host_port,
                    container_ip: ip,
                    container_ip6: ip6,
                    container_port: p.container_port,
                });
            }
        }
        Ok(st)
    }
}
