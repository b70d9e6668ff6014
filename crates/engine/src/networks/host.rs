//! A network's host side: validating `network create`, picking a subnet
//! that collides with nothing, the bridge (address, sysctls) or the macvlan
//! parent, and removing it again.

use std::net::{IpAddr, Ipv4Addr};

use berth_net::{ipam, link_index, Ipv4Net, Netlink, Subnet};

use super::model::{NetworkConfig, NetworkRecord, OPT_BRIDGE_NAME, OPT_ICC, OPT_PARENT};
use super::{store, NetworkCreateRequest, NetworkService};
use crate::containers::defaults::names;
use crate::error::EngineError;
use crate::lock::FileLock;

/// Docker's network name rule.
pub(super) fn validate_name(name: &str) -> Result<(), EngineError> {
    let ok = !name.is_empty()
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if !ok {
        return Err(EngineError::InvalidArgument(format!(
            "invalid network name {name:?}: use letters, digits, '_', '.' and '-', starting with a letter or digit"
        )));
    }
    if matches!(name, "bridge" | "host" | "none" | "default") {
        return Err(EngineError::Conflict(format!(
            "network with name {name} already exists: it is pre-defined"
        )));
    }
    Ok(())
}

/// Held while a subnet is picked and its bridge made, across every berth
/// state root of the host (they share the host's routes).
fn host_ipam_lock() -> Result<FileLock, EngineError> {
    let dir = std::path::Path::new("/run/lock");
    std::fs::create_dir_all(dir)
        .map_err(|e| EngineError::io(format!("creating {}", dir.display()), e))?;
    FileLock::exclusive(&dir.join("berth-ipam.lock"))
}

impl NetworkService<'_> {
    /// Validates, makes the host side and stores the network; on any
    /// failure nothing is left (no row, no bridge, no rule).
    pub(super) fn create_locked(
        &self,
        req: &NetworkCreateRequest,
    ) -> Result<NetworkRecord, EngineError> {
        let driver = if req.driver.is_empty() {
            "bridge"
        } else {
            req.driver.as_str()
        };
        if !matches!(driver, "bridge" | "macvlan") {
            return Err(EngineError::InvalidArgument(format!(
                "plugin \"{driver}\" not found: berth networks use the bridge or macvlan driver"
            )));
        }
        if store::find(self.engine.db().conn(), &req.name)?.is_some_and(|n| n.name == req.name) {
            return Err(EngineError::Conflict(format!(
                "network with name {} already exists",
                req.name
            )));
        }
        let parse = |what: &str, s: &str| -> Result<Ipv4Net, EngineError> {
            s.parse::<Ipv4Net>().map_err(|_| {
                EngineError::InvalidArgument(format!(
                    "invalid {what} {s}: expected an IPv4 CIDR such as 172.30.0.0/16"
                ))
            })
        };
        if req.subnet.is_none() && (req.gateway.is_some() || req.ip_range.is_some()) {
            return Err(EngineError::InvalidArgument(
                "every ip-range or gateway must have a corresponding subnet: add --subnet".into(),
            ));
        }
        for key in req.options.keys() {
            if driver == "bridge"
                && !matches!(key.as_str(), OPT_BRIDGE_NAME | OPT_ICC)
                && !key.starts_with("com.docker.network.")
            {
                return Err(EngineError::InvalidArgument(format!(
                    "unknown bridge driver option {key}: use {OPT_BRIDGE_NAME} or {OPT_ICC}"
                )));
            }
        }
        if let Some(v) = req.options.get(OPT_ICC) {
            if !matches!(v.as_str(), "true" | "false") {
                return Err(EngineError::InvalidArgument(format!(
                    "invalid {OPT_ICC} value {v:?}: use true or false"
                )));
            }
        }
        let icc_off = req.options.get(OPT_ICC).is_some_and(|v| v == "false");
        if icc_off {
            // Traffic between two ports of one bridge is switched, not
            // routed: only br_netfilter shows it to the forward hook where
            // the icc rule drops it (Docker turns this on as well).
            let knob = "net/bridge/bridge-nf-call-iptables";
            if !std::path::Path::new("/proc/sys").join(knob).exists() {
                return Err(EngineError::InvalidArgument(format!(
                    "{OPT_ICC}=false needs the br_netfilter kernel module: load it (modprobe br_netfilter) or leave icc enabled"
                )));
            }
            berth_net::netns::sysctl(knob, "1")?;
            if req.ipv6 {
                berth_net::netns::sysctl("net/bridge/bridge-nf-call-ip6tables", "1")?;
            }
        }
        let id = names::new_container_id();
        let host_link = match driver {
            "bridge" => match req.options.get(OPT_BRIDGE_NAME) {
                Some(n) => {
                    if n.is_empty() || n.len() > 15 || n.contains(['/', ' ']) {
                        return Err(EngineError::InvalidArgument(format!(
                            "invalid bridge name {n:?}: at most 15 characters, no '/' or spaces"
                        )));
                    }
                    n.clone()
                }
                None => format!("berth{}", &id[..10]),
            },
            _ => {
                let parent = req.options.get(OPT_PARENT).cloned().ok_or_else(|| {
                    EngineError::InvalidArgument(
                        "a macvlan network needs its parent interface: -o parent=IFACE".into(),
                    )
                })?;
                if link_index(&parent).is_none() {
                    return Err(EngineError::InvalidArgument(format!(
                        "invalid subinterface vlan name {parent}: no such host interface"
                    )));
                }
                if req.subnet.is_none() {
                    return Err(EngineError::InvalidArgument(
                        "a macvlan network needs --subnet (and --gateway) of the parent's LAN"
                            .into(),
                    ));
                }
                parent
            }
        };
        let _host_lock = host_ipam_lock()?;
        let others: Vec<NetworkRecord> = store::all(self.engine.db().conn())?
            .into_iter()
            .filter(|n| n.has_ipam())
            .collect();
        let other_subnets: Vec<(String, Ipv4Net)> = others
            .iter()
            .filter_map(|n| n.subnet().ok().map(|s| (n.name.clone(), s)))
            .collect();
        let subnet = match &req.subnet {
            Some(s) => check_requested_subnet(
                s,
                parse("subnet", s)?.network(),
                30,
                &other_subnets,
                (driver == "bridge").then(ipam::host_routes),
                "--subnet",
            )?,
            None => {
                let mut used = ipam::host_routes();
                used.extend(ipam::reserved_subnets());
                used.extend(other_subnets.iter().map(|(_, s)| *s));
                ipam::pick_subnet(&ipam::default_pools(), &used).ok_or_else(|| {
                    EngineError::Conflict(
                        "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network: pass --subnet".into(),
                    )
                })?
            }
        };
        let gateway = match &req.gateway {
            Some(g) => {
                let ip: Ipv4Addr = g.parse().map_err(|_| {
                    EngineError::InvalidArgument(format!(
                        "invalid gateway {g}: not an IPv4 address"
                    ))
                })?;
                if !subnet.contains(ip) || ip == subnet.addr || ip == subnet.broadcast() {
                    return Err(EngineError::InvalidArgument(format!(
                        "no matching subnet for gateway {ip}: it must be a host address of {subnet}"
                    )));
                }
                ip
            }
            None => subnet.nth(1).ok_or_else(|| {
                EngineError::InvalidArgument(format!("subnet {subnet} is too small"))
            })?,
        };
        let ip_range = match &req.ip_range {
            Some(r) => {
                let range = parse("ip-range", r)?.network();
                if !subnet.covers(&range) {
                    return Err(EngineError::InvalidArgument(format!(
                        "invalid ip-range {range}: it must lie inside subnet {subnet}"
                    )));
                }
                range.to_string()
            }
            None => String::new(),
        };
        let v6 = super::ipv6::plan(req, driver, &others)?;
        let mut options = req.options.clone();
        if driver == "bridge" {
            options
                .entry(OPT_BRIDGE_NAME.into())
                .or_insert_with(|| host_link.clone());
        }
        let rec = NetworkRecord {
            id,
            name: req.name.clone(),
            created: chrono::Utc::now(),
            config: NetworkConfig {
                driver: driver.into(),
                subnet: subnet.to_string(),
                gateway: gateway.to_string(),
                ip_range,
                internal: req.internal,
                enable_ipv6: req.ipv6,
                subnet6: v6
                    .as_ref()
                    .map(|p| p.subnet.to_string())
                    .unwrap_or_default(),
                gateway6: v6
                    .as_ref()
                    .map(|p| p.gateway.to_string())
                    .unwrap_or_default(),
                ip_range6: v6
                    .as_ref()
                    .and_then(|p| p.ip_range)
                    .map(|r| r.to_string())
                    .unwrap_or_default(),
                labels: req.labels.clone(),
                options,
                host_link,
            },
        };
        if driver == "bridge" && link_index(&rec.config.host_link).is_some() {
            // Never adopt (and later delete) a link berth did not make.
            return Err(EngineError::Conflict(format!(
                "bridge name {} is already in use by a host interface: pick another -o {OPT_BRIDGE_NAME}=",
                rec.config.host_link
            )));
        }
        let made_bridge = self.setup_host(&rec)?;
        let stored = (|| {
            let mut db = self.engine.db();
            let tx = db.write()?;
            store::insert(&tx, &rec)?;
            tx.commit()
                .map_err(|e| EngineError::db("committing a network", e))
        })()
        .and_then(|()| self.sync_firewall_locked());
        if let Err(e) = stored {
            if made_bridge {
                self.teardown_host(&rec);
            }
            let mut db = self.engine.db();
            if let Ok(tx) = db.write() {
                let _ = store::delete(&tx, &rec.id);
                let _ = tx.commit();
            }
            return Err(e);
        }
        Ok(rec)
    }

    /// Makes the bridge (with the gateway address) if it is missing;
    /// returns whether it made one. Macvlan networks need nothing here.
    pub(super) fn setup_host(&self, n: &NetworkRecord) -> Result<bool, EngineError> {
        if !n.is_bridge() {
            return Ok(false);
        }
        let br = &n.config.host_link;
        let subnet = n.subnet()?;
        let gateway = n.gateway()?;
        let mut nl = Netlink::open()?;
        let made = match link_index(br) {
            Some(_) => false,
            None => {
                nl.create_bridge(br, None)?;
                true
            }
        };
        let result = (|| -> Result<(), EngineError> {
            let idx = link_index(br).ok_or_else(|| {
                EngineError::Corrupt(format!("bridge {br} vanished right after its creation"))
            })?;
            nl.add_address(idx, IpAddr::V4(gateway), subnet.prefix)?;
            super::ipv6::setup_bridge(&mut nl, n, idx)?;
            nl.set_up(idx, true)?;
            berth_net::netns::sysctl("net/ipv4/ip_forward", "1")?;
            // Published ports on 127.0.0.1 are DNAT'ed to the bridge with
            // their loopback source, which the kernel otherwise drops.
            berth_net::netns::sysctl(&format!("net/ipv4/conf/{br}/route_localnet"), "1")?;
            Ok(())
        })();
        if let Err(e) = result {
            if made {
                let _ = nl.delete_link(br);
            }
            return Err(e);
        }
        Ok(made)
    }

    /// Removes what [`Self::setup_host`] made (errors are logged: teardown
    /// goes on).
    pub(super) fn teardown_host(&self, n: &NetworkRecord) {
        if n.is_bridge() && !n.config.host_link.is_empty() {
            match Netlink::open().and_then(|mut nl| nl.delete_link(&n.config.host_link)) {
                Ok(()) => {}
                Err(e) => tracing::warn!("network {}: {e}", n.name),
            }
        }
        if n.has_dns() {
            super::dns::remove(&self.runroot(), &n.name);
        }
    }
}

/// A requested `--subnet` (`net`, host bits cleared) checked: room for a
/// gateway and a container (prefix at most `max_prefix`), no overlap with
/// another network's subnet, and, where `host_routes` are given (bridges),
/// none with a host route that is not one of those networks' own. `flag`
/// names the option to change in the error.
pub(super) fn check_requested_subnet<N: Subnet>(
    requested: &str,
    net: N,
    max_prefix: u8,
    others: &[(String, N)],
    host_routes: Option<Vec<N>>,
    flag: &str,
) -> Result<N, EngineError> {
    if net.prefix() > max_prefix {
        return Err(EngineError::InvalidArgument(format!(
            "invalid subnet {requested}: a /{} has no room for a gateway and a container",
            net.prefix()
        )));
    }
    if let Some((name, o)) = others.iter().find(|(_, o)| o.overlaps(&net)) {
        return Err(EngineError::Conflict(format!(
            "invalid pool request: Pool overlaps with other one on this address space: {net} overlaps {o} of network {name}"
        )));
    }
    let ours: Vec<N> = others.iter().map(|(_, s)| *s).collect();
    if let Some(r) = host_routes
        .unwrap_or_default()
        .into_iter()
        .find(|r| r.overlaps(&net) && !ours.contains(&r.network()))
    {
        return Err(EngineError::Conflict(format!(
            "invalid pool request: subnet {net} overlaps the host route {r}: pick another {flag}"
        )));
    }
    Ok(net)
}
