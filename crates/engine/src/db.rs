//! The engine's SQLite state: connection setup and schema migrations.
//!
//! One database per root (`<root>/berth.db`) in WAL mode, so readers never
//! block the single writer; every operation runs in one transaction, and a
//! busy timeout lets concurrent CLI processes queue instead of failing.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::error::EngineError;
use crate::lock::FileLock;

/// Each entry is applied once, in order, inside its own transaction; the
/// `migrations` table records which versions a database already has.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"
CREATE TABLE images (
    id              TEXT PRIMARY KEY,           -- sha256:<hex> of the config blob
    manifest_digest TEXT,                       -- manifest it came with, if any
    config          TEXT NOT NULL,              -- the config JSON, byte for byte
    created         TEXT,                       -- the config's "created"
    size            INTEGER NOT NULL,           -- sum of the unpacked layer sizes
    parent          TEXT,                       -- image id of the parent (commit/build)
    last_tag_time   TEXT,
    added           TEXT NOT NULL               -- when this store got the image
);
CREATE TABLE image_layers (
    image_id    TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    chain_id    TEXT NOT NULL,
    diff_id     TEXT NOT NULL,
    blob_digest TEXT,                           -- content-store blob of the layer tar
    size        INTEGER NOT NULL,
    PRIMARY KEY (image_id, position)
);
CREATE INDEX image_layers_chain ON image_layers(chain_id);
CREATE TABLE tags (
    name     TEXT PRIMARY KEY,                  -- docker.io/library/busybox:latest
    image_id TEXT NOT NULL REFERENCES images(id),
    created  TEXT NOT NULL
);
CREATE INDEX tags_image ON tags(image_id);
CREATE TABLE repo_digests (
    name     TEXT NOT NULL,                     -- docker.io/library/busybox@sha256:…
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    PRIMARY KEY (name, image_id)
);
CREATE TABLE containers (
    id       TEXT PRIMARY KEY,
    name     TEXT NOT NULL UNIQUE,
    image_id TEXT NOT NULL REFERENCES images(id),
    created  TEXT NOT NULL,
    state    TEXT NOT NULL DEFAULT 'created',
    size     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX containers_image ON containers(image_id);
CREATE TABLE volumes (
    name    TEXT PRIMARY KEY,
    created TEXT NOT NULL,
    size    INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE build_cache (
    id      TEXT PRIMARY KEY,
    created TEXT NOT NULL,
    size    INTEGER NOT NULL DEFAULT 0,
    in_use  INTEGER NOT NULL DEFAULT 0
);
"#,
    ),
    (
        2,
        r#"
-- Containers: Docker's Config and HostConfig as JSON, the run state
-- (pid, exit code, times …) as JSON; the columns ps filters on stay columns.
ALTER TABLE containers ADD COLUMN image_name TEXT NOT NULL DEFAULT '';
ALTER TABLE containers ADD COLUMN config TEXT NOT NULL DEFAULT '{}';
ALTER TABLE containers ADD COLUMN host_config TEXT NOT NULL DEFAULT '{}';
ALTER TABLE containers ADD COLUMN run_state TEXT NOT NULL DEFAULT '{}';
CREATE TABLE events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    time_nano  INTEGER NOT NULL,
    type       TEXT NOT NULL,                -- container, image, volume, network
    action     TEXT NOT NULL,                -- create, start, die, destroy …
    actor_id   TEXT NOT NULL,
    attributes TEXT NOT NULL DEFAULT '{}'    -- JSON object of strings
);
CREATE INDEX events_time ON events(time_nano);
"#,
    ),
    (
        3,
        r#"
-- Volumes: the local driver's options and labels as JSON objects.
ALTER TABLE volumes ADD COLUMN driver TEXT NOT NULL DEFAULT 'local';
ALTER TABLE volumes ADD COLUMN labels TEXT NOT NULL DEFAULT '{}';
ALTER TABLE volumes ADD COLUMN options TEXT NOT NULL DEFAULT '{}';
-- What a container mounts where (Docker's MountPoints), resolved at
-- create: a volume referenced here is in use and cannot be removed.
CREATE TABLE container_mounts (
    container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
    destination  TEXT NOT NULL,
    volume       TEXT REFERENCES volumes(name),
    mount        TEXT NOT NULL,                 -- the mount point as JSON
    PRIMARY KEY (container_id, destination)
);
CREATE INDEX container_mounts_volume ON container_mounts(volume);
"#,
    ),
    (
        4,
        r#"
-- Networks (Docker's model as JSON) and each container's endpoints: the
-- requested settings (aliases, --ip, --mac-address) from its create, and
-- while it runs the live state (address, MAC, host link). The unique index
-- makes two containers' addresses on one network collide in SQLite, not on
-- the wire.
CREATE TABLE networks (
    id      TEXT PRIMARY KEY,
    name    TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL,
    config  TEXT NOT NULL
);
CREATE TABLE endpoints (
    container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
    network_id   TEXT NOT NULL REFERENCES networks(id),
    position     INTEGER NOT NULL,
    config       TEXT NOT NULL DEFAULT '{}',
    ip           TEXT,
    state        TEXT,
    PRIMARY KEY (container_id, network_id)
);
CREATE UNIQUE INDEX endpoints_address ON endpoints(network_id, ip);
CREATE INDEX endpoints_network ON endpoints(network_id);
-- The host ports a running container publishes (resolved: ephemeral ports
-- picked), as Docker's NetworkSettings.Ports.
CREATE TABLE published_ports (
    container_id TEXT PRIMARY KEY REFERENCES containers(id) ON DELETE CASCADE,
    ports        TEXT NOT NULL
);
"#,
    ),
];

/// WAL size over which closing a connection checkpoints and truncates it
/// (see [`Db::open`]): 64 pages, a replay of well under a millisecond, for
/// a checkpoint (two fsyncs, ~1 ms) every few containers.
const WAL_TRUNCATE_BYTES: u64 = 64 * 4096;

/// An open state database.
pub struct Db {
    conn: Connection,
    path: std::path::PathBuf,
    wal: std::path::PathBuf,
    /// Whether closing may hand the checkpoint to a background process
    /// (not from that process itself: a busy database would chain them).
    hand_off: bool,
    /// The checkpoint went to the caller ([`Db::take_checkpoint`]).
    handed: bool,
}

impl Drop for Db {
    fn drop(&mut self) {
        if self.handed {
            return;
        }
        // The checkpoint's fsyncs (1-3 ms here, far more on a busy disk)
        // are nobody's business but the disk's: a detached `berth system
        // compact-db` does them, and this command returns. Inline only where
        // that cannot be started.
        if self.wal_is_big() && !(self.hand_off && spawn_checkpointer(&self.path)) {
            self.checkpoint(Duration::from_millis(20));
        }
    }
}

impl Db {
    fn wal_is_big(&self) -> bool {
        std::fs::metadata(&self.wal).is_ok_and(|m| m.len() > WAL_TRUNCATE_BYTES)
    }

    /// The database's path when its WAL grew past [`WAL_TRUNCATE_BYTES`],
    /// for the caller to checkpoint once this connection is closed (see
    /// [`checkpoint_closed`]); this connection then leaves it alone.
    pub(crate) fn take_checkpoint(&mut self) -> Option<std::path::PathBuf> {
        if !(self.hand_off && self.wal_is_big()) {
            return None;
        }
        self.handed = true;
        Some(self.path.clone())
    }
}

/// Checkpoints the database at `db` with a connection of its own: what
/// [`Db::take_checkpoint`] handed on, in the process that does a command's
/// deferred work. That is a fork of the command made after its last
/// connection closed, so SQLite's per-process lock bookkeeping is empty in
/// it and a new connection is sound there (never one inherited through a
/// fork); and it needs no program of its own, unlike `berth system
/// compact-db` (an exec of this ~10 MB binary, a few milliseconds of CPU
/// that the next command on a small machine competes with).
pub(crate) fn checkpoint_closed(db: &Path) {
    if let Some(root) = db.parent() {
        if let Err(e) = compact(root) {
            tracing::debug!("checkpointing {}: {e}", db.display());
        }
    }
}

/// Starts `berth --root <dir of db> system compact-db` in a detached
/// background process (see [`crate::detached`]); `false` if it cannot.
/// A fresh process, not a fork that opens the database again: SQLite's
/// lock bookkeeping must not cross a fork while a connection is open.
pub(crate) fn spawn_checkpointer(db: &Path) -> bool {
    if db.file_name() != Some(std::ffi::OsStr::new(DB_FILE)) {
        return false;
    }
    // One at a time: a checkpointer still at work will see this WAL too
    // (every close in the meantime would otherwise start another).
    if FileLock::try_exclusive(&compact_lock(db)).is_none() {
        return true;
    }
    let Some(root) = db.parent() else {
        return false;
    };
    crate::detached::berth_detached(&[
        "--root".as_ref(),
        root.as_os_str(),
        "system".as_ref(),
        "compact-db".as_ref(),
    ])
}

/// Runs `op` again while it fails with SQLITE_BUSY, for up to a minute
/// (the connection's busy timeout). Reading the schema while another
/// process creates the database or switches it to WAL can fail with BUSY
/// without SQLite calling the busy handler.
fn retry_busy<T>(mut op: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        match op() {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            r => return r,
        }
    }
}

/// Whether the SQLite database at `path` is in WAL mode: its header's
/// read and write format versions (bytes 18 and 19) are 2.
fn is_wal_database(path: &Path) -> bool {
    use std::io::Read;
    let mut header = [0u8; 20];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .is_ok_and(|()| {
            header.starts_with(b"SQLite format 3\0") && header[18] == 2 && header[19] == 2
        })
}

/// Held by `berth system compact-db` while it works.
fn compact_lock(db: &Path) -> std::path::PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-compact.lock");
    name.into()
}

/// The database's file name in the state root.
pub const DB_FILE: &str = "berth.db";

/// `berth system compact-db`: checkpoints the WAL of the database under
/// `root` into the database and truncates it (what closing a command's
/// connection hands off when the WAL grew).
pub fn compact(root: &Path) -> Result<(), EngineError> {
    let path = root.join(DB_FILE);
    let Some(_only_one) = FileLock::try_exclusive(&compact_lock(&path)) else {
        return Ok(());
    };
    let mut db = Db::open(&path)?;
    db.hand_off = false;
    db.checkpoint(Duration::from_secs(2));
    Ok(())
}

impl Db {
    /// Opens (creating if needed) the database at `path` and brings its
    /// schema up to date.
    pub fn open(path: &Path) -> Result<Self, EngineError> {
        let ctx = |what: &str| format!("{what} {}", path.display());
        // Already in WAL mode (persistent, in the file's header): skip
        // the pragma, whose parse and lock dance every command would pay.
        let wal_already = is_wal_database(path);
        let conn = Connection::open(path).map_err(|e| EngineError::db(ctx("opening"), e))?;
        conn.busy_timeout(Duration::from_secs(60))
            .map_err(|e| EngineError::db(ctx("configuring"), e))?;
        let pragmas = if wal_already {
            "PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL;"
        } else {
            "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL;"
        };
        retry_busy(|| conn.execute_batch(pragmas))
            .map_err(|e| EngineError::db(ctx("configuring"), e))?;
        // Every berth command opens and closes the database. By default the
        // last connection to close checkpoints the WAL into the database
        // (two fsyncs) and deletes it, and the next open recreates it (one
        // more fsync and a directory sync): milliseconds per command, far
        // more on a busy disk. Leaving the WAL in place keeps commits at
        // appends; SQLite checkpoints it as it grows (wal_autocheckpoint),
        // and a WAL left by a crash is replayed at the next open.
        //
        // That replay happens at EVERY open: with no other connection
        // alive, SQLite rebuilds its WAL index by reading every frame
        // written since the WAL last restarted (about 1 ms per MB here).
        // And the WAL only restarts inside a connection that saw its own
        // checkpoint complete, which one-transaction processes never do:
        // left alone it grows without bound. So the connection that finds
        // it over [`WAL_TRUNCATE_BYTES`] when closing checkpoints it and
        // truncates it (see `Drop`).
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )
        .map_err(|e| EngineError::db(ctx("configuring"), e))?;
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let mut db = Self {
            conn,
            path: path.to_path_buf(),
            wal: wal.into(),
            hand_off: true,
            handed: false,
        };
        db.migrate().map_err(|e| e.context_for(path))?;
        Ok(db)
    }

    /// `wal_checkpoint(TRUNCATE)`, best effort: a database busy for longer
    /// than `patience` skips it and a later close does it.
    fn checkpoint(&self, patience: Duration) {
        let _ = self.conn.busy_timeout(patience);
        if let Err(e) = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        {
            tracing::debug!(error = %e, wal = %self.wal.display(), "WAL checkpoint skipped");
        }
    }

    fn migrate(&mut self) -> Result<(), EngineError> {
        // The schema version is mirrored in the header's user_version: a
        // read without the write lock or the migrations table in the
        // common case (every command opens the database).
        let latest = MIGRATIONS.iter().map(|(v, _)| *v).max().unwrap_or(0);
        let mirrored: i64 =
            retry_busy(|| self.conn.query_row("PRAGMA user_version", [], |r| r.get(0)))
                .map_err(|e| EngineError::db("reading the schema version", e))?;
        // (Higher: a newer berth migrated it; nothing here to apply.)
        if mirrored >= latest {
            return Ok(());
        }
        let tx = self.write()?;
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS migrations (version INTEGER PRIMARY KEY, applied TEXT NOT NULL)",
        )
        .map_err(|e| EngineError::db("creating the migrations table", e))?;
        let current: i64 = tx
            .query_row(
                "SELECT COALESCE(MAX(version), 0) FROM migrations",
                [],
                |r| r.get(0),
            )
            .map_err(|e| EngineError::db("reading the schema version", e))?;
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
            tx.execute_batch(sql)
                .map_err(|e| EngineError::db(format!("applying migration {version}"), e))?;
            tx.execute(
                "INSERT INTO migrations (version, applied) VALUES (?1, ?2)",
                rusqlite::params![version, chrono::Utc::now().to_rfc3339()],
            )
            .map_err(|e| EngineError::db(format!("recording migration {version}"), e))?;
        }
        // In the same transaction: the mirror never runs ahead of the table.
        tx.execute_batch(&format!("PRAGMA user_version = {}", latest.max(current)))
            .map_err(|e| EngineError::db("recording the schema version", e))?;
        tx.commit()
            .map_err(|e| EngineError::db("committing migrations", e))
    }

    /// Starts a write transaction; `IMMEDIATE` takes the write lock up front
    /// so two writers queue on the busy timeout instead of deadlocking when
    /// both upgrade from read to write.
    pub fn write(&mut self) -> Result<Transaction<'_>, EngineError> {
        self.conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| EngineError::db("starting a transaction", e))
    }

    /// The connection, for reads.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header mirrors the schema version, and a database whose mirror
    /// is behind (made before the mirror existed) is brought up to date.
    #[test]
    fn schema_version_is_mirrored_in_the_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.db");
        let latest = MIGRATIONS.iter().map(|(v, _)| *v).max().unwrap();
        let version = |db: &Db| -> i64 {
            db.conn()
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap()
        };
        let db = Db::open(&path).unwrap();
        assert_eq!(version(&db), latest);
        assert!(is_wal_database(&path));
        db.conn().execute_batch("PRAGMA user_version = 0").unwrap();
        drop(db);
        let db = Db::open(&path).unwrap();
        assert_eq!(version(&db), latest);
        let n: i64 = db
            .conn()
            .query_row("SELECT COUNT(*) FROM migrations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, MIGRATIONS.len() as i64, "no migration ran twice");
    }

    #[test]
    fn migrations_apply_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.db");
        drop(Db::open(&path).unwrap());
        let db = Db::open(&path).unwrap();
        let n: i64 = db
            .conn()
            .query_row("SELECT COUNT(*) FROM migrations", [], |r| r.get(0))
            .unwrap();
        // Another part may add migrations of its own: compare with the
        // highest version, not with the count.
        let latest: i64 = db
            .conn()
            .query_row("SELECT MAX(version) FROM migrations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(latest, MIGRATIONS.iter().map(|(v, _)| *v).max().unwrap());
        assert_eq!(n, MIGRATIONS.len() as i64);
        let mode: String = db
            .conn()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let tables: i64 = db
            .conn()
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND name IN ('images','tags','containers')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 3);
    }

    /// Every open replays the WAL written since the last checkpoint, so
    /// the WAL must stay small however many commands ran.
    #[test]
    fn wal_stays_bounded_across_many_commands() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.db");
        drop(Db::open(&path).unwrap());
        let blob = "x".repeat(6000); // a container's JSON spans pages
        for i in 0..300 {
            let mut db = Db::open(&path).unwrap();
            let tx = db.write().unwrap();
            tx.execute(
                "CREATE TABLE IF NOT EXISTS wal_probe (id INTEGER PRIMARY KEY, v TEXT)",
                [],
            )
            .unwrap();
            tx.execute(
                "INSERT OR REPLACE INTO wal_probe (id, v) VALUES (?1, ?2)",
                rusqlite::params![i % 7, blob],
            )
            .unwrap();
            tx.commit().unwrap();
        }
        let wal = std::fs::metadata(dir.path().join("berth.db-wal"))
            .unwrap()
            .len();
        // The threshold plus the commit that crossed it.
        let bound = WAL_TRUNCATE_BYTES + 16 * (4096 + 24);
        assert!(wal <= bound, "WAL grew to {wal} bytes (bound {bound})");
    }
}
