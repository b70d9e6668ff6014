//! IPv6 on user networks (`network create --ipv6`): validating and picking
//! the subnet (a unique local /64 when none is given, as Docker 27+ does),
//! the bridge's IPv6 side, and each endpoint's IPv6 address.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv6Addr};

use berth_net::{ipam6, Ipv6Net, Netlink};

use super::model::{EndpointRequest, NetworkRecord};
use super::{store, NetworkCreateRequest};
use crate::containers::defaults::names;
use crate::error::EngineError;

/// What `network create` settles for IPv6.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Ipv6Plan {
    pub subnet: Ipv6Net,
    pub gateway: Ipv6Addr,
    pub ip_range: Option<Ipv6Net>,
}

fn parse_net(what: &str, s: &str) -> Result<Ipv6Net, EngineError> {
    s.parse::<Ipv6Net>().map_err(|_| {
        EngineError::InvalidArgument(format!(
            "invalid {what} {s}: expected an IPv6 CIDR such as 2001:db8:1::/64"
        ))
    })
}

/// Whether the host has IPv6 at all (the module loaded, not disabled).
fn host_has_ipv6() -> bool {
    std::fs::read_to_string("/proc/sys/net/ipv6/conf/all/disable_ipv6")
        .is_ok_and(|v| v.trim() == "0")
}

/// Validates the IPv6 part of `network create` and picks what was not
/// given. `others` are the host's other berth networks (every root's
/// bridges are host routes as well).
pub(super) fn plan(
    req: &NetworkCreateRequest,
    driver: &str,
    others: &[NetworkRecord],
) -> Result<Option<Ipv6Plan>, EngineError> {
    if !req.ipv6 {
        if let Some(s) = req
            .subnet6
            .as_ref()
            .or(req.gateway6.as_ref())
            .or(req.ip_range6.as_ref())
        {
            return Err(EngineError::InvalidArgument(format!(
                "IPv6 address {s} given but IPv6 is not enabled on the network: add --ipv6"
            )));
        }
        return Ok(None);
    }
    if !host_has_ipv6() {
        return Err(EngineError::InvalidArgument(
            "cannot enable IPv6: IPv6 is disabled on this host (net.ipv6.conf.all.disable_ipv6=1 or no ipv6 module): create the network without --ipv6".into(),
        ));
    }
    if req.subnet6.is_none() && (req.gateway6.is_some() || req.ip_range6.is_some()) {
        return Err(EngineError::InvalidArgument(
            "every IPv6 ip-range or gateway must have a corresponding IPv6 subnet: add --subnet"
                .into(),
        ));
    }
    let other_subnets: Vec<(String, Ipv6Net)> = others
        .iter()
        .filter_map(|n| {
            n.ipv6()
                .ok()
                .flatten()
                .map(|(s, _)| (n.name.clone(), s.network()))
        })
        .collect();
    let subnet = match &req.subnet6 {
        Some(s) => super::host::check_requested_subnet(
            s,
            parse_net("subnet", s)?.network(),
            126,
            &other_subnets,
            (driver == "bridge").then(ipam6::host_routes),
            "IPv6 --subnet",
        )?,
        None if driver != "bridge" => {
            return Err(EngineError::InvalidArgument(format!(
                "a {driver} network with --ipv6 needs an IPv6 --subnet (and --gateway) of the parent's LAN"
            )))
        }
        None => {
            let mut used = ipam6::host_routes();
            used.extend(other_subnets.iter().map(|(_, s)| *s));
            pick_ula(&used)?
        }
    };
    let gateway = match &req.gateway6 {
        Some(g) => {
            let ip: Ipv6Addr = g.parse().map_err(|_| {
                EngineError::InvalidArgument(format!("invalid gateway {g}: not an IPv6 address"))
            })?;
            if !subnet.contains(ip) || ip == subnet.addr {
                return Err(EngineError::InvalidArgument(format!(
                    "no matching subnet for gateway {ip}: it must be a host address of {subnet}"
                )));
            }
            ip
        }
        None => subnet
            .nth(1)
            .ok_or_else(|| EngineError::InvalidArgument(format!("subnet {subnet} is too small")))?,
    };
    let ip_range = match &req.ip_range6 {
        Some(r) => {
            let range = parse_net("ip-range", r)?.network();
            if !subnet.covers(&range) {
                return Err(EngineError::InvalidArgument(format!(
                    "invalid ip-range {range}: it must lie inside subnet {subnet}"
                )));
            }
            Some(range)
        }
        None => None,
    };
    Ok(Some(Ipv6Plan {
        subnet,
        gateway,
        ip_range,
    }))
}

/// A random unique local /64 (RFC 4193: a random 40-bit global ID) that
/// overlaps no route and no other network.
fn pick_ula(used: &[Ipv6Net]) -> Result<Ipv6Net, EngineError> {
    let ids = (0..32).filter_map(|_| {
        let hex = names::new_container_id();
        u64::from_str_radix(hex.get(..10)?, 16).ok()
    });
    ipam6::pick_ula_subnet(ids, used).ok_or_else(|| {
        EngineError::Conflict(
            "could not find an available, non-overlapping IPv6 address pool (fd00::/8) to assign to the network: pass an IPv6 --subnet".into(),
        )
    })
}

/// The bridge's IPv6 side: its gateway address (no DAD: usable at once)
/// and forwarding. `net.ipv6.conf.all.forwarding=1` is what Docker sets as
/// well; it makes the kernel ignore router advertisements on interfaces
/// with `accept_ra=1`, so a host that configures itself from RAs needs
/// `accept_ra=2` on its uplink.
pub(super) fn setup_bridge(
    nl: &mut Netlink,
    n: &NetworkRecord,
    bridge_index: u32,
) -> Result<(), EngineError> {
    let Some((subnet, gateway)) = n.ipv6()? else {
        return Ok(());
    };
    let br = &n.config.host_link;
    berth_net::netns::sysctl(&format!("net/ipv6/conf/{br}/disable_ipv6"), "0")?;
    nl.add_address(bridge_index, IpAddr::V6(gateway), subnet.prefix)?;
    berth_net::netns::sysctl("net/ipv6/conf/all/forwarding", "1")?;
    Ok(())
}

/// An endpoint's IPv6 address, prefix and gateway (`None` on a network
/// without IPv6): the requested `--ip6`, checked, or the first free one.
/// Runs inside the endpoint's write transaction.
pub(super) fn allocate(
    tx: &rusqlite::Transaction<'_>,
    n: &NetworkRecord,
    request: &EndpointRequest,
) -> Result<Option<(Ipv6Addr, u8, Ipv6Addr)>, EngineError> {
    let Some((subnet, gateway)) = n.ipv6()? else {
        return Ok(None);
    };
    let mut used: HashSet<Ipv6Addr> = store::endpoints_of_network(tx, &n.id)?
        .iter()
        .filter_map(|e| e.state.as_ref())
        .filter_map(|s| s.ip6.parse().ok())
        .collect();
    used.insert(gateway);
    let ip = if request.ipv6_address.is_empty() {
        ipam6::pick_address(&subnet, n.ip_range6().as_ref(), &used).ok_or_else(|| {
            EngineError::Conflict(format!(
                "no available IPv6 addresses on network {}: all of {} are in use",
                n.name,
                n.ip_range6().unwrap_or(subnet)
            ))
        })?
    } else {
        let ip = parse_requested(&request.ipv6_address)?;
        ipam6::check_address(&subnet, ip, &used).map_err(|e| match e {
            berth_net::NetError::Conflict(_) => EngineError::Conflict(format!(
                "address {ip} is already in use on network {}",
                n.name
            )),
            other => other.into(),
        })?;
        ip
    };
    Ok(Some((ip, subnet.prefix, gateway)))
}

fn parse_requested(s: &str) -> Result<Ipv6Addr, EngineError> {
    s.parse()
        .map_err(|_| EngineError::InvalidArgument(format!("invalid IPv6 address: {s}")))
}

/// `--ip6` at create/connect: the network must have IPv6 and the address
/// must lie in its subnet and be free.
pub(super) fn check_request(
    conn: &rusqlite::Connection,
    n: &NetworkRecord,
    r: &EndpointRequest,
) -> Result<(), EngineError> {
    if r.ipv6_address.is_empty() {
        return Ok(());
    }
    if n.is_default_bridge() {
        return Err(EngineError::InvalidArgument(
            "user specified IP address is supported on user defined networks only".into(),
        ));
    }
    let ip = parse_requested(&r.ipv6_address)?;
    let Some((subnet, gateway)) = n.ipv6()? else {
        return Err(EngineError::InvalidArgument(format!(
            "invalid address {ip}: network {} has no IPv6 subnet (create it with --ipv6)",
            n.name
        )));
    };
    let mut reserved: HashSet<Ipv6Addr> = store::endpoints_of_network(conn, &n.id)?
        .iter()
        .filter_map(|e| e.state.as_ref())
        .filter_map(|s| s.ip6.parse().ok())
        .collect();
    reserved.insert(gateway);
    ipam6::check_address(&subnet, ip, &reserved).map_err(|e| {
        EngineError::InvalidArgument(format!("invalid address {ip} for network {}: {e}", n.name))
    })
}
