//! The JSON API's answers to good and bad requests, and an unreachable agent.

use std::time::Duration;

use serde_json::json;

use crate::support::{
    get_json, get_text, recording, replay_finished, serve_replay, start, wait_for,
};

#[tokio::test(flavor = "multi_thread")]
async fn bad_parameters_get_a_400_saying_what_is_wrong() {
    let server = serve_replay(&recording(), "500").await;
    let base = &server.base;
    for (path, needle) in [
        ("/api/latest?limit=0", "limit"),
        ("/api/latest?limit=abc", "limit"),
        ("/api/latest?cursor=zz", "cursor"),
        ("/api/series?dataItemId=x", "device"),
        ("/api/series?device=GFAgie01", "dataItemId"),
        ("/api/series?device=GFAgie01&dataItemId=x&from=yesterday", "from"),
        ("/api/series?device=GFAgie01&dataItemId=x&from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "before"),
    ] {
        let (status, body) = get_json(&format!("{base}{path}")).await;
        assert_eq!(status, 400, "{path}: {body}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains(needle), "{path}: {error}");
    }
    let (status, _) = get_json(&format!("{base}/api/nothing")).await;
    assert_eq!(status, 404);

    wait_for(base, Duration::from_secs(30), "some items", |h| {
        h["observations"].as_u64().unwrap_or(0) > 200
    })
    .await;
    // Keyset pages: every item once, in order.
    let mut cursor = String::new();
    let mut seen = Vec::new();
    loop {
        let (status, page) = get_json(&format!("{base}/api/latest?limit=4&cursor={cursor}")).await;
        assert_eq!(status, 200);
        for item in page["items"].as_array().unwrap() {
            seen.push(item["dataItemId"].as_str().unwrap().to_owned());
        }
        match page["next"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen, sorted);
    // A downsampled window: never more points than asked, first and last kept.
    wait_for(base, Duration::from_secs(60), "a long series", |h| {
        h["observations"].as_u64().unwrap_or(0) > 8000
    })
    .await;
    let url = format!("{base}/api/series?device=GFAgie01&dataItemId=GFAgie01-X_2&from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z");
    let (_, so_far) = get_json(&url).await;
    let so_far = &so_far["series"][0];
    // The replay goes on: the window ends just after what was stored then, so that both
    // answers below see the same observations.
    let last = so_far["items"].as_array().unwrap().last().unwrap()["timestamp"]
        .as_str()
        .unwrap();
    let end =
        chrono::DateTime::parse_from_rfc3339(last).unwrap() + chrono::Duration::nanoseconds(1);
    let end = end.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let url = format!("{base}/api/series?device=GFAgie01&dataItemId=GFAgie01-X_2&from=2000-01-01T00:00:00Z&to={end}");
    let (_, full) = get_json(&url).await;
    let full = &full["series"][0];
    let n = full["items"].as_array().unwrap().len();
    assert!(n > 50, "{n}");
    let (status, small) = get_json(&format!("{url}&maxPoints=20")).await;
    assert_eq!(status, 200, "{small}");
    let small = &small["series"][0];
    let points = small["points"].as_array().unwrap();
    assert!(points.len() <= 20 && points.len() >= 4, "{small}");
    let numeric: Vec<(&str, f64)> = full["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| {
            let v = o["value"].as_str()?.parse::<f64>().ok()?;
            Some((o["timestamp"].as_str().unwrap(), v))
        })
        .collect();
    assert_eq!(small["numeric"], numeric.len());
    // M4: the first and last observations (a number, or UNAVAILABLE drawn as a point
    // without a value, where the line breaks), and the smallest and largest values, are
    // drawn.
    let drawable: Vec<serde_json::Value> = full["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| {
            let v = match o["value"].as_str() {
                None => serde_json::Value::Null,
                Some(v) => json!(v.parse::<f64>().ok()?),
            };
            Some(json!([o["timestamp"], v]))
        })
        .collect();
    assert_eq!(points.first(), drawable.first(), "{small}");
    assert_eq!(points.last(), drawable.last(), "{small}");
    let min = numeric.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let max = numeric
        .iter()
        .map(|p| p.1)
        .fold(f64::NEG_INFINITY, f64::max);
    assert!(points.iter().any(|q| q[1] == min) && points.iter().any(|q| q[1] == max));
    assert!(small["buckets"].as_array().unwrap().len() <= 6);
    let (status, _) = get_json(&format!("{url}&maxPoints=2")).await;
    assert_eq!(status, 400);
    // Utilization: the shares of Execution states cover the known time and add up to one.
    let (status, u) = get_json(&format!(
        "{base}/api/utilization?device=GFAgie01&from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z"
    ))
    .await;
    assert_eq!(status, 200, "{u}");
    assert_eq!(u["dataItemId"], "GFAgie01-path_basic_2");
    let shares = u["shares"].as_array().unwrap();
    assert!(!shares.is_empty(), "{u}");
    let total: f64 = shares.iter().map(|s| s["share"].as_f64().unwrap()).sum();
    assert!((total - 1.0).abs() < 1e-6, "{u}");
    let (status, _) = get_json(&format!("{base}/api/utilization?device=GFAgie01&type=NOPE")).await;
    assert_eq!(status, 400);
    let (_, devices) = get_json(&format!("{base}/api/devices")).await;
    assert_eq!(devices[0]["device"]["name"], "GFAgie01");
    assert_eq!(
        devices[0]["device"]["dataItems"].as_array().unwrap().len(),
        25
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_agent_is_shown_with_since_when_and_retried() {
    // A port nothing listens on: bind one, note it, free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let agent = format!("http://127.0.0.1:{port}");
    let server = start(&["serve", "--agent", &agent, "--listen", "127.0.0.1:0"]).await;
    let health = wait_for(
        &server.base,
        Duration::from_secs(20),
        "the agent marked unreachable",
        |h| h["sources"][0]["unreachableSince"].is_string(),
    )
    .await;
    let source = &health["sources"][0];
    assert_eq!(source["state"], "backing_off");
    assert!(source["retryAt"].is_string());
    assert!(source["lastError"].as_str().unwrap().contains(&agent));
    let html = get_text(format!("{}/", server.base)).await;
    assert!(html.contains("Cannot reach"), "the page says so");
    assert!(html.contains("Retrying"));
}

#[test]
fn inspect_prints_every_observation_as_ndjson_and_problems_on_stderr() {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../factorydash-mtconnect/tests/fixtures/nist-smstestbed-current-2021-02-11.xml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_factorydash"))
        .args(["inspect", fixture.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 242);
    let fault = lines
        .iter()
        .find(|l| l["level"] == "Fault")
        .expect("a Fault");
    assert!(fault["nativeCode"].is_string());
    assert!(lines
        .iter()
        .all(|l| l["device"].is_string() && l["sequence"].is_u64() && l["dataItemId"].is_string()));
    let motion = lines
        .iter()
        .find(|l| l["element"] == "x:Motion")
        .expect("the NIST extension element");
    assert_eq!(
        motion["componentId"].as_str().unwrap().split('-').next(),
        motion["device"].as_str()
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("problem:") && stderr.contains("never declared"),
        "{stderr}"
    );

    let gz = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../recordings/nist-gfagie01-2016-05-02/qdr_input009.xml.gz");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_factorydash"))
        .args(["inspect", gz.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 2620);
}

#[tokio::test(flavor = "multi_thread")]
async fn alarms_and_filtered_latest_values_on_the_real_recording() {
    let server = serve_replay(&recording(), "5000").await;
    let base = &server.base;
    replay_finished(base).await;
    let all = "from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z";
    let (status, alarms) = get_json(&format!("{base}/api/alarms?{all}")).await;
    assert_eq!(status, 200, "{alarms}");
    let episodes = alarms["episodes"].as_array().unwrap();
    // GFAgie01's limit switch fault, raised and cleared again and again in the recording.
    let y: Vec<_> = episodes
        .iter()
        .filter(|e| e["nativeCode"] == "454A")
        .collect();
    assert!(y.len() >= 2, "{alarms}");
    for e in &y {
        assert_eq!(e["message"], "Limit switch Y+");
        assert_eq!(e["level"], "Fault");
        assert!(e["ended"].is_string(), "cleared by a Normal: {e}");
        assert!(e["durationSeconds"].as_f64().unwrap() > 0.0);
    }
    // A device no agent serves is not found (not an empty answer that looks like a quiet
    // machine).
    let (status, none) = get_json(&format!("{base}/api/alarms?{all}&device=Mazak03")).await;
    assert_eq!(status, 404, "{none}");
    assert!(
        none["error"].as_str().unwrap().contains("Mazak03"),
        "{none}"
    );
    let (status, _) = get_json(&format!("{base}/api/alarms?from=never")).await;
    assert_eq!(status, 400);

    // Filters on the latest values.
    let (_, conditions) =
        get_json(&format!("{base}/api/latest?category=condition&limit=1000")).await;
    let items = conditions["items"].as_array().unwrap();
    assert!(!items.is_empty());
    assert!(
        items.iter().all(|o| o["category"] == "CONDITION"),
        "{conditions}"
    );
    let (_, avail) = get_json(&format!("{base}/api/latest?q=AVAIL")).await;
    let items = avail["items"].as_array().unwrap();
    assert!(!items.is_empty());
    assert!(items.iter().all(|o| o["name"]
        .as_str()
        .unwrap_or("")
        .to_lowercase()
        .contains("avail")
        || o["dataItemId"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("avail")));
    let (_, execution) = get_json(&format!("{base}/api/latest?type=Execution")).await;
    assert_eq!(
        execution["items"].as_array().unwrap().len(),
        1,
        "{execution}"
    );
    let (status, body) = get_json(&format!("{base}/api/latest?category=nope")).await;
    assert_eq!(status, 400, "{body}");
    // As of a past instant. The replay moves timestamps to when it reveals each
    // observation, so the instants come from the data item's series: as of the moment
    // GFAgie01 became AVAILABLE (sequence 61) the value is the newest observation of that
    // moment, and a nanosecond earlier the newest before it.
    let avail = "/api/latest?device=GFAgie01&type=Availability";
    let (_, series) = get_json(&format!(
        "{base}/api/series?device=GFAgie01&dataItemId=GFAgie01-dtop_1&{all}"
    ))
    .await;
    let series = series["series"][0]["items"].as_array().unwrap().clone();
    let ts = |o: &serde_json::Value| {
        chrono::DateTime::parse_from_rfc3339(o["timestamp"].as_str().unwrap()).unwrap()
    };
    let became = series
        .iter()
        .find(|o| o["sequence"] == 61)
        .expect("sequence 61");
    assert_eq!(became["value"], "AVAILABLE");
    let at = ts(became);
    let held_at = series.iter().rfind(|o| ts(o) == at).unwrap();
    let held_before = series.iter().rfind(|o| ts(o) < at).unwrap();
    let value_at = |at: chrono::DateTime<chrono::FixedOffset>| {
        let url = format!(
            "{base}{avail}&at={}",
            at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
                .replace('+', "%2B")
        );
        async move {
            let (status, page) = get_json(&url).await;
            assert_eq!(status, 200, "{page}");
            let items = page["items"].as_array().unwrap().clone();
            assert_eq!(items.len(), 1, "{page}");
            items[0].clone()
        }
    };
    let key = |o: &serde_json::Value| (o["sequence"].clone(), o["value"].clone());
    assert_eq!(key(&value_at(at).await), key(held_at));
    let before = value_at(at - chrono::Duration::nanoseconds(1)).await;
    assert_eq!(key(&before), key(held_before));
    assert_ne!(before["value"], "AVAILABLE", "{before}");
    let (_, before) = get_json(&format!("{base}{avail}&at=2000-01-01T00:00:00Z")).await;
    assert_eq!(before["items"], json!([]));
    let (status, body) = get_json(&format!("{base}/api/latest?at=noon")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("at"), "{body}");
    // The page keeps the filters in its form and its links.
    let html = get_text(format!("{base}/?category=CONDITION&q=sys")).await;
    assert!(
        html.contains(r#"<option value="CONDITION" selected>"#),
        "{html}"
    );
    assert!(html.contains(r#"value="sys""#));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_device_page_and_exports_of_any_size() {
    let server = serve_replay(&recording(), "5000").await;
    let base = &server.base;
    replay_finished(base).await;
    let page = reqwest::get(format!("{base}/device?name=GFAgie01"))
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.unwrap();
    for needle in [
        "/assets/uplot.js",
        "/assets/device.js",
        r#"<canvas class="spark""#,
        r#"data-item="GFAgie01-X_2""#,
        "<details open>",
    ] {
        assert!(html.contains(needle), "{needle}");
    }
    for asset in ["/assets/uplot.js", "/assets/uplot.css", "/assets/device.js"] {
        let r = reqwest::get(format!("{base}{asset}")).await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{asset}");
    }
    let missing = reqwest::get(format!("{base}/device?name=%3Cscript%3Ex"))
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    assert!(missing.text().await.unwrap().contains("&lt;script&gt;x"));

    // Exports: every observation of the window, in order, in both formats.
    let window =
        "device=GFAgie01&dataItemId=GFAgie01-X_2&from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z";
    let (_, series) = get_json(&format!("{base}/api/series?{window}&limit=100000")).await;
    let want: Vec<u64> = series["series"][0]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["sequence"].as_u64().unwrap())
        .collect();
    // More than two of the export's 10,000-observation chunks: the keyset is crossed.
    assert!(want.len() > 20_000, "{}", want.len());
    let r = reqwest::get(format!("{base}/api/export?{window}&format=csv"))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("factorydash_GFAgie01_2000-01-01T00-00-00Z_2100-01-01T00-00-00Z.csv"));
    let body = r.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    assert_eq!(&reader.headers().unwrap()[1], "sequence");
    let got: Vec<u64> = reader
        .records()
        .map(|r| r.unwrap()[1].parse().unwrap())
        .collect();
    assert_eq!(got, want);
    let ndjson = get_text(format!("{base}/api/export?{window}&format=ndjson")).await;
    let got: Vec<u64> = ndjson
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["sequence"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(got, want);
    let (status, _) = get_json(&format!("{base}/api/export?{window}&format=xml")).await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_in_the_openmetrics_text_format() {
    let server = serve_replay(&recording(), "5000").await;
    let base = &server.base;
    replay_finished(base).await;
    get_json(&format!("{base}/api/latest")).await;
    let r = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let text = r.text().await.unwrap();
    let source = format!("replay:{}", recording().display());
    for line in [
        format!("factorydash_source_observations_stored_total{{source=\"{source}\"}} 112762"),
        format!("factorydash_source_buffered_observations{{source=\"{source}\"}} 0.0"),
        format!("factorydash_source_up{{source=\"{source}\"}} 1.0"),
        "factorydash_websocket_clients 0".to_owned(),
        "# TYPE factorydash_http_request_duration_seconds histogram".to_owned(),
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
    assert!(
        text.contains(r#"factorydash_http_request_duration_seconds_count{route="/api/latest"} 1"#),
        "{text}"
    );
    assert!(text.trim_end().ends_with("# EOF"));
}

#[tokio::test(flavor = "multi_thread")]
async fn configuration_from_a_toml_file_under_environment_and_flags() {
    let dir = std::env::temp_dir().join(format!("fd-config-{}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("factorydash.toml");
    std::fs::write(
        &file,
        format!(
            "replay = {:?}\nspeed = 5000\nlisten = \"127.0.0.1:0\"\nmemory-limit = 500000\nno_stream = true\n",
            recording().to_str().unwrap()
        ),
    )
    .unwrap();
    let config = file.to_str().unwrap();
    // The file alone.
    let server = start(&["serve", "--config", config]).await;
    let (_, health) = get_json(&format!("{}/healthz", server.base)).await;
    let source = health["sources"][0]["source"].as_str().unwrap();
    assert!(source.ends_with("nist-gfagie01-2016-05-02"), "{health}");
    drop(server);
    // A flag beats the file.
    let shdr = recording()
        .parent()
        .unwrap()
        .join("nist-3-machines-shdr-2016");
    let server = start(&["--config", config, "--replay", shdr.to_str().unwrap()]).await;
    let (_, health) = get_json(&format!("{}/healthz", server.base)).await;
    let source = health["sources"][0]["source"].as_str().unwrap();
    assert!(source.ends_with("nist-3-machines-shdr-2016"), "{health}");
    drop(server);
    // A key that is no option is refused, naming the key and the valid ones.
    std::fs::write(&file, "listen = \"127.0.0.1:0\"\nretension = \"30d\"\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_factorydash"))
        .args(["serve", "--config", config])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unknown key 'retension'") && stderr.contains("retention"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
