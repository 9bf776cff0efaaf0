//! Summaries kept as data arrives: per device and per period (a minute, an hour and a day,
//! all UTC-aligned), the seconds each Execution, Availability and ControllerMode state was
//! held, the seconds a Fault or a Warning was active, and the parts counted. Seconds are
//! kept per hour and day, and within the hour as ramps ([`Resolution::Ramp`]: two cells
//! per interval whatever minutes it spans); counts per minute, hour and day. A store adds
//! what each batch contributes in the same transaction as its observations, so a question
//! over a month reads a few hundred rows instead of every observation of the month.
//!
//! The fold: [`DeviceFold`] takes a device's [`Held`] states (what each tracked data item
//! has held since when, kept by the store beside the summary) and the device's newly
//! stored observations in sequence order, and gives the [`Cell`]s to add and the held
//! states to keep. An interval is closed (and counted) when the next different value
//! arrives; the interval still open is counted when a question is asked
//! ([`open_totals`]), up to a time the caller gives (the agent's last contact, so a
//! silent agent does not keep a machine ACTIVE for ever).
//!
//! What counts (MTConnect Part 2, "DataItem Types for Event" and "Condition"; Part 3,
//! "Condition"):
//! - Events `Execution`, `Availability` and `ControllerMode`: seconds per state, per data
//!   item (a device with two paths has two Execution data items; the reader picks one).
//!   `UNAVAILABLE` is a state like the others.
//! - Event `PartCount` with `subType` `ALL` (or none), `GOOD` or `BAD`: the count's increase
//!   in the minute it was observed; a count that goes down was reset, and its new value is
//!   what was made since the reset.
//! - Conditions: the seconds during which any of the device's Condition data items had a
//!   native code (or none) active at `FAULT`, and the same for `WARNING` (Part 3: a
//!   `NORMAL` without a native code clears every code of its data item; with one, that
//!   code; `UNAVAILABLE` clears them all).
//! - Downtime: a stop is an interval in which an Execution data item holds a known state
//!   other than `ACTIVE` (`UNAVAILABLE` is no data, not a stop). Each stop has one cause,
//!   fixed when it begins ([`stop_cause`]: an emergency stop, else the newest Fault's
//!   native code, else the Execution state and a non-automatic `ControllerMode`; a Fault,
//!   an emergency stop or a mode reported up to [`CAUSE_GRACE`] after the stop began, while
//!   it lasts, still counts: agents report them and the Execution change in either order). Its seconds are counted per cause ([`Measure::Downtime`]) and the stop
//!   once, in the minute it began ([`Measure::Stops`]): a Pareto of downtime by time and
//!   by count over any window is a summary question.
//!
//! - Parts per program: each part count's increase is also counted under the program
//!   held then (`Program` of subType `MAIN` or none; [`Measure::ProgramParts`]), so that
//!   performance can weigh each program's parts by its own ideal cycle time.
//!
//! Order: observations are taken in sequence order (MTConnect Part 1: the sequence
//! orders an agent's observations). One stamped slightly before the state it ends began
//! (up to [`CLOCK_SKEW`]) takes effect when that state began; one stamped further back,
//! or more than [`MAX_INTERVAL`] after it, starts a new timeline and the state it ends is
//! not counted: the agent's clock jumped (the NIST test bed's agent stamps its own
//! `UNAVAILABLE`s with its start time among adapter data months older). Charts, which
//! order by timestamp, agree wherever timestamps follow sequences.
//!
//! Bounds: a state held longer than [`MAX_INTERVAL`] is not counted (no data), and an
//! open state counts for at most [`MAX_INTERVAL`]; observations stamped more than a day
//! after the time given as now are not counted; both, and a clock jumping, are reported
//! in [`FoldOutput::skipped`]; a device keeps at most [`MAX_ACTIVE_CODES`] active
//! condition codes.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde::Serialize;

use crate::{Category, ConditionLevel, Observation, ParseEnumError};

/// The length of a summary period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Resolution {
    /// 60 seconds.
    Minute,
    /// 3,600 seconds.
    Hour,
    /// 86,400 seconds (a UTC day).
    Day,
    /// Not a period: a change of the rate at which a time measure counts, at an instant
    /// within an hour. A cell's `period` is the instant in Unix **microseconds** (UTC)
    /// and its value the change (+1 where an interval begins, −1 where it ends), so an
    /// interval writes two cells at the finest level, whatever minutes it spans; the
    /// seconds within a part of an hour are summed from the hour's ramps ([`RampPiece`]).
    /// An interval crossing an hour begins again at the next hour's start (no ramp
    /// carries across an hour). Time measures are kept as ramps, hours and days;
    /// point measures (parts, stops) as minutes, hours and days.
    Ramp,
}

/// The periodic resolutions, finest first: each interval is added to the hours and days,
/// and a point (a part, a stop) to all three.
pub const RESOLUTIONS: [Resolution; 3] = [Resolution::Minute, Resolution::Hour, Resolution::Day];

impl Resolution {
    /// The period's length in seconds; for [`Resolution::Ramp`] the hour its cells count
    /// within (3,600).
    pub fn seconds(self) -> i64 {
        match self {
            Resolution::Minute => 60,
            Resolution::Hour | Resolution::Ramp => 3_600,
            Resolution::Day => 86_400,
        }
    }

    /// The value a store keeps in its `resolution` column: the period's length in seconds,
    /// 0 for [`Resolution::Ramp`].
    pub fn code(self) -> i64 {
        match self {
            Resolution::Ramp => 0,
            r => r.seconds(),
        }
    }

    /// The start (Unix seconds, UTC) of the period holding `t` (Unix seconds).
    pub fn floor(self, t: i64) -> i64 {
        t.div_euclid(self.seconds()) * self.seconds()
    }

    fn ceil(self, t: i64) -> i64 {
        -self.floor(-t)
    }
}

/// What a summary cell counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Measure {
    /// Seconds per `Execution` state.
    Execution,
    /// Seconds per `Availability` state.
    Availability,
    /// Seconds per `ControllerMode` state.
    ControllerMode,
    /// Seconds with a Fault active (state empty, data item empty: the device's).
    Fault,
    /// Seconds with a Warning active (state empty, data item empty: the device's).
    Warning,
    /// Parts counted; the state is the `PartCount`'s subType (`ALL`, `GOOD`, `BAD`).
    PartCount,
    /// Seconds stopped, per stop cause (the state; see [`stop_cause`]), of an Execution
    /// data item: a stop is an interval in a known Execution state other than `ACTIVE`.
    Downtime,
    /// Stops begun, per cause, counted in the minute each began.
    Stops,
    /// Parts counted per program: the state is `<subType>|<program>` (the `Program`
    /// event of subType `MAIN`, or none, held when the count rose; empty without one).
    ProgramParts,
}

impl Measure {
    /// The name stores keep: `EXECUTION`, `AVAILABILITY`, `CONTROLLER_MODE`, `FAULT`,
    /// `WARNING`, `PART_COUNT`, `DOWNTIME`, `STOPS`, `PROGRAM_PARTS`.
    pub fn as_str(self) -> &'static str {
        match self {
            Measure::Execution => "EXECUTION",
            Measure::Availability => "AVAILABILITY",
            Measure::ControllerMode => "CONTROLLER_MODE",
            Measure::Fault => "FAULT",
            Measure::Warning => "WARNING",
            Measure::PartCount => "PART_COUNT",
            Measure::Downtime => "DOWNTIME",
            Measure::Stops => "STOPS",
            Measure::ProgramParts => "PROGRAM_PARTS",
        }
    }

    /// Whether the cell holds seconds (every measure but [`Measure::PartCount`],
    /// [`Measure::Stops`] and [`Measure::ProgramParts`], which count).
    pub fn is_time(self) -> bool {
        !matches!(
            self,
            Measure::PartCount | Measure::Stops | Measure::ProgramParts
        )
    }

    /// Whether the cell's state is an Event's state (Execution, Availability,
    /// ControllerMode).
    pub fn is_state(self) -> bool {
        matches!(
            self,
            Measure::Execution | Measure::Availability | Measure::ControllerMode
        )
    }

    /// The state measure an Event's type (element-name form, e.g. `Execution`) feeds.
    fn of_state_kind(kind: &str) -> Option<Measure> {
        match kind {
            "Execution" => Some(Measure::Execution),
            "Availability" => Some(Measure::Availability),
            "ControllerMode" => Some(Measure::ControllerMode),
            _ => None,
        }
    }
}

impl fmt::Display for Measure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Measure {
    type Err = ParseEnumError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "EXECUTION" => Measure::Execution,
            "AVAILABILITY" => Measure::Availability,
            "CONTROLLER_MODE" => Measure::ControllerMode,
            "FAULT" => Measure::Fault,
            "WARNING" => Measure::Warning,
            "PART_COUNT" => Measure::PartCount,
            "DOWNTIME" => Measure::Downtime,
            "STOPS" => Measure::Stops,
            "PROGRAM_PARTS" => Measure::ProgramParts,
            _ => {
                return Err(ParseEnumError {
                    what: "measure",
                    found: s.to_owned(),
                })
            }
        })
    }
}

/// The longest interval counted: 31 days. A state held longer without a new observation
/// is not counted ("no data"); a state still open counts for its first 31 days.
pub const MAX_INTERVAL: Duration = Duration::days(31);

/// The most active condition codes a device's fold keeps; more are not tracked (and
/// reported in [`FoldOutput::skipped`]).
pub const MAX_ACTIVE_CODES: usize = 256;

/// The largest part count taken: a counter beyond it is not a count of parts (and its
/// sums would overflow to infinity).
pub const MAX_PART_COUNT: f64 = 1e12;

/// The most cells one fold (a device's part of a batch) adds: about 160 intervals of 31
/// days, or 50,000 of a few minutes (a stopped interval counts twice: its Execution state
/// and its downtime). Intervals past it are not counted (reported in [`FoldOutput::skipped`]): a
/// hostile agent alternating states a month apart cannot make a batch cost more.
pub const MAX_FOLD_CELLS: usize = 250_000;

/// How far past the caller's "now" an observation may be stamped and still be counted.
pub const FUTURE_TOLERANCE: Duration = Duration::days(1);

/// How far an observation may be stamped before the state it ends began and still be
/// taken in order (at that state's start): clocks of adapters and agents differ by
/// seconds. Further back, the agent's clock went back (an agent replaying old adapter
/// data after its own start, as the NIST test bed's does): a new timeline begins at the
/// observation, and the state it ends is not counted.
pub const CLOCK_SKEW: Duration = Duration::minutes(5);

/// How soon after a stop begins a Fault, an emergency stop or a ControllerMode may still
/// decide its cause.
pub const CAUSE_GRACE: Duration = Duration::seconds(10);

/// The longest native code or state kept in a stop's cause (longer ones are cut, on a
/// character boundary): causes are summary states, one row per cause and period.
pub const MAX_CAUSE_PART: usize = 48;

/// The longest program name kept for [`Measure::ProgramParts`] (longer ones are cut, on
/// a character boundary).
pub const MAX_PROGRAM_NAME: usize = 64;

fn cut(text: &str) -> &str {
    cut_to(text, MAX_CAUSE_PART)
}

fn cut_to(text: &str, chars: usize) -> &str {
    match text.char_indices().nth(chars) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

/// Whether an Execution state is a stop: known and not `ACTIVE`.
pub fn is_stopped(state: &str) -> bool {
    !matches!(state, "ACTIVE" | "UNAVAILABLE")
}

/// How strong a stop's cause is: 2 for an emergency stop, 1 for a Fault, 0 for an
/// Execution state. A cause is revised only to one at least as strong.
pub fn cause_rank(cause: &str) -> u8 {
    if cause == "EMERGENCY_STOP" {
        2
    } else if is_alarm_cause(cause) {
        1
    } else {
        0
    }
}

/// Whether a stop's cause is an alarm (a Fault or an emergency stop) rather than the
/// Execution state the stop began in.
pub fn is_alarm_cause(cause: &str) -> bool {
    cause == "EMERGENCY_STOP" || cause == "FAULT" || cause.starts_with("FAULT ")
}

/// The cause of a stop beginning in Execution state `state`, from what was active then:
/// `EMERGENCY_STOP` when an `EmergencyStop` was `TRIGGERED`; else `FAULT <nativeCode>`
/// for the newest Fault active (`FAULT` without a code); else the Execution state, with
/// the `ControllerMode` in parentheses when it is known and not `AUTOMATIC` (e.g.
/// `READY (MANUAL)`: a machine being set up). Codes and states are cut to
/// [`MAX_CAUSE_PART`] characters.
pub fn stop_cause(
    state: &str,
    emergency_stop: bool,
    fault: Option<&str>,
    controller_mode: Option<&str>,
) -> String {
    if emergency_stop {
        return "EMERGENCY_STOP".into();
    }
    match fault {
        Some("") => return "FAULT".into(),
        Some(code) => return format!("FAULT {}", cut(code)),
        None => {}
    }
    match controller_mode {
        Some(mode) if !matches!(mode, "AUTOMATIC" | "UNAVAILABLE") => {
            format!("{} ({})", cut(state), cut(mode))
        }
        _ => cut(state).to_owned(),
    }
}

/// The time an observation stamped `t` takes effect after a state that began at
/// `since`: `t`, or `since` if `t` is slightly before it; `None` when the clock went back
/// further than [`CLOCK_SKEW`] or ahead further than [`MAX_INTERVAL`] (a new timeline).
fn in_order(since: DateTime<Utc>, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if t - since > MAX_INTERVAL {
        None
    } else if t >= since {
        Some(t)
    } else if since - t <= CLOCK_SKEW {
        Some(since)
    } else {
        None
    }
}

/// What one tracked key of a device has held since when: a state measure's data item
/// (`EXECUTION|<dataItemId>`), a part count's (`PART_COUNT|<dataItemId>|<subType>`, with
/// its last count), an active condition code (`COND|<dataItemId>|<nativeCode>`, state the
/// level) and the device's Fault and Warning (`FAULT`, `WARNING`, present while active).
/// Stores keep these rows per (agent, device) beside the summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    /// The key (see above).
    pub key: String,
    /// The state held (`UNAVAILABLE` included), the level of a condition code, or empty.
    pub state: String,
    /// Since when (UTC).
    pub since: DateTime<Utc>,
    /// A part count's last count.
    pub count: Option<f64>,
    /// Up to when this key was counted, where that is not `since` (after the agent's
    /// clock jumped): nothing before it is counted again. `None`: up to `since`.
    pub counted: Option<DateTime<Utc>>,
}

/// One summary cell: a period of a device's measure and state.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cell {
    /// The period's length.
    pub resolution: Resolution,
    /// The period's start, Unix seconds (UTC); for [`Resolution::Ramp`] the ramp's
    /// instant, Unix microseconds (UTC).
    pub period: i64,
    /// The data item (its `dataItemId`); empty for the device's Fault and Warning.
    pub item: String,
    /// What is counted.
    pub measure: Measure,
    /// The state (`ACTIVE`, `UNAVAILABLE`, …), the part count's subType, or empty.
    pub state: String,
}

/// What a batch adds to a device's summary, and the held states to keep.
#[derive(Debug, Default)]
pub struct FoldOutput {
    /// The cells to add to (seconds, or parts for [`Measure::PartCount`]), at every
    /// resolution.
    pub cells: BTreeMap<Cell, f64>,
    /// The held states to write (insert or replace by key).
    pub put: Vec<Held>,
    /// The keys of held states to delete.
    pub delete: Vec<String>,
    /// Observations not counted: out of order, stamped in the future, beyond
    /// [`MAX_ACTIVE_CODES`].
    pub skipped: u64,
}

/// A device's fold over its newly stored observations (see the module's docs).
#[derive(Debug)]
pub struct DeviceFold {
    held: BTreeMap<String, Held>,
    before: BTreeMap<String, Held>,
    cells: BTreeMap<Cell, f64>,
    skipped: u64,
    latest_allowed: DateTime<Utc>,
    /// Cells the fold may still add (see [`MAX_FOLD_CELLS`]).
    budget: usize,
    /// A rebuild's start ([`DeviceFold::seed`]): stops begun before it keep their cause.
    not_before: DateTime<Utc>,
    /// Each stop seen, when asked for ([`DeviceFold::log_stops`]).
    stop_log: Option<Vec<StopRecord>>,
    /// Whether a stop was left out of the full log.
    stop_log_full: bool,
}

/// What is active on a device that decides a stop's cause ([`stop_cause`]).
struct Active<'a> {
    /// Whether an `EmergencyStop` is `TRIGGERED`.
    emergency_stop: bool,
    /// The native codes of the active Faults and since when, newest first (equal times
    /// in key order).
    faults: Vec<(&'a str, DateTime<Utc>)>,
    /// The first `ControllerMode` data item's state, if any.
    mode: Option<&'a str>,
}

/// The most stops a fold's log keeps ([`DeviceFold::log_stops`]); later ones are left
/// out and the log is marked incomplete.
pub const MAX_STOP_LOG: usize = 5_000;

/// The most active Fault codes a [`StopRecord`] lists.
pub const MAX_STOP_FAULTS: usize = 8;

/// One stop as a fold saw it: when it began and ended, and what was active when it
/// began (after [`CAUSE_GRACE`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StopRecord {
    /// The Execution data item.
    pub item: String,
    /// When it began (UTC).
    pub began: DateTime<Utc>,
    /// When it ended (`ACTIVE` or `UNAVAILABLE`), if it has.
    pub ended: Option<DateTime<Utc>>,
    /// The Execution state it began in.
    pub state: String,
    /// Its cause ([`stop_cause`]).
    pub cause: String,
    /// The program held (`Program`, subType `MAIN` or none), if any.
    pub program: Option<String>,
    /// The `ControllerMode` held, if known.
    pub controller_mode: Option<String>,
    /// The native codes of the Faults active (at most [`MAX_STOP_FAULTS`]).
    pub faults: Vec<String>,
    /// Whether an `EmergencyStop` was `TRIGGERED`.
    pub emergency_stop: bool,
}

/// Whether a `PartCount` subType is counted, and under which name.
fn part_sub_type(sub_type: Option<&str>) -> Option<&'static str> {
    match sub_type {
        None | Some("ALL") => Some("ALL"),
        Some("GOOD") => Some("GOOD"),
        Some("BAD") => Some("BAD"),
        _ => None,
    }
}

/// Whether `o` feeds a summary: what a store checks before it loads a device's fold.
pub fn is_tracked(o: &Observation) -> bool {
    match o.category {
        Category::Condition => true,
        Category::Event => {
            Measure::of_state_kind(&o.kind).is_some()
                || o.kind == "EmergencyStop"
                || (o.kind == "Program" && matches!(o.sub_type.as_deref(), None | Some("MAIN")))
                || (o.kind == "PartCount" && part_sub_type(o.sub_type.as_deref()).is_some())
        }
        Category::Sample => false,
    }
}

impl DeviceFold {
    /// A fold starting from the device's held states; `now` bounds the timestamps counted
    /// (see [`FUTURE_TOLERANCE`]).
    pub fn new(held: impl IntoIterator<Item = Held>, now: DateTime<Utc>) -> Self {
        let held: BTreeMap<String, Held> = held.into_iter().map(|h| (h.key.clone(), h)).collect();
        DeviceFold {
            before: held.clone(),
            held,
            cells: BTreeMap::new(),
            skipped: 0,
            latest_allowed: now + FUTURE_TOLERANCE,
            budget: MAX_FOLD_CELLS,
            not_before: DateTime::<Utc>::MIN_UTC,
            stop_log: None,
            stop_log_full: false,
        }
    }

    /// Takes one observation of the device (in sequence order); untracked ones are
    /// ignored.
    pub fn observe(&mut self, o: &Observation) {
        if !is_tracked(o) {
            return;
        }
        let t = o.timestamp;
        if t > self.latest_allowed {
            self.skipped += 1;
            return;
        }
        match o.category {
            Category::Condition => self.condition(o),
            _ if o.kind == "EmergencyStop" => self.emergency_stop(o),
            _ if o.kind == "Program" => self.program(o),
            _ => match Measure::of_state_kind(&o.kind) {
                Some(measure) => self.state(measure, o),
                None => self.part_count(o),
            },
        }
    }

    fn state(&mut self, measure: Measure, o: &Observation) {
        let key = format!("{}|{}", measure.as_str(), o.data_item_id);
        let state = o.value.to_string();
        let changed = self.held.get(&key).is_none_or(|h| h.state != state);
        self.transition(key, &o.data_item_id, measure, state, o.timestamp);
        match measure {
            Measure::Execution => self.stop(&o.data_item_id),
            Measure::ControllerMode if changed => self.revise_causes(o.timestamp),
            _ => {}
        }
    }

    /// Execution data item `item` has taken a new state (held under `EXECUTION|item`): a
    /// stop begins (its cause kept under `DOWNTIME|item`, counted once in
    /// [`Measure::Stops`] in the minute the state took effect), goes on under the cause it
    /// began with, or ends (at `ACTIVE`, or at `UNAVAILABLE`: no data is not downtime).
    /// Its seconds are the Execution intervals' own ([`DeviceFold::transition`]).
    fn stop(&mut self, item: &str) {
        let Some(execution) = self.held.get(&format!("EXECUTION|{item}")) else {
            return;
        };
        let (state, since) = (execution.state.clone(), execution.since);
        // A timeline replayed after the agent's clock went back: its stops were counted.
        let replayed = execution.counted.is_some_and(|w| w > since);
        let key = format!("DOWNTIME|{item}");
        let in_stop = self.held.contains_key(&key);
        match (is_stopped(&state), in_stop) {
            (false, true) => {
                self.held.remove(&key);
                if let Some(log) = &mut self.stop_log {
                    if let Some(r) = log.iter_mut().rev().find(|r| r.item == item) {
                        r.ended.get_or_insert(since);
                    }
                }
            }
            (true, false) => {
                let cause = self.stop_cause(&state);
                if !replayed {
                    add_at(&mut self.cells, item, Measure::Stops, &cause, since, 1.0);
                }
                match self.stop_log.as_ref().map(Vec::len) {
                    Some(n) if n < MAX_STOP_LOG => {
                        let record = self.stop_record(item, since, &state, &cause);
                        if let Some(log) = &mut self.stop_log {
                            log.push(record);
                        }
                    }
                    Some(_) => self.stop_log_full = true,
                    None => {}
                }
                self.held.insert(
                    key.clone(),
                    Held {
                        key,
                        state: cause,
                        since,
                        count: None,
                        counted: None,
                    },
                );
            }
            _ => {}
        }
    }

    /// The state Execution data item `item` holds (empty if none).
    fn execution_state(&self, item: &str) -> String {
        self.held
            .get(&format!("EXECUTION|{item}"))
            .map(|h| h.state.clone())
            .unwrap_or_default()
    }

    /// Keeps a log of each stop from now on ([`DeviceFold::take_stop_log`]), beginning
    /// with the stops under way (what was active when they began is not known: what is
    /// active now is shown).
    pub fn log_stops(&mut self) {
        if self.stop_log.is_some() {
            return;
        }
        let under_way: Vec<StopRecord> = self
            .prefixed("DOWNTIME|")
            .map(|(k, h)| {
                let item = k.split_once('|').map_or("", |(_, i)| i);
                let state = self.execution_state(item);
                self.stop_record(item, h.since, &state, &h.state)
            })
            .collect();
        self.stop_log = Some(under_way);
    }

    /// The data items with a stop under way (an Execution data item's id each), by id.
    pub fn stops_under_way(&self) -> Vec<String> {
        self.prefixed("DOWNTIME|")
            .map(|(k, _)| k.split_once('|').map_or("", |(_, i)| i).to_owned())
            .collect()
    }

    /// Moves the start of the stop under way of Execution data item `item` back to
    /// `began`, when that is earlier: a fold seeded from the last observation before its
    /// start takes that observation for the stop's start, while the stop may have begun
    /// observations before it (`STOPPED`, then `READY`: one stop). Only when the stop
    /// began is changed, not what was counted nor its cause.
    pub fn backdate_stop(&mut self, item: &str, began: DateTime<Utc>) {
        if let Some(h) = self.held.get_mut(&format!("DOWNTIME|{item}")) {
            h.since = h.since.min(began);
        }
    }

    /// The stops logged, in the order they began, and whether every stop is there (at
    /// most [`MAX_STOP_LOG`]).
    pub fn take_stop_log(&mut self) -> (Vec<StopRecord>, bool) {
        let log = self.stop_log.take().unwrap_or_default();
        (log, !std::mem::take(&mut self.stop_log_full))
    }

    /// What was active at a stop's start, now.
    fn stop_record(
        &self,
        item: &str,
        began: DateTime<Utc>,
        state: &str,
        cause: &str,
    ) -> StopRecord {
        let active = self.active();
        StopRecord {
            item: item.to_owned(),
            began,
            ended: None,
            state: cut(state).to_owned(),
            cause: cause.to_owned(),
            program: Some(self.current_program())
                .filter(|p| !p.is_empty())
                .map(str::to_owned),
            controller_mode: active.mode.map(|m| cut(m).to_owned()),
            faults: active
                .faults
                .iter()
                .take(MAX_STOP_FAULTS)
                .map(|(code, _)| cut(code).to_owned())
                .collect(),
            emergency_stop: active.emergency_stop,
        }
    }

    /// The device's held keys starting with `prefix` (e.g. `COND|`), in key order.
    fn prefixed<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a String, &'a Held)> {
        self.held
            .range(prefix.to_owned()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
    }

    /// What is active now that decides a stop's cause.
    fn active(&self) -> Active<'_> {
        let mut faults: Vec<(&str, DateTime<Utc>)> = self
            .prefixed("COND|")
            .filter(|(_, h)| h.state == ConditionLevel::Fault.as_str())
            .map(|(k, h)| (k.splitn(3, '|').nth(2).unwrap_or(""), h.since))
            .collect();
        // Newest first; equal times in key order (stable).
        faults.sort_by_key(|(_, since)| std::cmp::Reverse(*since));
        Active {
            emergency_stop: self.prefixed("ESTOP|").any(|(_, h)| h.state == "TRIGGERED"),
            faults,
            mode: self
                .prefixed("CONTROLLER_MODE|")
                .next()
                .map(|(_, h)| h.state.as_str()),
        }
    }

    /// The cause of a stop beginning now in Execution state `state` (see [`stop_cause`]).
    fn stop_cause(&self, state: &str) -> String {
        let active = self.active();
        // The newest Fault; of several as new, the last in key order.
        let fault = active.faults.first().and_then(|(_, newest)| {
            active
                .faults
                .iter()
                .take_while(|(_, since)| since == newest)
                .last()
                .map(|(code, _)| *code)
        });
        stop_cause(state, active.emergency_stop, fault, active.mode)
    }

    /// What changes within [`CAUSE_GRACE`] of a stop's start, before or after it, while
    /// it lasts (a Fault or an emergency stop beginning, the ControllerMode changing)
    /// changes that stop's cause, never to a lesser one ([`cause_rank`]): an agent
    /// reports an alarm, a mode and the Execution change they go with in either order,
    /// often at one timestamp. Stops begun before a rebuild's start are left as they are.
    fn revise_causes(&mut self, t: DateTime<Utc>) {
        let open: Vec<(String, String, DateTime<Utc>)> = self
            .prefixed("DOWNTIME|")
            .filter(|(_, h)| h.since >= self.not_before && (t - h.since).abs() <= CAUSE_GRACE)
            .map(|(k, h)| (k.clone(), h.state.clone(), h.since))
            .collect();
        for (key, old, since) in open {
            let item = key.split_once('|').map_or("", |(_, i)| i).to_owned();
            // The state the stop began in: in a state's cause (`READY`, `READY (MANUAL)`);
            // an alarm cause can only give way to an alarm, which needs no state.
            let state = if cause_rank(&old) == 0 {
                old.split(" (").next().unwrap_or(&old).to_owned()
            } else {
                self.execution_state(&item)
            };
            let cause = self.stop_cause(&state);
            if cause == old || cause_rank(&cause) < cause_rank(&old) {
                continue;
            }
            add_at(&mut self.cells, &item, Measure::Stops, &old, since, -1.0);
            add_at(&mut self.cells, &item, Measure::Stops, &cause, since, 1.0);
            // The stop's seconds already counted (its Execution intervals closed since it
            // began, a few seconds at most) move to the new cause.
            // Counted from the stop's start, or from the watermark after a clock jump.
            let (counted_from, counted_to) = self
                .held
                .get(&format!("EXECUTION|{item}"))
                .map_or((since, since), |e| {
                    (e.counted.map_or(since, |w| w.max(since)), e.since)
                });
            if counted_to > counted_from {
                let mut moved = BTreeMap::new();
                add_interval(
                    &mut moved,
                    &item,
                    Measure::Downtime,
                    &old,
                    counted_from,
                    counted_to,
                );
                for (cell, v) in moved {
                    let to = Cell {
                        state: cause.clone(),
                        ..cell.clone()
                    };
                    *self.cells.entry(cell).or_default() -= v;
                    *self.cells.entry(to).or_default() += v;
                }
            }
            if self.stop_log.is_some() {
                let record = self.stop_record(&item, since, &state, &cause);
                if let Some(r) = self.stop_log.as_mut().and_then(|log| {
                    log.iter_mut()
                        .rev()
                        .find(|r| r.item == item && r.began == since)
                }) {
                    *r = StopRecord {
                        state: std::mem::take(&mut r.state),
                        ..record
                    };
                }
            }
            if let Some(h) = self.held.get_mut(&key) {
                h.state = cause;
            }
        }
    }

    /// The program (`Program`, subType `MAIN` or none) held now: parts counted are
    /// counted for it too ([`Measure::ProgramParts`]).
    fn program(&mut self, o: &Observation) {
        let key = format!("PROGRAM|{}", o.data_item_id);
        let value = o.value.to_string();
        let program = if value == "UNAVAILABLE" {
            ""
        } else {
            cut_to(value.trim(), MAX_PROGRAM_NAME)
        };
        if self.held.get(&key).is_some_and(|h| h.state == program) {
            return;
        }
        if !self.held.contains_key(&key) && self.prefixed("PROGRAM|").count() >= MAX_ACTIVE_CODES {
            self.skipped += 1;
            return;
        }
        self.held.insert(
            key.clone(),
            Held {
                key,
                state: program.to_owned(),
                since: o.timestamp,
                count: None,
                counted: None,
            },
        );
    }

    /// The program a device runs now: its first `Program` data item's, or empty.
    fn current_program(&self) -> &str {
        self.prefixed("PROGRAM|")
            .map(|(_, h)| h.state.as_str())
            .next()
            .unwrap_or("")
    }

    fn emergency_stop(&mut self, o: &Observation) {
        let key = format!("ESTOP|{}", o.data_item_id);
        let state = o.value.to_string();
        if self.held.get(&key).is_some_and(|h| h.state == state) {
            return;
        }
        if !self.held.contains_key(&key) && self.prefixed("ESTOP|").count() >= MAX_ACTIVE_CODES {
            self.skipped += 1;
            return;
        }
        let triggered = state == "TRIGGERED";
        self.held.insert(
            key.clone(),
            Held {
                key,
                state,
                since: o.timestamp,
                count: None,
                counted: None,
            },
        );
        if triggered {
            self.revise_causes(o.timestamp);
        }
    }

    /// Key `key` (of data item `item`, counted as `measure`) takes `state` at `t`: the
    /// state it held is counted up to `t` (from no earlier than what was counted before).
    /// A Fault or Warning key's states are `1` (active, counted) and `0`.
    fn transition(
        &mut self,
        key: String,
        item: &str,
        measure: Measure,
        state: String,
        t: DateTime<Utc>,
    ) {
        let Some(h) = self.held.get_mut(&key) else {
            // Nothing counted yet (1970: before any real observation).
            self.held.insert(
                key.clone(),
                Held {
                    key,
                    state,
                    since: t,
                    count: None,
                    counted: Some(DateTime::UNIX_EPOCH),
                },
            );
            return;
        };
        // Counted up to: `counted`, or the held state's start.
        let watermark = h.counted.unwrap_or(h.since);
        let Some(t) = in_order(h.since, t) else {
            // The agent's clock jumped: a new timeline begins at `t`, the state it ends is
            // not counted, and what was counted is not counted again.
            self.skipped += 1;
            h.counted = (watermark != t).then_some(watermark);
            h.state = state;
            h.since = t;
            return;
        };
        if h.state == state {
            return;
        }
        let from = watermark.max(h.since);
        let old = std::mem::replace(&mut h.state, state);
        let watermark = watermark.max(t);
        h.since = t;
        h.counted = (watermark != t).then_some(watermark);
        let counts = !matches!(measure, Measure::Fault | Measure::Warning) || old == "1";
        if counts && measure == Measure::Execution && is_stopped(&old) {
            // The stop's seconds are exactly its Execution intervals'.
            if let Some(cause) = self
                .held
                .get(&format!("DOWNTIME|{item}"))
                .map(|h| h.state.clone())
            {
                if self.budget > 0 {
                    self.budget = self.budget.saturating_sub(add_interval(
                        &mut self.cells,
                        item,
                        Measure::Downtime,
                        &cause,
                        from,
                        t,
                    ));
                    // Its Execution interval (below) is counted too: both or neither.
                    self.budget = self.budget.max(1);
                }
            }
        }
        if counts {
            let label = if measure.is_state() { old.as_str() } else { "" };
            if self.budget > 0 {
                self.budget = self.budget.saturating_sub(add_interval(
                    &mut self.cells,
                    item,
                    measure,
                    label,
                    from,
                    t,
                ));
            } else {
                self.skipped += 1;
            }
        }
    }

    fn part_count(&mut self, o: &Observation) {
        let Some(sub) = part_sub_type(o.sub_type.as_deref()) else {
            return;
        };
        let Some(count) = o
            .value
            .as_f64()
            .filter(|c| c.is_finite() && (0.0..=MAX_PART_COUNT).contains(c))
        else {
            // UNAVAILABLE or not a count: the last count stays the baseline.
            return;
        };
        let key = format!("PART_COUNT|{}|{sub}", o.data_item_id);
        match self.held.get_mut(&key) {
            Some(h) if in_order(h.since, o.timestamp).is_none() => {
                // The agent's clock went back: the count is the new baseline.
                self.skipped += 1;
                h.count = Some(count);
                h.since = o.timestamp;
            }
            Some(h) => {
                let last = h.count.unwrap_or(count);
                let made = if count >= last { count - last } else { count };
                h.count = Some(count);
                h.since = h.since.max(o.timestamp);
                if made > 0.0 {
                    add_at(
                        &mut self.cells,
                        &o.data_item_id,
                        Measure::PartCount,
                        sub,
                        o.timestamp,
                        made,
                    );
                    let program = format!("{sub}|{}", self.current_program());
                    add_at(
                        &mut self.cells,
                        &o.data_item_id,
                        Measure::ProgramParts,
                        &program,
                        o.timestamp,
                        made,
                    );
                }
            }
            None => {
                self.held.insert(
                    key.clone(),
                    Held {
                        key,
                        state: String::new(),
                        since: o.timestamp,
                        count: Some(count),
                        counted: None,
                    },
                );
            }
        }
    }

    fn condition(&mut self, o: &Observation) {
        let Some(c) = &o.condition else {
            return;
        };
        let t = o.timestamp;
        let prefix = format!("COND|{}|", o.data_item_id);
        match c.level {
            ConditionLevel::Fault | ConditionLevel::Warning => {
                let key = format!("{prefix}{}", c.native_code.as_deref().unwrap_or(""));
                let codes = self.held.keys().filter(|k| k.starts_with("COND|")).count();
                if !self.held.contains_key(&key) && codes >= MAX_ACTIVE_CODES {
                    self.skipped += 1;
                    return;
                }
                self.held.insert(
                    key.clone(),
                    Held {
                        key,
                        state: c.level.as_str().to_owned(),
                        since: t,
                        count: None,
                        counted: None,
                    },
                );
                if c.level == ConditionLevel::Fault {
                    self.revise_causes(t);
                }
            }
            ConditionLevel::Normal if c.native_code.is_some() => {
                let key = format!("{prefix}{}", c.native_code.as_deref().unwrap_or(""));
                self.held.remove(&key);
            }
            ConditionLevel::Normal | ConditionLevel::Unavailable => {
                self.held.retain(|k, _| !k.starts_with(&prefix));
            }
        }
        for (device_key, level, measure) in [
            ("FAULT", ConditionLevel::Fault, Measure::Fault),
            ("WARNING", ConditionLevel::Warning, Measure::Warning),
        ] {
            let active = self
                .held
                .iter()
                .any(|(k, h)| k.starts_with("COND|") && h.state == level.as_str());
            let state = if active { "1" } else { "0" };
            if self.held.contains_key(device_key) || active {
                self.transition(device_key.to_owned(), "", measure, state.to_owned(), t);
            }
        }
    }

    /// Starts a rebuild: takes each data item's last observation before `not_before` as
    /// the state it holds at `not_before` (nothing is counted before it).
    pub fn seed<'a>(
        &mut self,
        observations: impl IntoIterator<Item = &'a Observation>,
        not_before: DateTime<Utc>,
    ) {
        for o in observations {
            self.observe(o);
        }
        for h in self.held.values_mut() {
            // A stop keeps when it began (its cause is settled); its seconds are its
            // Execution state's, counted from `not_before`.
            if !h.key.starts_with("DOWNTIME|") {
                h.since = h.since.max(not_before);
            }
        }
        self.not_before = not_before;
        self.cells.clear();
        self.skipped = 0;
    }

    /// The cells counted so far, taken (a rebuild writes them a day at a time).
    pub fn take_cells(&mut self) -> BTreeMap<Cell, f64> {
        // The bound is per batch of cells written (a rebuild's every 100,000
        // observations), not per history.
        self.budget = MAX_FOLD_CELLS;
        std::mem::take(&mut self.cells)
    }

    /// The cells to add and the held states to write and delete.
    pub fn finish(self) -> FoldOutput {
        let mut put = Vec::new();
        for (k, h) in &self.held {
            if self.before.get(k) != Some(h) {
                put.push(h.clone());
            }
        }
        let delete = self
            .before
            .keys()
            .filter(|k| !self.held.contains_key(*k))
            .cloned()
            .collect();
        FoldOutput {
            cells: self.cells,
            put,
            delete,
            skipped: self.skipped,
        }
    }
}

/// Adds `amount` (parts) at the periods holding `t`, at every resolution.
fn add_at(
    cells: &mut BTreeMap<Cell, f64>,
    item: &str,
    measure: Measure,
    state: &str,
    t: DateTime<Utc>,
    amount: f64,
) {
    for resolution in RESOLUTIONS {
        let cell = Cell {
            resolution,
            period: resolution.floor(t.timestamp()),
            item: item.to_owned(),
            measure,
            state: state.to_owned(),
        };
        *cells.entry(cell).or_default() += amount;
    }
}

/// Adds the seconds of `[from, to)` (at most [`MAX_INTERVAL`] of it): its ramps (see
/// [`Resolution::Ramp`]: two per hour it touches at most) and the hours and days it
/// overlaps; returns the cells touched.
fn add_interval(
    cells: &mut BTreeMap<Cell, f64>,
    item: &str,
    measure: Measure,
    state: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> usize {
    let to = to.min(from + MAX_INTERVAL);
    if to <= from {
        return 0;
    }
    let mut touched = 0;
    let mut add = |resolution: Resolution, period: i64, value: f64| {
        let cell = Cell {
            resolution,
            period,
            item: item.to_owned(),
            measure,
            state: state.to_owned(),
        };
        *cells.entry(cell).or_default() += value;
        touched += 1;
    };
    // The ramps: up at the start, down at the end, again at each hour crossed; no down
    // at an hour's end (it would be the next hour's first ramp).
    let (a, b) = (from.timestamp_micros(), to.timestamp_micros());
    let mut start = a;
    loop {
        add(Resolution::Ramp, start, 1.0);
        let hour_end = (start.div_euclid(HOUR_MICROS) + 1) * HOUR_MICROS;
        if b < hour_end {
            add(Resolution::Ramp, b, -1.0);
            break;
        }
        if b == hour_end {
            break;
        }
        start = hour_end;
    }
    let (a, b) = (seconds(from), seconds(to));
    for resolution in [Resolution::Hour, Resolution::Day] {
        let step = resolution.seconds();
        let mut period = resolution.floor(a.floor() as i64);
        while (period as f64) < b {
            let overlap = b.min((period + step) as f64) - a.max(period as f64);
            if overlap > 0.0 {
                add(resolution, period, overlap);
            }
            period += step;
        }
    }
    touched
}

/// An hour in microseconds.
const HOUR_MICROS: i64 = 3_600_000_000;

/// A part of one hour, in Unix microseconds (UTC): what a question asks of the hour's
/// [`Resolution::Ramp`] cells, which are those with `period` in `[hour, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RampPiece {
    /// The hour's start.
    pub hour: i64,
    /// The part's start (at or after `hour`).
    pub from: i64,
    /// The part's end, exclusive (at most an hour after `hour`).
    pub to: i64,
}

impl RampPiece {
    /// The seconds a ramp cell (`period`, `value`) of this hour adds to the part: its
    /// rate times the time from the ramp to the part's end, less that to its start.
    pub fn seconds(&self, period: i64, value: f64) -> f64 {
        let since = |t: i64| (t - period).max(0) as f64;
        value * (since(self.to) - since(self.from)) / 1e6
    }
}

/// The [`RampPiece`]s of the minute [`Piece`]s of `pieces` (each split at the hours it
/// crosses).
pub fn ramp_pieces(pieces: &[Piece]) -> Vec<RampPiece> {
    let mut out = Vec::new();
    for p in pieces.iter().filter(|p| p.resolution == Resolution::Minute) {
        let mut a = p.from;
        while a < p.to {
            let hour = Resolution::Hour.floor(a);
            let b = p.to.min(hour + 3_600);
            out.push(RampPiece {
                hour: hour * 1_000_000,
                from: a * 1_000_000,
                to: b * 1_000_000,
            });
            a = b;
        }
    }
    out
}

/// Unix seconds with the fraction.
fn seconds(t: DateTime<Utc>) -> f64 {
    t.timestamp() as f64 + f64::from(t.timestamp_subsec_micros()) / 1e6
}

/// A time range `[from, to)` in whole minutes (Unix seconds): what a summary question
/// covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct MinuteRange {
    /// Start, Unix seconds, a multiple of 60.
    pub from: i64,
    /// End (exclusive), Unix seconds, a multiple of 60.
    pub to: i64,
}

impl MinuteRange {
    /// `[from, to)` with both ends rounded down to the minute.
    pub fn new(from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        MinuteRange {
            from: Resolution::Minute.floor(from.timestamp()),
            to: Resolution::Minute.floor(to.timestamp()),
        }
    }

    /// The length in seconds (0 when empty).
    pub fn seconds(&self) -> i64 {
        (self.to - self.from).max(0)
    }

    /// The start as a time.
    pub fn start(&self) -> DateTime<Utc> {
        Utc.timestamp_opt(self.from, 0).single().unwrap_or_default()
    }

    /// The end as a time.
    pub fn end(&self) -> DateTime<Utc> {
        Utc.timestamp_opt(self.to, 0).single().unwrap_or_default()
    }
}

/// A run of periods of one resolution: the periods starting in `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    /// The periods' length.
    pub resolution: Resolution,
    /// The first period's start (Unix seconds).
    pub from: i64,
    /// The end (Unix seconds, exclusive): periods starting before it.
    pub to: i64,
}

/// The fewest runs of whole days, hours and minutes that cover `ranges` exactly (each
/// range is in whole minutes): a month is about 30 day rows, edge hours and edge minutes,
/// instead of 43,200 minute rows.
pub fn pieces(ranges: &[MinuteRange]) -> Vec<Piece> {
    fn cover(a: i64, b: i64, level: usize, out: &mut Vec<Piece>) {
        if a >= b {
            return;
        }
        let resolution = [Resolution::Day, Resolution::Hour, Resolution::Minute][level];
        if resolution == Resolution::Minute {
            out.push(Piece {
                resolution,
                from: a,
                to: b,
            });
            return;
        }
        let (lo, hi) = (resolution.ceil(a), resolution.floor(b));
        if lo < hi {
            out.push(Piece {
                resolution,
                from: lo,
                to: hi,
            });
            cover(a, lo, level + 1, out);
            cover(hi, b, level + 1, out);
        } else {
            cover(a, b, level + 1, out);
        }
    }
    let mut out = Vec::new();
    for r in ranges {
        cover(r.from, r.to, 0, &mut out);
    }
    out
}

/// A summary total over a question's ranges: one data item's (or the device's) measure
/// and state, summed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryTotal {
    /// The agent's URL.
    pub agent: String,
    /// The device's name.
    pub device: String,
    /// The data item, empty for the device's Fault and Warning.
    pub item: String,
    /// What is counted.
    pub measure: Measure,
    /// The state, the part count's subType, or empty.
    pub state: String,
    /// Seconds, or parts for [`Measure::PartCount`].
    pub value: f64,
}

/// The seconds of `h`'s open interval in `ranges`, counted up to `until` (and for at
/// most [`MAX_INTERVAL`] from its start), from where it was counted up to.
fn open_seconds(h: &Held, ranges: &[MinuteRange], until: DateTime<Utc>) -> f64 {
    let start = h.counted.map_or(h.since, |c| c.max(h.since));
    let end = until.min(h.since + MAX_INTERVAL);
    let (a, b) = (seconds(start), seconds(end));
    ranges
        .iter()
        .map(|r| (b.min(r.to as f64) - a.max(r.from as f64)).max(0.0))
        .sum()
}

/// The seconds of the intervals still open (a device's held states) that fall in
/// `ranges`, counted up to `until` (and for at most [`MAX_INTERVAL`] from their start):
/// what a store adds to its closed periods when asked. Each part count the device reports
/// gives a total of 0 parts, so that a count with nothing made is told from no count.
pub fn open_totals(
    agent: &str,
    device: &str,
    held: &[Held],
    ranges: &[MinuteRange],
    until: DateTime<Utc>,
) -> Vec<SummaryTotal> {
    let mut out = Vec::new();
    for h in held {
        let (head, rest) = h.key.split_once('|').unwrap_or((h.key.as_str(), ""));
        let (measure, item, state) = match head {
            "PART_COUNT" => {
                // Counted when observed; a zero says the device reports this count.
                let (item, sub) = rest.rsplit_once('|').unwrap_or((rest, "ALL"));
                out.push(SummaryTotal {
                    agent: agent.to_owned(),
                    device: device.to_owned(),
                    item: item.to_owned(),
                    measure: Measure::PartCount,
                    state: sub.to_owned(),
                    value: 0.0,
                });
                continue;
            }
            // Active only; counted with no state.
            "FAULT" if h.state == "1" => (Measure::Fault, "", ""),
            "WARNING" if h.state == "1" => (Measure::Warning, "", ""),
            "DOWNTIME" => {
                // The stop's open seconds are its Execution state's.
                let execution = format!("EXECUTION|{rest}");
                match held.iter().find(|e| e.key == execution) {
                    Some(e) if is_stopped(&e.state) => {
                        let value = open_seconds(e, ranges, until);
                        if value > 0.0 {
                            out.push(SummaryTotal {
                                agent: agent.to_owned(),
                                device: device.to_owned(),
                                item: rest.to_owned(),
                                measure: Measure::Downtime,
                                state: h.state.clone(),
                                value,
                            });
                        }
                    }
                    _ => {}
                }
                continue;
            }
            m => match m.parse::<Measure>() {
                Ok(m) if m.is_state() => (m, rest, h.state.as_str()),
                _ => continue,
            },
        };
        let value = open_seconds(h, ranges, until);
        if value > 0.0 {
            out.push(SummaryTotal {
                agent: agent.to_owned(),
                device: device.to_owned(),
                item: item.to_owned(),
                measure,
                state: state.to_owned(),
                value,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ConditionState, Value};

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn obs(seq: u64, t: &str, item: &str, kind: &str, value: &str) -> Observation {
        Observation {
            sequence: seq,
            timestamp: at(t),
            device: "M".into(),
            component_id: "p".into(),
            data_item_id: item.into(),
            name: None,
            category: Category::Event,
            kind: kind.into(),
            sub_type: None,
            value: Value::from_text(value),
            condition: None,
        }
    }

    fn cond(seq: u64, t: &str, level: ConditionLevel, code: Option<&str>) -> Observation {
        Observation {
            category: Category::Condition,
            kind: "System".into(),
            condition: Some(ConditionState {
                level,
                native_code: code.map(str::to_owned),
                native_severity: None,
                qualifier: None,
            }),
            ..obs(seq, t, "sys", "System", "")
        }
    }

    fn total(out: &FoldOutput, resolution: Resolution, measure: Measure, state: &str) -> f64 {
        out.cells
            .iter()
            .filter(|(c, _)| c.resolution == resolution && c.measure == measure && c.state == state)
            .map(|(_, v)| v)
            .sum()
    }

    /// The seconds of `measure` and `state` in `range` from the fold's cells, as a store
    /// answers it: periods for whole days and hours, ramps for the minutes at the edges.
    fn minute_seconds(out: &FoldOutput, measure: Measure, state: &str, range: MinuteRange) -> f64 {
        let mut seconds = 0.0;
        let ps = pieces(&[range]);
        for (c, v) in out
            .cells
            .iter()
            .filter(|(c, _)| c.measure == measure && c.state == state)
        {
            seconds += ps
                .iter()
                .filter(|p| p.resolution == c.resolution && (p.from..p.to).contains(&c.period))
                .map(|_| v)
                .sum::<f64>();
            if c.resolution == Resolution::Ramp {
                seconds += ramp_pieces(&ps)
                    .iter()
                    .filter(|r| (r.hour..r.to).contains(&c.period))
                    .map(|r| r.seconds(c.period, *v))
                    .sum::<f64>();
            }
        }
        seconds
    }

    #[test]
    fn a_state_is_counted_when_it_ends_in_every_period_it_overlaps() {
        let now = at("2026-01-02T00:00:00Z");
        let mut fold = DeviceFold::new([], now);
        fold.observe(&obs(1, "2026-01-01T10:59:30Z", "e", "Execution", "ACTIVE"));
        fold.observe(&obs(2, "2026-01-01T11:01:15Z", "e", "Execution", "ACTIVE"));
        fold.observe(&obs(3, "2026-01-01T11:02:00Z", "e", "Execution", "READY"));
        let out = fold.finish();
        for r in [Resolution::Hour, Resolution::Day] {
            assert_eq!(total(&out, r, Measure::Execution, "ACTIVE"), 150.0, "{r:?}");
        }
        // The finest level: two ramps in the first hour, one up at the second's start
        // (none down at 11:00), and each minute's seconds summed from them.
        let ramps: Vec<(i64, f64)> = out
            .cells
            .iter()
            .filter(|(c, _)| c.resolution == Resolution::Ramp && c.measure == Measure::Execution)
            .map(|(c, v)| (c.period, *v))
            .collect();
        let micros = |t: &str| at(t).timestamp_micros();
        assert_eq!(
            ramps,
            vec![
                (micros("2026-01-01T10:59:30Z"), 1.0),
                (micros("2026-01-01T11:00:00Z"), 1.0),
                (micros("2026-01-01T11:02:00Z"), -1.0)
            ]
        );
        let minute = |t: &str| {
            let range = MinuteRange::new(at(t), at(t) + Duration::minutes(1));
            minute_seconds(&out, Measure::Execution, "ACTIVE", range)
        };
        assert_eq!(minute("2026-01-01T10:58:00Z"), 0.0);
        assert_eq!(minute("2026-01-01T10:59:00Z"), 30.0);
        assert_eq!(minute("2026-01-01T11:00:00Z"), 60.0);
        assert_eq!(minute("2026-01-01T11:01:00Z"), 60.0);
        assert_eq!(minute("2026-01-01T11:02:00Z"), 0.0);
        let range = MinuteRange::new(at("2026-01-01T10:30:00Z"), at("2026-01-01T11:30:00Z"));
        assert_eq!(ramp_pieces(&pieces(&[range])).len(), 2);
        assert_eq!(
            minute_seconds(&out, Measure::Execution, "ACTIVE", range),
            150.0
        );
        let execution: Vec<&Held> = out.put.iter().filter(|h| h.key == "EXECUTION|e").collect();
        assert_eq!(execution.len(), 1);
        assert_eq!(execution[0].state, "READY");
        assert_eq!(execution[0].since, at("2026-01-01T11:02:00Z"));
    }

    #[test]
    fn a_fold_continues_from_the_held_state() {
        let now = at("2026-01-02T00:00:00Z");
        let held = Held {
            key: "EXECUTION|e".into(),
            state: "STOPPED".into(),
            since: at("2026-01-01T00:00:00Z"),
            count: None,
            counted: None,
        };
        let mut fold = DeviceFold::new([held], now);
        fold.observe(&obs(9, "2026-01-01T02:00:00Z", "e", "Execution", "ACTIVE"));
        // A second early: taken at 02:00, ACTIVE for no time.
        fold.observe(&obs(10, "2026-01-01T01:59:59Z", "e", "Execution", "READY"));
        // An hour back: the clock went back, a new timeline begins.
        fold.observe(&obs(
            11,
            "2026-01-01T01:00:00Z",
            "e",
            "Execution",
            "STOPPED",
        ));
        fold.observe(&obs(12, "2026-01-01T01:30:00Z", "e", "Execution", "READY"));
        let out = fold.finish();
        // STOPPED 00:00–02:00 counted once; the new timeline's STOPPED from 01:00 is not
        // counted again before 02:00, what was counted already.
        assert_eq!(
            total(&out, Resolution::Day, Measure::Execution, "STOPPED"),
            7200.0
        );
        assert_eq!(
            total(&out, Resolution::Day, Measure::Execution, "ACTIVE"),
            0.0
        );
        assert_eq!(
            total(&out, Resolution::Day, Measure::Execution, "READY"),
            0.0
        );
        assert_eq!(out.skipped, 1);
    }

    #[test]
    fn downtime_is_counted_per_cause_and_each_stop_once() {
        let now = at("2026-01-02T00:00:00Z");
        let mut fold = DeviceFold::new([], now);
        let mut seq = 0;
        let mut ex = |fold: &mut DeviceFold, t: &str, v: &str| {
            seq += 1;
            fold.observe(&obs(seq, t, "e", "Execution", v));
        };
        ex(&mut fold, "2026-01-01T10:00:00Z", "ACTIVE");
        fold.observe(&obs(
            100,
            "2026-01-01T10:00:00Z",
            "m",
            "ControllerMode",
            "AUTOMATIC",
        ));
        // One stop in two states: one cause, the state it began in.
        ex(&mut fold, "2026-01-01T10:10:00Z", "READY");
        ex(&mut fold, "2026-01-01T10:15:00Z", "STOPPED");
        ex(&mut fold, "2026-01-01T10:20:00Z", "ACTIVE");
        // A Fault active when the stop begins.
        fold.observe(&cond(
            101,
            "2026-01-01T10:30:00Z",
            ConditionLevel::Fault,
            Some("1010"),
        ));
        ex(&mut fold, "2026-01-01T10:30:02Z", "INTERRUPTED");
        ex(&mut fold, "2026-01-01T10:40:02Z", "ACTIVE");
        fold.observe(&cond(
            102,
            "2026-01-01T10:45:00Z",
            ConditionLevel::Normal,
            None,
        ));
        // A Fault reported 5 s after the stop began: still its cause.
        ex(&mut fold, "2026-01-01T10:50:00Z", "INTERRUPTED");
        fold.observe(&cond(
            103,
            "2026-01-01T10:50:05Z",
            ConditionLevel::Fault,
            Some("2020"),
        ));
        ex(&mut fold, "2026-01-01T11:00:00Z", "ACTIVE");
        fold.observe(&cond(
            104,
            "2026-01-01T11:02:00Z",
            ConditionLevel::Normal,
            None,
        ));
        // Set-up in MANUAL; UNAVAILABLE ends a stop (no data is not downtime).
        fold.observe(&obs(
            105,
            "2026-01-01T11:05:00Z",
            "m",
            "ControllerMode",
            "MANUAL",
        ));
        ex(&mut fold, "2026-01-01T11:10:00Z", "READY");
        ex(&mut fold, "2026-01-01T11:20:00Z", "UNAVAILABLE");
        ex(&mut fold, "2026-01-01T11:30:00Z", "READY");
        ex(&mut fold, "2026-01-01T11:31:00Z", "ACTIVE");
        // An emergency stop: before everything else.
        fold.observe(&obs(
            106,
            "2026-01-01T11:35:00Z",
            "m",
            "ControllerMode",
            "AUTOMATIC",
        ));
        fold.observe(&obs(
            107,
            "2026-01-01T11:40:00Z",
            "es",
            "EmergencyStop",
            "TRIGGERED",
        ));
        fold.observe(&cond(
            108,
            "2026-01-01T11:40:00Z",
            ConditionLevel::Fault,
            Some("E"),
        ));
        ex(&mut fold, "2026-01-01T11:40:01Z", "STOPPED");
        fold.observe(&obs(
            109,
            "2026-01-01T11:45:00Z",
            "es",
            "EmergencyStop",
            "ARMED",
        ));
        fold.observe(&cond(
            110,
            "2026-01-01T11:45:00Z",
            ConditionLevel::Normal,
            None,
        ));
        ex(&mut fold, "2026-01-01T11:46:00Z", "ACTIVE");
        // A stop still open.
        ex(&mut fold, "2026-01-01T11:50:00Z", "FEED_HOLD");
        let out = fold.finish();
        let day = |m, s| total(&out, Resolution::Day, m, s);
        assert_eq!(day(Measure::Downtime, "READY"), 600.0);
        assert_eq!(day(Measure::Downtime, "FAULT 1010"), 600.0);
        assert_eq!(day(Measure::Downtime, "FAULT 2020"), 600.0);
        assert_eq!(day(Measure::Downtime, "READY (MANUAL)"), 660.0);
        assert_eq!(day(Measure::Downtime, "EMERGENCY_STOP"), 359.0);
        for (cause, n) in [
            ("READY", 1.0),
            ("FAULT 1010", 1.0),
            ("FAULT 2020", 1.0),
            ("INTERRUPTED", 0.0),
            ("READY (MANUAL)", 2.0),
            ("EMERGENCY_STOP", 1.0),
            ("FEED_HOLD", 1.0),
        ] {
            assert_eq!(day(Measure::Stops, cause), n, "{cause}");
        }
        // Every second stopped has one cause: downtime is the known time not ACTIVE.
        let stopped: f64 = out
            .cells
            .iter()
            .filter(|(c, _)| {
                c.resolution == Resolution::Day
                    && c.measure == Measure::Execution
                    && !matches!(c.state.as_str(), "ACTIVE" | "UNAVAILABLE")
            })
            .map(|(_, v)| v)
            .sum();
        let downtime: f64 = out
            .cells
            .iter()
            .filter(|(c, _)| c.resolution == Resolution::Day && c.measure == Measure::Downtime)
            .map(|(_, v)| v)
            .sum();
        assert_eq!(stopped, downtime);
        // The open stop counts when asked.
        let held: Vec<Held> = out.put.clone();
        let range = MinuteRange::new(at("2026-01-01T11:00:00Z"), at("2026-01-01T12:00:00Z"));
        let open = open_totals("a", "M", &held, &[range], at("2026-01-01T11:55:00Z"));
        let feed_hold = open
            .iter()
            .find(|t| t.measure == Measure::Downtime)
            .expect("the open stop");
        assert_eq!(
            (feed_hold.state.as_str(), feed_hold.value),
            ("FEED_HOLD", 300.0)
        );
    }

    #[test]
    fn a_cause_is_revised_only_to_a_stronger_one_and_not_across_a_rebuild_start() {
        let mut fold = DeviceFold::new([], at("2026-01-02T00:00:00Z"));
        fold.observe(&obs(1, "2026-01-01T10:00:00Z", "e", "Execution", "ACTIVE"));
        fold.observe(&cond(
            2,
            "2026-01-01T10:00:00Z",
            ConditionLevel::Fault,
            Some("F"),
        ));
        fold.observe(&obs(3, "2026-01-01T10:00:01Z", "e", "Execution", "STOPPED"));
        // An emergency stop a second later outranks the Fault.
        fold.observe(&obs(
            4,
            "2026-01-01T10:00:02Z",
            "es",
            "EmergencyStop",
            "TRIGGERED",
        ));
        // A mode change does not lower it.
        fold.observe(&obs(
            5,
            "2026-01-01T10:00:03Z",
            "m",
            "ControllerMode",
            "MANUAL",
        ));
        fold.observe(&obs(6, "2026-01-01T10:10:01Z", "e", "Execution", "ACTIVE"));
        fold.observe(&obs(
            7,
            "2026-01-01T10:10:01Z",
            "es",
            "EmergencyStop",
            "ARMED",
        ));
        fold.observe(&cond(
            8,
            "2026-01-01T10:10:01Z",
            ConditionLevel::Normal,
            None,
        ));
        // A Fault stamped before the stop but sent after it: still its cause.
        fold.observe(&obs(
            9,
            "2026-01-01T10:20:00Z",
            "e",
            "Execution",
            "INTERRUPTED",
        ));
        fold.observe(&cond(
            10,
            "2026-01-01T10:19:58Z",
            ConditionLevel::Fault,
            Some("G"),
        ));
        fold.observe(&obs(11, "2026-01-01T10:30:00Z", "e", "Execution", "ACTIVE"));
        let out = fold.finish();
        let day = |m, s| total(&out, Resolution::Day, m, s);
        assert_eq!(day(Measure::Downtime, "EMERGENCY_STOP"), 600.0);
        assert_eq!(day(Measure::Stops, "EMERGENCY_STOP"), 1.0);
        assert_eq!(day(Measure::Stops, "FAULT F"), 0.0);
        assert_eq!(day(Measure::Downtime, "FAULT G"), 600.0);
        assert_eq!(day(Measure::Stops, "FAULT G"), 1.0);
        assert_eq!(day(Measure::Stops, "INTERRUPTED (MANUAL)"), 0.0);

        // A rebuild from midnight: the stop begun 2 s before keeps its cause (its count
        // is in the cells before the start), and its seconds count from midnight.
        let mut fold = DeviceFold::new([], at("2026-01-03T00:00:00Z"));
        let seeds = [obs(1, "2026-01-01T23:59:58Z", "e", "Execution", "READY")];
        fold.seed(&seeds, at("2026-01-02T00:00:00Z"));
        fold.observe(&cond(
            2,
            "2026-01-02T00:00:03Z",
            ConditionLevel::Fault,
            Some("7"),
        ));
        fold.observe(&obs(3, "2026-01-02T00:10:00Z", "e", "Execution", "ACTIVE"));
        let out = fold.finish();
        let day = |m, s| total(&out, Resolution::Day, m, s);
        assert_eq!(day(Measure::Downtime, "READY"), 600.0);
        assert_eq!(day(Measure::Stops, "READY"), 0.0);
        assert_eq!(day(Measure::Stops, "FAULT 7"), 0.0);
    }

    #[test]
    fn stops_replayed_after_the_clock_went_back_are_not_counted_again() {
        let mut fold = DeviceFold::new([], at("2026-01-02T00:00:00Z"));
        let timeline = [
            ("2026-01-01T10:00:00Z", "ACTIVE"),
            ("2026-01-01T10:10:00Z", "READY"),
            ("2026-01-01T10:20:00Z", "ACTIVE"),
        ];
        let mut seq = 0;
        // The agent replays the same hour after its clock went back.
        for _ in 0..2 {
            for (t, v) in timeline {
                seq += 1;
                fold.observe(&obs(seq, t, "e", "Execution", v));
            }
        }
        let out = fold.finish();
        let day = |m, s| total(&out, Resolution::Day, m, s);
        assert_eq!(day(Measure::Stops, "READY"), 1.0);
        assert_eq!(day(Measure::Downtime, "READY"), 600.0);
        assert_eq!(day(Measure::Execution, "READY"), 600.0);
    }

    #[test]
    fn stop_causes_are_bounded() {
        let long = "X".repeat(500);
        assert_eq!(stop_cause(&long, false, None, None).len(), MAX_CAUSE_PART);
        assert_eq!(
            stop_cause("READY", false, Some(&long), None).len(),
            6 + MAX_CAUSE_PART
        );
        assert_eq!(stop_cause("READY", false, Some(""), None), "FAULT");
        assert_eq!(stop_cause("READY", true, Some("1"), None), "EMERGENCY_STOP");
        assert_eq!(
            stop_cause("READY", false, None, Some("EDIT")),
            "READY (EDIT)"
        );
        assert_eq!(stop_cause("READY", false, None, Some("AUTOMATIC")), "READY");
        assert!(is_alarm_cause("FAULT 12") && !is_alarm_cause("FAULTY"));
    }

    #[test]
    fn parts_are_counted_per_program_held_when_the_count_rose() {
        let mut fold = DeviceFold::new([], at("2026-01-02T00:00:00Z"));
        let mut main = obs(2, "2026-01-01T10:00:00Z", "prog", "Program", "O100");
        main.sub_type = Some("MAIN".into());
        let mut sub = obs(3, "2026-01-01T10:00:00Z", "sub", "Program", "O9");
        sub.sub_type = Some("ACTIVE".into());
        for o in [
            obs(1, "2026-01-01T09:00:00Z", "pc", "PartCount", "0"),
            main,
            sub,
            obs(4, "2026-01-01T10:10:00Z", "pc", "PartCount", "4"),
            obs(5, "2026-01-01T10:20:00Z", "prog", "Program", "UNAVAILABLE"),
            obs(6, "2026-01-01T10:30:00Z", "pc", "PartCount", "5"),
            obs(
                7,
                "2026-01-01T10:40:00Z",
                "prog",
                "Program",
                &"P".repeat(200),
            ),
            obs(8, "2026-01-01T10:50:00Z", "pc", "PartCount", "7"),
        ] {
            fold.observe(&o);
        }
        let out = fold.finish();
        let hour = |s: &str| total(&out, Resolution::Hour, Measure::ProgramParts, s);
        assert_eq!(hour("ALL|O100"), 4.0);
        assert_eq!(hour("ALL|"), 1.0);
        assert_eq!(hour(&format!("ALL|{}", "P".repeat(MAX_PROGRAM_NAME))), 2.0);
        assert_eq!(hour("ALL|O9"), 0.0);
        assert_eq!(
            total(&out, Resolution::Hour, Measure::PartCount, "ALL"),
            7.0
        );
    }

    #[test]
    fn part_counts_add_increases_and_survive_resets() {
        let mut fold = DeviceFold::new([], at("2026-01-02T00:00:00Z"));
        for (i, (t, v)) in [
            ("2026-01-01T10:00:00Z", "5"),
            ("2026-01-01T10:10:00Z", "7"),
            ("2026-01-01T10:20:00Z", "UNAVAILABLE"),
            ("2026-01-01T10:30:00Z", "9"),
            ("2026-01-01T10:40:00Z", "1"),
        ]
        .into_iter()
        .enumerate()
        {
            fold.observe(&obs(i as u64, t, "pc", "PartCount", v));
        }
        let out = fold.finish();
        assert_eq!(
            total(&out, Resolution::Hour, Measure::PartCount, "ALL"),
            5.0
        );
        assert_eq!(out.put[0].count, Some(1.0));
    }

    #[test]
    fn fault_seconds_follow_the_part_3_rules() {
        let mut fold = DeviceFold::new([], at("2026-01-02T00:00:00Z"));
        fold.observe(&cond(
            1,
            "2026-01-01T10:00:00Z",
            ConditionLevel::Fault,
            Some("A"),
        ));
        fold.observe(&cond(
            2,
            "2026-01-01T10:01:00Z",
            ConditionLevel::Fault,
            Some("B"),
        ));
        // B clears, A stays active.
        fold.observe(&cond(
            3,
            "2026-01-01T10:02:00Z",
            ConditionLevel::Normal,
            Some("B"),
        ));
        // A NORMAL without a code clears every code.
        fold.observe(&cond(
            4,
            "2026-01-01T10:05:00Z",
            ConditionLevel::Normal,
            None,
        ));
        fold.observe(&cond(
            5,
            "2026-01-01T10:06:00Z",
            ConditionLevel::Warning,
            None,
        ));
        let out = fold.finish();
        assert_eq!(total(&out, Resolution::Day, Measure::Fault, ""), 300.0);
        assert_eq!(total(&out, Resolution::Day, Measure::Warning, ""), 0.0);
        let keys: Vec<&str> = out.put.iter().map(|h| h.key.as_str()).collect();
        assert_eq!(keys, vec!["COND|sys|", "FAULT", "WARNING"]);
        assert_eq!(out.put[1].state, "0");
    }

    #[test]
    fn long_and_future_intervals_are_bounded() {
        let mut fold = DeviceFold::new([], at("2026-03-01T00:00:00Z"));
        fold.observe(&obs(1, "2026-01-01T00:00:00Z", "e", "Execution", "READY"));
        fold.observe(&obs(2, "2026-02-20T00:00:00Z", "e", "Execution", "ACTIVE"));
        fold.observe(&obs(3, "2100-01-01T00:00:00Z", "e", "Execution", "READY"));
        let out = fold.finish();
        assert_eq!(
            total(&out, Resolution::Day, Measure::Execution, "READY"),
            0.0
        );
        assert_eq!(out.skipped, 2);
    }

    #[test]
    fn a_replay_with_new_sequences_is_not_counted_twice() {
        let mut fold = DeviceFold::new([], at("2026-01-02T00:00:00Z"));
        let mut seq = 0;
        for _ in 0..2 {
            for (t, v) in [
                ("2026-01-01T10:00:00Z", "ACTIVE"),
                ("2026-01-01T11:00:00Z", "READY"),
            ] {
                seq += 1;
                fold.observe(&obs(seq, t, "e", "Execution", v));
            }
        }
        let out = fold.finish();
        assert_eq!(
            total(&out, Resolution::Day, Measure::Execution, "ACTIVE"),
            3600.0
        );
    }

    #[test]
    fn a_batch_cannot_make_unbounded_cells() {
        // Months apart from 1971 (the first state's start counts from 1970) to 2135, all
        // before "now": only the budget stops them.
        let mut fold = DeviceFold::new([], at("2200-01-01T00:00:00Z"));
        let start = at("1971-01-01T00:00:00Z");
        for i in 0..2000u64 {
            let t = start + Duration::days(30) * i as i32;
            let state = if i % 2 == 0 { "ACTIVE" } else { "READY" };
            fold.observe(&Observation {
                timestamp: t,
                ..obs(i, "2026-01-01T00:00:00Z", "e", "Execution", state)
            });
        }
        let out = fold.finish();
        assert!(
            out.cells.len() <= MAX_FOLD_CELLS + 50_000,
            "{}",
            out.cells.len()
        );
        assert!(out.skipped > 1700, "{}", out.skipped);
    }

    #[test]
    fn pieces_cover_a_range_with_the_fewest_rows() {
        let r = MinuteRange::new(at("2026-01-01T22:30:00Z"), at("2026-01-04T01:02:00Z"));
        let p = pieces(&[r]);
        let total: i64 = p.iter().map(|p| p.to - p.from).sum();
        assert_eq!(total, r.seconds());
        assert_eq!(
            p.iter().map(|p| p.resolution).collect::<Vec<_>>(),
            vec![
                Resolution::Day,
                Resolution::Hour,
                Resolution::Minute,
                Resolution::Hour,
                Resolution::Minute
            ]
        );
    }

    #[test]
    fn open_intervals_count_up_to_the_time_given() {
        let held = vec![Held {
            key: "EXECUTION|e".into(),
            state: "ACTIVE".into(),
            since: at("2026-01-01T10:00:00Z"),
            count: None,
            counted: None,
        }];
        let ranges = [MinuteRange::new(
            at("2026-01-01T09:00:00Z"),
            at("2026-01-01T12:00:00Z"),
        )];
        let t = open_totals("a", "M", &held, &ranges, at("2026-01-01T10:30:00Z"));
        assert_eq!(t.len(), 1);
        assert_eq!((t[0].measure, t[0].value), (Measure::Execution, 1800.0));
    }
}
