//! IPv4 address management: subnets (parse, overlap), picking a free subnet
//! that collides with no host route or other network, and picking a free
//! address in a subnet (or checking a requested one). Pure: the engine
//! persists what is allocated.

use std::collections::HashSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use crate::NetError;

/// An IPv4 subnet, `addr/prefix` (the address may have host bits, as a
/// gateway's `172.20.0.1/16`; [`Ipv4Net::network`] strips them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Net {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Ipv4Net {
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Self, NetError> {
        if prefix > 32 {
            return Err(NetError::Invalid(format!(
                "invalid prefix length {prefix}: at most 32"
            )));
        }
        Ok(Self { addr, prefix })
    }

    pub fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }

    /// The subnet with host bits cleared.
    pub fn network(&self) -> Self {
        Self {
            addr: Ipv4Addr::from(u32::from(self.addr) & self.mask()),
            prefix: self.prefix,
        }
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.addr) & self.mask()
    }

    pub fn overlaps(&self, other: &Ipv4Net) -> bool {
        let m = self.mask() & other.mask();
        u32::from(self.addr) & m == u32::from(other.addr) & m
    }

    /// Whether `other` lies entirely inside this subnet.
    pub fn covers(&self, other: &Ipv4Net) -> bool {
        other.prefix >= self.prefix && self.contains(other.addr)
    }

    /// The `n`-th address of the subnet (0 = the network address).
    pub fn nth(&self, n: u32) -> Option<Ipv4Addr> {
        let size = if self.prefix == 0 {
            u64::from(u32::MAX) + 1
        } else {
            1u64 << (32 - u32::from(self.prefix))
        };
        (u64::from(n) < size).then(|| Ipv4Addr::from(u32::from(self.network().addr) + n))
    }

    /// Number of addresses in the subnet.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Ipv4Net {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || NetError::Invalid(format!("invalid CIDR address: {s}"));
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        if prefix > 32 {
            return Err(bad());
        }
        Ok(Self { addr, prefix })
    }
}

/// The pools subnets are picked from, in order: Docker's `172.17–31/16`
/// (172.17 itself is left to Docker's `docker0`), then `/24`s of
/// `192.168.0.0/16` and of `10.89.0.0/16` (podman's next pool after
/// `10.88/16`).
pub fn default_pools() -> Vec<(Ipv4Net, u8)> {
    vec![
        (
            Ipv4Net {
                addr: Ipv4Addr::new(172, 18, 0, 0),
                prefix: 15,
            },
            16,
        ),
        (
            Ipv4Net {
                addr: Ipv4Addr::new(172, 20, 0, 0),
                prefix: 14,
            },
            16,
        ),
        (
            Ipv4Net {
                addr: Ipv4Addr::new(172, 24, 0, 0),
                prefix: 13,
            },
            16,
        ),
        (
            Ipv4Net {
                addr: Ipv4Addr::new(192, 168, 0, 0),
                prefix: 16,
            },
            24,
        ),
        (
            Ipv4Net {
                addr: Ipv4Addr::new(10, 89, 0, 0),
                prefix: 16,
            },
            24,
        ),
    ]
}

/// Subnets no network may take even when nothing routes them yet: Docker's
/// default bridge and podman's.
pub fn reserved_subnets() -> Vec<Ipv4Net> {
    vec![
        Ipv4Net {
            addr: Ipv4Addr::new(172, 17, 0, 0),
            prefix: 16,
        },
        Ipv4Net {
            addr: Ipv4Addr::new(10, 88, 0, 0),
            prefix: 16,
        },
    ]
}

/// The first subnet of the pools that overlaps none of `used`.
pub fn pick_subnet(pools: &[(Ipv4Net, u8)], used: &[Ipv4Net]) -> Option<Ipv4Net> {
    for (pool, size) in pools {
        let step = 1u64 << (32 - u32::from(*size));
        let count = pool.size() / step;
        for i in 0..count {
            let start = u32::from(pool.network().addr) as u64 + i * step;
            let cand = Ipv4Net {
                addr: Ipv4Addr::from(u32::try_from(start).ok()?),
                prefix: *size,
            };
            if !used.iter().any(|u| u.overlaps(&cand)) {
                return Some(cand);
            }
        }
    }
    None
}

/// The IPv4 routes of the host's main table (`/proc/net/route`), except
/// default routes: subnets a new network must not shadow.
pub fn host_routes() -> Vec<Ipv4Net> {
    let text = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    parse_proc_routes(&text)
}

fn parse_proc_routes(text: &str) -> Vec<Ipv4Net> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 {
            continue;
        }
        let (Ok(dst), Ok(mask)) = (u32::from_str_radix(f[1], 16), u32::from_str_radix(f[7], 16))
        else {
            continue;
        };
        // Little-endian hex of network-order words.
        let dst = Ipv4Addr::from(u32::from_be(dst));
        let mask = u32::from_be(mask);
        if mask == 0 {
            continue;
        }
        out.push(Ipv4Net {
            addr: dst,
            prefix: u8::try_from(mask.count_ones()).unwrap_or(32),
        });
    }
    out
}

/// The first free address of `range` (within `subnet`), skipping the
/// network and broadcast addresses and everything in `used`.
pub fn pick_address(
    subnet: &Ipv4Net,
    range: Option<&Ipv4Net>,
    used: &HashSet<Ipv4Addr>,
) -> Option<Ipv4Addr> {
    let pool = range.copied().unwrap_or(*subnet).network();
    let net = subnet.network();
    let bcast = subnet.broadcast();
    (0..u32::try_from(pool.size()).unwrap_or(u32::MAX))
        .filter_map(|n| pool.nth(n))
        .find(|ip| *ip != net.addr && *ip != bcast && !used.contains(ip))
}

/// Checks a requested address: inside the subnet, not its network or
/// broadcast address, not taken.
pub fn check_address(
    subnet: &Ipv4Net,
    ip: Ipv4Addr,
    used: &HashSet<Ipv4Addr>,
) -> Result<(), NetError> {
    if !subnet.contains(ip) {
        return Err(NetError::Invalid(format!(
            "invalid address {ip}: it does not belong to any of this network's subnets ({})",
            subnet.network()
        )));
    }
    if ip == subnet.network().addr || ip == subnet.broadcast() {
        return Err(NetError::Invalid(format!(
            "invalid address {ip}: it is the network's {} address",
            if ip == subnet.broadcast() {
                "broadcast"
            } else {
                "network"
            }
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

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn parse_and_overlap() {
        assert_eq!(net("172.20.0.1/16").network(), net("172.20.0.0/16"));
        assert!(net("10.0.0.0/8").overlaps(&net("10.1.2.0/24")));
        assert!(!net("10.1.3.0/24").overlaps(&net("10.1.2.0/24")));
        assert!(net("10.0.0.0/8").covers(&net("10.1.2.0/24")));
        assert!(!net("10.1.2.0/24").covers(&net("10.0.0.0/8")));
        for bad in ["10.0.0.0", "10.0.0.0/33", "10.0.0/8", "x/8", "10.0.0.0/"] {
            assert!(bad.parse::<Ipv4Net>().is_err(), "{bad}");
        }
        assert_eq!(net("10.1.2.0/24").broadcast(), Ipv4Addr::new(10, 1, 2, 255));
    }

    #[test]
    fn picks_first_free_subnet() {
        let used = vec![net("172.18.0.0/16"), net("172.16.0.0/12")];
        let got = pick_subnet(&default_pools(), &used).unwrap();
        assert_eq!(got, net("192.168.0.0/24"));
        let used = vec![net("172.18.0.0/16"), net("172.19.5.0/24")];
        assert_eq!(
            pick_subnet(&default_pools(), &used).unwrap(),
            net("172.20.0.0/16")
        );
    }

    #[test]
    fn proc_routes() {
        let text =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        assert_eq!(parse_proc_routes(text), vec![net("192.0.2.0/24")]);
    }

    #[test]
    fn addresses() {
        let s = net("10.5.0.0/24");
        let mut used = HashSet::new();
        used.insert(Ipv4Addr::new(10, 5, 0, 1));
        assert_eq!(
            pick_address(&s, None, &used),
            Some(Ipv4Addr::new(10, 5, 0, 2))
        );
        let r = net("10.5.0.128/25");
        assert_eq!(
            pick_address(&s, Some(&r), &used),
            Some(Ipv4Addr::new(10, 5, 0, 128))
        );
        assert!(check_address(&s, Ipv4Addr::new(10, 6, 0, 2), &used).is_err());
        assert!(check_address(&s, Ipv4Addr::new(10, 5, 0, 1), &used).is_err());
        assert!(check_address(&s, Ipv4Addr::new(10, 5, 0, 255), &used).is_err());
        assert!(check_address(&s, Ipv4Addr::new(10, 5, 0, 9), &used).is_ok());
        let tiny = net("10.5.0.0/30");
        used.insert(Ipv4Addr::new(10, 5, 0, 2));
        assert_eq!(pick_address(&tiny, None, &used), None);
    }
}
