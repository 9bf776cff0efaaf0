//! Reducing a series to at most N points for a chart, keeping its shape.
//!
//! - [`lttb`]: Largest-Triangle-Three-Buckets (Sveinn Steinarsson, "Downsampling Time Series
//!   for Visual Representation", MSc thesis, University of Iceland, 2013, section 4.2): keeps
//!   the points that make the largest triangles with their neighbours' buckets, so peaks
//!   and troughs survive.
//! - [`buckets`]: min, max, mean and count per equal-width time bucket, for tooltips and
//!   band charts.

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
    let width = ((to - from).num_microseconds().unwrap_or(i64::MAX) / n as i64).max(1);
    let mut out: Vec<Bucket> = Vec::new();
    for &(t, v) in points.iter().filter(|(t, _)| *t >= from && *t < to) {
        let index = (t - from).num_microseconds().unwrap_or(0) / width;
        let start = from + Duration::microseconds(index * width);
        match out.last_mut() {
            Some(b) if b.start == start => {
                b.min = b.min.min(v);
                b.max = b.max.max(v);
                b.mean += (v - b.mean) / (b.count + 1) as f64;
                b.count += 1;
            }
            _ => out.push(Bucket {
                start,
                min: v,
                max: v,
                mean: v,
                count: 1,
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
}
