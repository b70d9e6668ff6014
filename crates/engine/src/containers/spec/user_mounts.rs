//! The mounts a user asks for: `-v /host:/ctr[:opts]`, `-v name:/ctr`,
//! `--mount` and `--tmpfs`, parsed and checked like moby's
//! `volume/mounts/linux_parser.go`. Volumes are resolved to their
//! directories by the engine's volume service before a spec is built.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use super::SpecError;
use crate::containers::model::{HostConfig, MountSpec, TmpfsOptions};

const PROPAGATIONS: [&str; 6] = [
    "private", "rprivate", "slave", "rslave", "shared", "rshared",
];

/// What a user mount is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UserMountKind {
    Bind {
        source: PathBuf,
        read_only: bool,
        /// One of [`PROPAGATIONS`]; Docker's default is `rprivate`.
        propagation: String,
        recursive: bool,
    },
    /// tmpfs with its mount data (`size=64m,mode=1777`), before merging
    /// with Docker's defaults.
    Tmpfs { data: String },
    /// A named (`name` given) or anonymous volume.
    Volume {
        name: Option<String>,
        read_only: bool,
        no_copy: bool,
        /// `volume-subpath`: relative, inside the volume.
        subpath: String,
        /// `volume-driver` (empty: the container's or `local`).
        driver: String,
        /// `volume-opt`, used when the volume is created.
        options: BTreeMap<String, String>,
        /// `volume-label`, used when the volume is created.
        labels: BTreeMap<String, String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserMount {
    /// Clean and absolute.
    pub destination: PathBuf,
    pub kind: UserMountKind,
    /// The options text of a `-v` spec (Docker's `Mode`); `None` for
    /// `--mount` and `--tmpfs`.
    pub mode: Option<String>,
}

/// `path.Clean` for absolute paths.
pub(crate) fn clean(p: &str) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in Path::new(p).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

fn check_destination(
    target: &str,
    context: &dyn Fn(String) -> SpecError,
) -> Result<PathBuf, SpecError> {
    if target.is_empty() {
        return Err(context("field Target must not be empty".into()));
    }
    if !target.starts_with('/') {
        return Err(context(format!(
            "invalid mount path: '{target}' mount path must be absolute"
        )));
    }
    let dest = clean(target);
    if dest == Path::new("/") {
        return Err(context(
            "invalid specification: destination can't be '/'".into(),
        ));
    }
    Ok(dest)
}

/// Docker's local volume name rule, and its refusal (which also catches
/// relative host paths given where a volume name is expected).
fn check_volume_name(name: &str) -> Result<(), SpecError> {
    if crate::volumes::valid_name(name) {
        return Ok(());
    }
    Err(SpecError::invalid(format!(
        "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
    )))
}

/// Every user mount of `host`: `Binds`, then `Mounts`, then `Tmpfs`.
pub(crate) fn user_mounts(host: &HostConfig) -> Result<Vec<UserMount>, SpecError> {
    let mut out = Vec::new();
    for raw in host.binds.iter().flatten() {
        out.push(parse_bind(raw)?);
    }
    for m in host.mounts.iter().flatten() {
        out.push(parse_mount(m)?);
    }
    for (target, data) in host.tmpfs.iter().flatten() {
        let context = |why: String| SpecError::invalid(format!("invalid --tmpfs {target}: {why}"));
        let destination = check_destination(target, &context)?;
        out.push(UserMount {
            destination,
            kind: UserMountKind::Tmpfs { data: data.clone() },
            mode: None,
        });
    }
    let mut seen = BTreeSet::new();
    for m in &out {
        if !seen.insert(m.destination.clone()) {
            return Err(SpecError::invalid(format!(
                "Duplicate mount point: {}: give each -v, --mount and --tmpfs its own destination",
                m.destination.display()
            )));
        }
    }
    Ok(out)
}

#[derive(Default)]
struct ModeCounts {
    rw: u8,
    label: u8,
    propagation: u8,
    copy: u8,
    consistency: u8,
}

/// Docker's `linuxValidMountMode`: each kind of option at most once.
fn valid_mode(mode: &str) -> bool {
    if mode.is_empty() {
        return true;
    }
    let mut n = ModeCounts::default();
    for o in mode.split(',') {
        match o {
            "rw" | "ro" => n.rw += 1,
            "z" | "Z" => n.label += 1,
            p if PROPAGATIONS.contains(&p) => n.propagation += 1,
            "nocopy" => n.copy += 1,
            "consistent" | "cached" | "delegated" => n.consistency += 1,
            _ => return false,
        }
    }
    [n.rw, n.label, n.propagation, n.copy, n.consistency]
        .iter()
        .all(|&c| c <= 1)
}

/// `-v SRC:DST[:MODE]`.
fn parse_bind(raw: &str) -> Result<UserMount, SpecError> {
    let invalid = || format!("invalid volume specification: '{raw}'");
    let parts: Vec<&str> = raw.splitn(4, ':').collect();
    if parts[0].is_empty() {
        return Err(SpecError::invalid(invalid()));
    }
    let (source, target, mode) = match parts[..] {
        [target] => ("", target, ""),
        [source, target] => {
            if valid_mode(target) {
                return Err(SpecError::invalid(format!(
                    "{}: a volume cannot have only a mode; use -v /host/dir:/path:{target}",
                    invalid()
                )));
            }
            (source, target, "")
        }
        [source, target, mode] => (source, target, mode),
        _ => {
            return Err(SpecError::invalid(format!(
                "{}: use -v /host/dir:/path[:options]",
                invalid()
            )))
        }
    };
    if !valid_mode(mode) {
        return Err(SpecError::invalid(format!(
            "invalid mode: {mode}: -v options are ro or rw, a propagation (rprivate, rshared, rslave …), z or Z, each at most once"
        )));
    }
    let context = |why: String| SpecError::invalid(format!("{}: {why}", invalid()));
    let destination = check_destination(target, &context)?;
    let options: Vec<&str> = mode.split(',').collect();
    if !source.starts_with('/') {
        if options.iter().any(|o| PROPAGATIONS.contains(o)) {
            return Err(context(
                "invalid mount config for type \"volume\": field BindOptions must not be specified (propagation is for binds)".into(),
            ));
        }
        let name = if source.is_empty() {
            None
        } else {
            check_volume_name(source)?;
            Some(source.to_string())
        };
        return Ok(UserMount {
            destination,
            kind: UserMountKind::Volume {
                name,
                read_only: options.contains(&"ro"),
                no_copy: options.contains(&"nocopy"),
                subpath: String::new(),
                driver: String::new(),
                options: BTreeMap::new(),
                labels: BTreeMap::new(),
            },
            mode: Some(mode.to_string()),
        });
    }
    if options.contains(&"nocopy") {
        return Err(context(
            "invalid mount config for type \"bind\": field VolumeOptions must not be specified (nocopy is for volumes)".into(),
        ));
    }
    let source = clean(source);
    // Docker creates a missing -v source directory (only --mount refuses).
    if !source.exists() {
        std::fs::create_dir_all(&source)
            .map_err(|e| SpecError::io("creating the -v source directory", &source, e))?;
    }
    let propagation = options
        .iter()
        .find(|o| PROPAGATIONS.contains(o))
        .unwrap_or(&"rprivate")
        .to_string();
    Ok(UserMount {
        destination,
        kind: UserMountKind::Bind {
            source,
            read_only: options.contains(&"ro"),
            propagation,
            recursive: true,
        },
        mode: Some(mode.to_string()),
    })
}

/// One `--mount`.
fn parse_mount(m: &MountSpec) -> Result<UserMount, SpecError> {
    let context = |why: String| {
        SpecError::invalid(format!("invalid mount config for type {:?}: {why}", m.kind))
    };
    let extra = |field: &str| context(format!("field {field} must not be specified"));
    if m.kind != "bind" && m.bind_options.is_some() {
        return Err(extra("BindOptions"));
    }
    if m.kind != "volume" && m.volume_options.is_some() {
        return Err(extra("VolumeOptions"));
    }
    if m.kind != "tmpfs" && m.tmpfs_options.is_some() {
        return Err(extra("TmpfsOptions"));
    }
    let destination = check_destination(&m.target, &context)?;
    match m.kind.as_str() {
        "bind" => {
            if m.source.is_empty() {
                return Err(context("field Source must not be empty".into()));
            }
            if !m.source.starts_with('/') {
                return Err(context(format!(
                    "invalid mount path: '{}' mount path must be absolute",
                    m.source
                )));
            }
            let opts = m.bind_options.clone().unwrap_or_default();
            let propagation = if opts.propagation.is_empty() {
                "rprivate".to_string()
            } else if PROPAGATIONS.contains(&opts.propagation.as_str()) {
                opts.propagation.clone()
            } else {
                return Err(context(format!(
                    "invalid propagation mode: {}",
                    opts.propagation
                )));
            };
            let source = clean(&m.source);
            if !source.exists() {
                if !opts.create_mountpoint {
                    return Err(context(format!(
                        "bind source path does not exist: {}",
                        source.display()
                    )));
                }
                std::fs::create_dir_all(&source)
                    .map_err(|e| SpecError::io("creating the bind source", &source, e))?;
            }
            Ok(UserMount {
                destination,
                kind: UserMountKind::Bind {
                    source,
                    read_only: m.read_only,
                    propagation,
                    recursive: !opts.non_recursive,
                },
                mode: None,
            })
        }
        "tmpfs" => {
            if !m.source.is_empty() {
                return Err(extra("Source"));
            }
            Ok(UserMount {
                destination,
                kind: UserMountKind::Tmpfs {
                    data: tmpfs_data(m.tmpfs_options.as_ref(), m.read_only),
                },
                mode: None,
            })
        }
        "volume" => {
            let opts = m.volume_options.clone().unwrap_or_default();
            let anonymous = m.source.is_empty();
            if anonymous && m.read_only {
                return Err(context(
                    "must not set ReadOnly mode when using anonymous volumes".into(),
                ));
            }
            if !opts.subpath.is_empty() {
                if anonymous {
                    return Err(context(
                        "must not set Subpath when using anonymous volumes".into(),
                    ));
                }
                let p = Path::new(&opts.subpath);
                if p.is_absolute() || p.components().any(|c| matches!(c, Component::ParentDir)) {
                    return Err(context(
                        "subpath must be a relative path within the volume".into(),
                    ));
                }
            }
            let driver = opts.driver_config.clone().unwrap_or_default();
            if !anonymous && matches!(driver.name.as_str(), "" | "local") {
                check_volume_name(&m.source)?;
            }
            Ok(UserMount {
                destination,
                kind: UserMountKind::Volume {
                    name: (!anonymous).then(|| m.source.clone()),
                    read_only: m.read_only,
                    no_copy: opts.no_copy,
                    subpath: opts.subpath,
                    driver: driver.name,
                    options: driver.options,
                    labels: opts.labels,
                },
                mode: None,
            })
        }
        _ => Err(context(
            "mount type unknown: --mount type= takes bind, volume or tmpfs".into(),
        )),
    }
}

/// Docker's `ConvertTmpfsOptions`: `ro`, `mode=` (octal) and `size=` with
/// the largest unit that divides it.
fn tmpfs_data(opts: Option<&TmpfsOptions>, read_only: bool) -> String {
    let mut out = Vec::new();
    if read_only {
        out.push("ro".to_string());
    }
    if let Some(o) = opts {
        if o.mode != 0 {
            out.push(format!("mode={:o}", o.mode));
        }
        if o.size_bytes != 0 {
            let (mut size, mut suffix) = (o.size_bytes, "");
            for (s, div) in [("g", 1i64 << 30), ("m", 1 << 20), ("k", 1 << 10)] {
                if size % div == 0 {
                    size /= div;
                    suffix = s;
                    break;
                }
            }
            out.push(format!("size={size}{suffix}"));
        }
    }
    out.join(",")
}

/// Mount flags by the bit they set, for merging: options setting the same
/// bit collide (`exec`/`noexec`), and all propagations share one key.
fn flag_key(option: &str) -> Option<&'static str> {
    Some(match option {
        "ro" | "rw" => "rdonly",
        "suid" | "nosuid" => "nosuid",
        "dev" | "nodev" => "nodev",
        "exec" | "noexec" => "noexec",
        "sync" | "async" => "sync",
        "dirsync" => "dirsync",
        "remount" => "remount",
        "mand" | "nomand" => "mand",
        "atime" | "noatime" => "noatime",
        "diratime" | "nodiratime" => "nodiratime",
        "relatime" | "norelatime" => "relatime",
        "strictatime" | "nostrictatime" => "strictatime",
        "bind" | "rbind" | "unbindable" | "runbindable" | "private" | "rprivate" | "shared"
        | "rshared" | "slave" | "rslave" => "propagation",
        _ => return None,
    })
}

/// Docker's tmpfs options: `noexec,nosuid,nodev,rprivate` merged with the
/// user's (`mount.MergeTmpfsOptions`: the later of colliding options wins,
/// data keys limited to what tmpfs takes).
pub(crate) fn merge_tmpfs_options(data: &str) -> Result<Vec<String>, SpecError> {
    let mut options: Vec<&str> = vec!["noexec", "nosuid", "nodev", "rprivate"];
    options.extend(data.split(',').filter(|o| !o.is_empty()));
    let mut flags_seen = BTreeSet::new();
    let mut data_seen = BTreeSet::new();
    let mut out: Vec<String> = Vec::new();
    for option in options.iter().rev() {
        if *option == "defaults" {
            continue;
        }
        if let Some(key) = flag_key(option) {
            if flags_seen.insert(key) {
                out.push(option.to_string());
            }
            continue;
        }
        let key = option.split_once('=').map(|(k, _)| k);
        match key {
            Some(k @ ("size" | "mode" | "uid" | "gid" | "nr_inodes" | "nr_blocks" | "mpol")) => {
                if data_seen.insert(k) {
                    out.push(option.to_string());
                }
            }
            _ => {
                let name = key.unwrap_or(option);
                return Err(SpecError::invalid(format!(
                    "invalid tmpfs option {name:?}: tmpfs takes size=, mode=, uid=, gid=, nr_inodes=, nr_blocks=, mpol= and mount flags such as exec or ro"
                )));
            }
        }
    }
    out.reverse();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::model::BindOptions;

    fn bind(raw: &str) -> Result<UserMount, SpecError> {
        parse_bind(raw)
    }

    #[test]
    fn bind_forms() {
        let tmp = berth_testutil::TempDir::new("spec-binds").unwrap();
        let src = tmp.path().to_str().unwrap().to_string();
        let m = bind(&format!("{src}/:/data/../data:ro,rshared")).unwrap();
        assert_eq!(m.destination, Path::new("/data"));
        assert_eq!(
            m.kind,
            UserMountKind::Bind {
                source: tmp.path().to_path_buf(),
                read_only: true,
                propagation: "rshared".into(),
                recursive: true
            }
        );
        let m = bind(&format!("{src}:/x")).unwrap();
        assert!(
            matches!(m.kind, UserMountKind::Bind { read_only: false, ref propagation, .. } if propagation == "rprivate")
        );
        // A missing -v source is created, as Docker does.
        let missing = format!("{src}/made/here");
        bind(&format!("{missing}:/y:z")).unwrap();
        assert!(Path::new(&missing).is_dir());
    }

    #[test]
    fn bind_errors() {
        for (raw, want) in [
            (":/x", "invalid volume specification: ':/x'"),
            ("/a:/b:c:d", "invalid volume specification: '/a:/b:c:d'"),
            ("/a:ro", "invalid volume specification: '/a:ro'"),
            ("/a:/b:ro,rw", "invalid mode: ro,rw"),
            ("/a:/b:bogus", "invalid mode: bogus"),
            ("/a:relative", "invalid volume specification: '/a:relative': invalid mount path: 'relative' mount path must be absolute"),
            ("/a:/", "invalid volume specification: '/a:/': invalid specification: destination can't be '/'"),
            ("/a:/b:nocopy", "invalid volume specification: '/a:/b:nocopy': invalid mount config for type \"bind\""),
        ] {
            let e = bind(raw).unwrap_err();
            assert!(e.to_string().starts_with(want), "{raw}: {e}");
            assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument);
        }
        let e = bind("x/y:/x").unwrap_err();
        assert!(
            e.to_string()
                .contains("includes invalid characters for a local volume name"),
            "{e}"
        );
        let e = bind("data:/x:rshared").unwrap_err();
        assert!(
            e.to_string()
                .contains("field BindOptions must not be specified"),
            "{e}"
        );
    }

    #[test]
    fn volume_forms() {
        let m = bind("data:/x:ro,nocopy").unwrap();
        assert_eq!(m.mode.as_deref(), Some("ro,nocopy"));
        assert!(matches!(
            m.kind,
            UserMountKind::Volume { ref name, read_only: true, no_copy: true, .. } if name.as_deref() == Some("data")
        ));
        let m = bind("/only-a-path").unwrap();
        assert!(matches!(m.kind, UserMountKind::Volume { name: None, .. }));
        let mut v = mount("volume", "", "/x");
        assert!(matches!(
            parse_mount(&v).unwrap().kind,
            UserMountKind::Volume { name: None, .. }
        ));
        v.read_only = true;
        assert!(parse_mount(&v)
            .unwrap_err()
            .to_string()
            .contains("must not set ReadOnly"));
        let mut v = mount("volume", "data", "/x");
        v.volume_options = Some(crate::containers::model::VolumeOptions {
            subpath: "../up".into(),
            ..Default::default()
        });
        assert!(parse_mount(&v)
            .unwrap_err()
            .to_string()
            .contains("subpath must be a relative path"));
    }

    fn mount(kind: &str, source: &str, target: &str) -> MountSpec {
        MountSpec {
            kind: kind.into(),
            source: source.into(),
            target: target.into(),
            ..Default::default()
        }
    }

    #[test]
    fn mount_flag() {
        let mut m = mount("bind", "/etc", "/host-etc");
        m.read_only = true;
        m.bind_options = Some(BindOptions {
            non_recursive: true,
            ..Default::default()
        });
        let um = parse_mount(&m).unwrap();
        assert!(matches!(
            um.kind,
            UserMountKind::Bind {
                read_only: true,
                recursive: false,
                ..
            }
        ));
        let mut t = mount("tmpfs", "", "/scratch");
        t.tmpfs_options = Some(TmpfsOptions {
            size_bytes: 3 << 20,
            mode: 0o1770,
        });
        t.read_only = true;
        assert_eq!(
            parse_mount(&t).unwrap().kind,
            UserMountKind::Tmpfs {
                data: "ro,mode=1770,size=3m".into()
            }
        );
    }

    #[test]
    fn mount_errors() {
        let cases = [
            (mount("bind", "/berth-no-such-dir", "/x"), "invalid mount config for type \"bind\": bind source path does not exist: /berth-no-such-dir"),
            (mount("bind", "", "/x"), "invalid mount config for type \"bind\": field Source must not be empty"),
            (mount("tmpfs", "/src", "/x"), "invalid mount config for type \"tmpfs\": field Source must not be specified"),
            (mount("bind", "/etc", ""), "invalid mount config for type \"bind\": field Target must not be empty"),
            (mount("npipe", "/etc", "/x"), "invalid mount config for type \"npipe\": mount type unknown"),
            (mount("volume", "a/b", "/x"), "create a/b: \"a/b\" includes invalid characters"),
        ];
        for (m, want) in cases {
            let e = parse_mount(&m).unwrap_err();
            assert!(e.to_string().starts_with(want), "{e}");
        }
        let mut m = mount("tmpfs", "", "/x");
        m.bind_options = Some(BindOptions::default());
        assert!(parse_mount(&m)
            .unwrap_err()
            .to_string()
            .contains("field BindOptions must not be specified"));
        let mut m = mount("bind", "/etc", "/x");
        m.bind_options = Some(BindOptions {
            propagation: "sideways".into(),
            ..Default::default()
        });
        assert!(parse_mount(&m)
            .unwrap_err()
            .to_string()
            .contains("invalid propagation mode: sideways"));
    }

    #[test]
    fn duplicates_refused() {
        let h = HostConfig {
            binds: Some(vec!["/etc:/data".into()]),
            tmpfs: Some([("/data/".to_string(), String::new())].into()),
            ..Default::default()
        };
        let e = user_mounts(&h).unwrap_err();
        assert!(
            e.to_string().starts_with("Duplicate mount point: /data"),
            "{e}"
        );
    }

    #[test]
    fn tmpfs_merging() {
        assert_eq!(
            merge_tmpfs_options("").unwrap(),
            ["noexec", "nosuid", "nodev", "rprivate"]
        );
        assert_eq!(
            merge_tmpfs_options("exec,size=64m,mode=1777,size=1m").unwrap(),
            [
                "nosuid",
                "nodev",
                "rprivate",
                "exec",
                "mode=1777",
                "size=1m"
            ]
        );
        assert_eq!(
            merge_tmpfs_options("ro,rshared").unwrap(),
            ["noexec", "nosuid", "nodev", "ro", "rshared"]
        );
        let e = merge_tmpfs_options("foo=bar").unwrap_err();
        assert!(
            e.to_string().starts_with("invalid tmpfs option \"foo\""),
            "{e}"
        );
        assert!(merge_tmpfs_options("bogus").is_err());
    }
}
