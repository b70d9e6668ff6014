//! berth's host networking: rtnetlink (links, addresses, routes), network
//! namespaces pinned at paths, IPv4 and IPv6 address management and berth's own
//! nftables tables (`ip` and `ip6`). No state of its own: the engine persists networks and
//! endpoints and calls in here to make the host match.

pub mod firewall;
pub mod ipam;
pub mod ipam6;
pub mod netlink;
pub mod netns;

pub use firewall::{FirewallState, NetworkRules, PortRule, Proto};
pub use ipam::Ipv4Net;
pub use ipam6::Ipv6Net;
pub use netlink::{link_index, Mac, Netlink};
pub use netns::Netns;

/// What IPv4 and IPv6 subnets have in common, for the checks that treat
/// both alike (a requested `--subnet` against other networks and routes).
pub trait Subnet: Copy + PartialEq + std::fmt::Display {
    /// The subnet with host bits cleared.
    fn network(&self) -> Self;
    fn prefix(&self) -> u8;
    fn overlaps(&self, other: &Self) -> bool;
}

impl Subnet for Ipv4Net {
    fn network(&self) -> Self {
        Ipv4Net::network(self)
    }
    fn prefix(&self) -> u8 {
        self.prefix
    }
    fn overlaps(&self, other: &Self) -> bool {
        Ipv4Net::overlaps(self, other)
    }
}

impl Subnet for Ipv6Net {
    fn network(&self) -> Self {
        Ipv6Net::network(self)
    }
    fn prefix(&self) -> u8 {
        self.prefix
    }
    fn overlaps(&self, other: &Self) -> bool {
        Ipv6Net::overlaps(self, other)
    }
}

/// What went wrong in a network operation.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A syscall or netlink request failed.
    #[error("{what}: {source}")]
    Sys {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// Bad input (a subnet, an address).
    #[error("{0}")]
    Invalid(String),
    /// Something is already taken (an address, a port).
    #[error("{0}")]
    Conflict(String),
    /// nft refused a script.
    #[error("nftables: {0}")]
    Firewall(String),
}

impl NetError {
    pub fn sys(what: impl Into<String>, source: std::io::Error) -> Self {
        NetError::Sys {
            what: what.into(),
            source,
        }
    }

    /// The errno of a failed syscall or netlink request.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetError::Sys { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}
