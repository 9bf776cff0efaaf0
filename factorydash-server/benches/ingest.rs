//! End-to-end ingest rate: a replay agent serving the bundled NIST recording (112,762
//! observations, all revealed at once) followed over HTTP on 127.0.0.1 by `factorydash serve`,
//! into the in-memory store and into PostgreSQL, side by side.
//!
//! Run with: `cargo bench -p factorydash-server --bench ingest`
//! (PostgreSQL from `FACTORYDASH_TEST_DATABASE_URL`; skipped without it).

use std::time::{Duration, Instant};

use common::start;

mod common;

const TOTAL: u64 = 112_762;

async fn observations(base: &str) -> u64 {
    let health: serde_json::Value = reqwest::get(format!("{base}/healthz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    health["observations"].as_u64().unwrap_or(0)
}

/// Seconds from start until every observation is stored.
async fn run(agent: &str, extra: &[&str]) -> f64 {
    let mut args = vec![
        "serve",
        "--agent",
        agent,
        "--listen",
        "127.0.0.1:0",
        "--count",
        "10000",
        "--poll-interval",
        "50ms",
    ];
    args.extend_from_slice(extra);
    let started = Instant::now();
    let (_child, base) = start(&args).await;
    while observations(&base).await < TOTAL {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "ingest did not finish"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    // `cargo bench -- --list` and the like: nothing to list.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let (_agent, agent) = common::nist_replay_agent().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    println!("End-to-end ingest of {TOTAL} NIST observations over HTTP (best of 3):");
    let mut best = f64::MAX;
    for _ in 0..3 {
        best = best.min(run(&agent, &[]).await);
    }
    println!(
        "  memory store:     {:>9.0} observations/s ({best:.2} s)",
        TOTAL as f64 / best
    );
    let Ok(url) = std::env::var("FACTORYDASH_TEST_DATABASE_URL") else {
        println!("  postgresql store: skipped (set FACTORYDASH_TEST_DATABASE_URL)");
        return;
    };
    let (admin, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut best_pg = f64::MAX;
    for i in 0..3 {
        let name = format!("fdbench_{}_{i}", std::process::id());
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let mut db = reqwest::Url::parse(&url).unwrap();
        db.set_path(&name);
        best_pg = best_pg.min(run(&agent, &["--database-url", db.as_str()]).await);
        admin
            .batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .await
            .unwrap();
    }
    println!(
        "  postgresql store: {:>9.0} observations/s ({best_pg:.2} s)",
        TOTAL as f64 / best_pg
    );
    println!("  ratio memory/postgresql: {:.1}x", best_pg / best);
}
