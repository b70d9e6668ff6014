//! v1 `rdma`: HCA handle and object limits per device (same file format
//! on v2).

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::V1Controller;
use crate::{fsutil, CgroupError};

pub(crate) struct Rdma;

/// Writes one `rdma.max` line per device that has a limit.
pub(crate) fn write_limits(dir: &Path, res: &LinuxResources) -> Result<(), CgroupError> {
    let Some(rdma) = res.rdma() else {
        return Ok(());
    };
    let mut devices: Vec<_> = rdma.iter().collect();
    devices.sort_by(|a, b| a.0.cmp(b.0));
    for (device, limit) in devices {
        if device.is_empty() || device.contains(char::is_whitespace) {
            return Err(CgroupError::InvalidResource {
                field: "rdma",
                value: device.clone(),
                reason: "a device name is non-empty and has no spaces".to_string(),
            });
        }
        let mut line = device.clone();
        if let Some(h) = limit.hca_handles() {
            line.push_str(&format!(" hca_handle={h}"));
        }
        if let Some(o) = limit.hca_objects() {
            line.push_str(&format!(" hca_object={o}"));
        }
        if line.len() != device.len() {
            fsutil::write(dir, "rdma.max", line)?;
        }
    }
    Ok(())
}

pub(crate) fn wanted(res: &LinuxResources) -> bool {
    res.rdma().as_ref().is_some_and(|r| !r.is_empty())
}

impl V1Controller for Rdma {
    fn subsystem(&self) -> &'static str {
        "rdma"
    }

    fn wants(&self, res: &LinuxResources) -> bool {
        wanted(res)
    }

    fn apply(&self, dir: &Path, res: &LinuxResources) -> Result<(), CgroupError> {
        write_limits(dir, res)
    }
}
