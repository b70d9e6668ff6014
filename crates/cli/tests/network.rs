//! Networking through the `berth` binary: the default bridge, published
//! ports (from 127.0.0.1 and the host's own address), `-P`, user networks
//! and their isolation, `--link`, `container:`, macvlan, the manual veth
//! walk-through of seed 001, bad input, and no leftovers after `rm` or a
//! killed monitor. Each test has its own state root (so its own default
//! bridge and nftables table, removed by the guard) and unique network names.

mod common;

use std::net::TcpListener;
use std::process::Command;

use common::{berth, inspect, wait_until, Berth};

fn pid() -> u32 {
    std::process::id()
}

fn root_only() -> bool {
    if berth_testutil::is_root() {
        return true;
    }
    eprintln!("SKIPPED: needs root");
    false
}

/// A free TCP port on the host.
fn free_port() -> u16 {
    TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The host's first global IPv4 address (its "own address").
fn host_address() -> String {
    let out = Command::new("ip")
        .args(["-4", "-o", "route", "get", "1.1.1.1"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut words = text.split_whitespace();
    while let Some(w) = words.next() {
        if w == "src" {
            return words.next().unwrap().to_string();
        }
    }
    panic!("no source address in {text}");
}

fn curl(url: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-s", "-m", "5", url])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Starts busybox httpd serving `text` at /index.html.
fn httpd(b: &Berth, extra: &[&str], text: &str) -> String {
    let script =
        format!("mkdir -p /www && echo {text} > /www/index.html && exec httpd -f -p 80 -h /www");
    let mut args = vec!["run", "-d"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["busybox", "sh", "-c", &script]);
    b.ok(&args).trim().to_string()
}

fn wait_http(url: &str, want: &str) {
    wait_until(
        &format!("{url} to serve"),
        std::time::Duration::from_secs(10),
        || curl(url).is_some_and(|t| t.contains(want)),
    );
}

fn links_of(id: &str) -> Vec<String> {
    let out = Command::new("ip").args(["-o", "link"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&format!("bth{}", &id[..8])))
        .map(str::to_string)
        .collect()
}

#[test]
fn default_bridge_publish_fetch_and_cleanup() {
    if !root_only() {
        return;
    }
    let b = berth("net-publish");
    let port = free_port();
    let publish = format!("{port}:80");
    let id = httpd(&b, &["-p", &publish], "hello-publish");
    wait_http(&format!("http://127.0.0.1:{port}/"), "hello-publish");
    wait_http(
        &format!("http://{}:{port}/", host_address()),
        "hello-publish",
    );
    let ps = b.ok(&["ps"]);
    assert!(ps.contains(&format!("0.0.0.0:{port}->80/tcp")), "{ps}");
    assert_eq!(b.ok(&["port", &id]), format!("80/tcp -> 0.0.0.0:{port}\n"));
    assert_eq!(b.ok(&["port", &id, "80"]), format!("0.0.0.0:{port}\n"));
    let v = inspect(&b, &id);
    let ns = &v["NetworkSettings"];
    let ip = ns["IPAddress"].as_str().unwrap().to_string();
    assert!(!ip.is_empty(), "{ns}");
    assert_eq!(ns["Networks"]["bridge"]["IPAddress"], ip.as_str());
    let mac = ns["MacAddress"].as_str().unwrap();
    assert!(mac.starts_with("02:42:"), "{mac}");
    assert_eq!(ns["Ports"]["80/tcp"][0]["HostPort"], port.to_string());
    // The container reaches its gateway (the host) and has its name in /etc/hosts.
    let gw = ns["Gateway"].as_str().unwrap();
    b.ok(&["exec", &id, "ping", "-c", "1", "-W", "2", gw]);
    let hosts = b.ok(&["exec", &id, "cat", "/etc/hosts"]);
    assert!(hosts.contains(&format!("{ip}\t{}", &id[..12])), "{hosts}");
    assert_eq!(links_of(&id).len(), 1);
    b.ok(&["rm", "-f", &id]);
    // The kernel destroys the veth pair with the unpinned namespace.
    wait_until(
        "the veth pair to go",
        std::time::Duration::from_secs(5),
        || links_of(&id).is_empty(),
    );
    assert!(curl(&format!("http://127.0.0.1:{port}/")).is_none());
    let netns_dir = b.dir.join("run/netns");
    let left: Vec<_> = std::fs::read_dir(&netns_dir)
        .map(|r| r.flatten().collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn publish_all_exposed_ports() {
    if !root_only() {
        return;
    }
    let b = berth("net-publish-all");
    let cid = b.ok(&["create", "busybox", "true"]).trim().to_string();
    b.ok(&[
        "commit",
        "--change",
        "EXPOSE 80",
        &cid,
        &format!("exposed{}", pid()),
    ]);
    b.ok(&["rm", &cid]);
    let image = format!("exposed{}", pid());
    let script = "mkdir -p /www && echo hello-P > /www/index.html && exec httpd -f -p 80 -h /www";
    let id = b
        .ok(&["run", "-d", "-P", &image, "sh", "-c", script])
        .trim()
        .to_string();
    let line = b.ok(&["port", &id, "80/tcp"]);
    let host_port: u16 = line.trim().rsplit(':').next().unwrap().parse().unwrap();
    let (lo, hi) = {
        let r = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
        let v: Vec<u16> = r.split_whitespace().map(|x| x.parse().unwrap()).collect();
        (v[0], v[1])
    };
    assert!((lo..=hi).contains(&host_port), "{host_port}");
    wait_http(&format!("http://127.0.0.1:{host_port}/"), "hello-P");
    let ps = b.ok(&["ps", "--filter", "expose=80", "--format", "{{.Ports}}"]);
    assert!(ps.contains("->80/tcp"), "{ps}");
}

#[test]
fn host_port_in_use_is_refused_before_create() {
    if !root_only() {
        return;
    }
    let b = berth("net-port-busy");
    let busy = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let err = b.fails(
        &[
            "run",
            "-d",
            "-p",
            &format!("{port}:80"),
            "busybox",
            "sleep",
            "5",
        ],
        125,
    );
    assert!(err.contains(&port.to_string()), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(b.ok(&["ps", "-aq"]).trim().is_empty());
    // Taken by another container: refused too.
    drop(busy);
    let first = b
        .ok(&[
            "run",
            "-d",
            "-p",
            &format!("{port}:80"),
            "busybox",
            "sleep",
            "30",
        ])
        .trim()
        .to_string();
    let err = b.fails(
        &[
            "run",
            "-d",
            "-p",
            &format!("{port}:80"),
            "busybox",
            "sleep",
            "5",
        ],
        125,
    );
    assert!(err.contains("already allocated"), "{err}");
    b.ok(&["rm", "-f", &first]);
}

/// Seed 001: backend1 and frontend1 both reach middle (on both networks),
/// not each other.
#[test]
fn isolation_between_networks() {
    if !root_only() {
        return;
    }
    let b = berth("net-isolation");
    let back = format!("backend{}", pid());
    let front = format!("frontend{}", pid());
    b.ok(&["network", "create", &back]);
    b.ok(&["network", "create", &front]);
    let ls = b.ok(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    assert!(ls.contains(&format!("{back} bridge")), "{ls}");
    let run = |name: &str, net: &str| {
        b.ok(&[
            "run", "-d", "--net", net, "-h", name, "--name", name, "busybox", "sleep", "300",
        ]);
    };
    run("backend1", &back);
    run("frontend1", &front);
    run("middle", &back);
    b.ok(&["network", "connect", &front, "middle"]);
    let ip = |c: &str, net: &str| -> String {
        let nets: serde_json::Value = serde_json::from_str(&b.ok(&[
            "inspect",
            "-f",
            "{{json .NetworkSettings.Networks}}",
            c,
        ]))
        .unwrap();
        nets[net]["IPAddress"].as_str().unwrap().to_string()
    };
    let middle_back = ip("middle", &back);
    let middle_front = ip("middle", &front);
    let frontend1 = ip("frontend1", &front);
    assert!(!middle_front.is_empty());
    let ping = |from: &str, to: &str| {
        b.run(&["exec", from, "ping", "-c", "1", "-W", "1", to])
            .status
            .success()
    };
    assert!(ping("backend1", &middle_back));
    assert!(ping("frontend1", &middle_front));
    assert!(ping("middle", &frontend1));
    assert!(!ping("backend1", &frontend1), "backend1 reached frontend1");
    let v: serde_json::Value =
        serde_json::from_str(&b.ok(&["network", "inspect", &front])).unwrap();
    assert_eq!(v[0]["Containers"].as_object().unwrap().len(), 2, "{v}");
    assert_eq!(v[0]["Driver"], "bridge");
    let err = b.fails(&["network", "rm", &front], 1);
    assert!(err.contains("active endpoints"), "{err}");
    b.ok(&["network", "disconnect", &front, "middle"]);
    assert!(!ping("middle", &frontend1));
    b.ok(&["rm", "-f", "backend1", "frontend1", "middle"]);
    b.ok(&["network", "rm", &back, &front]);
}

#[test]
fn user_network_subnet_gateway_ip_alias_and_bad_input() {
    if !root_only() {
        return;
    }
    let b = berth("net-user");
    let net = format!("usernet{}", pid());
    b.ok(&["network", "create", "--label", "k=v", &net]);
    let v: serde_json::Value = serde_json::from_str(&b.ok(&["network", "inspect", &net])).unwrap();
    let subnet = v[0]["IPAM"]["Config"][0]["Subnet"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(v[0]["Labels"]["k"], "v");
    // An address of the subnet: its network address + 10.
    let base: std::net::Ipv4Addr = subnet.split('/').next().unwrap().parse().unwrap();
    let ip = std::net::Ipv4Addr::from(u32::from(base) + 10).to_string();
    let id = b
        .ok(&[
            "run",
            "-d",
            "--network",
            &net,
            "--ip",
            &ip,
            "--network-alias",
            "webalias",
            "--mac-address",
            "02:42:de:ad:be:ef",
            "busybox",
            "sleep",
            "300",
        ])
        .trim()
        .to_string();
    let addr = b.ok(&["exec", &id, "ip", "-o", "-4", "addr", "show", "eth0"]);
    assert!(addr.contains(&ip), "{addr}");
    let link = b.ok(&["exec", &id, "ip", "-o", "link", "show", "eth0"]);
    assert!(link.contains("02:42:de:ad:be:ef"), "{link}");
    let c = inspect(&b, &id);
    let ep = &c["NetworkSettings"]["Networks"][net.as_str()];
    assert_eq!(ep["IPAddress"], ip.as_str());
    assert_eq!(ep["Aliases"][0], "webalias");
    assert_eq!(c["HostConfig"]["NetworkMode"], net.as_str());
    // Taken address, address outside the subnet, unknown network.
    let err = b.fails(
        &[
            "run",
            "-d",
            "--network",
            &net,
            "--ip",
            &ip,
            "busybox",
            "true",
        ],
        125,
    );
    assert!(err.contains("already in use"), "{err}");
    let err = b.fails(
        &[
            "create",
            "--network",
            &net,
            "--ip",
            "203.0.113.7",
            "busybox",
            "true",
        ],
        125,
    );
    assert!(err.contains("203.0.113.7"), "{err}");
    let err = b.fails(
        &["create", "--network", "nosuchnet", "busybox", "true"],
        125,
    );
    assert!(err.contains("network nosuchnet not found"), "{err}");
    // network create: invalid, overlapping, gateway outside.
    let bad = format!("bad{}", pid());
    let err = b.fails(&["network", "create", "--subnet", "10.0.0.300/24", &bad], 1);
    assert!(err.contains("invalid subnet"), "{err}");
    let err = b.fails(&["network", "create", "--subnet", &subnet, &bad], 1);
    assert!(err.contains("overlaps"), "{err}");
    let err = b.fails(
        &[
            "network",
            "create",
            "--subnet",
            "10.250.7.0/24",
            "--gateway",
            "10.250.8.1",
            &bad,
        ],
        1,
    );
    assert!(err.contains("gateway"), "{err}");
    let err = b.fails(&["network", "create", &net], 1);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let ls = b.ok(&["network", "ls", "-q", "--filter", &format!("name={bad}")]);
    assert!(ls.trim().is_empty(), "{ls}");
    b.ok(&["rm", "-f", &id]);
    b.ok(&["network", "rm", &net]);
}

/// Seed 001: two `--network none` containers joined by a hand-made veth
/// pair through their pids.
#[test]
fn manual_veth_between_none_containers() {
    if !root_only() {
        return;
    }
    let b = berth("net-manual");
    let n1 = b
        .ok(&["run", "-d", "--net=none", "busybox", "sleep", "300"])
        .trim()
        .to_string();
    let n2 = b
        .ok(&["run", "-d", "--net=none", "busybox", "sleep", "300"])
        .trim()
        .to_string();
    let pid_of = |c: &str| {
        b.ok(&["inspect", "-f", "{{.State.Pid}}", c])
            .trim()
            .to_string()
    };
    let (p1, p2) = (pid_of(&n1), pid_of(&n2));
    let (v1, v2) = (
        format!("bthm{}a", pid() % 100000),
        format!("bthm{}b", pid() % 100000),
    );
    let ip = |args: &[&str]| {
        let st = Command::new("ip").args(args).status().unwrap();
        assert!(st.success(), "ip {args:?}");
    };
    ip(&["link", "add", &v1, "type", "veth", "peer", "name", &v2]);
    ip(&["link", "set", &v1, "netns", &p1]);
    ip(&["link", "set", &v2, "netns", &p2]);
    let nsip = |p: &str, args: &[&str]| {
        let st = Command::new("nsenter")
            .arg("-t")
            .arg(p)
            .arg("-n")
            .arg("ip")
            .args(args)
            .status()
            .unwrap();
        assert!(st.success(), "ip {args:?} in {p}");
    };
    nsip(&p1, &["addr", "add", "10.1.1.1/32", "dev", &v1]);
    nsip(&p2, &["addr", "add", "10.1.1.2/32", "dev", &v2]);
    nsip(&p1, &["link", "set", &v1, "up"]);
    nsip(&p2, &["link", "set", &v2, "up"]);
    nsip(&p1, &["route", "add", "10.1.1.2/32", "dev", &v1]);
    nsip(&p2, &["route", "add", "10.1.1.1/32", "dev", &v2]);
    b.ok(&["exec", &n1, "ping", "-c", "1", "-W", "2", "10.1.1.2"]);
    b.ok(&["rm", "-f", &n1, &n2]);
}

#[test]
fn legacy_link_env_and_hosts() {
    if !root_only() {
        return;
    }
    let b = berth("net-link");
    b.ok(&[
        "run",
        "-d",
        "--name",
        "data",
        "-e",
        "PG_VERSION=9.3",
        "--expose",
        "5432",
        "busybox",
        "sleep",
        "300",
    ]);
    let data_ip = b
        .ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "data"])
        .trim()
        .to_string();
    let env = b.ok(&[
        "run", "--rm", "--name", "web01", "--link", "data:db", "busybox", "env",
    ]);
    for want in [
        format!("DB_PORT=tcp://{data_ip}:5432"),
        format!("DB_PORT_5432_TCP=tcp://{data_ip}:5432"),
        format!("DB_PORT_5432_TCP_ADDR={data_ip}"),
        "DB_PORT_5432_TCP_PORT=5432".to_string(),
        "DB_PORT_5432_TCP_PROTO=tcp".to_string(),
        "DB_NAME=/web01/db".to_string(),
        "DB_ENV_PG_VERSION=9.3".to_string(),
    ] {
        assert!(env.contains(&want), "{want} missing in:\n{env}");
    }
    let hosts = b.ok(&[
        "run",
        "--rm",
        "--link",
        "data:db",
        "busybox",
        "cat",
        "/etc/hosts",
    ]);
    assert!(
        hosts
            .lines()
            .any(|l| l.starts_with(&data_ip) && l.contains("db") && l.contains("data")),
        "{hosts}"
    );
    b.ok(&[
        "run", "--rm", "--link", "data:db", "busybox", "ping", "-c", "1", "-W", "2", "db",
    ]);
    b.ok(&["rm", "-f", "data"]);
}

#[test]
fn container_mode_shares_the_network_namespace() {
    if !root_only() {
        return;
    }
    let b = berth("net-container-mode");
    let a = httpd(&b, &["--name", "pod"], "shared-ns");
    let ip_a = b.ok(&["exec", &a, "ip", "-o", "-4", "addr", "show", "eth0"]);
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        "container:pod",
        "busybox",
        "sh",
        "-c",
        "ip -o -4 addr show eth0; sleep 0.3; wget -q -O- http://127.0.0.1/",
    ]);
    let addr_a = ip_a.split_whitespace().nth(3).unwrap();
    assert!(out.contains(addr_a), "{out}");
    assert!(out.contains("shared-ns"), "{out}");
}

#[test]
fn macvlan_on_a_veth_parent() {
    if !root_only() {
        return;
    }
    // This kernel has no `dummy` driver: one end of a veth pair stands in.
    let b = berth("net-macvlan");
    let parent = format!("bthp{}", pid() % 1_000_000);
    let peer = format!("bthq{}", pid() % 1_000_000);
    struct Link(String);
    impl Drop for Link {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["link", "del", &self.0]).status();
        }
    }
    let st = Command::new("ip")
        .args([
            "link", "add", &parent, "type", "veth", "peer", "name", &peer,
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let _link = Link(parent.clone());
    Command::new("ip")
        .args(["link", "set", &parent, "up"])
        .status()
        .unwrap();
    let net = format!("mv{}", pid());
    let third = 100 + pid() % 100;
    let subnet = format!("10.251.{third}.0/24");
    b.ok(&[
        "network",
        "create",
        "-d",
        "macvlan",
        "--subnet",
        &subnet,
        "-o",
        &format!("parent={parent}"),
        &net,
    ]);
    let id = b
        .ok(&["run", "-d", "--network", &net, "busybox", "sleep", "300"])
        .trim()
        .to_string();
    let cpid = b
        .ok(&["inspect", "-f", "{{.State.Pid}}", &id])
        .trim()
        .to_string();
    let out = Command::new("nsenter")
        .args(["-t", &cpid, "-n", "ip", "-d", "-o", "link", "show", "eth0"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(out.contains("macvlan mode bridge"), "{out}");
    b.ok(&["rm", "-f", &id]);
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        &net,
        "busybox",
        "ip",
        "-o",
        "-4",
        "addr",
    ]);
    assert!(out.contains(&format!("10.251.{third}.2/24")), "{out}");
    b.ok(&["network", "rm", &net]);
    let err = b.fails(
        &[
            "network",
            "create",
            "-d",
            "macvlan",
            "--subnet",
            "10.252.0.0/24",
            &net,
        ],
        1,
    );
    assert!(err.contains("parent"), "{err}");
}

#[test]
fn killed_monitor_leaves_nothing_after_the_next_command() {
    if !root_only() {
        return;
    }
    let b = berth("net-kill9");
    let port = free_port();
    let id = b
        .ok(&[
            "run",
            "-d",
            "-p",
            &format!("{port}:80"),
            "busybox",
            "sleep",
            "300",
        ])
        .trim()
        .to_string();
    let monitor: i32 =
        std::fs::read_to_string(b.dir.join(format!("run/containers/{id}/monitor.pid")))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| inspect(&b, &id)["State"]["Pid"].as_i64().unwrap() as i32);
    let pid: i32 = inspect(&b, &id)["State"]["Pid"].as_i64().unwrap() as i32;
    // SAFETY: signalling processes this test started.
    unsafe {
        libc::kill(monitor, libc::SIGKILL);
        libc::kill(pid, libc::SIGKILL);
    }
    wait_until(
        "the container's process to die",
        std::time::Duration::from_secs(10),
        || {
            !std::path::Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z"))
        },
    );
    let ps = b.ok(&["ps", "-a"]);
    assert!(ps.contains("Exited"), "{ps}");
    wait_until(
        "the veth pair to go",
        std::time::Duration::from_secs(5),
        || links_of(&id).is_empty(),
    );
    assert!(!ps.contains(&format!("{port}->")), "{ps}");
    let netns = b.dir.join(format!("run/netns/{id}"));
    assert!(!netns.exists());
    let rules = Command::new("nft")
        .args(["list", "ruleset"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&rules.stdout);
    assert!(!text.contains(&id[..12]), "{text}");
}

/// The host's default gateway (outside every berth network).
fn outside_address() -> String {
    let out = Command::new("ip")
        .args(["-4", "-o", "route", "show", "default"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .skip_while(|w| *w != "via")
        .nth(1)
        .expect("a default route")
        .to_string()
}

#[test]
fn internal_network_and_icc_disabled() {
    if !root_only() {
        return;
    }
    let b = berth("net-internal");
    let outside = outside_address();
    let ping = |net: &str, target: &str| {
        b.run(&[
            "run",
            "--rm",
            "--network",
            net,
            "busybox",
            "ping",
            "-c",
            "1",
            "-W",
            "1",
            target,
        ])
        .status
        .success()
    };
    let open = format!("open{}", pid());
    let internal = format!("internal{}", pid());
    b.ok(&["network", "create", &open]);
    b.ok(&["network", "create", "--internal", &internal]);
    assert!(
        ping(&open, &outside),
        "an ordinary network reaches {outside}"
    );
    assert!(
        !ping(&internal, &outside),
        "an internal network reached {outside}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&b.ok(&["network", "inspect", &internal])).unwrap();
    assert_eq!(v[0]["Internal"], true);
    let noicc = format!("noicc{}", pid());
    b.ok(&[
        "network",
        "create",
        "-o",
        "com.docker.network.bridge.enable_icc=false",
        &noicc,
    ]);
    let a = b
        .ok(&["run", "-d", "--network", &noicc, "busybox", "sleep", "300"])
        .trim()
        .to_string();
    let a_ip: serde_json::Value =
        serde_json::from_str(&b.ok(&["inspect", "-f", "{{json .NetworkSettings.Networks}}", &a]))
            .unwrap();
    let a_ip = a_ip[noicc.as_str()]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!ping(&noicc, &a_ip), "icc=false let two containers talk");
    assert!(ping(&open, &outside));
    b.ok(&["rm", "-f", &a]);
    b.ok(&["network", "rm", &open, &internal, &noicc]);
}

/// Names and aliases on a user network resolve through berth-dns; the
/// default bridge has no name service. Needs the berth-dns binary (the
/// dns crate) beside berth.
#[test]
fn user_network_names_resolve() {
    if !root_only() {
        return;
    }
    let dns = std::env::var_os("BERTH_DNS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_BIN_EXE_berth")).with_file_name("berth-dns")
        });
    if !dns.exists() {
        eprintln!("SKIPPED: berth-dns is not built beside berth");
        return;
    }
    let b = berth("net-dns");
    let net = format!("dnsnet{}", pid());
    b.ok(&["network", "create", &net]);
    b.ok(&[
        "run",
        "-d",
        "--network",
        &net,
        "--name",
        "web",
        "--network-alias",
        "webalias",
        "busybox",
        "sleep",
        "300",
    ]);
    let ip: serde_json::Value = serde_json::from_str(&b.ok(&[
        "inspect",
        "-f",
        "{{json .NetworkSettings.Networks}}",
        "web",
    ]))
    .unwrap();
    let ip = ip[net.as_str()]["IPAddress"].as_str().unwrap().to_string();
    for name in ["web", "webalias"] {
        let out = b.ok(&[
            "run",
            "--rm",
            "--network",
            &net,
            "busybox",
            "nslookup",
            name,
        ]);
        assert!(out.contains(&ip), "{name}: {out}");
    }
    let resolv = b.ok(&[
        "run",
        "--rm",
        "--network",
        &net,
        "busybox",
        "cat",
        "/etc/resolv.conf",
    ]);
    let gw: serde_json::Value = serde_json::from_str(&b.ok(&["network", "inspect", &net])).unwrap();
    let gw = gw[0]["IPAM"]["Config"][0]["Gateway"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(resolv.contains(&format!("nameserver {gw}")), "{resolv}");
    b.ok(&["rm", "-f", "web"]);
    b.ok(&["network", "rm", &net]);
}

/// `-p` forms: `ip::cp` (ephemeral on one address), `hp:cp/udp`, ranges,
/// several `-p`; `port` lists them all.
#[test]
fn publish_forms() {
    if !root_only() {
        return;
    }
    let b = berth("net-publish-forms");
    let (u, r1) = (free_port(), free_port());
    // Two consecutive free ports for the range.
    let pair_free = |p: u16| (p..p + 2).all(|q| TcpListener::bind(("0.0.0.0", q)).is_ok());
    let r = if pair_free(r1) {
        r1
    } else {
        (20000..30000).find(|p| pair_free(*p)).unwrap()
    };
    let id = httpd(
        &b,
        &[
            "-p",
            "127.0.0.1::80",
            "-p",
            &format!("{u}:53/udp"),
            "-p",
            &format!("{r}-{}:81-82", r + 1),
        ],
        "hello-forms",
    );
    let ports = b.ok(&["port", &id]);
    assert!(ports.contains(&format!("53/udp -> 0.0.0.0:{u}")), "{ports}");
    assert!(ports.contains(&format!("81/tcp -> 0.0.0.0:{r}")), "{ports}");
    assert!(
        ports.contains(&format!("82/tcp -> 0.0.0.0:{}", r + 1)),
        "{ports}"
    );
    let local = b.ok(&["port", &id, "80"]);
    assert!(local.starts_with("127.0.0.1:"), "{local}");
    wait_http(&format!("http://{}/", local.trim()), "hello-forms");
    // Bound to 127.0.0.1 only: not published on the host's own address.
    let p = local.trim().rsplit(':').next().unwrap();
    assert!(curl(&format!("http://{}:{p}/", host_address())).is_none());
    let ps = b.ok(&["ps", "--filter", "publish=53/udp", "-q"]);
    assert_eq!(ps.trim(), &id[..12]);
    let v = inspect(&b, &id);
    assert_eq!(
        v["NetworkSettings"]["Ports"]["53/udp"][0]["HostPort"],
        u.to_string()
    );
}

#[test]
fn system_prune_removes_unused_user_networks() {
    if !root_only() {
        return;
    }
    let b = berth("net-sysprune");
    let (used, stopped, unused) = (
        format!("spu{}", pid()),
        format!("sps{}", pid()),
        format!("spn{}", pid()),
    );
    for n in [&used, &stopped, &unused] {
        b.ok(&["network", "create", n]);
    }
    let bridge_of = |n: &str| {
        b.ok(&[
            "network",
            "inspect",
            "-f",
            "{{index .Options \"com.docker.network.bridge.name\"}}",
            n,
        ])
        .trim()
        .to_string()
    };
    let unused_bridge = bridge_of(&unused);
    let has_link = |l: &str| std::path::Path::new("/sys/class/net").join(l).exists();
    assert!(has_link(&unused_bridge));
    b.ok(&["run", "-d", "--network", &used, "busybox", "sleep", "300"]);
    b.ok(&["create", "--network", &stopped, "busybox", "true"]);
    let out = b.ok(&["system", "prune", "-f"]);
    let section: Vec<&str> = out
        .split("Deleted Networks:\n")
        .nth(1)
        .unwrap_or_else(|| panic!("{out}"))
        .split("\n\n")
        .next()
        .unwrap()
        .lines()
        .collect();
    let mut section = section;
    section.sort();
    let mut want = vec![stopped.as_str(), unused.as_str()];
    want.sort();
    assert_eq!(section, want, "{out}");
    let ls = b.ok(&["network", "ls", "--format", "{{.Name}}"]);
    let names: Vec<&str> = ls.lines().collect();
    for n in ["bridge", "host", "none", used.as_str()] {
        assert!(names.contains(&n), "{ls}");
    }
    assert!(
        !names.contains(&unused.as_str()) && !names.contains(&stopped.as_str()),
        "{ls}"
    );
    assert!(!has_link(&unused_bridge));
}

/// The root's default bridge (`berth<tag of the root>`, see
/// `default_bridge_name` in the engine).
fn default_bridge_link(b: &Berth) -> String {
    // FNV-1a of the root path, its low 32 bits.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in b.root().as_os_str().as_encoded_bytes() {
        h ^= u64::from(*byte);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("berth{:08x}", h as u32)
}

fn link_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", name])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A `--network none` container needs no bridge and makes none; one that
/// asks for `host-gateway` gets the default bridge's gateway, the bridge
/// made then.
#[test]
fn none_containers_make_no_bridge_and_host_gateway_resolves() {
    if !root_only() {
        return;
    }
    let b = berth("net-nobridge");
    b.import_busybox("busybox", &[]);
    let bridge = default_bridge_link(&b);
    b.ok(&["run", "--rm", "--network", "none", "busybox", "true"]);
    assert!(!link_exists(&bridge), "{bridge} made for a none container");
    let hosts = b.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--add-host",
        "gw:host-gateway",
        "busybox",
        "cat",
        "/etc/hosts",
    ]);
    assert!(link_exists(&bridge), "{bridge} missing after host-gateway");
    let gateway = b.ok(&[
        "network",
        "inspect",
        "bridge",
        "-f",
        "{{range .IPAM.Config}}{{.Gateway}}{{end}}",
    ]);
    assert!(
        hosts.contains(&format!("{}\tgw", gateway.trim())),
        "{hosts} / {gateway}"
    );
}
