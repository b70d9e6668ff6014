//! Blobs over the distribution API: a verifying download stream that
//! resumes with `Range` after a dropped connection, existence checks,
//! cross-repository mounts and uploads (monolithic and chunked).

use std::io::{self, Read};
use std::time::Duration;

use crate::digest::{Digest, Hasher};

use super::error::RegistryError;
use super::manifest::{pull_scope, push_scope};
use super::transport::{header, CallBody, RegistryClient};

/// Attempts per request or per resumed stretch of a download.
const ATTEMPTS: u32 = 5;

/// The pause before attempt `n` (1-based): 0.25 s, 0.5 s, 1 s, 2 s, …
pub(crate) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(250u64 << attempt.saturating_sub(1).min(5))
}

/// Bytes read so far, reported as they arrive.
pub type ProgressFn<'a> = Box<dyn FnMut(u64) + Send + 'a>;

/// A blob download: reads the blob once, whatever happens to connections
/// on the way. After a read error or an early end it asks again for the
/// rest (`Range: bytes=N-`; a server that ignores ranges has its first N
/// bytes skipped). At the end the bytes must hash to the digest, or the
/// read fails (`InvalidData`, the [`RegistryError::DigestMismatch`] inside).
pub struct BlobReader<'c> {
    client: &'c RegistryClient,
    repository: String,
    digest: Digest,
    size: u64,
    offset: u64,
    body: Option<ureq::BodyReader<'static>>,
    hasher: Hasher,
    progress: Option<ProgressFn<'c>>,
    /// Resumes left for this download.
    resumes_left: u32,
    done: bool,
}

impl RegistryClient {
    /// Starts downloading blob `digest` of `size` bytes from `repository`.
    /// The first request is made here, so an unknown blob or a refused
    /// connection is reported before anything is read.
    pub fn open_blob<'c>(
        &'c self,
        repository: &str,
        digest: &Digest,
        size: u64,
        progress: Option<ProgressFn<'c>>,
    ) -> Result<BlobReader<'c>, RegistryError> {
        let mut r = BlobReader {
            client: self,
            repository: repository.to_string(),
            digest: *digest,
            size,
            offset: 0,
            body: None,
            hasher: Hasher::new(),
            progress,
            resumes_left: 10,
            done: false,
        };
        r.connect()?;
        Ok(r)
    }

    /// A whole small blob (a config), verified.
    pub fn get_blob_bytes(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
    ) -> Result<Vec<u8>, RegistryError> {
        if size > 64 << 20 {
            return Err(self.protocol(format!(
                "blob {digest} of {repository} is {size} bytes, too large to hold in memory"
            )));
        }
        let mut r = self.open_blob(repository, digest, size, None)?;
        let mut out = Vec::with_capacity(size as usize);
        r.read_to_end(&mut out)
            .map_err(|e| unwrap_io(e, repository, digest))?;
        Ok(out)
    }

    /// Whether `repository` has blob `digest` (`HEAD`).
    pub fn blob_exists(&self, repository: &str, digest: &Digest) -> Result<bool, RegistryError> {
        let url = self.url(&format!("/v2/{repository}/blobs/{digest}"));
        let resp = self.with_retries(|| {
            let resp = self.send(
                "HEAD",
                &url,
                &[],
                CallBody::Empty,
                &[push_scope(repository)],
            )?;
            match resp.status().as_u16() {
                200..=299 => Ok(true),
                404 => Ok(false),
                _ => Err(self.status_error("HEAD", &url, resp, None)),
            }
        })?;
        Ok(resp)
    }

    /// Asks the registry to link blob `digest` from repository `from` into
    /// `repository` without uploading it. Returns whether it did; when it
    /// did not, the upload session it opened instead is cancelled.
    pub fn mount_blob(
        &self,
        repository: &str,
        digest: &Digest,
        from: &str,
    ) -> Result<bool, RegistryError> {
        let url = self.url(&format!(
            "/v2/{repository}/blobs/uploads/?mount={digest}&from={from}"
        ));
        let scopes = [push_scope(repository), pull_scope(from)];
        let resp = self.with_retries(|| self.send("POST", &url, &[], CallBody::Empty, &scopes))?;
        match resp.status().as_u16() {
            201 => Ok(true),
            202 => {
                if let Some(loc) = header(&resp, "location") {
                    let cancel = self.absolute(&loc);
                    let _ = self.send("DELETE", &cancel, &[], CallBody::Empty, &scopes);
                }
                Ok(false)
            }
            // Registries without mount support, or a source we may not read.
            401 | 403 | 404 | 405 => Ok(false),
            _ => Err(self.status_error("POST", &url, resp, None)),
        }
    }

    /// Uploads blob `digest` (`size` bytes) to `repository`. `open` yields
    /// the content from its start (called again when an attempt fails);
    /// blobs up to `chunk_size` go in one `PUT`, larger ones in `PATCH`
    /// chunks of `chunk_size` and a closing `PUT`. `progress` gets byte
    /// counts as they are sent.
    pub fn upload_blob<'r>(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        open: &mut dyn FnMut() -> Result<Box<dyn Read + 'r>, RegistryError>,
        chunk_size: u64,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), RegistryError> {
        let chunk_size = chunk_size.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = (|| {
                let mut reader = open()?;
                self.upload_once(repository, digest, size, &mut reader, chunk_size, progress)
            })();
            match result {
                Err(e) if e.is_transient() && attempt < ATTEMPTS => {
                    tracing::debug!("upload of {digest} to {repository} failed, retrying: {e}");
                    std::thread::sleep(backoff(attempt));
                }
                other => return other,
            }
        }
    }

    fn upload_once(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        reader: &mut dyn Read,
        chunk_size: u64,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), RegistryError> {
        let scopes = [push_scope(repository)];
        let start_url = self.url(&format!("/v2/{repository}/blobs/uploads/"));
        let resp = self.send("POST", &start_url, &[], CallBody::Empty, &scopes)?;
        if resp.status().as_u16() != 202 {
            return Err(self.status_error("POST", &start_url, resp, None));
        }
        let mut location = self.location(&resp, &start_url)?;
        let mut counted = CountingReader {
            inner: reader,
            progress,
        };
        let octet = ("Content-Type", "application/octet-stream");
        if size <= chunk_size {
            let url = with_query(&location, &format!("digest={digest}"));
            let resp = self.send(
                "PUT",
                &url,
                &[octet],
                CallBody::Reader(&mut counted, size),
                &scopes,
            )?;
            return self.expect_created(resp, "PUT", &url, digest);
        }
        let mut sent = 0u64;
        while sent < size {
            let len = chunk_size.min(size - sent);
            let range = format!("{}-{}", sent, sent + len - 1);
            let mut chunk = (&mut counted).take(len);
            let resp = self.send(
                "PATCH",
                &location,
                &[octet, ("Content-Range", &range)],
                CallBody::Reader(&mut chunk, len),
                &scopes,
            )?;
            if resp.status().as_u16() != 202 {
                return Err(self.status_error("PATCH", &location, resp, None));
            }
            location = self.location(&resp, &location)?;
            sent += len;
        }
        let url = with_query(&location, &format!("digest={digest}"));
        let resp = self.send("PUT", &url, &[], CallBody::Empty, &scopes)?;
        self.expect_created(resp, "PUT", &url, digest)
    }

    /// Uploads a blob whose digest and size are known only once it has
    /// been read (a layer compressed on the way): one streamed `PATCH`
    /// (chunked transfer encoding), then `PUT ?digest=` with the digest of
    /// the bytes sent. `open` yields the content from its start (called
    /// again when an attempt fails). Returns the blob's digest and size.
    pub fn upload_blob_streamed<'r>(
        &self,
        repository: &str,
        open: &mut dyn FnMut() -> Result<Box<dyn Read + 'r>, RegistryError>,
    ) -> Result<(Digest, u64), RegistryError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = (|| {
                let mut reader = open()?;
                self.upload_streamed_once(repository, &mut reader)
            })();
            match result {
                Err(e) if e.is_transient() && attempt < ATTEMPTS => {
                    tracing::debug!("streamed upload to {repository} failed, retrying: {e}");
                    std::thread::sleep(backoff(attempt));
                }
                other => return other,
            }
        }
    }

    fn upload_streamed_once(
        &self,
        repository: &str,
        reader: &mut dyn Read,
    ) -> Result<(Digest, u64), RegistryError> {
        let scopes = [push_scope(repository)];
        let start_url = self.url(&format!("/v2/{repository}/blobs/uploads/"));
        let resp = self.send("POST", &start_url, &[], CallBody::Empty, &scopes)?;
        if resp.status().as_u16() != 202 {
            return Err(self.status_error("POST", &start_url, resp, None));
        }
        let location = self.location(&resp, &start_url)?;
        let mut hashing = HashingReader {
            inner: reader,
            hasher: Hasher::new(),
        };
        let octet = ("Content-Type", "application/octet-stream");
        let resp = self.send(
            "PATCH",
            &location,
            &[octet],
            CallBody::Stream(&mut hashing),
            &scopes,
        )?;
        if resp.status().as_u16() != 202 {
            return Err(self.status_error("PATCH", &location, resp, None));
        }
        let location = self.location(&resp, &location)?;
        let size = hashing.hasher.len();
        let digest = hashing.hasher.finish();
        let url = with_query(&location, &format!("digest={digest}"));
        let resp = self.send("PUT", &url, &[], CallBody::Empty, &scopes)?;
        self.expect_created(resp, "PUT", &url, &digest)?;
        Ok((digest, size))
    }

    fn expect_created(
        &self,
        resp: ureq::http::Response<ureq::Body>,
        method: &str,
        url: &str,
        digest: &Digest,
    ) -> Result<(), RegistryError> {
        if resp.status().as_u16() != 201 {
            return Err(self.status_error(method, url, resp, None));
        }
        if let Some(served) =
            header(&resp, "docker-content-digest").and_then(|h| h.parse::<Digest>().ok())
        {
            if served != *digest {
                return Err(RegistryError::DigestMismatch {
                    what: format!("uploaded blob {digest}"),
                    expected: *digest,
                    actual: served,
                });
            }
        }
        Ok(())
    }

    fn location(
        &self,
        resp: &ureq::http::Response<ureq::Body>,
        url: &str,
    ) -> Result<String, RegistryError> {
        header(resp, "location")
            .map(|l| self.absolute(&l))
            .ok_or_else(|| self.protocol(format!("{url}: upload answer has no Location header")))
    }

    /// A `Location` made absolute against the endpoint.
    fn absolute(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else {
            self.url(location)
        }
    }

    /// Runs `f` again after transient failures, with backoff.
    pub(crate) fn with_retries<T>(
        &self,
        mut f: impl FnMut() -> Result<T, RegistryError>,
    ) -> Result<T, RegistryError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match f() {
                Err(e) if e.is_transient() && attempt < ATTEMPTS => {
                    tracing::debug!("registry request failed, retrying: {e}");
                    std::thread::sleep(backoff(attempt));
                }
                other => return other,
            }
        }
    }
}

fn with_query(url: &str, query: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{query}")
}

/// The [`RegistryError`] inside an I/O error from a [`BlobReader`], or a
/// [`RegistryError::BlobRead`] around it.
pub fn unwrap_io(e: io::Error, repository: &str, digest: &Digest) -> RegistryError {
    if e.get_ref().is_some_and(|i| i.is::<RegistryError>()) {
        if let Some(inner) = e.into_inner() {
            if let Ok(r) = inner.downcast::<RegistryError>() {
                return *r;
            }
        }
        return RegistryError::BlobRead {
            repository: repository.to_string(),
            digest: *digest,
            source: io::Error::other("unreadable error"),
        };
    }
    RegistryError::BlobRead {
        repository: repository.to_string(),
        digest: *digest,
        source: e,
    }
}

/// Hashes what passes through it (what a streamed upload sent).
struct HashingReader<'a> {
    inner: &'a mut dyn Read,
    hasher: Hasher,
}

impl Read for HashingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

struct CountingReader<'a, 'p> {
    inner: &'a mut dyn Read,
    progress: &'p mut dyn FnMut(u64),
}

impl Read for CountingReader<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.progress)(n as u64);
        Ok(n)
    }
}

impl BlobReader<'_> {
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// Bytes received and verified so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// (Re)opens the stream at `self.offset`, retrying transient failures.
    fn connect(&mut self) -> Result<(), RegistryError> {
        let client = self.client;
        let url = client.url(&format!("/v2/{}/blobs/{}", self.repository, self.digest));
        let range = format!("bytes={}-", self.offset);
        let offset = self.offset;
        let repository = self.repository.clone();
        let body = client.with_retries(|| {
            let headers: Vec<(&str, &str)> = if offset > 0 {
                vec![("Range", range.as_str())]
            } else {
                Vec::new()
            };
            let resp = client.send(
                "GET",
                &url,
                &headers,
                CallBody::Empty,
                &[pull_scope(&repository)],
            )?;
            let status = resp.status().as_u16();
            match status {
                200 | 206 => {}
                404 => {
                    return Err(RegistryError::Status {
                        method: "GET".into(),
                        url: url.clone(),
                        status,
                        detail: format!("blob unknown to repository {repository}"),
                    })
                }
                _ => return Err(client.status_error("GET", &url, resp, None)),
            }
            let partial = status == 206;
            if partial {
                let start = header(&resp, "content-range").and_then(|r| {
                    r.strip_prefix("bytes ")
                        .and_then(|r| r.split('-').next())
                        .and_then(|s| s.trim().parse::<u64>().ok())
                });
                if start != Some(offset) {
                    return Err(client.protocol(format!(
                        "GET {url}: asked for bytes from {offset}, got Content-Range {start:?}"
                    )));
                }
            }
            Ok((resp.into_body().into_reader(), partial))
        })?;
        let (mut reader, partial) = body;
        if offset > 0 && !partial {
            // The server sent the whole blob again: skip what we have.
            let skipped =
                io::copy(&mut (&mut reader).take(offset), &mut io::sink()).map_err(|e| {
                    RegistryError::BlobRead {
                        repository: self.repository.clone(),
                        digest: self.digest,
                        source: e,
                    }
                })?;
            if skipped != offset {
                return Err(RegistryError::BlobRead {
                    repository: self.repository.clone(),
                    digest: self.digest,
                    source: io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "blob is shorter on the second request",
                    ),
                });
            }
        }
        self.body = Some(reader);
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.done = true;
        self.body = None;
        let actual = std::mem::take(&mut self.hasher).finish();
        if actual != self.digest {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                RegistryError::DigestMismatch {
                    what: format!("blob from {}", self.repository),
                    expected: self.digest,
                    actual,
                },
            ));
        }
        Ok(())
    }

    /// A read failed or ended early: reconnect at the current offset.
    fn resume(&mut self, why: io::Error) -> io::Result<()> {
        self.body = None;
        if self.resumes_left == 0 {
            return Err(why);
        }
        self.resumes_left -= 1;
        tracing::info!(
            "blob {} of {}: connection lost at byte {} ({why}), resuming",
            self.digest,
            self.repository,
            self.offset
        );
        std::thread::sleep(backoff(10 - self.resumes_left));
        self.connect().map_err(io::Error::other)
    }
}

impl Read for BlobReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.done || buf.is_empty() {
                return Ok(0);
            }
            let Some(body) = self.body.as_mut() else {
                self.connect().map_err(io::Error::other)?;
                continue;
            };
            match body.read(buf) {
                Ok(0) if self.offset >= self.size => {
                    self.finish()?;
                    return Ok(0);
                }
                Ok(0) => {
                    let why = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "connection closed after {} of {} bytes",
                            self.offset, self.size
                        ),
                    );
                    self.resume(why)?;
                }
                Ok(n) => {
                    if self.offset + n as u64 > self.size {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            RegistryError::Protocol {
                                endpoint: self.client.endpoint.host.clone(),
                                reason: format!(
                                    "blob {} is longer than its descriptor's {} bytes",
                                    self.digest, self.size
                                ),
                            },
                        ));
                    }
                    self.hasher.update(&buf[..n]);
                    self.offset += n as u64;
                    if let Some(p) = &mut self.progress {
                        p(n as u64);
                    }
                    if self.offset == self.size {
                        // Verify now: consumers that stop at the tar's end
                        // marker never read the final 0.
                        let mut probe = [0u8; 1];
                        match self.body.as_mut().map(|b| b.read(&mut probe)) {
                            Some(Ok(0)) | None => self.finish()?,
                            Some(Ok(_)) => {
                                return Err(io::Error::new(
                                    io::ErrorKind::InvalidData,
                                    RegistryError::Protocol {
                                        endpoint: self.client.endpoint.host.clone(),
                                        reason: format!(
                                            "blob {} is longer than its descriptor's {} bytes",
                                            self.digest, self.size
                                        ),
                                    },
                                ))
                            }
                            // The connection died right after the last
                            // byte: everything arrived.
                            Some(Err(_)) => self.finish()?,
                        }
                    }
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => self.resume(e)?,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::registry::config::RegistryConfig;

    /// How the fake registry serves the blob.
    #[derive(Clone, Copy)]
    enum Mode {
        /// The first GET is cut after this many bytes; ranges are honoured.
        CutOnce(usize),
        /// Like `CutOnce`, but ranges are ignored (the whole blob again).
        CutOnceNoRanges(usize),
        /// Serves these bytes instead of the blob's.
        Wrong,
    }

    /// A one-blob registry on 127.0.0.1; returns its `host:port` and the
    /// number of blob GETs it answered.
    fn serve(blob: Vec<u8>, mode: Mode) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let gets = Arc::new(AtomicUsize::new(0));
        let counter = gets.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let blob = blob.clone();
                let counter = counter.clone();
                std::thread::spawn(move || handle(conn, &blob, mode, &counter));
            }
        });
        (host, gets)
    }

    fn handle(mut conn: TcpStream, blob: &[u8], mode: Mode, gets: &AtomicUsize) {
        // The client tries HTTPS first on a loopback registry: refuse TLS.
        let mut first = [0u8; 1];
        if conn.peek(&mut first).unwrap_or(0) == 0 || first[0] == 0x16 {
            return;
        }
        let mut reader = BufReader::new(conn.try_clone().unwrap());
        loop {
            let mut request = String::new();
            if reader.read_line(&mut request).unwrap_or(0) == 0 {
                return;
            }
            let mut range = None;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
                    range = v.trim().trim_end_matches('-').parse::<usize>().ok();
                }
            }
            let path = request
                .split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .to_string();
            if path == "/v2/" {
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
                continue;
            }
            let n = gets.fetch_add(1, Ordering::SeqCst);
            let body: Vec<u8> = match mode {
                Mode::Wrong => blob.iter().map(|b| b ^ 1).collect(),
                _ => blob.to_vec(),
            };
            let honour = matches!(mode, Mode::CutOnce(_));
            let (status, start) = match range {
                Some(s) if honour => ("206 Partial Content", s),
                _ => ("200 OK", 0),
            };
            let mut head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\n",
                body.len() - start
            );
            if start > 0 {
                head.push_str(&format!(
                    "Content-Range: bytes {start}-{}/{}\r\n",
                    body.len() - 1,
                    body.len()
                ));
            }
            head.push_str("\r\n");
            let _ = conn.write_all(head.as_bytes());
            let cut = match mode {
                Mode::CutOnce(c) | Mode::CutOnceNoRanges(c) if n == 0 => Some(c),
                _ => None,
            };
            match cut {
                Some(c) => {
                    let _ = conn.write_all(&body[start..c]);
                    let _ = conn.shutdown(std::net::Shutdown::Both);
                    return;
                }
                None => {
                    let _ = conn.write_all(&body[start..]);
                }
            }
        }
    }

    fn blob() -> Vec<u8> {
        (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect()
    }

    fn client(host: &str) -> RegistryClient {
        RegistryClient::connect(host, &RegistryConfig::default(), None).unwrap()
    }

    #[test]
    fn resumes_with_range_after_a_cut() {
        let data = blob();
        let digest = Digest::of_bytes(&data);
        let (host, gets) = serve(data.clone(), Mode::CutOnce(100_000));
        let c = client(&host);
        let mut seen = 0u64;
        let mut r = c
            .open_blob(
                "r",
                &digest,
                data.len() as u64,
                Some(Box::new(|n| seen += n)),
            )
            .unwrap();
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        drop(r);
        assert_eq!(out, data);
        assert_eq!(seen, data.len() as u64);
        assert_eq!(gets.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn resumes_when_the_server_ignores_ranges() {
        let data = blob();
        let digest = Digest::of_bytes(&data);
        let (host, _) = serve(data.clone(), Mode::CutOnceNoRanges(123_457));
        let c = client(&host);
        let out = c.get_blob_bytes("r", &digest, data.len() as u64).unwrap();
        assert_eq!(out, data);
    }

    #[test]
    fn a_wrong_blob_is_a_digest_mismatch() {
        let data = blob();
        let digest = Digest::of_bytes(&data);
        let (host, _) = serve(data.clone(), Mode::Wrong);
        let c = client(&host);
        let err = c
            .get_blob_bytes("r", &digest, data.len() as u64)
            .unwrap_err();
        assert!(
            matches!(err, RegistryError::DigestMismatch { expected, .. } if expected == digest),
            "{err}"
        );
    }
}
