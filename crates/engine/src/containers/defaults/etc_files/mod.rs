//! The files berth generates for a container's `/etc`: `hostname`, `hosts`
//! and `resolv.conf`, bind-mounted from the container's directory like
//! Docker does. Content is built by pure functions from their inputs (the
//! host's files are passed in), then written atomically.

mod hosts;
mod resolv;

pub use hosts::{
    hosts_file, parse_extra_host, ExtraHost, ExtraHostTarget, HostsInput, LinkEntry, HOST_GATEWAY,
};
pub use resolv::{
    host_resolv_conf_path, resolv_conf, validate_dns_search, validate_dns_servers, DnsOverrides,
    DnsUpstream, ResolvConf,
};

use std::io::{self, Write as _};
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The network a container's /etc files are made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EtcNetwork {
    /// `--network host`: the host's names and resolvers.
    Host,
    /// `--network none`: only loopback; like Docker, resolv.conf is the
    /// host's (with overrides) since nothing can be reached anyway.
    None,
    /// Its own network namespace without embedded DNS (the default
    /// bridge): the host's loopback resolvers are unreachable.
    Private { ipv6: bool },
    /// A user-defined network whose embedded DNS server listens at `resolver`.
    EmbeddedDns { resolver: IpAddr, ipv6: bool },
}

impl EtcNetwork {
    /// Whether IPv6 names belong in the hosts file. Docker assumes IPv6
    /// unless it knows it is disabled.
    fn ipv6(self) -> bool {
        match self {
            Self::Host | Self::None => true,
            Self::Private { ipv6 } | Self::EmbeddedDns { ipv6, .. } => ipv6,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EtcFilesError {
    #[error("bad format for add-host: {value:?}")]
    AddHostFormat { value: String },
    #[error("invalid IP address in add-host: {ip:?}")]
    AddHostIp { ip: String },
    #[error("add-host {value:?}: unable to derive the IP value for host-gateway")]
    NoHostGateway { value: String },
    #[error("invalid --dns {value:?}: not an IP address")]
    DnsServer { value: String },
    #[error("{value} is not a valid domain")]
    DnsSearch { value: String },
    #[error("writing {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Everything the three files are made of.
#[derive(Debug, Clone, Copy)]
pub struct EtcFilesInput<'a> {
    pub hosts: HostsInput<'a>,
    pub dns: DnsOverrides<'a>,
    /// The host's resolv.conf content and where it was read from
    /// ([`host_resolv_conf_path`]).
    pub host_resolv_conf: &'a str,
    pub host_resolv_conf_path: &'a Path,
}

/// The generated files' contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcFiles {
    pub hostname: String,
    pub hosts: String,
    pub resolv_conf: String,
    /// With embedded DNS, the nameservers it forwards to.
    pub dns_upstreams: Vec<DnsUpstream>,
}

/// `/etc/hostname`: the hostname and a newline (the domain name is not part of it).
pub fn hostname_file(hostname: &str) -> String {
    format!("{hostname}\n")
}

/// Builds all three files.
pub fn etc_files(input: &EtcFilesInput<'_>) -> Result<EtcFiles, EtcFilesError> {
    let resolv = resolv_conf(
        input.host_resolv_conf,
        input.host_resolv_conf_path,
        input.hosts.network,
        &input.dns,
    )?;
    Ok(EtcFiles {
        hostname: hostname_file(input.hosts.hostname),
        hosts: hosts_file(&input.hosts)?,
        resolv_conf: resolv.content,
        dns_upstreams: resolv.upstreams,
    })
}

/// Writes `hostname`, `hosts` and `resolv.conf` into `dir` (mode 0644). Each
/// file is written to a temporary name and renamed over the old one, so a
/// container that has them bind-mounted, or a reader, never sees half a file.
pub fn write_etc_files(dir: &Path, files: &EtcFiles) -> Result<(), EtcFilesError> {
    for (name, content) in [
        ("hostname", &files.hostname),
        ("hosts", &files.hosts),
        ("resolv.conf", &files.resolv_conf),
    ] {
        write_atomic(&dir.join(name), content.as_bytes())?;
    }
    Ok(())
}

fn write_atomic(path: &Path, content: &[u8]) -> Result<(), EtcFilesError> {
    let err = |source| EtcFilesError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".berth-etc-")
        .tempfile_in(dir)
        .map_err(err)?;
    tmp.write_all(content).map_err(err)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .map_err(err)?;
    // No fsync: the rename keeps readers from seeing half a file, and the
    // engine rewrites the files from the container's config at every start;
    // an fsync per file costs milliseconds per `run` on a busy disk.
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    #[test]
    fn writes_the_three_files_atomically() {
        let tmp = berth_testutil::TempDir::new("etc-files").unwrap();
        let ips = ["172.17.0.2".parse().unwrap()];
        let input = EtcFilesInput {
            hosts: HostsInput {
                hostname: "4f2a1c9e0b7d",
                domainname: "",
                network: EtcNetwork::Private { ipv6: false },
                container_ips: &ips,
                extra_hosts: &[],
                host_gateway_ips: &[],
                links: &[],
                host_hosts: "",
            },
            dns: DnsOverrides::default(),
            host_resolv_conf: "nameserver 192.0.2.53\n",
            host_resolv_conf_path: Path::new("/etc/resolv.conf"),
        };
        let files = etc_files(&input).unwrap();
        assert_eq!(files.hostname, "4f2a1c9e0b7d\n");
        write_etc_files(tmp.path(), &files).unwrap();
        // An existing file is replaced by a new inode, not rewritten in place.
        let before = std::fs::metadata(tmp.join("hosts")).unwrap().ino();
        write_etc_files(tmp.path(), &files).unwrap();
        let meta = std::fs::metadata(tmp.join("hosts")).unwrap();
        assert_ne!(meta.ino(), before);
        assert_eq!(meta.mode() & 0o777, 0o644);
        assert_eq!(
            std::fs::read_to_string(tmp.join("hosts")).unwrap(),
            "127.0.0.1\tlocalhost\n172.17.0.2\t4f2a1c9e0b7d\n"
        );
        assert_eq!(
            std::fs::read_to_string(tmp.join("hostname")).unwrap(),
            "4f2a1c9e0b7d\n"
        );
        let resolv = std::fs::read_to_string(tmp.join("resolv.conf")).unwrap();
        assert!(resolv.contains("\nnameserver 192.0.2.53\n"), "{resolv}");
        // No temporary files are left behind.
        let names: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");

        let missing = tmp.join("no/such/dir");
        let err = write_etc_files(&missing, &files).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("writing {}", missing.join("hostname").display())
        );
    }
}
