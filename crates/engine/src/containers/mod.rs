//! Containers: the model (Docker's `Config`/`HostConfig`), Docker's defaults
//! (capabilities, seccomp profile, names, /etc files), the OCI spec a
//! container runs with, and the lifecycle over the per-container monitor.

pub(crate) mod binaries;

mod boot;

mod create;
pub mod defaults;

mod events;

mod exec;
pub mod fs;
pub mod inspect;

mod launch;

mod lifecycle;
mod list;
pub mod model;
mod paths;

mod remove;

pub mod spec;
mod stats;
mod store;
mod unmount;
mod update;

use std::sync::OnceLock;

use crate::error::EngineError;
use crate::Engine;

pub use binaries::{find as find_binary, Binaries};

pub use events::EventRecord;

pub use exec::{ExecRequest, EXEC_ERRORS_TO_LOG_ONLY};

pub use launch::start_standby_monitor;
pub use lifecycle::{parse_signal, PruneReport};
pub use list::ContainerFilters;

pub use stats::StatsSample;

pub use lifecycle::StartTicket;
pub use paths::ContainerPaths;
pub use store::{ContainerRecord, RunState, Status};
pub use update::ResourceUpdate;

/// Container operations on one [`Engine`].
pub struct ContainerService<'e> {
    engine: &'e Engine,
}
impl<'e> ContainerService<'e> {
    pub(crate) fn new(engine: &'e Engine) -> Self {
        Self { engine }
    }

    pub fn paths(&self, id: &str) -> ContainerPaths {
        let cfg = self.engine.config();
        ContainerPaths::new(&cfg.root, &cfg.runroot, id)
    }

    /// A container's record as stored (no refresh from its monitor).
    pub(crate) fn stored(&self, id: &str) -> Result<Option<ContainerRecord>, EngineError> {
        store::get(self.engine.db().conn(), id)
    }

    /// The helper programs, found once per process.
    pub fn binaries(&self) -> Result<&'static Binaries, EngineError> {
        static BINARIES: OnceLock<Binaries> = OnceLock::new();
        if let Some(b) = BINARIES.get() {
            return Ok(b);
        }
        let found = Binaries::discover()?;
        Ok(BINARIES.get_or_init(|| found))
    }

    /// The container `word` names (id, name or id prefix), with its run
    /// state brought up to date from its monitor.
    pub fn get(&self, word: &str) -> Result<ContainerRecord, EngineError> {
        let rec = store::find(self.engine.db().conn(), word)?;
        self.refresh(rec)
    }

    /// All containers (oldest first) with live state, filtered.
    pub fn list(
        &self,
        all: bool,
        filters: &ContainerFilters,
    ) -> Result<Vec<ContainerRecord>, EngineError> {
        let records = store::load_all(self.engine.db().conn())?;
        let ancestors: Vec<String> = if filters.ancestor.is_empty() {
            Vec::new()
        } else {
            let images = self.engine.images().records()?;
            filters
                .ancestor
                .iter()
                .filter_map(|a| crate::images::resolve_id(&images, a))
                .collect()
        };
        let created_of =
            |word: &Option<String>| -> Result<Option<chrono::DateTime<chrono::Utc>>, EngineError> {
                match word {
                    Some(w) => Ok(Some(store::find(self.engine.db().conn(), w)?.created)),
                    None => Ok(None),
                }
            };
        let mut using_volume: Option<std::collections::HashSet<String>> = None;
        for v in &filters.volume {
            using_volume
                .get_or_insert_with(Default::default)
                .extend(self.engine.volumes().containers_using(v)?);
        }
        let before = created_of(&filters.before)?;
        let since = created_of(&filters.since)?;
        let mut out = Vec::new();
        for rec in records {
            let rec = self.refresh(rec)?;
            let health = self.health_status(&rec);
            let implicit_all = filters.before.is_some()
                || filters.since.is_some()
                || !filters.status.is_empty()
                || !filters.exited.is_empty();
            if !all && !implicit_all && !rec.status.is_active() {
                continue;
            }
            if using_volume
                .as_ref()
                .is_some_and(|ids| !ids.contains(&rec.id))
            {
                continue;
            }
            if before.is_some_and(|t| rec.created >= t) || since.is_some_and(|t| rec.created <= t) {
                continue;
            }
            if filters.matches(&rec, &ancestors, &health)
                && self.engine.networks().ps_filter(&rec, filters)?
            {
                out.push(rec);
            }
        }
        Ok(out)
    }

    /// Docker's `inspect` document.
    pub fn inspect(&self, word: &str) -> Result<serde_json::Value, EngineError> {
        let rec = self.get(word)?;
        let paths = self.paths(&rec.id);
        let graph = self.engine.snapshots().mounts(&rec.id).ok().map(|m| {
            serde_json::json!({
                "Data": {
                    "LowerDir": m.absolute_lowerdirs().iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(":"),
                    "MergedDir": m.merged.display().to_string(),
                    "UpperDir": m.upper.display().to_string(),
                    "WorkDir": m.work.display().to_string(),
                },
                "Name": "overlay2",
            })
        });
        let mut doc = inspect::inspect_json(&rec, &paths, graph, self.health_json(&rec));
        let mounts = self.engine.volumes().mounts_of(&rec.id)?;
        if !mounts.is_empty() {
            doc["Mounts"] = self.engine.volumes().mounts_json(&rec.id)?;
        }
        doc["NetworkSettings"] = self.engine.networks().container_settings(&rec)?;
        Ok(doc)
    }
}

/// `/dev/shm`'s size when `--shm-size` is not given (Docker's 64 MiB).
pub const DEFAULT_SHM_SIZE: i64 = 64 << 20;
/// The log driver when `--log-driver` is not given.
pub const DEFAULT_LOG_DRIVER: &str = "json-file";
/// The OCI runtime when `--runtime` is not given: berth's own.
pub const DEFAULT_RUNTIME: &str = "berth";
/// In a container's run dir while `restart` stops it: its exit cleanup
/// then keeps a `--rm` container.
pub(crate) const RESTARTING_MARKER: &str = "restarting";
/// In a container's run dir while `rm -f` stops it: its exit cleanup then
/// skips waiting for the writable layer to be synced.
pub(crate) const REMOVING_MARKER: &str = "removing";
/// Seconds `stop` waits before SIGKILL when neither `--stop-timeout` nor `-t` says.
pub const DEFAULT_STOP_TIMEOUT: i64 = 10;

/// The network mode a container effectively has: Docker's default is the
/// default `bridge` network.
pub fn network_mode(c: &ContainerRecord) -> String {
    match c.host_config.network_mode.as_str() {
        "" | "default" => crate::networks::DEFAULT_NETWORK.to_string(),
        m => m.to_string(),
    }
}
