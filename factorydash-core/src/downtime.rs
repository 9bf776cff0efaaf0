//! Downtime Pareto: where a device's, a cell's or the plant's planned time went when it
//! was not running, cause by cause, largest first (the Pareto principle as quality
//! practice uses it: J. M. Juran, *Quality Control Handbook*, "the vital few and the
//! trivial many"). The inputs are summary totals over planned time
//! ([`crate::summary::Measure::Downtime`] and [`crate::summary::Measure::Stops`], read as
//! [`crate::oee::DeviceFigures::downtime`] and [`crate::oee::DeviceFigures::stops`]), so a
//! month of a plant costs what its summaries cost.
//!
//! Every planned second not `ACTIVE` is in exactly one row: a cause's stops, or
//! [`NO_DATA`] (planned time without a known Execution state). The rows therefore add up
//! to the availability loss, planned time minus run time (ISO 22400-2).

use std::collections::BTreeMap;

use serde::Serialize;

/// The most causes listed one by one; the rest are summed in one [`OTHER`] row
/// ([`NO_DATA`] is always listed).
pub const MAX_CAUSES: usize = 20;

/// The row of planned time without a known Execution state.
pub const NO_DATA: &str = "NO DATA";

/// The row summing the causes after the first [`MAX_CAUSES`].
pub const OTHER: &str = "OTHER";

/// One cause's share of the downtime.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Loss {
    /// The cause ([`crate::summary::stop_cause`]), [`NO_DATA`] or [`OTHER`].
    pub cause: String,
    /// Seconds of planned time lost to it.
    pub seconds: f64,
    /// Stops begun in planned time with this cause (0 for [`NO_DATA`]).
    pub stops: u64,
    /// Its share, 0 to 1: of the lost time in [`Pareto::by_time`], of the stops in
    /// [`Pareto::by_count`].
    pub share: f64,
    /// The running total of the shares down to this row, 0 to 1 (the Pareto curve).
    pub cumulative: f64,
}

/// A downtime Pareto.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pareto {
    /// Lost planned time, seconds: the rows' sum.
    pub seconds: f64,
    /// Stops begun in planned time.
    pub stops: u64,
    /// The rows by time, largest first (ties by cause).
    pub by_time: Vec<Loss>,
    /// The causes with stops by number of stops, most first (ties by time), the first
    /// [`MAX_CAUSES`] and one [`OTHER`] row: [`NO_DATA`] is not a stop and is not listed.
    pub by_count: Vec<Loss>,
}

/// The Pareto of `downtime` (seconds per cause) and `stops` (stops per cause), with
/// `no_data_seconds` of planned time without data as its own row. Negative, NaN and
/// infinite inputs are taken as 0.
pub fn pareto(
    downtime: &BTreeMap<String, f64>,
    stops: &BTreeMap<String, f64>,
    no_data_seconds: f64,
) -> Pareto {
    let clean = |v: f64| if v.is_finite() && v > 0.0 { v } else { 0.0 };
    let mut rows: BTreeMap<&str, (f64, u64)> = BTreeMap::new();
    for (cause, s) in downtime {
        rows.entry(cause).or_default().0 += clean(*s);
    }
    for (cause, n) in stops {
        rows.entry(cause).or_default().1 += clean(*n).round() as u64;
    }
    let mut losses: Vec<Loss> = rows
        .into_iter()
        .filter(|(_, (s, n))| *s > 0.0 || *n > 0)
        .map(|(cause, (seconds, stops))| Loss {
            cause: cause.to_owned(),
            seconds,
            stops,
            share: 0.0,
            cumulative: 0.0,
        })
        .collect();
    let by_time = |a: &Loss, b: &Loss| b.seconds.total_cmp(&a.seconds).then(a.cause.cmp(&b.cause));
    let by_stops = |a: &Loss, b: &Loss| b.stops.cmp(&a.stops).then(by_time(a, b));
    let mut counted: Vec<Loss> = losses.iter().filter(|l| l.stops > 0).cloned().collect();
    losses.sort_by(by_time);
    let mut by_time_rows = cap(losses, by_time);
    let no_data = clean(no_data_seconds);
    if no_data > 0.0 {
        by_time_rows.push(Loss {
            cause: NO_DATA.into(),
            seconds: no_data,
            stops: 0,
            share: 0.0,
            cumulative: 0.0,
        });
        by_time_rows.sort_by(by_time);
    }
    // `+ 0.0`: an empty sum is -0.0, which JSON would show as such.
    let seconds: f64 = by_time_rows.iter().map(|l| l.seconds).sum::<f64>() + 0.0;
    shares(&mut by_time_rows, |l| l.seconds, seconds);
    counted.sort_by(by_stops);
    let mut by_count = cap(counted, by_stops);
    let stops: u64 = by_count.iter().map(|l| l.stops).sum();
    shares(&mut by_count, |l| l.stops as f64, stops as f64);
    Pareto {
        seconds,
        stops,
        by_time: by_time_rows,
        by_count,
    }
}

/// Each row's share of `total` by `measure`, and the running total of the shares.
fn shares(rows: &mut [Loss], measure: impl Fn(&Loss) -> f64, total: f64) {
    let mut running = 0.0;
    for l in rows {
        l.share = if total > 0.0 { measure(l) / total } else { 0.0 };
        running += l.share;
        l.cumulative = f64::min(running, 1.0);
    }
}

/// The first [`MAX_CAUSES`] rows of `sorted` and one [`OTHER`] row for the rest.
fn cap(mut sorted: Vec<Loss>, order: impl Fn(&Loss, &Loss) -> std::cmp::Ordering) -> Vec<Loss> {
    if sorted.len() <= MAX_CAUSES {
        return sorted;
    }
    let rest = sorted.split_off(MAX_CAUSES);
    sorted.push(Loss {
        cause: OTHER.into(),
        seconds: rest.iter().map(|l| l.seconds).sum(),
        stops: rest.iter().map(|l| l.stops).sum(),
        share: 0.0,
        cumulative: 0.0,
    });
    sorted.sort_by(order);
    sorted
}

/// Sums causes of several devices (a cell's, the plant's): the inputs of one [`pareto`].
#[derive(Debug, Clone, Default)]
pub struct ParetoSum {
    /// Seconds per cause.
    pub downtime: BTreeMap<String, f64>,
    /// Stops per cause.
    pub stops: BTreeMap<String, f64>,
    /// Planned seconds without data.
    pub no_data_seconds: f64,
}

impl ParetoSum {
    /// Adds one device's figures.
    pub fn add(
        &mut self,
        downtime: &BTreeMap<String, f64>,
        stops: &BTreeMap<String, f64>,
        no_data: f64,
    ) {
        for (c, v) in downtime {
            *self.downtime.entry(c.clone()).or_default() += v;
        }
        for (c, v) in stops {
            *self.stops.entry(c.clone()).or_default() += v;
        }
        self.no_data_seconds += no_data;
    }

    /// Adds another sum.
    pub fn merge(&mut self, other: &ParetoSum) {
        self.add(&other.downtime, &other.stops, other.no_data_seconds);
    }

    /// The Pareto of the sum.
    pub fn pareto(&self) -> Pareto {
        pareto(&self.downtime, &self.stops, self.no_data_seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    #[test]
    fn rows_add_up_and_rank_by_time_and_by_count() {
        let p = pareto(
            &map(&[("FAULT 1", 600.0), ("READY", 300.0), ("FEED_HOLD", 100.0)]),
            &map(&[("FAULT 1", 1.0), ("READY", 6.0), ("FEED_HOLD", 2.0)]),
            1000.0,
        );
        assert_eq!(p.seconds, 2000.0);
        assert_eq!(p.stops, 9);
        let causes: Vec<&str> = p.by_time.iter().map(|l| l.cause.as_str()).collect();
        assert_eq!(causes, ["NO DATA", "FAULT 1", "READY", "FEED_HOLD"]);
        assert_eq!(p.by_time[1].share, 0.3);
        assert!((p.by_time[3].cumulative - 1.0).abs() < 1e-12);
        let by_count: Vec<&str> = p.by_count.iter().map(|l| l.cause.as_str()).collect();
        assert_eq!(by_count, ["READY", "FEED_HOLD", "FAULT 1"]);
    }

    #[test]
    fn many_causes_end_in_one_other_row_and_bad_numbers_count_nothing() {
        let many: BTreeMap<String, f64> = (0..50)
            .map(|i| (format!("FAULT {i}"), 10.0 + f64::from(i)))
            .collect();
        let mut downtime = many.clone();
        downtime.insert("BAD".into(), f64::NAN);
        downtime.insert("NEG".into(), -5.0);
        let p = pareto(
            &downtime,
            &many.keys().map(|k| (k.clone(), 1.0)).collect(),
            0.0,
        );
        assert_eq!(p.by_time.len(), MAX_CAUSES + 1);
        let total: f64 = many.values().sum();
        assert!((p.seconds - total).abs() < 1e-9);
        assert_eq!(p.stops, 50);
        assert!(p.by_time.iter().any(|l| l.cause == OTHER && l.stops == 30));
    }
}
