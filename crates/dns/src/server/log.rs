//! berth-dns's log: its stderr, which the daemon points at
//! `<dir>/berth-dns.log`. One line per problem, the same problem at most
//! once a minute (an unreachable upstream must not write a line per
//! query); one line per query only with `BERTH_DNS_DEBUG` set.

use std::collections::HashMap;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// The same problem is logged again after this long.
const REPEAT_AFTER: Duration = Duration::from_secs(60);
/// The log is rotated (one old copy, `.1`) past this size.
const MAX_LOG_BYTES: u64 = 1 << 20;

pub struct Log {
    debug: bool,
    state: Mutex<LogState>,
}

struct LogState {
    seen: HashMap<String, Instant>,
    /// The file behind stderr, when the daemon has one: rotated by size.
    file: Option<PathBuf>,
    written: u64,
}

impl Log {
    /// The process's log (leaked: it lives as long as the process).
    pub fn new(file: Option<PathBuf>) -> &'static Log {
        let written = file
            .as_ref()
            .and_then(|f| std::fs::metadata(f).ok())
            .map_or(0, |m| m.len());
        Box::leak(Box::new(Log {
            debug: std::env::var_os("BERTH_DNS_DEBUG").is_some_and(|v| !v.is_empty() && v != "0"),
            state: Mutex::new(LogState {
                seen: HashMap::new(),
                file,
                written,
            }),
        }))
    }

    pub fn debug_enabled(&self) -> bool {
        self.debug
    }

    /// Logs `message` unless the problem `key` was logged within a minute.
    pub fn problem(&self, key: &str, message: &str) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let now = Instant::now();
        if state
            .seen
            .get(key)
            .is_some_and(|at| now.duration_since(*at) < REPEAT_AFTER)
        {
            return;
        }
        state.seen.insert(key.to_string(), now);
        if state.seen.len() > 1024 {
            state
                .seen
                .retain(|_, at| now.duration_since(*at) < REPEAT_AFTER);
        }
        state.write(message);
    }

    /// Logs `message` every time (lifecycle events).
    pub fn info(&self, message: &str) {
        if let Ok(mut state) = self.state.lock() {
            state.write(message);
        }
    }

    pub fn debug(&self, message: &str) {
        if self.debug {
            self.info(message);
        }
    }
}

impl LogState {
    fn write(&mut self, message: &str) {
        let line = format!(
            "{} berth-dns[{}]: {message}\n",
            timestamp(),
            std::process::id()
        );
        let mut stderr = std::io::stderr().lock();
        let _ = stderr.write_all(line.as_bytes());
        self.written += line.len() as u64;
        if self.written > MAX_LOG_BYTES {
            if let Some(path) = &self.file {
                rotate(path);
            }
            self.written = 0;
        }
    }
}

/// Moves the log to `<log>.1` and points stderr at a new, empty log.
fn rotate(path: &std::path::Path) {
    let mut old = path.as_os_str().to_owned();
    old.push(".1");
    if std::fs::rename(path, &old).is_err() {
        return;
    }
    if let Ok(file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        // SAFETY: dup2 onto fd 2 with a valid open fd; the old fd 2 is
        // closed atomically by dup2 and nothing holds a raw copy of it.
        unsafe { libc::dup2(file.as_raw_fd(), 2) };
    }
}

/// UTC time as `2026-11-23T09:41:07Z`.
fn timestamp() -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86400, secs % 86400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamp_shape() {
        let t = super::timestamp();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z'), "{t}");
    }
}
