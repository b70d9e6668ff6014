//! Real links in throwaway namespaces: a fake "host" namespace holds the
//! bridge, two "container" namespaces get veth peers, addresses and routes;
//! they must reach each other and the gateway. Nothing touches the real
//! host's namespace; every namespace is unpinned on drop.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_net::{link_index, Mac, Netns};
use berth_testutil::TempDir;

struct Pinned(Vec<PathBuf>);

impl Drop for Pinned {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = Netns::remove(p);
        }
    }
}

fn in_ns(ns: &Path, args: &[&str]) -> std::process::Output {
    Command::new("nsenter")
        .arg(format!("--net={}", ns.display()))
        .args(args)
        .output()
        .expect("nsenter")
}

#[test]
fn bridge_veth_address_route() {
    if !berth_testutil::is_root() {
        eprintln!("SKIPPED: needs root");
        return;
    }
    let dir = TempDir::new("net-links").unwrap();
    let host_path = dir.join("host");
    let c1_path = dir.join("c1");
    let c2_path = dir.join("c2");
    let _pins = Pinned(vec![host_path.clone(), c1_path.clone(), c2_path.clone()]);
    let host = Netns::create(&host_path).unwrap();
    let c1 = Netns::create(&c1_path).unwrap();
    let c2 = Netns::create(&c2_path).unwrap();
    let gw = Ipv4Addr::new(10, 123, 0, 1);
    host.run(|| {
        let mut nl = berth_net::Netlink::open().unwrap();
        nl.create_bridge("brtest", None).unwrap();
        let br = link_index("brtest").unwrap();
        nl.add_address(br, IpAddr::V4(gw), 24).unwrap();
        for (i, c) in [&c1, &c2].into_iter().enumerate() {
            let ip = Ipv4Addr::new(10, 123, 0, 2 + i as u8);
            nl.create_veth(
                &format!("bthtest{i}"),
                Some(br),
                "eth0",
                c.fd(),
                Some(Mac::from_ipv4(ip)),
                None,
            )
            .unwrap();
            nl.set_hairpin(link_index(&format!("bthtest{i}")).unwrap(), true)
                .unwrap();
        }
    })
    .unwrap();
    for (i, c) in [&c1, &c2].into_iter().enumerate() {
        let ip = Ipv4Addr::new(10, 123, 0, 2 + i as u8);
        let idx = c
            .run(|| link_index("eth0"))
            .unwrap()
            .expect("eth0 in container");
        let mut nl = c.netlink().unwrap();
        nl.add_address(idx, IpAddr::V4(ip), 24).unwrap();
        nl.set_up(idx, true).unwrap();
        nl.add_route(None, Some(IpAddr::V4(gw)), None).unwrap();
    }
    let out = in_ns(&c1_path, &["ip", "-o", "link", "show", "eth0"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("02:42:0a:7b:00:02"), "{text}");
    let out = in_ns(&c1_path, &["ip", "route"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("default via 10.123.0.1 dev eth0"), "{text}");
    for target in ["10.123.0.3", "10.123.0.1"] {
        let out = in_ns(&c1_path, &["busybox", "ping", "-c", "1", "-W", "2", target]);
        assert!(
            out.status.success(),
            "ping {target}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    // Deleting the host side removes the pair.
    host.run(|| {
        let mut nl = berth_net::Netlink::open().unwrap();
        nl.delete_link("bthtest0").unwrap();
        nl.delete_link("bthtest0").unwrap();
        assert!(link_index("bthtest0").is_none());
    })
    .unwrap();
    assert!(c1.run(|| link_index("eth0")).unwrap().is_none());
}

#[test]
fn macvlan_in_namespace() {
    if !berth_testutil::is_root() {
        eprintln!("SKIPPED: needs root");
        return;
    }
    let dir = TempDir::new("net-macvlan").unwrap();
    let host_path = dir.join("host");
    let c_path = dir.join("c");
    let _pins = Pinned(vec![host_path.clone(), c_path.clone()]);
    let host = Netns::create(&host_path).unwrap();
    let c = Netns::create(&c_path).unwrap();
    // This kernel has no `dummy` driver: one end of a veth pair is the parent.
    let st = in_ns(
        &host_path,
        &[
            "ip", "link", "add", "dummy0", "type", "veth", "peer", "name", "dummy1",
        ],
    );
    assert!(st.status.success());
    host.run(|| {
        let mut nl = berth_net::Netlink::open().unwrap();
        let parent = link_index("dummy0").unwrap();
        nl.set_up(parent, true).unwrap();
        nl.create_macvlan("eth0", parent, c.fd(), None).unwrap();
    })
    .unwrap();
    let out = in_ns(&c_path, &["ip", "-d", "link", "show", "eth0"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("macvlan mode bridge"), "{text}");
}

#[test]
fn netns_remove_is_idempotent() {
    if !berth_testutil::is_root() {
        eprintln!("SKIPPED: needs root");
        return;
    }
    let dir = TempDir::new("net-ns").unwrap();
    let p = dir.join("ns");
    let ns = Netns::create(&p).unwrap();
    let lo_up = in_ns(&p, &["ip", "-o", "link", "show", "lo"]);
    assert!(String::from_utf8_lossy(&lo_up.stdout).contains("UP"));
    drop(ns);
    Netns::remove(&p).unwrap();
    Netns::remove(&p).unwrap();
    assert!(!p.exists());
}
