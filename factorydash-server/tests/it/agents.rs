//! Tokens and roles, and agents added, paused, resumed and removed at run time through
//! `/api/agents`, kept in PostgreSQL across restarts.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{replay_agent, start, wait_for, FreshDb};

const VIEWER: &str = "viewer-0123456789abcdef";
const ADMIN: &str = "admin-0123456789abcdef";

async fn call(
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut r = client.request(method, url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn source<'a>(health: &'a Value, url: &str) -> Option<&'a Value> {
    health["sources"]
        .as_array()?
        .iter()
        .find(|s| s["source"] == url)
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_guard_the_dashboard_and_admins_manage_agents_at_run_time() {
    use reqwest::Method;
    let Some(server) = crate::support::postgres_url("agents_api") else {
        return;
    };
    let db = FreshDb::create(&server, "agents").await;
    let agent = replay_agent("1000").await;
    let dead = "http://127.0.0.1:9";
    let args = [
        "serve",
        "--agent",
        dead,
        "--database-url",
        &db.url,
        "--listen",
        "127.0.0.1:0",
        "--token",
        &format!("viewer:{VIEWER}"),
        "--token",
        &format!("admin:{ADMIN}"),
    ];
    let fd = start(&args).await;
    let base = &fd.base;

    // Without a token: only /healthz.
    let (status, body) = call(Method::GET, &format!("{base}/api/latest"), None, None).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        call(Method::GET, &format!("{base}/"), None, None).await.0,
        401
    );
    assert_eq!(
        call(Method::GET, &format!("{base}/metrics"), None, None)
            .await
            .0,
        401
    );
    assert_eq!(
        call(
            Method::GET,
            &format!("{base}/api/latest"),
            Some("wrong-0123456789abcdef"),
            None
        )
        .await
        .0,
        401
    );
    assert_eq!(
        call(Method::GET, &format!("{base}/healthz"), None, None)
            .await
            .0,
        200
    );
    // A viewer reads, and may not change.
    let (status, agents) = call(
        Method::GET,
        &format!("{base}/api/agents"),
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(status, 200, "{agents}");
    assert_eq!(agents[0]["url"], dead);
    assert_eq!(agents[0]["addedAtRunTime"], false);
    let add = json!({ "url": agent.base });
    assert_eq!(
        call(
            Method::POST,
            &format!("{base}/api/agents"),
            Some(VIEWER),
            Some(add.clone())
        )
        .await
        .0,
        403
    );
    // In a browser: ?token= once becomes a cookie.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client
        .get(format!("{base}/?token={VIEWER}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], "/");
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    let page = client
        .get(format!("{base}/"))
        .header("cookie", cookie.split(';').next().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);

    // An admin adds the replay agent: it is followed at once.
    let (status, body) = call(
        Method::POST,
        &format!("{base}/api/agents"),
        Some(ADMIN),
        Some(add),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = call(
        Method::POST,
        &format!("{base}/api/agents"),
        Some(ADMIN),
        Some(json!({ "url": "not a url" })),
    )
    .await;
    assert_eq!(status, 400);
    // A body that is not JSON, or none: a 400 that says so, not the 404 of no route.
    let client = reqwest::Client::new();
    for (body, needle) in [("{\"url\": ", "not JSON"), ("", "JSON")] {
        let r = client
            .post(format!("{base}/api/agents"))
            .bearer_auth(ADMIN)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400, "{body:?}");
        let answer: Value = r.json().await.unwrap();
        assert!(
            answer["error"].as_str().unwrap().contains(needle),
            "{answer}"
        );
    }
    let too_big = format!("{{\"url\": \"{}\"}}", "x".repeat(20_000));
    let r = client
        .post(format!("{base}/api/agents"))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body(too_big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    wait_for(
        base,
        Duration::from_secs(30),
        "the added agent's data",
        |h| source(h, &agent.base).is_some_and(|s| s["observations"].as_u64().unwrap_or(0) > 1000),
    )
    .await;
    // Paused: it stops.
    let pause = format!("{base}/api/agents/pause?url={}", agent.base);
    assert_eq!(call(Method::POST, &pause, Some(ADMIN), None).await.0, 200);
    // What was read before the pause is still stored; then nothing more is read.
    let health = wait_for(base, Duration::from_secs(30), "paused and drained", |h| {
        source(h, &agent.base).is_some_and(|s| s["state"] == "paused" && s["buffered"] == 0)
    })
    .await;
    let stored = source(&health, &agent.base).unwrap()["nextSequence"].clone();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, health) = call(Method::GET, &format!("{base}/healthz"), None, None).await;
    assert_eq!(
        source(&health, &agent.base).unwrap()["nextSequence"],
        stored,
        "nothing read while paused"
    );
    drop(fd);

    // A restart on the same database: the added agent is still known, still paused.
    let fd = start(&args).await;
    let base = &fd.base;
    let (_, agents) = call(
        Method::GET,
        &format!("{base}/api/agents"),
        Some(ADMIN),
        None,
    )
    .await;
    let added = agents
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["url"] == agent.base.as_str())
        .unwrap();
    assert_eq!(
        (added["addedAtRunTime"].clone(), added["paused"].clone()),
        (json!(true), json!(true)),
        "{agents}"
    );
    // Resumed: it continues where it stopped, to the end.
    let resume = format!("{base}/api/agents/resume?url={}", agent.base);
    assert_eq!(call(Method::POST, &resume, Some(ADMIN), None).await.0, 200);
    wait_for(base, Duration::from_secs(120), "the rest", |h| {
        source(h, &agent.base).is_some_and(|s| s["nextSequence"] == 112_763)
    })
    .await;
    let client_db = db.connect().await;
    let row = client_db
        .query_one(
            "SELECT count(*), count(DISTINCT sequence) FROM observations",
            &[],
        )
        .await
        .unwrap();
    let (n, distinct): (i64, i64) = (row.get(0), row.get(1));
    assert_eq!(
        (n, distinct),
        (112_762, 112_762),
        "every observation once across pause and restart"
    );
    // Removed: forgotten, and command-line agents cannot be removed.
    let remove = format!("{base}/api/agents?url={}", agent.base);
    assert_eq!(
        call(Method::DELETE, &remove, Some(ADMIN), None).await.0,
        204
    );
    assert_eq!(
        call(Method::DELETE, &remove, Some(ADMIN), None).await.0,
        404
    );
    assert_eq!(
        call(
            Method::DELETE,
            &format!("{base}/api/agents?url={dead}"),
            Some(ADMIN),
            None
        )
        .await
        .0,
        404
    );
    let (_, agents) = call(
        Method::GET,
        &format!("{base}/api/agents"),
        Some(ADMIN),
        None,
    )
    .await;
    assert!(
        agents
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["url"] != agent.base.as_str()),
        "{agents}"
    );
    drop(client_db);
    drop(fd);
    drop(agent);
    db.drop().await;
}
