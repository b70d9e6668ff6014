//! Image commands: images, rmi, tag, history, inspect, save, load, import, prune.

use std::collections::BTreeMap;
use std::io::{self, BufRead, IsTerminal, Write};
use std::os::fd::AsFd;

use berth_engine::{Engine, ImageFilters, ImageSummary, ImportOptions, ImportSource, RemoveEvent};
use serde_json::{json, Value};

use crate::args::{
    HistoryArgs, ImagesArgs, ImportArgs, InspectArgs, LoadArgs, PruneArgs, RmiArgs, SaveArgs,
    TagArgs,
};
use crate::output::{
    ellipsis, error_chain, image_id, print_inspect, AlreadyReported, CliError, Formatter,
};
use crate::units::{go_time, human_size, human_size_with_precision, since};

const NONE: &str = "<none>";

pub fn list(engine: &Engine, a: ImagesArgs) -> anyhow::Result<()> {
    let mut filters = ImageFilters::parse(&a.filter)?;
    if let Some(repo) = &a.repository {
        filters.reference.push(repo.clone());
    }
    let images = engine.images().list(a.all, &filters)?;
    let mut out = io::stdout().lock();
    if a.quiet && a.format.is_none() {
        let mut seen = std::collections::HashSet::new();
        for img in &images {
            if seen.insert(img.id) {
                writeln!(out, "{}", image_id(&img.id, a.no_trunc))?;
            }
        }
        return Ok(());
    }
    let default = if a.digests {
        "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    } else {
        "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    };
    let formatter = Formatter::new(a.format.as_deref(), default)?;
    let rows: Vec<Value> = images
        .iter()
        .flat_map(|img| image_rows(img, a.no_trunc))
        .collect();
    let headers = BTreeMap::from([
        ("ID", "IMAGE ID"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("SharedSize", "SHARED SIZE"),
        ("UniqueSize", "UNIQUE SIZE"),
        ("VirtualSize", "SIZE"),
    ]);
    formatter.write(&mut out, &headers, &rows)
}

/// One row per (repository, tag), Docker's way of listing an image.
fn image_rows(img: &ImageSummary, no_trunc: bool) -> Vec<Value> {
    let mut by_repo: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
    for t in &img.repo_tags {
        if let Some((repo, tag)) = t.rsplit_once(':') {
            by_repo
                .entry(repo.to_string())
                .or_default()
                .0
                .push(tag.to_string());
        }
    }
    for d in &img.repo_digests {
        if let Some((repo, digest)) = d.split_once('@') {
            by_repo
                .entry(repo.to_string())
                .or_default()
                .1
                .push(digest.to_string());
        }
    }
    let row = |repo: &str, tag: &str, digest: &str| {
        let size = human_size_with_precision(img.size as f64, 3);
        json!({
            "Containers": "N/A",
            "CreatedAt": go_time(img.created),
            "CreatedSince": since(img.created),
            "Digest": digest,
            "ID": image_id(&img.id, no_trunc),
            "Repository": repo,
            "SharedSize": "N/A",
            "Size": size,
            "Tag": tag,
            "UniqueSize": "N/A",
            "VirtualSize": size,
        })
    };
    if by_repo.is_empty() {
        return vec![row(NONE, NONE, NONE)];
    }
    let mut rows = Vec::new();
    for (repo, (tags, digests)) in &by_repo {
        let digest = digests.first().map(String::as_str).unwrap_or(NONE);
        if tags.is_empty() {
            for d in digests {
                rows.push(row(repo, NONE, d));
            }
        }
        for tag in tags {
            rows.push(row(repo, tag, digest));
        }
    }
    rows
}

pub fn remove(engine: &Engine, a: RmiArgs) -> anyhow::Result<()> {
    let mut failed = false;
    let mut out = io::stdout().lock();
    for name in &a.images {
        match engine.images().remove(name, a.force) {
            Ok(events) => {
                for e in events {
                    match e {
                        RemoveEvent::Untagged(n) => writeln!(out, "Untagged: {n}")?,
                        RemoveEvent::Deleted(d) => writeln!(out, "Deleted: {d}")?,
                    }
                }
            }
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

pub fn tag(engine: &Engine, a: TagArgs) -> anyhow::Result<()> {
    engine.images().tag(&a.source, &a.target)?;
    Ok(())
}

pub fn history(engine: &Engine, a: HistoryArgs) -> anyhow::Result<()> {
    let entries = engine.images().history(&a.image)?;
    let mut out = io::stdout().lock();
    let id_of = |e: &berth_engine::HistoryEntry| match &e.id {
        Some(id) => image_id(id, a.no_trunc),
        None => "<missing>".to_string(),
    };
    if a.quiet && a.format.is_none() {
        for e in &entries {
            writeln!(out, "{}", id_of(e))?;
        }
        return Ok(());
    }
    let rows: Vec<Value> = entries
        .iter()
        .map(|e| {
            let created_by = e.created_by.replace('\t', " ");
            let created_by = if a.no_trunc {
                created_by
            } else {
                ellipsis(&created_by, 45)
            };
            let (created, size) = if a.human {
                (
                    since(e.created),
                    human_size_with_precision(e.size as f64, 3),
                )
            } else {
                (
                    e.created.map(|c| c.to_rfc3339()).unwrap_or_default(),
                    e.size.to_string(),
                )
            };
            json!({
                "ID": id_of(e),
                "CreatedSince": created,
                "CreatedAt": e.created.map(|c| c.to_rfc3339()).unwrap_or_default(),
                "CreatedBy": created_by,
                "Size": size,
                "Comment": e.comment,
                "Tags": e.tags.join(", "),
            })
        })
        .collect();
    let formatter = Formatter::new(
        a.format.as_deref(),
        "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}",
    )?;
    let headers = BTreeMap::from([
        ("ID", "IMAGE"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("CreatedBy", "CREATED BY"),
    ]);
    formatter.write(&mut out, &headers, &rows)
}

/// `image inspect` (and `inspect`, which names missing objects differently).
pub fn inspect(engine: &Engine, a: InspectArgs, generic: bool) -> anyhow::Result<()> {
    if let Some(kind) = a.kind.as_deref() {
        if kind != "image" {
            return Err(
                CliError::new(format!("\"{kind}\" is not a valid value for --type")).into(),
            );
        }
    }
    let mut found = Vec::new();
    let mut failed = false;
    for name in &a.images {
        match engine.images().inspect(name) {
            Ok(v) => found.push(v),
            Err(e) if generic && e.kind() == berth_engine::ErrorKind::NotFound => {
                failed = true;
                eprintln!("Error: No such object: {name}");
            }
            Err(e) => {
                failed = true;
                eprintln!("Error response from daemon: {}", error_chain(&e));
            }
        }
    }
    print_inspect(&found, a.format.as_deref())?;
    if failed {
        return Err(AlreadyReported.into());
    }
    Ok(())
}

pub fn save(engine: &Engine, a: SaveArgs) -> anyhow::Result<()> {
    let format = match a.format.as_str() {
        "docker-archive" | "docker" => berth_engine::ArchiveFormat::DockerArchive,
        "oci-archive" | "oci" => berth_engine::ArchiveFormat::OciArchive,
        other => {
            return Err(CliError::usage(format!(
            "invalid argument \"{other}\" for \"--format\" flag: use docker-archive or oci-archive"
        ))
            .into())
        }
    };
    crate::output::write_archive(a.output.as_deref(), "save image", |w| {
        engine.images().save(&a.images, w, format)?;
        Ok(())
    })
}

pub fn load(engine: &Engine, a: LoadArgs) -> anyhow::Result<()> {
    let report = match &a.input {
        Some(path) => engine.images().load_path(path)?,
        None => {
            let stdin = io::stdin();
            if stdin.is_terminal() {
                return Err(CliError::new("requested load from stdin, but stdin is empty").into());
            }
            let fd = stdin.as_fd().try_clone_to_owned()?;
            let file = std::fs::File::from(fd);
            if file.metadata().map(|m| m.is_file()).unwrap_or(false) {
                engine.images().load_file(file)?
            } else {
                engine
                    .images()
                    .load_reader(io::BufReader::with_capacity(1 << 20, file))?
            }
        }
    };
    let mut out = io::stdout().lock();
    for note in &report.notes {
        writeln!(out, "{note}")?;
    }
    for img in &report.images {
        if img.names.is_empty() {
            writeln!(out, "Loaded image ID: {}", img.id)?;
        }
        for n in &img.names {
            writeln!(out, "Loaded image: {n}")?;
        }
    }
    Ok(())
}

pub fn import(engine: &Engine, a: ImportArgs) -> anyhow::Result<()> {
    if a.platform
        .as_deref()
        .is_some_and(|p| p != "linux/amd64" && p != "linux")
    {
        return Err(CliError::new(format!(
            "unsupported platform {:?}: only linux/amd64 images can be imported",
            a.platform
        ))
        .into());
    }
    let source = if a.source == "-" {
        ImportSource::Reader(Box::new(io::BufReader::with_capacity(1 << 20, io::stdin())))
    } else if a.source.starts_with("http://") || a.source.starts_with("https://") {
        ImportSource::Url(a.source.clone())
    } else {
        ImportSource::Path(a.source.clone().into())
    };
    let id = engine.images().import(ImportOptions {
        source,
        changes: a.change,
        message: a.message,
        reference: a.reference,
    })?;
    println!("{id}");
    Ok(())
}

pub fn prune(engine: &Engine, a: PruneArgs) -> anyhow::Result<()> {
    let filters = berth_engine::PruneFilters::parse(&a.filter)?;
    if !a.force {
        let warning = if a.all {
            "WARNING! This will remove all images without at least one container associated to them."
        } else {
            "WARNING! This will remove all dangling images."
        };
        print!("{warning}\nAre you sure you want to continue? [y/N] ");
        io::stdout().flush()?;
        let mut answer = String::new();
        io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
            return Ok(());
        }
    }
    let report = engine.images().prune(a.all, &filters)?;
    let mut out = io::stdout().lock();
    if !report.events.is_empty() {
        writeln!(out, "Deleted Images:")?;
        for e in &report.events {
            match e {
                RemoveEvent::Untagged(n) => writeln!(out, "untagged: {n}")?,
                RemoveEvent::Deleted(d) => writeln!(out, "deleted: {d}")?,
            }
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
