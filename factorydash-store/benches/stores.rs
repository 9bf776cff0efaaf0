//! The three stores side by side on the same NIST-shaped observations: memory, SQLite and
//! PostgreSQL.
//!
//! - ingest, observations/s: [`Store::append`] in batches of 10,000 (what one
//!   `/sample?count=10000` page brings), duplicates checked, latest values and resume
//!   point in the same transaction;
//! - size: bytes per observation, indexes included (SQLite: page count × page size after
//!   a checkpoint; PostgreSQL: `pg_total_relation_size` of the observation partitions;
//!   memory: resident memory added, from /proc/self/statm);
//! - latest-values page, p95 of 200 reads, page 1 and page 500 (pages of 5, over a shop of
//!   2,500 data items stored beside the NIST ones);
//! - one day of a 10 Hz series (864,000 observations) summarised as 500 M4 buckets (at most
//!   2,000 points), [`Store::buckets`];
//! - resident memory while the store fills: this process's RSS after `ROWS` more
//!   observations are streamed in (made batch by batch, nothing kept between batches), and
//!   after `2 × ROWS`, over the RSS before: a store that keeps its rows on disk stays flat
//!   (ratio ≈ 1), one that keeps them in memory doubles.
//!
//! Run with: `cargo bench -p factorydash-store --bench stores [-- ROWS]` (default
//! 1,000,000; e.g. `-- 10_000_000`). PostgreSQL from `FACTORYDASH_TEST_DATABASE_URL`, in a
//! database of its own dropped afterwards (left out when unset); SQLite in a temporary
//! directory.
//!
//! The observations are the real NIST GFAgie01 recording (112,762 observations, 25 data
//! items) played again and again, each round continuing the sequence numbers one day
//! later.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use factorydash_core::{Batch, Category, Observation, PageRequest, TimeWindow, Value};
use factorydash_mtconnect::{parse_streams, recording::read_maybe_gzipped};
use factorydash_store::postgres::PgStore;
use factorydash_store::sqlite::SqliteStore;
use factorydash_store::{LatestFilter, MemoryStore, Store};

const BATCH: usize = 10_000;

fn nist() -> Vec<Observation> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../recordings/nist-gfagie01-2016-05-02");
    let mut out = Vec::new();
    for page in 1..=12 {
        let bytes = read_maybe_gzipped(&dir.join(format!("qdr_input{page:03}.xml.gz"))).unwrap();
        out.extend(parse_streams(&bytes).unwrap().value.to_observations());
    }
    out.sort_by_key(|o| o.sequence);
    out
}

/// `rows` observations: the recording played round after round, one day apart.
fn observations(base: &[Observation], rows: usize) -> Vec<Observation> {
    let span = base.last().unwrap().sequence;
    (0..rows)
        .map(|i| {
            let round = i / base.len();
            let mut o = base[i % base.len()].clone();
            o.sequence += round as u64 * span;
            o.timestamp += chrono::Duration::days(round as i64);
            o
        })
        .collect()
}

/// A shop of 100 machines × 25 data items, four observations each.
fn shop() -> Vec<Observation> {
    (0..10_000u64)
        .map(|seq| {
            let i = (seq as usize) % 2_500;
            let (machine, item) = (i / 25, i % 25);
            let device = format!("M{machine:03}");
            Observation {
                sequence: seq,
                timestamp: Utc.timestamp_opt(1_475_000_000 + seq as i64, 0).unwrap(),
                component_id: format!("{device}-c{}", item / 5),
                data_item_id: format!("{device}-d{item:02}"),
                name: Some(format!("d{item:02}")),
                device,
                category: Category::Sample,
                kind: "Position".into(),
                sub_type: Some("ACTUAL".into()),
                value: Value::Text(format!("{:.4}", (seq as f64 * 0.37).sin() * 100.0)),
                condition: None,
            }
        })
        .collect()
}

fn ten_hz_day() -> (Vec<Observation>, TimeWindow) {
    let day = Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).unwrap();
    let series = (0..864_000usize)
        .map(|i| Observation {
            sequence: 1 + i as u64,
            timestamp: day + chrono::Duration::milliseconds(100 * i as i64),
            device: "Hurco01".into(),
            component_id: "x1".into(),
            data_item_id: "Hurco01-Xpos".into(),
            name: Some("Xact".into()),
            category: Category::Sample,
            kind: "POSITION".into(),
            sub_type: Some("ACTUAL".into()),
            value: Value::Text(format!("{:.4}", (i as f64 / 600.0).sin() * 250.0)),
            condition: None,
        })
        .collect();
    (
        series,
        TimeWindow::new(day, day + chrono::Duration::days(1)).unwrap(),
    )
}

async fn ingest(store: &dyn Store, agent: &str, obs: &[Observation]) -> Duration {
    let started = Instant::now();
    for chunk in obs.chunks(BATCH) {
        let batch = Batch {
            agent: agent.into(),
            instance_id: 1,
            next_sequence: chunk.last().unwrap().sequence + 1,
            observations: chunk.to_vec(),
        };
        store.append(&batch).await.unwrap();
    }
    started.elapsed()
}

fn p95_ms(mut d: Vec<Duration>) -> f64 {
    d.sort();
    d[(d.len() * 95 / 100).min(d.len() - 1)].as_secs_f64() * 1e3
}

/// p95 of page 1 and of page 500 (pages of 5).
async fn latest_p95(store: &dyn Store) -> (f64, f64) {
    let filter = LatestFilter::default();
    let mut request = PageRequest::first(5);
    for _ in 1..500 {
        let page = store.latest(&filter, &request).await.unwrap();
        request.after = page.next;
    }
    assert!(request.after.is_some(), "page 500 exists");
    let mut out = [0.0; 2];
    for (i, request) in [PageRequest::first(5), request].iter().enumerate() {
        let mut times = Vec::new();
        for _ in 0..200 {
            let t = Instant::now();
            let page = store.latest(&filter, request).await.unwrap();
            times.push(t.elapsed());
            assert_eq!(page.items.len(), 5);
        }
        out[i] = p95_ms(times);
    }
    (out[0], out[1])
}

/// This process's RSS added after `obs.len()` and `2 × obs.len()` more observations are
/// streamed into `store` (another agent, the same shapes, made a batch at a time).
async fn rss_while_filling(store: &dyn Store, obs: &[Observation]) -> (u64, u64) {
    let before = resident_bytes();
    let mut at = [0u64; 2];
    let mut sequence = 0u64;
    for slot in &mut at {
        for chunk in obs.chunks(BATCH) {
            let observations: Vec<Observation> = chunk
                .iter()
                .map(|o| {
                    sequence += 1;
                    Observation {
                        sequence,
                        ..o.clone()
                    }
                })
                .collect();
            let batch = Batch {
                agent: "http://stream".into(),
                instance_id: 1,
                next_sequence: sequence + 1,
                observations,
            };
            store.append(&batch).await.unwrap();
        }
        *slot = resident_bytes().saturating_sub(before);
    }
    (at[0], at[1])
}

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

struct Measured {
    store: &'static str,
    /// RSS added (bytes) after `rows` and `2 × rows` more observations streamed in.
    rss_growth: (u64, u64),
    ingest_per_s: f64,
    bytes_each: f64,
    page1_p95_ms: f64,
    page500_p95_ms: f64,
    buckets_ms: f64,
}

/// Everything measured on one store; `size` tells its bytes once the NIST rows are in.
async fn measure(
    name: &'static str,
    store: &dyn Store,
    obs: &[Observation],
    size: impl AsyncFnOnce() -> u64,
) -> Measured {
    let t = ingest(store, "http://nist", obs).await;
    assert_eq!(store.observation_count().await.unwrap(), obs.len() as u64);
    let bytes = size().await;
    ingest(store, "http://shop", &shop()).await;
    let (page1, page500) = latest_p95(store).await;
    let (day, window) = ten_hz_day();
    ingest(store, "http://hurco", &day).await;
    let t_buckets = Instant::now();
    let buckets = store
        .buckets(
            &factorydash_core::DeviceKey::new("http://hurco", "Hurco01"),
            "Hurco01-Xpos",
            &window,
            500,
        )
        .await
        .unwrap();
    let buckets_time = t_buckets.elapsed();
    assert_eq!(buckets.iter().map(|b| b.count).sum::<usize>(), day.len());
    drop(day);
    let rss_growth = rss_while_filling(store, obs).await;
    let m = Measured {
        store: name,
        rss_growth,
        ingest_per_s: obs.len() as f64 / t.as_secs_f64(),
        bytes_each: bytes as f64 / obs.len() as f64,
        page1_p95_ms: page1,
        page500_p95_ms: page500,
        buckets_ms: buckets_time.as_secs_f64() * 1e3,
    };
    eprintln!("{name}: done");
    m
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rows: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.replace('_', "").parse().ok())
        .unwrap_or(1_000_000);
    let obs = observations(&nist(), rows);
    let mut table = Vec::new();

    {
        let store = MemoryStore::new();
        let before = resident_bytes();
        table.push(
            measure("memory", &store, &obs, async || {
                resident_bytes().saturating_sub(before)
            })
            .await,
        );
    }

    let dir = std::env::temp_dir().join(format!("fdbench-stores-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    {
        let store = SqliteStore::open(dir.join("bench.db")).await.unwrap();
        table.push(
            measure("sqlite", &store, &obs, async || {
                store.size_on_disk().await.unwrap()
            })
            .await,
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();

    if let Ok(url) = std::env::var("FACTORYDASH_TEST_DATABASE_URL") {
        let db = common::BenchDb::create(&url, "stores").await;
        let config = db.config.clone();
        {
            let store = PgStore::connect_with(config.clone()).await.unwrap();
            let (client, conn) = config.connect(tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(conn);
            table.push(
                measure("postgresql", &store, &obs, async || {
                    client
                        .query_one(
                            "SELECT sum(pg_total_relation_size(i.inhrelid))::int8 FROM pg_inherits i
                             WHERE i.inhparent = 'observations'::regclass",
                            &[],
                        )
                        .await
                        .unwrap()
                        .get::<_, i64>(0) as u64
                })
                .await,
            );
        }
        db.drop().await;
    } else {
        println!("PostgreSQL left out: set FACTORYDASH_TEST_DATABASE_URL");
    }

    println!("{rows} NIST-shaped observations, batches of {BATCH}");
    println!(
        "| store | ingest obs/s | bytes/obs (incl. indexes) | latest page 1 p95 | latest page 500 p95 | 10 Hz day → 500 M4 buckets | RSS added: +{rows} / +{} obs (ratio) |",
        2 * rows
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let mb = |b: u64| b as f64 / 1e6;
    for m in table {
        let (once, twice) = m.rss_growth;
        println!(
            "| {} | {:.0} | {:.1} | {:.3} ms | {:.3} ms | {:.0} ms | {:.1} MB / {:.1} MB ({:.2}×) |",
            m.store,
            m.ingest_per_s,
            m.bytes_each,
            m.page1_p95_ms,
            m.page500_p95_ms,
            m.buckets_ms,
            mb(once),
            mb(twice),
            twice as f64 / once.max(1) as f64
        );
    }
}
