//! Ports, networks, DNS and hosts entries.

use super::*;

fn binding(ip: &str, port: &str) -> PortBinding {
    PortBinding {
        host_ip: ip.to_string(),
        host_port: port.to_string(),
    }
}

#[test]
fn publish_forms() {
    let r = run(&[
        "-p",
        "8080:80",
        "-p",
        "127.0.0.1:9090:90",
        "-p",
        "127.0.0.1::70",
        "-p",
        "60",
        "-p",
        "53:53/udp",
        "-p",
        "132/sctp",
        "-p",
        "[::1]:8443:443",
        "-p",
        "::1:2222:22",
        "-p",
        "8080:80",
        "-p",
        "published=7000,target=700,protocol=udp",
        "-p",
        "5000-5010:500",
        "-P",
    ]);
    let b = &r.host_config.port_bindings;
    assert_eq!(b["80/tcp"], vec![binding("", "8080"), binding("", "8080")]);
    assert_eq!(b["90/tcp"], vec![binding("127.0.0.1", "9090")]);
    assert_eq!(b["70/tcp"], vec![binding("127.0.0.1", "")]);
    assert_eq!(b["60/tcp"], vec![binding("", "")]);
    assert_eq!(b["53/udp"], vec![binding("", "53")]);
    assert_eq!(b["132/sctp"], vec![binding("", "")]);
    assert_eq!(b["443/tcp"], vec![binding("::1", "8443")]);
    assert_eq!(b["22/tcp"], vec![binding("::1", "2222")]);
    assert_eq!(b["700/udp"], vec![binding("", "7000")]);
    assert_eq!(b["500/tcp"], vec![binding("", "5000-5010")]);
    assert_eq!(b.len(), 10);
    let exposed: Vec<&String> = r.config.exposed_ports.as_ref().unwrap().keys().collect();
    assert_eq!(exposed.len(), 10);
    assert!(r.host_config.publish_all_ports);

    let r = run(&["-p", "8080-8081:80-81/udp"]);
    let b = &r.host_config.port_bindings;
    assert_eq!(b["80/udp"], vec![binding("", "8080")]);
    assert_eq!(b["81/udp"], vec![binding("", "8081")]);
    let r = run(&["-p", "127.0.0.1::3000-3001"]);
    assert_eq!(
        r.host_config.port_bindings["3001/tcp"],
        vec![binding("127.0.0.1", "")]
    );

    assert_eq!(run(&[]).config.exposed_ports, None);
    assert!(run(&[]).host_config.port_bindings.is_empty());

    for (spec, message) in [
        ("80/foo", "invalid proto: foo"),
        ("1.2.3:80:80", "invalid IP address: 1.2.3"),
        (
            "8000-8001:80-82",
            "invalid ranges specified for container and host Ports: 80-82 and 8000-8001",
        ),
        ("x:80", "invalid hostPort: x"),
        ("80-x", "invalid containerPort: 80-x"),
        ("70000", "invalid containerPort: 70000"),
        ("8080:", "no port specified: 8080:<empty>"),
        (
            "target=80,bogus",
            "invalid publish opts format (should be name=value but got 'bogus')",
        ),
    ] {
        assert_eq!(run_err(&["-p", spec]), message, "-p {spec}");
    }
}

#[test]
fn expose_ports_and_ranges() {
    let r = run(&["--expose", "80", "--expose", "7000-7002/udp", "-p", "80:80"]);
    let exposed: Vec<&str> = r
        .config
        .exposed_ports
        .as_ref()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(exposed, ["7000/udp", "7001/udp", "7002/udp", "80/tcp"]);
    assert_eq!(r.config.exposed_ports.unwrap()["80/tcp"], Empty {});
    assert_eq!(
        run_err(&["--expose", "80:80"]),
        "invalid port format for --expose: 80:80"
    );
    assert_eq!(
        run_err(&["--expose", "x"]),
        "invalid range format for --expose: x, error: strconv.ParseUint: parsing \"x\": invalid syntax"
    );
    assert_eq!(
        run_err(&["--expose", "90-80"]),
        "invalid range format for --expose: 90-80, error: invalid range specified for port: 90-80"
    );
}

#[test]
fn networks_and_dns() {
    let r = run(&[
        "--network",
        "host",
        "--dns",
        "8.8.8.8",
        "--dns",
        " ::ffff:1.1.1.1 ",
        "--dns-search",
        "example.com.",
        "--dns-option",
        "ndots:2",
        "--add-host",
        "db:10.0.0.2",
        "--add-host",
        "v6=[::1]",
        "--add-host",
        "gw:host-gateway",
        "--link",
        "db:database",
    ]);
    let h = &r.host_config;
    assert_eq!(h.network_mode, "host");
    assert_eq!(h.dns, strings(&["8.8.8.8", "1.1.1.1"]));
    assert_eq!(h.dns_search, strings(&["example.com"]));
    assert_eq!(h.dns_options, strings(&["ndots:2"]));
    assert_eq!(
        h.extra_hosts,
        Some(strings(&["db:10.0.0.2", "v6:::1", "gw:host-gateway"]))
    );
    assert_eq!(h.links, Some(strings(&["db:database"])));
    assert_eq!(run(&[]).host_config.network_mode, "");

    let args = parse_run(&[
        "--network",
        "appnet",
        "--network-alias",
        "web",
        "--ip",
        "10.1.0.5",
        "--ip6",
        "fd00::5",
        "--mac-address",
        "92:d0:c6:0a:29:33",
        "--link",
        "db",
        "--link-local-ip",
        "169.254.1.1",
        "busybox",
    ]);
    let request = args.to_request().unwrap();
    assert_eq!(request.host_config.network_mode, "appnet");
    assert_eq!(request.config.mac_address, "92:d0:c6:0a:29:33");
    assert_eq!(
        args.create.networks().unwrap(),
        [NetworkAttachment {
            network: "appnet".into(),
            aliases: strings(&["web"]),
            links: strings(&["db"]),
            ipv4_address: "10.1.0.5".into(),
            ipv6_address: "fd00::5".into(),
            link_local_ips: strings(&["169.254.1.1"]),
            mac_address: "92:d0:c6:0a:29:33".into(),
            ..Default::default()
        }]
    );
    // Long syntax, and several networks (flags go to the first).
    let args = parse_run(&[
        "--network",
        "name=front,alias=www,driver-opt=com.example.mtu=1400,gw-priority=10",
        "--network",
        "back",
        "--ip",
        "10.2.0.2",
        "busybox",
    ]);
    assert_eq!(args.to_request().unwrap().host_config.network_mode, "front");
    let networks = args.create.networks().unwrap();
    assert_eq!(networks.len(), 2);
    assert_eq!(networks[0].aliases, strings(&["www"]));
    assert_eq!(networks[0].driver_opts["com.example.mtu"], "1400");
    assert_eq!(
        (networks[0].gw_priority, networks[0].ipv4_address.as_str()),
        (10, "10.2.0.2")
    );
    assert_eq!(
        networks[1],
        NetworkAttachment {
            network: "back".into(),
            ..Default::default()
        }
    );
    // Without --network: Docker's "default" endpoint, legacy links stay off it.
    let args = parse_run(&["--link", "db", "busybox"]);
    assert_eq!(
        args.create.networks().unwrap(),
        [NetworkAttachment {
            network: "default".into(),
            ..Default::default()
        }]
    );

    for (flags, message) in [
        (&["--network-alias", "web"][..], "network-scoped aliases are only supported for user-defined networks"),
        (&["--network", "host", "--network", "appnet"], "conflicting options: cannot attach both user-defined and non-user-defined network-modes"),
        (&["--network", "a", "--network", "a"], "network \"a\" is specified multiple times"),
        (&["--ip", "1.2.3.4", "--network", "name=n,ip=1.2.3.5"], "conflicting options: cannot specify both --ip and per-network IPv4 address"),
        (&["--network", "name=n,foo=bar"], "invalid argument \"name=n,foo=bar\" for \"--network\" flag: invalid field key foo"),
        (&["--network", "alias=a"], "invalid argument \"alias=a\" for \"--network\" flag: network name/id is not specified"),
        (&["--network", "name=n,gw-priority=x"], "invalid argument \"name=n,gw-priority=x\" for \"--network\" flag: invalid gw-priority (x): invalid syntax"),
        (&["--network", "container:"], "invalid network mode: container:"),
        (&["--network", "n", "--ip", "10.0.0.300"], "invalid IPv4 address: 10.0.0.300"),
        (&["--network", "n", "--ip6", "10.0.0.3"], "invalid IPv6 address: 10.0.0.3"),
        (&["--mac-address", "zz:zz"], "zz:zz is not a valid mac address"),
        (&["--dns", "dns.google"], "invalid argument \"dns.google\" for \"--dns\" flag: IP address is not correctly formatted: dns.google"),
        (&["--dns-search", "-bad-"], "invalid argument \"-bad-\" for \"--dns-search\" flag: -bad- is not a valid domain"),
        (&["--add-host", "nohost"], "invalid argument \"nohost\" for \"--add-host\" flag: bad format for add-host: \"nohost\""),
        (&["--add-host", "h:1.2.3"], "invalid argument \"h:1.2.3\" for \"--add-host\" flag: invalid IP address in add-host: \"1.2.3\""),
        (&["--link", "a:b:c"], "invalid argument \"a:b:c\" for \"--link\" flag: bad format for links: a:b:c"),
    ] {
        assert_eq!(run_err(flags), message, "{flags:?}");
    }
}
