//! Online backups of an SQLite store, and their restore, on SQLite's online backup API
//! (<https://www.sqlite.org/backup.html>).
//!
//! [`backup`] copies a store's file while a `factorydash serve` writes it: every page in
//! one step, under one read transaction, so the copy is the database as of one commit
//! (observations, resume points and gaps agree: a `serve` started on the copy continues
//! each agent from where the copy says, and stores every observation once). In WAL mode
//! the writer is not blocked meanwhile. [`restore`] checks a copy and writes it into a
//! store's file that no process holds.

use std::path::Path;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::{blocking, connect, file, SCHEMA_VERSION};
use crate::StoreError;

/// What a backup or a restore copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    /// Database pages copied.
    pub pages: u64,
    /// The copy's bytes (pages × page size).
    pub bytes: u64,
    /// Its schema version (`PRAGMA user_version`).
    pub schema_version: i32,
    /// Observations it holds (the store's running count).
    pub observations: u64,
}

/// How many times a step that finds the source busy or locked is tried again (100 ms
/// apart) before the backup gives up.
const BUSY_TRIES: u32 = 100;

/// Copies the store's database file `source` (which a running `serve` may be writing)
/// into a new file `out`, made readable by its owner only (the process's umask).
///
/// # Errors
/// [`StoreError::Io`] when `source` does not exist or `out` already exists (never
/// overwritten) or cannot be made; [`StoreError::Sqlite`] when `source` is not a database
/// or SQLite fails (`SQLITE_BUSY` when `source` stayed locked by another connection for
/// 10 s); the error of [`check`] when `source` is not a factorydash store.
pub async fn backup(source: &Path, out: &Path) -> Result<Copied, StoreError> {
    let (source, out) = (source.to_owned(), out.to_owned());
    blocking(move || {
        let io = |path: &Path, source: std::io::Error| StoreError::Io {
            path: path.to_owned(),
            source,
        };
        if !source.is_file() {
            return Err(io(&source, std::io::ErrorKind::NotFound.into()));
        }
        // Made here, refused if it exists: SQLite would open (and overwrite) any file.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&out)
            .map_err(|e| io(&out, e))?;
        let copied = (|| {
            // Not created if missing; read only in effect (a backup writes nothing to it),
            // but opened read-write so that a WAL file without its `-shm` opens.
            let from = Connection::open_with_flags(
                &source,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            from.busy_timeout(std::time::Duration::from_secs(10))?;
            check(&from)?;
            let mut to = Connection::open(&out)?;
            copy_all(&from, &mut to)?;
            // The copy stands alone: one file, no write-ahead log beside it.
            to.pragma_update(None, "journal_mode", "DELETE")?;
            summary(&to)
        })();
        if copied.is_err() {
            let _ = std::fs::remove_file(&out);
        }
        copied
    })
    .await
}

/// Writes the backup `from` into the store's database file `target`, which no process may
/// hold (it is locked meanwhile): created if missing; replaced only when `replace` is
/// set. A copy of an older schema is migrated when a store next opens it.
///
/// # Errors
/// [`StoreError::Io`] when `target` exists and `replace` is not set, or a file cannot be
/// made; [`StoreError::Locked`] when a `serve` (or another store) holds `target`; the
/// error of [`check`] when `from` is not a whole factorydash store of a schema this build
/// knows; [`StoreError::Sqlite`] when SQLite fails.
pub async fn restore(from: &Path, target: &Path, replace: bool) -> Result<Copied, StoreError> {
    let (from, target) = (from.to_owned(), target.to_owned());
    blocking(move || {
        if !from.is_file() {
            return Err(StoreError::Io {
                path: from,
                source: std::io::ErrorKind::NotFound.into(),
            });
        }
        let backup = Connection::open_with_flags(
            &from,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        let found = check(&backup)?;
        let quick: String = backup.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
        if quick != "ok" {
            return Err(StoreError::NotAStore(format!(
                "{} is damaged: {quick}",
                from.display()
            )));
        }
        if target.exists() && !replace {
            return Err(StoreError::Io {
                path: target,
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "a store is there already (give --replace to overwrite it)",
                ),
            });
        }
        let _lock = file::prepare(&target)?;
        let mut conn = connect(&target)?;
        copy_all(&backup, &mut conn)?;
        let copied = summary(&conn)?;
        debug_assert_eq!(copied.schema_version, found);
        Ok(copied)
    })
    .await
}

/// Checks that `conn` holds a factorydash store of a schema this build knows, and returns
/// its version.
///
/// # Errors
/// [`StoreError::SchemaTooNew`] for a newer schema, [`StoreError::NotAStore`] for a
/// database without a factorydash schema.
pub fn check(conn: &Connection) -> Result<i32, StoreError> {
    let version: i32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found: version,
            known: SCHEMA_VERSION,
        });
    }
    let has_counts: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'counts')",
        [],
        |r| r.get(0),
    )?;
    if version < 1 || !has_counts {
        return Err(StoreError::NotAStore(
            "the file holds no factorydash store".to_owned(),
        ));
    }
    Ok(version)
}

/// Every page of `from` into `to`, in one step (one read transaction of `from`).
fn copy_all(from: &Connection, to: &mut Connection) -> Result<(), StoreError> {
    let backup = Backup::new(from, to)?;
    for _ in 0..BUSY_TRIES {
        match backup.step(-1)? {
            StepResult::Done => return Ok(()),
            StepResult::More | StepResult::Busy | StepResult::Locked => {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            _ => std::thread::sleep(std::time::Duration::from_millis(100)),
        }
    }
    Err(StoreError::Sqlite(rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
        Some("the database stayed busy for 10 s; try again".to_owned()),
    )))
}

fn summary(conn: &Connection) -> Result<Copied, StoreError> {
    let pages: i64 = conn.pragma_query_value(None, "page_count", |r| r.get(0))?;
    let size: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
    let schema_version: i32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let observations: i64 = conn.query_row("SELECT observations FROM counts", [], |r| r.get(0))?;
    Ok(Copied {
        pages: pages.max(0) as u64,
        bytes: (pages.max(0) as u64) * (size.max(0) as u64),
        schema_version,
        observations: observations.max(0) as u64,
    })
}
