//! The HTML pages: the dashboard (`/`), a device (`/device?name=`) and the agents
//! (`/agents`). Each reads the store and hands its view model to [`crate::page`] (the
//! agents page to [`crate::agents_page`]).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use factorydash_core::{Page, PageRequest};
use factorydash_store::{AgentObservation, LatestFilter, StoreError};
use serde::Deserialize;
use warp::http::StatusCode;
use warp::reply::{self, Reply, Response};

use super::errors::ApiError;
use super::params::{self, FromQuery};
use factorydash_core::layout::{Placement, UNASSIGNED};

use crate::accounts::Scope;
use crate::agents_page::{self, AgentEntry, AgentsPage, Controls};
use crate::error_chain::error_chain;
use crate::page;
use crate::state::App;

/// What the client sent to a latest-values route (`/` and `/api/latest`).
#[derive(Debug, Deserialize)]
pub struct RawLatestQuery {
    limit: Option<String>,
    cursor: Option<String>,
    device: Option<String>,
    agent: Option<String>,
    #[serde(rename = "componentId")]
    component_id: Option<String>,
    category: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    q: Option<String>,
    at: Option<String>,
}

/// `?device=&agent=&componentId=&category=&type=&q=&at=&cursor=&limit=`: a page of latest
/// values (or of the values as of `at`), `DEFAULT_LIMIT` rows unless `limit` says (at most
/// [`factorydash_core::page::MAX_PAGE_LIMIT`]). `device` keeps the devices of that name
/// at every agent, `agent` (its base URL as the server shows it) those of one agent.
#[derive(Debug)]
pub struct LatestQuery<const DEFAULT_LIMIT: usize> {
    /// Which values, `agent` as the user wrote it.
    pub filter: LatestFilter,
    /// Which page of them.
    pub request: PageRequest,
    /// The values as of this instant (UTC) rather than the latest.
    pub at: Option<DateTime<Utc>>,
}

impl<const DEFAULT_LIMIT: usize> FromQuery for LatestQuery<DEFAULT_LIMIT> {
    type Raw = RawLatestQuery;

    fn validate(q: RawLatestQuery) -> Result<Self, ApiError> {
        let limit = params::number(
            q.limit,
            "limit",
            1..=factorydash_core::page::MAX_PAGE_LIMIT,
            DEFAULT_LIMIT,
        )?;
        let after = params::text(q.cursor).map(factorydash_core::Cursor::from_string);
        let category = match params::text(q.category) {
            None => None,
            Some(c) => Some(c.to_ascii_uppercase().parse().map_err(|_| {
                ApiError::bad_request(format!(
                    "category must be SAMPLE, EVENT or CONDITION, got '{c}'"
                ))
            })?),
        };
        let filter = LatestFilter {
            device: params::text(q.device),
            agent: params::text(q.agent),
            component_id: params::text(q.component_id),
            category,
            kind: params::text(q.kind),
            search: params::text(q.q),
            devices: None,
        };
        Ok(LatestQuery {
            filter,
            request: PageRequest { after, limit },
            at: params::time(q.at, "at")?,
        })
    }
}

impl<const DEFAULT_LIMIT: usize> LatestQuery<DEFAULT_LIMIT> {
    /// The page of values this asks for, an `agent` given as the server shows it (see
    /// [`crate::devices::is_agent`]) read as the agent's URL.
    pub async fn read(
        &self,
        app: &App,
        scope: &Scope,
    ) -> Result<Page<AgentObservation>, StoreError> {
        let mut filter = self.filter.clone();
        if !scope.sees_everything() {
            // Only the devices in scope, whatever else the filter says.
            filter.devices = scope.allow_list(&app.devices().await?);
        }
        if let Some(given) = &self.filter.agent {
            let devices = app.devices_for(scope).await?;
            // No agent shows as `given`: an empty URL, which no agent has, matches nothing
            // (the user's text is never compared with the URLs themselves).
            filter.agent = Some(
                crate::devices::matching(&devices, None, Some(given))
                    .next()
                    .map(|d| d.agent.clone())
                    .unwrap_or_default(),
            );
        }
        match self.at {
            Some(at) => app.store.as_of(&filter, at, &self.request).await,
            None => app.store.latest(&filter, &self.request).await,
        }
    }
}

/// What the client sent to `/`: a latest-values page's parameters and the board's.
#[derive(Debug, Deserialize)]
pub struct RawBoardQuery {
    #[serde(flatten)]
    latest: RawLatestQuery,
    wall: Option<String>,
    order: Option<String>,
    cell: Option<String>,
}

/// How the board orders its tiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoardOrder {
    /// What needs attention first ([`factorydash_core::DeviceState::attention_rank`]),
    /// then by name: the default.
    Attention,
    /// By name (then agent), a place that never moves.
    Name,
    /// Under the layout's cells (line › cell, as [`factorydash_core::layout::Layout::shown_order`] says, the
    /// unassigned devices last), by attention within a cell: the default when the
    /// configuration lays out the plant.
    Layout,
}

/// `/?wall=&order=attention|name|layout&cell=` and a latest-values page's parameters
/// ([`LatestQuery`]). `wall` is `1`/`true` for the wall board; `order` is `layout` unless
/// no layout is configured, else `attention`; `cell` (a cell's name, or
/// [`factorydash_core::layout::UNASSIGNED`]) keeps that cell's tiles only. The state
/// filter (`state=`) is the page script's.
#[derive(Debug)]
pub struct BoardQuery {
    latest: LatestQuery<{ page::PAGE_SIZE }>,
    wall: bool,
    order: Option<BoardOrder>,
    cell: Option<String>,
}

impl FromQuery for BoardQuery {
    type Raw = RawBoardQuery;

    fn validate(q: RawBoardQuery) -> Result<Self, ApiError> {
        let wall = match params::text(q.wall).as_deref() {
            None | Some("0" | "false") => false,
            Some("1" | "true") => true,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "wall must be 1 or 0, got '{other}'"
                )))
            }
        };
        let order = match params::text(q.order).as_deref() {
            None => None,
            Some("attention") => Some(BoardOrder::Attention),
            Some("name") => Some(BoardOrder::Name),
            Some("layout") => Some(BoardOrder::Layout),
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "order must be attention, name or layout, got '{}'",
                    cut(other)
                )))
            }
        };
        Ok(BoardQuery {
            latest: LatestQuery::validate(q.latest)?,
            wall,
            order,
            cell: params::text(q.cell),
        })
    }
}

/// `s` cut to at most [`factorydash_core::layout::MAX_NAME_LEN`] bytes, for an error
/// message that quotes what the client sent.
fn cut(s: &str) -> &str {
    let mut end = s.len().min(factorydash_core::layout::MAX_NAME_LEN);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `/`: the dashboard.
pub async fn dashboard(
    app: Arc<App>,
    scope: Scope,
    board: BoardQuery,
) -> Result<Response, ApiError> {
    let layout = app.layout();
    let order = match board.order {
        Some(BoardOrder::Layout) if layout.is_empty() => {
            return Err(ApiError::bad_request(
                "order=layout needs a layout: [[cell]] tables in the configuration file",
            ))
        }
        Some(order) => order,
        None if layout.is_empty() => BoardOrder::Attention,
        None => BoardOrder::Layout,
    };
    // The cell asked for: one of the layout's, or the devices no cell takes.
    let cell = match board.cell.as_deref() {
        None => None,
        Some(UNASSIGNED) => Some(Placement::Unassigned),
        Some(name) => Some(Placement::Cell(layout.cell_named(name).ok_or_else(
            || ApiError::bad_request(format!("no cell is named '{}'", cut(name))),
        )?)),
    };
    let q = &board.latest;
    // When the store cannot be read, the page still comes, empty, saying why.
    let read = async {
        let devices = app.devices_for(&scope).await?;
        let mut statuses = crate::devices::statuses(&*app.store, &app.live, &devices).await?;
        app.annotate_all(&devices, &mut statuses);
        let latest = q.read(&app, &scope).await?;
        Ok::<_, StoreError>((devices, statuses, latest))
    }
    .await;
    let (devices, mut statuses, latest, store_error) = match read {
        Ok((d, s, l)) => (d, s, l, None),
        Err(e @ StoreError::InvalidCursor(_)) => return Err(e.into()),
        Err(e) => {
            tracing::warn!(error = %error_chain(&e), "cannot read the store for the page");
            let empty = Page {
                items: Vec::new(),
                next: None,
            };
            (Arc::default(), Vec::new(), empty, Some(error_chain(&e)))
        }
    };
    // Where each device goes: its cell, placed once for the filter and the grouping.
    let mut placed: Vec<(Placement, factorydash_core::DeviceStatus)> = statuses
        .drain(..)
        .map(|s| (layout.place(&s.agent, &s.device), s))
        .filter(|(p, _)| cell.is_none_or(|c| c == *p))
        .collect();
    // Statuses come ordered by name, then agent: a stable sort keeps that within a state.
    if order != BoardOrder::Name {
        placed.sort_by_key(|(_, s)| s.state.attention_rank());
    }
    let groups = (order == BoardOrder::Layout).then(|| {
        let mut by_place: Vec<Vec<usize>> = vec![Vec::new(); layout.cells().len() + 1];
        for (i, (p, _)) in placed.iter().enumerate() {
            match p {
                Placement::Cell(c) => by_place[*c].push(i),
                Placement::Unassigned => by_place[layout.cells().len()].push(i),
            }
        }
        (by_place, layout.shown_order())
    });
    let statuses: Vec<factorydash_core::DeviceStatus> =
        placed.into_iter().map(|(_, s)| s).collect();
    let groups: Option<Vec<page::Group<'_>>> = groups.map(|(by_place, shown)| {
        let cells = shown.into_iter().map(|c| {
            let cell = &layout.cells()[c];
            (cell.name(), cell.line(), &by_place[c])
        });
        let unassigned = std::iter::once((UNASSIGNED, None, &by_place[layout.cells().len()]));
        cells
            .chain(unassigned)
            .filter(|(_, _, members)| !members.is_empty())
            .map(|(name, line, members)| page::Group {
                name,
                line,
                statuses: members.iter().map(|&i| &statuses[i]).collect(),
            })
            .collect()
    });
    let shift = app.shift.snapshot();
    let html = page::render(&page::Dashboard {
        who: scope.who(),
        store_kind: app.store_kind,
        store_error: store_error.as_deref(),
        sources: &app.health_for(&scope).await,
        devices: &devices,
        statuses: &statuses,
        rows: &page::rows(latest.items, &devices),
        next: latest.next.as_ref(),
        filter: &q.filter,
        at: q.at,
        first_page: q.request.after.is_none(),
        limit: q.request.limit,
        now: Utc::now(),
        wall: board.wall,
        groups: groups.as_deref(),
        cell: board.cell.as_deref(),
        plant_shift: shift.plant.as_ref().filter(|_| scope.sees_everything()),
    });
    Ok(reply::html(html).into_response())
}

/// What the client sent to `/device`.
#[derive(Debug, Deserialize)]
pub struct RawDeviceQuery {
    name: Option<String>,
    agent: Option<String>,
}

/// `/device?name=&agent=`.
#[derive(Debug)]
pub struct DeviceQuery {
    name: String,
    agent: Option<String>,
}

impl FromQuery for DeviceQuery {
    type Raw = RawDeviceQuery;

    fn validate(q: RawDeviceQuery) -> Result<Self, ApiError> {
        Ok(DeviceQuery {
            name: params::required(q.name, "name")?,
            agent: params::text(q.agent),
        })
    }
}

/// `/device?name=&agent=`: one device, its status and every latest value. `agent` (as
/// the server shows it) is needed only when several agents serve a device of that name:
/// then, without it, the page lists them, each a link.
pub async fn device(app: Arc<App>, scope: Scope, q: DeviceQuery) -> Result<Response, ApiError> {
    let devices = app.devices_for(&scope).await?;
    let device = match crate::devices::resolve(&devices, &q.name, q.agent.as_deref(), |a| {
        app.is_followed(a)
    }) {
        Ok(device) => device,
        Err(e) => {
            let (status, agents) = match &e {
                crate::devices::Unresolved::Unknown { .. } => (StatusCode::NOT_FOUND, &[][..]),
                crate::devices::Unresolved::Ambiguous { agents, .. } => {
                    (StatusCode::CONFLICT, agents.as_slice())
                }
            };
            let html = maud::html! {
                (maud::DOCTYPE)
                p { (e.to_string()) }
                @if !agents.is_empty() {
                    ul { @for a in agents { li { a href=(page::device_link(&q.name, a)) { (a) } } } }
                }
                p { a href="/" { "All devices" } }
            };
            return Ok(reply::with_status(reply::html(html.into_string()), status).into_response());
        }
    };
    let key = device.key();
    let latest = crate::devices::device_latest(&*app.store, &key).await?;
    let mut status = crate::devices::status_of(&key, &latest);
    app.tools.annotate(&key, &mut status);
    app.records.annotate(&key, &mut status);
    let record = app.records.get(&key.agent, &key.device);
    let layout = app.layout();
    let html = page::render_device(&page::DevicePage {
        who: scope.who(),
        device,
        status: &status,
        latest: &latest,
        sources: &app.health_for(&scope).await,
        tools: &app.tools.device_tools(&key),
        record: record.as_ref(),
        cell: match layout.place(&key.agent, &key.device) {
            Placement::Cell(i) => layout.cells().get(i).map(|c| (c.name(), c.line())),
            Placement::Unassigned => None,
        },
    });
    Ok(reply::html(html).into_response())
}

/// `/agents`: every agent (and recording) with its health and its recorded gaps; for a
/// reader whose `role` may change agents (and a dashboard that `takes_changes` at the
/// address it was asked for, [`crate::csrf::takes_changes`]), the buttons and the form
/// that call `/api/agents`.
pub async fn agents(
    app: Arc<App>,
    scope: Scope,
    takes_changes: bool,
    auth: Arc<crate::accounts::Auth>,
    headers: warp::http::HeaderMap,
    q: super::params::DoneQuery,
) -> Result<Response, ApiError> {
    let mut gaps = app.store.gaps().await?;
    let sources = app.health_for(&scope).await;
    let mut agents = super::admin::known(&app).await?;
    if !scope.sees_everything() {
        let devices = app.devices().await?;
        agents.retain(|a| scope.sees_agent(&a.url, &devices));
        gaps.retain(|g| scope.sees_agent(&g.agent, &devices));
    }
    // Recordings played (`serve --replay`) are sources too, though not agents.
    let recordings: Vec<AgentEntry> = sources
        .iter()
        .filter(|s| !agents.iter().any(|a| a.url == s.source))
        .map(|s| AgentEntry {
            url: s.source.clone(),
            added_at_run_time: false,
            paused: false,
            health: Some(s.clone()),
        })
        .collect();
    agents.extend(recordings);
    let controls = if !app.agents.follows_agents() {
        Controls::Recording
    } else if !scope.is_admin() {
        Controls::ViewOnly
    } else if !takes_changes {
        Controls::OpenByName
    } else {
        Controls::Change
    };
    // The forms' token, for a browser without JavaScript (`POST /admin/agents`).
    let (csrf, new_cookie) = super::accounts::form_token(&auth, &headers);
    let html = agents_page::render_agents(&AgentsPage {
        who: scope.who(),
        agents: &agents,
        gaps: &gaps,
        sources: &sources,
        controls,
        csrf: &csrf,
        done: q.done.as_deref().and_then(agents_page::done_text),
    });
    let mut r = reply::html(html).into_response();
    if let Some(c) = new_cookie.and_then(|c| c.parse().ok()) {
        r.headers_mut().append("set-cookie", c);
    }
    Ok(r)
}
