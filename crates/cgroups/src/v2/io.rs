//! v2 `io`: weights and `io.max` throttling.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::V2Controller;
use crate::stats::{BlkioEntry, Stats};
use crate::{fsutil, CgroupError};

pub(crate) struct Io;

/// Maps blkio weight (10..=1000) onto io.weight (1..=10000), as runc does.
pub(crate) fn blkio_weight_to_io_weight(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    1 + (u64::from(weight).saturating_sub(10)) * 9999 / 990
}

impl V2Controller for Io {
    fn controller(&self) -> Option<&'static str> {
        Some("io")
    }

    fn wants(&self, res: &LinuxResources) -> bool {
        res.block_io().as_ref().is_some_and(|b| {
            let nonempty = |v: &Option<Vec<_>>| v.as_ref().is_some_and(|v: &Vec<_>| !v.is_empty());
            b.weight().is_some_and(|w| w != 0)
                || b.weight_device().as_ref().is_some_and(|v| !v.is_empty())
                || nonempty(b.throttle_read_bps_device())
                || nonempty(b.throttle_write_bps_device())
                || nonempty(b.throttle_read_iops_device())
                || nonempty(b.throttle_write_iops_device())
        })
    }

    fn apply(&self, dir: &Path, res: &LinuxResources) -> Result<(), CgroupError> {
        let Some(b) = res.block_io() else {
            return Ok(());
        };
        // With the BFQ scheduler the weight goes to io.bfq.weight on the
        // old 10..=1000 scale; otherwise to io.weight, converted.
        let bfq = dir.join("io.bfq.weight").exists();
        if let Some(w) = b.weight().filter(|w| *w != 0) {
            if bfq {
                fsutil::write(dir, "io.bfq.weight", w)?;
            } else {
                fsutil::write(dir, "io.weight", blkio_weight_to_io_weight(w))?;
            }
        }
        for wd in b.weight_device().iter().flatten() {
            let Some(w) = wd.weight().filter(|w| *w != 0) else {
                continue;
            };
            let (file, w) = if bfq {
                ("io.bfq.weight", u64::from(w))
            } else {
                ("io.weight", blkio_weight_to_io_weight(w))
            };
            fsutil::write(dir, file, format!("{}:{} {w}", wd.major(), wd.minor()))?;
        }
        let throttles = [
            ("rbps", b.throttle_read_bps_device()),
            ("wbps", b.throttle_write_bps_device()),
            ("riops", b.throttle_read_iops_device()),
            ("wiops", b.throttle_write_iops_device()),
        ];
        for (key, devices) in throttles {
            for d in devices.iter().flatten() {
                let rate = if d.rate() == 0 {
                    "max".to_string()
                } else {
                    d.rate().to_string()
                };
                fsutil::write(
                    dir,
                    "io.max",
                    format!("{}:{} {key}={rate}", d.major(), d.minor()),
                )?;
            }
        }
        Ok(())
    }

    fn stats(&self, dir: &Path, stats: &mut Stats) -> Result<(), CgroupError> {
        let path = dir.join("io.stat");
        let Some(text) = fsutil::read_optional(&path)? else {
            return Ok(());
        };
        for line in text.lines() {
            let mut fields = line.split_whitespace();
            let Some(dev) = fields.next() else { continue };
            let (major, minor) = fsutil::parse_dev(&path, dev)?;
            for kv in fields {
                let Some((key, value)) = kv.split_once('=') else {
                    continue;
                };
                let Ok(value) = value.parse::<u64>() else {
                    continue;
                };
                let (list, op) = match key {
                    "rbytes" => (&mut stats.blkio.io_service_bytes_recursive, "Read"),
                    "wbytes" => (&mut stats.blkio.io_service_bytes_recursive, "Write"),
                    "rios" => (&mut stats.blkio.io_serviced_recursive, "Read"),
                    "wios" => (&mut stats.blkio.io_serviced_recursive, "Write"),
                    _ => continue,
                };
                list.push(BlkioEntry {
                    major,
                    minor,
                    op: op.to_string(),
                    value,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blkio_weights_convert() {
        assert_eq!(blkio_weight_to_io_weight(0), 0);
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
        assert_eq!(blkio_weight_to_io_weight(500), 4950);
    }
}
