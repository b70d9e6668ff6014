//! `info`, `version`, `events` and `stats`.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::time::Duration;

use berth_engine::containers::{ContainerFilters, ContainerRecord, StatsSample, Status};
use berth_engine::Engine;
use serde_json::{json, Value};

use crate::output::{CliError, Formatter};
use crate::template::Template;
use crate::units::human_size;

/// The Engine API version berth's JSON follows.
pub const API_VERSION: &str = "1.47";

#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    /// Format output using a custom template
    #[arg(short, long)]
    pub format: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct VersionArgs {
    /// Format output using a custom template
    #[arg(short, long)]
    pub format: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// Filter output based on conditions provided
    #[arg(short, long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Show all events created since timestamp
    #[arg(long)]
    pub since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long)]
    pub until: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Disable streaming stats and only pull the first result
    #[arg(long)]
    pub no_stream: bool,
    /// Do not truncate output
    #[arg(long)]
    pub no_trunc: bool,
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

fn render_one(format: Option<&str>, value: &Value) -> anyhow::Result<Option<String>> {
    match format {
        None | Some("") => Ok(None),
        Some("json") => Ok(Some(value.to_string())),
        Some(f) => {
            let t = Template::parse(f).map_err(|e| CliError::new(e.to_string()))?;
            Ok(Some(
                t.render(value).map_err(|e| CliError::new(e.to_string()))?,
            ))
        }
    }
}

fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .unwrap_or_else(|| "Linux".into())
}

pub fn info(engine: &Engine, a: InfoArgs) -> anyhow::Result<()> {
    let containers = engine
        .containers()
        .list(true, &ContainerFilters::default())?;
    let count = |s: &[Status]| containers.iter().filter(|c| s.contains(&c.status)).count();
    let images = engine.images().list(true, &Default::default())?.len();
    let cgroup_v2 = nix::sys::statfs::statfs("/sys/fs/cgroup")
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC);
    let mem_total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024;
    // SAFETY: sysconf has no preconditions.
    let ncpu = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    let hostname = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let root = engine.config().root.display().to_string();
    let v = json!({
        "ID": "",
        "Containers": containers.len(),
        "ContainersRunning": count(&[Status::Running, Status::Restarting]),
        "ContainersPaused": count(&[Status::Paused]),
        "ContainersStopped": count(&[Status::Exited, Status::Created, Status::Dead]),
        "Images": images,
        "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", backing_fs(&engine.config().root)], ["Supports d_type", "true"], ["Using metacopy", "false"], ["Native Overlay Diff", "true"]],
        "Plugins": {"Volume": ["local"], "Network": ["host", "none"], "Log": ["json-file", "local", "none"]},
        "MemoryLimit": true,
        "SwapLimit": true,
        "CpuCfsPeriod": true,
        "CpuCfsQuota": true,
        "CPUShares": true,
        "CPUSet": true,
        "PidsLimit": true,
        "IPv4Forwarding": std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").map(|s| s.trim() == "1").unwrap_or(false),
        "Debug": false,
        "OomKillDisable": !cgroup_v2,
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": if cgroup_v2 { "2" } else { "1" },
        "KernelVersion": kernel_release(),
        "OperatingSystem": os_name(),
        "OSVersion": "",
        "OSType": "linux",
        "Architecture": std::env::consts::ARCH,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "NCPU": ncpu,
        "MemTotal": mem_total,
        "DockerRootDir": root,
        "Name": hostname,
        "ServerVersion": env!("CARGO_PKG_VERSION"),
        "Runtimes": {"berth": {"path": "berth-runtime"}, "runc": {"path": "runc"}, "crun": {"path": "crun"}},
        "DefaultRuntime": "berth",
        "InitBinary": "berth-init",
        "SecurityOptions": ["name=seccomp,profile=builtin", "name=cgroupns"],
    });
    if let Some(s) = render_one(a.format.as_deref(), &v)? {
        println!("{s}");
        return Ok(());
    }
    let mut out = io::stdout().lock();
    writeln!(
        out,
        "Client:\n Version:    {}\n Context:    default\n Debug Mode: false\n",
        env!("CARGO_PKG_VERSION")
    )?;
    writeln!(out, "Server:")?;
    writeln!(out, " Containers: {}", v["Containers"])?;
    writeln!(out, "  Running: {}", v["ContainersRunning"])?;
    writeln!(out, "  Paused: {}", v["ContainersPaused"])?;
    writeln!(out, "  Stopped: {}", v["ContainersStopped"])?;
    writeln!(out, " Images: {}", v["Images"])?;
    writeln!(out, " Server Version: {}", env!("CARGO_PKG_VERSION"))?;
    writeln!(out, " Storage Driver: overlay2")?;
    writeln!(
        out,
        "  Backing Filesystem: {}",
        backing_fs(&engine.config().root)
    )?;
    writeln!(out, "  Supports d_type: true")?;
    writeln!(out, " Logging Driver: json-file")?;
    writeln!(out, " Cgroup Driver: cgroupfs")?;
    writeln!(out, " Cgroup Version: {}", if cgroup_v2 { 2 } else { 1 })?;
    writeln!(
        out,
        " Plugins:\n  Volume: local\n  Network: host none\n  Log: json-file local none"
    )?;
    writeln!(out, " Runtimes: berth crun runc")?;
    writeln!(out, " Default Runtime: berth")?;
    writeln!(out, " Init Binary: berth-init")?;
    writeln!(
        out,
        " Security Options:\n  seccomp\n   Profile: builtin\n  cgroupns"
    )?;
    writeln!(out, " Kernel Version: {}", kernel_release())?;
    writeln!(out, " Operating System: {}", os_name())?;
    writeln!(out, " OSType: linux")?;
    writeln!(out, " Architecture: {}", std::env::consts::ARCH)?;
    writeln!(out, " CPUs: {ncpu}")?;
    writeln!(out, " Total Memory: {}", human_size_binary(mem_total))?;
    writeln!(out, " Name: {hostname}")?;
    writeln!(out, " Docker Root Dir: {root}")?;
    writeln!(out, " Debug Mode: false")?;
    Ok(())
}

/// Docker prints memory in binary units here (`23.47GiB`).
fn human_size_binary(b: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < units.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.4}")
        .trim_end_matches('0')
        .trim_end_matches('.')
        .to_string()
        + units[i]
}

fn backing_fs(root: &std::path::Path) -> &'static str {
    match nix::sys::statfs::statfs(root).map(|s| s.filesystem_type()) {
        Ok(t) if t == nix::sys::statfs::EXT4_SUPER_MAGIC => "extfs",
        Ok(t) if t == nix::sys::statfs::TMPFS_MAGIC => "tmpfs",
        Ok(t) if t == nix::sys::statfs::BTRFS_SUPER_MAGIC => "btrfs",
        Ok(t) if t == nix::sys::statfs::XFS_SUPER_MAGIC => "xfs",
        _ => "unknown",
    }
}

pub fn version(a: VersionArgs) -> anyhow::Result<()> {
    let v = json!({
        "Client": {
            "Version": env!("CARGO_PKG_VERSION"),
            "ApiVersion": API_VERSION,
            "DefaultAPIVersion": API_VERSION,
            "GitCommit": option_env!("BERTH_GIT_COMMIT").unwrap_or(""),
            "GoVersion": "",
            "Os": "linux",
            "Arch": std::env::consts::ARCH,
            "BuildTime": "",
            "Context": "default",
        },
        "Server": {
            "Platform": {"Name": "berth"},
            "Components": [{"Name": "Engine", "Version": env!("CARGO_PKG_VERSION"), "Details": {"ApiVersion": API_VERSION, "MinAPIVersion": "1.24", "Os": "linux", "Arch": std::env::consts::ARCH, "KernelVersion": kernel_release()}}],
            "Version": env!("CARGO_PKG_VERSION"),
            "ApiVersion": API_VERSION,
            "MinAPIVersion": "1.24",
            "Os": "linux",
            "Arch": std::env::consts::ARCH,
            "KernelVersion": kernel_release(),
        },
    });
    if let Some(s) = render_one(a.format.as_deref(), &v)? {
        println!("{s}");
        return Ok(());
    }
    let mut out = io::stdout().lock();
    writeln!(out, "Client:\n Version:           {}\n API version:       {API_VERSION}\n OS/Arch:           linux/{}\n Context:           default\n", env!("CARGO_PKG_VERSION"), std::env::consts::ARCH)?;
    writeln!(out, "Server: berth\n Engine:\n  Version:          {}\n  API version:      {API_VERSION} (minimum version 1.24)\n  OS/Arch:          linux/{}\n  Kernel:           {}", env!("CARGO_PKG_VERSION"), std::env::consts::ARCH, kernel_release())?;
    Ok(())
}

fn parse_event_time(v: &str) -> anyhow::Result<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Ok(t.timestamp_nanos_opt().unwrap_or(0));
    }
    if let Ok(secs) = v.parse::<f64>() {
        return Ok((secs * 1e9) as i64);
    }
    let ns = crate::run_args::values::go_duration(v)
        .map_err(|_| CliError::usage(format!("invalid timestamp or duration {v:?}")))?;
    Ok(chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0) - ns)
}

/// `events`: past events (`--since`) and then new ones as they happen,
/// until `--until` or forever.
pub fn events(engine: &Engine, a: EventsArgs) -> anyhow::Result<()> {
    let since = a.since.as_deref().map(parse_event_time).transpose()?;
    let until = a.until.as_deref().map(parse_event_time).transpose()?;
    let mut filters: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in &a.filter {
        let (k, v) = f.split_once('=').ok_or_else(|| {
            CliError::usage(format!("bad format of filter (expected name=value): {f}"))
        })?;
        if !matches!(k, "container" | "event" | "type" | "label" | "image") {
            return Err(CliError::usage(format!("invalid filter '{k}'")).into());
        }
        filters
            .entry(k.to_string())
            .or_default()
            .push(v.to_string());
    }
    let svc = engine.containers();
    // Without --since only events from now on are shown.
    let mut last_seq = match since {
        Some(_) => 0,
        None => svc.events(0, None, None)?.last().map_or(0, |e| e.seq),
    };
    let template = match a.format.as_deref() {
        None | Some("") => None,
        Some("json") => {
            Some(Template::parse("{{json .}}").map_err(|e| CliError::new(e.to_string()))?)
        }
        Some(f) => Some(Template::parse(f).map_err(|e| CliError::new(e.to_string()))?),
    };
    loop {
        let batch = svc.events(last_seq, since, until)?;
        let mut out = io::stdout().lock();
        for e in &batch {
            last_seq = e.seq;
            let pass = filters.iter().all(|(k, vals)| {
                vals.iter().any(|v| match k.as_str() {
                    "container" => {
                        e.actor_id.starts_with(v.as_str()) || e.attributes.get("name") == Some(v)
                    }
                    "event" => &e.action == v,
                    "type" => &e.kind == v,
                    "image" => e.attributes.get("image") == Some(v),
                    "label" => match v.split_once('=') {
                        Some((lk, lv)) => e.attributes.get(lk).is_some_and(|x| x == lv),
                        None => e.attributes.contains_key(v),
                    },
                    _ => false,
                })
            });
            if !pass {
                continue;
            }
            let time = chrono::DateTime::from_timestamp_nanos(e.time_nano);
            match &template {
                Some(t) => {
                    let v = json!({
                        "status": e.action, "id": e.actor_id, "from": e.attributes.get("image"),
                        "Type": e.kind, "Action": e.action,
                        "Actor": {"ID": e.actor_id, "Attributes": e.attributes},
                        "scope": "local", "time": e.time_nano / 1_000_000_000, "timeNano": e.time_nano,
                    });
                    writeln!(
                        out,
                        "{}",
                        t.render(&v).map_err(|err| CliError::new(err.to_string()))?
                    )?;
                }
                None => {
                    let attrs = e
                        .attributes
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    writeln!(
                        out,
                        "{} {} {} {} ({attrs})",
                        time.format("%Y-%m-%dT%H:%M:%S%.9f%:z"),
                        e.kind,
                        e.action,
                        e.actor_id
                    )?;
                }
            }
        }
        out.flush()?;
        drop(out);
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
        if until.is_some_and(|u| now >= u) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn percent(part: f64, whole: f64) -> String {
    if whole <= 0.0 {
        "0.00%".into()
    } else {
        format!("{:.2}%", part / whole * 100.0)
    }
}

fn stats_row(
    rec: &ContainerRecord,
    prev: &StatsSample,
    cur: &StatsSample,
    no_trunc: bool,
) -> Value {
    let cpu_delta = cur.cpu_total_ns.saturating_sub(prev.cpu_total_ns) as f64;
    let sys_delta = cur.system_ns.saturating_sub(prev.system_ns) as f64;
    let cpu = if sys_delta > 0.0 {
        format!(
            "{:.2}%",
            cpu_delta / sys_delta * f64::from(cur.online_cpus) * 100.0
        )
    } else {
        "0.00%".into()
    };
    let id = if no_trunc {
        rec.id.clone()
    } else {
        rec.id[..12].to_string()
    };
    json!({
        "BlockIO": format!("{} / {}", human_size(cur.block_read), human_size(cur.block_write)),
        "CPUPerc": cpu,
        "Container": id,
        "ID": id,
        "MemPerc": percent(cur.memory_usage as f64, cur.memory_limit as f64),
        "MemUsage": format!("{} / {}", human_size_binary(cur.memory_usage), human_size_binary(cur.memory_limit)),
        "Name": rec.name,
        "NetIO": format!("{} / {}", human_size(cur.net_rx), human_size(cur.net_tx)),
        "PIDs": cur.pids.to_string(),
    })
}

/// `stats`: CPU % over the last second, memory, network, block I/O, pids.
pub fn stats(engine: &Engine, a: StatsArgs) -> anyhow::Result<()> {
    let svc = engine.containers();
    let pick = || -> anyhow::Result<Vec<ContainerRecord>> {
        if a.containers.is_empty() {
            Ok(svc.list(a.all, &ContainerFilters::default())?)
        } else {
            a.containers.iter().map(|c| Ok(svc.get(c)?)).collect()
        }
    };
    let formatter = Formatter::new(
        a.format.as_deref(),
        "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}",
    )?;
    let headers = BTreeMap::from([
        ("ID", "CONTAINER ID"),
        ("Container", "CONTAINER"),
        ("Name", "NAME"),
        ("CPUPerc", "CPU %"),
        ("MemUsage", "MEM USAGE / LIMIT"),
        ("MemPerc", "MEM %"),
        ("NetIO", "NET I/O"),
        ("BlockIO", "BLOCK I/O"),
        ("PIDs", "PIDS"),
    ]);
    let mut prev: BTreeMap<String, StatsSample> = BTreeMap::new();
    for rec in pick()? {
        prev.insert(rec.id.clone(), svc.stats(&rec).unwrap_or_default());
    }
    loop {
        std::thread::sleep(Duration::from_millis(if a.no_stream { 500 } else { 1000 }));
        let recs = pick()?;
        let mut rows = Vec::new();
        for rec in &recs {
            let cur = svc.stats(rec).unwrap_or_default();
            let before = prev.get(&rec.id).cloned().unwrap_or_default();
            rows.push(stats_row(rec, &before, &cur, a.no_trunc));
            prev.insert(rec.id.clone(), cur);
        }
        let mut out = io::stdout().lock();
        if !a.no_stream {
            // Clear the screen like Docker's streaming table.
            write!(out, "\x1b[2J\x1b[H")?;
        }
        formatter.write(&mut out, &headers, &rows)?;
        out.flush()?;
        if a.no_stream {
            return Ok(());
        }
    }
}
