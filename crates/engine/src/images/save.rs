//! `save`: images out as a docker-archive or oci-archive stream.

use std::io::{Read, Write};

use berth_archive::{write_archive, ArchiveError, ArchiveFormat, LayerTarSource, SaveImage};
use berth_image::{ContentStore, Digest};

use super::resolve::{resolve, Matched};
use super::ImageService;
use crate::error::EngineError;

impl ImageService<'_> {
    /// Writes the images `names` refer to into one archive. Names given as
    /// tags are recorded in the archive; images named by id carry no name
    /// (as with Docker).
    pub fn save(
        &self,
        names: &[String],
        out: impl Write,
        format: ArchiveFormat,
    ) -> Result<(), EngineError> {
        let images = self.records()?;
        let mut selected: Vec<SaveImage> = Vec::new();
        for name in names {
            let (i, matched) = resolve(&images, name)?;
            let img = &images[i];
            let names = match matched {
                Matched::Name(r) if r.digest().is_none() => vec![(r.to_string(), r.familiar())],
                _ => Vec::new(),
            };
            if let Some(existing) = selected.iter_mut().find(|s| s.config_digest == img.id) {
                for n in names {
                    if !existing.names.contains(&n) {
                        existing.names.push(n);
                    }
                }
                continue;
            }
            for l in &img.layers {
                if l.blob_digest.is_none() {
                    return Err(EngineError::Corrupt(format!(
                        "image {} layer {} has no stored tar to save",
                        img.id, l.diff_id
                    )));
                }
            }
            selected.push(SaveImage {
                config: img.config_json.as_bytes().to_vec(),
                config_digest: img.id,
                diff_ids: img.layers.iter().map(|l| l.diff_id).collect(),
                names,
            });
        }
        let source = BlobLayers {
            content: &self.engine.content,
        };
        write_archive(out, format, &selected, &source)?;
        Ok(())
    }
}

/// Layer tars from the content store, where load and import keep them
/// byte for byte under their diff ids.
struct BlobLayers<'a> {
    content: &'a ContentStore,
}

impl LayerTarSource for BlobLayers<'_> {
    fn layer_tar(&self, diff_id: &Digest) -> Result<(Box<dyn Read + '_>, u64), ArchiveError> {
        let size = self.content.size(diff_id).map_err(ArchiveError::from)?;
        let file = self
            .content
            .open_blob(diff_id)
            .map_err(ArchiveError::from)?;
        Ok((
            Box::new(std::io::BufReader::with_capacity(1 << 20, file)),
            size,
        ))
    }
}
