//! Image archives: `docker save`/`podman save` tars (docker-archive), OCI
//! image layouts as directories or tars (oci-archive), plain or compressed.
//!
//! Reading: [`ArchiveSource`] gives random access to an archive's files,
//! [`ArchiveSource::images`] finds the images with configs verified, and
//! [`ArchiveSource::open_layer`] streams a layer blob with its digest checked
//! at end of stream. Writing: [`write_archive`] streams images out, layers
//! taken from a [`LayerTarSource`].

mod error;
mod read;
mod source;
mod tarsplit;
mod write;

pub use error::{ArchiveError, ArchiveErrorKind};
pub use read::{diff_ids, ArchiveImage, ArchiveLayer, ArchiveManifest};
pub use source::{ArchiveSource, VerifyingReader};
pub use tarsplit::{split_tar_size, TarJoiner, TarSplitter};
pub use write::{write_archive, ArchiveFormat, LayerTarSource, SaveImage};

/// `docker save`'s list of images.
pub const DOCKER_MANIFEST: &str = "manifest.json";
/// The OCI image layout's entry point.
pub const OCI_INDEX: &str = "index.json";
pub const OCI_LAYOUT: &str = "oci-layout";
/// The tag (or full name) of an index entry.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The full image name containerd and Docker 25+ write.
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";

/// Media types this crate reads and writes.
pub mod media {
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
}
