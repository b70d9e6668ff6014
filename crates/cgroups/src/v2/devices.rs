//! v2 devices: there is no controller file; access is decided by an eBPF
//! program attached to the cgroup (see `devices::bpf`).

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::V2Controller;
use crate::devices::{bpf, rules_from_spec};
use crate::CgroupError;

pub(crate) struct Devices;

impl V2Controller for Devices {
    /// Device programs are part of cgroup2 itself, with no controller to
    /// enable; they work even on a hybrid host's controller-less tree.
    fn controller(&self) -> Option<&'static str> {
        None
    }

    fn wants(&self, res: &LinuxResources) -> bool {
        res.devices().is_some()
    }

    fn apply(&self, dir: &Path, res: &LinuxResources) -> Result<(), CgroupError> {
        let Some(list) = res.devices() else {
            return Ok(());
        };
        bpf::attach(dir, &rules_from_spec(list)?)
    }
}
