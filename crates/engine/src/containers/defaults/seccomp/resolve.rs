//! Turning a Docker profile into the OCI `linux.seccomp` of one container:
//! the rule conditions are decided against the container's capabilities,
//! the host's architecture and its kernel version, and `archMap` becomes
//! the list of architectures.

use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSyscall};

use super::profile::{DockerSeccompProfile, KernelVersion, RuleFilter};
use super::SeccompProfileError;

/// An architecture under its three spellings: Go's `GOARCH` (what Docker's
/// API and image configs use), libseccomp's (what profiles' `arches` use)
/// and the OCI enum.
struct ArchNames {
    aliases: &'static [&'static str],
    libseccomp: &'static str,
    oci: Arch,
}

const ARCHES: &[ArchNames] = &[
    ArchNames {
        aliases: &["amd64", "x86_64"],
        libseccomp: "amd64",
        oci: Arch::ScmpArchX86_64,
    },
    ArchNames {
        aliases: &["386", "x86", "i386", "i686"],
        libseccomp: "x86",
        oci: Arch::ScmpArchX86,
    },
    ArchNames {
        aliases: &["x32"],
        libseccomp: "x32",
        oci: Arch::ScmpArchX32,
    },
    ArchNames {
        aliases: &["arm64", "aarch64"],
        libseccomp: "arm64",
        oci: Arch::ScmpArchAarch64,
    },
    ArchNames {
        aliases: &["arm"],
        libseccomp: "arm",
        oci: Arch::ScmpArchArm,
    },
    ArchNames {
        aliases: &["ppc64le", "powerpc64le"],
        libseccomp: "ppc64le",
        oci: Arch::ScmpArchPpc64le,
    },
    ArchNames {
        aliases: &["ppc64", "powerpc64"],
        libseccomp: "ppc64",
        oci: Arch::ScmpArchPpc64,
    },
    ArchNames {
        aliases: &["ppc", "powerpc"],
        libseccomp: "ppc",
        oci: Arch::ScmpArchPpc,
    },
    ArchNames {
        aliases: &["s390x"],
        libseccomp: "s390x",
        oci: Arch::ScmpArchS390x,
    },
    ArchNames {
        aliases: &["s390"],
        libseccomp: "s390",
        oci: Arch::ScmpArchS390,
    },
    ArchNames {
        aliases: &["riscv64"],
        libseccomp: "riscv64",
        oci: Arch::ScmpArchRiscv64,
    },
    ArchNames {
        aliases: &["loong64", "loongarch64"],
        libseccomp: "loongarch64",
        oci: Arch::ScmpArchLoongarch64,
    },
    ArchNames {
        aliases: &["mips64"],
        libseccomp: "mips64",
        oci: Arch::ScmpArchMips64,
    },
    ArchNames {
        aliases: &["mips64le", "mipsel64"],
        libseccomp: "mipsel64",
        oci: Arch::ScmpArchMipsel64,
    },
    ArchNames {
        aliases: &["mips"],
        libseccomp: "mips",
        oci: Arch::ScmpArchMips,
    },
    ArchNames {
        aliases: &["mipsle", "mipsel"],
        libseccomp: "mipsel",
        oci: Arch::ScmpArchMipsel,
    },
];

fn arch_names(arch: &str) -> Result<&'static ArchNames, SeccompProfileError> {
    ARCHES
        .iter()
        .find(|a| a.aliases.contains(&arch))
        .ok_or_else(|| SeccompProfileError::UnknownArch {
            arch: arch.to_string(),
        })
}

/// The host's architecture in Go's spelling (`amd64`, `arm64`, …), the one
/// [`to_oci`] and image platforms use.
pub fn host_arch() -> &'static str {
    if cfg!(target_arch = "x86_64") {
        "amd64"
    } else if cfg!(target_arch = "x86") {
        "386"
    } else if cfg!(target_arch = "aarch64") {
        "arm64"
    } else if cfg!(target_arch = "arm") {
        "arm"
    } else if cfg!(all(target_arch = "powerpc64", target_endian = "little")) {
        "ppc64le"
    } else if cfg!(target_arch = "powerpc64") {
        "ppc64"
    } else if cfg!(target_arch = "s390x") {
        "s390x"
    } else if cfg!(target_arch = "riscv64") {
        "riscv64"
    } else if cfg!(target_arch = "loongarch64") {
        "loong64"
    } else if cfg!(all(target_arch = "mips64", target_endian = "little")) {
        "mips64le"
    } else if cfg!(target_arch = "mips64") {
        "mips64"
    } else {
        std::env::consts::ARCH
    }
}

/// The running kernel's version and patch level (`(6, 1)` for `6.1.0-13-amd64`).
pub fn host_kernel_version() -> Result<(u32, u32), SeccompProfileError> {
    let uts = nix::sys::utsname::uname().map_err(|errno| SeccompProfileError::Uname {
        source: errno.into(),
    })?;
    let release = uts.release().to_string_lossy().into_owned();
    match KernelVersion::from_release(&release) {
        Some(v) => Ok((v.major, v.minor)),
        None => Err(SeccompProfileError::KernelVersion { release }),
    }
}

/// The OCI filter `profile` means for a container whose bounding set is
/// `caps` (`CAP_SYS_ADMIN` or `SYS_ADMIN`, any case), on `arch` (Go's or
/// Rust's name, see [`host_arch`]) and kernel `(version, patchlevel)`.
///
/// Returns `None` for a profile without `defaultAction` and rules, which
/// Docker treats as "no filter".
pub fn to_oci(
    profile: &DockerSeccompProfile,
    caps: &[String],
    arch: &str,
    kernel: (u32, u32),
) -> Result<Option<LinuxSeccomp>, SeccompProfileError> {
    super::profile::validate(profile)?;
    let Some(default_action) = profile.default_action else {
        return Ok(None);
    };
    let arch = arch_names(arch)?;
    let kernel = KernelVersion {
        major: kernel.0,
        minor: kernel.1,
    };
    let caps: Vec<String> = caps.iter().map(|c| normalize_cap(c)).collect();
    let conditions = Conditions {
        caps: &caps,
        arch: arch.libseccomp,
        kernel,
    };

    let architectures: Vec<Arch> = if profile.architectures.is_empty() {
        profile
            .arch_map
            .iter()
            .find(|entry| entry.architecture == arch.oci)
            .map(|entry| {
                std::iter::once(entry.architecture)
                    .chain(entry.sub_architectures.iter().copied())
                    .collect()
            })
            .unwrap_or_default()
    } else {
        profile.architectures.clone()
    };

    let mut syscalls = Vec::new();
    for rule in &profile.syscalls {
        if rule.excludes.as_ref().is_some_and(|f| conditions.any(f))
            || rule.includes.as_ref().is_some_and(|f| !conditions.all(f))
        {
            continue;
        }
        let mut out = LinuxSyscall::default();
        out.set_names(rule.syscall_names());
        out.set_action(rule.action);
        out.set_errno_ret(rule.errno_ret);
        out.set_args((!rule.args.is_empty()).then(|| rule.args.clone()));
        syscalls.push(out);
    }

    let mut seccomp = LinuxSeccomp::default();
    seccomp.set_default_action(default_action);
    seccomp.set_default_errno_ret(profile.default_errno_ret);
    seccomp.set_architectures((!architectures.is_empty()).then_some(architectures));
    seccomp.set_flags((!profile.flags.is_empty()).then(|| profile.flags.clone()));
    seccomp.set_listener_path(profile.listener_path.clone());
    seccomp.set_listener_metadata(profile.listener_metadata.clone());
    seccomp.set_syscalls(Some(syscalls));
    Ok(Some(seccomp))
}

/// `sys_admin` → `CAP_SYS_ADMIN`.
fn normalize_cap(cap: &str) -> String {
    let upper = cap.to_ascii_uppercase();
    if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    }
}

/// What rule conditions are decided against.
struct Conditions<'a> {
    caps: &'a [String],
    arch: &'static str,
    kernel: KernelVersion,
}

impl Conditions<'_> {
    /// `includes`: every stated condition holds (all capabilities present,
    /// the architecture listed, the kernel new enough).
    fn all(&self, f: &RuleFilter) -> bool {
        (f.arches.is_empty() || f.arches.iter().any(|a| a == self.arch))
            && f.caps.iter().all(|c| self.caps.contains(c))
            && f.min_kernel.is_none_or(|min| self.kernel >= min)
    }

    /// `excludes`: any stated condition holds (the architecture listed, any
    /// of the capabilities present, the kernel at least the version).
    fn any(&self, f: &RuleFilter) -> bool {
        f.arches.iter().any(|a| a == self.arch)
            || f.caps.iter().any(|c| self.caps.contains(c))
            || f.min_kernel.is_some_and(|min| self.kernel >= min)
    }
}
