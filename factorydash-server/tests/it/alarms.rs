//! Alarms end to end over real HTTP: `serve --replay` of the bundled 3-machine recording
//! with a Fault rule and a webhook to a receiver this test starts, down for the first 30 s
//! (the deliveries are retried with backoff) and then up: every change arrives once, in
//! order, signed (HMAC-SHA256 over `<timestamp>.<body>`, checked here with ring
//! independently of the server's code); GFAgie01's flapping "3AA Key non-functional"
//! Fault is one alarm whose count is the number of times the recording raises it
//! (counted here from the SHDR log itself); an acknowledgement ends it and is delivered;
//! bad requests are refused.

use std::collections::BTreeSet;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use warp::Filter;

use crate::support::{get_json, start};

const SECRET: &str = "a-test-secret";

/// The times GFAgie01's `system` Condition goes to Fault with native code 3AA from
/// another state, read from the recording's SHDR log.
fn raises_of_3aa() -> u64 {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../recordings/nist-3-machines-shdr-2016/GFAgie01.shdr.txt.gz");
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let (mut raises, mut active) = (0, false);
    for line in text.lines() {
        let fields: Vec<&str> = line.split('|').collect();
        // Condition lines: time|item|level|nativeCode|severity|qualifier|text, several
        // per line possible; `system` is the item.
        for (i, f) in fields.iter().enumerate() {
            if *f != "system" || i + 2 >= fields.len() {
                continue;
            }
            match (fields[i + 1], fields[i + 2]) {
                ("Fault", "3AA") => {
                    raises += u64::from(!active);
                    active = true;
                }
                ("Fault", _) | ("Warning", _) => {}
                _ => active = false,
            }
        }
    }
    raises
}

/// A free port on 127.0.0.1, closed until a receiver starts on it.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A new directory named from `prefix` holding `factorydash.toml` with `text`: both.
fn config_file(prefix: &str, text: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("{prefix}-{}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("factorydash.toml");
    std::fs::write(&config, text).unwrap();
    (dir, config)
}

/// What the receiver got: (delivery id, timestamp header, body) in arrival order.
type Received = Arc<Mutex<Vec<(String, String, Vec<u8>, bool)>>>;

/// A webhook receiver on `addr`, checking each signature.
async fn receiver(addr: SocketAddr, got: Received) {
    let route = warp::path!("hook")
        .and(warp::post())
        .and(warp::header::<String>("x-factorydash-delivery"))
        .and(warp::header::<String>("x-factorydash-timestamp"))
        .and(warp::header::<String>("x-factorydash-signature"))
        .and(warp::body::bytes())
        .map(
            move |delivery: String, ts: String, sig: String, body: warp::hyper::body::Bytes| {
                let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());
                let mut signed = format!("{ts}.").into_bytes();
                signed.extend_from_slice(&body);
                let hex = sig.strip_prefix("sha256=").unwrap_or("");
                let tag: Vec<u8> = (0..hex.len() / 2)
                    .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
                    .collect();
                let valid = ring::hmac::verify(&key, &signed, &tag).is_ok();
                got.lock()
                    .unwrap()
                    .push((delivery, ts, body.to_vec(), valid));
                warp::reply()
            },
        );
    warp::serve(route).run(addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_reach_a_webhook_that_was_down_once_each_in_order_and_flapping_is_one_alarm() {
    let expected_raises = raises_of_3aa();
    assert!(
        expected_raises >= 10,
        "the recording flaps: {expected_raises}"
    );
    let port = free_port();
    let (dir, config) = config_file(
        "fd-alarms",
        &format!(
            r#"time-zone = "UTC"

[[alarm]]
name = "Faults"
condition = "fault"
priority = "high"

[[alarm-webhook]]
url = "http://127.0.0.1:{port}/hook"
secret = "{SECRET}"
retry-for = "10m"
link-base = "http://dash.example"
"#
        ),
    );
    let recording = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../recordings/nist-3-machines-shdr-2016");
    let started = Instant::now();
    let fd = start(&[
        "serve",
        "--config",
        config.to_str().unwrap(),
        "--replay",
        recording.to_str().unwrap(),
        "--speed",
        "5000",
        "--listen",
        "127.0.0.1:0",
    ])
    .await;
    let base = fd.base.clone();

    // The receiver is down for the first 30 s.
    tokio::time::sleep(Duration::from_secs(30).saturating_sub(started.elapsed())).await;
    let got: Received = Arc::default();
    tokio::spawn(receiver(([127, 0, 0, 1], port).into(), got.clone()));

    // The replay ends; the flapping Fault is one alarm with its count.
    let deadline = Instant::now() + Duration::from_secs(120);
    let flapping = loop {
        let (status, body) = get_json(&format!("{base}/api/alarms/active")).await;
        assert_eq!(status, 200, "{body}");
        let found = body["alarms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["device"] == "GFAgie01" && a["nativeCode"] == "3AA")
            .cloned();
        if let Some(a) = found.filter(|a| a["count"].as_u64() == Some(expected_raises)) {
            break a;
        }
        assert!(
            Instant::now() < deadline,
            "no alarm of 3AA raised {expected_raises} times: {body}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(flapping["rule"], "Faults");
    assert_eq!(flapping["priority"], "high");
    assert_eq!(flapping["chattering"], true, "{flapping}");
    let (_, all) = get_json(&format!("{base}/api/alarms/active")).await;
    let of_3aa = all["alarms"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["nativeCode"] == "3AA")
        .count();
    assert_eq!(of_3aa, 1, "one alarm, not a row per raise: {all}");

    // An operator (the open dashboard's admin) acknowledges it: cleared and acknowledged,
    // it ends; the acknowledgement is delivered.
    let id = flapping["id"].as_u64().unwrap();
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{base}/api/alarms/{id}/acknowledge"))
        .json(&json!({ "comment": "key replaced" }))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let after: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["acknowledged"]["comment"], "key replaced");
    assert!(
        ["ended", "acknowledged"].contains(&after["state"].as_str().unwrap()),
        "{after}"
    );
    for (path, body, want) in [
        ("acknowledge", json!({ "comment": "again" }), [200, 409]),
        (
            "shelve",
            json!({ "comment": "noisy", "minutes": 0 }),
            [400, 400],
        ),
        ("shelve", json!({ "minutes": 10 }), [400, 409]),
        ("explode", json!({}), [404, 404]),
    ] {
        let r = client
            .post(format!("{base}/api/alarms/{id}/{path}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        assert!(want.contains(&s), "{path} {body}: {s}");
    }
    let r = client
        .post(format!("{base}/api/alarms/999999/acknowledge"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);

    // Every change once, in order, signed; the acknowledgement among them.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let acked = got.lock().unwrap().iter().any(|(_, _, body, _)| {
            let v: Value = serde_json::from_slice(body).unwrap();
            v["change"] == "acknowledged" && v["alarm"]["id"].as_u64() == Some(id)
        });
        if acked {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the acknowledgement was not delivered"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let got = got.lock().unwrap().clone();
    assert!(got.iter().all(|g| g.3), "every signature checks");
    let ids: Vec<u64> = got
        .iter()
        .map(|(d, ..)| d.rsplit('-').next().unwrap().parse().unwrap())
        .collect();
    let distinct: BTreeSet<u64> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), ids.len(), "each change once: {ids:?}");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in order: {ids:?}");
    assert_eq!(ids[0], 1, "none lost while the receiver was down: {ids:?}");
    assert_eq!(
        *ids.last().unwrap() as usize,
        ids.len(),
        "none lost: {ids:?}"
    );
    let first: Value = serde_json::from_slice(&got[0].2).unwrap();
    assert_eq!(first["change"], "raised");
    assert!(first["link"]
        .as_str()
        .unwrap()
        .starts_with("http://dash.example/device?device="));
    let now = chrono::Utc::now().timestamp();
    for (_, ts, ..) in &got {
        let ts: i64 = ts.parse().unwrap();
        assert!((now - ts).abs() < 600, "a timestamp of the attempt: {ts}");
    }

    // The delivery log: attempts that failed while the receiver was down, then delivered.
    let (status, log) = get_json(&format!("{base}/api/alarms/deliveries")).await;
    assert_eq!(status, 200);
    let outcomes: Vec<&str> = log["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert!(outcomes.contains(&"failed"), "{log}");
    assert!(outcomes.contains(&"delivered"), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The board in Chromium: a device without data for 2 s raises the "No data" rule's
/// alarm; its banner shows above everything; the sound switch is kept by the browser
/// across a reload; the banner's button acknowledges it (the banner goes, the API says
/// who); the list's shelve button asks for a reason and shelves it for an hour.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_board_shows_acknowledges_and_shelves_an_alarm_in_chromium() {
    use crate::support::Browser;
    let (dir, config) = config_file(
        "fd-alarm-page",
        "time-zone = \"UTC\"\n[[alarm]]\nname = \"No data\"\nstale = \"2s\"\npriority = \"urgent\"\n",
    );
    let fd = start(&[
        "serve",
        "--config",
        config.to_str().unwrap(),
        "--replay",
        crate::support::recording().to_str().unwrap(),
        "--speed",
        "5000",
        "--listen",
        "127.0.0.1:0",
    ])
    .await;
    let base = fd.base.clone();
    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.resize(1366, 900).await;
    browser.open(&format!("{base}/")).await;
    let text = browser
        .wait_until(
            "the alarm banner",
            Duration::from_secs(90),
            "const b = document.getElementById('alarm-banner'); return !b.hidden && b.textContent",
        )
        .await;
    let text = text.as_str().unwrap().to_owned();
    assert!(
        text.contains("urgent") && text.contains("GFAgie01: no data for 2 s"),
        "{text}"
    );
    browser.screenshot("alarm-banner").await;

    // The sound switch, kept by this browser.
    browser.click("#alarm-sound").await;
    browser.open(&format!("{base}/")).await;
    let kept = browser
        .wait_until(
            "the sound switch read back",
            Duration::from_secs(20),
            "const s = document.getElementById('alarm-sound'); return s.checked && localStorage.getItem('factorydash-alarm-sound') === '1'",
        )
        .await;
    assert_eq!(kept, true);

    // Acknowledged from the banner: the banner goes; the API says by whom.
    browser
        .wait_until(
            "the banner again",
            Duration::from_secs(20),
            "return !document.getElementById('alarm-banner').hidden",
        )
        .await;
    browser.click("#alarm-banner .ack").await;
    browser
        .wait_until(
            "the banner gone",
            Duration::from_secs(20),
            "return document.getElementById('alarm-banner').hidden",
        )
        .await;
    let (_, active) = get_json(&format!("{base}/api/alarms/active")).await;
    let a = &active["alarms"][0];
    assert_eq!(a["state"], "acknowledged", "{active}");
    assert!(a["acknowledged"]["by"].is_string(), "{a}");

    // Shelved from the list, with a reason.
    browser
        .wait_until(
            "the list's row",
            Duration::from_secs(20),
            "return document.querySelectorAll('#alarm-list-rows button').length > 0",
        )
        .await;
    browser
        .eval(
            "const b = [...document.querySelectorAll('#alarm-list-rows button')].find((b) => b.textContent === 'Shelve 1 h'); setTimeout(() => b.click(), 0); return true",
        )
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    browser.answer_prompt("sensor being replaced").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, active) = get_json(&format!("{base}/api/alarms/active")).await;
        if active["alarms"][0]["shelved"]["comment"] == "sensor being replaced" {
            let until = active["alarms"][0]["shelved"]["until"]
                .as_str()
                .unwrap()
                .to_owned();
            let until = chrono::DateTime::parse_from_rfc3339(&until).unwrap();
            let left = until.with_timezone(&chrono::Utc) - chrono::Utc::now();
            assert!(left > chrono::Duration::minutes(55) && left <= chrono::Duration::minutes(60));
            break;
        }
        assert!(Instant::now() < deadline, "not shelved: {active}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    browser
        .wait_until(
            "the list says shelved",
            Duration::from_secs(20),
            "return document.getElementById('alarm-list-rows').textContent.includes('shelved: sensor being replaced')",
        )
        .await;
    browser.screenshot("alarm-list-shelved").await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Delivery survives restarts: alarm changes queued while the receiver is down are kept
/// by the store (SQLite); `serve` stops, starts again without any agent, and delivers
/// them, once each, in order; a third start delivers nothing again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undelivered_alarm_changes_are_delivered_after_a_restart_and_never_twice() {
    let port = free_port();
    let (dir, config) = config_file(
        "fd-outbox",
        &format!(
            "time-zone = \"UTC\"\n[[alarm]]\nname = \"Faults\"\ncondition = \"fault\"\n\
             [[alarm-webhook]]\nurl = \"http://127.0.0.1:{port}/hook\"\nsecret = \"{SECRET}\"\n"
        ),
    );
    let data_dir = dir.join("data");
    let recording = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../recordings/nist-3-machines-shdr-2016");
    let serve = |replay: bool| {
        let mut args: Vec<String> = [
            "serve",
            "--config",
            config.to_str().unwrap(),
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if replay {
            args.extend(
                ["--replay", recording.to_str().unwrap(), "--speed", "5000"]
                    .iter()
                    .map(|s| s.to_string()),
            );
        }
        async move {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            start(&refs).await
        }
    };
    // The receiver is down: every change fails and stays in the outbox.
    let fd = serve(true).await;
    let base = fd.base.clone();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, log) = get_json(&format!("{base}/api/alarms/deliveries")).await;
        let (_, active) = get_json(&format!("{base}/api/alarms/active")).await;
        let failed = log["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["outcome"] == "failed");
        let flapped = active["alarms"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["nativeCode"] == "3AA" && a["count"].as_u64() > Some(10));
        if failed && flapped {
            break;
        }
        assert!(Instant::now() < deadline, "no failed delivery: {log}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let status = fd.terminate(Duration::from_secs(20)).await;
    assert!(status.success(), "{status:?}");

    // Up again, without an agent: the outbox is delivered.
    let got: Received = Arc::default();
    tokio::spawn(receiver(([127, 0, 0, 1], port).into(), got.clone()));
    let fd = serve(false).await;
    let mut last = (0, Instant::now());
    loop {
        let n = got.lock().unwrap().len();
        if n != last.0 {
            last = (n, Instant::now());
        } else if n > 0 && last.1.elapsed() > Duration::from_secs(3) {
            break;
        }
        assert!(
            last.1.elapsed() < Duration::from_secs(60),
            "nothing delivered after the restart"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let delivered: Vec<(String, String, Vec<u8>, bool)> = got.lock().unwrap().clone();
    assert!(delivered.iter().all(|d| d.3), "every signature checks");
    let ids: Vec<u64> = delivered.iter().map(|d| d.0.parse().unwrap()).collect();
    assert_eq!(ids[0], 1, "the first change first: {ids:?}");
    assert!(
        ids.windows(2).all(|w| w[1] == w[0] + 1),
        "each once, in order, none lost: {ids:?}"
    );
    let first: Value = serde_json::from_slice(&delivered[0].2).unwrap();
    assert_eq!(first["change"], "raised");
    let status = fd.terminate(Duration::from_secs(20)).await;
    assert!(status.success(), "{status:?}");

    // Confirmed changes are not delivered again.
    let fd = serve(false).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(got.lock().unwrap().len(), delivered.len(), "nothing twice");
    drop(fd);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The tool-life and agent rules over real HTTP: `serve` follows a `factorydash simulate`
/// agent (its first machine starts with a tool past its life warning, read from its
/// CuttingTool assets) and an agent that does not listen; the worn tool is one alarm of
/// the tool-life rule, the silent agent one of the unreachable rule, each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worn_tool_and_an_unreachable_agent_raise_their_alarms() {
    use crate::support::{serve_following, simulate};
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
    let down = format!("http://127.0.0.1:{}", free_port());
    let (dir, config) = config_file(
        "fd-alarm-rules",
        "time-zone = \"UTC\"\n\
         [[alarm]]\nname = \"Tools\"\ntool-life = true\npriority = \"low\"\n\
         [[alarm]]\nname = \"Agent down\"\nunreachable = \"2s\"\npriority = \"urgent\"\n",
    );
    let serve = serve_following(
        &[agent.clone(), down.clone()],
        &["--config", config.to_str().unwrap()],
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let alarms = loop {
        let (_, active) = get_json(&format!("{}/api/alarms/active", serve.base)).await;
        let alarms = active["alarms"].as_array().cloned().unwrap_or_default();
        let tool = alarms.iter().any(|a| a["rule"] == "Tools");
        let agent_down = alarms.iter().any(|a| a["rule"] == "Agent down");
        if tool && agent_down {
            break alarms;
        }
        assert!(
            Instant::now() < deadline,
            "no tool or agent alarm: {active}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let tools: Vec<&Value> = alarms.iter().filter(|a| a["rule"] == "Tools").collect();
    assert_eq!(tools.len(), 1, "one worn tool: {tools:?}");
    let t = tools[0];
    assert!(
        t["dataItemId"].as_str().unwrap().starts_with("asset:"),
        "{t}"
    );
    assert!(
        t["message"]
            .as_str()
            .unwrap()
            .contains("near its life limit"),
        "{t}"
    );
    assert_eq!(t["agent"], agent);
    let downs: Vec<&Value> = alarms
        .iter()
        .filter(|a| a["rule"] == "Agent down")
        .collect();
    assert_eq!(downs.len(), 1, "{downs:?}");
    assert_eq!(downs[0]["agent"], down);
    assert_eq!(downs[0]["priority"], "urgent");
    assert_eq!(
        downs[0]["message"],
        format!("agent {down} unreachable for 2 s or more")
    );
    // Still one each a few reads later (a read that finds the tool worn again raises
    // nothing new).
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (_, active) = get_json(&format!("{}/api/alarms/active", serve.base)).await;
    let rules: Vec<&str> = active["alarms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["rule"].as_str().unwrap())
        .collect();
    assert_eq!(
        rules.iter().filter(|r| **r == "Tools").count(),
        1,
        "{rules:?}"
    );
    assert_eq!(
        rules.iter().filter(|r| **r == "Agent down").count(),
        1,
        "{rules:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
