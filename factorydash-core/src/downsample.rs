//! Reducing a series to at most N points for a chart, keeping its shape.
//!
//! - [`lttb`]: Largest-Triangle-Three-Buckets (Sveinn Steinarsson, "Downsampling Time Series
//!   for Visual Representation", MSc thesis, University of Iceland, 2013, section 4.2): keeps
//!   the points that make the largest triangles with their neighbours' buckets, so peaks
//!   and troughs survive.
//! - [`buckets`]: min, max, mean and count per equal-width time bucket, for tooltips and
//!   band charts, with each bucket's first, last, smallest and largest points: M4 (Uwe
//!   Jugel, Zbigniew Jerzak, Gregor Hackenbroich, Volker Markl, "M4: A Visualization-Oriented
//!   Time Series Data Aggregation", PVLDB 7(10), 2014). [`m4_line`] draws a line from them
//!   that, with one bucket per pixel column, is the line of every point. A database computes
//!   the same buckets in one pass (every store does), so a long window never leaves the
//!   database as raw points.
//!
//! # `UNAVAILABLE`
//! A machine that went `UNAVAILABLE` for an hour has no value for that hour: its chart
//! must not draw a line straight across it. M4's first and last points are therefore the
//! first and last observations of any value ([`LinePoint`], `None` for `UNAVAILABLE`, see
//! [`line_value`]), while the extremes, mean and count are of the numeric values; a bucket
//! of only `UNAVAILABLE` is kept, and [`m4_line`] gives it a point without a value, where
//! the line breaks. Text that is not a number is not drawn at all.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::Value;

/// One point of a numeric series: a time (UTC) and a value.
pub type Point = (DateTime<Utc>, f64);

/// At most `threshold` points of `points` (ordered by time) chosen by LTTB. The first and
/// last points are always kept. With `threshold` < 3 or no more points than it, the input
/// is returned as is.
pub fn lttb(points: &[Point], threshold: usize) -> Vec<Point> {
    if threshold < 3 || points.len() <= threshold {
        return points.to_vec();
    }
    let x = |p: &Point| p.0.timestamp_micros() as f64;
    let mut out = Vec::with_capacity(threshold);
    out.push(points[0]);
    // The points between first and last fall into threshold - 2 buckets.
    let every = (points.len() - 2) as f64 / (threshold - 2) as f64;
    let mut a = 0usize;
    for i in 0..threshold - 2 {
        let start = (i as f64 * every) as usize + 1;
        let end = (((i + 1) as f64 * every) as usize + 1).min(points.len() - 1);
        // The average of the next bucket (the last point for the last bucket).
        let next_start = end;
        let next_end = ((((i + 2) as f64) * every) as usize + 1).min(points.len());
        let next = &points[next_start..next_end.max(next_start + 1).min(points.len())];
        let (avg_x, avg_y) = next
            .iter()
            .fold((0.0, 0.0), |(sx, sy), p| (sx + x(p), sy + p.1));
        let n = next.len() as f64;
        let (avg_x, avg_y) = (avg_x / n, avg_y / n);
        let (ax, ay) = (x(&points[a]), points[a].1);
        let mut best = start;
        let mut best_area = -1.0;
        for (j, p) in points[start..end.max(start + 1)].iter().enumerate() {
            let area = ((ax - avg_x) * (p.1 - ay) - (ax - x(p)) * (avg_y - ay)).abs();
            if area > best_area {
                best_area = area;
                best = start + j;
            }
        }
        out.push(points[best]);
        a = best;
    }
    out.push(points[points.len() - 1]);
    out
}

/// A point of a chart's line: a time (UTC) and a value, `None` where the data item was
/// `UNAVAILABLE` ([`Value::Unavailable`]): a line drawn through such points breaks there
/// (a step-drawn line holds each value until the next point, and holds nothing from a
/// `None`). Serialised as `[time, value]`, `value` being `null` for `None`.
pub type LinePoint = (DateTime<Utc>, Option<f64>);

/// What a chart draws of an observation's value: `Some(Some(v))` for a finite number
/// ([`Value::as_f64`]), `Some(None)` for `UNAVAILABLE` (a break in the line), and `None`
/// for anything else (text that is not a number, or a non-finite one), which is not drawn
/// at all: the line neither breaks nor moves there.
pub fn line_value(value: &Value) -> Option<Option<f64>> {
    match value {
        Value::Unavailable => Some(None),
        Value::Text(_) => value.as_f64().filter(|v| v.is_finite()).map(Some),
    }
}

/// Summary of the observations in one time bucket: the numeric values' count, extremes
/// and mean, how many were `UNAVAILABLE`, and the first and last observations of either
/// kind, so that a line drawn from buckets ([`m4_line`]) breaks where the data item was
/// `UNAVAILABLE`.
///
/// A bucket holds at least one observation. `min`, `max`, `mean`, `min_at` and `max_at`
/// are `None` exactly when `count` is 0 (the bucket held only `UNAVAILABLE`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bucket {
    /// The bucket's start (UTC).
    pub start: DateTime<Utc>,
    /// The smallest numeric value.
    pub min: Option<f64>,
    /// The largest numeric value.
    pub max: Option<f64>,
    /// The mean of the numeric values.
    pub mean: Option<f64>,
    /// How many numeric values fell in the bucket.
    pub count: usize,
    /// How many `UNAVAILABLE` observations fell in the bucket.
    pub unavailable: usize,
    /// The bucket's first observation, numeric or `UNAVAILABLE` (by time, then by the
    /// order given).
    pub first: LinePoint,
    /// The bucket's last observation, numeric or `UNAVAILABLE`.
    pub last: LinePoint,
    /// When the smallest value was seen (its first time when it was seen more than once).
    pub min_at: Option<DateTime<Utc>>,
    /// When the largest value was seen (its first time when it was seen more than once).
    pub max_at: Option<DateTime<Utc>>,
}

/// The width of each of `n` equal buckets over `[from, to)`, in whole microseconds (at
/// least 1). Bucket `k` starts at `from + k × width`; a point at `t` falls in bucket
/// `(t − from) / width` (integer division). When the window is not a multiple of `n`
/// microseconds, a last short bucket `n` may follow.
///
/// # Panics
/// When `n` is 0.
pub fn bucket_width(from: DateTime<Utc>, to: DateTime<Utc>, n: usize) -> i64 {
    assert!(n > 0, "at least one bucket");
    ((to - from).num_microseconds().unwrap_or(i64::MAX) / n as i64).max(1)
}

/// The line through each bucket's first, smallest, largest and last points, in time order
/// (M4, Jugel et al. 2014, cited above): at most four points per bucket, the same point never
/// twice. Where a bucket's first or last observation was `UNAVAILABLE`, its point has no
/// value (`None`), so that the line breaks there; a bucket of only `UNAVAILABLE` is one
/// such point (two when its first and last differ in time). An `UNAVAILABLE` stretch that
/// begins and ends inside one bucket, between numeric values, is narrower than the bucket
/// (a pixel column) and is not shown.
pub fn m4_line(buckets: &[Bucket]) -> Vec<LinePoint> {
    let mut out: Vec<LinePoint> = Vec::with_capacity(buckets.len() * 4);
    for b in buckets {
        let extreme = |at: Option<DateTime<Utc>>, v: Option<f64>| Some((at?, Some(v?)));
        let mut four = [
            Some(b.first),
            extreme(b.min_at, b.min),
            extreme(b.max_at, b.max),
            Some(b.last),
        ];
        // Stable: a minimum and maximum at the same time keep that order, and so do a
        // first or last observation and an extreme at its time.
        four.sort_by_key(|p| p.map(|p| p.0));
        for p in four.into_iter().flatten() {
            // Only the same bucket's points (the last four) can repeat it.
            if !out.iter().rev().take(4).any(|q| *q == p) {
                out.push(p);
            }
        }
    }
    out
}

/// Builds the [`Bucket`]s of `[from, to)` from a series' points fed one at a time in time
/// order (by time, then by `sequence`): what [`buckets`] does over a slice, for a store
/// that reads its rows one at a time and keeps only the buckets in memory. Points outside
/// the window and non-finite values are ignored; empty buckets are left out.
#[derive(Debug, Clone)]
pub struct BucketFold {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    width: i64,
    /// The index of the last bucket of `out` (`(start − from) / width`).
    last_index: i64,
    out: Vec<Bucket>,
}

impl BucketFold {
    /// A fold of `[from, to)` into `n` equal-width buckets ([`bucket_width`]). With `n` 0
    /// or an empty window, every point is ignored and there are no buckets.
    pub fn new(from: DateTime<Utc>, to: DateTime<Utc>, n: usize) -> Self {
        let (to, width) = if n == 0 || to <= from {
            (from, 1)
        } else {
            (to, bucket_width(from, to, n))
        };
        BucketFold {
            from,
            to,
            width,
            last_index: -1,
            out: Vec::new(),
        }
    }

    /// Adds the observation at `t` (UTC): `Some` number or `None` for `UNAVAILABLE` (see
    /// [`line_value`]).
    pub fn push(&mut self, t: DateTime<Utc>, value: Option<f64>) {
        if t < self.from || t >= self.to || value.is_some_and(|v| !v.is_finite()) {
            return;
        }
        let index = (t - self.from).num_microseconds().unwrap_or(0) / self.width;
        let point = (t, value);
        let b = match self.out.last_mut() {
            Some(b) if self.last_index == index => {
                b.last = point;
                b
            }
            _ => {
                self.last_index = index;
                self.out.push(Bucket {
                    start: self.from + Duration::microseconds(index * self.width),
                    min: None,
                    max: None,
                    mean: None,
                    count: 0,
                    unavailable: 0,
                    first: point,
                    last: point,
                    min_at: None,
                    max_at: None,
                });
                let last = self.out.len() - 1;
                &mut self.out[last]
            }
        };
        let Some(v) = value else {
            b.unavailable += 1;
            return;
        };
        if b.min.is_none_or(|min| v < min) {
            (b.min, b.min_at) = (Some(v), Some(t));
        }
        if b.max.is_none_or(|max| v > max) {
            (b.max, b.max_at) = (Some(v), Some(t));
        }
        let mean = b.mean.unwrap_or(0.0);
        b.mean = Some(mean + (v - mean) / (b.count + 1) as f64);
        b.count += 1;
    }

    /// The buckets, in time order.
    pub fn finish(self) -> Vec<Bucket> {
        self.out
    }
}

/// The points of `[from, to)` (ordered by time) summarised in `n` equal-width buckets
/// ([`BucketFold`]); empty buckets are left out. Points outside the window and non-finite
/// values are ignored.
///
/// # Panics
/// Never; `n == 0` or an empty window gives no buckets.
pub fn buckets(
    points: &[LinePoint],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    n: usize,
) -> Vec<Bucket> {
    let mut fold = BucketFold::new(from, to, n);
    for &(t, v) in points {
        fold.push(t, v);
    }
    fold.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(n: usize) -> Vec<Point> {
        let t0 = DateTime::from_timestamp(1_475_600_000, 0).unwrap();
        (0..n)
            .map(|i| {
                (
                    t0 + Duration::milliseconds(100 * i as i64),
                    ((i as f64) / 50.0).sin() + if i == 777 { 10.0 } else { 0.0 },
                )
            })
            .collect()
    }

    /// Numeric points as line points.
    fn line(points: &[Point]) -> Vec<LinePoint> {
        points.iter().map(|&(t, v)| (t, Some(v))).collect()
    }

    #[test]
    fn lttb_keeps_ends_and_peaks_within_the_budget() {
        let s = series(10_000);
        let d = lttb(&s, 200);
        assert_eq!(d.len(), 200);
        assert_eq!(d.first(), s.first());
        assert_eq!(d.last(), s.last());
        assert!(d.windows(2).all(|w| w[0].0 < w[1].0), "time order kept");
        assert!(d.iter().any(|p| p.1 > 9.0), "the spike survives");
        assert_eq!(lttb(&s[..50], 200).len(), 50);
    }

    #[test]
    fn buckets_summarise() {
        let s = line(&series(1000));
        let (from, to) = (s[0].0, s[999].0 + Duration::milliseconds(100));
        let b = buckets(&s, from, to, 10);
        assert_eq!(b.len(), 10);
        assert_eq!(b.iter().map(|b| b.count).sum::<usize>(), 1000);
        assert!(b.iter().all(|b| b.unavailable == 0));
        assert!(b
            .iter()
            .all(|b| b.min <= b.mean && b.mean <= b.max && b.min.is_some()));
        assert!(b[7].max > Some(9.0));
        assert!(buckets(&s, from, from, 10).is_empty());
        assert!(buckets(&s, from, to, 0).is_empty());
    }

    #[test]
    fn m4_keeps_every_extreme_and_both_ends_within_four_per_bucket() {
        let s = series(10_000);
        let (from, to) = (s[0].0, s[9_999].0 + Duration::milliseconds(100));
        let b = buckets(&line(&s), from, to, 50);
        let drawn = m4_line(&b);
        assert!(drawn.len() <= 4 * 50);
        assert_eq!(drawn.first(), line(&s).first());
        assert_eq!(drawn.last(), line(&s).last());
        assert!(drawn.windows(2).all(|w| w[0].0 <= w[1].0), "time order");
        // The points of each bucket's extremes are real points of the series.
        for bucket in &b {
            let inside: Vec<_> = s
                .iter()
                .filter(|p| {
                    p.0 >= bucket.start
                        && p.0 < bucket.start + Duration::microseconds(bucket_width(from, to, 50))
                })
                .collect();
            let min = inside.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
            let max = inside.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
            assert_eq!((bucket.min, bucket.max), (Some(min), Some(max)));
            assert!(drawn.contains(&(bucket.min_at.unwrap(), Some(min))));
            assert!(drawn.contains(&(bucket.max_at.unwrap(), Some(max))));
            assert_eq!(bucket.first, (inside[0].0, Some(inside[0].1)));
            let last = inside.last().unwrap();
            assert_eq!(bucket.last, (last.0, Some(last.1)));
        }
        assert!(drawn.iter().any(|p| p.1 > Some(9.0)), "the spike survives");
        // A flat bucket is one point, not four.
        let flat: Vec<LinePoint> = (0..10)
            .map(|i| (from + Duration::seconds(i), Some(1.0)))
            .collect();
        let one = buckets(&flat[..1], from, from + Duration::seconds(10), 1);
        assert_eq!(m4_line(&one).len(), 1);
        assert_eq!(
            m4_line(&buckets(&flat, from, from + Duration::seconds(10), 1)).len(),
            2
        );
    }

    /// An hour UNAVAILABLE between two hours of values: the line breaks for that hour
    /// instead of crossing it, in whatever buckets it falls.
    #[test]
    fn unavailable_breaks_the_line() {
        let t0 = DateTime::from_timestamp(1_796_464_800, 0).unwrap();
        let minute = |m: i64| t0 + Duration::minutes(m);
        // Values every minute for an hour, UNAVAILABLE at 60 (and again at 90, told twice
        // at one instant), values again from 120 to 179.
        let mut points: Vec<LinePoint> = (0..60).map(|m| (minute(m), Some(m as f64))).collect();
        points.push((minute(60), None));
        points.push((minute(90), None));
        points.push((minute(90), None));
        points.extend((120..180).map(|m| (minute(m), Some(m as f64))));
        let (from, to) = (t0, minute(180));
        for n in [1, 3, 6, 12, 180, 10_000] {
            let b = buckets(&points, from, to, n);
            assert_eq!(b.iter().map(|b| b.count).sum::<usize>(), 120, "{n}");
            assert_eq!(b.iter().map(|b| b.unavailable).sum::<usize>(), 3, "{n}");
            for bucket in &b {
                assert_eq!(bucket.min.is_none(), bucket.count == 0, "{n}: {bucket:?}");
                assert_eq!(bucket.min.is_none(), bucket.max_at.is_none(), "{n}");
                assert_eq!(bucket.mean.is_none(), bucket.min_at.is_none(), "{n}");
            }
            let drawn = m4_line(&b);
            assert!(
                drawn.windows(2).all(|w| w[0].0 <= w[1].0),
                "{n}: time order"
            );
            assert!(
                drawn
                    .iter()
                    .enumerate()
                    .all(|(i, p)| !drawn[..i].contains(p)),
                "{n}: never the same point twice"
            );
            assert!(drawn.len() <= 4 * b.len(), "{n}");
            // Whatever the buckets, the value drawn just after 11:00 is none until the
            // values come back at 12:00 (a step line holds the last point's value).
            let held_at = |t: DateTime<Utc>| drawn.iter().rfind(|p| p.0 <= t).map(|p| p.1);
            if n >= 3 {
                assert_eq!(held_at(minute(60)), Some(None), "{n}: {drawn:?}");
                assert_eq!(held_at(minute(119)), Some(None), "{n}: {drawn:?}");
            }
            assert_eq!(held_at(minute(179)), Some(Some(179.0)), "{n}");
            assert_eq!(drawn[0], (t0, Some(0.0)), "{n}");
        }
        // One bucket per minute: the UNAVAILABLE minutes are buckets of their own, each a
        // point without a value, told once.
        let b = buckets(&points, from, to, 180);
        let only: Vec<&Bucket> = b.iter().filter(|b| b.count == 0).collect();
        assert_eq!(only.len(), 2);
        assert_eq!((only[0].unavailable, only[1].unavailable), (1, 2));
        assert_eq!(only[1].first, (minute(90), None));
        let drawn = m4_line(&b);
        assert_eq!(
            drawn.iter().filter(|p| p.1.is_none()).collect::<Vec<_>>(),
            [&(minute(60), None), &(minute(90), None)]
        );
        // The whole window in one bucket: first and last are values, the extremes too;
        // the break is inside the bucket, narrower than it, and not drawn.
        let one = buckets(&points, from, to, 1);
        assert_eq!(one[0].unavailable, 3);
        assert!(m4_line(&one).iter().all(|p| p.1.is_some()));
    }

    /// A bucket that begins or ends UNAVAILABLE draws that end without a value, in time
    /// order with its extremes, and a bucket of only UNAVAILABLE is one point.
    #[test]
    fn a_bucket_s_ends_may_be_unavailable() {
        let t0 = DateTime::from_timestamp(1_796_464_800, 0).unwrap();
        let s = |n: i64| t0 + Duration::seconds(n);
        let points = [
            (s(0), None),
            (s(1), Some(5.0)),
            (s(2), Some(-1.0)),
            (s(3), None),
            // The next bucket: only UNAVAILABLE.
            (s(10), None),
            (s(11), None),
        ];
        let b = buckets(&points, t0, s(20), 2);
        assert_eq!(b.len(), 2);
        assert_eq!(
            (b[0].first, b[0].last, b[0].count, b[0].unavailable),
            ((s(0), None), (s(3), None), 2, 2)
        );
        assert_eq!((b[0].min, b[0].min_at), (Some(-1.0), Some(s(2))));
        assert_eq!(b[0].mean, Some(2.0));
        assert_eq!(
            (b[1].min, b[1].mean, b[1].count, b[1].unavailable),
            (None, None, 0, 2)
        );
        assert_eq!(
            m4_line(&b),
            [
                (s(0), None),
                (s(1), Some(5.0)),
                (s(2), Some(-1.0)),
                (s(3), None),
                (s(10), None),
                (s(11), None),
            ]
        );
        // Non-finite numbers are not drawn; what a value draws as.
        assert!(buckets(&[(s(0), Some(f64::NAN))], t0, s(1), 1).is_empty());
        assert_eq!(line_value(&Value::Unavailable), Some(None));
        assert_eq!(line_value(&Value::Text("-2.5".into())), Some(Some(-2.5)));
        assert_eq!(line_value(&Value::Text("ACTIVE".into())), None);
        assert_eq!(line_value(&Value::Text("inf".into())), None);
    }
}
