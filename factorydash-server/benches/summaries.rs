//! Window summaries at scale: ten viewers at once ask `factorydash serve` (PostgreSQL) for
//! the utilization and the alarms of one day holding N rows of one data item (default
//! 10,000,000 Execution observations, a state every 10 ms, and N/10 Condition
//! observations). Prints the answers' latency and `serve`'s resident memory (steady, peak
//! while answering) beside a baseline run in the same process: the old way, loading the
//! window's rows (at most a million, as the old handler did) and computing the intervals
//! in memory.
//!
//! Run with: `cargo bench -p factorydash-server --bench summaries [-- ROWS]`
//! (PostgreSQL from `FACTORYDASH_TEST_DATABASE_URL`; skipped without it).
//! Target (issue 12): 10 concurrent requests over 10 M rows keep `serve` under 200 MB.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::start;
use factorydash_core::{states, TimeWindow, Value};

mod common;

fn rss_of(pid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap()
        * 1024
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rows: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let Ok(url) = std::env::var("FACTORYDASH_TEST_DATABASE_URL") else {
        println!("summaries: skipped (set FACTORYDASH_TEST_DATABASE_URL)");
        return;
    };
    let (admin, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let name = format!("fdbench_summaries_{}", std::process::id());
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let mut db_url = reqwest::Url::parse(&url).unwrap();
    db_url.set_path(&name);
    let db_url = db_url.to_string();

    // The device model (and a little real data) from the bundled NIST recording.
    let (agent_process, agent) = common::nist_replay_agent().await;
    let (serve_process, base) = start(&[
        "serve",
        "--agent",
        &agent,
        "--database-url",
        &db_url,
        "--listen",
        "127.0.0.1:0",
    ])
    .await;
    let pid = serve_process.id().unwrap().to_string();
    loop {
        let health: serde_json::Value = reqwest::get(format!("{base}/healthz"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if health["observations"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(agent_process);

    let (client, conn) = tokio_postgres::connect(&db_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let loading = Instant::now();
    client
        .batch_execute("SELECT factorydash_observation_partition('2030-01-01')")
        .await
        .unwrap();
    let step_ms = 86_400_000 / rows.max(1);
    let chunk = 1_000_000;
    let mut from = 0;
    while from < rows {
        let to = (from + chunk).min(rows);
        client
            .execute(
                "INSERT INTO observations (agent_id, instance_id, sequence, ts, device, component_id,
                     data_item_id, name, category, kind, value)
                 SELECT 1, 7, 1000000000 + i, '2030-01-01'::timestamptz + i * $3::float8 * interval '1 ms',
                     'GFAgie01', 'GFAgie01-path', 'GFAgie01-path_basic_2', 'execution', 'EVENT',
                     'Execution', (ARRAY['ACTIVE', 'READY', 'STOPPED', 'ACTIVE'])[1 + i % 4]
                 FROM generate_series($1::bigint, $2::bigint - 1) AS i",
                &[&(from as i64), &(to as i64), &(step_ms as f64)],
            )
            .await
            .unwrap();
        client
            .execute(
                "INSERT INTO observations (agent_id, instance_id, sequence, ts, device, component_id,
                     data_item_id, name, category, kind, value, level, native_code)
                 SELECT 1, 7, 3000000000 + i, '2030-01-01'::timestamptz + i * $3::float8 * interval '1 ms',
                     'GFAgie01', 'GFAgie01', 'GFAgie01-system', 'system', 'CONDITION', 'SYSTEM',
                     'overheat', CASE WHEN i % 20 = 0 THEN 'Fault' ELSE 'Normal' END,
                     CASE WHEN i % 20 = 0 THEN 'E' || (i % 7) ELSE NULL END
                 FROM generate_series($1::bigint, $2::bigint - 1, 10) AS i",
                &[&(from as i64), &(to as i64), &(step_ms as f64)],
            )
            .await
            .unwrap();
        from = to;
    }
    client.batch_execute("ANALYZE observations").await.unwrap();
    println!(
        "Window summaries over {rows} Execution rows and {} Condition rows of one day \
         (loaded in {:.0} s)",
        rows / 10,
        loading.elapsed().as_secs_f64()
    );

    let window = "from=2030-01-01T00:00:00Z&to=2030-01-02T00:00:00Z";
    tokio::time::sleep(Duration::from_secs(1)).await;
    let steady = rss_of(&pid);
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (pid, done) = (pid.clone(), done.clone());
        tokio::spawn(async move {
            let mut peak = 0;
            while !done.load(Ordering::SeqCst) {
                peak = peak.max(rss_of(&pid));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            peak
        })
    };
    let started = Instant::now();
    let mut asked = Vec::new();
    for i in 0..10 {
        let url = if i % 2 == 0 {
            format!("{base}/api/utilization?device=GFAgie01&{window}")
        } else {
            format!("{base}/api/alarms?device=GFAgie01&{window}")
        };
        asked.push(tokio::spawn(async move {
            let t = Instant::now();
            let r = reqwest::get(url).await.unwrap();
            assert!(r.status().is_success(), "{}", r.status());
            let body: serde_json::Value = r.json().await.unwrap();
            (t.elapsed().as_secs_f64(), body)
        }));
    }
    let mut seconds = Vec::new();
    let mut active_share = None;
    for a in asked {
        let (s, body) = a.await.unwrap();
        seconds.push(s);
        if let Some(shares) = body["shares"].as_array() {
            active_share = shares
                .iter()
                .find(|s| s["state"] == "ACTIVE")
                .and_then(|s| s["share"].as_f64());
        }
    }
    let all = started.elapsed().as_secs_f64();
    done.store(true, Ordering::SeqCst);
    let peak = sampler.await.unwrap();
    seconds.sort_by(f64::total_cmp);
    let after = rss_of(&pid);

    // The baseline: the old handler's way, in this process: the window's rows (at most a
    // million) read into memory, then the intervals computed from them.
    let before_baseline = rss_of("self");
    let t = Instant::now();
    let loaded = client
        .query(
            "SELECT ts, value FROM observations
             WHERE device = 'GFAgie01' AND data_item_id = 'GFAgie01-path_basic_2'
               AND ts >= '2030-01-01' AND ts < '2030-01-02'
             ORDER BY ts, sequence LIMIT 1000000",
            &[],
        )
        .await
        .unwrap();
    let points: Vec<(DateTime<Utc>, Value)> = loaded
        .iter()
        .map(|r| {
            let v: Option<String> = r.get(1);
            (r.get(0), v.map_or(Value::Unavailable, Value::Text))
        })
        .collect();
    let window_2030 = TimeWindow::new(
        "2030-01-01T00:00:00Z".parse().unwrap(),
        "2030-01-02T00:00:00Z".parse().unwrap(),
    )
    .unwrap();
    let intervals = states::intervals(None, &points, &window_2030);
    let baseline_peak = rss_of("self");
    let baseline_seconds = t.elapsed().as_secs_f64();
    let baseline_rows = points.len();
    drop((loaded, points, intervals));

    println!("  ten requests at once (5 utilization, 5 alarms), PostgreSQL store:");
    println!(
        "    latency p50 {:.2} s, max {:.2} s; all ten in {all:.2} s; share ACTIVE {:.3}",
        seconds[seconds.len() / 2],
        seconds[seconds.len() - 1],
        active_share.unwrap_or(f64::NAN)
    );
    println!(
        "    serve RSS: steady {:.0} MB, peak {:.0} MB (+{:.0} MB), after {:.0} MB; target < 200 MB: {}",
        mb(steady),
        mb(peak),
        mb(peak.saturating_sub(steady)),
        mb(after),
        if peak < 200 << 20 { "met" } else { "NOT met" }
    );
    println!(
        "  baseline, one request the old way (rows into memory, capped at 1,000,000; {baseline_rows} read): \
         {baseline_seconds:.2} s, +{:.0} MB",
        mb(baseline_peak.saturating_sub(before_baseline))
    );
    println!(
        "  ratio of memory grown, baseline (one request) / ours (ten): {:.1}x",
        mb(baseline_peak.saturating_sub(before_baseline))
            / mb(peak.saturating_sub(steady)).max(1.0)
    );
    drop(serve_process);
    admin
        .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .await
        .unwrap();
}
