//! Device records ([`DeviceRecord`]): the machines page (`/admin/devices`, forms that
//! work without JavaScript) and `/api/device-records`, for admins only (a record names
//! and describes devices of every scope). A change is checked, stored, written to the
//! audit log and shown at once ([`crate::records::RecordBoard`]).

use std::net::IpAddr;
use std::sync::Arc;

use chrono::Utc;
use factorydash_core::layout::Placement;
use factorydash_core::records::DeviceRecord;
use serde::Deserialize;
use serde_json::json;
use warp::http::{HeaderMap, StatusCode};
use warp::reply::{self, Reply, Response};

use super::accounts::{check_form, entry, field, form_token, html, require_admin, see_other, Form};
use super::errors::ApiError;
use crate::accounts::pages::{self, DeviceEntry, Notice};
use crate::accounts::{Auth, Principal};
use crate::state::App;

/// A record as the API and the forms give it: empty text is "none".
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordInput {
    agent: String,
    device: String,
    display_name: Option<String>,
    cell: Option<String>,
    description: Option<String>,
    ideal_cycle_time: Option<f64>,
}

fn some_text(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// Checks and keeps `input` as `p`'s change: the device must be known, the cell one of
/// the layout's; a record that says nothing is removed.
async fn save(
    app: &App,
    auth: &Auth,
    p: &Principal,
    peer: Option<IpAddr>,
    input: RecordInput,
) -> Result<(), ApiError> {
    let devices = app.devices().await?;
    if !devices
        .iter()
        .any(|d| d.agent == input.agent && d.name == input.device)
    {
        return Err(ApiError::not_found(format!(
            "no device {} at {} is known",
            input.device, input.agent
        )));
    }
    let mut record = DeviceRecord::new(&input.agent, &input.device);
    record.display_name = some_text(input.display_name);
    record.cell = some_text(input.cell);
    record.description = input
        .description
        .map(|d| d.replace("\r\n", "\n").trim().to_owned())
        .filter(|d| !d.is_empty());
    record.ideal_cycle_time = input.ideal_cycle_time;
    record.updated_at = Utc::now();
    record.updated_by = p.actor.clone();
    record
        .check()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    if let Some(cell) = &record.cell {
        if app.layout().cell_named(cell).is_none() {
            return Err(ApiError::bad_request(
                "the cell must be one of the configuration's [[cell]] tables",
            ));
        }
    }
    let before = app.records.get(&record.agent, &record.device);
    if record.is_empty() {
        app.store
            .remove_device_record(&record.agent, &record.device)
            .await?;
    } else {
        app.store.put_device_record(&record).await?;
    }
    app.records.load(&*app.store).await?;
    let changed: Vec<&str> = [
        (
            "display name",
            before.as_ref().and_then(|b| b.display_name.as_ref()) != record.display_name.as_ref(),
        ),
        (
            "cell",
            before.as_ref().and_then(|b| b.cell.as_ref()) != record.cell.as_ref(),
        ),
        (
            "description",
            before.as_ref().and_then(|b| b.description.as_ref()) != record.description.as_ref(),
        ),
        (
            "ideal cycle time",
            before.as_ref().and_then(|b| b.ideal_cycle_time) != record.ideal_cycle_time,
        ),
    ]
    .into_iter()
    .filter_map(|(name, differs)| differs.then_some(name))
    .collect();
    auth.audit(entry(
        p,
        peer,
        "device-changed",
        &format!("{} at {}", record.device, record.agent),
        changed.join(", "),
    ))
    .await;
    Ok(())
}

/// `GET /admin/devices`: the machines page.
pub async fn page(
    app: Arc<App>,
    auth: Arc<Auth>,
    headers: HeaderMap,
    principal: Option<Principal>,
    q: super::params::DoneQuery,
) -> Result<Response, ApiError> {
    let notice = match q.done.as_deref() {
        Some("device-saved") => Notice::Done("Machine saved."),
        _ => Notice::None,
    };
    answer(
        &app,
        &auth,
        &headers,
        principal.as_ref(),
        StatusCode::OK,
        notice,
    )
    .await
}

async fn answer(
    app: &App,
    auth: &Auth,
    headers: &HeaderMap,
    principal: Option<&Principal>,
    status: StatusCode,
    notice: Notice<'_>,
) -> Result<Response, ApiError> {
    let p = require_admin(principal)?;
    let devices = app.devices().await?;
    let records = app.records.all();
    // The cell each device's patterns alone give it: the configuration's layout.
    let layout = app.layout();
    let base = app.records.base_layout();
    let cells: Vec<(&str, Option<&str>)> = layout
        .cells()
        .iter()
        .map(|c| (c.name(), c.line()))
        .collect();
    let mut entries: Vec<DeviceEntry<'_>> = devices
        .iter()
        .map(|d| DeviceEntry {
            agent: &d.agent,
            device: &d.name,
            record: records.get(&d.agent).and_then(|r| r.get(&d.name)),
            pattern_cell: match base.place(&d.agent, &d.name) {
                Placement::Cell(i) => layout.cells().get(i).map(|c| c.name()),
                Placement::Unassigned => None,
            },
        })
        .collect();
    entries.sort_by(|a, b| (a.agent, a.device).cmp(&(b.agent, b.device)));
    let (csrf, cookie) = form_token(auth, headers);
    let body = pages::devices(&pages::DevicesPage {
        who: &p.shown,
        devices: &entries,
        cells: &cells,
        csrf: &csrf,
        notice,
    });
    Ok(html(status, body, cookie))
}

/// `POST /admin/devices`: the machines page's form (`csrf`, `agent`, `device`,
/// `display_name`, `cell`, `description`, `ideal_cycle_time`; empty fields are none).
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
    let cycle = field(&form, "ideal_cycle_time").trim();
    let result = match (cycle.is_empty(), cycle.parse::<f64>()) {
        (false, Err(_)) => Err(ApiError::bad_request(
            "the ideal cycle time is a number of seconds",
        )),
        (empty, parsed) => {
            let input = RecordInput {
                agent: field(&form, "agent").to_owned(),
                device: field(&form, "device").to_owned(),
                display_name: Some(field(&form, "display_name").to_owned()),
                cell: Some(field(&form, "cell").to_owned()),
                description: Some(field(&form, "description").to_owned()),
                ideal_cycle_time: if empty { None } else { parsed.ok() },
            };
            save(&app, &auth, p, peer, input).await
        }
    };
    match result {
        Ok(()) => Ok(see_other("/admin/devices?done=device-saved")),
        Err(e) => {
            let text = e.message().to_owned();
            answer(
                &app,
                &auth,
                &headers,
                Some(p),
                e.status(),
                Notice::Error(&text),
            )
            .await
        }
    }
}

/// A record as JSON (camelCase; the ideal cycle time in seconds).
pub(super) fn record_json(r: &DeviceRecord) -> serde_json::Value {
    json!({
        "agent": r.agent, "device": r.device, "displayName": r.display_name, "cell": r.cell,
        "description": r.description, "idealCycleTime": r.ideal_cycle_time,
        "updatedAt": r.updated_at, "updatedBy": r.updated_by,
    })
}

/// `GET /api/device-records`: every record.
pub async fn list(app: Arc<App>, principal: Option<Principal>) -> Result<Response, ApiError> {
    require_admin(principal.as_ref())?;
    let records = app.store.device_records().await?;
    let list: Vec<_> = records.iter().map(record_json).collect();
    Ok(reply::json(&json!({ "records": list })).into_response())
}

/// `POST /api/device-records` `{"agent", "device", "displayName"?, "cell"?,
/// "description"?, "idealCycleTime"?}` (seconds): replaces the device's record; one that
/// says nothing removes it.
pub async fn put(
    app: Arc<App>,
    auth: Arc<Auth>,
    principal: Option<Principal>,
    peer: Option<IpAddr>,
    body: RecordInput,
) -> Result<Response, ApiError> {
    let p = require_admin(principal.as_ref())?;
    let key = (body.agent.clone(), body.device.clone());
    save(&app, &auth, p, peer, body).await?;
    let record = app.records.get(&key.0, &key.1);
    Ok(reply::json(&json!({ "record": record.as_ref().map(record_json) })).into_response())
}

/// What `DELETE /api/device-records` takes.
#[derive(Debug, Deserialize)]
pub struct RecordKey {
    agent: String,
    device: String,
}

/// `DELETE /api/device-records?agent=&device=`: 204, or 404 when there was none.
pub async fn remove(
    app: Arc<App>,
    auth: Arc<Auth>,
    principal: Option<Principal>,
    peer: Option<IpAddr>,
    q: RecordKey,
) -> Result<Response, ApiError> {
    let p = require_admin(principal.as_ref())?;
    if !app.store.remove_device_record(&q.agent, &q.device).await? {
        return Err(ApiError::not_found("no record of that device"));
    }
    app.records.load(&*app.store).await?;
    auth.audit(entry(
        p,
        peer,
        "device-changed",
        &format!("{} at {}", q.device, q.agent),
        "record removed".into(),
    ))
    .await;
    Ok(StatusCode::NO_CONTENT.into_response())
}
