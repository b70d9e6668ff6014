//! `commit`: a new image from a container: its image's layers, its
//! writable layer as one more, its config with `-c` changes, a history
//! entry with the message and author (moby `daemon/commit.go`).

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};

use berth_image::model::{ContainerConfig as ImageContainerConfig, HealthConfig};
use berth_image::{Digest, HashingWriter};

use crate::containers::model::ContainerConfig;
use crate::containers::{ContainerService, Status};
use crate::error::EngineError;
use crate::images::commit::{parse_reference, DerivedImage};

/// `commit`'s options (Docker's `-a -c -m -p` and `REPO[:TAG]`).
#[derive(Debug, Clone)]
pub struct CommitOptions {
    pub reference: Option<String>,
    pub author: Option<String>,
    pub message: Option<String>,
    /// Dockerfile instructions applied to the config (`CMD ["sh"]`, `ENV A=b`).
    pub changes: Vec<String>,
    /// Freeze a running container while its layer is read (Docker's default).
    pub pause: bool,
}

/// The bytes an empty tar consists of (two zero blocks): no changes.
const EMPTY_TAR_LEN: usize = 1024;

impl ContainerService<'_> {
    /// `commit`: stores the new image and returns its id.
    pub fn commit(&self, word: &str, opts: &CommitOptions) -> Result<Digest, EngineError> {
        let rec = self.get(word)?;
        let reference = opts.reference.as_deref().map(parse_reference).transpose()?;
        let mut config = image_config(&rec.config);
        crate::images::change::apply_changes(&mut config, &opts.changes)?;

        let pause_here = opts.pause && rec.status == Status::Running;
        if pause_here {
            self.pause(&rec.id)?;
        }
        let layer = (|| {
            let stubs = self.init_stubs(&rec.id)?;
            let mut tmp = tempfile::tempfile_in(self.engine.tmp_dir()).map_err(|e| {
                EngineError::io(
                    format!("creating a file in {}", self.engine.tmp_dir().display()),
                    e,
                )
            })?;
            let diff_id = {
                let mut w = BufWriter::with_capacity(1 << 20, &mut tmp);
                let d = self.engine.snapshots().diff(&rec.id, &mut w)?;
                w.flush()
                    .map_err(|e| EngineError::io("writing the layer tar", e))?;
                d
            };
            if stubs.is_empty() {
                return Ok((tmp, diff_id));
            }
            let filtered = without_paths(&mut tmp, &stubs, self.engine.tmp_dir().as_path())?;
            Ok::<_, EngineError>(filtered)
        })();
        if pause_here {
            if let Err(e) = self.unpause(&rec.id) {
                tracing::warn!("container {}: unpausing after commit: {e}", rec.id);
            }
        }
        let (mut tmp, diff_id) = layer?;
        let empty = diff_id == Digest::of_bytes(&[0u8; EMPTY_TAR_LEN]);
        let created_by = rec
            .config
            .cmd
            .as_ref()
            .map(|c| c.join(" "))
            .unwrap_or_default();
        let id = self.engine.images().store_derived(DerivedImage {
            parent: &rec.image_id,
            layer: (!empty).then_some((&mut tmp, diff_id)),
            config,
            author: opts.author.clone(),
            comment: opts.message.clone(),
            created_by,
            reference: reference.as_ref(),
        })?;
        self.event_with(
            &rec,
            "commit",
            &[
                ("comment", opts.message.clone().unwrap_or_default()),
                ("imageID", id.to_string()),
                (
                    "imageRef",
                    reference.map(|r| r.familiar()).unwrap_or_default(),
                ),
            ],
        );
        Ok(id)
    }
}

/// The container's config as an image config (what `commit` stores
/// before the `-c` changes).
fn image_config(c: &ContainerConfig) -> ImageContainerConfig {
    ImageContainerConfig {
        hostname: Some(c.hostname.clone()).filter(|h| !h.is_empty()),
        domainname: Some(c.domainname.clone()).filter(|d| !d.is_empty()),
        user: c.user.clone(),
        exposed_ports: c
            .exposed_ports
            .iter()
            .flatten()
            .map(|(k, _)| (k.clone(), berth_image::model::Empty {}))
            .collect(),
        env: c.env.clone(),
        entrypoint: c.entrypoint.clone().filter(|e| !e.is_empty()),
        cmd: c.cmd.clone(),
        volumes: c
            .volumes
            .iter()
            .flatten()
            .map(|(k, _)| (k.clone(), berth_image::model::Empty {}))
            .collect(),
        working_dir: c.working_dir.clone(),
        labels: c.labels.clone(),
        stop_signal: Some(c.stop_signal.clone()).filter(|s| !s.is_empty()),
        stop_timeout: c.stop_timeout,
        healthcheck: c.healthcheck.as_ref().map(|h| HealthConfig {
            test: h.test.clone(),
            interval: h.interval,
            timeout: h.timeout,
            start_period: h.start_period,
            start_interval: h.start_interval,
            retries: h.retries,
        }),
        args_escaped: None,
        on_build: c.on_build.clone().unwrap_or_default(),
        shell: c.shell.clone().unwrap_or_default(),
    }
}

/// The layer tar in `tar` without the entries at or below `paths`
/// (absolute), copied entry by entry as raw blocks so that everything else
/// stays byte for byte what the layer writer made; returns the new file
/// and its diff id.
fn without_paths(
    tar: &mut File,
    paths: &[String],
    tmp_dir: &std::path::Path,
) -> Result<(File, Digest), EngineError> {
    let io_err = |e: io::Error| EngineError::io("filtering the layer tar", e);
    tar.rewind().map_err(io_err)?;
    let out = tempfile::tempfile_in(tmp_dir)
        .map_err(|e| EngineError::io(format!("creating a file in {}", tmp_dir.display()), e))?;
    let mut builder = tar::Builder::new(HashingWriter::new(BufWriter::with_capacity(1 << 20, out)));
    let mut archive = tar::Archive::new(BufReader::with_capacity(1 << 20, &mut *tar));
    let entries = archive.entries().map_err(io_err)?.raw(true);
    // Extension blocks (GNU long names, PAX records) belong to the entry after them.
    let mut pending: Vec<(tar::Header, Vec<u8>)> = Vec::new();
    let mut long_name: Option<Vec<u8>> = None;
    for entry in entries {
        let mut entry = entry.map_err(io_err)?;
        let header = entry.header().clone();
        let mut data = Vec::new();
        let kind = header.entry_type();
        if kind.is_gnu_longname() || kind.is_gnu_longlink() || kind.is_pax_local_extensions() {
            entry.read_to_end(&mut data).map_err(io_err)?;
            if kind.is_gnu_longname() {
                let name = data.split(|b| *b == 0).next().unwrap_or_default();
                long_name = Some(name.to_vec());
            }
            pending.push((header, data));
            continue;
        }
        let name = long_name
            .take()
            .unwrap_or_else(|| header.path_bytes().into_owned());
        let name = format!("/{}", String::from_utf8_lossy(&name).trim_end_matches('/'));
        let dropped = paths
            .iter()
            .any(|p| name == *p || name.starts_with(&format!("{p}/")));
        let extensions = std::mem::take(&mut pending);
        if dropped {
            continue;
        }
        for (h, d) in extensions {
            builder.append(&h, &d[..]).map_err(io_err)?;
        }
        builder.append(&header, &mut entry).map_err(io_err)?;
    }
    let hashing = builder.into_inner().map_err(io_err)?;
    let (w, diff_id, _) = hashing.finish();
    let out = w.into_inner().map_err(|e| io_err(e.into_error()))?;
    Ok((out, diff_id))
}
