//! OEE and utilization reports over a shift, a day, a week, a month or any window, per
//! device, per cell and for the plant, answered from the store's summaries
//! ([`factorydash_store::Store::summary`], two questions whatever the window's length):
//! what `/api/oee`, `/report` and `/report.csv` show.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use factorydash_core::downtime::{Pareto, ParetoSum};
use factorydash_core::layout::Placement;
use factorydash_core::oee::{
    best_repeated_cycle, oee, DeviceFigures, IdealCycleTimes, LearnedCycle, Oee, OeeInputs,
};
use factorydash_core::shifts::ShiftCalendar;
use factorydash_core::summary::{MinuteRange, SummaryTotal};
use factorydash_core::{DeviceKey, ShiftFigures};
use factorydash_store::{StoreError, SummaryQuery};
use serde::Serialize;

use crate::accounts::Scope;
use crate::state::App;

/// The plant's shift calendar and where it came from ([`set_calendar`]).
static CALENDAR: std::sync::RwLock<Option<(Arc<ShiftCalendar>, CalendarSource)>> =
    std::sync::RwLock::new(None);

/// Where the shift calendar in effect came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CalendarSource {
    /// The configuration file (or none: every minute planned).
    Configuration,
    /// The shifts page: who saved it, and when (UTC).
    Page {
        /// Who saved it.
        by: String,
        /// When.
        at: DateTime<Utc>,
    },
}

/// Each device's figures over the current shift so far, and the plant's, as last
/// computed ([`ShiftBoard::refresh`], every minute): the tiles and the board's summary line
/// read them here, so a page costs no summary question.
#[derive(Default)]
pub struct ShiftBoard {
    figures: std::sync::RwLock<Arc<ShiftSnapshot>>,
}

/// What [`ShiftBoard`] holds.
#[derive(Default)]
pub struct ShiftSnapshot {
    /// By (agent, device).
    pub devices: std::collections::HashMap<(String, String), ShiftFigures>,
    /// The plant's (every device's).
    pub plant: Option<ShiftFigures>,
}

/// How often the shift's figures are computed again.
pub const SHIFT_REFRESH: std::time::Duration = std::time::Duration::from_secs(60);

impl ShiftBoard {
    /// The figures as last computed.
    pub fn snapshot(&self) -> Arc<ShiftSnapshot> {
        self.figures
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Puts the device's shift figures on its status.
    pub fn annotate(&self, device: &DeviceKey, status: &mut factorydash_core::DeviceStatus) {
        let snapshot = self.snapshot();
        status.shift = snapshot
            .devices
            .get(&(device.agent.clone(), device.device.clone()))
            .cloned();
    }

    /// Computes the current shift's figures of every device (the shift running now, or
    /// the local day without one).
    ///
    /// # Errors
    /// The store's.
    pub async fn refresh(&self, app: &App) -> Result<(), StoreError> {
        let now = Utc::now();
        let calendar = calendar();
        let (from, to) = calendar
            .period("shift", now)
            .unwrap_or((now - chrono::Duration::days(1), now));
        let name = calendar
            .shift_at(now)
            .map_or_else(|| "Today".to_owned(), |s| s.name);
        let r = report(
            app,
            &Scope::everything(),
            from,
            to,
            Some(name.clone()),
            false,
        )
        .await?;
        let figures = |o: &Oee| ShiftFigures {
            shift: name.clone(),
            oee: o.oee.value,
            availability: o.availability.value,
        };
        let snapshot = ShiftSnapshot {
            devices: r
                .devices
                .iter()
                .map(|d| ((d.agent_key.clone(), d.device.clone()), figures(&d.oee)))
                .collect(),
            plant: Some(figures(&r.plant.oee)),
        };
        *self.figures.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(snapshot);
        Ok(())
    }

    /// Refreshes every [`SHIFT_REFRESH`] for ever (a failure is logged and tried again).
    pub async fn run(app: Arc<App>) {
        let mut every = tokio::time::interval(SHIFT_REFRESH);
        loop {
            every.tick().await;
            if let Err(e) = app.shift.refresh(&app).await {
                tracing::warn!(error = %crate::error_chain::error_chain(&e), "cannot compute the shift's figures; trying again in a minute");
            }
        }
    }
}

static IDEAL_CYCLE_TIMES: OnceLock<BTreeMap<String, f64>> = OnceLock::new();

/// The ideal cycle times learned from each device's part count, by (agent, device).
static LEARNED: std::sync::RwLock<Option<Arc<LearnedMap>>> = std::sync::RwLock::new(None);

type LearnedMap = std::collections::HashMap<(String, String), LearnedCycle>;

/// The ideal cycle time learned for `device` of `agent` ([`LearnedCycles`]), if any.
pub fn learned_cycle(agent: &str, device: &str) -> Option<LearnedCycle> {
    let map = LEARNED.read().unwrap_or_else(|p| p.into_inner()).clone()?;
    map.get(&(agent.to_owned(), device.to_owned())).copied()
}

/// Ideal cycle times learned as each device's best repeated cycle
/// ([`best_repeated_cycle`]), from its part count's last [`LEARN_WINDOW`] of data (up
/// to its newest count: a device stopped for a month keeps what it showed before), at
/// most [`MAX_LEARN_OBSERVATIONS`] observations a device, again every [`LEARN_EVERY`].
/// The part count is the device's `PartCount` of subType `ALL` (or none), else `GOOD`.
/// A report uses one for a device whose record sets none, for the parts of programs
/// without their own, and says so.
pub struct LearnedCycles;

/// How much of a part count's history a learned cycle time reads.
pub const LEARN_WINDOW: chrono::Duration = chrono::Duration::days(7);

/// The most observations read for one device's learned cycle time.
pub const MAX_LEARN_OBSERVATIONS: usize = 50_000;

/// How often the learned cycle times are computed again.
pub const LEARN_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

impl LearnedCycles {
    /// Learns every device's cycle time now.
    ///
    /// # Errors
    /// The store's.
    pub async fn refresh(app: &App) -> Result<usize, StoreError> {
        let mut map = LearnedMap::new();
        for d in app.devices().await?.iter() {
            let counts = d.data_items.iter().filter(|i| i.kind == "PART_COUNT");
            let item = counts
                .clone()
                .find(|i| matches!(i.sub_type.as_deref(), None | Some("ALL")))
                .or_else(|| {
                    counts
                        .clone()
                        .find(|i| i.sub_type.as_deref() == Some("GOOD"))
                });
            let Some(item) = item else { continue };
            let key = d.key();
            // Up to now: an observation an agent's wrong clock put in the future is not
            // the anchor.
            let now = Utc::now() + chrono::Duration::minutes(1);
            let newest = match app.store.last_before(&key, &item.id, now).await {
                Ok(Some(o)) => o,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(device = %d.name, error = %crate::error_chain::error_chain(&e), "cannot read a part count to learn its cycle");
                    continue;
                }
            };
            let window = factorydash_core::TimeWindow::new(
                newest.timestamp - LEARN_WINDOW,
                newest.timestamp + chrono::Duration::microseconds(1),
            )
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
            let mut counts: Vec<(DateTime<Utc>, Option<f64>)> = Vec::new();
            let mut after = None;
            loop {
                let chunk = app
                    .store
                    .series_after(&key, &item.id, &window, after, 5_000)
                    .await?;
                counts.extend(chunk.observations.iter().map(|o| {
                    let n = o.value.as_text().and_then(|v| v.trim().parse::<f64>().ok());
                    (o.timestamp, n)
                }));
                after = chunk.next;
                if after.is_none() || counts.len() >= MAX_LEARN_OBSERVATIONS {
                    break;
                }
            }
            if let Some(l) = best_repeated_cycle(counts) {
                map.insert((d.agent.clone(), d.name.clone()), l);
            }
        }
        let n = map.len();
        *LEARNED.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(map));
        Ok(n)
    }

    /// Learns at start, then every [`LEARN_EVERY`], for ever (a failure is logged and
    /// tried again at the next turn).
    pub async fn run(app: Arc<App>) {
        let mut every = tokio::time::interval(LEARN_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            match Self::refresh(&app).await {
                Ok(n) => tracing::debug!(devices = n, "ideal cycle times learned"),
                Err(e) => {
                    tracing::warn!(error = %crate::error_chain::error_chain(&e), "cannot learn the ideal cycle times; trying again in an hour")
                }
            }
        }
    }
}

/// Sets the ideal cycle times per program (seconds per part) for this process (at start;
/// a second call is ignored).
pub fn set_ideal_cycle_times(programs: BTreeMap<String, f64>) {
    let _ = IDEAL_CYCLE_TIMES.set(programs);
}

static STOP_REASONS: OnceLock<Vec<String>> = OnceLock::new();

/// Sets the reasons operators choose from for a stop (at start; a second call is
/// ignored).
pub fn set_stop_reasons(reasons: Vec<String>) {
    let _ = STOP_REASONS.set(reasons);
}

/// The reasons operators choose from for a stop: the configuration's `stop-reasons`,
/// else [`crate::config::DEFAULT_STOP_REASONS`].
pub fn stop_reasons() -> Vec<String> {
    match STOP_REASONS.get() {
        Some(r) => r.clone(),
        None => crate::config::DEFAULT_STOP_REASONS
            .iter()
            .map(|r| (*r).to_owned())
            .collect(),
    }
}

/// Sets the plant's shift calendar for this process, and where it came from: at start,
/// and when an admin saves the shifts page (reports asked from then on use it; the
/// shift's figures on the board follow at their next refresh).
pub fn set_calendar(calendar: ShiftCalendar, source: CalendarSource) {
    let calendar = Arc::new(calendar);
    if source == CalendarSource::Configuration {
        let _ = CONFIGURED_CALENDAR.set(calendar.clone());
    }
    *CALENDAR.write().unwrap_or_else(|p| p.into_inner()) = Some((calendar, source));
}

/// The configuration file's calendar, as set at start.
static CONFIGURED_CALENDAR: OnceLock<Arc<ShiftCalendar>> = OnceLock::new();

/// The configuration file's calendar (what the shifts page goes back to).
pub fn configured_calendar() -> Arc<ShiftCalendar> {
    CONFIGURED_CALENDAR
        .get()
        .cloned()
        .unwrap_or_else(|| Arc::new(ShiftCalendar::always(calendar().time_zone())))
}

/// The plant's shift calendar: the one [`set_calendar`] set, else every minute planned
/// (UTC).
pub fn calendar() -> Arc<ShiftCalendar> {
    calendar_and_source().0
}

/// The plant's shift calendar and where it came from.
pub fn calendar_and_source() -> (Arc<ShiftCalendar>, CalendarSource) {
    CALENDAR
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .unwrap_or_else(|| {
            (
                Arc::new(ShiftCalendar::always(chrono_tz::UTC)),
                CalendarSource::Configuration,
            )
        })
}

/// The store's key of the shift calendar saved on the shifts page.
pub const CALENDAR_SETTING: &str = "shift-calendar";

/// The calendar `text` (the shifts page's TOML) in the plant's time zone.
///
/// # Errors
/// [`crate::config::calendar_text`]'s refusals; [`ShiftCalendar::new`]'s.
pub fn calendar_of_text(text: &str) -> anyhow::Result<ShiftCalendar> {
    let (shifts, holidays) = crate::config::calendar_text(text)?;
    Ok(ShiftCalendar::new(
        calendar().time_zone(),
        shifts,
        holidays,
    )?)
}

/// Puts the calendar saved on the shifts page, if any, in effect (at start, once the
/// store is open). One that no longer reads (a later build's) is logged and left aside.
pub async fn load_saved_calendar(store: &dyn factorydash_store::Store) {
    match store.setting(CALENDAR_SETTING).await {
        Ok(Some(saved)) => match calendar_of_text(&saved.value) {
            Ok(c) => {
                tracing::info!(by = %saved.updated_by, at = %saved.updated_at, "the shift calendar saved on the shifts page is in effect");
                set_calendar(
                    c,
                    CalendarSource::Page {
                        by: saved.updated_by,
                        at: saved.updated_at,
                    },
                );
            }
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "the shift calendar saved on the shifts page does not read; the configuration file's is in effect")
            }
        },
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(error = %crate::error_chain::error_chain(&e), "cannot read the saved shift calendar; the configuration file's is in effect")
        }
    }
}

/// The time in one Execution state over a window, with its share of the window.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Share {
    /// The state, or `NO DATA` for time without a known Execution state (no observation,
    /// or `UNAVAILABLE`).
    pub state: String,
    /// Seconds.
    pub seconds: f64,
    /// Share of the window (0 to 1): the shares add up to 1.
    pub share: f64,
}

/// A cell's name and its line.
type CellOf = (String, Option<String>);

/// One device's report.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceReport {
    /// The agent's URL (without credentials).
    pub agent: String,
    /// The agent as the store knows it (for lookups; not shown).
    #[serde(skip)]
    pub agent_key: String,
    /// The device's name.
    pub device: String,
    /// Its display name, from its record, if set.
    pub display_name: Option<String>,
    /// Its cell and line, if placed.
    pub cell: Option<String>,
    /// Its line, if its cell has one.
    pub line: Option<String>,
    /// The ideal cycle time used, seconds per part: its record's, or the mean over the
    /// parts produced of each program's (`[ideal-cycle-times]`).
    pub ideal_cycle_time: Option<f64>,
    /// How many programs that mean weighs (0: the device's own ideal cycle time).
    pub programs: usize,
    /// The ideal cycle time learned from its part count ([`LearnedCycles`]), if any:
    /// used where neither its record nor the program's sets one.
    pub learned_cycle: Option<LearnedCycle>,
    /// OEE over the window's planned time.
    pub oee: Oee,
    /// Utilization over the whole window (up to now): each Execution state's time and
    /// the time without data, largest first.
    pub utilization: Vec<Share>,
    /// Seconds with a Fault active in the window.
    pub fault_seconds: f64,
    /// Seconds with a Warning active in the window.
    pub warning_seconds: f64,
    /// Parts counted in the window, by subType (`ALL`, `GOOD`, `BAD`).
    pub parts: BTreeMap<String, f64>,
    /// Where planned time went when the device was not running, by cause.
    pub downtime: Pareto,
    /// The window's state timeline ([`Segment`]s from its start to now); empty when the
    /// report has more than [`MAX_TIMELINE_DEVICES`] devices.
    pub timeline: Vec<Segment>,
}

/// One segment of a device's state timeline: seconds of the segment by what its
/// Execution data items said, from the summaries.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Segment {
    /// Its start (UTC).
    pub from: DateTime<Utc>,
    /// Its end (UTC): the next one's start, or now.
    pub to: DateTime<Utc>,
    /// Seconds `ACTIVE`.
    pub running: f64,
    /// Seconds in another known state than the stopped ones (`READY`, `WAIT`,
    /// `OPTIONAL_STOP`, `PROGRAM_COMPLETED`, …).
    pub idle: f64,
    /// Seconds `STOPPED`, `INTERRUPTED`, `FEED_HOLD` or `PROGRAM_STOPPED`.
    pub stopped: f64,
    /// Seconds without a known Execution state.
    pub no_data: f64,
}

impl Segment {
    /// What most of the segment was: `running`, `idle`, `stopped` or `no_data` (ties to
    /// the first of these).
    pub fn dominant(&self) -> &'static str {
        let mut best = ("running", self.running);
        for (name, v) in [
            ("idle", self.idle),
            ("stopped", self.stopped),
            ("no_data", self.no_data),
        ] {
            if v > best.1 {
                best = (name, v);
            }
        }
        best.0
    }
}

/// The most devices a report draws a state timeline for: each segment is a summary
/// question over every device, and a plant of thousands reads its figures without it.
pub const MAX_TIMELINE_DEVICES: usize = 200;

/// The most segments of a timeline.
pub const MAX_SEGMENTS: i64 = 60;

/// The segments' length for a window of `minutes`: the shortest of 1, 2, 5, 10, 15 and
/// 30 min, 1, 2, 3, 6 and 12 h, a day and a week (whole summary periods) that cuts it in
/// at most [`MAX_SEGMENTS`]; `None` for a window a week's segments do not fit.
pub fn segment_minutes(minutes: i64) -> Option<i64> {
    [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1_440, 10_080]
        .into_iter()
        .find(|step| (minutes + step - 1) / step <= MAX_SEGMENTS)
}

/// `execution` (seconds per state) and `window` seconds as a segment's figures.
fn segment(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    execution: &BTreeMap<String, f64>,
    known: f64,
) -> Segment {
    let (mut running, mut idle, mut stopped) = (0.0, 0.0, 0.0);
    for (state, v) in execution {
        match state.as_str() {
            "ACTIVE" => running += v,
            "UNAVAILABLE" => {}
            "STOPPED" | "INTERRUPTED" | "FEED_HOLD" | "PROGRAM_STOPPED" => stopped += v,
            _ => idle += v,
        }
    }
    let seconds = (to - from).as_seconds_f64();
    Segment {
        from,
        to,
        running,
        idle,
        stopped,
        no_data: (seconds - known).max(0.0),
    }
}

/// A group's report: a cell's or the plant's.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupReport {
    /// The cell's name (`Unassigned` for devices in none; `Plant` for the plant).
    pub name: String,
    /// The cell's line, if any.
    pub line: Option<String>,
    /// How many devices.
    pub devices: usize,
    /// OEE from the devices' summed times and quantities.
    pub oee: Oee,
    /// The devices' downtime, summed by cause.
    pub downtime: Pareto,
}

/// A report over one window.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The window's start (UTC).
    pub from: DateTime<Utc>,
    /// The window's end (UTC, exclusive).
    pub to: DateTime<Utc>,
    /// Where the figures end: the window's end, or now if that is earlier.
    pub until: DateTime<Utc>,
    /// The plant's time zone.
    pub time_zone: String,
    /// Whether planned time comes from shifts (else every minute is planned).
    pub shifts: bool,
    /// The shift, when the window is one.
    pub shift: Option<String>,
    /// Planned seconds in the window up to `until`.
    pub planned_seconds: f64,
    /// The plant.
    pub plant: GroupReport,
    /// Each cell with devices.
    pub cells: Vec<GroupReport>,
    /// Each device the viewer may see.
    pub devices: Vec<DeviceReport>,
    /// Whether the devices' timelines were left out (more than
    /// [`MAX_TIMELINE_DEVICES`]).
    pub timeline_omitted: bool,
}

/// The report of `[from, to)` for the devices `scope` lets the viewer see. Times are
/// rounded down to the minute; nothing after now is counted. With `timeline`, each
/// device's state timeline too (a summary question per segment).
///
/// # Errors
/// The store's.
pub async fn report(
    app: &App,
    scope: &Scope,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    shift: Option<String>,
    timeline: bool,
) -> Result<Report, StoreError> {
    let calendar = calendar();
    let now = Utc::now();
    let until = to.min(now).max(from);
    let devices = app.devices_for(scope).await?;
    let keys: Vec<DeviceKey> = devices.iter().map(|d| d.key()).collect();
    let planned = calendar.planned(from, until);
    let planned_seconds: f64 = planned.iter().map(|r| r.seconds() as f64).sum();
    let window = MinuteRange::new(from, until);
    let window_seconds = window.seconds() as f64;
    // Open states count until now for an agent answering now, until its last answer for
    // one that does not, and until its last observation for one not followed.
    let mut agent_until = BTreeMap::new();
    for h in app.health.all() {
        let until = match (h.unreachable_since, h.last_contact) {
            (None, _) => now,
            (Some(since), last) => last.unwrap_or(since),
        };
        agent_until.insert(h.source.clone(), until);
    }
    let ask = |ranges: Vec<MinuteRange>| {
        let mut q = SummaryQuery::new(ranges, now);
        q.devices = Some(keys.clone());
        q.agent_until = agent_until.clone();
        q.unlisted_until_last = true;
        q
    };
    let by_device = |totals: Vec<SummaryTotal>| {
        let mut out: BTreeMap<(String, String), Vec<SummaryTotal>> = BTreeMap::new();
        for t in totals {
            out.entry((t.agent.clone(), t.device.clone()))
                .or_default()
                .push(t);
        }
        out
    };
    let planned_totals = if planned.is_empty() || keys.is_empty() {
        BTreeMap::new()
    } else {
        by_device(app.store.summary(&ask(planned)).await?)
    };
    let window_totals = if window.seconds() == 0 || keys.is_empty() {
        BTreeMap::new()
    } else {
        by_device(app.store.summary(&ask(vec![window])).await?)
    };
    let layout = app.layout();
    let mut reports = Vec::with_capacity(devices.len());
    let mut inputs: Vec<(Option<CellOf>, OeeInputs, ParetoSum)> = Vec::new();
    for d in devices.iter() {
        let k = (d.agent.clone(), d.name.clone());
        let empty = Vec::new();
        let in_plan = DeviceFigures::from_totals(planned_totals.get(&k).unwrap_or(&empty));
        let in_window = DeviceFigures::from_totals(window_totals.get(&k).unwrap_or(&empty));
        let record = app.records.get(&d.agent, &d.name);
        let device_ideal = record.as_ref().and_then(|r| r.ideal_cycle_time);
        let learned = learned_cycle(&d.agent, &d.name);
        let ideal = IdealCycleTimes {
            device: device_ideal.or(learned.map(|l| l.seconds)),
            device_learned: device_ideal.is_none() && learned.is_some(),
            programs: IDEAL_CYCLE_TIMES.get(),
        };
        let input = in_plan.oee_inputs(planned_seconds, ideal);
        let losses = losses(&in_plan, planned_seconds);
        let mut utilization: Vec<Share> = in_window
            .execution
            .iter()
            .filter(|(s, v)| s.as_str() != "UNAVAILABLE" && **v > 0.0)
            .map(|(s, v)| Share {
                state: s.clone(),
                seconds: *v,
                share: if window_seconds > 0.0 {
                    v / window_seconds
                } else {
                    0.0
                },
            })
            .collect();
        let no_data = (window_seconds - in_window.known_seconds()).max(0.0);
        if no_data > 0.0 {
            utilization.push(Share {
                state: "NO DATA".into(),
                seconds: no_data,
                share: if window_seconds > 0.0 {
                    no_data / window_seconds
                } else {
                    0.0
                },
            });
        }
        utilization.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
        let (cell, line) = match layout.place(&d.agent, &d.name) {
            Placement::Cell(i) => layout.cells().get(i).map_or((None, None), |c| {
                (Some(c.name().to_owned()), c.line().map(str::to_owned))
            }),
            Placement::Unassigned => (None, None),
        };
        inputs.push((
            cell.clone().map(|c| (c, line.clone())),
            input.clone(),
            losses.clone(),
        ));
        reports.push(DeviceReport {
            agent: crate::redact::redacted(&d.agent).into_owned(),
            agent_key: d.agent.clone(),
            device: d.name.clone(),
            display_name: record.and_then(|r| r.display_name),
            cell,
            line,
            ideal_cycle_time: input.ideal_cycle_time,
            programs: input.programs,
            learned_cycle: learned,
            oee: oee(&[input]),
            utilization,
            fault_seconds: in_window.fault_seconds,
            warning_seconds: in_window.warning_seconds,
            parts: in_window.parts,
            downtime: losses.pareto(),
            timeline: Vec::new(),
        });
    }
    // The state timeline: a summary question per segment, for a bounded number of
    // devices.
    // Whole minutes, as the summaries count: the window's ends rounded down; the minute
    // under way is not drawn.
    let whole = MinuteRange::new(from, until);
    let span = MinuteRange::new(from, to);
    if timeline && !keys.is_empty() && keys.len() <= MAX_TIMELINE_DEVICES && whole.seconds() > 0 {
        if let Some(step) = segment_minutes(span.seconds() / 60) {
            let mut a = whole.start();
            while a < whole.end() {
                let range =
                    MinuteRange::new(a, (a + chrono::Duration::minutes(step)).min(whole.end()));
                let totals = by_device(app.store.summary(&ask(vec![range])).await?);
                for (d, r) in devices.iter().zip(reports.iter_mut()) {
                    let k = (d.agent.clone(), d.name.clone());
                    let empty = Vec::new();
                    let f = DeviceFigures::from_totals(totals.get(&k).unwrap_or(&empty));
                    r.timeline.push(segment(
                        range.start(),
                        range.end(),
                        &f.execution,
                        f.known_seconds(),
                    ));
                }
                a = range.end();
            }
        }
    }
    let mut groups: BTreeMap<(Option<String>, String), (Vec<OeeInputs>, ParetoSum)> =
        BTreeMap::new();
    let mut plant_losses = ParetoSum::default();
    for (cell, input, losses) in &inputs {
        let (name, line) = match cell {
            Some((c, l)) => (c.clone(), l.clone()),
            None => ("Unassigned".to_owned(), None),
        };
        let group = groups.entry((line, name)).or_default();
        group.0.push(input.clone());
        group.1.merge(losses);
        plant_losses.merge(losses);
    }
    let cells = groups
        .into_iter()
        .map(|((line, name), (inputs, losses))| GroupReport {
            name,
            line,
            devices: inputs.len(),
            oee: oee(&inputs),
            downtime: losses.pareto(),
        })
        .collect();
    let all: Vec<OeeInputs> = inputs.into_iter().map(|(_, i, _)| i).collect();
    Ok(Report {
        from,
        to,
        until,
        time_zone: calendar.time_zone().name().to_owned(),
        shifts: calendar.has_shifts(),
        shift,
        planned_seconds,
        plant: GroupReport {
            name: "Plant".into(),
            line: None,
            devices: all.len(),
            oee: oee(&all),
            downtime: plant_losses.pareto(),
        },
        cells,
        timeline_omitted: timeline && reports.len() > MAX_TIMELINE_DEVICES,
        devices: reports,
    })
}

/// Cause of planned time not running and not explained by a stop's cause: known, not
/// `ACTIVE`, yet without a cause (summaries kept before causes were, until
/// `factorydash summaries rebuild`).
pub const UNATTRIBUTED: &str = "UNATTRIBUTED";

/// One device's downtime over planned time: its stops' causes, the planned time without
/// data, and any stopped time without a cause ([`UNATTRIBUTED`]), so that the rows add
/// up to planned time minus run time.
fn losses(planned: &DeviceFigures, planned_seconds: f64) -> ParetoSum {
    let mut sum = ParetoSum::default();
    let known = planned.known_seconds();
    let run = planned.execution_seconds("ACTIVE");
    let no_data = (planned_seconds - known).max(0.0);
    sum.add(&planned.downtime, &planned.stops, no_data);
    let attributed: f64 = planned.downtime.values().sum();
    let unattributed = known - run - attributed;
    // Rounding of fractional seconds is not a cause.
    if unattributed > 1.0 {
        *sum.downtime.entry(UNATTRIBUTED.to_owned()).or_default() += unattributed;
    }
    sum
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn segments_are_whole_periods_at_most_sixty() {
        assert_eq!(segment_minutes(60), Some(1));
        assert_eq!(segment_minutes(61), Some(2));
        assert_eq!(segment_minutes(8 * 60), Some(10));
        assert_eq!(segment_minutes(24 * 60), Some(30));
        assert_eq!(segment_minutes(7 * 24 * 60), Some(180));
        assert_eq!(segment_minutes(31 * 24 * 60), Some(1_440));
        assert_eq!(segment_minutes(400 * 24 * 60), Some(10_080));
        assert_eq!(segment_minutes(500 * 24 * 60), None);
    }

    #[test]
    fn a_segment_sorts_states_and_says_what_most_of_it_was() {
        let a = Utc.with_ymd_and_hms(2026, 3, 2, 6, 0, 0).unwrap();
        let states: BTreeMap<String, f64> = [
            ("ACTIVE", 100.0),
            ("READY", 50.0),
            ("FEED_HOLD", 60.0),
            ("INTERRUPTED", 70.0),
            ("UNAVAILABLE", 500.0),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let g = segment(a, a + chrono::Duration::minutes(10), &states, 280.0);
        assert_eq!(
            (g.running, g.idle, g.stopped, g.no_data),
            (100.0, 50.0, 130.0, 320.0)
        );
        assert_eq!(g.dominant(), "no_data");
        let g = segment(a, a + chrono::Duration::minutes(10), &states, 600.0);
        assert_eq!(g.dominant(), "stopped");
    }
}
