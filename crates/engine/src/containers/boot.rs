//! `system boot`: after a reboot, restarts the containers whose restart
//! policy says so (`always`; `unless-stopped` unless a user stopped it),
//! as Docker's daemon does when it starts. The runroot (a tmpfs) is empty
//! then, so every container first gets its stale running state cleaned up.

use super::store::{self, ContainerRecord};
use super::ContainerService;
use crate::error::EngineError;

/// A container `system boot` started, and how its start went.
pub type BootResult = (ContainerRecord, Result<(), EngineError>);

impl ContainerService<'_> {
    /// Reconciles every container and starts those due; returns each
    /// started container with the result of its start.
    pub fn boot(&self) -> Result<Vec<BootResult>, EngineError> {
        let all = store::load_all(self.engine.db().conn())?;
        let mut out = Vec::new();
        for rec in all {
            // refresh() finishes the cleanup of containers whose monitor and
            // processes are gone.
            let rec = match self.refresh(rec) {
                Ok(r) => r,
                Err(EngineError::NoSuchContainer(_)) => continue,
                Err(e) => return Err(e),
            };
            if rec.status.is_active() {
                continue;
            }
            let due = match rec.host_config.restart_policy.name.as_str() {
                "always" => true,
                "unless-stopped" => !rec.run.manually_stopped,
                _ => false,
            };
            if !due || rec.run.started_at.is_empty() {
                continue;
            }
            let res = self.start(&rec.id).map(drop);
            out.push((rec, res));
        }
        Ok(out)
    }
}
