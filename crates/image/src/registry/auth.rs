//! Registry authentication: `WWW-Authenticate` challenges (Bearer token
//! flow, Basic) and credentials in Docker's `config.json`, so that berth
//! and the docker CLI share logins.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Map, Value};

use super::error::RegistryError;

/// The key Docker stores Docker Hub credentials under.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

/// A user name and password (or identity token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// `Basic base64(user:password)`.
    pub fn basic_header(&self) -> String {
        format!("Basic {}", self.encoded())
    }

    fn encoded(&self) -> String {
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.username, self.password))
    }
}

/// A parsed `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    /// `Bearer realm="…",service="…",scope="…"`.
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

impl Challenge {
    /// Parses the first Basic or Bearer challenge of a header value.
    pub fn parse(header: &str) -> Option<Self> {
        let header = header.trim();
        let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return Some(Challenge::Basic);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let params = parse_params(rest);
        Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
            scope: params.get("scope").cloned(),
        })
    }
}

/// `key="value", key=value` pairs; quoted values may hold commas and `\"`.
fn parse_params(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars
            .by_ref()
            .take_while(|c| *c != '=')
            .collect::<String>()
            .trim()
            .to_ascii_lowercase();
        if key.is_empty() {
            return out;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek().copied() {
                if c == ',' {
                    break;
                }
                value.push(c);
                chars.next();
            }
            value = value.trim().to_string();
        }
        out.insert(key, value);
    }
}

/// A token endpoint's answer.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub access_token: Option<String>,
}

/// Docker's client configuration file (`$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`). Keys berth does not know are kept as they are.
#[derive(Debug)]
pub struct DockerConfigFile {
    path: PathBuf,
    doc: Map<String, Value>,
}

impl DockerConfigFile {
    /// The file Docker would use.
    pub fn default_path() -> PathBuf {
        if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir).join("config.json");
        }
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map_or_else(|| PathBuf::from("/root"), PathBuf::from);
        home.join(".docker").join("config.json")
    }

    /// Loads [`DockerConfigFile::default_path`].
    pub fn load_default() -> Result<Self, RegistryError> {
        Self::load(&Self::default_path())
    }

    /// Loads `path`; a missing or empty file is an empty configuration.
    pub fn load(path: &Path) -> Result<Self, RegistryError> {
        let doc = match std::fs::read(path) {
            Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Map::new(),
            Ok(b) => match serde_json::from_slice::<Value>(&b) {
                Ok(Value::Object(m)) => m,
                Ok(_) => {
                    return Err(RegistryError::Config {
                        path: path.to_path_buf(),
                        reason: "not a JSON object".into(),
                    })
                }
                Err(e) => {
                    return Err(RegistryError::Config {
                        path: path.to_path_buf(),
                        reason: e.to_string(),
                    })
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
            Err(e) => return Err(RegistryError::io("reading", path, e)),
        };
        Ok(Self {
            path: path.to_path_buf(),
            doc,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored credentials for `registry` (`docker.io` finds Docker
    /// Hub's `https://index.docker.io/v1/` entry), if any.
    pub fn credentials(&self, registry: &str) -> Result<Option<Credentials>, RegistryError> {
        let Some(auths) = self.doc.get("auths").and_then(Value::as_object) else {
            return Ok(None);
        };
        let want = auth_key(registry);
        let entry = auths
            .get(&want)
            .or_else(|| {
                auths
                    .iter()
                    .find(|(k, _)| normalize_key(k) == normalize_key(&want))
                    .map(|(_, v)| v)
            })
            .and_then(Value::as_object);
        let Some(entry) = entry else { return Ok(None) };
        if let Some(auth) = entry
            .get("auth")
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty())
        {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| RegistryError::Config {
                    path: self.path.clone(),
                    reason: format!("auths.{want}.auth is not base64 of \"user:password\""),
                })?;
            let (u, p) = decoded
                .split_once(':')
                .ok_or_else(|| RegistryError::Config {
                    path: self.path.clone(),
                    reason: format!("auths.{want}.auth is not base64 of \"user:password\""),
                })?;
            return Ok(Some(Credentials {
                username: u.to_string(),
                password: p.to_string(),
            }));
        }
        let field = |k: &str| entry.get(k).and_then(Value::as_str).map(str::to_string);
        if let (Some(u), Some(p)) = (field("username"), field("password")) {
            return Ok(Some(Credentials {
                username: u,
                password: p,
            }));
        }
        Ok(None)
    }

    /// Stores credentials for `registry` (in `auths.<key>.auth`).
    pub fn set_credentials(&mut self, registry: &str, creds: &Credentials) {
        let auths = self
            .doc
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        if let Value::Object(auths) = auths {
            let mut entry = Map::new();
            entry.insert("auth".into(), Value::String(creds.encoded()));
            auths.insert(auth_key(registry), Value::Object(entry));
        }
    }

    /// Removes the entry for `registry`; returns whether there was one.
    pub fn remove_credentials(&mut self, registry: &str) -> bool {
        let Some(Value::Object(auths)) = self.doc.get_mut("auths") else {
            return false;
        };
        let want = normalize_key(&auth_key(registry));
        let keys: Vec<String> = auths
            .keys()
            .filter(|k| normalize_key(k) == want)
            .cloned()
            .collect();
        for k in &keys {
            auths.remove(k);
        }
        !keys.is_empty()
    }

    /// Writes the file atomically with mode 0600 (it holds passwords).
    pub fn save(&self) -> Result<(), RegistryError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| RegistryError::io("creating", dir, e))?;
        let mut text =
            serde_json::to_vec_pretty(&Value::Object(self.doc.clone())).map_err(|e| {
                RegistryError::Config {
                    path: self.path.clone(),
                    reason: e.to_string(),
                }
            })?;
        text.push(b'\n');
        let tmp = dir.join(format!(".config.json.{}.tmp", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&text)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            RegistryError::io("writing", &self.path, e)
        })
    }
}

/// The `auths` key Docker uses for a registry.
pub fn auth_key(registry: &str) -> String {
    if matches!(
        registry,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    ) {
        DOCKER_HUB_AUTH_KEY.to_string()
    } else {
        registry.to_string()
    }
}

/// Docker's `ConvertToHostname`: `https://host/v1/` → `host`.
fn normalize_key(k: &str) -> String {
    let k = k
        .strip_prefix("https://")
        .or_else(|| k.strip_prefix("http://"))
        .unwrap_or(k);
    let host = k.split('/').next().unwrap_or(k);
    match host {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        h => h.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull,push".into()),
            }
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(Challenge::parse("Negotiate"), None);
        assert_eq!(Challenge::parse("Bearer service=x"), None);
    }

    #[test]
    fn config_round_trip_keeps_other_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"auths":{"other:1":{"auth":"eDp5"}},"psFormat":"table {{.ID}}"}"#,
        )
        .unwrap();
        let mut cfg = DockerConfigFile::load(&path).unwrap();
        assert_eq!(
            cfg.credentials("other:1").unwrap(),
            Some(Credentials {
                username: "x".into(),
                password: "y".into()
            })
        );
        let creds = Credentials {
            username: "user".into(),
            password: "pa:ss".into(),
        };
        cfg.set_credentials("localhost:5000", &creds);
        cfg.set_credentials("docker.io", &creds);
        cfg.save().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("psFormat"), "{text}");
        assert!(text.contains(DOCKER_HUB_AUTH_KEY), "{text}");
        let again = DockerConfigFile::load(&path).unwrap();
        assert_eq!(
            again.credentials("localhost:5000").unwrap(),
            Some(creds.clone())
        );
        assert_eq!(again.credentials("docker.io").unwrap(), Some(creds));
        let mut again = again;
        assert!(again.remove_credentials("localhost:5000"));
        assert!(!again.remove_credentials("localhost:5000"));
        assert_eq!(again.credentials("localhost:5000").unwrap(), None);
    }
}
