//! Alarms in `serve`: the configuration's `[[alarm]]` rules run by one
//! [`AlarmEngine`] over every stored batch ([`AlarmHub::observe`], from
//! [`crate::state::App::publish`]) and a tick every 5 s; operators acknowledge and shelve
//! through `/api/alarms/{id}/…` (`src/web/alarms.rs`); each change to deliver goes to every
//! `[[alarm-webhook]]` ([`webhook`]) and `[[alarm-email]]` ([`email`]), in order, retried
//! while the receiver is down ([`delivery`]).
//!
//! Each change to deliver is kept in the store's outbox until its receiver confirms it:
//! a restart delivers what was not (with the delivery id it had), and nothing twice to a
//! receiver that confirmed it. The alarms themselves are in memory: a restart forgets
//! them (the rules raise again what is still there).

pub mod config;
pub mod delivery;
pub mod email;
pub mod webhook;

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use factorydash_core::alarms::{
    Action, ActionError, Alarm, AlarmChange, AlarmEngine, AlarmState, ChangeKind,
};
use factorydash_core::Observation;

pub use delivery::{Attempt, Receiver, Sink};
pub use email::{Email, EmailSpec};
pub use webhook::{Webhook, WebhookSpec};

/// How old an observation is (by its timestamp, against this process's clock) for its
/// changes to be history, not news ([`AlarmHub::observe`]).
pub const CATCH_UP: chrono::Duration = chrono::Duration::minutes(10);

/// How often held states, thresholds, stale devices and shelvings are looked at.
pub const TICK: std::time::Duration = std::time::Duration::from_secs(5);

/// The alarm engine and where its changes go.
pub struct AlarmHub {
    engine: Mutex<AlarmEngine>,
    receivers: Vec<Arc<Receiver>>,
}

impl std::fmt::Debug for AlarmHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlarmHub").finish_non_exhaustive()
    }
}

impl Default for AlarmHub {
    fn default() -> Self {
        AlarmHub::new(AlarmEngine::default(), Vec::new())
    }
}

impl AlarmHub {
    /// A hub over `engine`, delivering to `receivers` (their tasks started by
    /// [`AlarmHub::spawn`]).
    pub fn new(engine: AlarmEngine, receivers: Vec<Arc<Receiver>>) -> Self {
        AlarmHub {
            engine: Mutex::new(engine),
            receivers,
        }
    }

    fn engine(&self) -> std::sync::MutexGuard<'_, AlarmEngine> {
        self.engine.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether any rule is configured (without one, nothing is looked at).
    pub fn has_rules(&self) -> bool {
        !self.engine().rules().is_empty()
    }

    /// Feeds a stored batch of `agent`.
    ///
    /// A batch of history (ingest catching up on an agent's buffer, a recording's past)
    /// raises and clears alarms as it happened, for the page, but only what is still
    /// active at its end is delivered: changes of observations older than [`CATCH_UP`]
    /// are held back, and each alarm they raised that is still unacknowledged and active
    /// after the batch is delivered once, as raised.
    pub fn observe(&self, agent: &str, observations: &[Observation]) {
        {
            let mut e = self.engine();
            if e.rules().is_empty() {
                return;
            }
            let now = Utc::now();
            let old = now - CATCH_UP;
            let mut changes = Vec::new();
            let mut held_back: Vec<u64> = Vec::new();
            for o in observations {
                for mut c in e.observe(agent, o, now) {
                    if c.at < old && c.deliver {
                        c.deliver = false;
                        if !held_back.contains(&c.alarm.id) {
                            held_back.push(c.alarm.id);
                        }
                    }
                    changes.push(c);
                }
            }
            for id in held_back.drain(..) {
                let still = e.get(id).filter(|a| {
                    a.is_active() && a.shelved.is_none() && a.state == AlarmState::Unacknowledged
                });
                if let Some(a) = still {
                    changes.push(AlarmChange {
                        kind: ChangeKind::Raised,
                        at: a.last_raised_at,
                        deliver: true,
                        alarm: a.clone(),
                    });
                }
            }
            // Queued under the engine's lock: receivers get changes in the engine's order.
            self.send(changes);
        }
    }

    /// The time passes (UTC).
    pub fn tick(&self, now: DateTime<Utc>) {
        let mut e = self.engine();
        let changes = e.tick(now);
        self.send(changes);
    }

    /// Queues `changes` to deliver to every receiver (called with the engine locked).
    fn send(&self, changes: Vec<AlarmChange>) {
        for c in changes {
            tracing::info!(
                alarm = c.alarm.id,
                change = c.kind.as_str(),
                rule = c.alarm.rule,
                device = c.alarm.device,
                deliver = c.deliver,
                "alarm"
            );
            if c.deliver {
                for r in &self.receivers {
                    r.queue(&c);
                }
            }
        }
    }

    /// The alarms not ended, newest first, those `keep` says yes to, at most `limit`.
    pub fn active(&self, keep: impl Fn(&Alarm) -> bool, limit: usize) -> Vec<Alarm> {
        self.engine()
            .active()
            .filter(|a| keep(a))
            .take(limit)
            .cloned()
            .collect()
    }

    /// One alarm.
    pub fn get(&self, id: u64) -> Option<Alarm> {
        self.engine().get(id).cloned()
    }

    /// Acknowledges alarm `id`; see [`AlarmEngine::acknowledge`].
    ///
    /// # Errors
    /// As [`AlarmEngine::acknowledge`].
    pub fn acknowledge(&self, id: u64, action: Action) -> Result<Alarm, ActionError> {
        let mut e = self.engine();
        let change = e.acknowledge(id, action)?;
        let alarm = match &change {
            Some(c) => c.alarm.clone(),
            None => e.get(id).cloned().ok_or(ActionError::NoSuchAlarm(id))?,
        };
        self.send(change.into_iter().collect());
        Ok(alarm)
    }

    /// Shelves alarm `id` until `until`; see [`AlarmEngine::shelve`].
    ///
    /// # Errors
    /// As [`AlarmEngine::shelve`].
    pub fn shelve(
        &self,
        id: u64,
        action: Action,
        until: DateTime<Utc>,
    ) -> Result<Alarm, ActionError> {
        let mut e = self.engine();
        let change = e.shelve(id, action, until)?;
        let alarm = change.alarm.clone();
        self.send(vec![change]);
        Ok(alarm)
    }

    /// Unshelves alarm `id`; see [`AlarmEngine::unshelve`].
    ///
    /// # Errors
    /// As [`AlarmEngine::unshelve`].
    pub fn unshelve(&self, id: u64, at: DateTime<Utc>) -> Result<Alarm, ActionError> {
        let mut e = self.engine();
        let change = e.unshelve(id, at)?;
        self.send(change.into_iter().collect());
        e.get(id).cloned().ok_or(ActionError::NoSuchAlarm(id))
    }

    /// Every receiver's newest attempts, newest first.
    pub fn attempts(&self, limit: usize) -> Vec<Attempt> {
        let mut all: Vec<Attempt> = self.receivers.iter().flat_map(|r| r.attempts()).collect();
        all.sort_by_key(|a| std::cmp::Reverse(a.at));
        all.truncate(limit);
        all
    }

    /// The cutting tools `agent` serves now, by device (after each read of its assets):
    /// see [`AlarmEngine::tools`].
    pub fn tools(
        &self,
        agent: &str,
        by_device: &std::collections::HashMap<String, Vec<factorydash_core::tools::CuttingTool>>,
    ) {
        let mut e = self.engine();
        if e.rules().is_empty() {
            return;
        }
        let changes = e.tools(agent, by_device, Utc::now());
        self.send(changes);
    }

    /// Starts the tick and each receiver's delivery task (they run as long as the
    /// process). Each tick also gives the engine the agents' reachability from
    /// `agents` ([`AlarmEngine::agents`]: (key, name to show, unreachable since)); the
    /// first tick at which the store answers watches every device it knows for
    /// staleness ([`AlarmEngine::watch_device`]).
    pub fn spawn<F>(self: &Arc<Self>, store: Arc<dyn factorydash_store::Store>, agents: F)
    where
        F: Fn() -> Vec<(String, String, Option<DateTime<Utc>>)> + Send + 'static,
    {
        for r in &self.receivers {
            tokio::spawn(r.clone().run(store.clone()));
        }
        if !self.has_rules() {
            return;
        }
        let hub = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(TICK);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut watching = false;
            loop {
                every.tick().await;
                let now = Utc::now();
                if !watching {
                    if let Ok(devices) = store.devices().await {
                        let mut e = hub.engine();
                        for d in devices.iter().take(factorydash_core::alarms::MAX_WATCHED) {
                            e.watch_device(&d.agent, &d.name, now);
                        }
                        watching = true;
                    }
                }
                hub.tick(now);
                let list = agents();
                let mut e = hub.engine();
                let changes = e.agents(&list, now);
                hub.send(changes);
            }
        });
    }
}
