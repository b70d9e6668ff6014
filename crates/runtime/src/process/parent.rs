//! Creating a container, on the runtime's side: everything is parsed and
//! validated first; then the state dir, cgroup and init are created, each
//! undone by [`Rollback`] if a later step fails.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use berth_cgroups::CgroupManager;
use nix::unistd::Pid;
use oci_spec::runtime::{
    LinuxDeviceCgroup, LinuxDeviceType, LinuxNamespaceType, LinuxResources, Spec,
};

use super::channel::{Channel, ChildMsg, ParentMsg};
use super::dmz::Dmz;
use super::spawn::{self, ChildMain, NamespacePlan, Reexec};
use super::{fork_safety, init, InitConfig};
use crate::config;
use crate::error::RuntimeError;
use crate::hooks::{self, HookKind};
use crate::state::{ContainerDir, ContainerState, HookState, Status};
use berth_cgroups::MigrationPrimer;

/// What `create` (and `run`) were asked to do.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub id: String,
    pub bundle: PathBuf,
    pub root: PathBuf,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: i32,
    /// With a terminal and no console socket, receive the pty master
    /// ourselves (foreground `run`, which then relays the terminal).
    pub own_console: bool,
}

/// A created container: its locked dir, state and init pid.
pub struct Created {
    pub dir: ContainerDir,
    pub state: ContainerState,
    pub init: Pid,
    /// The pty master, when the caller asked to own the console.
    pub console_master: Option<OwnedFd>,
}

/// Undoes a partial create: kills the init, removes the cgroup and the
/// state dir, in that order.
struct Rollback {
    init: Option<Pid>,
    cgroup: Option<Box<dyn CgroupManager>>,
    dir: Option<PathBuf>,
}

impl Drop for Rollback {
    fn drop(&mut self) {
        if let Some(pid) = self.init.take() {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
        }
        if let Some(cg) = self.cgroup.take() {
            let _ = berth_cgroups::destroy_retrying(cg.as_ref(), 50);
        }
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The spec's resources plus runc's implicit device rules: after the spec's
/// own rules, the standard character devices (and mknod of anything) are
/// allowed, and so is every device the spec creates.
pub fn effective_resources(spec: &Spec) -> LinuxResources {
    let mut res = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().clone())
        .unwrap_or_default();
    let rule = |typ: LinuxDeviceType, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut r = LinuxDeviceCgroup::default();
        r.set_allow(true)
            .set_typ(Some(typ))
            .set_major(major)
            .set_minor(minor)
            .set_access(Some(access.to_string()));
        r
    };
    let mut rules = res.devices().clone().unwrap_or_default();
    use LinuxDeviceType::{B, C};
    rules.push(rule(C, None, None, "m"));
    rules.push(rule(B, None, None, "m"));
    for (major, minor) in [(1, 3), (1, 8), (1, 7), (5, 0), (1, 5), (1, 9), (5, 2)] {
        rules.push(rule(C, Some(major), Some(minor), "rwm"));
    }
    rules.push(rule(C, Some(136), None, "rwm"));
    // Devices of `linux.devices` get no rule of their own: like runc, the
    // spec's `resources.devices` decides their access (`--device X:Y:r` must
    // stay read-only), so a device node can exist yet be unusable.
    res.set_devices(Some(rules));
    res
}

/// Where compiled seccomp programs are kept between runs.
pub fn seccomp_cache(root: &Path) -> PathBuf {
    root.join(".seccomp-cache")
}

/// On a pure cgroup v2 host, the container's cgroup directory, for cloning
/// the init straight into it; None elsewhere (v1 hierarchies need
/// cgroup.procs writes anyway) or when it cannot be opened.
fn v2_cgroup_dir(cgroup: &dyn CgroupManager) -> Option<OwnedFd> {
    if cgroup.mode() != berth_cgroups::CgroupMode::Unified {
        return None;
    }
    let relative = cgroup.path().strip_prefix("/").unwrap_or(cgroup.path());
    nix::fcntl::open(
        &Path::new("/sys/fs/cgroup").join(relative),
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ok()
}

fn namespace_plan(spec: &Spec) -> Result<NamespacePlan, RuntimeError> {
    let mut plan = NamespacePlan {
        clone_flags: 0,
        joins: Vec::new(),
        time_offsets: None,
    };
    let Some(list) = spec.linux().as_ref().and_then(|l| l.namespaces().as_ref()) else {
        return Ok(plan);
    };
    for ns in list {
        match ns.path() {
            Some(p) => plan.joins.push((ns.typ(), p.clone())),
            // The cgroup namespace is unshared by the init once it is in its
            // cgroup; the time namespace needs its offsets before entry.
            None if ns.typ() == LinuxNamespaceType::Cgroup => {}
            None if ns.typ() == LinuxNamespaceType::Time => {
                let offsets = spec
                    .linux()
                    .as_ref()
                    .and_then(|l| l.time_offsets().as_ref())
                    .map(|m| {
                        m.iter()
                            .map(|(clock, o)| {
                                format!(
                                    "{clock} {} {}\n",
                                    o.secs().unwrap_or(0),
                                    o.nanosecs().unwrap_or(0)
                                )
                            })
                            .collect::<String>()
                    })
                    .unwrap_or_default();
                plan.time_offsets = Some(offsets);
            }
            None => plan.clone_flags |= spawn::clone_flag(ns.typ()),
        }
    }
    plan.joins
        .sort_by_key(|(t, _)| u8::from(*t != LinuxNamespaceType::User));
    Ok(plan)
}

fn proto(context: &'static str, e: impl std::error::Error + 'static) -> RuntimeError {
    RuntimeError::Protocol {
        context,
        reason: crate::error::one_line(&e),
    }
}

/// Creates the container `opts.id` from `opts.bundle` up to the point where
/// its init waits for `start`.
pub fn create(opts: &CreateOptions) -> Result<Created, RuntimeError> {
    crate::state::check_id(&opts.id)?;
    let bundle = std::fs::canonicalize(&opts.bundle)
        .map_err(|e| RuntimeError::io(format!("bundle {}", opts.bundle.display()), e))?;
    let spec = config::load(&bundle)?;
    config::validate(&spec, true)?;
    let rootfs = config::rootfs_path(&spec, &bundle)?;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| RuntimeError::InvalidArgument("config.json: process: missing".into()))?;
    let terminal = process.terminal().unwrap_or(false);
    if terminal && opts.console_socket.is_none() && !opts.own_console {
        return Err(RuntimeError::InvalidArgument(
            "process.terminal is set: --console-socket is required".into(),
        ));
    }
    let seccomp_program = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(seccomp) => {
            let program = berth_seccomp::compile_cached(seccomp, &seccomp_cache(&opts.root))
                .map_err(|e| {
                    RuntimeError::InvalidArgument(format!(
                        "config.json: linux.seccomp: {}",
                        crate::error::one_line(&e)
                    ))
                })?;
            for w in program.warnings() {
                // Names newer than the host's libseccomp (a profile written for
                // newer kernels) are normal, and this stderr is the container's:
                // note them in the log only, as runc does.
                crate::log::debug(w);
            }
            Some(program)
        }
        None => None,
    };
    let plan = namespace_plan(&spec)?;
    let cgroup_path = crate::cgroup::cgroup_path(&spec, &opts.id);
    let cgroup =
        berth_cgroups::manager(&cgroup_path).map_err(|e| RuntimeError::cgroup(&cgroup_path, e))?;
    let (console, own_console) = match opts.console_socket.as_deref() {
        Some(p) if terminal => (Some(crate::console::connect(p)?), None),
        None if terminal && opts.own_console => {
            let (ours, theirs) = std::os::unix::net::UnixStream::pair()
                .map_err(|e| RuntimeError::io("console socketpair", e))?;
            (Some(theirs), Some(ours))
        }
        _ => (None, None),
    };

    // From here on things exist on the host: every failure rolls back.
    let dir = ContainerDir::create(&opts.root, &opts.id)?;
    let mut rollback = Rollback {
        init: None,
        cgroup: None,
        dir: Some(dir.path.clone()),
    };

    let (mut parent_end, mut child_end) =
        Channel::pair().map_err(|e| RuntimeError::io("sync socketpair", e))?;
    let runtime_hooks =
        hooks::has(&spec, HookKind::Prestart) || hooks::has(&spec, HookKind::CreateRuntime);
    let mut init_cfg = InitConfig {
        id: opts.id.clone(),
        spec: spec.clone(),
        bundle: bundle.clone(),
        rootfs: rootfs.clone(),
        no_pivot: opts.no_pivot,
        no_new_keyring: opts.no_new_keyring,
        preserve_fds: opts.preserve_fds,
        new_user_ns: plan.clone_flags & libc::CLONE_NEWUSER != 0,
        new_cgroup_ns: config::creates_namespace(&spec, LinuxNamespaceType::Cgroup),
        runtime_hooks,
        placed_later: false,
        // Needs the init's pid: filled in once it is known.
        hook_state: String::new(),
        seccomp_cache: seccomp_cache(&opts.root),
    };
    // A forked init needs the dmz for its last execve; without it (or
    // where forking is unsafe) the init re-executes the runtime.
    let dmz = (fork_safety::config_allows_fork(&spec) && fork_safety::single_threaded())
        .then(Dmz::load)
        .and_then(Result::ok);

    // Rolled back from here on: a create that fails half-way leaves
    // directories in some hierarchies.
    let unified = cgroup.mode() == berth_cgroups::CgroupMode::Unified;
    rollback.cgroup = Some(cgroup);
    let cgroup = rollback
        .cgroup
        .as_ref()
        .map(|c| c.as_ref())
        .ok_or_else(|| RuntimeError::InvalidArgument("cgroup manager vanished".into()))?;
    // A forked init on v1 and hybrid hosts is moved into its cgroup while
    // it mounts: the migration may wait for an RCU grace period (see the
    // primer), and the cgroup mkdirs with it, as the primer holds the
    // kernel's cgroup_mutex, which every mkdir takes, through that period.
    // The init waits only before what needs its cgroup (cgroup mounts, a
    // cgroup namespace). Elsewhere the directories come first.
    let placed_later = dmz.is_some() && !unified;
    init_cfg.placed_later = placed_later;
    if !placed_later {
        berth_cgroups::create_retrying(cgroup)
            .map_err(|e| RuntimeError::cgroup(&cgroup_path, e))?;
    }
    let primer = MigrationPrimer::start(false);
    let apply_resources = || -> Result<(), RuntimeError> {
        cgroup
            .apply(&effective_resources(&spec))
            .map_err(|e| RuntimeError::cgroup(&cgroup_path, e))
    };
    // On cgroup v2 the init is born in its cgroup, limits set; elsewhere
    // they are written after the clone, while the init is busy creating
    // its namespaces on the other CPU.
    if unified {
        apply_resources()?;
    }
    // A forked init without namespaces to join clones only its pid
    // namespace and unshares the others itself (the same namespaces; the
    // network namespace alone costs ~0.5 ms), meanwhile we make the
    // exec.fifo and set the cgroup's limits.
    let mut plan = plan;
    let child_unshares = if dmz.is_some() && plan.joins.is_empty() && plan.time_offsets.is_none() {
        plan.clone_flags & !libc::CLONE_NEWPID
    } else {
        0
    };
    plan.clone_flags &= !child_unshares;

    let cgroup_dir = v2_cgroup_dir(cgroup);
    let spawned = {
        let console_fd = console.as_ref().map(|c| c.as_fd());
        let fork_main = |ch: &mut Channel| -> i32 {
            match &dmz {
                Some(dmz) => init::forked(
                    ch,
                    &init_cfg,
                    child_unshares,
                    console_fd,
                    seccomp_program.as_ref(),
                    dmz,
                ),
                None => 1,
            }
        };
        let reexec;
        let child = if dmz.is_some() {
            ChildMain::Continue(&fork_main)
        } else {
            let mut r = Reexec::new(child_end.raw_fd())?;
            r.wait_for_id_maps = plan.clone_flags & libc::CLONE_NEWUSER != 0;
            reexec = r;
            ChildMain::Reexec(&reexec)
        };
        spawn::spawn(
            &plan,
            &child,
            cgroup_dir.as_ref().map(|d| d.as_fd()),
            &mut child_end,
            &mut parent_end,
        )
    };
    let (init, born_in_cgroup) = spawned?;
    drop(cgroup_dir);
    rollback.init = Some(init);
    drop(child_end);

    let fifo = make_exec_fifo(&dir)?;
    let created = chrono::Utc::now();
    let owner = String::new();
    let creating_state = serde_json::to_vec(&HookState {
        oci_version: spec.version(),
        id: &opts.id,
        status: Status::Creating,
        pid: init.as_raw(),
        bundle: &bundle,
        annotations: spec.annotations().as_ref().filter(|a| !a.is_empty()),
    })
    .unwrap_or_default();
    init_cfg.hook_state = String::from_utf8_lossy(&creating_state).into_owned();
    if placed_later {
        send_begin(&mut parent_end, &mut init_cfg, &fifo)?;
        let placed = (|| {
            berth_cgroups::create_retrying(cgroup)
                .map_err(|e| RuntimeError::cgroup(&cgroup_path, e))?;
            apply_resources()?;
            cgroup
                .add_task(init.as_raw())
                .map_err(|e| RuntimeError::cgroup(&cgroup_path, e))?;
            parent_end
                .send(&ParentMsg::Placed, &[])
                .map_err(|e| proto("tell the init it is in its cgroup", e))
        })();
        placed.map_err(|e| init_error_first(&mut parent_end, init, e))?;
    } else {
        if !unified {
            apply_resources()?;
        }
        if dmz.is_none() && plan.clone_flags & libc::CLONE_NEWUSER != 0 {
            let linux = spec.linux().as_ref();
            spawn::write_id_maps(
                init,
                linux
                    .and_then(|l| l.uid_mappings().as_deref())
                    .unwrap_or_default(),
                linux
                    .and_then(|l| l.gid_mappings().as_deref())
                    .unwrap_or_default(),
            )?;
            parent_end
                .send_id_maps_written()
                .map_err(|e| proto("signal the init", e))?;
        }
        if !born_in_cgroup {
            cgroup
                .add_task(init.as_raw())
                .map_err(|e| RuntimeError::cgroup(&cgroup_path, e))?;
        }
        if dmz.is_some() {
            send_begin(&mut parent_end, &mut init_cfg, &fifo)?;
        } else {
            let mut fds = vec![fifo.as_raw_fd()];
            if let Some(c) = &console {
                fds.push(c.as_raw_fd());
            }
            parent_end
                .send(&ParentMsg::Init(Box::new(init_cfg)), &fds)
                .map_err(|e| proto("send init config", e))?;
        }
    }
    drop(primer);
    drop(console);
    drop(fifo);
    drop(dmz);

    // Recorded while the init sets up (the other core's work): nobody sees
    // it before we unlock the directory, and a failure below removes it.
    let (init_start_time, _) = crate::state::proc_stat(init.as_raw())
        .ok_or_else(|| RuntimeError::Init("exited during setup".into()))?;
    let state = ContainerState {
        id: opts.id.clone(),
        init_pid: init.as_raw(),
        init_start_time,
        bundle,
        rootfs,
        created,
        owner,
        cgroup_path,
        config: spec,
    };
    dir.save(&state)?;
    let spec = &state.config;

    loop {
        let (msg, fds) = match parent_end.recv::<ChildMsg>() {
            Ok(m) => m,
            Err(super::channel::ChannelError::Closed) => {
                let status = nix::sys::wait::waitpid(init, None)
                    .ok()
                    .and_then(super::wait::exit_code);
                rollback.init = None;
                return Err(RuntimeError::Init(format!(
                    "exited during setup{}",
                    status
                        .map(|c| format!(" with status {c}"))
                        .unwrap_or_default()
                )));
            }
            Err(e) => return Err(proto("container init", e)),
        };
        match msg {
            ChildMsg::RunHooks => {
                hooks::run(spec, HookKind::Prestart, &creating_state)?;
                hooks::run(spec, HookKind::CreateRuntime, &creating_state)?;
                parent_end
                    .send(&ParentMsg::HooksDone, &[])
                    .map_err(|e| proto("container init", e))?;
            }
            ChildMsg::SeccompNotify => {
                send_seccomp_fd(spec, &fds, &creating_state)?;
            }
            ChildMsg::Ready => break,
            ChildMsg::Error(e) => return Err(RuntimeError::Init(e)),
            ChildMsg::ExecPid(_) => {
                return Err(RuntimeError::Protocol {
                    context: "container init",
                    reason: "unexpected ExecPid".into(),
                })
            }
        }
    }
    drop(parent_end);

    if let Some(p) = &opts.pid_file {
        write_pid_file(p, init.as_raw())?;
    }
    rollback.init = None;
    rollback.cgroup = None;
    rollback.dir = None;
    let console_master = match own_console {
        Some(sock) => Some(crate::console::receive_master(&sock)?),
        None => None,
    };
    Ok(Created {
        dir,
        state,
        init,
        console_master,
    })
}

/// `err`, a failure of ours after the init began to set up, unless the
/// init failed first: then its message is the one to report (a mount the
/// spec got wrong, rather than the cgroup write that found the init gone).
/// The init is killed; what it said before is still in the channel.
fn init_error_first(ch: &mut Channel, init: Pid, err: RuntimeError) -> RuntimeError {
    let _ = nix::sys::signal::kill(init, nix::sys::signal::Signal::SIGKILL);
    match ch.recv::<ChildMsg>() {
        Ok((ChildMsg::Error(e), _)) => RuntimeError::Init(e),
        _ => err,
    }
}

/// Starts a forked init, which has everything else in its copy of our
/// memory: the OCI state for its hooks, and the exec.fifo.
fn send_begin(
    parent_end: &mut Channel,
    init_cfg: &mut InitConfig,
    fifo: &OwnedFd,
) -> Result<(), RuntimeError> {
    parent_end
        .send(
            &ParentMsg::Begin {
                hook_state: std::mem::take(&mut init_cfg.hook_state),
            },
            &[fifo.as_raw_fd()],
        )
        .map_err(|e| proto("start the init", e))
}

/// Makes `exec.fifo`, on which the init waits for `start`, and opens it
/// O_PATH for the init (which reopens it for writing, inside the container).
fn make_exec_fifo(dir: &ContainerDir) -> Result<OwnedFd, RuntimeError> {
    let fifo_path = dir.fifo_path();
    nix::unistd::mkfifo(&fifo_path, nix::sys::stat::Mode::from_bits_truncate(0o622))
        .map_err(|e| RuntimeError::sys(format!("mkfifo {}", fifo_path.display()), e))?;
    let fifo: OwnedFd = nix::fcntl::open(
        &fifo_path,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| RuntimeError::sys(format!("open {}", fifo_path.display()), e))?;
    // The umask took group/other write away; the init opens the fifo as the
    // container's user, who may be anyone.
    std::fs::set_permissions(
        &fifo_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o622),
    )
    .map_err(|e| RuntimeError::io(format!("chmod {}", fifo_path.display()), e))?;
    Ok(fifo)
}

fn send_seccomp_fd(spec: &Spec, fds: &[OwnedFd], state: &[u8]) -> Result<(), RuntimeError> {
    let Some(seccomp) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) else {
        return Ok(());
    };
    let (Some(path), Some(fd)) = (seccomp.listener_path(), fds.first()) else {
        return Ok(());
    };
    let metadata = seccomp.listener_metadata().clone().unwrap_or_default();
    use std::os::fd::AsFd;
    berth_seccomp::send_to_listener(path, fd.as_fd(), state, &metadata).map_err(|e| {
        RuntimeError::InvalidArgument(format!(
            "linux.seccomp.listenerPath: {}",
            crate::error::one_line(&e)
        ))
    })
}

/// Writes the pid file atomically, as runc does.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<(), RuntimeError> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| RuntimeError::io("getcwd", e))?
            .join(path)
    };
    crate::state::write_atomic(&abs, pid.to_string().as_bytes())
}
