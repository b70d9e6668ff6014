//! Manifests over the distribution API: GET by tag or digest (verified),
//! manifest list / OCI index → one platform's manifest, PUT, tags list.

use crate::digest::Digest;
use crate::model::{self, media_types, Document, Manifest};

use super::error::RegistryError;
use super::transport::{header, CallBody, RegistryClient};

/// The scope a pull needs.
pub fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

/// The scope a push needs.
pub fn push_scope(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

/// A manifest or index as served, with the digest of its bytes.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: Digest,
}

/// What a reference resolved to for one platform.
#[derive(Debug, Clone)]
pub struct ResolvedImage {
    /// The digest the tag points at (an index's, when it is one): what
    /// `Digest:` prints and what the repo digest records.
    pub digest: Digest,
    /// The platform's image manifest.
    pub manifest: Manifest,
    pub manifest_bytes: Vec<u8>,
    pub manifest_digest: Digest,
    /// The index the manifest was selected from, if any.
    pub index: Option<FetchedManifest>,
}

const MAX_MANIFEST: u64 = 4 << 20;

impl RegistryClient {
    /// Fetches a manifest or index by tag or digest. A digest reference is
    /// verified against the bytes; for a tag, a `Docker-Content-Digest`
    /// header that disagrees with the bytes is an error.
    pub fn get_manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<FetchedManifest, RegistryError> {
        let url = self.url(&format!("/v2/{repository}/manifests/{reference}"));
        let accept = media_types::MANIFEST_ACCEPT.join(", ");
        let display = display_reference(&self.registry, repository, reference);
        let mut resp = self.send(
            "GET",
            &url,
            &[("Accept", &accept)],
            CallBody::Empty,
            &[pull_scope(repository)],
        )?;
        if !resp.status().is_success() {
            return Err(self.status_error("GET", &url, resp, Some(&display)));
        }
        let content_type = header(&resp, "content-type");
        let served_digest = header(&resp, "docker-content-digest");
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(MAX_MANIFEST)
            .read_to_vec()
            .map_err(|e| self.transport_error("GET", &url, &self.endpoint.host, e))?;
        let digest = Digest::of_bytes(&bytes);
        let expected = match reference.parse::<Digest>() {
            Ok(d) => Some(d),
            Err(_) => served_digest.and_then(|h| h.parse::<Digest>().ok()),
        };
        if let Some(expected) = expected {
            if expected != digest {
                return Err(RegistryError::DigestMismatch {
                    what: format!("manifest {display}"),
                    expected,
                    actual: digest,
                });
            }
        }
        let media_type = match content_type
            .as_deref()
            .map(|c| c.split(';').next().unwrap_or(c).trim())
        {
            Some(t) if !t.is_empty() && t != "application/json" && t != "text/plain" => {
                t.to_string()
            }
            _ => match model::parse_document(&bytes, None)? {
                Document::Manifest(m) => m.media_type.unwrap_or_default(),
                Document::Index(i) => i.media_type.unwrap_or_default(),
            },
        };
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// Resolves `reference` (tag or digest) to one image manifest, picking
    /// `platform` (`linux/amd64`) from a manifest list or OCI index.
    pub fn resolve_image(
        &self,
        repository: &str,
        reference: &str,
        platform: &str,
    ) -> Result<ResolvedImage, RegistryError> {
        let top = self.get_manifest(repository, reference)?;
        match model::parse_document(&top.bytes, Some(&top.media_type))? {
            Document::Manifest(manifest) => Ok(ResolvedImage {
                digest: top.digest,
                manifest,
                manifest_digest: top.digest,
                manifest_bytes: top.bytes,
                index: None,
            }),
            Document::Index(index) => {
                let chosen = model::select_platform(&index, platform)?;
                let fetched = self.get_manifest(repository, &chosen.digest.to_string())?;
                let manifest =
                    match model::parse_document(&fetched.bytes, Some(&fetched.media_type))? {
                        Document::Manifest(m) => m,
                        Document::Index(_) => {
                            return Err(self.protocol(format!(
                                "{repository}@{}: a nested index is not supported",
                                chosen.digest
                            )))
                        }
                    };
                Ok(ResolvedImage {
                    digest: top.digest,
                    manifest,
                    manifest_digest: fetched.digest,
                    manifest_bytes: fetched.bytes,
                    index: Some(top),
                })
            }
        }
    }

    /// Uploads a manifest under `reference` (a tag or its digest); returns
    /// the digest the registry reports (checked against the bytes).
    pub fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<Digest, RegistryError> {
        let url = self.url(&format!("/v2/{repository}/manifests/{reference}"));
        let resp = self.send(
            "PUT",
            &url,
            &[("Content-Type", media_type)],
            CallBody::Bytes(bytes),
            &[push_scope(repository)],
        )?;
        if !resp.status().is_success() {
            let display = display_reference(&self.registry, repository, reference);
            return Err(self.status_error("PUT", &url, resp, Some(&display)));
        }
        let digest = Digest::of_bytes(bytes);
        if let Some(served) =
            header(&resp, "docker-content-digest").and_then(|h| h.parse::<Digest>().ok())
        {
            if served != digest {
                return Err(RegistryError::DigestMismatch {
                    what: format!("manifest pushed to {repository}:{reference}"),
                    expected: digest,
                    actual: served,
                });
            }
        }
        Ok(digest)
    }

    /// Every tag of `repository`, following `Link` pagination.
    pub fn tags(&self, repository: &str) -> Result<Vec<String>, RegistryError> {
        #[derive(serde::Deserialize)]
        struct TagList {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let mut out = Vec::new();
        let mut next = Some(format!("/v2/{repository}/tags/list?n=1000"));
        let mut pages = 0;
        while let Some(path) = next.take() {
            pages += 1;
            if pages > 1000 {
                return Err(
                    self.protocol(format!("{repository}: tag list pagination does not end"))
                );
            }
            let url = self.url(&path);
            let mut resp =
                self.send("GET", &url, &[], CallBody::Empty, &[pull_scope(repository)])?;
            if !resp.status().is_success() {
                let display = format!("{}/{repository}", self.registry);
                return Err(self.status_error("GET", &url, resp, Some(&display)));
            }
            next = header(&resp, "link").and_then(|l| {
                let start = l.find('<')? + 1;
                let end = l.find('>')?;
                (start < end).then(|| l[start..end].to_string())
            });
            let body = resp
                .body_mut()
                .with_config()
                .limit(16 << 20)
                .read_to_vec()
                .map_err(|e| self.transport_error("GET", &url, &self.endpoint.host, e))?;
            let list: TagList = serde_json::from_slice(&body)
                .map_err(|e| self.protocol(format!("tag list of {repository}: {e}")))?;
            out.extend(list.tags.unwrap_or_default());
        }
        Ok(out)
    }
}

/// `registry/repository:tag` or `…@sha256:…` for messages.
fn display_reference(registry: &str, repository: &str, reference: &str) -> String {
    let name = if registry == crate::reference::DEFAULT_DOMAIN {
        repository
            .strip_prefix("library/")
            .unwrap_or(repository)
            .to_string()
    } else {
        format!("{registry}/{repository}")
    };
    if reference.starts_with("sha256:") {
        format!("{name}@{reference}")
    } else {
        format!("{name}:{reference}")
    }
}
