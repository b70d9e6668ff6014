//! Reading logs back for `berth logs`: rotated files, filters, `--tail` and
//! `--follow` across rotation.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::{decode_records, LogEntry, LogStream};
use crate::config::{LogConfig, LogDriver};
use crate::error::LogError;
use crate::timefmt;

/// What `berth logs` asks for.
#[derive(Debug, Clone, Default)]
pub struct LogReadOptions {
    /// Keep reading new output until the container stopped for good.
    pub follow: bool,
    /// Only entries at or after this time.
    pub since: Option<SystemTime>,
    /// Only entries before this time.
    pub until: Option<SystemTime>,
    /// Only the last this many entries (of those passing the filters).
    pub tail: Option<usize>,
    /// Prefix each entry with its time (`2026-11-23T06:00:00.123456789Z `).
    pub timestamps: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// The container's monitor state dir: following stops once `exit.json`
    /// exists or the monitor is gone. Without it, following ends only when
    /// the sink fails.
    pub state_dir: Option<PathBuf>,
}

/// Receives log output, one entry (timestamp prefix included) at a time.
pub trait LogSink {
    fn write(&mut self, stream: LogStream, data: &[u8]) -> std::io::Result<()>;
}

impl<F: FnMut(LogStream, &[u8]) -> std::io::Result<()>> LogSink for F {
    fn write(&mut self, stream: LogStream, data: &[u8]) -> std::io::Result<()> {
        self(stream, data)
    }
}

const FOLLOW_POLL: Duration = Duration::from_millis(100);
const CHUNK: usize = 64 * 1024;

/// Reads the container's log as `options` say, passing entries to `sink`.
pub fn read(
    config: &LogConfig,
    options: &LogReadOptions,
    sink: &mut dyn LogSink,
) -> Result<(), LogError> {
    if config.driver == LogDriver::None {
        return Err(LogError::NoLogs);
    }
    let mut out = Output {
        options,
        sink,
        tail: options.tail.map(|n| VecDeque::with_capacity(n.min(4096))),
        done: false,
    };
    // Open the current file before reading the rotated ones: a rotation in
    // between then shows some entries twice instead of losing them.
    let mut current = FileCursor::open(&config.path, config.driver)?;
    for path in rotated_files(&config.path) {
        if let Some(mut cursor) = FileCursor::open(&path, config.driver)? {
            cursor.read_available(&mut out)?;
        }
    }
    if let Some(cursor) = current.as_mut() {
        cursor.read_available(&mut out)?;
    }
    out.flush_tail()?;
    if !options.follow || out.done {
        return Ok(());
    }
    loop {
        // Decide before reading so that output written before the exit is
        // read once more after it was seen.
        let finished = options.state_dir.as_deref().is_some_and(container_finished);
        if let Some(cursor) = current.as_mut() {
            cursor.read_available(&mut out)?;
        }
        if let Some(next) = rotated_away(current.as_ref(), &config.path, config.driver)? {
            // Files rotated in since the last look (several rotations can
            // happen between two polls) come before the new current file.
            if let Some(old) = &current {
                for path in rotated_after(&config.path, old.dev, old.ino) {
                    if let Some(mut cursor) = FileCursor::open(&path, config.driver)? {
                        cursor.read_available(&mut out)?;
                    }
                }
            }
            current = next;
            if let Some(cursor) = current.as_mut() {
                cursor.read_available(&mut out)?;
            }
        }
        if finished || out.done {
            return Ok(());
        }
        std::thread::sleep(FOLLOW_POLL);
    }
}

/// When the file at `path` is no longer the one `current` reads, the new
/// file (after `current` was read to its end).
fn rotated_away(
    current: Option<&FileCursor>,
    path: &Path,
    driver: LogDriver,
) -> Result<Option<Option<FileCursor>>, LogError> {
    let on_disk = match std::fs::metadata(path) {
        Ok(m) => Some((m.dev(), m.ino(), m.len())),
        Err(_) => None,
    };
    let changed = match (current, on_disk) {
        (Some(c), Some((dev, ino, len))) => c.dev != dev || c.ino != ino || len < c.offset,
        (None, Some(_)) => true,
        (_, None) => false,
    };
    if !changed {
        return Ok(None);
    }
    Ok(Some(FileCursor::open(path, driver)?))
}

fn container_finished(state_dir: &Path) -> bool {
    crate::files::path(state_dir, crate::files::EXIT).exists()
        || !crate::files::monitor_alive(state_dir)
}

/// The rotated files newer than the one with `dev`/`ino`, oldest first;
/// none when that file is no longer among them (truncated or removed).
fn rotated_after(path: &Path, dev: u64, ino: u64) -> Vec<PathBuf> {
    let files = rotated_files(path);
    let Some(pos) = files
        .iter()
        .position(|p| std::fs::metadata(p).is_ok_and(|m| m.dev() == dev && m.ino() == ino))
    else {
        return Vec::new();
    };
    files[pos + 1..].to_vec()
}

/// `<path>.N` … `<path>.1`, oldest first.
fn rotated_files(path: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for n in 1.. {
        let mut p = path.as_os_str().to_owned();
        p.push(format!(".{n}"));
        let p = PathBuf::from(p);
        if !p.exists() {
            break;
        }
        files.push(p);
    }
    files.reverse();
    files
}

struct FileCursor {
    file: File,
    path: PathBuf,
    driver: LogDriver,
    dev: u64,
    ino: u64,
    /// Bytes consumed as whole records.
    offset: u64,
    /// Bytes read but not yet a whole record.
    partial: Vec<u8>,
}

impl FileCursor {
    fn open(path: &Path, driver: LogDriver) -> Result<Option<FileCursor>, LogError> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(LogError::io("open log file", path)(e)),
        };
        let meta = file
            .metadata()
            .map_err(LogError::io("stat log file", path))?;
        Ok(Some(FileCursor {
            file,
            path: path.to_path_buf(),
            driver,
            dev: meta.dev(),
            ino: meta.ino(),
            offset: 0,
            partial: Vec::new(),
        }))
    }

    fn read_available(&mut self, out: &mut Output<'_>) -> Result<(), LogError> {
        let mut chunk = vec![0u8; CHUNK];
        loop {
            let n = self
                .file
                .read(&mut chunk)
                .map_err(LogError::io("read log file", &self.path))?;
            if n == 0 {
                return Ok(());
            }
            self.partial.extend_from_slice(&chunk[..n]);
            let (entries, used) =
                decode_records(self.driver, &self.partial, &self.path, self.offset)?;
            self.partial.drain(..used);
            self.offset += used as u64;
            for e in entries {
                out.entry(e)?;
                if out.done {
                    return Ok(());
                }
            }
        }
    }
}

struct Output<'a> {
    options: &'a LogReadOptions,
    sink: &'a mut dyn LogSink,
    tail: Option<VecDeque<LogEntry>>,
    /// `until` was passed: nothing more to show.
    done: bool,
}

impl Output<'_> {
    fn entry(&mut self, e: LogEntry) -> Result<(), LogError> {
        let o = self.options;
        let wanted = match e.stream {
            LogStream::Stdout => o.stdout,
            LogStream::Stderr => o.stderr,
        };
        if !wanted || o.since.is_some_and(|s| e.time < s) {
            return Ok(());
        }
        if o.until.is_some_and(|u| e.time >= u) {
            self.done = true;
            return Ok(());
        }
        match (&mut self.tail, o.tail) {
            (Some(ring), Some(n)) => {
                if n == 0 {
                    return Ok(());
                }
                if ring.len() == n {
                    ring.pop_front();
                }
                ring.push_back(e);
                Ok(())
            }
            _ => self.emit(&e),
        }
    }

    fn emit(&mut self, e: &LogEntry) -> Result<(), LogError> {
        if self.options.timestamps {
            let mut line = timefmt::rfc3339_nano_fixed(e.time).into_bytes();
            line.push(b' ');
            line.extend_from_slice(&e.line);
            self.sink.write(e.stream, &line)
        } else {
            self.sink.write(e.stream, &e.line)
        }
        .map_err(LogError::Sink)
    }

    /// Ends `--tail`'s collection: what follows is streamed directly.
    fn flush_tail(&mut self) -> Result<(), LogError> {
        if let Some(ring) = self.tail.take() {
            for e in &ring {
                self.emit(e)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::LogWriter;

    fn collect(cfg: &LogConfig, opts: &LogReadOptions) -> Vec<String> {
        let mut got = Vec::new();
        read(cfg, opts, &mut |s: LogStream, d: &[u8]| {
            got.push(format!("{}:{}", s.name(), String::from_utf8_lossy(d)));
            Ok(())
        })
        .expect("read");
        got
    }

    #[test]
    fn reads_rotated_files_with_filters_and_tail() {
        for driver in [LogDriver::JsonFile, LogDriver::Local] {
            let dir = berth_testutil::TempDir::new("logread").expect("tmp");
            let cfg = LogConfig {
                driver,
                path: dir.join("c.log"),
                max_size: Some(300),
                max_file: 10,
            };
            let mut w = LogWriter::open(&cfg).expect("open");
            for i in 0..30 {
                let stream = if i % 3 == 0 {
                    LogStream::Stderr
                } else {
                    LogStream::Stdout
                };
                let t = timefmt::from_unix_nanos(1_000_000_000 * i);
                w.write(stream, format!("l{i}\n").as_bytes(), t).expect("w");
            }
            assert!(dir.join("c.log.2").exists(), "{driver:?} rotated");
            let all = LogReadOptions {
                stdout: true,
                stderr: true,
                ..Default::default()
            };
            let got = collect(&cfg, &all);
            assert_eq!(got.len(), 30, "{driver:?}");
            assert_eq!(got[0], "stderr:l0\n");
            assert_eq!(got[29], "stdout:l29\n");
            let opts = LogReadOptions {
                stderr: false,
                since: Some(timefmt::from_unix_nanos(10_000_000_000)),
                until: Some(timefmt::from_unix_nanos(20_000_000_000)),
                tail: Some(2),
                timestamps: true,
                ..all.clone()
            };
            let got = collect(&cfg, &opts);
            assert_eq!(
                got,
                [
                    "stdout:1970-01-01T00:00:17.000000000Z l17\n",
                    "stdout:1970-01-01T00:00:19.000000000Z l19\n"
                ]
            );
        }
    }
}
