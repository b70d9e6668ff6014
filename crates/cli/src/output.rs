//! Errors and formatted output shared by the commands.

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::Value;

use crate::template::{align_table, Template};

/// An error detected by the CLI itself (not by the engine), with its exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    pub message: String,
    pub code: u8,
}

impl CliError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: 1,
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: 125,
        }
    }
}

/// Errors already reported (e.g. per-argument failures of `rmi`) that only
/// need the exit status.
#[derive(Debug, thiserror::Error)]
#[error("one or more operations failed")]
pub struct AlreadyReported;

/// Prints `e` the way Docker does and returns the exit status.
pub fn report_error(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<AlreadyReported>().is_some() {
        return 1;
    }
    if let Some(cli) = e.downcast_ref::<CliError>() {
        // An empty message carries only a status (a container's exit code).
        if !cli.message.is_empty() {
            eprintln!("{}", cli.message);
        }
        return cli.code;
    }
    if let Some(engine) = e.downcast_ref::<berth_engine::EngineError>() {
        eprintln!("Error response from daemon: {}", error_chain(engine));
        return 1;
    }
    eprintln!("Error: {}", error_chain(e.as_ref()));
    1
}

/// `e: cause: cause`, skipping causes whose text the message already contains.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// Renders rows with a user `--format` or a default table.
pub struct Formatter {
    template: Template,
    json_lines: bool,
}

impl Formatter {
    /// `format`: `None`/"table" → `default_table`; "json" → one JSON object
    /// per line; anything else is a Go template.
    pub fn new(format: Option<&str>, default_table: &str) -> anyhow::Result<Self> {
        let (src, json_lines) = match format {
            None | Some("") | Some("table") => (default_table.to_string(), false),
            Some("json") => ("{{json .}}".to_string(), true),
            Some(f) => (f.to_string(), false),
        };
        let template = Template::parse(&src).map_err(|e| CliError::new(e.to_string()))?;
        Ok(Self {
            template,
            json_lines,
        })
    }

    /// Writes the rows (with a header row for `table` templates).
    pub fn write(
        &self,
        out: &mut impl Write,
        headers: &BTreeMap<&str, &str>,
        rows: &[Value],
    ) -> anyhow::Result<()> {
        let mut text = String::new();
        if self.template.is_table() && !self.json_lines {
            text.push_str(&self.template.render_header(headers));
            text.push('\n');
        }
        for row in rows {
            let line = self
                .template
                .render(row)
                .map_err(|e| CliError::new(e.to_string()))?;
            text.push_str(&line);
            text.push('\n');
        }
        let text = if self.template.is_table() {
            align_table(&text)
        } else {
            text
        };
        out.write_all(text.as_bytes())?;
        Ok(())
    }
}

/// `sha256:<64 hex>` → 12 hex characters unless `no_trunc`.
pub fn image_id(id: &berth_image::Digest, no_trunc: bool) -> String {
    if no_trunc {
        id.to_string()
    } else {
        id.short()
    }
}

/// Docker's `stringutils.Ellipsis`: at most `max` characters, the last one `…`.
pub fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Prints `inspect` results: each rendered through `format` (a Go
/// template), or all as one JSON array indented like Docker's.
pub fn print_inspect(found: &[Value], format: Option<&str>) -> anyhow::Result<()> {
    let template = format
        .filter(|f| !f.is_empty() && *f != "json")
        .map(Template::parse)
        .transpose()
        .map_err(|e| CliError::new(e.to_string()))?;
    let mut out = std::io::stdout().lock();
    match template {
        Some(t) => {
            for v in found {
                let s = t.render(v).map_err(|e| CliError::new(e.to_string()))?;
                writeln!(out, "{s}")?;
            }
        }
        None => {
            let mut buf = Vec::new();
            let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
            let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
            serde::Serialize::serialize(found, &mut ser)?;
            out.write_all(&buf)?;
            writeln!(out)?;
        }
    }
    Ok(())
}

/// Writes an archive with `write` to `-o FILE` or, without one, to stdout
/// (refused when stdout is a terminal, like Docker). A file is written next
/// to its target and renamed into place, so a failure never leaves a
/// truncated archive under the requested name. `what` names the operation
/// in errors ("save image", "export container").
pub fn write_archive(
    output: Option<&std::path::Path>,
    what: &str,
    write: impl FnOnce(&mut dyn std::io::Write) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let Some(path) = output else {
        let stdout = std::io::stdout();
        if stdout.is_terminal() {
            return Err(CliError::new(
                "cowardly refusing to save to a terminal. Use the -o flag or redirect",
            )
            .into());
        }
        let mut w = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
        write(&mut w)?;
        return w.flush().map_err(Into::into);
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".berth-archive-")
        .tempfile_in(dir)
        .map_err(|e| {
            CliError::new(format!(
                "failed to {what}: creating a file in {}: {e}",
                dir.display()
            ))
        })?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file());
    write(&mut w)?;
    w.flush()?;
    drop(w);
    tmp.persist(path)
        .map_err(|e| CliError::new(format!("failed to {what}: writing {}: {e}", path.display())))?;
    Ok(())
}
