//! `images` / `image ls`: summaries and Docker's filters.

use crate::filters::label_matches;
use std::collections::{BTreeMap, HashSet};

use berth_image::{Digest, Reference};
use chrono::{DateTime, Utc};

use super::resolve::resolve;
use super::{store, ImageRecord, ImageService};
use crate::error::EngineError;

/// What `docker images` knows of one image.
#[derive(Debug, Clone)]
pub struct ImageSummary {
    pub id: Digest,
    /// Familiar `repo:tag` names, sorted.
    pub repo_tags: Vec<String>,
    /// Familiar `repo@sha256:…` names.
    pub repo_digests: Vec<String>,
    pub created: Option<DateTime<Utc>>,
    pub size: u64,
    /// Bytes shared with other images (layers they also use).
    pub shared_size: u64,
    pub labels: BTreeMap<String, String>,
    pub parent: Option<Digest>,
    /// Containers created from the image.
    pub containers: i64,
}

/// `--filter` conditions (Docker's names); all must hold.
#[derive(Debug, Clone, Default)]
pub struct ImageFilters {
    pub dangling: Option<bool>,
    /// `reference=` globs; an image matches when one of its names does, and
    /// only the matching names are listed.
    pub reference: Vec<String>,
    /// `label=key` or `label=key=value`.
    pub label: Vec<String>,
    pub before: Option<String>,
    pub since: Option<String>,
}

impl ImageFilters {
    /// Parses `--filter key=value` arguments.
    pub fn parse(args: &[String]) -> Result<Self, EngineError> {
        let mut f = Self::default();
        for arg in args {
            let Some((key, value)) = arg.split_once('=') else {
                return Err(EngineError::InvalidArgument(format!(
                    "bad format of filter (expected name=value): {arg}"
                )));
            };
            match key {
                "dangling" => match value.to_ascii_lowercase().as_str() {
                    "true" | "1" => f.dangling = Some(true),
                    "false" | "0" => f.dangling = Some(false),
                    _ => {
                        return Err(EngineError::InvalidArgument(format!(
                            "invalid filter 'dangling={value}'"
                        )))
                    }
                },
                "reference" => f.reference.push(value.to_string()),
                "label" => f.label.push(value.to_string()),
                "before" => f.before = Some(value.to_string()),
                "since" => f.since = Some(value.to_string()),
                _ => {
                    return Err(EngineError::InvalidArgument(format!(
                        "invalid filter '{key}'"
                    )))
                }
            }
        }
        Ok(f)
    }
}

impl ImageService<'_> {
    /// Lists images newest first. Without `all`, intermediate images
    /// (untagged parents of other images) are hidden, as in Docker.
    pub fn list(
        &self,
        all: bool,
        filters: &ImageFilters,
    ) -> Result<Vec<ImageSummary>, EngineError> {
        let (images, counts) = {
            let db = self.engine.db();
            (
                store::load_all(db.conn())?,
                store::container_counts(db.conn())?,
            )
        };
        let before = filters
            .before
            .as_deref()
            .map(|n| resolve(&images, n).map(|(i, _)| images[i].created))
            .transpose()?;
        let since = filters
            .since
            .as_deref()
            .map(|n| resolve(&images, n).map(|(i, _)| images[i].created))
            .transpose()?;
        let parents: HashSet<Digest> = images.iter().filter_map(|i| i.parent).collect();
        let mut layer_users: BTreeMap<Digest, usize> = BTreeMap::new();
        for img in &images {
            for l in &img.layers {
                *layer_users.entry(l.chain_id).or_default() += 1;
            }
        }
        let mut out = Vec::new();
        for img in &images {
            if !all && img.is_dangling() && parents.contains(&img.id) {
                continue;
            }
            if let Some(d) = filters.dangling {
                if d != img.tags.is_empty() {
                    continue;
                }
            }
            if !filters
                .label
                .iter()
                .all(|l| label_matches(&img.labels(), l))
            {
                continue;
            }
            if let Some(Some(b)) = before {
                if img.created.is_none_or(|c| c >= b) {
                    continue;
                }
            }
            if let Some(Some(s)) = since {
                if img.created.is_none_or(|c| c <= s) {
                    continue;
                }
            }
            let mut tags: Vec<&Reference> = img.tags.iter().collect();
            let mut digests: Vec<&Reference> = img.digests.iter().collect();
            if !filters.reference.is_empty() {
                tags.retain(|t| filters.reference.iter().any(|p| reference_matches(p, t)));
                digests.retain(|t| filters.reference.iter().any(|p| reference_matches(p, t)));
                if tags.is_empty() && digests.is_empty() {
                    continue;
                }
            }
            let shared_size = img
                .layers
                .iter()
                .filter(|l| layer_users.get(&l.chain_id).copied().unwrap_or(0) > 1)
                .map(|l| l.size)
                .sum();
            out.push(ImageSummary {
                id: img.id,
                repo_tags: tags.iter().map(|t| t.familiar()).collect(),
                repo_digests: digests.iter().map(|t| t.familiar()).collect(),
                created: img.created,
                size: img.size,
                shared_size,
                labels: img.labels(),
                parent: img.parent,
                containers: counts.get(&img.id.to_string()).copied().unwrap_or(0),
            });
        }
        out.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }

    pub(crate) fn records(&self) -> Result<Vec<ImageRecord>, EngineError> {
        store::load_all(self.engine.db().conn())
    }

    /// The image `name` refers to (tag, digest or id prefix).
    pub(crate) fn record(&self, name: &str) -> Result<ImageRecord, EngineError> {
        // Tags come first in the resolution order: a name that is a tag
        // needs only its own image read, not every image's config parsed.
        let full_id = name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit());
        let by_tag = !name.starts_with("sha256:") && !full_id;
        if by_tag {
            if let Ok(reference) = Reference::parse(name) {
                if reference.digest().is_none() {
                    if let Some(rec) = store::load_by_tag(self.engine.db().conn(), &reference)? {
                        return Ok(rec);
                    }
                }
            }
        }
        let mut all = self.records()?;
        let (i, _) = resolve(&all, name)?;
        Ok(all.swap_remove(i))
    }
}

/// Docker's `reference.FamiliarMatch`: the glob is matched against the
/// familiar `name:tag` and against the familiar name alone.
pub(crate) fn reference_matches(pattern: &str, reference: &Reference) -> bool {
    let familiar = reference.familiar();
    let name = reference.familiar_repository();
    glob_match(pattern, &familiar) || glob_match(pattern, &name)
}

/// Go's `path.Match`: `*` and `?` do not cross `/`; `[a-z]`, `[^x]` classes;
/// `\` escapes.
pub(crate) fn glob_match(pattern: &str, name: &str) -> bool {
    fn rec(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => {
                let rest = &p[1..];
                for i in 0..=n.len() {
                    if rec(rest, &n[i..]) {
                        return true;
                    }
                    if i < n.len() && n[i] == '/' {
                        return false;
                    }
                }
                false
            }
            Some('?') => !n.is_empty() && n[0] != '/' && rec(&p[1..], &n[1..]),
            Some('[') => {
                let Some(&c) = n.first() else { return false };
                let mut i = 1;
                let negate = p.get(1) == Some(&'^');
                if negate {
                    i += 1;
                }
                let mut matched = false;
                let mut first = true;
                while i < p.len() && (first || p[i] != ']') {
                    first = false;
                    let lo = p[i];
                    if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|&h| h != ']') {
                        let hi = p[i + 2];
                        matched |= lo <= c && c <= hi;
                        i += 3;
                    } else {
                        matched |= lo == c;
                        i += 1;
                    }
                }
                if i >= p.len() {
                    return false;
                }
                matched != negate && c != '/' && rec(&p[i + 1..], &n[1..])
            }
            Some('\\') if p.len() > 1 => !n.is_empty() && n[0] == p[1] && rec(&p[2..], &n[1..]),
            Some(&c) => !n.is_empty() && n[0] == c && rec(&p[1..], &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    rec(&p, &n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_like_go_path_match() {
        assert!(glob_match("busy*", "busybox"));
        assert!(glob_match("busybox:*", "busybox:latest"));
        assert!(!glob_match("*", "localhost/busybox"));
        assert!(glob_match("*/*", "localhost/busybox"));
        assert!(glob_match("b?sybox", "busybox"));
        assert!(glob_match("[a-c]usybox", "busybox"));
        assert!(!glob_match("[^b]usybox", "busybox"));
        assert!(!glob_match("busy", "busybox"));
    }

    #[test]
    fn reference_filter_matches_familiar_forms() {
        let r = Reference::parse("busybox:1.36").unwrap();
        assert!(reference_matches("busybox", &r));
        assert!(reference_matches("busybox:1.*", &r));
        assert!(!reference_matches("busybox:latest", &r));
        let l = Reference::parse("localhost/busybox:latest").unwrap();
        assert!(reference_matches("localhost/*", &l));
    }

    #[test]
    fn filter_parsing() {
        let f = ImageFilters::parse(&["dangling=true".into(), "label=a=b".into()]).unwrap();
        assert_eq!(f.dangling, Some(true));
        assert_eq!(f.label, vec!["a=b".to_string()]);
        assert!(ImageFilters::parse(&["nope=1".into()]).is_err());
        assert!(ImageFilters::parse(&["dangling".into()]).is_err());
    }
}
