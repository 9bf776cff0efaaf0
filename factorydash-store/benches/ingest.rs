//! PostgreSQL ingest, retention and downsampling at scale, side by side in one run:
//!
//! - ingest observations/s: ours ([`PgStore::append`]: binary `COPY` into staging, duplicates
//!   dropped, latest values and resume point in the same transaction, daily partitions);
//!   the old app's way (one `INSERT` per observation, each its own transaction, into its
//!   `machinedata` table), in Rust and, when `psycopg2` is installed, with the old app's
//!   own Python (`baseline/seed_ingest.py`); and raw binary `COPY` into a bare table with
//!   no key or index (the limit);
//! - retention of one day: dropping its partition (ours) against `DELETE … WHERE ts < …`
//!   on the same rows in an unpartitioned table with an index on the timestamp;
//! - one day of a 10 Hz series (864,000 observations) read and downsampled to 2,000 points
//!   (LTTB in Rust) against the same day summarised in PostgreSQL (M4 buckets)
//!   (LTTB, Steinarsson 2013).
//!
//! Run with: `cargo bench -p factorydash-store --bench ingest [-- ROWS]` (default
//! 1,000,000 observations; PostgreSQL from `FACTORYDASH_TEST_DATABASE_URL`, in a database
//! of its own that is dropped afterwards).
//!
//! The observations are the real NIST GFAgie01 recording (112,762 observations, 25 data
//! items, most stamped 2016-05-02 and 03, a few with the agent's stale 2016-09-28 stamps),
//! played again and again: each round continues the sequence numbers one day later.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use factorydash_core::{Batch, Category, Observation, TimeWindow, Value};
use factorydash_mtconnect::{parse_streams, recording::read_maybe_gzipped};
use factorydash_store::{postgres::PgStore, Store};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;

/// Observations per append: what one `/sample?count=10000` page brings.
const BATCH: usize = 10_000;
/// The old app's way is timed on this many observations (its rate does not depend on the
/// table's size at this scale).
const OLD_ROWS: usize = 20_000;

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
fn observations(rows: usize) -> Vec<Observation> {
    let base = nist();
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

struct Row {
    what: String,
    rows: usize,
    seconds: f64,
}

impl Row {
    fn rate(&self) -> f64 {
        self.rows as f64 / self.seconds
    }
}

async fn ours(store: &PgStore, obs: &[Observation]) -> Duration {
    let started = Instant::now();
    for chunk in obs.chunks(BATCH) {
        let batch = Batch {
            agent: "http://bench".into(),
            instance_id: 1,
            next_sequence: chunk.last().unwrap().sequence + 1,
            observations: chunk.to_vec(),
        };
        store.append(&batch).await.unwrap();
    }
    started.elapsed()
}

async fn raw_copy(client: &tokio_postgres::Client, obs: &[Observation]) -> Duration {
    client
        .batch_execute(
            "CREATE TABLE bare (instance_id bigint, sequence bigint, ts timestamptz, device text,
               component_id text, data_item_id text, name text, category text, kind text,
               sub_type text, value text)",
        )
        .await
        .unwrap();
    let types = [
        Type::INT8,
        Type::INT8,
        Type::TIMESTAMPTZ,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
    ];
    let started = Instant::now();
    for chunk in obs.chunks(BATCH) {
        let sink = client.copy_in("COPY bare FROM STDIN BINARY").await.unwrap();
        let writer = BinaryCopyInWriter::new(sink, &types);
        futures_util::pin_mut!(writer);
        for o in chunk {
            let seq = o.sequence as i64;
            writer
                .as_mut()
                .write(&[
                    &1i64,
                    &seq,
                    &o.timestamp,
                    &o.device,
                    &o.component_id,
                    &o.data_item_id,
                    &o.name,
                    &o.category.as_str(),
                    &o.kind,
                    &o.sub_type,
                    &o.value.as_text(),
                ])
                .await
                .unwrap();
        }
        writer.finish().await.unwrap();
    }
    started.elapsed()
}

async fn old_app(client: &tokio_postgres::Client, obs: &[Observation]) -> Duration {
    client
        .batch_execute(
            "CREATE TABLE machinedata (id bigserial PRIMARY KEY, machine_id varchar(255) NOT NULL,
               timestamp timestamptz NOT NULL, name varchar(255), value varchar(255));
             CREATE INDEX machinedata_idx ON machinedata (timestamp, machine_id, name);",
        )
        .await
        .unwrap();
    let insert = client
        .prepare(
            "INSERT INTO machinedata (machine_id, timestamp, name, value) VALUES ($1, $2, $3, $4)",
        )
        .await
        .unwrap();
    let started = Instant::now();
    for o in obs {
        // Autocommit: each INSERT is its own transaction, as Django's objects.create was.
        client
            .execute(
                &insert,
                &[&o.device, &o.timestamp, &o.data_item_id, &o.value.as_text()],
            )
            .await
            .unwrap();
    }
    started.elapsed()
}

/// The old app's own Python ingest (psycopg2), when it can run here.
fn old_app_python(url: &str) -> Option<Row> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/baseline/seed_ingest.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .args(["--dsn", url, "--rows", &OLD_ROWS.to_string()])
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "(the Python baseline did not run: {})",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
        return None;
    }
    // "rows\tseconds s\trate rows/s"
    let text = String::from_utf8_lossy(&out.stdout);
    let mut fields = text.split('\t');
    let rows = fields.next()?.trim().parse().ok()?;
    let seconds = fields.next()?.trim().trim_end_matches(" s").parse().ok()?;
    Some(Row {
        what: "old app, Python (psycopg2)".into(),
        rows,
        seconds,
    })
}

fn midnight(t: DateTime<Utc>) -> DateTime<Utc> {
    t.date_naive().and_time(chrono::NaiveTime::MIN).and_utc()
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
    let Ok(url) = std::env::var("FACTORYDASH_TEST_DATABASE_URL") else {
        println!("skipped: set FACTORYDASH_TEST_DATABASE_URL");
        return;
    };
    let db = common::BenchDb::create(&url, "ingest").await;
    let config = db.config.clone();
    let store = PgStore::connect_with(config.clone()).await.unwrap();
    let (client, conn) = config.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);

    let obs = observations(rows);
    println!(
        "{rows} observations (the NIST GFAgie01 recording, {} rounds one day apart), batches of {BATCH}",
        rows.div_ceil(112_762)
    );
    let mut table = Vec::new();
    let t = ours(&store, &obs).await;
    table.push(Row {
        what: "ours (COPY, staging, dedup)".into(),
        rows,
        seconds: t.as_secs_f64(),
    });
    // The same batches again: every observation is a duplicate and is dropped.
    let again = &obs[..obs.len().min(200_000)];
    let t = ours(&store, again).await;
    table.push(Row {
        what: "ours, all duplicates".into(),
        rows: again.len(),
        seconds: t.as_secs_f64(),
    });
    let stored: i64 = client
        .query_one("SELECT count(*) FROM observations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored as usize, rows, "every observation once");
    let t = raw_copy(&client, &obs).await;
    table.push(Row {
        what: "raw binary COPY, bare table".into(),
        rows,
        seconds: t.as_secs_f64(),
    });
    let t = old_app(&client, &obs[..OLD_ROWS.min(rows)]).await;
    table.push(Row {
        what: "old app (INSERT + commit per row)".into(),
        rows: OLD_ROWS.min(rows),
        seconds: t.as_secs_f64(),
    });
    table.extend(old_app_python(&url));

    let reference = table[0].rate();
    println!(
        "{:<36} {:>10} {:>9} {:>12} {:>10}",
        "ingest", "rows", "seconds", "obs/s", "ours is"
    );
    for r in &table {
        println!(
            "{:<36} {:>10} {:>9.2} {:>12.0} {:>9.2}x",
            r.what,
            r.rows,
            r.seconds,
            r.rate(),
            reference / r.rate()
        );
    }
    println!(
        "ours reaches {:.0}% of raw COPY",
        100.0 * reference / table[2].rate()
    );

    // Retention of the oldest day: drop its partition, against DELETE on a plain table.
    let first_day = midnight(obs.iter().map(|o| o.timestamp).min().unwrap());
    let cutoff = first_day + chrono::Duration::days(1);
    client
        .batch_execute("CREATE INDEX bare_ts ON bare (ts); ANALYZE bare;")
        .await
        .unwrap();
    let t = Instant::now();
    let dropped = store.prune(cutoff).await.unwrap();
    let drop_time = t.elapsed();
    let t = Instant::now();
    let deleted = client
        .execute("DELETE FROM bare WHERE ts < $1", &[&cutoff])
        .await
        .unwrap();
    let delete_time = t.elapsed();
    // The space a DELETE frees is reclaimed by VACUUM; a dropped partition's is at once.
    let t = Instant::now();
    client.batch_execute("VACUUM bare").await.unwrap();
    let vacuum_time = t.elapsed();
    assert_eq!(dropped, deleted, "the same day's rows");
    println!(
        "retention of the oldest day ({dropped} rows): partition drop {:.1} ms (with an exact count of its rows); \
         DELETE {:.1} ms + VACUUM {:.1} ms ({:.1}x)",
        drop_time.as_secs_f64() * 1e3,
        delete_time.as_secs_f64() * 1e3,
        vacuum_time.as_secs_f64() * 1e3,
        (delete_time + vacuum_time).as_secs_f64() / drop_time.as_secs_f64()
    );

    // One day of a 10 Hz series, downsampled to 2,000 points.
    let day = Utc.with_ymd_and_hms(2026, 11, 20, 0, 0, 0).unwrap();
    let points = 864_000usize;
    let series: Vec<Observation> = (0..points)
        .map(|i| Observation {
            sequence: 10_000_000_000 + i as u64,
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
    ours(&store, &series).await;
    let window = TimeWindow::new(day, day + chrono::Duration::days(1)).unwrap();
    let t = Instant::now();
    let read = store
        .series(
            &factorydash_core::DeviceKey::new("http://bench", "Hurco01"),
            "Hurco01-Xpos",
            &window,
            points,
        )
        .await
        .unwrap();
    let read_time = t.elapsed();
    let t = Instant::now();
    let numeric: Vec<_> = read
        .iter()
        .filter_map(|o| Some((o.timestamp, o.value.as_f64()?)))
        .collect();
    let line = factorydash_core::downsample::lttb(&numeric, 2_000);
    let lttb_time = t.elapsed();
    assert_eq!((read.len(), line.len()), (points, 2_000));
    // The same day summarised in the database: 500 buckets, at most 2,000 M4 points.
    let t = Instant::now();
    let buckets = store
        .buckets(
            &factorydash_core::DeviceKey::new("http://bench", "Hurco01"),
            "Hurco01-Xpos",
            &window,
            500,
        )
        .await
        .unwrap();
    let m4 = factorydash_core::downsample::m4_line(&buckets);
    let sql_time = t.elapsed();
    assert_eq!(buckets.iter().map(|b| b.count).sum::<usize>(), points);
    assert!(m4.len() <= 2_000);
    println!(
        "one day at 10 Hz ({points} observations) to 2,000 points: read {:.0} ms + LTTB {:.1} ms in Rust; \
         M4 buckets in PostgreSQL {:.0} ms ({} points, {:.1}x)",
        read_time.as_secs_f64() * 1e3,
        lttb_time.as_secs_f64() * 1e3,
        sql_time.as_secs_f64() * 1e3,
        m4.len(),
        (read_time + lttb_time).as_secs_f64() / sql_time.as_secs_f64()
    );

    drop(store);
    drop(client);
    db.drop().await;
}
