//! `export`: the container's whole filesystem as one tar (the image's files
//! with the container's changes applied, whiteouts resolved), which
//! `import` turns back into an image.

use std::io::Write;

use super::archive::TreeArchiver;
use super::error::ContainerFsError;
use crate::containers::ContainerService;
use crate::error::EngineError;

impl ContainerService<'_> {
    /// `export`: writes container `word`'s filesystem to `w` as a tar,
    /// entries named relative to its root (`bin/`, `bin/sh`, …) with no
    /// entry for the root itself, as Docker writes it. Running or not; the
    /// container's own mounts (volumes, /proc, …) are not included (see the
    /// module docs). Returns the bytes of file content written.
    pub fn export(&self, word: &str, w: impl Write) -> Result<u64, EngineError> {
        let rec = self.get(word)?;
        let root = self.open_root(&rec)?;
        let mut archiver = TreeArchiver::new(w);
        archiver.append_children(root.fd(), b"")?;
        let content = archiver.content_bytes;
        let mut w = archiver.finish()?;
        w.flush()
            .map_err(|e| ContainerFsError::io("writing the export", e))?;
        Ok(content)
    }
}
