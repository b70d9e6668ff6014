//! Manifests by tag and digest (validated as distribution does: every blob
//! and child manifest they reference must be in the repository), the tags
//! list and the catalog, both paginated with `n`/`last` and `Link`.

use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, ETAG, LINK};
use hyper::{Request, Response, StatusCode};
use serde_json::Value;

use super::body::{self, RespBody};
use super::{blocking, empty_response, json_response, query_param, State};
use crate::error::{ApiError, ErrorCode};
use crate::names::{Digest, Reference};
use crate::storage::Storage;

/// Largest manifest accepted (distribution's limit).
const MANIFEST_MAX: usize = 4 << 20;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

fn parse_reference(r: &str) -> Result<Reference, ApiError> {
    Reference::parse(r).ok_or_else(|| {
        if r.contains(':') {
            ApiError::new(
                ErrorCode::DigestInvalid,
                "invalid or unsupported digest (sha256 only)",
            )
            .detail(r)
        } else {
            ApiError::new(ErrorCode::TagInvalid, "invalid tag").detail(r)
        }
    })
}

fn manifest_unknown(r: &str) -> ApiError {
    ApiError::new(ErrorCode::ManifestUnknown, "manifest unknown").detail(r)
}

pub async fn get(
    state: Arc<State>,
    name: String,
    r: String,
    head: bool,
) -> Result<Response<RespBody>, ApiError> {
    let reference = parse_reference(&r)?;
    let Some(m) = blocking(move || state.storage.get_manifest(&name, &reference)).await? else {
        return Err(manifest_unknown(&r));
    };
    let len = m.bytes.len();
    let mut resp = Response::new(if head {
        body::empty()
    } else {
        body::full(m.bytes)
    });
    let h = resp.headers_mut();
    h.insert(CONTENT_LENGTH, HeaderValue::from(len));
    if let Ok(v) = HeaderValue::from_str(&m.media_type) {
        h.insert(CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&m.digest.to_string()) {
        h.insert("Docker-Content-Digest", v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", m.digest)) {
        h.insert(ETAG, v);
    }
    Ok(resp)
}

pub async fn put(
    state: Arc<State>,
    req: Request<Incoming>,
    name: String,
    r: String,
) -> Result<Response<RespBody>, ApiError> {
    let reference = parse_reference(&r)?;
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.split(';').next().unwrap_or(s).trim().to_string());
    // Read by hand rather than through a length limit: a body over the
    // limit is drained (bounded), so the client gets the 413 instead of a
    // reset while it still sends.
    let mut body = req.into_body();
    let mut buf = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::new(ErrorCode::ManifestInvalid, format!("reading manifest: {e}"))
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if buf.len() + data.len() > MANIFEST_MAX {
            super::drain(body).await;
            return Err(ApiError::new(
                ErrorCode::SizeInvalid,
                format!("manifest larger than {MANIFEST_MAX} bytes"),
            )
            .with_status(StatusCode::PAYLOAD_TOO_LARGE));
        }
        buf.extend_from_slice(&data);
    }
    let bytes = hyper::body::Bytes::from(buf);
    let digest = Digest::of_bytes(&bytes);
    if let Reference::Digest(want) = &reference {
        if want != &digest {
            return Err(ApiError::new(
                ErrorCode::DigestInvalid,
                "manifest digest does not match the reference",
            )
            .detail(
                serde_json::json!({"expected": want.to_string(), "actual": digest.to_string()}),
            ));
        }
    }
    let tag = match reference {
        Reference::Tag(t) => Some(t),
        Reference::Digest(_) => None,
    };
    let n = name.clone();
    let stored = blocking(move || {
        let media_type = match validate(&state.storage, &n, &bytes, content_type.as_deref()) {
            Ok(m) => m,
            Err(e) => return Ok(Err(e)),
        };
        state
            .storage
            .put_manifest(&n, &bytes, &media_type, tag.as_deref())
            .map(Ok)
    })
    .await??;
    Ok(empty_response(
        StatusCode::CREATED,
        &[
            ("Location", format!("/v2/{name}/manifests/{stored}")),
            ("Docker-Content-Digest", stored.to_string()),
        ],
    ))
}

/// Checks a pushed manifest; returns the media type to serve it with.
fn validate(
    storage: &Storage,
    name: &str,
    bytes: &[u8],
    content_type: Option<&str>,
) -> Result<String, ApiError> {
    let invalid = |msg: &str| ApiError::new(ErrorCode::ManifestInvalid, msg.to_string());
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| invalid(&format!("manifest is not JSON: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| invalid("manifest is not a JSON object"))?;
    if obj.get("schemaVersion").and_then(Value::as_u64) != Some(2) {
        return Err(invalid(
            "unsupported schemaVersion (only schema 2 manifests are accepted)",
        ));
    }
    let field = obj.get("mediaType").and_then(Value::as_str);
    // Clients that do not say what they send get the manifest's own media type.
    let header = content_type
        .filter(|c| !c.is_empty() && *c != "application/json" && *c != "application/octet-stream");
    if let (Some(h), Some(f)) = (header, field) {
        if h != f {
            return Err(invalid(&format!(
                "mediaType {f} does not match Content-Type {h}"
            )));
        }
    }
    let is_index = obj.contains_key("manifests");
    let media_type = header
        .or(field)
        .map(str::to_string)
        .unwrap_or_else(|| if is_index { OCI_INDEX } else { OCI_MANIFEST }.to_string());
    let descriptors = |key: &str| -> Result<Vec<&serde_json::Map<String, Value>>, ApiError> {
        match obj.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(a)) => a
                .iter()
                .map(|d| {
                    d.as_object()
                        .ok_or_else(|| invalid(&format!("{key} entry is not an object")))
                })
                .collect(),
            Some(_) => Err(invalid(&format!("{key} is not an array"))),
        }
    };
    let digest_of = |d: &serde_json::Map<String, Value>| -> Result<Digest, ApiError> {
        let s = d
            .get("digest")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("descriptor without digest"))?;
        Digest::parse(s)
            .ok_or_else(|| invalid(&format!("descriptor digest {s} is invalid or not sha256")))
    };
    let missing = |d: &Digest| {
        ApiError::new(ErrorCode::ManifestBlobUnknown, "blob unknown to registry")
            .detail(serde_json::json!({"digest": d.to_string()}))
    };
    if media_type == OCI_INDEX
        || media_type == DOCKER_LIST
        || (is_index && media_type != OCI_MANIFEST && media_type != DOCKER_MANIFEST)
    {
        for m in descriptors("manifests")? {
            let d = digest_of(m)?;
            if storage.manifest_media_type(name, &d)?.is_none() {
                return Err(missing(&d));
            }
        }
        return Ok(media_type);
    }
    let config = match obj.get("config") {
        Some(Value::Object(c)) => c,
        _ => return Err(invalid("manifest has no config descriptor")),
    };
    let mut blobs = vec![digest_of(config)?];
    for l in descriptors("layers")? {
        let d = digest_of(l)?;
        // Foreign layers (Windows base images) live elsewhere, at their urls.
        let foreign = l
            .get("urls")
            .and_then(Value::as_array)
            .is_some_and(|u| !u.is_empty());
        if !foreign {
            blobs.push(d);
        }
    }
    for d in &blobs {
        if storage.repo_blob_size(name, d)?.is_none() {
            return Err(missing(d));
        }
    }
    Ok(media_type)
}

pub async fn delete(
    state: Arc<State>,
    name: String,
    r: String,
) -> Result<Response<RespBody>, ApiError> {
    let reference = parse_reference(&r)?;
    let found = blocking(move || match &reference {
        Reference::Digest(d) => state.storage.delete_manifest(&name, d),
        Reference::Tag(t) => state.storage.delete_tag(&name, t),
    })
    .await?;
    if !found {
        return Err(manifest_unknown(&r));
    }
    Ok(empty_response(StatusCode::ACCEPTED, &[]))
}

/// `n` and `last` of a paginated list.
fn pagination(req: &Request<Incoming>) -> Result<(Option<usize>, Option<String>), ApiError> {
    let n = match query_param(req, "n") {
        None => None,
        Some(s) if s.is_empty() => None,
        Some(s) => Some(s.parse::<usize>().map_err(|_| {
            ApiError::new(
                ErrorCode::PaginationNumberInvalid,
                "invalid number of results requested",
            )
            .detail(s)
        })?),
    };
    Ok((n, query_param(req, "last").filter(|l| !l.is_empty())))
}

/// One page of `items` (sorted) and, when more follow, the `Link` to the next.
fn page(
    items: Vec<String>,
    n: Option<usize>,
    last: Option<&str>,
    path: &str,
) -> (Vec<String>, Option<String>) {
    let mut rest: Vec<String> = items
        .into_iter()
        .filter(|i| last.is_none_or(|l| i.as_str() > l))
        .collect();
    let Some(n) = n else {
        return (rest, None);
    };
    let more = rest.len() > n;
    rest.truncate(n);
    let link = match rest.last() {
        Some(l) if more => Some(format!("<{path}?last={l}&n={n}>; rel=\"next\"")),
        _ => None,
    };
    (rest, link)
}

fn list_response(body: Value, link: Option<String>) -> Response<RespBody> {
    let mut r = json_response(
        StatusCode::OK,
        serde_json::to_vec(&body).unwrap_or_default(),
        false,
    );
    if let Some(l) = link.and_then(|l| HeaderValue::from_str(&l).ok()) {
        r.headers_mut().insert(LINK, l);
    }
    r
}

pub async fn catalog(
    state: Arc<State>,
    req: &Request<Incoming>,
) -> Result<Response<RespBody>, ApiError> {
    let (n, last) = pagination(req)?;
    let repos = blocking(move || state.storage.repositories()).await?;
    let (repos, link) = page(repos, n, last.as_deref(), "/v2/_catalog");
    Ok(list_response(
        serde_json::json!({ "repositories": repos }),
        link,
    ))
}

pub async fn tags(
    state: Arc<State>,
    req: &Request<Incoming>,
    name: String,
) -> Result<Response<RespBody>, ApiError> {
    let (n, last) = pagination(req)?;
    let n2 = name.clone();
    let Some(tags) = blocking(move || state.storage.tags(&n2)).await? else {
        return Err(ApiError::new(
            ErrorCode::NameUnknown,
            "repository name not known to registry",
        )
        .detail(name));
    };
    let (tags, link) = page(tags, n, last.as_deref(), &format!("/v2/{name}/tags/list"));
    Ok(list_response(
        serde_json::json!({ "name": name, "tags": tags }),
        link,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages() {
        let items: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        assert_eq!(page(items.clone(), None, None, "/p"), (items.clone(), None));
        let (p, l) = page(items.clone(), Some(2), None, "/p");
        assert_eq!(p, ["a", "b"]);
        assert_eq!(l.as_deref(), Some("</p?last=b&n=2>; rel=\"next\""));
        let (p, l) = page(items.clone(), Some(2), Some("b"), "/p");
        assert_eq!((p, l), (vec!["c".to_string(), "d".to_string()], None));
        assert_eq!(page(items, Some(0), None, "/p").0.len(), 0);
    }
}
