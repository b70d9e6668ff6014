//! v1 `net_prio`: per-interface priorities.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::V1Controller;
use crate::{fsutil, CgroupError};

pub(crate) struct NetPrio;

impl V1Controller for NetPrio {
    fn subsystem(&self) -> &'static str {
        "net_prio"
    }

    fn wants(&self, res: &LinuxResources) -> bool {
        res.network()
            .as_ref()
            .is_some_and(|n| n.priorities().as_ref().is_some_and(|p| !p.is_empty()))
    }

    fn apply(&self, dir: &Path, res: &LinuxResources) -> Result<(), CgroupError> {
        let priorities = res.network().as_ref().and_then(|n| n.priorities().clone());
        for p in priorities.iter().flatten() {
            if p.name().is_empty() || p.name().contains(char::is_whitespace) {
                return Err(CgroupError::InvalidResource {
                    field: "network.priorities.name",
                    value: p.name().clone(),
                    reason: "an interface name is non-empty and has no spaces".to_string(),
                });
            }
            // The kernel takes one "ifname prio" pair per write.
            fsutil::write(
                dir,
                "net_prio.ifpriomap",
                format!("{} {}", p.name(), p.priority()),
            )?;
        }
        Ok(())
    }
}
