//! Basic authentication from an htpasswd file and TLS.

mod common;

use base64::Engine as _;
use berth_registry::{BackgroundServer, RegistryError, TlsFiles};
use common::*;

fn basic(user: &str, pw: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
    )
}

fn write_htpasswd(dir: &std::path::Path) -> std::path::PathBuf {
    // The form `htpasswd -B` writes.
    let hash = bcrypt::hash("s3cret", 5)
        .unwrap()
        .replacen("$2b$", "$2y$", 1);
    let p = dir.join("htpasswd");
    std::fs::write(&p, format!("alice:{hash}\n")).unwrap();
    p
}

#[test]
fn basic_auth_challenges_then_accepts() {
    let dir = berth_testutil::TempDir::new("reg-auth-file").unwrap();
    let htpasswd = write_htpasswd(dir.path());
    let reg = Reg::start_with("reg-auth", |c| c.htpasswd = Some(htpasswd));
    let r = reg.get("/v2/");
    assert_eq!(r.status(), 401);
    assert_eq!(
        header(&r, "WWW-Authenticate"),
        "Basic realm=\"berth-registry\""
    );
    assert_eq!(
        header(&r, "Docker-Distribution-API-Version"),
        "registry/2.0"
    );
    assert_eq!(error_code(r), "UNAUTHORIZED");
    let get = |auth: &str, path: &str| {
        reg.agent
            .get(reg.url(path))
            .header("Authorization", auth)
            .call()
            .unwrap()
    };
    assert_eq!(get(&basic("alice", "wrong"), "/v2/").status(), 401);
    assert_eq!(get(&basic("bob", "s3cret"), "/v2/").status(), 401);
    assert_eq!(get(&basic("alice", "s3cret"), "/v2/").status(), 200);
    assert_eq!(get(&basic("alice", "s3cret"), "/v2/_catalog").status(), 200);
    assert_eq!(reg.get("/v2/_catalog").status(), 401);
    let r = reg
        .agent
        .post(reg.url("/v2/x/blobs/uploads/"))
        .header("Authorization", &basic("alice", "s3cret"))
        .send_empty()
        .unwrap();
    assert_eq!(r.status(), 202);
}

#[test]
fn tls_with_a_self_signed_certificate() {
    let dir = berth_testutil::TempDir::new("reg-tls-cert").unwrap();
    let files = self_signed(dir.path());
    let reg = Reg::start_with("reg-tls", |c| c.tls = Some(files));
    assert!(reg.base.starts_with("https://"));
    let r = reg.get("/v2/");
    assert_eq!(r.status(), 200);
    let d = reg.push_blob("secure/repo", b"over tls");
    assert_eq!(
        body_bytes(reg.get(&format!("/v2/secure/repo/blobs/{d}"))),
        b"over tls"
    );
    // Plain HTTP to the TLS port is not served.
    let plain = reg.base.replace("https://", "http://");
    assert!(reg.agent.get(format!("{plain}/v2/")).call().is_err());
}

#[test]
fn startup_errors_say_what_is_wrong() {
    let dir = berth_testutil::TempDir::new("reg-errors").unwrap();
    let start = |cfg| {
        BackgroundServer::start("127.0.0.1:0".parse().unwrap(), cfg)
            .err()
            .expect("should fail")
    };
    let mut cfg = config(dir.join("root"));
    cfg.htpasswd = Some(dir.join("missing-htpasswd"));
    let e = start(cfg);
    assert!(matches!(e, RegistryError::HtpasswdRead { .. }), "{e}");
    assert!(
        e.to_string().starts_with("cannot read htpasswd file"),
        "{e}"
    );

    let good = self_signed(dir.path());
    std::fs::write(dir.join("garbage.pem"), "not a pem file\n").unwrap();
    let mut cfg = config(dir.join("root"));
    cfg.tls = Some(TlsFiles {
        cert: dir.join("garbage.pem"),
        key: good.key.clone(),
    });
    let e = start(cfg);
    assert!(matches!(e, RegistryError::Certificate { .. }), "{e}");
    let mut cfg = config(dir.join("root"));
    cfg.tls = Some(TlsFiles {
        cert: good.cert.clone(),
        key: good.cert.clone(),
    });
    let e = start(cfg);
    assert!(matches!(e, RegistryError::Key { .. }), "{e}");
    // A key that is not the certificate's.
    let other = dir.join("other");
    std::fs::create_dir(&other).unwrap();
    let other = self_signed(&other);
    let mut cfg = config(dir.join("root"));
    cfg.tls = Some(TlsFiles {
        cert: good.cert.clone(),
        key: other.key,
    });
    let e = start(cfg);
    assert!(matches!(e, RegistryError::TlsConfig { .. }), "{e}");

    let first =
        BackgroundServer::start("127.0.0.1:0".parse().unwrap(), config(dir.join("root"))).unwrap();
    let e = BackgroundServer::start(first.addr(), config(dir.join("root2")))
        .err()
        .unwrap();
    assert!(matches!(e, RegistryError::AddressInUse { .. }), "{e}");
    assert!(e.to_string().contains("address already in use"), "{e}");
}
