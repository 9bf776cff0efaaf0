//! The SQLite store's reasons for stops and settings (`0007_reasons_and_settings.sql`):
//! reads on a pooled reader connection, writes on the writer connection.

use chrono::{DateTime, Utc};
use factorydash_core::reasons::StopReason;
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, Row};

use crate::StoreError;

/// Adds or replaces `reason` (checked by the caller).
pub(super) fn put(c: &Connection, reason: &StopReason) -> Result<(), StoreError> {
    c.prepare_cached(
        "INSERT INTO stop_reasons (agent, device, began, item, reason, comment, given_at,
             given_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (agent, device, began, item) DO UPDATE SET reason = excluded.reason,
             comment = excluded.comment, given_at = excluded.given_at,
             given_by = excluded.given_by",
    )?
    .execute(params![
        reason.agent,
        reason.device,
        reason.began.timestamp_micros(),
        reason.item,
        reason.reason,
        reason.comment,
        reason.given_at.timestamp_micros(),
        reason.given_by
    ])?;
    Ok(())
}

/// The reasons of `device` at `agent` whose stops began in `[from, to)` (µs since the
/// epoch), by start then item, at most `limit`.
pub(super) fn list(
    c: &Connection,
    agent: &str,
    device: &str,
    from: i64,
    to: i64,
    limit: usize,
) -> Result<Vec<StopReason>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT agent, device, began, item, reason, comment, given_at, given_by
         FROM stop_reasons
         WHERE agent = ?1 AND device = ?2 AND began >= ?3 AND began < ?4
         ORDER BY began, item LIMIT ?5",
    )?;
    let mut rows = stmt.query(params![agent, device, from, to, limit as i64])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(crate::reason_read_back(from_row(r)?)?);
    }
    Ok(out)
}

/// Drops the reasons of stops begun before `cutoff` (µs since the epoch).
pub(super) fn prune(c: &Connection, cutoff: i64) -> Result<u64, StoreError> {
    Ok(
        c.prepare_cached("DELETE FROM stop_reasons WHERE began < ?1")?
            .execute([cutoff])? as u64,
    )
}

/// A reason from its row; a column of the wrong type or a time out of range is
/// [`StoreError::Corrupt`].
fn from_row(r: &Row<'_>) -> Result<StopReason, StoreError> {
    Ok(StopReason {
        agent: text(r, 0, "agent")?.unwrap_or_default(),
        device: text(r, 1, "device")?.unwrap_or_default(),
        began: time(r, 2, "began")?,
        item: text(r, 3, "item")?.unwrap_or_default(),
        reason: text(r, 4, "reason")?.unwrap_or_default(),
        comment: text(r, 5, "comment")?,
        given_at: time(r, 6, "given_at")?,
        given_by: text(r, 7, "given_by")?.unwrap_or_default(),
    })
}

/// A time column (µs since the epoch, UTC).
fn time(r: &Row<'_>, i: usize, column: &str) -> Result<DateTime<Utc>, StoreError> {
    match r.get_ref(i)? {
        ValueRef::Integer(v) => DateTime::from_timestamp_micros(v).ok_or_else(|| {
            StoreError::Corrupt(format!("stop_reasons.{column} {v} µs is out of range"))
        }),
        other => Err(StoreError::Corrupt(format!(
            "stop_reasons.{column} is {:?}, not an integer",
            other.data_type()
        ))),
    }
}

/// A text column (`None` for `NULL`); another type, or text that is not UTF-8, is
/// [`StoreError::Corrupt`].
fn text(r: &Row<'_>, i: usize, column: &str) -> Result<Option<String>, StoreError> {
    match r.get_ref(i)? {
        ValueRef::Null => Ok(None),
        ValueRef::Text(bytes) => String::from_utf8(bytes.to_vec())
            .map(Some)
            .map_err(|_| StoreError::Corrupt(format!("stop_reasons.{column} is not UTF-8"))),
        other => Err(StoreError::Corrupt(format!(
            "stop_reasons.{column} is {:?}, not text",
            other.data_type()
        ))),
    }
}

/// The setting under `key`, if any.
pub(super) fn setting(c: &Connection, key: &str) -> Result<Option<crate::Setting>, StoreError> {
    let mut stmt =
        c.prepare_cached("SELECT value, updated_at, updated_by FROM settings WHERE key = ?1")?;
    let mut rows = stmt.query([key])?;
    let Some(r) = rows.next()? else {
        return Ok(None);
    };
    Ok(Some(crate::Setting {
        value: text(r, 0, "value")?.unwrap_or_default(),
        updated_at: time(r, 1, "updated_at")?,
        updated_by: text(r, 2, "updated_by")?.unwrap_or_default(),
    }))
}

/// Keeps `setting` under `key`, or removes it.
pub(super) fn put_setting(
    c: &Connection,
    key: &str,
    setting: Option<&crate::Setting>,
) -> Result<(), StoreError> {
    match setting {
        Some(s) => {
            c.prepare_cached(
                "INSERT INTO settings (key, value, updated_at, updated_by) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value,
                     updated_at = excluded.updated_at, updated_by = excluded.updated_by",
            )?
            .execute(params![
                key,
                s.value,
                s.updated_at.timestamp_micros(),
                s.updated_by
            ])?;
        }
        None => {
            c.prepare_cached("DELETE FROM settings WHERE key = ?1")?
                .execute([key])?;
        }
    }
    Ok(())
}

/// Keeps `entries` in the outbox (checked by the caller), in one transaction; their ids,
/// in order.
pub(super) fn queue_outbox(
    c: &mut Connection,
    entries: &[crate::OutboxEntry],
) -> Result<Vec<i64>, StoreError> {
    let tx = c.transaction()?;
    let mut ids = Vec::with_capacity(entries.len());
    {
        let mut insert = tx
            .prepare_cached("INSERT INTO outbox (receiver, body, queued_at) VALUES (?1, ?2, ?3)")?;
        for e in entries {
            insert.execute(params![e.receiver, e.body, e.queued_at.timestamp_micros()])?;
            ids.push(tx.last_insert_rowid());
        }
    }
    tx.commit()?;
    Ok(ids)
}

/// The first `limit` entries of `receiver` not confirmed, by id.
pub(super) fn pending_outbox(
    c: &Connection,
    receiver: &str,
    limit: usize,
) -> Result<Vec<crate::OutboxEntry>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT id, receiver, body, queued_at FROM outbox WHERE receiver = ?1 ORDER BY id LIMIT ?2",
    )?;
    let mut rows = stmt.query(params![receiver, limit as i64])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(crate::OutboxEntry {
            id: r.get(0)?,
            receiver: r.get(1)?,
            body: r.get(2)?,
            queued_at: time(r, 3, "queued_at")?,
        });
    }
    Ok(out)
}

/// Drops entry `id` (confirmed, or given up); an id not there is no error.
pub(super) fn confirm_outbox(c: &Connection, id: i64) -> Result<(), StoreError> {
    c.prepare_cached("DELETE FROM outbox WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}
