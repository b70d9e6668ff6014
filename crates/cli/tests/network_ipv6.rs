//! IPv6 on user networks (`network create --ipv6`) through the `berth`
//! binary: addresses, routes and names (ping6, AAAA) between containers,
//! httpd over IPv6 from another container and through a port published on
//! the host's IPv6 address, inspect fields, `--ip6`, isolation, bad input,
//! and no leftovers (addresses, routes, ip6 rules) after `rm`, a killed
//! monitor and `network rm`. Every test has its own state root and a random
//! unique local subnet.

mod common;

use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use common::{berth, inspect, wait_until, Berth};

fn root_only() -> bool {
    if berth_testutil::is_root() {
        return true;
    }
    eprintln!("SKIPPED: needs root");
    false
}

/// Whether the host has IPv6 enabled.
fn host_ipv6() -> bool {
    if std::fs::read_to_string("/proc/sys/net/ipv6/conf/all/disable_ipv6")
        .is_ok_and(|v| v.trim() == "0")
    {
        return true;
    }
    eprintln!("SKIPPED: IPv6 is disabled on this host");
    false
}

/// A random `fdXX:XXXX:XXXX::/64` prefix (without the `/64`), e.g.
/// `fd12:3456:789a::`.
fn random_ula() -> String {
    let mut b = [0u8; 5];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .unwrap();
    let mut octets = [0u8; 16];
    octets[0] = 0xfd;
    octets[1..6].copy_from_slice(&b);
    // Canonical text (no leading zeros), as `ip` prints it.
    let text = std::net::Ipv6Addr::from(octets).to_string();
    if text.ends_with("::") {
        text
    } else {
        format!("{text}::")
    }
}

fn unique(name: &str) -> String {
    let mut b = [0u8; 2];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .unwrap();
    format!("{name}{}x{:02x}{:02x}", std::process::id(), b[0], b[1])
}

/// The host's global IPv6 source address, if it has one with a route out.
fn host_ipv6_address() -> Option<String> {
    let out = Command::new("ip")
        .args(["-6", "-o", "route", "get", "2001:4860:4860::8888"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut words = text.split_whitespace();
    while let Some(w) = words.next() {
        if w == "src" {
            return words.next().map(str::to_string);
        }
    }
    None
}

fn free_port() -> u16 {
    TcpListener::bind("[::]:0")
        .or_else(|_| TcpListener::bind("0.0.0.0:0"))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn curl(url: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-s", "-g", "-m", "5", url])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn sh(cmd: &[&str]) -> String {
    let out = Command::new(cmd[0]).args(&cmd[1..]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Host state that mentions `needle`: links, IPv6 addresses and routes,
/// the nftables ruleset.
fn host_mentions(needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    for cmd in [
        &["ip", "-o", "link"][..],
        &["ip", "-6", "-o", "addr"][..],
        &["ip", "-6", "route"][..],
        &["nft", "list", "ruleset"][..],
    ] {
        out.extend(
            sh(cmd)
                .lines()
                .filter(|l| l.contains(needle))
                .map(|l| format!("{}: {l}", cmd.join(" "))),
        );
    }
    out
}

/// Creates an `--ipv6` network with a random ULA /64; returns its prefix
/// (`fdXX:XXXX:XXXX::`).
fn v6_network(b: &Berth, name: &str, extra: &[&str]) -> String {
    let prefix = random_ula();
    let subnet = format!("{prefix}/64");
    let mut args = vec!["network", "create", "--ipv6", "--subnet", &subnet];
    args.extend_from_slice(extra);
    args.push(name);
    b.ok(&args);
    prefix
}

fn settings(b: &Berth, c: &str, net: &str) -> serde_json::Value {
    inspect(b, c)["NetworkSettings"]["Networks"][net].clone()
}

#[test]
fn ipv6_containers_ping_resolve_and_serve_each_other() {
    if !root_only() || !host_ipv6() {
        return;
    }
    let b = berth("net6-basic");
    let net = unique("v6n");
    let prefix = v6_network(&b, &net, &[]);
    let subnet = format!("{prefix}/64");
    let bridge = b.ok(&[
        "network",
        "inspect",
        "-f",
        "{{index .Options \"com.docker.network.bridge.name\"}}",
        &net,
    ]);
    let bridge = bridge.trim().to_string();
    // The network's document: IPv6 enabled, both subnets.
    let doc: serde_json::Value =
        serde_json::from_str(&b.ok(&["network", "inspect", &net])).unwrap();
    let doc = &doc[0];
    assert_eq!(doc["EnableIPv6"], true, "{doc}");
    let config = doc["IPAM"]["Config"].as_array().unwrap();
    assert_eq!(config.len(), 2, "{doc}");
    assert!(
        !config[0]["Subnet"].as_str().unwrap().contains(':'),
        "{doc}"
    );
    assert_eq!(config[1]["Subnet"], subnet.as_str(), "{doc}");
    let gw6 = format!("{prefix}1");
    assert_eq!(config[1]["Gateway"], gw6.as_str(), "{doc}");
    // The bridge holds the gateway, usable at once (no DAD).
    let addrs = sh(&["ip", "-6", "-o", "addr", "show", "dev", &bridge]);
    let gw_line = addrs
        .lines()
        .find(|l| l.contains(&format!("{gw6}/64")))
        .unwrap_or_else(|| panic!("{addrs}"));
    assert!(!gw_line.contains("tentative"), "{addrs}");

    let fixed = format!("{prefix}77");
    let web_script =
        "mkdir -p /www && echo hello-v6 > /www/index.html && exec httpd -f -p 80 -h /www";
    let port = free_port();
    let publish = format!("{port}:80");
    let web = b
        .ok(&[
            "run",
            "-d",
            "--name",
            &unique("web"),
            "--network",
            &net,
            "--ip6",
            &fixed,
            "-p",
            &publish,
            "busybox",
            "sh",
            "-c",
            web_script,
        ])
        .trim()
        .to_string();
    let client_name = unique("cli");
    let client = b
        .ok(&[
            "run",
            "-d",
            "--name",
            &client_name,
            "--network",
            &net,
            "busybox",
            "sleep",
            "300",
        ])
        .trim()
        .to_string();
    let web_name = inspect(&b, &web)["Name"]
        .as_str()
        .unwrap()
        .trim_start_matches('/')
        .to_string();

    // Inspect: the container's IPv6 fields, also through templates.
    let s = settings(&b, &web, &net);
    assert_eq!(s["GlobalIPv6Address"], fixed.as_str(), "{s}");
    assert_eq!(s["GlobalIPv6PrefixLen"], 64, "{s}");
    assert_eq!(s["IPv6Gateway"], gw6.as_str(), "{s}");
    assert_eq!(s["IPAMConfig"]["IPv6Address"], fixed.as_str(), "{s}");
    let tmpl = format!(
        "{{{{.NetworkSettings.Networks.{net}.GlobalIPv6Address}}}}/{{{{.NetworkSettings.Networks.{net}.GlobalIPv6PrefixLen}}}}"
    );
    let client_ip6 = b.ok(&["inspect", "-f", &tmpl, &client]);
    let client_ip6 = client_ip6.trim();
    assert!(
        client_ip6.starts_with(&prefix) && client_ip6.ends_with("/64"),
        "{client_ip6}"
    );
    let client_ip6 = client_ip6.trim_end_matches("/64").to_string();
    let net_doc: serde_json::Value =
        serde_json::from_str(&b.ok(&["network", "inspect", &net])).unwrap();
    assert_eq!(
        net_doc[0]["Containers"][&web]["IPv6Address"],
        format!("{fixed}/64").as_str()
    );

    // In the container: the address is not tentative, the default route
    // is via the gateway.
    let addr = b.ok(&["exec", &client, "ip", "-6", "addr", "show", "dev", "eth0"]);
    assert!(addr.contains(&format!("{client_ip6}/64")), "{addr}");
    assert!(
        !addr
            .lines()
            .any(|l| l.contains(&client_ip6) && l.contains("tentative")),
        "{addr}"
    );
    let routes = b.ok(&["exec", &client, "ip", "-6", "route"]);
    assert!(routes.contains(&format!("default via {gw6}")), "{routes}");

    // ping6 by address and by name; AAAA and A by name.
    b.ok(&["exec", &client, "ping", "-6", "-c", "1", "-W", "3", &fixed]);
    b.ok(&[
        "exec",
        &web,
        "ping",
        "-6",
        "-c",
        "1",
        "-W",
        "3",
        &client_ip6,
    ]);
    let ping = b.ok(&[
        "exec", &client, "ping", "-6", "-c", "1", "-W", "3", &web_name,
    ]);
    assert!(ping.contains(&fixed), "{ping}");
    let aaaa = b.ok(&["exec", &client, "nslookup", "-type=AAAA", &web_name]);
    assert!(aaaa.contains(&fixed), "{aaaa}");
    let a = b.ok(&["exec", &client, "nslookup", "-type=A", &web_name]);
    assert!(!a.contains(&fixed) && a.contains("Address"), "{a}");

    // httpd over IPv6 from the other container, by address and by name.
    let url = format!("http://[{fixed}]/");
    wait_until("httpd over IPv6", Duration::from_secs(10), || {
        b.run(&["exec", &client, "wget", "-q", "-O", "-", &url])
            .stdout
            .starts_with(b"hello-v6")
    });
    // Through the published port on the host's IPv6 address.
    match host_ipv6_address() {
        Some(host6) => {
            let url = format!("http://[{host6}]:{port}/");
            wait_until(
                "the port published over IPv6",
                Duration::from_secs(10),
                || curl(&url).is_some_and(|t| t.contains("hello-v6")),
            );
            let hairpin = b.ok(&["exec", &client, "wget", "-q", "-O", "-", &url]);
            assert!(hairpin.contains("hello-v6"), "{hairpin}");
        }
        None => eprintln!("SKIPPED part: the host has no global IPv6 address with a route out"),
    }
    // And still over IPv4.
    wait_until(
        "the port published over IPv4",
        Duration::from_secs(10),
        || curl(&format!("http://127.0.0.1:{port}/")).is_some_and(|t| t.contains("hello-v6")),
    );

    // `network connect --ip6` of a running container.
    let other = unique("v6o");
    let other_prefix = v6_network(&b, &other, &[]);
    let other_ip = format!("{other_prefix}99");
    b.ok(&["network", "connect", "--ip6", &other_ip, &other, &client]);
    let addr = b.ok(&["exec", &client, "ip", "-6", "addr", "show", "dev", "eth1"]);
    assert!(addr.contains(&format!("{other_ip}/64")), "{addr}");
    b.ok(&["network", "disconnect", &other, &client]);
    b.ok(&["network", "rm", &other]);

    // rm, network rm: nothing of the subnet is left on the host.
    b.ok(&["rm", "-f", &web, &client]);
    b.ok(&["network", "rm", &net]);
    let ula = prefix.trim_end_matches("::");
    wait_until(
        "the network's IPv6 state to go",
        Duration::from_secs(5),
        || host_mentions(ula).is_empty() && host_mentions(&bridge).is_empty(),
    );
    assert!(curl(&format!("http://127.0.0.1:{port}/")).is_none());
}

#[test]
fn ipv6_without_subnet_gets_a_free_unique_local_64() {
    if !root_only() || !host_ipv6() {
        return;
    }
    let b = berth("net6-ula");
    let (n1, n2) = (unique("ula"), unique("ulb"));
    b.ok(&["network", "create", "--ipv6", &n1]);
    b.ok(&["network", "create", "--ipv6", &n2]);
    let subnet6 = |n: &str| {
        let doc: serde_json::Value =
            serde_json::from_str(&b.ok(&["network", "inspect", n])).unwrap();
        doc[0]["IPAM"]["Config"][1]["Subnet"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (s1, s2) = (subnet6(&n1), subnet6(&n2));
    for s in [&s1, &s2] {
        assert!(s.starts_with("fd") && s.ends_with("::/64"), "{s}");
    }
    assert_ne!(s1, s2);
    // The subnet is now routed to the bridge, and only there.
    let routes = sh(&["ip", "-6", "route"]);
    let net1 = s1.trim_end_matches("/64");
    assert_eq!(
        routes
            .lines()
            .filter(|l| l.starts_with(&s1) || l.starts_with(net1))
            .count(),
        1,
        "{routes}"
    );
    // `network ls` shows IPv6 on.
    let ls = b.ok(&[
        "network",
        "ls",
        "--filter",
        &format!("name={n1}"),
        "--format",
        "{{.IPv6}}",
    ]);
    assert_eq!(ls.trim(), "true");
    let id = b
        .ok(&["run", "-d", "--network", &n1, "busybox", "sleep", "300"])
        .trim()
        .to_string();
    let ip6 = settings(&b, &id, &n1)["GlobalIPv6Address"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(ip6.starts_with(net1), "{ip6} in {s1}");
    // The host reaches the container through the bridge.
    let out = Command::new("busybox")
        .args(["ping", "-6", "-c", "1", "-W", "3", &ip6])
        .output();
    match out {
        Ok(out) => assert!(out.status.success(), "{out:?}"),
        Err(e) => eprintln!("SKIPPED part: no busybox on the host to ping with: {e}"),
    }
}

#[test]
fn ipv6_networks_are_isolated_and_internal_and_icc_hold() {
    if !root_only() || !host_ipv6() {
        return;
    }
    let b = berth("net6-iso");
    let (na, nb, ni) = (unique("isa"), unique("isb"), unique("isi"));
    v6_network(&b, &na, &[]);
    v6_network(&b, &nb, &[]);
    v6_network(&b, &ni, &["--internal"]);
    let run = |n: &str| {
        b.ok(&["run", "-d", "--network", n, "busybox", "sleep", "300"])
            .trim()
            .to_string()
    };
    let (a, bb, i) = (run(&na), run(&nb), run(&ni));
    let ip6 = |c: &str, n: &str| {
        settings(&b, c, n)["GlobalIPv6Address"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let b_ip = ip6(&bb, &nb);
    let a_gw = settings(&b, &a, &na)["IPv6Gateway"]
        .as_str()
        .unwrap()
        .to_string();
    // Its own gateway answers; another network's container does not.
    b.ok(&["exec", &a, "ping", "-6", "-c", "1", "-W", "2", &a_gw]);
    let o = b.run(&["exec", &a, "ping", "-6", "-c", "1", "-W", "2", &b_ip]);
    assert!(!o.status.success(), "isolation failed: {o:?}");
    // An internal network has no IPv6 default route and nothing leaves it.
    let routes = b.ok(&["exec", &i, "ip", "-6", "route"]);
    assert!(!routes.contains("default"), "{routes}");
    let o = b.run(&["exec", &i, "ping", "-6", "-c", "1", "-W", "2", &b_ip]);
    assert!(!o.status.success(), "internal failed: {o:?}");
    let rules = sh(&["nft", "list", "ruleset"]);
    assert!(
        rules.contains(&format!("network {ni}: internal")),
        "{rules}"
    );
    assert!(
        rules.contains(&format!("network {na}: isolation")),
        "{rules}"
    );
    // enable_icc=false: containers of one network cannot reach each other
    // over IPv6 either (needs br_netfilter, as for IPv4).
    if !std::path::Path::new("/proc/sys/net/bridge").exists() {
        eprintln!("SKIPPED part: no br_netfilter module for enable_icc=false");
        return;
    }
    let nc = unique("icc");
    v6_network(
        &b,
        &nc,
        &["-o", "com.docker.network.bridge.enable_icc=false"],
    );
    let (c1, c2) = (run(&nc), run(&nc));
    let gw = settings(&b, &c1, &nc)["IPv6Gateway"]
        .as_str()
        .unwrap()
        .to_string();
    b.ok(&["exec", &c1, "ping", "-6", "-c", "1", "-W", "2", &gw]);
    let o = b.run(&[
        "exec",
        &c1,
        "ping",
        "-6",
        "-c",
        "1",
        "-W",
        "2",
        &ip6(&c2, &nc),
    ]);
    assert!(!o.status.success(), "icc=false failed: {o:?}");
}

#[test]
fn macvlan_with_ipv6() {
    if !root_only() || !host_ipv6() {
        return;
    }
    // This kernel has no `dummy` driver: one end of a veth pair stands in.
    let b = berth("net6-macvlan");
    let tag = unique("");
    let suffix = &tag[tag.len() - 4..];
    let (parent, peer) = (format!("bthp6{suffix}"), format!("bthq6{suffix}"));
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
    let net = unique("mv6");
    let prefix = random_ula();
    let third = u8::from_str_radix(&suffix[..2], 16).unwrap();
    let subnet4 = format!("10.253.{third}.0/24");
    let subnet6 = format!("{prefix}/64");
    let parent_opt = format!("parent={parent}");
    // Without an IPv6 subnet a macvlan network cannot pick one.
    let err = b.fails(
        &[
            "network",
            "create",
            "-d",
            "macvlan",
            "--ipv6",
            "--subnet",
            &subnet4,
            "-o",
            &parent_opt,
            &net,
        ],
        1,
    );
    assert!(err.contains("needs an IPv6 --subnet"), "{err}");
    b.ok(&[
        "network",
        "create",
        "-d",
        "macvlan",
        "--ipv6",
        "--subnet",
        &subnet4,
        "--subnet",
        &subnet6,
        "-o",
        &parent_opt,
        &net,
    ]);
    let out = b.ok(&[
        "run",
        "--rm",
        "--network",
        &net,
        "busybox",
        "sh",
        "-c",
        "ip -o -6 addr; ip -6 route",
    ]);
    assert!(out.contains(&format!("{prefix}2/64")), "{out}");
    assert!(!out.contains("tentative"), "{out}");
    assert!(out.contains(&format!("default via {prefix}1")), "{out}");
    b.ok(&["network", "rm", &net]);
}

#[test]
fn aaaa_on_an_ipv4_only_network_is_an_empty_answer() {
    if !root_only() {
        return;
    }
    let b = berth("net6-nodata");
    let net = unique("v4n");
    b.ok(&["network", "create", &net]);
    let name = unique("n4");
    let id = b
        .ok(&[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            &net,
            "busybox",
            "sleep",
            "300",
        ])
        .trim()
        .to_string();
    // NOERROR with no answers: busybox nslookup exits 0 and prints no
    // address; a missing name is NXDOMAIN.
    let out = b.run(&["exec", &id, "nslookup", "-type=AAAA", &name]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{out:?}");
    assert!(
        !text.contains("NXDOMAIN") && !text.contains("Name:"),
        "{text}"
    );
    let a = b.ok(&["exec", &id, "nslookup", "-type=A", &name]);
    assert!(a.contains("Name:"), "{a}");
    let missing = b.run(&["exec", &id, "nslookup", "-type=AAAA", "no-such-name-berth"]);
    assert!(
        String::from_utf8_lossy(&missing.stdout).contains("NXDOMAIN"),
        "{missing:?}"
    );
}

#[test]
fn bad_ipv6_input_is_refused_and_creates_nothing() {
    if !root_only() || !host_ipv6() {
        return;
    }
    let b = berth("net6-bad");
    let taken = unique("tkn");
    let prefix = v6_network(&b, &taken, &[]);
    let other = random_ula();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--ipv6".into(), "--subnet".into(), "fd00:zz::/64".into()],
            "invalid subnet",
        ),
        (
            vec!["--ipv6".into(), "--subnet".into(), format!("{other}/127")],
            "no room",
        ),
        (
            vec![
                "--ipv6".into(),
                "--subnet".into(),
                format!("{other}/64"),
                "--gateway".into(),
                "2001:db8:ffff::1".into(),
            ],
            "no matching subnet for gateway",
        ),
        (
            vec![
                "--ipv6".into(),
                "--subnet".into(),
                format!("{other}/64"),
                "--ip-range".into(),
                "2001:db8::/80".into(),
            ],
            "must lie inside subnet",
        ),
        (
            vec!["--ipv6".into(), "--subnet".into(), format!("{prefix}/48")],
            "overlaps",
        ),
        (vec!["--subnet".into(), format!("{other}/64")], "add --ipv6"),
        (
            vec!["--ipv6".into(), "--gateway".into(), format!("{other}1")],
            "corresponding IPv6 subnet",
        ),
        (
            vec![
                "--ipv6".into(),
                "--subnet".into(),
                format!("{other}/64"),
                "--subnet".into(),
                format!("{}/64", random_ula()),
            ],
            "one IPv6 --subnet",
        ),
    ];
    for (extra, want) in cases {
        let name = unique("bad");
        let mut args = vec!["network", "create"];
        args.extend(extra.iter().map(String::as_str));
        args.push(&name);
        // `network create` exits 1 on a daemon error, as Docker's does.
        let err = b.fails(&args, 1);
        assert!(err.contains(want), "{extra:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{extra:?}: {err}");
        let ls = b.ok(&["network", "ls", "--format", "{{.Name}}"]);
        assert!(!ls.lines().any(|l| l == name), "{extra:?}: {ls}");
    }
    // No bridge but the taken network's and the default one is left.
    let ula = other.trim_end_matches("::");
    assert!(host_mentions(ula).is_empty(), "{:?}", host_mentions(ula));

    // --ip6 outside the subnet, on the gateway, taken, or on a v4 network.
    let v4 = unique("v4");
    b.ok(&["network", "create", &v4]);
    let gw = format!("{prefix}1");
    let taken_ip = format!("{prefix}5");
    b.ok(&[
        "run",
        "-d",
        "--network",
        &taken,
        "--ip6",
        &taken_ip,
        "busybox",
        "sleep",
        "300",
    ]);
    for (net, ip, want) in [
        (taken.as_str(), "2001:db8::5", "does not belong"),
        (taken.as_str(), gw.as_str(), "in use"),
        (taken.as_str(), taken_ip.as_str(), "in use"),
        (v4.as_str(), "fd00:1::5", "no IPv6 subnet"),
    ] {
        let before = b.ok(&["ps", "-aq"]);
        let err = b.fails(
            &["create", "--network", net, "--ip6", ip, "busybox", "true"],
            125,
        );
        assert!(err.contains(want), "{net} {ip}: {err}");
        assert_eq!(b.ok(&["ps", "-aq"]), before);
    }
    let err = b.fails(
        &[
            "create",
            "--network",
            &taken,
            "--ip6",
            "10.0.0.1",
            "busybox",
        ],
        125,
    );
    assert!(err.contains("invalid IPv6 address"), "{err}");
    // A host port taken on IPv6 only ([::], IPV6_V6ONLY) is taken too: the
    // port would be DNAT'ed over IPv6 as well.
    let v6only = socket2_v6only_listener();
    let port = v6only.local_addr().unwrap().port();
    let before = b.ok(&["ps", "-aq"]);
    let err = b.fails(
        &[
            "create",
            "--network",
            &taken,
            "-p",
            &format!("{port}:80"),
            "busybox",
        ],
        125,
    );
    assert!(err.contains(&port.to_string()), "{err}");
    assert_eq!(b.ok(&["ps", "-aq"]), before);
}

/// A TCP listener on `[::]:0` that takes IPv6 only.
fn socket2_v6only_listener() -> TcpListener {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket(2)/setsockopt(2)/bind(2)/listen(2) on a new fd
    // this function owns; it is handed to TcpListener, which closes it.
    unsafe {
        let fd = libc::socket(libc::AF_INET6, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0);
        let one: libc::c_int = 1;
        let r = libc::setsockopt(
            fd,
            libc::IPPROTO_IPV6,
            libc::IPV6_V6ONLY,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        assert_eq!(r, 0);
        let mut addr: libc::sockaddr_in6 = std::mem::zeroed();
        addr.sin6_family = libc::AF_INET6 as libc::sa_family_t;
        let r = libc::bind(
            fd,
            (&addr as *const libc::sockaddr_in6).cast(),
            std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
        );
        assert_eq!(r, 0);
        assert_eq!(libc::listen(fd, 1), 0);
        TcpListener::from_raw_fd(fd)
    }
}

#[test]
fn killed_monitor_and_network_reset_leave_no_ipv6_state() {
    if !root_only() || !host_ipv6() {
        return;
    }
    let b = berth("net6-kill9");
    let net = unique("k9");
    let prefix = v6_network(&b, &net, &[]);
    let port = free_port();
    let id = b
        .ok(&[
            "run",
            "-d",
            "--network",
            &net,
            "-p",
            &format!("{port}:80"),
            "busybox",
            "sleep",
            "300",
        ])
        .trim()
        .to_string();
    let rules = sh(&["nft", "list", "ruleset"]);
    assert!(
        rules.contains(&format!("container {}", &id[..12])),
        "{rules}"
    );
    let pid = inspect(&b, &id)["State"]["Pid"].as_i64().unwrap() as i32;
    let monitor: i32 =
        std::fs::read_to_string(b.dir.join(format!("run/containers/{id}/monitor.pid")))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(pid);
    // SAFETY: signalling processes this test started.
    unsafe {
        libc::kill(monitor, libc::SIGKILL);
        libc::kill(pid, libc::SIGKILL);
    }
    wait_until(
        "the container to be seen exited",
        Duration::from_secs(10),
        || b.ok(&["ps", "-a"]).contains("Exited"),
    );
    wait_until("its IPv6 rules to go", Duration::from_secs(5), || {
        !sh(&["nft", "list", "ruleset"]).contains(&id[..12])
    });
    // `network reset` removes the bridge and the ip6 table with it.
    let ula = prefix.trim_end_matches("::");
    assert!(!host_mentions(ula).is_empty());
    b.ok(&["network", "reset"]);
    assert!(host_mentions(ula).is_empty(), "{:?}", host_mentions(ula));
    let rules = sh(&["nft", "list", "ruleset"]);
    assert!(!rules.contains(&format!("network {net}")), "{rules}");
}
