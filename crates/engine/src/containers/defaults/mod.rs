//! Docker's defaults: the seccomp profile, generated names, the /etc files
//! and how an image's config fills in what `run` leaves out.

mod name_words;
pub mod names;
pub mod seccomp;
