//! The summaries on PostgreSQL (`0009_summaries.sql`): cells added to in the append's
//! transaction (one statement of arrays for a batch's cells), held states, questions
//! answered from the cells in one statement.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use factorydash_core::summary::{self, Cell, DeviceFold, FoldOutput, Held, Measure, SummaryTotal};
use factorydash_core::Observation;
use tokio_postgres::GenericClient;

use crate::summaries::Totals;
use crate::{StoreError, SummaryQuery};

/// The ids of `devices`' summaries of `agent` (made where missing).
async fn device_ids(
    client: &impl GenericClient,
    agent: &str,
    devices: &[&str],
) -> Result<HashMap<String, i32>, StoreError> {
    // Only the missing ones: an INSERT … ON CONFLICT DO NOTHING would take a value of
    // the id sequence for every device of every batch.
    client
        .execute(
            "INSERT INTO summary_devices (agent, device)
             SELECT $1, d FROM unnest($2::text[]) AS d
             WHERE NOT EXISTS (SELECT 1 FROM summary_devices s WHERE s.agent = $1 AND s.device = d)
             ON CONFLICT DO NOTHING",
            &[&agent, &devices],
        )
        .await?;
    let rows = client
        .query(
            "SELECT device, id FROM summary_devices WHERE agent = $1 AND device = ANY($2)",
            &[&agent, &devices],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// The held states of the summaries `ids`, by id.
pub(super) async fn held(
    client: &impl GenericClient,
    ids: &[i32],
) -> Result<HashMap<i32, Vec<Held>>, StoreError> {
    let rows = client
        .query(
            "SELECT sdevice, key, state, since, count, counted FROM summary_held WHERE sdevice = ANY($1)",
            &[&ids],
        )
        .await?;
    let mut out: HashMap<i32, Vec<Held>> = HashMap::new();
    for r in rows {
        out.entry(r.get(0)).or_default().push(Held {
            key: r.get(1),
            state: r.get(2),
            since: r.get(3),
            count: r.get(4),
            counted: r.get(5),
        });
    }
    Ok(out)
}

/// The arrays of one statement's cells and held states, for several devices.
#[derive(Default)]
struct Writes {
    resolution: Vec<i32>,
    period: Vec<i64>,
    sdevice: Vec<i32>,
    item: Vec<String>,
    measure: Vec<&'static str>,
    state: Vec<String>,
    value: Vec<f64>,
    delete_device: Vec<i32>,
    delete_key: Vec<String>,
    put_device: Vec<i32>,
    put_key: Vec<String>,
    put_state: Vec<String>,
    put_since: Vec<DateTime<Utc>>,
    put_count: Vec<Option<f64>>,
    put_counted: Vec<Option<DateTime<Utc>>>,
}

impl Writes {
    fn add(&mut self, id: i32, cells: BTreeMap<Cell, f64>, output: Option<FoldOutput>) {
        for (c, v) in cells {
            self.resolution.push(c.resolution.code() as i32);
            self.period.push(c.period);
            self.sdevice.push(id);
            self.item.push(c.item);
            self.measure.push(c.measure.as_str());
            self.state.push(c.state);
            self.value.push(v);
        }
        if let Some(out) = output {
            for key in out.delete {
                self.delete_device.push(id);
                self.delete_key.push(key);
            }
            for h in out.put {
                self.put_device.push(id);
                self.put_key.push(h.key);
                self.put_state.push(h.state);
                self.put_since.push(h.since);
                self.put_count.push(h.count);
                self.put_counted.push(h.counted);
            }
        }
    }

    /// Writes the cells and held states in one statement (one round trip): three
    /// data-modifying CTEs, which PostgreSQL runs all. A fold's deleted and put keys are
    /// disjoint ([`FoldOutput`]), so no row is changed twice.
    async fn run(self, client: &impl GenericClient) -> Result<u64, StoreError> {
        let rows = self.value.len() as u64;
        if rows == 0 && self.delete_device.is_empty() && self.put_device.is_empty() {
            return Ok(0);
        }
        client
            .execute(
                "WITH cells AS (
                     INSERT INTO summary_cells (resolution, period, sdevice, item, measure, state, value)
                     SELECT * FROM unnest($1::int[], $2::bigint[], $3::int[], $4::text[], $5::text[], $6::text[], $7::float8[])
                     ON CONFLICT (resolution, period, sdevice, item, measure, state)
                     DO UPDATE SET value = summary_cells.value + EXCLUDED.value),
                 gone AS (
                     DELETE FROM summary_held h USING unnest($8::int[], $9::text[]) AS d(sdevice, key)
                     WHERE h.sdevice = d.sdevice AND h.key = d.key),
                 put AS (
                     INSERT INTO summary_held (sdevice, key, state, since, count, counted)
                     SELECT * FROM unnest($10::int[], $11::text[], $12::text[], $13::timestamptz[], $14::float8[], $15::timestamptz[])
                     ON CONFLICT (sdevice, key) DO UPDATE
                     SET state = EXCLUDED.state, since = EXCLUDED.since, count = EXCLUDED.count,
                       counted = EXCLUDED.counted)
                 SELECT 1",
                &[
                    &self.resolution,
                    &self.period,
                    &self.sdevice,
                    &self.item,
                    &self.measure,
                    &self.state,
                    &self.value,
                    &self.delete_device,
                    &self.delete_key,
                    &self.put_device,
                    &self.put_key,
                    &self.put_state,
                    &self.put_since,
                    &self.put_count,
                    &self.put_counted,
                ],
            )
            .await?;
        Ok(rows)
    }
}

/// The summary ids of (agent, device) pairs this store has seen committed: a row of
/// `summary_devices` is never deleted nor renumbered, so an id read once stays true for
/// every process on the database.
#[derive(Default)]
pub(super) struct SummaryIds(Mutex<HashMap<(String, String), i32>>);

impl SummaryIds {
    fn get(&self, agent: &str, device: &str) -> Option<i32> {
        // The key is owned; the map holds a few thousand devices at most.
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(agent.to_owned(), device.to_owned()))
            .copied()
    }

    /// Remembers ids read or made in a transaction that committed.
    pub(super) fn remember(&self, agent: &str, ids: HashMap<String, i32>) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for (device, id) in ids {
            map.insert((agent.to_owned(), device), id);
        }
    }
}

/// A batch's summary work, planned before its transaction's statements: the tracked
/// observations by device, the summary ids already known and the devices still to look
/// up.
pub(super) struct Plan<'a> {
    by_device: BTreeMap<&'a str, Vec<&'a Observation>>,
    known: HashMap<&'a str, i32>,
}

impl<'a> Plan<'a> {
    /// Plans `fresh` (the batch's newly stored observations) of `agent`.
    pub(super) fn new(ids: &SummaryIds, agent: &str, fresh: &[&'a Observation]) -> Self {
        let by_device = crate::summaries::tracked_by_device(fresh.iter().copied());
        let known = by_device
            .keys()
            .filter_map(|&d| ids.get(agent, d).map(|id| (d, id)))
            .collect();
        Plan { by_device, known }
    }

    /// The ids whose held states the fold starts from (a device not known yet has none
    /// this process could have read, and is read after its id is).
    pub(super) fn known_ids(&self) -> Vec<i32> {
        self.known.values().copied().collect()
    }
}

/// Adds what a planned batch contributes to its devices' summaries, in the append's
/// transaction (the agent's row is locked: one batch of an agent at a time). `held` is
/// [`held`] of [`Plan::known_ids`], read in the same transaction (pipelined with the
/// append's other statements). Returns the ids looked up, for
/// [`SummaryIds::remember`] once the transaction commits.
pub(super) async fn summarize(
    tx: &impl GenericClient,
    agent: &str,
    plan: Plan<'_>,
    mut held_states: HashMap<i32, Vec<Held>>,
) -> Result<HashMap<String, i32>, StoreError> {
    if plan.by_device.is_empty() {
        return Ok(HashMap::new());
    }
    let missing: Vec<&str> = plan
        .by_device
        .keys()
        .copied()
        .filter(|d| !plan.known.contains_key(d))
        .collect();
    let found = if missing.is_empty() {
        HashMap::new()
    } else {
        let found = device_ids(tx, agent, &missing).await?;
        let ids: Vec<i32> = found.values().copied().collect();
        held_states.extend(held(tx, &ids).await?);
        found
    };
    let now = Utc::now();
    let mut writes = Writes::default();
    for (device, observations) in plan.by_device {
        let Some(id) = plan
            .known
            .get(device)
            .or_else(|| found.get(device))
            .copied()
        else {
            continue;
        };
        let mut fold = DeviceFold::new(held_states.remove(&id).unwrap_or_default(), now);
        for o in observations {
            fold.observe(o);
        }
        let mut out = fold.finish();
        let cells = std::mem::take(&mut out.cells);
        writes.add(id, cells, Some(out));
    }
    writes.run(tx).await?;
    Ok(found)
}

/// Adds `cells` and held states to one device's summary (a rebuild).
pub(super) async fn write(
    client: &impl GenericClient,
    agent: &str,
    device: &str,
    cells: BTreeMap<Cell, f64>,
    output: Option<FoldOutput>,
) -> Result<u64, StoreError> {
    let ids = device_ids(client, agent, &[device]).await?;
    let Some(&id) = ids.get(device) else {
        return Ok(0);
    };
    let mut writes = Writes::default();
    writes.add(id, cells, output);
    writes.run(client).await
}

/// [`Store::summary`](crate::Store::summary) in one statement for the closed periods and
/// one for the states still open.
pub(super) async fn query(
    client: &impl GenericClient,
    q: &SummaryQuery,
) -> Result<Vec<SummaryTotal>, StoreError> {
    let mut names: HashMap<i32, (String, String)> = HashMap::new();
    for r in client
        .query("SELECT id, agent, device FROM summary_devices", &[])
        .await?
    {
        let (agent, device): (String, String) = (r.get(1), r.get(2));
        let wanted = q
            .devices
            .as_ref()
            .is_none_or(|ds| ds.iter().any(|d| d.agent == agent && d.device == device));
        if wanted {
            names.insert(r.get(0), (agent, device));
        }
    }
    let ids: Vec<i32> = names.keys().copied().collect();
    let pieces = summary::pieces(&q.ranges);
    let res: Vec<i32> = pieces.iter().map(|p| p.resolution.code() as i32).collect();
    let from: Vec<i64> = pieces.iter().map(|p| p.from).collect();
    let to: Vec<i64> = pieces.iter().map(|p| p.to).collect();
    let rows = client
        .query(
            "SELECT c.sdevice, c.item, c.measure, c.state, SUM(c.value)
             FROM unnest($4::int[]) AS d(id)
             CROSS JOIN unnest($1::int[], $2::bigint[], $3::bigint[]) AS p(res, a, b)
             JOIN summary_cells c ON c.sdevice = d.id AND c.resolution = p.res
               AND c.period >= p.a AND c.period < p.b
             GROUP BY c.sdevice, c.item, c.measure, c.state",
            &[&res, &from, &to, &ids],
        )
        .await?;
    // The edge minutes' seconds from their hours' ramps (see `Resolution::Ramp`): the
    // rate's changes since the hour began, each times its time to the part's end less
    // that to its start.
    let ramps = summary::ramp_pieces(&pieces);
    let hour: Vec<i64> = ramps.iter().map(|r| r.hour).collect();
    let from: Vec<i64> = ramps.iter().map(|r| r.from).collect();
    let to: Vec<i64> = ramps.iter().map(|r| r.to).collect();
    let ramp_rows = if ramps.is_empty() {
        Vec::new()
    } else {
        client
            .query(
                "SELECT c.sdevice, c.item, c.measure, c.state,
                        SUM(c.value * (GREATEST(p.b - c.period, 0) - GREATEST(p.a - c.period, 0)))
                          / 1e6
                 FROM unnest($4::int[]) AS d(id)
                 CROSS JOIN unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS p(h, a, b)
                 JOIN summary_cells c ON c.sdevice = d.id AND c.resolution = $5
                   AND c.period >= p.h AND c.period < p.b
                 GROUP BY c.sdevice, c.item, c.measure, c.state",
                &[
                    &hour,
                    &from,
                    &to,
                    &ids,
                    &(summary::Resolution::Ramp.code() as i32),
                ],
            )
            .await?
    };
    let mut totals = Totals::default();
    for r in rows.into_iter().chain(ramp_rows) {
        let Some((agent, device)) = names.get(&r.get::<_, i32>(0)) else {
            continue;
        };
        // A measure a later build keeps: not this build's to read.
        let Ok(measure) = r.get::<_, &str>(2).parse::<Measure>() else {
            continue;
        };
        totals.add(agent, device, r.get(1), measure, r.get(3), r.get(4));
    }
    let all: Vec<i32> = names.keys().copied().collect();
    for (id, held) in held(client, &all).await? {
        if let Some((agent, device)) = names.get(&id) {
            for t in summary::open_totals(agent, device, &held, &q.ranges, q.until(agent, &held)) {
                totals.add_total(t);
            }
        }
    }
    Ok(totals.into_totals())
}

/// Drops cells of periods that end before `cutoff` (Unix seconds), and ramps of hours
/// that end before it.
pub(super) async fn prune(client: &impl GenericClient, cutoff: i64) -> Result<u64, StoreError> {
    let hour = summary::Resolution::Hour
        .floor(cutoff)
        .saturating_mul(1_000_000);
    Ok(client
        .execute(
            "DELETE FROM summary_cells c USING summary_devices d
             CROSS JOIN unnest(ARRAY[60, 3600, 86400, 0]) AS r(resolution)
             WHERE c.sdevice = d.id AND c.resolution = r.resolution
               AND c.period <= CASE WHEN r.resolution = 0 THEN $2::bigint - 1
                                    ELSE $1::bigint - r.resolution END",
            &[&cutoff, &hour],
        )
        .await?)
}

/// Drops cells of periods starting at or after `from` (Unix seconds; ramps at or after
/// it) and every held state.
pub(super) async fn clear(client: &impl GenericClient, from: i64) -> Result<(), StoreError> {
    client
        .execute(
            "DELETE FROM summary_cells
             WHERE period >= CASE WHEN resolution = 0 THEN $2::bigint ELSE $1::bigint END",
            &[&from, &from.saturating_mul(1_000_000)],
        )
        .await?;
    client.execute("DELETE FROM summary_held", &[]).await?;
    Ok(())
}
