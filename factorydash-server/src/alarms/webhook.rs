//! Webhooks: each alarm change POSTed as JSON (or a chat tool's `{"text"}`), signed; the
//! outbox, order, retries and log are [`super::delivery`]'s.
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

use std::time::Duration;

use chrono::Utc;
use factorydash_core::alarms::{AlarmChange, Priority};
use serde_json::json;

use super::delivery::ATTEMPT_TIMEOUT;

/// A webhook as the configuration gives it (its `Debug` hides the secret).
#[derive(Clone)]
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
    /// Changes of alarms below this priority are not sent.
    pub min_priority: Priority,
}

impl std::fmt::Debug for WebhookSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSpec")
            .field("url", &shown(&self.url))
            .field("format", &self.format)
            .field("retry_for", &self.retry_for)
            .finish_non_exhaustive()
    }
}

/// A webhook's payload format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The change as JSON.
    Json,
    /// `{"text"}` for chat tools.
    Slack,
}

/// One webhook: where and how to POST.
pub struct Webhook {
    spec: WebhookSpec,
    client: reqwest::Client,
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
        Ok(Webhook { spec, client })
    }

    /// The body of `change` in this webhook's format.
    pub fn body(&self, change: &AlarmChange) -> String {
        let a = &change.alarm;
        let link = link(self.spec.link_base.as_deref(), change);
        let value = match self.spec.format {
            Format::Json => change_json(change, link.as_deref()),
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

    /// POSTs `body` once, signed: the status, and what went wrong unless it was 2xx.
    pub(super) async fn attempt(
        &self,
        delivery: &str,
        body: &[u8],
    ) -> (Option<u16>, Option<String>) {
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

/// The link to the device page of `change`'s alarm under `base` (the dashboard's address
/// as people reach it), if there is one.
pub fn link(base: Option<&str>, change: &AlarmChange) -> Option<String> {
    let a = &change.alarm;
    base.map(|base| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("device", &a.device)
            .append_pair("agent", &crate::redact::redacted(&a.agent));
        format!("{}/device?{}", base.trim_end_matches('/'), q.finish())
    })
}

/// `change` as the JSON webhook body and e-mail outbox entry carry it:
/// `{"change", "at", "alarm": {…}, "link"}` (times RFC 3339 UTC; the agent's URL without
/// credentials).
pub fn change_json(change: &AlarmChange, link: Option<&str>) -> serde_json::Value {
    let a = &change.alarm;
    json!({
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
    })
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
