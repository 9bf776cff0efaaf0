//! The alarm rules page end to end, over HTTP against a real `serve --demo` on SQLite: the
//! configuration file's rule is listed; an admin saves a rule as text (the form, with its
//! token) and its alarms are raised at once and after a restart; text that does not read,
//! or takes a configuration rule's name, is refused with why and changes nothing; a
//! viewer cannot see or change the page; saving no rules clears the page rule's alarms.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::accounts::{user_cli, Client, ADA_PASSWORD};
use crate::support::start_logged;

const RULE: &str = "[[alarm]]\r\nname = \"Any state\"\r\nstate = \"Execution\"\r\nstates = [\"ACTIVE\", \"READY\", \"STOPPED\", \"INTERRUPTED\", \"FEED_HOLD\", \"OPTIONAL_STOP\", \"PROGRAM_STOPPED\", \"PROGRAM_COMPLETED\"]\r\nfor = \"1s\"\r\npriority = \"low\"\r\n";

fn csrf(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a form token") + 19;
    page[at..at + 64].to_owned()
}

/// The active alarms of rule `rule`, once `done` holds for them (at most 60 s).
async fn alarms_of(client: &mut Client, rule: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = client.get("/api/alarms/active").await;
        assert_eq!(status, 200, "{body}");
        let all: Value = serde_json::from_str(&body).unwrap();
        let of: Vec<Value> = all["alarms"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["rule"] == rule)
            .cloned()
            .collect();
        if done(&of) {
            return of;
        }
        assert!(Instant::now() < deadline, "{rule}: {body}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_edits_the_alarm_rules_on_their_page() {
    let dir = std::env::temp_dir().join(format!("fd-alarm-rules-{}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("factorydash.toml");
    std::fs::write(
        &config,
        "[[alarm]]\nname = \"Faults\"\ncondition = \"fault\"\npriority = \"high\"\n",
    )
    .unwrap();
    let data_dir = dir.join("data").to_str().unwrap().to_owned();
    let store = ["--data-dir", data_dir.as_str()];
    let (ok, out) = user_cli(&store, &["add", "--admin", "ada"], ADA_PASSWORD).await;
    assert!(ok, "{out}");
    let args = [
        "serve",
        "--demo",
        "--speed",
        "20",
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        &data_dir,
        "--listen",
        "127.0.0.1:0",
    ];
    let (fd, _log) = start_logged(&args, &[]).await;
    let (mut ada, mut vera) = crate::accounts::admin_and_viewer(&fd.base, 6).await;

    let (status, page, _) = ada.page("/admin/alarms").await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("Faults") && page.contains("a Condition at Fault (every device; high)"),
        "{page}"
    );
    let token = csrf(&page);
    assert_eq!(vera.page("/admin/alarms").await.0, 403);
    let (status, _, _) = vera
        .form("/admin/alarms", &[("csrf", &token), ("rules", RULE)])
        .await;
    assert_eq!(status, 403, "a viewer changes nothing");
    let (status, _, _) = ada.form("/admin/alarms", &[("rules", RULE)]).await;
    assert_eq!(status, 403, "without the form's token");

    // Saved: in effect at once.
    let (status, body, _) = ada
        .form("/admin/alarms", &[("csrf", &token), ("rules", RULE)])
        .await;
    assert_eq!(status, 303, "{body}");
    let raised = alarms_of(&mut ada, "Any state", |a| !a.is_empty()).await;
    assert_eq!(raised[0]["priority"], "low");
    let (_, page, _) = ada.page("/admin/alarms?done=rules-saved").await;
    assert!(
        page.contains("in effect now") && page.contains("saved by ada"),
        "{page}"
    );
    assert!(page.contains("Execution in ACTIVE, READY"), "{page}");
    // A viewer sees the alarms, without buttons to act on them.
    let (_, body) = vera.get("/api/alarms/active").await;
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert!(
        seen["alarms"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["canAct"] == false),
        "{body}"
    );

    // Refused with why; the rules in effect stay.
    for (bad, says) in [
        (
            "[[alarm]]\nname = \"Faults\"\nstale = \"1m\"",
            "the configuration file's already",
        ),
        (
            "[[alarm-webhook]]\nurl = \"http://127.0.0.1:9/\"\nsecret = \"s\"",
            "only [[alarm]] tables",
        ),
        ("[[alarm]\nname = 1", "expected"),
        ("[[alarm]]\nname = \"X\"", "exactly one"),
    ] {
        let (status, body, _) = ada
            .form("/admin/alarms", &[("csrf", &token), ("rules", bad)])
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body.contains(says), "{bad}: {body}");
    }
    let (_, page, _) = ada.page("/admin/alarms").await;
    let from_page = &page[page.find("From this page").unwrap()..];
    assert!(
        from_page.contains("<th scope=\"row\">Any state</th>"),
        "{page}"
    );
    // Shelved (not ended whatever its data does meanwhile), then kept in the store at
    // the next tick (5 s).
    let id = raised[0]["id"].as_u64().unwrap();
    let (status, body) = ada
        .json(
            reqwest::Method::POST,
            &format!("/api/alarms/{id}/shelve"),
            Some(serde_json::json!({ "comment": "seen", "minutes": 60 })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    tokio::time::sleep(Duration::from_secs(6)).await;
    fd.terminate(Duration::from_secs(10)).await;

    // After a restart, still in effect; then none: its alarms clear.
    let (fd, _log) = start_logged(&args, &[]).await;
    let mut ada = Client::new(&fd.base, Some("127.0.6.1".parse().unwrap()));
    assert_eq!(ada.sign_in("ada", ADA_PASSWORD).await, 303);
    // The same alarm, taken back shelved: not raised anew; a new one is numbered past
    // every number the last run gave.
    let again = alarms_of(&mut ada, "Any state", |a| a.iter().any(|a| a["id"] == id)).await;
    let same = again.iter().find(|a| a["id"] == id).unwrap();
    assert_eq!(same["shelved"]["comment"], "seen", "{same}");
    let newest_before = raised
        .iter()
        .filter_map(|a| a["id"].as_u64())
        .max()
        .unwrap();
    assert!(
        again.iter().all(|a| a["id"] == id
            || a["id"].as_u64().unwrap() > newest_before
            || raised
                .iter()
                .any(|r| r["id"] == a["id"] && r["device"] == a["device"])),
        "a number names two alarms: {again:?}"
    );
    let (_, page, _) = ada.page("/admin/alarms").await;
    let token = csrf(&page);
    let (status, _, _) = ada
        .form("/admin/alarms", &[("csrf", &token), ("rules", "")])
        .await;
    assert_eq!(status, 303);
    let cleared = alarms_of(&mut ada, "Any state", |a| {
        a.iter().all(|a| a["state"] == "cleared-unacknowledged")
    })
    .await;
    assert!(!cleared.is_empty());
    let (_, audit) = ada.get("/api/audit?action=alarm-rules-changed").await;
    assert_eq!(
        audit.matches("\"alarm-rules-changed\"").count(),
        2,
        "{audit}"
    );
    fd.terminate(Duration::from_secs(10)).await;
    let _ = std::fs::remove_dir_all(&dir);
}
