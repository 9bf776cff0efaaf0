//! The alarm rules page (`/admin/alarms`, admins only, a form that works without
//! JavaScript): the configuration file's rules (read only) and the page's, as
//! `[[alarm]]` TOML text saved in the store ([`crate::alarms::RULES_SETTING`]) and in
//! effect at once beside the configuration file's. Each change is checked as the
//! configuration file is ([`crate::alarms::config::rules`]) and written to the audit log.
//! Receivers (webhooks, e-mail) hold secrets and stay in the configuration file.

use std::net::IpAddr;
use std::sync::Arc;

use chrono::Utc;
use factorydash_core::alarms::{Rule, Trigger};
use factorydash_core::ConditionLevel;
use factorydash_store::Setting;
use warp::http::{HeaderMap, StatusCode};
use warp::reply::Response;

use super::accounts::{check_form, entry, field, form_token, html, require_admin, see_other, Form};
use super::errors::ApiError;
use crate::accounts::pages::{self, Notice};
use crate::accounts::{Auth, Principal};
use crate::alarms::RULES_SETTING;
use crate::state::App;

/// `GET /admin/alarms`: the alarm rules page.
pub async fn page(
    app: Arc<App>,
    auth: Arc<Auth>,
    headers: HeaderMap,
    principal: Option<Principal>,
    q: super::params::DoneQuery,
) -> Result<Response, ApiError> {
    require_admin(principal.as_ref())?;
    let notice = match q.done.as_deref() {
        Some("rules-saved") => Notice::Done("Alarm rules saved: in effect now."),
        _ => Notice::None,
    };
    let saved = app.store.setting(RULES_SETTING).await?;
    let text = saved.as_ref().map_or(String::new(), |s| s.value.clone());
    let source = saved.map(|s| {
        format!(
            "saved by {} at {} UTC",
            s.updated_by,
            s.updated_at.format("%Y-%m-%d %H:%M")
        )
    });
    answer(
        &app,
        &auth,
        &headers,
        principal.as_ref(),
        StatusCode::OK,
        &text,
        source.as_deref(),
        notice,
    )
}

/// One line saying what raises a rule's alarms, for whom, how urgent.
pub fn describe(r: &Rule) -> String {
    let what = match &r.trigger {
        Trigger::Condition {
            level,
            kind,
            native_code,
            text,
        } => {
            let level = match level {
                ConditionLevel::Unavailable => "Fault or Warning",
                l => l.as_str(),
            };
            let mut t = format!("a Condition at {level}");
            if let Some(k) = kind {
                t.push_str(&format!(" of type {k}"));
            }
            if let Some(c) = native_code {
                t.push_str(&format!(", native code {c}"));
            }
            if let Some(x) = text {
                t.push_str(&format!(", text containing {x:?}"));
            }
            t
        }
        Trigger::Held {
            kind,
            states,
            seconds,
        } => format!("{kind} in {} for {seconds} s", states.join(", ")),
        Trigger::Threshold {
            kind,
            data_item_id,
            above,
            below,
            model_limits,
            seconds,
        } => {
            let mut t = data_item_id.clone().unwrap_or_else(|| kind.clone());
            if *model_limits {
                t.push_str(" beyond the device model's limits");
            }
            if let Some(a) = above {
                t.push_str(&format!(" above {a}"));
            }
            if let Some(b) = below {
                t.push_str(&format!(" below {b}"));
            }
            format!("{t} for {seconds} s")
        }
        Trigger::Stale { seconds } => format!("no data from a device for {seconds} s"),
        Trigger::ToolLife => "a cutting tool near its life limit".to_owned(),
        Trigger::Unreachable { seconds } => format!("an agent unreachable for {seconds} s"),
    };
    let mut scope: Vec<String> = r.devices.clone();
    scope.extend(r.cells.iter().map(|c| format!("cell {c}")));
    let whom = if scope.is_empty() {
        "every device".to_owned()
    } else {
        scope.join(", ")
    };
    let planned = if r.planned_only {
        ", in planned time only"
    } else {
        ""
    };
    format!("{what}{planned} ({whom}; {})", r.priority.as_str())
}

#[allow(clippy::too_many_arguments)]
fn answer(
    app: &App,
    auth: &Auth,
    headers: &HeaderMap,
    principal: Option<&Principal>,
    status: StatusCode,
    text: &str,
    source: Option<&str>,
    notice: Notice<'_>,
) -> Result<Response, ApiError> {
    let p = require_admin(principal)?;
    let rules = |list: &[Rule]| -> Vec<(String, String)> {
        list.iter().map(|r| (r.name.clone(), describe(r))).collect()
    };
    let configured = rules(app.alarms.configured());
    let all = app.alarms.rules();
    let page_rules = rules(&all[configured.len().min(all.len())..]);
    let (csrf, cookie) = form_token(auth, headers);
    let body = pages::alarm_rules(&pages::AlarmRulesPage {
        who: &p.shown,
        configured: &configured,
        page_rules: &page_rules,
        text,
        source,
        csrf: &csrf,
        notice,
    });
    Ok(html(status, body, cookie))
}

/// `POST /admin/alarms`: the form (`csrf`, `rules`); back to the page, or the page again
/// with what is wrong and the text sent.
pub async fn form(
    app: Arc<App>,
    auth: Arc<Auth>,
    headers: HeaderMap,
    principal: Option<Principal>,
    peer: Option<IpAddr>,
    form: Form,
) -> Result<Response, ApiError> {
    let p = require_admin(principal.as_ref())?;
    check_form(&headers, &form)?;
    // Without the field (a form of another page, a cut request): nothing is cleared.
    if !form.contains_key("rules") {
        return Err(ApiError::bad_request("the form has no rules field"));
    }
    let text = field(&form, "rules").replace("\r\n", "\n");
    if text.len() > factorydash_store::MAX_SETTING_LEN {
        let message = format!(
            "the rules are longer than {} bytes",
            factorydash_store::MAX_SETTING_LEN
        );
        let mut end = factorydash_store::MAX_SETTING_LEN;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let shown = &text[..end];
        return answer(
            &app,
            &auth,
            &headers,
            Some(p),
            StatusCode::BAD_REQUEST,
            shown,
            None,
            Notice::Error(&message),
        );
    }
    let rules = match app.alarms.page_rules_of_text(&text) {
        Ok(r) => r,
        Err(e) => {
            let message = format!("{e:#}");
            return answer(
                &app,
                &auth,
                &headers,
                Some(p),
                StatusCode::BAD_REQUEST,
                &text,
                None,
                Notice::Error(&message),
            );
        }
    };
    let setting = (!text.trim().is_empty()).then(|| Setting {
        value: text,
        updated_at: Utc::now(),
        updated_by: p.actor.clone(),
    });
    app.store
        .put_setting(RULES_SETTING, setting.as_ref())
        .await?;
    let count = rules.len();
    app.alarms.set_page_rules(rules);
    auth.audit(entry(
        p,
        peer,
        "alarm-rules-changed",
        "the alarm rules",
        format!("rules on the page: {count}"),
    ))
    .await;
    Ok(see_other("/admin/alarms?done=rules-saved"))
}
