//! Volumes in containers: resolving a new container's mounts (Docker's
//! `registerMountPoints`: `--volumes-from`, `-v`, `--mount`, then the
//! image's and `-v /path`'s anonymous volumes), preparing them at each
//! start (mounting driver-backed volumes, copy-up from the image), and
//! letting go of them at stop and removal.

use std::collections::{BTreeMap, HashSet};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use chrono::Utc;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::Mode;
use serde_json::{json, Value};

use super::store::{self, MountKind, MountPoint, VolumeRecord};
use super::tree::{self, TreeCopier};
use super::{driver, fault, VolumeError, VolumeService, ANONYMOUS_LABEL, LOCAL_DRIVER};
use crate::containers::model::{BindOptions, HostConfig, MountSpec};
use crate::containers::spec::{self, UserMountKind};
use crate::containers::ContainerRecord;
use crate::error::EngineError;

/// In a volume's directory while a copy-up into its (mounted or shared)
/// data runs: a crash leaves it, and the next start knows the data is a
/// partial copy.
const COPYUP_MARKER: &str = "copyup.partial";
/// Beside `_data`: where a copy-up into an unshared volume is made
/// before it is renamed over the empty `_data`.
const COPYUP_STAGING: &str = "_copyup";

/// A volume a new container needs, with what to create it with.
struct WantedVolume {
    record: VolumeRecord,
}

fn plugin_missing(driver: &str) -> VolumeError {
    VolumeError::NotFound(format!(
        "{driver}: error looking up volume plugin {driver}: plugin \"{driver}\" not found: berth has only the local driver"
    ))
}

impl VolumeService<'_> {
    /// Resolves the mounts of a just-inserted container and records them,
    /// creating the volumes it names (a named one only if missing) in the
    /// same transaction, so concurrent `run`s of one name share one volume.
    pub(crate) fn register_container(&self, rec: &ContainerRecord) -> Result<(), EngineError> {
        let host = &rec.host_config;
        if !matches!(host.volume_driver.as_str(), "" | LOCAL_DRIVER) {
            return Err(plugin_missing(&host.volume_driver).into());
        }
        let user = spec::user_mounts(host)?;
        let mut points: BTreeMap<String, MountPoint> = BTreeMap::new();
        let mut wanted: Vec<WantedVolume> = Vec::new();

        for from in host.volumes_from.iter().flatten() {
            let (word, mode) = from.split_once(':').unwrap_or((from.as_str(), ""));
            let source = self.engine.containers().get(word)?;
            if source.id == rec.id {
                return Err(
                    VolumeError::invalid("a container cannot use --volumes-from itself").into(),
                );
            }
            let read_only = mode.split(',').any(|o| o == "ro");
            let inherited = store::mounts_of(self.engine.db().conn(), &source.id)?;
            for mut m in inherited.into_iter().filter(|m| m.kind != MountKind::Tmpfs) {
                m.rw = m.rw && !read_only;
                m.copy_data = false;
                m.mode = String::new();
                points.insert(m.destination.clone(), m);
            }
        }

        let mut tmpfs_dests = HashSet::new();
        for u in &user {
            let destination = u.destination.to_string_lossy().into_owned();
            let mode = u.mode.clone().unwrap_or_default();
            let point = match &u.kind {
                UserMountKind::Bind {
                    source,
                    read_only,
                    propagation,
                    recursive,
                } => MountPoint {
                    kind: MountKind::Bind,
                    source: source.to_string_lossy().into_owned(),
                    destination: destination.clone(),
                    mode,
                    rw: !read_only,
                    propagation: propagation.clone(),
                    non_recursive: !recursive,
                    create_source: u.mode.is_some(),
                    ..Default::default()
                },
                UserMountKind::Tmpfs { data } => {
                    tmpfs_dests.insert(destination.clone());
                    if u.mode.is_some()
                        || host
                            .tmpfs
                            .as_ref()
                            .is_some_and(|t| t.keys().any(|k| spec::clean_path(k) == u.destination))
                    {
                        // `--tmpfs` mounts are not mount points in Docker.
                        continue;
                    }
                    MountPoint {
                        kind: MountKind::Tmpfs,
                        destination: destination.clone(),
                        rw: !data.split(',').any(|o| o == "ro"),
                        ..Default::default()
                    }
                }
                UserMountKind::Volume {
                    name,
                    read_only,
                    no_copy,
                    subpath,
                    driver,
                    options,
                    labels,
                } => {
                    if !matches!(driver.as_str(), "" | LOCAL_DRIVER) {
                        return Err(plugin_missing(driver).into());
                    }
                    driver::validate(options)?;
                    let mut labels = labels.clone();
                    let volume_name = match name {
                        Some(n) => n.clone(),
                        None => {
                            labels.insert(ANONYMOUS_LABEL.to_string(), String::new());
                            crate::containers::defaults::names::new_container_id()
                        }
                    };
                    wanted.push(WantedVolume {
                        record: VolumeRecord {
                            name: volume_name.clone(),
                            driver: LOCAL_DRIVER.into(),
                            labels,
                            options: options.clone(),
                            created: Utc::now(),
                        },
                    });
                    MountPoint {
                        kind: MountKind::Volume,
                        name: volume_name,
                        destination: destination.clone(),
                        // Docker's default mode text for local volumes.
                        mode: if mode.is_empty() { "z".into() } else { mode },
                        rw: !read_only,
                        named: name.is_some(),
                        copy_data: !no_copy,
                        subpath: subpath.clone(),
                        ..Default::default()
                    }
                }
            };
            points.insert(destination, point);
        }

        // The image's VOLUMEs and `-v /path`: anonymous volumes where
        // nothing else is mounted.
        for path in rec.config.volumes.iter().flat_map(|v| v.keys()) {
            if !path.starts_with('/') {
                return Err(VolumeError::invalid(format!(
                    "invalid volume specification: '{path}': invalid mount config for type \"volume\": invalid mount path: '{path}' mount path must be absolute"
                ))
                .into());
            }
            let destination = spec::clean_path(path).to_string_lossy().into_owned();
            if destination == "/" {
                return Err(VolumeError::invalid(format!(
                    "invalid volume specification: '{path}': invalid specification: destination can't be '/'"
                ))
                .into());
            }
            if points.contains_key(&destination) || tmpfs_dests.contains(&destination) {
                continue;
            }
            let name = crate::containers::defaults::names::new_container_id();
            wanted.push(WantedVolume {
                record: VolumeRecord {
                    name: name.clone(),
                    driver: LOCAL_DRIVER.into(),
                    labels: BTreeMap::from([(ANONYMOUS_LABEL.to_string(), String::new())]),
                    options: BTreeMap::new(),
                    created: Utc::now(),
                },
            });
            points.insert(
                destination.clone(),
                MountPoint {
                    kind: MountKind::Volume,
                    name,
                    destination,
                    rw: true,
                    copy_data: true,
                    ..Default::default()
                },
            );
        }

        // Nothing to record: no write transaction (every container without
        // mounts would take the database's write lock for nothing).
        if points.is_empty() {
            return Ok(());
        }
        {
            let mut db = self.engine.db();
            let tx = db.write()?;
            for w in wanted {
                if points
                    .values()
                    .any(|p| p.kind == MountKind::Volume && p.name == w.record.name)
                {
                    self.insert_or_get(&tx, w.record)?;
                }
            }
            for p in points.values() {
                if p.kind == MountKind::Volume && store::get(&tx, &p.name)?.is_none() {
                    // A --volumes-from source's volume removed meanwhile.
                    return Err(VolumeError::NotFound(p.name.clone()).into());
                }
                store::insert_mount(&tx, &rec.id, p)?;
            }
            tx.commit()
                .map_err(|e| EngineError::db("committing a container's mounts", e))?;
        }
        for p in points.values().filter(|p| p.kind == MountKind::Volume) {
            self.ensure_dirs(&p.name)?;
        }
        Ok(())
    }

    /// A container's mount points.
    pub(crate) fn mounts_of(&self, container_id: &str) -> Result<Vec<MountPoint>, EngineError> {
        store::mounts_of(self.engine.db().conn(), container_id)
    }

    /// Makes a starting container's volumes ready (mounted, filled from
    /// the image the first time) and returns the host config the spec is
    /// built from: every bind and volume as a bind of a host directory.
    /// `rootfs` is the container's mounted root.
    pub(crate) fn prepare_start(
        &self,
        rec: &ContainerRecord,
        rootfs: &Path,
    ) -> Result<HostConfig, EngineError> {
        let mounts = self.mounts_of(&rec.id)?;
        if mounts.is_empty() {
            // No mounts, or a container made before volumes existed.
            return Ok(rec.host_config.clone());
        }
        let mut specs = Vec::new();
        for m in &mounts {
            match m.kind {
                MountKind::Bind => specs.push(MountSpec {
                    kind: "bind".into(),
                    source: m.source.clone(),
                    target: m.destination.clone(),
                    read_only: !m.rw,
                    bind_options: Some(BindOptions {
                        propagation: m.propagation.clone(),
                        non_recursive: m.non_recursive,
                        create_mountpoint: m.create_source,
                    }),
                    ..Default::default()
                }),
                MountKind::Volume => {
                    let source = self.prepare_volume(rec, m, rootfs)?;
                    specs.push(MountSpec {
                        kind: "bind".into(),
                        source: source.to_string_lossy().into_owned(),
                        target: m.destination.clone(),
                        read_only: !m.rw,
                        bind_options: Some(BindOptions {
                            propagation: "rprivate".into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    });
                }
                // The host config's own tmpfs entries stay as they are.
                MountKind::Tmpfs => {}
            }
        }
        let mut host = rec.host_config.clone();
        specs.extend(
            host.mounts
                .iter()
                .flatten()
                .filter(|m| m.kind == "tmpfs")
                .cloned(),
        );
        host.binds = None;
        host.mounts = Some(specs);
        Ok(host)
    }

    /// One volume of a starting container; returns the host directory to bind.
    fn prepare_volume(
        &self,
        rec: &ContainerRecord,
        m: &MountPoint,
        rootfs: &Path,
    ) -> Result<PathBuf, EngineError> {
        let _lock = self.lock(&m.name)?;
        let volume = store::get(self.engine.db().conn(), &m.name)?
            .ok_or_else(|| VolumeError::NotFound(m.name.clone()))?;
        self.ensure_dirs(&m.name)?;
        let paths = self.paths();
        let data = paths.data(&m.name);
        let users = paths.users(&m.name);
        std::fs::create_dir_all(&users).map_err(|e| VolumeError::io("creating", &users, e))?;
        let others = !self.live_users(&m.name, Some(&rec.id)).is_empty();
        let me = users.join(&rec.id);
        std::fs::write(&me, b"").map_err(|e| VolumeError::io("writing", &me, e))?;
        if driver::is_mounted_kind(&volume.options) && !driver::is_mount_point(&data) {
            driver::mount(&m.name, &volume.options, &data)?;
            self.volume_event("mount", &m.name, rec, &m.destination);
        }
        // What a copy-up into a staging dir left when it was killed (the
        // volume's lock is held: nobody is copying).
        let staging = paths.dir(&m.name).join(COPYUP_STAGING);
        tree::remove_all(&staging).map_err(|e| VolumeError::io("removing", &staging, e))?;
        if m.copy_data {
            self.copy_up(&m.name, &volume, rootfs, &m.destination, others)?;
            let mut done = m.clone();
            done.copy_data = false;
            let mut db = self.engine.db();
            let tx = db.write()?;
            store::update_mount(&tx, &rec.id, &done)?;
            tx.commit()
                .map_err(|e| EngineError::db("committing a copy-up", e))?;
        }
        if m.subpath.is_empty() {
            return Ok(data);
        }
        let wanted = data.join(&m.subpath);
        let resolved = std::fs::canonicalize(&wanted).map_err(|e| {
            VolumeError::invalid(format!(
                "cannot access path {}: {e}: create it in the volume first (volume-subpath)",
                wanted.display()
            ))
        })?;
        let base =
            std::fs::canonicalize(&data).map_err(|e| VolumeError::io("resolving", &data, e))?;
        if !resolved.starts_with(&base) || !resolved.is_dir() {
            return Err(VolumeError::invalid(format!(
                "volume-subpath {:?} of volume {} is not a directory inside the volume",
                m.subpath, m.name
            ))
            .into());
        }
        Ok(resolved)
    }

    /// Fills an empty volume from the image's directory at `destination`
    /// (contents, and the directory's own owner and mode), as Docker does
    /// for a volume's first use. A plain volume nobody else uses gets the
    /// copy in a staging directory renamed over its empty `_data`, so a
    /// crash leaves it empty and the copy is simply made again. Otherwise
    /// (a mounted filesystem, or other containers holding `_data`) the
    /// copy fills `_data` in place under a marker, never replacing a file
    /// and renaming each file into place whole; a copy-up that finds the
    /// marker of a killed one resumes it the same way, so neither a
    /// partial copy nor what users wrote meanwhile is ever deleted.
    fn copy_up(
        &self,
        name: &str,
        volume: &VolumeRecord,
        rootfs: &Path,
        destination: &str,
        others: bool,
    ) -> Result<(), EngineError> {
        let paths = self.paths();
        let data = paths.data(name);
        let marker = paths.dir(name).join(COPYUP_MARKER);
        let resume = marker.exists();
        let empty = tree::is_empty(&data).map_err(|e| VolumeError::io("reading", &data, e))?;
        if !empty && !resume {
            return Ok(());
        }
        let opath = match berth_rootfs::open_in_root(rootfs, Path::new(destination), None) {
            Ok(fd) => fd,
            Err(e) if e.errno() == Some(nix::errno::Errno::ENOENT) => return Ok(()),
            Err(e) => {
                return Err(VolumeError::invalid(format!("copy-up of {destination}: {e}")).into())
            }
        };
        let src = match openat(
            opath.as_fd(),
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            // Not a directory in the image: nothing to copy.
            Err(nix::errno::Errno::ENOTDIR) => return Ok(()),
            Err(e) => {
                return Err(VolumeError::sys("opening the image directory", destination, e).into())
            }
        };
        let in_place = resume || others || driver::is_mounted_kind(&volume.options);
        if in_place {
            if resume {
                tracing::info!("volume {name}: resuming a copy-up that was interrupted");
            }
            std::fs::write(&marker, b"").map_err(|e| VolumeError::io("writing", &marker, e))?;
            TreeCopier::fill_dir(src.as_fd(), &data, fault::COPY_UP).map_err(|e| {
                VolumeError::io("copying the image's files into the volume", &data, e)
            })?;
            std::fs::remove_file(&marker).map_err(|e| VolumeError::io("removing", &marker, e))?;
            return Ok(());
        }
        let staging = paths.dir(name).join(COPYUP_STAGING);
        std::fs::create_dir(&staging).map_err(|e| VolumeError::io("creating", &staging, e))?;
        let result = TreeCopier::copy_dir(src.as_fd(), &staging, fault::COPY_UP)
            .map_err(|e| VolumeError::io("copying the image's files into the volume", &staging, e))
            .and_then(|()| {
                // `_data` is empty: rename replaces it in one step.
                std::fs::rename(&staging, &data)
                    .map_err(|e| VolumeError::io("renaming the copy into place", &data, e))
            });
        if result.is_err() {
            let _ = tree::remove_all(&staging);
        }
        Ok(result?)
    }

    /// The containers that hold volume `name` (entries in its `users`
    /// directory, written at start, removed at stop), leaving out
    /// `except`. Entries a crash left behind — of a container removed
    /// since, or neither running nor being started (its lock is free) —
    /// are removed, so they make no volume look in use forever. The
    /// volume's lock must be held.
    pub(crate) fn live_users(&self, name: &str, except: Option<&str>) -> Vec<String> {
        use fs2::FileExt;
        let users = self.paths().users(name);
        let Ok(rd) = std::fs::read_dir(&users) else {
            return Vec::new();
        };
        let containers = self.engine.containers();
        let mut live = Vec::new();
        for ent in rd.flatten() {
            let id = ent.file_name().to_string_lossy().into_owned();
            if except == Some(id.as_str()) {
                continue;
            }
            let holds = match containers.stored(&id) {
                Ok(None) => false,
                Ok(Some(c)) if c.status.is_active() => true,
                Ok(Some(_)) => {
                    // Not running: held only while a start (or stop)
                    // holds the container's lock.
                    let lock = containers.paths(&id).lock_file();
                    match std::fs::File::open(&lock) {
                        Ok(f) => match f.try_lock_exclusive() {
                            Ok(()) => {
                                let _ = FileExt::unlock(&f);
                                false
                            }
                            Err(_) => true,
                        },
                        Err(_) => false,
                    }
                }
                // Unsure: count it.
                Err(_) => true,
            };
            if holds {
                live.push(id);
            } else {
                tracing::debug!("volume {name}: dropping the stale user {id}");
                let _ = std::fs::remove_file(ent.path());
            }
        }
        live
    }

    /// A stopped (or failed to start) container lets go of its volumes:
    /// the last user of a driver-backed volume unmounts it.
    pub(crate) fn release_stopped(&self, rec: &ContainerRecord) {
        let Ok(mounts) = self.mounts_of(&rec.id) else {
            return;
        };
        let paths = self.paths();
        for m in mounts.iter().filter(|m| m.kind == MountKind::Volume) {
            let Ok(_lock) = self.lock(&m.name) else {
                continue;
            };
            let users = paths.users(&m.name);
            let _ = std::fs::remove_file(users.join(&rec.id));
            let in_use = std::fs::read_dir(&users).is_ok_and(|mut rd| rd.next().is_some());
            let data = paths.data(&m.name);
            if !in_use && driver::is_mount_point(&data) {
                match driver::unmount(&data) {
                    Ok(()) => self.volume_event("unmount", &m.name, rec, &m.destination),
                    Err(e) => tracing::warn!("volume {}: {e}", m.name),
                }
            }
        }
    }

    /// After a container's removal: with `remove_anonymous` (`rm -v`,
    /// `--rm`), removes the anonymous volumes it had that nobody else uses.
    /// Named volumes are never removed here.
    pub(crate) fn release_removed(&self, mounts: &[MountPoint], remove_anonymous: bool) {
        // A container removed after a crash (of its start, or of berth)
        // may still be listed as a user and hold a driver mount.
        let paths = self.paths();
        for m in mounts.iter().filter(|m| m.kind == MountKind::Volume) {
            let Ok(_lock) = self.lock(&m.name) else {
                continue;
            };
            let data = paths.data(&m.name);
            if self.live_users(&m.name, None).is_empty() && driver::is_mount_point(&data) {
                if let Err(e) = driver::unmount(&data) {
                    tracing::warn!("volume {}: {e}", m.name);
                }
            }
        }
        if !remove_anonymous {
            return;
        }
        for m in mounts
            .iter()
            .filter(|m| m.kind == MountKind::Volume && !m.named)
        {
            match self.remove_if_unused(&m.name, |_| true) {
                Ok(_) => {}
                Err(EngineError::Volume(VolumeError::InUse { .. } | VolumeError::NotFound(_))) => {}
                Err(e) => tracing::warn!("removing volume {}: {e}", m.name),
            }
        }
    }

    fn volume_event(&self, action: &str, name: &str, rec: &ContainerRecord, destination: &str) {
        let mut db = self.engine.db();
        let tx = db.write();
        if let Ok(tx) = tx {
            let attrs = BTreeMap::from([
                ("container".to_string(), rec.id.clone()),
                ("destination".to_string(), destination.to_string()),
                ("driver".to_string(), LOCAL_DRIVER.to_string()),
            ]);
            store::event(&tx, action, name, &attrs);
            let _ = tx.commit();
        }
    }

    /// A container's `Mounts` as Docker's inspect shows them.
    pub fn mounts_json(&self, container_id: &str) -> Result<Value, EngineError> {
        let paths = self.paths();
        let out: Vec<Value> = self
            .mounts_of(container_id)?
            .iter()
            .map(|m| match m.kind {
                MountKind::Bind => json!({
                    "Type": "bind",
                    "Source": m.source,
                    "Destination": m.destination,
                    "Mode": m.mode,
                    "RW": m.rw,
                    "Propagation": m.propagation,
                }),
                MountKind::Volume => json!({
                    "Type": "volume",
                    "Name": m.name,
                    "Source": paths.data(&m.name).display().to_string(),
                    "Destination": m.destination,
                    "Driver": LOCAL_DRIVER,
                    "Mode": m.mode,
                    "RW": m.rw,
                    "Propagation": "",
                }),
                MountKind::Tmpfs => json!({
                    "Type": "tmpfs",
                    "Source": "",
                    "Destination": m.destination,
                    "Mode": "",
                    "RW": m.rw,
                    "Propagation": "",
                }),
            })
            .collect();
        Ok(Value::Array(out))
    }

    /// Ids of containers mounting a volume named `word` or anything at
    /// the destination `word` (`ps --filter volume=`).
    pub fn containers_using(&self, word: &str) -> Result<HashSet<String>, EngineError> {
        Ok(store::all_mounts(self.engine.db().conn())?
            .into_iter()
            .filter(|(_, m)| {
                (m.kind == MountKind::Volume && m.name == word)
                    || m.destination == word
                    || (m.kind == MountKind::Bind && m.source == word)
            })
            .map(|(id, _)| id)
            .collect())
    }
}
