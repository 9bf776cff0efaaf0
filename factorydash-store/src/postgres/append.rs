//! Ingest: batches of observations (binary `COPY`, through the session's staging table
//! when some are stored already), device models, resume points, gaps, and the daily
//! partitions that batches create and retention drops.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use factorydash_core::{Batch, DataItemInfo, DeviceInfo, Gap, Observation, ResumePoint};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, GenericClient, Transaction};

use super::columns::{
    set_excluded_except, CopyRow, ObservationArrays, ALL_COLUMNS, COLUMN_TYPES, UNNEST,
};
use super::coordination::APPENDED_CHANNEL;
use super::PgStore;
use crate::{AppendOutcome, StoreError};

/// The id of `url` in `agents`, added when new; remembered by the store.
async fn agent_id(
    store: &PgStore,
    client: &impl GenericClient,
    url: &str,
) -> Result<i32, StoreError> {
    if let Some(id) = store
        .agent_ids
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(url)
    {
        return Ok(*id);
    }
    let row = client
        .query_one(
            "INSERT INTO agents (url) VALUES ($1) ON CONFLICT (url) DO UPDATE SET url = EXCLUDED.url RETURNING id",
            &[&url],
        )
        .await?;
    let id: i32 = row.get(0);
    store
        .agent_ids
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(url.to_owned(), id);
    Ok(id)
}

/// [`Store::append`](crate::Store::append), on the ingest connection.
pub(super) async fn append(store: &PgStore, batch: &Batch) -> Result<AppendOutcome, StoreError> {
    crate::check_range(batch)?;
    let code = |r: &Result<AppendOutcome, StoreError>| match r {
        Err(StoreError::Database(e)) => e.code().cloned(),
        _ => None,
    };
    // Usually nothing of a batch is stored yet: COPY it straight into `observations`.
    // If some of it is (a re-read after a reconnect), the key says so and the batch goes
    // through staging, which drops what is stored.
    let mut direct = true;
    let mut forgot_partitions = false;
    let mut overlaps = 0;
    loop {
        let result = append_once(store, batch, direct).await;
        match code(&result) {
            Some(SqlState::UNIQUE_VIOLATION) if direct => direct = false,
            // Another process stored part of the batch's sequences between this one's
            // look and its insert (their islands overlap): look again, a few times.
            Some(SqlState::EXCLUSION_VIOLATION) if overlaps < 3 => {
                overlaps += 1;
                direct = false;
            }
            // Another process dropped a partition this one knew of (retention): forget
            // what it knew and create what is missing.
            Some(SqlState::CHECK_VIOLATION) if !forgot_partitions => {
                store
                    .partitions
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clear();
                forgot_partitions = true;
            }
            _ => return result,
        }
    }
}

/// One attempt at [`append`]: `direct` copies into `observations` (fails on a duplicate),
/// otherwise through the staging table (drops duplicates).
async fn append_once(
    store: &PgStore,
    batch: &Batch,
    direct: bool,
) -> Result<AppendOutcome, StoreError> {
    // A transaction needs exclusive use of the connection.
    let mut client = store.ingest.lock().await?;
    let agent_id = agent_id(store, &*client, &batch.agent).await?;
    let instance_id = batch.instance_id as i64;
    let new_days: Vec<NaiveDate> = {
        let known = store.partitions.lock().unwrap_or_else(|p| p.into_inner());
        let days: BTreeSet<NaiveDate> = batch
            .observations
            .iter()
            .map(|o| o.timestamp.date_naive())
            .filter(|d| !known.contains(d))
            .collect();
        days.into_iter().collect()
    };
    let tx = client.transaction().await?;
    // The agent's row is locked until commit: appends of one agent are serialised, so
    // what is checked here as stored stays true until this batch is.
    // Locked also before the agent's first batch (no resume point yet).
    let row = tx
        .query_one(
            "SELECT instance_id, next_sequence FROM agents WHERE id = $1 FOR UPDATE",
            &[&agent_id],
        )
        .await?;
    let stored = match (row.get::<_, Option<i64>>(0), row.get::<_, Option<i64>>(1)) {
        (Some(instance_id), Some(next_sequence)) => Some(ResumePoint {
            agent: batch.agent.clone(),
            instance_id: instance_id as u64,
            next_sequence: next_sequence as u64,
        }),
        _ => None,
    };
    let resume = crate::resume_after(stored.as_ref(), batch);
    let observations = claim_unstored(&tx, agent_id, batch).await?;
    // The newest observation of each data item in the batch, for `latest`.
    let mut newest: HashMap<(&str, &str), &Observation> = HashMap::new();
    for &o in &observations {
        newest
            .entry((&o.device, &o.data_item_id))
            .and_modify(|n| {
                if o.sequence > n.sequence {
                    *n = o;
                }
            })
            .or_insert(o);
    }
    let mut latest = ObservationArrays::default();
    for o in newest.values() {
        latest.push(o);
    }
    if !new_days.is_empty() {
        tx.execute(
            "SELECT factorydash_observation_partition(day) FROM unnest($1::date[]) AS day",
            &[&new_days],
        )
        .await?;
    }
    // Binary COPY into the session's staging table, then into `observations` less what
    // is already stored (same agent, instanceId, sequence).
    let table = if direct {
        "observations"
    } else {
        "staging_observations"
    };
    let sink = tx
        .copy_in(&format!(
            "COPY {table} ({}) FROM STDIN BINARY",
            *ALL_COLUMNS
        ))
        .await?;
    let writer = BinaryCopyInWriter::new(sink, &COLUMN_TYPES);
    futures_util::pin_mut!(writer);
    for o in &observations {
        let row = CopyRow::new(agent_id, instance_id, o);
        writer.as_mut().write(&row.values()).await?;
    }
    let copied = writer.finish().await?;
    let inserted = if direct {
        copied
    } else {
        tx.execute(
            &format!(
                "INSERT INTO observations ({all}) SELECT {all} FROM staging_observations
                 ON CONFLICT DO NOTHING",
                all = *ALL_COLUMNS
            ),
            &[],
        )
        .await?
    };
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&agent_id, &instance_id];
    params.extend(latest.params());
    let plan = super::summary::Plan::new(&store.summary_ids, &batch.agent, &observations);
    let known = plan.known_ids();
    // The newest of each data item replaces the stored one unless that one is newer. A
    // latest row is the agent's (a device is its agent and its name). The summaries'
    // held states are read in the same round trip (tokio-postgres pipelines the two).
    let latest_sql = format!(
            "INSERT INTO latest ({}) SELECT $1::int, $2::bigint, u.* FROM {}
             ON CONFLICT (device, agent_id, data_item_id) DO UPDATE SET {}
             WHERE (latest.instance_id, latest.sequence) < (EXCLUDED.instance_id, EXCLUDED.sequence)",
            *ALL_COLUMNS,
            *UNNEST,
        set_excluded_except(&["device", "agent_id", "data_item_id"]),
    );
    let (_, held) = futures_util::future::try_join(
        async { Ok::<_, StoreError>(tx.execute(&latest_sql, &params).await?) },
        async {
            if known.is_empty() {
                Ok(HashMap::new())
            } else {
                super::summary::held(&tx, &known).await
            }
        },
    )
    .await?;
    let summary_ids = super::summary::summarize(&tx, &batch.agent, plan, held).await?;
    let next_sequence = resume.next_sequence as i64;
    tx.execute(
        "UPDATE agents SET instance_id = $2, next_sequence = $3, updated_at = now() WHERE id = $1",
        &[&agent_id, &instance_id, &next_sequence],
    )
    .await?;
    // Other processes on this database learn of the batch at commit (LISTEN).
    if let (Some(first), Some(last)) = (
        observations.iter().map(|o| o.sequence).min(),
        observations.iter().map(|o| o.sequence).max(),
    ) {
        // Read back by `coordination::parse_appended`.
        let payload = format!(
            "{instance_id} {first} {last} {next_sequence} {}",
            batch.agent
        );
        tx.execute("SELECT pg_notify($1, $2)", &[&APPENDED_CHANNEL, &payload])
            .await?;
    }
    tx.commit().await?;
    store.summary_ids.remember(&batch.agent, summary_ids);
    store
        .partitions
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .extend(new_days);
    Ok(AppendOutcome {
        inserted,
        duplicates: batch.observations.len() as u64 - inserted,
    })
}

/// The observations of `batch` not stored yet, in batch order (each `sequence` once: the
/// first of a batch that repeats one), with their sequences claimed in
/// `stored_sequences` (schema version 5) in the same transaction.
///
/// An observation is identified by (agent, `instanceId`, `sequence`), whatever its
/// timestamp. `observations` cannot say so by its key (a partitioned table's keys must hold
/// the partition key, `ts`), so `stored_sequences` does: the stored sequences of each run
/// as ranges that an exclusion constraint keeps from overlapping. One index probe reads
/// the ranges that overlap or touch the batch's span; what falls inside one is stored
/// already; each stretch of the rest between two stored ranges is claimed from its first
/// to its last sequence, merged with the ranges it touches (usually: the run's last range
/// grows). A claim that overlaps another (a bug, or a process that appends without the
/// agent's row lock) fails the transaction at commit, never stores a copy.
async fn claim_unstored<'b>(
    tx: &Transaction<'_>,
    agent_id: i32,
    batch: &'b Batch,
) -> Result<Vec<&'b Observation>, tokio_postgres::Error> {
    let mut seen = HashSet::with_capacity(batch.observations.len());
    let mut out: Vec<&Observation> = batch
        .observations
        .iter()
        .filter(|o| seen.insert(o.sequence))
        .collect();
    let (Some(low), Some(high)) = (
        out.iter().map(|o| o.sequence as i64).min(),
        out.iter().map(|o| o.sequence as i64).max(),
    ) else {
        return Ok(out);
    };
    let instance_id = batch.instance_id as i64;
    let rows = tx
        .query(
            "SELECT first_sequence, last_sequence FROM stored_sequences
             WHERE numrange(agent_id, agent_id, '[]') && numrange($1::int, $1::int, '[]')
               AND numrange(instance_id, instance_id, '[]') && numrange($2::bigint, $2::bigint, '[]')
               AND numrange(first_sequence, last_sequence, '[]')
                   && numrange($3::bigint - 1::numeric, $4::bigint + 1::numeric, '[]')
             ORDER BY first_sequence",
            &[&agent_id, &instance_id, &low, &high],
        )
        .await?;
    let stored: Vec<(i64, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let plan = ClaimPlan::new(&stored, out.iter().map(|o| o.sequence as i64));
    out.retain(|o| !plan.is_stored(o.sequence as i64));
    if !plan.merged.is_empty() {
        let (first, last): (Vec<i64>, Vec<i64>) = plan.merged.iter().copied().unzip();
        tx.execute(
            "WITH merged AS (
                 DELETE FROM stored_sequences
                 WHERE agent_id = $1 AND instance_id = $2 AND first_sequence = ANY($3)
             )
             INSERT INTO stored_sequences (agent_id, instance_id, first_sequence, last_sequence)
             SELECT $1, $2, f, l FROM unnest($4::bigint[], $5::bigint[]) AS u(f, l)",
            &[&agent_id, &instance_id, &plan.replaced, &first, &last],
        )
        .await?;
    }
    Ok(out)
}

/// What a batch's sequences do to the stored ranges of its run (see [`claim_unstored`]):
/// which are stored already, which stored ranges are replaced and by what.
#[derive(Debug, PartialEq, Eq)]
struct ClaimPlan {
    /// The stored ranges near the batch, (first, last) inclusive, by first.
    stored: Vec<(i64, i64)>,
    /// The first sequences of the stored ranges merged into a new one.
    replaced: Vec<i64>,
    /// The ranges to store (new claims with the stored ranges they touch), by first.
    merged: Vec<(i64, i64)>,
}

impl ClaimPlan {
    /// The plan for `sequences` (any order, distinct) against `stored` (inclusive ranges
    /// that neither overlap nor touch, by first).
    fn new(stored: &[(i64, i64)], sequences: impl Iterator<Item = i64>) -> Self {
        let within = |s: i64| {
            let i = stored.partition_point(|&(first, _)| first <= s);
            i > 0 && stored[i - 1].1 >= s
        };
        let mut new: Vec<i64> = sequences.filter(|&s| !within(s)).collect();
        new.sort_unstable();
        // Stretches of new sequences with no stored range between them: one claim each.
        let mut claims: Vec<(i64, i64)> = Vec::new();
        for s in new {
            match claims.last_mut() {
                Some((_, last))
                    if stored
                        .get(stored.partition_point(|&(first, _)| first <= *last))
                        .is_none_or(|&(first, _)| first > s) =>
                {
                    *last = s
                }
                _ => claims.push((s, s)),
            }
        }
        // Every range, old and new, by first; touching ones that hold a claim are merged.
        let mut all: Vec<(i64, i64, bool)> = stored
            .iter()
            .map(|&(f, l)| (f, l, false))
            .chain(claims.iter().map(|&(f, l)| (f, l, true)))
            .collect();
        all.sort_unstable();
        let mut replaced = Vec::new();
        let mut merged: Vec<(i64, i64)> = Vec::new();
        let mut group: Vec<(i64, i64, bool)> = Vec::new();
        let mut flush = |group: &mut Vec<(i64, i64, bool)>| {
            if group.iter().any(|&(_, _, new)| new) {
                replaced.extend(group.iter().filter(|g| !g.2).map(|g| g.0));
                merged.push((group[0].0, group[group.len() - 1].1));
            }
            group.clear();
        };
        for range in all {
            if group
                .last()
                .is_some_and(|&(_, last, _)| last.checked_add(1) != Some(range.0))
            {
                flush(&mut group);
            }
            group.push(range);
        }
        flush(&mut group);
        ClaimPlan {
            stored: stored.to_vec(),
            replaced,
            merged,
        }
    }

    /// Whether `sequence` is in a stored range.
    fn is_stored(&self, sequence: i64) -> bool {
        let i = self.stored.partition_point(|&(first, _)| first <= sequence);
        i > 0 && self.stored[i - 1].1 >= sequence
    }
}

/// [`Store::put_devices`](crate::Store::put_devices), in one transaction on the ingest
/// connection.
pub(super) async fn put_devices(
    store: &PgStore,
    agent: &str,
    devices: &[DeviceInfo],
) -> Result<(), StoreError> {
    let mut client = store.ingest.lock().await?;
    let agent_id = agent_id(store, &*client, agent).await?;
    let tx = client.transaction().await?;
    tx.execute("DELETE FROM data_items WHERE agent_id = $1", &[&agent_id])
        .await?;
    tx.execute("DELETE FROM devices WHERE agent_id = $1", &[&agent_id])
        .await?;
    for d in devices {
        tx.execute(
                "INSERT INTO devices (agent_id, name, uuid, device_id) VALUES ($1, $2, $3, $4) ON CONFLICT (agent_id, name) DO UPDATE SET uuid = EXCLUDED.uuid, device_id = EXCLUDED.device_id",
                &[&agent_id, &d.name, &d.uuid, &d.id],
            )
            .await?;
        let ordinal: Vec<i32> = (0..d.data_items.len() as i32).collect();
        let col = |f: fn(&DataItemInfo) -> &str| d.data_items.iter().map(f).collect::<Vec<&str>>();
        let opt = |f: fn(&DataItemInfo) -> Option<&str>| {
            d.data_items.iter().map(f).collect::<Vec<Option<&str>>>()
        };
        tx.execute(
                "INSERT INTO data_items (agent_id, device, ordinal, id, name, category, kind, sub_type, units, component, component_id, component_name)
                 SELECT $1, $2, * FROM UNNEST($3::int[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[])
                 ON CONFLICT DO NOTHING",
                &[
                    &agent_id,
                    &d.name,
                    &ordinal,
                    &col(|i| &i.id),
                    &opt(|i| i.name.as_deref()),
                    &col(|i| i.category.as_str()),
                    &col(|i| &i.kind),
                    &opt(|i| i.sub_type.as_deref()),
                    &opt(|i| i.units.as_deref()),
                    &col(|i| &i.component),
                    &col(|i| &i.component_id),
                    &opt(|i| i.component_name.as_deref()),
                ],
            )
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// [`Store::resume_point`](crate::Store::resume_point).
pub(super) async fn resume_point(
    client: &Client,
    agent: &str,
) -> Result<Option<ResumePoint>, StoreError> {
    let row = client
        .query_opt(
            "SELECT instance_id, next_sequence FROM agents WHERE url = $1 AND instance_id IS NOT NULL",
            &[&agent],
        )
        .await?;
    Ok(row.map(|r| ResumePoint {
        agent: agent.to_owned(),
        instance_id: r.get::<_, i64>(0) as u64,
        next_sequence: r.get::<_, i64>(1) as u64,
    }))
}

/// [`Store::instances`](crate::Store::instances): from `stored_sequences`, whatever the
/// retention dropped.
pub(super) async fn instances(
    client: &Client,
    agent: &str,
    limit: usize,
) -> Result<Vec<ResumePoint>, StoreError> {
    let rows = client
        .query(
            "SELECT s.instance_id, max(s.last_sequence) FROM stored_sequences s
             JOIN agents a ON a.id = s.agent_id WHERE a.url = $1
             GROUP BY s.instance_id ORDER BY s.instance_id DESC LIMIT $2",
            &[&agent, &(limit.min(i64::MAX as usize) as i64)],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| ResumePoint {
            agent: agent.to_owned(),
            instance_id: r.get::<_, i64>(0) as u64,
            next_sequence: r.get::<_, i64>(1) as u64 + 1,
        })
        .collect())
}

/// [`Store::record_gap`](crate::Store::record_gap).
pub(super) async fn record_gap(
    store: &PgStore,
    client: &Client,
    gap: &Gap,
) -> Result<(), StoreError> {
    let agent_id = agent_id(store, client, &gap.agent).await?;
    client
        .execute(
            "INSERT INTO gaps (agent_id, instance_id, from_sequence, to_sequence) VALUES ($1, $2, $3, $4)",
            &[&agent_id, &(gap.instance_id as i64), &(gap.from as i64), &gap.to.map(|t| t as i64)],
        )
        .await?;
    Ok(())
}

/// [`Store::prune`](crate::Store::prune): drops the daily partitions of `observations`
/// that end at or before `cutoff`.
pub(super) async fn prune(
    store: &PgStore,
    client: &Client,
    cutoff: DateTime<Utc>,
) -> Result<u64, StoreError> {
    // Partitions are named observations_YYYYMMDD; a day ends at the next midnight UTC.
    let partitions = client
        .query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'observations'::regclass ORDER BY 1",
            &[],
        )
        .await?;
    let mut dropped = 0u64;
    for row in partitions {
        let name: String = row.get(0);
        let Some(day) = name
            .strip_prefix("observations_")
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y%m%d").ok())
        else {
            continue;
        };
        let Some(end) = day
            .succ_opt()
            .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
        else {
            continue;
        };
        if end > cutoff {
            continue;
        }
        let n: i64 = client
            .query_one(&format!("SELECT count(*) FROM \"{name}\""), &[])
            .await?
            .get(0);
        client
            .batch_execute(&format!("DROP TABLE IF EXISTS \"{name}\""))
            .await?;
        store
            .partitions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&day);
        dropped += n as u64;
    }
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::ClaimPlan;

    fn plan(stored: &[(i64, i64)], sequences: &[i64]) -> (Vec<i64>, Vec<(i64, i64)>) {
        let p = ClaimPlan::new(stored, sequences.iter().copied());
        (p.replaced, p.merged)
    }

    #[test]
    fn a_run_read_in_order_is_one_growing_range() {
        assert_eq!(plan(&[], &[1, 2, 3]), (vec![], vec![(1, 3)]));
        assert_eq!(plan(&[(1, 3)], &[4, 5, 6]), (vec![1], vec![(1, 6)]));
        // Skipped sequences inside a batch are claimed with it (never read later).
        assert_eq!(plan(&[(1, 3)], &[4, 9]), (vec![1], vec![(1, 9)]));
    }

    #[test]
    fn stored_sequences_are_not_claimed_again() {
        let p = ClaimPlan::new(&[(1, 10)], [3, 4, 5].into_iter());
        assert!(p.merged.is_empty() && p.replaced.is_empty());
        assert!(p.is_stored(3) && p.is_stored(10) && !p.is_stored(11) && !p.is_stored(0));
    }

    #[test]
    fn claims_stop_at_stored_ranges_and_merge_what_they_touch() {
        // 5..=6 and 10..=12 stored; a batch of 1..=15 fills around them.
        let (replaced, merged) = plan(&[(5, 6), (10, 12)], &(1..=15).collect::<Vec<_>>());
        assert_eq!(replaced, vec![5, 10]);
        assert_eq!(merged, vec![(1, 15)]);
        // Not touching: a separate claim, nothing replaced.
        assert_eq!(plan(&[(5, 6)], &[9, 10]), (vec![], vec![(9, 10)]));
        // Between two stored ranges with a hole left: two claims.
        assert_eq!(
            plan(&[(5, 6), (20, 30)], &[2, 3, 8, 9]),
            (vec![], vec![(2, 3), (8, 9)])
        );
    }

    #[test]
    fn the_largest_sequence_does_not_overflow() {
        let max = i64::MAX;
        assert_eq!(plan(&[(max - 1, max)], &[max]), (vec![], vec![]));
        assert_eq!(plan(&[], &[max - 1, max]), (vec![], vec![(max - 1, max)]));
    }
}
