//! v2 `rdma` (same `rdma.max` format as v1).

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::V2Controller;
use crate::v1::rdma::{wanted, write_limits};
use crate::CgroupError;

pub(crate) struct Rdma;

impl V2Controller for Rdma {
    fn controller(&self) -> Option<&'static str> {
        Some("rdma")
    }

    fn wants(&self, res: &LinuxResources) -> bool {
        wanted(res)
    }

    fn apply(&self, dir: &Path, res: &LinuxResources) -> Result<(), CgroupError> {
        write_limits(dir, res)
    }
}
