//! Blob uploads: monolithic (`POST ?digest=`), chunked (`POST`, `PATCH`…,
//! `PUT ?digest=`), cross-repository mounts, status and cancel. Request
//! bodies are streamed to a blocking writer that hashes as it writes.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_RANGE};
use hyper::{Request, Response, StatusCode};
use sha2::Digest as _;
use tokio::sync::mpsc;

use super::blobs::parse_digest;
use super::body::RespBody;
use super::{blocking, drain, empty_response, query_param, State};
use crate::error::{ApiError, ErrorCode, StorageError};
use crate::names::{valid_repository, Digest};
use crate::storage::{hash_file, write_chunks, UploadState};

/// Body chunks queued between the socket and the disk writer.
const WRITE_QUEUE: usize = 32;

fn session_location(name: &str, uuid: &str) -> String {
    format!("/v2/{name}/blobs/uploads/{uuid}")
}

/// The headers that tell a client where a session stands.
fn session_headers(name: &str, uuid: &str, size: u64) -> Vec<(&'static str, String)> {
    vec![
        ("Location", session_location(name, uuid)),
        ("Range", format!("0-{}", size.saturating_sub(1))),
        ("Docker-Upload-UUID", uuid.to_string()),
    ]
}

fn created(name: &str, d: &Digest) -> Response<RespBody> {
    empty_response(
        StatusCode::CREATED,
        &[
            ("Location", format!("/v2/{name}/blobs/{d}")),
            ("Docker-Content-Digest", d.to_string()),
        ],
    )
}

fn upload_unknown(uuid: &str) -> ApiError {
    ApiError::new(
        ErrorCode::BlobUploadUnknown,
        "blob upload unknown to registry",
    )
    .detail(uuid)
}

pub async fn start(
    state: Arc<State>,
    req: Request<Incoming>,
    name: String,
) -> Result<Response<RespBody>, ApiError> {
    if let (Some(mount), Some(from)) = (query_param(&req, "mount"), query_param(&req, "from")) {
        let d = parse_digest(&mount)?;
        if valid_repository(&from) {
            let (st, n, dd) = (state.clone(), name.clone(), d.clone());
            let mounted = blocking(move || {
                if st.storage.repo_blob_size(&from, &dd)?.is_none() {
                    return Ok(false);
                }
                st.storage.link_blob(&n, &dd)?;
                Ok(true)
            })
            .await?;
            if mounted {
                return Ok(created(&name, &d));
            }
        }
        // Not mountable: the client gets a session to upload into, as the spec says.
    }
    let digest = query_param(&req, "digest")
        .map(|d| parse_digest(&d))
        .transpose()?;
    let (st, n) = (state.clone(), name.clone());
    let uuid = blocking(move || st.storage.create_upload(&n)).await?;
    let session = state.uploads.insert(&uuid);
    let Some(d) = digest else {
        return Ok(empty_response(
            StatusCode::ACCEPTED,
            &session_headers(&name, &uuid, 0),
        ));
    };
    let mut s = session.lock().await;
    receive(&state, &uuid, &mut s, req.into_body()).await?;
    finish(&state, &name, &uuid, &mut s, &d).await?;
    Ok(created(&name, &d))
}

/// A `Content-Range: <start>-<end>` header (also with a `bytes ` prefix).
fn content_range(req: &Request<Incoming>) -> Result<Option<(u64, u64)>, ()> {
    let Some(v) = req.headers().get(CONTENT_RANGE) else {
        return Ok(None);
    };
    let s = v.to_str().map_err(|_| ())?.trim();
    let s = s
        .strip_prefix("bytes ")
        .or_else(|| s.strip_prefix("bytes="))
        .unwrap_or(s);
    let s = s.split('/').next().unwrap_or(s);
    let (a, b) = s.split_once('-').ok_or(())?;
    let (a, b) = (
        a.trim().parse::<u64>().map_err(|_| ())?,
        b.trim().parse::<u64>().map_err(|_| ())?,
    );
    if b < a {
        return Err(());
    }
    Ok(Some((a, b)))
}

fn content_length(req: &Request<Incoming>) -> Option<u64> {
    req.headers()
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn range_invalid(name: &str, uuid: &str, size: u64, why: &str) -> Response<RespBody> {
    let mut r = super::error_response(&ApiError::new(ErrorCode::RangeInvalid, why));
    for (k, v) in session_headers(name, uuid, size) {
        if let Ok(v) = hyper::header::HeaderValue::from_str(&v) {
            r.headers_mut().insert(k, v);
        }
    }
    r
}

pub async fn patch(
    state: Arc<State>,
    req: Request<Incoming>,
    name: String,
    uuid: String,
) -> Result<Response<RespBody>, ApiError> {
    let session = lookup(&state, &name, &uuid).await?;
    let mut s = session.lock().await;
    if s.closed {
        return Err(upload_unknown(&uuid));
    }
    let range = match content_range(&req) {
        Ok(r) => r,
        Err(()) => {
            drain(req.into_body()).await;
            return Ok(range_invalid(
                &name,
                &uuid,
                s.size,
                "malformed Content-Range",
            ));
        }
    };
    if let Some((start, end)) = range {
        let why = if start != s.size {
            Some(format!(
                "chunk starts at {start}, the upload has {} bytes",
                s.size
            ))
        } else if content_length(&req).is_some_and(|l| l != end - start + 1) {
            Some("Content-Range and Content-Length differ".to_string())
        } else {
            None
        };
        if let Some(why) = why {
            drain(req.into_body()).await;
            return Ok(range_invalid(&name, &uuid, s.size, &why));
        }
    }
    let (before_size, before_hash) = (s.size, s.hasher.clone());
    let written = receive(&state, &uuid, &mut s, req.into_body()).await?;
    if let Some((start, end)) = range {
        if written != end - start + 1 {
            // Roll back to before this chunk; the next write cuts the file there.
            s.size = before_size;
            s.hasher = before_hash;
            return Err(ApiError::new(
                ErrorCode::BlobUploadInvalid,
                format!(
                    "chunk has {written} bytes, Content-Range said {}",
                    end - start + 1
                ),
            ));
        }
    }
    Ok(empty_response(
        StatusCode::ACCEPTED,
        &session_headers(&name, &uuid, s.size),
    ))
}

pub async fn complete(
    state: Arc<State>,
    req: Request<Incoming>,
    name: String,
    uuid: String,
) -> Result<Response<RespBody>, ApiError> {
    let session = lookup(&state, &name, &uuid).await?;
    let d = match query_param(&req, "digest") {
        Some(d) => parse_digest(&d)?,
        None => {
            return Err(ApiError::new(
                ErrorCode::DigestInvalid,
                "digest parameter missing",
            ))
        }
    };
    let mut s = session.lock().await;
    if s.closed {
        return Err(upload_unknown(&uuid));
    }
    receive(&state, &uuid, &mut s, req.into_body()).await?;
    finish(&state, &name, &uuid, &mut s, &d).await?;
    Ok(created(&name, &d))
}

pub async fn status(
    state: Arc<State>,
    name: String,
    uuid: String,
) -> Result<Response<RespBody>, ApiError> {
    let session = lookup(&state, &name, &uuid).await?;
    let s = session.lock().await;
    if s.closed {
        return Err(upload_unknown(&uuid));
    }
    Ok(empty_response(
        StatusCode::NO_CONTENT,
        &session_headers(&name, &uuid, s.size),
    ))
}

pub async fn cancel(
    state: Arc<State>,
    name: String,
    uuid: String,
) -> Result<Response<RespBody>, ApiError> {
    let session = lookup(&state, &name, &uuid).await?;
    let mut s = session.lock().await;
    if s.closed {
        return Err(upload_unknown(&uuid));
    }
    s.closed = true;
    state.uploads.remove(&uuid);
    let (st, u) = (state.clone(), uuid.clone());
    blocking(move || st.storage.remove_upload(&u)).await?;
    Ok(empty_response(StatusCode::NO_CONTENT, &[]))
}

async fn lookup(
    state: &Arc<State>,
    name: &str,
    uuid: &str,
) -> Result<Arc<tokio::sync::Mutex<UploadState>>, ApiError> {
    let (st, n, u) = (state.clone(), name.to_string(), uuid.to_string());
    blocking(move || st.uploads.get(&st.storage, &n, &u))
        .await?
        .ok_or_else(|| upload_unknown(uuid))
}

/// Appends a request body to the session; returns the bytes received. A
/// body cut short keeps what arrived (the client can ask where it stands
/// and resume from there).
async fn receive(
    state: &Arc<State>,
    uuid: &str,
    s: &mut UploadState,
    mut body: Incoming,
) -> Result<u64, ApiError> {
    let (tx, rx) = mpsc::channel::<Bytes>(WRITE_QUEUE);
    let path = state.storage.upload_data_path(uuid);
    let (offset, hasher) = (s.size, s.hasher.take());
    let writer = tokio::task::spawn_blocking(move || write_chunks(&path, offset, hasher, rx));
    let mut body_error = None;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => {
                if let Ok(data) = f.into_data() {
                    if tx.send(data).await.is_err() {
                        break; // the writer failed: its error is below
                    }
                }
            }
            Err(e) => {
                body_error = Some(e);
                break;
            }
        }
    }
    drop(tx);
    let result = writer
        .await
        .map_err(|e| ApiError::new(ErrorCode::Unknown, format!("upload writer failed: {e}")))?;
    match result {
        Ok((written, hasher)) => {
            s.size = offset + written;
            s.hasher = hasher;
            match body_error {
                None => Ok(written),
                Some(e) => Err(ApiError::new(
                    ErrorCode::BlobUploadInvalid,
                    format!("reading request body: {e}"),
                )),
            }
        }
        Err(e) => {
            // What reached the file is unknown: measure it, hash it again at the end.
            let data = state.storage.upload_data_path(uuid);
            s.size = std::fs::metadata(&data).map(|m| m.len()).unwrap_or(offset);
            s.hasher = None;
            Err(e.into())
        }
    }
}

/// Verifies the session's content against `d` and moves it into the store.
/// A mismatch ends the session: its content can never become `d`.
async fn finish(
    state: &Arc<State>,
    name: &str,
    uuid: &str,
    s: &mut UploadState,
    d: &Digest,
) -> Result<(), ApiError> {
    let (st, u, size, hasher) = (state.clone(), uuid.to_string(), s.size, s.hasher.take());
    let got = blocking(move || {
        let data = st.storage.upload_data_path(&u);
        // An interrupted chunk may have left bytes past the recorded size.
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&data)
            .map_err(|e| StorageError::io("open", &data, e))?;
        if f.metadata()
            .map_err(|e| StorageError::io("stat", &data, e))?
            .len()
            != size
        {
            f.set_len(size)
                .map_err(|e| StorageError::io("truncate", &data, e))?;
        }
        let h = match hasher {
            Some(h) => h,
            None => hash_file(&data)?,
        };
        Ok(Digest::from_sha256(&h.finalize()))
    })
    .await?;
    s.closed = true;
    state.uploads.remove(uuid);
    let (st, u, n, dd) = (state.clone(), uuid.to_string(), name.to_string(), d.clone());
    if &got != d {
        blocking(move || st.storage.remove_upload(&u)).await?;
        return Err(ApiError::new(
            ErrorCode::DigestInvalid,
            "provided digest did not match uploaded content",
        )
        .detail(serde_json::json!({"expected": d.to_string(), "actual": got.to_string()})));
    }
    blocking(move || st.storage.commit_upload(&u, &n, &dd)).await
}
