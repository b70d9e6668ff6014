//! Finding the cgroup hierarchies: the mode from `statfs`, the mounts from
//! `/proc/self/mountinfo`, and cleaning the OCI cgroups path.

use std::path::{Component, Path, PathBuf};

use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC, CGROUP_SUPER_MAGIC, TMPFS_MAGIC};

use crate::{fsutil, CgroupError, CgroupMode, Hierarchy};

pub(crate) const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The v1 controllers the kernel knows; other mount options (`rw`,
/// `relatime`, `clone_children`, `release_agent=…`) are not controllers.
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "perf_event",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

pub(crate) fn detect_mode_at(root: &Path) -> Result<CgroupMode, CgroupError> {
    let fs_type = |path: &Path| {
        statfs(path)
            .map(|s| s.filesystem_type())
            .map_err(|source| CgroupError::Statfs {
                path: path.to_path_buf(),
                source,
            })
    };
    let root_type = fs_type(root)?;
    if root_type == CGROUP2_SUPER_MAGIC {
        return Ok(CgroupMode::Unified);
    }
    if root_type != TMPFS_MAGIC && root_type != CGROUP_SUPER_MAGIC {
        // f_type is __fsword_t, whose width differs between architectures.
        #[allow(clippy::unnecessary_cast)]
        return Err(CgroupError::NotCgroupFs {
            path: root.to_path_buf(),
            fs_type: root_type.0 as i64,
        });
    }
    let unified = root.join("unified");
    match fs_type(&unified) {
        Ok(t) if t == CGROUP2_SUPER_MAGIC => Ok(CgroupMode::Hybrid),
        // Absent, or a plain directory on the tmpfs: no cgroup2 mounted.
        Ok(_) => Ok(CgroupMode::Legacy),
        Err(CgroupError::Statfs {
            source: nix::errno::Errno::ENOENT,
            ..
        }) => Ok(CgroupMode::Legacy),
        Err(e) => Err(e),
    }
}

pub(crate) fn hierarchies_from(mountinfo: &Path) -> Result<Vec<Hierarchy>, CgroupError> {
    let text = fsutil::read(mountinfo)?;
    Ok(parse_mountinfo(&text))
}

/// Parses the cgroup and cgroup2 mounts out of a mountinfo text. A
/// hierarchy mounted twice is listed once (its first mount). By hand because
/// procfs-core's `MountInfo` keeps the `\040` escapes in paths and holds
/// super options in a map, losing the kernel's controller order.
pub(crate) fn parse_mountinfo(text: &str) -> Vec<Hierarchy> {
    let mut out: Vec<Hierarchy> = Vec::new();
    for line in text.lines() {
        // "36 35 98:0 /root /mnt/point opts [optional…] - fstype source superopts"
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        let (Some(mount_point), Some(fstype)) = (left.get(4), right.first()) else {
            continue;
        };
        let mount_point = PathBuf::from(unescape_mountinfo(mount_point));
        let hierarchy = match *fstype {
            "cgroup2" => Hierarchy {
                version: 2,
                mount_point,
                controllers: Vec::new(),
            },
            "cgroup" => {
                let opts = right.get(2).copied().unwrap_or("");
                let controllers: Vec<String> = opts
                    .split(',')
                    .filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name="))
                    .map(str::to_string)
                    .collect();
                Hierarchy {
                    version: 1,
                    mount_point,
                    controllers,
                }
            }
            _ => continue,
        };
        let duplicate = out.iter().any(|h| {
            h.version == hierarchy.version
                && h.controllers == hierarchy.controllers
                && (h.version == 1 || h.mount_point == hierarchy.mount_point)
        });
        if !duplicate {
            out.push(hierarchy);
        }
    }
    out
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let octal = std::str::from_utf8(&bytes[i + 1..i + 4]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(octal, 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Turns an OCI `cgroupsPath` into an absolute, normalised path below the
/// hierarchy root. Relative paths are placed under the root too (runc's
/// cgroupfs driver); `..` may not climb above the root, and the root
/// itself cannot be a container's cgroup.
pub(crate) fn clean_cgroup_path(path: &Path) -> Result<PathBuf, CgroupError> {
    let invalid = |reason: &str| CgroupError::InvalidPath {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for component in path.components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(p) => parts.push(p),
            Component::ParentDir => {
                if parts.pop().is_none() {
                    return Err(invalid("climbs above the cgroup root"));
                }
            }
            Component::Prefix(_) => return Err(invalid("unexpected path prefix")),
        }
    }
    if parts.is_empty() {
        return Err(invalid("the root cgroup cannot be a container's cgroup"));
    }
    let mut clean = PathBuf::from("/");
    clean.extend(parts);
    Ok(clean)
}

/// `base` joined with the absolute cgroup path `path`.
pub(crate) fn join(base: &Path, path: &Path) -> PathBuf {
    base.join(path.strip_prefix("/").unwrap_or(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
33 31 0:30 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
34 31 0:31 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,release_agent=/x,name=systemd
35 31 0:32 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
36 23 0:30 / /mnt/mem\\040copy rw,relatime - cgroup cgroup rw,memory
40 23 0:40 / /tmp rw - ext4 /dev/sda1 rw
";

    #[test]
    fn mountinfo_lists_v1_and_v2_hierarchies_once() {
        let h = parse_mountinfo(HYBRID);
        assert_eq!(h.len(), 4, "{h:?}");
        assert_eq!(h[0].mount_point, Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(h[0].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(h[1].controllers, vec!["memory"]);
        assert_eq!(h[2].controllers, vec!["name=systemd"]);
        assert_eq!(h[3].version, 2);
        assert!(h[3].controllers.is_empty());
    }

    #[test]
    fn mountinfo_unescapes_octal() {
        assert_eq!(unescape_mountinfo("/mnt/a\\040b"), "/mnt/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
        assert_eq!(unescape_mountinfo("/trail\\"), "/trail\\");
    }

    #[test]
    fn cgroup_paths_are_cleaned_and_bounded() {
        assert_eq!(
            clean_cgroup_path(Path::new("/berth/x")).unwrap(),
            Path::new("/berth/x")
        );
        assert_eq!(
            clean_cgroup_path(Path::new("berth/x/")).unwrap(),
            Path::new("/berth/x")
        );
        assert_eq!(
            clean_cgroup_path(Path::new("/a/../b/./c")).unwrap(),
            Path::new("/b/c")
        );
        assert!(clean_cgroup_path(Path::new("/../etc")).is_err());
        assert!(clean_cgroup_path(Path::new("a/../..")).is_err());
        assert!(clean_cgroup_path(Path::new("/")).is_err());
        assert_eq!(
            join(Path::new("/sys/fs/cgroup/memory"), Path::new("/b/c")),
            Path::new("/sys/fs/cgroup/memory/b/c")
        );
    }

    #[test]
    fn this_host_is_detected_from_the_filesystem() {
        // Whatever the host is, detection must agree with the mounts.
        let Ok(mode) = detect_mode_at(Path::new(CGROUP_ROOT)) else {
            eprintln!("SKIPPED: no cgroup filesystem at {CGROUP_ROOT}");
            return;
        };
        let h = hierarchies_from(Path::new("/proc/self/mountinfo")).unwrap();
        let v1 = h.iter().filter(|h| h.version == 1).count();
        let v2 = h.iter().filter(|h| h.version == 2).count();
        match mode {
            CgroupMode::Unified => assert_eq!(v1, 0),
            CgroupMode::Hybrid => assert!(v1 > 0 && v2 > 0),
            CgroupMode::Legacy => assert!(v1 > 0),
        }
    }
}
