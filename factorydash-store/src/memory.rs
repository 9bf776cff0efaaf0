//! The embedded in-memory store.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Bound;
use std::sync::RwLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use factorydash_core::{
    Batch, Category, ConditionState, DeviceInfo, DeviceKey, Gap, Observation, Page, PageRequest,
    ResumePoint, TimeWindow, Value,
};

use factorydash_core::reasons::StopReason;
use factorydash_core::records::{DeviceRecord, MAX_RECORDS};
use factorydash_core::states::{StateFold, StateSummary};
use factorydash_core::summary::{self, Cell, DeviceFold, FoldOutput, Held, SummaryTotal};

mod accounts;

use crate::summaries::{self, SummaryWriter};
use crate::{
    latest_after, latest_page_of, AgentObservation, AppendOutcome, ConfiguredAgent, Credentials,
    LatestFilter, RebuildOutcome, SeriesChunk, SeriesKey, Store, StoreError, SummaryQuery,
};

/// A device's summary: its cells and the states it holds.
#[derive(Debug, Default)]
struct DeviceSummary {
    cells: BTreeMap<Cell, f64>,
    held: Vec<Held>,
}

impl DeviceSummary {
    fn apply(&mut self, cells: BTreeMap<Cell, f64>, output: Option<FoldOutput>) -> u64 {
        let rows = cells.len() as u64;
        for (cell, v) in cells {
            *self.cells.entry(cell).or_default() += v;
        }
        if let Some(out) = output {
            self.held.retain(|h| {
                !out.delete.contains(&h.key) && !out.put.iter().any(|p| p.key == h.key)
            });
            self.held.extend(out.put);
        }
        rows
    }
}

/// An in-memory [`Store`]: the embedded default, nothing to set up. Everything is lost when
/// the process ends. Bounded by calling [`Store::prune`] (the server does, with its
/// retention period).
///
/// # Layout
/// What repeats from one observation of a data item to the next (device, component,
/// `dataItemId`, name, category, type, subType) is kept once, as a *shape*; each stored
/// observation holds a shape index, its agent, `instanceId`, `sequence`, timestamp, value
/// and, for Conditions, a boxed condition state: about 90 bytes plus its value text, against
/// seven strings of its own in an [`Observation`].
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: RwLock<Inner>,
    /// The most observations kept (`None`: no cap); see [`MemoryStore::with_limit`].
    limit: Option<usize>,
}

/// (device, agent's number, dataItemId): the order of [`Store::latest`].
type ItemKey = (String, u32, String);

#[derive(Debug, Default)]
struct Inner {
    devices: BTreeMap<(String, String), DeviceInfo>,
    agents: HashMap<String, u32>,
    /// The agents' base URLs, by their number in `agents`.
    agent_urls: Vec<String>,
    /// (agent, instanceId, sequence) of every stored observation.
    seen: HashSet<(u32, u64, u64)>,
    /// Per data item, its stored observations ordered by (timestamp, sequence,
    /// `instanceId`): [`SeriesKey`] order.
    series: HashMap<ItemKey, Vec<Stored>>,
    latest: BTreeMap<ItemKey, Stored>,
    /// The distinct shapes of observations, and per data item the shapes it has had.
    shapes: Vec<Shape>,
    shapes_of: HashMap<ItemKey, Vec<u32>>,
    resume: HashMap<String, ResumePoint>,
    /// Per run (agent, instanceId), the sequence after the highest stored.
    runs: HashMap<(u32, u64), u64>,
    gaps: Vec<Gap>,
    /// Agents added at run time, in the order added (their URLs without credentials).
    configured: Vec<ConfiguredAgent>,
    /// Their credentials, by URL without credentials.
    credentials: HashMap<String, Credentials>,
    /// Users, groups, their credentials and the audit log.
    accounts: accounts::Accounts,
    /// Device records, by (agent, device): the order [`Store::device_records`] lists.
    records: BTreeMap<(String, String), DeviceRecord>,
    /// (agent URL, device) → its summary cells and held states.
    summaries: BTreeMap<(String, String), DeviceSummary>,
    /// Operators' reasons for stops, by (agent, device, start in µs, data item): the
    /// order [`Store::stop_reasons`] lists.
    reasons: BTreeMap<ReasonKey, StopReason>,
    /// Settings changed at run time, by key.
    settings: BTreeMap<String, crate::Setting>,
    /// The alarm deliveries' outbox, by id.
    outbox: BTreeMap<i64, crate::OutboxEntry>,
    outbox_next: i64,
}

/// A stop's reason's key in [`MemoryStore`]: agent, device, start (µs since the epoch,
/// UTC), Execution data item.
type ReasonKey = (String, String, i64, String);

/// What observations of one data item share.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Shape {
    device: String,
    component_id: String,
    data_item_id: String,
    name: Option<String>,
    category: Category,
    kind: String,
    sub_type: Option<String>,
}

impl Shape {
    fn of(o: &Observation) -> Self {
        Shape {
            device: o.device.clone(),
            component_id: o.component_id.clone(),
            data_item_id: o.data_item_id.clone(),
            name: o.name.clone(),
            category: o.category,
            kind: o.kind.clone(),
            sub_type: o.sub_type.clone(),
        }
    }

    fn matches(&self, o: &Observation) -> bool {
        self.component_id == o.component_id
            && self.name == o.name
            && self.category == o.category
            && self.kind == o.kind
            && self.sub_type == o.sub_type
            && self.device == o.device
            && self.data_item_id == o.data_item_id
    }
}

/// One stored observation, compact.
#[derive(Debug, Clone)]
struct Stored {
    agent: u32,
    shape: u32,
    instance_id: u64,
    sequence: u64,
    timestamp: DateTime<Utc>,
    value: Value,
    condition: Option<Box<ConditionState>>,
}

impl Stored {
    fn key(&self) -> SeriesKey {
        SeriesKey {
            timestamp: self.timestamp,
            sequence: self.sequence,
            instance_id: self.instance_id,
        }
    }
}

impl Inner {
    /// The shape index of `o`, interned.
    fn shape(&mut self, key: &ItemKey, o: &Observation) -> u32 {
        let ids = self.shapes_of.entry(key.clone()).or_default();
        if let Some(&id) = ids.iter().find(|&&id| self.shapes[id as usize].matches(o)) {
            return id;
        }
        let id = self.shapes.len() as u32;
        self.shapes.push(Shape::of(o));
        ids.push(id);
        id
    }

    /// Drops the `n` oldest observations (by timestamp) across all data items.
    fn evict_oldest(&mut self, n: usize) {
        // Merge the series' heads: a heap of (first timestamp, sequence, series key).
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        let mut heads: BinaryHeap<Reverse<(DateTime<Utc>, u64, ItemKey)>> = self
            .series
            .iter()
            .filter_map(|(k, s)| {
                s.first()
                    .map(|f| Reverse((f.timestamp, f.sequence, k.clone())))
            })
            .collect();
        let mut cut: HashMap<ItemKey, usize> = HashMap::new();
        for _ in 0..n {
            let Some(Reverse((_, _, key))) = heads.pop() else {
                break;
            };
            let at = cut.entry(key.clone()).or_default();
            *at += 1;
            if let Some(next) = self.series[&key].get(*at) {
                heads.push(Reverse((next.timestamp, next.sequence, key)));
            }
        }
        for (key, count) in cut {
            if let Some(series) = self.series.get_mut(&key) {
                for s in series.drain(..count) {
                    self.seen.remove(&(s.agent, s.instance_id, s.sequence));
                }
            }
        }
        self.series.retain(|_, s| !s.is_empty());
    }

    /// `devices` as (device, agent's number), those of agents ever seen.
    fn device_set<'a>(&self, devices: &'a [DeviceKey]) -> HashSet<(&'a str, u32)> {
        devices
            .iter()
            .filter_map(|d| Some((d.device.as_str(), *self.agents.get(&d.agent)?)))
            .collect()
    }

    /// The key of `device`'s data item `data_item_id`, if the agent was ever seen.
    fn item_key(&self, device: &DeviceKey, data_item_id: &str) -> Option<ItemKey> {
        let agent = *self.agents.get(&device.agent)?;
        Some((device.device.clone(), agent, data_item_id.to_owned()))
    }

    fn with_agent(&self, s: &Stored) -> AgentObservation {
        AgentObservation {
            agent: self.agent_urls[s.agent as usize].clone(),
            observation: self.observation(s),
        }
    }

    fn observation(&self, s: &Stored) -> Observation {
        let shape = &self.shapes[s.shape as usize];
        Observation {
            sequence: s.sequence,
            timestamp: s.timestamp,
            device: shape.device.clone(),
            component_id: shape.component_id.clone(),
            data_item_id: shape.data_item_id.clone(),
            name: shape.name.clone(),
            category: shape.category,
            kind: shape.kind.clone(),
            sub_type: shape.sub_type.clone(),
            value: s.value.clone(),
            condition: s.condition.as_deref().cloned(),
        }
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store that keeps at most `limit` observations: when an append goes past
    /// it, the oldest observations (by timestamp, across all data items) are dropped until
    /// a tenth of the limit is free again. Latest values are kept whatever happens, as with
    /// retention. At about 170 bytes per NIST observation, 2,000,000 is about 340 MB.
    pub fn with_limit(limit: usize) -> Self {
        MemoryStore {
            limit: Some(limit.max(1)),
            ..Self::default()
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl MemoryStore {
    /// [`Store::latest`] (`at` is `None`) and [`Store::as_of`]: the latest values that pass
    /// the filter, as a keyset page by (device, `dataItemId`); as of `at`, each data item's
    /// newest observation at or before it instead (the latest value where the history was
    /// dropped).
    fn latest_page(
        &self,
        filter: &LatestFilter,
        at: Option<DateTime<Utc>>,
        page: &PageRequest,
    ) -> Result<Page<AgentObservation>, StoreError> {
        crate::check_devices(filter.devices.as_deref())?;
        let after = latest_after(page)?;
        let limit = page.effective_limit();
        let inner = self.read();
        // The allow-list as (device, agent's number), of the agents ever seen.
        let allowed = filter
            .devices
            .as_deref()
            .map(|devices| inner.device_set(devices));
        // The allow-list is the set above: the rest of the filter per row.
        let rest = LatestFilter {
            devices: None,
            ..filter.clone()
        };
        let lower = match after {
            Some((device, agent, item)) => {
                // A number past any agent's is past them all.
                let agent = u32::try_from(agent).unwrap_or(u32::MAX);
                Bound::Excluded((device, agent, item))
            }
            None => Bound::Unbounded,
        };
        let only_agent = match &filter.agent {
            Some(url) => match inner.agents.get(url) {
                Some(&agent) => Some(agent),
                None => return Ok(latest_page_of(Vec::new(), limit)),
            },
            None => None,
        };
        let items: Vec<(i64, AgentObservation)> = inner
            .latest
            .range((lower, Bound::Unbounded))
            .filter(|((device, agent, _), _)| {
                filter.device.as_ref().is_none_or(|d| d == device)
                    && only_agent.is_none_or(|a| a == *agent)
                    && allowed
                        .as_ref()
                        .is_none_or(|set| set.contains(&(device.as_str(), *agent)))
            })
            .filter_map(|(key, latest)| {
                let Some(at) = at else {
                    return Some(latest);
                };
                let held = inner.series.get(key).and_then(|series| {
                    let end = series.partition_point(|s| s.timestamp <= at);
                    end.checked_sub(1).map(|i| &series[i])
                });
                held.or_else(|| (latest.timestamp <= at).then_some(latest))
            })
            .map(|s| (i64::from(s.agent), inner.with_agent(s)))
            .filter(|(_, o)| rest.matches(&o.agent, &o.observation))
            .take(limit + 1)
            .collect();
        Ok(latest_page_of(items, limit))
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn put_devices(&self, agent: &str, devices: &[DeviceInfo]) -> Result<(), StoreError> {
        let mut inner = self.write();
        inner.devices.retain(|(a, _), _| a != agent);
        for d in devices {
            inner
                .devices
                .insert((agent.to_owned(), d.name.clone()), d.clone());
        }
        Ok(())
    }

    async fn devices(&self) -> Result<Vec<DeviceInfo>, StoreError> {
        let mut out: Vec<DeviceInfo> = self.read().devices.values().cloned().collect();
        out.sort_by(|a, b| (&a.name, &a.agent).cmp(&(&b.name, &b.agent)));
        Ok(out)
    }

    async fn append(&self, batch: &Batch) -> Result<AppendOutcome, StoreError> {
        crate::check_range(batch)?;
        let mut inner = self.write();
        let inner = &mut *inner;
        let agent = match inner.agents.get(&batch.agent) {
            Some(&id) => id,
            None => {
                let id = inner.agent_urls.len() as u32;
                inner.agents.insert(batch.agent.clone(), id);
                inner.agent_urls.push(batch.agent.clone());
                id
            }
        };
        let mut outcome = AppendOutcome::default();
        let mut fresh: Vec<&Observation> = Vec::new();
        for o in &batch.observations {
            if !inner.seen.insert((agent, batch.instance_id, o.sequence)) {
                outcome.duplicates += 1;
                continue;
            }
            outcome.inserted += 1;
            fresh.push(o);
            let next = inner.runs.entry((agent, batch.instance_id)).or_default();
            *next = (*next).max(o.sequence.saturating_add(1));
            let key = (o.device.clone(), agent, o.data_item_id.clone());
            let stored = Stored {
                agent,
                shape: inner.shape(&key, o),
                instance_id: batch.instance_id,
                sequence: o.sequence,
                timestamp: o.timestamp,
                value: o.value.clone(),
                condition: o.condition.clone().map(Box::new),
            };
            let newer = inner
                .latest
                .get(&key)
                .is_none_or(|l| (l.instance_id, l.sequence) < (batch.instance_id, o.sequence));
            if newer {
                inner.latest.insert(key.clone(), stored.clone());
            }
            let series = inner.series.entry(key).or_default();
            let at = SeriesKey {
                timestamp: o.timestamp,
                sequence: o.sequence,
                instance_id: batch.instance_id,
            };
            // Usually an append at the end; timestamps out of sequence order are placed.
            let pos = series.partition_point(|s| s.key() <= at);
            series.insert(pos, stored);
        }
        let now = Utc::now();
        for (device, observations) in summaries::tracked_by_device(fresh) {
            let summary = inner
                .summaries
                .entry((batch.agent.clone(), device.to_owned()))
                .or_default();
            let mut fold = DeviceFold::new(summary.held.iter().cloned(), now);
            for o in observations {
                fold.observe(o);
            }
            let mut out = fold.finish();
            let cells = std::mem::take(&mut out.cells);
            summary.apply(cells, Some(out));
        }
        let resume = crate::resume_after(inner.resume.get(&batch.agent), batch);
        inner.resume.insert(batch.agent.clone(), resume);
        if let Some(limit) = self.limit {
            if inner.seen.len() > limit {
                inner.evict_oldest(inner.seen.len() - limit + limit / 10);
            }
        }
        Ok(outcome)
    }

    async fn resume_point(&self, agent: &str) -> Result<Option<ResumePoint>, StoreError> {
        Ok(self.read().resume.get(agent).cloned())
    }

    async fn instances(&self, agent: &str, limit: usize) -> Result<Vec<ResumePoint>, StoreError> {
        let inner = self.read();
        let Some(&id) = inner.agents.get(agent) else {
            return Ok(Vec::new());
        };
        let mut points: Vec<ResumePoint> = inner
            .runs
            .iter()
            .filter(|((a, _), _)| *a == id)
            .map(|(&(_, instance_id), &next_sequence)| ResumePoint {
                agent: agent.to_owned(),
                instance_id,
                next_sequence,
            })
            .collect();
        points.sort_unstable_by_key(|p| std::cmp::Reverse(p.instance_id));
        points.truncate(limit);
        Ok(points)
    }

    async fn record_gap(&self, gap: &Gap) -> Result<(), StoreError> {
        self.write().gaps.push(gap.clone());
        Ok(())
    }

    async fn withdraw_open_gaps(&self, agent: &str, instance_id: u64) -> Result<u64, StoreError> {
        let gaps = &mut self.write().gaps;
        let before = gaps.len();
        gaps.retain(|g| !(g.agent == agent && g.instance_id == instance_id && g.to.is_none()));
        Ok((before - gaps.len()) as u64)
    }

    async fn gaps(&self) -> Result<Vec<Gap>, StoreError> {
        Ok(self.read().gaps.clone())
    }

    async fn latest(
        &self,
        filter: &LatestFilter,
        page: &PageRequest,
    ) -> Result<Page<AgentObservation>, StoreError> {
        self.latest_page(filter, None, page)
    }

    async fn as_of(
        &self,
        filter: &LatestFilter,
        at: DateTime<Utc>,
        page: &PageRequest,
    ) -> Result<Page<AgentObservation>, StoreError> {
        self.latest_page(filter, Some(at), page)
    }

    async fn series(
        &self,
        device: &DeviceKey,
        data_item_id: &str,
        window: &TimeWindow,
        limit: usize,
    ) -> Result<Vec<Observation>, StoreError> {
        let inner = self.read();
        let Some(series) = inner
            .item_key(device, data_item_id)
            .and_then(|key| inner.series.get(&key))
        else {
            return Ok(Vec::new());
        };
        let start = series.partition_point(|s| s.timestamp < window.from());
        Ok(series[start..]
            .iter()
            .take_while(|s| s.timestamp < window.to())
            .take(limit)
            .map(|s| inner.observation(s))
            .collect())
    }

    async fn series_after(
        &self,
        device: &DeviceKey,
        data_item_id: &str,
        window: &TimeWindow,
        after: Option<SeriesKey>,
        limit: usize,
    ) -> Result<SeriesChunk, StoreError> {
        let limit = limit.max(1);
        let inner = self.read();
        let Some(series) = inner
            .item_key(device, data_item_id)
            .and_then(|key| inner.series.get(&key))
        else {
            return Ok(SeriesChunk::default());
        };
        let start = match after {
            Some(after) => series.partition_point(|s| s.key() <= after),
            None => 0,
        }
        .max(series.partition_point(|s| s.timestamp < window.from()));
        let rows = series[start..]
            .iter()
            .take_while(|s| s.timestamp < window.to())
            .take(limit + 1)
            .map(|s| (s.key(), inner.observation(s)))
            .collect();
        Ok(crate::series_chunk(rows, limit))
    }

    async fn last_before(
        &self,
        device: &DeviceKey,
        data_item_id: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<Observation>, StoreError> {
        let inner = self.read();
        let Some(key) = inner.item_key(device, data_item_id) else {
            return Ok(None);
        };
        let stored = inner.series.get(&key).and_then(|series| {
            let end = series.partition_point(|s| s.timestamp < at);
            end.checked_sub(1).map(|i| &series[i])
        });
        // Pruned history: the latest value still tells the state if it is older than `at`.
        let stored = stored.or_else(|| inner.latest.get(&key).filter(|l| l.timestamp < at));
        Ok(stored.map(|s| inner.observation(s)))
    }

    async fn conditions(
        &self,
        devices: Option<&[DeviceKey]>,
        window: &TimeWindow,
        after: Option<(DateTime<Utc>, u64, &str)>,
        limit: usize,
    ) -> Result<Vec<AgentObservation>, StoreError> {
        crate::check_devices(devices)?;
        let inner = self.read();
        // Ties between agents go by the agent's number here.
        let after = after.map(|(ts, sequence, agent)| {
            let agent = inner.agents.get(agent).copied().unwrap_or(u32::MAX);
            (ts, sequence, agent)
        });
        let mut found: Vec<&Stored> = Vec::new();
        let only = devices.map(|devices| inner.device_set(devices));
        for ((d, a, _), series) in &inner.series {
            if only
                .as_ref()
                .is_some_and(|set| !set.contains(&(d.as_str(), *a)))
            {
                continue;
            }
            let start = match after {
                Some(key) => series.partition_point(|s| (s.timestamp, s.sequence, s.agent) <= key),
                None => 0,
            }
            .max(series.partition_point(|s| s.timestamp < window.from()));
            found.extend(
                series[start..]
                    .iter()
                    .take_while(|s| s.timestamp < window.to())
                    .filter(|s| inner.shapes[s.shape as usize].category == Category::Condition),
            );
        }
        found.sort_by_key(|s| (s.timestamp, s.sequence, s.agent));
        Ok(found
            .into_iter()
            .take(limit)
            .map(|s| inner.with_agent(s))
            .collect())
    }

    async fn state_summary(
        &self,
        device: &DeviceKey,
        data_item_id: &str,
        window: &TimeWindow,
        after: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<StateSummary, StoreError> {
        let before = self
            .last_before(device, data_item_id, window.from())
            .await?;
        let mut fold = StateFold::new(*window, before.as_ref().map(|o| &o.value), after, limit);
        let inner = self.read();
        if let Some(series) = inner
            .item_key(device, data_item_id)
            .and_then(|key| inner.series.get(&key))
        {
            let start = series.partition_point(|s| s.timestamp < window.from());
            for s in series[start..]
                .iter()
                .take_while(|s| s.timestamp < window.to())
            {
                fold.push(s.timestamp, &s.value);
            }
        }
        Ok(fold.finish())
    }

    async fn summary(&self, query: &SummaryQuery) -> Result<Vec<SummaryTotal>, StoreError> {
        crate::check_summary_query(query)?;
        let pieces = summary::pieces(&query.ranges);
        let ramps = summary::ramp_pieces(&pieces);
        let inner = self.read();
        let mut totals = summaries::Totals::default();
        for ((agent, device), s) in &inner.summaries {
            if let Some(devices) = &query.devices {
                if !devices
                    .iter()
                    .any(|d| d.agent == *agent && d.device == *device)
                {
                    continue;
                }
            }
            for p in &pieces {
                let low = Cell {
                    resolution: p.resolution,
                    period: p.from,
                    item: String::new(),
                    measure: summary::Measure::Execution,
                    state: String::new(),
                };
                let high = Cell {
                    period: p.to,
                    ..low.clone()
                };
                for (c, v) in s.cells.range(low..high) {
                    totals.add(agent, device, &c.item, c.measure, &c.state, *v);
                }
            }
            // The edge minutes' seconds from their hours' ramps.
            for r in &ramps {
                let low = Cell {
                    resolution: summary::Resolution::Ramp,
                    period: r.hour,
                    item: String::new(),
                    measure: summary::Measure::Execution,
                    state: String::new(),
                };
                let high = Cell {
                    period: r.to,
                    ..low.clone()
                };
                for (c, v) in s.cells.range(low..high) {
                    let seconds = r.seconds(c.period, *v);
                    totals.add(agent, device, &c.item, c.measure, &c.state, seconds);
                }
            }
            for t in summary::open_totals(
                agent,
                device,
                &s.held,
                &query.ranges,
                query.until(agent, &s.held),
            ) {
                totals.add_total(t);
            }
        }
        Ok(totals.into_totals())
    }

    async fn prune_summaries(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        let micros = cutoff.timestamp_micros();
        let cutoff = cutoff.timestamp();
        let mut dropped = 0;
        let mut inner = self.write();
        inner.reasons.retain(|(_, _, began, _), _| *began >= micros);
        for s in inner.summaries.values_mut() {
            let before = s.cells.len();
            let hour = summary::Resolution::Hour
                .floor(cutoff)
                .saturating_mul(1_000_000);
            s.cells.retain(|c, _| match c.resolution {
                summary::Resolution::Ramp => c.period >= hour,
                r => c.period + r.seconds() > cutoff,
            });
            dropped += (before - s.cells.len()) as u64;
        }
        Ok(dropped)
    }

    async fn rebuild_summaries(&self, from: DateTime<Utc>) -> Result<RebuildOutcome, StoreError> {
        summaries::rebuild(self, from).await
    }

    async fn setting(&self, key: &str) -> Result<Option<crate::Setting>, StoreError> {
        Ok(self.read().settings.get(key).cloned())
    }

    async fn put_setting(
        &self,
        key: &str,
        setting: Option<&crate::Setting>,
    ) -> Result<(), StoreError> {
        crate::check_setting(key, setting)?;
        let mut inner = self.write();
        match setting {
            Some(s) => {
                let mut kept = s.clone();
                kept.updated_at = DateTime::from_timestamp_micros(s.updated_at.timestamp_micros())
                    .unwrap_or(s.updated_at);
                inner.settings.insert(key.to_owned(), kept);
            }
            None => {
                inner.settings.remove(key);
            }
        }
        Ok(())
    }

    async fn queue_outbox(&self, entries: &[crate::OutboxEntry]) -> Result<Vec<i64>, StoreError> {
        crate::check_outbox(entries)?;
        let mut inner = self.write();
        let mut ids = Vec::with_capacity(entries.len());
        for e in entries {
            inner.outbox_next += 1;
            let id = inner.outbox_next;
            let mut kept = e.clone();
            kept.id = id;
            kept.queued_at = DateTime::from_timestamp_micros(e.queued_at.timestamp_micros())
                .unwrap_or(e.queued_at);
            inner.outbox.insert(id, kept);
            ids.push(id);
        }
        Ok(ids)
    }

    async fn pending_outbox(
        &self,
        receiver: &str,
        limit: usize,
    ) -> Result<Vec<crate::OutboxEntry>, StoreError> {
        Ok(self
            .read()
            .outbox
            .values()
            .filter(|e| e.receiver == receiver)
            .take(limit.min(crate::MAX_OUTBOX_READ))
            .cloned()
            .collect())
    }

    async fn confirm_outbox(&self, id: i64) -> Result<(), StoreError> {
        self.write().outbox.remove(&id);
        Ok(())
    }

    async fn put_stop_reason(&self, reason: &StopReason) -> Result<(), StoreError> {
        crate::check_reason(reason)?;
        // Kept to the microsecond, as the other stores keep times.
        let micros = |t: DateTime<Utc>| DateTime::from_timestamp_micros(t.timestamp_micros());
        let mut kept = reason.clone();
        kept.began = micros(reason.began).unwrap_or(reason.began);
        kept.given_at = micros(reason.given_at).unwrap_or(reason.given_at);
        let key = (
            kept.agent.clone(),
            kept.device.clone(),
            kept.began.timestamp_micros(),
            kept.item.clone(),
        );
        self.write().reasons.insert(key, kept);
        Ok(())
    }

    async fn stop_reasons(
        &self,
        agent: &str,
        device: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<StopReason>, StoreError> {
        let (from, to) = (from.timestamp_micros(), to.timestamp_micros());
        if to <= from {
            return Ok(Vec::new());
        }
        let key = |at: i64| (agent.to_owned(), device.to_owned(), at, String::new());
        Ok(self
            .read()
            .reasons
            .range(key(from)..key(to))
            .map(|(_, r)| r.clone())
            .take(crate::MAX_STOP_REASONS)
            .collect())
    }

    async fn configured_agents(&self) -> Result<Vec<ConfiguredAgent>, StoreError> {
        Ok(self.read().configured.clone())
    }

    async fn device_records(&self) -> Result<Vec<DeviceRecord>, StoreError> {
        Ok(self.read().records.values().cloned().collect())
    }

    async fn put_device_record(&self, record: &DeviceRecord) -> Result<(), StoreError> {
        crate::check_record(record)?;
        let key = (record.agent.clone(), record.device.clone());
        let mut inner = self.write();
        if !inner.records.contains_key(&key) && inner.records.len() >= MAX_RECORDS {
            return Err(crate::too_many_records());
        }
        inner.records.insert(key, record.clone());
        Ok(())
    }

    async fn remove_device_record(&self, agent: &str, device: &str) -> Result<bool, StoreError> {
        Ok(self
            .write()
            .records
            .remove(&(agent.to_owned(), device.to_owned()))
            .is_some())
    }

    async fn put_configured_agent(&self, agent: &ConfiguredAgent) -> Result<(), StoreError> {
        let (url, credentials) = crate::split_credentials(&agent.url);
        let mut inner = self.write();
        match inner.configured.iter_mut().find(|a| a.url == url) {
            Some(a) => a.paused = agent.paused,
            None => inner.configured.push(ConfiguredAgent {
                url: url.to_string(),
                paused: agent.paused,
            }),
        }
        if let Some(c) = credentials {
            inner.credentials.insert(url.into_owned(), c);
        }
        Ok(())
    }

    async fn remove_configured_agent(&self, url: &str) -> Result<bool, StoreError> {
        let (url, _) = crate::split_credentials(url);
        let mut inner = self.write();
        let before = inner.configured.len();
        inner.configured.retain(|a| a.url != url);
        inner.credentials.remove(url.as_ref());
        Ok(inner.configured.len() < before)
    }

    async fn agent_credentials(&self, url: &str) -> Result<Option<Credentials>, StoreError> {
        let (url, _) = crate::split_credentials(url);
        Ok(self.read().credentials.get(url.as_ref()).cloned())
    }

    async fn observation_count(&self) -> Result<u64, StoreError> {
        Ok(self.read().seen.len() as u64)
    }

    async fn prune(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut inner = self.write();
        let inner = &mut *inner;
        // Whole days, as in PostgreSQL: everything before midnight UTC of the cutoff's day.
        let cutoff = cutoff
            .date_naive()
            .and_time(chrono::NaiveTime::MIN)
            .and_utc();
        let mut dropped = 0u64;
        for series in inner.series.values_mut() {
            let n = series.partition_point(|s| s.timestamp < cutoff);
            for s in series.drain(..n) {
                inner.seen.remove(&(s.agent, s.instance_id, s.sequence));
                dropped += 1;
            }
        }
        inner.series.retain(|_, s| !s.is_empty());
        Ok(dropped)
    }
}

#[async_trait]
impl SummaryWriter for MemoryStore {
    async fn clear_summaries(&self, from: i64) -> Result<(), StoreError> {
        for s in self.write().summaries.values_mut() {
            s.cells.retain(|c, _| match c.resolution {
                summary::Resolution::Ramp => c.period < from.saturating_mul(1_000_000),
                _ => c.period < from,
            });
            s.held.clear();
        }
        Ok(())
    }

    async fn write_summary(
        &self,
        agent: &str,
        device: &str,
        cells: BTreeMap<Cell, f64>,
        output: Option<FoldOutput>,
    ) -> Result<u64, StoreError> {
        Ok(self
            .write()
            .summaries
            .entry((agent.to_owned(), device.to_owned()))
            .or_default()
            .apply(cells, output))
    }
}
