//! The runc-compatible commands, one function per verb, and the entry point
//! the binary calls.

mod exec;
mod lifecycle;
mod query;
mod spec;
mod update;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::error::RuntimeError;

pub use lifecycle::{delete, kill, run, start};

/// Runs the command line the process was started with and returns the exit
/// code. `berth-runtime init` (the re-executed container side) never
/// returns from here.
pub fn main() -> i32 {
    if std::env::args_os().nth(1).is_some_and(|a| a == "init") {
        crate::process::init::main();
    }
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let cli = crate::cli_fast::parse(&args).unwrap_or_else(Cli::parse);
    crate::log::init(crate::log::Logger {
        file: cli.global.log.clone(),
        format: cli.global.log_format,
        debug: cli.global.debug,
        errors_only_to_file: cli.global.log_errors_only,
    });
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            crate::log::error(&crate::error::one_line(&e));
            1
        }
    }
}

/// Runs one parsed command; returns the process exit code.
pub fn dispatch(cli: Cli) -> Result<i32, RuntimeError> {
    let g = &cli.global;
    if g.systemd_cgroup {
        return Err(RuntimeError::InvalidArgument(
            "--systemd-cgroup is not supported: berth-runtime manages cgroups through cgroupfs only".into(),
        ));
    }
    let root = g.root.as_path();
    match cli.command {
        Command::Spec(a) => spec::spec(&a).map(|()| 0),
        Command::Features => spec::features().map(|()| 0),
        Command::Create(a) => lifecycle::create(root, &a).map(|()| 0),
        Command::Start(a) => start(root, &a.id).map(|()| 0),
        Command::Run(a) => run(root, &a),
        Command::State(a) => query::state(root, &a.id).map(|()| 0),
        Command::Kill(a) => kill(root, &a).map(|()| 0),
        Command::Delete(a) => delete(root, &a.id, a.force).map(|()| 0),
        Command::Exec(a) => exec::exec(root, &a),
        Command::Ps(a) => query::ps(root, &a).map(|()| 0),
        Command::List(a) => query::list(root, &a).map(|()| 0),
        Command::Pause(a) => update::pause(root, &a.id).map(|()| 0),
        Command::Resume(a) => update::resume(root, &a.id).map(|()| 0),
        Command::Events(a) => query::events(root, &a).map(|()| 0),
        Command::Update(a) => update::update(root, &a).map(|()| 0),
    }
}
