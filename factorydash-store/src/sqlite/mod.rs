//! The SQLite store: one file, nothing to set up, kept across restarts (the default of the
//! factorydash server).
//!
//! ```no_run
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), factorydash_store::StoreError> {
//! use factorydash_store::{sqlite::SqliteStore, Store};
//!
//! let store = SqliteStore::open("factorydash-data/factorydash.db").await?;
//! println!("{} observations", store.observation_count().await?);
//! # Ok(()) }
//! ```
//!
//! # Behavior
//! - **Durability.** The file is in WAL mode with `synchronous=NORMAL`: a commit is
//!   written to the write-ahead log but not flushed to disk on every commit. After a
//!   crash of the process nothing committed is lost; after a power cut or an OS crash the
//!   last commits (at most those since the last checkpoint) may be lost, but the file is
//!   never corrupt. A batch, the latest values and the agent's resume point are committed
//!   in one transaction, so whatever is lost is lost together: the resume point is never
//!   past what is stored, and ingest reads the lost part again (exactly once).
//! - **Connections.** One writer connection behind a mutex, and a pool of up to
//!   [`READERS`] reader connections (WAL lets them read while the writer writes). Every
//!   SQLite call runs on tokio's blocking threads (`spawn_blocking`), never on the async
//!   runtime's workers.
//! - **One process.** Opening takes an exclusive advisory lock (`flock`) on the database
//!   file itself, held as long as the store lives: a second factorydash on the same file,
//!   by whatever path (a hard or symbolic link too), is refused with
//!   [`StoreError::Locked`]. The lock does not meet SQLite's own (`fcntl`) locks, except
//!   on NFS, where SQLite does not belong anyway. A second store of the same file in one
//!   process is refused before it opens the file (closing a descriptor of a file drops
//!   the process's `fcntl` locks on it, SQLite's included).
//! - **Private files.** The database and its `-wal` and `-shm` files are their owner's
//!   only (`0600`), in a directory the store creates owner-only (`0700`); existing files
//!   others may read are brought back to that, with a warning.
//! - **Layout.** Each data item (device, agent, `dataItemId`: a device is its agent and
//!   its name, [`DeviceKey`]) and each of its series (its
//!   component, name, category, type and subType; one unless they changed) is stored once;
//!   an observation row is its run (agent and `instanceId`), sequence, series, timestamp
//!   (microseconds since the Unix epoch, UTC) and value (an `INTEGER` or `REAL` where the text is exactly that number's
//!   canonical text, `TEXT` otherwise, `NULL` for `UNAVAILABLE`). Condition states are
//!   kept in a table of their own, by time. Agents are their URLs without credentials;
//!   the credentials of agents added at run time are in a table of their own. Schema:
//!   `0001_initial.sql` and the migrations after it (`0002_device_identity.sql`,
//!   `0003_agent_credentials.sql`, `0004_accounts.sql`, `0005_device_records.sql`, `0006_summaries.sql`,
//!   `0007_reasons_and_settings.sql`), its
//!   version in `PRAGMA user_version`.
//! - **Accounts.** Users, groups (their scope rules a JSON array of texts), group
//!   members, credentials (digests only) and the audit log are tables of the same file
//!   ([`AccountStore`](crate::AccountStore)); foreign keys are enforced on every
//!   connection (`PRAGMA foreign_keys = ON`), so removing a user removes their
//!   credentials and memberships.
//! - **Device records.** One row per device (agent, device) in `device_records`
//!   ([`Store::device_records`]), in the same file.
//! - **Retention.** [`Store::prune`] deletes whole UTC days in chunks of
//!   [`PRUNE_CHUNK`] rows, one short transaction each: readers go on (WAL) and appends
//!   interleave.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use factorydash_core::downsample::Bucket;
use factorydash_core::reasons::StopReason;
use factorydash_core::records::DeviceRecord;
use factorydash_core::states::StateSummary;
use factorydash_core::{
    Batch, DeviceInfo, DeviceKey, Gap, Observation, Page, PageRequest, ResumePoint, TimeWindow,
};
use rusqlite::{Connection, OpenFlags};

use crate::{
    AgentObservation, AppendOutcome, ConfiguredAgent, Credentials, LatestFilter, SeriesChunk,
    SeriesKey, Store, StoreError,
};

mod accounts;
pub mod backup;
mod file;
mod read;
mod reasons;
mod records;
mod summary;
mod write;

/// The schema migrations, in order; migration `i` brings the schema to version `i + 1`.
const MIGRATIONS: [&str; 9] = [
    include_str!("0001_initial.sql"),
    include_str!("0002_device_identity.sql"),
    include_str!("0003_agent_credentials.sql"),
    include_str!("0004_accounts.sql"),
    include_str!("0005_device_records.sql"),
    include_str!("0006_summaries.sql"),
    include_str!("0007_reasons_and_settings.sql"),
    include_str!("0008_outbox.sql"),
    include_str!("0009_summary_ramps.sql"),
];

/// The names of [`MIGRATIONS`], in the same order.
const MIGRATION_NAMES: [&str; 9] = [
    "0001_initial.sql",
    "0002_device_identity.sql",
    "0003_agent_credentials.sql",
    "0004_accounts.sql",
    "0005_device_records.sql",
    "0006_summaries.sql",
    "0007_reasons_and_settings.sql",
    "0008_outbox.sql",
    "0009_summary_ramps.sql",
];

/// What [`SqliteStore::open`] would change in the schema of the file at `path`, found
/// without changing anything (the file is not created, locked or written).
///
/// # Errors
/// [`StoreError::SchemaTooNew`] when a newer build wrote it; [`StoreError::Io`] when it
/// does not exist; [`StoreError::Sqlite`] when it is not a database.
pub async fn migration_plan(path: impl AsRef<Path>) -> Result<crate::MigrationPlan, StoreError> {
    let path = path.as_ref().to_owned();
    blocking(move || {
        if !path.is_file() {
            return Err(StoreError::Io {
                path,
                source: std::io::ErrorKind::NotFound.into(),
            });
        }
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        let found: i32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                found,
                known: SCHEMA_VERSION,
            });
        }
        Ok(crate::MigrationPlan {
            found,
            known: SCHEMA_VERSION,
            pending: MIGRATION_NAMES[found.max(0) as usize..].to_vec(),
        })
    })
    .await
}

/// The schema version this build writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// The most reader connections kept open.
pub const READERS: usize = 4;

/// The most observation rows one prune transaction deletes.
pub const PRUNE_CHUNK: usize = 5000;

/// The most bytes of the file each connection maps into memory (`PRAGMA mmap_size`).
const MMAP_BYTES: i64 = 1 << 30;

/// How long a connection waits for a lock held by another connection before
/// `SQLITE_BUSY`, in milliseconds.
const BUSY_TIMEOUT_MS: u32 = 5000;

/// A [`Store`] in one SQLite file (see the [module docs](self)).
pub struct SqliteStore {
    shared: Arc<Shared>,
}

struct Shared {
    path: PathBuf,
    writer: Mutex<write::Writer>,
    readers: Mutex<Vec<Connection>>,
    /// Observations stored, as in the `counts` table (kept by every append and prune).
    count: AtomicU64,
    /// The exclusive lock on the file, released when the store is dropped, after every
    /// connection (fields drop in order).
    _lock: file::FileLock,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.shared.path)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs `f` on tokio's blocking threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("a blocking SQLite task was cancelled: {e}"),
        },
    }
}

/// Writes `s` as a JSON string (RFC 8259: `"` and `\` escaped, control characters as
/// `\u00XX`), for SQLite's `json_each`.
fn push_json_string(out: &mut String, s: &str) {
    use std::fmt::Write;
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c < ' ' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A JSON array of `items`' texts: `["a","b"]`.
fn json_array(items: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    let mut out = String::from("[");
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_string(&mut out, item.as_ref());
    }
    out.push(']');
    out
}

/// `devices` as a JSON array of `[agent, device]` pairs, for the allow-lists of
/// [`read::latest_page`] and [`read::conditions`] (`json_each`, one parameter however
/// many devices).
fn json_devices(devices: &[DeviceKey]) -> String {
    let mut out = String::from("[");
    for (i, d) in devices.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('[');
        push_json_string(&mut out, &d.agent);
        out.push(',');
        push_json_string(&mut out, &d.device);
        out.push(']');
    }
    out.push(']');
    out
}

/// Opens a connection on `path` with the store's settings.
fn connect(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    if conn.is_readonly(rusqlite::MAIN_DB)? {
        return Err(StoreError::ReadOnly {
            path: path.to_owned(),
        });
    }
    conn.busy_timeout(std::time::Duration::from_millis(BUSY_TIMEOUT_MS.into()))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // The accounts' tables cascade (a user's credentials and memberships go with them).
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // What is deleted from a page that is written anyway is overwritten with zeros
    // (credentials replaced or removed leave no trace in the b-tree pages), at no cost in
    // I/O.
    conn.pragma_update(None, "secure_delete", "FAST")?;
    // Reads of long windows go through memory-mapped pages rather than a read(2) a page,
    // and each connection caches 16 MiB of pages.
    conn.pragma_update(None, "mmap_size", MMAP_BYTES)?;
    conn.pragma_update(None, "cache_size", -16_384)?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

/// Brings the schema of `conn` to [`SCHEMA_VERSION`].
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let found: i32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    // Version 3 takes the passwords out of the URLs: what they were written in is zeroed,
    // not left in free pages or the write-ahead log.
    let moves_credentials = (1..3).contains(&found);
    if moves_credentials {
        conn.pragma_update(None, "secure_delete", "ON")?;
    }
    migrate_in_transaction(conn)?;
    if moves_credentials {
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        conn.pragma_update(None, "secure_delete", "FAST")?;
    }
    Ok(())
}

fn migrate_in_transaction(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let found: i32 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            known: SCHEMA_VERSION,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        tx.execute_batch(sql)?;
        if i + 1 == 3 {
            move_credentials(&tx)?;
        }
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}

/// Version 3's move of the credentials out of the URLs written before it (see
/// `0003_agent_credentials.sql` for what happens where two URLs become one).
fn move_credentials(tx: &rusqlite::Transaction<'_>) -> Result<(), StoreError> {
    use std::collections::{HashMap, HashSet};
    // configured_agents: the one added last (highest rowid) of each URL keeps it.
    let rows: Vec<(i64, String)> = tx
        .prepare("SELECT rowid, url FROM configured_agents ORDER BY rowid DESC")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut kept: HashSet<String> = HashSet::new();
    for (rowid, url) in rows {
        let (bare, credentials) = crate::split_credentials(&url);
        if !kept.insert(bare.to_string()) {
            tx.execute("DELETE FROM configured_agents WHERE rowid = ?1", [rowid])?;
            continue;
        }
        let Some(c) = credentials else { continue };
        // The URL without credentials may still be held by a row added earlier: it goes.
        tx.execute(
            "DELETE FROM configured_agents WHERE url = ?1 AND rowid <> ?2",
            rusqlite::params![bare, rowid],
        )?;
        tx.execute(
            "UPDATE configured_agents SET url = ?1 WHERE rowid = ?2",
            rusqlite::params![bare, rowid],
        )?;
        tx.execute(
            "INSERT INTO agent_credentials (url, username, password) VALUES (?1, ?2, ?3)",
            rusqlite::params![bare, c.username(), c.password()],
        )?;
    }
    // agents: each URL without credentials goes to one agent (the one that had none, else
    // the first seen); the others of that URL are told apart by their number.
    let rows: Vec<(i64, String)> = tx
        .prepare("SELECT id, url FROM agents ORDER BY id")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut groups: HashMap<String, Vec<(i64, bool)>> = HashMap::new();
    for (id, url) in &rows {
        let (bare, credentials) = crate::split_credentials(url);
        groups
            .entry(bare.into_owned())
            .or_default()
            .push((*id, credentials.is_some()));
    }
    let mut renames = Vec::new();
    for (bare, agents) in groups {
        if agents.iter().all(|(_, had)| !had) {
            continue;
        }
        let keeper = agents.iter().find(|(_, had)| !had).unwrap_or(&agents[0]).0;
        for (id, _) in agents {
            if id == keeper {
                renames.push((id, bare.clone()));
            } else {
                renames.push((id, format!("{bare}#agent-{id}")));
            }
        }
    }
    // Apart first, so that no URL is held twice on the way.
    for (id, url) in renames.iter().filter(|(_, u)| u.contains("#agent-")) {
        tx.execute(
            "UPDATE agents SET url = ?1 WHERE id = ?2",
            rusqlite::params![url, id],
        )?;
    }
    for (id, url) in renames.iter().filter(|(_, u)| !u.contains("#agent-")) {
        tx.execute(
            "UPDATE agents SET url = ?1 WHERE id = ?2",
            rusqlite::params![url, id],
        )?;
    }
    Ok(())
}

pub use file::lock_path;

impl SqliteStore {
    /// Opens (creating it if missing) the database file at `path`, locks it and migrates
    /// the schema to this build's version. A missing directory is created, readable by
    /// its owner only (an existing one is left as it is); a new file is made readable and
    /// writable by its owner only (`0600`, which SQLite gives its `-wal` and `-shm` files
    /// too), and an existing file, `-wal` or `-shm` that group or others may read is
    /// brought back to its owner's permissions (with a warning in the log).
    ///
    /// The lock is on the file itself (see the [module docs](self)): the same file by
    /// another path (a hard or symbolic link) is refused as well.
    ///
    /// # Errors
    /// [`StoreError::Locked`] when another process (or another store of this one) holds
    /// the file, or an older factorydash holds its `<path>.lock`; [`StoreError::Io`] when
    /// the directory or the file cannot be created or locked;
    /// [`StoreError::ReadOnly`] when the file cannot be written;
    /// [`StoreError::SchemaTooNew`] when the file was written by a newer build;
    /// [`StoreError::Sqlite`] when the file is not a database or SQLite fails.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_owned();
        blocking(move || Self::open_blocking(path)).await
    }

    fn open_blocking(path: PathBuf) -> Result<Self, StoreError> {
        let lock = file::prepare(&path)?;
        let mut conn = connect(&path)?;
        migrate(&mut conn)?;
        let count: i64 = conn.query_row("SELECT observations FROM counts", [], |r| r.get(0))?;
        Ok(SqliteStore {
            shared: Arc::new(Shared {
                path,
                writer: Mutex::new(write::Writer::new(conn)),
                readers: Mutex::new(Vec::new()),
                count: AtomicU64::new(count.max(0) as u64),
                _lock: lock,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// The bytes the database takes on disk (page count × page size, after a checkpoint
    /// of the write-ahead log into the file): observations, indexes and everything else.
    ///
    /// # Errors
    /// A database error.
    pub async fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.write(|w| {
            w.conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            let pages: i64 = w
                .conn
                .pragma_query_value(None, "page_count", |r| r.get(0))?;
            let size: i64 = w.conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
            Ok((pages * size) as u64)
        })
        .await
    }

    /// Runs `f` on a reader connection, on a blocking thread.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let shared = self.shared.clone();
        blocking(move || {
            let pooled = lock(&shared.readers).pop();
            let conn = match pooled {
                Some(c) => c,
                None => connect(&shared.path)?,
            };
            let result = f(&conn);
            let mut pool = lock(&shared.readers);
            if pool.len() < READERS {
                pool.push(conn);
            }
            result
        })
        .await
    }

    /// Runs `f` with the writer connection, on a blocking thread.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut write::Writer) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let shared = self.shared.clone();
        blocking(move || f(&mut lock(&shared.writer))).await
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn put_devices(&self, agent: &str, devices: &[DeviceInfo]) -> Result<(), StoreError> {
        let (agent, devices) = (agent.to_owned(), devices.to_vec());
        self.write(move |w| w.put_devices(&agent, &devices)).await
    }

    async fn devices(&self) -> Result<Vec<DeviceInfo>, StoreError> {
        self.read(read::devices).await
    }

    async fn append(&self, batch: &Batch) -> Result<AppendOutcome, StoreError> {
        crate::check_range(batch)?;
        let batch = batch.clone();
        let shared = self.shared.clone();
        self.write(move |w| {
            let outcome = w.append(&batch)?;
            shared.count.fetch_add(outcome.inserted, Ordering::Relaxed);
            Ok(outcome)
        })
        .await
    }

    async fn resume_point(&self, agent: &str) -> Result<Option<ResumePoint>, StoreError> {
        let agent = agent.to_owned();
        self.read(move |c| read::resume_point(c, &agent)).await
    }

    async fn instances(&self, agent: &str, limit: usize) -> Result<Vec<ResumePoint>, StoreError> {
        let agent = agent.to_owned();
        self.read(move |c| read::instances(c, &agent, limit)).await
    }

    async fn record_gap(&self, gap: &Gap) -> Result<(), StoreError> {
        let gap = gap.clone();
        self.write(move |w| w.record_gap(&gap)).await
    }

    async fn withdraw_open_gaps(&self, agent: &str, instance_id: u64) -> Result<u64, StoreError> {
        let agent = agent.to_owned();
        self.write(move |w| w.withdraw_open_gaps(&agent, instance_id))
            .await
    }

    async fn gaps(&self) -> Result<Vec<Gap>, StoreError> {
        self.read(read::gaps).await
    }

    async fn latest(
        &self,
        filter: &LatestFilter,
        page: &PageRequest,
    ) -> Result<Page<AgentObservation>, StoreError> {
        crate::check_devices(filter.devices.as_deref())?;
        let (filter, page) = (filter.clone(), page.clone());
        self.read(move |c| read::latest_page(c, &filter, None, &page))
            .await
    }

    async fn as_of(
        &self,
        filter: &LatestFilter,
        at: DateTime<Utc>,
        page: &PageRequest,
    ) -> Result<Page<AgentObservation>, StoreError> {
        crate::check_devices(filter.devices.as_deref())?;
        let (filter, page) = (filter.clone(), page.clone());
        self.read(move |c| read::latest_page(c, &filter, Some(at), &page))
            .await
    }

    async fn series(
        &self,
        device: &DeviceKey,
        data_item_id: &str,
        window: &TimeWindow,
        limit: usize,
    ) -> Result<Vec<Observation>, StoreError> {
        let (device, item, window) = (device.clone(), data_item_id.to_owned(), *window);
        self.read(move |c| read::series(c, &device, &item, &window, limit))
            .await
    }

    async fn series_after(
        &self,
        device: &DeviceKey,
        data_item_id: &str,
        window: &TimeWindow,
        after: Option<SeriesKey>,
        limit: usize,
    ) -> Result<SeriesChunk, StoreError> {
        let (device, item, window) = (device.clone(), data_item_id.to_owned(), *window);
        self.read(move |c| read::series_after(c, &device, &item, &window, after, limit))
            .await
    }

    async fn buckets(
        &self,
        device: &DeviceKey,
        data_item_id: &str,
        window: &TimeWindow,
        n: usize,
    ) -> Result<Vec<Bucket>, StoreError> {
        let (device, item, window) = (device.clone(), data_item_id.to_owned(), *window);
        self.read(move |c| read::buckets(c, &device, &item, &window, n))
            .await
    }

    async fn last_before(
        &self,
        device: &DeviceKey,
        data_item_id: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<Observation>, StoreError> {
        let (device, item) = (device.clone(), data_item_id.to_owned());
        self.read(move |c| read::last_before(c, &device, &item, at))
            .await
    }

    async fn conditions(
        &self,
        devices: Option<&[DeviceKey]>,
        window: &TimeWindow,
        after: Option<(DateTime<Utc>, u64, &str)>,
        limit: usize,
    ) -> Result<Vec<AgentObservation>, StoreError> {
        crate::check_devices(devices)?;
        let (devices, window) = (devices.map(json_devices), *window);
        let after = after.map(|(ts, sequence, agent)| (ts, sequence, agent.to_owned()));
        self.read(move |c| {
            let after = after.as_ref().map(|(ts, s, a)| (*ts, *s, a.as_str()));
            read::conditions(c, devices.as_deref(), &window, after, limit)
        })
        .await
    }

    async fn state_summary(
        &self,
        device: &DeviceKey,
        data_item_id: &str,
        window: &TimeWindow,
        after: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<StateSummary, StoreError> {
        let (device, item, window) = (device.clone(), data_item_id.to_owned(), *window);
        self.read(move |c| read::state_summary(c, &device, &item, &window, after, limit))
            .await
    }

    async fn summary(
        &self,
        query: &crate::SummaryQuery,
    ) -> Result<Vec<factorydash_core::summary::SummaryTotal>, StoreError> {
        crate::check_summary_query(query)?;
        let query = query.clone();
        self.read(move |c| summary::query(c, &query)).await
    }

    async fn prune_summaries(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        let micros = cutoff.timestamp_micros();
        let cutoff = cutoff.timestamp();
        self.write(move |w| {
            reasons::prune(&w.conn, micros)?;
            summary::prune(&mut w.conn, cutoff)
        })
        .await
    }

    async fn setting(&self, key: &str) -> Result<Option<crate::Setting>, StoreError> {
        let key = key.to_owned();
        self.read(move |c| reasons::setting(c, &key)).await
    }

    async fn put_setting(
        &self,
        key: &str,
        setting: Option<&crate::Setting>,
    ) -> Result<(), StoreError> {
        crate::check_setting(key, setting)?;
        let (key, setting) = (key.to_owned(), setting.cloned());
        self.write(move |w| reasons::put_setting(&w.conn, &key, setting.as_ref()))
            .await
    }

    async fn queue_outbox(&self, entries: &[crate::OutboxEntry]) -> Result<Vec<i64>, StoreError> {
        crate::check_outbox(entries)?;
        let entries = entries.to_vec();
        self.write(move |w| reasons::queue_outbox(&mut w.conn, &entries))
            .await
    }

    async fn pending_outbox(
        &self,
        receiver: &str,
        limit: usize,
    ) -> Result<Vec<crate::OutboxEntry>, StoreError> {
        let receiver = receiver.to_owned();
        let limit = limit.min(crate::MAX_OUTBOX_READ);
        self.read(move |c| reasons::pending_outbox(c, &receiver, limit))
            .await
    }

    async fn confirm_outbox(&self, id: i64) -> Result<(), StoreError> {
        self.write(move |w| reasons::confirm_outbox(&w.conn, id))
            .await
    }

    async fn put_stop_reason(&self, reason: &StopReason) -> Result<(), StoreError> {
        crate::check_reason(reason)?;
        let reason = reason.clone();
        self.write(move |w| reasons::put(&w.conn, &reason)).await
    }

    async fn stop_reasons(
        &self,
        agent: &str,
        device: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<StopReason>, StoreError> {
        let (agent, device) = (agent.to_owned(), device.to_owned());
        let (from, to) = (from.timestamp_micros(), to.timestamp_micros());
        self.read(move |c| reasons::list(c, &agent, &device, from, to, crate::MAX_STOP_REASONS))
            .await
    }

    async fn rebuild_summaries(
        &self,
        from: DateTime<Utc>,
    ) -> Result<crate::RebuildOutcome, StoreError> {
        crate::summaries::rebuild(self, from).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| Ok(c.query_row("SELECT 1", [], |_| Ok(()))?))
            .await
    }

    async fn configured_agents(&self) -> Result<Vec<ConfiguredAgent>, StoreError> {
        self.read(read::configured_agents).await
    }

    async fn device_records(&self) -> Result<Vec<DeviceRecord>, StoreError> {
        self.read(records::all).await
    }

    async fn put_device_record(&self, record: &DeviceRecord) -> Result<(), StoreError> {
        crate::check_record(record)?;
        let record = record.clone();
        self.write(move |w| records::put(&mut w.conn, &record))
            .await
    }

    async fn remove_device_record(&self, agent: &str, device: &str) -> Result<bool, StoreError> {
        let (agent, device) = (agent.to_owned(), device.to_owned());
        self.write(move |w| records::remove(&w.conn, &agent, &device))
            .await
    }

    async fn put_configured_agent(&self, agent: &ConfiguredAgent) -> Result<(), StoreError> {
        let (url, credentials) = crate::split_credentials(&agent.url);
        let (url, paused) = (url.into_owned(), agent.paused);
        self.write(move |w| {
            let tx = w.conn.transaction()?;
            tx.execute(
                "INSERT INTO configured_agents (url, paused) VALUES (?1, ?2)
                 ON CONFLICT (url) DO UPDATE SET paused = excluded.paused",
                rusqlite::params![url, paused],
            )?;
            if let Some(c) = credentials {
                tx.execute(
                    "INSERT INTO agent_credentials (url, username, password) VALUES (?1, ?2, ?3)
                     ON CONFLICT (url) DO UPDATE SET username = excluded.username,
                                                     password = excluded.password",
                    rusqlite::params![url, c.username(), c.password()],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn remove_configured_agent(&self, url: &str) -> Result<bool, StoreError> {
        let url = crate::split_credentials(url).0.into_owned();
        self.write(move |w| {
            let tx = w.conn.transaction()?;
            let removed = tx.execute("DELETE FROM configured_agents WHERE url = ?1", [&url])?;
            tx.execute("DELETE FROM agent_credentials WHERE url = ?1", [&url])?;
            tx.commit()?;
            Ok(removed > 0)
        })
        .await
    }

    async fn agent_credentials(&self, url: &str) -> Result<Option<Credentials>, StoreError> {
        let url = crate::split_credentials(url).0.into_owned();
        self.read(move |c| {
            use rusqlite::OptionalExtension;
            Ok(c.query_row(
                "SELECT username, password FROM agent_credentials WHERE url = ?1",
                [url],
                |r| Ok(Credentials::new(r.get::<_, String>(0)?, r.get(1)?)),
            )
            .optional()?)
        })
        .await
    }

    /// Constant cost: a counter kept by every append and prune (stored in the file with
    /// them), not a count of rows.
    async fn observation_count(&self) -> Result<u64, StoreError> {
        Ok(self.shared.count.load(Ordering::Relaxed))
    }

    async fn prune(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        // Whole days: everything before midnight UTC of the cutoff's day.
        let cutoff = cutoff
            .date_naive()
            .and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .timestamp_micros();
        let all_series: Vec<i64> = self.read(read::all_series).await?;
        let mut dropped = 0u64;
        for series in all_series {
            loop {
                let shared = self.shared.clone();
                let n = self
                    .write(move |w| {
                        let n = w.prune_chunk(series, cutoff)?;
                        shared.count.fetch_sub(n, Ordering::Relaxed);
                        Ok(n)
                    })
                    .await?;
                dropped += n;
                if n < PRUNE_CHUNK as u64 {
                    break;
                }
            }
        }
        while self
            .write(move |w| w.prune_conditions_chunk(cutoff))
            .await?
            >= PRUNE_CHUNK as u64
        {}
        Ok(dropped)
    }
}

#[async_trait]
impl crate::summaries::SummaryWriter for SqliteStore {
    async fn clear_summaries(&self, from: i64) -> Result<(), StoreError> {
        self.write(move |w| {
            w.forget_summaries();
            summary::clear(&mut w.conn, from)
        })
        .await
    }

    async fn write_summary(
        &self,
        agent: &str,
        device: &str,
        cells: std::collections::BTreeMap<factorydash_core::summary::Cell, f64>,
        output: Option<factorydash_core::summary::FoldOutput>,
    ) -> Result<u64, StoreError> {
        let (agent, device) = (agent.to_owned(), device.to_owned());
        self.write(move |w| {
            w.forget_summaries();
            let tx = w.conn.transaction()?;
            let id = summary::device_id(&tx, &agent, &device)?;
            let n = summary::write(&tx, id, &cells, output.as_ref())?;
            tx.commit()?;
            Ok(n)
        })
        .await
    }
}
