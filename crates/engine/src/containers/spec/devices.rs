//! Devices: the device cgroup allow-list (Docker's defaults, `--device`,
//! `--device-cgroup-rule`, privileged's allow-all) and the device nodes
//! created in the container.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType};

use super::SpecError;
use crate::containers::model::HostConfig;

/// Directories under /dev a privileged container does not copy nodes from
/// (they are mounted fresh, or belong to LXD/udev).
const SKIPPED_DEV_DIRS: [&str; 7] = ["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"];

fn rule(
    allow: bool,
    typ: Option<LinuxDeviceType>,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(allow)
        .set_typ(typ)
        .set_major(major)
        .set_minor(minor)
        .set_access(Some(access.to_string()));
    r
}

/// Docker's default allow-list: deny everything, then the standard
/// character devices, ptys and /dev/net/tun; fuse denied; then mknod of
/// any node (runc's implicit rules). The wildcards come after the fuse
/// deny: cgroup v1 cannot punch a hole into a wildcard exception.
pub(crate) fn default_rules() -> Vec<LinuxDeviceCgroup> {
    use LinuxDeviceType::{B, C};
    let mut rules = vec![rule(false, None, None, None, "rwm")];
    // null, zero, full, random, urandom, tty, console, ptmx, tun
    for (major, minor) in [
        (1, 3),
        (1, 5),
        (1, 7),
        (1, 8),
        (1, 9),
        (5, 0),
        (5, 1),
        (5, 2),
        (10, 200),
    ] {
        rules.push(rule(true, Some(C), Some(major), Some(minor), "rwm"));
    }
    rules.push(rule(true, Some(C), Some(136), None, "rwm"));
    rules.push(rule(false, Some(C), Some(10), Some(229), "rwm"));
    rules.push(rule(true, Some(C), None, None, "m"));
    rules.push(rule(true, Some(B), None, None, "m"));
    rules
}

/// The spec's `linux.devices` and `linux.resources.devices`.
pub(crate) fn devices(
    host: &HostConfig,
    warnings: &mut Vec<String>,
) -> Result<(Vec<LinuxDevice>, Vec<LinuxDeviceCgroup>), SpecError> {
    let mut nodes = Vec::new();
    if host.privileged {
        nodes.extend(host_devices()?);
        for m in &host.devices {
            let inside = in_container_path(&m.path_on_host, &m.path_in_container);
            if !m.cgroup_permissions.is_empty() && m.cgroup_permissions != "rwm" {
                warnings.push(format!(
                    "custom {} permissions for device {} are ignored in privileged mode",
                    m.cgroup_permissions, m.path_on_host
                ));
            }
            if Path::new(&m.path_on_host) == Path::new(inside) {
                continue; // already there: privileged copies all of /dev
            }
            nodes.extend(devices_from_path(&m.path_on_host, inside)?);
        }
        return Ok((nodes, vec![rule(true, None, None, None, "rwm")]));
    }
    let mut rules = default_rules();
    for m in &host.devices {
        let access = if m.cgroup_permissions.is_empty() {
            "rwm"
        } else {
            m.cgroup_permissions.as_str()
        };
        if !valid_access(access) {
            return Err(SpecError::invalid(format!(
                "invalid device mode: {access}: --device {}:{}:{access} takes any of r, w and m",
                m.path_on_host, m.path_in_container
            )));
        }
        let inside = in_container_path(&m.path_on_host, &m.path_in_container);
        for d in devices_from_path(&m.path_on_host, inside)? {
            if d.typ() != LinuxDeviceType::P {
                rules.push(rule(
                    true,
                    Some(d.typ()),
                    Some(d.major()),
                    Some(d.minor()),
                    access,
                ));
            }
            nodes.push(d);
        }
    }
    for text in host.device_cgroup_rules.iter().flatten() {
        rules.push(parse_cgroup_rule(text)?);
    }
    Ok((nodes, rules))
}

fn in_container_path<'a>(on_host: &'a str, in_container: &'a str) -> &'a str {
    if in_container.is_empty() {
        on_host
    } else {
        in_container
    }
}

fn valid_access(access: &str) -> bool {
    !access.is_empty() && access.len() <= 3 && access.chars().all(|c| matches!(c, 'r' | 'w' | 'm'))
}

/// `--device-cgroup-rule 'c 42:* rmw'`.
pub(crate) fn parse_cgroup_rule(text: &str) -> Result<LinuxDeviceCgroup, SpecError> {
    let bad = || {
        SpecError::invalid(format!(
            "invalid device cgroup rule format: '{text}': --device-cgroup-rule takes 'TYPE MAJOR:MINOR ACCESS' like 'c 1:3 rwm' (TYPE a, b or c; * for any number)"
        ))
    };
    let parts: Vec<&str> = text.split(' ').collect();
    let [typ, numbers, access] = parts[..] else {
        return Err(bad());
    };
    let typ = match typ {
        "a" => LinuxDeviceType::A,
        "b" => LinuxDeviceType::B,
        "c" => LinuxDeviceType::C,
        _ => return Err(bad()),
    };
    let (major, minor) = numbers.split_once(':').ok_or_else(bad)?;
    let number = |s: &str| -> Result<Option<i64>, SpecError> {
        match s {
            "*" => Ok(None),
            s if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                s.parse().map(Some).map_err(|_| bad())
            }
            _ => Err(bad()),
        }
    };
    if !valid_access(access) {
        return Err(bad());
    }
    Ok(rule(
        true,
        Some(typ),
        number(major)?,
        number(minor)?,
        access,
    ))
}

/// The device node at `path` (not following a final symlink), or `None`
/// when it is not a device.
fn device_at(path: &Path, inside: PathBuf) -> std::io::Result<Option<LinuxDevice>> {
    let meta = std::fs::symlink_metadata(path)?;
    let ft = meta.file_type();
    let typ = if ft.is_char_device() {
        LinuxDeviceType::C
    } else if ft.is_block_device() {
        LinuxDeviceType::B
    } else if ft.is_fifo() {
        LinuxDeviceType::P
    } else {
        return Ok(None);
    };
    let rdev = meta.rdev();
    let mut d = LinuxDevice::default();
    d.set_path(inside)
        .set_typ(typ)
        .set_major(i64::from(nix::sys::stat::major(rdev) as u32))
        .set_minor(i64::from(nix::sys::stat::minor(rdev) as u32))
        .set_file_mode(Some(meta.mode() & 0o7777))
        .set_uid(Some(meta.uid()))
        .set_gid(Some(meta.gid()));
    Ok(Some(d))
}

/// Docker's `DevicesFromPath`: one device, or every device below a
/// directory, with host paths mapped to `inside`.
fn devices_from_path(on_host: &str, inside: &str) -> Result<Vec<LinuxDevice>, SpecError> {
    let err = |why: String| SpecError::Device {
        path: on_host.to_string(),
        why,
    };
    // A symlink (/dev/disk/by-id/…) names the node it points to.
    let resolved = std::fs::canonicalize(on_host).map_err(|e| err(lower_io(&e)))?;
    match device_at(&resolved, PathBuf::from(inside)) {
        Ok(Some(d)) => return Ok(vec![d]),
        Ok(None) => {}
        Err(e) => return Err(err(lower_io(&e))),
    }
    if !resolved.is_dir() {
        return Err(err("not a device node".into()));
    }
    let mut out = Vec::new();
    walk(&resolved, &mut |p| {
        let Ok(rel) = p.strip_prefix(&resolved) else {
            return;
        };
        if let Ok(Some(d)) = device_at(p, Path::new(inside).join(rel)) {
            out.push(d);
        }
    });
    if out.is_empty() {
        return Err(err("not a device node, nor a directory holding any".into()));
    }
    Ok(out)
}

/// Go's error texts are lower case ("no such file or directory"); Docker's
/// CLI even picks the exit code by them.
fn lower_io(e: &std::io::Error) -> String {
    let s = e.to_string();
    let s = s.split(" (os error").next().unwrap_or(&s).to_string();
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_lowercase().chain(c).collect(),
        None => s,
    }
}

/// Visits every non-directory entry below `dir` (symlinks not followed).
fn walk(dir: &Path, visit: &mut dyn FnMut(&Path)) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(ft) if ft.is_dir() => walk(&p, visit),
            Ok(_) => visit(&p),
            Err(_) => {}
        }
    }
}

/// Every device node of the host's /dev, for a privileged container
/// (containerd's `HostDevices`).
fn host_devices() -> Result<Vec<LinuxDevice>, SpecError> {
    fn scan(dir: &Path, out: &mut Vec<LinuxDevice>) -> Result<(), SpecError> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| SpecError::io("listing host devices for --privileged", dir, e))?;
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                if !SKIPPED_DEV_DIRS.iter().any(|s| name == *s) {
                    scan(&p, out)?;
                }
                continue;
            }
            if name == "console" {
                continue;
            }
            match device_at(&p, p.clone()) {
                Ok(Some(d)) if d.typ() != LinuxDeviceType::P => out.push(d),
                // gone meanwhile, or not a device
                _ => {}
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    scan(Path::new("/dev"), &mut out)?;
    Ok(out)
}

/// Major and minor of the block device at `path`, for the blkio flags.
pub(crate) fn block_device_numbers(path: &str, flag: &str) -> Result<(i64, i64), SpecError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| SpecError::invalid(format!("{flag} {path}: stat {path}: {}", lower_io(&e))))?;
    if !meta.file_type().is_block_device() {
        return Err(SpecError::invalid(format!(
            "{flag} {path}: not a block device: name a disk such as /dev/sda"
        )));
    }
    let rdev = meta.rdev();
    Ok((
        i64::from(nix::sys::stat::major(rdev) as u32),
        i64::from(nix::sys::stat::minor(rdev) as u32),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::model::DeviceMapping;
    use serde_json::{json, Value};

    fn rules_text(rules: &[LinuxDeviceCgroup]) -> Vec<String> {
        rules
            .iter()
            .map(|r| format!("{}{}", if r.allow() { "+" } else { "-" }, r))
            .collect()
    }

    #[test]
    fn default_allow_list() {
        let (nodes, rules) = devices(&HostConfig::default(), &mut vec![]).unwrap();
        assert!(nodes.is_empty());
        let text = rules_text(&rules);
        assert_eq!(text[0], "-a *:* rwm");
        for want in [
            "+c *:* m",
            "+b *:* m",
            "+c 1:3 rwm",
            "+c 5:2 rwm",
            "+c 136:* rwm",
            "+c 10:200 rwm",
            "-c 10:229 rwm",
        ] {
            assert!(
                text.contains(&want.to_string()),
                "{want} missing from {text:?}"
            );
        }
    }

    #[test]
    fn device_flag_and_rules() {
        let h = HostConfig {
            devices: vec![DeviceMapping {
                path_on_host: "/dev/null".into(),
                path_in_container: "/dev/mynull".into(),
                cgroup_permissions: "rw".into(),
            }],
            device_cgroup_rules: Some(vec!["c 42:* rmw".into(), "b 8:0 r".into()]),
            ..Default::default()
        };
        let (nodes, rules) = devices(&h, &mut vec![]).unwrap();
        let v: Value = serde_json::to_value(&nodes).unwrap();
        assert_eq!(v[0]["path"], "/dev/mynull");
        assert_eq!(v[0]["type"], "c");
        assert_eq!(
            (v[0]["major"].clone(), v[0]["minor"].clone()),
            (json!(1), json!(3))
        );
        assert_eq!(v[0]["fileMode"], json!(0o666));
        let text = rules_text(&rules);
        let tail: Vec<&str> = text
            .iter()
            .rev()
            .take(3)
            .rev()
            .map(String::as_str)
            .collect();
        assert_eq!(tail, ["+c 1:3 rw", "+c 42:* rmw", "+b 8:0 r"]);
    }

    #[test]
    fn directory_of_devices() {
        let tmp = berth_testutil::TempDir::new("spec-devdir").unwrap();
        let dir = tmp.join("devs");
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        let mknod = |p: PathBuf, minor| {
            nix::sys::stat::mknod(
                &p,
                nix::sys::stat::SFlag::S_IFCHR,
                nix::sys::stat::Mode::from_bits_truncate(0o600),
                nix::sys::stat::makedev(1, minor),
            )
        };
        if !berth_testutil::is_root() {
            eprintln!("SKIPPED: mknod needs root");
            return;
        }
        mknod(dir.join("a"), 3).unwrap();
        mknod(dir.join("sub/b"), 5).unwrap();
        std::fs::write(dir.join("not-a-device"), "").unwrap();
        let mut got: Vec<String> = devices_from_path(dir.to_str().unwrap(), "/dev/x")
            .unwrap()
            .iter()
            .map(|d| format!("{} {}:{}", d.path().display(), d.major(), d.minor()))
            .collect();
        got.sort();
        assert_eq!(got, ["/dev/x/a 1:3", "/dev/x/sub/b 1:5"]);
    }

    #[test]
    fn missing_device_reads_like_docker() {
        let h = HostConfig {
            devices: vec![DeviceMapping {
                path_on_host: "/dev/berth-no-such".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let e = devices(&h, &mut vec![]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "error gathering device information while adding custom device \"/dev/berth-no-such\": no such file or directory"
        );
        assert_eq!(e.exit_code(), 127);
        let h = HostConfig {
            devices: vec![DeviceMapping {
                path_on_host: "/etc/hostname".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert!(devices(&h, &mut vec![])
            .unwrap_err()
            .to_string()
            .contains("not a device node"));
        let h = HostConfig {
            devices: vec![DeviceMapping {
                path_on_host: "/dev/null".into(),
                cgroup_permissions: "rwx".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert!(devices(&h, &mut vec![])
            .unwrap_err()
            .to_string()
            .starts_with("invalid device mode: rwx"));
    }

    #[test]
    fn bad_cgroup_rules() {
        for bad in [
            "c 1:3",
            "x 1:3 rwm",
            "c 1-3 rwm",
            "c 1:3 rwx",
            "c a:3 r",
            "c  1:3 r",
            "c 1:3 rwmr",
        ] {
            let e = parse_cgroup_rule(bad).unwrap_err();
            assert!(
                e.to_string()
                    .starts_with("invalid device cgroup rule format"),
                "{bad}: {e}"
            );
        }
        assert_eq!(
            parse_cgroup_rule("a *:* rwm").unwrap().to_string(),
            "a *:* rwm"
        );
    }

    #[test]
    fn privileged_gets_host_devices() {
        let mut warnings = vec![];
        let h = HostConfig {
            privileged: true,
            devices: vec![DeviceMapping {
                path_on_host: "/dev/null".into(),
                path_in_container: "/dev/null".into(),
                cgroup_permissions: "r".into(),
            }],
            ..Default::default()
        };
        let (nodes, rules) = devices(&h, &mut warnings).unwrap();
        assert_eq!(rules_text(&rules), ["+a *:* rwm"]);
        let paths: Vec<PathBuf> = nodes.iter().map(|d| d.path().clone()).collect();
        assert!(paths.contains(&PathBuf::from("/dev/null")));
        assert!(!paths
            .iter()
            .any(|p| p.starts_with("/dev/pts") || p == Path::new("/dev/console")));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
    }
}
