//! The alarms' API (the alarm rules' alarms; `/api/alarms` itself lists Condition
//! episodes, [`super::api`]): `GET /api/alarms/active` (the alarms not ended, of the
//! devices the caller sees), `POST /api/alarms/{id}/acknowledge`, `/shelve` and `/unshelve` (the operator
//! role over the alarm's device; each written to the audit log), and `GET
//! /api/alarms/deliveries` (admins: every receiver's newest attempts).

use std::net::IpAddr;
use std::sync::Arc;

use chrono::{Duration, Utc};
use factorydash_core::accounts::Role;
use factorydash_core::alarms::{Action, ActionError, Alarm, MAX_SHELVE_HOURS};
use serde::Deserialize;
use serde_json::json;
use warp::reply::{self, Reply, Response};

use super::accounts::{entry, require_admin};
use super::errors::ApiError;
use crate::accounts::{Auth, Principal};
use crate::state::App;

/// Alarms listed at most.
pub const MAX_LISTED: usize = 500;
/// The longest comment or reason kept, in bytes.
pub const MAX_COMMENT: usize = 500;

/// An alarm as the API gives it (the agent's URL without its password).
fn alarm_json(a: &Alarm) -> serde_json::Value {
    let mut v = serde_json::to_value(a).unwrap_or_default();
    v["agent"] = json!(crate::redact::redacted(&a.agent));
    v
}

/// `GET /api/alarms/active`: `{"alarms": [...]}`, newest first, at most [`MAX_LISTED`], of the
/// devices the caller sees; each with `canAct`, whether the caller may acknowledge and
/// shelve it (the page shows its buttons only then).
pub async fn list(
    app: Arc<App>,
    auth: Arc<Auth>,
    principal: Option<Principal>,
) -> Result<Response, ApiError> {
    let scope = crate::auth::scope_of(principal.as_ref(), &auth.records);
    let alarms = app
        .alarms
        .active(|a| scope.sees(&a.agent, &a.device), MAX_LISTED);
    let list: Vec<serde_json::Value> = alarms
        .iter()
        .map(|a| {
            let mut v = alarm_json(a);
            v["canAct"] = json!(
                scope.is_admin() || scope.role_for(&a.agent, &a.device) >= Some(Role::Operator)
            );
            v
        })
        .collect();
    Ok(reply::json(&json!({ "alarms": list })).into_response())
}

/// What acknowledging and shelving take.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActionInput {
    /// A comment (acknowledge) or the reason (shelve).
    #[serde(default)]
    comment: String,
    /// How long to shelve, in minutes (1 to 24 h).
    minutes: Option<i64>,
}

/// The alarm `id` if `p` is an operator over its device: 404 when it does not exist or
/// `p` does not see its device, 403 when `p` only views it.
fn operated(app: &App, auth: &Auth, p: &Principal, id: u64) -> Result<Alarm, ApiError> {
    let scope = crate::auth::scope_of(Some(p), &auth.records);
    let a = app
        .alarms
        .get(id)
        .filter(|a| scope.sees(&a.agent, &a.device))
        .ok_or_else(|| ApiError::not_found(format!("no alarm {id}")))?;
    if !scope.is_admin() && scope.role_for(&a.agent, &a.device) < Some(Role::Operator) {
        return Err(ApiError::forbidden(
            "acknowledging or shelving an alarm needs the operator role over its device",
        ));
    }
    Ok(a)
}

fn refused(e: ActionError) -> ApiError {
    match e {
        ActionError::NoSuchAlarm(_) => ApiError::not_found(e.to_string()),
        ActionError::Ended(_) => ApiError::conflict(e.to_string()),
        ActionError::ShelveTime(_) => ApiError::bad_request(e.to_string()),
    }
}

/// `POST /api/alarms/{id}/{acknowledge|shelve|unshelve}` with `{"comment"?, "minutes"?}`
/// (`minutes`, 1 to 1,440, for shelve): the alarm after it. 400 for a bad body, 403
/// without the operator role over the device, 404 for an alarm not found or out of scope,
/// 409 for an ended alarm.
pub async fn act(
    id: u64,
    what: String,
    app: Arc<App>,
    auth: Arc<Auth>,
    principal: Option<Principal>,
    peer: Option<IpAddr>,
    input: ActionInput,
) -> Result<Response, ApiError> {
    let p = principal.ok_or_else(|| ApiError::forbidden("sign in first"))?;
    let comment = input.comment.trim().to_owned();
    if comment.len() > MAX_COMMENT || comment.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "the comment must be at most {MAX_COMMENT} bytes, without control characters"
        )));
    }
    let a = operated(&app, &auth, &p, id)?;
    let now = Utc::now();
    let action = Action {
        by: p.actor.clone(),
        at: now,
        comment: comment.clone(),
    };
    let (after, detail) = match what.as_str() {
        "acknowledge" => (
            app.alarms.acknowledge(id, action).map_err(refused)?,
            format!("acknowledged alarm {id} ({}): {comment}", a.rule),
        ),
        "shelve" => {
            let minutes = input
                .minutes
                .filter(|m| (1..=MAX_SHELVE_HOURS * 60).contains(m))
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "minutes: how long to shelve, 1 to {}",
                        MAX_SHELVE_HOURS * 60
                    ))
                })?;
            if comment.is_empty() {
                return Err(ApiError::bad_request("shelving needs a reason (comment)"));
            }
            let until = now + Duration::minutes(minutes);
            (
                app.alarms.shelve(id, action, until).map_err(refused)?,
                format!(
                    "shelved alarm {id} ({}) for {minutes} min: {comment}",
                    a.rule
                ),
            )
        }
        "unshelve" => (
            app.alarms.unshelve(id, now).map_err(refused)?,
            format!("unshelved alarm {id} ({})", a.rule),
        ),
        _ => return Err(ApiError::not_found("acknowledge, shelve or unshelve")),
    };
    // What changed nothing (a second acknowledgement, an unshelve of an alarm not
    // shelved) is not written as done.
    if after == a {
        return Ok(reply::json(&alarm_json(&after)).into_response());
    }
    auth.audit(entry(
        &p,
        peer,
        &format!("alarm-{what}"),
        &format!("{} at {}", a.device, crate::redact::redacted(&a.agent)),
        detail,
    ))
    .await;
    Ok(reply::json(&alarm_json(&after)).into_response())
}

/// `GET /api/alarms/deliveries` (admins): `{"attempts": [...]}`, every receiver's newest
/// attempts, newest first.
pub async fn deliveries(app: Arc<App>, principal: Option<Principal>) -> Result<Response, ApiError> {
    require_admin(principal.as_ref())?;
    let attempts = app.alarms.attempts(500);
    Ok(reply::json(&json!({ "attempts": attempts })).into_response())
}
