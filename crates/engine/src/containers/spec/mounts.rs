//! The spec's mounts, assembled like moby's `withMounts`: Docker's default
//! filesystems (/proc, /dev, /sys, cgroups, mqueue, shm) minus those a
//! user mount replaces, then the container's own mounts (the /etc files,
//! `--init`, user binds and tmpfs) from shallow to deep, then read-only
//! rootfs and privileged adjustments.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Mount;

use super::namespaces::{IpcMode, Modes};
use super::security::SecurityOpts;
use super::user_mounts::{merge_tmpfs_options, user_mounts, UserMount, UserMountKind};
use super::{EtcFiles, SpecError};
use crate::containers::model::HostConfig;
use crate::containers::DEFAULT_SHM_SIZE;

/// Where `--init`'s binary appears in the container (Docker's path).
pub const INIT_PATH: &str = "/sbin/docker-init";

fn mount(dest: &str, typ: &str, source: impl Into<PathBuf>, options: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(dest))
        .set_typ(Some(typ.to_string()))
        .set_source(Some(source.into()))
        .set_options(Some(options.iter().map(|o| o.to_string()).collect()));
    m
}

/// What mount assembly needs beyond the host config.
pub(crate) struct MountInput<'a> {
    pub host: &'a HostConfig,
    pub modes: &'a Modes,
    pub security: &'a SecurityOpts,
    pub cgroup_v2: bool,
    pub etc_files: &'a EtcFiles<'a>,
    /// The init binary to bind at [`INIT_PATH`], when `--init` applies.
    pub init_binary: Option<&'a Path>,
    /// The IPC namespace joined for `--ipc container:X` (`/proc/<pid>/ns/ipc`).
    pub ipc_join: Option<&'a Path>,
}

/// The spec's `mounts` and, when a bind asks for shared or slave
/// propagation, the `rootfsPropagation` it needs.
pub(crate) fn mounts(input: &MountInput<'_>) -> Result<(Vec<Mount>, Option<String>), SpecError> {
    let host = input.host;
    if host.shm_size < 0 {
        return Err(SpecError::invalid(
            "SHM size can not be less than 0: fix --shm-size",
        ));
    }
    let user = user_mounts(host)?;
    let user_has = |dest: &str| user.iter().any(|m| m.destination == Path::new(dest));
    let user_dev = user_has("/dev");

    let mut out = Vec::new();
    for m in default_mounts(input)? {
        let dest = m.destination().clone();
        if user.iter().any(|u| u.destination == dest) {
            continue;
        }
        if user_dev && dest.starts_with("/dev/") {
            continue;
        }
        out.push(m);
    }

    // The container's own mounts, shallow before deep so that a mount
    // inside another lands on top of it.
    let mut own: Vec<Mount> = Vec::new();
    for (dest, file) in [
        ("/etc/resolv.conf", input.etc_files.resolv_conf),
        ("/etc/hostname", input.etc_files.hostname),
        ("/etc/hosts", input.etc_files.hosts),
    ] {
        if let Some(file) = file {
            if !user_has(dest) {
                let mut opts = vec!["rbind", "rprivate"];
                if host.readonly_rootfs {
                    opts.insert(1, "ro");
                }
                own.push(mount(dest, "bind", file, &opts));
            }
        }
    }
    if let Some(init) = input.init_binary {
        own.push(mount(INIT_PATH, "bind", init, &["bind", "ro"]));
    }
    let mut rootfs_propagation = None;
    for u in &user {
        own.push(user_mount(u, &mut rootfs_propagation)?);
    }
    own.sort_by_key(|m| m.destination().components().count());
    out.extend(own);

    if host.readonly_rootfs {
        for m in out.iter_mut() {
            let dest = m.destination().to_string_lossy().into_owned();
            let exempt = ["/proc", "/dev/pts", "/dev/shm", "/dev/mqueue", "/dev"]
                .contains(&dest.as_str())
                || user_has(&dest)
                || m.typ().as_deref() == Some("bind");
            if !exempt {
                add_option(m, "ro");
            }
        }
    }
    if host.privileged {
        for m in out
            .iter_mut()
            .filter(|m| m.destination() == Path::new("/sys"))
        {
            remove_option(m, "ro");
        }
    }
    if input.security.writable_cgroups.unwrap_or(host.privileged) {
        for m in out
            .iter_mut()
            .filter(|m| matches!(m.typ().as_deref(), Some("cgroup" | "cgroup2")))
        {
            remove_option(m, "ro");
        }
    }
    Ok((out, rootfs_propagation))
}

fn add_option(m: &mut Mount, opt: &str) {
    let mut opts = m.options().clone().unwrap_or_default();
    if !opts.iter().any(|o| o == opt) {
        opts.push(opt.to_string());
    }
    m.set_options(Some(opts));
}

fn remove_option(m: &mut Mount, opt: &str) {
    let opts: Vec<String> = m
        .options()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|o| o != opt)
        .collect();
    m.set_options(Some(opts));
}

/// Docker's `DefaultLinuxSpec` mounts, /dev/shm per IPC mode.
fn default_mounts(input: &MountInput<'_>) -> Result<Vec<Mount>, SpecError> {
    let cgroup_type = if input.cgroup_v2 { "cgroup2" } else { "cgroup" };
    let mut out = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        mount(
            "/sys/fs/cgroup",
            cgroup_type,
            cgroup_type,
            &["ro", "nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
    ];
    let size = if input.host.shm_size == 0 {
        DEFAULT_SHM_SIZE
    } else {
        input.host.shm_size
    };
    match &input.modes.ipc {
        IpcMode::None => {}
        IpcMode::Private | IpcMode::Shareable => out.push(mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &[
                "nosuid",
                "noexec",
                "nodev",
                "mode=1777",
                &format!("size={size}"),
            ],
        )),
        IpcMode::Host => out.push(mount(
            "/dev/shm",
            "bind",
            "/dev/shm",
            &["rbind", "rprivate"],
        )),
        IpcMode::Container(x) => {
            // POSIX shared memory lives in the other container's /dev/shm,
            // reachable through its init's root.
            let ns = input.ipc_join.ok_or_else(|| {
                SpecError::Internal(format!(
                    "--ipc container:{x}: the engine did not resolve the ipc namespace to join"
                ))
            })?;
            let proc_dir = ns.parent().and_then(Path::parent).ok_or_else(|| {
                SpecError::Internal(format!(
                    "--ipc container:{x}: {} is not a /proc/<pid>/ns/ipc path",
                    ns.display()
                ))
            })?;
            out.push(mount(
                "/dev/shm",
                "bind",
                proc_dir.join("root/dev/shm"),
                &["rbind", "rprivate"],
            ));
        }
    }
    Ok(out)
}

fn user_mount(u: &UserMount, rootfs_propagation: &mut Option<String>) -> Result<Mount, SpecError> {
    let dest = u.destination.to_string_lossy().into_owned();
    match &u.kind {
        UserMountKind::Volume { .. } => Err(SpecError::Internal(format!(
            "the volume at {dest} was not resolved to its directory before building the spec"
        ))),
        UserMountKind::Tmpfs { data } => {
            let options = merge_tmpfs_options(data)?;
            let refs: Vec<&str> = options.iter().map(String::as_str).collect();
            Ok(mount(&dest, "tmpfs", "tmpfs", &refs))
        }
        UserMountKind::Bind {
            source,
            read_only,
            propagation,
            recursive,
        } => {
            match propagation.as_str() {
                "shared" | "rshared" => {
                    require_propagation(source, &["shared:"], "shared")?;
                    if !matches!(rootfs_propagation.as_deref(), Some("shared" | "rshared")) {
                        *rootfs_propagation = Some("shared".into());
                    }
                }
                "slave" | "rslave" => {
                    require_propagation(source, &["shared:", "master:"], "shared or slave")?;
                    if rootfs_propagation.is_none() {
                        *rootfs_propagation = Some("rslave".into());
                    }
                }
                _ => {}
            }
            let mut opts = vec![if *recursive { "rbind" } else { "bind" }];
            if *read_only {
                // Recursively read-only (kernel 5.12+) so that mounts below
                // the source are not writable either, as Docker 25+ does.
                opts.push(if *recursive { "rro" } else { "ro" });
            }
            opts.push(propagation);
            Ok(mount(&dest, "bind", source, &opts))
        }
    }
}

/// Docker's `ensureShared` / `ensureSharedOrSlave`: the mount holding
/// `source` must propagate, or the bind's propagation would do nothing.
fn require_propagation(source: &Path, tags: &[&str], what: &str) -> Result<(), SpecError> {
    let resolved = std::fs::canonicalize(source)
        .map_err(|e| SpecError::io("resolving the bind source", source, e))?;
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| SpecError::io("reading", "/proc/self/mountinfo", e))?;
    let mut best: Option<(PathBuf, String)> = None;
    for line in info.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(point) = fields.get(4).map(|p| PathBuf::from(unescape(p))) else {
            continue;
        };
        if !resolved.starts_with(&point) {
            continue;
        }
        let optional = fields
            .iter()
            .skip(6)
            .take_while(|f| **f != "-")
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        // The longest mount point wins; later entries win ties (over-mounts).
        if best
            .as_ref()
            .is_none_or(|(b, _)| point.as_os_str().len() >= b.as_os_str().len())
        {
            best = Some((point, optional));
        }
    }
    let (point, optional) = best.ok_or_else(|| {
        SpecError::invalid(format!("can't find mount point of {}", resolved.display()))
    })?;
    if optional
        .split(' ')
        .any(|o| tags.iter().any(|t| o.starts_with(t)))
    {
        return Ok(());
    }
    Err(SpecError::invalid(format!(
        "path {} is mounted on {} but it is not a {what} mount: run `mount --make-rshared {}` on the host or use the default propagation",
        source.display(),
        point.display(),
        point.display()
    )))
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let digits = std::str::from_utf8(&b[i + 1..i + 4]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(digits, 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
