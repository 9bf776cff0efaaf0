//! Agent URLs with credentials (`http://user:password@host`): one agent per URL without
//! them, and no password stored, shown or put anywhere but where the follower needs it.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{get_json, replay_agent, start, wait_for, FreshDb};

/// `method url` with a JSON `body`, on an open dashboard (no token, no browser headers).
async fn call(method: reqwest::Method, url: &str, body: Option<Value>) -> (u16, Value) {
    let mut r = reqwest::Client::new().request(method, url);
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

/// `base` (`http://127.0.0.1:PORT`) with `userinfo@` in it.
fn with_userinfo(base: &str, userinfo: &str) -> String {
    base.replacen("http://", &format!("http://{userinfo}@"), 1)
}

/// Two agents whose URLs differ only by their passwords are one agent: the second is
/// refused (409, naming the agent without credentials), so pausing by the URL as shown
/// finds exactly one (it found two, and answered 404, before).
#[tokio::test(flavor = "multi_thread")]
async fn an_agent_differing_only_by_its_password_is_refused() {
    use reqwest::Method;
    let agent = replay_agent("1000").await;
    let one = with_userinfo(&agent.base, "user:pw-one-41c7");
    let two = with_userinfo(&agent.base, "user:pw-two-83d2");
    let serve = start(&["serve", "--agent", &one, "--listen", "127.0.0.1:0"]).await;
    let base = &serve.base;

    let (status, body) = call(
        Method::POST,
        &format!("{base}/api/agents"),
        Some(json!({ "url": two })),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    let message = body["error"].as_str().unwrap();
    assert!(message.contains(&agent.base), "{message}");
    assert!(!message.contains("pw-"), "{message}");
    // The same URL again is the same agent, followed already.
    let (status, body) = call(
        Method::POST,
        &format!("{base}/api/agents"),
        Some(json!({ "url": one })),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let (_, agents) = get_json(&format!("{base}/api/agents")).await;
    let urls: Vec<&str> = agents
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["url"].as_str().unwrap())
        .collect();
    assert_eq!(urls, [agent.base.as_str()], "{agents}");

    // Paused by the URL as shown before (credentials redacted), then resumed by the URL
    // as shown now: one agent each time.
    let shown = with_userinfo(&agent.base, "user:***");
    let (status, body) = call(
        Method::POST,
        &format!(
            "{base}/api/agents/pause?url={}",
            form_urlencoded::byte_serialize(shown.as_bytes()).collect::<String>()
        ),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({ "url": agent.base, "following": false }));
    let (status, body) = call(
        Method::POST,
        &format!("{base}/api/agents/resume?url={}", agent.base),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Followed again: ingest goes on.
    wait_for(base, Duration::from_secs(60), "observations stored", |h| {
        h["observations"].as_u64() > Some(0)
    })
    .await;
}

/// Eight adds of one agent at once, each with another password: one is followed (201),
/// the others refused (409), and the credentials kept are the one followed's, so that a
/// restart connects as the running process does.
#[tokio::test(flavor = "multi_thread")]
async fn adds_at_once_with_other_passwords_keep_the_one_followed() {
    use reqwest::Method;
    let agent = replay_agent("1000").await;
    let dir = tempfile_dir();
    let data = dir.join("data");
    let serve = start(&[
        "serve",
        "--data-dir",
        data.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ])
    .await;
    let adds = (0..8).map(|i| {
        let url = with_userinfo(&agent.base, &format!("user:pw-race-{i}"));
        let api = format!("{}/api/agents", serve.base);
        async move {
            (
                i,
                call(Method::POST, &api, Some(json!({ "url": url }))).await,
            )
        }
    });
    let answers = futures_util::future::join_all(adds).await;
    let created: Vec<usize> = answers
        .iter()
        .filter(|(_, (status, _))| *status == 201)
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(created.len(), 1, "{answers:?}");
    assert!(
        answers.iter().all(|(_, (s, _))| *s == 201 || *s == 409),
        "{answers:?}"
    );
    serve.terminate(Duration::from_secs(10)).await;
    let store = factorydash_store::sqlite::SqliteStore::open(&data.join("factorydash.db"))
        .await
        .unwrap();
    let kept = factorydash_store::Store::agent_credentials(&store, &agent.base)
        .await
        .unwrap()
        .expect("credentials kept");
    assert_eq!(
        kept.in_url(&agent.base),
        with_userinfo(&agent.base, &format!("user:pw-race-{}", created[0]))
    );
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--agent` twice for one agent with other credentials: `serve` refuses to start, naming
/// the agent without them.
#[tokio::test(flavor = "multi_thread")]
async fn the_command_line_names_each_agent_once() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_factorydash"))
        .args([
            "serve",
            "--store",
            "memory",
            "--listen",
            "127.0.0.1:0",
            "--agent",
            "http://u:pw-one-41c7@127.0.0.1:9",
            "--agent",
            "http://u:pw-two-83d2@127.0.0.1:9",
        ])
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), out)
        .await
        .expect("serve exits")
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("http://127.0.0.1:9"), "{stderr}");
    assert!(!stderr.contains("pw-"), "{stderr}");
}

/// Whether `needle` is anywhere in the file at `path` (missing: no).
fn file_holds(path: &std::path::Path, needle: &str) -> bool {
    std::fs::read(path)
        .map(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
        .unwrap_or(false)
}

/// After a run following `--agent http://user:PASSWORD@…` (and pausing it, which stores
/// it as a configured agent), neither the SQLite file nor its write-ahead log holds the
/// password: it was only ever given to the HTTP client.
#[tokio::test(flavor = "multi_thread")]
async fn no_password_in_the_sqlite_file() {
    use reqwest::Method;
    const PASSWORD: &str = "pw-sqlite-6e0b";
    let agent = replay_agent("1000").await;
    let dir = tempfile_dir();
    let data = dir.join("data");
    let serve = start(&[
        "serve",
        "--agent",
        &with_userinfo(&agent.base, &format!("user:{PASSWORD}")),
        "--data-dir",
        data.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ])
    .await;
    wait_for(
        &serve.base,
        Duration::from_secs(60),
        "observations stored",
        |h| h["observations"].as_u64() > Some(1000),
    )
    .await;
    let (status, body) = call(
        Method::POST,
        &format!("{}/api/agents/pause?url={}", serve.base, agent.base),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let db = data.join("factorydash.db");
    let wal = data.join("factorydash.db-wal");
    assert!(file_holds(&db, "127.0.0.1") || file_holds(&wal, "127.0.0.1"));
    for file in [&db, &wal] {
        assert!(!file_holds(file, PASSWORD), "{}", file.display());
    }
    serve.terminate(Duration::from_secs(10)).await;
    for file in [&db, &wal] {
        assert!(!file_holds(file, PASSWORD), "{}", file.display());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A fresh directory under the system's temporary directory.
fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("fdtest-credentials-{}", rand::random::<u32>()));
    std::fs::create_dir(&dir).unwrap();
    dir
}

/// The same on PostgreSQL: `agents` and `configured_agents` hold the URL without the
/// password (it is in no table at all: the command line gave it).
#[tokio::test(flavor = "multi_thread")]
async fn no_password_in_postgresql() {
    use reqwest::Method;
    const PASSWORD: &str = "pw-postgres-2a9f";
    let Some(server) = crate::support::postgres_url("credentials") else {
        return;
    };
    let db = FreshDb::create(&server, "credentials").await;
    let agent = replay_agent("1000").await;
    let serve = start(&[
        "serve",
        "--agent",
        &with_userinfo(&agent.base, &format!("user:{PASSWORD}")),
        "--database-url",
        &db.url,
        "--listen",
        "127.0.0.1:0",
    ])
    .await;
    wait_for(
        &serve.base,
        Duration::from_secs(60),
        "observations stored",
        |h| h["observations"].as_u64() > Some(1000),
    )
    .await;
    let (status, body) = call(
        Method::POST,
        &format!("{}/api/agents/pause?url={}", serve.base, agent.base),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let client = db.connect().await;
    for table in ["agents", "configured_agents"] {
        let urls: Vec<String> = client
            .query(&format!("SELECT url FROM {table}"), &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(urls, std::slice::from_ref(&agent.base), "{table}");
    }
    let credentials: i64 = client
        .query_one("SELECT count(*) FROM agent_credentials", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(credentials, 0);
    drop(serve);
    drop(client);
    db.drop().await;
}
