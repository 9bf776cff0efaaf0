//! Delivery of alarm changes to one receiver (a webhook or an e-mail address list), the
//! same way for each: every change to deliver is kept in the store's outbox (schema:
//! `factorydash-store`'s `outbox`) as soon as it comes in, then sent in order, one at a
//! time (or, for an e-mail digest, together), retried with backoff (1 s doubling to 60 s)
//! while the receiver does not take it, for at most the receiver's `retry-for`; dropped
//! from the outbox once taken or given up. A restart sends what an earlier run left, with
//! the delivery id it had; nothing is sent again once its receiver confirmed it. Every
//! attempt is logged (the newest [`MAX_ATTEMPTS_KEPT`], for admins at
//! `/api/alarms/deliveries`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use factorydash_core::alarms::{AlarmChange, Priority};
use factorydash_store::{OutboxEntry, Store};
use serde::Serialize;

use super::email::Email;
use super::webhook::Webhook;

/// Changes waiting in memory for the store per receiver at most; beyond, the oldest is
/// dropped (and logged).
pub const MAX_QUEUED: usize = 10_000;
/// Attempts kept in each receiver's log.
pub const MAX_ATTEMPTS_KEPT: usize = 500;
/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// The first wait after a failed attempt.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// How long one attempt may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// The most changes sent together (an e-mail digest).
pub const MAX_BATCH: usize = 100;

/// One attempt to deliver one change (or a digest of several).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    /// `webhook` or `email`.
    pub kind: &'static str,
    /// The receiver: a webhook's URL (without user, password or query), or `mailto:` and
    /// the recipients of an e-mail receiver.
    pub receiver: String,
    /// The change's delivery id (its outbox id); a digest's first and last, `12-15`.
    pub delivery: String,
    /// When the attempt was made (UTC).
    pub at: DateTime<Utc>,
    /// `delivered`, `failed` (to be retried), `gave-up` (refused for good, or retried for
    /// `retry-for`) or `dropped` (too large, or the queue was full).
    pub outcome: &'static str,
    /// The HTTP status or SMTP reply code, if the receiver answered.
    pub status: Option<u16>,
    /// What went wrong.
    pub error: Option<String>,
}

/// What one attempt came to.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The HTTP status or SMTP reply code, if the receiver answered.
    pub status: Option<u16>,
    /// What went wrong; `None`: the receiver took it.
    pub error: Option<String>,
    /// Trying again cannot help (an SMTP 5xx reply, a message that cannot be made): given
    /// up at once, so that what comes after is not held up behind it.
    pub permanent: bool,
}

/// A receiver's error text as the log keeps it: control characters made spaces, at
/// most 500 characters (a server's reply is its own, and can be long).
pub fn error_text(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(500)
        .collect()
}

/// What a receiver sends through.
pub enum Sink {
    /// HTTP POSTs.
    Webhook(Webhook),
    /// E-mail over SMTP.
    Email(Box<Email>),
}

impl Sink {
    fn kind(&self) -> &'static str {
        match self {
            Sink::Webhook(_) => "webhook",
            Sink::Email(_) => "email",
        }
    }

    /// The outbox body of `change`.
    fn body(&self, change: &AlarmChange) -> String {
        match self {
            Sink::Webhook(w) => w.body(change),
            Sink::Email(e) => e.body(change),
        }
    }

    /// How long the oldest change waits for others to join it (zero: none).
    fn digest(&self) -> Duration {
        match self {
            Sink::Webhook(_) => Duration::ZERO,
            Sink::Email(e) => e.digest(),
        }
    }

    /// Sends `entries` (one, unless a digest) once, within [`ATTEMPT_TIMEOUT`] (SMTP:
    /// three times it, for the whole conversation).
    async fn attempt(&self, delivery: &str, entries: &[OutboxEntry]) -> Outcome {
        match self {
            Sink::Webhook(w) => {
                let (status, error) = w.attempt(delivery, entries[0].body.as_bytes()).await;
                Outcome {
                    status,
                    error,
                    permanent: false,
                }
            }
            Sink::Email(e) => {
                // lettre times out the connection only: a server that accepts and then
                // says nothing must not hold the receiver for ever.
                let whole = ATTEMPT_TIMEOUT * 3;
                match tokio::time::timeout(whole, e.attempt(delivery, entries)).await {
                    Ok(outcome) => outcome,
                    Err(_) => Outcome {
                        status: None,
                        error: Some(format!("no answer within {} s", whole.as_secs())),
                        permanent: false,
                    },
                }
            }
        }
    }
}

/// Changes queued and not yet kept by the store, numbered in queue order.
#[derive(Default)]
struct Incoming {
    next: u64,
    queue: VecDeque<(u64, String, DateTime<Utc>)>,
}

/// One receiver: its sink, what came in and is not kept by the store yet, its log.
pub struct Receiver {
    sink: Sink,
    /// The name the outbox and the log know it by.
    name: String,
    retry_for: Duration,
    min_priority: Priority,
    /// Bodies queued, each with its number (in queue order) and when, not yet in the
    /// store's outbox.
    incoming: Mutex<Incoming>,
    log: Mutex<VecDeque<Attempt>>,
    wake: tokio::sync::Notify,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Receiver {
    /// A receiver named `name` (unique among receivers: its outbox entries are kept under
    /// it) sending through `sink`; a change is retried for `retry_for`; changes of alarms
    /// of a lower priority than `min_priority` are not sent.
    pub fn new(name: String, sink: Sink, retry_for: Duration, min_priority: Priority) -> Self {
        Receiver {
            sink,
            name,
            retry_for,
            min_priority,
            incoming: Mutex::new(Incoming::default()),
            log: Mutex::new(VecDeque::new()),
            wake: tokio::sync::Notify::new(),
        }
    }

    fn log(
        &self,
        delivery: String,
        outcome: &'static str,
        status: Option<u16>,
        error: Option<String>,
    ) {
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        if log.len() == MAX_ATTEMPTS_KEPT {
            log.pop_front();
        }
        log.push_back(Attempt {
            kind: self.sink.kind(),
            receiver: self.name.clone(),
            delivery,
            at: Utc::now(),
            outcome,
            status,
            error,
        });
    }

    /// The newest attempts, newest first.
    pub fn attempts(&self) -> Vec<Attempt> {
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        log.iter().rev().cloned().collect()
    }

    /// Queues `change` for delivery: kept in memory until the delivery task puts it in
    /// the store's outbox (at once, unless the store is down; then the oldest is dropped
    /// when [`MAX_QUEUED`] wait, and logged). A change of an alarm below the receiver's
    /// priority is not queued.
    pub fn queue(&self, change: &AlarmChange) {
        if change.alarm.priority > self.min_priority {
            return;
        }
        let body = self.sink.body(change);
        // An agent's names and codes are its own: a body the outbox would refuse is
        // dropped here (and logged), never left to block the changes behind it.
        if body.len() > factorydash_store::MAX_OUTBOX_BODY {
            self.log(
                String::new(),
                "dropped",
                None,
                Some(format!(
                    "the change of alarm {} is larger than {} bytes",
                    change.alarm.id,
                    factorydash_store::MAX_OUTBOX_BODY
                )),
            );
            return;
        }
        let dropped = {
            let mut q = self.incoming.lock().unwrap_or_else(|p| p.into_inner());
            let dropped = (q.queue.len() >= MAX_QUEUED)
                .then(|| q.queue.pop_front())
                .flatten();
            let n = q.next;
            q.next += 1;
            q.queue.push_back((n, body, Utc::now()));
            dropped
        };
        if dropped.is_some() {
            let error = format!("more than {MAX_QUEUED} changes waiting for the store");
            self.log(String::new(), "dropped", None, Some(error));
        }
        self.wake.notify_one();
    }

    /// Puts what came in into the store's outbox; false when the store refused (it
    /// stays in memory, to be tried again).
    async fn persist(&self, store: &dyn Store) -> bool {
        let (fresh, last): (Vec<OutboxEntry>, Option<u64>) = {
            let q = self.incoming.lock().unwrap_or_else(|p| p.into_inner());
            let taken: Vec<_> = q
                .queue
                .iter()
                .take(factorydash_store::MAX_OUTBOX_READ)
                .collect();
            let last = taken.last().map(|(n, ..)| *n);
            let fresh = taken
                .into_iter()
                .map(|(_, body, at)| OutboxEntry {
                    id: 0,
                    receiver: self.name.clone(),
                    body: body.clone(),
                    queued_at: *at,
                })
                .collect();
            (fresh, last)
        };
        let Some(last) = last else {
            return true;
        };
        match store.queue_outbox(&fresh).await {
            Ok(_) => {
                // By number: what `queue` dropped meanwhile (a full queue) is not popped
                // in place of what was kept.
                let mut q = self.incoming.lock().unwrap_or_else(|p| p.into_inner());
                while q.queue.front().is_some_and(|(n, ..)| *n <= last) {
                    q.queue.pop_front();
                }
                true
            }
            Err(e) => {
                tracing::warn!(receiver = self.name, error = %e, "cannot keep alarm changes in the store; retrying");
                false
            }
        }
    }

    /// Delivers the outbox, in order, as long as the process runs: what an earlier run
    /// left undelivered first, then each change as it comes (a digest once its oldest
    /// change has waited the digest's time, or [`MAX_BATCH`] wait); each confirmed or
    /// given-up change is dropped from the outbox.
    pub async fn run(self: Arc<Self>, store: Arc<dyn Store>) {
        let digest = self.sink.digest();
        let batch = if digest.is_zero() { 1 } else { MAX_BATCH };
        // Sent (taken or given up) but not yet dropped from the outbox (the store refused
        // the delete): never sent again by this process; dropped when the store lets it.
        let mut sent: std::collections::BTreeSet<i64> = std::collections::BTreeSet::new();
        loop {
            if !self.persist(&*store).await {
                tokio::time::sleep(MAX_BACKOFF / 12).await;
                continue;
            }
            if !self.confirm(&*store, &mut sent).await {
                tokio::time::sleep(MAX_BACKOFF / 12).await;
                continue;
            }
            let pending = match store.pending_outbox(&self.name, 100).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(receiver = self.name, error = %e, "cannot read the alarm outbox; retrying");
                    tokio::time::sleep(MAX_BACKOFF / 12).await;
                    continue;
                }
            };
            let Some(oldest) = pending.first() else {
                let idle = self
                    .incoming
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .queue
                    .is_empty();
                if idle {
                    self.wake.notified().await;
                }
                continue;
            };
            let waited = (Utc::now() - oldest.queued_at).to_std().unwrap_or_default();
            if pending.len() < batch && waited < digest {
                // A digest gathering: what comes in meanwhile is kept in the store (woken
                // by it) and joins it.
                tokio::select! {
                    () = tokio::time::sleep(digest - waited) => {}
                    () = self.wake.notified() => {}
                }
                continue;
            }
            for group in pending.chunks(batch) {
                self.deliver(&*store, group, digest).await;
                sent.extend(group.iter().map(|e| e.id));
                if !self.confirm(&*store, &mut sent).await {
                    break;
                }
            }
        }
    }

    /// Drops what was sent from the outbox; false while the store refuses.
    async fn confirm(&self, store: &dyn Store, sent: &mut std::collections::BTreeSet<i64>) -> bool {
        while let Some(&id) = sent.first() {
            if let Err(e) = store.confirm_outbox(id).await {
                // Kept: sent again after a restart, with the same delivery id.
                tracing::warn!(receiver = self.name, error = %e, "cannot drop a delivered alarm change; retrying");
                return false;
            }
            sent.remove(&id);
        }
        true
    }

    /// Attempts `entries` (not empty) until the receiver takes them, refuses them for
    /// good, or the oldest one's `retry-for` is up, counted from when it was queued (and,
    /// for a digest, had gathered: `digest` later). What comes in meanwhile is kept in
    /// the store between attempts.
    async fn deliver(&self, store: &dyn Store, entries: &[OutboxEntry], digest: Duration) {
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return;
        };
        let delivery = if first.id == last.id {
            first.id.to_string()
        } else {
            format!("{}-{}", first.id, last.id)
        };
        let queued_at = entries
            .iter()
            .map(|e| e.queued_at)
            .min()
            .unwrap_or(first.queued_at);
        let mut wait = FIRST_BACKOFF;
        let expired = |wait: Duration| {
            (Utc::now() - queued_at).to_std().unwrap_or_default() + wait > self.retry_for + digest
        };
        // Up before its first attempt (the receiver was down longer than `retry-for`):
        // given up without one, so that newer changes are not stuck behind it.
        if expired(Duration::ZERO) {
            let error = "older than retry-for before its first attempt".to_owned();
            self.log(delivery, "gave-up", None, Some(error));
            return;
        }
        loop {
            let outcome = self.sink.attempt(&delivery, entries).await;
            let delivered = outcome.error.is_none();
            let give_up = !delivered && (outcome.permanent || expired(wait));
            let shown = if delivered {
                "delivered"
            } else if give_up {
                "gave-up"
            } else {
                "failed"
            };
            let error = outcome.error.as_deref().map(error_text);
            self.log(delivery.clone(), shown, outcome.status, error);
            if delivered || give_up {
                return;
            }
            self.persist(store).await;
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(MAX_BACKOFF);
        }
    }
}
