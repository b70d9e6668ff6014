//! The container's cgroup as the runtime uses it: where it goes by default.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;

/// The spec's `linux.cgroupsPath`, or `/<id>` when it has none: where runc
/// and crun put such a container too. One level below the root, so there
/// is no shared parent to make before the container's cgroup and to remove
/// after it (on v1 that parent doubles the mkdirs and rmdirs, one per
/// hierarchy, and its cpuset needs filling). A parent that `cgroupsPath`
/// names stays after the delete, as with runc: it belongs to whoever chose it.
pub fn cgroup_path(spec: &Spec, id: &str) -> PathBuf {
    spec.linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().clone())
        .unwrap_or_else(|| Path::new("/").join(id))
}
