//! Hooks, console sockets and exec into running containers.

mod common;

use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use berth_testutil::require_root;
use common::*;
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use serde_json::json;

fn hook(cmd: &str) -> serde_json::Value {
    json!({"path": "/bin/sh", "args": ["sh", "-c", cmd]})
}

#[test]
fn hooks_get_the_state_on_stdin_at_each_step() {
    require_root!();
    let env = Env::new("hooks", &["sh", "-c", "echo main > /tmp/main"]);
    let out = env.tmp.join("hooks");
    std::fs::create_dir(&out).expect("mkdir");
    let o = out.display().to_string();
    env.edit(|c| {
        c["hooks"] = json!({
            "prestart": [hook(&format!("cat > {o}/prestart.json"))],
            "createRuntime": [hook(&format!("cat > {o}/createRuntime.json"))],
            // Runs in the container's mount namespace before pivot: the
            // host path is still reachable.
            "createContainer": [hook(&format!("cat > {o}/createContainer.json"))],
            // Runs after pivot: the container's /bin/sh and /tmp.
            "startContainer": [hook("cat > /tmp/startContainer.json")],
            "poststart": [hook(&format!("cat > {o}/poststart.json"))],
            "poststop": [hook(&format!("cat > {o}/poststop.json"))],
        });
    });
    let id = unique_id("hooks");
    let _g = env.create(&id);
    let pid = env.state(&id)["pid"].as_i64().expect("pid");
    for name in ["prestart", "createRuntime", "createContainer"] {
        let s: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(out.join(format!("{name}.json"))).expect(name),
        )
        .expect("json");
        assert_eq!(s["id"], id.as_str(), "{name}");
        assert_eq!(s["pid"].as_i64(), Some(pid), "{name}");
        assert_eq!(s["status"], "creating", "{name}");
        assert_eq!(s["bundle"], env.bundle_str(), "{name}");
    }
    assert!(!out.join("poststart.json").exists());
    env.ok(&["start", &id]);
    let s: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("poststart.json")).expect("poststart"),
    )
    .expect("json");
    assert_eq!(s["status"], "running");
    let s = wait_file(&env.rootfs("/tmp/startContainer.json"), |s| {
        s.ends_with('}')
    });
    assert!(s.contains(&id));
    env.wait_status(&id, "stopped");
    env.ok(&["delete", &id]);
    let s: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("poststop.json")).expect("poststop"),
    )
    .expect("json");
    assert_eq!(s["status"], "stopped");
}

#[test]
fn failing_and_slow_hooks_abort_create_cleanly() {
    require_root!();
    let env = Env::new("hookfail", &["true"]);
    env.edit(|c| c["hooks"] = json!({"createRuntime": [hook("echo broken >&2; exit 3")]}));
    let id = unique_id("hookfail");
    let _g = env.guard(&id);
    let out = env.rt(&["create", "--bundle", env.bundle_str(), &id]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("createRuntime hook #0") && err.contains("broken"),
        "{err}"
    );
    assert!(!env.root.join(&id).exists());
    assert!(cgroup_leftovers(&id).is_empty());

    env.edit(|c| {
        c["hooks"] =
            json!({"prestart": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]})
    });
    let started = Instant::now();
    let out = env.rt(&["create", "--bundle", env.bundle_str(), &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(stderr(&out).contains("timed out"), "{}", stderr(&out));
    assert!(!env.root.join(&id).exists());
    assert!(cgroup_leftovers(&id).is_empty());
}

/// Accepts one connection on `listener` and receives the fd sent over it.
fn receive_fd(listener: &UnixListener) -> OwnedFd {
    listener.set_nonblocking(false).expect("blocking");
    let (conn, _) = listener.accept().expect("accept");
    let mut buf = [0u8; 256];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .expect("recvmsg");
    for c in msg.cmsgs().expect("cmsgs") {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the kernel installed this fd for us.
            return unsafe { OwnedFd::from_raw_fd(fds[0]) };
        }
    }
    panic!("no fd received on the console socket");
}

/// Reads from the pty master until `needle` shows up.
fn read_until(master: OwnedFd, needle: &str) -> String {
    let mut f = std::fs::File::from(master);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut all = String::new();
    let mut buf = [0u8; 1024];
    while !all.contains(needle) {
        assert!(Instant::now() < deadline, "pty output so far: {all:?}");
        match f.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => all.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
    all
}

#[test]
fn console_socket_receives_the_pty_master() {
    require_root!();
    let env = Env::new(
        "console",
        &[
            "sh",
            "-c",
            "stty size; [ -t 0 ] && echo is-a-tty; echo done",
        ],
    );
    env.edit(|c| {
        c["process"]["terminal"] = json!(true);
        c["process"]["consoleSize"] = json!({"height": 33, "width": 101});
    });
    let sock = env.tmp.join("console.sock");
    let listener = UnixListener::bind(&sock).expect("bind");
    let id = unique_id("console");
    let _g = env.guard(&id);
    // Without --console-socket a terminal is refused up front.
    let out = env.rt(&["create", "--bundle", env.bundle_str(), &id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--console-socket"));
    assert!(!env.root.join(&id).exists());

    let sock_s = sock.display().to_string();
    let bundle = env.bundle_str().to_string();
    let root = env.root.clone();
    let id2 = id.clone();
    let creator = std::thread::spawn(move || {
        std::process::Command::new(BIN)
            .arg("--root")
            .arg(root)
            .args([
                "create",
                "--console-socket",
                &sock_s,
                "--bundle",
                &bundle,
                &id2,
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .output()
            .expect("create")
    });
    let master = receive_fd(&listener);
    let out = creator.join().expect("create thread");
    assert!(out.status.success(), "{}", stderr(&out));
    env.ok(&["start", &id]);
    let text = read_until(master, "done");
    assert!(text.contains("33 101"), "{text:?}");
    assert!(text.contains("is-a-tty"), "{text:?}");
}

#[test]
fn exec_into_a_running_container() {
    require_root!();
    let env = Env::new("exec", &["sleep", "100"]);
    std::fs::create_dir_all(env.rootfs("/work")).expect("mkdir");
    let id = unique_id("exec");
    let _g = env.create(&id);
    env.ok(&["start", &id]);
    let init_ns =
        std::fs::read_link(format!("/proc/{}/ns/pid", env.state(&id)["pid"])).expect("ns");

    let out = env.rt(&[
        "exec",
        &id,
        "sh",
        "-c",
        "hostname; readlink /proc/self/ns/pid; echo $FOO; pwd; id -u",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "berth-test");
    assert_eq!(lines[1], init_ns.to_string_lossy());
    assert_eq!(lines[2], "");
    assert_eq!(lines[3], "/");
    assert_eq!(lines[4], "0");

    let out = env.rt(&[
        "exec",
        "-e",
        "FOO=bar",
        "--cwd",
        "/work",
        "-u",
        "1000:1000",
        &id,
        "sh",
        "-c",
        "echo $FOO; pwd; id -u; id -g",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).lines().collect::<Vec<_>>(),
        ["bar", "/work", "1000", "1000"]
    );

    // Exit codes come back like runc's.
    let out = env.rt(&["exec", &id, "sh", "-c", "exit 5"]);
    assert_eq!(out.status.code(), Some(5));
    let out = env.rt(&["exec", &id, "nonexistent-binary"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("executable file not found"),
        "{}",
        stderr(&out)
    );

    // --process file and -d with a pid file.
    let pf = env.tmp.join("process.json");
    let mut p = env.config()["process"].clone();
    p["args"] = json!(["sh", "-c", "echo from-process-json > /tmp/pj; sleep 100"]);
    std::fs::write(&pf, p.to_string()).expect("write process.json");
    let pidfile = env.tmp.join("exec.pid");
    env.ok(&[
        "exec",
        "-d",
        "--pid-file",
        pidfile.to_str().expect("utf8"),
        "--process",
        pf.to_str().expect("utf8"),
        &id,
    ]);
    wait_file(&env.rootfs("/tmp/pj"), |s| s.contains("from-process-json"));
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .expect("pid")
        .trim()
        .parse()
        .expect("pid");
    let ps: Vec<i32> = serde_json::from_str(&env.ok(&["ps", "--format", "json", &id])).expect("ps");
    assert!(
        ps.contains(&pid),
        "exec'd pid {pid} not in the container's cgroup {ps:?}"
    );
    let table = env.ok(&["ps", &id]);
    assert!(table.lines().next().is_some_and(|h| h.contains("PID")));
    assert!(table.contains("sleep 100"), "{table}");
}

#[test]
fn exec_with_a_terminal() {
    require_root!();
    let env = Env::new("exectty", &["sleep", "100"]);
    let id = unique_id("exectty");
    let _g = env.create(&id);
    env.ok(&["start", &id]);
    let sock = env.tmp.join("exec-console.sock");
    let listener = UnixListener::bind(&sock).expect("bind");
    let mut child = env
        .cmd()
        .args([
            "exec",
            "-t",
            "--console-socket",
            sock.to_str().expect("utf8"),
            &id,
            "sh",
            "-c",
            "[ -t 1 ] && echo tty-ok; read line; echo got-$line",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("exec");
    let master = receive_fd(&listener);
    let mut writer = std::fs::File::from(master.try_clone().expect("dup"));
    writer.write_all(b"ping\n").expect("write to pty");
    let text = read_until(master, "got-ping");
    assert!(text.contains("tty-ok"), "{text:?}");
    let status = child.wait().expect("wait exec");
    assert!(status.success());
}

#[test]
fn exec_tty_in_the_foreground_is_relayed() {
    require_root!();
    let env = Env::new("exectty2", &["sleep", "100"]);
    let id = unique_id("exectty2");
    let _g = env.create(&id);
    env.ok(&["start", &id]);
    let mut child = env
        .cmd()
        .args(["exec", "-t", &id, "sh"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("exec");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"[ -t 0 ] && echo relayed-tty\nexit 6\n")
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(stdout(&out).contains("relayed-tty"), "{}", stdout(&out));
}
