//! The writer connection: appends, device models, gaps, prune.

use std::collections::HashMap;

use factorydash_core::{Batch, Category, DeviceInfo, Gap, Observation, ResumePoint};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use super::PRUNE_CHUNK;
use crate::{AppendOutcome, StoreError};

/// The writer connection and the ids it has looked up (cleared when a transaction fails,
/// since ids it created may have been rolled back).
pub(super) struct Writer {
    pub(super) conn: Connection,
    ids: Ids,
}

#[derive(Default)]
struct Ids {
    agents: HashMap<String, i64>,
    /// (agent id, instanceId) → run id
    runs: HashMap<(i64, i64), i64>,
    /// agent id → device → dataItemId → item id
    items: HashMap<i64, HashMap<String, HashMap<String, i64>>>,
    /// item id → its shapes and their series ids
    series: HashMap<i64, Vec<(Shape, i64)>>,
    /// (agent URL, device) → its summary's id
    summary_devices: HashMap<(String, String), i64>,
    /// summary id → the states it holds (as written by this connection)
    held: HashMap<i64, Vec<factorydash_core::summary::Held>>,
}

struct Shape {
    component_id: String,
    name: Option<String>,
    category: Category,
    kind: String,
    sub_type: Option<String>,
}

impl Shape {
    fn of(o: &Observation) -> Self {
        Shape {
            component_id: o.component_id.clone(),
            name: o.name.clone(),
            category: o.category,
            kind: o.kind.clone(),
            sub_type: o.sub_type.clone(),
        }
    }

    fn matches(&self, o: &Observation) -> bool {
        self.component_id == o.component_id
            && self.name == o.name
            && self.category == o.category
            && self.kind == o.kind
            && self.sub_type == o.sub_type
    }
}

/// The value's column: `NULL` for `UNAVAILABLE`; an `INTEGER` or a `REAL` where the text
/// is exactly what that number prints as (so it reads back as the same text); `TEXT`
/// otherwise.
pub(super) fn value_to_sql(v: &factorydash_core::Value) -> SqlValue {
    let Some(t) = v.as_text() else {
        return SqlValue::Null;
    };
    if let Ok(i) = t.parse::<i64>() {
        if i.to_string() == t {
            return SqlValue::Integer(i);
        }
    }
    if let Ok(f) = t.parse::<f64>() {
        // -0.0 is left as text: SQLite may store an integral REAL as an integer.
        if f.is_finite() && f != 0.0 && format!("{f}") == t {
            return SqlValue::Real(f);
        }
    }
    SqlValue::Text(t.to_owned())
}

/// Runs `f` in an immediate transaction, committed when it succeeds.
fn in_transaction<T>(
    conn: &mut Connection,
    f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let out = f(&tx)?;
    tx.commit()?;
    Ok(out)
}

impl Ids {
    fn agent(&mut self, tx: &Connection, url: &str) -> rusqlite::Result<i64> {
        if let Some(&id) = self.agents.get(url) {
            return Ok(id);
        }
        tx.execute(
            "INSERT INTO agents (url) VALUES (?1) ON CONFLICT (url) DO NOTHING",
            [url],
        )?;
        let id = tx.query_row("SELECT id FROM agents WHERE url = ?1", [url], |r| r.get(0))?;
        self.agents.insert(url.to_owned(), id);
        Ok(id)
    }

    fn run(&mut self, tx: &Connection, agent: i64, instance: i64) -> rusqlite::Result<i64> {
        if let Some(&id) = self.runs.get(&(agent, instance)) {
            return Ok(id);
        }
        tx.execute(
            "INSERT INTO runs (agent_id, instance_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            [agent, instance],
        )?;
        let id = tx.query_row(
            "SELECT id FROM runs WHERE agent_id = ?1 AND instance_id = ?2",
            [agent, instance],
            |r| r.get(0),
        )?;
        self.runs.insert((agent, instance), id);
        Ok(id)
    }

    /// The item of `o`'s data item at the agent numbered `agent`.
    fn item(&mut self, tx: &Connection, agent: i64, o: &Observation) -> rusqlite::Result<i64> {
        // Borrowed lookup first: no allocation for the usual, known data item.
        if let Some(&id) = self
            .items
            .get(&agent)
            .and_then(|a| a.get(&o.device))
            .and_then(|d| d.get(&o.data_item_id))
        {
            return Ok(id);
        }
        tx.prepare_cached(
            "INSERT INTO items (device, agent_id, data_item_id) VALUES (?1, ?2, ?3)
             ON CONFLICT DO NOTHING",
        )?
        .execute(params![o.device, agent, o.data_item_id])?;
        let id = tx
            .prepare_cached(
                "SELECT id FROM items WHERE device = ?1 AND agent_id = ?2 AND data_item_id = ?3",
            )?
            .query_row(params![o.device, agent, o.data_item_id], |r| r.get(0))?;
        self.items
            .entry(agent)
            .or_default()
            .entry(o.device.clone())
            .or_default()
            .insert(o.data_item_id.clone(), id);
        Ok(id)
    }

    fn series(&mut self, tx: &Connection, item: i64, o: &Observation) -> rusqlite::Result<i64> {
        if let Some((_, id)) = self
            .series
            .get(&item)
            .and_then(|shapes| shapes.iter().find(|(s, _)| s.matches(o)))
        {
            return Ok(*id);
        }
        let shape = Shape::of(o);
        let s = &shape;
        let found: Option<i64> = tx
            .query_row(
                "SELECT id FROM series WHERE item = ?1 AND component_id = ?2 AND name IS ?3
                 AND category = ?4 AND kind = ?5 AND sub_type IS ?6",
                params![
                    item,
                    s.component_id,
                    s.name,
                    s.category.as_str(),
                    s.kind,
                    s.sub_type
                ],
                |r| r.get(0),
            )
            .optional()?;
        let id = match found {
            Some(id) => id,
            None => {
                tx.execute(
                    "INSERT INTO series (item, component_id, name, category, kind, sub_type)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        item,
                        s.component_id,
                        s.name,
                        s.category.as_str(),
                        s.kind,
                        s.sub_type
                    ],
                )?;
                tx.last_insert_rowid()
            }
        };
        self.series.entry(item).or_default().push((shape, id));
        Ok(id)
    }
}

impl Writer {
    pub(super) fn new(conn: Connection) -> Self {
        Writer {
            conn,
            ids: Ids::default(),
        }
    }

    /// [`Store::append`](crate::Store::append): observations, latest values, the resume
    /// point and the observation count in one transaction. The batch is range-checked.
    pub(super) fn append(&mut self, batch: &Batch) -> Result<AppendOutcome, StoreError> {
        let ids = &mut self.ids;
        let result = in_transaction(&mut self.conn, |tx| append(tx, ids, batch));
        if result.is_err() {
            self.ids = Ids::default();
        }
        result
    }

    /// Forgets the held states read so far (a rebuild writes them itself).
    pub(super) fn forget_summaries(&mut self) {
        self.ids.held.clear();
    }

    pub(super) fn put_devices(
        &mut self,
        agent: &str,
        devices: &[DeviceInfo],
    ) -> Result<(), StoreError> {
        let ids = &mut self.ids;
        let result = in_transaction(&mut self.conn, |tx| {
            let agent_id = ids.agent(tx, agent)?;
            tx.execute("DELETE FROM data_items WHERE agent_id = ?1", [agent_id])?;
            tx.execute("DELETE FROM devices WHERE agent_id = ?1", [agent_id])?;
            for d in devices {
                tx.execute(
                    "INSERT INTO devices (agent_id, name, uuid, device_id) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (agent_id, name) DO UPDATE SET uuid = excluded.uuid, device_id = excluded.device_id",
                    params![agent_id, d.name, d.uuid, d.id],
                )?;
                let mut insert = tx.prepare_cached(
                    "INSERT OR IGNORE INTO data_items (agent_id, device, ordinal, id, name, category, kind, sub_type, units, component, component_id, component_name)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                )?;
                for (ordinal, i) in d.data_items.iter().enumerate() {
                    insert.execute(params![
                        agent_id,
                        d.name,
                        ordinal as i64,
                        i.id,
                        i.name,
                        i.category.as_str(),
                        i.kind,
                        i.sub_type,
                        i.units,
                        i.component,
                        i.component_id,
                        i.component_name
                    ])?;
                }
            }
            Ok(())
        });
        if result.is_err() {
            self.ids = Ids::default();
        }
        result
    }

    pub(super) fn record_gap(&mut self, gap: &Gap) -> Result<(), StoreError> {
        let ids = &mut self.ids;
        let result = in_transaction(&mut self.conn, |tx| {
            let agent_id = ids.agent(tx, &gap.agent)?;
            tx.execute(
                "INSERT INTO gaps (agent_id, instance_id, from_sequence, to_sequence, recorded_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    agent_id,
                    gap.instance_id.min(i64::MAX as u64) as i64,
                    gap.from.min(i64::MAX as u64) as i64,
                    gap.to.map(|t| t.min(i64::MAX as u64) as i64),
                    chrono::Utc::now().timestamp_micros()
                ],
            )?;
            Ok(())
        });
        if result.is_err() {
            self.ids = Ids::default();
        }
        result
    }

    pub(super) fn withdraw_open_gaps(
        &mut self,
        agent: &str,
        instance_id: u64,
    ) -> Result<u64, StoreError> {
        let n = self.conn.execute(
            "DELETE FROM gaps WHERE to_sequence IS NULL AND instance_id = ?2
             AND agent_id = (SELECT id FROM agents WHERE url = ?1)",
            params![agent, instance_id.min(i64::MAX as u64) as i64],
        )?;
        Ok(n as u64)
    }

    /// Deletes at most [`PRUNE_CHUNK`] observations of series `series` stamped before
    /// `cutoff` (microseconds, UTC), in one transaction; returns how many.
    pub(super) fn prune_chunk(&mut self, series: i64, cutoff: i64) -> Result<u64, StoreError> {
        in_transaction(&mut self.conn, |tx| {
            let n = tx.execute(
                "DELETE FROM observations WHERE (run, sequence) IN (
                   SELECT run, sequence FROM observations WHERE series = ?1 AND ts < ?2 LIMIT ?3)",
                params![series, cutoff, PRUNE_CHUNK as i64],
            )? as u64;
            tx.execute(
                "UPDATE counts SET observations = observations - ?1",
                [n as i64],
            )?;
            Ok(n)
        })
    }

    /// Deletes at most [`PRUNE_CHUNK`] condition states stamped before `cutoff`.
    pub(super) fn prune_conditions_chunk(&mut self, cutoff: i64) -> Result<u64, StoreError> {
        in_transaction(&mut self.conn, |tx| {
            Ok(tx.execute(
                "DELETE FROM conditions WHERE (ts, sequence, run) IN (
                   SELECT ts, sequence, run FROM conditions WHERE ts < ?1 LIMIT ?2)",
                params![cutoff, PRUNE_CHUNK as i64],
            )? as u64)
        })
    }
}

fn append(tx: &Transaction<'_>, ids: &mut Ids, batch: &Batch) -> Result<AppendOutcome, StoreError> {
    let agent = ids.agent(tx, &batch.agent)?;
    let instance = batch.instance_id as i64;
    let stored: Option<ResumePoint> = tx
        .query_row(
            "SELECT instance_id, next_sequence FROM agents WHERE id = ?1 AND instance_id IS NOT NULL",
            [agent],
            |r| {
                Ok(ResumePoint {
                    agent: batch.agent.clone(),
                    instance_id: r.get::<_, i64>(0)? as u64,
                    next_sequence: r.get::<_, i64>(1)? as u64,
                })
            },
        )
        .optional()?;
    let resume = crate::resume_after(stored.as_ref(), batch);
    let run = ids.run(tx, agent, instance)?;
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO observations (run, sequence, series, ts, value)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut condition = tx.prepare_cached(
        "INSERT OR REPLACE INTO conditions (ts, sequence, run, item, level, native_code, native_severity, qualifier)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    // The newest stored observation of each data item in the batch, for `latest`.
    let mut newest: HashMap<i64, (i64, &Observation)> = HashMap::new();
    let mut fresh: Vec<&Observation> = Vec::new();
    let mut inserted = 0u64;
    for o in &batch.observations {
        let item = ids.item(tx, agent, o)?;
        let series = ids.series(tx, item, o)?;
        let ts = o.timestamp.timestamp_micros();
        let sequence = o.sequence as i64;
        let value = value_to_sql(&o.value);
        if insert.execute(params![run, sequence, series, ts, value])? == 0 {
            continue;
        }
        inserted += 1;
        fresh.push(o);
        if o.category == Category::Condition {
            let c = o.condition.as_ref();
            condition.execute(params![
                ts,
                sequence,
                run,
                item,
                c.map(|c| c.level.as_str()),
                c.and_then(|c| c.native_code.as_deref()),
                c.and_then(|c| c.native_severity.as_deref()),
                c.and_then(|c| c.qualifier.as_deref()),
            ])?;
        }
        newest
            .entry(item)
            .and_modify(|n| {
                if o.sequence > n.1.sequence {
                    *n = (series, o);
                }
            })
            .or_insert((series, o));
    }
    let mut latest = tx.prepare_cached(
        "INSERT INTO latest (item, series, instance_id, sequence, ts, value, level, native_code, native_severity, qualifier)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (item) DO UPDATE SET series = excluded.series, instance_id = excluded.instance_id,
           sequence = excluded.sequence, ts = excluded.ts, value = excluded.value, level = excluded.level,
           native_code = excluded.native_code, native_severity = excluded.native_severity,
           qualifier = excluded.qualifier
         WHERE (latest.instance_id, latest.sequence) < (excluded.instance_id, excluded.sequence)",
    )?;
    for (item, (series, o)) in newest {
        let c = o.condition.as_ref();
        latest.execute(params![
            item,
            series,
            instance,
            o.sequence as i64,
            o.timestamp.timestamp_micros(),
            value_to_sql(&o.value),
            c.map(|c| c.level.as_str()),
            c.and_then(|c| c.native_code.as_deref()),
            c.and_then(|c| c.native_severity.as_deref()),
            c.and_then(|c| c.qualifier.as_deref()),
        ])?;
    }
    summarize(tx, ids, &batch.agent, fresh)?;
    tx.execute(
        "UPDATE agents SET instance_id = ?2, next_sequence = ?3 WHERE id = ?1",
        [agent, instance, resume.next_sequence as i64],
    )?;
    tx.execute(
        "UPDATE counts SET observations = observations + ?1",
        [inserted as i64],
    )?;
    Ok(AppendOutcome {
        inserted,
        duplicates: batch.observations.len() as u64 - inserted,
    })
}

/// Adds what the newly stored observations contribute to their devices' summaries, in the
/// append's transaction.
fn summarize(
    tx: &Transaction<'_>,
    ids: &mut Ids,
    agent: &str,
    fresh: Vec<&Observation>,
) -> Result<(), StoreError> {
    let now = chrono::Utc::now();
    for (device, observations) in crate::summaries::tracked_by_device(fresh) {
        let key = (agent.to_owned(), device.to_owned());
        let id = match ids.summary_devices.get(&key) {
            Some(&id) => id,
            None => {
                let id = super::summary::device_id(tx, agent, device)?;
                ids.summary_devices.insert(key, id);
                id
            }
        };
        let held = match ids.held.remove(&id) {
            Some(h) => h,
            None => super::summary::held(tx, id)?,
        };
        let mut fold = factorydash_core::summary::DeviceFold::new(held.iter().cloned(), now);
        for o in observations {
            fold.observe(o);
        }
        let out = fold.finish();
        super::summary::write(tx, id, &out.cells, Some(&out))?;
        let mut held = held;
        held.retain(|h| !out.delete.contains(&h.key) && !out.put.iter().any(|p| p.key == h.key));
        held.extend(out.put);
        ids.held.insert(id, held);
    }
    Ok(())
}
