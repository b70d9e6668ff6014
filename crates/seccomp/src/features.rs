//! What this build and kernel support, for `berth-runtime features`.

use libseccomp::{ScmpAction, ScmpFilterContext};
use oci_spec::runtime::Arch;

use crate::compile::scmp_arch;
use crate::kernel;

/// The `linux.seccomp` part of `<runtime> features`, in runc's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeccompFeatures {
    /// Actions berth accepts in a spec.
    pub actions: Vec<String>,
    /// Argument comparison operators berth accepts.
    pub operators: Vec<String>,
    /// Architectures the linked libseccomp can add to a filter.
    pub archs: Vec<String>,
    /// Filter flags berth knows.
    pub known_flags: Vec<String>,
    /// Filter flags the running kernel accepts.
    pub supported_flags: Vec<String>,
}

const ACTIONS: [&str; 9] = [
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_TRAP",
];

const OPERATORS: [&str; 7] = [
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_LE",
    "SCMP_CMP_LT",
    "SCMP_CMP_MASKED_EQ",
    "SCMP_CMP_NE",
];

const ARCHS: [Arch; 23] = [
    Arch::ScmpArchAarch64,
    Arch::ScmpArchArm,
    Arch::ScmpArchLoongarch64,
    Arch::ScmpArchM68k,
    Arch::ScmpArchMips,
    Arch::ScmpArchMips64,
    Arch::ScmpArchMips64n32,
    Arch::ScmpArchMipsel,
    Arch::ScmpArchMipsel64,
    Arch::ScmpArchMipsel64n32,
    Arch::ScmpArchParisc,
    Arch::ScmpArchParisc64,
    Arch::ScmpArchPpc,
    Arch::ScmpArchPpc64,
    Arch::ScmpArchPpc64le,
    Arch::ScmpArchRiscv64,
    Arch::ScmpArchS390,
    Arch::ScmpArchS390x,
    Arch::ScmpArchSh,
    Arch::ScmpArchSheb,
    Arch::ScmpArchX32,
    Arch::ScmpArchX86,
    Arch::ScmpArchX86_64,
];

/// Reports the actions, operators, architectures and flags berth supports
/// here. Architectures are probed against the linked libseccomp (2.5 lacks
/// some that oci-spec names) and flags against the running kernel.
pub fn features() -> SeccompFeatures {
    let archs = ARCHS
        .iter()
        .filter(|arch| {
            ScmpFilterContext::new(ScmpAction::Allow)
                .and_then(|mut filter| filter.add_arch(scmp_arch(**arch)).map(|_| ()))
                .is_ok()
        })
        .map(|arch| arch.to_string())
        .collect();
    SeccompFeatures {
        actions: ACTIONS.iter().map(|a| a.to_string()).collect(),
        operators: OPERATORS.iter().map(|o| o.to_string()).collect(),
        archs,
        known_flags: kernel::FILTER_FLAGS
            .iter()
            .map(|(name, _)| name.to_string())
            .collect(),
        supported_flags: kernel::FILTER_FLAGS
            .iter()
            .filter(|(_, value)| kernel::filter_flags_supported(*value))
            .map(|(name, _)| name.to_string())
            .collect(),
    }
}
