//! The processes of a container and how they talk.
//!
//! - [`parent`]: the runtime CLI process creating a container: validates,
//!   creates the cgroup, clones the init, writes id maps, runs the
//!   runtime-namespace hooks, records the state.
//! - [`spawn`]: cloning a process into its namespaces, where it goes on as
//!   a fork of the runtime or re-executes it from a read-only or sealed view
//!   of the binary ([`sealed_exe`]); [`fork_safety`] decides which.
//! - [`init`]: the container's init, from its clone until it execve's the
//!   user's process (through the [`dmz`] when forked).
//! - [`exec`]: a process entering a running container (`exec`).
//! - [`channel`]: the typed messages between them.

pub mod channel;
pub mod dmz;
pub mod exec;
pub mod fork_safety;
pub mod init;
pub mod parent;
pub mod sealed_exe;
pub mod security;
pub mod spawn;
pub mod tty_proxy;
pub mod wait;

use std::path::PathBuf;

use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};
use serde::{Deserialize, Serialize};

/// What the parent tells the container's init.
#[derive(Debug, Serialize, Deserialize)]
pub struct InitConfig {
    pub id: String,
    pub spec: Spec,
    pub bundle: PathBuf,
    /// Absolute host path of the rootfs.
    pub rootfs: PathBuf,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: i32,
    /// The init creates a new user namespace (clone did; maps are written).
    pub new_user_ns: bool,
    /// The init must unshare a new cgroup namespace (after it was moved into
    /// its cgroup).
    pub new_cgroup_ns: bool,
    /// The init is moved into its cgroup after [`channel::ParentMsg::Begin`]
    /// and waits for [`channel::ParentMsg::Placed`] only where that
    /// matters (cgroup mounts, the cgroup namespace), so that its mounts
    /// overlap with the move (forked inits on cgroup v1 and hybrid hosts).
    #[serde(default)]
    pub placed_later: bool,
    /// Ask the parent to run prestart/createRuntime hooks before pivot.
    pub runtime_hooks: bool,
    /// The OCI state (status "creating") given to createContainer and
    /// startContainer hooks.
    pub hook_state: String,
    /// Where compiled seccomp programs are cached (`<root>/.seccomp-cache`).
    pub seccomp_cache: PathBuf,
}

/// What the parent tells a process entering a running container.
#[derive(Debug, Serialize, Deserialize)]
pub struct ExecConfig {
    pub id: String,
    /// The namespaces to join, as `/proc/<init>/ns/<name>` paths.
    pub namespaces: Vec<(LinuxNamespaceType, PathBuf)>,
    pub process: Process,
    /// The container's seccomp profile, applied to exec'd processes too.
    pub seccomp: Option<oci_spec::runtime::LinuxSeccomp>,
    pub preserve_fds: i32,
    /// The container's OCI state, for a seccomp listener.
    pub state_json: String,
    /// Where compiled seccomp programs are cached.
    pub seccomp_cache: PathBuf,
}
