//! `linux.resources.unified`: raw cgroup v2 key → file writes, applied
//! after everything else so that they take precedence.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::{fsutil, CgroupError};

/// A key names one file in the cgroup directory itself: no path
/// separators, no `..`, nothing empty.
pub(crate) fn check_key(key: &str) -> Result<(), CgroupError> {
    if key.is_empty() || key.contains('/') || key.contains("..") || key.contains('\0') {
        return Err(CgroupError::InvalidResource {
            field: "unified",
            value: key.to_string(),
            reason: "a key is a file name in the cgroup directory (no '/' or '..')".to_string(),
        });
    }
    Ok(())
}

pub(crate) fn apply(dir: &Path, res: &LinuxResources) -> Result<(), CgroupError> {
    let Some(unified) = res.unified() else {
        return Ok(());
    };
    let mut entries: Vec<_> = unified.iter().collect();
    entries.sort();
    for (key, _) in &entries {
        check_key(key)?;
    }
    for (key, value) in entries {
        match fsutil::write(dir, key, value) {
            Ok(()) => {}
            Err(CgroupError::Write { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                // Most likely the key's controller is not enabled here.
                let controller = key.split('.').next().unwrap_or(key);
                return Err(CgroupError::ControllerMissing {
                    controller: controller.to_string(),
                    what: format!("unified key {key:?}"),
                    path: dir.to_path_buf(),
                });
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
