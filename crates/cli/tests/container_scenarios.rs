//! Container scenarios through the `berth` binary with real containers:
//! terminals (`exec -it`, `run -it`, `attach` and detach keys), log drivers
//! and rotation, health checks, measured CPU limits, `update`, `stats`,
//! `events`/`info`, security and namespace flags, `--runtime`, and Docker's
//! output formats for `ps` and `inspect`.

mod common;

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{berth, inspect, stderr, stdout, wait_until, Berth};

fn pid_of(b: &Berth, c: &str) -> i64 {
    let pid = inspect(b, c)["State"]["Pid"].as_i64().expect("State.Pid");
    assert!(pid > 0, "{c} is not running");
    pid
}

/// A file of the cgroup `pid` is in for `controller` (v1), or of its
/// unified cgroup when the controller is not on v1.
fn cgroup_file(pid: i64, controller: &str, file: &str) -> std::path::PathBuf {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("/proc/PID/cgroup");
    for line in cg.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrls, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or(""));
        if ctrls.split(',').any(|c| c == controller) {
            let p = std::path::PathBuf::from(format!("/sys/fs/cgroup/{ctrls}{path}/{file}"));
            if p.exists() {
                return p;
            }
            return std::path::PathBuf::from(format!("/sys/fs/cgroup/{controller}{path}/{file}"));
        }
    }
    let path = cg
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .expect("a unified cgroup");
    let unified = std::path::Path::new("/sys/fs/cgroup/unified");
    if unified.exists() {
        unified.join(path.trim_start_matches('/')).join(file)
    } else {
        std::path::Path::new("/sys/fs/cgroup")
            .join(path.trim_start_matches('/'))
            .join(file)
    }
}

fn read_trim(p: &std::path::Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_string()
}

/// CPU time used by the container whose init is `pid`, in nanoseconds.
fn cpu_usage_ns(pid: i64) -> u64 {
    let v1 = cgroup_file(pid, "cpuacct", "cpuacct.usage");
    if v1.exists() {
        return read_trim(&v1).parse().expect("cpuacct.usage");
    }
    let stat = read_trim(&cgroup_file(pid, "cpu", "cpu.stat"));
    let usec: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("usage_usec "))
        .expect("usage_usec")
        .parse()
        .expect("usage_usec value");
    usec * 1000
}

/// `berth ARGS…` on the slave side of a new pseudo-terminal (its
/// controlling terminal), with everything it prints collected.
struct PtySession {
    master: std::fs::File,
    child: Child,
    seen: Arc<Mutex<Vec<u8>>>,
}

impl PtySession {
    fn spawn(b: &Berth, args: &[&str]) -> Self {
        let pty = nix::pty::openpty(None, None).expect("openpty");
        let slave: OwnedFd = pty.slave;
        let mut cmd = b.command();
        cmd.args(args)
            .stdin(Stdio::from(slave.try_clone().expect("dup slave")))
            .stdout(Stdio::from(slave.try_clone().expect("dup slave")))
            .stderr(Stdio::from(slave));
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn berth on a pty");
        drop(cmd);
        let master = std::fs::File::from(pty.master);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut reader = master.try_clone().expect("dup master");
        let sink = Arc::clone(&seen);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with EIO once every slave side is closed.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Self {
            master,
            child,
            seen,
        }
    }

    fn output(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().unwrap()).into_owned()
    }

    /// Waits until the terminal showed `needle` (after everything seen so
    /// far when `fresh_from` is the length seen before).
    fn expect(&self, needle: &str, fresh_from: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = self.output();
            if out.get(fresh_from..).is_some_and(|s| s.contains(needle)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "terminal never showed {needle:?}; it showed {out:?}"
            );
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    fn seen_len(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    fn send(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).expect("write to the pty");
    }

    /// The CLI's exit code, within a deadline.
    fn wait(mut self) -> (Option<i32>, String) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                std::thread::sleep(Duration::from_millis(50));
                return (st.code(), self.output());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("berth on the pty did not exit: {:?}", self.output());
            }
            std::thread::sleep(Duration::from_millis(30));
        }
    }
}

#[test]
fn exec_it_and_run_it_through_a_pty() {
    berth_testutil::require_root!();
    let b = berth("tty");
    b.ok(&["run", "-d", "-it", "--name", "box", "busybox", "sh"]);

    let mut s = PtySession::spawn(&b, &["exec", "-it", "box", "sh"]);
    s.expect("# ", 0);
    let mark = s.seen_len();
    s.send(b"echo sum=$((6*7)); tty; stty size\r");
    s.expect("sum=42", mark);
    s.expect("/dev/pts/", mark);
    s.send(b"exit 3\r");
    let (code, out) = s.wait();
    assert_eq!(code, Some(3), "{out:?}");
    // The shell the container runs is untouched by the exec's exit.
    assert_eq!(inspect(&b, "box")["State"]["Status"], "running");

    let mut s = PtySession::spawn(
        &b,
        &[
            "run",
            "-it",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "tty; read x; echo got:$x; exit 4",
        ],
    );
    s.expect("/dev/pts/0", 0);
    s.send(b"typed\r");
    let (code, out) = s.wait();
    assert!(out.contains("got:typed"), "{out:?}");
    assert_eq!(code, Some(4), "{out:?}");
    assert_eq!(b.ok(&["ps", "-aq"]).lines().count(), 1);

    // -it needs a terminal on stdin (a pipe's end would never reach the
    // container's terminal): Docker's error, nothing created.
    for args in [
        &["run", "-it", "--rm", "busybox", "cat"][..],
        &["exec", "-it", "box", "cat"][..],
        &["attach", "box"][..],
    ] {
        let out = b.run_stdin(args, b"hi\n");
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&out).contains("the input device is not a TTY"),
            "{args:?}"
        );
    }
    assert_eq!(b.ok(&["ps", "-aq"]).lines().count(), 1);
    let out = b.run_stdin(&["exec", "-i", "box", "cat"], b"piped\n");
    assert_eq!(stdout(&out), "piped\n");

    // ctrl-p ctrl-q leaves `run -it` and the container goes on.
    let mut s = PtySession::spawn(&b, &["run", "-it", "--name", "det", "busybox", "sh"]);
    s.expect("# ", 0);
    s.send(b"\x10\x11");
    let (_, out) = s.wait();
    assert_eq!(inspect(&b, "det")["State"]["Status"], "running", "{out:?}");
    assert_eq!(b.ok(&["exec", "det", "echo", "alive"]), "alive\n");
}

#[test]
fn exec_user_workdir_env_detach_and_stopped_container() {
    berth_testutil::require_root!();
    let b = berth("exec-flags");
    b.ok(&[
        "run",
        "-d",
        "--name",
        "ex",
        "-e",
        "FROM_RUN=r",
        "busybox",
        "sleep",
        "1000",
    ]);
    assert_eq!(b.ok(&["exec", "ex", "id", "-u"]).trim(), "0");
    assert_eq!(
        b.ok(&["exec", "-u", "nobody", "ex", "id", "-u"]).trim(),
        "65534"
    );
    assert_eq!(
        b.ok(&["exec", "-u", "1234:5678", "ex", "id"]).trim(),
        "uid=1234 gid=5678 groups=5678"
    );
    assert_eq!(b.ok(&["exec", "-w", "/etc", "ex", "pwd"]).trim(), "/etc");
    let env = b.ok(&["exec", "-e", "A=b", "ex", "env"]);
    assert!(env.lines().any(|l| l == "A=b"), "{env}");
    assert!(env.lines().any(|l| l == "FROM_RUN=r"), "{env}");
    // -i with piped stdin reaches the process.
    let out = b.run_stdin(&["exec", "-i", "ex", "cat"], b"piped\n");
    assert_eq!(stdout(&out), "piped\n");
    // -d returns at once; the command goes on in the container.
    let t = Instant::now();
    let out = b.ok(&[
        "exec",
        "-d",
        "ex",
        "sh",
        "-c",
        "sleep 0.5; echo done > /tmp/d",
    ]);
    assert_eq!(out, "");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    wait_until("the detached exec", Duration::from_secs(10), || {
        b.run(&["exec", "ex", "cat", "/tmp/d"]).stdout == b"done\n"
    });

    b.ok(&["stop", "-t", "0", "ex"]);
    let err = b.fails(&["exec", "ex", "true"], 1);
    assert!(err.contains("is not running"), "{err}");
    let err = b.fails(&["exec", "nosuch", "true"], 1);
    assert!(err.contains("No such container: nosuch"), "{err}");
}

#[test]
fn attach_types_input_and_detaches_with_keys() {
    berth_testutil::require_root!();
    let b = berth("attach");
    b.ok(&["run", "-d", "-it", "--name", "sh1", "busybox", "sh"]);

    let mut s = PtySession::spawn(&b, &["attach", "sh1"]);
    // The attached shell answers what we type.
    std::thread::sleep(Duration::from_millis(200));
    s.send(b"echo at$((40+2))\r");
    s.expect("at42", 0);
    s.send(b"\x10\x11");
    // Docker's CLI reports the detach as an error: the message, status 1.
    let (code, out) = s.wait();
    assert_eq!(code, Some(1), "{out:?}");
    assert!(out.contains("read escape sequence"), "{out:?}");
    assert_eq!(inspect(&b, "sh1")["State"]["Status"], "running");

    // Custom keys; ctrl-p alone then passes through.
    let mut s = PtySession::spawn(&b, &["attach", "--detach-keys", "ctrl-x,x", "sh1"]);
    std::thread::sleep(Duration::from_millis(200));
    s.send(b"echo again$((1+1))\r");
    s.expect("again2", 0);
    s.send(b"\x10\x11");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        s.child.try_wait().unwrap().is_none(),
        "ctrl-p ctrl-q detached"
    );
    // The shell got them (ctrl-p recalled the last line): run that line
    // so that the next one starts clean.
    let mark = s.seen_len();
    s.send(b"\r");
    s.expect("again2", mark);
    s.send(b"\x18x");
    let (code, out) = s.wait();
    assert_eq!(code, Some(1), "{out:?}");
    assert!(out.contains("read escape sequence"), "{out:?}");
    assert_eq!(inspect(&b, "sh1")["State"]["Status"], "running");

    // Attaching and exiting the shell ends the container.
    let mut s = PtySession::spawn(&b, &["attach", "sh1"]);
    std::thread::sleep(Duration::from_millis(200));
    s.send(b"exit 7\r");
    let (code, out) = s.wait();
    assert_eq!(code, Some(7), "{out:?}");
    wait_until("the exit", Duration::from_secs(5), || {
        inspect(&b, "sh1")["State"]["Status"] == "exited"
    });
    let err = b.fails(&["attach", "sh1"], 1);
    assert!(
        err.contains("You cannot attach to a stopped container"),
        "{err}"
    );

    // run -i with piped stdin.
    let out = b.run_stdin(&["run", "-i", "--rm", "busybox", "cat"], b"hi\n");
    assert_eq!(stdout(&out), "hi\n", "{}", stderr(&out));
    assert!(out.status.success());
    // Without -i the container's stdin is empty.
    let out = b.run_stdin(&["run", "--rm", "busybox", "cat"], b"hi\n");
    assert_eq!(stdout(&out), "");
}

/// Files in the container's directory whose names start with `prefix`.
fn log_files(b: &Berth, id: &str, prefix: &str) -> Vec<String> {
    let dir = b.root().join("containers").join(id);
    let mut v: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(prefix))
        .collect();
    v.sort();
    v
}

#[test]
fn json_file_logs_rotate_and_read_across_files() {
    berth_testutil::require_root!();
    let b = berth("logrot");
    let id = b
        .ok(&[
            "run",
            "-d",
            "--log-opt",
            "max-size=1k",
            "--log-opt",
            "max-file=3",
            "busybox",
            "sh",
            "-c",
            "i=0; while [ $i -lt 200 ]; do echo line-$i; i=$((i+1)); done",
        ])
        .trim()
        .to_string();
    assert_eq!(b.ok(&["wait", &id]).trim(), "0");
    let files = log_files(&b, &id, &format!("{id}-json.log"));
    assert_eq!(files.len(), 3, "{files:?}");
    let total: u64 = files
        .iter()
        .map(|f| {
            let len = std::fs::metadata(b.root().join("containers").join(&id).join(f))
                .unwrap()
                .len();
            assert!(len <= 1024 + 200, "{f} holds {len} bytes");
            len
        })
        .sum();
    assert!(total > 1024 * 2, "{total}");
    // logs reads the oldest kept line through the last, in order.
    let out = b.ok(&["logs", &id]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.last(), Some(&"line-199"));
    assert!(lines.len() > 20 && lines.len() < 200, "{}", lines.len());
    let first: usize = lines[0].trim_start_matches("line-").parse().unwrap();
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(*l, format!("line-{}", first + i));
    }
    let tail = b.ok(&["logs", "--tail", "30", &id]);
    let expected: String = (170..200).map(|i| format!("line-{i}\n")).collect();
    assert_eq!(tail, expected);
}

#[test]
fn log_drivers_none_and_local_follow_since_until() {
    berth_testutil::require_root!();
    let b = berth("logdrv");
    b.ok(&[
        "run",
        "--name",
        "quiet",
        "--log-driver",
        "none",
        "busybox",
        "echo",
        "x",
    ]);
    let err = b.fails(&["logs", "quiet"], 1);
    assert!(
        err.contains("configured logging driver does not support reading"),
        "{err}"
    );
    assert_eq!(
        inspect(&b, "quiet")["HostConfig"]["LogConfig"]["Type"],
        "none"
    );

    let out = b.ok(&[
        "run",
        "--name",
        "loc",
        "--log-driver",
        "local",
        "busybox",
        "sh",
        "-c",
        "echo one; echo two >&2",
    ]);
    assert_eq!(out, "one\n");
    let out = b.run(&["logs", "loc"]);
    assert_eq!(stdout(&out), "one\n");
    assert_eq!(stderr(&out), "two\n");
    assert_eq!(
        inspect(&b, "loc")["HostConfig"]["LogConfig"]["Type"],
        "local"
    );

    // logs -f follows new lines and ends when the container exits.
    b.ok(&[
        "run",
        "-d",
        "--name",
        "ticker",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3 4; do echo tick$i; sleep 0.3; done",
    ]);
    let t = Instant::now();
    let follower = b
        .command()
        .args(["logs", "-f", "ticker"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = follower.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(stdout(&out), "tick1\ntick2\ntick3\ntick4\n");
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());

    // --since/--until select by the recorded time.
    b.ok(&[
        "run",
        "--name",
        "timed",
        "busybox",
        "sh",
        "-c",
        "echo early; sleep 1.5; echo late",
    ]);
    let ts = b.ok(&["logs", "-t", "timed"]);
    let late_ts = ts
        .lines()
        .find(|l| l.ends_with(" late"))
        .and_then(|l| l.split(' ').next())
        .expect("late line")
        .to_string();
    let early_ts = ts.lines().next().and_then(|l| l.split(' ').next()).unwrap();
    assert_eq!(b.ok(&["logs", "--since", &late_ts, "timed"]), "late\n");
    assert_eq!(b.ok(&["logs", "--until", early_ts, "timed"]), "early\n");
    assert_eq!(b.ok(&["logs", "--since", "1h", "timed"]), "early\nlate\n");
    assert_eq!(b.ok(&["logs", "--until", "1h", "timed"]), "");
    let err = b.fails(&["logs", "--since", "yesterday-ish", "timed"], 125);
    assert!(!err.is_empty());
}

#[test]
fn health_checks_report_healthy_unhealthy_and_can_be_disabled() {
    berth_testutil::require_root!();
    let b = berth("health");
    b.ok(&[
        "run",
        "-d",
        "--name",
        "good",
        "--health-cmd",
        "exit 0",
        "--health-interval",
        "1s",
        "busybox",
        "sleep",
        "1000",
    ]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "bad",
        "--health-cmd",
        "echo failing; exit 1",
        "--health-interval",
        "1s",
        "--health-retries",
        "2",
        "busybox",
        "sleep",
        "1000",
    ]);
    let err = b.fails(
        &[
            "run",
            "-d",
            "--health-cmd",
            "exit 0",
            "--no-healthcheck",
            "busybox",
            "true",
        ],
        125,
    );
    assert!(
        err.contains("--no-healthcheck conflicts with --health-* options"),
        "{err}"
    );
    b.ok(&[
        "run",
        "-d",
        "--name",
        "none",
        "--no-healthcheck",
        "busybox",
        "sleep",
        "1000",
    ]);
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.State.Health.Status}}", "good"])
            .trim(),
        "starting"
    );
    wait_until("healthy", Duration::from_secs(10), || {
        inspect(&b, "good")["State"]["Health"]["Status"] == "healthy"
    });
    let ps = b.ok(&["ps", "--filter", "name=good", "--format", "{{.Status}}"]);
    assert!(ps.contains("(healthy)"), "{ps}");
    let health = &inspect(&b, "good")["State"]["Health"];
    assert_eq!(health["FailingStreak"], 0);
    assert_eq!(health["Log"][0]["ExitCode"], 0);

    wait_until("unhealthy", Duration::from_secs(12), || {
        inspect(&b, "bad")["State"]["Health"]["Status"] == "unhealthy"
    });
    let health = inspect(&b, "bad")["State"]["Health"].clone();
    assert!(health["FailingStreak"].as_i64().unwrap() >= 2, "{health}");
    assert_eq!(health["Log"][0]["Output"], "failing\n");
    let ps = b.ok(&[
        "ps",
        "--filter",
        "health=unhealthy",
        "--format",
        "{{.Names}} {{.Status}}",
    ]);
    assert!(
        ps.starts_with("bad Up") && ps.contains("(unhealthy)"),
        "{ps}"
    );

    let v = inspect(&b, "none");
    assert!(v["State"]["Health"].is_null(), "{}", v["State"]);
    assert_eq!(v["Config"]["Healthcheck"]["Test"][0], "NONE");
    assert!(!b.ok(&["ps", "--filter", "name=none"]).contains("health"));

    // An image's HEALTHCHECK runs by default; --no-healthcheck turns it off.
    load_image_with_healthcheck(&b, "checked:latest");
    b.ok(&["run", "-d", "--name", "img", "checked"]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "img-off",
        "--no-healthcheck",
        "checked",
    ]);
    wait_until("the image's check", Duration::from_secs(10), || {
        inspect(&b, "img")["State"]["Health"]["Status"] == "healthy"
    });
    let v = inspect(&b, "img-off");
    assert!(v["State"]["Health"].is_null(), "{}", v["State"]);
    assert_eq!(
        v["Config"]["Healthcheck"]["Test"],
        serde_json::json!(["NONE"])
    );
    let status = b.ok(&["ps", "--filter", "name=img-off", "--format", "{{.Status}}"]);
    assert!(
        status.starts_with("Up") && !status.contains("health"),
        "{status}"
    );
}

/// Loads a docker-archive of the busybox rootfs whose config has a
/// HEALTHCHECK (`exit 0` every second) and `sleep 1000` as its command.
fn load_image_with_healthcheck(b: &Berth, tag: &str) {
    let layer = std::fs::read(common::busybox_tar(&b.dir)).expect("busybox tar");
    let layer_hex = berth_image::Digest::of_bytes(&layer).hex();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Cmd": ["sleep", "1000"],
            "Env": ["PATH=/bin"],
            "Healthcheck": {"Test": ["CMD-SHELL", "exit 0"], "Interval": 1_000_000_000u64},
        },
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{layer_hex}")]},
    }))
    .unwrap();
    let config_name = format!("{}.json", berth_image::Digest::of_bytes(&config).hex());
    let layer_name = format!("{layer_hex}/layer.tar");
    let manifest = serde_json::to_vec(&serde_json::json!([
        {"Config": config_name, "RepoTags": [tag], "Layers": [layer_name]}
    ]))
    .unwrap();
    let path = b.dir.join("healthcheck-image.tar");
    let mut ar = tar::Builder::new(std::fs::File::create(&path).expect("create archive"));
    for (name, data) in [
        (config_name.as_str(), &config),
        (layer_name.as_str(), &layer),
        ("manifest.json", &manifest),
    ] {
        let mut h = common::file_header(data.len());
        ar.append_data(&mut h, name, &data[..]).expect("append");
    }
    ar.into_inner().expect("finish archive");
    b.ok(&["load", "-i", path.to_str().unwrap()]);
}

#[test]
fn cpus_quota_limits_a_busy_loop_near_thirty_percent() {
    berth_testutil::require_root!();
    let b = berth("cpus");
    // On CPU 1: the shares test loads CPU 0.
    b.ok(&[
        "run",
        "-d",
        "--name",
        "spin",
        "--cpus",
        "0.3",
        "--cpuset-cpus",
        "1",
        "busybox",
        "sh",
        "-c",
        "while :; do :; done",
    ]);
    let pid = pid_of(&b, "spin");
    std::thread::sleep(Duration::from_millis(300));
    // The quota caps every window at 30%; other load on the machine can
    // only lower a window, so the best of three is the measurement.
    let mut best = 0.0f64;
    for _ in 0..3 {
        let (u0, t0) = (cpu_usage_ns(pid), Instant::now());
        std::thread::sleep(Duration::from_millis(1500));
        let used = (cpu_usage_ns(pid) - u0) as f64 / t0.elapsed().as_nanos() as f64;
        eprintln!("--cpus 0.3 busy loop used {:.1}% of a CPU", used * 100.0);
        assert!(used <= 0.40, "{used}");
        best = best.max(used);
        if best >= 0.25 {
            break;
        }
    }
    assert!((0.20..=0.40).contains(&best), "{best}");
    b.ok(&["rm", "-f", "spin"]);
}

#[test]
fn cpu_shares_split_a_shared_cpu_about_one_to_two() {
    berth_testutil::require_root!();
    let b = berth("shares");
    for (name, shares) in [("low", "512"), ("high", "1024")] {
        b.ok(&[
            "run",
            "-d",
            "--name",
            name,
            "-c",
            shares,
            "--cpuset-cpus",
            "0",
            "busybox",
            "sh",
            "-c",
            "while :; do :; done",
        ]);
    }
    let (low, high) = (pid_of(&b, "low"), pid_of(&b, "high"));
    assert_eq!(read_trim(&cgroup_file(low, "cpu", "cpu.shares")), "512");
    assert_eq!(read_trim(&cgroup_file(high, "cpuset", "cpuset.cpus")), "0");
    std::thread::sleep(Duration::from_millis(300));
    let (l0, h0) = (cpu_usage_ns(low), cpu_usage_ns(high));
    std::thread::sleep(Duration::from_secs(3));
    let (l1, h1) = (cpu_usage_ns(low), cpu_usage_ns(high));
    let ratio = (h1 - h0) as f64 / (l1 - l0).max(1) as f64;
    eprintln!(
        "-c 1024 vs -c 512 on one CPU: {:.2} s vs {:.2} s, ratio {ratio:.2}",
        (h1 - h0) as f64 / 1e9,
        (l1 - l0) as f64 / 1e9
    );
    assert!((1.5..=2.7).contains(&ratio), "{ratio}");
    b.ok(&["rm", "-f", "low", "high"]);
}

#[test]
fn update_changes_cgroup_values_and_stats_prints_sane_rows() {
    berth_testutil::require_root!();
    let b = berth("update");
    b.ok(&[
        "run", "-d", "--name", "up", "-m", "64m", "busybox", "sleep", "1000",
    ]);
    let pid = pid_of(&b, "up");
    // Docker records the swap it applies (as much again as -m) and the
    // IPC mode's default.
    let v = inspect(&b, "up");
    assert_eq!(v["HostConfig"]["MemorySwap"], 128 << 20);
    assert_eq!(v["HostConfig"]["IpcMode"], "private");
    let mem = cgroup_file(pid, "memory", "memory.limit_in_bytes");
    let memsw = cgroup_file(pid, "memory", "memory.memsw.limit_in_bytes");
    if memsw.exists() {
        assert_eq!(read_trim(&memsw), (128u64 << 20).to_string());
    }
    if mem.exists() {
        assert_eq!(read_trim(&mem), (64u64 << 20).to_string());
    }
    assert_eq!(
        b.ok(&[
            "update",
            "--memory",
            "96m",
            "--memory-swap",
            "192m",
            "--cpus",
            "0.5",
            "up"
        ])
        .trim(),
        "up"
    );
    if mem.exists() {
        assert_eq!(read_trim(&mem), (96u64 << 20).to_string());
    } else {
        assert_eq!(
            read_trim(&cgroup_file(pid, "memory", "memory.max")),
            (96u64 << 20).to_string()
        );
    }
    let quota = cgroup_file(pid, "cpu", "cpu.cfs_quota_us");
    if quota.exists() {
        assert_eq!(read_trim(&quota), "50000");
    } else {
        assert_eq!(
            read_trim(&cgroup_file(pid, "cpu", "cpu.max")),
            "50000 100000"
        );
    }
    let v = inspect(&b, "up");
    assert_eq!(v["HostConfig"]["Memory"], 96 << 20);
    assert_eq!(v["HostConfig"]["NanoCpus"], 500_000_000);
    let err = b.fails(&["update", "--memory", "lots", "up"], 125);
    assert!(err.contains("lots"), "{err}");

    let out = b.ok(&["stats", "--no-stream", "up"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("CONTAINER ID"), "{out}");
    for col in [
        "NAME",
        "CPU %",
        "MEM USAGE / LIMIT",
        "MEM %",
        "NET I/O",
        "BLOCK I/O",
        "PIDS",
    ] {
        assert!(lines[0].contains(col), "{col}: {out}");
    }
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[1].contains("up") && lines[1].contains("/ 96MiB"),
        "{out}"
    );
    let json = b.ok(&["stats", "--no-stream", "--format", "json", "up"]);
    let row: serde_json::Value = serde_json::from_str(json.trim()).expect("stats json");
    assert_eq!(row["Name"], "up");
    assert_eq!(row["PIDs"], "1");
    let pct: f64 = row["MemPerc"]
        .as_str()
        .unwrap()
        .trim_end_matches('%')
        .parse()
        .unwrap();
    assert!((0.0..5.0).contains(&pct), "{row}");
    assert!(row["CPUPerc"].as_str().unwrap().ends_with('%'), "{row}");
    let t = b.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}:{{.PIDs}}",
        "up",
    ]);
    assert_eq!(t.trim(), "up:1");
    b.ok(&["rm", "-f", "up"]);
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

#[test]
fn events_info_and_version() {
    berth_testutil::require_root!();
    let b = berth("events");
    let since = now_rfc3339();
    b.ok(&["run", "--name", "ev", "busybox", "true"]);
    b.ok(&["rm", "ev"]);
    let until = now_rfc3339();
    let out = b.ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &until,
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
    ]);
    let actions: Vec<&str> = out.lines().collect();
    for want in [
        "container create ev",
        "container start ev",
        "container die ev",
        "container destroy ev",
    ] {
        assert!(actions.contains(&want), "{want}: {out}");
    }
    let pos = |a: &str| actions.iter().position(|l| *l == a).unwrap();
    assert!(pos("container create ev") < pos("container start ev"));
    assert!(pos("container die ev") < pos("container destroy ev"));
    let plain = b.ok(&["events", "--since", &since, "--until", &until]);
    assert!(
        plain
            .lines()
            .any(|l| l.contains(" container die ") && l.contains("exitCode=0")),
        "{plain}"
    );

    b.ok(&["run", "-d", "--name", "r1", "busybox", "sleep", "1000"]);
    b.ok(&["create", "--name", "c1", "busybox", "true"]);
    b.ok(&["run", "--name", "e1", "busybox", "true"]);
    assert_eq!(
        b.ok(&["info", "--format", "{{.ContainersRunning}}"]).trim(),
        "1"
    );
    assert_eq!(
        b.ok(&[
            "info",
            "--format",
            "{{.Containers}} {{.ContainersRunning}} {{.ContainersPaused}} {{.ContainersStopped}} {{.Images}}"
        ])
        .trim(),
        "3 1 0 2 1"
    );
    let info = b.ok(&["info"]);
    for want in [
        "Containers: 3",
        " Running: 1",
        " Stopped: 2",
        "Images: 1",
        "Cgroup Version",
    ] {
        assert!(info.contains(want), "{want}: {info}");
    }
    let version = b.ok(&["version"]);
    assert!(version.contains("Version:"), "{version}");
    let v = b.ok(&["version", "--format", "{{.Client.Version}}"]);
    assert!(!v.trim().is_empty());
    b.ok(&["rm", "-f", "r1", "c1", "e1"]);
}

fn cap_eff(out: &str) -> u64 {
    let hex = out
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .expect("CapEff line")
        .trim();
    u64::from_str_radix(hex, 16).expect("CapEff hex")
}

#[test]
fn read_only_tmpfs_privileges_and_seccomp() {
    berth_testutil::require_root!();
    let b = berth("security");
    let out = b.run(&["run", "--rm", "--read-only", "busybox", "touch", "/x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("Read-only file system"),
        "{}",
        stderr(&out)
    );
    b.ok(&[
        "run",
        "--rm",
        "--read-only",
        "--tmpfs",
        "/tmp",
        "busybox",
        "touch",
        "/tmp/x",
    ]);

    // tmpfs content is gone after a restart; the writable layer stays.
    b.ok(&[
        "run",
        "-d",
        "--name",
        "tm",
        "--tmpfs",
        "/scratch:size=1m",
        "busybox",
        "sleep",
        "1000",
    ]);
    b.ok(&[
        "exec",
        "tm",
        "sh",
        "-c",
        "echo a > /scratch/f; echo b > /kept",
    ]);
    let df = b.ok(&["exec", "tm", "df", "-k", "/scratch"]);
    assert!(df.contains("1024"), "{df}");
    b.ok(&["restart", "-t", "0", "tm"]);
    assert_eq!(inspect(&b, "tm")["State"]["Status"], "running");
    assert_eq!(b.ok(&["exec", "tm", "cat", "/kept"]), "b\n");
    assert_eq!(
        b.run(&["exec", "tm", "ls", "/scratch/f"]).status.code(),
        Some(1)
    );

    let status = "grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status";
    let default = b.ok(&["run", "--rm", "busybox", "sh", "-c", status]);
    let privileged = b.ok(&["run", "--rm", "--privileged", "busybox", "sh", "-c", status]);
    let none = b.ok(&[
        "run",
        "--rm",
        "--cap-drop",
        "ALL",
        "busybox",
        "sh",
        "-c",
        status,
    ]);
    // Docker's 14 default capabilities.
    assert_eq!(cap_eff(&default), 0xa80425fb, "{default}");
    assert!(cap_eff(&privileged).count_ones() >= 38, "{privileged}");
    assert_eq!(cap_eff(&none), 0, "{none}");
    assert!(default.contains("Seccomp:\t2"), "{default}");
    assert!(privileged.contains("Seccomp:\t0"), "{privileged}");
    let added = b.ok(&[
        "run",
        "--rm",
        "--cap-add",
        "NET_ADMIN",
        "busybox",
        "sh",
        "-c",
        status,
    ]);
    assert_eq!(cap_eff(&added), 0xa80425fb | (1 << 12), "{added}");
    let nnp = b.ok(&[
        "run",
        "--rm",
        "--security-opt",
        "no-new-privileges",
        "busybox",
        "sh",
        "-c",
        status,
    ]);
    assert!(nnp.contains("NoNewPrivs:\t1"), "{nnp}");
    assert!(default.contains("NoNewPrivs:\t0"), "{default}");

    // Docker's profile blocks unshare without CAP_SYS_ADMIN; unconfined
    // leaves it to the capability check alone.
    let blocked = b.run(&["run", "--rm", "busybox", "unshare", "-U", "true"]);
    assert_ne!(blocked.status.code(), Some(0), "{}", stderr(&blocked));
    assert!(
        stderr(&blocked).contains("Operation not permitted"),
        "{}",
        stderr(&blocked)
    );
    let unconfined = b.run(&[
        "run",
        "--rm",
        "--security-opt",
        "seccomp=unconfined",
        "busybox",
        "sh",
        "-c",
        &format!("{status}; unshare -U true && echo unshared"),
    ]);
    let out = stdout(&unconfined);
    assert!(out.contains("Seccomp:\t0"), "{out}");
    assert!(out.contains("unshared"), "{out} {}", stderr(&unconfined));
    let err = b.fails(
        &[
            "run",
            "--rm",
            "--security-opt",
            "seccomp=/no/such.json",
            "busybox",
            "true",
        ],
        125,
    );
    assert!(err.contains("/no/such.json"), "{err}");
}

fn readlink_ns(pid: &str, ns: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn host_and_container_namespaces() {
    berth_testutil::require_root!();
    let b = berth("namespaces");
    let me = std::process::id().to_string();
    let out = b.ok(&[
        "run",
        "--rm",
        "--pid",
        "host",
        "busybox",
        "sh",
        "-c",
        // Processes may end while ls lists them: no failure.
        "ls /proc 2>/dev/null; true",
    ]);
    assert!(
        out.lines().any(|l| l == me),
        "own pid {me} not seen with --pid host"
    );
    let out = b.ok(&["run", "--rm", "busybox", "sh", "-c", "ls /proc"]);
    assert!(!out.lines().any(|l| l == me));

    let host_name = nix::unistd::gethostname().unwrap().into_string().unwrap();
    let out = b.ok(&["run", "--rm", "--uts", "host", "busybox", "hostname"]);
    assert_eq!(out.trim(), host_name);
    let ns = "readlink /proc/self/ns/ipc; readlink /proc/self/ns/uts";
    let out = b.ok(&["run", "--rm", "--ipc", "host", "busybox", "sh", "-c", ns]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], readlink_ns("self", "ipc"));
    assert_ne!(lines[1], readlink_ns("self", "uts"));

    let host_links: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "busybox",
        "ls",
        "/sys/class/net",
    ]);
    let inside: Vec<&str> = out.split_whitespace().collect();
    for l in host_links
        .iter()
        .filter(|l| !l.starts_with("bth") && !l.starts_with("veth"))
    {
        assert!(inside.contains(&l.as_str()), "{l} missing in {out}");
    }
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "ls",
        "/sys/class/net",
    ]);
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["lo"]);

    b.ok(&[
        "run",
        "-d",
        "--name",
        "xc",
        "-h",
        "xhost",
        "--network",
        "none",
        "busybox",
        "sleep",
        "1000",
    ]);
    let xpid = pid_of(&b, "xc").to_string();
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "container:xc",
        "busybox",
        "sh",
        "-c",
        "hostname; readlink /proc/self/ns/net; ls /sys/class/net",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "xhost", "{out}");
    assert_eq!(lines[1], readlink_ns(&xpid, "net"), "{out}");
    assert_eq!(lines[2..], ["lo"], "{out}");
    let out = b.ok(&[
        "run",
        "--rm",
        "--pid",
        "container:xc",
        "busybox",
        "ps",
        "-o",
        "comm",
    ]);
    assert!(out.contains("sleep"), "{out}");
    let err = b.fails(
        &[
            "run",
            "--rm",
            "--network",
            "container:nosuch",
            "busybox",
            "true",
        ],
        125,
    );
    assert!(err.contains("nosuch"), "{err}");
    b.ok(&["rm", "-f", "xc"]);
}

#[test]
fn process_settings_stop_signal_and_maintenance_verbs() {
    berth_testutil::require_root!();
    let b = berth("settings");
    let out = b.ok(&[
        "run",
        "--rm",
        "--ulimit",
        "nofile=512:512",
        "busybox",
        "sh",
        "-c",
        "ulimit -n; ulimit -Hn",
    ]);
    assert_eq!(out, "512\n512\n");
    let out = b.ok(&[
        "run",
        "--rm",
        "--device",
        "/dev/null:/dev/mynull",
        "busybox",
        "sh",
        "-c",
        "ls -l /dev/mynull; echo x > /dev/mynull && echo wrote",
    ]);
    assert!(
        out.starts_with('c') && out.contains("1,   3") && out.contains("wrote"),
        "{out}"
    );

    let env_file = b.dir.join("env.list");
    std::fs::write(&env_file, "# comment\nFROM_FILE=f\nPASSED\n\nOVER=file\n").unwrap();
    let out = b
        .command()
        .env("PASSED", "through")
        .args([
            "run",
            "--rm",
            "--env-file",
            env_file.to_str().unwrap(),
            "-e",
            "OVER=flag",
            "-w",
            "/some/dir",
            "-u",
            "nobody",
            "--entrypoint",
            "/bin/sh",
            "busybox",
            "-c",
            "echo $FROM_FILE $PASSED $OVER; pwd; id -un",
        ])
        .output()
        .unwrap();
    assert_eq!(
        stdout(&out),
        "f through flag\n/some/dir\nnobody\n",
        "{}",
        stderr(&out)
    );
    let v = {
        b.ok(&[
            "create",
            "--name",
            "ep",
            "--entrypoint",
            "echo",
            "busybox",
            "a",
            "b",
        ]);
        inspect(&b, "ep")
    };
    assert_eq!(v["Config"]["Entrypoint"], serde_json::json!(["echo"]));
    assert_eq!(v["Config"]["Cmd"], serde_json::json!(["a", "b"]));
    assert_eq!(v["Path"], "echo");
    assert_eq!(b.ok(&["start", "-a", "ep"]), "a b\n");

    // --stop-signal reaches a trapping shell; --stop-timeout bounds stop.
    b.ok(&[
        "run",
        "-d",
        "--name",
        "trap",
        "--stop-signal",
        "SIGUSR1",
        "busybox",
        "sh",
        "-c",
        "trap 'echo got-usr1; exit 0' USR1; while :; do sleep 0.1; done",
    ]);
    assert_eq!(inspect(&b, "trap")["Config"]["StopSignal"], "SIGUSR1");
    let t = Instant::now();
    b.ok(&["stop", "trap"]);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert_eq!(b.ok(&["logs", "trap"]), "got-usr1\n");
    assert_eq!(inspect(&b, "trap")["State"]["ExitCode"], 0);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "slow",
        "--stop-timeout",
        "1",
        "busybox",
        "sleep",
        "1000",
    ]);
    assert_eq!(inspect(&b, "slow")["Config"]["StopTimeout"], 1);
    let t = Instant::now();
    b.ok(&["stop", "slow"]);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "{took:?}"
    );
    assert_eq!(inspect(&b, "slow")["State"]["ExitCode"], 137);

    // Stopping a --rm container succeeds and removes it.
    b.ok(&[
        "run", "-d", "--rm", "--name", "gone", "busybox", "sleep", "1000",
    ]);
    assert_eq!(b.ok(&["stop", "-t", "0", "gone"]).trim(), "gone");
    wait_until("the --rm removal", Duration::from_secs(5), || {
        !b.ok(&["ps", "-a", "--format", "{{.Names}}"])
            .contains("gone")
    });

    // restart gives a new process; top lists it.
    b.ok(&["start", "slow"]);
    let pid1 = pid_of(&b, "slow");
    assert_eq!(b.ok(&["restart", "-t", "0", "slow"]).trim(), "slow");
    let pid2 = pid_of(&b, "slow");
    assert_ne!(pid1, pid2);
    let top = b.ok(&["top", "slow"]);
    let lines: Vec<&str> = top.lines().collect();
    assert!(
        lines[0].starts_with("UID") && lines[0].contains("PID") && lines[0].contains("CMD"),
        "{top}"
    );
    assert!(
        lines[1..]
            .iter()
            .any(|l| l.contains(&pid2.to_string()) && l.contains("sleep 1000")),
        "{top}"
    );
    let top = b.ok(&["top", "slow", "-o", "pid,comm"]);
    assert!(
        top.contains(&pid2.to_string()) && top.contains("sleep"),
        "{top}"
    );
    assert_eq!(b.ok(&["port", "slow"]), "");

    // Prunes remove only stopped containers; rm -v is accepted.
    b.ok(&["create", "--name", "idle", "busybox", "true"]);
    b.ok(&["run", "--name", "done1", "busybox", "true"]);
    let out = b.ok(&["container", "prune", "-f"]);
    assert!(out.starts_with("Deleted Containers:"), "{out}");
    assert!(out.contains("Total reclaimed space:"), "{out}");
    let left = b.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    let mut left: Vec<&str> = left.lines().collect();
    left.sort();
    assert_eq!(left, ["slow"]);
    b.ok(&["run", "--name", "done2", "busybox", "true"]);
    let out = b.ok(&["system", "prune", "-f"]);
    assert!(out.contains("Deleted Containers:"), "{out}");
    assert_eq!(b.ok(&["ps", "-a", "--format", "{{.Names}}"]).trim(), "slow");
    assert_eq!(b.ok(&["rm", "-v", "-f", "slow"]).trim(), "slow");
    assert_eq!(b.ok(&["ps", "-aq"]), "");
}

#[test]
fn runtime_runc_runs_containers_and_crun_refuses_clearly() {
    berth_testutil::require_root!();
    if !common::have("runc") {
        eprintln!("SKIPPED: runc is not installed");
        return;
    }
    let b = berth("runc");
    let out = b.run(&[
        "run",
        "--rm",
        "--runtime",
        "runc",
        "busybox",
        "sh",
        "-c",
        "echo via runc; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(stdout(&out), "via runc\n");
    b.ok(&[
        "run",
        "-d",
        "--runtime",
        "runc",
        "--name",
        "rc",
        "--cpus",
        "0.5",
        "busybox",
        "sleep",
        "1000",
    ]);
    let v = inspect(&b, "rc");
    assert_eq!(v["HostConfig"]["Runtime"], "runc");
    let pid = pid_of(&b, "rc");
    let quota = cgroup_file(pid, "cpu", "cpu.cfs_quota_us");
    if quota.exists() {
        assert_eq!(read_trim(&quota), "50000");
    }
    assert_eq!(
        b.ok(&["exec", "rc", "cat", "/etc/hostname"]).trim(),
        &v["Id"].as_str().unwrap()[..12]
    );
    b.ok(&["pause", "rc"]);
    assert_eq!(inspect(&b, "rc")["State"]["Status"], "paused");
    b.ok(&["unpause", "rc"]);
    let t = Instant::now();
    b.ok(&["stop", "-t", "1", "rc"]);
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(inspect(&b, "rc")["State"]["ExitCode"], 137);
    b.ok(&["rm", "rc"]);

    if common::have("crun") {
        let out = b.run(&["run", "--rm", "--runtime", "crun", "busybox", "true"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(125), "{err}");
        assert!(
            err.contains("Error response from daemon: failed to create task for container: OCI runtime create failed: cgroups in hybrid mode not supported"),
            "{err}"
        );
        assert_eq!(b.ok(&["ps", "-aq"]), "");
    }
    let err = b.fails(
        &["run", "--rm", "--runtime", "nosuchrt", "busybox", "true"],
        125,
    );
    assert!(err.contains("nosuchrt"), "{err}");
}

#[test]
fn ps_and_inspect_output_like_docker() {
    berth_testutil::require_root!();
    let b = berth("psfmt");
    b.ok(&[
        "run", "-d", "--name", "alpha", "-l", "tier=web", "busybox", "sleep", "1000",
    ]);
    let out = b.run(&[
        "run", "--name", "beta", "-l", "tier=db", "busybox", "sh", "-c", "exit 2",
    ]);
    assert_eq!(out.status.code(), Some(2));
    b.ok(&["create", "--name", "gamma", "busybox", "true"]);

    let out = b.ok(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(out.starts_with("alpha Up "), "{out}");
    assert_eq!(out.lines().count(), 1);
    let out = b.ok(&[
        "ps",
        "-a",
        "--format",
        "{{.Names}}|{{.Status}}|{{.Image}}|{{.Command}}",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    // Newest first.
    assert!(
        lines[0].starts_with("gamma|Created|busybox|\"true\""),
        "{out}"
    );
    assert!(lines[1].starts_with("beta|Exited (2) "), "{out}");
    assert!(
        lines[1].ends_with("ago|busybox|\"sh -c 'exit 2'\""),
        "{out}"
    );
    assert!(lines[2].starts_with("alpha|Up "), "{out}");

    assert_eq!(
        b.ok(&["ps", "-n", "1", "--format", "{{.Names}}"]).trim(),
        "gamma"
    );
    assert_eq!(
        b.ok(&["ps", "-l", "--format", "{{.Names}}"]).trim(),
        "gamma"
    );
    let out = b.ok(&["ps", "-n", "2", "--format", "{{.Names}}"]);
    assert_eq!(out.lines().collect::<Vec<_>>(), ["gamma", "beta"]);
    let names = |filter: &str| {
        let out = b.ok(&["ps", "-a", "--filter", filter, "--format", "{{.Names}}"]);
        let mut v: Vec<String> = out.lines().map(str::to_string).collect();
        v.sort();
        v
    };
    assert_eq!(names("status=exited"), ["beta"]);
    assert_eq!(names("status=created"), ["gamma"]);
    assert_eq!(names("status=running"), ["alpha"]);
    assert_eq!(names("name=alp"), ["alpha"]);
    assert_eq!(names("label=tier=db"), ["beta"]);
    assert_eq!(names("label=tier"), ["alpha", "beta"]);
    assert_eq!(names("ancestor=busybox"), ["alpha", "beta", "gamma"]);
    assert_eq!(names("ancestor=nosuchimage").len(), 0);
    assert_eq!(names("exited=2"), ["beta"]);
    let err = b.fails(&["ps", "--filter", "colour=blue"], 1);
    assert!(err.contains("invalid filter 'colour'"), "{err}");

    let out = b.ok(&["ps", "-s"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].trim_end().ends_with("SIZE"), "{out}");
    assert!(lines[1].contains("B (virtual "), "{out}");
    let out = b.ok(&["ps", "-a", "--no-trunc", "-q"]);
    assert!(out.lines().all(|l| l.len() == 64), "{out}");

    let state = b.ok(&["inspect", "-f", "{{json .State}}", "alpha"]);
    let state: serde_json::Value = serde_json::from_str(&state).expect("State JSON");
    let keys: Vec<&str> = state
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for k in [
        "Status",
        "Running",
        "Paused",
        "Restarting",
        "OOMKilled",
        "Dead",
        "Pid",
        "ExitCode",
        "Error",
        "StartedAt",
        "FinishedAt",
    ] {
        assert!(keys.contains(&k), "{k} missing in {keys:?}");
    }
    assert_eq!(state["Running"], true);
    assert_eq!(state["FinishedAt"], "0001-01-01T00:00:00Z");
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.State.ExitCode}}", "beta"])
            .trim(),
        "2"
    );
    let v = inspect(&b, "beta");
    for k in [
        "Id",
        "Created",
        "Path",
        "Args",
        "State",
        "Image",
        "ResolvConfPath",
        "HostnamePath",
        "HostsPath",
        "LogPath",
        "Name",
        "RestartCount",
        "Driver",
        "Platform",
        "MountLabel",
        "ProcessLabel",
        "AppArmorProfile",
        "HostConfig",
        "GraphDriver",
        "Mounts",
        "Config",
        "NetworkSettings",
    ] {
        assert!(v.get(k).is_some(), "{k} missing in inspect");
    }
    for k in [
        "Binds",
        "NetworkMode",
        "RestartPolicy",
        "LogConfig",
        "AutoRemove",
        "CapAdd",
        "CapDrop",
        "Privileged",
        "ReadonlyRootfs",
        "SecurityOpt",
        "Memory",
        "NanoCpus",
        "CpuShares",
        "PidsLimit",
        "Ulimits",
        "Devices",
        "ShmSize",
        "Runtime",
    ] {
        assert!(v["HostConfig"].get(k).is_some(), "HostConfig.{k} missing");
    }
    for k in [
        "Hostname",
        "User",
        "Tty",
        "OpenStdin",
        "Env",
        "Cmd",
        "Image",
        "WorkingDir",
        "Entrypoint",
        "Labels",
        "AttachStdout",
    ] {
        assert!(v["Config"].get(k).is_some(), "Config.{k} missing");
    }
    assert_eq!(v["Config"]["Labels"]["tier"], "db");
    assert_eq!(v["GraphDriver"]["Name"], "overlay2");
    for k in ["LowerDir", "MergedDir", "UpperDir", "WorkDir"] {
        assert!(
            v["GraphDriver"]["Data"].get(k).is_some(),
            "GraphDriver.Data.{k} missing"
        );
    }
    assert_eq!(v["Driver"], "overlay2");
    assert!(v["Image"].as_str().unwrap().starts_with("sha256:"));
    // Docker fills in the default masked and read-only paths at create;
    // privileged containers show null, systempaths=unconfined empty lists.
    let masked = v["HostConfig"]["MaskedPaths"].as_array().unwrap();
    assert!(masked.iter().any(|p| p == "/proc/kcore"), "{masked:?}");
    let readonly = v["HostConfig"]["ReadonlyPaths"].as_array().unwrap();
    assert!(readonly.iter().any(|p| p == "/proc/sys"), "{readonly:?}");
    b.ok(&[
        "create",
        "--name",
        "priv",
        "--privileged",
        "busybox",
        "true",
    ]);
    let hc = &inspect(&b, "priv")["HostConfig"];
    assert!(
        hc["MaskedPaths"].is_null() && hc["ReadonlyPaths"].is_null(),
        "{hc}"
    );
    let opt = "systempaths=unconfined";
    b.ok(&[
        "create",
        "--name",
        "unconf",
        "--security-opt",
        opt,
        "busybox",
        "true",
    ]);
    let hc = &inspect(&b, "unconf")["HostConfig"];
    assert_eq!(hc["MaskedPaths"], serde_json::json!([]));
    assert_eq!(hc["ReadonlyPaths"], serde_json::json!([]));
    b.fails(&["inspect", "nosuch"], 1);
    b.ok(&["rm", "-f", "alpha", "beta", "gamma", "priv", "unconf"]);
}

#[test]
fn exec_that_cannot_start_exits_like_docker() {
    berth_testutil::require_root!();
    let b = berth("exec-missing");
    b.ok(&["run", "-d", "--name", "ex", "busybox", "sleep", "1000"]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "exr",
        "--runtime",
        "runc",
        "busybox",
        "sleep",
        "1000",
    ]);
    for c in ["ex", "exr"] {
        let err = b.fails(&["exec", c, "/no/such"], 127);
        assert!(err.contains("/no/such"), "{err}");
        let err = b.fails(&["exec", c, "nosuchcmd"], 127);
        assert!(err.contains("nosuchcmd"), "{err}");
        let err = b.fails(&["exec", c, "/etc/passwd"], 126);
        assert!(err.contains("permission denied"), "{err}");
        // The process's own statuses and stderr pass through unchanged.
        let out = b.run(&["exec", c, "sh", "-c", "echo own >&2; exit 1"]);
        assert_eq!(out.status.code(), Some(1), "{c}");
        assert_eq!(stderr(&out), "own\n");
        b.fails(&["exec", c, "sh", "-c", "exit 255"], 255);
        b.fails(&["exec", "-d", c, "/no/such"], 127);
    }
}

#[test]
fn restart_keeps_a_rm_container() {
    berth_testutil::require_root!();
    let b = berth("restart-rm");
    b.ok(&[
        "run", "-d", "--rm", "--name", "kept", "busybox", "sleep", "1000",
    ]);
    assert_eq!(b.ok(&["restart", "-t", "0", "kept"]).trim(), "kept");
    assert_eq!(inspect(&b, "kept")["State"]["Status"], "running");
}
