//! The listening server: plain HTTP or TLS, one task per connection, a
//! log line per request, graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::error::RegistryError;
use crate::http::auth::Htpasswd;
use crate::http::{self, State};
use crate::storage::{Storage, UploadSessions};

/// How long connections still busy at shutdown may take to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// What `berth registry serve` is started with.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// The store's directory.
    pub root: PathBuf,
    /// Basic authentication against this htpasswd file (bcrypt or `{SHA}` entries).
    pub htpasswd: Option<PathBuf>,
    /// Serve HTTPS with this certificate chain and key (PEM).
    pub tls: Option<TlsFiles>,
    /// Write one line per request to stderr.
    pub log_requests: bool,
}

#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A bound, not yet serving, registry.
pub struct Server {
    listener: TcpListener,
    state: Arc<State>,
    tls: Option<TlsAcceptor>,
    log_requests: bool,
}

impl Server {
    /// Checks the configuration (certificate, key, htpasswd, store) and
    /// binds `addr`; nothing is served before [`Server::run`].
    pub async fn bind(addr: SocketAddr, config: RegistryConfig) -> Result<Self, RegistryError> {
        let tls = config.tls.as_ref().map(load_tls).transpose()?;
        let htpasswd = config.htpasswd.as_deref().map(Htpasswd::load).transpose()?;
        let storage = Storage::open(&config.root)?;
        let listener = TcpListener::bind(addr).await.map_err(|source| {
            if source.kind() == std::io::ErrorKind::AddrInUse {
                RegistryError::AddressInUse { addr }
            } else {
                RegistryError::Bind { addr, source }
            }
        })?;
        Ok(Self {
            listener,
            state: Arc::new(State {
                storage,
                uploads: UploadSessions::default(),
                htpasswd,
            }),
            tls,
            log_requests: config.log_requests,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Serves until `shutdown` completes, then lets requests in flight
    /// finish (for up to ten seconds).
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let graceful = GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            let (stream, remote) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(a) => a,
                    // Out of file descriptors and the like: wait rather than spin.
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let state = self.state.clone();
            let log = self.log_requests;
            let service = service_fn(move |req| {
                let state = state.clone();
                async move {
                    Ok::<_, std::convert::Infallible>(serve_one(state, req, remote, log).await)
                }
            });
            let builder = http1::Builder::new();
            match &self.tls {
                None => {
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        let _ = conn.await;
                    });
                }
                Some(acceptor) => {
                    let acceptor = acceptor.clone();
                    let watcher = graceful.watcher();
                    tokio::spawn(async move {
                        let Ok(tls) = acceptor.accept(stream).await else {
                            return;
                        };
                        let conn = builder.serve_connection(TokioIo::new(tls), service);
                        let _ = watcher.watch(conn).await;
                    });
                }
            }
        }
        drop(self.listener);
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
    }
}

async fn serve_one(
    state: Arc<State>,
    req: hyper::Request<hyper::body::Incoming>,
    remote: SocketAddr,
    log: bool,
) -> hyper::Response<http::body::RespBody> {
    let started = Instant::now();
    let line = log.then(|| format!("{} {} {:?}", req.method(), req.uri(), req.version()));
    let (resp, user) = http::handle(state, req).await;
    if let Some(line) = line {
        let len = resp
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        // Common Log Format, with the time taken appended.
        eprintln!(
            "{} - {} [{}] \"{}\" {} {} {:.3}s",
            remote.ip(),
            user.as_deref().unwrap_or("-"),
            chrono::Utc::now().format("%d/%b/%Y:%H:%M:%S %z"),
            line,
            resp.status().as_u16(),
            len,
            started.elapsed().as_secs_f64()
        );
    }
    resp
}

fn load_tls(files: &TlsFiles) -> Result<TlsAcceptor, RegistryError> {
    let cert_err = |path: &Path, reason: String| RegistryError::Certificate {
        path: path.to_path_buf(),
        reason,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| cert_err(&files.cert, pem_reason(e)))?
        .collect::<Result<_, _>>()
        .map_err(|e| cert_err(&files.cert, pem_reason(e)))?;
    if certs.is_empty() {
        return Err(cert_err(
            &files.cert,
            "no PEM certificate in the file".to_string(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| RegistryError::Key {
        path: files.key.clone(),
        reason: pem_reason(e),
    })?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = tokio_rustls::rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| RegistryError::TlsConfig {
            reason: e.to_string(),
        })?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| RegistryError::TlsConfig {
            reason: e.to_string(),
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn pem_reason(e: tokio_rustls::rustls::pki_types::pem::Error) -> String {
    use tokio_rustls::rustls::pki_types::pem::Error;
    match e {
        Error::Io(io) => io.to_string(),
        Error::NoItemsFound => "no PEM item of the expected kind in the file".to_string(),
        other => format!("not valid PEM: {other:?}"),
    }
}

/// Runs a registry on its own runtime until SIGINT or SIGTERM; `ready` is
/// called with the bound address before the first request is served.
pub fn serve_until_signal(
    addr: SocketAddr,
    config: RegistryConfig,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), RegistryError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(RegistryError::Runtime)?;
    rt.block_on(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).map_err(RegistryError::Runtime)?;
        let mut int = signal(SignalKind::interrupt()).map_err(RegistryError::Runtime)?;
        let server = Server::bind(addr, config).await?;
        ready(server.local_addr());
        server
            .run(async move {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            })
            .await;
        Ok(())
    })
}

/// A registry serving on a thread of its own, stopped when dropped (for
/// tests and embedding).
pub struct BackgroundServer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BackgroundServer {
    pub fn start(addr: SocketAddr, config: RegistryConfig) -> Result<Self, RegistryError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(RegistryError::Runtime)?;
        let server = rt.block_on(Server::bind(addr, config))?;
        let addr = server.local_addr();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            rt.block_on(server.run(async move {
                let _ = stopped.await;
            }));
        });
        Ok(Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for BackgroundServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
