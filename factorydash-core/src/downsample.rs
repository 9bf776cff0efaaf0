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
//!   the same buckets in one pass (the PostgreSQL store does), so a long window never
//!   leaves the database as raw points.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

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

/// Summary of the points in one time bucket.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bucket {
    /// The bucket's start (UTC).
    pub start: DateTime<Utc>,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
    /// The mean value.
    pub mean: f64,
    /// How many points fell in the bucket.
    pub count: usize,
    /// The bucket's first point (by time, then by order given).
    pub first: Point,
    /// The bucket's last point.
    pub last: Point,
    /// When the smallest value was seen (its first time when it was seen more than once).
    pub min_at: DateTime<Utc>,
    /// When the largest value was seen (its first time when it was seen more than once).
    pub max_at: DateTime<Utc>,
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
/// (M4): at most four points per bucket, the same point never twice.
pub fn m4_line(buckets: &[Bucket]) -> Vec<Point> {
    let mut out = Vec::with_capacity(buckets.len() * 4);
    for b in buckets {
        let mut four = [b.first, (b.min_at, b.min), (b.max_at, b.max), b.last];
        // Stable: a minimum and maximum at the same time keep that order.
        four.sort_by_key(|p| p.0);
        for p in four {
            // Only the same bucket's points (the last four) can repeat it.
            if !out.iter().rev().take(4).any(|q| *q == p) {
                out.push(p);
            }
        }
    }
    out
}

/// The points of `[from, to)` summarised in `n` equal-width buckets; empty buckets are left
/// out. Points outside the window are ignored.
///
/// # Panics
/// Never; `n == 0` or an empty window gives no buckets.
pub fn buckets(points: &[Point], from: DateTime<Utc>, to: DateTime<Utc>, n: usize) -> Vec<Bucket> {
    if n == 0 || to <= from {
        return Vec::new();
    }
    let width = bucket_width(from, to, n);
    let mut out: Vec<Bucket> = Vec::new();
    for &(t, v) in points.iter().filter(|(t, _)| *t >= from && *t < to) {
        let index = (t - from).num_microseconds().unwrap_or(0) / width;
        let start = from + Duration::microseconds(index * width);
        match out.last_mut() {
            Some(b) if b.start == start => {
                if v < b.min {
                    (b.min, b.min_at) = (v, t);
                }
                if v > b.max {
                    (b.max, b.max_at) = (v, t);
                }
                b.mean += (v - b.mean) / (b.count + 1) as f64;
                b.count += 1;
                b.last = (t, v);
            }
            _ => out.push(Bucket {
                start,
                min: v,
                max: v,
                mean: v,
                count: 1,
                first: (t, v),
                last: (t, v),
                min_at: t,
                max_at: t,
            }),
        }
    }
    out
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
        let s = series(1000);
        let (from, to) = (s[0].0, s[999].0 + Duration::milliseconds(100));
        let b = buckets(&s, from, to, 10);
        assert_eq!(b.len(), 10);
        assert_eq!(b.iter().map(|b| b.count).sum::<usize>(), 1000);
        assert!(b.iter().all(|b| b.min <= b.mean && b.mean <= b.max));
        assert!(b[7].max > 9.0);
        assert!(buckets(&s, from, from, 10).is_empty());
    }

    #[test]
    fn m4_keeps_every_extreme_and_both_ends_within_four_per_bucket() {
        let s = series(10_000);
        let (from, to) = (s[0].0, s[9_999].0 + Duration::milliseconds(100));
        let b = buckets(&s, from, to, 50);
        let line = m4_line(&b);
        assert!(line.len() <= 4 * 50);
        assert_eq!(line.first(), s.first());
        assert_eq!(line.last(), s.last());
        assert!(line.windows(2).all(|w| w[0].0 <= w[1].0), "time order");
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
            assert_eq!((bucket.min, bucket.max), (min, max));
            assert!(line.contains(&(bucket.min_at, min)));
            assert!(line.contains(&(bucket.max_at, max)));
            assert_eq!(bucket.first, *inside[0]);
            assert_eq!(bucket.last, **inside.last().unwrap());
        }
        assert!(line.iter().any(|p| p.1 > 9.0), "the spike survives");
        // A flat bucket is one point, not four.
        let flat: Vec<Point> = (0..10)
            .map(|i| (from + Duration::seconds(i), 1.0))
            .collect();
        let one = buckets(&flat[..1], from, from + Duration::seconds(10), 1);
        assert_eq!(m4_line(&one).len(), 1);
        assert_eq!(
            m4_line(&buckets(&flat, from, from + Duration::seconds(10), 1)).len(),
            2
        );
    }
}
