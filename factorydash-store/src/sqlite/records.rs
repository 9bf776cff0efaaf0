//! The SQLite store's device records (`0005_device_records.sql`): reads on a pooled reader
//! connection, writes on the writer connection, a put one transaction.

use chrono::DateTime;
use factorydash_core::records::{DeviceRecord, MAX_RECORDS};
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, Row};

use crate::StoreError;

/// Every record, by agent then device (byte order).
pub(super) fn all(c: &Connection) -> Result<Vec<DeviceRecord>, StoreError> {
    let mut stmt = c.prepare_cached(
        "SELECT agent, device, display_name, cell, description, ideal_cycle_time,
                updated_at, updated_by
         FROM device_records ORDER BY agent, device",
    )?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(crate::record_read_back(from_row(r)?)?);
    }
    Ok(out)
}

/// A record from its row; a column of the wrong type or a time out of range is
/// [`StoreError::Corrupt`].
fn from_row(r: &Row<'_>) -> Result<DeviceRecord, StoreError> {
    let agent = text(r, 0, "agent")?.unwrap_or_default();
    let device = text(r, 1, "device")?.unwrap_or_default();
    let what = format!("the record of {device} at {agent}");
    let corrupt = |m: String| StoreError::Corrupt(format!("{what}: {m}"));
    let ideal_cycle_time = match r.get_ref(5)? {
        ValueRef::Null => None,
        ValueRef::Real(v) => Some(v),
        // An integral REAL may come back as INTEGER where it was written by hand.
        ValueRef::Integer(v) => Some(v as f64),
        other => {
            return Err(corrupt(format!(
                "ideal_cycle_time is {:?}, not a number",
                other.data_type()
            )))
        }
    };
    let micros = match r.get_ref(6)? {
        ValueRef::Integer(v) => v,
        other => {
            return Err(corrupt(format!(
                "updated_at is {:?}, not an integer",
                other.data_type()
            )))
        }
    };
    let updated_at = DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| corrupt(format!("updated_at {micros} µs is out of range")))?;
    Ok(DeviceRecord {
        display_name: text(r, 2, "display_name")?,
        cell: text(r, 3, "cell")?,
        description: text(r, 4, "description")?,
        ideal_cycle_time,
        updated_at,
        updated_by: text(r, 7, "updated_by")?.unwrap_or_default(),
        agent,
        device,
    })
}

/// A text column (`None` for `NULL`); another type, or text that is not UTF-8, is
/// [`StoreError::Corrupt`].
fn text(r: &Row<'_>, i: usize, column: &str) -> Result<Option<String>, StoreError> {
    match r.get_ref(i)? {
        ValueRef::Null => Ok(None),
        ValueRef::Text(bytes) => String::from_utf8(bytes.to_vec())
            .map(Some)
            .map_err(|_| StoreError::Corrupt(format!("device_records.{column} is not UTF-8"))),
        other => Err(StoreError::Corrupt(format!(
            "device_records.{column} is {:?}, not text",
            other.data_type()
        ))),
    }
}

/// Adds or replaces `record` (checked by the caller), unless it is new and
/// [`MAX_RECORDS`] are kept already.
pub(super) fn put(c: &mut Connection, record: &DeviceRecord) -> Result<(), StoreError> {
    let tx = c.transaction()?;
    let kept = tx
        .prepare_cached("SELECT 1 FROM device_records WHERE agent = ?1 AND device = ?2")?
        .exists([&record.agent, &record.device])?;
    if !kept {
        let n: i64 = tx
            .prepare_cached("SELECT count(*) FROM device_records")?
            .query_row([], |r| r.get(0))?;
        if n >= MAX_RECORDS as i64 {
            return Err(crate::too_many_records());
        }
    }
    tx.prepare_cached(
        "INSERT INTO device_records (agent, device, display_name, cell, description,
             ideal_cycle_time, updated_at, updated_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (agent, device) DO UPDATE SET display_name = excluded.display_name,
             cell = excluded.cell, description = excluded.description,
             ideal_cycle_time = excluded.ideal_cycle_time,
             updated_at = excluded.updated_at, updated_by = excluded.updated_by",
    )?
    .execute(params![
        record.agent,
        record.device,
        record.display_name,
        record.cell,
        record.description,
        record.ideal_cycle_time,
        record.updated_at.timestamp_micros(),
        record.updated_by
    ])?;
    tx.commit()?;
    Ok(())
}

/// Removes the record of `device` at `agent`; `false` when there was none.
pub(super) fn remove(c: &Connection, agent: &str, device: &str) -> Result<bool, StoreError> {
    let n = c
        .prepare_cached("DELETE FROM device_records WHERE agent = ?1 AND device = ?2")?
        .execute([agent, device])?;
    Ok(n > 0)
}
