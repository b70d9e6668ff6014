//! Storing an image made from another one plus one layer (`commit`).

use std::fs::File;
use std::io::{self, Seek};

use berth_image::model::{ContainerConfig, History, ImageConfig, RootFs};
use berth_image::{Digest, ImageError, Reference};

use super::{store, ImageService, LayerRef};
use crate::error::EngineError;
use crate::lock::FileLock;

/// What [`ImageService::store_derived`] stores.
pub(crate) struct DerivedImage<'a> {
    /// The image the new one builds on (`sha256:…`).
    pub parent: &'a str,
    /// The new layer's tar and its diff id; `None` for no new layer (an
    /// `empty_layer` history step).
    pub layer: Option<(&'a mut File, Digest)>,
    pub config: ContainerConfig,
    pub author: Option<String>,
    pub comment: Option<String>,
    pub created_by: String,
    pub reference: Option<&'a Reference>,
}

impl ImageService<'_> {
    /// Stores an image made of `img.parent`'s layers and `img.layer`, with
    /// `img.config` and one more history entry; its parent is recorded.
    /// Returns the new image id.
    pub(crate) fn store_derived(&self, img: DerivedImage<'_>) -> Result<Digest, EngineError> {
        let parent = self.record(img.parent)?;
        let lock = FileLock::shared(&self.engine.store_lock_path())?;
        let mut layers = parent.layers.clone();
        let mut diff_ids = parent.config.rootfs.diff_ids.clone();
        let empty_layer = img.layer.is_none();
        if let Some((file, diff_id)) = img.layer {
            let rewind = |f: &mut File| {
                f.rewind()
                    .map_err(|e| EngineError::io("rewinding the layer tar", e))
            };
            rewind(file)?;
            self.engine.content.write(
                io::BufReader::with_capacity(1 << 20, &mut *file),
                Some(&diff_id),
            )?;
            rewind(file)?;
            let parent_chain = layers.last().map(|l| l.chain_id);
            let applied = self.engine.layers.apply(
                parent_chain.as_ref(),
                io::BufReader::with_capacity(1 << 20, &mut *file),
                Some(&diff_id),
            );
            let info = match applied {
                Ok(i) => i,
                Err(e) => {
                    drop(lock);
                    if let Err(gc) = self.collect_garbage() {
                        tracing::warn!("cleaning up after a failed commit: {gc}");
                    }
                    return Err(e.into());
                }
            };
            layers.push(LayerRef {
                chain_id: info.chain_id,
                diff_id,
                blob_digest: Some(diff_id),
                size: info.size,
            });
            diff_ids.push(diff_id);
        }
        let now = chrono::Utc::now();
        let mut history = parent.config.history.clone();
        history.push(History {
            created: Some(now),
            created_by: Some(img.created_by),
            author: img.author.clone().filter(|a| !a.is_empty()),
            comment: img.comment.clone().filter(|c| !c.is_empty()),
            empty_layer,
        });
        let mut config = ImageConfig {
            created: Some(now),
            author: img.author.filter(|a| !a.is_empty()),
            architecture: parent.config.architecture.clone(),
            os: parent.config.os.clone(),
            os_version: parent.config.os_version.clone(),
            variant: parent.config.variant.clone(),
            config: Some(img.config),
            rootfs: RootFs {
                kind: "layers".into(),
                diff_ids,
            },
            history,
            ..Default::default()
        };
        if let Some(c) = img.comment.filter(|c| !c.is_empty()) {
            config
                .extra
                .insert("comment".into(), serde_json::Value::String(c));
        }
        let config_bytes = config.to_json()?;
        let id = self.engine.content.write_bytes(&config_bytes)?;
        let config_json = String::from_utf8(config_bytes)
            .map_err(|e| EngineError::Corrupt(format!("generated config is not UTF-8: {e}")))?;
        let mut db = self.engine.db();
        let tx = db.write()?;
        store::insert_image(
            &tx,
            &store::NewImage {
                id: &id,
                manifest_digest: None,
                config_json: &config_json,
                created: Some(now.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
                parent: Some(&parent.id),
                layers: &layers,
            },
        )?;
        if let Some(r) = img.reference {
            store::set_tag(&tx, r, &id)?;
        }
        tx.commit()
            .map_err(|e| EngineError::db("committing the new image", e))?;
        drop(db);
        drop(lock);
        Ok(id)
    }
}

/// Parses `REPO[:TAG]` as `commit` and `import` take it.
pub(crate) fn parse_reference(r: &str) -> Result<Reference, EngineError> {
    Reference::parse(r).map_err(|e| EngineError::Image(ImageError::Reference(e)))
}
