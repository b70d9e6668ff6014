//! berth's `local` log format: compact binary records.
//!
//! Each record is
//!
//! ```text
//! u32 BE  n           length of the body
//! body (n bytes):
//!   u8       stream   1 stdout, 2 stderr
//!   i64 BE   time     nanoseconds since the Unix epoch
//!   [u8]     line     the raw bytes (with their '\n' when the line is complete)
//! u32 BE  n           the length again
//! ```
//!
//! No escaping or UTF-8 repair: bytes come back as the container wrote them.
//! The trailing length lets a reader walk a file backwards from its end, and
//! lets it check that a record is whole. A file is only ever appended to, so
//! a reader that finds a short record at the end waits for the rest.

use std::path::Path;

use super::{LogEntry, LogStream};
use crate::error::LogError;
use crate::timefmt;

const HEADER: usize = 4;
const BODY_FIXED: usize = 1 + 8;
const TRAILER: usize = 4;
/// Upper bound for a body: entries are at most 16 KiB of line.
const MAX_BODY: usize = BODY_FIXED + 1024 * 1024;

pub fn encode(entry: &LogEntry, out: &mut Vec<u8>) {
    let n = u32::try_from(BODY_FIXED + entry.line.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&n.to_be_bytes());
    out.push(match entry.stream {
        LogStream::Stdout => 1,
        LogStream::Stderr => 2,
    });
    out.extend_from_slice(&timefmt::unix_nanos(entry.time).to_be_bytes());
    out.extend_from_slice(&entry.line);
    out.extend_from_slice(&n.to_be_bytes());
}

pub(crate) fn decode(
    buf: &[u8],
    path: &Path,
    base_offset: u64,
) -> Result<(Vec<LogEntry>, usize), LogError> {
    let mut entries = Vec::new();
    let mut pos = 0;
    while buf.len() - pos >= HEADER {
        let corrupt = |reason: String| LogError::Corrupt {
            path: path.to_path_buf(),
            offset: base_offset + pos as u64,
            reason,
        };
        let n = u32::from_be_bytes([buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]]) as usize;
        if !(BODY_FIXED..=MAX_BODY).contains(&n) {
            return Err(corrupt(format!("record length {n}")));
        }
        let total = HEADER + n + TRAILER;
        if buf.len() - pos < total {
            break;
        }
        let body = &buf[pos + HEADER..pos + HEADER + n];
        let trailer = &buf[pos + HEADER + n..pos + total];
        if trailer != (n as u32).to_be_bytes() {
            return Err(corrupt("trailing length differs".into()));
        }
        let stream = match body[0] {
            1 => LogStream::Stdout,
            2 => LogStream::Stderr,
            s => return Err(corrupt(format!("stream byte {s}"))),
        };
        let mut nanos = [0u8; 8];
        nanos.copy_from_slice(&body[1..9]);
        entries.push(LogEntry {
            stream,
            time: timefmt::from_unix_nanos(i64::from_be_bytes(nanos)),
            line: body[BODY_FIXED..].to_vec(),
        });
        pos += total;
    }
    Ok((entries, pos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_raw_bytes() {
        let entries = [
            LogEntry {
                stream: LogStream::Stdout,
                time: timefmt::from_unix_nanos(1_795_413_600_123_456_789),
                line: b"\xff\x00raw\n".to_vec(),
            },
            LogEntry {
                stream: LogStream::Stderr,
                time: timefmt::from_unix_nanos(5),
                line: b"partial".to_vec(),
            },
        ];
        let mut buf = Vec::new();
        for e in &entries {
            encode(e, &mut buf);
        }
        let whole = buf.len();
        buf.extend_from_slice(&[0, 0, 0, 20, 1]);
        let (back, used) = decode(&buf, Path::new("x"), 0).expect("decode");
        assert_eq!(back, entries);
        assert_eq!(used, whole);
        // The first record's trailing length no longer matches.
        let first = HEADER + BODY_FIXED + entries[0].line.len() + TRAILER;
        buf[first - 1] ^= 0xff;
        assert!(decode(&buf, Path::new("x"), 0).is_err());
        buf[first - 1] ^= 0xff;
        buf[3] = 0;
        assert!(decode(&buf, Path::new("x"), 0).is_err());
    }
}
