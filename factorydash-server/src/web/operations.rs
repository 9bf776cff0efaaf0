//! The routes for operators: `/healthz` and `/metrics`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use warp::reply::{self, Reply, Response};

use crate::error_chain::error_chain;
use crate::redact::redacted_in;
use crate::state::App;

/// How long `/healthz` waits for the store's answer before it says the store is degraded.
const HEALTH_PING_TIMEOUT: Duration = Duration::from_secs(2);

/// `/healthz`, open to anyone (load balancers, service managers): the same cost whatever
/// the store holds. The store is pinged (`SELECT 1`), never counted; `observations` is what
/// this process's sources stored since it started, as ingest counted it. `degraded` when
/// the store does not answer or refuses a source's writes (`storeError` says why).
/// `sources`, each source's health, lists those `shown` says; `sourceCount` counts them
/// all.
pub async fn healthz(
    app: Arc<App>,
    scope: crate::accounts::Scope,
    shown: Shown,
) -> Result<Response, Infallible> {
    let store = match tokio::time::timeout(HEALTH_PING_TIMEOUT, app.store.ping()).await {
        Ok(answer) => answer.map_err(|e| error_chain(&e)),
        Err(_) => Err(format!(
            "the store did not answer within {HEALTH_PING_TIMEOUT:?}"
        )),
    };
    let sources = app.health.all();
    let observations: u64 = sources.iter().map(|s| s.observations).sum();
    // A store that answers reads may still refuse writes (an SQLite file on a full disk):
    // degraded too, with the writes' error.
    let refused = sources.iter().find_map(|s| {
        s.store_unavailable_since?;
        Some(redacted_in(s.store_error.as_deref()?).into_owned())
    });
    let store_error = store.err().or(refused);
    let count = sources.len();
    let shown = match shown {
        Shown::Nothing => Vec::new(),
        Shown::Everything => sources,
        Shown::Scope if scope.sees_everything() => sources,
        Shown::Scope => app.health_for(&scope).await,
    };
    let body = json!({
        "status": if store_error.is_none() { "ok" } else { "degraded" },
        "store": app.store_kind,
        "storeError": store_error,
        "observations": observations,
        "sourceCount": count,
        "sources": shown,
    });
    Ok(reply::json(&body).into_response())
}

/// Which sources `/healthz` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// Those of the request's scope (a signed-in user, a token).
    Scope,
    /// None: a request without credentials once users exist (the agents' addresses and
    /// errors are not for anyone on the network).
    Nothing,
    /// All: a request without credentials to a dashboard without users.
    Everything,
}

/// `/metrics`: OpenMetrics text ([`crate::metrics::Metrics::encode`]).
pub fn metrics(metrics: &crate::metrics::Metrics) -> Response {
    reply::with_header(
        metrics.encode(),
        "content-type",
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
    )
    .into_response()
}
