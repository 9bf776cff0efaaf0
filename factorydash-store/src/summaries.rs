//! What the stores share of the summaries ([`factorydash_core::summary`]): the tracked
//! observations of a batch by device, totals summed from rows, and the rebuild from the
//! stored observations.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};
use factorydash_core::summary::{
    is_stopped, is_tracked, Cell, DeviceFold, FoldOutput, Measure, Resolution, SummaryTotal,
};
use factorydash_core::{Category, DeviceKey, Observation, TimeWindow};

use crate::{RebuildOutcome, Store, StoreError};

/// The tracked observations of `observations` (those `stored` says were stored for the
/// first time), by device, in batch order.
pub(crate) fn tracked_by_device<'a>(
    observations: impl IntoIterator<Item = &'a Observation>,
) -> BTreeMap<&'a str, Vec<&'a Observation>> {
    let mut out: BTreeMap<&str, Vec<&Observation>> = BTreeMap::new();
    for o in observations {
        if is_tracked(o) {
            out.entry(o.device.as_str()).or_default().push(o);
        }
    }
    out
}

/// Sums rows `(agent, device, item, measure, state, value)` into totals.
#[derive(Default)]
pub(crate) struct Totals {
    sums: BTreeMap<(String, String, String, Measure, String), f64>,
}

impl Totals {
    pub(crate) fn add(
        &mut self,
        agent: &str,
        device: &str,
        item: &str,
        measure: Measure,
        state: &str,
        value: f64,
    ) {
        *self
            .sums
            .entry((
                agent.to_owned(),
                device.to_owned(),
                item.to_owned(),
                measure,
                state.to_owned(),
            ))
            .or_default() += value;
    }

    pub(crate) fn add_total(&mut self, t: SummaryTotal) {
        self.add(&t.agent, &t.device, &t.item, t.measure, &t.state, t.value);
    }

    pub(crate) fn into_totals(self) -> Vec<SummaryTotal> {
        self.sums
            .into_iter()
            .map(
                |((agent, device, item, measure, state), value)| SummaryTotal {
                    agent,
                    device,
                    item,
                    measure,
                    state,
                    value,
                },
            )
            .collect()
    }
}

/// The start of the UTC day holding `t`, Unix seconds.
pub(crate) fn day_start(t: DateTime<Utc>) -> i64 {
    Resolution::Day.floor(t.timestamp())
}

/// A store's side of a rebuild.
#[async_trait]
pub(crate) trait SummaryWriter {
    /// Drops the summary rows of periods starting at or after `from` (Unix seconds) and
    /// every held state.
    async fn clear_summaries(&self, from: i64) -> Result<(), StoreError>;

    /// Adds `cells` to a device's summary and writes its held states; returns the rows
    /// written.
    async fn write_summary(
        &self,
        agent: &str,
        device: &str,
        cells: BTreeMap<Cell, f64>,
        output: Option<FoldOutput>,
    ) -> Result<u64, StoreError>;
}

/// The observations read per call while rebuilding.
const CHUNK: usize = 10_000;

/// One data item's observations being merged.
struct Source<'a> {
    item: &'a str,
    buffer: std::collections::VecDeque<factorydash_core::Observation>,
    after: Option<crate::SeriesKey>,
    done: bool,
}

/// Some data items' observations of one device in a window, read a chunk per data item at
/// a time and merged in (timestamp, sequence) order: memory bounded by items × [`CHUNK`].
struct Merge<'a> {
    key: DeviceKey,
    window: TimeWindow,
    heads: Vec<Source<'a>>,
    /// Observations read per call, per data item.
    chunk: usize,
    /// Observations read so far.
    read: u64,
}

impl<'a> Merge<'a> {
    fn new(key: DeviceKey, items: &'a [&'a str], window: TimeWindow, chunk: usize) -> Self {
        let heads = items
            .iter()
            .map(|item| Source {
                item,
                buffer: std::collections::VecDeque::new(),
                after: None,
                done: false,
            })
            .collect();
        Merge {
            key,
            window,
            heads,
            chunk,
            read: 0,
        }
    }

    /// The next observation, `None` after the last.
    async fn next<S: Store + ?Sized>(
        &mut self,
        store: &S,
    ) -> Result<Option<Observation>, StoreError> {
        for h in self
            .heads
            .iter_mut()
            .filter(|h| h.buffer.is_empty() && !h.done)
        {
            let chunk = store
                .series_after(&self.key, h.item, &self.window, h.after, self.chunk)
                .await?;
            self.read += chunk.observations.len() as u64;
            h.done = chunk.next.is_none();
            h.after = chunk.next;
            h.buffer.extend(chunk.observations);
        }
        Ok(self
            .heads
            .iter_mut()
            .filter(|h| !h.buffer.is_empty())
            .min_by_key(|h| h.buffer.front().map(|o| (o.timestamp, o.sequence)))
            .and_then(|h| h.buffer.pop_front()))
    }
}

/// The data items of `device` a summary folds: its Execution, Availability,
/// ControllerMode, PartCount, EmergencyStop and Program data items and every Condition.
pub fn tracked_items(device: &crate::DeviceInfo) -> Vec<&str> {
    device
        .data_items
        .iter()
        .filter(|i| {
            i.category == Category::Condition
                || matches!(
                    i.kind.as_str(),
                    "EXECUTION"
                        | "AVAILABILITY"
                        | "CONTROLLER_MODE"
                        | "PART_COUNT"
                        | "EMERGENCY_STOP"
                        | "PROGRAM"
                )
        })
        .map(|i| i.id.as_str())
        .collect()
}

/// A fold started at `start` from each of `items`' last observation before it (a
/// Condition's last included: a Fault active then is known).
async fn seeded<S: Store + ?Sized>(
    store: &S,
    key: &DeviceKey,
    items: &[&str],
    start: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<DeviceFold, StoreError> {
    let mut fold = DeviceFold::new([], now);
    let mut seeds = Vec::new();
    for item in items {
        if let Some(o) = store.last_before(key, item, start).await? {
            seeds.push(o);
        }
    }
    seeds.sort_by_key(|o| (o.timestamp, o.sequence));
    fold.seed(&seeds, start);
    Ok(fold)
}

/// [`Store::rebuild_summaries`] over any store's reads: device by device, each tracked data
/// item's observations merged in (timestamp, sequence) order ([`Merge`]), the cells
/// written every 100,000 observations.
pub(crate) async fn rebuild<S: Store + SummaryWriter + ?Sized>(
    store: &S,
    from: DateTime<Utc>,
) -> Result<RebuildOutcome, StoreError> {
    let start = day_start(from);
    store.clear_summaries(start).await?;
    let start_t = Utc
        .timestamp_opt(start, 0)
        .single()
        .ok_or_else(|| StoreError::Invalid("rebuild start out of range".into()))?;
    let now = Utc::now();
    let mut outcome = RebuildOutcome::default();
    for device in store.devices().await? {
        let key = DeviceKey::new(&device.agent, &device.name);
        let items = tracked_items(&device);
        if items.is_empty() {
            continue;
        }
        let mut fold = seeded(store, &key, &items, start_t, now).await?;
        let window = TimeWindow::new(start_t, now + Duration::days(2))
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let mut merge = Merge::new(key, &items, window, CHUNK);
        while let Some(o) = merge.next(store).await? {
            fold.observe(&o);
            outcome.observations += 1;
            if outcome.observations.is_multiple_of(CHUNK as u64 * 10) {
                let cells = fold.take_cells();
                if !cells.is_empty() {
                    outcome.rows += store
                        .write_summary(&device.agent, &device.name, cells, None)
                        .await?;
                }
            }
        }
        let cells = fold.take_cells();
        if !cells.is_empty() {
            outcome.rows += store
                .write_summary(&device.agent, &device.name, cells, None)
                .await?;
        }
        let output = fold.finish();
        store
            .write_summary(&device.agent, &device.name, BTreeMap::new(), Some(output))
            .await?;
        outcome.devices += 1;
    }
    Ok(outcome)
}

/// The longest window [`stops`] lists: 8 days (a local week, 7 days and an hour across a
/// daylight-saving change, fits).
pub const MAX_STOP_WINDOW: Duration = Duration::days(8);

/// The most observations [`stops`] reads; past them the list is marked incomplete.
pub const MAX_STOP_OBSERVATIONS: u64 = 200_000;

/// The most data items [`stops`] reads (Execution, ControllerMode, Program and
/// EmergencyStop first, then Conditions), so that what it holds at once (a chunk of
/// 1,000 observations per data item) is bounded whatever the device model.
pub const MAX_STOP_ITEMS: usize = 128;

/// The observations [`stops`] reads per call and data item.
const STOP_CHUNK: usize = 1_000;

/// How many observations back [`stops`] looks for the start of a stop under way at its
/// window's start (one read each).
pub const MAX_STOP_SEED_STEPS: usize = 64;

/// A device's stops over a window ([`stops`]).
#[derive(Debug, Clone)]
pub struct StopList {
    /// The stops that began in the window or were under way at its start, in the order
    /// they began; one still under way has no end.
    pub stops: Vec<factorydash_core::summary::StopRecord>,
    /// Whether every stop is listed (at most [`factorydash_core::summary::MAX_STOP_LOG`]
    /// stops, [`MAX_STOP_OBSERVATIONS`] observations read, [`MAX_STOP_ITEMS`] data items).
    pub complete: bool,
}

/// The stops of `device` in `[from, to)`, each with what was active when it began (the
/// fold of the summaries, [`DeviceFold::log_stops`], over the device's tracked data
/// items' stored observations of the window, from their states at `from`): a list
/// bounded by [`MAX_STOP_WINDOW`], [`MAX_STOP_OBSERVATIONS`] read, [`MAX_STOP_ITEMS`] and
/// [`factorydash_core::summary::MAX_STOP_LOG`], read in chunks, never the whole window at
/// once. Only what the store still holds (the observations' retention) is listed. A stop
/// under way at `from` is listed first, with its whole length.
///
/// # Errors
/// [`StoreError::Invalid`] for a window longer than [`MAX_STOP_WINDOW`] or empty; the
/// store's.
pub async fn stops<S: Store + ?Sized>(
    store: &S,
    device: &crate::DeviceInfo,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<StopList, StoreError> {
    if to <= from || to - from > MAX_STOP_WINDOW {
        return Err(StoreError::Invalid(format!(
            "a stop list covers at most {} days",
            MAX_STOP_WINDOW.num_days()
        )));
    }
    let key = DeviceKey::new(&device.agent, &device.name);
    let mut items = tracked_items(device);
    // Conditions last: the states and the program decide a stop; a model with thousands
    // of Conditions is cut there.
    let condition = |id: &str| {
        device
            .data_items
            .iter()
            .any(|i| i.id == id && i.category == Category::Condition)
    };
    items.sort_by_key(|id| condition(id));
    let cut = items.len() > MAX_STOP_ITEMS;
    items.truncate(MAX_STOP_ITEMS);
    let mut fold = seeded(store, &key, &items, from, Utc::now()).await?;
    // A stop under way at `from` began at the first of the stopped observations before
    // it (`STOPPED`, `READY`, … until `ACTIVE`, `UNAVAILABLE` or none): found a step at a
    // time, at most `MAX_STOP_SEED_STEPS` steps back, so that every window lists it with
    // the same start (and its reason finds it).
    for item in fold.stops_under_way() {
        let mut began = None;
        let mut before = from;
        for _ in 0..MAX_STOP_SEED_STEPS {
            match store.last_before(&key, &item, before).await? {
                Some(o) if o.value.as_text().is_some_and(is_stopped) => {
                    began = Some(o.timestamp);
                    before = o.timestamp;
                }
                _ => break,
            }
        }
        if let Some(began) = began {
            fold.backdate_stop(&item, began);
        }
    }
    fold.log_stops();
    let window = TimeWindow::new(from, to).map_err(|e| StoreError::Invalid(e.to_string()))?;
    let mut merge = Merge::new(key, &items, window, STOP_CHUNK);
    let mut folded = 0u64;
    let mut complete = !cut;
    while let Some(o) = merge.next(store).await? {
        fold.observe(&o);
        folded += 1;
        // The cells are not wanted: drop them as they come.
        if folded.is_multiple_of(STOP_CHUNK as u64) {
            fold.take_cells();
        }
        if merge.read >= MAX_STOP_OBSERVATIONS {
            complete = false;
            break;
        }
    }
    let (stops, all) = fold.take_stop_log();
    Ok(StopList {
        stops,
        complete: complete && all,
    })
}
