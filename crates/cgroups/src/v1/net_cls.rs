//! v1 `net_cls`: the traffic class id of the container's packets.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::V1Controller;
use crate::{fsutil, CgroupError};

pub(crate) struct NetCls;

impl V1Controller for NetCls {
    fn subsystem(&self) -> &'static str {
        "net_cls"
    }

    fn wants(&self, res: &LinuxResources) -> bool {
        res.network()
            .as_ref()
            .is_some_and(|n| n.class_id().is_some())
    }

    fn apply(&self, dir: &Path, res: &LinuxResources) -> Result<(), CgroupError> {
        if let Some(class_id) = res.network().as_ref().and_then(|n| n.class_id()) {
            fsutil::write(dir, "net_cls.classid", class_id)?;
        }
        Ok(())
    }
}
