//! Docker's container model → the OCI runtime spec a container runs with,
//! built the way moby's `daemon/oci_linux.go` builds it, with Docker's
//! defaults and validation errors.
//!
//! The engine calls [`build_spec`] when it starts a container, after the
//! overlay rootfs is mounted and the /etc files are written.
//! [`effective_capabilities`] tells it which seccomp rules apply, and
//! [`process_args`] what will run.

mod blkio;
mod caps;
mod devices;
mod error;
mod host;
mod mounts;
mod namespaces;
mod resources;
mod security;
mod user;
mod user_mounts;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Box as ConsoleSize, BoxBuilder, Linux, Process, Root, Spec};

pub use caps::{effective_capabilities, DEFAULT_CAPABILITIES};
pub use error::SpecError;
pub use host::HostInfo;
pub use mounts::INIT_PATH;
pub use namespaces::NamespaceJoins;
pub use oci_spec::runtime::LinuxSeccomp;
pub use resources::MIN_MEMORY;
pub(crate) use user_mounts::{clean as clean_path, user_mounts, UserMountKind};

use super::model::{ContainerConfig, HostConfig};
use namespaces::ShareMode;

/// `PATH` when neither the image nor the user sets one.
pub const DEFAULT_PATH_ENV: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The name prefix of a container's cgroup unless `--cgroup-parent` is set.
pub const CGROUP_PREFIX: &str = "berth-";

/// Linux's HOST_NAME_MAX.
const MAX_HOSTNAME_LEN: usize = 64;

/// Host paths of the generated /etc files, bind-mounted over the
/// container's own (`None`: leave the image's file).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EtcFiles<'a> {
    pub hostname: Option<&'a Path>,
    pub hosts: Option<&'a Path>,
    pub resolv_conf: Option<&'a Path>,
}

/// Everything [`build_spec`] turns into a spec.
#[derive(Debug, Clone)]
pub struct SpecInput<'a> {
    /// The 64-hex container id.
    pub id: &'a str,
    /// Already merged with the image's config (Env, Cmd, Entrypoint,
    /// WorkingDir, User …).
    pub config: &'a ContainerConfig,
    pub host: &'a HostConfig,
    /// The mounted rootfs (absolute): `root.path`, and where /etc/passwd
    /// and /etc/group are read.
    pub rootfs: &'a Path,
    pub etc_files: EtcFiles<'a>,
    pub namespace_joins: NamespaceJoins,
    /// Host path of berth-init, bound read-only at [`INIT_PATH`] when
    /// `HostConfig.Init` is set.
    pub init_binary: Option<&'a Path>,
    /// The compiled seccomp profile; `None` = unconfined.
    pub seccomp: Option<LinuxSeccomp>,
    /// A pure cgroup v2 host (the cgroup namespace default and the
    /// /sys/fs/cgroup mount depend on it).
    pub cgroup_v2: bool,
}

/// The container's OCI spec; warnings (settings the host cannot honour,
/// which Docker drops with a warning) are logged.
pub fn build_spec(input: &SpecInput<'_>) -> Result<Spec, SpecError> {
    let (spec, warnings) = build_spec_with_warnings(input)?;
    for w in warnings {
        tracing::warn!(container = input.id, "{w}");
    }
    Ok(spec)
}

/// [`build_spec`], returning the warnings for the caller to show (Docker
/// prints them as `WARNING: …`).
pub fn build_spec_with_warnings(input: &SpecInput<'_>) -> Result<(Spec, Vec<String>), SpecError> {
    build_on(input, HostInfo::get())
}

/// Entrypoint followed by Cmd: what the container runs.
pub fn process_args(config: &ContainerConfig) -> Result<Vec<String>, SpecError> {
    let args: Vec<String> = config
        .entrypoint
        .iter()
        .flatten()
        .chain(config.cmd.iter().flatten())
        .cloned()
        .collect();
    if args.is_empty() {
        return Err(SpecError::invalid(
            "no command specified: the image has neither Entrypoint nor Cmd; give a command after the image name",
        ));
    }
    Ok(args)
}

/// The masked and read-only paths a container gets, as `inspect` shows
/// them in `HostConfig`: `None` where Docker shows `null` (privileged
/// without explicit lists).
pub(crate) fn effective_system_paths(
    host: &crate::containers::model::HostConfig,
) -> (Option<Vec<String>>, Option<Vec<String>>) {
    let opts = security::parse_security_opts(host, &mut Vec::new()).unwrap_or_default();
    let (masked, readonly) = security::system_paths(host, &opts);
    let shown = |explicit: &Option<Vec<String>>, list: Vec<String>| {
        (explicit.is_some() || !host.privileged).then_some(list)
    };
    (
        shown(&host.masked_paths, masked),
        shown(&host.readonly_paths, readonly),
    )
}

/// `--user` (and `--group-add`) resolved against the container's own
/// /etc/passwd and /etc/group, as for the container's process; `exec -u`
/// uses it too.
pub fn resolve_user(
    rootfs: &Path,
    user: &str,
    group_add: &[String],
) -> Result<oci_spec::runtime::User, SpecError> {
    user::UserDb::read(rootfs)?.resolve(user, group_add)
}

pub(crate) fn build_on(
    input: &SpecInput<'_>,
    info: &HostInfo,
) -> Result<(Spec, Vec<String>), SpecError> {
    let (config, host) = (input.config, input.host);
    let mut warnings = Vec::new();
    // The id names the cgroup directory: nothing that could walk paths.
    if input.id.len() < 12
        || !input
            .id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(SpecError::Internal(format!(
            "container id {:?} is not at least 12 letters and digits",
            input.id
        )));
    }
    if config.hostname.len() > MAX_HOSTNAME_LEN {
        return Err(SpecError::invalid(format!(
            "hostname {:?} is too long (maximum {MAX_HOSTNAME_LEN} bytes): shorten --hostname",
            config.hostname
        )));
    }
    if !(-1000..=1000).contains(&host.oom_score_adj) {
        return Err(SpecError::invalid(format!(
            "Invalid value {}, range for oom score adj is [-1000, 1000]: fix --oom-score-adj",
            host.oom_score_adj
        )));
    }
    if !matches!(host.isolation.as_str(), "" | "default") {
        return Err(SpecError::invalid(format!(
            "invalid isolation ({}): linux only supports 'default': drop --isolation",
            host.isolation
        )));
    }
    if host.device_requests.as_ref().is_some_and(|r| !r.is_empty()) {
        return Err(SpecError::Unsupported(
            "could not select device driver \"\" with capabilities: [[gpu]]: berth has no GPU device drivers; drop --gpus".into(),
        ));
    }
    let modes = namespaces::parse_modes(config, host, input.cgroup_v2)?;
    let security = security::parse_security_opts(host, &mut warnings)?;

    let hostname = effective_hostname(input, &modes)?;
    let mut args = process_args(config)?;
    let init = host.init == Some(true) && modes.pid == ShareMode::Private;
    let init_binary = if init {
        let path = input.init_binary.ok_or_else(|| {
            SpecError::Internal("--init: the engine found no berth-init binary to run".into())
        })?;
        args.splice(0..0, [INIT_PATH.to_string(), "--".to_string()]);
        Some(path)
    } else {
        None
    };

    let mut process = Process::default();
    process
        .set_terminal(Some(config.tty))
        .set_console_size(console_size(config, host))
        .set_args(Some(args))
        .set_env(Some(environment(config, &hostname)))
        .set_cwd(working_dir(config, input.rootfs)?)
        .set_user(
            user::UserDb::read(input.rootfs)?
                .resolve(&config.user, host.group_add.as_deref().unwrap_or_default())?,
        )
        .set_capabilities(Some(caps::to_oci(&caps::effective_on(host, info)?)?))
        .set_rlimits(
            Some(security::rlimits(
                host.ulimits.as_deref().unwrap_or_default(),
                info,
            )?)
            .filter(|r| !r.is_empty()),
        )
        .set_no_new_privileges(security.no_new_privileges.then_some(true))
        // Only a non-zero adjustment is written: lowering an inherited
        // score needs CAP_SYS_RESOURCE, which this kind of host lacks.
        .set_oom_score_adj(
            (host.oom_score_adj != 0).then(|| i32::try_from(host.oom_score_adj).unwrap_or(0)),
        );

    let mut resources = resources::resources(host, info, input.cgroup_v2, &mut warnings)?;
    let (devices, device_rules) = devices::devices(host, &mut warnings)?;
    resources.set_devices(Some(device_rules));

    let (mounts, rootfs_propagation) = mounts::mounts(&mounts::MountInput {
        host,
        modes: &modes,
        security: &security,
        cgroup_v2: input.cgroup_v2,
        etc_files: &input.etc_files,
        init_binary,
        ipc_join: input.namespace_joins.ipc.as_deref(),
    })?;
    let (masked, readonly) = security::system_paths(host, &security);
    let sysctl: HashMap<String, String> = security::sysctls(host, &modes)?.into_iter().collect();

    let mut linux = Linux::default();
    linux
        .set_namespaces(Some(namespaces::namespaces(
            &modes,
            &input.namespace_joins,
        )?))
        .set_cgroups_path(Some(cgroups_path(input.id, &host.cgroup_parent)?))
        .set_resources(Some(resources))
        .set_devices(Some(devices))
        .set_sysctl((!sysctl.is_empty()).then_some(sysctl))
        .set_masked_paths(Some(masked))
        .set_readonly_paths(Some(readonly))
        .set_rootfs_propagation(rootfs_propagation)
        // Docker runs privileged containers without seccomp.
        .set_seccomp(if host.privileged {
            None
        } else {
            input.seccomp.clone()
        })
        .set_uid_mappings(None)
        .set_gid_mappings(None);

    let mut root = Root::default();
    root.set_path(input.rootfs.to_path_buf())
        .set_readonly(Some(host.readonly_rootfs));

    let mut spec = Spec::default();
    // The version runc 1.1 and crun 1.8 (Debian 12) accept; the fields used
    // here all exist in it.
    spec.set_version("1.0.2-dev".to_string())
        .set_root(Some(root))
        .set_process(Some(process))
        .set_hostname((modes.uts == ShareMode::Private).then_some(hostname))
        .set_domainname(
            (modes.uts == ShareMode::Private && !config.domainname.is_empty())
                .then(|| config.domainname.clone()),
        )
        .set_mounts(Some(mounts))
        .set_annotations(
            host.annotations
                .as_ref()
                .filter(|a| !a.is_empty())
                .map(|a| a.clone().into_iter().collect()),
        )
        .set_linux(Some(linux));
    Ok((spec, warnings))
}

/// `--hostname`, else the host's name when sharing its UTS or network
/// namespace (Docker's behaviour with `--network host`), else the short id.
fn effective_hostname(
    input: &SpecInput<'_>,
    modes: &namespaces::Modes,
) -> Result<String, SpecError> {
    if !input.config.hostname.is_empty() {
        return Ok(input.config.hostname.clone());
    }
    if modes.uts == ShareMode::Host || modes.net == namespaces::NetMode::Host {
        let name = nix::unistd::gethostname().map_err(|e| {
            SpecError::io(
                "reading the host's name",
                "gethostname",
                std::io::Error::from(e),
            )
        })?;
        return Ok(name.to_string_lossy().into_owned());
    }
    Ok(input.id.chars().take(12).collect())
}

fn console_size(config: &ContainerConfig, host: &HostConfig) -> Option<ConsoleSize> {
    let [height, width] = host.console_size;
    if !(config.tty && height > 0 && width > 0) {
        return None;
    }
    BoxBuilder::default()
        .height(u64::from(height))
        .width(u64::from(width))
        .build()
        .ok()
}

/// Docker's `CreateDaemonEnvironment`: `PATH`, `HOSTNAME` and (with a tty)
/// `TERM=xterm` first, then the config's variables replacing those of the
/// same name or appended; a bare `NAME` unsets it.
fn environment(config: &ContainerConfig, hostname: &str) -> Vec<String> {
    let mut env = vec![
        format!("PATH={DEFAULT_PATH_ENV}"),
        format!("HOSTNAME={hostname}"),
    ];
    if config.tty {
        env.push("TERM=xterm".to_string());
    }
    let mut unset = Vec::new();
    for value in &config.env {
        match value.split_once('=') {
            Some((name, _)) => {
                let prefix = format!("{name}=");
                match env.iter_mut().find(|e| e.starts_with(&prefix)) {
                    Some(slot) => *slot = value.clone(),
                    None => env.push(value.clone()),
                }
                unset.retain(|u| u != name);
            }
            None => unset.push(value.clone()),
        }
    }
    env.retain(|e| {
        let name = e.split_once('=').map_or(e.as_str(), |(n, _)| n);
        !unset.iter().any(|u| u == name)
    });
    env
}

/// `WorkingDir` (default `/`), created inside the rootfs when missing, as
/// Docker does before starting.
fn working_dir(config: &ContainerConfig, rootfs: &Path) -> Result<PathBuf, SpecError> {
    let dir = if config.working_dir.is_empty() {
        "/"
    } else {
        config.working_dir.as_str()
    };
    if !dir.starts_with('/') {
        return Err(SpecError::invalid(format!(
            "the working directory '{dir}' is invalid, it needs to be an absolute path: fix --workdir"
        )));
    }
    let cwd = user_mounts::clean(dir);
    let fd = berth_rootfs::open_in_root(rootfs, &cwd, Some(berth_rootfs::CreateKind::Directory))
        .map_err(|e| {
            SpecError::io(
                format!("creating the working directory {}", cwd.display()),
                rootfs.join(cwd.strip_prefix("/").unwrap_or(&cwd)),
                e.errno()
                    .map(std::io::Error::from)
                    .unwrap_or_else(|| std::io::Error::other(e.to_string())),
            )
        })?;
    let stat = nix::sys::stat::fstat(fd.as_fd())
        .map_err(|e| SpecError::io("checking the working directory", &cwd, e.into()))?;
    if nix::sys::stat::SFlag::from_bits_truncate(stat.st_mode) & nix::sys::stat::SFlag::S_IFMT
        != nix::sys::stat::SFlag::S_IFDIR
    {
        return Err(SpecError::invalid(format!(
            "Cannot mkdir: {} is not a directory: the image has a file there; pick another --workdir",
            cwd.display()
        )));
    }
    Ok(cwd)
}

/// The cgroup of container `id`: `/berth-<id>`, or `<CgroupParent>/<id>`;
/// always absolute. By default flat below the root, like the scopes of
/// Docker's systemd driver (`system.slice/docker-<id>.scope`), not under a
/// shared parent like its cgroupfs driver's `/docker/<id>`: a shared parent
/// must either be made before and removed after every container (on v1 one
/// mkdir and one rmdir per hierarchy, and a cpuset to fill, ~1 ms a run) or
/// stay on the host when no container is left.
pub(crate) fn cgroups_path(id: &str, parent: &str) -> Result<PathBuf, SpecError> {
    if parent.is_empty() {
        return Ok(Path::new("/").join(format!("{CGROUP_PREFIX}{id}")));
    }
    if Path::new(parent)
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(SpecError::invalid(format!(
            "invalid --cgroup-parent {parent:?}: it may not contain '..'"
        )));
    }
    Ok(Path::new("/").join(parent.trim_start_matches('/')).join(id))
}

/// The cgroup resources of `host` (no devices), for `update` of a running container.
pub fn update_resources(
    host: &HostConfig,
    cgroup_v2: bool,
) -> Result<oci_spec::runtime::LinuxResources, SpecError> {
    resources::resources(host, HostInfo::get(), cgroup_v2, &mut Vec::new())
}
