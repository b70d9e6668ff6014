//! Command line shape, stdio, command, environment, labels, lifecycle.

use super::*;

#[test]
fn command_line_shape_like_docker() {
    // Flag parsing stops at the image: what follows is the command.
    assert_eq!(
        run_err(&["--cpu-percent", "50", "--io-maxbandwidth", "1m"]),
        "\"--cpu-percent\" is only supported on a Docker daemon running on windows, but the Docker daemon is running on linux\n\"--io-maxbandwidth\" is only supported on a Docker daemon running on windows, but the Docker daemon is running on linux"
    );
    let r = parse_run(&["-it", "--rm", "busybox", "ls", "-l", "--rm"]);
    assert!(r.create.interactive && r.create.tty && r.create.rm);
    assert_eq!(r.create.image(), "busybox");
    assert_eq!(r.create.command(), strings(&["ls", "-l", "--rm"]));
    let r = parse_run(&["busybox", "-l"]);
    assert_eq!(r.create.command(), strings(&["-l"]));
    let r = parse_run(&["-dit", "busybox"]);
    assert!(r.detach && r.create.interactive && r.create.tty);
    // -h is --hostname; values may start with '-'.
    let r = parse_run(&["-h", "web", "--name=-x", "--memory-swap", "-1", "busybox"]);
    assert_eq!(r.create.hostname.as_deref(), Some("web"));
    assert_eq!(r.create.name.as_deref(), Some("-x"));
    // Booleans take =value like pflag's, never a separate argument.
    let r = parse_run(&["--rm=false", "--sig-proxy=false", "-t=true", "busybox"]);
    assert!(!r.create.rm && !r.sig_proxy && r.create.tty);
    let r = parse_run(&["-t", "false"]);
    assert_eq!(r.create.image(), "false");
    assert!(r.sig_proxy, "--sig-proxy defaults to true");
    assert_eq!(r.create.restart, "no");
    assert_eq!(r.create.pull, "missing");
    // Hidden Docker aliases.
    let r = parse_run(&[
        "--net",
        "host",
        "--net-alias",
        "a",
        "--dns-opt",
        "ndots:1",
        "x",
    ]);
    assert_eq!(r.create.network, strings(&["host"]));
    assert_eq!(r.create.network_alias, strings(&["a"]));
    assert_eq!(r.create.dns_option, strings(&["ndots:1"]));

    use clap::error::ErrorKind;
    assert_eq!(
        clap_error_kind(&["--bogus", "busybox"]),
        ErrorKind::UnknownArgument
    );
    assert_eq!(
        clap_error_kind(&["-x", "busybox"]),
        ErrorKind::UnknownArgument
    );
    assert_eq!(clap_error_kind(&[]), ErrorKind::MissingRequiredArgument);
    assert_eq!(clap_error_kind(&["--help"]), ErrorKind::DisplayHelp);
    assert_eq!(
        clap_error_kind(&["--rm=maybe", "busybox"]),
        ErrorKind::ValueValidation
    );
    let c = parse_create(&["--name", "db", "-e", "A=1", "postgres", "-c", "x"]);
    assert_eq!(c.image(), "postgres");
    assert_eq!(c.command(), strings(&["-c", "x"]));
}

#[test]
fn attach_and_stdin_like_docker() {
    let c = parse_create(&["busybox"]).to_request().unwrap().config;
    assert!(!c.attach_stdin && c.attach_stdout && c.attach_stderr);
    assert!(!c.open_stdin && !c.stdin_once && !c.tty);

    let c = run(&["-i", "-t"]).config;
    assert!(c.attach_stdin && c.attach_stdout && c.attach_stderr);
    assert!(c.open_stdin && c.stdin_once && c.tty);

    // -d attaches nothing but keeps stdin open.
    let c = run(&["-d", "-i"]).config;
    assert!(!c.attach_stdin && !c.attach_stdout && !c.attach_stderr);
    assert!(c.open_stdin && !c.stdin_once);

    let c = run(&["-a", "stdout", "-a", "STDERR"]).config;
    assert!(!c.attach_stdin && c.attach_stdout && c.attach_stderr);
    let c = run(&["-a", "stdin"]).config;
    assert!(c.attach_stdin && !c.attach_stdout && !c.attach_stderr && !c.stdin_once);

    assert_eq!(
        run_err(&["-a", "stdio"]),
        "invalid argument \"stdio\" for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR"
    );
    assert_eq!(
        run_err(&["-d", "-a", "stdout"]),
        "conflicting options: cannot specify both --attach and --detach"
    );
}

#[test]
fn command_entrypoint_workdir_user() {
    let r = parse_run(&[
        "--entrypoint",
        "",
        "-w",
        "/srv",
        "-u",
        "1000:1000",
        "busybox",
    ])
    .to_request()
    .unwrap();
    assert_eq!(r.config.entrypoint, Some(strings(&[""])));
    assert_eq!(r.config.cmd, None);
    assert_eq!(r.config.working_dir, "/srv");
    assert_eq!(r.config.user, "1000:1000");
    assert_eq!(r.config.image, "busybox");

    let r = parse_run(&["--entrypoint", "/bin/sh", "busybox", "-c", "echo hi"])
        .to_request()
        .unwrap();
    assert_eq!(r.config.entrypoint, Some(strings(&["/bin/sh"])));
    assert_eq!(r.config.cmd, Some(strings(&["-c", "echo hi"])));
    assert_eq!(run(&[]).config.entrypoint, None);

    let r = run(&["-h", "web", "--domainname", "example.org"]);
    assert_eq!(
        (r.config.hostname.as_str(), r.config.domainname.as_str()),
        ("web", "example.org")
    );
    assert_eq!(
        run_err(&["-w", "srv"]),
        "the working directory 'srv' is invalid, it needs to be an absolute path"
    );
}

#[test]
fn environment_from_flags_files_and_host() {
    let set = format!("BERTH_RUNARGS_SET_{}", std::process::id());
    let unset = format!("BERTH_RUNARGS_UNSET_{}", std::process::id());
    std::env::set_var(&set, "from host");
    std::env::remove_var(&unset);
    let file = TempFile::new(
        "env",
        format!(
            "\u{feff}# comment\n\n  A=1\nB=x=y\r\n{set}\n{unset}\nEMPTY=\n   # indented comment\n"
        )
        .as_bytes(),
    );
    let e_set = format!("-e{set}");
    let r = run(&[
        "--env-file",
        file.path(),
        "-e",
        "C=3",
        &e_set,
        "-e",
        &unset,
        "-e",
        "A=override",
    ]);
    assert_eq!(
        r.config.env,
        strings(&[
            "A=1",
            "B=x=y",
            &format!("{set}=from host"),
            "EMPTY=",
            "C=3",
            &format!("{set}=from host"),
            // Unset on the host: sent bare, Docker's "unset it" (also the
            // image's), while a bare name in the env file is dropped.
            &unset,
            "A=override",
        ])
    );

    // A variable repeated with -e is sent once, with its last value (Docker
    // passes the list through a map); the env file is not merged with it.
    assert_eq!(
        run(&["-e", "A=1", "-e", "B=2", "-e", "A=3"]).config.env,
        strings(&["B=2", "A=3"])
    );
    let created = parse_create(&["-e", "A=1", "-e", "B=2", "-e", "A=3", "busybox"]);
    assert_eq!(
        created.to_request().unwrap().config.env,
        strings(&["B=2", "A=3"])
    );
    assert_eq!(
        run_err(&["-e", "=x"]),
        "invalid argument \"=x\" for \"-e, --env\" flag: invalid environment variable: =x"
    );
    let bad = TempFile::new("badenv", b"OK=1\nA B=2\n");
    assert_eq!(
        run_err(&["--env-file", bad.path()]),
        format!(
            "invalid env file ({}): variable 'A B' contains whitespaces",
            bad.path()
        )
    );
    let nameless = TempFile::new("nameless", b"=2\n");
    assert_eq!(
        run_err(&["--env-file", nameless.path()]),
        format!(
            "invalid env file ({}): no variable name on line '=2'",
            nameless.path()
        )
    );
    assert_eq!(
        run_err(&["--env-file", "/nonexistent/berth.env"]),
        "open /nonexistent/berth.env: no such file or directory"
    );
}

#[test]
fn labels_from_flags_and_files() {
    let file = TempFile::new("labels", b"# labels\nteam=infra\nbare\nx=from-file\n");
    let r = run(&[
        "--label-file",
        file.path(),
        "-l",
        "a=b",
        "--label",
        "flag",
        "-l",
        "x=flag",
    ]);
    let expected: BTreeMap<String, String> =
        [("team", "infra"), ("a", "b"), ("flag", ""), ("x", "flag")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    // A bare key in a label file is dropped (no lookup), as in Docker.
    assert_eq!(r.config.labels, expected);
    assert_eq!(
        run_err(&["-l", "=x"]),
        "invalid argument \"=x\" for \"-l, --label\" flag: invalid label '=x': empty name"
    );
    assert_eq!(
        run_err(&["-l", "a b=c"]),
        "invalid argument \"a b=c\" for \"-l, --label\" flag: label 'a b' contains whitespaces"
    );
}

#[test]
fn names_signals_timeouts() {
    assert_eq!(
        run(&["--name", "web_1.a-b"]).name.as_deref(),
        Some("web_1.a-b")
    );
    assert_eq!(run(&["--name", "/web"]).name.as_deref(), Some("web"));
    assert_eq!(run(&[]).name, None);
    for bad in ["-web", "a", "web/1", "wéb"] {
        assert_eq!(
            run_err(&["--name", bad]),
            format!("Invalid container name ({bad}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        );
    }
    for signal in [
        "SIGTERM",
        "term",
        "Sigusr1",
        "9",
        "RTMIN",
        "SIGRTMIN+3",
        "RTMAX-14",
        "64",
    ] {
        assert_eq!(run(&["--stop-signal", signal]).config.stop_signal, signal);
    }
    for bad in ["FOO", "0", "65", "RTMIN+16", "RTMAX-15", "RTMIN+03"] {
        assert_eq!(
            run_err(&["--stop-signal", bad]),
            format!("invalid signal: {bad}")
        );
    }
    assert_eq!(run(&["--stop-timeout", "30"]).config.stop_timeout, Some(30));
    assert_eq!(run(&["--stop-timeout", "-1"]).config.stop_timeout, Some(-1));
    assert_eq!(run(&[]).config.stop_timeout, None);
    assert_eq!(
        run_err(&["--stop-timeout", "10s"]),
        "invalid argument \"10s\" for \"--stop-timeout\" flag: strconv.ParseInt: parsing \"10s\": invalid syntax"
    );
    assert_eq!(run(&["--init"]).host_config.init, Some(true));
    assert_eq!(run(&["--init=false"]).host_config.init, Some(false));
    assert_eq!(run(&[]).host_config.init, None);
}

#[test]
fn healthchecks() {
    let c = run(&[
        "--health-cmd",
        "wget -q localhost",
        "--health-interval",
        "1m30s",
        "--health-timeout",
        "500ms",
        "--health-start-period",
        "1.5s",
        "--health-start-interval",
        "2s",
        "--health-retries",
        "3",
    ])
    .config;
    assert_eq!(
        c.healthcheck,
        Some(HealthConfig {
            test: strings(&["CMD-SHELL", "wget -q localhost"]),
            interval: 90_000_000_000,
            timeout: 500_000_000,
            start_period: 1_500_000_000,
            start_interval: 2_000_000_000,
            retries: 3,
        })
    );
    // Settings without a command keep the image's test.
    let c = run(&["--health-retries", "5"]).config;
    assert_eq!(
        c.healthcheck,
        Some(HealthConfig {
            retries: 5,
            ..Default::default()
        })
    );
    assert_eq!(run(&["--health-interval", "0s"]).config.healthcheck, None);
    assert_eq!(
        run(&["--no-healthcheck"]).config.healthcheck,
        Some(HealthConfig {
            test: strings(&["NONE"]),
            ..Default::default()
        })
    );
    assert_eq!(
        run_err(&["--no-healthcheck", "--health-cmd", "true"]),
        "--no-healthcheck conflicts with --health-* options"
    );
    assert_eq!(
        run_err(&["--health-interval", "-1s"]),
        "--health-interval cannot be negative"
    );
    assert_eq!(
        run_err(&["--health-retries", "-1"]),
        "--health-retries cannot be negative"
    );
    for (value, reason) in [
        ("5", "time: missing unit in duration \"5\""),
        ("5x", "time: unknown unit \"x\" in duration \"5x\""),
        ("soon", "time: invalid duration \"soon\""),
        ("", "time: invalid duration \"\""),
    ] {
        assert_eq!(
            run_err(&["--health-timeout", value]),
            format!("invalid argument \"{value}\" for \"--health-timeout\" flag: {reason}")
        );
    }
}

#[test]
fn restart_policies() {
    let policy = |name: &str, count| RestartPolicy {
        name: name.into(),
        maximum_retry_count: count,
    };
    assert_eq!(run(&[]).host_config.restart_policy, policy("no", 0));
    assert_eq!(
        run(&["--restart", "on-failure:3"])
            .host_config
            .restart_policy,
        policy("on-failure", 3)
    );
    assert_eq!(
        run(&["--restart", "on-failure"]).host_config.restart_policy,
        policy("on-failure", 0)
    );
    assert_eq!(
        run(&["--restart", "always"]).host_config.restart_policy,
        policy("always", 0)
    );
    assert_eq!(
        run(&["--restart", "unless-stopped"])
            .host_config
            .restart_policy,
        policy("unless-stopped", 0)
    );
    assert!(run(&["--rm", "--restart", "no"]).host_config.auto_remove);
    for (value, message) in [
        ("always:3", "invalid restart policy: maximum retry count can only be used with 'on-failure'"),
        ("no:-1", "invalid restart policy: maximum retry count can only be used with 'on-failure' and cannot be negative"),
        ("on-failure:-1", "invalid restart policy: maximum retry count cannot be negative"),
        (":3", "invalid restart policy format: no policy provided before colon"),
        ("on-failure:x", "invalid restart policy format: maximum retry count must be an integer"),
        ("sometimes", "invalid restart policy: unknown policy 'sometimes'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"),
    ] {
        assert_eq!(run_err(&["--restart", value]), message, "--restart {value}");
    }
    assert_eq!(
        run_err(&["--rm", "--restart", "always"]),
        "conflicting options: cannot specify both --restart and --rm"
    );
}

#[test]
fn pull_policy_and_unsupported_flags() {
    assert_eq!(
        parse_run(&["busybox"]).create.pull_policy().unwrap(),
        PullPolicy::Missing
    );
    assert_eq!(
        parse_run(&["--pull", "always", "busybox"])
            .create
            .pull_policy()
            .unwrap(),
        PullPolicy::Always
    );
    assert_eq!(
        parse_run(&["--pull=never", "busybox"])
            .create
            .pull_policy()
            .unwrap(),
        PullPolicy::Never
    );
    assert_eq!(
        run_err(&["--pull", "sometimes"]),
        "invalid pull option: 'sometimes': must be one of \"always\", \"missing\" or \"never\""
    );
    assert_eq!(
        run_err(&["--use-api-socket"]),
        "--use-api-socket is not supported by berth: bind-mount the API socket with -v instead"
    );
    let r = parse_run(&[
        "-q",
        "--platform",
        "linux/amd64",
        "--disable-content-trust=false",
        "busybox",
    ]);
    assert!(r.create.quiet && !r.create.disable_content_trust);
    assert_eq!(r.create.platform.as_deref(), Some("linux/amd64"));
}

#[test]
fn detach_keys() {
    assert_eq!(parse_run(&["busybox"]).detach_keys().unwrap(), None);
    assert_eq!(
        parse_run(&["--detach-keys", "ctrl-p,ctrl-q", "busybox"])
            .detach_keys()
            .unwrap(),
        Some(vec![16, 17])
    );
    assert_eq!(
        parse_run(&["--detach-keys", "ctrl-@,a,ctrl-_", "busybox"])
            .detach_keys()
            .unwrap(),
        Some(vec![0, b'a', 31])
    );
    let err = parse_run(&["--detach-keys", "ctrl-P", "busybox"])
        .detach_keys()
        .unwrap_err();
    assert_eq!(err.to_string(), "Invalid detach keys (ctrl-P) provided");
}

#[test]
fn usage_error_for_the_cli() {
    let err = parse_run(&["-m", "x", "busybox"]).to_request().unwrap_err();
    let cli = err.to_cli_error("run");
    assert_eq!(cli.code, 125);
    assert_eq!(
        cli.message,
        "berth: invalid argument \"x\" for \"-m, --memory\" flag: invalid size: 'x'\nSee 'berth run --help'."
    );
}

#[test]
fn request_serializes_with_docker_names() {
    let r = run(&[
        "-p",
        "80:80",
        "--cpus",
        "1",
        "-e",
        "A=1",
        "--restart",
        "always",
    ]);
    let host = serde_json::to_value(&r.host_config).unwrap();
    assert_eq!(host["PortBindings"]["80/tcp"][0]["HostPort"], "80");
    assert_eq!(host["NanoCpus"], 1_000_000_000);
    assert_eq!(host["RestartPolicy"]["Name"], "always");
    let config = serde_json::to_value(&r.config).unwrap();
    assert_eq!(config["Env"][0], "A=1");
    assert!(config["ExposedPorts"]["80/tcp"].is_object());
}

#[test]
fn go_value_parsers() {
    use super::values::{go_duration, go_int, go_uint};
    assert_eq!(go_duration("1h2m3.5s"), Ok(3_723_500_000_000));
    assert_eq!(go_duration("-1.5us"), Ok(-1500));
    assert_eq!(go_duration("0"), Ok(0));
    assert_eq!(go_duration(".5s"), Ok(500_000_000));
    assert_eq!(go_duration("1µs"), Ok(1000));
    assert!(go_duration("1.s").is_ok());
    assert_eq!(go_duration("."), Err("time: invalid duration \".\"".into()));
    assert_eq!(
        go_duration("3000000h"),
        Err("time: invalid duration \"3000000h\"".into())
    );
    assert_eq!(go_int("0o17", 64), Ok(15));
    assert_eq!(go_int("017", 64), Ok(15));
    assert_eq!(go_int("-0b11", 64), Ok(-3));
    assert_eq!(go_int("1_000", 64), Ok(1000));
    assert_eq!(go_int("-9223372036854775808", 64), Ok(i64::MIN));
    assert!(go_int("9223372036854775808", 64)
        .unwrap_err()
        .ends_with("value out of range"));
    assert!(go_int("1__0", 64).unwrap_err().ends_with("invalid syntax"));
    assert!(go_int("", 64).unwrap_err().ends_with("invalid syntax"));
    assert_eq!(go_uint("65535", 16), Ok(65535));
    assert!(go_uint("-1", 16).unwrap_err().ends_with("invalid syntax"));
}
