//! Finding the helper programs a container needs: the monitor, the OCI
//! runtime, the `--init` binary, and `berth` itself (the monitor's exit
//! command calls back into it).
//!
//! Order: an environment override (`BERTH_MONITOR`, `BERTH_RUNTIME`,
//! `BERTH_INIT`, `BERTH_CLI`), then the directory of the running
//! executable and its parent (cargo puts test executables in
//! `target/<profile>/deps/`, the binaries one level up), then `$PATH`.

use std::path::{Path, PathBuf};

use crate::error::EngineError;

#[derive(Debug, Clone)]
pub struct Binaries {
    pub monitor: PathBuf,
    pub runtime: PathBuf,
    pub init: PathBuf,
    pub cli: PathBuf,
}

impl Binaries {
    pub fn discover() -> Result<Self, EngineError> {
        Ok(Self {
            monitor: find("BERTH_MONITOR", "berth-monitor")?,
            runtime: find("BERTH_RUNTIME", "berth-runtime")?,
            init: find("BERTH_INIT", "berth-init")?,
            cli: find("BERTH_CLI", "berth")?,
        })
    }
}

/// Where `name` is, by the order in the module doc.
pub fn find(env: &str, name: &str) -> Result<PathBuf, EngineError> {
    if let Some(p) = std::env::var_os(env).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        if let Some(d) = exe.parent() {
            dirs.push(d.to_path_buf());
            if let Some(up) = d.parent() {
                dirs.push(up.to_path_buf());
            }
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.iter()
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
        .ok_or_else(|| {
            EngineError::InvalidArgument(format!(
                "cannot find {name}: it is neither beside the berth binary nor in $PATH; install it or set {env}"
            ))
        })
}

/// Resolves a program name through `$PATH` (absolute paths pass through).
pub fn in_path(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Some(PathBuf::from(name)).filter(|p| is_executable(p));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
