//! htpasswd basic authentication: bcrypt entries (`htpasswd -B`, what
//! distribution accepts) and the older `{SHA}` form.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;

use base64::Engine as _;
use sha1::Sha1;
use sha2::{Digest as _, Sha256};

use crate::error::RegistryError;

#[derive(Debug)]
enum PasswordHash {
    Bcrypt(String),
    Sha1([u8; 20]),
}

/// Users and their password hashes, and the credentials already checked:
/// bcrypt costs milliseconds per check, and clients send the credentials
/// with every request.
#[derive(Debug)]
pub struct Htpasswd {
    users: HashMap<String, PasswordHash>,
    verified: Mutex<HashSet<[u8; 32]>>,
}

/// Credentials from an `Authorization: Basic` header.
#[derive(Clone)]
pub struct BasicCredentials {
    pub user: String,
    password: String,
}

impl BasicCredentials {
    pub fn from_header(value: &[u8]) -> Option<Self> {
        let s = std::str::from_utf8(value).ok()?;
        let (scheme, b64) = s.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .ok()?;
        let raw = String::from_utf8(raw).ok()?;
        let (user, password) = raw.split_once(':')?;
        Some(Self {
            user: user.to_string(),
            password: password.to_string(),
        })
    }

    fn key(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.user.as_bytes());
        h.update([0]);
        h.update(self.password.as_bytes());
        h.finalize().into()
    }
}

impl Htpasswd {
    pub fn load(path: &Path) -> Result<Self, RegistryError> {
        let text = std::fs::read_to_string(path).map_err(|source| RegistryError::HtpasswdRead {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, RegistryError> {
        let mut users = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |reason: &str| RegistryError::HtpasswdEntry {
                path: path.to_path_buf(),
                line: i + 1,
                reason: reason.to_string(),
            };
            let (user, hash) = line
                .split_once(':')
                .ok_or_else(|| bad("expected user:hash"))?;
            let hash = if ["$2a$", "$2b$", "$2x$", "$2y$"]
                .iter()
                .any(|p| hash.starts_with(p))
            {
                PasswordHash::Bcrypt(hash.to_string())
            } else if let Some(b64) = hash.strip_prefix("{SHA}") {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|_| bad("{SHA} hash is not base64"))?;
                PasswordHash::Sha1(
                    raw.try_into()
                        .map_err(|_| bad("{SHA} hash is not 20 bytes"))?,
                )
            } else {
                return Err(bad("unsupported hash (use bcrypt: htpasswd -B)"));
            };
            users.insert(user.to_string(), hash);
        }
        if users.is_empty() {
            return Err(RegistryError::HtpasswdEntry {
                path: path.to_path_buf(),
                line: 0,
                reason: "no users".to_string(),
            });
        }
        Ok(Self {
            users,
            verified: Mutex::new(HashSet::new()),
        })
    }

    /// Whether these credentials were verified before (no hashing needed).
    pub fn known_good(&self, c: &BasicCredentials) -> bool {
        self.verified_set().contains(&c.key())
    }

    /// Checks credentials against the file (slow for bcrypt: call it off
    /// the async threads).
    pub fn verify(&self, c: &BasicCredentials) -> bool {
        let ok = match self.users.get(&c.user) {
            Some(PasswordHash::Bcrypt(h)) => bcrypt::verify(&c.password, h).unwrap_or(false),
            Some(PasswordHash::Sha1(want)) => {
                let got: [u8; 20] = Sha1::digest(c.password.as_bytes()).into();
                constant_time_eq(&got, want)
            }
            None => false,
        };
        if ok {
            self.verified_set().insert(c.key());
        }
        ok
    }

    fn verified_set(&self) -> std::sync::MutexGuard<'_, HashSet<[u8; 32]>> {
        self.verified.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(user: &str, pw: &str) -> Vec<u8> {
        let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"));
        format!("Basic {b}").into_bytes()
    }

    #[test]
    fn bcrypt_and_sha_entries() {
        let bc = bcrypt::hash("s3cret", 5)
            .unwrap()
            .replacen("$2b$", "$2y$", 1);
        // {SHA} of "pw", as `htpasswd -s` writes it.
        let text = format!("# users\nalice:{bc}\nbob:{{SHA}}GpHWL3ymc5liWkNopqtdSjuqYHM=\n");
        let h = Htpasswd::parse(Path::new("x"), &text).unwrap();
        let c = BasicCredentials::from_header(&header("alice", "s3cret")).unwrap();
        assert!(!h.known_good(&c));
        assert!(h.verify(&c));
        assert!(h.known_good(&c));
        assert!(!h.verify(&BasicCredentials::from_header(&header("alice", "nope")).unwrap()));
        assert!(h.verify(&BasicCredentials::from_header(&header("bob", "pw")).unwrap()));
        assert!(!h.verify(&BasicCredentials::from_header(&header("carol", "pw")).unwrap()));
        assert!(BasicCredentials::from_header(b"Bearer abc").is_none());
    }

    #[test]
    fn bad_files_name_the_line() {
        let e = Htpasswd::parse(Path::new("/etc/h"), "a:$apr1$xyz\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "htpasswd file /etc/h, line 1: unsupported hash (use bcrypt: htpasswd -B)"
        );
        assert!(Htpasswd::parse(Path::new("/etc/h"), "\n# nobody\n").is_err());
        assert!(Htpasswd::parse(Path::new("/etc/h"), "justaname\n").is_err());
    }
}
