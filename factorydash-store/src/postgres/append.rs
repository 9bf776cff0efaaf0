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
    loop {
        let result = append_once(store, batch, direct).await;
        match code(&result) {
            Some(SqlState::UNIQUE_VIOLATION) if direct => direct = false,
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
    let stored = tx
        .query_opt(
            "SELECT instance_id, next_sequence FROM agents WHERE id = $1 AND instance_id IS NOT NULL FOR UPDATE",
            &[&agent_id],
        )
        .await?
        .map(|r| ResumePoint {
            agent: batch.agent.clone(),
            instance_id: r.get::<_, i64>(0) as u64,
            next_sequence: r.get::<_, i64>(1) as u64,
        });
    let resume = crate::resume_after(stored.as_ref(), batch);
    let observations = unstored(&tx, agent_id, stored.as_ref(), batch).await?;
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
    // The newest of each data item replaces the stored one unless that one is newer. A
    // latest row is the agent's (a device is its agent and its name).
    tx.execute(
        &format!(
            "INSERT INTO latest ({}) SELECT $1::int, $2::bigint, u.* FROM {}
             ON CONFLICT (device, agent_id, data_item_id) DO UPDATE SET {}
             WHERE (latest.instance_id, latest.sequence) < (EXCLUDED.instance_id, EXCLUDED.sequence)",
            *ALL_COLUMNS,
            *UNNEST,
            set_excluded_except(&["device", "agent_id", "data_item_id"]),
        ),
        &params,
    )
    .await?;
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

/// The observations of `batch` not stored yet, in batch order: each `sequence` once (the
/// first of a batch that repeats one), less those of the same `instanceId` already stored.
/// An observation is identified by (agent, `instanceId`, `sequence`), whatever its
/// timestamp; the table's key holds the timestamp too (a partitioned table's keys must
/// hold the partition key), so an agent that sends a sequence again with another
/// timestamp is caught here, not by the key. Of the stored resume point's instance, only
/// sequences below it can be stored already (it is past every stored sequence), so the
/// usual batch, all past it, costs no lookup; the others, and every sequence of a batch of
/// another instance, are looked up by the key's index in every partition.
async fn unstored<'b>(
    tx: &Transaction<'_>,
    agent_id: i32,
    stored: Option<&ResumePoint>,
    batch: &'b Batch,
) -> Result<Vec<&'b Observation>, tokio_postgres::Error> {
    let mut seen = HashSet::with_capacity(batch.observations.len());
    let mut out: Vec<&Observation> = batch
        .observations
        .iter()
        .filter(|o| seen.insert(o.sequence))
        .collect();
    let Some(stored) = stored else {
        return Ok(out); // nothing of this agent is stored
    };
    // Of the stored instance, only sequences below its resume point can be stored; of
    // another one (an agent switching back to an earlier instanceId), any may be.
    let bound = if stored.instance_id == batch.instance_id {
        stored.next_sequence
    } else {
        u64::MAX
    };
    let below: Vec<i64> = out
        .iter()
        .filter(|o| o.sequence < bound)
        .map(|o| o.sequence as i64)
        .collect();
    if below.is_empty() {
        return Ok(out);
    }
    let rows = tx
        .query(
            "SELECT sequence FROM observations WHERE agent_id = $1 AND instance_id = $2 AND sequence = ANY($3)",
            &[&agent_id, &(batch.instance_id as i64), &below],
        )
        .await?;
    let present: HashSet<u64> = rows.iter().map(|r| r.get::<_, i64>(0) as u64).collect();
    out.retain(|o| !present.contains(&o.sequence));
    Ok(out)
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
