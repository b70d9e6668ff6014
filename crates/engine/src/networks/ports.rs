//! Publishing ports: `-p` bindings and `-P` (every EXPOSEd port) resolved
//! to host ports — ephemeral ones picked from the kernel's local port range,
//! every one checked against other containers' and bind-tested against the
//! host's sockets — then recorded and turned into DNAT rules.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};

use berth_net::Proto;

use super::model::PublishedPort;
use super::{store, NetworkService};
use crate::containers::model::{HostConfig, PortBinding};
use crate::containers::ContainerRecord;
use crate::error::EngineError;

/// One wanted binding: container port/proto, host ip, host port range
/// (`(0, 0)` = any ephemeral port).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Wanted {
    container_port: u16,
    proto: Proto,
    host_ip: Option<Ipv4Addr>,
    range: (u16, u16),
}

fn wanted(
    bindings: &BTreeMap<String, Vec<PortBinding>>,
    exposed: Option<&BTreeMap<String, crate::containers::model::Empty>>,
    publish_all: bool,
) -> Result<Vec<Wanted>, EngineError> {
    let mut all: BTreeMap<String, Vec<PortBinding>> = bindings.clone();
    if publish_all {
        for key in exposed.into_iter().flat_map(|e| e.keys()) {
            all.entry(key.clone())
                .or_insert_with(|| vec![PortBinding::default()]);
        }
    }
    let mut out = Vec::new();
    for (key, list) in &all {
        let (port, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
        let proto = Proto::parse(proto).ok_or_else(|| {
            EngineError::InvalidArgument(format!(
                "invalid protocol {proto} in port {key}: berth publishes tcp and udp"
            ))
        })?;
        let container_port: u16 = port
            .parse()
            .map_err(|_| EngineError::InvalidArgument(format!("invalid container port {key}")))?;
        for b in list {
            let host_ip = match b.host_ip.as_str() {
                "" | "0.0.0.0" => None,
                // `[::]`: every address; a container on an `--ipv6` network
                // gets the IPv6 rules as well (`berth_net::firewall`).
                "::" => None,
                ip => Some(ip.parse::<Ipv4Addr>().map_err(|_| {
                    EngineError::InvalidArgument(format!(
                        "invalid host IP {ip} for port {key}: berth publishes on IPv4 addresses"
                    ))
                })?),
            };
            let range = match b.host_port.as_str() {
                "" | "0" => (0, 0),
                p => match p.split_once('-') {
                    Some((a, z)) => (parse_port(a, key)?, parse_port(z, key)?),
                    None => {
                        let n = parse_port(p, key)?;
                        (n, n)
                    }
                },
            };
            out.push(Wanted {
                container_port,
                proto,
                host_ip,
                range,
            });
        }
    }
    Ok(out)
}

fn parse_port(s: &str, key: &str) -> Result<u16, EngineError> {
    s.parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| EngineError::InvalidArgument(format!("invalid host port {s} for {key}")))
}

/// Whether `port` can be bound on the host for `proto` at `ip`; for every
/// address (`None`) on IPv6 too (ports are DNAT'ed over IPv6 for
/// containers on `--ipv6` networks), where a host without IPv6 is fine.
fn bindable(proto: Proto, ip: Option<Ipv4Addr>, port: u16) -> Result<(), std::io::Error> {
    let bind = |addr: SocketAddr| match proto {
        Proto::Tcp => TcpListener::bind(addr).map(drop),
        Proto::Udp => UdpSocket::bind(addr).map(drop),
    };
    bind(SocketAddr::from((
        ip.unwrap_or(Ipv4Addr::UNSPECIFIED),
        port,
    )))?;
    if ip.is_none() {
        match bind(SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port))) {
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

fn local_port_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().filter_map(|p| p.parse::<u16>().ok());
            Some((it.next()?, it.next()?))
        })
        .unwrap_or((32768, 60999))
}

fn overlaps(a: &Option<Ipv4Addr>, b: &str) -> bool {
    let b: Option<Ipv4Addr> = match b {
        "" | "0.0.0.0" => None,
        s => s.parse().ok(),
    };
    a.is_none() || b.is_none() || *a == b
}

fn host_ip_text(ip: Option<Ipv4Addr>) -> String {
    ip.map_or_else(|| "0.0.0.0".to_string(), |i| i.to_string())
}

impl NetworkService<'_> {
    /// Checks a new container's fixed host ports before it is created:
    /// taken by another container or by a host socket → one clear error.
    pub(crate) fn check_ports(&self, host: &HostConfig) -> Result<(), EngineError> {
        let wanted = wanted(&host.port_bindings, None, false)?;
        if wanted.is_empty() {
            return Ok(());
        }
        let taken = store::all_published_ports(self.engine.db().conn())?;
        for w in wanted {
            if w.range.0 != w.range.1 || w.range.0 == 0 {
                continue;
            }
            self.check_one(&w, w.range.0, &taken, "")?;
        }
        Ok(())
    }

    fn check_one(
        &self,
        w: &Wanted,
        port: u16,
        taken: &[(String, Vec<PublishedPort>)],
        own_id: &str,
    ) -> Result<(), EngineError> {
        let ip = host_ip_text(w.host_ip);
        let by_container = taken.iter().any(|(id, ports)| {
            id != own_id
                && ports.iter().any(|p| {
                    p.host_port == port
                        && p.proto == w.proto.as_str()
                        && overlaps(&w.host_ip, &p.host_ip)
                })
        });
        if by_container {
            return Err(EngineError::Conflict(format!(
                "Bind for {ip}:{port} failed: port is already allocated (published by another container)"
            )));
        }
        if let Err(e) = bindable(w.proto, w.host_ip, port) {
            return Err(EngineError::Conflict(format!(
                "failed to bind host port for {ip}:{port}/{}: {e}: another program uses it; pick another host port",
                w.proto.as_str()
            )));
        }
        Ok(())
    }

    /// Resolves and records the container's published ports and rewrites
    /// the firewall (only when it publishes any: a plain container costs
    /// no nft run).
    pub(super) fn publish_ports(&self, rec: &ContainerRecord) -> Result<(), EngineError> {
        let h = &rec.host_config;
        let wanted = wanted(
            &h.port_bindings,
            rec.config.exposed_ports.as_ref(),
            h.publish_all_ports,
        )?;
        if wanted.is_empty() {
            return Ok(());
        }
        let _lock = self.lock()?;
        let taken = store::all_published_ports(self.engine.db().conn())?;
        let mut chosen: Vec<PublishedPort> = Vec::new();
        let (lo, hi) = local_port_range();
        for w in &wanted {
            let (from, to) = if w.range.0 == 0 { (lo, hi) } else { w.range };
            // Ephemeral ports start at a random point so that two quick
            // runs do not race for the same one.
            let span = u32::from(to - from) + 1;
            let start = if w.range.0 == 0 {
                rand::random::<u32>() % span
            } else {
                0
            };
            let mut last_err = None;
            let mut found = None;
            for i in 0..span {
                let port = from + u16::try_from((start + i) % span).unwrap_or(0);
                let mine = chosen.iter().any(|p| {
                    p.host_port == port
                        && p.proto == w.proto.as_str()
                        && overlaps(&w.host_ip, &p.host_ip)
                });
                if mine {
                    continue;
                }
                match self.check_one(w, port, &taken, &rec.id) {
                    Ok(()) => {
                        found = Some(port);
                        break;
                    }
                    Err(e) => last_err = Some(e),
                }
            }
            let port = match (found, last_err) {
                (Some(p), _) => p,
                (None, Some(e)) => return Err(e),
                (None, None) => {
                    return Err(EngineError::Conflict(format!(
                        "no free host port in {from}-{to} for {}/{}",
                        w.container_port,
                        w.proto.as_str()
                    )))
                }
            };
            chosen.push(PublishedPort {
                container_port: w.container_port,
                proto: w.proto.as_str().into(),
                host_ip: host_ip_text(w.host_ip),
                host_port: port,
            });
        }
        {
            let mut db = self.engine.db();
            let tx = db.write()?;
            store::set_published_ports(&tx, &rec.id, Some(&chosen))?;
            tx.commit()
                .map_err(|e| EngineError::db("committing published ports", e))?;
        }
        self.sync_firewall_locked()
    }

    /// The container's published ports (empty when it is not running).
    pub fn published_ports(&self, container_id: &str) -> Result<Vec<PublishedPort>, EngineError> {
        store::published_ports(self.engine.db().conn(), container_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wanted_from_bindings_and_exposed() {
        let mut b = BTreeMap::new();
        b.insert(
            "80/tcp".to_string(),
            vec![PortBinding {
                host_ip: "127.0.0.1".into(),
                host_port: "8080".into(),
            }],
        );
        b.insert(
            "53/udp".to_string(),
            vec![PortBinding {
                host_ip: String::new(),
                host_port: "5000-5010".into(),
            }],
        );
        let mut exposed = BTreeMap::new();
        exposed.insert("443/tcp".to_string(), crate::containers::model::Empty {});
        exposed.insert("80/tcp".to_string(), crate::containers::model::Empty {});
        let w = wanted(&b, Some(&exposed), true).unwrap();
        assert_eq!(w.len(), 3);
        assert!(w.contains(&Wanted {
            container_port: 80,
            proto: Proto::Tcp,
            host_ip: Some(Ipv4Addr::LOCALHOST),
            range: (8080, 8080)
        }));
        assert!(w.contains(&Wanted {
            container_port: 53,
            proto: Proto::Udp,
            host_ip: None,
            range: (5000, 5010)
        }));
        assert!(w.contains(&Wanted {
            container_port: 443,
            proto: Proto::Tcp,
            host_ip: None,
            range: (0, 0)
        }));
        assert!(overlaps(&None, "127.0.0.1"));
        assert!(!overlaps(&Some(Ipv4Addr::LOCALHOST), "10.0.0.1"));
    }
}
