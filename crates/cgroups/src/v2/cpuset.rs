//! v2 `cpuset`: cpus and mems (same files as v1).

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::V2Controller;
use crate::v1::cpuset::{wanted, write_limits};
use crate::CgroupError;

pub(crate) struct Cpuset;

impl V2Controller for Cpuset {
    fn controller(&self) -> Option<&'static str> {
        Some("cpuset")
    }

    fn wants(&self, res: &LinuxResources) -> bool {
        wanted(res)
    }

    fn apply(&self, dir: &Path, res: &LinuxResources) -> Result<(), CgroupError> {
        write_limits(dir, res)
    }
}
