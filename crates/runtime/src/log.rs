//! runc's `--log`/`--log-format`: warnings and errors go to stderr and,
//! when a log file is given, also to it (podman reads runtime errors from
//! there, in the JSON format).

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Where messages go, from the global flags.
pub struct Logger {
    pub file: Option<PathBuf>,
    pub format: LogFormat,
    pub debug: bool,
    /// `--log-errors-only`: errors go to `file` alone (when there is one).
    pub errors_only_to_file: bool,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Sets up logging once.
pub fn init(logger: Logger) {
    let _ = LOGGER.set(logger);
}

fn write(level: &str, msg: &str) {
    let Some(logger) = LOGGER.get() else { return };
    let Some(path) = &logger.file else { return };
    let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let line = match logger.format {
        LogFormat::Json => {
            serde_json::json!({ "level": level, "msg": msg, "time": time }).to_string()
        }
        LogFormat::Text => format!("time={time:?} level={level} msg={msg:?}"),
    };
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}

pub fn warn(msg: &str) {
    eprintln!("berth-runtime: warning: {msg}");
    write("warning", msg);
}

pub fn debug(msg: &str) {
    if LOGGER.get().is_some_and(|l| l.debug) {
        eprintln!("berth-runtime: debug: {msg}");
        write("debug", msg);
    }
}

/// Reports a command's fatal error: one line on stderr, and the log file.
pub fn error(msg: &str) {
    let quiet = LOGGER
        .get()
        .is_some_and(|l| l.errors_only_to_file && l.file.is_some());
    if !quiet {
        eprintln!("berth-runtime: {msg}");
    }
    write("error", msg);
}
