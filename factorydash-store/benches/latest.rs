//! Latest-values pages at scale: ours (keyset over the `latest` table) against the old
//! app's query (`ROW_NUMBER() OVER (PARTITION BY machine_id, name ORDER BY timestamp DESC)`,
//! `= 1`, then `OFFSET`), side by side, p50 and p95, for page 1 and page 500.
//!
//! Run with: `cargo bench -p factorydash-store --bench latest [-- ROWS]`
//! (default 1,000,000 observations; PostgreSQL from `FACTORYDASH_TEST_DATABASE_URL`, in a
//! database of its own that is dropped afterwards).
//!
//! The shop: 100 machines of the NIST GFAgie01 shape (25 data items each, 2,500 in all),
//! observations round robin, one second apart per machine. Pages of 5 items, so that page
//! 500 exists.

mod common;

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use factorydash_core::{Batch, Category, Observation, PageRequest, Value};
use factorydash_store::{postgres::PgStore, LatestFilter, Store};

const MACHINES: usize = 100;
const ITEMS: usize = 25;
const PAGE: usize = 5;

fn observation(seq: u64) -> Observation {
    let i = (seq as usize) % (MACHINES * ITEMS);
    let (machine, item) = (i / ITEMS, i % ITEMS);
    let device = format!("M{machine:03}");
    Observation {
        sequence: seq,
        timestamp: Utc
            .timestamp_opt(1_475_000_000 + (seq / (MACHINES * ITEMS) as u64) as i64, 0)
            .unwrap(),
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
}

fn percentiles(mut d: Vec<Duration>) -> (f64, f64) {
    d.sort();
    let ms = |x: Duration| x.as_secs_f64() * 1e3;
    (
        ms(d[d.len() / 2]),
        ms(d[(d.len() * 95 / 100).min(d.len() - 1)]),
    )
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rows: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.replace('_', "").parse().ok())
        .unwrap_or(1_000_000);
    let Ok(url) = std::env::var("FACTORYDASH_TEST_DATABASE_URL") else {
        println!("skipped: set FACTORYDASH_TEST_DATABASE_URL");
        return;
    };
    let db = common::BenchDb::create(&url, "latest").await;
    let db_url = db.config.clone();
    let store = PgStore::connect_with(db_url.clone()).await.unwrap();
    let (client, conn) = db_url.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);

    // Our store, through the ingest path.
    let started = Instant::now();
    let mut seq = 1;
    while seq <= rows {
        let end = (seq + 20_000).min(rows + 1);
        let observations: Vec<Observation> = (seq..end).map(observation).collect();
        let batch = Batch {
            agent: "bench".into(),
            instance_id: 1,
            next_sequence: end,
            observations,
        };
        store.append(&batch).await.unwrap();
        seq = end;
    }
    let ours_ingest = started.elapsed();
    // The old app's table, filled the fast way (its own ingest was one INSERT per row).
    client
        .batch_execute(
            "CREATE TABLE machinedata (id bigserial PRIMARY KEY, machine_id varchar(255) NOT NULL, timestamp timestamptz NOT NULL, name varchar(255), value varchar(255));
             CREATE INDEX machinedata_idx ON machinedata (timestamp, machine_id, name);
             INSERT INTO machinedata (machine_id, timestamp, name, value) SELECT device, ts, data_item_id, value FROM observations;
             ANALYZE;",
        )
        .await
        .unwrap();
    println!(
        "{rows} observations, {} data items; ingest into our store {:.1} s ({:.0}/s)",
        MACHINES * ITEMS,
        ours_ingest.as_secs_f64(),
        rows as f64 / ours_ingest.as_secs_f64()
    );

    let old_query = "SELECT machine_id, name, value, timestamp FROM (
        SELECT machine_id, name, value, timestamp,
               ROW_NUMBER() OVER (PARTITION BY machine_id, name ORDER BY timestamp DESC) AS rn
        FROM machinedata) t
      WHERE rn = 1 ORDER BY machine_id, name OFFSET $1 LIMIT $2";
    let runs = 30;
    println!(
        "{:<28} {:>10} {:>10}",
        "latest values, page of 5", "p50 ms", "p95 ms"
    );
    for page in [1usize, 500] {
        // Ours: walk to the page's cursor once, then time fetching it.
        let mut request = PageRequest::first(PAGE);
        for _ in 1..page {
            request.after = store
                .latest(&LatestFilter::default(), &request)
                .await
                .unwrap()
                .next;
        }
        let mut ours = Vec::new();
        for _ in 0..runs {
            let t = Instant::now();
            let p = store
                .latest(&LatestFilter::default(), &request)
                .await
                .unwrap();
            ours.push(t.elapsed());
            assert_eq!(p.items.len(), PAGE);
        }
        let mut old = Vec::new();
        for _ in 0..runs.min(5) {
            let t = Instant::now();
            let rows = client
                .query(old_query, &[&(((page - 1) * PAGE) as i64), &(PAGE as i64)])
                .await
                .unwrap();
            old.push(t.elapsed());
            assert_eq!(rows.len(), PAGE);
        }
        let (o50, o95) = percentiles(ours);
        let (p50, p95) = percentiles(old);
        println!(
            "{:<28} {:>10.2} {:>10.2}",
            format!("ours, page {page}"),
            o50,
            o95
        );
        println!(
            "{:<28} {:>10.2} {:>10.2}   ours is {:.0}x faster at p50",
            format!("old app, page {page}"),
            p50,
            p95,
            p50 / o50
        );
    }
    drop(store);
    drop(client);
    db.drop().await;
}
