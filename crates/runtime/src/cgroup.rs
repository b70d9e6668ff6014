//! The container's cgroup as the runtime uses it: where it goes by default,
//! and how it is removed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_cgroups::{CgroupError, CgroupManager};
use oci_spec::runtime::Spec;

/// The spec's `linux.cgroupsPath`, or `/<id>` when it has none: where runc
/// and crun put such a container too. One level below the root, so there
/// is no shared parent to make before the container's cgroup and to remove
/// after it (on v1 that parent doubles the mkdirs and rmdirs, one per
/// hierarchy, and its cpuset needs filling).
pub fn cgroup_path(spec: &Spec, id: &str) -> PathBuf {
    spec.linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().clone())
        .unwrap_or_else(|| Path::new("/").join(id))
}

/// Removes the container's cgroup, retrying while its last processes
/// leave it (the kernel detaches exiting tasks asynchronously), for at most
/// `attempts` × 2 ms. A parent named by `cgroupsPath` stays, as with runc:
/// it belongs to whoever chose it.
pub fn destroy(cgroup: &dyn CgroupManager, attempts: u32) -> Result<(), CgroupError> {
    let mut result = cgroup.destroy();
    for _ in 1..attempts {
        if result.is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
        result = cgroup.destroy();
    }
    result
}
