//! A container's endpoints: recorded at create (`--network`, `--ip`,
//! `--network-alias`, `--mac-address`), made at start (a pinned network
//! namespace, a veth pair into the bridge or a macvlan, address, default
//! route), and removed at exit, `rm` or the next command after a crash.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use berth_net::{ipam, link_index, Mac, Netlink, Netns};

use super::model::{Endpoint, EndpointRequest, EndpointState, NetworkRecord};
use super::{store, NetworkService};
use crate::containers::defaults::etc_files::LinkEntry;
use crate::containers::defaults::EtcNetwork;
use crate::containers::ContainerRecord;
use crate::error::EngineError;

/// What a container's /etc files need from its networks.
#[derive(Debug, Clone)]
pub struct NetEtc {
    pub network: EtcNetwork,
    pub ips: Vec<IpAddr>,
    pub links: Vec<LinkEntry>,
    /// `host-gateway` (the default bridge's gateway).
    pub host_gateway: Vec<IpAddr>,
}

/// Whether a network mode names a network (rather than host, none or
/// another container's namespace).
pub(crate) fn mode_uses_network(mode: &str) -> bool {
    !matches!(mode, "host" | "none") && !mode.starts_with("container:")
}

impl NetworkService<'_> {
    pub(super) fn netns_path(&self, id: &str) -> PathBuf {
        self.runroot().join("netns").join(id)
    }

    /// Records the endpoints of a new container (`create`). `requests` come
    /// from the CLI's `--network` flags; without them the container joins
    /// its network mode's network. Checks the networks exist and `--ip`
    /// fits them before anything is stored.
    pub(crate) fn add_endpoints(
        &self,
        rec: &ContainerRecord,
        requests: &[EndpointRequest],
    ) -> Result<(), EngineError> {
        let mode = crate::containers::network_mode(rec);
        if !mode_uses_network(&mode) {
            return Ok(());
        }
        let mut reqs: Vec<EndpointRequest> = requests
            .iter()
            .filter(|r| mode_uses_network(&r.network))
            .cloned()
            .collect();
        if reqs.is_empty() {
            reqs.push(EndpointRequest {
                network: mode.clone(),
                ..Default::default()
            });
        }
        if let Some(first) = reqs.first_mut() {
            if first.network == "default" {
                first.network = mode.clone();
            }
            if first.mac_address.is_empty() {
                first.mac_address = rec.config.mac_address.clone();
            }
        }
        let mut resolved = Vec::new();
        for r in &reqs {
            let n = self.get(&r.network)?;
            self.check_request(&n, r)?;
            resolved.push((n, r.clone()));
        }
        let mut db = self.engine.db();
        let tx = db.write()?;
        for (i, (n, r)) in resolved.iter().enumerate() {
            store::insert_endpoint(&tx, &rec.id, &n.id, i as i64, r)?;
        }
        tx.commit()
            .map_err(|e| EngineError::db("committing endpoints", e))
    }

    /// A request's settings against its network: `--ip` inside the subnet,
    /// aliases only on user networks.
    fn check_request(&self, n: &NetworkRecord, r: &EndpointRequest) -> Result<(), EngineError> {
        if !n.has_ipam() {
            return Err(EngineError::InvalidArgument(format!(
                "container cannot be connected to network {} (driver {}): use --network {}",
                n.name, n.config.driver, n.name
            )));
        }
        if !r.ipv4_address.is_empty() {
            if n.is_default_bridge() {
                return Err(EngineError::InvalidArgument(
                    "user specified IP address is supported on user defined networks only".into(),
                ));
            }
            let ip: Ipv4Addr = r.ipv4_address.parse().map_err(|_| {
                EngineError::InvalidArgument(format!("invalid IPv4 address: {}", r.ipv4_address))
            })?;
            let subnet = n.subnet()?;
            let mut reserved: HashSet<Ipv4Addr> =
                store::endpoints_of_network(self.engine.db().conn(), &n.id)?
                    .iter()
                    .filter_map(|e| e.state.as_ref())
                    .filter_map(|s| s.ip.parse().ok())
                    .collect();
            reserved.insert(n.gateway()?);
            ipam::check_address(&subnet, ip, &reserved).map_err(|e| {
                EngineError::InvalidArgument(format!(
                    "invalid address {ip} for network {}: {e}",
                    n.name
                ))
            })?;
        }
        super::ipv6::check_request(self.engine.db().conn(), n, r)?;
        if !r.mac_address.is_empty() && Mac::parse(&r.mac_address).is_none() {
            return Err(EngineError::InvalidArgument(format!(
                "{} is not a valid mac address",
                r.mac_address
            )));
        }
        if n.is_default_bridge() && !r.aliases.is_empty() {
            return Err(EngineError::InvalidArgument(
                "network-scoped aliases are only supported for user-defined networks".into(),
            ));
        }
        Ok(())
    }

    /// The container's endpoints.
    pub fn endpoints(&self, container_id: &str) -> Result<Vec<Endpoint>, EngineError> {
        store::endpoints_of_container(self.engine.db().conn(), container_id)
    }

    /// Makes the container's network at start: returns the namespace to
    /// join, `None` when it has no endpoints (host, none, container:).
    /// On failure everything made so far is removed again.
    pub(crate) fn attach_container(
        &self,
        rec: &ContainerRecord,
    ) -> Result<Option<PathBuf>, EngineError> {
        let eps = self.endpoints(&rec.id)?;
        if eps.is_empty() {
            return Ok(None);
        }
        let t0 = std::time::Instant::now();
        // Left over from a start that died half-way.
        if eps.iter().any(|e| e.state.is_some()) || self.netns_path(&rec.id).exists() {
            self.detach_container(&rec.id);
        }
        let path = self.netns_path(&rec.id);
        let result = (|| -> Result<(), EngineError> {
            let ns = Netns::create(&path)?;
            for ep in &eps {
                self.attach_endpoint(rec, &ns, ep)?;
            }
            self.publish_ports(rec)?;
            for ep in eps.iter().filter(|e| e.network.has_dns()) {
                self.sync_dns(&ep.network)?;
            }
            Ok(())
        })();
        tracing::debug!("container {}: network set up in {:?}", rec.id, t0.elapsed());
        match result {
            Ok(()) => Ok(Some(path)),
            Err(e) => {
                self.detach_container(&rec.id);
                Err(e)
            }
        }
    }

    /// One endpoint: address, links, route.
    fn attach_endpoint(
        &self,
        rec: &ContainerRecord,
        ns: &Netns,
        ep: &Endpoint,
    ) -> Result<(), EngineError> {
        let n = &ep.network;
        // A bridge missing here was lost with the host's state (a reboot,
        // `network reset`): its masquerade and isolation rules went with it.
        // Under the network lock, which `network reset` holds: a reset never
        // runs between making the bridge, giving it its address and its rules.
        {
            let _lock = self.lock()?;
            if self.setup_host(n)? {
                self.sync_firewall_locked()?;
            }
        }
        let subnet = n.subnet()?;
        let gateway = n.gateway()?;
        let state = {
            let mut db = self.engine.db();
            let tx = db.write()?;
            let mut used: HashSet<Ipv4Addr> = store::used_addresses(&tx, &n.id)?
                .iter()
                .filter_map(|s| s.parse().ok())
                .collect();
            used.insert(gateway);
            let ip = if ep.request.ipv4_address.is_empty() {
                ipam::pick_address(&subnet, n.ip_range().as_ref(), &used).ok_or_else(|| {
                    EngineError::Conflict(format!(
                        "no available IPv4 addresses on network {}: all of {} are in use",
                        n.name,
                        n.ip_range().unwrap_or(subnet)
                    ))
                })?
            } else {
                let ip: Ipv4Addr = ep.request.ipv4_address.parse().map_err(|_| {
                    EngineError::InvalidArgument(format!(
                        "invalid IPv4 address: {}",
                        ep.request.ipv4_address
                    ))
                })?;
                ipam::check_address(&subnet, ip, &used).map_err(|e| match e {
                    berth_net::NetError::Conflict(_) => EngineError::Conflict(format!(
                        "address {ip} is already in use on network {}",
                        n.name
                    )),
                    other => other.into(),
                })?;
                ip
            };
            let v6 = super::ipv6::allocate(&tx, n, &ep.request)?;
            let mac = match Mac::parse(&ep.request.mac_address) {
                Some(m) => m,
                None => Mac::from_ipv4(ip),
            };
            let state = EndpointState {
                endpoint_id: crate::containers::defaults::names::new_container_id(),
                ip: ip.to_string(),
                prefix: subnet.prefix,
                gateway: gateway.to_string(),
                ip6: v6.map(|(ip, _, _)| ip.to_string()).unwrap_or_default(),
                prefix6: v6.map_or(0, |(_, p, _)| p),
                gateway6: v6.map(|(_, _, g)| g.to_string()).unwrap_or_default(),
                mac: mac.to_string(),
                host_link: if n.is_bridge() {
                    format!("bth{}{:x}", &rec.id[..8], ep.position)
                } else {
                    String::new()
                },
                ifname: format!("eth{}", ep.position),
            };
            store::set_endpoint_state(&tx, &rec.id, &n.id, Some(&state))?;
            tx.commit()
                .map_err(|e| EngineError::db("committing an endpoint", e))?;
            state
        };
        let ip: Ipv4Addr = state.ip.parse().unwrap_or(Ipv4Addr::UNSPECIFIED);
        let mac = Mac::parse(&state.mac);
        let mut nl = Netlink::open()?;
        if n.is_bridge() {
            let br = link_index(&n.config.host_link).ok_or_else(|| {
                EngineError::Corrupt(format!(
                    "bridge {} of network {} is missing",
                    n.config.host_link, n.name
                ))
            })?;
            let make = |nl: &mut Netlink| {
                nl.create_veth(
                    &state.host_link,
                    Some(br),
                    &state.ifname,
                    ns.fd(),
                    mac,
                    None,
                )
            };
            match make(&mut nl) {
                // The pair of this container's previous run, still being
                // destroyed with its old namespace (see detach_container).
                Err(e) if e.errno() == Some(libc::EEXIST) => {
                    nl.delete_link(&state.host_link)?;
                    make(&mut nl)?;
                }
                other => other?,
            }
            if let Some(idx) = link_index(&state.host_link) {
                nl.set_hairpin(idx, true)?;
            }
        } else {
            let parent = link_index(&n.config.host_link).ok_or_else(|| {
                EngineError::InvalidArgument(format!(
                    "parent interface {} of network {} is missing",
                    n.config.host_link, n.name
                ))
            })?;
            nl.create_macvlan(&state.ifname, parent, ns.fd(), mac)?;
        }
        let default_route = ep.position == 0 && !n.config.internal;
        let ifname = state.ifname.clone();
        let prefix = state.prefix;
        let v6: Option<(Ipv6Addr, u8, Ipv6Addr)> = match (
            state.ip6.parse::<Ipv6Addr>(),
            state.gateway6.parse::<Ipv6Addr>(),
        ) {
            (Ok(ip6), Ok(gw6)) => Some((ip6, state.prefix6, gw6)),
            _ => None,
        };
        ns.run(move || -> Result<(), berth_net::NetError> {
            let mut nl = Netlink::open()?;
            let idx = link_index(&ifname).ok_or_else(|| {
                berth_net::NetError::Invalid(format!(
                    "{ifname} missing in the container's namespace"
                ))
            })?;
            nl.add_address(idx, IpAddr::V4(ip), prefix)?;
            if let Some((ip6, prefix6, _)) = v6 {
                // The address has IFA_F_NODAD; this spares the link-local
                // address made when the link comes up its DAD wait too.
                berth_net::netns::sysctl(&format!("net/ipv6/conf/{ifname}/accept_dad"), "0")?;
                nl.add_address(idx, IpAddr::V6(ip6), prefix6)?;
            }
            nl.set_up(idx, true)?;
            if default_route {
                nl.add_route(None, Some(IpAddr::V4(gateway)), None)?;
                if let Some((_, _, gw6)) = v6 {
                    nl.add_route(None, Some(IpAddr::V6(gw6)), Some(idx))?;
                }
            }
            Ok(())
        })??;
        Ok(())
    }

    /// Removes the container's network (links, addresses, published ports,
    /// its names in berth-dns, the namespace). Idempotent; failures are
    /// logged and the rest still happens.
    pub(crate) fn detach_container(&self, container_id: &str) {
        let t0 = std::time::Instant::now();
        let eps = match self.endpoints(container_id) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!("container {container_id}: reading endpoints: {e}");
                Vec::new()
            }
        };
        // The links are not deleted one by one: deleting a veth waits for an
        // RCU grace period (~20 ms here, on every `run --rm`'s path), while
        // unpinning the namespace (below; its processes are gone) makes the
        // kernel destroy it with every link in it, and so each veth pair,
        // in the background. Only when no namespace is pinned (a reboot, a
        // crash before it was made) are leftover host links deleted here.
        let pinned = self.netns_path(container_id).exists();
        let has_host_links = eps
            .iter()
            .any(|e| e.state.as_ref().is_some_and(|s| !s.host_link.is_empty()));
        let mut nl = if pinned || !has_host_links {
            None
        } else {
            Netlink::open().ok()
        };
        let mut dns_networks = Vec::new();
        for ep in eps.iter().filter(|e| e.state.is_some()) {
            if let (Some(nl), Some(s)) = (nl.as_mut(), &ep.state) {
                if !s.host_link.is_empty() {
                    if let Err(e) = nl.delete_link(&s.host_link) {
                        tracing::warn!("container {container_id}: {e}");
                    }
                }
            }
            if let Err(e) = self.clear_endpoint(container_id, &ep.network.id) {
                tracing::warn!("container {container_id}: {e}");
            }
            if ep.network.has_dns() {
                dns_networks.push(ep.network.clone());
            }
        }
        let had_ports = !store::published_ports(self.engine.db().conn(), container_id)
            .unwrap_or_default()
            .is_empty();
        if had_ports {
            let cleared = (|| {
                let mut db = self.engine.db();
                let tx = db.write()?;
                store::set_published_ports(&tx, container_id, None)?;
                tx.commit()
                    .map_err(|e| EngineError::db("committing published ports", e))
            })();
            if let Err(e) = cleared.and_then(|()| self.sync_firewall()) {
                tracing::warn!("container {container_id}: removing its published ports: {e}");
            }
        }
        if let Err(e) = Netns::remove(&self.netns_path(container_id)) {
            tracing::warn!("container {container_id}: {e}");
        }
        for n in dns_networks {
            if let Err(e) = self.sync_dns(&n) {
                tracing::warn!("network {}: updating berth-dns: {e}", n.name);
            }
        }
        tracing::debug!(
            "container {container_id}: network torn down in {:?}",
            t0.elapsed()
        );
    }

    fn clear_endpoint(&self, container_id: &str, network_id: &str) -> Result<(), EngineError> {
        let mut db = self.engine.db();
        let tx = db.write()?;
        store::set_endpoint_state(&tx, container_id, network_id, None)?;
        tx.commit()
            .map_err(|e| EngineError::db("committing an endpoint", e))
    }

    /// `network connect`: a created container gets the endpoint at its
    /// next start, a running one now.
    pub fn connect(
        &self,
        network: &str,
        container: &str,
        mut req: EndpointRequest,
    ) -> Result<(), EngineError> {
        let rec = self.engine.containers().get(container)?;
        let n = self.get(network)?;
        let mode = crate::containers::network_mode(&rec);
        if !mode_uses_network(&mode) {
            return Err(EngineError::Conflict(format!(
                "container sharing network namespace with another container or host cannot be connected to any other network (network mode {mode})"
            )));
        }
        req.network = n.name.clone();
        self.check_request(&n, &req)?;
        let eps = self.endpoints(&rec.id)?;
        if eps.iter().any(|e| e.network.id == n.id) {
            return Err(EngineError::Conflict(format!(
                "endpoint with name {} already exists in network {}",
                rec.name, n.name
            )));
        }
        let position = eps.iter().map(|e| e.position + 1).max().unwrap_or(0);
        {
            let mut db = self.engine.db();
            let tx = db.write()?;
            store::insert_endpoint(&tx, &rec.id, &n.id, position, &req)?;
            tx.commit()
                .map_err(|e| EngineError::db("committing an endpoint", e))?;
        }
        if rec.status.is_active() {
            let ep = self
                .endpoints(&rec.id)?
                .into_iter()
                .find(|e| e.network.id == n.id)
                .ok_or_else(|| EngineError::Corrupt("an endpoint vanished".into()))?;
            let done = Netns::open(&self.netns_path(&rec.id))
                .map_err(EngineError::from)
                .and_then(|ns| self.attach_endpoint(&rec, &ns, &ep))
                .and_then(|()| {
                    if n.has_dns() {
                        self.sync_dns(&n)
                    } else {
                        Ok(())
                    }
                });
            if let Err(e) = done {
                self.drop_endpoint(&rec.id, &ep);
                return Err(e);
            }
        }
        self.network_event_with(&n, "connect", &rec.id);
        Ok(())
    }

    /// `network disconnect`.
    pub fn disconnect(&self, network: &str, container: &str) -> Result<(), EngineError> {
        let rec = self.engine.containers().get(container)?;
        let n = self.get(network)?;
        let ep = self
            .endpoints(&rec.id)?
            .into_iter()
            .find(|e| e.network.id == n.id)
            .ok_or_else(|| {
                EngineError::Conflict(format!(
                    "container {} is not connected to network {}",
                    rec.id, n.name
                ))
            })?;
        self.drop_endpoint(&rec.id, &ep);
        if n.has_dns() {
            self.sync_dns(&n)?;
        }
        self.network_event_with(&n, "disconnect", &rec.id);
        Ok(())
    }

    /// Removes one endpoint: its link (the container side goes with the
    /// veth pair; a macvlan is deleted inside the namespace) and its row.
    fn drop_endpoint(&self, container_id: &str, ep: &Endpoint) {
        if let Some(s) = &ep.state {
            let gone = if s.host_link.is_empty() {
                Netns::open(&self.netns_path(container_id)).and_then(|ns| {
                    let ifname = s.ifname.clone();
                    ns.run(move || Netlink::open().and_then(|mut nl| nl.delete_link(&ifname)))?
                })
            } else {
                Netlink::open().and_then(|mut nl| nl.delete_link(&s.host_link))
            };
            if let Err(e) = gone {
                tracing::warn!("container {container_id}: {e}");
            }
        }
        let removed = (|| {
            let mut db = self.engine.db();
            let tx = db.write()?;
            store::delete_endpoint(&tx, container_id, &ep.network.id)?;
            tx.commit()
                .map_err(|e| EngineError::db("committing an endpoint removal", e))
        })();
        if let Err(e) = removed {
            tracing::warn!("container {container_id}: {e}");
        }
    }

    /// The /etc inputs of a container: its addresses, the kind of name
    /// service, `--link` lines.
    pub fn etc_inputs(&self, rec: &ContainerRecord) -> Result<NetEtc, EngineError> {
        let mode = crate::containers::network_mode(rec);
        // Only `--add-host NAME:host-gateway` needs the default bridge's
        // gateway: looking it up makes that bridge (on a root's first
        // container), which a `--network none` container has no use for.
        let wants_gateway = rec
            .host_config
            .extra_hosts
            .iter()
            .flatten()
            .any(|h| h.contains(crate::containers::defaults::etc_files::HOST_GATEWAY));
        let host_gateway = wants_gateway
            .then(|| self.get(super::DEFAULT_NETWORK).ok())
            .flatten()
            .and_then(|n| n.gateway().ok())
            .map(IpAddr::V4)
            .into_iter()
            .collect();
        if mode == "host" {
            return Ok(NetEtc {
                network: EtcNetwork::Host,
                ips: Vec::new(),
                links: Vec::new(),
                host_gateway,
            });
        }
        if !mode_uses_network(&mode) {
            return Ok(NetEtc {
                network: EtcNetwork::None,
                ips: Vec::new(),
                links: Vec::new(),
                host_gateway,
            });
        }
        let eps = self.endpoints(&rec.id)?;
        let ips: Vec<IpAddr> = eps
            .iter()
            .filter_map(|e| e.state.as_ref())
            .flat_map(|s| [s.ip.parse().ok(), s.ip6.parse().ok()])
            .flatten()
            .collect();
        // Without an IPv6 network, IPv6 resolvers are unreachable from the
        // container and the hosts file leaves out the IPv6 lines.
        let ipv6 = eps
            .first()
            .is_some_and(|e| e.network.ipv6().ok().flatten().is_some());
        let network = match eps.first() {
            Some(e) if e.network.has_dns() && super::dns::binary().is_some() => {
                match e.network.gateway() {
                    Ok(g) => EtcNetwork::EmbeddedDns {
                        resolver: IpAddr::V4(g),
                        ipv6,
                    },
                    Err(_) => EtcNetwork::Private { ipv6 },
                }
            }
            _ => EtcNetwork::Private { ipv6 },
        };
        let links = self.link_entries(rec)?;
        Ok(NetEtc {
            network,
            ips,
            links,
            host_gateway,
        })
    }
}
