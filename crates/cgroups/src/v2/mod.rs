//! cgroup v2: one tree; controllers are enabled per level through
//! `cgroup.subtree_control`.

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxResources;

use crate::stats::Stats;
use crate::{fsutil, mount, CgroupError, CgroupManager, CgroupMode, Hierarchy};

mod cpu;
mod cpuset;
mod devices;
mod freezer;
mod hugetlb;
mod io;
mod memory;
mod pids;
mod rdma;
mod unified;

/// One v2 controller: what in `linux.resources` it is responsible for.
pub(crate) trait V2Controller: Sync {
    /// The name in `cgroup.controllers`; `None` for features of cgroup2
    /// itself (device programs).
    fn controller(&self) -> Option<&'static str>;
    fn wants(&self, res: &LinuxResources) -> bool;
    fn apply(&self, dir: &Path, res: &LinuxResources) -> Result<(), CgroupError>;
    fn stats(&self, _dir: &Path, _stats: &mut Stats) -> Result<(), CgroupError> {
        Ok(())
    }
}

const CONTROLLERS: &[&dyn V2Controller] = &[
    &cpuset::Cpuset,
    &devices::Devices,
    &memory::Memory,
    &cpu::Cpu,
    &pids::Pids,
    &io::Io,
    &hugetlb::Hugetlb,
    &rdma::Rdma,
];

/// A cgroup in a cgroup2 hierarchy: the whole story on a unified host, the
/// controller-less side tree on a hybrid one.
pub(crate) struct V2Manager {
    /// Whether `create` enables controllers along the path. Not on a
    /// hybrid host's side tree: its controllers belong to whoever mounted
    /// it, and berth uses v1 for resources there.
    delegate: bool,
    mount_point: PathBuf,
    path: PathBuf,
    dir: PathBuf,
}

impl V2Manager {
    /// `path` is already cleaned (absolute, no `..`).
    pub(crate) fn new(
        hierarchies: &[Hierarchy],
        path: &Path,
        delegate: bool,
    ) -> Result<Self, CgroupError> {
        let h = hierarchies.iter().find(|h| h.version == 2).ok_or_else(|| {
            CgroupError::NoHierarchy {
                what: "cgroup2".to_string(),
            }
        })?;
        Ok(V2Manager {
            delegate,
            mount_point: h.mount_point.clone(),
            path: path.to_path_buf(),
            dir: mount::join(&h.mount_point, path),
        })
    }

    fn available(dir: &Path) -> Result<Vec<String>, CgroupError> {
        let text = fsutil::read(&dir.join("cgroup.controllers"))?;
        Ok(text.split_whitespace().map(str::to_string).collect())
    }

    /// `linux.resources.unified`: the only resources a hybrid host's
    /// controller-less cgroup2 side takes.
    pub(crate) fn apply_unified(&self, res: &LinuxResources) -> Result<(), CgroupError> {
        unified::apply(&self.dir, res)
    }
}

impl CgroupManager for V2Manager {
    fn mode(&self) -> CgroupMode {
        CgroupMode::Unified
    }

    /// Creates the directories and, at every level above the container's
    /// cgroup, enables all controllers the level has in its
    /// `cgroup.subtree_control`, so that they reach the container (runc
    /// does the same). The container's own subtree_control is left empty:
    /// a cgroup with processes cannot delegate (no internal processes).
    fn create(&self) -> Result<(), CgroupError> {
        let relative = self
            .dir
            .strip_prefix(&self.mount_point)
            .unwrap_or(&self.dir);
        let mut current = self.mount_point.clone();
        for part in relative.components() {
            let controllers = if self.delegate {
                Self::available(&current)?
            } else {
                Vec::new()
            };
            if !controllers.is_empty() {
                let line = controllers
                    .iter()
                    .map(|c| format!("+{c}"))
                    .collect::<Vec<_>>()
                    .join(" ");
                if fsutil::write(&current, "cgroup.subtree_control", &line).is_err() {
                    // One refused controller (e.g. cpu with realtime tasks
                    // around) must not keep the others from being enabled;
                    // a missing one is reported when a resource needs it.
                    for c in &controllers {
                        let _ = fsutil::write(&current, "cgroup.subtree_control", format!("+{c}"));
                    }
                }
            }
            current.push(part);
            fsutil::mkdir_all(&current)?;
        }
        Ok(())
    }

    fn apply(&self, res: &LinuxResources) -> Result<(), CgroupError> {
        if res.network().as_ref().is_some_and(|n| {
            n.class_id().is_some() || n.priorities().as_ref().is_some_and(|p| !p.is_empty())
        }) {
            return Err(CgroupError::InvalidResource {
                field: "network",
                value: format!("{:?}", res.network()),
                reason: "cgroup v2 has no net_cls/net_prio controllers".to_string(),
            });
        }
        let available = Self::available(&self.dir)?;
        for c in CONTROLLERS {
            if !c.wants(res) {
                continue;
            }
            if let Some(name) = c.controller() {
                if !available.iter().any(|a| a == name) {
                    return Err(CgroupError::ControllerMissing {
                        controller: name.to_string(),
                        what: format!("linux.resources ({name} settings)"),
                        path: self.dir.clone(),
                    });
                }
            }
            c.apply(&self.dir, res)?;
        }
        self.apply_unified(res)
    }

    fn add_task(&self, pid: i32) -> Result<(), CgroupError> {
        fsutil::write(&self.dir, "cgroup.procs", pid)
    }

    fn freeze(&self) -> Result<(), CgroupError> {
        freezer::freeze(&self.dir)
    }

    fn thaw(&self) -> Result<(), CgroupError> {
        freezer::thaw(&self.dir)
    }

    fn is_frozen(&self) -> Result<bool, CgroupError> {
        freezer::is_frozen(&self.dir)
    }

    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        fsutil::pids_recursive(&self.dir)
    }

    fn stats(&self) -> Result<Stats, CgroupError> {
        let mut stats = Stats::default();
        // cpu.stat is always there; the rest only with their controller.
        cpu::Cpu.stats(&self.dir, &mut stats)?;
        let available = Self::available(&self.dir)?;
        for c in CONTROLLERS {
            match c.controller() {
                Some("cpu") | None => {}
                Some(name) if available.iter().any(|a| a == name) => {
                    c.stats(&self.dir, &mut stats)?
                }
                Some(_) => {}
            }
        }
        Ok(stats)
    }

    fn oom_kill_count(&self) -> Result<u64, CgroupError> {
        memory::oom_kill_count(&self.dir)
    }

    fn destroy(&self) -> Result<(), CgroupError> {
        let deadline = std::time::Instant::now() + fsutil::REMOVE_PATIENCE;
        fsutil::remove_cgroup_tree(&self.dir, deadline)
    }

    fn path(&self) -> &Path {
        &self.path
    }
}
