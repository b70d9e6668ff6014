//! The identifiers of the distribution spec: repository names, tags and
//! digests, validated before any of them becomes part of a path on disk.

use std::fmt;

/// Longest repository name distribution accepts (its `RepositoryNameTotalLengthMax`).
const NAME_MAX: usize = 255;
/// Longest tag: one leading character and up to 127 more.
const TAG_MAX: usize = 128;

/// Whether `name` matches the spec's
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`.
pub fn valid_repository(name: &str) -> bool {
    !name.is_empty() && name.len() <= NAME_MAX && name.split('/').all(valid_component)
}

fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// Whether `tag` matches `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= TAG_MAX
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|&x| x.is_ascii_alphanumeric() || x == b'_' || x == b'.' || x == b'-')
}

/// A sha256 content digest, the only algorithm this registry stores by.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

impl Digest {
    /// Parses `sha256:<64 lowercase hex>`; other algorithms are refused.
    pub fn parse(s: &str) -> Option<Self> {
        let hex = s.strip_prefix("sha256:")?;
        let ok = hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ok.then(|| Self {
            hex: hex.to_string(),
        })
    }

    /// The digest of a finished sha256 hash.
    pub fn from_sha256(bytes: &[u8]) -> Self {
        Self {
            hex: hex::encode(bytes),
        }
    }

    pub fn of_bytes(data: &[u8]) -> Self {
        use sha2::Digest as _;
        Self::from_sha256(&sha2::Sha256::digest(data))
    }

    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A manifest reference in a URL: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Tag(String),
    Digest(Digest),
}

impl Reference {
    /// Anything with a `:` is meant as a digest (tags cannot hold one).
    pub fn parse(s: &str) -> Option<Self> {
        if s.contains(':') {
            Digest::parse(s).map(Reference::Digest)
        } else if valid_tag(s) {
            Some(Reference::Tag(s.to_string()))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_follow_the_spec() {
        for ok in [
            "busybox",
            "library/busybox",
            "a/b/c",
            "my-app",
            "a--b",
            "a__b",
            "a.b",
            "x9/y_z.w",
        ] {
            assert!(valid_repository(ok), "{ok} should be valid");
        }
        for bad in [
            "",
            "Busybox",
            "a//b",
            "/a",
            "a/",
            "-a",
            "a-",
            "a___b",
            "a..b",
            "a._b",
            "_a",
            "a/_layers",
            "a b",
        ] {
            assert!(!valid_repository(bad), "{bad} should be invalid");
        }
        assert!(!valid_repository(&"a".repeat(256)));
    }

    #[test]
    fn tags_and_digests() {
        assert!(valid_tag("latest") && valid_tag("_x") && valid_tag("1.0-rc_1"));
        assert!(
            !valid_tag(".x") && !valid_tag("-x") && !valid_tag("") && !valid_tag(&"a".repeat(129))
        );
        let d = Digest::of_bytes(b"");
        assert_eq!(
            d.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Digest::parse(&d.to_string()), Some(d.clone()));
        assert!(Digest::parse("sha512:abcd").is_none());
        assert!(Digest::parse(&format!("sha256:{}", "A".repeat(64))).is_none());
        assert_eq!(Reference::parse("v1"), Some(Reference::Tag("v1".into())));
        assert_eq!(Reference::parse(&d.to_string()), Some(Reference::Digest(d)));
        assert_eq!(Reference::parse("sha256:zz"), None);
    }
}
