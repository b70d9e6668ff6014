//! IPv6 address management: subnets (parse, overlap), picking a unique
//! local /64 (`fdXX:XXXX:XXXX::/64`, RFC 4193) that collides with no host
//! route or other network, and picking a free address in a subnet (or
//! checking a requested one). Pure like `ipam`: the engine persists what is
//! allocated.

use std::collections::HashSet;
use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

use crate::NetError;

/// An IPv6 subnet, `addr/prefix` (the address may have host bits, as a
/// gateway's `fd00::1/64`; [`Ipv6Net::network`] strips them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Net {
    pub addr: Ipv6Addr,
    pub prefix: u8,
}

/// At most this many addresses are scanned for a free one: a /64 has 2^64.
const SCAN_LIMIT: u128 = 1 << 20;

impl Ipv6Net {
    pub fn new(addr: Ipv6Addr, prefix: u8) -> Result<Self, NetError> {
        if prefix > 128 {
            return Err(NetError::Invalid(format!(
                "invalid prefix length {prefix}: at most 128"
            )));
        }
        Ok(Self { addr, prefix })
    }

    pub fn mask(&self) -> u128 {
        if self.prefix == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(self.prefix))
        }
    }

    /// The subnet with host bits cleared.
    pub fn network(&self) -> Self {
        Self {
            addr: Ipv6Addr::from(u128::from(self.addr) & self.mask()),
            prefix: self.prefix,
        }
    }

    pub fn contains(&self, ip: Ipv6Addr) -> bool {
        u128::from(ip) & self.mask() == u128::from(self.addr) & self.mask()
    }

    pub fn overlaps(&self, other: &Ipv6Net) -> bool {
        let m = self.mask() & other.mask();
        u128::from(self.addr) & m == u128::from(other.addr) & m
    }

    /// Whether `other` lies entirely inside this subnet.
    pub fn covers(&self, other: &Ipv6Net) -> bool {
        other.prefix >= self.prefix && self.contains(other.addr)
    }

    /// The `n`-th address of the subnet (0 = the subnet-router anycast
    /// address).
    pub fn nth(&self, n: u128) -> Option<Ipv6Addr> {
        let host_bits = 128 - u32::from(self.prefix);
        if host_bits < 128 && n >> host_bits != 0 {
            return None;
        }
        Some(Ipv6Addr::from(u128::from(self.network().addr) | n))
    }

    /// Number of addresses, saturated at `u128::MAX`.
    pub fn size(&self) -> u128 {
        let host_bits = 128 - u32::from(self.prefix);
        if host_bits >= 128 {
            u128::MAX
        } else {
            1u128 << host_bits
        }
    }
}

impl fmt::Display for Ipv6Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Ipv6Net {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || NetError::Invalid(format!("invalid CIDR address: {s}"));
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv6Addr = a.parse().map_err(|_| bad())?;
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        if prefix > 128 {
            return Err(bad());
        }
        Ok(Self { addr, prefix })
    }
}

/// The unique local /64 with the 40-bit global ID `global_id` and subnet
/// ID 0: `fdXX:XXXX:XXXX::/64`.
pub fn ula_subnet(global_id: u64) -> Ipv6Net {
    let gid = u128::from(global_id & 0xff_ffff_ffff);
    Ipv6Net {
        addr: Ipv6Addr::from((0xfdu128 << 120) | (gid << 80)),
        prefix: 64,
    }
}

/// The first ULA /64 made from `global_ids` (random 40-bit numbers, tried
/// in order) that overlaps none of `used`.
pub fn pick_ula_subnet(
    global_ids: impl IntoIterator<Item = u64>,
    used: &[Ipv6Net],
) -> Option<Ipv6Net> {
    global_ids
        .into_iter()
        .map(ula_subnet)
        .find(|cand| !used.iter().any(|u| u.overlaps(cand)))
}

/// The IPv6 routes of the host's main table (`/proc/net/ipv6_route`)
/// that a new network must not shadow: not default, link-local, multicast
/// or loopback routes.
pub fn host_routes() -> Vec<Ipv6Net> {
    let text = std::fs::read_to_string("/proc/net/ipv6_route").unwrap_or_default();
    parse_proc_routes(&text)
}

fn parse_proc_routes(text: &str) -> Vec<Ipv6Net> {
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 10 {
            continue;
        }
        let (Ok(dst), Ok(prefix)) = (u128::from_str_radix(f[0], 16), u8::from_str_radix(f[1], 16))
        else {
            continue;
        };
        let net = Ipv6Net {
            addr: Ipv6Addr::from(dst),
            prefix,
        };
        let special = prefix == 0
            || net.addr.is_loopback()
            || net.addr.is_multicast()
            || (u128::from(net.addr) >> 118) == 0x3fa; // fe80::/10
        if !special && prefix <= 128 && !out.contains(&net) {
            out.push(net);
        }
    }
    out
}

/// The first free address of `range` (within `subnet`), skipping the
/// subnet-router anycast address (`::0`) and everything in `used`.
pub fn pick_address(
    subnet: &Ipv6Net,
    range: Option<&Ipv6Net>,
    used: &HashSet<Ipv6Addr>,
) -> Option<Ipv6Addr> {
    let pool = range.copied().unwrap_or(*subnet).network();
    let anycast = subnet.network().addr;
    (0..pool.size().min(SCAN_LIMIT))
        .filter_map(|n| pool.nth(n))
        .find(|ip| *ip != anycast && !used.contains(ip))
}

/// Checks a requested address: inside the subnet, not its subnet-router
/// anycast address, not taken.
pub fn check_address(
    subnet: &Ipv6Net,
    ip: Ipv6Addr,
    used: &HashSet<Ipv6Addr>,
) -> Result<(), NetError> {
    if !subnet.contains(ip) {
        return Err(NetError::Invalid(format!(
            "invalid address {ip}: it does not belong to any of this network's subnets ({})",
            subnet.network()
        )));
    }
    if ip == subnet.network().addr {
        return Err(NetError::Invalid(format!(
            "invalid address {ip}: it is the subnet-router anycast address of {}",
            subnet.network()
        )));
    }
    if used.contains(&ip) {
        return Err(NetError::Conflict(format!(
            "address {ip} is already in use on this network"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv6Net {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn parse_and_overlap() {
        assert_eq!(net("2001:db8:1::1/64").network(), net("2001:db8:1::/64"));
        assert!(net("2001:db8::/32").overlaps(&net("2001:db8:1::/64")));
        assert!(!net("2001:db8:2::/64").overlaps(&net("2001:db8:1::/64")));
        assert!(net("2001:db8::/32").covers(&net("2001:db8:1::/64")));
        assert!(!net("2001:db8:1::/64").covers(&net("2001:db8::/32")));
        for bad in [
            "2001:db8::",
            "2001:db8::/129",
            "2001:db8::/",
            "2001:db8::/0064",
            "10.0.0.0/8",
            "x/64",
            "2001:db8:::/64",
        ] {
            assert!(bad.parse::<Ipv6Net>().is_err(), "{bad}");
        }
        assert_eq!(net("::/0").size(), u128::MAX);
        assert_eq!(net("fd00::/126").size(), 4);
        assert_eq!(net("fd00::/126").nth(3), Some(ip("fd00::3")));
        assert_eq!(net("fd00::/126").nth(4), None);
    }

    #[test]
    fn ula_subnets() {
        assert_eq!(ula_subnet(0x12_3456_789a), net("fd12:3456:789a::/64"));
        // Only 40 bits of the id are used.
        assert_eq!(
            ula_subnet(0xffff_ff12_3456_789a),
            net("fd12:3456:789a::/64")
        );
        let used = vec![net("fd12:3456:789a::/48"), net("fd00::/16")];
        let got = pick_ula_subnet([0x12_3456_789a, 0x00_1111_2222, 0xab_cdef_0123], &used);
        assert_eq!(got, Some(net("fdab:cdef:123::/64")));
        assert_eq!(pick_ula_subnet([0x12_3456_789a], &used), None);
    }

    #[test]
    fn proc_routes() {
        let text = "\
20010db8000100000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003     eth0
00000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000002 00000000 80200001       lo
ff000000000000000000000000000000 08 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000003 00000000 00000001     eth0
fd001234000000000000000000000000 30 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
";
        assert_eq!(
            parse_proc_routes(text),
            vec![net("2001:db8:1::/64"), net("fd00:1234::/48")]
        );
    }

    #[test]
    fn addresses() {
        let s = net("fd05::/64");
        let mut used = HashSet::new();
        used.insert(ip("fd05::1"));
        assert_eq!(pick_address(&s, None, &used), Some(ip("fd05::2")));
        let r = net("fd05::8000/113");
        assert_eq!(pick_address(&s, Some(&r), &used), Some(ip("fd05::8000")));
        assert!(check_address(&s, ip("fd06::2"), &used).is_err());
        assert!(check_address(&s, ip("fd05::1"), &used).is_err());
        assert!(check_address(&s, ip("fd05::"), &used).is_err());
        assert!(check_address(&s, ip("fd05::ffff:1"), &used).is_ok());
        let tiny = net("fd05::/127");
        used.insert(ip("fd05::1"));
        assert_eq!(pick_address(&tiny, None, &used), None);
    }
}
