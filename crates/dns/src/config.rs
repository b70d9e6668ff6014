//! The configuration berth-dns serves: one JSON file per user network in
//! `<runroot>/dns/`, written by the engine (atomically, so the server never
//! reads half a file) and read by the server at start and on each SIGHUP.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::DnsError;

/// The server's pid, for `reload_or_start`/`stop_if_idle`.
pub const PID_FILE: &str = "berth-dns.pid";
/// Serialises the engine's control operations (`flock`).
pub const LOCK_FILE: &str = "berth-dns.lock";
/// The server's stdout/stderr: one line per problem.
pub const LOG_FILE: &str = "berth-dns.log";
/// The token of the latest reload request (written by the engine before it
/// signals the server).
pub const RELOAD_FILE: &str = "berth-dns.reload";
/// The server's answer to a reload request: [`ReadyState`].
pub const READY_FILE: &str = "berth-dns.ready";

/// The DNS port on listen addresses and upstreams without one.
pub const DNS_PORT: u16 = 53;

/// What berth-dns serves for one network (the file `<dir>/<network>.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkDns {
    pub network: String,
    /// Addresses the server listens on (UDP and TCP, port 53): the network's
    /// gateway address(es). A query is answered from the records of the
    /// network whose address received it.
    pub listen: Vec<IpAddr>,
    /// Servers for the names not answered locally: `IP` or `IP:PORT`
    /// (`[IPv6]:PORT`). Empty: the host's /etc/resolv.conf nameservers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upstreams: Vec<String>,
    /// Domains under which the names also resolve (`web.<domain>`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(default)]
    pub records: Vec<Record>,
}

/// One container (endpoint) on the network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The container's addresses on this network.
    pub ip: Vec<IpAddr>,
    /// Container name first (it is the PTR answer), then the short id and
    /// the aliases. Matched case-insensitively, a trailing dot ignored.
    pub names: Vec<String>,
    /// The container's id, the same in every network file the container is
    /// in. With it, a container attached to several networks resolves the
    /// names of all its networks whichever of its nameservers it asks (as
    /// with Docker); without it, only the names of the network asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
}

/// The server's acknowledgement of a reload (or of its start).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadyState {
    pub pid: i32,
    /// The content of [`RELOAD_FILE`] when the reload began.
    pub token: String,
    /// Listen addresses that could not be bound, one message each.
    #[serde(default)]
    pub listen_failures: Vec<String>,
}

/// Writes the network's file atomically (temporary file, then rename).
pub fn write(dir: &Path, cfg: &NetworkDns) -> Result<(), DnsError> {
    validate(cfg)?;
    std::fs::create_dir_all(dir).map_err(|e| DnsError::io("create directory", dir, e))?;
    let json = serde_json::to_vec_pretty(cfg).map_err(|e| DnsError::Parse {
        path: network_file(dir, &cfg.network),
        source: e,
    })?;
    write_atomic(dir, &format!("{}.json", cfg.network), &json)
}

/// Removes the network's file; a missing file is not an error.
pub fn remove(dir: &Path, network: &str) -> Result<(), DnsError> {
    check_network_name(network)?;
    let path = network_file(dir, network);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(DnsError::io("remove", path, e)),
    }
}

/// `<dir>/<network>.json`.
pub fn network_file(dir: &Path, network: &str) -> PathBuf {
    dir.join(format!("{network}.json"))
}

/// The network files in `dir` (none when `dir` does not exist).
pub fn network_files(dir: &Path) -> Result<Vec<PathBuf>, DnsError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(DnsError::io("read directory", dir, e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| DnsError::io("read directory", dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        // Temporary files of `write_atomic` start with a dot.
        if !name.starts_with('.') && name.ends_with(".json") {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// Reads one network file and checks it.
pub fn read(path: &Path) -> Result<NetworkDns, DnsError> {
    let data = std::fs::read(path).map_err(|e| DnsError::io("read", path, e))?;
    let cfg: NetworkDns = serde_json::from_slice(&data).map_err(|e| DnsError::Parse {
        path: path.to_path_buf(),
        source: e,
    })?;
    validate(&cfg)?;
    Ok(cfg)
}

/// Every network file of `dir`: the readable ones, and an error per other.
pub fn read_all(dir: &Path) -> Result<(Vec<NetworkDns>, Vec<DnsError>), DnsError> {
    let mut networks = Vec::new();
    let mut errors = Vec::new();
    for path in network_files(dir)? {
        match read(&path) {
            Ok(cfg) => networks.push(cfg),
            // Removed between the listing and the read: not a problem.
            Err(DnsError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => errors.push(e),
        }
    }
    Ok((networks, errors))
}

/// Parses an upstream: `IP`, `IP:PORT` or `[IPv6]:PORT`.
pub fn parse_upstream(s: &str) -> Option<SocketAddr> {
    let s = s.trim();
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Some(addr);
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, DNS_PORT));
    }
    let bracketed = s.strip_prefix('[').and_then(|r| r.strip_suffix(']'))?;
    bracketed
        .parse::<IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, DNS_PORT))
}

/// A name as the server compares it: lowercase, without a trailing dot.
pub fn normalize_name(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

fn validate(cfg: &NetworkDns) -> Result<(), DnsError> {
    check_network_name(&cfg.network)?;
    for upstream in &cfg.upstreams {
        if parse_upstream(upstream).is_none() {
            return Err(DnsError::InvalidUpstream {
                network: cfg.network.clone(),
                upstream: upstream.clone(),
            });
        }
    }
    let names = cfg
        .records
        .iter()
        .flat_map(|r| r.names.iter())
        .chain(cfg.search.iter());
    for name in names {
        if let Err(reason) = check_dns_name(name) {
            return Err(DnsError::InvalidName {
                network: cfg.network.clone(),
                name: name.clone(),
                reason,
            });
        }
    }
    Ok(())
}

/// A network name is a file name here: no path separators, no leading dot
/// (temporary files), not empty.
fn check_network_name(name: &str) -> Result<(), DnsError> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.contains('/') || name.contains('\0') {
        Some("it contains '/' or NUL")
    } else if name.starts_with('.') {
        Some("it starts with '.'")
    } else if name.len() > 200 {
        Some("it is longer than 200 bytes")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(DnsError::InvalidNetworkName {
            name: name.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Container names and aliases are looser than host names (`_` is allowed,
/// as in Docker), but they must be encodable as DNS names.
fn check_dns_name(name: &str) -> Result<(), &'static str> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return Err("it is empty");
    }
    if name.len() > 253 {
        return Err("it is longer than 253 characters");
    }
    if name
        .split('.')
        .any(|label| label.is_empty() || label.len() > 63)
    {
        return Err("it has an empty label or a label longer than 63 characters");
    }
    if !name.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("it contains spaces, control or non-ASCII characters");
    }
    Ok(())
}

/// Writes `<dir>/<name>` through a temporary file in the same directory.
pub(crate) fn write_atomic(dir: &Path, name: &str, data: &[u8]) -> Result<(), DnsError> {
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let path = dir.join(name);
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(data)?;
        std::fs::rename(&tmp, &path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        DnsError::io("write", path, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_with_and_without_port() {
        assert_eq!(
            parse_upstream("10.0.0.2"),
            Some("10.0.0.2:53".parse().unwrap())
        );
        assert_eq!(
            parse_upstream("127.0.0.9:5353"),
            Some("127.0.0.9:5353".parse().unwrap())
        );
        assert_eq!(
            parse_upstream("fd00::1"),
            Some("[fd00::1]:53".parse().unwrap())
        );
        assert_eq!(
            parse_upstream("[fd00::1]"),
            Some("[fd00::1]:53".parse().unwrap())
        );
        assert_eq!(
            parse_upstream("[fd00::1]:5353"),
            Some("[fd00::1]:5353".parse().unwrap())
        );
        assert_eq!(parse_upstream("dns.example"), None);
        assert_eq!(parse_upstream("10.0.0.2:x"), None);
    }

    #[test]
    fn write_read_remove() {
        let dir = std::env::temp_dir().join(format!("berth-dns-config-{}", std::process::id()));
        let cfg = NetworkDns {
            network: "net1".into(),
            listen: vec!["172.30.0.1".parse().unwrap()],
            upstreams: vec!["127.0.0.9:5353".into()],
            search: vec![],
            records: vec![Record {
                ip: vec!["172.30.0.2".parse().unwrap()],
                names: vec!["web".into(), "Alias.".into()],
                container: Some("abc".into()),
            }],
        };
        write(&dir, &cfg).unwrap();
        let files = network_files(&dir).unwrap();
        assert_eq!(files, vec![dir.join("net1.json")]);
        assert_eq!(read(&files[0]).unwrap(), cfg);
        remove(&dir, "net1").unwrap();
        remove(&dir, "net1").unwrap();
        assert!(network_files(&dir).unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_input_is_refused_before_anything_is_written() {
        let dir = std::env::temp_dir().join(format!("berth-dns-bad-{}", std::process::id()));
        let mut cfg = NetworkDns {
            network: "../x".into(),
            listen: vec![],
            upstreams: vec![],
            search: vec![],
            records: vec![],
        };
        assert!(matches!(
            write(&dir, &cfg),
            Err(DnsError::InvalidNetworkName { .. })
        ));
        cfg.network = "n".into();
        cfg.upstreams = vec!["resolver.example".into()];
        let err = write(&dir, &cfg).unwrap_err();
        assert!(err.to_string().contains("resolver.example"), "{err}");
        cfg.upstreams.clear();
        cfg.records.push(Record {
            ip: vec![],
            names: vec!["a b".into()],
            container: None,
        });
        assert!(matches!(
            write(&dir, &cfg),
            Err(DnsError::InvalidName { .. })
        ));
        assert!(!dir.exists());
    }

    #[test]
    fn names_compare_lowercase_without_trailing_dot() {
        assert_eq!(normalize_name("Web.Example."), "web.example");
        assert_eq!(normalize_name("web"), "web");
    }
}
