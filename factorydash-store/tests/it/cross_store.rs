//! The same observations through the memory store, SQLite and PostgreSQL, compared with
//! each other: what every store must answer alike, beyond what each answers on its own in
//! the conformance suite.

use chrono::{DateTime, Duration, TimeZone, Utc};
use factorydash_core::downsample::{buckets, line_value, m4_line, Bucket, LinePoint};
use factorydash_core::{Batch, Category, DeviceKey, Observation, TimeWindow, Value};
use factorydash_store::Store;

use crate::conformance::{assert_same_buckets, AGENT};

const INSTANCE: u64 = 1_796_000_000;
const DEVICE: &str = "Hurco01";
const ITEM: &str = "Hurco01-Xpos";

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 5, 10, 0, 0).unwrap()
}

fn observation(sequence: u64, timestamp: DateTime<Utc>, value: Value) -> Observation {
    Observation {
        sequence,
        timestamp,
        device: DEVICE.into(),
        component_id: "x1".into(),
        data_item_id: ITEM.into(),
        name: Some("Xact".into()),
        category: Category::Sample,
        kind: "POSITION".into(),
        sub_type: Some("ACTUAL".into()),
        value,
        condition: None,
    }
}

/// An hour of a position, one a second, with what a chart must cope with: twenty minutes
/// `UNAVAILABLE` (told at 10:20 and every five minutes, nothing else), one `UNAVAILABLE`
/// second inside a stretch of values (10:50:00), text that is no number (`n/a`),
/// integers, exponents, two observations at one instant now and then; and a second
/// instance of the agent with observations at the very (timestamp, `sequence`) of the
/// first's, one a number where the first's is `UNAVAILABLE` and one the other way round.
/// Returned as the batches to store, the second instance's first.
fn observations() -> Vec<Batch> {
    let t0 = start();
    let mut first = Vec::new();
    let mut sequence = 0;
    let mut next = || {
        sequence += 1;
        sequence
    };
    let mut ties = Vec::new();
    for i in 0..3600i64 {
        let at = t0 + Duration::seconds(i);
        let value = if (1200..2400).contains(&i) {
            if i % 300 != 0 {
                continue;
            }
            Value::Unavailable
        } else if i == 3000 {
            Value::Unavailable
        } else if i % 97 == 0 {
            Value::Text("n/a".into())
        } else if i % 13 == 0 {
            Value::Text(format!("{}", i % 50 - 25))
        } else if i % 17 == 0 {
            Value::Text("1.5e1".into())
        } else {
            Value::Text(format!("{:.3}", (i as f64 / 90.0).sin() * 100.0))
        };
        let s = next();
        if i == 1200 || i == 2400 {
            ties.push((s, at, value.is_unavailable()));
        }
        first.push(observation(s, at, value));
        if i % 250 == 0 && !(1200..2400).contains(&i) {
            first.push(observation(
                next(),
                at,
                Value::Text(format!("{}.25", i / 250)),
            ));
        }
    }
    // The other instance: at 10:20:00 a number (the first's is UNAVAILABLE), at 10:40:00
    // an UNAVAILABLE (the first's is a number).
    let second: Vec<Observation> = ties
        .iter()
        .map(|&(s, at, unavailable)| {
            let value = if unavailable {
                Value::Text("-99.5".into())
            } else {
                Value::Unavailable
            };
            observation(s, at, value)
        })
        .collect();
    assert_eq!(ties.len(), 2);
    assert!(ties[0].2 && !ties[1].2, "{ties:?}");
    let batch = |instance_id, observations: Vec<Observation>| Batch {
        agent: AGENT.into(),
        instance_id,
        next_sequence: observations.last().unwrap().sequence + 1,
        observations,
    };
    vec![batch(INSTANCE + 1, second), batch(INSTANCE, first)]
}

/// What every store must answer: core's buckets over the observations in (timestamp,
/// `sequence`, `instanceId`) order.
fn expected(batches: &[Batch], window: &TimeWindow, n: usize) -> Vec<Bucket> {
    let mut keyed: Vec<(DateTime<Utc>, u64, u64, &Value)> = batches
        .iter()
        .flat_map(|b| {
            b.observations
                .iter()
                .map(|o| (o.timestamp, o.sequence, b.instance_id, &o.value))
        })
        .collect();
    keyed.sort_by_key(|&(t, s, i, _)| (t, s, i));
    let points: Vec<LinePoint> = keyed
        .into_iter()
        .filter_map(|(t, _, _, v)| Some((t, line_value(v)?)))
        .collect();
    buckets(&points, window.from(), window.to(), n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buckets_are_the_same_in_every_store() {
    let batches = observations();
    let memory = factorydash_store::MemoryStore::new();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = factorydash_store::sqlite::SqliteStore::open(dir.path().join("test.db"))
        .await
        .unwrap();
    let postgres = crate::pg::TestDb::create("buckets_alike").await;
    let mut stores: Vec<(&str, &dyn Store)> = vec![("memory", &memory), ("sqlite", &sqlite)];
    if let Some(db) = &postgres {
        stores.push(("postgres", &db.store));
    }
    for (_, store) in &stores {
        for b in &batches {
            store.append(b).await.unwrap();
        }
    }
    let t0 = start();
    let device = DeviceKey::new(AGENT, DEVICE);
    let windows = [
        TimeWindow::new(t0, t0 + Duration::hours(1)).unwrap(),
        // From inside the UNAVAILABLE stretch, on no whole second.
        TimeWindow::new(
            t0 + Duration::minutes(25) + Duration::milliseconds(500),
            t0 + Duration::minutes(50) + Duration::microseconds(7),
        )
        .unwrap(),
    ];
    let mut broken = 0;
    for window in &windows {
        for n in [1, 6, 7, 60, 500, 3600, 100_000] {
            let want = expected(&batches, window, n);
            let line = m4_line(&want);
            broken += line.iter().filter(|p| p.1.is_none()).count();
            for (name, store) in &stores {
                let got = store.buckets(&device, ITEM, window, n).await.unwrap();
                let what = format!("{name}, {n} buckets of {window:?}");
                assert_same_buckets(&got, &want, &what);
                assert_eq!(m4_line(&got), line, "{what}");
            }
        }
    }
    // The data gives the cases their due: lines break, buckets of only UNAVAILABLE are
    // kept, and the tie of two instances decides a bucket's first and last points.
    assert!(broken > 0);
    let whole = &windows[0];
    let minutes = expected(&batches, whole, 60);
    assert!(minutes.iter().any(|b| b.count == 0 && b.unavailable > 0));
    let seconds = expected(&batches, whole, 3600);
    let at = |m: i64| t0 + Duration::minutes(m);
    let second_of = |t: DateTime<Utc>| seconds.iter().find(|b| b.start == t).unwrap();
    assert_eq!(second_of(at(20)).first, (at(20), None));
    assert_eq!(second_of(at(20)).last, (at(20), Some(-99.5)));
    assert_eq!(second_of(at(40)).first.0, at(40));
    assert!(second_of(at(40)).first.1.is_some());
    assert_eq!(second_of(at(40)).last, (at(40), None));
    if let Some(db) = postgres {
        db.drop().await;
    }
}
