//! podman drives berth-runtime as its OCI runtime (`podman --runtime
//! berth-runtime --cgroup-manager cgroupfs`), through conmon, as it drives
//! runc: run, exit codes, detached containers with exec/ps/stop/rm, pause,
//! kill, a terminal, cgroup limits, `--network none`, and the errors podman
//! turns into exit codes 126/127.
//!
//! Each test has its own podman storage (`--root`, `--runroot`, `--tmpdir`
//! in a temp dir) holding a busybox image imported from the host's static
//! busybox, so the tests run in parallel and never touch podman's default
//! store; a guard force-removes the store's containers whatever happens.
//! Needs root and podman (scripts/install-deps.sh); without them the tests
//! print SKIPPED and return. `BERTH_PODMAN_TEST_RUNTIME=runc` runs the same
//! tests with runc, which checks the tests themselves.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use berth_testutil::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_berth-runtime");
const IMAGE: &str = "localhost/berth-podman-test:latest";
/// Longest any single podman command may take before the test fails.
const COMMAND_DEADLINE: Duration = Duration::from_secs(90);
/// A detached container that reports SIGTERM: `podman stop` must end it
/// through its trap (exit 0), not through the SIGKILL that follows.
const TRAPPING_LOOP: &str =
    r#"echo started; trap "echo bye; exit 0" TERM; while :; do sleep 0.1; done"#;

/// What a finished podman command left.
struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// A private podman store using berth-runtime; removes its containers on drop.
struct Podman {
    tmp: TempDir,
    conf: PathBuf,
}

fn podman_available() -> bool {
    if !berth_testutil::is_root() {
        eprintln!("SKIPPED: this test needs root");
        return false;
    }
    let found = Command::new("podman")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!("SKIPPED: podman is not installed (scripts/install-deps.sh installs it)");
    }
    found
}

/// The host's containers.conf (setup-peers.sh's rlimit defaults matter
/// here: CAP_SYS_RESOURCE is missing), with berth-runtime added to
/// `runtime_supports_json` when `json_log`: podman looks the runtime's file
/// name up there and only then passes `--log-format json --log FILE`, and
/// reads the runtime's last error from that file instead of from stderr.
fn containers_conf(json_log: bool) -> String {
    let base = std::fs::read_to_string("/etc/containers/containers.conf").unwrap_or_default();
    let mut lines: Vec<String> = base
        .lines()
        .filter(|l| !l.trim_start().starts_with("runtime_supports_json"))
        .map(str::to_owned)
        .collect();
    if json_log {
        let key = r#"runtime_supports_json = ["crun", "runc", "berth-runtime"]"#.to_owned();
        match lines.iter().position(|l| l.trim() == "[engine]") {
            Some(i) => lines.insert(i + 1, key),
            None => lines.extend(["[engine]".to_owned(), key]),
        }
    }
    lines.join("\n") + "\n"
}

impl Podman {
    /// A store with the test image, podman passing `--log-format json` to
    /// berth-runtime. None when the test must be skipped.
    fn new(name: &str) -> Option<Podman> {
        Self::with_log(name, true)
    }

    fn with_log(name: &str, json_log: bool) -> Option<Podman> {
        if !podman_available() {
            return None;
        }
        let tmp = TempDir::new(&format!("podman-{name}")).expect("tempdir");
        let conf = tmp.join("containers.conf");
        std::fs::write(&conf, containers_conf(json_log)).expect("write containers.conf");
        let podman = Podman { tmp, conf };
        let rootfs = podman.tmp.join("image-rootfs");
        berth_testutil::busybox_rootfs(&rootfs).expect("busybox rootfs");
        let tar = podman.tmp.join("image.tar");
        let status = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .expect("run tar");
        assert!(status.success(), "tar of the busybox rootfs failed");
        podman.ok(&["import", "--quiet", path_str(&tar), IMAGE]);
        Some(podman)
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("podman");
        let runtime = std::env::var_os("BERTH_PODMAN_TEST_RUNTIME").unwrap_or(BIN.into());
        c.env("CONTAINERS_CONF", &self.conf)
            .arg("--root")
            .arg(self.tmp.join("root"))
            .arg("--runroot")
            .arg(self.tmp.join("runroot"))
            .arg("--tmpdir")
            .arg(self.tmp.join("libpod-tmp"))
            .arg("--events-backend")
            .arg("file")
            .arg("--runtime")
            .arg(runtime)
            .args(["--cgroup-manager", "cgroupfs"]);
        c
    }

    /// Runs podman with `args`, stdout and stderr through files: a detached
    /// container's conmon may hold a pipe long after podman exits.
    fn run(&self, args: &[&str]) -> Out {
        let out_path = self.tmp.join("podman.stdout");
        let err_path = self.tmp.join("podman.stderr");
        let stdout = std::fs::File::create(&out_path).expect("stdout file");
        let stderr = std::fs::File::create(&err_path).expect("stderr file");
        let child = self
            .cmd()
            .args(args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("spawn podman");
        let status = wait_deadline(child, &format!("podman {args:?}"));
        Out {
            code: status.code(),
            stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
            stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
        }
    }

    /// Runs podman, asserts success, returns stdout.
    /// `podman run -d --name NAME --network none IMAGE ARGS…`.
    fn run_detached(&self, name: &str, args: &[&str]) -> String {
        let mut all = vec!["run", "-d", "--name", name, "--network", "none", IMAGE];
        all.extend_from_slice(args);
        self.ok(&all)
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.code,
            Some(0),
            "podman {args:?} failed: {}{}",
            out.stdout,
            out.stderr
        );
        out.stdout
    }

    fn inspect(&self, name: &str, format: &str) -> String {
        self.ok(&["inspect", "--format", format, name])
            .trim()
            .to_owned()
    }

    fn pid(&self, name: &str) -> i32 {
        let pid = self.inspect(name, "{{.State.Pid}}");
        pid.parse()
            .unwrap_or_else(|_| panic!("{name}: State.Pid {pid:?}"))
    }

    /// The container's cgroup path (relative to a hierarchy's root).
    fn cgroup_path(&self, name: &str) -> String {
        let path = self.inspect(name, "{{.State.CgroupPath}}");
        assert!(path.starts_with('/'), "{name}: State.CgroupPath {path:?}");
        path
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // Runs even when a test failed half-way: no container, conmon,
        // cgroup or mount of this store may outlive the test.
        let _ = self
            .cmd()
            .args(["rm", "--all", "--force", "--time", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // conmon runs `podman container cleanup` (with this store's flags)
        // when a container exits, asynchronously: one still running after
        // the TempDir is gone re-creates the store and its overlay mount.
        let store = self.tmp.path().to_string_lossy().into_owned();
        let start = Instant::now();
        while store_processes_alive(&store) && start.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Whether any process (conmon, `podman container cleanup`) has `store`
/// on its command line.
fn store_processes_alive(store: &str) -> bool {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return false;
    };
    procs.flatten().any(|p| {
        std::fs::read(p.path().join("cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains(store))
    })
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// Waits for `child`, killing it and failing the test after COMMAND_DEADLINE.
fn wait_deadline(mut child: Child, what: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait for podman") {
            return status;
        }
        if start.elapsed() > COMMAND_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {COMMAND_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `cond` until it holds or 20 s pass.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn unique_name(test: &str) -> String {
    format!("berth-{test}-{}", std::process::id())
}

fn cgroup_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// A controller's directory for the cgroup `path`: the v1 hierarchy's, or
/// the unified one's on a pure v2 host.
fn controller_dir(controller: &str, path: &str) -> PathBuf {
    let rel = path.trim_start_matches('/');
    if cgroup_v2() {
        Path::new("/sys/fs/cgroup").join(rel)
    } else {
        Path::new("/sys/fs/cgroup").join(controller).join(rel)
    }
}

/// After `podman rm`: berth-runtime's state and the container's cgroups are gone.
fn assert_removed(id: &str, cgroup_path: &str) {
    for root in ["/run/berth-runtime", "/run/runc"] {
        let state = Path::new(root).join(id);
        assert!(!state.exists(), "{} left behind", state.display());
    }
    for controller in ["memory", "pids", "freezer", "cpu"] {
        let dir = controller_dir(controller, cgroup_path);
        assert!(!dir.exists(), "cgroup {} left behind", dir.display());
    }
}

#[test]
fn run_rm_prints_hello() {
    let Some(podman) = Podman::new("hello") else {
        return;
    };
    let out = podman.run(&["run", "--rm", "--network", "none", IMAGE, "echo", "hello"]);
    assert_eq!(out.code, Some(0), "run failed: {}", out.stderr);
    assert_eq!(out.stdout, "hello\n");
    assert_eq!(
        podman.ok(&["ps", "--all", "--quiet"]),
        "",
        "--rm left a container"
    );
}

#[test]
fn exit_codes_propagate() {
    let Some(podman) = Podman::new("exit") else {
        return;
    };
    for (script, want) in [("exit 3", 3), ("exit 0", 0), ("exit 255", 255)] {
        let out = podman.run(&[
            "run",
            "--rm",
            "--network",
            "none",
            IMAGE,
            "sh",
            "-c",
            script,
        ]);
        assert_eq!(out.code, Some(want), "sh -c {script:?}: {}", out.stderr);
    }
}

#[test]
fn detached_exec_ps_stop_rm() {
    let Some(podman) = Podman::new("detached") else {
        return;
    };
    let name = unique_name("detached");
    let id = podman
        .ok(&[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            "none",
            IMAGE,
            "sh",
            "-c",
            TRAPPING_LOOP,
        ])
        .trim()
        .to_owned();
    assert_eq!(id.len(), 64, "podman run -d printed {id:?}");
    let cgroup = podman.cgroup_path(&name);

    let ps = podman.ok(&["ps", "--format", "{{.ID}} {{.Names}} {{.Status}}"]);
    let line = ps
        .lines()
        .find(|l| l.contains(&name))
        .unwrap_or_else(|| panic!("podman ps does not list {name}: {ps}"));
    assert!(
        line.starts_with(&id[..12]) && line.contains(" Up "),
        "ps: {line}"
    );
    assert_eq!(podman.inspect(&name, "{{.State.Status}}"), "running");

    let out = podman.ok(&[
        "exec",
        &name,
        "sh",
        "-c",
        "echo in $(hostname); cat /proc/1/cmdline",
    ]);
    assert!(out.starts_with("in "), "exec output {out:?}");
    assert!(
        out.contains("trap"),
        "exec does not see the container's pid 1: {out:?}"
    );
    let out = podman.run(&["exec", &name, "sh", "-c", "exit 5"]);
    assert_eq!(out.code, Some(5), "exec exit code: {}", out.stderr);
    let out = podman.run(&["exec", &name, "/nonexistent"]);
    assert_eq!(
        out.code,
        Some(127),
        "exec of a missing program: {}",
        out.stderr
    );

    let start = Instant::now();
    podman.ok(&["stop", "--time", "10", &name]);
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "stop waited for SIGKILL: SIGTERM did not reach the trap"
    );
    assert_eq!(podman.inspect(&name, "{{.State.Status}}"), "exited");
    assert_eq!(podman.inspect(&name, "{{.State.ExitCode}}"), "0");
    let logs = podman.ok(&["logs", &name]);
    assert_eq!(logs, "started\nbye\n");

    podman.ok(&["rm", &name]);
    assert_eq!(podman.ok(&["ps", "--all", "--quiet"]), "");
    assert_removed(&id, &cgroup);
}

#[test]
fn pause_and_unpause() {
    let Some(podman) = Podman::new("pause") else {
        return;
    };
    let name = unique_name("pause");
    let counter = "i=0; while :; do i=$((i+1)); echo $i > /tmp/n; sleep 0.05; done";
    podman.ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        IMAGE,
        "sh",
        "-c",
        counter,
    ]);
    let pid = podman.pid(&name);
    let cgroup = podman.cgroup_path(&name);
    // The host reads the counter through the container's root.
    let n_file = PathBuf::from(format!("/proc/{pid}/root/tmp/n"));
    let read_n = || -> u64 {
        std::fs::read_to_string(&n_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    };
    wait_until("the counter to start", || read_n() > 0);

    podman.ok(&["pause", &name]);
    assert_eq!(podman.inspect(&name, "{{.State.Status}}"), "paused");
    let ps = podman.ok(&["ps", "--all", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.contains(&format!("{name} Paused")), "ps: {ps}");
    let freezer = if cgroup_v2() {
        std::fs::read_to_string(controller_dir("", &cgroup).join("cgroup.freeze"))
    } else {
        std::fs::read_to_string(controller_dir("freezer", &cgroup).join("freezer.state"))
    }
    .expect("read the freezer state");
    assert!(
        matches!(freezer.trim(), "FROZEN" | "1"),
        "freezer: {freezer:?}"
    );
    let frozen_at = read_n();
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(read_n(), frozen_at, "the counter moved while paused");

    podman.ok(&["unpause", &name]);
    assert_eq!(podman.inspect(&name, "{{.State.Status}}"), "running");
    wait_until("the counter to move after unpause", || read_n() > frozen_at);
}

#[test]
fn kill_delivers_signals() {
    let Some(podman) = Podman::new("kill") else {
        return;
    };
    let name = unique_name("kill");
    podman.run_detached(&name, &["sleep", "1000"]);
    podman.ok(&["kill", &name]);
    assert_eq!(
        podman.ok(&["wait", &name]).trim(),
        "137",
        "SIGKILL exit code"
    );
    podman.ok(&["rm", &name]);

    let trapped = format!("{name}-usr1");
    let script = r#"trap "exit 10" USR1; echo ready > /tmp/ready; while :; do sleep 0.1; done"#;
    podman.ok(&[
        "run",
        "-d",
        "--name",
        &trapped,
        "--network",
        "none",
        IMAGE,
        "sh",
        "-c",
        script,
    ]);
    let pid = podman.pid(&trapped);
    wait_until("the trap to be set", || {
        Path::new(&format!("/proc/{pid}/root/tmp/ready")).exists()
    });
    podman.ok(&["kill", "--signal", "USR1", &trapped]);
    assert_eq!(
        podman.ok(&["wait", &trapped]).trim(),
        "10",
        "USR1 trap exit code"
    );
}

/// `podman run -it` on a pseudo-terminal of ours: conmon gets the pty
/// master through the console socket, the process runs on the
/// container's /dev/pts/0 with the terminal's size.
#[test]
fn interactive_terminal() {
    let Some(podman) = Podman::new("tty") else {
        return;
    };
    let output = on_terminal(
        &podman,
        &["run", "-it", "--rm", "--network", "none", IMAGE, "sh", "-c"],
        "tty; echo $((6*7)); stty size",
    );
    assert!(
        output.contains("/dev/pts/0"),
        "tty is not /dev/pts/0: {output:?}"
    );
    assert!(output.contains("42"), "no 42 in {output:?}");
    assert!(
        output.contains("24 80"),
        "terminal size not passed on: {output:?}"
    );
}

/// `podman exec -it`: a pty of its own in the container's devpts.
#[test]
fn exec_on_a_terminal() {
    let Some(podman) = Podman::new("exectty") else {
        return;
    };
    let name = unique_name("exectty");
    podman.run_detached(&name, &["sleep", "1000"]);
    let output = on_terminal(
        &podman,
        &["exec", "-it", &name, "sh", "-c"],
        "tty; echo $((6*7))",
    );
    assert!(
        output.contains("/dev/pts/0"),
        "tty is not /dev/pts/0: {output:?}"
    );
    assert!(output.contains("42"), "no 42 in {output:?}");
}

/// Runs podman with `args` and `script` as its last argument on a new
/// 24x80 pseudo-terminal (its controlling terminal); returns what the
/// terminal showed.
fn on_terminal(podman: &Podman, args: &[&str], script: &str) -> String {
    let size = nix::pty::Winsize {
        ws_row: 24,
        ws_col: 80,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&size), None).expect("openpty");
    let slave = |pty: &nix::pty::OpenptyResult| -> Stdio {
        Stdio::from(pty.slave.try_clone().expect("dup pty slave"))
    };
    let mut cmd = podman.cmd();
    cmd.args(args)
        .arg(script)
        .stdin(slave(&pty))
        .stdout(slave(&pty))
        .stderr(slave(&pty));
    // SAFETY: between fork and exec only async-signal-safe calls (setsid,
    // ioctl) on the child's own fds.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()?;
            if libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().expect("spawn podman on a terminal");
    drop(pty.slave);
    read_terminal(child, &pty.master)
}

/// Reads everything the terminal shows until `child` has exited and the
/// output has gone quiet; fails on a non-zero exit.
fn read_terminal(mut child: Child, master: &OwnedFd) -> String {
    let mut file = std::fs::File::from(master.try_clone().expect("dup pty master"));
    let mut output = Vec::new();
    let start = Instant::now();
    let mut exited: Option<(ExitStatus, Instant)> = None;
    loop {
        let mut fds = [nix::poll::PollFd::new(
            // SAFETY: master outlives this loop.
            unsafe { std::os::fd::BorrowedFd::borrow_raw(master.as_raw_fd()) },
            nix::poll::PollFlags::POLLIN,
        )];
        let ready = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(100u16)).unwrap_or(0);
        if ready > 0 {
            let mut buf = [0u8; 4096];
            match file.read(&mut buf) {
                Ok(0) | Err(_) => {
                    if exited.is_some() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Ok(n) => output.extend_from_slice(&buf[..n]),
            }
        }
        if exited.is_none() {
            if let Some(status) = child.try_wait().expect("wait podman") {
                exited = Some((status, Instant::now()));
            }
        }
        if let Some((status, at)) = exited {
            if at.elapsed() > Duration::from_millis(500) {
                assert!(
                    status.success(),
                    "podman run -it: {status}: {output:?}",
                    output = String::from_utf8_lossy(&output)
                );
                break;
            }
        }
        if start.elapsed() > COMMAND_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "podman run -it hung: {:?}",
                String::from_utf8_lossy(&output)
            );
        }
    }
    String::from_utf8_lossy(&output).into_owned()
}

#[test]
fn memory_and_pids_limits_reach_the_cgroup() {
    let Some(podman) = Podman::new("memory") else {
        return;
    };
    let name = unique_name("memory");
    podman.ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "--memory",
        "64m",
        "--pids-limit",
        "50",
        IMAGE,
        "sleep",
        "1000",
    ]);
    let pid = podman.pid(&name);
    let cgroup = podman.cgroup_path(&name);
    let own =
        std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("read /proc/pid/cgroup");
    let memory_line = own
        .lines()
        .find(|l| {
            let mut f = l.splitn(3, ':');
            let controllers = f.nth(1).unwrap_or_default();
            controllers.split(',').any(|c| c == "memory") || (cgroup_v2() && controllers.is_empty())
        })
        .unwrap_or_else(|| panic!("no memory cgroup in {own}"));
    assert!(
        memory_line.ends_with(&cgroup),
        "process is in {memory_line}, podman says {cgroup}"
    );

    let (memory_file, pids_file) = if cgroup_v2() {
        ("memory.max", "pids.max")
    } else {
        ("memory.limit_in_bytes", "pids.max")
    };
    let read = |controller: &str, file: &str| {
        let path = controller_dir(controller, &cgroup).join(file);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
            .trim()
            .to_owned()
    };
    assert_eq!(read("memory", memory_file), "67108864");
    assert_eq!(read("pids", pids_file), "50");
    if !cgroup_v2() {
        // The container sees its own cgroup (cgroup namespace) with the limit.
        let inside = podman.ok(&[
            "exec",
            &name,
            "cat",
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
        ]);
        assert_eq!(inside.trim(), "67108864");
    }
    let id = podman.inspect(&name, "{{.Id}}");
    podman.ok(&["rm", "--force", "--time", "0", &name]);
    assert_removed(&id, &cgroup);
}

#[test]
fn network_none_has_only_loopback() {
    let Some(podman) = Podman::new("netnone") else {
        return;
    };
    let name = unique_name("netnone");
    podman.run_detached(&name, &["sleep", "1000"]);
    let pid = podman.pid(&name);
    let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/net")).expect("read netns link");
    assert_ne!(
        ns(&pid.to_string()),
        ns("self"),
        "container shares the host's network namespace"
    );
    let links = podman.ok(&["exec", &name, "ip", "-o", "link"]);
    let names: Vec<&str> = links
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(str::trim)
        .collect();
    assert_eq!(names, ["lo"], "links: {links}");
    assert!(links.contains("UP"), "lo is not up: {links}");
    let ping = podman.run(&["exec", &name, "ping", "-c", "1", "-W", "1", "127.0.0.1"]);
    assert_eq!(
        ping.code,
        Some(0),
        "loopback ping: {}{}",
        ping.stdout,
        ping.stderr
    );
}

/// A program that cannot be run fails `create`: podman shows berth's
/// message and maps it to 127 (not found) or 126 (not executable), as it
/// does for runc, whether it reads the error from the JSON log file or from
/// the runtime's stderr.
#[test]
fn unrunnable_program_exit_codes_and_messages() {
    for json_log in [true, false] {
        let Some(podman) = Podman::with_log(&format!("errors-{json_log}"), json_log) else {
            return;
        };
        for (program, code, message) in [
            (
                "/nonexistent",
                127,
                r#"exec: "/nonexistent": stat /nonexistent: no such file or directory"#,
            ),
            (
                "nonexistent",
                127,
                r#"exec: "nonexistent": executable file not found in $PATH"#,
            ),
            (
                "/etc/passwd",
                126,
                r#"exec: "/etc/passwd": permission denied"#,
            ),
        ] {
            let out = podman.run(&["run", "--rm", "--network", "none", IMAGE, program]);
            assert_eq!(
                out.code,
                Some(code),
                "{program} (json log {json_log}): {}",
                out.stderr
            );
            assert!(
                out.stderr.starts_with("Error: ") && out.stderr.contains(message),
                "{program} (json log {json_log}): podman said {:?}",
                out.stderr
            );
        }
        assert_eq!(podman.ok(&["ps", "--all", "--quiet"]), "");
    }
}

/// With `--log-format json --log FILE` (conmon's arguments when the runtime
/// is in runtime_supports_json), every line berth-runtime writes there is a
/// JSON object of level, msg and time, the error among them.
#[test]
fn runtime_errors_are_json_lines_in_the_log_file() {
    let Some(podman) = Podman::new("jsonlog") else {
        return;
    };
    let name = unique_name("jsonlog");
    let out = podman.run(&[
        "run",
        "--name",
        &name,
        "--network",
        "none",
        IMAGE,
        "/nonexistent",
    ]);
    assert_eq!(out.code, Some(127), "{}", out.stderr);
    let id = podman.inspect(&name, "{{.Id}}");
    let log = podman
        .tmp
        .join("runroot/overlay-containers")
        .join(&id)
        .join("userdata/oci-log");
    let text = std::fs::read_to_string(&log)
        .unwrap_or_else(|e| panic!("podman passed no --log {}: {e}", log.display()));
    let mut errors = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON: {line:?}: {e}"));
        let field = |k: &str| {
            v[k].as_str()
                .unwrap_or_else(|| panic!("{k} missing: {line}"))
        };
        chrono::DateTime::parse_from_rfc3339(field("time"))
            .unwrap_or_else(|e| panic!("time is not RFC 3339: {line}: {e}"));
        if field("level") == "error" {
            errors.push(field("msg").to_owned());
        }
    }
    let last = errors
        .last()
        .unwrap_or_else(|| panic!("no error line in {text:?}"));
    assert!(
        last.contains("stat /nonexistent: no such file or directory"),
        "last error {last:?}"
    );
    assert!(
        out.stderr.contains(last.as_str()),
        "podman did not show {last:?}: {}",
        out.stderr
    );
}

/// `--uidmap/--gidmap` (a user namespace), `--user`, `--read-only` (with
/// podman's writable /tmp tmpfs) and `--cap-drop all` together.
#[test]
fn user_namespace_read_only_root_and_no_capabilities() {
    let Some(podman) = Podman::new("userns") else {
        return;
    };
    let script = "id -u; id -g; cat /proc/self/uid_map; \
                  touch /x 2>/dev/null && echo root-writable; \
                  touch /tmp/y && echo tmp-writable; grep CapBnd /proc/self/status";
    let out = podman.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--read-only",
        "--uidmap",
        "0:100000:65536",
        "--gidmap",
        "0:100000:65536",
        "--user",
        "1000:1000",
        "--cap-drop",
        "all",
        IMAGE,
        "sh",
        "-c",
        script,
    ]);
    let lines: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(lines.first(), Some(&"1000"), "uid: {out}");
    assert_eq!(lines.get(1), Some(&"1000"), "gid: {out}");
    let map: Vec<&str> = lines
        .get(2)
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default();
    assert_eq!(map, ["0", "100000", "65536"], "uid_map: {out}");
    assert!(
        !out.contains("root-writable"),
        "--read-only root was writable: {out}"
    );
    assert!(out.contains("tmp-writable"), "/tmp not writable: {out}");
    assert!(
        out.contains("CapBnd:\t0000000000000000"),
        "capabilities left: {out}"
    );
}
