//! Fixtures for the registry client tests: Debian's docker-registry on a
//! free port (plain, htpasswd, TLS, token auth), a token issuer, a TCP
//! proxy that cuts or corrupts a blob download once, and openssl helpers.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use berth_testutil::TempDir;

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

pub fn free_port(ip: &str) -> u16 {
    TcpListener::bind((ip, 0))
        .expect("bind a free port")
        .local_addr()
        .expect("local addr")
        .port()
}

/// The host's first non-loopback IPv4 address (for TLS tests: loopback
/// registries are insecure by default, as in Docker).
pub fn host_ip() -> Option<String> {
    let out = Command::new("hostname").arg("-I").output().ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .find(|a| {
            a.parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| !ip.is_loopback())
        })
        .map(str::to_string)
}

#[derive(Default)]
pub struct RegistryOptions {
    pub ip: Option<String>,
    pub htpasswd: Option<PathBuf>,
    /// (certificate, key) PEM files.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// (realm URL, service, issuer, root certificate bundle).
    pub token: Option<(String, String, String, PathBuf)>,
}

/// A running docker-registry, killed on drop.
pub struct Registry {
    child: Child,
    /// `ip:port`.
    pub host: String,
    pub dir: TempDir,
}

impl Registry {
    pub fn start(name: &str, opts: RegistryOptions) -> Self {
        let dir =
            TempDir::new(&format!("registry-{name}-{}", std::process::id())).expect("registry dir");
        let ip = opts.ip.clone().unwrap_or_else(|| "127.0.0.1".into());
        let port = free_port(&ip);
        let host = format!("{ip}:{port}");
        let mut yaml = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {host}\n",
            dir.join("data").display()
        );
        if let Some((cert, key)) = &opts.tls {
            yaml.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            ));
        }
        if let Some(h) = &opts.htpasswd {
            yaml.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                h.display()
            ));
        }
        if let Some((realm, service, issuer, bundle)) = &opts.token {
            yaml.push_str(&format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer}\n    rootcertbundle: {}\n",
                bundle.display()
            ));
        }
        let config = dir.join("config.yml");
        std::fs::write(&config, yaml).expect("registry config");
        let log = std::fs::File::create(dir.join("registry.log")).expect("registry log");
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("spawn docker-registry");
        let reg = Self { child, host, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&reg.host).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not listen on {}: {}",
                reg.host,
                std::fs::read_to_string(reg.dir.join("registry.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        reg
    }

    /// `GET /v2/_catalog` over plain HTTP.
    pub fn catalog(&self) -> String {
        http_get(&self.host, "/v2/_catalog", None)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.0 GET; returns the body.
pub fn http_get(host: &str, path: &str, auth: Option<&str>) -> String {
    let mut s = TcpStream::connect(host).expect("connect");
    let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n{auth}\r\n").expect("request");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("response");
    resp.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// A PUT of `body` with `content_type` over plain HTTP; returns the status line.
pub fn http_put(host: &str, path: &str, content_type: &str, body: &[u8]) -> String {
    let mut s = TcpStream::connect(host).expect("connect");
    write!(
        s,
        "PUT {path} HTTP/1.0\r\nHost: {host}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .expect("request");
    s.write_all(body).expect("body");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("response");
    resp.lines().next().unwrap_or_default().to_string()
}

pub fn run_ok(cmd: &mut Command) {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `htpasswd -Bbn user password` into `dir/htpasswd`.
pub fn htpasswd(dir: &Path, user: &str, password: &str) -> PathBuf {
    let out = Command::new("htpasswd")
        .args(["-Bbn", user, password])
        .output()
        .expect("htpasswd (apache2-utils)");
    assert!(out.status.success());
    let p = dir.join("htpasswd");
    std::fs::write(&p, out.stdout).expect("write htpasswd");
    p
}

/// A self-signed CA and a server certificate for `ip` signed by it:
/// returns (ca.crt, server.crt, server.key).
pub fn tls_files(dir: &Path, ip: &str) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = dir.join("ca.key");
    let ca = dir.join("ca.crt");
    let key = dir.join("server.key");
    let csr = dir.join("server.csr");
    let cert = dir.join("server.crt");
    let ext = dir.join("ext.cnf");
    run_ok(
        Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=berth test CA",
            ])
            .arg("-keyout")
            .arg(&ca_key)
            .arg("-out")
            .arg(&ca),
    );
    run_ok(
        Command::new("openssl")
            .args([
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                &format!("/CN={ip}"),
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&csr),
    );
    std::fs::write(&ext, format!("subjectAltName=IP:{ip}\n")).expect("ext");
    run_ok(
        Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
            .arg("-in")
            .arg(&csr)
            .arg("-CA")
            .arg(&ca)
            .arg("-CAkey")
            .arg(&ca_key)
            .arg("-extfile")
            .arg(&ext)
            .arg("-out")
            .arg(&cert),
    );
    (ca, cert, key)
}

fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// A token issuer for docker-registry's `token` auth: `GET /token?service=
/// &scope=…` with Basic credentials answers a JWT (RS256, signed with
/// openssl, the signing certificate in `x5c`) granting the scopes asked.
pub struct TokenServer {
    pub realm: String,
    pub service: String,
    pub issuer: String,
    pub cert: PathBuf,
    pub issued: Arc<AtomicU64>,
    pub refused: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    addr: String,
}

impl TokenServer {
    pub fn start(dir: &Path, user: &str, password: &str) -> Self {
        let key = dir.join("token.key");
        let cert = dir.join("token.crt");
        run_ok(
            Command::new("openssl")
                .args([
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=berth token issuer",
                ])
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&cert),
        );
        let der = Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert)
            .output()
            .expect("openssl x509");
        let x5c = base64::engine::general_purpose::STANDARD.encode(der.stdout);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind token server");
        let addr = listener.local_addr().expect("addr").to_string();
        let issuer = "berth-test-issuer".to_string();
        let service = "berth-test-registry".to_string();
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        let stop = Arc::new(AtomicBool::new(false));
        let issued = Arc::new(AtomicU64::new(0));
        let refused = Arc::new(AtomicU64::new(0));
        {
            let (stop, issued, refused) = (stop.clone(), issued.clone(), refused.clone());
            let (issuer, service) = (issuer.clone(), service.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let Ok(mut conn) = conn else { continue };
                    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
                    let mut request = String::new();
                    let _ = reader.read_line(&mut request);
                    let mut authorization = None;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                            break;
                        }
                        if let Some((k, v)) = line.split_once(':') {
                            if k.eq_ignore_ascii_case("authorization") {
                                authorization = Some(v.trim().to_string());
                            }
                        }
                    }
                    if authorization.as_deref() != Some(expected.as_str()) {
                        refused.fetch_add(1, Ordering::Relaxed);
                        let body = r#"{"details":"incorrect username or password"}"#;
                        let _ = write!(conn, "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                        continue;
                    }
                    let path = request.split_whitespace().nth(1).unwrap_or_default();
                    let query = path.split_once('?').map_or("", |(_, q)| q);
                    let access: Vec<serde_json::Value> = query
                        .split('&')
                        .filter_map(|kv| kv.strip_prefix("scope="))
                        .map(percent_decode)
                        .filter_map(|s| {
                            let (kind, rest) = s.split_once(':')?;
                            let (name, actions) = rest.rsplit_once(':')?;
                            Some(serde_json::json!({
                                "type": kind, "name": name,
                                "actions": actions.split(',').collect::<Vec<_>>(),
                            }))
                        })
                        .collect();
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .expect("clock")
                        .as_secs();
                    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [x5c]});
                    let claims = serde_json::json!({
                        "iss": issuer, "sub": "tester", "aud": service,
                        "exp": now + 600, "nbf": now - 60, "iat": now - 60,
                        "jti": format!("{now}-{}", issued.load(Ordering::Relaxed)),
                        "access": access,
                    });
                    let signing_input = format!(
                        "{}.{}",
                        b64url(header.to_string().as_bytes()),
                        b64url(claims.to_string().as_bytes())
                    );
                    let mut sign = Command::new("openssl")
                        .args(["dgst", "-sha256", "-sign"])
                        .arg(&key)
                        .stdin(Stdio::piped())
                        .stdout(Stdio::piped())
                        .spawn()
                        .expect("openssl dgst");
                    sign.stdin
                        .take()
                        .expect("stdin")
                        .write_all(signing_input.as_bytes())
                        .expect("sign input");
                    let sig = sign.wait_with_output().expect("signature").stdout;
                    let token = format!("{signing_input}.{}", b64url(&sig));
                    issued.fetch_add(1, Ordering::Relaxed);
                    let body = serde_json::json!({"token": token, "expires_in": 600}).to_string();
                    let _ = write!(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                }
            });
        }
        Self {
            realm: format!("http://{addr}/token"),
            service,
            issuer,
            cert,
            issued,
            refused,
            stop,
            addr,
        }
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so its thread ends.
        let _ = TcpStream::connect(&self.addr);
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What the proxy does to the first blob download it sees.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Sabotage {
    /// Drops the connection after this many response bytes.
    CutAfter(u64),
    /// Flips one byte after this many response bytes.
    CorruptAfter(u64),
}

/// A TCP proxy in front of a registry that sabotages one blob download.
pub struct Proxy {
    pub host: String,
    pub sabotaged: Arc<AtomicBool>,
    /// A request carried a `Range` header (a resumed download).
    pub saw_range: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    pub fn start(upstream: &str, sabotage: Sabotage) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let host = listener.local_addr().expect("addr").to_string();
        let sabotaged = Arc::new(AtomicBool::new(false));
        let saw_range = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (sabotaged, saw_range, stop) = (sabotaged.clone(), saw_range.clone(), stop.clone());
            let upstream = upstream.to_string();
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let Ok(client) = client else { continue };
                    let Ok(server) = TcpStream::connect(&upstream) else {
                        continue;
                    };
                    let blob_get = Arc::new(AtomicBool::new(false));
                    let (mut c_in, mut s_out) = (
                        client.try_clone().expect("clone"),
                        server.try_clone().expect("clone"),
                    );
                    {
                        let (blob_get, saw_range) = (blob_get.clone(), saw_range.clone());
                        std::thread::spawn(move || {
                            let mut buf = vec![0u8; 64 << 10];
                            loop {
                                let n = match c_in.read(&mut buf) {
                                    Ok(0) | Err(_) => break,
                                    Ok(n) => n,
                                };
                                let text = String::from_utf8_lossy(&buf[..n]);
                                if text.starts_with("GET /v2/") && text.contains("/blobs/sha256:") {
                                    blob_get.store(true, Ordering::Relaxed);
                                }
                                if text.to_ascii_lowercase().contains("\r\nrange: bytes=") {
                                    saw_range.store(true, Ordering::Relaxed);
                                }
                                if s_out.write_all(&buf[..n]).is_err() {
                                    break;
                                }
                            }
                            let _ = s_out.shutdown(Shutdown::Write);
                        });
                    }
                    let (mut s_in, mut c_out) = (server, client);
                    let sabotaged = sabotaged.clone();
                    std::thread::spawn(move || {
                        let mut buf = vec![0u8; 64 << 10];
                        let mut counted = 0u64;
                        loop {
                            let n = match s_in.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            if blob_get.load(Ordering::Relaxed)
                                && !sabotaged.load(Ordering::Relaxed)
                            {
                                counted += n as u64;
                                match sabotage {
                                    Sabotage::CutAfter(limit) if counted >= limit => {
                                        sabotaged.store(true, Ordering::Relaxed);
                                        let keep = n - (counted - limit) as usize;
                                        let _ = c_out.write_all(&buf[..keep]);
                                        let _ = c_out.shutdown(Shutdown::Both);
                                        let _ = s_in.shutdown(Shutdown::Both);
                                        return;
                                    }
                                    Sabotage::CorruptAfter(limit) if counted >= limit => {
                                        sabotaged.store(true, Ordering::Relaxed);
                                        buf[n - 1] ^= 0xff;
                                    }
                                    _ => {}
                                }
                            }
                            if c_out.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = c_out.shutdown(Shutdown::Write);
                    });
                }
            });
        }
        Self {
            host,
            sabotaged,
            saw_range,
            stop,
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(&self.host);
    }
}
