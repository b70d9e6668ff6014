//! Container verbs: create, run, start, stop, kill, rm, restart, wait,
//! rename, pause, unpause, ps, top, port, container prune and the monitor's
//! exit command. Attach, logs and exec are in `attach_cmds`.

use std::collections::BTreeMap;
use std::io::{self, Write};

use berth_engine::containers::{ContainerFilters, ContainerRecord, Status};
use berth_engine::{Engine, EngineError};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::container_args::*;
use crate::output::{ellipsis, error_chain, AlreadyReported, CliError, Formatter};
use crate::run_args::{CreateArgs, RunArgs};
use crate::units::{human_duration, human_size};

/// Docker's exit status when the engine failed to create or start a container.
const EXIT_ENGINE: u8 = 125;

/// `berth: Error response from daemon: …` with Docker's `run`/`create` exit
/// status (125, or 126/127 when the command could not be executed).
fn run_error(e: &EngineError, command: &str) -> anyhow::Error {
    let code = match e {
        EngineError::StartFailed { exit_code, .. } => {
            u8::try_from(*exit_code).unwrap_or(EXIT_ENGINE)
        }
        _ => EXIT_ENGINE,
    };
    let hint = if e.kind() == berth_engine::ErrorKind::InvalidArgument {
        format!("\nSee 'berth {command} --help'.")
    } else {
        String::new()
    };
    CliError {
        message: format!(
            "berth: Error response from daemon: {}{hint}",
            error_chain(e)
        ),
        code,
    }
    .into()
}

fn create_record(
    engine: &Engine,
    a: &CreateArgs,
    run: Option<&RunArgs>,
    command: &str,
) -> anyhow::Result<ContainerRecord> {
    let req = match run {
        Some(r) => r.to_request(),
        None => a.to_request(),
    }
    .map_err(|e| e.to_cli_error(command))?;
    for w in a.warnings() {
        eprintln!("WARNING: {w}");
    }
    let rec =
        crate::registry_cmds::create_pulling(engine, a, req).map_err(|e| run_error(&e, command))?;
    if let Some(path) = a.cidfile.as_deref().filter(|p| !p.is_empty()) {
        write_cidfile(std::path::Path::new(path), &rec.id)?;
    }
    Ok(rec)
}

fn write_cidfile(path: &std::path::Path, id: &str) -> anyhow::Result<()> {
    use std::fs::OpenOptions;
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| {
            CliError::usage(format!(
                "berth: container ID file found, make sure the other container isn't running or delete {}: {e}",
                path.display()
            ))
        })?;
    f.write_all(id.as_bytes())?;
    Ok(())
}

pub fn create(engine: &Engine, a: CreateArgs) -> anyhow::Result<()> {
    let rec = create_record(engine, &a, None, "create")?;
    println!("{}", rec.id);
    Ok(())
}

pub fn run(engine: &Engine, a: RunArgs) -> anyhow::Result<()> {
    let detach_keys = a.detach_keys().map_err(|e| e.to_cli_error("run"))?;
    if !a.detach {
        crate::attach_cmds::check_tty(a.create.interactive, a.create.tty)?;
    }
    let rec = create_record(engine, &a.create, Some(&a), "run")?;
    let svc = engine.containers();
    if a.detach {
        if let Err(e) = svc.start(&rec.id) {
            if rec.host_config.auto_remove {
                let _ = svc.remove_with_volumes(&rec.id, true, true);
            }
            return Err(run_error(&e, "run"));
        }
        println!("{}", rec.id);
        return Ok(());
    }
    let res = crate::attach_cmds::start_and_attach(
        engine,
        &rec,
        rec.config.open_stdin,
        detach_keys,
        a.sig_proxy && !rec.config.tty,
    );
    match res {
        Ok(code) => exit_with(code),
        Err(e) => {
            if rec.host_config.auto_remove {
                let _ = svc.remove_with_volumes(&rec.id, true, true);
            }
            Err(run_error(&e, "run"))
        }
    }
}

/// Ends the process with a container's exit status (Docker's CLI does the same).
pub fn exit_with(code: Option<i32>) -> anyhow::Result<()> {
    match code {
        Some(0) | None => Ok(()),
        Some(c) => Err(CliError {
            message: String::new(),
            code: u8::try_from(c & 0xff).unwrap_or(1),
        }
        .into()),
    }
}

/// Runs `op` on each container, printing what Docker prints (the argument)
/// on success and the error on failure; fails at the end if any failed.
fn each(
    names: &[String],
    mut op: impl FnMut(&str) -> Result<(), EngineError>,
) -> anyhow::Result<()> {
    each_line(names, |name| op(name).map(|()| name.to_string()))
}

/// Runs `op` on each container, printing the line it returns or the error;
/// fails at the end if any failed.
fn each_line(
    names: &[String],
    mut op: impl FnMut(&str) -> Result<String, EngineError>,
) -> anyhow::Result<()> {
    let mut failed = false;
    let mut out = io::stdout().lock();
    for name in names {
        match op(name) {
            Ok(line) => writeln!(out, "{line}")?,
            Err(e) => {
                failed = true;
                eprintln!("Error response from daemon: {}", error_chain(&e));
            }
        }
    }
    if failed {
        return Err(AlreadyReported.into());
    }
    Ok(())
}

pub fn start(engine: &Engine, a: StartArgs) -> anyhow::Result<()> {
    let svc = engine.containers();
    if a.attach || a.interactive {
        if a.containers.len() > 1 {
            return Err(
                CliError::new("you cannot start and attach multiple containers at once").into(),
            );
        }
        let detach_keys = crate::attach_cmds::parse_detach_keys(a.detach_keys.as_deref())?;
        let rec = svc.get(&a.containers[0])?;
        crate::attach_cmds::check_tty(a.interactive, rec.config.tty)?;
        let code = crate::attach_cmds::start_and_attach(
            engine,
            &rec,
            a.interactive && rec.config.open_stdin,
            detach_keys,
            !rec.config.tty,
        )
        .map_err(|e| run_error(&e, "start"))?;
        return exit_with(code);
    }
    each(&a.containers, |c| svc.start(c).map(drop))
}

pub fn stop(engine: &Engine, a: StopArgs) -> anyhow::Result<()> {
    let svc = engine.containers();
    each(&a.containers, |c| {
        svc.stop_with(c, a.signal.as_deref(), a.timeout).map(drop)
    })
}

pub fn restart(engine: &Engine, a: RestartArgs) -> anyhow::Result<()> {
    let svc = engine.containers();
    each(&a.containers, |c| {
        svc.restart(c, a.signal.as_deref(), a.timeout).map(drop)
    })
}

pub fn kill(engine: &Engine, a: KillArgs) -> anyhow::Result<()> {
    let svc = engine.containers();
    each(&a.containers, |c| {
        svc.kill(c, a.signal.as_deref()).map(drop)
    })
}

pub fn rm(engine: &Engine, a: RmArgs) -> anyhow::Result<()> {
    if a.link {
        return Err(
            CliError::new("--link is not supported: berth has no container links yet").into(),
        );
    }
    let svc = engine.containers();
    each(&a.containers, |c| {
        svc.remove_with_volumes(c, a.force, a.volumes).map(drop)
    })
}

pub fn wait(engine: &Engine, a: ContainersArgs) -> anyhow::Result<()> {
    let svc = engine.containers();
    each_line(&a.containers, |c| svc.wait(c).map(|code| code.to_string()))
}

pub fn pause(engine: &Engine, a: ContainersArgs) -> anyhow::Result<()> {
    let svc = engine.containers();
    each(&a.containers, |c| svc.pause(c).map(drop))
}

pub fn unpause(engine: &Engine, a: ContainersArgs) -> anyhow::Result<()> {
    let svc = engine.containers();
    each(&a.containers, |c| svc.unpause(c).map(drop))
}

pub fn rename(engine: &Engine, a: RenameArgs) -> anyhow::Result<()> {
    engine.containers().rename(&a.container, &a.new_name)?;
    Ok(())
}

pub fn cleanup(engine: &Engine, a: CleanupArgs) -> anyhow::Result<()> {
    let code = std::env::var(berth_monitor::EXIT_CODE_ENV)
        .ok()
        .and_then(|v| v.parse().ok());
    let runtime_deleted = std::env::var(berth_monitor::RUNTIME_DELETE_ENV).is_ok_and(|v| v == "1");
    engine.containers().cleanup(&a.id, code, runtime_deleted)?;
    Ok(())
}

/// Docker's `STATUS` column: `Up 3 seconds (healthy)`, `Exited (0) 2 minutes ago`, …
pub fn status_text(rec: &ContainerRecord, health: &str) -> String {
    let since = |t: &str| -> String {
        DateTime::parse_from_rfc3339(t)
            .map(|t| human_duration(Utc::now() - t.with_timezone(&Utc)))
            .unwrap_or_default()
    };
    match rec.status {
        Status::Running | Status::Paused => {
            let mut s = format!("Up {}", since(&rec.run.started_at));
            if rec.status == Status::Paused {
                s.push_str(" (Paused)");
            }
            match health {
                "healthy" => s.push_str(" (healthy)"),
                "unhealthy" => s.push_str(" (unhealthy)"),
                "starting" => s.push_str(" (health: starting)"),
                _ => {}
            }
            s
        }
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            rec.run.exit_code,
            since(&rec.run.finished_at)
        ),
        Status::Exited => {
            if rec.run.finished_at.is_empty() {
                format!("Exited ({})", rec.run.exit_code)
            } else {
                format!(
                    "Exited ({}) {} ago",
                    rec.run.exit_code,
                    since(&rec.run.finished_at)
                )
            }
        }
        Status::Created => "Created".into(),
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
    }
}

/// The `COMMAND` column: the command line, quoted, shortened to 20 characters.
fn command_text(rec: &ContainerRecord, no_trunc: bool) -> String {
    let (path, args) = berth_engine::containers::inspect::path_and_args(rec);
    let mut cmd = path;
    for a in args {
        cmd.push(' ');
        // Docker's daemon puts an argument with a space in single quotes
        // (`"sh -c 'exit 2'"`), so that the words stay told apart.
        if a.contains(' ') {
            cmd.push_str(&format!("'{a}'"));
        } else {
            cmd.push_str(&a);
        }
    }
    let cmd = if no_trunc { cmd } else { ellipsis(&cmd, 20) };
    format!("\"{cmd}\"")
}

/// The networks a container is on (`bridge`, `net1,net2`, `host`).
fn networks_text(engine: &Engine, rec: &ContainerRecord) -> String {
    let names: Vec<String> = engine
        .networks()
        .endpoints(&rec.id)
        .unwrap_or_default()
        .into_iter()
        .map(|e| e.network.name)
        .collect();
    if names.is_empty() {
        berth_engine::containers::network_mode(rec)
    } else {
        names.join(",")
    }
}

/// Docker's `Ports` text: `0.0.0.0:8080->80/tcp, 443/tcp` (published
/// ports, then exposed ones that are not).
fn ports_text(engine: &Engine, rec: &ContainerRecord) -> String {
    let published = engine
        .networks()
        .published_ports(&rec.id)
        .unwrap_or_default();
    let mut parts: Vec<String> = published
        .iter()
        .map(|p| {
            format!(
                "{}:{}->{}/{}",
                p.host_ip, p.host_port, p.container_port, p.proto
            )
        })
        .collect();
    if rec.status.is_active() {
        for key in rec.config.exposed_ports.iter().flat_map(|e| e.keys()) {
            let (port, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
            if !published
                .iter()
                .any(|p| p.container_port.to_string() == port && p.proto == proto)
            {
                parts.push(key.clone());
            }
        }
    }
    parts.join(", ")
}

/// `{{.Mounts}}` and `{{.LocalVolumes}}` as Docker's `ps` prints them:
/// each mount's volume name, else its source (cut to 15 columns unless
/// `--no-trunc`), joined by commas; and how many are local volumes.
fn mounts_text(engine: &Engine, rec: &ContainerRecord, trunc: bool) -> (String, String) {
    let Ok(Value::Array(mounts)) = engine.volumes().mounts_json(&rec.id) else {
        return (String::new(), "0".into());
    };
    let field = |m: &Value, k: &str| m[k].as_str().unwrap_or_default().to_string();
    let names: Vec<String> = mounts
        .iter()
        .map(|m| {
            let name = match field(m, "Name") {
                n if n.is_empty() => field(m, "Source"),
                n => n,
            };
            if trunc {
                ellipsis(&name, 15)
            } else {
                name
            }
        })
        .collect();
    let local = mounts
        .iter()
        .filter(|m| field(m, "Driver") == "local")
        .count();
    (names.join(","), local.to_string())
}

pub fn ps(engine: &Engine, a: PsArgs) -> anyhow::Result<()> {
    let filters = ContainerFilters::parse(&a.filter)?;
    let svc = engine.containers();
    let all = a.all || a.latest || a.last > 0;
    let mut list = svc.list(all, &filters)?;
    // Newest first, as Docker lists them.
    list.reverse();
    if a.latest {
        list.truncate(1);
    } else if a.last > 0 {
        list.truncate(usize::try_from(a.last).unwrap_or(usize::MAX));
    }
    let mut out = io::stdout().lock();
    if a.quiet && a.format.is_none() {
        for rec in &list {
            let id = if a.no_trunc {
                rec.id.clone()
            } else {
                rec.id[..12].to_string()
            };
            writeln!(out, "{id}")?;
        }
        return Ok(());
    }
    let mut default = String::from(
        "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}",
    );
    if a.size {
        default.push_str("\t{{.Size}}");
    }
    let formatter = Formatter::new(a.format.as_deref(), &default)?;
    let rows: Vec<Value> = list
        .iter()
        .map(|rec| {
            let health = svc.health_status(rec);
            let (mounts, local_volumes) = mounts_text(engine, rec, !a.no_trunc);
            let labels = rec
                .config
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            json!({
                "Command": command_text(rec, a.no_trunc),
                "CreatedAt": rec.created.format("%Y-%m-%d %H:%M:%S %z UTC").to_string(),
                "ID": if a.no_trunc { rec.id.clone() } else { rec.id[..12].to_string() },
                "Image": rec.image_name,
                "Labels": labels,
                "LocalVolumes": local_volumes,
                "Mounts": mounts,
                "Names": rec.name,
                "Networks": networks_text(engine, rec),
                "Ports": ports_text(engine, rec),
                "RunningFor": format!("{} ago", human_duration(Utc::now() - rec.created)),
                "Size": if a.size { format!("{} (virtual {})", human_size(0), human_size(0)) } else { "0B".to_string() },
                "State": rec.status.as_str(),
                "Status": status_text(rec, &health),
            })
        })
        .collect();
    let headers = BTreeMap::from([
        ("ID", "CONTAINER ID"),
        ("Image", "IMAGE"),
        ("Command", "COMMAND"),
        ("CreatedAt", "CREATED AT"),
        ("RunningFor", "CREATED"),
        ("Status", "STATUS"),
        ("Ports", "PORTS"),
        ("Names", "NAMES"),
        ("Size", "SIZE"),
        ("Labels", "LABELS"),
        ("Mounts", "MOUNTS"),
        ("Networks", "NETWORKS"),
        ("State", "STATE"),
        ("LocalVolumes", "LOCAL VOLUMES"),
    ]);
    formatter.write(&mut out, &headers, &rows)
}

pub fn top(engine: &Engine, a: TopArgs) -> anyhow::Result<()> {
    let svc = engine.containers();
    let rec = svc.get(&a.container)?;
    if !matches!(rec.status, Status::Running | Status::Paused) {
        return Err(EngineError::Conflict(format!("container {} is not running", rec.id)).into());
    }
    let pids = svc.pids(&rec)?;
    let ps_args: Vec<String> = if a.ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        a.ps_args.clone()
    };
    let out = std::process::Command::new("ps")
        .args(&ps_args)
        .output()
        .map_err(|e| CliError::new(format!("running ps: {e}")))?;
    if !out.status.success() {
        return Err(CliError::new(format!(
            "Error response from daemon: ps: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
        .into());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let pid_col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| {
            CliError::new("Error response from daemon: Couldn't find PID field in ps output")
        })?;
    let mut table = String::new();
    table.push_str(&header.split_whitespace().collect::<Vec<_>>().join("\t"));
    table.push('\n');
    let ncols = header.split_whitespace().count();
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(pid) = fields.get(pid_col).and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if !pids.contains(&pid) {
            continue;
        }
        // The last column (the command) may contain spaces.
        let mut cols: Vec<String> = fields
            .iter()
            .take(ncols.saturating_sub(1))
            .map(|s| s.to_string())
            .collect();
        cols.push(
            fields
                .iter()
                .skip(ncols.saturating_sub(1))
                .copied()
                .collect::<Vec<_>>()
                .join(" "),
        );
        table.push_str(&cols.join("\t"));
        table.push('\n');
    }
    io::stdout().write_all(crate::template::align_table(&table).as_bytes())?;
    Ok(())
}

pub fn port(engine: &Engine, a: PortArgs) -> anyhow::Result<()> {
    let rec = engine.containers().get(&a.container)?;
    let mut published = engine.networks().published_ports(&rec.id)?;
    published.sort_by(|x, y| (x.container_port, &x.proto).cmp(&(y.container_port, &y.proto)));
    let mut out = io::stdout().lock();
    if let Some(p) = &a.port {
        let key = if p.contains('/') {
            p.clone()
        } else {
            format!("{p}/tcp")
        };
        let (port, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
        let hits: Vec<_> = published
            .iter()
            .filter(|x| x.container_port.to_string() == port && x.proto == proto)
            .collect();
        if hits.is_empty() {
            return Err(CliError::new(format!(
                "Error: No public port '{key}' published for {}",
                a.container
            ))
            .into());
        }
        for x in hits {
            writeln!(out, "{}:{}", x.host_ip, x.host_port)?;
        }
        return Ok(());
    }
    for x in &published {
        writeln!(
            out,
            "{}/{} -> {}:{}",
            x.container_port, x.proto, x.host_ip, x.host_port
        )?;
    }
    Ok(())
}

pub fn prune(engine: &Engine, a: ContainerPruneArgs) -> anyhow::Result<()> {
    if !a.force {
        eprint!("WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ");
        let mut answer = String::new();
        io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Ok(());
        }
    }
    let report = engine.containers().prune(&a.filter)?;
    let mut out = io::stdout().lock();
    if !report.removed.is_empty() {
        writeln!(out, "Deleted Containers:")?;
        for id in &report.removed {
            writeln!(out, "{id}")?;
        }
        writeln!(out)?;
    }
    writeln!(
        out,
        "Total reclaimed space: {}",
        human_size(report.reclaimed)
    )?;
    Ok(())
}

/// Container part of the generic `inspect`; `None` when no container matches.
pub fn inspect_container(engine: &Engine, word: &str) -> Result<Option<Value>, EngineError> {
    match engine.containers().inspect(word) {
        Ok(v) => Ok(Some(v)),
        Err(EngineError::NoSuchContainer(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `inspect` (`kind` None: containers, then images), `container inspect`
/// and `image inspect`, with `-f` templates.
pub fn inspect_typed(
    engine: &Engine,
    a: crate::args::InspectArgs,
    kind: Option<&str>,
) -> anyhow::Result<()> {
    let kind = kind.or(a.kind.as_deref());
    if let Some(k) = kind {
        if k != "container" && k != "image" && k != "network" {
            return Err(CliError::new(format!("\"{k}\" is not a valid value for --type")).into());
        }
    }
    if kind == Some("image") {
        return crate::image_cmds::inspect(engine, a, false);
    }
    if kind == Some("network") {
        return crate::network_cmds::inspect_words(engine, &a.images, a.format.as_deref());
    }
    let mut found = Vec::new();
    let mut failed = false;
    for name in &a.images {
        let v = match inspect_container(engine, name) {
            Ok(Some(v)) => Some(v),
            Ok(None) if kind.is_none() => match engine.images().inspect(name) {
                Ok(v) => Some(v),
                // Docker's plain `inspect` also finds networks.
                Err(e) if e.kind() == berth_engine::ErrorKind::NotFound => engine
                    .networks()
                    .get(name)
                    .and_then(|n| engine.networks().inspect_json(&n))
                    .ok(),
                Err(e) => {
                    failed = true;
                    eprintln!("Error response from daemon: {}", error_chain(&e));
                    continue;
                }
            },
            Ok(None) => None,
            Err(e) => {
                failed = true;
                eprintln!("Error response from daemon: {}", error_chain(&e));
                continue;
            }
        };
        match v {
            Some(v) => found.push(v),
            None => {
                failed = true;
                if kind == Some("container") {
                    eprintln!("Error: No such container: {name}");
                } else {
                    eprintln!("Error: No such object: {name}");
                }
            }
        }
    }
    crate::output::print_inspect(&found, a.format.as_deref())?;
    if failed {
        return Err(AlreadyReported.into());
    }
    Ok(())
}

/// `system prune`: stopped containers, unused user networks, then dangling
/// (with `-a`: unused) images.
pub fn system_prune(engine: &Engine, a: crate::args::SystemPruneArgs) -> anyhow::Result<()> {
    if !a.force {
        eprint!(
            "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n{}  - all {}images\n\nAre you sure you want to continue? [y/N] ",
            if a.volumes { "  - all anonymous volumes not used by at least one container\n" } else { "" },
            if a.all { "images without at least one container associated to them\n  - all " } else { "dangling " }
        );
        let mut answer = String::new();
        io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Ok(());
        }
    }
    let report = engine.containers().prune(&a.filter)?;
    let mut out = io::stdout().lock();
    if !report.removed.is_empty() {
        writeln!(out, "Deleted Containers:")?;
        for id in &report.removed {
            writeln!(out, "{id}")?;
        }
        writeln!(out)?;
    }
    crate::network_cmds::system_prune_networks(engine, &a.filter, &mut out)?;
    let mut volumes_reclaimed = 0;
    if a.volumes {
        // Volumes take only the label filters, as Docker's prune does.
        let labels: Vec<String> = a
            .filter
            .iter()
            .filter(|f| f.starts_with("label=") || f.starts_with("label!="))
            .cloned()
            .collect();
        let report = engine.volumes().prune(false, &labels)?;
        crate::volume_cmds::print_pruned(&mut out, &report.removed)?;
        volumes_reclaimed = report.reclaimed;
    }
    let images = engine
        .images()
        .prune(a.all, &berth_engine::PruneFilters::parse(&a.filter)?)?;
    if !images.events.is_empty() {
        writeln!(out, "Deleted Images:")?;
        for e in &images.events {
            match e {
                berth_engine::RemoveEvent::Untagged(n) => writeln!(out, "untagged: {n}")?,
                berth_engine::RemoveEvent::Deleted(id) => writeln!(out, "deleted: {id}")?,
            }
        }
        writeln!(out)?;
    }
    writeln!(
        out,
        "Total reclaimed space: {}",
        human_size(report.reclaimed + images.reclaimed + volumes_reclaimed)
    )?;
    Ok(())
}

/// `system boot`: restarts `always`/`unless-stopped` containers after a reboot.
pub fn boot(engine: &Engine) -> anyhow::Result<()> {
    let mut failed = false;
    for (rec, res) in engine.containers().boot()? {
        match res {
            Ok(()) => println!("{}", rec.name),
            Err(e) => {
                failed = true;
                eprintln!("Error starting {}: {}", rec.name, error_chain(&e));
            }
        }
    }
    if failed {
        return Err(AlreadyReported.into());
    }
    Ok(())
}

/// `update`: new limits for running or stopped containers.
pub fn update(engine: &Engine, a: UpdateArgs) -> anyhow::Result<()> {
    let bad = |flag: &str, v: &str, e: String| -> anyhow::Error {
        CliError::usage(format!(
            "invalid argument {v:?} for \"{flag}\" flag: {e}\nSee 'berth update --help'."
        ))
        .into()
    };
    let size = |flag: &str, v: &Option<String>| -> anyhow::Result<Option<i64>> {
        match v.as_deref() {
            None => Ok(None),
            Some("-1") => Ok(Some(-1)),
            Some(s) => crate::units::ram_in_bytes(s)
                .map(Some)
                .map_err(|e| bad(flag, s, e)),
        }
    };
    let u = berth_engine::containers::ResourceUpdate {
        cpu_shares: a.cpu_shares,
        memory: size("-m, --memory", &a.memory)?,
        memory_reservation: size("--memory-reservation", &a.memory_reservation)?,
        memory_swap: size("--memory-swap", &a.memory_swap)?,
        nano_cpus: a
            .cpus
            .as_deref()
            .map(|c| crate::run_args::values::nano_cpus(c).map_err(|e| bad("--cpus", c, e)))
            .transpose()?,
        cpu_period: a.cpu_period,
        cpu_quota: a.cpu_quota,
        cpuset_cpus: a.cpuset_cpus.clone(),
        cpuset_mems: a.cpuset_mems.clone(),
        pids_limit: a.pids_limit,
        blkio_weight: a.blkio_weight,
        restart_policy: a
            .restart
            .as_deref()
            .map(|r| crate::run_args::values::restart_policy(r).map_err(|e| bad("--restart", r, e)))
            .transpose()?,
    };
    let svc = engine.containers();
    each(&a.containers, |c| svc.update(c, &u).map(drop))
}
