//! The error texts checked against the reference itself: the `docker` CLI
//! (28, installed on the dev machine and CI) rejects these flag vectors on
//! the client side, before it would contact a daemon, and its message must
//! be ours word for word.

use std::process::Command;

use clap::Parser;

use crate::run_args::RunArgs;

#[derive(Debug, Parser)]
struct Run {
    #[command(flatten)]
    args: RunArgs,
}

/// Cases Docker's CLI refuses by itself (flag parsing and `parse()` in
/// cli/command/container/opts.go); daemon-side checks cannot be compared
/// without a Docker daemon.
const CASES: &[&[&str]] = &[
    &["-m", "x"],
    &["--memory-swap", "-2"],
    &["--kernel-memory", "lots"],
    &["--shm-size", "10zb"],
    &["--cpus", "abc"],
    &["--cpus", "0.0000000001"],
    &["-c", "x"],
    &["--cpu-quota", "99999999999999999999"],
    &["--stop-timeout", "10s"],
    &["--blkio-weight", "70000"],
    &["--memory-swappiness", "101"],
    &["--ulimit", "nofile=a"],
    &["--ulimit", "nofile=10:5"],
    &["--ulimit", "nofile=-1:5"],
    &["--ulimit", "bogus=1"],
    &["--ulimit", "nofile"],
    &["--ulimit", "nofile=1:2:3"],
    &["--mount", "type=bind"],
    &["--mount", "type=bind,target=/x,bogus=1"],
    &["--mount", "type=bind,target=/x,flag"],
    &["--mount", "target=/x,tmpfs-size=1m"],
    &["--mount", "type=tmpfs,target=/x,volume-nocopy"],
    &["--mount", "type=tmpfs,target=/x,tmpfs-mode=9"],
    &["--mount", "type=bind,target=/x,readonly=maybe"],
    &["--mount", "type=\"bind,target=/x"],
    &["--mount", "type=bind,target=/x,bind-recursive=sideways"],
    &["--health-timeout", "5"],
    &["--health-timeout", "5x"],
    &["--health-timeout", "soon"],
    &["--health-timeout", ""],
    &["--health-interval=-1s"],
    &["--health-retries", "-1"],
    &["--no-healthcheck", "--health-cmd", "true"],
    &["--rm", "--restart", "always"],
    &["--restart", ":3"],
    &["--restart", "on-failure:x"],
    &["--pid", "foo"],
    &["--pid", "container:"],
    &["--uts", "private"],
    &["--userns", "keep-id"],
    &["--cgroupns", "shared"],
    &["-p", "80/foo"],
    &["-p", "1.2.3:80:80"],
    &["-p", "8000-8001:80-82"],
    &["-p", "x:80"],
    &["-p", "80-x"],
    &["-p", "70000"],
    &["-p", "8080:"],
    &["-p", "target=80,bogus"],
    &["--expose", "80:80"],
    &["--expose", "x"],
    &["--expose", "90-80"],
    &["-e", "=x"],
    &["-l", "=x"],
    &["-l", "a b=c"],
    &["--env-file", "/nonexistent/berth.env"],
    &["--dns", "dns.google"],
    &["--dns-search", "-bad-"],
    &["--add-host", "nohost"],
    &["--add-host", "h:1.2.3"],
    &["--link", "a:b:c"],
    &["--sysctl", "kernel.hostname=x"],
    &["--device-cgroup-rule", "x 1:2 r"],
    &["--blkio-weight-device", "/dev/sda:5"],
    &["--device-read-bps", "sda:1"],
    &["--device-write-iops", "/dev/sda"],
    &["--device-read-iops", "/dev/sda:1k"],
    &["--log-driver", "none", "--log-opt", "max-size=1m"],
    &["--security-opt", "foo"],
    &["--security-opt", "apparmor="],
    &["--security-opt", "seccomp=/nonexistent/profile.json"],
    &["--storage-opt", "size"],
    &["--mac-address", "zz:zz"],
    &["-a", "stdio"],
    &["-d", "-a", "stdout"],
    &["--pull", "sometimes"],
    &["-v", ""],
    &["-v", "/a:/b:ro:x"],
    &["--network-alias", "web"],
    &["--network", "host", "--network", "appnet"],
    &["--network", "a", "--network", "a"],
    &["--ip", "1.2.3.4", "--network", "name=n,ip=1.2.3.5"],
    &["--network", "name=n,foo=bar"],
    &["--network", "alias=a"],
    &["--network", "name=n,gw-priority=x"],
];

/// The first line `docker run FLAGS… busybox` prints, without `docker: `.
fn docker_message(flags: &[&str], config_dir: &std::path::Path) -> String {
    let output = Command::new("docker")
        .arg("run")
        .args(flags)
        .arg("busybox")
        // Never reach a real daemon or the user's configuration.
        .env("DOCKER_HOST", "unix:///nonexistent/berth-test-docker.sock")
        .env("DOCKER_CONFIG", config_dir)
        .env_remove("DOCKER_CONTEXT")
        .output()
        .expect("the docker CLI (the reference for these messages) must be installed");
    // 125 for all but `-d -a`, which Docker reports from the run step (1).
    assert!(
        matches!(output.status.code(), Some(125 | 1)),
        "docker run {flags:?}: {:?}",
        output.status
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    let first = stderr.lines().next().unwrap_or_default();
    first.strip_prefix("docker: ").unwrap_or(first).to_string()
}

fn berth_message(flags: &[&str]) -> String {
    let argv = ["run"].iter().chain(flags).chain(&["busybox"]);
    let run = match Run::try_parse_from(argv) {
        Ok(run) => run,
        Err(e) => panic!("clap rejected {flags:?}: {e}"),
    };
    match run.args.to_request() {
        Ok(r) => panic!("berth accepted {flags:?}: {r:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn error_messages_match_docker_cli() {
    let config_dir = berth_testutil::TempDir::new("runargs-docker-config").expect("temp dir");
    let mut mismatches = Vec::new();
    for flags in CASES {
        let docker = docker_message(flags, config_dir.path());
        let berth = berth_message(flags);
        if docker != berth {
            mismatches.push(format!("{flags:?}\n  docker: {docker}\n  berth:  {berth}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "messages differ:\n{}",
        mismatches.join("\n")
    );
}

/// `(short, long)` for every flag `docker <verb> --help` lists.
fn docker_flags(verb: &str) -> Vec<(Option<char>, String)> {
    let output = Command::new("docker")
        .args([verb, "--help"])
        .output()
        .expect("the docker CLI must be installed");
    let help = String::from_utf8_lossy(&output.stdout);
    let mut flags = Vec::new();
    for line in help.lines() {
        let line = line.trim_start();
        let (short, rest) = match line.strip_prefix('-') {
            Some(rest) if rest.chars().nth(1) == Some(',') => (rest.chars().next(), &rest[3..]),
            _ => (None, line),
        };
        if let Some(long) = rest.strip_prefix("--") {
            let name: String = long
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            flags.push((short, name));
        }
    }
    flags
}

fn assert_has_docker_flags(verb: &str, command: clap::Command) {
    let docker = docker_flags(verb);
    assert!(
        docker.len() > 90,
        "docker {verb} --help lists {}",
        docker.len()
    );
    let mut missing = Vec::new();
    for (short, long) in &docker {
        let found = command.get_arguments().find(|a| {
            a.get_long() == Some(long.as_str())
                || a.get_all_aliases()
                    .is_some_and(|al| al.contains(&long.as_str()))
        });
        match found {
            Some(arg) if arg.get_short() == *short => {}
            Some(arg) => missing.push(format!(
                "--{long}: short {:?}, docker {short:?}",
                arg.get_short()
            )),
            None => missing.push(format!("--{long} missing")),
        }
    }
    // Docker's hidden spellings.
    for alias in ["net", "net-alias", "dns-opt"] {
        if !command
            .get_arguments()
            .any(|a| a.get_all_aliases().is_some_and(|al| al.contains(&alias)))
        {
            missing.push(format!("hidden alias --{alias} missing"));
        }
    }
    assert!(missing.is_empty(), "berth {verb}: {}", missing.join("; "));
}

#[test]
fn every_docker_flag_is_accepted() {
    use clap::Args;
    assert_has_docker_flags("run", RunArgs::augment_args(clap::Command::new("run")));
    assert_has_docker_flags(
        "create",
        crate::run_args::CreateArgs::augment_args(clap::Command::new("create")),
    );
}
