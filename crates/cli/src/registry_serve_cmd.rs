//! `berth registry serve`: the built-in registry (crates/registry, its
//! `berth-registry` program) in the foreground, logging a line per request
//! to stderr, until SIGINT/SIGTERM.

use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory};

use crate::output::CliError;

/// Docker's exit status for errors of the tool itself.
const EXIT_BERTH: u8 = 125;

#[derive(Debug, Args)]
#[command(
    after_help = "The registry's storage is the global --root when given on the command line, \
                        else <BERTH_ROOT>/registry."
)]
pub struct ServeArgs {
    /// Address to listen on
    #[arg(long, default_value = "0.0.0.0:5000", value_name = "HOST:PORT")]
    pub addr: String,
    /// Require basic authentication against this htpasswd file (bcrypt entries, as `htpasswd -B` makes)
    #[arg(long, value_name = "FILE")]
    pub htpasswd: Option<PathBuf>,
    /// Serve HTTPS with this PEM certificate (chain)
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// Whether `--root` was given on the command line: `--root` is berth's
/// global flag, and `registry serve --root DIR` means the registry's own
/// storage, while a root from BERTH_ROOT or the default gets `registry/`
/// below it.
fn root_given() -> bool {
    let Ok(m) = crate::args::Cli::command().try_get_matches() else {
        return false;
    };
    let serve = m
        .subcommand_matches("registry")
        .and_then(|r| r.subcommand_matches("serve"));
    let given = |m: &clap::ArgMatches| {
        m.value_source("root") == Some(clap::parser::ValueSource::CommandLine)
    };
    given(&m) || serve.is_some_and(given)
}

fn fail(message: String) -> anyhow::Error {
    CliError {
        message: format!("Error: {message}"),
        code: EXIT_BERTH,
    }
    .into()
}

/// Replaces this process with `berth-registry` (crates/registry), which
/// holds the server: the CLI itself carries no async runtime or HTTP
/// server.
pub fn serve(berth_root: &Path, args: ServeArgs) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    let root = if root_given() {
        berth_root.to_path_buf()
    } else {
        berth_root.join("registry")
    };
    let program = berth_engine::containers::find_binary("BERTH_REGISTRY", "berth-registry")
        .map_err(|e| fail(e.to_string()))?;
    let mut cmd = std::process::Command::new(&program);
    cmd.arg("--addr").arg(&args.addr).arg("--root").arg(&root);
    if let Some(h) = &args.htpasswd {
        cmd.arg("--htpasswd").arg(h);
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        cmd.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key);
    }
    let e = cmd.exec();
    Err(fail(format!("cannot run {}: {e}", program.display())))
}
