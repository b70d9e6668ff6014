//! Which namespaces a container creates, joins or shares with the host:
//! `--network`, `--ipc`, `--pid`, `--uts`, `--cgroupns` and `--userns`
//! (moby's `WithNamespaces`).

use std::path::PathBuf;

use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

use super::SpecError;
use crate::containers::model::{ContainerConfig, HostConfig};

/// Namespaces of other processes to join, resolved by the engine: for
/// `container:X` modes the `/proc/<pid>/ns/…` paths of X's init; `net`
/// also carries a network namespace the networking code prepared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamespaceJoins {
    pub net: Option<PathBuf>,
    pub ipc: Option<PathBuf>,
    pub pid: Option<PathBuf>,
    pub uts: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NetMode {
    /// Its own network namespace (default, bridge, a named network, or
    /// networking disabled).
    Private,
    /// `none`: its own namespace with only loopback.
    None,
    Host,
    Container(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IpcMode {
    Private,
    Shareable,
    Host,
    None,
    Container(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ShareMode {
    Private,
    Host,
    Container(String),
}

/// The parsed namespace modes of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Modes {
    pub net: NetMode,
    pub ipc: IpcMode,
    pub pid: ShareMode,
    pub uts: ShareMode,
    pub cgroup_private: bool,
}

impl Modes {
    /// The container has a network namespace of its own (Docker's
    /// `NetworkMode.IsPrivate`).
    pub fn private_net(&self) -> bool {
        matches!(self.net, NetMode::Private | NetMode::None)
    }
}

fn container_ref<'a>(mode: &'a str, flag: &str) -> Result<Option<&'a str>, SpecError> {
    match mode.strip_prefix("container:") {
        Some("") => Err(SpecError::invalid(format!(
            "invalid {flag} {mode:?}: give the container as container:<name|id>"
        ))),
        Some(x) => Ok(Some(x)),
        None => Ok(None),
    }
}

/// Parses and checks the modes (Docker's `verifyPlatformContainerSettings`
/// and `validateNetMode`).
pub(crate) fn parse_modes(
    config: &ContainerConfig,
    host: &HostConfig,
    cgroup_v2: bool,
) -> Result<Modes, SpecError> {
    let net = if config.network_disabled {
        NetMode::Private
    } else {
        match host.network_mode.as_str() {
            "host" => NetMode::Host,
            "none" => NetMode::None,
            m => match container_ref(m, "--network")? {
                Some(x) => NetMode::Container(x.to_string()),
                None => NetMode::Private,
            },
        }
    };
    let ipc = match host.ipc_mode.as_str() {
        "" | "private" => IpcMode::Private,
        "shareable" => IpcMode::Shareable,
        "host" => IpcMode::Host,
        "none" => IpcMode::None,
        m => match container_ref(m, "--ipc")? {
            Some(x) => IpcMode::Container(x.to_string()),
            None => {
                return Err(SpecError::invalid(format!(
                    "invalid IPC mode: {m}: --ipc takes private, shareable, host, none or container:<name|id>"
                )))
            }
        },
    };
    let share = |mode: &str, what: &str, flag: &str| -> Result<ShareMode, SpecError> {
        match mode {
            "" | "private" => Ok(ShareMode::Private),
            "host" => Ok(ShareMode::Host),
            m => match container_ref(m, flag)? {
                Some(x) => Ok(ShareMode::Container(x.to_string())),
                None => Err(SpecError::invalid(format!(
                    "invalid {what} mode: {m}: {flag} takes host or container:<name|id>"
                ))),
            },
        }
    };
    let pid = share(&host.pid_mode, "PID", "--pid")?;
    let uts = share(&host.uts_mode, "UTS", "--uts")?;
    if uts != ShareMode::Private && !config.hostname.is_empty() {
        return Err(SpecError::invalid(
            "conflicting options: hostname and the UTS mode: drop --hostname or --uts",
        ));
    }
    if net == NetMode::Host && host.links.as_ref().is_some_and(|l| !l.is_empty()) {
        return Err(SpecError::invalid(
            "conflicting options: host type networking can't be used with links. This would result in undefined behavior",
        ));
    }
    let cgroup_private = match host.cgroupns_mode.as_str() {
        "private" => true,
        "host" => false,
        // Docker's default: private on a pure v2 host, where it isolates
        // well; the host's on v1 and hybrid hosts.
        "" => cgroup_v2,
        m => {
            return Err(SpecError::invalid(format!(
                "invalid cgroup namespace mode: {m}: --cgroupns takes private or host"
            )))
        }
    };
    match host.userns_mode.as_str() {
        "" | "host" => {}
        m => {
            return Err(SpecError::Unsupported(format!(
                "user namespaces are not supported yet: --userns={m}: leave --userns unset or use --userns=host"
            )))
        }
    }
    Ok(Modes {
        net,
        ipc,
        pid,
        uts,
        cgroup_private,
    })
}

fn ns(typ: LinuxNamespaceType, path: Option<PathBuf>) -> LinuxNamespace {
    let mut n = LinuxNamespace::default();
    n.set_typ(typ).set_path(path);
    n
}

fn join(
    path: &Option<PathBuf>,
    typ: LinuxNamespaceType,
    mode: &str,
) -> Result<LinuxNamespace, SpecError> {
    match path {
        Some(p) => Ok(ns(typ, Some(p.clone()))),
        None => Err(SpecError::Internal(format!(
            "{mode}: the engine did not resolve the {typ} namespace to join"
        ))),
    }
}

/// The spec's `linux.namespaces`.
pub(crate) fn namespaces(
    modes: &Modes,
    joins: &NamespaceJoins,
) -> Result<Vec<LinuxNamespace>, SpecError> {
    use LinuxNamespaceType as T;
    let mut out = vec![ns(T::Mount, None)];
    match &modes.net {
        NetMode::Host => {}
        NetMode::None => out.push(ns(T::Network, None)),
        NetMode::Private => out.push(ns(T::Network, joins.net.clone())),
        NetMode::Container(x) => out.push(join(
            &joins.net,
            T::Network,
            &format!("--network container:{x}"),
        )?),
    }
    match &modes.uts {
        ShareMode::Private => out.push(ns(T::Uts, None)),
        ShareMode::Host => {}
        ShareMode::Container(x) => {
            out.push(join(&joins.uts, T::Uts, &format!("--uts container:{x}"))?)
        }
    }
    match &modes.pid {
        ShareMode::Private => out.push(ns(T::Pid, None)),
        ShareMode::Host => {}
        ShareMode::Container(x) => {
            out.push(join(&joins.pid, T::Pid, &format!("--pid container:{x}"))?)
        }
    }
    match &modes.ipc {
        IpcMode::Private | IpcMode::Shareable | IpcMode::None => out.push(ns(T::Ipc, None)),
        IpcMode::Host => {}
        IpcMode::Container(x) => {
            out.push(join(&joins.ipc, T::Ipc, &format!("--ipc container:{x}"))?)
        }
    }
    if modes.cgroup_private {
        out.push(ns(T::Cgroup, None));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn modes(host: &HostConfig, v2: bool) -> Result<Modes, SpecError> {
        parse_modes(&ContainerConfig::default(), host, v2)
    }

    fn types(list: &[LinuxNamespace]) -> Vec<String> {
        list.iter()
            .map(|n| {
                let p = n
                    .path()
                    .as_ref()
                    .map(|p| format!("={}", p.display()))
                    .unwrap_or_default();
                format!("{}{p}", n.typ())
            })
            .collect()
    }

    #[test]
    fn defaults_per_cgroup_version() {
        let m = modes(&HostConfig::default(), false).unwrap();
        let list = namespaces(&m, &NamespaceJoins::default()).unwrap();
        assert_eq!(types(&list), ["mnt", "net", "uts", "pid", "ipc"]);
        let m = modes(&HostConfig::default(), true).unwrap();
        let list = namespaces(&m, &NamespaceJoins::default()).unwrap();
        assert_eq!(types(&list), ["mnt", "net", "uts", "pid", "ipc", "cgroup"]);
        let h = HostConfig {
            cgroupns_mode: "private".into(),
            ..Default::default()
        };
        assert!(modes(&h, false).unwrap().cgroup_private);
    }

    #[test]
    fn host_and_joined_modes() {
        let h = HostConfig {
            network_mode: "host".into(),
            pid_mode: "host".into(),
            ipc_mode: "container:db".into(),
            uts_mode: "host".into(),
            cgroupns_mode: "host".into(),
            ..Default::default()
        };
        let m = modes(&h, true).unwrap();
        assert!(!m.private_net());
        let joins = NamespaceJoins {
            ipc: Some("/proc/42/ns/ipc".into()),
            ..Default::default()
        };
        assert_eq!(
            types(&namespaces(&m, &joins).unwrap()),
            ["mnt", "ipc=/proc/42/ns/ipc"]
        );
        let e = namespaces(&m, &NamespaceJoins::default()).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Internal);
    }

    #[test]
    fn prepared_netns_and_none() {
        let joins = NamespaceJoins {
            net: Some("/run/berth/netns/x".into()),
            ..Default::default()
        };
        let m = modes(&HostConfig::default(), false).unwrap();
        assert!(
            types(&namespaces(&m, &joins).unwrap()).contains(&"net=/run/berth/netns/x".to_string())
        );
        let h = HostConfig {
            network_mode: "none".into(),
            ..Default::default()
        };
        let m = modes(&h, false).unwrap();
        assert!(m.private_net());
        assert!(types(&namespaces(&m, &joins).unwrap()).contains(&"net".to_string()));
    }

    #[test]
    fn invalid_modes() {
        for (h, want) in [
            (
                HostConfig {
                    ipc_mode: "bogus".into(),
                    ..Default::default()
                },
                "invalid IPC mode: bogus",
            ),
            (
                HostConfig {
                    pid_mode: "container:".into(),
                    ..Default::default()
                },
                "invalid --pid \"container:\"",
            ),
            (
                HostConfig {
                    uts_mode: "x".into(),
                    ..Default::default()
                },
                "invalid UTS mode: x",
            ),
            (
                HostConfig {
                    cgroupns_mode: "x".into(),
                    ..Default::default()
                },
                "invalid cgroup namespace mode: x",
            ),
            (
                HostConfig {
                    userns_mode: "private".into(),
                    ..Default::default()
                },
                "user namespaces are not supported yet",
            ),
        ] {
            let e = modes(&h, false).unwrap_err();
            assert!(e.to_string().starts_with(want), "{e}");
            assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument);
        }
        let c = ContainerConfig {
            hostname: "x".into(),
            ..Default::default()
        };
        let h = HostConfig {
            uts_mode: "host".into(),
            ..Default::default()
        };
        assert!(parse_modes(&c, &h, false)
            .unwrap_err()
            .to_string()
            .starts_with("conflicting options: hostname and the UTS mode"));
    }
}
