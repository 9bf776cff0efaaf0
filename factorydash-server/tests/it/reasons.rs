//! Operators' reasons for stops, end to end over HTTP against a real `serve` on SQLite
//! with accounts, on the bundled 3-machine recording: an operator gives a stop a reason
//! over `/api/stop-reasons` and on the stop's form (no JavaScript, with the form token);
//! the stop list shows it and ranks the stops by reason; a viewer, a stranger, another
//! device, a reason not configured and a stop that does not exist are refused; the audit
//! log has each reason; reasons survive a restart.

use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

use crate::accounts::{user_cli, Client, ADA_PASSWORD, CAROL_PASSWORD};
use crate::oee::AGENT;
use crate::support::start_logged;

const CONFIG: &str = r#"time-zone = "UTC"
stop-reasons = ["Waiting for material", "Tool change", "No operator"]
"#;

/// Stores the 3-machine recording in a new SQLite data directory; Mazak01's first
/// observation's time.
async fn recorded(dir: &Path) -> DateTime<Utc> {
    crate::oee::stored_recording(dir)
        .await
        .observations
        .iter()
        .filter(|o| o.device == "Mazak01")
        .map(|o| o.timestamp)
        .min()
        .unwrap()
}

/// Posts the reason form's `fields` as a browser does.
async fn post_form(client: &mut Client, fields: &[(&'static str, String)]) -> (u16, String) {
    let refs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, body, _) = client.form("/stops/reason", &refs).await;
    (status, body)
}

fn query(pairs: &[(&str, &str)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        q.append_pair(k, v);
    }
    q.finish()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_give_stops_reasons_and_the_stop_list_ranks_them() {
    let dir = std::env::temp_dir().join(format!("fd-reasons-{}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir).unwrap();
    let first = recorded(&dir).await;
    let config = dir.join("factorydash.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let data_dir = dir.to_str().unwrap().to_owned();
    let store = ["--data-dir", data_dir.as_str()];
    let (ok, out) = user_cli(&store, &["add", "--admin", "ada"], ADA_PASSWORD).await;
    assert!(ok, "{out}");
    let args = [
        "serve",
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        &data_dir,
        "--listen",
        "127.0.0.1:0",
        // The recording is of 2016: keep its observations and summaries.
        "--summary-retention",
        "36500d",
        "--retention",
        "36500d",
    ];
    let (fd, _log) = start_logged(&args, &[]).await;
    let base = fd.base.clone();
    let mut ada = Client::new(&base, Some("127.0.4.1".parse().unwrap()));
    assert_eq!(ada.sign_in("ada", ADA_PASSWORD).await, 303);
    for (user, role, scope) in [
        ("vera", "viewer", "device:Mazak01"),
        ("otto", "operator", "device:Mazak01"),
    ] {
        let (status, body) = ada
            .json(
                reqwest::Method::POST,
                "/api/users",
                Some(json!({ "name": user, "password": CAROL_PASSWORD })),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = ada
            .json(
                reqwest::Method::POST,
                "/api/groups",
                Some(json!({ "name": format!("{user}-{role}s"), "role": role,
                             "scope": [scope], "members": [user] })),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let mut vera = Client::new(&base, Some("127.0.4.2".parse().unwrap()));
    assert_eq!(vera.sign_in("vera", CAROL_PASSWORD).await, 303);
    let mut otto = Client::new(&base, Some("127.0.4.3".parse().unwrap()));
    assert_eq!(otto.sign_in("otto", CAROL_PASSWORD).await, 303);
    let mut nobody = Client::new(&base, Some("127.0.4.4".parse().unwrap()));

    // Mazak01's stops over its first week.
    let (from, to) = (first.to_rfc3339(), (first + Duration::days(7)).to_rfc3339());
    let window = [("device", "Mazak01"), ("from", &from), ("to", &to)];
    let stops_path = format!("/api/stops?{}", query(&window));
    let (status, body) = otto.get(&stops_path).await;
    assert_eq!(status, 200, "{body}");
    let list: Value = serde_json::from_str(&body).unwrap();
    let stops = list["stops"].as_array().unwrap();
    assert!(stops.len() >= 3, "{list}");
    assert_eq!(
        list["reasons"],
        json!(["Waiting for material", "Tool change", "No operator"])
    );
    // Nobody gave a reason yet: one row, every stop.
    assert_eq!(list["byReason"]["byTime"].as_array().unwrap().len(), 1);
    assert_eq!(list["byReason"]["byTime"][0]["cause"], "(no reason given)");
    assert_eq!(list["byReason"]["stops"], stops.len());
    let stop = |i: usize| {
        (
            stops[i]["item"].as_str().unwrap().to_owned(),
            stops[i]["began"].as_str().unwrap().to_owned(),
            stops[i]["seconds"].as_f64().unwrap(),
        )
    };
    let (item, began, seconds) = stop(0);
    let reason = |device: &str, item: &str, began: &str, reason: &str| {
        json!({ "agent": AGENT, "device": device, "item": item, "began": began,
                "reason": reason, "comment": "  forklift late  " })
    };
    let post = reqwest::Method::POST;
    let path = "/api/stop-reasons";

    // Refused: a stranger, a viewer, a device out of the operator's scope, a reason not
    // configured, a stop that does not exist, a time that is not one.
    let good = reason("Mazak01", &item, &began, "Waiting for material");
    assert_eq!(
        nobody.json(post.clone(), path, Some(good.clone())).await.0,
        401
    );
    let (status, body) = vera.json(post.clone(), path, Some(good.clone())).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.to_string().contains("operator role"), "{body}");
    let (status, body) = otto
        .json(
            post.clone(),
            path,
            Some(reason("Mazak03", &item, &began, "Tool change")),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = otto
        .json(
            post.clone(),
            path,
            Some(reason("Mazak01", &item, &began, "Lunch")),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.to_string()
            .contains("Waiting for material, Tool change, No operator"),
        "{body}"
    );
    let later = (began.parse::<DateTime<Utc>>().unwrap() + Duration::microseconds(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let (status, body) = otto
        .json(
            post.clone(),
            path,
            Some(reason("Mazak01", &item, &later, "Tool change")),
        )
        .await;
    assert_eq!(status, 404, "a stop that did not begin then: {body}");
    let (status, body) = otto
        .json(
            post.clone(),
            path,
            Some(reason("Mazak01", &item, "yesterday", "Tool change")),
        )
        .await;
    assert_eq!(status, 400, "{body}");

    // Given by the operator: kept, trimmed, shown in the list and ranked.
    let (status, body) = otto.json(post.clone(), path, Some(good)).await;
    assert_eq!(status, 200, "{body}");
    let given = body;
    assert_eq!(given["reason"]["reason"], "Waiting for material");
    assert_eq!(given["reason"]["comment"], "forklift late");
    assert_eq!(given["reason"]["givenBy"], "otto");
    let (_, body) = vera.get(&stops_path).await;
    let list: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list["stops"][0]["reason"]["reason"], "Waiting for material");
    assert_eq!(list["stops"][1]["reason"], Value::Null);
    let rows = list["byReason"]["byTime"].as_array().unwrap();
    let row = |name: &str| rows.iter().find(|r| r["cause"] == name).unwrap().clone();
    assert_eq!(row("Waiting for material")["stops"], 1);
    assert!((row("Waiting for material")["seconds"].as_f64().unwrap() - seconds).abs() < 1e-6);
    assert_eq!(row("(no reason given)")["stops"], stops.len() - 1);

    // The form: the viewer's list offers none, the operator's offers one per stop.
    let page_path = format!("/stops?{}", query(&window));
    let (_, page, _) = vera.page(&page_path).await;
    assert!(page.contains("By operators&#39; reason") || page.contains("By operators' reason"));
    assert!(!page.contains("/stops/reason?"), "a viewer gives no reason");
    let (_, page, _) = otto.page(&page_path).await;
    assert!(page.contains("Waiting for material") && page.contains("forklift late"));
    assert_eq!(
        page.matches("/stops/reason?").count(),
        stops.len(),
        "a link per stop"
    );
    let (item2, began2, _) = stop(1);
    let form_path = format!(
        "/stops/reason?{}",
        query(&[
            ("agent", AGENT),
            ("device", "Mazak01"),
            ("item", &item2),
            ("began", &began2),
            ("from", &from),
            ("to", &to),
        ])
    );
    let (status, page, _) = vera.page(&form_path).await;
    assert_eq!(status, 403, "{page}");
    let (status, page, _) = otto.page(&form_path).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Why did Mazak01 stop?") && page.contains("No operator"));
    let at = page.find("name=\"csrf\" value=\"").expect("a form token") + 19;
    let csrf = page[at..at + 64].to_owned();
    let fields = |csrf: &str, reason: &str| {
        vec![
            ("csrf", csrf.to_owned()),
            ("agent", AGENT.to_owned()),
            ("device", "Mazak01".to_owned()),
            ("item", item2.clone()),
            ("began", began2.clone()),
            ("from", from.clone()),
            ("to", to.clone()),
            ("reason", reason.to_owned()),
            ("comment", "<b>no one on shift</b>".to_owned()),
        ]
    };
    let (status, _) = post_form(&mut otto, &fields("0".repeat(64).as_str(), "No operator")).await;
    assert_eq!(status, 403, "without this server's form token");
    let (status, page) = post_form(&mut otto, &fields(&csrf, "Lunch")).await;
    assert_eq!(status, 400);
    assert!(page.contains("the reason must be one of") && !page.contains("<b>no one"));
    let (status, _) = post_form(&mut otto, &fields(&csrf, "No operator")).await;
    assert_eq!(status, 303);
    let back = format!(
        "/stops?{}",
        query(&[
            ("device", "Mazak01"),
            ("agent", AGENT),
            ("from", &from),
            ("to", &to),
            ("done", "reason-saved"),
        ])
    );
    let (_, page, _) = otto.page(&back).await;
    assert!(page.contains("Reason saved.") && page.contains("No operator"));
    assert!(
        page.contains("&lt;b&gt;no one on shift&lt;/b&gt;"),
        "the comment, escaped"
    );

    // Given again: replaced.
    let (status, _) = post_form(&mut otto, &fields(&csrf, "Tool change")).await;
    assert_eq!(status, 303);
    let (_, body) = otto.get(&stops_path).await;
    let list: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list["stops"][1]["reason"]["reason"], "Tool change");
    assert!(list["byReason"]["byTime"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["cause"] != "No operator"));

    // The audit log: one entry per reason given.
    let (_, audit) = ada.get("/api/audit?action=stop-reason").await;
    assert_eq!(audit.matches("stop-reason").count(), 3, "{audit}");
    fd.terminate(std::time::Duration::from_secs(10)).await;

    // After a restart, still there.
    let (fd, _log) = start_logged(&args, &[]).await;
    let mut otto = Client::new(&fd.base, Some("127.0.4.3".parse().unwrap()));
    assert_eq!(otto.sign_in("otto", CAROL_PASSWORD).await, 303);
    let (_, body) = otto.get(&stops_path).await;
    let list: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list["stops"][0]["reason"]["reason"], "Waiting for material");
    assert_eq!(list["stops"][1]["reason"]["reason"], "Tool change");
    fd.terminate(std::time::Duration::from_secs(10)).await;
    let _ = std::fs::remove_dir_all(&dir);
}
