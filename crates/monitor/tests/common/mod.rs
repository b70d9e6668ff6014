//! Shared harness: a busybox bundle, a private runtime root and state dir
//! per test, the real `berth-monitor` started through the client API, and a
//! guard that kills the monitor and force-deletes the container whatever
//! happens to the test.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use berth_monitor::config::{LogConfig, LogDriver, MonitorConfig, RestartPolicy};
use berth_monitor::files;
use berth_testutil::TempDir;
use serde_json::{json, Value};

pub const MONITOR: &str = env!("CARGO_BIN_EXE_berth-monitor");
pub const INIT: &str = env!("CARGO_BIN_EXE_berth-init");
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The OCI runtimes the tests run against.
#[derive(Debug, Clone, Copy)]
pub enum Rt {
    Berth,
    Runc,
}

impl Rt {
    pub fn path(self) -> PathBuf {
        match self {
            Rt::Berth => berth_runtime(),
            Rt::Runc => PathBuf::from("/usr/sbin/runc"),
        }
    }
}

/// `berth-runtime` from the same target dir as this test (`cargo build -p
/// berth-runtime` puts it there), or `$BERTH_RUNTIME`.
pub fn berth_runtime() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_RUNTIME") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test exe");
    // target/<profile>/deps/<test> → target/<profile>/berth-runtime
    let candidate = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("berth-runtime"))
        .expect("target dir");
    assert!(
        candidate.exists(),
        "{} is missing: run `cargo build -p berth-runtime` with the same target dir first \
         (or set BERTH_RUNTIME)",
        candidate.display()
    );
    candidate
}

/// A container id unique to this test process and call, recognisable as berth's.
pub fn unique_id(name: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "berth-mon-{name}-{}-{}-{nanos:x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub struct Ct {
    pub tmp: TempDir,
    pub rt: Rt,
    pub config: MonitorConfig,
}

impl Ct {
    /// A bundle running `args` (no terminal) and a json-file log.
    pub fn new(name: &str, rt: Rt, args: &[&str]) -> Ct {
        let tmp = TempDir::new(name).expect("tempdir");
        let bundle = tmp.join("bundle");
        std::fs::create_dir_all(bundle.join("rootfs")).expect("bundle dir");
        berth_testutil::busybox_rootfs(&bundle.join("rootfs")).expect("busybox rootfs");
        let out = Command::new(berth_runtime())
            .arg("spec")
            .arg("--bundle")
            .arg(&bundle)
            .output()
            .expect("berth-runtime spec");
        assert!(
            out.status.success(),
            "spec: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let id = unique_id(name);
        let config = MonitorConfig {
            id,
            runtime: rt.path(),
            runtime_root: tmp.join("runtime-root"),
            runtime_state_readable: matches!(rt, Rt::Berth),
            bundle,
            state_dir: tmp.join("state"),
            tty: false,
            open_stdin: false,
            stdin_once: false,
            wait_for_attach: false,
            log: LogConfig {
                driver: LogDriver::JsonFile,
                path: tmp.join("ctr.log"),
                max_size: None,
                max_file: 1,
            },
            restart: RestartPolicy::default(),
            health: None,
            exit_command: Vec::new(),
        };
        let ct = Ct { tmp, rt, config };
        ct.edit(|c| {
            c["process"]["terminal"] = Value::Bool(false);
            c["process"]["args"] = json!(args);
            c["root"]["readonly"] = Value::Bool(false);
        });
        ct
    }

    pub fn edit(&self, f: impl FnOnce(&mut Value)) {
        let path = self.config.bundle.join("config.json");
        let mut c: Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read config")).expect("json");
        f(&mut c);
        std::fs::write(&path, serde_json::to_vec_pretty(&c).expect("json")).expect("write");
    }

    pub fn state_dir(&self) -> &Path {
        &self.config.state_dir
    }

    pub fn rootfs(&self, p: &str) -> PathBuf {
        self.config
            .bundle
            .join("rootfs")
            .join(p.trim_start_matches('/'))
    }

    fn write_config(&self) -> PathBuf {
        let path = self.tmp.join("monitor.json");
        std::fs::write(&path, serde_json::to_vec(&self.config).expect("json")).expect("write");
        path
    }

    /// Starts the monitor and waits for its ready report.
    pub fn start(&self) -> Result<i32, berth_monitor::ClientError> {
        let cfg = self.write_config();
        berth_monitor::client::start(Path::new(MONITOR), &cfg, self.state_dir())
    }

    /// Starts the monitor as a standby one (`--standby`), hands it the
    /// config and waits for its ready report.
    pub fn start_standby(&self) -> Result<i32, berth_monitor::ClientError> {
        let standby = berth_monitor::client::StandbyMonitor::start(Path::new(MONITOR))?;
        let cfg = self.write_config();
        standby.launch(&cfg, self.state_dir())?.wait_ready()
    }

    /// Starts the monitor; the report is left for the caller.
    pub fn spawn(&self) -> berth_monitor::client::SpawnedMonitor {
        let cfg = self.write_config();
        berth_monitor::client::spawn(Path::new(MONITOR), &cfg, self.state_dir()).expect("spawn")
    }

    /// `client::wait` with a deadline.
    pub fn wait(&self) -> i32 {
        let dir = self.state_dir().to_path_buf();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(berth_monitor::client::wait(&dir));
        });
        match rx.recv_timeout(TIMEOUT) {
            Ok(r) => r.expect("wait"),
            Err(_) => panic!("container {} did not stop in time", self.config.id),
        }
    }

    pub fn exit_state(&self) -> files::ExitState {
        files::read_exit(self.state_dir())
            .expect("read exit.json")
            .expect("exit.json exists")
    }

    pub fn state(&self) -> files::MonitorState {
        files::read_state(self.state_dir())
            .expect("read state.json")
            .expect("state.json exists")
    }

    /// The runtime's `kill ID SIGNAL`.
    pub fn kill(&self, signal: &str) {
        let out = Command::new(self.rt.path())
            .arg("--root")
            .arg(&self.config.runtime_root)
            .args(["kill", &self.config.id, signal])
            .output()
            .expect("runtime kill");
        assert!(
            out.status.success(),
            "kill: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Every log entry as (stream, text).
    pub fn logs(&self) -> Vec<(String, String)> {
        let mut got = Vec::new();
        let opts = berth_monitor::logs::LogReadOptions {
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        berth_monitor::logs::read(
            &self.config.log,
            &opts,
            &mut |s: berth_monitor::logs::LogStream, d: &[u8]| {
                got.push((
                    s.name().to_string(),
                    String::from_utf8_lossy(d).into_owned(),
                ));
                Ok(())
            },
        )
        .expect("read logs");
        got
    }

    pub fn monitor_pid(&self) -> Option<i32> {
        std::fs::read_to_string(files::path(self.state_dir(), files::MONITOR_PID))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for Ct {
    fn drop(&mut self) {
        if let Some(pid) = self.monitor_pid() {
            if files::monitor_alive(self.state_dir()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        let _ = Command::new(self.rt.path())
            .arg("--root")
            .arg(&self.config.runtime_root)
            .args(["delete", "--force", &self.config.id])
            .output();
    }
}

/// Polls `pred` until it holds or the deadline passes.
pub fn wait_until(what: &str, mut pred: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !pred() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
