//! state, list, ps, events.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::cli::{EventsArgs, Format, ListArgs, PsArgs};
use crate::error::RuntimeError;
use crate::state::{ContainerDir, ContainerState, StateOutput, Status, STATE_FILE};

fn print_json<T: serde::Serialize>(v: &T, pretty: bool) -> Result<(), RuntimeError> {
    let s = if pretty {
        serde_json::to_string_pretty(v)
    } else {
        serde_json::to_string(v)
    };
    let s = s.map_err(|e| RuntimeError::Protocol {
        context: "output",
        reason: e.to_string(),
    })?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{s}").map_err(|e| RuntimeError::io("write stdout", e))
}

pub fn state(root: &Path, id: &str) -> Result<(), RuntimeError> {
    let dir = ContainerDir::open(root, id)?;
    let st = dir.load()?;
    print_json(&st.output(st.status(&dir.path)), true)
}

fn user_name(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                let id: u32 = f.nth(1)?.parse().ok()?;
                (id == uid).then(|| name.to_string())
            })
        })
        .unwrap_or_else(|| format!("#{uid}"))
}

/// Aligns cells like Go's tabwriter with runc's settings (minwidth 12,
/// padding 3); the last column is not padded.
fn tabulate(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; cols];
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(cols.saturating_sub(1)) {
            widths[i] = widths[i].max((cell.chars().count() + 3).max(12));
        }
    }
    let mut out = String::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i + 1 < row.len() {
                out.push_str(&format!("{cell:<w$}", w = widths[i]));
            } else {
                out.push_str(cell);
            }
        }
        out.push('\n');
    }
    out
}

pub fn list(root: &Path, a: &ListArgs) -> Result<(), RuntimeError> {
    let mut items: Vec<StateOutput> = Vec::new();
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e.flatten().collect::<Vec<_>>(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(RuntimeError::io(format!("read {}", root.display()), e)),
    };
    for entry in entries {
        let dir = entry.path();
        // No lock: list must not block behind a long create; a state file
        // is replaced atomically, so reading it unlocked is safe.
        let Ok(data) = std::fs::read(dir.join(STATE_FILE)) else {
            continue;
        };
        let Ok(st) = serde_json::from_slice::<ContainerState>(&data) else {
            continue;
        };
        let mut out = st.output(st.status(&dir));
        out.owner = entry
            .metadata()
            .map(|m| user_name(m.uid()))
            .unwrap_or_default();
        items.push(out);
    }
    items.sort_by(|a, b| a.id.cmp(&b.id));
    if a.quiet {
        for i in &items {
            println!("{}", i.id);
        }
        return Ok(());
    }
    match a.format {
        Format::Json => {
            if items.is_empty() {
                // runc marshals a nil slice.
                println!("null");
                return Ok(());
            }
            print_json(&items, false)
        }
        Format::Table => {
            let mut rows = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
                .map(String::from)
                .to_vec()];
            for i in &items {
                rows.push(vec![
                    i.id.clone(),
                    i.pid.to_string(),
                    i.status.to_string(),
                    i.bundle.display().to_string(),
                    i.created
                        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                    i.owner.clone(),
                ]);
            }
            print!("{}", tabulate(&rows));
            Ok(())
        }
    }
}

fn running_state(root: &Path, id: &str) -> Result<(ContainerDir, ContainerState), RuntimeError> {
    let dir = ContainerDir::open(root, id)?;
    let st = dir.load()?;
    Ok((dir, st))
}

pub fn ps(root: &Path, a: &PsArgs) -> Result<(), RuntimeError> {
    let (dir, st) = running_state(root, &a.id)?;
    let status = st.status(&dir.path);
    if status == Status::Stopped {
        return Err(RuntimeError::InvalidState {
            id: a.id.clone(),
            action: "ps",
            status: status.to_string(),
        });
    }
    let cg = berth_cgroups::manager(&st.cgroup_path)
        .map_err(|e| RuntimeError::cgroup(&st.cgroup_path, e))?;
    let pids = cg
        .pids()
        .map_err(|e| RuntimeError::cgroup(&st.cgroup_path, e))?;
    drop(dir);
    if a.format == Format::Json {
        return print_json(&pids, false);
    }
    let args = if a.ps_args.is_empty() {
        vec!["-ef".to_string()]
    } else {
        a.ps_args.clone()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| RuntimeError::io("run ps", e))?;
    if !out.status.success() {
        return Err(RuntimeError::InvalidArgument(format!(
            "ps {}: {}: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let pid_col = header
        .split_whitespace()
        .position(|c| c == "PID")
        .ok_or_else(|| RuntimeError::InvalidArgument("ps: no PID column in the output".into()))?;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{header}");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(pid_col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            let _ = writeln!(stdout, "{line}");
        }
    }
    Ok(())
}

/// Parses a Go-style duration: `5s`, `500ms`, `1m`, `1h`, `2.5s`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| c.is_ascii_alphabetic())
        .ok_or_else(|| format!("invalid duration {s:?}: missing unit"))?;
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
    let secs = match unit {
        "ns" => n / 1e9,
        "us" | "µs" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("invalid duration {s:?}: unknown unit {unit:?}")),
    };
    if secs.is_nan() || secs <= 0.0 {
        return Err(format!("invalid duration {s:?}: must be positive"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[derive(serde::Serialize)]
struct Event<'a, T: serde::Serialize> {
    #[serde(rename = "type")]
    typ: &'static str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<T>,
}

pub fn events(root: &Path, a: &EventsArgs) -> Result<(), RuntimeError> {
    let interval = parse_duration(&a.interval)
        .map_err(|e| RuntimeError::InvalidArgument(format!("--interval: {e}")))?;
    let (dir, st) = running_state(root, &a.id)?;
    let dir_path = dir.path.clone();
    drop(dir);
    let status = st.status(&dir_path);
    if status == Status::Stopped {
        return Err(RuntimeError::InvalidState {
            id: a.id.clone(),
            action: "get events of",
            status: status.to_string(),
        });
    }
    let cg = berth_cgroups::manager(&st.cgroup_path)
        .map_err(|e| RuntimeError::cgroup(&st.cgroup_path, e))?;
    let stats = || -> Result<(), RuntimeError> {
        let s = cg
            .stats()
            .map_err(|e| RuntimeError::cgroup(&st.cgroup_path, e))?;
        print_json(
            &Event {
                typ: "stats",
                id: &a.id,
                data: Some(s),
            },
            false,
        )
    };
    if a.stats {
        return stats();
    }
    let mut ooms = cg.oom_kill_count().unwrap_or(0);
    let mut next_stats = Instant::now();
    let tick = Duration::from_millis(100).min(interval);
    let check_oom = |ooms: &mut u64| -> Result<(), RuntimeError> {
        let now = cg.oom_kill_count().unwrap_or(*ooms);
        if now > *ooms {
            print_json(
                &Event::<()> {
                    typ: "oom",
                    id: &a.id,
                    data: None,
                },
                false,
            )?;
            *ooms = now;
        }
        Ok(())
    };
    while st.init_alive() {
        if Instant::now() >= next_stats {
            stats()?;
            next_stats = Instant::now() + interval;
        }
        check_oom(&mut ooms)?;
        std::thread::sleep(tick);
    }
    // An OOM kill may be what ended the container.
    check_oom(&mut ooms)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("0s").is_err());
    }

    #[test]
    fn table_like_tabwriter() {
        let rows = vec![
            vec!["ID".to_string(), "PID".to_string(), "OWNER".to_string()],
            vec![
                "a-long-container-id".to_string(),
                "1".to_string(),
                "root".to_string(),
            ],
        ];
        let t = tabulate(&rows);
        assert_eq!(
            t,
            "ID                    PID         OWNER\na-long-container-id   1           root\n"
        );
    }
}
