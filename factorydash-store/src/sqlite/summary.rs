//! The summaries on SQLite (`0006_summaries.sql`): cells added to in the append's
//! transaction, held states, questions answered from the cells.

use std::collections::{BTreeMap, HashMap};

use chrono::{TimeZone, Utc};
use factorydash_core::summary::{self, Cell, FoldOutput, Held, Measure, SummaryTotal};
use rusqlite::{params, Connection, OptionalExtension};

use crate::summaries::Totals;
use crate::{StoreError, SummaryQuery};

/// Cells written by one statement of [`UPSERT_MANY`].
const CELLS_PER_STATEMENT: usize = 64;

/// The upsert of [`CELLS_PER_STATEMENT`] cells.
static UPSERT_MANY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let rows: Vec<&str> = vec!["(?, ?, ?, ?, ?, ?, ?)"; CELLS_PER_STATEMENT];
    format!(
        "INSERT INTO summary_cells (resolution, period, sdevice, item, measure, state, value)
         VALUES {}
         ON CONFLICT DO UPDATE SET value = value + excluded.value",
        rows.join(", ")
    )
});

/// The id of a device's summary (made on first use).
pub(super) fn device_id(tx: &Connection, agent: &str, device: &str) -> rusqlite::Result<i64> {
    let found: Option<i64> = tx
        .prepare_cached("SELECT id FROM summary_devices WHERE agent = ?1 AND device = ?2")?
        .query_row(params![agent, device], |r| r.get(0))
        .optional()?;
    if let Some(id) = found {
        return Ok(id);
    }
    tx.prepare_cached("INSERT INTO summary_devices (agent, device) VALUES (?1, ?2)")?
        .execute(params![agent, device])?;
    Ok(tx.last_insert_rowid())
}

/// A device's held states.
pub(super) fn held(tx: &Connection, id: i64) -> Result<Vec<Held>, StoreError> {
    let mut stmt = tx.prepare_cached(
        "SELECT key, state, since, count, counted FROM summary_held WHERE sdevice = ?1",
    )?;
    let rows = stmt.query_map([id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, Option<f64>>(3)?,
            r.get::<_, Option<i64>>(4)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (key, state, since, count, counted) = row?;
        let time = |t: i64| {
            Utc.timestamp_micros(t)
                .single()
                .ok_or_else(|| StoreError::Corrupt(format!("summary_held time {t}")))
        };
        out.push(Held {
            key,
            state,
            since: time(since)?,
            count,
            counted: counted.map(time).transpose()?,
        });
    }
    Ok(out)
}

/// Adds `cells` to device `id`'s summary and writes its held states; returns the cells
/// written.
pub(super) fn write(
    tx: &Connection,
    id: i64,
    cells: &BTreeMap<Cell, f64>,
    output: Option<&FoldOutput>,
) -> Result<u64, StoreError> {
    // Rows of CELLS_PER_STATEMENT in one statement (a statement's own cost, bind and
    // step, is a good part of a small row's), the rest one by one. A batch's cells are
    // distinct keys (a map's), so no row is updated twice by one statement.
    let entries: Vec<(&Cell, &f64)> = cells.iter().collect();
    let mut chunks = entries.chunks_exact(CELLS_PER_STATEMENT);
    if chunks.len() > 0 {
        let mut many = tx.prepare_cached(&UPSERT_MANY)?;
        for chunk in chunks.by_ref() {
            let mut values: Vec<rusqlite::types::ToSqlOutput<'_>> =
                Vec::with_capacity(CELLS_PER_STATEMENT * 7);
            for (c, v) in chunk {
                use rusqlite::types::{ToSqlOutput, Value, ValueRef};
                values.extend([
                    ToSqlOutput::Owned(Value::Integer(c.resolution.code())),
                    ToSqlOutput::Owned(Value::Integer(c.period)),
                    ToSqlOutput::Owned(Value::Integer(id)),
                    ToSqlOutput::Borrowed(ValueRef::Text(c.item.as_bytes())),
                    ToSqlOutput::Borrowed(ValueRef::Text(c.measure.as_str().as_bytes())),
                    ToSqlOutput::Borrowed(ValueRef::Text(c.state.as_bytes())),
                    ToSqlOutput::Owned(Value::Real(**v)),
                ]);
            }
            many.execute(rusqlite::params_from_iter(values))?;
        }
    }
    let mut upsert = tx.prepare_cached(
        "INSERT INTO summary_cells (resolution, period, sdevice, item, measure, state, value)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT DO UPDATE SET value = value + excluded.value",
    )?;
    for (c, v) in chunks.remainder() {
        upsert.execute(params![
            c.resolution.code(),
            c.period,
            id,
            c.item,
            c.measure.as_str(),
            c.state,
            v
        ])?;
    }
    if let Some(out) = output {
        let mut delete =
            tx.prepare_cached("DELETE FROM summary_held WHERE sdevice = ?1 AND key = ?2")?;
        for key in &out.delete {
            delete.execute(params![id, key])?;
        }
        let mut put = tx.prepare_cached(
            "INSERT OR REPLACE INTO summary_held (sdevice, key, state, since, count, counted)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for h in &out.put {
            put.execute(params![
                id,
                h.key,
                h.state,
                h.since.timestamp_micros(),
                h.count,
                h.counted.map(|c| c.timestamp_micros())
            ])?;
        }
    }
    Ok(cells.len() as u64)
}

/// [`Store::summary`](crate::Store::summary): the closed periods by pieces, then the
/// states still open.
pub(super) fn query(c: &Connection, q: &SummaryQuery) -> Result<Vec<SummaryTotal>, StoreError> {
    let tx = c.unchecked_transaction()?;
    // Every device's summary id and name (a few thousand rows at most).
    let mut names: HashMap<i64, (String, String)> = HashMap::new();
    {
        let mut stmt = tx.prepare_cached("SELECT id, agent, device FROM summary_devices")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        for row in rows {
            let (id, agent, device): (i64, String, String) = row?;
            let wanted = q
                .devices
                .as_ref()
                .is_none_or(|ds| ds.iter().any(|d| d.agent == agent && d.device == device));
            if wanted {
                names.insert(id, (agent, device));
            }
        }
    }
    let mut totals = Totals::default();
    let pieces = summary::pieces(&q.ranges);
    let mut add = |rows: &mut rusqlite::Rows<'_>| -> Result<(), StoreError> {
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            let Some((agent, device)) = names.get(&id) else {
                continue;
            };
            let measure: String = r.get(2)?;
            // A measure a later build keeps: not this build's to read.
            let Ok(measure) = measure.parse::<Measure>() else {
                continue;
            };
            let item: String = r.get(1)?;
            let state: String = r.get(3)?;
            totals.add(agent, device, &item, measure, &state, r.get(4)?);
        }
        Ok(())
    };
    // Each device's own runs of periods, by the primary key (device first).
    let mut stmt = tx.prepare_cached(
        "SELECT sdevice, item, measure, state, SUM(value) FROM summary_cells
         WHERE sdevice = ?1 AND resolution = ?2 AND period >= ?3 AND period < ?4
         GROUP BY item, measure, state",
    )?;
    let ids: Vec<i64> = names.keys().copied().collect();
    for id in ids {
        for p in &pieces {
            let mut rows = stmt.query(params![id, p.resolution.code(), p.from, p.to])?;
            add(&mut rows)?;
        }
    }
    // The edge minutes' seconds from their hours' ramps (see `Resolution::Ramp`): the
    // rate's changes since the hour began, each times its time to the part's end less
    // that to its start.
    let ramps = summary::ramp_pieces(&pieces);
    let mut stmt = tx.prepare_cached(
        "SELECT sdevice, item, measure, state,
                SUM(value * (MAX(?5 - period, 0) - MAX(?4 - period, 0))) / 1e6
         FROM summary_cells
         WHERE sdevice = ?1 AND resolution = ?2 AND period >= ?3 AND period < ?5
         GROUP BY item, measure, state",
    )?;
    for id in names.keys().copied().collect::<Vec<_>>() {
        for r in &ramps {
            let code = summary::Resolution::Ramp.code();
            let mut rows = stmt.query(params![id, code, r.hour, r.from, r.to])?;
            add(&mut rows)?;
        }
    }
    for (id, (agent, device)) in &names {
        let held = held(&tx, *id)?;
        for t in summary::open_totals(agent, device, &held, &q.ranges, q.until(agent, &held)) {
            totals.add_total(t);
        }
    }
    Ok(totals.into_totals())
}

/// Drops cells of periods that end before `cutoff` (Unix seconds), and ramps of hours
/// that end before it, device by device (by the primary key, never a scan of the table),
/// a device per transaction.
pub(super) fn prune(c: &mut Connection, cutoff: i64) -> Result<u64, StoreError> {
    let ids: Vec<i64> = c
        .prepare("SELECT id FROM summary_devices")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut n = 0;
    for id in ids {
        let tx = c.transaction()?;
        for r in summary::RESOLUTIONS {
            n += tx.execute(
                "DELETE FROM summary_cells WHERE sdevice = ?1 AND resolution = ?2 AND period <= ?3",
                params![id, r.code(), cutoff - r.seconds()],
            )? as u64;
        }
        n += tx.execute(
            "DELETE FROM summary_cells WHERE sdevice = ?1 AND resolution = ?2 AND period < ?3",
            params![
                id,
                summary::Resolution::Ramp.code(),
                summary::Resolution::Hour
                    .floor(cutoff)
                    .saturating_mul(1_000_000)
            ],
        )? as u64;
        tx.commit()?;
    }
    Ok(n)
}

/// Drops cells of periods starting at or after `from` (Unix seconds; ramps at or after
/// it) and every held state.
pub(super) fn clear(c: &mut Connection, from: i64) -> Result<(), StoreError> {
    let tx = c.transaction()?;
    tx.execute(
        "DELETE FROM summary_cells
         WHERE CASE WHEN resolution = 0 THEN period >= ?2 ELSE period >= ?1 END",
        params![from, from.saturating_mul(1_000_000)],
    )?;
    tx.execute("DELETE FROM summary_held", [])?;
    tx.commit()?;
    Ok(())
}
