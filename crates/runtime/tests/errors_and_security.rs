//! Bad configs give one clear line and leave nothing behind; the two
//! runtime CVEs (CVE-2019-5736, CVE-2024-21626) are attempted and fail.

mod common;

use std::os::unix::process::CommandExt;

use berth_testutil::require_root;
use common::*;
use serde_json::json;

/// Creates with the edited config and checks: exit 1, one line naming
/// `expect`, no state dir, no cgroup.
fn assert_refused(env: &Env, edit: impl FnOnce(&mut serde_json::Value), expect: &[&str]) {
    env.edit(edit);
    let id = unique_id("bad");
    let _g = env.guard(&id);
    let out = env.rt(&["create", "--bundle", env.bundle_str(), &id]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "not one line: {err:?}");
    assert!(err.starts_with("berth-runtime: "), "{err}");
    for e in expect {
        assert!(err.contains(e), "{err:?} lacks {e:?}");
    }
    assert!(!env.root.join(&id).exists(), "state dir left behind");
    assert!(cgroup_leftovers(&id).is_empty(), "cgroup left behind");
}

fn hard_nofile() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").expect("limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("nofile");
    line.split_whitespace()
        .nth(4)
        .expect("hard")
        .parse()
        .expect("number")
}

#[test]
fn bad_configs_fail_with_one_line_and_leave_nothing() {
    require_root!();
    let env = Env::new("badcfg", &["true"]);
    let orig = env.config();
    let reset = |c: &mut serde_json::Value, o: &serde_json::Value| *c = o.clone();

    assert_refused(
        &env,
        |c| {
            reset(c, &orig);
            c["process"]["user"]["uid"] = json!("root");
        },
        &["config.json: process.user.uid: invalid type"],
    );
    assert_refused(
        &env,
        |c| {
            reset(c, &orig);
            c["root"]["path"] = json!("no-such-rootfs");
        },
        &["config.json: root.path:", "no-such-rootfs"],
    );
    assert_refused(
        &env,
        |c| {
            reset(c, &orig);
            c["linux"]["namespaces"]
                .as_array_mut()
                .expect("ns")
                .push(json!({"type": "bogus"}));
        },
        &["config.json: linux.namespaces[5].type: unknown variant `bogus`"],
    );
    assert_refused(
        &env,
        |c| {
            reset(c, &orig);
            c["mounts"]
                .as_array_mut()
                .expect("mounts")
                .push(json!({"destination": "relative/dir", "type": "tmpfs", "source": "tmpfs"}));
        },
        &[
            "config.json: mounts[",
            "].destination",
            "not an absolute path",
        ],
    );
    assert_refused(
        &env,
        |c| {
            reset(c, &orig);
            c["mounts"].as_array_mut().expect("mounts").push(json!({"destination": "/data", "type": "bind", "source": "/no/such/source", "options": ["rbind"]}));
        },
        &["config.json: mounts[", "].source", "/no/such/source"],
    );
    let hard = hard_nofile();
    assert_refused(
        &env,
        |c| { reset(c, &orig); c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": hard + 1, "soft": 1024}]); },
        &[&format!("config.json: process.rlimits[0]: RLIMIT_NOFILE hard {} above the current hard limit {hard} (needs CAP_SYS_RESOURCE)", hard + 1)],
    );
    assert_refused(
        &env,
        |c| {
            reset(c, &orig);
            c["linux"]["sysctl"] = json!({"kernel.panic": "1"});
        },
        &[
            "config.json: linux.sysctl.kernel.panic",
            "not in a separate kernel namespace",
        ],
    );
    assert_refused(
        &env,
        |c| {
            reset(c, &orig);
            c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_NOPE"});
        },
        &["config.json: linux.seccomp"],
    );
    // A mount that only fails inside the init (tmpfs with a bad option):
    // the error still comes back as one line and everything is rolled back.
    assert_refused(
        &env,
        |c| {
            reset(c, &orig);
            c["mounts"].as_array_mut().expect("mounts").push(json!({"destination": "/bad", "type": "tmpfs", "source": "tmpfs", "options": ["size=notanumber"]}));
        },
        &["container init:", "/bad"],
    );
    // Not a JSON document at all.
    std::fs::write(env.bundle.join("config.json"), "{ not json").expect("write");
    let id = unique_id("bad");
    let out = env.rt(&["create", "--bundle", env.bundle_str(), &id]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out).lines().count(), 1);
    assert!(!env.root.join(&id).exists());
}

#[test]
fn log_file_gets_the_error_in_json() {
    require_root!();
    let env = Env::new("log", &["true"]);
    env.edit(|c| c["root"]["path"] = json!("missing"));
    let log = env.tmp.join("runtime.log");
    let id = unique_id("log");
    let out = env.rt(&[
        "--log",
        log.to_str().expect("utf8"),
        "--log-format",
        "json",
        "create",
        "--bundle",
        env.bundle_str(),
        &id,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let line = std::fs::read_to_string(&log).expect("log file");
    let v: serde_json::Value = serde_json::from_str(line.trim()).expect("json log line");
    assert_eq!(v["level"], "error");
    assert!(v["msg"].as_str().is_some_and(|m| m.contains("root.path")));
}

/// Makes the runtime inherit `file` as fd `target`, not close-on-exec, the
/// way a careless caller leaks an fd.
fn inherit_as(cmd: &mut std::process::Command, file: &std::fs::File, target: i32) {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: dup/dup2/close between fork and exec on valid fds; going
    // through a fresh dup also clears close-on-exec when fd == target.
    unsafe {
        cmd.pre_exec(move || {
            let tmp = libc::dup(fd);
            if tmp < 0 || libc::dup2(tmp, target) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::close(tmp);
            Ok(())
        });
    }
}

/// CVE-2019-5736 where the container may hold CAP_SYS_PTRACE: a container
/// process holds /proc/<runtime>/exe open and, once the runtime process has
/// exec'd the container's program, tries to write through it. With the
/// capability in the container's bounding set the init is not a fork of the
/// runtime but re-executes it from a read-only detached mount (or a sealed
/// memfd): the write is refused and the host binary is untouched.
#[test]
fn cve_2019_5736_runtime_binary_cannot_be_overwritten() {
    require_root!();
    let before = std::fs::read(BIN).expect("read runtime binary");
    let env = Env::new("cve5736", &["sleep", "3"]);
    // As `docker run --cap-add SYS_PTRACE` would.
    env.edit(|c| {
        let bounding = c["process"]["capabilities"]["bounding"]
            .as_array_mut()
            .expect("bounding set");
        bounding.push(json!("CAP_SYS_PTRACE"));
    });
    let id = unique_id("cve5736");
    let _g = env.create(&id);
    // While the container is created, pid 1 inside is the runtime's init.
    // The attacker gets CAP_SYS_PTRACE so that only the sealed exe (not the
    // non-dumpable flag) stands between it and the binary.
    let attack = "exec 3</proc/1/exe || { echo NOOPEN > /tmp/result; exit 0; }; \
        readlink /proc/self/fd/3 > /tmp/target; \
        while [ \"$(readlink /proc/1/exe)\" = \"$(cat /tmp/target)\" ]; do sleep 0.02; done; \
        for i in $(seq 200); do \
          if echo pwned 2>/tmp/err >> /proc/self/fd/3; then echo WROTE > /tmp/result; exit 0; fi; \
          grep -q 'Text file busy' /tmp/err || break; sleep 0.05; \
        done; \
        { echo DENIED; cat /tmp/err; } > /tmp/result";
    // ETXTBSY only means some runtime process (any, the binary is one
    // inode) still executes it: the attack retries until that is over, as
    // the real exploit waited for runc to exit.
    env.ok(&[
        "exec",
        "-d",
        "--cap",
        "CAP_SYS_PTRACE",
        "--cap",
        "CAP_DAC_OVERRIDE",
        &id,
        "sh",
        "-c",
        attack,
    ]);
    let target = wait_file(&env.rootfs("/tmp/target"), |s| !s.is_empty());
    let host_path = std::fs::canonicalize(BIN).expect("canonical binary path");
    assert_ne!(
        target.trim(),
        host_path.to_string_lossy(),
        "init runs from the host binary's own mount"
    );
    env.ok(&["start", &id]);
    let result = wait_file(&env.rootfs("/tmp/result"), |s| !s.is_empty());
    assert!(result.contains("DENIED"), "attack result: {result:?}");
    // EROFS from the read-only mount, or EPERM from the memfd's write seal;
    // not ETXTBSY, which would only mean "still running". When the sealed
    // memfd is in use the reopen for writing succeeds and only the write
    // fails, which busybox's `echo` reports with a status and no message:
    // DENIED alone. The binary's bytes, checked below, are what matters.
    assert!(
        result.contains("Read-only file system")
            || result.contains("not permitted")
            || result.trim() == "DENIED",
        "attack result: {result:?}"
    );
    assert_eq!(
        std::fs::read(BIN).expect("read runtime binary"),
        before,
        "runtime binary changed"
    );
}

/// CVE-2019-5736 with the default capabilities, where the init is a fork of
/// the runtime: while it waits for `start`, its /proc/<pid>/exe (the host
/// binary) cannot be opened from the container, a process with
/// CAP_SYS_PTRACE may not join it yet, and a container program
/// `#!/proc/self/exe` finds the sealed dmz there, never the runtime: the
/// init's and an exec's attempt both end in the dmz's own usage error.
#[test]
fn cve_2019_5736_forked_init_and_dmz_are_out_of_reach() {
    require_root!();
    let before = std::fs::read(BIN).expect("read runtime binary");
    let env = Env::new("cve5736dmz", &["sleep", "10"]);
    let evil = env.rootfs("/evil");
    std::fs::write(&evil, "#!/proc/self/exe\n").expect("write /evil");
    std::fs::set_permissions(&evil, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod /evil");
    let id = unique_id("cve5736dmz");
    let _g = env.create(&id);

    // 1. The waiting init is out of reach, even for the container's root
    //    with CAP_DAC_OVERRIDE.
    let probe = "if head -c1 /proc/1/exe >/dev/null 2>&1; then echo OPENED; \
        else echo NOOPEN; fi > /tmp/opened";
    env.ok(&["exec", "--cap", "CAP_DAC_OVERRIDE", &id, "sh", "-c", probe]);
    let opened = std::fs::read_to_string(env.rootfs("/tmp/opened")).expect("probe result");
    assert_eq!(
        opened.trim(),
        "NOOPEN",
        "/proc/1/exe of the waiting init opened"
    );

    // 2. CAP_SYS_PTRACE would pass the non-dumpable check: refused until
    //    the init is the container's own program.
    let out = env.rt(&[
        "exec",
        "-d",
        "--cap",
        "CAP_SYS_PTRACE",
        &id,
        "sh",
        "-c",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("CAP_SYS_PTRACE") && stderr(&out).contains("created"),
        "{}",
        stderr(&out)
    );

    // 3. After start, an exec of `#!/proc/self/exe` runs the dmz again
    //    (which stops for lack of arguments), not the runtime (which would
    //    complain about an unknown command).
    env.ok(&["start", &id]);
    let out = env.rt(&["exec", &id, "/evil"]);
    assert_eq!(out.status.code(), Some(127), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("berth-runtime: dmz: usage"),
        "{}",
        stderr(&out)
    );

    // 4. Once a process holds CAP_SYS_PTRACE in the running container, no
    //    later exec forks (they re-execute from the sealed view).
    env.ok(&["exec", "--cap", "CAP_SYS_PTRACE", &id, "sh", "-c", "true"]);
    assert!(env.root.join(&id).join("ptrace-exec").exists());
    env.ok(&["exec", &id, "true"]);

    // 5. The same program as the container's own process: the init's last
    //    exec goes through the dmz too.
    let (code, _, err) = env.run_args(&["/evil"]);
    assert_eq!(code, Some(127), "{err}");
    assert!(err.contains("berth-runtime: dmz: usage"), "{err}");

    assert_eq!(
        std::fs::read(BIN).expect("read runtime binary"),
        before,
        "runtime binary changed"
    );
}

/// CVE-2024-21626: host fds the runtime inherited never reach the
/// container, and a cwd through /proc/self/fd/N cannot land outside the
/// container's root.
#[test]
fn cve_2024_21626_no_leaked_fds_or_host_cwd() {
    require_root!();
    let env = Env::new("cve21626", &["sh", "-c", "ls /proc/self/fd | tr '\\n' ' '"]);
    let host_dir = std::fs::File::open("/sys/fs/cgroup").expect("open host dir");
    let leak = |cmd: &mut std::process::Command| inherit_as(cmd, &host_dir, 7);

    // 1. An inherited, non-close-on-exec host fd is not in the container.
    let id = unique_id("leak");
    let _g = env.guard(&id);
    let mut cmd = env.cmd();
    cmd.args(["run", "--bundle", env.bundle_str(), &id]);
    leak(&mut cmd);
    let out = run_captured(&mut cmd, &env.tmp);
    assert!(out.status.success(), "{}", stderr(&out));
    let fds: Vec<String> = stdout(&out).split_whitespace().map(String::from).collect();
    // 0-2 and the fd `ls` itself opened for the directory.
    assert!(
        fds.len() <= 4 && !fds.contains(&"7".to_string()),
        "leaked fds: {fds:?}"
    );

    // 2. cwd through the leaked fd: the fd is gone before chdir.
    env.edit(|c| {
        c["process"]["cwd"] = json!("/proc/self/fd/7");
        c["process"]["args"] = json!(["sh", "-c", "pwd > /tmp/escaped"]);
    });
    let id = unique_id("cwd");
    let _g2 = env.guard(&id);
    let mut cmd = env.cmd();
    cmd.args(["run", "--bundle", env.bundle_str(), &id]);
    leak(&mut cmd);
    let out = run_captured(&mut cmd, &env.tmp);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stderr(&out).contains("process.cwd"), "{}", stderr(&out));
    assert!(!env.rootfs("/tmp/escaped").exists());

    // `run` with the host dir handed in as fd 3 and preserved.
    let run_with_fd3 = |id: &str| {
        let mut cmd = env.cmd();
        cmd.args([
            "run",
            "--preserve-fds",
            "1",
            "--bundle",
            env.bundle_str(),
            id,
        ]);
        inherit_as(&mut cmd, &host_dir, 3);
        run_captured(&mut cmd, &env.tmp)
    };

    // 3. Even a deliberately preserved host fd cannot become the cwd: the
    //    runtime checks the cwd is inside the root after chdir.
    env.edit(|c| c["process"]["cwd"] = json!("/proc/self/fd/3"));
    let id = unique_id("cwd3");
    let _g3 = env.guard(&id);
    let out = run_with_fd3(&id);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("outside the container root"),
        "{}",
        stderr(&out)
    );
    assert!(!env.rootfs("/tmp/escaped").exists());

    // 4. The preserved fd itself does reach the container (positive control).
    env.edit(|c| {
        c["process"]["cwd"] = json!("/");
        c["process"]["args"] = json!(["sh", "-c", "ls /proc/self/fd | tr '\\n' ' '"]);
    });
    let id = unique_id("keep");
    let _g4 = env.guard(&id);
    let out = run_with_fd3(&id);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).split_whitespace().any(|f| f == "3"),
        "{}",
        stdout(&out)
    );
}
