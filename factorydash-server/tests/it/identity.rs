//! One identity per device: two agents serving a device of the same name (every cell's
//! agent names its machine after the model) are two devices, stored and shown apart.

use std::time::Duration;

use crate::support::{get_json, get_text, replay_agent, start, stored, wait_for};

/// Observations in the bundled recording.
const TOTAL: u64 = 112_762;

fn query(pairs: &[(&str, &str)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        q.append_pair(k, v);
    }
    q.finish()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_agents_serving_one_device_name_are_stored_and_shown_apart() {
    // The same recording from two agents: the same device name (GFAgie01), the same
    // dataItemIds and the same sequences.
    let first = replay_agent("5000").await;
    let second = replay_agent("5000").await;
    let serve = start(&[
        "serve",
        "--agent",
        &first.base,
        "--agent",
        &second.base,
        "--listen",
        "127.0.0.1:0",
        "--poll-interval",
        "100ms",
        "--count",
        "10000",
    ])
    .await;
    let health = wait_for(
        &serve.base,
        Duration::from_secs(120),
        "both recordings stored",
        |h| h["observations"].as_u64() >= Some(2 * TOTAL),
    )
    .await;
    assert_eq!(health["observations"], 2 * TOTAL, "nothing doubled");

    // Two devices of one name, each with its agent.
    let (_, devices) = get_json(&format!("{}/api/devices", serve.base)).await;
    let mut agents: Vec<String> = devices
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["device"]["name"] == "GFAgie01")
        .map(|d| {
            assert_eq!(d["status"]["agent"], d["device"]["agent"], "{d}");
            d["device"]["agent"].as_str().unwrap().to_owned()
        })
        .collect();
    agents.sort();
    let mut want = vec![first.base.clone(), second.base.clone()];
    want.sort();
    assert_eq!(agents, want);

    // Every observation of each agent once, read back per device.
    let (set, rows) = stored(&serve.base).await;
    assert_eq!(rows as u64, 2 * TOTAL, "rows read back");
    assert_eq!(
        set.len() as u64,
        TOTAL,
        "the two agents sent the same observations"
    );

    // The name alone is ambiguous: the answer names both agents.
    let item = "GFAgie01-dtop_1";
    let (status, body) = get_json(&format!(
        "{}/api/series?{}",
        serve.base,
        query(&[("device", "GFAgie01"), ("dataItemId", item)])
    ))
    .await;
    assert_eq!(status, 409, "{body}");
    let error = body["error"].as_str().unwrap();
    for a in &agents {
        assert!(error.contains(a.as_str()), "{error}");
    }
    // With the agent (as shown, or with a trailing slash), each its own series.
    let mut counts = Vec::new();
    for a in &agents {
        let (status, body) = get_json(&format!(
            "{}/api/series?{}&from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z",
            serve.base,
            query(&[
                ("device", "GFAgie01"),
                ("agent", &format!("{a}/")),
                ("dataItemId", item)
            ])
        ))
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["series"][0]["agent"], a.as_str());
        counts.push(body["series"][0]["items"].as_array().unwrap().len());
    }
    assert!(counts[0] > 0 && counts[0] == counts[1], "{counts:?}");
    let (status, _) = get_json(&format!(
        "{}/api/utilization?{}",
        serve.base,
        query(&[("device", "GFAgie01")])
    ))
    .await;
    assert_eq!(status, 409);
    let (status, _) = get_json(&format!(
        "{}/api/series?{}",
        serve.base,
        query(&[
            ("device", "GFAgie01"),
            ("agent", "http://127.0.0.1:1/"),
            ("dataItemId", item)
        ])
    ))
    .await;
    assert_eq!(status, 404);

    // A listing takes the name as every agent's devices of that name, and `agent` as one
    // agent's: the alarms of both, each episode with its agent, the same recording's.
    let all_time = "from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z";
    let (status, alarms) = get_json(&format!(
        "{}/api/alarms?{}&{all_time}",
        serve.base,
        query(&[("device", "GFAgie01")])
    ))
    .await;
    assert_eq!(status, 200, "{alarms}");
    let episodes = alarms["episodes"].as_array().unwrap();
    let per_agent = |a: &str| episodes.iter().filter(|e| e["agent"] == a).count();
    assert!(per_agent(&agents[0]) > 0, "{alarms}");
    assert_eq!(per_agent(&agents[0]), per_agent(&agents[1]));
    assert_eq!(episodes.len(), 2 * per_agent(&agents[0]));
    let (status, one) = get_json(&format!(
        "{}/api/alarms?{}&{all_time}",
        serve.base,
        query(&[("device", "GFAgie01"), ("agent", &agents[1])])
    ))
    .await;
    assert_eq!(status, 200, "{one}");
    let theirs = one["episodes"].as_array().unwrap();
    assert_eq!(theirs.len(), per_agent(&agents[1]));
    assert!(theirs.iter().all(|e| e["agent"] == agents[1].as_str()));

    // The board: two tiles of one name, labelled with their agents, each linking to its
    // own device page.
    let html = get_text(format!("{}/", serve.base)).await;
    for a in &agents {
        let tile = format!(r#"data-device="GFAgie01" data-agent="{a}" data-state="#);
        assert_eq!(html.matches(&tile).count(), 1, "one tile for {a}");
        let host = a.trim_start_matches("http://").trim_end_matches('/');
        assert!(html.contains(&format!(">{host}<")), "tile labelled {host}");
    }
    let page = reqwest::get(format!(
        "{}/device?{}",
        serve.base,
        query(&[("name", "GFAgie01")])
    ))
    .await
    .unwrap();
    assert_eq!(page.status(), 409);
    let page = page.text().await.unwrap();
    for a in &agents {
        assert!(
            page.contains(&query(&[("name", "GFAgie01"), ("agent", a)]).replace('&', "&amp;")),
            "{page}"
        );
    }
    let page = reqwest::get(format!(
        "{}/device?{}",
        serve.base,
        query(&[("name", "GFAgie01"), ("agent", &agents[1])])
    ))
    .await
    .unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains(&format!(r#"data-agent="{}""#, agents[1])));
}
