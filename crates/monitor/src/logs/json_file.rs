//! Docker's json-file format.
//!
//! One JSON object per line: `{"log":…,"stream":"stdout"|"stderr","time":…}`
//! with `time` in Go's RFC3339Nano (fraction's trailing zeros trimmed). The
//! string escaping follows Go's `encoding/json` as Docker uses it: `<`, `>`,
//! `&`, U+2028 and U+2029 are escaped as `\u…`, and invalid UTF-8 becomes
//! U+FFFD, so files compare byte for byte with Docker's.

use std::path::Path;

use serde::Deserialize;

use super::{LogEntry, LogStream};
use crate::error::LogError;
use crate::timefmt;

/// Appends the encoded line (with its final `\n`) to `out`.
pub fn encode(entry: &LogEntry, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"log\":\"");
    escape_into(&entry.line, out);
    out.extend_from_slice(b"\",\"stream\":\"");
    out.extend_from_slice(entry.stream.name().as_bytes());
    out.extend_from_slice(b"\",\"time\":\"");
    out.extend_from_slice(timefmt::rfc3339_nano_trimmed(entry.time).as_bytes());
    out.extend_from_slice(b"\"}\n");
}

fn escape_into(data: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for chunk in data.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                '\t' => out.extend_from_slice(b"\\t"),
                '\u{2028}' => out.extend_from_slice(b"\\u2028"),
                '\u{2029}' => out.extend_from_slice(b"\\u2029"),
                c if (c as u32) < 0x20 || c == '<' || c == '>' || c == '&' => {
                    let b = c as u32;
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[(b >> 4) as usize & 0xf]);
                    out.push(HEX[b as usize & 0xf]);
                }
                c => {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        if !chunk.invalid().is_empty() {
            out.extend_from_slice("\u{fffd}".as_bytes());
        }
    }
}

#[derive(Deserialize)]
struct JsonLine {
    log: String,
    stream: String,
    time: String,
}

/// Decodes the complete lines of `buf` (see [`super::decode_records`]).
pub(crate) fn decode(
    buf: &[u8],
    path: &Path,
    base_offset: u64,
) -> Result<(Vec<LogEntry>, usize), LogError> {
    let mut entries = Vec::new();
    let mut pos = 0;
    while let Some(nl) = buf[pos..].iter().position(|&b| b == b'\n') {
        let line = &buf[pos..pos + nl];
        let offset = base_offset + pos as u64;
        pos += nl + 1;
        if line.is_empty() {
            continue;
        }
        let corrupt = |reason: String| LogError::Corrupt {
            path: path.to_path_buf(),
            offset,
            reason,
        };
        let parsed: JsonLine = serde_json::from_slice(line).map_err(|e| corrupt(e.to_string()))?;
        let stream = match parsed.stream.as_str() {
            "stdout" => LogStream::Stdout,
            "stderr" => LogStream::Stderr,
            other => return Err(corrupt(format!("unknown stream {other:?}"))),
        };
        let time = timefmt::parse_rfc3339(&parsed.time)
            .ok_or_else(|| corrupt(format!("bad time {:?}", parsed.time)))?;
        entries.push(LogEntry {
            stream,
            time,
            line: parsed.log.into_bytes(),
        });
    }
    Ok((entries, pos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_dockers_bytes() {
        let entry = LogEntry {
            stream: LogStream::Stderr,
            time: timefmt::from_unix_nanos(1_795_413_600_123_456_789),
            line: b"<a href=\"x\">&\t\x01\xff\n".to_vec(),
        };
        let mut out = Vec::new();
        encode(&entry, &mut out);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "{\"log\":\"\\u003ca href=\\\"x\\\"\\u003e\\u0026\\t\\u0001\u{fffd}\\n\",\"stream\":\"stderr\",\"time\":\"2026-11-23T06:00:00.123456789Z\"}\n"
        );
        let (back, used) = decode(&out, Path::new("x"), 0).expect("decode");
        assert_eq!(used, out.len());
        assert_eq!(back[0].line, "<a href=\"x\">&\t\x01\u{fffd}\n".as_bytes());
        assert_eq!(back[0].time, entry.time);
    }

    #[test]
    fn incomplete_line_is_left() {
        let mut out = Vec::new();
        let e = LogEntry {
            stream: LogStream::Stdout,
            time: timefmt::from_unix_nanos(0),
            line: b"a\n".to_vec(),
        };
        encode(&e, &mut out);
        let full = out.len();
        out.extend_from_slice(b"{\"log\":\"b");
        let (back, used) = decode(&out, Path::new("x"), 0).expect("decode");
        assert_eq!(back.len(), 1);
        assert_eq!(used, full);
    }
}
