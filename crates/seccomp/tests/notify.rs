//! SCMP_ACT_NOTIFY and the OCI listenerPath hand-over, with a real agent
//! thread answering the kernel's notifications.

mod common;

use std::io::{self, IoSliceMut, Read};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::Arc;

use berth_seccomp::send_to_listener;
use berth_testutil::{require_root, TempDir, BUSYBOX};
use common::{load_errno, program, stderr};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use serde_json::{json, Value};

/// What the seccomp agent in [`notify_rule_is_answered_by_the_agent_at_listener_path`] saw.
struct AgentReport {
    process_state: Value,
    syscall: String,
}

/// Receives one fd and its message from a connection on `listener`.
fn receive_fd(listener: &UnixListener) -> (OwnedFd, Vec<u8>) {
    let (mut stream, _) = listener.accept().expect("accept");
    let mut buf = vec![0u8; 64 * 1024];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let (received, fd) = {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .expect("recvmsg");
        let mut fd = None;
        for cmsg in msg.cmsgs().expect("cmsgs") {
            if let ControlMessageOwned::ScmRights(fds) = cmsg {
                assert_eq!(fds.len(), 1, "one fd per message");
                // SAFETY: SCM_RIGHTS installed this fd in our table; we own it now.
                fd = Some(unsafe { OwnedFd::from_raw_fd(fds[0]) });
            }
        }
        (msg.bytes, fd.expect("an SCM_RIGHTS fd"))
    };
    buf.truncate(received);
    stream
        .read_to_end(&mut buf)
        .expect("read the rest of the state");
    (fd, buf)
}

#[test]
fn notify_rule_is_answered_by_the_agent_at_listener_path() {
    require_root!();
    let dir = TempDir::new("seccomp-notify").expect("tempdir");
    let socket = dir.join("agent.sock");
    let listener = UnixListener::bind(&socket).expect("bind the agent socket");
    let agent = std::thread::spawn(move || {
        let (notify_fd, message) = receive_fd(&listener);
        let process_state: Value = serde_json::from_slice(&message).expect("state is JSON");
        let request = libseccomp::ScmpNotifReq::receive(notify_fd.as_raw_fd())
            .expect("SECCOMP_IOCTL_NOTIF_RECV");
        let syscall = request.data.syscall.get_name().expect("syscall name");
        libseccomp::ScmpNotifResp::new_error(
            request.id,
            -libc::EDQUOT,
            libseccomp::ScmpNotifRespFlags::empty(),
        )
        .respond(notify_fd.as_raw_fd())
        .expect("SECCOMP_IOCTL_NOTIF_SEND");
        AgentReport {
            process_state,
            syscall,
        }
    });

    let filtered = program(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "listenerPath": socket,
        "listenerMetadata": "MKDIR=deny",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    }));
    assert!(filtered.uses_notify());
    let state = br#"{"ociVersion":"1.2.1","id":"berth-seccomp-test","status":"creating","pid":4242,"bundle":"/nonexistent"}"#;
    let target = dir.join("made-by-agent");
    let mut command = Command::new(BUSYBOX);
    command.args(["mkdir", target.to_str().expect("utf-8")]);
    let hook_socket = socket.clone();
    let hook_program = Arc::clone(&filtered);
    // SAFETY: the hook runs in the single-threaded child; send_to_listener
    // allocates, which glibc's fork handlers make safe, and this is a test.
    unsafe {
        command.pre_exec(move || {
            let fd = hook_program
                .load()
                .map_err(|e| load_errno(&e))?
                .ok_or_else(|| io::Error::from_raw_os_error(libc::EBADF))?;
            send_to_listener(&hook_socket, fd.as_fd(), state, "MKDIR=deny")
                .map_err(|_| io::Error::from_raw_os_error(libc::EPIPE))
        });
    }
    let out = command.output().expect("spawn");
    let report = agent.join().expect("agent thread");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Disk quota exceeded"),
        "the agent's answer did not arrive: {}",
        stderr(&out)
    );
    assert!(!target.exists());
    assert!(report.syscall.starts_with("mkdir"), "{}", report.syscall);
    assert_eq!(report.process_state["fds"], json!(["seccompFd"]));
    assert_eq!(report.process_state["pid"], json!(4242));
    assert_eq!(report.process_state["metadata"], json!("MKDIR=deny"));
    assert_eq!(report.process_state["ociVersion"], json!("1.2.1"));
    assert_eq!(
        report.process_state["state"]["id"],
        json!("berth-seccomp-test")
    );
}

#[test]
fn send_to_listener_passes_a_working_fd() {
    // No seccomp involved: any fd must arrive usable, here a pipe's write end.
    let dir = TempDir::new("seccomp-listener").expect("tempdir");
    let socket = dir.join("agent.sock");
    let listener = UnixListener::bind(&socket).expect("bind");
    let agent = std::thread::spawn(move || receive_fd(&listener));
    let (mut read_end, write_end) = std::io::pipe().expect("pipe");
    let state = br#"{"ociVersion":"1.2.1","id":"c1","status":"created","pid":1,"bundle":"/b"}"#;
    send_to_listener(&socket, write_end.as_fd(), state, "").expect("send");
    drop(write_end);
    let (received, message) = agent.join().expect("agent");
    let process_state: Value = serde_json::from_slice(&message).expect("JSON");
    assert!(
        process_state.get("metadata").is_none(),
        "empty metadata is left out: {process_state}"
    );
    let mut pipe_writer = std::fs::File::from(received);
    std::io::Write::write_all(&mut pipe_writer, b"through the socket")
        .expect("write via received fd");
    drop(pipe_writer);
    let mut text = String::new();
    read_end.read_to_string(&mut text).expect("read");
    assert_eq!(text, "through the socket");
}

#[test]
fn send_to_listener_errors_name_the_socket() {
    let dir = TempDir::new("seccomp-listener-err").expect("tempdir");
    let (_, write_end) = std::io::pipe().expect("pipe");
    let state = br#"{"ociVersion":"1.2.1","id":"c1","status":"created","pid":1,"bundle":"/b"}"#;
    let missing = dir.join("nobody-listens.sock");
    let err = send_to_listener(&missing, write_end.as_fd(), state, "").expect_err("no agent");
    assert_eq!(
        err.to_string(),
        format!("seccomp: listener {}: connecting failed", missing.display())
    );
    let err =
        send_to_listener(&missing, write_end.as_fd(), b"{not json", "").expect_err("bad state");
    assert!(
        err.to_string().contains("is not valid OCI state JSON"),
        "{err}"
    );
}
