//! `berth-registry`: the built-in registry server in the foreground,
//! logging a line per request to stderr, until SIGINT/SIGTERM.
//!
//! A program of its own, exec'd by `berth registry serve`, so that the
//! async runtime, the HTTP server and its TLS stack are not part of the
//! `berth` binary every container command runs (its start-up time and
//! resident set).

use std::error::Error;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// Docker's exit status for errors of the tool itself.
const EXIT_BERTH: u8 = 125;

/// Serve the OCI distribution API (what docker, podman and skopeo push to and pull from)
#[derive(Debug, Parser)]
#[command(name = "berth-registry", version)]
struct Args {
    /// Address to listen on
    #[arg(long, default_value = "0.0.0.0:5000", value_name = "HOST:PORT")]
    addr: String,
    /// Directory of the registry's storage
    #[arg(long, value_name = "DIR")]
    root: PathBuf,
    /// Require basic authentication against this htpasswd file (bcrypt entries, as `htpasswd -B` makes)
    #[arg(long, value_name = "FILE")]
    htpasswd: Option<PathBuf>,
    /// Serve HTTPS with this PEM certificate (chain)
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match serve(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("Error: {message}");
            ExitCode::from(EXIT_BERTH)
        }
    }
}

fn resolve(addr: &str) -> Result<SocketAddr, String> {
    addr.to_socket_addrs()
        .map_err(|e| format!("invalid --addr {addr}: {e}"))?
        .next()
        .ok_or_else(|| format!("invalid --addr {addr}: it resolves to no address"))
}

/// The error and its causes on one line.
fn error_chain(e: &dyn Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cause = c.source();
    }
    s
}

fn serve(args: Args) -> Result<(), String> {
    let addr = resolve(&args.addr)?;
    let tls = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => Some(berth_registry::TlsFiles { cert, key }),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let root = args.root;
    let config = berth_registry::RegistryConfig {
        root: root.clone(),
        htpasswd: args.htpasswd,
        tls,
        log_requests: true,
    };
    berth_registry::serve_until_signal(addr, config, |bound| {
        eprintln!(
            "berth registry listening on {scheme}://{bound} (storage {})",
            root.display()
        );
    })
    .map_err(|e| error_chain(&e))?;
    eprintln!("berth registry stopped");
    Ok(())
}
