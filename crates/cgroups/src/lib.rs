//! Linux control groups for berth's OCI runtime: cgroup v1 (legacy), hybrid
//! (v1 controllers plus a controller-less cgroup2 tree at
//! `/sys/fs/cgroup/unified`) and pure cgroup v2 (unified).
//!
//! The mode is always detected from the filesystem types under
//! `/sys/fs/cgroup`, never assumed. [`manager`] returns a [`CgroupManager`]
//! for one container's cgroup that creates it, writes OCI
//! `linux.resources` into it, moves processes in, freezes, reports stats and
//! removes it again.

use std::path::{Path, PathBuf};

mod devices;
mod error;
mod fsutil;
mod hybrid;
mod migration_primer;
mod mount;
pub mod stats;
mod v1;
mod v2;

pub use error::{CgroupError, ErrorKind};
pub use migration_primer::MigrationPrimer;
pub use stats::Stats;

/// Which cgroup layout the host uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CgroupMode {
    /// cgroup v1 controllers only.
    Legacy,
    /// cgroup v1 controllers plus a cgroup2 hierarchy without controllers
    /// at `/sys/fs/cgroup/unified`.
    Hybrid,
    /// Pure cgroup v2 mounted at `/sys/fs/cgroup`.
    Unified,
}

/// One mounted cgroup hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// 1 for a cgroup v1 hierarchy, 2 for cgroup2.
    pub version: u8,
    /// Where the hierarchy is mounted, e.g. `/sys/fs/cgroup/memory`.
    pub mount_point: PathBuf,
    /// v1: the controllers bound to it (`["cpu", "cpuacct"]`, named
    /// hierarchies as `name=systemd`); v2: empty.
    pub controllers: Vec<String>,
}

/// Detects the host's cgroup mode from `statfs` of `/sys/fs/cgroup` and
/// `/sys/fs/cgroup/unified`.
pub fn detect_mode() -> Result<CgroupMode, CgroupError> {
    mount::detect_mode_at(Path::new(mount::CGROUP_ROOT))
}

/// The cgroup hierarchies mounted in this mount namespace, from
/// `/proc/self/mountinfo`.
pub fn hierarchies() -> Result<Vec<Hierarchy>, CgroupError> {
    mount::hierarchies_from(Path::new("/proc/self/mountinfo"))
}

/// A manager for the cgroup at `path` on this host.
///
/// `path` is the OCI `linux.cgroupsPath`: an absolute path is taken from the
/// root of every hierarchy; a relative one is placed under the root as well
/// (like runc's cgroupfs driver). Paths that climb out with `..` are refused.
pub fn manager(path: &Path) -> Result<Box<dyn CgroupManager>, CgroupError> {
    let mode = detect_mode()?;
    manager_at(mode, hierarchies()?, path)
}

/// [`CgroupManager::destroy`], retried while the last processes leave the
/// cgroup (the kernel detaches exiting tasks asynchronously, so a cgroup
/// whose processes were just reaped may refuse its rmdir for a moment), for
/// at most `attempts` × 2 ms.
pub fn destroy_retrying(manager: &dyn CgroupManager, attempts: u32) -> Result<(), CgroupError> {
    let mut result = manager.destroy();
    for _ in 1..attempts {
        if result.is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
        result = manager.destroy();
    }
    result
}

/// [`CgroupManager::create`], retried while a parent directory vanishes
/// under it: a shared parent (`--cgroup-parent`) that another tool removes
/// once it is empty can go between two of create's mkdirs.
pub fn create_retrying(manager: &dyn CgroupManager) -> Result<(), CgroupError> {
    let mut attempts = 0;
    loop {
        match manager.create() {
            Err(e) if attempts < 8 && e.is_vanished_dir() => attempts += 1,
            other => return other,
        }
    }
}

/// A manager for `path` over explicitly given hierarchies; tests point this
/// at a fake cgroupfs in a temporary directory.
pub fn manager_at(
    mode: CgroupMode,
    hierarchies: Vec<Hierarchy>,
    path: &Path,
) -> Result<Box<dyn CgroupManager>, CgroupError> {
    let relative = mount::clean_cgroup_path(path)?;
    match mode {
        CgroupMode::Legacy => Ok(Box::new(v1::LegacyManager(v1::V1Manager::new(
            &hierarchies,
            &relative,
        )?))),
        CgroupMode::Hybrid => Ok(Box::new(hybrid::HybridManager {
            v1: v1::V1Manager::new(&hierarchies, &relative)?,
            unified: v2::V2Manager::new(&hierarchies, &relative, false)?,
        })),
        CgroupMode::Unified => Ok(Box::new(v2::V2Manager::new(&hierarchies, &relative, true)?)),
    }
}

/// Everything the runtime does with one container's cgroup.
pub trait CgroupManager: Send + Sync {
    /// The layout this manager works on.
    fn mode(&self) -> CgroupMode;
    /// Creates the cgroup in every hierarchy (idempotent). On v1, cpuset
    /// directories get `cpuset.cpus`/`cpuset.mems` copied from their parent;
    /// on v2, the controllers are enabled in `cgroup.subtree_control` along
    /// the path.
    fn create(&self) -> Result<(), CgroupError>;
    /// Writes the OCI resource limits (at create time and for `update`).
    fn apply(&self, resources: &oci_spec::runtime::LinuxResources) -> Result<(), CgroupError>;
    /// Moves `pid` into the cgroup in every hierarchy.
    fn add_task(&self, pid: i32) -> Result<(), CgroupError>;
    /// Freezes every process and waits until the kernel reports it frozen.
    fn freeze(&self) -> Result<(), CgroupError>;
    /// Thaws a frozen cgroup.
    fn thaw(&self) -> Result<(), CgroupError>;
    /// Whether the cgroup is frozen (or freezing).
    fn is_frozen(&self) -> Result<bool, CgroupError>;
    /// All processes in the cgroup and its descendants.
    fn pids(&self) -> Result<Vec<i32>, CgroupError>;
    /// Usage statistics in runc's `events --stats` shape.
    fn stats(&self) -> Result<Stats, CgroupError>;
    /// How many processes the OOM killer killed in this cgroup.
    fn oom_kill_count(&self) -> Result<u64, CgroupError>;
    /// Removes the cgroup everywhere (deepest first); missing is fine.
    fn destroy(&self) -> Result<(), CgroupError>;
    /// The cleaned cgroup path, relative to each hierarchy root (absolute form).
    fn path(&self) -> &Path;
}
