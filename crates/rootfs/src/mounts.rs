//! The spec's `mounts`, in order, each resolved inside the rootfs.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::mount::MsFlags;
use oci_spec::runtime::{Mount, Spec};

use crate::options::{self, MountOptions};
use crate::resolve::open_in_root;
use crate::sys::{mount_at, mount_setattr, remount_bind};
use crate::{cgroup, CreateKind, RootfsError, RootfsOptions};

/// Entries under /proc that may be mounted over: the ones lxcfs emulates
/// (runc's checkProcMount). Anything else would let a spec hide /proc from
/// the masking that comes later.
const ALLOWED_PROC_MOUNTS: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
];

/// One spec mount, with what every step of mounting it needs.
pub(crate) struct SpecMount<'a> {
    pub context: String,
    pub destination: PathBuf,
    pub fs_type: String,
    pub source: Option<&'a Path>,
    pub options: MountOptions,
}

impl SpecMount<'_> {
    pub fn sys(&self, op: &'static str) -> impl FnOnce(Errno) -> RootfsError + '_ {
        move |e| RootfsError::sys(self.context.clone(), op, e)
    }

    /// Opens the destination inside the rootfs, creating it as `kind` when missing.
    pub fn open_target(
        &self,
        opts: &RootfsOptions,
        kind: Option<CreateKind>,
    ) -> Result<OwnedFd, RootfsError> {
        open_in_root(opts.rootfs, &self.destination, kind).map_err(|e| self.with_context(e))
    }

    pub fn with_context(&self, e: RootfsError) -> RootfsError {
        match e {
            RootfsError::Sys { op, source, .. } => {
                RootfsError::sys(format!("{}: {}", self.context, "destination"), op, source)
            }
            other => other,
        }
    }

    /// A cgroup filesystem (not a bind mount of one): what it shows depends
    /// on the cgroup of the process that mounts it.
    fn shows_own_cgroup(&self) -> bool {
        matches!(self.fs_type.as_str(), "cgroup" | "cgroup2") && !self.options.is_bind()
    }

    /// Data for the filesystem, with the SELinux mount label where one applies.
    pub fn data(&self, opts: &RootfsOptions) -> String {
        with_label(&self.options.data, opts.mount_label)
    }
}

/// Appends `context="label"` to a filesystem's mount data, where SELinux is on.
pub(crate) fn with_label(data: &str, label: Option<&str>) -> String {
    match label {
        Some(label) if !label.is_empty() && selinux_enabled() => {
            if data.is_empty() {
                format!("context=\"{label}\"")
            } else {
                format!("{data},context=\"{label}\"")
            }
        }
        _ => data.to_string(),
    }
}

fn selinux_enabled() -> bool {
    Path::new("/sys/fs/selinux/enforce").exists()
}

/// Lexically normalised absolute destination ("run/../x" → "/x").
fn clean_destination(dest: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in dest.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// Mounts the spec's mounts in order, but for the cgroup filesystems,
/// which show the cgroup the init is in: those wait for `placed` (see
/// [`crate::prepare`]). One that no later mount is above or below is
/// returned, to be mounted after the rest; any other waits in its place.
pub(crate) fn mount_all<'s>(
    spec: &'s Spec,
    opts: &RootfsOptions,
    placed: &mut Placement<'_>,
) -> Result<Vec<SpecMount<'s>>, RootfsError> {
    let has_net_ns = has_net_ns(spec);
    let mounts: Vec<&Mount> = spec.mounts().iter().flatten().collect();
    let mut deferred = Vec::new();
    for (index, m) in mounts.iter().enumerate() {
        let spec_mount = describe(index, m);
        if spec_mount.shows_own_cgroup() {
            if nothing_later_overlaps(&spec_mount.destination, &mounts[index + 1..]) {
                deferred.push(spec_mount);
                continue;
            }
            placed.wait()?;
        }
        mount_one(&spec_mount, opts, has_net_ns)?;
    }
    Ok(deferred)
}

/// Mounts what [`mount_all`] deferred, once the init is in its cgroup.
pub(crate) fn mount_deferred(
    spec: &Spec,
    deferred: &[SpecMount<'_>],
    opts: &RootfsOptions,
    placed: &mut Placement<'_>,
) -> Result<(), RootfsError> {
    placed.wait()?;
    let has_net_ns = has_net_ns(spec);
    for m in deferred {
        mount_one(m, opts, has_net_ns)?;
    }
    Ok(())
}

/// No mount in `later` is at, above or below `destination`: mounting it
/// after them changes nothing.
fn nothing_later_overlaps(destination: &Path, later: &[&Mount]) -> bool {
    later.iter().all(|l| {
        let dest = clean_destination(l.destination());
        !dest.starts_with(destination) && !destination.starts_with(&dest)
    })
}

/// The caller's wait for the init's cgroup placement, run once.
pub struct Placement<'a> {
    wait: Option<&'a mut dyn FnMut() -> Result<(), String>>,
}

impl<'a> Placement<'a> {
    pub fn new(wait: &'a mut dyn FnMut() -> Result<(), String>) -> Self {
        Placement { wait: Some(wait) }
    }

    fn wait(&mut self) -> Result<(), RootfsError> {
        match self.wait.take() {
            Some(wait) => wait().map_err(|reason| RootfsError::invalid("cgroup placement", reason)),
            None => Ok(()),
        }
    }
}

fn has_net_ns(spec: &Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter()
                .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Network)
        })
}

/// Parses spec mount `index` and names it for error messages.
pub(crate) fn describe(index: usize, m: &Mount) -> SpecMount<'_> {
    let options = options::parse(m.options().as_deref().unwrap_or_default());
    let mut fs_type = m.typ().clone().unwrap_or_default();
    if fs_type.is_empty() && options.is_bind() {
        fs_type = "bind".to_string();
    }
    let destination = clean_destination(m.destination());
    let context = format!(
        "mounts[{index}] ({} on {})",
        if fs_type.is_empty() { "none" } else { &fs_type },
        m.destination().display()
    );
    SpecMount {
        context,
        destination,
        fs_type,
        source: m.source().as_deref(),
        options,
    }
}

fn mount_one(m: &SpecMount, opts: &RootfsOptions, has_net_ns: bool) -> Result<(), RootfsError> {
    check_proc_destination(m)?;
    if m.options.idmap {
        return Err(RootfsError::invalid(
            &m.context,
            "idmapped mounts are not supported",
        ));
    }
    let mut bind_source = if m.options.is_bind() || m.fs_type == "bind" {
        Some(
            m.source
                .ok_or_else(|| RootfsError::invalid(&m.context, "bind mount without a source"))?,
        )
    } else {
        None
    };
    // A sysfs is tied to the network namespace of whoever mounts it; without a
    // network namespace of its own a user-namespaced container may not mount
    // one, so it gets the host's (runc does the same).
    if m.fs_type == "sysfs" && opts.user_ns && !has_net_ns {
        bind_source = Some(Path::new("/sys"));
    }
    match (bind_source, m.fs_type.as_str()) {
        (Some(source), _) => mount_bind(m, opts, source, MsFlags::MS_REC)?,
        (None, "cgroup" | "cgroup2") => cgroup::mount_cgroup(m, opts)?,
        (None, _) if m.options.flags.contains(MsFlags::MS_REMOUNT) => {
            let target = m.open_target(opts, None)?;
            let data = m.data(opts);
            mount_at(None, target.as_fd(), None, m.options.flags, Some(&data))
                .map_err(m.sys("remount"))?;
        }
        (None, "") => {
            return Err(RootfsError::invalid(
                &m.context,
                "no type, and not a bind mount",
            ))
        }
        (None, fs_type) => {
            let target = m.open_target(opts, Some(CreateKind::Directory))?;
            let source = m.source.unwrap_or(Path::new(fs_type));
            let data = if matches!(fs_type, "proc" | "sysfs") {
                m.options.data.clone()
            } else {
                m.data(opts)
            };
            let mut flags = m.options.flags;
            if fs_type == "tmpfs" && m.destination == Path::new("/dev") {
                // devices go in first: finalize() makes it read-only
                flags -= MsFlags::MS_RDONLY;
            }
            match mount_at(
                Some(source),
                target.as_fd(),
                Some(fs_type),
                flags,
                Some(&data),
            ) {
                // a user namespace without its own IPC namespace cannot mount mqueue: share the host's
                Err(Errno::EPERM)
                    if fs_type == "mqueue" && opts.user_ns && Path::new("/dev/mqueue").is_dir() =>
                {
                    drop(target);
                    return mount_bind(m, opts, Path::new("/dev/mqueue"), MsFlags::empty())
                        .and_then(|()| apply_propagation(m, opts));
                }
                other => other.map_err(m.sys("mount"))?,
            }
        }
    }
    apply_propagation(m, opts)
}

/// Bind-mounts the host path `source`; `rec` (MS_REC or empty) is added to the
/// spec's own MS_REC for the sysfs and mqueue substitutes.
pub(crate) fn mount_bind(
    m: &SpecMount,
    opts: &RootfsOptions,
    source: &Path,
    rec: MsFlags,
) -> Result<(), RootfsError> {
    let meta = std::fs::metadata(source).map_err(|e| RootfsError::Io {
        context: m.context.clone(),
        op: "stat bind source",
        path: source.to_path_buf(),
        source: e,
    })?;
    let kind = if meta.is_dir() {
        CreateKind::Directory
    } else {
        CreateKind::File
    };
    let target = m.open_target(opts, Some(kind))?;
    let rec = (m.options.flags | rec) & MsFlags::MS_REC;
    mount_at(
        Some(source),
        target.as_fd(),
        None,
        MsFlags::MS_BIND | rec,
        None,
    )
    .map_err(m.sys("bind mount"))?;
    if m.options.needs_bind_remount() {
        // the fd above is the covered directory; the new mount is on top of it now
        let target = m.open_target(opts, None)?;
        remount_bind(target.as_fd(), m.options.flags, m.options.atime_given)
            .map_err(m.sys("remount bind"))?;
    }
    Ok(())
}

/// Propagation options and recursive (`r*`) attributes, after the mount exists.
pub(crate) fn apply_propagation(m: &SpecMount, opts: &RootfsOptions) -> Result<(), RootfsError> {
    if m.options.propagation.is_empty() && m.options.recursive.is_empty() {
        return Ok(());
    }
    let target = m.open_target(opts, None)?;
    for flag in &m.options.propagation {
        mount_at(None, target.as_fd(), None, *flag, None).map_err(m.sys("set propagation"))?;
    }
    if !m.options.recursive.is_empty() {
        mount_setattr(target.as_fd(), m.options.recursive, true).map_err(|e| match e {
            Errno::ENOSYS => RootfsError::invalid(
                &m.context,
                "recursive mount options (rro, rnosuid, …) need mount_setattr (Linux 5.12)",
            ),
            e => RootfsError::sys(m.context.clone(), "mount_setattr", e),
        })?;
    }
    Ok(())
}

fn check_proc_destination(m: &SpecMount) -> Result<(), RootfsError> {
    let dest = &m.destination;
    if dest == Path::new("/proc") {
        if m.fs_type == "proc" {
            return Ok(());
        }
        return Err(RootfsError::invalid(
            &m.context,
            "/proc can only be mounted as type proc",
        ));
    }
    if !dest.starts_with("/proc") || ALLOWED_PROC_MOUNTS.iter().any(|p| dest == Path::new(p)) {
        return Ok(());
    }
    Err(RootfsError::invalid(
        &m.context,
        format!(
            "{} is inside /proc and not one of the entries that may be mounted over",
            dest.display()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cgroup_mount_is_deferred_only_past_unrelated_mounts() {
        let mount = |dest: &str| {
            oci_spec::runtime::MountBuilder::default()
                .destination(dest)
                .typ("tmpfs")
                .build()
                .unwrap()
        };
        let cgroup = Path::new("/sys/fs/cgroup");
        let docker_later = [mount("/dev/mqueue"), mount("/dev/shm"), mount("/etc/hosts")];
        assert!(nothing_later_overlaps(
            cgroup,
            &docker_later.iter().collect::<Vec<_>>()
        ));
        for overlapping in [
            "/sys/fs/cgroup/memory",
            "/sys",
            "/sys/fs/cgroup",
            "/sys/fs/../fs/cgroup/x",
        ] {
            let later = [mount("/dev/shm"), mount(overlapping)];
            assert!(
                !nothing_later_overlaps(cgroup, &later.iter().collect::<Vec<_>>()),
                "{overlapping}"
            );
        }
        assert!(nothing_later_overlaps(cgroup, &[]));
        // A sibling whose name merely starts the same is unrelated.
        let sibling = [mount("/sys/fs/cgroupfoo")];
        assert!(nothing_later_overlaps(
            cgroup,
            &sibling.iter().collect::<Vec<_>>()
        ));
    }

    #[test]
    fn destinations_are_normalised() {
        assert_eq!(
            clean_destination(Path::new("run/../x/./y")),
            PathBuf::from("/x/y")
        );
        assert_eq!(
            clean_destination(Path::new("/../../etc")),
            PathBuf::from("/etc")
        );
    }

    #[test]
    fn proc_destinations() {
        let mk = |dest: &str, typ: &str| {
            oci_spec::runtime::MountBuilder::default()
                .destination(dest)
                .typ(typ)
                .source("x")
                .build()
                .map_err(|e| e.to_string())
        };
        let check = |dest: &str, typ: &str| -> bool {
            let Ok(m) = mk(dest, typ) else { return false };
            check_proc_destination(&describe(0, &m)).is_ok()
        };
        assert!(check("/proc", "proc"));
        assert!(!check("/proc", "tmpfs"));
        assert!(check("/proc/meminfo", "bind"));
        assert!(!check("/proc/sys", "tmpfs"));
        assert!(!check("/proc/x/../kcore", "bind"));
        assert!(check("/process", "tmpfs"));
    }

    #[test]
    fn context_names_the_mount() {
        let m = oci_spec::runtime::MountBuilder::default()
            .destination("/run")
            .typ("tmpfs")
            .build()
            .map_err(|e| e.to_string());
        let m = m.as_ref().map(|m| describe(3, m).context);
        assert_eq!(m.as_deref(), Ok("mounts[3] (tmpfs on /run)"));
    }
}
