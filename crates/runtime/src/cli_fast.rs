//! A hand-written reader for the few command lines every container start
//! and stop runs through (`run`, `create`, `start`, `delete`, `kill`,
//! `state` with runc's global flags), ahead of clap.
//!
//! Why by hand: clap builds its whole command tree and propagates the
//! global flags into every subcommand before it looks at the first
//! argument, ~0.45 ms of a cold process (measured with uprobes on the
//! shipped binary) — paid twice per `berth run` (create and delete), on
//! the critical path. This reader accepts only the plain spellings of
//! those commands and gives up (`None`) on anything else: `--help`, an
//! unknown or repeated flag, `--`, an empty value, a value that looks like
//! a flag, a missing or extra operand, bundled short flags, non-UTF-8.
//! clap then parses the same line with all its rules and messages, so what
//! this accepts is exactly what clap would make of it (the tests compare
//! the two).

use std::ffi::OsString;
use std::path::PathBuf;

use crate::cli::{Cli, Command, CreateArgs, DeleteArgs, GlobalOpts, IdArg, KillArgs, RunArgs};
use crate::log::LogFormat;

/// `args` without the program name; `None`: leave it to clap.
pub fn parse(args: &[OsString]) -> Option<Cli> {
    let args: Vec<&str> = args.iter().map(|a| a.to_str()).collect::<Option<_>>()?;
    let mut global = GlobalFlags::default();
    let mut i = 0;
    // Global flags before the subcommand.
    let name = loop {
        let a = *args.get(i)?;
        i += 1;
        if !a.starts_with('-') {
            break a;
        }
        if !global.take(a, &args, &mut i)? {
            return None;
        }
    };
    let mut flags = SubFlags::default();
    let mut operands = Vec::new();
    while let Some(&a) = args.get(i) {
        i += 1;
        if !a.starts_with('-') {
            operands.push(a.to_string());
        } else if !(global.take(a, &args, &mut i)? || flags.take(name, a, &args, &mut i)?) {
            // Includes `-` and `--`, which no take() knows.
            return None;
        }
    }
    let command = flags.command(name, operands)?;
    Some(Cli {
        global: global.finish(),
        command,
    })
}

/// A flag's value: `--name=value` or `--name value` (`-x value` for short
/// ones), not empty and not starting with `-` (clap refuses both or reads
/// them differently).
fn value<'a>(
    a: &'a str,
    spellings: &[&str],
    args: &[&'a str],
    i: &mut usize,
) -> Option<Option<&'a str>> {
    for s in spellings {
        if a == *s {
            let v = *args.get(*i)?;
            *i += 1;
            return ok_value(v).map(Some);
        }
        if s.starts_with("--") {
            if let Some(v) = a.strip_prefix(s).and_then(|r| r.strip_prefix('=')) {
                return ok_value(v).map(Some);
            }
        }
    }
    Some(None)
}

fn ok_value(v: &str) -> Option<&str> {
    (!v.is_empty() && !v.starts_with('-')).then_some(v)
}

/// Sets a flag that may appear once; `None` when it was seen already.
fn once<T>(slot: &mut Option<T>, v: T) -> Option<bool> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(v);
    Some(true)
}

#[derive(Default)]
struct GlobalFlags {
    root: Option<PathBuf>,
    log: Option<PathBuf>,
    log_format: Option<LogFormat>,
    debug: Option<()>,
    log_errors_only: Option<()>,
}

impl GlobalFlags {
    /// `Some(true)`: `a` (and its value) was one of ours; `Some(false)`:
    /// not a global flag; `None`: give up.
    fn take(&mut self, a: &str, args: &[&str], i: &mut usize) -> Option<bool> {
        if let Some(v) = value(a, &["--root"], args, i)? {
            return once(&mut self.root, PathBuf::from(v));
        }
        if let Some(v) = value(a, &["--log"], args, i)? {
            return once(&mut self.log, PathBuf::from(v));
        }
        if let Some(v) = value(a, &["--log-format"], args, i)? {
            let f = match v {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => return None,
            };
            return once(&mut self.log_format, f);
        }
        match a {
            "--debug" => once(&mut self.debug, ()),
            "--log-errors-only" => once(&mut self.log_errors_only, ()),
            _ => Some(false),
        }
    }

    fn finish(self) -> GlobalOpts {
        GlobalOpts {
            root: self
                .root
                .unwrap_or_else(|| PathBuf::from(crate::cli::DEFAULT_ROOT)),
            log: self.log,
            log_format: self.log_format.unwrap_or_default(),
            debug: self.debug.is_some(),
            log_errors_only: self.log_errors_only.is_some(),
            systemd_cgroup: false,
            criu: None,
        }
    }
}

#[derive(Default)]
struct SubFlags {
    bundle: Option<PathBuf>,
    console_socket: Option<PathBuf>,
    pid_file: Option<PathBuf>,
    no_pivot: Option<()>,
    no_new_keyring: Option<()>,
    detach: Option<()>,
    keep: Option<()>,
    force: Option<()>,
    all: Option<()>,
}

impl SubFlags {
    fn take(&mut self, command: &str, a: &str, args: &[&str], i: &mut usize) -> Option<bool> {
        let creates = matches!(command, "create" | "run");
        if creates {
            if let Some(v) = value(a, &["--bundle", "-b"], args, i)? {
                return once(&mut self.bundle, PathBuf::from(v));
            }
            if let Some(v) = value(a, &["--console-socket"], args, i)? {
                return once(&mut self.console_socket, PathBuf::from(v));
            }
            if let Some(v) = value(a, &["--pid-file"], args, i)? {
                return once(&mut self.pid_file, PathBuf::from(v));
            }
        }
        match (command, a) {
            ("create" | "run", "--no-pivot") => once(&mut self.no_pivot, ()),
            ("create" | "run", "--no-new-keyring") => once(&mut self.no_new_keyring, ()),
            ("run", "-d" | "--detach") => once(&mut self.detach, ()),
            ("run", "--keep") => once(&mut self.keep, ()),
            ("delete", "-f" | "--force") => once(&mut self.force, ()),
            ("kill", "-a" | "--all") => once(&mut self.all, ()),
            _ => None,
        }
    }

    fn command(self, name: &str, mut operands: Vec<String>) -> Option<Command> {
        let one = |mut ops: Vec<String>| (ops.len() == 1).then(|| ops.remove(0));
        let create = |ops: Vec<String>| {
            Some(CreateArgs {
                id: one(ops)?,
                bundle: self.bundle.clone().unwrap_or_else(|| PathBuf::from(".")),
                console_socket: self.console_socket.clone(),
                pid_file: self.pid_file.clone(),
                no_pivot: self.no_pivot.is_some(),
                no_new_keyring: self.no_new_keyring.is_some(),
                preserve_fds: 0,
            })
        };
        Some(match name {
            "create" => Command::Create(create(operands)?),
            "run" => Command::Run(RunArgs {
                create: create(operands)?,
                detach: self.detach.is_some(),
                keep: self.keep.is_some(),
                no_subreaper: false,
            }),
            "start" => Command::Start(IdArg { id: one(operands)? }),
            "state" => Command::State(IdArg { id: one(operands)? }),
            "delete" => Command::Delete(DeleteArgs {
                id: one(operands)?,
                force: self.force.is_some(),
            }),
            "kill" if matches!(operands.len(), 1 | 2) => {
                let signal = (operands.len() == 2).then(|| operands.remove(1));
                Command::Kill(KillArgs {
                    id: operands.remove(0),
                    signal,
                    all: self.all.is_some(),
                })
            }
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn both(line: &str) -> (Option<String>, Option<String>) {
        let argv: Vec<OsString> = line.split_whitespace().map(OsString::from).collect();
        let fast = parse(&argv).map(|c| format!("{c:?}"));
        let full =
            Cli::try_parse_from(std::iter::once(OsString::from("berth-runtime")).chain(argv))
                .ok()
                .map(|c| format!("{c:?}"));
        (fast, full)
    }

    #[test]
    fn what_it_reads_clap_reads_the_same() {
        for line in [
            "--root /run/r run -d --pid-file /p --bundle /b c1",
            "--root=/run/r --log /l --log-format json run -d --pid-file=/p --console-socket /s -b /b c1",
            "--root /run/r delete --force c1",
            "delete -f c1 --root /x",
            "--debug --log-errors-only create --bundle b --no-pivot --no-new-keyring c2",
            "start c3",
            "state c3",
            "kill c4",
            "kill c4 KILL",
            "--log-format text kill -a c4 9",
            "run --keep c5",
        ] {
            let (fast, full) = both(line);
            assert!(fast.is_some(), "fast path refused {line:?}");
            assert_eq!(fast, full, "{line}");
        }
    }

    #[test]
    fn anything_unusual_is_left_to_clap() {
        for line in [
            "",
            "--help",
            "run --help",
            "run -h c1",
            "delete --force --force c1",
            "--root /a --root /b state c1",
            "delete c1 c2",
            "delete",
            "run -db /b c1",
            "run --bundle -x c1",
            "run --preserve-fds 2 c1",
            "--log-format xml state c1",
            "--systemd-cgroup state c1",
            "exec c1 ls",
            "spec",
            "kill c1 TERM extra",
            "state -- c1",
            "--criu x state c1",
            "run --no-subreaper c1",
        ] {
            let argv: Vec<OsString> = line.split_whitespace().map(OsString::from).collect();
            assert!(parse(&argv).is_none(), "fast path took {line:?}");
        }
    }

    #[test]
    fn empty_values_are_left_to_clap() {
        let argv: Vec<OsString> = ["--root", "", "state", "c1"].map(OsString::from).to_vec();
        assert!(parse(&argv).is_none());
        let argv: Vec<OsString> = ["--root=", "state", "c1"].map(OsString::from).to_vec();
        assert!(parse(&argv).is_none());
    }
}
