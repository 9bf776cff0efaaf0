//! State intervals of an Event data item (Execution, Availability, ControllerMode) over a
//! time window, and the share of time in each state: the utilization a shop manager asks
//! for (MTConnect Part 3, Events `Execution`: ACTIVE, READY, STOPPED, INTERRUPTED, …).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::window::TimeWindow;
use crate::Value;

/// A time interval `[from, to)` (UTC) during which a data item held one value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateInterval {
    /// The state (`UNAVAILABLE` for [`Value::Unavailable`]).
    pub state: String,
    /// Start (inclusive).
    pub from: DateTime<Utc>,
    /// End (exclusive).
    pub to: DateTime<Utc>,
}

/// The time a state was held within a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateShare {
    /// The state.
    pub state: String,
    /// Seconds held.
    pub seconds: f64,
    /// Fraction of the known time in the window (0 to 1).
    pub share: f64,
}

fn state_of(v: &Value) -> String {
    v.to_string()
}

/// The intervals of `window` covered by each state, from `before` (the last observation
/// before the window, if any: the state the window starts in) and `observations` (ordered
/// by time). Time before the first known state is left out. Consecutive equal states merge.
pub fn intervals(
    before: Option<&Value>,
    observations: &[(DateTime<Utc>, Value)],
    window: &TimeWindow,
) -> Vec<StateInterval> {
    let mut out: Vec<StateInterval> = Vec::new();
    let mut current: Option<(String, DateTime<Utc>)> = before.map(|v| (state_of(v), window.from()));
    for (t, v) in observations.iter().filter(|(t, _)| window.contains(*t)) {
        let state = state_of(v);
        match &current {
            Some((s, _)) if *s == state => continue,
            Some((s, since)) => push(&mut out, s.clone(), *since, *t),
            None => {}
        }
        current = Some((state, *t));
    }
    if let Some((s, since)) = current {
        push(&mut out, s, since, window.to());
    }
    out
}

fn push(out: &mut Vec<StateInterval>, state: String, from: DateTime<Utc>, to: DateTime<Utc>) {
    if to <= from {
        return;
    }
    match out.last_mut() {
        Some(last) if last.state == state && last.to == from => last.to = to,
        _ => out.push(StateInterval { state, from, to }),
    }
}

/// The Event types whose values are states from a controlled vocabulary (MTConnect Part 2,
/// "DataItem Types for Event": `Execution`, `Availability`, `ControllerMode`, …), spelled
/// as a probe's `type` attribute: what a utilization or state timeline can be asked of.
/// Free-text Events (`Program`, `Block`, `Message`) and Samples are not states.
pub const STATE_TYPES: &[&str] = &[
    "ACTUATOR_STATE",
    "AVAILABILITY",
    "AXIS_COUPLING",
    "AXIS_INTERLOCK",
    "AXIS_STATE",
    "CHARACTERISTIC_STATUS",
    "CHUCK_INTERLOCK",
    "CHUCK_STATE",
    "COMPOSITION_STATE",
    "CONNECTION_STATUS",
    "CONTROLLER_MODE",
    "CONTROLLER_MODE_OVERRIDE",
    "DIRECTION",
    "DOOR_STATE",
    "EMERGENCY_STOP",
    "END_OF_BAR",
    "EQUIPMENT_MODE",
    "EXECUTION",
    "FUNCTIONAL_MODE",
    "INTERFACE_STATE",
    "LOCK_STATE",
    "OPERATING_MODE",
    "PART_DETECT",
    "PATH_MODE",
    "POWER_STATE",
    "POWER_STATUS",
    "PROGRAM_EDIT",
    "ROTARY_MODE",
    "SPINDLE_INTERLOCK",
    "VALVE_STATE",
    "WAIT_STATE",
];

/// Whether `kind` (an Event's `type`, e.g. `EXECUTION`) takes its values from a controlled
/// vocabulary: one of [`STATE_TYPES`].
pub fn is_state_type(kind: &str) -> bool {
    STATE_TYPES.binary_search(&kind).is_ok()
}

/// A window's state intervals, a page at a time, and the time in each state over the whole
/// window: what [`StateFold`] (and a store computing it in SQL) answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateSummary {
    /// The time in each state over the whole window, largest first (at most
    /// [`MAX_STATES`]).
    pub shares: Vec<StateShare>,
    /// The page of intervals: those that begin after the requested cursor, oldest first.
    pub intervals: Vec<StateInterval>,
    /// The cursor of the next page (the last interval's start), when more follow.
    pub next: Option<DateTime<Utc>>,
}

/// The most distinct states a [`StateSummary`] lists shares of; the rest are left out (a
/// controlled vocabulary has a handful).
pub const MAX_STATES: usize = 100;

/// Computes a [`StateSummary`] from a window's observations fed one at a time, in
/// (timestamp, sequence) order, in memory bounded by the page size: the same intervals as
/// [`intervals`] (consecutive equal states merge), of which it keeps only the page asked
/// for.
#[derive(Debug)]
pub struct StateFold {
    window: TimeWindow,
    after: Option<DateTime<Utc>>,
    limit: usize,
    current: Option<(String, DateTime<Utc>)>,
    /// The last closed interval, kept open to merge with an equal next one.
    pending: Option<StateInterval>,
    seconds: BTreeMap<String, f64>,
    page: Vec<StateInterval>,
    more: bool,
}

impl StateFold {
    /// A fold over `window`, starting in state `before` (the last value before the window,
    /// if known), keeping at most `limit` intervals that begin after `after`.
    pub fn new(
        window: TimeWindow,
        before: Option<&Value>,
        after: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Self {
        StateFold {
            current: before.map(|v| (state_of(v), window.from())),
            window,
            after,
            limit,
            pending: None,
            seconds: BTreeMap::new(),
            page: Vec::new(),
            more: false,
        }
    }

    /// Feeds one observation; those outside the window are ignored.
    pub fn push(&mut self, at: DateTime<Utc>, value: &Value) {
        if !self.window.contains(at) {
            return;
        }
        if let Some((s, _)) = &self.current {
            if value.as_text().map_or(s == "UNAVAILABLE", |t| t == s) {
                return;
            }
        }
        let state = state_of(value);
        if let Some((s, since)) = self.current.replace((state, at)) {
            self.close(s, since, at);
        }
    }

    fn close(&mut self, state: String, from: DateTime<Utc>, to: DateTime<Utc>) {
        if to <= from {
            return;
        }
        if let Some(total) = self.seconds.get_mut(&state) {
            *total += (to - from).as_seconds_f64();
        } else if self.seconds.len() < MAX_STATES * 10 {
            self.seconds
                .insert(state.clone(), (to - from).as_seconds_f64());
        }
        match &mut self.pending {
            Some(p) if p.state == state && p.to == from => p.to = to,
            _ => {
                if let Some(done) = self.pending.replace(StateInterval { state, from, to }) {
                    self.emit(done);
                }
            }
        }
    }

    fn emit(&mut self, interval: StateInterval) {
        if self.after.is_some_and(|after| interval.from <= after) {
            return;
        }
        if self.page.len() < self.limit {
            self.page.push(interval);
        } else {
            self.more = true;
        }
    }

    /// The summary: shares over the whole window and the page of intervals.
    pub fn finish(mut self) -> StateSummary {
        if let Some((s, since)) = self.current.take() {
            let to = self.window.to();
            self.close(s, since, to);
        }
        if let Some(last) = self.pending.take() {
            self.emit(last);
        }
        let total: f64 = self.seconds.values().sum();
        let mut shares: Vec<StateShare> = self
            .seconds
            .into_iter()
            .map(|(state, s)| StateShare {
                state,
                seconds: s,
                share: if total > 0.0 { s / total } else { 0.0 },
            })
            .collect();
        shares.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
        shares.truncate(MAX_STATES);
        let next = if self.more {
            self.page.last().map(|i| i.from)
        } else {
            None
        };
        StateSummary {
            shares,
            intervals: self.page,
            next,
        }
    }
}

/// The share of time in each state over `intervals`, largest first.
pub fn shares(intervals: &[StateInterval]) -> Vec<StateShare> {
    let mut seconds: BTreeMap<&str, f64> = BTreeMap::new();
    for i in intervals {
        *seconds.entry(&i.state).or_default() += (i.to - i.from).as_seconds_f64();
    }
    let total: f64 = seconds.values().sum();
    let mut out: Vec<StateShare> = seconds
        .into_iter()
        .map(|(state, s)| StateShare {
            state: state.to_owned(),
            seconds: s,
            share: if total > 0.0 { s / total } else { 0.0 },
        })
        .collect();
    out.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn state_types_are_sorted_for_binary_search() {
        assert!(STATE_TYPES.windows(2).all(|w| w[0] < w[1]));
        assert!(is_state_type("EXECUTION"));
        assert!(!is_state_type("PROGRAM"));
    }

    #[test]
    fn the_fold_pages_what_intervals_gives_and_shares_the_whole_window() {
        let t0 = DateTime::from_timestamp(1_475_600_000, 0).unwrap();
        let at = |m: i64| t0 + Duration::minutes(m);
        let window = TimeWindow::new(at(0), at(60)).unwrap();
        let states = ["ACTIVE", "READY", "ACTIVE", "ACTIVE", "STOPPED", "READY"];
        let obs: Vec<_> = (0..60)
            .map(|m| (at(m), Value::from_text(states[(m as usize * 7 / 3) % 6])))
            .chain([(at(59), Value::Unavailable)])
            .collect();
        let before = Value::from_text("READY");
        let all = intervals(Some(&before), &obs, &window);
        let mut paged = Vec::new();
        let mut after = None;
        let whole = shares(&all);
        loop {
            let mut fold = StateFold::new(window, Some(&before), after, 7);
            for (t, v) in &obs {
                fold.push(*t, v);
            }
            let page = fold.finish();
            assert!(page.intervals.len() <= 7);
            assert_eq!(page.shares, whole);
            paged.extend(page.intervals);
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(paged, all);
    }

    #[test]
    fn utilization_over_a_window() {
        let t0 = DateTime::from_timestamp(1_475_600_000, 0).unwrap();
        let at = |m: i64| t0 + Duration::minutes(m);
        let window = TimeWindow::new(at(0), at(60)).unwrap();
        let v = |s: &str| Value::from_text(s);
        let obs = vec![
            (at(-5), v("READY")), // before the window: ignored here, given as `before`
            (at(10), v("ACTIVE")),
            (at(20), v("ACTIVE")), // repeated: merged
            (at(40), v("UNAVAILABLE")),
            (at(45), v("READY")),
        ];
        let i = intervals(Some(&v("READY")), &obs, &window);
        let states: Vec<_> = i
            .iter()
            .map(|i| (i.state.as_str(), (i.to - i.from).num_minutes()))
            .collect();
        assert_eq!(
            states,
            [
                ("READY", 10),
                ("ACTIVE", 30),
                ("UNAVAILABLE", 5),
                ("READY", 15)
            ]
        );
        let s = shares(&i);
        assert_eq!(s[0].state, "ACTIVE");
        assert!((s[0].share - 0.5).abs() < 1e-9);
        let total: f64 = s.iter().map(|s| s.share).sum();
        assert!((total - 1.0).abs() < 1e-9);
        // Unknown before the first observation: not counted.
        let i = intervals(None, &obs, &window);
        assert_eq!(i[0].from, at(10));
    }
}
