//! `factorydash serve` tried as a careless operator and a hostile viewer would: a stop in
//! the middle of ingest, summaries over windows of a million rows, a health probe called
//! in a loop. Real processes over HTTP on 127.0.0.1, a real PostgreSQL, memory read from
//! `/proc`.

use std::time::Duration;

use futures_util::StreamExt;

use crate::support::{
    assert_every_observation_once, get_json, postgres_url, replay_agent, start, wait_for, FreshDb,
    Running,
};

/// Observations in the bundled NIST recording.
const TOTAL: u64 = 112_762;

fn observations(health: &serde_json::Value) -> u64 {
    health["sources"][0]["observations"].as_u64().unwrap_or(0)
}

fn buffered(health: &serde_json::Value) -> u64 {
    health["sources"][0]["buffered"].as_u64().unwrap_or(0)
}

async fn serve_on(agent: &Running, db: &FreshDb) -> Running {
    start(&[
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
    ])
    .await
}

/// SIGTERM in the middle of ingest, while the database holds back what was read: the
/// process stops reading, stores what waits in its queue once the database lets it, closes
/// its WebSocket clients with a close frame and exits 0 within `--shutdown-timeout`. Started
/// again, it continues from where it stopped: every observation exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stores_what_was_read_closes_websockets_and_exits_0() {
    let Some(server) = postgres_url("sigterm") else {
        return;
    };
    let db = FreshDb::create(&server, "sigterm").await;
    let agent = replay_agent("1000").await;
    let first = serve_on(&agent, &db).await;
    wait_for(&first.base, Duration::from_secs(60), "some data", |h| {
        observations(h) > 10_000
    })
    .await;
    // Hold appends back: the agent's row stays locked, so what is read waits in the queue.
    let blocker = db.connect().await;
    blocker
        .batch_execute("BEGIN; LOCK TABLE agents IN EXCLUSIVE MODE")
        .await
        .unwrap();
    let held = wait_for(&first.base, Duration::from_secs(30), "a queue", |h| {
        buffered(h) >= 2_000
    })
    .await;
    let read = observations(&held) + buffered(&held);
    let ws_url = format!("{}/ws", first.base.replace("http://", "ws://"));
    let (mut socket, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
    // Released a second after the signal: the stop must wait for the store, not drop.
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        blocker.batch_execute("COMMIT").await.unwrap();
    });
    let status = first.terminate(Duration::from_secs(12)).await;
    assert!(status.success(), "exit status {status}");
    release.await.unwrap();
    let mut closed = None;
    while let Some(Ok(m)) = socket.next().await {
        if let tokio_tungstenite::tungstenite::Message::Close(frame) = m {
            closed = Some(frame.map(|f| u16::from(f.code)));
            break;
        }
    }
    assert_eq!(closed, Some(Some(1001)), "a close frame, 'going away'");
    let client = db.connect().await;
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM observations), (SELECT next_sequence FROM agents)",
            &[],
        )
        .await
        .unwrap();
    let (stored, next): (i64, i64) = (row.get(0), row.get(1));
    assert!(
        stored as u64 >= read,
        "everything read before SIGTERM is stored: {stored} of {read}"
    );
    assert_eq!(next, stored + 1, "the resume point is past what is stored");
    // Started again: on from the resume point to the end, nothing twice.
    let second = serve_on(&agent, &db).await;
    wait_for(&second.base, Duration::from_secs(120), "the end", |h| {
        h["sources"][0]["nextSequence"].as_u64() == Some(TOTAL + 1) && buffered(h) == 0
    })
    .await;
    let status = second.terminate(Duration::from_secs(12)).await;
    assert!(status.success(), "exit status {status}");
    assert_every_observation_once(&db.url, TOTAL).await;
    drop(agent);
    db.drop().await;
}

/// Index and sequential scans of `observations` (all partitions) so far.
async fn observation_scans(client: &tokio_postgres::Client) -> i64 {
    client
        .query_one(
            "SELECT coalesce(sum(coalesce(seq_scan, 0) + coalesce(idx_scan, 0)), 0)::bigint
             FROM pg_stat_user_tables WHERE relname LIKE 'observations%'",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// `/healthz`, open to anyone and polled by load balancers, never reads the observations
/// (it used to count them: linear in the table), whatever it is asked.
#[tokio::test(flavor = "multi_thread")]
async fn healthz_costs_a_ping_not_a_count() {
    let Some(server) = postgres_url("healthz") else {
        return;
    };
    let db = FreshDb::create(&server, "healthz").await;
    let agent = replay_agent("1000").await;
    let serve = serve_on(&agent, &db).await;
    let done = wait_for(&serve.base, Duration::from_secs(120), "the end", |h| {
        h["sources"][0]["nextSequence"].as_u64() == Some(TOTAL + 1) && buffered(h) == 0
    })
    .await;
    assert_eq!(done["status"], "ok");
    assert_eq!(done["observations"].as_u64(), Some(TOTAL));
    drop(agent); // nothing more is ingested
    let client = db.connect().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = observation_scans(&client).await;
    for _ in 0..20 {
        let (status, health) = get_json(&format!("{}/healthz", serve.base)).await;
        assert_eq!(status, 200);
        assert_eq!(health["status"], "ok");
    }
    // Statistics reach the view within PostgreSQL's stats flush (about a second).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = observation_scans(&client).await;
    assert_eq!(after, before, "/healthz scanned observations");
    drop(serve);
    db.drop().await;
}

/// Ten viewers ask at once for the utilization and the alarms of a window of a million
/// rows of one data item: `serve`'s memory stays flat (the store computes the summary),
/// every answer is complete, and intervals come a page at a time.
#[tokio::test(flavor = "multi_thread")]
async fn summaries_of_a_million_rows_cost_no_memory() {
    let Some(server) = postgres_url("summaries") else {
        return;
    };
    let db = FreshDb::create(&server, "summaries").await;
    let agent = replay_agent("1000").await;
    let serve = serve_on(&agent, &db).await;
    wait_for(
        &serve.base,
        Duration::from_secs(120),
        "the device model",
        |h| observations(h) > 0,
    )
    .await;
    // A million Execution observations of GFAgie01 on a day in 2030, a state every 50 ms
    // (ACTIVE, READY, STOPPED in turn: 13 h 53 min 20 s), and 200,000 Condition
    // observations beside them (100,000 Faults, each cleared).
    let client = db.connect().await;
    client
        .batch_execute(
            "SELECT factorydash_observation_partition('2030-01-01');
             INSERT INTO observations (agent_id, instance_id, sequence, ts, device, component_id,
                 data_item_id, name, category, kind, value)
             SELECT 1, 7, 1000000000 + i, '2030-01-01'::timestamptz + i * interval '50 ms',
                 'GFAgie01', 'GFAgie01-path', 'GFAgie01-path_basic_2', 'execution', 'EVENT',
                 'Execution', (ARRAY['ACTIVE', 'READY', 'STOPPED'])[1 + i % 3]
             FROM generate_series(0, 999999) AS i;
             INSERT INTO observations (agent_id, instance_id, sequence, ts, device, component_id,
                 data_item_id, name, category, kind, value, level, native_code)
             SELECT 1, 7, 2000000000 + i, '2030-01-01'::timestamptz + i * interval '250 ms',
                 'GFAgie01', 'GFAgie01', 'GFAgie01-system', 'system', 'CONDITION',
                 'SYSTEM', 'overheat', CASE WHEN i % 2 = 0 THEN 'Fault' ELSE 'Normal' END,
                 CASE WHEN i % 2 = 0 THEN 'E' || (i % 7) ELSE NULL END
             FROM generate_series(0, 199999) AS i;
             ANALYZE observations;",
        )
        .await
        .unwrap();
    let window = "from=2030-01-01T00:00:00Z&to=2030-01-01T13:53:20Z";
    let steady = serve.rss();
    let base = serve.base.clone();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let pid = serve.pid();
        let done = done.clone();
        tokio::spawn(async move {
            let mut peak = 0u64;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                peak = peak.max(crate::support::rss_of(pid));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            peak
        })
    };
    let mut asked = Vec::new();
    for i in 0..10 {
        let url = if i % 2 == 0 {
            format!("{base}/api/utilization?device=GFAgie01&{window}")
        } else {
            format!("{base}/api/alarms?device=GFAgie01&{window}")
        };
        asked.push(tokio::spawn(async move { get_json(&url).await }));
    }
    for (i, answer) in asked.into_iter().enumerate() {
        let (status, body) = answer.await.unwrap();
        assert_eq!(status, 200, "{body}");
        if i % 2 == 0 {
            let shares = body["shares"].as_array().unwrap();
            assert_eq!(shares.len(), 3, "{shares:?}");
            for s in shares {
                assert!(
                    (s["share"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-3,
                    "{s}"
                );
            }
            assert_eq!(body["intervals"].as_array().unwrap().len(), 1000);
            assert!(body["next"].is_string());
        } else {
            // 100,000 Faults, each cleared: the newest 1,000 kept, the rest counted (and
            // whatever the recording left active before the window).
            let ended = body["episodes"].as_array().unwrap().len() as u64
                - body["active"].as_u64().unwrap();
            assert_eq!(ended, 1000, "{}", body["active"]);
            assert_eq!(body["omitted"].as_u64(), Some(99_000));
        }
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let peak = sampler.await.unwrap();
    let grown = peak.saturating_sub(steady);
    assert!(
        grown < 100 << 20,
        "serve grew by {} MB answering (from {} MB)",
        grown >> 20,
        steady >> 20
    );
    // The second page of intervals follows the first.
    let (_, first) = get_json(&format!(
        "{base}/api/utilization?device=GFAgie01&{window}&limit=2"
    ))
    .await;
    let (_, second) = get_json(&format!(
        "{base}/api/utilization?device=GFAgie01&{window}&limit=2&cursor={}",
        first["next"].as_str().unwrap()
    ))
    .await;
    assert_eq!(
        second["intervals"][0]["from"], "2030-01-01T00:00:00.100Z",
        "{first} {second}"
    );
    // Only states can be asked for.
    let (status, body) = get_json(&format!(
        "{base}/api/utilization?device=GFAgie01&type=PROGRAM&{window}"
    ))
    .await;
    assert_eq!(status, 400, "{body}");
    drop(serve);
    drop(agent);
    db.drop().await;
}

/// An agent that sends sequences again with other timestamps (in a later page and twice in
/// one page) into PostgreSQL, whose key holds the timestamp (a partitioned table's key must
/// hold its partition key): each (agent, instanceId, sequence) is stored once all the same.
/// Before, this stored 603,220 rows for 879 sequences in 70 s.
#[tokio::test(flavor = "multi_thread")]
async fn a_repeating_agent_is_stored_once_in_postgresql() {
    let Some(server) = postgres_url("repeating") else {
        return;
    };
    let db = FreshDb::create(&server, "repeating").await;
    let agent = replay_agent("100000").await;
    let status = reqwest::Client::new()
        .post(format!(
            "{}/_factorydash/faults?duplicate_sequence=true",
            agent.base
        ))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    let serve = serve_on(&agent, &db).await;
    wait_for(&serve.base, Duration::from_secs(120), "the end", |h| {
        h["sources"][0]["nextSequence"].as_u64() == Some(TOTAL + 1) && buffered(h) == 0
    })
    .await;
    assert_every_observation_once(&db.url, TOTAL).await;
    let (_, health) = get_json(&format!("{}/healthz", serve.base)).await;
    assert_eq!(observations(&health), TOTAL, "{health}");
    drop(serve);
    drop(agent);
    db.drop().await;
}

/// `inspect` of an endless file (`/dev/zero`) and of a gzip bomb ends at once with an error
/// that names the limit, instead of growing until the kernel kills it.
#[tokio::test]
async fn inspect_refuses_what_passes_the_document_limit() {
    let dir = std::env::temp_dir().join(format!("fd-inspect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bomb = dir.join("bomb.xml.gz");
    {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&bomb).unwrap(),
            flate2::Compression::best(),
        );
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..64 {
            gz.write_all(&zeros).unwrap();
        }
        gz.finish().unwrap();
    }
    for file in [std::path::Path::new("/dev/zero"), bomb.as_path()] {
        let started = std::time::Instant::now();
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_factorydash"))
            .args(["inspect", file.to_str().unwrap(), "--max-document", "4MiB"])
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{}: {stderr}", file.display());
        assert!(
            stderr.contains("larger than the document limit of 4194304 bytes"),
            "{}: {stderr}",
            file.display()
        );
        assert!(started.elapsed() < Duration::from_secs(20));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `record --duration` ends on time while the agent cannot be reached (it used to retry
/// the probe forever), and says that nothing was recorded.
#[tokio::test]
async fn record_holds_its_duration_while_the_agent_is_unreachable() {
    let dir = std::env::temp_dir().join(format!("fd-record-{}", std::process::id()));
    // A port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = std::time::Instant::now();
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_factorydash"))
            .args([
                "record",
                &format!("http://127.0.0.1:{port}"),
                "--out",
                dir.to_str().unwrap(),
                "--duration",
                "2s",
            ])
            .output(),
    )
    .await
    .expect("record ends")
    .unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(!out.status.success());
    assert!(stderr.contains("nothing recorded"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
