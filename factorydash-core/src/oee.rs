//! Overall equipment effectiveness and its factors, by ISO 22400-2:2014 (key performance
//! indicators for manufacturing operations management; after Nakajima, *Introduction to
//! TPM*, 1988):
//!
//! - availability = run time (APT) / planned busy time (PBT);
//! - performance = (ideal cycle time × produced quantity) / run time;
//! - quality = good quantity / produced quantity;
//! - OEE = availability × performance × quality.
//!
//! Run time is the time `Execution` was `ACTIVE` within planned time. A factor whose data
//! is absent is *not reported* (`None`, with the reason), never a made-up 100 %: no part
//! count, no performance or quality; no ideal cycle time, no performance; no planned time,
//! no availability. Planned time with no Execution data (or `UNAVAILABLE`) is shown as "no
//! data" beside availability; it counts as planned and not running, so availability is
//! never raised by missing data.
//!
//! For several devices (a cell, a line, the plant) the times and quantities are summed
//! first and the factors computed from the sums (ISO 22400-2, aggregation of KPIs over
//! work units), each over the devices that report it; their OEE only when every device
//! reports every factor (a product of factors over different devices is no OEE).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::summary::{Measure, SummaryTotal};

/// What one device's OEE is computed from, over a window's planned time.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OeeInputs {
    /// Planned busy time, seconds.
    pub planned_seconds: f64,
    /// Seconds `Execution` was `ACTIVE` within planned time.
    pub run_seconds: f64,
    /// Seconds with a known Execution state (not `UNAVAILABLE`) within planned time.
    pub known_seconds: f64,
    /// Parts produced (`PartCount` ALL, or GOOD + BAD), if the device counts parts.
    pub produced: Option<f64>,
    /// Good parts (`PartCount` GOOD, or ALL − BAD), if the device reports either.
    pub good: Option<f64>,
    /// Ideal cycle time, seconds per part, if known: the mean over the parts produced,
    /// each program's parts weighed by its own.
    pub ideal_cycle_time: Option<f64>,
    /// How many programs the mean weighs (0: the device's one ideal cycle time).
    pub programs: usize,
    /// Whether a learned ideal cycle time ([`best_repeated_cycle`]) weighs some parts.
    pub ideal_learned: bool,
}

/// One factor: its value (0 to 1, performance may exceed 1 when the ideal cycle time is
/// set too long) or why it is not reported, and how it was computed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Factor {
    /// The value, `None` when not reported.
    pub value: Option<f64>,
    /// How it was computed, or why it is not reported.
    pub how: String,
}

impl Factor {
    fn none(why: &str) -> Self {
        Factor {
            value: None,
            how: why.to_owned(),
        }
    }
}

/// OEE and its factors over one window.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Oee {
    /// Planned busy time, seconds.
    pub planned_seconds: f64,
    /// Run time, seconds.
    pub run_seconds: f64,
    /// Planned seconds without Execution data.
    pub no_data_seconds: f64,
    /// Parts produced, if counted.
    pub produced: Option<f64>,
    /// Good parts, if reported.
    pub good: Option<f64>,
    /// Availability.
    pub availability: Factor,
    /// Performance.
    pub performance: Factor,
    /// Quality.
    pub quality: Factor,
    /// OEE: the product of the three, reported only when all three are.
    pub oee: Factor,
}

/// `3h 05m` style.
pub fn duration_text(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as i64;
    let (h, m) = (s / 3600, (s % 3600) / 60);
    if h > 0 {
        format!("{h}h {m:02}m")
    } else if m > 0 {
        format!("{m}m {:02}s", s % 60)
    } else {
        format!("{s}s")
    }
}

fn number(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

/// OEE of one device (one input) or of several together (their sums).
pub fn oee(inputs: &[OeeInputs]) -> Oee {
    let planned: f64 = inputs.iter().map(|i| i.planned_seconds).sum();
    let run: f64 = inputs.iter().map(|i| i.run_seconds).sum();
    let known: f64 = inputs.iter().map(|i| i.known_seconds).sum();
    let availability = if planned <= 0.0 {
        Factor::none("no planned time in the window")
    } else if known <= 0.0 {
        Factor::none("no Execution data in the planned time")
    } else {
        Factor {
            value: Some(run / planned),
            how: format!(
                "run {} ÷ planned {}",
                duration_text(run),
                duration_text(planned)
            ),
        }
    };
    let counted: Vec<&OeeInputs> = inputs.iter().filter(|i| i.produced.is_some()).collect();
    let produced = (!counted.is_empty()).then(|| counted.iter().filter_map(|i| i.produced).sum());
    let timed: Vec<&OeeInputs> = counted
        .iter()
        .copied()
        .filter(|i| i.ideal_cycle_time.is_some())
        .collect();
    let performance = if counted.is_empty() {
        Factor::none("no part count reported")
    } else if timed.is_empty() {
        Factor::none("no ideal cycle time set (for the device, or for every program it ran)")
    } else {
        let ideal: f64 = timed
            .iter()
            .map(|i| i.ideal_cycle_time.unwrap_or(0.0) * i.produced.unwrap_or(0.0))
            .sum();
        let run: f64 = timed.iter().map(|i| i.run_seconds).sum();
        if run <= 0.0 {
            Factor::none("no run time")
        } else if timed.len() == 1 {
            let i = timed[0];
            Factor {
                value: Some(ideal / run),
                how: format!(
                    "{} s ideal{}{} × {} parts ÷ run {}",
                    number(i.ideal_cycle_time.unwrap_or(0.0)),
                    if i.programs > 1 {
                        format!(" (mean of {} programs)", i.programs)
                    } else {
                        String::new()
                    },
                    if i.ideal_learned {
                        " (learned: the best repeated cycle)"
                    } else {
                        ""
                    },
                    number(i.produced.unwrap_or(0.0)),
                    duration_text(run)
                ),
            }
        } else {
            Factor {
                value: Some(ideal / run),
                how: format!(
                    "ideal time {} ÷ run {} over {} devices{}",
                    duration_text(ideal),
                    duration_text(run),
                    timed.len(),
                    match timed.iter().filter(|i| i.ideal_learned).count() {
                        0 => String::new(),
                        n => format!(" ({n} with a learned ideal cycle time)"),
                    }
                ),
            }
        }
    };
    let graded: Vec<&OeeInputs> = counted
        .iter()
        .copied()
        .filter(|i| i.good.is_some())
        .collect();
    let quality = if counted.is_empty() {
        Factor::none("no part count reported")
    } else if graded.is_empty() {
        Factor::none("no good or bad part count reported")
    } else {
        let good: f64 = graded.iter().filter_map(|i| i.good).sum();
        let made: f64 = graded.iter().filter_map(|i| i.produced).sum();
        if made <= 0.0 {
            Factor::none("no parts produced")
        } else {
            Factor {
                value: Some(good / made),
                how: format!("{} good ÷ {} produced", number(good), number(made)),
            }
        }
    };
    let every_device = graded.len() == inputs.len() && timed.len() == inputs.len();
    let product = match (availability.value, performance.value, quality.value) {
        (Some(a), Some(p), Some(q)) if every_device => Factor {
            value: Some(a * p * q),
            how: "availability × performance × quality".into(),
        },
        (Some(_), Some(_), Some(_)) => Factor::none(
            "not every device reports every factor (each factor is over the devices that report it)",
        ),
        _ => Factor::none("not every factor is reported"),
    };
    let finite = |f: Factor| match f.value {
        Some(v) if !v.is_finite() => Factor::none("not a finite number (a counter out of range)"),
        _ => f,
    };
    let (availability, performance, quality, product) = (
        finite(availability),
        finite(performance),
        finite(quality),
        finite(product),
    );
    Oee {
        planned_seconds: planned,
        run_seconds: run,
        no_data_seconds: (planned - known).max(0.0),
        produced,
        good: (!graded.is_empty()).then(|| graded.iter().filter_map(|i| i.good).sum()),
        availability,
        performance,
        quality,
        oee: product,
    }
}

/// One device's summary totals read as figures: the Execution data item with the most
/// known time (a device with several paths reports several; ties go to the smaller id),
/// its seconds per state, Fault and Warning seconds, and the part counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceFigures {
    /// The Execution data item read.
    pub execution_item: Option<String>,
    /// Seconds per Execution state (`UNAVAILABLE` included).
    pub execution: BTreeMap<String, f64>,
    /// Seconds per Availability state.
    pub availability: BTreeMap<String, f64>,
    /// Seconds per ControllerMode state.
    pub controller_mode: BTreeMap<String, f64>,
    /// Seconds with a Fault active.
    pub fault_seconds: f64,
    /// Seconds with a Warning active.
    pub warning_seconds: f64,
    /// Parts counted by subType (`ALL`, `GOOD`, `BAD`), for the subTypes the device
    /// reports (0 when it reports one and made none).
    pub parts: BTreeMap<String, f64>,
    /// Seconds stopped per stop cause ([`crate::summary::stop_cause`]), of the Execution
    /// data item read.
    pub downtime: BTreeMap<String, f64>,
    /// Stops begun per cause, of the Execution data item read.
    pub stops: BTreeMap<String, f64>,
    /// Parts counted per subType and program (empty program: none held), of the part
    /// count data item read for each subType.
    pub program_parts: BTreeMap<String, BTreeMap<String, f64>>,
}

/// The ideal cycle times a device's parts are weighed by (ISO 22400-2: planned runtime
/// per item), seconds per part: per program (`Program` event) where set, else the
/// device's.
#[derive(Debug, Clone, Copy, Default)]
pub struct IdealCycleTimes<'a> {
    /// The device's own (its record's, or learned), for parts of programs without one.
    pub device: Option<f64>,
    /// Whether `device` was learned ([`best_repeated_cycle`]) rather than set.
    pub device_learned: bool,
    /// Per program name.
    pub programs: Option<&'a BTreeMap<String, f64>>,
}

/// How many cycles within [`CYCLE_TOLERANCE`] of each other make a repeated cycle.
pub const MIN_REPEATS: usize = 5;

/// How far apart (a fraction of the shorter) the cycles of one repeated cycle may be.
pub const CYCLE_TOLERANCE: f64 = 0.05;

/// The longest time between two parts taken as a cycle, seconds (longer: the machine
/// stood between them).
pub const MAX_CYCLE_SECONDS: f64 = 4.0 * 3600.0;

/// An ideal cycle time learned from a part count ([`best_repeated_cycle`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LearnedCycle {
    /// Seconds per part: the median of the repeated cycle's cycles.
    pub seconds: f64,
    /// How many cycles it was seen in.
    pub repeats: usize,
    /// How many cycles were read (one part each).
    pub cycles: usize,
}

/// The least share of all cycles a repeated cycle must hold (fewer: a glitch that
/// repeats, such as a part counted twice, not the machine's pace).
pub const MIN_REPEAT_SHARE: f64 = 0.1;

/// The best repeated cycle of a part count: the fastest cycle (time between the count
/// first reaching `n` and first reaching `n + 1`, at most [`MAX_CYCLE_SECONDS`]) that the
/// machine made at least [`MIN_REPEATS`] times, and in at least [`MIN_REPEAT_SHARE`] of
/// its cycles, within [`CYCLE_TOLERANCE`] of each other; their median. Faster cycles
/// that do not repeat as often (a part counted twice, a count reset) are taken as noise,
/// slower ones as cycles with waits in them. `counts`: the part count's observations in
/// time order (`(time, count)`, `None` for `UNAVAILABLE` or a value that is not a number:
/// no cycle spans it); a count sent again unchanged (a reconnect) changes nothing.
/// `None` when no cycle repeats.
///
/// The rule is the plant floor's "best demonstrated cycle", the ideal rate an OEE
/// programme starts from where no engineered standard exists (Nakajima's ideal cycle
/// time is the design one: set it in the device's record when it is known).
pub fn best_repeated_cycle(
    counts: impl IntoIterator<Item = (DateTime<Utc>, Option<f64>)>,
) -> Option<LearnedCycle> {
    let mut cycles = Vec::new();
    // When the count first reached its current value.
    let mut last: Option<(DateTime<Utc>, f64)> = None;
    for (t, n) in counts {
        let Some(n) = n.filter(|n| n.is_finite()) else {
            last = None;
            continue;
        };
        match last {
            Some((_, n0)) if n == n0 => continue,
            Some((t0, n0)) => {
                let seconds = (t - t0).as_seconds_f64();
                if (n - n0 - 1.0).abs() < 1e-9 && seconds > 0.0 && seconds <= MAX_CYCLE_SECONDS {
                    cycles.push(seconds);
                }
            }
            None => {}
        }
        last = Some((t, n));
    }
    cycles.sort_by(f64::total_cmp);
    let mut end = 0;
    for start in 0..cycles.len() {
        end = end.max(start);
        while end < cycles.len() && cycles[end] <= cycles[start] * (1.0 + CYCLE_TOLERANCE) {
            end += 1;
        }
        let repeats = end - start;
        if repeats >= MIN_REPEATS && repeats as f64 >= MIN_REPEAT_SHARE * cycles.len() as f64 {
            let run = &cycles[start..end];
            let seconds = if repeats % 2 == 1 {
                run[repeats / 2]
            } else {
                (run[repeats / 2 - 1] + run[repeats / 2]) / 2.0
            };
            return Some(LearnedCycle {
                seconds,
                repeats,
                cycles: cycles.len(),
            });
        }
    }
    None
}

impl IdealCycleTimes<'_> {
    fn of(&self, program: &str) -> Option<f64> {
        self.programs
            .and_then(|p| p.get(program).copied())
            .or(self.device)
    }
}

impl DeviceFigures {
    /// The figures of one device's totals.
    pub fn from_totals<'a>(totals: impl IntoIterator<Item = &'a SummaryTotal>) -> Self {
        let mut f = DeviceFigures::default();
        // item → state → seconds, per state measure
        let mut by_item: BTreeMap<(Measure, &str), BTreeMap<String, f64>> = BTreeMap::new();
        let mut parts: BTreeMap<(&str, &str), f64> = BTreeMap::new();
        // (subType, item) → program → parts
        let mut by_program: BTreeMap<(&str, &str), BTreeMap<String, f64>> = BTreeMap::new();
        // item → cause → seconds, and stops
        let mut downtime: BTreeMap<&str, BTreeMap<String, f64>> = BTreeMap::new();
        let mut stops: BTreeMap<&str, BTreeMap<String, f64>> = BTreeMap::new();
        for t in totals {
            match t.measure {
                Measure::Downtime | Measure::Stops => {
                    let into = if t.measure == Measure::Downtime {
                        &mut downtime
                    } else {
                        &mut stops
                    };
                    *into
                        .entry(t.item.as_str())
                        .or_default()
                        .entry(t.state.clone())
                        .or_default() += t.value;
                }
                Measure::ProgramParts => {
                    let (sub, program) = t.state.split_once('|').unwrap_or(("ALL", ""));
                    *by_program
                        .entry((sub, t.item.as_str()))
                        .or_default()
                        .entry(program.to_owned())
                        .or_default() += t.value;
                }
                Measure::Fault => f.fault_seconds += t.value,
                Measure::Warning => f.warning_seconds += t.value,
                Measure::PartCount => {
                    *parts
                        .entry((t.state.as_str(), t.item.as_str()))
                        .or_default() += t.value;
                }
                m => {
                    *by_item
                        .entry((m, t.item.as_str()))
                        .or_default()
                        .entry(t.state.clone())
                        .or_default() += t.value;
                }
            }
        }
        for measure in [
            Measure::Execution,
            Measure::Availability,
            Measure::ControllerMode,
        ] {
            let known = |states: &BTreeMap<String, f64>| -> f64 {
                states
                    .iter()
                    .filter(|(s, _)| s.as_str() != "UNAVAILABLE")
                    .map(|(_, v)| v)
                    .sum()
            };
            let best = by_item.iter().filter(|((m, _), _)| *m == measure).max_by(
                |((_, a), x), ((_, b), y)| known(x).total_cmp(&known(y)).then_with(|| b.cmp(a)),
            );
            if let Some(((_, item), states)) = best {
                match measure {
                    Measure::Execution => {
                        f.execution_item = Some((*item).to_owned());
                        f.execution = states.clone();
                    }
                    Measure::Availability => f.availability = states.clone(),
                    _ => f.controller_mode = states.clone(),
                }
            }
        }
        // Per subType, the data item that counted the most (ties to the smaller id).
        let mut best: BTreeMap<&str, (f64, &str)> = BTreeMap::new();
        for ((sub, item), v) in parts {
            let e = best.entry(sub).or_insert((v, item));
            if v > e.0 {
                *e = (v, item);
            }
        }
        for (sub, (_, item)) in &best {
            if let Some(programs) = by_program.remove(&(*sub, *item)) {
                f.program_parts.insert((*sub).to_owned(), programs);
            }
        }
        f.parts = best
            .into_iter()
            .map(|(k, (v, _))| (k.to_owned(), v))
            .collect();
        if let Some(item) = f.execution_item.as_deref() {
            // Causes whose stops moved to another cause (within its grace) sum to 0.
            let kept = |m: Option<&BTreeMap<String, f64>>| -> BTreeMap<String, f64> {
                m.into_iter()
                    .flatten()
                    .filter(|(_, v)| **v > 1e-9)
                    .map(|(k, v)| (k.clone(), *v))
                    .collect()
            };
            f.downtime = kept(downtime.get(item));
            f.stops = kept(stops.get(item));
        }
        f
    }

    /// Seconds in `state` of Execution.
    pub fn execution_seconds(&self, state: &str) -> f64 {
        self.execution.get(state).copied().unwrap_or(0.0)
    }

    /// Seconds with a known Execution state.
    pub fn known_seconds(&self) -> f64 {
        self.execution
            .iter()
            .filter(|(s, _)| s.as_str() != "UNAVAILABLE")
            .map(|(_, v)| v)
            .sum()
    }

    /// The ideal time of the parts produced (seconds): each program's parts × its ideal
    /// cycle time, and parts counted without a program (or before parts were counted per
    /// program) × the device's; `None` when some parts have no ideal cycle time. With
    /// how many programs were weighed.
    fn ideal_seconds(
        &self,
        produced: f64,
        ideal: IdealCycleTimes<'_>,
    ) -> Option<(f64, usize, bool)> {
        // Per program: ALL, else GOOD + BAD (as `produced` is).
        let mut per_program: BTreeMap<&str, f64> = BTreeMap::new();
        let subs: &[&str] = if self.parts.contains_key("ALL") {
            &["ALL"]
        } else {
            &["GOOD", "BAD"]
        };
        for sub in subs {
            for (program, n) in self.program_parts.get(*sub).into_iter().flatten() {
                *per_program.entry(program.as_str()).or_default() += n;
            }
        }
        let mut seconds = 0.0;
        let mut programs = 0;
        let mut covered = 0.0;
        let mut used_device = false;
        for (program, n) in per_program {
            if n <= 0.0 {
                continue;
            }
            let own = ideal.programs.and_then(|p| p.get(program).copied());
            used_device |= own.is_none();
            seconds += ideal.of(program)? * n;
            covered += n;
            programs += usize::from(!program.is_empty());
        }
        let rest = produced - covered;
        if rest > 1e-9 {
            seconds += ideal.device? * rest;
            used_device = true;
        }
        Some((seconds, programs, used_device))
    }

    /// The OEE inputs these figures give, over `planned_seconds` of planned time, with
    /// the ideal cycle times known.
    pub fn oee_inputs(&self, planned_seconds: f64, ideal: IdealCycleTimes<'_>) -> OeeInputs {
        let (all, good, bad) = (
            self.parts.get("ALL").copied(),
            self.parts.get("GOOD").copied(),
            self.parts.get("BAD").copied(),
        );
        let produced = all.or(match (good, bad) {
            (Some(g), Some(b)) => Some(g + b),
            _ => None,
        });
        let good = good.or(match (all, bad) {
            (Some(a), Some(b)) => Some((a - b).max(0.0)),
            _ => None,
        });
        // The mean ideal cycle time of the parts produced, weighed by program.
        let ideal_cycle = match produced {
            Some(n) if n > 0.0 => self
                .ideal_seconds(n, ideal)
                .map(|(seconds, programs, used)| (seconds / n, programs, used)),
            _ => ideal.device.map(|d| (d, 0, true)),
        };
        OeeInputs {
            planned_seconds,
            run_seconds: self.execution_seconds("ACTIVE"),
            known_seconds: self.known_seconds(),
            produced,
            good,
            ideal_cycle_time: ideal_cycle.map(|(mean, _, _)| mean),
            programs: ideal_cycle.map_or(0, |(_, n, _)| n),
            ideal_learned: ideal.device_learned && ideal_cycle.is_some_and(|(_, _, used)| used),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_best_repeated_cycle_is_the_fastest_seen_five_times() {
        use chrono::TimeZone;
        let t0 = Utc.with_ymd_and_hms(2026, 3, 2, 6, 0, 0).unwrap();
        // Cycles: a double count (1 s), 40 s ×2, 42 s ×5 (41.0–43.0), 60 s ×6, a wait of
        // 5 h (not a cycle), a reset (not one part), two parts at once (not one).
        let gaps = [
            1.0, 40.0, 40.0, 42.0, 41.0, 43.0, 42.5, 41.5, 60.0, 60.0, 60.0, 60.0, 60.0, 60.0,
            18_000.0,
        ];
        let mut t = t0;
        let mut n = 100.0;
        let mut counts = vec![(t, Some(n))];
        for g in gaps {
            t += chrono::Duration::milliseconds((g * 1000.0) as i64);
            n += 1.0;
            counts.push((t, Some(n)));
            // Sent again 0.5 s later (a reconnect): the cycle is from the first.
            counts.push((t + chrono::Duration::milliseconds(500), Some(n)));
        }
        counts.push((t + chrono::Duration::seconds(30), Some(0.0)));
        counts.push((t + chrono::Duration::seconds(60), Some(2.0)));
        let learned = best_repeated_cycle(counts.iter().copied()).unwrap();
        // 40, 40, 41, 41.5, 42 are within 5 % of 40: the fastest repeated cycle.
        assert_eq!(learned.seconds, 41.0);
        assert_eq!((learned.repeats, learned.cycles), (5, 14));
        // Four times only: not repeated.
        assert_eq!(best_repeated_cycle(counts.iter().take(10).copied()), None);
        assert_eq!(best_repeated_cycle([]), None);
        // UNAVAILABLE between two counts: no cycle across it.
        let broken: Vec<_> = counts
            .iter()
            .enumerate()
            .map(|(i, (t, n))| (*t, if i % 4 == 3 { None } else { *n }))
            .collect();
        assert!(best_repeated_cycle(broken).is_none_or(|l| l.cycles < 14));
        // A glitch seen five times among a hundred cycles of 60 s is not the pace.
        let mut t = t0;
        let mut glitchy = vec![(t, Some(0.0))];
        for i in 1..=105 {
            t += chrono::Duration::seconds(if i % 21 == 0 { 1 } else { 60 });
            glitchy.push((t, Some(f64::from(i))));
        }
        assert_eq!(best_repeated_cycle(glitchy).unwrap().seconds, 60.0);
    }

    #[test]
    fn a_learned_ideal_cycle_time_says_so() {
        let f = DeviceFigures {
            execution: [("ACTIVE".to_owned(), 3600.0)].into_iter().collect(),
            parts: [("ALL".to_owned(), 60.0)].into_iter().collect(),
            ..DeviceFigures::default()
        };
        let learned = IdealCycleTimes {
            device: Some(50.0),
            device_learned: true,
            programs: None,
        };
        let i = f.oee_inputs(3600.0, learned);
        assert!(i.ideal_learned);
        let o = oee(&[i]);
        assert!(
            o.performance.how.contains("learned"),
            "{}",
            o.performance.how
        );
        let set = IdealCycleTimes {
            device_learned: false,
            ..learned
        };
        assert!(!f.oee_inputs(3600.0, set).ideal_learned);
    }

    #[test]
    fn factors_by_the_standard_definitions() {
        let i = OeeInputs {
            planned_seconds: 8.0 * 3600.0,
            run_seconds: 6.0 * 3600.0,
            known_seconds: 8.0 * 3600.0,
            produced: Some(300.0),
            good: Some(285.0),
            ideal_cycle_time: Some(60.0),
            programs: 0,
            ideal_learned: false,
        };
        let o = oee(&[i]);
        assert_eq!(o.availability.value, Some(0.75));
        assert_eq!(o.performance.value, Some(300.0 * 60.0 / (6.0 * 3600.0)));
        assert_eq!(o.quality.value, Some(0.95));
        let expected = 0.75 * (18_000.0 / 21_600.0) * 0.95;
        assert!((o.oee.value.unwrap() - expected).abs() < 1e-12);
        assert_eq!(o.availability.how, "run 6h 00m ÷ planned 8h 00m");
    }

    #[test]
    fn absent_data_is_not_reported_never_made_up() {
        let o = oee(&[OeeInputs {
            planned_seconds: 3600.0,
            run_seconds: 1800.0,
            known_seconds: 1800.0,
            ..OeeInputs::default()
        }]);
        assert_eq!(o.availability.value, Some(0.5));
        assert_eq!(o.no_data_seconds, 1800.0);
        assert_eq!(o.performance.value, None);
        assert_eq!(o.performance.how, "no part count reported");
        assert_eq!(o.quality.value, None);
        assert_eq!(o.oee.value, None);
        let none = oee(&[]);
        assert_eq!(none.availability.value, None);
    }

    #[test]
    fn several_devices_sum_before_dividing() {
        let a = OeeInputs {
            planned_seconds: 100.0,
            run_seconds: 100.0,
            known_seconds: 100.0,
            ..OeeInputs::default()
        };
        let b = OeeInputs {
            planned_seconds: 300.0,
            run_seconds: 0.0,
            known_seconds: 300.0,
            ..OeeInputs::default()
        };
        assert_eq!(oee(&[a, b]).availability.value, Some(0.25));
    }

    #[test]
    fn figures_pick_the_execution_item_with_most_known_time() {
        let t = |item: &str, measure, state: &str, value| SummaryTotal {
            agent: "a".into(),
            device: "M".into(),
            item: item.into(),
            measure,
            state: state.into(),
            value,
        };
        let totals = [
            t("p1", Measure::Execution, "ACTIVE", 10.0),
            t("p2", Measure::Execution, "ACTIVE", 50.0),
            t("p2", Measure::Execution, "UNAVAILABLE", 500.0),
            t("pc", Measure::PartCount, "ALL", 7.0),
            t("pc", Measure::PartCount, "BAD", 1.0),
        ];
        let f = DeviceFigures::from_totals(&totals);
        assert_eq!(f.execution_item.as_deref(), Some("p2"));
        let i = f.oee_inputs(100.0, IdealCycleTimes::default());
        assert_eq!((i.produced, i.good), (Some(7.0), Some(6.0)));
    }

    #[test]
    fn each_programs_parts_are_weighed_by_its_own_ideal_cycle_time() {
        let t = |measure, state: &str, value| SummaryTotal {
            agent: "a".into(),
            device: "M".into(),
            item: "pc".into(),
            measure,
            state: state.into(),
            value,
        };
        // 10 parts: 6 of O100 (ideal 30 s), 3 of O200 (ideal 60 s), 1 before any program.
        let totals = [
            t(Measure::Execution, "ACTIVE", 600.0),
            t(Measure::PartCount, "ALL", 10.0),
            t(Measure::ProgramParts, "ALL|O100", 6.0),
            t(Measure::ProgramParts, "ALL|O200", 3.0),
            t(Measure::ProgramParts, "ALL|", 1.0),
        ];
        let f = DeviceFigures::from_totals(&totals);
        let programs: BTreeMap<String, f64> =
            [("O100".to_owned(), 30.0), ("O200".to_owned(), 60.0)].into();
        let both = IdealCycleTimes {
            device: Some(45.0),
            programs: Some(&programs),
            device_learned: false,
        };
        let i = f.oee_inputs(600.0, both);
        // (6 × 30 + 3 × 60 + 1 × 45) ÷ 10
        assert_eq!(i.ideal_cycle_time, Some(40.5));
        assert_eq!(i.programs, 2);
        let o = oee(&[i]);
        assert_eq!(o.performance.value, Some(405.0 / 600.0));
        assert!(
            o.performance.how.contains("mean of 2 programs"),
            "{}",
            o.performance.how
        );
        // Without the device's: the part without a program has no ideal, so no
        // performance (never a figure over some of the parts).
        let programs_only = IdealCycleTimes {
            device: None,
            programs: Some(&programs),
            device_learned: false,
        };
        assert_eq!(f.oee_inputs(600.0, programs_only).ideal_cycle_time, None);
        // Only the device's: every part by it.
        let device_only = IdealCycleTimes {
            device: Some(45.0),
            programs: None,
            device_learned: false,
        };
        assert_eq!(
            f.oee_inputs(600.0, device_only).ideal_cycle_time,
            Some(45.0)
        );
    }
}
