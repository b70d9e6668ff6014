//! The container's OOM-kill counter, read from its memory cgroup.
//!
//! The runtime removes the cgroup when the container is deleted, so the
//! monitor locates it from `/proc/<pid>/cgroup` while the container runs and
//! reads the counter after the exit, before `delete`. Works on cgroup v1
//! (`memory.oom_control`, field `oom_kill`), on hybrid hosts (the memory
//! controller is a v1 one there) and on v2 (`memory.events`, `oom_kill`).

use std::path::{Path, PathBuf};

/// Where a container's OOM-kill count can be read.
#[derive(Debug, Clone, PartialEq)]
pub struct OomCounter {
    file: PathBuf,
    /// The count when the container started (a reused cgroup may carry one).
    baseline: u64,
}

impl OomCounter {
    /// Locates the memory cgroup of the container whose init is `pid`
    /// (host view): from `/proc/<pid>/cgroup` while the init runs, else
    /// (it may already have been OOM-killed) from the bundle's
    /// `linux.cgroupsPath`. `None` when neither leads to a readable counter.
    pub fn locate(pid: i32, bundle: &Path) -> Option<OomCounter> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        let file = running_cgroups(pid)
            .and_then(|cgroups| counter_file(&cgroups, &mountinfo))
            .or_else(|| spec_counter_file(bundle, &mountinfo))?;
        // A count that exists already (a reused cgroup) is not this run's.
        let baseline = if running_cgroups(pid).is_some() {
            read_count(&file).unwrap_or(0)
        } else {
            0
        };
        Some(OomCounter { file, baseline })
    }

    /// Whether OOM kills happened in the cgroup since the start.
    pub fn oom_killed(&self) -> bool {
        read_count(&self.file).is_some_and(|n| n > self.baseline)
    }
}

/// `/proc/<pid>/cgroup` of a live (not zombie) process.
fn running_cgroups(pid: i32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(") ")?;
    if rest.starts_with('Z') || rest.starts_with('X') {
        return None;
    }
    std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()
}

/// The counter file from the bundle's `linux.cgroupsPath` (absolute, or
/// relative to the monitor's own cgroup like runc resolves it; systemd's
/// `slice:prefix:name` form is not followed).
fn spec_counter_file(bundle: &Path, mountinfo: &str) -> Option<PathBuf> {
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).ok()?).ok()?;
    let path = spec.get("linux")?.get("cgroupsPath")?.as_str()?;
    if path.is_empty() || path.contains(':') {
        return None;
    }
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let resolve = |base: Option<&str>| -> String {
        if path.starts_with('/') {
            path.to_string()
        } else {
            format!("{}/{path}", base.unwrap_or("").trim_end_matches('/'))
        }
    };
    let own_of = |pred: &dyn Fn(&str) -> bool| {
        own.lines().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, controllers, p) = (parts.next()?, parts.next()?, parts.next()?);
            pred(controllers).then(|| p.to_string())
        })
    };
    let v1 = own_of(&|c: &str| c.split(',').any(|c| c == "memory"));
    let v2 = own_of(&|c: &str| c.is_empty());
    let cgroups = format!(
        "1:memory:{}\n0::{}\n",
        resolve(v1.as_deref()),
        resolve(v2.as_deref())
    );
    // Without a v1 memory hierarchy the first line is ignored.
    counter_file(&cgroups, mountinfo)
        .or_else(|| counter_file(&format!("0::{}\n", resolve(v2.as_deref())), mountinfo))
}

fn read_count(file: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|l| {
        let (key, value) = l.split_once(' ')?;
        (key == "oom_kill").then(|| value.trim().parse().ok())?
    })
}

/// The counter file from the contents of `/proc/<pid>/cgroup` and
/// `/proc/self/mountinfo`: the v1 memory hierarchy when one is mounted,
/// else the v2 one.
fn counter_file(cgroups: &str, mountinfo: &str) -> Option<PathBuf> {
    let mut v2_path = None;
    for line in cgroups.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        if controllers.split(',').any(|c| c == "memory") {
            let mount = mount_point(mountinfo, |fstype, opts| {
                fstype == "cgroup" && opts.split(',').any(|o| o == "memory")
            })?;
            return Some(join_cgroup(&mount, path).join("memory.oom_control"));
        }
        if controllers.is_empty() {
            v2_path = Some(path.to_string());
        }
    }
    let path = v2_path?;
    let mount = mount_point(mountinfo, |fstype, _| fstype == "cgroup2")?;
    let dir = join_cgroup(&mount, &path);
    // On a hybrid host the v2 tree has no memory controller.
    dir.join("memory.events")
        .exists()
        .then(|| dir.join("memory.events"))
}

fn join_cgroup(mount: &Path, path: &str) -> PathBuf {
    mount.join(path.trim_start_matches('/'))
}

/// The mount point of the first mount whose filesystem type and super
/// options satisfy `pred`.
fn mount_point(mountinfo: &str, pred: impl Fn(&str, &str) -> bool) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        let sep = fields.iter().position(|f| *f == "-")?;
        let fstype = fields.get(sep + 1)?;
        let super_opts = fields.get(sep + 3)?;
        if pred(fstype, super_opts) {
            Some(PathBuf::from(fields.get(4)?))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTS: &str = "\
30 24 0:26 / /sys/fs/cgroup rw,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
36 30 0:32 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
";

    #[test]
    fn v1_memory_wins_on_hybrid() {
        let cg = "12:memory:/berth/abc\n0::/berth/abc\n";
        assert_eq!(
            counter_file(cg, HYBRID_MOUNTS),
            Some(PathBuf::from(
                "/sys/fs/cgroup/memory/berth/abc/memory.oom_control"
            ))
        );
    }

    #[test]
    fn a_dead_init_is_found_through_the_spec() {
        // A reaped child's pid: no /proc entry, as for an init OOM-killed
        // before the monitor looked.
        let mut child = std::process::Command::new("/bin/true")
            .spawn()
            .expect("spawn");
        let pid = i32::try_from(child.id()).expect("pid");
        child.wait().expect("wait");
        let dir = berth_testutil::TempDir::new("oomspec").expect("tmp");
        std::fs::write(
            dir.join("config.json"),
            r#"{"linux":{"cgroupsPath":"/berth/oom-spec-test"}}"#,
        )
        .expect("spec");
        let found = OomCounter::locate(pid, dir.path());
        if std::path::Path::new("/sys/fs/cgroup/memory/memory.oom_control").exists() {
            let found = found.expect("counter from the spec");
            assert_eq!(
                found.file,
                PathBuf::from("/sys/fs/cgroup/memory/berth/oom-spec-test/memory.oom_control")
            );
            assert!(!found.oom_killed());
        }
        std::fs::write(dir.join("config.json"), r#"{"linux":{}}"#).expect("spec");
        assert_eq!(OomCounter::locate(pid, dir.path()), None);
    }

    #[test]
    fn v2_needs_memory_events() {
        let mounts = "31 30 0:27 / /nonexistent-cgroup2 rw - cgroup2 cgroup2 rw\n";
        assert_eq!(counter_file("0::/x\n", mounts), None);
    }
}
