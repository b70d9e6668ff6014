//! The last steps before execve shared by the container's init and exec'd
//! processes: user and groups, capabilities, no_new_privs, seccomp, fd
//! hygiene, working directory, and finding the executable.
//!
//! Errors are plain strings naming the step: they travel to the parent over
//! the sync channel and end up in its one-line error.

use std::collections::HashSet;
use std::ffi::CString;
use std::os::fd::RawFd;
use std::path::Path;
use std::str::FromStr;

use caps::{Capability, CapsHashSet};
use oci_spec::runtime::{LinuxCapabilities, Process};

pub type StepResult = Result<(), String>;

fn to_caps(
    list: &Option<oci_spec::runtime::Capabilities>,
    set: &str,
) -> Result<CapsHashSet, String> {
    let mut out = CapsHashSet::new();
    for c in list.iter().flatten() {
        let name = serde_json::to_value(c)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        match Capability::from_str(&name) {
            Ok(cap) => {
                out.insert(cap);
            }
            // A capability the caps crate (and so probably this kernel) does
            // not know cannot be granted; runc warns and skips it too.
            Err(_) => eprintln!(
                "berth-runtime: warning: process.capabilities.{set}: unknown {name}, skipped"
            ),
        }
    }
    Ok(out)
}

/// Drops every capability not in the bounding set (needs CAP_SETPCAP, so
/// before switching user).
pub fn drop_bounding(caps: Option<&LinuxCapabilities>) -> StepResult {
    let Some(caps) = caps else { return Ok(()) };
    let keep: u64 = to_caps(caps.bounding(), "bounding")?
        .iter()
        .fold(0, |m, c| m | c.bitmask());
    // One prctl per capability, up to the first index this kernel does
    // not know (EINVAL).
    for index in 0u8..64 {
        if keep & (1u64 << index) != 0 {
            continue;
        }
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(index), 0, 0, 0) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINVAL) {
                break;
            }
            return Err(format!(
                "drop capability {index} from the bounding set: {e}"
            ));
        }
    }
    Ok(())
}

/// Sets effective, permitted, inheritable and ambient capabilities (after
/// the user switch, which kept the permitted set via PR_SET_KEEPCAPS).
pub fn apply_caps(caps: Option<&LinuxCapabilities>) -> StepResult {
    let Some(caps) = caps else { return Ok(()) };
    let effective = to_caps(caps.effective(), "effective")?;
    let permitted = to_caps(caps.permitted(), "permitted")?;
    let inheritable = to_caps(caps.inheritable(), "inheritable")?;
    let ambient = to_caps(caps.ambient(), "ambient")?;
    capset(&effective, &permitted, &inheritable)?;
    // Ambient capabilities must be both permitted and inheritable; runc
    // ignores the rest silently, and so do we.
    let ambient: CapsHashSet = ambient
        .intersection(&permitted)
        .filter(|c| inheritable.contains(c))
        .copied()
        .collect();
    // SAFETY: prctl with integer arguments.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        );
    }
    for cap in ambient {
        // SAFETY: prctl with integer arguments.
        let rc = unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE,
                libc::c_ulong::from(cap.index()),
                0,
                0,
            )
        };
        if rc != 0 {
            return Err(format!(
                "raise ambient {cap}: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

/// Sets the three sets in one capset(2): set one by one, an intermediate
/// state (effective beyond the new permitted) would be refused.
fn capset(
    effective: &CapsHashSet,
    permitted: &CapsHashSet,
    inheritable: &CapsHashSet,
) -> StepResult {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    let mask = |set: &CapsHashSet| -> u64 { set.iter().fold(0u64, |m, c| m | c.bitmask()) };
    let (e, p, i) = (mask(effective), mask(permitted), mask(inheritable));
    let mut data = [Data::default(); 2];
    for (word, d) in data.iter_mut().enumerate() {
        let shift = 32 * word;
        d.effective = (e >> shift) as u32;
        d.permitted = (p >> shift) as u32;
        d.inheritable = (i >> shift) as u32;
    }
    let mut header = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    // SAFETY: capset reads a valid v3 header and two data structs.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut Header, data.as_ptr()) };
    if rc != 0 {
        return Err(format!(
            "capset (process.capabilities effective/permitted/inheritable): {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

fn setgroups_allowed() -> bool {
    std::fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() != "deny")
        .unwrap_or(true)
}

/// Switches to the process's uid/gid/additional gids, keeping the permitted
/// capabilities for [`apply_caps`].
pub fn switch_user(process: &Process) -> StepResult {
    let user = process.user();
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) } != 0 {
        return Err(format!(
            "prctl PR_SET_KEEPCAPS: {}",
            std::io::Error::last_os_error()
        ));
    }
    let gids: Vec<nix::unistd::Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| nix::unistd::Gid::from_raw(*g))
        .collect();
    if setgroups_allowed() {
        nix::unistd::setgroups(&gids).map_err(|e| {
            format!(
                "setgroups {:?} (process.user.additionalGids): {e}",
                user.additional_gids()
            )
        })?;
    } else if !gids.is_empty() {
        return Err(
            "process.user.additionalGids: setgroups is denied in this user namespace".into(),
        );
    }
    let gid = nix::unistd::Gid::from_raw(user.gid());
    nix::unistd::setresgid(gid, gid, gid)
        .map_err(|e| format!("setresgid {} (process.user.gid): {e}", user.gid()))?;
    let uid = nix::unistd::Uid::from_raw(user.uid());
    nix::unistd::setresuid(uid, uid, uid)
        .map_err(|e| format!("setresuid {} (process.user.uid): {e}", user.uid()))?;
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
    let mask = user.umask().unwrap_or(0o022);
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(mask));
    Ok(())
}

pub fn set_no_new_privs() -> StepResult {
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(format!(
            "prctl PR_SET_NO_NEW_PRIVS: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

pub fn set_dumpable(on: bool) {
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, libc::c_ulong::from(on), 0, 0, 0) };
}

/// Closes every fd from `first` up except those in `keep` (CVE-2024-21626:
/// no host fd may survive into the container, not even until execve).
pub fn close_fds_from(first: RawFd, keep: &[RawFd]) {
    let mut keep: Vec<RawFd> = keep.iter().copied().filter(|&fd| fd >= first).collect();
    keep.sort_unstable();
    keep.dedup();
    let mut start = first;
    for k in keep {
        if k > start {
            close_range(start, k - 1, 0);
        }
        start = k + 1;
    }
    close_range(start, RawFd::MAX, 0);
}

/// Marks every fd from `first` up close-on-exec.
pub fn cloexec_from(first: RawFd) {
    close_range(first, RawFd::MAX, libc::CLOSE_RANGE_CLOEXEC);
}

fn close_range(first: RawFd, last: RawFd, flags: libc::c_uint) {
    // SAFETY: close_range only affects this process's fd table.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            last as libc::c_uint,
            flags,
        )
    };
    if rc != 0 {
        // Pre-5.9 kernels: walk /proc/self/fd instead.
        let fds: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
            .map(|d| {
                d.flatten()
                    .filter_map(|e| e.file_name().to_str()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        for fd in fds.into_iter().filter(|&fd| fd >= first && fd <= last) {
            // SAFETY: fcntl/close on fds of our own table.
            unsafe {
                if flags & libc::CLOSE_RANGE_CLOEXEC != 0 {
                    libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                } else {
                    libc::close(fd);
                }
            }
        }
    }
}

/// Changes to `cwd` and checks the result is inside the (already switched)
/// root: a cwd reached through a leaked fd (`/proc/self/fd/N`) would be
/// outside, which the kernel reports as an unreachable path.
pub fn chdir_checked(cwd: &Path) -> Result<(), nix::Error> {
    nix::unistd::chdir(cwd)?;
    let mut buf = [0u8; 4096];
    // SAFETY: getcwd writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) };
    if rc <= 0 || buf[0] != b'/' {
        // The raw syscall returns "(unreachable)/..." for a directory
        // outside our root.
        return Err(nix::Error::EPERM);
    }
    Ok(())
}

/// Enters `process.cwd`: first as root (it may be unreadable for the
/// user), or after the user switch when root was refused.
pub fn enter_cwd(cwd: &Path) -> StepResult {
    chdir_checked(cwd).map_err(|e| {
        if e == nix::Error::EPERM {
            format!(
                "process.cwd {}: resolves outside the container root",
                cwd.display()
            )
        } else {
            format!("process.cwd {}: chdir: {e}", cwd.display())
        }
    })
}

/// The last steps that turn the runtime's process into the user's, shared
/// by a container's init and an exec'd process: drop the bounding set,
/// enter the cwd (before switching user when root may read it, again after
/// when only the user may), switch user, set the capability sets, then
/// no_new_privs, and find the program to execute while still able to report.
pub fn become_process(process: &Process, nnp: bool) -> Result<CString, String> {
    drop_bounding(process.capabilities().as_ref())?;
    let cwd_early = enter_cwd(process.cwd());
    switch_user(process)?;
    if cwd_early.is_err() {
        enter_cwd(process.cwd())?;
    }
    apply_caps(process.capabilities().as_ref())?;
    if nnp {
        set_no_new_privs()?;
    }
    find_executable(process)
}

/// Resolves `args[0]` like execvp with the container's own PATH.
pub fn find_executable(process: &Process) -> Result<CString, String> {
    let args = process.args().as_deref().unwrap_or_default();
    let name = args.first().ok_or("process.args: empty")?;
    if name.contains('/') {
        check_executable(Path::new(name)).map_err(|e| format!("exec: {name:?}: {e}"))?;
        return CString::new(name.as_str())
            .map_err(|_| format!("process.args[0] {name:?}: NUL byte"));
    }
    let path_var = process
        .env()
        .iter()
        .flatten()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path_var.split(':').filter(|d| !d.is_empty()) {
        let cand = Path::new(dir).join(name);
        if let Ok(m) = std::fs::metadata(&cand) {
            if m.is_file() && nix::unistd::access(&cand, nix::unistd::AccessFlags::X_OK).is_ok() {
                return CString::new(cand.into_os_string().into_encoded_bytes())
                    .map_err(|_| format!("{name:?}: NUL byte"));
            }
        }
    }
    Err(format!(
        "exec: {name:?}: executable file not found in $PATH"
    ))
}

/// Checks a path-named program before Ready, as runc's LookPath does, so a
/// missing or non-executable program fails `create` with runc's wording:
/// podman maps "no such file or directory" to exit 127 and "permission
/// denied" to 126, which it cannot do for an execve failing after `start`.
fn check_executable(path: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| {
        let text = e.raw_os_error().map_or_else(
            || e.to_string(),
            |n| nix::errno::Errno::from_raw(n).desc().to_lowercase(),
        );
        format!("stat {}: {text}", path.display())
    })?;
    if meta.is_dir() || nix::unistd::access(path, nix::unistd::AccessFlags::X_OK).is_err() {
        return Err("permission denied".into());
    }
    Ok(())
}

/// execve's the process, through the dmz when given (a forked process
/// must: see [`super::dmz`]); returns only on failure.
pub fn exec(path: &CString, process: &Process, dmz: Option<&super::dmz::Dmz>) -> String {
    let args: Vec<CString> = process
        .args()
        .iter()
        .flatten()
        .filter_map(|a| CString::new(a.as_str()).ok())
        .collect();
    let env: Vec<CString> = process
        .env()
        .iter()
        .flatten()
        .filter_map(|e| CString::new(e.as_str()).ok())
        .collect();
    if let Some(dmz) = dmz {
        let e = dmz.exec(path, &args, &env);
        return format!("exec {} through the dmz: {e}", path.to_string_lossy());
    }
    match nix::unistd::execve(path, &args, &env) {
        Err(e) => format!("exec {}: {e}", path.to_string_lossy()),
        Ok(never) => match never {},
    }
}

/// Unblocks every signal and restores default dispositions, so the user's
/// process does not inherit the runtime's masks. execve resets handled
/// signals by itself but keeps ignored ones, and Rust's runtime ignores
/// SIGPIPE at startup: left so, `yes | head` in the container would see
/// EPIPE instead of dying as it does under runc.
pub fn reset_signals() {
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    );
    // SAFETY: SIG_DFL installs no handler, so no async-signal-safety
    // question arises; nothing else in this process relies on SIGPIPE
    // being ignored from here to execve.
    let _ = unsafe {
        nix::sys::signal::signal(
            nix::sys::signal::Signal::SIGPIPE,
            nix::sys::signal::SigHandler::SigDfl,
        )
    };
}

/// Warns that AppArmor/SELinux settings are not applied when the host has
/// neither (and does not pretend otherwise when it has).
pub fn warn_lsm(process: &Process) {
    if let Some(profile) = process.apparmor_profile() {
        if !Path::new("/sys/kernel/security/apparmor").exists() {
            eprintln!("berth-runtime: warning: process.apparmorProfile {profile:?} ignored: AppArmor is not enabled on this host");
        } else {
            eprintln!("berth-runtime: warning: process.apparmorProfile {profile:?} not applied: AppArmor support is not implemented");
        }
    }
    if let Some(label) = process.selinux_label() {
        if !Path::new("/sys/fs/selinux/enforce").exists() {
            eprintln!("berth-runtime: warning: process.selinuxLabel {label:?} ignored: SELinux is not enabled on this host");
        } else {
            eprintln!("berth-runtime: warning: process.selinuxLabel {label:?} not applied: SELinux support is not implemented");
        }
    }
}

pub fn set_oom_score_adj(process: &Process) -> StepResult {
    if let Some(adj) = process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string()).map_err(|e| {
            format!("process.oomScoreAdj {adj}: write /proc/self/oom_score_adj: {e}")
        })?;
    }
    Ok(())
}

/// The capabilities a CLI `--cap` list adds, validated.
pub fn parse_cap_names(names: &[String]) -> Result<HashSet<String>, String> {
    let mut out = HashSet::new();
    for n in names {
        let up = n.to_ascii_uppercase();
        let full = if up.starts_with("CAP_") {
            up
        } else {
            format!("CAP_{up}")
        };
        Capability::from_str(&full).map_err(|_| format!("--cap: unknown capability {n:?}"))?;
        out.insert(full);
    }
    Ok(out)
}
