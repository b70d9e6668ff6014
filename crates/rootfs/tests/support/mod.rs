//! Harness of the root tests: runs prepare/pivot/finalize in a forked child
//! with its own mount namespace (std's pre_exec), then execs the rootfs'
//! busybox to look at the result from inside.

#![allow(dead_code)] // each test binary uses part of the harness

use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use berth_rootfs::{finalize, pivot, prepare, Placement, RootfsError, RootfsOptions};
use berth_testutil::TempDir;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use oci_spec::runtime::Spec;

/// A private directory holding a busybox rootfs (and whatever else a test needs on the "host").
pub struct Fixture {
    pub dir: TempDir,
    pub rootfs: PathBuf,
    /// Mounts the test made in the host's namespace, unmounted on drop.
    host_mounts: Vec<PathBuf>,
}

impl Fixture {
    pub fn new(name: &str) -> Self {
        let dir =
            TempDir::new(&format!("rootfs-{name}")).unwrap_or_else(|e| panic!("tempdir: {e}"));
        let rootfs = dir.join("rootfs");
        berth_testutil::busybox_rootfs(&rootfs).unwrap_or_else(|e| panic!("busybox rootfs: {e}"));
        Self {
            dir,
            rootfs,
            host_mounts: Vec::new(),
        }
    }

    /// A directory next to the rootfs, on the host side.
    pub fn host_dir(&self, name: &str) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::create_dir_all(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
        p
    }

    /// Mounts in the host's mount namespace, remembered for cleanup.
    pub fn host_mount(
        &mut self,
        source: &str,
        target: &Path,
        fs_type: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) {
        mount(Some(source), target, fs_type, flags, data)
            .unwrap_or_else(|e| panic!("host mount {}: {e}", target.display()));
        if !flags.intersects(
            MsFlags::MS_REMOUNT | MsFlags::MS_SHARED | MsFlags::MS_PRIVATE | MsFlags::MS_SLAVE,
        ) {
            self.host_mounts.push(target.to_path_buf());
        }
    }

    /// A small tmpfs on the host at `target`, remembered for cleanup.
    pub fn host_tmpfs(&mut self, target: &Path, flags: MsFlags) {
        self.host_mount("tmpfs", target, Some("tmpfs"), flags, Some("size=1m"));
    }

    pub fn host_umount(&mut self, target: &Path) {
        umount2(target, MntFlags::MNT_DETACH)
            .unwrap_or_else(|e| panic!("umount {}: {e}", target.display()));
        self.host_mounts.retain(|p| p != target);
    }

    /// Fails when anything of this fixture is still mounted on the host.
    pub fn assert_no_host_mounts(&mut self) {
        for p in std::mem::take(&mut self.host_mounts).into_iter().rev() {
            let _ = umount2(&p, MntFlags::MNT_DETACH);
        }
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let base = self.dir.path().to_string_lossy().into_owned();
        let leaked: Vec<&str> = info.lines().filter(|l| l.contains(&base)).collect();
        assert!(leaked.is_empty(), "mounts leaked to the host: {leaked:#?}");
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for p in self.host_mounts.iter().rev() {
            let _ = umount2(p, MntFlags::MNT_DETACH);
        }
    }
}

/// Exit status of a child whose setup failed.
pub const SETUP_FAILED: i32 = 97;

/// The options of one container run.
#[derive(Clone, Default)]
pub struct Setup {
    pub readonly: bool,
    pub no_pivot: bool,
    pub console: Option<PathBuf>,
    /// Also unshare a user namespace mapping root to root (mounts become locked).
    pub user_ns: bool,
    pub cgroup_ns: bool,
}

pub fn spec(json: &str) -> Spec {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("spec: {e}\n{json}"))
}

/// runc's default mounts and paths (`runc spec`), with `extra_mounts` appended
/// to the mounts and `linux_extra` added to "linux".
pub fn default_spec(extra_mounts: &str, linux_extra: &str) -> Spec {
    let sep = if extra_mounts.is_empty() { "" } else { "," };
    let lsep = if linux_extra.is_empty() { "" } else { "," };
    spec(&format!(
        r#"{{"ociVersion":"1.0.2","root":{{"path":"rootfs"}},"mounts":[
        {{"destination":"/proc","type":"proc","source":"proc","options":["nosuid","noexec","nodev"]}},
        {{"destination":"/dev","type":"tmpfs","source":"tmpfs","options":["nosuid","strictatime","mode=755","size=65536k"]}},
        {{"destination":"/dev/pts","type":"devpts","source":"devpts","options":["nosuid","noexec","newinstance","ptmxmode=0666","mode=0620"]}},
        {{"destination":"/dev/shm","type":"tmpfs","source":"shm","options":["nosuid","noexec","nodev","mode=1777","size=65536k"]}},
        {{"destination":"/dev/mqueue","type":"mqueue","source":"mqueue","options":["nosuid","noexec","nodev"]}},
        {{"destination":"/sys","type":"sysfs","source":"sysfs","options":["nosuid","noexec","nodev","ro"]}},
        {{"destination":"/sys/fs/cgroup","type":"cgroup","source":"cgroup","options":["nosuid","noexec","nodev","relatime","ro"]}}{sep}
        {extra_mounts}],
        "linux":{{
        "maskedPaths":["/proc/acpi","/proc/asound","/proc/kcore","/proc/keys","/proc/latency_stats","/proc/timer_list",
            "/proc/timer_stats","/proc/sched_debug","/sys/firmware","/proc/scsi","/does/not/exist"],
        "readonlyPaths":["/proc/bus","/proc/fs","/proc/irq","/proc/sys","/proc/sysrq-trigger"]{lsep}
        {linux_extra}}}}}"#
    ))
}

/// The error and its causes, one line, like `anyhow`'s `{:#}`.
pub fn chain(e: &RootfsError) -> String {
    let mut s = e.to_string();
    let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Sets the container up in a forked child and runs `script` with its busybox sh.
pub fn run(fx: &Fixture, spec: &Spec, setup: &Setup, script: &str) -> Output {
    spawn(fx, spec, setup, script)
        .wait_with_output()
        .unwrap_or_else(|e| panic!("wait: {e}"))
}

pub fn spawn(fx: &Fixture, spec: &Spec, setup: &Setup, script: &str) -> std::process::Child {
    let spec = spec.clone();
    let setup = setup.clone();
    let rootfs = fx.rootfs.clone();
    let mut cmd = Command::new("/bin/busybox");
    cmd.args(["sh", "-c", script])
        .env_clear()
        .env("PATH", "/bin")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: the child is single-threaded after fork; the closure only makes
    // syscalls and formats an error message, and the test process' other
    // thread (libtest's main) holds no lock the child needs.
    unsafe {
        cmd.pre_exec(move || in_child(&spec, &setup, &rootfs));
    }
    cmd.spawn()
        .unwrap_or_else(|e| panic!("spawn container: {e}"))
}

fn in_child(spec: &Spec, setup: &Setup, rootfs: &Path) -> io::Result<()> {
    let mut flags = CloneFlags::CLONE_NEWNS;
    if setup.cgroup_ns {
        flags |= CloneFlags::CLONE_NEWCGROUP;
    }
    if setup.user_ns {
        unshare(CloneFlags::CLONE_NEWUSER).map_err(io::Error::from)?;
        std::fs::write("/proc/self/setgroups", "deny")?;
        std::fs::write("/proc/self/uid_map", "0 0 1")?;
        std::fs::write("/proc/self/gid_map", "0 0 1")?;
    }
    if setup.user_ns {
        // an IPC namespace owned by the new user namespace, so mqueue can be mounted
        flags |= CloneFlags::CLONE_NEWIPC;
    }
    unshare(flags).map_err(io::Error::from)?;
    let opts = RootfsOptions {
        rootfs,
        readonly: setup.readonly,
        no_pivot: setup.no_pivot,
        console: setup.console.as_deref(),
        user_ns: setup.user_ns,
        cgroup_ns: setup.cgroup_ns,
        mount_label: None,
    };
    // Exit with the message on stderr rather than failing the exec: a failed
    // pre_exec would lose the child's output.
    let report = |step: &str, e: RootfsError| -> ! {
        eprintln!("{step}: {}", chain(&e));
        // SAFETY: _exit ends the forked child without running the parent's atexit handlers.
        unsafe { libc::_exit(SETUP_FAILED) }
    };
    let mut placements = 0;
    let mut placed = || -> Result<(), String> {
        placements += 1;
        Ok(())
    };
    prepare(spec, &opts, &mut Placement::new(&mut placed)).unwrap_or_else(|e| report("prepare", e));
    if placements != 1 {
        eprintln!("prepare waited for the cgroup placement {placements} times, not once");
        // SAFETY: as above.
        unsafe { libc::_exit(SETUP_FAILED) }
    }
    pivot(&opts).unwrap_or_else(|e| report("pivot", e));
    finalize(spec, &opts).unwrap_or_else(|e| report("finalize", e));
    Ok(())
}

/// stdout of a container run that must succeed.
pub fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "container failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// True when `o` is one of the mount options `opts`.
pub fn has(opts: &[String], o: &str) -> bool {
    opts.iter().any(|x| x == o)
}

/// The mountinfo line of `mount_point` in a container's `cat /proc/self/mountinfo`.
pub fn mount_line<'a>(mountinfo: &'a str, mount_point: &str) -> Option<&'a str> {
    mountinfo
        .lines()
        .rev()
        .find(|l| l.split(' ').nth(4) == Some(mount_point))
}

/// Per-mount options (field 6) and filesystem type of `mount_point`.
pub fn mount_opts(mountinfo: &str, mount_point: &str) -> (Vec<String>, String, String) {
    let line = mount_line(mountinfo, mount_point)
        .unwrap_or_else(|| panic!("{mount_point} is not mounted:\n{mountinfo}"));
    let (head, tail) = line.split_once(" - ").unwrap_or((line, ""));
    let opts = head
        .split(' ')
        .nth(5)
        .unwrap_or("")
        .split(',')
        .map(str::to_string)
        .collect();
    let mut tail = tail.split(' ');
    let fs_type = tail.next().unwrap_or("").to_string();
    let super_opts = tail.nth(1).unwrap_or("").to_string();
    (opts, fs_type, super_opts)
}
