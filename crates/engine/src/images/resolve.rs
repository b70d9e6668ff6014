//! Turning what a user typed into an image: `busybox`, `busybox:1`,
//! `busybox@sha256:…`, an id prefix, `sha256:<prefix>`.

use berth_image::{ImageError, Reference};

use super::ImageRecord;
use crate::error::EngineError;

/// How a name matched.
#[derive(Debug, Clone)]
pub(crate) enum Matched {
    /// By tag or repo digest (the full reference that matched).
    Name(Reference),
    /// By (a prefix of) the image id.
    Id,
}

/// Finds the image `name` refers to among `images`; returns its index.
/// Names are tried before id prefixes (Docker's order), so a tag `abc`
/// wins over an image whose id starts with `abc`.
pub(crate) fn resolve(images: &[ImageRecord], name: &str) -> Result<(usize, Matched), EngineError> {
    if let Some(hex) = name.strip_prefix("sha256:") {
        return by_id_prefix(images, hex, name)?
            .map(|i| (i, Matched::Id))
            .ok_or_else(|| not_found(name));
    }
    let is_hex = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    if name.len() == 64 && is_hex {
        return by_id_prefix(images, name, name)?
            .map(|i| (i, Matched::Id))
            .ok_or_else(|| not_found(name));
    }
    let reference = match Reference::parse(name) {
        Ok(r) => r,
        Err(e) => return Err(EngineError::Image(ImageError::Reference(e))),
    };
    if let Some(i) = find_reference(images, &reference) {
        return Ok((i, Matched::Name(reference)));
    }
    if is_hex {
        if let Some(i) = by_id_prefix(images, name, name)? {
            return Ok((i, Matched::Id));
        }
    }
    Err(not_found(&reference.familiar()))
}

/// The image a full reference names (by tag or by repo digest).
pub(crate) fn find_reference(images: &[ImageRecord], reference: &Reference) -> Option<usize> {
    if reference.digest().is_some() {
        // `name@digest` names a repo digest; `name:tag@digest` is pinned by the digest alone.
        let wanted = Reference::parse(&format!(
            "{}@{}",
            reference.repository(),
            reference
                .digest()
                .map(|d| d.to_string())
                .unwrap_or_default()
        ))
        .ok()?;
        images.iter().position(|img| img.digests.contains(&wanted))
    } else {
        images.iter().position(|img| img.tags.contains(reference))
    }
}

fn by_id_prefix(
    images: &[ImageRecord],
    hex: &str,
    original: &str,
) -> Result<Option<usize>, EngineError> {
    if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(not_found(original));
    }
    let hex = hex.to_ascii_lowercase();
    let mut found = images
        .iter()
        .enumerate()
        .filter(|(_, img)| img.id.hex().starts_with(&hex));
    let first = found.next();
    if found.next().is_some() {
        return Err(EngineError::AmbiguousId(hex));
    }
    Ok(first.map(|(i, _)| i))
}

fn not_found(name: &str) -> EngineError {
    EngineError::NoSuchImage(name.to_string())
}
