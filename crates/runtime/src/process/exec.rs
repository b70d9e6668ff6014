//! A process entering a running container (`berth-runtime exec`), on the
//! child's side (a fork of the runtime, or the runtime re-executed: see
//! [`super::fork_safety`]): join the container's namespaces (user first,
//! mount last), fork so the pid namespace applies, then the same final
//! steps as the init, and execve (through the dmz when forked).

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;

use oci_spec::runtime::LinuxNamespaceType;

use super::channel::{Channel, ChildMsg, ParentMsg};
use super::dmz::Dmz;
use super::security;
use super::ExecConfig;

/// The exec'd process as a fork of the runtime, run in the child by
/// `commands::exec` with the configuration and console socket already in
/// this copy of its memory. Waits for [`ParentMsg::Begin`] (it is in the
/// container's cgroup). Returns the exit code when it could not execve.
pub fn forked(
    ch: &mut Channel,
    cfg: &ExecConfig,
    console: Option<BorrowedFd<'_>>,
    dmz: &Dmz,
) -> i32 {
    // First: until the dmz runs, /proc/<pid>/exe of this process and of its
    // child in the container is the host's binary (see fork_safety).
    security::set_dumpable(false);
    let err = match ch.recv::<ParentMsg>() {
        Ok((ParentMsg::Begin { .. }, _)) => {
            match console.map(|c| c.try_clone_to_owned()).transpose() {
                Ok(console) => run_exec(ch, cfg, console.into_iter().collect(), Some(dmz)),
                Err(e) => format!("duplicate the console socket: {e}"),
            }
        }
        Ok((other, _)) => format!("expected Begin, got {other:?}"),
        // The parent failed before it could start us and reports why.
        Err(_) => return 1,
    };
    super::init::report(ch, &err);
    1
}

fn join_order(t: LinuxNamespaceType) -> u8 {
    match t {
        LinuxNamespaceType::User => 0,
        LinuxNamespaceType::Mount => 9,
        _ => 5,
    }
}

pub(super) fn run_exec(
    ch: &mut Channel,
    cfg: &ExecConfig,
    fds: Vec<OwnedFd>,
    dmz: Option<&Dmz>,
) -> String {
    match exec_steps(ch, cfg, fds, dmz) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

fn exec_steps(
    ch: &mut Channel,
    cfg: &ExecConfig,
    fds: Vec<OwnedFd>,
    dmz: Option<&Dmz>,
) -> Result<std::convert::Infallible, String> {
    let process = &cfg.process;
    let console_sock = fds.into_iter().next();
    // Compiled (from the cache) while the host filesystem is still ours.
    let program = match &cfg.seccomp {
        Some(s) => Some(
            berth_seccomp::compile_cached(s, &cfg.seccomp_cache)
                .map_err(|e| format!("linux.seccomp: {}", crate::error::one_line(&e)))?,
        ),
        None => None,
    };

    // Open every namespace first: after joining the mount namespace the
    // host's /proc paths are gone.
    let mut ns: Vec<(LinuxNamespaceType, std::fs::File)> = Vec::new();
    for (typ, path) in &cfg.namespaces {
        let f = std::fs::File::open(path).map_err(|e| format!("open {}: {e}", path.display()))?;
        ns.push((*typ, f));
    }
    ns.sort_by_key(|(t, _)| join_order(*t));
    let joined_user = ns.iter().any(|(t, _)| *t == LinuxNamespaceType::User);
    for (typ, f) in &ns {
        nix::sched::setns(f, nix::sched::CloneFlags::empty())
            .map_err(|e| format!("join the container's {typ} namespace: {e}"))?;
    }
    drop(ns);
    if joined_user {
        let z = nix::unistd::Uid::from_raw(0);
        let zg = nix::unistd::Gid::from_raw(0);
        let _ = nix::unistd::setresgid(zg, zg, zg);
        let _ = nix::unistd::setresuid(z, z, z);
    }

    // The pid (and time) namespace applies to children only; CLONE_PARENT
    // makes the child the runtime's, so it can wait for it.
    if let Some(child) =
        super::spawn::clone_raw(libc::CLONE_PARENT).map_err(|e| format!("fork: {e}"))?
    {
        let _ = ch.send(&ChildMsg::ExecPid(child.as_raw()), &[]);
        // SAFETY: _exit skips destructors and atexit handlers, which a
        // forked copy of the runtime must not run.
        unsafe { libc::_exit(0) }
    }
    match ch
        .recv::<ParentMsg>()
        .map_err(|e| crate::error::one_line(&e))?
    {
        (ParentMsg::Go, _) => {}
        (other, _) => return Err(format!("expected Go, got {other:?}")),
    }

    let first_closed: RawFd = 3 + cfg.preserve_fds;
    let pty = match &console_sock {
        Some(_) => {
            let size = process
                .console_size()
                .as_ref()
                .map(|b| (b.height() as u32, b.width() as u32));
            Some(crate::console::open_pty(Path::new("/dev/ptmx"), size)?)
        }
        None => None,
    };
    let mut keep = vec![ch.raw_fd()];
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
    if let (Some(sock), Some(pty)) = (&console_sock, &pty) {
        crate::console::send_master(
            sock.as_raw_fd(),
            pty.master.as_raw_fd(),
            &pty.slave_path.to_string_lossy(),
        )?;
        crate::console::become_terminal(&pty.slave)?;
    }
    drop(pty);
    drop(console_sock);

    security::warn_lsm(process);
    security::set_oom_score_adj(process)?;
    if let Some(rl) = process.rlimits() {
        crate::rlimits::apply(rl)?;
    }
    let nnp = process.no_new_privileges().unwrap_or(false);
    let load = |program: &berth_seccomp::SeccompProgram| -> Result<(), String> {
        // A notify fd for an exec'd process has no agent to go to in
        // runc either: it is closed, and the agent sees the init's.
        program
            .load()
            .map(drop)
            .map_err(|e| crate::error::one_line(&e))
    };
    if !nnp {
        if let Some(p) = &program {
            load(p)?;
        }
    }
    let exe = security::become_process(process, nnp)?;
    ch.send(&ChildMsg::Ready, &[])
        .map_err(|e| crate::error::one_line(&e))?;
    if nnp {
        if let Some(p) = &program {
            load(p)?;
        }
    }
    security::cloexec_from(first_closed);
    security::reset_signals();
    Err(security::exec(&exe, process, dmz))
}
