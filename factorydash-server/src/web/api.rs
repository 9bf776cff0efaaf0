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
use super::export;
use super::pages::LatestQuery;
use super::params::{self, FromQuery};
use crate::accounts::Scope;
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
    scope: &Scope,
    name: &str,
    agent: Option<&str>,
) -> Result<factorydash_core::DeviceInfo, ApiError> {
    let devices = app.devices_for(scope).await?;
    let device = crate::devices::resolve(&devices, name, agent, |a| app.is_followed(a))?;
    Ok(device.clone())
}

/// `/api/devices`: every device's model (its agent's credentials redacted) and status;
/// each data item with its `limits` from the device model (MTConnect Part 2: a DataItem's
/// `Constraints`, a Component's `Specification`s; see
/// [`factorydash_mtconnect::Devices::limits`]): `[{"type": "Maximum", "value": 120,
/// "source": "specification", "specificationId": …, "units": "DEGREE"}, …]`, `[]` for none;
/// and its `record` (display name, cell, description, ideal cycle time; `null` for none).
pub async fn devices(app: Arc<App>, scope: Scope) -> Result<Response, ApiError> {
    let devices = app.devices_for(&scope).await?;
    let mut statuses = crate::devices::statuses(&*app.store, &app.live, &devices).await?;
    app.annotate_all(&devices, &mut statuses);
    let out: Vec<_> = devices
        .iter()
        .zip(&statuses)
        .map(|(d, s)| {
            let mut device = json!(d);
            device["agent"] = json!(redacted(&d.agent));
            // Each data item's limits from the model (Constraints, Specifications),
            // each saying where it came from: `[]` for none.
            let limits = app.limits.of(&d.key());
            if let Some(items) = device["dataItems"].as_array_mut() {
                for item in items {
                    let of = item["id"]
                        .as_str()
                        .and_then(|id| limits.as_ref()?.get(id))
                        .map_or_else(|| json!([]), |l| json!(l));
                    item["limits"] = of;
                }
            }
            let record = app.records.get(&d.agent, &d.name);
            let record = record.as_ref().map(super::records::record_json);
            json!({ "device": device, "status": s, "record": record })
        })
        .collect();
    Ok(reply::json(&out).into_response())
}

/// `/api/latest`: a page of latest values (100 unless `limit` says), with their units and
/// component.
pub async fn latest(
    app: Arc<App>,
    scope: Scope,
    q: LatestQuery<100>,
) -> Result<Response, ApiError> {
    let page = q.read(&app, &scope).await?;
    let devices = app.devices_for(&scope).await?;
    Ok(reply::json(&json!({
        "items": page::rows(page.items, &devices),
        "next": page.next,
    }))
    .into_response())
}

/// A data item a request named ([`params::NamedItem`]), looked up ([`resolve_items`]).
#[derive(Debug, Clone)]
pub(super) struct Item {
    /// Its device.
    pub key: factorydash_core::DeviceKey,
    /// Its device's agent as the server shows it (credentials redacted).
    pub agent: String,
    /// The data item in its device's model (`units`, `category`, `type`, …), or as its
    /// newest observation describes it where the model lacks it.
    pub info: factorydash_core::DataItemInfo,
}

/// The data items a request names, looked up: each device resolved as
/// [`resolve_device`] does, each data item found in its device's model, in the order
/// given; a data item named twice (the same agent, device and `dataItemId`, however the
/// device was named) is taken once, where it was first named.
///
/// A data item the model lacks but the store holds observations of (agents send some
/// they never declared: the NIST GFAgie01 recording's `path_basic_8`) is taken too, as
/// its newest observation describes it (`category`, `type` in its element-name form, no
/// `units`), so that what the latest values list can be charted and exported.
///
/// # Errors
/// The store's; 404 or 409 when a device name resolves to no single device; 404 naming
/// the data item and the device when neither the device's model nor the store knows the
/// data item.
pub(super) async fn resolve_items(
    app: &App,
    scope: &Scope,
    named: &[params::NamedItem],
) -> Result<Vec<Item>, ApiError> {
    let devices = app.devices_for(scope).await?;
    let mut out: Vec<Item> = Vec::with_capacity(named.len());
    for n in named {
        let device = crate::devices::resolve(&devices, &n.device, n.agent.as_deref(), |a| {
            app.is_followed(a)
        })?;
        let key = device.key();
        if out
            .iter()
            .any(|i| i.key == key && i.info.id == n.data_item_id)
        {
            continue;
        }
        let info = match device.data_items.iter().find(|i| i.id == n.data_item_id) {
            Some(info) => info.clone(),
            None => undeclared(app, &key, &n.data_item_id)
                .await?
                .ok_or_else(|| {
                    ApiError::not_found(format!(
                        "device '{}' at agent {} has no data item '{}'",
                        device.name,
                        redacted(&device.agent),
                        n.data_item_id
                    ))
                })?,
        };
        out.push(Item {
            key,
            agent: redacted(&device.agent).into_owned(),
            info,
        });
    }
    Ok(out)
}

/// A data item of `device` its model lacks, as its newest stored observation describes
/// it, if the store holds any.
async fn undeclared(
    app: &App,
    device: &factorydash_core::DeviceKey,
    data_item_id: &str,
) -> Result<Option<factorydash_core::DataItemInfo>, ApiError> {
    // The end of year 9999: after any observation an agent may stamp.
    let end = chrono::DateTime::from_timestamp(253_402_300_799, 0)
        .unwrap_or(chrono::DateTime::<Utc>::MAX_UTC);
    let newest = app.store.last_before(device, data_item_id, end).await?;
    Ok(newest.map(|o| factorydash_core::DataItemInfo {
        id: o.data_item_id,
        name: o.name,
        category: o.category,
        kind: o.kind,
        sub_type: o.sub_type,
        units: None,
        component: String::new(),
        component_id: o.component_id,
        component_name: None,
    }))
}

/// The most observations, or chart points, one `/api/series` answer holds over all its
/// data items.
const MAX_SERIES_ANSWER: usize = 100_000;

/// `/api/series?dataItemId=&device=&agent=&from=&to=&limit=&maxPoints=`: one or several
/// data items ([`params::items`]: `dataItemId` repeated, `device` and `agent` once or
/// paired by position), `agent` (as the server shows it) only where several agents serve
/// a device of that name.
#[derive(Debug)]
pub struct SeriesQuery {
    items: Vec<params::NamedItem>,
    window: TimeWindow,
    /// At most this many observations of each data item (1..=100,000 / data items;
    /// 10,000 by default, or that most if smaller).
    limit: usize,
    /// Downsampled to about this many points each (3..=100,000 / data items), or every
    /// observation.
    max_points: Option<usize>,
}

/// `value` (`name` in the request) for each of `n` data items, so that an answer holds at
/// most [`MAX_SERIES_ANSWER`] of them in all.
fn per_item(value: usize, name: &str, n: usize) -> Result<usize, ApiError> {
    let most = MAX_SERIES_ANSWER / n.max(1);
    if value > most {
        return Err(ApiError::bad_request(format!(
            "{name} is per data item and an answer holds at most {MAX_SERIES_ANSWER} in all: \
             with {n} data items, {name} must be at most {most}, got {value}"
        )));
    }
    Ok(value)
}

impl FromQuery for SeriesQuery {
    type Raw = params::QueryPairs;

    fn validate(q: params::QueryPairs) -> Result<Self, ApiError> {
        let items = params::items(&q)?;
        let n = items.len();
        let window = params::window(q.one("from")?, q.one("to")?, chrono::Duration::hours(1))?;
        let default = 10_000.min(MAX_SERIES_ANSWER / n);
        let limit = params::number(q.one("limit")?, "limit", 1..=MAX_SERIES_ANSWER, default)?;
        let max_points = match q.one("maxPoints")? {
            None => None,
            some => Some(params::number(some, "maxPoints", 3..=MAX_SERIES_ANSWER, 0)?),
        };
        Ok(SeriesQuery {
            items,
            window,
            limit: per_item(limit, "limit", n)?,
            max_points: max_points
                .map(|m| per_item(m, "maxPoints", n))
                .transpose()?,
        })
    }
}

/// `/api/series`: the observations of one or several data items (of one or several
/// devices) in a window (UTC; default the last hour), or, with `maxPoints`, each one's
/// values downsampled for a chart. Answers
/// `{"from", "to", "series": [...]}`, one object in `series` per data item, in the order
/// named (a data item named twice is answered once), each with its `device`, `agent`,
/// `dataItemId`, `units` (the device model's, `null` if none), `category` and `type`, and:
///
/// - without `maxPoints`: `items`, its observations (oldest first, at most `limit`);
/// - with `maxPoints`: `buckets`, its observations summarised in `maxPoints / 4` time
///   buckets by the store ([`factorydash_store::Store::buckets`]: `count` numbers and
///   `unavailable` UNAVAILABLEs, `min`, `max`, `mean`, `minAt`, `maxAt`, and `first` and
///   `last` as `[time, value]`), `points`, the M4 line through them (`[time, value]`,
///   value `null` where the data item was UNAVAILABLE: the line breaks there), and
///   `numeric`, how many numbers the window holds.
///
/// # Errors
/// 404 for a device or a data item of its model that does not exist (naming it), 409 for
/// a device name several agents serve; 503 when the store fails.
pub async fn series(app: Arc<App>, scope: Scope, q: SeriesQuery) -> Result<Response, ApiError> {
    let SeriesQuery {
        items,
        window,
        limit,
        max_points,
    } = q;
    let items = resolve_items(&app, &scope, &items).await?;
    let mut series = Vec::with_capacity(items.len());
    for item in &items {
        let mut answer = json!({
            "device": item.key.device, "agent": item.agent, "dataItemId": item.info.id,
            "units": item.info.units, "category": item.info.category, "type": item.info.kind,
        });
        match max_points {
            None => {
                let observations = app
                    .store
                    .series(&item.key, &item.info.id, &window, limit)
                    .await?;
                answer["items"] = json!(observations);
            }
            Some(max_points) => {
                // Downsampled for a chart, in the store (in the database on PostgreSQL):
                // max_points / 4 buckets; the line is their M4 points (at most four a
                // bucket), the band their min/max/mean.
                let band = app
                    .store
                    .buckets(&item.key, &item.info.id, &window, (max_points / 4).max(1))
                    .await?;
                let line = factorydash_core::downsample::m4_line(&band);
                let numeric: usize = band.iter().map(|b| b.count).sum();
                answer["numeric"] = json!(numeric);
                answer["points"] = json!(line);
                answer["buckets"] = json!(band);
            }
        }
        series.push(answer);
    }
    Ok(reply::json(&json!({
        "from": window.from(), "to": window.to(), "series": series,
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
    format: Option<String>,
}

/// `/api/utilization?device=&agent=&from=&to=&type=&cursor=&limit=&format=json|csv`.
#[derive(Debug)]
pub struct UtilizationQuery {
    device: String,
    agent: Option<String>,
    /// A state-like Event type (upper case).
    kind: String,
    limit: usize,
    after: Option<chrono::DateTime<Utc>>,
    window: TimeWindow,
    /// The intervals as CSV (else the JSON answer).
    csv: bool,
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
            csv: params::csv_format(q.format)?,
        })
    }
}

/// `/api/utilization`: the intervals of a state-like Event data item (a controlled
/// vocabulary: `EXECUTION` by default, `AVAILABILITY`, `CONTROLLER_MODE`, …; anything else
/// is refused) over a window (default the last hour) and the share of time in each state
/// over the whole window (share ACTIVE of `EXECUTION` is the utilization). Computed in the
/// store, so an answer costs the same memory whatever the window holds: the intervals come
/// a page at a time (`limit`, default 1,000, at most 10,000; pass `next` back as `cursor`).
///
/// With `format=csv`, the page's intervals as a CSV download (columns `device`, `agent`,
/// `dataItemId`, `type`, `state`, `from`, `to` (RFC 3339, UTC), `seconds`), named after
/// the device and the window; the next page's cursor, if any, in the `X-Next-Cursor`
/// header. The shares are the JSON answer's only.
pub async fn utilization(
    app: Arc<App>,
    scope: Scope,
    q: UtilizationQuery,
) -> Result<Response, ApiError> {
    let UtilizationQuery {
        device,
        agent,
        kind,
        limit,
        after,
        window,
        csv,
    } = q;
    let found = resolve_device(&app, &scope, &device, agent.as_deref()).await?;
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
    if csv {
        let time =
            |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
        let rows = summary.intervals.iter().map(|i| {
            let seconds = (i.to - i.from).as_seconds_f64();
            vec![
                Cow::from(found.name.as_str()),
                Cow::from(agent.as_ref()),
                Cow::from(item.id.as_str()),
                Cow::from(kind.as_str()),
                Cow::from(i.state.as_str()),
                Cow::from(time(i.from)),
                Cow::from(time(i.to)),
                Cow::from(seconds.to_string()),
            ]
        });
        let file = export::file_name(&format!("utilization_{}", found.name), &window, "csv");
        let mut answer = export::csv_answer(
            &[
                "device",
                "agent",
                "dataItemId",
                "type",
                "state",
                "from",
                "to",
                "seconds",
            ],
            rows,
            &file,
        );
        if let Some(next) = next.and_then(|c| warp::http::HeaderValue::from_str(c.as_str()).ok()) {
            answer.headers_mut().insert("x-next-cursor", next);
        }
        return Ok(answer);
    }
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
    format: Option<String>,
}

/// `/api/alarms?device=&agent=&from=&to=&limit=&format=json|csv`.
#[derive(Debug)]
pub struct AlarmsQuery {
    /// Only devices of this name (at every agent unless `agent` says).
    device: Option<String>,
    /// Only this agent's devices (its URL as the server shows it).
    agent: Option<String>,
    limit: usize,
    window: TimeWindow,
    /// The episodes as CSV (else the JSON answer).
    csv: bool,
}

impl FromQuery for AlarmsQuery {
    type Raw = RawAlarmsQuery;

    fn validate(q: RawAlarmsQuery) -> Result<Self, ApiError> {
        Ok(AlarmsQuery {
            device: params::text(q.device),
            agent: params::text(q.agent),
            limit: params::number(q.limit, "limit", 1..=MAX_INTERVALS, DEFAULT_INTERVALS)?,
            window: params::window(q.from, q.to, chrono::Duration::hours(24))?,
            csv: params::csv_format(q.format)?,
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
///
/// With `format=csv`, the same episodes as a CSV download (columns `device`, `agent`,
/// `dataItemId`, `type`, `level`, `nativeCode`, `nativeSeverity`, `message`, `began`,
/// `beganSequence`, `ended` (empty while active), `endedBy`, `durationSeconds`; times RFC
/// 3339, UTC), named after the device (or `all-devices`) and the window; how many were
/// left out in the `X-Omitted` header.
pub async fn alarms(app: Arc<App>, scope: Scope, q: AlarmsQuery) -> Result<Response, ApiError> {
    let AlarmsQuery {
        device,
        agent,
        limit,
        window,
        csv,
    } = q;
    let devices = app.devices_for(&scope).await?;
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
    // Out of scope devices are never read: a scoped request keeps its own only.
    let filtered = device.is_some() || agent.is_some() || !scope.sees_everything();
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
                one.as_ref().map(std::slice::from_ref),
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
    if csv {
        let time =
            |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
        let rows = episodes.iter().map(|e| {
            let seconds = e.duration_seconds(now.min(window.to()));
            vec![
                Cow::from(e.device.as_str()),
                Cow::from(e.agent.as_str()),
                Cow::from(e.data_item_id.as_str()),
                Cow::from(e.kind.as_str()),
                Cow::from(e.level.as_str()),
                Cow::from(e.native_code.as_deref().unwrap_or("")),
                Cow::from(e.native_severity.as_deref().unwrap_or("")),
                Cow::from(e.message.as_str()),
                Cow::from(time(e.began)),
                Cow::from(e.began_sequence.to_string()),
                Cow::from(e.ended.map(time).unwrap_or_default()),
                Cow::from(e.ended_by.map_or("", |l| l.as_str())),
                Cow::from(seconds.to_string()),
            ]
        });
        let what = format!("alarms_{}", device.as_deref().unwrap_or("all-devices"));
        let mut answer = export::csv_answer(
            &[
                "device",
                "agent",
                "dataItemId",
                "type",
                "level",
                "nativeCode",
                "nativeSeverity",
                "message",
                "began",
                "beganSequence",
                "ended",
                "endedBy",
                "durationSeconds",
            ],
            rows,
            &export::file_name(&what, &window, "csv"),
        );
        answer
            .headers_mut()
            .insert("x-omitted", warp::http::HeaderValue::from(omitted));
        return Ok(answer);
    }
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
pub async fn gaps(app: Arc<App>, scope: Scope) -> Result<Response, ApiError> {
    let mut gaps = app.store.gaps().await?;
    if !scope.sees_everything() {
        let devices = app.devices().await?;
        gaps.retain(|g| scope.sees_agent(&g.agent, &devices));
    }
    for g in &mut gaps {
        if let Cow::Owned(shown) = redacted(&g.agent) {
            g.agent = shown;
        }
    }
    Ok(reply::json(&gaps).into_response())
}
