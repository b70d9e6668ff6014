//! A small synchronous rtnetlink client: the dozen requests berth needs
//! (bridges, veth pairs, macvlans, moving links between namespaces,
//! addresses, routes, bridge-port hairpin mode).
//!
//! Hand-written rather than `rtnetlink`: that crate is async (a tokio
//! runtime per call, which the monitor/cleanup path must not carry) and its
//! message types change shape between minor versions; the requests here are
//! fixed byte layouts from `linux/rtnetlink.h`, and a per-container setup
//! must cost microseconds, not a runtime start.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::NetError;

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_REPLACE: u16 = 0x100;

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_SETLINK: u16 = 19;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;

const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_LINK: u16 = 5;
const IFLA_MASTER: u16 = 10;
const IFLA_PROTINFO: u16 = 12;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFLA_MACVLAN_MODE: u16 = 1;
const MACVLAN_MODE_BRIDGE: u32 = 4;
const IFLA_BRPORT_MODE: u16 = 4;
const NLA_F_NESTED: u16 = 0x8000;

const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const IFA_F_NODAD: u8 = 0x02;

const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RT_SCOPE_LINK: u8 = 253;
const RTN_UNICAST: u8 = 1;

const IFF_UP: u32 = 0x1;

/// A netlink message under construction: header, fixed part, attributes.
struct Msg {
    buf: Vec<u8>,
    nests: Vec<usize>,
}

impl Msg {
    fn new(kind: u16, flags: u16) -> Self {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set in finish
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // seq, set at send
        buf.extend_from_slice(&0u32.to_ne_bytes()); // pid: the kernel
        Self {
            buf,
            nests: Vec::new(),
        }
    }

    /// `struct ifinfomsg`.
    fn ifinfo(&mut self, family: u8, index: i32, flags: u32, change: u32) {
        self.buf.push(family);
        self.buf.push(0);
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf.extend_from_slice(&index.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&change.to_ne_bytes());
    }

    fn attr(&mut self, kind: u16, data: &[u8]) {
        let len = 4 + data.len();
        self.buf
            .extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.align();
    }

    fn attr_str(&mut self, kind: u16, s: &str) {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.attr(kind, &v);
    }

    fn attr_u32(&mut self, kind: u16, v: u32) {
        self.attr(kind, &v.to_ne_bytes());
    }

    fn begin(&mut self, kind: u16) {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
    }

    fn end(&mut self) {
        if let Some(start) = self.nests.pop() {
            let len = u16::try_from(self.buf.len() - start).unwrap_or(u16::MAX);
            self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        }
    }

    fn align(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    fn finish(mut self, seq: u32) -> Vec<u8> {
        let len = u32::try_from(self.buf.len()).unwrap_or(u32::MAX);
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        self.buf
    }
}

/// A MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// Docker's scheme: `02:42` then the IPv4 address, so that a
    /// container's MAC says which address it has.
    pub fn from_ipv4(ip: Ipv4Addr) -> Self {
        let o = ip.octets();
        Self([0x02, 0x42, o[0], o[1], o[2], o[3]])
    }

    pub fn parse(s: &str) -> Option<Self> {
        let parts: Vec<&str> = s.split([':', '-']).collect();
        if parts.len() != 6 {
            return None;
        }
        let mut out = [0u8; 6];
        for (o, p) in out.iter_mut().zip(parts) {
            if p.len() != 2 {
                return None;
            }
            *o = u8::from_str_radix(p, 16).ok()?;
        }
        Some(Self(out))
    }
}

impl std::fmt::Display for Mac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// An rtnetlink socket, bound to the network namespace of the thread that
/// opened it (see [`crate::netns::Netns::netlink`]).
pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

impl Netlink {
    /// A socket in the calling thread's network namespace.
    pub fn open() -> Result<Self, NetError> {
        // SAFETY: socket(2) with constant arguments; the result is checked.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(NetError::sys(
                "opening a netlink socket",
                std::io::Error::last_os_error(),
            ));
        }
        // SAFETY: a fresh fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sockaddr_nl is plain data; zero is a valid value.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: a valid sockaddr_nl of the size passed.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                std::ptr::addr_of!(addr).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if rc < 0 {
            return Err(NetError::sys(
                "binding a netlink socket",
                std::io::Error::last_os_error(),
            ));
        }
        Ok(Self { fd, seq: 1 })
    }

    /// Sends one request and waits for its acknowledgement.
    fn request(&mut self, what: &str, msg: Msg) -> Result<(), NetError> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let bytes = msg.finish(seq);
        // SAFETY: sending a buffer we own, with its length.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len(), 0) };
        if n < 0 {
            return Err(NetError::sys(what, std::io::Error::last_os_error()));
        }
        let mut buf = vec![0u8; 16384];
        loop {
            // SAFETY: receiving into a buffer we own, with its length.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(NetError::sys(what, e));
            }
            let n = usize::try_from(n).unwrap_or(0);
            let mut off = 0;
            while off + 16 <= n {
                let len =
                    u32::from_ne_bytes(buf[off..off + 4].try_into().unwrap_or([0; 4])) as usize;
                let kind = u16::from_ne_bytes([buf[off + 4], buf[off + 5]]);
                let mseq = u32::from_ne_bytes(buf[off + 8..off + 12].try_into().unwrap_or([0; 4]));
                if len < 16 || off + len > n {
                    break;
                }
                if mseq == seq {
                    if kind == NLMSG_ERROR && len >= 20 {
                        let err = i32::from_ne_bytes(
                            buf[off + 16..off + 20].try_into().unwrap_or([0; 4]),
                        );
                        if err == 0 {
                            return Ok(());
                        }
                        return Err(NetError::sys(what, std::io::Error::from_raw_os_error(-err)));
                    }
                    if kind == NLMSG_DONE {
                        return Ok(());
                    }
                }
                off += (len + 3) & !3;
            }
        }
    }

    /// `ip link add NAME type bridge` (up), with a fixed MAC when given.
    pub fn create_bridge(&mut self, name: &str, mac: Option<Mac>) -> Result<(), NetError> {
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
        m.ifinfo(libc::AF_UNSPEC as u8, 0, IFF_UP, IFF_UP);
        m.attr_str(IFLA_IFNAME, name);
        if let Some(mac) = mac {
            m.attr(IFLA_ADDRESS, &mac.0);
        }
        m.begin(IFLA_LINKINFO);
        m.attr_str(IFLA_INFO_KIND, "bridge");
        m.end();
        self.request(&format!("creating bridge {name}"), m)
    }

    /// A veth pair: `host` here (up, enslaved to `master` when given),
    /// `peer` created directly in the namespace of `peer_netns` with `mac`.
    pub fn create_veth(
        &mut self,
        host: &str,
        master: Option<u32>,
        peer: &str,
        peer_netns: RawFd,
        peer_mac: Option<Mac>,
        mtu: Option<u32>,
    ) -> Result<(), NetError> {
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
        m.ifinfo(libc::AF_UNSPEC as u8, 0, IFF_UP, IFF_UP);
        m.attr_str(IFLA_IFNAME, host);
        if let Some(mtu) = mtu {
            m.attr_u32(IFLA_MTU, mtu);
        }
        if let Some(idx) = master {
            m.attr_u32(IFLA_MASTER, idx);
        }
        m.begin(IFLA_LINKINFO);
        m.attr_str(IFLA_INFO_KIND, "veth");
        m.begin(IFLA_INFO_DATA);
        m.begin(VETH_INFO_PEER);
        m.ifinfo(libc::AF_UNSPEC as u8, 0, 0, 0);
        m.attr_str(IFLA_IFNAME, peer);
        if let Some(mtu) = mtu {
            m.attr_u32(IFLA_MTU, mtu);
        }
        m.attr_u32(IFLA_NET_NS_FD, peer_netns as u32);
        if let Some(mac) = peer_mac {
            m.attr(IFLA_ADDRESS, &mac.0);
        }
        m.end();
        m.end();
        m.end();
        self.request(&format!("creating veth pair {host}/{peer}"), m)
    }

    /// A macvlan (bridge mode) on `parent`, created in `netns` as `name`.
    pub fn create_macvlan(
        &mut self,
        name: &str,
        parent: u32,
        netns: RawFd,
        mac: Option<Mac>,
    ) -> Result<(), NetError> {
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
        m.ifinfo(libc::AF_UNSPEC as u8, 0, 0, 0);
        m.attr_str(IFLA_IFNAME, name);
        m.attr_u32(IFLA_LINK, parent);
        m.attr_u32(IFLA_NET_NS_FD, netns as u32);
        if let Some(mac) = mac {
            m.attr(IFLA_ADDRESS, &mac.0);
        }
        m.begin(IFLA_LINKINFO);
        m.attr_str(IFLA_INFO_KIND, "macvlan");
        m.begin(IFLA_INFO_DATA);
        m.attr_u32(IFLA_MACVLAN_MODE, MACVLAN_MODE_BRIDGE);
        m.end();
        m.end();
        self.request(&format!("creating macvlan {name}"), m)
    }

    /// `ip link set INDEX up|down`.
    pub fn set_up(&mut self, index: u32, up: bool) -> Result<(), NetError> {
        let mut m = Msg::new(RTM_NEWLINK, 0);
        m.ifinfo(
            libc::AF_UNSPEC as u8,
            index as i32,
            if up { IFF_UP } else { 0 },
            IFF_UP,
        );
        self.request(&format!("setting link {index} up"), m)
    }

    /// Moves link `index` into the namespace behind `netns`.
    pub fn move_to_netns(&mut self, index: u32, netns: RawFd) -> Result<(), NetError> {
        let mut m = Msg::new(RTM_NEWLINK, 0);
        m.ifinfo(libc::AF_UNSPEC as u8, index as i32, 0, 0);
        m.attr_u32(IFLA_NET_NS_FD, netns as u32);
        self.request(&format!("moving link {index} to another namespace"), m)
    }

    /// Bridge port hairpin mode, so that a container reaching its own
    /// published port through the host gets the packets back.
    pub fn set_hairpin(&mut self, index: u32, on: bool) -> Result<(), NetError> {
        let mut m = Msg::new(RTM_SETLINK, 0);
        m.ifinfo(libc::AF_BRIDGE as u8, index as i32, 0, 0);
        m.begin(IFLA_PROTINFO);
        m.attr(IFLA_BRPORT_MODE, &[u8::from(on)]);
        m.end();
        self.request(&format!("setting hairpin mode on link {index}"), m)
    }

    /// `ip link del NAME`; a missing link is not an error.
    pub fn delete_link(&mut self, name: &str) -> Result<(), NetError> {
        let mut m = Msg::new(RTM_DELLINK, 0);
        m.ifinfo(libc::AF_UNSPEC as u8, 0, 0, 0);
        m.attr_str(IFLA_IFNAME, name);
        match self.request(&format!("deleting link {name}"), m) {
            Err(e) if e.errno() == Some(libc::ENODEV) => Ok(()),
            other => other,
        }
    }

    /// `ip addr add ADDR/PREFIX dev INDEX` (an existing address is fine;
    /// IPv6 addresses skip duplicate address detection, `nodad`).
    pub fn add_address(&mut self, index: u32, addr: IpAddr, prefix: u8) -> Result<(), NetError> {
        let mut m = Msg::new(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE);
        let family = match addr {
            IpAddr::V4(_) => libc::AF_INET as u8,
            IpAddr::V6(_) => libc::AF_INET6 as u8,
        };
        m.buf.push(family);
        m.buf.push(prefix);
        // An IPv6 address berth assigns is unique by construction (IPAM):
        // without NODAD it would sit "tentative" (unusable) for a second or
        // more while duplicate address detection runs.
        m.buf.push(if addr.is_ipv6() { IFA_F_NODAD } else { 0 });
        m.buf.push(0); // scope: global
        m.buf.extend_from_slice(&index.to_ne_bytes());
        match addr {
            IpAddr::V4(v4) => {
                m.attr(IFA_LOCAL, &v4.octets());
                m.attr(IFA_ADDRESS, &v4.octets());
                let mask = if prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(prefix))
                };
                let bcast = u32::from(v4) | !mask;
                m.attr(IFA_BROADCAST, &bcast.to_be_bytes());
            }
            IpAddr::V6(v6) => {
                m.attr(IFA_LOCAL, &v6.octets());
                m.attr(IFA_ADDRESS, &v6.octets());
            }
        }
        self.request(
            &format!("adding address {addr}/{prefix} to link {index}"),
            m,
        )
    }

    /// A route: `dst/prefix` (default when `dst` is `None`) via `gateway`
    /// or directly on link `oif`.
    pub fn add_route(
        &mut self,
        dst: Option<(IpAddr, u8)>,
        gateway: Option<IpAddr>,
        oif: Option<u32>,
    ) -> Result<(), NetError> {
        let v6 = matches!(dst.map(|d| d.0).or(gateway), Some(IpAddr::V6(_)));
        let mut m = Msg::new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
        m.buf
            .push(if v6 { libc::AF_INET6 } else { libc::AF_INET } as u8);
        m.buf.push(dst.map_or(0, |d| d.1));
        m.buf.push(0); // src_len
        m.buf.push(0); // tos
        m.buf.push(RT_TABLE_MAIN);
        m.buf.push(RTPROT_BOOT);
        m.buf.push(if gateway.is_some() {
            RT_SCOPE_UNIVERSE
        } else {
            RT_SCOPE_LINK
        });
        m.buf.push(RTN_UNICAST);
        m.buf.extend_from_slice(&0u32.to_ne_bytes());
        let octets = |ip: IpAddr| match ip {
            IpAddr::V4(v) => v.octets().to_vec(),
            IpAddr::V6(v) => v.octets().to_vec(),
        };
        if let Some((d, _)) = dst {
            m.attr(RTA_DST, &octets(d));
        }
        if let Some(g) = gateway {
            m.attr(RTA_GATEWAY, &octets(g));
        }
        if let Some(oif) = oif {
            m.attr_u32(RTA_OIF, oif);
        }
        self.request("adding a route", m)
    }
}

/// The index of link `name` in the calling thread's namespace.
pub fn link_index(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: a NUL-terminated name; returns 0 when there is no such link.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (idx != 0).then_some(idx)
}

/// Names of the links in the host's namespace (of the calling thread).
pub fn link_names() -> Vec<String> {
    std::fs::read_dir("/sys/class/net")
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}
