//! v2 `hugetlb`: `hugetlb.<size>.max`.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use super::V2Controller;
use crate::stats::{HugetlbStats, Stats};
use crate::v1::hugetlb::{check_page_size, page_sizes, wanted};
use crate::{fsutil, CgroupError};

pub(crate) struct Hugetlb;

impl V2Controller for Hugetlb {
    fn controller(&self) -> Option<&'static str> {
        Some("hugetlb")
    }

    fn wants(&self, res: &LinuxResources) -> bool {
        wanted(res)
    }

    fn apply(&self, dir: &Path, res: &LinuxResources) -> Result<(), CgroupError> {
        for limit in res.hugepage_limits().iter().flatten() {
            let size = limit.page_size();
            check_page_size(size)?;
            fsutil::write(dir, &format!("hugetlb.{size}.max"), limit.limit())?;
            fsutil::write_if_exists(dir, &format!("hugetlb.{size}.rsvd.max"), limit.limit())?;
        }
        Ok(())
    }

    fn stats(&self, dir: &Path, stats: &mut Stats) -> Result<(), CgroupError> {
        for size in page_sizes(dir, ".current")? {
            let file = |n: &str| dir.join(format!("hugetlb.{size}.{n}"));
            let events = fsutil::read_keyed(&file("events"))?;
            let entry = HugetlbStats {
                usage: fsutil::read_u64_or_zero(&file("current"))?,
                // v2 keeps no peak usage for huge pages.
                max: 0,
                failcnt: events.get("max").copied().unwrap_or(0),
            };
            stats.hugetlb.insert(size, entry);
        }
        Ok(())
    }
}
