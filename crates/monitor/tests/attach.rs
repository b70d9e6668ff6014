//! The attach socket: stdin/stdout round trips, stdin_once, a tty through
//! the console socket, detach keys, wait.

mod common;

use std::io::Write;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_monitor::client::{self, AttachOptions, AttachOutcome};
use berth_monitor::protocol::Frame;
use berth_testutil::require_root;
use common::{wait_until, Ct, Rt};
use nix::sys::socket::{
    connect, recv, send, socket, AddressFamily, MsgFlags, SockFlag, SockType, UnixAddr,
};

/// A Write that collects into a shared buffer.
#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<u8>>>);

impl Write for Collect {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Collect {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
    }
}

/// stdin for the client: a pipe whose write end the test holds.
fn stdin_pipe() -> (std::fs::File, std::fs::File) {
    let (r, w) = nix::unistd::pipe().expect("pipe");
    (std::fs::File::from(r), std::fs::File::from(w))
}

fn attach_round_trip(rt: Rt) {
    let mut ct = Ct::new(
        "attach",
        rt,
        &[
            "sh",
            "-c",
            "while read l; do echo \"got $l\"; echo \"err $l\" >&2; done; echo bye",
        ],
    );
    ct.config.open_stdin = true;
    ct.config.stdin_once = true;
    ct.start().expect("start");
    let (input, mut feed) = stdin_pipe();
    let (out, err) = (Collect::default(), Collect::default());
    let (out2, err2, dir) = (out.clone(), err.clone(), ct.state_dir().to_path_buf());
    let client = std::thread::spawn(move || {
        client::attach(
            &dir,
            AttachOptions {
                stdin: Some(Box::new(input)),
                stdout: Box::new(out2),
                stderr: Box::new(err2),
                tty: false,
                detach_keys: None,
                take_cleanup: false,
            },
        )
    });
    feed.write_all(b"one\n").expect("feed");
    wait_until("first echo", || out.text().contains("got one\n"));
    feed.write_all(b"two\n").expect("feed");
    wait_until("second echo", || out.text().contains("got two\n"));
    // EOF of the client's input closes the container's stdin (stdin_once).
    drop(feed);
    let outcome = client.join().expect("client thread").expect("attach");
    assert_eq!(outcome, AttachOutcome::Exited(0));
    assert_eq!(out.text(), "got one\ngot two\nbye\n");
    assert_eq!(err.text(), "err one\nerr two\n");
    let logs = ct.logs();
    assert!(
        logs.contains(&("stdout".into(), "got two\n".into())),
        "{logs:?}"
    );
    assert!(
        logs.contains(&("stderr".into(), "err one\n".into())),
        "{logs:?}"
    );
}

#[test]
fn attach_stdin_stdout_round_trip_berth_runtime() {
    require_root!();
    attach_round_trip(Rt::Berth);
}

#[test]
fn attach_stdin_stdout_round_trip_runc() {
    require_root!();
    attach_round_trip(Rt::Runc);
}

#[test]
fn detach_keys_leave_the_container_running() {
    require_root!();
    let mut ct = Ct::new(
        "detach",
        Rt::Berth,
        &["sh", "-c", "while read l; do echo \"got $l\"; done"],
    );
    ct.config.open_stdin = true;
    ct.start().expect("start");
    let (input, mut feed) = stdin_pipe();
    let out = Collect::default();
    let (out2, dir) = (out.clone(), ct.state_dir().to_path_buf());
    let client = std::thread::spawn(move || {
        client::attach(
            &dir,
            AttachOptions {
                stdin: Some(Box::new(input)),
                stdout: Box::new(out2),
                stderr: Box::new(std::io::sink()),
                tty: false,
                detach_keys: None,
                take_cleanup: false,
            },
        )
    });
    // A ctrl-p that is not followed by ctrl-q is passed on.
    feed.write_all(b"a\x10b\n").expect("feed");
    wait_until("echo", || out.text().contains("got a\x10b\n"));
    feed.write_all(b"\x10\x11").expect("feed");
    assert_eq!(
        client.join().expect("thread").expect("attach"),
        AttachOutcome::Detached
    );
    // Still running, and a second client can attach.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(ct.state().status, berth_monitor::files::Status::Running);
    ct.kill("KILL");
    assert_eq!(ct.wait(), 137);
}

fn raw_connect(ct: &Ct) -> std::os::fd::OwnedFd {
    let fd = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .expect("socket");
    let addr = UnixAddr::new(&ct.state_dir().join("attach")).expect("addr");
    connect(fd.as_raw_fd(), &addr).expect("connect");
    fd
}

#[test]
fn tty_through_the_console_socket_with_resize_berth_runtime() {
    require_root!();
    tty_with_resize(Rt::Berth);
}

#[test]
fn tty_through_the_console_socket_with_resize_runc() {
    require_root!();
    tty_with_resize(Rt::Runc);
}

fn tty_with_resize(rt: Rt) {
    let mut ct = Ct::new(
        "tty",
        rt,
        &[
            "sh",
            "-c",
            "read l; stty size; tty; echo \"got $l\"; exit 4",
        ],
    );
    ct.edit(|c| c["process"]["terminal"] = serde_json::Value::Bool(true));
    ct.config.tty = true;
    ct.config.open_stdin = true;
    ct.config.wait_for_attach = true;
    // The container waits for a client; connect before reading the report.
    let spawned = ct.spawn();
    let sock = raw_connect(&ct);
    spawned.wait_ready().expect("ready");
    let sendf = |f: Frame<'_>| {
        send(sock.as_raw_fd(), &f.encode(), MsgFlags::empty()).expect("send");
    };
    sendf(Frame::AttachStdin);
    sendf(Frame::Resize {
        rows: 33,
        cols: 101,
    });
    std::thread::sleep(Duration::from_millis(100));
    sendf(Frame::Stdin(b"hello\n"));
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65536];
    let code = loop {
        let n = recv(sock.as_raw_fd(), &mut buf, MsgFlags::empty()).expect("recv");
        assert!(
            n > 0,
            "closed without an exit frame; got {:?}",
            String::from_utf8_lossy(&out)
        );
        match Frame::decode(&buf[..n]) {
            Some(Frame::Stdout(d)) => out.extend_from_slice(d),
            Some(Frame::Stderr(d)) => panic!("tty output on stderr: {d:?}"),
            Some(Frame::Exit(code)) => break code,
            _ => {}
        }
    };
    assert_eq!(code, 4);
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("33 101"), "{text:?}");
    assert!(text.contains("/dev/pts/"), "{text:?}");
    // The pty turns \n into \r\n; the echo of the input comes first.
    assert!(text.contains("got hello\r\n"), "{text:?}");
    let logs = ct.logs();
    assert!(logs.iter().all(|(s, _)| s == "stdout"));
    assert!(
        logs.iter().any(|(_, l)| l.contains("got hello")),
        "{logs:?}"
    );
}

#[test]
fn wait_works_before_and_after_the_monitor_exits() {
    require_root!();
    let ct = Ct::new(
        "wait",
        Rt::Berth,
        &["sh", "-c", "sleep 0.5; echo out; exit 9"],
    );
    ct.start().expect("start");
    // A client that asked for no output gets just the exit frame.
    let muted = raw_connect(&ct);
    send(
        muted.as_raw_fd(),
        &Frame::NoOutput.encode(),
        MsgFlags::empty(),
    )
    .expect("send");
    assert_eq!(ct.wait(), 9);
    let mut buf = vec![0u8; 65536];
    let n = recv(muted.as_raw_fd(), &mut buf, MsgFlags::empty()).expect("recv");
    assert_eq!(Frame::decode(&buf[..n]), Some(Frame::Exit(9)));
    wait_until("monitor gone", || {
        !berth_monitor::files::monitor_alive(ct.state_dir())
    });
    assert_eq!(ct.wait(), 9);
    // attach after the end reports the exit too.
    let outcome = client::attach(
        ct.state_dir(),
        AttachOptions {
            stdin: None,
            stdout: Box::new(std::io::sink()),
            stderr: Box::new(std::io::sink()),
            tty: false,
            detach_keys: None,
            take_cleanup: false,
        },
    )
    .expect("attach");
    assert_eq!(outcome, AttachOutcome::Exited(9));
}

#[test]
fn a_slow_client_does_not_block_the_container() {
    require_root!();
    // 8 MiB of output against a client that reads nothing meanwhile.
    let mut ct = Ct::new(
        "slow",
        Rt::Berth,
        &[
            "sh",
            "-c",
            "sleep 0.3; head -c 8388608 /dev/zero | tr '\\0' x; echo; echo done",
        ],
    );
    ct.config.log.max_size = Some(1024 * 1024);
    ct.config.log.max_file = 2;
    ct.config.wait_for_attach = true;
    let spawned = ct.spawn();
    let sock = raw_connect(&ct);
    spawned.wait_ready().expect("ready");
    // The container gets all its output out although the client is stuck.
    wait_until("all output logged", || {
        ct.logs().last().is_some_and(|(_, l)| l == "done\n")
    });
    // Now the client reads: it lost data in between, and gets its exit frame.
    let mut buf = vec![0u8; 65536];
    let mut received = 0usize;
    let code = loop {
        let n = recv(sock.as_raw_fd(), &mut buf, MsgFlags::empty()).expect("recv");
        assert!(n > 0, "closed without an exit frame");
        match Frame::decode(&buf[..n]) {
            Some(Frame::Stdout(d)) => received += d.len(),
            Some(Frame::Exit(code)) => break code,
            _ => {}
        }
    };
    assert_eq!(code, 0);
    assert!(
        received < 8 * 1024 * 1024,
        "nothing was dropped ({received} bytes)"
    );
    assert_eq!(ct.wait(), 0);
}

#[test]
fn stdin_once_closes_stdin_when_the_stdin_client_leaves() {
    require_root!();
    let mut ct = Ct::new(
        "once",
        Rt::Berth,
        &[
            "sh",
            "-c",
            "while read l; do echo \"got $l\"; done; echo stdin closed",
        ],
    );
    ct.config.open_stdin = true;
    ct.config.stdin_once = true;
    ct.start().expect("start");
    // An output-only client leaving changes nothing.
    drop(raw_connect(&ct));
    let sock = raw_connect(&ct);
    send(
        sock.as_raw_fd(),
        &Frame::AttachStdin.encode(),
        MsgFlags::empty(),
    )
    .expect("send");
    send(
        sock.as_raw_fd(),
        &Frame::Stdin(b"x\n").encode(),
        MsgFlags::empty(),
    )
    .expect("send");
    wait_until("echo", || ct.logs().iter().any(|(_, l)| l == "got x\n"));
    assert_eq!(ct.state().status, berth_monitor::files::Status::Running);
    // The stdin client goes away without close-stdin: stdin closes anyway.
    drop(sock);
    assert_eq!(ct.wait(), 0);
    assert!(ct.logs().iter().any(|(_, l)| l == "stdin closed\n"));
}

/// The CLI side with a real terminal: fd 0 of this test process (nextest
/// runs each test in its own) becomes a pty slave; its size is sent on
/// attach and again on SIGWINCH.
#[test]
fn attach_forwards_the_terminal_size_on_sigwinch() {
    require_root!();
    let mut ct = Ct::new(
        "winch",
        Rt::Berth,
        &["sh", "-c", "read a; stty size; read b; stty size"],
    );
    ct.edit(|c| c["process"]["terminal"] = serde_json::Value::Bool(true));
    ct.config.tty = true;
    ct.config.open_stdin = true;
    ct.start().expect("start");
    let size = |rows, cols| nix::pty::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(&size(24, 80), None).expect("openpty");
    // SAFETY: dup2 onto fd 0 of this single-test process.
    assert!(unsafe { libc::dup2(pty.slave.as_raw_fd(), 0) } == 0);
    let input = std::fs::File::from(pty.slave.try_clone().expect("dup"));
    let out = Collect::default();
    let (out2, dir) = (out.clone(), ct.state_dir().to_path_buf());
    let client = std::thread::spawn(move || {
        client::attach(
            &dir,
            AttachOptions {
                stdin: Some(Box::new(input)),
                stdout: Box::new(out2),
                stderr: Box::new(std::io::sink()),
                tty: true,
                detach_keys: None,
                take_cleanup: false,
            },
        )
    });
    let mut master = std::fs::File::from(pty.master);
    std::thread::sleep(Duration::from_millis(300));
    master.write_all(b"a\r").expect("type");
    wait_until("first size", || out.text().contains("24 80"));
    let ws = size(30, 100);
    // SAFETY: TIOCSWINSZ reads the winsize for the duration of the call.
    assert!(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) } == 0);
    // This process has no controlling terminal, so the kernel does not
    // signal it: raise SIGWINCH like a terminal would.
    nix::sys::signal::raise(nix::sys::signal::Signal::SIGWINCH).expect("raise");
    std::thread::sleep(Duration::from_millis(300));
    master.write_all(b"b\r").expect("type");
    let outcome = client.join().expect("client").expect("attach");
    assert_eq!(outcome, AttachOutcome::Exited(0));
    assert!(out.text().contains("30 100"), "{:?}", out.text());
}
