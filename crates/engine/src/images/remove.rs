//! `tag`, `rmi` and `image prune`, with Docker's rules and messages.

use std::collections::HashSet;

use berth_image::{Digest, ImageError, Reference};

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
    pub fn prune(&self, all: bool) -> Result<PruneReport, EngineError> {
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
