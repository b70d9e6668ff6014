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
        // The rules replayed onto "deny all" give the target state (later
        // rules override earlier ones, as the spec says); only the
        // difference to what the kernel has now is written.
        let target = DeviceState::from_rules(&rules_from_spec(list)?);
        let current = fsutil::read_optional(&dir.join("devices.list"))?
            .and_then(|text| DeviceState::parse_list(&text));
        for (file, line) in target.writes_from(current.as_ref()) {
            fsutil::write(dir, file, line)?;
        }
        Ok(())
    }
}
