//! Docker's seccomp profile format: the JSON `--security-opt seccomp=FILE`
//! takes. It extends the OCI `linux.seccomp` object with an `archMap`
//! (architectures picked by the host's), rule conditions (`includes` /
//! `excludes` on capabilities, architectures and kernel version), the
//! deprecated single `name` and free-form `comment`s.

use std::fmt;
use std::path::PathBuf;

use oci_spec::runtime::{Arch, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::SeccompProfileError;

/// A profile in Docker's format, as written by users and as berth's default
/// profile is stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerSeccompProfile {
    /// `None` together with no syscalls means "no filter" (Docker's rule for `{}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_action: Option<LinuxSeccompAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u32>,
    /// Used as is; a profile has either this or `archMap`.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub architectures: Vec<Arch>,
    /// The entry whose `architecture` is the host's gives the filter's
    /// architectures (it and its sub-architectures).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub arch_map: Vec<ArchMapEntry>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub flags: Vec<LinuxSeccompFilterFlag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_path: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_metadata: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub syscalls: Vec<SyscallRule>,
}

/// One `archMap` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchMapEntry {
    pub architecture: Arch,
    #[serde(default, deserialize_with = "null_as_default")]
    pub sub_architectures: Vec<Arch>,
}

/// One `syscalls[]` entry: an OCI syscall rule plus the conditions under
/// which it is part of the filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyscallRule {
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub names: Vec<String>,
    /// The deprecated single-name form; a rule has either this or `names`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub action: LinuxSeccompAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub args: Vec<LinuxSeccompArg>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
    /// The rule applies only if all of these hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub includes: Option<RuleFilter>,
    /// The rule is dropped if any of these holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excludes: Option<RuleFilter>,
}

impl SyscallRule {
    /// The syscall names of the rule, whichever form it uses.
    pub fn syscall_names(&self) -> Vec<String> {
        if self.name.is_empty() {
            self.names.clone()
        } else {
            vec![self.name.clone()]
        }
    }
}

/// `includes` / `excludes`. Architectures are libseccomp's names as Docker
/// spells them (`amd64`, `x86`, `x32`, `arm64`, `arm`, `s390x`, …).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleFilter {
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub caps: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub arches: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_kernel: Option<KernelVersion>,
}

/// A kernel version as `minKernel` writes it: `"<version>.<patchlevel>"`
/// (`"4.8"`); sublevels and suffixes of the host's release are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KernelVersion {
    pub major: u32,
    pub minor: u32,
}

impl KernelVersion {
    /// Parses `"4.8"`; refuses `"0.0"`, more or fewer than two parts, and
    /// non-numbers.
    pub fn parse(text: &str) -> Result<Self, String> {
        let expected = || format!("invalid kernel version {text:?}, expected \"<major>.<minor>\"");
        let (major, minor) = text.split_once('.').ok_or_else(expected)?;
        let major: u32 = major.parse().map_err(|_| expected())?;
        let minor: u32 = minor.parse().map_err(|_| expected())?;
        if major == 0 && minor == 0 {
            return Err(format!("invalid kernel version {text:?}: 0.0"));
        }
        Ok(Self { major, minor })
    }

    /// The version and patch level of a `uname -r` release (`6.1.0-13-amd64`).
    pub fn from_release(release: &str) -> Option<Self> {
        let mut parts = release.split(|c: char| !c.is_ascii_digit());
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some(Self { major, minor })
    }
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl Serialize for KernelVersion {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KernelVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Go's JSON decoder reads `null` as an empty list; profiles written for
/// Docker rely on that (`"subArchitectures": null`).
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Syscalls take at most six arguments.
const MAX_ARG_INDEX: usize = 5;

/// Parses a profile in Docker's format. Errors name the field
/// (`syscalls[3].action`, `syscalls[0].includes.minKernel`).
pub fn parse_profile(json: &str) -> Result<DockerSeccompProfile, SeccompProfileError> {
    // serde also reads structs from JSON arrays (`[]` would be an empty profile).
    if !json.trim_start().starts_with('{') {
        return Err(invalid("profile", "not a JSON object"));
    }
    let mut de = serde_json::Deserializer::from_str(json);
    let profile: DockerSeccompProfile = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        SeccompProfileError::Malformed {
            // serde_path_to_error reports the root as ".".
            field: if field == "." {
                "profile".to_string()
            } else {
                field
            },
            source: e.into_inner(),
        }
    })?;
    de.end().map_err(|source| SeccompProfileError::Malformed {
        field: "profile".to_string(),
        source,
    })?;
    validate(&profile)?;
    Ok(profile)
}

/// The checks the JSON shape cannot express.
pub(super) fn validate(profile: &DockerSeccompProfile) -> Result<(), SeccompProfileError> {
    if !profile.architectures.is_empty() && !profile.arch_map.is_empty() {
        return Err(invalid(
            "archMap",
            "both 'architectures' and 'archMap' are specified, use either 'architectures' or 'archMap'",
        ));
    }
    if profile.default_action.is_none() && !profile.syscalls.is_empty() {
        return Err(invalid(
            "defaultAction",
            "missing, but the profile has syscall rules",
        ));
    }
    for (i, rule) in profile.syscalls.iter().enumerate() {
        if !rule.name.is_empty() && !rule.names.is_empty() {
            return Err(invalid(
                &format!("syscalls[{i}]"),
                "both 'name' and 'names' are specified, use either 'name' or 'names'",
            ));
        }
        for (j, arg) in rule.args.iter().enumerate() {
            if arg.index() > MAX_ARG_INDEX {
                return Err(invalid(
                    &format!("syscalls[{i}].args[{j}].index"),
                    &format!(
                        "{} out of range: syscalls have arguments 0 to {MAX_ARG_INDEX}",
                        arg.index()
                    ),
                ));
            }
        }
        for (which, filter) in [("includes", &rule.includes), ("excludes", &rule.excludes)] {
            for (k, cap) in filter.iter().flat_map(|f| f.caps.iter()).enumerate() {
                if !cap.starts_with("CAP_") || cap.len() == 4 {
                    return Err(invalid(
                        &format!("syscalls[{i}].{which}.caps[{k}]"),
                        &format!("{cap:?} is not a capability name like \"CAP_SYS_ADMIN\""),
                    ));
                }
            }
        }
    }
    Ok(())
}

fn invalid(field: &str, reason: &str) -> SeccompProfileError {
    SeccompProfileError::Invalid {
        field: field.to_string(),
        reason: reason.to_string(),
    }
}
