//! `save`: images out as a docker-archive or oci-archive stream.

use std::io::Write;

use berth_archive::{write_archive, ArchiveFormat, SaveImage};

use super::layer_tars::StoredLayerTars;
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
        let mut chains = std::collections::HashMap::new();
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
                chains.insert(l.diff_id, l.chain_id);
            }
            selected.push(SaveImage {
                config: img.config_json.as_bytes().to_vec(),
                config_digest: img.id,
                diff_ids: img.layers.iter().map(|l| l.diff_id).collect(),
                names,
            });
        }
        let source = StoredLayerTars {
            engine: self.engine,
            chains,
        };
        write_archive(out, format, &selected, &source)?;
        Ok(())
    }
}
