//! `import -c` / `commit -c`: the Dockerfile instructions that change an
//! image config (CMD ENTRYPOINT ENV EXPOSE WORKDIR USER LABEL VOLUME
//! STOPSIGNAL ONBUILD), parsed as Docker parses them.

use berth_image::model::{ContainerConfig, Empty};

use crate::error::EngineError;

/// Applies each instruction in `changes` to `config`, in order.
pub fn apply_changes(config: &mut ContainerConfig, changes: &[String]) -> Result<(), EngineError> {
    for change in changes {
        apply_change(config, change)?;
    }
    Ok(())
}

fn bad(change: &str, why: &str) -> EngineError {
    EngineError::InvalidArgument(format!("{why}: {change}"))
}

fn apply_change(config: &mut ContainerConfig, change: &str) -> Result<(), EngineError> {
    let change = change.trim();
    let (word, rest) = change
        .split_once(char::is_whitespace)
        .unwrap_or((change, ""));
    let rest = rest.trim();
    let instruction = word.to_ascii_uppercase();
    let need_args = |n: &str| {
        if rest.is_empty() {
            Err(bad(change, &format!("{n} requires at least one argument")))
        } else {
            Ok(())
        }
    };
    match instruction.as_str() {
        "CMD" => {
            need_args("CMD")?;
            config.cmd = Some(command_form(rest));
        }
        "ENTRYPOINT" => {
            need_args("ENTRYPOINT")?;
            config.entrypoint = Some(command_form(rest));
            // Docker resets CMD when ENTRYPOINT changes.
            config.cmd = None;
        }
        "ENV" => {
            need_args("ENV")?;
            for (k, v) in key_values(rest, change, true)? {
                let prefix = format!("{k}=");
                config.env.retain(|e| !e.starts_with(&prefix));
                config.env.push(format!("{k}={v}"));
            }
        }
        "LABEL" => {
            need_args("LABEL")?;
            for (k, v) in key_values(rest, change, false)? {
                config.labels.insert(k, v);
            }
        }
        "EXPOSE" => {
            need_args("EXPOSE")?;
            for port in words(rest) {
                let (num, proto) = port.split_once('/').unwrap_or((port.as_str(), "tcp"));
                let valid = !num.is_empty()
                    && num.split('-').all(|p| p.parse::<u16>().is_ok())
                    && matches!(proto.to_ascii_lowercase().as_str(), "tcp" | "udp" | "sctp");
                if !valid {
                    return Err(bad(change, &format!("invalid containerPort: {port}")));
                }
                config.exposed_ports.insert(format!("{num}/{}", proto.to_ascii_lowercase()), Empty {});
            }
        }
        "WORKDIR" => {
            need_args("WORKDIR")?;
            let dir = unquote(rest);
            config.working_dir = if dir.starts_with('/') || config.working_dir.is_empty() {
                if dir.starts_with('/') { dir } else { format!("/{dir}") }
            } else {
                format!("{}/{dir}", config.working_dir.trim_end_matches('/'))
            };
        }
        "USER" => {
            need_args("USER")?;
            config.user = unquote(rest);
        }
        "VOLUME" => {
            need_args("VOLUME")?;
            let vols = if rest.starts_with('[') {
                serde_json::from_str::<Vec<String>>(rest).map_err(|e| bad(change, &format!("invalid JSON: {e}")))?
            } else {
                words(rest)
            };
            for v in vols {
                if v.is_empty() {
                    return Err(bad(change, "VOLUME specified can not be an empty string"));
                }
                config.volumes.insert(v, Empty {});
            }
        }
        "STOPSIGNAL" => {
            need_args("STOPSIGNAL")?;
            config.stop_signal = Some(unquote(rest));
        }
        "ONBUILD" => {
            need_args("ONBUILD")?;
            config.on_build.push(rest.to_string());
        }
        "" => return Err(bad(change, "empty change")),
        other => {
            return Err(EngineError::InvalidArgument(format!(
                "{other} is not a valid change command (allowed: CMD ENTRYPOINT ENV EXPOSE LABEL ONBUILD STOPSIGNAL USER VOLUME WORKDIR)"
            )))
        }
    }
    Ok(())
}

/// JSON exec form (`["sh","-c","x"]`) or shell form (`sh -c x` →
/// `/bin/sh -c "sh -c x"`).
fn command_form(rest: &str) -> Vec<String> {
    if rest.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Vec<String>>(rest) {
            return v;
        }
    }
    vec!["/bin/sh".to_string(), "-c".to_string(), rest.to_string()]
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    if s.len() >= 2
        && ((s.starts_with('"') && s.ends_with('"')) || (s.starts_with('\'') && s.ends_with('\'')))
    {
        s[1..s.len() - 1].to_string()
    } else {
        s.to_string()
    }
}

/// Splits on whitespace, keeping quoted parts (quotes removed) together.
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                        continue;
                    }
                }
                cur.push(c);
            }
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                any = true;
            }
            None if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            None => {
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                        continue;
                    }
                }
                cur.push(c);
            }
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// `k=v k2="v 2"` pairs, or the legacy single-pair `k v with spaces` form
/// when `legacy` (ENV) and the first word has no `=`.
fn key_values(
    rest: &str,
    change: &str,
    legacy: bool,
) -> Result<Vec<(String, String)>, EngineError> {
    let ws = words(rest);
    if ws.first().is_some_and(|w| !w.contains('=')) {
        if !legacy || ws.len() < 2 {
            return Err(bad(change, "key-value pairs must be of the form key=value"));
        }
        let (k, v) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        return Ok(vec![(k.to_string(), unquote(v.trim()))]);
    }
    ws.into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(bad(change, "key-value pairs must be of the form key=value")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(changes: &[&str]) -> ContainerConfig {
        let mut c = ContainerConfig::default();
        apply_changes(
            &mut c,
            &changes.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
        .unwrap();
        c
    }

    #[test]
    fn commands() {
        let c = apply(&[r#"CMD ["sh", "-c", "echo hi"]"#]);
        assert_eq!(c.cmd.unwrap(), vec!["sh", "-c", "echo hi"]);
        let c = apply(&["CMD echo hi"]);
        assert_eq!(c.cmd.unwrap(), vec!["/bin/sh", "-c", "echo hi"]);
        let c = apply(&["CMD [\"a\"]", "ENTRYPOINT [\"/bin/busybox\"]"]);
        assert_eq!(c.entrypoint.unwrap(), vec!["/bin/busybox"]);
        assert!(c.cmd.is_none());
    }

    #[test]
    fn env_label_expose_volume() {
        let c = apply(&[
            "ENV A=1 B=\"two words\"",
            "ENV C three four",
            "ENV A=5",
            "LABEL version=1.0 \"maintainer\"=me",
            "EXPOSE 80 53/udp",
            "VOLUME [\"/data\"]",
            "VOLUME /a /b",
            "WORKDIR /srv",
            "WORKDIR app",
            "USER nobody",
            "STOPSIGNAL SIGINT",
        ]);
        assert_eq!(c.env, vec!["B=two words", "C=three four", "A=5"]);
        assert_eq!(c.labels.get("version").map(String::as_str), Some("1.0"));
        assert_eq!(c.labels.get("maintainer").map(String::as_str), Some("me"));
        assert!(c.exposed_ports.contains_key("80/tcp") && c.exposed_ports.contains_key("53/udp"));
        assert_eq!(
            c.volumes.keys().cloned().collect::<Vec<_>>(),
            vec!["/a", "/b", "/data"]
        );
        assert_eq!(c.working_dir, "/srv/app");
        assert_eq!(c.user, "nobody");
        assert_eq!(c.stop_signal.as_deref(), Some("SIGINT"));
    }

    #[test]
    fn rejects_bad_changes() {
        let mut c = ContainerConfig::default();
        for bad in ["RUN echo", "EXPOSE abc", "ENV", "LABEL novalue", ""] {
            assert!(apply_changes(&mut c, &[bad.to_string()]).is_err(), "{bad}");
        }
    }
}
