//! Container logs: the writer the monitor feeds ([`LogWriter`]) and the
//! reader behind `berth logs` ([`read`]).
//!
//! Drivers:
//! - `json-file`: Docker's format, one JSON object per line
//!   (`{"log":"line\n","stream":"stdout","time":"2026-11-23T06:00:00.123456789Z"}`),
//!   see [`json_file`].
//! - `local`: berth's binary framing, see [`local`].
//! - `none`: nothing is kept.
//!
//! Both file drivers split output at `\n` (the newline stays in the entry)
//! and cut a line without newline into 16 KiB entries, like Docker. With
//! `max_size`, the current file `<path>` is rotated before it would exceed
//! that size: `<path>.1` is the newest rotated file, `<path>.<max_file-1>`
//! the oldest; with `max_file` 1 the file is truncated instead.

pub mod json_file;
pub mod local;
mod reader;
mod writer;

use std::time::SystemTime;

pub use reader::{read, LogReadOptions, LogSink};
pub use writer::LogWriter;

/// Which of the container's output streams an entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogStream {
    Stdout,
    Stderr,
}

impl LogStream {
    pub fn name(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        }
    }
}

/// One log entry: a line (with its `\n`) or a piece of a long line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub stream: LogStream,
    pub time: SystemTime,
    pub line: Vec<u8>,
}

/// Longest entry: longer lines are split like Docker's 16 KiB buffer does.
pub const MAX_LINE: usize = 16 * 1024;

/// Decodes the records of one driver from a byte buffer, returning the
/// complete ones and how many bytes they took (the rest is an incomplete
/// record still being written).
pub(crate) fn decode_records(
    driver: crate::config::LogDriver,
    buf: &[u8],
    path: &std::path::Path,
    base_offset: u64,
) -> Result<(Vec<LogEntry>, usize), crate::error::LogError> {
    match driver {
        crate::config::LogDriver::JsonFile => json_file::decode(buf, path, base_offset),
        crate::config::LogDriver::Local => local::decode(buf, path, base_offset),
        crate::config::LogDriver::None => Ok((Vec::new(), buf.len())),
    }
}
