//! Docker's JSON: `network inspect` documents and a container's
//! `NetworkSettings`.

use serde_json::{json, Map, Value};

use super::model::{Endpoint, NetworkRecord};
use super::{store, NetworkService};
use crate::containers::ContainerRecord;
use crate::error::EngineError;

impl NetworkService<'_> {
    /// `network inspect NAME`'s document.
    pub fn inspect_json(&self, n: &NetworkRecord) -> Result<Value, EngineError> {
        let eps = store::endpoints_of_network(self.engine.db().conn(), &n.id)?;
        let running: Vec<&Endpoint> = eps.iter().filter(|e| e.state.is_some()).collect();
        let names = self.container_names(running.iter().map(|e| e.container_id.as_str()))?;
        let mut containers = Map::new();
        for (ep, name) in running.iter().zip(names) {
            let Some(s) = &ep.state else { continue };
            containers.insert(
                ep.container_id.clone(),
                json!({
                    "Name": name,
                    "EndpointID": s.endpoint_id,
                    "MacAddress": s.mac,
                    "IPv4Address": format!("{}/{}", s.ip, s.prefix),
                    "IPv6Address": if s.ip6.is_empty() { String::new() } else { format!("{}/{}", s.ip6, s.prefix6) },
                }),
            );
        }
        let c = &n.config;
        let ipam_config = if n.has_ipam() {
            let mut entry = Map::new();
            entry.insert("Subnet".into(), json!(c.subnet));
            if !c.ip_range.is_empty() {
                entry.insert("IPRange".into(), json!(c.ip_range));
            }
            entry.insert("Gateway".into(), json!(c.gateway));
            let mut config = vec![Value::Object(entry)];
            if c.enable_ipv6 && !c.subnet6.is_empty() {
                let mut v6 = Map::new();
                v6.insert("Subnet".into(), json!(c.subnet6));
                if !c.ip_range6.is_empty() {
                    v6.insert("IPRange".into(), json!(c.ip_range6));
                }
                v6.insert("Gateway".into(), json!(c.gateway6));
                config.push(Value::Object(v6));
            }
            json!(config)
        } else {
            json!([])
        };
        Ok(json!({
            "Name": n.name,
            "Id": n.id,
            "Created": n.created.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            "Scope": "local",
            "Driver": c.driver,
            "EnableIPv4": true,
            "EnableIPv6": c.enable_ipv6,
            "IPAM": {"Driver": "default", "Options": Value::Null, "Config": ipam_config},
            "Internal": c.internal,
            "Attachable": false,
            "Ingress": false,
            "ConfigFrom": {"Network": ""},
            "ConfigOnly": false,
            "Containers": containers,
            "Options": c.options,
            "Labels": c.labels,
        }))
    }

    /// A container's `NetworkSettings`.
    pub fn container_settings(&self, rec: &ContainerRecord) -> Result<Value, EngineError> {
        let mode = crate::containers::network_mode(rec);
        let eps = self.endpoints(&rec.id)?;
        let mut networks = Map::new();
        if !super::endpoint::mode_uses_network(&mode) && !mode.starts_with("container:") {
            networks.insert(mode.clone(), endpoint_json(None, None));
        }
        for ep in &eps {
            networks.insert(ep.network.name.clone(), endpoint_json(Some(ep), Some(rec)));
        }
        let ports = self.ports_json(rec)?;
        let first = eps.first().and_then(|e| e.state.as_ref().map(|s| (e, s)));
        // Docker fills the top-level fields for the default bridge only.
        let top = first.filter(|(e, _)| e.network.is_default_bridge());
        let running = eps.iter().any(|e| e.state.is_some());
        Ok(json!({
            "Bridge": "",
            "SandboxID": if running { rec.id.clone() } else { String::new() },
            "SandboxKey": if running { self.netns_path(&rec.id).display().to_string() } else { String::new() },
            "Ports": ports,
            "HairpinMode": false,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "SecondaryIPAddresses": Value::Null,
            "SecondaryIPv6Addresses": Value::Null,
            "EndpointID": top.map(|(_, s)| s.endpoint_id.clone()).unwrap_or_default(),
            "Gateway": top.map(|(_, s)| s.gateway.clone()).unwrap_or_default(),
            "GlobalIPv6Address": top.map(|(_, s)| s.ip6.clone()).unwrap_or_default(),
            "GlobalIPv6PrefixLen": top.map(|(_, s)| s.prefix6).unwrap_or(0),
            "IPAddress": top.map(|(_, s)| s.ip.clone()).unwrap_or_default(),
            "IPPrefixLen": top.map(|(_, s)| s.prefix).unwrap_or(0),
            "IPv6Gateway": top.map(|(_, s)| s.gateway6.clone()).unwrap_or_default(),
            "MacAddress": top.map(|(_, s)| s.mac.clone()).unwrap_or_default(),
            "Networks": networks,
        }))
    }

    /// `ps --filter network= publish= expose=`.
    pub(crate) fn ps_filter(
        &self,
        rec: &ContainerRecord,
        f: &crate::containers::ContainerFilters,
    ) -> Result<bool, EngineError> {
        if f.network.is_empty() && f.publish.is_empty() && f.expose.is_empty() {
            return Ok(true);
        }
        let published: Vec<String> = self
            .published_ports(&rec.id)?
            .iter()
            .map(|p| format!("{}/{}", p.container_port, p.proto))
            .collect();
        if !f.publish.is_empty() && !f.publish.iter().any(|p| published.contains(p)) {
            return Ok(false);
        }
        if !f.expose.is_empty() {
            let exposed = rec.config.exposed_ports.iter().flat_map(|e| e.keys());
            let hit = f
                .expose
                .iter()
                .any(|p| published.contains(p) || exposed.clone().any(|e| e == p));
            if !hit {
                return Ok(false);
            }
        }
        if !f.network.is_empty() {
            let mode = crate::containers::network_mode(rec);
            let eps = self.endpoints(&rec.id)?;
            let hit = f.network.iter().any(|w| {
                *w == mode
                    || eps
                        .iter()
                        .any(|e| e.network.name == *w || e.network.id.starts_with(w.as_str()))
            });
            if !hit {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// `NetworkSettings.Ports`: published ports with their bindings,
    /// exposed ones as `null`.
    fn ports_json(&self, rec: &ContainerRecord) -> Result<Value, EngineError> {
        let mut out = Map::new();
        for key in rec.config.exposed_ports.iter().flat_map(|e| e.keys()) {
            out.insert(key.clone(), Value::Null);
        }
        for p in self.published_ports(&rec.id)? {
            let key = format!("{}/{}", p.container_port, p.proto);
            let entry = out.entry(key).or_insert_with(|| json!([]));
            if entry.is_null() {
                *entry = json!([]);
            }
            if let Some(a) = entry.as_array_mut() {
                a.push(json!({"HostIp": p.host_ip, "HostPort": p.host_port.to_string()}));
            }
        }
        Ok(Value::Object(out))
    }
}

fn endpoint_json(ep: Option<&Endpoint>, rec: Option<&ContainerRecord>) -> Value {
    let s = ep.and_then(|e| e.state.clone()).unwrap_or_default();
    let aliases: Vec<String> = ep.map(|e| e.request.aliases.clone()).unwrap_or_default();
    let dns_names: Value = match (ep, rec) {
        (Some(e), Some(r)) if e.network.has_dns() => {
            let mut v = vec![r.name.clone(), r.id[..12].to_string()];
            v.extend(aliases.iter().cloned());
            json!(v)
        }
        _ => Value::Null,
    };
    let ipam = ep
        .filter(|e| !e.request.ipv4_address.is_empty() || !e.request.ipv6_address.is_empty())
        .map(|e| {
            let mut m = Map::new();
            if !e.request.ipv4_address.is_empty() {
                m.insert("IPv4Address".into(), json!(e.request.ipv4_address));
            }
            if !e.request.ipv6_address.is_empty() {
                m.insert("IPv6Address".into(), json!(e.request.ipv6_address));
            }
            Value::Object(m)
        })
        .unwrap_or(Value::Null);
    json!({
        "IPAMConfig": ipam,
        "Links": ep.map(|e| json!(e.request.links)).filter(|v| v.as_array().is_some_and(|a| !a.is_empty())).unwrap_or(Value::Null),
        "Aliases": if aliases.is_empty() { Value::Null } else { json!(aliases) },
        "MacAddress": s.mac,
        "DriverOpts": Value::Null,
        "GwPriority": 0,
        "NetworkID": ep.map(|e| e.network.id.clone()).unwrap_or_default(),
        "EndpointID": s.endpoint_id,
        "Gateway": s.gateway,
        "IPAddress": s.ip,
        "IPPrefixLen": s.prefix,
        "IPv6Gateway": s.gateway6,
        "GlobalIPv6Address": s.ip6,
        "GlobalIPv6PrefixLen": s.prefix6,
        "DNSNames": dns_names,
    })
}
