//! `/api/export` holds at most a chunk of a window in memory, whatever the data: 720,000
//! observations of one data item sharing ONE timestamp (the adversarial case of issue 20,
//! which made the old export double its chunk until it read the whole window at once),
//! exported once and then four times at once over HTTP from a real `factorydash serve`,
//! on SQLite and on PostgreSQL, with the process's memory read from `/proc/PID/status`:
//! `VmHWM` (the peak resident memory) and `VmRSS` (after) are printed, and the anonymous
//! part (`RssAnon`, sampled every 10 ms: the heap, what the export holds) is held to a
//! bound. The rest of the resident memory is mapped files: SQLite's reader connections
//! each map the database file (`mmap_size`), and each one's pages of it count once per
//! connection, though they are the kernel's one page cache and are dropped at will (four
//! exports at once on four connections: about 120 MB of `VmHWM` for a 39 MB file).

use std::time::{Duration, Instant};

use chrono::{DateTime, DurationRound, Utc};
use factorydash_core::{Batch, Category, DataItemInfo, DeviceInfo, Observation, Value};
use factorydash_store::Store;

use crate::support::{postgres_url, start, FreshDb, Running};

/// The observations written, all stamped with one instant.
const ROWS: u64 = 720_000;
/// An agent nobody serves (the discard port): `serve` follows it (else it would follow
/// its default, NIST's public agent) and fails to reach it, so the store keeps what was
/// written into it.
const AGENT: &str = "http://127.0.0.1:9";
const DEVICE: &str = "Flood";
const ITEM: &str = "flood_pos";
/// The most the process's anonymous memory may grow by, over what it was before the
/// exports, for four exports at once: a few chunks of 10,000 rows each, not a window.
/// The old export grew by about 500 MB for one, 1.7 GB for four (`VmHWM`).
const PEAK_GROWTH_BOUND: u64 = 64 << 20;

/// The device model and `ROWS` observations of its one data item, all stamped `at`, one
/// instance, sequences 1 to `ROWS`, written through the store API in batches of 10,000.
async fn fill(store: &dyn Store, at: DateTime<Utc>) {
    store
        .put_devices(
            AGENT,
            &[DeviceInfo {
                agent: AGENT.into(),
                name: DEVICE.into(),
                uuid: None,
                id: "flood".into(),
                data_items: vec![DataItemInfo {
                    id: ITEM.into(),
                    name: Some("Xpos".into()),
                    category: Category::Sample,
                    kind: "Position".into(),
                    sub_type: None,
                    units: Some("MILLIMETER".into()),
                    component: "Linear".into(),
                    component_id: "x".into(),
                    component_name: Some("X".into()),
                }],
            }],
        )
        .await
        .unwrap();
    let step = 10_000;
    for first in (1..=ROWS).step_by(step as usize) {
        let observations = (first..first + step)
            .map(|sequence| Observation {
                sequence,
                timestamp: at,
                device: DEVICE.into(),
                component_id: "x".into(),
                data_item_id: ITEM.into(),
                name: Some("Xpos".into()),
                category: Category::Sample,
                kind: "Position".into(),
                sub_type: None,
                value: Value::Text(format!("{}.5", sequence % 1000)),
                condition: None,
            })
            .collect();
        let batch = Batch {
            agent: AGENT.into(),
            instance_id: 1,
            next_sequence: first + step,
            observations,
        };
        assert_eq!(store.append(&batch).await.unwrap().inserted, step);
    }
}

/// What `/proc/PID/status` tells of a process's memory, in bytes.
#[derive(Debug, Clone, Copy)]
struct Memory {
    /// `VmHWM`: the peak resident memory.
    peak: u64,
    /// `VmRSS`: the resident memory now.
    resident: u64,
    /// `RssAnon`: the anonymous part of it (the heap and stacks; the rest is mapped files,
    /// such as SQLite's memory-mapped database pages, which the kernel may drop at will).
    anonymous: u64,
}

fn memory_of(pid: u32) -> Memory {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
            * 1024
    };
    Memory {
        peak: field("VmHWM:"),
        resident: field("VmRSS:"),
        anonymous: field("RssAnon:"),
    }
}

/// Runs `exports` while sampling `pid`'s anonymous memory every 10 ms; returns the most
/// sampled and the memory after.
async fn sampled(pid: u32, exports: impl std::future::Future<Output = ()>) -> (u64, Memory) {
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        tokio::spawn(async move {
            let mut most = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                most = most.max(memory_of(pid).anonymous);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            most
        })
    };
    exports.await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let most = sampler.await.unwrap();
    // Let the server's tasks end and free what they held.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = memory_of(pid);
    (most.max(after.anonymous), after)
}

/// Exports the data item as CSV from `base` over the window around `at`, reading the body
/// as it comes (never whole), and checks it: the header, then every sequence from 1 to
/// `ROWS` exactly once, in order, each stamped `at`.
async fn export_and_check(base: String, at: DateTime<Utc>) {
    let from =
        (at - chrono::Duration::minutes(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let to = (at + chrono::Duration::minutes(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let url = format!(
        "{base}/api/export?device={DEVICE}&dataItemId={ITEM}&format=csv&from={from}&to={to}"
    );
    let mut response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    let stamp = at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    let mut pending: Vec<u8> = Vec::new();
    let mut header = false;
    let mut expected = 1u64;
    let mut line = |line: &[u8]| {
        let line = std::str::from_utf8(line).unwrap();
        if !header {
            assert!(line.starts_with("timestamp,sequence,"), "{line}");
            header = true;
            return;
        }
        let mut cells = line.split(',');
        assert_eq!(cells.next(), Some(stamp.as_str()), "{line}");
        let sequence: u64 = cells.next().unwrap().parse().unwrap();
        assert_eq!(sequence, expected, "every row once, in order");
        expected += 1;
    };
    while let Some(chunk) = response.chunk().await.unwrap() {
        pending.extend_from_slice(&chunk);
        let mut start = 0;
        while let Some(end) = pending[start..].iter().position(|&b| b == b'\n') {
            line(&pending[start..start + end]);
            start += end + 1;
        }
        pending.drain(..start);
    }
    assert!(pending.is_empty(), "the body ends with a whole row");
    assert_eq!(expected - 1, ROWS, "rows exported");
}

/// Growth over the memory before the exports, in MB: the peak (`VmHWM`), the resident
/// memory after (`VmRSS`), the most anonymous memory sampled and the anonymous memory
/// after (`RssAnon`).
#[derive(Debug, Clone, Copy)]
struct Growth {
    peak: f64,
    after: f64,
    anonymous_peak: f64,
    anonymous_after: f64,
}

impl std::fmt::Display for Growth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "VmHWM +{:.1} MB, VmRSS after +{:.1} MB, RssAnon peak +{:.1} MB, after +{:.1} MB",
            self.peak, self.after, self.anonymous_peak, self.anonymous_after
        )
    }
}

/// One export, then four at once, from `serve`: how its memory grew for each.
async fn measure(serve: &Running, store: &str, at: DateTime<Utc>) -> (Growth, Growth) {
    let pid = serve.pid();
    // A request first, so that what any request allocates once is there before.
    let (status, _) = crate::support::get_json(&format!("{}/api/devices", serve.base)).await;
    assert_eq!(status, 200);
    let before = memory_of(pid);
    let mb = |bytes: u64, base: u64| bytes.saturating_sub(base) as f64 / 1e6;
    let growth = |anonymous_peak: u64, after: Memory| Growth {
        peak: mb(after.peak, before.resident),
        after: mb(after.resident, before.resident),
        anonymous_peak: mb(anonymous_peak, before.anonymous),
        anonymous_after: mb(after.anonymous, before.anonymous),
    };

    let started = Instant::now();
    let (most, after) = sampled(pid, export_and_check(serve.base.clone(), at)).await;
    let one = (growth(most, after), started.elapsed());

    let started = Instant::now();
    let four = async {
        let exports: Vec<_> = (0..4)
            .map(|_| tokio::spawn(export_and_check(serve.base.clone(), at)))
            .collect();
        for export in exports {
            export.await.unwrap();
        }
    };
    let (most, after) = sampled(pid, four).await;
    let four = (growth(most, after), started.elapsed());
    eprintln!(
        "export of {ROWS} rows at one timestamp on {store}: before VmRSS {:.1} MB \
         (RssAnon {:.1} MB); one export ({:.1?}): {}; four at once ({:.1?}): {}",
        before.resident as f64 / 1e6,
        before.anonymous as f64 / 1e6,
        one.1,
        one.0,
        four.1,
        four.0,
    );
    (one.0, four.0)
}

/// Asserts that the anonymous memory sampled grew less than [`PEAK_GROWTH_BOUND`] for
/// four exports at once (`four`, from [`measure`]).
fn assert_bounded(store: &str, four: Growth) {
    let bound = PEAK_GROWTH_BOUND as f64 / 1e6;
    assert!(
        four.anonymous_peak < bound,
        "{store}: four exports at once: {four} (bound {bound:.1} MB)"
    );
}

/// A whole second an hour ago: inside the retention `serve` prunes by, and exact in
/// every store.
fn an_hour_ago() -> DateTime<Utc> {
    (Utc::now() - chrono::Duration::hours(1))
        .duration_trunc(chrono::Duration::seconds(1))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn exports_of_many_rows_at_one_timestamp_stay_in_bounded_memory_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("factorydash-export-{}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir).unwrap();
    let at = an_hour_ago();
    {
        let store = factorydash_store::sqlite::SqliteStore::open(dir.join("factorydash.db"))
            .await
            .unwrap();
        fill(&store, at).await;
        eprintln!(
            "the SQLite file: {:.1} MB",
            store.size_on_disk().await.unwrap() as f64 / 1e6
        );
    }
    let serve = start(&[
        "serve",
        "--agent",
        AGENT,
        "--data-dir",
        dir.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ])
    .await;
    let (_, four) = measure(&serve, "SQLite", at).await;
    drop(serve);
    let _ = std::fs::remove_dir_all(&dir);
    assert_bounded("SQLite", four);
}

#[tokio::test(flavor = "multi_thread")]
async fn exports_of_many_rows_at_one_timestamp_stay_in_bounded_memory_on_postgres() {
    let Some(server) = postgres_url("export memory") else {
        return;
    };
    let db = FreshDb::create(&server, "export_memory").await;
    let at = an_hour_ago();
    {
        let store = factorydash_store::postgres::PgStore::connect(&db.url)
            .await
            .unwrap();
        fill(&store, at).await;
    }
    let serve = start(&[
        "serve",
        "--agent",
        AGENT,
        "--database-url",
        &db.url,
        "--listen",
        "127.0.0.1:0",
    ])
    .await;
    let (_, four) = measure(&serve, "PostgreSQL", at).await;
    drop(serve);
    db.drop().await;
    assert_bounded("PostgreSQL", four);
}
