//! Privileges and confinement: capabilities, `--security-opt` (with the
//! seccomp profile read into the option, as Docker's CLI does), sysctls,
//! group membership and annotations.

use std::collections::BTreeMap;

use berth_engine::containers::model::HostConfig;

use super::values::{self, cut};
use super::{CreateArgs, FlagError};

impl CreateArgs {
    pub(super) fn apply_security(&self, host: &mut HostConfig) -> Result<(), FlagError> {
        host.cap_add = capabilities("--cap-add", &self.cap_add)?;
        host.cap_drop = capabilities("--cap-drop", &self.cap_drop)?;
        if !self.group_add.is_empty() {
            host.group_add = Some(self.group_add.clone());
        }
        let (options, unconfined_paths) = security_options(&self.security_opt)?;
        if !options.is_empty() {
            host.security_opt = Some(options);
        }
        if unconfined_paths {
            host.masked_paths = Some(Vec::new());
            host.readonly_paths = Some(Vec::new());
        }
        let mut sysctls = BTreeMap::new();
        for entry in &self.sysctl {
            sysctl(entry).map_err(|r| FlagError::invalid_argument("--sysctl", entry, r))?;
            let (k, v, _) = values::cut(entry, '=');
            sysctls.insert(k.to_string(), v.to_string());
        }
        if !sysctls.is_empty() {
            host.sysctls = Some(sysctls);
        }
        let annotations = values::kv_map(&self.annotation);
        if !annotations.is_empty() {
            host.annotations = Some(annotations);
        }
        if self.use_api_socket {
            return Err(FlagError::Unsupported {
                flag: "--use-api-socket",
                message: "--use-api-socket is not supported by berth: bind-mount the API socket with -v instead".into(),
            });
        }
        Ok(())
    }
}

/// `--security-opt` values: Docker's CLI syntax check, the seccomp file read
/// into the option, the daemon's key check, and `systempaths=unconfined`
/// (handled by the client, as Docker does). Returns the options to send and
/// whether system paths are unconfined.
fn security_options(raw: &[String]) -> Result<(Vec<String>, bool), FlagError> {
    let mut out = Vec::new();
    let mut unconfined_paths = false;
    for opt in raw {
        if opt == "systempaths=unconfined" {
            unconfined_paths = true;
            continue;
        }
        let (mut key, mut value, mut ok) = values::cut(opt, '=');
        if !ok && key != "no-new-privileges" {
            (key, value, ok) = values::cut(opt, ':');
        }
        if (!ok || value.is_empty()) && key != "no-new-privileges" {
            return Err(FlagError::invalid_value(
                "--security-opt",
                format!("Invalid --security-opt: {opt:?}"),
            ));
        }
        let daemon_invalid = || {
            FlagError::invalid_value(
                "--security-opt",
                format!("invalid --security-opt 2: {opt:?}"),
            )
        };
        match key {
            "no-new-privileges" | "writable-cgroups" => {
                if ok {
                    values::go_bool(value).map_err(|_| daemon_invalid())?;
                }
                out.push(opt.clone());
            }
            "seccomp" => match value {
                "unconfined" | "builtin" => out.push(opt.clone()),
                path => {
                    let content =
                        std::fs::read(path).map_err(|source| FlagError::SeccompProfileRead {
                            path: path.to_string(),
                            source,
                        })?;
                    serde_json::from_slice::<serde::de::IgnoredAny>(&content).map_err(
                        |source| FlagError::SeccompProfileJson {
                            path: path.to_string(),
                            source,
                        },
                    )?;
                    // Docker sends the profile itself (`json.Compact`: the
                    // same tokens without insignificant whitespace), so the
                    // container does not depend on the file later.
                    let text = String::from_utf8_lossy(&content);
                    out.push(format!("seccomp={}", compact_json(&text)));
                }
            },
            "apparmor" => out.push(opt.clone()),
            "label" => {
                let (label_key, _, has_value) = values::cut(value, ':');
                let valid = matches!(value, "disable" | "nested")
                    || (has_value
                        && ["user", "role", "type", "level", "filetype"].contains(&label_key));
                if !valid {
                    return Err(FlagError::invalid_value(
                        "--security-opt",
                        format!("bad label option {value:?}, valid options 'disable' or \n'user, role, level, type, filetype' followed by ':' and a value"),
                    ));
                }
                out.push(opt.clone());
            }
            _ => return Err(daemon_invalid()),
        }
    }
    Ok((out, unconfined_paths))
}

/// Names of the Linux capabilities, for `--cap-add`/`--cap-drop`.
const CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// `--cap-add`/`--cap-drop` as Docker's API client sends them (upper case,
/// `CAP_` prefixed, sorted, without duplicates; `ALL` as is), each checked
/// the way the daemon does.
fn capabilities(flag: &'static str, given: &[String]) -> Result<Option<Vec<String>>, FlagError> {
    let mut normalized: Vec<String> = Vec::new();
    for cap in given {
        let cap = normalize_capability(cap);
        if cap != "ALL" && !CAPABILITIES.contains(&cap.as_str()) {
            return Err(FlagError::invalid_value(
                flag,
                format!("unknown capability: {cap:?}"),
            ));
        }
        if !normalized.contains(&cap) {
            normalized.push(cap);
        }
    }
    normalized.sort();
    Ok((!normalized.is_empty()).then_some(normalized))
}

fn normalize_capability(cap: &str) -> String {
    let upper = cap.to_ascii_uppercase();
    if upper == "ALL" || upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    }
}

/// `opts.ValidateSysctl`: only namespaced sysctls may be set.
pub fn sysctl(s: &str) -> Result<(), String> {
    const ALLOWED: [&str; 8] = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let (key, _, ok) = cut(s, '=');
    if ok
        && !key.is_empty()
        && (ALLOWED.contains(&key) || key.starts_with("net.") || key.starts_with("fs.mqueue."))
    {
        Ok(())
    } else {
        Err(format!("sysctl '{s}' is not allowed"))
    }
}

/// Go's `json.Compact` for a document known to be valid JSON: whitespace
/// outside strings removed, every token kept as written (numbers are not
/// reformatted, key order is kept).
fn compact_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            out.push(c);
        }
    }
    out
}
