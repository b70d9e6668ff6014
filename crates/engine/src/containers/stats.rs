//! `stats`: one usage sample of a running container, read in-process from
//! its cgroup (v1, hybrid or v2, through `berth-cgroups`) and its network
//! namespace's `/proc/<pid>/net/dev` — the same numbers whichever OCI
//! runtime started it, since berth always names the cgroup in the spec
//! (`/berth-<id>` or `<CgroupParent>/<id>`).

use super::store::{ContainerRecord, Status};
use super::ContainerService;
use crate::error::EngineError;

/// Counters at one instant; the CLI derives rates from two samples.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatsSample {
    /// CPU time the container used, ns.
    pub cpu_total_ns: u64,
    /// CPU time the whole host used, ns (from /proc/stat), for Docker's CPU %.
    pub system_ns: u64,
    pub online_cpus: u32,
    /// Memory in use minus the inactive page cache (Docker's `MEM USAGE`).
    pub memory_usage: u64,
    /// The limit, or the host's memory when unlimited.
    pub memory_limit: u64,
    pub net_rx: u64,
    pub net_tx: u64,
    pub block_read: u64,
    pub block_write: u64,
    pub pids: u64,
}

impl ContainerService<'_> {
    /// One sample of a running container.
    pub fn stats(&self, rec: &ContainerRecord) -> Result<StatsSample, EngineError> {
        if !matches!(rec.status, Status::Running | Status::Paused) || rec.run.pid <= 0 {
            return Ok(StatsSample::default());
        }
        let path = super::spec::cgroups_path(&rec.id, &rec.host_config.cgroup_parent)
            .map_err(|e| EngineError::InvalidArgument(format!("container {}: {e}", rec.id)))?;
        let cg = berth_cgroups::manager(&path).map_err(|e| {
            EngineError::InvalidArgument(format!(
                "cgroup {} of container {}: {e}",
                path.display(),
                rec.id
            ))
        })?;
        let s = cg.stats().map_err(|e| {
            EngineError::InvalidArgument(format!(
                "reading cgroup {} of container {}: {e}",
                path.display(),
                rec.id
            ))
        })?;
        let inactive = ["total_inactive_file", "inactive_file"]
            .iter()
            .find_map(|k| s.memory.raw.get(*k).copied())
            .unwrap_or(0);
        let host_mem = host_memory();
        let limit = match s.memory.usage.limit {
            0 | u64::MAX => host_mem,
            l if l > host_mem && host_mem > 0 => host_mem,
            l => l,
        };
        let (rx, tx) = net_counters(rec.run.pid);
        let mut read = 0;
        let mut write = 0;
        for e in &s.blkio.io_service_bytes_recursive {
            match e.op.as_str() {
                "Read" | "read" => read += e.value,
                "Write" | "write" => write += e.value,
                _ => {}
            }
        }
        Ok(StatsSample {
            cpu_total_ns: s.cpu.usage.total,
            system_ns: system_cpu_ns(),
            online_cpus: online_cpus(),
            memory_usage: s.memory.usage.usage.saturating_sub(inactive),
            memory_limit: limit,
            net_rx: rx,
            net_tx: tx,
            block_read: read,
            block_write: write,
            pids: s.pids.current,
        })
    }
}

/// Host CPU time in ns: the sum of the `cpu` line of /proc/stat (USER_HZ ticks).
fn system_cpu_ns() -> u64 {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return 0;
    };
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return 0;
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let ticks: u64 = line
        .split_whitespace()
        .skip(1)
        .take(7)
        .filter_map(|v| v.parse::<u64>().ok())
        .sum();
    ticks * (1_000_000_000 / hz)
}

fn online_cpus() -> u32 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    u32::try_from(n.max(1)).unwrap_or(1)
}

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Received and sent bytes of every interface but loopback in the
/// container's network namespace.
fn net_counters(pid: i32) -> (u64, u64) {
    let Ok(dev) = std::fs::read_to_string(format!("/proc/{pid}/net/dev")) else {
        return (0, 0);
    };
    let mut rx = 0;
    let mut tx = 0;
    for line in dev.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        if name.trim() == "lo" {
            continue;
        }
        let f: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        if f.len() >= 9 {
            rx += f[0];
            tx += f[8];
        }
    }
    (rx, tx)
}
