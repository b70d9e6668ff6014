//! Flag vectors → create requests and Docker's error texts: shared helpers
//! here, one module per flag family.

mod docker_reference;
mod docker_request;
mod network;
mod process;
mod resources;
mod security;
mod storage;

use std::collections::BTreeMap;

use berth_engine::containers::model::{
    CreateRequest, DeviceMapping, Empty, HealthConfig, MountSpec, PortBinding, RestartPolicy,
    ThrottleDevice, TmpfsOptions, Ulimit, VolumeDriverConfig, VolumeOptions, WeightDevice,
};
use clap::Parser;

use super::*;

#[derive(Debug, Parser)]
#[command(name = "berth")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    Run(RunArgs),
    Create(CreateArgs),
}

fn parse_run(args: &[&str]) -> RunArgs {
    let argv = ["berth", "run"].iter().chain(args);
    match Cli::try_parse_from(argv) {
        Ok(Cli {
            command: Command::Run(run),
        }) => run,
        Ok(other) => panic!("parsed as {other:?}"),
        Err(e) => panic!("clap rejected {args:?}: {e}"),
    }
}

fn parse_create(args: &[&str]) -> CreateArgs {
    let argv = ["berth", "create"].iter().chain(args);
    match Cli::try_parse_from(argv) {
        Ok(Cli {
            command: Command::Create(create),
        }) => create,
        Ok(other) => panic!("parsed as {other:?}"),
        Err(e) => panic!("clap rejected {args:?}: {e}"),
    }
}

/// `berth run FLAGS… busybox` → the request.
fn run(flags: &[&str]) -> CreateRequest {
    let mut args = flags.to_vec();
    args.push("busybox");
    match parse_run(&args).to_request() {
        Ok(r) => r,
        Err(e) => panic!("{flags:?} failed: {e}"),
    }
}

/// `berth run FLAGS… busybox` → the error text.
fn run_err(flags: &[&str]) -> String {
    let mut args = flags.to_vec();
    args.push("busybox");
    match parse_run(&args).to_request() {
        Ok(r) => panic!("{flags:?} was accepted: {r:?}"),
        Err(e) => e.to_string(),
    }
}

fn clap_error_kind(args: &[&str]) -> clap::error::ErrorKind {
    let argv = ["berth", "run"].iter().chain(args);
    match Cli::try_parse_from(argv) {
        Ok(cli) => panic!("{args:?} parsed: {cli:?}"),
        Err(e) => e.kind(),
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// A unique file under the system temp dir, removed on drop.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(name: &str, content: &[u8]) -> Self {
        let path = std::env::temp_dir().join(format!(
            "berth-runargs-{}-{}-{name}",
            std::process::id(),
            rand_suffix()
        ));
        std::fs::write(&path, content).expect("write temp file");
        Self(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    u64::from(nanos) ^ (NEXT.fetch_add(1, Ordering::Relaxed) << 32)
}
