//! Summaries against today's computation from raw rows, side by side in one run, on
//! SQLite and PostgreSQL:
//!
//! - **one device over 30 days**: the seconds per Execution state and the parts, from
//!   [`Store::summary`], against [`Store::state_summary`] over the observations (what the
//!   device page's utilization reads);
//! - **1,000 devices over a day**: the same, one `summary` question for all, against one
//!   `state_summary` per device;
//! - **ingest with the summaries kept**, against the same observations whose types are
//!   made untracked (an extension type, `x:Execution`, …), so that the only difference is
//!   the summaries' work: observations per second and the ratio; for events only (every
//!   observation feeds a summary: the worst case) and for events among Samples every 5 s
//!   (what machines send: the NIST GFAgie01 recording has 45 Execution observations among
//!   112,762).
//!
//! Each reading is the median of five. The machines are made up, deterministic: each
//! device's Execution changes every 2 to 9 minutes (ACTIVE, READY, STOPPED,
//! INTERRUPTED), its part count goes up at each end of ACTIVE, and a Fault comes and goes
//! now and then.
//!
//! Run with: `cargo bench -p factorydash-store --bench summaries [-- DEVICES]` (default
//! 1,000). PostgreSQL from `FACTORYDASH_TEST_DATABASE_URL`, in a database of its own
//! dropped afterwards (left out when unset); SQLite in a temporary directory.

mod common;

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use factorydash_core::summary::MinuteRange;
use factorydash_core::{
    Batch, Category, ConditionLevel, ConditionState, DeviceKey, Observation, TimeWindow, Value,
};
use factorydash_store::postgres::PgStore;
use factorydash_store::sqlite::SqliteStore;
use factorydash_store::{Store, SummaryQuery};

const AGENT: &str = "http://bench.invalid:5000";
const STATES: [&str; 4] = ["ACTIVE", "READY", "STOPPED", "INTERRUPTED"];
const BATCH: usize = 10_000;
/// Ingest runs per side (the median is printed).
const RUNS: usize = 5;

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 10, 1, 0, 0, 0).unwrap()
}

/// A small deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Device `d`'s observations over `days` from [`start`], in time order; with `tracked`
/// false, the same with types nothing summarises; with `samples`, three Samples every
/// 5 s besides (positions and a load: what a real machine mostly sends).
fn machine(d: usize, days: i64, tracked: bool, samples: bool) -> Vec<Observation> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (d as u64 + 1));
    let name = format!("M{d:04}");
    let kind = |k: &str| {
        if tracked {
            k.to_owned()
        } else {
            format!("x:{k}")
        }
    };
    let mut out = Vec::new();
    let end = start() + chrono::Duration::days(days);
    let mut t = start();
    let mut parts = 0u64;
    let mut state = 1;
    let o = |t: DateTime<Utc>, item: &str, kind: String, category: Category, value: String| {
        Observation {
            sequence: 0,
            timestamp: t,
            device: name.clone(),
            component_id: "path".into(),
            data_item_id: format!("{name}-{item}"),
            name: None,
            category,
            kind,
            sub_type: None,
            value: Value::Text(value),
            condition: None,
        }
    };
    while t < end {
        let next = (rng.next() % 4) as usize;
        if STATES[state] == "ACTIVE" {
            parts += 1;
            out.push(o(
                t,
                "pc",
                kind("PartCount"),
                Category::Event,
                parts.to_string(),
            ));
        }
        state = next;
        out.push(o(
            t,
            "exec",
            kind("Execution"),
            Category::Event,
            STATES[state].into(),
        ));
        if rng.next().is_multiple_of(20) {
            for level in [ConditionLevel::Fault, ConditionLevel::Normal] {
                let mut c = o(t, "sys", kind("System"), Category::Condition, String::new());
                if !tracked {
                    c.category = Category::Event;
                } else {
                    c.condition = Some(ConditionState {
                        level,
                        native_code: Some("E1".into()),
                        native_severity: None,
                        qualifier: None,
                    });
                }
                out.push(c);
                t += chrono::Duration::seconds(30);
            }
        }
        let step = 120 + (rng.next() % 420) as i64;
        if samples {
            for k in (0..step).step_by(5) {
                for axis in ["X", "Y", "S"] {
                    out.push(o(
                        t + chrono::Duration::seconds(k),
                        axis,
                        if axis == "S" {
                            "Load".into()
                        } else {
                            "Position".into()
                        },
                        Category::Sample,
                        format!("{}.{}", rng.next() % 500, rng.next() % 1000),
                    ));
                }
            }
        }
        t += chrono::Duration::seconds(step);
    }
    out
}

/// Every device's observations over `days`, merged in time order and numbered.
fn fleet(devices: usize, days: i64, tracked: bool, samples: bool) -> Vec<Observation> {
    let mut all: Vec<Observation> = (0..devices)
        .flat_map(|d| machine(d, days, tracked, samples))
        .collect();
    all.sort_by_key(|o| o.timestamp);
    for (i, o) in all.iter_mut().enumerate() {
        o.sequence = i as u64 + 1;
    }
    all
}

/// Stores `observations` in batches; observations per second.
async fn ingest(store: &dyn Store, observations: &[Observation]) -> f64 {
    let t = Instant::now();
    for chunk in observations.chunks(BATCH) {
        store
            .append(&Batch {
                agent: AGENT.into(),
                instance_id: 1,
                next_sequence: chunk.last().unwrap().sequence + 1,
                observations: chunk.to_vec(),
            })
            .await
            .unwrap();
    }
    observations.len() as f64 / t.elapsed().as_secs_f64()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn time<F, Fut>(f: F) -> Duration
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut runs = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        f().await;
        runs.push(t.elapsed());
    }
    median(runs)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

async fn bench(
    name: &str,
    fresh: &mut dyn FnMut() -> std::pin::Pin<Box<dyn std::future::Future<Output = Box<dyn Store>>>>,
    devices: usize,
) {
    println!("\n## {name}");
    // Ingest: tracked against untracked, the same rows; events only (the worst case:
    // every observation feeds a summary), then with Samples.
    for (what, devices, samples) in [
        ("events only", devices.min(100), false),
        ("events and Samples every 5 s", devices.min(20), true),
    ] {
        let tracked = fleet(devices, 1, true, samples);
        let untracked = fleet(devices, 1, false, samples);
        // Interleaved runs, each on a fresh store: a checkpoint or autovacuum lands on
        // either side; the medians and each pair's ratio's range are printed.
        let (mut with, mut without, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..RUNS {
            let s = fresh().await;
            let wo = ingest(&*s, &untracked).await;
            drop(s);
            let s = fresh().await;
            let w = ingest(&*s, &tracked).await;
            drop(s);
            without.push(wo);
            with.push(w);
            ratios.push(w / wo);
        }
        for v in [&mut with, &mut without, &mut ratios] {
            v.sort_by(f64::total_cmp);
        }
        let (w, wo) = (with[RUNS / 2], without[RUNS / 2]);
        println!(
            "ingest, {what}: {} observations ({devices} devices, a day): {:.0}/s with summaries, {:.0}/s without: {:.2}× ({:+.1} %; pairs {:.2}–{:.2}×)",
            tracked.len(),
            w,
            wo,
            w / wo,
            (w / wo - 1.0) * 100.0,
            ratios[0],
            ratios[RUNS - 1],
        );
    }

    // One device over 30 days.
    let store = fresh().await;
    ingest(&*store, &fleet(1, 30, true, false)).await;
    let key = DeviceKey::new(AGENT, "M0000");
    let (from, to) = (start(), start() + chrono::Duration::days(30));
    let window = TimeWindow::new(from, to).unwrap();
    let q = {
        let mut q = SummaryQuery::new(vec![MinuteRange::new(from, to)], to);
        q.devices = Some(vec![key.clone()]);
        q
    };
    let summary = time(|| async {
        store.summary(&q).await.unwrap();
    })
    .await;
    let raw = time(|| async {
        store
            .state_summary(&key, "M0000-exec", &window, None, 1000)
            .await
            .unwrap();
    })
    .await;
    println!(
        "one device, 30 days: summary {}, from raw rows {}: {:.0}× faster",
        ms(summary),
        ms(raw),
        raw.as_secs_f64() / summary.as_secs_f64()
    );

    // DEVICES devices over a day.
    let store = fresh().await;
    ingest(&*store, &fleet(devices, 1, true, false)).await;
    let (from, to) = (start(), start() + chrono::Duration::days(1));
    let window = TimeWindow::new(from, to).unwrap();
    let q = SummaryQuery::new(vec![MinuteRange::new(from, to)], to);
    let summary = time(|| async {
        store.summary(&q).await.unwrap();
    })
    .await;
    let t = Instant::now();
    for d in 0..devices {
        let name = format!("M{d:04}");
        store
            .state_summary(
                &DeviceKey::new(AGENT, &name),
                &format!("{name}-exec"),
                &window,
                None,
                1000,
            )
            .await
            .unwrap();
    }
    let raw = t.elapsed();
    println!(
        "{devices} devices, a day: summary {}, from raw rows {}: {:.0}× faster",
        ms(summary),
        ms(raw),
        raw.as_secs_f64() / summary.as_secs_f64()
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let devices: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.replace('_', "").parse().ok())
        .unwrap_or(1_000);
    let dir = tempfile::tempdir().unwrap();
    let mut n = 0;
    let path = dir.path().to_owned();
    bench(
        "SQLite",
        &mut || {
            n += 1;
            let file = path.join(format!("bench-{n}.db"));
            Box::pin(
                async move { Box::new(SqliteStore::open(file).await.unwrap()) as Box<dyn Store> },
            )
        },
        devices,
    )
    .await;
    if let Ok(url) = std::env::var("FACTORYDASH_TEST_DATABASE_URL") {
        let mut dbs = Vec::new();
        for i in 0..(2 + 4 * RUNS) {
            dbs.push(common::BenchDb::create(&url, &format!("summaries{i}")).await);
        }
        let configs: Vec<tokio_postgres::Config> = dbs.iter().map(|d| d.config.clone()).collect();
        let mut next = configs.into_iter();
        bench(
            "PostgreSQL",
            &mut || {
                let config = next.next().expect("a database per store");
                Box::pin(async move {
                    Box::new(PgStore::connect_with(config).await.unwrap()) as Box<dyn Store>
                })
            },
            devices,
        )
        .await;
        for db in dbs {
            db.drop().await;
        }
    } else {
        println!("\nPostgreSQL left out: set FACTORYDASH_TEST_DATABASE_URL");
    }
}
