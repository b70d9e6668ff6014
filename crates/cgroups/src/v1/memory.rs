//! v1 `memory`: limit, memory+swap, reservation, kernel memory,
//! swappiness, OOM killer.

use std::path::Path;

use oci_spec::runtime::{LinuxMemory, LinuxResources};

use super::V1Controller;
use crate::stats::{MemoryEntry, Stats};
use crate::{fsutil, CgroupError};

pub(crate) struct Memory;

const LIMIT: &str = "memory.limit_in_bytes";
const MEMSW_LIMIT: &str = "memory.memsw.limit_in_bytes";

fn is_set(v: Option<i64>) -> bool {
    v.is_some_and(|v| v != 0)
}

impl V1Controller for Memory {
    fn subsystem(&self) -> &'static str {
        "memory"
    }

    fn wants(&self, res: &LinuxResources) -> bool {
        res.memory().as_ref().is_some_and(|m| {
            is_set(m.limit())
                || is_set(m.swap())
                || is_set(m.reservation())
                || is_set(m.kernel())
                || is_set(m.kernel_tcp())
                || m.swappiness().is_some()
                || m.disable_oom_killer() == Some(true)
        })
    }

    fn apply(&self, dir: &Path, res: &LinuxResources) -> Result<(), CgroupError> {
        let Some(mem) = res.memory() else {
            return Ok(());
        };
        set_limit_and_swap(dir, mem)?;
        if let Some(reservation) = mem.reservation().filter(|v| *v != 0) {
            fsutil::write(dir, "memory.soft_limit_in_bytes", reservation)?;
        }
        // Kernel memory limits are gone from recent kernels; like runc,
        // skip them where the file does not exist.
        if let Some(kernel) = mem.kernel().filter(|v| *v != 0) {
            fsutil::write_if_exists(dir, "memory.kmem.limit_in_bytes", kernel)?;
        }
        if let Some(tcp) = mem.kernel_tcp().filter(|v| *v != 0) {
            fsutil::write_if_exists(dir, "memory.kmem.tcp.limit_in_bytes", tcp)?;
        }
        if let Some(swappiness) = mem.swappiness() {
            if swappiness > 100 {
                return Err(CgroupError::InvalidResource {
                    field: "memory.swappiness",
                    value: swappiness.to_string(),
                    reason: "must be 0..=100".to_string(),
                });
            }
            fsutil::write(dir, "memory.swappiness", swappiness)?;
        }
        if mem.disable_oom_killer() == Some(true) {
            fsutil::write(dir, "memory.oom_control", 1)?;
        }
        Ok(())
    }

    fn stats(&self, dir: &Path, stats: &mut Stats) -> Result<(), CgroupError> {
        let m = &mut stats.memory;
        m.usage = entry(dir, "memory")?;
        m.swap = entry(dir, "memory.memsw")?;
        m.kernel = entry(dir, "memory.kmem")?;
        m.kernel_tcp = entry(dir, "memory.kmem.tcp")?;
        m.raw = fsutil::read_keyed(&dir.join("memory.stat"))?;
        m.cache = m.raw.get("cache").copied().unwrap_or(0);
        Ok(())
    }
}

/// v1 keeps `memory.memsw.limit_in_bytes >= memory.limit_in_bytes` at all
/// times, so the order of the two writes depends on whether the limits
/// grow or shrink (runc's setMemoryAndSwap).
fn set_limit_and_swap(dir: &Path, mem: &LinuxMemory) -> Result<(), CgroupError> {
    let limit = mem.limit().unwrap_or(0);
    let mut swap = mem.swap().unwrap_or(0);
    // Lifting the memory limit without saying anything about swap lifts
    // memory+swap as well.
    if limit == -1 && swap == 0 {
        swap = -1;
    }
    if limit != 0 && swap != 0 {
        let current = fsutil::read_u64(&dir.join(LIMIT))?;
        if swap == -1 || current < swap as u64 {
            fsutil::write(dir, MEMSW_LIMIT, swap)?;
            fsutil::write(dir, LIMIT, limit)?;
        } else {
            fsutil::write(dir, LIMIT, limit)?;
            fsutil::write(dir, MEMSW_LIMIT, swap)?;
        }
    } else {
        if limit != 0 {
            fsutil::write(dir, LIMIT, limit)?;
        }
        if swap != 0 {
            fsutil::write(dir, MEMSW_LIMIT, swap)?;
        }
    }
    Ok(())
}

fn entry(dir: &Path, prefix: &str) -> Result<MemoryEntry, CgroupError> {
    let file = |name: &str| dir.join(format!("{prefix}.{name}"));
    Ok(MemoryEntry {
        limit: fsutil::read_u64_or_zero(&file("limit_in_bytes"))?,
        usage: fsutil::read_u64_or_zero(&file("usage_in_bytes"))?,
        max: fsutil::read_u64_or_zero(&file("max_usage_in_bytes"))?,
        failcnt: fsutil::read_u64_or_zero(&file("failcnt"))?,
    })
}

/// The `oom_kill` counter of `memory.oom_control` (kernel 4.13+).
pub(crate) fn oom_kill_count(dir: &Path) -> Result<u64, CgroupError> {
    let path = dir.join("memory.oom_control");
    let keyed = fsutil::read_keyed(&path)?;
    Ok(keyed.get("oom_kill").copied().unwrap_or(0))
}
