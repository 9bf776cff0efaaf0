//! The PostgreSQL store, on tokio-postgres.
//!
//! The schema is created and migrated on [`PgStore::connect`]: versioned migrations are
//! embedded in the crate and applied under a transaction-scoped advisory lock, so several
//! processes may start at once.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

use factorydash_core::states::{StateInterval, StateShare, StateSummary, MAX_STATES};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use factorydash_core::downsample::{self, Bucket};
use factorydash_core::{
    Batch, Category, ConditionLevel, ConditionState, DataItemInfo, DeviceInfo, Gap, Observation,
    Page, PageRequest, ResumePoint, TimeWindow, Value,
};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Config, NoTls, Row};

use crate::{
    latest_after, latest_cursor, AppendOutcome, ConfiguredAgent, LatestFilter, Store, StoreError,
};

/// The embedded migrations, in order; the schema version is the number applied.
const MIGRATIONS: &[&str] = &[
    include_str!("postgres/0001_initial.sql"),
    include_str!("postgres/0002_configured_agents.sql"),
];

/// The advisory lock key that serialises migrations ("factorydash" in ASCII, folded).
const MIGRATION_LOCK: i64 = 0x6661_6374_6f72_7964;
// The next key, 0x6661_6374_6f72_7965, serialises partition creation (see
// `factorydash_observation_partition` in the schema).

/// The `LISTEN` channel on which every append is announced (see [`PgStore::listen`]).
pub const APPENDED_CHANNEL: &str = "factorydash_appended";
const LISTEN_APPENDED: &str = "LISTEN factorydash_appended";

/// The first key of the agents' advisory locks ("fd"); the second is `hashtext(url)`.
const AGENT_LOCK_CLASS: i32 = 0x6664;

/// A batch another connection (or process) stored, as announced on [`APPENDED_CHANNEL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// The agent's base URL.
    pub agent: String,
    /// The agent's `instanceId`.
    pub instance_id: u64,
    /// The lowest and highest `sequence` in the batch.
    pub sequences: std::ops::RangeInclusive<u64>,
    /// The agent's resume point after the batch.
    pub next_sequence: u64,
}

/// The right to ingest one agent, held by one process among those sharing a database: a
/// session-level advisory lock on a connection of its own (PostgreSQL, "Advisory Locks").
/// Released when dropped, or when the connection is lost (then [`AgentLock::lost`]
/// resolves and another process may take it).
pub struct AgentLock {
    _client: Client,
    closed: tokio::sync::watch::Receiver<bool>,
}

impl std::fmt::Debug for AgentLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentLock").finish_non_exhaustive()
    }
}

impl AgentLock {
    /// Resolves when the lock's connection is lost, and with it the lock.
    pub async fn lost(&mut self) {
        let _ = self.closed.wait_for(|closed| *closed).await;
    }
}

/// A [`Store`] on PostgreSQL.
///
/// Holds one connection; tokio-postgres pipelines concurrent queries on it. When the
/// connection is lost, the next call reconnects (and fails if the server is still away).
pub struct PgStore {
    config: Config,
    client: tokio::sync::RwLock<Client>,
    agent_ids: Mutex<HashMap<String, i32>>,
    /// The UTC days known to have a partition of `observations`.
    partitions: Mutex<HashSet<NaiveDate>>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

/// The session's staging table: a batch that holds observations already stored is copied
/// here (binary `COPY`), then moved into `observations` with those dropped. Emptied at
/// every commit.
const STAGING: &str = "CREATE TEMP TABLE IF NOT EXISTS staging_observations (
    agent_id integer, instance_id bigint, sequence bigint, ts timestamptz, device text,
    component_id text, data_item_id text, name text, category text, kind text, sub_type text,
    value text, level text, native_code text, native_severity text, qualifier text
) ON COMMIT DELETE ROWS";

/// The column types of `staging_observations`, in order, for the binary `COPY`.
const STAGING_TYPES: [Type; 16] = [
    Type::INT4,
    Type::INT8,
    Type::INT8,
    Type::TIMESTAMPTZ,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
];

async fn open(config: &Config) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "PostgreSQL connection closed");
        }
    });
    client.batch_execute(STAGING).await?;
    client.batch_execute(SESSION_SETTINGS).await?;
    Ok(client)
}

/// Settings of the store's session. Its queries are short or bounded: JIT compiling costs
/// more than it saves on them (200 ms on a day's M4 buckets). The grouping sort of
/// [`Store::buckets`] over a day at 10 Hz needs ~40 MB: in memory it is 3x faster than
/// spilled to disk; one such sort runs at a time per session.
const SESSION_SETTINGS: &str = "SET jit = off; SET work_mem = '64MB'";

impl PgStore {
    /// Connects to `url` (e.g. `postgres://postgres@127.0.0.1:5432/factorydash`) and
    /// migrates the schema to this build's version.
    ///
    /// # Errors
    /// [`StoreError::Database`] when the URL is invalid or the server unreachable;
    /// [`StoreError::SchemaTooNew`] when the database was migrated by a newer build.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let config: Config = url.parse()?;
        Self::connect_with(config).await
    }

    /// Connects with a prepared configuration (e.g. with `options` setting a
    /// `search_path`) and migrates the schema.
    ///
    /// # Errors
    /// As [`PgStore::connect`].
    pub async fn connect_with(config: Config) -> Result<Self, StoreError> {
        let mut client = open(&config).await?;
        migrate(&mut client).await?;
        Ok(PgStore {
            config,
            client: tokio::sync::RwLock::new(client),
            agent_ids: Mutex::new(HashMap::new()),
            partitions: Mutex::new(HashSet::new()),
        })
    }

    /// The live client, reconnecting first when the connection was lost.
    async fn client(&self) -> Result<tokio::sync::RwLockReadGuard<'_, Client>, StoreError> {
        {
            let client = self.client.read().await;
            if !client.is_closed() {
                return Ok(client);
            }
        }
        let mut client = self.client.write().await;
        if client.is_closed() {
            *client = open(&self.config).await?;
            tracing::info!("reconnected to PostgreSQL");
        }
        Ok(client.downgrade())
    }

    /// Exclusive use of the connection, for a transaction; reconnects when it was lost.
    async fn exclusive(&self) -> Result<tokio::sync::RwLockWriteGuard<'_, Client>, StoreError> {
        let mut client = self.client.write().await;
        if client.is_closed() {
            *client = open(&self.config).await?;
            tracing::info!("reconnected to PostgreSQL");
        }
        Ok(client)
    }

    async fn agent_id(
        &self,
        client: &impl tokio_postgres::GenericClient,
        url: &str,
    ) -> Result<i32, StoreError> {
        if let Some(id) = self
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
        self.agent_ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(url.to_owned(), id);
        Ok(id)
    }
}

impl PgStore {
    /// Takes the right to ingest `agent` (its base URL) if no other session holds it.
    /// `Ok(None)`: another process ingests it.
    ///
    /// # Errors
    /// [`StoreError::Database`] when the server cannot be reached.
    pub async fn try_lock_agent(&self, agent: &str) -> Result<Option<AgentLock>, StoreError> {
        let (client, connection) = self.config.connect(NoTls).await?;
        let (tx, closed) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "the agent lock's connection closed");
            }
            let _ = tx.send(true);
        });
        let locked: bool = client
            .query_one(
                "SELECT pg_try_advisory_lock($1, hashtext($2))",
                &[&AGENT_LOCK_CLASS, &agent],
            )
            .await?
            .get(0);
        Ok(locked.then_some(AgentLock {
            _client: client,
            closed,
        }))
    }

    /// Listens, on a connection of its own, for the batches any process appends to this
    /// database, and sends each on the returned channel (at most `capacity` waiting; when
    /// the receiver is slower, announcements are dropped rather than queued). The channel
    /// closes when the connection is lost; call again to listen again.
    ///
    /// # Errors
    /// [`StoreError::Database`] when the server cannot be reached.
    pub async fn listen(
        &self,
        capacity: usize,
    ) -> Result<tokio::sync::mpsc::Receiver<Appended>, StoreError> {
        let (client, mut connection) = self.config.connect(NoTls).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(capacity.max(1));
        let listening = async move {
            use futures_util::StreamExt;
            let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            // LISTEN completes only while the connection is driven, below.
            let listen = client.batch_execute(LISTEN_APPENDED);
            futures_util::pin_mut!(listen);
            let mut listened = false;
            loop {
                tokio::select! {
                    r = &mut listen, if !listened => {
                        listened = true;
                        if let Err(e) = r {
                            tracing::warn!(error = %e, "LISTEN failed");
                            return;
                        }
                    }
                    m = messages.next() => match m {
                        Some(Ok(tokio_postgres::AsyncMessage::Notification(n))) => {
                            let Some(a) = parse_appended(n.payload()) else { continue };
                            if tx.try_send(a).is_err() && tx.is_closed() {
                                return;
                            }
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "the LISTEN connection closed");
                            return;
                        }
                        None => return,
                    }
                }
            }
        };
        tokio::spawn(listening);
        Ok(rx)
    }

    /// The latest values that the batch announced by `appended` set and that still hold:
    /// what a process that did not store the batch pushes to its browsers.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn latest_of(&self, appended: &Appended) -> Result<Vec<Observation>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {OBSERVATION_COLUMNS} FROM latest l JOIN agents a ON a.id = l.agent_id
                     WHERE a.url = $1 AND l.instance_id = $2 AND l.sequence BETWEEN $3 AND $4
                     ORDER BY device, data_item_id"
                ),
                &[
                    &appended.agent,
                    &(appended.instance_id as i64),
                    &(*appended.sequences.start() as i64),
                    &(*appended.sequences.end() as i64),
                ],
            )
            .await?;
        Ok(rows.iter().map(observation_from_row).collect())
    }
}

impl PgStore {
    /// [`Store::latest`] (`at` is `None`) and [`Store::as_of`]: the rows of `latest` that
    /// pass the filter, as a keyset page by (device, `dataItemId`); as of `at`, each row's
    /// newest observation at or before it instead (one index probe per data item, the
    /// latest row standing in where retention dropped the history).
    async fn latest_page(
        &self,
        filter: &LatestFilter,
        at: Option<DateTime<Utc>>,
        page: &PageRequest,
    ) -> Result<Page<Observation>, StoreError> {
        let after = latest_after(page)?;
        let limit = page.effective_limit();
        let (after_device, after_item) = match &after {
            Some((d, i)) => (Some(d.as_str()), Some(i.as_str())),
            None => (None, None),
        };
        let l = prefixed_columns("l.");
        let source = match at {
            None => format!("SELECT {l} FROM latest l"),
            Some(_) => {
                let o = prefixed_columns("o.");
                format!(
                    "SELECT h.* FROM latest l CROSS JOIN LATERAL (
                       SELECT * FROM (
                         (SELECT {o} FROM observations o
                          WHERE o.device = l.device AND o.data_item_id = l.data_item_id
                            AND o.ts <= $9
                          ORDER BY o.ts DESC, o.sequence DESC LIMIT 1)
                         UNION ALL
                         (SELECT {l} WHERE l.ts <= $9)
                       ) c ORDER BY ts DESC, sequence DESC LIMIT 1
                     ) h"
                )
            }
        };
        let limit_param = (limit + 1) as i64;
        let category = filter.category.map(|c| c.as_str());
        let search = filter.search.as_ref().map(|s| s.to_lowercase());
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![
            &filter.device,
            &after_device,
            &after_item,
            &limit_param,
            &filter.component_id,
            &category,
            &filter.kind,
            &search,
        ];
        if let Some(at) = &at {
            params.push(at);
        }
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "{source}
                     WHERE ($1::text IS NULL OR l.device = $1)
                       AND ($2::text IS NULL OR (l.device, l.data_item_id) > ($2::text, $3::text))
                       AND ($5::text IS NULL OR l.component_id = $5)
                       AND ($6::text IS NULL OR l.category = $6)
                       AND ($7::text IS NULL OR l.kind = $7)
                       AND ($8::text IS NULL OR strpos(lower(l.data_item_id), $8) > 0
                            OR strpos(lower(coalesce(l.name, '')), $8) > 0)
                     ORDER BY l.device, l.data_item_id
                     LIMIT $4"
                ),
                &params,
            )
            .await?;
        let items = rows.iter().map(observation_from_row).collect();
        Ok(Page::from_overfetch(items, limit, latest_cursor))
    }
}

/// Parses an [`APPENDED_CHANNEL`] payload: "instance_id first last next url".
fn parse_appended(payload: &str) -> Option<Appended> {
    let mut f = payload.splitn(5, ' ');
    let mut n = || f.next()?.parse::<u64>().ok();
    let (instance_id, first, last, next_sequence) = (n()?, n()?, n()?, n()?);
    Some(Appended {
        agent: f.next()?.to_owned(),
        instance_id,
        sequences: first..=last,
        next_sequence,
    })
}

async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS factorydash_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
        .await?;
    let current: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM factorydash_migrations",
            &[],
        )
        .await?
        .get(0);
    let known = MIGRATIONS.len() as i32;
    if current > known {
        return Err(StoreError::SchemaTooNew {
            found: current,
            known,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO factorydash_migrations (version) VALUES ($1)",
            &[&(i as i32 + 1)],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The observation columns, in the order [`observation_from_row`] reads them.
const OBSERVATION_COLUMNS: &str = "sequence, ts, device, component_id, data_item_id, name, category, kind, sub_type, value, level, native_code, native_severity, qualifier";

/// [`OBSERVATION_COLUMNS`] with each column prefixed (`o.sequence, o.ts, …`).
fn prefixed_columns(prefix: &str) -> String {
    OBSERVATION_COLUMNS
        .split(", ")
        .map(|c| format!("{prefix}{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn observation_from_row(row: &Row) -> Observation {
    let category: &str = row.get(6);
    let level: Option<&str> = row.get(10);
    Observation {
        sequence: row.get::<_, i64>(0) as u64,
        timestamp: row.get(1),
        device: row.get(2),
        component_id: row.get(3),
        data_item_id: row.get(4),
        name: row.get(5),
        category: category.parse().unwrap_or(Category::Event),
        kind: row.get(7),
        sub_type: row.get(8),
        value: Value::from(row.get::<_, Option<String>>(9)),
        condition: level
            .and_then(|l| l.parse::<ConditionLevel>().ok())
            .map(|level| ConditionState {
                level,
                native_code: row.get(11),
                native_severity: row.get(12),
                qualifier: row.get(13),
            }),
    }
}

/// Column arrays for one `UNNEST` insert of observations.
#[derive(Default)]
struct Columns<'b> {
    sequence: Vec<i64>,
    ts: Vec<DateTime<Utc>>,
    device: Vec<&'b str>,
    component_id: Vec<&'b str>,
    data_item_id: Vec<&'b str>,
    name: Vec<Option<&'b str>>,
    category: Vec<&'static str>,
    kind: Vec<&'b str>,
    sub_type: Vec<Option<&'b str>>,
    value: Vec<Option<&'b str>>,
    level: Vec<Option<&'static str>>,
    native_code: Vec<Option<&'b str>>,
    native_severity: Vec<Option<&'b str>>,
    qualifier: Vec<Option<&'b str>>,
}

impl<'b> Columns<'b> {
    /// The arrays as query parameters `$3` … `$16` of [`UNNEST`].
    fn params(&self) -> [&(dyn ToSql + Sync); 14] {
        [
            &self.sequence,
            &self.ts,
            &self.device,
            &self.component_id,
            &self.data_item_id,
            &self.name,
            &self.category,
            &self.kind,
            &self.sub_type,
            &self.value,
            &self.level,
            &self.native_code,
            &self.native_severity,
            &self.qualifier,
        ]
    }

    fn push(&mut self, o: &'b Observation) {
        self.sequence.push(o.sequence as i64);
        self.ts.push(o.timestamp);
        self.device.push(&o.device);
        self.component_id.push(&o.component_id);
        self.data_item_id.push(&o.data_item_id);
        self.name.push(o.name.as_deref());
        self.category.push(o.category.as_str());
        self.kind.push(&o.kind);
        self.sub_type.push(o.sub_type.as_deref());
        self.value.push(o.value.as_text());
        let c = o.condition.as_ref();
        self.level.push(c.map(|c| c.level.as_str()));
        self.native_code
            .push(c.and_then(|c| c.native_code.as_deref()));
        self.native_severity
            .push(c.and_then(|c| c.native_severity.as_deref()));
        self.qualifier.push(c.and_then(|c| c.qualifier.as_deref()));
    }
}

const UNNEST: &str = "UNNEST($3::bigint[], $4::timestamptz[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[])
     AS u(sequence, ts, device, component_id, data_item_id, name, category, kind, sub_type, value, level, native_code, native_severity, qualifier)";

async fn insert_rows(
    tx: &tokio_postgres::Transaction<'_>,
    sql: &str,
    agent_id: i32,
    instance_id: i64,
    columns: &Columns<'_>,
) -> Result<u64, tokio_postgres::Error> {
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![&agent_id, &instance_id];
    params.extend(columns.params());
    tx.execute(sql, &params).await
}

impl PgStore {
    /// One attempt at [`Store::append`]: `direct` copies into `observations` (fails on a
    /// duplicate), otherwise through the staging table (drops duplicates).
    async fn append_once(&self, batch: &Batch, direct: bool) -> Result<AppendOutcome, StoreError> {
        let agent_id = {
            let client = self.client().await?;
            self.agent_id(&*client, &batch.agent).await?
        };
        let instance_id = batch.instance_id as i64;
        let new_days: Vec<NaiveDate> = {
            let known = self.partitions.lock().unwrap_or_else(|p| p.into_inner());
            let days: BTreeSet<NaiveDate> = batch
                .observations
                .iter()
                .map(|o| o.timestamp.date_naive())
                .filter(|d| !known.contains(d))
                .collect();
            days.into_iter().collect()
        };
        // A transaction needs exclusive use of the connection.
        let mut client = self.exclusive().await?;
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
        let mut latest = Columns::default();
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
                "COPY {table} (agent_id, instance_id, sequence, ts, device, component_id, data_item_id, name, category, kind, sub_type, value, level, native_code, native_severity, qualifier) FROM STDIN BINARY",
            ))
            .await?;
        let writer = BinaryCopyInWriter::new(sink, &STAGING_TYPES);
        futures_util::pin_mut!(writer);
        for o in &observations {
            let c = o.condition.as_ref();
            let sequence = o.sequence as i64;
            writer
                .as_mut()
                .write(&[
                    &agent_id,
                    &instance_id,
                    &sequence,
                    &o.timestamp,
                    &o.device,
                    &o.component_id,
                    &o.data_item_id,
                    &o.name,
                    &o.category.as_str(),
                    &o.kind,
                    &o.sub_type,
                    &o.value.as_text(),
                    &c.map(|c| c.level.as_str()),
                    &c.and_then(|c| c.native_code.as_deref()),
                    &c.and_then(|c| c.native_severity.as_deref()),
                    &c.and_then(|c| c.qualifier.as_deref()),
                ])
                .await?;
        }
        let copied = writer.finish().await?;
        let inserted = if direct {
            copied
        } else {
            tx.execute(
                &format!(
                    "INSERT INTO observations (agent_id, instance_id, {OBSERVATION_COLUMNS})
                     SELECT agent_id, instance_id, {OBSERVATION_COLUMNS} FROM staging_observations
                     ON CONFLICT DO NOTHING"
                ),
                &[],
            )
            .await?
        };
        insert_rows(
            &tx,
            &format!(
                "INSERT INTO latest (agent_id, instance_id, {OBSERVATION_COLUMNS}) SELECT $1::int, $2::bigint, u.* FROM {UNNEST}
                 ON CONFLICT (device, data_item_id) DO UPDATE SET
                   agent_id = EXCLUDED.agent_id, instance_id = EXCLUDED.instance_id, sequence = EXCLUDED.sequence,
                   ts = EXCLUDED.ts, component_id = EXCLUDED.component_id, name = EXCLUDED.name,
                   category = EXCLUDED.category, kind = EXCLUDED.kind, sub_type = EXCLUDED.sub_type,
                   value = EXCLUDED.value, level = EXCLUDED.level, native_code = EXCLUDED.native_code,
                   native_severity = EXCLUDED.native_severity, qualifier = EXCLUDED.qualifier
                 WHERE (latest.instance_id, latest.sequence) < (EXCLUDED.instance_id, EXCLUDED.sequence)"
            ),
            agent_id,
            instance_id,
            &latest,
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
            let payload = format!(
                "{instance_id} {first} {last} {next_sequence} {}",
                batch.agent
            );
            tx.execute("SELECT pg_notify($1, $2)", &[&APPENDED_CHANNEL, &payload])
                .await?;
        }
        tx.commit().await?;
        self.partitions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(new_days);
        Ok(AppendOutcome {
            inserted,
            duplicates: batch.observations.len() as u64 - inserted,
        })
    }
}

/// The observations of `batch` not stored yet, in batch order: each `sequence` once (the
/// first of a batch that repeats one), less those of the same `instanceId` already stored.
/// An observation is identified by (agent, `instanceId`, `sequence`), whatever its
/// timestamp; the table's key holds the timestamp too (a partitioned table's keys must
/// hold the partition key), so an agent that sends a sequence again with another
/// timestamp is caught here, not by the key. Only sequences below the stored resume point
/// can be stored already (it is past every stored sequence), so the usual batch, all past
/// it, costs no lookup; the others are looked up by the key's index in every partition.
async fn unstored<'b>(
    tx: &tokio_postgres::Transaction<'_>,
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
    let Some(stored) = stored.filter(|s| s.instance_id == batch.instance_id) else {
        return Ok(out);
    };
    let below: Vec<i64> = out
        .iter()
        .filter(|o| o.sequence < stored.next_sequence)
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

#[async_trait]
impl Store for PgStore {
    async fn put_devices(&self, agent: &str, devices: &[DeviceInfo]) -> Result<(), StoreError> {
        let mut client = self.exclusive().await?;
        let agent_id = self.agent_id(&*client, agent).await?;
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
            let col =
                |f: fn(&DataItemInfo) -> &str| d.data_items.iter().map(f).collect::<Vec<&str>>();
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

    async fn devices(&self) -> Result<Vec<DeviceInfo>, StoreError> {
        let client = self.client().await?;
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

    async fn append(&self, batch: &Batch) -> Result<AppendOutcome, StoreError> {
        use tokio_postgres::error::SqlState;
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
            let result = self.append_once(batch, direct).await;
            match code(&result) {
                Some(SqlState::UNIQUE_VIOLATION) if direct => direct = false,
                // Another process dropped a partition this one knew of (retention): forget
                // what it knew and create what is missing.
                Some(SqlState::CHECK_VIOLATION) if !forgot_partitions => {
                    self.partitions
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .clear();
                    forgot_partitions = true;
                }
                _ => return result,
            }
        }
    }

    async fn resume_point(&self, agent: &str) -> Result<Option<ResumePoint>, StoreError> {
        let client = self.client().await?;
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

    async fn record_gap(&self, gap: &Gap) -> Result<(), StoreError> {
        let client = self.client().await?;
        let agent_id = self.agent_id(&*client, &gap.agent).await?;
        client
            .execute(
                "INSERT INTO gaps (agent_id, instance_id, from_sequence, to_sequence) VALUES ($1, $2, $3, $4)",
                &[&agent_id, &(gap.instance_id as i64), &(gap.from as i64), &gap.to.map(|t| t as i64)],
            )
            .await?;
        Ok(())
    }

    async fn gaps(&self) -> Result<Vec<Gap>, StoreError> {
        let client = self.client().await?;
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

    async fn latest(
        &self,
        filter: &LatestFilter,
        page: &PageRequest,
    ) -> Result<Page<Observation>, StoreError> {
        self.latest_page(filter, None, page).await
    }

    async fn as_of(
        &self,
        filter: &LatestFilter,
        at: DateTime<Utc>,
        page: &PageRequest,
    ) -> Result<Page<Observation>, StoreError> {
        self.latest_page(filter, Some(at), page).await
    }

    async fn series(
        &self,
        device: &str,
        data_item_id: &str,
        window: &TimeWindow,
        limit: usize,
    ) -> Result<Vec<Observation>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {OBSERVATION_COLUMNS} FROM observations
                     WHERE device = $1 AND data_item_id = $2 AND ts >= $3 AND ts < $4
                     ORDER BY ts, sequence LIMIT $5"
                ),
                &[
                    &device,
                    &data_item_id,
                    &window.from(),
                    &window.to(),
                    &(limit.min(i64::MAX as usize) as i64),
                ],
            )
            .await?;
        Ok(rows.iter().map(observation_from_row).collect())
    }

    async fn buckets(
        &self,
        device: &str,
        data_item_id: &str,
        window: &TimeWindow,
        n: usize,
    ) -> Result<Vec<Bucket>, StoreError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let width = downsample::bucket_width(window.from(), window.to(), n);
        let client = self.client().await?;
        // One pass: times as exact microseconds in float8 (< 2^53), the first and last
        // points as the least and greatest [time, sequence, value] arrays, the extremes as
        // [value, ±time] (the earliest time among equal values). See SESSION_SETTINGS.
        let rows = client
            .query(
                r"WITH b AS (
                   SELECT (extract(epoch FROM ts - $3) * 1000000)::bigint / $5 AS k,
                          (extract(epoch FROM ts) * 1000000)::float8 AS e,
                          sequence::float8 AS s,
                          value::float8 AS x
                   FROM observations
                   WHERE device = $1 AND data_item_id = $2 AND ts >= $3 AND ts < $4
                     AND length(value) < 40
                     AND value ~ '^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,2})?$'
                 )
                 SELECT k, count(*), min(x), max(x), avg(x),
                        min(ARRAY[e, s, x]), max(ARRAY[e, s, x]),
                        min(ARRAY[x, e]), max(ARRAY[x, -e])
                 FROM b GROUP BY k ORDER BY k",
                &[&device, &data_item_id, &window.from(), &window.to(), &width],
            )
            .await?;
        let at = |micros: f64| {
            DateTime::from_timestamp_micros(micros as i64).unwrap_or(DateTime::<Utc>::MIN_UTC)
        };
        Ok(rows
            .iter()
            .map(|row| {
                let k: i64 = row.get(0);
                let first: Vec<f64> = row.get(5);
                let last: Vec<f64> = row.get(6);
                let min: Vec<f64> = row.get(7);
                let max: Vec<f64> = row.get(8);
                Bucket {
                    start: window.from() + chrono::Duration::microseconds(k * width),
                    count: row.get::<_, i64>(1) as usize,
                    min: row.get(2),
                    max: row.get(3),
                    mean: row.get(4),
                    first: (at(first[0]), first[2]),
                    last: (at(last[0]), last[2]),
                    min_at: at(min[1]),
                    max_at: at(-max[1]),
                }
            })
            .collect())
    }

    async fn last_before(
        &self,
        device: &str,
        data_item_id: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<Observation>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {OBSERVATION_COLUMNS} FROM (
                       (SELECT {OBSERVATION_COLUMNS} FROM observations
                        WHERE device = $1 AND data_item_id = $2 AND ts < $3
                        ORDER BY ts DESC, sequence DESC LIMIT 1)
                       UNION ALL
                       (SELECT {OBSERVATION_COLUMNS} FROM latest
                        WHERE device = $1 AND data_item_id = $2 AND ts < $3)
                     ) o ORDER BY ts DESC, sequence DESC LIMIT 1"
                ),
                &[&device, &data_item_id, &at],
            )
            .await?;
        Ok(row.as_ref().map(observation_from_row))
    }

    async fn conditions(
        &self,
        device: Option<&str>,
        window: &TimeWindow,
        after: Option<(DateTime<Utc>, u64)>,
        limit: usize,
    ) -> Result<Vec<Observation>, StoreError> {
        let client = self.client().await?;
        let (after_ts, after_sequence) = match after {
            Some((ts, sequence)) => (Some(ts), sequence.min(i64::MAX as u64) as i64),
            None => (None, 0),
        };
        let rows = client
            .query(
                &format!(
                    "SELECT {OBSERVATION_COLUMNS} FROM observations
                     WHERE category = 'CONDITION' AND ts >= $1 AND ts < $2
                       AND ($3::text IS NULL OR device = $3)
                       AND ($5::timestamptz IS NULL OR (ts, sequence) > ($5, $6))
                     ORDER BY ts, sequence LIMIT $4"
                ),
                &[
                    &window.from(),
                    &window.to(),
                    &device,
                    &(limit.min(i64::MAX as usize) as i64),
                    &after_ts,
                    &after_sequence,
                ],
            )
            .await?;
        Ok(rows.iter().map(observation_from_row).collect())
    }

    async fn state_summary(
        &self,
        device: &str,
        data_item_id: &str,
        window: &TimeWindow,
        after: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<StateSummary, StoreError> {
        let before = self
            .last_before(device, data_item_id, window.from())
            .await?;
        let before = before.map(|o| o.value.to_string());
        let client = self.client().await?;
        // The window's state changes (a value unlike the one before it, in (ts, sequence)
        // order, starting from the state held when the window began), each an interval
        // up to the next change; zero-length ones (two changes at one instant) dropped.
        let held = "WITH held AS (
                 SELECT $3::timestamptz AS ts, -1::bigint AS sequence, $5::text AS state
                 WHERE $5::text IS NOT NULL
                 UNION ALL
                 SELECT ts, sequence, COALESCE(value, 'UNAVAILABLE') FROM observations
                 WHERE device = $1 AND data_item_id = $2 AND ts >= $3 AND ts < $4
             )";
        let intervals = format!(
            "{held}, changes AS (
                 SELECT ts, state FROM (
                     SELECT ts, state, LAG(state) OVER (ORDER BY ts, sequence) AS prev FROM held
                 ) h WHERE prev IS DISTINCT FROM state
             ), intervals AS (
                 SELECT state, ts AS start, LEAD(ts, 1, $4) OVER (ORDER BY ts) AS stop FROM changes
             )"
        );
        // The time in each state: each observation's state lasts until the next one (the
        // same sums as over the merged intervals, in one pass of one window function).
        let shares = client
            .query(
                &format!(
                    "{held} SELECT state, sum(extract(epoch FROM stop - ts))::float8 AS seconds
                     FROM (SELECT state, ts, LEAD(ts, 1, $4) OVER (ORDER BY ts, sequence) AS stop FROM held) h
                     GROUP BY state HAVING sum(stop - ts) > interval '0'
                     ORDER BY seconds DESC LIMIT {MAX_STATES}"
                ),
                &[&device, &data_item_id, &window.from(), &window.to(), &before],
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
                    &device,
                    &data_item_id,
                    &window.from(),
                    &window.to(),
                    &before,
                    &after,
                    &(limit
                        .saturating_mul(2)
                        .saturating_add(1)
                        .min(i64::MAX as usize) as i64),
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

    async fn ping(&self) -> Result<(), StoreError> {
        self.client().await?.simple_query("SELECT 1").await?;
        Ok(())
    }

    async fn configured_agents(&self) -> Result<Vec<ConfiguredAgent>, StoreError> {
        let client = self.client().await?;
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

    async fn put_configured_agent(&self, agent: &ConfiguredAgent) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO configured_agents (url, paused) VALUES ($1, $2)
                 ON CONFLICT (url) DO UPDATE SET paused = EXCLUDED.paused",
                &[&agent.url, &agent.paused],
            )
            .await?;
        Ok(())
    }

    async fn remove_configured_agent(&self, url: &str) -> Result<bool, StoreError> {
        let client = self.client().await?;
        Ok(client
            .execute("DELETE FROM configured_agents WHERE url = $1", &[&url])
            .await?
            > 0)
    }

    async fn observation_count(&self) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let n: i64 = client
            .query_one("SELECT count(*) FROM observations", &[])
            .await?
            .get(0);
        Ok(n as u64)
    }

    async fn prune(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        let client = self.client().await?;
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
            self.partitions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&day);
            dropped += n as u64;
        }
        Ok(dropped)
    }
}
