//! `berth-dns --config-dir DIR [--foreground]`: the name server of berth's
//! user networks (see the `berth_dns` crate). Started by the engine through
//! `berth_dns::control::reload_or_start`.

use std::path::PathBuf;

use anyhow::{bail, Context};

fn main() {
    if let Err(e) = run() {
        eprintln!("berth-dns: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> anyhow::Result<()> {
    let mut dir: Option<PathBuf> = None;
    let mut foreground = false;
    let mut port = berth_dns::config::DNS_PORT;
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("--config-dir") => {
                dir = Some(
                    args.next()
                        .context("--config-dir needs a directory")?
                        .into(),
                )
            }
            Some("--foreground") => foreground = true,
            Some("--port") => {
                let value = args.next().context("--port needs a number")?;
                port = value
                    .to_str()
                    .and_then(|v| v.parse().ok())
                    .with_context(|| format!("invalid --port {value:?}"))?;
            }
            Some("--help" | "-h") => {
                println!("usage: berth-dns --config-dir DIR [--foreground] [--port PORT]");
                return Ok(());
            }
            _ => {
                bail!("unknown argument {arg:?}; usage: berth-dns --config-dir DIR [--foreground]")
            }
        }
    }
    let dir = dir.context("missing --config-dir DIR")?;
    let mut options = berth_dns::server::Options::new(dir);
    options.foreground = foreground;
    options.port = port;
    berth_dns::server::run(options)?;
    Ok(())
}
