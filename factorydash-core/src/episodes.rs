//! Condition episodes: when each Warning or Fault began and ended.
//!
//! MTConnect Part 3, "Condition": a Condition data item may have several conditions active
//! at once, told apart by `nativeCode`. A `Warning` or `Fault` with a `nativeCode` begins
//! (or escalates) the condition of that code; a `Normal` with a `nativeCode` clears that one
//! condition; a `Normal` without one clears every active condition of the data item; an
//! `Unavailable` means nothing is known any more and also ends every active condition.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use factorydash_core::episodes::Episodes;
//! use factorydash_core::{Category, ConditionLevel, ConditionState, Observation, Value};
//!
//! let at = |s| Utc.with_ymd_and_hms(2016, 5, 2, 15, 0, s).unwrap();
//! let condition = |s, level, code: Option<&str>, text: &str| Observation {
//!     sequence: s as u64,
//!     timestamp: at(s),
//!     device: "Mazak01".into(),
//!     component_id: "path1".into(),
//!     data_item_id: "Mazak01-path_system".into(),
//!     name: None,
//!     category: Category::Condition,
//!     kind: "System".into(),
//!     sub_type: None,
//!     value: Value::Text(text.into()),
//!     condition: Some(ConditionState {
//!         level,
//!         native_code: code.map(str::to_owned),
//!         native_severity: None,
//!         qualifier: None,
//!     }),
//! };
//! let mut episodes = Episodes::default();
//! episodes.observe(&condition(1, ConditionLevel::Warning, Some("2001"), "Low coolant"));
//! episodes.observe(&condition(5, ConditionLevel::Fault, Some("3002"), "Servo alarm"));
//! episodes.observe(&condition(9, ConditionLevel::Normal, Some("2001"), ""));
//! let all = episodes.finish();
//! assert_eq!(all.len(), 2);
//! assert_eq!((all[0].native_code.as_deref(), all[0].ended), (Some("2001"), Some(at(9))));
//! assert_eq!((all[1].level, all[1].ended), (ConditionLevel::Fault, None)); // still active
//! ```

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{ConditionLevel, Observation};

/// One Warning or Fault of one data item, from the observation that raised it to the one
/// that cleared it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionEpisode {
    /// The device's name.
    pub device: String,
    /// The agent that serves the device, as the caller named it to
    /// [`Episodes::observe_from`] (empty when fed by [`Episodes::observe`]): with the name,
    /// the device's identity ([`crate::DeviceKey`]).
    pub agent: String,
    /// The Condition data item (`dataItemId`).
    pub data_item_id: String,
    /// Its type in element-name form (`System`, `LogicProgram`, `Temperature`…), serialised as `type`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The controller's code for the condition (`nativeCode`), if given.
    pub native_code: Option<String>,
    /// The controller's severity (`nativeSeverity`) when the episode began, if given.
    pub native_severity: Option<String>,
    /// The highest level reached: [`ConditionLevel::Warning`] or [`ConditionLevel::Fault`].
    pub level: ConditionLevel,
    /// The message text of the observation that began it (may be empty).
    pub message: String,
    /// When it began (UTC).
    pub began: DateTime<Utc>,
    /// The `sequence` of the observation that began it.
    pub began_sequence: u64,
    /// When it ended (UTC), `None` while it is still active.
    pub ended: Option<DateTime<Utc>>,
    /// What ended it: [`ConditionLevel::Normal`] or [`ConditionLevel::Unavailable`].
    pub ended_by: Option<ConditionLevel>,
}

impl ConditionEpisode {
    /// How long it lasted in seconds, until `now` (UTC) when it is still active.
    pub fn duration_seconds(&self, now: DateTime<Utc>) -> f64 {
        (self.ended.unwrap_or(now) - self.began).as_seconds_f64()
    }
}

/// (agent, device, dataItemId)
type ItemKey = (String, String, String);

/// The most episodes active at once on one data item (distinct `nativeCode`s); later ones
/// are counted by [`Episodes::omitted`] (a real controller has a handful at a time).
pub const MAX_ACTIVE_PER_ITEM: usize = 256;

/// Builds episodes from Condition observations fed in time order.
///
/// Memory: the active episodes and, with [`Episodes::with_limit`], at most that many ended
/// ones (the newest; older ended ones are dropped and counted by [`Episodes::omitted`]).
#[derive(Debug, Default)]
pub struct Episodes {
    /// Every episode kept, in the order they began.
    done: Vec<ConditionEpisode>,
    /// Per data item, its active episodes by `nativeCode`, as indexes into `done`.
    active: HashMap<ItemKey, Vec<(Option<String>, usize)>>,
    /// The most ended episodes kept (`None`: all).
    limit: Option<usize>,
    /// Ended episodes dropped to keep within `limit`.
    omitted: u64,
}

impl Episodes {
    /// Builds episodes keeping every active one and the newest `limit` ended ones.
    pub fn with_limit(limit: usize) -> Self {
        Episodes {
            limit: Some(limit),
            ..Self::default()
        }
    }

    /// How many episodes were left out so far: ended ones dropped to keep within the limit
    /// (the oldest), and new ones past [`MAX_ACTIVE_PER_ITEM`];
    /// [`Episodes::finish_counted`] gives the final count.
    pub fn omitted(&self) -> u64 {
        self.omitted
    }

    /// Drops the oldest ended episodes once twice the limit are held (amortised: each
    /// compaction keeps `limit` of them), renumbering the active ones.
    fn compact(&mut self, now: bool) {
        let Some(limit) = self.limit else { return };
        if !now && self.done.len() < 2 * limit.max(1) {
            return;
        }
        let active = self.active.values().map(Vec::len).sum::<usize>();
        if !now && self.done.len() < 2 * limit.max(1) + active {
            return;
        }
        let ended = self.done.len() - active;
        let mut drop = ended.saturating_sub(limit);
        self.omitted += drop as u64;
        let mut renumber = vec![usize::MAX; self.done.len()];
        let mut kept = Vec::with_capacity(self.done.len() - drop);
        for (i, e) in std::mem::take(&mut self.done).into_iter().enumerate() {
            if drop > 0 && e.ended.is_some() {
                drop -= 1;
                continue;
            }
            renumber[i] = kept.len();
            kept.push(e);
        }
        self.done = kept;
        for list in self.active.values_mut() {
            for (_, i) in list.iter_mut() {
                *i = renumber[*i];
            }
        }
    }

    /// Feeds one observation of a device whose agent is not told apart (one agent).
    /// Observations that are not Conditions are ignored; feed them in (timestamp, sequence)
    /// order.
    pub fn observe(&mut self, o: &Observation) {
        self.observe_from("", o);
    }

    /// Feeds one observation from `agent` (however the caller names agents): devices of
    /// one name at two agents have episodes of their own. Observations that are not
    /// Conditions are ignored; feed them in (timestamp, sequence) order.
    pub fn observe_from(&mut self, agent: &str, o: &Observation) {
        let Some(c) = &o.condition else { return };
        self.compact(false);
        let key = (agent.to_owned(), o.device.clone(), o.data_item_id.clone());
        match c.level {
            ConditionLevel::Warning | ConditionLevel::Fault => {
                let active = self.active.entry(key).or_default();
                if let Some((_, i)) = active.iter().find(|(code, _)| *code == c.native_code) {
                    let e = &mut self.done[*i];
                    e.level = e.level.max(c.level);
                    return;
                }
                // An agent inventing a new code for every Fault it never clears would
                // grow this without end (and its search with it): past the cap, new codes
                // of the data item are counted, not kept.
                if active.len() >= MAX_ACTIVE_PER_ITEM {
                    self.omitted += 1;
                    return;
                }
                active.push((c.native_code.clone(), self.done.len()));
                self.done.push(ConditionEpisode {
                    device: o.device.clone(),
                    agent: agent.to_owned(),
                    data_item_id: o.data_item_id.clone(),
                    kind: o.kind.clone(),
                    native_code: c.native_code.clone(),
                    native_severity: c.native_severity.clone(),
                    level: c.level,
                    message: o.value.as_text().unwrap_or("").to_owned(),
                    began: o.timestamp,
                    began_sequence: o.sequence,
                    ended: None,
                    ended_by: None,
                });
            }
            ConditionLevel::Normal if c.native_code.is_some() => {
                if let Some(active) = self.active.get_mut(&key) {
                    active.retain(|(code, i)| {
                        let clears = *code == c.native_code;
                        if clears {
                            end(&mut self.done[*i], o.timestamp, c.level);
                        }
                        !clears
                    });
                }
            }
            ConditionLevel::Normal | ConditionLevel::Unavailable => {
                for (_, i) in self.active.remove(&key).unwrap_or_default() {
                    end(&mut self.done[i], o.timestamp, c.level);
                }
            }
        }
    }

    /// Every episode kept, ordered by when it began; those still active have no end.
    pub fn finish(self) -> Vec<ConditionEpisode> {
        self.finish_counted().0
    }

    /// As [`Episodes::finish`], with the number of ended episodes left out to keep within
    /// the limit (the oldest).
    pub fn finish_counted(mut self) -> (Vec<ConditionEpisode>, u64) {
        self.compact(true);
        (self.done, self.omitted)
    }
}

fn end(e: &mut ConditionEpisode, at: DateTime<Utc>, by: ConditionLevel) {
    e.ended = Some(at);
    e.ended_by = Some(by);
}

/// The episodes of `observations` (Conditions in (timestamp, sequence) order; others are
/// ignored), ordered by when they began.
pub fn episodes<'a>(
    observations: impl IntoIterator<Item = &'a Observation>,
) -> Vec<ConditionEpisode> {
    let mut e = Episodes::default();
    for o in observations {
        e.observe(o);
    }
    e.finish()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    #[test]
    fn an_item_holds_at_most_max_active_episodes() {
        let mut e = Episodes::default();
        for n in 0..(MAX_ACTIVE_PER_ITEM as u32 + 10) {
            let code = n.to_string();
            let mut o = cond("i", 0, ConditionLevel::Fault, Some(&code));
            o.sequence = u64::from(n);
            e.observe(&o);
        }
        assert_eq!(e.omitted(), 10);
        assert_eq!(e.finish().len(), MAX_ACTIVE_PER_ITEM);
    }

    #[test]
    fn a_limit_keeps_the_active_and_the_newest_ended_episodes() {
        let mut all = Episodes::default();
        let mut limited = Episodes::with_limit(3);
        let mut n = 0;
        let mut feed = |item: &str, level: ConditionLevel| {
            n += 1;
            let mut o = cond(item, 0, level, None);
            o.sequence = n;
            o.timestamp += chrono::Duration::seconds(n as i64);
            all.observe(&o);
            limited.observe(&o);
        };
        feed("stuck", ConditionLevel::Fault);
        for _ in 0..49 {
            feed("flapping", ConditionLevel::Warning);
            feed("flapping", ConditionLevel::Normal);
        }
        assert!(limited.omitted() < 46, "not all dropped before the end");
        let all = all.finish();
        let (kept, omitted) = limited.finish_counted();
        assert_eq!(omitted, 46);
        assert_eq!(kept.len(), 4);
        assert_eq!(kept[0], all[0], "the active episode is kept");
        assert_eq!(kept[1..], all[all.len() - 3..]);
    }

    use super::*;
    use crate::{Category, ConditionState, Value};

    fn at(s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2016, 5, 2, 15, 0, s).unwrap()
    }

    fn cond(item: &str, s: u32, level: ConditionLevel, code: Option<&str>) -> Observation {
        Observation {
            sequence: u64::from(s),
            timestamp: at(s),
            device: "d".into(),
            component_id: "c".into(),
            data_item_id: item.into(),
            name: None,
            category: Category::Condition,
            kind: "System".into(),
            sub_type: None,
            value: Value::Text(String::new()),
            condition: Some(ConditionState {
                level,
                native_code: code.map(str::to_owned),
                native_severity: None,
                qualifier: None,
            }),
        }
    }

    use ConditionLevel::*;

    #[test]
    fn a_normal_without_code_clears_every_active_condition_of_its_item_only() {
        let all = episodes(&[
            cond("a", 1, Warning, Some("1")),
            cond("a", 2, Fault, Some("2")),
            cond("b", 3, Fault, None),
            cond("a", 4, Normal, None),
        ]);
        let ends: Vec<_> = all
            .iter()
            .map(|e| (e.data_item_id.as_str(), e.ended))
            .collect();
        assert_eq!(ends, [("a", Some(at(4))), ("a", Some(at(4))), ("b", None)]);
    }

    #[test]
    fn a_warning_raised_to_a_fault_is_one_episode_at_the_higher_level() {
        let all = episodes(&[
            cond("a", 1, Warning, Some("7")),
            cond("a", 2, Fault, Some("7")),
            cond("a", 3, Warning, Some("7")),
            cond("a", 4, Unavailable, None),
        ]);
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].level, Fault);
        assert_eq!(
            (all[0].began, all[0].ended, all[0].ended_by),
            (at(1), Some(at(4)), Some(Unavailable))
        );
        assert_eq!(all[0].duration_seconds(at(59)), 3.0);
    }

    #[test]
    fn normals_and_unavailables_alone_make_no_episode() {
        assert!(episodes(&[
            cond("a", 1, Normal, None),
            cond("a", 2, Unavailable, None),
            cond("a", 3, Normal, Some("4"))
        ])
        .is_empty());
    }

    #[test]
    fn a_condition_raised_again_after_clearing_is_a_new_episode() {
        let all = episodes(&[
            cond("a", 1, Fault, None),
            cond("a", 2, Normal, None),
            cond("a", 3, Fault, None),
        ]);
        assert_eq!(all.len(), 2);
        assert_eq!((all[1].began, all[1].ended), (at(3), None));
    }
}
