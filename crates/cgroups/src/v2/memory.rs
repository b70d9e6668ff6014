//! v2 `memory`: `memory.max`, `memory.swap.max`, `memory.low`.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::V2Controller;
use crate::stats::{MemoryEntry, Stats};
use crate::{fsutil, CgroupError};

pub(crate) struct Memory;

/// v2's `memory.swap.max` limits swap alone, while OCI's `swap` (from v1)
/// is memory+swap: convert as runc does. 0 means unset, -1 unlimited.
pub(crate) fn swap_value(swap: i64, limit: i64) -> Result<i64, CgroupError> {
    // Lifting the memory limit without a word on swap lifts swap too.
    if limit == -1 && swap == 0 {
        return Ok(-1);
    }
    if swap == -1 || swap == 0 {
        return Ok(swap);
    }
    let invalid = |reason: &str| CgroupError::InvalidResource {
        field: "memory.swap",
        value: swap.to_string(),
        reason: reason.to_string(),
    };
    if limit == 0 || limit == -1 {
        return Err(invalid("a swap limit needs a memory limit"));
    }
    if limit < 0 {
        return Err(invalid(&format!("invalid memory limit {limit}")));
    }
    if swap < limit {
        return Err(invalid(&format!(
            "memory+swap must be at least the memory limit {limit}"
        )));
    }
    Ok(swap - limit)
}

/// A v2 limit value: -1 → "max", 0 → unset.
fn limit_str(v: i64) -> Option<String> {
    match v {
        0 => None,
        -1 => Some("max".to_string()),
        v => Some(v.to_string()),
    }
}

impl V2Controller for Memory {
    fn controller(&self) -> Option<&'static str> {
        Some("memory")
    }

    fn wants(&self, res: &LinuxResources) -> bool {
        res.memory().as_ref().is_some_and(|m| {
            m.limit().is_some_and(|v| v != 0)
                || m.swap().is_some_and(|v| v != 0)
                || m.reservation().is_some_and(|v| v != 0)
        })
    }

    /// Kernel memory, swappiness and disableOOMKiller have no v2
    /// equivalent; runc ignores them on v2 and so does this.
    fn apply(&self, dir: &Path, res: &LinuxResources) -> Result<(), CgroupError> {
        let Some(mem) = res.memory() else {
            return Ok(());
        };
        let limit = mem.limit().unwrap_or(0);
        let requested_swap = mem.swap().unwrap_or(0);
        let swap = swap_value(requested_swap, limit)?;
        let mut swap_str = limit_str(swap);
        if swap == 0 && requested_swap > 0 {
            // memory+swap equal to memory: no swap at all.
            swap_str = Some("0".to_string());
        }
        if let Some(s) = swap_str {
            match fsutil::write(dir, "memory.swap.max", &s) {
                Ok(()) => {}
                // Without swap accounting there is no file; "no limit" and
                // "no swap" are then already true.
                Err(CgroupError::Write { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound
                        && (s == "max" || s == "0") => {}
                Err(e) => return Err(e),
            }
        }
        if let Some(v) = limit_str(limit) {
            // checkBeforeUpdate: v2 takes a limit below the usage and
            // OOM-kills to meet it; refuse that instead when asked to.
            if limit > 0 && mem.check_before_update() == Some(true) {
                let usage = fsutil::read_u64(&dir.join("memory.current"))?;
                if (limit as u64) < usage {
                    return Err(CgroupError::InvalidResource {
                        field: "memory.limit",
                        value: limit.to_string(),
                        reason: format!(
                            "below the current usage of {usage} bytes (checkBeforeUpdate)"
                        ),
                    });
                }
            }
            fsutil::write(dir, "memory.max", v)?;
        }
        if let Some(v) = mem.reservation().and_then(limit_str) {
            fsutil::write(dir, "memory.low", v)?;
        }
        Ok(())
    }

    fn stats(&self, dir: &Path, stats: &mut Stats) -> Result<(), CgroupError> {
        let m = &mut stats.memory;
        let events = fsutil::read_keyed(&dir.join("memory.events"))?;
        m.usage = MemoryEntry {
            limit: fsutil::read_u64_or_zero(&dir.join("memory.max"))?,
            usage: fsutil::read_u64_or_zero(&dir.join("memory.current"))?,
            max: fsutil::read_u64_or_zero(&dir.join("memory.peak"))?,
            failcnt: events.get("max").copied().unwrap_or(0),
        };
        // Reported as memory+swap, the v1 meaning runc's output keeps.
        let swap_usage = fsutil::read_u64_or_zero(&dir.join("memory.swap.current"))?;
        let swap_limit = fsutil::read_u64_or_zero(&dir.join("memory.swap.max"))?;
        m.swap = MemoryEntry {
            limit: if swap_limit == u64::MAX || m.usage.limit == u64::MAX {
                u64::MAX
            } else {
                swap_limit + m.usage.limit
            },
            usage: swap_usage + m.usage.usage,
            max: 0,
            failcnt: 0,
        };
        m.raw = fsutil::read_keyed(&dir.join("memory.stat"))?;
        m.cache = m.raw.get("file").copied().unwrap_or(0);
        Ok(())
    }
}

/// The `oom_kill` count of `memory.events`.
pub(crate) fn oom_kill_count(dir: &Path) -> Result<u64, CgroupError> {
    let path = dir.join("memory.events");
    if !path.exists() {
        return Err(CgroupError::ControllerMissing {
            controller: "memory".to_string(),
            what: "the OOM kill count".to_string(),
            path: dir.to_path_buf(),
        });
    }
    Ok(fsutil::read_keyed(&path)?
        .get("oom_kill")
        .copied()
        .unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_is_converted_from_memory_plus_swap() {
        assert_eq!(swap_value(0, 0).unwrap(), 0);
        assert_eq!(swap_value(0, -1).unwrap(), -1);
        assert_eq!(swap_value(-1, 100).unwrap(), -1);
        assert_eq!(swap_value(300, 100).unwrap(), 200);
        assert_eq!(swap_value(100, 100).unwrap(), 0);
        assert!(swap_value(50, 100).is_err());
        assert!(swap_value(100, 0).is_err());
        assert!(swap_value(100, -1).is_err());
    }
}
