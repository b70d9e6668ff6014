//! Layer tars from directories.
use std::io::Write;
use std::path::Path;

use crate::digest::Digest;
use crate::error::ImageError;

/// Generates a layer tar from an overlay upper dir (for commit/build): overlay
/// whiteouts (char 0:0 device, or `trusted.overlay.whiteout`) become `.wh.NAME`,
/// opaque dirs (`trusted.overlay.opaque=y`) get `.wh..wh..opq`; returns the diff id.
pub fn diff_from_upper(_upper: &Path, _w: impl Write) -> Result<Digest, ImageError> {
    todo!()
}
