//! Image documents: manifests, indexes (manifest lists) and image configs, in both
//! OCI image-spec and Docker schema2 form, parsed into one typed representation.
//!
//! Docker schema2 and OCI documents share their JSON shape (Docker's manifest list
//! is an OCI index, its manifest an OCI manifest), so one set of types covers both;
//! the media type records which it was. berth uses its own types instead of
//! `oci_spec::image` because they must carry berth's [`Digest`] (one digest type
//! across the crate) and Docker's config extensions that OCI lacks (`Healthcheck`,
//! `ArgsEscaped`, `OnBuild`, `Shell`, `StopTimeout`); unknown fields are kept in
//! `extra` so that rewriting a config does not drop them.

mod config;
mod platform;

pub use config::{ContainerConfig, Empty, HealthConfig, History, ImageConfig, RootFs};
pub use platform::{select_platform, Platform};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::compression::Compression;
use crate::digest::Digest;
use crate::error::ImageError;

/// Media types of image documents and layers.
pub mod media_types {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const OCI_LAYER_NONDISTRIBUTABLE: &str =
        "application/vnd.oci.image.layer.nondistributable.v1.tar";
    pub const OCI_LAYER_NONDISTRIBUTABLE_GZIP: &str =
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
    pub const OCI_LAYER_NONDISTRIBUTABLE_ZSTD: &str =
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
    pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_MANIFEST_V1: &str = "application/vnd.docker.distribution.manifest.v1+json";
    pub const DOCKER_MANIFEST_V1_SIGNED: &str =
        "application/vnd.docker.distribution.manifest.v1+prettyjws";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    pub const DOCKER_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";
    pub const DOCKER_FOREIGN_LAYER: &str =
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
    /// The `Accept` header value a registry client sends for manifests.
    pub const MANIFEST_ACCEPT: &[&str] = &[
        OCI_INDEX,
        OCI_MANIFEST,
        DOCKER_MANIFEST_LIST,
        DOCKER_MANIFEST,
    ];
}

/// A reference to a blob: what it is, its digest and size, and for index
/// entries the platform it is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "config::null_default"
    )]
    pub urls: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "config::null_default"
    )]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Self {
        Self {
            media_type: media_type.to_string(),
            digest,
            size,
            urls: Vec::new(),
            annotations: BTreeMap::new(),
            platform: None,
            artifact_type: None,
        }
    }
}

/// An image manifest (OCI or Docker schema2): a config and an ordered list of layers, base first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    /// Always set after [`parse_document`]; OCI allows omitting it in the JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    #[serde(default, deserialize_with = "config::null_default")]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "config::null_default"
    )]
    pub annotations: BTreeMap<String, String>,
}

/// An image index / Docker manifest list: per-platform manifests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, deserialize_with = "config::null_default")]
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "config::null_default"
    )]
    pub annotations: BTreeMap<String, String>,
}

/// A parsed manifest-or-index document.
// Parsed once per pull or load; boxing would only burden every match.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Document {
    Manifest(Manifest),
    Index(Index),
}

impl Manifest {
    /// True for Docker schema2 (as opposed to OCI).
    pub fn is_docker(&self) -> bool {
        self.media_type.as_deref() == Some(media_types::DOCKER_MANIFEST)
    }

    pub fn to_json(&self) -> Result<Vec<u8>, ImageError> {
        serde_json::to_vec(self).map_err(|source| ImageError::Json {
            what: "manifest".into(),
            source,
        })
    }
}

impl Index {
    pub fn is_docker(&self) -> bool {
        self.media_type.as_deref() == Some(media_types::DOCKER_MANIFEST_LIST)
    }

    pub fn to_json(&self) -> Result<Vec<u8>, ImageError> {
        serde_json::to_vec(self).map_err(|source| ImageError::Json {
            what: "image index".into(),
            source,
        })
    }
}

/// Parses a manifest or index. `media_type` is the type the document was served
/// or stored with (e.g. a registry's `Content-Type`), if known; otherwise the
/// document's own `mediaType` field, or its shape, decides.
pub fn parse_document(bytes: &[u8], media_type: Option<&str>) -> Result<Document, ImageError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        #[serde(default)]
        schema_version: Option<u32>,
        #[serde(default)]
        media_type: Option<String>,
        #[serde(default)]
        manifests: Option<serde::de::IgnoredAny>,
        #[serde(default)]
        config: Option<serde::de::IgnoredAny>,
    }
    let probe: Probe = serde_json::from_slice(bytes).map_err(|source| ImageError::Json {
        what: "manifest or index".into(),
        source,
    })?;
    let declared = probe.media_type.as_deref().or(media_type);
    let kind = match declared {
        Some(media_types::OCI_MANIFEST | media_types::DOCKER_MANIFEST) => DocKind::Manifest,
        Some(media_types::OCI_INDEX | media_types::DOCKER_MANIFEST_LIST) => DocKind::Index,
        Some(t @ (media_types::DOCKER_MANIFEST_V1 | media_types::DOCKER_MANIFEST_V1_SIGNED)) => {
            return Err(ImageError::UnsupportedMediaType {
                what: "manifest (Docker schema 1)",
                media_type: t.into(),
            })
        }
        Some(t) if probe.manifests.is_none() && probe.config.is_none() => {
            return Err(ImageError::UnsupportedMediaType {
                what: "manifest",
                media_type: t.into(),
            })
        }
        _ if probe.manifests.is_some() => DocKind::Index,
        _ if probe.config.is_some() => DocKind::Manifest,
        _ => {
            return Err(ImageError::InvalidDocument {
                what: "manifest".into(),
                reason: "neither \"manifests\" nor \"config\" present".into(),
            })
        }
    };
    if probe.schema_version != Some(2) {
        return Err(ImageError::InvalidDocument {
            what: "manifest".into(),
            reason: format!("schemaVersion is {:?}, expected 2", probe.schema_version),
        });
    }
    match kind {
        DocKind::Manifest => {
            let mut m: Manifest =
                serde_json::from_slice(bytes).map_err(|source| ImageError::Json {
                    what: "image manifest".into(),
                    source,
                })?;
            if m.media_type.is_none() {
                m.media_type = Some(media_type.unwrap_or(media_types::OCI_MANIFEST).to_string());
            }
            Ok(Document::Manifest(m))
        }
        DocKind::Index => {
            let mut i: Index =
                serde_json::from_slice(bytes).map_err(|source| ImageError::Json {
                    what: "image index".into(),
                    source,
                })?;
            if i.media_type.is_none() {
                i.media_type = Some(media_type.unwrap_or(media_types::OCI_INDEX).to_string());
            }
            Ok(Document::Index(i))
        }
    }
}

enum DocKind {
    Manifest,
    Index,
}

/// Parses an image manifest (fails on an index).
pub fn parse_manifest(bytes: &[u8]) -> Result<Manifest, ImageError> {
    match parse_document(bytes, None)? {
        Document::Manifest(m) => Ok(m),
        Document::Index(_) => Err(ImageError::InvalidDocument {
            what: "image manifest".into(),
            reason: "document is an index, not a manifest".into(),
        }),
    }
}

/// The compression a layer media type declares; `None` for non-layer types.
pub fn layer_compression(media_type: &str) -> Option<Compression> {
    use media_types::*;
    match media_type {
        OCI_LAYER | DOCKER_LAYER | OCI_LAYER_NONDISTRIBUTABLE => Some(Compression::None),
        OCI_LAYER_GZIP
        | DOCKER_LAYER_GZIP
        | DOCKER_FOREIGN_LAYER
        | OCI_LAYER_NONDISTRIBUTABLE_GZIP => Some(Compression::Gzip),
        OCI_LAYER_ZSTD | DOCKER_LAYER_ZSTD | OCI_LAYER_NONDISTRIBUTABLE_ZSTD => {
            Some(Compression::Zstd)
        }
        _ => None,
    }
}

/// True for layer media types whose blobs registries do not serve (Windows base layers).
pub fn is_foreign_layer(media_type: &str) -> bool {
    media_type == media_types::DOCKER_FOREIGN_LAYER || media_type.contains(".nondistributable.")
}

/// The layer media type for `compression` in the Docker or OCI family.
pub fn layer_media_type(compression: Compression, docker: bool) -> &'static str {
    use media_types::*;
    match (compression, docker) {
        (Compression::None, true) => DOCKER_LAYER,
        (Compression::Gzip, true) => DOCKER_LAYER_GZIP,
        (Compression::Zstd, true) => DOCKER_LAYER_ZSTD,
        (Compression::None, false) => OCI_LAYER,
        (Compression::Gzip, false) => OCI_LAYER_GZIP,
        (Compression::Zstd, false) => OCI_LAYER_ZSTD,
    }
}

#[cfg(test)]
mod tests;
