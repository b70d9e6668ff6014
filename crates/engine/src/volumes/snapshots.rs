//! Snapshots of a volume (LXD's custom volume snapshots): full copies of
//! its files in `<root>/volumes/<name>/snapshots/<snap>/data`, with the
//! time they were taken in `info.json`.
//!
//! A snapshot is copied into a `.tmp-*` directory and renamed into place;
//! a restore copies into `_restore` and swaps it with `_data` in one
//! `renameat2(RENAME_EXCHANGE)`. A crash leaves `.tmp-*`/`_restore`
//! directories that the next snapshot operation on the volume removes,
//! and the volume as it was before or after, never in between.

use std::os::fd::AsFd;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::store::{self, VolumeRecord};
use super::tree::{self, TreeCopier};
use super::{archive, driver, fault, VolumeError, VolumeService};
use crate::error::EngineError;

/// One snapshot of a volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    pub name: String,
    pub created: DateTime<Utc>,
    /// Bytes of its files (filled by [`VolumeService::snapshot_list`]).
    #[serde(skip)]
    pub size: u64,
}

const RESTORE_STAGING: &str = "_restore";

impl VolumeService<'_> {
    fn snapshot_volume(&self, name: &str) -> Result<VolumeRecord, EngineError> {
        let v = store::get(self.engine.db().conn(), name)?
            .ok_or_else(|| VolumeError::NotFound(name.to_string()))?;
        if driver::is_mounted_kind(&v.options) {
            return Err(VolumeError::invalid(format!(
                "volume {name} keeps its files on {} (type {}): snapshots are for volumes stored by berth; export it instead",
                v.options.get("device").cloned().unwrap_or_default(),
                v.options.get("type").cloned().unwrap_or_default()
            ))
            .into());
        }
        Ok(v)
    }

    /// Removes what crashed snapshot operations left. The volume's lock
    /// must be held.
    fn sweep_snapshots(&self, name: &str) {
        let paths = self.paths();
        let dir = paths.snapshots(name);
        if let Ok(rd) = std::fs::read_dir(&dir) {
            for ent in rd.flatten() {
                if ent.file_name().to_string_lossy().starts_with('.') {
                    let _ = tree::remove_all(&ent.path());
                }
            }
        }
        let _ = tree::remove_all(&paths.dir(name).join(RESTORE_STAGING));
    }

    /// `volume snapshot create NAME SNAP`.
    pub fn snapshot_create(&self, name: &str, snap: &str) -> Result<SnapshotInfo, EngineError> {
        check_snapshot_name(snap)?;
        self.snapshot_volume(name)?;
        let _lock = self.lock(name)?;
        self.sweep_snapshots(name);
        let paths = self.paths();
        self.ensure_dirs(name)?;
        let dir = paths.snapshots(name);
        let target = dir.join(snap);
        if target.exists() {
            return Err(VolumeError::Conflict(format!(
                "snapshot {snap} of volume {name} already exists: pick another name or remove it first"
            ))
            .into());
        }
        std::fs::create_dir_all(&dir).map_err(|e| VolumeError::io("creating", &dir, e))?;
        let staging = dir.join(format!(
            ".tmp-{}",
            &crate::containers::defaults::names::new_container_id()[..16]
        ));
        let result = (|| -> Result<SnapshotInfo, EngineError> {
            let data_copy = staging.join("data");
            std::fs::create_dir_all(&data_copy)
                .map_err(|e| VolumeError::io("creating", &data_copy, e))?;
            let data = paths.data(name);
            let src = tree::open_dir(&data).map_err(|e| VolumeError::io("opening", &data, e))?;
            TreeCopier::copy_dir(src.as_fd(), &data_copy, fault::SNAPSHOT_CREATE)
                .map_err(|e| VolumeError::io("copying the volume's files", &data, e))?;
            let info = SnapshotInfo {
                name: snap.to_string(),
                created: Utc::now(),
                size: 0,
            };
            let json = serde_json::to_vec(&info)
                .map_err(|e| EngineError::Corrupt(format!("encoding a snapshot: {e}")))?;
            berth_monitor::files::write_atomic(&staging.join("info.json"), &json)
                .map_err(|e| VolumeError::io("writing", staging.join("info.json"), e))?;
            std::fs::rename(&staging, &target)
                .map_err(|e| VolumeError::io("renaming the snapshot into place", &target, e))?;
            Ok(info)
        })();
        if result.is_err() {
            let _ = tree::remove_all(&staging);
        }
        result
    }

    /// `volume snapshot ls NAME`: oldest first.
    pub fn snapshot_list(&self, name: &str) -> Result<Vec<SnapshotInfo>, EngineError> {
        store::get(self.engine.db().conn(), name)?
            .ok_or_else(|| VolumeError::NotFound(name.to_string()))?;
        let dir = self.paths().snapshots(name);
        let mut out = Vec::new();
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(VolumeError::io("reading", &dir, e).into()),
        };
        for ent in rd.flatten() {
            if ent.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let info_path = ent.path().join("info.json");
            let Ok(bytes) = std::fs::read(&info_path) else {
                continue;
            };
            let mut info: SnapshotInfo = serde_json::from_slice(&bytes)
                .map_err(|e| EngineError::Corrupt(format!("{}: {e}", info_path.display())))?;
            info.size = tree::size(&ent.path().join("data"));
            out.push(info);
        }
        out.sort_by(|a, b| a.created.cmp(&b.created).then(a.name.cmp(&b.name)));
        Ok(out)
    }

    /// `volume snapshot restore NAME SNAP`: the volume's files become the
    /// snapshot's. Refused while a running container uses the volume.
    pub fn snapshot_restore(&self, name: &str, snap: &str) -> Result<(), EngineError> {
        check_snapshot_name(snap)?;
        self.snapshot_volume(name)?;
        let _lock = self.lock(name)?;
        self.sweep_snapshots(name);
        if self.running_users(name) {
            return Err(VolumeError::Conflict(format!(
                "volume {name} is in use by a running container: stop it before restoring snapshot {snap}"
            ))
            .into());
        }
        let paths = self.paths();
        let source = paths.snapshots(name).join(snap).join("data");
        if !source.is_dir() {
            return Err(snapshot_missing(name, snap));
        }
        self.ensure_dirs(name)?;
        let staging = paths.dir(name).join(RESTORE_STAGING);
        std::fs::create_dir(&staging).map_err(|e| VolumeError::io("creating", &staging, e))?;
        let result = (|| -> Result<(), EngineError> {
            let src =
                tree::open_dir(&source).map_err(|e| VolumeError::io("opening", &source, e))?;
            TreeCopier::copy_dir(src.as_fd(), &staging, fault::SNAPSHOT_RESTORE)
                .map_err(|e| VolumeError::io("copying the snapshot's files", &source, e))?;
            archive::exchange(&staging, &paths.data(name))
        })();
        if result.is_err() {
            let _ = tree::remove_all(&staging);
        }
        result
    }

    /// `volume snapshot rm NAME SNAP`.
    pub fn snapshot_remove(&self, name: &str, snap: &str) -> Result<(), EngineError> {
        check_snapshot_name(snap)?;
        store::get(self.engine.db().conn(), name)?
            .ok_or_else(|| VolumeError::NotFound(name.to_string()))?;
        let _lock = self.lock(name)?;
        let dir = self.paths().snapshots(name);
        let target = dir.join(snap);
        if !target.is_dir() {
            return Err(snapshot_missing(name, snap));
        }
        let doomed = dir.join(format!(
            ".tmp-{}",
            &crate::containers::defaults::names::new_container_id()[..16]
        ));
        std::fs::rename(&target, &doomed).map_err(|e| VolumeError::io("removing", &target, e))?;
        tree::remove_all(&doomed).map_err(|e| VolumeError::io("removing", &doomed, e))?;
        Ok(())
    }
}

fn snapshot_missing(name: &str, snap: &str) -> EngineError {
    VolumeError::NotFound(format!("{name}/{snap}: no such snapshot of volume {name}")).into()
}

fn check_snapshot_name(snap: &str) -> Result<(), VolumeError> {
    if super::valid_name(snap) {
        return Ok(());
    }
    Err(VolumeError::invalid(format!(
        "invalid snapshot name {snap:?}: use letters, digits, '_', '.' and '-', starting with a letter or digit"
    )))
}
