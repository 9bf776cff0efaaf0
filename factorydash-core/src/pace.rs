//! The pace of a recording replayed as if live.
//!
//! A recording's observations are replayed in `sequence` order. The wait before each one is
//! the difference between its timestamp and the previous one's, clamped to
//! `[0, max_gap]`: real documents have timestamps that go backwards (an agent's restart
//! `UNAVAILABLE`s among older data) and idle gaps of hours (nights, weekends), and neither
//! may stall a replay.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The offsets from the start of a replay at which each observation is revealed, at speed 1.
///
/// `timestamps` are the observations' timestamps in sequence order. The first offset is 0;
/// each next one adds the forward difference to the previous timestamp, clamped to
/// `max_gap`. The result has one offset per timestamp and never decreases.
pub fn offsets(timestamps: &[DateTime<Utc>], max_gap: Duration) -> Vec<Duration> {
    let mut out = Vec::with_capacity(timestamps.len());
    let mut at = Duration::ZERO;
    let mut previous: Option<DateTime<Utc>> = None;
    for &t in timestamps {
        if let Some(p) = previous {
            let step = (t - p).to_std().unwrap_or(Duration::ZERO);
            at += step.min(max_gap);
        }
        out.push(at);
        previous = Some(t);
    }
    out
}

/// An offset at speed 1 scaled to `speed` (2.0 = twice as fast).
///
/// # Panics
/// When `speed` is not a finite number greater than zero.
pub fn scale(offset: Duration, speed: f64) -> Duration {
    assert!(
        speed.is_finite() && speed > 0.0,
        "replay speed must be a finite number > 0, got {speed}"
    );
    offset.div_f64(speed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn backwards_and_idle_gaps_do_not_stall() {
        let t = |s: i64| Utc.timestamp_opt(1_462_200_000 + s, 0).unwrap();
        let ts = [t(0), t(1), t(-100), t(-99), t(10_000), t(10_001)];
        let o = offsets(&ts, Duration::from_secs(2));
        let secs: Vec<u64> = o.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, vec![0, 1, 1, 2, 4, 5]);
        assert_eq!(
            scale(Duration::from_secs(10), 4.0),
            Duration::from_millis(2500)
        );
    }
}
