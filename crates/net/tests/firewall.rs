//! berth's tables applied to the real nftables: the script (`ip` and `ip6`
//! tables) loads, replaces itself atomically, and an empty state removes
//! both tables.

use std::net::Ipv4Addr;
use std::process::Command;

use berth_net::firewall::{apply, delete_table, FirewallState, NetworkRules, PortRule, Proto};

struct Table(String);

impl Drop for Table {
    fn drop(&mut self) {
        let _ = delete_table(&self.0);
    }
}

fn list(table: &str) -> Option<String> {
    list_family("ip", table)
}

fn list_family(family: &str, table: &str) -> Option<String> {
    let out = Command::new("nft")
        .args(["list", "table", family, table])
        .output()
        .expect("nft");
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn apply_replace_delete() {
    if !berth_testutil::is_root() {
        eprintln!("SKIPPED: needs root");
        return;
    }
    let table = Table(format!("berth_test_{}", std::process::id()));
    let mut st = FirewallState {
        networks: vec![NetworkRules {
            name: "n1".into(),
            bridge: "berthfwtest".into(),
            subnet: "10.199.0.0/24".parse().unwrap(),
            subnet6: Some("fd99:1:2::/64".parse().unwrap()),
            internal: false,
            icc: true,
        }],
        ports: vec![PortRule {
            container: "abcdef0123456789".into(),
            proto: Proto::Tcp,
            host_ip: None,
            host_port: 18080,
            container_ip: Ipv4Addr::new(10, 199, 0, 2),
            container_ip6: Some("fd99:1:2::2".parse().unwrap()),
            container_port: 80,
        }],
    };
    apply(&table.0, &st).unwrap();
    let text = list(&table.0).unwrap();
    assert!(
        text.contains("tcp dport 18080 dnat to 10.199.0.2:80"),
        "{text}"
    );
    assert!(text.contains("masquerade"), "{text}");
    let text6 = list_family("ip6", &table.0).unwrap();
    assert!(
        text6.contains("tcp dport 18080 dnat to [fd99:1:2::2]:80"),
        "{text6}"
    );
    assert!(
        text6.contains("ip6 saddr fd99:1:2::/64 masquerade"),
        "{text6}"
    );
    st.ports.clear();
    apply(&table.0, &st).unwrap();
    let text = list(&table.0).unwrap();
    assert!(!text.contains("dnat to"), "{text}");
    assert!(!list_family("ip6", &table.0).unwrap().contains("dnat to"));
    apply(&table.0, &FirewallState::default()).unwrap();
    assert!(list(&table.0).is_none());
    assert!(list_family("ip6", &table.0).is_none());
    // Deleting a missing table is fine.
    delete_table(&table.0).unwrap();
}
