//! `/ws`: the live protocol, one task per WebSocket client ([`client`]), fed by the
//! [`LiveHub`] and its log. The upgrade to it is the web layer's
//! (`crate::web::upgrade`).

use std::sync::Arc;
use std::time::Duration;

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

use tokio_util::sync::CancellationToken;

use super::LiveHub;

/// How long one message may take to be taken by a client (its TCP window full: it stopped
/// reading); then the client is closed, and reconnects with `since` if it is alive.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

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
///   `latest` messages, one message per device (no list: every device, the start: a
///   message per round for many devices, without `device`); with `"view":"board"`,
///   `"tiles":true|false` and `"rows":[[agent, device, dataItemId], …]`, a `board`
///   message per round instead, with what the page shows only ([`super::board`]), and
///   every tile at once first; health messages go to every client;
/// - every message carries its `id`; a `heartbeat` every 15 s; a client silent for 45 s
///   (no pong either) is closed, and so is one too slow to keep up (it would only grow
///   the server's memory): it reconnects with `since`; a board client that falls behind
///   is instead sent every tile and `{"type":"resync","rows":true}`, and goes on.
pub async fn client<S>(
    hub: Arc<LiveHub>,
    health: impl Fn() -> String,
    stopping: CancellationToken,
    socket: S,
    since: Option<(u64, u64)>,
    filter: super::ScopeFilter,
    recheck: Recheck,
) where
    S: Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
        + Sink<Message>
        + Unpin,
{
    let (mut tx, mut rx) = socket.split();
    let (mut updates, epoch, last, missed) = hub.subscribe(since);
    let mut subscription = super::Subscription::new(hub.clone());
    // A scoped client is subscribed to its devices, one by one, from the start.
    if !filter.is_everything() {
        subscription.set(filter.subscription(None), None);
    }
    let hello = json!({ "type": "hello", "epoch": epoch, "id": last }).to_string();
    if send(&mut tx, Message::text(hello)).await.is_err()
        || send(&mut tx, Message::text(health())).await.is_err()
    {
        return;
    }
    match missed {
        Some(messages) => {
            for m in messages
                .iter()
                .filter(|m| subscription.wants(&m.audience) && filter.allows(&m.audience))
            {
                if send(&mut tx, Message::Text(m.json.clone())).await.is_err() {
                    return;
                }
            }
            // (A board client says so after this: it is sent every tile then.)
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
                        Err(RecvError::Lagged(_)) if subscription.view().is_some() => {
                            // A board client that fell behind: what it missed is dropped
                            // (the queue stays bounded), and it is sent every tile as it
                            // is now and told to read its rows again.
                            let full = hub.board_snapshot(subscription.devices(), &filter);
                            if feed(&mut tx, Message::Text(full)).await.is_err()
                                || feed(&mut tx, Message::text(r#"{"type":"resync","rows":true}"#)).await.is_err()
                            {
                                return;
                            }
                            fed += 2;
                            next = None;
                            continue;
                        }
                        Err(RecvError::Lagged(_)) => {
                            let _ = send(&mut tx, close(1008, "too slow; reconnect with since")).await;
                            return;
                        }
                        Err(RecvError::Closed) => return,
                    };
                    if let (Some(round), Some(view)) = (&m.board, subscription.view()) {
                        if let Some(text) = round.message_for(view, subscription.devices(), &filter) {
                            if feed(&mut tx, Message::Text(text)).await.is_err() {
                                return;
                            }
                            fed += 1;
                        }
                    } else if subscription.wants(&m.audience) && filter.allows(&m.audience) {
                        if feed(&mut tx, Message::Text(m.json.clone())).await.is_err() {
                            return;
                        }
                        fed += 1;
                    } else if m.audience == super::Audience::Everyone && !filter.is_everything() {
                        // The sources' health, of this client's agents only.
                        if feed(&mut tx, Message::text(health())).await.is_err() {
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
                // Signed out, disabled, expired, or given other rights since it
                // connected: closed (a client that may still read reconnects, with its
                // rights as they are now).
                if !recheck().await {
                    let _ = send(&mut tx, close(1008, "credentials or rights changed; reconnect")).await;
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
                    if let Some(ClientMessage::Subscribe { devices: wanted, view, tiles, rows }) =
                        m.to_text().ok().and_then(|text| serde_json::from_str(text).ok())
                    {
                        let board = (view.as_deref() == Some("board"))
                            .then(|| super::board::BoardView::new(tiles, &rows));
                        let devices = filter.subscription(wanted.map(|list| {
                            list.into_iter().filter_map(|d| d.as_str().map(str::to_owned)).collect()
                        }));
                        let tiles = board.as_ref().is_some_and(|b| b.tiles);
                        subscription.set(devices, board);
                        if tiles {
                            // Every tile as it is now: what changed between the page's
                            // reading and this subscription is not missed.
                            let full = hub.board_snapshot(subscription.devices(), &filter);
                            if send(&mut tx, Message::Text(full)).await.is_err() {
                                return;
                            }
                        }
                    }
                }
                Some(Err(_)) | None => return,
            },
        }
    }
}

/// Whether a client may go on as it connected (its credentials still valid, its rights
/// unchanged): asked at every heartbeat ([`HEARTBEAT`]).
pub type Recheck = Box<dyn Fn() -> futures_util::future::BoxFuture<'static, bool> + Send>;

/// A message from a client.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    /// Only these devices' messages from now on (`None`: every device's). An entry that
    /// is not a string is skipped. With `view` `"board"`: board rounds
    /// ([`super::board`]) with the tiles (`tiles`) and the rows (`rows`, each `[agent,
    /// device, dataItemId]`) the page shows, instead of `latest` messages.
    Subscribe {
        #[serde(default)]
        devices: Option<Vec<serde_json::Value>>,
        #[serde(default)]
        view: Option<String>,
        #[serde(default)]
        tiles: bool,
        #[serde(default)]
        rows: Vec<serde_json::Value>,
    },
}
