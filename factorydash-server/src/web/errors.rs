//! The one error of the web layer, [`ApiError`], and the one [`recover`] that answers it
//! as JSON `{"error": "..."}` with its status.

use factorydash_store::StoreError;
use serde_json::json;
use warp::http::StatusCode;
use warp::reply::{self, Reply, Response};
use warp::Rejection;

use crate::error_chain::error_chain;

/// A request the server refuses or cannot answer, answered as JSON `{"error": "..."}`.
///
/// Handlers return it (`?` converts a [`StoreError`]); request filters and
/// [`or_reject`] reject with it; [`recover`] turns it into the answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    /// 400: the request is wrong, and `message` says how.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    /// 404: what the request names does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }

    /// 503: the server cannot take this request now (`message` says why).
    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: message.into(),
        }
    }

    /// 403: the request's principal may not do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::FORBIDDEN,
            message: message.into(),
        }
    }

    /// 409: the request cannot be done in this server's state.
    pub fn conflict(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::CONFLICT,
            message: message.into(),
        }
    }
}

impl ApiError {
    /// Its status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// What it says.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl warp::reject::Reject for ApiError {}

impl From<crate::devices::Unresolved> for ApiError {
    /// 404 for a device no agent serves, 409 for a name several agents serve (the message
    /// names them).
    fn from(e: crate::devices::Unresolved) -> Self {
        match e {
            e @ crate::devices::Unresolved::Unknown { .. } => ApiError::not_found(e.to_string()),
            e @ crate::devices::Unresolved::Ambiguous { .. } => ApiError::conflict(e.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::InvalidCursor(_) => {
                ApiError::bad_request("invalid cursor: pass back the `next` of a previous page")
            }
            StoreError::Invalid(why) => ApiError::bad_request(why),
            e => {
                tracing::error!(error = %error_chain(&e), "store query failed");
                ApiError {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    message: "the store is not available; retry shortly".into(),
                }
            }
        }
    }
}

impl Reply for &ApiError {
    fn into_response(self) -> Response {
        reply::with_status(reply::json(&json!({ "error": self.message })), self.status)
            .into_response()
    }
}

impl Reply for ApiError {
    fn into_response(self) -> Response {
        (&self).into_response()
    }
}

/// A handler's error as a [`Rejection`], for [`recover`] to answer: every route's last
/// step (`.then(handler).and_then(or_reject)`).
pub async fn or_reject(answer: Result<Response, ApiError>) -> Result<Response, Rejection> {
    answer.map_err(warp::reject::custom)
}

/// Answers a rejection that holds an [`ApiError`], and passes every other on (to the 404
/// of no route).
pub async fn recover(r: Rejection) -> Result<Response, Rejection> {
    if let Some(e) = r.find::<ApiError>() {
        return Ok(e.into_response());
    }
    Err(r)
}

/// The answer to a request no route takes: 404 `{"error": "not found"}`.
pub fn not_found() -> Response {
    ApiError::not_found("not found").into_response()
}
