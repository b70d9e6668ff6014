//! v2 `pids`.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::V2Controller;
use crate::stats::Stats;
use crate::v1::pids::{max_value, read_stats};
use crate::{fsutil, CgroupError};

pub(crate) struct Pids;

impl V2Controller for Pids {
    fn controller(&self) -> Option<&'static str> {
        Some("pids")
    }

    fn wants(&self, res: &LinuxResources) -> bool {
        res.pids().is_some()
    }

    fn apply(&self, dir: &Path, res: &LinuxResources) -> Result<(), CgroupError> {
        if let Some(pids) = res.pids() {
            fsutil::write(dir, "pids.max", max_value(pids.limit()))?;
        }
        Ok(())
    }

    fn stats(&self, dir: &Path, stats: &mut Stats) -> Result<(), CgroupError> {
        read_stats(dir, stats)
    }
}
