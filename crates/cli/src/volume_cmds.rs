//! `volume` commands: Docker's `create ls inspect rm prune`, and berth's
//! `export`, `import` and `snapshot create|ls|restore|rm`.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;

use berth_engine::volumes::{ImportMode, Volume, VolumeCreate, VolumeFilters};
use berth_engine::Engine;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::output::{error_chain, AlreadyReported, CliError, Formatter};
use crate::units::human_size;

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum VolumeCommand {
    /// Create a volume
    Create(CreateArgs),
    /// List volumes
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more volumes
    Inspect(InspectArgs),
    /// Remove one or more volumes
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove unused local volumes
    Prune(PruneArgs),
    /// Write a volume's files to a gzip tar archive
    Export(ExportArgs),
    /// Create a volume from a tar archive
    Import(ImportArgs),
    /// Manage snapshots of a volume
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum SnapshotCommand {
    /// Take a snapshot of a volume
    Create(SnapshotArgs),
    /// List the snapshots of a volume
    #[command(alias = "list")]
    Ls(SnapshotLsArgs),
    /// Replace a volume's files with a snapshot's
    Restore(SnapshotArgs),
    /// Remove a snapshot
    #[command(alias = "remove")]
    Rm(SnapshotArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Specify volume driver name
    #[arg(short, long, default_value = "local")]
    pub driver: String,
    /// Set metadata for a volume
    #[arg(long = "label")]
    pub label: Vec<String>,
    /// Set driver specific options
    #[arg(short, long = "opt")]
    pub opt: Vec<String>,
    /// Specify volume name
    #[arg(long = "name", hide = true)]
    pub name_flag: Option<String>,
    #[arg(value_name = "VOLUME")]
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only display volume names
    #[arg(short, long)]
    pub quiet: bool,
    /// Provide filter values (e.g. "dangling=true")
    #[arg(short, long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template ('table', 'table TEMPLATE', 'json', or a Go template)
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(required = true, value_name = "VOLUME")]
    pub volumes: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Force the removal of one or more volumes
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true, value_name = "VOLUME")]
    pub volumes: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Provide filter values (e.g. "label=<label>")
    #[arg(long = "filter")]
    pub filter: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[arg(value_name = "VOLUME")]
    pub volume: String,
    /// The archive to write (gzip tar)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Replace the files of an existing, non-empty volume
    #[arg(short, long)]
    pub force: bool,
    /// The archive to read (tar, gzip or not)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    #[arg(value_name = "VOLUME")]
    pub volume: String,
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    #[arg(value_name = "VOLUME")]
    pub volume: String,
    #[arg(value_name = "SNAPSHOT")]
    pub snapshot: String,
}

#[derive(Debug, Args)]
pub struct SnapshotLsArgs {
    /// Only display snapshot names
    #[arg(short, long)]
    pub quiet: bool,
    /// Format output using a custom template ('table', 'json', or a Go template)
    #[arg(long)]
    pub format: Option<String>,
    #[arg(value_name = "VOLUME")]
    pub volume: String,
}

pub fn run(engine: &Engine, cmd: VolumeCommand) -> anyhow::Result<()> {
    match cmd {
        VolumeCommand::Create(a) => create(engine, a),
        VolumeCommand::Ls(a) => list(engine, a),
        VolumeCommand::Inspect(a) => inspect(engine, a),
        VolumeCommand::Rm(a) => remove(engine, a),
        VolumeCommand::Prune(a) => prune(engine, a),
        VolumeCommand::Export(a) => {
            engine.volumes().export(&a.volume, &a.file)?;
            Ok(())
        }
        VolumeCommand::Import(a) => {
            let mode = if a.force {
                ImportMode::Replace
            } else {
                ImportMode::EmptyOnly
            };
            engine.volumes().import(&a.file, &a.volume, mode)?;
            println!("{}", a.volume);
            Ok(())
        }
        VolumeCommand::Snapshot(s) => snapshot(engine, s),
    }
}

/// `key=value` pairs of `-o`/`--label` (a bare key has an empty value
/// for labels; options need the `=`, as Docker's `MapOpts` does).
fn pairs(
    values: &[String],
    need_value: bool,
    flag: &str,
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for v in values {
        match v.split_once('=') {
            Some((k, val)) if !k.is_empty() => {
                out.insert(k.to_string(), val.to_string());
            }
            None if !need_value && !v.is_empty() => {
                out.insert(v.clone(), String::new());
            }
            _ => {
                return Err(CliError::usage(format!(
                    "invalid argument {v:?} for \"{flag}\" flag: invalid key/value pair format: use KEY=VALUE\nSee 'berth volume create --help'."
                ))
                .into())
            }
        }
    }
    Ok(out)
}

fn create(engine: &Engine, a: CreateArgs) -> anyhow::Result<()> {
    let name = match (a.name, a.name_flag) {
        (Some(n), Some(f)) if n != f => {
            return Err(CliError::new(format!(
                "conflicting options: cannot specify a volume-name through both --name and as a positional arg ({f} != {n})"
            ))
            .into())
        }
        (n, f) => n.or(f),
    };
    let v = engine.volumes().create(VolumeCreate {
        name,
        driver: a.driver,
        labels: pairs(&a.label, false, "--label")?,
        options: pairs(&a.opt, true, "-o, --opt")?,
    })?;
    println!("{}", v.record.name);
    Ok(())
}

fn labels_text(v: &Volume) -> String {
    v.record
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A row for `ls --format` (Docker's volume formatter fields).
fn row(v: &Volume) -> Value {
    json!({
        "Availability": "N/A",
        "Driver": v.record.driver,
        "Group": "N/A",
        "Labels": labels_text(v),
        "Links": "N/A",
        "Mountpoint": v.mountpoint.display().to_string(),
        "Name": v.record.name,
        "Scope": "local",
        "Size": "N/A",
        "Status": "N/A",
        "CreatedAt": berth_engine::volumes::created_at(&v.record),
    })
}

fn list(engine: &Engine, a: LsArgs) -> anyhow::Result<()> {
    let filters = VolumeFilters::parse(&a.filter).map_err(berth_engine::EngineError::from)?;
    let volumes = engine.volumes().list(&filters)?;
    let mut out = io::stdout().lock();
    if a.quiet && a.format.is_none() {
        for v in &volumes {
            writeln!(out, "{}", v.record.name)?;
        }
        return Ok(());
    }
    let formatter = Formatter::new(a.format.as_deref(), "table {{.Driver}}\t{{.Name}}")?;
    let rows: Vec<Value> = volumes.iter().map(row).collect();
    let headers = BTreeMap::from([
        ("Driver", "DRIVER"),
        ("Name", "VOLUME NAME"),
        ("Scope", "SCOPE"),
        ("Mountpoint", "MOUNTPOINT"),
        ("Labels", "LABELS"),
        ("Links", "LINKS"),
        ("Size", "SIZE"),
        ("CreatedAt", "CREATED AT"),
        ("Availability", "AVAILABILITY"),
        ("Group", "GROUP"),
        ("Status", "STATUS"),
    ]);
    formatter.write(&mut out, &headers, &rows)
}

fn inspect(engine: &Engine, a: InspectArgs) -> anyhow::Result<()> {
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in &a.volumes {
        match engine.volumes().inspect(name) {
            Ok(v) => found.push(v),
            Err(e) => errors.push(e),
        }
    }
    if !found.is_empty() || a.format.is_none() {
        crate::output::print_inspect(&found, a.format.as_deref())?;
    }
    if errors.is_empty() {
        return Ok(());
    }
    for e in &errors {
        eprintln!("Error response from daemon: {}", error_chain(e));
    }
    Err(AlreadyReported.into())
}

fn remove(engine: &Engine, a: RmArgs) -> anyhow::Result<()> {
    let mut failed = false;
    let mut out = io::stdout().lock();
    for name in &a.volumes {
        match engine.volumes().remove(name, a.force) {
            Ok(()) => writeln!(out, "{name}")?,
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

/// Asks on stderr; true when the user said yes.
fn confirm(warning: &str) -> anyhow::Result<bool> {
    eprint!("{warning}\nAre you sure you want to continue? [y/N] ");
    let mut answer = String::new();
    io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// Prints Docker's `Deleted Volumes:` block (nothing when none went).
pub fn print_pruned(out: &mut impl Write, removed: &[String]) -> anyhow::Result<()> {
    if removed.is_empty() {
        return Ok(());
    }
    writeln!(out, "Deleted Volumes:")?;
    for name in removed {
        writeln!(out, "{name}")?;
    }
    writeln!(out)?;
    Ok(())
}

fn prune(engine: &Engine, a: PruneArgs) -> anyhow::Result<()> {
    if !a.force {
        let what = if a.all {
            "WARNING! This will remove all local volumes not used by at least one container."
        } else {
            "WARNING! This will remove anonymous local volumes not used by at least one container."
        };
        if !confirm(what)? {
            return Ok(());
        }
    }
    let report = engine.volumes().prune(a.all, &a.filter)?;
    let mut out = io::stdout().lock();
    print_pruned(&mut out, &report.removed)?;
    writeln!(
        out,
        "Total reclaimed space: {}",
        human_size(report.reclaimed)
    )?;
    Ok(())
}

fn snapshot(engine: &Engine, cmd: SnapshotCommand) -> anyhow::Result<()> {
    let volumes = engine.volumes();
    match cmd {
        SnapshotCommand::Create(a) => {
            volumes.snapshot_create(&a.volume, &a.snapshot)?;
            println!("{}", a.snapshot);
        }
        SnapshotCommand::Restore(a) => {
            volumes.snapshot_restore(&a.volume, &a.snapshot)?;
        }
        SnapshotCommand::Rm(a) => {
            volumes.snapshot_remove(&a.volume, &a.snapshot)?;
            println!("{}", a.snapshot);
        }
        SnapshotCommand::Ls(a) => {
            let snaps = volumes.snapshot_list(&a.volume)?;
            let mut out = io::stdout().lock();
            if a.quiet && a.format.is_none() {
                for s in &snaps {
                    writeln!(out, "{}", s.name)?;
                }
                return Ok(());
            }
            let formatter = Formatter::new(
                a.format.as_deref(),
                "table {{.Name}}\t{{.CreatedAt}}\t{{.Size}}",
            )?;
            let rows: Vec<Value> = snaps
                .iter()
                .map(|s| {
                    json!({
                        "Name": s.name,
                        "CreatedAt": s.created.with_timezone(&chrono::Local).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        "Size": human_size(s.size),
                    })
                })
                .collect();
            let headers = BTreeMap::from([
                ("Name", "NAME"),
                ("CreatedAt", "CREATED AT"),
                ("Size", "SIZE"),
            ]);
            formatter.write(&mut out, &headers, &rows)?;
        }
    }
    Ok(())
}
