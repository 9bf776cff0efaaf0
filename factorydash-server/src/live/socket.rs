//! `/ws`: the live protocol, one task per WebSocket client, fed by the [`LiveHub`] and
//! its log.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use warp::reply::{Reply, Response};
use warp::ws::{Message, WebSocket};

use tokio_util::sync::CancellationToken;

use super::LiveHub;

/// The largest WebSocket message a client may send, in bytes (a `subscribe` to a few
/// hundred devices fits).
const MAX_CLIENT_MESSAGE: usize = 64 * 1024;

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
    socket: WebSocket,
    since: Option<(u64, u64)>,
) {
    let (mut tx, mut rx) = socket.split();
    let (mut updates, epoch, last, missed) = hub.subscribe(since);
    let mut devices: Option<std::collections::HashSet<String>> = None;
    let hello = json!({ "type": "hello", "epoch": epoch, "id": last }).to_string();
    let health = health();
    if tx.send(Message::text(hello)).await.is_err() || tx.send(Message::text(health)).await.is_err()
    {
        return;
    }
    match missed {
        Some(messages) => {
            for m in messages {
                if tx.send(Message::text(m.json.as_ref())).await.is_err() {
                    return;
                }
            }
        }
        None => {
            if tx
                .send(Message::text(r#"{"type":"resync"}"#))
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
                let _ = tx.send(Message::close_with(1001u16, "server stopping")).await;
                let _ = tx.close().await;
                return;
            }
            update = updates.recv() => {
                let m = match update {
                    Ok(m) => m,
                    Err(RecvError::Lagged(_)) => {
                        let _ = tx.send(Message::close_with(1008u16, "too slow; reconnect with since")).await;
                        return;
                    }
                    Err(RecvError::Closed) => return,
                };
                let wanted = match (&m.device, &devices) {
                    (Some(d), Some(set)) => set.contains(d),
                    _ => true,
                };
                if wanted && tx.send(Message::text(m.json.as_ref())).await.is_err() {
                    return;
                }
            }
            _ = beat.tick() => {
                if heard.elapsed() > CLIENT_TIMEOUT {
                    let _ = tx.send(Message::close_with(1001u16, "no answer")).await;
                    return;
                }
                if tx.send(Message::text(r#"{"type":"heartbeat"}"#)).await.is_err()
                    || tx.send(Message::ping(Vec::new())).await.is_err()
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
                        m.to_str().ok().and_then(|text| serde_json::from_str(text).ok())
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
pub fn upgrade(
    ws: warp::ws::Ws,
    hub: Arc<LiveHub>,
    health: impl FnOnce() -> String + Send + 'static,
    stopping: CancellationToken,
    since: Option<(u64, u64)>,
) -> Response {
    // Clients only send small control messages (`subscribe`): a large one is refused as it
    // arrives, not buffered (tungstenite's default allows 64 MiB).
    ws.max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| client(hub, health, stopping, socket, since))
        .into_response()
}
