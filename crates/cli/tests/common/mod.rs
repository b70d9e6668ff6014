//! Shared helpers for the `berth` CLI tests: a private state root per test,
//! a runner for the binary, and builders for rootfs tars and image archives.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use berth_image::Digest;
use berth_testutil::TempDir;
use serde_json::json;

/// A `berth` with its own root and runroot under a temp dir.
pub struct Berth {
    pub dir: TempDir,
}

impl Berth {
    pub fn new(name: &str) -> Self {
        let dir = TempDir::new(&format!("cli-{name}-{}", std::process::id())).expect("temp dir");
        Self { dir }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
        c.env("BERTH_ROOT", self.root())
            .env("BERTH_RUNROOT", self.dir.join("run"))
            .stdin(Stdio::null());
        c
    }

    /// Runs `berth args…` and returns its output, whatever the status.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("spawn berth")
    }

    /// Runs `berth args…` with `input` on stdin.
    pub fn run_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn berth");
        let mut stdin = child.stdin.take().expect("stdin");
        let input = input.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().expect("wait berth");
        writer.join().expect("stdin writer");
        out
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "berth {args:?} failed ({:?}):\nstdout: {}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs and asserts failure with `code`; returns stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "berth {args:?}: stdout: {} stderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Imports a busybox rootfs tar as `name`; returns the full image id.
    pub fn import_busybox(&self, name: &str, extra: &[&str]) -> String {
        let tar = busybox_tar(&self.dir);
        let mut args = vec!["import"];
        args.extend_from_slice(extra);
        let tar_s = tar.to_string_lossy().into_owned();
        args.push(&tar_s);
        args.push(name);
        self.ok(&args).trim().to_string()
    }

    /// Names of stored layers (`<root>/layers/<64 hex>`).
    pub fn layer_dirs(&self) -> Vec<String> {
        hex_entries(&self.root().join("layers"))
    }

    /// Stored tar-split descriptions (`<root>/layer-tars/<chain hex>`).
    pub fn layer_tars(&self) -> Vec<String> {
        hex_entries(&self.root().join("layer-tars"))
    }

    /// Stored blobs.
    pub fn blobs(&self) -> Vec<String> {
        hex_entries(&self.root().join("content/sha256"))
    }

    pub fn inspect(&self, name: &str) -> serde_json::Value {
        let out = self.ok(&["image", "inspect", name]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("inspect JSON");
        v[0].clone()
    }

    /// The image's id and its layers' diff ids, from `image inspect`.
    pub fn id_and_layers(&self, name: &str) -> (String, Vec<String>) {
        let v = self.inspect(name);
        let layers = v["RootFS"]["Layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_string())
            .collect();
        (v["Id"].as_str().unwrap().to_string(), layers)
    }
}

/// A Berth with a busybox image imported as `busybox` (for container tests).
pub fn berth(name: &str) -> Berth {
    let b = Berth::new(name);
    b.import_busybox("busybox", &[]);
    b
}

/// `berth inspect C`'s document.
pub fn inspect(b: &Berth, c: &str) -> serde_json::Value {
    let out = b.ok(&["inspect", c]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("inspect JSON");
    v[0].clone()
}

/// Polls `cond` every 50 ms until it holds; fails the test after `timeout`.
pub fn wait_until(what: &str, timeout: std::time::Duration, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + timeout;
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

impl Drop for Berth {
    /// Removes every container the test made (processes, monitors, mounts,
    /// cgroups), also when it failed half-way.
    fn drop(&mut self) {
        if !self.root().join("berth.db").exists() {
            return;
        }
        let out = self.run(&["ps", "-aq", "--no-trunc"]);
        let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids.iter().map(String::as_str));
            let _ = self.run(&args);
        }
        // This root's bridges, nftables table and berth-dns.
        let _ = self.run(&["network", "reset"]);
    }
}

fn hex_entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// A busybox rootfs packed with `tar -C dir -cf` (cached per temp dir).
pub fn busybox_tar(dir: &TempDir) -> PathBuf {
    let tar = dir.join("busybox-rootfs.tar");
    if tar.exists() {
        return tar;
    }
    let rootfs = dir.join("busybox-rootfs");
    berth_testutil::busybox_rootfs(&rootfs).expect("busybox rootfs");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .expect("tar");
    assert!(st.success());
    tar
}

/// A complete header for a regular file (every numeric field set, as real
/// tar writers do).
pub fn file_header(len: usize) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_size(len as u64);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h.set_entry_type(tar::EntryType::Regular);
    h
}

/// An uncompressed layer tar with the given regular files.
pub fn layer_tar(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = file_header(data.len());
        b.append_data(&mut h, path, &data[..]).expect("append");
    }
    b.into_inner().expect("tar")
}

/// Deterministic incompressible bytes (xorshift), `seed` picks the stream.
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

/// An image to put into a test archive.
pub struct TestImage {
    pub layers: Vec<Vec<u8>>,
    pub tags: Vec<String>,
    /// `(created_by, empty_layer)` history steps, oldest first.
    pub history: Vec<(String, bool)>,
    pub labels: Vec<(String, String)>,
}

impl TestImage {
    pub fn new(layers: Vec<Vec<u8>>, tag: &str) -> Self {
        let history = layers
            .iter()
            .enumerate()
            .map(|(i, _)| (format!("/bin/sh -c #(nop) ADD file:{i} in / "), false))
            .collect();
        Self {
            layers,
            tags: vec![tag.to_string()],
            history,
            labels: Vec::new(),
        }
    }

    pub fn config(&self) -> Vec<u8> {
        let diff_ids: Vec<String> = self
            .layers
            .iter()
            .map(|l| Digest::of_bytes(l).to_string())
            .collect();
        let history: Vec<_> = self
            .history
            .iter()
            .map(|(by, empty)| {
                if *empty {
                    json!({"created": "2024-01-01T00:00:00Z", "created_by": by, "empty_layer": true})
                } else {
                    json!({"created": "2024-01-01T00:00:00Z", "created_by": by})
                }
            })
            .collect();
        let labels: serde_json::Map<String, serde_json::Value> = self
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        serde_json::to_vec(&json!({
            "architecture": "amd64",
            "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"], "Labels": labels},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history,
        }))
        .expect("config json")
    }
}

/// How a docker-archive names its members.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `<id>/layer.tar`, `<hex>.json` (docker < 25, podman).
    Legacy,
    /// `blobs/sha256/<hex>` (docker ≥ 25).
    Blobs,
}

/// Writes a docker-archive with `images` to `path`.
pub fn docker_archive(path: &Path, images: &[TestImage], layout: Layout) {
    let mut b = tar::Builder::new(std::fs::File::create(path).expect("create archive"));
    let mut manifest = Vec::new();
    let mut written = std::collections::HashSet::new();
    let mut add = |b: &mut tar::Builder<std::fs::File>, name: &str, data: &[u8]| {
        if written.insert(name.to_string()) {
            let mut h = file_header(data.len());
            b.append_data(&mut h, name, data).expect("append");
        }
    };
    for img in images {
        let config = img.config();
        let config_hex = Digest::of_bytes(&config).hex();
        let config_name = match layout {
            Layout::Legacy => format!("{config_hex}.json"),
            Layout::Blobs => format!("blobs/sha256/{config_hex}"),
        };
        add(&mut b, &config_name, &config);
        let mut layer_names = Vec::new();
        for l in &img.layers {
            let hex = Digest::of_bytes(l).hex();
            let name = match layout {
                Layout::Legacy => format!("{hex}/layer.tar"),
                Layout::Blobs => format!("blobs/sha256/{hex}"),
            };
            add(&mut b, &name, l);
            layer_names.push(name);
        }
        manifest.push(json!({"Config": config_name, "RepoTags": img.tags, "Layers": layer_names}));
    }
    let m = serde_json::to_vec(&manifest).expect("manifest");
    add(&mut b, "manifest.json", &m);
    b.into_inner().expect("finish archive");
}

/// Whether a peer tool is installed (tests that need it are skipped, and
/// say so, when it is not).
pub fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
