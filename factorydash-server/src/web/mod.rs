//! The dashboard's HTTP routes: the router only. Each route is a path, a method, its
//! validated request ([`params`]) and a handler:
//!
//! - [`pages`], the HTML pages (`/`, `/device`, `/agents`), rendered by [`crate::page`]
//!   and [`crate::agents_page`];
//! - [`api`], the JSON API (`/api/devices`, `/api/latest`, `/api/series`,
//!   `/api/utilization`, `/api/alarms`, `/api/gaps`);
//! - [`export`], `/api/export` (CSV or NDJSON, streamed);
//! - [`admin`], `/api/agents` (list; add, pause, resume, remove);
//! - [`crate::live::socket`], `/ws`, the live protocol;
//! - [`operations`], `/healthz` and `/metrics`;
//! - [`crate::assets`], `/assets/…`.
//!
//! Before any route: the `Host` check ([`crate::host`]: 421 for a name that is not this
//! server's), the token gate ([`crate::auth`]) and the CSRF guard ([`crate::csrf`]).
//! A request refused (by its parameters or its handler) is an [`errors::ApiError`],
//! answered as `{"error": "..."}` by one [`errors::recover`]; a request no route takes is a
//! 404 `{"error": "not found"}`. Every answer carries the [`secured`] headers.

mod accounts;
mod admin;
mod alarm_rules;
mod alarms;
mod api;
mod errors;
mod export;
mod operations;
mod pages;
mod params;
mod reasons;
mod records;
mod report;
mod shifts;
pub mod upgrade;

use std::convert::Infallible;
use std::sync::Arc;

use factorydash_core::Cursor;
use warp::http::HeaderValue;
use warp::reply::{Reply, Response};
use warp::Filter;

use crate::accounts::Auth;
use crate::state::App;
use params::query;
use serde::Deserialize;

/// The Content-Security-Policy of every answer: nothing but this server's own assets.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// All routes of the dashboard.
pub fn routes(
    app: Arc<App>,
    auth: Arc<Auth>,
    hosts: Arc<crate::host::AllowedHosts>,
) -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone {
    let metrics = Arc::new(crate::metrics::Metrics::new(app.clone()));
    let latency = metrics.latency.clone();
    let app_for_records = app.clone();
    let with = warp::any().map(move || app.clone());
    // What a request may see: every route that lets a device's data out takes it.
    let scope = crate::auth::scope(auth.clone());

    // Grouped and boxed: one long chain of `or`s makes a type too deep to compile in
    // release builds.
    let pages = answered(
        "/",
        warp::path::end()
            .and(warp::get())
            .and(with.clone())
            .and(scope.clone())
            .and(query())
            .then(pages::dashboard),
    )
    .or(answered(
        "/device",
        warp::path!("device")
            .and(warp::get())
            .and(with.clone())
            .and(scope.clone())
            .and(query())
            .then(pages::device),
    ))
    .unify()
    .or(answered(
        "/agents",
        warp::path!("agents")
            .and(warp::get())
            .and(with.clone())
            .and(scope.clone())
            .and(crate::csrf::takes_changes_here(auth.clone()))
            .and(warp::any().map({
                let auth = auth.clone();
                move || auth.clone()
            }))
            .and(warp::header::headers_cloned())
            .and(params::done_query())
            .then(pages::agents),
    ))
    .unify()
    .boxed();
    let reports = answered(
        "/api/oee",
        warp::path!("api" / "oee")
            .and(warp::get())
            .and(with.clone())
            .and(scope.clone())
            .and(query())
            .then(report::api_oee),
    )
    .or(answered(
        "/api/report",
        warp::path!("api" / "report")
            .and(warp::get())
            .and(with.clone())
            .and(scope.clone())
            .and(query())
            .then(report::api),
    ))
    .unify()
    .or(answered(
        "/api/downtime",
        warp::path!("api" / "downtime")
            .and(warp::get())
            .and(with.clone())
            .and(scope.clone())
            .and(query())
            .then(report::downtime_api),
    ))
    .unify()
    .or(answered(
        "/api/stops",
        warp::path!("api" / "stops")
            .and(warp::get())
            .and(with.clone())
            .and(scope.clone())
            .and(query())
            .then(report::stops_api),
    ))
    .unify()
    .or(answered(
        "/stops",
        warp::path!("stops")
            .and(warp::get())
            .and(with.clone())
            .and(scope.clone())
            .and(query())
            .then(report::stops_page),
    ))
    .unify()
    .or(answered(
        "/downtime.csv",
        warp::path!("downtime.csv")
            .and(warp::get())
            .and(with.clone())
            .and(scope.clone())
            .and(query())
            .then(report::downtime_csv),
    ))
    .unify()
    .or(answered(
        "/report",
        warp::path!("report")
            .and(warp::get())
            .and(with.clone())
            .and(scope.clone())
            .and(query())
            .then(report::html_page),
    ))
    .unify()
    .or(answered(
        "/report.csv",
        warp::path!("report.csv")
            .and(warp::get())
            .and(with.clone())
            .and(scope.clone())
            .and(query())
            .then(report::csv),
    ))
    .unify()
    .boxed();
    let api = answered(
        "/api/devices",
        warp::path!("api" / "devices")
            .and(warp::get())
            .and(with.clone())
            .and(scope.clone())
            .then(api::devices),
    )
    .or(answered(
        "/api/latest",
        warp::path!("api" / "latest")
            .and(warp::get())
            .and(with.clone())
            .and(scope.clone())
            .and(query())
            .then(api::latest),
    ))
    .unify()
    .or(answered(
        "/api/series",
        warp::path!("api" / "series")
            .and(warp::get())
            .and(with.clone())
            .and(scope.clone())
            .and(query())
            .then(api::series),
    ))
    .unify()
    .or(answered(
        "/api/gaps",
        warp::path!("api" / "gaps")
            .and(warp::get())
            .and(with.clone())
            .and(scope.clone())
            .then(api::gaps),
    ))
    .unify()
    .or(answered(
        "/api/utilization",
        warp::path!("api" / "utilization")
            .and(warp::get())
            .and(with.clone())
            .and(scope.clone())
            .and(query())
            .then(api::utilization),
    ))
    .unify()
    .or(answered(
        "/api/alarms",
        warp::path!("api" / "alarms")
            .and(warp::get())
            .and(with.clone())
            .and(scope.clone())
            .and(query())
            .then(api::alarms),
    ))
    .unify()
    .or(answered(
        "/api/export",
        warp::path!("api" / "export")
            .and(warp::get())
            .and(with.clone())
            .and(scope.clone())
            .and(query())
            .then(export::export),
    ))
    .unify()
    .boxed();
    let actor = crate::accounts::actor(auth.clone());
    let agents = answered(
        "/api/agents",
        warp::path!("api" / "agents")
            .and(warp::get())
            .and(with.clone())
            .and(scope.clone())
            .then(admin::list),
    )
    .or(answered(
        "/api/agents",
        warp::path!("api" / "agents")
            .and(warp::post())
            .and(with.clone())
            .and(actor.clone())
            .and(params::json_body())
            .then(admin::add),
    ))
    .unify()
    .or(answered(
        "/api/agents",
        warp::path!("api" / "agents")
            .and(warp::delete())
            .and(with.clone())
            .and(actor.clone())
            .and(query())
            .then(admin::remove),
    ))
    .unify()
    .or(answered(
        "/admin/agents",
        warp::path!("admin" / "agents")
            .and(warp::post())
            .and(with.clone())
            .and(actor.clone())
            .and(warp::header::headers_cloned())
            .and(form_body(accounts::MAX_FORM))
            .then(admin::form),
    ))
    .unify()
    .or(answered(
        "/api/agents/pause",
        warp::path!("api" / "agents" / "pause")
            .and(warp::post())
            .and(with.clone())
            .and(actor.clone())
            .and(query())
            .then(|app, actor, q| admin::set_paused(app, actor, q, true)),
    ))
    .unify()
    .or(answered(
        "/api/agents/resume",
        warp::path!("api" / "agents" / "resume")
            .and(warp::post())
            .and(with.clone())
            .and(actor.clone())
            .and(query())
            .then(|app, actor, q| admin::set_paused(app, actor, q, false)),
    ))
    .unify()
    .boxed();
    let accounts = account_routes(auth.clone())
        .or(alarm_routes(app_for_records.clone(), auth.clone()))
        .unify()
        .or(record_routes(app_for_records, auth.clone()))
        .unify()
        .boxed();
    let auth_ws = auth.clone();
    let ws = warp::path!("ws")
        .and(upgrade::websocket())
        .and(with.clone())
        .and(scope.clone())
        .and(query())
        .and(warp::header::headers_cloned())
        .and(crate::accounts::peer())
        .then(
            move |ws,
                  app: Arc<App>,
                  scope: crate::accounts::Scope,
                  q: LiveQuery,
                  headers: warp::http::HeaderMap,
                  peer: Option<std::net::IpAddr>| {
                let auth = auth_ws.clone();
                async move {
                    let live = app.live.clone();
                    let stopping = app.agents.stopping.clone();
                    let recheck = crate::accounts::recheck(auth, headers, peer, &scope);
                    let filter = crate::live::ScopeFilter::new(&app, scope).await;
                    let health = {
                        let filter = filter.clone();
                        move || {
                            filter.health_message(&app.health.all(), app.store_outage().as_deref())
                        }
                    };
                    upgrade::live(ws, live, health, stopping, q.since, filter, recheck)
                }
            },
        )
        .recover(errors::recover)
        .unify()
        .map(named("/ws"));
    let operations = warp::path!("healthz")
        .and(warp::get())
        .and(with.clone())
        .and(crate::auth::principal(auth.clone()))
        .and(warp::any().map({
            let auth = auth.clone();
            move || auth.clone()
        }))
        .and_then(
            |app, principal: Option<crate::accounts::Principal>, auth: Arc<Auth>| {
                // One read of the credentials: the scope is the principal's.
                let scope = crate::auth::scope_of(principal.as_ref(), &auth.records);
                let shown = match (principal, auth.has_users()) {
                    (Some(_), _) => operations::Shown::Scope,
                    (None, true) => operations::Shown::Nothing,
                    // No users: the fixed tokens' dashboard, whose health was always
                    // open (docs/security.md says so).
                    (None, false) => operations::Shown::Everything,
                };
                operations::healthz(app, scope, shown)
            },
        )
        .map(named("/healthz"))
        .or(warp::path!("metrics")
            .and(warp::get())
            .map(move || operations::metrics(&metrics))
            .map(named("/metrics")))
        .unify()
        .boxed();
    let answer = crate::host::guard(hosts)
        .or(crate::auth::gate(auth.clone()))
        .unify()
        .or(crate::csrf::guard(auth))
        .unify()
        .or(refuse_nul())
        .unify()
        .or(pages)
        .unify()
        .or(agents)
        .unify()
        .or(accounts)
        .unify()
        .or(crate::assets::routes().map(named("/assets")))
        .unify()
        .or(ws)
        .unify()
        .or(api)
        .unify()
        .or(reports)
        .unify()
        .or(operations)
        .unify()
        .recover(errors::recover)
        .unify()
        .or(warp::any().map(errors::not_found))
        .unify()
        .map(secured);
    // The latency of each answer, under the name of the route that gave it ([`Route`]);
    // answers of no route (the 404, the gate's refusals) are `other`. `/ws` lasts as long
    // as the connection and is not timed.
    warp::any().map(std::time::Instant::now).and(answer).map(
        move |start: std::time::Instant, r: Response| {
            let route = r.extensions().get::<Route>().map_or("other", |r| r.0);
            if route != "/ws" {
                latency
                    .get_or_create(&vec![("route", route)])
                    .observe(start.elapsed().as_secs_f64());
            }
            r
        },
    )
}

/// A route that always answers (its handler gives a [`Response`]), marked `name`.
fn page_route<F>(
    name: &'static str,
    route: F,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone
where
    F: Filter<Extract = (Response,), Error = warp::Rejection> + Clone + Send + Sync + 'static,
{
    route.map(named(name))
}

/// An HTML form's fields, a body of at most `limit` bytes (none, or not a form: no
/// field, so that the handler's form-token check refuses it).
fn form_body(
    limit: u64,
) -> impl Filter<Extract = (accounts::Form,), Error = std::convert::Infallible> + Clone {
    warp::body::content_length_limit(limit)
        .and(warp::body::form::<accounts::Form>())
        .or(warp::any().map(accounts::Form::new))
        .unify()
}

/// The alarms' API ([`alarms`]).
fn alarm_routes(
    app: Arc<App>,
    auth: Arc<Auth>,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let principal = crate::auth::principal(auth.clone());
    let with = warp::any().map(move || app.clone());
    let with_auth = warp::any().map(move || auth.clone());
    answered(
        "/api/alarms/active",
        warp::path!("api" / "alarms" / "active")
            .and(warp::get())
            .and(with.clone())
            .and(with_auth.clone())
            .and(principal.clone())
            .then(alarms::list),
    )
    .or(answered(
        "/api/alarms/deliveries",
        warp::path!("api" / "alarms" / "deliveries")
            .and(warp::get())
            .and(with.clone())
            .and(principal.clone())
            .then(alarms::deliveries),
    ))
    .unify()
    .or(answered(
        "/api/alarms/{id}/{action}",
        warp::path!("api" / "alarms" / u64 / String)
            .and(warp::post())
            .and(with)
            .and(with_auth)
            .and(principal)
            .and(crate::accounts::peer())
            .and(params::json_body())
            .then(alarms::act),
    ))
    .unify()
}

/// The machines page and `/api/device-records` ([`records`]); the shifts page
/// (`/admin/shifts`: [`shifts`]); the alarm rules page (`/admin/alarms`:
/// [`alarm_rules`]); a stop's reason (`/stops/reason`,
/// `/api/stop-reasons`: [`reasons`]).
fn record_routes(
    app: Arc<App>,
    auth: Arc<Auth>,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let principal = crate::auth::principal(auth.clone());
    let with = warp::any().map(move || app.clone());
    let with_auth = warp::any().map(move || auth.clone());
    let peer = crate::accounts::peer;
    answered(
        "/admin/devices",
        warp::path!("admin" / "devices")
            .and(warp::get())
            .and(with.clone())
            .and(with_auth.clone())
            .and(warp::header::headers_cloned())
            .and(principal.clone())
            .and(params::done_query())
            .then(records::page),
    )
    .or(answered(
        "/admin/devices",
        warp::path!("admin" / "devices")
            .and(warp::post())
            .and(with.clone())
            .and(with_auth.clone())
            .and(warp::header::headers_cloned())
            .and(principal.clone())
            .and(peer())
            .and(form_body(accounts::MAX_FORM))
            .then(records::form),
    ))
    .unify()
    .or(answered(
        "/api/device-records",
        warp::path!("api" / "device-records")
            .and(warp::get())
            .and(with.clone())
            .and(principal.clone())
            .then(records::list),
    ))
    .unify()
    .or(answered(
        "/api/device-records",
        warp::path!("api" / "device-records")
            .and(warp::post())
            .and(with.clone())
            .and(with_auth.clone())
            .and(principal.clone())
            .and(peer())
            .and(params::json_body())
            .then(records::put),
    ))
    .unify()
    .or(answered(
        "/api/device-records",
        warp::path!("api" / "device-records")
            .and(warp::delete())
            .and(with.clone())
            .and(with_auth.clone())
            .and(principal.clone())
            .and(peer())
            .and(warp::query::<records::RecordKey>())
            .then(records::remove),
    ))
    .unify()
    .or(answered(
        "/admin/shifts",
        warp::path!("admin" / "shifts")
            .and(warp::get())
            .and(with_auth.clone())
            .and(warp::header::headers_cloned())
            .and(principal.clone())
            .and(params::done_query())
            .then(shifts::page),
    ))
    .unify()
    .or(answered(
        "/admin/shifts",
        warp::path!("admin" / "shifts")
            .and(warp::post())
            .and(with.clone())
            .and(with_auth.clone())
            .and(warp::header::headers_cloned())
            .and(principal.clone())
            .and(peer())
            .and(form_body(accounts::MAX_FORM * 5))
            .then(shifts::form),
    ))
    .unify()
    .or(answered(
        "/admin/alarms",
        warp::path!("admin" / "alarms")
            .and(warp::get())
            .and(with.clone())
            .and(with_auth.clone())
            .and(warp::header::headers_cloned())
            .and(principal.clone())
            .and(params::done_query())
            .then(alarm_rules::page),
    ))
    .unify()
    .or(answered(
        "/admin/alarms",
        warp::path!("admin" / "alarms")
            .and(warp::post())
            .and(with.clone())
            .and(with_auth.clone())
            .and(warp::header::headers_cloned())
            .and(principal.clone())
            .and(peer())
            // URL-encoded TOML takes up to three times its bytes: room for a setting's
            // 64 KiB, refused with why beyond it.
            .and(form_body(accounts::MAX_FORM * 13))
            .then(alarm_rules::form),
    ))
    .unify()
    .or(answered(
        "/stops/reason",
        warp::path!("stops" / "reason")
            .and(warp::get())
            .and(with.clone())
            .and(with_auth.clone())
            .and(warp::header::headers_cloned())
            .and(principal.clone())
            .and(warp::query::<reasons::ReasonQuery>())
            .then(reasons::page),
    ))
    .unify()
    .or(answered(
        "/stops/reason",
        warp::path!("stops" / "reason")
            .and(warp::post())
            .and(with.clone())
            .and(with_auth.clone())
            .and(warp::header::headers_cloned())
            .and(principal.clone())
            .and(peer())
            .and(form_body(accounts::MAX_FORM))
            .then(reasons::form),
    ))
    .unify()
    .or(answered(
        "/api/stop-reasons",
        warp::path!("api" / "stop-reasons")
            .and(warp::post())
            .and(with)
            .and(with_auth)
            .and(principal)
            .and(peer())
            .and(params::json_body())
            .then(reasons::put),
    ))
    .unify()
    .boxed()
}

/// The sign-in, account and administration routes ([`accounts`]).
fn account_routes(
    auth: Arc<Auth>,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let principal = crate::auth::principal(auth.clone());
    let with = warp::any().map(move || auth.clone());
    let peer = crate::accounts::peer;
    let form = || form_body(accounts::MAX_FORM);
    let headers = warp::header::headers_cloned;
    let admin_form = |path: warp::filters::BoxedFilter<()>, which: accounts::AdminForm| {
        answered(
            "/admin",
            path.and(warp::post())
                .and(with.clone())
                .and(headers())
                .and(principal.clone())
                .and(peer())
                .and(form())
                .then(move |auth, h, p, peer, f| accounts::admin_form(which, auth, h, p, peer, f)),
        )
    };
    let sign_in = page_route(
        "/login",
        warp::path!("login")
            .and(warp::get())
            .and(with.clone())
            .and(headers())
            .and(principal.clone())
            .and(
                warp::query::<accounts::LoginQuery>()
                    .or(warp::any().map(accounts::LoginQuery::default))
                    .unify(),
            )
            .then(accounts::login_page),
    )
    .or(page_route(
        "/login",
        warp::path!("login")
            .and(warp::post())
            .and(with.clone())
            .and(headers())
            .and(peer())
            .and(form())
            .then(accounts::login),
    ))
    .unify()
    .or(page_route(
        "/logout",
        warp::path!("logout")
            .and(warp::post())
            .and(with.clone())
            .and(headers())
            .and(principal.clone())
            .and(peer())
            .and(form())
            .then(accounts::logout),
    ))
    .unify()
    .boxed();
    let page_query = || {
        warp::query::<accounts::PageQuery>()
            .or(warp::any().map(accounts::PageQuery::default))
            .unify()
    };
    let own = answered(
        "/account",
        warp::path!("account")
            .and(warp::get())
            .and(with.clone())
            .and(headers())
            .and(principal.clone())
            .and(page_query())
            .then(accounts::account_page),
    )
    .or(answered(
        "/account",
        warp::path!("account" / "tokens")
            .and(warp::post())
            .and(with.clone())
            .and(headers())
            .and(principal.clone())
            .and(peer())
            .and(form())
            .then(accounts::account_token),
    ))
    .unify()
    .or(answered(
        "/account",
        warp::path!("account" / "tokens" / "revoke")
            .and(warp::post())
            .and(with.clone())
            .and(headers())
            .and(principal.clone())
            .and(peer())
            .and(form())
            .then(accounts::account_revoke),
    ))
    .unify()
    .or(answered(
        "/account",
        warp::path!("account" / "password")
            .and(warp::post())
            .and(with.clone())
            .and(headers())
            .and(principal.clone())
            .and(peer())
            .and(form())
            .then(accounts::account_password),
    ))
    .unify()
    .or(answered(
        "/api/tokens",
        warp::path!("api" / "tokens")
            .and(warp::get())
            .and(with.clone())
            .and(principal.clone())
            .then(accounts::tokens_list),
    ))
    .unify()
    .or(answered(
        "/api/tokens",
        warp::path!("api" / "tokens")
            .and(warp::post())
            .and(with.clone())
            .and(principal.clone())
            .and(peer())
            .and(params::json_body())
            .then(accounts::tokens_add),
    ))
    .unify()
    .or(answered(
        "/api/tokens",
        warp::path!("api" / "tokens")
            .and(warp::delete())
            .and(with.clone())
            .and(principal.clone())
            .and(peer())
            .and(warp::query::<accounts::TokenId>())
            .then(accounts::tokens_remove),
    ))
    .unify()
    .boxed();
    let administration = answered(
        "/admin",
        warp::path!("admin")
            .and(warp::get())
            .and(with.clone())
            .and(headers())
            .and(principal.clone())
            .and(page_query())
            .then(accounts::admin_page),
    )
    .or(admin_form(
        warp::path!("admin" / "users").boxed(),
        accounts::AdminForm::SaveUser,
    ))
    .unify()
    .or(admin_form(
        warp::path!("admin" / "users" / "state").boxed(),
        accounts::AdminForm::UserState,
    ))
    .unify()
    .or(admin_form(
        warp::path!("admin" / "users" / "remove").boxed(),
        accounts::AdminForm::RemoveUser,
    ))
    .unify()
    .or(admin_form(
        warp::path!("admin" / "groups").boxed(),
        accounts::AdminForm::SaveGroup,
    ))
    .unify()
    .or(admin_form(
        warp::path!("admin" / "groups" / "remove").boxed(),
        accounts::AdminForm::RemoveGroup,
    ))
    .unify()
    .or(answered(
        "/api/users",
        warp::path!("api" / "users")
            .and(warp::get())
            .and(with.clone())
            .and(principal.clone())
            .then(accounts::users_list),
    ))
    .unify()
    .or(answered(
        "/api/users",
        warp::path!("api" / "users")
            .and(warp::post())
            .and(with.clone())
            .and(principal.clone())
            .and(peer())
            .and(params::json_body())
            .then(accounts::users_save),
    ))
    .unify()
    .or(answered(
        "/api/users",
        warp::path!("api" / "users")
            .and(warp::delete())
            .and(with.clone())
            .and(principal.clone())
            .and(peer())
            .and(warp::query::<accounts::Named>())
            .then(accounts::users_remove),
    ))
    .unify()
    .or(answered(
        "/api/groups",
        warp::path!("api" / "groups")
            .and(warp::get())
            .and(with.clone())
            .and(principal.clone())
            .then(accounts::groups_list),
    ))
    .unify()
    .or(answered(
        "/api/groups",
        warp::path!("api" / "groups")
            .and(warp::post())
            .and(with.clone())
            .and(principal.clone())
            .and(peer())
            .and(params::json_body())
            .then(accounts::groups_save),
    ))
    .unify()
    .or(answered(
        "/api/groups",
        warp::path!("api" / "groups")
            .and(warp::delete())
            .and(with.clone())
            .and(principal.clone())
            .and(peer())
            .and(warp::query::<accounts::Named>())
            .then(accounts::groups_remove),
    ))
    .unify()
    .or(answered(
        "/api/audit",
        warp::path!("api" / "audit")
            .and(warp::get())
            .and(with.clone())
            .and(principal.clone())
            .and(warp::query::<accounts::AuditParams>())
            .then(accounts::audit),
    ))
    .unify()
    .boxed();
    sign_in.or(own).unify().or(administration).unify().boxed()
}

/// The route an answer came from, as the route table names it: the `route` label of its
/// latency in `/metrics`.
#[derive(Debug, Clone, Copy)]
struct Route(&'static str);

/// The route `name`: `route`'s handler answer, its [`errors::ApiError`] (from its request
/// filters or its handler) answered by [`errors::recover`], marked with `name`.
fn answered<F>(
    name: &'static str,
    route: F,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone
where
    F: Filter<Extract = (Result<Response, errors::ApiError>,), Error = warp::Rejection>
        + Clone
        + Send
        + Sync
        + 'static,
{
    route
        .and_then(errors::or_reject)
        .recover(errors::recover)
        .unify()
        .map(named(name))
}

/// Marks an answer as given by the route `name`.
fn named(name: &'static str) -> impl Fn(Response) -> Response + Copy {
    move |mut r: Response| {
        r.extensions_mut().insert(Route(name));
        r
    }
}

/// What the client sent to `/ws`.
#[derive(Debug, Deserialize)]
pub struct RawLiveQuery {
    since: Option<String>,
}

/// `/ws?since=EPOCH.ID`: the last message a reconnecting client saw (malformed: none).
#[derive(Debug)]
pub struct LiveQuery {
    /// (epoch, id).
    pub since: Option<(u64, u64)>,
}

impl params::FromQuery for LiveQuery {
    type Raw = RawLiveQuery;

    fn validate(q: RawLiveQuery) -> Result<Self, errors::ApiError> {
        let since = q.since.as_deref().and_then(|s| {
            let (epoch, id) = s.split_once('.')?;
            Some((epoch.parse().ok()?, id.parse().ok()?))
        });
        Ok(LiveQuery { since })
    }
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
            Some(name) => Ok(errors::ApiError::bad_request(format!(
                "the query parameter '{}' holds a NUL character",
                name.replace('\0', "\\0")
            ))
            .into_response()),
            None => Err(warp::reject()),
        }
    })
}
