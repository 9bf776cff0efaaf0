//! The configuration file's `[[alarm]]` rules and `[[alarm-webhook]]` receivers.
//!
//! ```toml
//! [[alarm]]
//! name = "Faults"
//! condition = "fault"            # or "warning", or "any" (either)
//! # condition-type = "System"    native-code = "2001"    text = "coolant"
//! priority = "high"              # urgent, high, medium (the default), low
//! devices = ["Mazak*"]           # name globs; and/or cells = ["Cell 1"]; neither: all
//! dedup = "5m"                   # raised again within 5 min of ending: the same alarm
//!
//! [[alarm]]
//! name = "Stopped too long"
//! state = "Execution"
//! states = ["STOPPED", "INTERRUPTED"]
//! for = "10m"
//! planned = true                 # only in planned time (the shift calendar)
//!
//! [[alarm]]
//! name = "Spindle overload"
//! sample = "Load"                # data-item = "Mazak01-S1load" for one item
//! above = 120.0                  # and/or below = …, or model-limits = true (the
//!                                # device model's UpperLimit/Maximum, LowerLimit/Minimum)
//! for = "30s"
//! message = "{device}: spindle load {value} % for {seconds} s"
//!
//! [[alarm]]
//! name = "No data"
//! stale = "15m"
//!
//! [[alarm]]
//! name = "Tools"
//! tool-life = true               # a cutting tool near its life limit (its assets)
//!
//! [[alarm]]
//! name = "Agent down"
//! unreachable = "5m"             # an agent that does not answer for 5 min
//!
//! [[alarm-webhook]]
//! url = "https://hooks.example.com/factorydash"
//! secret-env = "FACTORYDASH_WEBHOOK_SECRET"   # or secret-file = "/etc/…", or secret = "…"
//! format = "json"                # or "slack" (Slack, Mattermost, Teams)
//! retry-for = "1h"
//! link-base = "https://dash.plant.example"
//! min-priority = "high"          # changes of urgent and high alarms only
//!
//! [[alarm-email]]
//! server = "mail.plant.example"
//! tls = "starttls"               # (port 587) or "tls" (465) or "none" (25); port = …
//! username = "factorydash"
//! password-env = "FACTORYDASH_SMTP_PASSWORD"  # or password-file = "/etc/…"
//! from = "factorydash <factorydash@plant.example>"
//! to = ["maintenance@plant.example"]
//! digest = "5m"                  # one message with every change of 5 min; none: each
//! ```

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use factorydash_core::alarms::{Priority, Rule, Trigger, MAX_MESSAGE};
use factorydash_core::ConditionLevel;
use serde::Deserialize;

use super::email::{EmailSpec, TlsMode};
use super::webhook::{Format, WebhookSpec};

/// Rules at most.
pub const MAX_RULES: usize = 1_000;
/// Webhooks at most.
pub const MAX_WEBHOOKS: usize = 20;
/// E-mail receivers at most.
pub const MAX_EMAILS: usize = 20;
/// Recipients of one e-mail receiver at most.
pub const MAX_RECIPIENTS: usize = 50;
/// The largest CA file read.
pub const CA_FILE_LIMIT: usize = 1 << 20;
/// The longest duration a rule or webhook takes: 30 days.
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 86_400);
/// The largest secret file read.
pub const SECRET_FILE_LIMIT: usize = 4 << 10;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct AlarmToml {
    name: String,
    priority: Option<String>,
    #[serde(default)]
    devices: Vec<String>,
    #[serde(default)]
    cells: Vec<String>,
    dedup: Option<String>,
    #[serde(default)]
    message: String,
    condition: Option<String>,
    condition_type: Option<String>,
    native_code: Option<String>,
    text: Option<String>,
    state: Option<String>,
    #[serde(default)]
    states: Vec<String>,
    #[serde(rename = "for")]
    for_: Option<String>,
    sample: Option<String>,
    data_item: Option<String>,
    above: Option<f64>,
    below: Option<f64>,
    stale: Option<String>,
    tool_life: Option<bool>,
    unreachable: Option<String>,
    planned: Option<bool>,
    model_limits: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct WebhookToml {
    url: String,
    secret: Option<String>,
    secret_file: Option<String>,
    secret_env: Option<String>,
    format: Option<String>,
    retry_for: Option<String>,
    link_base: Option<String>,
    min_priority: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct EmailToml {
    server: String,
    port: Option<u16>,
    tls: Option<String>,
    ca_file: Option<String>,
    username: Option<String>,
    password_file: Option<String>,
    password_env: Option<String>,
    from: String,
    to: Vec<String>,
    digest: Option<String>,
    retry_for: Option<String>,
    link_base: Option<String>,
    min_priority: Option<String>,
}

fn duration(text: &str, what: &str) -> anyhow::Result<Duration> {
    let d = humantime::parse_duration(text)
        .with_context(|| format!("{what} {text:?} is not a duration such as \"10m\""))?;
    if d > MAX_DURATION {
        bail!("{what} {text:?} is longer than 30 days");
    }
    Ok(d)
}

fn seconds(text: &str, what: &str) -> anyhow::Result<u32> {
    Ok(duration(text, what)?.as_secs() as u32)
}

/// The `[[alarm]]` tables as rules.
///
/// # Errors
/// Not an array of tables; an unknown key; a name missing, empty, longer than 100 bytes
/// or used twice; not exactly one trigger (`condition`, `state`, `sample`, `stale`,
/// `tool-life`, `unreachable`; `devices` or `cells` with `unreachable`); a
/// bad priority, duration, level or threshold; more than [`MAX_RULES`]. Each message
/// names the rule.
pub fn rules(value: &toml::Value) -> anyhow::Result<Vec<Rule>> {
    let tables: Vec<AlarmToml> = value
        .clone()
        .try_into()
        .context("[[alarm]] must be tables of name, a trigger and options")?;
    if tables.len() > MAX_RULES {
        bail!("{} alarm rules; at most {MAX_RULES}", tables.len());
    }
    let mut out: Vec<Rule> = Vec::with_capacity(tables.len());
    for t in tables {
        let name = t.name.trim().to_owned();
        if name.is_empty() || name.len() > 100 {
            bail!("an alarm rule's name must be 1 to 100 bytes: {:?}", t.name);
        }
        if out.iter().any(|r| r.name == name) {
            bail!("alarm rule {name:?} is named twice");
        }
        let rule = rule(&name, t).with_context(|| format!("alarm rule {name:?}"))?;
        out.push(rule);
    }
    Ok(out)
}

fn rule(name: &str, t: AlarmToml) -> anyhow::Result<Rule> {
    let triggers = [
        t.condition.is_some(),
        t.state.is_some(),
        t.sample.is_some(),
        t.stale.is_some(),
        t.tool_life == Some(true),
        t.unreachable.is_some(),
    ];
    if triggers.iter().filter(|t| **t).count() != 1 {
        bail!("give exactly one of condition, state, sample, stale, tool-life, unreachable");
    }
    if t.unreachable.is_some() && !(t.devices.is_empty() && t.cells.is_empty()) {
        bail!("unreachable is about agents: it takes no devices or cells");
    }
    let for_ = t.for_.as_deref().map(|f| seconds(f, "for")).transpose()?;
    if t.model_limits.is_some() && t.sample.is_none() {
        bail!("model-limits = true is for sample rules");
    }
    let planned_only = t.planned.unwrap_or(false);
    if planned_only && t.state.is_none() && t.sample.is_none() {
        bail!("planned = true is for state and sample rules");
    }
    let trigger = if let Some(level) = &t.condition {
        let level = match level.to_ascii_lowercase().as_str() {
            "fault" => ConditionLevel::Fault,
            "warning" => ConditionLevel::Warning,
            // Either level: the engine's stand-in.
            "any" => ConditionLevel::Unavailable,
            _ => bail!("condition {level:?}: \"fault\", \"warning\" or \"any\""),
        };
        Trigger::Condition {
            level,
            kind: t.condition_type,
            native_code: t.native_code,
            text: t.text.filter(|x| !x.is_empty()),
        }
    } else if let Some(kind) = t.state {
        if t.states.is_empty() {
            bail!("state {kind:?} needs states = [\"STOPPED\", …]");
        }
        Trigger::Held {
            kind,
            states: t.states,
            seconds: for_.context("state needs for = \"10m\"")?,
        }
    } else if let Some(kind) = t.sample {
        let model_limits = t.model_limits.unwrap_or(false);
        if t.above.is_none() && t.below.is_none() && !model_limits {
            bail!("sample {kind:?} needs above or below, or model-limits = true");
        }
        if [t.above, t.below].iter().flatten().any(|v| !v.is_finite()) {
            bail!("above and below must be finite numbers");
        }
        Trigger::Threshold {
            kind,
            data_item_id: t.data_item,
            above: t.above,
            below: t.below,
            model_limits,
            seconds: for_.unwrap_or(0),
        }
    } else if let Some(stale) = t.stale.as_deref() {
        Trigger::Stale {
            seconds: seconds(stale, "stale")?.max(1),
        }
    } else if let Some(unreachable) = t.unreachable.as_deref() {
        Trigger::Unreachable {
            seconds: seconds(unreachable, "unreachable")?.max(1),
        }
    } else {
        Trigger::ToolLife
    };
    if t.message.len() > MAX_MESSAGE {
        bail!("the message is longer than {MAX_MESSAGE} bytes");
    }
    if t.devices.len() + t.cells.len() > 1_000 {
        bail!("more than 1,000 device patterns and cells");
    }
    Ok(Rule {
        name: name.to_owned(),
        trigger,
        priority: t
            .priority
            .as_deref()
            .unwrap_or("medium")
            .parse::<Priority>()
            .map_err(anyhow::Error::msg)?,
        devices: t.devices,
        cells: t.cells,
        dedup_seconds: t
            .dedup
            .as_deref()
            .map(|d| seconds(d, "dedup"))
            .transpose()?
            .unwrap_or(0),
        message: t.message,
        planned_only,
    })
}

/// The `[[alarm-webhook]]` tables; secrets read from their files (relative to
/// `config_dir`) or the environment.
///
/// # Errors
/// Not an array of tables; an unknown key; a URL that is not http(s); not exactly one of
/// `secret`, `secret-file`, `secret-env`, or an empty secret; a file unreadable or over
/// [`SECRET_FILE_LIMIT`]; a variable unset; a bad format or duration; more than
/// [`MAX_WEBHOOKS`].
pub fn webhooks(value: &toml::Value, config_dir: &Path) -> anyhow::Result<Vec<WebhookSpec>> {
    let tables: Vec<WebhookToml> = value
        .clone()
        .try_into()
        .context("[[alarm-webhook]] must be tables of url, a secret and options")?;
    if tables.len() > MAX_WEBHOOKS {
        bail!("{} alarm webhooks; at most {MAX_WEBHOOKS}", tables.len());
    }
    let mut out = Vec::new();
    for t in tables {
        let url: reqwest::Url = t
            .url
            .parse()
            .with_context(|| format!("webhook URL {:?}", crate::redact::redacted(&t.url)))?;
        let shown = crate::redact::redacted(&t.url).into_owned();
        if !matches!(url.scheme(), "http" | "https") {
            bail!("webhook {shown}: the URL must be http:// or https://");
        }
        let secret = match (t.secret, t.secret_file, t.secret_env) {
            (Some(s), None, None) => s,
            (None, file, env @ Some(_)) | (None, file @ Some(_), env) => {
                secret_from(file, env, config_dir).with_context(|| format!("webhook {shown}"))?
            }
            _ => bail!("webhook {shown}: give one of secret, secret-file, secret-env"),
        };
        if secret.is_empty() {
            bail!("webhook {shown}: the secret is empty");
        }
        let format = match t.format.as_deref().unwrap_or("json") {
            "json" => Format::Json,
            "slack" => Format::Slack,
            other => bail!("webhook {shown}: format {other:?} is not json or slack"),
        };
        let retry_for =
            retry_for(t.retry_for.as_deref()).with_context(|| format!("webhook {shown}"))?;
        if out
            .iter()
            .any(|w: &WebhookSpec| super::webhook::shown(&w.url) == super::webhook::shown(&url))
        {
            bail!("webhook {shown}: listed twice (the outbox knows a receiver by its URL without credentials or query)");
        }
        out.push(WebhookSpec {
            url,
            secret: secret.into_bytes(),
            format,
            retry_for,
            link_base: t.link_base,
            min_priority: min_priority(t.min_priority.as_deref())
                .with_context(|| format!("webhook {shown}"))?,
        });
    }
    Ok(out)
}

/// A secret from a file (relative to `config_dir`, at most [`SECRET_FILE_LIMIT`], trimmed)
/// or an environment variable: exactly one of them.
fn secret_from(
    file: Option<String>,
    env: Option<String>,
    config_dir: &Path,
) -> anyhow::Result<String> {
    match (file, env) {
        (Some(f), None) => {
            let path = config_dir.join(f);
            Ok(
                crate::config::read_bounded(&path, SECRET_FILE_LIMIT, "the secret file")?
                    .trim()
                    .to_owned(),
            )
        }
        (None, Some(v)) => {
            std::env::var(&v).with_context(|| format!("the variable {v} is not set"))
        }
        _ => bail!("give one of a file or a variable, not both"),
    }
}

/// `retry-for`: 1 h unless given; at least 1 s.
fn retry_for(text: Option<&str>) -> anyhow::Result<Duration> {
    let d = text
        .map(|d| duration(d, "retry-for"))
        .transpose()?
        .unwrap_or(Duration::from_secs(3600));
    if d < Duration::from_secs(1) {
        bail!("retry-for must be 1 s or more");
    }
    Ok(d)
}

fn min_priority(text: Option<&str>) -> anyhow::Result<Priority> {
    text.unwrap_or("low")
        .parse::<Priority>()
        .map_err(anyhow::Error::msg)
        .context("min-priority")
}

/// The `[[alarm-email]]` tables; passwords and CA files read from their files (relative to
/// `config_dir`) or the environment.
///
/// # Errors
/// Not an array of tables; an unknown key; an empty server; a bad `tls`; a CA file
/// unreadable or over [`CA_FILE_LIMIT`]; a password without a user or both a file and a
/// variable; an address lettre cannot parse; no recipient or more than
/// [`MAX_RECIPIENTS`]; a bad duration or priority; the same recipients twice; more than
/// [`MAX_EMAILS`].
pub fn emails(value: &toml::Value, config_dir: &Path) -> anyhow::Result<Vec<EmailSpec>> {
    let tables: Vec<EmailToml> = value
        .clone()
        .try_into()
        .context("[[alarm-email]] must be tables of server, from, to and options")?;
    if tables.len() > MAX_EMAILS {
        bail!(
            "{} alarm e-mail receivers; at most {MAX_EMAILS}",
            tables.len()
        );
    }
    let mut out: Vec<EmailSpec> = Vec::new();
    for t in tables {
        let server = t.server.trim().to_owned();
        let spec = email(t, config_dir).with_context(|| format!("alarm e-mail via {server:?}"))?;
        let same = |a: &EmailSpec, b: &EmailSpec| {
            let set = |e: &EmailSpec| {
                let mut to: Vec<String> =
                    e.to.iter()
                        .map(|m| m.email.to_string().to_lowercase())
                        .collect();
                to.sort();
                to
            };
            set(a) == set(b)
        };
        if out.iter().any(|e| same(e, &spec)) {
            bail!("alarm e-mail to {}: listed twice", spec.name());
        }
        out.push(spec);
    }
    Ok(out)
}

fn email(t: EmailToml, config_dir: &Path) -> anyhow::Result<EmailSpec> {
    let server = t.server.trim().to_owned();
    let host_like = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    if server.is_empty() || server.len() > 253 || !server.chars().all(host_like) {
        bail!("server must be a host name or an IPv4 address (no scheme, no port: port = …)");
    }
    if t.port == Some(0) {
        bail!("port 0 is no port");
    }
    let tls = match t.tls.as_deref().unwrap_or("starttls") {
        "starttls" => TlsMode::StartTls,
        "tls" => TlsMode::Tls,
        "none" => TlsMode::None,
        other => bail!("tls {other:?} is not \"starttls\", \"tls\" or \"none\""),
    };
    let ca_pem = t
        .ca_file
        .map(|f| {
            let path = config_dir.join(f);
            crate::config::read_bounded(&path, CA_FILE_LIMIT, "the CA file").map(String::into_bytes)
        })
        .transpose()?;
    let credentials = match (t.username, t.password_file, t.password_env) {
        (None, None, None) => None,
        (Some(_), None, None) => bail!("username needs password-file or password-env"),
        (Some(user), file, env) => {
            let password = secret_from(file, env, config_dir).context("the password")?;
            if user.is_empty() || password.is_empty() {
                bail!("the username and the password must not be empty");
            }
            Some((user, password))
        }
        (None, ..) => bail!("a password needs a username"),
    };
    if tls == TlsMode::None && credentials.is_some() {
        bail!("tls = \"none\" would send the password in clear: use starttls or tls");
    }
    if tls == TlsMode::None && ca_pem.is_some() {
        bail!("ca-file is for TLS, and tls = \"none\"");
    }
    let from = t
        .from
        .parse()
        .with_context(|| format!("from {:?} is not an address", t.from))?;
    if t.to.is_empty() || t.to.len() > MAX_RECIPIENTS {
        bail!("to must list 1 to {MAX_RECIPIENTS} addresses");
    }
    let to =
        t.to.iter()
            .map(|a| {
                a.parse()
                    .with_context(|| format!("to {a:?} is not an address"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
    let spec = EmailSpec {
        port: t.port.unwrap_or(tls.default_port()),
        server,
        tls,
        ca_pem,
        credentials,
        from,
        to,
        digest: t
            .digest
            .as_deref()
            .map(|d| duration(d, "digest"))
            .transpose()?
            .unwrap_or_default(),
        retry_for: retry_for(t.retry_for.as_deref())?,
        link_base: t.link_base,
        min_priority: min_priority(t.min_priority.as_deref())?,
    };
    if spec.digest >= spec.retry_for {
        bail!("digest must be shorter than retry-for (a digest waits its time before it is sent)");
    }
    if spec.name().len() > 1_000 {
        bail!("the recipients are longer than 1,000 bytes together");
    }
    Ok(spec)
}

/// The receivers of `webhooks` and `emails`, each under its outbox name.
///
/// # Errors
/// A webhook's HTTP client or an e-mail receiver's TLS parameters cannot be built.
pub fn receivers(
    webhooks: &[WebhookSpec],
    emails: &[EmailSpec],
) -> anyhow::Result<Vec<std::sync::Arc<super::Receiver>>> {
    use super::{Email, Receiver, Sink, Webhook};
    let mut out = Vec::new();
    for w in webhooks {
        let name = super::webhook::shown(&w.url);
        let sink = Sink::Webhook(Webhook::new(w.clone()).context("an alarm webhook")?);
        out.push(Receiver::new(name, sink, w.retry_for, w.min_priority).into());
    }
    for e in emails {
        let sink = Sink::Email(Box::new(
            Email::new(e.clone()).context("an alarm e-mail receiver")?,
        ));
        out.push(Receiver::new(e.name(), sink, e.retry_for, e.min_priority).into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<Vec<Rule>> {
        let t: toml::Table = text.parse().unwrap();
        rules(&t["alarm"])
    }

    #[test]
    fn rules_of_every_trigger() {
        let r = parse(
            r#"
            [[alarm]]
            name = "Faults"
            condition = "fault"
            priority = "high"
            dedup = "5m"
            [[alarm]]
            name = "Stopped"
            state = "Execution"
            states = ["STOPPED"]
            for = "10m"
            [[alarm]]
            name = "Load"
            sample = "Load"
            above = 120
            [[alarm]]
            name = "Quiet"
            stale = "15m"
            [[alarm]]
            name = "Tools"
            tool-life = true
            [[alarm]]
            name = "Down"
            unreachable = "5m"
            "#,
        )
        .unwrap();
        assert_eq!(r.len(), 6);
        assert_eq!(r[4].trigger, Trigger::ToolLife);
        assert_eq!(r[5].trigger, Trigger::Unreachable { seconds: 300 });
        assert_eq!((r[0].priority, r[0].dedup_seconds), (Priority::High, 300));
        assert!(matches!(r[1].trigger, Trigger::Held { seconds: 600, .. }));
        assert_eq!(r[2].priority, Priority::Medium);
        assert!(matches!(r[3].trigger, Trigger::Stale { seconds: 900 }));
    }

    #[test]
    fn bad_rules_are_named() {
        for (text, says) in [
            ("name = \"A\"", "exactly one"),
            (
                "name = \"A\"\ncondition = \"fault\"\nstale = \"1m\"",
                "exactly one",
            ),
            ("name = \"A\"\ncondition = \"bad\"", "or \"any\""),
            (
                "name = \"A\"\nstate = \"Execution\"\nfor = \"1m\"",
                "needs states",
            ),
            ("name = \"A\"\nsample = \"Load\"", "above or below"),
            (
                "name = \"A\"\nstale = \"1m\"\nmodel-limits = true",
                "model-limits",
            ),
            ("name = \"A\"\nstale = \"40d\"", "30 days"),
            ("name = \"A\"\ntool-life = false", "exactly one"),
            (
                "name = \"A\"\nunreachable = \"1m\"\ndevices = [\"M*\"]",
                "no devices",
            ),
            (
                "name = \"A\"\nstale = \"1m\"\npriority = \"max\"",
                "not one of",
            ),
            ("name = \"A\"\nstale = \"1m\"\nwhat = 1", "unknown field"),
        ] {
            let e = parse(&format!("[[alarm]]\n{text}")).unwrap_err();
            let chain = format!("{e:#}");
            assert!(chain.contains(says), "{text}: {chain}");
        }
        let e = parse(
            "[[alarm]]\nname = \"A\"\nstale = \"1m\"\n[[alarm]]\nname = \"A\"\nstale = \"1m\"",
        )
        .unwrap_err();
        assert!(e.to_string().contains("named twice"));
    }

    #[test]
    fn webhooks_need_one_secret() {
        let t: toml::Table = r#"
            [[alarm-webhook]]
            url = "http://127.0.0.1:9/hook"
            secret = "s3cret"
            format = "slack"
            "#
        .parse()
        .unwrap();
        let w = webhooks(&t["alarm-webhook"], Path::new(".")).unwrap();
        assert_eq!(
            (w[0].format, w[0].retry_for),
            (Format::Slack, Duration::from_secs(3600))
        );
        let t: toml::Table = "[[alarm-webhook]]\nurl = \"ftp://x/\"\nsecret = \"s\""
            .parse()
            .unwrap();
        assert!(webhooks(&t["alarm-webhook"], Path::new(".")).is_err());
        let t: toml::Table = "[[alarm-webhook]]\nurl = \"http://x/\"".parse().unwrap();
        let e = webhooks(&t["alarm-webhook"], Path::new(".")).unwrap_err();
        assert!(e.to_string().contains("one of secret"));
    }

    fn emails_of(text: &str) -> anyhow::Result<Vec<EmailSpec>> {
        let t: toml::Table = text.parse().unwrap();
        emails(&t["alarm-email"], Path::new("."))
    }

    #[test]
    fn email_receivers_are_read_and_bad_ones_named() {
        // PATH is set wherever the tests run: a variable read as the password.
        let e = emails_of(
            r#"
            [[alarm-email]]
            server = "mail.plant.example"
            username = "fd"
            password-env = "PATH"
            from = "factorydash <fd@plant.example>"
            to = ["a@plant.example", "Lead <b@plant.example>"]
            digest = "5m"
            min-priority = "high"
            "#,
        )
        .unwrap();
        assert_eq!((e[0].port, e[0].tls), (587, TlsMode::StartTls));
        assert_eq!(e[0].digest, Duration::from_secs(300));
        assert_eq!(e[0].min_priority, Priority::High);
        assert_eq!(e[0].name(), "mailto:a@plant.example,b@plant.example");
        assert_eq!(
            e[0].credentials.as_ref().map(|c| c.1.clone()),
            std::env::var("PATH").ok()
        );
        let e = emails_of("[[alarm-email]]\nserver = \"smtp://m:25\"\nfrom = \"f@x.example\"\nto = [\"t@x.example\"]")
            .unwrap_err();
        assert!(format!("{e:#}").contains("no scheme"), "{e:#}");
        let twice = "[[alarm-email]]\nserver = \"m\"\nfrom = \"f@x.example\"\nto = [\"a@x.example\", \"b@x.example\"]\n";
        let e = emails_of(&format!(
            "{twice}{}",
            twice.replace("a@x", "B@X").replace("\"b@x", "\"a@x")
        ))
        .unwrap_err();
        assert!(format!("{e:#}").contains("listed twice"), "{e:#}");
        let base = "server = \"m\"\nfrom = \"f@x.example\"\nto = [\"t@x.example\"]\n";
        for (extra, says) in [
            ("tls = \"ssl\"", "is not \"starttls\""),
            ("password-env = \"PATH\"", "needs a username"),
            ("username = \"u\"\npassword = \"inline\"", "unknown field"),
            (
                "username = \"u\"\npassword-env = \"FACTORYDASH_NO_SUCH_VARIABLE\"",
                "not set",
            ),
            ("digest = \"40d\"", "30 days"),
            ("min-priority = \"top\"", "min-priority"),
            ("port = 0", "port 0"),
            ("username = \"u\"", "needs password-file"),
            (
                "tls = \"none\"\nusername = \"u\"\npassword-env = \"PATH\"",
                "in clear",
            ),
            ("digest = \"2h\"", "shorter than retry-for"),
            ("retry-for = \"0s\"", "1 s or more"),
        ] {
            let e = emails_of(&format!("[[alarm-email]]\n{base}{extra}")).unwrap_err();
            let chain = format!("{e:#}");
            assert!(chain.contains(says), "{extra}: {chain}");
        }
        let e = emails_of(
            "[[alarm-email]]\nserver = \"m\"\nfrom = \"not an address\"\nto = [\"t@x.example\"]",
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("is not an address"), "{e:#}");
        let e = emails_of("[[alarm-email]]\nserver = \"m\"\nfrom = \"f@x.example\"\nto = []")
            .unwrap_err();
        assert!(format!("{e:#}").contains("1 to 50"), "{e:#}");
        assert_eq!(
            emails_of(&format!("[[alarm-email]]\n{base}tls = \"tls\"")).unwrap()[0].port,
            465
        );
    }
}
