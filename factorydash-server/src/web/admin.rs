//! `/api/agents`: the agents followed, and (admin) adding, pausing, resuming and removing
//! them at run time. The change is kept in the store ([`factorydash_store::ConfiguredAgent`])
//! and done by the agent supervisor ([`crate::supervisor::Supervisor`]).

use std::sync::Arc;

use factorydash_store::StoreError;
use serde::Deserialize;
use serde_json::json;
use warp::http::{HeaderMap, StatusCode};
use warp::reply::{self, Reply, Response};

use super::errors::ApiError;
use super::params::{self, FromQuery};
pub use crate::accounts::Actor;
use crate::agents_page::AgentEntry;
use crate::redact::redacted;
use crate::state::App;
use crate::supervisor::identity;

/// Every agent, from the command line or added at run time, by URL (without
/// credentials): whether it was added at run time, whether it is paused, and its health.
/// What `GET /api/agents` lists and the agents page shows.
pub(super) async fn known(app: &App) -> Result<Vec<AgentEntry>, StoreError> {
    let configured = app.store.configured_agents().await?;
    let health = app.health.all();
    let followed = app.agents.followed();
    let mut urls: Vec<String> = followed.clone();
    urls.extend(configured.iter().map(|a| a.url.clone()));
    urls.sort();
    urls.dedup();
    Ok(urls
        .into_iter()
        .map(|url| AgentEntry {
            added_at_run_time: configured.iter().any(|a| a.url == url),
            paused: !followed.contains(&url),
            health: health.iter().find(|h| h.source == url).cloned(),
            url,
        })
        .collect())
}

/// `GET /api/agents`: every agent, from the command line or added at run time, with
/// whether it is paused and its health.
pub async fn list(app: Arc<App>, scope: crate::accounts::Scope) -> Result<Response, ApiError> {
    let mut agents = known(&app).await?;
    if !scope.sees_everything() {
        let devices = app.devices().await?;
        agents.retain(|a| scope.sees_agent(&a.url, &devices));
    }
    let out: Vec<_> = agents
        .iter()
        .map(|a| {
            json!({
                "url": redacted(&a.url),
                "addedAtRunTime": a.added_at_run_time,
                "paused": a.paused,
                "health": a.health,
            })
        })
        .collect();
    Ok(reply::json(&out).into_response())
}

/// What the client sent: `?url=` or the body's `{"url": …}`.
#[derive(Debug, Deserialize)]
pub struct RawAgentUrl {
    url: Option<String>,
}

/// An agent's base URL, in its one form
/// ([`normalize_base_url`](factorydash_mtconnect::client::normalize_base_url)): an
/// `http` or `https` URL, no NUL.
#[derive(Debug)]
pub struct AgentUrl(String);

impl FromQuery for AgentUrl {
    type Raw = RawAgentUrl;

    fn validate(q: RawAgentUrl) -> Result<Self, ApiError> {
        let url = params::required(q.url, "url")?;
        if url.contains('\0') {
            return Err(ApiError::bad_request("url holds a NUL character"));
        }
        let url = factorydash_mtconnect::client::normalize_base_url(&url).map_err(|_| {
            ApiError::bad_request("url must be an http or https URL, e.g. http://10.0.0.5:5000")
        })?;
        Ok(AgentUrl(url))
    }
}

/// Held while an agent is added, paused, resumed or removed: each change looks at what is
/// known and then writes, and two at once (the same agent added twice with other
/// credentials) must not both pass the look.
static CHANGING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Refused (409) when this server plays a recording: it follows no agents.
fn following_agents(app: &App) -> Result<(), ApiError> {
    if !app.agents.follows_agents() {
        return Err(ApiError::conflict(
            "this factorydash plays a recording; it follows no agents",
        ));
    }
    Ok(())
}

/// `POST /api/agents` with `{"url": "http://…"}` (admin): follows the agent from now on
/// and after restarts (201, or 200 when it was followed already, with the same URL). The
/// agent is its URL without credentials: one known with other credentials (given on the
/// command line or added before) is refused (409), so that every agent is one URL as
/// shown.
pub async fn add(app: Arc<App>, actor: Actor, body: RawAgentUrl) -> Result<Response, ApiError> {
    following_agents(&app)?;
    let _changing = CHANGING.lock().await;
    let AgentUrl(url) = AgentUrl::validate(body)?;
    factorydash_mtconnect::client::AgentClient::new(&url)
        .map_err(|e| ApiError::bad_request(format!("not an agent URL: {e}")))?;
    let agent = identity(&url);
    let known = match app.agents.url_to_connect(&agent) {
        Some(connect) => Some(connect),
        None => stored_url_to_connect(&app, &agent).await?,
    };
    if known.is_some_and(|known| known != url) {
        return Err(conflict(&agent));
    }
    app.store
        .put_configured_agent(&factorydash_store::ConfiguredAgent {
            url: url.clone(),
            paused: false,
        })
        .await?;
    let started = app.agents.start(&url).map_err(|e| conflict(&e.agent))?;
    let status = if started {
        actor.audit("agent-added", &redacted(&agent), "").await;
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(reply::with_status(
        reply::json(&json!({ "url": redacted(&agent), "following": true })),
        status,
    )
    .into_response())
}

/// The 409 of an agent added twice with other credentials.
fn conflict(agent: &str) -> ApiError {
    ApiError::conflict(format!(
        "the agent {} is followed already, with other credentials; remove it first (or pause it and add it again) to change them",
        redacted(agent)
    ))
}

/// The URL to connect with of an agent added at run time (its identity): with the
/// credentials the store keeps for it; `None` when it was not added at run time.
async fn stored_url_to_connect(app: &App, agent: &str) -> Result<Option<String>, ApiError> {
    if !app
        .store
        .configured_agents()
        .await?
        .iter()
        .any(|a| a.url == agent)
    {
        return Ok(None);
    }
    Ok(Some(match app.store.agent_credentials(agent).await? {
        Some(c) => c.in_url(agent),
        None => agent.to_owned(),
    }))
}

/// `POST /api/agents/pause?url=` (`paused`) and `/api/agents/resume?url=`: stops or starts
/// following a known agent, and keeps that across restarts. The agent is named by its URL
/// (credentials in it, shown redacted or not, are not looked at): one agent at most.
pub async fn set_paused(
    app: Arc<App>,
    actor: Actor,
    q: AgentUrl,
    paused: bool,
) -> Result<Response, ApiError> {
    following_agents(&app)?;
    let _changing = CHANGING.lock().await;
    let agent = identity(&q.0);
    let stored = stored_url_to_connect(&app, &agent).await?;
    let Some(connect) = app.agents.url_to_connect(&agent).or(stored) else {
        return Err(ApiError::not_found(format!(
            "no agent {}",
            redacted(&agent)
        )));
    };
    app.store
        .put_configured_agent(&factorydash_store::ConfiguredAgent {
            url: agent.clone(),
            paused,
        })
        .await?;
    if paused {
        app.agents.stop(&agent);
        app.health
            .update(&agent, |h| h.state = crate::health::SourceState::Paused);
    } else {
        app.agents.start(&connect).map_err(|e| conflict(&e.agent))?;
    }
    let action = if paused {
        "agent-paused"
    } else {
        "agent-resumed"
    };
    actor.audit(action, &redacted(&agent), "").await;
    Ok(reply::json(&json!({ "url": redacted(&agent), "following": !paused })).into_response())
}

/// `DELETE /api/agents?url=`: stops and forgets an agent added at run time, and its
/// credentials (what was stored from it stays).
pub async fn remove(app: Arc<App>, actor: Actor, q: AgentUrl) -> Result<Response, ApiError> {
    following_agents(&app)?;
    let _changing = CHANGING.lock().await;
    let agent = identity(&q.0);
    let removed = app.store.remove_configured_agent(&agent).await?;
    if !removed {
        return Err(ApiError::not_found(format!(
            "no agent {} was added at run time (agents given on the command line stay; pause them instead)",
            redacted(&agent)
        )));
    }
    app.agents.forget(&agent);
    app.health.forget(&agent);
    actor.audit("agent-removed", &redacted(&agent), "").await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /admin/agents`: the agents page's forms, for a browser without JavaScript (with
/// it, the page calls the JSON routes above). Fields: `csrf` (the form token,
/// [`super::accounts::form_token`]), `action` (`add`, `pause`, `resume` or `remove`) and
/// `url`. Done: `303` back to `/agents?done=`; refused: a page saying why, with the JSON
/// route's status.
pub async fn form(
    app: Arc<App>,
    actor: Actor,
    headers: HeaderMap,
    form: super::accounts::Form,
) -> Result<Response, ApiError> {
    super::accounts::check_form(&headers, &form)?;
    let url = RawAgentUrl {
        url: form.get("url").cloned(),
    };
    let action = form.get("action").map_or("", String::as_str);
    let (done, result) = match action {
        "add" => ("agent-added", add(app, actor, url).await),
        "pause" | "resume" => (
            if action == "pause" {
                "agent-paused"
            } else {
                "agent-resumed"
            },
            match AgentUrl::validate(url) {
                Ok(q) => set_paused(app, actor, q, action == "pause").await,
                Err(e) => Err(e),
            },
        ),
        "remove" => (
            "agent-removed",
            match AgentUrl::validate(url) {
                Ok(q) => remove(app, actor, q).await,
                Err(e) => Err(e),
            },
        ),
        _ => {
            return Err(ApiError::bad_request(
                "action: add, pause, resume or remove",
            ))
        }
    };
    match result {
        Ok(_) => Ok(super::accounts::see_other(&format!("/agents?done={done}"))),
        Err(e) => Ok(reply::with_status(
            reply::html(crate::agents_page::render_refused(e.message())),
            e.status(),
        )
        .into_response()),
    }
}
