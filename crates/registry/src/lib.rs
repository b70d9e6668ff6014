//! berth's registry server: the OCI distribution spec over a
//! content-addressed store on disk (`berth registry serve`).
//!
//! [`Server`] binds and serves on a tokio runtime; [`serve_until_signal`]
//! runs one until SIGINT/SIGTERM (the CLI); [`BackgroundServer`] runs one
//! on a thread of its own (tests).

pub mod error;
mod http;
pub mod names;
mod server;
pub mod storage;

pub use error::{ApiError, ErrorCode, RegistryError, StorageError};
pub use server::{serve_until_signal, BackgroundServer, RegistryConfig, Server, TlsFiles};
