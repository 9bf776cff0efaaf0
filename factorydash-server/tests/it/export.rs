//! `/api/export` holds at most a chunk of a window in memory, whatever the data: 720,000
//! observations of one data item sharing ONE timestamp (the adversarial case of issue 20,
//! which made the old export double its chunk until it read the whole window at once),
//! exported once and then four times at once over HTTP from a real `factorydash serve`,
//! on SQLite and on PostgreSQL, with the process's resident memory read from
//! `/proc/PID/status` (`VmHWM`, the peak; `VmRSS`, after).

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
/// The most the process's peak resident memory may grow by, over its resident memory
/// before the exports, for four exports at once: a few chunks of 10,000 rows each, not a
/// window. The old export grew by about 500 MB for one.
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

/// `VmHWM` (peak) and `VmRSS` (now) of process `pid`, in bytes.
fn memory_of(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
            * 1024
    };
    (field("VmHWM:"), field("VmRSS:"))
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

/// One export, then four at once, from `serve`; prints and returns the growth of the peak
/// (`VmHWM`) and of the resident memory after each (`VmRSS`), over `VmRSS` before, in MB.
async fn measure(serve: &Running, store: &str, at: DateTime<Utc>) -> [f64; 4] {
    let pid = serve.pid();
    // A request first, so that what any request allocates once is there before.
    let (status, _) = crate::support::get_json(&format!("{}/api/devices", serve.base)).await;
    assert_eq!(status, 200);
    let (_, before) = memory_of(pid);
    let mb = |bytes: u64| bytes.saturating_sub(before) as f64 / 1e6;

    let started = Instant::now();
    export_and_check(serve.base.clone(), at).await;
    let one = started.elapsed();
    let (peak_one, after_one) = memory_of(pid);

    let started = Instant::now();
    let exports: Vec<_> = (0..4)
        .map(|_| tokio::spawn(export_and_check(serve.base.clone(), at)))
        .collect();
    for export in exports {
        export.await.unwrap();
    }
    let four = started.elapsed();
    // Let the server's tasks end and free what they held.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (peak_four, after_four) = memory_of(pid);
    let figures = [mb(peak_one), mb(after_one), mb(peak_four), mb(after_four)];
    eprintln!(
        "export of {ROWS} rows at one timestamp on {store}: RSS before {:.1} MB; \
         one export ({one:.1?}): peak +{:.1} MB, after +{:.1} MB; \
         four at once ({four:.1?}): peak +{:.1} MB, after +{:.1} MB",
        before as f64 / 1e6,
        figures[0],
        figures[1],
        figures[2],
        figures[3],
    );
    figures
}

/// Asserts the peak's growth for four exports at once (`figures` from [`measure`]).
fn assert_bounded(store: &str, figures: [f64; 4]) {
    let bound = PEAK_GROWTH_BOUND as f64 / 1e6;
    assert!(
        figures[2] < bound,
        "{store}: the peak grew by {:.1} MB for four exports at once (bound {bound:.1} MB)",
        figures[2],
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
    let figures = measure(&serve, "SQLite", at).await;
    drop(serve);
    let _ = std::fs::remove_dir_all(&dir);
    assert_bounded("SQLite", figures);
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
    let figures = measure(&serve, "PostgreSQL", at).await;
    drop(serve);
    db.drop().await;
    assert_bounded("PostgreSQL", figures);
}
