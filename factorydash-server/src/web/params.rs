//! Typed requests: each route's query string (or JSON body) is a `Raw` struct of what the
//! client sent, validated once, in the route's filter, into the struct its handler takes
//! ([`FromQuery`], [`query`], [`json_body`]). A request refused here never reaches a
//! handler; the refusal is an [`ApiError`] (400) that says what is wrong.
//!
//! NUL characters are refused before any route, for every parameter, by
//! [`super::refuse_nul`].

use chrono::{DateTime, Utc};
use factorydash_core::TimeWindow;
use serde::de::DeserializeOwned;
use warp::{Filter, Rejection};

use super::errors::ApiError;

/// A request type validated from what the client sent.
pub trait FromQuery: Sized + Send + 'static {
    /// What the client sent, as strings (every field optional: absence is judged in
    /// [`FromQuery::validate`], where the message says which is missing).
    type Raw: DeserializeOwned + Send + 'static;
    /// The request, or why it is refused.
    ///
    /// # Errors
    ///
    /// An [`ApiError`] (400) naming the parameter and what it must be.
    fn validate(raw: Self::Raw) -> Result<Self, ApiError>;
}

/// The route's query string as `T`, validated; refused with an [`ApiError`].
pub fn query<T: FromQuery>() -> impl Filter<Extract = (T,), Error = Rejection> + Clone {
    warp::query::<T::Raw>()
        .and_then(|raw| async move { T::validate(raw).map_err(warp::reject::custom) })
}

/// The largest JSON body a client may send, in bytes.
const MAX_BODY: u64 = 16 * 1024;

/// The request's JSON body as `T`: at most 16 KiB, with a `Content-Length`. A body refused
/// here is answered (400), not passed on to the 404 of no route.
pub fn json_body<T: DeserializeOwned + Send + 'static>(
) -> impl Filter<Extract = (T,), Error = Rejection> + Clone {
    warp::body::content_length_limit(MAX_BODY)
        .and(warp::body::bytes())
        .map(Some)
        .or(warp::any().map(|| None))
        .unify()
        .and_then(|body: Option<warp::hyper::body::Bytes>| async move {
            let body = body.ok_or_else(|| {
                warp::reject::custom(ApiError::bad_request(
                    "the body must be JSON of at most 16 KiB, with a Content-Length",
                ))
            })?;
            serde_json::from_slice::<T>(&body)
                .map_err(|e| {
                    if e.is_data() {
                        ApiError::bad_request(format!("the body is not the JSON expected: {e}"))
                    } else {
                        ApiError::bad_request(format!("the body is not JSON: {e}"))
                    }
                })
                .map_err(warp::reject::custom)
        })
}

/// `v` unless it is absent or empty (an empty form field is no filter).
pub fn text(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty())
}

/// `v`, required: absent or empty is refused as `"{name} is required"`.
pub fn required(v: Option<String>, name: &str) -> Result<String, ApiError> {
    text(v).ok_or_else(|| ApiError::bad_request(format!("{name} is required")))
}

/// A whole number in `range`, `default` when absent; else refused, naming `name`.
pub fn number(
    v: Option<String>,
    name: &str,
    range: std::ops::RangeInclusive<usize>,
    default: usize,
) -> Result<usize, ApiError> {
    match v {
        None => Ok(default),
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "{name} must be a whole number from {} to {}, got '{s}'",
                    range.start(),
                    range.end()
                ))
            }),
    }
}

/// A time (RFC 3339); absent or empty is `None`.
pub fn time(v: Option<String>, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    text(v)
        .map(|s| {
            DateTime::parse_from_rfc3339(&s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    ApiError::bad_request(format!(
                        "{name} must be an RFC 3339 time such as 2026-01-31T12:00:00Z, got '{s}'"
                    ))
                })
        })
        .transpose()
}

/// The window `from`..`to`: `to` defaults to now, `from` to `span` before `to`.
pub fn window(
    from: Option<String>,
    to: Option<String>,
    span: chrono::Duration,
) -> Result<TimeWindow, ApiError> {
    let to = time(to, "to")?.unwrap_or_else(Utc::now);
    let from = time(from, "from")?.unwrap_or(to - span);
    TimeWindow::new(from, to).map_err(|e| ApiError::bad_request(e.to_string()))
}
