//! Docker's seccomp defaults: the default profile (an allow list of about
//! 370 syscalls, more with capabilities that make them safe), Docker's
//! profile format, and the choice `--security-opt seccomp=…` and
//! `--privileged` make between the default, a custom profile and none.
//!
//! The default profile is berth's own data file in Docker's format
//! (`default_profile.json`, grouped by concern and commented); its rules are
//! those of moby's `profiles/seccomp/default.json`, so a container is allowed
//! exactly the syscalls Docker would allow it.

mod profile;
mod resolve;

#[cfg(test)]
mod tests;

pub use profile::{
    parse_profile, ArchMapEntry, DockerSeccompProfile, KernelVersion, RuleFilter, SyscallRule,
};
pub use resolve::{host_arch, host_kernel_version, to_oci};

use oci_spec::runtime::LinuxSeccomp;

/// The default profile's data, in Docker's format.
const DEFAULT_PROFILE_JSON: &str = include_str!("default_profile.json");

/// Errors reading a profile or applying it to a container. Messages name
/// the profile field (`syscalls[2].includes.minKernel`).
#[derive(Debug, thiserror::Error)]
pub enum SeccompProfileError {
    /// The JSON does not have the shape of a profile.
    #[error("seccomp profile: {field}: malformed")]
    Malformed {
        field: String,
        #[source]
        source: serde_json::Error,
    },
    /// A well-formed value that a profile cannot contain.
    #[error("seccomp profile: {field}: {reason}")]
    Invalid { field: String, reason: String },
    /// [`to_oci`] was given an architecture berth does not know.
    #[error("seccomp profile: unknown architecture {arch:?}")]
    UnknownArch { arch: String },
    /// uname(2) failed.
    #[error("seccomp profile: reading the kernel release with uname(2)")]
    Uname {
        #[source]
        source: std::io::Error,
    },
    /// The host's kernel release does not start with `<major>.<minor>`.
    #[error("seccomp profile: cannot tell the kernel version from release {release:?}")]
    KernelVersion { release: String },
    /// `--security-opt` has an entry that is neither `key=value` nor a flag.
    #[error("invalid --security-opt 1: {opt:?}")]
    SecurityOpt { opt: String },
}

/// Docker's default profile.
pub fn default_profile() -> Result<DockerSeccompProfile, SeccompProfileError> {
    parse_profile(DEFAULT_PROFILE_JSON)
}

/// What `--security-opt seccomp=…` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeccompChoice {
    /// No option, or `seccomp=builtin`: Docker's default profile.
    Default,
    /// `seccomp=unconfined`: no filter.
    Unconfined,
    /// `seccomp=<profile JSON>`: the CLI reads the file and passes its
    /// content, as Docker's does.
    Custom(String),
}

impl SeccompChoice {
    /// Reads the seccomp entry of `--security-opt` (the last one wins; `=` or
    /// the deprecated `:` separates key and value). Other options are not
    /// looked at beyond their syntax.
    pub fn from_security_opt(opts: &[String]) -> Result<Self, SeccompProfileError> {
        let mut choice = Self::Default;
        for opt in opts {
            if matches!(
                opt.as_str(),
                "no-new-privileges" | "writable-cgroups" | "disable"
            ) {
                continue;
            }
            let split = if opt.contains('=') {
                opt.split_once('=')
            } else {
                opt.split_once(':')
            };
            let Some((key, value)) = split else {
                return Err(SeccompProfileError::SecurityOpt { opt: opt.clone() });
            };
            if key == "seccomp" {
                choice = match value {
                    "unconfined" => Self::Unconfined,
                    "builtin" | "" => Self::Default,
                    json => Self::Custom(json.to_string()),
                };
            }
        }
        Ok(choice)
    }
}

/// The OCI seccomp filter of a container, decided as Docker decides it:
/// none when unconfined; for `--privileged` only an explicitly given custom
/// profile; otherwise the custom or the default profile, resolved against
/// the container's bounding capabilities, `arch` and `kernel`.
pub fn container_seccomp(
    choice: &SeccompChoice,
    privileged: bool,
    caps: &[String],
    arch: &str,
    kernel: (u32, u32),
) -> Result<Option<LinuxSeccomp>, SeccompProfileError> {
    let profile = match choice {
        SeccompChoice::Unconfined => return Ok(None),
        SeccompChoice::Default if privileged => return Ok(None),
        SeccompChoice::Default => default_profile()?,
        SeccompChoice::Custom(json) => parse_profile(json)?,
    };
    to_oci(&profile, caps, arch, kernel)
}
