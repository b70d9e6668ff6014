//! The berth-dns process: loads the network files, binds a UDP and a TCP
//! socket on each listen address, answers, forwards; reloads on SIGHUP,
//! exits on SIGTERM/SIGINT, and by itself once no network file is left.
//!
//! Threads and blocking sockets, no async runtime: the load is a few
//! queries per container start, and the process must stay small (it runs
//! for as long as any user network has a container).

pub mod answer;
pub mod catalog;
pub mod forward;
pub mod listener;
pub mod log;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};

use crate::config::{
    self, ReadyState, DNS_PORT, LOCK_FILE, LOG_FILE, PID_FILE, READY_FILE, RELOAD_FILE,
};
use catalog::Catalog;
use listener::{Bound, Listener, Shared};
use log::Log;

/// How often the server checks whether it is still needed
/// (`BERTH_DNS_IDLE_CHECK_MS` overrides it, for tests).
const IDLE_CHECK: Duration = Duration::from_secs(30);

fn idle_check() -> Duration {
    std::env::var("BERTH_DNS_IDLE_CHECK_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(IDLE_CHECK, Duration::from_millis)
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{0}")]
    Config(#[from] crate::error::DnsError),
    #[error("no network files in {0}: nothing to serve")]
    NothingToServe(PathBuf),
    #[error("cannot listen on any address: {}", .0.join("; "))]
    NoListener(Vec<String>),
    #[error("{action}: {source}")]
    Os {
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
}

fn os(action: &'static str) -> impl FnOnce(std::io::Error) -> ServerError {
    move |source| ServerError::Os { action, source }
}

/// How the process runs.
pub struct Options {
    pub dir: PathBuf,
    /// Stay in the foreground, logging to stderr (for debugging).
    pub foreground: bool,
    /// The port of the listen addresses (53; another only for experiments).
    pub port: u16,
}

impl Options {
    pub fn new(dir: PathBuf) -> Self {
        Options {
            dir,
            foreground: false,
            port: DNS_PORT,
        }
    }
}

struct Server {
    dir: PathBuf,
    port: u16,
    shared: Arc<Shared>,
    listeners: HashMap<IpAddr, Listener>,
    log: &'static Log,
}

/// Runs the server; returns when it is told to stop or is no longer needed.
/// Without `foreground`, the calling process exits once the daemon is
/// serving (or with status 1 if it could not start).
pub fn run(options: Options) -> Result<(), ServerError> {
    let dir = std::fs::canonicalize(&options.dir).map_err(os("resolve the config directory"))?;
    block_signals()?;
    limit_malloc_arenas();
    let log = Log::new((!options.foreground).then(|| dir.join(LOG_FILE)));

    // Everything that can fail for a reason the engine should report is
    // done before the fork, while stderr is still the engine's pipe.
    let token = read_token(&dir);
    let (networks, errors) = config::read_all(&dir)?;
    if networks.is_empty() {
        return Err(match errors.into_iter().next() {
            Some(e) => ServerError::Config(e),
            None => ServerError::NothingToServe(dir),
        });
    }
    for e in &errors {
        eprintln!("berth-dns: skipping a network: {e}");
    }
    let (catalog, problems) = Catalog::new(&networks);
    for p in &problems {
        eprintln!("berth-dns: {p}");
    }
    let mut bound = Vec::new();
    let mut failures = Vec::new();
    for addr in catalog.listen_addrs() {
        match listener::bind(addr, options.port) {
            Ok(b) => bound.push(b),
            Err(e) => failures.push(e),
        }
    }
    if bound.is_empty() {
        return Err(ServerError::NoListener(failures));
    }

    let notify = if options.foreground {
        None
    } else {
        Some(daemonize(&dir)?)
    };

    let mut server = Server {
        dir: dir.clone(),
        port: options.port,
        shared: Arc::new(Shared::new(log)),
        listeners: HashMap::new(),
        log,
    };
    config::write_atomic(
        &dir,
        PID_FILE,
        format!("{}\n", std::process::id()).as_bytes(),
    )?;
    server.install(catalog, bound);
    for f in &failures {
        log.problem(f, &format!("cannot listen on {f}"));
    }
    server.write_ready(&token, failures)?;
    log.info(&format!(
        "serving {} network(s) from {}",
        networks.len(),
        dir.display()
    ));
    if let Some(mut notify) = notify {
        // The engine's `reload_or_start` returns once this arrives.
        let _ = notify.write_all(b"1");
    }
    server.signal_loop();
    Ok(())
}

impl Server {
    /// Publishes `catalog` and serves the newly bound addresses.
    fn install(&mut self, catalog: Catalog, bound: Vec<Bound>) {
        let addrs: Vec<IpAddr> = catalog.listen_addrs().collect();
        self.shared.forwarder.set_own_addrs(addrs);
        match self.shared.catalog.write() {
            Ok(mut c) => *c = Arc::new(catalog),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(catalog),
        }
        self.install_listeners(bound);
    }

    /// Re-reads the network files and applies them; returns the addresses
    /// that could not be bound.
    fn reload(&mut self) -> Vec<String> {
        let (networks, errors) = match config::read_all(&self.dir) {
            Ok(r) => r,
            Err(e) => {
                self.log.problem("read-dir", &format!("reload: {e}"));
                return Vec::new();
            }
        };
        for e in errors {
            let message = format!("skipping a network: {e}");
            self.log.problem(&message, &message);
        }
        let (catalog, problems) = Catalog::new(&networks);
        for p in problems {
            self.log.problem(&p, &p);
        }
        let wanted: Vec<IpAddr> = catalog.listen_addrs().collect();
        let gone: Vec<IpAddr> = self
            .listeners
            .keys()
            .filter(|a| !wanted.contains(a))
            .copied()
            .collect();
        // The new catalog first: a listener about to stop answers REFUSED
        // rather than stale names.
        let mut bound = Vec::new();
        let mut failures = Vec::new();
        self.install(catalog, Vec::new());
        for addr in gone {
            if let Some(l) = self.listeners.remove(&addr) {
                l.stop();
            }
        }
        for addr in wanted {
            if self.listeners.contains_key(&addr) {
                continue;
            }
            match listener::bind(addr, self.port) {
                Ok(b) => bound.push(b),
                Err(e) => {
                    self.log.problem(&e, &format!("cannot listen on {e}"));
                    failures.push(e);
                }
            }
        }
        self.install_listeners(bound);
        self.log.debug(&format!(
            "reloaded: {} network(s), listening on {:?}",
            networks.len(),
            self.listeners.keys().collect::<Vec<_>>()
        ));
        failures
    }

    fn install_listeners(&mut self, bound: Vec<Bound>) {
        for b in bound {
            let addr = b.addr();
            match Listener::spawn(b, self.shared.clone()) {
                Ok(l) => {
                    self.listeners.insert(addr, l);
                }
                Err(e) => self.log.problem(
                    &format!("spawn-{addr}"),
                    &format!("{addr}: cannot start its thread: {e}"),
                ),
            }
        }
    }

    fn write_ready(&self, token: &str, listen_failures: Vec<String>) -> Result<(), ServerError> {
        let state = ReadyState {
            pid: std::process::id() as i32,
            token: token.to_string(),
            listen_failures,
        };
        let json = serde_json::to_vec(&state).map_err(|e| ServerError::Os {
            action: "encode the ready state",
            source: std::io::Error::other(e),
        })?;
        config::write_atomic(&self.dir, READY_FILE, &json)?;
        Ok(())
    }

    fn signal_loop(&mut self) {
        let idle_check = idle_check();
        loop {
            match wait_signal(idle_check) {
                Some(libc::SIGHUP) => {
                    let token = read_token(&self.dir);
                    let failures = self.reload();
                    if let Err(e) = self.write_ready(&token, failures) {
                        self.log
                            .problem("ready", &format!("write the ready file: {e}"));
                    }
                }
                Some(libc::SIGTERM | libc::SIGINT) => {
                    self.log.info("stopping (signal)");
                    self.shutdown(true);
                    return;
                }
                Some(_) => {}
                None => {
                    if let Some(reason) = self.idle_reason() {
                        self.log.info(&format!("stopping: {reason}"));
                        return;
                    }
                    release_free_memory();
                }
            }
        }
    }

    /// Why the server should exit now, if it should (and then it has shut
    /// down already): its directory or pid file is gone or names another
    /// process, or no network file is left. The last is checked under the
    /// engine's lock, so a `reload_or_start` writing a new network file
    /// either sees this process gone or gets its reload answered.
    fn idle_reason(&mut self) -> Option<&'static str> {
        let ours = std::fs::read_to_string(self.dir.join(PID_FILE))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            == Some(std::process::id());
        if !ours {
            self.shutdown(false);
            return Some("the pid file is gone or names another process");
        }
        if !config::network_files(&self.dir).map_or(true, |f| f.is_empty()) {
            return None;
        }
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join(LOCK_FILE))
            .ok()?;
        // Not blocking: the engine may hold the lock while it waits for
        // this very process to answer a reload.
        let _guard = Flock::lock(lock, FlockArg::LockExclusiveNonblock).ok()?;
        if !config::network_files(&self.dir).map_or(true, |f| f.is_empty()) {
            return None;
        }
        self.shutdown(true);
        Some("no network files left")
    }

    /// Closes every listener; removes the pid and ready files when they are
    /// this process's.
    fn shutdown(&mut self, remove_files: bool) {
        for (_, l) in self.listeners.drain() {
            l.stop();
        }
        if !remove_files {
            return;
        }
        let pid_file = self.dir.join(PID_FILE);
        let ours = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            == Some(std::process::id());
        if ours {
            let _ = std::fs::remove_file(self.dir.join(READY_FILE));
            let _ = std::fs::remove_file(pid_file);
        }
    }
}

/// One malloc arena instead of glibc's default of one per thread (up to
/// 8 per core): the short-lived forwarding and TCP threads would each
/// leave an arena's pages resident. Contention is no concern at the
/// rates a container network sees (see README.md for the numbers).
fn limit_malloc_arenas() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only changes allocator tuning; it is called before
    // any thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Gives the heap left free by a burst of queries back to the kernel
/// (glibc keeps it otherwise).
fn release_free_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns free heap pages to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn read_token(dir: &Path) -> String {
    std::fs::read_to_string(dir.join(RELOAD_FILE))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn signal_set() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise and fill the zeroed set we
    // own; the signal numbers are valid.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGHUP, libc::SIGTERM, libc::SIGINT] {
            libc::sigaddset(&mut set, sig);
        }
        set
    }
}

/// Blocks the signals the main thread waits for, before any thread exists
/// (threads inherit the mask, so only `sigtimedwait` ever sees them).
fn block_signals() -> Result<(), ServerError> {
    let set = signal_set();
    // SAFETY: set is a valid initialised sigset; no old mask is requested.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(ServerError::Os {
            action: "block signals",
            source: std::io::Error::from_raw_os_error(rc),
        });
    }
    Ok(())
}

/// The next of SIGHUP/SIGTERM/SIGINT, or `None` after `timeout`.
fn wait_signal(timeout: Duration) -> Option<i32> {
    let set = signal_set();
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    // SAFETY: set and ts are valid for the call; no siginfo is requested.
    let sig = unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &ts) };
    (sig > 0).then_some(sig)
}

/// Forks; the parent waits until the child reports it is serving, then
/// exits (0), or exits 1 when the child dies first. The child starts a
/// session, leaves the caller's cwd, and writes its output to the log.
/// Called before any thread exists.
fn daemonize(dir: &Path) -> Result<UnixStream, ServerError> {
    let (mut parent_end, child_end) = UnixStream::pair().map_err(os("create the start-up pipe"))?;
    let log_path = dir.join(LOG_FILE);
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(os("open the log file"))?;
    let null = std::fs::File::open("/dev/null").map_err(os("open /dev/null"))?;
    // SAFETY: the process has one thread here (run() spawns none before),
    // so the child may run arbitrary code after the fork.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Parent { .. }) => {
            drop(child_end);
            let mut byte = [0u8; 1];
            let started = matches!(parent_end.read(&mut byte), Ok(1));
            if !started {
                eprintln!(
                    "berth-dns exited during start-up; see {}",
                    log_path.display()
                );
            }
            std::process::exit(if started { 0 } else { 1 });
        }
        Ok(nix::unistd::ForkResult::Child) => {}
        Err(e) => {
            return Err(ServerError::Os {
                action: "fork",
                source: e.into(),
            })
        }
    }
    drop(parent_end);
    nix::unistd::setsid().map_err(|e| ServerError::Os {
        action: "setsid",
        source: e.into(),
    })?;
    let _ = std::env::set_current_dir("/");
    let redirect = nix::unistd::dup2_stdin(&null)
        .and_then(|()| nix::unistd::dup2_stdout(&log_file))
        .and_then(|()| nix::unistd::dup2_stderr(&log_file));
    redirect.map_err(|e| ServerError::Os {
        action: "redirect stdio to the log",
        source: e.into(),
    })?;
    Ok(child_end)
}
