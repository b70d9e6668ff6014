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
    /// Only entries at or before this time (Docker stops after it).
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
    // The newest file read so far: the current one, or while the current
    // path is missing (mid-rotation) the last rotated one.
    let mut last: Option<FileId> = None;
    let mut current = open_in_sequence(&config.path, config.driver, &mut last, &mut out)?;
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
        if replaced(current.as_ref(), &config.path) {
            // What was appended between the read above and the rotation.
            if let Some(cursor) = current.as_mut() {
                cursor.read_available(&mut out)?;
            }
            if let Some(cursor) = &current {
                last = Some(cursor.id());
            }
            current = open_in_sequence(&config.path, config.driver, &mut last, &mut out)?;
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

/// Whether the file at `path` is no longer the one `current` reads (it was
/// rotated away, truncated, or appeared).
fn replaced(current: Option<&FileCursor>, path: &Path) -> bool {
    let Ok(m) = std::fs::metadata(path) else {
        return false;
    };
    match current {
        Some(c) => c.id() != (m.dev(), m.ino()) || m.len() < c.offset,
        None => true,
    }
}

/// Reads, oldest first, every rotated file newer than the file `last`
/// (all of them when `None`; none when `last` is gone), updating `last`,
/// then opens the current file (`None` while a rotation has it renamed). Files are told apart by inode, so rotations while this
/// runs (a file renamed under its listed name, or new files rotated in)
/// make it look again instead of skipping or repeating a file.
fn open_in_sequence(
    path: &Path,
    driver: LogDriver,
    last: &mut Option<FileId>,
    out: &mut Output<'_>,
) -> Result<Option<FileCursor>, LogError> {
    'again: loop {
        let listed = rotated_files(path);
        for (file, id) in newer_than(&listed, *last) {
            match FileCursor::open(file, driver)? {
                Some(mut cursor) if cursor.id() == *id => {
                    cursor.read_available(out)?;
                    *last = Some(*id);
                }
                _ => continue 'again,
            }
        }
        let current = FileCursor::open(path, driver)?;
        if newer_than(&rotated_files(path), *last).is_empty() {
            return Ok(current);
        }
    }
}

type FileId = (u64, u64);

/// The part of `files` after the one with id `last` (everything for `None`,
/// nothing when `last` is not among them).
fn newer_than(files: &[(PathBuf, FileId)], last: Option<FileId>) -> &[(PathBuf, FileId)] {
    match last {
        None => files,
        Some(id) => match files.iter().position(|(_, i)| *i == id) {
            Some(pos) => &files[pos + 1..],
            None => &[],
        },
    }
}

fn container_finished(state_dir: &Path) -> bool {
    crate::files::path(state_dir, crate::files::EXIT).exists()
        || !crate::files::monitor_alive(state_dir)
}

/// `<path>.N` … `<path>.1` with their ids, oldest first.
fn rotated_files(path: &Path) -> Vec<(PathBuf, FileId)> {
    let mut files = Vec::new();
    // A rotation renames one file at a time: mid-way one number is free,
    // so only two missing in a row end the list.
    let mut missing = 0;
    for n in 1.. {
        let mut p = path.as_os_str().to_owned();
        p.push(format!(".{n}"));
        let p = PathBuf::from(p);
        match std::fs::metadata(&p) {
            Ok(m) => {
                missing = 0;
                files.push((p, (m.dev(), m.ino())));
            }
            Err(_) => {
                missing += 1;
                if missing == 2 {
                    break;
                }
            }
        }
    }
    files.reverse();
    // Scanning upwards while the writer renames upwards can meet a file at
    // two numbers; its real place is the higher one (listed first now).
    let mut seen = std::collections::HashSet::new();
    files.retain(|(_, id)| seen.insert(*id));
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
    fn id(&self) -> FileId {
        (self.dev, self.ino)
    }

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
        // Docker keeps an entry stamped exactly `until` (it stops only
        // after it), so `logs --until T` with T from `logs -t` shows that line.
        if o.until.is_some_and(|u| e.time > u) {
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
            // `until` keeps the entry stamped exactly then.
            assert_eq!(
                got,
                [
                    "stdout:1970-01-01T00:00:19.000000000Z l19\n",
                    "stdout:1970-01-01T00:00:20.000000000Z l20\n"
                ]
            );
        }
    }
}

#[cfg(test)]
mod follow_tests {
    use super::*;
    use crate::logs::LogWriter;

    /// A writer rotating as fast as it can against a following reader:
    /// every line once, in order.
    #[test]
    fn follow_sees_every_line_once_under_fast_rotation() {
        for driver in [LogDriver::JsonFile, LogDriver::Local] {
            let dir = berth_testutil::TempDir::new("logfollow").expect("tmp");
            let cfg = LogConfig {
                driver,
                path: dir.join("c.log"),
                max_size: Some(512),
                max_file: 1000,
            };
            let mut w = LogWriter::open(&cfg).expect("open");
            let wcfg = cfg.clone();
            let writer = std::thread::spawn(move || {
                let _ = &wcfg;
                for i in 0..3000 {
                    let t = timefmt::from_unix_nanos(i);
                    w.write(LogStream::Stdout, format!("l{i}\n").as_bytes(), t)
                        .expect("write");
                    if i % 300 == 0 {
                        std::thread::sleep(Duration::from_millis(30));
                    }
                }
                w.write(LogStream::Stdout, b"END\n", SystemTime::now())
                    .expect("write");
            });
            let mut got = Vec::new();
            let opts = LogReadOptions {
                follow: true,
                stdout: true,
                stderr: true,
                ..Default::default()
            };
            let r = read(&cfg, &opts, &mut |_: LogStream, d: &[u8]| {
                if d == b"END\n" {
                    return Err(std::io::Error::other("end"));
                }
                got.push(String::from_utf8_lossy(d).into_owned());
                Ok(())
            });
            assert!(matches!(r, Err(LogError::Sink(_))));
            writer.join().expect("writer");
            let want: Vec<String> = (0..3000).map(|i| format!("l{i}\n")).collect();
            if got != want {
                let first = got
                    .iter()
                    .zip(&want)
                    .position(|(a, b)| a != b)
                    .unwrap_or(want.len());
                panic!(
                    "{driver:?}: {} lines, want {}; first difference at {first}: {:?}",
                    got.len(),
                    want.len(),
                    &got[first.saturating_sub(3)..(first + 12).min(got.len())]
                );
            }
        }
    }
}
