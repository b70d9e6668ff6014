//! Registry settings from `/etc/berth/berth.toml` (Docker's daemon.json
//! names): insecure registries, Docker Hub mirrors, the certs.d directory.
//!
//! ```toml
//! insecure-registries = ["myregistry:5000", "10.0.0.0/8"]
//! registry-mirrors = ["https://mirror.example.com"]
//! certs-d = "/etc/berth/certs.d"
//! ```
//!
//! `BERTH_CONFIG` names another file and `BERTH_CERTS_D` another certs.d
//! (tests use both). A missing file means no settings.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::error::RegistryError;

pub const DEFAULT_CONFIG_PATH: &str = "/etc/berth/berth.toml";
pub const DEFAULT_CERTS_D: &str = "/etc/berth/certs.d";

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct ConfigFile {
    #[serde(default)]
    insecure_registries: Vec<String>,
    #[serde(default)]
    registry_mirrors: Vec<String>,
    #[serde(default)]
    certs_d: Option<PathBuf>,
}

/// What the client needs to know about registries besides their names.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// `host[:port]` names and CIDR ranges served over plain HTTP or HTTPS
    /// without certificate verification.
    pub insecure_registries: Vec<String>,
    /// Mirrors tried before Docker Hub, as base URLs.
    pub mirrors: Vec<String>,
    /// `<certs_d>/<host:port>/ca.crt` and other `*.crt` files there are
    /// trusted for that registry, on top of the system CAs.
    pub certs_d: PathBuf,
    /// The file these came from (for error messages).
    pub config_path: PathBuf,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            insecure_registries: Vec::new(),
            mirrors: Vec::new(),
            certs_d: PathBuf::from(DEFAULT_CERTS_D),
            config_path: PathBuf::from(DEFAULT_CONFIG_PATH),
        }
    }
}

impl RegistryConfig {
    /// Reads `BERTH_CONFIG` (default `/etc/berth/berth.toml`), with
    /// `BERTH_CERTS_D` overriding its certs directory.
    pub fn load() -> Result<Self, RegistryError> {
        let path = std::env::var_os("BERTH_CONFIG")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH));
        let mut cfg = Self::from_file(&path)?;
        if let Some(d) = std::env::var_os("BERTH_CERTS_D") {
            cfg.certs_d = PathBuf::from(d);
        }
        Ok(cfg)
    }

    /// Reads one file; a missing file gives the defaults.
    pub fn from_file(path: &Path) -> Result<Self, RegistryError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self {
                    config_path: path.to_path_buf(),
                    ..Self::default()
                })
            }
            Err(e) => return Err(RegistryError::io("reading", path, e)),
        };
        let file: ConfigFile = toml::from_str(&text).map_err(|e| RegistryError::Config {
            path: path.to_path_buf(),
            reason: e.to_string().trim().replace('\n', " "),
        })?;
        for m in &file.registry_mirrors {
            if !(m.starts_with("https://") || m.starts_with("http://")) {
                return Err(RegistryError::Config {
                    path: path.to_path_buf(),
                    reason: format!(
                        "registry-mirrors: {m:?} is not a URL (write https://host[:port])"
                    ),
                });
            }
        }
        Ok(Self {
            insecure_registries: file.insecure_registries,
            mirrors: file.registry_mirrors,
            certs_d: file
                .certs_d
                .unwrap_or_else(|| PathBuf::from(DEFAULT_CERTS_D)),
            config_path: path.to_path_buf(),
        })
    }

    /// Whether `host` (`name[:port]`) may be reached without TLS
    /// verification: listed by name, or an IP literal in a listed CIDR, or
    /// a loopback address (Docker's default insecure range 127.0.0.0/8;
    /// `localhost` resolves there).
    pub fn is_insecure(&self, host: &str) -> bool {
        let name = host_name(host);
        if self.insecure_registries.iter().any(|i| i == host) {
            return true;
        }
        if name == "localhost" {
            return true;
        }
        let Ok(ip) = name.trim_matches(['[', ']']).parse::<IpAddr>() else {
            return false;
        };
        if ip.is_loopback() {
            return true;
        }
        self.insecure_registries
            .iter()
            .any(|c| cidr_contains(c, &ip) || c == name)
    }

    /// The certs.d directory of `host` (`name[:port]`).
    pub fn certs_dir(&self, host: &str) -> PathBuf {
        self.certs_d.join(host)
    }
}

/// `host` without its port (`[::1]:5000` → `[::1]`, `a:5000` → `a`).
pub(crate) fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split_once(']')
            .map_or(host, |(h, _)| &host[..h.len() + 1]);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

fn cidr_contains(cidr: &str, ip: &IpAddr) -> bool {
    let Some((net, bits)) = cidr.split_once('/') else {
        return false;
    };
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(n) & mask == u32::from(*a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(n) & mask == u128::from(*a) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_by_name_cidr_and_loopback() {
        let cfg = RegistryConfig {
            insecure_registries: vec!["reg.local:5000".into(), "10.1.0.0/16".into()],
            ..RegistryConfig::default()
        };
        assert!(cfg.is_insecure("reg.local:5000"));
        assert!(!cfg.is_insecure("reg.local:5001"));
        assert!(cfg.is_insecure("10.1.2.3:443"));
        assert!(!cfg.is_insecure("10.2.0.1"));
        assert!(cfg.is_insecure("localhost:5000"));
        assert!(cfg.is_insecure("127.0.0.1:38000"));
        assert!(cfg.is_insecure("[::1]:5000"));
        assert!(!cfg.is_insecure("registry-1.docker.io"));
    }

    #[test]
    fn reads_file_and_rejects_bad_mirror() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("berth.toml");
        std::fs::write(
            &p,
            "insecure-registries = [\"a:5000\"]\nregistry-mirrors = [\"https://m.example\"]\ncerts-d = \"/x/certs.d\"\n",
        )
        .unwrap();
        let cfg = RegistryConfig::from_file(&p).unwrap();
        assert_eq!(cfg.insecure_registries, ["a:5000"]);
        assert_eq!(cfg.mirrors, ["https://m.example"]);
        assert_eq!(cfg.certs_dir("h:1"), Path::new("/x/certs.d/h:1"));
        std::fs::write(&p, "registry-mirrors = [\"m.example\"]\n").unwrap();
        let err = RegistryConfig::from_file(&p).unwrap_err().to_string();
        assert!(err.contains("is not a URL"), "{err}");
        let missing = RegistryConfig::from_file(&dir.path().join("nope.toml")).unwrap();
        assert!(missing.insecure_registries.is_empty());
    }
}
