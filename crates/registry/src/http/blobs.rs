//! Blob reads (whole or by `Range`) and deletes.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, RANGE,
};
use hyper::{Request, Response, StatusCode};

use super::body::{self, RespBody};
use super::{blocking, empty_response, State};
use crate::error::{ApiError, ErrorCode, StorageError};
use crate::names::Digest;

pub fn parse_digest(s: &str) -> Result<Digest, ApiError> {
    Digest::parse(s).ok_or_else(|| {
        ApiError::new(
            ErrorCode::DigestInvalid,
            "invalid or unsupported digest (sha256 only)",
        )
        .detail(s)
    })
}

/// A byte range of a blob of `size` bytes, from a `Range: bytes=…` header:
/// `Ok(None)` for the whole blob, `Err` when it cannot be satisfied.
fn byte_range(header: Option<&HeaderValue>, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = header.and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    // Only a single range; anything else is answered with the whole blob,
    // which RFC 9110 allows.
    let Some(spec) = spec
        .trim()
        .strip_prefix("bytes=")
        .filter(|s| !s.contains(','))
    else {
        return Ok(None);
    };
    let Some((a, b)) = spec.split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| ())?;
        if n == 0 {
            return Err(());
        }
        (size.saturating_sub(n), size.saturating_sub(1))
    } else {
        let start: u64 = a.parse().map_err(|_| ())?;
        let end = if b.is_empty() {
            size.saturating_sub(1)
        } else {
            b.parse::<u64>()
                .map_err(|_| ())?
                .min(size.saturating_sub(1))
        };
        (start, end)
    };
    if start >= size || end < start {
        return Err(());
    }
    Ok(Some((start, end)))
}

pub async fn get(
    state: Arc<State>,
    req: &Request<Incoming>,
    name: String,
    digest: String,
    head: bool,
) -> Result<Response<RespBody>, ApiError> {
    let d = parse_digest(&digest)?;
    let range_header = req.headers().get(RANGE).cloned();
    let dd = d.clone();
    let opened = blocking(move || {
        if state.storage.repo_blob_size(&name, &dd)?.is_none() {
            return Ok(None);
        }
        let p = state.storage.blob_path(&dd);
        match std::fs::File::open(&p) {
            Ok(f) => {
                let size = f
                    .metadata()
                    .map_err(|e| StorageError::io("stat", &p, e))?
                    .len();
                Ok(Some((f, size)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageError::io("open", p, e)),
        }
    })
    .await?;
    let Some((file, size)) = opened else {
        return Err(
            ApiError::new(ErrorCode::BlobUnknown, "blob unknown to registry").detail(d.to_string()),
        );
    };
    let range = match byte_range(range_header.as_ref(), size) {
        Ok(r) => r,
        Err(()) => {
            let mut r = empty_response(StatusCode::RANGE_NOT_SATISFIABLE, &[]);
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                r.headers_mut().insert(CONTENT_RANGE, v);
            }
            return Ok(r);
        }
    };
    let (status, start, len) = match range {
        Some((s, e)) => (StatusCode::PARTIAL_CONTENT, s, e - s + 1),
        None => (StatusCode::OK, 0, size),
    };
    let mut r = Response::new(if head {
        body::empty()
    } else {
        body::file_range(file, start, len)
    });
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&d.to_string()) {
        h.insert("Docker-Content-Digest", v.clone());
    }
    if let Ok(v) = HeaderValue::from_str(&format!("\"{d}\"")) {
        h.insert(ETAG, v);
    }
    if range.is_some() {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{}/{size}", start, start + len - 1))
        {
            h.insert(CONTENT_RANGE, v);
        }
    }
    Ok(r)
}

pub async fn delete(
    state: Arc<State>,
    name: String,
    digest: String,
) -> Result<Response<RespBody>, ApiError> {
    let d = parse_digest(&digest)?;
    let dd = d.clone();
    if !blocking(move || state.storage.unlink_blob(&name, &dd)).await? {
        return Err(
            ApiError::new(ErrorCode::BlobUnknown, "blob unknown to repository")
                .detail(d.to_string()),
        );
    }
    Ok(empty_response(
        StatusCode::ACCEPTED,
        &[("Docker-Content-Digest", d.to_string())],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let h = |s: &str| Some(HeaderValue::from_str(s).unwrap());
        assert_eq!(byte_range(None, 10), Ok(None));
        assert_eq!(byte_range(h("bytes=0-4").as_ref(), 10), Ok(Some((0, 4))));
        assert_eq!(byte_range(h("bytes=5-").as_ref(), 10), Ok(Some((5, 9))));
        assert_eq!(byte_range(h("bytes=-3").as_ref(), 10), Ok(Some((7, 9))));
        assert_eq!(byte_range(h("bytes=8-100").as_ref(), 10), Ok(Some((8, 9))));
        assert_eq!(byte_range(h("bytes=10-").as_ref(), 10), Err(()));
        assert_eq!(byte_range(h("bytes=5-2").as_ref(), 10), Err(()));
        assert_eq!(byte_range(h("bytes=0-1,3-4").as_ref(), 10), Ok(None));
        assert_eq!(byte_range(h("items=0-1").as_ref(), 10), Ok(None));
    }
}
