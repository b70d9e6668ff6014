//! v1 `cpuacct`: CPU usage accounting (nothing to apply).

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::V1Controller;
use crate::stats::Stats;
use crate::{fsutil, CgroupError};

pub(crate) struct CpuAcct;

/// Nanoseconds per clock tick, for `cpuacct.stat`'s USER_HZ counters.
fn nanos_per_tick() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz as u64 } else { 100 };
    1_000_000_000 / hz
}

impl V1Controller for CpuAcct {
    fn subsystem(&self) -> &'static str {
        "cpuacct"
    }

    fn wants(&self, _res: &LinuxResources) -> bool {
        false
    }

    fn apply(&self, _dir: &Path, _res: &LinuxResources) -> Result<(), CgroupError> {
        Ok(())
    }

    fn stats(&self, dir: &Path, stats: &mut Stats) -> Result<(), CgroupError> {
        let usage = &mut stats.cpu.usage;
        usage.total = fsutil::read_u64_or_zero(&dir.join("cpuacct.usage"))?;
        usage.percpu = fsutil::read_u64_list(&dir.join("cpuacct.usage_percpu"))?;
        usage.percpu_kernel = fsutil::read_u64_list(&dir.join("cpuacct.usage_percpu_sys"))?;
        usage.percpu_user = fsutil::read_u64_list(&dir.join("cpuacct.usage_percpu_user"))?;
        let stat = fsutil::read_keyed(&dir.join("cpuacct.stat"))?;
        let tick = nanos_per_tick();
        usage.user = stat.get("user").copied().unwrap_or(0) * tick;
        usage.kernel = stat.get("system").copied().unwrap_or(0) * tick;
        Ok(())
    }
}
