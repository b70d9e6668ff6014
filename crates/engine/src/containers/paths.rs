//! Where a container's files live.
//!
//! Persistent (`<root>/containers/<id>/`): the log, which outlives reboots
//! like the container does. Volatile (`<runroot>/containers/<id>/`): the OCI
//! bundle, the monitor's state (pid, attach socket, exit file), gone after
//! a reboot as the processes are, and the generated /etc files, which every
//! start writes anew (on tmpfs: no new inodes on the host's disk per run).

use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct ContainerPaths {
    /// `<root>/containers/<id>`.
    pub dir: PathBuf,
    /// `<runroot>/containers/<id>`: the monitor's state dir.
    pub run_dir: PathBuf,
    /// The overlay mount point, `<root>/snapshots/<id>/merged`.
    pub rootfs: PathBuf,
    id: String,
}

impl ContainerPaths {
    pub fn new(root: &Path, runroot: &Path, id: &str) -> Self {
        Self {
            dir: root.join("containers").join(id),
            run_dir: runroot.join("containers").join(id),
            rootfs: root.join("snapshots").join(id).join("merged"),
            id: id.to_string(),
        }
    }

    pub fn hostname(&self) -> PathBuf {
        self.run_dir.join("hostname")
    }

    pub fn hosts(&self) -> PathBuf {
        self.run_dir.join("hosts")
    }

    pub fn resolv_conf(&self) -> PathBuf {
        self.run_dir.join("resolv.conf")
    }

    /// Docker's `<id>-json.log` (the `local` driver uses the same name).
    pub fn log_file(&self) -> PathBuf {
        self.dir.join(format!("{}-json.log", self.id))
    }

    /// The OCI bundle, `config.json` with `root.path` = [`Self::rootfs`]:
    /// the run dir itself. A directory of its own would be one more to
    /// make at each start and remove at each exit, which on a filesystem
    /// mounted `discard` is a block discarded on the way out.
    pub fn bundle(&self) -> PathBuf {
        self.run_dir.clone()
    }

    /// The bundle's `config.json`.
    pub fn spec(&self) -> PathBuf {
        self.run_dir.join("config.json")
    }

    pub fn monitor_config(&self) -> PathBuf {
        self.run_dir.join("monitor.json")
    }

    /// Serialises lifecycle operations on one container across processes.
    pub fn lock_file(&self) -> PathBuf {
        self.run_dir.with_extension("lock")
    }
}
