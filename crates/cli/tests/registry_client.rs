//! `berth pull/push/login/logout` and the auto-pull of `run` against
//! Debian's docker-registry: plain, htpasswd (Basic), token (Bearer, a
//! token issuer in the test), TLS with a CA in certs.d; a download cut
//! mid-layer resumes; a corrupted blob is refused and leaves no image.

mod common;
#[path = "registry_client/fixtures.rs"]
mod fixtures;

use std::path::Path;
use std::process::Output;

use base64::Engine as _;
use common::{docker_archive, layer_tar, noise, stderr, stdout, Berth, Layout, TestImage};
use fixtures::{Proxy, Registry, RegistryOptions, Sabotage, TokenServer};

/// A berth whose registry settings and Docker credentials live in its
/// temp dir, never in /etc/berth or ~/.docker.
struct Client {
    b: Berth,
    env: Vec<(String, String)>,
}

impl Client {
    fn new(name: &str) -> Self {
        let b = Berth::new(&format!("reg-{name}"));
        let env = vec![
            (
                "DOCKER_CONFIG".into(),
                b.dir.join("docker").display().to_string(),
            ),
            (
                "BERTH_CONFIG".into(),
                b.dir.join("berth.toml").display().to_string(),
            ),
            (
                "BERTH_CERTS_D".into(),
                b.dir.join("certs.d").display().to_string(),
            ),
            ("BERTH_LAYER_SYNC".into(), "0".into()),
        ];
        Self { b, env }
    }

    fn with_env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut c = self.b.command();
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c.args(args).output().expect("spawn berth")
    }

    fn run_stdin(&self, args: &[&str], input: &str) -> Output {
        use std::io::Write;
        let mut c = self.b.command();
        for (k, v) in &self.env {
            c.env(k, v);
        }
        let mut child = c
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn berth");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
        child.wait_with_output().expect("wait berth")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "berth {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            out.status.code(),
            stdout(&out),
            stderr(&out)
        );
        stdout(&out)
    }

    fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "berth {args:?}: stdout: {} stderr: {}",
            stdout(&out),
            stderr(&out)
        );
        stderr(&out)
    }

    fn docker_config(&self) -> serde_json::Value {
        let text =
            std::fs::read_to_string(self.b.dir.join("docker/config.json")).unwrap_or_default();
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
    }

    /// A busybox image named `name`.
    fn busybox(&self, name: &str) -> String {
        let tar = common::busybox_tar(&self.b.dir);
        self.ok(&["import", &tar.display().to_string(), name])
            .trim()
            .to_string()
    }

    /// A two-layer image of incompressible data (`big` bytes in the first
    /// layer) loaded as `name`; returns its id.
    fn noise_image(&self, name: &str, big: usize, seed: u64) -> String {
        let layers = vec![
            layer_tar(&[("data/big", noise(big, seed))]),
            layer_tar(&[("data/small", noise(10_000, seed + 1))]),
        ];
        let path = self.b.dir.join(format!("noise-{seed}.tar"));
        docker_archive(&path, &[TestImage::new(layers, name)], Layout::Blobs);
        self.ok(&["load", "-i", &path.display().to_string()]);
        self.id(name)
    }

    fn id(&self, name: &str) -> String {
        self.ok(&["image", "inspect", "-f", "{{.Id}}", name])
            .trim()
            .to_string()
    }

    fn images_q(&self) -> String {
        self.ok(&["images", "-q"])
    }
}

fn require_registry() -> bool {
    berth_testutil::is_root() && Path::new(fixtures::REGISTRY_BIN).exists()
}

macro_rules! require_registry {
    () => {
        if !require_registry() {
            eprintln!("SKIPPED: needs root and {}", fixtures::REGISTRY_BIN);
            return;
        }
    };
}

#[test]
fn push_rmi_pull_run_by_tag_and_digest() {
    require_registry!();
    let reg = Registry::start("plain", RegistryOptions::default());
    let c = Client::new("plain");
    let name = format!("{}/tools/bb:v1", reg.host);
    let id = c.busybox(&name);

    let out = c.ok(&["push", &name]);
    assert!(
        out.starts_with(&format!(
            "The push refers to repository [{}/tools/bb]\n",
            reg.host
        )),
        "{out}"
    );
    assert!(out.contains(": Pushed\n"), "{out}");
    let last = out.lines().last().unwrap_or_default();
    let digest = last
        .strip_prefix("v1: digest: ")
        .and_then(|r| r.split_once(" size: "))
        .map(|(d, _)| d.to_string())
        .unwrap_or_else(|| panic!("no digest line: {out}"));
    assert!(digest.starts_with("sha256:") && digest.len() == 71, "{out}");
    assert!(reg.catalog().contains("\"tools/bb\""), "{}", reg.catalog());
    skopeo_reads_the_push(&c, &name, &digest);

    // Pushing again sends nothing.
    let out = c.ok(&["push", &name]);
    assert!(out.contains(": Layer already exists\n"), "{out}");
    assert!(
        out.ends_with(&format!(
            "v1: digest: {digest} size: {}\n",
            last.rsplit(' ').next().unwrap_or_default()
        )),
        "{out}"
    );

    c.ok(&["rmi", &name]);
    assert!(c.images_q().trim().is_empty());
    let out = c.ok(&["pull", &name]);
    assert!(out.starts_with("v1: Pulling from tools/bb\n"), "{out}");
    assert!(out.contains(": Pulling fs layer\n"), "{out}");
    assert!(out.contains(": Pull complete\n"), "{out}");
    assert!(out.contains(&format!("Digest: {digest}\n")), "{out}");
    assert!(
        out.ends_with(&format!(
            "Status: Downloaded newer image for {name}\n{name}\n"
        )),
        "{out}"
    );
    assert!(
        !out.contains('\x1b'),
        "escape codes without a terminal: {out:?}"
    );
    assert_eq!(c.id(&name), id, "the same image comes back");
    assert_eq!(
        c.ok(&["run", "--rm", &name, "/bin/busybox", "echo", "pulled"])
            .trim(),
        "pulled"
    );
    let out = c.ok(&["pull", &name]);
    assert!(out.contains(": Already exists\n"), "{out}");
    assert!(
        out.contains(&format!("Status: Image is up to date for {name}\n")),
        "{out}"
    );
    let digests = c.ok(&["images", "--digests", "--format", "{{.Digest}}"]);
    assert!(digests.contains(&digest), "{digests}");

    // By digest, into an empty store.
    let by_digest = format!("{}/tools/bb@{digest}", reg.host);
    let c2 = Client::new("plain-digest");
    let out = c2.ok(&["pull", "-q", &by_digest]);
    assert_eq!(out, format!("{by_digest}\n"));
    assert_eq!(c2.id(&by_digest), id);

    // Auto-pull from run, progress on stderr.
    let c3 = Client::new("plain-run");
    let out = c3.run(&["run", "--rm", &name, "/bin/busybox", "echo", "auto"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "auto");
    let err = stderr(&out);
    assert!(
        err.starts_with(&format!("Unable to find image '{name}' locally\n")),
        "{err}"
    );
    assert!(err.contains("Pull complete"), "{err}");
    // --pull never does not pull.
    let c4 = Client::new("plain-never");
    let err = c4.fails(&["run", "--rm", "--pull", "never", &name, "true"], 125);
    assert!(err.contains("No such image"), "{err}");
    assert!(c4.images_q().trim().is_empty());
}

/// The pushed manifest names gzip layers and skopeo (containers/image)
/// pulls the image, verifying every blob against its digest.
fn skopeo_reads_the_push(c: &Client, name: &str, digest: &str) {
    use sha2::Digest as _;
    if !Path::new("/usr/bin/skopeo").exists() {
        eprintln!("skipping the skopeo check: /usr/bin/skopeo missing");
        return;
    }
    let raw = std::process::Command::new("/usr/bin/skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{name}"))
        .output()
        .expect("run skopeo inspect");
    assert!(raw.status.success(), "{}", stderr(&raw));
    let manifest: serde_json::Value = serde_json::from_slice(&raw.stdout).expect("manifest json");
    assert_eq!(
        format!(
            "sha256:{}",
            sha2::Sha256::digest(&raw.stdout)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        ),
        digest
    );
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let layers = manifest["layers"].as_array().expect("layers");
    assert!(!layers.is_empty());
    for l in layers {
        assert_eq!(
            l["mediaType"], "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "{manifest}"
        );
    }
    let dir = c.b.dir.join("skopeo-copy");
    let out = std::process::Command::new("/usr/bin/skopeo")
        .args(["copy", "-q", "--src-tls-verify=false"])
        .arg(format!("docker://{name}"))
        .arg(format!("dir:{}", dir.display()))
        .output()
        .expect("run skopeo copy");
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn push_all_tags_mount_chunked_and_pull_all_tags() {
    require_registry!();
    let reg = Registry::start("tags", RegistryOptions::default());
    let c = Client::new("tags").with_env("BERTH_PUSH_CHUNK_SIZE", "300000");
    let a = format!("{}/app", reg.host);
    let id = c.noise_image(&format!("{a}:one"), 1_500_000, 7);
    c.ok(&["tag", &format!("{a}:one"), &format!("{a}:two")]);
    let out = c.ok(&["push", "--all-tags", &a]);
    assert!(out.contains("one: digest: sha256:"), "{out}");
    assert!(out.contains("two: digest: sha256:"), "{out}");
    // Another repository of the same registry gets the layers mounted.
    let other = format!("{}/other:x", reg.host);
    c.ok(&["tag", &format!("{a}:one"), &other]);
    let out = c.ok(&["push", &other]);
    assert_eq!(out.matches(": Mounted from app\n").count(), 2, "{out}");

    let c2 = Client::new("tags-pull");
    let out = c2.ok(&["pull", "-a", &a]);
    assert!(out.contains("one: Pulling from app\n"), "{out}");
    assert!(out.contains("two: Pulling from app\n"), "{out}");
    assert!(out.ends_with(&format!("{a}\n")), "{out}");
    assert_eq!(c2.id(&format!("{a}:one")), id);
    assert_eq!(c2.id(&format!("{a}:two")), id);
    let err = c2.fails(&["pull", "-a", &format!("{a}:one")], 1);
    assert!(
        err.contains("tag can't be used with --all-tags/-a"),
        "{err}"
    );
}

#[test]
fn errors_unknown_tag_unreachable_registry_and_missing_local_image() {
    require_registry!();
    let reg = Registry::start("errors", RegistryOptions::default());
    let c = Client::new("errors");
    let err = c.fails(&["pull", &format!("{}/nothing:here", reg.host)], 1);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("manifest unknown"), "{err}");
    assert!(err.contains(&format!("{}/nothing:here", reg.host)), "{err}");

    let dead = format!("127.0.0.1:{}", fixtures::free_port("127.0.0.1"));
    let err = c.fails(&["pull", &format!("{dead}/x")], 1);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(&dead) && err.contains("unreachable"), "{err}");

    let err = c.fails(
        &["run", "--rm", &format!("{}/nothing", reg.host), "true"],
        125,
    );
    assert!(err.contains("Unable to find image"), "{err}");
    assert!(err.contains("manifest unknown"), "{err}");

    let err = c.fails(&["push", &format!("{}/not-local:1", reg.host)], 1);
    assert!(
        err.contains("An image does not exist locally with the tag"),
        "{err}"
    );
}

#[test]
fn basic_auth_login_push_pull_logout() {
    require_registry!();
    if !common::have("htpasswd") && !Path::new("/usr/bin/htpasswd").exists() {
        eprintln!("SKIPPED: needs htpasswd (apache2-utils)");
        return;
    }
    let c = Client::new("basic");
    let htpasswd = fixtures::htpasswd(c.b.dir.path(), "tester", "s3cret");
    let reg = Registry::start(
        "basic",
        RegistryOptions {
            htpasswd: Some(htpasswd),
            ..Default::default()
        },
    );
    let name = format!("{}/secure/bb:1", reg.host);
    c.busybox(&name);
    let err = c.fails(&["push", &name], 1);
    assert!(err.contains("unauthorized"), "{err}");

    let out = c.run(&["login", "-u", "tester", "-p", "wrong", &reg.host]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("incorrect username or password"),
        "{}",
        stderr(&out)
    );
    assert!(c.docker_config()["auths"][&reg.host].is_null());

    let out = c.run_stdin(
        &["login", "-u", "tester", "--password-stdin", &reg.host],
        "s3cret\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "Login Succeeded\n");
    let auth = c.docker_config()["auths"][&reg.host]["auth"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(auth)
            .unwrap_or_default(),
        b"tester:s3cret"
    );

    c.ok(&["push", &name]);
    c.ok(&["rmi", &name]);
    c.ok(&["pull", &name]);
    assert_eq!(
        c.ok(&["run", "--rm", &name, "/bin/busybox", "echo", "ok"])
            .trim(),
        "ok"
    );

    assert_eq!(
        c.ok(&["logout", &reg.host]),
        format!("Removing login credentials for {}\n", reg.host)
    );
    assert!(c.docker_config()["auths"][&reg.host].is_null());
    assert_eq!(
        c.ok(&["logout", &reg.host]),
        format!("Not logged in to {}\n", reg.host)
    );
    c.ok(&["rmi", &name]);
    let err = c.fails(&["pull", &name], 1);
    assert!(err.contains("unauthorized"), "{err}");
}

#[test]
fn token_auth_from_an_issuer() {
    require_registry!();
    let c = Client::new("token");
    let issuer = TokenServer::start(c.b.dir.path(), "tok", "en");
    let reg = Registry::start(
        "token",
        RegistryOptions {
            token: Some((
                issuer.realm.clone(),
                issuer.service.clone(),
                issuer.issuer.clone(),
                issuer.cert.clone(),
            )),
            ..Default::default()
        },
    );
    let name = format!("{}/tok/bb:t", reg.host);
    c.busybox(&name);
    let err = c.fails(&["push", &name], 1);
    assert!(err.contains("unauthorized"), "{err}");
    assert!(issuer.refused.load(std::sync::atomic::Ordering::Relaxed) > 0);

    let err = c.fails(&["login", "-u", "tok", "-p", "nope", &reg.host], 1);
    assert!(err.contains("incorrect username or password"), "{err}");
    c.ok(&["login", "-u", "tok", "-p", "en", &reg.host]);
    let out = c.ok(&["push", &name]);
    assert!(out.contains(": Pushed"), "{out}");
    assert!(issuer.issued.load(std::sync::atomic::Ordering::Relaxed) > 0);
    c.ok(&["rmi", &name]);
    c.ok(&["pull", &name]);
    assert_eq!(
        c.ok(&["run", "--rm", &name, "/bin/busybox", "echo", "tok"])
            .trim(),
        "tok"
    );
}

#[test]
fn tls_with_ca_in_certs_d_and_insecure_registries() {
    require_registry!();
    let Some(ip) = fixtures::host_ip() else {
        eprintln!("SKIPPED: no non-loopback IPv4 address for a TLS registry");
        return;
    };
    let c = Client::new("tls");
    let (ca, cert, key) = fixtures::tls_files(c.b.dir.path(), &ip);
    let reg = Registry::start(
        "tls",
        RegistryOptions {
            ip: Some(ip.clone()),
            tls: Some((cert, key)),
            ..Default::default()
        },
    );
    let name = format!("{}/tls/bb:1", reg.host);
    c.busybox(&name);
    let err = c.fails(&["push", &name], 1);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("TLS handshake"), "{err}");
    assert!(
        err.contains(&format!("certs.d/{}/ca.crt", reg.host)),
        "{err}"
    );
    assert!(err.contains("insecure-registries"), "{err}");

    let dir = c.b.dir.join("certs.d").join(&reg.host);
    std::fs::create_dir_all(&dir).expect("certs.d");
    std::fs::copy(&ca, dir.join("ca.crt")).expect("ca.crt");
    c.ok(&["push", &name]);
    c.ok(&["rmi", &name]);
    c.ok(&["pull", &name]);
    std::fs::remove_dir_all(&dir).expect("remove certs.d entry");

    // Listed as insecure: TLS without verification.
    let c2 = Client::new("tls-insecure");
    std::fs::write(
        c2.b.dir.join("berth.toml"),
        format!("insecure-registries = [\"{}\"]\n", reg.host),
    )
    .expect("berth.toml");
    c2.ok(&["pull", &name]);
    assert_eq!(
        c2.ok(&["run", "--rm", &name, "/bin/busybox", "echo", "tls"])
            .trim(),
        "tls"
    );
}

#[test]
fn download_cut_mid_layer_resumes() {
    require_registry!();
    let reg = Registry::start("resume", RegistryOptions::default());
    let c = Client::new("resume");
    let name = format!("{}/big:1", reg.host);
    let id = c.noise_image(&name, 4_000_000, 11);
    c.ok(&["push", &name]);

    let proxy = Proxy::start(&reg.host, Sabotage::CutAfter(1_000_000));
    let via = format!("{}/big:1", proxy.host);
    let c2 = Client::new("resume-pull");
    let out = c2.ok(&["pull", &via]);
    assert!(out.contains("Pull complete"), "{out}");
    assert!(
        proxy.sabotaged.load(std::sync::atomic::Ordering::Relaxed),
        "the proxy never cut"
    );
    assert!(
        proxy.saw_range.load(std::sync::atomic::Ordering::Relaxed),
        "no Range request"
    );
    assert_eq!(c2.id(&via), id);
}

#[test]
fn corrupted_blob_is_refused_and_leaves_no_image() {
    require_registry!();
    let reg = Registry::start("corrupt", RegistryOptions::default());
    let c = Client::new("corrupt");
    let name = format!("{}/bad:1", reg.host);
    c.noise_image(&name, 2_000_000, 21);
    c.ok(&["push", &name]);
    let proxy = Proxy::start(&reg.host, Sabotage::CorruptAfter(500_000));
    let c2 = Client::new("corrupt-pull");
    let err = c2.fails(&["pull", &format!("{}/bad:1", proxy.host)], 1);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("digest mismatch"), "{err}");
    assert!(c2.images_q().trim().is_empty(), "a half image was stored");
    // Without the sabotage the same pull completes.
    c2.ok(&["pull", &format!("{}/bad:1", proxy.host)]);
}

#[test]
fn manifest_list_picks_the_platform() {
    require_registry!();
    let reg = Registry::start("index", RegistryOptions::default());
    let c = Client::new("index");
    let amd = format!("{}/multi:amd64", reg.host);
    let arm = format!("{}/multi:arm64", reg.host);
    let amd_id = c.busybox(&amd);
    let tar = common::busybox_tar(&c.b.dir);
    let arm_id = c
        .ok(&[
            "import",
            "--change",
            "CMD [\"arm\"]",
            &tar.display().to_string(),
            &arm,
        ])
        .trim()
        .to_string();
    assert_ne!(amd_id, arm_id);
    let digest_of = |out: &str| {
        out.lines()
            .last()
            .and_then(|l| l.split_whitespace().nth(2))
            .unwrap_or_default()
            .to_string()
    };
    let amd_digest = digest_of(&c.ok(&["push", &amd]));
    let arm_digest = digest_of(&c.ok(&["push", &arm]));
    let manifest_size =
        |d: &str| fixtures::http_get(&reg.host, &format!("/v2/multi/manifests/{d}"), None).len();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": arm_digest,
             "size": manifest_size(&arm_digest), "platform": {"architecture": "arm64", "os": "linux"}},
            {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": amd_digest,
             "size": manifest_size(&amd_digest), "platform": {"architecture": "amd64", "os": "linux"}},
        ]
    });
    let status = fixtures::http_put(
        &reg.host,
        "/v2/multi/manifests/both",
        "application/vnd.oci.image.index.v1+json",
        index.to_string().as_bytes(),
    );
    assert!(status.contains("201"), "{status}");

    let both = format!("{}/multi:both", reg.host);
    let c2 = Client::new("index-pull");
    c2.ok(&["pull", &both]);
    assert_eq!(c2.id(&both), amd_id);
    c2.ok(&["pull", "--platform", "linux/arm64", &both]);
    assert_eq!(c2.id(&both), arm_id);
    let err = c2.fails(&["pull", "--platform", "linux/s390x", &both], 1);
    assert!(
        err.contains("no matching manifest for linux/s390x"),
        "{err}"
    );
}

#[test]
fn docker_hub_names_go_to_a_configured_mirror() {
    require_registry!();
    let reg = Registry::start("mirror", RegistryOptions::default());
    let c = Client::new("mirror");
    // What Docker Hub calls `library/mirrored` lives in the mirror.
    let in_mirror = format!("{}/library/mirrored:1", reg.host);
    let id = c.busybox(&in_mirror);
    c.ok(&["push", &in_mirror]);
    let c2 = Client::new("mirror-pull");
    std::fs::write(
        c2.b.dir.join("berth.toml"),
        format!("registry-mirrors = [\"http://{}\"]\n", reg.host),
    )
    .expect("berth.toml");
    let out = c2.ok(&["pull", "mirrored:1"]);
    assert!(out.ends_with("docker.io/library/mirrored:1\n"), "{out}");
    assert_eq!(c2.id("mirrored:1"), id);
}
