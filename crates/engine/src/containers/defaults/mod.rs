//! Docker's defaults: the seccomp profile, generated names, the /etc files
//! and how an image's config fills in what `run` leaves out.

pub mod etc_files;
pub mod image_merge;
mod name_words;
pub mod names;
pub mod seccomp;

pub use etc_files::{
    etc_files, write_etc_files, EtcFiles, EtcFilesError, EtcFilesInput, EtcNetwork,
};
pub use image_merge::{merge_image_config, ImageMergeError};
pub use names::{new_container_id, random_name, random_name_with_suffix, validate_name, NameError};
pub use seccomp::{
    container_seccomp, default_profile, parse_profile, to_oci, DockerSeccompProfile, SeccompChoice,
    SeccompProfileError,
};
