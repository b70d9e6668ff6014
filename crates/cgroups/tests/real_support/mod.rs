//! Helpers for the tests on real cgroups: unique cgroup names, a guard
//! that kills and removes, busybox scripts that wait to be moved in.
#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use berth_cgroups::{manager, manager_at, CgroupManager, CgroupMode, Hierarchy};
use berth_testutil::BUSYBOX;
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType};

pub static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn unique_path(name: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    PathBuf::from(format!("/berth-test-{}-{n}-{name}", std::process::id()))
}

/// A busybox shell script that waits for a line on stdin before it runs,
/// so that it can be moved into the cgroup first.
pub struct Script {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    pub stdout: BufReader<ChildStdout>,
}

impl Script {
    pub fn spawn(script: &str) -> Script {
        let mut child = Command::new(BUSYBOX)
            .args(["sh", "-c", &format!("read go; {script}")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn busybox sh");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Script {
            child,
            stdin,
            stdout,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn go(&mut self) {
        let stdin = self.stdin.as_mut().expect("stdin");
        stdin.write_all(b"go\n").expect("start the script");
        stdin.flush().expect("flush");
    }

    pub fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("read a line from the script");
        line.trim().to_string()
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The test's cgroup: on drop, thaws it, kills everything in it and removes
/// it from every hierarchy.
pub struct TestCgroup {
    pub manager: Box<dyn CgroupManager>,
    pub unified_root_before: Option<String>,
}

impl TestCgroup {
    pub fn new(name: &str) -> TestCgroup {
        let manager = manager(&unique_path(name)).expect("cgroup manager for this host");
        TestCgroup {
            manager,
            unified_root_before: None,
        }
    }

    /// A pure-v2 manager over the hybrid host's cgroup2 tree, to exercise
    /// the v2 code on real cgroup2 (device programs and cgroup.freeze work
    /// there without controllers).
    pub fn on_unified_tree(name: &str) -> Option<TestCgroup> {
        let h = berth_cgroups::hierarchies()
            .expect("hierarchies")
            .into_iter()
            .find(|h| h.version == 2)?;
        let before = fs::read_to_string(h.mount_point.join("cgroup.subtree_control")).ok();
        let mount_point = h.mount_point.clone();
        let manager = manager_at(
            CgroupMode::Unified,
            vec![Hierarchy {
                version: 2,
                mount_point,
                controllers: vec![],
            }],
            &unique_path(name),
        )
        .expect("v2 manager");
        Some(TestCgroup {
            manager,
            unified_root_before: before,
        })
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = self.manager.thaw();
        for _ in 0..50 {
            let pids = self.manager.pids().unwrap_or_default();
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Err(e) = self.manager.destroy() {
            eprintln!("cleanup of {} failed: {e}", self.manager.path().display());
        }
        // A v2 manager enables the root's controllers for its subtree, as
        // runc does; on this shared host put the root back as it was.
        if let Some(before) = &self.unified_root_before {
            if let Some(h) = berth_cgroups::hierarchies()
                .ok()
                .and_then(|h| h.into_iter().find(|h| h.version == 2))
            {
                let file = h.mount_point.join("cgroup.subtree_control");
                let now = fs::read_to_string(&file).unwrap_or_default();
                for c in now
                    .split_whitespace()
                    .filter(|c| !before.split_whitespace().any(|b| b == *c))
                {
                    let _ = fs::write(&file, format!("-{c}"));
                }
            }
        }
    }
}

pub fn v1_dir(controller: &str, path: &Path) -> PathBuf {
    let h = berth_cgroups::hierarchies()
        .unwrap()
        .into_iter()
        .find(|h| h.version == 1 && h.controllers.iter().any(|c| c == controller))
        .unwrap_or_else(|| panic!("no v1 {controller} hierarchy"));
    h.mount_point.join(path.strip_prefix("/").unwrap())
}

pub fn unified_dir(path: &Path) -> PathBuf {
    let h = berth_cgroups::hierarchies()
        .unwrap()
        .into_iter()
        .find(|h| h.version == 2)
        .expect("cgroup2 mount");
    h.mount_point.join(path.strip_prefix("/").unwrap())
}

pub fn read_trim(path: impl AsRef<Path>) -> String {
    fs::read_to_string(path.as_ref())
        .unwrap_or_else(|e| panic!("{}: {e}", path.as_ref().display()))
        .trim()
        .to_string()
}

pub fn proc_state(pid: i32) -> char {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The state follows the parenthesised command name.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    after.chars().next().unwrap()
}

pub fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn device(
    allow: bool,
    typ: Option<LinuxDeviceType>,
    major: i64,
    minor: i64,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut b = LinuxDeviceCgroupBuilder::default()
        .allow(allow)
        .access(access);
    if let Some(t) = typ {
        b = b.typ(t).major(major).minor(minor);
    }
    b.build().unwrap()
}

pub fn host_mode() -> CgroupMode {
    berth_cgroups::detect_mode().expect("detect the cgroup mode")
}

pub fn v1_or_v2_pids_events(path: &Path) -> u64 {
    let dir = match host_mode() {
        CgroupMode::Unified => unified_dir(path),
        _ => v1_dir("pids", path),
    };
    let events = read_trim(dir.join("pids.events"));
    events
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Reads what the child wrote to stderr so far, after it exited.
pub trait StderrText {
    fn wait_with_output_keep(&mut self) -> String;
}

impl StderrText for Child {
    fn wait_with_output_keep(&mut self) -> String {
        let _ = self.wait();
        let mut s = String::new();
        if let Some(mut e) = self.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut s);
        }
        s
    }
}
