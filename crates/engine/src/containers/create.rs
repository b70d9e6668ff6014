//! `create`: a container record, its overlay snapshot and its /etc files.
//!
//! Order matters for crash safety: the row is written first (so a killed
//! `berth` leaves a container that `ps -a` shows and `rm -f` removes), then
//! the snapshot and files; a failure after the row removes all of it.

use chrono::Utc;

use super::defaults::{self, names};
use super::model::CreateRequest;
use super::paths::ContainerPaths;
use super::store::{self, ContainerRecord, RunState, Status};
use super::ContainerService;
use crate::error::EngineError;

impl ContainerService<'_> {
    /// Creates a container from `req`; returns the stored record.
    pub fn create(&self, req: CreateRequest) -> Result<ContainerRecord, EngineError> {
        let engine = self.engine;
        let image_word = req.config.image.clone();
        if image_word.is_empty() {
            return Err(EngineError::InvalidArgument(
                "no image given: berth create/run needs an image name, e.g. `berth run busybox`"
                    .into(),
            ));
        }
        if let Some(name) = &req.name {
            names::validate_name(name).map_err(|e| EngineError::InvalidArgument(e.to_string()))?;
        }
        validate_modes(&req)?;
        let endpoints = req.endpoints.clone();
        self.check_networks(&req)?;
        let image = engine.images().record(&image_word).map_err(|e| match e {
            EngineError::NoSuchImage(_) => EngineError::ImageNotFoundLocally(
                berth_image::Reference::parse(&image_word)
                    .map(|r| r.familiar())
                    .unwrap_or_else(|_| image_word.clone()),
            ),
            other => other,
        })?;
        let mut config = req.config;
        defaults::merge_image_config(&mut config, &image.config)
            .map_err(|e| EngineError::InvalidArgument(e.to_string()))?;
        config.image = image_word;
        let mut host_config = req.host_config;
        if host_config.network_mode.is_empty() || host_config.network_mode == "default" {
            host_config.network_mode = crate::networks::DEFAULT_NETWORK.into();
        }
        // Docker's daemon stores the defaults it applies, so that inspect
        // shows what the container runs with (swap: as much again as -m).
        if host_config.ipc_mode.is_empty() {
            host_config.ipc_mode = "private".into();
        }
        if host_config.memory > 0 && host_config.memory_swap == 0 {
            host_config.memory_swap = host_config.memory.saturating_mul(2);
        }
        let id = names::new_container_id();
        // Sharing the host's UTS namespace keeps the host's name (a set
        // hostname would then conflict with --uts host); joining another
        // container's network takes its name, as Docker does. A missing
        // container X is reported when the namespace is joined at start.
        let joined = host_config
            .network_mode
            .strip_prefix("container:")
            .and_then(|x| self.get(x).ok());
        if let Some(other) = joined.filter(|_| config.hostname.is_empty()) {
            config.hostname = other.config.hostname;
        }
        if config.hostname.is_empty()
            && host_config.network_mode != "host"
            && host_config.uts_mode != "host"
        {
            config.hostname = id[..12].to_string();
        }
        let record = ContainerRecord {
            id: id.clone(),
            name: String::new(),
            image_id: image.id.to_string(),
            image_name: config.image.clone(),
            created: Utc::now(),
            status: Status::Created,
            config,
            host_config,
            run: RunState::default(),
        };
        let record = self.insert_named(record, req.name)?;
        let paths = self.paths(&id);
        let volumes = self.engine.volumes();
        let prepared = volumes
            .register_container(&record)
            .and_then(|()| self.engine.networks().add_endpoints(&record, &endpoints))
            .and_then(|()| {
                self.prepare_files(&record, &paths, image.layers.last().map(|l| &l.chain_id))
            });
        if let Err(e) = prepared {
            let mounts = volumes.mounts_of(&id).unwrap_or_default();
            if let Err(cleanup) = self.remove_files(&record, &paths) {
                tracing::warn!("cleaning up after a failed create of {id}: {cleanup}");
            }
            if let Err(cleanup) = self.delete_row(&id) {
                tracing::warn!("cleaning up after a failed create of {id}: {cleanup}");
            }
            volumes.release_removed(&mounts, true);
            return Err(e);
        }
        self.event(&record, "create");
        Ok(record)
    }

    /// Inserts with the given name, or with a generated one (retrying on
    /// the rare collision, as Docker does).
    fn insert_named(
        &self,
        mut record: ContainerRecord,
        name: Option<String>,
    ) -> Result<ContainerRecord, EngineError> {
        let mut db = self.engine.db();
        let fixed = name.map(|n| n.trim_start_matches('/').to_string());
        for attempt in 0..10usize {
            record.name = match &fixed {
                Some(n) => n.clone(),
                None => names::random_name_with_suffix(&mut rand::rng(), attempt),
            };
            let tx = db.write()?;
            match store::insert(&tx, &record) {
                Ok(()) => {
                    tx.commit()
                        .map_err(|e| EngineError::db("committing a new container", e))?;
                    return Ok(record);
                }
                Err(EngineError::Conflict(_)) if fixed.is_none() => continue,
                Err(e) => return Err(e),
            }
        }
        Err(EngineError::Conflict(
            "could not find a free container name; pass --name".into(),
        ))
    }

    fn prepare_files(
        &self,
        c: &ContainerRecord,
        paths: &ContainerPaths,
        top_layer: Option<&berth_image::Digest>,
    ) -> Result<(), EngineError> {
        for dir in [&paths.dir, &paths.run_dir] {
            std::fs::create_dir_all(dir)
                .map_err(|e| EngineError::io(format!("creating {}", dir.display()), e))?;
        }
        self.engine.snapshots().prepare(&c.id, top_layer)?;
        // Bad --add-host/--dns values fail the create; `start` writes the files.
        let net = self.engine.networks().etc_inputs(c)?;
        etc_files_for(c, &net)?;
        Ok(())
    }
}

/// The container's /etc/hostname, hosts and resolv.conf, from its config
/// and the host's files.
pub(crate) fn etc_files_for(
    c: &ContainerRecord,
    net: &crate::networks::NetEtc,
) -> Result<defaults::EtcFiles, EngineError> {
    let h = &c.host_config;
    let network = net.network;
    let host_hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let resolv_path = defaults::etc_files::host_resolv_conf_path();
    let host_resolv = std::fs::read_to_string(&resolv_path).unwrap_or_default();
    let hostname = if c.config.hostname.is_empty() {
        nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default()
    } else {
        c.config.hostname.clone()
    };
    let input = defaults::EtcFilesInput {
        hosts: defaults::etc_files::HostsInput {
            hostname: &hostname,
            domainname: &c.config.domainname,
            network,
            container_ips: &net.ips,
            extra_hosts: h.extra_hosts.as_deref().unwrap_or_default(),
            host_gateway_ips: &net.host_gateway,
            links: &net.links,
            host_hosts: &host_hosts,
        },
        dns: defaults::etc_files::DnsOverrides {
            servers: &h.dns,
            search: &h.dns_search,
            options: &h.dns_options,
        },
        host_resolv_conf: &host_resolv,
        host_resolv_conf_path: &resolv_path,
    };
    defaults::etc_files(&input).map_err(|e| EngineError::InvalidArgument(e.to_string()))
}

impl ContainerService<'_> {
    /// The networks named exist, and fixed host ports are free, before
    /// anything of the container is created.
    fn check_networks(&self, req: &CreateRequest) -> Result<(), EngineError> {
        let nets = self.engine.networks();
        let mode = req.host_config.network_mode.as_str();
        if crate::networks::mode_uses_network(mode) && !mode.is_empty() {
            nets.get(mode)?;
        }
        for e in &req.endpoints {
            if crate::networks::mode_uses_network(&e.network) && e.network != "default" {
                nets.get(&e.network)?;
            }
        }
        if mode.starts_with("container:")
            && (!req.host_config.port_bindings.is_empty() || req.host_config.publish_all_ports)
        {
            return Err(EngineError::InvalidArgument(
                "conflicting options: port publishing and the container type network mode".into(),
            ));
        }
        if !req.host_config.port_bindings.is_empty()
            && !crate::networks::mode_uses_network(if mode.is_empty() { "default" } else { mode })
        {
            // Docker drops port bindings of host/none/container: modes.
            return Ok(());
        }
        nets.check_ports(&req.host_config)
    }
}

/// Modes this build can honour; the rest fail before anything is created.
fn validate_modes(req: &CreateRequest) -> Result<(), EngineError> {
    let h = &req.host_config;
    match h.runtime.as_str() {
        "" | "berth" | "runc" | "crun" => {}
        r if r.starts_with('/') => {}
        r => {
            return Err(EngineError::InvalidArgument(format!(
                "unknown or invalid runtime name: {r}: use berth, runc, crun or an absolute path"
            )))
        }
    }
    match h.log_config.kind.as_str() {
        "" | "json-file" | "local" | "none" => {}
        d => {
            return Err(EngineError::InvalidArgument(format!(
                "failed to create logging driver: logger: no log driver named '{d}' is registered: use json-file, local or none"
            )))
        }
    }
    Ok(())
}
