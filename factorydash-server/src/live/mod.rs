//! The live hub: what the browsers are told as it happens. Each message is serialised once,
//! given the next id of this process's stream (an epoch and ids from 1, no holes), kept in
//! a log of the last [`HISTORY`] for clients that reconnect with `?since=`, and broadcast
//! to every WebSocket client ([`socket`], the protocol).
//!
//! Messages carry data for API clients and, beside it, what the page shows, rendered by
//! [`crate::page`] (the one renderer): each value's text (`shown`), each device's tile
//! (`cardsHtml`), the banner and the source list (`bannerHtml`, `sourcesHtml`).

pub mod socket;

use std::collections::HashMap;
use std::sync::Arc;

use factorydash_core::{DeviceKey, DeviceStatus, Observation};
use factorydash_store::Store;
use serde::Serialize;
use tokio::sync::broadcast;

use crate::health::SourceHealth;
use crate::page;

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

/// How many live messages are kept for clients that reconnect.
pub const HISTORY: usize = 1024;

/// One live message, serialised once for every client.
#[derive(Debug)]
pub struct LiveMessage {
    /// Its place in this process's stream of messages (from 1, no holes).
    pub id: u64,
    /// The device it is about (`None`: about every client, e.g. health).
    pub device: Option<String>,
    /// The JSON text sent: shared by every client's send (a reference count, not a copy).
    pub json: tokio_tungstenite::tungstenite::Utf8Bytes,
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
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
enum Update<'a> {
    Latest {
        device: &'a str,
        /// The device's agent, as the server shows it (credentials redacted).
        agent: &'a str,
        items: Vec<LiveItem<'a>>,
        devices: &'a [DeviceStatus],
        /// The tiles of `devices`, rendered.
        cards_html: Vec<String>,
        /// When the server published it, right after storing (UTC).
        published_at: chrono::DateTime<chrono::Utc>,
    },
    Health {
        sources: &'a [SourceHealth],
        /// The banner of outages, rendered.
        banner_html: String,
        /// The source list, rendered.
        sources_html: String,
    },
}

/// An observation as the live protocol sends it: the observation and how the table shows
/// its value ([`page::shown_value`]).
#[derive(Serialize)]
struct LiveItem<'a> {
    #[serde(flatten)]
    observation: &'a Observation,
    shown: String,
}

impl<'a> Update<'a> {
    fn health(sources: &'a [SourceHealth]) -> Self {
        Update::Health {
            sources,
            banner_html: page::banner_html(sources),
            sources_html: page::sources_html(sources),
        }
    }
}

/// The `health` message of `sources`, as a new client's first (without an `id`: it is
/// not part of the stream).
pub fn health_message(sources: &[SourceHealth]) -> String {
    serde_json::to_string(&Update::health(sources)).unwrap_or_default()
}

/// The live messages: their ids, their log and their subscribers.
pub struct LiveHub {
    /// Live updates for WebSocket clients: JSON messages, serialised once and shared.
    updates: broadcast::Sender<Arc<LiveMessage>>,
    /// The last [`HISTORY`] messages, for clients that reconnect.
    log: std::sync::Mutex<LiveLog>,
    /// What [`LiveHub::publish`] queued for the publisher task: the newest observation of
    /// each data item, by device (agent, name) then `dataItemId`.
    pending: std::sync::Mutex<HashMap<DeviceKey, HashMap<String, Observation>>>,
    /// Wakes the publisher task.
    wake: tokio::sync::Notify,
}

impl LiveHub {
    /// A hub with a new epoch and no messages.
    pub fn new() -> Self {
        let (updates, _) = broadcast::channel(256);
        LiveHub {
            pending: std::sync::Mutex::new(HashMap::new()),
            wake: tokio::sync::Notify::new(),
            updates,
            log: std::sync::Mutex::new(LiveLog {
                epoch: u64::from(rand_u32()) << 20 | u64::from(std::process::id() & 0xf_ffff),
                last: 0,
                recent: std::collections::VecDeque::with_capacity(HISTORY),
                last_listener: None,
            }),
        }
    }

    /// How many clients are connected.
    pub fn clients(&self) -> usize {
        self.updates.receiver_count()
    }

    /// Pushes every source's health to every client.
    pub fn send_health(&self, sources: &[SourceHealth]) {
        {
            // Rendered only for listeners (as `send` serialises only for them).
            let mut live = self.log.lock().unwrap_or_else(|p| p.into_inner());
            if !live.listened(self.updates.receiver_count()) {
                live.last += 1;
                live.recent.clear();
                return;
            }
        }
        self.send(&Update::health(sources));
    }

    fn send(&self, update: &Update<'_>) {
        let device = match update {
            Update::Latest { device, .. } => Some((*device).to_owned()),
            Update::Health { .. } => None,
        };
        let mut live = self.log.lock().unwrap_or_else(|p| p.into_inner());
        live.last += 1;
        let id = live.last;
        if !live.listened(self.updates.receiver_count()) {
            // Nobody has listened for a while: nothing is serialised, and a client that
            // comes back for what it missed is told to reload.
            live.recent.clear();
            return;
        }
        /// A message with its id, written in one pass.
        #[derive(Serialize)]
        struct WithId<'u, 'a> {
            #[serde(flatten)]
            update: &'u Update<'a>,
            id: u64,
        }
        let json = match serde_json::to_string(&WithId { update, id }) {
            Ok(json) => json,
            Err(e) => {
                tracing::error!(error = %e, "cannot serialise an update");
                live.recent.clear();
                return;
            }
        };
        let message = Arc::new(LiveMessage {
            id,
            device,
            json: json.into(),
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
        let mut live = self.log.lock().unwrap_or_else(|p| p.into_inner());
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

    /// Queues the newest observation of each data item in `observations` for the browsers
    /// and returns at once: ingest never waits for them. The publisher task
    /// ([`LiveHub::run_publisher`]) sends what is queued, one message per device with its
    /// status, read from the store then. Under load the queue keeps only the newest
    /// observation of each data item (a later batch's replaces an earlier one's), so it is
    /// bounded by the number of data items, and the store is asked once per device per
    /// round however many batches came.
    pub fn publish(&self, agent: &str, observations: &[Observation]) {
        if observations.is_empty() {
            return;
        }
        {
            let mut live = self.log.lock().unwrap_or_else(|p| p.into_inner());
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
        {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            let mut key = DeviceKey::new(agent, "");
            for ((device, item), o) in newest {
                device.clone_into(&mut key.device);
                let items = match pending.get_mut(&key) {
                    Some(items) => items,
                    None => pending.entry(key.clone()).or_default(),
                };
                match items.get_mut(item) {
                    Some(held) => held.clone_from(o),
                    None => {
                        items.insert(item.to_owned(), o.clone());
                    }
                }
            }
        }
        self.wake.notify_one();
    }

    /// Sends what [`LiveHub::publish`] queued, for as long as the hub lives: one message per
    /// device, its items in `dataItemId` order, with the device's status read from `store`.
    pub async fn run_publisher(self: Arc<Self>, store: Arc<dyn Store>) {
        loop {
            self.wake.notified().await;
            let pending =
                std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
            let mut devices: Vec<_> = pending.into_iter().collect();
            devices.sort_by(|a, b| a.0.cmp(&b.0));
            for (device, items) in devices {
                let mut items: Vec<Observation> = items.into_values().collect();
                items.sort_by(|a, b| a.data_item_id.cmp(&b.data_item_id));
                let statuses = match crate::devices::device_status(&*store, &device).await {
                    Ok(s) => vec![s],
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read device status");
                        Vec::new()
                    }
                };
                let agent = crate::redact::redacted(&device.agent);
                let update = Update::Latest {
                    device: &device.device,
                    agent: &agent,
                    items: items
                        .iter()
                        .map(|o| LiveItem {
                            observation: o,
                            shown: page::shown_value(o),
                        })
                        .collect(),
                    cards_html: statuses.iter().map(page::card_html).collect(),
                    devices: &statuses,
                    published_at: chrono::Utc::now(),
                };
                self.send(&update);
            }
        }
    }
}

impl Default for LiveHub {
    fn default() -> Self {
        Self::new()
    }
}
