//! E-mail: each alarm change (or a digest of those of a few minutes) as one message over
//! SMTP (RFC 5321), with a plain-text and an HTML part (`multipart/alternative`, RFC
//! 2046 §5.1.4), on [`lettre`]. TLS is STARTTLS (RFC 3207, required: a server that does
//! not offer it is refused, never fallen back from) or TLS from the first byte (RFC 8314
//! "implicit TLS", port 465); plain SMTP only where the configuration says `tls = "none"`.
//! The server's certificate is checked against the system's roots and the configuration's
//! `ca-file`. Credentials come from a file or the environment, never the configuration.
//!
//! The outbox keeps each change as its JSON webhook body ([`super::webhook::change_json`]);
//! the message is made from it when sent, so a restart sends what it would have.
//! `Message-ID` is the delivery id (the outbox ids) and the time it was queued: sent again
//! after a restart, a message has the one it had.

use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use factorydash_core::alarms::{AlarmChange, Priority};
use factorydash_store::OutboxEntry;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::Value;

use super::delivery::ATTEMPT_TIMEOUT;

/// The longest subject, in characters.
pub const MAX_SUBJECT: usize = 200;

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain SMTP, then `STARTTLS` (RFC 3207), required; port 587 by default.
    StartTls,
    /// TLS from the first byte (RFC 8314 §3.3); port 465 by default.
    Tls,
    /// No TLS at all (a relay on a trusted network); port 25 by default.
    None,
}

impl TlsMode {
    /// The port a server of this mode listens on by convention.
    pub fn default_port(self) -> u16 {
        match self {
            TlsMode::StartTls => 587,
            TlsMode::Tls => 465,
            TlsMode::None => 25,
        }
    }
}

/// An e-mail receiver as the configuration gives it (its `Debug` hides the password).
#[derive(Clone)]
pub struct EmailSpec {
    /// The SMTP server's host name (checked against its certificate).
    pub server: String,
    /// Its port.
    pub port: u16,
    /// How the connection is secured.
    pub tls: TlsMode,
    /// PEM certificates trusted besides the system's roots (a plant's own CA).
    pub ca_pem: Option<Vec<u8>>,
    /// User name and password for `AUTH` (RFC 4954), if the server wants them.
    pub credentials: Option<(String, String)>,
    /// The sender.
    pub from: Mailbox,
    /// The recipients (at least one).
    pub to: Vec<Mailbox>,
    /// Zero: a message per change; otherwise the changes of this long in one message.
    pub digest: Duration,
    /// How long a message is retried before it is given up.
    pub retry_for: Duration,
    /// The dashboard's address as people reach it, for links.
    pub link_base: Option<String>,
    /// Changes of alarms below this priority are not sent.
    pub min_priority: Priority,
}

impl std::fmt::Debug for EmailSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailSpec")
            .field("server", &self.server)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("user", &self.credentials.as_ref().map(|c| &c.0))
            .field("to", &self.name())
            .finish_non_exhaustive()
    }
}

impl EmailSpec {
    /// The name the outbox and the delivery log know it by: `mailto:` and the
    /// recipients (RFC 6068).
    pub fn name(&self) -> String {
        let to: Vec<String> = self.to.iter().map(|m| m.email.to_string()).collect();
        format!("mailto:{}", to.join(","))
    }
}

/// An e-mail receiver: its specification and its SMTP client.
pub struct Email {
    spec: EmailSpec,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl Email {
    /// An e-mail receiver of `spec` (no connection is made until a change is sent).
    ///
    /// # Errors
    /// A `ca-file` that holds no PEM certificate; the TLS parameters cannot be built.
    pub fn new(spec: EmailSpec) -> anyhow::Result<Self> {
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&spec.server)
            .port(spec.port)
            .timeout(Some(ATTEMPT_TIMEOUT));
        if spec.tls != TlsMode::None {
            let mut params = TlsParameters::builder(spec.server.clone());
            if let Some(pem) = &spec.ca_pem {
                for cert in pem_certificates(pem)? {
                    params = params.add_root_certificate(cert);
                }
            }
            let params = params.build_rustls().context("the SMTP TLS parameters")?;
            builder = builder.tls(match spec.tls {
                TlsMode::StartTls => Tls::Required(params),
                _ => Tls::Wrapper(params),
            });
        }
        if let Some((user, password)) = &spec.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Email {
            transport: builder.build(),
            spec,
        })
    }

    /// How long a digest gathers (zero: a message per change).
    pub fn digest(&self) -> Duration {
        self.spec.digest
    }

    /// The outbox body of `change`: its JSON form.
    pub fn body(&self, change: &AlarmChange) -> String {
        let link = super::webhook::link(self.spec.link_base.as_deref(), change);
        serde_json::to_string(&super::webhook::change_json(change, link.as_deref()))
            .unwrap_or_default()
    }

    /// Sends `entries` as one message, once: the server's reply code and what went wrong
    /// unless it took the message (for good: a 5xx reply, or a message lettre cannot
    /// make).
    pub(super) async fn attempt(
        &self,
        delivery: &str,
        entries: &[OutboxEntry],
    ) -> super::delivery::Outcome {
        use super::delivery::Outcome;
        let message = match self.message(delivery, entries) {
            Ok(m) => m,
            Err(e) => {
                return Outcome {
                    status: None,
                    error: Some(format!("{e:#}")),
                    permanent: true,
                }
            }
        };
        match self.transport.send(message).await {
            Ok(reply) => Outcome {
                status: reply.code().to_string().parse().ok(),
                error: None,
                permanent: false,
            },
            // lettre's error names its reply once (its source repeats it).
            Err(e) => Outcome {
                status: e.status().and_then(|c| c.to_string().parse().ok()),
                permanent: e.is_permanent(),
                error: Some(e.to_string()),
            },
        }
    }

    /// The message of `entries`: a subject, a plain-text part and an HTML part.
    ///
    /// # Errors
    /// lettre refuses to build it (an address it cannot write).
    pub fn message(&self, delivery: &str, entries: &[OutboxEntry]) -> anyhow::Result<Message> {
        let changes: Vec<Change> = entries.iter().map(Change::read).collect();
        let queued = entries
            .first()
            .map_or(0, |e| e.queued_at.timestamp_millis());
        let mut builder = Message::builder()
            .from(self.spec.from.clone())
            .subject(subject(&changes))
            .message_id(Some(format!("<alarm-{delivery}.{queued}@factorydash>")));
        for to in &self.spec.to {
            builder = builder.to(to.clone());
        }
        let message = builder
            .multipart(MultiPart::alternative_plain_html(
                plain(&changes),
                html(&changes),
            ))
            .context("the alarm e-mail")?;
        Ok(message)
    }
}

/// Every certificate of a PEM bundle.
fn pem_certificates(pem: &[u8]) -> anyhow::Result<Vec<Certificate>> {
    let text = std::str::from_utf8(pem).context("the CA file is not PEM text")?;
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
        let Some(end) = rest[start..].find(END) else {
            break;
        };
        let block = &rest[start..start + end + END.len()];
        out.push(Certificate::from_pem(block.as_bytes()).context("a certificate of the CA file")?);
        rest = &rest[start + end + END.len()..];
    }
    anyhow::ensure!(!out.is_empty(), "the CA file holds no PEM certificate");
    Ok(out)
}

/// One change as read back from the outbox.
struct Change {
    id: u64,
    kind: String,
    at: Option<DateTime<Utc>>,
    priority: String,
    rule: String,
    device: String,
    agent: String,
    message: String,
    state: String,
    count: u64,
    link: Option<String>,
}

impl Change {
    /// `entry`'s change; an entry this version cannot read is shown as such, not lost.
    fn read(entry: &OutboxEntry) -> Change {
        let v: Value = serde_json::from_str(&entry.body).unwrap_or(Value::Null);
        let a = &v["alarm"];
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        Change {
            id: a["id"].as_u64().unwrap_or_default(),
            kind: v["change"].as_str().unwrap_or("unreadable").to_owned(),
            at: v["at"].as_str().and_then(|t| t.parse().ok()),
            priority: text(&a["priority"]),
            rule: text(&a["rule"]),
            device: text(&a["device"]),
            agent: text(&a["agent"]),
            message: text(&a["message"]),
            state: text(&a["state"]),
            count: a["count"].as_u64().unwrap_or(1),
            link: v["link"].as_str().map(str::to_owned),
        }
    }

    fn when(&self) -> String {
        self.at
            .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_default()
    }
}

/// `text` on one line, without control characters nor the invisible ones that reorder
/// or break text (bidirectional overrides, line and paragraph separators), at most `max`
/// characters.
fn one_line(text: &str, max: usize) -> String {
    let invisible = |c: char| {
        c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
    };
    let line: String = text
        .chars()
        .map(|c| if invisible(c) { ' ' } else { c })
        .take(max)
        .collect();
    line.trim().to_owned()
}

fn subject(changes: &[Change]) -> String {
    let text = match changes {
        // The device, unless the message starts with it (the default template's does).
        [c] if c.message.starts_with(&c.device) => format!(
            "[{}] {} {}: {}",
            c.priority.to_uppercase(),
            c.kind,
            c.rule,
            c.message
        ),
        [c] => format!(
            "[{}] {} {}: {}: {}",
            c.priority.to_uppercase(),
            c.kind,
            c.rule,
            c.device,
            c.message
        ),
        _ => {
            let top = changes
                .iter()
                .filter_map(|c| c.priority.parse::<Priority>().ok())
                .min()
                .map_or("", Priority::as_str);
            let raised = changes.iter().filter(|c| c.kind == "raised").count();
            format!(
                "[{}] {} alarm changes, {} raised",
                top.to_uppercase(),
                changes.len(),
                raised
            )
        }
    };
    one_line(&text, MAX_SUBJECT)
}

fn plain(changes: &[Change]) -> String {
    let mut out = String::new();
    for c in changes {
        out.push_str(&format!(
            "{} {} {} ({})\n  alarm #{}: {}\n  {} at {}, {}{}\n",
            c.priority.to_uppercase(),
            c.kind,
            one_line(&c.rule, 200),
            c.state,
            c.id,
            one_line(&c.message, 1_000),
            one_line(&c.device, 200),
            c.agent,
            c.when(),
            if c.count > 1 {
                format!(", raised {} times", c.count)
            } else {
                String::new()
            },
        ));
        if let Some(l) = &c.link {
            out.push_str(&format!("  {l}\n"));
        }
        out.push('\n');
    }
    out.push_str("-- \nfactorydash alarms\n");
    out
}

fn html(changes: &[Change]) -> String {
    maud::html! {
        (maud::DOCTYPE)
        html {
            body style="font-family: sans-serif" {
                table cellpadding="6" style="border-collapse: collapse" {
                    tr {
                        th align="left" { "Priority" } th align="left" { "Change" }
                        th align="left" { "Device" } th align="left" { "Alarm" }
                        th align="left" { "When" }
                    }
                    @for c in changes {
                        tr style="border-top: 1px solid #ccc" {
                            td { b { (c.priority.to_uppercase()) } }
                            td { (c.kind) " (" (c.state) ")" }
                            td {
                                @if let Some(l) = &c.link { a href=(l) { (c.device) } }
                                @else { (c.device) }
                            }
                            td {
                                (c.rule) ": " (c.message)
                                @if c.count > 1 { " (raised " (c.count) " times)" }
                            }
                            td { (c.when()) }
                        }
                    }
                }
                p style="color: #666" { "factorydash alarms" }
            }
        }
    }
    .into_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(digest: u64) -> Email {
        Email::new(EmailSpec {
            server: "mail.example".into(),
            port: 587,
            tls: TlsMode::StartTls,
            ca_pem: None,
            credentials: None,
            from: "factorydash <fd@plant.example>".parse().unwrap(),
            to: vec!["ops@plant.example".parse().unwrap()],
            digest: Duration::from_secs(digest),
            retry_for: Duration::from_secs(60),
            link_base: None,
            min_priority: Priority::Low,
        })
        .unwrap()
    }

    fn entry(id: i64, kind: &str, priority: &str, message: &str) -> OutboxEntry {
        let body = serde_json::json!({
            "change": kind, "at": "2026-12-07T10:00:00Z",
            "alarm": { "id": id, "rule": "Faults", "priority": priority, "device": "Mazak01",
                       "agent": "http://agent", "message": message, "state": "unacknowledged",
                       "count": 1 },
            "link": null,
        });
        OutboxEntry {
            id,
            receiver: "mailto:ops@plant.example".into(),
            body: body.to_string(),
            queued_at: Utc::now(),
        }
    }

    #[test]
    fn an_agents_text_adds_no_header_and_no_html() {
        let e = email(0);
        let evil = "Mazak01: spindle\r\nBcc: thief@evil.example\r\n\r\n<script>x</script>";
        let m = e.message("7", &[entry(7, "raised", "high", evil)]).unwrap();
        let text = String::from_utf8(m.formatted()).unwrap();
        let head = &text[..text.find("\r\n\r\n").unwrap()];
        assert!(!head.contains("\r\nBcc:"), "{head}");
        let page = html(&[Change::read(&entry(7, "raised", "high", evil))]);
        assert!(
            page.contains("&lt;script&gt;") && !page.contains("<script>"),
            "{page}"
        );
        let subject = text.lines().find(|l| l.starts_with("Subject:")).unwrap();
        assert!(
            subject.starts_with("Subject: [HIGH] raised Faults: Mazak01: spindle"),
            "{subject}"
        );
        assert!(text.contains("Message-ID: <alarm-7."), "{text}");
    }

    #[test]
    fn a_digest_is_named_by_its_highest_priority() {
        let e = email(300);
        let m = e
            .message(
                "1-3",
                &[
                    entry(1, "raised", "low", "a"),
                    entry(2, "raised", "urgent", "b"),
                    entry(3, "cleared", "high", "c"),
                ],
            )
            .unwrap();
        let text = String::from_utf8(m.formatted()).unwrap();
        assert!(
            text.contains("Subject: [URGENT] 3 alarm changes, 2 raised"),
            "{text}"
        );
        assert!(
            text.contains("alarm #1: a") && text.contains("alarm #3: c"),
            "{text}"
        );
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        assert!(pem_certificates(b"not a certificate").is_err());
    }

    /// A plain SMTP server on 127.0.0.1 that offers no STARTTLS and answers RCPT with
    /// `rcpt`: its port and the commands it heard.
    async fn plain_server(
        rcpt: &'static str,
    ) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let heard = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = heard.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let mut io = BufReader::new(stream);
                io.get_mut()
                    .write_all(b"220 plain ESMTP\r\n")
                    .await
                    .unwrap();
                let mut line = String::new();
                while io.read_line(&mut line).await.unwrap_or(0) > 0 {
                    let command = line.trim_end().to_ascii_uppercase();
                    log.lock().unwrap().push(command.clone());
                    let answer = if command.starts_with("EHLO") {
                        "250-plain\r\n250 8BITMIME\r\n"
                    } else if command.starts_with("RCPT") {
                        rcpt
                    } else if command == "QUIT" {
                        "221 bye\r\n"
                    } else {
                        "250 ok\r\n"
                    };
                    if io.get_mut().write_all(answer.as_bytes()).await.is_err() {
                        break;
                    }
                    line.clear();
                }
            }
        });
        (port, heard)
    }

    #[tokio::test]
    async fn a_server_without_starttls_gets_nothing_when_starttls_is_required() {
        let (port, heard) = plain_server("250 ok\r\n").await;
        let mut e = email(0);
        e = Email::new(EmailSpec {
            server: "127.0.0.1".into(),
            port,
            credentials: Some(("fd".into(), "secret".into())),
            ..e.spec
        })
        .unwrap();
        let outcome = e.attempt("1", &[entry(1, "raised", "high", "x")]).await;
        let error = outcome.error.expect("refused");
        assert!(error.to_lowercase().contains("starttls"), "{error}");
        assert!(!error.contains("secret"), "{error}");
        let heard = heard.lock().unwrap().clone();
        assert!(
            heard
                .iter()
                .all(|c| !c.starts_with("AUTH") && !c.starts_with("MAIL")),
            "{heard:?}"
        );
    }

    #[tokio::test]
    async fn a_5xx_reply_is_permanent_and_a_4xx_is_not() {
        for (rcpt, permanent, code) in [
            ("550 5.1.1 no such user\r\n", true, 550),
            ("451 4.3.0 later\r\n", false, 451),
        ] {
            let (port, _) = plain_server(rcpt).await;
            let e = Email::new(EmailSpec {
                server: "127.0.0.1".into(),
                port,
                tls: TlsMode::None,
                ..email(0).spec
            })
            .unwrap();
            let outcome = e.attempt("1", &[entry(1, "raised", "high", "x")]).await;
            assert!(outcome.error.is_some());
            assert_eq!((outcome.permanent, outcome.status), (permanent, Some(code)));
        }
    }

    #[test]
    fn debug_hides_the_password() {
        let mut spec = email(0).spec;
        spec.credentials = Some(("fd".into(), "hunter2-secret".into()));
        let shown = format!("{spec:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("fd"), "{shown}");
    }
}
