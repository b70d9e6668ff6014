//! `-p/--publish` and `--expose`, as go-connections' `nat.ParsePortSpecs`
//! and Docker's CLI read them: `[ip:][hostPort:]containerPort[/proto]`,
//! ranges, IPv6 in brackets, and the `published=,target=,protocol=` form.

use std::collections::BTreeMap;

use berth_engine::containers::model::{Empty, PortBinding};

use super::network::parse_ip;
use super::values::{cut, go_uint_base10};

/// Exposed ports (`"80/tcp"`) and host bindings collected from the flags.
#[derive(Debug, Default)]
pub struct Ports {
    pub exposed: BTreeMap<String, Empty>,
    pub bindings: BTreeMap<String, Vec<PortBinding>>,
}

/// Adds every `-p` spec; the error is Docker's message.
pub fn publish(ports: &mut Ports, specs: &[String]) -> Result<(), String> {
    for spec in specs {
        let spec = standard_notation(spec)?;
        for (port, binding) in parse_port_spec(&spec)? {
            ports.exposed.entry(port.clone()).or_default();
            ports.bindings.entry(port).or_default().push(binding);
        }
    }
    Ok(())
}

/// Adds every `--expose` spec (`80`, `80/udp`, `8000-8010`).
pub fn expose(ports: &mut Ports, specs: &[String]) -> Result<(), String> {
    for spec in specs {
        if spec.contains(':') {
            return Err(format!("invalid port format for --expose: {spec}"));
        }
        let (proto, port) = split_proto_port(spec);
        let (start, end) = parse_port_range(port)
            .map_err(|e| format!("invalid range format for --expose: {spec}, error: {e}"))?;
        for p in start..=end {
            ports.exposed.entry(format!("{p}/{proto}")).or_default();
        }
    }
    Ok(())
}

/// `convertToStandardNotation`: `target=80,published=8080,protocol=udp`
/// becomes `8080:80/udp`.
fn standard_notation(spec: &str) -> Result<String, String> {
    if !spec.contains('=') {
        return Ok(spec.to_string());
    }
    let mut params: BTreeMap<&str, &str> = BTreeMap::from([("protocol", "tcp")]);
    for param in spec.split(',') {
        let (k, v, ok) = cut(param, '=');
        if !ok || k.is_empty() {
            return Err(format!(
                "invalid publish opts format (should be name=value but got '{param}')"
            ));
        }
        params.insert(k, v);
    }
    let get = |k: &str| params.get(k).copied().unwrap_or("");
    Ok(format!(
        "{}:{}/{}",
        get("published"),
        get("target"),
        get("protocol")
    ))
}

/// `nat.SplitProtoPort`: `80/udp` → (`udp`, `80`); no protocol means tcp.
fn split_proto_port(raw: &str) -> (&str, &str) {
    let parts: Vec<&str> = raw.split('/').collect();
    if raw.is_empty() || parts[0].is_empty() {
        return ("", "");
    }
    match parts.as_slice() {
        [port] => ("tcp", port),
        [port, "", ..] => ("tcp", port),
        [port, proto, ..] => (proto, port),
        [] => ("", ""),
    }
}

/// `nat.ParsePortRange`: `80` or `8000-8010`, with Go's error texts.
fn parse_port_range(ports: &str) -> Result<(u64, u64), String> {
    if ports.is_empty() {
        return Err("empty string specified for ports".to_string());
    }
    let Some((start, rest)) = ports.split_once('-') else {
        let p = go_uint_base10(ports, 16)?;
        return Ok((p, p));
    };
    let end = rest.split('-').next().unwrap_or("");
    let start = go_uint_base10(start, 16)?;
    let end = go_uint_base10(end, 16)?;
    if end < start {
        return Err(format!("invalid range specified for port: {ports}"));
    }
    Ok((start, end))
}

/// `nat.ParsePortSpec`: one spec to (`"80/tcp"`, binding) pairs.
fn parse_port_spec(raw: &str) -> Result<Vec<(String, PortBinding)>, String> {
    let parts: Vec<&str> = raw.split(':').collect();
    let n = parts.len();
    let (mut ip, host_port, container_port) = match n {
        1 => (String::new(), "", parts[0]),
        2 => (String::new(), parts[0], parts[1]),
        3 => (parts[0].to_string(), parts[1], parts[2]),
        _ => (parts[..n - 2].join(":"), parts[n - 2], parts[n - 1]),
    };
    let (proto, container_port) = split_proto_port(container_port);
    if ip.starts_with('[') {
        // net.SplitHostPort(ip + ":") — `[::1]` → `::1`.
        match ip.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            Some(inner) if !inner.contains(['[', ']']) => ip = inner.to_string(),
            _ => {
                return Err(format!(
                    "invalid IP address {ip}: address {ip}:: missing port in address"
                ))
            }
        }
    }
    if !ip.is_empty() && parse_ip(&ip).is_none() {
        return Err(format!("invalid IP address: {ip}"));
    }
    if container_port.is_empty() {
        return Err(format!("no port specified: {raw}<empty>"));
    }
    let (start, end) = parse_port_range(container_port)
        .map_err(|_| format!("invalid containerPort: {container_port}"))?;
    let (host_start, host_end) = if host_port.is_empty() {
        (0, 0)
    } else {
        parse_port_range(host_port).map_err(|_| format!("invalid hostPort: {host_port}"))?
    };
    if !host_port.is_empty() && end - start != host_end.wrapping_sub(host_start) && end != start {
        return Err(format!(
            "invalid ranges specified for container and host Ports: {container_port} and {host_port}"
        ));
    }
    let original_proto = proto;
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {original_proto}"));
    }
    let mut out = Vec::new();
    for i in 0..=(end - start) {
        let mut host = if host_port.is_empty() {
            String::new()
        } else {
            (host_start + i).to_string()
        };
        // One container port with a host range: the engine picks a free
        // port from the range.
        if start == end && host_start != host_end {
            host = format!("{host}-{host_end}");
        }
        out.push((
            format!("{}/{proto}", start + i),
            PortBinding {
                host_ip: ip.clone(),
                host_port: host,
            },
        ));
    }
    Ok(out)
}
