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
//!   2,000 points), [`Store::buckets`], the median of five reads;
//! - resident memory while the store fills: a process of its own per store (so that
//!   memory the bench freed cannot hide growth) opens a new store, stores one batch, then
//!   streams `2 × ROWS` observations in (made batch by batch, nothing kept between
//!   batches); its RSS after the first batch, after `ROWS` and after `2 × ROWS`. A store
//!   that keeps its rows on disk stays flat; one that keeps them in memory grows by its
//!   bytes per observation.
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
/// How many times the day's buckets are read; the median is reported.
const BUCKET_READS: usize = 5;

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

/// `--rss STORE ROWS`, run by [`rss_of_a_child`] in a process of its own: opens a new
/// `STORE` (memory, sqlite or postgresql), stores one batch, streams `2 × ROWS` NIST-shaped
/// observations in (made a batch at a time) and prints `rss AFTER_ONE AFTER_ROWS
/// AFTER_2ROWS` (bytes).
async fn rss_child(kind: &str, rows: usize) {
    let base = nist();
    let dir = std::env::temp_dir().join(format!("fdbench-rss-{}", std::process::id()));
    let db = match kind {
        "postgresql" => Some(
            common::BenchDb::create(
                &std::env::var("FACTORYDASH_TEST_DATABASE_URL").unwrap(),
                "stores_rss",
            )
            .await,
        ),
        _ => None,
    };
    let store: Box<dyn Store> = match kind {
        "memory" => Box::new(MemoryStore::new()),
        "sqlite" => {
            std::fs::create_dir_all(&dir).unwrap();
            Box::new(SqliteStore::open(dir.join("bench.db")).await.unwrap())
        }
        _ => Box::new(
            PgStore::connect_with(db.as_ref().unwrap().config.clone())
                .await
                .unwrap(),
        ),
    };
    let mut sequence = 0u64;
    let mut stream = async |n: usize| {
        let mut left = n;
        while left > 0 {
            let observations: Vec<Observation> = (0..left.min(BATCH))
                .map(|_| {
                    let round = sequence as usize / base.len();
                    let mut o = base[sequence as usize % base.len()].clone();
                    sequence += 1;
                    o.sequence = sequence;
                    o.timestamp += chrono::Duration::days(round as i64);
                    o
                })
                .collect();
            left -= observations.len();
            let batch = Batch {
                agent: "http://stream".into(),
                instance_id: 1,
                next_sequence: sequence + 1,
                observations,
            };
            store.append(&batch).await.unwrap();
        }
        resident_bytes()
    };
    let at = [stream(BATCH).await, stream(rows).await, stream(rows).await];
    println!("rss {} {} {}", at[0], at[1], at[2]);
    drop(store);
    if let Some(db) = db {
        db.drop().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The RSS at the three points of [`rss_child`], run as `--rss STORE ROWS` in a process
/// of its own.
fn rss_of_a_child(kind: &str, rows: usize) -> [u64; 3] {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--rss", kind, &rows.to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("rss "))
        .unwrap_or_else(|| panic!("{kind}: no rss line: {text}"));
    let mut n = line.split(' ').map(|n| n.parse().unwrap());
    [n.next().unwrap(), n.next().unwrap(), n.next().unwrap()]
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
    /// RSS (bytes) of a process of its own filling this store: after one batch, after
    /// `rows` and after `2 × rows` observations ([`rss_child`]).
    rss: [u64; 3],
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
    // The median of five reads: the first also sets PostgreSQL's hint bits on the rows
    // just written, and one read on a shared machine is noisy.
    let mut times = Vec::new();
    for _ in 0..BUCKET_READS {
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
        times.push(t_buckets.elapsed());
        assert_eq!(buckets.iter().map(|b| b.count).sum::<usize>(), day.len());
    }
    times.sort();
    let buckets_time = times[BUCKET_READS / 2];
    let m = Measured {
        store: name,
        rss: rss_of_a_child(name, obs.len()),
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
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--rss") {
        return rss_child(&args[i + 1], args[i + 2].parse().unwrap()).await;
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
        "| store | ingest obs/s | bytes/obs (incl. indexes) | latest page 1 p95 | latest page 500 p95 | 10 Hz day → 500 M4 buckets | RSS filling: 1 batch → {rows} → {} obs |",
        2 * rows
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let mb = |b: u64| b as f64 / 1e6;
    for m in table {
        let [first, once, twice] = m.rss;
        println!(
            "| {} | {:.0} | {:.1} | {:.3} ms | {:.3} ms | {:.0} ms | {:.0} → {:.0} → {:.0} MB |",
            m.store,
            m.ingest_per_s,
            m.bytes_each,
            m.page1_p95_ms,
            m.page500_p95_ms,
            m.buckets_ms,
            mb(first),
            mb(once),
            mb(twice)
        );
    }
}
