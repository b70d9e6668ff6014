//! Container rows in SQLite: insert, load, update the run state, delete,
//! and finding a container by name, id or id prefix.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};
use serde::{Deserialize, Serialize};

use super::model::{ContainerConfig, HostConfig};
use crate::error::EngineError;

/// Docker's container states (`State.Status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "created" => Status::Created,
            "running" => Status::Running,
            "paused" => Status::Paused,
            "restarting" => Status::Restarting,
            "removing" => Status::Removing,
            "exited" => Status::Exited,
            "dead" => Status::Dead,
            _ => return None,
        })
    }

    /// A monitor (and maybe a process) exists for the container.
    pub fn is_active(self) -> bool {
        matches!(self, Status::Running | Status::Paused | Status::Restarting)
    }
}

/// What changes while a container runs, stored as JSON beside its config.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunState {
    /// The container's init process on the host; 0 when not running.
    pub pid: i32,
    /// The monitor supervising it; 0 when none.
    pub monitor_pid: i32,
    pub exit_code: i32,
    pub oom_killed: bool,
    /// RFC 3339 with nanoseconds, or empty.
    pub started_at: String,
    pub finished_at: String,
    /// Why the last start failed.
    pub error: String,
    pub restart_count: i64,
    /// Set by `stop`/`kill` so that `unless-stopped` stays stopped.
    pub manually_stopped: bool,
}

/// One container as stored.
#[derive(Debug, Clone)]
pub struct ContainerRecord {
    /// 64 hex digits.
    pub id: String,
    /// Without Docker's leading `/`.
    pub name: String,
    /// `sha256:…` of the image config.
    pub image_id: String,
    /// What the user asked for (`busybox`), as `Config.Image` shows it.
    pub image_name: String,
    pub created: DateTime<Utc>,
    pub status: Status,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    pub run: RunState,
}

const COLUMNS: &str =
    "id, name, image_id, image_name, created, state, config, host_config, run_state";

fn from_row(r: &Row<'_>) -> rusqlite::Result<ContainerRecordRaw> {
    Ok(ContainerRecordRaw {
        id: r.get(0)?,
        name: r.get(1)?,
        image_id: r.get(2)?,
        image_name: r.get(3)?,
        created: r.get(4)?,
        state: r.get(5)?,
        config: r.get(6)?,
        host_config: r.get(7)?,
        run_state: r.get(8)?,
    })
}

struct ContainerRecordRaw {
    id: String,
    name: String,
    image_id: String,
    image_name: String,
    created: String,
    state: String,
    config: String,
    host_config: String,
    run_state: String,
}

impl ContainerRecordRaw {
    fn decode(self) -> Result<ContainerRecord, EngineError> {
        let bad = |what: &str, e: &dyn std::fmt::Display| {
            EngineError::Corrupt(format!("container {}: {what}: {e}", self.id))
        };
        Ok(ContainerRecord {
            created: DateTime::parse_from_rfc3339(&self.created)
                .map_err(|e| bad("created", &e))?
                .with_timezone(&Utc),
            status: Status::parse(&self.state).ok_or_else(|| bad("state", &self.state))?,
            config: serde_json::from_str(&self.config).map_err(|e| bad("config", &e))?,
            host_config: serde_json::from_str(&self.host_config)
                .map_err(|e| bad("host config", &e))?,
            run: serde_json::from_str(&self.run_state).map_err(|e| bad("run state", &e))?,
            id: self.id,
            name: self.name,
            image_id: self.image_id,
            image_name: self.image_name,
        })
    }
}

fn q(what: &'static str) -> impl Fn(rusqlite::Error) -> EngineError {
    move |e| EngineError::db(what, e)
}

fn to_json<T: Serialize>(v: &T) -> Result<String, EngineError> {
    serde_json::to_string(v).map_err(|e| EngineError::Corrupt(format!("encoding state: {e}")))
}

/// Stores a new container; a taken name is Docker's conflict error.
pub(crate) fn insert(tx: &Transaction<'_>, c: &ContainerRecord) -> Result<(), EngineError> {
    if let Some(other) = tx
        .query_row(
            "SELECT id FROM containers WHERE name = ?1",
            params![c.name],
            |r| r.get::<_, String>(0),
        )
        .optional()
        .map_err(q("looking up a container name"))?
    {
        return Err(name_conflict(&c.name, &other));
    }
    tx.execute(
        &format!("INSERT INTO containers ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
        params![
            c.id,
            c.name,
            c.image_id,
            c.image_name,
            c.created
                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            c.status.as_str(),
            to_json(&c.config)?,
            to_json(&c.host_config)?,
            to_json(&c.run)?,
        ],
    )
    .map_err(q("storing a container"))?;
    Ok(())
}

pub(crate) fn name_conflict(name: &str, holder: &str) -> EngineError {
    EngineError::Conflict(format!(
        "Conflict. The container name \"/{name}\" is already in use by container \"{holder}\". \
         You have to remove (or rename) that container to be able to reuse that name."
    ))
}

/// Every container, oldest first.
pub(crate) fn load_all(conn: &Connection) -> Result<Vec<ContainerRecord>, EngineError> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM containers ORDER BY created, id"
        ))
        .map_err(q("reading containers"))?;
    let rows = stmt
        .query_map([], from_row)
        .map_err(q("reading containers"))?;
    let mut out = Vec::new();
    for r in rows {
        out.push(r.map_err(q("reading containers"))?.decode()?);
    }
    Ok(out)
}

/// The container a user's word names: a full id, a name (with or without
/// `/`), or a unique id prefix — Docker's order.
pub(crate) fn find(conn: &Connection, word: &str) -> Result<ContainerRecord, EngineError> {
    let by = |sql: &str, arg: &str| -> Result<Vec<ContainerRecord>, EngineError> {
        let mut stmt = conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM containers WHERE {sql}"))
            .map_err(q("looking up a container"))?;
        let rows = stmt
            .query_map(params![arg], from_row)
            .map_err(q("looking up a container"))?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r.map_err(q("looking up a container"))?.decode()?);
        }
        Ok(out)
    };
    if word.is_empty() {
        return Err(EngineError::NoSuchContainer(word.to_string()));
    }
    if let Some(c) = by("id = ?1", word)?.pop() {
        return Ok(c);
    }
    let name = word.strip_prefix('/').unwrap_or(word);
    if let Some(c) = by("name = ?1", name)?.pop() {
        return Ok(c);
    }
    if word.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut found = by("id LIKE ?1 || '%'", &word.to_ascii_lowercase())?;
        if found.len() > 1 {
            return Err(EngineError::AmbiguousContainer(word.to_string()));
        }
        if let Some(c) = found.pop() {
            return Ok(c);
        }
    }
    Err(EngineError::NoSuchContainer(word.to_string()))
}

/// Reloads one container by full id.
pub(crate) fn get(conn: &Connection, id: &str) -> Result<Option<ContainerRecord>, EngineError> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM containers WHERE id = ?1"),
        params![id],
        from_row,
    )
    .optional()
    .map_err(q("reading a container"))?
    .map(ContainerRecordRaw::decode)
    .transpose()
}

/// Writes the status and run state.
pub(crate) fn set_state(
    tx: &Transaction<'_>,
    id: &str,
    status: Status,
    run: &RunState,
) -> Result<(), EngineError> {
    tx.execute(
        "UPDATE containers SET state = ?2, run_state = ?3 WHERE id = ?1",
        params![id, status.as_str(), to_json(run)?],
    )
    .map_err(q("updating a container's state"))?;
    Ok(())
}

pub(crate) fn set_host_config(
    tx: &Transaction<'_>,
    id: &str,
    host: &HostConfig,
) -> Result<(), EngineError> {
    tx.execute(
        "UPDATE containers SET host_config = ?2 WHERE id = ?1",
        params![id, to_json(host)?],
    )
    .map_err(q("updating a container's host config"))?;
    Ok(())
}

pub(crate) fn rename(tx: &Transaction<'_>, id: &str, new_name: &str) -> Result<(), EngineError> {
    if let Some(other) = tx
        .query_row(
            "SELECT id FROM containers WHERE name = ?1",
            params![new_name],
            |r| r.get::<_, String>(0),
        )
        .optional()
        .map_err(q("looking up a container name"))?
    {
        return Err(name_conflict(new_name, &other));
    }
    tx.execute(
        "UPDATE containers SET name = ?2 WHERE id = ?1",
        params![id, new_name],
    )
    .map_err(q("renaming a container"))?;
    Ok(())
}

pub(crate) fn delete(tx: &Transaction<'_>, id: &str) -> Result<(), EngineError> {
    tx.execute("DELETE FROM containers WHERE id = ?1", params![id])
        .map_err(q("removing a container"))?;
    Ok(())
}
