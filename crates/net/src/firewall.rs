//! berth's nftables rules, in berth's own tables (`table ip berth` and,
//! for networks with IPv6, `table ip6 berth`; never anyone else's:
//! podman's netavark or iptables-nft tables may sit beside them).
//!
//! The table is declarative: [`FirewallState`] says what every network and
//! every published port needs, [`FirewallState::render`] turns it into one
//! nft script that replaces both tables, and [`apply`] runs it with one
//! `nft -f -` (nft applies a script as one atomic transaction). Teardown is
//! therefore exact by construction: a container's or network's rules are
//! gone as soon as the state no longer lists it; an empty state deletes the
//! table. Every rule carries a comment naming its network or container.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::{Command, Stdio};

use crate::ipam::Ipv4Net;
use crate::ipam6::Ipv6Net;
use crate::NetError;

/// A network's part of the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRules {
    /// For comments.
    pub name: String,
    /// The host bridge (empty for drivers without one, e.g. macvlan).
    pub bridge: String,
    pub subnet: Ipv4Net,
    /// The IPv6 subnet of an `--ipv6` network.
    pub subnet6: Option<Ipv6Net>,
    /// `--internal`: no traffic leaves the bridge, no masquerade.
    pub internal: bool,
    /// `com.docker.network.bridge.enable_icc`: containers of the network may
    /// talk to each other.
    pub icc: bool,
}

/// `tcp` or `udp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "tcp" => Some(Proto::Tcp),
            "udp" => Some(Proto::Udp),
            _ => None,
        }
    }
}

/// One published port: host `host_ip:host_port` → `container_ip:container_port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRule {
    /// The container's id (comments).
    pub container: String,
    pub proto: Proto,
    /// `None`: every address of the host (`0.0.0.0`).
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_ip: Ipv4Addr,
    /// The container's IPv6 address, when its network has IPv6: ports
    /// published on every address are DNAT'ed over IPv6 as well.
    pub container_ip6: Option<Ipv6Addr>,
    pub container_port: u16,
}

/// Everything berth's table must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FirewallState {
    pub networks: Vec<NetworkRules>,
    pub ports: Vec<PortRule>,
}

impl FirewallState {
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty() && self.ports.is_empty()
    }

    /// The nft script that makes `table ip <table>` and `table ip6 <table>`
    /// hold exactly this state.
    pub fn render(&self, table: &str) -> String {
        let mut s = self.render_ip(table);
        s.push_str(&self.render_ip6(table));
        s
    }

    fn render_ip(&self, table: &str) -> String {
        let mut s = String::new();
        // `add` then `delete` works whether or not the table exists.
        let _ = writeln!(s, "add table ip {table}");
        let _ = writeln!(s, "delete table ip {table}");
        if self.is_empty() {
            return s;
        }
        let _ = writeln!(s, "table ip {table} {{");
        // Published ports: DNAT for packets to a local address, from outside
        // (prerouting) and from the host itself (output, 127.0.0.1 included:
        // each bridge has route_localnet=1 so that the rewritten packet may
        // leave with its loopback source, masqueraded below).
        s.push_str("\tchain publish {\n");
        for p in &self.ports {
            let dst = match p.host_ip {
                Some(ip) => format!("ip daddr {ip} "),
                None => String::new(),
            };
            let _ = writeln!(
                s,
                "\t\t{dst}{proto} dport {hp} dnat to {cip}:{cp} comment \"container {id}\"",
                proto = p.proto.as_str(),
                hp = p.host_port,
                cip = p.container_ip,
                cp = p.container_port,
                id = short(&p.container),
            );
        }
        s.push_str("\t}\n");
        s.push_str("\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\t\tfib daddr type local jump publish\n\t}\n");
        s.push_str("\tchain output {\n\t\ttype nat hook output priority -100; policy accept;\n\t\tfib daddr type local jump publish\n\t}\n");
        s.push_str("\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n");
        for n in self.networks.iter().filter(|n| !n.bridge.is_empty()) {
            let (br, sub, name) = (&n.bridge, n.subnet.network(), &n.name);
            let _ = writeln!(
                s,
                "\t\toifname \"{br}\" ip saddr 127.0.0.0/8 masquerade comment \"network {name}: published on localhost\""
            );
            let _ = writeln!(
                s,
                "\t\toifname \"{br}\" ip saddr {sub} ct status dnat masquerade comment \"network {name}: hairpin\""
            );
            if !n.internal {
                let _ = writeln!(
                    s,
                    "\t\toifname != \"{br}\" ip saddr {sub} masquerade comment \"network {name}: outbound\""
                );
            }
        }
        s.push_str("\t}\n");
        let bridges: Vec<&NetworkRules> = self
            .networks
            .iter()
            .filter(|n| !n.bridge.is_empty())
            .collect();
        // route_localnet=1 (for publishing on 127.0.0.1) would also let a
        // container (CAP_NET_RAW) send packets to the host's loopback-only
        // services through its bridge (CVE-2020-8558's shape): only replies
        // of connections the host made may arrive that way.
        s.push_str("\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n");
        for n in &bridges {
            let _ = writeln!(
                s,
                "\t\tiifname \"{}\" ip daddr 127.0.0.0/8 ct state new,invalid drop comment \"network {}: no loopback from containers\"",
                n.bridge, n.name
            );
        }
        s.push_str("\t}\n");
        write_forward_chain(&mut s, &bridges, &bridges, false);
        s.push_str("}\n");
        s
    }

    /// The IPv6 counterpart: NAT66 masquerade (as Docker does for ULA
    /// subnets), isolation, `--internal`, icc and DNAT of published ports.
    /// There is no `route_localnet` for IPv6, so ports are not published on
    /// `::1` (Docker uses docker-proxy, a userland proxy, for that).
    fn render_ip6(&self, table: &str) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "add table ip6 {table}");
        let _ = writeln!(s, "delete table ip6 {table}");
        let nets: Vec<(&NetworkRules, Ipv6Net)> = self
            .networks
            .iter()
            .filter(|n| !n.bridge.is_empty())
            .filter_map(|n| n.subnet6.map(|s6| (n, s6.network())))
            .collect();
        let ports: Vec<(&PortRule, Ipv6Addr)> = self
            .ports
            .iter()
            .filter(|p| p.host_ip.is_none())
            .filter_map(|p| p.container_ip6.map(|ip| (p, ip)))
            .collect();
        if nets.is_empty() && ports.is_empty() {
            return s;
        }
        let _ = writeln!(s, "table ip6 {table} {{");
        s.push_str("\tchain publish {\n");
        for (p, ip) in &ports {
            let _ = writeln!(
                s,
                "\t\t{proto} dport {hp} dnat to [{ip}]:{cp} comment \"container {id}\"",
                proto = p.proto.as_str(),
                hp = p.host_port,
                cp = p.container_port,
                id = short(&p.container),
            );
        }
        s.push_str("\t}\n");
        s.push_str("\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\t\tfib daddr type local jump publish\n\t}\n");
        s.push_str("\tchain output {\n\t\ttype nat hook output priority -100; policy accept;\n\t\tip6 daddr != ::1 fib daddr type local jump publish\n\t}\n");
        s.push_str("\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n");
        for (n, sub) in &nets {
            let (br, name) = (&n.bridge, &n.name);
            let _ = writeln!(
                s,
                "\t\toifname \"{br}\" ip6 saddr {sub} ct status dnat masquerade comment \"network {name}: hairpin\""
            );
            if !n.internal {
                let _ = writeln!(
                    s,
                    "\t\toifname != \"{br}\" ip6 saddr {sub} masquerade comment \"network {name}: outbound\""
                );
            }
        }
        s.push_str("\t}\n");
        // Every bridge is isolated from the others, v4-only ones included:
        // their containers have no IPv6 address berth gave, but may have
        // link-local or self-assigned ones.
        let bridges: Vec<&NetworkRules> = self
            .networks
            .iter()
            .filter(|n| !n.bridge.is_empty())
            .collect();
        let v6: Vec<&NetworkRules> = nets.iter().map(|(n, _)| *n).collect();
        write_forward_chain(&mut s, &v6, &bridges, true);
        s.push_str("}\n");
        s
    }
}

/// The forward chain, alike for `ip` and `ip6`: `--internal` and icc of
/// `nets`, published ports reachable from anywhere, and each of `nets`'
/// bridges isolated from the other `bridges` (`both_ways`: traffic into it
/// from them dropped as well).
fn write_forward_chain(
    s: &mut String,
    nets: &[&NetworkRules],
    bridges: &[&NetworkRules],
    both_ways: bool,
) {
    s.push_str("\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n");
    for n in nets {
        let (br, name) = (&n.bridge, &n.name);
        if n.internal {
            let _ = writeln!(
                s,
                "\t\tiifname \"{br}\" oifname != \"{br}\" drop comment \"network {name}: internal\""
            );
            let _ = writeln!(
                s,
                "\t\toifname \"{br}\" iifname != \"{br}\" drop comment \"network {name}: internal\""
            );
        }
        if !n.icc {
            let _ = writeln!(
                s,
                "\t\tiifname \"{br}\" oifname \"{br}\" drop comment \"network {name}: icc disabled\""
            );
        }
    }
    // Published ports stay reachable from containers of other networks.
    s.push_str("\t\tct status dnat accept\n");
    for n in nets {
        let others: Vec<String> = bridges
            .iter()
            .filter(|o| o.bridge != n.bridge)
            .map(|o| format!("\"{}\"", o.bridge))
            .collect();
        if others.is_empty() {
            continue;
        }
        let (br, name, others) = (&n.bridge, &n.name, others.join(", "));
        let _ = writeln!(
            s,
            "\t\tiifname \"{br}\" oifname {{ {others} }} drop comment \"network {name}: isolation\""
        );
        if both_ways {
            let _ = writeln!(
                s,
                "\t\toifname \"{br}\" iifname {{ {others} }} drop comment \"network {name}: isolation\""
            );
        }
    }
    s.push_str("\t}\n");
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// Replaces berth's tables with `state` in one nft transaction.
pub fn apply(table: &str, state: &FirewallState) -> Result<(), NetError> {
    run_nft(&state.render(table))
}

/// Deletes berth's `ip` and `ip6` tables (missing is fine).
pub fn delete_table(table: &str) -> Result<(), NetError> {
    run_nft(&FirewallState::default().render(table))
}

/// Runs an nft script from stdin.
pub fn run_nft(script: &str) -> Result<(), NetError> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| NetError::sys("running nft (is the nftables package installed?)", e))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| NetError::sys("writing to nft", e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| NetError::sys("waiting for nft", e))?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr);
        return Err(NetError::Firewall(
            msg.lines()
                .find(|l| l.contains("Error"))
                .unwrap_or(msg.trim())
                .to_string(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_state_only_deletes() {
        let s = FirewallState::default().render("berth");
        assert_eq!(
            s,
            "add table ip berth\ndelete table ip berth\nadd table ip6 berth\ndelete table ip6 berth\n"
        );
    }

    #[test]
    fn renders_networks_and_ports() {
        let st = FirewallState {
            networks: vec![
                NetworkRules {
                    name: "a".into(),
                    bridge: "berth-a".into(),
                    subnet: "10.1.0.0/24".parse().unwrap(),
                    subnet6: None,
                    internal: false,
                    icc: true,
                },
                NetworkRules {
                    name: "b".into(),
                    bridge: "berth-b".into(),
                    subnet: "10.2.0.0/24".parse().unwrap(),
                    subnet6: None,
                    internal: true,
                    icc: false,
                },
            ],
            ports: vec![PortRule {
                container: "0123456789abcdef".into(),
                proto: Proto::Udp,
                host_ip: Some(Ipv4Addr::LOCALHOST),
                host_port: 5353,
                container_ip: Ipv4Addr::new(10, 1, 0, 2),
                container_ip6: None,
                container_port: 53,
            }],
        };
        let s = st.render("t");
        assert!(s.contains(
            "ip daddr 127.0.0.1 udp dport 5353 dnat to 10.1.0.2:53 comment \"container 0123456789ab\""
        ));
        assert!(s.contains("oifname != \"berth-a\" ip saddr 10.1.0.0/24 masquerade"));
        assert!(!s.contains("oifname != \"berth-b\" ip saddr 10.2.0.0/24 masquerade"));
        assert!(s.contains("iifname \"berth-b\" oifname \"berth-b\" drop"));
        assert!(s.contains("iifname \"berth-a\" oifname { \"berth-b\" } drop"));
        assert!(s.contains("iifname \"berth-a\" ip daddr 127.0.0.0/8 ct state new,invalid drop"));
        // No IPv6 network, no IPv6 port: the ip6 table is only deleted.
        assert!(s.ends_with("add table ip6 t\ndelete table ip6 t\n"));
    }

    #[test]
    fn renders_ipv6() {
        let st = FirewallState {
            networks: vec![
                NetworkRules {
                    name: "six".into(),
                    bridge: "berth-6".into(),
                    subnet: "10.1.0.0/24".parse().unwrap(),
                    subnet6: Some("fd01:2:3::/64".parse().unwrap()),
                    internal: false,
                    icc: false,
                },
                NetworkRules {
                    name: "four".into(),
                    bridge: "berth-4".into(),
                    subnet: "10.2.0.0/24".parse().unwrap(),
                    subnet6: None,
                    internal: true,
                    icc: true,
                },
            ],
            ports: vec![
                PortRule {
                    container: "0123456789abcdef".into(),
                    proto: Proto::Tcp,
                    host_ip: None,
                    host_port: 8080,
                    container_ip: Ipv4Addr::new(10, 1, 0, 2),
                    container_ip6: Some("fd01:2:3::2".parse().unwrap()),
                    container_port: 80,
                },
                PortRule {
                    container: "fedcba9876543210".into(),
                    proto: Proto::Tcp,
                    host_ip: Some(Ipv4Addr::LOCALHOST),
                    host_port: 8081,
                    container_ip: Ipv4Addr::new(10, 1, 0, 3),
                    container_ip6: Some("fd01:2:3::3".parse().unwrap()),
                    container_port: 80,
                },
            ],
        };
        let s = st.render("t");
        let v6 = &s[s.find("table ip6 t {").unwrap()..];
        assert!(v6.contains("tcp dport 8080 dnat to [fd01:2:3::2]:80"));
        // A port bound to an IPv4 address is not published over IPv6.
        assert!(!v6.contains("8081"));
        assert!(v6.contains("ip6 daddr != ::1 fib daddr type local jump publish"));
        assert!(v6.contains("oifname != \"berth-6\" ip6 saddr fd01:2:3::/64 masquerade"));
        assert!(v6.contains("iifname \"berth-6\" oifname \"berth-6\" drop"));
        assert!(v6.contains("iifname \"berth-6\" oifname { \"berth-4\" } drop"));
        assert!(!v6.contains("network four"));
    }
}
