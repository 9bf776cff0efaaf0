//! Storage for MTConnect observations.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), factorydash_store::StoreError> {
//! use factorydash_core::{Batch, Category, Observation, PageRequest, Value};
//! use factorydash_store::{LatestFilter, MemoryStore, Store};
//!
//! let store = MemoryStore::new();
//! let obs = Observation {
//!     sequence: 61,
//!     timestamp: chrono::Utc::now(),
//!     device: "GFAgie01".into(),
//!     component_id: "GFAgie01".into(),
//!     data_item_id: "GFAgie01-dtop_1".into(),
//!     name: Some("avail".into()),
//!     category: Category::Event,
//!     kind: "Availability".into(),
//!     sub_type: None,
//!     value: Value::Text("AVAILABLE".into()),
//!     condition: None,
//! };
//! let batch = Batch { agent: "http://agent".into(), instance_id: 1, next_sequence: 62, observations: vec![obs] };
//! assert_eq!(store.append(&batch).await?.inserted, 1);
//! assert_eq!(store.append(&batch).await?.duplicates, 1); // idempotent
//! let page = store.latest(&LatestFilter::default(), &PageRequest::first(10)).await?;
//! assert_eq!(page.items[0].observation.value, Value::Text("AVAILABLE".into()));
//! assert_eq!(page.items[0].agent, "http://agent");
//! # Ok(()) }
//! ```
//!
//! # Behavior
//! - An observation is identified by its agent, the agent's `instanceId` and its
//!   `sequence`; appending it again is a no-op ([`AppendOutcome::duplicates`]).
//! - A batch, the latest value of each of its data items and the agent's
//!   [`ResumePoint`] are stored together (one transaction in PostgreSQL and SQLite).
//! - Listings are keyset pages ([`factorydash_core::Page`]): no `OFFSET`.
//! - Retention: [`Store::prune`] drops whole UTC days of observations older than a
//!   cutoff; the latest value of every data item is kept whatever its age.
//! - Credentials: an agent is known by its URL without user information; the user and
//!   password of an agent added at run time are kept apart from its URL
//!   ([`Store::agent_credentials`]), so that no URL a store keeps, lists or puts in a
//!   cursor holds a password ([`split_credentials`]).
//! - Accounts: every store is an [`AccountStore`] too (users, groups, sessions and API
//!   tokens as digests, the audit log), kept with the observations (in the same file or
//!   database).
//! - Device records: every store keeps an admin's [`DeviceRecord`] of each device (display
//!   name, cell, description, ideal cycle time; [`Store::device_records`]), with the
//!   observations too.
//!
//! # Features
//! | feature | default | what it adds |
//! |---|---|---|
//! | `postgres` | yes | [`postgres::PgStore`] on tokio-postgres |
//! | `sqlite` | yes | [`sqlite::SqliteStore`] on rusqlite, SQLite bundled (nothing to install) |

mod accounts;
mod credentials;
mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;
mod summaries;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use factorydash_core::reasons::StopReason;
use factorydash_core::records::DeviceRecord;
use factorydash_core::states::StateSummary;
use factorydash_core::summary::{MinuteRange, SummaryTotal};
use factorydash_core::{
    page::InvalidCursor, Batch, Category, DeviceInfo, DeviceKey, Gap, Observation, Page,
    PageRequest, ResumePoint, TimeWindow,
};

pub use accounts::{AccountStore, MAX_AUDIT_PAGE};
pub use credentials::{split_credentials, Credentials};
pub use memory::MemoryStore;
pub use summaries::{
    stops, tracked_items, StopList, MAX_STOP_ITEMS, MAX_STOP_OBSERVATIONS, MAX_STOP_WINDOW,
};

/// What an append did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppendOutcome {
    /// Observations stored for the first time.
    pub inserted: u64,
    /// Observations already stored (same agent, `instanceId` and `sequence`), skipped.
    pub duplicates: u64,
}

/// An observation read back with the agent it came from (its base URL): a row of
/// [`Store::latest`], [`Store::as_of`] and [`Store::conditions`], where data items of
/// several agents' devices are listed together and a device name alone may be ambiguous
/// (see [`DeviceKey`]).
#[derive(Debug, Clone, PartialEq)]
pub struct AgentObservation {
    /// The agent's base URL, as its batches named it ([`Batch::agent`]).
    pub agent: String,
    /// The observation.
    pub observation: Observation,
}

impl AgentObservation {
    /// Its device's identity.
    pub fn device_key(&self) -> DeviceKey {
        DeviceKey::new(&self.agent, &self.observation.device)
    }
}

/// Where an observation stands in one data item's series, as [`Store::series_after`] orders
/// it: its timestamp (UTC), then its `sequence`, then its agent's `instanceId`. Unique
/// within one data item of one device ([`DeviceKey`]: the agent is fixed): an observation
/// is (agent, `instanceId`, `sequence`), and two instances of one agent may repeat a
/// (timestamp, `sequence`). Ordered field by field, in that order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeriesKey {
    /// The observation's timestamp, UTC.
    pub timestamp: DateTime<Utc>,
    /// Its `sequence` (MTConnect Part 1: unique within the agent's instance).
    pub sequence: u64,
    /// The `instanceId` of the agent that stored it ([`Batch::instance_id`]).
    pub instance_id: u64,
}

/// A chunk of one data item's observations: the answer of [`Store::series_after`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeriesChunk {
    /// The observations, in [`SeriesKey`] order.
    pub observations: Vec<Observation>,
    /// The key of the last observation when more of the window may follow it: pass it as
    /// the next call's `after`. `None` when this chunk ends the window.
    pub next: Option<SeriesKey>,
}

/// Which latest values to list. Every field set must match (AND); `None` matches all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LatestFilter {
    /// Only devices of this name (of any agent unless [`LatestFilter::agent`] says).
    pub device: Option<String>,
    /// Only data items from this agent (its base URL, as [`Batch::agent`]; an agent the
    /// store never saw matches nothing).
    pub agent: Option<String>,
    /// Only data items of this component (its `id` in the Devices document).
    pub component_id: Option<String>,
    /// Only this category (Sample, Event or Condition; MTConnect Part 2, 7.2.2.1).
    pub category: Option<Category>,
    /// Only this type, the element name of the observation (`Execution`,
    /// `x:Motion`…), compared exactly.
    pub kind: Option<String>,
    /// Only data items whose `dataItemId` or `name` contains this text, compared without
    /// regard to case (Unicode simple lower-casing).
    pub search: Option<String>,
    /// Only data items of these devices (an allow-list: a user's scope resolved to the
    /// devices known), each its agent and name compared exactly; `Some` of an empty list
    /// matches nothing. At most [`MAX_FILTER_DEVICES`] (more is refused with
    /// [`StoreError::Invalid`]). Every store applies it where the data is (in SQL on
    /// SQLite and PostgreSQL).
    pub devices: Option<Vec<DeviceKey>>,
}

/// The most devices a [`LatestFilter::devices`] allow-list or a [`Store::conditions`]
/// call names.
pub const MAX_FILTER_DEVICES: usize = 10_000;

impl LatestFilter {
    /// Only the data items of one device.
    pub fn device(device: &DeviceKey) -> Self {
        LatestFilter {
            device: Some(device.device.clone()),
            agent: Some(device.agent.clone()),
            ..Self::default()
        }
    }

    /// Whether `o`, read from `agent`, passes this filter.
    pub fn matches(&self, agent: &str, o: &Observation) -> bool {
        self.agent.as_ref().is_none_or(|a| a == agent)
            && self.device.as_ref().is_none_or(|d| *d == o.device)
            && self
                .component_id
                .as_ref()
                .is_none_or(|c| *c == o.component_id)
            && self.category.is_none_or(|c| c == o.category)
            && self.kind.as_ref().is_none_or(|k| *k == o.kind)
            && self
                .devices
                .as_ref()
                .is_none_or(|ds| ds.iter().any(|d| d.agent == agent && d.device == o.device))
            && self.search.as_ref().is_none_or(|s| {
                let s = s.to_lowercase();
                o.data_item_id.to_lowercase().contains(&s)
                    || o.name
                        .as_ref()
                        .is_some_and(|n| n.to_lowercase().contains(&s))
            })
    }
}

/// Refuses a device list of more than [`MAX_FILTER_DEVICES`] ([`LatestFilter::devices`],
/// [`Store::conditions`]).
pub(crate) fn check_devices(devices: Option<&[DeviceKey]>) -> Result<(), StoreError> {
    match devices {
        Some(d) if d.len() > MAX_FILTER_DEVICES => Err(StoreError::Invalid(format!(
            "at most {MAX_FILTER_DEVICES} devices may be named at once, got {}",
            d.len()
        ))),
        _ => Ok(()),
    }
}

/// Refuses a device record that fails [`DeviceRecord::check`]
/// ([`Store::put_device_record`]).
pub(crate) fn check_record(record: &DeviceRecord) -> Result<(), StoreError> {
    record
        .check()
        .map_err(|e| StoreError::Invalid(format!("{}: {e}", record_name(record))))
}

/// "the record of DEVICE at AGENT", for messages.
pub(crate) fn record_name(record: &DeviceRecord) -> String {
    format!("the record of {} at {}", record.device, record.agent)
}

/// The refusal of a new device record when [`factorydash_core::records::MAX_RECORDS`] are
/// kept already.
pub(crate) fn too_many_records() -> StoreError {
    StoreError::Invalid(format!(
        "at most {} device records are kept; remove one first",
        factorydash_core::records::MAX_RECORDS
    ))
}

/// A setting an admin changed at run time, kept by the store ([`Store::setting`]): the
/// shift calendar's text (`shift-calendar`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The text.
    pub value: String,
    /// When it was changed (UTC).
    pub updated_at: DateTime<Utc>,
    /// Who changed it.
    pub updated_by: String,
}

/// What a receiver of alarm changes (a webhook) is to get, kept by the store from when it
/// is queued until the receiver confirms it ([`Store::queue_outbox`]): the durable half
/// of alarm delivery, so that a restart delivers what was not, and nothing twice to a
/// receiver that confirmed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Its number, given by the store (increasing in queue order; 0 before it is kept).
    pub id: i64,
    /// The receiver, as the server names it (a webhook's URL without credentials).
    pub receiver: String,
    /// What to send, as sent.
    pub body: String,
    /// When it was queued (UTC, kept to the microsecond).
    pub queued_at: DateTime<Utc>,
}

/// The most outbox entries queued or read at once.
pub const MAX_OUTBOX_READ: usize = 1_000;

/// The longest outbox body, in bytes.
pub const MAX_OUTBOX_BODY: usize = 64 * 1024;

/// Refuses outbox entries beyond their bounds ([`Store::queue_outbox`]).
pub(crate) fn check_outbox(entries: &[OutboxEntry]) -> Result<(), StoreError> {
    if entries.len() > MAX_OUTBOX_READ {
        return Err(StoreError::Invalid(format!(
            "at most {MAX_OUTBOX_READ} outbox entries at once"
        )));
    }
    for e in entries {
        if e.receiver.is_empty() || e.receiver.len() > 1_000 || e.body.len() > MAX_OUTBOX_BODY {
            return Err(StoreError::Invalid(format!(
                "an outbox entry has a receiver of 1 to 1,000 bytes and a body of at most {MAX_OUTBOX_BODY}"
            )));
        }
    }
    Ok(())
}

/// The longest setting, in bytes.
pub const MAX_SETTING_LEN: usize = 64 * 1024;

/// The longest setting's key, in bytes.
pub const MAX_SETTING_KEY_LEN: usize = 64;

/// Refuses a key or a setting beyond their bounds ([`Store::put_setting`]).
pub(crate) fn check_setting(key: &str, setting: Option<&Setting>) -> Result<(), StoreError> {
    if key.is_empty() || key.len() > MAX_SETTING_KEY_LEN {
        return Err(StoreError::Invalid(format!(
            "a setting's key has 1 to {MAX_SETTING_KEY_LEN} bytes"
        )));
    }
    if setting.is_some_and(|s| s.value.len() > MAX_SETTING_LEN) {
        return Err(StoreError::Invalid(format!(
            "the setting {key} has more than {MAX_SETTING_LEN} bytes"
        )));
    }
    Ok(())
}

/// The most reasons [`Store::stop_reasons`] answers: as many as a stop list holds
/// ([`factorydash_core::summary::MAX_STOP_LOG`]).
pub const MAX_STOP_REASONS: usize = factorydash_core::summary::MAX_STOP_LOG;

/// Refuses a stop's reason that fails [`StopReason::check`] ([`Store::put_stop_reason`]).
pub(crate) fn check_reason(reason: &StopReason) -> Result<(), StoreError> {
    reason.check().map_err(|e| {
        StoreError::Invalid(format!(
            "the reason of the stop of {} at {} begun {}: {e}",
            reason.device, reason.agent, reason.began
        ))
    })
}

/// A stop's reason as read back from a store: one that fails [`StopReason::check`] is
/// [`StoreError::Corrupt`].
pub(crate) fn reason_read_back(reason: StopReason) -> Result<StopReason, StoreError> {
    reason.check().map_err(|e| {
        StoreError::Corrupt(format!(
            "the reason of the stop of {} at {} begun {}: {e}",
            reason.device, reason.agent, reason.began
        ))
    })?;
    Ok(reason)
}

/// A device record as read back from a store: one that fails [`DeviceRecord::check`]
/// (written by something else than this build) is [`StoreError::Corrupt`].
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn record_read_back(record: DeviceRecord) -> Result<DeviceRecord, StoreError> {
    match record.check() {
        Ok(()) => Ok(record),
        Err(e) => Err(StoreError::Corrupt(format!(
            "{}: {e}",
            record_name(&record)
        ))),
    }
}

/// The most ranges a [`SummaryQuery`] may hold: 400 days of 50 planned ranges a day (a
/// year of two shifts a day with a break each is about 1,500).
pub const MAX_SUMMARY_RANGES: usize = 20_000;

/// A question to the summaries ([`Store::summary`]): the totals of each device's
/// measures over `ranges`.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryQuery {
    /// Sorted, disjoint ranges of whole minutes (UTC), at most [`MAX_SUMMARY_RANGES`].
    pub ranges: Vec<MinuteRange>,
    /// Only these devices (at most [`MAX_FILTER_DEVICES`]); `None` for all.
    pub devices: Option<Vec<DeviceKey>>,
    /// Until when the states still open count (now, usually).
    pub open_until: DateTime<Utc>,
    /// Per agent (base URL), an earlier time the states still open count until: when
    /// the agent was last heard from, for one that is not reachable now.
    pub agent_until: std::collections::BTreeMap<String, DateTime<Utc>>,
    /// Whether the states still open of an agent not in `agent_until` count only until
    /// its device's newest tracked observation (an agent not followed now: its last state
    /// is not stretched to now).
    pub unlisted_until_last: bool,
}

impl SummaryQuery {
    /// A question over `ranges` for every device, open states counted until `open_until`.
    pub fn new(ranges: Vec<MinuteRange>, open_until: DateTime<Utc>) -> Self {
        SummaryQuery {
            ranges,
            devices: None,
            open_until,
            agent_until: Default::default(),
            unlisted_until_last: false,
        }
    }

    /// Until when the open states `held` of a device of `agent` count.
    pub fn until(&self, agent: &str, held: &[factorydash_core::summary::Held]) -> DateTime<Utc> {
        match self.agent_until.get(agent) {
            Some(t) => (*t).min(self.open_until),
            None if self.unlisted_until_last => held
                .iter()
                .map(|h| h.since)
                .max()
                .map_or(self.open_until, |t| t.min(self.open_until)),
            None => self.open_until,
        }
    }
}

/// Checks a [`SummaryQuery`]: ranges sorted, disjoint, in whole minutes, not too many;
/// devices not too many.
pub(crate) fn check_summary_query(q: &SummaryQuery) -> Result<(), StoreError> {
    if q.ranges.len() > MAX_SUMMARY_RANGES {
        return Err(StoreError::Invalid(format!(
            "{} ranges asked for; at most {MAX_SUMMARY_RANGES}",
            q.ranges.len()
        )));
    }
    let mut end = i64::MIN;
    for r in &q.ranges {
        if r.from % 60 != 0 || r.to % 60 != 0 || r.from >= r.to || r.from < end {
            return Err(StoreError::Invalid(
                "summary ranges must be sorted, disjoint, non-empty whole minutes".into(),
            ));
        }
        end = r.to;
    }
    check_devices(q.devices.as_deref())
}

/// What [`Store::rebuild_summaries`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RebuildOutcome {
    /// Devices rebuilt.
    pub devices: u64,
    /// Observations read.
    pub observations: u64,
    /// Summary rows written.
    pub rows: u64,
}

/// An agent added at run time, kept so that it is followed again after a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfiguredAgent {
    /// The agent's base URL. Given to [`Store::put_configured_agent`], it may hold
    /// credentials (`http://user:password@host`), which the store keeps apart; read from
    /// [`Store::configured_agents`], it holds none.
    pub url: String,
    /// Kept, but not followed.
    pub paused: bool,
}

/// A store's error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The page cursor is not one this store wrote.
    #[error("invalid page cursor")]
    InvalidCursor(#[from] InvalidCursor),
    /// A batch holds a `sequence`, `instanceId` or `nextSequence` above `i64::MAX`, which
    /// PostgreSQL's `bigint` (and so every store, alike) cannot hold. MTConnect Part 1
    /// gives sequences 64 bits, but no real agent comes near 2^63: such a value is an
    /// agent's bug, refused rather than wrapped negative.
    #[error("{what} {value} is beyond the largest storable sequence (2^63 - 1)")]
    SequenceOutOfRange {
        /// Which number: `sequence`, `instanceId` or `nextSequence`.
        what: &'static str,
        /// The value.
        value: u64,
    },
    /// The database failed or cannot be reached.
    #[cfg(feature = "postgres")]
    #[error("database error")]
    Database(#[from] tokio_postgres::Error),
    /// A connection to the database could not be opened (unreachable, refused, TLS
    /// failed, authentication failed): the source says why.
    #[cfg(feature = "postgres")]
    #[error("cannot connect to PostgreSQL at {server} (sslmode={ssl_mode})")]
    Connect {
        /// The servers tried, `host:port`.
        server: String,
        /// The `sslmode` in effect.
        ssl_mode: &'static str,
        /// Why.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The PostgreSQL configuration cannot be used (connection string, environment
    /// variable, CA file).
    #[cfg(feature = "postgres")]
    #[error("invalid PostgreSQL configuration")]
    Config(#[from] postgres::ConfigError),
    /// No pooled database connection could be had for a reason other than the
    /// database's own error (the pool refused: closed, timed out or misconfigured).
    #[cfg(feature = "postgres")]
    #[error("no database connection available: {0}")]
    Unavailable(String),
    /// A request the store refuses as asked (too many devices in a filter, a name too
    /// long): the text says why.
    #[error("{0}")]
    Invalid(String),
    /// SQLite failed. [`StoreError::is_permanent`] tells a refused batch (a constraint,
    /// a value too big) from a passing trouble (busy, disk full, I/O, read-only).
    #[cfg(feature = "sqlite")]
    #[error("SQLite error")]
    Sqlite(#[from] rusqlite::Error),
    /// Another process (or another store in this one) holds the SQLite file, by this path
    /// or another (a link): only one factorydash may use a file at a time.
    #[error("{} is in use by another factorydash (the file is locked)", path.display())]
    Locked {
        /// The database file.
        path: std::path::PathBuf,
    },
    /// The SQLite file (or its directory) cannot be written.
    #[error("{} cannot be written (read-only file, directory or file system)", path.display())]
    ReadOnly {
        /// The database file.
        path: std::path::PathBuf,
    },
    /// A file of the store (the SQLite file or its directory) cannot be created, opened or
    /// locked.
    #[error("cannot open {}", path.display())]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file given as a store (a backup to restore) is not a usable factorydash store:
    /// what is wrong with it.
    #[error("not a usable factorydash store: {0}")]
    NotAStore(String),
    /// The store holds a value this build cannot read back (a role, a credential kind or
    /// a scope rule that does not parse, a timestamp out of range): what and where.
    #[error("the store holds a value that cannot be read: {0}")]
    Corrupt(String),
    /// The database holds a schema newer than this build knows.
    #[error("the database schema is at version {found}, newer than this build's {known}")]
    SchemaTooNew {
        /// The version found.
        found: i32,
        /// The newest version this build knows.
        known: i32,
    },
}

impl StoreError {
    /// Whether the same request will fail the same way however often it is tried: the data
    /// itself is refused ([`StoreError::SequenceOutOfRange`], a PostgreSQL data exception,
    /// SQLSTATE class 22, such as text the database encoding cannot hold, or an SQLite
    /// constraint, size or type error). Retrying such a batch would stop everything behind
    /// it; an outage, a lost connection, a busy, full, read-only or failing SQLite file is
    /// not permanent (ingest retries with backoff and loses nothing).
    pub fn is_permanent(&self) -> bool {
        match self {
            StoreError::SequenceOutOfRange { .. } | StoreError::Invalid(_) => true,
            #[cfg(feature = "postgres")]
            StoreError::Database(e) => e.code().is_some_and(|c| c.code().starts_with("22")),
            #[cfg(feature = "sqlite")]
            StoreError::Sqlite(e) => {
                use rusqlite::ErrorCode as C;
                matches!(
                    e.sqlite_error_code(),
                    Some(
                        C::ConstraintViolation
                            | C::TooBig
                            | C::TypeMismatch
                            | C::ParameterOutOfRange
                    )
                )
            }
            _ => false,
        }
    }
}

/// What opening a store would change in its schema: see
/// `sqlite::migration_plan` and `postgres::migration_plan`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationPlan {
    /// The schema version the store holds (0: none yet, a new store).
    pub found: i32,
    /// The newest version this build knows.
    pub known: i32,
    /// The migrations opening it would apply, in order (their file names).
    pub pending: Vec<&'static str>,
}

/// Where factorydash keeps devices and observations.
///
/// Implementations: [`MemoryStore`] (in memory, nothing kept), with the `sqlite` feature
/// [`sqlite::SqliteStore`] (one file, the server's default) and, with the `postgres`
/// feature, [`postgres::PgStore`]. All pass the same conformance tests.
#[async_trait]
pub trait Store: AccountStore + Send + Sync {
    /// Replaces the device model probed from `agent` (its base URL).
    ///
    /// # Errors
    /// A database error.
    async fn put_devices(&self, agent: &str, devices: &[DeviceInfo]) -> Result<(), StoreError>;

    /// Every device of every agent, ordered by device name, then agent.
    ///
    /// # Errors
    /// A database error.
    async fn devices(&self) -> Result<Vec<DeviceInfo>, StoreError>;

    /// Stores a batch idempotently, updates the latest value of its data items, and saves
    /// the agent's resume point, all at once.
    ///
    /// # Errors
    /// A database error; then nothing of the batch is stored.
    async fn append(&self, batch: &Batch) -> Result<AppendOutcome, StoreError>;

    /// Where ingest from `agent` should continue, if anything was stored from it.
    ///
    /// # Errors
    /// A database error.
    async fn resume_point(&self, agent: &str) -> Result<Option<ResumePoint>, StoreError>;

    /// Where each of `agent`'s instances (`instanceId`s) with observations stored was
    /// left: for each, the sequence after the highest one stored; at most `limit`, the
    /// highest `instanceId` first (agents number their instances by start time). A
    /// follower given these (`Follower::remember_instance` in factorydash-mtconnect) takes
    /// an instance the agent answers with again up from there, after a restart of
    /// factorydash too, instead of reading it from its oldest observation.
    ///
    /// # Errors
    /// A database error.
    async fn instances(&self, agent: &str, limit: usize) -> Result<Vec<ResumePoint>, StoreError>;

    /// Records observations an agent lost before they could be read.
    ///
    /// # Errors
    /// A database error.
    async fn record_gap(&self, gap: &Gap) -> Result<(), StoreError>;

    /// Withdraws the gaps of unknown end (`to` is `None`) recorded for `agent`'s
    /// `instance_id`: recorded when the agent answered with another instance, they were
    /// not losses once the agent answers with `instance_id` again (an agent that
    /// alternates between instances). Returns how many were withdrawn.
    ///
    /// # Errors
    /// A database error.
    async fn withdraw_open_gaps(&self, agent: &str, instance_id: u64) -> Result<u64, StoreError>;

    /// Every recorded gap, oldest first.
    ///
    /// # Errors
    /// A database error.
    async fn gaps(&self) -> Result<Vec<Gap>, StoreError>;

    /// The latest observation of every data item of every device, with its agent, ordered
    /// by (device name, agent, `dataItemId`), as a keyset page; agents of one device name
    /// come in the store's order of agents (the order it first saw them), the same on every
    /// call. Devices are told apart by agent and name ([`DeviceKey`]): two agents' devices
    /// of one name are two devices. The page's cursor names no agent URL (only the store's
    /// number for it), so it can be shown to anyone.
    ///
    /// # Errors
    /// [`StoreError::InvalidCursor`] for a cursor this store did not write;
    /// [`StoreError::Invalid`] for a [`LatestFilter::devices`] of more than
    /// [`MAX_FILTER_DEVICES`]; a database error.
    async fn latest(
        &self,
        filter: &LatestFilter,
        page: &PageRequest,
    ) -> Result<Page<AgentObservation>, StoreError>;

    /// The value of every data item as of the instant `at` (UTC): for each data item, its
    /// newest observation with a timestamp at or before `at` (the highest sequence among
    /// equal timestamps), ordered by (device, agent, `dataItemId`) as a keyset page like
    /// [`Store::latest`], with the same filter. Data items with nothing at or before `at`
    /// are left out. Where retention has dropped the history, a latest value older than
    /// `at` still answers (it is still the value held then).
    ///
    /// # Errors
    /// [`StoreError::InvalidCursor`] for a cursor this store did not write;
    /// [`StoreError::Invalid`] for a [`LatestFilter::devices`] of more than
    /// [`MAX_FILTER_DEVICES`]; a database error.
    async fn as_of(
        &self,
        filter: &LatestFilter,
        at: DateTime<Utc>,
        page: &PageRequest,
    ) -> Result<Page<AgentObservation>, StoreError>;

    /// The observations of one data item with timestamps in `window`, ordered by timestamp
    /// then sequence, at most `limit` (the earliest ones).
    ///
    /// # Errors
    /// A database error.
    async fn series(
        &self,
        device: &DeviceKey,
        data_item_id: &str,
        window: &TimeWindow,
        limit: usize,
    ) -> Result<Vec<Observation>, StoreError>;

    /// One data item's observations with timestamps in `window` (UTC, `from` included,
    /// `to` not), a chunk at a time, in [`SeriesKey`] order (timestamp, `sequence`,
    /// `instanceId`): those whose key is greater than `after` (from the window's start
    /// when `None`), at most `limit` (taken as at least 1), and where the next chunk
    /// starts ([`SeriesChunk::next`]). Reading chunk after chunk from `after: None`, each
    /// time passing the last `next`, until `next` is `None`, reads every observation of
    /// the window exactly once, however many share one timestamp, even one (timestamp,
    /// `sequence`). A chunk may hold fewer than `limit` before the end (PostgreSQL leaves
    /// the rows of one (timestamp, `sequence`) that a chunk would split to the next one,
    /// and rarely the last chunk is empty): only `next` tells the end.
    ///
    /// Each call reads at most `limit + 1` rows by one or two ranges of the data item's
    /// index (on SQLite, per shape the data item has had), so its time and memory are
    /// bounded by `limit` whatever the window holds. An export reads a window of any size
    /// this way.
    ///
    /// # Errors
    /// A database error.
    async fn series_after(
        &self,
        device: &DeviceKey,
        data_item_id: &str,
        window: &TimeWindow,
        after: Option<SeriesKey>,
        limit: usize,
    ) -> Result<SeriesChunk, StoreError>;

    /// One data item's observations with timestamps in `window` (UTC), summarised for a
    /// chart in `n` equal-width time buckets, empty buckets left out:
    /// [`factorydash_core::downsample::buckets`] over each observation's
    /// [`line_value`](factorydash_core::downsample::line_value). Each bucket's first and
    /// last points are its first and last observations of a number or `UNAVAILABLE` (a
    /// point without a value, where the chart's line breaks), in (timestamp, `sequence`,
    /// `instanceId`) order; its count, min, max and mean are of the finite numbers, and
    /// `unavailable` counts the rest; a bucket of only `UNAVAILABLE` is kept. Text that is
    /// not a number is left out. Every store answers the same buckets (the mean to within
    /// floating-point rounding: PostgreSQL sums in its own order). Each store folds the
    /// window in one pass where the data is (in SQL on PostgreSQL), so a window of millions
    /// of observations is never read out; this default reads the window's observations and
    /// folds them here.
    ///
    /// # Errors
    /// A database error.
    async fn buckets(
        &self,
        device: &DeviceKey,
        data_item_id: &str,
        window: &TimeWindow,
        n: usize,
    ) -> Result<Vec<factorydash_core::downsample::Bucket>, StoreError> {
        use factorydash_core::downsample::{line_value, BucketFold};
        let observations = self
            .series(device, data_item_id, window, usize::MAX)
            .await?;
        let mut fold = BucketFold::new(window.from(), window.to(), n);
        for o in &observations {
            if let Some(v) = line_value(&o.value) {
                fold.push(o.timestamp, v);
            }
        }
        Ok(fold.finish())
    }

    /// The newest observation of one data item with a timestamp before `at` (UTC), if any:
    /// the value it held as of `at`.
    ///
    /// # Errors
    /// A database error.
    async fn last_before(
        &self,
        device: &DeviceKey,
        data_item_id: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<Observation>, StoreError>;

    /// The Condition observations with timestamps in `window`, of the devices `devices`
    /// (`None`: every device; `Some` of an empty list: none; at most
    /// [`MAX_FILTER_DEVICES`], each named by agent and name, [`DeviceKey`]), with their
    /// agents, ordered by timestamp then sequence, at most `limit` (the earliest ones)
    /// after the (timestamp, sequence) `after`: the input of
    /// [`factorydash_core::episodes`], read a chunk at a time: pass the last one's
    /// (timestamp, sequence, agent) as the next `after`. Observations of several agents
    /// with equal timestamps and sequences come in an order of the store's choosing, the
    /// same on every call.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for more than [`MAX_FILTER_DEVICES`] devices; a database
    /// error.
    async fn conditions(
        &self,
        devices: Option<&[DeviceKey]>,
        window: &TimeWindow,
        after: Option<(DateTime<Utc>, u64, &str)>,
        limit: usize,
    ) -> Result<Vec<AgentObservation>, StoreError>;

    /// One data item's state intervals over `window` (UTC) and the time in each state,
    /// computed where the data is (in SQL on PostgreSQL), so that the answer costs memory
    /// bounded by `limit` whatever the window holds: the intervals that begin after
    /// `after` (at most `limit`, oldest first; [`StateSummary::next`] continues) and the
    /// seconds in each state over the whole window, starting from the value held when the
    /// window began. The same result as [`factorydash_core::states::intervals`] and
    /// [`factorydash_core::states::shares`] on the window's observations.
    ///
    /// # Errors
    /// A database error.
    async fn state_summary(
        &self,
        device: &DeviceKey,
        data_item_id: &str,
        window: &TimeWindow,
        after: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<StateSummary, StoreError>;

    /// The totals of each device's summary measures over the query's ranges: seconds per
    /// Execution, Availability and ControllerMode state (per data item), Fault and Warning
    /// seconds, parts counted (see [`factorydash_core::summary`]), from the periods closed
    /// so far plus the states still open. Answered from the summary rows (about
    /// `ranges × (days + 2 × 23 hours + 2 × 59 minutes)` rows per device at most), never
    /// from the observations.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for ranges not sorted, disjoint whole minutes, more than
    /// [`MAX_SUMMARY_RANGES`] ranges or [`MAX_FILTER_DEVICES`] devices; a database
    /// error.
    async fn summary(&self, query: &SummaryQuery) -> Result<Vec<SummaryTotal>, StoreError>;

    /// Drops the summary rows of periods that end before `cutoff` (the summaries' own
    /// retention, longer than the observations'), and the reasons of stops begun before
    /// it. Returns how many summary rows.
    ///
    /// # Errors
    /// A database error.
    async fn prune_summaries(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Keeps an operator's reason for a stop ([`StopReason`]), replacing the one given
    /// before for the same stop (agent, device, Execution data item and start). Reasons
    /// are dropped with the summaries ([`Store::prune_summaries`]), by their stop's start.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for a reason that fails [`StopReason::check`]; a database
    /// error.
    async fn put_stop_reason(&self, reason: &StopReason) -> Result<(), StoreError>;

    /// The reasons given for the stops of `device` at `agent` that began in `[from, to)`,
    /// by start then data item; at most [`MAX_STOP_REASONS`] (the first ones).
    ///
    /// # Errors
    /// A database error; a stored reason that does not read back
    /// ([`StoreError::Corrupt`]).
    async fn stop_reasons(
        &self,
        agent: &str,
        device: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<StopReason>, StoreError>;

    /// Keeps `entries` (their `id` ignored) in the outbox until [`Store::confirm_outbox`];
    /// their ids, in order, increasing.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for more than [`MAX_OUTBOX_READ`] entries at once, a
    /// receiver longer than 1,000 bytes or a body longer than [`MAX_OUTBOX_BODY`]; a
    /// database error.
    async fn queue_outbox(&self, entries: &[OutboxEntry]) -> Result<Vec<i64>, StoreError>;

    /// The first `limit` (at most [`MAX_OUTBOX_READ`]) entries of `receiver` not
    /// confirmed, by id (the order they were queued in).
    ///
    /// # Errors
    /// A database error.
    async fn pending_outbox(
        &self,
        receiver: &str,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError>;

    /// Drops entry `id` from the outbox (its receiver confirmed it, or it was given up);
    /// an id not there is no error.
    ///
    /// # Errors
    /// A database error.
    async fn confirm_outbox(&self, id: i64) -> Result<(), StoreError>;

    /// The setting kept under `key` ([`Setting`]: an admin's change made at run time),
    /// if any.
    ///
    /// # Errors
    /// A database error.
    async fn setting(&self, key: &str) -> Result<Option<Setting>, StoreError>;

    /// Keeps `setting` under `key`, replacing what was; `None` removes it.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for a key that is empty or longer than
    /// [`MAX_SETTING_KEY_LEN`] bytes, or a value longer than [`MAX_SETTING_LEN`] bytes; a
    /// database error.
    async fn put_setting(&self, key: &str, setting: Option<&Setting>) -> Result<(), StoreError>;

    /// Rebuilds the summaries from the stored observations, from the start of the UTC day
    /// holding `from`: drops the summary rows of that day and after and the states held,
    /// and folds every stored Execution, Availability, ControllerMode, PartCount and
    /// Condition observation of the data items in each device's current model again, in
    /// (timestamp, sequence) order per device, starting from each data item's last
    /// observation before that day. Conditions active across the day's start count from
    /// their next observation. Ingest folds in sequence order: where an agent's timestamps
    /// do not follow its sequences (its clock jumped), the two differ, and the rebuild's
    /// is the timestamps' (the charts') reading. Meant for an idle store (`serve`
    /// stopped): a batch stored meanwhile may be counted twice.
    ///
    /// # Errors
    /// A database error.
    async fn rebuild_summaries(&self, from: DateTime<Utc>) -> Result<RebuildOutcome, StoreError>;

    /// Whether the store answers: a constant-cost check (`SELECT 1` on PostgreSQL) for a
    /// health probe, whatever the store holds.
    ///
    /// # Errors
    /// A database error.
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// The agents added at run time (not those given on the command line), in the order
    /// added, their URLs without credentials ([`Store::agent_credentials`] has those).
    ///
    /// # Errors
    /// A database error.
    async fn configured_agents(&self) -> Result<Vec<ConfiguredAgent>, StoreError>;

    /// Every device record ([`DeviceRecord`]: an admin's display name, cell, description
    /// and ideal cycle time of a device), by agent then device name (byte order); at
    /// most [`factorydash_core::records::MAX_RECORDS`].
    ///
    /// # Errors
    /// A database error; a stored record that does not read back
    /// ([`StoreError::Corrupt`]).
    async fn device_records(&self) -> Result<Vec<DeviceRecord>, StoreError>;

    /// Adds the record of its device (agent and name), or replaces it. A record that says
    /// nothing ([`DeviceRecord::is_empty`]) is kept like any other.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for a record that fails [`DeviceRecord::check`], or a new
    /// one beyond [`factorydash_core::records::MAX_RECORDS`]; a database error.
    async fn put_device_record(&self, record: &DeviceRecord) -> Result<(), StoreError>;

    /// Removes the record of `device` at `agent`; `false` when there was none.
    ///
    /// # Errors
    /// A database error.
    async fn remove_device_record(&self, agent: &str, device: &str) -> Result<bool, StoreError>;

    /// Adds an agent, or sets whether it is paused. The agent is its URL without
    /// credentials ([`split_credentials`]): that is what is stored as its URL. Credentials
    /// in `agent.url` are stored apart, replacing those kept for it; a URL without
    /// credentials leaves those kept as they are (pausing an agent by its URL keeps them).
    ///
    /// # Errors
    /// A database error.
    async fn put_configured_agent(&self, agent: &ConfiguredAgent) -> Result<(), StoreError>;

    /// Removes an agent added at run time, and its credentials; `false` when there was none
    /// with that URL (compared without credentials). What was stored from it stays.
    ///
    /// # Errors
    /// A database error.
    async fn remove_configured_agent(&self, url: &str) -> Result<bool, StoreError>;

    /// The credentials kept for the agent added at run time at `url` (compared without
    /// credentials), if any: what its follower needs to connect, and read for nothing else.
    ///
    /// # Errors
    /// A database error.
    async fn agent_credentials(&self, url: &str) -> Result<Option<Credentials>, StoreError>;

    /// How many observations are stored.
    ///
    /// # Errors
    /// A database error.
    async fn observation_count(&self) -> Result<u64, StoreError>;

    /// Drops the observations of every UTC day that ended at or before `cutoff`, whole days
    /// at a time (in PostgreSQL, a day is a partition, dropped rather than deleted from):
    /// observations stamped before midnight UTC of `cutoff`'s day go, the rest stay. The
    /// latest value of every data item stays whatever its age. Returns how many
    /// observations were dropped.
    ///
    /// # Errors
    /// A database error.
    async fn prune(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// Refuses a batch whose numbers do not fit a signed 64-bit integer (see
/// [`StoreError::SequenceOutOfRange`]).
pub(crate) fn check_range(batch: &Batch) -> Result<(), StoreError> {
    let too_big = |what, value: u64| {
        if value > i64::MAX as u64 {
            Err(StoreError::SequenceOutOfRange { what, value })
        } else {
            Ok(())
        }
    };
    too_big("instanceId", batch.instance_id)?;
    too_big("nextSequence", batch.next_sequence)?;
    batch
        .observations
        .iter()
        .try_for_each(|o| too_big("sequence", o.sequence))
}

/// The resume point after `batch`, given the stored one: within one `instanceId` it never
/// goes back (an agent whose `nextSequence` went backwards must not make us read and store
/// again what is stored), and it is past every sequence of the batch.
pub(crate) fn resume_after(stored: Option<&ResumePoint>, batch: &Batch) -> ResumePoint {
    let past_batch = batch
        .observations
        .iter()
        .map(|o| o.sequence.saturating_add(1))
        .max()
        .unwrap_or(0);
    let mut next = batch.next_sequence.max(past_batch);
    if let Some(stored) = stored.filter(|s| s.instance_id == batch.instance_id) {
        next = next.max(stored.next_sequence);
    }
    ResumePoint {
        agent: batch.agent.clone(),
        instance_id: batch.instance_id,
        next_sequence: next,
    }
}

/// Where [`Store::series_after`] starts in a database whose timestamps are whole
/// microseconds (SQLite, PostgreSQL) and numbers signed 64-bit: the key `(ts, sequence,
/// instance_id)` that the rows read are greater than. Before the window, or with no
/// `after`: the window's start with sequence and `instanceId` -1, below any stored. A key
/// between two microseconds starts at the next one, and numbers past `i64::MAX` (which no
/// stored row holds) saturate, so that the comparison keeps its meaning.
pub(crate) fn series_start(
    window: &TimeWindow,
    after: Option<SeriesKey>,
) -> (DateTime<Utc>, i64, i64) {
    let from_instant = |t: DateTime<Utc>| {
        let whole = DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t);
        let start = if whole < t {
            whole + chrono::Duration::microseconds(1)
        } else {
            whole
        };
        (start, -1, -1)
    };
    match after {
        Some(after) if after.timestamp >= window.from() => {
            if DateTime::from_timestamp_micros(after.timestamp.timestamp_micros())
                != Some(after.timestamp)
            {
                return from_instant(after.timestamp);
            }
            match i64::try_from(after.sequence) {
                Ok(sequence) => (
                    after.timestamp,
                    sequence,
                    i64::try_from(after.instance_id).unwrap_or(i64::MAX),
                ),
                // Past every stored sequence at that instant.
                Err(_) => (after.timestamp, i64::MAX, i64::MAX),
            }
        }
        _ => from_instant(window.from()),
    }
}

/// A chunk from rows read in key order, up to `limit + 1` (one more tells that more
/// follow).
pub(crate) fn series_chunk(mut rows: Vec<(SeriesKey, Observation)>, limit: usize) -> SeriesChunk {
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|(key, _)| *key)
    } else {
        None
    };
    SeriesChunk {
        observations: rows.into_iter().map(|(_, o)| o).collect(),
        next,
    }
}

/// A page of latest values from the rows a store read, each with its agent's number in
/// that store (`limit + 1` at most: one more tells there is a next page). The cursor is
/// (device, agent number, `dataItemId`): the store's own order of agents, never the
/// agent's URL, which may hold credentials and a cursor is shown to every reader.
pub(crate) fn latest_page_of(
    rows: Vec<(i64, AgentObservation)>,
    limit: usize,
) -> Page<AgentObservation> {
    let page = Page::from_overfetch(rows, limit, |(agent, o)| {
        factorydash_core::Cursor::from_key(&[
            o.observation.device.as_str(),
            agent.to_string().as_str(),
            o.observation.data_item_id.as_str(),
        ])
    });
    Page {
        items: page.items.into_iter().map(|(_, o)| o).collect(),
        next: page.next,
    }
}

/// The (device, agent number, `dataItemId`) a latest-values cursor points after (see
/// [`latest_page_of`]).
pub(crate) fn latest_after(
    page: &PageRequest,
) -> Result<Option<(String, i64, String)>, StoreError> {
    match &page.after {
        None => Ok(None),
        Some(c) => {
            let key = c.key()?;
            let [device, agent, item]: [String; 3] = key.try_into().map_err(|_| InvalidCursor)?;
            let agent = agent.parse().map_err(|_| InvalidCursor)?;
            Ok(Some((device, agent, item)))
        }
    }
}
