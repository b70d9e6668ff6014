//! berth's per-container monitor, like conmon.
//!
//! For every running container the `berth` CLI starts one `berth-monitor`
//! that outlives the CLI. It starts the container through an OCI runtime's
//! runc-compatible command line (`berth-runtime`, `runc`, `crun`), keeps its
//! stdio, writes its logs, serves attach clients, runs health checks,
//! restarts it by policy, records how it ended and cleans up. One thread,
//! `poll(2)`, no async runtime.
//!
//! # Starting a monitor
//!
//! The engine writes a [`MonitorConfig`] as JSON (`monitor.json`) and calls
//! [`client::start`] (or [`client::spawn`] + [`client::SpawnedMonitor::wait_ready`]):
//!
//! ```text
//! berth-monitor <monitor.json>      fd 3 = write end of the "ready" pipe
//!   read config, create state_dir, bind <state_dir>/attach
//!   fork ─► caller's child exits (0, or 125 if the config was bad)
//!     setsid, fork ─► intermediate exits
//!       stdin/stdout → /dev/null, stderr → <state_dir>/monitor.log
//!       PR_SET_CHILD_SUBREAPER; SIGCHLD etc. through a signalfd
//!       <runtime> --root R run -d --pid-file <state_dir>/container.pid
//!                 [--console-socket <state_dir>/console.sock] --bundle B ID
//!       ready pipe: {"pid":N}                                   (running)
//!               or {"error":"<runtime's message>","exit_code":125|126|127}
//! ```
//!
//! A caller that knows it will start a container but not yet which one (the
//! CLI's `run` and `start`, before they open the state) starts a standby
//! monitor instead ([`client::StandbyMonitor`]), so that the exec and the
//! forks above happen while it prepares the container:
//!
//! ```text
//! berth-monitor --standby           fd 3 = ready pipe, fd 4 = read end of the "go" pipe
//!   fork ─► caller's child exits; setsid, fork ─► intermediate exits
//!     waits for one line on fd 4: the path of monitor.json (end of input: exits 0)
//!     read config, create state_dir, bind <state_dir>/attach
//!     ready pipe: {"listening":true}                          (socket bound)
//!     … as above: {"pid":N} or {"error":…}
//! ```
//!
//! Exit codes follow Docker: 127 when the runtime says the program was not
//! found, 126 when it is not executable, 125 for any other failure. After a
//! failed first start the monitor deletes the container (`delete --force`),
//! writes `exit.json` and exits without running the exit command (the
//! caller was told). With [`MonitorConfig::wait_for_attach`] the container
//! starts only once a client connected, so a foreground `run` sees all of
//! its output. A second monitor for a state dir whose monitor still runs is
//! refused (125); a new one clears the previous run's `exit.json`,
//! `health.json` and `stopping`.
//!
//! # Config
//!
//! See [`MonitorConfig`]: `id`, `runtime`, `runtime_root`, `bundle`,
//! `state_dir`, `tty`, `open_stdin`, `stdin_once`, `wait_for_attach`, `log`
//! ([`LogConfig`]: driver `json-file` | `local` | `none`, `path`,
//! `max_size`, `max_file`), `restart` ([`RestartPolicy`]: `no`, `always`,
//! `unless-stopped`, `on-failure` with `max_retries`), `health`
//! ([`HealthConfig`], Docker's `Healthcheck` with durations in ns) and
//! `exit_command`.
//!
//! # Files
//!
//! [`files`] lists the state dir's files: `state.json` ([`files::MonitorState`],
//! rewritten atomically on every change), `exit.json` ([`files::ExitState`],
//! once the container stopped for good), `health.json`
//! ([`files::HealthState`], Docker's `State.Health`), `monitor.pid`,
//! `container.pid`, the `attach` socket, and `stopping`, which the engine
//! creates before it signals a stop so that the exit does not restart the
//! container.
//!
//! # Lifecycle
//!
//! On the container's exit (waitpid; other children are reaped too) the
//! monitor drains its output, reads the OOM-kill counter of its memory
//! cgroup (v1, hybrid or v2) and records exit code (128+n for signal n),
//! `oom_killed` and the times. If the restart policy asks for it and
//! `stopping` is absent, it runs `<runtime> delete --force ID`, waits
//! (100 ms doubling to 1 min, reset after a run of 10 s) and runs the
//! container again. Once it stopped for good: `exit.json`, then the runtime's
//! `delete` and the exit command (`BERTH_EXIT_CODE=<code>`) side by side,
//! both waited for, the exit frame to every attach client, the socket
//! removed, the monitor exits.
//!
//! # Attach
//!
//! [`protocol`] documents the frames on the SOCK_SEQPACKET socket;
//! [`client::attach`] is the CLI's side (raw terminal, SIGWINCH as resize
//! frames, detach keys), [`client::wait`] gives `berth wait` the exit code,
//! also after the monitor is gone.
//!
//! # Logs
//!
//! [`logs`] documents the formats and rotation; [`logs::read`] serves
//! `berth logs` (rotated files, `--since/--until/--tail/--timestamps`,
//! `--follow` across rotation until the container stopped for good).
//!
//! # Memory
//!
//! Both binaries are linked as static PIEs by the ordinary `cargo build`
//! (see `build.rs`), and after a second without events the monitor drops
//! its code pages from its page tables before it blocks
//! (`supervisor::trim`). Measured on the 2-core dev VM (kernel 6.18,
//! release build, binary in the page cache) from `/proc/<pid>/smaps_rollup`
//! for the monitor of a `sleep` container (json-file log, no clients), next
//! to conmon 2.1.6 driving runc:
//!
//! | | RSS | PSS | anonymous |
//! |---|---|---|---|
//! | conmon 2.1.6, idle | 1964 kB | 979 kB | 328 kB |
//! | berth-monitor, idle, alone | 240 kB | 236 kB | 100 kB |
//! | berth-monitor, idle, each of three | 240–244 kB | 164–184 kB | 100–104 kB |
//! | berth-monitor, idle again after 20 lines | 276 kB | 185 kB | 136 kB |
//! | berth-monitor, logging 20 lines/s | 1332 kB | 1180 kB | 136 kB |
//! | static, no trimming, idle | 1208 kB | 1204 kB | 136 kB |
//! | dynamic glibc, trimmed once, idle | 1220 kB | 412 kB | 180 kB |
//!
//! A dynamic build counts the shared libc's pages in its RSS; without the
//! trimming a static one keeps ~1 MiB of start-up text resident.

pub mod client;
pub mod config;
pub mod error;
pub mod files;
pub mod logs;
pub mod protocol;
pub mod sockaddr;
mod spawn_unwaited;
pub mod supervisor;
pub mod timefmt;

pub use config::{
    HealthConfig, LogConfig, LogDriver, MonitorConfig, RestartPolicy, RestartPolicyName,
    EXIT_CODE_ENV, RUNTIME_DELETE_ENV,
};
pub use error::{ClientError, LogError, MonitorError};
