//! `tag`, `rmi` and `image prune`, with Docker's rules and messages.

use std::collections::HashSet;

use berth_image::{Digest, ImageError, Reference};
use chrono::{DateTime, Utc};

use super::resolve::{resolve, Matched};
use super::{store, ImageRecord, ImageService};
use crate::error::EngineError;

/// One line of `rmi`/`prune` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoveEvent {
    /// A name was removed (`Untagged: busybox:latest`).
    Untagged(String),
    /// An image or layer was deleted (`Deleted: sha256:…`).
    Deleted(Digest),
}

/// `image prune --filter` conditions (Docker's `until`, `label`, `label!`).
#[derive(Debug, Clone, Default)]
pub struct PruneFilters {
    /// Only images created before this time.
    pub until: Option<DateTime<Utc>>,
    /// `key` or `key=value` labels the image must have.
    pub label: Vec<String>,
    /// `key` or `key=value` labels the image must not have.
    pub label_not: Vec<String>,
}

impl PruneFilters {
    /// Parses `--filter key=value` arguments; `until` takes an RFC 3339
    /// time, Unix seconds, or a Go duration before now (`24h`, `1h30m`).
    pub fn parse(args: &[String]) -> Result<Self, EngineError> {
        let mut f = Self::default();
        for arg in args {
            let bad = || {
                EngineError::InvalidArgument(format!(
                    "bad format of filter (expected name=value): {arg}"
                ))
            };
            if let Some((k, v)) = arg.split_once("!=") {
                if k != "label" {
                    return Err(EngineError::InvalidArgument(format!(
                        "invalid filter '{k}!'"
                    )));
                }
                f.label_not.push(v.to_string());
                continue;
            }
            let (key, value) = arg.split_once('=').ok_or_else(bad)?;
            match key {
                "until" => f.until = Some(parse_until(value)?),
                "label" => f.label.push(value.to_string()),
                "label!" => f.label_not.push(value.to_string()),
                _ => {
                    return Err(EngineError::InvalidArgument(format!(
                        "invalid filter '{key}'"
                    )))
                }
            }
        }
        Ok(f)
    }

    fn matches(&self, img: &ImageRecord) -> bool {
        if let Some(until) = self.until {
            if img.created.is_none_or(|c| c >= until) {
                return false;
            }
        }
        let labels = img.labels();
        let has = |l: &String| match l.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|have| have == v),
            None => labels.contains_key(l.as_str()),
        };
        self.label.iter().all(has) && !self.label_not.iter().any(has)
    }
}

fn parse_until(value: &str) -> Result<DateTime<Utc>, EngineError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(secs) = value.parse::<i64>() {
        return DateTime::from_timestamp(secs, 0).ok_or_else(|| {
            EngineError::InvalidArgument(format!("invalid until timestamp {value:?}"))
        });
    }
    // Go durations: a sequence of number+unit pairs (h, m, s, ms).
    let mut total = chrono::Duration::zero();
    let mut num = String::new();
    let mut chars = value.chars().peekable();
    let invalid = || {
        EngineError::InvalidArgument(format!(
            "invalid until value {value:?}: use a timestamp or a duration like 24h"
        ))
    };
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let n: f64 = num.parse().map_err(|_| invalid())?;
        num.clear();
        let unit_ms = match c {
            'h' => 3_600_000.0,
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                1.0
            }
            'm' => 60_000.0,
            's' => 1000.0,
            _ => return Err(invalid()),
        };
        total += chrono::Duration::milliseconds((n * unit_ms) as i64);
    }
    if !num.is_empty() || total.is_zero() {
        return Err(invalid());
    }
    Ok(Utc::now() - total)
}

/// What `image prune` removed.
#[derive(Debug, Clone, Default)]
pub struct PruneReport {
    pub events: Vec<RemoveEvent>,
    pub reclaimed: u64,
}

impl ImageService<'_> {
    /// Gives `source`'s image the name `target` (`tag SOURCE TARGET`).
    pub fn tag(&self, source: &str, target: &str) -> Result<(), EngineError> {
        let target_ref =
            Reference::parse(target).map_err(|e| EngineError::Image(ImageError::Reference(e)))?;
        if target_ref.digest().is_some() {
            return Err(EngineError::InvalidArgument(format!(
                "refusing to create a tag with a digest reference: {target}"
            )));
        }
        let mut db = self.engine.db();
        let tx = db.write()?;
        let images = store::load_all(&tx)?;
        let (i, _) = resolve(&images, source)?;
        let id = images[i].id;
        store::set_tag(&tx, &target_ref, &id)?;
        store::set_last_tag_time(&tx, &id)?;
        tx.commit()
            .map_err(|e| EngineError::db(format!("tagging {target}"), e))
    }

    /// `rmi NAME`: untags and, when nothing refers to the image any more,
    /// deletes it and the layers and blobs only it used.
    pub fn remove(&self, name: &str, force: bool) -> Result<Vec<RemoveEvent>, EngineError> {
        let mut events = Vec::new();
        let deleted = {
            let mut db = self.engine.db();
            let tx = db.write()?;
            let images = store::load_all(&tx)?;
            let (i, matched) = resolve(&images, name)?;
            let img = &images[i];
            let deleted = remove_in_tx(&tx, &images, img, matched, force, &mut events)?;
            tx.commit()
                .map_err(|e| EngineError::db(format!("removing image {name}"), e))?;
            deleted
        };
        if deleted {
            let gc = self.collect_garbage()?;
            events.extend(gc.layers_removed.into_iter().map(RemoveEvent::Deleted));
        }
        Ok(events)
    }

    /// `image prune`: deletes dangling images, or with `all` every image no
    /// container uses.
    pub fn prune(&self, all: bool, filters: &PruneFilters) -> Result<PruneReport, EngineError> {
        let mut report = PruneReport::default();
        let mut any = false;
        {
            let mut db = self.engine.db();
            let tx = db.write()?;
            let images = store::load_all(&tx)?;
            let parents: HashSet<Digest> = images.iter().filter_map(|i| i.parent).collect();
            for img in &images {
                if !all && !img.is_dangling() {
                    continue;
                }
                if !filters.matches(img) {
                    continue;
                }
                if !store::containers_using(&tx, &img.id)?.is_empty() {
                    continue;
                }
                // A parent goes only with its children, which Docker prunes first.
                if parents.contains(&img.id) && !all {
                    continue;
                }
                for t in &img.tags {
                    store::delete_tag(&tx, t)?;
                    report.events.push(RemoveEvent::Untagged(t.familiar()));
                }
                for d in &img.digests {
                    store::delete_repo_digest(&tx, d)?;
                    report.events.push(RemoveEvent::Untagged(d.familiar()));
                }
                store::delete_image(&tx, &img.id)?;
                report.events.push(RemoveEvent::Deleted(img.id));
                any = true;
            }
            tx.commit()
                .map_err(|e| EngineError::db("pruning images", e))?;
        }
        if any {
            let gc = self.collect_garbage()?;
            report.reclaimed = gc.bytes_freed;
            report
                .events
                .extend(gc.layers_removed.into_iter().map(RemoveEvent::Deleted));
        }
        Ok(report)
    }
}

/// Docker's `ImageDelete` decisions for one image; returns whether the image row was deleted.
fn remove_in_tx(
    tx: &rusqlite::Transaction<'_>,
    images: &[ImageRecord],
    img: &ImageRecord,
    matched: Matched,
    force: bool,
    events: &mut Vec<RemoveEvent>,
) -> Result<bool, EngineError> {
    let short = img.id.short();
    let users = store::containers_using(tx, &img.id)?;
    if let Some(running) = users.iter().find(|c| c.running) {
        if matches!(matched, Matched::Id) || img.tags.len() + img.digests.len() <= 1 {
            return Err(EngineError::Conflict(format!(
                "conflict: unable to delete {short} (cannot be forced) - image is being used by running container {}",
                short_container(&running.id)
            )));
        }
    }
    match matched {
        Matched::Name(reference) => {
            let other_names = img.tags.len() + img.digests.len() - 1;
            if other_names == 0 && !force {
                if let Some(c) = users.first() {
                    return Err(EngineError::Conflict(format!(
                        "conflict: unable to remove repository reference \"{}\" (must force) - container {} is using its referenced image {short}",
                        reference.familiar(),
                        short_container(&c.id)
                    )));
                }
            }
            untag(tx, &reference, events)?;
            // The digest reference of the same repository goes with its last tag.
            let remaining_tags: Vec<&Reference> =
                img.tags.iter().filter(|t| **t != reference).collect();
            if remaining_tags.is_empty() {
                for d in &img.digests {
                    if *d != reference {
                        untag(tx, d, events)?;
                    }
                }
            } else {
                return Ok(false);
            }
            if !users.is_empty() {
                // Forced untag of an image a container uses: it stays, dangling.
                return Ok(false);
            }
        }
        Matched::Id => {
            let repos: HashSet<String> = img
                .tags
                .iter()
                .chain(img.digests.iter())
                .map(|r| r.repository())
                .collect();
            if repos.len() > 1 && !force {
                return Err(EngineError::Conflict(format!(
                    "conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories"
                )));
            }
            if let Some(c) = users.first() {
                if !force {
                    return Err(EngineError::Conflict(format!(
                        "conflict: unable to delete {short} (must be forced) - image is being used by stopped container {}",
                        short_container(&c.id)
                    )));
                }
            }
            for r in img.tags.iter().chain(img.digests.iter()) {
                untag(tx, r, events)?;
            }
            if !users.is_empty() {
                return Ok(false);
            }
        }
    }
    if images.iter().any(|other| other.parent == Some(img.id)) {
        return Err(EngineError::Conflict(format!(
            "conflict: unable to delete {short} (cannot be forced) - image has dependent child images"
        )));
    }
    store::delete_image(tx, &img.id)?;
    events.push(RemoveEvent::Deleted(img.id));
    Ok(true)
}

fn untag(
    tx: &rusqlite::Transaction<'_>,
    r: &Reference,
    events: &mut Vec<RemoveEvent>,
) -> Result<(), EngineError> {
    if r.digest().is_some() {
        store::delete_repo_digest(tx, r)?;
    } else {
        store::delete_tag(tx, r)?;
    }
    events.push(RemoveEvent::Untagged(r.familiar()));
    Ok(())
}

fn short_container(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_forms() {
        let now = Utc::now();
        let t = parse_until("24h").unwrap();
        assert!((now - t - chrono::Duration::hours(24)).num_seconds().abs() < 5);
        let t = parse_until("1h30m").unwrap();
        assert!(
            (now - t - chrono::Duration::minutes(90))
                .num_seconds()
                .abs()
                < 5
        );
        assert_eq!(
            parse_until("2024-01-02T03:04:05Z").unwrap().to_rfc3339(),
            "2024-01-02T03:04:05+00:00"
        );
        assert_eq!(
            parse_until("1700000000").unwrap().timestamp(),
            1_700_000_000
        );
        assert!(parse_until("soon").is_err());
        assert!(parse_until("10").is_ok());
        assert!(parse_until("5x").is_err());
    }

    #[test]
    fn filter_parsing() {
        let f = PruneFilters::parse(&["label=a=b".into(), "label!=c".into(), "until=1h".into()])
            .unwrap();
        assert_eq!(f.label, vec!["a=b"]);
        assert_eq!(f.label_not, vec!["c"]);
        assert!(f.until.is_some());
        assert!(PruneFilters::parse(&["dangling=true".into()]).is_err());
    }
}
