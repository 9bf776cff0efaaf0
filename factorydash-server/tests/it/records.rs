//! Device records end to end, over HTTP against a real `serve` (SQLite and PostgreSQL):
//! an admin gives a machine a display name, a cell, a description and an ideal cycle time
//! on the machines page (a form, no JavaScript) and over `/api/device-records`; the board,
//! the device page and `/api/devices` show them; a `cell:` scope follows the record's
//! cell; bad input is refused with a reason; readers who are not admins cannot see or
//! change records; records survive a restart.

use std::time::Duration;

use serde_json::{json, Value};

use crate::accounts::{user_cli, Client, ADA_PASSWORD, CAROL_PASSWORD};
use crate::support::{postgres_url, start_logged, FreshDb};

const LAYOUT: &str = r#"
[[cell]]
name = "Cell A"
line = "Line 1"
devices = ["*"]

[[cell]]
name = "Cell B"
line = "Line 2"
devices = ["no-such-machine"]
"#;

async fn device_records_on(store: &[&str]) {
    let dir = std::env::temp_dir().join(format!("fd-records-{}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("factorydash.toml");
    std::fs::write(&config, LAYOUT).unwrap();
    let config = config.to_str().unwrap().to_owned();
    let (ok, out) = user_cli(store, &["add", "--admin", "ada"], ADA_PASSWORD).await;
    assert!(ok, "{out}");
    let mut args = vec![
        "serve",
        "--demo",
        "--speed",
        "20",
        "--listen",
        "127.0.0.1:0",
        "--config",
        &config,
    ];
    args.extend_from_slice(store);
    let (fd, _log) = start_logged(&args, &[]).await;
    let mut ada = Client::new(&fd.base, Some("127.0.3.1".parse().unwrap()));
    assert_eq!(ada.sign_in("ada", ADA_PASSWORD).await, 303);
    let (_, devices) = ada.get("/api/devices").await;
    let devices: Value = serde_json::from_str(&devices).unwrap();
    let first = &devices[0]["device"];
    let (name, agent) = (
        first["name"].as_str().unwrap().to_owned(),
        first["agent"].as_str().unwrap().to_owned(),
    );
    let other = devices[1]["device"]["name"].as_str().unwrap().to_owned();
    assert_eq!(devices[0]["record"], Value::Null);

    // The machines page: a form per device, with the form token.
    let (status, page, _) = ada.page("/admin/devices").await;
    assert_eq!(status, 200);
    assert!(page.contains(&name) && page.contains(&other));
    let at = page.find("name=\"csrf\" value=\"").expect("a form token") + 19;
    let csrf = page[at..at + 64].to_owned();
    let save = |fields: Vec<(&'static str, String)>| {
        let mut all = vec![
            ("csrf", csrf.clone()),
            ("agent", agent.clone()),
            ("device", name.clone()),
        ];
        all.extend(fields);
        all
    };
    let fields = save(vec![
        ("display_name", "VTC bay 3".into()),
        ("cell", "Cell B".into()),
        ("ideal_cycle_time", "92.5".into()),
        (
            "description",
            "Call the line 2 lead\r\nbefore a tool change".into(),
        ),
    ]);
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, body, _) = ada.form("/admin/devices", &pairs).await;
    assert_eq!(status, 303, "{body}");

    // Shown everywhere: the API, the board's tile, the device page.
    let (_, devices) = ada.get("/api/devices").await;
    let devices: Value = serde_json::from_str(&devices).unwrap();
    let mine = devices
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["device"]["name"] == name.as_str())
        .unwrap();
    assert_eq!(mine["status"]["displayName"], "VTC bay 3");
    assert_eq!(mine["record"]["cell"], "Cell B");
    assert_eq!(mine["record"]["idealCycleTime"], 92.5);
    assert_eq!(
        mine["record"]["description"],
        "Call the line 2 lead\nbefore a tool change"
    );
    assert_eq!(mine["record"]["updatedBy"], "ada");
    let (_, board, _) = ada.page("/").await;
    assert!(
        board.contains("VTC bay 3"),
        "the tile shows the display name"
    );
    let (_, board_b, _) = ada.page("/?cell=Cell%20B").await;
    // The tiles: each `<article class="card …" data-device="NAME" …>`.
    let tiles: Vec<&str> = board_b
        .split("<article class=\"card")
        .skip(1)
        .filter_map(|t| t.split("data-device=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(tiles, [name.as_str()], "the record's cell holds it, alone");
    assert!(board_b.contains("VTC bay 3"));
    let (_, device_page, _) = ada.page(&format!("/device?name={name}")).await;
    assert!(device_page.contains("VTC bay 3") && device_page.contains("92.5 s"));
    assert!(device_page.contains("Line 2 › Cell B"), "{device_page}");

    // A `cell:` scope follows the record: carol sees the moved machine only.
    let (status, _) = ada
        .json(
            reqwest::Method::POST,
            "/api/users",
            Some(json!({ "name": "carol", "password": CAROL_PASSWORD })),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = ada
        .json(
            reqwest::Method::POST,
            "/api/groups",
            Some(json!({ "name": "line-2", "role": "viewer", "scope": ["cell:Cell B"], "members": ["carol"] })),
        )
        .await;
    assert_eq!(status, 200);
    let mut carol = Client::new(&fd.base, Some("127.0.3.2".parse().unwrap()));
    assert_eq!(carol.sign_in("carol", CAROL_PASSWORD).await, 303);
    let (_, seen) = carol.get("/api/devices").await;
    let seen: Value = serde_json::from_str(&seen).unwrap();
    let names: Vec<&str> = seen
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["device"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [name.as_str()]);
    // Not an admin: no records, no machines page.
    assert_eq!(carol.get("/api/device-records").await.0, 403);
    assert_eq!(carol.get("/admin/devices").await.0, 403);
    let (status, _) = carol
        .json(
            reqwest::Method::POST,
            "/api/device-records",
            Some(json!({ "agent": agent, "device": name })),
        )
        .await;
    assert_eq!(status, 403);

    // Bad input: a reason, and nothing changed.
    for (field, value, status, why) in [
        ("ideal_cycle_time", "fast", 400, "a number of seconds"),
        ("ideal_cycle_time", "-3", 400, "over 0"),
        ("cell", "Cell Z", 400, "[[cell]]"),
        ("display_name", "a\u{7}b", 400, "control characters"),
    ] {
        let fields = save(vec![(field, value.into())]);
        let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (got, body, _) = ada.form("/admin/devices", &pairs).await;
        assert_eq!(got, status, "{field}={value}");
        assert!(body.contains(why), "{field}={value}: {body}");
    }
    let (status, body) = ada
        .json(
            reqwest::Method::POST,
            "/api/device-records",
            Some(json!({ "agent": agent, "device": "NoSuchMachine", "displayName": "x" })),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = ada
        .json(
            reqwest::Method::POST,
            "/api/device-records",
            Some(json!({ "agent": agent, "device": name, "idealCycleTime": 1e300 })),
        )
        .await;
    assert_eq!(status, 400);
    let (_, records) = ada
        .json(reqwest::Method::GET, "/api/device-records", None)
        .await;
    assert_eq!(records["records"].as_array().unwrap().len(), 1);
    assert_eq!(
        records["records"][0]["displayName"], "VTC bay 3",
        "unchanged by the refusals"
    );

    // The JSON API: another record, then removed.
    let (status, body) = ada
        .json(
            reqwest::Method::POST,
            "/api/device-records",
            Some(json!({ "agent": agent, "device": other, "idealCycleTime": 30 })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["record"]["idealCycleTime"], 30.0);
    let remove = format!(
        "/api/device-records?agent={}&device={other}",
        form_urlencoded::byte_serialize(agent.as_bytes()).collect::<String>()
    );
    assert_eq!(
        ada.json(reqwest::Method::DELETE, &remove, None).await.0,
        204
    );
    assert_eq!(
        ada.json(reqwest::Method::DELETE, &remove, None).await.0,
        404
    );
    let (_, audit) = ada
        .json(
            reqwest::Method::GET,
            "/api/audit?action=device-changed",
            None,
        )
        .await;
    let entries = audit["entries"].as_array().unwrap();
    assert!(entries.len() >= 3, "{audit}");
    assert!(entries
        .iter()
        .any(|e| e["detail"].as_str().unwrap().contains("ideal cycle time")));
    fd.terminate(Duration::from_secs(10)).await;

    // Kept by the store: after a restart, the board still shows it.
    let (fd, _log) = start_logged(&args, &[]).await;
    let mut ada = Client::new(&fd.base, Some("127.0.3.3".parse().unwrap()));
    assert_eq!(ada.sign_in("ada", ADA_PASSWORD).await, 303);
    let (_, board, _) = ada.page("/").await;
    assert!(board.contains("VTC bay 3"), "kept across a restart");
    fd.terminate(Duration::from_secs(10)).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn device_records_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("fd-records-db-{}", rand::random::<u32>()));
    let dir_text = dir.to_str().unwrap().to_owned();
    device_records_on(&["--data-dir", &dir_text]).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn device_records_on_postgres() {
    let Some(server) = postgres_url("records") else {
        return;
    };
    let db = FreshDb::create(&server, "records").await;
    device_records_on(&["--database-url", &db.url]).await;
    db.drop().await;
}
