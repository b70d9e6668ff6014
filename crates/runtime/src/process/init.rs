//! The container's init: either the forked copy of the runtime
//! ([`forked`], see [`super::fork_safety`]) or `berth-runtime init`
//! re-executed from the sealed view of the binary ([`main`]), in its new
//! namespaces. It sets up the container, reports `Ready`, waits on
//! exec.fifo for `start`, and execve's the user's process (through the dmz
//! when forked).

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;

use berth_rootfs::RootfsOptions;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::channel::{Channel, ChildMsg, ParentMsg};
use super::dmz::Dmz;
use super::security::{self, StepResult};
use super::InitConfig;
use crate::hooks::{self, HookKind};

/// Entry point of `berth-runtime init` (both for a container's init and for
/// an exec'd process). Never returns.
pub fn main() -> ! {
    // Nobody in the container may ptrace or read /proc/<pid>/ of the
    // runtime while it holds host resources; execve restores dumpable.
    security::set_dumpable(false);
    let Some(mut ch) = Channel::from_env() else {
        eprintln!("berth-runtime: init: must be started by berth-runtime");
        std::process::exit(1);
    };
    let (msg, fds) = match ch.recv::<ParentMsg>() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("berth-runtime: init: {}", crate::error::one_line(&e));
            std::process::exit(1);
        }
    };
    let err = match msg {
        ParentMsg::Init(cfg) => {
            let mut fds = fds.into_iter();
            match fds.next() {
                Some(fifo) => {
                    let console = cfg
                        .spec
                        .process()
                        .as_ref()
                        .is_some_and(|p| p.terminal().unwrap_or(false))
                        .then(|| fds.next())
                        .flatten();
                    run_init(&mut ch, &cfg, &cfg.hook_state, fifo, console, None)
                }
                None => "exec.fifo fd missing".into(),
            }
        }
        ParentMsg::Exec(cfg) => super::exec::run_exec(&mut ch, &cfg, fds, None),
        other => format!("unexpected first message {other:?}"),
    };
    report(&mut ch, &err);
    std::process::exit(1)
}

/// Before Ready the parent reports the error; after it, we are the only
/// one who can. A parent that went away during setup (a failed hook, a
/// kill) has reported its own reason: a second line would only confuse the
/// one-line error contract.
pub(super) fn report(ch: &mut Channel, err: &str) {
    if ch.send(&ChildMsg::Error(err.to_string()), &[]).is_err() && !ch.peer_gone() {
        eprintln!("berth-runtime: {err}");
    }
}

/// The forked container init (`/proc/self/exe` is the host's runtime
/// binary, so it stays non-dumpable until the dmz replaces it), run in the
/// clone child by [`super::parent::create`]: the configuration, the console
/// socket fd and the compiled seccomp program are the parent's, already in
/// this copy of its memory. Unshares the namespaces in `unshare_flags`
/// (those the clone left to it), waits for [`ParentMsg::Begin`] (the init
/// is in its cgroup; it brings the exec.fifo), then sets the container up.
/// Returns the exit code when it could not execve.
pub fn forked(
    ch: &mut Channel,
    cfg: &InitConfig,
    unshare_flags: libc::c_int,
    console: Option<BorrowedFd<'_>>,
    seccomp: Option<&berth_seccomp::SeccompProgram>,
    dmz: &Dmz,
) -> i32 {
    // First: until the dmz runs, /proc/<pid>/exe of this process is the
    // host's binary (see fork_safety).
    security::set_dumpable(false);
    let unshared = nix::sched::unshare(nix::sched::CloneFlags::from_bits_retain(unshare_flags))
        .map_err(|e| format!("unshare namespaces ({unshare_flags:#x}): {e}"));
    let err = match ch.recv::<ParentMsg>() {
        Ok((ParentMsg::Begin { hook_state }, fds)) => {
            // Own copy of the console socket: the parent's OwnedFd is never
            // dropped here.
            let console = console.map(|c| c.try_clone_to_owned()).transpose();
            match (unshared, fds.into_iter().next(), console) {
                (Err(e), _, _) => e,
                (Ok(()), None, _) => "exec.fifo fd missing".into(),
                (Ok(()), Some(_), Err(e)) => format!("duplicate the console socket: {e}"),
                (Ok(()), Some(fifo), Ok(console)) => {
                    let compiled = Compiled(seccomp);
                    run_init(ch, cfg, &hook_state, fifo, console, Some((dmz, compiled)))
                }
            }
        }
        Ok((other, _)) => format!("expected Begin, got {other:?}"),
        // The parent failed before it could start us and reports why.
        Err(_) => return 1,
    };
    report(ch, &err);
    1
}

/// A seccomp program the parent compiled already (forked init).
#[derive(Clone, Copy)]
struct Compiled<'a>(Option<&'a berth_seccomp::SeccompProgram>);

fn step(r: Result<(), impl std::fmt::Display>, what: &str) -> StepResult {
    r.map_err(|e| format!("{what}: {e}"))
}

fn setup_user_namespace(cfg: &InitConfig) {
    if cfg.new_user_ns {
        // Become root of the new user namespace when root is mapped; the
        // process's own user is set later.
        let root = nix::unistd::Uid::from_raw(0);
        let rootg = nix::unistd::Gid::from_raw(0);
        let _ = nix::unistd::setresgid(rootg, rootg, rootg);
        let _ = nix::unistd::setresuid(root, root, root);
    }
}

/// Once in its cgroup (at once, or when the parent says so: see
/// [`InitConfig::placed_later`]): the cgroup namespace, whose root is the
/// cgroup its creator is in.
fn enter_cgroup(ch: &mut Channel, cfg: &InitConfig) -> StepResult {
    if cfg.placed_later {
        match ch.recv::<ParentMsg>() {
            Ok((ParentMsg::Placed, _)) => {}
            Ok((other, _)) => return Err(format!("expected Placed, got {other:?}")),
            Err(e) => return Err(format!("waiting to be moved into the cgroup: {e}")),
        }
    }
    if cfg.new_cgroup_ns {
        step(
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP),
            "unshare cgroup namespace",
        )?;
    }
    Ok(())
}

/// Brings `lo` up in a new network namespace, as runc does.
fn loopback_up() -> StepResult {
    // SAFETY: socket with constant arguments returns a new fd or -1.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(format!(
            "loopback: socket: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: the fd was just created and is owned here.
    let sock = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the valid ifreq.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr) < 0 {
            return Err(format!(
                "loopback: get flags: {}",
                std::io::Error::last_os_error()
            ));
        }
        ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &ifr) < 0 {
            return Err(format!(
                "loopback: set up: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

fn set_names(spec: &Spec) -> StepResult {
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        step(
            nix::unistd::sethostname(h),
            &format!("hostname {h:?}: sethostname"),
        )?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        // SAFETY: setdomainname reads len bytes from the valid pointer.
        if unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) } != 0 {
            return Err(format!(
                "domainname {d:?}: setdomainname: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

fn join_session_keyring(id: &str) -> StepResult {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_int = 1;
    let name = std::ffi::CString::new(format!("_ses.{id}")).map_err(|e| e.to_string())?;
    // SAFETY: keyctl with a valid NUL-terminated name.
    let rc = unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    if rc < 0 {
        let e = std::io::Error::last_os_error();
        // Kernels without keyrings, or keyrings off in user namespaces.
        if !matches!(
            e.raw_os_error(),
            Some(libc::ENOSYS | libc::EPERM | libc::EACCES)
        ) {
            return Err(format!("join session keyring: {e}"));
        }
    }
    Ok(())
}

fn personality(spec: &Spec) -> StepResult {
    let Some(p) = spec.linux().as_ref().and_then(|l| l.personality().as_ref()) else {
        return Ok(());
    };
    let persona = match p.domain() {
        oci_spec::runtime::LinuxPersonalityDomain::PerLinux => 0x0000,
        oci_spec::runtime::LinuxPersonalityDomain::PerLinux32 => 0x0008,
    };
    // SAFETY: personality with an integer argument.
    if unsafe { libc::personality(persona) } < 0 {
        return Err(format!(
            "linux.personality: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Compiles the container's seccomp profile; the parent compiled it into
/// the same cache moments ago, so this is a cache read.
fn compile_seccomp(
    spec: &Spec,
    cache: &Path,
) -> Result<Option<berth_seccomp::SeccompProgram>, String> {
    let Some(seccomp) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) else {
        return Ok(None);
    };
    berth_seccomp::compile_cached(seccomp, cache)
        .map(Some)
        .map_err(|e| format!("linux.seccomp: {}", crate::error::one_line(&e)))
}

fn load_seccomp(ch: &mut Channel, program: Option<&berth_seccomp::SeccompProgram>) -> StepResult {
    let Some(program) = program else {
        return Ok(());
    };
    let fd = program.load().map_err(|e| crate::error::one_line(&e))?;
    if let Some(fd) = fd {
        ch.send(&ChildMsg::SeccompNotify, &[fd.as_raw_fd()])
            .map_err(|e| format!("send seccomp notify fd: {}", crate::error::one_line(&e)))?;
    }
    Ok(())
}

fn run_init(
    ch: &mut Channel,
    cfg: &InitConfig,
    hook_state: &str,
    fifo: OwnedFd,
    console_sock: Option<OwnedFd>,
    forked: Option<(&Dmz, Compiled<'_>)>,
) -> String {
    match init_steps(ch, cfg, hook_state, fifo, console_sock, forked) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

fn init_steps(
    ch: &mut Channel,
    cfg: &InitConfig,
    hook_state: &str,
    fifo: OwnedFd,
    console_sock: Option<OwnedFd>,
    forked: Option<(&Dmz, Compiled<'_>)>,
) -> Result<std::convert::Infallible, String> {
    let spec = &cfg.spec;
    let process = spec.process().as_ref().ok_or("process: missing")?;
    let dmz = forked.map(|(dmz, _)| dmz);
    let owned_seccomp;
    let seccomp = match forked {
        Some((_, Compiled(program))) => program,
        None => {
            owned_seccomp = compile_seccomp(spec, &cfg.seccomp_cache)?;
            owned_seccomp.as_ref()
        }
    };
    setup_user_namespace(cfg);
    let namespaces = crate::config::namespace_set(spec);
    if crate::config::creates_namespace(spec, LinuxNamespaceType::Network) {
        loopback_up()?;
    }
    if namespaces.contains(&LinuxNamespaceType::Uts) {
        set_names(spec)?;
    }
    if !cfg.no_new_keyring {
        join_session_keyring(&cfg.id)?;
    }

    let readonly = spec
        .root()
        .as_ref()
        .is_some_and(|r| r.readonly().unwrap_or(false));
    let mount_label = spec
        .linux()
        .as_ref()
        .and_then(|l| l.mount_label().as_deref());
    let opts = RootfsOptions {
        rootfs: &cfg.rootfs,
        readonly,
        no_pivot: cfg.no_pivot,
        console: None,
        user_ns: namespaces.contains(&LinuxNamespaceType::User),
        cgroup_ns: namespaces.contains(&LinuxNamespaceType::Cgroup),
        mount_label,
    };
    let mut placed = || enter_cgroup(ch, cfg);
    berth_rootfs::prepare(spec, &opts, &mut berth_rootfs::Placement::new(&mut placed))
        .map_err(|e| crate::error::one_line(&e))?;

    // The pty comes from the container's own devpts, mounted by prepare, so
    // the process sees itself on /dev/pts/N as with runc (podman -t).
    let pty = match &console_sock {
        Some(_) => {
            let size = process
                .console_size()
                .as_ref()
                .map(|b| (b.height() as u32, b.width() as u32));
            let pty = crate::console::open_container_pty(&cfg.rootfs, size)?;
            crate::console::mount_console(&cfg.rootfs, &pty.slave)?;
            Some(pty)
        }
        None => None,
    };

    if cfg.runtime_hooks {
        ch.send(&ChildMsg::RunHooks, &[])
            .map_err(|e| crate::error::one_line(&e))?;
        match ch
            .recv::<ParentMsg>()
            .map_err(|e| crate::error::one_line(&e))?
        {
            (ParentMsg::HooksDone, _) => {}
            (other, _) => return Err(format!("expected HooksDone, got {other:?}")),
        }
    }
    hooks::run(spec, HookKind::CreateContainer, hook_state.as_bytes())
        .map_err(|e| crate::error::one_line(&e))?;

    berth_rootfs::pivot(&opts).map_err(|e| crate::error::one_line(&e))?;
    if let Some(sysctl) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) {
        crate::sysctl::apply(sysctl)?;
    }
    berth_rootfs::finalize(spec, &opts).map_err(|e| crate::error::one_line(&e))?;

    // No host fd may stay open in the container: everything above the
    // preserved fds goes, except what we still need ourselves.
    let first_closed: RawFd = 3 + cfg.preserve_fds;
    let mut keep = vec![ch.raw_fd(), fifo.as_raw_fd()];
    if let Some(s) = &console_sock {
        keep.push(s.as_raw_fd());
    }
    if let Some(p) = &pty {
        keep.push(p.master.as_raw_fd());
        keep.push(p.slave.as_raw_fd());
    }
    if let Some(d) = dmz {
        keep.push(d.raw_fd());
    }
    security::close_fds_from(first_closed, &keep);

    match (&console_sock, &pty) {
        (Some(sock), Some(pty)) => {
            crate::console::send_master(
                sock.as_raw_fd(),
                pty.master.as_raw_fd(),
                &pty.slave_path.to_string_lossy(),
            )?;
            crate::console::become_terminal(&pty.slave)?;
        }
        _ => {
            step(nix::unistd::setsid().map(drop), "setsid")?;
        }
    }
    drop(pty);
    drop(console_sock);

    personality(spec)?;
    security::warn_lsm(process);
    security::set_oom_score_adj(process)?;
    if let Some(rl) = process.rlimits() {
        crate::rlimits::apply(rl)?;
    }

    let nnp = process.no_new_privileges().unwrap_or(false);
    let seccomp_notify = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .is_some_and(|s| s.listener_path().is_some());
    // Without no_new_privs loading seccomp needs CAP_SYS_ADMIN, so it goes
    // before the capabilities are dropped; a notify filter must go before
    // Ready so its fd can still reach the parent.
    if !nnp || seccomp_notify {
        if nnp {
            security::set_no_new_privs()?;
        }
        load_seccomp(ch, seccomp)?;
    }

    let exe = security::become_process(process, nnp)?;

    ch.send(&ChildMsg::Ready, &[])
        .map_err(|e| crate::error::one_line(&e))?;

    // Re-executed, the process may be dumpable again: every host fd is
    // closed by now and /proc/self/exe is the sealed copy, so nothing is
    // left to reach. Forked, /proc/self/exe is the host's binary: it stays
    // non-dumpable (its own /proc/self/fd stays open to it regardless).
    if forked.is_none() {
        security::set_dumpable(true);
    }
    // Block until `start` opens the other end.
    let fifo_path = format!("/proc/self/fd/{}", fifo.as_raw_fd());
    let wfd = nix::fcntl::open(
        fifo_path.as_str(),
        nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| format!("open exec.fifo: {e}"))?;
    step(nix::unistd::write(&wfd, b"0").map(drop), "write exec.fifo")?;
    drop(wfd);
    drop(fifo);

    hooks::run(spec, HookKind::StartContainer, hook_state.as_bytes())
        .map_err(|e| crate::error::one_line(&e))?;

    if nnp && !seccomp_notify {
        // As close to execve as possible, so the profile need not allow
        // the runtime's own syscalls.
        load_seccomp(ch, seccomp)?;
    }
    security::cloexec_from(first_closed);
    security::reset_signals();
    Err(security::exec(&exe, process, dmz))
}
