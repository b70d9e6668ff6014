//! create, start, run, kill, delete.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::cli::{CreateArgs, KillArgs, RunArgs};
use crate::error::RuntimeError;
use crate::hooks::{self, HookKind};
use crate::process::parent::{self, CreateOptions, Created};
use crate::process::wait;
use crate::state::{ContainerDir, ContainerState, Status};

fn create_options(root: &Path, a: &CreateArgs) -> CreateOptions {
    CreateOptions {
        id: a.id.clone(),
        bundle: a.bundle.clone(),
        root: root.to_path_buf(),
        console_socket: a.console_socket.clone(),
        pid_file: a.pid_file.clone(),
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds,
        own_console: false,
    }
}

pub fn create(root: &Path, a: &CreateArgs) -> Result<(), RuntimeError> {
    parent::create(&create_options(root, a)).map(drop)
}

pub fn start(root: &Path, id: &str) -> Result<(), RuntimeError> {
    let dir = ContainerDir::open(root, id)?;
    let state = dir.load()?;
    start_in(&dir, &state)
}

fn start_in(dir: &ContainerDir, state: &ContainerState) -> Result<(), RuntimeError> {
    match state.status(&dir.path) {
        Status::Created => {}
        status => {
            return Err(RuntimeError::InvalidState {
                id: state.id.clone(),
                action: "start",
                status: status.to_string(),
            })
        }
    }
    let fifo_path = dir.fifo_path();
    // Non-blocking open so a dead init cannot hang us; its blocking
    // O_WRONLY open completes as soon as we hold the read end.
    let mut fifo = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&fifo_path)
        .map_err(|e| RuntimeError::io(format!("open {}", fifo_path.display()), e))?;
    let mut byte = [0u8; 1];
    loop {
        let mut pfd = libc::pollfd {
            fd: fifo.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on one valid pollfd.
        let rc = unsafe { libc::poll(&mut pfd, 1, 50) };
        if rc > 0 {
            match fifo.read(&mut byte) {
                Ok(1) => break,
                Ok(_) if !state.init_alive() => {
                    return Err(RuntimeError::Init(
                        "exited before it could be started".into(),
                    ))
                }
                Ok(_) => std::thread::sleep(Duration::from_millis(1)),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(RuntimeError::io("read exec.fifo", e)),
            }
        } else if !state.init_alive() {
            return Err(RuntimeError::Init(
                "exited before it could be started".into(),
            ));
        }
    }
    let _ = std::fs::remove_file(&fifo_path);
    if hooks::has(&state.config, HookKind::Poststart) {
        let hs = serde_json::to_vec(&state.hook_state(Status::Running)).unwrap_or_default();
        if let Err(e) = hooks::run(&state.config, HookKind::Poststart, &hs) {
            crate::log::warn(&crate::error::one_line(&e));
        }
    }
    Ok(())
}

pub fn run(root: &Path, a: &RunArgs) -> Result<i32, RuntimeError> {
    let signals = if a.detach {
        None
    } else {
        Some(wait::block_signals()?)
    };
    let mut opts = create_options(root, &a.create);
    // runc relays the terminal itself when running in the foreground.
    opts.own_console = !a.detach;
    let created = parent::create(&opts)?;
    if let Err(e) = start_in(&created.dir, &created.state) {
        let _ = destroy(created.dir, &created.state);
        return Err(e);
    }
    let Some(signals) = signals else { return Ok(0) };
    // Other commands (state, kill, exec) must reach the container while we
    // wait: hold no lock until it is time to clean up.
    let Created {
        dir,
        state,
        init,
        console_master,
    } = created;
    drop(dir);
    let code = match console_master {
        Some(master) => crate::process::tty_proxy::relay_and_wait(init, master, &signals)?,
        None => wait::wait_forwarding(init, &signals)?,
    };
    if !a.keep {
        match ContainerDir::open(root, &a.create.id) {
            Ok(dir) => destroy(dir, &state)?,
            // Someone ran `delete` meanwhile.
            Err(RuntimeError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(code)
}

/// Sends `sig` to every process in the container's cgroup, frozen first so
/// none can fork away (runc's signalAllProcesses).
fn signal_all(state: &ContainerState, sig: Signal) -> Result<(), RuntimeError> {
    let cg = berth_cgroups::manager(&state.cgroup_path)
        .map_err(|e| RuntimeError::cgroup(&state.cgroup_path, e))?;
    let was_frozen = cg.is_frozen().unwrap_or(false);
    if !was_frozen {
        cg.freeze()
            .map_err(|e| RuntimeError::cgroup(&state.cgroup_path, e))?;
    }
    let pids = cg
        .pids()
        .map_err(|e| RuntimeError::cgroup(&state.cgroup_path, e));
    if let Ok(pids) = &pids {
        for pid in pids {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid), sig);
        }
    }
    if !was_frozen {
        cg.thaw()
            .map_err(|e| RuntimeError::cgroup(&state.cgroup_path, e))?;
    }
    pids.map(drop)
}

pub fn kill(root: &Path, a: &KillArgs) -> Result<(), RuntimeError> {
    let sig = match &a.signal {
        Some(s) => crate::signal::parse(s).map_err(RuntimeError::InvalidArgument)?,
        None => Signal::SIGTERM,
    };
    let dir = ContainerDir::open(root, &a.id)?;
    let state = dir.load()?;
    let status = state.status(&dir.path);
    if status == Status::Stopped && !a.all {
        return Err(RuntimeError::InvalidState {
            id: a.id.clone(),
            action: "kill",
            status: status.to_string(),
        });
    }
    if a.all {
        return signal_all(&state, sig);
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(state.init_pid), sig)
        .map_err(|e| RuntimeError::sys(format!("kill {} {sig}", state.init_pid), e))
}

pub fn delete(root: &Path, id: &str, force: bool) -> Result<(), RuntimeError> {
    let dir = match ContainerDir::open(root, id) {
        Ok(d) => d,
        // runc: deleting a missing container with --force succeeds.
        Err(RuntimeError::NotFound(_)) if force => {
            let _ = std::fs::remove_dir_all(root.join(id));
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    // A stopped container without poststop hooks (the common delete, after
    // every exit) needs no more than the head of its state.
    let (head, may_have_poststop) = dir.load_head()?;
    if !head.init_alive() && !may_have_poststop {
        return Ok(berth_runtime_state::remove_stopped(&dir.path, &head)?);
    }
    let state = dir.load()?;
    match state.status(&dir.path) {
        Status::Stopped => {}
        // A created container was never started: deleting it is how it is
        // abandoned, force or not (like runc).
        Status::Created | Status::Creating => kill_and_wait(&state)?,
        Status::Running | Status::Paused if force => kill_and_wait(&state)?,
        status => {
            return Err(RuntimeError::InvalidState {
                id: id.to_string(),
                action: "delete",
                status: format!("{status} (use --force)"),
            })
        }
    }
    destroy(dir, &state)
}

fn kill_and_wait(state: &ContainerState) -> Result<(), RuntimeError> {
    let has_pidns =
        crate::config::creates_namespace(&state.config, oci_spec::runtime::LinuxNamespaceType::Pid);
    if has_pidns {
        // Killing the init of a pid namespace kills everything in it; a
        // frozen cgroup must be thawed for the kill to happen.
        if let Ok(cg) = berth_cgroups::manager(&state.cgroup_path) {
            let _ = cg.thaw();
        }
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(state.init_pid), Signal::SIGKILL);
    } else {
        signal_all(state, Signal::SIGKILL)?;
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(state.init_pid), Signal::SIGKILL);
    }
    if !wait::wait_gone(state.init_pid, Duration::from_secs(10)) {
        return Err(RuntimeError::Init(format!(
            "pid {} did not exit after SIGKILL",
            state.init_pid
        )));
    }
    Ok(())
}

/// Removes a stopped container: cgroup, poststop hooks, state dir.
fn destroy(dir: ContainerDir, state: &ContainerState) -> Result<(), RuntimeError> {
    berth_runtime_state::remove_cgroup(&state.cgroup_path)?;
    if hooks::has(&state.config, HookKind::Poststop) {
        let hs = serde_json::to_vec(&state.hook_state(Status::Stopped)).unwrap_or_default();
        if let Err(e) = hooks::run(&state.config, HookKind::Poststop, &hs) {
            crate::log::warn(&crate::error::one_line(&e));
        }
    }
    dir.remove()
}
