//! v2 freezing with `cgroup.freeze` (a core file; no controller needed).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::{fsutil, CgroupError};

const TIMEOUT: Duration = Duration::from_secs(10);

/// Whether `cgroup.events` says `frozen 1`.
fn frozen_event(dir: &Path) -> Result<bool, CgroupError> {
    let events = fsutil::read_keyed(&dir.join("cgroup.events"))?;
    Ok(events.get("frozen").copied() == Some(1))
}

fn set(dir: &Path, frozen: bool) -> Result<(), CgroupError> {
    fsutil::write(dir, "cgroup.freeze", if frozen { "1" } else { "0" })?;
    let start = Instant::now();
    let mut delay = Duration::from_millis(1);
    while frozen_event(dir)? != frozen {
        if start.elapsed() > TIMEOUT {
            if frozen {
                // Do not leave a half-frozen container behind.
                fsutil::write(dir, "cgroup.freeze", "0")?;
            }
            return Err(CgroupError::Timeout {
                path: dir.join("cgroup.events"),
                state: if frozen { "frozen" } else { "thawed" },
                waited_ms: start.elapsed().as_millis() as u64,
            });
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(50));
    }
    Ok(())
}

pub(crate) fn freeze(dir: &Path) -> Result<(), CgroupError> {
    set(dir, true)
}

pub(crate) fn thaw(dir: &Path) -> Result<(), CgroupError> {
    set(dir, false)
}

pub(crate) fn is_frozen(dir: &Path) -> Result<bool, CgroupError> {
    Ok(fsutil::read(&dir.join("cgroup.freeze"))?.trim() == "1")
}
