//! exec: a new process in a running container.

use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Capability, LinuxNamespaceType, Process};

use crate::cli::ExecArgs;
use crate::error::RuntimeError;
use crate::process::channel::{Channel, ChannelError, ChildMsg, ParentMsg};
use crate::process::dmz::Dmz;
use crate::process::fork_safety;
use crate::process::spawn::{fork_child, ChildMain, Reexec};
use crate::process::{wait, ExecConfig};
use crate::state::{ContainerDir, ContainerState, Status};
use berth_cgroups::MigrationPrimer;

fn ns_file(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// The init's namespaces that differ from ours (joining one's own user
/// namespace is an error, and joining the others is a no-op).
fn namespaces_of(st: &ContainerState) -> Vec<(LinuxNamespaceType, PathBuf)> {
    let mut out = Vec::new();
    for t in crate::config::namespace_set(&st.config) {
        let name = ns_file(t);
        let theirs = PathBuf::from(format!("/proc/{}/ns/{name}", st.init_pid));
        let same = match (
            std::fs::metadata(&theirs),
            std::fs::metadata(format!("/proc/self/ns/{name}")),
        ) {
            (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
            _ => false,
        };
        if !same {
            out.push((t, theirs));
        }
    }
    out
}

fn read_process_file(path: &Path) -> Result<Process, RuntimeError> {
    let data =
        std::fs::read(path).map_err(|e| RuntimeError::io(format!("read {}", path.display()), e))?;
    let de = &mut serde_json::Deserializer::from_slice(&data);
    serde_path_to_error::deserialize(de).map_err(|e| {
        RuntimeError::InvalidArgument(format!("{}: {}: {}", path.display(), e.path(), e.inner()))
    })
}

fn add_caps(list: &mut Option<oci_spec::runtime::Capabilities>, extra: &[Capability]) {
    let set = list.get_or_insert_with(Default::default);
    set.extend(extra.iter().copied());
}

/// The process to run: from --process, or the container's process with the
/// CLI's overrides (runc's semantics).
fn build_process(a: &ExecArgs, st: &ContainerState) -> Result<Process, RuntimeError> {
    if let Some(p) = &a.process {
        return read_process_file(p);
    }
    if a.command.is_empty() {
        return Err(RuntimeError::InvalidArgument(
            "exec: a command is required (or --process)".into(),
        ));
    }
    let mut p = st.config.process().clone().unwrap_or_default();
    p.set_args(Some(a.command.clone()));
    p.set_terminal(Some(a.tty));
    p.set_console_size(None);
    if let Some(cwd) = &a.cwd {
        p.set_cwd(cwd.clone());
    }
    let mut env = p.env().clone().unwrap_or_default();
    for kv in &a.env {
        let key = kv.split('=').next().unwrap_or_default();
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(kv.clone());
    }
    p.set_env(Some(env));
    let mut user = p.user().clone();
    if let Some(u) = &a.user {
        let (uid, gid) = match u.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (u.as_str(), None),
        };
        user.set_uid(uid.parse().map_err(|_| {
            RuntimeError::InvalidArgument(format!("--user {u:?}: uid must be a number"))
        })?);
        if let Some(g) = gid {
            user.set_gid(g.parse().map_err(|_| {
                RuntimeError::InvalidArgument(format!("--user {u:?}: gid must be a number"))
            })?);
        } else {
            user.set_gid(0);
        }
    }
    if !a.additional_gids.is_empty() {
        user.set_additional_gids(Some(a.additional_gids.clone()));
    }
    p.set_user(user);
    if !a.cap.is_empty() {
        let names = crate::process::security::parse_cap_names(&a.cap)
            .map_err(RuntimeError::InvalidArgument)?;
        let extra: Vec<Capability> = names
            .iter()
            .filter_map(|n| serde_json::from_value(serde_json::Value::String(n.clone())).ok())
            .collect();
        let mut caps = p.capabilities().clone().unwrap_or_default();
        let mut b = caps.bounding().clone();
        add_caps(&mut b, &extra);
        caps.set_bounding(b);
        let mut e = caps.effective().clone();
        add_caps(&mut e, &extra);
        caps.set_effective(e);
        let mut pe = caps.permitted().clone();
        add_caps(&mut pe, &extra);
        caps.set_permitted(pe);
        p.set_capabilities(Some(caps));
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(profile) = &a.apparmor {
        p.set_apparmor_profile(Some(profile.clone()));
    }
    if let Some(label) = &a.process_label {
        p.set_selinux_label(Some(label.clone()));
    }
    Ok(p)
}

pub fn exec(root: &Path, a: &ExecArgs) -> Result<i32, RuntimeError> {
    // Its grace period passes while we prepare (the child is moved into
    // the container's cgroup below).
    let primer = MigrationPrimer::start(true);
    let dir = ContainerDir::open(root, &a.id)?;
    let st = dir.load()?;
    let status = st.status(&dir.path);
    if !matches!(status, Status::Running | Status::Created) {
        return Err(RuntimeError::InvalidState {
            id: a.id.clone(),
            action: "exec in",
            status: status.to_string(),
        });
    }
    let process = build_process(a, &st)?;
    crate::config::validate_process(&process)?;
    let terminal = process.terminal().unwrap_or(false);
    if terminal && a.console_socket.is_none() && a.detach {
        return Err(RuntimeError::InvalidArgument(
            "exec -t -d: --console-socket is required (nobody would hold the terminal)".into(),
        ));
    }
    // In the foreground without a console socket we hold the pty master
    // and relay it, like runc.
    let (console, own_console) = match a.console_socket.as_deref() {
        Some(p) if terminal => (Some(crate::console::connect(p)?), None),
        None if terminal => {
            let (ours, theirs) = std::os::unix::net::UnixStream::pair()
                .map_err(|e| RuntimeError::io("console socketpair", e))?;
            (Some(theirs), Some(ours))
        }
        _ => (None, None),
    };
    let cg = berth_cgroups::manager(&st.cgroup_path)
        .map_err(|e| RuntimeError::cgroup(&st.cgroup_path, e))?;
    let seccomp = st.config.linux().as_ref().and_then(|l| l.seccomp().clone());
    let state_json = serde_json::to_string(&st.hook_state(status)).unwrap_or_default();
    let cfg = ExecConfig {
        id: a.id.clone(),
        namespaces: namespaces_of(&st),
        process,
        seccomp,
        preserve_fds: a.preserve_fds,
        state_json,
        seccomp_cache: crate::process::parent::seccomp_cache(root),
    };
    if fork_safety::config_allows_fork(&st.config) && fork_safety::may_hold_ptrace(&cfg.process) {
        // Before `start` the init may still be a fork of the runtime, whose
        // /proc/<pid>/exe CAP_SYS_PTRACE would open (see fork_safety).
        if status == Status::Created {
            return Err(RuntimeError::InvalidState {
                id: a.id.clone(),
                action: "exec a process with CAP_SYS_PTRACE in",
                status: status.to_string(),
            });
        }
        // From now on no exec into this container may fork.
        let marker = dir.path.join(fork_safety::PTRACE_EXEC_MARKER);
        std::fs::write(&marker, b"")
            .map_err(|e| RuntimeError::io(format!("create {}", marker.display()), e))?;
    }
    let dmz = (fork_safety::exec_may_fork(&st.config, &cfg.process, &dir.path)
        && fork_safety::single_threaded())
    .then(Dmz::load)
    .and_then(Result::ok);
    // The container may not run the exec while we hold its lock forever.
    drop(dir);

    let signals = if a.detach {
        None
    } else {
        Some(wait::block_signals()?)
    };
    let (mut parent_end, mut child_end) =
        Channel::pair().map_err(|e| RuntimeError::io("sync socketpair", e))?;
    let child = {
        let console_fd = console.as_ref().map(|c| c.as_fd());
        let fork_main = |ch: &mut Channel| -> i32 {
            match &dmz {
                Some(dmz) => crate::process::exec::forked(ch, &cfg, console_fd, dmz),
                None => 1,
            }
        };
        let reexec;
        let main = if dmz.is_some() {
            ChildMain::Continue(&fork_main)
        } else {
            reexec = Reexec::new(child_end.raw_fd())?;
            ChildMain::Reexec(&reexec)
        };
        fork_child(&main, &mut child_end, &parent_end)?
    };
    drop(child_end);
    let kill_child = |pid: nix::unistd::Pid| {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(pid, None);
    };
    if let Err(e) = cg.add_task(child.as_raw()) {
        kill_child(child);
        return Err(RuntimeError::cgroup(&st.cgroup_path, e));
    }
    drop(primer);
    let fds: Vec<i32> = console.iter().map(|c| c.as_raw_fd()).collect();
    let proto = |e: ChannelError| RuntimeError::Protocol {
        context: "exec",
        reason: crate::error::one_line(&e),
    };
    let sent = if dmz.is_some() {
        // The fork has its configuration and console socket already.
        parent_end.send(
            &ParentMsg::Begin {
                hook_state: String::new(),
            },
            &[],
        )
    } else {
        parent_end.send(&ParentMsg::Exec(Box::new(cfg)), &fds)
    };
    if let Err(e) = sent {
        kill_child(child);
        return Err(proto(e));
    }
    drop(console);
    drop(dmz);
    let first = parent_end.recv::<ChildMsg>();
    let _ = nix::sys::wait::waitpid(child, None);
    let process_pid = match first {
        Ok((ChildMsg::ExecPid(pid), _)) => nix::unistd::Pid::from_raw(pid),
        Ok((ChildMsg::Error(e), _)) => return Err(RuntimeError::Init(e)),
        Ok((other, _)) => {
            return Err(RuntimeError::Protocol {
                context: "exec",
                reason: format!("unexpected {other:?}"),
            })
        }
        Err(e) => return Err(proto(e)),
    };
    let ready = parent_end
        .send(&ParentMsg::Go, &[])
        .map_err(proto)
        .and_then(|()| match parent_end.recv::<ChildMsg>().map_err(proto)? {
            (ChildMsg::Ready, _) => Ok(()),
            (ChildMsg::Error(e), _) => Err(RuntimeError::Init(e)),
            (other, _) => Err(RuntimeError::Protocol {
                context: "exec",
                reason: format!("unexpected {other:?}"),
            }),
        });
    if let Err(e) = ready {
        kill_child(process_pid);
        return Err(e);
    }
    drop(parent_end);
    if let Some(p) = &a.pid_file {
        crate::process::parent::write_pid_file(p, process_pid.as_raw())?;
    }
    match (signals, own_console) {
        (None, _) => Ok(0),
        (Some(set), Some(sock)) => {
            let master = crate::console::receive_master(&sock)?;
            crate::process::tty_proxy::relay_and_wait(process_pid, master, &set)
        }
        (Some(set), None) => wait::wait_forwarding(process_pid, &set),
    }
}
