//! Sizes and durations printed (and sizes parsed) the way Docker's `go-units`
//! does.

use chrono::{DateTime, Utc};

const DECIMAL_UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];

/// `units.HumanSizeWithPrecision`: decimal units, `precision` significant
/// digits, Go's `%g` formatting ("4.26MB", "0B", "1e+03kB").
pub fn human_size_with_precision(size: f64, precision: usize) -> String {
    let mut size = size;
    let mut i = 0;
    while size >= 1000.0 && i < DECIMAL_UNITS.len() - 1 {
        size /= 1000.0;
        i += 1;
    }
    format!("{}{}", format_g(size, precision), DECIMAL_UNITS[i])
}

/// `units.HumanSize` (four significant digits), used by `system df`.
pub fn human_size(size: u64) -> String {
    human_size_with_precision(size as f64, 4)
}

/// Go's `%.*g`.
fn format_g(v: f64, precision: usize) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    let precision = precision.max(1);
    // Round to `precision` significant digits first: the exponent is that of
    // the rounded value (999.9 with 3 digits is 1e+03).
    let sci = format!("{:.*e}", precision - 1, v);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= precision as i32 {
        let mantissa = trim_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (precision as i32 - 1 - exp).max(0) as usize;
        trim_zeros(&format!("{v:.decimals$}")).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// `units.RAMInBytes`: `512`, `20m`, `1.5g`, `1GiB`, `1 kb` (binary
/// multiples, case-insensitive suffix `b`, `k`, `kb`, `kib` …), with go-units'
/// error texts.
pub fn ram_in_bytes(size: &str) -> Result<i64, String> {
    let Some(sep) = size.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ') else {
        return Err(format!("invalid size: '{size}'"));
    };
    let (num, suffix) = if size.as_bytes()[sep] == b' ' {
        (&size[..sep], &size[sep + 1..])
    } else {
        (&size[..=sep], &size[sep + 1..])
    };
    // Go's ParseFloat takes neither "inf"/"nan" spelled with digits nor
    // Rust-only forms here, since `num` ends in a digit, '.' or is cut at a space.
    let value: f64 = num
        .parse()
        .map_err(|_| format!("strconv.ParseFloat: parsing {num:?}: invalid syntax"))?;
    if value < 0.0 {
        return Err(format!("invalid size: '{size}'"));
    }
    if suffix.is_empty() {
        return Ok(value as i64);
    }
    let bad_suffix = || format!("invalid suffix: '{}'", suffix.to_lowercase());
    if suffix.len() > 3 {
        return Err(format!("invalid suffix: '{suffix}'"));
    }
    let lower = suffix.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    if bytes[0] == b'b' {
        return if bytes.len() == 1 {
            Ok(value as i64)
        } else {
            Err(bad_suffix())
        };
    }
    let multiplier: i64 = match bytes[0] {
        b'k' => 1 << 10,
        b'm' => 1 << 20,
        b'g' => 1 << 30,
        b't' => 1 << 40,
        b'p' => 1 << 50,
        _ => return Err(bad_suffix()),
    };
    match bytes.len() {
        2 if bytes[1] != b'b' => return Err(bad_suffix()),
        3 if &bytes[1..] != b"ib" => return Err(bad_suffix()),
        _ => {}
    }
    Ok((value * multiplier as f64) as i64)
}

/// `units.HumanDuration`.
pub fn human_duration(d: chrono::Duration) -> String {
    let seconds = d.num_seconds();
    let minutes = d.num_minutes();
    let hours = (d.num_milliseconds() as f64 / 3_600_000.0 + 0.5) as i64;
    if seconds < 1 {
        "Less than a second".to_string()
    } else if seconds == 1 {
        "1 second".to_string()
    } else if seconds < 60 {
        format!("{seconds} seconds")
    } else if minutes == 1 {
        "About a minute".to_string()
    } else if minutes < 60 {
        format!("{minutes} minutes")
    } else if hours == 1 {
        "About an hour".to_string()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", d.num_hours() / 24 / 365)
    }
}

/// "2 hours ago", as in Docker's CREATED columns; empty for unknown times.
pub fn since(t: Option<DateTime<Utc>>) -> String {
    match t {
        Some(t) if t.timestamp() > 0 => format!("{} ago", human_duration(Utc::now() - t)),
        _ => "N/A".to_string(),
    }
}

/// Go's `time.Time.String()` for UTC times, used by `{{.CreatedAt}}`.
pub fn go_time(t: Option<DateTime<Utc>>) -> String {
    match t {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S %z UTC").to_string(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_go_units() {
        assert_eq!(human_size_with_precision(0.0, 3), "0B");
        assert_eq!(human_size_with_precision(999.0, 3), "999B");
        assert_eq!(human_size_with_precision(4_257_000.0, 3), "4.26MB");
        assert_eq!(human_size_with_precision(2_130_000.0, 3), "2.13MB");
        assert_eq!(human_size_with_precision(1_000_000.0, 3), "1MB");
        assert_eq!(human_size_with_precision(999_999.0, 3), "1e+03kB");
        assert_eq!(human_size_with_precision(123_456_789.0, 3), "123MB");
        assert_eq!(human_size(1_234_567), "1.235MB");
        assert_eq!(human_size(0), "0B");
    }

    #[test]
    fn ram_in_bytes_like_go_units() {
        assert_eq!(ram_in_bytes("512"), Ok(512));
        assert_eq!(ram_in_bytes("20m"), Ok(20 << 20));
        assert_eq!(ram_in_bytes("1g"), Ok(1 << 30));
        assert_eq!(ram_in_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(ram_in_bytes("1.5k"), Ok(1536));
        assert_eq!(ram_in_bytes("64 mb"), Ok(64 << 20));
        assert_eq!(ram_in_bytes("7b"), Ok(7));
        assert_eq!(ram_in_bytes("x").unwrap_err(), "invalid size: 'x'");
        assert_eq!(ram_in_bytes("-1").unwrap_err(), "invalid size: '-1'");
        assert_eq!(ram_in_bytes("10q").unwrap_err(), "invalid suffix: 'q'");
        assert_eq!(ram_in_bytes("10mx").unwrap_err(), "invalid suffix: 'mx'");
        assert_eq!(ram_in_bytes("10kbb").unwrap_err(), "invalid suffix: 'kbb'");
        assert_eq!(
            ram_in_bytes("1.2.3m").unwrap_err(),
            "strconv.ParseFloat: parsing \"1.2.3\": invalid syntax"
        );
    }

    #[test]
    fn durations_like_go_units() {
        let d = chrono::Duration::seconds;
        assert_eq!(human_duration(d(0)), "Less than a second");
        assert_eq!(human_duration(d(1)), "1 second");
        assert_eq!(human_duration(d(30)), "30 seconds");
        assert_eq!(human_duration(d(61)), "About a minute");
        assert_eq!(human_duration(d(600)), "10 minutes");
        assert_eq!(human_duration(d(3600)), "About an hour");
        assert_eq!(human_duration(d(7200)), "2 hours");
        assert_eq!(human_duration(d(3 * 86400)), "3 days");
        assert_eq!(human_duration(d(20 * 86400)), "2 weeks");
        assert_eq!(human_duration(d(90 * 86400)), "3 months");
        assert_eq!(human_duration(d(800 * 86400)), "2 years");
    }
}
