//! `update`: new resource limits (and restart policy) for a container,
//! applied to a running one through its runtime's `update`, and stored.

use super::model::{HostConfig, RestartPolicy};
use super::store::{self, ContainerRecord, Status};
use super::ContainerService;
use crate::error::EngineError;

/// What `update` may change; `None` leaves a value as it is.
#[derive(Debug, Clone, Default)]
pub struct ResourceUpdate {
    pub cpu_shares: Option<i64>,
    pub memory: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub memory_swap: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub cpu_period: Option<i64>,
    pub cpu_quota: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_limit: Option<i64>,
    pub blkio_weight: Option<u16>,
    pub restart_policy: Option<RestartPolicy>,
}

impl ResourceUpdate {
    fn apply(&self, h: &mut HostConfig) {
        macro_rules! set {
            ($field:ident) => {
                if let Some(v) = &self.$field {
                    h.$field = v.clone();
                }
            };
        }
        set!(cpu_shares);
        set!(memory);
        set!(memory_reservation);
        set!(memory_swap);
        set!(nano_cpus);
        set!(cpu_period);
        set!(cpu_quota);
        set!(cpuset_cpus);
        set!(cpuset_mems);
        set!(blkio_weight);
        set!(restart_policy);
        if let Some(p) = self.pids_limit {
            h.pids_limit = Some(p);
        }
        // Docker: a new --cpus replaces a quota and vice versa.
        if self.nano_cpus.is_some_and(|n| n > 0) {
            h.cpu_quota = 0;
            h.cpu_period = 0;
        } else if self.cpu_quota.is_some() || self.cpu_period.is_some() {
            h.nano_cpus = 0;
        }
    }
}

impl ContainerService<'_> {
    /// Applies `u` to container `word`.
    pub fn update(&self, word: &str, u: &ResourceUpdate) -> Result<ContainerRecord, EngineError> {
        let rec = self.get(word)?;
        let mut host = rec.host_config.clone();
        u.apply(&mut host);
        if host.auto_remove && !matches!(host.restart_policy.name.as_str(), "" | "no") {
            return Err(EngineError::InvalidArgument(
                "Restart policy cannot be updated because AutoRemove is enabled for the container"
                    .into(),
            ));
        }
        // Validates the whole set (Docker's ranges and conflicts).
        let resources =
            super::spec::update_resources(&host, super::lifecycle::host_facts().cgroup_v2)?;
        if matches!(rec.status, Status::Running | Status::Paused) {
            let json = serde_json::to_vec(&resources)
                .map_err(|e| EngineError::Corrupt(format!("encoding resources: {e}")))?;
            let dir = self.paths(&rec.id).run_dir;
            let file = dir.join("update.json");
            std::fs::write(&file, &json)
                .map_err(|e| EngineError::io(format!("writing {}", file.display()), e))?;
            let res = self.runtime_command(
                &rec,
                &["update", "-r", &file.display().to_string(), &rec.id],
            );
            let _ = std::fs::remove_file(&file);
            res.map_err(|e| match e {
                EngineError::Conflict(m) => {
                    EngineError::InvalidArgument(format!("Cannot update container {}: {m}", rec.id))
                }
                other => other,
            })?;
        }
        {
            let mut db = self.engine.db();
            let tx = db.write()?;
            store::set_host_config(&tx, &rec.id, &host)?;
            tx.commit()
                .map_err(|e| EngineError::db("committing an update", e))?;
        }
        self.event(&rec, "update");
        self.get(&rec.id)
    }
}
