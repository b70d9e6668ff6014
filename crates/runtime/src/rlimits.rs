//! `process.rlimits`: validation in the CLI (so an impossible raise fails
//! before anything exists) and `setrlimit` in the container's init.

use oci_spec::runtime::{PosixRlimit, PosixRlimitType};

/// The kernel resource number and the OCI name of an rlimit type.
fn resource(typ: PosixRlimitType) -> (libc::__rlimit_resource_t, &'static str) {
    use PosixRlimitType::*;
    match typ {
        RlimitCpu => (libc::RLIMIT_CPU, "RLIMIT_CPU"),
        RlimitFsize => (libc::RLIMIT_FSIZE, "RLIMIT_FSIZE"),
        RlimitData => (libc::RLIMIT_DATA, "RLIMIT_DATA"),
        RlimitStack => (libc::RLIMIT_STACK, "RLIMIT_STACK"),
        RlimitCore => (libc::RLIMIT_CORE, "RLIMIT_CORE"),
        RlimitRss => (libc::RLIMIT_RSS, "RLIMIT_RSS"),
        RlimitNproc => (libc::RLIMIT_NPROC, "RLIMIT_NPROC"),
        RlimitNofile => (libc::RLIMIT_NOFILE, "RLIMIT_NOFILE"),
        RlimitMemlock => (libc::RLIMIT_MEMLOCK, "RLIMIT_MEMLOCK"),
        RlimitAs => (libc::RLIMIT_AS, "RLIMIT_AS"),
        RlimitLocks => (libc::RLIMIT_LOCKS, "RLIMIT_LOCKS"),
        RlimitSigpending => (libc::RLIMIT_SIGPENDING, "RLIMIT_SIGPENDING"),
        RlimitMsgqueue => (libc::RLIMIT_MSGQUEUE, "RLIMIT_MSGQUEUE"),
        RlimitNice => (libc::RLIMIT_NICE, "RLIMIT_NICE"),
        RlimitRtprio => (libc::RLIMIT_RTPRIO, "RLIMIT_RTPRIO"),
        RlimitRttime => (libc::RLIMIT_RTTIME, "RLIMIT_RTTIME"),
    }
}

/// The OCI name (`RLIMIT_NOFILE`) of an rlimit type.
pub fn name(typ: PosixRlimitType) -> &'static str {
    resource(typ).1
}

fn current(res: libc::__rlimit_resource_t) -> Option<libc::rlimit> {
    let mut cur = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the valid rlimit struct we pass.
    let rc = unsafe { libc::getrlimit(res, &mut cur) };
    (rc == 0).then_some(cur)
}

fn has_sys_resource() -> bool {
    caps::has_cap(
        None,
        caps::CapSet::Effective,
        caps::Capability::CAP_SYS_RESOURCE,
    )
    .unwrap_or(false)
}

/// Checks that `rl` can be set by this process: soft within hard, and no
/// raise above the current hard limit without CAP_SYS_RESOURCE.
pub fn check(rl: &PosixRlimit) -> Result<(), String> {
    let (res, name) = resource(rl.typ());
    if rl.soft() > rl.hard() {
        return Err(format!(
            "{name} soft {} above hard {}",
            rl.soft(),
            rl.hard()
        ));
    }
    if let Some(cur) = current(res) {
        if rl.hard() > cur.rlim_max && !has_sys_resource() {
            return Err(format!(
                "{name} hard {} above the current hard limit {} (needs CAP_SYS_RESOURCE)",
                rl.hard(),
                cur.rlim_max
            ));
        }
    }
    Ok(())
}

/// Sets every rlimit on the calling process.
pub fn apply(rlimits: &[PosixRlimit]) -> Result<(), String> {
    for rl in rlimits {
        let (res, name) = resource(rl.typ());
        let lim = libc::rlimit {
            rlim_cur: rl.soft(),
            rlim_max: rl.hard(),
        };
        // SAFETY: setrlimit reads the valid rlimit struct we pass.
        if unsafe { libc::setrlimit(res, &lim) } != 0 {
            let err = std::io::Error::last_os_error();
            return Err(format!(
                "setrlimit {name} soft {} hard {}: {err}",
                rl.soft(),
                rl.hard()
            ));
        }
    }
    Ok(())
}
