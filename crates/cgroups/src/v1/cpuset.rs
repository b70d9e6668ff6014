//! v1 `cpuset`: cpus and mems (same files on v2), and the parent copying
//! a v1 cpuset needs.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::V1Controller;
use crate::{fsutil, CgroupError};

pub(crate) struct Cpuset;

/// Whether `res` sets cpus or mems (same files on v2).
pub(crate) fn wanted(res: &LinuxResources) -> bool {
    res.cpu().as_ref().is_some_and(|c| {
        c.cpus().as_ref().is_some_and(|s| !s.is_empty())
            || c.mems().as_ref().is_some_and(|s| !s.is_empty())
    })
}

/// Writes `cpuset.cpus` and `cpuset.mems`; an empty value leaves the
/// inherited one in place.
pub(crate) fn write_limits(dir: &Path, res: &LinuxResources) -> Result<(), CgroupError> {
    let Some(cpu) = res.cpu() else {
        return Ok(());
    };
    if let Some(cpus) = cpu.cpus().as_deref().filter(|s| !s.is_empty()) {
        fsutil::write(dir, "cpuset.cpus", cpus)?;
    }
    if let Some(mems) = cpu.mems().as_deref().filter(|s| !s.is_empty()) {
        fsutil::write(dir, "cpuset.mems", mems)?;
    }
    Ok(())
}

impl V1Controller for Cpuset {
    fn subsystem(&self) -> &'static str {
        "cpuset"
    }

    fn wants(&self, res: &LinuxResources) -> bool {
        wanted(res)
    }

    fn apply(&self, dir: &Path, res: &LinuxResources) -> Result<(), CgroupError> {
        write_limits(dir, res)
    }
}

/// Creates `dir` below the cpuset hierarchy at `mount`, level by level. A
/// new v1 cpuset starts with empty `cpuset.cpus`/`cpuset.mems`, and no task
/// can join it until both are set, so every level gets its parent's values
/// copied in when empty.
///
/// A shared parent (`--cgroup-parent`) may be removed by whoever cleans
/// it up once it is empty, possibly between two levels here;
/// recreating it on the way (`mkdir -p`) would leave it empty and the
/// container unable to join. So each level is made on its own, and a
/// parent that vanished restarts the walk from the top.
pub(crate) fn create_with_parents(mount: &Path, dir: &Path) -> Result<(), CgroupError> {
    const ATTEMPTS: usize = 10;
    for attempt in 1..=ATTEMPTS {
        match create_levels(mount, dir) {
            Err(e) if e.is_vanished_dir() && attempt < ATTEMPTS => {}
            r => return r,
        }
    }
    Ok(())
}

fn create_levels(mount: &Path, dir: &Path) -> Result<(), CgroupError> {
    let relative = dir.strip_prefix(mount).unwrap_or(dir);
    let mut current = mount.to_path_buf();
    for part in relative.components() {
        let parent = current.clone();
        current.push(part);
        match std::fs::create_dir(&current) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(CgroupError::Mkdir {
                    path: current,
                    source,
                })
            }
        }
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let own = fsutil::read(&current.join(file))?;
            if own.trim().is_empty() {
                let inherited = fsutil::read(&parent.join(file))?;
                let inherited = inherited.trim();
                if !inherited.is_empty() {
                    fsutil::write(&current, file, inherited)?;
                }
            }
        }
    }
    Ok(())
}
