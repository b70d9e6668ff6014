//! v1 `freezer`: freezing and thawing.

use std::path::Path;
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;

use super::V1Controller;
use crate::{fsutil, CgroupError};

pub(crate) struct Freezer;

const STATE: &str = "freezer.state";
const FREEZE_TIMEOUT: Duration = Duration::from_secs(10);

impl V1Controller for Freezer {
    fn subsystem(&self) -> &'static str {
        "freezer"
    }

    fn wants(&self, _res: &LinuxResources) -> bool {
        false
    }

    fn apply(&self, _dir: &Path, _res: &LinuxResources) -> Result<(), CgroupError> {
        Ok(())
    }
}

pub(crate) fn state(dir: &Path) -> Result<String, CgroupError> {
    Ok(fsutil::read(&dir.join(STATE))?.trim().to_string())
}

/// Writes FROZEN and waits until the kernel reports every task frozen.
/// A task in an uninterruptible sleep can hold the cgroup in FREEZING, so
/// the request is repeated while waiting (as runc does); on timeout the
/// cgroup is thawed again rather than left half frozen.
pub(crate) fn freeze(dir: &Path) -> Result<(), CgroupError> {
    let start = Instant::now();
    let mut round = 0u32;
    loop {
        if round.is_multiple_of(16) {
            fsutil::write(dir, STATE, "FROZEN")?;
        }
        if state(dir)? == "FROZEN" {
            return Ok(());
        }
        if start.elapsed() > FREEZE_TIMEOUT {
            fsutil::write(dir, STATE, "THAWED")?;
            return Err(CgroupError::Timeout {
                path: dir.join(STATE),
                state: "FROZEN",
                waited_ms: start.elapsed().as_millis() as u64,
            });
        }
        round += 1;
        std::thread::sleep(Duration::from_millis(1 + u64::from(round.min(50))));
    }
}

pub(crate) fn thaw(dir: &Path) -> Result<(), CgroupError> {
    fsutil::write(dir, STATE, "THAWED")?;
    let start = Instant::now();
    while state(dir)? != "THAWED" {
        if start.elapsed() > FREEZE_TIMEOUT {
            return Err(CgroupError::Timeout {
                path: dir.join(STATE),
                state: "THAWED",
                waited_ms: start.elapsed().as_millis() as u64,
            });
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}
