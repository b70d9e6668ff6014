//! The create requests checked against the reference itself: the `docker`
//! CLI is pointed at a stand-in daemon on a unix socket that records the
//! `POST /containers/create` body, and for the same flags our request must
//! carry the same `Config`, `HostConfig` and per-network settings.
//!
//! Both documents are compared after dropping empty values (`null`, `""`,
//! `0`, `false`, `[]`, `{}`), since Docker's Go structs send zero values
//! where the engine model leaves fields out.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::Command;
use std::sync::{Arc, Mutex};

use berth_testutil::TempDir;
use clap::Parser;
use serde_json::{Map, Value};

use crate::run_args::{CreateArgs, CreateRequest, FlagError, RunArgs};

#[derive(Debug, Parser)]
struct Run {
    #[command(flatten)]
    args: RunArgs,
}

#[derive(Debug, Parser)]
struct Create {
    #[command(flatten)]
    args: CreateArgs,
}

/// A stand-in Docker daemon: answers `_ping` and records create bodies.
struct FakeDaemon {
    dir: TempDir,
    captured: Arc<Mutex<Vec<(String, Value)>>>,
}

impl FakeDaemon {
    fn start() -> Self {
        let dir = TempDir::new("runargs-docker").expect("temp dir");
        let listener = UnixListener::bind(dir.join("docker.sock")).expect("bind fake daemon");
        let captured = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&captured);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let sink = Arc::clone(&sink);
                std::thread::spawn(move || serve(stream, &sink));
            }
        });
        Self { dir, captured }
    }

    /// `docker VERB FLAGS… busybox [COMMAND]` → (request target, create body).
    fn docker_create(&self, verb: &str, args: &[&str]) -> (String, Value) {
        let before = self.captured.lock().expect("lock").len();
        let output = Command::new("docker")
            .arg(verb)
            .args(args)
            .env(
                "DOCKER_HOST",
                format!("unix://{}", self.dir.join("docker.sock").display()),
            )
            .env("DOCKER_CONFIG", self.dir.path())
            .env_remove("DOCKER_CONTEXT")
            .output()
            .expect("the docker CLI (the reference for these requests) must be installed");
        let captured = self.captured.lock().expect("lock");
        match captured.get(before) {
            Some(c) => c.clone(),
            None => panic!(
                "docker {verb} {args:?} sent no create request: {}",
                String::from_utf8_lossy(&output.stderr)
            ),
        }
    }
}

fn serve(stream: UnixStream, sink: &Mutex<Vec<(String, Value)>>) {
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut content_length = 0;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    content_length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; content_length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let target = request_line
            .split(' ')
            .nth(1)
            .unwrap_or_default()
            .to_string();
        let response = if target.ends_with("/_ping") {
            "HTTP/1.1 200 OK\r\nApi-Version: 1.50\r\nOstype: linux\r\nContent-Length: 0\r\n\r\n"
                .to_string()
        } else {
            if target.contains("/containers/create") {
                let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
                sink.lock().expect("lock").push((target, json));
            }
            let message = r#"{"message":"recorded by the berth test daemon"}"#;
            format!(
                "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{message}",
                message.len()
            )
        };
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

/// Drops empty values recursively.
fn without_empties(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, without_empties(v)))
                .filter(|(_, v)| !is_empty(v))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_empties).collect()),
        other => other,
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty() || a.iter().all(|x| x.as_u64() == Some(0)),
        Value::Object(o) => o.is_empty(),
    }
}

/// Docker's per-network endpoint settings, as ours are shaped.
fn docker_endpoints(networking: &Value) -> Value {
    let mut out = Map::new();
    if let Some(endpoints) = networking["EndpointsConfig"].as_object() {
        for (name, ep) in endpoints {
            let ipam = &ep["IPAMConfig"];
            out.insert(
                name.clone(),
                serde_json::json!({
                    "aliases": ep["Aliases"],
                    "links": ep["Links"],
                    "ipv4": ipam["IPv4Address"],
                    "ipv6": ipam["IPv6Address"],
                    "link_local": ipam["LinkLocalIPs"],
                    "mac": ep["MacAddress"],
                    "driver_opts": ep["DriverOpts"],
                    "gw_priority": ep["GwPriority"],
                }),
            );
        }
    }
    without_empties(Value::Object(out))
}

/// Our request and the create flags for `berth VERB ARGS…`.
fn berth_request(verb: &str, args: &[&str]) -> (Result<CreateRequest, FlagError>, CreateArgs) {
    let argv = [verb].into_iter().chain(args.iter().copied());
    let parsed = if verb == "run" {
        Run::try_parse_from(argv).map(|r| (r.args.to_request(), r.args.create))
    } else {
        Create::try_parse_from(argv).map(|c| (c.args.to_request(), c.args))
    };
    match parsed {
        Ok(p) => p,
        Err(e) => panic!("clap rejected {verb} {args:?}: {e}"),
    }
}

fn compare(daemon: &FakeDaemon, verb: &str, args: &[&str]) -> Vec<String> {
    let (target, mut docker) = daemon.docker_create(verb, args);
    let (ours, create) = berth_request(verb, args);
    let ours = match ours {
        Ok(r) => r,
        Err(e) => panic!("berth refused {args:?}: {e}"),
    };
    let mut problems = Vec::new();

    // The daemon drops a leading '/' of the name; berth's CLI already has.
    let name = target.split_once("name=").map(|(_, n)| {
        let n = n.split('&').next().unwrap_or_default().replace("%2F", "/");
        n.strip_prefix('/').unwrap_or(&n).to_string()
    });
    if name.filter(|n| !n.is_empty()) != ours.name {
        problems.push(format!("name: docker {target}, berth {:?}", ours.name));
    }

    let docker_object = docker.as_object_mut().expect("create body is an object");
    let mut docker_host = docker_object.remove("HostConfig").unwrap_or(Value::Null);
    let networking = docker_object
        .remove("NetworkingConfig")
        .unwrap_or(Value::Null);
    // Docker's spellings of "unset" that the model writes as absent.
    if docker_host["NetworkMode"] == "default" {
        docker_host["NetworkMode"] = Value::Null;
    }
    if docker_host["MemorySwappiness"] == -1 {
        docker_host["MemorySwappiness"] = Value::Null;
    }
    // Docker's -v binds come out of a Go map, in random order.
    if let Some(binds) = docker_host["Binds"].as_array_mut() {
        binds.sort_by_key(|b| b.as_str().unwrap_or_default().to_string());
    }
    // `docker run` passes -e through a Go map (for proxy settings), so
    // their order is random.
    if let Some(env) = docker["Env"].as_array_mut() {
        env.sort_by_key(|e| e.as_str().unwrap_or_default().to_string());
    }
    let mut our_config = serde_json::to_value(&ours.config).expect("config json");
    if let Some(env) = our_config["Env"].as_array_mut() {
        env.sort_by_key(|e| e.as_str().unwrap_or_default().to_string());
    }
    // API 1.44+ clients send the MAC address only per network; the model
    // has no per-network settings and keeps it in Config, so it must equal
    // the first network's.
    let first_network_mac = create.networks().expect("networks")[0].mac_address.clone();
    assert_eq!(
        our_config["MacAddress"].as_str().unwrap_or_default(),
        first_network_mac
    );
    our_config["MacAddress"] = Value::Null;
    let mut our_host = serde_json::to_value(&ours.host_config).expect("host config json");
    if let Some(binds) = our_host["Binds"].as_array_mut() {
        binds.sort_by_key(|b| b.as_str().unwrap_or_default().to_string());
    }
    let pairs = [
        (
            "Config",
            without_empties(docker),
            without_empties(our_config),
        ),
        (
            "HostConfig",
            without_empties(docker_host),
            without_empties(our_host),
        ),
    ];
    for (what, docker, berth) in pairs {
        let (Value::Object(docker), Value::Object(berth)) = (docker, berth) else {
            panic!("{what} is not an object");
        };
        let keys: std::collections::BTreeSet<&String> = docker.keys().chain(berth.keys()).collect();
        for key in keys {
            if docker.get(key) != berth.get(key) {
                problems.push(format!(
                    "{what}.{key}: docker {}, berth {}",
                    docker.get(key).map_or("-".to_string(), Value::to_string),
                    berth.get(key).map_or("-".to_string(), Value::to_string),
                ));
            }
        }
    }

    let networks = create.networks().expect("networks");
    let ours: Map<String, Value> = networks
        .iter()
        .map(|n| {
            (
                n.network.clone(),
                serde_json::json!({
                    "aliases": n.aliases,
                    "links": n.links,
                    "ipv4": n.ipv4_address,
                    "ipv6": n.ipv6_address,
                    "link_local": n.link_local_ips,
                    "mac": n.mac_address,
                    "driver_opts": n.driver_opts,
                    "gw_priority": n.gw_priority,
                }),
            )
        })
        .collect();
    // Docker leaves out the endpoint of a lone network without settings.
    let ours = without_empties(Value::Object(ours));
    let docker = docker_endpoints(&networking);
    if ours != docker {
        problems.push(format!("networks: docker {docker}, berth {ours}"));
    }
    problems
        .into_iter()
        .map(|p| format!("{verb} {args:?}: {p}"))
        .collect()
}

#[test]
fn create_requests_match_docker_cli() {
    let daemon = FakeDaemon::start();
    let files = TempDir::new("runargs-files").expect("temp dir");
    let env_file = files.join("env");
    std::fs::write(
        &env_file,
        "# comment\nA=1\nHOME\nBERTH_SURELY_UNSET_VARIABLE\n",
    )
    .expect("env file");
    let label_file = files.join("labels");
    std::fs::write(&label_file, "team=infra\nbare\n").expect("label file");
    let seccomp = files.join("seccomp.json");
    std::fs::write(
        &seccomp,
        "{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\",\n  \"syscalls\": [ ]\n}\n",
    )
    .expect("seccomp file");
    let cidfile = files.join("cid");
    let (env_file, label_file) = (env_file.to_str().unwrap(), label_file.to_str().unwrap());
    let seccomp = format!("seccomp={}", seccomp.display());
    let cidfile = cidfile.to_str().unwrap();

    let cases: Vec<Vec<&str>> = vec![
        vec!["busybox"],
        vec!["-t", "--rm", "--name", "web_1", "-h", "box", "--domainname", "example.org", "-w", "/srv", "-u", "1:2", "--entrypoint", "/bin/sh", "busybox", "-c", "echo hi"],
        vec!["--entrypoint", "", "busybox"],
        vec!["-d", "-i", "busybox"],
        vec!["-d", "-it", "busybox"],
        vec!["-a", "stdout", "busybox"],
        vec!["-a", "stdin", "-i", "busybox", "cat"],
        vec!["-e", "X=1", "-e", "HOME", "-e", "BERTH_SURELY_UNSET_VARIABLE", "--env-file", env_file, "-l", "a=b", "-l", "c", "--label-file", label_file, "busybox"],
        vec!["-p", "8080:80", "-p", "127.0.0.1:9090:90", "-p", "127.0.0.1::70", "-p", "60", "-p", "53:53/udp", "-p", "[::1]:8443:443", "-p", "8000-8001:80-81/udp", "-p", "5000-5010:500", "-p", "published=7000,target=700,protocol=sctp", "-P", "--expose", "3000-3002", "--expose", "4000/udp", "busybox"],
        vec!["-m", "20m", "--memory-reservation", "10m", "--memory-swap", "-1", "--memory-swappiness", "10", "--oom-kill-disable", "--oom-score-adj", "-5", "--pids-limit", "100", "--shm-size", "64m", "busybox"],
        vec!["-m", "1.5g", "--memory-swap", "3g", "--kernel-memory", "0", "busybox"],
        vec!["--cpus", "0.3", "-c", "512", "--cpu-period", "100000", "--cpu-quota", "50000", "--cpu-rt-period", "1000000", "--cpu-rt-runtime", "950000", "--cpuset-cpus", "0-1", "--cpuset-mems", "0", "busybox"],
        vec!["--cpus", "3/2", "busybox"],
        vec!["--blkio-weight", "300", "--blkio-weight-device", "/dev/sda:200", "--device-read-bps", "/dev/sda:1mb", "--device-write-bps", "/dev/sdb:10", "--device-read-iops", "/dev/sda:1000", "--device-write-iops", "/dev/sdb:5", "busybox"],
        vec!["--ulimit", "nofile=1024:2048", "--ulimit", "nproc=10", "--ulimit", "core=-1", "busybox"],
        vec!["--device", "/dev/fuse", "--device", "/dev/sda:/dev/xvda", "--device", "/dev/null:r", "--device", "/dev/zero:/dev/z:rw", "--device-cgroup-rule", "c 1:3 mr", "busybox"],
        vec!["--restart", "on-failure:3", "busybox"],
        vec!["--restart", "unless-stopped", "busybox"],
        vec!["-v", "/data", "-v", "/srv:/srv:ro", "-v", "cache:/cache:nocopy", "-v", "/a:/b:ro,Z,rshared", "-v", "./rel:/rel", "--volumes-from", "data:ro", "--read-only", "--storage-opt", "size=10G", "busybox"],
        vec!["--mount", "type=bind,src=/srv,dst=/srv,readonly,bind-propagation=rslave", "--mount", "type=volume,source=data,target=/data,volume-nocopy,volume-opt=type=tmpfs,volume-label=a=b,volume-driver=local,volume-subpath=sub", "--mount", "type=tmpfs,destination=/tmp,tmpfs-size=64m,tmpfs-mode=1777", "--mount", "target=/anon", "--tmpfs", "/run", "--tmpfs", "/var/tmp:rw,size=1g", "busybox"],
        vec!["--security-opt", "no-new-privileges", "--security-opt", "apparmor=unconfined", "--security-opt", "label=disable", "--security-opt", &seccomp, "--security-opt", "systempaths=unconfined", "--privileged", "--cap-add", "NET_ADMIN", "--cap-drop", "ALL", "--group-add", "audio", "--sysctl", "net.ipv4.ip_forward=1", "--annotation", "org.example/key=value", "busybox"],
        vec!["--pid", "host", "--ipc", "shareable", "--uts", "host", "--userns", "host", "--cgroupns", "private", "--cgroup-parent", "/berth-test", "busybox"],
        vec!["--pid", "container:db", "--ipc", "container:db", "busybox"],
        vec!["--network", "host", "--dns", "8.8.8.8", "--dns", "::1", "--dns-search", "example.com", "--dns-option", "ndots:2", "--add-host", "db:10.0.0.2", "--add-host", "v6=[::1]", "--add-host", "gw:host-gateway", "busybox"],
        vec!["--link", "db:database", "busybox"],
        vec!["--network", "appnet", "--network-alias", "web", "--ip", "10.1.0.5", "--ip6", "fd00::5", "--mac-address", "92:d0:c6:0a:29:33", "--link", "db", "--link-local-ip", "169.254.1.1", "busybox"],
        vec!["--network", "name=front,alias=www,driver-opt=com.example.mtu=1400,gw-priority=10", "--network", "back", "--ip", "10.2.0.2", "busybox"],
        vec!["--network", "none", "busybox"],
        vec!["--health-cmd", "wget -q localhost", "--health-interval", "1m30s", "--health-timeout", "500ms", "--health-start-period", "1.5s", "--health-start-interval", "2s", "--health-retries", "3", "busybox"],
        vec!["--health-retries", "5", "busybox"],
        vec!["--no-healthcheck", "busybox"],
        vec!["--stop-signal", "SIGINT", "--stop-timeout", "5", "--init", "busybox"],
        vec!["--init=false", "--stop-timeout", "0", "busybox"],
        vec!["--log-driver", "json-file", "--log-opt", "max-size=1m", "--log-opt", "max-file=3", "--runtime", "crun", "--isolation", "default", "--cidfile", cidfile, "busybox"],
        // Edge forms.
        vec!["-p", "::1:2222:22", "-p", "127.0.0.1::3000-3001", "-p", "9000-9002:9000-9002/tcp", "-p", "1.2.3.4:80:80/UDP", "--expose", "80/TCP", "busybox"],
        vec!["-e", "A=b=c", "-e", "EMPTY=", "-e", "A=override", "-a", "stderr", "--name", "/slashed", "busybox"],
        vec!["--security-opt", "label:disable", "--security-opt", "no-new-privileges=true", "--security-opt", "seccomp=unconfined", "--cap-add", "all", "--cap-add", "sys_admin", "--cap-add", "CAP_SYS_ADMIN", "busybox"],
        vec!["--device", "/dev/fuse:rw", "--device", "/dev//null:/dev/./nul", "busybox"],
        vec!["--mount", "type=bind,src=/a,dst=/b,bind-nonrecursive", "--mount", "type=bind,src=/c,dst=/d,bind-recursive=disabled", "--mount", "\"type=bind\",\"src=/with,comma\",dst=/e", "busybox"],
        vec!["--memory-swap", "512m", "-m", "256m", "--pids-limit", "-1", "--oom-score-adj", "1000", "--memory-swappiness", "0", "busybox"],
        vec!["--stop-signal", "9", "--restart", "always", "--health-cmd", "true", "--health-interval", "0s", "busybox"],
        vec!["--dns", "::ffff:1.1.1.1", "--dns-search", ".", "--add-host", "h=1.2.3.4", "--network", "bridge", "--link", "a", "busybox"],
        vec!["--network", "container:other", "busybox"],
        vec!["--tmpfs", "/a", "--tmpfs", "/a:size=1m", "--volumes-from", "x", "-v", "/x:/x:z", "-v", "named:/n:ro,nocopy", "busybox"],
        vec!["--ulimit", "nofile=10", "--ulimit", "nofile=20:30", "--group-add", "10", "--group-add", "wheel", "busybox"],
    ];
    let mut problems = Vec::new();
    for case in &cases {
        problems.extend(compare(&daemon, "run", case));
        let _ = std::fs::remove_file(cidfile);
    }
    // `create` shares the flags but not run's stdin and -e handling.
    for case in [
        &["-i", "-t", "busybox"][..],
        &["-a", "stdin", "-a", "stdout", "busybox", "cat"],
        &[
            "-e", "A=1", "-e", "B", "-e", "A=2", "--name", "db", "busybox",
        ],
        &[
            "-p",
            "80",
            "-v",
            "/srv:/srv",
            "--restart",
            "always",
            "busybox",
        ],
    ] {
        problems.extend(compare(&daemon, "create", case));
    }
    assert!(
        problems.is_empty(),
        "requests differ:\n{}",
        problems.join("\n")
    );
}
