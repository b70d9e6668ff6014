//! A registry on 127.0.0.1:0 in this process, and a plain HTTP client.
#![allow(dead_code)]

use std::path::PathBuf;

use berth_registry::{BackgroundServer, RegistryConfig, TlsFiles};
use berth_testutil::TempDir;
use sha2::{Digest as _, Sha256};

pub type Resp = ureq::http::Response<ureq::Body>;

pub struct Reg {
    pub dir: TempDir,
    pub server: Option<BackgroundServer>,
    pub agent: ureq::Agent,
    pub base: String,
}

pub fn config(root: PathBuf) -> RegistryConfig {
    RegistryConfig {
        root,
        htpasswd: None,
        tls: None,
        log_requests: false,
    }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .disable_verification(true)
                .build(),
        )
        .build()
        .into()
}

impl Reg {
    pub fn start(name: &str) -> Self {
        Self::start_with(name, |_| {})
    }

    pub fn start_with(name: &str, adjust: impl FnOnce(&mut RegistryConfig)) -> Self {
        let dir = TempDir::new(name).expect("tempdir");
        let mut cfg = config(dir.join("root"));
        adjust(&mut cfg);
        let scheme = if cfg.tls.is_some() { "https" } else { "http" };
        let server =
            BackgroundServer::start("127.0.0.1:0".parse().unwrap(), cfg).expect("start registry");
        let base = format!("{scheme}://{}", server.addr());
        Self {
            dir,
            server: Some(server),
            agent: agent(),
            base,
        }
    }

    /// Stops the server and starts a new one on the same store.
    pub fn restart(&mut self) {
        self.server = None;
        let server = BackgroundServer::start(
            "127.0.0.1:0".parse().unwrap(),
            config(self.dir.join("root")),
        )
        .expect("restart registry");
        self.base = format!("http://{}", server.addr());
        self.server = Some(server);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn get(&self, path: &str) -> Resp {
        self.agent.get(self.url(path)).call().expect("GET")
    }

    pub fn head(&self, path: &str) -> Resp {
        self.agent.head(self.url(path)).call().expect("HEAD")
    }

    pub fn delete(&self, path: &str) -> Resp {
        self.agent.delete(self.url(path)).call().expect("DELETE")
    }

    pub fn post(&self, path: &str, body: &[u8]) -> Resp {
        self.agent.post(self.url(path)).send(body).expect("POST")
    }

    /// Pushes a blob in one request; returns its digest.
    pub fn push_blob(&self, repo: &str, data: &[u8]) -> String {
        let d = digest(data);
        let r = self.post(&format!("/v2/{repo}/blobs/uploads/?digest={d}"), data);
        assert_eq!(r.status(), 201, "monolithic upload of {d}");
        d
    }

    /// Pushes an image manifest over the given blobs; returns its bytes and digest.
    pub fn push_image(&self, repo: &str, tag: &str, layers: &[&[u8]]) -> (Vec<u8>, String) {
        let config =
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
        let cd = self.push_blob(repo, config);
        let layers: Vec<_> = layers
            .iter()
            .map(|l| {
                let d = self.push_blob(repo, l);
                serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": l.len()})
            })
            .collect();
        let m = oci_manifest(&cd, config.len(), layers);
        let r = self.put_manifest(repo, tag, &m, OCI_MANIFEST);
        assert_eq!(r.status(), 201, "manifest push: {}", body_string(r));
        let d = digest(&m);
        (m, d)
    }

    pub fn put_manifest(&self, repo: &str, reference: &str, m: &[u8], media_type: &str) -> Resp {
        self.agent
            .put(self.url(&format!("/v2/{repo}/manifests/{reference}")))
            .header("Content-Type", media_type)
            .send(m)
            .expect("PUT manifest")
    }
}

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

pub fn oci_manifest(
    config_digest: &str,
    config_size: usize,
    layers: Vec<serde_json::Value>,
) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": layers,
    }))
    .unwrap()
}

pub fn digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

pub fn header(r: &Resp, name: &str) -> String {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

pub fn body_bytes(mut r: Resp) -> Vec<u8> {
    r.body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_vec()
        .expect("read body")
}

pub fn body_string(r: Resp) -> String {
    String::from_utf8_lossy(&body_bytes(r)).into_owned()
}

/// The `code` of the first error in a distribution error body.
pub fn error_code(r: Resp) -> String {
    let v: serde_json::Value = serde_json::from_slice(&body_bytes(r)).expect("error body is JSON");
    v["errors"][0]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Deterministic incompressible bytes.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A self-signed certificate and key for 127.0.0.1 made with openssl.
pub fn self_signed(dir: &std::path::Path) -> TlsFiles {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let st = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl");
    assert!(st.success(), "openssl req failed");
    TlsFiles { cert, key }
}
