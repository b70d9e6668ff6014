//! Parsers for single flag values, with the error texts of the Go functions
//! Docker's CLI and daemon use for them (`strconv`, `time.ParseDuration`,
//! `big.Rat`, go-units, `opts.Validate*`). Each returns the bare reason; the
//! caller wraps it with the flag's name.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use berth_engine::containers::model::{
    DeviceMapping, RestartPolicy, ThrottleDevice, Ulimit, WeightDevice,
};

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

/// go-units `ParseUlimit`: `name=soft[:hard]`.
pub fn ulimit(s: &str) -> Result<Ulimit, String> {
    const NAMES: [&str; 15] = [
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
    ];
    let Some((name, limits)) = s.split_once('=') else {
        return Err(format!("invalid ulimit argument: {s}"));
    };
    if !NAMES.contains(&name) {
        return Err(format!("invalid ulimit type: {name}"));
    }
    let parts: Vec<&str> = limits.split(':').collect();
    let (soft, hard) = match parts.as_slice() {
        [soft] => {
            let soft = go_int_base10(soft)?;
            (soft, soft)
        }
        [soft, hard] => {
            let hard = go_int_base10(hard)?;
            (go_int_base10(soft)?, hard)
        }
        _ => {
            return Err(format!(
                "too many limit value arguments - {limits}, can only have up to two, `soft[:hard]`"
            ))
        }
    };
    if hard != -1 {
        if soft == -1 {
            return Err(format!(
                "ulimit soft limit must be less than or equal to hard limit: soft: -1 (unlimited), hard: {hard}"
            ));
        }
        if soft > hard {
            return Err(format!(
                "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
            ));
        }
    }
    Ok(Ulimit {
        name: name.to_string(),
        soft,
        hard,
    })
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

/// `opts.ValidateEnv` plus the host lookup of a bare `NAME`; `None` when a
/// bare name is unset on the host (the variable is left out).
pub fn env_entry(s: &str) -> Result<Option<String>, String> {
    let (key, _, has_value) = cut(s, '=');
    if key.is_empty() {
        return Err(format!("invalid environment variable: {s}"));
    }
    if has_value {
        return Ok(Some(s.to_string()));
    }
    Ok(std::env::var_os(key).map(|v| format!("{key}={}", v.to_string_lossy())))
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

/// `opts.ValidateIPAddress`: the address in Go's canonical form.
pub fn ip_address(s: &str) -> Result<String, String> {
    parse_ip(s.trim())
        .map(|ip| go_ip_string(&ip))
        .ok_or_else(|| format!("IP address is not correctly formatted: {s}"))
}

/// Go's `net.ParseIP` (no zones, no brackets).
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    s.parse::<IpAddr>().ok()
}

/// Go's `net.IP.String()`: IPv4-mapped addresses print as IPv4.
pub fn go_ip_string(ip: &IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
        IpAddr::V4(v4) => v4.to_string(),
    }
}

/// `opts.ValidateDNSSearch`.
pub fn dns_search(s: &str) -> Result<String, String> {
    let v = s.trim_matches(' ');
    if v == "." {
        return Ok(v.to_string());
    }
    let invalid = || format!("{v} is not a valid domain");
    if !v.chars().any(|c| c.is_ascii_alphabetic()) {
        return Err(invalid());
    }
    // domainRegexp: labels of [a-zA-Z0-9] or [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
    // joined by dots, an optional trailing dot, then trailing whitespace.
    let trimmed = v.trim_end();
    let domain = trimmed.strip_suffix('.').unwrap_or(trimmed);
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if domain.split('.').all(label_ok) && domain.len() < 255 {
        Ok(domain.to_string())
    } else {
        Err(invalid())
    }
}

/// `opts.ValidateExtraHost`: `host:ip`, `host=ip` or `host:host-gateway`,
/// returned as `host:ip`.
pub fn extra_host(s: &str) -> Result<String, String> {
    let (mut key, mut value, mut ok) = cut(s, '=');
    if !ok {
        (key, value, ok) = cut(s, ':');
    }
    if !ok || key.is_empty() || key.contains(':') {
        return Err(format!("bad format for add-host: {s:?}"));
    }
    if value != "host-gateway" {
        if value.len() > 2 && value.starts_with('[') && value.ends_with(']') {
            value = &value[1..value.len() - 1];
        }
        if ip_address(value).is_err() {
            return Err(format!("invalid IP address in add-host: {value:?}"));
        }
    }
    Ok(format!("{key}:{value}"))
}

/// `opts.ValidateLink`: `name` or `name:alias`.
pub fn link(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("empty string specified for links".into());
    }
    if s.splitn(3, ':').count() > 2 {
        return Err(format!("bad format for links: {s}"));
    }
    Ok(())
}

/// Go's `net.ParseMAC`: 6, 8 or 20 octets as `aa:bb:…`, `aa-bb-…` or `aabb.ccdd.…`.
pub fn mac_address(s: &str) -> bool {
    let s = s.trim();
    let hex_group =
        |g: &str, len: usize| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit());
    let valid_octets = |n: usize| matches!(n, 6 | 8 | 20);
    for sep in [':', '-'] {
        if s.contains(sep) {
            let groups: Vec<&str> = s.split(sep).collect();
            return valid_octets(groups.len()) && groups.iter().all(|g| hex_group(g, 2));
        }
    }
    let groups: Vec<&str> = s.split('.').collect();
    groups.len() > 1 && valid_octets(groups.len() * 2) && groups.iter().all(|g| hex_group(g, 4))
}

/// `opts.ValidateSysctl`: only namespaced sysctls may be set.
pub fn sysctl(s: &str) -> Result<(), String> {
    const ALLOWED: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let (key, _, ok) = cut(s, '=');
    if ok
        && !key.is_empty()
        && (ALLOWED.contains(&key) || key.starts_with("net.") || key.starts_with("fs.mqueue."))
    {
        Ok(())
    } else {
        Err(format!("sysctl '{s}' is not allowed"))
    }
}

/// `opts.ValidateWeightDevice`: `/dev/x:weight` with weight 10–1000 (or 0).
pub fn weight_device(s: &str) -> Result<WeightDevice, String> {
    let (path, weight) = device_rate_parts(s)?;
    let weight = go_uint_base10(weight, 16)
        .ok()
        .filter(|&w| w == 0 || (10..=1000).contains(&w))
        .ok_or_else(|| format!("invalid weight for device: {s}"))?;
    Ok(WeightDevice {
        path: path.to_string(),
        weight: weight as u16,
    })
}

/// `opts.ValidateThrottleBpsDevice`: `/dev/x:rate` with a go-units size.
pub fn throttle_bps_device(s: &str) -> Result<ThrottleDevice, String> {
    let (path, rate) = device_rate_parts(s)?;
    let rate = crate::units::ram_in_bytes(rate).map_err(|_| {
        format!("invalid rate for device: {s}. The correct format is <device-path>:<number>[<unit>]. Number must be a positive integer. Unit is optional and can be kb, mb, or gb")
    })?;
    Ok(ThrottleDevice {
        path: path.to_string(),
        rate: rate as u64,
    })
}

/// `opts.ValidateThrottleIOpsDevice`: `/dev/x:iops`.
pub fn throttle_iops_device(s: &str) -> Result<ThrottleDevice, String> {
    let (path, rate) = device_rate_parts(s)?;
    let rate = go_uint_base10(rate, 64).map_err(|_| {
        format!("invalid rate for device: {s}. The correct format is <device-path>:<number>. Number must be a positive integer")
    })?;
    Ok(ThrottleDevice {
        path: path.to_string(),
        rate,
    })
}

fn device_rate_parts(s: &str) -> Result<(&str, &str), String> {
    let (path, value, ok) = cut(s, ':');
    if !ok || path.is_empty() {
        return Err(format!("bad format: {s}"));
    }
    if !path.starts_with("/dev/") {
        return Err(format!("bad format for device path: {s}"));
    }
    Ok((path, value))
}

/// `validateDeviceCgroupRule`: `^[acb] ([0-9]+|\*):([0-9]+|\*) [rwm]{1,3}$`.
pub fn device_cgroup_rule(s: &str) -> Result<(), String> {
    let number = |p: &str| p == "*" || (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let valid = (|| {
        let mut fields = s.splitn(3, ' ');
        let kind = fields.next()?;
        let (major, minor) = fields.next()?.split_once(':')?;
        let access = fields.next()?;
        Some(
            matches!(kind, "a" | "b" | "c")
                && number(major)
                && number(minor)
                && (1..=3).contains(&access.len())
                && access.bytes().all(|b| matches!(b, b'r' | b'w' | b'm')),
        )
    })()
    .unwrap_or(false);
    if valid {
        Ok(())
    } else {
        Err(format!("invalid device cgroup format '{s}'"))
    }
}

/// `--device /dev/x[:/dev/y][:rwm]` (`validateLinuxPath` + `parseLinuxDevice`).
pub fn device(s: &str) -> Result<DeviceMapping, String> {
    let bad_format = || format!("bad format for path: {s}");
    if s.matches(':').count() > 2 {
        return Err(bad_format());
    }
    let parts: Vec<&str> = s.splitn(3, ':').collect();
    if parts[0].is_empty() {
        return Err(bad_format());
    }
    let (host, container, permissions) = match parts.as_slice() {
        [host] => (clean_path(host), String::new(), "rwm".to_string()),
        [host, mode] if valid_device_mode(mode) => {
            (clean_path(host), String::new(), mode.to_string())
        }
        [host, container] => (host.to_string(), clean_path(container), "rwm".to_string()),
        [host, container, mode] => {
            if !valid_device_mode(mode) {
                return Err(format!("bad mode specified: {mode}"));
            }
            (host.to_string(), container.to_string(), mode.to_string())
        }
        _ => return Err(bad_format()),
    };
    let checked = if container.is_empty() {
        &host
    } else {
        &container
    };
    if !checked.starts_with('/') {
        return Err(format!("{checked} is not an absolute path"));
    }
    Ok(DeviceMapping {
        path_in_container: if container.is_empty() {
            host.clone()
        } else {
            container
        },
        path_on_host: host,
        cgroup_permissions: permissions,
    })
}

fn valid_device_mode(mode: &str) -> bool {
    !mode.is_empty()
        && mode.len() <= 3
        && mode.bytes().all(|b| matches!(b, b'r' | b'w' | b'm'))
        && (0..mode.len()).all(|i| !mode[i + 1..].contains(&mode[i..=i]))
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

/// CDI device names (`vendor.com/class=name`), which Docker turns into a
/// device request for the `cdi` driver.
pub fn is_cdi_name(s: &str) -> bool {
    let Some((kind, name)) = s.split_once('=') else {
        return false;
    };
    let Some((vendor, class)) = kind.split_once('/') else {
        return false;
    };
    let word = |w: &str, extra: &[u8]| {
        w.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && w.bytes()
                .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
    };
    word(vendor, b"._-") && word(class, b"_-") && word(name, b"_.:-")
}

/// Names of the Linux capabilities, for `--cap-add`/`--cap-drop`.
const CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The daemon's capability check: `net_admin`, `CAP_NET_ADMIN` and `ALL`
/// are known; anything else is `unknown capability: "CAP_X"`.
pub fn capability(s: &str) -> Result<(), String> {
    let upper = s.trim().to_ascii_uppercase();
    if upper == "ALL" || upper == "RESET" {
        return Ok(());
    }
    let normalized = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    if CAPABILITIES.contains(&normalized.as_str()) {
        Ok(())
    } else {
        Err(format!("unknown capability: {normalized:?}"))
    }
}
