//! The WebSocket upgrade of `/ws` (RFC 6455, section 4.2), our own rather than warp's so
//! that an idle live client costs a few KB: warp's fixes tungstenite's 128 KiB read buffer,
//! zero-filled on the first read, for what clients send (a few hundred bytes). The
//! protocol on the upgraded connection is [`crate::live::socket`]'s.

use std::sync::Arc;

use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;
use warp::http::{header, StatusCode};
use warp::hyper::upgrade::OnUpgrade;
use warp::reply::{Reply, Response};
use warp::{Filter, Rejection};

use super::errors::ApiError;
use crate::live::LiveHub;

/// The largest WebSocket message a client may send, in bytes (a `subscribe` to a few
/// hundred devices fits).
const MAX_CLIENT_MESSAGE: usize = 64 * 1024;

/// The read buffer of a client's connection, in bytes: what clients send is small, and a
/// larger message is read in several steps, not refused.
const READ_BUFFER: usize = 4 * 1024;

/// What is queued for a client before it is written, in bytes: a burst of messages goes in
/// one write (`feed` then `flush`, in [`crate::live::socket`]).
const WRITE_BUFFER: usize = 16 * 1024;

/// The most live clients at once; one more is answered `503` before its upgrade.
pub const MAX_CLIENTS: usize = 20_000;

/// The settings of every client's connection.
fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(Some(MAX_CLIENT_MESSAGE))
        .max_frame_size(Some(MAX_CLIENT_MESSAGE))
}

/// A request to become a WebSocket (RFC 6455, section 4.2.1), accepted by [`websocket`].
pub struct Upgrade {
    accept: String,
    on_upgrade: OnUpgrade,
}

/// Accepts a WebSocket opening handshake (RFC 6455, 4.2.1: `GET`, `Connection: Upgrade`,
/// `Upgrade: websocket`, `Sec-WebSocket-Version: 13`, a `Sec-WebSocket-Key`); anything else
/// is refused with an [`ApiError`] (400).
pub fn websocket() -> impl Filter<Extract = (Upgrade,), Error = Rejection> + Clone {
    warp::get()
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<OnUpgrade>())
        .and_then(
            |headers: warp::http::HeaderMap, on_upgrade: Option<OnUpgrade>| async move {
                let has = |name: header::HeaderName, token: &str| {
                    headers.get_all(name).iter().any(|v| {
                        v.to_str().is_ok_and(|v| {
                            v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token))
                        })
                    })
                };
                let refuse = |why: &str| {
                    Err(warp::reject::custom(ApiError::bad_request(format!(
                        "/ws is a WebSocket: {why}"
                    ))))
                };
                if !has(header::CONNECTION, "upgrade") || !has(header::UPGRADE, "websocket") {
                    return refuse("the request must ask to upgrade to a websocket");
                }
                if !has(header::SEC_WEBSOCKET_VERSION, "13") {
                    return refuse("Sec-WebSocket-Version must be 13");
                }
                let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
                    return refuse("Sec-WebSocket-Key is missing");
                };
                let Some(on_upgrade) = on_upgrade else {
                    return refuse("this connection cannot be upgraded");
                };
                let accept =
                    tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
                Ok(Upgrade { accept, on_upgrade })
            },
        )
}

impl Upgrade {
    /// Answers `101 Switching Protocols` and, once the connection is switched, runs `run`
    /// on the WebSocket.
    fn into_response<F, Fut>(self, run: F) -> Response
    where
        F: FnOnce(WebSocketStream<hyper_util::rt::TokioIo<warp::hyper::upgrade::Upgraded>>) -> Fut
            + Send
            + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let Upgrade { accept, on_upgrade } = self;
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let io = hyper_util::rt::TokioIo::new(upgraded);
                    let socket =
                        WebSocketStream::from_raw_socket(io, Role::Server, Some(config())).await;
                    run(socket).await;
                }
                Err(e) => tracing::debug!(error = %e, "a WebSocket upgrade did not complete"),
            }
        });
        let mut response = Response::new(warp::hyper::body::Bytes::new().into());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(
            header::CONNECTION,
            header::HeaderValue::from_static("upgrade"),
        );
        headers.insert(
            header::UPGRADE,
            header::HeaderValue::from_static("websocket"),
        );
        if let Ok(accept) = header::HeaderValue::from_str(&accept) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        response
    }
}

/// Upgrades `/ws` to one [`client`](crate::live::socket::client) of the live protocol.
///
/// `health` gives every source's health (the client's first `health` message, read once
/// it is subscribed); the client is closed when `stopping` is cancelled.
/// Clients only send small control messages (`subscribe`): a larger one than
/// [`MAX_CLIENT_MESSAGE`] is refused as it arrives, not buffered. Past [`MAX_CLIENTS`]
/// clients, a new one is answered `503`.
pub fn live(
    ws: Upgrade,
    hub: Arc<LiveHub>,
    health: impl Fn() -> String + Send + 'static,
    stopping: CancellationToken,
    since: Option<(u64, u64)>,
    filter: crate::live::ScopeFilter,
    recheck: crate::live::socket::Recheck,
) -> Response {
    if hub.clients() >= MAX_CLIENTS {
        return ApiError::unavailable(format!(
            "{MAX_CLIENTS} live clients are connected already; try again later"
        ))
        .into_response();
    }
    ws.into_response(move |socket| {
        crate::live::socket::client(hub, health, stopping, socket, since, filter, recheck)
    })
}
