//! The reads, each on a pooled reader connection.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use factorydash_core::downsample::{Bucket, BucketFold};
use factorydash_core::states::{StateFold, StateSummary};
use factorydash_core::{
    Category, ConditionLevel, ConditionState, DataItemInfo, DeviceInfo, DeviceKey, Gap,
    Observation, Page, PageRequest, ResumePoint, TimeWindow, Value,
};
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::{
    latest_after, latest_page_of, AgentObservation, ConfiguredAgent, LatestFilter, SeriesChunk,
    SeriesKey, StoreError,
};

/// The columns [`observation`] reads, from `o` (observations or latest), `i` (items),
/// `s` (series) and `c` (conditions or latest).
const OBS: &str = "o.sequence, o.ts, i.device, s.component_id, i.data_item_id, s.name, \
                   s.category, s.kind, s.sub_type, o.value, c.level, c.native_code, \
                   c.native_severity, c.qualifier";

/// Observations with their data item, series and condition state: `filter` is the
/// `WHERE` (on `o.series`, see [`Of`], and `o.ts`) and the order.
fn history(filter: &str) -> String {
    format!(
        "SELECT {OBS} FROM observations o JOIN series s ON s.id = o.series
         JOIN items i ON i.id = s.item
         LEFT JOIN conditions c ON c.ts = o.ts AND c.sequence = o.sequence AND c.run = o.run
         WHERE {filter}"
    )
}

/// Which observation rows are a data item's, as a condition on `o.series` with its
/// parameter `?1`: its one series (the index's first column, read in order), or, where
/// its shape changed, all of its series (read and sorted).
struct Of {
    condition: &'static str,
    param: i64,
    /// The data item's series.
    series: Vec<i64>,
}

impl Of {
    fn item(c: &Connection, item: i64) -> rusqlite::Result<Of> {
        let series: Vec<i64> = c
            .prepare_cached("SELECT id FROM series WHERE item = ?1 ORDER BY id")?
            .query_map([item], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(match series.as_slice() {
            [one] => Of {
                condition: "o.series = ?1",
                param: *one,
                series,
            },
            _ => Of {
                condition: "o.series IN (SELECT id FROM series WHERE item = ?1)",
                param: item,
                series,
            },
        })
    }

    /// The data item's newest observation stamped `op` (`<` or `<=`) `at`: one index
    /// probe per series.
    fn newest(&self, c: &Connection, op: &str, at: i64) -> rusqlite::Result<Option<Observation>> {
        let mut probe = c.prepare_cached(&history(&format!(
            "o.series = ?1 AND o.ts {op} ?2 ORDER BY o.ts DESC, o.sequence DESC LIMIT 1"
        )))?;
        let mut found = None;
        for &series in &self.series {
            let held = probe
                .query_row(params![series, at], observation)
                .optional()?;
            found = newer(found, held);
        }
        Ok(found)
    }
}

/// A timestamp from microseconds since the Unix epoch, UTC.
fn at(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The value of a value column (see [`super::write::value_to_sql`]).
fn value(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Unavailable,
        ValueRef::Integer(i) => Value::Text(i.to_string()),
        ValueRef::Real(f) => Value::Text(format!("{f}")),
        ValueRef::Text(t) | ValueRef::Blob(t) => Value::Text(String::from_utf8_lossy(t).into()),
    }
}

/// Reads an observation selected with [`OBS`].
fn observation(r: &Row<'_>) -> rusqlite::Result<Observation> {
    let category: String = r.get(6)?;
    let level: Option<String> = r.get(10)?;
    Ok(Observation {
        sequence: r.get::<_, i64>(0)? as u64,
        timestamp: at(r.get(1)?),
        device: r.get(2)?,
        component_id: r.get(3)?,
        data_item_id: r.get(4)?,
        name: r.get(5)?,
        category: category.parse().unwrap_or(Category::Event),
        kind: r.get(7)?,
        sub_type: r.get(8)?,
        value: value(r.get_ref(9)?),
        condition: match level.and_then(|l| l.parse::<ConditionLevel>().ok()) {
            Some(level) => Some(ConditionState {
                level,
                native_code: r.get(11)?,
                native_severity: r.get(12)?,
                qualifier: r.get(13)?,
            }),
            None => None,
        },
    })
}

fn item_id(
    c: &Connection,
    device: &DeviceKey,
    data_item_id: &str,
) -> rusqlite::Result<Option<i64>> {
    c.prepare_cached(
        "SELECT id FROM items
         WHERE device = ?1 AND agent_id = (SELECT id FROM agents WHERE url = ?2)
           AND data_item_id = ?3",
    )?
    .query_row([&device.device, &device.agent, data_item_id], |r| r.get(0))
    .optional()
}

/// Every series' id.
pub(super) fn all_series(c: &Connection) -> Result<Vec<i64>, StoreError> {
    let mut stmt = c.prepare("SELECT id FROM series ORDER BY id")?;
    let ids = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(ids)
}

/// The newer by (timestamp, sequence) of two candidates.
fn newer(a: Option<Observation>, b: Option<Observation>) -> Option<Observation> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if (b.timestamp, b.sequence) > (a.timestamp, a.sequence) {
            b
        } else {
            a
        }),
        (a, b) => a.or(b),
    }
}

/// Whether `i`'s (agent, device) is in the allow-list `?6`: a JSON array of `[agent,
/// device]` pairs (see `json_devices`).
const ALLOWED_6: &str = "(i.agent_id, i.device) IN (
    SELECT a.id, json_extract(f.value, '$[1]') FROM json_each(?6) f
    JOIN agents a ON a.url = json_extract(f.value, '$[0]'))";

/// [`Store::latest`](crate::Store::latest) (`at` is `None`) and
/// [`Store::as_of`](crate::Store::as_of): the data items in (device, agent, `dataItemId`) order
/// after the cursor, read one at a time until a page (plus one) passes the filter; as of
/// `at`, each one's newest observation at or before it (one index probe), the latest value
/// standing in where retention dropped the history.
pub(super) fn latest_page(
    c: &Connection,
    filter: &LatestFilter,
    at_time: Option<DateTime<Utc>>,
    page: &PageRequest,
) -> Result<Page<AgentObservation>, StoreError> {
    let after = latest_after(page)?;
    let limit = page.effective_limit();
    let (after_device, after_agent, after_item) = match &after {
        Some((d, a, i)) => (Some(d.as_str()), Some(*a), Some(i.as_str())),
        None => (None, None, None),
    };
    let tx = c.unchecked_transaction()?;
    // Conditions written only when they apply, so that the planner seeks the items'
    // (device, agent, dataItemId) index to the cursor instead of scanning from the start.
    let mut conditions = vec!["true"];
    if filter.device.is_some() {
        conditions.push("i.device = ?1");
    }
    if filter.agent.is_some() {
        conditions.push("i.agent_id = (SELECT id FROM agents WHERE url = ?5)");
    }
    if after.is_some() {
        conditions.push("(i.device, i.agent_id, i.data_item_id) > (?2, ?3, ?4)");
    }
    // The allow-list: a JSON array of [agent, device] pairs, the agents' ids looked up
    // once (an uncorrelated subquery, made into a temporary index).
    let devices = filter.devices.as_deref().map(super::json_devices);
    if devices.is_some() {
        conditions.push(ALLOWED_6);
    }
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {OBS}, i.id, coalesce(a.url, ''), i.agent_id FROM items i
         JOIN latest o ON o.item = i.id
         JOIN series s ON s.id = o.series JOIN latest c ON c.item = i.id
         LEFT JOIN agents a ON a.id = i.agent_id
         WHERE {} AND ?1 IS ?1 AND ?2 IS ?2 AND ?3 IS ?3 AND ?4 IS ?4 AND ?5 IS ?5
           AND ?6 IS ?6
         ORDER BY i.device, i.agent_id, i.data_item_id",
        conditions.join(" AND ")
    ))?;
    let mut rows = stmt.query(params![
        filter.device,
        after_device,
        after_agent,
        after_item,
        filter.agent,
        devices
    ])?;
    // The allow-list is applied in SQL: the rest of the filter here.
    let rest = LatestFilter {
        devices: None,
        ..filter.clone()
    };
    let mut items = Vec::with_capacity(limit + 1);
    while let Some(row) = rows.next()? {
        let latest = observation(row)?;
        let agent: String = row.get(15)?;
        let agent_no: i64 = row.get(16)?;
        let o = match at_time {
            None => latest,
            Some(at_time) => {
                let item: i64 = row.get(14)?;
                let held = Of::item(&tx, item)?.newest(&tx, "<=", at_time.timestamp_micros())?;
                let latest = (latest.timestamp <= at_time).then_some(latest);
                match newer(held, latest) {
                    Some(o) => o,
                    None => continue,
                }
            }
        };
        if rest.matches(&agent, &o) {
            items.push((
                agent_no,
                AgentObservation {
                    agent,
                    observation: o,
                },
            ));
            if items.len() > limit {
                break;
            }
        }
    }
    Ok(latest_page_of(items, limit))
}

pub(super) fn series(
    c: &Connection,
    device: &DeviceKey,
    data_item_id: &str,
    window: &TimeWindow,
    limit: usize,
) -> Result<Vec<Observation>, StoreError> {
    let Some(item) = item_id(c, device, data_item_id)? else {
        return Ok(Vec::new());
    };
    let of = Of::item(c, item)?;
    let mut stmt = c.prepare_cached(&history(&format!(
        "{} AND o.ts >= ?2 AND o.ts < ?3 ORDER BY o.ts, o.sequence LIMIT ?4",
        of.condition
    )))?;
    let out = stmt
        .query_map(
            params![
                of.param,
                window.from().timestamp_micros(),
                window.to().timestamp_micros(),
                limit.min(i64::MAX as usize) as i64
            ],
            observation,
        )?
        .collect::<rusqlite::Result<_>>()?;
    Ok(out)
}

/// [`Store::series_after`](crate::Store::series_after): per series of the data item (usually
/// one), a range of its index (series, ts, sequence) from the start key, `limit + 1` rows
/// at most ([`series_after_sql`]); where the data item has several series, their rows
/// merged by key and cut to `limit + 1` again.
pub(super) fn series_after(
    c: &Connection,
    device: &DeviceKey,
    data_item_id: &str,
    window: &TimeWindow,
    after: Option<SeriesKey>,
    limit: usize,
) -> Result<SeriesChunk, StoreError> {
    let limit = limit.max(1);
    let Some(item) = item_id(c, device, data_item_id)? else {
        return Ok(SeriesChunk::default());
    };
    let (from, sequence, instance) = crate::series_start(window, after);
    let tx = c.unchecked_transaction()?;
    let mut stmt = tx.prepare_cached(&series_after_sql())?;
    let mut rows: Vec<(SeriesKey, Observation)> = Vec::new();
    let of = Of::item(&tx, item)?;
    for &series in &of.series {
        let read = stmt.query_map(
            params![
                series,
                from.timestamp_micros(),
                sequence,
                instance,
                window.to().timestamp_micros(),
                (limit + 1).min(i64::MAX as usize) as i64,
            ],
            |r| {
                let o = observation(r)?;
                let key = SeriesKey {
                    timestamp: o.timestamp,
                    sequence: o.sequence,
                    instance_id: r.get::<_, i64>(14)? as u64,
                };
                Ok((key, o))
            },
        )?;
        for row in read {
            rows.push(row?);
        }
    }
    rows.sort_by_key(|(key, _)| *key);
    rows.truncate(limit + 1);
    Ok(crate::series_chunk(rows, limit))
}

/// One series' observations after the start key (`?2` ts, `?3` sequence, `?4`
/// instanceId) and before `?5`, at most `?6`, in no particular order (the caller sorts
/// them): the inner query reads the range `(ts, sequence) >= (?2, ?3)` of the index
/// (series, ts, sequence) in its order, sorting only the rows of one (ts, sequence) by
/// instanceId, and stops at `?6`; the series and item (one row each, `s.id = ?1`) and the
/// condition state are joined to those rows only.
fn series_after_sql() -> String {
    format!(
        "SELECT {OBS}, o.instance_id FROM (
             SELECT o.run, o.sequence, o.ts, o.series, o.value, r.instance_id
             FROM observations o JOIN runs r ON r.id = o.run
             WHERE o.series = ?1 AND (o.ts, o.sequence) >= (?2, ?3) AND o.ts < ?5
               AND (o.ts, o.sequence, r.instance_id) > (?2, ?3, ?4)
             ORDER BY o.ts, o.sequence, r.instance_id LIMIT ?6
         ) o
         JOIN series s ON s.id = o.series JOIN items i ON i.id = s.item
         LEFT JOIN conditions c ON c.ts = o.ts AND c.sequence = o.sequence AND c.run = o.run
         WHERE s.id = ?1"
    )
}

/// [`Store::buckets`](crate::Store::buckets) in one pass over the data item's index,
/// reading (timestamp, sequence, run, value) in the index's (timestamp, `sequence`) order
/// and folding each number or `UNAVAILABLE` into its bucket with core's [`BucketFold`]:
/// memory bounded by the buckets, not the window. The rare rows of two instances at one
/// (timestamp, `sequence`), adjacent in that order, are folded by `instanceId` as the
/// other stores do (their runs' instances looked up only then), rather than joining every
/// row to its run and sorting.
pub(super) fn buckets(
    c: &Connection,
    device: &DeviceKey,
    data_item_id: &str,
    window: &TimeWindow,
    n: usize,
) -> Result<Vec<Bucket>, StoreError> {
    let (from, to) = (window.from(), window.to());
    if n == 0 || to <= from {
        return Ok(Vec::new());
    }
    let Some(item) = item_id(c, device, data_item_id)? else {
        return Ok(Vec::new());
    };
    let of = Of::item(c, item)?;
    let mut stmt = c.prepare_cached(&format!(
        "SELECT o.ts, o.sequence, o.run, o.value FROM observations o
         WHERE {} AND o.ts >= ?2 AND o.ts < ?3 ORDER BY o.ts, o.sequence",
        of.condition
    ))?;
    let mut rows = stmt.query(params![
        of.param,
        from.timestamp_micros(),
        to.timestamp_micros()
    ])?;
    let mut fold = BucketFold::new(from, to, n);
    // The rows of one (ts, sequence) so far: (run, value).
    let mut at_once: Vec<(i64, Option<f64>)> = Vec::new();
    let mut key: Option<(i64, i64)> = None;
    let mut instances: HashMap<i64, i64> = HashMap::new();
    while let Some(row) = rows.next()? {
        let v = match row.get_ref(3)? {
            ValueRef::Null => None,
            ValueRef::Integer(i) => Some(i as f64),
            ValueRef::Real(f) => Some(f),
            ValueRef::Text(t) => match std::str::from_utf8(t).ok().and_then(|t| t.parse().ok()) {
                Some(v) => Some(v),
                None => continue,
            },
            ValueRef::Blob(_) => continue,
        };
        let row_key = (row.get(0)?, row.get(1)?);
        if key != Some(row_key) {
            if let Some((ts, _)) = key {
                fold_at_once(c, &mut fold, at(ts), &mut at_once, &mut instances)?;
            }
            key = Some(row_key);
        }
        at_once.push((row.get(2)?, v));
    }
    if let Some((ts, _)) = key {
        fold_at_once(c, &mut fold, at(ts), &mut at_once, &mut instances)?;
    }
    Ok(fold.finish())
}

/// Folds the values of one (timestamp, sequence), `at_once` as (run, value), in the order
/// of their runs' `instanceId`s (looked up into `instances` when there are several), and
/// empties it. Non-finite numbers are left out by the fold.
fn fold_at_once(
    c: &Connection,
    fold: &mut BucketFold,
    t: DateTime<Utc>,
    at_once: &mut Vec<(i64, Option<f64>)>,
    instances: &mut HashMap<i64, i64>,
) -> rusqlite::Result<()> {
    if at_once.len() > 1 {
        let mut keyed = Vec::with_capacity(at_once.len());
        for &(run, v) in at_once.iter() {
            let instance = match instances.get(&run) {
                Some(&i) => i,
                None => {
                    let i: i64 = c
                        .prepare_cached("SELECT instance_id FROM runs WHERE id = ?1")?
                        .query_row([run], |r| r.get(0))?;
                    instances.insert(run, i);
                    i
                }
            };
            keyed.push((instance, v));
        }
        keyed.sort_by_key(|&(instance, _)| instance);
        for (_, v) in keyed {
            fold.push(t, v);
        }
    } else if let Some(&(_, v)) = at_once.first() {
        fold.push(t, v);
    }
    at_once.clear();
    Ok(())
}

pub(super) fn last_before(
    c: &Connection,
    device: &DeviceKey,
    data_item_id: &str,
    at_time: DateTime<Utc>,
) -> Result<Option<Observation>, StoreError> {
    let Some(item) = item_id(c, device, data_item_id)? else {
        return Ok(None);
    };
    let at_micros = at_time.timestamp_micros();
    let held = Of::item(c, item)?.newest(c, "<", at_micros)?;
    // Pruned history: the latest value still tells the state if it is older than `at`.
    let latest = c
        .prepare_cached(&format!(
            "SELECT {OBS} FROM latest o JOIN items i ON i.id = o.item
             JOIN series s ON s.id = o.series JOIN latest c ON c.item = o.item
             WHERE o.item = ?1 AND o.ts < ?2"
        ))?
        .query_row(params![item, at_micros], observation)
        .optional()?;
    Ok(newer(held, latest))
}

/// Ties between agents (equal timestamp and sequence) go by the agent's row id. `devices`:
/// the allow-list as a JSON array of `[agent, device]` pairs (see `json_devices`), `None`
/// for every device.
pub(super) fn conditions(
    c: &Connection,
    devices: Option<&str>,
    window: &TimeWindow,
    after: Option<(DateTime<Utc>, u64, &str)>,
    limit: usize,
) -> Result<Vec<AgentObservation>, StoreError> {
    let (after_ts, after_sequence, after_agent) = match after {
        Some((ts, sequence, agent)) => (
            Some(ts.timestamp_micros()),
            sequence.min(i64::MAX as u64) as i64,
            Some(agent),
        ),
        None => (None, 0, None),
    };
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {OBS}, a.url FROM conditions c
         JOIN observations o ON o.run = c.run AND o.sequence = c.sequence
         JOIN items i ON i.id = c.item JOIN series s ON s.id = o.series
         JOIN runs r ON r.id = c.run JOIN agents a ON a.id = r.agent_id
         WHERE c.ts >= ?1 AND c.ts < ?2
           AND (?3 IS NULL OR (a.id, i.device) IN (
                SELECT da.id, json_extract(f.value, '$[1]') FROM json_each(?3) f
                JOIN agents da ON da.url = json_extract(f.value, '$[0]')))
           AND (?4 IS NULL OR (c.ts, c.sequence, a.id) >
                (?4, ?5, coalesce((SELECT id FROM agents WHERE url = ?7), 9223372036854775807)))
         ORDER BY c.ts, c.sequence, a.id LIMIT ?6"
    ))?;
    let out = stmt
        .query_map(
            params![
                window.from().timestamp_micros(),
                window.to().timestamp_micros(),
                devices,
                after_ts,
                after_sequence,
                limit.min(i64::MAX as usize) as i64,
                after_agent,
            ],
            |r| {
                Ok(AgentObservation {
                    observation: observation(r)?,
                    agent: r.get(14)?,
                })
            },
        )?
        .collect::<rusqlite::Result<_>>()?;
    Ok(out)
}

/// [`Store::state_summary`](crate::Store::state_summary): the window's (timestamp, value)
/// pairs folded as they are read ([`StateFold`]), in one read transaction.
pub(super) fn state_summary(
    c: &Connection,
    device: &DeviceKey,
    data_item_id: &str,
    window: &TimeWindow,
    after: Option<DateTime<Utc>>,
    limit: usize,
) -> Result<StateSummary, StoreError> {
    let tx = c.unchecked_transaction()?;
    let before = last_before(&tx, device, data_item_id, window.from())?;
    let mut fold = StateFold::new(*window, before.as_ref().map(|o| &o.value), after, limit);
    if let Some(item) = item_id(&tx, device, data_item_id)? {
        let of = Of::item(&tx, item)?;
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT o.ts, o.value FROM observations o WHERE {} AND o.ts >= ?2 AND o.ts < ?3
             ORDER BY o.ts, o.sequence",
            of.condition
        ))?;
        let mut rows = stmt.query(params![
            of.param,
            window.from().timestamp_micros(),
            window.to().timestamp_micros()
        ])?;
        while let Some(row) = rows.next()? {
            fold.push(at(row.get(0)?), &value(row.get_ref(1)?));
        }
    }
    Ok(fold.finish())
}

pub(super) fn resume_point(c: &Connection, agent: &str) -> Result<Option<ResumePoint>, StoreError> {
    Ok(c.query_row(
        "SELECT instance_id, next_sequence FROM agents WHERE url = ?1 AND instance_id IS NOT NULL",
        [agent],
        |r| {
            Ok(ResumePoint {
                agent: agent.to_owned(),
                instance_id: r.get::<_, i64>(0)? as u64,
                next_sequence: r.get::<_, i64>(1)? as u64,
            })
        },
    )
    .optional()?)
}

/// [`Store::instances`](crate::Store::instances): each run's highest stored sequence, one
/// probe of the observations' key (run, sequence) per run.
pub(super) fn instances(
    c: &Connection,
    agent: &str,
    limit: usize,
) -> Result<Vec<ResumePoint>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let mut stmt = c.prepare(
        "SELECT r.instance_id, (SELECT max(o.sequence) FROM observations o WHERE o.run = r.id)
         FROM runs r JOIN agents a ON a.id = r.agent_id
         WHERE a.url = ?1 ORDER BY r.instance_id DESC",
    )?;
    let rows = stmt.query_map([agent], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, Option<i64>>(1)?))
    })?;
    let mut points = Vec::new();
    for row in rows {
        let (instance_id, last) = row?;
        if let Some(last) = last {
            points.push(ResumePoint {
                agent: agent.to_owned(),
                instance_id: instance_id as u64,
                next_sequence: last as u64 + 1,
            });
        }
        if points.len() == limit {
            break;
        }
    }
    Ok(points)
}

pub(super) fn gaps(c: &Connection) -> Result<Vec<Gap>, StoreError> {
    let mut stmt = c.prepare(
        "SELECT a.url, g.instance_id, g.from_sequence, g.to_sequence FROM gaps g
         JOIN agents a ON a.id = g.agent_id ORDER BY g.id",
    )?;
    let gaps = stmt
        .query_map([], |r| {
            Ok(Gap {
                agent: r.get(0)?,
                instance_id: r.get::<_, i64>(1)? as u64,
                from: r.get::<_, i64>(2)? as u64,
                to: r.get::<_, Option<i64>>(3)?.map(|t| t as u64),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(gaps)
}

pub(super) fn devices(c: &Connection) -> Result<Vec<DeviceInfo>, StoreError> {
    let tx = c.unchecked_transaction()?;
    let mut by_device: HashMap<(i64, String), Vec<DataItemInfo>> = HashMap::new();
    let mut stmt = tx.prepare(
        "SELECT agent_id, device, id, name, category, kind, sub_type, units, component, component_id, component_name
         FROM data_items ORDER BY agent_id, device, ordinal",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let category: String = r.get(4)?;
        by_device
            .entry((r.get(0)?, r.get(1)?))
            .or_default()
            .push(DataItemInfo {
                id: r.get(2)?,
                name: r.get(3)?,
                category: category.parse().unwrap_or(Category::Event),
                kind: r.get(5)?,
                sub_type: r.get(6)?,
                units: r.get(7)?,
                component: r.get(8)?,
                component_id: r.get(9)?,
                component_name: r.get(10)?,
            });
    }
    let mut stmt = tx.prepare(
        "SELECT a.url, d.agent_id, d.name, d.uuid, d.device_id FROM devices d
         JOIN agents a ON a.id = d.agent_id ORDER BY d.name, a.url",
    )?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let agent_id: i64 = r.get(1)?;
        let name: String = r.get(2)?;
        out.push(DeviceInfo {
            agent: r.get(0)?,
            data_items: by_device
                .remove(&(agent_id, name.clone()))
                .unwrap_or_default(),
            name,
            uuid: r.get(3)?,
            id: r.get(4)?,
        });
    }
    Ok(out)
}

pub(super) fn configured_agents(c: &Connection) -> Result<Vec<ConfiguredAgent>, StoreError> {
    let mut stmt = c.prepare("SELECT url, paused FROM configured_agents ORDER BY rowid")?;
    let agents = stmt
        .query_map([], |r| {
            Ok(ConfiguredAgent {
                url: r.get(0)?,
                paused: r.get(1)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(agents)
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    /// The plan of [`super::series_after_sql`]: a range of the index, sorting at most the
    /// rows of one (ts, sequence) ("RIGHT PART OF ORDER BY"), never the window.
    #[test]
    fn series_after_reads_a_range_of_the_index_and_sorts_no_window() {
        let mut c = Connection::open_in_memory().unwrap();
        super::super::migrate(&mut c).unwrap();
        let plan: Vec<String> = c
            .prepare(&format!("EXPLAIN QUERY PLAN {}", super::series_after_sql()))
            .unwrap()
            .query_map([1, 0, 0, 0, 1, 10], |r| r.get(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(
            plan.iter().any(|step| step.starts_with(
                "SEARCH o USING INDEX observations_series_ts (series=? AND (ts,sequence)>"
            )),
            "{plan:#?}"
        );
        assert!(
            !plan
                .iter()
                .any(|step| step == "USE TEMP B-TREE FOR ORDER BY"),
            "{plan:#?}"
        );
        // The only scan is of the inner query's rows (at most `?6`).
        assert!(
            plan.iter()
                .filter(|step| step.starts_with("SCAN"))
                .all(|step| step == "SCAN o"),
            "{plan:#?}"
        );
    }
}
