//! `berth`: the Docker-compatible command line over `berth-engine`.

mod args;
mod attach_cmds;
mod container_args;
mod container_cmds;
mod fs_cmds;
mod image_cmds;
mod info_cmds;
mod narrow_args;
mod network_cmds;
mod output;
mod progress;
mod registry_cmds;
mod registry_serve_cmd;
mod run_args;
mod system_cmds;
mod template;
mod units;
mod volume_cmds;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command, ContainerCommand, ImageCommand, SystemCommand};

/// Docker's exit status for errors in the command line itself.
const EXIT_USAGE: u8 = 125;

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // First of all, before the line is parsed: the kernel's grace period
    // that the container's cgroup migration waits for (see the primer) is
    // started the earlier, the sooner it ends. Single-threaded here, as
    // the primer's fork needs.
    let _primer =
        narrow_args::names_a_start(&argv).then(|| berth_cgroups::MigrationPrimer::start(false));
    let parsed = match narrow_args::parse(&argv) {
        Some(cli) => Ok(cli),
        None => Cli::try_parse_from(&argv),
    };
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            let code = match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
                ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 0,
                _ => EXIT_USAGE,
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_logging(&cli.global.log_level);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of our stdout went away (`berth images | head`): stop
        // quietly, as a tool killed by SIGPIPE does (the shell's 128+13).
        Err(e) if is_broken_pipe(&e) => ExitCode::from(141),
        Err(e) => {
            let code = output::report_error(&e);
            ExitCode::from(code)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn init_logging(level: &str) {
    // Logs go to stderr so that they never mix with machine-read stdout.
    // A level, not EnvFilter's directives: `--log-level` takes Docker's
    // level names only, and EnvFilter would bring a regex engine into
    // every command's binary (~250 KB of code).
    let filter = match level.to_ascii_lowercase().as_str() {
        "fatal" => tracing_subscriber::filter::LevelFilter::ERROR,
        l => l
            .parse()
            .unwrap_or(tracing_subscriber::filter::LevelFilter::WARN),
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let cfg = berth_engine::EngineConfig {
        root: cli.global.root.clone(),
        runroot: cli.global.runroot.clone(),
    };
    // BERTH_LAYER_SYNC=0 skips the syncfs that makes each unpacked layer
    // durable against power loss (crash safety against a killed process
    // does not depend on it); podman and containerd do not sync layers either.
    let sync_layers = std::env::var("BERTH_LAYER_SYNC").map_or(true, |v| v != "0");
    let starts = matches!(
        cli.command,
        Command::Run(_)
            | Command::Start(_)
            | Command::Container(args::ContainerCommand::Run(_) | args::ContainerCommand::Start(_))
    );
    // The container's monitor execs and detaches while this process opens
    // the state and prepares the container.
    let mut standby = starts
        .then(berth_engine::containers::start_standby_monitor)
        .flatten();
    let mut open = || {
        let mut engine = berth_engine::Engine::open(cfg.clone())?;
        engine.set_durable(sync_layers);
        if let Some(m) = standby.take() {
            engine.keep_standby_monitor(m);
        }
        Ok::<_, anyhow::Error>(engine)
    };
    match cli.command {
        Command::Registry(args::RegistryCommand::Serve(a)) => {
            registry_serve_cmd::serve(&cfg.root, a)
        }
        Command::Images(a) => image_cmds::list(&open()?, a),
        Command::Rmi(a) => image_cmds::remove(&open()?, a),
        Command::Tag(a) => image_cmds::tag(&open()?, a),
        Command::History(a) => image_cmds::history(&open()?, a),
        Command::Inspect(a) => container_cmds::inspect_typed(&open()?, a, None),
        Command::Save(a) => image_cmds::save(&open()?, a),
        Command::Load(a) => image_cmds::load(&open()?, a),
        Command::Import(a) => image_cmds::import(&open()?, a),
        Command::Pull(a) => registry_cmds::pull(&open()?, a),
        Command::Push(a) => registry_cmds::push(&open()?, a),
        Command::Login(a) => registry_cmds::login(a),
        Command::Logout(a) => registry_cmds::logout(a),
        Command::Image(sub) => match sub {
            ImageCommand::Ls(a) => image_cmds::list(&open()?, a),
            ImageCommand::Rm(a) => image_cmds::remove(&open()?, a),
            ImageCommand::Tag(a) => image_cmds::tag(&open()?, a),
            ImageCommand::History(a) => image_cmds::history(&open()?, a),
            ImageCommand::Inspect(a) => container_cmds::inspect_typed(&open()?, a, Some("image")),
            ImageCommand::Save(a) => image_cmds::save(&open()?, a),
            ImageCommand::Load(a) => image_cmds::load(&open()?, a),
            ImageCommand::Import(a) => image_cmds::import(&open()?, a),
            ImageCommand::Prune(a) => image_cmds::prune(&open()?, a),
            ImageCommand::Pull(a) => registry_cmds::pull(&open()?, a),
            ImageCommand::Push(a) => registry_cmds::push(&open()?, a),
        },
        Command::System(SystemCommand::Df(a)) => system_cmds::df(&open()?, a),
        Command::System(SystemCommand::Info(a)) => info_cmds::info(&open()?, a),
        Command::System(SystemCommand::Events(a)) => info_cmds::events(&open()?, a),
        Command::System(SystemCommand::Prune(a)) => container_cmds::system_prune(&open()?, a),
        Command::System(SystemCommand::Boot) => container_cmds::boot(&open()?),
        Command::System(SystemCommand::CompactDb) => {
            berth_engine::compact_database(&cfg.root).map_err(Into::into)
        }
        Command::System(SystemCommand::EmptyTrash { dirs }) => {
            berth_engine::empty_trash(&dirs);
            Ok(())
        }
        Command::Stats(a) => info_cmds::stats(&open()?, a),
        Command::Info(a) => info_cmds::info(&open()?, a),
        Command::Version(a) => info_cmds::version(a),
        Command::Events(a) => info_cmds::events(&open()?, a),
        Command::Diff(a) => fs_cmds::diff(&open()?, a),
        Command::Cp(a) => fs_cmds::cp(&open()?, a),
        Command::Export(a) => fs_cmds::export(&open()?, a),
        Command::Commit(a) => fs_cmds::commit(&open()?, a),
        Command::Volume(sub) => volume_cmds::run(&open()?, sub),
        Command::Run(a) => container_cmds::run(&open()?, *a),
        Command::Create(a) => container_cmds::create(&open()?, *a),
        Command::Start(a) => container_cmds::start(&open()?, a),
        Command::Stop(a) => container_cmds::stop(&open()?, a),
        Command::Restart(a) => container_cmds::restart(&open()?, a),
        Command::Kill(a) => container_cmds::kill(&open()?, a),
        Command::Rm(a) => container_cmds::rm(&open()?, a),
        Command::Ps(a) => container_cmds::ps(&open()?, a),
        Command::Logs(a) => attach_cmds::logs(&open()?, a),
        Command::Exec(a) => attach_cmds::exec(&open()?, a),
        Command::Attach(a) => attach_cmds::attach(&open()?, a),
        Command::Wait(a) => container_cmds::wait(&open()?, a),
        Command::Top(a) => container_cmds::top(&open()?, a),
        Command::Rename(a) => container_cmds::rename(&open()?, a),
        Command::Pause(a) => container_cmds::pause(&open()?, a),
        Command::Unpause(a) => container_cmds::unpause(&open()?, a),
        Command::Port(a) => container_cmds::port(&open()?, a),
        Command::Network(sub) => network_cmds::run(&open()?, sub),
        Command::Update(a) => container_cmds::update(&open()?, a),
        Command::Container(sub) => match sub {
            ContainerCommand::Run(a) => container_cmds::run(&open()?, *a),
            ContainerCommand::Create(a) => container_cmds::create(&open()?, *a),
            ContainerCommand::Start(a) => container_cmds::start(&open()?, a),
            ContainerCommand::Stop(a) => container_cmds::stop(&open()?, a),
            ContainerCommand::Restart(a) => container_cmds::restart(&open()?, a),
            ContainerCommand::Kill(a) => container_cmds::kill(&open()?, a),
            ContainerCommand::Rm(a) => container_cmds::rm(&open()?, a),
            ContainerCommand::Ls(a) => container_cmds::ps(&open()?, a),
            ContainerCommand::Logs(a) => attach_cmds::logs(&open()?, a),
            ContainerCommand::Exec(a) => attach_cmds::exec(&open()?, a),
            ContainerCommand::Attach(a) => attach_cmds::attach(&open()?, a),
            ContainerCommand::Wait(a) => container_cmds::wait(&open()?, a),
            ContainerCommand::Top(a) => container_cmds::top(&open()?, a),
            ContainerCommand::Rename(a) => container_cmds::rename(&open()?, a),
            ContainerCommand::Pause(a) => container_cmds::pause(&open()?, a),
            ContainerCommand::Unpause(a) => container_cmds::unpause(&open()?, a),
            ContainerCommand::Port(a) => container_cmds::port(&open()?, a),
            ContainerCommand::Update(a) => container_cmds::update(&open()?, a),
            ContainerCommand::Inspect(a) => {
                container_cmds::inspect_typed(&open()?, a, Some("container"))
            }
            ContainerCommand::Prune(a) => container_cmds::prune(&open()?, a),
            ContainerCommand::Stats(a) => info_cmds::stats(&open()?, a),
            ContainerCommand::Diff(a) => fs_cmds::diff(&open()?, a),
            ContainerCommand::Cp(a) => fs_cmds::cp(&open()?, a),
            ContainerCommand::Export(a) => fs_cmds::export(&open()?, a),
            ContainerCommand::Commit(a) => fs_cmds::commit(&open()?, a),
            ContainerCommand::Cleanup(a) => container_cmds::cleanup(&open()?, a),
        },
    }
}
