//! v2 `pids` (same files as v1).

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::V2Controller;
use crate::stats::Stats;
use crate::v1::pids::{read_stats, write_limit};
use crate::CgroupError;

pub(crate) struct Pids;

impl V2Controller for Pids {
    fn controller(&self) -> Option<&'static str> {
        Some("pids")
    }

    fn wants(&self, res: &LinuxResources) -> bool {
        res.pids().is_some()
    }

    fn apply(&self, dir: &Path, res: &LinuxResources) -> Result<(), CgroupError> {
        write_limit(dir, res)
    }

    fn stats(&self, dir: &Path, stats: &mut Stats) -> Result<(), CgroupError> {
        read_stats(dir, stats)
    }
}
