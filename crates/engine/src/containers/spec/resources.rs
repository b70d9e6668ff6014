//! cgroup resources: memory, CPU, cpusets and pids (block I/O is in
//! `blkio`), validated
//! like Docker's `verifyPlatformContainerResources` and converted like its
//! `WithResources`.

use oci_spec::runtime::{LinuxCpu, LinuxMemory, LinuxPids, LinuxResources};

use super::host::{parse_cpuset, HostInfo};
use super::SpecError;
use crate::containers::model::HostConfig;

/// Docker's smallest memory limit: "to account for overhead during
/// startup, and to supply a reasonable functional container".
pub const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// The CFS period `--cpus` uses (100 ms, in µs).
const CPU_PERIOD_US: u64 = 100_000;

/// Resources without devices (the devices module adds those).
pub(crate) fn resources(
    host: &HostConfig,
    info: &HostInfo,
    cgroup_v2: bool,
    warnings: &mut Vec<String>,
) -> Result<LinuxResources, SpecError> {
    let mut res = LinuxResources::default();
    res.set_memory(memory(host, info, cgroup_v2, warnings)?)
        .set_cpu(cpu(host, info, warnings)?)
        .set_pids(host.pids_limit.map(|limit| {
            let mut p = LinuxPids::default();
            // Docker's API lets 0 and negative values mean "unlimited".
            p.set_limit(if limit <= 0 { -1 } else { limit });
            p
        }))
        .set_block_io(super::blkio::block_io(host)?);
    Ok(res)
}

fn bytes(n: i64) -> String {
    format!("{n} bytes")
}

fn memory(
    host: &HostConfig,
    info: &HostInfo,
    cgroup_v2: bool,
    warnings: &mut Vec<String>,
) -> Result<Option<LinuxMemory>, SpecError> {
    let limit = host.memory;
    let mut swap = host.memory_swap;
    let reservation = host.memory_reservation;
    if limit != 0 && limit < MIN_MEMORY {
        return Err(SpecError::invalid(format!(
            "Minimum memory limit allowed is 6MB: --memory asks for {}",
            bytes(limit)
        )));
    }
    if swap < -1 {
        return Err(SpecError::invalid(format!(
            "invalid --memory-swap {swap}: use -1 for unlimited swap or a size of at least --memory"
        )));
    }
    if limit > 0 && swap == 0 {
        // Docker's default: as much swap as memory.
        swap = limit.saturating_mul(2);
    }
    if limit > 0 && swap > 0 && swap < limit {
        return Err(SpecError::invalid(format!(
            "Minimum memoryswap limit should be larger than memory limit, see usage: --memory-swap {} is below --memory {}",
            bytes(swap),
            bytes(limit)
        )));
    }
    if limit == 0 && swap > 0 {
        return Err(SpecError::invalid(
            "You should always set the Memory limit when using Memoryswap limit, see usage: add --memory",
        ));
    }
    if limit > 0 && swap != -1 && !info.swap_limit {
        warnings.push("Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.".into());
        swap = -1;
    }
    let mut swappiness = host.memory_swappiness.filter(|&s| s != -1);
    if let Some(s) = swappiness {
        if !(0..=100).contains(&s) {
            return Err(SpecError::invalid(format!(
                "Invalid value: {s}, valid memory swappiness range is 0-100: fix --memory-swappiness"
            )));
        }
        if cgroup_v2 {
            warnings.push("Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. Memory swappiness discarded.".into());
            swappiness = None;
        }
    }
    if reservation != 0 && reservation < MIN_MEMORY {
        return Err(SpecError::invalid(format!(
            "Minimum memory reservation allowed is 6MB: --memory-reservation asks for {}",
            bytes(reservation)
        )));
    }
    if limit > 0 && reservation > limit {
        return Err(SpecError::invalid(format!(
            "Minimum memory limit can not be less than memory reservation limit, see usage: --memory {} is below --memory-reservation {}",
            bytes(limit),
            bytes(reservation)
        )));
    }
    let mut oom_kill_disable = host.oom_kill_disable;
    if oom_kill_disable.is_some() && cgroup_v2 {
        if oom_kill_disable == Some(true) {
            warnings.push(
                "Your kernel does not support OomKillDisable. OomKillDisable discarded.".into(),
            );
        }
        oom_kill_disable = None;
    }
    if oom_kill_disable == Some(true) && limit == 0 {
        warnings.push("OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.".into());
    }
    let mut m = LinuxMemory::default();
    m.set_limit((limit > 0).then_some(limit))
        .set_reservation((reservation > 0).then_some(reservation))
        .set_swap((swap > 0).then_some(swap))
        .set_swappiness(swappiness.and_then(|s| u64::try_from(s).ok()))
        .set_disable_oom_killer(oom_kill_disable);
    Ok((m != LinuxMemory::default()).then_some(m))
}

fn cpu(
    host: &HostConfig,
    info: &HostInfo,
    warnings: &mut Vec<String>,
) -> Result<Option<LinuxCpu>, SpecError> {
    if host.cpu_shares < 0 {
        return Err(SpecError::invalid(format!(
            "invalid CPU shares ({}): value must be a positive integer: fix --cpu-shares",
            host.cpu_shares
        )));
    }
    if host.nano_cpus > 0 && host.cpu_period > 0 {
        return Err(SpecError::invalid(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set: use --cpus or --cpu-period/--cpu-quota",
        ));
    }
    if host.nano_cpus > 0 && host.cpu_quota > 0 {
        return Err(SpecError::invalid(
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set: use --cpus or --cpu-period/--cpu-quota",
        ));
    }
    let n = info.cpus;
    let max_nano = i64::try_from(n)
        .unwrap_or(i64::MAX)
        .saturating_mul(1_000_000_000);
    if host.nano_cpus != 0 && (host.nano_cpus < 0 || host.nano_cpus > max_nano) {
        return Err(SpecError::invalid(format!(
            "Range of CPUs is from 0.01 to {n}.00, as there are only {n} CPUs available: lower --cpus"
        )));
    }
    if host.cpu_period != 0 && !(1000..=1_000_000).contains(&host.cpu_period) {
        return Err(SpecError::invalid(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000): fix --cpu-period",
        ));
    }
    if host.cpu_quota > 0 && host.cpu_quota < 1000 {
        return Err(SpecError::invalid(
            "CPU cfs quota can not be less than 1ms (i.e. 1000): fix --cpu-quota",
        ));
    }
    if host.cpu_percent > 0 {
        warnings.push("linux does not support CPU percent. Percent discarded.".into());
    }
    if host.cpu_count > 0 {
        warnings.push("linux does not support CPU count. Count discarded.".into());
    }
    let (rt_period, rt_runtime) = (host.cpu_realtime_period, host.cpu_realtime_runtime);
    if (rt_period != 0 || rt_runtime != 0) && !info.cpu_realtime {
        return Err(SpecError::invalid(
            "kernel does not support CPU real-time scheduler: drop --cpu-rt-period and --cpu-rt-runtime",
        ));
    }
    if rt_period != 0 && rt_runtime != 0 && rt_runtime > rt_period {
        return Err(SpecError::invalid(
            "cpu real-time runtime cannot be higher than cpu real-time period: lower --cpu-rt-runtime",
        ));
    }
    check_cpuset(&host.cpuset_cpus, &info.online_cpus, "cpus", "CPUs")?;
    check_cpuset(&host.cpuset_mems, &info.online_mems, "mems", "memory nodes")?;

    let mut c = LinuxCpu::default();
    if host.cpu_shares != 0 {
        c.set_shares(u64::try_from(host.cpu_shares).ok());
    }
    if host.nano_cpus > 0 {
        let quota = i128::from(host.nano_cpus) * i128::from(CPU_PERIOD_US) / 1_000_000_000;
        c.set_period(Some(CPU_PERIOD_US))
            .set_quota(i64::try_from(quota).ok());
    }
    if host.cpu_period != 0 {
        c.set_period(u64::try_from(host.cpu_period).ok());
    }
    if host.cpu_quota != 0 {
        c.set_quota(Some(host.cpu_quota));
    }
    if rt_period != 0 {
        c.set_realtime_period(u64::try_from(rt_period).ok());
    }
    if rt_runtime != 0 {
        c.set_realtime_runtime(Some(rt_runtime));
    }
    if !host.cpuset_cpus.is_empty() {
        c.set_cpus(Some(host.cpuset_cpus.clone()));
    }
    if !host.cpuset_mems.is_empty() {
        c.set_mems(Some(host.cpuset_mems.clone()));
    }
    Ok((c != LinuxCpu::default()).then_some(c))
}

fn check_cpuset(requested: &str, available: &str, what: &str, noun: &str) -> Result<(), SpecError> {
    if requested.is_empty() {
        return Ok(());
    }
    let Some(want) = parse_cpuset(requested) else {
        return Err(SpecError::invalid(format!(
            "Invalid value {requested} for cpuset {what}: --cpuset-{what} takes a list like 0-3,5"
        )));
    };
    let have = parse_cpuset(available).unwrap_or_default();
    if want.iter().any(|c| !have.contains(c)) {
        return Err(SpecError::invalid(format!(
            "Requested {noun} are not available - requested {requested}, available: {available}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn info() -> HostInfo {
        HostInfo {
            cpus: 2,
            online_cpus: "0-1".into(),
            online_mems: "0".into(),
            swap_limit: true,
            cpu_realtime: false,
            capabilities: vec![],
        }
    }

    fn build(host: &HostConfig, v2: bool) -> Result<(Value, Vec<String>), SpecError> {
        let mut w = Vec::new();
        let r = resources(host, &info(), v2, &mut w)?;
        Ok((serde_json::to_value(r).unwrap(), w))
    }

    fn err(host: HostConfig) -> String {
        build(&host, false).unwrap_err().to_string()
    }

    #[test]
    fn nothing_asked_nothing_set() {
        let (v, w) = build(&HostConfig::default(), false).unwrap();
        assert_eq!(v, json!({}));
        assert!(w.is_empty());
    }

    #[test]
    fn memory_semantics() {
        let m = 64 << 20;
        let (v, _) = build(
            &HostConfig {
                memory: m,
                memory_reservation: 32 << 20,
                memory_swappiness: Some(10),
                oom_kill_disable: Some(true),
                ..Default::default()
            },
            false,
        )
        .unwrap();
        assert_eq!(
            v["memory"],
            json!({"limit": m, "reservation": 32 << 20, "swap": 2 * m, "swappiness": 10, "disableOOMKiller": true})
        );
        let (v, _) = build(
            &HostConfig {
                memory: m,
                memory_swap: -1,
                ..Default::default()
            },
            false,
        )
        .unwrap();
        assert_eq!(v["memory"], json!({"limit": m}));
        let (v, w) = build(
            &HostConfig {
                memory: m,
                memory_swappiness: Some(-1),
                oom_kill_disable: Some(true),
                ..Default::default()
            },
            true,
        )
        .unwrap();
        assert_eq!(v["memory"], json!({"limit": m, "swap": 2 * m}));
        assert!(w.iter().any(|w| w.contains("OomKillDisable")), "{w:?}");
    }

    #[test]
    fn memory_errors() {
        assert!(err(HostConfig {
            memory: 4 << 20,
            ..Default::default()
        })
        .starts_with("Minimum memory limit allowed is 6MB"));
        assert!(err(HostConfig {
            memory: 64 << 20,
            memory_swap: 32 << 20,
            ..Default::default()
        })
        .starts_with("Minimum memoryswap limit should be larger than memory limit"));
        assert!(err(HostConfig {
            memory_swap: 32 << 20,
            ..Default::default()
        })
        .starts_with("You should always set the Memory limit when using Memoryswap limit"));
        assert!(err(HostConfig {
            memory: 64 << 20,
            memory_reservation: 128 << 20,
            ..Default::default()
        })
        .starts_with("Minimum memory limit can not be less than memory reservation limit"));
        assert!(err(HostConfig {
            memory_reservation: 1 << 20,
            ..Default::default()
        })
        .starts_with("Minimum memory reservation allowed is 6MB"));
        assert!(err(HostConfig {
            memory_swappiness: Some(101),
            ..Default::default()
        })
        .starts_with("Invalid value: 101, valid memory swappiness range is 0-100"));
    }

    #[test]
    fn no_swap_accounting_warns() {
        let mut w = Vec::new();
        let mut i = info();
        i.swap_limit = false;
        let h = HostConfig {
            memory: 64 << 20,
            ..Default::default()
        };
        let r = resources(&h, &i, false, &mut w).unwrap();
        assert_eq!(r.memory().unwrap().swap(), None);
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn cpu_semantics() {
        let (v, _) = build(
            &HostConfig {
                nano_cpus: 1_500_000_000,
                cpu_shares: 512,
                cpuset_cpus: "0-1".into(),
                cpuset_mems: "0".into(),
                ..Default::default()
            },
            false,
        )
        .unwrap();
        assert_eq!(
            v["cpu"],
            json!({"shares": 512, "quota": 150000, "period": 100000, "cpus": "0-1", "mems": "0"})
        );
        let (v, _) = build(
            &HostConfig {
                cpu_period: 50000,
                cpu_quota: 25000,
                ..Default::default()
            },
            false,
        )
        .unwrap();
        assert_eq!(v["cpu"], json!({"quota": 25000, "period": 50000}));
    }

    #[test]
    fn cpu_errors() {
        assert_eq!(
            err(HostConfig {
                nano_cpus: 3_000_000_000,
                ..Default::default()
            }),
            "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available: lower --cpus"
        );
        assert!(err(HostConfig {
            nano_cpus: 1_000_000_000,
            cpu_quota: 50000,
            ..Default::default()
        })
        .starts_with("Conflicting options: Nano CPUs and CPU Quota cannot both be set"));
        assert!(err(HostConfig {
            nano_cpus: 1_000_000_000,
            cpu_period: 50000,
            ..Default::default()
        })
        .starts_with("Conflicting options: Nano CPUs and CPU Period cannot both be set"));
        assert!(err(HostConfig {
            cpu_period: 10,
            ..Default::default()
        })
        .starts_with("CPU cfs period can not be less than 1ms"));
        assert!(err(HostConfig {
            cpu_quota: 10,
            ..Default::default()
        })
        .starts_with("CPU cfs quota can not be less than 1ms"));
        assert!(err(HostConfig {
            cpu_shares: -2,
            ..Default::default()
        })
        .starts_with("invalid CPU shares (-2)"));
        assert!(err(HostConfig {
            cpuset_cpus: "0-".into(),
            ..Default::default()
        })
        .starts_with("Invalid value 0- for cpuset cpus"));
        assert_eq!(
            err(HostConfig {
                cpuset_cpus: "1-3".into(),
                ..Default::default()
            }),
            "Requested CPUs are not available - requested 1-3, available: 0-1"
        );
        assert!(err(HostConfig {
            cpuset_mems: "1".into(),
            ..Default::default()
        })
        .starts_with("Requested memory nodes are not available"));
        assert!(err(HostConfig {
            cpu_realtime_runtime: 1000,
            ..Default::default()
        })
        .starts_with("kernel does not support CPU real-time scheduler"));
    }

    #[test]
    fn pids() {
        for (asked, want) in [
            (Some(0), json!(-1)),
            (Some(-5), json!(-1)),
            (Some(100), json!(100)),
        ] {
            let (v, _) = build(
                &HostConfig {
                    pids_limit: asked,
                    ..Default::default()
                },
                false,
            )
            .unwrap();
            assert_eq!(v["pids"]["limit"], want);
        }
    }
}
