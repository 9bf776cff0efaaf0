//! What the stores share of the summaries ([`factorydash_core::summary`]): the tracked
//! observations of a batch by device, totals summed from rows, and the rebuild from the
//! stored observations.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};
use factorydash_core::summary::{
    is_tracked, Cell, DeviceFold, FoldOutput, Measure, Resolution, SummaryTotal,
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

/// One data item's observations being merged by a rebuild.
struct Source<'a> {
    item: &'a str,
    buffer: std::collections::VecDeque<factorydash_core::Observation>,
    after: Option<crate::SeriesKey>,
    done: bool,
}

/// [`Store::rebuild_summaries`] over any store's reads: device by device, each tracked data
/// item's observations read in chunks and merged in (timestamp, sequence) order (in
/// memory: a chunk per data item), the cells written every 100,000 observations.
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
        let items: Vec<&str> = device
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
            .collect();
        if items.is_empty() {
            continue;
        }
        let mut fold = DeviceFold::new([], now);
        let mut seeds = Vec::new();
        for item in &items {
            if let Some(o) = store.last_before(&key, item, start_t).await? {
                if o.category != Category::Condition {
                    seeds.push(o);
                }
            }
        }
        seeds.sort_by_key(|o| (o.timestamp, o.sequence));
        fold.seed(&seeds, start_t);
        // Each tracked item's observations from the start, a chunk at a time, merged in
        // (timestamp, sequence) order: memory bounded by items × CHUNK.
        let window = TimeWindow::new(start_t, now + Duration::days(2))
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let mut heads: Vec<Source<'_>> = items
            .iter()
            .map(|item| Source {
                item,
                buffer: std::collections::VecDeque::new(),
                after: None,
                done: false,
            })
            .collect();
        loop {
            for h in heads.iter_mut().filter(|h| h.buffer.is_empty() && !h.done) {
                let chunk = store
                    .series_after(&key, h.item, &window, h.after, CHUNK)
                    .await?;
                h.done = chunk.next.is_none();
                h.after = chunk.next;
                h.buffer.extend(chunk.observations);
            }
            let Some(next) = heads
                .iter_mut()
                .filter(|h| !h.buffer.is_empty())
                .min_by_key(|h| h.buffer.front().map(|o| (o.timestamp, o.sequence)))
            else {
                break;
            };
            if let Some(o) = next.buffer.pop_front() {
                fold.observe(&o);
                outcome.observations += 1;
            }
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
