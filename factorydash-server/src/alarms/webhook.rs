//! Webhook delivery: each alarm change to deliver is kept in the store's outbox, then
//! POSTed as JSON to each `[[alarm-webhook]]`, one at a time and in order, retried with
//! backoff (1 s doubling to 60 s) while the receiver does not answer 2xx, for at most the
//! webhook's `retry-for`; every attempt is logged (the newest [`MAX_ATTEMPTS_KEPT`], for admins at
//! `/api/alarms/deliveries`).
//!
//! # Signature
//! Each POST carries `X-Factorydash-Timestamp` (Unix seconds) and
//! `X-Factorydash-Signature: sha256=<hex>`, the HMAC-SHA256 (RFC 2104, FIPS 180-4) of
//! `<timestamp>.<body>` under the webhook's secret: the receiver recomputes it and refuses
//! a mismatch or an old timestamp (a replay). `X-Factorydash-Delivery` names the change
//! (its number in the store's outbox, increasing in queue order): the same for every
//! attempt and after a restart, so a receiver that confirmed one and sees it again (its
//! answer was lost) can drop it.
//!
//! # Formats
//! `json` (the default): `{"change", "at", "alarm": {…}, "link"}`. `slack`:
//! `{"text": "…"}`, the incoming-webhook payload Slack, Mattermost and Microsoft Teams
//! (incoming webhook connectors) all take.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use factorydash_core::alarms::AlarmChange;
use factorydash_store::{OutboxEntry, Store};
use serde::Serialize;
use serde_json::json;

/// Changes waiting in memory for the store per webhook at most; beyond, the oldest is
/// dropped (and logged).
pub const MAX_QUEUED: usize = 10_000;
/// Attempts kept in each webhook's log.
pub const MAX_ATTEMPTS_KEPT: usize = 500;
/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// The first wait after a failed attempt.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// How long one attempt may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// A webhook as the configuration gives it.
#[derive(Debug, Clone)]
pub struct WebhookSpec {
    /// Where to POST (`http://` or `https://`).
    pub url: reqwest::Url,
    /// The HMAC key.
    pub secret: Vec<u8>,
    /// `json` or `slack`.
    pub format: Format,
    /// How long a change is retried before it is given up.
    pub retry_for: Duration,
    /// The dashboard's address as people reach it, for links (`https://dash.plant`).
    pub link_base: Option<String>,
}

/// A webhook's payload format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The change as JSON.
    Json,
    /// `{"text"}` for chat tools.
    Slack,
}

/// One attempt to deliver one change.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    /// The webhook's URL (without user or password).
    pub webhook: String,
    /// The change's delivery id.
    pub delivery: String,
    /// When the attempt was made (UTC).
    pub at: DateTime<Utc>,
    /// `delivered`, `failed` (to be retried), `gave-up` or `dropped` (the queue was full).
    pub outcome: &'static str,
    /// The HTTP status, if the receiver answered.
    pub status: Option<u16>,
    /// What went wrong.
    pub error: Option<String>,
}

/// One webhook: what came in and is not kept by the store yet, its log, its client.
pub struct Webhook {
    spec: WebhookSpec,
    shown: String,
    client: reqwest::Client,
    /// Bodies queued and when, not yet in the store's outbox.
    incoming: Mutex<VecDeque<(String, DateTime<Utc>)>>,
    log: Mutex<VecDeque<Attempt>>,
    wake: tokio::sync::Notify,
}

impl Webhook {
    /// A webhook of `spec`.
    ///
    /// # Errors
    /// The HTTP client cannot be built (TLS roots).
    pub fn new(spec: WebhookSpec) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Webhook {
            shown: shown(&spec.url),
            spec,
            client,
            incoming: Mutex::new(VecDeque::new()),
            log: Mutex::new(VecDeque::new()),
            wake: tokio::sync::Notify::new(),
        })
    }

    fn log(&self, attempt: Attempt) {
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        if log.len() == MAX_ATTEMPTS_KEPT {
            log.pop_front();
        }
        log.push_back(attempt);
    }

    /// The newest attempts, newest first.
    pub fn attempts(&self) -> Vec<Attempt> {
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        log.iter().rev().cloned().collect()
    }

    /// Queues `change` for delivery: kept in memory until the delivery task puts it in
    /// the store's outbox (at once, unless the store is down; then the oldest is dropped
    /// when [`MAX_QUEUED`] wait, and logged).
    pub fn queue(&self, change: Arc<AlarmChange>) {
        let body = self.body(&change);
        // An agent's names and codes are its own: a body the outbox would refuse is
        // dropped here (and logged), never left to block the changes behind it.
        if body.len() > factorydash_store::MAX_OUTBOX_BODY {
            self.log(Attempt {
                webhook: self.shown.clone(),
                delivery: String::new(),
                at: Utc::now(),
                outcome: "dropped",
                status: None,
                error: Some(format!(
                    "the change of alarm {} is larger than {} bytes",
                    change.alarm.id,
                    factorydash_store::MAX_OUTBOX_BODY
                )),
            });
            return;
        }
        let dropped = {
            let mut q = self.incoming.lock().unwrap_or_else(|p| p.into_inner());
            let dropped = (q.len() >= MAX_QUEUED).then(|| q.pop_front()).flatten();
            q.push_back((body, Utc::now()));
            dropped
        };
        if dropped.is_some() {
            self.log(Attempt {
                webhook: self.shown.clone(),
                delivery: String::new(),
                at: Utc::now(),
                outcome: "dropped",
                status: None,
                error: Some(format!(
                    "more than {MAX_QUEUED} changes waiting for the store"
                )),
            });
        }
        self.wake.notify_one();
    }

    /// The body of `change` in this webhook's format.
    pub fn body(&self, change: &AlarmChange) -> String {
        let a = &change.alarm;
        let link = self.spec.link_base.as_ref().map(|base| {
            let mut q = form_urlencoded::Serializer::new(String::new());
            q.append_pair("device", &a.device)
                .append_pair("agent", &crate::redact::redacted(&a.agent));
            format!("{}/device?{}", base.trim_end_matches('/'), q.finish())
        });
        let value = match self.spec.format {
            Format::Json => json!({
                "change": change.kind.as_str(),
                "at": change.at,
                "alarm": {
                    "id": a.id, "rule": a.rule, "priority": a.priority,
                    "agent": crate::redact::redacted(&a.agent), "device": a.device,
                    "dataItemId": a.data_item_id, "nativeCode": a.native_code,
                    "message": a.message, "state": a.state, "raisedAt": a.raised_at,
                    "lastRaisedAt": a.last_raised_at, "clearedAt": a.cleared_at,
                    "count": a.count, "chattering": a.chattering, "inFlood": a.in_flood,
                    "acknowledged": a.acknowledged, "shelved": a.shelved,
                },
                "link": link,
            }),
            Format::Slack => {
                // Slack's control characters escaped: an agent's text cannot mention
                // `<!channel>` nor make a link.
                let escape = |t: &str| {
                    t.replace('&', "&amp;")
                        .replace('<', "&lt;")
                        .replace('>', "&gt;")
                };
                let mut text = format!(
                    "[{}] {} {}: {}",
                    a.priority.as_str().to_uppercase(),
                    change.kind.as_str(),
                    escape(&a.rule),
                    escape(&a.message)
                );
                if a.count > 1 {
                    text.push_str(&format!(" (×{})", a.count));
                }
                if let Some(l) = link {
                    text.push_str(&format!(" <{l}|open>"));
                }
                json!({ "text": text })
            }
        };
        serde_json::to_string(&value).unwrap_or_default()
    }

    /// `sha256=<hex>` of `<timestamp>.<body>` under the secret.
    pub fn signature(&self, timestamp: i64, body: &[u8]) -> String {
        signature(&self.spec.secret, timestamp, body)
    }

    /// Puts what came in into the store's outbox; false when the store refused (it
    /// stays in memory, to be tried again).
    async fn persist(&self, store: &dyn Store) -> bool {
        let fresh: Vec<OutboxEntry> = {
            let q = self.incoming.lock().unwrap_or_else(|p| p.into_inner());
            q.iter()
                .take(factorydash_store::MAX_OUTBOX_READ)
                .map(|(body, at)| OutboxEntry {
                    id: 0,
                    receiver: self.shown.clone(),
                    body: body.clone(),
                    queued_at: *at,
                })
                .collect()
        };
        if fresh.is_empty() {
            return true;
        }
        match store.queue_outbox(&fresh).await {
            Ok(_) => {
                let mut q = self.incoming.lock().unwrap_or_else(|p| p.into_inner());
                for _ in 0..fresh.len() {
                    q.pop_front();
                }
                true
            }
            Err(e) => {
                tracing::warn!(webhook = self.shown, error = %e, "cannot keep alarm changes in the store; retrying");
                false
            }
        }
    }

    /// Delivers the outbox, in order, as long as the process runs: what an earlier run
    /// left undelivered first, then each change as it comes; each confirmed (2xx) or
    /// given up change is dropped from the outbox.
    pub async fn run(self: Arc<Self>, store: Arc<dyn Store>) {
        loop {
            if !self.persist(&*store).await {
                tokio::time::sleep(MAX_BACKOFF / 12).await;
                continue;
            }
            let pending = match store.pending_outbox(&self.shown, 100).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(webhook = self.shown, error = %e, "cannot read the alarm outbox; retrying");
                    tokio::time::sleep(MAX_BACKOFF / 12).await;
                    continue;
                }
            };
            if pending.is_empty() {
                let idle = self
                    .incoming
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .is_empty();
                if idle {
                    self.wake.notified().await;
                }
                continue;
            }
            for entry in pending {
                self.deliver(&*store, &entry).await;
                if let Err(e) = store.confirm_outbox(entry.id).await {
                    // Delivered again after a restart, with the same delivery id.
                    tracing::warn!(webhook = self.shown, error = %e, "cannot drop a delivered alarm change");
                }
            }
        }
    }

    /// Attempts `entry` until the receiver confirms it or its `retry-for` is up (what
    /// comes in meanwhile is kept in the store between attempts).
    async fn deliver(&self, store: &dyn Store, entry: &OutboxEntry) {
        let delivery = entry.id.to_string();
        let mut wait = FIRST_BACKOFF;
        let expired = |wait: Duration| {
            (Utc::now() - entry.queued_at).to_std().unwrap_or_default() + wait > self.spec.retry_for
        };
        // Up before its first attempt (the receiver was down longer than `retry-for`):
        // given up without one, so that newer changes are not stuck behind it.
        if expired(Duration::ZERO) {
            self.log(Attempt {
                webhook: self.shown.clone(),
                delivery,
                at: Utc::now(),
                outcome: "gave-up",
                status: None,
                error: Some("older than retry-for before its first attempt".into()),
            });
            return;
        }
        loop {
            let (status, error) = self.attempt(&delivery, entry.body.as_bytes()).await;
            let delivered = status.is_some_and(|s| (200..300).contains(&s));
            let give_up = !delivered && expired(wait);
            self.log(Attempt {
                webhook: self.shown.clone(),
                delivery: delivery.clone(),
                at: Utc::now(),
                outcome: if delivered {
                    "delivered"
                } else if give_up {
                    "gave-up"
                } else {
                    "failed"
                },
                status,
                error,
            });
            if delivered || give_up {
                return;
            }
            self.persist(store).await;
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(MAX_BACKOFF);
        }
    }

    async fn attempt(&self, delivery: &str, body: &[u8]) -> (Option<u16>, Option<String>) {
        let timestamp = Utc::now().timestamp();
        let answer = self
            .client
            .post(self.spec.url.clone())
            .header("content-type", "application/json")
            .header("x-factorydash-timestamp", timestamp.to_string())
            .header("x-factorydash-signature", self.signature(timestamp, body))
            .header("x-factorydash-delivery", delivery)
            .body(body.to_vec())
            .send()
            .await;
        match answer {
            Ok(r) => {
                let status = r.status();
                let error = (!status.is_success()).then(|| format!("answered {status}"));
                (Some(status.as_u16()), error)
            }
            // Without the URL: its query or path may be the receiver's secret.
            Err(e) => (
                None,
                Some(crate::error_chain::error_chain(&e.without_url())),
            ),
        }
    }
}

/// `url` as the log and the outbox name it: without user, password or query.
pub fn shown(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// `sha256=<lowercase hex>` of the HMAC-SHA256 of `<timestamp>.<body>` under `secret`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let mut ctx = ring::hmac::Context::with_key(&key);
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    let tag = ctx.sign();
    let mut out = String::from("sha256=");
    for b in tag.as_ref() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_signature_is_rfc_4231_hmac_sha256() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?"; here the
        // data is "<timestamp>.<body>", so split it at its first '.'-free form: use a
        // timestamp-shaped prefix and check against an independent computation instead.
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"Jefe");
        let tag = ring::hmac::sign(&key, b"what do ya want for nothing?");
        let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let s = super::signature(b"Jefe", 1700000000, b"{}");
        let tag = ring::hmac::sign(&key, b"1700000000.{}");
        let want: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(s, format!("sha256={want}"));
    }
}
