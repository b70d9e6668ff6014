//! `pull`: an image from a registry into the content and layer stores.
//!
//! Each layer blob is streamed from the registry straight into the
//! unpacker (decompressed, unpacked, tar-split, hashed in one pass), so
//! unpacking overlaps downloading; three layers move at once. The blob's
//! digest is checked by the download stream, the layer's diff id by the
//! unpacker, and a dropped connection resumes with `Range` where it broke.
//!
//! Crash safety is `load`'s: layers appear atomically, the image row and
//! tag last in one transaction. A pull that fails or is killed leaves at
//! most unreferenced layers, which a rerun reuses (it downloads only what
//! is missing) and garbage collection removes.

use std::sync::atomic::{AtomicU64, Ordering};

use berth_archive::VerifyingReader;
use berth_image::model::{self, ImageConfig, Manifest};
use berth_image::registry::{blob::ProgressFn, RegistryClient, RegistryError};
use berth_image::{Digest, ImageError, Reference};

use super::layer_tars::StoredLayer;
use super::sources::LayerSource;
use super::transfer::{self, LayerStatus, TransferProgress};
use super::{store, ImageService, LayerRef};
use crate::error::EngineError;
use crate::lock::FileLock;

/// What a pull did, for the `Digest:` and `Status:` lines.
#[derive(Debug, Clone)]
pub struct PullReport {
    /// The reference pulled (tag or digest form).
    pub reference: Reference,
    /// The digest the reference resolved to (an index's when it is one).
    pub digest: Digest,
    /// The image id (config digest).
    pub id: Digest,
    /// Nothing changed: the image was stored and the name pointed at it.
    pub up_to_date: bool,
}

impl ImageService<'_> {
    /// Pulls `reference` for `platform` (default linux/amd64-style host
    /// platform) and tags it.
    pub fn pull(
        &self,
        reference: &Reference,
        platform: Option<&str>,
        progress: &dyn TransferProgress,
    ) -> Result<PullReport, EngineError> {
        let client = transfer::connect(reference.domain())?;
        self.pull_with(&client, reference, platform, progress)
    }

    /// The tags of `reference`'s repository in its registry (`pull -a`).
    pub fn remote_tags(&self, reference: &Reference) -> Result<Vec<String>, EngineError> {
        let client = transfer::connect(reference.domain())?;
        Ok(client.tags(reference.path())?)
    }

    fn pull_with(
        &self,
        client: &RegistryClient,
        reference: &Reference,
        platform: Option<&str>,
        progress: &dyn TransferProgress,
    ) -> Result<PullReport, EngineError> {
        let repo = reference.path();
        let wanted = match (reference.digest(), reference.tag()) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.to_string(),
            (None, None) => berth_image::DEFAULT_TAG.to_string(),
        };
        let platform = platform
            .map(str::to_string)
            .unwrap_or_else(|| model::Platform::host().to_string());
        let resolved = client.resolve_image(repo, &wanted, &platform)?;
        progress.header(&format!("{wanted}: Pulling from {repo}"));
        let manifest = &resolved.manifest;
        check_manifest(manifest, reference)?;
        let config_desc = &manifest.config;
        let content = &self.engine.content;
        let config_bytes = if content.contains(&config_desc.digest) {
            content.read(&config_desc.digest)?
        } else {
            client.get_blob_bytes(repo, &config_desc.digest, config_desc.size)?
        };
        let config = ImageConfig::from_json(&config_bytes)?;
        let diff_ids = config.rootfs.diff_ids.clone();
        if diff_ids.len() != manifest.layers.len() {
            return Err(ImageError::InvalidDocument {
                what: format!("image {}", reference.familiar()),
                reason: format!(
                    "the manifest lists {} layers but the config {} diff ids",
                    manifest.layers.len(),
                    diff_ids.len()
                ),
            }
            .into());
        }
        let id = config_desc.digest;
        let already_stored = self.records()?.iter().any(|r| r.id == id);

        let lock = FileLock::shared(&self.engine.store_lock_path())?;
        let layers = self.pull_layers(client, repo, manifest, &diff_ids, progress)?;
        content.write(&config_bytes[..], Some(&id))?;
        content.write(
            &resolved.manifest_bytes[..],
            Some(&resolved.manifest_digest),
        )?;
        if let Some(index) = &resolved.index {
            content.write(&index.bytes[..], Some(&index.digest))?;
        }
        let config_json = std::str::from_utf8(&config_bytes).map_err(|e| {
            EngineError::InvalidArgument(format!("image config {id} is not UTF-8: {e}"))
        })?;
        let repo_digest = reference.with_digest(resolved.digest);
        let mut db = self.engine.db();
        let tx = db.write()?;
        store::insert_image(
            &tx,
            &store::NewImage {
                id: &id,
                manifest_digest: Some(&resolved.manifest_digest),
                config_json,
                created: config
                    .created
                    .map(|c| c.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
                parent: None,
                layers: &layers,
            },
        )?;
        let before = self.records_in(&tx)?;
        let had = |r: &Reference| {
            before
                .iter()
                .any(|img| img.id == id && (img.digests.contains(r) || img.tags.contains(r)))
        };
        let changed = match reference.digest() {
            Some(_) => !had(&repo_digest),
            None => !had(reference),
        };
        store::add_repo_digest(&tx, &repo_digest, &id)?;
        if reference.digest().is_none() {
            store::set_tag(&tx, reference, &id)?;
        }
        tx.commit()
            .map_err(|e| EngineError::db("committing pulled image", e))?;
        drop(db);
        drop(lock);
        for (desc, diff_id) in manifest.layers.iter().zip(&diff_ids) {
            let source = LayerSource {
                registry: reference.domain().to_string(),
                repository: repo.to_string(),
                digest: desc.digest,
                media_type: desc.media_type.clone(),
                size: desc.size,
            };
            if let Err(e) = self.engine.add_layer_source(diff_id, source) {
                tracing::warn!("recording where layer {diff_id} came from: {e}");
            }
        }
        Ok(PullReport {
            reference: reference.clone(),
            digest: resolved.digest,
            id,
            up_to_date: already_stored && !changed,
        })
    }

    /// The image rows as the open transaction sees them.
    fn records_in(
        &self,
        tx: &rusqlite::Transaction<'_>,
    ) -> Result<Vec<super::ImageRecord>, EngineError> {
        store::load_all(tx)
    }

    /// Downloads and unpacks the layers that are not stored yet, three at
    /// a time; returns every layer's row.
    fn pull_layers(
        &self,
        client: &RegistryClient,
        repo: &str,
        manifest: &Manifest,
        diff_ids: &[Digest],
        progress: &dyn TransferProgress,
    ) -> Result<Vec<LayerRef>, EngineError> {
        let chains: Vec<Digest> = (1..=diff_ids.len())
            .map(|n| berth_image::chain_id(&diff_ids[..n]))
            .collect();
        let short = |i: usize| manifest.layers[i].digest.hex()[..12].to_string();
        let mut missing = Vec::new();
        for i in 0..diff_ids.len() {
            let stored = self.engine.layers.get(&chains[i])?.is_some()
                && self.engine.has_layer_tar(&chains[i], &diff_ids[i]);
            if stored {
                progress.layer(&short(i), LayerStatus::AlreadyExists);
            } else {
                progress.layer(&short(i), LayerStatus::PullingFsLayer);
                missing.push(i);
            }
        }
        let fetch = |i: usize, parent_stored: bool| -> Result<StoredLayer, EngineError> {
            let desc = &manifest.layers[i];
            let id = short(i);
            let parent = i.checked_sub(1).map(|p| &chains[p]);
            let received = AtomicU64::new(0);
            let open = || {
                let id = id.clone();
                let total = desc.size;
                let received = &received;
                received.store(0, Ordering::Relaxed);
                let report: ProgressFn<'_> = Box::new(move |n| {
                    let current = received.fetch_add(n, Ordering::Relaxed) + n;
                    progress.layer(&id, LayerStatus::Downloading { current, total });
                    if current == total {
                        progress.layer(&id, LayerStatus::VerifyingChecksum);
                        progress.layer(&id, LayerStatus::DownloadComplete);
                        progress.layer(&id, LayerStatus::Extracting);
                    }
                });
                let blob = client.open_blob(repo, &desc.digest, desc.size, Some(report))?;
                Ok(VerifyingReader::new(
                    std::io::BufReader::with_capacity(1 << 20, blob),
                    None,
                    format!("layer {}", desc.digest),
                ))
            };
            let stored = self
                .store_layer(parent, parent_stored, &chains[i], &diff_ids[i], open)
                .map_err(|e| registry_cause(e, repo, &desc.digest))
                .map_err(|e| blame_the_blob(client, repo, desc, e))?;
            progress.layer(&id, LayerStatus::PullComplete);
            Ok(stored)
        };
        let results = transfer::run_parallel(missing.len(), transfer::parallel_transfers(), |k| {
            fetch(missing[k], false)
        });
        let mut stored_by_index = std::collections::HashMap::new();
        let mut pending = Vec::new();
        for (k, r) in results.into_iter().enumerate() {
            match r {
                Ok(s) => {
                    stored_by_index.insert(missing[k], s);
                }
                Err(EngineError::Image(ImageError::LowerLayersPending { .. })) => {
                    pending.push(missing[k])
                }
                Err(e) => return Err(e),
            }
        }
        // Layers that hardlink to files below them, again now that their
        // parents are stored (downloaded once more: nothing was kept).
        for i in pending {
            let s = fetch(i, true)?;
            stored_by_index.insert(i, s);
        }
        let mut out = Vec::with_capacity(diff_ids.len());
        for i in 0..diff_ids.len() {
            let (size, kept) = match stored_by_index.remove(&i) {
                Some(s) => (s.info.size, s.kept_blob),
                None => {
                    let info = self.engine.layers.get(&chains[i])?.ok_or_else(|| {
                        EngineError::Corrupt(format!(
                            "layer {} vanished during the pull",
                            chains[i]
                        ))
                    })?;
                    (info.size, self.engine.content.contains(&diff_ids[i]))
                }
            };
            out.push(LayerRef {
                chain_id: chains[i],
                diff_id: diff_ids[i],
                blob_digest: kept.then_some(diff_ids[i]),
                size,
            });
        }
        Ok(out)
    }
}

/// Refuses manifests berth cannot unpack.
fn check_manifest(manifest: &Manifest, reference: &Reference) -> Result<(), EngineError> {
    for l in &manifest.layers {
        if model::is_foreign_layer(&l.media_type) {
            return Err(EngineError::InvalidArgument(format!(
                "image {} has a foreign layer {} ({}), which registries do not serve",
                reference.familiar(),
                l.digest,
                l.media_type
            )));
        }
        if model::layer_compression(&l.media_type).is_none() {
            return Err(ImageError::UnsupportedMediaType {
                what: "layer",
                media_type: l.media_type.clone(),
            }
            .into());
        }
    }
    Ok(())
}

/// A corrupted blob usually breaks the decompressor or the tar reader
/// before its end, where the download stream would report the digest
/// mismatch. After such an error the blob is read once more, to the end,
/// and a mismatch is reported as the cause (as Docker's "verification
/// failed"); otherwise the unpack error stands.
fn blame_the_blob(
    client: &RegistryClient,
    repo: &str,
    desc: &berth_image::model::Descriptor,
    e: EngineError,
) -> EngineError {
    let unpack_error = matches!(
        e,
        EngineError::Image(
            ImageError::LayerTar { .. } | ImageError::Decompress { .. } | ImageError::Io { .. }
        ) | EngineError::Archive(_)
    );
    if !unpack_error {
        return e;
    }
    let drained = client
        .open_blob(repo, &desc.digest, desc.size, None)
        .and_then(|mut blob| {
            std::io::copy(&mut blob, &mut std::io::sink())
                .map_err(|io| berth_image::registry::blob::unwrap_io(io, repo, &desc.digest))
        });
    match drained {
        Err(mismatch @ RegistryError::DigestMismatch { .. }) => mismatch.into(),
        _ => e,
    }
}

/// A layer error caused by the download (digest mismatch, connection lost
/// for good) reported as the registry error it is, not as a tar error.
fn registry_cause(e: EngineError, repo: &str, digest: &Digest) -> EngineError {
    let from_download = |io: &std::io::Error| io.get_ref().is_some_and(|i| i.is::<RegistryError>());
    match e {
        EngineError::Image(
            ImageError::LayerTar { source, .. }
            | ImageError::Decompress { source, .. }
            | ImageError::Io { source, .. },
        ) if from_download(&source) => {
            berth_image::registry::blob::unwrap_io(source, repo, digest).into()
        }
        EngineError::Archive(berth_archive::ArchiveError::Read { source })
            if from_download(&source) =>
        {
            berth_image::registry::blob::unwrap_io(source, repo, digest).into()
        }
        other => other,
    }
}
