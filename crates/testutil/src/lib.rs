//! Shared fixtures for berth's integration tests.
//!
//! Tests build their images and bundles from the host's static busybox
//! (`/bin/busybox`, Debian package `busybox-static`): there is no registry to
//! pull from on the test machines.

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

/// Path of the static busybox the fixtures are built from.
pub const BUSYBOX: &str = "/bin/busybox";

/// True when the process runs as root; root-only tests call [`require_root!`].
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Skips (returns early from) a test that needs root, printing why, so the
/// report shows it was not exercised.
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::is_root() {
            eprintln!("SKIPPED: this test needs root");
            return;
        }
    };
}

/// Fills `dir` with a minimal busybox root filesystem: `/bin/busybox`, one
/// symlink per applet, `/etc/passwd`, `/etc/group` and the usual empty
/// mount points.
pub fn busybox_rootfs(dir: &Path) -> io::Result<()> {
    for d in [
        "bin", "etc", "tmp", "proc", "sys", "dev", "root", "usr/bin", "var",
    ] {
        fs::create_dir_all(dir.join(d))?;
    }
    fs::copy(BUSYBOX, dir.join("bin/busybox"))?;
    let out = std::process::Command::new(BUSYBOX).arg("--list").output()?;
    for applet in String::from_utf8_lossy(&out.stdout).lines() {
        let applet = applet.trim();
        if applet.is_empty() || applet == "busybox" {
            continue;
        }
        let link = dir.join("bin").join(applet);
        if !link.exists() {
            symlink("busybox", link)?;
        }
    }
    fs::write(
        dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )?;
    fs::write(dir.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
    fs::set_permissions(
        dir.join("tmp"),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )?;
    Ok(())
}

/// A private temporary directory that is removed on drop, unmounting
/// anything a failed test left mounted beneath it first.
pub struct TempDir {
    dir: tempfile::TempDir,
}

impl TempDir {
    pub fn new(prefix: &str) -> io::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("berth-test-{prefix}-"))
            .tempdir()?;
        Ok(Self { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        unmount_below(self.dir.path());
    }
}

/// Lazily unmounts every mount point at or below `dir` (deepest first), so
/// that removing the directory never descends into a mounted filesystem.
pub fn unmount_below(dir: &Path) {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mountinfo(p)))
        .filter(|p| p.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in points {
        let _ = nix::mount::umount2(&p, nix::mount::MntFlags::MNT_DETACH);
    }
}

fn unescape_mountinfo(s: &str) -> String {
    // mountinfo escapes space, tab, newline and backslash as \ooo octal.
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
