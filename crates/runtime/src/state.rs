//! The persisted state of one container: `<root>/<id>/state.json`, written
//! atomically, guarded by an flock on the container directory, and the
//! live status derived from the init process and the freezer.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};

use crate::error::RuntimeError;

pub use berth_runtime_state::{proc_stat, StateHead, EXEC_FIFO, STATE_FILE};

/// The OCI status of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What `state.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerState {
    pub id: String,
    pub init_pid: i32,
    /// Start time of the init in clock ticks since boot (field 22 of
    /// /proc/pid/stat): tells a reused pid from our init.
    pub init_start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: chrono::DateTime<chrono::Utc>,
    pub owner: String,
    pub cgroup_path: PathBuf,
    pub config: Spec,
}

/// runc's `state` output: the OCI state plus rootfs, created and owner.
#[derive(Debug, Clone, Serialize)]
pub struct StateOutput {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub status: Status,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: chrono::DateTime<chrono::Utc>,
    pub owner: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<HashMap<String, String>>,
}

/// The OCI state document given to hooks on stdin.
#[derive(Debug, Clone, Serialize)]
pub struct HookState<'a> {
    #[serde(rename = "ociVersion")]
    pub oci_version: &'a str,
    pub id: &'a str,
    pub status: Status,
    pub pid: i32,
    pub bundle: &'a Path,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<&'a HashMap<String, String>>,
}

/// Refuses ids that could escape the state root or confuse tools.
pub fn check_id(id: &str) -> Result<(), RuntimeError> {
    let bad = |reason| {
        Err(RuntimeError::InvalidId {
            id: id.to_string(),
            reason,
        })
    };
    if id.is_empty() {
        return bad("empty");
    }
    if id == "." || id == ".." {
        return bad("reserved name");
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '+'))
    {
        return bad("only letters, digits, '_', '-', '.', '+' are allowed");
    }
    if id.len() > 1024 {
        return bad("longer than 1024 bytes");
    }
    Ok(())
}

/// A locked container directory.
pub struct ContainerDir {
    pub path: PathBuf,
    // Held for the flock; released on drop.
    _lock: File,
}

fn lock_dir(path: &Path) -> Result<File, RuntimeError> {
    berth_runtime_state::lock_dir(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            RuntimeError::NotFound(
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            )
        } else {
            RuntimeError::io(format!("open {}", path.display()), e)
        }
    })
}

impl ContainerDir {
    /// Creates `<root>/<id>` (failing if it exists) and locks it.
    pub fn create(root: &Path, id: &str) -> Result<Self, RuntimeError> {
        check_id(id)?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(root)
            .map_err(|e| RuntimeError::io(format!("create state root {}", root.display()), e))?;
        let path = root.join(id);
        match fs::DirBuilder::new().mode(0o711).create(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(RuntimeError::Exists(id.to_string()));
            }
            Err(e) => return Err(RuntimeError::io(format!("create {}", path.display()), e)),
        }
        let lock = lock_dir(&path)?;
        Ok(ContainerDir { path, _lock: lock })
    }

    /// Opens and locks the directory of an existing container.
    pub fn open(root: &Path, id: &str) -> Result<Self, RuntimeError> {
        check_id(id)?;
        let path = root.join(id);
        let lock = lock_dir(&path).map_err(|e| match e {
            RuntimeError::NotFound(_) => RuntimeError::NotFound(id.to_string()),
            e => e,
        })?;
        if !path.join(STATE_FILE).exists() {
            return Err(RuntimeError::NotFound(id.to_string()));
        }
        Ok(ContainerDir { path, _lock: lock })
    }

    /// The few fields a delete of a stopped container needs, and whether
    /// the spec may have poststop hooks (see [`berth_runtime_state::read_head`]).
    pub fn load_head(&self) -> Result<(StateHead, bool), RuntimeError> {
        berth_runtime_state::read_head(&self.path).map_err(RuntimeError::from)
    }

    pub fn load(&self) -> Result<ContainerState, RuntimeError> {
        let file = self.path.join(STATE_FILE);
        let data =
            fs::read(&file).map_err(|e| RuntimeError::io(format!("read {}", file.display()), e))?;
        serde_json::from_slice(&data).map_err(|e| RuntimeError::Protocol {
            context: "state.json",
            reason: format!("{}: {e}", file.display()),
        })
    }

    /// Writes state.json through a temporary file and rename.
    pub fn save(&self, state: &ContainerState) -> Result<(), RuntimeError> {
        let data = serde_json::to_vec(state).map_err(|e| RuntimeError::Protocol {
            context: "state.json",
            reason: e.to_string(),
        })?;
        write_atomic(&self.path.join(STATE_FILE), &data)
    }

    pub fn fifo_path(&self) -> PathBuf {
        self.path.join(EXEC_FIFO)
    }

    /// Removes the directory and everything in it.
    pub fn remove(self) -> Result<(), RuntimeError> {
        fs::remove_dir_all(&self.path)
            .map_err(|e| RuntimeError::io(format!("remove {}", self.path.display()), e))
    }
}

/// Writes `data` to `path` atomically (temp file in the same directory, then
/// rename), so readers never see a half-written file.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<(), RuntimeError> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        RuntimeError::io(format!("write {}", path.display()), e)
    })
}

impl ContainerState {
    /// Whether the init process still runs (and is ours, not a reused pid).
    pub fn init_alive(&self) -> bool {
        berth_runtime_state::init_alive(self.init_pid, self.init_start_time)
    }

    /// The live status: stopped when the init is gone, created while it
    /// waits on exec.fifo, paused when frozen, running otherwise.
    pub fn status(&self, dir: &Path) -> Status {
        if !self.init_alive() {
            return Status::Stopped;
        }
        if dir.join(EXEC_FIFO).exists() {
            return Status::Created;
        }
        if let Ok(m) = berth_cgroups::manager(&self.cgroup_path) {
            if m.is_frozen().unwrap_or(false) {
                return Status::Paused;
            }
        }
        Status::Running
    }

    pub fn annotations(&self) -> Option<&HashMap<String, String>> {
        self.config.annotations().as_ref().filter(|a| !a.is_empty())
    }

    pub fn output(&self, status: Status) -> StateOutput {
        StateOutput {
            oci_version: self.config.version().clone(),
            id: self.id.clone(),
            pid: if status == Status::Stopped {
                0
            } else {
                self.init_pid
            },
            status,
            bundle: self.bundle.clone(),
            rootfs: self.rootfs.clone(),
            created: self.created,
            owner: self.owner.clone(),
            annotations: self.annotations().cloned(),
        }
    }

    pub fn hook_state(&self, status: Status) -> HookState<'_> {
        HookState {
            oci_version: self.config.version(),
            id: &self.id,
            status,
            pid: if status == Status::Stopped {
                0
            } else {
                self.init_pid
            },
            bundle: &self.bundle,
            annotations: self.annotations(),
        }
    }
}
