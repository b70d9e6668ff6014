//! Volume rows and container mount points in SQLite.
//!
//! A volume is in use while a row of `container_mounts` names it; removal
//! checks that in the same write transaction that deletes the row, so a
//! `run` registering a mount and a `volume rm` never interleave.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};

use crate::error::EngineError;

/// One volume as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeRecord {
    pub name: String,
    /// Always `local` (the only driver berth has).
    pub driver: String,
    pub labels: BTreeMap<String, String>,
    /// The local driver's `type`, `device`, `o`.
    pub options: BTreeMap<String, String>,
    pub created: DateTime<Utc>,
}

impl VolumeRecord {
    /// Docker's anonymous-volume label is set.
    pub fn is_anonymous(&self) -> bool {
        self.labels.contains_key(super::ANONYMOUS_LABEL)
    }
}

/// What a mount point is (Docker's `mount.Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    Bind,
    Volume,
    Tmpfs,
}

impl MountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bind => "bind",
            Self::Volume => "volume",
            Self::Tmpfs => "tmpfs",
        }
    }
}

/// One of a container's mounts, as resolved at create (Docker's
/// `MountPoint`), with what berth needs to set it up at each start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MountPoint {
    pub kind: MountKind,
    /// The volume's name (volumes only).
    pub name: String,
    /// The host path (binds only; a volume's comes from its name).
    pub source: String,
    pub destination: String,
    /// Docker's `Mode` text (`z`, `ro`, `rw,rshared` …).
    pub mode: String,
    pub rw: bool,
    /// `rprivate` etc. for binds, empty for volumes.
    pub propagation: String,
    /// The user named the volume (`-v NAME:/p`, `--mount source=NAME`):
    /// `rm -v` keeps it, as Docker does.
    pub named: bool,
    /// Fill an empty volume from the image at the next start.
    pub copy_data: bool,
    /// `volume-subpath`: a directory inside the volume.
    pub subpath: String,
    /// `bind-nonrecursive`.
    pub non_recursive: bool,
    /// A `-v` bind whose missing source is created (`--mount` refuses it).
    pub create_source: bool,
}

impl Default for MountPoint {
    fn default() -> Self {
        Self {
            kind: MountKind::Bind,
            name: String::new(),
            source: String::new(),
            destination: String::new(),
            mode: String::new(),
            rw: true,
            propagation: String::new(),
            named: false,
            copy_data: false,
            subpath: String::new(),
            non_recursive: false,
            create_source: false,
        }
    }
}

fn q(what: &'static str) -> impl Fn(rusqlite::Error) -> EngineError {
    move |e| EngineError::db(what, e)
}

fn to_json<T: Serialize>(v: &T) -> Result<String, EngineError> {
    serde_json::to_string(v)
        .map_err(|e| EngineError::Corrupt(format!("encoding volume state: {e}")))
}

const COLUMNS: &str = "name, driver, labels, options, created";

fn decode(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, String, String, String)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn build(raw: (String, String, String, String, String)) -> Result<VolumeRecord, EngineError> {
    let (name, driver, labels, options, created) = raw;
    let bad = |what: &str, e: &dyn std::fmt::Display| {
        EngineError::Corrupt(format!("volume {name}: {what}: {e}"))
    };
    Ok(VolumeRecord {
        labels: serde_json::from_str(&labels).map_err(|e| bad("labels", &e))?,
        options: serde_json::from_str(&options).map_err(|e| bad("options", &e))?,
        created: DateTime::parse_from_rfc3339(&created)
            .map_err(|e| bad("created", &e))?
            .with_timezone(&Utc),
        name,
        driver,
    })
}

/// Stores `v` unless a volume of that name exists; true when it was added.
pub(crate) fn insert(tx: &Transaction<'_>, v: &VolumeRecord) -> Result<bool, EngineError> {
    let n = tx
        .execute(
            &format!("INSERT OR IGNORE INTO volumes ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)"),
            params![
                v.name,
                v.driver,
                to_json(&v.labels)?,
                to_json(&v.options)?,
                v.created
                    .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            ],
        )
        .map_err(q("storing a volume"))?;
    Ok(n == 1)
}

pub(crate) fn get(conn: &Connection, name: &str) -> Result<Option<VolumeRecord>, EngineError> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM volumes WHERE name = ?1"),
        params![name],
        decode,
    )
    .optional()
    .map_err(q("reading a volume"))?
    .map(build)
    .transpose()
}

/// Every volume, by name.
pub(crate) fn list(conn: &Connection) -> Result<Vec<VolumeRecord>, EngineError> {
    let mut stmt = conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM volumes ORDER BY name"))
        .map_err(q("reading volumes"))?;
    let rows = stmt.query_map([], decode).map_err(q("reading volumes"))?;
    let mut out = Vec::new();
    for r in rows {
        out.push(build(r.map_err(q("reading volumes"))?)?);
    }
    Ok(out)
}

pub(crate) fn delete(tx: &Transaction<'_>, name: &str) -> Result<(), EngineError> {
    tx.execute("DELETE FROM volumes WHERE name = ?1", params![name])
        .map_err(q("removing a volume"))?;
    Ok(())
}

/// The containers whose mounts reference `name`, oldest first.
pub(crate) fn users(conn: &Connection, name: &str) -> Result<Vec<String>, EngineError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT DISTINCT m.container_id FROM container_mounts m JOIN containers c ON c.id = m.container_id
             WHERE m.volume = ?1 ORDER BY c.created, c.id",
        )
        .map_err(q("reading volume users"))?;
    let rows = stmt
        .query_map(params![name], |r| r.get::<_, String>(0))
        .map_err(q("reading volume users"))?;
    rows.collect::<Result<_, _>>()
        .map_err(q("reading volume users"))
}

/// How many containers reference each volume (absent: none).
pub(crate) fn user_counts(conn: &Connection) -> Result<HashMap<String, u64>, EngineError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT volume, COUNT(DISTINCT container_id) FROM container_mounts WHERE volume IS NOT NULL GROUP BY volume",
        )
        .map_err(q("counting volume users"))?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .map_err(q("counting volume users"))?;
    let mut out = HashMap::new();
    for r in rows {
        let (name, n) = r.map_err(q("counting volume users"))?;
        out.insert(name, u64::try_from(n).unwrap_or(0));
    }
    Ok(out)
}

pub(crate) fn insert_mount(
    tx: &Transaction<'_>,
    container_id: &str,
    m: &MountPoint,
) -> Result<(), EngineError> {
    let volume = (m.kind == MountKind::Volume).then_some(m.name.as_str());
    tx.execute(
        "INSERT INTO container_mounts (container_id, destination, volume, mount) VALUES (?1, ?2, ?3, ?4)",
        params![container_id, m.destination, volume, to_json(m)?],
    )
    .map_err(q("storing a container mount"))?;
    Ok(())
}

/// A container's mount points, by destination.
pub(crate) fn mounts_of(
    conn: &Connection,
    container_id: &str,
) -> Result<Vec<MountPoint>, EngineError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT mount FROM container_mounts WHERE container_id = ?1 ORDER BY destination",
        )
        .map_err(q("reading container mounts"))?;
    let rows = stmt
        .query_map(params![container_id], |r| r.get::<_, String>(0))
        .map_err(q("reading container mounts"))?;
    let mut out = Vec::new();
    for r in rows {
        let json = r.map_err(q("reading container mounts"))?;
        out.push(serde_json::from_str(&json).map_err(|e| {
            EngineError::Corrupt(format!("mount of container {container_id}: {e}"))
        })?);
    }
    Ok(out)
}

/// Every container's mount points (for `ps --filter volume=`).
pub(crate) fn all_mounts(conn: &Connection) -> Result<Vec<(String, MountPoint)>, EngineError> {
    let mut stmt = conn
        .prepare_cached("SELECT container_id, mount FROM container_mounts")
        .map_err(q("reading container mounts"))?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(q("reading container mounts"))?;
    let mut out = Vec::new();
    for r in rows {
        let (id, json) = r.map_err(q("reading container mounts"))?;
        let m = serde_json::from_str(&json)
            .map_err(|e| EngineError::Corrupt(format!("mount of container {id}: {e}")))?;
        out.push((id, m));
    }
    Ok(out)
}

pub(crate) fn update_mount(
    tx: &Transaction<'_>,
    container_id: &str,
    m: &MountPoint,
) -> Result<(), EngineError> {
    tx.execute(
        "UPDATE container_mounts SET mount = ?3 WHERE container_id = ?1 AND destination = ?2",
        params![container_id, m.destination, to_json(m)?],
    )
    .map_err(q("updating a container mount"))?;
    Ok(())
}

/// Records a `volume` event (`create`, `destroy`, `mount`, `unmount`).
pub(crate) fn event(
    tx: &Transaction<'_>,
    action: &str,
    name: &str,
    attrs: &BTreeMap<String, String>,
) {
    let now = Utc::now().timestamp_nanos_opt().unwrap_or(0);
    if let Err(e) = tx.execute(
        "INSERT INTO events (time_nano, type, action, actor_id, attributes) VALUES (?1, 'volume', ?2, ?3, ?4)",
        params![now, action, name, serde_json::to_string(attrs).unwrap_or_default()],
    ) {
        tracing::debug!("recording volume event {action} {name}: {e}");
    }
}
