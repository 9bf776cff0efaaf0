//! A recording played back as if live: observations revealed at the recording's own pace
//! (scaled by a speed), their timestamps moved to the moment they are revealed.

use std::time::Duration;

use chrono::{DateTime, Utc};
use factorydash_core::{pace, Observation};
use factorydash_mtconnect::Recording;
use tokio::time::Instant;

/// The longest wait between two observations: idle gaps (nights, weekends) and timestamps
/// that go backwards must not stall a replay.
pub const MAX_GAP: Duration = Duration::from_secs(2);

/// A recording being replayed.
#[derive(Debug)]
pub struct Replay {
    /// The recording (probe, header).
    pub recording: Recording,
    /// When the replay started.
    start: Instant,
    /// The reveal offset of each observation (already scaled by the speed).
    offsets: Vec<Duration>,
}

impl Replay {
    /// Starts replaying `recording` at `speed` (1.0 = the recording's pace, 10.0 = ten
    /// times faster), now. Observation timestamps become `started_at` plus their reveal
    /// offset.
    ///
    /// # Panics
    /// When `speed` is not a finite number > 0 (the CLI checks it).
    pub fn start(mut recording: Recording, speed: f64, started_at: DateTime<Utc>) -> Self {
        let timestamps: Vec<DateTime<Utc>> =
            recording.observations.iter().map(|o| o.timestamp).collect();
        let offsets: Vec<Duration> = pace::offsets(&timestamps, MAX_GAP)
            .into_iter()
            .map(|o| pace::scale(o, speed))
            .collect();
        for (o, offset) in recording.observations.iter_mut().zip(&offsets) {
            o.timestamp = started_at + chrono::Duration::from_std(*offset).unwrap_or_default();
        }
        Replay {
            recording,
            start: Instant::now(),
            offsets,
        }
    }

    /// All observations, in sequence order, with moved timestamps.
    pub fn observations(&self) -> &[Observation] {
        &self.recording.observations
    }

    /// How many observations are revealed at `at`.
    pub fn revealed_at(&self, at: Instant) -> usize {
        let elapsed = at.saturating_duration_since(self.start);
        self.offsets.partition_point(|o| *o <= elapsed)
    }

    /// How many observations are revealed now.
    pub fn revealed(&self) -> usize {
        self.revealed_at(Instant::now())
    }

    /// When observation `index` is revealed (`None` past the end).
    pub fn reveal_instant(&self, index: usize) -> Option<Instant> {
        self.offsets.get(index).map(|o| self.start + *o)
    }

    /// The whole replay's length.
    pub fn duration(&self) -> Duration {
        self.offsets.last().copied().unwrap_or_default()
    }
}
