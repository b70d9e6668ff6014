//! `commit`: a new image from a container: its image's layers, its
//! writable layer as one more, its config with `-c` changes, a history
//! entry with the message and author (moby `daemon/commit.go`).

use std::io::{BufWriter, Write};

use berth_image::model::{ContainerConfig as ImageContainerConfig, HealthConfig};
use berth_image::Digest;

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
            Ok::<_, EngineError>((tmp, diff_id))
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
