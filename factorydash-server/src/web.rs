//! The dashboard's HTTP routes: the page, its assets, the WebSocket and the JSON API.

use std::borrow::Cow;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use factorydash_core::{
    Category, Cursor, DataItemInfo, DeviceInfo, DeviceStatus, Observation, PageRequest, TimeWindow,
};
use factorydash_store::{LatestFilter, StoreError};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use warp::http::{HeaderValue, StatusCode};
use warp::reply::{self, Reply, Response};
use warp::ws::{Message, WebSocket};
use warp::Filter;

use crate::page;
use crate::redact::redacted;
use crate::state::App;

/// The Content-Security-Policy of every answer: nothing but this server's own assets.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The default latest-values page size of the dashboard.
pub const PAGE_SIZE: usize = 50;

type Query = HashMap<String, String>;

/// A client error, answered as JSON `{"error": "..."}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn bad_request(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    fn not_found(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }

    fn conflict(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::CONFLICT,
            message: message.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::InvalidCursor(_) => {
                ApiError::bad_request("invalid cursor: pass back the `next` of a previous page")
            }
            e => {
                tracing::error!(error = %crate::ingest::error_chain(&e), "store query failed");
                ApiError {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    message: "the store is not available; retry shortly".into(),
                }
            }
        }
    }
}

impl Reply for ApiError {
    fn into_response(self) -> Response {
        reply::with_status(reply::json(&json!({ "error": self.message })), self.status)
            .into_response()
    }
}

fn answer<T: Reply>(r: Result<T, ApiError>) -> Response {
    match r {
        Ok(ok) => ok.into_response(),
        Err(e) => e.into_response(),
    }
}

/// A latest value with what the device model says of its data item.
#[derive(Debug, Serialize)]
pub struct LatestRow {
    /// The observation.
    #[serde(flatten)]
    pub observation: Observation,
    /// The data item's units, if the model gives them.
    pub units: Option<String>,
    /// The owning component's name (or element name), if the model knows the data item.
    pub component: Option<String>,
}

/// The data items of every device, by (device, dataItemId).
pub fn item_index(devices: &[DeviceInfo]) -> HashMap<(&str, &str), &DataItemInfo> {
    devices
        .iter()
        .flat_map(|d| {
            d.data_items
                .iter()
                .map(move |i| ((d.name.as_str(), i.id.as_str()), i))
        })
        .collect()
}

fn rows(observations: Vec<Observation>, devices: &[DeviceInfo]) -> Vec<LatestRow> {
    let index = item_index(devices);
    observations
        .into_iter()
        .map(|observation| {
            let item = index.get(&(
                observation.device.as_str(),
                observation.data_item_id.as_str(),
            ));
            LatestRow {
                units: item.and_then(|i| i.units.clone()),
                component: item.map(|i| {
                    i.component_name
                        .clone()
                        .unwrap_or_else(|| i.component.clone())
                }),
                observation,
            }
        })
        .collect()
}

fn page_request(q: &Query, default_limit: usize) -> Result<(LatestFilter, PageRequest), ApiError> {
    let limit = match q.get("limit") {
        None => default_limit,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=factorydash_core::page::MAX_PAGE_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "limit must be a whole number from 1 to {}, got '{s}'",
                    factorydash_core::page::MAX_PAGE_LIMIT
                )))
            }
        },
    };
    let after = q
        .get("cursor")
        .filter(|c| !c.is_empty())
        .map(|c| Cursor::from_string(c.clone()));
    let text = |name: &str| q.get(name).filter(|v| !v.is_empty()).cloned();
    let category = match q.get("category").filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(c.to_ascii_uppercase().parse::<Category>().map_err(|_| {
            ApiError::bad_request(format!(
                "category must be SAMPLE, EVENT or CONDITION, got '{c}'"
            ))
        })?),
    };
    let filter = LatestFilter {
        device: text("device"),
        component_id: text("component"),
        category,
        kind: text("type"),
        search: text("q"),
    };
    Ok((filter, PageRequest { after, limit }))
}

/// The statuses of all devices.
pub async fn statuses(app: &App, devices: &[DeviceInfo]) -> Result<Vec<DeviceStatus>, StoreError> {
    let mut out = Vec::with_capacity(devices.len());
    for d in devices {
        out.push(app.device_status(&d.name).await?);
    }
    Ok(out)
}

async fn dashboard(app: Arc<App>, q: Query) -> Result<Response, Infallible> {
    let result = async {
        let (filter, request) = page_request(&q, PAGE_SIZE)?;
        let at = time_param(&q, "at")?;
        // When the store cannot be read, the page still comes, empty, saying why.
        let read = async {
            let devices = app.store.devices().await?;
            let statuses = statuses(&app, &devices).await?;
            let latest = match at {
                Some(at) => app.store.as_of(&filter, at, &request).await?,
                None => app.store.latest(&filter, &request).await?,
            };
            Ok::<_, StoreError>((devices, statuses, latest))
        }
        .await;
        let (devices, statuses, latest, store_error) = match read {
            Ok((d, s, l)) => (d, s, l, None),
            Err(StoreError::InvalidCursor(e)) => return Err(StoreError::InvalidCursor(e).into()),
            Err(e) => {
                tracing::warn!(error = %crate::ingest::error_chain(&e), "cannot read the store for the page");
                (Vec::new(), Vec::new(), factorydash_core::Page { items: Vec::new(), next: None }, Some(crate::ingest::error_chain(&e)))
            }
        };
        let html = page::render(&page::Dashboard {
            store_kind: app.store_kind,
            store_error: store_error.as_deref(),
            sources: &app.health(),
            devices: &devices,
            statuses: &statuses,
            rows: &rows(latest.items, &devices),
            next: latest.next.as_ref(),
            filter: &filter,
            at,
            first_page: request.after.is_none(),
            limit: request.limit,
            now: Utc::now(),
        });
        Ok::<_, ApiError>(reply::html(html))
    }
    .await;
    Ok(answer(result))
}

async fn device_page(app: Arc<App>, q: Query) -> Result<Response, Infallible> {
    let result = async {
        let name = q
            .get("name")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::bad_request("name is required"))?;
        let devices = app.store.devices().await?;
        let Some(device) = devices.iter().find(|d| d.name == *name) else {
            return Ok(reply::with_status(
                reply::html(format!(
                    "<!DOCTYPE html><p>No device named {}. <a href=\"/\">All devices</a></p>",
                    maud::html! { (name) }.into_string()
                )),
                StatusCode::NOT_FOUND,
            )
            .into_response());
        };
        let latest = app.device_latest(name).await?;
        let status = DeviceStatus::from_latest(name, &latest);
        let html = page::render_device(&page::DevicePage {
            device,
            status: &status,
            latest: &latest,
            sources: &app.health(),
        });
        Ok::<_, ApiError>(reply::html(html).into_response())
    }
    .await;
    Ok(answer(result))
}

async fn agents_page(app: Arc<App>) -> Result<Response, Infallible> {
    let result = async {
        let gaps = app.store.gaps().await?;
        Ok::<_, ApiError>(reply::html(page::render_agents(&app.health(), &gaps)).into_response())
    }
    .await;
    Ok(answer(result))
}

async fn api_devices(app: Arc<App>) -> Result<Response, Infallible> {
    let result = async {
        let devices = app.store.devices().await?;
        let statuses = statuses(&app, &devices).await?;
        let out: Vec<_> = devices
            .iter()
            .zip(&statuses)
            .map(|(d, s)| {
                let mut device = json!(d);
                device["agent"] = json!(redacted(&d.agent));
                json!({ "device": device, "status": s })
            })
            .collect();
        Ok::<_, ApiError>(reply::json(&out))
    }
    .await;
    Ok(answer(result))
}

async fn api_latest(app: Arc<App>, q: Query) -> Result<Response, Infallible> {
    let result = async {
        let (filter, request) = page_request(&q, 100)?;
        let page = match time_param(&q, "at")? {
            Some(at) => app.store.as_of(&filter, at, &request).await?,
            None => app.store.latest(&filter, &request).await?,
        };
        let devices = app.store.devices().await?;
        Ok::<_, ApiError>(reply::json(&json!({
            "items": rows(page.items, &devices),
            "next": page.next,
        })))
    }
    .await;
    Ok(answer(result))
}

/// A time parameter (RFC 3339); absent or empty is `None`.
fn time_param(q: &Query, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    q.get(name)
        .filter(|s| !s.is_empty())
        .map(|s| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    ApiError::bad_request(format!(
                        "{name} must be an RFC 3339 time such as 2026-01-31T12:00:00Z, got '{s}'"
                    ))
                })
        })
        .transpose()
}

async fn api_series(app: Arc<App>, q: Query) -> Result<Response, Infallible> {
    let result = async {
        let device = q.get("device").filter(|s| !s.is_empty()).ok_or_else(|| ApiError::bad_request("device is required"))?;
        let item = q
            .get("dataItemId")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::bad_request("dataItemId is required"))?;
        let to = time_param(&q, "to")?.unwrap_or_else(Utc::now);
        let from = time_param(&q, "from")?.unwrap_or(to - chrono::Duration::hours(1));
        let window = TimeWindow::new(from, to).map_err(|e| ApiError::bad_request(e.to_string()))?;
        let limit = match q.get("limit") {
            None => 10_000,
            Some(s) => s
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=100_000).contains(n))
                .ok_or_else(|| ApiError::bad_request(format!("limit must be a whole number from 1 to 100000, got '{s}'")))?,
        };
        let max_points = match q.get("maxPoints") {
            None => None,
            Some(s) => Some(
                s.parse::<usize>()
                    .ok()
                    .filter(|n| (3..=100_000).contains(n))
                    .ok_or_else(|| ApiError::bad_request(format!("maxPoints must be a whole number from 3 to 100000, got '{s}'")))?,
            ),
        };
        let Some(max_points) = max_points else {
            let items = app.store.series(device, item, &window, limit).await?;
            return Ok::<_, ApiError>(reply::json(&json!({
                "device": device, "dataItemId": item, "from": window.from(), "to": window.to(), "items": items,
            })));
        };
        // Downsampled for a chart, in the store (in the database on PostgreSQL): numeric
        // values only, in max_points / 4 buckets; the line is their M4 points (at most four
        // a bucket), the band their min/max/mean.
        let band = app.store.buckets(device, item, &window, (max_points / 4).max(1)).await?;
        let line = factorydash_core::downsample::m4_line(&band);
        let numeric: usize = band.iter().map(|b| b.count).sum();
        Ok::<_, ApiError>(reply::json(&json!({
            "device": device, "dataItemId": item, "from": window.from(), "to": window.to(),
            "numeric": numeric, "points": line, "buckets": band,
        })))
    }
    .await;
    Ok(answer(result))
}

/// The most state intervals or alarm episodes one answer holds, and the default.
const MAX_INTERVALS: usize = 10_000;
const DEFAULT_INTERVALS: usize = 1_000;

/// `/api/utilization?device=&from=&to=&type=&cursor=&limit=`: the intervals of a
/// state-like Event data item (a controlled vocabulary: `EXECUTION` by default,
/// `AVAILABILITY`, `CONTROLLER_MODE`, …; anything else is refused) over a window (default
/// the last hour) and the share of time in each state over the whole window (share ACTIVE
/// of `EXECUTION` is the utilization). Computed in the store, so an answer costs the same
/// memory whatever the window holds: the intervals come a page at a time (`limit`, default
/// 1,000, at most 10,000; pass `next` back as `cursor`).
async fn api_utilization(app: Arc<App>, q: Query) -> Result<Response, Infallible> {
    let result = async {
        let device = q.get("device").filter(|s| !s.is_empty()).ok_or_else(|| ApiError::bad_request("device is required"))?;
        let kind = q.get("type").map_or("EXECUTION", String::as_str).to_ascii_uppercase();
        if !factorydash_core::states::is_state_type(&kind) {
            return Err(ApiError::bad_request(format!(
                "type must be an Event with a controlled vocabulary (one of {}), got '{kind}'",
                factorydash_core::states::STATE_TYPES.join(", ")
            )));
        }
        let limit = match q.get("limit") {
            None => DEFAULT_INTERVALS,
            Some(s) => s.parse().ok().filter(|n| (1..=MAX_INTERVALS).contains(n)).ok_or_else(|| {
                ApiError::bad_request(format!("limit must be a whole number from 1 to {MAX_INTERVALS}, got '{s}'"))
            })?,
        };
        let after = match q.get("cursor").filter(|s| !s.is_empty()) {
            None => None,
            Some(c) => Some(interval_cursor(c).ok_or_else(|| ApiError::bad_request("invalid cursor"))?),
        };
        let to = time_param(&q, "to")?.unwrap_or_else(Utc::now);
        let from = time_param(&q, "from")?.unwrap_or(to - chrono::Duration::hours(1));
        let window = TimeWindow::new(from, to).map_err(|e| ApiError::bad_request(e.to_string()))?;
        let devices = app.store.devices().await?;
        let item = devices
            .iter()
            .filter(|d| d.name == *device)
            .flat_map(|d| &d.data_items)
            .find(|i| i.kind == kind)
            .ok_or_else(|| ApiError::bad_request(format!("device '{device}' has no {kind} data item")))?;
        let summary = app.store.state_summary(device, &item.id, &window, after, limit).await?;
        let next = summary.next.map(|t| Cursor::from_key(&[t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)]));
        Ok::<_, ApiError>(reply::json(&json!({
            "device": device, "dataItemId": item.id, "type": kind, "from": window.from(), "to": window.to(),
            "shares": summary.shares, "intervals": summary.intervals, "next": next,
        })))
    }
    .await;
    Ok(answer(result))
}

/// The instant an intervals cursor holds.
fn interval_cursor(cursor: &str) -> Option<chrono::DateTime<Utc>> {
    let key = Cursor::from_string(cursor).key().ok()?;
    match key.as_slice() {
        [t] => chrono::DateTime::parse_from_rfc3339(t)
            .ok()
            .map(|t| t.with_timezone(&Utc)),
        _ => None,
    }
}

/// Condition observations read from the store per step of `/api/alarms`.
const ALARMS_CHUNK: usize = 10_000;

/// `/api/alarms?device=&from=&to=&limit=`: the Condition episodes (each Warning or Fault
/// with its start, end, duration in seconds, native code and message) that were active at
/// any time in a window (default the last 24 hours), of one device or all, oldest first;
/// those with no end are still active. Folded from the store 10,000 observations at a
/// time, keeping every active episode and the newest `limit` ended ones (default 1,000, at
/// most 10,000; `omitted` counts the older ended ones left out), so an answer costs the
/// same memory whatever the window holds.
async fn api_alarms(app: Arc<App>, q: Query) -> Result<Response, Infallible> {
    let result = async {
        let device = q
            .get("device")
            .filter(|s| !s.is_empty())
            .map(String::as_str);
        let limit = match q.get("limit") {
            None => DEFAULT_INTERVALS,
            Some(s) => s.parse().ok().filter(|n| (1..=MAX_INTERVALS).contains(n)).ok_or_else(|| {
                ApiError::bad_request(format!("limit must be a whole number from 1 to {MAX_INTERVALS}, got '{s}'"))
            })?,
        };
        let to = time_param(&q, "to")?.unwrap_or_else(Utc::now);
        let from = time_param(&q, "from")?.unwrap_or(to - chrono::Duration::hours(24));
        let window = TimeWindow::new(from, to).map_err(|e| ApiError::bad_request(e.to_string()))?;
        let mut episodes = factorydash_core::episodes::Episodes::with_limit(limit);
        // What was active when the window began: the last observation before it of each
        // Condition data item.
        for d in app
            .store
            .devices()
            .await?
            .iter()
            .filter(|d| device.is_none_or(|n| n == d.name))
        {
            for item in d
                .data_items
                .iter()
                .filter(|i| i.category == Category::Condition)
            {
                if let Some(o) = app
                    .store
                    .last_before(&d.name, &item.id, window.from())
                    .await?
                {
                    episodes.observe(&o);
                }
            }
        }
        let mut after = None;
        loop {
            let chunk = app.store.conditions(device, &window, after, ALARMS_CHUNK).await?;
            for o in &chunk {
                episodes.observe(o);
            }
            match chunk.last() {
                Some(last) if chunk.len() == ALARMS_CHUNK => after = Some((last.timestamp, last.sequence)),
                _ => break,
            }
        }
        let now = Utc::now();
        let (episodes, omitted) = episodes.finish_counted();
        let episodes: Vec<_> = episodes
            .into_iter()
            .map(|e| {
                let seconds = e.duration_seconds(now.min(window.to()));
                let mut v = serde_json::to_value(&e).unwrap_or_default();
                v["duration_seconds"] = json!(seconds);
                v
            })
            .collect();
        let active = episodes.iter().filter(|e| e["ended"].is_null()).count();
        Ok::<_, ApiError>(reply::json(&json!({
            "from": window.from(), "to": window.to(), "active": active, "omitted": omitted, "episodes": episodes,
        })))
    }
    .await;
    Ok(answer(result))
}

/// Observations read from the store per step of an export.
const EXPORT_CHUNK: usize = 10_000;

/// `/api/export?device=&dataItemId=&from=&to=&format=csv|ndjson`: every observation of one
/// data item in a window (default the last 24 hours), oldest first, streamed as CSV (with a
/// header row) or NDJSON (one JSON observation per line), whatever its size: read from the
/// store 10,000 at a time, keyset by (timestamp, sequence), and sent while the client reads.
async fn api_export(app: Arc<App>, q: Query) -> Result<Response, Infallible> {
    let result = async {
        let device = q
            .get("device")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::bad_request("device is required"))?
            .clone();
        let item = q
            .get("dataItemId")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::bad_request("dataItemId is required"))?
            .clone();
        let csv = match q.get("format").map(String::as_str).unwrap_or("csv") {
            "csv" => true,
            "ndjson" => false,
            other => {
                return Err(ApiError::bad_request(format!(
                    "format must be csv or ndjson, got '{other}'"
                )))
            }
        };
        let to = time_param(&q, "to")?.unwrap_or_else(Utc::now);
        let from = time_param(&q, "from")?.unwrap_or(to - chrono::Duration::hours(24));
        let window = TimeWindow::new(from, to).map_err(|e| ApiError::bad_request(e.to_string()))?;
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
        let file: String = format!("{device}-{item}")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        tokio::spawn(async move {
            if csv {
                let mut w = csv::Writer::from_writer(Vec::new());
                let _ = w.write_record(EXPORT_COLUMNS);
                let head = w.into_inner().unwrap_or_default();
                if tx.send(Ok(head)).await.is_err() {
                    return;
                }
            }
            let mut after: Option<(DateTime<Utc>, u64)> = None;
            let mut limit = EXPORT_CHUNK;
            loop {
                let from = after.map_or(window.from(), |(t, _)| t);
                let Ok(step) = TimeWindow::new(from, window.to()) else {
                    return;
                };
                let items = match app.store.series(&device, &item, &step, limit).await {
                    Ok(items) => items,
                    Err(e) => {
                        let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                        return;
                    }
                };
                let full = items.len() == limit;
                let fresh: Vec<&Observation> = items
                    .iter()
                    .filter(|o| after.is_none_or(|a| (o.timestamp, o.sequence) > a))
                    .collect();
                if fresh.is_empty() && full {
                    // More than a chunk share one timestamp: read a larger chunk.
                    limit *= 2;
                    continue;
                }
                let chunk = if csv {
                    csv_rows(&fresh)
                } else {
                    ndjson_rows(&fresh)
                };
                if let Some(last) = fresh.last() {
                    after = Some((last.timestamp, last.sequence));
                }
                if tx.send(Ok(chunk)).await.is_err() || !full {
                    return;
                }
                limit = EXPORT_CHUNK;
            }
        });
        let body = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|chunk| (chunk, rx))
        });
        let content_type = if csv {
            "text/csv; charset=utf-8"
        } else {
            "application/x-ndjson"
        };
        let extension = if csv { "csv" } else { "ndjson" };
        let reply = reply::with_header(warp::reply::stream(body), "content-type", content_type);
        let reply = reply::with_header(
            reply,
            "content-disposition",
            format!("attachment; filename=\"{file}.{extension}\""),
        );
        Ok::<_, ApiError>(reply.into_response())
    }
    .await;
    Ok(answer(result))
}

/// The CSV export's columns.
const EXPORT_COLUMNS: [&str; 12] = [
    "timestamp",
    "sequence",
    "device",
    "component_id",
    "data_item_id",
    "name",
    "category",
    "type",
    "sub_type",
    "value",
    "condition_level",
    "native_code",
];

fn csv_rows(items: &[&Observation]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::with_capacity(items.len() * 96));
    for o in items {
        let c = o.condition.as_ref();
        let _ = w.write_record([
            o.timestamp
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
                .as_str(),
            &o.sequence.to_string(),
            &o.device,
            &o.component_id,
            &o.data_item_id,
            o.name.as_deref().unwrap_or(""),
            o.category.as_str(),
            &o.kind,
            o.sub_type.as_deref().unwrap_or(""),
            o.value.as_text().unwrap_or("UNAVAILABLE"),
            c.map_or("", |c| c.level.as_str()),
            c.and_then(|c| c.native_code.as_deref()).unwrap_or(""),
        ]);
    }
    w.into_inner().unwrap_or_default()
}

fn ndjson_rows(items: &[&Observation]) -> Vec<u8> {
    let mut out = Vec::with_capacity(items.len() * 200);
    for o in items {
        if serde_json::to_writer(&mut out, o).is_ok() {
            out.push(b'\n');
        }
    }
    out
}

/// `GET /api/agents`: every agent, from the command line or added at run time, with
/// whether it is paused and its health.
async fn api_agents(app: Arc<App>) -> Result<Response, Infallible> {
    let result = async {
        let configured = app.store.configured_agents().await?;
        let health = app.health();
        let followed: Vec<String> = app
            .followed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect();
        let mut urls: Vec<String> = followed.clone();
        urls.extend(configured.iter().map(|a| a.url.clone()));
        urls.sort();
        urls.dedup();
        let out: Vec<_> = urls
            .iter()
            .map(|url| {
                let added = configured.iter().find(|a| a.url == *url);
                json!({
                    "url": redacted(url),
                    "added_at_run_time": added.is_some(),
                    "paused": !followed.contains(url),
                    "health": health.iter().find(|h| h.source == *url),
                })
            })
            .collect();
        Ok::<_, ApiError>(reply::json(&out).into_response())
    }
    .await;
    Ok(answer(result))
}

/// `POST /api/agents` with `{"url": "http://…"}` (admin): follows the agent from now on
/// and after restarts. `POST /api/agents/pause?url=` and `/api/agents/resume?url=` stop
/// and start following it; `DELETE /api/agents?url=` stops and forgets an agent added at
/// run time (what was stored from it stays). An agent whose URL holds credentials may be
/// named by its URL as given or as shown (redacted, as `GET /api/agents` lists it).
async fn api_agents_change(
    app: Arc<App>,
    action: &'static str,
    q: Query,
    body: Option<serde_json::Value>,
) -> Result<Response, Infallible> {
    let result = async {
        if app.ingest.get().is_none() {
            return Err(ApiError::conflict("this factorydash plays a recording; it follows no agents"));
        }
        let url = match (&body, q.get("url")) {
            (Some(b), _) => b["url"].as_str().map(str::to_owned),
            (None, u) => u.cloned(),
        }
        .filter(|u| !u.is_empty())
        .ok_or_else(|| ApiError::bad_request("url is required"))?;
        let url = url.trim_end_matches('/').to_owned();
        if url.contains('\0') {
            return Err(ApiError::bad_request("url holds a NUL character"));
        }
        let url = if action == "add" { url } else { known_agent(&app, url).await? };
        match action {
            "add" => {
                factorydash_mtconnect::client::AgentClient::new(&url)
                    .map_err(|e| ApiError::bad_request(format!("not an agent URL: {e}")))?;
                app.store
                    .put_configured_agent(&factorydash_store::ConfiguredAgent { url: url.clone(), paused: false })
                    .await?;
                let started = crate::ingest::start_agent(&app, &url);
                let status = if started { StatusCode::CREATED } else { StatusCode::OK };
                Ok(reply::with_status(reply::json(&json!({ "url": redacted(&url), "following": true })), status).into_response())
            }
            "pause" | "resume" => {
                let paused = action == "pause";
                let known = app.followed.lock().unwrap_or_else(|p| p.into_inner()).contains_key(&url)
                    || app.store.configured_agents().await?.iter().any(|a| a.url == url);
                if !known {
                    return Err(ApiError::not_found(format!("no agent {}", redacted(&url))));
                }
                app.store
                    .put_configured_agent(&factorydash_store::ConfiguredAgent { url: url.clone(), paused })
                    .await?;
                if paused {
                    crate::ingest::stop_agent(&app, &url);
                    app.update_health(&url, |h| h.state = crate::state::SourceState::Paused);
                } else {
                    crate::ingest::start_agent(&app, &url);
                }
                Ok(reply::json(&json!({ "url": redacted(&url), "following": !paused })).into_response())
            }
            _ => {
                let removed = app.store.remove_configured_agent(&url).await?;
                if !removed {
                    return Err(ApiError::not_found(format!(
                        "no agent {} was added at run time (agents given on the command line stay; pause them instead)",
                        redacted(&url)
                    )));
                }
                crate::ingest::stop_agent(&app, &url);
                app.forget_source(&url);
                Ok(StatusCode::NO_CONTENT.into_response())
            }
        }
    }
    .await;
    Ok(answer(result))
}

/// The agent that `given` names: the URL of an agent followed or added at run time, as
/// given or as shown with its credentials redacted (when one agent only is shown so);
/// else `given` itself.
async fn known_agent(app: &App, given: String) -> Result<String, ApiError> {
    let mut known: Vec<String> = app
        .followed
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .keys()
        .cloned()
        .collect();
    known.extend(
        app.store
            .configured_agents()
            .await?
            .into_iter()
            .map(|a| a.url),
    );
    if known.contains(&given) {
        return Ok(given);
    }
    known.sort();
    known.dedup();
    let mut shown_so = known.into_iter().filter(|u| redacted(u) == given.as_str());
    match (shown_so.next(), shown_so.next()) {
        (Some(url), None) => Ok(url),
        _ => Ok(given),
    }
}

async fn api_gaps(app: Arc<App>) -> Result<Response, Infallible> {
    let result = async {
        let mut gaps = app.store.gaps().await?;
        for g in &mut gaps {
            if let Cow::Owned(shown) = redacted(&g.agent) {
                g.agent = shown;
            }
        }
        Ok::<_, ApiError>(reply::json(&gaps))
    }
    .await;
    Ok(answer(result))
}

/// How long `/healthz` waits for the store's answer before it says the store is degraded.
const HEALTH_PING_TIMEOUT: Duration = Duration::from_secs(2);

/// `/healthz`, open to anyone (load balancers, service managers): the same cost whatever
/// the store holds. The store is pinged (`SELECT 1`), never counted; `observations` is what
/// this process's sources stored since it started, as ingest counted it.
async fn healthz(app: Arc<App>) -> Result<Response, Infallible> {
    let store = match tokio::time::timeout(HEALTH_PING_TIMEOUT, app.store.ping()).await {
        Ok(answer) => answer.map_err(|e| crate::ingest::error_chain(&e)),
        Err(_) => Err(format!(
            "the store did not answer within {HEALTH_PING_TIMEOUT:?}"
        )),
    };
    let sources = app.health();
    let observations: u64 = sources.iter().map(|s| s.observations).sum();
    let body = json!({
        "status": if store.is_ok() { "ok" } else { "degraded" },
        "store": app.store_kind,
        "store_error": store.err(),
        "observations": observations,
        "sources": sources,
    });
    Ok(reply::json(&body).into_response())
}

/// The largest WebSocket message a client may send, in bytes (a `subscribe` to a few
/// hundred devices fits).
const MAX_CLIENT_MESSAGE: usize = 64 * 1024;

/// How often the server shows a client it is alive (a `heartbeat` message and a ping).
const HEARTBEAT: Duration = Duration::from_secs(15);
/// A client silent this long (not even a pong) is gone.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(45);

/// One WebSocket client of the live protocol:
///
/// - first `{"type":"hello","epoch":E,"id":N}` and the sources' health;
/// - `?since=E.N` (the last message a reconnecting client saw): the messages it missed, in
///   order, or `{"type":"resync"}` when they are no longer held (it reloads what it shows);
/// - the client sends `{"type":"subscribe","devices":[…]}` to get only those devices'
///   `latest` messages (no list: every device); health messages go to every client;
/// - every message carries its `id`; a `heartbeat` every 15 s; a client silent for 45 s
///   (no pong either) is closed, and so is one too slow to keep up (it would only grow
///   the server's memory): it reconnects with `since`.
async fn client(app: Arc<App>, socket: WebSocket, since: Option<(u64, u64)>) {
    let (mut tx, mut rx) = socket.split();
    let (mut updates, epoch, last, missed) = app.subscribe(since);
    let mut devices: Option<std::collections::HashSet<String>> = None;
    let hello = json!({ "type": "hello", "epoch": epoch, "id": last }).to_string();
    let health = json!({ "type": "health", "sources": app.health() }).to_string();
    if tx.send(Message::text(hello)).await.is_err() || tx.send(Message::text(health)).await.is_err()
    {
        return;
    }
    match missed {
        Some(messages) => {
            for m in messages {
                if tx.send(Message::text(m.json.as_ref())).await.is_err() {
                    return;
                }
            }
        }
        None => {
            if tx
                .send(Message::text(r#"{"type":"resync"}"#))
                .await
                .is_err()
            {
                return;
            }
        }
    }
    let mut beat = tokio::time::interval(HEARTBEAT);
    let mut heard = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = app.stopping.cancelled() => {
                let _ = tx.send(Message::close_with(1001u16, "server stopping")).await;
                let _ = tx.close().await;
                return;
            }
            update = updates.recv() => {
                let m = match update {
                    Ok(m) => m,
                    Err(RecvError::Lagged(_)) => {
                        let _ = tx.send(Message::close_with(1008u16, "too slow; reconnect with since")).await;
                        return;
                    }
                    Err(RecvError::Closed) => return,
                };
                let wanted = match (&m.device, &devices) {
                    (Some(d), Some(set)) => set.contains(d),
                    _ => true,
                };
                if wanted && tx.send(Message::text(m.json.as_ref())).await.is_err() {
                    return;
                }
            }
            _ = beat.tick() => {
                if heard.elapsed() > CLIENT_TIMEOUT {
                    let _ = tx.send(Message::close_with(1001u16, "no answer")).await;
                    return;
                }
                if tx.send(Message::text(r#"{"type":"heartbeat"}"#)).await.is_err()
                    || tx.send(Message::ping(Vec::new())).await.is_err()
                {
                    return;
                }
            }
            incoming = rx.next() => match incoming {
                Some(Ok(m)) if m.is_close() => return,
                Some(Ok(m)) => {
                    heard = tokio::time::Instant::now();
                    if let Ok(text) = m.to_str() {
                        if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
                            if v["type"] == "subscribe" {
                                devices = v["devices"].as_array().map(|list| {
                                    list.iter().filter_map(|d| d.as_str().map(str::to_owned)).collect()
                                });
                            }
                        }
                    }
                }
                Some(Err(_)) | None => return,
            },
        }
    }
}

/// `since=EPOCH.ID` of a reconnecting client.
fn parse_since(q: &Query) -> Option<(u64, u64)> {
    let (epoch, id) = q.get("since")?.split_once('.')?;
    Some((epoch.parse().ok()?, id.parse().ok()?))
}

/// All routes of the dashboard.
pub fn routes(
    app: Arc<App>,
    tokens: Arc<crate::auth::Tokens>,
) -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone {
    let metrics = Arc::new(crate::metrics::Metrics::new(app.clone()));
    let latency = metrics.latency.clone();
    let with = warp::any().map(move || app.clone());
    let metrics_route = warp::path!("metrics").and(warp::get()).map(move || {
        reply::with_header(
            metrics.encode(),
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )
        .into_response()
    });
    let query = warp::query::<Query>();
    let index = warp::path::end()
        .and(warp::get())
        .and(with.clone())
        .and(query)
        .and_then(dashboard);
    let device = warp::path!("device")
        .and(warp::get())
        .and(with.clone())
        .and(query)
        .and_then(device_page);
    let ws = warp::path!("ws")
        .and(warp::ws())
        .and(with.clone())
        .and(query)
        .map(|ws: warp::ws::Ws, app: Arc<App>, q: Query| {
            let since = parse_since(&q);
            // Clients only send small control messages (`subscribe`): a large one is refused
            // as it arrives, not buffered (tungstenite's default allows 64 MiB).
            ws.max_message_size(MAX_CLIENT_MESSAGE)
                .max_frame_size(MAX_CLIENT_MESSAGE)
                .on_upgrade(move |socket| client(app, socket, since))
                .into_response()
        });
    let devices = warp::path!("api" / "devices")
        .and(warp::get())
        .and(with.clone())
        .and_then(api_devices);
    let latest = warp::path!("api" / "latest")
        .and(warp::get())
        .and(with.clone())
        .and(query)
        .and_then(api_latest);
    let series = warp::path!("api" / "series")
        .and(warp::get())
        .and(with.clone())
        .and(query)
        .and_then(api_series);
    let utilization = warp::path!("api" / "utilization")
        .and(warp::get())
        .and(with.clone())
        .and(query)
        .and_then(api_utilization);
    let alarms = warp::path!("api" / "alarms")
        .and(warp::get())
        .and(with.clone())
        .and(query)
        .and_then(api_alarms);
    let agents = warp::path!("api" / "agents")
        .and(warp::get())
        .and(with.clone())
        .and_then(api_agents);
    let agents_add = warp::path!("api" / "agents")
        .and(warp::post())
        .and(with.clone())
        .and(query)
        .and(
            // A body refused here is answered (400), not passed on to the 404 handler.
            warp::body::content_length_limit(16 * 1024)
                .and(warp::body::bytes())
                .map(|b: warp::hyper::body::Bytes| Some(b.to_vec()))
                .or(warp::any().map(|| None))
                .unify(),
        )
        .and_then(|app, q, body: Option<Vec<u8>>| async move {
            let body = body
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "the body must be JSON of at most 16 KiB, with a Content-Length",
                    )
                })
                .and_then(|b| {
                    serde_json::from_slice::<serde_json::Value>(&b)
                        .map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))
                });
            match body {
                Ok(body) => api_agents_change(app, "add", q, Some(body)).await,
                Err(e) => Ok(answer::<Response>(Err(e))),
            }
        });
    let agents_remove = warp::path!("api" / "agents")
        .and(warp::delete())
        .and(with.clone())
        .and(query)
        .and_then(|app, q| api_agents_change(app, "remove", q, None));
    let agents_pause = warp::path!("api" / "agents" / "pause")
        .and(warp::post())
        .and(with.clone())
        .and(query)
        .and_then(|app, q| api_agents_change(app, "pause", q, None));
    let agents_resume = warp::path!("api" / "agents" / "resume")
        .and(warp::post())
        .and(with.clone())
        .and(query)
        .and_then(|app, q| api_agents_change(app, "resume", q, None));
    let agents_api = agents
        .or(agents_add)
        .unify()
        .or(agents_remove)
        .unify()
        .or(agents_pause)
        .unify()
        .or(agents_resume)
        .unify()
        .boxed();
    let export = warp::path!("api" / "export")
        .and(warp::get())
        .and(with.clone())
        .and(query)
        .and_then(api_export);
    let gaps = warp::path!("api" / "gaps")
        .and(warp::get())
        .and(with.clone())
        .and_then(api_gaps);
    let health = warp::path!("healthz")
        .and(warp::get())
        .and(with.clone())
        .and_then(healthz);
    let not_found = warp::any().map(|| {
        reply::with_status(
            reply::json(&json!({ "error": "not found" })),
            StatusCode::NOT_FOUND,
        )
        .into_response()
    });
    // Grouped and boxed: one long chain of `or`s makes a type too deep to compile in
    // release builds.
    let agents_html = warp::path!("agents")
        .and(warp::get())
        .and(with.clone())
        .and_then(agents_page);
    let pages = index.or(device).unify().or(agents_html).unify().boxed();
    let api = devices
        .or(latest)
        .unify()
        .or(series)
        .unify()
        .or(gaps)
        .unify()
        .or(utilization)
        .unify()
        .or(alarms)
        .unify()
        .or(export)
        .unify()
        .boxed();
    let operations = health.or(metrics_route).unify().boxed();
    crate::auth::gate(tokens.clone())
        .or(crate::csrf::guard(tokens))
        .unify()
        .or(refuse_nul())
        .unify()
        .or(pages)
        .unify()
        .or(agents_api)
        .unify()
        .or(crate::assets::routes())
        .unify()
        .or(ws)
        .unify()
        .or(api)
        .unify()
        .or(operations)
        .unify()
        .or(not_found)
        .unify()
        .map(secured)
        .with(warp::log::custom(move |info| {
            if info.path() != "/ws" {
                latency
                    .get_or_create(&vec![("route", crate::metrics::route_of(info.path()))])
                    .observe(info.elapsed().as_secs_f64());
            }
        }))
}

/// `r` with the headers every answer carries: the [`CSP`], `X-Content-Type-Options:
/// nosniff` (a JSON or text answer is never run as a script or a style),
/// `Referrer-Policy: no-referrer` (a page's address, which may hold `?token=` for a
/// moment or a device's name, never leaves in a `Referer`), and `Cache-Control:
/// no-store` unless the route chose (the assets do): pages and API answers hold plant
/// data that a shared cache must not keep.
fn secured(mut r: Response) -> Response {
    let headers = r.headers_mut();
    headers.insert("content-security-policy", HeaderValue::from_static(CSP));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    if !headers.contains_key("cache-control") {
        headers.insert("cache-control", HeaderValue::from_static("no-store"));
    }
    r
}

/// Answers 400 to a request with a NUL character in a query parameter (its name or
/// value, once percent-decoded) or in the key of its `cursor`; rejects every other
/// request so that the routes answer. PostgreSQL's text cannot hold NUL: refused here,
/// once for every route, rather than as a store failure (503) after.
fn refuse_nul() -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    warp::query::raw().and_then(|query: String| async move {
        let mut nul = None;
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            let in_cursor = name == "cursor"
                && Cursor::from_string(value.as_ref())
                    .key()
                    .is_ok_and(|parts| parts.iter().any(|p| p.contains('\0')));
            if name.contains('\0') || value.contains('\0') || in_cursor {
                nul = Some(name.into_owned());
                break;
            }
        }
        match nul {
            Some(name) => Ok(ApiError::bad_request(format!(
                "the query parameter '{}' holds a NUL character",
                name.replace('\0', "\\0")
            ))
            .into_response()),
            None => Err(warp::reject()),
        }
    })
}
