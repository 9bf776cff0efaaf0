//! Alarms: rules over observations, the alarm states of ANSI/ISA-18.2-2016 (IEC
//! 62682:2022), chattering alarms grouped, floods summarised.
//!
//! An [`AlarmEngine`] is a fold: it is given each stored observation
//! ([`AlarmEngine::observe`]) and, every few seconds, the time ([`AlarmEngine::tick`]),
//! and says what changed ([`AlarmChange`]). It does no I/O: the server keeps it, delivers
//! its changes and stores them.
//!
//! - **Rules** ([`Rule`]): a Condition becoming `Warning` or `Fault` (by its type, native
//!   code, text); an event held in some states too long (Execution `STOPPED` for 10
//!   minutes); a Sample beyond a threshold for a time; a device whose newest data is
//!   older than a time; a cutting tool near its life limit (MTConnect Part 4); an agent
//!   that cannot be reached for a time. Each with a [`Priority`], devices (name globs, or cells of the
//!   plant's [`Layout`]), a de-duplication window and a message template.
//! - **States** (ISA-18.2 §5.3, the alarm state transition diagram): an alarm is raised
//!   *active unacknowledged*; an operator's acknowledgement makes it *active
//!   acknowledged*; when its cause clears, an unacknowledged alarm is *cleared
//!   unacknowledged* (return to normal, unacknowledged) and an acknowledged one ends; an
//!   acknowledged clear alarm ends. *Shelved* (§16.3: by an operator, for a time, with a
//!   reason) hides an alarm's changes until it is unshelved, by hand or when the time is
//!   up.
//! - **Chattering** (§3.1.13: an alarm that goes in and out of alarm repeatedly in a short
//!   time): an alarm raised again while it has not ended, or within its rule's
//!   de-duplication window after it ended, is the same alarm, with a count. Raised
//!   [`CHATTER_RAISES`] times within [`CHATTER_WINDOW`], it is marked chattering: its
//!   further returns and clears update its count without a change to deliver.
//! - **Floods** (§3.1.29: more alarms than an operator can handle; the standard's figure
//!   is 10 per 10 minutes): more than [`FLOOD_ALARMS`] new alarms of one device within
//!   [`FLOOD_WINDOW`] put that device in flood: one [`ChangeKind::Flood`] change, and the
//!   flood's further alarms are kept (on the page) but not delivered one by one, until
//!   the window passes without one.
//!
//! Everything kept is bounded: at most [`MAX_ALARMS`] alarms (ended ones dropped oldest
//! first) and [`MAX_WATCHED`] data items watched for held states and thresholds.

use std::collections::{BTreeMap, HashMap, VecDeque};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::layout::{glob_match, Layout, Placement};
use crate::tools::CuttingTool;
use crate::{Category, ConditionLevel, Observation};

/// Raises of one alarm within [`CHATTER_WINDOW`] that make it chattering.
pub const CHATTER_RAISES: usize = 3;
/// The time over which [`CHATTER_RAISES`] are counted: 10 minutes.
pub const CHATTER_WINDOW: Duration = Duration::minutes(10);
/// New alarms of one device within [`FLOOD_WINDOW`] beyond which it is in flood (ISA-18.2
/// §3.1.29's figure: 10 alarms per 10 minutes per operator).
pub const FLOOD_ALARMS: usize = 10;
/// The flood's window: 10 minutes.
pub const FLOOD_WINDOW: Duration = Duration::minutes(10);
/// Alarms kept at most (active and ended); ended ones go first.
pub const MAX_ALARMS: usize = 10_000;
/// Data items watched at most for held states and thresholds.
pub const MAX_WATCHED: usize = 100_000;
/// Longest message kept, in bytes (a template's expansion is cut at a character boundary).
pub const MAX_MESSAGE: usize = 1_000;

/// An alarm's priority (ISA-18.2 §6.5: three or four priorities, the highest the
/// rarest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Act at once.
    Urgent,
    /// Act soon.
    High,
    /// Act when you can.
    Medium,
    /// For information.
    Low,
}

impl Priority {
    /// `urgent`, `high`, `medium` or `low`.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Urgent => "urgent",
            Priority::High => "high",
            Priority::Medium => "medium",
            Priority::Low => "low",
        }
    }
}

impl std::str::FromStr for Priority {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "urgent" => Ok(Priority::Urgent),
            "high" => Ok(Priority::High),
            "medium" => Ok(Priority::Medium),
            "low" => Ok(Priority::Low),
            _ => Err(format!(
                "priority {s:?}: not one of urgent, high, medium, low"
            )),
        }
    }
}

/// What raises an alarm of a [`Rule`].
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// A Condition observation at `level` (`Warning` or `Fault`; `Unavailable` stands
    /// for either), of the Condition type `kind` (element-name form, `System`) if given, with native code
    /// `native_code` if given, whose text contains `text` (ignoring case) if given. It
    /// clears as the Condition does (MTConnect Part 3: `Normal` of its native code, or of
    /// none, or `Unavailable`).
    Condition {
        /// `Warning`, `Fault`, or `Unavailable` for either.
        level: ConditionLevel,
        /// The Condition type, e.g. `System`, `Temperature`.
        kind: Option<String>,
        /// The controller's native code.
        native_code: Option<String>,
        /// A piece of the message text, any case.
        text: Option<String>,
    },
    /// An Event of type `kind` (`Execution`) in one of `states` for `seconds` or more;
    /// clears when it leaves them.
    Held {
        /// The Event type, element-name form.
        kind: String,
        /// The states, as the agent writes them (`STOPPED`, `INTERRUPTED`).
        states: Vec<String>,
        /// How long, in seconds.
        seconds: u32,
    },
    /// A Sample of type `kind` (`Load`; of data item `data_item_id` if given) above
    /// `above` or below `below` for `seconds` or more (0: at once); clears when back
    /// within, or `UNAVAILABLE`.
    Threshold {
        /// The Sample type, element-name form.
        kind: String,
        /// One data item's id, or all of the type.
        data_item_id: Option<String>,
        /// Alarm above this.
        above: Option<f64>,
        /// Alarm below this.
        below: Option<f64>,
        /// Where `above` or `below` is not given, the data item's device model's limit
        /// ([`AlarmEngine::set_limits`]): above its `UpperLimit` (else `Maximum`), below
        /// its `LowerLimit` (else `Minimum`); MTConnect Part 2, Constraints and
        /// Specifications.
        model_limits: bool,
        /// How long, in seconds.
        seconds: u32,
    },
    /// A device whose newest observation (by its timestamp) is older than `seconds` at a
    /// tick; clears with its next observation.
    Stale {
        /// How long, in seconds.
        seconds: u32,
    },
    /// A cutting tool of a device near its life limit
    /// ([`CuttingTool::near_life_limit`]: a `ToolLife` of it or of a cutting item at its
    /// warning, or within 10 % of its limit; its `CutterStatus` `EXPIRED` or `BROKEN`), as the agent's CuttingTool assets
    /// say (MTConnect Part 4); clears when it no longer is (reset, replaced, removed).
    /// One alarm per tool, its data item `asset:<assetId>`.
    ToolLife,
    /// An agent that cannot be reached (no answer, or an error) for `seconds` or more,
    /// timed on this process's clock; clears at its next answer. Its alarm names the
    /// agent, with no device.
    Unreachable {
        /// How long, in seconds.
        seconds: u32,
    },
}

/// An alarm rule: what raises it, for which devices, how urgent, how it reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Its name, unique among the rules (named in each alarm and delivery).
    pub name: String,
    /// What raises it.
    pub trigger: Trigger,
    /// How urgent its alarms are.
    pub priority: Priority,
    /// Device name globs (`Mazak*`); empty: every device (unless `cells` says).
    pub devices: Vec<String>,
    /// Cells of the plant's layout; a device in one of them matches too.
    pub cells: Vec<String>,
    /// An alarm raised again within this many seconds after it ended is the same alarm
    /// (its count goes up), not a new one.
    pub dedup_seconds: u32,
    /// The message: `{device}`, `{rule}`, `{value}` (the value or Condition text),
    /// `{code}` (native code), `{state}`, `{seconds}` (of a held state or threshold),
    /// `{item}` (the data item's id) are replaced; empty: a message made from the rule.
    pub message: String,
    /// A held-state or threshold rule raises only in planned time (the shift calendar,
    /// given by [`AlarmEngine::set_planned`]): a machine stopped outside its shifts is
    /// not an alarm. What has lasted long enough raises once planned time begins.
    pub planned_only: bool,
}

impl Rule {
    fn matches_device(&self, layout: &Layout, agent: &str, device: &str) -> bool {
        if self.devices.is_empty() && self.cells.is_empty() {
            return true;
        }
        if self.devices.iter().any(|g| glob_match(g, device)) {
            return true;
        }
        if self.cells.is_empty() {
            return false;
        }
        match layout.place(agent, device) {
            Placement::Cell(i) => {
                let name = layout.cells()[i].name();
                self.cells.iter().any(|c| c == name)
            }
            Placement::Unassigned => false,
        }
    }
}

/// An alarm's state (ISA-18.2 §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlarmState {
    /// Active, not acknowledged.
    Unacknowledged,
    /// Active, acknowledged.
    Acknowledged,
    /// Cleared (returned to normal), not acknowledged.
    ClearedUnacknowledged,
    /// Over: cleared and acknowledged.
    Ended,
}

impl AlarmState {
    /// `unacknowledged`, `acknowledged`, `cleared-unacknowledged` or `ended`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmState::Unacknowledged => "unacknowledged",
            AlarmState::Acknowledged => "acknowledged",
            AlarmState::ClearedUnacknowledged => "cleared-unacknowledged",
            AlarmState::Ended => "ended",
        }
    }
}

/// Who did something to an alarm, when, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// The user's name.
    pub by: String,
    /// When (UTC).
    pub at: DateTime<Utc>,
    /// Their comment or reason (may be empty).
    pub comment: String,
}

/// A shelving: hidden until `until` (UTC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shelving {
    /// Who shelved, when, why.
    #[serde(flatten)]
    pub action: Action,
    /// When it is unshelved by itself (UTC).
    pub until: DateTime<Utc>,
}

/// One alarm: a rule's for one device and source (data item, native code). Read back
/// from its JSON by [`AlarmEngine::restore`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alarm {
    /// Its number, from 1, unique in this engine's life (the server keeps the engine's
    /// numbering across restarts with [`AlarmEngine::resume_ids`]).
    pub id: u64,
    /// The rule's name.
    pub rule: String,
    /// The rule's priority.
    pub priority: Priority,
    /// The agent (its base URL as the dashboard shows it).
    pub agent: String,
    /// The device's name.
    pub device: String,
    /// The data item that raised it (empty for a stale device).
    pub data_item_id: String,
    /// The Condition's native code, if any.
    pub native_code: Option<String>,
    /// The message, from the rule's template.
    pub message: String,
    /// Its state.
    pub state: AlarmState,
    /// When it was first raised (UTC; the observation's time, or when a held state or
    /// threshold had lasted long enough).
    pub raised_at: DateTime<Utc>,
    /// When it was last raised.
    pub last_raised_at: DateTime<Utc>,
    /// When it last cleared, if it did since it was last raised.
    pub cleared_at: Option<DateTime<Utc>>,
    /// How many times it was raised (1 at first).
    pub count: u64,
    /// Raised [`CHATTER_RAISES`] times within [`CHATTER_WINDOW`].
    pub chattering: bool,
    /// Raised while its device was in flood.
    pub in_flood: bool,
    /// The last acknowledgement.
    pub acknowledged: Option<Action>,
    /// The shelving, while shelved.
    pub shelved: Option<Shelving>,
    #[serde(skip)]
    raises: VecDeque<DateTime<Utc>>,
    #[serde(skip)]
    active: bool,
    #[serde(skip)]
    key: Key,
}

impl Alarm {
    /// Whether its cause is still there (raised and not cleared).
    pub fn is_active(&self) -> bool {
        self.active
    }
}

/// What happened to an alarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    /// Raised for the first time.
    Raised,
    /// Raised again before it ended (or within its de-duplication window).
    Reraised,
    /// Its cause cleared.
    Cleared,
    /// Acknowledged by an operator.
    Acknowledged,
    /// Shelved by an operator.
    Shelved,
    /// Unshelved, by hand or when its time was up.
    Unshelved,
    /// It became chattering (its further returns and clears are not delivered).
    Chattering,
    /// Its device went into flood (this alarm is the one that made it so).
    Flood,
}

impl ChangeKind {
    /// `raised`, `reraised`, `cleared`, `acknowledged`, `shelved`, `unshelved`,
    /// `chattering` or `flood`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Raised => "raised",
            ChangeKind::Reraised => "reraised",
            ChangeKind::Cleared => "cleared",
            ChangeKind::Acknowledged => "acknowledged",
            ChangeKind::Shelved => "shelved",
            ChangeKind::Unshelved => "unshelved",
            ChangeKind::Chattering => "chattering",
            ChangeKind::Flood => "flood",
        }
    }
}

/// A change to an alarm, with the alarm as it is after it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmChange {
    /// What happened.
    pub kind: ChangeKind,
    /// When (UTC).
    pub at: DateTime<Utc>,
    /// Whether people are to be told (webhooks, e-mail): false for a chattering alarm's
    /// returns and clears, a flood's alarms after the one that began it, and a shelved
    /// alarm's changes other than its unshelving.
    pub deliver: bool,
    /// The alarm after the change.
    pub alarm: Alarm,
}

/// Why an operator's action was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    /// No alarm has this id (or it was dropped, ended, beyond [`MAX_ALARMS`]).
    #[error("no alarm {0}")]
    NoSuchAlarm(u64),
    /// The alarm has ended: nothing to acknowledge or shelve.
    #[error("alarm {0} has ended")]
    Ended(u64),
    /// A shelving must end after it begins and within [`MAX_SHELVE_HOURS`].
    #[error("a shelving must end after now and within {0} hours")]
    ShelveTime(i64),
}

/// The longest shelving, in hours (ISA-18.2 §16.3.2: shelving is time-limited).
pub const MAX_SHELVE_HOURS: i64 = 24;

/// A device's new alarms' times within [`FLOOD_WINDOW`] (this process's clock), and
/// whether it is in flood.
type Flood = (VecDeque<DateTime<Utc>>, bool);

/// The key of one alarm: rule, agent, device, data item, native code.
type Key = (usize, String, String, String, Option<String>);

/// A watched data item of a held-state or threshold rule: since when it is beyond.
#[derive(Debug, Clone)]
struct Pending {
    /// The observation's time it went beyond.
    since: DateTime<Utc>,
    /// When that observation was received (the clock of `observe`).
    received: DateTime<Utc>,
    value: String,
}

/// The alarm engine: rules, the alarms they raised, what is pending. See the module
/// docs.
#[derive(Debug, Default)]
pub struct AlarmEngine {
    rules: Vec<Rule>,
    layout: Layout,
    alarms: BTreeMap<u64, Alarm>,
    /// Each alarm point's newest alarm, ordered so that one data item's points (every
    /// native code) are one range.
    by_key: BTreeMap<Key, u64>,
    /// Held states and thresholds beyond their limit, not yet long enough.
    pending: HashMap<Key, Pending>,
    /// Each device's newest observation time: agent → device → time (kept only when a
    /// rule watches staleness).
    newest: HashMap<String, HashMap<String, DateTime<Utc>>>,
    watched_devices: usize,
    watches_staleness: bool,
    /// A staleness rule came: the devices the store knows are to be watched
    /// ([`AlarmEngine::wants_devices`]).
    seed_wanted: bool,
    /// The clock as last given (UTC).
    now: DateTime<Utc>,
    /// Whether it is planned time now ([`AlarmEngine::set_planned`]; `true` until told).
    unplanned: bool,
    /// The device models' limits by (agent, data item id): (upper, lower)
    /// ([`AlarmEngine::set_limits`]).
    limits: HashMap<(String, String), (Option<f64>, Option<f64>)>,
    /// Each device's new alarms' times, within the flood window, and whether it is in
    /// flood.
    floods: HashMap<(String, String), Flood>,
    next_id: u64,
}

impl AlarmEngine {
    /// An engine of `rules` (names unique: the caller checks) over the plant's `layout`
    /// (for rules by cell).
    pub fn new(rules: Vec<Rule>, layout: Layout) -> Self {
        let watches_staleness = rules
            .iter()
            .any(|r| matches!(r.trigger, Trigger::Stale { .. }));
        AlarmEngine {
            rules,
            layout,
            watches_staleness,
            seed_wanted: watches_staleness,
            next_id: 1,
            ..AlarmEngine::default()
        }
    }

    /// The rules.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Puts `rules` in effect in place of the rules (names unique: the caller checks) at
    /// `now` (UTC): a rule of the same name keeps its alarms and what it watches (its
    /// trigger may have changed: what it raised stays until it clears); the alarms of a
    /// rule no longer there clear (their changes returned, to deliver) and what they
    /// watched is forgotten.
    pub fn replace_rules(&mut self, rules: Vec<Rule>, now: DateTime<Utc>) -> Vec<AlarmChange> {
        let mut out = Vec::new();
        self.now = now;
        // A rule kept as it was keeps its alarms; one changed is removed and added anew
        // (what it raised or watched may no longer be its to clear).
        let moved: Vec<Option<usize>> = self
            .rules
            .iter()
            .map(|old| rules.iter().position(|r| r == old))
            .collect();
        let moved_of = |r: usize| moved.get(r).copied().flatten();
        // The removed rules' active alarms clear first, under their old keys.
        let removed: Vec<Key> = self
            .by_key
            .keys()
            .filter(|k| moved_of(k.0).is_none())
            .cloned()
            .collect();
        for key in &removed {
            self.clear(key, now, &mut out);
        }
        let remap = |k: &Key| {
            moved_of(k.0).map(|r| (r, k.1.clone(), k.2.clone(), k.3.clone(), k.4.clone()))
        };
        self.by_key = std::mem::take(&mut self.by_key)
            .into_iter()
            .filter_map(|(k, id)| remap(&k).map(|k| (k, id)))
            .collect();
        self.pending = std::mem::take(&mut self.pending)
            .into_iter()
            .filter_map(|(k, p)| remap(&k).map(|k| (k, p)))
            .collect();
        for a in self.alarms.values_mut() {
            match remap(&a.key) {
                Some(k) => a.key = k,
                // Ended or cleared now: never matched again (a rule index no rule has).
                None => a.key.0 = usize::MAX,
            }
        }
        let was = self.watches_staleness;
        self.watches_staleness = rules
            .iter()
            .any(|r| matches!(r.trigger, Trigger::Stale { .. }));
        self.seed_wanted |= self.watches_staleness && !was;
        if !self.watches_staleness {
            self.newest.clear();
            self.watched_devices = 0;
        }
        self.rules = rules;
        out
    }

    /// `agent`'s device models' limits, each data item's (`dataItemId`, its limits),
    /// replacing what they were (at each probe): what [`Trigger::Threshold`] rules with
    /// `model_limits` compare with. Kept: the upper of `UpperLimit` (else `Maximum`), the
    /// lower of `LowerLimit` (else `Minimum`).
    pub fn set_limits<'l>(
        &mut self,
        agent: &str,
        items: impl IntoIterator<Item = (&'l str, &'l [crate::limits::Limit])>,
    ) {
        use crate::limits::LimitKind;
        self.limits.retain(|(a, _), _| a != agent);
        for (item, limits) in items {
            let of = |kind: LimitKind| limits.iter().find(|l| l.kind == kind).map(|l| l.value);
            let upper = of(LimitKind::UpperLimit).or_else(|| of(LimitKind::Maximum));
            let lower = of(LimitKind::LowerLimit).or_else(|| of(LimitKind::Minimum));
            if (upper.is_some() || lower.is_some()) && self.limits.len() < MAX_WATCHED {
                self.limits
                    .insert((agent.to_owned(), item.to_owned()), (upper, lower));
            }
        }
    }

    /// Whether it is planned time now (the plant's shift calendar; without one, always):
    /// rules with [`Rule::planned_only`] raise only while it is.
    pub fn set_planned(&mut self, planned: bool) {
        self.unplanned = !planned;
    }

    /// Whether rule `r` may raise now (planned time, or a rule for any time).
    fn may_raise(&self, r: usize) -> bool {
        !(self.unplanned && self.rules[r].planned_only)
    }

    /// The alarms not ended, newest first, as [`AlarmEngine::restore`] takes them back
    /// (their JSON: [`Alarm`]'s serialisation).
    pub fn snapshot(&self) -> Vec<&Alarm> {
        self.active().collect()
    }

    /// Takes back alarms of an earlier run ([`AlarmEngine::snapshot`], at start, after the
    /// rules are set): each not ended whose rule is still there (by name) and whose alarm
    /// point (rule, agent, device, data item, native code) has no alarm yet is kept as it
    /// was (its state, count, acknowledgement, shelving); one cleared or active as its
    /// state says; its chattering and flood windows start anew. New alarms are numbered
    /// past them. Returns how many were taken.
    pub fn restore(&mut self, alarms: Vec<Alarm>) -> usize {
        let mut taken = 0;
        for mut a in alarms {
            if a.state == AlarmState::Ended || self.alarms.len() >= MAX_ALARMS {
                continue;
            }
            let Some(r) = self.rules.iter().position(|r| r.name == a.rule) else {
                continue;
            };
            let key: Key = (
                r,
                a.agent.clone(),
                a.device.clone(),
                a.data_item_id.clone(),
                a.native_code.clone(),
            );
            if self.by_key.contains_key(&key) || self.alarms.contains_key(&a.id) {
                continue;
            }
            a.active = a.state != AlarmState::ClearedUnacknowledged;
            a.key = key.clone();
            a.raises = VecDeque::new();
            self.next_id = self.next_id.max(a.id + 1);
            self.by_key.insert(key, a.id);
            self.alarms.insert(a.id, a);
            taken += 1;
        }
        taken
    }

    /// The number the next new alarm gets (kept across restarts with
    /// [`AlarmEngine::resume_ids`], so that no number names two alarms).
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    /// Numbers new alarms from `next` on (after a restart, past the stored ones).
    pub fn resume_ids(&mut self, next: u64) {
        self.next_id = self.next_id.max(next);
    }

    /// The alarms not ended, newest first.
    pub fn active(&self) -> impl Iterator<Item = &Alarm> {
        self.alarms
            .values()
            .rev()
            .filter(|a| a.state != AlarmState::Ended)
    }

    /// Every alarm kept (ended ones too, up to [`MAX_ALARMS`]), newest first.
    pub fn all(&self) -> impl Iterator<Item = &Alarm> {
        self.alarms.values().rev()
    }

    /// One alarm.
    pub fn get(&self, id: u64) -> Option<&Alarm> {
        self.alarms.get(&id)
    }

    /// Whether `agent`'s `device` is in flood now.
    pub fn in_flood(&self, agent: &str, device: &str) -> bool {
        self.floods
            .get(&(agent.to_owned(), device.to_owned()))
            .is_some_and(|(_, f)| *f)
    }

    /// Feeds one stored observation of `agent`, received at `now` (UTC, this process's
    /// clock); returns the changes it made. Without rules it costs nothing; otherwise
    /// each rule's device match, and an allocation only for an observation a rule
    /// watches.
    ///
    /// Times an alarm shows (raised, cleared) are the observations' own; what is timed
    /// against [`AlarmEngine::tick`]'s clock (held states' and thresholds' durations,
    /// staleness, chattering, floods) is timed from `now`, so an agent's clock that is
    /// off, or a timestamp in the future, cannot make an alarm early, late or endless.
    pub fn observe(
        &mut self,
        agent: &str,
        o: &Observation,
        now: DateTime<Utc>,
    ) -> Vec<AlarmChange> {
        let mut out = Vec::new();
        if self.rules.is_empty() {
            return out;
        }
        self.now = now;
        if self.watches_staleness {
            if let Some(t) = self
                .newest
                .get_mut(agent)
                .and_then(|d| d.get_mut(&o.device))
            {
                *t = (*t).max(now);
            } else if self.watched_devices < MAX_WATCHED {
                self.watched_devices += 1;
                self.newest
                    .entry(agent.to_owned())
                    .or_default()
                    .insert(o.device.clone(), now);
            }
        }
        for r in 0..self.rules.len() {
            let rule = &self.rules[r];
            if !rule.matches_device(&self.layout, agent, &o.device) {
                continue;
            }
            /// What a rule does with the observation, decided before anything changes.
            enum Step {
                Condition,
                Watch(Option<String>, u32),
                Fresh,
            }
            let step = match &rule.trigger {
                Trigger::Condition { .. } if o.category == Category::Condition => Step::Condition,
                Trigger::Held {
                    kind,
                    states,
                    seconds,
                } if o.category == Category::Event && o.kind == *kind => {
                    let beyond = o.value.as_text().filter(|v| states.iter().any(|s| s == v));
                    Step::Watch(beyond.map(str::to_owned), *seconds)
                }
                Trigger::Threshold {
                    kind,
                    data_item_id,
                    above,
                    below,
                    model_limits,
                    seconds,
                } if o.category == Category::Sample
                    && o.kind == *kind
                    && data_item_id.as_ref().is_none_or(|d| *d == o.data_item_id) =>
                {
                    let model = model_limits
                        .then(|| self.limits.get(&(agent.to_owned(), o.data_item_id.clone())))
                        .flatten();
                    let above = above.or(model.and_then(|m| m.0));
                    let below = below.or(model.and_then(|m| m.1));
                    let beyond = o
                        .value
                        .as_f64()
                        .filter(|v| above.is_some_and(|a| *v > a) || below.is_some_and(|b| *v < b));
                    Step::Watch(beyond.map(|v| v.to_string()), *seconds)
                }
                Trigger::Stale { .. } => Step::Fresh,
                _ => continue,
            };
            match step {
                Step::Condition => self.condition(r, agent, o, &mut out),
                Step::Watch(beyond, seconds) => self.watch(r, agent, o, beyond, seconds, &mut out),
                Step::Fresh => {
                    if self.by_key.is_empty() {
                        continue;
                    }
                    let key = (r, agent.to_owned(), o.device.clone(), String::new(), None);
                    self.clear(&key, o.timestamp, &mut out);
                }
            }
        }
        out
    }

    fn condition(&mut self, r: usize, agent: &str, o: &Observation, out: &mut Vec<AlarmChange>) {
        let Trigger::Condition {
            level,
            kind,
            native_code,
            text,
        } = &self.rules[r].trigger
        else {
            return;
        };
        let level = *level;
        let Some(state) = &o.condition else { return };
        if o.category != Category::Condition || kind.as_ref().is_some_and(|k| *k != o.kind) {
            return;
        }
        let code = state.native_code.clone();
        match state.level {
            ConditionLevel::Warning | ConditionLevel::Fault => {
                // `Unavailable` in a rule stands for either level.
                let at_level = level == ConditionLevel::Unavailable || state.level == level;
                let code_ok = native_code
                    .as_ref()
                    .is_none_or(|c| Some(c) == code.as_ref());
                let message = o.value.as_text().unwrap_or_default();
                let text_ok = text
                    .as_ref()
                    .is_none_or(|t| message.to_lowercase().contains(&t.to_lowercase()));
                let key = (
                    r,
                    agent.to_owned(),
                    o.device.clone(),
                    o.data_item_id.clone(),
                    code,
                );
                let matched = at_level && code_ok && text_ok;
                if matched {
                    let fields = Fields {
                        value: message,
                        state: state.level.as_str(),
                        seconds: 0,
                    };
                    self.raise(key, o, o.timestamp, &fields, out);
                } else {
                    // A Warning that escalated to a Fault a Fault-only rule... or a
                    // condition of this code no longer matching: it cleared for the rule.
                    self.clear(&key, o.timestamp, out);
                }
            }
            ConditionLevel::Normal | ConditionLevel::Unavailable => {
                // A Normal with a code clears that condition; without one (or
                // Unavailable), every condition of the data item.
                let all = code.is_none() || state.level == ConditionLevel::Unavailable;
                // The data item's points: one range of the ordered keys (`None` sorts
                // first among the codes).
                let from: Key = (
                    r,
                    agent.to_owned(),
                    o.device.clone(),
                    o.data_item_id.clone(),
                    None,
                );
                let keys: Vec<Key> = self
                    .by_key
                    .range(from..)
                    .map(|(k, _)| k)
                    .take_while(|k| {
                        k.0 == r && k.1 == agent && k.2 == o.device && k.3 == o.data_item_id
                    })
                    .filter(|k| all || k.4 == code)
                    .cloned()
                    .collect();
                for key in keys {
                    self.clear(&key, o.timestamp, out);
                }
            }
        }
    }

    /// A held-state or threshold rule's data item is `beyond` its limit (`Some(value)`)
    /// or not.
    fn watch(
        &mut self,
        r: usize,
        agent: &str,
        o: &Observation,
        beyond: Option<String>,
        seconds: u32,
        out: &mut Vec<AlarmChange>,
    ) {
        let key = (
            r,
            agent.to_owned(),
            o.device.clone(),
            o.data_item_id.clone(),
            None,
        );
        match beyond {
            Some(value) => {
                let since = match self.pending.get(&key) {
                    // Still beyond: counted from when it first was.
                    Some(p) => p.since,
                    None if self.pending.len() >= MAX_WATCHED => return,
                    None => {
                        self.pending.insert(
                            key.clone(),
                            Pending {
                                since: o.timestamp,
                                received: self.now,
                                value: value.clone(),
                            },
                        );
                        o.timestamp
                    }
                };
                let due = since + Duration::seconds(seconds.into());
                // Long enough by the observations' times and by this process's clock
                // (an agent's clock stepping forward raises nothing early).
                let received = self.pending.get(&key).map_or(self.now, |p| p.received);
                let lasted = self.now - received >= Duration::seconds(seconds.into());
                if o.timestamp >= due && lasted && !self.is_active(&key) && self.may_raise(r) {
                    let fields = Fields {
                        value: &value,
                        state: &value,
                        seconds,
                    };
                    self.raise(key, o, due, &fields, out);
                }
            }
            None => {
                self.pending.remove(&key);
                self.clear(&key, o.timestamp, out);
            }
        }
    }

    fn is_active(&self, key: &Key) -> bool {
        self.by_key
            .get(key)
            .and_then(|id| self.alarms.get(id))
            .is_some_and(|a| a.active)
    }

    /// The time passes to `now` (UTC): held states and thresholds that have lasted long
    /// enough are raised, stale devices too, shelvings that are up end, floods that
    /// passed end.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Vec<AlarmChange> {
        let mut out = Vec::new();
        self.now = now;
        let due: Vec<(Key, Pending, u32)> = self
            .pending
            .iter()
            .filter_map(|(k, p)| {
                let seconds = match &self.rules[k.0].trigger {
                    Trigger::Held { seconds, .. } | Trigger::Threshold { seconds, .. } => *seconds,
                    _ => return None,
                };
                let due = p.received + Duration::seconds(seconds.into());
                (due <= now && !self.is_active(k) && self.may_raise(k.0))
                    .then(|| (k.clone(), p.clone(), seconds))
            })
            .collect();
        for (key, p, seconds) in due {
            let at = p.since + Duration::seconds(seconds.into());
            let device = key.2.clone();
            let item = key.3.clone();
            let fields = Fields {
                value: &p.value,
                state: &p.value,
                seconds,
            };
            self.raise_with(key, &device, &item, at, &fields, &mut out);
        }
        // Stale devices.
        for r in 0..self.rules.len() {
            let Trigger::Stale { seconds } = self.rules[r].trigger else {
                continue;
            };
            let stale: Vec<((String, String), DateTime<Utc>)> = self
                .newest
                .iter()
                .flat_map(|(agent, devices)| devices.iter().map(move |(d, t)| (agent, d, t)))
                .filter(|(agent, device, t)| {
                    now - **t >= Duration::seconds(seconds.into())
                        && self.rules[r].matches_device(&self.layout, agent, device)
                })
                .map(|(agent, device, t)| ((agent.clone(), device.clone()), *t))
                .collect();
            for ((agent, device), newest) in stale {
                let key = (r, agent, device.clone(), String::new(), None);
                if self.is_active(&key) {
                    continue;
                }
                let at = newest + Duration::seconds(seconds.into());
                let value = newest.format("%Y-%m-%d %H:%M:%S UTC").to_string();
                let fields = Fields {
                    value: &value,
                    state: "STALE",
                    seconds,
                };
                self.raise_with(key, &device, "", at, &fields, &mut out);
            }
        }
        // Shelvings that are up.
        let up: Vec<u64> = self
            .alarms
            .values()
            .filter(|a| a.shelved.as_ref().is_some_and(|s| s.until <= now))
            .map(|a| a.id)
            .collect();
        for id in up {
            if let Some(a) = self.alarms.get_mut(&id) {
                a.shelved = None;
                out.push(AlarmChange {
                    kind: ChangeKind::Unshelved,
                    at: now,
                    deliver: a.state != AlarmState::Ended,
                    alarm: a.clone(),
                });
            }
        }
        // Floods that passed.
        for (times, flood) in self.floods.values_mut() {
            times.retain(|t| now - *t <= FLOOD_WINDOW);
            if times.is_empty() {
                *flood = false;
            }
        }
        self.floods.retain(|_, (t, f)| !t.is_empty() || *f);
        out
    }

    /// Whether a staleness rule came since the devices the store knows were last given
    /// ([`AlarmEngine::watch_device`]); asking says they are being given.
    pub fn wants_devices(&mut self) -> bool {
        std::mem::take(&mut self.seed_wanted)
    }

    /// Watches `agent`'s `device` for staleness from `now` (UTC, this process's clock) as
    /// if it had just sent data, unless it is watched already: at start, each device the
    /// store knows, so that one silent since then raises its stale alarm too.
    pub fn watch_device(&mut self, agent: &str, device: &str, now: DateTime<Utc>) {
        if !self.watches_staleness || self.watched_devices >= MAX_WATCHED {
            return;
        }
        let devices = self.newest.entry(agent.to_owned()).or_default();
        if !devices.contains_key(device) {
            devices.insert(device.to_owned(), now);
            self.watched_devices += 1;
        }
    }

    /// The cutting tools `agent` serves now, by device name (each read of its assets):
    /// each tool near its life limit raises an alarm of each [`Trigger::ToolLife`] rule
    /// over its device, and each such alarm of a tool no longer near it (reset,
    /// replaced, removed, or its device gone from the map) clears, at `now` (UTC).
    pub fn tools(
        &mut self,
        agent: &str,
        by_device: &HashMap<String, Vec<CuttingTool>>,
        now: DateTime<Utc>,
    ) -> Vec<AlarmChange> {
        let mut out = Vec::new();
        self.now = now;
        let mut devices: Vec<&String> = by_device.keys().collect();
        devices.sort();
        for r in 0..self.rules.len() {
            if self.rules[r].trigger != Trigger::ToolLife {
                continue;
            }
            let mut near: Vec<Key> = Vec::new();
            for device in &devices {
                if !self.rules[r].matches_device(&self.layout, agent, device) {
                    continue;
                }
                for tool in by_device[*device].iter().filter(|t| t.near_life_limit()) {
                    let item = format!("asset:{}", tool.asset_id);
                    let key: Key = (r, agent.to_owned(), (*device).clone(), item.clone(), None);
                    near.push(key.clone());
                    if self.is_active(&key) {
                        continue;
                    }
                    let state = if tool.is_expired_or_broken() {
                        "expired or broken"
                    } else {
                        "near its life limit"
                    };
                    let label = tool.label();
                    let fields = Fields {
                        value: &label,
                        state,
                        seconds: 0,
                    };
                    self.raise_with(key, device, &item, now, &fields, &mut out);
                }
            }
            let from: Key = (r, agent.to_owned(), String::new(), String::new(), None);
            let gone: Vec<Key> = self
                .by_key
                .range(from..)
                .map(|(k, _)| k)
                .take_while(|k| k.0 == r && k.1 == agent)
                .filter(|k| !near.contains(k))
                .cloned()
                .collect();
            for key in gone {
                self.clear(&key, now, &mut out);
            }
        }
        out
    }

    /// The agents followed, each as (its key, the name to show in messages, e.g. its URL
    /// without credentials, since when it cannot be reached (`None`: it answers), by this
    /// process's clock (UTC)): each [`Trigger::Unreachable`] rule raises an alarm
    /// for an agent unreachable for its time, and clears it for one that answers again or
    /// is no longer listed (removed). Called at each tick.
    pub fn agents(
        &mut self,
        agents: &[(String, String, Option<DateTime<Utc>>)],
        now: DateTime<Utc>,
    ) -> Vec<AlarmChange> {
        let mut out = Vec::new();
        self.now = now;
        for r in 0..self.rules.len() {
            let Trigger::Unreachable { seconds } = self.rules[r].trigger else {
                continue;
            };
            let limit = Duration::seconds(seconds.into());
            let mut down: Vec<Key> = Vec::new();
            for (agent, shown, since) in agents {
                let Some(since) = since.filter(|s| now - *s >= limit) else {
                    continue;
                };
                let key: Key = (r, agent.clone(), String::new(), String::new(), None);
                down.push(key.clone());
                if self.is_active(&key) {
                    continue;
                }
                let shown = crate::layout::cut(shown, 200);
                let fields = Fields {
                    value: &shown,
                    state: "UNREACHABLE",
                    seconds,
                };
                self.raise_with(key, "", "", since + limit, &fields, &mut out);
            }
            let from: Key = (r, String::new(), String::new(), String::new(), None);
            let up: Vec<Key> = self
                .by_key
                .range(from..)
                .map(|(k, _)| k)
                .take_while(|k| k.0 == r)
                .filter(|k| !down.contains(k))
                .cloned()
                .collect();
            for key in up {
                self.clear(&key, now, &mut out);
            }
        }
        out
    }

    fn raise(
        &mut self,
        key: Key,
        o: &Observation,
        at: DateTime<Utc>,
        fields: &Fields<'_>,
        out: &mut Vec<AlarmChange>,
    ) {
        let (device, item) = (o.device.clone(), o.data_item_id.clone());
        self.raise_with(key, &device, &item, at, fields, out);
    }

    fn raise_with(
        &mut self,
        key: Key,
        device: &str,
        item: &str,
        at: DateTime<Utc>,
        fields: &Fields<'_>,
        out: &mut Vec<AlarmChange>,
    ) {
        let rule = &self.rules[key.0];
        let message = expand(rule, device, item, key.4.as_deref(), fields);
        let dedup = Duration::seconds(rule.dedup_seconds.into());
        // The same alarm: not ended, or ended within the de-duplication window.
        let same = self.by_key.get(&key).copied().filter(|id| {
            self.alarms.get(id).is_some_and(|a| {
                a.state != AlarmState::Ended || a.cleared_at.is_some_and(|c| at - c <= dedup)
            })
        });
        if let Some(id) = same {
            let Some(a) = self.alarms.get_mut(&id) else {
                return;
            };
            if a.active {
                return; // Still raised: a repeated Fault is the same alarm.
            }
            a.active = true;
            a.count += 1;
            a.last_raised_at = at;
            a.cleared_at = None;
            a.message = message;
            // Raised again: to be acknowledged again (ISA-18.2 §5.3: a return to alarm).
            a.state = AlarmState::Unacknowledged;
            // Chattering: raised CHATTER_RAISES times within the window, by this
            // process's clock; it stops being so once the window holds fewer.
            let now = self.now;
            a.raises.retain(|t| now - *t <= CHATTER_WINDOW);
            if a.raises.len() == CHATTER_RAISES {
                a.raises.pop_front();
            }
            a.raises.push_back(now);
            let was_chattering = a.chattering;
            a.chattering = a.raises.len() >= CHATTER_RAISES;
            let became_chattering = a.chattering && !was_chattering;
            let chattering_now = a.chattering;
            let shelved = a.shelved.is_some();
            let flood = self
                .floods
                .get(&(a.agent.clone(), a.device.clone()))
                .is_some_and(|(_, f)| *f);
            let alarm = a.clone();
            if became_chattering {
                out.push(AlarmChange {
                    kind: ChangeKind::Chattering,
                    at,
                    deliver: !shelved && !flood,
                    alarm,
                });
            } else {
                out.push(AlarmChange {
                    kind: ChangeKind::Reraised,
                    at,
                    // A chattering alarm's returns are not delivered; once they thin
                    // out, the next one is.
                    deliver: !shelved && !chattering_now && !flood,
                    alarm,
                });
            }
            return;
        }
        // A new alarm.
        let (agent, device) = (key.1.clone(), key.2.clone());
        let flood_key = (agent.clone(), device.clone());
        let now = self.now;
        let (times, flood) = self.floods.entry(flood_key).or_default();
        times.retain(|t| now - *t <= FLOOD_WINDOW);
        if times.len() > FLOOD_ALARMS {
            times.pop_front();
        }
        times.push_back(now);
        let began_flood = !*flood && times.len() > FLOOD_ALARMS;
        *flood |= began_flood;
        let in_flood = *flood;
        // A shelving outlives its alarm while its time lasts (ISA-18.2 §16.3: the alarm
        // point is shelved, not one occurrence).
        let shelved = self
            .by_key
            .get(&key)
            .and_then(|id| self.alarms.get(id))
            .and_then(|a| a.shelved.clone())
            .filter(|s| s.until > now);
        let id = self.next_id;
        self.next_id += 1;
        let alarm = Alarm {
            id,
            rule: rule.name.clone(),
            priority: rule.priority,
            agent,
            device,
            data_item_id: item.to_owned(),
            native_code: key.4.clone(),
            message,
            state: AlarmState::Unacknowledged,
            raised_at: at,
            last_raised_at: at,
            cleared_at: None,
            count: 1,
            chattering: false,
            in_flood,
            acknowledged: None,
            shelved,
            raises: VecDeque::from([now]),
            active: true,
            key: key.clone(),
        };
        self.alarms.insert(id, alarm.clone());
        self.by_key.insert(key, id);
        let kind = if began_flood {
            ChangeKind::Flood
        } else {
            ChangeKind::Raised
        };
        let deliver = alarm.shelved.is_none() && (began_flood || !in_flood);
        let (agent, device) = (alarm.agent.clone(), alarm.device.clone());
        out.push(AlarmChange {
            kind,
            at,
            deliver,
            alarm,
        });
        self.bound(&agent, &device);
    }

    fn clear(&mut self, key: &Key, at: DateTime<Utc>, out: &mut Vec<AlarmChange>) {
        let Some(a) = self.by_key.get(key).and_then(|id| self.alarms.get_mut(id)) else {
            return;
        };
        if !a.active {
            return;
        }
        a.active = false;
        a.cleared_at = Some(at);
        a.state = match a.state {
            AlarmState::Unacknowledged => AlarmState::ClearedUnacknowledged,
            _ => AlarmState::Ended,
        };
        let deliver = a.shelved.is_none() && !a.chattering && !a.in_flood;
        out.push(AlarmChange {
            kind: ChangeKind::Cleared,
            at,
            deliver,
            alarm: a.clone(),
        });
    }

    /// An operator acknowledges alarm `id` at `at` (UTC): active unacknowledged becomes
    /// active acknowledged, cleared unacknowledged ends; already acknowledged, nothing
    /// changes (`Ok(None)`).
    ///
    /// # Errors
    /// [`ActionError::NoSuchAlarm`], [`ActionError::Ended`].
    pub fn acknowledge(
        &mut self,
        id: u64,
        action: Action,
    ) -> Result<Option<AlarmChange>, ActionError> {
        let a = self
            .alarms
            .get_mut(&id)
            .ok_or(ActionError::NoSuchAlarm(id))?;
        a.state = match a.state {
            AlarmState::Unacknowledged => AlarmState::Acknowledged,
            AlarmState::ClearedUnacknowledged => AlarmState::Ended,
            AlarmState::Acknowledged => return Ok(None),
            AlarmState::Ended => return Err(ActionError::Ended(id)),
        };
        let at = action.at;
        a.acknowledged = Some(action);
        Ok(Some(AlarmChange {
            kind: ChangeKind::Acknowledged,
            at,
            deliver: a.shelved.is_none(),
            alarm: a.clone(),
        }))
    }

    /// An operator shelves alarm `id` until `until` (UTC; after `action.at`, at most
    /// [`MAX_SHELVE_HOURS`] later): its changes are not delivered until it is unshelved.
    ///
    /// # Errors
    /// [`ActionError::NoSuchAlarm`], [`ActionError::Ended`], [`ActionError::ShelveTime`].
    pub fn shelve(
        &mut self,
        id: u64,
        action: Action,
        until: DateTime<Utc>,
    ) -> Result<AlarmChange, ActionError> {
        if until <= action.at || until - action.at > Duration::hours(MAX_SHELVE_HOURS) {
            return Err(ActionError::ShelveTime(MAX_SHELVE_HOURS));
        }
        let a = self
            .alarms
            .get_mut(&id)
            .ok_or(ActionError::NoSuchAlarm(id))?;
        if a.state == AlarmState::Ended {
            return Err(ActionError::Ended(id));
        }
        let at = action.at;
        a.shelved = Some(Shelving { action, until });
        Ok(AlarmChange {
            kind: ChangeKind::Shelved,
            at,
            deliver: true,
            alarm: a.clone(),
        })
    }

    /// An operator unshelves alarm `id` at `at`; not shelved: `Ok(None)`.
    ///
    /// # Errors
    /// [`ActionError::NoSuchAlarm`].
    pub fn unshelve(
        &mut self,
        id: u64,
        at: DateTime<Utc>,
    ) -> Result<Option<AlarmChange>, ActionError> {
        let a = self
            .alarms
            .get_mut(&id)
            .ok_or(ActionError::NoSuchAlarm(id))?;
        if a.shelved.take().is_none() {
            return Ok(None);
        }
        Ok(Some(AlarmChange {
            kind: ChangeKind::Unshelved,
            at,
            deliver: true,
            alarm: a.clone(),
        }))
    }

    /// Keeps at most [`MAX_ALARMS`]: the oldest ended alarm goes, else the oldest
    /// cleared one, else the oldest active one of `agent`'s `device` (the device that just
    /// raised one: a device raising thousands of alarms drops its own, never another
    /// device's standing alarm), else the oldest. An active alarm dropped is raised again
    /// by its rule, as new.
    fn bound(&mut self, agent: &str, device: &str) {
        while self.alarms.len() > MAX_ALARMS {
            let oldest = |state: AlarmState| {
                self.alarms
                    .values()
                    .find(|a| a.state == state)
                    .map(|a| a.id)
            };
            let own = || {
                let mut of_device = self
                    .alarms
                    .values()
                    .filter(|a| a.agent == agent && a.device == device);
                // Not the one just raised (the newest) while an older one is there.
                let first = of_device.next().map(|a| a.id);
                of_device.next().and(first)
            };
            let Some(id) = oldest(AlarmState::Ended)
                .or_else(|| oldest(AlarmState::ClearedUnacknowledged))
                .or_else(own)
                .or_else(|| self.alarms.keys().next().copied())
            else {
                return;
            };
            if let Some(a) = self.alarms.remove(&id) {
                if self.by_key.get(&a.key) == Some(&id) {
                    self.by_key.remove(&a.key);
                }
            }
        }
    }
}

/// A raise's values for the message template.
struct Fields<'a> {
    value: &'a str,
    state: &'a str,
    seconds: u32,
}

/// The rule's message for one alarm, at most [`MAX_MESSAGE`] bytes.
fn expand(rule: &Rule, device: &str, item: &str, code: Option<&str>, f: &Fields<'_>) -> String {
    let template = if rule.message.is_empty() {
        match &rule.trigger {
            Trigger::Condition { .. } => "{device}: {state} {code} {value}",
            Trigger::Held { .. } => "{device}: {state} for {seconds} s or more",
            Trigger::Threshold { .. } => "{device}: {item} at {value} for {seconds} s or more",
            Trigger::Stale { .. } => "{device}: no data for {seconds} s (newest {value})",
            Trigger::ToolLife => "{device}: tool {value} {state}",
            Trigger::Unreachable { .. } => "agent {value} unreachable for {seconds} s or more",
        }
    } else {
        rule.message.as_str()
    };
    let seconds = f.seconds.to_string();
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        let (name, len) = match after.find('}') {
            Some(j) => (&after[1..j], j + 1),
            None => ("", 0),
        };
        let with = match name {
            "device" => Some(device),
            "rule" => Some(rule.name.as_str()),
            "value" => Some(f.value),
            "code" => Some(code.unwrap_or("")),
            "state" => Some(f.state),
            "seconds" => Some(seconds.as_str()),
            "item" => Some(item),
            _ => None,
        };
        match with {
            Some(w) => {
                out.push_str(w);
                rest = &after[len..];
            }
            None => {
                out.push('{');
                rest = &after[1..];
            }
        }
        if out.len() > MAX_MESSAGE {
            break;
        }
    }
    out.push_str(rest);
    let out = out.split_whitespace().collect::<Vec<_>>().join(" ");
    crate::layout::cut(&out, MAX_MESSAGE)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::{ConditionState, Value};

    fn at(s: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2016, 5, 2, 15, 0, 0).unwrap() + Duration::seconds(s)
    }

    fn condition(s: i64, level: ConditionLevel, code: Option<&str>, text: &str) -> Observation {
        Observation {
            sequence: s as u64,
            timestamp: at(s),
            device: "Mazak01".into(),
            component_id: "path1".into(),
            data_item_id: "Mazak01-system".into(),
            name: None,
            category: Category::Condition,
            kind: "System".into(),
            sub_type: None,
            value: Value::Text(text.into()),
            condition: Some(ConditionState {
                level,
                native_code: code.map(str::to_owned),
                native_severity: None,
                qualifier: None,
            }),
        }
    }

    fn event(s: i64, device: &str, kind: &str, category: Category, value: &str) -> Observation {
        Observation {
            sequence: s as u64,
            timestamp: at(s),
            device: device.into(),
            component_id: "path1".into(),
            data_item_id: format!("{device}-{kind}"),
            name: None,
            category,
            kind: kind.into(),
            sub_type: None,
            value: Value::from_text(value),
            condition: None,
        }
    }

    fn rule(name: &str, trigger: Trigger) -> Rule {
        Rule {
            name: name.into(),
            trigger,
            priority: Priority::High,
            devices: vec![],
            cells: vec![],
            dedup_seconds: 0,
            message: String::new(),
            planned_only: false,
        }
    }

    fn faults() -> Rule {
        rule(
            "faults",
            Trigger::Condition {
                level: ConditionLevel::Fault,
                kind: None,
                native_code: None,
                text: None,
            },
        )
    }

    fn user(s: i64) -> Action {
        Action {
            by: "ana".into(),
            at: at(s),
            comment: "seen".into(),
        }
    }

    fn feed(e: &mut AlarmEngine, o: Observation) -> Vec<AlarmChange> {
        let now = o.timestamp;
        e.observe("a", &o, now)
    }

    fn kinds(changes: &[AlarmChange]) -> Vec<(ChangeKind, bool)> {
        changes.iter().map(|c| (c.kind, c.deliver)).collect()
    }

    #[test]
    fn a_fault_goes_through_the_isa_states() {
        let mut e = AlarmEngine::new(vec![faults()], Layout::default());
        let c = feed(
            &mut e,
            condition(1, ConditionLevel::Fault, Some("7"), "Servo"),
        );
        assert_eq!(kinds(&c), [(ChangeKind::Raised, true)]);
        let a = &c[0].alarm;
        assert_eq!((a.id, a.state, a.count), (1, AlarmState::Unacknowledged, 1));
        assert_eq!(a.message, "Mazak01: Fault 7 Servo");
        // The same Fault again: nothing new.
        assert!(feed(
            &mut e,
            condition(2, ConditionLevel::Fault, Some("7"), "Servo")
        )
        .is_empty());
        let ack = e.acknowledge(1, user(3)).unwrap().unwrap();
        assert_eq!(ack.alarm.state, AlarmState::Acknowledged);
        assert_eq!(e.acknowledge(1, user(4)).unwrap(), None);
        // Normal of another code clears nothing; of its code, it ends (acknowledged).
        assert!(feed(&mut e, condition(5, ConditionLevel::Normal, Some("8"), "")).is_empty());
        let c = feed(&mut e, condition(6, ConditionLevel::Normal, Some("7"), ""));
        assert_eq!(kinds(&c), [(ChangeKind::Cleared, true)]);
        assert_eq!(c[0].alarm.state, AlarmState::Ended);
        assert_eq!(e.active().count(), 0);
        assert_eq!(e.acknowledge(1, user(7)), Err(ActionError::Ended(1)));
        assert_eq!(e.acknowledge(9, user(7)), Err(ActionError::NoSuchAlarm(9)));
    }

    #[test]
    fn cleared_unacknowledged_waits_for_its_acknowledgement() {
        let mut e = AlarmEngine::new(vec![faults()], Layout::default());
        feed(&mut e, condition(1, ConditionLevel::Fault, None, "Door"));
        let c = feed(&mut e, condition(2, ConditionLevel::Unavailable, None, ""));
        assert_eq!(c[0].alarm.state, AlarmState::ClearedUnacknowledged);
        assert_eq!(e.active().count(), 1);
        let c = e.acknowledge(1, user(3)).unwrap().unwrap();
        assert_eq!(c.alarm.state, AlarmState::Ended);
        // A Warning does not raise a Fault rule (nor a Fault a Warning rule).
        assert!(feed(&mut e, condition(4, ConditionLevel::Warning, None, "x")).is_empty());
    }

    #[test]
    fn a_flapping_fault_is_one_chattering_alarm_with_its_count() {
        let mut e = AlarmEngine::new(vec![faults()], Layout::default());
        let mut delivered = Vec::new();
        for i in 0..22 {
            let t = i * 60;
            for c in feed(
                &mut e,
                condition(t, ConditionLevel::Fault, Some("1"), "Flap"),
            ) {
                delivered.push((c.kind, c.deliver));
            }
            for c in feed(&mut e, condition(t + 20, ConditionLevel::Normal, None, "")) {
                delivered.push((c.kind, c.deliver));
            }
        }
        let all: Vec<&Alarm> = e.all().collect();
        assert_eq!(all.len(), 1);
        assert_eq!((all[0].count, all[0].chattering), (22, true));
        assert_eq!(all[0].state, AlarmState::ClearedUnacknowledged);
        let sent: Vec<ChangeKind> = delivered.iter().filter(|d| d.1).map(|d| d.0).collect();
        assert_eq!(
            sent,
            [
                ChangeKind::Raised,
                ChangeKind::Cleared,
                ChangeKind::Reraised,
                ChangeKind::Cleared,
                ChangeKind::Chattering,
            ]
        );
    }

    #[test]
    fn the_dedup_window_keeps_an_ended_alarm_for_its_return() {
        let mut r = faults();
        r.dedup_seconds = 300;
        let mut e = AlarmEngine::new(vec![r], Layout::default());
        feed(&mut e, condition(0, ConditionLevel::Fault, None, "x"));
        e.acknowledge(1, user(1)).unwrap();
        feed(&mut e, condition(2, ConditionLevel::Normal, None, ""));
        assert_eq!(e.get(1).unwrap().state, AlarmState::Ended);
        let c = feed(&mut e, condition(200, ConditionLevel::Fault, None, "x"));
        assert_eq!(
            (c[0].kind, c[0].alarm.id, c[0].alarm.count),
            (ChangeKind::Reraised, 1, 2)
        );
        feed(&mut e, condition(201, ConditionLevel::Normal, None, ""));
        e.acknowledge(1, user(202)).unwrap();
        // Past the window: a new alarm.
        let c = feed(&mut e, condition(900, ConditionLevel::Fault, None, "x"));
        assert_eq!((c[0].kind, c[0].alarm.id), (ChangeKind::Raised, 2));
    }

    #[test]
    fn a_state_held_too_long_raises_at_its_due_time_by_tick_or_observation() {
        let held = rule(
            "stopped",
            Trigger::Held {
                kind: "Execution".into(),
                states: vec!["STOPPED".into(), "INTERRUPTED".into()],
                seconds: 600,
            },
        );
        let mut e = AlarmEngine::new(vec![held], Layout::default());
        assert!(feed(
            &mut e,
            event(0, "M", "Execution", Category::Event, "STOPPED")
        )
        .is_empty());
        assert!(e.tick(at(599)).is_empty());
        // Another stopped state goes on counting from the first.
        feed(
            &mut e,
            event(300, "M", "Execution", Category::Event, "INTERRUPTED"),
        );
        let c = e.tick(at(700));
        assert_eq!(kinds(&c), [(ChangeKind::Raised, true)]);
        assert_eq!(c[0].alarm.raised_at, at(600));
        assert_eq!(c[0].alarm.message, "M: STOPPED for 600 s or more");
        assert!(e.tick(at(800)).is_empty());
        let c = feed(
            &mut e,
            event(900, "M", "Execution", Category::Event, "ACTIVE"),
        );
        assert_eq!(c[0].kind, ChangeKind::Cleared);
        // A short stop raises nothing.
        feed(
            &mut e,
            event(1000, "M", "Execution", Category::Event, "STOPPED"),
        );
        feed(
            &mut e,
            event(1100, "M", "Execution", Category::Event, "ACTIVE"),
        );
        assert!(e.tick(at(5000)).is_empty());
    }

    #[test]
    fn a_threshold_for_a_time_and_unavailable_clears() {
        let mut load = rule(
            "load",
            Trigger::Threshold {
                kind: "Load".into(),
                data_item_id: None,
                above: Some(90.0),
                below: None,
                model_limits: false,
                seconds: 10,
            },
        );
        load.message = "{device} {item} load {value} over {seconds} s ({rule})".into();
        let mut e = AlarmEngine::new(vec![load], Layout::default());
        assert!(feed(&mut e, event(0, "M", "Load", Category::Sample, "95")).is_empty());
        let c = feed(&mut e, event(12, "M", "Load", Category::Sample, "97.5"));
        assert_eq!(c[0].alarm.message, "M M-Load load 97.5 over 10 s (load)");
        let c = feed(
            &mut e,
            event(13, "M", "Load", Category::Sample, "UNAVAILABLE"),
        );
        assert_eq!(c[0].kind, ChangeKind::Cleared);
        assert!(feed(&mut e, event(14, "M", "Load", Category::Sample, "50")).is_empty());
    }

    #[test]
    fn a_stale_device_and_devices_by_glob() {
        let mut stale = rule("stale", Trigger::Stale { seconds: 60 });
        stale.devices = vec!["Maz*".into()];
        let mut e = AlarmEngine::new(vec![stale], Layout::default());
        feed(
            &mut e,
            event(0, "Mazak01", "Execution", Category::Event, "ACTIVE"),
        );
        feed(
            &mut e,
            event(0, "Hurco01", "Execution", Category::Event, "ACTIVE"),
        );
        assert!(e.tick(at(59)).is_empty());
        let c = e.tick(at(61));
        assert_eq!(c.len(), 1);
        assert_eq!(
            (c[0].alarm.device.as_str(), c[0].alarm.raised_at),
            ("Mazak01", at(60))
        );
        assert!(e.tick(at(120)).is_empty());
        let c = feed(
            &mut e,
            event(130, "Mazak01", "Execution", Category::Event, "READY"),
        );
        assert_eq!(c[0].kind, ChangeKind::Cleared);
    }

    #[test]
    fn shelving_hides_changes_until_it_is_up() {
        let mut e = AlarmEngine::new(vec![faults()], Layout::default());
        feed(&mut e, condition(0, ConditionLevel::Fault, None, "x"));
        assert_eq!(
            e.shelve(1, user(1), at(1)),
            Err(ActionError::ShelveTime(24))
        );
        assert_eq!(
            e.shelve(1, user(1), at(1) + Duration::hours(25)),
            Err(ActionError::ShelveTime(24))
        );
        let c = e.shelve(1, user(1), at(600)).unwrap();
        assert!(c.alarm.shelved.is_some());
        let c = feed(&mut e, condition(10, ConditionLevel::Normal, None, ""));
        assert_eq!(kinds(&c), [(ChangeKind::Cleared, false)]);
        assert!(e.tick(at(599)).is_empty());
        let c = e.tick(at(600));
        assert_eq!(kinds(&c), [(ChangeKind::Unshelved, true)]);
        assert_eq!(e.unshelve(1, at(601)), Ok(None));
    }

    #[test]
    fn a_flood_is_one_delivered_change() {
        let mut e = AlarmEngine::new(vec![faults()], Layout::default());
        let mut sent = 0;
        let mut floods = 0;
        for i in 0..15 {
            let code = i.to_string();
            for c in feed(
                &mut e,
                condition(i * 10, ConditionLevel::Fault, Some(&code), "x"),
            ) {
                sent += usize::from(c.deliver);
                floods += usize::from(c.kind == ChangeKind::Flood);
            }
        }
        assert_eq!((sent, floods), (FLOOD_ALARMS + 1, 1));
        assert!(e.in_flood("a", "Mazak01"));
        assert_eq!(e.active().count(), 15);
        e.tick(at(140) + FLOOD_WINDOW + Duration::seconds(1));
        assert!(!e.in_flood("a", "Mazak01"));
    }

    #[test]
    fn templates_are_bounded_and_keep_unknown_braces() {
        let mut r = faults();
        r.message = "{nope} {device} {".repeat(200);
        let mut e = AlarmEngine::new(vec![r], Layout::default());
        let c = feed(&mut e, condition(0, ConditionLevel::Fault, None, "x"));
        assert!(c[0].alarm.message.len() <= MAX_MESSAGE);
        assert!(c[0].alarm.message.starts_with("{nope} Mazak01 {"));
    }

    #[test]
    fn chattering_ends_when_the_raises_thin_out() {
        let mut e = AlarmEngine::new(vec![faults()], Layout::default());
        for i in 0..3 {
            feed(&mut e, condition(i * 60, ConditionLevel::Fault, None, "x"));
            feed(
                &mut e,
                condition(i * 60 + 10, ConditionLevel::Normal, None, ""),
            );
        }
        assert!(e.get(1).unwrap().chattering);
        // An hour later, it returns once: no longer chattering, and delivered.
        let c = feed(&mut e, condition(3600, ConditionLevel::Fault, None, "x"));
        assert_eq!(kinds(&c), [(ChangeKind::Reraised, true)]);
        assert!(!c[0].alarm.chattering);
    }

    #[test]
    fn future_timestamps_do_not_flood_a_device_for_ever() {
        let mut e = AlarmEngine::new(vec![faults()], Layout::default());
        // Twelve alarms stamped a year ahead, received now.
        for i in 0..12 {
            let mut o = condition(i, ConditionLevel::Fault, Some(&i.to_string()), "x");
            o.timestamp += Duration::days(365);
            e.observe("a", &o, at(i));
        }
        assert!(e.in_flood("a", "Mazak01"));
        // The flood is timed on the clock given: it passes.
        e.tick(at(12) + FLOOD_WINDOW + Duration::seconds(1));
        assert!(!e.in_flood("a", "Mazak01"));
        let c = e.observe(
            "a",
            &condition(2000, ConditionLevel::Fault, Some("new"), "x"),
            at(2000),
        );
        assert_eq!(kinds(&c), [(ChangeKind::Raised, true)]);
    }

    #[test]
    fn a_held_state_lasts_by_the_clock_given_too() {
        let held = rule(
            "stopped",
            Trigger::Held {
                kind: "Execution".into(),
                states: vec!["STOPPED".into()],
                seconds: 600,
            },
        );
        let mut e = AlarmEngine::new(vec![held], Layout::default());
        // The agent's clock steps an hour ahead between two readings received a second
        // apart: nothing is raised.
        e.observe(
            "a",
            &event(0, "M", "Execution", Category::Event, "STOPPED"),
            at(0),
        );
        let c = e.observe(
            "a",
            &event(3600, "M", "Execution", Category::Event, "STOPPED"),
            at(1),
        );
        assert!(c.is_empty());
        assert!(e.tick(at(599)).is_empty());
        assert_eq!(e.tick(at(600)).len(), 1);
    }

    #[test]
    fn a_shelving_outlives_its_alarm_while_it_lasts() {
        let mut e = AlarmEngine::new(vec![faults()], Layout::default());
        feed(&mut e, condition(0, ConditionLevel::Fault, None, "x"));
        e.shelve(1, user(1), at(3600)).unwrap();
        e.acknowledge(1, user(2)).unwrap();
        feed(&mut e, condition(3, ConditionLevel::Normal, None, ""));
        assert_eq!(e.get(1).unwrap().state, AlarmState::Ended);
        // A new alarm of the same point within the hour: shelved, not delivered.
        let c = feed(&mut e, condition(600, ConditionLevel::Fault, None, "x"));
        assert_eq!((c[0].kind, c[0].deliver), (ChangeKind::Raised, false));
        assert!(c[0].alarm.shelved.is_some());
    }

    #[test]
    fn a_device_silent_since_start_goes_stale() {
        let mut e = AlarmEngine::new(
            vec![rule("stale", Trigger::Stale { seconds: 60 })],
            Layout::default(),
        );
        // Known to the store, never heard from since start.
        e.watch_device("http://a", "Mazak01", at(0));
        e.watch_device("http://a", "Mazak01", at(50)); // watched already: kept at 0
        assert!(e.tick(at(59)).is_empty());
        let c = e.tick(at(60));
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].alarm.device, "Mazak01");
    }

    #[test]
    fn a_tool_near_its_life_limit_is_one_alarm_until_replaced() {
        use crate::tools::{CountDirection, ToolLife, ToolLifeKind};
        let tool = |id: &str, used: f64| CuttingTool {
            asset_id: id.into(),
            program_tool_number: Some(id.trim_start_matches("M1.T").into()),
            lives: vec![ToolLife::new(
                ToolLifeKind::PartCount,
                CountDirection::Up,
                Some(used),
                Some(200.0),
            )],
            ..CuttingTool::default()
        };
        let mut e = AlarmEngine::new(vec![rule("tools", Trigger::ToolLife)], Layout::default());
        let tools = |list: Vec<CuttingTool>| HashMap::from([("Mazak01".to_owned(), list)]);
        assert!(e
            .tools("a", &tools(vec![tool("M1.T1", 10.0)]), at(0))
            .is_empty());
        let c = e.tools(
            "a",
            &tools(vec![tool("M1.T1", 190.0), tool("M1.T2", 5.0)]),
            at(10),
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].kind, ChangeKind::Raised);
        assert_eq!(c[0].alarm.data_item_id, "asset:M1.T1");
        assert_eq!(c[0].alarm.message, "Mazak01: tool T1 near its life limit");
        // Read again, still near: nothing new.
        assert!(e
            .tools("a", &tools(vec![tool("M1.T1", 195.0)]), at(20))
            .is_empty());
        // Replaced (its life counted from zero again): cleared.
        let c = e.tools("a", &tools(vec![tool("M1.T1", 0.0)]), at(30));
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].kind, ChangeKind::Cleared);
        // Another agent's tools are not touched by this agent's reads.
        e.tools("b", &tools(vec![tool("M1.T9", 199.0)]), at(40));
        assert!(e.tools("a", &HashMap::new(), at(50)).is_empty());
        assert_eq!(e.active().filter(|a| a.active).count(), 1);
    }

    #[test]
    fn an_agent_unreachable_for_long_enough_raises_and_its_answer_clears() {
        let mut e = AlarmEngine::new(
            vec![rule("down", Trigger::Unreachable { seconds: 60 })],
            Layout::default(),
        );
        let down = |since: Option<i64>| {
            vec![(
                "http://u:p@a".to_owned(),
                "http://a".to_owned(),
                since.map(at),
            )]
        };
        assert!(e.agents(&down(Some(0)), at(59)).is_empty());
        let c = e.agents(&down(Some(0)), at(61));
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].alarm.raised_at, at(60));
        assert_eq!(
            c[0].alarm.message,
            "agent http://a unreachable for 60 s or more"
        );
        assert!(e.agents(&down(Some(0)), at(70)).is_empty());
        let c = e.agents(&down(None), at(80));
        assert_eq!(c[0].kind, ChangeKind::Cleared);
        // Removed while down: cleared too.
        e.agents(&down(Some(100)), at(200));
        let c = e.agents(&[], at(210));
        assert_eq!(c[0].kind, ChangeKind::Cleared);
    }

    #[test]
    fn a_device_raising_thousands_of_alarms_drops_its_own_not_anothers() {
        let mut e = AlarmEngine::new(vec![faults()], Layout::default());
        let mut other = condition(0, ConditionLevel::Fault, Some("STANDING"), "x");
        other.device = "Hurco01".into();
        feed(&mut e, other);
        for i in 0..(MAX_ALARMS as i64 + 50) {
            feed(
                &mut e,
                condition(i + 1, ConditionLevel::Fault, Some(&format!("C{i}")), "x"),
            );
        }
        assert_eq!(e.all().count(), MAX_ALARMS);
        assert!(
            e.active().any(|a| a.device == "Hurco01"),
            "another device's standing alarm was dropped"
        );
    }

    #[test]
    fn a_planned_only_rule_waits_for_planned_time() {
        let mut stopped = rule(
            "stopped",
            Trigger::Held {
                kind: "Execution".into(),
                states: vec!["STOPPED".into()],
                seconds: 60,
            },
        );
        stopped.planned_only = true;
        let mut e = AlarmEngine::new(vec![stopped], Layout::default());
        e.set_planned(false);
        feed(
            &mut e,
            event(0, "Mazak01", "Execution", Category::Event, "STOPPED"),
        );
        assert!(e.tick(at(120)).is_empty(), "raised outside planned time");
        assert!(
            feed(
                &mut e,
                event(121, "Mazak01", "Execution", Category::Event, "STOPPED")
            )
            .is_empty(),
            "raised by an observation outside planned time"
        );
        e.set_planned(true);
        let c = e.tick(at(125));
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].kind, ChangeKind::Raised);
    }

    #[test]
    fn replaced_rules_keep_their_alarms_and_removed_ones_clear() {
        let mut e = AlarmEngine::new(
            vec![faults(), rule("stale", Trigger::Stale { seconds: 60 })],
            Layout::default(),
        );
        feed(&mut e, condition(0, ConditionLevel::Fault, Some("A"), "x"));
        let mut renamed = rule("quiet", Trigger::Stale { seconds: 30 });
        renamed.priority = Priority::Low;
        // "Faults" moves to index 1, "stale" goes, "quiet" comes.
        let c = e.replace_rules(vec![renamed, faults()], at(10));
        assert!(c.is_empty(), "{c:?}");
        assert_eq!(e.active().count(), 1);
        // The same alarm still clears by its Normal.
        let c = feed(&mut e, condition(20, ConditionLevel::Normal, Some("A"), ""));
        assert_eq!(c[0].kind, ChangeKind::Cleared);
        feed(&mut e, condition(30, ConditionLevel::Fault, Some("B"), "y"));
        let c = e.replace_rules(vec![rule("quiet", Trigger::Stale { seconds: 30 })], at(40));
        assert_eq!(c.len(), 1);
        assert_eq!((c[0].kind, c[0].deliver), (ChangeKind::Cleared, true));
        // A third set, after a removal, and a changed rule: its alarms clear.
        let c = e.replace_rules(
            vec![faults(), rule("quiet", Trigger::Stale { seconds: 30 })],
            at(70),
        );
        assert!(c.is_empty(), "{c:?}");
        feed(&mut e, condition(75, ConditionLevel::Fault, Some("C"), "z"));
        let mut louder = faults();
        louder.priority = Priority::Urgent;
        let c = e.replace_rules(vec![louder], at(80));
        assert_eq!(kinds(&c), [(ChangeKind::Cleared, true)]);
    }

    #[test]
    fn alarms_are_taken_back_after_a_restart() {
        let mut e = AlarmEngine::new(vec![faults()], Layout::default());
        feed(&mut e, condition(0, ConditionLevel::Fault, Some("A"), "x"));
        feed(&mut e, condition(1, ConditionLevel::Fault, Some("B"), "y"));
        let b = e
            .active()
            .find(|a| a.native_code.as_deref() == Some("B"))
            .unwrap()
            .id;
        e.acknowledge(
            b,
            Action {
                by: "ada".into(),
                at: at(2),
                comment: String::new(),
            },
        )
        .unwrap();
        let json = serde_json::to_string(&e.snapshot()).unwrap();
        let mut again = AlarmEngine::new(vec![faults()], Layout::default());
        let back: Vec<Alarm> = serde_json::from_str(&json).unwrap();
        assert_eq!(again.restore(back), 2);
        // Raised again by the data: the same alarm, nothing new to tell.
        assert!(feed(
            &mut again,
            condition(3, ConditionLevel::Fault, Some("A"), "x")
        )
        .is_empty());
        assert_eq!(again.get(b).unwrap().state, AlarmState::Acknowledged);
        // Its Normal clears it; a new alarm is numbered past the old ones.
        let c = feed(
            &mut again,
            condition(4, ConditionLevel::Normal, Some("A"), ""),
        );
        assert_eq!(c[0].kind, ChangeKind::Cleared);
        let c = feed(
            &mut again,
            condition(5, ConditionLevel::Fault, Some("C"), "z"),
        );
        assert!(c[0].alarm.id > b);
        // A rule gone: its alarms are not taken back.
        let mut other = AlarmEngine::new(vec![rule("x", Trigger::ToolLife)], Layout::default());
        assert_eq!(other.restore(serde_json::from_str(&json).unwrap()), 0);
    }

    #[test]
    fn a_sample_beyond_its_device_models_limit() {
        use crate::limits::{Limit, LimitKind, LimitSource};
        let mut temp = rule(
            "temperature",
            Trigger::Threshold {
                kind: "Temperature".into(),
                data_item_id: None,
                above: None,
                below: None,
                model_limits: true,
                seconds: 0,
            },
        );
        temp.message = "{item} at {value}".into();
        let mut e = AlarmEngine::new(vec![temp], Layout::default());
        let t = |s: i64, v: &str| event(s, "Mazak01", "Temperature", Category::Sample, v);
        // No limits known yet: nothing to compare with.
        assert!(feed(&mut e, t(0, "95")).is_empty());
        let limits = [
            Limit::new(LimitKind::Maximum, 120.0, LimitSource::Constraints),
            Limit::new(LimitKind::UpperLimit, 80.0, LimitSource::Specification),
            Limit::new(LimitKind::Minimum, 5.0, LimitSource::Constraints),
        ];
        e.set_limits("a", [("Mazak01-Temperature", &limits[..])]);
        let c = feed(&mut e, t(1, "95"));
        assert_eq!(c.len(), 1, "above the UpperLimit, not only the Maximum");
        assert_eq!(c[0].alarm.message, "Mazak01-Temperature at 95");
        let c = feed(&mut e, t(2, "50"));
        assert_eq!(c[0].kind, ChangeKind::Cleared);
        assert_eq!(feed(&mut e, t(3, "2")).len(), 1, "below the Minimum");
        // Another agent's limits are its own.
        e.set_limits("b", [("Mazak01-Temperature", &limits[..1])]);
        assert!(
            feed(&mut e, t(4, "2")).is_empty(),
            "still raised, not again"
        );
    }
}
