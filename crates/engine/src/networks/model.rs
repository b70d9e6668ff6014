//! Networks and endpoints as stored: Docker's network model (driver, IPAM,
//! options, labels) and each container's endpoint on a network.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use berth_net::{Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

use crate::error::EngineError;

/// The name of Docker's default network (`docker0`'s).
pub const DEFAULT_NETWORK: &str = "bridge";
/// `-o com.docker.network.bridge.name=…`.
pub const OPT_BRIDGE_NAME: &str = "com.docker.network.bridge.name";
/// `-o com.docker.network.bridge.enable_icc=false`.
pub const OPT_ICC: &str = "com.docker.network.bridge.enable_icc";
/// `-o parent=eth0` (macvlan).
pub const OPT_PARENT: &str = "parent";

/// A network's settings (what `network create` was given, completed with
/// the picked subnet and gateway).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkConfig {
    /// `bridge`, `macvlan`, `host` or `null`.
    pub driver: String,
    pub subnet: String,
    pub gateway: String,
    #[serde(rename = "IPRange")]
    pub ip_range: String,
    pub internal: bool,
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    /// The IPv6 subnet, gateway and range of an `--ipv6` network (empty
    /// otherwise).
    #[serde(rename = "Subnet6")]
    pub subnet6: String,
    #[serde(rename = "Gateway6")]
    pub gateway6: String,
    #[serde(rename = "IPRange6")]
    pub ip_range6: String,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    /// The host link: the bridge (bridge driver) or the parent (macvlan).
    pub host_link: String,
}

/// A stored network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRecord {
    pub id: String,
    pub name: String,
    pub created: chrono::DateTime<chrono::Utc>,
    pub config: NetworkConfig,
}

impl NetworkRecord {
    /// Whether containers on it get an address (not `host`/`none`).
    pub fn has_ipam(&self) -> bool {
        matches!(self.config.driver.as_str(), "bridge" | "macvlan")
    }

    pub fn is_bridge(&self) -> bool {
        self.config.driver == "bridge"
    }

    /// Docker's default `bridge`: no name service, legacy links.
    pub fn is_default_bridge(&self) -> bool {
        self.name == DEFAULT_NETWORK
    }

    /// User networks get berth-dns (Docker's embedded DNS).
    pub fn has_dns(&self) -> bool {
        self.has_ipam() && !self.is_default_bridge()
    }

    pub fn subnet(&self) -> Result<Ipv4Net, EngineError> {
        self.config.subnet.parse().map_err(|_| {
            EngineError::Corrupt(format!(
                "network {}: subnet {:?}",
                self.name, self.config.subnet
            ))
        })
    }

    pub fn gateway(&self) -> Result<Ipv4Addr, EngineError> {
        self.config.gateway.parse().map_err(|_| {
            EngineError::Corrupt(format!(
                "network {}: gateway {:?}",
                self.name, self.config.gateway
            ))
        })
    }

    pub fn ip_range(&self) -> Option<Ipv4Net> {
        self.config.ip_range.parse().ok()
    }

    /// The IPv6 subnet and gateway of an `--ipv6` network.
    pub fn ipv6(&self) -> Result<Option<(Ipv6Net, Ipv6Addr)>, EngineError> {
        if !self.config.enable_ipv6 || self.config.subnet6.is_empty() {
            return Ok(None);
        }
        let corrupt = |what: &str, v: &str| {
            EngineError::Corrupt(format!("network {}: {what} {v:?}", self.name))
        };
        let subnet: Ipv6Net = self
            .config
            .subnet6
            .parse()
            .map_err(|_| corrupt("IPv6 subnet", &self.config.subnet6))?;
        let gateway: Ipv6Addr = self
            .config
            .gateway6
            .parse()
            .map_err(|_| corrupt("IPv6 gateway", &self.config.gateway6))?;
        Ok(Some((subnet, gateway)))
    }

    pub fn ip_range6(&self) -> Option<Ipv6Net> {
        self.config.ip_range6.parse().ok()
    }

    pub fn icc(&self) -> bool {
        self.config
            .options
            .get(OPT_ICC)
            .is_none_or(|v| v != "false")
    }
}

/// What a container asked for on one network (Docker's `EndpointSettings`
/// as `run`/`create`/`network connect` give them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointRequest {
    /// The network's name or id (`bridge`, `default`, a user network).
    #[serde(skip)]
    pub network: String,
    pub aliases: Vec<String>,
    /// `--link` on a user network (aliases there).
    pub links: Vec<String>,
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
    /// `--ip6`.
    #[serde(rename = "IPv6Address")]
    pub ipv6_address: String,
    pub mac_address: String,
}

/// An endpoint while its container runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointState {
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    pub ip: String,
    pub prefix: u8,
    pub gateway: String,
    /// The IPv6 address, prefix and gateway on an `--ipv6` network.
    #[serde(rename = "IP6")]
    pub ip6: String,
    pub prefix6: u8,
    pub gateway6: String,
    pub mac: String,
    /// The host side of the veth pair (empty for macvlan).
    pub host_link: String,
    /// The link's name in the container (`eth0`, `eth1`, …).
    pub ifname: String,
}

/// A container's endpoint on a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub container_id: String,
    pub network: NetworkRecord,
    pub position: i64,
    pub request: EndpointRequest,
    /// `Some` while the container runs.
    pub state: Option<EndpointState>,
}

/// One published port as Docker's `NetworkSettings.Ports` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PublishedPort {
    /// `80`.
    pub container_port: u16,
    /// `tcp` or `udp`.
    pub proto: String,
    /// `0.0.0.0` for every address.
    pub host_ip: String,
    pub host_port: u16,
}
