//! The JSON API: `/api/devices`, `/api/latest`, `/api/series`, `/api/utilization`,
//! `/api/alarms` and `/api/gaps`. Each handler takes its validated request and reads the
//! store ([`factorydash_store::Store`]); `/api/export` is in [`super::export`] and
//! `/api/agents` in [`super::admin`].

use std::borrow::Cow;
use std::sync::Arc;

use chrono::Utc;
use factorydash_core::{Category, Cursor, TimeWindow};
use serde::Deserialize;
use serde_json::json;
use warp::reply::{self, Reply, Response};

use super::errors::ApiError;
use super::pages::LatestQuery;
use super::params::{self, FromQuery};
use crate::page;
use crate::redact::redacted;
use crate::state::App;

/// The device a request names ([`crate::devices::resolve`]; the agents followed now take
/// a shared name).
///
/// # Errors
/// The store's; 404 or 409 when the name resolves to no single device.
pub(super) async fn resolve_device(
    app: &App,
    name: &str,
    agent: Option<&str>,
) -> Result<factorydash_core::DeviceInfo, ApiError> {
    let devices = app.devices().await?;
    let device = crate::devices::resolve(&devices, name, agent, |a| app.is_followed(a))?;
    Ok(device.clone())
}

/// `/api/devices`: every device's model (its agent's credentials redacted) and status.
pub async fn devices(app: Arc<App>) -> Result<Response, ApiError> {
    let devices = app.devices().await?;
    let mut statuses = crate::devices::statuses(&*app.store, &devices).await?;
    app.tools.annotate_all(&devices, &mut statuses);
    let out: Vec<_> = devices
        .iter()
        .zip(&statuses)
        .map(|(d, s)| {
            let mut device = json!(d);
            device["agent"] = json!(redacted(&d.agent));
            json!({ "device": device, "status": s })
        })
        .collect();
    Ok(reply::json(&out).into_response())
}

/// `/api/latest`: a page of latest values (100 unless `limit` says), with their units and
/// component.
pub async fn latest(app: Arc<App>, q: LatestQuery<100>) -> Result<Response, ApiError> {
    let page = q.read(&app).await?;
    let devices = app.devices().await?;
    Ok(reply::json(&json!({
        "items": page::rows(page.items, &devices),
        "next": page.next,
    }))
    .into_response())
}

/// What the client sent to `/api/series`.
#[derive(Debug, Deserialize)]
pub struct RawSeriesQuery {
    device: Option<String>,
    agent: Option<String>,
    #[serde(rename = "dataItemId")]
    data_item_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<String>,
    #[serde(rename = "maxPoints")]
    max_points: Option<String>,
}

/// `/api/series?device=&agent=&dataItemId=&from=&to=&limit=&maxPoints=`: `agent` (as the
/// server shows it) only where several agents serve a device of that name.
#[derive(Debug)]
pub struct SeriesQuery {
    device: String,
    agent: Option<String>,
    item: String,
    window: TimeWindow,
    /// At most this many observations (1..=100,000; 10,000 by default).
    limit: usize,
    /// Downsampled to about this many points (3..=100,000), or every observation.
    max_points: Option<usize>,
}

impl FromQuery for SeriesQuery {
    type Raw = RawSeriesQuery;

    fn validate(q: RawSeriesQuery) -> Result<Self, ApiError> {
        let device = params::required(q.device, "device")?;
        let item = params::required(q.data_item_id, "dataItemId")?;
        let window = params::window(q.from, q.to, chrono::Duration::hours(1))?;
        let limit = params::number(q.limit, "limit", 1..=100_000, 10_000)?;
        let max_points = match q.max_points {
            None => None,
            some => Some(params::number(some, "maxPoints", 3..=100_000, 0)?),
        };
        Ok(SeriesQuery {
            device,
            agent: params::text(q.agent),
            item,
            window,
            limit,
            max_points,
        })
    }
}

/// `/api/series`: one data item's observations in a window, or, with `maxPoints`, its
/// numeric values downsampled for a chart.
pub async fn series(app: Arc<App>, q: SeriesQuery) -> Result<Response, ApiError> {
    let SeriesQuery {
        device,
        agent,
        item,
        window,
        limit,
        max_points,
    } = q;
    let key = resolve_device(&app, &device, agent.as_deref()).await?.key();
    let agent = redacted(&key.agent);
    let Some(max_points) = max_points else {
        let items = app.store.series(&key, &item, &window, limit).await?;
        return Ok(reply::json(&json!({
            "device": device, "agent": agent, "dataItemId": item, "from": window.from(), "to": window.to(), "items": items,
        }))
        .into_response());
    };
    // Downsampled for a chart, in the store (in the database on PostgreSQL): numeric
    // values only, in max_points / 4 buckets; the line is their M4 points (at most four
    // a bucket), the band their min/max/mean.
    let band = app
        .store
        .buckets(&key, &item, &window, (max_points / 4).max(1))
        .await?;
    let line = factorydash_core::downsample::m4_line(&band);
    let numeric: usize = band.iter().map(|b| b.count).sum();
    Ok(reply::json(&json!({
        "device": device, "agent": agent, "dataItemId": item, "from": window.from(), "to": window.to(),
        "numeric": numeric, "points": line, "buckets": band,
    }))
    .into_response())
}

/// The most state intervals or alarm episodes one answer holds, and the default.
const MAX_INTERVALS: usize = 10_000;
const DEFAULT_INTERVALS: usize = 1_000;

/// What the client sent to `/api/utilization`.
#[derive(Debug, Deserialize)]
pub struct RawUtilizationQuery {
    device: Option<String>,
    agent: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// `/api/utilization?device=&agent=&from=&to=&type=&cursor=&limit=`.
#[derive(Debug)]
pub struct UtilizationQuery {
    device: String,
    agent: Option<String>,
    /// A state-like Event type (upper case).
    kind: String,
    limit: usize,
    after: Option<chrono::DateTime<Utc>>,
    window: TimeWindow,
}

impl FromQuery for UtilizationQuery {
    type Raw = RawUtilizationQuery;

    fn validate(q: RawUtilizationQuery) -> Result<Self, ApiError> {
        let device = params::required(q.device, "device")?;
        let kind = q
            .kind
            .as_deref()
            .unwrap_or("EXECUTION")
            .to_ascii_uppercase();
        if !factorydash_core::states::is_state_type(&kind) {
            return Err(ApiError::bad_request(format!(
                "type must be an Event with a controlled vocabulary (one of {}), got '{kind}'",
                factorydash_core::states::STATE_TYPES.join(", ")
            )));
        }
        let limit = params::number(q.limit, "limit", 1..=MAX_INTERVALS, DEFAULT_INTERVALS)?;
        let after = match params::text(q.cursor) {
            None => None,
            Some(c) => {
                Some(interval_cursor(&c).ok_or_else(|| ApiError::bad_request("invalid cursor"))?)
            }
        };
        let window = params::window(q.from, q.to, chrono::Duration::hours(1))?;
        Ok(UtilizationQuery {
            device,
            agent: params::text(q.agent),
            kind,
            limit,
            after,
            window,
        })
    }
}

/// `/api/utilization`: the intervals of a state-like Event data item (a controlled
/// vocabulary: `EXECUTION` by default, `AVAILABILITY`, `CONTROLLER_MODE`, …; anything else
/// is refused) over a window (default the last hour) and the share of time in each state
/// over the whole window (share ACTIVE of `EXECUTION` is the utilization). Computed in the
/// store, so an answer costs the same memory whatever the window holds: the intervals come
/// a page at a time (`limit`, default 1,000, at most 10,000; pass `next` back as `cursor`).
pub async fn utilization(app: Arc<App>, q: UtilizationQuery) -> Result<Response, ApiError> {
    let UtilizationQuery {
        device,
        agent,
        kind,
        limit,
        after,
        window,
    } = q;
    let found = resolve_device(&app, &device, agent.as_deref()).await?;
    let item = found
        .data_items
        .iter()
        .find(|i| i.kind == kind)
        .ok_or_else(|| {
            ApiError::bad_request(format!("device '{device}' has no {kind} data item"))
        })?;
    let summary = app
        .store
        .state_summary(&found.key(), &item.id, &window, after, limit)
        .await?;
    let agent = redacted(&found.agent);
    let next = summary
        .next
        .map(|t| Cursor::from_key(&[t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)]));
    Ok(reply::json(&json!({
        "device": device, "agent": agent, "dataItemId": item.id, "type": kind, "from": window.from(), "to": window.to(),
        "shares": summary.shares, "intervals": summary.intervals, "next": next,
    }))
    .into_response())
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

/// What the client sent to `/api/alarms`.
#[derive(Debug, Deserialize)]
pub struct RawAlarmsQuery {
    device: Option<String>,
    agent: Option<String>,
    limit: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// `/api/alarms?device=&agent=&from=&to=&limit=`.
#[derive(Debug)]
pub struct AlarmsQuery {
    /// Only devices of this name (at every agent unless `agent` says).
    device: Option<String>,
    /// Only this agent's devices (its URL as the server shows it).
    agent: Option<String>,
    limit: usize,
    window: TimeWindow,
}

impl FromQuery for AlarmsQuery {
    type Raw = RawAlarmsQuery;

    fn validate(q: RawAlarmsQuery) -> Result<Self, ApiError> {
        Ok(AlarmsQuery {
            device: params::text(q.device),
            agent: params::text(q.agent),
            limit: params::number(q.limit, "limit", 1..=MAX_INTERVALS, DEFAULT_INTERVALS)?,
            window: params::window(q.from, q.to, chrono::Duration::hours(24))?,
        })
    }
}

/// `/api/alarms`: the Condition episodes (each Warning or Fault with its device, agent,
/// start, end, duration in seconds, native code and message) that were active at any time
/// in a window (default the last 24 hours), of the devices of one name (`device`), of one
/// agent (`agent`), of both or of all, oldest first; those with no end are
/// still active. Folded from the store 10,000 observations at a time, keeping every active
/// episode and the newest `limit` ended ones (default 1,000, at most 10,000; `omitted`
/// counts the older ended ones left out), so an answer costs the same memory whatever the
/// window holds.
pub async fn alarms(app: Arc<App>, q: AlarmsQuery) -> Result<Response, ApiError> {
    let AlarmsQuery {
        device,
        agent,
        limit,
        window,
    } = q;
    let devices = app.devices().await?;
    // A listing: `device` keeps every agent's devices of that name, `agent` one agent's.
    let chosen: Vec<&factorydash_core::DeviceInfo> =
        crate::devices::matching(&devices, device.as_deref(), agent.as_deref()).collect();
    if chosen.is_empty() && (device.is_some() || agent.is_some()) {
        return Err(ApiError::not_found(match (&device, &agent) {
            (Some(d), Some(a)) => format!("no device named '{d}' at agent {a}"),
            (Some(d), None) => format!("no device named '{d}'"),
            _ => format!("no agent {}", agent.as_deref().unwrap_or_default()),
        }));
    }
    let filtered = device.is_some() || agent.is_some();
    let wanted: std::collections::HashSet<factorydash_core::DeviceKey> =
        chosen.iter().map(|d| d.key()).collect();
    // One device: the store reads only its conditions; several: all, those kept here.
    let one = match chosen.as_slice() {
        [d] => Some(d.key()),
        _ => None,
    };
    let mut episodes = factorydash_core::episodes::Episodes::with_limit(limit);
    // What was active when the window began: the last observation before it of each
    // Condition data item.
    for d in devices
        .iter()
        .filter(|d| !filtered || wanted.contains(&d.key()))
    {
        for item in d
            .data_items
            .iter()
            .filter(|i| i.category == Category::Condition)
        {
            if let Some(o) = app
                .store
                .last_before(&d.key(), &item.id, window.from())
                .await?
            {
                episodes.observe_from(&redacted(&d.agent), &o);
            }
        }
    }
    let mut after: Option<(chrono::DateTime<Utc>, u64, String)> = None;
    loop {
        let chunk = app
            .store
            .conditions(
                one.as_ref(),
                &window,
                after.as_ref().map(|(t, s, a)| (*t, *s, a.as_str())),
                ALARMS_CHUNK,
            )
            .await?;
        for o in &chunk {
            if filtered && one.is_none() && !wanted.contains(&o.device_key()) {
                continue;
            }
            episodes.observe_from(&redacted(&o.agent), &o.observation);
        }
        match chunk.last() {
            Some(last) if chunk.len() == ALARMS_CHUNK => {
                after = Some((
                    last.observation.timestamp,
                    last.observation.sequence,
                    last.agent.clone(),
                ))
            }
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
            v["durationSeconds"] = json!(seconds);
            v
        })
        .collect();
    let active = episodes.iter().filter(|e| e["ended"].is_null()).count();
    Ok(reply::json(&json!({
        "from": window.from(), "to": window.to(), "active": active, "omitted": omitted, "episodes": episodes,
    }))
    .into_response())
}

/// `/api/gaps`: the recorded gaps, agents' credentials redacted.
pub async fn gaps(app: Arc<App>) -> Result<Response, ApiError> {
    let mut gaps = app.store.gaps().await?;
    for g in &mut gaps {
        if let Cow::Owned(shown) = redacted(&g.agent) {
            g.agent = shown;
        }
    }
    Ok(reply::json(&gaps).into_response())
}
