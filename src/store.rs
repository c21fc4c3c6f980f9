//! The embedded store: SQLite (bundled, WAL) in `<data-dir>/lookout.db`.
//!
//! It keeps what must survive a restart or a `kill -9`: the trigger count, the
//! settings changed at run time and the event history. One thread (`store`)
//! owns the connection and runs every call, in order, never on the async
//! executor; writes are few (one per command or motion episode), so one
//! connection is plenty.
//!
//! Why a thread of its own rather than the blocking pool: a command such as
//! `reset` is one hop there and back (a channel send and a oneshot reply) to a
//! thread that is already running and has the connection and its cached
//! statements warm. Through the pool, each call could land on a fresh thread
//! (the pool's idle threads end after seconds), then wait on the connection's
//! mutex: that made `reset`'s round trip p99 several times its median.
//!
//! # A damaged database
//! An SD card that wears out, a power cut during a write on a card that lies
//! about syncing, or a file edited by hand can leave `lookout.db` unreadable.
//! lookout then does not refuse to start (a camera left dark is worse than a
//! lost history): [`Store::open`] checks the file (`PRAGMA quick_check`), and
//! when SQLite calls it corrupt or not a database, moves it aside with its
//! `-wal` and `-shm` files (`lookout.db.corrupt-<unix time>`), says so in the
//! log, and starts a fresh store. Snapshots are plain files and stay.
//! Other failures (permissions, a full disk, I/O errors) are not damage and
//! stop the start as before: moving a sound database aside would lose it.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use serde_json::Value;

/// Writes one state value (statements are prepared once and cached).
const UPSERT_STATE: &str = "INSERT INTO state (key, value) VALUES (?1, ?2)
     ON CONFLICT(key) DO UPDATE SET value = excluded.value";

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "lookout.db";

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("database {path}: {err}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        err: rusqlite::Error,
    },
    /// The database file could not be created.
    #[error("cannot create database {path}: {err}; check the data directory's owner and space")]
    Create {
        /// The database file.
        path: PathBuf,
        /// Why.
        err: std::io::Error,
    },
    /// The database is damaged and could not be moved aside.
    #[error(
        "database {path} is damaged ({why}) and cannot be moved aside: {err}; \
         move it away by hand (see \"Recovering from a damaged database\" in docs/guide/troubleshooting.md)"
    )]
    SetAside {
        /// The database file.
        path: PathBuf,
        /// What SQLite said about it.
        why: String,
        /// Why it could not be renamed.
        err: std::io::Error,
    },
    /// The store's thread has ended, or the call panicked.
    #[error("database task failed: {0}")]
    Task(String),
}

/// Whether SQLite says the file itself is damaged (as opposed to an error of
/// access, space or I/O, after which the file may well be sound).
fn is_damage(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
    )
}

/// Why [`Store::open_file`] failed: damage, or anything else.
enum OpenError {
    Damaged(String),
    Other(StoreError),
}

/// Moves the damaged database `path` and its `-wal` and `-shm` files aside
/// as `<name>.corrupt-<unix secs>` (plus `-2`, `-3`... if that exists), and
/// returns the new name of the database. The `-wal` and `-shm` files go
/// first: a fresh database must never meet the old write-ahead log.
fn set_aside(path: &Path) -> std::io::Result<PathBuf> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let with_suffix = |p: &Path, suffix: &str| {
        let mut name = p.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    let mut n = 1;
    let aside = loop {
        let tag = if n == 1 {
            format!(".corrupt-{secs}")
        } else {
            format!(".corrupt-{secs}-{n}")
        };
        let aside = with_suffix(path, &tag);
        let taken = ["", "-wal", "-shm"]
            .iter()
            .any(|s| with_suffix(&aside, s).symlink_metadata().is_ok());
        if !taken {
            break aside;
        }
        n += 1;
    };
    for suffix in ["-wal", "-shm"] {
        match std::fs::rename(with_suffix(path, suffix), with_suffix(&aside, suffix)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    std::fs::rename(path, &aside)?;
    if let Some(dir) = path.parent() {
        let _ = crate::durable::sync_dir(dir);
    }
    Ok(aside)
}

/// One stored event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredEvent {
    /// Increasing id (the SSE `id:`).
    pub id: i64,
    /// Unix seconds.
    pub ts: f64,
    /// Event kind (`motion`, `reset`, ...).
    pub kind: String,
    /// The event's JSON data.
    pub data: Value,
}

/// One call, run by the store's thread on its connection.
type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    owner: Arc<Owner>,
    path: Arc<PathBuf>,
}

/// The thread that owns the connection, and the way to it. Dropping the last
/// handle closes the connection before the drop returns (as dropping the
/// connection itself did): a caller that reopens the file, or a process
/// that exits, finds it closed and checkpointed.
struct Owner {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Owner {
    /// Starts the thread that owns `conn` and runs the jobs sent to it, in
    /// order, until the sender is gone. A job that panics fails alone (its
    /// caller sees the reply dropped); an open transaction is rolled back as
    /// it unwinds.
    fn spawn(conn: Connection) -> std::io::Result<Owner> {
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("store".into())
            .spawn(move || {
                let mut conn = conn;
                for job in rx {
                    if std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut conn))).is_err() {
                        tracing::error!("a database call panicked; it failed alone");
                    }
                }
            })?;
        Ok(Owner {
            jobs: Some(tx),
            thread: Some(thread),
        })
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            // Never join from the store's own thread (a job that held the
            // last handle): that would wait for itself.
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

impl Store {
    /// Opens (creating when missing) the database in `data_dir`. Blocking: call
    /// it at start-up. A damaged database is moved aside and replaced by a
    /// fresh one (see the module's documentation).
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        let path = data_dir.join(DB_FILE);
        let why = match Store::open_file(&path) {
            Ok(store) => return Ok(store),
            Err(OpenError::Other(e)) => return Err(e),
            Err(OpenError::Damaged(why)) => why,
        };
        let aside = set_aside(&path).map_err(|err| StoreError::SetAside {
            path: path.clone(),
            why: why.clone(),
            err,
        })?;
        tracing::error!(
            "database {} is damaged ({why}): moved it to {} (with its -wal and -shm files) \
             and starting with a fresh one. Snapshots are kept; the event history, the \
             trigger count, settings changed at run time, the stored password, sessions \
             and API tokens start over. See \"Recovering from a damaged database\" in docs/guide/troubleshooting.md",
            path.display(),
            aside.display()
        );
        match Store::open_file(&path) {
            Ok(store) => Ok(store),
            Err(OpenError::Other(e)) => Err(e),
            Err(OpenError::Damaged(why)) => Err(StoreError::Sqlite {
                path,
                err: rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
                    Some(format!("the fresh database is damaged too: {why}")),
                ),
            }),
        }
    }

    /// Opens `path` and checks it; SQLite's verdict "corrupt" or "not a
    /// database" is [`OpenError::Damaged`].
    fn open_file(path: &Path) -> Result<Store, OpenError> {
        let err = |err: rusqlite::Error| {
            if is_damage(&err) {
                OpenError::Damaged(err.to_string())
            } else {
                OpenError::Other(StoreError::Sqlite {
                    path: path.to_path_buf(),
                    err,
                })
            }
        };
        // Created 0600 first: SQLite would make it 0644, and gives the
        // -wal and -shm files the database's mode.
        crate::datadir::create_file(path).map_err(|err| {
            OpenError::Other(StoreError::Create {
                path: path.to_path_buf(),
                err,
            })
        })?;
        let conn = Connection::open(path).map_err(err)?;
        // Until the file is known to be sound, closing must not checkpoint:
        // that would write the old WAL into a damaged file, then delete it,
        // and the files set aside would no longer be what was found.
        let no_checkpoint = rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE;
        conn.set_db_config(no_checkpoint, true).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        // Reads every page once (milliseconds for the default history of
        // 10 000 events): damage is found now, not by a write at 3 am.
        let check: String = conn
            .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
            .map_err(err)?;
        if check != "ok" {
            return Err(OpenError::Damaged(check));
        }
        conn.set_db_config(no_checkpoint, false).map_err(err)?;
        // WAL: readers never block the writer. synchronous=NORMAL: a commit
        // is in the WAL (the OS has it) when the call returns, so it survives
        // `kill -9` and crashes of lookout; only a power cut can lose the last
        // moments. FULL would fsync every command (a reset took ~5 ms here).
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS events (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 ts REAL NOT NULL,
                 kind TEXT NOT NULL,
                 payload TEXT NOT NULL);
             CREATE INDEX IF NOT EXISTS events_kind ON events(kind, id);
             CREATE INDEX IF NOT EXISTS events_ts ON events(ts);
             CREATE TABLE IF NOT EXISTS tokens (
                 hash BLOB PRIMARY KEY,
                 kind TEXT NOT NULL,
                 name TEXT,
                 created REAL NOT NULL,
                 expires REAL,
                 scope TEXT NOT NULL DEFAULT 'control');",
        )
        .map_err(err)?;
        // Tokens gained a scope (`read` or `control`); every token from
        // before could do everything, and keeps that.
        let has_scope: bool = conn
            .prepare("SELECT 1 FROM pragma_table_info('tokens') WHERE name = 'scope'")
            .and_then(|mut s| s.exists([]))
            .map_err(err)?;
        if !has_scope {
            conn.execute_batch(
                "ALTER TABLE tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'control';",
            )
            .map_err(err)?;
        }
        // Events gained a camera (several cameras per server); a database
        // from before has none, and `claim_events` gives its events to the
        // first camera.
        let has_camera: bool = conn
            .prepare("SELECT 1 FROM pragma_table_info('events') WHERE name = 'camera'")
            .and_then(|mut s| s.exists([]))
            .map_err(err)?;
        if !has_camera {
            conn.execute_batch("ALTER TABLE events ADD COLUMN camera TEXT;")
                .map_err(err)?;
        }
        conn.execute_batch("CREATE INDEX IF NOT EXISTS events_camera ON events(camera, id);")
            .map_err(err)?;
        let owner = Owner::spawn(conn).map_err(|e| {
            OpenError::Other(StoreError::Task(format!(
                "cannot start the store thread: {e}"
            )))
        })?;
        Ok(Store {
            owner: Arc::new(owner),
            path: Arc::new(path.to_path_buf()),
        })
    }

    /// Runs `f` with the connection on the store's thread and waits for it.
    pub(crate) async fn with<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let path = self.path.clone();
        let job: Job = Box::new(move |conn| {
            let result = f(conn).map_err(|err| StoreError::Sqlite {
                path: (*path).clone(),
                err,
            });
            // The caller may have gone (a closed socket): nothing to tell.
            let _ = reply.send(result);
        });
        self.owner
            .jobs
            .as_ref()
            .ok_or_else(|| StoreError::Task("the store is closing".into()))?
            .send(job)
            .map_err(|_| StoreError::Task("the store thread has ended".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Task("a database call panicked".into()))?
    }

    /// Reads a state value.
    pub async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = key.to_string();
        self.with(move |c| {
            c.query_row("SELECT value FROM state WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()
        })
        .await
    }

    /// Writes a state value (committed when this returns).
    pub async fn set(&self, key: &str, value: String) -> Result<(), StoreError> {
        let key = key.to_string();
        self.with(move |c| {
            c.prepare_cached(UPSERT_STATE)?
                .execute(params![key, value])
                .map(|_| ())
        })
        .await
    }

    /// Writes several state values in one transaction: all are kept or none
    /// (a settings change that is partly the server's, partly a camera's).
    pub async fn set_many(&self, values: Vec<(String, String)>) -> Result<(), StoreError> {
        self.with(move |c| {
            let tx = c.transaction()?;
            for (key, value) in values {
                tx.prepare_cached(UPSERT_STATE)?
                    .execute(params![key, value])?;
            }
            tx.commit()
        })
        .await
    }

    /// Deletes a state value.
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let key = key.to_string();
        self.with(move |c| {
            c.execute("DELETE FROM state WHERE key = ?1", [key])
                .map(|_| ())
        })
        .await
    }

    /// Appends an event (of `camera`, or of the whole server) and returns
    /// its id.
    pub async fn append_event(
        &self,
        ts: f64,
        kind: &str,
        camera: Option<&str>,
        data: &Value,
    ) -> Result<i64, StoreError> {
        self.append_event_with_state(ts, kind, camera, data, Vec::new())
            .await
    }

    /// Appends an event and, in the same transaction, writes state values
    /// (`state`: keys and values): all are stored or none, in one trip
    /// to the blocking pool (a `reset` and its event).
    pub async fn append_event_with_state(
        &self,
        ts: f64,
        kind: &str,
        camera: Option<&str>,
        data: &Value,
        state: Vec<(String, String)>,
    ) -> Result<i64, StoreError> {
        let kind = kind.to_string();
        let camera = camera.map(str::to_string);
        let payload = data.to_string();
        self.with(move |c| {
            let tx = c.transaction()?;
            for (key, value) in state {
                tx.prepare_cached(UPSERT_STATE)?
                    .execute(params![key, value])?;
            }
            tx.prepare_cached(
                "INSERT INTO events (ts, kind, camera, payload) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![ts, kind, camera, payload])?;
            let id = tx.last_insert_rowid();
            tx.commit()?;
            Ok(id)
        })
        .await
    }

    /// Gives events stored before cameras had names (a single-camera data
    /// directory) to `camera`, in their column and their JSON. Server-wide
    /// kinds (`upload`) stay without. Returns how many were claimed.
    pub async fn claim_events(&self, camera: &str) -> Result<usize, StoreError> {
        let camera = camera.to_string();
        self.with(move |c| {
            c.execute(
                "UPDATE events SET camera = ?1, payload = json_set(payload, '$.camera', ?1)
                 WHERE camera IS NULL AND kind != 'upload' AND json_valid(payload)",
                [camera],
            )
        })
        .await
    }

    /// Events with an id above `after`, oldest first, at most `limit` (the
    /// newest ones when more were missed).
    ///
    /// With `camera`, only that camera's events and the server-wide ones.
    pub async fn events_after(
        &self,
        after: i64,
        limit: u32,
        camera: Option<String>,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let mut events = self
            .with(move |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT id, ts, kind, payload FROM events WHERE id > ?1
                     AND (?3 IS NULL OR camera = ?3 OR camera IS NULL)
                     ORDER BY id DESC LIMIT ?2",
                )?;
                let rows = stmt.query_map(params![after, limit, camera], row_to_event)?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?;
        events.reverse();
        Ok(events)
    }

    /// A page of history, newest first: ids below `before`, optionally one
    /// kind, optionally one camera's (with the server-wide events).
    pub async fn events_page(
        &self,
        limit: u32,
        before: Option<i64>,
        kind: Option<String>,
        camera: Option<String>,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.with(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, ts, kind, payload FROM events
                 WHERE id < ?1 AND (?2 IS NULL OR kind = ?2)
                 AND (?4 IS NULL OR camera = ?4 OR camera IS NULL)
                 ORDER BY id DESC LIMIT ?3",
            )?;
            let rows = stmt.query_map(
                params![before.unwrap_or(i64::MAX), kind, limit, camera],
                row_to_event,
            )?;
            rows.collect()
        })
        .await
    }

    /// One camera's events of `kind` stamped in `from..to` (unix seconds),
    /// oldest first, at most `limit`.
    pub async fn events_between(
        &self,
        kind: &'static str,
        camera: String,
        from: f64,
        to: f64,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.with(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, ts, kind, payload FROM events
                 WHERE ts >= ?1 AND ts < ?2 AND kind = ?3 AND camera = ?4
                 ORDER BY ts LIMIT ?5",
            )?;
            let rows = stmt.query_map(params![from, to, kind, camera, limit], row_to_event)?;
            rows.collect()
        })
        .await
    }

    /// The newest event id (0 when there is none).
    pub async fn last_event_id(&self) -> Result<i64, StoreError> {
        self.with(|c| c.query_row("SELECT COALESCE(MAX(id), 0) FROM events", [], |r| r.get(0)))
            .await
    }

    /// Deletes events older than `max_age_s` and beyond the newest `max_count`.
    /// Returns how many were deleted.
    pub async fn prune_events(
        &self,
        now: f64,
        max_age_s: f64,
        max_count: u32,
    ) -> Result<usize, StoreError> {
        self.with(move |c| {
            let old = c.execute("DELETE FROM events WHERE ts < ?1", [now - max_age_s])?;
            let extra = c.execute(
                "DELETE FROM events WHERE id <= (SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?1)",
                [max_count],
            )?;
            Ok(old + extra)
        })
        .await
    }
}

/// A credential stored as the SHA-256 of its secret (the secret itself is
/// shown once and never kept).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenRow {
    /// `session`, `api` (one hour) or `long` (until revoked).
    pub kind: String,
    /// Name of a long-lived token.
    pub name: Option<String>,
    /// Unix seconds.
    pub created: f64,
    /// Unix seconds; `None` never expires.
    pub expires: Option<f64>,
    /// What it may do: `read` or `control` (see `auth::Scope`).
    pub scope: String,
}

/// The columns [`token_row`] reads, in its order.
const TOKEN_COLUMNS: &str = "kind, name, created, expires, scope";

/// A [`TokenRow`] from [`TOKEN_COLUMNS`] starting at column `at`.
fn token_row(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<TokenRow> {
    Ok(TokenRow {
        kind: r.get(at)?,
        name: r.get(at + 1)?,
        created: r.get(at + 2)?,
        expires: r.get(at + 3)?,
        scope: r.get(at + 4)?,
    })
}

/// Rows of `(hash, token)` with the hashes that are SHA-256s (a row that is
/// not cannot be named, so it is left out).
fn with_hashes(rows: Vec<(Vec<u8>, TokenRow)>) -> Vec<([u8; 32], TokenRow)> {
    rows.into_iter()
        .filter_map(|(hash, row)| Some((<[u8; 32]>::try_from(hash).ok()?, row)))
        .collect()
}

impl Store {
    /// Stores a token by the hash of its secret.
    pub async fn add_token(&self, hash: [u8; 32], row: TokenRow) -> Result<(), StoreError> {
        self.with(move |c| {
            c.execute(
                "INSERT INTO tokens (hash, kind, name, created, expires, scope)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    hash.to_vec(),
                    row.kind,
                    row.name,
                    row.created,
                    row.expires,
                    row.scope
                ],
            )
            .map(|_| ())
        })
        .await
    }

    /// Stores a long-lived token unless one of the same name exists (in one
    /// statement, so two commands at once cannot both add it); false when
    /// one does.
    pub async fn add_long_token(&self, hash: [u8; 32], row: TokenRow) -> Result<bool, StoreError> {
        self.with(move |c| {
            c.execute(
                "INSERT INTO tokens (hash, kind, name, created, expires, scope)
                 SELECT ?1, 'long', ?2, ?3, ?4, ?5
                 WHERE NOT EXISTS (SELECT 1 FROM tokens WHERE kind = 'long' AND name = ?2)",
                params![hash.to_vec(), row.name, row.created, row.expires, row.scope],
            )
            .map(|n| n > 0)
        })
        .await
    }

    /// The token with this hash, if it exists and has not expired at `now`.
    pub async fn find_token(
        &self,
        hash: [u8; 32],
        now: f64,
    ) -> Result<Option<TokenRow>, StoreError> {
        self.with(move |c| {
            c.query_row(
                &format!(
                    "SELECT {TOKEN_COLUMNS} FROM tokens
                     WHERE hash = ?1 AND (expires IS NULL OR expires > ?2)"
                ),
                params![hash.to_vec(), now],
                |r| token_row(r, 0),
            )
            .optional()
        })
        .await
    }

    /// Deletes the token with this hash (logout).
    pub async fn delete_token(&self, hash: [u8; 32]) -> Result<bool, StoreError> {
        self.with(move |c| {
            c.execute("DELETE FROM tokens WHERE hash = ?1", [hash.to_vec()])
                .map(|n| n > 0)
        })
        .await
    }

    /// Long-lived tokens by name (then age), with the hash that identifies
    /// each (`lookout token list`).
    pub async fn long_tokens(&self) -> Result<Vec<([u8; 32], TokenRow)>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT hash, {TOKEN_COLUMNS} FROM tokens WHERE kind = 'long'
                 ORDER BY name, created"
            ))?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, token_row(r, 1)?)))?;
            Ok(with_hashes(rows.collect::<rusqlite::Result<_>>()?))
        })
        .await
    }

    /// Browser sessions and one-hour API tokens still valid at `now`, newest
    /// first, with the hash that identifies each (`lookout sessions list`).
    pub async fn short_tokens(&self, now: f64) -> Result<Vec<([u8; 32], TokenRow)>, StoreError> {
        self.with(move |c| {
            let mut stmt = c.prepare(&format!(
                "SELECT hash, {TOKEN_COLUMNS} FROM tokens
                 WHERE kind IN ('session', 'api') AND (expires IS NULL OR expires > ?1)
                 ORDER BY created DESC"
            ))?;
            let rows = stmt.query_map([now], |r| Ok((r.get(0)?, token_row(r, 1)?)))?;
            Ok(with_hashes(rows.collect::<rusqlite::Result<_>>()?))
        })
        .await
    }

    /// Deletes every browser session and one-hour API token (the password
    /// changed, or `lookout sessions revoke --all`); long-lived tokens stay.
    /// Returns how many were deleted.
    pub async fn delete_short_tokens(&self) -> Result<usize, StoreError> {
        self.with(|c| c.execute("DELETE FROM tokens WHERE kind IN ('session', 'api')", []))
            .await
    }

    /// Deletes expired sessions and API tokens.
    pub async fn prune_tokens(&self, now: f64) -> Result<usize, StoreError> {
        self.with(move |c| {
            c.execute(
                "DELETE FROM tokens WHERE expires IS NOT NULL AND expires <= ?1",
                [now],
            )
        })
        .await
    }
}

fn row_to_event(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredEvent> {
    let payload: String = r.get(3)?;
    Ok(StoredEvent {
        id: r.get(0)?,
        ts: r.get(1)?,
        kind: r.get(2)?,
        data: serde_json::from_str(&payload).unwrap_or(Value::Null),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn an_event_and_its_state_are_stored_together_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.set("count", "3".into()).await.unwrap();
        let state = || {
            vec![
                ("count".to_string(), "0".to_string()),
                ("other".to_string(), "0".to_string()),
            ]
        };
        let id = store
            .append_event_with_state(1.0, "reset", Some("cam"), &json!({"count": 0}), state())
            .await
            .unwrap();
        assert_eq!(store.get("count").await.unwrap().as_deref(), Some("0"));
        assert_eq!(store.get("other").await.unwrap().as_deref(), Some("0"));
        assert_eq!(store.last_event_id().await.unwrap(), id);
        // The event cannot be stored: the state change is rolled back.
        store.set("count", "5".into()).await.unwrap();
        store.set("other", "5".into()).await.unwrap();
        store
            .with(|c| c.execute_batch("DROP TABLE events;"))
            .await
            .unwrap();
        let failed = store
            .append_event_with_state(2.0, "reset", Some("cam"), &json!({"count": 0}), state())
            .await;
        assert!(failed.is_err());
        assert_eq!(store.get("count").await.unwrap().as_deref(), Some("5"));
        assert_eq!(store.get("other").await.unwrap().as_deref(), Some("5"));
    }

    /// The files in `dir` whose names start with `prefix`, sorted.
    fn names_starting(dir: &Path, prefix: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with(prefix))
            .collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn a_damaged_database_is_moved_aside_with_its_wal() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join(DB_FILE);
        let garbage = b"this is not a database, it is a shopping list".repeat(200);
        std::fs::write(&db, &garbage).unwrap();
        std::fs::write(dir.path().join("lookout.db-wal"), b"old wal").unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.set("k", "v".into()).await.unwrap();
        assert_eq!(store.get("k").await.unwrap().as_deref(), Some("v"));
        let aside = names_starting(dir.path(), "lookout.db.corrupt-");
        // The -shm file SQLite made while looking goes along.
        assert!((2..=3).contains(&aside.len()), "{aside:?}");
        let main = &aside[0];
        let wal = format!("{main}-wal");
        assert!(aside.contains(&wal), "{aside:?}");
        assert_eq!(std::fs::read(dir.path().join(main)).unwrap(), garbage);
        assert_eq!(std::fs::read(dir.path().join(wal)).unwrap(), b"old wal");
        drop(store);
        // A second damage in the same second gets its own name.
        std::fs::write(&db, &garbage).unwrap();
        std::fs::remove_file(dir.path().join("lookout.db-wal")).ok();
        std::fs::remove_file(dir.path().join("lookout.db-shm")).ok();
        Store::open(dir.path()).unwrap();
        let aside = names_starting(dir.path(), "lookout.db.corrupt-");
        let mains = aside
            .iter()
            .filter(|n| !n.ends_with("-shm") && !n.ends_with("-wal"));
        assert_eq!(mains.count(), 2, "{aside:?}");
    }

    #[tokio::test]
    async fn a_call_that_panics_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.set("k", "v".into()).await.unwrap();
        let failed = store
            .with(|_| -> rusqlite::Result<()> { panic!("a bug in one call") })
            .await;
        assert!(matches!(failed, Err(StoreError::Task(_))), "{failed:?}");
        // The thread and its connection are still there.
        assert_eq!(store.get("k").await.unwrap().as_deref(), Some("v"));
        store.set("k", "w".into()).await.unwrap();
        assert_eq!(store.get("k").await.unwrap().as_deref(), Some("w"));
    }

    #[tokio::test]
    async fn a_truncated_database_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for i in 0..200 {
            store
                .append_event(
                    f64::from(i),
                    "motion",
                    None,
                    &json!({"pad": "x".repeat(200)}),
                )
                .await
                .unwrap();
        }
        drop(store);
        let db = dir.path().join(DB_FILE);
        let len = std::fs::metadata(&db).unwrap().len();
        assert!(len > 16 * 1024, "{len}: checkpointed at close");
        std::fs::OpenOptions::new()
            .write(true)
            .open(&db)
            .unwrap()
            .set_len(len / 2)
            .unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.last_event_id().await.unwrap(), 0, "a fresh store");
        let aside = names_starting(dir.path(), "lookout.db.corrupt-");
        assert!(!aside.is_empty());
        assert!(
            aside.iter().all(|n| n.starts_with(&aside[0])),
            "one set: {aside:?}"
        );
    }

    #[tokio::test]
    async fn a_sound_database_is_not_moved() {
        let dir = tempfile::tempdir().unwrap();
        Store::open(dir.path()).unwrap();
        Store::open(dir.path()).unwrap();
        assert!(names_starting(dir.path(), "lookout.db.corrupt-").is_empty());
    }

    #[tokio::test]
    async fn event_ids_increase_when_the_clock_goes_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let t = 1_764_033_000.0;
        let mut ids = Vec::new();
        for ts in [t, t - 3600.0, t - 3599.0, t - 7200.0] {
            ids.push(
                store
                    .append_event(ts, "motion", Some("cam"), &json!({}))
                    .await
                    .unwrap(),
            );
        }
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        let replay = store.events_after(ids[0], 10, None).await.unwrap();
        assert_eq!(replay.iter().map(|e| e.id).collect::<Vec<_>>(), ids[1..]);
    }

    #[tokio::test]
    async fn state_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.get("trigger_count").await.unwrap(), None);
        store.set("trigger_count", "7".into()).await.unwrap();
        store.set("trigger_count", "8".into()).await.unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store.get("trigger_count").await.unwrap().as_deref(),
            Some("8")
        );
    }

    #[tokio::test]
    async fn events_replay_and_page() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for i in 0..10 {
            let kind = if i % 2 == 0 { "motion" } else { "reset" };
            let id = store
                .append_event(1000.0 + f64::from(i), kind, None, &json!({"i": i}))
                .await
                .unwrap();
            assert_eq!(id, i64::from(i) + 1);
        }
        let after = store.events_after(7, 100, None).await.unwrap();
        assert_eq!(after.iter().map(|e| e.id).collect::<Vec<_>>(), [8, 9, 10]);
        let capped = store.events_after(0, 3, None).await.unwrap();
        assert_eq!(capped.iter().map(|e| e.id).collect::<Vec<_>>(), [8, 9, 10]);
        let page = store
            .events_page(3, Some(9), Some("motion".into()), None)
            .await
            .unwrap();
        assert_eq!(page.iter().map(|e| e.id).collect::<Vec<_>>(), [7, 5, 3]);
        assert_eq!(page[0].data, json!({"i": 6}));
        assert_eq!(store.last_event_id().await.unwrap(), 10);
    }

    #[tokio::test]
    async fn prune_by_age_and_count() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for i in 0..10 {
            store
                .append_event(f64::from(i), "motion", None, &json!({}))
                .await
                .unwrap();
        }
        // Older than ts 2 goes by age; then only the newest 5 stay.
        assert_eq!(store.prune_events(12.0, 10.0, 5).await.unwrap(), 5);
        let left = store.events_page(100, None, None, None).await.unwrap();
        assert_eq!(
            left.iter().map(|e| e.id).collect::<Vec<_>>(),
            [10, 9, 8, 7, 6]
        );
    }

    #[tokio::test]
    async fn tokens_from_before_scopes_keep_full_control() {
        let dir = tempfile::tempdir().unwrap();
        {
            let old = Connection::open(dir.path().join(DB_FILE)).unwrap();
            old.execute_batch(
                "CREATE TABLE tokens (hash BLOB PRIMARY KEY, kind TEXT NOT NULL, name TEXT,
                     created REAL NOT NULL, expires REAL);
                 INSERT INTO tokens VALUES (x'01', 'long', 'ha', 1.0, NULL);",
            )
            .unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let row = store.find_token_raw(vec![1]).await;
        assert_eq!(row.scope, "control");
        assert_eq!(row.name.as_deref(), Some("ha"));
        // A second open finds the column and leaves it.
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.find_token_raw(vec![1]).await.scope, "control");
    }

    #[tokio::test]
    async fn a_long_token_name_is_added_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let row = |scope: &str| TokenRow {
            kind: "long".into(),
            name: Some("ha".into()),
            created: 1.0,
            expires: None,
            scope: scope.into(),
        };
        assert!(store.add_long_token([1; 32], row("read")).await.unwrap());
        assert!(!store.add_long_token([2; 32], row("control")).await.unwrap());
        let all = store.long_tokens().await.unwrap();
        assert_eq!(all, [([1; 32], row("read"))]);
    }

    impl Store {
        /// A token row by its stored hash, whatever its length.
        async fn find_token_raw(&self, hash: Vec<u8>) -> TokenRow {
            self.with(move |c| {
                c.query_row(
                    &format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE hash = ?1"),
                    [hash],
                    |r| token_row(r, 0),
                )
            })
            .await
            .unwrap()
        }
    }
}
