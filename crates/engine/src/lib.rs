//! berth's engine: the state of images (and later containers, volumes,
//! networks) over SQLite, and the operations front ends call.
//!
//! [`Engine::open`] opens a state root; [`Engine::images`] gives the
//! [`ImageService`] (list, inspect, history, tag, remove, prune, load, save,
//! import); [`Engine::disk_usage`] is `system df`.

pub mod containers;
mod db;
mod detached;
mod df;
mod error;
mod filters;
mod images;
mod lock;
pub mod networks;
mod trash;
pub mod volumes;

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use berth_image::{ContentStore, LayerStore, OverlaySnapshotter};

pub use berth_archive::ArchiveFormat;
pub use db::compact as compact_database;
pub use df::{DiskUsage, UsageRow};
pub use error::{EngineError, ErrorKind};
pub use images::{
    change::apply_changes, HistoryEntry, ImageFilters, ImageService, ImageSummary, ImportOptions,
    ImportSource, LayerStatus, LoadReport, LoadedImage, NoProgress, PruneFilters, PruneReport,
    PullReport, PushReport, RemoveEvent, TransferProgress,
};
pub use trash::empty_dirs as empty_trash;

/// Where an engine keeps its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Persistent state: database, content store, layers (`/var/lib/berth`).
    pub root: PathBuf,
    /// Runtime state: sockets, exit files (`/run/berth`).
    pub runroot: PathBuf,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            root: PathBuf::from("/var/lib/berth"),
            runroot: PathBuf::from("/run/berth"),
        }
    }
}

/// An open state root.
pub struct Engine {
    config: EngineConfig,
    db: Mutex<db::Db>,
    content: ContentStore,
    layers: LayerStore,
    snapshots: OverlaySnapshotter,
    /// A monitor started ahead of the next container start (see
    /// [`Engine::keep_standby_monitor`]). Declared before `deferred`, so
    /// that an unused one is gone before that forks.
    standby_monitor: Mutex<Option<berth_monitor::client::StandbyMonitor>>,
    /// Work for one background process when the engine closes.
    deferred: Mutex<detached::Deferred>,
}

impl Drop for Engine {
    fn drop(&mut self) {
        // A grown WAL is checkpointed by the process that does the deferred
        // work, with a connection of its own: the fields drop in order, so
        // this one's connection is closed (`db` comes first) before that
        // process is forked (`deferred` comes last).
        let db = self.db.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(path) = db.take_checkpoint() {
            self.deferred
                .get_mut()
                .unwrap_or_else(|e| e.into_inner())
                .checkpoint(path);
        }
    }
}

impl Engine {
    /// Opens (creating) the state under `config.root` and `config.runroot`.
    pub fn open(config: EngineConfig) -> Result<Self, EngineError> {
        for dir in [&config.root, &config.runroot, &config.root.join("tmp")] {
            std::fs::create_dir_all(dir).map_err(|e| {
                EngineError::io(format!("creating state directory {}", dir.display()), e)
            })?;
        }
        let db = db::Db::open(&config.root.join(db::DB_FILE))?;
        let content = ContentStore::open(&config.root)?;
        let layers = LayerStore::open(&config.root)?;
        let snapshots = OverlaySnapshotter::open(&config.root, layers.clone())?;
        Ok(Self {
            config,
            db: Mutex::new(db),
            content,
            layers,
            snapshots,
            deferred: Mutex::default(),
            standby_monitor: Mutex::default(),
        })
    }

    /// Keeps `monitor` (see [`containers::start_standby_monitor`]) for the
    /// next container this engine starts: its exec and detaching forks then
    /// happened while the command opened the state and prepared the
    /// container. Unused, it exits when the engine closes.
    pub fn keep_standby_monitor(&self, monitor: berth_monitor::client::StandbyMonitor) {
        *self
            .standby_monitor
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(monitor);
    }

    pub(crate) fn take_standby_monitor(&self) -> Option<berth_monitor::client::StandbyMonitor> {
        self.standby_monitor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Background work to do once this engine is closed.
    pub(crate) fn deferred(&self) -> std::sync::MutexGuard<'_, detached::Deferred> {
        self.deferred.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The image operations.
    pub fn images(&self) -> ImageService<'_> {
        ImageService::new(self)
    }

    /// The container operations.
    pub fn containers(&self) -> containers::ContainerService<'_> {
        containers::ContainerService::new(self)
    }

    /// The volume operations.
    pub fn volumes(&self) -> volumes::VolumeService<'_> {
        volumes::VolumeService::new(self)
    }

    /// The network operations.
    pub fn networks(&self) -> networks::NetworkService<'_> {
        networks::NetworkService::new(self)
    }

    fn snapshots(&self) -> &OverlaySnapshotter {
        &self.snapshots
    }

    /// Makes layer applies skip the final `syncfs` (tests, benchmarks).
    pub fn set_durable(&mut self, durable: bool) {
        self.layers.set_durable(durable);
    }

    fn db(&self) -> MutexGuard<'_, db::Db> {
        // A panic while holding the lock leaves SQLite consistent (the
        // transaction rolls back on drop), so a poisoned lock is still usable.
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn store_lock_path(&self) -> PathBuf {
        self.config.root.join("store.lock")
    }

    fn tmp_dir(&self) -> PathBuf {
        self.config.root.join("tmp")
    }
}
