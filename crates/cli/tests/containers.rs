//! The container lifecycle through the `berth` binary: run, create, start,
//! stop, kill, rm, ps, inspect, logs, wait, exec, pause, rename, restart
//! policies, `--init`, resource limits and the failure paths.

mod common;

use std::time::{Duration, Instant};

use common::{berth, inspect, stderr, wait_until};

#[test]
fn run_prints_output_and_returns_the_exit_code() {
    berth_testutil::require_root!();
    let b = berth("run-exit");
    let out = b.run(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    // --rm removed it.
    assert_eq!(b.ok(&["ps", "-aq"]), "");
    // A signal death is 128+n (with --init: the kernel ignores SIGKILL that
    // a namespace's init sends itself).
    let out = b.run(&["run", "--rm", "--init", "busybox", "sh", "-c", "kill -9 $$"]);
    assert_eq!(out.status.code(), Some(137));
}

#[test]
fn missing_command_image_and_bad_flags_fail_like_docker() {
    berth_testutil::require_root!();
    let b = berth("run-errors");
    let err = b.fails(&["run", "--rm", "busybox", "/no/such/binary"], 127);
    assert!(
        err.contains("OCI runtime create failed: unable to start container process: exec: \"/no/such/binary\""),
        "{err}"
    );
    let err = b.fails(&["run", "--rm", "busybox", "/etc/passwd"], 126);
    assert!(
        err.contains("permission denied") || err.contains("Permission denied"),
        "{err}"
    );
    let err = b.fails(&["run", "--rm", "nosuchimage"], 125);
    assert!(err.contains("Unable to find image 'nosuchimage"), "{err}");
    let err = b.fails(&["run", "-m", "lots", "busybox", "true"], 125);
    assert!(err.contains("invalid argument \"lots\""), "{err}");
    b.ok(&["create", "--name", "taken", "busybox", "true"]);
    let err = b.fails(&["create", "--name", "taken", "busybox", "true"], 125);
    assert!(err.contains("is already in use"), "{err}");
    let err = b.fails(&["run", "--restart", "sometimes", "busybox", "true"], 125);
    assert!(err.contains("restart"), "{err}");
    // Nothing half-created: only the one good container exists.
    let all = b.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(all.trim(), "taken", "{all}");
    // Failed starts of the not-found runs left no mounts behind.
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&b.root().display().to_string()),
        "mounts left under the root"
    );
}

#[test]
fn detached_lifecycle_keeps_the_writable_layer_until_rm() {
    berth_testutil::require_root!();
    let b = berth("lifecycle");
    let id = b
        .ok(&[
            "run",
            "-d",
            "--name",
            "web",
            "busybox",
            "sh",
            "-c",
            "echo hi > /data; exec sleep 1000",
        ])
        .trim()
        .to_string();
    assert_eq!(id.len(), 64, "{id}");
    let ps = b.ok(&["ps"]);
    let lines: Vec<&str> = ps.lines().collect();
    assert!(lines[0].starts_with("CONTAINER ID   IMAGE"), "{ps}");
    assert!(lines[1].starts_with(&id[..12]), "{ps}");
    assert!(lines[1].contains("Up "), "{ps}");
    assert!(lines[1].trim_end().ends_with("web"), "{ps}");
    let v = inspect(&b, "web");
    assert_eq!(v["State"]["Status"], "running");
    let pid = v["State"]["Pid"].as_i64().unwrap();
    assert!(pid > 0);
    assert_eq!(
        b.ok(&["inspect", "-f", "{{.State.Pid}}", "web"]).trim(),
        pid.to_string()
    );
    assert_eq!(v["Name"], "/web");
    assert_eq!(v["Config"]["Image"], "busybox");

    let t = Instant::now();
    assert_eq!(b.ok(&["stop", "-t", "1", "web"]).trim(), "web");
    // sleep as PID 1 has no SIGTERM handler, so the kernel ignores the
    // signal: stop waits out the timeout and kills.
    assert!(t.elapsed() >= Duration::from_secs(1), "{:?}", t.elapsed());
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    let v = inspect(&b, "web");
    assert_eq!(v["State"]["Status"], "exited");
    assert_eq!(v["State"]["ExitCode"], 137);
    assert!(b.ok(&["ps", "-a"]).contains("Exited (137)"));
    assert_eq!(b.ok(&["ps", "-q"]), "");

    b.ok(&["start", "web"]);
    assert_eq!(inspect(&b, "web")["State"]["Status"], "running");
    let out = b.ok(&["exec", "web", "cat", "/data"]);
    assert_eq!(out, "hi\n");
    // Failures to start the process: Docker's codes and one line in its words.
    let err = b.fails(&["exec", "web", "nosuchcmd"], 127);
    assert_eq!(
        err.trim(),
        "OCI runtime exec failed: exec failed: unable to start container process: \
         exec: \"nosuchcmd\": executable file not found in $PATH: unknown"
    );
    let err = b.fails(&["exec", "web", "/etc/passwd"], 126);
    assert!(err.starts_with("OCI runtime exec failed: "), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let err = b.fails(&["rm", "web"], 1);
    assert!(
        err.contains("stop the container before removing or force remove"),
        "{err}"
    );
    b.ok(&["rm", "-f", "web"]);
    assert_eq!(b.ok(&["ps", "-aq"]), "");
    assert!(!b.root().join("containers").join(&id).exists());
    // A new container from the image does not see the old layer.
    let out = b.run(&["run", "--rm", "busybox", "cat", "/data"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn logs_wait_rename_pause_and_kill() {
    berth_testutil::require_root!();
    let b = berth("logs");
    b.ok(&[
        "run",
        "-d",
        "--init",
        "--name",
        "talker",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3; do echo line$i; done; sleep 0.3; echo oops >&2; sleep 1000",
    ]);
    wait_until("logs", Duration::from_secs(5), || {
        String::from_utf8_lossy(&b.run(&["logs", "talker"]).stderr).contains("oops")
    });
    let out = b.run(&["logs", "talker"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "line1\nline2\nline3\n"
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "oops\n");
    let out = b.run(&["logs", "--tail", "1", "talker"]);
    assert_eq!(String::from_utf8_lossy(&out.stderr), "oops\n");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    let out = b.ok(&["logs", "-t", "talker"]);
    assert!(
        out.lines().all(|l| l.contains("T") && l.contains("Z line")),
        "{out}"
    );

    b.ok(&["rename", "talker", "speaker"]);
    assert_eq!(inspect(&b, "speaker")["Name"], "/speaker");
    b.fails(&["inspect", "talker"], 1);

    b.ok(&["pause", "speaker"]);
    assert_eq!(inspect(&b, "speaker")["State"]["Status"], "paused");
    assert!(b.ok(&["ps"]).contains("(Paused)"));
    b.ok(&["unpause", "speaker"]);
    assert_eq!(inspect(&b, "speaker")["State"]["Status"], "running");

    let waiter = {
        let mut c = b.command();
        c.args(["wait", "speaker"])
            .stdout(std::process::Stdio::piped());
        c.spawn().unwrap()
    };
    b.ok(&["kill", "-s", "USR1", "speaker"]);
    let out = waiter.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "138");
    assert_eq!(inspect(&b, "speaker")["State"]["ExitCode"], 138);
    let err = b.fails(&["kill", "speaker"], 1);
    assert!(err.contains("is not running"), "{err}");
    b.ok(&["rm", "speaker"]);
}

#[test]
fn init_reaps_zombies_and_stops_fast() {
    berth_testutil::require_root!();
    let b = berth("init");
    // sh as PID 1 ignores SIGTERM: stop waits out the timeout.
    b.ok(&[
        "run",
        "-d",
        "--name",
        "noinit",
        "busybox",
        "sh",
        "-c",
        "sleep 1000 & wait",
    ]);
    let t = Instant::now();
    b.ok(&["stop", "-t", "2", "noinit"]);
    let slow = t.elapsed();
    assert!(slow >= Duration::from_secs(2), "{slow:?}");
    assert_eq!(inspect(&b, "noinit")["State"]["ExitCode"], 137);

    b.ok(&[
        "run",
        "-d",
        "--init",
        "--name",
        "withinit",
        "busybox",
        "sh",
        "-c",
        "sleep 1000 & wait",
    ]);
    let out = b.ok(&["exec", "withinit", "cat", "/proc/1/cmdline"]);
    assert!(out.starts_with("/sbin/docker-init"), "{out:?}");
    let t = Instant::now();
    b.ok(&["stop", "-t", "10", "withinit"]);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());

    // Orphans re-parented to the init are reaped: no zombies remain.
    b.ok(&[
        "run",
        "-d",
        "--init",
        "--name",
        "reaper",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do (sleep 0.1 &) ; done; sleep 1000",
    ]);
    std::thread::sleep(Duration::from_millis(800));
    let ps = b.ok(&["exec", "reaper", "ps", "-o", "stat,comm"]);
    assert!(!ps.lines().any(|l| l.trim_start().starts_with('Z')), "{ps}");
    b.ok(&["rm", "-f", "noinit", "withinit", "reaper"]);
}

#[test]
fn memory_limit_oom_kill_is_recorded() {
    berth_testutil::require_root!();
    let b = berth("oom");
    let out = b.run(&[
        "run",
        "--name",
        "hog",
        "-m",
        "20m",
        "--memory-swap",
        "20m",
        "busybox",
        "sh",
        "-c",
        "x=a; while true; do x=$x$x$x$x; done",
    ]);
    assert_eq!(
        out.status.code(),
        Some(137),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = inspect(&b, "hog");
    assert_eq!(v["State"]["OOMKilled"], true);
    assert_eq!(v["State"]["ExitCode"], 137);
    assert_eq!(v["HostConfig"]["Memory"], 20 * 1024 * 1024);
    b.ok(&["rm", "hog"]);
}

#[test]
fn pids_limit_stops_a_fork_bomb_and_cpus_sets_the_quota() {
    berth_testutil::require_root!();
    let b = berth("limits");
    b.ok(&[
        "run",
        "-d",
        "--name",
        "lim",
        "--pids-limit",
        "20",
        "--cpus",
        "0.3",
        "busybox",
        "sleep",
        "1000",
    ]);
    let out = b.run(&[
        "exec",
        "lim",
        "sh",
        "-c",
        "for i in $(seq 1 40); do sleep 5 & done; wait",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("fork")
            || err.contains("Resource temporarily unavailable")
            || err.contains("can't fork"),
        "{err}"
    );
    let pid = inspect(&b, "lim")["State"]["Pid"].as_i64().unwrap();
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let cpu_path = cg.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, ctrl, path) = (f.next()?, f.next()?, f.next()?);
        ctrl.split(',')
            .any(|c| c == "cpu")
            .then(|| path.to_string())
    });
    match cpu_path {
        Some(p) => {
            let quota =
                std::fs::read_to_string(format!("/sys/fs/cgroup/cpu,cpuacct{p}/cpu.cfs_quota_us"))
                    .or_else(|_| {
                        std::fs::read_to_string(format!("/sys/fs/cgroup/cpu{p}/cpu.cfs_quota_us"))
                    })
                    .unwrap();
            assert_eq!(quota.trim(), "30000");
        }
        None => {
            let p = cg.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
            let max = std::fs::read_to_string(format!("/sys/fs/cgroup{p}/cpu.max")).unwrap();
            assert_eq!(max.trim(), "30000 100000");
        }
    }
    b.ok(&["rm", "-f", "lim"]);
}

#[test]
fn restart_policy_restarts_after_a_crash_but_not_after_stop() {
    berth_testutil::require_root!();
    let b = berth("restart");
    b.ok(&[
        "run",
        "-d",
        "--name",
        "phoenix",
        "--restart",
        "always",
        "busybox",
        "sleep",
        "1000",
    ]);
    let pid1 = inspect(&b, "phoenix")["State"]["Pid"].as_i64().unwrap();
    // Killed from outside berth: the policy restarts it.
    // SAFETY: signalling a pid of our own test container.
    unsafe { libc::kill(pid1 as i32, libc::SIGKILL) };
    wait_until("a restart", Duration::from_secs(10), || {
        let v = inspect(&b, "phoenix");
        v["RestartCount"].as_i64() == Some(1) && v["State"]["Status"] == "running"
    });
    let pid2 = inspect(&b, "phoenix")["State"]["Pid"].as_i64().unwrap();
    assert_ne!(pid1, pid2);
    b.ok(&["stop", "phoenix"]);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(inspect(&b, "phoenix")["State"]["Status"], "exited");

    let out = b.run(&[
        "run",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "echo run; exit 5",
    ]);
    let _ = out;
    wait_until("retries to finish", Duration::from_secs(15), || {
        inspect(&b, "flaky")["State"]["Status"] == "exited"
    });
    let logs = b.ok(&["logs", "flaky"]);
    assert_eq!(logs.matches("run").count(), 3, "{logs}");
    assert_eq!(inspect(&b, "flaky")["RestartCount"], 2);
    b.ok(&["rm", "-f", "phoenix", "flaky"]);
}

#[test]
fn twenty_parallel_detached_runs_succeed() {
    berth_testutil::require_root!();
    let b = berth("parallel");
    let children: Vec<_> = (0..20)
        .map(|i| {
            let mut c = b.command();
            c.args([
                "run",
                "-d",
                "--name",
                &format!("p{i}"),
                "busybox",
                "sleep",
                "1000",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let running = b.ok(&["ps", "-q"]);
    assert_eq!(running.lines().count(), 20, "{running}");
    let names: Vec<String> = (0..20).map(|i| format!("p{i}")).collect();
    let mut args = vec!["rm", "-f"];
    args.extend(names.iter().map(String::as_str));
    b.ok(&args);
    assert_eq!(b.ok(&["ps", "-aq"]), "");
}

#[test]
fn generated_names_etc_files_and_hostname() {
    berth_testutil::require_root!();
    let b = berth("etc");
    let id = b.ok(&["create", "busybox", "true"]).trim().to_string();
    let name = b.ok(&["inspect", "-f", "{{.Name}}", &id]);
    let name = name.trim().trim_start_matches('/');
    let (adj, noun) = name.split_once('_').expect("adjective_noun");
    assert!(!adj.is_empty() && !noun.is_empty(), "{name}");
    let out = b.ok(&[
        "run",
        "--rm",
        "-h",
        "box1",
        "--add-host",
        "db:10.1.2.3",
        "busybox",
        "sh",
        "-c",
        "hostname; cat /etc/hosts; cat /etc/hostname; df -k /dev/shm | tail -1",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "box1");
    assert!(out.contains("127.0.0.1\tlocalhost"), "{out}");
    assert!(out.contains("10.1.2.3\tdb"), "{out}");
    assert!(out.contains("65536"), "{out}");
    b.ok(&["rm", &id]);
}

#[test]
fn killed_cli_leaves_a_truthful_state_that_rm_f_cleans() {
    berth_testutil::require_root!();
    let b = berth("sigkill");
    // Kill `berth run -d` at several points of its work.
    for delay_ms in [1u64, 5, 15, 40] {
        let mut child = b
            .command()
            .args(["run", "-d", "busybox", "sleep", "1000"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
    }
    // Every container's recorded state matches reality. (A start the
    // killed CLI had launched may still be finishing, so each container's
    // status and pid are read together, from one `inspect`.)
    let out = b.ok(&["ps", "-a", "--format", "{{.ID}} {{.State}}"]);
    for line in out.lines() {
        let id = line.split(' ').next().unwrap();
        let v = inspect(&b, id);
        let pid = v["State"]["Pid"].as_i64().unwrap();
        match v["State"]["Status"].as_str().unwrap() {
            "running" => assert!(
                pid > 0 && std::path::Path::new(&format!("/proc/{pid}")).exists(),
                "{line}: {}",
                v["State"]
            ),
            "created" | "exited" => assert_eq!(pid, 0, "{line}: {}", v["State"]),
            other => panic!("unexpected state {other}"),
        }
    }
    let ids: Vec<String> = out
        .lines()
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect();
    if !ids.is_empty() {
        let mut args = vec!["rm", "-f"];
        args.extend(ids.iter().map(String::as_str));
        b.ok(&args);
    }
    assert_eq!(b.ok(&["ps", "-aq"]), "");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&b.root().display().to_string()));
}

#[test]
fn system_boot_restarts_always_and_unless_stopped_after_a_reboot() {
    berth_testutil::require_root!();
    let b = berth("boot");
    b.ok(&[
        "run",
        "-d",
        "--name",
        "always",
        "--restart",
        "always",
        "busybox",
        "sleep",
        "1000",
    ]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "unless",
        "--restart",
        "unless-stopped",
        "busybox",
        "sleep",
        "1000",
    ]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "stopped",
        "--restart",
        "unless-stopped",
        "busybox",
        "sleep",
        "1000",
    ]);
    b.ok(&["run", "-d", "--name", "never", "busybox", "sleep", "1000"]);
    b.ok(&["stop", "-t", "0", "stopped"]);
    // A reboot: every process dies at once and /run is empty afterwards.
    for name in ["always", "unless", "never"] {
        let v = inspect(&b, name);
        let pid = v["State"]["Pid"].as_i64().unwrap() as i32;
        let run_dir = b
            .dir
            .join("run")
            .join("containers")
            .join(v["Id"].as_str().unwrap());
        let monitor: i32 = std::fs::read_to_string(run_dir.join("monitor.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // SAFETY: signalling this test's own monitor and container processes.
        unsafe {
            libc::kill(monitor, libc::SIGKILL);
            libc::kill(pid, libc::SIGKILL);
        }
        wait_until("the container's death", Duration::from_secs(5), || {
            !std::path::Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z"))
        });
    }
    for name in ["always", "unless", "never"] {
        // Unmount what the dead monitors left mounted, as a reboot would.
        let id = inspect(&b, name)["Id"].as_str().unwrap().to_string();
        let merged = b.root().join("snapshots").join(&id).join("merged");
        let _ = nix::mount::umount2(&merged, nix::mount::MntFlags::MNT_DETACH);
    }
    let runtime_root = b.dir.join("run").join("runtime");
    let _ = std::fs::remove_dir_all(&runtime_root);
    let started = b.ok(&["system", "boot"]);
    let mut names: Vec<&str> = started.lines().collect();
    names.sort();
    assert_eq!(names, ["always", "unless"], "{started}");
    for (name, state) in [
        ("always", "running"),
        ("unless", "running"),
        ("stopped", "exited"),
        ("never", "exited"),
    ] {
        assert_eq!(inspect(&b, name)["State"]["Status"], state, "{name}");
    }
    assert_eq!(b.ok(&["exec", "always", "echo", "up"]), "up\n");
}

/// Every command appends to the state database's WAL, and every open
/// replays it: closing hands its checkpoint to a background process once
/// it grew, so it stays small however many commands ran, and removed
/// containers' files go through the trash and are deleted soon after.
#[test]
fn many_commands_keep_the_wal_small_and_the_trash_empty() {
    berth_testutil::require_root!();
    let b = berth("wal-bounded");
    for i in 0..40 {
        let name = format!("c{i}");
        b.ok(&["create", "--name", &name, "busybox", "true"]);
        b.ok(&["rm", &name]);
    }
    let wal = b.root().join("berth.db-wal");
    let size = || std::fs::metadata(&wal).map_or(0, |m| m.len());
    // The engine's threshold (64 pages) plus what one command appends.
    wait_until("the WAL checkpointed", Duration::from_secs(10), || {
        size() <= 64 * 4096 + 32 * (4096 + 24)
    });
    let trash = b.root().join("trash");
    wait_until("the trash emptied", Duration::from_secs(10), || {
        std::fs::read_dir(&trash).map_or(true, |mut d| d.next().is_none())
    });
    assert_eq!(b.ok(&["ps", "-aq"]), "");
}

/// An attached `run --rm` does its container's exit cleanup itself (the
/// monitor hands it over); when that CLI is gone before the container
/// ends, the monitor's exit command does it. Both leave nothing behind.
#[test]
fn run_rm_is_cleaned_by_the_cli_or_by_the_exit_command_when_the_cli_died() {
    berth_testutil::require_root!();
    let b = berth("rmhand");
    // The monitor deleted the runtime's state (and cgroups) before the
    // CLI returned.
    let runtime_state_is_gone = || {
        let runtime_state = b.root().parent().unwrap().join("run/runtime");
        assert!(runtime_state.is_dir(), "{}", runtime_state.display());
        let left: Vec<_> = std::fs::read_dir(&runtime_state)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name())
                    // The runtime's compiled seccomp programs, shared.
                    .filter(|n| n != ".seccomp-cache")
                    .collect()
            })
            .unwrap_or_default();
        assert!(left.is_empty(), "runtime state left: {left:?}");
    };
    let out = b.run(&[
        "run", "--rm", "--name", "quick", "busybox", "sh", "-c", "exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(b.ok(&["ps", "-aq"]), "");
    runtime_state_is_gone();
    // The name is free at once: removal happened before the CLI returned.
    let out = b.run(&["run", "--rm", "--name", "quick", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // The attached CLI has threads; its removed files still go to a
    // background process, which empties both trashes.
    let trashes = [
        b.root().join("trash"),
        b.root().parent().unwrap().join("run/trash"),
    ];
    wait_until("the trashes are empty", Duration::from_secs(10), || {
        trashes
            .iter()
            .all(|t| std::fs::read_dir(t).map_or(true, |mut d| d.next().is_none()))
    });

    let mut child = b
        .command()
        .args(["run", "--rm", "--name", "orphan", "busybox", "sleep", "1"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the container runs", Duration::from_secs(10), || {
        b.ok(&["ps", "-q", "--filter", "name=orphan"]).trim().len() == 12
    });
    let _ = child.kill();
    let _ = child.wait();
    wait_until(
        "the exit command removed it",
        Duration::from_secs(15),
        || b.ok(&["ps", "-aq"]).is_empty(),
    );
    runtime_state_is_gone();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&b.root().display().to_string()));
}

/// Many commands opening a state root for the first time at once: one
/// creates the database and switches it to WAL while the others read its
/// schema; none fails with "database is locked".
#[test]
fn concurrent_first_opens_of_a_state_root_all_succeed() {
    for round in 0..3 {
        let b = berth(&format!("firstopen{round}"));
        let children: Vec<_> = (0..8)
            .map(|_| {
                b.command()
                    .args(["ps", "-a"])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", stderr(&out));
        }
    }
}
