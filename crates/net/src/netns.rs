//! Named network namespaces: an nsfs bind mount on a file (as `ip netns add`
//! makes them), so that a namespace outlives the processes in it (a
//! container's restarts keep their address) and has a path a runtime can
//! join (`linux.namespaces[].path`).

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

use crate::netlink::Netlink;
use crate::NetError;

/// A network namespace pinned at a path.
#[derive(Debug)]
pub struct Netns {
    path: PathBuf,
    file: File,
}

impl Netns {
    /// Creates a new, empty namespace (loopback up) pinned at `path`.
    pub fn create(path: &Path) -> Result<Self, NetError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| NetError::sys(format!("creating {}", parent.display()), e))?;
        }
        File::create(path).map_err(|e| NetError::sys(format!("creating {}", path.display()), e))?;
        let target = path.to_path_buf();
        // unshare(CLONE_NEWNET) changes only the calling thread, so a
        // short-lived thread makes the namespace without moving this one.
        let made = std::thread::spawn(move || -> Result<(), NetError> {
            unshare(CloneFlags::CLONE_NEWNET)
                .map_err(|e| NetError::sys("unshare(CLONE_NEWNET)", e.into()))?;
            mount(
                Some("/proc/thread-self/ns/net"),
                &target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| {
                NetError::sys(
                    format!("bind-mounting a netns on {}", target.display()),
                    e.into(),
                )
            })?;
            let mut nl = Netlink::open()?;
            nl.set_up(1, true)
        })
        .join()
        .map_err(|_| NetError::Invalid("the netns creation thread panicked".into()))?;
        if let Err(e) = made {
            let _ = umount2(path, MntFlags::MNT_DETACH);
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
        Self::open(path)
    }

    /// Opens a namespace pinned at `path` (or any nsfs path, e.g. `/proc/PID/ns/net`).
    pub fn open(path: &Path) -> Result<Self, NetError> {
        let file = File::open(path)
            .map_err(|e| NetError::sys(format!("opening netns {}", path.display()), e))?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn fd(&self) -> std::os::fd::RawFd {
        self.file.as_raw_fd()
    }

    /// An rtnetlink socket inside this namespace (made on a thread that
    /// enters it; the socket keeps the namespace it was made in).
    pub fn netlink(&self) -> Result<Netlink, NetError> {
        self.run(Netlink::open)?
    }

    /// Runs `f` on a thread inside this namespace.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T, NetError> {
        let fd = self.file.as_fd();
        std::thread::scope(|s| {
            s.spawn(|| {
                setns(fd, CloneFlags::CLONE_NEWNET)
                    .map_err(|e| NetError::sys("setns(CLONE_NEWNET)", e.into()))?;
                Ok(f())
            })
            .join()
            .map_err(|_| NetError::Invalid("a thread in a netns panicked".into()))?
        })
    }

    /// Unpins the namespace at `path` (the kernel frees it, and the links in
    /// it, when no process uses it any more). A missing path is fine.
    pub fn remove(path: &Path) -> Result<(), NetError> {
        match umount2(path, MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => {}
            Err(e) => {
                return Err(NetError::sys(
                    format!("unmounting netns {}", path.display()),
                    e.into(),
                ))
            }
        }
        match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(NetError::sys(format!("removing {}", path.display()), e)),
        }
    }
}

/// Writes a sysctl under `/proc/sys/` (`net/ipv4/ip_forward`).
pub fn sysctl(key: &str, value: &str) -> Result<(), NetError> {
    let path = Path::new("/proc/sys").join(key);
    if std::fs::read_to_string(&path).is_ok_and(|v| v.trim() == value) {
        return Ok(());
    }
    std::fs::write(&path, value)
        .map_err(|e| NetError::sys(format!("writing {}", path.display()), e))
}
