//! Cloning a process into its namespaces, where it either goes on in the
//! forked copy of the runtime ([`ChildMain::Continue`]) or re-executes the
//! runtime as `berth-runtime init` from its sealed view
//! ([`ChildMain::Reexec`]); [`super::fork_safety`] decides which.
//!
//! The runtime is single-threaded whenever it clones, so the child's copy
//! of the address space is consistent: no lock (malloc's, stdio's) can be
//! held by a thread that does not exist in the child. The forked child may
//! therefore allocate and use std like any process; it must only never
//! return into the parent's code (whose destructors would roll back the
//! container): [`ChildMain::run_in_child`] ends it with `_exit`, also when
//! it panics. The re-executing child only clears one fd flag and calls
//! execveat, with argument vectors built before the clone.

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::PathBuf;

use nix::unistd::Pid;
use oci_spec::runtime::LinuxNamespaceType;

use super::channel::{Channel, ChildMsg, SYNC_FD_ENV};
use super::sealed_exe::sealed_self;
use crate::error::RuntimeError;

/// The sealed runtime copy and the prepared argv/envp for re-executing it.
pub struct Reexec {
    exe: OwnedFd,
    // Owned strings the pointer arrays below point into.
    _argv: Vec<CString>,
    _envp: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    envp_ptrs: Vec<*const libc::c_char>,
    sync_fd: RawFd,
    /// The child is in a new user namespace: before exec it waits for the
    /// parent to write its id maps and becomes root there, so that exec
    /// grants it the namespace's full capabilities.
    pub wait_for_id_maps: bool,
}

impl Reexec {
    /// Copies the runtime binary and prepares `berth-runtime init` with the
    /// child's channel end `sync_fd` named in its environment.
    pub fn new(sync_fd: RawFd) -> Result<Self, RuntimeError> {
        let exe = sealed_self()?;
        let argv = vec![c"berth-runtime".to_owned(), c"init".to_owned()];
        let mut envp: Vec<CString> = std::env::vars_os()
            .filter(|(k, _)| k != SYNC_FD_ENV)
            .filter_map(|(k, v)| {
                let mut kv = k.into_encoded_bytes();
                kv.push(b'=');
                kv.extend_from_slice(v.as_encoded_bytes());
                CString::new(kv).ok()
            })
            .collect();
        envp.push(
            CString::new(format!("{SYNC_FD_ENV}={sync_fd}"))
                .map_err(|_| RuntimeError::InvalidArgument("bad sync fd".into()))?,
        );
        let mut argv_ptrs: Vec<_> = argv.iter().map(|s| s.as_ptr()).collect();
        argv_ptrs.push(std::ptr::null());
        let mut envp_ptrs: Vec<_> = envp.iter().map(|s| s.as_ptr()).collect();
        envp_ptrs.push(std::ptr::null());
        Ok(Reexec {
            exe,
            _argv: argv,
            _envp: envp,
            argv_ptrs,
            envp_ptrs,
            sync_fd,
            wait_for_id_maps: false,
        })
    }

    /// In a freshly cloned child: makes the channel fd survive exec and
    /// executes the sealed copy. Only async-signal-safe calls; never returns.
    fn exec_in_child(&self) -> ! {
        // SAFETY: plain fcntl/execveat/_exit syscalls on fds and pointer
        // arrays that were valid in the parent and are copied into the child;
        // nothing here allocates or takes locks.
        unsafe {
            if self.wait_for_id_maps {
                let mut byte = 0u8;
                if libc::read(self.sync_fd, (&mut byte as *mut u8).cast(), 1) != 1 {
                    libc::_exit(126);
                }
                // Fails harmlessly when root is not mapped.
                libc::syscall(libc::SYS_setgroups, 0usize, std::ptr::null::<libc::gid_t>());
                libc::syscall(libc::SYS_setresgid, 0, 0, 0);
                libc::syscall(libc::SYS_setresuid, 0, 0, 0);
            }
            libc::fcntl(self.sync_fd, libc::F_SETFD, 0);
            libc::syscall(
                libc::SYS_execveat,
                self.exe.as_raw_fd(),
                c"".as_ptr(),
                self.argv_ptrs.as_ptr(),
                self.envp_ptrs.as_ptr(),
                libc::AT_EMPTY_PATH,
            );
            libc::_exit(127)
        }
    }
}

/// What a cloned child does.
pub enum ChildMain<'a> {
    /// Re-executes the runtime from its sealed view as `berth-runtime init`.
    Reexec(&'a Reexec),
    /// Goes on in the forked copy of the runtime: runs the function with
    /// the child's channel end and exits with the code it returns (it
    /// returns only when it could not execve).
    Continue(&'a dyn Fn(&mut Channel) -> i32),
}

impl ChildMain<'_> {
    /// Runs in the freshly cloned child; never returns. `parent_end` is the
    /// parent's end of the channel, which the forked child closes at once:
    /// while it held it, it would never see the parent go away.
    fn run_in_child(&self, child_end: &mut Channel, parent_end: &Channel) -> ! {
        match self {
            ChildMain::Reexec(r) => r.exec_in_child(),
            ChildMain::Continue(main) => {
                // SAFETY: closing the parent's end in our own fd table; the
                // Channel owning it is never dropped in this process.
                unsafe { libc::close(parent_end.raw_fd()) };
                // A panic must not unwind into the parent's frames.
                let code =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| main(child_end)))
                        .unwrap_or(1);
                // SAFETY: _exit skips the destructors and atexit handlers of
                // the parent's state this forked copy must not run.
                unsafe { libc::_exit(code) }
            }
        }
    }
}

/// Raw clone with `flags` (namespace flags, CLONE_PARENT) behaving like fork:
/// the child continues on a copy of the caller's stack.
pub(super) fn clone_raw(flags: libc::c_int) -> Result<Option<Pid>, nix::Error> {
    // SAFETY: clone without CLONE_VM and with a null stack is fork with
    // extra flags; the caller is single-threaded, so the child's copy of the
    // address space is consistent.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    match rc {
        -1 => Err(nix::Error::last()),
        0 => Ok(None),
        pid => Ok(Some(Pid::from_raw(pid as i32))),
    }
}

/// clone3's CLONE_INTO_CGROUP (libc declares it as an overflowing c_int).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// The kernel's `struct clone_args` up to `cgroup` (CLONE_ARGS_SIZE_VER2);
/// libc has it only on some targets.
#[repr(C, align(8))]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Like [`clone_raw`], but the child starts inside the cgroup v2 directory
/// `cgroup`. Moving a process later (a cgroup.procs write) waits for an RCU
/// grace period, 5-25 ms here and the largest single cost of `run`; crun
/// clones the same way.
fn clone_into_cgroup(
    flags: libc::c_int,
    cgroup: BorrowedFd<'_>,
) -> Result<Option<Pid>, nix::Error> {
    let args = CloneArgs {
        flags: u64::from(flags as u32) | CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup.as_raw_fd() as u64,
        ..CloneArgs::default()
    };
    // SAFETY: clone3 without CLONE_VM and with a null stack is fork with
    // extra flags (as in clone_raw); args is a valid clone_args of the size
    // passed, read by the kernel before the call returns.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match rc {
        -1 => Err(nix::Error::last()),
        0 => Ok(None),
        pid => Ok(Some(Pid::from_raw(pid as i32))),
    }
}

/// CLONE_NEW* flag of a namespace type.
pub fn clone_flag(typ: LinuxNamespaceType) -> libc::c_int {
    match typ {
        LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
        LinuxNamespaceType::User => libc::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
        LinuxNamespaceType::Network => libc::CLONE_NEWNET,
        LinuxNamespaceType::Time => libc::CLONE_NEWTIME,
    }
}

/// How the init enters its namespaces.
pub struct NamespacePlan {
    /// Namespaces created by clone (user first by the kernel's own order).
    pub clone_flags: libc::c_int,
    /// Existing namespaces to join before, user namespace first.
    pub joins: Vec<(LinuxNamespaceType, PathBuf)>,
    /// A new time namespace with these offsets (`timens_offsets` lines).
    pub time_offsets: Option<String>,
}

fn fail_intermediate(ch: &mut Channel, what: String) -> ! {
    let _ = ch.send(&ChildMsg::Error(what), &[]);
    // SAFETY: _exit is always safe; it skips destructors of the parent's
    // state this forked copy must not run.
    unsafe { libc::_exit(1) }
}

/// Starts the process described by `plan` running `child`. Returns its pid
/// (always a direct child of the caller) and whether it was born in the
/// cgroup v2 directory `cgroup` (when given and the kernel allowed it);
/// otherwise the caller still has to move it into its cgroup.
pub fn spawn(
    plan: &NamespacePlan,
    child: &ChildMain<'_>,
    cgroup: Option<BorrowedFd<'_>>,
    child_end: &mut Channel,
    parent_end: &mut Channel,
) -> Result<(Pid, bool), RuntimeError> {
    if plan.joins.is_empty() && plan.time_offsets.is_none() {
        let flags = plan.clone_flags & !libc::CLONE_NEWTIME;
        // Any clone3 failure (old kernel, seccomp'd clone3, a cgroup that
        // cannot take processes) falls back to clone + cgroup.procs, which
        // reports a real problem with the cgroup properly.
        if let Some(Ok(pid)) = cgroup.map(|fd| clone_into_cgroup(flags, fd)) {
            return match pid {
                None => child.run_in_child(child_end, parent_end),
                Some(pid) => Ok((pid, true)),
            };
        }
        return match clone_raw(flags)
            .map_err(|e| RuntimeError::sys("clone the container init", e))?
        {
            None => child.run_in_child(child_end, parent_end),
            Some(pid) => Ok((pid, false)),
        };
    }

    // Joining existing namespaces (or preparing a time namespace) needs an
    // intermediate: setns/unshare there, then clone the init with
    // CLONE_PARENT so it is still our child.
    let mut ns_fds: Vec<(LinuxNamespaceType, OwnedFd)> = Vec::new();
    for (typ, path) in &plan.joins {
        let fd = std::fs::File::open(path)
            .map_err(|e| RuntimeError::io(format!("open namespace {}", path.display()), e))?;
        ns_fds.push((*typ, fd.into()));
    }
    // SAFETY: the runtime is single-threaded here; the child only runs the
    // code below and then exits or execs.
    match unsafe { nix::unistd::fork() }.map_err(|e| RuntimeError::sys("fork", e))? {
        nix::unistd::ForkResult::Child => {
            for (typ, fd) in &ns_fds {
                if let Err(e) = nix::sched::setns(fd, nix::sched::CloneFlags::empty()) {
                    fail_intermediate(child_end, format!("setns {typ} namespace: {e}"));
                }
            }
            if let Some(offsets) = &plan.time_offsets {
                if let Err(e) = nix::sched::unshare(nix::sched::CloneFlags::from_bits_retain(
                    libc::CLONE_NEWTIME,
                )) {
                    fail_intermediate(child_end, format!("unshare time namespace: {e}"));
                }
                if let Err(e) = std::fs::write("/proc/self/timens_offsets", offsets) {
                    fail_intermediate(child_end, format!("write timens_offsets: {e}"));
                }
            }
            let flags = (plan.clone_flags & !libc::CLONE_NEWTIME) | libc::CLONE_PARENT;
            match clone_raw(flags) {
                Err(e) => fail_intermediate(child_end, format!("clone the container init: {e}")),
                Ok(None) => child.run_in_child(child_end, parent_end),
                Ok(Some(pid)) => {
                    let _ = child_end.send(&ChildMsg::ExecPid(pid.as_raw()), &[]);
                    // SAFETY: see fail_intermediate.
                    unsafe { libc::_exit(0) }
                }
            }
        }
        nix::unistd::ForkResult::Parent {
            child: intermediate,
        } => {
            let reply = parent_end.recv::<ChildMsg>();
            let _ = nix::sys::wait::waitpid(intermediate, None);
            match reply {
                Ok((ChildMsg::ExecPid(pid), _)) => Ok((Pid::from_raw(pid), false)),
                Ok((ChildMsg::Error(e), _)) => Err(RuntimeError::Init(e)),
                Ok((other, _)) => Err(RuntimeError::Protocol {
                    context: "namespace setup",
                    reason: format!("unexpected message {other:?}"),
                }),
                Err(e) => Err(RuntimeError::Protocol {
                    context: "namespace setup",
                    reason: crate::error::one_line(&e),
                }),
            }
        }
    }
}

/// Forks a child running `child` (for `exec`: the child joins the
/// namespaces itself).
pub fn fork_child(
    child: &ChildMain<'_>,
    child_end: &mut Channel,
    parent_end: &Channel,
) -> Result<Pid, RuntimeError> {
    match clone_raw(0).map_err(|e| RuntimeError::sys("fork", e))? {
        None => child.run_in_child(child_end, parent_end),
        Some(pid) => Ok(pid),
    }
}

/// Writes `/proc/<pid>/{uid,gid}_map` (and `setgroups` = deny when not
/// privileged, as the kernel then requires).
pub fn write_id_maps(
    pid: Pid,
    uid_maps: &[oci_spec::runtime::LinuxIdMapping],
    gid_maps: &[oci_spec::runtime::LinuxIdMapping],
) -> Result<(), RuntimeError> {
    let fmt = |maps: &[oci_spec::runtime::LinuxIdMapping]| {
        maps.iter()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect::<String>()
    };
    if !nix::unistd::geteuid().is_root() {
        let p = format!("/proc/{pid}/setgroups");
        std::fs::write(&p, "deny").map_err(|e| RuntimeError::io(format!("write {p}"), e))?;
    }
    for (file, maps) in [("uid_map", uid_maps), ("gid_map", gid_maps)] {
        let p = format!("/proc/{pid}/{file}");
        std::fs::write(&p, fmt(maps)).map_err(|e| {
            RuntimeError::io(format!("write {p} (linux.{}Mappings)", &file[..3]), e)
        })?;
    }
    Ok(())
}
