//! The dashboard's one renderer: the pages, and the fragments the live protocol carries
//! so that the page's script never builds markup of its own ([`card_html`],
//! [`banner_html`], [`sources_html`], [`shown_value`]). Every agent-supplied string goes
//! through maud's escaping; the script sets `textContent`, or places these fragments.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use factorydash_core::{
    Cursor, DataItemInfo, DeviceInfo, DeviceState, DeviceStatus, Observation, Value,
};
use factorydash_store::{AgentObservation, LatestFilter};
use maud::{html, Markup, DOCTYPE};
use serde::Serialize;

use crate::assets;
use crate::health::SourceHealth;
use crate::redact::{redacted, redacted_in};

/// The default latest-values page size of the dashboard.
pub const PAGE_SIZE: usize = 50;

/// A latest value with what the device model says of its data item: a row of the page's
/// table, and an item of `/api/latest`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LatestRow {
    /// The agent the observation came from, its credentials redacted: with the device's
    /// name, the device's identity.
    pub agent: String,
    /// The observation.
    #[serde(flatten)]
    pub observation: Observation,
    /// The data item's units, if the model gives them.
    pub units: Option<String>,
    /// The owning component's name (or element name), if the model knows the data item.
    pub component: Option<String>,
}

/// The data items of every device, by (agent, device, dataItemId).
fn item_index(devices: &[DeviceInfo]) -> HashMap<(&str, &str, &str), &DataItemInfo> {
    devices
        .iter()
        .flat_map(|d| {
            d.data_items
                .iter()
                .map(move |i| ((d.agent.as_str(), d.name.as_str(), i.id.as_str()), i))
        })
        .collect()
}

/// `observations` as rows, with their units and component from `devices`' models.
pub fn rows(observations: Vec<AgentObservation>, devices: &[DeviceInfo]) -> Vec<LatestRow> {
    let index = item_index(devices);
    observations
        .into_iter()
        .map(|AgentObservation { agent, observation }| {
            let item = index.get(&(
                agent.as_str(),
                observation.device.as_str(),
                observation.data_item_id.as_str(),
            ));
            LatestRow {
                agent: redacted(&agent).into_owned(),
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

/// What the page shows.
pub struct Dashboard<'a> {
    /// Who reads it.
    pub who: Who<'a>,
    pub store_kind: &'a str,
    /// Why the store could not be read for this page, if it could not.
    pub store_error: Option<&'a str>,
    pub sources: &'a [SourceHealth],
    pub devices: &'a [DeviceInfo],
    pub statuses: &'a [DeviceStatus],
    pub rows: &'a [LatestRow],
    pub next: Option<&'a Cursor>,
    pub filter: &'a LatestFilter,
    /// The instant the table shows the values as of (UTC), or `None` for the latest
    /// values, updated live.
    pub at: Option<DateTime<Utc>>,
    pub first_page: bool,
    pub limit: usize,
    pub now: DateTime<Utc>,
    /// The wall board (`?wall=1`): the tiles in large type, filling the screen, without
    /// the tables; above [`WALL_TILES`] machines, one box per group instead ([`overview`]).
    pub wall: bool,
    /// The tiles under the layout's cells, in the order shown (`statuses` holds the same
    /// tiles); `None` for one list of tiles.
    pub groups: Option<&'a [Group<'a>]>,
    /// The one cell shown (`?cell=`), if one was asked for.
    pub cell: Option<&'a str>,
    /// The plant's figures over the current shift, for a viewer who sees every device.
    pub plant_shift: Option<&'a factorydash_core::ShiftFigures>,
}

/// A cell's tiles on the board: a cell of the layout, or the devices no cell takes
/// ([`factorydash_core::layout::UNASSIGNED`]).
pub struct Group<'a> {
    /// The cell's name, as `?cell=` takes it.
    pub name: &'a str,
    /// The line it belongs to, if the layout says.
    pub line: Option<&'a str>,
    /// Its devices, in the order shown.
    pub statuses: Vec<&'a DeviceStatus>,
}

/// Above this many machines the wall board shows one box per cell (or per state) with
/// its counts, not the tiles, which would be too small to read on one screen; app.js
/// applies the same bound as tiles come and go.
pub const WALL_TILES: usize = 60;

fn value_text(v: Option<&Value>) -> String {
    match v {
        None => "—".into(),
        Some(Value::Unavailable) => "UNAVAILABLE".into(),
        Some(Value::Text(t)) => t.clone(),
    }
}

pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// To the nanosecond, for an instant that goes back to the server (a page link's `at`).
fn rfc3339_exact(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// The banner (`#banner`) of `sources`' outages and the store's (`store_error`: why it
/// cannot be read, e.g. not open yet), as HTML.
pub fn banner_html(sources: &[SourceHealth], store_error: Option<&str>) -> String {
    banner(sources, store_error).into_string()
}

/// The source list (`#sources`), as HTML.
pub fn sources_html(sources: &[SourceHealth]) -> String {
    source_list(sources).into_string()
}

/// One device's tile (`article.card`), as HTML.
pub fn card_html(status: &DeviceStatus) -> String {
    card(status).into_string()
}

fn source_list(sources: &[SourceHealth]) -> Markup {
    html! {
        section #sources aria-label="Sources" {
            @for s in sources {
                span .source data-source=(redacted(&s.source)) {
                    // A long URL is cut with an ellipsis (the whole in its title), not
                    // broken over lines.
                    span .url title=(redacted(&s.source)) { (redacted(&s.source)) } ": " span .state { (s.state.label()) }
                    " · " (s.observations) " observations"
                    @if s.observations_per_second >= 0.1 { " · " (format!("{:.1}", s.observations_per_second)) "/s" }
                    @if s.gaps > 0 { " · " (s.gaps) @if s.gaps == 1 { " gap" } @else { " gaps" } " (observations the agent lost)" }
                    @if s.restarts > 0 { " · agent restarted " (s.restarts) "×" }
                }
            }
        }
    }
}

pub(crate) fn banner(sources: &[SourceHealth], store_error: Option<&str>) -> Markup {
    html! {
        div #banner role="status" aria-live="polite" {
            @if let Some(e) = store_error {
                p .alert { "The store cannot be read (" (e) "); this page fills in when it is back." }
            }
            @for s in sources.iter().filter(|s| s.store_unavailable_since.is_some()) {
                p .alert {
                    "Cannot store what " strong { (redacted(&s.source)) } " sends"
                    @if let Some(since) = s.store_unavailable_since {
                        " since " time data-ts=(rfc3339(since)) { (rfc3339(since)) }
                    }
                    @if let Some(e) = &s.store_error { " (" (redacted_in(e)) ")" }
                    ". " (s.buffered) " observations are waiting; retrying."
                }
            }
            @for s in sources.iter().filter(|s| s.unreachable_since.is_some()) {
                p .alert {
                    "Cannot reach " strong { (redacted(&s.source)) }
                    @if let Some(since) = s.unreachable_since {
                        " since " time data-ts=(rfc3339(since)) { (rfc3339(since)) }
                    }
                    @if let Some(e) = &s.last_error { " (" (redacted_in(e)) ")" }
                    ". Retrying"
                    @if let Some(at) = s.retry_at { " at " time data-ts=(rfc3339(at)) data-mode="clock" { (rfc3339(at)) } }
                    "; showing the last data received."
                }
            }
            @if never_reached(sources) {
                p .hint #demo-hint {
                    "No agent has answered yet. To see the dashboard without a network or a machine: "
                    code { "factorydash serve --demo" }
                    " plays a recording of three NIST test bed machines built into factorydash, and "
                    code { "factorydash simulate" }
                    " serves simulated machines at http://127.0.0.1:5000 to follow with "
                    code { "factorydash serve --agent http://127.0.0.1:5000" } "."
                }
            }
        }
    }
}

/// Whether agents are followed and none has ever answered (a machine without a network,
/// a first start with a wrong URL): then the page says how to see data anyway.
pub fn never_reached(sources: &[SourceHealth]) -> bool {
    !sources.is_empty()
        && sources
            .iter()
            .all(|s| s.last_contact.is_none() && s.unreachable_since.is_some())
}

/// The newest active unacknowledged alarm of the alarm rules, above everything (filled in
/// by `alarms.js` from `/api/alarms/active`; hidden while there is none), with the
/// operator's buttons and the sound switch.
fn alarm_banner() -> Markup {
    html! {
        div #alarm-banner role="alert" hidden {
            span .priority {}
            span .message {}
            span .more .muted {}
            span .actions {
                button type="button" .ack { "Acknowledge" }
                button type="button" .shelve title="Hide it for an hour, with a reason" { "Shelve 1 h" }
            }
            span .result .muted {}
        }
    }
}

/// The alarms: the alarm rules' alarms not ended (with their state, count and the
/// operator's buttons; from `/api/alarms/active`), then active Warnings and Faults and
/// their history over the last 24 hours (from `/api/alarms`), kept current by the page's
/// script.
fn alarms_section() -> Markup {
    html! {
        section #alarm-list aria-label="Alarms to handle" hidden {
            h2 { "Alarms to handle " span #alarm-list-count .muted {} }
            table {
                thead { tr { th { "Priority" } th { "Device" } th { "Message" } th { "Raised" span .tz-abbr {} } th { "Count" } th { "State" } th { "" } } }
                tbody #alarm-list-rows {}
            }
        }
        section #alarms aria-label="Alarms" {
            h2 { "Alarms " span #alarm-count .muted {} }
            p .alarm-switches {
                label #notify-label { input #notify type="checkbox"; " Notify me of new Faults" }
                span #notify-insecure .muted hidden { "Browser notifications need HTTPS (see docs/install.md)." }
                label { input #alarm-sound type="checkbox"; " Sound for new alarms" }
            }
            table {
                thead { tr { th { "Device" } th { "Level" } th { "Type" } th { "Code" } th { "Message" } th { "Began" span .tz-abbr {} } th { "Ended" span .tz-abbr {} } th { "Duration" } } }
                tbody #alarm-rows { tr { td colspan="8" .muted { "Loading…" } } }
            }
        }
    }
}

/// A page's `<head>`: its title, the stylesheet and the page scripts, one per concern and
/// in this order (`dom.js` shared helpers, `controls.js`, `app.js` the board, `alarms.js`,
/// `live.js` the WebSocket, which the others hear as events), and with `charts` uPlot and
/// the device page's script. Every asset comes from the binary (no CDN), under
/// its content-hashed URL.
fn page_head(title: &str, charts: bool) -> Markup {
    page_head_with(title, charts, &[])
}

/// [`page_head`] with the assets of a page of its own (`own`, names under `/assets/`):
/// its stylesheets after `app.css`, its scripts after the shared ones.
pub(crate) fn page_head_with(title: &str, charts: bool, own: &[&str]) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            // The plant's time zone, which dom.js shows every time in (see time_zone.rs).
            meta name="factorydash-tz" content=(crate::time_zone::plant().name());
            title { (title) }
            script src=(assets::url("theme.js")) {}
            link rel="stylesheet" href=(assets::url("app.css"));
            @if charts { link rel="stylesheet" href=(assets::url("uplot.css")); }
            @for sheet in own.iter().filter(|a| a.ends_with(".css")) {
                link rel="stylesheet" href=(assets::url(sheet));
            }
            @for script in ["dom.js", "controls.js", "app.js", "alarms.js", "live.js"] {
                script src=(assets::url(script)) defer {}
            }
            @for script in own.iter().filter(|a| a.ends_with(".js")) {
                script src=(assets::url(script)) defer {}
            }
            @if charts {
                script src=(assets::url("uplot.js")) defer {}
                script src=(assets::url("device.js")) defer {}
            }
        }
    }
}

/// Who reads a page, for its header: the signed-in user's name (a link to their account,
/// where they sign out) and, for an admin, a link to the administration.
#[derive(Debug, Clone, Copy, Default)]
pub struct Who<'a> {
    /// The user's name as shown; `None` for a fixed token or an open dashboard.
    pub user: Option<&'a str>,
    /// Whether the reader administers the server.
    pub admin: bool,
}

/// The header's links to the account and the administration (nothing for a reader who
/// is not a signed-in user).
pub(crate) fn account_links(who: Who<'_>) -> Markup {
    html! {
        @if let Some(user) = who.user {
            span .account-links {
                @if who.admin { a href="/admin" { "Admin" } }
                a href="/account" title="Your account: tokens, password, sign out" { (user) }
            }
        }
    }
}

/// The header's theme switch (app.js cycles system → dark → light).
pub(crate) fn theme_button() -> Markup {
    html! {
        button #theme type="button" title="Colour theme: the system's, dark or light" { "theme: system" }
    }
}

/// An observation's value as shown: a Condition's level and message, `UNAVAILABLE`, or
/// the text.
fn value_markup(o: &factorydash_core::Observation) -> Markup {
    html! { (shown_value(o)) }
}

/// How a value is shown in the table (plain text): the value, `UNAVAILABLE`, or for a
/// Condition its level and message (`Fault: Limit switch`).
pub fn shown_value(o: &Observation) -> String {
    let text = o.value.as_text();
    match (&o.condition, text) {
        (Some(c), Some(t)) if !t.is_empty() => format!("{}: {t}", c.level.as_str()),
        (Some(c), _) => c.level.as_str().to_owned(),
        (None, Some(t)) => t.to_owned(),
        (None, None) => "UNAVAILABLE".to_owned(),
    }
}

/// The device page's address: `/device?name=&agent=`, `agent` as the server shows agents
/// (credentials redacted).
pub fn device_link(device: &str, agent: &str) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("name", device);
    query.append_pair("agent", agent);
    format!("/device?{}", query.finish())
}

/// How a tile or a row names an agent: its host and port (and path, if any), without the
/// scheme or credentials; the whole redacted URL is its `title`.
fn agent_label(agent: &str) -> &str {
    let rest = agent.split_once("://").map_or(agent, |(_, r)| r);
    // Credentials end at the last `@` of the authority, not of the path.
    let authority = rest.find(['/', '?', '#']).map_or(rest, |end| &rest[..end]);
    let rest = authority.rfind('@').map_or(rest, |at| &rest[at + 1..]);
    rest.trim_end_matches('/')
}

/// `42 %`, or `—` for a figure not reported.
fn percent(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_owned(), |v| format!("{:.0} %", v * 100.0))
}

fn card(status: &DeviceStatus) -> Markup {
    let state_class = status.state.as_str();
    let program = value_text(status.program.as_ref());
    // Each field is classed (`f-…`) so that a layout can choose among them: the wall
    // board shows execution, program and part count in large type, a phone all of them.
    let field = |class: &'static str, label: &'static str, value: Markup| {
        html! { dt .(class) { (label) } dd .(class) { (value) } }
    };
    html! {
        article .card .(state_class) data-device=(status.device) data-agent=(status.agent) data-state=(state_class) data-rank=(status.state.attention_rank()) {
            h3 title=(match &status.display_name { Some(_) => format!("{} at {}", status.device, status.agent), None => status.agent.clone() }) {
                a href=(device_link(&status.device, &status.agent)) { (status.display_name.as_deref().unwrap_or(&status.device)) }
                " " span .state { (status.state.label()) }
            }
            // Shown only where two agents serve devices of one name (app.js marks those
            // tiles); always in the title, and on the device page.
            p .agent .muted title=(status.agent) { (agent_label(&status.agent)) }
            dl {
                (field("f-availability", "Availability", html! { (value_text(status.availability.as_ref())) }))
                (field("f-execution", "Execution", html! { (value_text(status.execution.as_ref())) }))
                (field("f-mode", "Controller mode", html! { (value_text(status.controller_mode.as_ref())) }))
                (field("f-estop", "Emergency stop", html! { (value_text(status.emergency_stop.as_ref())) }))
                (field("f-program", "Program", html! { span title=(program) { (program) } }))
                (field("f-parts", "Part count", html! { (value_text(status.part_count.as_ref())) }))
                @if let Some(f) = &status.shift {
                    (field("f-oee", "OEE this shift", html! {
                        a href="/report?period=shift" title={ "Shift " (f.shift) ": OEE and availability so far (— where not reported)" } {
                            (percent(f.oee)) " · avail. " (percent(f.availability))
                        }
                    }))
                }
                (field("f-newest newest", "Newest data", html! {
                    @match status.newest {
                        Some(t) => time data-ts=(rfc3339(t)) { (rfc3339(t)) },
                        None => "no data yet",
                    }
                }))
            }
            (conditions_list(status))
            (crate::tools::view::card_line(status))
        }
    }
}

/// A tile's list of active conditions (`ul.conditions`).
fn conditions_list(status: &DeviceStatus) -> Markup {
    html! {
        ul .conditions {
            @if status.active_conditions.is_empty() {
                li .none { "No active conditions" }
            }
            @for c in &status.active_conditions {
                li .(c.level.as_str().to_lowercase()) {
                    (c.level.as_str()) " " (c.kind)
                    @if let Some(code) = &c.native_code { " [" (code) "]" }
                    @if !c.message.is_empty() { ": " (c.message) }
                }
            }
        }
    }
}

/// What a tile shows that changes as data arrives, as the live protocol's board rounds
/// send it (changed fields only: `crate::live::board`). Each is what [`card_html`]
/// renders in that place: text (set as `textContent` by app.js) or, for the conditions
/// and the tools line, HTML rendered here (escaped). `frame` holds what changes the
/// tile's structure (its name, its agent, whether it shows the shift's OEE): where it
/// changed, the whole tile is sent again.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TileFields {
    /// The name shown, the agent and whether the OEE field is there.
    pub frame: String,
    /// The state's class (`active`, `stopped`, …).
    pub state: &'static str,
    /// The state as shown (`Active`).
    pub label: &'static str,
    /// Its attention rank (the board's order).
    pub rank: u8,
    /// `Availability`, `Execution`, `ControllerMode`, `EmergencyStop`, `Program` and
    /// `PartCount` as shown.
    pub availability: String,
    /// See `availability`.
    pub execution: String,
    /// See `availability`.
    pub mode: String,
    /// See `availability`.
    pub estop: String,
    /// See `availability`.
    pub program: String,
    /// See `availability`.
    pub parts: String,
    /// The shift's OEE line (`63 % · avail. 80 %`), or empty.
    pub oee: String,
    /// The newest data's time (RFC 3339, UTC, milliseconds), or empty: none yet.
    pub newest: String,
    /// The conditions list (`ul.conditions`), rendered.
    pub conditions: String,
    /// The tools line (`p.tools-near`), rendered, or empty.
    pub tools: String,
}

/// The [`TileFields`] of `status`.
pub fn tile_fields(status: &DeviceStatus) -> TileFields {
    TileFields {
        frame: format!(
            "{}\u{1f}{}\u{1f}{}\u{1f}{}",
            status.display_name.as_deref().unwrap_or(&status.device),
            status.agent,
            status.device,
            status.shift.as_ref().map_or("", |f| f.shift.as_str())
        ),
        state: status.state.as_str(),
        label: status.state.label(),
        rank: status.state.attention_rank(),
        availability: value_text(status.availability.as_ref()),
        execution: value_text(status.execution.as_ref()),
        mode: value_text(status.controller_mode.as_ref()),
        estop: value_text(status.emergency_stop.as_ref()),
        program: value_text(status.program.as_ref()),
        parts: value_text(status.part_count.as_ref()),
        oee: status.shift.as_ref().map_or_else(String::new, |f| {
            format!("{} · avail. {}", percent(f.oee), percent(f.availability))
        }),
        newest: status.newest.map(rfc3339).unwrap_or_default(),
        conditions: conditions_list(status).into_string(),
        tools: crate::tools::view::card_line(status).into_string(),
    }
}

/// `statuses` counted by state, most urgent first: one `.gc` per state (hidden at 0)
/// and the total, which app.js keeps current from the tiles.
fn state_counts<'a>(statuses: impl Iterator<Item = &'a DeviceStatus> + Clone) -> Markup {
    html! {
        @for state in DeviceState::BY_ATTENTION {
            @let n = statuses.clone().filter(|s| s.state == state).count();
            span .gc .(state.as_str()) data-state=(state.as_str()) hidden[n == 0] {
                strong .n { (n) } " " (state.label())
            }
        }
        span .gtotal .muted { span .n { (statuses.count()) } " machines" }
    }
}

/// The board's link to one cell: the wall board of that cell when `wall`.
fn cell_link(name: &str, wall: bool) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    if wall {
        query.append_pair("wall", "1");
    }
    query.append_pair("cell", name);
    format!("/?{}", query.finish())
}

/// A cell's heading and tiles (`section.group`): the line › the cell, a link to the cell
/// alone, and its machines counted by state.
fn group(g: &Group<'_>, wall: bool) -> Markup {
    html! {
        section .group data-cell=(g.name) aria-label=(g.name) {
            h2 .group-head {
                @if let Some(line) = g.line { span .line { (line) } " › " }
                a .cell-name href=(cell_link(g.name, wall)) { (g.name) }
                " " span .group-counts { (state_counts(g.statuses.iter().copied())) }
            }
            div .tiles { @for s in &g.statuses { (card(s)) } }
        }
    }
}

/// The wall board's overview (`#overview`), shown instead of the tiles when they are
/// too many to read (`crowded`): one box per cell (`groups`), or without them one per
/// state, each with its machines counted by state, coloured by its most urgent state
/// and saying it, a link to the wall board of its tiles alone (`?cell=`, `?state=`).
fn overview(statuses: &[DeviceStatus], groups: Option<&[Group<'_>]>, crowded: bool) -> Markup {
    let worst = |members: &[&DeviceStatus]| {
        members
            .iter()
            .map(|s| s.state)
            .min_by_key(|s| s.attention_rank())
            .unwrap_or(DeviceState::NoData)
    };
    html! {
        section #overview aria-label=(if groups.is_some() { "Machines by cell" } else { "Machines by state" }) hidden[!crowded] {
            @match groups {
                Some(groups) => @for g in groups {
                    @let state = worst(&g.statuses);
                    a .box .(state.as_str()) href=(cell_link(g.name, true)) data-cell=(g.name) {
                        span .box-title {
                            @if let Some(line) = g.line { span .box-line { (line) " › " } }
                            span .box-name { (g.name) }
                        }
                        span .box-worst { (state.label()) }
                        span .box-counts { (state_counts(g.statuses.iter().copied())) }
                    }
                },
                None => @for state in DeviceState::BY_ATTENTION {
                    @let n = statuses.iter().filter(|s| s.state == state).count();
                    a .box .(state.as_str()) href={ "/?wall=1&state=" (state.as_str()) } data-state=(state.as_str()) hidden[n == 0] {
                        span .box-title { span .box-name { (state.label()) } }
                        span .box-counts { span .gtotal { span .n { (n) } " machines" } }
                    }
                },
            }
        }
    }
}

/// The machines counted by state, most urgent first (`#summary`): each count a link that
/// shows only that state's tiles (`?state=`, applied by app.js, which also keeps the
/// counts current as tiles change).
fn summary(statuses: &[DeviceStatus]) -> Markup {
    html! {
        section #summary aria-label="Machines by state" {
            @for state in DeviceState::BY_ATTENTION {
                @let n = statuses.iter().filter(|s| s.state == state).count();
                a .count .(state.as_str()) href={ "?state=" (state.as_str()) } data-state=(state.as_str()) data-label=(state.label()) hidden[n == 0] {
                    strong .n { (n) } " " (state.label())
                }
            }
            span .total .muted { span .n { (statuses.len()) } " machines" }
            a .all href="?" hidden { "show all" }
        }
    }
}

fn link(
    filter: &LatestFilter,
    at: Option<DateTime<Utc>>,
    cursor: Option<&Cursor>,
    limit: usize,
) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    let category = filter.category.map(|c| c.as_str());
    let at = at.map(rfc3339_exact);
    for (key, value) in [
        ("device", filter.device.as_deref()),
        ("agent", filter.agent.as_deref()),
        ("componentId", filter.component_id.as_deref()),
        ("category", category),
        ("type", filter.kind.as_deref()),
        ("q", filter.search.as_deref()),
        ("at", at.as_deref()),
        ("cursor", cursor.map(Cursor::as_str)),
    ] {
        if let Some(value) = value {
            query.append_pair(key, value);
        }
    }
    if limit != PAGE_SIZE {
        query.append_pair("limit", &limit.to_string());
    }
    format!("/?{}", query.finish())
}

/// The page's footer: when it was rendered, and the time zone times are shown in (filled
/// and switched by dom.js: the plant's, or this browser's).
pub(crate) fn footer(note: &str, now: Option<DateTime<Utc>>) -> Markup {
    html! {
        footer .muted {
            @if let Some(now) = now { "Rendered " time data-ts=(rfc3339(now)) data-mode="clock" { (rfc3339(now)) } ". " }
            (note) " "
            span #tz-note { "Times in UTC." } " "
            button #tz-switch type="button" hidden { "use this browser's time zone" }
        }
    }
}

/// The whole page: the board (tiles, alarms, latest values), or with `wall` the wall
/// board (tiles only, sized by app.js to fill the screen).
pub fn render(d: &Dashboard<'_>) -> String {
    let device_filter = d.filter.device.as_deref().unwrap_or("");
    let crowded = d.wall && d.cell.is_none() && d.statuses.len() > WALL_TILES;
    html! {
        (DOCTYPE)
        html lang="en" {
            (page_head("factorydash", false))
            body .wall[d.wall] data-limit=(d.limit) data-device=(device_filter) data-agent=(d.filter.agent.as_deref().map(redacted).unwrap_or_default()) data-open-ended=(if d.next.is_none() { "1" } else { "0" }) data-first-page=(if d.first_page { "1" } else { "0" }) data-at=[d.at.map(rfc3339_exact)] {
                header {
                    h1 { "factorydash" }
                    @if let Some(cell) = d.cell {
                        span .drill { a .up href=(if d.wall { "/?wall=1" } else { "/" }) { "all cells" } " › " strong .cell-shown { (cell) } }
                    }
                    span #live .muted { "connecting…" }
                    (summary(d.statuses))
                    @if let Some(f) = d.plant_shift {
                        a .plant-oee href="/report?period=shift" title={ "The plant over shift " (f.shift) " so far; — where not reported" } {
                            "Plant OEE " strong { (percent(f.oee)) } " · avail. " (percent(f.availability))
                        }
                    } @else {
                        a .plant-oee href="/report?period=shift" { "Reports" }
                    }
                    @if d.wall {
                        span #clock .clock {}
                        a .exit-wall href="/" { "leave wall mode" }
                    } @else {
                        nav .jump aria-label="On this page" {
                            a href="#alarms" { "Alarms " span #alarm-badge {} }
                            a href="#latest" { "Values" }
                            a href="/agents" { "Agents" }
                            a href="/?wall=1" title="Large type, every machine on one screen" { "Wall" }
                        }
                        (theme_button())
                        span .muted .store { "store: " (d.store_kind) }
                        (account_links(d.who))
                    }
                }
                (banner(d.sources, d.store_error))
                (alarm_banner())
                @if !d.wall { (source_list(d.sources)) }
                section #devices .grouped[d.groups.is_some()] aria-label="Devices" hidden[crowded] {
                    @if d.statuses.is_empty() {
                        p .muted { @if d.cell.is_some() { "No device is in this cell." } @else { "No devices yet: waiting for the agent's device model." } }
                    }
                    @match d.groups {
                        Some(groups) => @for g in groups { (group(g, d.wall)) },
                        None => @for s in d.statuses { (card(s)) },
                    }
                }
                @if d.wall { (overview(d.statuses, d.groups, crowded)) }
                @if d.wall { (footer("", None)) }
                @if !d.wall {
                (alarms_section())
                section #latest aria-label="Latest values" {
                    @match d.at {
                        None => h2 { "Latest values" },
                        Some(at) => h2 { "Values as of " time data-ts=(rfc3339(at)) data-mode="clock" { (rfc3339(at)) } " " a href=(link(d.filter, None, None, d.limit)) { "back to live" } },
                    }
                    form method="get" action="/" {
                        label for="device" { "Device " }
                        select #device name="device" {
                            option value="" selected[device_filter.is_empty()] { "all" }
                            // One entry per name: devices come ordered by name (then agent).
                            @for (i, dev) in d.devices.iter().enumerate() {
                                @if i == 0 || d.devices[i - 1].name != dev.name {
                                    option value=(dev.name) selected[dev.name == device_filter] { (dev.name) }
                                }
                            }
                        }
                        @if let Some(agent) = &d.filter.agent { input type="hidden" name="agent" value=(redacted(agent)); }
                        @let category = d.filter.category.map(|c| c.as_str()).unwrap_or("");
                        label for="category" { " Category " }
                        select #category name="category" {
                            option value="" selected[category.is_empty()] { "all" }
                            @for c in ["SAMPLE", "EVENT", "CONDITION"] {
                                option value=(c) selected[c == category] { (c) }
                            }
                        }
                        label for="type" { " Type " }
                        input #type name="type" size="14" placeholder="e.g. Execution" value=(d.filter.kind.as_deref().unwrap_or(""));
                        label for="q" { " Search " }
                        input #q type="search" name="q" size="14" placeholder="id or name" value=(d.filter.search.as_deref().unwrap_or(""));
                        // The browser's local time, sent as UTC by app.js (`at`); empty: live.
                        label for="at-local" { " As of" span .tz-abbr {} " " }
                        input #at-local type="datetime-local" step="1" title="Empty: the latest values, live";
                        input #at type="hidden" name="at" value=(d.at.map(rfc3339_exact).unwrap_or_default());
                        button type="submit" { "Show" }
                    }
                    table {
                        thead { tr { th { "Device" } th { "Component" } th { "Data item" } th { "Type" } th { "Value" } th { "Units" } th { "Timestamp" span .tz-abbr {} } } }
                        tbody #rows {
                            @for r in d.rows {
                                @let o = &r.observation;
                                tr data-device=(o.device) data-agent=(r.agent) data-item=(o.data_item_id) {
                                    td title=(r.agent) { (o.device) }
                                    td { (r.component.as_deref().unwrap_or(&o.component_id)) }
                                    td { (o.data_item_id) @if let Some(n) = &o.name { " " span .muted { "(" (n) ")" } } }
                                    td { (o.kind) @if let Some(s) = &o.sub_type { " " span .muted { (s) } } }
                                    td .value .unavailable[o.value.is_unavailable()] {
                                        (value_markup(o))
                                    }
                                    td { (r.units.as_deref().unwrap_or("")) }
                                    td .ts { time data-ts=(rfc3339(o.timestamp)) data-mode="clock" { (rfc3339(o.timestamp)) } }
                                }
                            }
                        }
                    }
                    @if d.rows.is_empty() { p .muted #empty { "No observations yet." } }
                    nav .pages {
                        @if !d.first_page { a href=(link(d.filter, d.at, None, d.limit)) { "« First page" } }
                        @if let Some(next) = d.next { a href=(link(d.filter, d.at, Some(next), d.limit)) rel="next" { "Next page »" } }
                    }
                }
                (footer(if d.at.is_some() { "The table shows a past instant; the tiles update live." } else { "Values update live." }, Some(d.now)))
                }
            }
        }
    }
    .into_string()
}

/// What the device page shows.
pub struct DevicePage<'a> {
    /// Who reads it.
    pub who: Who<'a>,
    /// The device, with its data items in the probe's order.
    pub device: &'a DeviceInfo,
    /// Its status at a glance.
    pub status: &'a DeviceStatus,
    /// The latest observation of each of its data items.
    pub latest: &'a [factorydash_core::Observation],
    /// Every source's health, for the banner.
    pub sources: &'a [SourceHealth],
    /// Its cutting tools (`crate::tools`).
    pub tools: &'a crate::tools::DeviceTools,
    /// What an admin says about it (display name, cell, description, ideal cycle time).
    pub record: Option<&'a factorydash_core::records::DeviceRecord>,
    /// The layout cell it stands in and that cell's line, if any.
    pub cell: Option<(&'a str, Option<&'a str>)>,
}

/// The device page's line about the device from its record and the layout: cell and
/// line, ideal cycle time, description (nothing when none is known).
fn record_facts(d: &DevicePage<'_>) -> Markup {
    let cycle = d.record.and_then(|r| r.ideal_cycle_time);
    let description = d.record.and_then(|r| r.description.as_deref());
    html! {
        @if d.cell.is_some() || cycle.is_some() || description.is_some() {
            section #device-record aria-label="About this machine" {
                dl .facts {
                    @if let Some((cell, line)) = d.cell {
                        dt { "Cell" } dd { @if let Some(l) = line { (l) " › " } (cell) }
                    }
                    @if let Some(t) = cycle {
                        dt { "Ideal cycle time" } dd { (format!("{t} s")) " per part" }
                    }
                }
                @if let Some(text) = description { p .description { (text) } }
            }
        }
    }
}

/// The page of one device: its status, its components with every data item's latest
/// value, units and a sparkline, and a chart of a chosen data item over a window.
pub fn render_device(d: &DevicePage<'_>) -> String {
    let latest: std::collections::HashMap<&str, &factorydash_core::Observation> = d
        .latest
        .iter()
        .map(|o| (o.data_item_id.as_str(), o))
        .collect();
    // Components in the probe's (depth-first) order, each with its data items.
    let mut components: Vec<(&str, Vec<&factorydash_core::DataItemInfo>)> = Vec::new();
    for item in &d.device.data_items {
        match components
            .iter_mut()
            .find(|(id, _)| *id == item.component_id)
        {
            Some((_, items)) => items.push(item),
            None => components.push((&item.component_id, vec![item])),
        }
    }
    let numeric: Vec<&factorydash_core::DataItemInfo> = d
        .device
        .data_items
        .iter()
        .filter(|i| i.category == factorydash_core::Category::Sample)
        .collect();
    html! {
        (DOCTYPE)
        html lang="en" {
            (page_head(&format!("{} · factorydash", d.device.name), true))
            body .device-page data-device=(d.device.name) data-agent=(redacted(&d.device.agent)) {
                header {
                    h1 { a href="/" { "factorydash" } " › " (d.status.display_name.as_deref().unwrap_or(&d.device.name)) " " span .muted title=(redacted(&d.device.agent)) { @if d.status.display_name.is_some() { (d.device.name) " " } "at " (agent_label(&redacted(&d.device.agent))) } }
                    span #live .muted { "connecting…" }
                    (theme_button())
                    (account_links(d.who))
                }
                (banner(d.sources, None))
                (record_facts(d))
                section #devices aria-label="Status" { (card(d.status)) }
                section #chart-section aria-label="Chart" {
                    h2 { "Chart" }
                    form #chart-form {
                        label for="item" { "Data item" }
                        select #item name="item" {
                            @for i in &numeric {
                                option value=(i.id) data-units=(i.units.as_deref().unwrap_or("")) data-name=(i.name.as_deref().unwrap_or(&i.id)) data-type=(i.kind) {
                                    (i.name.as_deref().unwrap_or(&i.id)) " (" (i.kind) @if let Some(u) = &i.units { ", " (u) } ")"
                                }
                            }
                        }
                        button #add type="button" { "Add to chart" }
                        label for="other-device" { "or of device" }
                        select #other-device { option value="" { "—" } }
                        select #other-item aria-label="Data item of that device" {}
                        button #add-other type="button" { "Add" }
                    }
                    ul #series-list .chips aria-label="Charted series" {}
                    form #window-form .windows onsubmit="return false" {
                        @for (label, window) in [("5 min", "5m"), ("15 min", "15m"), ("1 h", "1h"), ("8 h", "8h"), ("24 h", "24h"), ("7 d", "7d"), ("30 d", "30d")] {
                            button type="button" .window data-window=(window) aria-pressed="false" { (label) }
                        }
                        label for="last" { "last" }
                        input #last type="text" size="6" placeholder="90m" title="A window ending now: a number and m, h or d (90m, 3h, 2d)" pattern="[0-9]{1,5}[mhd]";
                    }
                    form #range-form {
                        label for="from" { "from" span .tz-abbr {} } input #from type="datetime-local" step="1";
                        label for="to" { "to" span .tz-abbr {} } input #to type="datetime-local" step="1";
                        button type="submit" { "Show range" }
                        span .exports {
                            "Export: " a #export-csv href="#" download { "CSV" } " · "
                            a #export-wide href="#" download title="One row per time, one column per series, each value held until the next" { "CSV, aligned" } " · "
                            a #export-ndjson href="#" download { "NDJSON" }
                        }
                    }
                    @if numeric.is_empty() { p .muted { "This device has no Samples to chart." } }
                    div #chart role="img" aria-label="Chart of the chosen data items" {}
                    p #chart-note .muted {}
                    // Thresholds set by hand (kept in the address as `th=VALUE|LABEL`),
                    // and whether the model's limits are drawn: device.js.
                    form #threshold-form .thresholds {
                        label for="th-value" { "Threshold" }
                        input #th-value type="number" step="any" required placeholder="value" size="8";
                        input #th-label type="text" maxlength="40" placeholder="label (optional)" aria-label="Threshold label";
                        button type="submit" { "Add threshold" }
                        label .limits-toggle { input #show-limits type="checkbox" checked; " limits from the device model" }
                    }
                    ul #threshold-list .chips aria-label="Thresholds set by hand" {}
                    div #bands .bands aria-label="States over the chart's window" {
                        @for (id, label) in [("timeline", "Execution"), ("band-availability", "Availability"), ("band-mode", "Controller mode"), ("band-condition", "Condition")] {
                            div .band { div id=(id) .timeline role="img" aria-label={ (label) " over time" } {} span .band-label { (label) } }
                        }
                    }
                    h3 { "Utilization " span .muted { "(Execution over the chart's window)" } }
                    ul #shares .shares {}
                }
                (crate::tools::view::section(d.tools))
                section #components aria-label="Components" {
                    h2 { "Components and data items" }
                    @for (component_id, items) in &components {
                        @let first = items[0];
                        details open {
                            summary {
                                strong { (first.component) } " " (first.component_name.as_deref().unwrap_or(component_id))
                                span .muted { " · " (items.len()) " data items" }
                            }
                            table {
                                thead { tr { th { "Data item" } th { "Type" } th { "Value" } th { "Units" } th { "Timestamp" span .tz-abbr {} } th { "Last hour" } } }
                                tbody {
                                    @for i in items {
                                        @let o = latest.get(i.id.as_str());
                                        tr data-device=(d.device.name) data-agent=(redacted(&d.device.agent)) data-item=(i.id) {
                                            td { (breakable(&i.id)) @if let Some(n) = &i.name { " " span .muted { "(" (breakable(n)) ")" } } }
                                            td { (breakable(&i.kind)) @if let Some(s) = &i.sub_type { " " span .muted { (breakable(s)) } } }
                                            td .value .unavailable[o.is_some_and(|o| o.value.is_unavailable())] {
                                                @match o {
                                                    Some(o) => (value_markup(o)),
                                                    None => "—",
                                                }
                                            }
                                            td { (breakable(i.units.as_deref().unwrap_or(""))) }
                                            td .ts { @if let Some(o) = o { time data-ts=(rfc3339(o.timestamp)) data-mode="clock" { (rfc3339(o.timestamp)) } } }
                                            td { @if i.category == factorydash_core::Category::Sample { canvas .spark width="120" height="24" data-item=(i.id) {} } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                (footer("", None))
            }
        }
    }
    .into_string()
}

/// `text` with a line-break opportunity (`<wbr>`) after each `_` and `/`: a narrow screen
/// breaks `ROTARY_VELOCITY_OVERRIDE` or `REVOLUTION/MINUTE` between its parts, never inside
/// one.
pub(crate) fn breakable(text: &str) -> Markup {
    html! {
        @for (i, part) in text.split_inclusive(['_', '/']).enumerate() {
            @if i > 0 { wbr; }
            (part)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{agent_label, breakable};

    #[test]
    fn names_break_after_underscores_and_slashes_only() {
        assert_eq!(
            breakable("ROTARY_VELOCITY_OVERRIDE").into_string(),
            "ROTARY_<wbr>VELOCITY_<wbr>OVERRIDE"
        );
        assert_eq!(
            breakable("REVOLUTION/MINUTE").into_string(),
            "REVOLUTION/<wbr>MINUTE"
        );
        assert_eq!(breakable("x<y").into_string(), "x&lt;y");
        assert_eq!(breakable("").into_string(), "");
    }

    #[test]
    fn an_agent_is_labelled_by_host_port_and_path() {
        for (url, label) in [
            ("http://127.0.0.1:5000", "127.0.0.1:5000"),
            (
                "https://user:***@cell-2.example:5000/",
                "cell-2.example:5000",
            ),
            (
                "https://smstestbed.nist.gov/vds/",
                "smstestbed.nist.gov/vds",
            ),
            ("http://host/a@b", "host/a@b"),
            ("http://***@gw/x@y?z", "gw/x@y?z"),
        ] {
            assert_eq!(agent_label(url), label, "{url}");
        }
    }
}
