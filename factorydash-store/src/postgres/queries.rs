//! The reads, each on a pooled connection: the latest values (now and as of an instant,
//! keyset pages), a data item's series and M4 buckets, conditions, state summaries,
//! devices and gaps; and the configured agents, read and written by the admin.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use factorydash_core::downsample::{self, Bucket};
use factorydash_core::states::{StateInterval, StateShare, StateSummary, MAX_STATES};
use factorydash_core::{
    Category, DataItemInfo, DeviceInfo, DeviceKey, Gap, Observation, Page, PageRequest, TimeWindow,
};
use tokio_postgres::types::ToSql;
use tokio_postgres::Client;

use super::columns::{observation_from_row, prefixed_columns, OBSERVATION_COLUMNS};
use crate::{
    latest_after, latest_page_of, AgentObservation, ConfiguredAgent, Credentials, LatestFilter,
    SeriesChunk, SeriesKey, StoreError,
};

/// An `agent_id` from the agent's base URL, as SQL on the parameter `$n` (`NULL`, so
/// matching nothing, for an agent never seen).
fn agent_id_of(n: usize) -> String {
    format!("(SELECT id FROM agents WHERE url = ${n}::text)")
}

/// A device allow-list as two arrays of one length, the agents' URLs and the devices'
/// names (`None`, `None` for no list): the parameters of [`allowed_devices`].
fn device_arrays(devices: Option<&[DeviceKey]>) -> (Option<Vec<&str>>, Option<Vec<&str>>) {
    match devices {
        Some(devices) => {
            let (agents, names) = devices
                .iter()
                .map(|d| (d.agent.as_str(), d.device.as_str()))
                .unzip();
            (Some(agents), Some(names))
        }
        None => (None, None),
    }
}

/// The (`agent_id`, device) pairs of an allow-list given as the arrays `$agents` (URLs)
/// and `$devices` (names) of [`device_arrays`], as a subquery (an agent never seen is
/// left out: its devices match nothing).
fn allowed_devices(agents: usize, devices: usize) -> String {
    format!(
        "SELECT da.id, d.device COLLATE \"C\"
         FROM unnest(${agents}::text[], ${devices}::text[]) AS d (agent, device)
         JOIN agents da ON da.url = d.agent"
    )
}

/// [`Store::latest`](crate::Store::latest) (`at` is `None`) and
/// [`Store::as_of`](crate::Store::as_of): the rows of `latest` that pass the filter, as a
/// keyset page by (device, agent, `dataItemId`); as of `at`, each row's newest observation at or
/// before it instead (one index probe per data item, the latest row standing in where
/// retention dropped the history).
pub(super) async fn latest_page(
    client: &Client,
    filter: &LatestFilter,
    at: Option<DateTime<Utc>>,
    page: &PageRequest,
) -> Result<Page<AgentObservation>, StoreError> {
    let after = latest_after(page)?;
    let limit = page.effective_limit();
    let (after_device, after_agent, after_item) = match &after {
        Some((d, a, i)) => (
            Some(d.as_str()),
            Some(i32::try_from(*a).unwrap_or(i32::MAX)),
            Some(i.as_str()),
        ),
        None => (None, None, None),
    };
    let l = prefixed_columns("l.");
    let source = match at {
        None => format!(
            "SELECT {l}, a.url AS agent, l.agent_id AS agent_no
             FROM latest l JOIN agents a ON a.id = l.agent_id"
        ),
        Some(_) => {
            let o = prefixed_columns("o.");
            format!(
                "SELECT h.*, a.url AS agent, l.agent_id AS agent_no
                 FROM latest l JOIN agents a ON a.id = l.agent_id CROSS JOIN LATERAL (
                   SELECT * FROM (
                     (SELECT {o} FROM observations o
                      WHERE o.device = l.device AND o.data_item_id = l.data_item_id
                        AND o.agent_id = l.agent_id AND o.ts <= $13
                      ORDER BY o.ts DESC, o.sequence DESC LIMIT 1)
                     UNION ALL
                     (SELECT {l} WHERE l.ts <= $13)
                   ) c ORDER BY ts DESC, sequence DESC LIMIT 1
                 ) h"
            )
        }
    };
    let limit_param = (limit + 1) as i64;
    let category = filter.category.map(|c| c.as_str());
    let search = filter.search.as_ref().map(|s| s.to_lowercase());
    let (allowed_agents, allowed_names) = device_arrays(filter.devices.as_deref());
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![
        &filter.device,
        &after_device,
        &after_item,
        &limit_param,
        &filter.component_id,
        &category,
        &filter.kind,
        &search,
        &filter.agent,
        &after_agent,
        &allowed_agents,
        &allowed_names,
    ];
    if let Some(at) = &at {
        params.push(at);
    }
    let rows = client
        .query(
            &format!(
                "{source}
                 WHERE ($1::text IS NULL OR l.device = $1)
                   AND ($9::text IS NULL OR l.agent_id = {agent})
                   AND ($2::text IS NULL
                        OR (l.device, l.agent_id, l.data_item_id) > ($2::text, $10::int, $3::text))
                   AND ($5::text IS NULL OR l.component_id = $5)
                   AND ($6::text IS NULL OR l.category = $6)
                   AND ($7::text IS NULL OR l.kind = $7)
                   AND ($8::text IS NULL OR strpos(lower(l.data_item_id), $8) > 0
                        OR strpos(lower(coalesce(l.name, '')), $8) > 0)
                   AND ($11::text[] IS NULL OR (l.agent_id, l.device) IN ({allowed}))
                 ORDER BY l.device, l.agent_id, l.data_item_id
                 LIMIT $4",
                agent = agent_id_of(9),
                allowed = allowed_devices(11, 12),
            ),
            &params,
        )
        .await?;
    let items = rows
        .iter()
        .map(|r| {
            let agent_no: i32 = r.get("agent_no");
            (
                i64::from(agent_no),
                AgentObservation {
                    agent: r.get("agent"),
                    observation: observation_from_row(r),
                },
            )
        })
        .collect();
    Ok(latest_page_of(items, limit))
}
pub(super) async fn devices(client: &Client) -> Result<Vec<DeviceInfo>, StoreError> {
    let devices = client
        .query(
            "SELECT a.url, d.agent_id, d.name, d.uuid, d.device_id FROM devices d JOIN agents a ON a.id = d.agent_id ORDER BY d.name, a.url",
            &[],
        )
        .await?;
    let items = client
        .query(
            "SELECT agent_id, device, id, name, category, kind, sub_type, units, component, component_id, component_name FROM data_items ORDER BY agent_id, device, ordinal",
            &[],
        )
        .await?;
    let mut by_device: HashMap<(i32, String), Vec<DataItemInfo>> = HashMap::new();
    for r in items {
        let category: &str = r.get(4);
        by_device
            .entry((r.get(0), r.get(1)))
            .or_default()
            .push(DataItemInfo {
                id: r.get(2),
                name: r.get(3),
                category: category.parse().unwrap_or(Category::Event),
                kind: r.get(5),
                sub_type: r.get(6),
                units: r.get(7),
                component: r.get(8),
                component_id: r.get(9),
                component_name: r.get(10),
            });
    }
    Ok(devices
        .into_iter()
        .map(|r| {
            let agent_id: i32 = r.get(1);
            let name: String = r.get(2);
            DeviceInfo {
                agent: r.get(0),
                data_items: by_device
                    .remove(&(agent_id, name.clone()))
                    .unwrap_or_default(),
                name,
                uuid: r.get(3),
                id: r.get(4),
            }
        })
        .collect())
}

pub(super) async fn gaps(client: &Client) -> Result<Vec<Gap>, StoreError> {
    let rows = client
        .query(
            "SELECT a.url, g.instance_id, g.from_sequence, g.to_sequence FROM gaps g JOIN agents a ON a.id = g.agent_id ORDER BY g.id",
            &[],
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| Gap {
            agent: r.get(0),
            instance_id: r.get::<_, i64>(1) as u64,
            from: r.get::<_, i64>(2) as u64,
            to: r.get::<_, Option<i64>>(3).map(|t| t as u64),
        })
        .collect())
}

pub(super) async fn series(
    client: &Client,
    device: &DeviceKey,
    data_item_id: &str,
    window: &TimeWindow,
    limit: usize,
) -> Result<Vec<Observation>, StoreError> {
    let rows = client
        .query(
            &format!(
                "SELECT {cols} FROM observations
                 WHERE device = $1 AND data_item_id = $2 AND ts >= $3 AND ts < $4
                   AND agent_id = {agent}
                 ORDER BY ts, sequence LIMIT $5",
                cols = *OBSERVATION_COLUMNS,
                agent = agent_id_of(6),
            ),
            &[
                &device.device,
                &data_item_id,
                &window.from(),
                &window.to(),
                &(limit.min(i64::MAX as usize) as i64),
                &device.agent,
            ],
        )
        .await?;
    Ok(rows.iter().map(observation_from_row).collect())
}

/// [`Store::series_after`](crate::Store::series_after): `limit + 1` rows at most, in two
/// ranges of the index `observations_item_ts` (device, data_item_id, ts, sequence), each
/// read in the index's order so that no plan has to sort a range: the rest of the start's
/// instant (`ts = $3`, `sequence >= $5`, the rows of that very sequence left out by
/// `instance_id`), then what follows it (`ts >= $9`, the next microsecond), merged. Both
/// conditions are plain ranges the planner estimates well, with or without statistics (a
/// row comparison `(ts, sequence, instance_id) > …` is estimated by its first column
/// alone, which made it sort a whole partition where many rows share the start's
/// timestamp). The index does not order the rows of one (ts, sequence) by `instance_id`:
/// they are sorted here, and where the rows read end inside such a group, the group is
/// left for the next chunk (read alone by [`series_group`] when it fills a chunk).
pub(super) async fn series_after(
    client: &Client,
    device: &DeviceKey,
    data_item_id: &str,
    window: &TimeWindow,
    after: Option<SeriesKey>,
    limit: usize,
) -> Result<SeriesChunk, StoreError> {
    let limit = limit.max(1);
    let (start, sequence, instance) = crate::series_start(window, after);
    if start >= window.to() {
        return Ok(SeriesChunk::default());
    }
    let next_instant = start + chrono::Duration::microseconds(1);
    let rows = client
        .query(
            &format!(
                "SELECT * FROM (
                   (SELECT {cols}, instance_id FROM observations
                    WHERE device = $1 AND data_item_id = $2 AND agent_id = {agent}
                      AND ts = $3 AND sequence >= $5 AND (sequence, instance_id) > ($5, $6)
                    ORDER BY sequence LIMIT $7)
                   UNION ALL
                   (SELECT {cols}, instance_id FROM observations
                    WHERE device = $1 AND data_item_id = $2 AND agent_id = {agent}
                      AND ts >= $9 AND ts < $4
                    ORDER BY ts, sequence LIMIT $7)
                 ) o ORDER BY ts, sequence LIMIT $7",
                cols = *OBSERVATION_COLUMNS,
                agent = agent_id_of(8),
            ),
            &[
                &device.device,
                &data_item_id,
                &start,
                &window.to(),
                &sequence,
                &instance,
                &((limit + 1).min(i64::MAX as usize) as i64),
                &device.agent,
                &next_instant,
            ],
        )
        .await?;
    let mut rows = keyed(&rows);
    rows.sort_by_key(|(key, _)| *key);
    if rows.len() <= limit {
        return Ok(crate::series_chunk(rows, limit));
    }
    // The last (ts, sequence) read may have rows of other instances past the limit.
    let last = rows[rows.len() - 1].0;
    let same = |key: &SeriesKey| (key.timestamp, key.sequence) == (last.timestamp, last.sequence);
    let whole = rows
        .iter()
        .rposition(|(key, _)| !same(key))
        .map_or(0, |i| i + 1);
    if whole > 0 {
        rows.truncate(whole);
        let next = rows.last().map(|(key, _)| *key);
        return Ok(SeriesChunk {
            observations: rows.into_iter().map(|(_, o)| o).collect(),
            next,
        });
    }
    // More than a chunk of instances share one (ts, sequence).
    let first = (start, sequence) == (last.timestamp, last.sequence as i64);
    let after_instance = if first { instance } else { -1 };
    series_group(client, device, data_item_id, last, after_instance, limit).await
}

/// The rows of one (ts, sequence) of a data item (those of `key`) whose `instance_id` is
/// above `after_instance`, `limit` at most, in `instance_id` order, with the key of the last
/// as `next` (what follows the group may be more).
async fn series_group(
    client: &Client,
    device: &DeviceKey,
    data_item_id: &str,
    key: SeriesKey,
    after_instance: i64,
    limit: usize,
) -> Result<SeriesChunk, StoreError> {
    let rows = client
        .query(
            &format!(
                "SELECT {cols}, instance_id FROM observations
                 WHERE device = $1 AND data_item_id = $2 AND agent_id = {agent}
                   AND ts = $3 AND sequence = $4 AND instance_id > $5
                 ORDER BY instance_id LIMIT $6",
                cols = *OBSERVATION_COLUMNS,
                agent = agent_id_of(7),
            ),
            &[
                &device.device,
                &data_item_id,
                &key.timestamp,
                &(key.sequence as i64),
                &after_instance,
                &(limit.min(i64::MAX as usize) as i64),
                &device.agent,
            ],
        )
        .await?;
    let rows = keyed(&rows);
    let next = rows.last().map(|(key, _)| *key);
    Ok(SeriesChunk {
        observations: rows.into_iter().map(|(_, o)| o).collect(),
        next,
    })
}

/// Observations read with their `instance_id`, with their keys.
fn keyed(rows: &[tokio_postgres::Row]) -> Vec<(SeriesKey, Observation)> {
    rows.iter()
        .map(|r| {
            let o = observation_from_row(r);
            let key = SeriesKey {
                timestamp: o.timestamp,
                sequence: o.sequence,
                instance_id: r.get::<_, i64>("instance_id") as u64,
            };
            (key, o)
        })
        .collect()
}

/// [`Store::buckets`](crate::Store::buckets) in one pass, in SQL. `n` is at least 1 (see
/// the caller).
pub(super) async fn buckets(
    client: &Client,
    device: &DeviceKey,
    data_item_id: &str,
    window: &TimeWindow,
    n: usize,
) -> Result<Vec<Bucket>, StoreError> {
    let width = downsample::bucket_width(window.from(), window.to(), n);
    // One pass over the numbers and the UNAVAILABLEs (NULL): times as exact microseconds
    // in float8 (< 2^53); the first and last observations as the least and greatest
    // [time, sequence, instance, value] arrays (the key is unique within a data item, so
    // the value, NULL for UNAVAILABLE, never decides); the smallest and largest values as
    // the least [value, time] and [−value, time] (the earliest time among equal values;
    // an array with a NULL value sorts after every number, so it is the least only in a
    // bucket of UNAVAILABLEs; cheaper than a FILTER). count(x) counts the numbers,
    // count(*) − count(x) the UNAVAILABLEs. See `connection::SESSION_SETTINGS`.
    let rows = client
        .query(
            &format!(
                r"WITH b AS (
               SELECT (extract(epoch FROM ts - $3) * 1000000)::bigint / $5 AS k,
                      (extract(epoch FROM ts) * 1000000)::float8 AS e,
                      sequence::float8 AS s,
                      instance_id::float8 AS i,
                      value::float8 AS x
               FROM observations
               WHERE device = $1 AND data_item_id = $2 AND ts >= $3 AND ts < $4
                 AND agent_id = {agent}
                 AND (value IS NULL
                      OR (length(value) < 40
                          AND value ~ '^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{{1,2}})?$'))
             )
             SELECT k, count(x), count(*) - count(x), avg(x),
                    min(ARRAY[e, s, i, x]), max(ARRAY[e, s, i, x]),
                    min(ARRAY[x, e]), min(ARRAY[-x, e])
             FROM b GROUP BY k ORDER BY k",
                agent = agent_id_of(6)
            ),
            &[
                &device.device,
                &data_item_id,
                &window.from(),
                &window.to(),
                &width,
                &device.agent,
            ],
        )
        .await?;
    let at = |micros: f64| {
        DateTime::from_timestamp_micros(micros as i64).unwrap_or(DateTime::<Utc>::MIN_UTC)
    };
    Ok(rows
        .iter()
        .map(|row| {
            let k: i64 = row.get(0);
            let first: Vec<Option<f64>> = row.get(4);
            let last: Vec<Option<f64>> = row.get(5);
            let min: Vec<Option<f64>> = row.get(6);
            let max: Vec<Option<f64>> = row.get(7);
            let point = |a: &[Option<f64>]| (at(a[0].unwrap_or_default()), a[3]);
            // (value, time) of an extreme, none in a bucket of UNAVAILABLEs.
            let extreme = |a: &[Option<f64>]| Some((a[0]?, at(a[1]?)));
            let (min, max) = (extreme(&min), extreme(&max));
            Bucket {
                start: window.from() + chrono::Duration::microseconds(k * width),
                count: row.get::<_, i64>(1) as usize,
                unavailable: row.get::<_, i64>(2) as usize,
                min: min.map(|m| m.0),
                max: max.map(|m| -m.0),
                mean: row.get(3),
                first: point(&first),
                last: point(&last),
                min_at: min.map(|m| m.1),
                max_at: max.map(|m| m.1),
            }
        })
        .collect())
}

pub(super) async fn last_before(
    client: &Client,
    device: &DeviceKey,
    data_item_id: &str,
    at: DateTime<Utc>,
) -> Result<Option<Observation>, StoreError> {
    let row = client
        .query_opt(
            &format!(
                "SELECT {cols} FROM (
                   (SELECT {cols} FROM observations
                    WHERE device = $1 AND data_item_id = $2 AND ts < $3
                      AND agent_id = {agent}
                    ORDER BY ts DESC, sequence DESC LIMIT 1)
                   UNION ALL
                   (SELECT {cols} FROM latest
                    WHERE device = $1 AND agent_id = {agent} AND data_item_id = $2 AND ts < $3)
                 ) o ORDER BY ts DESC, sequence DESC LIMIT 1",
                cols = *OBSERVATION_COLUMNS,
                agent = agent_id_of(4),
            ),
            &[&device.device, &data_item_id, &at, &device.agent],
        )
        .await?;
    Ok(row.as_ref().map(observation_from_row))
}

pub(super) async fn conditions(
    client: &Client,
    devices: Option<&[DeviceKey]>,
    window: &TimeWindow,
    after: Option<(DateTime<Utc>, u64, &str)>,
    limit: usize,
) -> Result<Vec<AgentObservation>, StoreError> {
    let (after_ts, after_sequence, after_agent) = match after {
        Some((ts, sequence, agent)) => {
            (Some(ts), sequence.min(i64::MAX as u64) as i64, Some(agent))
        }
        None => (None, 0, None),
    };
    let (allowed_agents, allowed_names) = device_arrays(devices);
    // Ties between agents (equal timestamp and sequence) go by `agent_id`.
    let rows = client
        .query(
            &format!(
                "SELECT {cols}, a.url AS agent FROM observations o JOIN agents a ON a.id = o.agent_id
                 WHERE category = 'CONDITION' AND ts >= $1 AND ts < $2
                   AND ($3::text[] IS NULL OR (o.agent_id, o.device) IN ({allowed}))
                   AND ($5::timestamptz IS NULL OR (ts, sequence, o.agent_id) >
                        ($5, $6, coalesce({after_agent}, 2147483647)))
                 ORDER BY ts, sequence, o.agent_id LIMIT $4",
                cols = prefixed_columns("o."),
                after_agent = agent_id_of(8),
                allowed = allowed_devices(3, 7),
            ),
            &[
                &window.from(),
                &window.to(),
                &allowed_agents,
                &(limit.min(i64::MAX as usize) as i64),
                &after_ts,
                &after_sequence,
                &allowed_names,
                &after_agent,
            ],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| AgentObservation {
            agent: r.get("agent"),
            observation: observation_from_row(r),
        })
        .collect())
}

pub(super) async fn state_summary(
    client: &Client,
    device: &DeviceKey,
    data_item_id: &str,
    window: &TimeWindow,
    after: Option<DateTime<Utc>>,
    limit: usize,
) -> Result<StateSummary, StoreError> {
    let before = last_before(client, device, data_item_id, window.from()).await?;
    let before = before.map(|o| o.value.to_string());
    // The window's state changes (a value unlike the one before it, in (ts, sequence)
    // order, starting from the state held when the window began), each an interval
    // up to the next change; zero-length ones (two changes at one instant) dropped.
    // `agent` is the parameter holding the agent's URL.
    let held = |agent: usize| {
        format!(
            "WITH held AS (
             SELECT $3::timestamptz AS ts, -1::bigint AS sequence, $5::text AS state
             WHERE $5::text IS NOT NULL
             UNION ALL
             SELECT ts, sequence, COALESCE(value, 'UNAVAILABLE') FROM observations
             WHERE device = $1 AND data_item_id = $2 AND ts >= $3 AND ts < $4
               AND agent_id = {agent}
         )",
            agent = agent_id_of(agent)
        )
    };
    let intervals_held = held(8);
    let intervals = format!(
        "{intervals_held}, changes AS (
             SELECT ts, state FROM (
                 SELECT ts, state, LAG(state) OVER (ORDER BY ts, sequence) AS prev FROM held
             ) h WHERE prev IS DISTINCT FROM state
         ), intervals AS (
             SELECT state, ts AS start, LEAD(ts, 1, $4) OVER (ORDER BY ts) AS stop FROM changes
         )"
    );
    // The time in each state: each observation's state lasts until the next one (the same
    // sums as over the merged intervals, in one pass of one window function).
    let shares = client
        .query(
            &format!(
                "{shares_held} SELECT state, sum(extract(epoch FROM stop - ts))::float8 AS seconds
                 FROM (SELECT state, ts, LEAD(ts, 1, $4) OVER (ORDER BY ts, sequence) AS stop FROM held) h
                 GROUP BY state HAVING sum(stop - ts) > interval '0'
                 ORDER BY seconds DESC LIMIT {MAX_STATES}",
                shares_held = held(6)
            ),
            &[
                &device.device,
                &data_item_id,
                &window.from(),
                &window.to(),
                &before,
                &device.agent,
            ],
        )
        .await?;
    let shares: Vec<(String, f64)> = shares.iter().map(|r| (r.get(0), r.get(1))).collect();
    let total: f64 = shares.iter().map(|(_, s)| s).sum();
    let shares = shares
        .into_iter()
        .map(|(state, seconds)| StateShare {
            state,
            seconds,
            share: if total > 0.0 { seconds / total } else { 0.0 },
        })
        .collect();
    // One more than a page, plus what merging equal neighbours (around a dropped
    // zero-length interval) may take away: the page is cut after merging.
    let rows = client
        .query(
            &format!(
                "{intervals} SELECT state, start, stop FROM intervals
                 WHERE stop > start AND ($6::timestamptz IS NULL OR start > $6)
                 ORDER BY start LIMIT $7"
            ),
            &[
                &device.device,
                &data_item_id,
                &window.from(),
                &window.to(),
                &before,
                &after,
                &(limit
                    .saturating_mul(2)
                    .saturating_add(1)
                    .min(i64::MAX as usize) as i64),
                &device.agent,
            ],
        )
        .await?;
    let mut page: Vec<StateInterval> = Vec::with_capacity(rows.len().min(limit + 1));
    for r in &rows {
        let (state, from, to): (String, DateTime<Utc>, DateTime<Utc>) =
            (r.get(0), r.get(1), r.get(2));
        match page.last_mut() {
            Some(last) if last.state == state && last.to == from => last.to = to,
            _ => page.push(StateInterval { state, from, to }),
        }
    }
    let more = page.len() > limit || rows.len() as u64 > limit.saturating_mul(2) as u64;
    page.truncate(limit);
    let next = if more {
        page.last().map(|i| i.from)
    } else {
        None
    };
    Ok(StateSummary {
        shares,
        intervals: page,
        next,
    })
}

pub(super) async fn ping(client: &Client) -> Result<(), StoreError> {
    client.simple_query("SELECT 1").await?;
    Ok(())
}

pub(super) async fn configured_agents(client: &Client) -> Result<Vec<ConfiguredAgent>, StoreError> {
    let rows = client
        .query(
            "SELECT url, paused FROM configured_agents ORDER BY added_at, url",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| ConfiguredAgent {
            url: r.get(0),
            paused: r.get(1),
        })
        .collect())
}

pub(super) async fn put_configured_agent(
    client: &Client,
    agent: &ConfiguredAgent,
) -> Result<(), StoreError> {
    let (url, credentials) = crate::split_credentials(&agent.url);
    let (username, password) = match &credentials {
        Some(c) => (Some(c.username()), c.password()),
        None => (None, None),
    };
    // One statement: the agent and its credentials together.
    client
        .execute(
            "WITH agent AS (
                 INSERT INTO configured_agents (url, paused) VALUES ($1, $2)
                 ON CONFLICT (url) DO UPDATE SET paused = EXCLUDED.paused
                 RETURNING url)
             INSERT INTO agent_credentials (url, username, password)
             SELECT url, $3, $4 FROM agent WHERE $3::text IS NOT NULL
             ON CONFLICT (url) DO UPDATE SET username = EXCLUDED.username,
                                             password = EXCLUDED.password",
            &[&url.as_ref(), &agent.paused, &username, &password],
        )
        .await?;
    Ok(())
}

pub(super) async fn remove_configured_agent(
    client: &Client,
    url: &str,
) -> Result<bool, StoreError> {
    let url = crate::split_credentials(url).0;
    Ok(client
        .execute(
            "WITH credentials AS (DELETE FROM agent_credentials WHERE url = $1)
             DELETE FROM configured_agents WHERE url = $1",
            &[&url.as_ref()],
        )
        .await?
        > 0)
}

pub(super) async fn agent_credentials(
    client: &Client,
    url: &str,
) -> Result<Option<Credentials>, StoreError> {
    let url = crate::split_credentials(url).0;
    Ok(client
        .query_opt(
            "SELECT username, password FROM agent_credentials WHERE url = $1",
            &[&url.as_ref()],
        )
        .await?
        .map(|r| Credentials::new(r.get::<_, String>(0), r.get(1))))
}

pub(super) async fn observation_count(client: &Client) -> Result<u64, StoreError> {
    let n: i64 = client
        .query_one("SELECT count(*) FROM observations", &[])
        .await?
        .get(0);
    Ok(n as u64)
}
