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
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::os::fd::AsFd;

use crate::config::{
    self, ReadyState, DNS_PORT, LOCK_FILE, LOG_FILE, PID_FILE, READY_FILE, RELOAD_FILE,
};
use catalog::Catalog;
use listener::{Bound, Listener, Shared};
use log::Log;

/// How often the server checks whether it is still needed (besides the
/// directory watch), and gives back the heap of a burst.
const IDLE_CHECK: Duration = Duration::from_secs(30);

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
    signals: SignalFd,
    /// The directory watch: the server exits at once when its runroot is
    /// removed or its last network file goes. Without it (inotify limits),
    /// the periodic check does the same, later.
    watch: Option<Inotify>,
}

/// Runs the server; returns when it is told to stop or is no longer needed.
/// Without `foreground`, the calling process exits once the daemon is
/// serving (or with status 1 if it could not start).
pub fn run(options: Options) -> Result<(), ServerError> {
    let dir = std::fs::canonicalize(&options.dir).map_err(os("resolve the config directory"))?;
    block_signals()?;
    limit_malloc_arenas();
    if !options.foreground {
        close_inherited_fds();
    }
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

    // Both before the server says it is ready: a signal or a removal right
    // after `reload_or_start` returns must be seen.
    let signals = SignalFd::with_flags(
        &signal_set(),
        SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK,
    )
    .map_err(|e| ServerError::Os {
        action: "signalfd",
        source: e.into(),
    })?;
    let watch = match watch_directory(&dir) {
        Ok(w) => Some(w),
        Err(e) => {
            log.problem("inotify", &format!("cannot watch {}: {e}", dir.display()));
            None
        }
    };
    let mut server = Server {
        dir: dir.clone(),
        port: options.port,
        shared: Arc::new(Shared::new(log)),
        listeners: HashMap::new(),
        log,
        signals,
        watch,
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
    server.event_loop();
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

    /// Waits for signals, for changes of the directory, and every
    /// [`IDLE_CHECK`] checks whether it is still needed.
    fn event_loop(&mut self) {
        let timeout = PollTimeout::try_from(IDLE_CHECK).unwrap_or(PollTimeout::MAX);
        loop {
            let mut fds = vec![PollFd::new(self.signals.as_fd(), PollFlags::POLLIN)];
            if let Some(w) = &self.watch {
                fds.push(PollFd::new(w.as_fd(), PollFlags::POLLIN));
            }
            let ready = match poll(&mut fds, timeout) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    self.log.problem("poll", &format!("poll: {e}"));
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            };
            let is_ready = |i: usize| {
                fds.get(i)
                    .and_then(PollFd::revents)
                    .is_some_and(|r| !r.is_empty())
            };
            let (signal_ready, watch_ready) = (is_ready(0), is_ready(1));
            drop(fds);
            if ready == 0 {
                if let Some(reason) = self.idle_reason() {
                    self.log.info(&format!("stopping: {reason}"));
                    return;
                }
                release_free_memory();
                continue;
            }
            if signal_ready {
                while let Ok(Some(info)) = self.signals.read_signal() {
                    match i32::try_from(info.ssi_signo).unwrap_or(0) {
                        libc::SIGHUP => {
                            let token = read_token(&self.dir);
                            let failures = self.reload();
                            if let Err(e) = self.write_ready(&token, failures) {
                                self.log
                                    .problem("ready", &format!("write the ready file: {e}"));
                            }
                        }
                        libc::SIGTERM | libc::SIGINT => {
                            self.log.info("stopping (signal)");
                            self.shutdown(true);
                            return;
                        }
                        _ => {}
                    }
                }
            }
            if watch_ready {
                let events = match &self.watch {
                    Some(w) => w.read_events().unwrap_or_default(),
                    None => Vec::new(),
                };
                let gone = AddWatchFlags::IN_DELETE_SELF
                    | AddWatchFlags::IN_MOVE_SELF
                    | AddWatchFlags::IN_IGNORED;
                if events.iter().any(|e| e.mask.intersects(gone)) {
                    self.log.info("stopping: its directory was removed");
                    self.shutdown(false);
                    return;
                }
                let relevant = events.iter().any(|e| {
                    e.name.as_ref().is_some_and(|n| {
                        let n = n.to_string_lossy();
                        n == PID_FILE || (n.ends_with(".json") && !n.starts_with('.'))
                    })
                });
                if relevant {
                    if let Some(reason) = self.idle_reason() {
                        self.log.info(&format!("stopping: {reason}"));
                        return;
                    }
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

fn watch_directory(dir: &Path) -> nix::Result<Inotify> {
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)?;
    inotify.add_watch(
        dir,
        AddWatchFlags::IN_DELETE_SELF
            | AddWatchFlags::IN_MOVE_SELF
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_MOVED_FROM,
    )?;
    Ok(inotify)
}

/// Closes every descriptor above stderr that the caller let the server
/// inherit (a test harness's pipe, a shell's descriptors): a daemon holding
/// them would keep pipes open for as long as it runs.
fn close_inherited_fds() {
    // SAFETY: close_range closes descriptors only; none above 2 is in use
    // by this process yet (run() calls this before it opens anything).
    unsafe {
        libc::close_range(3, libc::c_uint::MAX, 0);
    }
}

fn signal_set() -> SigSet {
    let mut set = SigSet::empty();
    for sig in [Signal::SIGHUP, Signal::SIGTERM, Signal::SIGINT] {
        set.add(sig);
    }
    set
}

/// Blocks the signals the main loop reads from its signalfd, before any
/// thread exists (threads inherit the mask, so no handler ever runs).
fn block_signals() -> Result<(), ServerError> {
    signal_set().thread_block().map_err(|e| ServerError::Os {
        action: "block signals",
        source: e.into(),
    })
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
