//! Containers: the model (Docker's `Config`/`HostConfig`), Docker's defaults
//! (capabilities, seccomp profile, names, /etc files), the OCI spec a
//! container runs with, and the lifecycle over the per-container monitor.

pub mod defaults;
pub mod model;
pub mod spec;
#[allow(dead_code)] // wired up by the lifecycle, next
mod store;

pub use store::{ContainerRecord, RunState, Status};
