//! The replay agent misbehaving, one way at a time, over real HTTP: what is stored always
//! equals what the agent held minus the recorded gaps, with no duplicates.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use crate::support::{get_json, get_text, replay_agent, start, stored, wait_for, FreshDb, Running};

const TOTAL: u64 = 112_762;

fn observations(health: &Value) -> u64 {
    health["observations"].as_u64().unwrap_or(0)
}

/// Sets the agent's faults of `query` (a POST: the switches take no GET), and tells its
/// state after.
async fn fault(agent: &Running, query: &str) -> Value {
    let url = format!("{}/_factorydash/faults?{query}", agent.base);
    let r = reqwest::Client::new().post(&url).send().await.unwrap();
    assert_eq!(r.status(), 200, "POST {url}");
    r.json().await.unwrap()
}

/// A replay agent at `speed` and a follower of it with a short heartbeat.
async fn pair(speed: &str, extra: &[&str]) -> (Running, Running) {
    let agent = replay_agent(speed).await;
    let mut args = vec![
        "serve",
        "--agent",
        &agent.base,
        "--listen",
        "127.0.0.1:0",
        "--poll-interval",
        "100ms",
        "--count",
        "5000",
        "--interval",
        "100ms",
        "--heartbeat",
        "300ms",
    ];
    args.extend_from_slice(extra);
    let follower = start(&args).await;
    (agent, follower)
}

fn sequences(set: &BTreeSet<(u64, String, String, String)>) -> Vec<u64> {
    set.iter().map(|(s, ..)| *s).collect()
}

async fn all_once(follower: &Running) {
    wait_for(
        &follower.base,
        Duration::from_secs(120),
        "every observation",
        // The store's count and the source's health are read one after the other: wait
        // until both show the last batch.
        |h| observations(h) >= TOTAL && h["sources"][0]["nextSequence"].as_u64() == Some(TOTAL + 1),
    )
    .await;
    let (set, rows) = stored(&follower.base).await;
    assert_eq!(rows as u64, TOTAL, "no duplicates");
    assert_eq!(sequences(&set), (1..=TOTAL).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_that_refuses_streaming_is_polled() {
    let agent = replay_agent("2000").await;
    fault(&agent, "refuse_streaming=true").await;
    let follower = start(&[
        "serve",
        "--agent",
        &agent.base,
        "--listen",
        "127.0.0.1:0",
        "--poll-interval",
        "100ms",
        "--count",
        "5000",
    ])
    .await;
    all_once(&follower).await;
    let (_, health) = get_json(&format!("{}/healthz", follower.base)).await;
    assert_eq!(health["sources"][0]["state"], "polling");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_stream_is_reopened_from_the_last_stored_sequence() {
    let (agent, follower) = pair("1500", &[]).await;
    wait_for(&follower.base, Duration::from_secs(30), "streaming", |h| {
        h["sources"][0]["state"] == "streaming"
    })
    .await;
    fault(&agent, "stall=true").await;
    // Silence allowed: twice the 300 ms heartbeat and a second.
    wait_for(
        &follower.base,
        Duration::from_secs(10),
        "a reconnect",
        |h| h["sources"][0]["reconnects"].as_u64().unwrap_or(0) >= 1,
    )
    .await;
    fault(&agent, "stall=false").await;
    all_once(&follower).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_dropped_mid_part_loses_nothing() {
    let (agent, follower) = pair("1500", &[]).await;
    for n in 1..=3 {
        wait_for(&follower.base, Duration::from_secs(30), "streaming", |h| {
            h["sources"][0]["state"] == "streaming"
        })
        .await;
        fault(&agent, "drop_mid_part=true").await;
        wait_for(
            &follower.base,
            Duration::from_secs(30),
            "a reconnect",
            |h| h["sources"][0]["reconnects"].as_u64().unwrap_or(0) >= n,
        )
        .await;
    }
    all_once(&follower).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_answer_is_asked_for_again() {
    let (agent, follower) = pair("1500", &["--no-stream"]).await;
    for _ in 0..3 {
        wait_for(&follower.base, Duration::from_secs(30), "some data", |h| {
            observations(h) > 0
        })
        .await;
        fault(&agent, "malformed=true").await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    all_once(&follower).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_agent_is_followed_all_the_same() {
    let (agent, follower) = pair("3000", &[]).await;
    fault(&agent, "slow_ms=300").await;
    all_once(&follower).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_restart_is_followed_and_what_it_lost_is_recorded() {
    let (agent, follower) = pair("1500", &[]).await;
    wait_for(&follower.base, Duration::from_secs(30), "some data", |h| {
        observations(h) > 20_000
    })
    .await;
    let after = fault(&agent, "restart=true").await;
    let floor = after["firstSequence"].as_u64().unwrap();
    // Everything from the new buffer's start on arrives; what the old instance held but was
    // not yet read is a gap of unknown end.
    wait_for(&follower.base, Duration::from_secs(120), "the rest", |h| {
        h["sources"][0]["nextSequence"].as_u64() == Some(TOTAL + 1)
    })
    .await;
    let (_, health) = get_json(&format!("{}/healthz", follower.base)).await;
    assert_eq!(health["sources"][0]["restarts"], 1, "{health}");
    assert_eq!(health["sources"][0]["instanceId"], 1_475_083_574u64);
    let (_, gaps) = get_json(&format!("{}/api/gaps", follower.base)).await;
    let gaps = gaps.as_array().unwrap();
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    let lost_from = gaps[0]["from"].as_u64().unwrap();
    assert!(gaps[0]["to"].is_null());
    assert_eq!(gaps[0]["instanceId"], 1_475_083_573u64);
    // The agents page says so too.
    let page = get_text(format!("{}/agents", follower.base)).await;
    assert!(page.contains("Gaps (1)"), "{page}");
    assert!(page.contains("unknown (agent restarted)"), "{page}");
    assert!(
        page.contains(&format!(
            r#"<td class="num" data-label="From">{}</td>"#,
            crate::agents_page::thousands(lost_from)
        )),
        "{page}"
    );
    let (set, rows) = stored(&follower.base).await;
    assert_eq!(rows, set.len(), "no duplicates");
    let want: Vec<u64> = (1..lost_from).chain(floor..=TOTAL).collect();
    let got = sequences(&set);
    let first_difference = got.iter().zip(&want).position(|(a, b)| a != b);
    assert!(
        got == want,
        "stored {} sequences, wanted {} ([1, {lost_from}) and [{floor}, {TOTAL}]); first difference at index {first_difference:?}: {:?}",
        got.len(),
        want.len(),
        first_difference.map(|i| (&got[i.saturating_sub(2)..(i + 3).min(got.len())], &want[i.saturating_sub(2)..(i + 3).min(want.len())]))
    );
}

/// `serve` with `args`, killed (SIGKILL) in the middle of the replay, started again and
/// killed again; then, while it is down, the agent's buffer wraps past what was stored,
/// and a third run reads to the end. The agent's first sequence after the wrap.
async fn kill_restart_and_wrap(agent: &Running, args: &[&str]) -> u64 {
    let first = start(args).await;
    wait_for(&first.base, Duration::from_secs(60), "some data", |h| {
        observations(h) > 10_000
    })
    .await;
    drop(first);
    // Second run: nothing lost, nothing twice.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = start(args).await;
    wait_for(&second.base, Duration::from_secs(60), "more data", |h| {
        observations(h) > 5_000
    })
    .await;
    drop(second);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let wrapped = fault(agent, "wrap=1000").await;
    let first_held = wrapped["firstSequence"].as_u64().unwrap();
    let third = start(args).await;
    wait_for(&third.base, Duration::from_secs(120), "the end", |h| {
        h["sources"][0]["nextSequence"].as_u64() == Some(TOTAL + 1)
    })
    .await;
    drop(third);
    first_held
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_and_restarted_factorydash_continues_where_it_stopped_and_records_a_wrap() {
    let Some(server) = crate::support::postgres_url("kill_and_restart") else {
        return;
    };
    let db = FreshDb::create(&server, "restart").await;
    let agent = replay_agent("1000").await;
    let args = |db: &str| -> Vec<String> {
        [
            "serve",
            "--agent",
            &agent.base,
            "--database-url",
            db,
            "--listen",
            "127.0.0.1:0",
            "--count",
            "2000",
            "--interval",
            "100ms",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let args = args(&db.url);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let first_held = kill_restart_and_wrap(&agent, &args).await;

    let client = db.connect().await;
    let gaps = client
        .query("SELECT from_sequence, to_sequence FROM gaps", &[])
        .await
        .unwrap();
    assert_eq!(gaps.len(), 1);
    let (lost_from, lost_to): (i64, Option<i64>) = (gaps[0].get(0), gaps[0].get(1));
    assert_eq!(lost_to, Some(first_held as i64));
    let row = client
        .query_one(
            "SELECT count(*), count(DISTINCT sequence) FROM observations",
            &[],
        )
        .await
        .unwrap();
    let (n, distinct): (i64, i64) = (row.get(0), row.get(1));
    assert_eq!(n, distinct, "no observation twice");
    let seqs: Vec<i64> = client
        .query("SELECT sequence FROM observations ORDER BY sequence", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let want: Vec<i64> = (1..lost_from)
        .chain(first_held as i64..=TOTAL as i64)
        .collect();
    assert_eq!(
        seqs, want,
        "everything but the wrapped range [{lost_from}, {first_held})"
    );
    drop(agent);
    db.drop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_and_restarted_factorydash_on_sqlite_continues_where_it_stopped_and_records_a_wrap()
{
    use factorydash_store::{sqlite::SqliteStore, LatestFilter, Store, StoreError};

    let dir = std::env::temp_dir().join(format!("factorydash-kill-{}", rand::random::<u32>()));
    let agent = replay_agent("1000").await;
    let args = [
        "serve",
        "--agent",
        &agent.base,
        "--data-dir",
        dir.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--count",
        "2000",
        "--interval",
        "100ms",
    ];
    let first_held = kill_restart_and_wrap(&agent, &args).await;

    // The killed process's lock goes with it.
    let path = dir.join("factorydash.db");
    let started = std::time::Instant::now();
    let store = loop {
        match SqliteStore::open(&path).await {
            Ok(store) => break store,
            Err(StoreError::Locked { .. }) if started.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("{e:?}"),
        }
    };
    let gaps = store.gaps().await.unwrap();
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    let (lost_from, lost_to) = (gaps[0].from, gaps[0].to);
    assert_eq!(lost_to, Some(first_held));
    // Every data item's whole series.
    let window = factorydash_core::TimeWindow::new(
        chrono::DateTime::from_timestamp(0, 0).unwrap(),
        chrono::DateTime::from_timestamp(10_000_000_000, 0).unwrap(),
    )
    .unwrap();
    let mut seqs: Vec<u64> = Vec::new();
    let mut page = factorydash_core::PageRequest::first(1000);
    loop {
        let latest = store.latest(&LatestFilter::default(), &page).await.unwrap();
        for item in &latest.items {
            let series = store
                .series(
                    &item.device_key(),
                    &item.observation.data_item_id,
                    &window,
                    usize::MAX,
                )
                .await
                .unwrap();
            seqs.extend(series.iter().map(|o| o.sequence));
        }
        match latest.next {
            Some(next) => page.after = Some(next),
            None => break,
        }
    }
    seqs.sort_unstable();
    assert_eq!(store.observation_count().await.unwrap(), seqs.len() as u64);
    let distinct: BTreeSet<u64> = seqs.iter().copied().collect();
    assert_eq!(distinct.len(), seqs.len(), "no observation twice");
    let want: Vec<u64> = (1..lost_from).chain(first_held..=TOTAL).collect();
    assert_eq!(
        seqs, want,
        "everything but the wrapped range [{lost_from}, {first_held})"
    );
    drop(store);
    drop(agent);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_device_model_change_reads_the_probe_again() {
    let (agent, follower) = pair("1500", &[]).await;
    wait_for(&follower.base, Duration::from_secs(30), "streaming", |h| {
        h["sources"][0]["state"] == "streaming"
    })
    .await;
    let probes = fault(&agent, "").await["probes"].as_u64().unwrap();
    assert_eq!(probes, 1);
    fault(&agent, "model_change=true").await;
    let start = std::time::Instant::now();
    while fault(&agent, "").await["probes"].as_u64().unwrap() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no second /probe"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    all_once(&follower).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_agent_never_delays_another() {
    let agent = replay_agent("5000").await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = format!("http://127.0.0.1:{port}");
    let follower = start(&[
        "serve",
        "--agent",
        &dead,
        "--agent",
        &agent.base,
        "--listen",
        "127.0.0.1:0",
        "--count",
        "10000",
    ])
    .await;
    let health = wait_for(
        &follower.base,
        Duration::from_secs(60),
        "the live agent read whole",
        |h| {
            observations(h) >= TOTAL
                && h["sources"].as_array().is_some_and(|s| {
                    s.iter()
                        .any(|s| s["nextSequence"].as_u64() == Some(TOTAL + 1))
                })
        },
    )
    .await;
    let sources = health["sources"].as_array().unwrap();
    let dead_source = sources
        .iter()
        .find(|s| s["source"] == dead.as_str())
        .unwrap();
    assert!(dead_source["unreachableSince"].is_string(), "{health}");
    let live = sources
        .iter()
        .find(|s| s["source"] == agent.base.as_str())
        .unwrap();
    assert!(
        live["unreachableSince"].is_null() && live["observationsPerSecond"].as_f64().unwrap() > 0.0,
        "{health}"
    );
}

/// A follower of `agent` into the database at `url` for the outage tests: pages of 2,000
/// and a queue of 6,000 (three pages), so that what waits is small and known.
async fn buffered_follower(agent: &Running, url: &str) -> Running {
    buffered_follower_on(agent, &["--database-url", url]).await
}

/// [`buffered_follower`] on the store `store` says (flags of `serve`).
async fn buffered_follower_on(agent: &Running, store: &[&str]) -> Running {
    let args = [
        &["serve", "--agent", &agent.base][..],
        store,
        &[
            "--listen",
            "127.0.0.1:0",
            "--count",
            "2000",
            "--buffer",
            "6000",
            "--interval",
            "100ms",
            "--heartbeat",
            "300ms",
        ],
    ]
    .concat();
    start(&args).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_outage_loses_nothing_and_holds_at_most_the_buffer() {
    let Some(server) = crate::support::postgres_url("database_outage") else {
        return;
    };
    let db = FreshDb::create(&server, "outage").await;
    let agent = replay_agent("1500").await;
    let follower = buffered_follower(&agent, &db.url).await;
    // Connections killed under the ingest, three times.
    for n in 1..=3u64 {
        wait_for(&follower.base, Duration::from_secs(60), "more data", |h| {
            observations(h) > n * 15_000
        })
        .await;
        assert!(db.terminate_connections().await >= 1);
    }
    // Then the database refuses connections for a while: what was read waits, bounded.
    db.allow_connections(false).await;
    db.terminate_connections().await;
    let health = wait_for(
        &follower.base,
        Duration::from_secs(30),
        "the outage shown",
        |h| {
            h["sources"][0]["storeUnavailableSince"].is_string()
                && h["sources"][0]["buffered"].as_u64().unwrap_or(0) > 0
        },
    )
    .await;
    assert_eq!(health["status"], "degraded", "{health}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, health) = get_json(&format!("{}/healthz", follower.base)).await;
    let buffered = health["sources"][0]["buffered"].as_u64().unwrap();
    // The queue holds 6000 / 2000 = 3 pages, the reader one more, the writer the one it
    // retries: never more than five pages of 2000.
    assert!(buffered <= 5 * 2000, "{health}");
    let page = get_text(format!("{}/", follower.base)).await;
    assert!(page.contains("Cannot store what"), "the page says so");
    db.allow_connections(true).await;
    wait_for(&follower.base, Duration::from_secs(120), "the end", |h| {
        h["sources"][0]["nextSequence"].as_u64() == Some(TOTAL + 1)
            && h["sources"][0]["storeUnavailableSince"].is_null()
    })
    .await;
    drop(follower);

    db.assert_every_observation_once(TOTAL).await;
    let client = db.connect().await;
    let gaps: i64 = client
        .query_one("SELECT count(*) FROM gaps", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(gaps, 0);
    drop(client);
    drop(agent);
    db.drop().await;
}

/// The PostgreSQL server itself stopped in the middle of ingest (`pg_ctl stop -m fast`)
/// and started again: the outage is shown, what was read waits in the bounded queue, and
/// afterwards every observation is stored once.
#[tokio::test(flavor = "multi_thread")]
async fn the_database_server_stopped_mid_ingest_and_started_again_loses_nothing() {
    let Some(server) = crate::support::PrivateServer::start("stopped") else {
        return;
    };
    let agent = replay_agent("1500").await;
    let follower = buffered_follower(&agent, &server.url).await;
    wait_for(&follower.base, Duration::from_secs(60), "some data", |h| {
        observations(h) > 15_000
    })
    .await;
    server.stop();
    let health = wait_for(
        &follower.base,
        Duration::from_secs(30),
        "the outage shown",
        |h| h["sources"][0]["storeUnavailableSince"].is_string(),
    )
    .await;
    assert_eq!(health["status"], "degraded", "{health}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, health) = get_json(&format!("{}/healthz", follower.base)).await;
    let buffered = health["sources"][0]["buffered"].as_u64().unwrap();
    assert!(buffered <= 5 * 2000, "{health}");
    assert!(
        health["sources"][0]["nextSequence"].as_u64().unwrap() < TOTAL,
        "reading waits while the database is down: {health}"
    );
    server.resume();
    wait_for(&follower.base, Duration::from_secs(120), "the end", |h| {
        h["sources"][0]["nextSequence"].as_u64() == Some(TOTAL + 1)
            && h["sources"][0]["storeUnavailableSince"].is_null()
    })
    .await;
    drop(follower);
    crate::support::assert_every_observation_once(&server.url, TOTAL).await;
    drop(agent);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_processes_on_one_database_one_ingests_both_show_and_the_other_takes_over() {
    use futures_util::StreamExt;
    let Some(server) = crate::support::postgres_url("two_processes") else {
        return;
    };
    let db = FreshDb::create(&server, "two").await;
    let agent = replay_agent("800").await;
    let args = [
        "serve",
        "--agent",
        &agent.base,
        "--database-url",
        &db.url,
        "--listen",
        "127.0.0.1:0",
        "--count",
        "2000",
        "--interval",
        "100ms",
        "--heartbeat",
        "300ms",
    ];
    let first = start(&args).await;
    wait_for(&first.base, Duration::from_secs(30), "ingesting", |h| {
        observations(h) > 0
    })
    .await;
    let second = start(&args).await;
    wait_for(&second.base, Duration::from_secs(30), "standing by", |h| {
        h["sources"][0]["state"] == "standby"
    })
    .await;
    // The second process's browsers see what the first one stores (LISTEN/NOTIFY).
    let ws_url = format!("{}/ws", second.base.replace("http://", "ws://"));
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("a live update relayed from the ingesting process")
            .unwrap()
            .unwrap();
        if !msg.is_text() {
            continue;
        }
        let v: Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
        if v["type"] == "latest" && !v["items"].as_array().unwrap().is_empty() {
            assert_eq!(v["items"][0]["device"], "GFAgie01");
            break;
        }
    }
    // The first process dies in the middle; the second takes the agent over.
    let (_, health) = get_json(&format!("{}/healthz", first.base)).await;
    assert_ne!(health["sources"][0]["state"], "standby", "{health}");
    assert!(
        observations(&health) < TOTAL,
        "killed before the end: {health}"
    );
    drop(first);
    wait_for(&second.base, Duration::from_secs(120), "the rest", |h| {
        h["sources"][0]["nextSequence"].as_u64() == Some(TOTAL + 1)
            && h["sources"][0]["state"] != "standby"
    })
    .await;
    drop(second);
    db.assert_every_observation_once(TOTAL).await;
    drop(agent);
    db.drop().await;
}

// ---------------------------------------------------------------- agents that misbehave on purpose

/// The replay agent at a speed that reveals the whole recording at once, with `faults`
/// switched on, and a follower of it with `extra` options.
async fn hostile_pair(faults: &str, extra: &[&str]) -> (Running, Running) {
    let agent = replay_agent("100000").await;
    if !faults.is_empty() {
        fault(&agent, faults).await;
    }
    let (_, follower) = pair_with(&agent, extra).await;
    (agent, follower)
}

async fn pair_with(agent: &Running, extra: &[&str]) -> ((), Running) {
    let count = if extra.contains(&"--count") {
        vec![]
    } else {
        vec!["--count", "5000"]
    };
    let mut args = vec![
        "serve",
        "--agent",
        &agent.base,
        "--listen",
        "127.0.0.1:0",
        "--poll-interval",
        "100ms",
    ];
    args.extend(count);
    args.extend_from_slice(&["--interval", "100ms", "--heartbeat", "300ms"]);
    args.extend_from_slice(extra);
    ((), start(&args).await)
}

async fn samples(agent: &Running) -> u64 {
    fault(agent, "").await["samples"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn out_of_range_in_the_2_6_error_form_is_recovered_with_a_gap() {
    let agent = replay_agent("1500").await;
    fault(&agent, "error_form=2.6&slow_ms=1500").await;
    let (_, follower) = pair_with(&agent, &["--count", "1000", "--no-stream"]).await;
    wait_for(&follower.base, Duration::from_secs(30), "some data", |h| {
        observations(h) > 0
    })
    .await;
    // The follower lags (1.5 s an answer); the agent's buffer wraps past it.
    let wrapped = fault(&agent, "wrap=100").await;
    let floor = wrapped["firstSequence"].as_u64().unwrap();
    fault(&agent, "slow_ms=0").await;
    wait_for(&follower.base, Duration::from_secs(120), "the rest", |h| {
        h["sources"][0]["nextSequence"].as_u64() == Some(TOTAL + 1)
    })
    .await;
    let (_, gaps) = get_json(&format!("{}/api/gaps", follower.base)).await;
    let gaps = gaps.as_array().unwrap();
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert_eq!(gaps[0]["to"].as_u64(), Some(floor), "{gaps:?}");
    let lost_from = gaps[0]["from"].as_u64().unwrap();
    let (set, rows) = stored(&follower.base).await;
    assert_eq!(rows, set.len(), "no duplicates");
    let want: Vec<u64> = (1..lost_from).chain(floor..=TOTAL).collect();
    assert!(
        sequences(&set) == want,
        "everything but [{lost_from}, {floor})"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_count_above_the_agents_buffer_size_still_ingests() {
    // The agent announces bufferSize 1024 and refuses a larger count, as the reference
    // agent does; serve asks for 5000.
    let (_agent, follower) = hostile_pair("buffer_size=1024", &[]).await;
    all_once(&follower).await;
}

/// RSS of `follower` while `switch` is on (steady before, peak during, after it is off),
/// asserting the bound: steady + 2 × the 4 MiB limit.
async fn memory_stays_bounded(switch: &str) {
    const LIMIT: u64 = 4 << 20;
    let (agent, follower) = hostile_pair("", &["--max-document", "4MiB"]).await;
    all_once(&follower).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let steady = follower.rss();
    let samples_before = samples(&agent).await;
    fault(&agent, &format!("{switch}=true")).await;
    let started = std::time::Instant::now();
    let mut peak = 0;
    let mut said = None;
    while started.elapsed() < Duration::from_secs(8) {
        peak = peak.max(follower.rss());
        if said.is_none() {
            let (_, h) = get_json(&format!("{}/healthz", follower.base)).await;
            if let Some(e) = h["sources"][0]["lastError"].as_str() {
                if e.contains("document limit") {
                    said = Some(e.to_owned());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let said = said.unwrap_or_else(|| panic!("{switch}: the health never said the limit was hit"));
    if switch == "endless_part" {
        // Each attempt reads 4 MiB of a part that never ends: they back off (0.5, 1, 2,
        // 4 s…), although the polls between them succeed (about 8 requests in 8 s; 28 if
        // every attempt came 0.5 s after the last).
        let requests = samples(&agent).await - samples_before;
        assert!(requests <= 14, "{requests} /sample requests in 8 s");
    }
    assert!(said.contains("4 MiB"), "{said}");
    fault(&agent, &format!("{switch}=false")).await;
    // Back to following: the agent's next answers are ordinary.
    wait_for(
        &follower.base,
        Duration::from_secs(60),
        "following again",
        |h| {
            h["sources"][0]["lastError"].is_null()
                && matches!(
                    h["sources"][0]["state"].as_str(),
                    Some("streaming" | "polling")
                )
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = follower.rss();
    let mib = |b: u64| b as f64 / f64::from(1 << 20);
    eprintln!(
        "{switch}: RSS steady {:.1} MiB, peak {:.1} MiB, after {:.1} MiB ({} /sample requests)",
        mib(steady),
        mib(peak),
        mib(after),
        samples(&agent).await
    );
    assert!(
        peak <= steady + 2 * LIMIT,
        "{switch}: peak {:.1} MiB over steady {:.1} MiB + 2 × 4 MiB",
        mib(peak),
        mib(steady)
    );
    assert!(
        after <= steady + 2 * LIMIT,
        "{switch}: after {:.1} MiB, steady {:.1} MiB",
        mib(after),
        mib(steady)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_huge_body_is_refused_at_the_document_limit_in_bounded_memory() {
    memory_stays_bounded("huge_body").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endless_body_is_refused_at_the_document_limit_in_bounded_memory() {
    memory_stays_bounded("endless_body").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gzip_bomb_is_refused_at_the_document_limit_in_bounded_memory() {
    memory_stays_bounded("gzip_bomb").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endless_streamed_part_is_refused_at_the_document_limit_in_bounded_memory() {
    memory_stays_bounded("endless_part").await;
}

/// An agent whose sequences cannot be followed: backed off (few requests), its health
/// says why, nothing stored and no gap recorded.
async fn refused_and_backed_off(switch: &str, reason: &str) {
    let (agent, follower) = hostile_pair(&format!("{switch}=true"), &[]).await;
    let health = wait_for(&follower.base, Duration::from_secs(20), reason, |h| {
        h["sources"][0]["lastError"]
            .as_str()
            .is_some_and(|e| e.contains(reason))
    })
    .await;
    assert_eq!(health["sources"][0]["state"], "backing_off", "{health}");
    let before = samples(&agent).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let during = samples(&agent).await - before;
    eprintln!("{switch}: {during} /sample requests in 10 s");
    assert!(during <= 8, "{switch}: {during} requests in 10 s");
    let (_, health) = get_json(&format!("{}/healthz", follower.base)).await;
    assert_eq!(observations(&health), 0, "{health}");
    let (_, gaps) = get_json(&format!("{}/api/gaps", follower.base)).await;
    assert_eq!(gaps.as_array().unwrap().len(), 0, "no bogus gap: {gaps}");
    // Once the agent behaves, everything is read, once.
    fault(&agent, &format!("{switch}=false")).await;
    all_once(&follower).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stuck_agent_is_backed_off_and_the_health_says_why() {
    refused_and_backed_off("stuck", "nextSequence stays at").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn next_sequence_going_back_is_backed_off_and_the_health_says_why() {
    refused_and_backed_off("next_sequence_backwards", "nextSequence went back").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sequences_beyond_2_pow_63_are_refused_and_backed_off() {
    refused_and_backed_off("sequence_overflow", "beyond 2^63 - 1").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repeated_sequence_is_stored_once() {
    // Each page repeats its first observation with another timestamp, and points its
    // nextSequence back at its last one, which the next page sends again.
    let (_agent, follower) = hostile_pair("duplicate_sequence=true", &[]).await;
    all_once(&follower).await;
    let (_, health) = get_json(&format!("{}/healthz", follower.base)).await;
    assert_eq!(observations(&health), TOTAL, "{health}");
}

/// A private tmpfs mounted for one test, unmounted when dropped.
struct SmallDisk {
    dir: std::path::PathBuf,
}

impl SmallDisk {
    /// A tmpfs of `size` (e.g. `3m`) at a new directory, or `None` when this process may
    /// not mount (not root); then the test is skipped, unless `FACTORYDASH_REQUIRE_MOUNT`
    /// is set (as `.ci/run` sets it), which makes it fail.
    fn mount(test: &str, size: &str) -> Option<SmallDisk> {
        let dir = std::env::temp_dir().join(format!("factorydash-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            assert!(
                std::env::var_os("FACTORYDASH_REQUIRE_MOUNT").is_none(),
                "{test}: cannot mount a tmpfs, and FACTORYDASH_REQUIRE_MOUNT is set"
            );
            eprintln!("{test}: skipped, cannot mount a tmpfs (needs root)");
            let _ = std::fs::remove_dir(&dir);
            return None;
        }
        Some(SmallDisk { dir })
    }

    /// Gives the file system `size` in all.
    fn grow(&self, size: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.dir)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// The disk under the SQLite file fills up in the middle of ingest (a tmpfs of 3 MB; the
/// recording needs about 8): the page and `/healthz` say so, what was read waits in the
/// bounded queue, and once there is room again every observation is stored, once.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_under_the_sqlite_store_loses_nothing() {
    let Some(disk) = SmallDisk::mount("full_disk", "3m") else {
        return;
    };
    let agent = replay_agent("1500").await;
    let follower = buffered_follower_on(&agent, &["--data-dir", disk.dir.to_str().unwrap()]).await;
    let health = wait_for(
        &follower.base,
        Duration::from_secs(60),
        "the full disk shown",
        |h| h["sources"][0]["storeUnavailableSince"].is_string(),
    )
    .await;
    assert_eq!(health["status"], "degraded", "{health}");
    assert!(
        health.to_string().contains("full"),
        "the error says the disk is full: {health}"
    );
    let stored_then = observations(&health);
    assert!(stored_then > 0 && stored_then < TOTAL, "{health}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, health) = get_json(&format!("{}/healthz", follower.base)).await;
    assert!(
        health["sources"][0]["buffered"].as_u64().unwrap() <= 5 * 2000,
        "{health}"
    );
    let page = get_text(format!("{}/", follower.base)).await;
    assert!(page.contains("Cannot store what"), "the page says so");
    disk.grow("64m");
    wait_for(&follower.base, Duration::from_secs(120), "the end", |h| {
        h["sources"][0]["nextSequence"].as_u64() == Some(TOTAL + 1)
            && h["sources"][0]["storeUnavailableSince"].is_null()
            && observations(h) == TOTAL
    })
    .await;
    let (set, rows) = stored(&follower.base).await;
    assert_eq!(rows as u64, TOTAL, "rows read back");
    let sequences: Vec<u64> = set.iter().map(|(s, ..)| *s).collect();
    assert_eq!(sequences, (1..=TOTAL).collect::<Vec<_>>());
    drop(follower);
    drop(agent);
}

/// An agent that alternates between two `instanceId`s as `how` says (in time, or at every
/// request; both serving the same buffer, every observation sent with a new timestamp
/// each time), followed by `serve` with `store_args`, until both instances' observations
/// are stored: each (instanceId, sequence) once, each switch back followed on where that
/// instance was left, and no restart or gap left (the first sight of the second instance
/// looks like a restart until the first is answered again). Returns the follower and its
/// health once both instances are stored.
async fn follow_an_alternating_agent(how: &str, store_args: &[&str]) -> (Running, Running, Value) {
    let (agent, follower) = pair("2000", store_args).await;
    let state = fault(&agent, how).await;
    assert!(state["instanceId"].as_u64().is_some(), "{state}");
    let done = |h: &Value| observations(h) >= 2 * TOTAL;
    wait_for(
        &follower.base,
        Duration::from_secs(180),
        "both instances stored",
        done,
    )
    .await;
    // Switching goes on: nothing more is stored.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, health) = get_json(&format!("{}/healthz", follower.base)).await;
    assert_eq!(observations(&health), 2 * TOTAL, "{health}");
    let source = &health["sources"][0];
    assert!(source["instanceSwitches"].as_u64().unwrap() > 0, "{source}");
    assert_eq!(source["restarts"].as_u64(), Some(0), "{source}");
    assert_eq!(source["gaps"].as_u64(), Some(0), "{source}");
    let (_, gaps) = get_json(&format!("{}/api/gaps", follower.base)).await;
    assert_eq!(gaps, serde_json::json!([]), "no gap is left");
    (agent, follower, health)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_alternating_instances_is_stored_once_on_sqlite() {
    use factorydash_store::{sqlite::SqliteStore, Store};

    let dir = std::env::temp_dir().join(format!("factorydash-flip-{}", rand::random::<u32>()));
    let (agent, follower, _) = follow_an_alternating_agent(
        "alternate_instance_ms=300",
        &["--data-dir", dir.to_str().unwrap()],
    )
    .await;
    let status = follower.terminate(Duration::from_secs(12)).await;
    assert!(status.success(), "exit status {status}");
    // Started again: both instances are known from the store, so whichever the agent
    // answers with is followed on from where it was left: no restart, nothing more.
    let again = start(&[
        "serve",
        "--agent",
        &agent.base,
        "--data-dir",
        dir.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--poll-interval",
        "100ms",
    ])
    .await;
    let health = wait_for(&again.base, Duration::from_secs(30), "switches", |h| {
        h["sources"][0]["instanceSwitches"].as_u64() >= Some(3)
    })
    .await;
    // (The health counts what this process stored: nothing.)
    assert_eq!(observations(&health), 0, "{health}");
    assert_eq!(
        health["sources"][0]["restarts"].as_u64(),
        Some(0),
        "{health}"
    );
    assert_eq!(health["sources"][0]["gaps"].as_u64(), Some(0), "{health}");
    let status = again.terminate(Duration::from_secs(12)).await;
    assert!(status.success(), "exit status {status}");
    drop(agent);
    let store = SqliteStore::open(&dir.join("factorydash.db"))
        .await
        .unwrap();
    assert_eq!(store.observation_count().await.unwrap(), 2 * TOTAL);
    assert_eq!(store.gaps().await.unwrap(), vec![]);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_alternating_instances_is_stored_once_on_postgres() {
    let Some(server) = crate::support::postgres_url("alternating") else {
        return;
    };
    let db = FreshDb::create(&server, "alternating").await;
    let (agent, follower, _) = follow_an_alternating_agent(
        "alternate_instance_per_request=true",
        &["--database-url", &db.url],
    )
    .await;
    drop(follower);
    drop(agent);
    let client = db.connect().await;
    let row = client
        .query_one(
            "SELECT count(*), count(DISTINCT (instance_id, sequence)), count(DISTINCT instance_id)
             FROM observations",
            &[],
        )
        .await
        .unwrap();
    let (rows, distinct, instances): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(
        (rows, distinct, instances),
        (2 * TOTAL as i64, 2 * TOTAL as i64, 2)
    );
    let gaps: i64 = client
        .query_one("SELECT count(*) FROM gaps", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(gaps, 0, "gaps");
    drop(client);
    db.drop().await;
}

/// Two agents behind a round-robin balancer: the instance alternates at every request, so
/// an answer is seldom the instance asked for. Each is stored once, without a gap, and
/// the follower does not stall.
#[tokio::test(flavor = "multi_thread")]
async fn an_agent_alternating_at_every_request_is_stored_once_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("factorydash-rr-{}", rand::random::<u32>()));
    let (agent, follower, health) = follow_an_alternating_agent(
        "alternate_instance_per_request=true",
        &["--data-dir", dir.to_str().unwrap()],
    )
    .await;
    assert!(
        health["sources"][0]["lastError"].is_null(),
        "no sequence error: {health}"
    );
    drop(follower);
    drop(agent);
    let _ = std::fs::remove_dir_all(&dir);
}
