//! The HTTP(S) side of the client: connecting to the first working
//! endpoint (see [`super::endpoint`]), authorising each request (Basic, or
//! Bearer tokens per scope obtained from the challenge's realm), and
//! turning transport failures and error statuses into [`RegistryError`]s.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;

use ureq::http::{self, Response};
use ureq::{Agent, Body, SendBody};

use super::auth::{Challenge, Credentials, TokenResponse};
use super::config::RegistryConfig;
use super::endpoint::{build_agent, endpoints, Endpoint};
use super::error::RegistryError;

/// A body to send; bytes can be sent again after a 401, readers cannot.
pub(crate) enum CallBody<'a> {
    Empty,
    Bytes(&'a [u8]),
    Reader(&'a mut dyn Read, u64),
    /// A body of unknown length, sent with chunked transfer encoding.
    Stream(&'a mut dyn Read),
}

/// A connection to one registry: its endpoint and authorisation state.
/// Shared by the download and upload threads (`Sync`).
pub struct RegistryClient {
    pub(crate) registry: String,
    pub(crate) endpoint: Endpoint,
    pub(crate) config: RegistryConfig,
    agent: Agent,
    credentials: Option<Credentials>,
    challenge: Mutex<Option<Challenge>>,
    /// Bearer tokens by the scopes they were issued for.
    tokens: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("registry", &self.registry)
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

impl RegistryClient {
    /// Finds a working endpoint for `registry` (`GET /v2/`) and remembers
    /// its authentication challenge. `credentials` are used when a
    /// challenge asks for them.
    pub fn connect(
        registry: &str,
        config: &RegistryConfig,
        credentials: Option<Credentials>,
    ) -> Result<Self, RegistryError> {
        let candidates = endpoints(registry, config);
        let mut last_err = None;
        for (i, endpoint) in candidates.iter().enumerate() {
            let last = i + 1 == candidates.len();
            let agent = build_agent(endpoint, config)?;
            let client = Self {
                registry: registry.to_string(),
                endpoint: endpoint.clone(),
                config: config.clone(),
                agent,
                credentials: credentials.clone(),
                challenge: Mutex::new(None),
                tokens: Mutex::new(HashMap::new()),
            };
            match client.ping() {
                Ok(()) => return Ok(client),
                // A mirror that fails, or an insecure registry's HTTPS that
                // turns out to be plain HTTP: try the next endpoint.
                Err(e) if !last && (endpoint.mirror || endpoint.skip_verify) => {
                    tracing::debug!("registry endpoint {} failed: {e}", endpoint.base);
                    last_err = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| RegistryError::Protocol {
            endpoint: registry.to_string(),
            reason: "no endpoint to try".into(),
        }))
    }

    /// The registry as the reference names it (`docker.io`, `localhost:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn ping(&self) -> Result<(), RegistryError> {
        let url = self.url("/v2/");
        let resp = self.raw("GET", &url, &[], CallBody::Empty, None)?;
        match resp.status().as_u16() {
            200..=299 => Ok(()),
            401 => {
                let challenge =
                    header(&resp, "www-authenticate").and_then(|h| Challenge::parse(&h));
                *lock(&self.challenge) = challenge;
                Ok(())
            }
            _ => Err(self.status_error("GET", &url, resp, None)),
        }
    }

    /// Checks that the credentials are accepted (`login`): a Basic registry
    /// must answer `/v2/` with 200, a token registry must issue a token.
    pub fn verify_login(&self) -> Result<(), RegistryError> {
        let challenge = lock(&self.challenge).clone();
        match challenge {
            None => Ok(()),
            Some(Challenge::Basic) => {
                let url = self.url("/v2/");
                let resp = self.raw(
                    "GET",
                    &url,
                    &[],
                    CallBody::Empty,
                    self.credentials.as_ref().map(Credentials::basic_header),
                )?;
                match resp.status().as_u16() {
                    200..=299 => Ok(()),
                    401 => Err(self.unauthorized_login()),
                    _ => Err(self.status_error("GET", &url, resp, None)),
                }
            }
            Some(Challenge::Bearer { realm, service, .. }) => self
                .fetch_token(&realm, service.as_deref(), &[])
                .map(|_| ()),
        }
    }

    fn unauthorized_login(&self) -> RegistryError {
        RegistryError::Unauthorized {
            detail: format!("incorrect username or password for {}", self.registry),
            hint: format!("check them and run `berth login {}` again", self.registry),
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.endpoint.base)
    }

    /// Sends a request authorised for `scopes` (`repository:NAME:pull`);
    /// after a 401 with a replayable body, fetches a fresh token and sends
    /// it once more.
    pub(crate) fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        mut body: CallBody<'_>,
        scopes: &[String],
    ) -> Result<Response<Body>, RegistryError> {
        let auth = self.authorization(scopes, false)?;
        let replayable = !matches!(body, CallBody::Reader(..) | CallBody::Stream(..));
        let first_body = match &mut body {
            CallBody::Empty => CallBody::Empty,
            CallBody::Bytes(b) => CallBody::Bytes(b),
            CallBody::Reader(r, n) => CallBody::Reader(&mut **r, *n),
            CallBody::Stream(r) => CallBody::Stream(&mut **r),
        };
        let resp = self.raw(method, url, headers, first_body, auth.clone())?;
        if resp.status().as_u16() != 401 || !replayable {
            return Ok(resp);
        }
        if let Some(c) = header(&resp, "www-authenticate").and_then(|h| Challenge::parse(&h)) {
            *lock(&self.challenge) = Some(c);
        }
        let retry = self.authorization(scopes, true)?;
        if retry.is_none() || retry == auth {
            return Ok(resp);
        }
        self.raw(method, url, headers, body, retry)
    }

    /// The `Authorization` value for `scopes`, fetching a token if needed.
    fn authorization(
        &self,
        scopes: &[String],
        fresh: bool,
    ) -> Result<Option<String>, RegistryError> {
        let challenge = lock(&self.challenge).clone();
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(self.credentials.as_ref().map(Credentials::basic_header)),
            Some(Challenge::Bearer { realm, service, .. }) => {
                let key = scopes.join(" ");
                if !fresh {
                    if let Some(t) = lock(&self.tokens).get(&key) {
                        return Ok(Some(format!("Bearer {t}")));
                    }
                }
                let token = self.fetch_token(&realm, service.as_deref(), scopes)?;
                lock(&self.tokens).insert(key, token.clone());
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
    ) -> Result<String, RegistryError> {
        let mut query = Vec::new();
        if let Some(s) = service {
            query.push(format!("service={}", encode(s)));
        }
        for s in scopes {
            query.push(format!("scope={}", encode(s)));
        }
        if let Some(c) = &self.credentials {
            query.push(format!("account={}", encode(&c.username)));
        }
        let sep = if realm.contains('?') { '&' } else { '?' };
        let url = if query.is_empty() {
            realm.to_string()
        } else {
            format!("{realm}{sep}{}", query.join("&"))
        };
        // The realm is often another host (auth.docker.io): its own TLS
        // settings, by its own host name.
        let realm_host = url
            .split_once("://")
            .map_or("", |(_, r)| r)
            .split(['/', '?'])
            .next()
            .unwrap_or_default()
            .to_string();
        let agent = if realm_host == self.endpoint.host {
            self.agent.clone()
        } else {
            build_agent(
                &Endpoint {
                    base: String::new(),
                    skip_verify: self.config.is_insecure(&realm_host),
                    host: realm_host.clone(),
                    mirror: false,
                },
                &self.config,
            )?
        };
        let mut req = http::Request::builder().method("GET").uri(&url);
        if let Some(c) = &self.credentials {
            req = req.header("Authorization", c.basic_header());
        }
        let req = req
            .body(SendBody::none())
            .map_err(|e| self.protocol(format!("building token request for {url}: {e}")))?;
        let mut resp = agent
            .run(req)
            .map_err(|e| self.transport_error("GET", &url, &realm_host, e))?;
        match resp.status().as_u16() {
            200..=299 => {}
            401 | 403 if self.credentials.is_some() => return Err(self.unauthorized_login()),
            401 | 403 => {
                return Err(RegistryError::Unauthorized {
                    detail: format!("the token service {realm} refused an anonymous token"),
                    hint: format!("log in first: berth login {}", self.registry),
                })
            }
            _ => return Err(self.status_error("GET", &url, resp, None)),
        }
        let body = resp
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .map_err(|e| self.transport_error("GET", &url, &realm_host, e))?;
        let parsed: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| self.protocol(format!("token response from {realm}: {e}")))?;
        parsed
            .token
            .or(parsed.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| self.protocol(format!("token response from {realm} holds no token")))
    }

    /// One request without authorisation logic.
    fn raw(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: CallBody<'_>,
        authorization: Option<String>,
    ) -> Result<Response<Body>, RegistryError> {
        let mut req = http::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(a) = authorization {
            req = req.header("Authorization", a);
        }
        let build_err = |e: http::Error| self.protocol(format!("building {method} {url}: {e}"));
        let result = match body {
            CallBody::Empty => {
                if matches!(method, "PUT" | "POST" | "PATCH") {
                    req = req.header("Content-Length", "0");
                }
                self.agent
                    .run(req.body(SendBody::none()).map_err(build_err)?)
            }
            CallBody::Bytes(b) => self.agent.run(req.body(b).map_err(build_err)?),
            CallBody::Reader(r, len) => {
                req = req.header("Content-Length", len.to_string());
                self.agent
                    .run(req.body(SendBody::from_reader(r)).map_err(build_err)?)
            }
            // No Content-Length: ureq sends `Transfer-Encoding: chunked`.
            CallBody::Stream(r) => self
                .agent
                .run(req.body(SendBody::from_reader(r)).map_err(build_err)?),
        };
        result.map_err(|e| self.transport_error(method, url, &self.endpoint.host, e))
    }

    pub(crate) fn transport_error(
        &self,
        method: &str,
        url: &str,
        host: &str,
        e: ureq::Error,
    ) -> RegistryError {
        let unreachable = match &e {
            ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => true,
            ureq::Error::Timeout(t) => matches!(t, ureq::Timeout::Connect | ureq::Timeout::Resolve),
            ureq::Error::Io(io) => matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::HostUnreachable
                    | std::io::ErrorKind::NetworkUnreachable
                    | std::io::ErrorKind::AddrNotAvailable
            ),
            _ => false,
        };
        if unreachable {
            return RegistryError::Unreachable {
                endpoint: host.to_string(),
                source: Box::new(e),
            };
        }
        // rustls reports handshake failures (an unknown issuer, a name
        // mismatch) through the socket as InvalidData I/O errors.
        let tls = match &e {
            ureq::Error::Rustls(_) | ureq::Error::Tls(_) => true,
            ureq::Error::Io(io) => {
                url.starts_with("https://") && io.kind() == std::io::ErrorKind::InvalidData
            }
            _ => false,
        };
        if tls {
            return RegistryError::Tls {
                endpoint: host.to_string(),
                certs_dir: self.config.certs_dir(host),
                config: self.config.config_path.clone(),
                source: Box::new(e),
            };
        }
        RegistryError::Transport {
            method: method.to_string(),
            url: url.to_string(),
            source: Box::new(e),
        }
    }

    pub(crate) fn protocol(&self, reason: String) -> RegistryError {
        RegistryError::Protocol {
            endpoint: self.endpoint.host.clone(),
            reason,
        }
    }

    /// Turns an error status into an error, reading the registry's
    /// `{"errors":[{"code","message"}]}` body. `reference` names what a
    /// `MANIFEST_UNKNOWN` was about.
    pub(crate) fn status_error(
        &self,
        method: &str,
        url: &str,
        mut resp: Response<Body>,
        reference: Option<&str>,
    ) -> RegistryError {
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(64 << 10)
            .read_to_vec()
            .unwrap_or_default();
        #[derive(serde::Deserialize)]
        struct Errors {
            #[serde(default)]
            errors: Vec<ErrorEntry>,
        }
        #[derive(serde::Deserialize)]
        struct ErrorEntry {
            #[serde(default)]
            code: String,
            #[serde(default)]
            message: String,
        }
        let parsed = serde_json::from_slice::<Errors>(&body).ok();
        let first = parsed.as_ref().and_then(|p| p.errors.first());
        let code = first.map_or("", |e| e.code.as_str());
        let message = first
            .map(|e| e.message.clone())
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| {
                String::from_utf8_lossy(&body[..body.len().min(200)])
                    .trim()
                    .to_string()
            });
        let what = reference.unwrap_or(url).to_string();
        match (status, code) {
            (_, "MANIFEST_UNKNOWN") => RegistryError::ManifestUnknown {
                reference: what,
                detail: message,
            },
            (_, "NAME_UNKNOWN") => RegistryError::NameUnknown {
                repository: what,
                detail: message,
            },
            (404, _) if reference.is_some() => RegistryError::ManifestUnknown {
                reference: what,
                detail: if message.is_empty() {
                    "not found".into()
                } else {
                    message
                },
            },
            (401 | 403, _) => RegistryError::Unauthorized {
                detail: format!(
                    "{method} {what}: {}",
                    if message.is_empty() {
                        "access denied"
                    } else {
                        &message
                    }
                ),
                hint: if self.credentials.is_some() {
                    format!("the stored login for {} is not allowed this", self.registry)
                } else {
                    format!("log in with `berth login {}`", self.registry)
                },
            },
            _ => RegistryError::Status {
                method: method.to_string(),
                url: url.to_string(),
                status,
                detail: if message.is_empty() {
                    resp.status().canonical_reason().unwrap_or("").to_string()
                } else {
                    message
                },
            },
        }
    }
}

pub(crate) fn header(resp: &Response<Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(crate) fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}
