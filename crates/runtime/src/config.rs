//! Loading and validating a bundle's `config.json`.
//!
//! Everything that can be checked without creating anything is checked here,
//! before the first cgroup or process exists, so that a bad config leaves
//! nothing behind. Every error names the offending field.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

/// A config.json problem: the field (as a JSON path) and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config.json: cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config.json: {field}: {reason}")]
    Invalid { field: String, reason: String },
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Reads `<bundle>/config.json` into a [`Spec`], naming the field of any
/// type error.
pub fn load(bundle: &Path) -> Result<Spec, ConfigError> {
    let path = bundle.join("config.json");
    let data = std::fs::read(&path).map_err(|source| ConfigError::Read {
        path: path.clone(),
        source,
    })?;
    parse(&data)
}

/// Parses config.json bytes, naming the field of any type error.
pub fn parse(data: &[u8]) -> Result<Spec, ConfigError> {
    let de = &mut serde_json::Deserializer::from_slice(data);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let field = if field == "." {
            "(document)".to_string()
        } else {
            field
        };
        invalid(field, e.inner().to_string())
    })
}

/// The absolute rootfs directory of `spec` inside `bundle`.
pub fn rootfs_path(spec: &Spec, bundle: &Path) -> Result<PathBuf, ConfigError> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| invalid("root", "missing"))?;
    let p = root.path();
    if p.as_os_str().is_empty() {
        return Err(invalid("root.path", "empty"));
    }
    let abs = if p.is_absolute() {
        p.clone()
    } else {
        bundle.join(p)
    };
    match std::fs::metadata(&abs) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(invalid(
                "root.path",
                format!("{} is not a directory", abs.display()),
            ))
        }
        Err(e) => {
            return Err(invalid(
                "root.path",
                format!("rootfs {}: {e}", abs.display()),
            ));
        }
    }
    std::fs::canonicalize(&abs)
        .map_err(|e| invalid("root.path", format!("rootfs {}: {e}", abs.display())))
}

/// Which namespaces are new and which are joined.
pub fn namespace_set(spec: &Spec) -> HashSet<LinuxNamespaceType> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .map(|ns| ns.iter().map(|n| n.typ()).collect())
        .unwrap_or_default()
}

/// Whether the spec has a namespace of `typ` that it creates (no path).
pub fn creates_namespace(spec: &Spec, typ: LinuxNamespaceType) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == typ && n.path().is_none()))
}

/// Checks everything about `spec` that does not need the container to exist.
pub fn validate(spec: &Spec, require_process: bool) -> Result<(), ConfigError> {
    if spec.version().is_empty() {
        return Err(invalid("ociVersion", "missing"));
    }
    if let Some(process) = spec.process() {
        validate_process(process)?;
    } else if require_process {
        return Err(invalid(
            "process",
            "missing (required to create a container)",
        ));
    }
    validate_mounts(spec)?;
    validate_linux(spec)?;
    Ok(())
}

/// Checks the parts of a process (the container's or an exec'd one).
pub fn validate_process(process: &oci_spec::runtime::Process) -> Result<(), ConfigError> {
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(invalid("process.args", "must not be empty"));
    }
    if !process.cwd().is_absolute() {
        return Err(invalid(
            "process.cwd",
            format!("{:?} is not an absolute path", process.cwd()),
        ));
    }
    if let Some(adj) = process.oom_score_adj() {
        if !(-1000..=1000).contains(&adj) {
            return Err(invalid(
                "process.oomScoreAdj",
                format!("{adj} outside -1000..1000"),
            ));
        }
    }
    if let Some(rlimits) = process.rlimits() {
        let mut seen = HashSet::new();
        for (i, rl) in rlimits.iter().enumerate() {
            let field = format!("process.rlimits[{i}]");
            let name = crate::rlimits::name(rl.typ());
            if !seen.insert(name) {
                return Err(invalid(field, format!("duplicate {name}")));
            }
            crate::rlimits::check(rl).map_err(|reason| invalid(field, reason))?;
        }
    }
    Ok(())
}

fn validate_mounts(spec: &Spec) -> Result<(), ConfigError> {
    let Some(mounts) = spec.mounts() else {
        return Ok(());
    };
    for (i, m) in mounts.iter().enumerate() {
        let field = format!("mounts[{i}]");
        if !m.destination().is_absolute() {
            return Err(invalid(
                format!("{field}.destination"),
                format!("{:?} is not an absolute path", m.destination()),
            ));
        }
        let options = m.options().as_deref().unwrap_or_default();
        let is_bind = m.typ().as_deref() == Some("bind")
            || options.iter().any(|o| o == "bind" || o == "rbind");
        if is_bind {
            let Some(src) = m.source() else {
                return Err(invalid(
                    format!("{field}.source"),
                    "bind mount without a source",
                ));
            };
            if let Err(e) = std::fs::symlink_metadata(src) {
                return Err(invalid(
                    format!("{field}.source"),
                    format!("{}: {e}", src.display()),
                ));
            }
        } else if m.typ().is_none() && m.source().is_none() {
            return Err(invalid(
                format!("{field}.type"),
                "missing (and no bind option)",
            ));
        }
    }
    Ok(())
}

fn validate_linux(spec: &Spec) -> Result<(), ConfigError> {
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    let mut seen = HashSet::new();
    for (i, ns) in linux
        .namespaces()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let field = format!("linux.namespaces[{i}]");
        if !seen.insert(ns.typ()) {
            return Err(invalid(field, format!("duplicate namespace {}", ns.typ())));
        }
        if let Some(path) = ns.path() {
            if let Err(e) = std::fs::metadata(path) {
                return Err(invalid(
                    format!("{field}.path"),
                    format!("{}: {e}", path.display()),
                ));
            }
        }
    }
    let has_userns = seen.contains(&LinuxNamespaceType::User);
    let creates_userns = creates_namespace(spec, LinuxNamespaceType::User);
    let has_uid = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    let has_gid = linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if (has_uid || has_gid) && !has_userns {
        return Err(invalid(
            "linux.uidMappings",
            "id mappings need a user namespace",
        ));
    }
    if creates_userns && (!has_uid || !has_gid) {
        return Err(invalid(
            "linux.uidMappings",
            "a new user namespace needs both uidMappings and gidMappings",
        ));
    }
    if linux.time_offsets().as_ref().is_some_and(|t| !t.is_empty())
        && !creates_namespace(spec, LinuxNamespaceType::Time)
    {
        return Err(invalid(
            "linux.timeOffsets",
            "time offsets need a new time namespace",
        ));
    }
    if spec.hostname().as_ref().is_some_and(|h| !h.is_empty())
        && !seen.contains(&LinuxNamespaceType::Uts)
    {
        return Err(invalid(
            "hostname",
            "cannot set the hostname without a private UTS namespace",
        ));
    }
    if spec.domainname().as_ref().is_some_and(|h| !h.is_empty())
        && !seen.contains(&LinuxNamespaceType::Uts)
    {
        return Err(invalid(
            "domainname",
            "cannot set the domainname without a private UTS namespace",
        ));
    }
    if !seen.contains(&LinuxNamespaceType::Mount) {
        return Err(invalid("linux.namespaces", "a mount namespace is required"));
    }
    if let Some(sysctl) = linux.sysctl() {
        for key in sysctl.keys() {
            crate::sysctl::check_namespaced(spec, key)
                .map_err(|reason| invalid(format!("linux.sysctl.{key}"), reason))?;
        }
    }
    if let Some(path) = linux.cgroups_path() {
        if path
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(invalid(
                "linux.cgroupsPath",
                format!("{} contains \"..\"", path.display()),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_error_names_the_field() {
        let err = parse(br#"{"ociVersion":"1.0.2","process":{"cwd":"/","args":["a"],"user":{"uid":"x","gid":0}}}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("config.json: process.user.uid: invalid type"),
            "{err}"
        );
    }

    #[test]
    fn unknown_namespace_names_the_field() {
        let err = parse(
            br#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"pid"},{"type":"bogus"}]}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("config.json: linux.namespaces[1].type: unknown variant"),
            "{err}"
        );
    }
}
