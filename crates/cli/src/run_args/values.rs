//! Parsers for single flag values, with the error texts of the Go functions
//! Docker's CLI and daemon use for them (`strconv`, `time.ParseDuration`,
//! `big.Rat`, go-units, `opts.Validate*`). Each returns the bare reason; the
//! caller wraps it with the flag's name.

use std::collections::BTreeMap;
use std::path::Path;

use berth_engine::containers::model::RestartPolicy;

/// `strconv.ParseInt(s, 0, bits)`: optional sign, `0x`/`0o`/`0b`/`0` prefixes
/// and `_` separators, as pflag's integer flags accept them.
pub fn go_int(s: &str, bits: u32) -> Result<i64, String> {
    let syntax = || format!("strconv.ParseInt: parsing {s:?}: invalid syntax");
    let range = || format!("strconv.ParseInt: parsing {s:?}: value out of range");
    let (negative, unsigned) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let magnitude = parse_unsigned_base0(unsigned).map_err(|e| match e {
        UintError::Syntax => syntax(),
        UintError::Range => range(),
    })?;
    let limit = 1u128 << (bits - 1);
    if negative {
        if magnitude > limit {
            return Err(range());
        }
        Ok((-(magnitude as i128)) as i64)
    } else {
        if magnitude >= limit {
            return Err(range());
        }
        Ok(magnitude as i64)
    }
}

/// `strconv.ParseUint(s, 0, bits)`.
pub fn go_uint(s: &str, bits: u32) -> Result<u64, String> {
    let value = parse_unsigned_base0(s).map_err(|e| match e {
        UintError::Syntax => format!("strconv.ParseUint: parsing {s:?}: invalid syntax"),
        UintError::Range => format!("strconv.ParseUint: parsing {s:?}: value out of range"),
    })?;
    if value >= 1u128 << bits {
        return Err(format!(
            "strconv.ParseUint: parsing {s:?}: value out of range"
        ));
    }
    Ok(value as u64)
}

/// `strconv.ParseInt(s, 10, 64)`, which ulimits use.
pub fn go_int_base10(s: &str) -> Result<i64, String> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("strconv.ParseInt: parsing {s:?}: invalid syntax"));
    }
    s.parse::<i64>()
        .map_err(|_| format!("strconv.ParseInt: parsing {s:?}: value out of range"))
}

/// `strconv.ParseUint(s, 10, 64)`, which IOPS throttles and port numbers use.
pub fn go_uint_base10(s: &str, bits: u32) -> Result<u64, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("strconv.ParseUint: parsing {s:?}: invalid syntax"));
    }
    match s.parse::<u64>() {
        Ok(v) if bits == 64 || v < 1u64 << bits => Ok(v),
        _ => Err(format!(
            "strconv.ParseUint: parsing {s:?}: value out of range"
        )),
    }
}

enum UintError {
    Syntax,
    Range,
}

fn parse_unsigned_base0(s: &str) -> Result<u128, UintError> {
    let lower = s.to_ascii_lowercase();
    let (radix, digits) = if let Some(rest) = lower.strip_prefix("0x") {
        (16, rest)
    } else if let Some(rest) = lower.strip_prefix("0o") {
        (8, rest)
    } else if let Some(rest) = lower.strip_prefix("0b") {
        (2, rest)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    // Go allows `_` only between digits (or right after a base prefix).
    let prefixed = radix != 10;
    if digits.is_empty()
        || digits.ends_with('_')
        || digits.contains("__")
        || (digits.starts_with('_') && !prefixed)
    {
        return Err(UintError::Syntax);
    }
    let mut value: u128 = 0;
    for c in digits.chars().filter(|&c| c != '_') {
        let d = c.to_digit(radix).ok_or(UintError::Syntax)?;
        value = value * u128::from(radix) + u128::from(d);
        if value > u128::from(u64::MAX) {
            return Err(UintError::Range);
        }
    }
    Ok(value)
}

/// `strconv.ParseBool`, for `--flag=value` on boolean flags.
pub fn go_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!("strconv.ParseBool: parsing {s:?}: invalid syntax")),
    }
}

/// `time.ParseDuration`, in nanoseconds: `1m30s`, `500ms`, `1.5h`, `-2s`, `0`.
pub fn go_duration(s: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {s:?}");
    let (negative, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let int_part = &rest[..int_len];
        rest = &rest[int_len..];
        let mut frac_part = "";
        if let Some(after_dot) = rest.strip_prefix('.') {
            let frac_len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
            frac_part = &after_dot[..frac_len];
            rest = &after_dot[frac_len..];
            if int_part.is_empty() && frac_part.is_empty() {
                return Err(invalid());
            }
        } else if int_part.is_empty() {
            return Err(invalid());
        }
        let unit_len = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        if unit_len == 0 {
            return Err(format!("time: missing unit in duration {s:?}"));
        }
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(format!("time: unknown unit {unit:?} in duration {s:?}")),
        };
        let whole: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| invalid())?
        };
        let mut nanos = whole.checked_mul(scale).ok_or_else(invalid)?;
        if !frac_part.is_empty() {
            // Exact, like Go: scale × 0.frac, truncated.
            let digits = &frac_part[..frac_part.len().min(30)];
            let numerator: u128 = digits.parse().map_err(|_| invalid())?;
            let denominator = 10u128.pow(digits.len() as u32);
            nanos += numerator * scale / denominator;
        }
        total = total.checked_add(nanos).ok_or_else(invalid)?;
        if total > i64::MAX as u128 + u128::from(negative) {
            return Err(invalid());
        }
    }
    Ok(if negative {
        (-(total as i128)) as i64
    } else {
        total as i64
    })
}

/// `opts.ParseCPUs`: a rational number of CPUs (`0.5`, `1.25`, `3/2`, `1e-3`)
/// as nano-CPUs.
pub fn nano_cpus(s: &str) -> Result<i64, String> {
    let unparsable = || format!("failed to parse {s} as a rational number");
    let (numerator, denominator) = parse_rational(s).ok_or_else(unparsable)?;
    let scaled = numerator
        .checked_mul(1_000_000_000)
        .ok_or_else(unparsable)?;
    if scaled % denominator != 0 {
        return Err("value is too precise".to_string());
    }
    let nanos = scaled / denominator;
    i64::try_from(nanos).map_err(|_| unparsable())
}

/// `big.Rat.SetString`'s syntax: `a/b` or a decimal with optional exponent.
fn parse_rational(s: &str) -> Option<(i128, i128)> {
    if let Some((n, d)) = s.split_once('/') {
        let n: i128 = n.parse().ok()?;
        let d: i128 = d.strip_prefix('+').unwrap_or(d).parse().ok()?;
        if d <= 0 {
            return None;
        }
        return Some((n, d));
    }
    let (negative, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], rest[i + 1..].parse::<i32>().ok()?),
        None => (rest, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if !int_part
        .bytes()
        .chain(frac_part.bytes())
        .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let digits = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    let mut numerator: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    let mut denominator: i128 = 1;
    let scale = exponent - frac_part.len() as i32;
    if scale >= 0 {
        numerator = numerator.checked_mul(10i128.checked_pow(scale as u32)?)?;
    } else {
        denominator = 10i128.checked_pow(scale.unsigned_abs())?;
    }
    Some((if negative { -numerator } else { numerator }, denominator))
}

/// `opts.ParseRestartPolicy` (CLI) followed by `ValidateRestartPolicy`
/// (daemon); the default is Docker's `no`.
pub fn restart_policy(s: &str) -> Result<RestartPolicy, String> {
    if s.is_empty() {
        return Ok(RestartPolicy::default());
    }
    let (name, count) = match s.split_once(':') {
        Some(("", _)) => {
            return Err("invalid restart policy format: no policy provided before colon".into())
        }
        Some((name, count)) => (name, count),
        None => (s, ""),
    };
    let maximum_retry_count = if count.is_empty() {
        0
    } else {
        count.parse::<i64>().map_err(|_| {
            "invalid restart policy format: maximum retry count must be an integer".to_string()
        })?
    };
    match name {
        "always" | "unless-stopped" | "no" if maximum_retry_count != 0 => {
            let mut msg = "invalid restart policy: maximum retry count can only be used with 'on-failure'".to_string();
            if maximum_retry_count < 0 {
                msg.push_str(" and cannot be negative");
            }
            Err(msg)
        }
        "on-failure" if maximum_retry_count < 0 => {
            Err("invalid restart policy: maximum retry count cannot be negative".into())
        }
        "always" | "unless-stopped" | "no" | "on-failure" => Ok(RestartPolicy {
            name: name.to_string(),
            maximum_retry_count,
        }),
        _ => Err(format!(
            "invalid restart policy: unknown policy '{name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
        )),
    }
}

/// moby/sys/signal `ParseSignal` (names with or without `SIG`, any case, or
/// a number), which the daemon applies to `--stop-signal`.
pub fn signal(s: &str) -> Result<(), String> {
    const NAMES: [&str; 34] = [
        "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT",
        "KILL", "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM",
        "TRAP", "TSTP", "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
    ];
    let invalid = || format!("invalid signal: {s}");
    if let Ok(n) = s.parse::<i64>() {
        return if (1..=64).contains(&n) {
            Ok(())
        } else {
            Err(invalid())
        };
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    // RTMIN, RTMIN+1 … RTMIN+15, RTMAX-14 … RTMAX-1, RTMAX.
    let realtime = |prefix: &str, sign: char, max: u8| match name.strip_prefix(prefix) {
        Some("") => true,
        Some(offset) => offset
            .strip_prefix(sign)
            .and_then(|n| n.parse::<u8>().ok().filter(|v| v.to_string() == n))
            .is_some_and(|n| (1..=max).contains(&n)),
        None => false,
    };
    if NAMES.contains(&name) || realtime("RTMIN", '+', 15) || realtime("RTMAX", '-', 14) {
        Ok(())
    } else {
        Err(invalid())
    }
}

/// The daemon's `validContainerNamePattern`; returns the name without the
/// optional leading `/`.
pub fn container_name(s: &str) -> Result<String, String> {
    let name = s.strip_prefix('/').unwrap_or(s);
    if restricted_name(name) {
        Ok(name.to_string())
    } else {
        Err(format!(
            "Invalid container name ({s}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        ))
    }
}

/// `^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`, the pattern of container and local volume names.
pub fn restricted_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// `opts.ValidateEnv`: `K=V` as is, a bare `NAME` with the host's value.
/// A `NAME` unset on the host stays bare, as Docker sends it: in the API a
/// bare name means "remove NAME from the environment" (the image's too).
pub fn env_entry(s: &str) -> Result<String, String> {
    let (key, _, has_value) = cut(s, '=');
    if key.is_empty() {
        return Err(format!("invalid environment variable: {s}"));
    }
    if has_value {
        return Ok(s.to_string());
    }
    Ok(match std::env::var_os(key) {
        Some(v) => format!("{key}={}", v.to_string_lossy()),
        None => s.to_string(),
    })
}

/// `opts.ValidateLabel`.
pub fn label(s: &str) -> Result<(), String> {
    let (key, _, _) = cut(s, '=');
    let key = key.trim_start_matches([' ', '\t']);
    if key.is_empty() {
        return Err(format!("invalid label '{s}': empty name"));
    }
    if key.contains([' ', '\t']) {
        return Err(format!("label '{key}' contains whitespaces"));
    }
    Ok(())
}

/// Finds the value of a bare `NAME` in an env file (the host environment).
pub type VariableLookup = dyn Fn(&str) -> Option<String>;

/// Docker's `kvfile.Parse` for `--env-file` and `--label-file`: `#` comments,
/// blank lines, `K=V`, and bare `K` looked up with `lookup` (left out when
/// absent or when there is no lookup). The error is Docker's full message.
pub fn kv_file(path: &Path, lookup: Option<&VariableLookup>) -> Result<Vec<String>, KvFileError> {
    let content = std::fs::read(path).map_err(|source| KvFileError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let invalid = |reason: String| KvFileError::Invalid {
        path: path.display().to_string(),
        reason,
    };
    let mut out = Vec::new();
    let content = content.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&content);
    for (index, raw) in content.split(|&b| b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = std::str::from_utf8(raw)
            .map_err(|_| invalid(format!("invalid utf8 bytes at line {}: {raw:?}", index + 1)))?;
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, _, has_value) = cut(line, '=');
        if key.is_empty() {
            return Err(invalid(format!("no variable name on line '{line}'")));
        }
        if key.contains([' ', '\t']) {
            return Err(invalid(format!("variable '{key}' contains whitespaces")));
        }
        if has_value {
            out.push(line.to_string());
        } else if let Some(value) = lookup.and_then(|f| f(line)) {
            out.push(format!("{key}={value}"));
        }
    }
    Ok(out)
}

/// Why `--env-file`/`--label-file` could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KvFileError {
    #[error("open {path}: {}", go_io_error(source))]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid env file ({path}): {reason}")]
    Invalid { path: String, reason: String },
}

/// An I/O error the way Go prints it: `no such file or directory`.
pub fn go_io_error(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = match text.find(" (os error ") {
        Some(i) => &text[..i],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `opts.ConvertKVStringsToMap`.
pub fn kv_map<'a>(entries: impl IntoIterator<Item = &'a String>) -> BTreeMap<String, String> {
    entries
        .into_iter()
        .map(|e| {
            let (k, v, _) = cut(e, '=');
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// Go's `strings.Cut`.
pub fn cut(s: &str, sep: char) -> (&str, &str, bool) {
    match s.split_once(sep) {
        Some((a, b)) => (a, b, true),
        None => (s, "", false),
    }
}

/// Go's `path.Clean`.
pub fn clean_path(p: &str) -> String {
    if p.is_empty() {
        return ".".to_string();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|&l| l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            _ => parts.push(part),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}
