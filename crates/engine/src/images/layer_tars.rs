//! Storing layers so that `save` can reproduce their tars byte for byte.
//!
//! A loaded layer is unpacked once; alongside it goes a tar-split
//! description (`<root>/layer-tars/<chain hex>`: headers and padding, file
//! contents read back from the unpacked layer), which is far smaller than
//! keeping the tar itself. Tars that cannot be split (a path with content
//! twice) are kept whole in the content store under their diff id instead.

use std::io::{self, Read, Write};
use std::path::PathBuf;

use berth_archive::{ArchiveError, LayerTarSource, TarJoiner, TarSplitter, VerifyingReader};
use berth_image::{Digest, ImageError, LayerInfo};

use super::ImageService;
use crate::error::EngineError;
use crate::lock::FileLock;
use crate::Engine;

/// What [`ImageService::store_layer`] stored.
pub(crate) struct StoredLayer {
    pub info: LayerInfo,
    /// Whether the whole tar is kept as a blob (named by the diff id).
    pub kept_blob: bool,
}

impl Engine {
    fn layer_tars_dir(&self) -> PathBuf {
        self.config.root.join("layer-tars")
    }

    pub(crate) fn split_path(&self, chain: &Digest) -> PathBuf {
        self.layer_tars_dir().join(chain.hex())
    }

    pub(crate) fn has_layer_tar(&self, chain: &Digest, diff_id: &Digest) -> bool {
        self.split_path(chain).is_file() || self.content.contains(diff_id)
    }

    fn write_split(&self, chain: &Digest, bytes: &[u8]) -> Result<(), EngineError> {
        let dir = self.layer_tars_dir();
        std::fs::create_dir_all(&dir)
            .map_err(|e| EngineError::io(format!("creating {}", dir.display()), e))?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".split-")
            .tempfile_in(&dir)
            .map_err(|e| EngineError::io(format!("creating a file in {}", dir.display()), e))?;
        tmp.write_all(bytes)
            .map_err(|e| EngineError::io(format!("writing {}", tmp.path().display()), e))?;
        let dest = self.split_path(chain);
        tmp.persist(&dest)
            .map_err(|e| EngineError::io(format!("storing {}", dest.display()), e.error))?;
        Ok(())
    }

    /// Removes the split descriptions of layers not in `keep`.
    pub(crate) fn sweep_splits(
        &self,
        keep: &std::collections::HashSet<Digest>,
    ) -> Result<(), EngineError> {
        let dir = self.layer_tars_dir();
        let Ok(rd) = std::fs::read_dir(&dir) else {
            return Ok(());
        };
        for ent in rd.flatten() {
            let name = ent.file_name();
            let Some(name) = name.to_str() else { continue };
            let keep_it = Digest::from_hex(name).is_ok_and(|d| keep.contains(&d));
            // `.split-*` temp files belong to a writer that died (or is
            // running under the shared store lock, which GC excludes).
            if !keep_it {
                std::fs::remove_file(ent.path()).map_err(|e| {
                    EngineError::io(format!("removing {}", ent.path().display()), e)
                })?;
            }
        }
        Ok(())
    }
}

impl ImageService<'_> {
    /// Makes sure layer `chain` (diff `diff_id` on `parent`) is unpacked and
    /// reproducible. `open` yields the layer blob (it is called again only
    /// when the tar must be kept whole). Concurrent loads of one layer
    /// serialise on a per-layer lock, so it is read and unpacked once.
    /// Without `parent_stored` the layer is applied with
    /// [`berth_image::LayerStore::apply_before_parent`] (and may fail with
    /// [`ImageError::LowerLayersPending`]).
    pub(crate) fn store_layer<'s, R: Read + 's>(
        &self,
        parent: Option<&Digest>,
        parent_stored: bool,
        chain: &Digest,
        diff_id: &Digest,
        open: impl Fn() -> Result<VerifyingReader<R>, EngineError>,
    ) -> Result<StoredLayer, EngineError> {
        let engine = self.engine;
        let layers = &engine.layers;
        let stored = |info: LayerInfo| StoredLayer {
            info,
            kept_blob: engine.content.contains(diff_id),
        };
        if let Some(info) = layers.get(chain)? {
            if engine.has_layer_tar(chain, diff_id) {
                return Ok(stored(info));
            }
        }
        let _layer_lock =
            FileLock::exclusive(&engine.tmp_dir().join(format!("layer-{}.lock", chain.hex())))?;
        let existing = layers.get(chain)?;
        if let Some(info) = &existing {
            if engine.has_layer_tar(chain, diff_id) {
                return Ok(stored(info.clone()));
            }
        }
        let mut verifying = open()?;
        let (info, split) = {
            let plain = berth_image::decompress(&mut verifying)?;
            let mut tee = SplitTee {
                inner: plain,
                split: TarSplitter::new(),
                hasher: None,
            };
            let info = match existing {
                Some(info) => {
                    // Unpacked by a load that died before splitting: only
                    // the description is missing; the stream is still verified.
                    tee.hasher = Some(berth_image::Hasher::new());
                    info
                }
                None if parent_stored => layers.apply(parent, &mut tee, Some(diff_id))?,
                None => layers.apply_before_parent(parent, &mut tee, Some(diff_id))?,
            };
            // The unpacker stops at the tar's end marker; the padding after
            // it belongs to the tar and its digest too.
            io::copy(&mut tee, &mut io::sink()).map_err(|e| tar_read_error(diff_id, e))?;
            if let Some(h) = tee.hasher.take() {
                let actual = h.finish();
                if actual != *diff_id {
                    return Err(ImageError::DigestMismatch {
                        expected: *diff_id,
                        actual,
                    }
                    .into());
                }
            }
            (info, tee.split.finish())
        };
        verifying.finish()?;
        match split {
            Ok(bytes) => {
                engine.write_split(chain, &bytes)?;
                Ok(StoredLayer {
                    info,
                    kept_blob: false,
                })
            }
            Err(why) => {
                tracing::debug!("layer {diff_id}: keeping the whole tar: {why}");
                let mut again = open()?;
                engine
                    .content
                    .write(berth_image::decompress(&mut again)?, Some(diff_id))?;
                again.finish()?;
                Ok(StoredLayer {
                    info,
                    kept_blob: true,
                })
            }
        }
    }
}

pub(crate) fn tar_read_error(diff_id: &Digest, e: io::Error) -> EngineError {
    EngineError::Image(ImageError::LayerTar {
        layer: diff_id.to_string(),
        source: e,
    })
}

/// Feeds everything read through it to a [`TarSplitter`] (and a hasher).
struct SplitTee<R> {
    inner: R,
    split: TarSplitter,
    hasher: Option<berth_image::Hasher>,
}

impl<R: Read> Read for SplitTee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.split.write_all(&buf[..n])?;
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}

/// Layer tars for `save`: the whole tar from the content store when kept,
/// else rebuilt from the split description and the unpacked layer.
pub(crate) struct StoredLayerTars<'a> {
    pub engine: &'a Engine,
    /// diff id → a chain id whose layer has that diff.
    pub chains: std::collections::HashMap<Digest, Digest>,
}

impl LayerTarSource for StoredLayerTars<'_> {
    fn layer_tar(&self, diff_id: &Digest) -> Result<(Box<dyn Read + '_>, u64), ArchiveError> {
        let content = &self.engine.content;
        if content.contains(diff_id) {
            let size = content.size(diff_id)?;
            let file = content.open_blob(diff_id)?;
            return Ok((Box::new(io::BufReader::with_capacity(1 << 20, file)), size));
        }
        let chain = self
            .chains
            .get(diff_id)
            .ok_or_else(|| ArchiveError::Invalid {
                what: "layer".into(),
                reason: format!("no layer with diff id {diff_id}"),
            })?;
        let path = self.engine.split_path(chain);
        let split = std::fs::read(&path).map_err(|e| ArchiveError::Io {
            op: "reading",
            path: path.clone(),
            source: e,
        })?;
        let size = berth_archive::split_tar_size(&split)?;
        let joiner = TarJoiner::new(split, &self.engine.layers.diff_dir(chain))?;
        Ok((
            Box::new(io::BufReader::with_capacity(1 << 20, joiner)),
            size,
        ))
    }
}
