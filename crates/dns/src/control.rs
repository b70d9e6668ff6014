//! The engine's side: start berth-dns or make it reload, and stop it when
//! no network needs it. Every operation holds `<dir>/berth-dns.lock`, so
//! concurrent `berth` commands start one server and never signal a server
//! that is exiting.
//!
//! Readiness: before it signals or starts the server, the engine writes a
//! fresh token to `berth-dns.reload`; the server reads the token, then the
//! network files, applies them (binds new addresses), and writes the token
//! back in `berth-dns.ready`. So when `reload_or_start` returns, the files
//! written before it are being served, and a container started next can
//! query at once.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use std::os::fd::AsFd;

use nix::fcntl::{Flock, FlockArg};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::config::{self, ReadyState, LOCK_FILE, LOG_FILE, PID_FILE, READY_FILE, RELOAD_FILE};
use crate::error::DnsError;

/// How long a reload or a stop may take.
const WAIT: Duration = Duration::from_secs(5);

/// Makes the running berth-dns of `dir` serve the current network files,
/// starting `binary` when none runs (or when the running one does not
/// answer within 5 s: it is killed and replaced). With no network file
/// left, stops it.
///
/// `Err(DnsError::Listen)` means the server runs but could not bind some
/// listen addresses (the others are served).
pub fn reload_or_start(dir: &Path, binary: &Path) -> Result<(), DnsError> {
    std::fs::create_dir_all(dir).map_err(|e| DnsError::io("create directory", dir, e))?;
    let dir = std::fs::canonicalize(dir).map_err(|e| DnsError::io("resolve", dir, e))?;
    let _lock = lock(&dir)?;
    if config::network_files(&dir)?.is_empty() {
        return stop_locked(&dir);
    }
    let token = new_token();
    config::write_atomic(&dir, RELOAD_FILE, format!("{token}\n").as_bytes())?;
    if let Some(pid) = running_pid(&dir) {
        // Watching before signalling: the answer cannot come unseen.
        let watch = watch_ready_file(&dir);
        match kill(Pid::from_raw(pid), Signal::SIGHUP) {
            Ok(()) => match wait_ready(&dir, pid, &token, watch.as_ref()) {
                Reload::Done(state) => return listen_result(state),
                // A new one is started below.
                Reload::Died => {}
                Reload::Hung => {
                    // It does not answer (stopped, deadlocked): a server
                    // that cannot reload cannot serve either; replace it.
                    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                    wait_gone(pid, Duration::from_secs(2));
                }
            },
            Err(nix::errno::Errno::ESRCH) => {}
            Err(source) => return Err(DnsError::Signal { pid, source }),
        }
    }
    start(&dir, binary, &token)
}

/// Stops the berth-dns of `dir` when no network file is left.
pub fn stop_if_idle(dir: &Path) -> Result<(), DnsError> {
    let dir = match std::fs::canonicalize(dir) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(DnsError::io("resolve", dir, e)),
    };
    let _lock = lock(&dir)?;
    if !config::network_files(&dir)?.is_empty() {
        return Ok(());
    }
    stop_locked(&dir)
}

/// The pid of the berth-dns serving `dir`, if one runs.
pub fn running_pid(dir: &Path) -> Option<i32> {
    let dir = std::fs::canonicalize(dir).ok()?;
    let pid = recorded_pid(&dir)?;
    is_server_of(pid, &dir).then_some(pid)
}

/// The pid in the directory's pid file, whatever runs under it now.
fn recorded_pid(dir: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(dir.join(PID_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (pid > 0).then_some(pid)
}

/// Whether `pid` is a live berth-dns started for `dir` (not a zombie, not
/// another program that got the pid after berth-dns died): its arguments
/// hold `--config-dir <dir>`. The program's name is not checked, so a
/// renamed binary (`BERTH_DNS=/opt/x/dns-server`) is recognised too.
fn is_server_of(pid: i32, dir: &Path) -> bool {
    if !any_task_alive(pid) {
        return false;
    }
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let dir = dir.as_os_str().as_encoded_bytes();
    args.windows(2)
        .any(|w| w[0] == b"--config-dir" && w[1] == dir)
}

/// Whether a thread of `pid` still runs. The main thread of a killed
/// multi-threaded process turns zombie before the others are gone, and
/// those still hold its sockets: only when all are gone is the address
/// free for the next server.
fn any_task_alive(pid: i32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|task| {
        std::fs::read_to_string(task.path().join("stat")).is_ok_and(|stat| {
            // The state follows the parenthesised command name.
            let state = stat
                .rsplit_once(") ")
                .and_then(|(_, rest)| rest.chars().next());
            !matches!(state, Some('Z' | 'X') | None)
        })
    })
}

fn lock(dir: &Path) -> Result<Flock<std::fs::File>, DnsError> {
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| DnsError::io("open", &path, e))?;
    Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, errno)| DnsError::io("lock", path, errno.into()))
}

/// Runs `binary`, which returns once its daemon serves (or fails with the
/// reason on stderr).
fn start(dir: &Path, binary: &Path, token: &str) -> Result<(), DnsError> {
    let _ = std::fs::remove_file(dir.join(READY_FILE));
    let output = Command::new(binary)
        .arg("--config-dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|source| DnsError::Spawn {
            binary: binary.to_path_buf(),
            source,
        })?;
    let log = dir.join(LOG_FILE);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let message = stderr
            .lines()
            .map(|l| l.trim().trim_start_matches("berth-dns: "))
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        return Err(DnsError::Start {
            message: if message.is_empty() {
                format!("it exited with {}", output.status)
            } else {
                message
            },
            log,
        });
    }
    match read_ready(dir) {
        Some(state) if state.token == token => listen_result(state),
        _ => Err(DnsError::Start {
            message: "it exited without confirming that it serves".into(),
            log,
        }),
    }
}

/// How a reload request ended.
enum Reload {
    Done(ReadyState),
    Died,
    Hung,
}

/// An inotify watch for the server's ready file, renamed into `dir`.
fn watch_ready_file(dir: &Path) -> Option<Inotify> {
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).ok()?;
    inotify.add_watch(dir, AddWatchFlags::IN_MOVED_TO).ok()?;
    Some(inotify)
}

/// Waits for the server's answer to the reload request `token`: woken by
/// the watch when there is one (the answer arrives in about a millisecond),
/// else by short sleeps.
fn wait_ready(dir: &Path, pid: i32, token: &str, watch: Option<&Inotify>) -> Reload {
    let started = Instant::now();
    loop {
        if let Some(state) = read_ready(dir).filter(|s| s.token == token && s.pid == pid) {
            return Reload::Done(state);
        }
        // Not is_server_of: a dying process loses its command line before
        // it closes its sockets; what counts is that no thread is left.
        if !any_task_alive(pid) {
            return Reload::Died;
        }
        if started.elapsed() > WAIT {
            return Reload::Hung;
        }
        match watch {
            Some(w) => {
                // A timeout too, to notice a server that dies.
                let mut fds = [PollFd::new(w.as_fd(), PollFlags::POLLIN)];
                let _ = poll(&mut fds, PollTimeout::from(20u8));
                let _ = w.read_events();
            }
            None => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

fn read_ready(dir: &Path) -> Option<ReadyState> {
    let data = std::fs::read(dir.join(READY_FILE)).ok()?;
    serde_json::from_slice(&data).ok()
}

fn listen_result(state: ReadyState) -> Result<(), DnsError> {
    if state.listen_failures.is_empty() {
        Ok(())
    } else {
        Err(DnsError::Listen {
            failures: state.listen_failures,
        })
    }
}

/// SIGTERM, then SIGKILL if it lingers; the files of the server removed.
fn stop_locked(dir: &Path) -> Result<(), DnsError> {
    // A server exits on its own when its last network file goes; one caught
    // half-way (its memory, and with it its command line, already gone, its
    // threads and sockets not yet) is waited for too.
    let exiting = recorded_pid(dir).filter(|&pid| {
        any_task_alive(pid)
            && std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.is_empty())
    });
    if let Some(pid) = exiting {
        wait_gone(pid, WAIT);
    }
    if let Some(pid) = running_pid(dir) {
        let target = Pid::from_raw(pid);
        match kill(target, Signal::SIGTERM) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(source) => return Err(DnsError::Signal { pid, source }),
        }
        if !wait_gone(pid, WAIT) {
            let _ = kill(target, Signal::SIGKILL);
            wait_gone(pid, Duration::from_secs(2));
        }
    }
    for name in [PID_FILE, READY_FILE, RELOAD_FILE] {
        let _ = std::fs::remove_file(dir.join(name));
    }
    Ok(())
}

/// Waits until no thread of `pid` (identified as the server before it was
/// signalled) is left, so its sockets are closed.
fn wait_gone(pid: i32, limit: Duration) -> bool {
    let started = Instant::now();
    while any_task_alive(pid) {
        if started.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    true
}

/// A token no earlier request of this directory used.
fn new_token() -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let thread = format!("{:?}", std::thread::current().id());
    let digits: String = thread.chars().filter(char::is_ascii_digit).collect();
    format!("{}-{digits}-{nanos}", std::process::id())
}
