//! What the ingest tasks and the web handlers share.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use factorydash_core::{DeviceInfo, DeviceStatus, Observation, PageRequest};
use factorydash_store::{LatestFilter, Store, StoreError};
use serde::Serialize;
use tokio::sync::broadcast;

/// A random number, for the live protocol's epoch.
fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    h.finish() as u32
}

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

/// The health of one source (an agent or a recording), for the page, the API and logs.
///
/// Serialised with the credentials of the agent URL, in `source` and in the errors,
/// redacted ([`crate::redact`]).
#[derive(Debug, Clone, Serialize)]
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

/// The shared state.
pub struct App {
    /// Where observations are kept.
    pub store: Arc<dyn Store>,
    /// Live updates for WebSocket clients: JSON messages, serialised once and shared.
    pub updates: broadcast::Sender<Arc<LiveMessage>>,
    /// The live protocol's log: the last [`HISTORY`] messages, for clients that reconnect.
    live: std::sync::Mutex<LiveLog>,
    health: RwLock<BTreeMap<String, SourceHealth>>,
    /// Which store this is, for the page ("memory" or "postgresql").
    pub store_kind: &'static str,
    /// How agents are followed, set once when `serve` starts following agents.
    pub ingest: std::sync::OnceLock<crate::ingest::Ingest>,
    /// The agents followed now, with their tasks.
    pub followed: std::sync::Mutex<HashMap<String, tokio::task::AbortHandle>>,
    /// Cancelled when the process is asked to stop (SIGTERM, Ctrl-C): WebSocket clients
    /// are closed with a close frame and the server stops accepting connections.
    pub stopping: tokio_util::sync::CancellationToken,
    /// The tasks that store what was read (one per followed agent): a clean stop waits for
    /// them to store what waits in their queues.
    pub writers: tokio_util::task::TaskTracker,
}

/// How many live messages are kept for clients that reconnect.
pub const HISTORY: usize = 1024;

/// One live message, serialised once for every client.
#[derive(Debug)]
pub struct LiveMessage {
    /// Its place in this process's stream of messages (from 1, no holes).
    pub id: u64,
    /// The device it is about (`None`: about every client, e.g. health).
    pub device: Option<String>,
    /// The JSON text sent.
    pub json: Arc<str>,
}

/// The ids given so far and the newest messages.
#[derive(Debug)]
struct LiveLog {
    /// This process's stream, told apart from an earlier process's (random).
    epoch: u64,
    /// The last id given.
    last: u64,
    /// The newest messages; ids older than the first one held are lost.
    recent: std::collections::VecDeque<Arc<LiveMessage>>,
    /// When a client was last connected.
    last_listener: Option<std::time::Instant>,
}

/// How long messages are still kept after the last client left, for it to come back.
const KEEP_WITHOUT_LISTENERS: std::time::Duration = std::time::Duration::from_secs(60);

impl LiveLog {
    /// Whether messages should be made: a client is connected, or left less than a minute
    /// ago and may come back for what it missed.
    fn listened(&mut self, receivers: usize) -> bool {
        if receivers > 0 {
            self.last_listener = Some(std::time::Instant::now());
            return true;
        }
        self.last_listener
            .is_some_and(|t| t.elapsed() < KEEP_WITHOUT_LISTENERS)
    }
}

/// What a reconnecting client missed: the messages after its last one, or `None` when
/// they are no longer held (it must reload what it shows).
pub type Missed = Option<Vec<Arc<LiveMessage>>>;

/// A live update message.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Update<'a> {
    Latest {
        device: &'a str,
        items: &'a [&'a Observation],
        devices: &'a [DeviceStatus],
        /// When the server published it, right after storing (UTC).
        published_at: chrono::DateTime<chrono::Utc>,
    },
    Health {
        sources: &'a [SourceHealth],
    },
}

impl App {
    /// The shared state over `store`.
    pub fn new(store: Arc<dyn Store>, store_kind: &'static str) -> Arc<Self> {
        let (updates, _) = broadcast::channel(256);
        Arc::new(App {
            store,
            updates,
            live: std::sync::Mutex::new(LiveLog {
                epoch: u64::from(rand_u32()) << 20 | u64::from(std::process::id() & 0xf_ffff),
                last: 0,
                recent: std::collections::VecDeque::with_capacity(HISTORY),
                last_listener: None,
            }),
            health: RwLock::new(BTreeMap::new()),
            store_kind,
            ingest: std::sync::OnceLock::new(),
            followed: std::sync::Mutex::new(HashMap::new()),
            stopping: tokio_util::sync::CancellationToken::new(),
            writers: tokio_util::task::TaskTracker::new(),
        })
    }

    /// Every source's health.
    pub fn health(&self) -> Vec<SourceHealth> {
        self.health
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// A source's state, if it is known.
    pub fn source_state(&self, source: &str) -> Option<SourceState> {
        self.health
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(source)
            .map(|h| h.state)
    }

    /// Forgets a source's health (an agent removed).
    pub fn forget_source(&self, source: &str) {
        let all = {
            let mut map = self.health.write().unwrap_or_else(|p| p.into_inner());
            map.remove(source);
            map.values().cloned().collect::<Vec<_>>()
        };
        self.send(&Update::Health { sources: &all });
    }

    /// Changes a source's health and pushes the new state to the browsers.
    pub fn update_health(&self, source: &str, f: impl FnOnce(&mut SourceHealth)) {
        let all = {
            let mut map = self.health.write().unwrap_or_else(|p| p.into_inner());
            f(map
                .entry(source.to_owned())
                .or_insert_with(|| SourceHealth::new(source)));
            map.values().cloned().collect::<Vec<_>>()
        };
        self.send(&Update::Health { sources: &all });
    }

    fn send(&self, update: &Update<'_>) {
        let device = match update {
            Update::Latest { device, .. } => Some((*device).to_owned()),
            Update::Health { .. } => None,
        };
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.last += 1;
        let id = live.last;
        if !live.listened(self.updates.receiver_count()) {
            // Nobody has listened for a while: nothing is serialised, and a client that
            // comes back for what it missed is told to reload.
            live.recent.clear();
            return;
        }
        let json = match serde_json::to_value(update) {
            Ok(mut v) => {
                v["id"] = serde_json::json!(id);
                v.to_string()
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot serialise an update");
                live.recent.clear();
                return;
            }
        };
        let message = Arc::new(LiveMessage {
            id,
            device,
            json: Arc::from(json),
        });
        if live.recent.len() == HISTORY {
            live.recent.pop_front();
        }
        live.recent.push_back(message.clone());
        // Sent under the lock, so that every client sees the ids in order.
        let _ = self.updates.send(message);
    }

    /// Subscribes to live messages: the receiver, this process's epoch and the last id
    /// given; and, for a client that last saw `since` (epoch, id), what it missed.
    pub fn subscribe(
        &self,
        since: Option<(u64, u64)>,
    ) -> (broadcast::Receiver<Arc<LiveMessage>>, u64, u64, Missed) {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.last_listener = Some(std::time::Instant::now());
        let rx = self.updates.subscribe();
        let missed = match since {
            None => Some(Vec::new()),
            Some((epoch, id)) if epoch == live.epoch && id <= live.last => {
                let first_held = live.recent.front().map_or(live.last + 1, |m| m.id);
                if id + 1 >= first_held {
                    Some(live.recent.iter().filter(|m| m.id > id).cloned().collect())
                } else {
                    None
                }
            }
            Some(_) => None,
        };
        (rx, live.epoch, live.last, missed)
    }

    /// Pushes the newest observation of each data item in `observations`, and the status of
    /// its device, to the browsers: one message per device.
    pub async fn publish(&self, observations: &[Observation]) {
        if observations.is_empty() {
            return;
        }
        {
            let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
            if !live.listened(self.updates.receiver_count()) {
                live.last += 1;
                live.recent.clear();
                return;
            }
        }
        let mut newest: HashMap<(&str, &str), &Observation> = HashMap::new();
        for o in observations {
            let e = newest.entry((&o.device, &o.data_item_id)).or_insert(o);
            if o.sequence > e.sequence {
                *e = o;
            }
        }
        let mut items: Vec<&Observation> = newest.into_values().collect();
        items.sort_by(|a, b| (&a.device, &a.data_item_id).cmp(&(&b.device, &b.data_item_id)));
        for chunk in items.chunk_by(|a, b| a.device == b.device) {
            let device = chunk[0].device.as_str();
            let devices = match self.device_status(device).await {
                Ok(s) => vec![s],
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read device status");
                    Vec::new()
                }
            };
            self.send(&Update::Latest {
                device,
                items: chunk,
                devices: &devices,
                published_at: chrono::Utc::now(),
            });
        }
    }

    /// The latest observation of every data item of `device`.
    pub async fn device_latest(&self, device: &str) -> Result<Vec<Observation>, StoreError> {
        let filter = LatestFilter::device(device);
        let mut request = PageRequest::first(factorydash_core::page::MAX_PAGE_LIMIT);
        let mut out = Vec::new();
        loop {
            let page = self.store.latest(&filter, &request).await?;
            out.extend(page.items);
            match page.next {
                Some(next) => request.after = Some(next),
                None => return Ok(out),
            }
        }
    }

    /// A device's status from its latest values.
    pub async fn device_status(&self, device: &str) -> Result<DeviceStatus, StoreError> {
        Ok(DeviceStatus::from_latest(
            device,
            &self.device_latest(device).await?,
        ))
    }

    /// The statuses of `devices`, in their order.
    pub async fn statuses(&self, devices: &[DeviceInfo]) -> Result<Vec<DeviceStatus>, StoreError> {
        let mut out = Vec::with_capacity(devices.len());
        for d in devices {
            out.push(self.device_status(&d.name).await?);
        }
        Ok(out)
    }

    /// The URLs of the agents followed now.
    pub fn followed_agents(&self) -> Vec<String> {
        self.followed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect()
    }
}
