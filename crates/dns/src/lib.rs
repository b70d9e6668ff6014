//! berth-dns: the name server of berth's user networks.
//!
//! One `berth-dns` process per runroot serves every user network: it
//! listens on each network's gateway address and answers the names of the
//! containers on that network (and their aliases, and PTR for their
//! addresses); everything else it forwards to the upstream servers. The
//! engine describes each network in a JSON file ([`config`]) and tells the
//! process to pick the files up ([`control`]).

pub mod config;
pub mod control;
pub mod error;
pub mod server;

pub use error::DnsError;
