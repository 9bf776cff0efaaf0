//! The store's connections: a pool for queries, one dedicated connection for ingest,
//! the session settings of each, and the schema migrations run on connecting. Every one
//! is opened through one [`Connector`]: the same TLS and the same error.

use deadpool_postgres::{
    Hook, HookError, Manager, ManagerConfig, Pool, PoolError, RecyclingMethod,
};
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{Client, Config, Connection, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::columns::STAGING;
use super::config::{PgConfig, SslMode};
use crate::StoreError;

/// The stream of a connection, TLS or not.
type Stream = <MakeRustlsConnect as MakeTlsConnect<Socket>>::Stream;

/// Opens the store's connections: one configuration, one TLS connector (built once:
/// loading the system's CA certificates is not free), and connection errors that say
/// where and with which `sslmode`.
#[derive(Clone)]
pub(super) struct Connector {
    config: Config,
    tls: MakeRustlsConnect,
    server: String,
    ssl_mode: SslMode,
}

impl Connector {
    /// The connector of `config`.
    pub(super) fn new(config: &PgConfig) -> Result<Self, StoreError> {
        Ok(Connector {
            config: config.config().clone(),
            tls: config.tls_connector()?,
            server: config.server(),
            ssl_mode: config.ssl_mode(),
        })
    }

    /// A new connection; its `Connection` half is for the caller to drive.
    pub(super) async fn connect(&self) -> Result<(Client, Connection<Socket, Stream>), StoreError> {
        self.config
            .connect(self.tls.clone())
            .await
            .map_err(|e| self.error(e))
    }

    /// `e`, which happened while connecting, as the store's error.
    pub(super) fn error(&self, e: tokio_postgres::Error) -> StoreError {
        StoreError::Connect {
            server: self.server.clone(),
            ssl_mode: self.ssl_mode.as_str(),
            source: e,
        }
    }
}

/// The embedded migrations by version (the number in the file's name), in ascending
/// order. `factorydash_migrations` records the versions applied (the numbers, not the
/// text); each one not applied yet is applied, in ascending order, so a version written
/// on one branch and merged after a higher one (already applied to a database) is applied
/// then. Versions need not be contiguous.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("0001_initial.sql")),
    (2, include_str!("0002_configured_agents.sql")),
    (3, include_str!("0003_condition_types.sql")),
    (4, include_str!("0004_device_identity.sql")),
    (5, include_str!("0005_stored_once.sql")),
    (6, include_str!("0006_agent_credentials.sql")),
    (7, include_str!("0007_accounts.sql")),
    (8, include_str!("0008_device_records.sql")),
    (9, include_str!("0009_summaries.sql")),
    (10, include_str!("0010_reasons_and_settings.sql")),
    (11, include_str!("0011_summary_cells_unchecked.sql")),
    (12, include_str!("0012_outbox.sql")),
    (13, include_str!("0013_summary_ramps.sql")),
];

/// The newest schema version this build knows (its highest migration).
pub const SCHEMA_VERSION: i32 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// The advisory lock key that serialises migrations ("factorydash" in ASCII, folded).
const MIGRATION_LOCK: i64 = 0x6661_6374_6f72_7964;
// The next key, 0x6661_6374_6f72_7965, serialises partition creation (see
// `factorydash_observation_partition` in the schema).

/// Settings of every session of the store. Its queries are short or bounded: JIT
/// compiling costs more than it saves on them (200 ms on a day's M4 buckets). The
/// grouping sort of [`Store::buckets`](crate::Store::buckets) over a day at 10 Hz needs
/// ~40 MB: in memory it is 3x faster than spilled to disk; one such sort runs at a time
/// per session, so at most [`POOL_SIZE`] + 1 at once.
const SESSION_SETTINGS: &str = "SET jit = off; SET work_mem = '64MB'";

/// The most query connections open at once: enough for the pages, the health probe and
/// the live relay to go on side by side, few enough to bound the memory their sorts may
/// take (see [`SESSION_SETTINGS`]) whatever the number of CPUs. A read that finds all
/// of them busy waits for one.
const POOL_SIZE: usize = 8;

/// Opens a connection of its own (driven by a task of its own), without session
/// settings: for an advisory lock. The task sends `true` on the returned channel when
/// the connection closes.
pub(super) async fn open_plain(
    connector: &Connector,
    what: &'static str,
) -> Result<(Client, tokio::sync::watch::Receiver<bool>), StoreError> {
    let (client, connection) = connector.connect().await?;
    let (tx, closed) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "{what} closed");
        }
        let _ = tx.send(true);
    });
    Ok((client, closed))
}

/// Opens the ingest connection: the store's settings and the staging table of
/// [`append`](super::append).
async fn open_ingest(connector: &Connector) -> Result<Client, StoreError> {
    let (client, _closed) = open_plain(connector, "the PostgreSQL ingest connection").await?;
    client.batch_execute(&STAGING).await?;
    client.batch_execute(SESSION_SETTINGS).await?;
    Ok(client)
}

/// The pool of query connections. A connection found closed when taken is replaced
/// (deadpool's `RecyclingMethod::Fast` checks `Client::is_closed`); when the server is
/// away, taking one fails at once with the connection's error.
pub(super) fn pool(connector: &Connector) -> Result<Pool, StoreError> {
    let manager = Manager::from_config(
        connector.config.clone(),
        connector.tls.clone(),
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(POOL_SIZE)
        .post_create(Hook::async_fn(|client, _| {
            Box::pin(async move {
                client
                    .batch_execute(SESSION_SETTINGS)
                    .await
                    .map_err(HookError::Backend)
            })
        }))
        .build()
        // Building fails only when timeouts are set without a runtime; none are set.
        .map_err(|e| StoreError::Unavailable(e.to_string()))
}

impl From<PoolError> for StoreError {
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::Backend(e) | PoolError::PostCreateHook(HookError::Backend(e)) => {
                StoreError::Database(e)
            }
            other => StoreError::Unavailable(other.to_string()),
        }
    }
}

/// The one connection that ingest uses (appends and device models: transactions, with
/// the session's staging table). Held by one writer at a time; reopened when found lost.
pub(super) struct Ingest {
    connector: Connector,
    client: tokio::sync::Mutex<Client>,
}

impl Ingest {
    /// Opens the ingest connection and migrates the schema on it.
    pub(super) async fn open(connector: Connector) -> Result<Self, StoreError> {
        let mut client = open_ingest(&connector).await?;
        migrate(&mut client).await?;
        Ok(Ingest {
            connector,
            client: tokio::sync::Mutex::new(client),
        })
    }

    /// Exclusive use of the connection, reconnecting first when it was lost.
    pub(super) async fn lock(&self) -> Result<tokio::sync::MutexGuard<'_, Client>, StoreError> {
        let mut client = self.client.lock().await;
        if client.is_closed() {
            *client = open_ingest(&self.connector).await?;
            tracing::info!("reconnected to PostgreSQL for ingest");
        }
        Ok(client)
    }
}

/// The file names of [`MIGRATIONS`] by version.
const MIGRATION_NAMES: &[(i32, &str)] = &[
    (1, "0001_initial.sql"),
    (2, "0002_configured_agents.sql"),
    (3, "0003_condition_types.sql"),
    (4, "0004_device_identity.sql"),
    (5, "0005_stored_once.sql"),
    (6, "0006_agent_credentials.sql"),
    (7, "0007_accounts.sql"),
    (8, "0008_device_records.sql"),
    (9, "0009_summaries.sql"),
    (10, "0010_reasons_and_settings.sql"),
    (11, "0011_summary_cells_unchecked.sql"),
    (12, "0012_outbox.sql"),
    (13, "0013_summary_ramps.sql"),
];

const _: () = assert!(MIGRATION_NAMES.len() == MIGRATIONS.len());

/// What opening the database would change in its schema, found without changing
/// anything.
pub(super) async fn migration_plan(
    connector: &Connector,
) -> Result<crate::MigrationPlan, StoreError> {
    let (client, _closed) = open_plain(connector, "the migration check connection").await?;
    let exists: bool = client
        .query_one(
            "SELECT to_regclass('factorydash_migrations') IS NOT NULL",
            &[],
        )
        .await?
        .get(0);
    let applied: Vec<i32> = if exists {
        client
            .query("SELECT version FROM factorydash_migrations", &[])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect()
    } else {
        Vec::new()
    };
    if let Some(&found) = applied
        .iter()
        .filter(|v| !MIGRATIONS.iter().any(|(known, _)| known == *v))
        .max()
    {
        return Err(StoreError::SchemaTooNew {
            found,
            known: SCHEMA_VERSION,
        });
    }
    Ok(crate::MigrationPlan {
        found: applied.iter().copied().max().unwrap_or(0),
        known: SCHEMA_VERSION,
        pending: MIGRATION_NAMES
            .iter()
            .filter(|(v, _)| !applied.contains(v))
            .map(|(_, name)| *name)
            .collect(),
    })
}

async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS factorydash_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
        .await?;
    let applied: Vec<i32> = tx
        .query("SELECT version FROM factorydash_migrations", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    // A version this build does not know was applied by a newer build.
    if let Some(&found) = applied
        .iter()
        .filter(|v| !MIGRATIONS.iter().any(|(known, _)| known == *v))
        .max()
    {
        return Err(StoreError::SchemaTooNew {
            found,
            known: SCHEMA_VERSION,
        });
    }
    for (version, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO factorydash_migrations (version) VALUES ($1)",
            &[version],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
