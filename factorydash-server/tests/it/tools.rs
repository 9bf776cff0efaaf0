//! Cutting tools over real HTTP on 127.0.0.1: `serve` reads the CuttingTool assets of a
//! `factorydash simulate` agent onto each device's page, the board's tiles and the live
//! messages say which tool is near its life limit, and an agent without `/assets` (a
//! replayed recording) has none, said once in the log.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{
    get_json, get_text, replay_agent, serve_following, simulate, start_logged, wait_for,
};

/// `/api/devices` until `done` holds for it, at most `limit`.
async fn devices_until(
    base: &str,
    limit: Duration,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let (_, devices) = get_json(&format!("{base}/api/devices")).await;
        let devices = devices.as_array().cloned().unwrap_or_default();
        if done(&devices) {
            return devices;
        }
        assert!(
            start.elapsed() < limit,
            "{what} not reached in {limit:?}: {devices:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_simulated_tools_are_on_each_device_page_and_a_worn_one_on_the_board() {
    let sim = simulate(&[
        "--agents",
        "1",
        "--machines-per-agent",
        "2",
        "--rate",
        "10hz",
        "--seed",
        "7",
    ])
    .await;
    let agent = format!("{}/agent-01", sim.base);
    let served = factorydash_mtconnect::parse_assets(
        get_text(format!("{agent}/assets?type=CuttingTool&count=1000"))
            .await
            .as_bytes(),
    )
    .unwrap()
    .value
    .cutting_tools;
    assert_eq!(served.len(), 12, "six tools per machine");
    let probe =
        factorydash_mtconnect::parse_devices(get_text(format!("{agent}/probe")).await.as_bytes())
            .unwrap()
            .value;
    let serve = serve_following(std::slice::from_ref(&agent), &["--heartbeat", "1s"]).await;

    // A live client from the start: the tiles it is sent carry the line too.
    let ws_url = format!("{}/ws", serve.base.replace("http://", "ws://"));
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
        .await
        .unwrap();

    // One simulated machine in three (here the first) starts with its largest tool past
    // its warning (90 %).
    let devices = devices_until(
        &serve.base,
        Duration::from_secs(120),
        "the first machine with a tool near its life limit",
        |devices| {
            devices.len() == 2
                && devices.iter().any(|d| {
                    d["status"]["toolsNearLimit"]
                        .as_array()
                        .is_some_and(|t| !t.is_empty())
                })
        },
    )
    .await;
    // Only the first is worn: the second's tools start well inside their life (at least
    // half an hour of cutting from their warning).
    let worn: Vec<&str> = devices
        .iter()
        .filter(|d| {
            d["status"]["toolsNearLimit"]
                .as_array()
                .is_some_and(|t| !t.is_empty())
        })
        .map(|d| d["device"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(worn.len(), 1, "{worn:?}");
    assert!(worn[0].ends_with("-0001"), "{worn:?}");
    for d in &devices {
        let name = d["device"]["name"].as_str().unwrap();
        let uuid = probe
            .devices
            .iter()
            .find(|p| p.name.as_deref() == Some(name))
            .and_then(|p| p.uuid.clone())
            .unwrap();
        let page = get_text(format!("{}/device?name={name}", serve.base)).await;
        assert!(
            page.contains(r#"<section id="tools" aria-label="Tools">"#),
            "{page}"
        );
        assert!(!page.contains("No CuttingTool assets"), "{page}");
        let own: Vec<_> = served
            .iter()
            .filter(|t| t.device_uuid.as_deref() == Some(uuid.as_str()))
            .collect();
        assert_eq!(own.len(), 6, "{name}");
        for t in &own {
            assert!(
                page.contains(&format!(r#"data-asset="{}""#, t.asset_id)),
                "{name}: {} not listed",
                t.asset_id
            );
            assert!(page.contains(&format!("<strong>{}</strong>", t.label())));
        }
        // The other machine's tools are not on this page.
        assert!(served
            .iter()
            .filter(|t| t.device_uuid.as_deref() != Some(uuid.as_str()))
            .all(|t| !page.contains(&format!(r#"data-asset="{}""#, t.asset_id))));
        assert!(page.contains("<meter"), "a bar of the life left");
        let near = d["status"]["toolsNearLimit"].as_array().unwrap();
        if near.is_empty() {
            // The second machine's tools are fresh: its tile says nothing of them.
            assert!(!page.contains("near life limit"), "{name}: {page}");
            continue;
        }
        assert!(page.contains("near its life limit"), "{page}");
        // Its tile, on its page and on the board.
        let line = if near.len() == 1 {
            format!("Tool {} near life limit", near[0].as_str().unwrap())
        } else {
            format!("{} tools near life limit", near.len())
        };
        assert!(page.contains(&line), "{line}: {page}");
        let board = get_text(format!("{}/", serve.base)).await;
        assert!(board.contains(&line), "{line} on the board");
    }

    // The live messages' tiles carry the line.
    let start = Instant::now();
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("a live message within 20 s")
            .unwrap()
            .unwrap();
        if let Message::Text(t) = msg {
            let m: Value = serde_json::from_str(t.as_str()).unwrap();
            let cards = m["cardsHtml"].as_array().cloned().unwrap_or_default();
            if cards
                .iter()
                .any(|c| c.as_str().unwrap_or("").contains("near life limit"))
            {
                let devices = m["devices"].as_array().unwrap();
                assert!(devices.iter().any(|d| d["toolsNearLimit"]
                    .as_array()
                    .is_some_and(|t| !t.is_empty())));
                break;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no live tile with the line in 60 s"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_without_assets_has_no_tools_said_once() {
    // `factorydash replay` serves a recording, and no /assets (404 and an MTConnectError);
    // the NIST recording holds AssetChanged observations (UNAVAILABLE).
    let replay = replay_agent("200").await;
    let (serve, log) = start_logged(
        &[
            "serve",
            "--agent",
            &replay.base,
            "--listen",
            "127.0.0.1:0",
            "--poll-interval",
            "100ms",
        ],
        &[],
    )
    .await;
    wait_for(&serve.base, Duration::from_secs(120), "data", |h| {
        h["sources"][0]["observations"].as_u64().unwrap_or(0) > 10_000
    })
    .await;
    let start = Instant::now();
    let page = loop {
        let page = get_text(format!("{}/device?name=GFAgie01", serve.base)).await;
        if page.contains("the agent serves none") {
            break page;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the refusal not shown in 60 s: {page}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(page.contains("No CuttingTool assets"), "{page}");
    assert!(!page.contains("near life limit"), "{page}");
    // Some seconds more of ingest (and of AssetChanged observations): no second attempt
    // is logged, nor any failure.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let log = log.lock().unwrap().clone();
    assert_eq!(
        log.matches("the agent serves no CuttingTool assets")
            .count(),
        1,
        "{log}"
    );
    assert!(
        !log.contains("cannot read the agent's CuttingTool assets"),
        "{log}"
    );
}
