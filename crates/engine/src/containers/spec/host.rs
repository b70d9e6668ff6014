//! What the host offers, probed once per process: the facts Docker's
//! `sysinfo` checks a container's settings against (CPU count, cpuset
//! ranges, swap accounting, the capabilities berth itself holds).

use std::path::Path;
use std::sync::OnceLock;

/// The host facts spec building depends on. Tests build their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInfo {
    /// CPUs this process may run on (Go's `runtime.NumCPU`, which Docker's
    /// `--cpus` range check uses).
    pub cpus: usize,
    /// `/sys/devices/system/cpu/online`, a cpuset list (`0-1`).
    pub online_cpus: String,
    /// `/sys/devices/system/node/online` (`0`).
    pub online_mems: String,
    /// Whether the memory controller limits swap (v1 `memory.memsw.*`, v2 `memory.swap.max`).
    pub swap_limit: bool,
    /// Whether the cpu controller has real-time bandwidth (`cpu.rt_runtime_us`).
    pub cpu_realtime: bool,
    /// The capabilities a container can be given: known to the kernel
    /// (`cap_last_cap`) and held by berth itself, as `CAP_*` names in
    /// kernel order. A capability berth lacks cannot be passed on.
    pub capabilities: Vec<String>,
}

impl HostInfo {
    /// The host's facts (probed on first use).
    pub fn get() -> &'static HostInfo {
        static HOST: OnceLock<HostInfo> = OnceLock::new();
        HOST.get_or_init(Self::detect)
    }

    fn detect() -> HostInfo {
        let cpus = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
            .map(|set| {
                (0..nix::sched::CpuSet::count())
                    .filter(|&i| set.is_set(i).unwrap_or(false))
                    .count()
            })
            .ok()
            .filter(|&n| n > 0)
            .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
            .unwrap_or(1);
        HostInfo {
            cpus,
            online_cpus: read_trimmed("/sys/devices/system/cpu/online")
                .unwrap_or_else(|| format!("0-{}", cpus.saturating_sub(1))),
            online_mems: read_trimmed("/sys/devices/system/node/online")
                .unwrap_or_else(|| "0".to_string()),
            swap_limit: detect_swap_limit(),
            cpu_realtime: Path::new("/sys/fs/cgroup/cpu/cpu.rt_runtime_us").exists()
                || Path::new("/sys/fs/cgroup/cpu,cpuacct/cpu.rt_runtime_us").exists(),
            capabilities: detect_capabilities(),
        }
    }
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn detect_swap_limit() -> bool {
    if Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists() {
        return true;
    }
    // Pure v2: the root cgroup has no memory.swap.max, our own group does
    // when the kernel accounts swap.
    let Some(own) = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("0::").map(|p| p.trim().to_string()))
        })
    else {
        return false;
    };
    let dir = Path::new("/sys/fs/cgroup").join(own.trim_start_matches('/'));
    dir.join("memory.swap.max").exists()
        || dir
            .parent()
            .is_some_and(|p| p.join("memory.swap.max").exists())
}

/// Known to the kernel and in berth's own effective set, like Docker's
/// `caps.GetAllCapabilities` (containerd's `cap.Current`): on this kind of
/// host CAP_SYS_RESOURCE is outside the bounding set, and a privileged
/// container asking for it would fail in capset(2).
fn detect_capabilities() -> Vec<String> {
    let kernel = caps::runtime::procfs_all_supported(None)
        .unwrap_or_else(|_| caps::runtime::thread_all_supported());
    let held = caps::read(None, caps::CapSet::Effective).unwrap_or_else(|_| kernel.clone());
    let mut list: Vec<caps::Capability> = kernel.intersection(&held).copied().collect();
    list.sort_by_key(|c| c.index());
    list.iter().map(|c| c.to_string()).collect()
}

/// Parses a cpuset list (`0-3,5`) into its members; `None` when malformed.
pub(crate) fn parse_cpuset(list: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    if list.trim().is_empty() {
        return Some(out);
    }
    for part in list.split(',') {
        let part = part.trim();
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                if a > b || b - a > 65536 {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().ok()?),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpuset_lists() {
        assert_eq!(parse_cpuset("0-2,5"), Some(vec![0, 1, 2, 5]));
        assert_eq!(parse_cpuset("3"), Some(vec![3]));
        assert_eq!(parse_cpuset(""), Some(vec![]));
        assert_eq!(parse_cpuset("2-1"), None);
        assert_eq!(parse_cpuset("a"), None);
        assert_eq!(parse_cpuset("1,"), None);
    }

    #[test]
    fn detected_host_is_sane() {
        let h = HostInfo::get();
        assert!(h.cpus >= 1);
        assert!(parse_cpuset(&h.online_cpus).is_some_and(|c| !c.is_empty()));
        assert!(h.capabilities.iter().all(|c| c.starts_with("CAP_")));
        // The test runs as root: it holds at least Docker's default set.
        if berth_testutil::is_root() {
            assert!(h.capabilities.contains(&"CAP_CHOWN".to_string()));
        }
    }
}
