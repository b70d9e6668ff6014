//! v1 `blkio`: weights and throttling per device.

use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxResources, LinuxThrottleDevice};

use super::V1Controller;
use crate::stats::{BlkioEntry, Stats};
use crate::{fsutil, CgroupError};

pub(crate) struct Blkio;

fn has_any(b: &LinuxBlockIo) -> bool {
    let nonempty = |v: &Option<Vec<LinuxThrottleDevice>>| v.as_ref().is_some_and(|v| !v.is_empty());
    b.weight().is_some()
        || b.leaf_weight().is_some()
        || b.weight_device().as_ref().is_some_and(|v| !v.is_empty())
        || nonempty(b.throttle_read_bps_device())
        || nonempty(b.throttle_write_bps_device())
        || nonempty(b.throttle_read_iops_device())
        || nonempty(b.throttle_write_iops_device())
}

impl V1Controller for Blkio {
    fn subsystem(&self) -> &'static str {
        "blkio"
    }

    fn wants(&self, res: &LinuxResources) -> bool {
        res.block_io().as_ref().is_some_and(has_any)
    }

    fn apply(&self, dir: &Path, res: &LinuxResources) -> Result<(), CgroupError> {
        let Some(b) = res.block_io() else {
            return Ok(());
        };
        // CFQ's blkio.weight is gone from blk-mq kernels; BFQ offers the
        // same knob as blkio.bfq.weight (runc picks whichever exists).
        let weight_file =
            if dir.join("blkio.weight").exists() || !dir.join("blkio.bfq.weight").exists() {
                "blkio.weight"
            } else {
                "blkio.bfq.weight"
            };
        if let Some(w) = b.weight() {
            fsutil::write(dir, weight_file, w)?;
        }
        if let Some(w) = b.leaf_weight() {
            fsutil::write(dir, "blkio.leaf_weight", w)?;
        }
        for wd in b.weight_device().iter().flatten() {
            if let Some(w) = wd.weight() {
                fsutil::write(
                    dir,
                    &format!("{weight_file}_device"),
                    format!("{}:{} {w}", wd.major(), wd.minor()),
                )?;
            }
            if let Some(w) = wd.leaf_weight() {
                fsutil::write(
                    dir,
                    "blkio.leaf_weight_device",
                    format!("{}:{} {w}", wd.major(), wd.minor()),
                )?;
            }
        }
        let throttles = [
            (
                "blkio.throttle.read_bps_device",
                b.throttle_read_bps_device(),
            ),
            (
                "blkio.throttle.write_bps_device",
                b.throttle_write_bps_device(),
            ),
            (
                "blkio.throttle.read_iops_device",
                b.throttle_read_iops_device(),
            ),
            (
                "blkio.throttle.write_iops_device",
                b.throttle_write_iops_device(),
            ),
        ];
        for (file, devices) in throttles {
            for d in devices.iter().flatten() {
                fsutil::write(
                    dir,
                    file,
                    format!("{}:{} {}", d.major(), d.minor(), d.rate()),
                )?;
            }
        }
        Ok(())
    }

    fn stats(&self, dir: &Path, stats: &mut Stats) -> Result<(), CgroupError> {
        let s = &mut stats.blkio;
        // Prefer the scheduler's own counters (CFQ, then BFQ) and fall back
        // to the throttling layer's, which every kernel has.
        let first = |names: &[&str]| -> Result<Vec<BlkioEntry>, CgroupError> {
            for name in names {
                let path = dir.join(name);
                if path.exists() {
                    return read_entries(&path);
                }
            }
            Ok(Vec::new())
        };
        s.io_service_bytes_recursive = first(&[
            "blkio.io_service_bytes_recursive",
            "blkio.bfq.io_service_bytes_recursive",
            "blkio.throttle.io_service_bytes_recursive",
        ])?;
        s.io_serviced_recursive = first(&[
            "blkio.io_serviced_recursive",
            "blkio.bfq.io_serviced_recursive",
            "blkio.throttle.io_serviced_recursive",
        ])?;
        s.io_queued_recursive =
            first(&["blkio.io_queued_recursive", "blkio.bfq.io_queued_recursive"])?;
        s.io_service_time_recursive = first(&[
            "blkio.io_service_time_recursive",
            "blkio.bfq.io_service_time_recursive",
        ])?;
        s.io_wait_time_recursive = first(&[
            "blkio.io_wait_time_recursive",
            "blkio.bfq.io_wait_time_recursive",
        ])?;
        s.io_merged_recursive =
            first(&["blkio.io_merged_recursive", "blkio.bfq.io_merged_recursive"])?;
        s.io_time_recursive = first(&["blkio.time_recursive", "blkio.bfq.time_recursive"])?;
        s.sectors_recursive = first(&["blkio.sectors_recursive", "blkio.bfq.sectors_recursive"])?;
        Ok(())
    }
}

/// Parses `8:0 Read 4096` / `8:0 4096` lines; the `Total` line is skipped.
fn read_entries(path: &Path) -> Result<Vec<BlkioEntry>, CgroupError> {
    let text = fsutil::read(path)?;
    let mut out = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (dev, op, value) = match fields.as_slice() {
            [dev, op, value] => (*dev, *op, *value),
            [dev, value] if dev.contains(':') => (*dev, "", *value),
            _ => continue,
        };
        let (major, minor) = fsutil::parse_dev(path, dev)?;
        let value = value.parse().map_err(|_| CgroupError::Parse {
            path: path.to_path_buf(),
            value: line.to_string(),
            reason: "expected a counter".to_string(),
        })?;
        out.push(BlkioEntry {
            major,
            minor,
            op: op.to_string(),
            value,
        });
    }
    Ok(out)
}
