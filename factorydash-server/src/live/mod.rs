//! The live hub: what the browsers are told as it happens. Each message is serialised once,
//! given the next id of this process's stream (an epoch and ids from 1, no holes), kept in
//! a log of the last [`HISTORY`] for clients that reconnect with `?since=`, and broadcast
//! to every WebSocket client ([`socket`], the protocol).
//!
//! Messages carry data for API clients and, beside it, what the page shows, rendered by
//! [`crate::page`] (the one renderer): each value's text (`shown`), each device's tile
//! (`cardsHtml`), the banner and the source list (`bannerHtml`, `sourcesHtml`).
//!
//! Nothing here runs on the ingest path beyond queueing: ingest hands over observations
//! ([`LiveHub::publish`]) and says that health changed ([`LiveHub::health_changed`]); two
//! tasks make the messages, in rounds: [`LiveHub::run_publisher`] (values and device
//! statuses, at most every [`ROUND`]) and [`LiveHub::run_health_publisher`] (every source's
//! health, at most every [`HEALTH_ROUND`]). What a message costs is paid once per round and
//! sent to every client, so it is bounded by the rounds, not by how often ingest stores.

pub mod board;
pub mod socket;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use factorydash_core::{DeviceKey, DeviceStatus, Observation};
use factorydash_store::Store;
use serde::Serialize;
use tokio::sync::broadcast;

use crate::health::SourceHealth;
use crate::page;
use crate::redact::redacted;

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

/// Which clients a live message is for (see [`socket::client`] for the subscriptions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// Every client (health).
    Everyone,
    /// Clients subscribed to every device: a round's `latest` values of many devices.
    AllDevices,
    /// Board clients ([`board`]): each takes its part of the round.
    Boards,
    /// Clients subscribed to devices of this name: the `latest` values of one device of
    /// that name alone (the message says which agent's).
    Device {
        /// The device's name.
        name: String,
        /// Its agent, as the server shows it (credentials redacted).
        agent: String,
    },
}

/// One live message, serialised once for every client.
#[derive(Debug)]
pub struct LiveMessage {
    /// Its place in this process's stream of messages (from 1, no holes).
    pub id: u64,
    /// The clients it is for.
    pub audience: Audience,
    /// The JSON text sent: shared by every client's send (a reference count, not a copy).
    /// Empty for a board round (each client's is its part of `board`).
    pub json: tokio_tungstenite::tungstenite::Utf8Bytes,
    /// A board round ([`Audience::Boards`]).
    pub board: Option<Arc<board::BoardRound>>,
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
        /// The device, when the message is about one (a subscriber's); absent in a
        /// round's message about many.
        #[serde(skip_serializing_if = "Option::is_none")]
        device: Option<&'a str>,
        /// That device's agent, as the server shows it (credentials redacted).
        #[serde(skip_serializing_if = "Option::is_none")]
        agent: Option<&'a str>,
        /// Its items (the bench's clients find them by text: `items` comes before
        /// `devices`).
        items: Vec<LiveItem<'a>>,
        devices: &'a [DeviceStatus],
        /// The tiles of `devices`, rendered.
        cards_html: Vec<String>,
        /// When the server published it, right after storing (UTC).
        published_at: chrono::DateTime<chrono::Utc>,
    },
    Health {
        /// The banner of outages, rendered.
        banner_html: String,
        /// The source list, rendered.
        sources_html: String,
    },
}

/// An observation as the live protocol sends it: the observation, its agent (as the server
/// shows it: with the device's name, the device's identity) and how the table shows its
/// value ([`page::shown_value`]).
#[derive(Serialize)]
struct LiveItem<'a> {
    agent: &'a str,
    #[serde(flatten)]
    observation: &'a Observation,
    shown: String,
}

impl<'a> Update<'a> {
    fn health(sources: &'a [SourceHealth], store_error: Option<&str>) -> Self {
        Update::Health {
            banner_html: page::banner_html(sources, store_error),
            sources_html: page::sources_html(sources),
        }
    }
}

/// The `health` message of `sources` (and of the store: `store_error`, why it cannot be
/// read), as a new client's first (without an `id`: it is not part of the stream).
pub fn health_message(sources: &[SourceHealth], store_error: Option<&str>) -> String {
    serde_json::to_string(&Update::health(sources, store_error)).unwrap_or_default()
}

/// The live messages: their ids, their log and their subscribers.
pub struct LiveHub {
    /// Live updates for WebSocket clients: JSON messages, serialised once and shared.
    updates: broadcast::Sender<Arc<LiveMessage>>,
    /// The last [`HISTORY`] messages, for clients that reconnect.
    log: std::sync::Mutex<LiveLog>,
    /// What [`LiveHub::publish`] queued for the publisher task: the newest observation of
    /// each data item, by device (agent and name) then `dataItemId`.
    pending: std::sync::Mutex<HashMap<DeviceKey, HashMap<String, Observation>>>,
    /// Wakes the publisher task.
    wake: tokio::sync::Notify,
    /// Wakes the health publisher task: a source's health changed.
    health_wake: tokio::sync::Notify,
    /// How many clients subscribed to each device name (see [`Subscription`]): the devices
    /// of those names get messages of their own beside the rounds' messages about many.
    subscribed: std::sync::Mutex<HashMap<String, usize>>,
    /// How many board clients show each row ([`board::BoardView`]): only those rows'
    /// observations are put in the board rounds.
    rows: std::sync::Mutex<Arc<HashMap<board::RowKey, usize>>>,
    /// How many clients are board clients, and how many take `latest` messages: a kind of
    /// round nobody takes is not made.
    boards: std::sync::atomic::AtomicUsize,
    legacy: std::sync::atomic::AtomicUsize,
    /// Every tile as last sent, for board clients that connect or fall behind.
    snapshot: std::sync::Mutex<board::Snapshot>,
    /// Set when observations were dropped (nobody listened): the publisher forgets what
    /// it holds.
    stale: std::sync::atomic::AtomicBool,
    /// Each device's status as last published (before [`LiveHub::run_publisher`]'s
    /// `annotate`), for the pages: what the publisher holds, so that a page does not read
    /// every device's latest values from the store. Emptied with the publisher's state.
    statuses: std::sync::Mutex<HashMap<DeviceKey, (DeviceStatus, std::time::Instant)>>,
}

impl LiveHub {
    /// A hub with a new epoch and no messages.
    pub fn new() -> Self {
        let (updates, _) = broadcast::channel(256);
        LiveHub {
            pending: std::sync::Mutex::new(HashMap::new()),
            wake: tokio::sync::Notify::new(),
            health_wake: tokio::sync::Notify::new(),
            subscribed: std::sync::Mutex::new(HashMap::new()),
            rows: std::sync::Mutex::new(Arc::new(HashMap::new())),
            boards: std::sync::atomic::AtomicUsize::new(0),
            legacy: std::sync::atomic::AtomicUsize::new(0),
            snapshot: std::sync::Mutex::new(board::Snapshot::default()),
            stale: std::sync::atomic::AtomicBool::new(false),
            statuses: std::sync::Mutex::new(HashMap::new()),
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

    /// Says that a source's health changed: the health publisher task
    /// ([`LiveHub::run_health_publisher`]) sends every source's health within
    /// [`HEALTH_ROUND`]. Returns at once (ingest calls it several times per page).
    pub fn health_changed(&self) {
        self.health_wake.notify_one();
    }

    /// Sends every source's health to every client after [`LiveHub::health_changed`] was
    /// called, for as long as `sources` gives them (`None`: the app is gone), with the
    /// store's outage (why it cannot be read), if any: within [`HEALTH_ROUND`] when what
    /// a source shows changed (its state, an outage, gaps, restarts), and its counters
    /// alone (observations, rate) at most every [`HEALTH_COUNTS_EVERY`]. A hundred
    /// agents' counters, sent each second to every page, cost each more than the board's
    /// tiles do.
    pub async fn run_health_publisher(
        self: Arc<Self>,
        sources: impl Fn() -> Option<(Vec<SourceHealth>, Option<String>)> + Send + 'static,
    ) {
        let mut sent: Option<(Vec<HealthKey>, Option<String>, tokio::time::Instant)> = None;
        let mut owed = false;
        loop {
            match (&sent, owed) {
                (Some((.., at)), true) => {
                    let _ = tokio::time::timeout_at(
                        *at + HEALTH_COUNTS_EVERY,
                        self.health_wake.notified(),
                    )
                    .await;
                }
                _ => self.health_wake.notified().await,
            }
            let Some((all, store_error)) = sources() else {
                return;
            };
            let key: Vec<HealthKey> = all.iter().map(HealthKey::of).collect();
            let now = tokio::time::Instant::now();
            let due = sent.as_ref().is_none_or(|(k, e, at)| {
                *k != key || *e != store_error || now.duration_since(*at) >= HEALTH_COUNTS_EVERY
            });
            if due {
                self.send_health(&all, store_error.as_deref());
                sent = Some((key, store_error, now));
                owed = false;
            } else {
                owed = true;
            }
            tokio::time::sleep(HEALTH_ROUND).await;
        }
    }

    /// Pushes every source's health (and the store's outage, `store_error`) to every
    /// client, now.
    pub fn send_health(&self, sources: &[SourceHealth], store_error: Option<&str>) {
        {
            // Rendered only for listeners (as `send` serialises only for them).
            let mut live = self.log.lock().unwrap_or_else(|p| p.into_inner());
            if !live.listened(self.updates.receiver_count()) {
                live.last += 1;
                live.recent.clear();
                return;
            }
        }
        self.send(&Update::health(sources, store_error), Audience::Everyone);
    }

    fn send(&self, update: &Update<'_>, audience: Audience) {
        self.send_message(|id| {
            /// A message with its id, written in one pass.
            #[derive(Serialize)]
            struct WithId<'u, 'a> {
                #[serde(flatten)]
                update: &'u Update<'a>,
                id: u64,
            }
            match serde_json::to_string(&WithId { update, id }) {
                Ok(json) => Some(LiveMessage {
                    id,
                    audience,
                    json: json.into(),
                    board: None,
                }),
                Err(e) => {
                    tracing::error!(error = %e, "cannot serialise an update");
                    None
                }
            }
        });
    }

    /// Gives the next id to the message `make` makes with it, keeps it in the log and
    /// sends it to every client, under the log's lock (so that every client sees the ids
    /// in order). When nobody has listened for a while nothing is made, and a client that
    /// comes back for what it missed is told to reload; so it is when `make` fails.
    fn send_message(&self, make: impl FnOnce(u64) -> Option<LiveMessage>) {
        let mut live = self.log.lock().unwrap_or_else(|p| p.into_inner());
        live.last += 1;
        let id = live.last;
        let message = if live.listened(self.updates.receiver_count()) {
            make(id)
        } else {
            None
        };
        let Some(message) = message else {
            live.recent.clear();
            return;
        };
        let message = Arc::new(message);
        if live.recent.len() == HISTORY {
            live.recent.pop_front();
        }
        live.recent.push_back(message.clone());
        let _ = self.updates.send(message);
    }

    /// Device `key`'s status as the live publisher last made it (before annotation),
    /// while it holds one: published in the last [`STATUS_FRESH`], since the last time
    /// nobody listened, from a complete read of the store (else the caller reads the
    /// store).
    pub fn status(&self, key: &DeviceKey) -> Option<DeviceStatus> {
        if self.stale.load(std::sync::atomic::Ordering::Relaxed) {
            return None;
        }
        self.statuses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .filter(|(_, at)| at.elapsed() < STATUS_FRESH)
            .map(|(s, _)| s.clone())
    }

    /// Sends a board round to the board clients.
    fn send_board(&self, round: board::BoardRound) {
        self.send_message(|id| {
            Some(LiveMessage {
                id,
                audience: Audience::Boards,
                json: Default::default(),
                board: Some(round.finish(id)),
            })
        });
    }

    /// The `board` message with every tile `filter` lets through, for a board client
    /// that connects or fell behind ([`board::Snapshot`]).
    pub fn board_snapshot(
        &self,
        devices: Option<&std::collections::HashSet<String>>,
        filter: &ScopeFilter,
    ) -> tokio_tungstenite::tungstenite::Utf8Bytes {
        if self.stale.load(std::sync::atomic::Ordering::Relaxed) {
            // What is held missed observations: none of it (the page read the store).
            return r#"{"type":"board","full":true,"tiles":[],"newest":[],"items":[]}"#.into();
        }
        let everything = devices.is_none() && filter.is_everything();
        self.snapshot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .message(everything, |name, agent| {
                devices.is_none_or(|d| d.contains(name)) && filter.sees(name, agent)
            })
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

    /// Queues the newest observation of each data item in `observations`, read from
    /// `agent` (its base URL), for the browsers and returns at once: ingest never waits for
    /// them. The publisher task
    /// ([`LiveHub::run_publisher`]) sends what is queued, one message per device with its
    /// status, in rounds at most every [`ROUND`]. The queue keeps only the newest
    /// observation of each data item (a later batch's replaces an earlier one's), so it is
    /// bounded by the number of data items.
    pub fn publish(&self, agent: &str, observations: &[Observation]) {
        if observations.is_empty() {
            return;
        }
        {
            let mut live = self.log.lock().unwrap_or_else(|p| p.into_inner());
            if !live.listened(self.updates.receiver_count()) {
                live.last += 1;
                live.recent.clear();
                self.stale.store(true, std::sync::atomic::Ordering::Relaxed);
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

    /// Queues `device`'s tile to be sent again with the next round although none of its
    /// values changed (its tools did), and returns at once.
    pub fn refresh(&self, device: DeviceKey) {
        {
            let mut live = self.log.lock().unwrap_or_else(|p| p.into_inner());
            if !live.listened(self.updates.receiver_count()) {
                live.last += 1;
                live.recent.clear();
                return;
            }
        }
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(device)
            .or_default();
        self.wake.notify_one();
    }

    /// Sends what [`LiveHub::publish`] queued, for as long as the hub lives, in rounds: for
    /// the clients that follow every device, one message per [`ROUND_DEVICES`] devices
    /// (their items, by device then `dataItemId`, and their statuses); for a device some
    /// client follows alone, a message of its own.
    ///
    /// Rounds start at most every [`ROUND`]; what is queued meanwhile waits for the next
    /// one (the newest value of each data item only). A device's status is computed from
    /// the latest value of each of its data items kept here ([`Devices`]): read from
    /// `store` once, the first time the device is published, then kept up to date with
    /// what is published. The store is not asked again per round.
    ///
    /// `annotate` completes each status with what the store does not hold (the device's
    /// tools near their life limit, [`crate::tools::ToolBoard::annotate`]).
    pub async fn run_publisher(
        self: Arc<Self>,
        store: Arc<dyn Store>,
        annotate: impl Fn(&DeviceKey, &mut DeviceStatus) + Send + 'static,
    ) {
        let mut devices = Devices::default();
        let mut tiles = board::Tiles::default();
        loop {
            // Woken by a publish, or after NEWEST_EVERY while a tile owes its newest-data
            // time (the device may have stopped sending).
            if tiles.owes() {
                let _ = tokio::time::timeout(board::NEWEST_EVERY, self.wake.notified()).await;
            } else {
                self.wake.notified().await;
            }
            if self.stale.load(std::sync::atomic::Ordering::Relaxed) {
                // Observations were dropped while nobody listened: what is held here is
                // read again (from the store, per device as it publishes).
                devices = Devices::default();
                tiles.forget();
                *self.snapshot.lock().unwrap_or_else(|p| p.into_inner()) = Default::default();
                self.statuses
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clear();
                self.stale
                    .store(false, std::sync::atomic::Ordering::Relaxed);
            }
            let started = tokio::time::Instant::now();
            let pending =
                std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
            let mut pending: Vec<_> = pending.into_iter().collect();
            pending.sort_by(|a, b| (&a.0.device, &a.0.agent).cmp(&(&b.0.device, &b.0.agent)));
            let subscribed: std::collections::HashSet<String> = self
                .subscribed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .keys()
                .cloned()
                .collect();
            let mut round = Vec::with_capacity(pending.len());
            for (device, items) in pending {
                let mut items: Vec<Observation> = items.into_values().collect();
                items.sort_by(|a, b| a.data_item_id.cmp(&b.data_item_id));
                let (mut status, complete) = devices.update(&*store, &device, &items).await;
                let mut statuses = self.statuses.lock().unwrap_or_else(|p| p.into_inner());
                if complete {
                    statuses.insert(device.clone(), (status.clone(), std::time::Instant::now()));
                } else {
                    statuses.remove(&device);
                }
                drop(statuses);
                annotate(&device, &mut status);
                // The agent as shown (`status.agent`): computed once per device and round.
                round.push((device, items, status));
            }
            use std::sync::atomic::Ordering::Relaxed;
            // The tiles' changes are worked out whoever listens (the snapshot a board
            // client is sent when it connects stays current); sent to board clients.
            {
                let rows = Arc::clone(&self.rows.lock().unwrap_or_else(|p| p.into_inner()));
                let mut snapshot = self.snapshot.lock().unwrap_or_else(|p| p.into_inner());
                let made = board::make_round(&mut tiles, &mut snapshot, &round, &rows);
                drop(snapshot);
                if self.boards.load(Relaxed) > 0 && !made.is_empty() {
                    self.send_board(made);
                }
            }
            if self.legacy.load(Relaxed) == 0 {
                tokio::time::sleep_until(started + ROUND).await;
                continue;
            }
            // A device some client follows (by name) alone: a message of its own.
            for (device, items, status) in round
                .iter()
                .filter(|(d, ..)| subscribed.contains(&d.device))
            {
                let update = latest_update(
                    Some((&device.device, &status.agent)),
                    items.iter().map(|o| (status.agent.as_str(), o)),
                    std::slice::from_ref(status),
                );
                self.send(
                    &update,
                    Audience::Device {
                        name: device.device.clone(),
                        agent: status.agent.clone(),
                    },
                );
            }
            // Every device, for the clients that follow them all: a message per
            // ROUND_DEVICES devices.
            for chunk in round.chunks(ROUND_DEVICES) {
                let statuses: Vec<DeviceStatus> = chunk.iter().map(|(_, _, s)| s.clone()).collect();
                let update = latest_update(
                    None,
                    chunk
                        .iter()
                        .flat_map(|(_, items, s)| items.iter().map(|o| (s.agent.as_str(), o))),
                    &statuses,
                );
                self.send(&update, Audience::AllDevices);
            }
            tokio::time::sleep_until(started + ROUND).await;
        }
    }
}

/// How long a device's status the publisher made is used by the pages
/// ([`LiveHub::status`]) before they read the store again: a device silent longer, or one
/// whose updates stopped arriving here, is read from the store.
pub const STATUS_FRESH: Duration = Duration::from_secs(60);

/// The shortest time between two rounds of [`LiveHub::run_publisher`]: a client gets at
/// most one message per device per round, whatever the agents' rates.
pub const ROUND: Duration = Duration::from_millis(100);

/// The most devices in one `latest` message of a round (at 1,000 devices publishing every
/// 500 ms, 20 messages a round rather than 1,000: a client is woken and written to per
/// message).
pub const ROUND_DEVICES: usize = 50;

/// The `latest` message of `items` (each with its agent as shown) and `statuses` (with
/// `device` and its agent when it is about one device only).
fn latest_update<'a>(
    device: Option<(&'a str, &'a str)>,
    items: impl Iterator<Item = (&'a str, &'a Observation)>,
    statuses: &'a [DeviceStatus],
) -> Update<'a> {
    Update::Latest {
        device: device.map(|(name, _)| name),
        agent: device.map(|(_, agent)| agent),
        items: items
            .map(|(agent, o)| LiveItem {
                agent,
                observation: o,
                shown: page::shown_value(o),
            })
            .collect(),
        cards_html: statuses.iter().map(page::card_html).collect(),
        devices: statuses,
        published_at: chrono::Utc::now(),
    }
}

/// A client's subscription (see [`socket::client`]): every device (`None`, the start), or
/// the devices of the names given (at every agent: the messages say which agent's); and
/// how: `latest` messages (the start), or board rounds for what a page shows
/// ([`board::BoardView`]). Counted in its hub while it lives, so that the publisher knows
/// which devices need messages of their own, which rows the board rounds carry, and which
/// kinds of message anyone takes.
pub struct Subscription {
    hub: Arc<LiveHub>,
    devices: Option<std::collections::HashSet<String>>,
    view: Option<board::BoardView>,
}

impl Subscription {
    /// A subscription to every device's `latest` messages.
    pub fn new(hub: Arc<LiveHub>) -> Self {
        let s = Subscription {
            hub,
            devices: None,
            view: None,
        };
        s.count(true);
        s
    }

    /// Subscribes to the devices of the names `devices` instead (`None`: every device),
    /// by `latest` messages (`view` `None`) or board rounds.
    pub fn set(
        &mut self,
        devices: Option<std::collections::HashSet<String>>,
        view: Option<board::BoardView>,
    ) {
        self.count(false);
        self.devices = devices;
        self.view = view;
        self.count(true);
    }

    /// The devices followed (`None`: every device).
    pub fn devices(&self) -> Option<&std::collections::HashSet<String>> {
        self.devices.as_ref()
    }

    /// The board view, for a board client.
    pub fn view(&self) -> Option<&board::BoardView> {
        self.view.as_ref()
    }

    /// Whether a message for `audience` is for this client.
    pub fn wants(&self, audience: &Audience) -> bool {
        if self.view.is_some() {
            return matches!(audience, Audience::Everyone | Audience::Boards);
        }
        match (audience, &self.devices) {
            (Audience::Everyone, _) | (Audience::AllDevices, None) => true,
            (Audience::Device { name, .. }, Some(set)) => set.contains(name),
            (Audience::AllDevices, Some(_))
            | (Audience::Device { .. }, None)
            | (Audience::Boards, _) => false,
        }
    }

    /// Adds this subscription to its hub's counts (`add`), or takes it away.
    fn count(&self, add: bool) {
        use std::sync::atomic::Ordering::Relaxed;
        fn change<K: std::hash::Hash + Eq + Clone>(
            counts: &mut HashMap<K, usize>,
            key: &K,
            add: bool,
        ) {
            if add {
                *counts.entry(key.clone()).or_default() += 1;
            } else if let Some(n) = counts.get_mut(key) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(key);
                }
            }
        }
        let kind = if self.view.is_some() {
            &self.hub.boards
        } else {
            &self.hub.legacy
        };
        if add {
            kind.fetch_add(1, Relaxed);
        } else {
            kind.fetch_sub(1, Relaxed);
        }
        if let Some(view) = &self.view {
            // Copied on change (a client subscribing), shared by every round.
            let mut rows = self.hub.rows.lock().unwrap_or_else(|p| p.into_inner());
            let rows = Arc::make_mut(&mut rows);
            for r in &view.rows {
                change(rows, r, add);
            }
            return;
        }
        let Some(devices) = &self.devices else { return };
        let mut counts = self
            .hub
            .subscribed
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for d in devices {
            change(&mut counts, d, add);
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.count(false);
    }
}

/// What a client's scope lets through ([`crate::accounts::Scope`]): everything, for a
/// client that sees every device; otherwise only the messages about one device in scope
/// (the round messages about many are never sent to it: it is subscribed to its devices
/// one by one), and the sources' health re-rendered with its agents only.
#[derive(Clone)]
pub struct ScopeFilter {
    /// `None`: every device.
    scoped: Option<Arc<Scoped>>,
}

struct Scoped {
    scope: crate::accounts::Scope,
    /// The names of the devices in scope when the client connected.
    names: std::collections::HashSet<String>,
    /// Every device model, for which agents have a device in scope.
    devices: Arc<Vec<factorydash_core::DeviceInfo>>,
}

impl ScopeFilter {
    /// The filter of `scope` over `app`'s devices now (a device added later is seen by
    /// the client once it reconnects).
    pub async fn new(app: &crate::state::App, scope: crate::accounts::Scope) -> Self {
        if scope.sees_everything() {
            return ScopeFilter { scoped: None };
        }
        let devices = app.devices().await.unwrap_or_default();
        let names = devices
            .iter()
            .filter(|d| scope.sees(&d.agent, &d.name))
            .map(|d| d.name.clone())
            .collect();
        ScopeFilter {
            scoped: Some(Arc::new(Scoped {
                scope,
                names,
                devices,
            })),
        }
    }

    /// Whether the client sees every device.
    pub fn is_everything(&self) -> bool {
        self.scoped.is_none()
    }

    /// The subscription a client asking for `wanted` (`None`: every device) gets: what it
    /// asks, within its scope.
    pub fn subscription(
        &self,
        wanted: Option<std::collections::HashSet<String>>,
    ) -> Option<std::collections::HashSet<String>> {
        match (&self.scoped, wanted) {
            (None, wanted) => wanted,
            (Some(s), None) => Some(s.names.clone()),
            (Some(s), Some(w)) => Some(w.into_iter().filter(|n| s.names.contains(n)).collect()),
        }
    }

    /// Whether a message for `audience` may go to this client as it is (a health message
    /// for a scoped client goes re-rendered: [`ScopeFilter::health_message`]).
    pub fn allows(&self, audience: &Audience) -> bool {
        match (&self.scoped, audience) {
            (None, _) => true,
            (Some(s), Audience::Device { name, agent }) => s.scope.sees(agent, name),
            (Some(_), Audience::Everyone | Audience::AllDevices) => false,
            // A board round is cut to the client's scope tile by tile
            // (`board::BoardRound::message_for`).
            (Some(_), Audience::Boards) => true,
        }
    }

    /// Whether the client may see device `name` of `agent` (as shown).
    pub fn sees(&self, name: &str, agent: &str) -> bool {
        self.scoped
            .as_ref()
            .is_none_or(|s| s.scope.sees(agent, name))
    }

    /// The `health` message of the sources this client may see (see [`health_message`]).
    pub fn health_message(&self, sources: &[SourceHealth], store_error: Option<&str>) -> String {
        match &self.scoped {
            None => health_message(sources, store_error),
            Some(s) => {
                let mine: Vec<SourceHealth> = sources
                    .iter()
                    .filter(|h| s.scope.sees_agent(&h.source, &s.devices))
                    .cloned()
                    .collect();
                health_message(&mine, store_error)
            }
        }
    }
}

/// The shortest time between two `health` messages ([`LiveHub::run_health_publisher`]).
pub const HEALTH_ROUND: Duration = Duration::from_secs(1);

/// The shortest time between two `health` messages that only move the sources' counters
/// (observations stored, their rate).
pub const HEALTH_COUNTS_EVERY: Duration = Duration::from_secs(10);

/// What a source's health shows but its counters: a change of it is sent within
/// [`HEALTH_ROUND`].
#[derive(Debug, PartialEq, Eq)]
struct HealthKey {
    source: String,
    state: crate::health::SourceState,
    unreachable_since: Option<chrono::DateTime<chrono::Utc>>,
    retry_at: Option<chrono::DateTime<chrono::Utc>>,
    last_error: Option<String>,
    gaps: u64,
    restarts: u64,
    store_unavailable_since: Option<chrono::DateTime<chrono::Utc>>,
    store_error: Option<String>,
    /// Shown in the banner while the store refuses (observations waiting).
    buffered: Option<u64>,
}

impl HealthKey {
    fn of(h: &SourceHealth) -> Self {
        HealthKey {
            source: h.source.clone(),
            state: h.state,
            unreachable_since: h.unreachable_since,
            retry_at: h.retry_at,
            last_error: h.last_error.clone(),
            gaps: h.gaps,
            restarts: h.restarts,
            store_unavailable_since: h.store_unavailable_since,
            store_error: h.store_error.clone(),
            buffered: h.store_unavailable_since.map(|_| h.buffered),
        }
    }
}

/// The latest value of each data item of every device published, for the devices'
/// statuses ([`DeviceStatus::from_latest`]): a device's are read from the store the first
/// time it is published, then replaced by what is published. Its size is bounded by the
/// number of data items.
#[derive(Default)]
struct Devices {
    /// By device, then `dataItemId` (the order of the store's listing, which decides
    /// between two data items of one type).
    latest: HashMap<DeviceKey, BTreeMap<String, Observation>>,
    /// Devices whose store read failed: their statuses are made of what was published
    /// only (not given to the pages).
    partial: std::collections::HashSet<DeviceKey>,
}

impl Devices {
    /// Takes `items` (the newest published of some of `device`'s data items) as the latest
    /// values, and returns the device's status and whether the store's read of it (the
    /// first time) succeeded. The first time a device is seen, its
    /// latest values are read from `store` (once: a failed read is logged, and the status
    /// is then made of what is published).
    async fn update(
        &mut self,
        store: &dyn Store,
        device: &DeviceKey,
        items: &[Observation],
    ) -> (DeviceStatus, bool) {
        let latest = match self.latest.get_mut(device) {
            Some(latest) => latest,
            None => {
                let stored = match crate::devices::device_latest(store, device).await {
                    Ok(stored) => stored,
                    Err(e) => {
                        tracing::warn!(device = device.device, agent = %redacted(&device.agent), error = %e, "cannot read the device's latest values");
                        self.partial.insert(device.clone());
                        Vec::new()
                    }
                };
                self.latest.entry(device.clone()).or_insert_with(|| {
                    stored
                        .into_iter()
                        .map(|o| (o.data_item_id.clone(), o))
                        .collect()
                })
            }
        };
        for o in items {
            match latest.get_mut(&o.data_item_id) {
                Some(held) => held.clone_from(o),
                None => {
                    latest.insert(o.data_item_id.clone(), o.clone());
                }
            }
        }
        let status =
            DeviceStatus::from_latest(&device.device, &redacted(&device.agent), latest.values());
        (status, !self.partial.contains(device))
    }
}

impl Default for LiveHub {
    fn default() -> Self {
        Self::new()
    }
}
