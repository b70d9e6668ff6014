//! /dev: the spec's `linux.devices` and the defaults every container gets,
//! the /dev/fd and stdio symlinks, /dev/ptmx and /dev/console.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::mount::MsFlags;
use nix::sys::stat::{fchmodat, fstatat, makedev, mknodat, FchmodatFlags, Mode, SFlag};
use nix::unistd::{fchownat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use oci_spec::runtime::{LinuxDeviceType, Spec};

use crate::resolve::open_in_root;
use crate::sys::mount_at;
use crate::{CreateKind, RootfsError, RootfsOptions};

/// A device node to create: the spec's, or one of the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeviceNode {
    pub path: PathBuf,
    pub kind: SFlag,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The devices the runtime spec requires in every container (runc's AllowedDevices).
const DEFAULT_DEVICES: &[(&str, u64, u64)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

const DEV_SYMLINKS: &[(&str, &str)] = &[
    ("/proc/self/fd", "fd"),
    ("/proc/self/fd/0", "stdin"),
    ("/proc/self/fd/1", "stdout"),
    ("/proc/self/fd/2", "stderr"),
];

/// The spec's devices followed by the defaults it does not override.
pub(crate) fn device_list(spec: &Spec) -> Result<Vec<DeviceNode>, RootfsError> {
    let mut nodes = Vec::new();
    let spec_devices = spec.linux().as_ref().and_then(|l| l.devices().as_ref());
    for (index, d) in spec_devices.into_iter().flatten().enumerate() {
        let context = || format!("linux.devices[{index}] ({})", d.path().display());
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(RootfsError::invalid(
                    context(),
                    "type \"a\" is not a device node type",
                ))
            }
        };
        let (Ok(major), Ok(minor)) = (u64::try_from(d.major()), u64::try_from(d.minor())) else {
            return Err(RootfsError::invalid(
                context(),
                "negative major or minor number",
            ));
        };
        if !d.path().is_absolute() {
            return Err(RootfsError::invalid(context(), "path is not absolute"));
        }
        nodes.push(DeviceNode {
            path: d.path().clone(),
            kind,
            major,
            minor,
            mode: d.file_mode().unwrap_or(0o666) & 0o7777,
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        });
    }
    for (path, major, minor) in DEFAULT_DEVICES {
        if nodes.iter().any(|n| n.path == Path::new(path)) {
            continue;
        }
        nodes.push(DeviceNode {
            path: PathBuf::from(path),
            kind: SFlag::S_IFCHR,
            major: *major,
            minor: *minor,
            mode: 0o666,
            uid: 0,
            gid: 0,
        });
    }
    Ok(nodes)
}

/// True unless the spec bind-mounts a /dev of its own (then it is left alone, as runc does).
pub(crate) fn needs_dev_setup(spec: &Spec) -> bool {
    !spec.mounts().iter().flatten().any(|m| {
        m.destination() == Path::new("/dev")
            && (m.typ().as_deref() == Some("bind")
                || m.options()
                    .iter()
                    .flatten()
                    .any(|o| o == "bind" || o == "rbind"))
    })
}

pub(crate) fn create_devices(spec: &Spec, opts: &RootfsOptions) -> Result<(), RootfsError> {
    for node in device_list(spec)? {
        let context = format!("device {}", node.path.display());
        if opts.user_ns {
            bind_device(&node, opts)
                .map_err(|e| RootfsError::sys(&context, "bind mount host device", e))?;
            continue;
        }
        match make_node(&node, opts) {
            Ok(()) => {}
            // mknod refused (a device cgroup or seccomp in a nested setup): use the host's node
            Err(Errno::EPERM) => bind_device(&node, opts)
                .map_err(|e| RootfsError::sys(&context, "bind mount host device", e))?,
            Err(e) => return Err(RootfsError::sys(&context, "mknod", e)),
        }
    }
    Ok(())
}

fn split(path: &Path) -> Result<(&Path, &Path), Errno> {
    let parent = path.parent().ok_or(Errno::EINVAL)?;
    let name = path.file_name().ok_or(Errno::EINVAL)?;
    Ok((parent, Path::new(name)))
}

fn make_node(node: &DeviceNode, opts: &RootfsOptions) -> Result<(), Errno> {
    let (parent, name) = split(&node.path)?;
    let dir = open_in_root(opts.rootfs, parent, Some(CreateKind::Directory)).map_err(errno)?;
    let mode = Mode::from_bits_truncate(node.mode);
    let dev = makedev(node.major, node.minor);
    match mknodat(&dir, name, node.kind, mode, dev) {
        Ok(()) => {}
        Err(Errno::EEXIST) => {
            if is_node(dir.as_fd(), name, node.kind, dev)? {
                // the image has this very node already: keep it, as runc does
                return Ok(());
            }
            // anything else (a symlink that would redirect later users of the
            // node, a regular file) is replaced
            unlinkat(&dir, name, UnlinkatFlags::NoRemoveDir)?;
            mknodat(&dir, name, node.kind, mode, dev)?;
        }
        Err(e) => return Err(e),
    }
    // mknod applied the umask; the spec's mode is meant literally. The name
    // was just created as a node, so following it cannot leave /dev.
    fchmodat(&dir, name, mode, FchmodatFlags::FollowSymlink)?;
    fchownat(
        &dir,
        name,
        Some(Uid::from_raw(node.uid)),
        Some(Gid::from_raw(node.gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
}

fn is_node(dir: BorrowedFd<'_>, name: &Path, kind: SFlag, dev: libc::dev_t) -> Result<bool, Errno> {
    let st = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
    let found = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    Ok(found == kind && (kind == SFlag::S_IFIFO || st.st_rdev == dev))
}

/// In a user namespace mknod is not allowed: bind the host's node instead.
fn bind_device(node: &DeviceNode, opts: &RootfsOptions) -> Result<(), Errno> {
    let target = file_target(opts, &node.path)?;
    mount_at(
        Some(&node.path),
        target.as_fd(),
        None,
        MsFlags::MS_BIND,
        None,
    )
}

/// An fd for a bind mount target at `path`: an existing regular file or node
/// is used as it is; a symlink there is replaced by an empty file, so that
/// the mount lands at `path` and not wherever the image's link points.
fn file_target(opts: &RootfsOptions, path: &Path) -> Result<OwnedFd, Errno> {
    let (parent, name) = split(path)?;
    let dir = open_in_root(opts.rootfs, parent, Some(CreateKind::Directory)).map_err(errno)?;
    let nofollow = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    match fstatat(&dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK => {
            unlinkat(&dir, name, UnlinkatFlags::NoRemoveDir)?;
        }
        Ok(_) => return openat(&dir, name, nofollow, Mode::empty()),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(e),
    }
    let create =
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    drop(openat(&dir, name, create, Mode::from_bits_truncate(0o644))?);
    openat(&dir, name, nofollow, Mode::empty())
}

fn errno(e: RootfsError) -> Errno {
    e.errno().unwrap_or(Errno::EINVAL)
}

/// /dev/fd, /dev/std{in,out,err}, /dev/core and /dev/ptmx -> pts/ptmx.
pub(crate) fn create_symlinks(opts: &RootfsOptions) -> Result<(), RootfsError> {
    let dev = open_in_root(opts.rootfs, Path::new("/dev"), Some(CreateKind::Directory))?;
    let link = |target: &str, name: &str| -> Result<(), RootfsError> {
        match symlinkat(target, dev.as_fd(), name) {
            Ok(()) | Err(Errno::EEXIST) => Ok(()),
            Err(e) => Err(RootfsError::sys(
                format!("symlink /dev/{name} -> {target}"),
                "symlinkat",
                e,
            )),
        }
    };
    for (target, name) in DEV_SYMLINKS {
        link(target, name)?;
    }
    if Path::new("/proc/kcore").exists() {
        link("/proc/kcore", "core")?;
    }
    replace_with_link(dev.as_fd(), "ptmx", "pts/ptmx")
}

/// The container's /dev/ptmx must be its devpts instance's, whatever the image has.
fn replace_with_link(dev: BorrowedFd<'_>, name: &str, target: &str) -> Result<(), RootfsError> {
    let context = || format!("symlink /dev/{name} -> {target}");
    match unlinkat(dev, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(RootfsError::sys(context(), "unlink", e)),
    }
    symlinkat(target, dev, name).map_err(|e| RootfsError::sys(context(), "symlinkat", e))
}

/// Bind-mounts the pty slave `console` at /dev/console.
pub(crate) fn mount_console(console: &Path, opts: &RootfsOptions) -> Result<(), RootfsError> {
    let context = format!("console {}", console.display());
    let target = file_target(opts, Path::new("/dev/console"))
        .map_err(|e| RootfsError::sys(&context, "create /dev/console", e))?;
    mount_at(Some(console), target.as_fd(), None, MsFlags::MS_BIND, None)
        .map_err(|e| RootfsError::sys(&context, "bind mount at /dev/console", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_devices_override_defaults() {
        let spec: Spec = serde_json::from_str(
            r#"{"ociVersion":"1.0.2","linux":{"devices":[
                {"path":"/dev/null","type":"c","major":1,"minor":3,"fileMode":384,"uid":7,"gid":8},
                {"path":"/dev/fuse","type":"c","major":10,"minor":229},
                {"path":"/dev/loop9","type":"b","major":7,"minor":9},
                {"path":"/dev/fifo","type":"p","major":0,"minor":0}
            ]}}"#,
        )
        .map_err(|e| e.to_string())
        .unwrap_or_else(|e| panic!("spec: {e}"));
        let nodes = device_list(&spec).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(nodes.len(), 4 + 5);
        assert_eq!(nodes[0].mode, 0o600);
        assert_eq!((nodes[0].uid, nodes[0].gid), (7, 8));
        assert_eq!(nodes[1].mode, 0o666);
        assert_eq!(nodes[2].kind, SFlag::S_IFBLK);
        assert_eq!(nodes[3].kind, SFlag::S_IFIFO);
        assert_eq!(
            nodes
                .iter()
                .filter(|n| n.path == Path::new("/dev/null"))
                .count(),
            1
        );
        assert!(nodes
            .iter()
            .any(|n| n.path == Path::new("/dev/tty") && n.major == 5));
    }

    #[test]
    fn type_a_is_rejected() {
        let spec: Spec = serde_json::from_str(
            r#"{"ociVersion":"1.0.2","linux":{"devices":[{"path":"/dev/x","type":"a","major":1,"minor":1}]}}"#,
        )
        .unwrap_or_else(|e| panic!("spec: {e}"));
        let err = device_list(&spec).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("rootfs: linux.devices[0] (/dev/x): type \"a\" is not a device node type")
        );
    }
}
