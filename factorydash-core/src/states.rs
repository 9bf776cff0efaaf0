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
