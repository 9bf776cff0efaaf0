//! Operators' reasons for stops ([`StopReason`]): the form of one stop
//! (`/stops/reason`, without JavaScript) and `POST /api/stop-reasons`. Giving a reason
//! needs the operator role over the device (an admin, of any group, has it everywhere;
//! an open dashboard is everyone's); the reason is one of the configuration's `stop-reasons`
//! ([`report::stop_reasons`]); the stop must be one the stop list shows (its Execution
//! data item and start, to the microsecond). Each reason given is kept by the store,
//! replacing the one before, and written to the audit log.

use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use factorydash_core::accounts::Role;
use factorydash_core::reasons::StopReason;
use factorydash_core::summary::{StopRecord, CAUSE_GRACE};
use factorydash_core::DeviceInfo;
use maud::{html, DOCTYPE};
use serde::Deserialize;
use serde_json::json;
use warp::http::{HeaderMap, StatusCode};
use warp::reply::{self, Reply, Response};

use super::accounts::{check_form, entry, field, form_token, html, see_other, Form};
use super::errors::ApiError;
use crate::accounts::{Auth, Principal};
use crate::report;
use crate::state::App;

/// A reason as the API and the form give it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReasonInput {
    agent: String,
    device: String,
    /// The Execution data item's id.
    item: String,
    /// When the stop began: RFC 3339, as `/api/stops` gives it.
    began: String,
    reason: String,
    comment: Option<String>,
}

/// A stop's start as the forms and links carry it: RFC 3339, UTC, microseconds.
pub(super) fn began_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The device `device` at `agent` over which `p` is an operator; 404 when `p` does not
/// see it (as for any device out of scope), 403 when `p` only views it.
async fn operated_device(
    app: &App,
    auth: &Auth,
    p: &Principal,
    agent: &str,
    device: &str,
) -> Result<DeviceInfo, ApiError> {
    let scope = crate::auth::scope_of(Some(p), &auth.records);
    let d = super::api::resolve_device(app, &scope, device, Some(agent)).await?;
    // Administration is not scoped: an admin of any group is an operator everywhere.
    if !scope.is_admin() && scope.role_for(&d.agent, &d.name) < Some(Role::Operator) {
        return Err(ApiError::forbidden(
            "giving a stop a reason needs the operator role over the device",
        ));
    }
    Ok(d)
}

/// The stop of `d` that `item` began at `began` (to the microsecond), from the same fold
/// as the stop list, over a second before it to [`CAUSE_GRACE`] and a second after it
/// (so that its cause is settled as the list's), in turn with the reports.
async fn find_stop(
    app: &App,
    d: &DeviceInfo,
    item: &str,
    began: DateTime<Utc>,
) -> Result<StopRecord, ApiError> {
    let _turn = super::report::turn().await?;
    let second = chrono::Duration::seconds(1);
    let list = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        factorydash_store::stops(&*app.store, d, began - second, began + CAUSE_GRACE + second),
    )
    .await
    .map_err(|_| ApiError::unavailable("finding the stop took too long; try again"))??;
    list.stops
        .into_iter()
        .find(|s| s.item == item && s.began.timestamp_micros() == began.timestamp_micros())
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no stop of {} ({item}) began at {}",
                d.name,
                began_text(began)
            ))
        })
}

fn parse_began(text: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            ApiError::bad_request("began must be an RFC 3339 time, as the stop list gives it")
        })
}

/// Checks and keeps `input` as `p`'s reason; the reason kept.
async fn save(
    app: &App,
    auth: &Auth,
    p: &Principal,
    peer: Option<IpAddr>,
    input: ReasonInput,
) -> Result<StopReason, ApiError> {
    let d = operated_device(app, auth, p, &input.agent, &input.device).await?;
    let began = parse_began(&input.began)?;
    let choices = report::stop_reasons();
    if !choices.contains(&input.reason) {
        return Err(ApiError::bad_request(format!(
            "the reason must be one of: {}",
            choices.join(", ")
        )));
    }
    let mut reason = StopReason::new(&d.agent, &d.name, &input.item, began);
    reason.reason = input.reason;
    reason.comment = input
        .comment
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty());
    reason.given_by = p.actor.clone();
    // Checked before the stop is looked for: a bad field costs no fold.
    reason
        .check()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let stop = find_stop(app, &d, &input.item, began).await?;
    let micros = stop.began.timestamp_micros();
    reason.began = DateTime::from_timestamp_micros(micros).unwrap_or(stop.began);
    app.store.put_stop_reason(&reason).await?;
    auth.audit(entry(
        p,
        peer,
        "stop-reason",
        &format!("{} at {}", d.name, d.agent),
        format!(
            "the stop of {} begun {}: {}",
            stop.item,
            began_text(reason.began),
            reason.reason
        ),
    ))
    .await;
    Ok(reason)
}

/// A reason as JSON (camelCase, times RFC 3339 UTC).
pub(super) fn reason_json(r: &StopReason) -> serde_json::Value {
    json!({
        "reason": r.reason, "comment": r.comment,
        "givenAt": r.given_at, "givenBy": r.given_by,
    })
}

/// `POST /api/stop-reasons` `{"agent", "device", "item", "began", "reason", "comment"?}`:
/// gives the stop of `device` that Execution data item `item` began at `began` (as
/// `/api/stops` lists it) a reason, one of the configured `stop-reasons`, replacing the
/// one given before. 400 for a reason not listed, 403 without the operator role over the
/// device, 404 for a device out of scope or a stop not found.
pub async fn put(
    app: Arc<App>,
    auth: Arc<Auth>,
    principal: Option<Principal>,
    peer: Option<IpAddr>,
    body: ReasonInput,
) -> Result<Response, ApiError> {
    let p = principal.ok_or_else(|| ApiError::forbidden("sign in first"))?;
    let r = save(&app, &auth, &p, peer, body).await?;
    Ok(reply::json(&json!({
        "agent": crate::redact::redacted(&r.agent), "device": r.device, "item": r.item,
        "began": began_text(r.began), "reason": reason_json(&r),
    }))
    .into_response())
}

/// What `/stops/reason` takes: the stop (`agent`, `device`, `item`, `began`) and the stop
/// list to go back to (`from`, `to`).
#[derive(Debug, Deserialize)]
pub struct ReasonQuery {
    agent: String,
    device: String,
    item: String,
    began: String,
    from: Option<String>,
    to: Option<String>,
}

/// The stop list a form goes back to.
fn back(agent: &str, device: &str, from: &str, to: &str, done: bool) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("device", device).append_pair("agent", agent);
    if !from.is_empty() && !to.is_empty() {
        q.append_pair("from", from).append_pair("to", to);
    }
    if done {
        q.append_pair("done", "reason-saved");
    }
    format!("/stops?{}", q.finish())
}

/// `GET /stops/reason?agent=&device=&item=&began=`: the form of one stop.
pub async fn page(
    app: Arc<App>,
    auth: Arc<Auth>,
    headers: HeaderMap,
    principal: Option<Principal>,
    q: ReasonQuery,
) -> Result<Response, ApiError> {
    let p = principal.ok_or_else(|| ApiError::forbidden("sign in first"))?;
    let fields = Fields {
        agent: &q.agent,
        device: &q.device,
        item: &q.item,
        began: &q.began,
        from: q.from.as_deref().unwrap_or(""),
        to: q.to.as_deref().unwrap_or(""),
        reason: None,
        comment: None,
    };
    answer(&app, &auth, &headers, &p, fields, StatusCode::OK, None).await
}

/// The form's fields, as given.
struct Fields<'f> {
    agent: &'f str,
    device: &'f str,
    item: &'f str,
    began: &'f str,
    from: &'f str,
    to: &'f str,
    reason: Option<&'f str>,
    comment: Option<&'f str>,
}

async fn answer(
    app: &App,
    auth: &Auth,
    headers: &HeaderMap,
    p: &Principal,
    f: Fields<'_>,
    status: StatusCode,
    error: Option<&str>,
) -> Result<Response, ApiError> {
    let d = operated_device(app, auth, p, f.agent, f.device).await?;
    let began = parse_began(f.began)?;
    let stop = find_stop(app, &d, f.item, began).await?;
    let given = app
        .store
        .stop_reasons(
            &d.agent,
            &d.name,
            stop.began,
            stop.began + chrono::Duration::microseconds(1),
        )
        .await?
        .into_iter()
        .find(|r| r.item == stop.item);
    let chosen = f
        .reason
        .or(given.as_ref().map(|g| g.reason.as_str()))
        .unwrap_or("");
    let comment = f
        .comment
        .or(given.as_ref().and_then(|g| g.comment.as_deref()))
        .unwrap_or("");
    let tz: chrono_tz::Tz = report::calendar().time_zone();
    let local = |t: DateTime<Utc>| t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string();
    let agent = crate::redact::redacted(&d.agent);
    let back_to = back(&agent, &d.name, f.from, f.to, false);
    let (csrf, cookie) = form_token(auth, headers);
    let body = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "A stop of " (d.name) " · factorydash" }
                script src=(crate::assets::url("theme.js")) {}
                link rel="stylesheet" href=(crate::assets::url("app.css"));
                link rel="stylesheet" href=(crate::assets::url("report.css"));
            }
            body .report {
                header .no-print {
                    h1 { a href="/" { "factorydash" } " › " a href="/report" { "Reports" } " › " a href=(back_to) { "Stops" } " › Reason" }
                }
                main {
                    h2 { "Why did " (d.name) " stop?" }
                    p {
                        "Began " (local(stop.began)) " (" (tz.name()) ")"
                        @if let Some(end) = stop.ended { ", ended " (local(end)) } @else { ", under way" }
                        ". Cause from the data: " strong { (stop.cause) } " (" (stop.item) ": " (stop.state) ")."
                    }
                    @if let Some(g) = &given {
                        p .muted { "Given as “" (g.reason) "” by " (g.given_by) " at " (local(g.given_at)) "." }
                    }
                    @if let Some(e) = error {
                        p .notice.failed role="alert" { (e) }
                    }
                    form .reason-form method="post" action="/stops/reason" {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="agent" value=(agent);
                        input type="hidden" name="device" value=(d.name);
                        input type="hidden" name="item" value=(stop.item);
                        input type="hidden" name="began" value=(began_text(stop.began));
                        input type="hidden" name="from" value=(f.from);
                        input type="hidden" name="to" value=(f.to);
                        fieldset {
                            legend { "Reason" }
                            @for (i, r) in report::stop_reasons().iter().enumerate() {
                                label .choice {
                                    input type="radio" name="reason" value=(r) required[i == 0] checked[r == chosen];
                                    " " (r)
                                }
                            }
                        }
                        label for="comment" { "Comment (optional, one line)" }
                        input #comment type="text" name="comment" maxlength=(factorydash_core::reasons::MAX_COMMENT_LEN) value=(comment);
                        p { button type="submit" { "Save the reason" } " " a href=(back_to) { "Cancel" } }
                    }
                }
            }
        }
    };
    Ok(html(status, body.into_string(), cookie))
}

/// `POST /stops/reason`: the form (`csrf`, `agent`, `device`, `item`, `began`, `reason`,
/// `comment`, `from`, `to`); back to the stop list, or the form again with what is wrong.
pub async fn form(
    app: Arc<App>,
    auth: Arc<Auth>,
    headers: HeaderMap,
    principal: Option<Principal>,
    peer: Option<IpAddr>,
    form: Form,
) -> Result<Response, ApiError> {
    let p = principal.ok_or_else(|| ApiError::forbidden("sign in first"))?;
    check_form(&headers, &form)?;
    let input = ReasonInput {
        agent: field(&form, "agent").to_owned(),
        device: field(&form, "device").to_owned(),
        item: field(&form, "item").to_owned(),
        began: field(&form, "began").to_owned(),
        reason: field(&form, "reason").to_owned(),
        comment: Some(field(&form, "comment").to_owned()),
    };
    match save(&app, &auth, &p, peer, input).await {
        Ok(r) => Ok(see_other(&back(
            &crate::redact::redacted(&r.agent),
            &r.device,
            field(&form, "from"),
            field(&form, "to"),
            true,
        ))),
        // The form again, unless the stop itself is what is wrong.
        Err(e) if e.status() == StatusCode::BAD_REQUEST => {
            let text = e.message().to_owned();
            let fields = Fields {
                agent: field(&form, "agent"),
                device: field(&form, "device"),
                item: field(&form, "item"),
                began: field(&form, "began"),
                from: field(&form, "from"),
                to: field(&form, "to"),
                reason: Some(field(&form, "reason")),
                comment: Some(field(&form, "comment")),
            };
            answer(&app, &auth, &headers, &p, fields, e.status(), Some(&text)).await
        }
        Err(e) => Err(e),
    }
}
