//! What the server knows: the names and addresses of every network, indexed
//! for the two questions it answers locally (name → addresses, address →
//! name), and which network a listen address belongs to.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};

use crate::config::{normalize_name, parse_upstream, NetworkDns};

/// One network as the server sees it.
#[derive(Debug, Default)]
pub struct NetworkView {
    pub name: String,
    /// Normalized name → addresses, in record order (several containers may
    /// share an alias: all of them are answered, like Docker).
    by_name: HashMap<String, Vec<IpAddr>>,
    /// Address → the container's name (the first name of its record).
    by_ip: HashMap<IpAddr, String>,
    /// Address → container id, for records that carry one.
    container_by_ip: HashMap<IpAddr, String>,
    containers: HashSet<String>,
    /// Normalized search domains.
    search: Vec<String>,
    /// Parsed upstreams; empty means the host's resolv.conf.
    pub upstreams: Vec<SocketAddr>,
}

impl NetworkView {
    fn new(cfg: &NetworkDns) -> Self {
        let mut view = NetworkView {
            name: cfg.network.clone(),
            search: cfg.search.iter().map(|s| normalize_name(s)).collect(),
            upstreams: cfg
                .upstreams
                .iter()
                .filter_map(|u| parse_upstream(u))
                .collect(),
            ..Default::default()
        };
        for record in &cfg.records {
            for name in &record.names {
                let addrs = view.by_name.entry(normalize_name(name)).or_default();
                for ip in &record.ip {
                    if !addrs.contains(ip) {
                        addrs.push(*ip);
                    }
                }
            }
            if let Some(first) = record.names.first() {
                for ip in &record.ip {
                    view.by_ip
                        .entry(*ip)
                        .or_insert_with(|| normalize_name(first));
                }
            }
            if let Some(id) = &record.container {
                view.containers.insert(id.clone());
                for ip in &record.ip {
                    view.container_by_ip.insert(*ip, id.clone());
                }
            }
        }
        view
    }

    /// The addresses of `name` (normalized) on this network: a container
    /// name or alias as such, qualified with the network's name
    /// (`web.mynet`, as Docker resolves it), or with a search domain.
    fn resolve(&self, name: &str) -> Option<&[IpAddr]> {
        if let Some(addrs) = self.by_name.get(name) {
            return Some(addrs);
        }
        let network_suffix = self.name.to_ascii_lowercase();
        std::iter::once(network_suffix.as_str())
            .chain(self.search.iter().map(String::as_str))
            .find_map(|domain| {
                let short = name.strip_suffix(domain)?.strip_suffix('.')?;
                self.by_name.get(short).map(Vec::as_slice)
            })
    }
}

/// The answer for a name found locally.
#[derive(Debug, PartialEq, Eq)]
pub struct Found<'a> {
    pub network: &'a str,
    pub addrs: &'a [IpAddr],
}

/// All networks, and which one each listen address serves.
#[derive(Debug, Default)]
pub struct Catalog {
    networks: Vec<NetworkView>,
    by_listen: HashMap<IpAddr, usize>,
}

impl Catalog {
    /// Builds the catalog; a listen address claimed by two networks goes to
    /// the first, and the conflict is returned as a problem.
    pub fn new(configs: &[NetworkDns]) -> (Self, Vec<String>) {
        let mut catalog = Catalog::default();
        let mut problems = Vec::new();
        for cfg in configs {
            let index = catalog.networks.len();
            catalog.networks.push(NetworkView::new(cfg));
            for ip in &cfg.listen {
                if let Some(&other) = catalog.by_listen.get(ip) {
                    problems.push(format!(
                        "network {}: listen address {ip} is already network {}'s; not served for {}",
                        cfg.network, catalog.networks[other].name, cfg.network
                    ));
                } else {
                    catalog.by_listen.insert(*ip, index);
                }
            }
        }
        (catalog, problems)
    }

    pub fn listen_addrs(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.by_listen.keys().copied()
    }

    /// The network served on `listen`.
    pub fn network_at(&self, listen: IpAddr) -> Option<&NetworkView> {
        self.by_listen.get(&listen).map(|&i| &self.networks[i])
    }

    /// The networks whose names a query on `listen` from `source` sees: the
    /// listen address's network, then the other networks of the asking
    /// container (found by its address on that network). Names of networks
    /// the asker is not on are never visible: that is the isolation between
    /// networks.
    fn visible(&self, listen: IpAddr, source: IpAddr) -> Vec<&NetworkView> {
        let Some(&home) = self.by_listen.get(&listen) else {
            return Vec::new();
        };
        let home = &self.networks[home];
        let mut views = vec![home];
        if let Some(id) = home.container_by_ip.get(&source) {
            views.extend(
                self.networks
                    .iter()
                    .filter(|n| !std::ptr::eq(*n, home) && n.containers.contains(id)),
            );
        }
        views
    }

    /// The addresses of `name` for a query on `listen` from `source`.
    pub fn lookup(&self, listen: IpAddr, source: IpAddr, name: &str) -> Option<Found<'_>> {
        let name = normalize_name(name);
        self.visible(listen, source).into_iter().find_map(|view| {
            view.resolve(&name).map(|addrs| Found {
                network: &view.name,
                addrs,
            })
        })
    }

    /// The name of the container at `ip`, qualified with its network
    /// (`web.mynet`, as Docker's PTR answers are).
    pub fn reverse(&self, listen: IpAddr, source: IpAddr, ip: IpAddr) -> Option<String> {
        self.visible(listen, source).into_iter().find_map(|view| {
            view.by_ip
                .get(&ip)
                .map(|name| format!("{name}.{}", view.name.to_ascii_lowercase()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Record;

    fn net(name: &str, listen: &str, records: &[(&str, &[&str], Option<&str>)]) -> NetworkDns {
        NetworkDns {
            network: name.into(),
            listen: vec![listen.parse().unwrap()],
            upstreams: vec![],
            search: vec!["corp.example".into()],
            records: records
                .iter()
                .map(|(ip, names, id)| Record {
                    ip: vec![ip.parse().unwrap()],
                    names: names.iter().map(|s| s.to_string()).collect(),
                    container: id.map(String::from),
                })
                .collect(),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn catalog() -> Catalog {
        let (catalog, problems) = Catalog::new(&[
            net(
                "front",
                "10.1.0.1",
                &[
                    ("10.1.0.2", &["web", "WWW"], Some("c1")),
                    ("10.1.0.3", &["mid"], Some("c3")),
                    ("10.1.0.4", &["www"], Some("c4")),
                ],
            ),
            net(
                "back",
                "10.2.0.1",
                &[
                    ("10.2.0.2", &["db"], Some("c2")),
                    ("10.2.0.3", &["mid"], Some("c3")),
                ],
            ),
        ]);
        assert!(problems.is_empty());
        catalog
    }

    #[test]
    fn names_aliases_case_and_qualified_forms() {
        let c = catalog();
        let (l, s) = (ip("10.1.0.1"), ip("10.1.0.9"));
        assert_eq!(c.lookup(l, s, "web").unwrap().addrs, &[ip("10.1.0.2")]);
        assert_eq!(c.lookup(l, s, "WEB.").unwrap().addrs, &[ip("10.1.0.2")]);
        assert_eq!(
            c.lookup(l, s, "web.front").unwrap().addrs,
            &[ip("10.1.0.2")]
        );
        assert_eq!(
            c.lookup(l, s, "web.corp.example.").unwrap().addrs,
            &[ip("10.1.0.2")]
        );
        // a shared alias answers every container that has it
        assert_eq!(
            c.lookup(l, s, "www").unwrap().addrs,
            &[ip("10.1.0.2"), ip("10.1.0.4")]
        );
        assert_eq!(c.lookup(l, s, "webx"), None);
        assert_eq!(c.lookup(l, s, "web.back"), None);
    }

    #[test]
    fn other_networks_are_invisible_unless_the_asker_is_on_them() {
        let c = catalog();
        // web (front only) cannot see db
        assert_eq!(c.lookup(ip("10.1.0.1"), ip("10.1.0.2"), "db"), None);
        // a query to an address that is no network's
        assert_eq!(c.lookup(ip("10.3.0.1"), ip("10.1.0.2"), "web"), None);
        // mid is on both networks: it sees db through front's server too
        let found = c.lookup(ip("10.1.0.1"), ip("10.1.0.3"), "db").unwrap();
        assert_eq!(
            (found.network, found.addrs),
            ("back", &[ip("10.2.0.2")][..])
        );
        // and its own name resolves to the address on the asked network first
        assert_eq!(
            c.lookup(ip("10.2.0.1"), ip("10.2.0.3"), "mid")
                .unwrap()
                .addrs,
            &[ip("10.2.0.3")]
        );
    }

    #[test]
    fn reverse_names_the_container_on_its_network() {
        let c = catalog();
        let (l, s) = (ip("10.1.0.1"), ip("10.1.0.9"));
        assert_eq!(
            c.reverse(l, s, ip("10.1.0.2")).as_deref(),
            Some("web.front")
        );
        assert_eq!(c.reverse(l, s, ip("10.2.0.2")), None);
        assert_eq!(c.reverse(l, s, ip("10.1.0.200")), None);
    }

    #[test]
    fn a_listen_address_claimed_twice_is_a_problem() {
        let (c, problems) = Catalog::new(&[
            net("a", "10.9.0.1", &[("10.9.0.2", &["x"], None)]),
            net("b", "10.9.0.1", &[("10.9.0.3", &["y"], None)]),
        ]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(c.network_at(ip("10.9.0.1")).unwrap().name, "a");
    }
}
