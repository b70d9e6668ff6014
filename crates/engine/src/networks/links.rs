//! Legacy `--link NAME:ALIAS` on the default bridge: the linked container's
//! address in the hosts file and Docker's environment variables
//! (`ALIAS_PORT_80_TCP=tcp://IP:80`, `ALIAS_NAME=/me/alias`, `ALIAS_ENV_*`).

use std::net::IpAddr;

use super::NetworkService;
use crate::containers::defaults::etc_files::LinkEntry;
use crate::containers::{ContainerRecord, Status};
use crate::error::EngineError;

/// One resolved link: the linked container, the alias, its address.
struct Link {
    target: ContainerRecord,
    alias: String,
    ip: IpAddr,
}

impl NetworkService<'_> {
    /// The default-bridge links of `rec`; a linked container that is not
    /// running, or not on the default bridge, is an error (as in Docker).
    fn links(&self, rec: &ContainerRecord) -> Result<Vec<Link>, EngineError> {
        let Some(links) = &rec.host_config.links else {
            return Ok(Vec::new());
        };
        let on_default = self
            .endpoints(&rec.id)?
            .first()
            .is_some_and(|e| e.network.is_default_bridge());
        if !on_default {
            // On user networks links are DNS aliases (see dns.rs).
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for l in links {
            let (name, alias) = l.split_once(':').unwrap_or((l.as_str(), l.as_str()));
            let name = name.trim_start_matches('/');
            let alias = alias.rsplit('/').next().unwrap_or(alias).to_string();
            let target = self.engine.containers().get(name).map_err(|e| match e {
                EngineError::NoSuchContainer(_) => EngineError::InvalidArgument(format!(
                    "could not get container for {name}: no such container"
                )),
                other => other,
            })?;
            if target.status != Status::Running {
                return Err(EngineError::Conflict(format!(
                    "Cannot link to a non running container: /{} AS /{}/{alias}",
                    target.name, rec.name
                )));
            }
            let ip = self
                .endpoints(&target.id)?
                .into_iter()
                .find(|e| e.network.is_default_bridge())
                .and_then(|e| e.state)
                .and_then(|s| s.ip.parse().ok())
                .ok_or_else(|| {
                    EngineError::Conflict(format!(
                        "Cannot link to /{}, as it does not belong to the default network",
                        target.name
                    ))
                })?;
            out.push(Link { target, alias, ip });
        }
        Ok(out)
    }

    /// Hosts-file lines: `IP alias hostname [name]`.
    pub(super) fn link_entries(
        &self,
        rec: &ContainerRecord,
    ) -> Result<Vec<LinkEntry>, EngineError> {
        Ok(self
            .links(rec)?
            .into_iter()
            .map(|l| {
                let mut names = format!("{} {}", l.alias, l.target.config.hostname);
                if l.alias != l.target.name {
                    names.push(' ');
                    names.push_str(&l.target.name);
                }
                LinkEntry { ip: l.ip, names }
            })
            .collect())
    }

    /// Docker's link environment variables for `rec`.
    pub fn link_env(&self, rec: &ContainerRecord) -> Result<Vec<String>, EngineError> {
        let mut env = Vec::new();
        for l in self.links(rec)? {
            let prefix = l.alias.to_uppercase().replace('-', "_");
            env.push(format!("{prefix}_NAME=/{}/{}", rec.name, l.alias));
            let mut ports: Vec<(u16, String)> = l
                .target
                .config
                .exposed_ports
                .iter()
                .flat_map(|m| m.keys())
                .filter_map(|k| {
                    let (p, proto) = k.split_once('/').unwrap_or((k.as_str(), "tcp"));
                    Some((p.parse().ok()?, proto.to_string()))
                })
                .collect();
            ports.sort();
            if let Some((p, proto)) = ports.first() {
                env.push(format!("{prefix}_PORT={proto}://{}:{p}", l.ip));
            }
            for (p, proto) in &ports {
                let key = format!("{prefix}_PORT_{p}_{}", proto.to_uppercase());
                env.push(format!("{key}={proto}://{}:{p}", l.ip));
                env.push(format!("{key}_ADDR={}", l.ip));
                env.push(format!("{key}_PORT={p}"));
                env.push(format!("{key}_PROTO={proto}"));
            }
            for v in &l.target.config.env {
                let (k, val) = v.split_once('=').unwrap_or((v.as_str(), ""));
                if matches!(k, "HOME" | "PATH" | "HOSTNAME") {
                    continue;
                }
                env.push(format!("{prefix}_ENV_{k}={val}"));
            }
        }
        Ok(env)
    }
}
