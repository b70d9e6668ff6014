//! pause, resume, update: changes to a live container's cgroup.

use std::path::Path;

use oci_spec::runtime::LinuxResources;
use serde_json::{json, Map, Value};

use crate::cli::UpdateArgs;
use crate::error::RuntimeError;
use crate::state::{ContainerDir, Status};

pub fn pause(root: &Path, id: &str) -> Result<(), RuntimeError> {
    let dir = ContainerDir::open(root, id)?;
    let st = dir.load()?;
    let status = st.status(&dir.path);
    if status != Status::Running && status != Status::Created {
        return Err(RuntimeError::InvalidState {
            id: id.into(),
            action: "pause",
            status: status.to_string(),
        });
    }
    let cg = berth_cgroups::manager(&st.cgroup_path)
        .map_err(|e| RuntimeError::cgroup(&st.cgroup_path, e))?;
    cg.freeze()
        .map_err(|e| RuntimeError::cgroup(&st.cgroup_path, e))
}

pub fn resume(root: &Path, id: &str) -> Result<(), RuntimeError> {
    let dir = ContainerDir::open(root, id)?;
    let st = dir.load()?;
    let status = st.status(&dir.path);
    if status != Status::Paused {
        return Err(RuntimeError::InvalidState {
            id: id.into(),
            action: "resume",
            status: status.to_string(),
        });
    }
    let cg = berth_cgroups::manager(&st.cgroup_path)
        .map_err(|e| RuntimeError::cgroup(&st.cgroup_path, e))?;
    cg.thaw()
        .map_err(|e| RuntimeError::cgroup(&st.cgroup_path, e))
}

/// Parses a byte size like docker's RAMInBytes: `512`, `100k`, `64m`,
/// `1g`, `1.5GiB`; `-1` means unlimited.
pub fn parse_bytes(s: &str) -> Result<i64, String> {
    let t = s.trim();
    if t == "-1" {
        return Ok(-1);
    }
    let lower = t.to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(digits_end);
    let n: f64 = num.parse().map_err(|_| format!("invalid size {s:?}"))?;
    let mult: f64 = match unit.trim_end_matches('b').trim_end_matches('i') {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0_f64.powi(4),
        "p" => 1024.0_f64.powi(5),
        _ => return Err(format!("invalid size {s:?}: unknown unit {unit:?}")),
    };
    Ok((n * mult) as i64)
}

fn resources_from_flags(a: &UpdateArgs) -> Result<Value, RuntimeError> {
    let bytes = |flag: &str, v: &Option<String>| -> Result<Option<i64>, RuntimeError> {
        v.as_deref()
            .map(parse_bytes)
            .transpose()
            .map_err(|e| RuntimeError::InvalidArgument(format!("--{flag}: {e}")))
    };
    let mut memory = Map::new();
    if let Some(v) = bytes("memory", &a.memory)? {
        memory.insert("limit".into(), json!(v));
    }
    if let Some(v) = bytes("memory-swap", &a.memory_swap)? {
        memory.insert("swap".into(), json!(v));
    }
    if let Some(v) = bytes("memory-reservation", &a.memory_reservation)? {
        memory.insert("reservation".into(), json!(v));
    }
    if let Some(v) = bytes("kernel-memory", &a.kernel_memory)? {
        memory.insert("kernel".into(), json!(v));
    }
    let mut cpu = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            cpu.insert(k.into(), v);
        }
    };
    put("shares", a.cpu_shares.map(|v| json!(v)));
    put("quota", a.cpu_quota.map(|v| json!(v)));
    put("period", a.cpu_period.map(|v| json!(v)));
    put("realtimePeriod", a.cpu_rt_period.map(|v| json!(v)));
    put("realtimeRuntime", a.cpu_rt_runtime.map(|v| json!(v)));
    put("cpus", a.cpuset_cpus.clone().map(Value::String));
    put("mems", a.cpuset_mems.clone().map(Value::String));
    let mut r = Map::new();
    if !memory.is_empty() {
        r.insert("memory".into(), Value::Object(memory));
    }
    if !cpu.is_empty() {
        r.insert("cpu".into(), Value::Object(cpu));
    }
    if let Some(p) = a.pids_limit {
        r.insert("pids".into(), json!({ "limit": p }));
    }
    if let Some(w) = a.blkio_weight {
        r.insert("blockIO".into(), json!({ "weight": w }));
    }
    Ok(Value::Object(r))
}

fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o,
    }
}

pub fn update(root: &Path, a: &UpdateArgs) -> Result<(), RuntimeError> {
    let requested: Value = match &a.resources {
        Some(p) => {
            let data = if p.as_os_str() == "-" {
                let mut s = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut s)
                    .map_err(|e| RuntimeError::io("read stdin", e))?;
                s
            } else {
                std::fs::read(p)
                    .map_err(|e| RuntimeError::io(format!("read {}", p.display()), e))?
            };
            serde_json::from_slice(&data)
                .map_err(|e| RuntimeError::InvalidArgument(format!("--resources: {e}")))?
        }
        None => resources_from_flags(a)?,
    };
    // Validate the request on its own, naming the field of a type error.
    let text = requested.to_string();
    let de = &mut serde_json::Deserializer::from_str(&text);
    let _: LinuxResources = serde_path_to_error::deserialize(de).map_err(|e| {
        RuntimeError::InvalidArgument(format!("resources: {}: {}", e.path(), e.inner()))
    })?;

    let dir = ContainerDir::open(root, &a.id)?;
    let mut st = dir.load()?;
    let status = st.status(&dir.path);
    if status == Status::Stopped {
        return Err(RuntimeError::InvalidState {
            id: a.id.clone(),
            action: "update",
            status: status.to_string(),
        });
    }
    let cg = berth_cgroups::manager(&st.cgroup_path)
        .map_err(|e| RuntimeError::cgroup(&st.cgroup_path, e))?;
    let requested_res: LinuxResources = serde_json::from_value(requested.clone())
        .map_err(|e| RuntimeError::InvalidArgument(format!("resources: {e}")))?;
    cg.apply(&requested_res)
        .map_err(|e| RuntimeError::cgroup(&st.cgroup_path, e))?;

    // Remember the merged resources so `state`-based tools see them.
    let mut merged = st
        .config
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| serde_json::to_value(r).ok())
        .unwrap_or_else(|| json!({}));
    merge(&mut merged, requested);
    if let (Ok(res), Some(linux)) = (
        serde_json::from_value::<LinuxResources>(merged),
        st.config.linux_mut().as_mut(),
    ) {
        linux.set_resources(Some(res));
    }
    dir.save(&st)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("512").unwrap(), 512);
        assert_eq!(parse_bytes("64m").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("1G").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("2MiB").unwrap(), 2 << 20);
        assert_eq!(parse_bytes("-1").unwrap(), -1);
        assert!(parse_bytes("12x").is_err());
    }
}
