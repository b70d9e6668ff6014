//! `--network` (short and `name=…,alias=…` long syntax) with `--network-alias`,
//! `--ip`, `--ip6`, `--mac-address`, `--link` and `--link-local-ip`: Docker's
//! per-network endpoint settings, which the container model's
//! `HostConfig.NetworkMode` alone cannot carry.

use std::collections::BTreeMap;
use std::net::IpAddr;

use berth_engine::containers::model::{ContainerConfig, HostConfig};

use super::values::{cut, go_int_base10};
use super::{CreateArgs, FlagError};

/// One network the container joins, with its endpoint settings (Docker's
/// `EndpointSettings` for that network).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkAttachment {
    /// `default` (no `--network`), `bridge`, `host`, `none`,
    /// `container:<name|id>` or a user-defined network's name or id.
    pub network: String,
    pub aliases: Vec<String>,
    /// `--link` entries, which on a user-defined network are DNS aliases.
    pub links: Vec<String>,
    pub ipv4_address: String,
    pub ipv6_address: String,
    pub link_local_ips: Vec<String>,
    pub mac_address: String,
    pub driver_opts: BTreeMap<String, String>,
    pub gw_priority: i64,
}

impl NetworkAttachment {
    /// Whether this is a network created by the user (not one of the
    /// built-in modes), where aliases and DNS links apply.
    pub fn is_user_defined(&self) -> bool {
        is_user_defined(&self.network)
    }
}

fn is_user_defined(network: &str) -> bool {
    !matches!(network, "default" | "bridge" | "host" | "none") && !network.starts_with("container:")
}

impl CreateArgs {
    pub(super) fn apply_network(
        &self,
        config: &mut ContainerConfig,
        host: &mut HostConfig,
    ) -> Result<(), FlagError> {
        let attachments = self.networks()?;
        if !self.network.is_empty() {
            host.network_mode = attachments
                .first()
                .map(|a| a.network.clone())
                .unwrap_or_default();
        }
        if let Some(mac) = &self.mac_address {
            config.mac_address = mac.clone();
        }
        let mut dns = Vec::new();
        for server in &self.dns {
            dns.push(
                ip_address(server).map_err(|r| FlagError::invalid_argument("--dns", server, r))?,
            );
        }
        host.dns = dns;
        let mut search = Vec::new();
        for domain in &self.dns_search {
            search.push(
                dns_search(domain)
                    .map_err(|r| FlagError::invalid_argument("--dns-search", domain, r))?,
            );
        }
        host.dns_search = search;
        host.dns_options = self.dns_option.clone();
        let mut extra_hosts = Vec::new();
        for entry in &self.add_host {
            extra_hosts.push(
                extra_host(entry)
                    .map_err(|r| FlagError::invalid_argument("--add-host", entry, r))?,
            );
        }
        if !extra_hosts.is_empty() {
            host.extra_hosts = Some(extra_hosts);
        }
        for link in &self.link {
            validate_link(link).map_err(|r| FlagError::invalid_argument("--link", link, r))?;
        }
        if !self.link.is_empty() {
            host.links = Some(self.link.clone());
        }
        Ok(())
    }

    /// The networks to join (in order; the first is `HostConfig.NetworkMode`)
    /// with the endpoint flags applied to the first, as Docker's
    /// `parseNetworkOpts` does. Without `--network` the one attachment is
    /// named `default`.
    pub fn networks(&self) -> Result<Vec<NetworkAttachment>, FlagError> {
        let mut parsed = Vec::new();
        for value in &self.network {
            parsed.push(
                parse_network_flag(value)
                    .map_err(|r| FlagError::invalid_argument("--network", value, r))?,
            );
        }
        if let Some(mac) = &self.mac_address {
            if !mac_address(mac) {
                return Err(FlagError::invalid_value(
                    "--mac-address",
                    format!("{mac} is not a valid mac address"),
                ));
            }
        }
        if parsed.is_empty() {
            let mut attachment = NetworkAttachment {
                network: "default".to_string(),
                ..Default::default()
            };
            self.apply_endpoint_flags(&mut attachment)?;
            validate_attachment(&attachment)?;
            return Ok(vec![attachment]);
        }
        let (mut user_defined, mut builtin) = (false, false);
        let mut out: Vec<NetworkAttachment> = Vec::new();
        for (i, mut attachment) in parsed.into_iter().enumerate() {
            if attachment.is_user_defined() {
                user_defined = true;
            } else {
                builtin = true;
            }
            if i == 0 {
                self.apply_endpoint_flags(&mut attachment)?;
            }
            validate_attachment(&attachment)?;
            if out.iter().any(|a| a.network == attachment.network) {
                return Err(FlagError::invalid_value(
                    "--network",
                    format!(
                        "network {:?} is specified multiple times",
                        attachment.network
                    ),
                ));
            }
            out.push(attachment);
        }
        if user_defined && builtin {
            return Err(FlagError::conflict(
                "conflicting options: cannot attach both user-defined and non-user-defined network-modes",
            ));
        }
        Ok(out)
    }

    /// `applyContainerOptions`: the non-network-specific flags go to the
    /// first network, and may not also be given per network.
    fn apply_endpoint_flags(&self, n: &mut NetworkAttachment) -> Result<(), FlagError> {
        let conflict = |what: &str| {
            FlagError::conflict(format!("conflicting options: cannot specify both {what}"))
        };
        if !n.aliases.is_empty() && !self.network_alias.is_empty() {
            return Err(conflict("--network-alias and per-network alias"));
        }
        if !n.links.is_empty() && !self.link.is_empty() {
            return Err(conflict("--link and per-network links"));
        }
        if !n.ipv4_address.is_empty() && self.ip.is_some() {
            return Err(conflict("--ip and per-network IPv4 address"));
        }
        if !n.ipv6_address.is_empty() && self.ip6.is_some() {
            return Err(conflict("--ip6 and per-network IPv6 address"));
        }
        if !n.mac_address.is_empty() && self.mac_address.is_some() {
            return Err(conflict("--mac-address and per-network MAC address"));
        }
        if !n.link_local_ips.is_empty() && !self.link_local_ip.is_empty() {
            return Err(conflict(
                "--link-local-ip and per-network link-local IP addresses",
            ));
        }
        if !self.network_alias.is_empty() {
            n.aliases = self.network_alias.clone();
        }
        // On the default bridge `--link` is a legacy link (HostConfig.Links),
        // on a user-defined network an endpoint alias.
        if n.is_user_defined() && !self.link.is_empty() {
            n.links = self.link.clone();
        }
        if let Some(ip) = &self.ip {
            n.ipv4_address = ip.clone();
        }
        if let Some(ip) = &self.ip6 {
            n.ipv6_address = ip.clone();
        }
        if let Some(mac) = &self.mac_address {
            n.mac_address = mac.clone();
        }
        if !self.link_local_ip.is_empty() {
            n.link_local_ips = self.link_local_ip.clone();
        }
        Ok(())
    }
}

/// `parseNetworkAttachmentOpt` plus the daemon's address checks.
fn validate_attachment(n: &NetworkAttachment) -> Result<(), FlagError> {
    let invalid = |m: String| FlagError::invalid_value("--network", m);
    if n.network.trim().is_empty() {
        return Err(invalid("no name set for network".into()));
    }
    if n.network.starts_with("container:") && n.network.len() == "container:".len() {
        return Err(invalid(format!("invalid network mode: {}", n.network)));
    }
    if !n.is_user_defined() {
        if !n.aliases.is_empty() {
            return Err(invalid(
                "network-scoped aliases are only supported for user-defined networks".into(),
            ));
        }
        if !n.links.is_empty() {
            return Err(invalid(
                "links are only supported for user-defined networks".into(),
            ));
        }
    }
    if !n.mac_address.is_empty() && !mac_address(&n.mac_address) {
        return Err(invalid(format!(
            "{} is not a valid mac address",
            n.mac_address
        )));
    }
    if !n.ipv4_address.is_empty() && !matches!(parse_ip(&n.ipv4_address), Some(IpAddr::V4(_))) {
        return Err(invalid(format!("invalid IPv4 address: {}", n.ipv4_address)));
    }
    if !n.ipv6_address.is_empty() && !matches!(parse_ip(&n.ipv6_address), Some(IpAddr::V6(_))) {
        return Err(invalid(format!("invalid IPv6 address: {}", n.ipv6_address)));
    }
    for ip in &n.link_local_ips {
        if parse_ip(ip).is_none() {
            return Err(invalid(format!("invalid link-local IP address: {ip}")));
        }
    }
    Ok(())
}

/// `opts.NetworkOpt.Set`: a plain name, or the CSV long syntax when the
/// value contains `word=word`.
fn parse_network_flag(value: &str) -> Result<NetworkAttachment, String> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = value.as_bytes();
    let long_syntax = (1..bytes.len().saturating_sub(1))
        .any(|i| bytes[i] == b'=' && word(bytes[i - 1]) && word(bytes[i + 1]));
    if !long_syntax {
        return Ok(NetworkAttachment {
            network: value.to_string(),
            ..Default::default()
        });
    }
    let mut n = NetworkAttachment::default();
    for field in value.split(',') {
        // Docker lower-cases the whole field, values included.
        let lower = field.to_lowercase();
        let (key, val, ok) = cut(&lower, '=');
        if !ok || key.is_empty() {
            return Err(format!("invalid field {field}"));
        }
        let (key, val) = (key.trim(), val.trim());
        match key {
            "name" => n.network = val.to_string(),
            "alias" => n.aliases.push(val.to_string()),
            "ip" => n.ipv4_address = val.to_string(),
            "ip6" => n.ipv6_address = val.to_string(),
            "mac-address" => n.mac_address = val.to_string(),
            "link-local-ip" => n.link_local_ips.push(val.to_string()),
            "driver-opt" => {
                let (k, v, ok) = cut(val, '=');
                if !ok || k.is_empty() {
                    return Err("invalid key value pair format in driver options".into());
                }
                n.driver_opts
                    .insert(k.trim().to_string(), v.trim().to_string());
            }
            "gw-priority" => {
                n.gw_priority = go_int_base10(val).map_err(|e| {
                    let reason = e.rsplit(": ").next().unwrap_or(&e).to_string();
                    format!("invalid gw-priority ({val}): {reason}")
                })?;
            }
            _ => return Err(format!("invalid field key {key}")),
        }
    }
    if n.network.is_empty() {
        return Err("network name/id is not specified".into());
    }
    Ok(n)
}

/// `opts.ValidateIPAddress`: the address in Go's canonical form.
pub fn ip_address(s: &str) -> Result<String, String> {
    parse_ip(s.trim())
        .map(|ip| go_ip_string(&ip))
        .ok_or_else(|| format!("IP address is not correctly formatted: {s}"))
}

/// Go's `net.ParseIP` (no zones, no brackets).
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    s.parse::<IpAddr>().ok()
}

/// Go's `net.IP.String()`: IPv4-mapped addresses print as IPv4.
pub fn go_ip_string(ip: &IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        IpAddr::V4(v4) => v4.to_string(),
    }
}

/// `opts.ValidateDNSSearch`.
pub fn dns_search(s: &str) -> Result<String, String> {
    let v = s.trim_matches(' ');
    if v == "." {
        return Ok(v.to_string());
    }
    let invalid = || format!("{v} is not a valid domain");
    if !v.chars().any(|c| c.is_ascii_alphabetic()) {
        return Err(invalid());
    }
    // domainRegexp: labels of [a-zA-Z0-9] or [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
    // joined by dots, an optional trailing dot, then trailing whitespace.
    let trimmed = v.trim_end();
    let domain = trimmed.strip_suffix('.').unwrap_or(trimmed);
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if domain.split('.').all(label_ok) && domain.len() < 255 {
        Ok(domain.to_string())
    } else {
        Err(invalid())
    }
}

/// `opts.ValidateExtraHost`: `host:ip`, `host=ip` or `host:host-gateway`,
/// returned as `host:ip`.
pub fn extra_host(s: &str) -> Result<String, String> {
    let (mut key, mut value, mut ok) = cut(s, '=');
    if !ok {
        (key, value, ok) = cut(s, ':');
    }
    if !ok || key.is_empty() || key.contains(':') {
        return Err(format!("bad format for add-host: {s:?}"));
    }
    if value != "host-gateway" {
        if value.len() > 2 && value.starts_with('[') && value.ends_with(']') {
            value = &value[1..value.len() - 1];
        }
        if ip_address(value).is_err() {
            return Err(format!("invalid IP address in add-host: {value:?}"));
        }
    }
    Ok(format!("{key}:{value}"))
}

/// `opts.ValidateLink`: `name` or `name:alias`.
pub fn validate_link(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("empty string specified for links".into());
    }
    if s.splitn(3, ':').count() > 2 {
        return Err(format!("bad format for links: {s}"));
    }
    Ok(())
}

/// Go's `net.ParseMAC`: 6, 8 or 20 octets as `aa:bb:…`, `aa-bb-…` or `aabb.ccdd.…`.
pub fn mac_address(s: &str) -> bool {
    let s = s.trim();
    let hex_group =
        |g: &str, len: usize| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit());
    let valid_octets = |n: usize| matches!(n, 6 | 8 | 20);
    for sep in [':', '-'] {
        if s.contains(sep) {
            let groups: Vec<&str> = s.split(sep).collect();
            return valid_octets(groups.len()) && groups.iter().all(|g| hex_group(g, 2));
        }
    }
    let groups: Vec<&str> = s.split('.').collect();
    groups.len() > 1 && valid_octets(groups.len() * 2) && groups.iter().all(|g| hex_group(g, 4))
}
