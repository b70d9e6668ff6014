//! `inspect` of a container: Docker's JSON document, field for field.

use serde_json::{json, Map, Value};

use super::paths::ContainerPaths;
use super::store::{ContainerRecord, Status};

/// Docker's zero time, shown for times that never happened.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn time_or_zero(t: &str) -> &str {
    if t.is_empty() {
        ZERO_TIME
    } else {
        t
    }
}

/// The command a container runs, split as Docker's `Path` and `Args`.
pub fn path_and_args(c: &ContainerRecord) -> (String, Vec<String>) {
    let mut all: Vec<String> = c.config.entrypoint.clone().unwrap_or_default();
    all.extend(c.config.cmd.clone().unwrap_or_default());
    let mut it = all.into_iter();
    let path = it.next().unwrap_or_default();
    (path, it.collect())
}

/// `State` as Docker shows it; `health` is the monitor's `State.Health`.
pub fn state_json(c: &ContainerRecord, health: Option<Value>) -> Value {
    let s = c.status;
    let mut state = json!({
        "Status": s.as_str(),
        "Running": matches!(s, Status::Running | Status::Paused | Status::Restarting),
        "Paused": s == Status::Paused,
        "Restarting": s == Status::Restarting,
        "OOMKilled": c.run.oom_killed,
        "Dead": s == Status::Dead,
        "Pid": if s.is_active() { c.run.pid } else { 0 },
        "ExitCode": c.run.exit_code,
        "Error": c.run.error,
        "StartedAt": time_or_zero(&c.run.started_at),
        "FinishedAt": time_or_zero(&c.run.finished_at),
    });
    if let Some(h) = health {
        state["Health"] = h;
    }
    state
}

/// The whole `inspect` document.
pub fn inspect_json(
    c: &ContainerRecord,
    paths: &ContainerPaths,
    graph: Option<Value>,
    health: Option<Value>,
) -> Value {
    let (path, args) = path_and_args(c);
    let mut host_config = serde_json::to_value(&c.host_config).unwrap_or(Value::Null);
    if let Some(h) = host_config.as_object_mut() {
        // Docker prints the effective defaults, not the empty request.
        if h.get("NetworkMode").and_then(Value::as_str) == Some("") {
            h.insert("NetworkMode".into(), json!(super::network_mode(c)));
        }
        if h.get("ShmSize").and_then(Value::as_i64) == Some(0) {
            h.insert("ShmSize".into(), json!(super::DEFAULT_SHM_SIZE));
        }
        if let Some(lc) = h.get_mut("LogConfig").and_then(Value::as_object_mut) {
            if lc.get("Type").and_then(Value::as_str) == Some("") {
                lc.insert("Type".into(), json!(super::DEFAULT_LOG_DRIVER));
            }
        }
        let (masked, readonly) = super::spec::effective_system_paths(&c.host_config);
        h.insert("MaskedPaths".into(), json!(masked));
        h.insert("ReadonlyPaths".into(), json!(readonly));
        if h.get("Runtime").and_then(Value::as_str) == Some("") {
            h.insert("Runtime".into(), json!(super::DEFAULT_RUNTIME));
        }
        if let Some(rp) = h.get_mut("RestartPolicy").and_then(Value::as_object_mut) {
            if rp.get("Name").and_then(Value::as_str) == Some("") {
                rp.insert("Name".into(), json!("no"));
            }
        }
    }
    let mode = super::network_mode(c);
    let mut networks = Map::new();
    if mode == "none" || mode == "host" {
        networks.insert(mode.clone(), endpoint_json());
    }
    json!({
        "Id": c.id,
        "Created": c.created.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        "Path": path,
        "Args": args,
        "State": state_json(c, health),
        "Image": c.image_id,
        "ResolvConfPath": paths.resolv_conf().display().to_string(),
        "HostnamePath": paths.hostname().display().to_string(),
        "HostsPath": paths.hosts().display().to_string(),
        "LogPath": if c.host_config.log_config.kind == "none" { String::new() } else { paths.log_file().display().to_string() },
        "Name": format!("/{}", c.name),
        "RestartCount": c.run.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": Value::Null,
        "HostConfig": host_config,
        "GraphDriver": graph.unwrap_or_else(|| json!({"Data": Value::Null, "Name": "overlay2"})),
        "Mounts": mounts_json(c),
        "Config": serde_json::to_value(&c.config).unwrap_or(Value::Null),
        "NetworkSettings": {
            "Bridge": "",
            "SandboxID": "",
            "SandboxKey": "",
            "Ports": ports_json(c),
            "HairpinMode": false,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "SecondaryIPAddresses": Value::Null,
            "SecondaryIPv6Addresses": Value::Null,
            "EndpointID": "",
            "Gateway": "",
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "IPAddress": "",
            "IPPrefixLen": 0,
            "IPv6Gateway": "",
            "MacAddress": "",
            "Networks": networks,
        },
    })
}

fn endpoint_json() -> Value {
    json!({
        "IPAMConfig": Value::Null,
        "Links": Value::Null,
        "Aliases": Value::Null,
        "MacAddress": "",
        "DriverOpts": Value::Null,
        "GwPriority": 0,
        "NetworkID": "",
        "EndpointID": "",
        "Gateway": "",
        "IPAddress": "",
        "IPPrefixLen": 0,
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "DNSNames": Value::Null,
    })
}

/// Published ports: none until networking publishes them; exposed ports
/// show as unbound (`null`), as Docker shows them for a stopped container.
fn ports_json(c: &ContainerRecord) -> Value {
    let mut out = Map::new();
    if let Some(exposed) = &c.config.exposed_ports {
        for port in exposed.keys() {
            out.insert(port.clone(), Value::Null);
        }
    }
    Value::Object(out)
}

/// `Mounts`: the bind mounts and tmpfs a container has.
fn mounts_json(c: &ContainerRecord) -> Value {
    let mut out = Vec::new();
    for bind in c.host_config.binds.iter().flatten() {
        let parts: Vec<&str> = bind.split(':').collect();
        if parts.len() < 2 || !parts[0].starts_with('/') {
            continue;
        }
        let opts = parts.get(2).copied().unwrap_or("");
        let rw = !opts.split(',').any(|o| o == "ro");
        let propagation = opts
            .split(',')
            .find(|o| o.ends_with("shared") || o.ends_with("slave") || o.ends_with("private"))
            .unwrap_or("rprivate");
        out.push(json!({
            "Type": "bind",
            "Source": parts[0],
            "Destination": parts[1],
            "Mode": opts,
            "RW": rw,
            "Propagation": propagation,
        }));
    }
    for m in c.host_config.mounts.iter().flatten() {
        if m.kind == "bind" || m.kind == "tmpfs" {
            out.push(json!({
                "Type": m.kind,
                "Source": m.source,
                "Destination": m.target,
                "Mode": "",
                "RW": !m.read_only,
                "Propagation": m.bind_options.as_ref().map(|b| b.propagation.as_str()).filter(|p| !p.is_empty()).unwrap_or(if m.kind == "bind" { "rprivate" } else { "" }),
            }));
        }
    }
    Value::Array(out)
}
