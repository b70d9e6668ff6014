//! UTC RFC 3339 timestamps with nanoseconds.
//!
//! Hand-written rather than chrono: Docker writes Go's `RFC3339Nano`
//! (trailing zeros of the fraction trimmed) into json-file logs, which no
//! chrono format produces, and the monitor only ever needs UTC; keeping the
//! calendar arithmetic here keeps the long-lived monitor process small.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch (negative before it).
pub fn unix_nanos(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
    }
}

pub fn from_unix_nanos(n: i64) -> SystemTime {
    if n >= 0 {
        UNIX_EPOCH + Duration::from_nanos(n.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_nanos(n.unsigned_abs())
    }
}

/// Go's `time.RFC3339Nano` in UTC: `2026-11-23T06:00:00.1234Z`.
pub fn rfc3339_nano_trimmed(t: SystemTime) -> String {
    let mut s = rfc3339_nano_fixed(t);
    // "…:SS.fffffffffZ": trim zeros of the fraction, and the dot if empty.
    s.pop();
    while s.ends_with('0') {
        s.pop();
    }
    if s.ends_with('.') {
        s.pop();
    }
    s.push('Z');
    s
}

/// Always nine fraction digits: `2026-11-23T06:00:00.123400000Z` (what
/// `docker logs --timestamps` prints and what state files carry).
pub fn rfc3339_nano_fixed(t: SystemTime) -> String {
    let n = unix_nanos(t);
    let secs = n.div_euclid(1_000_000_000);
    let nanos = n.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos: i64 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 9 {
                nanos = nanos * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        let digits = (i - start).min(9);
        if digits == 0 {
            return None;
        }
        nanos *= 10_i64.pow(9 - u32::try_from(digits).ok()?);
    }
    let offset = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        c @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let off = num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60;
            if *c == b'+' {
                off
            } else {
                -off
            }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset;
    Some(from_unix_nanos(
        secs.checked_mul(1_000_000_000)?.checked_add(nanos)?,
    ))
}

// Howard Hinnant's days_from_civil / civil_from_days (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_go() {
        let t = from_unix_nanos(1_795_413_600_123_400_000);
        assert_eq!(rfc3339_nano_fixed(t), "2026-11-23T06:00:00.123400000Z");
        assert_eq!(rfc3339_nano_trimmed(t), "2026-11-23T06:00:00.1234Z");
        assert_eq!(
            rfc3339_nano_trimmed(from_unix_nanos(1_795_413_600_000_000_000)),
            "2026-11-23T06:00:00Z"
        );
        assert_eq!(
            rfc3339_nano_fixed(UNIX_EPOCH),
            "1970-01-01T00:00:00.000000000Z"
        );
        assert_eq!(
            rfc3339_nano_fixed(from_unix_nanos(951_782_400_000_000_000)),
            "2000-02-29T00:00:00.000000000Z"
        );
    }

    #[test]
    fn parses_round_trip_and_offsets() {
        for n in [
            0,
            1_795_413_600_123_456_789,
            951_782_400_000_000_001,
            -1_000_000_000,
        ] {
            let t = from_unix_nanos(n);
            assert_eq!(parse_rfc3339(&rfc3339_nano_fixed(t)), Some(t));
            assert_eq!(parse_rfc3339(&rfc3339_nano_trimmed(t)), Some(t));
        }
        assert_eq!(
            parse_rfc3339("2026-11-23T07:00:00+01:00"),
            parse_rfc3339("2026-11-23T06:00:00Z")
        );
        assert_eq!(parse_rfc3339("2026-11-23T06:00:00"), None);
        assert_eq!(parse_rfc3339("2026-13-23T06:00:00Z"), None);
    }
}
