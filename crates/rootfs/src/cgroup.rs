//! `cgroup` / `cgroup2` spec mounts.
//!
//! With its own cgroup namespace the container mounts the hierarchies fresh
//! (the kernel then shows the namespace's root). Without one, it gets bind
//! mounts of its own cgroup directories, so it never sees its siblings.
//! Cgroup v1 is a tmpfs with one directory per hierarchy (plus symlinks for
//! co-mounted controllers: cpu -> cpu,cpuacct), like runc and Docker.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::mount::MsFlags;
use nix::sys::stat::{mkdirat, Mode};
use nix::unistd::symlinkat;

use crate::mountinfo::{read_cgroups, read_mountinfo, CgroupEntry, MountEntry};
use crate::mounts::{mount_bind, with_label, SpecMount};
use crate::sys::{mount_at, remount_bind};
use crate::{CreateKind, RootfsError, RootfsOptions};

pub(crate) fn mount_cgroup(m: &SpecMount, opts: &RootfsOptions) -> Result<(), RootfsError> {
    let mounts: Vec<MountEntry> = read_mountinfo(&m.context)?
        .into_iter()
        .filter(|e| !e.mount_point.starts_with(opts.rootfs))
        .collect();
    let cgroups = read_cgroups(&m.context)?;
    let host_is_unified = mounts
        .iter()
        .any(|e| e.mount_point == Path::new("/sys/fs/cgroup") && e.fs_type == "cgroup2");
    if m.fs_type == "cgroup2" || host_is_unified {
        mount_v2(m, opts, &mounts, &cgroups)
    } else {
        mount_v1(m, opts, &mounts, &cgroups)
    }
}

fn mount_v2(
    m: &SpecMount,
    opts: &RootfsOptions,
    mounts: &[MountEntry],
    cgroups: &[CgroupEntry],
) -> Result<(), RootfsError> {
    if opts.cgroup_ns {
        let target = m.open_target(opts, Some(CreateKind::Directory))?;
        match mount_at(
            Some(Path::new("cgroup2")),
            target.as_fd(),
            Some("cgroup2"),
            m.options.flags,
            None,
        ) {
            Ok(()) => return Ok(()),
            // a user namespace may be refused a fresh mount (no delegation): bind instead
            Err(Errno::EPERM | Errno::EBUSY) => {}
            Err(e) => return Err(RootfsError::sys(m.context.clone(), "mount cgroup2", e)),
        }
    }
    let host = mounts
        .iter()
        .filter(|e| e.fs_type == "cgroup2")
        .min_by_key(|e| e.mount_point.components().count())
        .ok_or_else(|| RootfsError::invalid(&m.context, "no cgroup2 hierarchy is mounted"))?;
    let own = cgroups
        .iter()
        .find(|c| c.controllers.is_empty())
        .ok_or_else(|| {
            RootfsError::invalid(&m.context, "/proc/self/cgroup has no cgroup2 entry")
        })?;
    let source = host_dir(host, &own.path);
    mount_bind(m, opts, &source, MsFlags::MS_REC)
}

/// The host directory of cgroup `path` within hierarchy mount `host`.
fn host_dir(host: &MountEntry, path: &Path) -> PathBuf {
    // The mount may show a sub-tree only (a nested container): paths are relative to its root.
    let relative = path.strip_prefix(&host.root).unwrap_or(Path::new(""));
    host.mount_point.join(relative)
}

/// One v1 (or hybrid-unified) hierarchy as the container will see it.
struct Hierarchy<'a> {
    /// Directory name under the cgroup mount ("cpu,cpuacct", "systemd", "unified").
    name: &'a OsStr,
    host: &'a MountEntry,
    own: &'a CgroupEntry,
    /// Data for a fresh mount: the controllers ("cpu,cpuacct", "none,name=systemd").
    fresh_data: String,
}

fn hierarchies<'a>(mounts: &'a [MountEntry], cgroups: &'a [CgroupEntry]) -> Vec<Hierarchy<'a>> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for host in mounts {
        let Some(name) = host.mount_point.file_name() else {
            continue;
        };
        let own = match host.fs_type.as_str() {
            "cgroup" => {
                let options: HashSet<&str> = host.super_options.split(',').collect();
                cgroups.iter().find(|c| {
                    !c.controllers.is_empty()
                        && c.controllers.split(',').all(|c| options.contains(c))
                })
            }
            // hybrid: the unified hierarchy beside the v1 ones, for systemd
            "cgroup2" => cgroups.iter().find(|c| c.controllers.is_empty()),
            _ => continue,
        };
        let Some(own) = own else { continue };
        if !seen.insert(name) {
            continue;
        }
        let fresh_data = if own.controllers.starts_with("name=") {
            format!("none,{}", own.controllers)
        } else {
            own.controllers.clone()
        };
        out.push(Hierarchy {
            name,
            host,
            own,
            fresh_data,
        });
    }
    out
}

fn mount_v1(
    m: &SpecMount,
    opts: &RootfsOptions,
    mounts: &[MountEntry],
    cgroups: &[CgroupEntry],
) -> Result<(), RootfsError> {
    let target = m.open_target(opts, Some(CreateKind::Directory))?;
    let tmpfs_flags = (m.options.flags - MsFlags::MS_RDONLY)
        | MsFlags::MS_NOSUID
        | MsFlags::MS_NODEV
        | MsFlags::MS_NOEXEC;
    let data = with_label("mode=755", opts.mount_label);
    mount_at(
        Some(Path::new("tmpfs")),
        target.as_fd(),
        Some("tmpfs"),
        tmpfs_flags,
        Some(&data),
    )
    .map_err(m.sys("mount tmpfs for cgroup v1"))?;
    let tmpfs = m.open_target(opts, None)?;

    for h in hierarchies(mounts, cgroups) {
        let context = || format!("{}: hierarchy {}", m.context, h.name.to_string_lossy());
        match mkdirat(tmpfs.as_fd(), h.name, Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(RootfsError::sys(context(), "mkdir", e)),
        }
        let dir =
            open_dir(tmpfs.as_fd(), h.name).map_err(|e| RootfsError::sys(context(), "open", e))?;
        mount_hierarchy(&h, dir.as_fd(), m, opts)
            .map_err(|e| RootfsError::sys(context(), "mount", e))?;
        let dir =
            open_dir(tmpfs.as_fd(), h.name).map_err(|e| RootfsError::sys(context(), "open", e))?;
        remount_bind(
            dir.as_fd(),
            m.options.flags | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            m.options.atime_given,
        )
        .map_err(|e| RootfsError::sys(context(), "remount", e))?;
        comount_links(tmpfs.as_fd(), h.name)
            .map_err(|e| RootfsError::sys(context(), "symlink", e))?;
    }

    if m.options.flags.contains(MsFlags::MS_RDONLY) {
        let flags = tmpfs_flags | MsFlags::MS_RDONLY | MsFlags::MS_REMOUNT;
        mount_at(None, tmpfs.as_fd(), None, flags, Some(&data))
            .map_err(m.sys("remount cgroup tmpfs read-only"))?;
    }
    Ok(())
}

fn mount_hierarchy(
    h: &Hierarchy,
    dir: BorrowedFd<'_>,
    m: &SpecMount,
    opts: &RootfsOptions,
) -> Result<(), Errno> {
    let flags = m.options.flags - MsFlags::MS_RDONLY;
    if opts.cgroup_ns {
        let fresh = if h.host.fs_type == "cgroup2" {
            mount_at(
                Some(Path::new("cgroup2")),
                dir,
                Some("cgroup2"),
                flags,
                None,
            )
        } else {
            mount_at(
                Some(Path::new("cgroup")),
                dir,
                Some("cgroup"),
                flags,
                Some(&h.fresh_data),
            )
        };
        match fresh {
            Ok(()) => return Ok(()),
            Err(Errno::EPERM | Errno::EBUSY) => {}
            Err(e) => return Err(e),
        }
    }
    let source = host_dir(h.host, &h.own.path);
    mount_at(
        Some(&source),
        dir,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )
}

/// "cpu,cpuacct" gets "cpu" and "cpuacct" symlinks beside it.
fn comount_links(tmpfs: BorrowedFd<'_>, name: &OsStr) -> Result<(), Errno> {
    let name_str = name.to_string_lossy();
    if !name_str.contains(',') {
        return Ok(());
    }
    for part in name_str.split(',') {
        match symlinkat(name, tmpfs, part) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn open_dir(dir: BorrowedFd<'_>, name: &OsStr) -> Result<OwnedFd, Errno> {
    openat(
        dir,
        name,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mountinfo::{parse_cgroups, parse_mountinfo};

    #[test]
    fn hierarchies_match_own_cgroups() {
        let mounts = parse_mountinfo(
            "25 1 0:22 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate
27 25 0:24 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
28 25 0:25 /outer /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
29 25 0:26 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
",
        );
        let cgroups = parse_cgroups(
            "4:memory:/user.slice\n3:cpu,cpuacct:/outer/c1\n1:name=systemd:/s\n0::/u\n",
        );
        let h = hierarchies(&mounts, &cgroups);
        let names: Vec<_> = h
            .iter()
            .map(|h| h.name.to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["unified", "systemd", "cpu,cpuacct", "memory"]);
        assert_eq!(h[1].fresh_data, "none,name=systemd");
        assert_eq!(h[2].fresh_data, "cpu,cpuacct");
        assert_eq!(
            host_dir(h[2].host, &h[2].own.path),
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/c1")
        );
        assert_eq!(
            host_dir(h[0].host, &h[0].own.path),
            PathBuf::from("/sys/fs/cgroup/unified/u")
        );
        assert_eq!(
            host_dir(h[3].host, &h[3].own.path),
            PathBuf::from("/sys/fs/cgroup/memory/user.slice")
        );
    }
}
