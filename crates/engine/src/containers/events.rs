//! The event log `berth events` reads: one row per lifecycle step, kept to
//! the newest [`KEEP`] rows.

use std::collections::BTreeMap;

use rusqlite::params;

use super::store::ContainerRecord;
use super::ContainerService;
use crate::error::EngineError;

/// How many events the log keeps.
const KEEP: i64 = 10_000;

/// One event, as Docker's `events` API shapes it (`Type`, `Action`,
/// `Actor.ID`, `Actor.Attributes`, `timeNano`).
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub seq: i64,
    pub time_nano: i64,
    pub kind: String,
    pub action: String,
    pub actor_id: String,
    pub attributes: BTreeMap<String, String>,
}

impl ContainerService<'_> {
    /// Records a container event; failures only warn (the operation itself
    /// already happened).
    pub(crate) fn event(&self, c: &ContainerRecord, action: &str) {
        self.event_with(c, action, &[]);
    }

    pub(crate) fn event_with(&self, c: &ContainerRecord, action: &str, extra: &[(&str, String)]) {
        let res = (|| -> Result<(), EngineError> {
            let mut db = self.engine.db();
            let tx = db.write()?;
            insert_event(&tx, c, action, extra)?;
            tx.commit()
                .map_err(|e| EngineError::db("recording an event", e))
        })();
        if let Err(e) = res {
            tracing::warn!("container {}: {action} event not recorded: {e}", c.id);
        }
    }

    /// Events with `seq > after_seq` and `time_nano` in `[since, until]`, oldest first.
    pub fn events(
        &self,
        after_seq: i64,
        since: Option<i64>,
        until: Option<i64>,
    ) -> Result<Vec<EventRecord>, EngineError> {
        let db = self.engine.db();
        let q = |e| EngineError::db("reading events", e);
        let mut stmt = db
            .conn()
            .prepare_cached(
                "SELECT seq, time_nano, type, action, actor_id, attributes FROM events
                 WHERE seq > ?1 AND time_nano >= ?2 AND time_nano <= ?3 ORDER BY seq",
            )
            .map_err(q)?;
        let rows = stmt
            .query_map(
                params![after_seq, since.unwrap_or(0), until.unwrap_or(i64::MAX)],
                |r| {
                    let attrs: String = r.get(5)?;
                    Ok(EventRecord {
                        seq: r.get(0)?,
                        time_nano: r.get(1)?,
                        kind: r.get(2)?,
                        action: r.get(3)?,
                        actor_id: r.get(4)?,
                        attributes: serde_json::from_str(&attrs).unwrap_or_default(),
                    })
                },
            )
            .map_err(q)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(q)
    }
}

/// Adds an event inside `tx` (with the state change it reports: one
/// transaction, one WAL commit, instead of two).
pub(crate) fn insert_event(
    tx: &rusqlite::Transaction<'_>,
    c: &ContainerRecord,
    action: &str,
    extra: &[(&str, String)],
) -> Result<(), EngineError> {
    let mut attrs: BTreeMap<String, String> = c.config.labels.clone();
    attrs.insert("name".into(), c.name.clone());
    attrs.insert("image".into(), c.image_name.clone());
    for (k, v) in extra {
        attrs.insert((*k).to_string(), v.clone());
    }
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
    let q = |e| EngineError::db("recording an event", e);
    tx.execute(
        "INSERT INTO events (time_nano, type, action, actor_id, attributes) VALUES (?1, 'container', ?2, ?3, ?4)",
        params![now, action, c.id, serde_json::to_string(&attrs).unwrap_or_default()],
    )
    .map_err(q)?;
    tx.execute(
        "DELETE FROM events WHERE seq <= (SELECT MAX(seq) FROM events) - ?1",
        params![KEEP],
    )
    .map_err(q)?;
    Ok(())
}
