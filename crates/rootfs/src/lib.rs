//! The container's filesystem setup for berth's OCI runtime: spec mounts,
//! devices, pivot_root, masked and read-only paths.
//!
//! Called from the container's init process, already in its new mount
//! namespace, in three steps: [`prepare`] (before the root is switched),
//! [`pivot`], and [`finalize`] (inside the new root).

mod cgroup;
mod devices;
mod error;
mod mountinfo;
mod mounts;
mod options;
mod paths;
mod pivot;
mod resolve;
mod sys;

use std::os::fd::OwnedFd;
use std::path::Path;

use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Spec;

pub use error::RootfsError;
pub use mounts::Placement;

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

/// Sets up the rootfs before the root switch, in the container init's own
/// mount namespace: root propagation (rslave by default, or
/// linux.rootfsPropagation), the rootfs bind-mounted onto itself, the spec's
/// mounts in order, devices (spec and default), the /dev symlinks,
/// /dev/ptmx and /dev/console.
///
/// `placed` returns once the init is in its cgroup (and in its cgroup
/// namespace): a cgroup filesystem shows the cgroup of whoever mounts it,
/// so those mounts wait for it, the others do not. The runtime moves the
/// init meanwhile, so that on cgroup v1 the migration's wait for an RCU
/// grace period overlaps with the mounts. Where nothing is mounted above or
/// below a cgroup mount later, it is made last, after the devices; `placed`
/// is called exactly once, in any case.
pub fn prepare(
    spec: &Spec,
    opts: &RootfsOptions,
    placed: &mut Placement<'_>,
) -> Result<(), RootfsError> {
    if !opts.rootfs.is_absolute() {
        return Err(RootfsError::invalid(
            format!("rootfs {}", opts.rootfs.display()),
            "path is not absolute",
        ));
    }
    let propagation = root_propagation_name(spec);
    let flag = match propagation {
        Some(name) => options::propagation(name).ok_or_else(|| {
            RootfsError::invalid(
                format!("linux.rootfsPropagation ({name})"),
                "not a propagation mode",
            )
        })?,
        // nothing done in the container may reach the host, while host mounts still reach in
        None => MsFlags::MS_SLAVE | MsFlags::MS_REC,
    };
    mount(None::<&str>, "/", None::<&str>, flag, None::<&str>)
        .map_err(|e| RootfsError::sys("root propagation", "mount /", e))?;
    make_parent_private(opts.rootfs)?;
    let sys = |op| move |e| RootfsError::sys(format!("rootfs {}", opts.rootfs.display()), op, e);
    mount(
        Some(opts.rootfs),
        opts.rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(sys("bind mount onto itself"))?;

    let deferred = mounts::mount_all(spec, opts, placed)?;
    if devices::needs_dev_setup(spec) {
        devices::create_devices(spec, opts)?;
        devices::create_symlinks(opts)?;
    }
    if let Some(console) = opts.console {
        devices::mount_console(console, opts)?;
    }
    mounts::mount_deferred(spec, &deferred, opts, placed)
}

/// pivot_root fails when the rootfs' parent mount is shared: make that one
/// mount (not its children) private, as runc does.
fn make_parent_private(rootfs: &Path) -> Result<(), RootfsError> {
    let context = format!("rootfs {}", rootfs.display());
    let entries = mountinfo::read_mountinfo(&context)?;
    let parent = entries
        .iter()
        .filter(|e| rootfs.starts_with(&e.mount_point))
        .max_by_key(|e| e.mount_point.components().count());
    match parent {
        Some(p) if p.shared => mount(
            None::<&str>,
            &p.mount_point,
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(|e| RootfsError::sys(context, "make parent mount private", e)),
        _ => Ok(()),
    }
}

fn root_propagation_name(spec: &Spec) -> Option<&str> {
    spec.linux()
        .as_ref()?
        .rootfs_propagation()
        .as_deref()
        .filter(|s| !s.is_empty())
}

/// Switches the root to `opts.rootfs`: pivot_root(".", ".") and a lazy
/// unmount of the old root, or with `no_pivot` MS_MOVE + chroot. Ends in "/".
pub fn pivot(opts: &RootfsOptions) -> Result<(), RootfsError> {
    pivot::pivot(opts)
}

/// Inside the new root: linux.readonlyPaths, linux.maskedPaths (paths that
/// do not exist are skipped), the /dev tmpfs read-only when asked, the
/// read-only root, and linux.rootfsPropagation applied to the new "/".
pub fn finalize(spec: &Spec, opts: &RootfsOptions) -> Result<(), RootfsError> {
    let linux = spec.linux().as_ref();
    for path in linux
        .and_then(|l| l.readonly_paths().as_ref())
        .into_iter()
        .flatten()
    {
        paths::make_readonly(Path::new(path))?;
    }
    for path in linux
        .and_then(|l| l.masked_paths().as_ref())
        .into_iter()
        .flatten()
    {
        paths::mask(Path::new(path), opts)?;
    }
    let readonly_dev_tmpfs = spec.mounts().iter().flatten().any(|m| {
        m.destination() == Path::new("/dev")
            && m.typ().as_deref() == Some("tmpfs")
            && options::parse(m.options().as_deref().unwrap_or_default())
                .flags
                .contains(MsFlags::MS_RDONLY)
    });
    if readonly_dev_tmpfs {
        paths::readonly_dev()?;
    }
    if opts.readonly {
        paths::readonly_root()?;
    }
    if let Some(name) = root_propagation_name(spec) {
        paths::root_propagation(name)?;
    }
    Ok(())
}

/// Opens `path` inside `root` without ever resolving outside of it: absolute
/// symlinks and ".." stop at `root` as if it were "/" (openat2
/// RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS, or a component-by-component
/// O_NOFOLLOW walk where openat2 is missing). With `create`, missing
/// components are created inside the root: directories, and for
/// [`CreateKind::File`] an empty file as the last one. Returns an O_PATH fd.
pub fn open_in_root(
    root: &Path,
    path: &Path,
    create: Option<CreateKind>,
) -> Result<OwnedFd, RootfsError> {
    resolve::open_in_root(root, path, create)
}
