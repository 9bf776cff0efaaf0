//! Time windows over UTC timestamps.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// A half-open interval of time `[from, to)` in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimeWindow {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

/// A window whose end is before its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("time window ends ({to}) before it starts ({from})")]
pub struct InvalidWindow {
    /// The requested start.
    pub from: DateTime<Utc>,
    /// The requested end.
    pub to: DateTime<Utc>,
}

impl TimeWindow {
    /// The window `[from, to)`.
    ///
    /// # Errors
    /// [`InvalidWindow`] when `to < from`.
    pub fn new(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Self, InvalidWindow> {
        if to < from {
            return Err(InvalidWindow { from, to });
        }
        Ok(TimeWindow { from, to })
    }

    /// The window of length `length` that ends at `end`. A negative length is taken as zero.
    pub fn ending_at(end: DateTime<Utc>, length: Duration) -> Self {
        let length = length.max(Duration::zero());
        TimeWindow {
            from: end - length,
            to: end,
        }
    }

    /// The start (inclusive).
    pub fn from(&self) -> DateTime<Utc> {
        self.from
    }

    /// The end (exclusive).
    pub fn to(&self) -> DateTime<Utc> {
        self.to
    }

    /// The window's length.
    pub fn length(&self) -> Duration {
        self.to - self.from
    }

    /// Whether `t` lies in `[from, to)`.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.from <= t && t < self.to
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn half_open() {
        let a = Utc.with_ymd_and_hms(2016, 5, 2, 14, 0, 0).unwrap();
        let w = TimeWindow::ending_at(a, Duration::hours(1));
        assert!(w.contains(a - Duration::hours(1)));
        assert!(!w.contains(a));
        assert_eq!(w.length(), Duration::hours(1));
        assert!(TimeWindow::new(a, a - Duration::seconds(1)).is_err());
        assert!(TimeWindow::new(a, a).is_ok());
    }
}
