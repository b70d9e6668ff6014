//! `--security-opt`, masked and read-only paths, `--sysctl` and `--ulimit`.

use std::collections::BTreeMap;
use std::path::Path;

use oci_spec::runtime::{PosixRlimit, PosixRlimitBuilder, PosixRlimitType};

use super::host::HostInfo;
use super::namespaces::{IpcMode, Modes, NetMode};
use super::SpecError;
use crate::containers::model::{HostConfig, Ulimit};

/// What `--security-opt` asked for (after Docker's parsing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SecurityOpts {
    pub no_new_privileges: bool,
    /// `writable-cgroups[=bool]`; `None` = writable only when privileged.
    pub writable_cgroups: Option<bool>,
    /// `systempaths=unconfined`: no masked or read-only /proc and /sys paths.
    pub unconfined_paths: bool,
}

fn parse_bool(v: &str) -> Option<bool> {
    // Go's strconv.ParseBool, which Docker uses.
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Parses `--security-opt` like Docker's `parseSecurityOpt`. This host has
/// neither AppArmor nor SELinux: their options are accepted with a
/// warning, as Docker does where they are disabled. `seccomp=` is the
/// engine's (it picks the profile before the spec is built).
pub(crate) fn parse_security_opts(
    host: &HostConfig,
    warnings: &mut Vec<String>,
) -> Result<SecurityOpts, SpecError> {
    let mut out = SecurityOpts::default();
    for opt in host.security_opt.iter().flatten() {
        match opt.as_str() {
            "no-new-privileges" => {
                out.no_new_privileges = true;
                continue;
            }
            "writable-cgroups" => {
                out.writable_cgroups = Some(true);
                continue;
            }
            "disable" => continue, // label=disable's short form
            _ => {}
        }
        let (key, value) = match opt.split_once('=').or_else(|| opt.split_once(':')) {
            Some(kv) => kv,
            None => return Err(unknown_opt(opt)),
        };
        let bool_value = || {
            parse_bool(value).ok_or_else(|| {
                SpecError::invalid(format!(
                    "invalid --security-opt {opt:?}: {key} takes true or false"
                ))
            })
        };
        match key {
            "no-new-privileges" => out.no_new_privileges = bool_value()?,
            "writable-cgroups" => out.writable_cgroups = Some(bool_value()?),
            "label" => {
                if value != "disable" {
                    warnings.push(format!(
                        "SELinux is not enabled on this host: --security-opt {opt} ignored"
                    ));
                }
            }
            "apparmor" => {
                if value != "unconfined" {
                    warnings.push(format!(
                        "AppArmor is not enabled on this host: --security-opt {opt} ignored"
                    ));
                }
            }
            "seccomp" if !value.is_empty() => {}
            "systempaths" if value == "unconfined" => out.unconfined_paths = true,
            _ => return Err(unknown_opt(opt)),
        }
    }
    Ok(out)
}

fn unknown_opt(opt: &str) -> SpecError {
    SpecError::invalid(format!(
        "invalid --security-opt {opt:?}: use apparmor=, label=, seccomp=, no-new-privileges[=bool], systempaths=unconfined or writable-cgroups[=bool]"
    ))
}

/// Docker's masked paths (moby `oci/defaults.go`), plus each CPU's
/// thermal_throttle directory where the host has one.
pub(crate) fn default_masked_paths() -> Vec<String> {
    let mut paths: Vec<String> = [
        "/proc/acpi",
        "/proc/asound",
        "/proc/interrupts",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/sched_debug",
        "/proc/scsi",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/sys/devices/virtual/powercap",
        "/sys/firmware",
    ]
    .map(String::from)
    .to_vec();
    let possible = std::fs::read_to_string("/sys/devices/system/cpu/possible").unwrap_or_default();
    for cpu in super::host::parse_cpuset(possible.trim()).unwrap_or_default() {
        let p = format!("/sys/devices/system/cpu/cpu{cpu}/thermal_throttle");
        if Path::new(&p).exists() {
            paths.push(p);
        }
    }
    paths
}

/// Docker's read-only paths.
pub(crate) const DEFAULT_READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// `(masked, readonly)`: explicit lists win, then privileged or
/// `systempaths=unconfined` have none, else Docker's defaults.
pub(crate) fn system_paths(host: &HostConfig, opts: &SecurityOpts) -> (Vec<String>, Vec<String>) {
    let unconfined = host.privileged || opts.unconfined_paths;
    let masked = match &host.masked_paths {
        Some(list) => list.clone(),
        None if unconfined => Vec::new(),
        None => default_masked_paths(),
    };
    let readonly = match &host.readonly_paths {
        Some(list) => list.clone(),
        None if unconfined => Vec::new(),
        None => DEFAULT_READONLY_PATHS.map(String::from).to_vec(),
    };
    (masked, readonly)
}

/// System V IPC sysctls, namespaced with the IPC namespace.
const IPC_SYSCTLS: [&str; 8] = [
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// `linux.sysctl`: Docker's defaults for a private network namespace, then
/// `--sysctl` (which wins), each checked to live in a namespace the
/// container owns.
pub(crate) fn sysctls(
    host: &HostConfig,
    modes: &Modes,
) -> Result<BTreeMap<String, String>, SpecError> {
    let mut out = BTreeMap::new();
    if modes.private_net() {
        // Unprivileged ping and low ports inside the container's own network
        // namespace, where they cannot affect the host.
        for (key, value) in [
            ("net.ipv4.ping_group_range", "0 2147483647"),
            ("net.ipv4.ip_unprivileged_port_start", "0"),
        ] {
            if Path::new("/proc/sys").join(key.replace('.', "/")).exists() {
                out.insert(key.to_string(), value.to_string());
            }
        }
    }
    for (key, value) in host.sysctls.iter().flatten() {
        check_sysctl(key, value, modes)?;
        out.insert(key.clone(), value.clone());
    }
    Ok(out)
}

fn check_sysctl(key: &str, value: &str, modes: &Modes) -> Result<(), SpecError> {
    let flag = format!("--sysctl {key}={value}");
    if IPC_SYSCTLS.contains(&key) || key.starts_with("fs.mqueue.") {
        if modes.ipc == IpcMode::Host {
            return Err(SpecError::invalid(format!(
                "sysctl {key:?} is not allowed in the host's IPC namespace: drop {flag} or --ipc host"
            )));
        }
        return Ok(());
    }
    if key.starts_with("net.") && key.len() > 4 {
        if modes.net == NetMode::Host {
            return Err(SpecError::invalid(format!(
                "sysctl {key:?} is not allowed in the host's network namespace: drop {flag} or --network host"
            )));
        }
        return Ok(());
    }
    match key {
        "kernel.hostname" => Err(SpecError::invalid(format!(
            "sysctl {key:?} is not allowed: use --hostname instead of {flag}"
        ))),
        "kernel.domainname" => Err(SpecError::invalid(format!(
            "sysctl {key:?} is not allowed: use --domainname instead of {flag}"
        ))),
        _ => Err(SpecError::invalid(format!(
            "sysctl {key:?} is not whitelisted: {flag} would change the host; only namespaced sysctls (kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*, net.*) can be set per container"
        ))),
    }
}

fn rlimit_type(name: &str) -> Option<(PosixRlimitType, nix::sys::resource::Resource)> {
    use nix::sys::resource::Resource as R;
    use PosixRlimitType as T;
    Some(match name {
        "core" => (T::RlimitCore, R::RLIMIT_CORE),
        "cpu" => (T::RlimitCpu, R::RLIMIT_CPU),
        "data" => (T::RlimitData, R::RLIMIT_DATA),
        "fsize" => (T::RlimitFsize, R::RLIMIT_FSIZE),
        "locks" => (T::RlimitLocks, R::RLIMIT_LOCKS),
        "memlock" => (T::RlimitMemlock, R::RLIMIT_MEMLOCK),
        "msgqueue" => (T::RlimitMsgqueue, R::RLIMIT_MSGQUEUE),
        "nice" => (T::RlimitNice, R::RLIMIT_NICE),
        "nofile" => (T::RlimitNofile, R::RLIMIT_NOFILE),
        "nproc" => (T::RlimitNproc, R::RLIMIT_NPROC),
        "rss" => (T::RlimitRss, R::RLIMIT_RSS),
        "rtprio" => (T::RlimitRtprio, R::RLIMIT_RTPRIO),
        "rttime" => (T::RlimitRttime, R::RLIMIT_RTTIME),
        "sigpending" => (T::RlimitSigpending, R::RLIMIT_SIGPENDING),
        "stack" => (T::RlimitStack, R::RLIMIT_STACK),
        _ => return None,
    })
}

/// `process.rlimits` from `--ulimit` only: berth adds no defaults, since
/// a default above the inherited hard limit would need CAP_SYS_RESOURCE.
/// A raise berth cannot grant is refused here, with the flag named,
/// rather than by the runtime halfway through starting.
pub(crate) fn rlimits(ulimits: &[Ulimit], info: &HostInfo) -> Result<Vec<PosixRlimit>, SpecError> {
    let can_raise = info.capabilities.iter().any(|c| c == "CAP_SYS_RESOURCE");
    let mut out: Vec<PosixRlimit> = Vec::new();
    for u in ulimits {
        let flag = format!("--ulimit {}={}:{}", u.name, u.soft, u.hard);
        let (typ, resource) = rlimit_type(&u.name).ok_or_else(|| {
            SpecError::invalid(format!(
                "invalid ulimit type: {}: {flag} takes core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending or stack",
                u.name
            ))
        })?;
        let value = |v: i64| -> Result<u64, SpecError> {
            match v {
                -1 => Ok(u64::MAX),
                v => u64::try_from(v).map_err(|_| {
                    SpecError::invalid(format!(
                        "invalid ulimit value {v}: {flag} takes a number or -1 for unlimited"
                    ))
                }),
            }
        };
        let (soft, hard) = (value(u.soft)?, value(u.hard)?);
        if soft > hard {
            return Err(SpecError::invalid(format!(
                "ulimit soft limit must be less than or equal to hard limit: {} > {}: fix {flag}",
                u.soft, u.hard
            )));
        }
        if !can_raise {
            if let Ok((_, current_hard)) = nix::sys::resource::getrlimit(resource) {
                if hard > current_hard {
                    let shown = |v: u64| {
                        if v == u64::MAX {
                            "unlimited".to_string()
                        } else {
                            v.to_string()
                        }
                    };
                    return Err(SpecError::invalid(format!(
                        "cannot raise the {} hard limit to {} above this host's {}: berth lacks CAP_SYS_RESOURCE; lower {flag}",
                        u.name,
                        shown(hard),
                        shown(current_hard)
                    )));
                }
            }
        }
        let r = PosixRlimitBuilder::default()
            .typ(typ)
            .soft(soft)
            .hard(hard)
            .build()
            .map_err(|e| SpecError::Internal(format!("{flag}: {e}")))?;
        out.retain(|o| o.typ() != typ); // the last one for a type wins
        out.push(r);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::model::ContainerConfig;
    use crate::containers::spec::namespaces::parse_modes;

    fn opts(list: &[&str]) -> Result<(SecurityOpts, Vec<String>), SpecError> {
        let h = HostConfig {
            security_opt: Some(list.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        };
        let mut w = Vec::new();
        parse_security_opts(&h, &mut w).map(|o| (o, w))
    }

    #[test]
    fn security_opts() {
        assert!(opts(&["no-new-privileges"]).unwrap().0.no_new_privileges);
        assert!(
            opts(&["no-new-privileges:true"])
                .unwrap()
                .0
                .no_new_privileges
        );
        assert!(
            !opts(&["no-new-privileges", "no-new-privileges=false"])
                .unwrap()
                .0
                .no_new_privileges
        );
        assert!(
            opts(&["systempaths=unconfined"])
                .unwrap()
                .0
                .unconfined_paths
        );
        assert_eq!(
            opts(&["writable-cgroups=1"]).unwrap().0.writable_cgroups,
            Some(true)
        );
        let (_, w) = opts(&[
            "apparmor=docker-default",
            "label=type:svirt_t",
            "label=disable",
            "seccomp=unconfined",
        ])
        .unwrap();
        assert_eq!(w.len(), 2, "{w:?}");
        for bad in [
            "bogus",
            "foo=bar",
            "no-new-privileges=maybe",
            "systempaths=confined",
            "seccomp=",
        ] {
            let e = opts(&[bad]).unwrap_err();
            assert!(
                e.to_string().starts_with("invalid --security-opt"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn paths_per_mode() {
        let o = SecurityOpts::default();
        let (m, r) = system_paths(&HostConfig::default(), &o);
        assert!(m.contains(&"/proc/kcore".to_string()) && m.contains(&"/sys/firmware".to_string()));
        assert_eq!(r.len(), 5);
        let p = HostConfig {
            privileged: true,
            ..Default::default()
        };
        assert_eq!(system_paths(&p, &o), (vec![], vec![]));
        let explicit = HostConfig {
            privileged: true,
            masked_paths: Some(vec!["/proc/x".into()]),
            ..Default::default()
        };
        assert_eq!(system_paths(&explicit, &o).0, ["/proc/x"]);
        let u = SecurityOpts {
            unconfined_paths: true,
            ..Default::default()
        };
        assert_eq!(system_paths(&HostConfig::default(), &u), (vec![], vec![]));
    }

    fn sys(host: &HostConfig) -> Result<BTreeMap<String, String>, SpecError> {
        let m = parse_modes(&ContainerConfig::default(), host, false)?;
        sysctls(host, &m)
    }

    #[test]
    fn sysctl_rules() {
        let with = |net: &str, ipc: &str, kv: &[(&str, &str)]| HostConfig {
            network_mode: net.into(),
            ipc_mode: ipc.into(),
            sysctls: Some(
                kv.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        };
        let got = sys(&with(
            "",
            "",
            &[
                ("net.ipv4.ip_forward", "1"),
                ("kernel.shmmax", "1000"),
                ("net.ipv4.ping_group_range", "1 1"),
            ],
        ))
        .unwrap();
        assert_eq!(got["net.ipv4.ip_forward"], "1");
        assert_eq!(
            got["net.ipv4.ping_group_range"], "1 1",
            "the user's value wins"
        );
        assert_eq!(got["kernel.shmmax"], "1000");
        let host_net = sys(&with("host", "", &[])).unwrap();
        assert!(
            host_net.is_empty(),
            "no defaults in the host's netns: {host_net:?}"
        );
        let e = sys(&with("host", "", &[("net.ipv4.ip_forward", "1")])).unwrap_err();
        assert!(e.to_string().contains("host's network namespace"), "{e}");
        let e = sys(&with("", "host", &[("fs.mqueue.msg_max", "10")])).unwrap_err();
        assert!(e.to_string().contains("host's IPC namespace"), "{e}");
        let e = sys(&with("", "", &[("kernel.panic", "1")])).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("sysctl \"kernel.panic\" is not whitelisted"),
            "{e}"
        );
        let e = sys(&with("", "", &[("kernel.domainname", "x")])).unwrap_err();
        assert!(e.to_string().contains("--domainname"), "{e}");
    }

    fn info(caps: &[&str]) -> HostInfo {
        HostInfo {
            cpus: 1,
            online_cpus: "0".into(),
            online_mems: "0".into(),
            swap_limit: true,
            cpu_realtime: false,
            capabilities: caps.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn ul(name: &str, soft: i64, hard: i64) -> Ulimit {
        Ulimit {
            name: name.into(),
            soft,
            hard,
        }
    }

    #[test]
    fn ulimits() {
        let (_, nofile_hard) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
        let limits = rlimits(
            &[
                ul("nofile", 100, 200),
                ul("core", -1, -1),
                ul("nofile", 50, 100),
            ],
            &info(&[]),
        )
        .unwrap();
        let v = serde_json::to_value(&limits).unwrap();
        assert_eq!(
            v,
            serde_json::json!([
                {"type": "RLIMIT_CORE", "hard": u64::MAX, "soft": u64::MAX},
                {"type": "RLIMIT_NOFILE", "hard": 100, "soft": 50},
            ])
        );
        assert!(rlimits(&[], &info(&[])).unwrap().is_empty());
        let e = rlimits(&[ul("nofiles", 1, 1)], &info(&[])).unwrap_err();
        assert!(
            e.to_string().starts_with("invalid ulimit type: nofiles"),
            "{e}"
        );
        let e = rlimits(&[ul("nproc", 10, 5)], &info(&[])).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("ulimit soft limit must be less than or equal to hard limit: 10 > 5"),
            "{e}"
        );
        if nofile_hard != u64::MAX {
            let too_high = i64::try_from(nofile_hard).unwrap() + 1;
            let e = rlimits(&[ul("nofile", 1, too_high)], &info(&[])).unwrap_err();
            assert!(e.to_string().contains("CAP_SYS_RESOURCE"), "{e}");
            assert!(rlimits(&[ul("nofile", 1, too_high)], &info(&["CAP_SYS_RESOURCE"])).is_ok());
        }
    }
}
