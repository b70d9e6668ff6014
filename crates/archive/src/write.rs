//! Writing docker-archive and oci-archive tar streams.
//!
//! Both formats share the OCI image layout (`oci-layout`, `index.json`,
//! `blobs/sha256/…`); a docker-archive adds `manifest.json` and
//! `repositories`, as `docker save` has written since Docker 25, so the same
//! file loads in old and new Docker, podman and skopeo. Layers are written
//! uncompressed, so their blob digests are their diff ids.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};

use berth_image::Digest;
use serde_json::json;

use crate::error::ArchiveError;
use crate::read::blob_path;
use crate::{
    media, ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, DOCKER_MANIFEST, OCI_INDEX, OCI_LAYOUT,
};

/// The archive formats `save` can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    DockerArchive,
    OciArchive,
}

impl std::str::FromStr for ArchiveFormat {
    type Err = ArchiveError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "docker-archive" | "docker" => Ok(Self::DockerArchive),
            "oci-archive" | "oci" => Ok(Self::OciArchive),
            other => Err(ArchiveError::UnsupportedFormat(other.to_string())),
        }
    }
}

/// One image to save.
pub struct SaveImage {
    pub config: Vec<u8>,
    pub config_digest: Digest,
    /// Layer diff ids, bottom first.
    pub diff_ids: Vec<Digest>,
    /// Full normalised names (`docker.io/library/busybox:latest`) and the
    /// familiar forms Docker writes into `manifest.json` (`busybox:latest`).
    pub names: Vec<(String, String)>,
}

/// Supplies the uncompressed tar of a layer, byte-identical to its diff id.
pub trait LayerTarSource {
    /// Returns a reader and its exact length.
    fn layer_tar(&self, diff_id: &Digest) -> Result<(Box<dyn Read + '_>, u64), ArchiveError>;
}

/// Writes `images` as one archive to `out`.
pub fn write_archive(
    out: impl Write,
    format: ArchiveFormat,
    images: &[SaveImage],
    layers: &dyn LayerTarSource,
) -> Result<(), ArchiveError> {
    let mut w = TarOut {
        builder: tar::Builder::new(out),
        written: HashSet::new(),
        layer_sizes: HashMap::new(),
    };
    w.file(OCI_LAYOUT, br#"{"imageLayoutVersion":"1.0.0"}"#)?;

    let mut index_manifests = Vec::new();
    let mut docker_manifest = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for image in images {
        let mut layer_descs = Vec::with_capacity(image.diff_ids.len());
        let mut layer_paths = Vec::with_capacity(image.diff_ids.len());
        for diff_id in &image.diff_ids {
            let path = blob_path(diff_id);
            // Layers shared between the saved images are written once.
            let size = if let Some(size) = w.layer_sizes.get(&path) {
                *size
            } else {
                let (reader, size) = layers.layer_tar(diff_id)?;
                w.stream(&path, reader, size, diff_id)?;
                size
            };
            layer_descs.push(
                json!({"mediaType": media::OCI_LAYER, "digest": diff_id.to_string(), "size": size}),
            );
            layer_paths.push(path);
        }
        let config_path = blob_path(&image.config_digest);
        w.file_once(&config_path, &image.config)?;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_MANIFEST,
            "config": {"mediaType": media::OCI_CONFIG, "digest": image.config_digest.to_string(), "size": image.config.len()},
            "layers": layer_descs,
        });
        let manifest_bytes =
            serde_json::to_vec(&manifest).map_err(|e| ArchiveError::json("manifest", e))?;
        let manifest_digest = Digest::of_bytes(&manifest_bytes);
        w.file_once(&blob_path(&manifest_digest), &manifest_bytes)?;

        let descriptor = |annotations: serde_json::Value| {
            json!({
                "mediaType": media::OCI_MANIFEST,
                "digest": manifest_digest.to_string(),
                "size": manifest_bytes.len(),
                "annotations": annotations,
            })
        };
        if image.names.is_empty() {
            index_manifests.push(descriptor(json!({})));
        }
        for (full, _) in &image.names {
            let tag = full
                .rsplit_once(':')
                .map(|(_, t)| t)
                .filter(|t| !t.contains('/'))
                .unwrap_or("latest");
            index_manifests.push(descriptor(
                json!({ANNOTATION_CONTAINERD_NAME: full, ANNOTATION_REF_NAME: tag}),
            ));
        }
        let repo_tags: Vec<&str> = image
            .names
            .iter()
            .map(|(_, familiar)| familiar.as_str())
            .collect();
        docker_manifest
            .push(json!({"Config": config_path, "RepoTags": repo_tags, "Layers": layer_paths}));
        if let Some(top) = image.diff_ids.last() {
            for (_, familiar) in &image.names {
                if let Some((repo, tag)) = familiar.rsplit_once(':') {
                    repositories
                        .entry(repo.to_string())
                        .or_default()
                        .insert(tag.to_string(), top.hex());
                }
            }
        }
    }
    let index =
        json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": index_manifests});
    w.json(OCI_INDEX, &index)?;
    if format == ArchiveFormat::DockerArchive {
        w.json(DOCKER_MANIFEST, &json!(docker_manifest))?;
        if !repositories.is_empty() {
            w.json("repositories", &json!(repositories))?;
        }
    }
    w.builder
        .into_inner()
        .and_then(|mut out| out.flush())
        .map_err(|source| ArchiveError::Write {
            entry: "end of archive".to_string(),
            source,
        })
}

struct TarOut<W: Write> {
    builder: tar::Builder<W>,
    written: HashSet<String>,
    layer_sizes: HashMap<String, u64>,
}

impl<W: Write> TarOut<W> {
    fn header(size: u64) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_size(size);
        h.set_mode(0o444);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_entry_type(tar::EntryType::Regular);
        h
    }

    fn file(&mut self, path: &str, data: &[u8]) -> Result<(), ArchiveError> {
        let mut h = Self::header(data.len() as u64);
        self.builder
            .append_data(&mut h, path, data)
            .map_err(|source| ArchiveError::Write {
                entry: path.to_string(),
                source,
            })?;
        self.written.insert(path.to_string());
        Ok(())
    }

    fn file_once(&mut self, path: &str, data: &[u8]) -> Result<(), ArchiveError> {
        if self.written.contains(path) {
            return Ok(());
        }
        self.file(path, data)
    }

    fn json(&mut self, path: &str, v: &serde_json::Value) -> Result<(), ArchiveError> {
        let bytes = serde_json::to_vec(v).map_err(|e| ArchiveError::json(path, e))?;
        self.file(path, &bytes)
    }

    /// Streams a layer, checking its length and digest as it goes: a store
    /// that no longer reproduces the diff id must not yield a silently
    /// different archive.
    fn stream(
        &mut self,
        path: &str,
        reader: Box<dyn Read + '_>,
        size: u64,
        digest: &Digest,
    ) -> Result<(), ArchiveError> {
        let mut h = Self::header(size);
        let mut verifying =
            crate::source::VerifyingReader::new(reader, Some(*digest), format!("layer {digest}"));
        let mut exact = ExactLen {
            inner: &mut verifying,
            left: size,
            what: path,
        };
        self.builder
            .append_data(&mut h, path, &mut exact)
            .map_err(|source| ArchiveError::Write {
                entry: path.to_string(),
                source,
            })?;
        verifying.finish()?;
        self.layer_sizes.insert(path.to_string(), size);
        Ok(())
    }
}

/// Fails when the source is shorter than announced (tar would pad with
/// garbage otherwise).
struct ExactLen<'a, R> {
    inner: R,
    left: u64,
    what: &'a str,
}

impl<R: Read> Read for ExactLen<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("{} ended {} bytes early", self.what, self.left),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}
