//! Volumes: named and anonymous data directories that outlive containers
//! (Docker's `local` driver), and what berth adds from LXD's custom
//! storage volumes: export/import as tar.gz and snapshots.
//!
//! On disk (`<root>/volumes/`): `<name>/_data` is the volume (bind-mounted
//! into containers), `<name>/snapshots/<snap>/` its snapshots; `.trash/`
//! holds volumes being deleted and `.staging/` imports and copies in
//! progress, so that a crash never leaves a half-made volume, snapshot or
//! import under its real name. Rows live in SQLite (`store`); a volume is
//! in use while a container's mount points name it.

mod archive;
mod attach;
mod driver;
mod error;
mod fault;
mod filters;
mod snapshots;
mod store;
mod tree;

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::Utc;
use serde_json::{json, Value};

use crate::error::EngineError;
use crate::lock::FileLock;
use crate::Engine;

pub use archive::ImportMode;
pub use error::VolumeError;
pub use filters::VolumeFilters;
pub use snapshots::SnapshotInfo;
pub use store::{MountKind, MountPoint, VolumeRecord};

/// The label Docker puts on anonymous volumes.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";
/// The only volume driver.
pub const LOCAL_DRIVER: &str = "local";

/// What `volume create` asks for.
#[derive(Debug, Clone, Default)]
pub struct VolumeCreate {
    /// `None`: an anonymous volume with a random 64-hex name.
    pub name: Option<String>,
    /// Empty means `local`.
    pub driver: String,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
}

/// A volume with what `ls` and `inspect` show beside its record.
#[derive(Debug, Clone)]
pub struct Volume {
    pub record: VolumeRecord,
    /// `<root>/volumes/<name>/_data`.
    pub mountpoint: PathBuf,
    /// How many containers reference it.
    pub links: u64,
}

/// What `volume prune` removed.
#[derive(Debug, Clone, Default)]
pub struct VolumePruneReport {
    pub removed: Vec<String>,
    pub reclaimed: u64,
}

/// A volume's disk usage (`system df -v`).
#[derive(Debug, Clone)]
pub struct VolumeUsage {
    pub name: String,
    pub links: u64,
    pub size: u64,
}

/// Docker's local volume name rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn check_name(name: &str) -> Result<(), VolumeError> {
    if valid_name(name) {
        return Ok(());
    }
    Err(VolumeError::invalid(format!(
        "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
    )))
}

/// Where volumes live.
#[derive(Debug, Clone)]
pub(crate) struct VolumePaths {
    /// `<root>/volumes`.
    root: PathBuf,
    /// `<runroot>/volumes`.
    run: PathBuf,
}

impl VolumePaths {
    pub(crate) fn dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }
    pub(crate) fn data(&self, name: &str) -> PathBuf {
        self.root.join(name).join("_data")
    }
    pub(crate) fn snapshots(&self, name: &str) -> PathBuf {
        self.root.join(name).join("snapshots")
    }
    pub(crate) fn users(&self, name: &str) -> PathBuf {
        self.run.join(name).join("users")
    }
    fn lock(&self, name: &str) -> PathBuf {
        self.run.join(format!("{name}.lock"))
    }
    /// A fresh private directory for work in progress, with a lock that
    /// says it is still in use (see [`VolumeService::sweep_staging`]).
    pub(crate) fn staging(&self) -> Result<Staging, VolumeError> {
        let base = self.root.join(".staging");
        std::fs::create_dir_all(&base).map_err(|e| VolumeError::io("creating", &base, e))?;
        let name = crate::containers::defaults::names::new_container_id();
        let path = base.join(&name[..16]);
        let lock_path = base.join(format!("{}.lock", &name[..16]));
        let lock =
            FileLock::exclusive(&lock_path).map_err(|e| VolumeError::invalid(e.to_string()))?;
        std::fs::create_dir(&path).map_err(|e| VolumeError::io("creating", &path, e))?;
        Ok(Staging {
            path,
            lock_path,
            _lock: lock,
        })
    }
    fn trash(&self) -> PathBuf {
        self.root.join(".trash")
    }
}

/// A staging directory, removed with its lock on drop.
pub(crate) struct Staging {
    pub(crate) path: PathBuf,
    lock_path: PathBuf,
    _lock: FileLock,
}

impl Drop for Staging {
    fn drop(&mut self) {
        if let Err(e) = tree::remove_all(&self.path) {
            tracing::warn!("removing {}: {e}", self.path.display());
        }
        let _ = std::fs::remove_file(&self.lock_path);
    }
}

/// Volume operations on one [`Engine`].
pub struct VolumeService<'e> {
    engine: &'e Engine,
}

impl<'e> VolumeService<'e> {
    pub(crate) fn new(engine: &'e Engine) -> Self {
        Self { engine }
    }

    pub(crate) fn paths(&self) -> VolumePaths {
        let cfg = self.engine.config();
        VolumePaths {
            root: cfg.root.join("volumes"),
            run: cfg.runroot.join("volumes"),
        }
    }

    /// Serialises mounting, copy-up, snapshots and removal of one volume
    /// across processes.
    pub(crate) fn lock(&self, name: &str) -> Result<FileLock, EngineError> {
        let path = self.paths().lock(name);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| EngineError::io(format!("creating {}", dir.display()), e))?;
        }
        FileLock::exclusive(&path)
    }

    /// `volume create`: a volume exists afterwards. Creating one that
    /// exists returns it unchanged (Docker's behaviour), unless it has
    /// another driver.
    pub fn create(&self, req: VolumeCreate) -> Result<Volume, EngineError> {
        let driver = if req.driver.is_empty() {
            LOCAL_DRIVER.to_string()
        } else {
            req.driver.clone()
        };
        if driver != LOCAL_DRIVER {
            return Err(VolumeError::NotFound(format!(
                "{driver}: error looking up volume plugin {driver}: plugin \"{driver}\" not found: berth has only the local driver"
            ))
            .into());
        }
        let mut labels = req.labels.clone();
        let name = match &req.name {
            Some(n) => {
                check_name(n)?;
                n.clone()
            }
            None => {
                labels.insert(ANONYMOUS_LABEL.to_string(), String::new());
                crate::containers::defaults::names::new_container_id()
            }
        };
        driver::validate(&req.options)?;
        let record = VolumeRecord {
            name: name.clone(),
            driver,
            labels,
            options: req.options,
            created: Utc::now(),
        };
        let record = {
            let mut db = self.engine.db();
            let tx = db.write()?;
            let record = self.insert_or_get(&tx, record)?;
            tx.commit()
                .map_err(|e| EngineError::db("committing a volume", e))?;
            record
        };
        self.ensure_dirs(&record.name)?;
        self.get(&record.name)
    }

    /// Inserts `record`, or returns the stored volume of that name.
    pub(crate) fn insert_or_get(
        &self,
        tx: &rusqlite::Transaction<'_>,
        record: VolumeRecord,
    ) -> Result<VolumeRecord, EngineError> {
        if store::insert(tx, &record)? {
            // A directory without a row is what a crashed import left:
            // never let a new volume start with its files.
            self.trash_orphan(&self.paths().dir(&record.name))?;
            store::event(
                tx,
                "create",
                &record.name,
                &BTreeMap::from([("driver".into(), record.driver.clone())]),
            );
            return Ok(record);
        }
        let existing = store::get(tx, &record.name)?
            .ok_or_else(|| VolumeError::NotFound(record.name.clone()))?;
        if existing.driver != record.driver {
            return Err(VolumeError::Conflict(format!(
                "create {}: a volume with the name {} already exists with driver {:?}",
                record.name, record.name, existing.driver
            ))
            .into());
        }
        Ok(existing)
    }

    /// The volume's directories (idempotent: concurrent creators of the
    /// same volume, and a start after a crash between row and mkdir).
    pub(crate) fn ensure_dirs(&self, name: &str) -> Result<(), EngineError> {
        use std::os::unix::fs::DirBuilderExt;
        let paths = self.paths();
        let dir = paths.dir(name);
        let data = paths.data(name);
        for (path, mode) in [(&dir, 0o701), (&data, 0o755)] {
            match std::fs::DirBuilder::new().mode(mode).create(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    std::fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o701)
                        .create(path)
                        .map_err(|e| VolumeError::io("creating the volume directory", path, e))?;
                }
                Err(e) => {
                    return Err(VolumeError::io("creating the volume directory", path, e).into())
                }
            }
        }
        Ok(())
    }

    pub fn get(&self, name: &str) -> Result<Volume, EngineError> {
        let db = self.engine.db();
        let record =
            store::get(db.conn(), name)?.ok_or_else(|| VolumeError::NotFound(name.to_string()))?;
        let links = store::users(db.conn(), name)?.len() as u64;
        Ok(Volume {
            mountpoint: self.paths().data(&record.name),
            record,
            links,
        })
    }

    /// `volume ls`: every volume passing `filters`, by name.
    pub fn list(&self, filters: &VolumeFilters) -> Result<Vec<Volume>, EngineError> {
        let (records, counts) = {
            let db = self.engine.db();
            (store::list(db.conn())?, store::user_counts(db.conn())?)
        };
        let paths = self.paths();
        Ok(records
            .into_iter()
            .map(|record| Volume {
                links: counts.get(&record.name).copied().unwrap_or(0),
                mountpoint: paths.data(&record.name),
                record,
            })
            .filter(|v| filters.matches(v))
            .collect())
    }

    /// Docker's `volume inspect` document.
    pub fn inspect(&self, name: &str) -> Result<Value, EngineError> {
        Ok(inspect_json(&self.get(name)?))
    }

    /// `volume rm`: refused while a container (running or not) references
    /// the volume; `force` only makes a missing volume not an error.
    pub fn remove(&self, name: &str, force: bool) -> Result<(), EngineError> {
        match self.remove_if_unused(name, |_| true) {
            Ok(_) => Ok(()),
            Err(EngineError::Volume(VolumeError::NotFound(_))) if force => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Removes `name` when no container references it and `keep` says
    /// so (checked in the same transaction); returns the bytes freed.
    fn remove_if_unused(
        &self,
        name: &str,
        remove: impl Fn(&VolumeRecord) -> bool,
    ) -> Result<Option<u64>, EngineError> {
        let _lock = self.lock(name)?;
        let paths = self.paths();
        let trash_base = paths.trash();
        std::fs::create_dir_all(&trash_base)
            .map_err(|e| VolumeError::io("creating", &trash_base, e))?;
        let trash = trash_base.join(&crate::containers::defaults::names::new_container_id()[..16]);
        let dir = paths.dir(name);
        let data = paths.data(name);
        let size;
        {
            let mut db = self.engine.db();
            let tx = db.write()?;
            let record =
                store::get(&tx, name)?.ok_or_else(|| VolumeError::NotFound(name.to_string()))?;
            let users = store::users(&tx, name)?;
            if !users.is_empty() {
                return Err(VolumeError::InUse {
                    name: name.to_string(),
                    containers: users,
                }
                .into());
            }
            if !remove(&record) {
                return Ok(None);
            }
            // Nobody uses it, so nothing should be mounted; a mount left
            // by a crash must not be deleted through.
            if driver::is_mount_point(&data) {
                driver::unmount(&data)?;
            }
            size = tree::size(&data);
            store::delete(&tx, name)?;
            store::event(
                &tx,
                "destroy",
                name,
                &BTreeMap::from([("driver".into(), record.driver.clone())]),
            );
            // Out of sight before the row goes: a volume created with the
            // same name right after never finds these files.
            let moved = match std::fs::rename(&dir, &trash) {
                Ok(()) => true,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
                Err(e) => {
                    return Err(VolumeError::io("moving the volume to the trash", &dir, e).into())
                }
            };
            if let Err(e) = tx.commit() {
                if moved {
                    let _ = std::fs::rename(&trash, &dir);
                }
                return Err(EngineError::db("committing a volume removal", e));
            }
        }
        if let Err(e) = tree::remove_all(&trash) {
            tracing::warn!("removing {}: {e}", trash.display());
        }
        let _ = std::fs::remove_dir_all(paths.run.join(name));
        Ok(Some(size))
    }

    /// `volume prune`: unused anonymous volumes, or with `all` every
    /// unused volume, that pass the `label`/`label!` filters.
    pub fn prune(&self, all: bool, filters: &[String]) -> Result<VolumePruneReport, EngineError> {
        let f = VolumeFilters::parse_prune(filters)?;
        let all = all || f.all;
        let mut report = VolumePruneReport::default();
        for v in self.list(&VolumeFilters::default())? {
            if v.links > 0 || !(all || v.record.is_anonymous()) || !f.matches(&v) {
                continue;
            }
            // Checked again under the transaction: a `run` may have taken
            // the volume since the listing.
            match self.remove_if_unused(&v.record.name, |_| true) {
                Ok(Some(size)) => {
                    report.removed.push(v.record.name.clone());
                    report.reclaimed += size;
                }
                Ok(None) => {}
                Err(EngineError::Volume(VolumeError::InUse { .. } | VolumeError::NotFound(_))) => {}
                Err(e) => return Err(e),
            }
        }
        self.sweep_staging();
        Ok(report)
    }

    /// Per-volume disk usage for `system df`.
    pub fn usage(&self) -> Result<Vec<VolumeUsage>, EngineError> {
        Ok(self
            .list(&VolumeFilters::default())?
            .into_iter()
            .map(|v| VolumeUsage {
                size: tree::size(&v.mountpoint),
                name: v.record.name,
                links: v.links,
            })
            .collect())
    }

    /// Removes what crashed operations left in `.staging` and `.trash`
    /// (staging dirs whose lock nobody holds).
    pub(crate) fn sweep_staging(&self) {
        use fs2::FileExt;
        let paths = self.paths();
        let base = paths.root.join(".staging");
        if let Ok(rd) = std::fs::read_dir(&base) {
            for ent in rd.flatten() {
                let p = ent.path();
                if p.extension().is_some_and(|e| e == "lock") {
                    continue;
                }
                let lock_path = p.with_extension("lock");
                let Ok(f) = std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&lock_path)
                else {
                    continue;
                };
                if f.try_lock_exclusive().is_ok() {
                    let _ = tree::remove_all(&p);
                    let _ = std::fs::remove_file(&lock_path);
                    let _ = FileExt::unlock(&f);
                }
            }
        }
        if let Ok(rd) = std::fs::read_dir(paths.trash()) {
            for ent in rd.flatten() {
                let _ = tree::remove_all(&ent.path());
            }
        }
    }
}

/// RFC 3339 in the local time zone, seconds, as Docker prints `CreatedAt`.
pub fn created_at(v: &VolumeRecord) -> String {
    v.created
        .with_timezone(&chrono::Local)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Docker's `volume inspect` shape (fields in Docker's order).
pub fn inspect_json(v: &Volume) -> Value {
    let map_or_null = |m: &BTreeMap<String, String>| {
        if m.is_empty() {
            Value::Null
        } else {
            json!(m)
        }
    };
    json!({
        "CreatedAt": created_at(&v.record),
        "Driver": v.record.driver,
        "Labels": map_or_null(&v.record.labels),
        "Mountpoint": v.mountpoint.display().to_string(),
        "Name": v.record.name,
        "Options": map_or_null(&v.record.options),
        "Scope": "local",
    })
}
