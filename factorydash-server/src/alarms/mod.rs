//! Alarms in `serve`: the configuration's `[[alarm]]` rules run by one
//! [`AlarmEngine`] over every stored batch ([`AlarmHub::observe`], from
//! [`crate::state::App::publish`]) and a tick every 5 s; operators acknowledge and shelve
//! through `/api/alarms/{id}/…` (`src/web/alarms.rs`); each change to deliver goes to every
//! `[[alarm-webhook]]` ([`webhook`]) and `[[alarm-email]]` ([`email`]), in order, retried
//! while the receiver is down ([`delivery`]).
//!
//! Each change to deliver is kept in the store's outbox until its receiver confirms it:
//! a restart delivers what was not (with the delivery id it had), and nothing twice to a
//! receiver that confirmed it. The alarms not ended are kept in the store too (the
//! setting [`STATE_SETTING`], written at the tick after they change): a restart takes
//! them back with their acknowledgements and shelvings, so what is still there is not
//! raised and told again.

pub mod config;
pub mod delivery;
pub mod email;
pub mod webhook;

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use factorydash_core::alarms::{
    Action, ActionError, Alarm, AlarmChange, AlarmEngine, AlarmState, ChangeKind, Rule,
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

/// The store's key of the alarm rules saved on the alarm rules page (`[[alarm]]` tables as
/// TOML text, beside the configuration file's).
pub const RULES_SETTING: &str = "alarm-rules";

/// The store's key of the alarms not ended, as JSON: `{"nextId", "alarms": [...]}`
/// (newest first, as many as [`factorydash_store::MAX_SETTING_LEN`] holds), `nextId` the
/// number of the next new alarm.
pub const STATE_SETTING: &str = "alarm-state";

/// [`STATE_SETTING`]'s JSON.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Kept {
    next_id: u64,
    alarms: Vec<Alarm>,
}

/// The alarm engine and where its changes go.
pub struct AlarmHub {
    /// Changed since the alarms were last kept in the store.
    dirty: std::sync::atomic::AtomicBool,
    engine: Mutex<AlarmEngine>,
    receivers: Vec<Arc<Receiver>>,
    /// The configuration file's rules (the page's come after them).
    configured: Vec<Rule>,
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
            dirty: std::sync::atomic::AtomicBool::new(false),
            configured: engine.rules().to_vec(),
            engine: Mutex::new(engine),
            receivers,
        }
    }

    /// The configuration file's rules.
    pub fn configured(&self) -> &[Rule] {
        &self.configured
    }

    /// The rules in effect: the configuration file's, then the page's.
    pub fn rules(&self) -> Vec<Rule> {
        self.engine().rules().to_vec()
    }

    /// The page's rules of `text` (`[[alarm]]` tables, nothing else; empty text: none).
    ///
    /// # Errors
    /// Not TOML; a key other than `alarm`; [`config::rules`]' refusals; a name the
    /// configuration file's rules have; more than [`config::MAX_RULES`] in all.
    pub fn page_rules_of_text(&self, text: &str) -> anyhow::Result<Vec<Rule>> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| anyhow::anyhow!("{}", e.message().to_owned()))?;
        if let Some(other) = table.keys().find(|k| *k != "alarm") {
            anyhow::bail!("only [[alarm]] tables here, not {other:?} (receivers are in the configuration file)");
        }
        let Some(value) = table.get("alarm") else {
            return Ok(Vec::new());
        };
        let rules = config::rules(value)?;
        if let Some(r) = rules
            .iter()
            .find(|r| self.configured.iter().any(|c| c.name == r.name))
        {
            anyhow::bail!(
                "alarm rule {:?} is the configuration file's already",
                r.name
            );
        }
        if rules.len() + self.configured.len() > config::MAX_RULES {
            anyhow::bail!("more than {} alarm rules in all", config::MAX_RULES);
        }
        Ok(rules)
    }

    /// Puts the configuration file's rules and `page` in effect
    /// ([`AlarmEngine::replace_rules`]): the removed rules' alarms clear.
    pub fn set_page_rules(&self, page: Vec<Rule>) {
        let mut all = self.configured.clone();
        all.extend(page);
        let mut e = self.engine();
        let changes = e.replace_rules(all, Utc::now());
        self.send(changes);
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
        if !changes.is_empty() {
            self.dirty.store(true, std::sync::atomic::Ordering::Release);
        }
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

    /// `agent`'s device models' limits (at each probe), for sample rules with
    /// `model-limits` ([`AlarmEngine::set_limits`]).
    pub fn limits(
        &self,
        agent: &str,
        devices: &[(String, Vec<factorydash_mtconnect::ItemLimits>)],
    ) {
        // Kept even without rules: a rule added on the page later compares with them
        // (limits come with each probe only).
        let mut e = self.engine();
        let items = devices
            .iter()
            .flat_map(|(_, items)| items.iter().map(|(id, l)| (id.as_str(), l.as_slice())));
        e.set_limits(agent, items);
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

    /// The alarms not ended as [`STATE_SETTING`]'s JSON: newest first, as many as fit.
    pub fn snapshot_json(&self) -> String {
        let (next, parts): (u64, Vec<String>) = {
            let e = self.engine();
            let parts = e
                .snapshot()
                .into_iter()
                .filter_map(|a| serde_json::to_string(a).ok())
                .collect();
            (e.next_id(), parts)
        };
        let mut out = format!("{{\"nextId\":{next},\"alarms\":[");
        for p in parts {
            // 3: a comma and the closing bracket and brace.
            if out.len() + p.len() + 3 > factorydash_store::MAX_SETTING_LEN {
                break;
            }
            if !out.ends_with('[') {
                out.push(',');
            }
            out.push_str(&p);
        }
        out.push_str("]}");
        out
    }

    /// Keeps the alarms in the store if they changed since last time (retried at the
    /// next tick if the store refuses).
    async fn keep(&self, store: &dyn factorydash_store::Store) {
        use std::sync::atomic::Ordering;
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return;
        }
        let setting = factorydash_store::Setting {
            value: self.snapshot_json(),
            updated_at: Utc::now(),
            updated_by: "factorydash".into(),
        };
        if let Err(e) = store.put_setting(STATE_SETTING, Some(&setting)).await {
            self.dirty.store(true, Ordering::Release);
            tracing::warn!(error = %crate::error_chain::error_chain(&e), "cannot keep the alarms in the store; retrying");
        }
    }

    /// Takes back the alarms an earlier run kept ([`AlarmEngine::restore`]).
    pub async fn restore(&self, store: &dyn factorydash_store::Store) {
        match store.setting(STATE_SETTING).await {
            Ok(Some(saved)) => match serde_json::from_str::<Kept>(&saved.value) {
                Ok(kept) => {
                    let mut e = self.engine();
                    e.resume_ids(kept.next_id);
                    let n = e.restore(kept.alarms);
                    tracing::info!(alarms = n, "alarms of the last run taken back");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the alarms of the last run do not read; left aside")
                }
            },
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %crate::error_chain::error_chain(&e), "cannot read the alarms of the last run")
            }
        }
    }

    /// Starts the tick and each receiver's delivery task (they run as long as the
    /// process). Each tick also says whether it is planned time (the shift calendar:
    /// [`AlarmEngine::set_planned`]) and gives the engine the agents' reachability from
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
        // Always: rules may come from the page later.
        let hub = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(TICK);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // Whether the devices the store knows are watched for staleness (again when a
            // staleness rule comes from the page).
            let mut watching = true;
            loop {
                every.tick().await;
                let now = Utc::now();
                if !hub.has_rules() {
                    continue;
                }
                let planned = !crate::report::calendar()
                    .planned(now, now + chrono::Duration::minutes(1))
                    .is_empty();
                hub.engine().set_planned(planned);
                watching &= !hub.engine().wants_devices();
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
                hub.keep(&*store).await;
                let list = agents();
                let mut e = hub.engine();
                let changes = e.agents(&list, now);
                hub.send(changes);
            }
        });
    }
}

/// Puts the rules saved on the alarm rules page, if any, in effect (at start, once the
/// store is open), then takes back the alarms of the last run ([`AlarmHub::restore`]).
/// Rules that no longer read (a later build's, or a name the
/// configuration file took since) are logged and left aside.
pub async fn load_saved_rules(store: &dyn factorydash_store::Store, hub: &AlarmHub) {
    match store.setting(RULES_SETTING).await {
        Ok(Some(saved)) => match hub.page_rules_of_text(&saved.value) {
            Ok(rules) => {
                tracing::info!(rules = rules.len(), by = %saved.updated_by, at = %saved.updated_at, "the alarm rules saved on the alarm rules page are in effect");
                hub.set_page_rules(rules);
            }
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "the alarm rules saved on the alarm rules page do not read; only the configuration file's are in effect")
            }
        },
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(error = %crate::error_chain::error_chain(&e), "cannot read the saved alarm rules; only the configuration file's are in effect")
        }
    }
    hub.restore(store).await;
}
