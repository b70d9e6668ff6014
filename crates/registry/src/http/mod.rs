//! The distribution API over hyper: routing, authentication and the
//! responses' common headers. The handlers live in `blobs`, `uploads` and
//! `manifests`.

pub mod auth;
mod blobs;
pub mod body;
mod manifests;
mod uploads;

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};

use crate::error::{ApiError, ErrorCode, StorageError};
use crate::names::valid_repository;
use crate::storage::{Storage, UploadSessions};
use auth::{BasicCredentials, Htpasswd};
use body::RespBody;

/// The realm named in `WWW-Authenticate` challenges.
const REALM: &str = "berth-registry";

/// Everything the handlers share.
pub struct State {
    pub storage: Storage,
    pub uploads: UploadSessions,
    pub htpasswd: Option<Htpasswd>,
}

/// What a request asks for, from its path.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Base,
    Catalog,
    Tags(String),
    Manifest(String, String),
    Blob(String, String),
    UploadStart(String),
    Upload(String, String),
}

/// Parses a path below `/v2/`; `Err` for a path that names a repository
/// the spec does not allow, `Ok(None)` for anything else unknown.
fn route(path: &str) -> Result<Option<Route>, ApiError> {
    let Some(rest) = path.strip_prefix("/v2") else {
        return Ok(None);
    };
    if rest.is_empty() || rest == "/" {
        return Ok(Some(Route::Base));
    }
    let Some(rest) = rest.strip_prefix('/') else {
        return Ok(None);
    };
    if rest == "_catalog" {
        return Ok(Some(Route::Catalog));
    }
    let leaf = |s: &str| !s.is_empty() && !s.contains('/');
    let (name, r) = if let Some(name) = rest.strip_suffix("/tags/list") {
        (name, Route::Tags(String::new()))
    } else if let Some((name, reference)) = rest.rsplit_once("/manifests/").filter(|(_, r)| leaf(r))
    {
        (name, Route::Manifest(String::new(), reference.to_string()))
    } else if let Some(name) = rest
        .strip_suffix("/blobs/uploads/")
        .or_else(|| rest.strip_suffix("/blobs/uploads"))
    {
        (name, Route::UploadStart(String::new()))
    } else if let Some((name, uuid)) = rest.rsplit_once("/blobs/uploads/").filter(|(_, u)| leaf(u))
    {
        (name, Route::Upload(String::new(), uuid.to_string()))
    } else if let Some((name, digest)) = rest.rsplit_once("/blobs/").filter(|(_, d)| leaf(d)) {
        (name, Route::Blob(String::new(), digest.to_string()))
    } else {
        return Ok(None);
    };
    if !valid_repository(name) {
        return Err(ApiError::new(ErrorCode::NameInvalid, "invalid repository name").detail(name));
    }
    let name = name.to_string();
    Ok(Some(match r {
        Route::Tags(_) => Route::Tags(name),
        Route::Manifest(_, reference) => Route::Manifest(name, reference),
        Route::UploadStart(_) => Route::UploadStart(name),
        Route::Upload(_, uuid) => Route::Upload(name, uuid),
        Route::Blob(_, digest) => Route::Blob(name, digest),
        other => other,
    }))
}

/// How much of an unread request body is read and dropped before an early
/// rejection is sent. A client still writing its body when the server
/// answers and closes gets a reset instead of the answer (a 401 or 416 it
/// could act on); Go's net/http drains 256 KiB for the same reason.
const DRAIN_LIMIT: usize = 4 << 20;

/// Reads and drops up to `DRAIN_LIMIT` bytes of a body nobody will use, so
/// the response that rejects it reaches the client. Bounded in bytes and
/// time: a client streaming gigabytes just loses the connection.
pub(crate) async fn drain(mut body: Incoming) {
    use http_body_util::BodyExt;
    let read = async {
        let mut seen = 0usize;
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data() {
                seen += data.len();
                if seen > DRAIN_LIMIT {
                    break;
                }
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), read).await;
}

/// Answers one request; also returns the authenticated user for the log.
pub async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> (Response<RespBody>, Option<String>) {
    let user = match authenticate(&state, &req).await {
        Ok(user) => user,
        Err(resp) => {
            drain(req.into_body()).await;
            return (resp, None);
        }
    };
    let mut resp = match dispatch(state, req).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    };
    resp.headers_mut().insert(
        "Docker-Distribution-API-Version",
        HeaderValue::from_static("registry/2.0"),
    );
    (resp, user)
}

async fn authenticate(
    state: &Arc<State>,
    req: &Request<Incoming>,
) -> Result<Option<String>, Response<RespBody>> {
    let Some(htpasswd) = &state.htpasswd else {
        return Ok(None);
    };
    let creds = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| BasicCredentials::from_header(v.as_bytes()));
    let ok = match &creds {
        None => false,
        Some(c) if htpasswd.known_good(c) => true,
        Some(c) => {
            let (state, c) = (state.clone(), c.clone());
            tokio::task::spawn_blocking(move || {
                state.htpasswd.as_ref().is_some_and(|h| h.verify(&c))
            })
            .await
            .unwrap_or(false)
        }
    };
    match (ok, creds) {
        (true, Some(c)) => Ok(Some(c.user)),
        _ => Err(unauthorized()),
    }
}

fn unauthorized() -> Response<RespBody> {
    let mut r = error_response(&ApiError::new(
        ErrorCode::Unauthorized,
        "authentication required",
    ));
    r.headers_mut().insert(
        "Docker-Distribution-API-Version",
        HeaderValue::from_static("registry/2.0"),
    );
    r
}

async fn dispatch(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<RespBody>, ApiError> {
    let Some(route) = route(req.uri().path())? else {
        return Err(ApiError::new(ErrorCode::Unsupported, "no such endpoint")
            .with_status(StatusCode::NOT_FOUND));
    };
    let method = req.method().clone();
    let head = method == Method::HEAD;
    match (method, route) {
        (Method::GET | Method::HEAD, Route::Base) => {
            Ok(json_response(StatusCode::OK, b"{}".to_vec(), head))
        }
        (Method::GET, Route::Catalog) => manifests::catalog(state, &req).await,
        (Method::GET, Route::Tags(name)) => manifests::tags(state, &req, name).await,
        (Method::GET | Method::HEAD, Route::Manifest(name, r)) => {
            manifests::get(state, name, r, head).await
        }
        (Method::PUT, Route::Manifest(name, r)) => manifests::put(state, req, name, r).await,
        (Method::DELETE, Route::Manifest(name, r)) => manifests::delete(state, name, r).await,
        (Method::GET | Method::HEAD, Route::Blob(name, d)) => {
            blobs::get(state, &req, name, d, head).await
        }
        (Method::DELETE, Route::Blob(name, d)) => blobs::delete(state, name, d).await,
        (Method::POST, Route::UploadStart(name)) => uploads::start(state, req, name).await,
        (Method::PATCH, Route::Upload(name, uuid)) => uploads::patch(state, req, name, uuid).await,
        (Method::PUT, Route::Upload(name, uuid)) => uploads::complete(state, req, name, uuid).await,
        (Method::GET, Route::Upload(name, uuid)) => uploads::status(state, name, uuid).await,
        (Method::DELETE, Route::Upload(name, uuid)) => uploads::cancel(state, name, uuid).await,
        (m, _) => Err(ApiError::new(
            ErrorCode::Unsupported,
            format!("method {m} not allowed here"),
        )),
    }
}

pub fn error_response(e: &ApiError) -> Response<RespBody> {
    let mut r = json_response(e.status(), e.body(), false);
    if e.code == ErrorCode::Unauthorized {
        let challenge = format!("Basic realm=\"{REALM}\"");
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            r.headers_mut().insert(WWW_AUTHENTICATE, v);
        }
    }
    r
}

fn json_response(status: StatusCode, body: Vec<u8>, head: bool) -> Response<RespBody> {
    let len = body.len();
    let mut r = Response::new(if head {
        body::empty()
    } else {
        body::full(body)
    });
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r.headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(len));
    r
}

/// A response with no body and the given headers.
fn empty_response(status: StatusCode, headers: &[(&'static str, String)]) -> Response<RespBody> {
    let mut r = Response::new(body::empty());
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_LENGTH, HeaderValue::from(0));
    for (k, v) in headers {
        if let Ok(v) = HeaderValue::from_str(v) {
            r.headers_mut().insert(*k, v);
        }
    }
    r
}

/// Runs store work on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(ApiError::from),
        Err(e) => Err(ApiError::new(
            ErrorCode::Unknown,
            format!("storage task failed: {e}"),
        )),
    }
}

/// The value of query parameter `key`, percent-decoded.
fn query_param(req: &Request<Incoming>, key: &str) -> Option<String> {
    let q = req.uri().query()?;
    q.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == key).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len()
                && b[i + 1].is_ascii_hexdigit()
                && b[i + 2].is_ascii_hexdigit() =>
            {
                let hex = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
                out.push(hex(b[i + 1]) << 4 | hex(b[i + 2]));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let r = |p: &str| route(p).unwrap();
        assert_eq!(r("/v2/"), Some(Route::Base));
        assert_eq!(r("/v2"), Some(Route::Base));
        assert_eq!(r("/v2/_catalog"), Some(Route::Catalog));
        assert_eq!(r("/v2/a/b/c/tags/list"), Some(Route::Tags("a/b/c".into())));
        assert_eq!(
            r("/v2/library/busybox/manifests/latest"),
            Some(Route::Manifest("library/busybox".into(), "latest".into()))
        );
        assert_eq!(
            r("/v2/x/blobs/uploads/"),
            Some(Route::UploadStart("x".into()))
        );
        assert_eq!(
            r("/v2/x/blobs/uploads"),
            Some(Route::UploadStart("x".into()))
        );
        assert_eq!(
            r("/v2/x/blobs/uploads/abc"),
            Some(Route::Upload("x".into(), "abc".into()))
        );
        assert_eq!(
            r("/v2/blobs/blobs/sha256:1"),
            Some(Route::Blob("blobs".into(), "sha256:1".into()))
        );
        assert_eq!(
            r("/v2/a/manifests/b/manifests/c"),
            Some(Route::Manifest("a/manifests/b".into(), "c".into()))
        );
        assert_eq!(r("/v3/x"), None);
        assert_eq!(r("/v2/x/y"), None);
        assert!(route("/v2/UPPER/tags/list").is_err());
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("sha256%3Aab"), "sha256:ab");
        assert_eq!(percent_decode("a%2Fb+c"), "a/b c");
        assert_eq!(percent_decode("bad%zz%"), "bad%zz%");
    }
}
