//! berth's OCI runtime: runc's command line and the OCI runtime spec on
//! Linux — namespaces, cgroups (via `berth-cgroups`), rootfs (via
//! `berth-rootfs`), seccomp (via `berth-seccomp`), capabilities, hooks,
//! consoles, exec and the state directory.
//!
//! The binary `berth-runtime` is [`commands::main`]; embedders call
//! [`process::parent::create`], [`commands::start`], [`commands::kill`],
//! [`commands::delete`] directly.

pub mod cgroup;
pub mod cli;
mod cli_fast;
pub mod commands;
pub mod config;
pub mod console;
pub mod error;
pub mod hooks;
pub mod log;
pub mod process;
pub mod rlimits;
pub mod signal;
pub mod state;
pub mod sysctl;

pub use error::{ErrorKind, RuntimeError};
pub use process::parent::{create, CreateOptions, Created};
pub use state::{ContainerState, Status};
