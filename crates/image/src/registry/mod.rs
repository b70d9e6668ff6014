//! The registry client: the distribution API v2 as Docker speaks it.
//!
//! - [`config`]: `/etc/berth/berth.toml` (insecure registries, Docker Hub
//!   mirrors, certs.d);
//! - [`endpoint`]: endpoint choice (mirrors, HTTPS, HTTP for insecure
//!   registries) and TLS roots;
//! - [`transport`]: requests, Basic and Bearer-token authorisation;
//! - [`auth`]: challenges and Docker's `config.json` credentials;
//! - [`manifest`]: manifests and indexes (platform selection), tags;
//! - [`blob`]: verified, resumable downloads; mounts; uploads.
//!
//! Everything is blocking: callers run downloads on their own threads.

pub mod auth;
pub mod blob;
pub mod config;
pub mod endpoint;
mod error;
pub mod manifest;
pub mod transport;

pub use auth::{Credentials, DockerConfigFile};
pub use blob::{BlobReader, ProgressFn};
pub use config::RegistryConfig;
pub use endpoint::Endpoint;
pub use error::RegistryError;
pub use manifest::{FetchedManifest, ResolvedImage};
pub use transport::RegistryClient;
