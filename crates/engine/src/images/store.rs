//! SQL for image rows, tags, digests and layer references.

use std::collections::HashMap;

use berth_image::model::ImageConfig;
use berth_image::{Digest, Reference};
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::{ImageRecord, LayerRef};
use crate::error::EngineError;

fn digest_col(s: &str, what: &str) -> Result<Digest, EngineError> {
    s.parse()
        .map_err(|e| EngineError::Corrupt(format!("{what} {s:?}: {e}")))
}

/// Every image with its tags, digests and layers.
pub(crate) fn load_all(conn: &Connection) -> Result<Vec<ImageRecord>, EngineError> {
    load_where(conn, None)
}

fn load_where(conn: &Connection, id: Option<&Digest>) -> Result<Vec<ImageRecord>, EngineError> {
    let q = |e| EngineError::db("reading images", e);
    let id_s = id.map(|d| d.to_string());
    let mut stmt = conn
        .prepare(
            "SELECT id, manifest_digest, config, created, size, parent, last_tag_time FROM images
             WHERE (?1 IS NULL OR id = ?1)",
        )
        .map_err(q)?;
    let rows = stmt
        .query_map(params![id_s], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, Option<String>>(6)?,
            ))
        })
        .map_err(q)?;
    let mut images = Vec::new();
    let mut index = HashMap::new();
    for row in rows {
        let (id, manifest, config_json, created, size, parent, last_tag_time) = row.map_err(q)?;
        let id = digest_col(&id, "image id")?;
        let config = ImageConfig::from_json(config_json.as_bytes())
            .map_err(|e| EngineError::Corrupt(format!("config of image {id}: {e}")))?;
        let created = created
            .and_then(|c| chrono::DateTime::parse_from_rfc3339(&c).ok())
            .map(|c| c.with_timezone(&chrono::Utc));
        index.insert(id, images.len());
        images.push(ImageRecord {
            id,
            manifest_digest: manifest
                .map(|m| digest_col(&m, "manifest digest"))
                .transpose()?,
            config_json,
            config,
            created,
            size: u64::try_from(size).unwrap_or(0),
            parent: parent.map(|p| digest_col(&p, "parent")).transpose()?,
            last_tag_time,
            tags: Vec::new(),
            digests: Vec::new(),
            layers: Vec::new(),
        });
    }
    let mut tags = conn
        .prepare(
            "SELECT name, image_id FROM tags WHERE (?1 IS NULL OR image_id = ?1) ORDER BY name",
        )
        .map_err(q)?;
    for row in tags
        .query_map(params![id_s], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .map_err(q)?
    {
        let (name, image) = row.map_err(q)?;
        let image = digest_col(&image, "tag image id")?;
        let reference = Reference::parse(&name)
            .map_err(|e| EngineError::Corrupt(format!("stored tag {name:?}: {e}")))?;
        if let Some(&i) = index.get(&image) {
            images[i].tags.push(reference);
        }
    }
    let mut digests = conn
        .prepare("SELECT name, image_id FROM repo_digests WHERE (?1 IS NULL OR image_id = ?1) ORDER BY name")
        .map_err(q)?;
    for row in digests
        .query_map(params![id_s], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .map_err(q)?
    {
        let (name, image) = row.map_err(q)?;
        let image = digest_col(&image, "digest image id")?;
        let reference = Reference::parse(&name)
            .map_err(|e| EngineError::Corrupt(format!("stored digest {name:?}: {e}")))?;
        if let Some(&i) = index.get(&image) {
            images[i].digests.push(reference);
        }
    }
    let mut layers = conn
        .prepare(
            "SELECT image_id, chain_id, diff_id, blob_digest, size FROM image_layers
             WHERE (?1 IS NULL OR image_id = ?1) ORDER BY image_id, position",
        )
        .map_err(q)?;
    let layer_rows = layers
        .query_map(params![id_s], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })
        .map_err(q)?;
    for row in layer_rows {
        let (image, chain, diff, blob, size) = row.map_err(q)?;
        let image = digest_col(&image, "layer image id")?;
        if let Some(&i) = index.get(&image) {
            images[i].layers.push(LayerRef {
                chain_id: digest_col(&chain, "chain id")?,
                diff_id: digest_col(&diff, "diff id")?,
                blob_digest: blob.map(|b| digest_col(&b, "layer blob")).transpose()?,
                size: u64::try_from(size).unwrap_or(0),
            });
        }
    }
    Ok(images)
}

/// A new image row with its layers.
pub(crate) struct NewImage<'a> {
    pub id: &'a Digest,
    pub manifest_digest: Option<&'a Digest>,
    pub config_json: &'a str,
    pub created: Option<String>,
    pub parent: Option<&'a Digest>,
    pub layers: &'a [LayerRef],
}

/// Inserts the image unless it exists. Returns whether it was new.
pub(crate) fn insert_image(tx: &Transaction<'_>, img: &NewImage<'_>) -> Result<bool, EngineError> {
    let q = |e| EngineError::db(format!("storing image {}", img.id), e);
    let size: u64 = img.layers.iter().map(|l| l.size).sum();
    let inserted = tx
        .execute(
            "INSERT INTO images (id, manifest_digest, config, created, size, parent, added)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(id) DO NOTHING",
            params![
                img.id.to_string(),
                img.manifest_digest.map(Digest::to_string),
                img.config_json,
                img.created,
                i64::try_from(size).unwrap_or(i64::MAX),
                img.parent.map(Digest::to_string),
                chrono::Utc::now().to_rfc3339(),
            ],
        )
        .map_err(q)?;
    if inserted == 0 {
        if let Some(m) = img.manifest_digest {
            tx.execute(
                "UPDATE images SET manifest_digest = ?2 WHERE id = ?1 AND manifest_digest IS NULL",
                params![img.id.to_string(), m.to_string()],
            )
            .map_err(q)?;
        }
        return Ok(false);
    }
    let mut stmt = tx
        .prepare(
            "INSERT INTO image_layers (image_id, position, chain_id, diff_id, blob_digest, size)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map_err(q)?;
    for (i, l) in img.layers.iter().enumerate() {
        stmt.execute(params![
            img.id.to_string(),
            i as i64,
            l.chain_id.to_string(),
            l.diff_id.to_string(),
            l.blob_digest.map(|d| d.to_string()),
            i64::try_from(l.size).unwrap_or(i64::MAX),
        ])
        .map_err(q)?;
    }
    Ok(true)
}

/// The image tag `name` points at, read with its tags, digests and layers
/// (`None`: no such tag).
pub(crate) fn load_by_tag(
    conn: &Connection,
    name: &Reference,
) -> Result<Option<ImageRecord>, EngineError> {
    let id: Option<String> = conn
        .query_row(
            "SELECT image_id FROM tags WHERE name = ?1",
            params![name.to_string()],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| EngineError::db(format!("reading tag {name}"), e))?;
    let Some(id) = id else { return Ok(None) };
    let id = digest_col(&id, "tag image id")?;
    Ok(load_where(conn, Some(&id))?.into_iter().next())
}

/// Points tag `name` at `id`; returns the image it pointed at before, if another.
pub(crate) fn set_tag(
    tx: &Transaction<'_>,
    name: &Reference,
    id: &Digest,
) -> Result<Option<Digest>, EngineError> {
    let q = |e| EngineError::db(format!("tagging {name}"), e);
    let previous: Option<String> = tx
        .query_row(
            "SELECT image_id FROM tags WHERE name = ?1",
            params![name.to_string()],
            |r| r.get(0),
        )
        .optional()
        .map_err(q)?;
    let now = chrono::Utc::now().to_rfc3339();
    tx.execute(
        "INSERT INTO tags (name, image_id, created) VALUES (?1, ?2, ?3)
         ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id, created = excluded.created",
        params![name.to_string(), id.to_string(), now],
    )
    .map_err(q)?;
    let previous = previous
        .map(|p| digest_col(&p, "tag image id"))
        .transpose()?;
    Ok(previous.filter(|p| p != id))
}

pub(crate) fn set_last_tag_time(tx: &Transaction<'_>, id: &Digest) -> Result<(), EngineError> {
    tx.execute(
        "UPDATE images SET last_tag_time = ?2 WHERE id = ?1",
        params![
            id.to_string(),
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
        ],
    )
    .map_err(|e| EngineError::db(format!("updating image {id}"), e))?;
    Ok(())
}

pub(crate) fn add_repo_digest(
    tx: &Transaction<'_>,
    name: &Reference,
    id: &Digest,
) -> Result<(), EngineError> {
    tx.execute(
        "INSERT INTO repo_digests (name, image_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        params![name.to_string(), id.to_string()],
    )
    .map_err(|e| EngineError::db(format!("recording digest {name}"), e))?;
    Ok(())
}

pub(crate) fn delete_tag(tx: &Transaction<'_>, name: &Reference) -> Result<(), EngineError> {
    tx.execute(
        "DELETE FROM tags WHERE name = ?1",
        params![name.to_string()],
    )
    .map_err(|e| EngineError::db(format!("untagging {name}"), e))?;
    Ok(())
}

pub(crate) fn delete_repo_digest(
    tx: &Transaction<'_>,
    name: &Reference,
) -> Result<(), EngineError> {
    tx.execute(
        "DELETE FROM repo_digests WHERE name = ?1",
        params![name.to_string()],
    )
    .map_err(|e| EngineError::db(format!("removing digest {name}"), e))?;
    Ok(())
}

pub(crate) fn delete_image(tx: &Transaction<'_>, id: &Digest) -> Result<(), EngineError> {
    let q = |e| EngineError::db(format!("deleting image {id}"), e);
    tx.execute(
        "DELETE FROM tags WHERE image_id = ?1",
        params![id.to_string()],
    )
    .map_err(q)?;
    tx.execute(
        "UPDATE images SET parent = NULL WHERE parent = ?1",
        params![id.to_string()],
    )
    .map_err(q)?;
    tx.execute("DELETE FROM images WHERE id = ?1", params![id.to_string()])
        .map_err(q)?;
    Ok(())
}

/// A container that uses an image.
#[derive(Debug, Clone)]
pub(crate) struct ContainerUse {
    pub id: String,
    pub running: bool,
}

/// Containers created from `id`.
pub(crate) fn containers_using(
    conn: &Connection,
    id: &Digest,
) -> Result<Vec<ContainerUse>, EngineError> {
    let q = |e| EngineError::db("reading containers", e);
    let mut stmt = conn
        .prepare("SELECT id, state FROM containers WHERE image_id = ?1 ORDER BY created")
        .map_err(q)?;
    let rows = stmt
        .query_map(params![id.to_string()], |r| {
            let state: String = r.get(1)?;
            Ok(ContainerUse {
                id: r.get(0)?,
                running: matches!(state.as_str(), "running" | "paused" | "restarting"),
            })
        })
        .map_err(q)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(q)
}

/// How many containers use each image.
pub(crate) fn container_counts(conn: &Connection) -> Result<HashMap<String, i64>, EngineError> {
    let q = |e| EngineError::db("reading containers", e);
    let mut stmt = conn
        .prepare("SELECT image_id, COUNT(*) FROM containers GROUP BY image_id")
        .map_err(q)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .map_err(q)?;
    rows.collect::<Result<HashMap<_, _>, _>>().map_err(q)
}
