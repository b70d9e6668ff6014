//! Networks: Docker's model (the default `bridge`, `host`, `none`, user
//! bridge and macvlan networks) over SQLite, and the host side of it made
//! with `berth-net`: bridges, each running container's network namespace
//! and links, published ports and isolation in berth's nftables table, and
//! the name service of user networks (berth-dns).
//!
//! Split by concern: `model`/`store` (what is stored), `host` (bridges and
//! subnet picking), `endpoint` (a container's links and addresses),
//! `ports` (publishing), `firewall` (the table from the stored state),
//! `dns` (berth-dns' files), `links` (legacy `--link`), `inspect` (Docker's
//! JSON).

mod dns;
mod endpoint;
mod firewall;
mod host;
mod inspect;
mod ipv6;
mod links;
pub mod model;
mod ports;
mod store;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::containers::defaults::names;
use crate::error::EngineError;
use crate::lock::FileLock;
use crate::Engine;

pub(crate) use endpoint::mode_uses_network;
pub use endpoint::NetEtc;
pub use model::{
    Endpoint, EndpointRequest, NetworkConfig, NetworkRecord, PublishedPort, DEFAULT_NETWORK,
    OPT_BRIDGE_NAME, OPT_ICC, OPT_PARENT,
};

/// `network create`'s input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkCreateRequest {
    pub name: String,
    /// `bridge` (default) or `macvlan`.
    pub driver: String,
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub ip_range: Option<String>,
    pub internal: bool,
    pub ipv6: bool,
    /// `--subnet`, `--gateway` and `--ip-range` values of IPv6 (`--ipv6`).
    pub subnet6: Option<String>,
    pub gateway6: Option<String>,
    pub ip_range6: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
}

/// Network operations on one [`Engine`].
pub struct NetworkService<'e> {
    engine: &'e Engine,
}

impl<'e> NetworkService<'e> {
    pub(crate) fn new(engine: &'e Engine) -> Self {
        Self { engine }
    }

    /// berth's nftables table for this state root: `berth` for the default
    /// root, `berth_<hash>` for others (tests, side-by-side installs), so
    /// that two roots never rewrite each other's rules.
    pub fn nft_table(&self) -> String {
        match self.root_tag() {
            None => "berth".into(),
            Some(tag) => format!("berth_{tag}"),
        }
    }

    /// The default bridge's host link: `BERTH_BRIDGE_NAME`, else `berth0`
    /// for the default root and `berth<hash>` for others.
    fn default_bridge_name(&self) -> String {
        if let Some(n) = std::env::var("BERTH_BRIDGE_NAME")
            .ok()
            .filter(|n| !n.is_empty())
        {
            return n;
        }
        match self.root_tag() {
            None => "berth0".into(),
            Some(tag) => format!("berth{tag}"),
        }
    }

    fn root_tag(&self) -> Option<String> {
        let root = &self.engine.config().root;
        if root == &crate::EngineConfig::default().root {
            return None;
        }
        // FNV-1a: a stable short tag, not a security boundary.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in root.as_os_str().as_encoded_bytes() {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        Some(format!("{:08x}", h as u32))
    }

    fn runroot(&self) -> PathBuf {
        self.engine.config().runroot.clone()
    }

    /// Serialises changes to this root's networks and firewall.
    fn lock(&self) -> Result<FileLock, EngineError> {
        let dir = self.runroot();
        std::fs::create_dir_all(&dir)
            .map_err(|e| EngineError::io(format!("creating {}", dir.display()), e))?;
        FileLock::exclusive(&dir.join("network.lock"))
    }

    /// Every network, the built-in ones included (made on first use).
    pub fn list(&self) -> Result<Vec<NetworkRecord>, EngineError> {
        self.ensure_builtin()?;
        store::all(self.engine.db().conn())
    }

    /// The network `word` names (name, id or id prefix).
    pub fn get(&self, word: &str) -> Result<NetworkRecord, EngineError> {
        self.ensure_builtin()?;
        let word = if word == "default" {
            DEFAULT_NETWORK
        } else {
            word
        };
        store::find(self.engine.db().conn(), word)?
            .ok_or_else(|| EngineError::NoSuchNetwork(word.to_string()))
    }

    /// `host` and `none` rows and the default `bridge` (with its host
    /// bridge), as Docker always has them.
    fn ensure_builtin(&self) -> Result<(), EngineError> {
        let present: Vec<String> = store::all(self.engine.db().conn())?
            .into_iter()
            .map(|n| n.name)
            .collect();
        if ["bridge", "host", "none"]
            .iter()
            .all(|n| present.iter().any(|p| p == n))
        {
            return Ok(());
        }
        let _lock = self.lock()?;
        let present: Vec<String> = store::all(self.engine.db().conn())?
            .into_iter()
            .map(|n| n.name)
            .collect();
        for (name, driver) in [("host", "host"), ("none", "null")] {
            if present.iter().any(|p| p == name) {
                continue;
            }
            let rec = NetworkRecord {
                id: names::new_container_id(),
                name: name.into(),
                created: chrono::Utc::now(),
                config: NetworkConfig {
                    driver: driver.into(),
                    ..Default::default()
                },
            };
            let mut db = self.engine.db();
            let tx = db.write()?;
            store::insert(&tx, &rec)?;
            tx.commit()
                .map_err(|e| EngineError::db("committing a network", e))?;
        }
        if !present.iter().any(|p| p == DEFAULT_NETWORK) {
            let mut options = BTreeMap::new();
            options.insert(OPT_BRIDGE_NAME.to_string(), self.default_bridge_name());
            options.insert(OPT_ICC.to_string(), "true".into());
            let subnet = std::env::var("BERTH_BRIDGE_SUBNET")
                .ok()
                .filter(|s| !s.is_empty());
            let req = NetworkCreateRequest {
                name: DEFAULT_NETWORK.into(),
                driver: "bridge".into(),
                subnet,
                options,
                ..Default::default()
            };
            self.create_locked(&req)?;
        }
        Ok(())
    }

    /// `network create`.
    pub fn create(&self, req: &NetworkCreateRequest) -> Result<NetworkRecord, EngineError> {
        host::validate_name(&req.name)?;
        self.ensure_builtin()?;
        let _lock = self.lock()?;
        let rec = self.create_locked(req)?;
        self.network_event(&rec, "create");
        Ok(rec)
    }

    /// `network rm`: refused while a container is connected.
    pub fn remove(&self, word: &str) -> Result<NetworkRecord, EngineError> {
        let rec = self.get(word)?;
        if matches!(rec.name.as_str(), "bridge" | "host" | "none") {
            return Err(EngineError::Conflict(format!(
                "{} is a pre-defined network and cannot be removed",
                rec.name
            )));
        }
        let _lock = self.lock()?;
        let eps = store::endpoints_of_network(self.engine.db().conn(), &rec.id)?;
        if !eps.is_empty() {
            let names = self.container_names(eps.iter().map(|e| e.container_id.as_str()))?;
            return Err(EngineError::Conflict(format!(
                "error while removing network: network {} has active endpoints (name:{:?}): disconnect or remove the containers first",
                rec.name,
                names.join(",")
            )));
        }
        {
            let mut db = self.engine.db();
            let tx = db.write()?;
            store::delete(&tx, &rec.id)?;
            tx.commit()
                .map_err(|e| EngineError::db("committing a network removal", e))?;
        }
        self.teardown_host(&rec);
        self.sync_firewall_locked()?;
        self.network_event(&rec, "destroy");
        Ok(rec)
    }

    /// `network prune`: removes user networks no container uses.
    pub fn prune(&self, labels: &[(String, bool)]) -> Result<Vec<String>, EngineError> {
        let mut removed = Vec::new();
        for n in self.list()? {
            if matches!(n.name.as_str(), "bridge" | "host" | "none") {
                continue;
            }
            let ok = labels.iter().all(|(l, want)| {
                let has = match l.split_once('=') {
                    Some((k, v)) => n.config.labels.get(k).is_some_and(|x| x == v),
                    None => n.config.labels.contains_key(l),
                };
                has == *want
            });
            if !ok || !store::endpoints_of_network(self.engine.db().conn(), &n.id)?.is_empty() {
                continue;
            }
            self.remove(&n.id)?;
            removed.push(n.name);
        }
        Ok(removed)
    }

    /// Removes this root's whole host side: every network's bridge, the
    /// nftables table, berth-dns and pinned namespaces. For tests and
    /// `system reset`; running containers lose their network.
    pub fn reset_host(&self) -> Result<(), EngineError> {
        let _lock = self.lock()?;
        for n in store::all(self.engine.db().conn())? {
            self.teardown_host(&n);
        }
        // A start killed between making the default bridge and recording
        // (or addressing) it leaves a bridge no record names; its name is
        // this root's own unless the environment chose one.
        let chosen = std::env::var("BERTH_BRIDGE_NAME").is_ok_and(|n| !n.is_empty());
        let default_link = self.default_bridge_name();
        if !chosen && berth_net::link_index(&default_link).is_some() {
            if let Err(e) =
                berth_net::Netlink::open().and_then(|mut nl| nl.delete_link(&default_link))
            {
                tracing::warn!("default bridge {default_link}: {e}");
            }
        }
        let netns_dir = self.runroot().join("netns");
        if let Ok(rd) = std::fs::read_dir(&netns_dir) {
            for e in rd.flatten() {
                let _ = berth_net::Netns::remove(&e.path());
            }
        }
        let mut nl = berth_net::Netlink::open()?;
        for ep in store::all_endpoints(self.engine.db().conn())? {
            if let Some(s) = ep.state.filter(|s| !s.host_link.is_empty()) {
                let _ = nl.delete_link(&s.host_link);
            }
        }
        dns::stop_all(&self.runroot());
        berth_net::firewall::delete_table(&self.nft_table())?;
        Ok(())
    }

    fn container_names<'a>(
        &self,
        ids: impl Iterator<Item = &'a str>,
    ) -> Result<Vec<String>, EngineError> {
        let db = self.engine.db();
        let mut out = Vec::new();
        for id in ids {
            let name: Option<String> = db
                .conn()
                .query_row("SELECT name FROM containers WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
                .ok();
            out.push(name.unwrap_or_else(|| id.to_string()));
        }
        Ok(out)
    }

    fn network_event(&self, n: &NetworkRecord, action: &str) {
        self.network_event_with(n, action, "");
    }

    /// Records a network event (`container` for connect/disconnect).
    fn network_event_with(&self, n: &NetworkRecord, action: &str, container: &str) {
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
        let mut attrs = serde_json::json!({"name": n.name, "type": n.config.driver});
        if !container.is_empty() {
            attrs["container"] = serde_json::json!(container);
        }
        let attrs = attrs.to_string();
        let mut db = self.engine.db();
        let res = db.write().and_then(|tx| {
            tx.execute(
                "INSERT INTO events (time_nano, type, action, actor_id, attributes) VALUES (?1, 'network', ?2, ?3, ?4)",
                rusqlite::params![now, action, n.id, attrs],
            )
            .map_err(|e| EngineError::db("recording an event", e))?;
            tx.commit().map_err(|e| EngineError::db("recording an event", e))
        });
        if let Err(e) = res {
            tracing::warn!("network {}: recording event {action}: {e}", n.name);
        }
    }
}
