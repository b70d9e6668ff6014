//! v1 `pids`: the process number limit.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::V1Controller;
use crate::stats::Stats;
use crate::{fsutil, CgroupError};

pub(crate) struct Pids;

/// Writes `pids.max` (shared with v2, same file).
pub(crate) fn write_limit(dir: &Path, res: &LinuxResources) -> Result<(), CgroupError> {
    if let Some(pids) = res.pids() {
        fsutil::write(dir, "pids.max", max_value(pids.limit()))?;
    }
    Ok(())
}

/// `pids.max` value for an OCI limit: zero or negative means no limit.
fn max_value(limit: i64) -> String {
    if limit > 0 {
        limit.to_string()
    } else {
        "max".to_string()
    }
}

/// Reads `pids.current`/`pids.max` (shared with v2, same files).
pub(crate) fn read_stats(dir: &Path, stats: &mut Stats) -> Result<(), CgroupError> {
    stats.pids.current = fsutil::read_u64_or_zero(&dir.join("pids.current"))?;
    let max = fsutil::read_u64_or_zero(&dir.join("pids.max"))?;
    stats.pids.limit = if max == u64::MAX { 0 } else { max };
    Ok(())
}

impl V1Controller for Pids {
    fn subsystem(&self) -> &'static str {
        "pids"
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
