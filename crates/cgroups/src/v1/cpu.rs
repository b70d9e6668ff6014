//! v1 `cpu`: shares, CFS quota/period/burst, realtime, idle.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::V1Controller;
use crate::stats::Stats;
use crate::{fsutil, CgroupError};

pub(crate) struct Cpu;

impl V1Controller for Cpu {
    fn subsystem(&self) -> &'static str {
        "cpu"
    }

    fn wants(&self, res: &LinuxResources) -> bool {
        res.cpu().as_ref().is_some_and(|c| {
            c.shares().is_some()
                || c.quota().is_some_and(|q| q != 0)
                || c.period().is_some_and(|p| p != 0)
                || c.burst().is_some()
                || c.realtime_period().is_some_and(|p| p != 0)
                || c.realtime_runtime().is_some_and(|r| r != 0)
                || c.idle().is_some()
        })
    }

    fn apply(&self, dir: &Path, res: &LinuxResources) -> Result<(), CgroupError> {
        let Some(cpu) = res.cpu() else {
            return Ok(());
        };
        if let Some(shares) = cpu.shares().filter(|s| *s != 0) {
            fsutil::write(dir, "cpu.shares", shares)?;
            // The kernel clamps shares silently; say so instead of running
            // with a weight the user did not ask for (runc does the same).
            let stored = fsutil::read_u64(&dir.join("cpu.shares"))?;
            if stored != shares {
                return Err(CgroupError::InvalidResource {
                    field: "cpu.shares",
                    value: shares.to_string(),
                    reason: format!("the kernel stored {stored} instead (allowed: 2..=262144)"),
                });
            }
        }
        // The realtime period first: a runtime is checked against it.
        if let Some(period) = cpu.realtime_period().filter(|p| *p != 0) {
            fsutil::write(dir, "cpu.rt_period_us", period)?;
        }
        if let Some(runtime) = cpu.realtime_runtime().filter(|r| *r != 0) {
            fsutil::write(dir, "cpu.rt_runtime_us", runtime)?;
        }
        let quota = cpu.quota().filter(|q| *q != 0);
        let mut period_pending = None;
        if let Some(period) = cpu.period().filter(|p| *p != 0) {
            match fsutil::write(dir, "cpu.cfs_period_us", period) {
                Ok(()) => {}
                // A shorter period can push old_quota/new_period over the
                // parent's limit; it fits once the new quota is in place.
                Err(CgroupError::Write { source, .. })
                    if source.raw_os_error() == Some(libc::EINVAL) && quota.is_some() =>
                {
                    period_pending = Some(period);
                }
                Err(e) => return Err(e),
            }
        }
        if let Some(quota) = quota {
            fsutil::write(dir, "cpu.cfs_quota_us", quota)?;
        }
        if let Some(period) = period_pending {
            fsutil::write(dir, "cpu.cfs_period_us", period)?;
        }
        if let Some(burst) = cpu.burst() {
            fsutil::write(dir, "cpu.cfs_burst_us", burst)?;
        }
        if let Some(idle) = cpu.idle() {
            fsutil::write(dir, "cpu.idle", idle)?;
        }
        Ok(())
    }

    fn stats(&self, dir: &Path, stats: &mut Stats) -> Result<(), CgroupError> {
        let stat = fsutil::read_keyed(&dir.join("cpu.stat"))?;
        let t = &mut stats.cpu.throttling;
        t.periods = stat.get("nr_periods").copied().unwrap_or(0);
        t.throttled_periods = stat.get("nr_throttled").copied().unwrap_or(0);
        t.throttled_time = stat.get("throttled_time").copied().unwrap_or(0);
        Ok(())
    }
}
