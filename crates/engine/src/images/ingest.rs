//! `load` (image archives) and `import` (flat rootfs tarballs).
//!
//! Order makes them crash-safe: layers and blobs are stored first (each one
//! atomically, under the shared store lock so garbage collection leaves them
//! alone), the image row and tags last in one transaction. A load killed
//! half-way leaves at most unreferenced layers, which the next load reuses
//! and the next garbage collection removes. A failed load collects its own
//! garbage before returning.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use berth_archive::{ArchiveImage, ArchiveSource};
use berth_image::model::{ContainerConfig, History, ImageConfig, RootFs};
use berth_image::{BlobWriter, Digest, ImageError, Reference};

use super::layer_tars::tar_read_error;
use super::{store, ImageService, LayerRef};
use crate::error::EngineError;
use crate::lock::FileLock;

/// One image a load stored.
#[derive(Debug, Clone)]
pub struct LoadedImage {
    pub id: Digest,
    /// Familiar names it was loaded under.
    pub names: Vec<String>,
}

/// What a load did, for `Loaded image:` lines.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub images: Vec<LoadedImage>,
    /// Notes printed before the result (a tag moved off an older image).
    pub notes: Vec<String>,
}

/// Where `import` reads the rootfs tarball from.
pub enum ImportSource {
    Path(PathBuf),
    Reader(Box<dyn Read + Send>),
    /// An `http://` URL.
    Url(String),
}

pub struct ImportOptions {
    pub source: ImportSource,
    /// Dockerfile instructions (`CMD ["sh"]`, `ENV A=b` …) applied to the config.
    pub changes: Vec<String>,
    pub message: Option<String>,
    pub reference: Option<String>,
}

impl ImageService<'_> {
    /// Loads every image from an archive file or OCI layout directory.
    pub fn load_path(&self, path: &Path) -> Result<LoadReport, EngineError> {
        let source = ArchiveSource::open_path(path, &self.engine.tmp_dir())?;
        self.load_source(&source)
    }

    /// Loads from an open file (stdin redirected from a file is read in place).
    pub fn load_file(&self, file: File) -> Result<LoadReport, EngineError> {
        let source = ArchiveSource::open_file(file, &self.engine.tmp_dir())?;
        self.load_source(&source)
    }

    /// Loads from a stream (a pipe), spooling it first.
    pub fn load_reader(&self, r: impl Read) -> Result<LoadReport, EngineError> {
        let source = ArchiveSource::open_reader(r, &self.engine.tmp_dir())?;
        self.load_source(&source)
    }

    fn load_source(&self, source: &ArchiveSource) -> Result<LoadReport, EngineError> {
        let images = source.images()?;
        // Names are checked before anything is stored.
        let mut named: Vec<(&ArchiveImage, Vec<Reference>)> = Vec::new();
        for img in &images {
            let refs = img
                .repo_tags
                .iter()
                .map(|t| {
                    Reference::parse(t).map_err(|e| EngineError::Image(ImageError::Reference(e)))
                })
                .collect::<Result<Vec<_>, _>>()?;
            named.push((img, refs));
        }
        let lock = FileLock::shared(&self.engine.store_lock_path())?;
        let stored = named
            .iter()
            .map(|(img, _)| self.store_archive_image(source, img))
            .collect::<Result<Vec<_>, _>>();
        let stored = match stored {
            Ok(s) => s,
            Err(e) => {
                drop(lock);
                self.cleanup_after_failure();
                return Err(e);
            }
        };
        let mut report = LoadReport::default();
        let mut db = self.engine.db();
        let tx = db.write()?;
        for ((img, refs), layers) in named.iter().zip(&stored) {
            let config = ImageConfig::from_json(&img.config)?;
            let config_json = std::str::from_utf8(&img.config).map_err(|e| {
                EngineError::InvalidArgument(format!(
                    "image config {} is not UTF-8: {e}",
                    img.config_digest
                ))
            })?;
            store::insert_image(
                &tx,
                &store::NewImage {
                    id: &img.config_digest,
                    manifest_digest: img.manifest.as_ref().map(|m| &m.digest),
                    config_json,
                    created: config
                        .created
                        .map(|c| c.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
                    parent: None,
                    layers,
                },
            )?;
            for r in refs {
                if let Some(m) = &img.manifest {
                    store::add_repo_digest(&tx, &r.with_digest(m.digest), &img.config_digest)?;
                }
                if let Some(old) = store::set_tag(&tx, r, &img.config_digest)? {
                    report.notes.push(format!(
                        "The image {} already exists, renaming the old one with ID {old} to empty string",
                        r.familiar()
                    ));
                }
            }
            report.images.push(LoadedImage {
                id: img.config_digest,
                names: refs.iter().map(|r| r.familiar()).collect(),
            });
        }
        tx.commit()
            .map_err(|e| EngineError::db("committing loaded images", e))?;
        drop(db);
        drop(lock);
        Ok(report)
    }

    /// Stores one image's layers (unpacked and as blobs), config and manifest.
    fn store_archive_image(
        &self,
        source: &ArchiveSource,
        img: &ArchiveImage,
    ) -> Result<Vec<LayerRef>, EngineError> {
        let chains: Vec<Digest> = (1..=img.diff_ids.len())
            .map(|n| berth_image::chain_id(&img.diff_ids[..n]))
            .collect();
        let store = |i: usize, parent_stored: bool| {
            let (layer, diff_id) = (&img.layers[i], &img.diff_ids[i]);
            let parent = i.checked_sub(1).map(|p| &chains[p]);
            self.store_layer(parent, parent_stored, &chains[i], diff_id, || {
                Ok(source.open_layer_checked_as(layer, diff_id)?)
            })
        };
        let mut results = store_side_by_side(img.layers.len().min(img.diff_ids.len()), |i| {
            store(i, false)
        });
        // A real failure ends the load; layers that link to files below them
        // are applied again, in order, now that everything below is stored.
        if let Some(pos) = results
            .iter()
            .position(|r| matches!(r, Err(e) if !lower_pending(e)))
        {
            results.swap_remove(pos)?;
        }
        let mut refs = Vec::with_capacity(results.len());
        for (i, result) in results.into_iter().enumerate() {
            let stored = match result {
                Ok(s) => s,
                Err(_) => store(i, true)?,
            };
            let diff_id = img.diff_ids[i];
            refs.push(LayerRef {
                chain_id: chains[i],
                diff_id,
                blob_digest: stored.kept_blob.then_some(diff_id),
                size: stored.info.size,
            });
        }
        let content = &self.engine.content;
        content.write(&img.config[..], Some(&img.config_digest))?;
        if let Some(m) = &img.manifest {
            content.write(&m.bytes[..], Some(&m.digest))?;
        }
        Ok(refs)
    }

    /// Removes what a failed load stored; errors are logged, the load's own
    /// error is what the caller reports.
    fn cleanup_after_failure(&self) {
        if let Err(e) = self.collect_garbage() {
            tracing::warn!("cleaning up after a failed load: {e}");
        }
    }

    /// `import`: one layer from a rootfs tarball, a config built from
    /// `changes`; returns the new image id.
    pub fn import(&self, opts: ImportOptions) -> Result<Digest, EngineError> {
        let reference = opts
            .reference
            .as_deref()
            .map(|r| Reference::parse(r).map_err(|e| EngineError::Image(ImageError::Reference(e))))
            .transpose()?;
        let mut container = ContainerConfig::default();
        super::change::apply_changes(&mut container, &opts.changes)?;
        let (reader, source_name): (Box<dyn Read + Send>, String) = match opts.source {
            ImportSource::Path(p) => {
                let f = File::open(&p)
                    .map_err(|e| EngineError::io(format!("opening {}", p.display()), e))?;
                (
                    Box::new(io::BufReader::with_capacity(1 << 20, f)),
                    "-".to_string(),
                )
            }
            ImportSource::Reader(r) => (r, "-".to_string()),
            ImportSource::Url(u) => (super::http::get(&u)?, u),
        };
        let lock = FileLock::shared(&self.engine.store_lock_path())?;
        let stored = self.import_layer(reader);
        let (info, diff_id) = match stored {
            Ok(v) => v,
            Err(e) => {
                drop(lock);
                self.cleanup_after_failure();
                return Err(e);
            }
        };
        let now = chrono::Utc::now();
        let comment = opts
            .message
            .clone()
            .unwrap_or_else(|| format!("Imported from {source_name}"));
        let mut config = ImageConfig {
            created: Some(now),
            architecture: "amd64".into(),
            os: "linux".into(),
            config: Some(container),
            rootfs: RootFs {
                kind: "layers".into(),
                diff_ids: vec![diff_id],
            },
            history: vec![History {
                created: Some(now),
                comment: Some(comment.clone()),
                ..Default::default()
            }],
            ..Default::default()
        };
        config
            .extra
            .insert("comment".into(), serde_json::Value::String(comment));
        let config_bytes = config.to_json()?;
        let id = self.engine.content.write_bytes(&config_bytes)?;
        let config_json = String::from_utf8(config_bytes)
            .map_err(|e| EngineError::Corrupt(format!("generated config is not UTF-8: {e}")))?;
        let layers = [LayerRef {
            chain_id: info.chain_id,
            diff_id,
            blob_digest: Some(diff_id),
            size: info.size,
        }];
        let mut db = self.engine.db();
        let tx = db.write()?;
        store::insert_image(
            &tx,
            &store::NewImage {
                id: &id,
                manifest_digest: None,
                config_json: &config_json,
                created: Some(now.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
                parent: None,
                layers: &layers,
            },
        )?;
        if let Some(r) = &reference {
            store::set_tag(&tx, r, &id)?;
        }
        tx.commit()
            .map_err(|e| EngineError::db("committing imported image", e))?;
        drop(db);
        drop(lock);
        Ok(id)
    }

    fn import_layer(
        &self,
        reader: Box<dyn Read + Send>,
    ) -> Result<(berth_image::LayerInfo, Digest), EngineError> {
        let content = &self.engine.content;
        let plain = berth_image::decompress(reader)?;
        let mut tee = TeeReader {
            inner: plain,
            blob: Some(content.writer()?),
        };
        let info = self.engine.layers.apply(None, &mut tee, None)?;
        io::copy(&mut tee, &mut io::sink()).map_err(|e| tar_read_error(&info.diff_id, e))?;
        if let Some(blob) = tee.blob.take() {
            blob.commit(Some(&info.diff_id))?;
        }
        Ok((info.clone(), info.diff_id))
    }
}

fn lower_pending(e: &EngineError) -> bool {
    matches!(e, EngineError::Image(ImageError::LowerLayersPending { .. }))
}

/// Runs `store(i)` for `i` in `0..count` on several threads and returns the
/// results in order.
///
/// Unpacking is bound by sha256 of the layer stream (one core per layer: a
/// stream's hash cannot be split), so one image's layers are stored side by
/// side, each with its own hashing thread. Layers do not depend on each
/// other's content (see [`berth_image::LayerStore::apply_before_parent`]).
/// Half the CPUs (the other half hash), at least two, at most eight: more
/// threads only contend for the disk.
fn store_side_by_side<T: Send>(
    count: usize,
    store: impl Fn(usize) -> Result<T, EngineError> + Sync,
) -> Vec<Result<T, EngineError>> {
    let cpus = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    let workers = (cpus / 2).clamp(2, 8).min(count);
    if workers <= 1 {
        return (0..count).map(&store).collect();
    }
    super::transfer::run_parallel(count, workers, store)
}

/// Copies everything read through it into a blob being written.
struct TeeReader<'a, R> {
    inner: R,
    blob: Option<BlobWriter<'a>>,
}

impl<R: Read> Read for TeeReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(b) = &mut self.blob {
            b.write_all(&buf[..n])?;
        }
        Ok(n)
    }
}
