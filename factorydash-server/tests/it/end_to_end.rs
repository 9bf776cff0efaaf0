//! The whole path on real data: a recording served as an agent, followed over HTTP,
//! stored, and shown.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;

use crate::support::{
    get_text, recording, replay_agent, serve_following, serve_replay, start, stored, wait_for,
    FreshDb,
};

const TOTAL: u64 = 112_762;
/// The recording lasts about 4 h 51 min at speed 1 (idle gaps capped at 2 s): about 3.5 s here.
const SPEED: &str = "5000";

fn observations(health: &Value) -> u64 {
    health["observations"].as_u64().unwrap_or(0)
}

fn all_sequences_once(
    set: &std::collections::BTreeSet<(u64, String, String, String)>,
    rows: usize,
) {
    assert_eq!(rows as u64, TOTAL, "rows read back");
    let sequences: Vec<u64> = set.iter().map(|(s, ..)| *s).collect();
    assert_eq!(sequences, (1..=TOTAL).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_agent_followed_over_http_stores_every_observation_once_like_serve_replay() {
    let dir = recording();
    let dir = dir.to_str().unwrap();
    let agent = replay_agent(SPEED).await;
    let follower = start(&[
        "serve",
        "--agent",
        &agent.base,
        "--listen",
        "127.0.0.1:0",
        "--poll-interval",
        "100ms",
        "--count",
        "10000",
    ])
    .await;
    let direct = start(&[
        "serve",
        "--replay",
        dir,
        "--listen",
        "127.0.0.1:0",
        "--speed",
        SPEED,
    ])
    .await;

    let health = wait_for(
        &follower.base,
        Duration::from_secs(120),
        "all observations via HTTP",
        // The store's count and the source's health are read one after the other, so wait
        // until both show the last batch.
        |h| observations(h) >= TOTAL && h["sources"][0]["nextSequence"].as_u64() == Some(TOTAL + 1),
    )
    .await;
    assert_eq!(observations(&health), TOTAL);
    assert_eq!(health["sources"][0]["nextSequence"], TOTAL + 1);
    assert_eq!(health["sources"][0]["state"], "streaming");
    wait_for(
        &direct.base,
        Duration::from_secs(120),
        "all observations via --replay",
        |h| h["sources"][0]["state"] == "finished",
    )
    .await;

    let (via_http, rows) = stored(&follower.base).await;
    all_sequences_once(&via_http, rows);
    let (via_replay, rows) = stored(&direct.base).await;
    all_sequences_once(&via_replay, rows);
    assert!(
        via_http == via_replay,
        "serve --agent <replay agent> and serve --replay store the same observations"
    );

    // The agent's /current and /sample answers are real MTConnect documents.
    let current = get_text(format!("{}/current", agent.base)).await;
    let doc = factorydash_mtconnect::parse_streams(current.as_bytes()).unwrap();
    assert_eq!(doc.value.header.next_sequence, Some(TOTAL + 1));
    assert_eq!(doc.value.observations.len(), 26);
    let err = reqwest::get(format!("{}/sample?from=999999999", agent.base))
        .await
        .unwrap();
    assert_eq!(err.status().as_u16(), 400);
    let body = err.text().await.unwrap();
    let e = factorydash_mtconnect::parse_error(body.as_bytes()).unwrap();
    assert_eq!(
        e.errors[0].code,
        factorydash_mtconnect::ErrorCode::OutOfRange
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_agent_followed_into_postgresql_stores_every_observation_once() {
    let Some(server) = crate::support::postgres_url("replay_into_postgresql") else {
        return;
    };
    let db = FreshDb::create(&server, "e2e").await;
    let agent = replay_agent(SPEED).await;
    let follower = start(&[
        "serve",
        "--agent",
        &agent.base,
        "--database-url",
        &db.url,
        "--listen",
        "127.0.0.1:0",
        "--poll-interval",
        "100ms",
        "--count",
        "10000",
        "--no-stream",
    ])
    .await;
    wait_for(
        &follower.base,
        Duration::from_secs(180),
        "all observations in PostgreSQL",
        |h| observations(h) >= TOTAL && h["sources"][0]["state"] == "polling",
    )
    .await;
    let client = db.connect().await;
    let row = client
        .query_one("SELECT count(*), count(DISTINCT sequence), min(sequence), max(sequence) FROM observations", &[])
        .await
        .unwrap();
    let (n, distinct, min, max): (i64, i64, i64, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!(
        (n, distinct, min, max),
        (TOTAL as i64, TOTAL as i64, 1, TOTAL as i64)
    );
    let resume = client
        .query_one("SELECT instance_id, next_sequence FROM agents", &[])
        .await
        .unwrap();
    assert_eq!(
        (resume.get::<_, i64>(0), resume.get::<_, i64>(1)),
        (1_475_083_573, TOTAL as i64 + 1)
    );
    let (set, rows) = stored(&follower.base).await;
    all_sequences_once(&set, rows);
    drop(follower);
    drop(agent);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_shows_the_device_and_values_change_live_over_the_websocket() {
    let dir = recording();
    // Speed 20: values change many times a second, as on a busy machine.
    let server = serve_replay(&dir, "20").await;
    wait_for(
        &server.base,
        Duration::from_secs(30),
        "first observations",
        |h| observations(h) > 0,
    )
    .await;

    let page = reqwest::get(format!("{}/", server.base)).await.unwrap();
    assert!(page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("script-src 'self'"));
    let html = page.text().await.unwrap();
    assert!(
        html.contains(r#"data-device="GFAgie01""#),
        "a card for GFAgie01"
    );
    assert!(
        html.contains(r#"data-item="GFAgie01-dtop_1""#),
        "a row for its availability"
    );
    assert!(!html.contains("https://"), "no asset from a CDN");
    for asset in ["/assets/app.js", "/assets/app.css"] {
        let r = reqwest::get(format!("{}{asset}", server.base))
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{asset}");
    }

    let ws_url = format!("{}/ws", server.base.replace("http://", "ws://"));
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
        .await
        .unwrap();
    let mut values: std::collections::HashMap<String, Vec<Value>> = Default::default();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut updates = 0;
    while updates < 10 {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("live updates within 10 s")
            .unwrap()
            .unwrap();
        if !msg.is_text() {
            continue;
        }
        let text = msg.to_text().unwrap();
        let v: Value = serde_json::from_str(text).unwrap();
        if v["type"] != "latest" {
            continue;
        }
        updates += 1;
        assert_eq!(v["devices"][0]["device"], "GFAgie01");
        for item in v["items"].as_array().unwrap() {
            values
                .entry(item["dataItemId"].as_str().unwrap().to_owned())
                .or_default()
                .push(item["value"].clone());
        }
    }
    let changed = values
        .values()
        .filter(|vs| vs.windows(2).any(|w| w[0] != w[1]))
        .count();
    assert!(changed > 0, "some value changes between pushes: {values:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recorded_agent_plays_back_the_same_observations() {
    let dir = recording();
    let agent = replay_agent(SPEED).await;
    let out = std::env::temp_dir().join(format!("factorydash-record-{}", rand::random::<u32>()));
    let status = tokio::process::Command::new(env!("CARGO_BIN_EXE_factorydash"))
        .args([
            "record",
            &agent.base,
            "--out",
            out.to_str().unwrap(),
            "--duration",
            "8s",
            "--count",
            "5000",
        ])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let recorded = factorydash_mtconnect::Recording::load(&out).unwrap();
    let original = factorydash_mtconnect::Recording::load(&dir).unwrap();
    assert_eq!(recorded.observations.len(), original.observations.len());
    assert_eq!(recorded.devices, original.devices);
    for (a, b) in recorded.observations.iter().zip(&original.observations) {
        assert_eq!(
            (a.sequence, &a.data_item_id, &a.value),
            (b.sequence, &b.data_item_id, &b.value)
        );
    }
    std::fs::remove_dir_all(&out).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_three_machine_shdr_recording_replays_live() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../recordings/nist-3-machines-shdr-2016");
    let server = serve_replay(&dir, "200").await;
    // The device model is stored as the replay starts, then each machine's data arrives.
    let start = std::time::Instant::now();
    loop {
        let (_, devices) = crate::support::get_json(&format!("{}/api/devices", server.base)).await;
        let devices = devices.as_array().unwrap();
        let names: Vec<&str> = devices
            .iter()
            .map(|d| d["device"]["name"].as_str().unwrap())
            .collect();
        let observed = devices
            .iter()
            .filter(|d| d["status"]["observedItems"].as_u64().unwrap_or(0) > 0)
            .count();
        if names == ["GFAgie01", "Hurco01", "Mazak01"] && observed == 3 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{devices:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_followed_in_json_gives_the_same_observations_as_in_xml() {
    let agent = replay_agent(SPEED).await;
    let agents = [agent.base.clone()];
    let json = serve_following(&agents, &["--count", "10000", "--format", "json"]).await;
    let xml = serve_following(&agents, &["--count", "10000", "--format", "xml"]).await;
    for f in [&json, &xml] {
        wait_for(&f.base, Duration::from_secs(120), "all observations", |h| {
            observations(h) >= TOTAL && h["sources"][0]["nextSequence"].as_u64() == Some(TOTAL + 1)
        })
        .await;
    }
    let (in_json, rows) = stored(&json.base).await;
    all_sequences_once(&in_json, rows);
    let (in_xml, _) = stored(&xml.base).await;
    assert!(in_json == in_xml, "the same observations either way");
    // The agent answered the JSON follower in JSON (its pages and its stream's parts).
    let state: Value = reqwest::Client::new()
        .post(format!("{}/_factorydash/faults", agent.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(state["jsonAnswers"].as_u64().unwrap() > 5, "{state}");

    // The agent's JSON is the reference agent's version 2, and says what XML says.
    let http = reqwest::Client::new();
    let ask = |path: &str, accept: &str| {
        http.get(format!("{}{path}", agent.base))
            .header("accept", accept)
            .send()
    };
    let answer = ask("/current", "application/json").await.unwrap();
    assert_eq!(answer.headers()["content-type"], "application/json");
    let body = answer.text().await.unwrap();
    assert!(
        body.starts_with(r#"{"MTConnectStreams":{"jsonVersion":2,"#),
        "{body:.200}"
    );
    let from_json = factorydash_mtconnect::parse_streams_json(body.as_bytes()).unwrap();
    let xml_body = get_text(format!("{}/current", agent.base)).await;
    let from_xml = factorydash_mtconnect::parse_streams(xml_body.as_bytes()).unwrap();
    let sorted = |mut o: Vec<factorydash_core::Observation>| {
        o.sort_by_key(|o| o.sequence);
        o
    };
    assert_eq!(
        sorted(from_json.value.to_observations()),
        sorted(from_xml.value.to_observations())
    );
    // `?format=` wins over `Accept`, as on the reference agent; a refusal is in JSON too.
    let answer = ask("/sample?from=999999999&format=json", "text/xml")
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 400);
    let refusal = answer.text().await.unwrap();
    let e = factorydash_mtconnect::parse_error_json(refusal.as_bytes()).unwrap();
    assert_eq!(
        e.errors[0].code,
        factorydash_mtconnect::ErrorCode::OutOfRange
    );
}
