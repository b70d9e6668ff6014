//! `diff`, `cp`, `export`, `commit`: Docker 28's flags, output and exit
//! codes over the engine's container filesystem operations. `cp`'s
//! host-side rules (which directory, which name) are Docker's CLI's
//! (`cli/command/container/cp.go`), from `berth_engine::containers::fs`.

use std::io::{self, IsTerminal, Read, Write};

use berth_engine::containers::fs::{self as cfs, CopyInfo, ExtractOptions, HostSource, Ownership};
use berth_engine::{Engine, EngineError};
use clap::{ArgAction, Args};

use crate::output::CliError;

#[derive(Debug, Args)]
pub struct DiffArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Debug, Args)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// Suppress progress output during copy. Progress output is automatically suppressed if no terminal is attached
    #[arg(short, long)]
    pub quiet: bool,
    /// CONTAINER:SRC_PATH or SRC_PATH|-
    #[arg(value_name = "SRC", allow_hyphen_values = true)]
    pub source: String,
    /// DEST_PATH|- or CONTAINER:DEST_PATH
    #[arg(value_name = "DEST", allow_hyphen_values = true)]
    pub destination: String,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long)]
    pub output: Option<std::path::PathBuf>,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Debug, Args)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short, long)]
    pub author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long = "change")]
    pub change: Vec<String>,
    /// Commit message
    #[arg(short, long)]
    pub message: Option<String>,
    /// Pause container during commit (default true)
    #[arg(
        short,
        long,
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_value_t = true,
        default_missing_value = "true"
    )]
    pub pause: bool,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub reference: Option<String>,
}

pub fn diff(engine: &Engine, a: DiffArgs) -> anyhow::Result<()> {
    let changes = engine.containers().changes(&a.container)?;
    let mut out = io::stdout().lock();
    for c in changes {
        writeln!(out, "{c}")?;
    }
    Ok(())
}

pub fn export(engine: &Engine, a: ExportArgs) -> anyhow::Result<()> {
    crate::output::write_archive(a.output.as_deref(), "export container", |w| {
        engine.containers().export(&a.container, w)?;
        Ok(())
    })
}

pub fn commit(engine: &Engine, a: CommitArgs) -> anyhow::Result<()> {
    let id = engine.containers().commit(
        &a.container,
        &cfs::CommitOptions {
            reference: a.reference,
            author: a.author,
            message: a.message,
            changes: a.change,
            pause: a.pause,
        },
    )?;
    println!("{id}");
    Ok(())
}

/// Docker's `splitCpArg`: `CONTAINER:PATH`, unless the argument is an
/// absolute local path or starts with `.` (`./file:name`).
fn split_cp_arg(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.starts_with('.') => (Some(c), p),
        _ => (None, arg),
    }
}

pub fn cp(engine: &Engine, a: CpArgs) -> anyhow::Result<()> {
    if a.source.is_empty() {
        return Err(CliError::new("source can not be empty").into());
    }
    if a.destination.is_empty() {
        return Err(CliError::new("destination can not be empty").into());
    }
    let quiet = a.quiet || !io::stderr().is_terminal();
    match (split_cp_arg(&a.source), split_cp_arg(&a.destination)) {
        ((Some(_), _), (Some(_), _)) => {
            Err(CliError::new("copying between containers is not supported").into())
        }
        ((Some(c), src), (None, dst)) => copy_from_container(engine, &a, c, src, dst, quiet),
        ((None, src), (Some(c), dst)) => copy_to_container(engine, &a, c, src, dst, quiet),
        ((None, _), (None, _)) => {
            Err(CliError::new("must specify at least one container source").into())
        }
    }
}

/// Docker's `resolveLocalPath`: absolute, with a trailing `/` or `/.` kept.
fn local_abs_path(p: &str) -> anyhow::Result<String> {
    let abs = if p.starts_with('/') {
        p.to_string()
    } else {
        format!("{}/{p}", std::env::current_dir()?.display())
    };
    let (dir, base) = cfs::split_path_dir_entry(&abs);
    let mut out = if dir == "/" {
        format!("/{base}")
    } else {
        format!("{dir}/{base}")
    };
    if p.ends_with('/') && !out.ends_with('/') {
        out.push('/');
    }
    Ok(out)
}

fn copy_from_container(
    engine: &Engine,
    a: &CpArgs,
    container: &str,
    src: &str,
    dst: &str,
    quiet: bool,
) -> anyhow::Result<()> {
    let containers = engine.containers();
    if dst == "-" {
        let out = io::stdout().lock();
        containers.archive_path(
            container,
            src,
            a.follow_link,
            io::BufWriter::with_capacity(1 << 20, out),
        )?;
        return Ok(());
    }
    let dst = local_abs_path(dst)?;
    validate_output_path(&dst)?;
    let stat = containers.stat_path(container, src, a.follow_link)?;
    let dst_info = cfs::copy_info_destination_path(&dst)?;
    let src_info = CopyInfo {
        path: src.to_string(),
        exists: true,
        is_dir: stat.is_dir(),
        rebase_name: Some(stat.name.clone()),
    };
    let prepared = cfs::prepare_archive_copy(&src_info, &dst_info)?;
    if !quiet {
        eprintln!("Preparing to copy...");
    }
    let (reader, writer) = io::pipe()?;
    let copied = std::thread::scope(|s| {
        let archiving = s.spawn(move || {
            containers.archive_path(
                container,
                src,
                a.follow_link,
                io::BufWriter::with_capacity(1 << 20, writer),
            )
        });
        let mut counted = Counting {
            inner: reader,
            count: 0,
        };
        let extracted = cfs::extract_on_host(&prepared.dir, &mut counted, prepared.rebase.clone());
        // Drain what the archiver still writes, so that it never blocks on
        // a reader that stopped early.
        let _ = io::copy(&mut counted, &mut io::sink());
        let archived = archiving
            .join()
            .map_err(|_| anyhow::anyhow!("the archiving thread panicked"))?;
        archived?;
        extracted?;
        Ok::<_, anyhow::Error>(counted.count)
    })?;
    if !quiet {
        eprintln!(
            "Successfully copied {} to {dst}",
            crate::units::human_size_with_precision(copied as f64, 3)
        );
    }
    Ok(())
}

fn copy_to_container(
    engine: &Engine,
    a: &CpArgs,
    container: &str,
    src: &str,
    dst: &str,
    quiet: bool,
) -> anyhow::Result<()> {
    let containers = engine.containers();
    let mut dst_info = CopyInfo {
        path: dst.to_string(),
        ..Default::default()
    };
    let mut dst_stat = containers.stat_path(container, dst, false);
    if let Ok(st) = &dst_stat {
        if st.is_symlink() {
            dst_info.path = st.link_target.clone();
            dst_stat = containers.stat_path(container, &dst_info.path, false);
        }
    }
    match dst_stat {
        Ok(st) => {
            if !st.is_dir_or_regular() {
                return Err(CliError::new(format!(
                    "destination \"{container}:{dst}\" must be a directory or a regular file"
                ))
                .into());
            }
            dst_info.exists = true;
            dst_info.is_dir = st.is_dir();
        }
        // A missing destination is fine (its parent must exist: the
        // extraction says so); a missing container is not.
        Err(e @ (EngineError::NoSuchContainer(_) | EngineError::AmbiguousContainer(_))) => {
            return Err(e.into())
        }
        Err(_) => {}
    }
    let ownership = if a.archive {
        Ownership::FromArchive
    } else {
        Ownership::Fixed(0, 0)
    };
    if src == "-" {
        if !dst_info.is_dir {
            return Err(CliError::new(format!(
                "destination \"{container}:{dst}\" must be a directory"
            ))
            .into());
        }
        let opts = ExtractOptions {
            ownership,
            rebase: None,
        };
        containers.extract_to_dir(
            container,
            &dst_info.path,
            io::BufReader::with_capacity(1 << 20, io::stdin().lock()),
            &opts,
        )?;
        return Ok(());
    }
    let src = local_abs_path(src)?;
    let source = HostSource::open(&src, a.follow_link)?;
    let prepared = cfs::prepare_archive_copy(source.info(), &dst_info)?;
    if !quiet {
        eprintln!("Preparing to copy...");
    }
    let opts = ExtractOptions {
        ownership,
        rebase: prepared.rebase.clone(),
    };
    let (reader, writer) = io::pipe()?;
    let copied = std::thread::scope(|s| {
        let source = &source;
        let archiving = s.spawn(move || {
            // The pipe's end is dropped here, before the join: the reader
            // sees the end of the stream.
            source
                .write_archive(io::BufWriter::with_capacity(1 << 20, writer))
                .map(drop)
        });
        let mut counted = Counting {
            inner: reader,
            count: 0,
        };
        let extracted = containers.extract_to_dir(container, &prepared.dir, &mut counted, &opts);
        let _ = io::copy(&mut counted, &mut io::sink());
        let archived = archiving
            .join()
            .map_err(|_| anyhow::anyhow!("the archiving thread panicked"))?;
        extracted?;
        archived?;
        Ok::<_, anyhow::Error>(counted.count)
    })?;
    if !quiet {
        eprintln!(
            "Successfully copied {} to {container}:{}",
            crate::units::human_size_with_precision(copied as f64, 3),
            dst_info.path
        );
    }
    Ok(())
}

/// Docker's `ValidateOutputPath`: the parent directory must exist, and an
/// existing path must be a directory or a regular file.
fn validate_output_path(path: &str) -> anyhow::Result<()> {
    let (dir, _) = cfs::split_path_dir_entry(path);
    if !std::path::Path::new(&dir).exists() {
        return Err(CliError::new(format!(
            "invalid output path: directory \"{dir}\" does not exist"
        ))
        .into());
    }
    if let Ok(md) = std::fs::metadata(path) {
        if !md.is_dir() && !md.is_file() {
            return Err(CliError::new(format!(
                "invalid output path: \"{path}\" must be a directory or a regular file"
            ))
            .into());
        }
    }
    Ok(())
}

struct Counting<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}
