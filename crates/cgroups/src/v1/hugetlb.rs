//! v1 `hugetlb`: limits per huge page size.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::V1Controller;
use crate::stats::{HugetlbStats, Stats};
use crate::{fsutil, CgroupError};

pub(crate) struct Hugetlb;

pub(crate) fn wanted(res: &LinuxResources) -> bool {
    res.hugepage_limits()
        .as_ref()
        .is_some_and(|l| !l.is_empty())
}

/// Refuses page sizes that would make a file name outside the controller.
pub(crate) fn check_page_size(size: &str) -> Result<(), CgroupError> {
    let ok = !size.is_empty() && size.chars().all(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(CgroupError::InvalidResource {
            field: "hugepageLimits.pageSize",
            value: size.to_string(),
            reason: "expected a size such as 2MB or 1GB".to_string(),
        })
    }
}

/// The page sizes a hugetlb cgroup directory has files for.
pub(crate) fn page_sizes(dir: &Path, suffix: &str) -> Result<Vec<String>, CgroupError> {
    let entries = std::fs::read_dir(dir).map_err(|source| CgroupError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut sizes = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(size) = name
            .strip_prefix("hugetlb.")
            .and_then(|n| n.strip_suffix(suffix))
        {
            if !size.contains('.') {
                sizes.push(size.to_string());
            }
        }
    }
    sizes.sort();
    Ok(sizes)
}

impl V1Controller for Hugetlb {
    fn subsystem(&self) -> &'static str {
        "hugetlb"
    }

    fn wants(&self, res: &LinuxResources) -> bool {
        wanted(res)
    }

    fn apply(&self, dir: &Path, res: &LinuxResources) -> Result<(), CgroupError> {
        for limit in res.hugepage_limits().iter().flatten() {
            let size = limit.page_size();
            check_page_size(size)?;
            fsutil::write(
                dir,
                &format!("hugetlb.{size}.limit_in_bytes"),
                limit.limit(),
            )?;
            // Reservations (5.7+) are limited alongside, as runc does.
            fsutil::write_if_exists(
                dir,
                &format!("hugetlb.{size}.rsvd.limit_in_bytes"),
                limit.limit(),
            )?;
        }
        Ok(())
    }

    fn stats(&self, dir: &Path, stats: &mut Stats) -> Result<(), CgroupError> {
        for size in page_sizes(dir, ".usage_in_bytes")? {
            let file = |n: &str| dir.join(format!("hugetlb.{size}.{n}"));
            let entry = HugetlbStats {
                usage: fsutil::read_u64_or_zero(&file("usage_in_bytes"))?,
                max: fsutil::read_u64_or_zero(&file("max_usage_in_bytes"))?,
                failcnt: fsutil::read_u64_or_zero(&file("failcnt"))?,
            };
            stats.hugetlb.insert(size, entry);
        }
        Ok(())
    }
}
