//! Shared harness: a private state root and a busybox bundle per test, the
//! runtime binary run as a subprocess, and a guard that force-deletes the
//! container whatever happens to the test.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use berth_testutil::TempDir;
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_berth-runtime");

pub struct Env {
    pub tmp: TempDir,
    pub root: PathBuf,
    pub bundle: PathBuf,
}

/// A container id unique to this test process and call.
pub fn unique_id(name: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{name}-{}-{}-{nanos:x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

impl Env {
    /// A bundle with a busybox rootfs and `berth-runtime spec`'s config,
    /// edited for tests: no terminal, `args` as given.
    pub fn new(name: &str, args: &[&str]) -> Env {
        let tmp = TempDir::new(name).expect("tempdir");
        let root = tmp.join("state");
        let bundle = tmp.join("bundle");
        std::fs::create_dir_all(bundle.join("rootfs")).expect("bundle dir");
        berth_testutil::busybox_rootfs(&bundle.join("rootfs")).expect("busybox rootfs");
        let env = Env { tmp, root, bundle };
        let out = Command::new(BIN)
            .arg("spec")
            .arg("--bundle")
            .arg(&env.bundle)
            .output()
            .expect("spec");
        assert!(
            out.status.success(),
            "spec: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        env.edit(|c| {
            c["process"]["terminal"] = Value::Bool(false);
            c["process"]["args"] = serde_json::json!(args);
            // Tests observe the container through files it writes.
            c["root"]["readonly"] = Value::Bool(false);
            // The busybox image has no /etc/hostname semantics to keep: a
            // recognisable name helps the namespace tests.
            c["hostname"] = Value::String("berth-test".into());
        });
        env
    }

    pub fn config(&self) -> Value {
        serde_json::from_slice(
            &std::fs::read(self.bundle.join("config.json")).expect("read config"),
        )
        .expect("parse config")
    }

    pub fn edit(&self, f: impl FnOnce(&mut Value)) {
        let mut c = self.config();
        f(&mut c);
        std::fs::write(
            self.bundle.join("config.json"),
            serde_json::to_vec_pretty(&c).expect("json"),
        )
        .expect("write config");
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--root").arg(&self.root);
        c
    }

    /// Runs the runtime with `args`, capturing output through files: a
    /// container started by the command inherits its stdio and may keep a
    /// pipe open long after the command exits.
    pub fn rt(&self, args: &[&str]) -> Output {
        run_captured(self.cmd().args(args), &self.tmp)
    }

    /// Runs and asserts success, returning stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.rt(args);
        assert!(
            out.status.success(),
            "berth-runtime {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `run`s the bundle in the foreground with `args` as the process,
    /// returning the exit code and the container's stdout and stderr.
    pub fn run_args(&self, args: &[&str]) -> (Option<i32>, String, String) {
        self.edit(|c| c["process"]["args"] = serde_json::json!(args));
        let id = unique_id("run");
        let _g = self.guard(&id);
        let out = self.rt(&["run", "--bundle", self.bundle_str(), &id]);
        (out.status.code(), stdout(&out), stderr(&out))
    }

    /// Like [`Env::run_args`] for `sh -c script`, asserting exit code 0.
    pub fn sh(&self, script: &str) -> String {
        let (code, out, err) = self.run_args(&["sh", "-c", script]);
        assert_eq!(
            code,
            Some(0),
            "script {script:?} failed: stdout {out:?} stderr {err:?}"
        );
        out
    }

    pub fn bundle_str(&self) -> &str {
        self.bundle.to_str().expect("utf-8 path")
    }

    /// `create` with the bundle, returning a guard that deletes the container.
    pub fn create(&self, id: &str) -> Guard<'_> {
        let guard = Guard {
            env: self,
            id: id.to_string(),
        };
        self.ok(&["create", "--bundle", self.bundle_str(), id]);
        guard
    }

    pub fn guard(&self, id: &str) -> Guard<'_> {
        Guard {
            env: self,
            id: id.to_string(),
        }
    }

    pub fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id])).expect("state json")
    }

    pub fn status(&self, id: &str) -> String {
        self.state(id)["status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Polls until `status` is reached.
    pub fn wait_status(&self, id: &str, status: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = self.status(id);
            if s == status {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{id}: status {s}, expected {status}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A file in the container's rootfs (seen from the host).
    pub fn rootfs(&self, p: &str) -> PathBuf {
        self.bundle.join("rootfs").join(p.trim_start_matches('/'))
    }
}

/// Force-deletes the container on drop (also when the test panics).
pub struct Guard<'a> {
    pub env: &'a Env,
    pub id: String,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        let _ = self.env.rt(&["delete", "--force", &self.id]);
    }
}

/// Reads a file until `pred` holds on its content (or fails after 10s).
pub fn wait_file(path: &Path, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = std::fs::read_to_string(path).unwrap_or_default();
        if pred(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "{}: timed out, content {s:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether any cgroup directory for `id` is left on the host.
pub fn cgroup_leftovers(id: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(top) = std::fs::read_dir("/sys/fs/cgroup") else {
        return found;
    };
    for h in top.flatten() {
        let p = h.path().join("berth").join(id);
        if p.exists() {
            found.push(p);
        }
        let p = h.path().join("unified/berth").join(id);
        if p.exists() {
            found.push(p);
        }
    }
    found
}

/// Runs `cmd` with stdout/stderr in files and waits for it (not for EOF).
pub fn run_captured(cmd: &mut Command, tmp: &TempDir) -> Output {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let out_path = tmp.join(format!(".out{n}"));
    let err_path = tmp.join(format!(".err{n}"));
    let out = std::fs::File::create(&out_path).expect("stdout file");
    let err = std::fs::File::create(&err_path).expect("stderr file");
    let status = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .status()
        .expect("run berth-runtime");
    let o = Output {
        status,
        stdout: std::fs::read(&out_path).unwrap_or_default(),
        stderr: std::fs::read(&err_path).unwrap_or_default(),
    };
    let _ = std::fs::remove_file(out_path);
    let _ = std::fs::remove_file(err_path);
    o
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
