//! The board's rounds: what a page that shows tiles and a table of latest values is sent,
//! and no more. A board client says what it shows (`{"type":"subscribe","view":"board",
//! "tiles":true,"rows":[[agent, device, dataItemId], …]}`: [`BoardView`]); each round the
//! publisher makes one [`BoardRound`] (the tiles that changed, each with its changed
//! fields only, [`crate::page::TileFields`]; the observations of rows some client shows;
//! whether an event or a condition arrived), and each client's task takes from it what
//! its view, its device filter and its scope let through ([`BoardRound::message_for`]):
//! one message per round, or none when nothing it shows changed.
//!
//! A tile is named by a small number (`t`), given with its device and agent whenever the
//! whole tile is sent (in full, or as markup where its frame changed); a change names it
//! by number alone. Newest-data times travel as one list per round (`newest`:
//! `[[t, time], …]`), a tile's at most every [`NEWEST_EVERY`] unless another of its
//! fields changed (the page counts ages itself); every other field as it changes. A client
//! that connects, or that fell behind, is sent every tile in full ([`Snapshot`]), so that
//! it never shows a value older than the last round it was sent, and knows every number.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use factorydash_core::{Category, DeviceKey, DeviceStatus, Observation};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::ScopeFilter;
use crate::page::{self, TileFields};

/// How often a tile's newest-data time is sent when nothing else of it changed.
pub const NEWEST_EVERY: Duration = Duration::from_secs(5);

/// The most rows a board client may ask for (a page shows 50 by default, 500 at most);
/// more are ignored.
pub const MAX_ROWS: usize = 1_000;

/// A row of the latest-values table: the agent as shown, the device and the `dataItemId`.
pub type RowKey = (String, String, String);

/// What a board client shows.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BoardView {
    /// Whether it shows tiles.
    pub tiles: bool,
    /// The rows of its table.
    pub rows: HashSet<RowKey>,
}

impl BoardView {
    /// The view of a `subscribe` message's `tiles` and `rows` (each row `[agent, device,
    /// dataItemId]`; other entries skipped, past [`MAX_ROWS`] ignored).
    pub fn new(tiles: bool, rows: &[serde_json::Value]) -> Self {
        let rows = rows
            .iter()
            .filter_map(|r| match r.as_array().map(Vec::as_slice) {
                Some([a, d, i]) => Some((
                    a.as_str()?.to_owned(),
                    d.as_str()?.to_owned(),
                    i.as_str()?.to_owned(),
                )),
                _ => None,
            })
            .take(MAX_ROWS)
            .collect();
        BoardView { tiles, rows }
    }
}

/// A tile that changed in a round: its device, its agent as shown, the JSON object sent
/// (`{"t":…,` the changed fields `}`, or the whole tile with its `device` and `agent`) if
/// more than its newest-data time changed, and the `[t,"time"]` entry of the round's
/// `newest` list if that changed.
#[derive(Debug)]
struct TileChange {
    name: String,
    agent: String,
    json: Option<String>,
    newest: Option<String>,
}

/// An observation of a row some board client shows, as the live protocol sends it.
#[derive(Debug)]
struct RowItem {
    key: RowKey,
    json: String,
}

/// One round for the board clients (see the module's docs).
#[derive(Debug)]
pub struct BoardRound {
    id: u64,
    published_at: String,
    tiles: Vec<TileChange>,
    items: Vec<RowItem>,
    /// Whether an event or a condition arrived (the alarm lists are read again).
    events: bool,
    /// Whether a condition arrived.
    conditions: bool,
    /// The devices (name, agent as shown) an event or a condition arrived from, and
    /// whether a condition did: the flags of a client that does not see every device.
    activity: Vec<(String, String, bool)>,
    /// The message for a client that shows every tile and none of this round's rows
    /// (most boards): made once, shared.
    common: Option<Utf8Bytes>,
}

impl BoardRound {
    /// This round as the stream's message `id`, ready to send.
    pub(super) fn finish(mut self, id: u64) -> Arc<BoardRound> {
        self.id = id;
        if !self.tiles.is_empty() || self.events {
            let common = self.compose(
                (self.events, self.conditions),
                &self.tiles.iter().collect::<Vec<_>>(),
                std::iter::empty(),
            );
            self.common = Some(common.into());
        }
        Arc::new(self)
    }

    /// Whether the round has nothing for anyone.
    pub(super) fn is_empty(&self) -> bool {
        self.tiles.is_empty() && self.items.is_empty() && !self.events
    }

    /// The message of this round for a client with `view`, following the devices of the
    /// names `devices` (`None`: every device) within `filter`; `None` when nothing it
    /// shows changed.
    pub fn message_for(
        &self,
        view: &BoardView,
        devices: Option<&HashSet<String>>,
        filter: &ScopeFilter,
    ) -> Option<Utf8Bytes> {
        let sees = |name: &str, agent: &str| {
            devices.is_none_or(|d| d.contains(name)) && filter.sees(name, agent)
        };
        let items: Vec<&RowItem> = if view.rows.is_empty() {
            Vec::new()
        } else {
            self.items
                .iter()
                .filter(|i| view.rows.contains(&i.key) && sees(&i.key.1, &i.key.0))
                .collect()
        };
        let everything = devices.is_none() && filter.is_everything();
        if view.tiles && items.is_empty() && everything {
            return self.common.clone();
        }
        let tiles: Vec<&TileChange> = if view.tiles {
            self.tiles
                .iter()
                .filter(|t| sees(&t.name, &t.agent))
                .collect()
        } else {
            Vec::new()
        };
        // The flags of the devices it sees only.
        let (events, conditions) = if everything {
            (self.events, self.conditions)
        } else {
            let mine = || self.activity.iter().filter(|(n, a, _)| sees(n, a));
            (mine().next().is_some(), mine().any(|(_, _, c)| *c))
        };
        if tiles.is_empty() && items.is_empty() && !events {
            return None;
        }
        Some(
            self.compose(
                (events, conditions),
                &tiles,
                items.iter().map(|i| i.json.as_str()),
            )
            .into(),
        )
    }

    fn compose<'a>(
        &self,
        (events, conditions): (bool, bool),
        tiles: &[&TileChange],
        items: impl Iterator<Item = &'a str>,
    ) -> String {
        let mut out = String::with_capacity(128);
        let _ = write!(
            out,
            r#"{{"type":"board","id":{},"publishedAt":"{}","events":{},"conditions":{},"tiles":["#,
            self.id, self.published_at, events, conditions
        );
        join(&mut out, tiles.iter().filter_map(|t| t.json.as_deref()));
        out.push_str(r#"],"newest":["#);
        join(&mut out, tiles.iter().filter_map(|t| t.newest.as_deref()));
        out.push_str(r#"],"items":["#);
        join(&mut out, items);
        out.push_str("]}");
        out
    }
}

fn join<'a>(out: &mut String, parts: impl Iterator<Item = &'a str>) {
    for (i, p) in parts.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(p);
    }
}

/// The JSON object of tile number `id`: its device and agent where given (`named`: the
/// whole tile is sent), and `fields` (name, value).
fn tile_json(
    id: u32,
    named: Option<(&str, &str)>,
    fields: impl Iterator<Item = (&'static str, serde_json::Value)>,
) -> String {
    let mut map = serde_json::Map::new();
    map.insert("t".into(), id.into());
    if let Some((name, agent)) = named {
        map.insert("device".into(), name.into());
        map.insert("agent".into(), agent.into());
    }
    for (k, v) in fields {
        map.insert(k.into(), v);
    }
    serde_json::Value::Object(map).to_string()
}

/// Every field of `f`, or those that differ from `old`'s (`newest` aside: it goes in the
/// round's `newest` list, or with every field).
fn fields<'a>(
    f: &'a TileFields,
    old: Option<&'a TileFields>,
) -> impl Iterator<Item = (&'static str, serde_json::Value)> + 'a {
    let all: [(&'static str, &'a str, Option<&'a str>); 12] = [
        ("state", f.state, old.map(|o| o.state)),
        ("label", f.label, old.map(|o| o.label)),
        (
            "availability",
            &f.availability,
            old.map(|o| o.availability.as_str()),
        ),
        ("execution", &f.execution, old.map(|o| o.execution.as_str())),
        ("mode", &f.mode, old.map(|o| o.mode.as_str())),
        ("estop", &f.estop, old.map(|o| o.estop.as_str())),
        ("program", &f.program, old.map(|o| o.program.as_str())),
        ("parts", &f.parts, old.map(|o| o.parts.as_str())),
        ("oee", &f.oee, old.map(|o| o.oee.as_str())),
        (
            "conditions",
            &f.conditions,
            old.map(|o| o.conditions.as_str()),
        ),
        ("tools", &f.tools, old.map(|o| o.tools.as_str())),
        ("newest", &f.newest, None),
    ];
    let rank = (old.is_none_or(|o| o.rank != f.rank)).then(|| ("rank", f.rank.into()));
    all.into_iter()
        .filter(move |(name, new, old)| *name != "newest" && old.is_none_or(|o| o != *new))
        .map(|(name, new, _)| (name, serde_json::Value::from(new)))
        .chain(rank)
}

/// Every field of `f`, `newest` included.
fn full(f: &TileFields) -> impl Iterator<Item = (&'static str, serde_json::Value)> + '_ {
    fields(f, None).chain(std::iter::once(("newest", f.newest.as_str().into())))
}

/// Every tile's fields as last sent, for clients that connect or fall behind.
#[derive(Default)]
pub struct Snapshot {
    /// By device (agent as shown, name): the tile with every field.
    tiles: HashMap<(String, String), String>,
    /// Bumped at each change.
    version: u64,
    /// The message of every tile, made for `version` (shared by the clients that see
    /// every device).
    all: Option<(u64, Utf8Bytes)>,
}

impl Snapshot {
    /// Keeps `fields` as the tile number `id` of device `name` at `agent` (as shown).
    fn put(&mut self, id: u32, name: &str, agent: &str, fields: &TileFields) {
        self.tiles.insert(
            (agent.to_owned(), name.to_owned()),
            tile_json(id, Some((name, agent)), full(fields)),
        );
        self.version += 1;
    }

    /// The `board` message with every tile `sees` lets through (`full: true`: the page
    /// replaces what it shows); `everything`: the client sees every device (the message
    /// is shared).
    pub fn message(&mut self, everything: bool, sees: impl Fn(&str, &str) -> bool) -> Utf8Bytes {
        if everything {
            if let Some((v, m)) = &self.all {
                if *v == self.version {
                    return m.clone();
                }
            }
        }
        let mut keys: Vec<&(String, String)> = self
            .tiles
            .keys()
            .filter(|(agent, name)| everything || sees(name, agent))
            .collect();
        keys.sort_unstable();
        let mut out = String::from(r#"{"type":"board","full":true,"tiles":["#);
        join(&mut out, keys.iter().map(|k| self.tiles[*k].as_str()));
        out.push_str(r#"],"newest":[],"items":[]}"#);
        let m: Utf8Bytes = out.into();
        if everything {
            self.all = Some((self.version, m.clone()));
        }
        m
    }
}

/// The publisher's side of the board rounds: each tile as last sent, the tiles whose
/// newest-data time is owed, and each tile's number.
#[derive(Default)]
pub struct Tiles {
    sent: HashMap<DeviceKey, Sent>,
    /// Each device's tile number, given once and kept for the life of the process (a
    /// client may hold a number from before [`Tiles::forget`]).
    ids: HashMap<DeviceKey, u32>,
}

impl Tiles {
    /// Whether a tile owes its newest-data time (the publisher comes back within
    /// [`NEWEST_EVERY`] even if nothing is published).
    pub fn owes(&self) -> bool {
        self.sent.values().any(|s| s.owed.is_some())
    }

    /// Forgets what was sent (every tile is sent in full again), keeping the numbers.
    pub fn forget(&mut self) {
        self.sent.clear();
    }

    /// The number of `key`'s tile, given now if it has none.
    fn id(&mut self, key: &DeviceKey) -> u32 {
        let next = u32::try_from(self.ids.len()).unwrap_or(u32::MAX);
        *self.ids.entry(key.clone()).or_insert(next)
    }
}

/// The round's `newest` entry of tile `id`.
fn newest_entry(id: u32, newest: &str) -> String {
    format!("[{id},{}]", serde_json::Value::from(newest))
}

struct Sent {
    fields: TileFields,
    /// When `newest` was last sent.
    newest_at: Instant,
    /// A newest-data time not sent yet (sent once [`NEWEST_EVERY`] passed).
    owed: Option<String>,
    /// The agent as shown.
    agent: String,
}

impl Tiles {
    /// The changes of a round: `round`'s statuses against what was sent, and the owed
    /// newest-data times now due; `snapshot` kept up to date.
    fn changes<'a>(
        &mut self,
        round: impl Iterator<Item = (&'a DeviceKey, &'a DeviceStatus)>,
        snapshot: &mut Snapshot,
        now: Instant,
    ) -> Vec<TileChange> {
        let mut out = Vec::new();
        let mut touched = HashSet::new();
        for (key, status) in round {
            touched.insert(key.clone());
            let id = self.id(key);
            let new = page::tile_fields(status);
            let name = &status.device;
            let agent = &status.agent;
            let whole = |fields: &TileFields| Sent {
                fields: fields.clone(),
                newest_at: now,
                owed: None,
                agent: agent.clone(),
            };
            let (json, newest) = match self.sent.get_mut(key) {
                Some(sent) if sent.fields.frame != new.frame => {
                    // Its frame changed: the whole tile, as markup.
                    *sent = whole(&new);
                    let html = std::iter::once(("html", page::card_html(status).into()));
                    (Some(tile_json(id, Some((name, agent)), html)), None)
                }
                Some(sent) => {
                    let changed: Vec<_> = fields(&new, Some(&sent.fields)).collect();
                    let mut newest_sent = sent.fields.newest.clone();
                    let mut newest = None;
                    if new.newest == newest_sent {
                        sent.owed = None;
                    } else if !changed.is_empty()
                        || now.duration_since(sent.newest_at) >= NEWEST_EVERY
                    {
                        newest = Some(newest_entry(id, &new.newest));
                        sent.newest_at = now;
                        sent.owed = None;
                        newest_sent.clone_from(&new.newest);
                    } else {
                        sent.owed = Some(new.newest.clone());
                    }
                    sent.fields = TileFields {
                        newest: newest_sent,
                        ..new.clone()
                    };
                    let json =
                        (!changed.is_empty()).then(|| tile_json(id, None, changed.into_iter()));
                    (json, newest)
                }
                None => {
                    self.sent.insert(key.clone(), whole(&new));
                    (Some(tile_json(id, Some((name, agent)), full(&new))), None)
                }
            };
            if json.is_some() || newest.is_some() {
                if let Some(sent) = self.sent.get(key) {
                    snapshot.put(id, name, agent, &sent.fields);
                }
                out.push(TileChange {
                    name: name.clone(),
                    agent: agent.clone(),
                    json,
                    newest,
                });
            }
        }
        // Newest-data times owed by tiles that had no change this round.
        for (key, sent) in &mut self.sent {
            if touched.contains(key) || now.duration_since(sent.newest_at) < NEWEST_EVERY {
                continue;
            }
            let Some(newest) = sent.owed.take() else {
                continue;
            };
            let id = self.ids.get(key).copied().unwrap_or(u32::MAX);
            sent.newest_at = now;
            sent.fields.newest = newest;
            snapshot.put(id, &key.device, &sent.agent, &sent.fields);
            out.push(TileChange {
                name: key.device.clone(),
                agent: sent.agent.clone(),
                json: None,
                newest: Some(newest_entry(id, &sent.fields.newest)),
            });
        }
        out
    }
}

/// Makes a round's [`BoardRound`] (its id given by [`BoardRound::finish`]): the tile changes of `round`
/// (each device's status and the observations it published), the observations of the
/// rows in `rows` (those some client shows).
pub(super) fn make_round(
    tiles: &mut Tiles,
    snapshot: &mut Snapshot,
    round: &[(DeviceKey, Vec<Observation>, DeviceStatus)],
    rows: &HashMap<RowKey, usize>,
) -> BoardRound {
    let changes = tiles.changes(
        round.iter().map(|(k, _, s)| (k, s)),
        snapshot,
        Instant::now(),
    );
    let mut items = Vec::new();
    let (mut events, mut conditions) = (false, false);
    let mut key: RowKey = Default::default();
    let mut activity = Vec::new();
    for (_, observations, status) in round {
        let event = observations.iter().any(|o| o.category != Category::Sample);
        let condition = observations
            .iter()
            .any(|o| o.category == Category::Condition);
        if event {
            activity.push((status.device.clone(), status.agent.clone(), condition));
        }
        events |= event;
        conditions |= condition;
        for o in observations {
            if rows.is_empty() {
                continue;
            }
            status.agent.clone_into(&mut key.0);
            o.device.clone_into(&mut key.1);
            o.data_item_id.clone_into(&mut key.2);
            if rows.contains_key(&key) {
                let item = super::LiveItem {
                    agent: &status.agent,
                    observation: o,
                    shown: page::shown_value(o),
                };
                if let Ok(json) = serde_json::to_string(&item) {
                    items.push(RowItem {
                        key: key.clone(),
                        json,
                    });
                }
            }
        }
    }
    BoardRound {
        id: 0,
        published_at: page::rfc3339(chrono::Utc::now()),
        tiles: changes,
        items,
        events,
        conditions,
        activity,
        common: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_takes_rows_of_three_strings_only_and_at_most_max_rows() {
        let rows: Vec<serde_json::Value> = vec![
            serde_json::json!(["a", "d", "i"]),
            serde_json::json!(["a", "d"]),
            serde_json::json!(["a", 1, "i"]),
            serde_json::json!("x"),
        ];
        let v = BoardView::new(true, &rows);
        assert_eq!(v.rows.len(), 1);
        let many: Vec<serde_json::Value> = (0..MAX_ROWS + 10)
            .map(|i| serde_json::json!(["a", "d", i.to_string()]))
            .collect();
        assert_eq!(BoardView::new(false, &many).rows.len(), MAX_ROWS);
    }
}
