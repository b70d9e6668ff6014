//! Where a registry is reached: its endpoints (Docker Hub mirrors, HTTPS,
//! plain HTTP for insecure registries) and the HTTP agent for each, with
//! the TLS roots it trusts (system CAs plus certs.d).

use std::time::Duration;

use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};
use ureq::Agent;

use super::config::RegistryConfig;
use super::error::RegistryError;

/// Docker Hub's API host; references name it `docker.io`.
pub const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";
const SYSTEM_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
];
const USER_AGENT: &str = concat!("berth/", env!("CARGO_PKG_VERSION"));

/// One place a registry can be reached at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `https://registry-1.docker.io`, `http://localhost:5000`.
    pub base: String,
    /// `host[:port]` for messages and certs.d.
    pub host: String,
    /// HTTPS without certificate verification (an insecure registry).
    pub skip_verify: bool,
    pub mirror: bool,
}

/// The endpoints to try for `registry` (the reference's domain), in order:
/// mirrors first (Docker Hub only); an insecure registry over HTTPS without
/// verification, then plain HTTP.
pub fn endpoints(registry: &str, config: &RegistryConfig) -> Vec<Endpoint> {
    let mut out = Vec::new();
    let host = if registry == crate::reference::DEFAULT_DOMAIN {
        for m in &config.mirrors {
            let m = m.trim_end_matches('/');
            let mhost = m
                .split_once("://")
                .map_or(m, |(_, h)| h)
                .split('/')
                .next()
                .unwrap_or(m)
                .to_string();
            out.push(Endpoint {
                base: m.to_string(),
                skip_verify: config.is_insecure(&mhost),
                host: mhost,
                mirror: true,
            });
        }
        DOCKER_HUB_API_HOST.to_string()
    } else {
        registry.to_string()
    };
    let insecure = config.is_insecure(&host);
    out.push(Endpoint {
        base: format!("https://{host}"),
        host: host.clone(),
        skip_verify: insecure,
        mirror: false,
    });
    if insecure {
        out.push(Endpoint {
            base: format!("http://{host}"),
            host,
            skip_verify: false,
            mirror: false,
        });
    }
    out
}

pub(crate) fn build_agent(
    endpoint: &Endpoint,
    config: &RegistryConfig,
) -> Result<Agent, RegistryError> {
    let mut tls = TlsConfig::builder();
    if endpoint.skip_verify {
        tls = tls.disable_verification(true);
    } else if endpoint.base.starts_with("https://") || endpoint.base.is_empty() {
        let roots = trusted_roots(&config.certs_dir(&endpoint.host))?;
        if !roots.is_empty() {
            tls = tls.root_certs(RootCerts::new_with_certs(&roots));
        }
    }
    let cfg = Agent::config_builder()
        .http_status_as_error(false)
        .user_agent(USER_AGENT)
        .timeout_connect(Some(Duration::from_secs(15)))
        .timeout_recv_response(Some(Duration::from_secs(120)))
        .max_idle_connections_per_host(8)
        .input_buffer_size(256 << 10)
        .output_buffer_size(256 << 10)
        .tls_config(tls.build())
        .build();
    Ok(cfg.new_agent())
}

/// The system CA bundle plus every `*.crt` in the registry's certs.d
/// directory. Empty: ureq's built-in Mozilla roots.
fn trusted_roots(certs_dir: &std::path::Path) -> Result<Vec<Certificate<'static>>, RegistryError> {
    let mut out = Vec::new();
    let mut add_pem = |path: &std::path::Path, required: bool| -> Result<(), RegistryError> {
        let pem = match std::fs::read(path) {
            Ok(p) => p,
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(RegistryError::io("reading CA certificates", path, e)),
        };
        let before = out.len();
        for item in ureq::tls::parse_pem(&pem) {
            match item {
                Ok(PemItem::Certificate(c)) => out.push(c),
                Ok(_) => {}
                Err(e) if required => {
                    return Err(RegistryError::Config {
                        path: path.to_path_buf(),
                        reason: format!("not a PEM certificate: {e}"),
                    })
                }
                Err(_) => {}
            }
        }
        if required && out.len() == before {
            return Err(RegistryError::Config {
                path: path.to_path_buf(),
                reason: "holds no PEM certificate".into(),
            });
        }
        Ok(())
    };
    for bundle in SYSTEM_CA_BUNDLES {
        add_pem(std::path::Path::new(bundle), false)?;
    }
    if let Ok(rd) = std::fs::read_dir(certs_dir) {
        let mut files: Vec<_> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "crt"))
            .collect();
        files.sort();
        for f in files {
            add_pem(&f, true)?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_mirrors_first_and_insecure_falls_back_to_http() {
        let cfg = RegistryConfig {
            mirrors: vec!["https://mirror.example:8443/".into()],
            ..RegistryConfig::default()
        };
        let eps = endpoints("docker.io", &cfg);
        assert_eq!(eps.len(), 2);
        assert_eq!(eps[0].base, "https://mirror.example:8443");
        assert_eq!(eps[0].host, "mirror.example:8443");
        assert!(eps[0].mirror);
        assert_eq!(eps[1].base, "https://registry-1.docker.io");
        assert!(!eps[1].skip_verify);
        let eps = endpoints("localhost:5000", &cfg);
        assert_eq!(
            eps.iter().map(|e| e.base.as_str()).collect::<Vec<_>>(),
            ["https://localhost:5000", "http://localhost:5000"]
        );
        assert!(eps[0].skip_verify);
        let eps = endpoints("reg.example.com", &cfg);
        assert_eq!(eps.len(), 1);
    }
}
