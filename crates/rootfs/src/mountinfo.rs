//! Small parsers for /proc/self/mountinfo and /proc/self/cgroup: just the
//! fields the cgroup mounts and the no-pivot cleanup need. By hand because
//! procfs-core's `MountInfo` keeps the `\040` escapes in paths. The same
//! mountinfo line format is parsed in berth-cgroups (`mount.rs`); neither
//! crate depends on the other.

use std::path::PathBuf;

use crate::RootfsError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MountEntry {
    /// Path of the mount's root within its filesystem.
    pub root: PathBuf,
    pub mount_point: PathBuf,
    pub fs_type: String,
    /// Filesystem-specific options ("rw,cpu,cpuacct" for a cgroup v1 hierarchy).
    pub super_options: String,
    /// The mount is in a shared peer group (optional field `shared:N`).
    pub shared: bool,
}

/// One line of /proc/self/cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CgroupEntry {
    /// Controllers of a v1 hierarchy ("cpu,cpuacct", "name=systemd"); empty for v2.
    pub controllers: String,
    pub path: PathBuf,
}

pub(crate) fn read_mountinfo(context: &str) -> Result<Vec<MountEntry>, RootfsError> {
    Ok(parse_mountinfo(&read(context, "/proc/self/mountinfo")?))
}

pub(crate) fn read_cgroups(context: &str) -> Result<Vec<CgroupEntry>, RootfsError> {
    Ok(parse_cgroups(&read(context, "/proc/self/cgroup")?))
}

fn read(context: &str, path: &str) -> Result<String, RootfsError> {
    std::fs::read_to_string(path).map_err(|source| RootfsError::Io {
        context: context.to_string(),
        op: "read",
        path: PathBuf::from(path),
        source,
    })
}

pub(crate) fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let (head, tail) = line.split_once(" - ")?;
            let head: Vec<&str> = head.split(' ').collect();
            let mut tail = tail.split(' ');
            Some(MountEntry {
                root: PathBuf::from(unescape(head.get(3)?)),
                mount_point: PathBuf::from(unescape(head.get(4)?)),
                fs_type: tail.next()?.to_string(),
                super_options: tail.nth(1).unwrap_or_default().to_string(),
                shared: head.iter().skip(6).any(|f| f.starts_with("shared:")),
            })
        })
        .collect()
}

pub(crate) fn parse_cgroups(text: &str) -> Vec<CgroupEntry> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let _id = parts.next()?;
            let controllers = parts.next()?.to_string();
            let path = PathBuf::from(parts.next()?);
            Some(CgroupEntry { controllers, path })
        })
        .collect()
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            if let Some(v) = field
                .get(i + 1..i + 4)
                .and_then(|o| u8::from_str_radix(o, 8).ok())
            {
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

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
25 22 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
28 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:12 - cgroup cgroup rw,cpu,cpuacct
29 25 0:26 /docker /sys/fs/cgroup/systemd rw,nosuid shared:13 - cgroup cgroup rw,xattr,name=systemd
30 22 0:27 / /mnt/with\\040space rw - tmpfs none rw
";

    #[test]
    fn mountinfo_fields() {
        let m = parse_mountinfo(MOUNTINFO);
        assert_eq!(m.len(), 6);
        assert_eq!(m[2].fs_type, "cgroup2");
        assert_eq!(m[2].mount_point, PathBuf::from("/sys/fs/cgroup/unified"));
        assert_eq!(m[3].super_options, "rw,cpu,cpuacct");
        assert_eq!(m[4].root, PathBuf::from("/docker"));
        assert_eq!(m[5].mount_point, PathBuf::from("/mnt/with space"));
        assert!(m[0].shared);
        assert!(!m[5].shared);
    }

    #[test]
    fn cgroup_lines() {
        let c = parse_cgroups("12:cpu,cpuacct:/user.slice\n1:name=systemd:/a:b\n0::/x/y\n");
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].controllers, "cpu,cpuacct");
        assert_eq!(c[1].path, PathBuf::from("/a:b"));
        assert_eq!(c[2].controllers, "");
        assert_eq!(c[2].path, PathBuf::from("/x/y"));
    }
}
