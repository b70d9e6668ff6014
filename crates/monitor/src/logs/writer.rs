//! The monitor's side: splits output into entries and appends them to the
//! log file, rotating it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::SystemTime;

use super::{json_file, local, LogEntry, LogStream, MAX_LINE};
use crate::config::{LogConfig, LogDriver};
use crate::error::LogError;

/// Appends a container's output to its log (see the module docs of
/// [`crate::logs`] for splitting and rotation).
pub struct LogWriter {
    config: LogConfig,
    file: Option<File>,
    size: u64,
    /// Output of each stream not yet ended by a newline.
    pending: [Vec<u8>; 2],
    encoded: Vec<u8>,
}

impl LogWriter {
    /// Opens (creating, appending to) the current log file.
    pub fn open(config: &LogConfig) -> Result<LogWriter, LogError> {
        let mut w = LogWriter {
            config: config.clone(),
            file: None,
            size: 0,
            pending: [Vec::new(), Vec::new()],
            encoded: Vec::new(),
        };
        if config.driver != LogDriver::None {
            if let Some(dir) = config.path.parent() {
                std::fs::create_dir_all(dir).map_err(LogError::io("create log dir", dir))?;
            }
            w.open_current()?;
        }
        Ok(w)
    }

    fn open_current(&mut self) -> Result<(), LogError> {
        let path = &self.config.path;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(path)
            .map_err(LogError::io("open log file", path))?;
        self.size = file
            .metadata()
            .map_err(LogError::io("stat log file", path))?
            .len();
        self.file = Some(file);
        Ok(())
    }

    /// Takes output read from `stream` at `now`, writing every complete line
    /// and every full 16 KiB piece of a longer one.
    pub fn write(
        &mut self,
        stream: LogStream,
        mut data: &[u8],
        now: SystemTime,
    ) -> Result<(), LogError> {
        if self.config.driver == LogDriver::None {
            return Ok(());
        }
        let idx = stream as usize;
        while !data.is_empty() {
            let pending_len = self.pending[idx].len();
            let room = MAX_LINE - pending_len;
            let window = &data[..data.len().min(room)];
            if let Some(nl) = window.iter().position(|&b| b == b'\n') {
                let line = self.take_line(idx, &data[..=nl]);
                self.write_entry(stream, line, now)?;
                data = &data[nl + 1..];
            } else if window.len() == room {
                let line = self.take_line(idx, window);
                self.write_entry(stream, line, now)?;
                data = &data[room..];
            } else {
                self.pending[idx].extend_from_slice(data);
                break;
            }
        }
        self.flush()
    }

    fn take_line(&mut self, idx: usize, tail: &[u8]) -> Vec<u8> {
        let mut line = std::mem::take(&mut self.pending[idx]);
        line.extend_from_slice(tail);
        line
    }

    /// Writes what is left of a line without newline (the stream ended).
    pub fn flush_partial(&mut self, stream: LogStream, now: SystemTime) -> Result<(), LogError> {
        let line = std::mem::take(&mut self.pending[stream as usize]);
        if line.is_empty() || self.config.driver == LogDriver::None {
            return Ok(());
        }
        self.write_entry(stream, line, now)?;
        self.flush()
    }

    /// Encodes an entry into the pending batch (rotating first when the
    /// entry would not fit the current file); [`LogWriter::flush`] writes
    /// the batch, so one read of the container's output costs one write.
    fn write_entry(
        &mut self,
        stream: LogStream,
        line: Vec<u8>,
        now: SystemTime,
    ) -> Result<(), LogError> {
        let entry = LogEntry {
            stream,
            time: now,
            line,
        };
        let start = self.encoded.len();
        match self.config.driver {
            LogDriver::JsonFile => json_file::encode(&entry, &mut self.encoded),
            LogDriver::Local => local::encode(&entry, &mut self.encoded),
            LogDriver::None => return Ok(()),
        }
        let len = (self.encoded.len() - start) as u64;
        if let Some(max) = self.config.max_size {
            if self.size > 0 && self.size + len > max {
                let entry = self.encoded.split_off(start);
                self.flush()?;
                self.rotate()?;
                self.encoded = entry;
            }
        }
        self.size += len;
        Ok(())
    }

    /// Writes the pending batch to the current file.
    fn flush(&mut self) -> Result<(), LogError> {
        if self.encoded.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.encoded);
        if self.file.is_none() {
            // A rotation failed half-way: start a new current file.
            self.open_current()?;
            self.size += batch.len() as u64;
        }
        let path = &self.config.path;
        let file = self.file.as_mut().ok_or_else(|| LogError::Io {
            what: "write log file (not open)",
            path: path.clone(),
            source: std::io::Error::from(std::io::ErrorKind::NotConnected),
        })?;
        let written = file
            .write_all(&batch)
            .map_err(LogError::io("write log file", path));
        // Keep the buffer unless a burst made it large.
        if batch.capacity() <= 64 * 1024 {
            self.encoded = batch;
            self.encoded.clear();
        }
        written
    }

    fn rotated(&self, n: u32) -> PathBuf {
        let mut p = self.config.path.as_os_str().to_owned();
        p.push(format!(".{n}"));
        PathBuf::from(p)
    }

    fn rotate(&mut self) -> Result<(), LogError> {
        let path = self.config.path.clone();
        if self.config.max_file <= 1 {
            if let Some(f) = &self.file {
                f.set_len(0)
                    .map_err(LogError::io("truncate log file", &path))?;
            }
            self.size = 0;
            return Ok(());
        }
        self.file = None;
        let oldest = self.rotated(self.config.max_file - 1);
        match std::fs::remove_file(&oldest) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(LogError::io("remove oldest log file", oldest)(e))
            }
            _ => {}
        }
        for n in (1..self.config.max_file - 1).rev() {
            let from = self.rotated(n);
            match std::fs::rename(&from, self.rotated(n + 1)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(LogError::io("rotate log file", from)(e))
                }
                _ => {}
            }
        }
        std::fs::rename(&path, self.rotated(1)).map_err(LogError::io("rotate log file", &path))?;
        self.open_current()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timefmt;

    fn read_all(path: &std::path::Path) -> Vec<LogEntry> {
        let data = std::fs::read(path).expect("read");
        let (entries, used) = json_file::decode(&data, path, 0).expect("decode");
        assert_eq!(used, data.len());
        entries
    }

    #[test]
    fn splits_lines_and_long_lines() {
        let dir = berth_testutil::TempDir::new("logw").expect("tmp");
        let path = dir.join("c.log");
        let cfg = LogConfig {
            driver: LogDriver::JsonFile,
            path: path.clone(),
            max_size: None,
            max_file: 1,
        };
        let mut w = LogWriter::open(&cfg).expect("open");
        let t = timefmt::from_unix_nanos(1);
        w.write(LogStream::Stdout, b"a\nb", t).expect("w");
        w.write(LogStream::Stderr, b"err\n", t).expect("w");
        w.write(LogStream::Stdout, b"c\n", t).expect("w");
        let long = vec![b'x'; MAX_LINE + 10];
        w.write(LogStream::Stdout, &long, t).expect("w");
        w.flush_partial(LogStream::Stdout, t).expect("flush");
        let e = read_all(&path);
        let lines: Vec<(LogStream, usize)> = e.iter().map(|e| (e.stream, e.line.len())).collect();
        assert_eq!(e[0].line, b"a\n");
        assert_eq!(e[1].line, b"err\n");
        assert_eq!(e[2].line, b"bc\n");
        assert_eq!(
            lines[3..],
            [(LogStream::Stdout, MAX_LINE), (LogStream::Stdout, 10)]
        );
    }

    #[test]
    fn rotates_and_truncates() {
        let dir = berth_testutil::TempDir::new("logr").expect("tmp");
        let path = dir.join("c.log");
        let mut cfg = LogConfig {
            driver: LogDriver::JsonFile,
            path: path.clone(),
            max_size: Some(200),
            max_file: 3,
        };
        let t = timefmt::from_unix_nanos(1);
        let mut w = LogWriter::open(&cfg).expect("open");
        for i in 0..20 {
            w.write(LogStream::Stdout, format!("line {i}\n").as_bytes(), t)
                .expect("w");
        }
        let sizes: Vec<u64> = ["c.log", "c.log.1", "c.log.2"]
            .iter()
            .map(|n| std::fs::metadata(dir.join(n)).expect("rotated").len())
            .collect();
        assert!(sizes.iter().all(|&s| s <= 200), "{sizes:?}");
        assert!(!dir.join("c.log.3").exists());
        let last = read_all(&path);
        assert_eq!(
            last.last().map(|e| e.line.clone()),
            Some(b"line 19\n".to_vec())
        );
        let older = read_all(&dir.join("c.log.1"));
        let first_cur = std::str::from_utf8(&last[0].line)
            .expect("utf8")
            .to_string();
        let last_old = std::str::from_utf8(&older[older.len() - 1].line)
            .expect("utf8")
            .to_string();
        let n = |s: &str| {
            s.trim()
                .trim_start_matches("line ")
                .parse::<u32>()
                .expect("n")
        };
        assert_eq!(n(&last_old) + 1, n(&first_cur));

        cfg.max_file = 1;
        let p2 = dir.join("d.log");
        cfg.path = p2.clone();
        let mut w = LogWriter::open(&cfg).expect("open");
        for i in 0..20 {
            w.write(LogStream::Stdout, format!("line {i}\n").as_bytes(), t)
                .expect("w");
        }
        assert!(std::fs::metadata(&p2).expect("d").len() <= 200);
        assert!(!dir.join("d.log.1").exists());
    }
}
