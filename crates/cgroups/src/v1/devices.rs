//! v1 `devices`: allow/deny lists.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::V1Controller;
use crate::devices::rules_from_spec;
use crate::devices::v1_state::DeviceState;
use crate::{fsutil, CgroupError};

pub(crate) struct Devices;

impl V1Controller for Devices {
    fn subsystem(&self) -> &'static str {
        "devices"
    }

    /// A spec without a device list leaves the cgroup's devices as they
    /// are (an `update` that changes only other resources).
    fn wants(&self, res: &LinuxResources) -> bool {
        res.devices().is_some()
    }

    fn apply(&self, dir: &Path, res: &LinuxResources) -> Result<(), CgroupError> {
        let Some(list) = res.devices() else {
            return Ok(());
        };
        let rules = rules_from_spec(list)?;
        // Start from "nothing allowed" and replay the rules in order, so
        // that later rules override earlier ones as the spec says.
        fsutil::write(dir, "devices.deny", "a")?;
        for rule in &rules {
            let file = if rule.allow {
                "devices.allow"
            } else {
                "devices.deny"
            };
            fsutil::write(dir, file, rule.v1_line())?;
        }
        Ok(())
    }
}
