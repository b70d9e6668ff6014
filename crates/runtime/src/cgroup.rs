//! The container's cgroup as the runtime uses it: where it goes by default,
//! and how it is removed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_cgroups::{CgroupError, CgroupManager};
use oci_spec::runtime::Spec;

/// The parent of every container cgroup whose spec names none.
const DEFAULT_PARENT: &str = "/berth";

/// The spec's `linux.cgroupsPath`, or `/berth/<id>` when it has none.
pub fn cgroup_path(spec: &Spec, id: &str) -> PathBuf {
    spec.linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().clone())
        .unwrap_or_else(|| Path::new(DEFAULT_PARENT).join(id))
}

/// Removes the container's cgroup, retrying while its last processes
/// leave it (the kernel detaches exiting tasks asynchronously), for at most
/// `attempts` × 2 ms. The shared default parent goes too once it is empty,
/// so nothing the runtime made stays on the host after the last delete; a
/// parallel create that loses that race retries (`create_retrying`).
pub fn destroy(cgroup: &dyn CgroupManager, attempts: u32) -> Result<(), CgroupError> {
    let mut result = cgroup.destroy();
    for _ in 1..attempts {
        if result.is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
        result = cgroup.destroy();
    }
    result?;
    if cgroup.path().parent() == Some(Path::new(DEFAULT_PARENT)) {
        berth_cgroups::remove_if_empty(Path::new(DEFAULT_PARENT))?;
    }
    Ok(())
}
