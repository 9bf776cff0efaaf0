//! `/api/report` and `/api/oee` (JSON), `/api/downtime` (JSON), `/report` (a printable
//! page, no JavaScript), `/report.csv` and `/downtime.csv`: OEE, its factors, utilization
//! and the downtime Pareto per device, cell and plant over a shift, a day, a week, a
//! month or any window ([`crate::report`]).

use std::borrow::Cow;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use factorydash_core::downtime::Pareto;
use factorydash_core::oee::{duration_text, Factor, Oee};
use maud::{html, Markup, DOCTYPE};
use serde::{Deserialize, Serialize};
use warp::http::StatusCode;
use warp::reply::{self, Reply, Response};

use super::errors::ApiError;
use super::params::FromQuery;
use crate::accounts::Scope;
use crate::report::{self, Report};
use crate::state::App;

/// The longest window a report covers: 400 days.
const MAX_WINDOW_DAYS: i64 = 400;

/// A report's window: `period` (`shift`, `day`, `week`, `month`; the one holding `at`,
/// by default now, in the plant's time zone) or `from` and `to` (RFC 3339).
#[derive(Debug, Clone)]
pub struct ReportQuery {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    period: String,
    shift: Option<String>,
}

/// What a client sends.
#[derive(Debug, Deserialize)]
pub struct RawReportQuery {
    period: Option<String>,
    at: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

fn time(name: &str, text: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            ApiError::bad_request(format!(
                "{name} must be an RFC 3339 time, e.g. 2026-12-07T06:00:00Z"
            ))
        })
}

impl FromQuery for ReportQuery {
    type Raw = RawReportQuery;

    fn validate(raw: RawReportQuery) -> Result<Self, ApiError> {
        let calendar = report::calendar();
        match (raw.from.as_deref(), raw.to.as_deref()) {
            (Some(f), Some(t)) => {
                let (from, to) = (time("from", f)?, time("to", t)?);
                if to <= from {
                    return Err(ApiError::bad_request("to must be after from"));
                }
                if to - from > Duration::days(MAX_WINDOW_DAYS) {
                    return Err(ApiError::bad_request(format!(
                        "a report covers at most {MAX_WINDOW_DAYS} days"
                    )));
                }
                Ok(ReportQuery {
                    from,
                    to,
                    period: "custom".into(),
                    shift: None,
                })
            }
            (None, None) => {
                let period = raw.period.unwrap_or_else(|| "shift".into());
                let at = match raw.at.as_deref() {
                    Some(a) => time("at", a)?,
                    None => Utc::now(),
                };
                let (from, to) = calendar.period(&period, at).ok_or_else(|| {
                    ApiError::bad_request("period must be shift, day, week or month")
                })?;
                let shift = (period == "shift")
                    .then(|| calendar.shift_at(at).map(|s| s.name))
                    .flatten();
                Ok(ReportQuery {
                    from,
                    to,
                    period,
                    shift,
                })
            }
            _ => Err(ApiError::bad_request("give both from and to, or neither")),
        }
    }
}

/// Reports computed at once; more wait up to [`REPORT_WAIT`], then get 503: a report's
/// cost grows with its window's planned ranges and the devices, so requests may not
/// stack up.
static REPORTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// How long a report waits for its turn.
const REPORT_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// One of the reports' turns, waited for up to [`REPORT_WAIT`].
pub(super) async fn turn() -> Result<tokio::sync::SemaphorePermit<'static>, ApiError> {
    tokio::time::timeout(REPORT_WAIT, REPORTS.acquire())
        .await
        .map_err(|_| ApiError::unavailable("reports are busy; try again in a moment"))?
        .map_err(|_| ApiError::unavailable("reports are closed"))
}

/// The report of `q` for `scope`, in its turn; with the devices' state timelines when
/// `timeline` (the page and the JSON report).
async fn computed(
    app: &App,
    scope: &Scope,
    q: &ReportQuery,
    timeline: bool,
) -> Result<Report, ApiError> {
    let _turn = turn().await?;
    Ok(report::report(app, scope, q.from, q.to, q.shift.clone(), timeline).await?)
}

/// `GET /api/report`: the report as JSON, with the devices' state timelines.
pub async fn api(app: Arc<App>, scope: Scope, q: ReportQuery) -> Result<Response, ApiError> {
    let r = computed(&app, &scope, &q, true).await?;
    Ok(reply::json(&r).into_response())
}

/// `GET /api/oee`: the report as JSON without the timelines (two store questions,
/// whatever the window: what integrations poll).
pub async fn api_oee(app: Arc<App>, scope: Scope, q: ReportQuery) -> Result<Response, ApiError> {
    let r = computed(&app, &scope, &q, false).await?;
    Ok(reply::json(&r).into_response())
}

/// A group's downtime, for `/api/downtime`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GroupDowntime<'r> {
    name: &'r str,
    line: Option<&'r str>,
    devices: usize,
    downtime: &'r Pareto,
}

/// A device's downtime, for `/api/downtime`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DeviceDowntime<'r> {
    agent: &'r str,
    device: &'r str,
    display_name: Option<&'r str>,
    cell: Option<&'r str>,
    planned_seconds: f64,
    run_seconds: f64,
    downtime: &'r Pareto,
}

/// What `/api/downtime` answers: the report's downtime, with its window.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DowntimeAnswer<'r> {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    until: DateTime<Utc>,
    time_zone: &'r str,
    shift: Option<&'r str>,
    planned_seconds: f64,
    plant: GroupDowntime<'r>,
    cells: Vec<GroupDowntime<'r>>,
    devices: Vec<DeviceDowntime<'r>>,
}

fn group_downtime(g: &report::GroupReport) -> GroupDowntime<'_> {
    GroupDowntime {
        name: &g.name,
        line: g.line.as_deref(),
        devices: g.devices,
        downtime: &g.downtime,
    }
}

/// `GET /api/downtime`: the downtime Pareto per device, cell and plant (the numbers
/// `/api/report` holds).
pub async fn downtime_api(
    app: Arc<App>,
    scope: Scope,
    q: ReportQuery,
) -> Result<Response, ApiError> {
    let r = computed(&app, &scope, &q, false).await?;
    let answer = DowntimeAnswer {
        from: r.from,
        to: r.to,
        until: r.until,
        time_zone: &r.time_zone,
        shift: r.shift.as_deref(),
        planned_seconds: r.planned_seconds,
        plant: group_downtime(&r.plant),
        cells: r.cells.iter().map(group_downtime).collect(),
        devices: r
            .devices
            .iter()
            .map(|d| DeviceDowntime {
                agent: &d.agent,
                device: &d.device,
                display_name: d.display_name.as_deref(),
                cell: d.cell.as_deref(),
                planned_seconds: d.oee.planned_seconds,
                run_seconds: d.oee.run_seconds,
                downtime: &d.downtime,
            })
            .collect(),
    };
    Ok(reply::json(&answer).into_response())
}

/// `GET /downtime.csv`: a row per cause of each device, then of each cell and the plant.
pub async fn downtime_csv(
    app: Arc<App>,
    scope: Scope,
    q: ReportQuery,
) -> Result<Response, ApiError> {
    let r = computed(&app, &scope, &q, false).await?;
    let mut rows: Vec<Vec<Cow<'_, str>>> = Vec::new();
    let mut add = |level: &'static str, agent: &str, device: &str, cell: &str, p: &Pareto| {
        for l in &p.by_time {
            rows.push(vec![
                level.into(),
                agent.to_owned().into(),
                device.to_owned().into(),
                cell.to_owned().into(),
                l.cause.clone().into(),
                format!("{:.0}", l.seconds).into(),
                l.stops.to_string().into(),
                format!("{:.4}", l.share).into(),
            ]);
        }
    };
    for d in &r.devices {
        add(
            "device",
            &d.agent,
            &d.device,
            d.cell.as_deref().unwrap_or(""),
            &d.downtime,
        );
    }
    add("plant", "", "", &r.plant.name, &r.plant.downtime);
    for g in &r.cells {
        add("cell", "", "", &g.name, &g.downtime);
    }
    let file = format!("factorydash-downtime-{}.csv", r.from.format("%Y%m%dT%H%MZ"));
    Ok(super::export::csv_answer(
        &[
            "level", "agent", "device", "cell", "cause", "seconds", "stops", "share",
        ],
        rows,
        &file,
    ))
}

fn percent(f: &Factor) -> String {
    f.value
        .map_or_else(|| "—".to_owned(), |v| format!("{:.1} %", v * 100.0))
}

fn factor(label: &str, f: &Factor) -> Markup {
    html! { td data-label=(label) title=(f.how) { span { (percent(f)) br; small .muted { (f.how) } } } }
}

/// A downtime Pareto as a table: cause, time, share (a bar), cumulative share, stops.
fn pareto_table(caption: &str, p: &Pareto) -> Markup {
    pareto_table_by(caption, "Cause", p)
}

/// [`pareto_table`] with `head` over the rows' names (a cause, a reason).
fn pareto_table_by(caption: &str, head: &str, p: &Pareto) -> Markup {
    html! {
        table .oee .pareto {
            caption { (caption) ": " (duration_text(p.seconds)) " lost, " (p.stops) " stops" }
            thead { tr { th { (head) } th { "Time" } th { "Share" } th { "Cumulative" } th { "Stops" } } }
            tbody {
                @for l in &p.by_time {
                    tr {
                        th scope="row" { (l.cause) }
                        td data-label="Time" { (duration_text(l.seconds)) }
                        td data-label="Share" {
                            meter min="0" max="1" value=(format!("{:.4}", l.share)) {}
                            " " (format!("{:.1} %", l.share * 100.0))
                        }
                        td data-label="Cumulative" { (format!("{:.1} %", l.cumulative * 100.0)) }
                        td data-label="Stops" { (l.stops) }
                    }
                }
                @if p.by_time.is_empty() {
                    tr { td colspan="5" { "No downtime in planned time." } }
                }
            }
        }
    }
}

/// The stop list of a report's device: the report's window, or its last
/// [`factorydash_store::MAX_STOP_WINDOW`].
fn stops_link(r: &Report, d: &report::DeviceReport) -> String {
    let from = r.from.max(r.until - factorydash_store::MAX_STOP_WINDOW);
    let to = r.until.max(from + Duration::minutes(1));
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("device", &d.device)
        .append_pair("agent", &d.agent)
        .append_pair("from", &from.to_rfc3339())
        .append_pair("to", &to.to_rfc3339())
        .finish();
    format!("/stops?{query}")
}

/// A device's three largest causes, for its row.
fn top_causes(p: &Pareto) -> Markup {
    html! {
        @for l in p.by_time.iter().take(3) {
            span .share { (l.cause) " " (duration_text(l.seconds)) @if l.stops > 0 { " (" (l.stops) "×)" } } " "
        }
        @if p.by_time.is_empty() { "—" }
    }
}

fn page(r: &Report, period: &str) -> String {
    let title = match &r.shift {
        Some(s) => format!("Shift {s}"),
        None => format!("{} report", period[..1].to_uppercase() + &period[1..]),
    };
    let tz: chrono_tz::Tz = r.time_zone.parse().unwrap_or(chrono_tz::UTC);
    let local = |t: DateTime<Utc>| t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string();
    let at = r.from.to_rfc3339();
    // The plant, then its cells where the plant is laid out in cells.
    let laid_out = r.cells.iter().any(|c| c.name != "Unassigned");
    let groups: Vec<&crate::report::GroupReport> = std::iter::once(&r.plant)
        .chain(r.cells.iter().filter(|_| laid_out))
        .collect();
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · factorydash" }
                script src=(crate::assets::url("theme.js")) {}
                link rel="stylesheet" href=(crate::assets::url("app.css"));
                link rel="stylesheet" href=(crate::assets::url("report.css"));
            }
            body .report {
                header .no-print {
                    h1 { a href="/" { "factorydash" } " › Reports" }
                    nav .jump aria-label="Periods" {
                        @for p in ["shift", "day", "week", "month"] {
                            a href={ "/report?period=" (p) } aria-current=[(p == period).then_some("page")] { (p) }
                        }
                        a href={ "/report.csv?from=" (r.from.to_rfc3339().replace('+', "%2B")) "&to=" (r.to.to_rfc3339().replace('+', "%2B")) } { "CSV" }
                        a href={ "/downtime.csv?from=" (at.replace('+', "%2B")) "&to=" (r.to.to_rfc3339().replace('+', "%2B")) } { "Downtime CSV" }
                        a href={ "/api/report?from=" (at.replace('+', "%2B")) "&to=" (r.to.to_rfc3339().replace('+', "%2B")) } { "JSON" }
                    }
                }
                main {
                    h2 { (title) }
                    p .muted {
                        (local(r.from)) " – " (local(r.to)) " (" (r.time_zone) ")"
                        @if r.until < r.to { ", so far: until " (local(r.until)) }
                        ". Planned time " (duration_text(r.planned_seconds))
                        @if !r.shifts { " (no shift calendar: every minute is planned)" }
                        ". OEE = availability × performance × quality (ISO 22400-2); — is not reported."
                    }
                    table .oee {
                        thead { tr { th { "" } th { "Devices" } th { "OEE" } th { "Availability" } th { "Performance" } th { "Quality" } th { "Run" } th { "No data" } th { "Parts" } } }
                        tbody {
                            @for g in groups.iter() {
                                tr .group {
                                    th scope="row" { (g.name) @if let Some(l) = &g.line { " · " (l) } }
                                    td data-label="Devices" { (g.devices) }
                                    (factor("OEE", &g.oee.oee)) (factor("Availability", &g.oee.availability)) (factor("Performance", &g.oee.performance)) (factor("Quality", &g.oee.quality))
                                    td data-label="Run" { (duration_text(g.oee.run_seconds)) }
                                    td data-label="No data" { (duration_text(g.oee.no_data_seconds)) }
                                    td data-label="Parts" { (g.oee.produced.map_or("—".into(), |p| format!("{p:.0}"))) }
                                }
                            }
                        }
                    }
                    h3 { "Downtime" }
                    p .muted { "Planned time not running, by the cause active when each stop began (an emergency stop, else the newest Fault's native code, else the Execution state and a manual ControllerMode); NO DATA is planned time without a known Execution state. The rows add up to planned time minus run time." }
                    @for g in groups.iter() {
                        (pareto_table(&match &g.line { Some(l) => format!("{} · {l}", g.name), None => g.name.clone() }, &g.downtime))
                    }
                    h3 { "Devices" }
                    table .oee {
                        thead { tr { th { "Device" } th { "Cell" } th { "OEE" } th { "Availability" } th { "Performance" } th { "Quality" } th { "Utilization (whole window)" } th { "Fault" } th { "Parts" } th { "Largest stop causes" } } }
                        tbody {
                            @for d in &r.devices {
                                tr {
                                    th scope="row" {
                                        (d.display_name.as_deref().unwrap_or(&d.device))
                                        @if d.display_name.is_some() { br; small .muted { (d.device) } }
                                    }
                                    td data-label="Cell" { (d.cell.as_deref().unwrap_or("—")) }
                                    (factor("OEE", &d.oee.oee)) (factor("Availability", &d.oee.availability)) (factor("Performance", &d.oee.performance)) (factor("Quality", &d.oee.quality))
                                    td data-label="Utilization" {
                                        span {
                                            @for s in &d.utilization {
                                                span .share { (s.state) " " (format!("{:.1} %", s.share * 100.0)) } " "
                                            }
                                        }
                                    }
                                    td data-label="Fault" { (duration_text(d.fault_seconds)) }
                                    td data-label="Parts" { (d.parts.get("ALL").map_or("—".into(), |p| format!("{p:.0}"))) }
                                    td data-label="Stop causes" {
                                        span {
                                            (top_causes(&d.downtime))
                                            a .no-print href=(stops_link(r, d)) { "stops" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    (timelines(r, &local))
                }
            }
        }
    }
    .into_string()
}

/// The devices' state timelines: a bar per device, a segment each coloured by what most
/// of it was, its figures in its title; a legend, and the window's start, middle and end.
fn timelines(r: &Report, local: &dyn Fn(DateTime<Utc>) -> String) -> Markup {
    let drawn = r.devices.iter().any(|d| !d.timeline.is_empty());
    let whole = (r.to - r.from).as_seconds_f64().max(1.0);
    let label = |d: &str| match d {
        "running" => "running",
        "idle" => "idle",
        "stopped" => "stopped",
        _ => "no data",
    };
    html! {
        h3 { "State timeline" }
        @if r.timeline_omitted {
            p .muted { "Drawn for at most " (report::MAX_TIMELINE_DEVICES) " devices; this report has " (r.devices.len()) "." }
        } @else if r.devices.is_empty() {
            p .muted { "No device to draw." }
        } @else if !drawn {
            p .muted { "Nothing to draw yet: the window has no whole minute so far." }
        } @else {
            p .legend {
                @for d in ["running", "idle", "stopped", "no_data"] {
                    span { svg .swatch viewBox="0 0 10 10" aria-hidden="true" { rect class={ "tl-" (d) } width="10" height="10" {} } " " (label(d)) } " "
                }
            }
            table .oee .timelines {
                thead {
                    tr {
                        th { "Device" }
                        th .axis {
                            span { (local(r.from)) }
                            span { (local(r.from + (r.to - r.from) / 2)) }
                            span { (local(r.to)) }
                        }
                    }
                }
                tbody {
                    @for d in &r.devices {
                        tr {
                            th scope="row" { (d.display_name.as_deref().unwrap_or(&d.device)) }
                            td data-label="Timeline" {
                                // SVG: positions are attributes (the page's Content
                                // Security Policy takes no inline style).
                                svg .timeline role="img" aria-label=(timeline_text(d, local))
                                    viewBox="0 0 1000 10" preserveAspectRatio="none" {
                                    @for g in &d.timeline {
                                        rect class={ "tl-" (g.dominant()) }
                                            x=(format!("{:.2}", (g.from - r.from).as_seconds_f64() / whole * 1000.0))
                                            y="0" height="10"
                                            width=(format!("{:.2}", (g.to - g.from).as_seconds_f64() / whole * 1000.0)) {
                                            title { (segment_text(g, local)) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A segment's figures as text: its times and each share of it.
fn segment_text(g: &report::Segment, local: &dyn Fn(DateTime<Utc>) -> String) -> String {
    let total = (g.running + g.idle + g.stopped + g.no_data).max(1e-9);
    format!(
        "{} – {}: running {:.0} %, idle {:.0} %, stopped {:.0} %, no data {:.0} %",
        local(g.from),
        local(g.to),
        g.running / total * 100.0,
        g.idle / total * 100.0,
        g.stopped / total * 100.0,
        g.no_data / total * 100.0
    )
}

/// A device's timeline in words, for screen readers: the share of each state over it.
fn timeline_text(d: &report::DeviceReport, local: &dyn Fn(DateTime<Utc>) -> String) -> String {
    let sum = |f: fn(&report::Segment) -> f64| d.timeline.iter().map(f).sum::<f64>();
    let (run, idle, stop, none) = (
        sum(|g| g.running),
        sum(|g| g.idle),
        sum(|g| g.stopped),
        sum(|g| g.no_data),
    );
    let total = (run + idle + stop + none).max(1e-9);
    match (d.timeline.first(), d.timeline.last()) {
        (Some(a), Some(b)) => format!(
            "{} from {} to {}: running {:.0} %, idle {:.0} %, stopped {:.0} %, no data {:.0} %",
            d.display_name.as_deref().unwrap_or(&d.device),
            local(a.from),
            local(b.to),
            run / total * 100.0,
            idle / total * 100.0,
            stop / total * 100.0,
            none / total * 100.0
        ),
        _ => "no timeline".into(),
    }
}

/// `GET /report`: the report page (printable: no navigation on paper).
pub async fn html_page(app: Arc<App>, scope: Scope, q: ReportQuery) -> Result<Response, ApiError> {
    let r = computed(&app, &scope, &q, true).await?;
    Ok(reply::with_status(reply::html(page(&r, &q.period)), StatusCode::OK).into_response())
}

/// One row of `/report.csv`: what it is, whose, and its figures.
fn csv_row<'r>(
    level: &'r str,
    agent: &'r str,
    device: &'r str,
    cell: &'r str,
    o: &Oee,
) -> Vec<Cow<'r, str>> {
    let value = |f: &Factor| f.value.map_or(String::new(), |v| format!("{v:.4}"));
    let number = |n: Option<f64>| n.map_or(String::new(), |p| format!("{p}"));
    vec![
        level.into(),
        agent.into(),
        device.into(),
        cell.into(),
        value(&o.oee).into(),
        value(&o.availability).into(),
        value(&o.performance).into(),
        value(&o.quality).into(),
        format!("{:.0}", o.planned_seconds).into(),
        format!("{:.0}", o.run_seconds).into(),
        format!("{:.0}", o.no_data_seconds).into(),
        number(o.produced).into(),
        number(o.good).into(),
    ]
}

/// `GET /report.csv`: a row per device, then per cell and the plant.
pub async fn csv(app: Arc<App>, scope: Scope, q: ReportQuery) -> Result<Response, ApiError> {
    let r = computed(&app, &scope, &q, false).await?;
    let mut rows: Vec<Vec<Cow<'_, str>>> = Vec::new();
    for d in &r.devices {
        rows.push(csv_row(
            "device",
            &d.agent,
            &d.device,
            d.cell.as_deref().unwrap_or(""),
            &d.oee,
        ));
    }
    rows.push(csv_row("plant", "", "", &r.plant.name, &r.plant.oee));
    for g in &r.cells {
        rows.push(csv_row("cell", "", "", &g.name, &g.oee));
    }
    let file = format!("factorydash-oee-{}.csv", r.from.format("%Y%m%dT%H%MZ"));
    Ok(super::export::csv_answer(
        &[
            "level",
            "agent",
            "device",
            "cell",
            "oee",
            "availability",
            "performance",
            "quality",
            "planned_s",
            "run_s",
            "no_data_s",
            "produced",
            "good",
        ],
        rows,
        &file,
    ))
}

/// A stop list's request: a device (`device`, and `agent` where two agents have one of
/// that name) and a report's window (`period`/`at` or `from`/`to`), at most
/// [`factorydash_store::MAX_STOP_WINDOW`].
#[derive(Debug, Clone)]
pub struct StopsQuery {
    device: String,
    agent: Option<String>,
    window: ReportQuery,
    /// `reason-saved` after the reason form: the page says so.
    done: Option<String>,
}

/// What a client sends for a stop list.
#[derive(Debug, Deserialize)]
pub struct RawStopsQuery {
    device: Option<String>,
    agent: Option<String>,
    period: Option<String>,
    at: Option<String>,
    from: Option<String>,
    to: Option<String>,
    done: Option<String>,
}

impl FromQuery for StopsQuery {
    type Raw = RawStopsQuery;

    fn validate(raw: RawStopsQuery) -> Result<Self, ApiError> {
        let device = raw
            .device
            .filter(|d| !d.is_empty())
            .ok_or_else(|| ApiError::bad_request("device is required"))?;
        let window = ReportQuery::validate(RawReportQuery {
            period: raw.period.or_else(|| Some("day".into())),
            at: raw.at,
            from: raw.from,
            to: raw.to,
        })?;
        if window.to - window.from > factorydash_store::MAX_STOP_WINDOW {
            return Err(ApiError::bad_request(format!(
                "a stop list covers at most {} days",
                factorydash_store::MAX_STOP_WINDOW.num_days()
            )));
        }
        Ok(StopsQuery {
            device,
            agent: raw.agent.filter(|a| !a.is_empty()),
            window,
            done: raw.done,
        })
    }
}

/// How long a stop list may take (it holds one of the reports' turns).
const STOP_LIST_TIME: std::time::Duration = std::time::Duration::from_secs(20);

/// One stop as `/api/stops` answers it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StopAnswer<'r> {
    #[serde(flatten)]
    stop: &'r factorydash_core::summary::StopRecord,
    /// Seconds from its start to its end, or to now (or the window's end) if under way.
    seconds: f64,
    /// The operator's reason, if one was given.
    reason: Option<serde_json::Value>,
}

/// A device's stop list with its window and the reasons operators gave.
struct Stops {
    device: factorydash_core::DeviceInfo,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    list: factorydash_store::StopList,
    /// The reasons, by (data item, start in µs).
    reasons: std::collections::HashMap<(String, i64), factorydash_core::reasons::StopReason>,
}

impl Stops {
    fn seconds(&self, s: &factorydash_core::summary::StopRecord) -> f64 {
        (s.ended.unwrap_or(self.until) - s.began)
            .as_seconds_f64()
            .max(0.0)
    }

    fn reason(
        &self,
        s: &factorydash_core::summary::StopRecord,
    ) -> Option<&factorydash_core::reasons::StopReason> {
        self.reasons
            .get(&(s.item.clone(), s.began.timestamp_micros()))
    }

    /// The Pareto of the listed stops by operators' reason.
    fn by_reason(&self) -> Pareto {
        factorydash_core::reasons::by_reason(
            self.list
                .stops
                .iter()
                .map(|s| (self.seconds(s), self.reason(s).map(|r| r.reason.as_str()))),
        )
    }
}

/// The stops of the request's device and window, in turn with the reports.
async fn stop_list(app: &App, scope: &Scope, q: &StopsQuery) -> Result<Stops, ApiError> {
    let device = super::api::resolve_device(app, scope, &q.device, q.agent.as_deref()).await?;
    let until = q
        .window
        .to
        .min(Utc::now())
        .max(q.window.from + Duration::minutes(1));
    let _turn = turn().await?;
    let list = tokio::time::timeout(
        STOP_LIST_TIME,
        factorydash_store::stops(&*app.store, &device, q.window.from, until),
    )
    .await
    .map_err(|_| {
        ApiError::unavailable("the stop list took too long; ask for a shorter window")
    })??;
    // The reasons of the listed stops: from the first one's start (a stop under way at
    // the window's start began before it).
    let first = list.stops.iter().map(|s| s.began).min().unwrap_or(until);
    let reasons = match app
        .store
        .stop_reasons(
            &device.agent,
            &device.name,
            first.min(q.window.from),
            until + Duration::microseconds(1),
        )
        .await
    {
        Ok(r) => r,
        // A reason no build wrote: the list without reasons, and a word in the log.
        Err(e @ factorydash_store::StoreError::Corrupt(_)) => {
            tracing::warn!(device = %device.name, error = %e, "the stop reasons cannot be read; the stop list is shown without them");
            Vec::new()
        }
        Err(e) => return Err(e.into()),
    };
    let reasons = reasons
        .into_iter()
        .map(|r| ((r.item.clone(), r.began.timestamp_micros()), r))
        .collect();
    Ok(Stops {
        device,
        from: q.window.from,
        until,
        list,
        reasons,
    })
}

/// `GET /api/stops?device=…`: a device's stops over a window (at most 7 days), each with
/// its length and what was active when it began.
pub async fn stops_api(app: Arc<App>, scope: Scope, q: StopsQuery) -> Result<Response, ApiError> {
    let s = stop_list(&app, &scope, &q).await?;
    let stops: Vec<StopAnswer<'_>> = s
        .list
        .stops
        .iter()
        .map(|stop| StopAnswer {
            stop,
            seconds: s.seconds(stop),
            reason: s.reason(stop).map(super::reasons::reason_json),
        })
        .collect();
    Ok(reply::json(&serde_json::json!({
        "device": s.device.name,
        "agent": crate::redact::redacted(&s.device.agent),
        "from": s.from,
        "until": s.until,
        "complete": s.list.complete,
        "stops": stops,
        "byReason": s.by_reason(),
        "reasons": report::stop_reasons(),
    }))
    .into_response())
}

/// `GET /stops?device=…`: the stop list as a page (no JavaScript).
pub async fn stops_page(app: Arc<App>, scope: Scope, q: StopsQuery) -> Result<Response, ApiError> {
    let s = stop_list(&app, &scope, &q).await?;
    let tz: chrono_tz::Tz = report::calendar().time_zone();
    let local = |t: DateTime<Utc>| t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string();
    let total: f64 = s.list.stops.iter().map(|x| s.seconds(x)).sum();
    // Operators of the device (admins, an open dashboard) give reasons.
    let operates = scope.role_for(&s.device.agent, &s.device.name)
        >= Some(factorydash_core::accounts::Role::Operator);
    let agent = crate::redact::redacted(&s.device.agent);
    let reason_link = |x: &factorydash_core::summary::StopRecord| {
        let mut link = form_urlencoded::Serializer::new(String::new());
        link.append_pair("agent", &agent)
            .append_pair("device", &s.device.name)
            .append_pair("item", &x.item)
            .append_pair("began", &super::reasons::began_text(x.began))
            .append_pair("from", &q.window.from.to_rfc3339())
            .append_pair("to", &q.window.to.to_rfc3339());
        format!("/stops/reason?{}", link.finish())
    };
    let by_reason = s.by_reason();
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Stops of " (s.device.name) " · factorydash" }
                script src=(crate::assets::url("theme.js")) {}
                link rel="stylesheet" href=(crate::assets::url("app.css"));
                link rel="stylesheet" href=(crate::assets::url("report.css"));
            }
            body .report {
                header .no-print {
                    h1 { a href="/" { "factorydash" } " › " a href="/report" { "Reports" } " › Stops" }
                }
                main {
                    h2 { "Stops of " (s.device.name) }
                    @if q.done.as_deref() == Some("reason-saved") {
                        p .notice.done role="status" { "Reason saved." }
                    }
                    p .muted {
                        (local(s.from)) " – " (local(s.until)) " (" (tz.name()) "): "
                        (s.list.stops.len()) " stops, " (duration_text(total)) ". "
                        "A stop is a known Execution state other than ACTIVE; what was active is as it was when the stop began."
                        @if !s.list.complete { " Not every stop is listed: the window holds more than this list reads." }
                    }
                    (pareto_table_by("By operators' reason", "Reason", &by_reason))
                    table .oee {
                        caption { "Each stop" }
                        thead { tr { th { "Began" } th { "Length" } th { "Cause" } th { "Reason" } th { "State" } th { "Program" } th { "Mode" } th { "Faults" } th { "Emergency stop" } } }
                        tbody {
                            @for x in &s.list.stops {
                                tr {
                                    th scope="row" { (local(x.began)) @if x.ended.is_none() { br; small .muted { "under way" } } }
                                    td data-label="Length" { (duration_text(s.seconds(x))) }
                                    td data-label="Cause" { (x.cause) }
                                    td data-label="Reason" {
                                        @if let Some(r) = s.reason(x) {
                                            (r.reason)
                                            @if let Some(c) = &r.comment { br; small { (c) } }
                                            br; small .muted { (r.given_by) ", " (local(r.given_at)) }
                                            @if operates { " " a href=(reason_link(x)) aria-label=(format!("Change the reason of the stop begun {}", local(x.began))) { "Change" } }
                                        } @else if operates {
                                            a href=(reason_link(x)) aria-label=(format!("Give a reason for the stop begun {}", local(x.began))) { "Give a reason" }
                                        } @else {
                                            "—"
                                        }
                                    }
                                    td data-label="State" { (x.state) }
                                    td data-label="Program" { (x.program.as_deref().unwrap_or("—")) }
                                    td data-label="Mode" { (x.controller_mode.as_deref().unwrap_or("—")) }
                                    td data-label="Faults" { @if x.faults.is_empty() { "—" } @else { (x.faults.join(", ")) } }
                                    td data-label="Emergency stop" { @if x.emergency_stop { "TRIGGERED" } @else { "—" } }
                                }
                            }
                            @if s.list.stops.is_empty() {
                                tr { td colspan="9" { "No stop in this window." } }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(reply::with_status(reply::html(page.into_string()), StatusCode::OK).into_response())
}
