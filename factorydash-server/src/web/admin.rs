//! `/api/agents`: the agents followed, and (admin) adding, pausing, resuming and removing
//! them at run time. The change is kept in the store ([`factorydash_store::ConfiguredAgent`])
//! and done by the agent supervisor ([`crate::supervisor::Supervisor`]).

use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;
use warp::http::StatusCode;
use warp::reply::{self, Reply, Response};

use super::errors::ApiError;
use super::params::{self, FromQuery};
use crate::redact::redacted;
use crate::state::App;

/// `GET /api/agents`: every agent, from the command line or added at run time, with
/// whether it is paused and its health.
pub async fn list(app: Arc<App>) -> Result<Response, ApiError> {
    let configured = app.store.configured_agents().await?;
    let health = app.health.all();
    let followed = app.agents.followed();
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
                "addedAtRunTime": added.is_some(),
                "paused": !followed.contains(url),
                "health": health.iter().find(|h| h.source == *url),
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
/// and after restarts (201, or 200 when it was followed already).
pub async fn add(app: Arc<App>, body: RawAgentUrl) -> Result<Response, ApiError> {
    following_agents(&app)?;
    let AgentUrl(url) = AgentUrl::validate(body)?;
    factorydash_mtconnect::client::AgentClient::new(&url)
        .map_err(|e| ApiError::bad_request(format!("not an agent URL: {e}")))?;
    app.store
        .put_configured_agent(&factorydash_store::ConfiguredAgent {
            url: url.clone(),
            paused: false,
        })
        .await?;
    let started = app.agents.start(&url);
    let status = if started {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(reply::with_status(
        reply::json(&json!({ "url": redacted(&url), "following": true })),
        status,
    )
    .into_response())
}

/// `POST /api/agents/pause?url=` (`paused`) and `/api/agents/resume?url=`: stops or starts
/// following a known agent, and keeps that across restarts.
pub async fn set_paused(app: Arc<App>, q: AgentUrl, paused: bool) -> Result<Response, ApiError> {
    following_agents(&app)?;
    let url = known_agent(&app, q.0).await?;
    let known = app.agents.followed().contains(&url)
        || app
            .store
            .configured_agents()
            .await?
            .iter()
            .any(|a| a.url == url);
    if !known {
        return Err(ApiError::not_found(format!("no agent {}", redacted(&url))));
    }
    app.store
        .put_configured_agent(&factorydash_store::ConfiguredAgent {
            url: url.clone(),
            paused,
        })
        .await?;
    if paused {
        app.agents.stop(&url);
        app.health
            .update(&url, |h| h.state = crate::health::SourceState::Paused);
    } else {
        app.agents.start(&url);
    }
    Ok(reply::json(&json!({ "url": redacted(&url), "following": !paused })).into_response())
}

/// `DELETE /api/agents?url=`: stops and forgets an agent added at run time (what was
/// stored from it stays).
pub async fn remove(app: Arc<App>, q: AgentUrl) -> Result<Response, ApiError> {
    following_agents(&app)?;
    let url = known_agent(&app, q.0).await?;
    let removed = app.store.remove_configured_agent(&url).await?;
    if !removed {
        return Err(ApiError::not_found(format!(
            "no agent {} was added at run time (agents given on the command line stay; pause them instead)",
            redacted(&url)
        )));
    }
    app.agents.stop(&url);
    app.health.forget(&url);
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The agent that `given` names: the URL of an agent followed or added at run time, as
/// given or as shown with its credentials redacted (when one agent only is shown so);
/// else `given` itself.
async fn known_agent(app: &App, given: String) -> Result<String, ApiError> {
    let mut known = app.agents.followed();
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
