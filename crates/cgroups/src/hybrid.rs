//! Hybrid hosts: v1 controllers, plus a cgroup2 tree without controllers
//! (usually at `/sys/fs/cgroup/unified`) that systemd uses for process
//! tracking. The container gets a cgroup in both; resources go to v1,
//! `linux.resources.unified` to the cgroup2 side (as runc does).

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::stats::Stats;
use crate::v1::V1Manager;
use crate::v2::V2Manager;
use crate::{CgroupError, CgroupManager, CgroupMode};

pub(crate) struct HybridManager {
    pub(crate) v1: V1Manager,
    pub(crate) unified: V2Manager,
}

impl CgroupManager for HybridManager {
    fn mode(&self) -> CgroupMode {
        CgroupMode::Hybrid
    }

    fn create(&self) -> Result<(), CgroupError> {
        self.v1.create()?;
        self.unified.create()
    }

    fn apply(&self, res: &LinuxResources) -> Result<(), CgroupError> {
        self.v1.apply(res)?;
        self.unified.apply_unified(res)
    }

    fn add_task(&self, pid: i32) -> Result<(), CgroupError> {
        self.v1.add_task(pid)?;
        self.unified.add_task(pid)
    }

    /// The v1 freezer when mounted; otherwise cgroup2's `cgroup.freeze`,
    /// which works without controllers.
    fn freeze(&self) -> Result<(), CgroupError> {
        if self.v1.has_freezer() {
            self.v1.freeze()
        } else {
            self.unified.freeze()
        }
    }

    fn thaw(&self) -> Result<(), CgroupError> {
        if self.v1.has_freezer() {
            self.v1.thaw()
        } else {
            self.unified.thaw()
        }
    }

    fn is_frozen(&self) -> Result<bool, CgroupError> {
        if self.v1.has_freezer() {
            self.v1.is_frozen()
        } else {
            self.unified.is_frozen()
        }
    }

    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        self.v1.pids()
    }

    fn stats(&self) -> Result<Stats, CgroupError> {
        self.v1.stats()
    }

    fn oom_kill_count(&self) -> Result<u64, CgroupError> {
        self.v1.oom_kill_count()
    }

    /// Removes both sides, even when one fails.
    fn destroy(&self) -> Result<(), CgroupError> {
        let v1 = self.v1.destroy();
        let v2 = self.unified.destroy();
        v1.and(v2)
    }

    fn path(&self) -> &Path {
        self.v1.path()
    }
}
