//! Capabilities: Docker's default set, `--cap-add` / `--cap-drop` and
//! `--privileged`.

use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};

use super::host::HostInfo;
use super::SpecError;
use crate::containers::model::HostConfig;

/// Docker's default capability set (moby `oci/caps/defaults.go`).
pub const DEFAULT_CAPABILITIES: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

const ALL: &str = "ALL";

/// The capabilities a container of `host` gets, as `CAP_*` names: all that
/// berth can pass on when privileged, else the default set adjusted by
/// `CapAdd`/`CapDrop` (names with or without `CAP_`, any case, or `ALL`).
pub fn effective_capabilities(host: &HostConfig) -> Result<Vec<String>, SpecError> {
    effective_on(host, HostInfo::get())
}

pub(crate) fn effective_on(host: &HostConfig, info: &HostInfo) -> Result<Vec<String>, SpecError> {
    let available = &info.capabilities;
    if host.privileged {
        return Ok(available.clone());
    }
    let adds = host.cap_add.as_deref().unwrap_or_default();
    let drops = host.cap_drop.as_deref().unwrap_or_default();
    let defaults = || DEFAULT_CAPABILITIES.iter().map(|c| c.to_string());
    if adds.is_empty() && drops.is_empty() {
        return Ok(defaults().collect());
    }
    let drops = normalize(drops, "--cap-drop", available, false)?;
    let adds = normalize(adds, "--cap-add", available, true)?;
    let mut out: Vec<String> = if adds.iter().any(|c| c == ALL) {
        available
            .iter()
            .filter(|c| !drops.contains(c))
            .cloned()
            .collect()
    } else if drops.iter().any(|c| c == ALL) {
        adds
    } else {
        let mut kept: Vec<String> = defaults().filter(|c| !drops.contains(c)).collect();
        kept.extend(adds);
        kept
    };
    let mut seen = std::collections::HashSet::new();
    out.retain(|c| seen.insert(c.clone()));
    Ok(out)
}

/// Upper-cases, adds the `CAP_` prefix and checks each name; `ALL` stays.
/// A capability the kernel knows but berth does not hold is refused when
/// added (it could never be granted) and accepted when dropped.
fn normalize(
    list: &[String],
    flag: &str,
    available: &[String],
    adding: bool,
) -> Result<Vec<String>, SpecError> {
    let mut out = Vec::with_capacity(list.len());
    for raw in list {
        let upper = raw.trim().to_ascii_uppercase();
        if upper == ALL {
            out.push(upper);
            continue;
        }
        let name = if upper.starts_with("CAP_") {
            upper
        } else {
            format!("CAP_{upper}")
        };
        if name.parse::<caps::Capability>().is_err() {
            return Err(SpecError::invalid(format!(
                "unknown capability: {name:?}: {flag} takes names from capabilities(7), with or without CAP_, or ALL"
            )));
        }
        if adding && !available.contains(&name) {
            return Err(SpecError::invalid(format!(
                "capability not supported by your kernel or not available in the current environment: {name:?}: remove it from {flag}"
            )));
        }
        out.push(name);
    }
    Ok(out)
}

/// Docker's process capabilities: bounding, permitted and effective hold
/// the set; inheritable and ambient stay empty.
pub(crate) fn to_oci(names: &[String]) -> Result<LinuxCapabilities, SpecError> {
    let mut set = Capabilities::new();
    for name in names {
        let cap: Capability = name
            .trim_start_matches("CAP_")
            .parse()
            .map_err(|_| SpecError::Internal(format!("capability {name} has no OCI name")))?;
        set.insert(cap);
    }
    let mut caps = LinuxCapabilities::default();
    caps.set_bounding(Some(set.clone()))
        .set_permitted(Some(set.clone()))
        .set_effective(Some(set))
        .set_inheritable(None)
        .set_ambient(None);
    Ok(caps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> HostInfo {
        let mut all: Vec<caps::Capability> = caps::all().into_iter().collect();
        all.sort_by_key(|c| c.index());
        HostInfo {
            cpus: 2,
            online_cpus: "0-1".into(),
            online_mems: "0".into(),
            swap_limit: true,
            cpu_realtime: false,
            // Like this VM: everything but CAP_SYS_RESOURCE.
            capabilities: all
                .iter()
                .map(|c| c.to_string())
                .filter(|c| c != "CAP_SYS_RESOURCE")
                .collect(),
        }
    }

    fn host(add: &[&str], drop: &[&str]) -> HostConfig {
        HostConfig {
            cap_add: Some(add.iter().map(|s| s.to_string()).collect()),
            cap_drop: Some(drop.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn default_set_is_dockers_fourteen() {
        let caps = effective_on(&HostConfig::default(), &info()).unwrap();
        assert_eq!(caps.len(), 14);
        assert!(caps.contains(&"CAP_NET_RAW".to_string()));
        assert!(!caps.contains(&"CAP_SYS_ADMIN".to_string()));
    }

    #[test]
    fn add_and_drop_any_spelling() {
        let caps = effective_on(
            &host(&["sys_admin", "CAP_NET_ADMIN"], &["Net_Raw", "chown"]),
            &info(),
        )
        .unwrap();
        assert!(caps.contains(&"CAP_SYS_ADMIN".to_string()));
        assert!(caps.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(!caps.contains(&"CAP_NET_RAW".to_string()));
        assert!(!caps.contains(&"CAP_CHOWN".to_string()));
        assert_eq!(caps.len(), 14);
    }

    #[test]
    fn all_keywords() {
        let i = info();
        let caps = effective_on(&host(&["ALL"], &["sys_admin"]), &i).unwrap();
        assert_eq!(caps.len(), i.capabilities.len() - 1);
        assert!(!caps.contains(&"CAP_SYS_ADMIN".to_string()));
        let caps = effective_on(&host(&["kill"], &["all"]), &i).unwrap();
        assert_eq!(caps, vec!["CAP_KILL".to_string()]);
        let caps = effective_on(&host(&[], &["ALL"]), &i).unwrap();
        assert!(caps.is_empty());
    }

    #[test]
    fn privileged_gets_what_berth_holds() {
        let i = info();
        let h = HostConfig {
            privileged: true,
            cap_drop: Some(vec!["ALL".into()]),
            ..Default::default()
        };
        assert_eq!(effective_on(&h, &i).unwrap(), i.capabilities);
    }

    #[test]
    fn unknown_and_unavailable_refused() {
        let e = effective_on(&host(&["FOO"], &[]), &info()).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument);
        assert!(
            e.to_string().starts_with("unknown capability: \"CAP_FOO\""),
            "{e}"
        );
        assert!(e.to_string().contains("--cap-add"), "{e}");
        let e = effective_on(&host(&["sys_resource"], &[]), &info()).unwrap_err();
        assert!(
            e.to_string()
                .contains("not available in the current environment"),
            "{e}"
        );
        // Dropping one berth does not hold is harmless.
        assert!(effective_on(&host(&[], &["SYS_RESOURCE"]), &info()).is_ok());
        assert!(effective_on(&host(&[], &["bogus"]), &info()).is_err());
    }

    #[test]
    fn oci_sets() {
        let caps = to_oci(&["CAP_KILL".into(), "CAP_SYS_TTY_CONFIG".into()]).unwrap();
        let v = serde_json::to_value(&caps).unwrap();
        for set in ["bounding", "permitted", "effective"] {
            let mut names: Vec<&str> = v[set]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap())
                .collect();
            names.sort();
            assert_eq!(names, ["CAP_KILL", "CAP_SYS_TTY_CONFIG"]);
        }
        assert!(v.get("ambient").is_none() && v.get("inheritable").is_none());
    }
}
