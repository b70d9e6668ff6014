//! cgroup v1: one hierarchy per controller (or group of controllers).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use crate::stats::Stats;
use crate::{fsutil, mount, CgroupError, CgroupMode, Hierarchy};

mod blkio;
mod cpu;
mod cpuacct;
pub(crate) mod cpuset;
mod devices;
mod freezer;
pub(crate) mod hugetlb;
mod memory;
mod net_cls;
mod net_prio;
pub(crate) mod pids;
pub(crate) mod rdma;

/// One v1 controller: what in `linux.resources` it is responsible for.
pub(crate) trait V1Controller: Sync {
    /// The subsystem name as mount options and /proc/cgroups spell it.
    fn subsystem(&self) -> &'static str;
    /// Whether `res` asks anything of this controller; asking something of
    /// a controller that is not mounted is an error.
    fn wants(&self, res: &LinuxResources) -> bool;
    /// Writes the controller's part of `res` into the cgroup at `dir`.
    fn apply(&self, dir: &Path, res: &LinuxResources) -> Result<(), CgroupError>;
    /// Adds the controller's counters to `stats`.
    fn stats(&self, _dir: &Path, _stats: &mut Stats) -> Result<(), CgroupError> {
        Ok(())
    }
}

/// In runc's order: cpuset before anything that needs a valid cpuset,
/// devices early, memory before cpu.
const CONTROLLERS: &[&dyn V1Controller] = &[
    &cpuset::Cpuset,
    &devices::Devices,
    &memory::Memory,
    &cpu::Cpu,
    &cpuacct::CpuAcct,
    &pids::Pids,
    &blkio::Blkio,
    &hugetlb::Hugetlb,
    &net_cls::NetCls,
    &net_prio::NetPrio,
    &freezer::Freezer,
    &rdma::Rdma,
];

/// The container's directory in one v1 hierarchy.
#[derive(Debug, Clone)]
struct HierarchyDir {
    controllers: Vec<String>,
    mount_point: PathBuf,
    dir: PathBuf,
}

/// The v1 side of a legacy or hybrid host.
pub(crate) struct V1Manager {
    path: PathBuf,
    hierarchies: Vec<HierarchyDir>,
    /// Controller (or `name=…`) → the container's directory for it.
    dirs: BTreeMap<String, PathBuf>,
}

impl V1Manager {
    /// `path` is already cleaned (absolute, no `..`).
    pub(crate) fn new(hierarchies: &[Hierarchy], path: &Path) -> Result<Self, CgroupError> {
        let mut dirs = BTreeMap::new();
        let mut hier = Vec::new();
        for h in hierarchies.iter().filter(|h| h.version == 1) {
            if h.controllers.is_empty() {
                continue;
            }
            // The same controllers mounted twice: the first mount serves.
            if h.controllers.iter().any(|c| dirs.contains_key(c)) {
                continue;
            }
            let dir = mount::join(&h.mount_point, path);
            for c in &h.controllers {
                dirs.insert(c.clone(), dir.clone());
            }
            hier.push(HierarchyDir {
                controllers: h.controllers.clone(),
                mount_point: h.mount_point.clone(),
                dir,
            });
        }
        if hier.is_empty() {
            return Err(CgroupError::NoHierarchy {
                what: "cgroup v1".to_string(),
            });
        }
        Ok(V1Manager {
            path: path.to_path_buf(),
            hierarchies: hier,
            dirs,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The container's directory for `controller`, if that is mounted.
    pub(crate) fn dir(&self, controller: &str) -> Option<&Path> {
        self.dirs.get(controller).map(PathBuf::as_path)
    }

    fn require(&self, controller: &str, what: &str) -> Result<&Path, CgroupError> {
        self.dir(controller)
            .ok_or_else(|| CgroupError::ControllerMissing {
                controller: controller.to_string(),
                what: what.to_string(),
                path: self.path.clone(),
            })
    }

    pub(crate) fn create(&self) -> Result<(), CgroupError> {
        for h in &self.hierarchies {
            if h.controllers.iter().any(|c| c == "cpuset") {
                cpuset::create_with_parents(&h.mount_point, &h.dir)?;
            } else {
                fsutil::mkdir_all(&h.dir)?;
            }
        }
        Ok(())
    }

    pub(crate) fn apply(&self, res: &LinuxResources) -> Result<(), CgroupError> {
        for c in CONTROLLERS {
            if !c.wants(res) {
                continue;
            }
            let what = format!("linux.resources ({} settings)", c.subsystem());
            let dir = self.require(c.subsystem(), &what)?;
            c.apply(dir, res)?;
        }
        Ok(())
    }

    pub(crate) fn add_task(&self, pid: i32) -> Result<(), CgroupError> {
        for h in &self.hierarchies {
            fsutil::write(&h.dir, "cgroup.procs", pid)?;
        }
        Ok(())
    }

    pub(crate) fn has_freezer(&self) -> bool {
        self.dirs.contains_key("freezer")
    }

    pub(crate) fn freeze(&self) -> Result<(), CgroupError> {
        freezer::freeze(self.require("freezer", "freezing")?)
    }

    pub(crate) fn thaw(&self) -> Result<(), CgroupError> {
        freezer::thaw(self.require("freezer", "thawing")?)
    }

    pub(crate) fn is_frozen(&self) -> Result<bool, CgroupError> {
        let state = freezer::state(self.require("freezer", "the freezer state")?)?;
        Ok(state == "FROZEN" || state == "FREEZING")
    }

    /// Tasks are added to every hierarchy, so any one lists them; prefer
    /// those a container always has.
    pub(crate) fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        let dir = ["pids", "freezer", "memory", "devices"]
            .iter()
            .find_map(|c| self.dir(c))
            .unwrap_or(&self.hierarchies[0].dir);
        fsutil::pids_recursive(dir)
    }

    pub(crate) fn stats(&self) -> Result<Stats, CgroupError> {
        let mut stats = Stats::default();
        for c in CONTROLLERS {
            if let Some(dir) = self.dir(c.subsystem()) {
                if dir.exists() {
                    c.stats(dir, &mut stats)?;
                }
            }
        }
        Ok(stats)
    }

    pub(crate) fn oom_kill_count(&self) -> Result<u64, CgroupError> {
        memory::oom_kill_count(self.require("memory", "the OOM kill count")?)
    }

    /// Removes the directory in every hierarchy; goes on past failures and
    /// reports the first.
    pub(crate) fn destroy(&self) -> Result<(), CgroupError> {
        let mut first_err = None;
        let deadline = std::time::Instant::now() + fsutil::REMOVE_PATIENCE;
        for h in &self.hierarchies {
            if let Err(e) = fsutil::remove_cgroup_tree(&h.dir, deadline) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// A legacy (v1-only) host's manager.
pub(crate) struct LegacyManager(pub(crate) V1Manager);

impl crate::CgroupManager for LegacyManager {
    fn mode(&self) -> CgroupMode {
        CgroupMode::Legacy
    }
    fn create(&self) -> Result<(), CgroupError> {
        self.0.create()
    }
    fn apply(&self, res: &LinuxResources) -> Result<(), CgroupError> {
        if res.unified().as_ref().is_some_and(|u| !u.is_empty()) {
            return Err(CgroupError::InvalidResource {
                field: "unified",
                value: format!("{:?}", res.unified()),
                reason: "cgroup v2 settings need a cgroup2 hierarchy; this host has cgroup v1 only"
                    .to_string(),
            });
        }
        self.0.apply(res)
    }
    fn add_task(&self, pid: i32) -> Result<(), CgroupError> {
        self.0.add_task(pid)
    }
    fn freeze(&self) -> Result<(), CgroupError> {
        self.0.freeze()
    }
    fn thaw(&self) -> Result<(), CgroupError> {
        self.0.thaw()
    }
    fn is_frozen(&self) -> Result<bool, CgroupError> {
        self.0.is_frozen()
    }
    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        self.0.pids()
    }
    fn stats(&self) -> Result<Stats, CgroupError> {
        self.0.stats()
    }
    fn oom_kill_count(&self) -> Result<u64, CgroupError> {
        self.0.oom_kill_count()
    }
    fn destroy(&self) -> Result<(), CgroupError> {
        self.0.destroy()
    }
    fn path(&self) -> &Path {
        self.0.path()
    }
}
