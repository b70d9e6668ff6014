//! `-v/--volume`, `--mount`, `--tmpfs` and `--volumes-from`: the syntax
//! Docker's CLI accepts (`loader.ParseVolume`, `opts.MountOpt`) and the
//! syntax checks its daemon makes before touching the host (`ParseMountRaw`,
//! `validateMountConfig`). Whether a bind source exists is the engine's
//! question, asked when it creates the container.

use std::collections::BTreeMap;
use std::path::Path;

use berth_engine::containers::model::{
    BindOptions, Empty, MountSpec, TmpfsOptions, VolumeDriverConfig, VolumeOptions,
};

use super::values::{clean_path, cut, go_bool, restricted_name};

/// `-v` specs split the way Docker's CLI splits them: those with a source
/// (binds and named volumes) go to `HostConfig.Binds`, the rest are
/// anonymous volumes in `Config.Volumes`.
#[derive(Debug, Default)]
pub struct Volumes {
    pub binds: Vec<String>,
    pub anonymous: BTreeMap<String, Empty>,
}

/// Parses all `-v` specs. `volume_driver` is `--volume-driver` (named
/// volumes of another driver skip the local name check).
pub fn volumes(specs: &[String], volume_driver: &str, cwd: &Path) -> Result<Volumes, String> {
    let mut out = Volumes::default();
    for spec in specs {
        let (source, _target) = cli_parse_volume(spec)?;
        if source.is_empty() {
            validate_target(spec, "volume", spec)?;
            out.anonymous.insert(spec.clone(), Empty {});
            continue;
        }
        let mut bind = spec.clone();
        if source.starts_with('.') {
            // Docker's CLI resolves `./dir` against its working directory.
            if let Some((_, rest)) = spec.split_once(':') {
                let absolute = clean_path(&cwd.join(&source).to_string_lossy());
                bind = format!("{absolute}:{rest}");
            }
        }
        daemon_parse_mount_raw(&bind, volume_driver)?;
        if !out.binds.contains(&bind) {
            out.binds.push(bind);
        }
    }
    Ok(out)
}

/// `loader.ParseVolume`, reduced to what decides a spec's kind: the source
/// (empty for anonymous volumes) and the target. Windows drive letters are
/// not special: berth serves Linux containers only.
fn cli_parse_volume(spec: &str) -> Result<(String, String), String> {
    match spec.len() {
        0 => return Err("invalid empty volume spec".to_string()),
        1 | 2 => return Ok((String::new(), spec.to_string())),
        _ => {}
    }
    let mut source: Option<&str> = None;
    let mut target: Option<&str> = None;
    let fields: Vec<&str> = spec.split(':').collect();
    let last = fields.len() - 1;
    for (i, field) in fields.iter().enumerate() {
        let at_end = i == last;
        let error = if field.is_empty() {
            Some("empty section between colons")
        } else if source.is_none() && at_end {
            target = Some(field);
            None
        } else if source.is_none() {
            source = Some(field);
            None
        } else if target.is_none() {
            target = Some(field);
            None
        } else if !at_end {
            Some("too many colons")
        } else {
            // The mode; the daemon checks it.
            None
        };
        if let Some(error) = error {
            return Err(format!("invalid spec: {spec}: {error}"));
        }
    }
    Ok((
        source.unwrap_or_default().to_string(),
        target.unwrap_or_default().to_string(),
    ))
}

/// The daemon's `ParseMountRaw` for a `src:dst[:mode]` bind or named volume.
fn daemon_parse_mount_raw(raw: &str, volume_driver: &str) -> Result<(), String> {
    let invalid_spec = || format!("invalid volume specification: '{raw}'");
    let parts: Vec<&str> = raw.splitn(4, ':').collect();
    if parts[0].is_empty() {
        return Err(invalid_spec());
    }
    let (source, target, mode) = match parts.as_slice() {
        [target] => ("", *target, ""),
        [_, second] if valid_mount_mode(second) => return Err(invalid_spec()),
        [source, target] => (*source, *target, ""),
        [source, target, mode] => (*source, *target, *mode),
        _ => return Err(invalid_spec()),
    };
    if !valid_mount_mode(mode) {
        return Err(format!("invalid mode: {mode}"));
    }
    let kind = if source.starts_with('/') {
        "bind"
    } else {
        "volume"
    };
    validate_target(raw, kind, target)?;
    // `nocopy` becomes VolumeOptions and a propagation BindOptions, which
    // the other kind of mount must not carry.
    let options: Vec<&str> = mode.split(',').collect();
    let extra_field = match kind {
        "bind" if options.contains(&"nocopy") => Some("VolumeOptions"),
        "volume" if options.iter().any(|o| PROPAGATIONS.contains(o)) => Some("BindOptions"),
        _ => None,
    };
    if let Some(field) = extra_field {
        return Err(format!(
            "invalid volume specification: '{raw}': invalid mount config for type \"{kind}\": field {field} must not be specified"
        ));
    }
    if kind == "volume" && is_local_driver(volume_driver) && !restricted_name(source) {
        return Err(local_volume_name_error(source));
    }
    Ok(())
}

fn is_local_driver(driver: &str) -> bool {
    driver.is_empty() || driver == "local"
}

/// The local volume driver's refusal of a name (Docker's text, which also
/// catches relative host paths given where a volume name is expected).
fn local_volume_name_error(name: &str) -> String {
    format!(
        "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
    )
}

fn validate_target(raw: &str, kind: &str, target: &str) -> Result<(), String> {
    let reason = mount_target_error(target);
    match reason {
        Some(reason) => Err(format!(
            "invalid volume specification: '{raw}': invalid mount config for type \"{kind}\": {reason}"
        )),
        None => Ok(()),
    }
}

/// `validateMountConfig`'s checks of a target: present, absolute, not `/`.
fn mount_target_error(target: &str) -> Option<String> {
    if target.is_empty() {
        Some("field Target must not be empty".to_string())
    } else if clean_path(target) == "/" {
        Some("invalid specification: destination can't be '/'".to_string())
    } else if !target.starts_with('/') {
        Some(format!(
            "invalid mount path: '{target}' mount path must be absolute"
        ))
    } else {
        None
    }
}

const PROPAGATIONS: [&str; 6] = [
    "private", "rprivate", "slave", "rslave", "shared", "rshared",
];

/// The daemon's `linuxValidMountMode`: at most one of each of rw/ro, z/Z,
/// a propagation, nocopy, and a consistency.
fn valid_mount_mode(mode: &str) -> bool {
    if mode.is_empty() {
        return true;
    }
    let mut counts = [0u8; 5];
    for option in mode.split(',') {
        let class = match option {
            "rw" | "ro" => 0,
            "z" | "Z" => 1,
            o if PROPAGATIONS.contains(&o) => 2,
            "nocopy" => 3,
            "consistent" | "cached" | "delegated" => 4,
            _ => return false,
        };
        counts[class] += 1;
    }
    counts.iter().all(|&c| c <= 1)
}

/// The daemon's `ParseVolumesFrom`: `container[:ro|rw]`.
pub fn volumes_from(spec: &str) -> Result<(), String> {
    if spec.is_empty() {
        return Err("volumes-from specification cannot be an empty string".to_string());
    }
    let (_, mode, _) = cut(spec, ':');
    if mode.is_empty() {
        return Ok(());
    }
    let has_forbidden = mode
        .split(',')
        .any(|o| PROPAGATIONS.contains(&o) || o == "nocopy");
    if !valid_mount_mode(mode) || has_forbidden {
        return Err(format!("invalid mode: {mode}"));
    }
    Ok(())
}

/// `--tmpfs /path[:options]`: the daemon's destination checks.
pub fn tmpfs(spec: &str) -> Result<(String, String), String> {
    let (dest, options, _) = cut(spec, ':');
    if clean_path(dest) == "/" {
        return Err("invalid specification: destination can't be '/'".to_string());
    }
    if !dest.starts_with('/') {
        return Err(format!(
            "invalid mount path: '{dest}' mount path must be absolute"
        ));
    }
    Ok((dest.to_string(), options.to_string()))
}

/// Why a `--mount` value was refused: by the CLI's flag parser (Docker
/// prints it as an invalid argument of the flag) or by the daemon's checks.
#[derive(Debug, PartialEq)]
pub enum MountError {
    Flag(String),
    Config(String),
}

/// `--mount type=…,source=…,target=…,…` (`opts.MountOpt.Set`, then the
/// daemon's `validateMountConfig`).
pub fn mount(value: &str, volume_driver: &str, cwd: &Path) -> Result<MountSpec, MountError> {
    let spec = cli_parse_mount(value, cwd).map_err(MountError::Flag)?;
    validate_mount(&spec, volume_driver).map_err(MountError::Config)?;
    Ok(spec)
}

fn cli_parse_mount(value: &str, cwd: &Path) -> Result<MountSpec, String> {
    let fields = csv_record(value)?;
    let mut m = MountSpec {
        kind: "volume".to_string(),
        ..Default::default()
    };
    fn volume_options(m: &mut MountSpec) -> &mut VolumeOptions {
        let options = m.volume_options.get_or_insert_with(VolumeOptions::default);
        options
            .driver_config
            .get_or_insert_with(VolumeDriverConfig::default);
        options
    }
    for field in &fields {
        let (key, val, has_value) = cut(field, '=');
        let key = key.to_ascii_lowercase();
        let invalid_value = || format!("invalid value for {key}: {val}");
        if !has_value {
            match key.as_str() {
                "readonly" | "ro" => m.read_only = true,
                "volume-nocopy" => volume_options(&mut m).no_copy = true,
                "bind-nonrecursive" => {
                    m.bind_options
                        .get_or_insert_with(Default::default)
                        .non_recursive = true
                }
                _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
            }
            continue;
        }
        match key.as_str() {
            "type" => m.kind = val.to_ascii_lowercase(),
            "source" | "src" => {
                m.source = val.to_string();
                if val.starts_with('.') {
                    m.source = clean_path(&cwd.join(val).to_string_lossy());
                }
            }
            "target" | "dst" | "destination" => m.target = val.to_string(),
            "readonly" | "ro" => m.read_only = go_bool(val).map_err(|_| invalid_value())?,
            "consistency" => m.consistency = val.to_ascii_lowercase(),
            "bind-propagation" => {
                m.bind_options.get_or_insert_with(Default::default).propagation =
                    val.to_ascii_lowercase()
            }
            "bind-nonrecursive" => {
                m.bind_options.get_or_insert_with(Default::default).non_recursive =
                    go_bool(val).map_err(|_| invalid_value())?
            }
            "bind-recursive" => match val {
                "enabled" => {
                    m.bind_options.get_or_insert_with(BindOptions::default);
                }
                "disabled" => {
                    m.bind_options.get_or_insert_with(Default::default).non_recursive = true
                }
                // Docker's two read-only recursion modes need mount_setattr
                // options the container model has no field for yet.
                "writable" | "readonly" => {
                    return Err(format!(
                        "bind-recursive={val} is not supported by berth (use enabled or disabled)"
                    ))
                }
                _ => {
                    return Err(format!(
                        "invalid value for {key}: {val} (must be \"enabled\", \"disabled\", \"writable\", or \"readonly\")"
                    ))
                }
            },
            "volume-subpath" => volume_options(&mut m).subpath = val.to_string(),
            "volume-nocopy" => {
                volume_options(&mut m).no_copy =
                    go_bool(val).map_err(|_| format!("invalid value for volume-nocopy: {val}"))?
            }
            "volume-label" => {
                let (k, v, _) = cut(val, '=');
                if !k.is_empty() {
                    volume_options(&mut m).labels.insert(k.to_string(), v.to_string());
                }
            }
            "volume-driver" => {
                if let Some(driver) = volume_options(&mut m).driver_config.as_mut() {
                    driver.name = val.to_string();
                }
            }
            "volume-opt" => {
                let (k, v, _) = cut(val, '=');
                if let Some(driver) = volume_options(&mut m).driver_config.as_mut() {
                    if !k.is_empty() {
                        driver.options.insert(k.to_string(), v.to_string());
                    }
                }
            }
            // Image mounts' subpath has no field in the container model.
            "image-subpath" => return Err("image-subpath is not supported by berth".to_string()),
            "tmpfs-size" => {
                let size = crate::units::ram_in_bytes(val).map_err(|_| invalid_value())?;
                m.tmpfs_options
                    .get_or_insert_with(TmpfsOptions::default)
                    .size_bytes = size;
            }
            "tmpfs-mode" => {
                let mode = u32::from_str_radix(val, 8).map_err(|_| invalid_value())?;
                m.tmpfs_options
                    .get_or_insert_with(TmpfsOptions::default)
                    .mode = mode;
            }
            _ => return Err(format!("unexpected key '{key}' in '{field}'")),
        }
    }
    if m.kind.is_empty() {
        return Err("type is required".to_string());
    }
    if m.target.is_empty() {
        return Err("target is required".to_string());
    }
    let mixed = |prefix: &str| {
        format!(
            "cannot mix '{prefix}-*' options with mount type '{}'",
            m.kind
        )
    };
    if m.volume_options.is_some() && m.kind != "volume" {
        return Err(mixed("volume"));
    }
    if m.bind_options.is_some() && m.kind != "bind" {
        return Err(mixed("bind"));
    }
    if m.tmpfs_options.is_some() && m.kind != "tmpfs" {
        return Err(mixed("tmpfs"));
    }
    Ok(m)
}

/// The daemon's `validateMountConfigImpl`, without the bind source
/// existence check (host state; the engine makes it).
fn validate_mount(m: &MountSpec, volume_driver: &str) -> Result<(), String> {
    let fail = |reason: String| format!("invalid mount config for type \"{}\": {reason}", m.kind);
    if let Some(reason) = mount_target_error(&m.target) {
        return Err(fail(reason));
    }
    match m.kind.as_str() {
        "bind" => {
            if m.source.is_empty() {
                return Err(fail("field Source must not be empty".to_string()));
            }
            if let Some(options) = &m.bind_options {
                if !options.propagation.is_empty()
                    && !PROPAGATIONS.contains(&options.propagation.as_str())
                {
                    return Err(fail(format!(
                        "invalid propagation mode: {}",
                        options.propagation
                    )));
                }
            }
            if !m.source.starts_with('/') {
                return Err(fail(format!(
                    "invalid mount path: '{}' mount path must be absolute",
                    m.source
                )));
            }
        }
        "volume" => {
            let anonymous = m.source.is_empty();
            if let Some(options) = &m.volume_options {
                if !options.subpath.is_empty() {
                    if anonymous {
                        return Err(fail(
                            "must not set Subpath when using anonymous volumes".to_string(),
                        ));
                    }
                    if !is_local_path(&options.subpath) {
                        return Err(fail(
                            "subpath must be a relative path within the volume".to_string(),
                        ));
                    }
                }
            }
            if m.read_only && anonymous {
                return Err(fail(
                    "must not set ReadOnly mode when using anonymous volumes".to_string(),
                ));
            }
            let driver = m
                .volume_options
                .as_ref()
                .and_then(|o| o.driver_config.as_ref())
                .map(|d| d.name.as_str())
                .unwrap_or_default();
            if !anonymous
                && is_local_driver(driver)
                && is_local_driver(volume_driver)
                && !restricted_name(&m.source)
            {
                return Err(local_volume_name_error(&m.source));
            }
        }
        "tmpfs" => {
            if !m.source.is_empty() {
                return Err(fail("field Source must not be specified".to_string()));
            }
        }
        "image" => {
            if m.source.is_empty() {
                return Err(fail("field Source must not be empty".to_string()));
            }
        }
        _ => return Err(fail("mount type unknown".to_string())),
    }
    Ok(())
}

/// Go's `filepath.IsLocal`: relative, not empty, never leaving its root.
fn is_local_path(p: &str) -> bool {
    if p.is_empty() || p.starts_with('/') {
        return false;
    }
    let cleaned = clean_path(p);
    cleaned != ".." && !cleaned.starts_with("../")
}

/// One record of Go's `encoding/csv` (comma-separated, `"` quoting with
/// `""` escapes), which `--mount` values are.
fn csv_record(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    loop {
        let mut field = String::new();
        if chars.get(i) == Some(&'"') {
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        return Err(format!(
                            "parse error on line 1, column {}: extraneous or missing \" in quoted-field",
                            i + 1
                        ))
                    }
                    Some('"') if chars.get(i + 1) == Some(&'"') => {
                        field.push('"');
                        i += 2;
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some(&c) => {
                        field.push(c);
                        i += 1;
                    }
                }
            }
            if !matches!(chars.get(i), None | Some(',')) {
                return Err(format!(
                    "parse error on line 1, column {}: extraneous or missing \" in quoted-field",
                    i + 1
                ));
            }
        } else {
            while let Some(&c) = chars.get(i) {
                if c == ',' {
                    break;
                }
                if c == '"' {
                    return Err(format!(
                        "parse error on line 1, column {}: bare \" in non-quoted-field",
                        i + 1
                    ));
                }
                field.push(c);
                i += 1;
            }
        }
        fields.push(field);
        if chars.get(i) == Some(&',') {
            i += 1;
        } else {
            return Ok(fields);
        }
    }
}
