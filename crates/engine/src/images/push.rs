//! `push`: an image's layers, config and manifest to a registry.
//!
//! For each layer, cheapest first: a blob the layer was pulled as (or
//! pushed as before) that the repository already has (`HEAD`), or that
//! another repository of the registry has (cross-repository mount);
//! otherwise the layer's tar (rebuilt byte for byte from the unpacked
//! layer) is gzip-compressed while it is uploaded (gzip.rs), and
//! the compressed blob's digest is recorded as a source of the layer, so
//! the next push of it to that repository sends nothing.
//! Three layers move at once. When every layer keeps the blob of the
//! manifest it was pulled with, that manifest is pushed unchanged, so the
//! image keeps its digest.

use std::collections::HashMap;
use std::io::{self, Read};

use berth_archive::LayerTarSource;
use berth_image::model::{self, media_types, Descriptor, Manifest};
use berth_image::registry::{RegistryClient, RegistryError};
use berth_image::{Digest, Reference};

use super::gzip::LayerGzip;
use super::layer_tars::StoredLayerTars;
use super::resolve::find_reference;
use super::sources::LayerSource;
use super::transfer::{self, LayerStatus, TransferProgress};
use super::{store, ImageRecord, ImageService};
use crate::error::EngineError;

/// What a push did: `TAG: digest: sha256:… size: N`.
#[derive(Debug, Clone)]
pub struct PushReport {
    pub reference: Reference,
    pub digest: Digest,
    /// Bytes of the manifest.
    pub size: usize,
}

/// Chunk size of chunked uploads (`BERTH_PUSH_CHUNK_SIZE` overrides it);
/// smaller blobs go in one request.
fn chunk_size() -> u64 {
    std::env::var("BERTH_PUSH_CHUNK_SIZE")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(64 << 20)
}

impl ImageService<'_> {
    /// The local tags of `reference`'s repository (`push --all-tags`), sorted.
    pub fn local_tags(&self, reference: &Reference) -> Result<Vec<Reference>, EngineError> {
        let repo = reference.repository();
        let mut out: Vec<Reference> = self
            .records()?
            .into_iter()
            .flat_map(|r| r.tags)
            .filter(|t| t.repository() == repo)
            .collect();
        out.sort_by_key(|r| r.to_string());
        Ok(out)
    }

    /// Pushes the image `reference` (a tag) names.
    pub fn push(
        &self,
        reference: &Reference,
        progress: &dyn TransferProgress,
    ) -> Result<PushReport, EngineError> {
        let images = self.records()?;
        let img = find_reference(&images, reference)
            .map(|i| images[i].clone())
            .ok_or_else(|| {
                EngineError::NoSuchImage(format!(
                    "An image does not exist locally with the tag: {}",
                    reference.familiar_repository()
                ))
            })?;
        let tag = reference
            .tag()
            .unwrap_or(berth_image::DEFAULT_TAG)
            .to_string();
        let client = transfer::connect(reference.domain())?;
        let repo = reference.path();
        let layers = self.push_layers(&client, reference, &img, progress)?;
        if !client.blob_exists(repo, &img.id)? {
            let config = img.config_json.as_bytes();
            client.upload_blob(
                repo,
                &img.id,
                config.len() as u64,
                &mut || Ok(Box::new(config) as Box<dyn Read>),
                chunk_size(),
                &mut |_| {},
            )?;
        }
        let (bytes, media_type) = match self.stored_manifest(&img, &layers) {
            Some(m) => m,
            None => {
                let manifest = Manifest {
                    schema_version: 2,
                    media_type: Some(media_types::DOCKER_MANIFEST.into()),
                    artifact_type: None,
                    config: Descriptor::new(
                        media_types::DOCKER_CONFIG,
                        img.id,
                        img.config_json.len() as u64,
                    ),
                    layers: layers.into_iter().map(docker_layer).collect(),
                    subject: None,
                    annotations: Default::default(),
                };
                (
                    manifest.to_json()?,
                    media_types::DOCKER_MANIFEST.to_string(),
                )
            }
        };
        let digest = client.put_manifest(repo, &tag, &bytes, &media_type)?;
        let mut db = self.engine.db();
        let tx = db.write()?;
        store::add_repo_digest(&tx, &reference.with_digest(digest), &img.id)?;
        tx.commit()
            .map_err(|e| EngineError::db("recording the pushed digest", e))?;
        Ok(PushReport {
            reference: reference.clone(),
            digest,
            size: bytes.len(),
        })
    }

    /// The manifest the image was pulled with, when its layers are the
    /// blobs just pushed.
    fn stored_manifest(
        &self,
        img: &ImageRecord,
        layers: &[Descriptor],
    ) -> Option<(Vec<u8>, String)> {
        let digest = img.manifest_digest?;
        let bytes = self.engine.content.read(&digest).ok()?;
        let manifest = model::parse_manifest(&bytes).ok()?;
        let same = manifest.config.digest == img.id
            && manifest.layers.len() == layers.len()
            && manifest
                .layers
                .iter()
                .zip(layers)
                .all(|(a, b)| a.digest == b.digest);
        let media_type = manifest
            .media_type
            .clone()
            .unwrap_or_else(|| media_types::OCI_MANIFEST.to_string());
        same.then_some((bytes, media_type))
    }

    /// Makes every layer available in the repository; returns their
    /// descriptors in order.
    fn push_layers(
        &self,
        client: &RegistryClient,
        reference: &Reference,
        img: &ImageRecord,
        progress: &dyn TransferProgress,
    ) -> Result<Vec<Descriptor>, EngineError> {
        let chains: HashMap<Digest, Digest> =
            img.layers.iter().map(|l| (l.diff_id, l.chain_id)).collect();
        let tars = StoredLayerTars {
            engine: self.engine,
            chains,
        };
        let mut unique: Vec<Digest> = Vec::new();
        for l in &img.layers {
            if !unique.contains(&l.diff_id) {
                unique.push(l.diff_id);
            }
        }
        for d in unique.iter().rev() {
            progress.layer(&d.hex()[..12], LayerStatus::Preparing);
        }
        let results = transfer::run_parallel(unique.len(), transfer::parallel_transfers(), |i| {
            self.push_layer(client, reference, &unique[i], &tars, progress)
        });
        let mut by_diff = HashMap::new();
        for (d, r) in unique.iter().zip(results) {
            by_diff.insert(*d, r?);
        }
        Ok(img
            .layers
            .iter()
            .filter_map(|l| by_diff.get(&l.diff_id).cloned())
            .collect())
    }

    fn push_layer(
        &self,
        client: &RegistryClient,
        reference: &Reference,
        diff_id: &Digest,
        tars: &StoredLayerTars<'_>,
        progress: &dyn TransferProgress,
    ) -> Result<Descriptor, EngineError> {
        let id = diff_id.hex()[..12].to_string();
        let registry = reference.domain();
        let repo = reference.path();
        let sources: Vec<LayerSource> = self
            .engine
            .layer_sources(diff_id)
            .into_iter()
            .filter(|s| s.registry == registry)
            .collect();
        let descriptor = |s: &LayerSource| Descriptor::new(&s.media_type, s.digest, s.size);
        for s in sources.iter().filter(|s| s.repository == repo) {
            if client.blob_exists(repo, &s.digest)? {
                progress.layer(&id, LayerStatus::LayerAlreadyExists);
                return Ok(descriptor(s));
            }
        }
        for s in sources.iter().filter(|s| s.repository != repo) {
            if client.mount_blob(repo, &s.digest, &s.repository)? {
                progress.layer(&id, LayerStatus::MountedFrom(s.repository.clone()));
                self.remember(diff_id, registry, repo, s);
                return Ok(descriptor(s));
            }
        }
        // A blob of this layer known from elsewhere (pulled from another
        // registry, or compressed by an earlier push) that this repository
        // has already: nothing to send.
        let mut tried: Vec<Digest> = sources.iter().map(|s| s.digest).collect();
        for s in self.engine.layer_sources(diff_id) {
            if tried.contains(&s.digest) {
                continue;
            }
            tried.push(s.digest);
            if client.blob_exists(repo, &s.digest)? {
                progress.layer(&id, LayerStatus::LayerAlreadyExists);
                self.remember(diff_id, registry, repo, &s);
                return Ok(descriptor(&s));
            }
        }
        let (_, size) = tars.layer_tar(diff_id)?;
        if client.blob_exists(repo, diff_id)? {
            // An uncompressed upload of an older berth.
            let tar = LayerSource {
                registry: registry.to_string(),
                repository: repo.to_string(),
                digest: *diff_id,
                media_type: media_types::DOCKER_LAYER.to_string(),
                size,
            };
            progress.layer(&id, LayerStatus::LayerAlreadyExists);
            self.remember(diff_id, registry, repo, &tar);
            return Ok(descriptor(&tar));
        }
        // Compressed on the way (gzip: the fast level, or stored where the
        // data looks incompressible; see gzip.rs), so the blob's digest is
        // known only once it is sent.
        let mut open_error = None;
        let result = client.upload_blob_streamed(repo, &mut || match tars.layer_tar(diff_id) {
            Ok((r, _)) => {
                let counted = ProgressReader {
                    inner: r,
                    progress,
                    id: &id,
                    current: 0,
                    total: size,
                };
                Ok(Box::new(LayerGzip::new(counted)) as Box<dyn Read>)
            }
            Err(e) => {
                let msg = e.to_string();
                open_error = Some(e);
                Err(RegistryError::Protocol {
                    endpoint: registry.to_string(),
                    reason: msg,
                })
            }
        });
        if let Some(e) = open_error {
            return Err(e.into());
        }
        let (digest, compressed_size) = result?;
        progress.layer(&id, LayerStatus::Pushed);
        let blob = LayerSource {
            registry: registry.to_string(),
            repository: repo.to_string(),
            digest,
            media_type: media_types::DOCKER_LAYER_GZIP.to_string(),
            size: compressed_size,
        };
        self.remember(diff_id, registry, repo, &blob);
        Ok(descriptor(&blob))
    }

    /// Records that `repo` now holds the blob `s` describes.
    fn remember(&self, diff_id: &Digest, registry: &str, repo: &str, s: &LayerSource) {
        let mine = LayerSource {
            registry: registry.to_string(),
            repository: repo.to_string(),
            ..s.clone()
        };
        if let Err(e) = self.engine.add_layer_source(diff_id, mine) {
            tracing::warn!("recording where layer {diff_id} was pushed: {e}");
        }
    }
}

/// A layer descriptor for a Docker schema 2 manifest: blobs recorded under
/// their OCI media types (pulled with an OCI manifest) take the Docker
/// type of the same encoding, since a manifest does not mix the two.
fn docker_layer(mut d: Descriptor) -> Descriptor {
    let docker = match d.media_type.as_str() {
        media_types::OCI_LAYER => media_types::DOCKER_LAYER,
        media_types::OCI_LAYER_GZIP => media_types::DOCKER_LAYER_GZIP,
        media_types::OCI_LAYER_ZSTD => media_types::DOCKER_LAYER_ZSTD,
        _ => return d,
    };
    d.media_type = docker.to_string();
    d
}

/// Reports the uncompressed bytes a compressing upload has consumed.
struct ProgressReader<'a> {
    inner: Box<dyn Read + 'a>,
    progress: &'a dyn TransferProgress,
    id: &'a str,
    current: u64,
    total: u64,
}

impl Read for ProgressReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.current += n as u64;
        self.progress.layer(
            self.id,
            LayerStatus::Pushing {
                current: self.current,
                total: self.total,
            },
        );
        Ok(n)
    }
}
