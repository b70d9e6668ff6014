//! Parsing the most frequent command lines against a command tree that
//! holds only the subcommand they name.
//!
//! Why: clap builds the whole tree (about sixty subcommands, a hundred
//! flags for `run` alone) and propagates the global flags into every
//! subcommand before it looks at the line: ~0.75 ms of every `berth` command
//! (uprobes on the shipped binary), more than the rest of `berth ps`. The
//! narrowed tree is made of the same derive code (the subcommand's `Args`
//! and the global flags), so what it accepts it reads as the full tree
//! does (the tests compare the two). Anything it does not accept (help,
//! version, an error, a subcommand not listed here) is parsed again with
//! the full tree, which then gives its usual message.

use std::ffi::OsString;

use clap::{Args, FromArgMatches};

use crate::args::{Cli, GlobalArgs, InspectArgs};
use crate::container_args::{
    ContainersArgs, ExecArgs, KillArgs, LogsArgs, PsArgs, RmArgs, StartArgs, StopArgs,
};
use crate::run_args::{CreateArgs, RunArgs};

/// `argv` with the program name; `None`: parse it with the full tree.
pub fn parse(argv: &[OsString]) -> Option<Cli> {
    let sub = subcommand(subcommand_name(argv)?)?;
    let top = GlobalArgs::augment_args(clap::Command::new("berth"))
        .subcommand_required(true)
        .subcommand(sub);
    let matches = top.try_get_matches_from(argv).ok()?;
    Cli::from_arg_matches(&matches).ok()
}

/// Whether `argv` names a command that starts a container (`run`, `start`,
/// `container run|start`), read before any parsing: a wrong guess only
/// costs a needless [`berth_cgroups::MigrationPrimer`].
pub fn names_a_start(argv: &[OsString]) -> bool {
    match subcommand_name(argv) {
        Some("run" | "start") => true,
        Some("container") => {
            let mut after = argv
                .iter()
                .skip_while(|w| w.to_str() != Some("container"))
                .skip(1);
            matches!(after.next().and_then(|w| w.to_str()), Some("run" | "start"))
        }
        _ => false,
    }
}

/// The first word after the options that may precede the subcommand.
fn subcommand_name(argv: &[OsString]) -> Option<&str> {
    let mut words = argv.iter().skip(1);
    loop {
        let w = words.next()?.to_str()?;
        if !w.starts_with('-') {
            return Some(w);
        }
        match w {
            "--root" | "--runroot" | "-l" | "--log-level" => {
                words.next()?;
            }
            _ if ["--root=", "--runroot=", "--log-level="]
                .iter()
                .any(|p| w.starts_with(p)) => {}
            // --help, --version, anything unusual.
            _ => return None,
        }
    }
}

fn subcommand(name: &str) -> Option<clap::Command> {
    Some(match name {
        "run" => RunArgs::augment_args(clap::Command::new("run")),
        "create" => CreateArgs::augment_args(clap::Command::new("create")),
        "start" => StartArgs::augment_args(clap::Command::new("start")),
        "stop" => StopArgs::augment_args(clap::Command::new("stop")),
        "kill" => KillArgs::augment_args(clap::Command::new("kill")),
        "rm" => RmArgs::augment_args(clap::Command::new("rm")),
        "ps" => PsArgs::augment_args(clap::Command::new("ps")),
        "exec" => ExecArgs::augment_args(clap::Command::new("exec")),
        "logs" => LogsArgs::augment_args(clap::Command::new("logs")),
        "inspect" => InspectArgs::augment_args(clap::Command::new("inspect")),
        "wait" => ContainersArgs::augment_args(clap::Command::new("wait")),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn starts_are_told_apart_before_parsing() {
        for line in [
            "run busybox true",
            "--root /x run -d busybox",
            "-l debug start c1",
            "--log-level=info container run busybox",
            "container start -a c1",
        ] {
            assert!(names_a_start(&argv(line)), "{line}");
        }
        for line in [
            "ps -a",
            "create busybox",
            "container ls",
            "container",
            "--help",
            "images run",
            "",
        ] {
            assert!(!names_a_start(&argv(line)), "{line}");
        }
    }

    fn argv(line: &str) -> Vec<OsString> {
        std::iter::once("berth")
            .chain(line.split_whitespace())
            .map(OsString::from)
            .collect()
    }

    #[test]
    fn what_it_reads_the_full_tree_reads_the_same() {
        for line in [
            "run --rm --network none busybox true",
            "run -d --name web -p 8080:80 -e A=1 -v /data --restart always busybox sleep 1",
            "run -it --rm -l a=b -h host busybox sh -c exit",
            "--root /r --runroot /rr run --rm busybox echo -n --root x",
            "--root=/r -l debug create --name c busybox",
            "run --root /r busybox true",
            "start -a c1",
            "stop -t 0 c1 c2",
            "kill -s HUP c1",
            "rm -f -v c1",
            "rm -fv c1 c2",
            "ps -a --format {{.Names}} --no-trunc -q",
            "exec -it -u 0 c1 sh -c id",
            "logs -f --tail 5 -t c1",
            "inspect -f {{.State.Pid}} c1",
            "wait c1",
        ] {
            let argv = argv(line);
            let narrow = parse(&argv).map(|c| format!("{c:?}"));
            assert!(narrow.is_some(), "narrow parse refused {line:?}");
            let full = Cli::try_parse_from(&argv).ok().map(|c| format!("{c:?}"));
            assert_eq!(narrow, full, "{line}");
        }
    }

    #[test]
    fn help_version_errors_and_other_commands_go_to_the_full_tree() {
        for line in [
            "",
            "--help",
            "--version",
            "run --help",
            "run",
            "run --no-such-flag busybox",
            "rm",
            "images",
            "network ls",
            "container run busybox",
            "-D run busybox",
        ] {
            assert!(parse(&argv(line)).is_none(), "narrow parse took {line:?}");
        }
    }
}
