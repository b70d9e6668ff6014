//! The container's `/etc/hosts`, as Docker writes it: the loopback and
//! IPv6 multicast names, `--add-host` entries, legacy `--link` entries, and
//! last the container's own addresses with its hostname.

use std::fmt::Write as _;
use std::net::IpAddr;

use super::{EtcFilesError, EtcNetwork};

/// The IP `--add-host NAME:host-gateway` stands for.
pub const HOST_GATEWAY: &str = "host-gateway";

/// The lines every generated hosts file starts with; the IPv6 ones only when
/// the container may have IPv6.
const LOOPBACK_V4: (&str, &str) = ("127.0.0.1", "localhost");
const DEFAULTS_V6: [(&str, &str); 5] = [
    ("::1", "localhost ip6-localhost ip6-loopback"),
    ("fe00::", "ip6-localnet"),
    ("ff00::", "ip6-mcastprefix"),
    ("ff02::1", "ip6-allnodes"),
    ("ff02::2", "ip6-allrouters"),
];

/// One `--add-host` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraHost {
    pub name: String,
    pub target: ExtraHostTarget,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtraHostTarget {
    Ip(IpAddr),
    /// `host-gateway`: the host's address(es) as seen from the container.
    HostGateway,
}

/// Parses `--add-host`: `name:ip` (the API's form, split at the first `:`
/// so IPv6 addresses need no brackets), the CLI's `name=ip`, `[v6]`
/// brackets, and the special `host-gateway`.
pub fn parse_extra_host(value: &str) -> Result<ExtraHost, EtcFilesError> {
    let split = if value.contains('=') {
        value.split_once('=')
    } else {
        value.split_once(':')
    };
    let Some((name, ip)) = split.filter(|(name, _)| !name.is_empty()) else {
        return Err(EtcFilesError::AddHostFormat {
            value: value.to_string(),
        });
    };
    let target = if ip == HOST_GATEWAY {
        ExtraHostTarget::HostGateway
    } else {
        let bare = ip
            .strip_prefix('[')
            .and_then(|v| v.strip_suffix(']'))
            .unwrap_or(ip);
        let parsed = bare
            .trim()
            .parse()
            .map_err(|_| EtcFilesError::AddHostIp { ip: ip.to_string() })?;
        ExtraHostTarget::Ip(parsed)
    };
    Ok(ExtraHost {
        name: name.to_string(),
        target,
    })
}

/// A legacy `--link` as it appears in the linking container's hosts file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkEntry {
    pub ip: IpAddr,
    /// The alias, then the linked container's hostname and name when they
    /// differ from it (`db 4f2a1c9e0b7d my-db`).
    pub names: String,
}

/// What the hosts file is made of.
#[derive(Debug, Clone, Copy)]
pub struct HostsInput<'a> {
    pub hostname: &'a str,
    pub domainname: &'a str,
    pub network: EtcNetwork,
    /// The container's addresses on its networks (none for `none`/`host`).
    pub container_ips: &'a [IpAddr],
    /// Raw `--add-host` values.
    pub extra_hosts: &'a [String],
    /// What `host-gateway` resolves to (the default bridge's gateway).
    pub host_gateway_ips: &'a [IpAddr],
    pub links: &'a [LinkEntry],
    /// The host's `/etc/hosts`, used as is with `--network host`.
    pub host_hosts: &'a str,
}

/// The content of `/etc/hosts`.
pub fn hosts_file(input: &HostsInput<'_>) -> Result<String, EtcFilesError> {
    let extra = resolve_extra_hosts(input.extra_hosts, input.host_gateway_ips)?;
    // With the host's network the container sees the host's names; only
    // --add-host entries make berth write its own file, so that they can
    // override a name the host's file has (Docker does the same).
    if input.network == EtcNetwork::Host && extra.is_empty() {
        return Ok(input.host_hosts.to_string());
    }
    let ipv6 = input.network.ipv6();
    let mut records: Vec<(IpAddr, String)> = extra;
    records.extend(input.links.iter().map(|l| (l.ip, l.names.clone())));
    if !input.hostname.is_empty() {
        let own = own_names(input.hostname, input.domainname);
        records.extend(input.container_ips.iter().map(|ip| (*ip, own.clone())));
    }

    let mut out = String::new();
    line(&mut out, LOOPBACK_V4.0, LOOPBACK_V4.1);
    if ipv6 {
        for (ip, names) in DEFAULTS_V6 {
            line(&mut out, ip, names);
        }
    }
    for (ip, names) in records {
        // IPv4-mapped addresses count and are written as IPv4 (Go's Unmap in Docker).
        let ip = ip.to_canonical();
        if ip.is_ipv6() && !ipv6 {
            continue;
        }
        line(&mut out, &ip.to_string(), &names);
    }
    Ok(out)
}

/// `--add-host` values as records, `host-gateway` expanded to every gateway
/// address.
fn resolve_extra_hosts(
    values: &[String],
    gateway: &[IpAddr],
) -> Result<Vec<(IpAddr, String)>, EtcFilesError> {
    let mut out = Vec::new();
    for value in values {
        let host = parse_extra_host(value)?;
        match host.target {
            ExtraHostTarget::Ip(ip) => out.push((ip, host.name)),
            ExtraHostTarget::HostGateway if gateway.is_empty() => {
                return Err(EtcFilesError::NoHostGateway {
                    value: value.clone(),
                })
            }
            ExtraHostTarget::HostGateway => {
                out.extend(gateway.iter().map(|ip| (*ip, host.name.clone())));
            }
        }
    }
    Ok(out)
}

/// `web.example.com web` for hostname `web` and domain `example.com`; a
/// fully qualified hostname is followed by its first label.
fn own_names(hostname: &str, domainname: &str) -> String {
    let mut fqdn = hostname.to_string();
    if !domainname.is_empty() {
        fqdn = format!("{fqdn}.{domainname}");
    }
    match fqdn.split_once('.') {
        Some((short, _)) => format!("{fqdn} {short}"),
        None => fqdn,
    }
}

fn line(out: &mut String, ip: &str, names: &str) {
    let _ = writeln!(out, "{ip}\t{names}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(network: EtcNetwork) -> HostsInput<'a> {
        HostsInput {
            hostname: "4f2a1c9e0b7d",
            domainname: "",
            network,
            container_ips: &[],
            extra_hosts: &[],
            host_gateway_ips: &[],
            links: &[],
            host_hosts: "127.0.0.1 localhost\n10.0.0.5 buildhost\n",
        }
    }

    #[test]
    fn bridge_container_gets_docker_layout() {
        let ips = ["172.17.0.2".parse().unwrap()];
        let extra = vec![
            "db:10.1.2.3".to_string(),
            "v6host:2001:db8::1".to_string(),
            "gw:host-gateway".to_string(),
        ];
        let gw = ["172.17.0.1".parse().unwrap()];
        let links = [LinkEntry {
            ip: "172.17.0.3".parse().unwrap(),
            names: "cache 9e0b7d4f2a1c my-cache".into(),
        }];
        let text = hosts_file(&HostsInput {
            container_ips: &ips,
            extra_hosts: &extra,
            host_gateway_ips: &gw,
            links: &links,
            ..input(EtcNetwork::Private { ipv6: true })
        })
        .unwrap();
        assert_eq!(
            text,
            "127.0.0.1\tlocalhost\n\
             ::1\tlocalhost ip6-localhost ip6-loopback\n\
             fe00::\tip6-localnet\n\
             ff00::\tip6-mcastprefix\n\
             ff02::1\tip6-allnodes\n\
             ff02::2\tip6-allrouters\n\
             10.1.2.3\tdb\n\
             2001:db8::1\tv6host\n\
             172.17.0.1\tgw\n\
             172.17.0.3\tcache 9e0b7d4f2a1c my-cache\n\
             172.17.0.2\t4f2a1c9e0b7d\n"
        );
    }

    #[test]
    fn without_ipv6_the_v6_lines_are_left_out() {
        let ips = ["172.18.0.4".parse().unwrap(), "fd00::4".parse().unwrap()];
        let extra = vec!["v6host:[2001:db8::1]".to_string(), "a=10.0.0.1".to_string()];
        let text = hosts_file(&HostsInput {
            hostname: "web",
            domainname: "example.com",
            container_ips: &ips,
            extra_hosts: &extra,
            ..input(EtcNetwork::Private { ipv6: false })
        })
        .unwrap();
        assert_eq!(
            text,
            "127.0.0.1\tlocalhost\n10.0.0.1\ta\n172.18.0.4\tweb.example.com web\n"
        );
    }

    #[test]
    fn host_network_uses_the_host_file_unless_hosts_are_added() {
        assert_eq!(
            hosts_file(&input(EtcNetwork::Host)).unwrap(),
            "127.0.0.1 localhost\n10.0.0.5 buildhost\n"
        );
        let extra = vec!["buildhost:10.9.9.9".to_string()];
        let text = hosts_file(&HostsInput {
            extra_hosts: &extra,
            ..input(EtcNetwork::Host)
        })
        .unwrap();
        assert!(text.starts_with("127.0.0.1\tlocalhost\n::1\t"));
        assert!(text.ends_with("10.9.9.9\tbuildhost\n"), "{text}");
    }

    #[test]
    fn none_network_has_no_own_record() {
        let text = hosts_file(&input(EtcNetwork::None)).unwrap();
        assert_eq!(text.lines().count(), 6);
        assert!(!text.contains("4f2a1c9e0b7d"));
    }

    #[test]
    fn add_host_validation_matches_docker() {
        let cases = [
            ("nocolon", "bad format for add-host: \"nocolon\""),
            (":1.2.3.4", "bad format for add-host: \":1.2.3.4\""),
            (
                "h:300.1.1.1",
                "invalid IP address in add-host: \"300.1.1.1\"",
            ),
            ("h:", "invalid IP address in add-host: \"\""),
            (
                "h:example.com",
                "invalid IP address in add-host: \"example.com\"",
            ),
        ];
        for (value, want) in cases {
            assert_eq!(parse_extra_host(value).unwrap_err().to_string(), want);
        }
        assert_eq!(
            parse_extra_host("h:host-gateway").unwrap().target,
            ExtraHostTarget::HostGateway
        );
        assert_eq!(
            parse_extra_host("h:::ffff:10.0.0.1").unwrap().target,
            ExtraHostTarget::Ip("::ffff:10.0.0.1".parse().unwrap())
        );
        let extra = vec!["gw:host-gateway".to_string()];
        let err = hosts_file(&HostsInput {
            extra_hosts: &extra,
            ..input(EtcNetwork::None)
        })
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "add-host \"gw:host-gateway\": unable to derive the IP value for host-gateway"
        );
        // Mapped addresses are written as IPv4, like Docker's Unmap.
        let extra = vec!["m:::ffff:10.0.0.1".to_string()];
        let text = hosts_file(&HostsInput {
            extra_hosts: &extra,
            ..input(EtcNetwork::Private { ipv6: false })
        })
        .unwrap();
        assert!(text.ends_with("10.0.0.1\tm\n"), "{text}");
    }
}
