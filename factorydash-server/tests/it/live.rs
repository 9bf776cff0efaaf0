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

/// Reads text messages from `ws` for `d`: each parsed, with the bytes received.
async fn collect(ws: &mut Ws, d: Duration) -> (Vec<Value>, usize) {
    let (mut out, mut bytes) = (Vec::new(), 0);
    let until = tokio::time::Instant::now() + d;
    while let Ok(Some(Ok(m))) = tokio::time::timeout_at(until, ws.next()).await {
        if let Message::Text(t) = m {
            bytes += t.len();
            out.push(serde_json::from_str(t.as_str()).unwrap());
        }
    }
    (out, bytes)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_board_client_gets_every_tile_once_then_changed_fields_and_its_rows_only() {
    let shdr = recording()
        .parent()
        .unwrap()
        .join("nist-3-machines-shdr-2016");
    let server = serve_replay(&shdr, "200").await;
    let base = &server.base;
    wait_for(base, Duration::from_secs(30), "data", |h| {
        h["observations"].as_u64().unwrap_or(0) > 0
    })
    .await;
    let ws_url = format!("{}/ws", base.replace("http://", "ws://"));

    // Side by side: a client of the `latest` messages (every value) and a board client.
    let (mut everything, _) = tokio_tungstenite::connect_async(ws_url.as_str())
        .await
        .unwrap();
    // The hub holds what was published since a client listened: two seconds of the
    // replay give the tiles of the devices that sent data (two or three of the three).
    let (all_early, _) = collect(&mut everything, Duration::from_secs(2)).await;
    assert!(
        all_early.iter().any(|m| m["type"] == "latest"),
        "{all_early:?}"
    );
    // The rows the board shows: the Samples the replay just sent, but the X axes'.
    let mut rows: Vec<(String, String, String)> = all_early
        .iter()
        .filter(|m| m["type"] == "latest")
        .flat_map(|m| m["items"].as_array().unwrap().iter())
        .filter(|o| {
            o["category"] == "SAMPLE" && !o["dataItemId"].as_str().unwrap().ends_with("X_2")
        })
        .map(|o| {
            let s = |k: &str| o[k].as_str().unwrap().to_owned();
            (s("agent"), s("device"), s("dataItemId"))
        })
        .collect();
    rows.sort();
    rows.dedup();
    assert!(rows.len() > 2, "{all_early:?}");
    let (mut board, _) = tokio_tungstenite::connect_async(ws_url.as_str())
        .await
        .unwrap();
    assert_eq!(next_json(&mut board).await["type"], "hello");
    let subscribe = serde_json::json!({
        "type": "subscribe",
        "view": "board",
        "tiles": true,
        "rows": rows
            .iter()
            .map(|(a, d, i)| serde_json::json!([a, d, i]))
            .chain([serde_json::json!("not a row"), serde_json::json!([1, 2, 3])])
            .collect::<Vec<_>>(),
    });
    board
        .send(Message::text(subscribe.to_string()))
        .await
        .unwrap();
    let ((all, all_bytes), (mine, board_bytes)) = tokio::join!(
        collect(&mut everything, Duration::from_secs(6)),
        collect(&mut board, Duration::from_secs(6))
    );
    // First every tile in full, from the hub's snapshot (taken after the subscription:
    // every tile published since a client listened).
    let full = mine
        .iter()
        .find(|m| m["type"] == "board" && m["full"] == true)
        .unwrap_or_else(|| panic!("every tile once: {mine:?}"));
    let tiles = full["tiles"].as_array().unwrap();
    assert!((2..=3).contains(&tiles.len()), "{full}");
    // Each tile full, with its number, device and agent.
    let mut numbers = std::collections::HashSet::new();
    for t in tiles {
        assert!(t["device"].is_string() && t["agent"].is_string(), "{t}");
        assert!(
            numbers.insert(t["t"].as_u64().unwrap()),
            "numbers differ: {full}"
        );
        for field in [
            "state",
            "label",
            "rank",
            "execution",
            "parts",
            "conditions",
            "newest",
        ] {
            assert!(!t[field].is_null(), "{field} in {t}");
        }
    }
    // Then rounds: never a `latest` message, only the rows asked for, changed fields only.
    assert!(mine.iter().all(|m| m["type"] != "latest"), "{mine:?}");
    let rounds: Vec<&Value> = mine
        .iter()
        .filter(|m| m["type"] == "board" && m["full"].is_null())
        .collect();
    assert!(rounds.len() > 5, "{} rounds", rounds.len());
    let (mut row_values, mut newest) = (0, 0);
    for r in &rounds {
        for o in r["items"].as_array().unwrap() {
            let key = |k: &str| o[k].as_str().unwrap().to_owned();
            assert!(
                rows.contains(&(key("agent"), key("device"), key("dataItemId"))),
                "only the rows asked for: {o}"
            );
            assert!(o["shown"].is_string(), "{o}");
            row_values += 1;
        }
        for t in r["tiles"].as_array().unwrap() {
            // Its number and some of the fields, not a tile's markup nor its names (the
            // full tiles gave them).
            assert!(numbers.contains(&t["t"].as_u64().unwrap()), "{t}");
            assert!(t["device"].is_null() && t["agent"].is_null(), "{t}");
            assert!(
                t["newest"].is_null(),
                "newest goes in the round's list: {t}"
            );
            assert!(
                t.as_object().unwrap().len() < 12,
                "changed fields only: {t}"
            );
            assert!(t["html"].is_null(), "no tile changed its frame: {t}");
        }
        for n in r["newest"].as_array().unwrap() {
            assert!(numbers.contains(&n[0].as_u64().unwrap()), "{n}");
            assert!(n[1].as_str().unwrap().ends_with('Z'), "{n}");
            newest += 1;
        }
    }
    assert!(row_values > 0, "the rows' values arrived: {rounds:?}");
    assert!(newest > 0, "newest-data times arrived: {rounds:?}");
    // The `latest` client was sent the X axes too.
    assert!(all
        .iter()
        .any(|m| m["items"].as_array().is_some_and(|i| i
            .iter()
            .any(|o| o["dataItemId"].as_str().unwrap().ends_with("X_2")))));
    // The board client is sent a small part of what the `latest` client is.
    let latest_messages = all.iter().filter(|m| m["type"] == "latest").count();
    assert!(latest_messages > 5, "{latest_messages}");
    assert!(
        board_bytes * 4 < all_bytes,
        "board {board_bytes} bytes against {all_bytes} for every value"
    );
    eprintln!("6 s: board client {board_bytes} bytes, every value {all_bytes} bytes");
}
