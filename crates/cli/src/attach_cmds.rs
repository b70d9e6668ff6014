//! Verbs that stream a container's input and output: attach (and the
//! attached half of `run`/`start -a`), logs and exec.

use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use berth_engine::containers::{ContainerRecord, ExecRequest, Status};
use berth_engine::{Engine, EngineError};
use berth_monitor::client::{AttachOptions, AttachOutcome};
use berth_monitor::logs::{LogReadOptions, LogStream};

use crate::container_args::{AttachArgs, ExecArgs, LogsArgs};
use crate::output::CliError;

/// `--detach-keys`; `None` → the default (ctrl-p ctrl-q).
pub fn parse_detach_keys(keys: Option<&str>) -> anyhow::Result<Option<Vec<u8>>> {
    keys.map(crate::run_args::parse_detach_keys)
        .transpose()
        .map_err(|e| CliError::usage(e.to_string()).into())
}

/// Docker's `CheckTty`: a container terminal fed from a pipe or file would
/// never see an end of input (a terminal reads EOF only as ctrl-d), so
/// `-it` needs a terminal on stdin.
pub fn check_tty(attach_stdin: bool, tty: bool) -> anyhow::Result<()> {
    if attach_stdin && tty && !nix::unistd::isatty(io::stdin()).unwrap_or(false) {
        return Err(CliError::new("the input device is not a TTY").into());
    }
    Ok(())
}

/// Attaches this process's stdio to the container whose monitor state dir
/// is `run_dir`, until it exits or the user detaches. With `take_cleanup`
/// the monitor may leave its exit command's work to this process
/// ([`AttachOutcome::CleanupHandedOver`]).
fn attach_to(
    run_dir: &Path,
    tty: bool,
    stdin: bool,
    detach_keys: Option<Vec<u8>>,
    take_cleanup: bool,
) -> Result<AttachOutcome, berth_monitor::error::ClientError> {
    let opts = AttachOptions {
        stdin: stdin.then(|| Box::new(io::stdin()) as Box<dyn Read + Send>),
        stdout: Box::new(io::stdout()),
        stderr: Box::new(io::stderr()),
        tty,
        detach_keys,
        take_cleanup,
    };
    berth_monitor::client::attach(run_dir, opts)
}

/// Starts a container with this terminal attached from its first byte of
/// output (`run` without `-d`, `start -a`): the monitor waits for the
/// attach connection before it starts the container. Returns the exit code
/// (`None` when detached). A `--rm` container is removed before this
/// returns, by this process when the monitor hands it the exit cleanup
/// (one process less than its exit command).
pub fn start_and_attach(
    engine: &Engine,
    rec: &ContainerRecord,
    stdin: bool,
    detach_keys: Option<Vec<u8>>,
    sig_proxy: bool,
) -> Result<Option<i32>, EngineError> {
    let svc = engine.containers();
    let ticket = svc.start_begin(&rec.id, true)?;
    let _proxy = sig_proxy.then(|| SignalProxy::start(engine, rec.id.clone()));
    let run_dir = ticket.run_dir().to_path_buf();
    let tty = rec.config.tty;
    let take_cleanup = rec.host_config.auto_remove;
    let streamer =
        std::thread::spawn(move || attach_to(&run_dir, tty, stdin, detach_keys, take_cleanup));
    let started = svc.start_finish(ticket);
    let outcome = streamer.join();
    started?;
    match outcome {
        Ok(Ok(AttachOutcome::Exited(code))) => Ok(Some(code)),
        Ok(Ok(AttachOutcome::Detached)) => Ok(None),
        Ok(Ok(AttachOutcome::CleanupHandedOver(code))) => {
            svc.cleanup_handed_over(&rec.id, code)?;
            Ok(Some(code))
        }
        Ok(Err(e)) => {
            // The stream broke, but the container ran: its recorded exit tells.
            tracing::debug!("attach to {}: {e}", rec.id);
            Ok(Some(svc.wait(&rec.id)?))
        }
        Err(_) => Err(EngineError::Corrupt("the attach thread panicked".into())),
    }
}

/// `attach`.
pub fn attach(engine: &Engine, a: AttachArgs) -> anyhow::Result<()> {
    let rec = engine.containers().get(&a.container)?;
    match rec.status {
        Status::Running => {}
        Status::Paused => {
            return Err(
                CliError::new("You cannot attach to a paused container, unpause it first").into(),
            )
        }
        _ => {
            return Err(
                CliError::new("You cannot attach to a stopped container, start it first").into(),
            )
        }
    }
    check_tty(!a.no_stdin, rec.config.tty)?;
    let keys = parse_detach_keys(a.detach_keys.as_deref())?;
    let _proxy =
        (a.sig_proxy && !rec.config.tty).then(|| SignalProxy::start(engine, rec.id.clone()));
    let run_dir = engine.containers().paths(&rec.id).run_dir;
    let outcome = attach_to(
        &run_dir,
        rec.config.tty,
        !a.no_stdin && rec.config.open_stdin,
        keys,
        false,
    )
    .map_err(|e| CliError::new(format!("Error: attaching to {}: {e}", rec.name)))?;
    match outcome {
        // Docker's CLI reports the detach as the escape proxy's error
        // (status 1); scripts tell a detach from an exit by it.
        AttachOutcome::Detached => Err(CliError::new("read escape sequence").into()),
        AttachOutcome::Exited(code) | AttachOutcome::CleanupHandedOver(code) => {
            crate::container_cmds::exit_with(Some(code))
        }
    }
}

/// Forwards the signals the CLI receives to the container (`--sig-proxy`),
/// from a thread that `sigwait`s them while the main thread streams.
/// Dropped, it stops that thread: the command's last step, emptying the
/// removed container's trash, forks when the process is single-threaded
/// (see berth_engine's `detached`) and otherwise has to do it in line.
struct SignalProxy {
    thread: Option<(std::thread::JoinHandle<()>, Arc<AtomicBool>)>,
}

/// The signal that wakes the proxy thread to stop (one it waits for).
const PROXY_WAKE: nix::sys::signal::Signal = nix::sys::signal::Signal::SIGUSR2;

impl SignalProxy {
    fn start(engine: &Engine, id: String) -> Self {
        use nix::sys::signal::{SigSet, Signal};
        let mut set = SigSet::empty();
        for s in [
            Signal::SIGINT,
            Signal::SIGTERM,
            Signal::SIGHUP,
            Signal::SIGQUIT,
            Signal::SIGUSR1,
            PROXY_WAKE,
        ] {
            set.add(s);
        }
        // Blocked in this thread before the helper exists, so the helper
        // (which inherits the mask) is the one that takes them.
        if set.thread_block().is_err() {
            return SignalProxy { thread: None };
        }
        let cfg = engine.config().clone();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            // Opened at the first signal: most runs get none, and opening
            // the state (SQLite's schema and WAL index) costs a millisecond
            // of CPU that the start competes with.
            let mut engine = None;
            while let Ok(sig) = set.wait() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                if engine.is_none() {
                    engine = Engine::open(cfg.clone()).ok();
                }
                if let Some(engine) = &engine {
                    let _ = engine
                        .containers()
                        .kill(&id, Some(&(sig as i32).to_string()));
                }
            }
        });
        SignalProxy {
            thread: Some((thread, stop)),
        }
    }
}

impl Drop for SignalProxy {
    fn drop(&mut self) {
        let Some((thread, stop)) = self.thread.take() else {
            return;
        };
        stop.store(true, Ordering::SeqCst);
        // Pending until the thread waits, if it does not yet: it takes it
        // either way. A user's signal that comes now has no container left
        // to go to.
        use std::os::unix::thread::JoinHandleExt;
        // SAFETY: the handle names a thread that is not joined yet, so its
        // pthread_t is valid.
        if unsafe { libc::pthread_kill(thread.as_pthread_t(), PROXY_WAKE as libc::c_int) } == 0 {
            let _ = thread.join();
        }
    }
}

/// `logs`.
pub fn logs(engine: &Engine, a: LogsArgs) -> anyhow::Result<()> {
    let svc = engine.containers();
    let rec = svc.get(&a.container)?;
    let paths = svc.paths(&rec.id);
    let config = svc.log_config(&rec)?;
    let tail = match a.tail.as_str() {
        "all" | "" => None,
        n => Some(n.parse::<i64>().map_err(|_| {
            CliError::usage(format!(
                "invalid value for \"tail\": {n:?} is not a valid integer"
            ))
        })?)
        .filter(|n| *n >= 0)
        .map(|n| n as usize),
    };
    let options = LogReadOptions {
        follow: a.follow && rec.status.is_active(),
        since: a.since.as_deref().map(parse_time).transpose()?,
        until: a.until.as_deref().map(parse_time).transpose()?,
        tail,
        timestamps: a.timestamps,
        stdout: true,
        stderr: true,
        state_dir: Some(paths.run_dir.clone()),
    };
    let stdout = io::stdout();
    let stderr = io::stderr();
    let mut sink = |stream: LogStream, data: &[u8]| -> io::Result<()> {
        match stream {
            LogStream::Stdout => {
                let mut o = stdout.lock();
                o.write_all(data)?;
                o.flush()
            }
            LogStream::Stderr => {
                let mut e = stderr.lock();
                e.write_all(data)?;
                e.flush()
            }
        }
    };
    match berth_monitor::logs::read(&config, &options, &mut sink) {
        Ok(()) => Ok(()),
        Err(berth_monitor::error::LogError::NoLogs) => Err(CliError::new(format!(
            "Error response from daemon: configured logging driver does not support reading: container {} uses the none log driver",
            rec.name
        ))
        .into()),
        Err(e) => Err(CliError::new(format!("Error: reading logs of {}: {e}", rec.name)).into()),
    }
}

/// Docker's `--since`/`--until`: RFC 3339, Unix seconds (with fraction), or a
/// Go duration before now (`42m`, `1h30m`).
fn parse_time(v: &str) -> anyhow::Result<SystemTime> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Ok(SystemTime::from(t));
    }
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S") {
        return Ok(SystemTime::from(t.and_utc()));
    }
    if let Ok(secs) = v.parse::<f64>() {
        return Ok(SystemTime::UNIX_EPOCH + Duration::from_secs_f64(secs.max(0.0)));
    }
    let ns = crate::run_args::values::go_duration(v).map_err(|_| {
        CliError::usage(format!(
            "invalid value for \"since\": {v:?}: use a timestamp (2013-01-02T13:23:37Z), Unix seconds or a duration (42m)"
        ))
    })?;
    Ok(SystemTime::now() - Duration::from_nanos(u64::try_from(ns).unwrap_or(0)))
}

/// `exec`: runs a command in a running container through its runtime,
/// with this terminal as its stdio.
pub fn exec(engine: &Engine, a: ExecArgs) -> anyhow::Result<()> {
    check_tty(a.interactive, a.tty)?;
    let mut env = Vec::new();
    for file in &a.env_file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| CliError::usage(format!("open {}: {e}", file.display())))?;
        for line in text.lines() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            env.push(expand_env(line));
        }
    }
    env.extend(a.env.iter().map(|e| expand_env(e)));
    let runtime_log = tempfile::Builder::new()
        .prefix("berth-exec-")
        .tempfile()
        .map_err(|e| CliError::new(format!("Error: creating the runtime's log file: {e}")))?;
    let req = ExecRequest {
        command: a.command.clone(),
        env,
        user: a.user.clone(),
        workdir: a.workdir.clone(),
        tty: a.tty,
        detach: a.detach,
        privileged: a.privileged,
        runtime_log: Some(runtime_log.path().to_path_buf()),
    };
    let mut cmd = engine
        .containers()
        .exec_command(&a.container, &req)
        .map_err(|e| match e {
            EngineError::Conflict(m) | EngineError::InvalidArgument(m) => {
                CliError::new(format!("Error response from daemon: {m}"))
            }
            other => CliError::new(format!("Error response from daemon: {other}")),
        })?;
    if !a.interactive && !a.tty {
        cmd.stdin(std::process::Stdio::null());
    }
    let report_errors = cmd
        .get_args()
        .any(|x| x == berth_engine::containers::EXEC_ERRORS_TO_LOG_ONLY);
    let status = cmd
        .status()
        .map_err(|e| CliError::new(format!("Error: running the runtime: {e}")))?;
    if !status.success() {
        // The runtime logs only its own failures (it printed them on stderr
        // too): the process never ran. Docker's codes: 127 not found, 126
        // not executable or any other failure to start it.
        let log = std::fs::read_to_string(runtime_log.path()).unwrap_or_default();
        let errors: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("level=error") || l.contains("\"level\":\"error\""))
            .collect();
        if !errors.is_empty() {
            let errors = errors.join("\n");
            let (message, code) =
                berth_monitor::supervisor::classify_failure(errors.as_bytes(), status);
            let code = if code == 127 { 127 } else { 126 };
            if report_errors {
                // Docker's (and runc's) words around the runtime's reason.
                let reason = message.strip_prefix("container init: ").unwrap_or(&message);
                eprintln!(
                    "OCI runtime exec failed: exec failed: unable to start container process: {reason}: unknown"
                );
            }
            return crate::container_cmds::exit_with(Some(code));
        }
    }
    if a.detach {
        return Ok(());
    }
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1);
    crate::container_cmds::exit_with(Some(code))
}

/// `-e NAME` takes NAME's value from this environment (dropped when unset).
fn expand_env(e: &str) -> String {
    if e.contains('=') {
        return e.to_string();
    }
    match std::env::var(e) {
        Ok(v) => format!("{e}={v}"),
        Err(_) => e.to_string(),
    }
}
