//! Reading images out of a docker-archive or an OCI image layout.

use std::collections::HashSet;

use berth_image::Digest;
use serde::Deserialize;

use crate::error::ArchiveError;
use crate::source::{ArchiveSource, VerifyingReader};
use crate::{
    media, ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, DOCKER_MANIFEST, OCI_INDEX, OCI_LAYOUT,
};

/// One image found in an archive, with its config verified.
#[derive(Debug, Clone)]
pub struct ArchiveImage {
    /// The config blob, byte for byte (its digest is the image id).
    pub config: Vec<u8>,
    pub config_digest: Digest,
    /// The layers, bottom first, matching the config's `rootfs.diff_ids`.
    pub layers: Vec<ArchiveLayer>,
    /// The uncompressed layer digests from the config.
    pub diff_ids: Vec<Digest>,
    /// Names as the archive gives them (`busybox:latest`, `localhost/x:1`).
    pub repo_tags: Vec<String>,
    /// The manifest the image came with (OCI layouts), verified.
    pub manifest: Option<ArchiveManifest>,
}

#[derive(Debug, Clone)]
pub struct ArchiveManifest {
    pub digest: Digest,
    pub bytes: Vec<u8>,
}

/// Where one layer blob lies in the archive.
#[derive(Debug, Clone)]
pub struct ArchiveLayer {
    pub path: String,
    /// Digest of the blob as stored (possibly compressed), when the archive
    /// names one; verified while reading.
    pub blob_digest: Option<Digest>,
}

impl ArchiveSource {
    /// Finds the images in the archive: `manifest.json` (docker-archive)
    /// first, else `index.json` (OCI layout, nested indexes resolved to
    /// linux/amd64).
    pub fn images(&self) -> Result<Vec<ArchiveImage>, ArchiveError> {
        if self.exists(DOCKER_MANIFEST) {
            self.docker_images()
        } else if self.exists(OCI_INDEX) {
            self.oci_images()
        } else {
            Err(ArchiveError::UnknownFormat("manifest.json or index.json"))
        }
    }

    /// Opens a layer blob for reading: decompressed, with the blob digest
    /// checked at end of stream. The caller checks the diff id.
    pub fn open_layer(
        &self,
        layer: &ArchiveLayer,
    ) -> Result<VerifyingReader<Box<dyn std::io::Read + Send + '_>>, ArchiveError> {
        let raw = self.open(&layer.path, "manifest")?;
        Ok(VerifyingReader::new(
            raw,
            layer.blob_digest,
            format!("layer {}", layer.path),
        ))
    }

    /// [`ArchiveSource::open_layer`] for a caller that checks the
    /// uncompressed stream against `diff_id` itself (as unpacking does). When
    /// the blob digest equals the diff id the blob is that uncompressed
    /// stream, so the caller's check covers it and the blob is not hashed a
    /// second time. (Were such a blob compressed anyway, its uncompressed
    /// stream could not hash to the blob's own digest, and the caller's check
    /// fails.)
    pub fn open_layer_checked_as(
        &self,
        layer: &ArchiveLayer,
        diff_id: &Digest,
    ) -> Result<VerifyingReader<Box<dyn std::io::Read + Send + '_>>, ArchiveError> {
        let raw = self.open(&layer.path, "manifest")?;
        let expected = layer.blob_digest.filter(|b| b != diff_id);
        Ok(VerifyingReader::new(
            raw,
            expected,
            format!("layer {}", layer.path),
        ))
    }

    fn docker_images(&self) -> Result<Vec<ArchiveImage>, ArchiveError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Entry {
            config: String,
            #[serde(default)]
            repo_tags: Option<Vec<String>>,
            #[serde(default)]
            layers: Vec<String>,
        }
        let bytes = self.read_small(DOCKER_MANIFEST, "archive")?;
        let entries: Vec<Entry> =
            serde_json::from_slice(&bytes).map_err(|e| ArchiveError::json(DOCKER_MANIFEST, e))?;
        if entries.is_empty() {
            return Err(ArchiveError::invalid(DOCKER_MANIFEST, "lists no images"));
        }
        let mut images = Vec::with_capacity(entries.len());
        for entry in entries {
            let config = self.read_small(&entry.config, DOCKER_MANIFEST)?;
            let config_digest = Digest::of_bytes(&config);
            // Both `<hex>.json` and `blobs/sha256/<hex>` name the config by its digest.
            if let Some(named) = hex_in_path(&entry.config) {
                if named != config_digest.hex() {
                    return Err(ArchiveError::DigestMismatch {
                        what: entry.config.clone(),
                        expected: format!("sha256:{named}"),
                        actual: config_digest.to_string(),
                    });
                }
            }
            let diff_ids = diff_ids(&config, &entry.config)?;
            if diff_ids.len() != entry.layers.len() {
                return Err(ArchiveError::invalid(
                    &entry.config,
                    format!(
                        "config has {} diff ids but manifest.json lists {} layers",
                        diff_ids.len(),
                        entry.layers.len()
                    ),
                ));
            }
            let layers = entry
                .layers
                .iter()
                .map(|p| ArchiveLayer {
                    path: p.clone(),
                    // Only the blobs/ layout names a layer by its blob digest;
                    // `<v1 id>/layer.tar` names carry no digest.
                    blob_digest: p
                        .strip_prefix("blobs/sha256/")
                        .and_then(|h| Digest::from_hex(h).ok()),
                })
                .collect();
            images.push(ArchiveImage {
                config,
                config_digest,
                layers,
                diff_ids,
                repo_tags: entry.repo_tags.unwrap_or_default(),
                manifest: None,
            });
        }
        Ok(images)
    }

    fn oci_images(&self) -> Result<Vec<ArchiveImage>, ArchiveError> {
        if self.exists(OCI_LAYOUT) {
            let layout = self.read_small(OCI_LAYOUT, "archive")?;
            let v: serde_json::Value =
                serde_json::from_slice(&layout).map_err(|e| ArchiveError::json(OCI_LAYOUT, e))?;
            if v.get("imageLayoutVersion")
                .and_then(|v| v.as_str())
                .is_none()
            {
                return Err(ArchiveError::invalid(OCI_LAYOUT, "no imageLayoutVersion"));
            }
        }
        let bytes = self.read_small(OCI_INDEX, "archive")?;
        let index: Index =
            serde_json::from_slice(&bytes).map_err(|e| ArchiveError::json(OCI_INDEX, e))?;
        let mut images: Vec<ArchiveImage> = Vec::new();
        let mut seen = HashSet::new();
        for desc in &index.manifests {
            let name = image_name(desc);
            let (manifest_digest, manifest) = self.resolve_manifest(desc, 0)?;
            // One image listed under several names yields one image with several tags.
            if let Some(existing) = images
                .iter_mut()
                .find(|i| i.manifest.as_ref().map(|m| &m.digest) == Some(&manifest_digest))
            {
                existing.repo_tags.extend(name);
                continue;
            }
            if !seen.insert(manifest_digest) {
                continue;
            }
            images.push(self.oci_image(manifest_digest, manifest, name)?);
        }
        if images.is_empty() {
            return Err(ArchiveError::invalid(OCI_INDEX, "lists no images"));
        }
        Ok(images)
    }

    /// Follows indexes down to an image manifest, choosing linux/amd64.
    fn resolve_manifest(
        &self,
        desc: &Descriptor,
        depth: usize,
    ) -> Result<(Digest, Vec<u8>), ArchiveError> {
        if depth > 4 {
            return Err(ArchiveError::invalid(
                OCI_INDEX,
                "indexes nested too deeply",
            ));
        }
        let digest = parse_digest(&desc.digest, "index.json descriptor")?;
        let path = blob_path(&digest);
        let bytes = self.read_verified(&path, &digest, "index.json")?;
        let media_type = desc.media_type.clone().or_else(|| {
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| {
                    v.get("mediaType")
                        .and_then(|m| m.as_str())
                        .map(str::to_string)
                })
        });
        match media_type.as_deref() {
            Some(media::OCI_INDEX) | Some(media::DOCKER_MANIFEST_LIST) => {
                let index: Index =
                    serde_json::from_slice(&bytes).map_err(|e| ArchiveError::json(&path, e))?;
                let chosen = select_linux_amd64(&index.manifests).ok_or_else(|| {
                    ArchiveError::invalid(&path, "no manifest for linux/amd64 in the image index")
                })?;
                self.resolve_manifest(chosen, depth + 1)
            }
            _ => Ok((digest, bytes)),
        }
    }

    fn oci_image(
        &self,
        digest: Digest,
        bytes: Vec<u8>,
        name: Option<String>,
    ) -> Result<ArchiveImage, ArchiveError> {
        let what = format!("manifest {digest}");
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| ArchiveError::json(&what, e))?;
        let config_digest = parse_digest(&manifest.config.digest, &what)?;
        let config = self.read_verified(&blob_path(&config_digest), &config_digest, &what)?;
        let diff_ids = diff_ids(&config, &blob_path(&config_digest))?;
        if diff_ids.len() != manifest.layers.len() {
            return Err(ArchiveError::invalid(
                &what,
                format!(
                    "config has {} diff ids but the manifest lists {} layers",
                    diff_ids.len(),
                    manifest.layers.len()
                ),
            ));
        }
        let mut layers = Vec::with_capacity(manifest.layers.len());
        for l in &manifest.layers {
            let d = parse_digest(&l.digest, &what)?;
            layers.push(ArchiveLayer {
                path: blob_path(&d),
                blob_digest: Some(d),
            });
        }
        Ok(ArchiveImage {
            config,
            config_digest,
            layers,
            diff_ids,
            repo_tags: name.into_iter().collect(),
            manifest: Some(ArchiveManifest { digest, bytes }),
        })
    }
}

#[derive(Debug, Deserialize)]
struct Index {
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

#[derive(Debug, Deserialize)]
struct Manifest {
    config: Descriptor,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    #[serde(default)]
    media_type: Option<String>,
    digest: String,
    #[serde(default)]
    annotations: Option<std::collections::BTreeMap<String, String>>,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Debug, Deserialize)]
struct Platform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
}

/// The image name an index entry carries: containerd's full name, else an
/// `org.opencontainers.image.ref.name` that is a full reference. A bare tag
/// (`skopeo copy … oci:DIR:tag`) names no repository, so it yields none.
fn image_name(desc: &Descriptor) -> Option<String> {
    let ann = desc.annotations.as_ref()?;
    if let Some(n) = ann.get(ANNOTATION_CONTAINERD_NAME) {
        return Some(n.clone());
    }
    let r = ann.get(ANNOTATION_REF_NAME)?;
    if r.contains('/') || r.contains(':') {
        Some(r.clone())
    } else {
        None
    }
}

fn select_linux_amd64(entries: &[Descriptor]) -> Option<&Descriptor> {
    entries
        .iter()
        .find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.os == "linux" && p.architecture == "amd64")
        })
        .or_else(|| entries.iter().find(|d| d.platform.is_none()))
}

fn parse_digest(s: &str, what: &str) -> Result<Digest, ArchiveError> {
    s.parse::<Digest>()
        .map_err(|e| ArchiveError::invalid(what, format!("digest {s:?}: {e}")))
}

pub(crate) fn blob_path(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

/// The 64-hex digest a path names: `<hex>.json`, `blobs/sha256/<hex>`.
fn hex_in_path(path: &str) -> Option<String> {
    let base = path.rsplit('/').next()?;
    let stem = base.strip_suffix(".json").unwrap_or(base);
    (stem.len() == 64 && stem.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| stem.to_ascii_lowercase())
}

/// `rootfs.diff_ids` of an image config.
pub fn diff_ids(config: &[u8], what: &str) -> Result<Vec<Digest>, ArchiveError> {
    #[derive(Deserialize)]
    struct Config {
        rootfs: RootFs,
    }
    #[derive(Deserialize)]
    struct RootFs {
        #[serde(default)]
        diff_ids: Vec<String>,
    }
    let c: Config = serde_json::from_slice(config)
        .map_err(|e| ArchiveError::json(format!("image config {what}"), e))?;
    c.rootfs
        .diff_ids
        .iter()
        .map(|d| parse_digest(d, what))
        .collect()
}
