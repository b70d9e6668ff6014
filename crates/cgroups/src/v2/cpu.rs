//! v2 `cpu`: weight (from OCI shares), `cpu.max`, burst, idle.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::V2Controller;
use crate::stats::Stats;
use crate::{fsutil, CgroupError};

pub(crate) struct Cpu;

/// Maps v1 shares (2..=262144, default 1024) onto v2 weight (1..=10000,
/// default 100) with the quadratic-in-log curve runc uses since 1.3
/// (opencontainers/cgroups), which keeps 2→1, 1024→100 and 262144→10000.
/// The older linear formula mapped the default 1024 to 39.
pub(crate) fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    if shares <= 2 {
        return 1;
    }
    if shares >= 262_144 {
        return 10_000;
    }
    let l = (shares as f64).log2();
    let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
    10f64.powf(exponent).ceil() as u64
}

/// The `cpu.max` line for an OCI quota/period; `None` leaves it alone.
pub(crate) fn max_line(quota: Option<i64>, period: Option<u64>) -> Option<String> {
    let quota = quota.unwrap_or(0);
    let period = period.unwrap_or(0);
    if quota == 0 && period == 0 {
        return None;
    }
    let mut line = if quota > 0 {
        quota.to_string()
    } else {
        "max".to_string()
    };
    if period != 0 {
        line.push_str(&format!(" {period}"));
    }
    Some(line)
}

impl V2Controller for Cpu {
    fn controller(&self) -> Option<&'static str> {
        Some("cpu")
    }

    fn wants(&self, res: &LinuxResources) -> bool {
        res.cpu().as_ref().is_some_and(|c| {
            c.shares().is_some_and(|s| s != 0)
                || max_line(c.quota(), c.period()).is_some()
                || c.burst().is_some()
                || c.idle().is_some()
                || c.realtime_period().is_some_and(|p| p != 0)
                || c.realtime_runtime().is_some_and(|r| r != 0)
        })
    }

    fn apply(&self, dir: &Path, res: &LinuxResources) -> Result<(), CgroupError> {
        let Some(cpu) = res.cpu() else {
            return Ok(());
        };
        if cpu.realtime_period().is_some_and(|p| p != 0)
            || cpu.realtime_runtime().is_some_and(|r| r != 0)
        {
            return Err(CgroupError::InvalidResource {
                field: "cpu.realtimeRuntime",
                value: format!("{:?}/{:?}", cpu.realtime_runtime(), cpu.realtime_period()),
                reason: "cgroup v2 has no realtime CPU bandwidth settings".to_string(),
            });
        }
        if let Some(idle) = cpu.idle() {
            fsutil::write(dir, "cpu.idle", idle)?;
        }
        if let Some(shares) = cpu.shares().filter(|s| *s != 0) {
            fsutil::write(dir, "cpu.weight", shares_to_weight(shares))?;
        }
        let max = max_line(cpu.quota(), cpu.period());
        if let Some(burst) = cpu.burst() {
            // The kernel refuses a burst above the quota; when the quota
            // grows in the same update, the burst goes in after it.
            if let Err(e) = fsutil::write(dir, "cpu.max.burst", burst) {
                let Some(max) = &max else { return Err(e) };
                fsutil::write(dir, "cpu.max", max)?;
                fsutil::write(dir, "cpu.max.burst", burst)?;
                return Ok(());
            }
        }
        if let Some(max) = max {
            fsutil::write(dir, "cpu.max", max)?;
        }
        Ok(())
    }

    fn stats(&self, dir: &Path, stats: &mut Stats) -> Result<(), CgroupError> {
        // cpu.stat is a core file: it exists even without the controller.
        let stat = fsutil::read_keyed(&dir.join("cpu.stat"))?;
        let get = |k: &str| stat.get(k).copied().unwrap_or(0);
        stats.cpu.usage.total = get("usage_usec") * 1000;
        stats.cpu.usage.user = get("user_usec") * 1000;
        stats.cpu.usage.kernel = get("system_usec") * 1000;
        stats.cpu.throttling.periods = get("nr_periods");
        stats.cpu.throttling.throttled_periods = get("nr_throttled");
        stats.cpu.throttling.throttled_time = get("throttled_usec") * 1000;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_map_onto_weights_like_runc() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 100);
        assert_eq!(shares_to_weight(262_144), 10_000);
        // The edge cases opencontainers/cgroups' own test pins.
        assert_eq!(shares_to_weight(1), 1);
        assert_eq!(shares_to_weight(3), 2);
        assert_eq!(shares_to_weight(262_143), 10_000);
        assert_eq!(shares_to_weight(262_145), 10_000);
        let mut last = 0;
        for s in (2..=262_144).step_by(97) {
            let w = shares_to_weight(s);
            assert!(w >= last && (1..=10_000).contains(&w), "{s} -> {w}");
            last = w;
        }
    }

    #[test]
    fn cpu_max_lines() {
        assert_eq!(max_line(None, None), None);
        assert_eq!(
            max_line(Some(50_000), Some(100_000)).as_deref(),
            Some("50000 100000")
        );
        assert_eq!(
            max_line(Some(-1), Some(100_000)).as_deref(),
            Some("max 100000")
        );
        assert_eq!(max_line(Some(20_000), None).as_deref(), Some("20000"));
        assert_eq!(max_line(None, Some(250_000)).as_deref(), Some("max 250000"));
    }
}
