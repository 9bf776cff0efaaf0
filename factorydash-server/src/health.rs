//! The health registry: how ingest from each source (an agent or a recording) is going,
//! for the page, the API, `/metrics` and logs. Every change is told to the callback the
//! registry was made with ([`OnChange`]; the App's pushes it to the browsers through the
//! live hub).

use std::collections::BTreeMap;
use std::sync::RwLock;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// How ingest from one source is going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceState {
    /// Not yet in contact.
    Connecting,
    /// Reading the agent's backlog.
    Backfilling,
    /// Caught up, polling `/sample?from=` for new observations.
    Polling,
    /// Caught up, reading a `/sample?interval=` stream.
    Streaming,
    /// The last request failed; waiting before the next.
    BackingOff,
    /// Another factorydash process on the same database ingests this agent (it holds the
    /// agent's lock); this one shows what that one stores.
    Standby,
    /// Paused through `/api/agents`: kept, not followed.
    Paused,
    /// Playing a recording.
    Replaying,
    /// The recording has been played to its end.
    Finished,
}

impl SourceState {
    /// How the page shows it: its JSON name (snake_case) with every `_` a space, e.g.
    /// `backing off`; the only place a source's state becomes text (the page's script
    /// places the fragments [`crate::page`] renders).
    pub fn label(self) -> &'static str {
        match self {
            SourceState::Connecting => "connecting",
            SourceState::Backfilling => "backfilling",
            SourceState::Polling => "polling",
            SourceState::Streaming => "streaming",
            SourceState::BackingOff => "backing off",
            SourceState::Standby => "standby",
            SourceState::Paused => "paused",
            SourceState::Replaying => "replaying",
            SourceState::Finished => "finished",
        }
    }
}

/// The health of one source (an agent or a recording), for the page, the API and logs.
///
/// Serialised with the credentials of the agent URL, in `source` and in the errors,
/// redacted ([`crate::redact`]).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceHealth {
    /// The agent's base URL, or `replay:<dir>`: its identity, as given.
    #[serde(serialize_with = "crate::redact::serialize_url")]
    pub source: String,
    /// What ingest is doing.
    pub state: SourceState,
    /// Since when the source cannot be reached (UTC), while it cannot.
    pub unreachable_since: Option<DateTime<Utc>>,
    /// When the next attempt is due (UTC), while backing off.
    pub retry_at: Option<DateTime<Utc>>,
    /// The last error, while it lasts.
    #[serde(serialize_with = "crate::redact::serialize_text")]
    pub last_error: Option<String>,
    /// The last successful answer (UTC).
    pub last_contact: Option<DateTime<Utc>>,
    /// Observations stored from this source since start.
    pub observations: u64,
    /// Gaps recorded since start.
    pub gaps: u64,
    /// Agent restarts seen since start.
    pub restarts: u64,
    /// Times the agent answered with an `instanceId` followed before since start (an agent
    /// alternating between instances): each instance is followed on where it was left.
    pub instance_switches: u64,
    /// Streams lost (stalled, dropped, ended) and reopened since start.
    pub reconnects: u64,
    /// Observations stored per second, averaged over about the last ten seconds.
    pub observations_per_second: f64,
    #[serde(skip)]
    rate_since: Option<DateTime<Utc>>,
    /// The agent's `instanceId` and the next sequence to read.
    pub instance_id: Option<u64>,
    /// The next sequence to read once what is stored (the resume point).
    pub next_sequence: Option<u64>,
    /// Observations read from the source and waiting to be stored.
    pub buffered: u64,
    /// Since when the store refuses what was read (UTC), while it does.
    pub store_unavailable_since: Option<DateTime<Utc>>,
    /// The store's last error, while it lasts.
    #[serde(serialize_with = "crate::redact::serialize_text")]
    pub store_error: Option<String>,
}

impl SourceHealth {
    fn new(source: &str) -> Self {
        SourceHealth {
            source: source.to_owned(),
            state: SourceState::Connecting,
            unreachable_since: None,
            retry_at: None,
            last_error: None,
            last_contact: None,
            observations: 0,
            gaps: 0,
            restarts: 0,
            instance_switches: 0,
            reconnects: 0,
            observations_per_second: 0.0,
            rate_since: None,
            instance_id: None,
            next_sequence: None,
            buffered: 0,
            store_unavailable_since: None,
            store_error: None,
        }
    }

    /// Folds `stored` observations at `now` into the rate: an exponential moving average
    /// with a ten-second time constant.
    pub fn record_rate(&mut self, now: DateTime<Utc>, stored: u64) {
        const TAU: f64 = 10.0;
        if let Some(since) = self.rate_since {
            let dt = (now - since).as_seconds_f64().max(1e-3);
            let alpha = 1.0 - (-dt / TAU).exp();
            self.observations_per_second +=
                alpha * (stored as f64 / dt - self.observations_per_second);
        }
        self.rate_since = Some(now);
    }
}

/// What a [`HealthRegistry`] calls after each change (it is told, not given, the sources'
/// health: ingest changes it several times per page read and stored, and whoever listens
/// reads it with [`HealthRegistry::all`] when it needs it).
pub type OnChange = Box<dyn Fn() + Send + Sync>;

/// Every source's health, by source.
pub struct HealthRegistry {
    sources: RwLock<BTreeMap<String, SourceHealth>>,
    on_change: OnChange,
}

impl HealthRegistry {
    /// An empty registry that calls `on_change` after each change (the App's live hub
    /// pushes the sources' health to the browsers, at most once a second).
    pub fn new(on_change: OnChange) -> Self {
        HealthRegistry {
            sources: RwLock::new(BTreeMap::new()),
            on_change,
        }
    }

    /// Every source's health, by source.
    pub fn all(&self) -> Vec<SourceHealth> {
        self.sources
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// A source's state, if it is known.
    pub fn state(&self, source: &str) -> Option<SourceState> {
        self.sources
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(source)
            .map(|h| h.state)
    }

    /// How often a source's agent switched between instances followed before, since start
    /// (0 for a source not known).
    pub fn instance_switches(&self, source: &str) -> u64 {
        self.sources
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(source)
            .map_or(0, |h| h.instance_switches)
    }

    /// Forgets a source's health (an agent removed).
    pub fn forget(&self, source: &str) {
        self.sources
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(source);
        (self.on_change)();
    }

    /// Changes a source's health and tells the registry's callback.
    pub fn update(&self, source: &str, f: impl FnOnce(&mut SourceHealth)) {
        {
            let mut map = self.sources.write().unwrap_or_else(|p| p.into_inner());
            f(map
                .entry(source.to_owned())
                .or_insert_with(|| SourceHealth::new(source)));
        }
        (self.on_change)();
    }
}
