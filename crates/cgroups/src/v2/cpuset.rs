//! v2 `cpuset`: cpus and mems.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::V2Controller;
use crate::{fsutil, CgroupError};

pub(crate) struct Cpuset;

impl V2Controller for Cpuset {
    fn controller(&self) -> Option<&'static str> {
        Some("cpuset")
    }

    fn wants(&self, res: &LinuxResources) -> bool {
        res.cpu().as_ref().is_some_and(|c| {
            c.cpus().as_ref().is_some_and(|s| !s.is_empty())
                || c.mems().as_ref().is_some_and(|s| !s.is_empty())
        })
    }

    fn apply(&self, dir: &Path, res: &LinuxResources) -> Result<(), CgroupError> {
        let Some(cpu) = res.cpu() else {
            return Ok(());
        };
        if let Some(cpus) = cpu.cpus().as_deref().filter(|s| !s.is_empty()) {
            fsutil::write(dir, "cpuset.cpus", cpus)?;
        }
        if let Some(mems) = cpu.mems().as_deref().filter(|s| !s.is_empty()) {
            fsutil::write(dir, "cpuset.mems", mems)?;
        }
        Ok(())
    }
}
