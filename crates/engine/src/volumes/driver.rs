//! The `local` driver's options: `type`, `device` and `o` are handed to
//! mount(2) (Docker's `volume/local`), so a volume can live on a tmpfs, on
//! a block device or an image file with a filesystem (through a loop
//! device that frees itself at unmount), or on NFS.
//!
//! Such a volume is mounted on its `_data` directory when the first
//! container using it starts and unmounted when the last one stops. Who
//! uses it is a file per container in `<runroot>/volumes/<name>/users/`
//! (volatile: after a reboot nothing is mounted and nobody uses it),
//! changed under the volume's lock.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

use super::error::VolumeError;

const VALID_OPTIONS: [&str; 4] = ["type", "o", "device", "size"];

/// Docker's `validateOpts` for the local driver.
pub(crate) fn validate(opts: &BTreeMap<String, String>) -> Result<(), VolumeError> {
    for key in opts.keys() {
        if !VALID_OPTIONS.contains(&key.as_str()) {
            return Err(VolumeError::invalid(format!(
                "invalid option: {key:?}: the local driver takes type=, device= and o="
            )));
        }
    }
    if opts.contains_key("size") {
        return Err(VolumeError::invalid(
            "quota size requested but no quota support: drop -o size= (use type=tmpfs,device=tmpfs,o=size=… for a bounded volume)",
        ));
    }
    for (opt, required) in [("device", "type"), ("type", "device"), ("o", "device")] {
        if opts.contains_key(opt) && !opts.contains_key(required) {
            return Err(VolumeError::invalid(format!(
                "missing required option: {required:?}: -o {opt}= needs -o {required}="
            )));
        }
    }
    if opts.get("type").is_some_and(|t| t.is_empty()) {
        return Err(VolumeError::invalid(
            "invalid option: \"type\" must not be empty",
        ));
    }
    if opts.get("device").is_some_and(|t| t.is_empty()) {
        return Err(VolumeError::invalid(
            "invalid option: \"device\" must not be empty",
        ));
    }
    Ok(())
}

/// Whether the volume's data lives on a filesystem mounted at use.
pub(crate) fn is_mounted_kind(opts: &BTreeMap<String, String>) -> bool {
    opts.contains_key("device")
}

/// Whether something is mounted on `path` (it sits on another device than
/// its parent directory).
pub(crate) fn is_mount_point(path: &Path) -> bool {
    let (Ok(me), Some(Ok(parent))) = (
        std::fs::symlink_metadata(path),
        path.parent().map(std::fs::symlink_metadata),
    ) else {
        return false;
    };
    me.dev() != parent.dev()
}

/// Docker's `mount.ParseOptions`: mount flags, and the rest as data.
fn parse_options(o: &str) -> (MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for opt in o.split(',').filter(|s| !s.is_empty()) {
        let (clear, flag) = match opt {
            "defaults" => (false, MsFlags::empty()),
            "ro" => (false, MsFlags::MS_RDONLY),
            "rw" => (true, MsFlags::MS_RDONLY),
            "suid" => (true, MsFlags::MS_NOSUID),
            "nosuid" => (false, MsFlags::MS_NOSUID),
            "dev" => (true, MsFlags::MS_NODEV),
            "nodev" => (false, MsFlags::MS_NODEV),
            "exec" => (true, MsFlags::MS_NOEXEC),
            "noexec" => (false, MsFlags::MS_NOEXEC),
            "sync" => (false, MsFlags::MS_SYNCHRONOUS),
            "async" => (true, MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (false, MsFlags::MS_DIRSYNC),
            "mand" => (false, MsFlags::MS_MANDLOCK),
            "nomand" => (true, MsFlags::MS_MANDLOCK),
            "atime" => (true, MsFlags::MS_NOATIME),
            "noatime" => (false, MsFlags::MS_NOATIME),
            "diratime" => (true, MsFlags::MS_NODIRATIME),
            "nodiratime" => (false, MsFlags::MS_NODIRATIME),
            "relatime" => (false, MsFlags::MS_RELATIME),
            "norelatime" => (true, MsFlags::MS_RELATIME),
            "strictatime" => (false, MsFlags::MS_STRICTATIME),
            "nostrictatime" => (true, MsFlags::MS_STRICTATIME),
            "bind" => (false, MsFlags::MS_BIND),
            "rbind" => (false, MsFlags::MS_BIND | MsFlags::MS_REC),
            _ => {
                data.push(resolve_addr(opt));
                continue;
            }
        };
        if clear {
            flags.remove(flag);
        } else {
            flags.insert(flag);
        }
    }
    (flags, data.join(","))
}

/// NFS's `addr=` must be an address; Docker resolves a host name there.
fn resolve_addr(opt: &str) -> String {
    let Some(host) = opt.strip_prefix("addr=") else {
        return opt.to_string();
    };
    if host.parse::<std::net::IpAddr>().is_ok() {
        return opt.to_string();
    }
    match std::net::ToSocketAddrs::to_socket_addrs(&(host, 0)) {
        Ok(mut addrs) => match addrs.next() {
            Some(a) => format!("addr={}", a.ip()),
            None => opt.to_string(),
        },
        Err(_) => opt.to_string(),
    }
}

/// Mounts the volume's filesystem on `target`.
pub(crate) fn mount(
    name: &str,
    opts: &BTreeMap<String, String>,
    target: &Path,
) -> Result<(), VolumeError> {
    let fstype = opts.get("type").map(String::as_str).unwrap_or_default();
    let device = opts.get("device").map(String::as_str).unwrap_or_default();
    let (flags, data) = parse_options(opts.get("o").map(String::as_str).unwrap_or_default());
    let fail = |e: nix::Error, what: &str| {
        VolumeError::invalid(format!(
            "error while mounting volume '{name}': failed to mount local volume: mount {device}:{} (type {fstype}, options {data:?}): {what}{e}",
            target.display()
        ))
    };
    // An image file needs a block device in front of it.
    let loop_dev;
    let source: &Path = if fstype != "tmpfs" && Path::new(device).is_file() {
        loop_dev = LoopDevice::attach(Path::new(device), flags.contains(MsFlags::MS_RDONLY))
            .map_err(|e| {
                VolumeError::invalid(format!(
                    "error while mounting volume '{name}': setting up a loop device for {device}: {e}"
                ))
            })?;
        loop_dev.path.as_path()
    } else {
        Path::new(device)
    };
    let data_opt = (!data.is_empty()).then_some(data.as_str());
    nix::mount::mount(Some(source), target, Some(fstype), flags, data_opt).map_err(|e| fail(e, ""))
}

/// Unmounts what [`mount`] mounted (a busy mount is detached).
pub(crate) fn unmount(target: &Path) -> Result<(), VolumeError> {
    match nix::mount::umount2(target, MntFlags::empty()) {
        Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => Ok(()),
        Err(nix::errno::Errno::EBUSY) => nix::mount::umount2(target, MntFlags::MNT_DETACH)
            .map_err(|e| VolumeError::sys("unmounting the volume", target, e)),
        Err(e) => Err(VolumeError::sys("unmounting the volume", target, e)),
    }
}

const LOOP_SET_FD: libc::c_ulong = 0x4C00;
const LOOP_CLR_FD: libc::c_ulong = 0x4C01;
const LOOP_SET_STATUS64: libc::c_ulong = 0x4C04;
const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;
const LO_FLAGS_READ_ONLY: u32 = 1;
const LO_FLAGS_AUTOCLEAR: u32 = 4;

/// The kernel's `struct loop_info64`.
#[repr(C)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; 64],
    lo_crypt_name: [u8; 64],
    lo_encrypt_key: [u8; 32],
    lo_init: [u64; 2],
}

/// A loop device bound to a file with `LO_FLAGS_AUTOCLEAR`: the kernel
/// detaches it when its last user goes (the mount on it, or this handle
/// if the mount failed), so no loop device outlives the volume's mount.
struct LoopDevice {
    path: PathBuf,
    _device: File,
}

impl LoopDevice {
    fn attach(file: &Path, read_only: bool) -> std::io::Result<Self> {
        let backing = OpenOptions::new().read(true).write(!read_only).open(file)?;
        let control = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/loop-control")?;
        for _ in 0..16 {
            // SAFETY: LOOP_CTL_GET_FREE takes no argument and returns a number.
            let n = unsafe { libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE as _) };
            if n < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let path = PathBuf::from(format!("/dev/loop{n}"));
            let device = OpenOptions::new()
                .read(true)
                .write(!read_only)
                .open(&path)?;
            // SAFETY: LOOP_SET_FD takes the backing file's fd.
            if unsafe { libc::ioctl(device.as_raw_fd(), LOOP_SET_FD as _, backing.as_raw_fd()) } < 0
            {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EBUSY) {
                    // Another process took it between GET_FREE and SET_FD.
                    continue;
                }
                return Err(e);
            }
            // SAFETY: an all-zero loop_info64 is valid (plain integers and arrays).
            let mut info: LoopInfo64 = unsafe { std::mem::zeroed() };
            info.lo_flags = LO_FLAGS_AUTOCLEAR | if read_only { LO_FLAGS_READ_ONLY } else { 0 };
            let name = file.as_os_str().as_encoded_bytes();
            let len = name.len().min(63);
            info.lo_file_name[..len].copy_from_slice(&name[..len]);
            // SAFETY: LOOP_SET_STATUS64 reads a loop_info64 that lives across the call.
            if unsafe { libc::ioctl(device.as_raw_fd(), LOOP_SET_STATUS64 as _, &info) } < 0 {
                let e = std::io::Error::last_os_error();
                // SAFETY: LOOP_CLR_FD takes no argument.
                unsafe { libc::ioctl(device.as_raw_fd(), LOOP_CLR_FD as _) };
                return Err(e);
            }
            if !std::fs::metadata(&path)?.file_type().is_block_device() {
                return Err(std::io::Error::other(format!(
                    "{} is not a block device",
                    path.display()
                )));
            }
            return Ok(Self {
                path,
                _device: device,
            });
        }
        Err(std::io::Error::other("no free loop device after 16 tries"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn options_checked_like_docker() {
        validate(&opts(&[])).unwrap();
        validate(&opts(&[
            ("type", "tmpfs"),
            ("device", "tmpfs"),
            ("o", "size=1m"),
        ]))
        .unwrap();
        let e = validate(&opts(&[("foo", "bar")])).unwrap_err();
        assert!(e.to_string().starts_with("invalid option: \"foo\""), "{e}");
        let e = validate(&opts(&[("type", "tmpfs")])).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("missing required option: \"device\""),
            "{e}"
        );
        let e = validate(&opts(&[("o", "size=1m")])).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("missing required option: \"device\""),
            "{e}"
        );
        assert!(validate(&opts(&[("size", "1g")])).is_err());
    }

    #[test]
    fn mount_options_split_into_flags_and_data() {
        let (flags, data) = parse_options("ro,nosuid,size=10m,uid=1000,noexec");
        assert!(flags.contains(MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC));
        assert_eq!(data, "size=10m,uid=1000");
        let (flags, data) = parse_options("ro,rw,addr=127.0.0.1,vers=4");
        assert!(!flags.contains(MsFlags::MS_RDONLY));
        assert_eq!(data, "addr=127.0.0.1,vers=4");
    }
}
