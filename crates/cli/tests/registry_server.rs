//! `berth registry serve` against real peers: skopeo and podman push to it
//! and pull from it, plain, with htpasswd basic auth and over TLS.
//!
//! podman runs on private storage (vfs under a temp dir) so the tests touch
//! nothing of the host's. A test whose peer is missing says SKIPPED and returns.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth_testutil::TempDir;
use common::{busybox_tar, docker_archive, stderr, stdout, Layout, TestImage};
use sha2::{Digest as _, Sha256};

/// A `berth registry serve` process, stopped with SIGTERM when dropped.
struct Served {
    child: Child,
    addr: String,
    log: Arc<Mutex<String>>,
}

impl Served {
    fn start(root: &Path, extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(["registry", "serve", "--addr", "127.0.0.1:0", "--root"])
            .arg(root)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn berth registry serve");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        let addr = first
            .split("://")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_else(|| panic!("no listening line, got {first:?}"))
            .to_string();
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for l in lines.map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&l);
                s.push('\n');
            }
        });
        Self { child, addr, log }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Stops the server as a user would (SIGTERM) and returns its status.
    fn stop(&mut self) -> std::process::ExitStatus {
        // SAFETY: kill(2) on our own child's pid, which has not been reaped yet.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.child.wait().expect("wait registry")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

/// GET over plain HTTP (no client library needed for one request).
fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn peer_ready(tool: &str) -> bool {
    if !common::have(tool) {
        eprintln!("SKIPPED: {tool} is not installed (run /work/shared/peers/setup-peers.sh)");
        return false;
    }
    true
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn peer");
    assert!(out.status.success(), "{cmd:?} failed: {}", stderr(&out));
    stdout(&out)
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// A busybox docker-archive, and the diff ID of its one layer.
fn busybox_archive(dir: &TempDir) -> (PathBuf, String) {
    let layer = std::fs::read(busybox_tar(dir)).expect("busybox tar");
    let diff_id = format!("sha256:{}", sha256_hex(&layer));
    let path = dir.join("busybox-archive.tar");
    docker_archive(
        &path,
        &[TestImage::new(vec![layer], "busybox:latest")],
        Layout::Blobs,
    );
    (path, diff_id)
}

/// Checks an OCI layout that skopeo pulled: one image whose layer
/// uncompresses to the bytes we pushed.
fn check_oci_layout(dir: &Path, diff_id: &str) {
    let blob = |d: &str| {
        std::fs::read(
            dir.join("blobs/sha256")
                .join(d.trim_start_matches("sha256:")),
        )
        .unwrap()
    };
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let mdigest = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&blob(mdigest)).unwrap();
    let config: serde_json::Value =
        serde_json::from_slice(&blob(manifest["config"]["digest"].as_str().unwrap())).unwrap();
    assert_eq!(config["rootfs"]["diff_ids"][0], diff_id);
    let layer = blob(manifest["layers"][0]["digest"].as_str().unwrap());
    let raw = if layer.starts_with(&[0x1f, 0x8b]) {
        let mut v = Vec::new();
        flate2::read::GzDecoder::new(&layer[..])
            .read_to_end(&mut v)
            .unwrap();
        v
    } else {
        layer
    };
    assert_eq!(format!("sha256:{}", sha256_hex(&raw)), diff_id);
}

#[test]
fn skopeo_copies_to_and_from_berth_registry() {
    if !peer_ready("skopeo") {
        return;
    }
    let dir = TempDir::new(&format!("regsrv-skopeo-{}", std::process::id())).unwrap();
    let (archive, diff_id) = busybox_archive(&dir);
    let mut served = Served::start(&dir.join("registry"), &[]);
    let dest = format!("docker://{}/library/busybox:1.36", served.addr);
    run(Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false"])
        .arg(format!("docker-archive:{}", archive.display()))
        .arg(&dest));
    // Again: every blob is there already, and skopeo asks before it uploads.
    run(Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false"])
        .arg(format!("docker-archive:{}", archive.display()))
        .arg(format!("docker://{}/other/busybox:copy", served.addr)));

    let (status, body) = http_get(&served.addr, "/v2/_catalog");
    assert_eq!(status, 200);
    let catalog: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        catalog["repositories"],
        serde_json::json!(["library/busybox", "other/busybox"])
    );
    let tags = run(Command::new("skopeo")
        .args(["list-tags", "--tls-verify=false"])
        .arg(dest.trim_end_matches(":1.36")));
    assert!(tags.contains("\"1.36\""), "{tags}");

    let out = dir.join("pulled");
    run(Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(&dest)
        .arg(format!("oci:{}:latest", out.display())));
    check_oci_layout(&out, &diff_id);

    let log = served.log();
    assert!(
        log.contains("\"PUT /v2/library/busybox/manifests/1.36 HTTP/1.1\" 201"),
        "{log}"
    );
    assert!(
        log.contains("\"HEAD /v2/other/busybox/blobs/sha256:"),
        "{log}"
    );
    assert!(served.stop().success(), "SIGTERM stops the server cleanly");
}

/// A short-named private directory for podman (it refuses a runroot path
/// longer than 50 characters).
fn podman_dir() -> TempDir {
    TempDir::new("p").expect("podman temp dir")
}

/// podman with storage of its own under `dir`.
fn podman(dir: &Path) -> Command {
    let mut c = Command::new("podman");
    c.arg("--root")
        .arg(dir.join("storage"))
        .arg("--runroot")
        .arg(dir.join("run"))
        .arg("--tmpdir")
        .arg(dir.join("tmp"))
        .args(["--storage-driver", "vfs", "--events-backend", "none"]);
    c
}

fn podman_works(dir: &Path) -> bool {
    if !peer_ready("podman") {
        return false;
    }
    let out = podman(dir).args(["images"]).output();
    match out {
        Ok(o) if o.status.success() => true,
        Ok(o) => {
            eprintln!("SKIPPED: podman cannot run here: {}", stderr(&o));
            false
        }
        Err(e) => {
            eprintln!("SKIPPED: podman cannot run here: {e}");
            false
        }
    }
}

#[test]
fn podman_pushes_to_and_pulls_from_berth_registry() {
    let dir = TempDir::new(&format!("regsrv-podman-{}", std::process::id())).unwrap();
    let (pusher_dir, puller_dir) = (podman_dir(), podman_dir());
    let (pusher, puller) = (pusher_dir.path(), puller_dir.path());
    if !podman_works(pusher) {
        return;
    }
    let (archive, diff_id) = busybox_archive(&dir);
    let served = Served::start(&dir.join("registry"), &[]);
    let image = format!("{}/podman/busybox:v1", served.addr);
    run(podman(pusher)
        .arg("pull")
        .arg(format!("docker-archive:{}", archive.display())));
    run(podman(pusher).args(["tag", "busybox:latest", &image]));
    run(podman(pusher).args(["push", "--tls-verify=false", &image]));

    run(podman(puller).args(["pull", "--tls-verify=false", &image]));
    let layers = run(podman(puller).args([
        "image",
        "inspect",
        "--format",
        "{{json .RootFS.Layers}}",
        &image,
    ]));
    assert_eq!(layers.trim(), format!("[\"{diff_id}\"]"));
    let hello = run(podman(puller).args([
        "run",
        "--rm",
        "--network",
        "none",
        &image,
        "echo",
        "hello from berth's registry",
    ]));
    assert_eq!(hello.trim(), "hello from berth's registry");

    // What skopeo pushed, podman pulls, and the other way round.
    if peer_ready("skopeo") {
        let from_skopeo = format!("{}/from/skopeo:1", served.addr);
        run(Command::new("skopeo")
            .args(["copy", "--dest-tls-verify=false"])
            .arg(format!("docker-archive:{}", archive.display()))
            .arg(format!("docker://{from_skopeo}")));
        run(podman(puller).args(["pull", "--tls-verify=false", &from_skopeo]));
        let out = dir.join("from-podman");
        run(Command::new("skopeo")
            .args(["copy", "--src-tls-verify=false"])
            .arg(format!("docker://{image}"))
            .arg(format!("oci:{}:latest", out.display())));
        check_oci_layout(&out, &diff_id);
    }
}

#[test]
fn peers_authenticate_with_htpasswd() {
    if !peer_ready("skopeo") {
        return;
    }
    let dir = TempDir::new(&format!("regsrv-auth-{}", std::process::id())).unwrap();
    let (archive, _) = busybox_archive(&dir);
    let hash = bcrypt::hash("s3cret", 5)
        .unwrap()
        .replacen("$2b$", "$2y$", 1);
    let htpasswd = dir.join("htpasswd");
    std::fs::write(&htpasswd, format!("alice:{hash}\n")).unwrap();
    let served = Served::start(
        &dir.join("registry"),
        &["--htpasswd", htpasswd.to_str().unwrap()],
    );
    let dest = format!("docker://{}/private/busybox:1", served.addr);
    let src = format!("docker-archive:{}", archive.display());

    let out = Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false", &src, &dest])
        .output()
        .unwrap();
    assert!(!out.status.success(), "push without credentials must fail");
    assert!(
        stderr(&out).contains("authentication required") || stderr(&out).contains("unauthorized"),
        "{}",
        stderr(&out)
    );
    let out = Command::new("skopeo")
        .args([
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            "alice:wrong",
            &src,
            &dest,
        ])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "push with a wrong password must fail"
    );
    run(Command::new("skopeo").args([
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        "alice:s3cret",
        &src,
        &dest,
    ]));
    let pulled = dir.join("pulled");
    run(Command::new("skopeo")
        .args([
            "copy",
            "--src-tls-verify=false",
            "--src-creds",
            "alice:s3cret",
            &dest,
        ])
        .arg(format!("oci:{}:x", pulled.display())));
    assert!(served
        .log()
        .contains("\"PUT /v2/private/busybox/manifests/1 HTTP/1.1\" 201"));
    assert!(
        served.log().contains(" - alice ["),
        "the log names the user"
    );

    let podman_tmp = podman_dir();
    let podman_dir = podman_tmp.path();
    if podman_works(podman_dir) {
        let image = format!("{}/private/busybox:1", served.addr);
        let out = podman(podman_dir)
            .args(["pull", "--tls-verify=false", &image])
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "podman pull without credentials must fail"
        );
        run(podman(podman_dir).args([
            "pull",
            "--tls-verify=false",
            "--creds",
            "alice:s3cret",
            &image,
        ]));
        run(podman(podman_dir).args(["tag", &image, &format!("{}/private/again:2", served.addr)]));
        run(podman(podman_dir).args([
            "push",
            "--tls-verify=false",
            "--creds",
            "alice:s3cret",
            &format!("{}/private/again:2", served.addr),
        ]));
    }
}

/// A CA and a certificate it signed for 127.0.0.1, made with openssl;
/// returns (CA cert, server cert, server key).
fn make_certs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let p = |n: &str| dir.join(n);
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", stderr(&out));
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"],
            &ec[..],
            &[
                "-days",
                "2",
                "-subj",
                "/CN=berth test CA",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"],
            &ec[..],
            &[
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
            ],
        ]
        .concat(),
    );
    std::fs::write(p("ext.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "server.crt",
    ]);
    (p("ca.crt"), p("server.crt"), p("server.key"))
}

#[test]
fn peers_verify_tls() {
    if !peer_ready("skopeo") {
        return;
    }
    if !Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        eprintln!("SKIPPED: openssl is not installed");
        return;
    }
    let dir = TempDir::new(&format!("regsrv-tls-{}", std::process::id())).unwrap();
    let (archive, diff_id) = busybox_archive(&dir);
    std::fs::create_dir(dir.join("pki")).unwrap();
    let (ca, cert, key) = make_certs(&dir.join("pki"));
    let certs_d = dir.join("certs.d");
    std::fs::create_dir(&certs_d).unwrap();
    std::fs::copy(&ca, certs_d.join("ca.crt")).unwrap();
    let served = Served::start(
        &dir.join("registry"),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let dest = format!("docker://{}/tls/busybox:1", served.addr);
    let src = format!("docker-archive:{}", archive.display());
    // Verified against the CA: no --tls-verify=false anywhere.
    let out = Command::new("skopeo")
        .args(["copy", &src, &dest])
        .output()
        .unwrap();
    assert!(!out.status.success(), "an unknown CA must be refused");
    run(Command::new("skopeo")
        .args(["copy", "--dest-cert-dir"])
        .arg(&certs_d)
        .args([&src, &dest]));
    let pulled = dir.join("pulled");
    run(Command::new("skopeo")
        .args(["copy", "--src-cert-dir"])
        .arg(&certs_d)
        .arg(&dest)
        .arg(format!("oci:{}:x", pulled.display())));
    check_oci_layout(&pulled, &diff_id);

    let podman_tmp = podman_dir();
    let podman_dir = podman_tmp.path();
    if podman_works(podman_dir) {
        let image = format!("{}/tls/busybox:1", served.addr);
        run(podman(podman_dir)
            .args(["pull", "--cert-dir"])
            .arg(&certs_d)
            .arg(&image));
        let again = format!("{}/tls/again:2", served.addr);
        run(podman(podman_dir).args(["tag", &image, &again]));
        run(podman(podman_dir)
            .args(["push", "--cert-dir"])
            .arg(&certs_d)
            .arg(&again));
    }
}

#[test]
fn serve_reports_startup_errors_in_one_line() {
    let dir = TempDir::new(&format!("regsrv-errors-{}", std::process::id())).unwrap();
    let served = Served::start(&dir.join("registry"), &[]);
    let berth = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(["registry", "serve", "--root"])
            .arg(dir.join("other"))
            .args(args)
            .output()
            .unwrap()
    };
    let out = berth(&["--addr", &served.addr]);
    assert_eq!(out.status.code(), Some(125));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("address already in use"), "{err}");
    let out = berth(&[
        "--addr",
        "127.0.0.1:0",
        "--htpasswd",
        "/nonexistent/htpasswd",
    ]);
    assert_eq!(out.status.code(), Some(125));
    assert_eq!(stderr(&out).trim(), "Error: cannot read htpasswd file /nonexistent/htpasswd: No such file or directory (os error 2)");
    std::fs::write(dir.join("bad.pem"), "garbage").unwrap();
    let bad = dir.join("bad.pem");
    let out = berth(&[
        "--addr",
        "127.0.0.1:0",
        "--tls-cert",
        bad.to_str().unwrap(),
        "--tls-key",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        stderr(&out).starts_with("Error: bad TLS certificate"),
        "{}",
        stderr(&out)
    );
    let out = berth(&["--addr", "127.0.0.1:0", "--tls-cert", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(125), "--tls-cert needs --tls-key");
}
