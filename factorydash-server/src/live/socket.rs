//! `/ws`: the live protocol, one task per WebSocket client, fed by the [`LiveHub`] and
//! its log; and the upgrade to it ([`websocket`], [`Upgrade::into_response`]), our own
//! rather than warp's so that an idle client costs a few KB (warp's fixes tungstenite's
//! 128 KiB read buffer, zero-filled on the first read, for what clients send: a few
//! hundred bytes).

use std::sync::Arc;
use std::time::Duration;

use futures_util::{Sink, SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use warp::http::{header, StatusCode};
use warp::hyper::upgrade::OnUpgrade;
use warp::reply::{Reply, Response};
use warp::{Filter, Rejection};

use tokio_util::sync::CancellationToken;

use super::LiveHub;
use crate::web::errors::ApiError;

/// The largest WebSocket message a client may send, in bytes (a `subscribe` to a few
/// hundred devices fits).
const MAX_CLIENT_MESSAGE: usize = 64 * 1024;

/// The read buffer of a client's connection, in bytes: what clients send is small, and a
/// larger message is read in several steps, not refused.
const READ_BUFFER: usize = 4 * 1024;

/// What is queued for a client before it is written, in bytes: a burst of messages goes in
/// one write ([`feed`], [`flush`]).
const WRITE_BUFFER: usize = 16 * 1024;

/// The most live clients at once; one more is answered `503` before its upgrade.
pub const MAX_CLIENTS: usize = 20_000;

/// How long one message may take to be taken by a client (its TCP window full: it stopped
/// reading); then the client is closed, and reconnects with `since` if it is alive.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

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

/// The most messages written to a client at once.
const MAX_BURST: usize = 64;

/// Queues `message` to be written by the next [`flush`] (written now if the queue passes
/// the write buffer), unless the client takes longer than [`SEND_TIMEOUT`].
async fn feed<S>(tx: &mut S, message: Message) -> Result<(), ()>
where
    S: Sink<Message> + Unpin,
{
    match tokio::time::timeout(SEND_TIMEOUT, tx.feed(message)).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

/// Writes what [`feed`] queued, unless the client takes longer than [`SEND_TIMEOUT`].
async fn flush<S>(tx: &mut S) -> Result<(), ()>
where
    S: Sink<Message> + Unpin,
{
    match tokio::time::timeout(SEND_TIMEOUT, tx.flush()).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

/// A close message with `code` and `reason`.
fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    }))
}

/// Sends `message`, unless the client takes longer than [`SEND_TIMEOUT`] to take it.
async fn send<S>(tx: &mut S, message: Message) -> Result<(), ()>
where
    S: Sink<Message> + Unpin,
{
    match tokio::time::timeout(SEND_TIMEOUT, tx.send(message)).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

/// How often the server shows a client it is alive (a `heartbeat` message and a ping).
const HEARTBEAT: Duration = Duration::from_secs(15);
/// A client silent this long (not even a pong) is gone.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(45);

/// One WebSocket client of the live protocol:
///
/// - first `{"type":"hello","epoch":E,"id":N}` and the sources' health;
/// - `?since=E.N` (the last message a reconnecting client saw): the messages it missed, in
///   order, or `{"type":"resync"}` when they are no longer held (it reloads what it shows);
/// - the client sends `{"type":"subscribe","devices":[…]}` to get only those devices'
///   `latest` messages (no list: every device); health messages go to every client;
/// - every message carries its `id`; a `heartbeat` every 15 s; a client silent for 45 s
///   (no pong either) is closed, and so is one too slow to keep up (it would only grow
///   the server's memory): it reconnects with `since`.
async fn client(
    hub: Arc<LiveHub>,
    health: impl FnOnce() -> String,
    stopping: CancellationToken,
    socket: WebSocketStream<hyper_util::rt::TokioIo<warp::hyper::upgrade::Upgraded>>,
    since: Option<(u64, u64)>,
) {
    let (mut tx, mut rx) = socket.split();
    let (mut updates, epoch, last, missed) = hub.subscribe(since);
    let mut devices: Option<std::collections::HashSet<String>> = None;
    let hello = json!({ "type": "hello", "epoch": epoch, "id": last }).to_string();
    let health = health();
    if send(&mut tx, Message::text(hello)).await.is_err()
        || send(&mut tx, Message::text(health)).await.is_err()
    {
        return;
    }
    match missed {
        Some(messages) => {
            for m in messages {
                if send(&mut tx, Message::Text(m.json.clone())).await.is_err() {
                    return;
                }
            }
        }
        None => {
            if send(&mut tx, Message::text(r#"{"type":"resync"}"#))
                .await
                .is_err()
            {
                return;
            }
        }
    }
    let mut beat = tokio::time::interval(HEARTBEAT);
    let mut heard = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = stopping.cancelled() => {
                let _ = send(&mut tx, close(1001, "server stopping")).await;
                let _ = tx.close().await;
                return;
            }
            update = updates.recv() => {
                // This message and any others already waiting, written at once (one write
                // for a burst, not one per message).
                let mut next = Some(update);
                let mut fed = 0;
                while let Some(update) = next.take() {
                    let m = match update {
                        Ok(m) => m,
                        Err(RecvError::Lagged(_)) => {
                            let _ = send(&mut tx, close(1008, "too slow; reconnect with since")).await;
                            return;
                        }
                        Err(RecvError::Closed) => return,
                    };
                    let wanted = match (&m.device, &devices) {
                        (Some(d), Some(set)) => set.contains(d),
                        _ => true,
                    };
                    if wanted {
                        if feed(&mut tx, Message::Text(m.json.clone())).await.is_err() {
                            return;
                        }
                        fed += 1;
                    }
                    if fed < MAX_BURST {
                        next = match updates.try_recv() {
                            Err(TryRecvError::Empty) => None,
                            Err(TryRecvError::Lagged(n)) => Some(Err(RecvError::Lagged(n))),
                            Err(TryRecvError::Closed) => Some(Err(RecvError::Closed)),
                            Ok(m) => Some(Ok(m)),
                        };
                    }
                }
                if fed > 0 && flush(&mut tx).await.is_err() {
                    return;
                }
            }
            _ = beat.tick() => {
                if heard.elapsed() > CLIENT_TIMEOUT {
                    let _ = send(&mut tx, close(1001, "no answer")).await;
                    return;
                }
                if send(&mut tx, Message::text(r#"{"type":"heartbeat"}"#)).await.is_err()
                    || send(&mut tx, Message::Ping(Default::default())).await.is_err()
                {
                    return;
                }
            }
            incoming = rx.next() => match incoming {
                Some(Ok(m)) if m.is_close() => return,
                Some(Ok(m)) => {
                    heard = tokio::time::Instant::now();
                    // Anything else a client sends (not JSON, another type) is ignored.
                    if let Some(ClientMessage::Subscribe { devices: wanted }) =
                        m.to_text().ok().and_then(|text| serde_json::from_str(text).ok())
                    {
                        devices = wanted.map(|list| list.into_iter().flatten().collect());
                    }
                }
                Some(Err(_)) | None => return,
            },
        }
    }
}

/// A message from a client.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    /// Only these devices' `latest` messages from now on (`None`: every device's). An
    /// entry that is not a string is skipped.
    Subscribe {
        #[serde(default)]
        devices: Option<Vec<Option<String>>>,
    },
}

/// Upgrades `/ws` to one [`client`] of the live protocol.
///
/// `health` gives every source's health (the client's first `health` message, read once
/// it is subscribed); the client is closed when `stopping` is cancelled.
/// Clients only send small control messages (`subscribe`): a larger one than
/// [`MAX_CLIENT_MESSAGE`] is refused as it arrives, not buffered. Past [`MAX_CLIENTS`]
/// clients, a new one is answered `503`.
pub fn upgrade(
    ws: Upgrade,
    hub: Arc<LiveHub>,
    health: impl FnOnce() -> String + Send + 'static,
    stopping: CancellationToken,
    since: Option<(u64, u64)>,
) -> Response {
    if hub.clients() >= MAX_CLIENTS {
        return ApiError::unavailable(format!(
            "{MAX_CLIENTS} live clients are connected already; try again later"
        ))
        .into_response();
    }
    ws.into_response(move |socket| client(hub, health, stopping, socket, since))
}
