//! Resource limits (memory, CPU, block I/O, pids, ulimits) and host devices:
//! the flags and Docker's parsers for their values (`opts.Validate*Device`,
//! go-units `ParseUlimit`, `parseLinuxDevice`).

use std::collections::BTreeMap;

use berth_engine::containers::model::{
    DeviceMapping, HostConfig, ThrottleDevice, Ulimit, WeightDevice,
};

use super::values::{self, clean_path, cut, go_int_base10, go_uint_base10};
use super::{int_flag, size_flag, CreateArgs, FlagError};

impl CreateArgs {
    pub(super) fn apply_resources(&self, host: &mut HostConfig) -> Result<(), FlagError> {
        if let Some(v) = &self.memory {
            host.memory = size_flag("-m, --memory", v)?;
        }
        if let Some(v) = &self.memory_reservation {
            host.memory_reservation = size_flag("--memory-reservation", v)?;
        }
        if let Some(v) = &self.memory_swap {
            host.memory_swap = if v == "-1" {
                -1
            } else {
                size_flag("--memory-swap", v)?
            };
        }
        if let Some(v) = &self.kernel_memory {
            // Parsed so that typos fail like Docker's; the limit itself is
            // dropped (see `warnings`).
            size_flag("--kernel-memory", v)?;
        }
        if let Some(v) = &self.memory_swappiness {
            let swappiness = int_flag("--memory-swappiness", v, 64)?;
            if swappiness != -1 && !(0..=100).contains(&swappiness) {
                return Err(FlagError::invalid_value(
                    "--memory-swappiness",
                    format!("invalid value: {swappiness}. Valid memory swappiness range is 0-100"),
                ));
            }
            host.memory_swappiness = (swappiness != -1).then_some(swappiness);
        }
        if let Some(v) = &self.oom_score_adj {
            host.oom_score_adj = int_flag("--oom-score-adj", v, 64)?;
        }
        if let Some(v) = &self.cpu_shares {
            host.cpu_shares = int_flag("-c, --cpu-shares", v, 64)?;
        }
        if let Some(v) = &self.cpus {
            host.nano_cpus =
                values::nano_cpus(v).map_err(|r| FlagError::invalid_argument("--cpus", v, r))?;
        }
        if let Some(v) = &self.cpu_period {
            host.cpu_period = int_flag("--cpu-period", v, 64)?;
        }
        if let Some(v) = &self.cpu_quota {
            host.cpu_quota = int_flag("--cpu-quota", v, 64)?;
        }
        if let Some(v) = &self.cpu_rt_period {
            host.cpu_realtime_period = int_flag("--cpu-rt-period", v, 64)?;
        }
        if let Some(v) = &self.cpu_rt_runtime {
            host.cpu_realtime_runtime = int_flag("--cpu-rt-runtime", v, 64)?;
        }
        if let Some(v) = &self.pids_limit {
            host.pids_limit = Some(int_flag("--pids-limit", v, 64)?);
        }
        if let Some(v) = &self.blkio_weight {
            host.blkio_weight = values::go_uint(v, 16)
                .map_err(|r| FlagError::invalid_argument("--blkio-weight", v, r))?
                as u16;
        }
        for v in &self.blkio_weight_device {
            host.blkio_weight_device.push(
                weight_device(v)
                    .map_err(|r| FlagError::invalid_argument("--blkio-weight-device", v, r))?,
            );
        }
        let throttles = [
            (
                &self.device_read_bps,
                "--device-read-bps",
                &mut host.blkio_device_read_bps,
                true,
            ),
            (
                &self.device_write_bps,
                "--device-write-bps",
                &mut host.blkio_device_write_bps,
                true,
            ),
            (
                &self.device_read_iops,
                "--device-read-iops",
                &mut host.blkio_device_read_iops,
                false,
            ),
            (
                &self.device_write_iops,
                "--device-write-iops",
                &mut host.blkio_device_write_iops,
                false,
            ),
        ];
        for (specs, flag, target, bytes) in throttles {
            for v in specs {
                let parsed = if bytes {
                    throttle_bps_device(v)
                } else {
                    throttle_iops_device(v)
                };
                target.push(parsed.map_err(|r| FlagError::invalid_argument(flag, v, r))?);
            }
        }
        let mut ulimits: BTreeMap<String, _> = BTreeMap::new();
        for v in &self.ulimit {
            let parsed = ulimit(v).map_err(|r| FlagError::invalid_argument("--ulimit", v, r))?;
            // A later --ulimit of the same name replaces the earlier one.
            ulimits.insert(parsed.name.clone(), parsed);
        }
        if !ulimits.is_empty() {
            host.ulimits = Some(ulimits.into_values().collect());
        }
        Ok(())
    }

    pub(super) fn apply_devices(&self, host: &mut HostConfig) -> Result<(), FlagError> {
        for device in &self.device {
            if is_cdi_name(device) {
                return Err(FlagError::Unsupported {
                    flag: "--device",
                    message: format!("CDI device injection is not supported by berth: {device}"),
                });
            }
            host.devices
                .push(device_mapping(device).map_err(|m| FlagError::invalid_value("--device", m))?);
        }
        for rule in &self.device_cgroup_rule {
            device_cgroup_rule(rule)
                .map_err(|r| FlagError::invalid_argument("--device-cgroup-rule", rule, r))?;
        }
        if !self.device_cgroup_rule.is_empty() {
            host.device_cgroup_rules = Some(self.device_cgroup_rule.clone());
        }
        if self.gpus.is_some() {
            // Docker's answer when no GPU driver is installed: berth has none.
            return Err(FlagError::Unsupported {
                flag: "--gpus",
                message: "could not select device driver \"\" with capabilities: [[gpu]]".into(),
            });
        }
        Ok(())
    }
}

/// `opts.ValidateWeightDevice`: `/dev/x:weight` with weight 10–1000 (or 0).
pub fn weight_device(s: &str) -> Result<WeightDevice, String> {
    let (path, weight) = device_rate_parts(s)?;
    let weight = go_uint_base10(weight, 16)
        .ok()
        .filter(|&w| w == 0 || (10..=1000).contains(&w))
        .ok_or_else(|| format!("invalid weight for device: {s}"))?;
    Ok(WeightDevice {
        path: path.to_string(),
        weight: weight as u16,
    })
}

/// `opts.ValidateThrottleBpsDevice`: `/dev/x:rate` with a go-units size.
pub fn throttle_bps_device(s: &str) -> Result<ThrottleDevice, String> {
    let (path, rate) = device_rate_parts(s)?;
    let rate = crate::units::ram_in_bytes(rate).map_err(|_| {
        format!("invalid rate for device: {s}. The correct format is <device-path>:<number>[<unit>]. Number must be a positive integer. Unit is optional and can be kb, mb, or gb")
    })?;
    Ok(ThrottleDevice {
        path: path.to_string(),
        rate: rate as u64,
    })
}

/// `opts.ValidateThrottleIOpsDevice`: `/dev/x:iops`.
pub fn throttle_iops_device(s: &str) -> Result<ThrottleDevice, String> {
    let (path, rate) = device_rate_parts(s)?;
    let rate = go_uint_base10(rate, 64).map_err(|_| {
        format!("invalid rate for device: {s}. The correct format is <device-path>:<number>. Number must be a positive integer")
    })?;
    Ok(ThrottleDevice {
        path: path.to_string(),
        rate,
    })
}

fn device_rate_parts(s: &str) -> Result<(&str, &str), String> {
    let (path, value, ok) = cut(s, ':');
    if !ok || path.is_empty() {
        return Err(format!("bad format: {s}"));
    }
    if !path.starts_with("/dev/") {
        return Err(format!("bad format for device path: {s}"));
    }
    Ok((path, value))
}

/// go-units `ParseUlimit`: `name=soft[:hard]`.
pub fn ulimit(s: &str) -> Result<Ulimit, String> {
    const NAMES: [&str; 15] = [
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
    ];
    let Some((name, limits)) = s.split_once('=') else {
        return Err(format!("invalid ulimit argument: {s}"));
    };
    if !NAMES.contains(&name) {
        return Err(format!("invalid ulimit type: {name}"));
    }
    let parts: Vec<&str> = limits.split(':').collect();
    let (soft, hard) = match parts.as_slice() {
        [soft] => {
            let soft = go_int_base10(soft)?;
            (soft, soft)
        }
        [soft, hard] => {
            let hard = go_int_base10(hard)?;
            (go_int_base10(soft)?, hard)
        }
        _ => {
            return Err(format!(
                "too many limit value arguments - {limits}, can only have up to two, `soft[:hard]`"
            ))
        }
    };
    if hard != -1 {
        if soft == -1 {
            return Err(format!(
                "ulimit soft limit must be less than or equal to hard limit: soft: -1 (unlimited), hard: {hard}"
            ));
        }
        if soft > hard {
            return Err(format!(
                "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
            ));
        }
    }
    Ok(Ulimit {
        name: name.to_string(),
        soft,
        hard,
    })
}

/// `validateDeviceCgroupRule`: `^[acb] ([0-9]+|\*):([0-9]+|\*) [rwm]{1,3}$`.
pub fn device_cgroup_rule(s: &str) -> Result<(), String> {
    let number = |p: &str| p == "*" || (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let valid = (|| {
        let mut fields = s.splitn(3, ' ');
        let kind = fields.next()?;
        let (major, minor) = fields.next()?.split_once(':')?;
        let access = fields.next()?;
        Some(
            matches!(kind, "a" | "b" | "c")
                && number(major)
                && number(minor)
                && (1..=3).contains(&access.len())
                && access.bytes().all(|b| matches!(b, b'r' | b'w' | b'm')),
        )
    })()
    .unwrap_or(false);
    if valid {
        Ok(())
    } else {
        Err(format!("invalid device cgroup format '{s}'"))
    }
}

/// `--device /dev/x[:/dev/y][:rwm]` (`validateLinuxPath` + `parseLinuxDevice`).
pub fn device_mapping(s: &str) -> Result<DeviceMapping, String> {
    let bad_format = || format!("bad format for path: {s}");
    if s.matches(':').count() > 2 {
        return Err(bad_format());
    }
    let parts: Vec<&str> = s.splitn(3, ':').collect();
    if parts[0].is_empty() {
        return Err(bad_format());
    }
    let (host, container, permissions) = match parts.as_slice() {
        [host] => (clean_path(host), String::new(), "rwm".to_string()),
        [host, mode] if valid_device_mode(mode) => {
            (clean_path(host), String::new(), mode.to_string())
        }
        [host, container] => (host.to_string(), clean_path(container), "rwm".to_string()),
        [host, container, mode] => {
            if !valid_device_mode(mode) {
                return Err(format!("bad mode specified: {mode}"));
            }
            (host.to_string(), container.to_string(), mode.to_string())
        }
        _ => return Err(bad_format()),
    };
    let checked = if container.is_empty() {
        &host
    } else {
        &container
    };
    if !checked.starts_with('/') {
        return Err(format!("{checked} is not an absolute path"));
    }
    Ok(DeviceMapping {
        path_in_container: if container.is_empty() {
            host.clone()
        } else {
            container
        },
        path_on_host: host,
        cgroup_permissions: permissions,
    })
}

fn valid_device_mode(mode: &str) -> bool {
    !mode.is_empty()
        && mode.len() <= 3
        && mode.bytes().all(|b| matches!(b, b'r' | b'w' | b'm'))
        && (0..mode.len()).all(|i| !mode[i + 1..].contains(&mode[i..=i]))
}

/// CDI device names (`vendor.com/class=name`), which Docker turns into a
/// device request for the `cdi` driver.
pub fn is_cdi_name(s: &str) -> bool {
    let Some((kind, name)) = s.split_once('=') else {
        return false;
    };
    let Some((vendor, class)) = kind.split_once('/') else {
        return false;
    };
    let word = |w: &str, extra: &[u8]| {
        w.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && w.bytes()
                .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
    };
    word(vendor, b"._-") && word(class, b"_-") && word(name, b"_.:-")
}
