//! The live protocol over a real WebSocket: subscriptions by device, ids without holes,
//! and a reconnecting client given exactly what it missed (or told to reload).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{recording, serve_replay, wait_for};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("a message within 20 s")
            .unwrap()
            .unwrap();
        if let Message::Text(t) = msg {
            return serde_json::from_str(t.as_str()).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn subscriptions_ids_and_resuming_after_a_reconnect() {
    let shdr = recording()
        .parent()
        .unwrap()
        .join("nist-3-machines-shdr-2016");
    let server = serve_replay(&shdr, "200").await;
    wait_for(&server.base, Duration::from_secs(30), "data", |h| {
        h["observations"].as_u64().unwrap_or(0) > 0
    })
    .await;
    let ws_url = format!("{}/ws", server.base.replace("http://", "ws://"));

    // Subscribed to one device: only its latest values, ids rising.
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
        .await
        .unwrap();
    let hello = next_json(&mut ws).await;
    assert_eq!(hello["type"], "hello");
    let epoch = hello["epoch"].as_u64().unwrap();
    ws.send(Message::text(
        r#"{"type":"subscribe","devices":["Mazak01"]}"#,
    ))
    .await
    .unwrap();
    let mut last = hello["id"].as_u64().unwrap();
    let mut latest = 0;
    while latest < 8 {
        let m = next_json(&mut ws).await;
        if let Some(id) = m["id"].as_u64() {
            assert!(id > last, "ids rise: {id} after {last}");
            last = id;
        }
        if m["type"] == "latest" {
            latest += 1;
            // The subscription takes effect once read; skip what was already on its way.
            if latest > 2 {
                assert_eq!(m["device"], "Mazak01", "{m}");
                assert!(m["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|o| o["device"] == "Mazak01"));
            }
        }
    }
    ws.close(None).await.unwrap();
    drop(ws);

    // Away for a second, back with since: exactly what was missed, no hole, then live.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("{ws_url}?since={epoch}.{last}").as_str())
            .await
            .unwrap();
    let hello = next_json(&mut ws).await;
    assert_eq!(
        (hello["type"].as_str(), hello["epoch"].as_u64()),
        (Some("hello"), Some(epoch))
    );
    assert!(
        hello["id"].as_u64().unwrap() > last,
        "messages were sent meanwhile"
    );
    let mut ids = Vec::new();
    while ids.len() < 40 {
        let m = next_json(&mut ws).await;
        assert_ne!(m["type"], "resync", "the missed messages are still held");
        if m["type"] == "health" && m["id"].is_null() {
            continue; // the greeting's health
        }
        if let Some(id) = m["id"].as_u64() {
            ids.push(id);
        }
    }
    let want: Vec<u64> = (last + 1..=last + 40).collect();
    assert_eq!(ids, want, "every message after {last}, in order");
    drop(ws);

    // Another process's epoch (a restarted server): told to reload.
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("{ws_url}?since={}.1", epoch + 1).as_str())
            .await
            .unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "hello");
    assert_eq!(next_json(&mut ws).await["type"], "health");
    assert_eq!(next_json(&mut ws).await["type"], "resync");
}

/// `/ws` is only a WebSocket: a plain GET is told so (400, JSON); a client message past
/// 64 KiB ends the connection rather than being buffered; the live messages carry what
/// the page shows, rendered by the server.
#[tokio::test(flavor = "multi_thread")]
async fn the_upgrade_is_checked_and_a_huge_client_message_ends_the_connection() {
    let server = serve_replay(&recording(), "100").await;
    let (status, body) = crate::support::get_json(&format!("{}/ws", server.base)).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("WebSocket"),
        "{body}"
    );

    let ws_url = format!("{}/ws", server.base.replace("http://", "ws://"));
    let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "hello");
    let health = next_json(&mut ws).await;
    assert_eq!(health["type"], "health");
    assert!(
        health["sourcesHtml"]
            .as_str()
            .unwrap()
            .starts_with("<section id=\"sources\""),
        "{health}"
    );
    // Wait for a `latest` message: its values come with their text and tiles rendered.
    let latest = loop {
        let m = next_json(&mut ws).await;
        if m["type"] == "latest" {
            break m;
        }
    };
    assert!(latest["items"][0]["shown"].is_string(), "{latest}");
    assert!(
        latest["cardsHtml"][0]
            .as_str()
            .unwrap()
            .starts_with("<article class=\"card"),
        "{latest}"
    );

    let huge = format!(
        r#"{{"type":"subscribe","devices":["{}"]}}"#,
        "x".repeat(100 * 1024)
    );
    let _ = ws.send(Message::text(huge)).await;
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return true,
                Some(Ok(_)) => {}
            }
        }
    })
    .await;
    assert_eq!(ended, Ok(true), "the connection outlived a 100 KiB message");
}
