//! The PostgreSQL store, on tokio-postgres.
//!
//! The schema is created and migrated on [`PgStore::connect`]: versioned migrations are
//! embedded in the crate and applied under a transaction-scoped advisory lock, so several
//! processes may start at once.
//!
//! # Connections
//! - Queries take a connection from a pool (deadpool-postgres): a slow append never
//!   stalls a read, nor a read another.
//! - Ingest (appends and device models, transactions with the session's staging table)
//!   has one dedicated connection, used by one writer at a time and reopened when lost.
//! - Each [`AgentLock`] and each [`PgStore::listen`] holds a connection of its own: a
//!   session-level advisory lock lives as long as its session, and `LISTEN` belongs to
//!   one session.
//!
//! - Every connection is opened alike (the same TLS connector, see [`PgConfig`] for
//!   `sslmode`, `sslrootcert` and libpq's environment variables).
//!
//! # Modules
//! `config` (connection strings, environment, TLS), `connection` (the pool, the ingest
//! connection, migrations), `columns` (the one list
//! of an observation row's columns and the SQL built from it), `append` (ingest),
//! `queries` (reads), `coordination` (advisory locks, `LISTEN`/`NOTIFY`), `accounts`
//! (users, groups, credentials and the audit log, on pooled connections), `records`
//! (device records, on pooled connections).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use factorydash_core::downsample::Bucket;
use factorydash_core::reasons::StopReason;
use factorydash_core::records::DeviceRecord;
use factorydash_core::states::StateSummary;
use factorydash_core::{
    Batch, DeviceInfo, DeviceKey, Gap, Observation, Page, PageRequest, ResumePoint, TimeWindow,
};
use tokio_postgres::Config;

pub use config::{pgpass_lookup, ConfigError, PgConfig, SslMode, PG_ENV_VARS};

use crate::{
    AgentObservation, AppendOutcome, ConfiguredAgent, Credentials, LatestFilter, SeriesChunk,
    SeriesKey, Store, StoreError,
};

pub use connection::SCHEMA_VERSION;

mod accounts;
mod append;
mod columns;
pub mod config;
mod connection;
mod coordination;
mod queries;
mod reasons;
mod records;
mod summary;

pub use coordination::{AgentLock, Appended, APPENDED_CHANNEL};

/// A [`Store`] on PostgreSQL.
///
/// Reads run on pooled connections, appends on one dedicated connection (see the
/// [module docs](self)). A lost connection is replaced on the next call (which fails if
/// the server is still away).
pub struct PgStore {
    /// For the connections of agent locks and `LISTEN`.
    connector: connection::Connector,
    pool: deadpool_postgres::Pool,
    ingest: connection::Ingest,
    agent_ids: Mutex<HashMap<String, i32>>,
    /// The ids of devices' summaries, as committed.
    summary_ids: summary::SummaryIds,
    /// The UTC days known to have a partition of `observations`.
    partitions: Mutex<HashSet<NaiveDate>>,
    /// The agent locks, all on one connection (see [`PgStore::try_lock_agent`]).
    agent_locks: coordination::AgentLocks,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects to `url` (e.g. `postgres://postgres@127.0.0.1:5432/factorydash`, with
    /// `sslmode` and `sslrootcert` as [`PgConfig`] reads them; no environment variable is
    /// read) and migrates the schema to this build's version.
    ///
    /// # Errors
    /// [`StoreError::Config`] when the URL is invalid or its CA file unreadable;
    /// [`StoreError::Connect`] when the server is unreachable or TLS fails;
    /// [`StoreError::SchemaTooNew`] when the database was migrated by a newer build.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_config(&PgConfig::from_url(url)?).await
    }

    /// Connects with a prepared tokio-postgres configuration (e.g. with `options` setting
    /// a `search_path`; its `sslmode`, without verification) and migrates the schema.
    ///
    /// # Errors
    /// As [`PgStore::connect`].
    pub async fn connect_with(config: Config) -> Result<Self, StoreError> {
        Self::connect_config(&PgConfig::from(config)).await
    }

    /// Connects as `config` says (see [`PgConfig::resolve`] for the environment) and
    /// migrates the schema.
    ///
    /// # Errors
    /// As [`PgStore::connect`].
    pub async fn connect_config(config: &PgConfig) -> Result<Self, StoreError> {
        let connector = connection::Connector::new(config)?;
        let ingest = connection::Ingest::open(connector.clone()).await?;
        Ok(PgStore {
            pool: connection::pool(&connector)?,
            connector,
            ingest,
            agent_ids: Mutex::new(HashMap::new()),
            summary_ids: summary::SummaryIds::default(),
            partitions: Mutex::new(HashSet::new()),
            agent_locks: coordination::AgentLocks::default(),
        })
    }

    /// What [`PgStore::connect_config`] would change in the schema of the database
    /// `config` names, found without changing anything.
    ///
    /// # Errors
    /// [`StoreError::SchemaTooNew`] when a newer build migrated it; a connection error.
    pub async fn migration_plan(config: &PgConfig) -> Result<crate::MigrationPlan, StoreError> {
        let connector = connection::Connector::new(config)?;
        connection::migration_plan(&connector).await
    }

    /// A pooled connection for queries: an idle one, or a new one.
    async fn reader(&self) -> Result<deadpool_postgres::Object, StoreError> {
        match self.pool.get().await {
            Ok(client) => Ok(client),
            Err(deadpool_postgres::PoolError::Backend(e)) => Err(self.connector.error(e)),
            Err(e) => Err(e.into()),
        }
    }
}

/// Which connection each call runs on, and where its SQL is.
#[async_trait]
impl Store for PgStore {
    async fn put_devices(&self, agent: &str, devices: &[DeviceInfo]) -> Result<(), StoreError> {
        append::put_devices(self, agent, devices).await
    }

    async fn devices(&self) -> Result<Vec<DeviceInfo>, StoreError> {
        queries::devices(&*self.reader().await?).await
    }

    async fn append(&self, batch: &Batch) -> Result<AppendOutcome, StoreError> {
        append::append(self, batch).await
    }

    async fn resume_point(&self, agent: &str) -> Result<Option<ResumePoint>, StoreError> {
        append::resume_point(&*self.reader().await?, agent).await
    }

    async fn instances(&self, agent: &str, limit: usize) -> Result<Vec<ResumePoint>, StoreError> {
        append::instances(&*self.reader().await?, agent, limit).await
    }

    async fn record_gap(&self, gap: &Gap) -> Result<(), StoreError> {
        append::record_gap(self, &*self.reader().await?, gap).await
    }

    async fn withdraw_open_gaps(&self, agent: &str, instance_id: u64) -> Result<u64, StoreError> {
        let n = self
            .reader()
            .await?
            .execute(
                "DELETE FROM gaps WHERE to_sequence IS NULL AND instance_id = $2
                 AND agent_id = (SELECT id FROM agents WHERE url = $1)",
                &[&agent, &(instance_id.min(i64::MAX as u64) as i64)],
            )
            .await?;
        Ok(n)
    }

    async fn gaps(&self) -> Result<Vec<Gap>, StoreError> {
        queries::gaps(&*self.reader().await?).await
    }

    async fn latest(
        &self,
        filter: &LatestFilter,
        page: &PageRequest,
    ) -> Result<Page<AgentObservation>, StoreError> {
        crate::check_devices(filter.devices.as_deref())?;
        queries::latest_page(&*self.reader().await?, filter, None, page).await
    }

    async fn as_of(
        &self,
        filter: &LatestFilter,
        at: DateTime<Utc>,
        page: &PageRequest,
    ) -> Result<Page<AgentObservation>, StoreError> {
        crate::check_devices(filter.devices.as_deref())?;
        queries::latest_page(&*self.reader().await?, filter, Some(at), page).await
    }

    async fn series(
        &self,
        device: &DeviceKey,
        data_item_id: &str,
        window: &TimeWindow,
        limit: usize,
    ) -> Result<Vec<Observation>, StoreError> {
        queries::series(&*self.reader().await?, device, data_item_id, window, limit).await
    }

    async fn series_after(
        &self,
        device: &DeviceKey,
        data_item_id: &str,
        window: &TimeWindow,
        after: Option<SeriesKey>,
        limit: usize,
    ) -> Result<SeriesChunk, StoreError> {
        let client = self.reader().await?;
        queries::series_after(&client, device, data_item_id, window, after, limit).await
    }

    async fn buckets(
        &self,
        device: &DeviceKey,
        data_item_id: &str,
        window: &TimeWindow,
        n: usize,
    ) -> Result<Vec<Bucket>, StoreError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        queries::buckets(&*self.reader().await?, device, data_item_id, window, n).await
    }

    async fn last_before(
        &self,
        device: &DeviceKey,
        data_item_id: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<Observation>, StoreError> {
        queries::last_before(&*self.reader().await?, device, data_item_id, at).await
    }

    async fn conditions(
        &self,
        devices: Option<&[DeviceKey]>,
        window: &TimeWindow,
        after: Option<(DateTime<Utc>, u64, &str)>,
        limit: usize,
    ) -> Result<Vec<AgentObservation>, StoreError> {
        crate::check_devices(devices)?;
        queries::conditions(&*self.reader().await?, devices, window, after, limit).await
    }

    async fn state_summary(
        &self,
        device: &DeviceKey,
        data_item_id: &str,
        window: &TimeWindow,
        after: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<StateSummary, StoreError> {
        let client = self.reader().await?;
        queries::state_summary(&client, device, data_item_id, window, after, limit).await
    }

    async fn summary(
        &self,
        query: &crate::SummaryQuery,
    ) -> Result<Vec<factorydash_core::summary::SummaryTotal>, StoreError> {
        crate::check_summary_query(query)?;
        // One snapshot: the closed periods and the states still open as of one commit.
        let mut client = self.reader().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let totals = summary::query(&*tx, query).await?;
        tx.commit().await?;
        Ok(totals)
    }

    async fn prune_summaries(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        let c = self.reader().await?;
        reasons::prune(&**c, cutoff).await?;
        summary::prune(&**c, cutoff.timestamp()).await
    }

    async fn setting(&self, key: &str) -> Result<Option<crate::Setting>, StoreError> {
        reasons::setting(&*self.reader().await?, key).await
    }

    async fn put_setting(
        &self,
        key: &str,
        setting: Option<&crate::Setting>,
    ) -> Result<(), StoreError> {
        crate::check_setting(key, setting)?;
        reasons::put_setting(&*self.reader().await?, key, setting).await
    }

    async fn queue_outbox(&self, entries: &[crate::OutboxEntry]) -> Result<Vec<i64>, StoreError> {
        crate::check_outbox(entries)?;
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let receivers: Vec<&str> = entries.iter().map(|e| e.receiver.as_str()).collect();
        let bodies: Vec<&str> = entries.iter().map(|e| e.body.as_str()).collect();
        let times: Vec<DateTime<Utc>> = entries.iter().map(|e| e.queued_at).collect();
        // One statement: its rows take their ids in the arrays' order.
        let rows = self
            .reader()
            .await?
            .query(
                "INSERT INTO outbox (receiver, body, queued_at)
                 SELECT r, b, t FROM unnest($1::text[], $2::text[], $3::timestamptz[])
                   WITH ORDINALITY AS u(r, b, t, n) ORDER BY n
                 RETURNING id",
                &[&receivers, &bodies, &times],
            )
            .await?;
        let mut ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
        ids.sort_unstable();
        Ok(ids)
    }

    async fn pending_outbox(
        &self,
        receiver: &str,
        limit: usize,
    ) -> Result<Vec<crate::OutboxEntry>, StoreError> {
        let limit = limit.min(crate::MAX_OUTBOX_READ) as i64;
        let rows = self
            .reader()
            .await?
            .query(
                "SELECT id, receiver, body, queued_at FROM outbox WHERE receiver = $1
                 ORDER BY id LIMIT $2",
                &[&receiver, &limit],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| crate::OutboxEntry {
                id: r.get(0),
                receiver: r.get(1),
                body: r.get(2),
                queued_at: r.get(3),
            })
            .collect())
    }

    async fn confirm_outbox(&self, id: i64) -> Result<(), StoreError> {
        self.reader()
            .await?
            .execute("DELETE FROM outbox WHERE id = $1", &[&id])
            .await?;
        Ok(())
    }

    async fn put_stop_reason(&self, reason: &StopReason) -> Result<(), StoreError> {
        crate::check_reason(reason)?;
        reasons::put(&*self.reader().await?, reason).await
    }

    async fn stop_reasons(
        &self,
        agent: &str,
        device: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<StopReason>, StoreError> {
        reasons::list(
            &*self.reader().await?,
            agent,
            device,
            from,
            to,
            crate::MAX_STOP_REASONS,
        )
        .await
    }

    async fn rebuild_summaries(
        &self,
        from: DateTime<Utc>,
    ) -> Result<crate::RebuildOutcome, StoreError> {
        crate::summaries::rebuild(self, from).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        queries::ping(&*self.reader().await?).await
    }

    async fn configured_agents(&self) -> Result<Vec<ConfiguredAgent>, StoreError> {
        queries::configured_agents(&*self.reader().await?).await
    }

    async fn device_records(&self) -> Result<Vec<DeviceRecord>, StoreError> {
        records::all(&*self.reader().await?).await
    }

    async fn put_device_record(&self, record: &DeviceRecord) -> Result<(), StoreError> {
        crate::check_record(record)?;
        records::put(&mut *self.reader().await?, record).await
    }

    async fn remove_device_record(&self, agent: &str, device: &str) -> Result<bool, StoreError> {
        records::remove(&*self.reader().await?, agent, device).await
    }

    async fn put_configured_agent(&self, agent: &ConfiguredAgent) -> Result<(), StoreError> {
        queries::put_configured_agent(&*self.reader().await?, agent).await
    }

    async fn remove_configured_agent(&self, url: &str) -> Result<bool, StoreError> {
        queries::remove_configured_agent(&*self.reader().await?, url).await
    }

    async fn agent_credentials(&self, url: &str) -> Result<Option<Credentials>, StoreError> {
        queries::agent_credentials(&*self.reader().await?, url).await
    }

    async fn observation_count(&self) -> Result<u64, StoreError> {
        queries::observation_count(&*self.reader().await?).await
    }

    async fn prune(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        append::prune(self, &*self.reader().await?, cutoff).await
    }
}

#[async_trait]
impl crate::summaries::SummaryWriter for PgStore {
    async fn clear_summaries(&self, from: i64) -> Result<(), StoreError> {
        summary::clear(&**self.reader().await?, from).await
    }

    async fn write_summary(
        &self,
        agent: &str,
        device: &str,
        cells: std::collections::BTreeMap<factorydash_core::summary::Cell, f64>,
        output: Option<factorydash_core::summary::FoldOutput>,
    ) -> Result<u64, StoreError> {
        summary::write(&**self.reader().await?, agent, device, cells, output).await
    }
}
