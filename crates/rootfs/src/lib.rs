//! The container's filesystem setup for berth's OCI runtime: spec mounts,
//! devices, pivot_root, masked and read-only paths.
//!
//! Called from the container's init process, already in its new mount
//! namespace, in three steps: [`prepare`] (before the root is switched),
//! [`pivot`], and [`finalize`] (inside the new root).

mod error;

use std::os::fd::OwnedFd;
use std::path::Path;

use oci_spec::runtime::Spec;

pub use error::RootfsError;

/// What the runtime knows about the container that the spec alone does not say.
#[derive(Debug, Clone, Copy)]
pub struct RootfsOptions<'a> {
    /// Absolute host path of `spec.root.path`, already resolved against the bundle.
    pub rootfs: &'a Path,
    /// `spec.root.readonly`.
    pub readonly: bool,
    /// runc's `--no-pivot`: MS_MOVE + chroot instead of pivot_root.
    pub no_pivot: bool,
    /// pty slave (a path valid at [`prepare`] time) to bind-mount at /dev/console.
    pub console: Option<&'a Path>,
    /// The container has its own user namespace.
    pub user_ns: bool,
    /// The container has its own cgroup namespace.
    pub cgroup_ns: bool,
    /// SELinux label for the mounts the runtime creates (only used where SELinux is on).
    pub mount_label: Option<&'a str>,
}

/// What [`open_in_root`] creates when the path does not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateKind {
    /// Missing components, the last one included, become directories.
    Directory,
    /// Missing parents become directories, the last component an empty file.
    File,
}

/// Sets up the rootfs before the root switch. See the crate docs.
pub fn prepare(spec: &Spec, opts: &RootfsOptions) -> Result<(), RootfsError> {
    let _ = (spec, opts);
    Err(RootfsError::invalid("prepare", "not implemented yet"))
}

/// Switches the root to `opts.rootfs` and changes directory to the new "/".
pub fn pivot(opts: &RootfsOptions) -> Result<(), RootfsError> {
    let _ = opts;
    Err(RootfsError::invalid("pivot", "not implemented yet"))
}

/// Masked paths, read-only paths, read-only root and root propagation, inside the new root.
pub fn finalize(spec: &Spec, opts: &RootfsOptions) -> Result<(), RootfsError> {
    let _ = (spec, opts);
    Err(RootfsError::invalid("finalize", "not implemented yet"))
}

/// Opens `path` inside `root` without ever resolving outside of it.
pub fn open_in_root(
    root: &Path,
    path: &Path,
    create: Option<CreateKind>,
) -> Result<OwnedFd, RootfsError> {
    let _ = (root, path, create);
    Err(RootfsError::invalid("open_in_root", "not implemented yet"))
}
