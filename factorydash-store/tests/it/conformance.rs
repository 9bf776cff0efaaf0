//! What every store must do, on real NIST data.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use chrono::{Duration, TimeZone, Utc};
use factorydash_core::{
    Batch, Category, Cursor, DeviceKey, Gap, Observation, PageRequest, TimeWindow,
};
use factorydash_mtconnect::{parse_devices, parse_streams, recording::read_maybe_gzipped};
use factorydash_store::{LatestFilter, SeriesChunk, SeriesKey, Store, StoreError};

pub use crate::summaries::{
    a_stop_under_way_at_a_windows_start_keeps_when_it_began,
    summaries_agree_with_the_observations_of_a_real_agent, summaries_count_each_state_once,
};

pub const AGENT: &str = "http://127.0.0.1:5000";

/// A device of [`AGENT`].
pub fn at_agent(device: &str) -> DeviceKey {
    DeviceKey::new(AGENT, device)
}
const INSTANCE: u64 = 1_475_083_573;

pub fn recording(file: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../recordings/nist-gfagie01-2016-05-02")
        .join(file);
    read_maybe_gzipped(&path).unwrap()
}

/// The first NIST page's observations (10,049), in sequence order.
pub fn page_one() -> Vec<Observation> {
    let bytes = recording("qdr_input001.xml.gz");
    let mut o = parse_streams(&bytes).unwrap().value.to_observations();
    o.sort_by_key(|o| o.sequence);
    o
}

pub fn batch(observations: &[Observation]) -> Batch {
    Batch {
        agent: AGENT.into(),
        instance_id: INSTANCE,
        next_sequence: observations.last().map_or(1, |o| o.sequence + 1),
        observations: observations.to_vec(),
    }
}

async fn all_latest(store: &dyn Store, filter: &LatestFilter, limit: usize) -> Vec<Observation> {
    all_pages(store, filter, None, limit).await
}

/// Every page of the latest values (or of the values as of `at`), `limit` at a time.
async fn all_pages(
    store: &dyn Store,
    filter: &LatestFilter,
    at: Option<chrono::DateTime<Utc>>,
    limit: usize,
) -> Vec<Observation> {
    let mut out = Vec::new();
    let mut request = PageRequest::first(limit);
    loop {
        let page = match at {
            None => store.latest(filter, &request).await.unwrap(),
            Some(at) => store.as_of(filter, at, &request).await.unwrap(),
        };
        assert!(page.items.len() <= limit);
        out.extend(page.items.into_iter().map(|o| o.observation));
        match page.next {
            Some(next) => request.after = Some(next),
            None => return out,
        }
    }
}

pub async fn append_is_idempotent(store: &dyn Store) {
    let obs = page_one();
    let first = store.append(&batch(&obs[..6000])).await.unwrap();
    assert_eq!((first.inserted, first.duplicates), (6000, 0));
    // Overlapping batch: 1,000 already stored.
    let second = store.append(&batch(&obs[5000..])).await.unwrap();
    assert_eq!(
        (second.inserted, second.duplicates),
        (obs.len() as u64 - 6000, 1000)
    );
    let again = store.append(&batch(&obs)).await.unwrap();
    assert_eq!((again.inserted, again.duplicates), (0, obs.len() as u64));
    assert_eq!(store.observation_count().await.unwrap(), obs.len() as u64);
    // The same sequences under another instanceId are other observations.
    let mut other = batch(&obs[..10]);
    other.instance_id += 1;
    assert_eq!(store.append(&other).await.unwrap().inserted, 10);
}

/// A misbehaving agent sends a sequence again with another timestamp (in a later page and
/// twice in one page) and its `nextSequence` goes backwards: each (agent, `instanceId`,
/// `sequence`) is stored once, whatever its timestamp, and the resume point never goes back
/// within an instance.
pub async fn a_sequence_is_stored_once_whatever_its_timestamp(store: &dyn Store) {
    let obs = page_one();
    let first = store.append(&batch(&obs[..100])).await.unwrap();
    assert_eq!(first.inserted, 100);
    let resumed = store.resume_point(AGENT).await.unwrap().unwrap();
    // The same sequences again, each a day later (another UTC day: another partition on
    // PostgreSQL), with new ones after them.
    let mut again: Vec<Observation> = obs[50..150].to_vec();
    for o in &mut again {
        o.timestamp += Duration::days(1);
    }
    let mut b = batch(&again);
    // Twice in one page, with another timestamp: the first one counts.
    let mut twin = again[99].clone();
    twin.timestamp += Duration::seconds(1);
    b.observations.push(twin);
    let second = store.append(&b).await.unwrap();
    assert_eq!((second.inserted, second.duplicates), (50, 51));
    // nextSequence went backwards: the resume point stays where it was.
    let mut back = batch(&obs[..10]);
    back.next_sequence = obs[10].sequence;
    let third = store.append(&back).await.unwrap();
    assert_eq!((third.inserted, third.duplicates), (0, 10));
    let point = store.resume_point(AGENT).await.unwrap().unwrap();
    assert_eq!(point.next_sequence, obs[149].sequence + 1);
    assert!(point.next_sequence > resumed.next_sequence);
    assert_eq!(store.observation_count().await.unwrap(), 150);
    // Every stored observation of the twice-sent ones kept its first timestamp.
    let latest = all_latest(store, &LatestFilter::default(), 1000).await;
    let newest = latest
        .iter()
        .find(|o| o.sequence == obs[149].sequence)
        .unwrap();
    assert_eq!(newest.timestamp, obs[149].timestamp + Duration::days(1));
}

/// An agent that switches back and forth between two `instanceId`s (two agents behind one
/// address, or a broken one): what was stored under an instance is not stored again when
/// that instance comes back.
pub async fn an_instance_coming_back_is_not_stored_again(store: &dyn Store) {
    let obs = page_one();
    let a = batch(&obs[..10]);
    let mut b = batch(&obs[..10]);
    b.instance_id += 1;
    assert_eq!(store.append(&a).await.unwrap().inserted, 10);
    assert_eq!(store.append(&b).await.unwrap().inserted, 10);
    let again = store.append(&a).await.unwrap();
    assert_eq!((again.inserted, again.duplicates), (0, 10));
    assert_eq!(store.append(&b).await.unwrap().inserted, 0);
    assert_eq!(store.observation_count().await.unwrap(), 20);
}

/// The case an agent alternating two `instanceId`s made on PostgreSQL (30 million rows
/// for 150,000 observations): each switch back read the instance from its oldest
/// observation again, which moved the resume point back within that instance, and the
/// next pages (sent with new timestamps, in another day's partition) were taken as new.
/// Each (agent, `instanceId`, `sequence`) is stored once whatever the resume point says.
pub async fn an_instance_read_again_from_its_start_is_stored_once(store: &dyn Store) {
    let obs = page_one();
    let later = |range: std::ops::Range<usize>| {
        let mut again = obs[range].to_vec();
        for o in &mut again {
            o.timestamp += Duration::days(1);
        }
        again
    };
    assert_eq!(
        store.append(&batch(&obs[..100])).await.unwrap().inserted,
        100
    );
    let mut b = batch(&obs[..10]);
    b.instance_id += 1;
    assert_eq!(store.append(&b).await.unwrap().inserted, 10);
    // The first instance again, from its start, a page at a time, new timestamps.
    for range in [0..50, 50..100, 100..120] {
        store.append(&batch(&later(range))).await.unwrap();
    }
    assert_eq!(store.observation_count().await.unwrap(), 100 + 10 + 20);
    let point = store.resume_point(AGENT).await.unwrap().unwrap();
    assert_eq!(point.next_sequence, obs[119].sequence + 1);
    // Where each instance was left, the highest instanceId first.
    let left = store.instances(AGENT, 16).await.unwrap();
    let left: Vec<(u64, u64)> = left
        .iter()
        .map(|p| (p.instance_id, p.next_sequence))
        .collect();
    assert_eq!(
        left,
        [
            (INSTANCE + 1, obs[9].sequence + 1),
            (INSTANCE, obs[119].sequence + 1)
        ]
    );
    assert_eq!(store.instances(AGENT, 1).await.unwrap().len(), 1);
    assert!(store
        .instances("http://nobody", 16)
        .await
        .unwrap()
        .is_empty());
}

/// Sequences past what a signed 64-bit integer holds are refused (not wrapped negative),
/// and nothing of the batch is stored.
pub async fn sequences_beyond_i64_are_refused(store: &dyn Store) {
    let obs = page_one();
    let mut b = batch(&obs[..5]);
    b.observations[4].sequence = 1 << 63;
    b.next_sequence = (1 << 63) + 1;
    let refused = store.append(&b).await;
    assert!(
        matches!(refused, Err(StoreError::SequenceOutOfRange { value, .. }) if value >= 1 << 63),
        "{refused:?}"
    );
    assert_eq!(store.observation_count().await.unwrap(), 0);
    assert_eq!(store.resume_point(AGENT).await.unwrap(), None);
    let mut b = batch(&obs[..5]);
    b.instance_id = u64::MAX;
    assert!(matches!(
        store.append(&b).await,
        Err(StoreError::SequenceOutOfRange {
            what: "instanceId",
            ..
        })
    ));
}

pub async fn latest_pages_cover_every_data_item_once(store: &dyn Store) {
    let obs = page_one();
    store.append(&batch(&obs)).await.unwrap();
    let items: BTreeSet<(&str, &str)> = obs
        .iter()
        .map(|o| (o.device.as_str(), o.data_item_id.as_str()))
        .collect();
    for limit in [1, 7, 1000] {
        let latest = all_latest(store, &LatestFilter::default(), limit).await;
        let keys: Vec<(&str, &str)> = latest
            .iter()
            .map(|o| (o.device.as_str(), o.data_item_id.as_str()))
            .collect();
        // In key order, each once.
        assert_eq!(
            keys,
            items.iter().copied().collect::<Vec<_>>(),
            "limit {limit}"
        );
    }
    let only = LatestFilter::device(&at_agent("GFAgie01"));
    assert_eq!(all_latest(store, &only, 5).await.len(), items.len());
    let none = LatestFilter::device(&at_agent("Mazak03"));
    assert!(all_latest(store, &none, 5).await.is_empty());
}

pub async fn latest_filters_by_component_category_type_and_text(store: &dyn Store) {
    let obs = page_one();
    store.append(&batch(&obs)).await.unwrap();
    let everything = all_latest(store, &LatestFilter::default(), 1000).await;
    // Each filter, checked against the same filter applied to the whole list by hand, and
    // paged in small pages so the keyset walks over rows the filter skips.
    let component = everything
        .iter()
        .find(|o| o.component_id != o.device)
        .map(|o| o.component_id.clone())
        .unwrap();
    let filters = [
        LatestFilter {
            component_id: Some(component),
            ..LatestFilter::default()
        },
        LatestFilter {
            category: Some(Category::Condition),
            ..LatestFilter::default()
        },
        LatestFilter {
            device: Some("GFAgie01".into()),
            kind: Some("Execution".into()),
            ..LatestFilter::default()
        },
        LatestFilter {
            search: Some("AVAIL".into()),
            ..LatestFilter::default()
        },
        LatestFilter {
            category: Some(Category::Sample),
            search: Some("x".into()),
            ..LatestFilter::default()
        },
    ];
    for filter in filters {
        let want: Vec<&Observation> = everything
            .iter()
            .filter(|o| filter.matches(AGENT, o))
            .collect();
        assert!(!want.is_empty(), "{filter:?} matches something");
        assert!(
            want.len() < everything.len(),
            "{filter:?} leaves something out"
        );
        let got = all_latest(store, &filter, 3).await;
        assert_eq!(got.iter().collect::<Vec<_>>(), want, "{filter:?}");
    }
}

pub async fn latest_is_the_highest_sequence_whatever_the_order(store: &dyn Store) {
    let obs = page_one();
    // Newest page first, then the older half.
    store.append(&batch(&obs[5000..])).await.unwrap();
    store.append(&batch(&obs[..5000])).await.unwrap();
    let mut want: BTreeMap<&str, &Observation> = BTreeMap::new();
    for o in &obs {
        want.insert(&o.data_item_id, o);
    }
    let latest = all_latest(store, &LatestFilter::default(), 100).await;
    assert_eq!(latest.len(), want.len());
    for o in latest {
        assert_eq!(&o, want[o.data_item_id.as_str()], "{}", o.data_item_id);
    }
}

pub async fn series_is_the_window_in_time_order(store: &dyn Store) {
    let obs = page_one();
    store.append(&batch(&obs)).await.unwrap();
    let item = "GFAgie01-X_2";
    let from = Utc.with_ymd_and_hms(2016, 5, 2, 14, 50, 0).unwrap();
    let window = TimeWindow::new(from, from + Duration::minutes(10)).unwrap();
    let mut want: Vec<&Observation> = obs
        .iter()
        .filter(|o| o.data_item_id == item && window.contains(o.timestamp))
        .collect();
    want.sort_by_key(|o| (o.timestamp, o.sequence));
    assert!(want.len() > 100, "the window holds data: {}", want.len());
    let got = store
        .series(&at_agent("GFAgie01"), item, &window, 100_000)
        .await
        .unwrap();
    assert_eq!(got.iter().collect::<Vec<_>>(), want);
    let capped = store
        .series(&at_agent("GFAgie01"), item, &window, 10)
        .await
        .unwrap();
    assert_eq!(capped.iter().collect::<Vec<_>>(), want[..10]);
    assert!(store
        .series(&at_agent("GFAgie01"), "nope", &window, 10)
        .await
        .unwrap()
        .is_empty());
}

/// Every chunk of `series_after` over `window`, `limit` at a time, from the start: the
/// observations, each chunk checked to hold at most `limit` and to end where `next` says.
async fn all_chunks(
    store: &dyn Store,
    device: &DeviceKey,
    item: &str,
    window: &TimeWindow,
    limit: usize,
) -> Vec<Observation> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let chunk = store
            .series_after(device, item, window, after, limit)
            .await
            .unwrap();
        assert!(chunk.observations.len() <= limit.max(1));
        out.extend(chunk.observations);
        match chunk.next {
            Some(next) => {
                let last = out.last().expect("a chunk with a next key holds something");
                assert_eq!(
                    (next.timestamp, next.sequence),
                    (last.timestamp, last.sequence)
                );
                after = Some(next);
            }
            None => return out,
        }
    }
}

pub async fn series_after_reads_a_window_chunk_by_chunk_in_order(store: &dyn Store) {
    let obs = page_one();
    store.append(&batch(&obs)).await.unwrap();
    let item = "GFAgie01-X_2";
    let from = Utc.with_ymd_and_hms(2016, 5, 2, 14, 50, 0).unwrap();
    let window = TimeWindow::new(from, from + Duration::minutes(10)).unwrap();
    let mut want: Vec<&Observation> = obs
        .iter()
        .filter(|o| o.data_item_id == item && window.contains(o.timestamp))
        .collect();
    want.sort_by_key(|o| (o.timestamp, o.sequence));
    assert!(want.len() > 100, "the window holds data: {}", want.len());
    let device = at_agent("GFAgie01");
    for limit in [1, 7, want.len() - 1, want.len(), 100_000] {
        let got = all_chunks(store, &device, item, &window, limit).await;
        assert_eq!(got.iter().collect::<Vec<_>>(), want, "chunks of {limit}");
    }
    // The last chunk says it is the last, even when exactly full.
    let whole = store
        .series_after(&device, item, &window, None, want.len())
        .await
        .unwrap();
    assert_eq!(whole.observations.len(), want.len());
    assert_eq!(whole.next, None);
    // A key before the window starts at the window; nothing of another data item, device
    // or agent.
    let early = SeriesKey {
        timestamp: from - Duration::days(1),
        sequence: u64::MAX,
        instance_id: u64::MAX,
    };
    let chunk = store
        .series_after(&device, item, &window, Some(early), 3)
        .await
        .unwrap();
    assert_eq!(chunk.observations.iter().collect::<Vec<_>>(), want[..3]);
    for (device, item) in [
        (device.clone(), "nope"),
        (at_agent("nope"), item),
        (DeviceKey::new("http://nope", "GFAgie01"), item),
    ] {
        let chunk = store
            .series_after(&device, item, &window, None, 10)
            .await
            .unwrap();
        assert_eq!(chunk, SeriesChunk::default(), "{device:?} {item}");
    }
}

/// The case the old export could not bound: far more observations than a chunk sharing
/// ONE timestamp, and two instances of the agent repeating each (timestamp, sequence)
/// (an agent restarted with its clock and sequences reset, or two agents behind one
/// address), beside another agent's device of the same name with the same rows.
pub async fn series_after_reads_rows_at_one_instant_once_each(store: &dyn Store) {
    const OTHER: &str = "http://127.0.0.2:5000";
    const ROWS: u64 = 2_500;
    let at = Utc.with_ymd_and_hms(2016, 5, 2, 15, 0, 0).unwrap();
    let window = TimeWindow::new(at - Duration::seconds(10), at + Duration::seconds(10)).unwrap();
    let make = |instance: u64, sequence: u64, timestamp| Observation {
        sequence,
        timestamp,
        device: "Flood".into(),
        component_id: "x".into(),
        data_item_id: "flood_x".into(),
        name: Some("Xpos".into()),
        category: Category::Sample,
        kind: "Position".into(),
        sub_type: None,
        value: factorydash_core::Value::Text(format!("{instance}/{sequence}")),
        condition: None,
    };
    // Per instance: one row before the window, one just before `at`, ROWS at `at`, one
    // after it, one at the window's end (outside).
    let rows = |instance: u64| -> Vec<Observation> {
        let mut rows = vec![
            make(instance, 1, window.from() - Duration::microseconds(1)),
            make(instance, 2, at - Duration::seconds(1)),
        ];
        rows.extend((3..3 + ROWS).map(|s| make(instance, s, at)));
        rows.push(make(instance, 3 + ROWS, at + Duration::seconds(1)));
        rows.push(make(instance, 4 + ROWS, window.to()));
        rows
    };
    // The higher instance stored first: the order read is the key's, not the order stored.
    for (agent, instance) in [(AGENT, INSTANCE + 1), (AGENT, INSTANCE), (OTHER, INSTANCE)] {
        let observations = rows(instance);
        let b = Batch {
            agent: agent.into(),
            instance_id: instance,
            next_sequence: observations.len() as u64 + 1,
            observations,
        };
        assert_eq!(store.append(&b).await.unwrap().inserted, ROWS + 4);
    }
    // In key order: (timestamp, sequence, instanceId).
    let mut want: Vec<(chrono::DateTime<Utc>, u64, u64)> = Vec::new();
    for instance in [INSTANCE, INSTANCE + 1] {
        for o in rows(instance) {
            if window.contains(o.timestamp) {
                want.push((o.timestamp, o.sequence, instance));
            }
        }
    }
    want.sort();
    assert_eq!(want.len() as u64, 2 * (ROWS + 2));
    let device = DeviceKey::new(AGENT, "Flood");
    for limit in [0, 7, 1000, 2 * ROWS as usize + 4] {
        let got: Vec<(chrono::DateTime<Utc>, u64, u64)> =
            all_chunks(store, &device, "flood_x", &window, limit)
                .await
                .iter()
                .map(|o| {
                    let text = o.value.as_text().unwrap();
                    let (instance, sequence) = text.split_once('/').unwrap();
                    assert_eq!(sequence, o.sequence.to_string(), "{o:?}");
                    (o.timestamp, o.sequence, instance.parse().unwrap())
                })
                .collect();
        assert_eq!(got.len(), want.len(), "chunks of {limit}");
        assert!(
            got == want,
            "chunks of {limit}: every row once, in key order"
        );
    }
    // After one instance's row, the other's of the same (timestamp, sequence) comes next;
    // a chunk ends with a whole (timestamp, sequence) or says where it stopped.
    let chunk = store
        .series_after(
            &device,
            "flood_x",
            &window,
            Some(SeriesKey {
                timestamp: at,
                sequence: 10,
                instance_id: INSTANCE,
            }),
            3,
        )
        .await
        .unwrap();
    let values: Vec<&str> = chunk
        .observations
        .iter()
        .map(|o| o.value.as_text().unwrap())
        .collect();
    assert!(values.len() <= 3);
    assert_eq!(values[0], format!("{}/10", INSTANCE + 1));
    let last = chunk.observations.last().unwrap();
    let instance: u64 = values[values.len() - 1]
        .split_once('/')
        .unwrap()
        .0
        .parse()
        .unwrap();
    assert_eq!(
        chunk.next,
        Some(SeriesKey {
            timestamp: last.timestamp,
            sequence: last.sequence,
            instance_id: instance,
        })
    );
    // Numbers past what a store holds, or an instant between two microseconds (what the
    // databases store): after everything at `at`.
    for (timestamp, sequence, instance_id) in [
        (at, u64::MAX, 0),
        (at, ROWS + 2, u64::MAX),
        (at + Duration::nanoseconds(500), 0, 0),
    ] {
        let after = SeriesKey {
            timestamp,
            sequence,
            instance_id,
        };
        let chunk = store
            .series_after(&device, "flood_x", &window, Some(after), 1)
            .await
            .unwrap();
        assert_eq!(chunk.observations.len(), 1, "{after:?}");
        assert_eq!(chunk.observations[0].timestamp, at + Duration::seconds(1));
        assert_eq!(
            chunk.observations[0].value.as_text(),
            Some(format!("{INSTANCE}/{}", ROWS + 3).as_str())
        );
    }
}

pub async fn buckets_summarise_a_window_as_core_does(store: &dyn Store) {
    use factorydash_core::downsample::{buckets, line_value, LinePoint};
    let obs = page_one();
    store.append(&batch(&obs)).await.unwrap();
    let from = Utc.with_ymd_and_hms(2016, 5, 2, 14, 50, 0).unwrap();
    // 10 minutes and 7 µs: not a multiple of the bucket count, so a short last bucket.
    let window = TimeWindow::new(
        from,
        from + Duration::minutes(10) + Duration::microseconds(7),
    )
    .unwrap();
    let drawn = |item: &str| -> Vec<LinePoint> {
        let mut window_obs: Vec<&Observation> = obs
            .iter()
            .filter(|o| o.data_item_id == item && window.contains(o.timestamp))
            .collect();
        window_obs.sort_by_key(|o| (o.timestamp, o.sequence));
        window_obs
            .iter()
            .filter_map(|o| Some((o.timestamp, line_value(&o.value)?)))
            .collect()
    };
    let item = "GFAgie01-X_2";
    let points = drawn(item);
    assert!(points.len() > 100);
    let numbers = points.iter().filter(|p| p.1.is_some()).count();
    for n in [1, 7, 60, 100_000] {
        let want = buckets(&points, window.from(), window.to(), n);
        let got = store
            .buckets(&at_agent("GFAgie01"), item, &window, n)
            .await
            .unwrap();
        assert_same_buckets(&got, &want, &format!("{n} buckets"));
        assert_eq!(got.iter().map(|b| b.count).sum::<usize>(), numbers);
    }
    // Text is left out, UNAVAILABLE kept: an Event's buckets hold only its UNAVAILABLEs,
    // without numbers.
    let availability = drawn("GFAgie01-dtop_1");
    let got = store
        .buckets(&at_agent("GFAgie01"), "GFAgie01-dtop_1", &window, 10)
        .await
        .unwrap();
    assert_eq!(
        got,
        buckets(&availability, window.from(), window.to(), 10),
        "{availability:?}"
    );
    assert!(got.iter().all(|b| b.count == 0 && b.min.is_none()));
    assert_eq!(
        got.iter().map(|b| b.unavailable).sum::<usize>(),
        availability.len()
    );
}

/// `got` and `want` are the same buckets; the means may differ by floating-point rounding
/// (PostgreSQL sums in its own order), nothing else may.
pub fn assert_same_buckets(
    got: &[factorydash_core::downsample::Bucket],
    want: &[factorydash_core::downsample::Bucket],
    what: &str,
) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (g, w) in got.iter().zip(want) {
        match (g.mean, w.mean) {
            (Some(g), Some(w)) => assert!(
                (g - w).abs() <= 1e-9 * w.abs().max(1.0),
                "{what}: mean {g} vs {w}"
            ),
            (g, w) => assert_eq!(g, w, "{what}: mean"),
        }
        let (mut g, mut w) = (*g, *w);
        (g.mean, w.mean) = (None, None);
        assert_eq!(g, w, "{what}");
    }
}

pub async fn resume_point_and_gaps_are_kept(store: &dyn Store) {
    assert_eq!(store.resume_point(AGENT).await.unwrap(), None);
    let obs = page_one();
    store.append(&batch(&obs[..100])).await.unwrap();
    let point = store.resume_point(AGENT).await.unwrap().unwrap();
    assert_eq!(
        (point.instance_id, point.next_sequence),
        (INSTANCE, obs[99].sequence + 1)
    );
    // An empty batch (nothing new) still moves the resume point.
    let mut empty = batch(&[]);
    empty.next_sequence = 5000;
    store.append(&empty).await.unwrap();
    assert_eq!(
        store
            .resume_point(AGENT)
            .await
            .unwrap()
            .unwrap()
            .next_sequence,
        5000
    );
    let gap = Gap {
        agent: AGENT.into(),
        instance_id: INSTANCE,
        from: 5000,
        to: Some(6000),
    };
    let restart = Gap {
        agent: AGENT.into(),
        instance_id: INSTANCE,
        from: 7000,
        to: None,
    };
    store.record_gap(&gap).await.unwrap();
    store.record_gap(&restart).await.unwrap();
    assert_eq!(
        store.gaps().await.unwrap(),
        vec![gap.clone(), restart.clone()]
    );
    // The agent answers with that instance again: its gap of unknown end was no loss; a
    // known one stays, and so does another agent's or another instance's.
    let elsewhere = [
        Gap {
            agent: "http://other.example".into(),
            ..restart.clone()
        },
        Gap {
            instance_id: INSTANCE + 1,
            ..restart.clone()
        },
    ];
    for g in &elsewhere {
        store.record_gap(g).await.unwrap();
    }
    assert_eq!(store.withdraw_open_gaps(AGENT, INSTANCE).await.unwrap(), 1);
    assert_eq!(store.withdraw_open_gaps(AGENT, INSTANCE).await.unwrap(), 0);
    let [other_agent, other_instance] = elsewhere;
    assert_eq!(
        store.gaps().await.unwrap(),
        vec![gap, other_agent, other_instance]
    );
}

pub async fn prune_drops_whole_days_and_keeps_the_latest_values(store: &dyn Store) {
    // The real page spans minutes of 2016-05-02: move its first third two days back and its
    // second third one day back, so that it covers three UTC days.
    let mut obs = page_one();
    let third = obs.len() / 3;
    for (i, o) in obs.iter_mut().enumerate() {
        o.timestamp -= Duration::days(match i / third {
            0 => 2,
            1 => 1,
            _ => 0,
        });
    }
    store.append(&batch(&obs)).await.unwrap();
    let before = all_latest(store, &LatestFilter::default(), 100).await;
    let midnight = Utc.with_ymd_and_hms(2016, 5, 2, 0, 0, 0).unwrap();
    let old = obs.iter().filter(|o| o.timestamp < midnight).count() as u64;
    assert!(old > 0 && old < obs.len() as u64);
    // A cutoff in the middle of the newest day drops the two whole days before it, not the
    // part of its own day before it.
    let cutoff = Utc.with_ymd_and_hms(2016, 5, 2, 23, 0, 0).unwrap();
    assert!(obs
        .iter()
        .any(|o| o.timestamp >= midnight && o.timestamp < cutoff));
    assert_eq!(store.prune(cutoff).await.unwrap(), old);
    assert_eq!(
        store.observation_count().await.unwrap(),
        obs.len() as u64 - old
    );
    assert_eq!(
        store.prune(cutoff).await.unwrap(),
        0,
        "nothing left to drop"
    );
    assert_eq!(
        all_latest(store, &LatestFilter::default(), 100).await,
        before
    );
    // A late observation of a dropped day is stored again.
    let mut late = obs[0].clone();
    late.sequence = obs.iter().map(|o| o.sequence).max().unwrap() + 1;
    let mut b = batch(&[late]);
    b.next_sequence = b.observations[0].sequence + 1;
    assert_eq!(store.append(&b).await.unwrap().inserted, 1);
    assert_eq!(
        store.observation_count().await.unwrap(),
        obs.len() as u64 - old + 1
    );
}

/// The store's state intervals and shares are core's on the same observations, a page at
/// a time, starting from the state held when the window began.
pub async fn state_summary_is_what_core_computes(store: &dyn Store) {
    use factorydash_core::states::{intervals, shares};
    let obs = page_one();
    store.append(&batch(&obs)).await.unwrap();
    // The data item reported most often on this page (the store computes the intervals of
    // any data item's values; the server asks only of state-like Events, which in these
    // minutes of one machine change a few times at most).
    let mut changes: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for o in &obs {
        *changes.entry((&o.device, &o.data_item_id)).or_default() += 1;
    }
    let (&(name, item), &n) = changes.iter().max_by_key(|(_, n)| **n).unwrap();
    assert!(n >= 10, "{name} {item}: {n}");
    let device = &at_agent(name);
    let mut series: Vec<&Observation> = obs.iter().filter(|o| o.data_item_id == item).collect();
    series.sort_by_key(|o| (o.timestamp, o.sequence));
    // From the middle of the series (a state held before the window) to past its end.
    let from = series[series.len() / 2].timestamp - Duration::milliseconds(1);
    let window = TimeWindow::new(
        from,
        series.last().unwrap().timestamp + Duration::minutes(5),
    )
    .unwrap();
    let before = series
        .iter()
        .rev()
        .find(|o| o.timestamp < from)
        .map(|o| &o.value);
    let points: Vec<_> = series
        .iter()
        .map(|o| (o.timestamp, o.value.clone()))
        .collect();
    let want = intervals(before, &points, &window);
    assert!(want.len() > 3, "{want:?}");
    let mut got = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .state_summary(device, item, &window, after, 100)
            .await
            .unwrap();
        assert!(page.intervals.len() <= 100);
        let want_shares = shares(&want);
        assert_eq!(page.shares.len(), want_shares.len());
        for (g, w) in page.shares.iter().zip(&want_shares) {
            assert_eq!(g.state, w.state);
            assert!((g.seconds - w.seconds).abs() < 1e-6, "{g:?} {w:?}");
        }
        got.extend(page.intervals);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(got, want);
    // A window before anything was stored holds no state.
    let early = TimeWindow::new(from - Duration::days(400), from - Duration::days(399)).unwrap();
    let empty = store
        .state_summary(device, item, &early, None, 3)
        .await
        .unwrap();
    assert!(empty.intervals.is_empty() && empty.shares.is_empty() && empty.next.is_none());
}

pub async fn last_before_is_the_value_as_of_an_instant(store: &dyn Store) {
    let obs = page_one();
    store.append(&batch(&obs)).await.unwrap();
    let item = "GFAgie01-dtop_1";
    let at = Utc.with_ymd_and_hms(2016, 5, 2, 15, 0, 0).unwrap();
    let want = obs
        .iter()
        .filter(|o| o.data_item_id == item && o.timestamp < at)
        .max_by_key(|o| (o.timestamp, o.sequence))
        .unwrap();
    assert_eq!(
        store
            .last_before(&at_agent("GFAgie01"), item, at)
            .await
            .unwrap()
            .as_ref(),
        Some(want)
    );
    let early = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap();
    assert_eq!(
        store
            .last_before(&at_agent("GFAgie01"), item, early)
            .await
            .unwrap(),
        None
    );
    // After retention dropped the history, the latest value still answers for later instants.
    store
        .prune(Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap())
        .await
        .unwrap();
    let late = Utc.with_ymd_and_hms(2030, 1, 2, 0, 0, 0).unwrap();
    let latest = store
        .last_before(&at_agent("GFAgie01"), item, late)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        latest.sequence,
        obs.iter()
            .filter(|o| o.data_item_id == item)
            .map(|o| o.sequence)
            .max()
            .unwrap()
    );
}

async fn all_as_of(
    store: &dyn Store,
    filter: &LatestFilter,
    at: chrono::DateTime<Utc>,
    limit: usize,
) -> Vec<Observation> {
    all_pages(store, filter, Some(at), limit).await
}

pub async fn as_of_gives_every_data_item_at_an_instant(store: &dyn Store) {
    let obs = page_one();
    store.append(&batch(&obs)).await.unwrap();
    // The expected answer, straight from the document: per data item, the newest
    // observation at or before the instant.
    let expected = |at: chrono::DateTime<Utc>, category: Option<Category>| {
        let mut held: BTreeMap<(String, String), &Observation> = BTreeMap::new();
        for o in obs.iter().filter(|o| o.timestamp <= at) {
            if category.is_some_and(|c| c != o.category) {
                continue;
            }
            let key = (o.device.clone(), o.data_item_id.clone());
            let newer = held
                .get(&key)
                .is_none_or(|h| (o.timestamp, o.sequence) > (h.timestamp, h.sequence));
            if newer {
                held.insert(key, o);
            }
        }
        held.into_values().cloned().collect::<Vec<_>>()
    };
    let at = Utc.with_ymd_and_hms(2016, 5, 2, 15, 0, 0).unwrap();
    let want = expected(at, None);
    assert!(
        want.len() > 20,
        "the instant sees {} data items",
        want.len()
    );
    // Some data items changed after the instant: the answer is not the latest values.
    let latest = all_latest(store, &LatestFilter::default(), 1000).await;
    assert!(want.len() < latest.len() || want.iter().zip(&latest).any(|(w, l)| w != l));
    assert_eq!(
        all_as_of(store, &LatestFilter::default(), at, 7).await,
        want
    );
    let samples = LatestFilter {
        category: Some(Category::Sample),
        ..LatestFilter::default()
    };
    assert_eq!(
        all_as_of(store, &samples, at, 5).await,
        expected(at, Some(Category::Sample))
    );
    // An observation exactly at the instant is held at it.
    let exact = &want[want.len() / 2];
    let again = all_as_of(
        store,
        &LatestFilter::device(&at_agent(&exact.device)),
        exact.timestamp,
        100,
    )
    .await;
    assert!(again.contains(exact));
    let early = Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap();
    assert!(all_as_of(store, &LatestFilter::default(), early, 10)
        .await
        .is_empty());
    // After retention dropped the history, the latest values answer for later instants.
    store
        .prune(Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap())
        .await
        .unwrap();
    let late = Utc.with_ymd_and_hms(2030, 1, 2, 0, 0, 0).unwrap();
    assert_eq!(
        all_as_of(store, &LatestFilter::default(), late, 50).await,
        latest
    );
}

pub async fn conditions_of_a_window_give_the_real_fault_episodes(store: &dyn Store) {
    // Pages 6 to 10 of the NIST recording hold GFAgie01's real Faults (feed override 0 %,
    // limit switch Y+, search address missing) and the Normals that cleared them.
    let mut obs = Vec::new();
    for page in 6..=10 {
        let bytes = recording(&format!("qdr_input{page:03}.xml.gz"));
        obs.extend(parse_streams(&bytes).unwrap().value.to_observations());
    }
    obs.sort_by_key(|o| o.sequence);
    store.append(&batch(&obs)).await.unwrap();
    let window = TimeWindow::new(
        Utc.with_ymd_and_hms(2016, 5, 2, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2016, 5, 4, 0, 0, 0).unwrap(),
    )
    .unwrap();
    let mut want: Vec<&Observation> = obs
        .iter()
        .filter(|o| o.category == Category::Condition && window.contains(o.timestamp))
        .collect();
    want.sort_by_key(|o| (o.timestamp, o.sequence));
    let got_from = store
        .conditions(None, &window, None, 100_000)
        .await
        .unwrap();
    assert!(got_from.iter().all(|o| o.agent == AGENT));
    let got: Vec<Observation> = got_from.iter().map(|o| o.observation.clone()).collect();
    assert_eq!(got.iter().collect::<Vec<_>>(), want);
    assert_eq!(
        store.conditions(None, &window, None, 3).await.unwrap(),
        got_from[..3]
    );
    // Read in chunks, keyset by (timestamp, sequence, agent): the same observations.
    let mut chunked = Vec::new();
    let mut after: Option<(chrono::DateTime<Utc>, u64, String)> = None;
    loop {
        let chunk = store
            .conditions(
                None,
                &window,
                after.as_ref().map(|(t, s, a)| (*t, *s, a.as_str())),
                2,
            )
            .await
            .unwrap();
        let Some(last) = chunk.last() else { break };
        after = Some((
            last.observation.timestamp,
            last.observation.sequence,
            last.agent.clone(),
        ));
        chunked.extend(chunk);
    }
    assert_eq!(chunked, got_from);
    assert!(store
        .conditions(Some(&[at_agent("Mazak03")]), &window, None, 100)
        .await
        .unwrap()
        .is_empty());

    let episodes = factorydash_core::episodes::episodes(&got);
    let faults = obs
        .iter()
        .filter(|o| {
            o.condition.as_ref().is_some_and(|c| {
                c.level >= factorydash_core::ConditionLevel::Warning
                    && c.level <= factorydash_core::ConditionLevel::Fault
            })
        })
        .count();
    assert!(
        !episodes.is_empty() && episodes.len() <= faults,
        "{} episodes, {faults} warnings and faults, {} conditions",
        episodes.len(),
        got.len()
    );
    let y = episodes
        .iter()
        .find(|e| e.native_code.as_deref() == Some("454A"))
        .unwrap();
    assert_eq!(y.message, "Limit switch Y+");
    assert_eq!(y.data_item_id, "GFAgie01-dtop_3");
    assert_eq!(
        y.began,
        Utc.with_ymd_and_hms(2016, 5, 2, 20, 36, 54).unwrap() + Duration::microseconds(43_538)
    );
    assert_eq!(
        y.ended,
        Some(
            Utc.with_ymd_and_hms(2016, 5, 2, 20, 36, 55).unwrap() + Duration::microseconds(51_397)
        )
    );
}

/// Two agents that both serve a device named `GFAgie01` (the same recording, the second
/// agent's values marked): every data item is kept twice, once per agent, and each read of
/// one device gives that agent's observations only.
pub async fn two_agents_serving_one_device_name_are_kept_apart(store: &dyn Store) {
    // With credentials, which no page cursor may carry (cursors are shown to readers).
    const OTHER: &str = "http://user:s3cret@127.0.0.2:5000";
    let obs = page_one();
    let theirs: Vec<Observation> = obs
        .iter()
        .map(|o| Observation {
            value: factorydash_core::Value::Text(format!("other {}", o.sequence)),
            ..o.clone()
        })
        .collect();
    store.append(&batch(&obs)).await.unwrap();
    let mut b = batch(&theirs);
    b.agent = OTHER.into();
    assert_eq!(store.append(&b).await.unwrap().inserted, obs.len() as u64);
    assert_eq!(
        store.observation_count().await.unwrap(),
        2 * obs.len() as u64
    );

    // Every data item twice, in (device, agent, dataItemId) order, paged in small pages.
    let items: BTreeSet<(&str, &str)> = obs
        .iter()
        .map(|o| (o.device.as_str(), o.data_item_id.as_str()))
        .collect();
    let mut want = Vec::new();
    for (device, item) in &items {
        for agent in [AGENT, OTHER] {
            want.push((device.to_string(), agent.to_string(), item.to_string()));
        }
    }
    want.sort();
    let mut got = Vec::new();
    let mut request = PageRequest::first(7);
    loop {
        let page = store
            .latest(&LatestFilter::default(), &request)
            .await
            .unwrap();
        for o in &page.items {
            let marked = o
                .observation
                .value
                .as_text()
                .unwrap_or("")
                .starts_with("other ");
            assert_eq!(marked, o.agent == OTHER, "{o:?}");
        }
        got.extend(
            page.items
                .into_iter()
                .map(|o| (o.observation.device, o.agent, o.observation.data_item_id)),
        );
        match page.next {
            Some(next) => {
                assert!(
                    !next.key().unwrap().concat().contains("s3cret"),
                    "{:?}",
                    next.key()
                );
                request.after = Some(next)
            }
            None => break,
        }
    }
    assert_eq!(got, want);

    // One device: that agent's only.
    let other = DeviceKey::new(OTHER, "GFAgie01");
    let mine = at_agent("GFAgie01");
    let their_latest = all_latest(store, &LatestFilter::device(&other), 50).await;
    assert_eq!(their_latest.len(), items.len());
    assert!(their_latest
        .iter()
        .all(|o| o.value.as_text().unwrap_or("").starts_with("other ")));
    let by_agent = LatestFilter {
        agent: Some(OTHER.into()),
        ..LatestFilter::default()
    };
    assert_eq!(all_latest(store, &by_agent, 50).await, their_latest);

    let window = TimeWindow::new(
        Utc.with_ymd_and_hms(2016, 1, 1, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2017, 1, 1, 0, 0, 0).unwrap(),
    )
    .unwrap();
    let item = obs
        .iter()
        .find(|o| o.category == Category::Sample && o.value.as_f64().is_some())
        .unwrap()
        .data_item_id
        .clone();
    let own = store.series(&mine, &item, &window, 100_000).await.unwrap();
    let others = store.series(&other, &item, &window, 100_000).await.unwrap();
    assert_eq!(own.len(), others.len());
    assert!(own.iter().any(|o| o.value.as_f64().is_some()));
    assert!(others
        .iter()
        .all(|o| o.value.as_text().unwrap_or("").starts_with("other ")));
    // The other agent's values are not numbers: no buckets; ours are.
    assert!(store
        .buckets(&other, &item, &window, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(!store
        .buckets(&mine, &item, &window, 10)
        .await
        .unwrap()
        .is_empty());
    let at = window.to();
    let held = store.last_before(&other, &item, at).await.unwrap().unwrap();
    assert_eq!(held.value, others.last().unwrap().value);
    let summary = store
        .state_summary(&other, &item, &window, None, 10_000)
        .await
        .unwrap();
    assert!(summary.shares.iter().all(|s| s.state.starts_with("other ")));
    // Conditions of one device, and of all with their agents.
    let conditions = store
        .conditions(Some(std::slice::from_ref(&other)), &window, None, 100_000)
        .await
        .unwrap();
    assert!(!conditions.is_empty());
    assert!(conditions.iter().all(|o| o.agent == OTHER));
    let all = store
        .conditions(None, &window, None, 100_000)
        .await
        .unwrap();
    assert_eq!(all.len(), 2 * conditions.len());
    // An agent never seen has nothing.
    let nobody = DeviceKey::new("http://127.0.0.3:5000", "GFAgie01");
    assert!(store
        .series(&nobody, &item, &window, 10)
        .await
        .unwrap()
        .is_empty());
}

pub async fn configured_agents_are_kept(store: &dyn Store) {
    use factorydash_store::ConfiguredAgent;
    let a = ConfiguredAgent {
        url: "http://10.0.0.5:5000".into(),
        paused: false,
    };
    let b = ConfiguredAgent {
        url: "http://10.0.0.6:5000/Mazak".into(),
        paused: false,
    };
    store.put_configured_agent(&a).await.unwrap();
    store.put_configured_agent(&b).await.unwrap();
    let paused = ConfiguredAgent {
        paused: true,
        ..a.clone()
    };
    store.put_configured_agent(&paused).await.unwrap();
    assert_eq!(
        store.configured_agents().await.unwrap(),
        vec![paused, b.clone()]
    );
    assert!(store.remove_configured_agent(&a.url).await.unwrap());
    assert!(!store.remove_configured_agent(&a.url).await.unwrap());
    assert_eq!(store.configured_agents().await.unwrap(), vec![b.clone()]);
}

/// An agent's credentials are kept apart from its URL: listed without them, read back
/// only by `agent_credentials`, kept when the agent is paused by its bare URL, replaced
/// when given again, and forgotten with the agent.
pub async fn configured_agents_keep_their_credentials_apart(store: &dyn Store) {
    use factorydash_store::{ConfiguredAgent, Credentials};
    let bare = "http://10.0.0.7:5000/vds";
    let with = |userinfo: &str, paused| ConfiguredAgent {
        url: format!("http://{userinfo}@10.0.0.7:5000/vds"),
        paused,
    };
    store
        .put_configured_agent(&with("user:s%40cret", false))
        .await
        .unwrap();
    let listed = ConfiguredAgent {
        url: bare.into(),
        paused: false,
    };
    assert_eq!(
        store.configured_agents().await.unwrap(),
        vec![listed.clone()]
    );
    let secret = Some(Credentials::new("user", Some("s%40cret".into())));
    assert_eq!(store.agent_credentials(bare).await.unwrap(), secret);
    // Paused by its URL as listed: the credentials stay.
    let paused = ConfiguredAgent {
        paused: true,
        ..listed.clone()
    };
    store.put_configured_agent(&paused).await.unwrap();
    assert_eq!(store.configured_agents().await.unwrap(), vec![paused]);
    assert_eq!(store.agent_credentials(bare).await.unwrap(), secret);
    // Given again with others: one agent, the new credentials.
    store
        .put_configured_agent(&with("token", false))
        .await
        .unwrap();
    assert_eq!(store.configured_agents().await.unwrap(), vec![listed]);
    assert_eq!(
        store.agent_credentials(bare).await.unwrap(),
        Some(Credentials::new("token", None))
    );
    assert_eq!(
        store
            .agent_credentials("http://10.0.0.8:5000")
            .await
            .unwrap(),
        None
    );
    // Removed (by either form): its credentials go too.
    assert!(store
        .remove_configured_agent(&with("token", false).url)
        .await
        .unwrap());
    assert_eq!(store.configured_agents().await.unwrap(), vec![]);
    assert_eq!(store.agent_credentials(bare).await.unwrap(), None);
}

pub async fn devices_round_trip(store: &dyn Store) {
    let probe = recording("probe.xml.gz");
    let devices = parse_devices(&probe).unwrap().value.device_infos(AGENT);
    store.put_devices(AGENT, &devices).await.unwrap();
    store.put_devices(AGENT, &devices).await.unwrap();
    assert_eq!(store.devices().await.unwrap(), devices);
    assert_eq!(devices[0].data_items.len(), 25);
}

pub async fn a_forged_cursor_is_an_error(store: &dyn Store) {
    let one_part = Cursor::from_key(&["only-one-part"]);
    for bad in ["zz", one_part.as_str()] {
        let request = PageRequest {
            after: Some(Cursor::from_string(bad)),
            limit: 10,
        };
        let result = store.latest(&LatestFilter::default(), &request).await;
        assert!(
            matches!(result, Err(StoreError::InvalidCursor(_))),
            "{bad}: {result:?}"
        );
    }
}

/// Memory only: the cap keeps the newest observations and every latest value.
pub async fn a_capped_memory_store_keeps_the_newest_and_every_latest_value() {
    let obs = page_one();
    let capped = factorydash_store::MemoryStore::with_limit(5_000);
    let unbounded = factorydash_store::MemoryStore::new();
    for chunk in obs.chunks(1_000) {
        capped.append(&batch(chunk)).await.unwrap();
        unbounded.append(&batch(chunk)).await.unwrap();
        assert!(capped.observation_count().await.unwrap() <= 5_000);
    }
    let kept = capped.observation_count().await.unwrap();
    assert!(kept >= 4_500, "{kept}");
    assert_eq!(
        all_latest(&capped, &LatestFilter::default(), 100).await,
        all_latest(&unbounded, &LatestFilter::default(), 100).await
    );
    // What is kept is the newest: no dropped observation is newer than a kept one.
    let everything = TimeWindow::new(
        Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2100, 1, 1, 0, 0, 0).unwrap(),
    )
    .unwrap();
    let mut kept_times = Vec::new();
    let mut items: BTreeSet<(&str, &str)> = BTreeSet::new();
    for o in &obs {
        items.insert((&o.device, &o.data_item_id));
    }
    for (device, item) in items {
        for o in capped
            .series(&at_agent(device), item, &everything, usize::MAX)
            .await
            .unwrap()
        {
            kept_times.push((o.timestamp, o.sequence));
        }
    }
    assert_eq!(kept_times.len() as u64, kept);
    let oldest_kept = kept_times.iter().min().unwrap();
    let mut all_times: Vec<_> = obs.iter().map(|o| (o.timestamp, o.sequence)).collect();
    all_times.sort();
    assert_eq!(all_times[all_times.len() - kept as usize], *oldest_kept);
}

// ---------------------------------------------------------------------------------------
// Device allow-lists.

/// Agent A serves `M1` and `M2`, agent B another `M1`: a device name two agents share.
const AGENT_A: &str = "http://10.0.0.1:5000";
const AGENT_B: &str = "http://10.0.0.2:5000";

/// A small day of observations: for each (agent, device), two Events (`avail`, `exec`)
/// at 08:00 and 10:00 UTC and a Condition (`system`) at 09:00, the values naming where
/// they come from (`A/M1 exec 2`).
fn allow_list_batches() -> Vec<Batch> {
    use factorydash_core::{ConditionLevel, ConditionState, Value};
    let day = Utc.with_ymd_and_hms(2024, 3, 4, 0, 0, 0).unwrap();
    let mut batches = Vec::new();
    for (agent, tag, devices) in [
        (AGENT_A, "A", &["M1", "M2"][..]),
        (AGENT_B, "B", &["M1"][..]),
    ] {
        let mut observations = Vec::new();
        let mut sequence = 1;
        for device in devices {
            let mut push = |hour: u32, item: &str, category: Category, kind: &str, n: u32| {
                let condition = (category == Category::Condition).then(|| ConditionState {
                    level: ConditionLevel::Fault,
                    native_code: Some(format!("{tag}{device}")),
                    native_severity: None,
                    qualifier: None,
                });
                observations.push(Observation {
                    sequence,
                    timestamp: day + Duration::hours(hour.into()),
                    device: (*device).into(),
                    component_id: format!("{device}-c"),
                    data_item_id: format!("{device}-{item}"),
                    name: Some(item.into()),
                    category,
                    kind: kind.into(),
                    sub_type: None,
                    value: Value::Text(format!("{tag}/{device} {item} {n}")),
                    condition,
                });
                sequence += 1;
            };
            push(8, "avail", Category::Event, "Availability", 1);
            push(8, "exec", Category::Event, "Execution", 1);
            push(9, "system", Category::Condition, "System", 1);
            push(10, "exec", Category::Event, "Execution", 2);
        }
        batches.push(Batch {
            agent: agent.into(),
            instance_id: 1,
            next_sequence: sequence,
            observations,
        });
    }
    batches
}

/// The (agent, value) of every latest value (or value as of `at`) `filter` lets through,
/// read a page of `limit` at a time.
async fn allowed_values(
    store: &dyn Store,
    filter: &LatestFilter,
    at: Option<chrono::DateTime<Utc>>,
    limit: usize,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut request = PageRequest::first(limit);
    loop {
        let page = match at {
            None => store.latest(filter, &request).await.unwrap(),
            Some(at) => store.as_of(filter, at, &request).await.unwrap(),
        };
        out.extend(page.items.into_iter().map(|o| {
            let value = o.observation.value.as_text().unwrap_or("").to_owned();
            (o.agent, value)
        }));
        match page.next {
            Some(next) => request.after = Some(next),
            None => return out,
        }
    }
}

/// `LatestFilter::devices` is an allow-list of (agent, device): `Some` of an empty list
/// lets nothing through, one of two agents' devices of one name lets only that one
/// through, in `latest` and in `as_of`, page after page, and with the other filters.
pub async fn latest_and_as_of_keep_to_the_allowed_devices(store: &dyn Store) {
    for b in allow_list_batches() {
        store.append(&b).await.unwrap();
    }
    let day = Utc.with_ymd_and_hms(2024, 3, 4, 0, 0, 0).unwrap();
    let only = |devices: Vec<DeviceKey>| LatestFilter {
        devices: Some(devices),
        ..LatestFilter::default()
    };
    // No list: every data item of every device (3 per device).
    assert_eq!(
        allowed_values(store, &LatestFilter::default(), None, 100)
            .await
            .len(),
        9
    );
    for at in [None, Some(day + Duration::hours(12))] {
        // Some(empty): nothing.
        assert_eq!(allowed_values(store, &only(vec![]), at, 100).await, vec![]);
        // B's M1 only, not A's M1 of the same name.
        let b_m1 = allowed_values(store, &only(vec![DeviceKey::new(AGENT_B, "M1")]), at, 2).await;
        assert_eq!(
            b_m1,
            vec![
                (AGENT_B.to_owned(), "B/M1 avail 1".to_owned()),
                (AGENT_B.to_owned(), "B/M1 exec 2".to_owned()),
                (AGENT_B.to_owned(), "B/M1 system 1".to_owned()),
            ],
            "as of {at:?}"
        );
        // A's two devices, a page of one at a time.
        let a = allowed_values(
            store,
            &only(vec![
                DeviceKey::new(AGENT_A, "M2"),
                DeviceKey::new(AGENT_A, "M1"),
            ]),
            at,
            1,
        )
        .await;
        assert_eq!(a.len(), 6, "{a:?}");
        assert!(a.iter().all(|(agent, _)| agent == AGENT_A), "{a:?}");
        // An agent never seen, or a device it does not serve: nothing.
        assert_eq!(
            allowed_values(
                store,
                &only(vec![
                    DeviceKey::new("http://10.0.0.9:5000", "M1"),
                    DeviceKey::new(AGENT_B, "M2"),
                ]),
                at,
                100
            )
            .await,
            vec![]
        );
        // With the other filters: AND.
        let execs = LatestFilter {
            kind: Some("Execution".into()),
            ..only(vec![
                DeviceKey::new(AGENT_A, "M1"),
                DeviceKey::new(AGENT_B, "M1"),
            ])
        };
        assert_eq!(
            allowed_values(store, &execs, at, 100).await,
            vec![
                (AGENT_A.to_owned(), "A/M1 exec 2".to_owned()),
                (AGENT_B.to_owned(), "B/M1 exec 2".to_owned()),
            ]
        );
    }
    // As of 09:30, each data item's value then.
    assert_eq!(
        allowed_values(
            store,
            &only(vec![DeviceKey::new(AGENT_B, "M1")]),
            Some(day + Duration::minutes(9 * 60 + 30)),
            100
        )
        .await,
        vec![
            (AGENT_B.to_owned(), "B/M1 avail 1".to_owned()),
            (AGENT_B.to_owned(), "B/M1 exec 1".to_owned()),
            (AGENT_B.to_owned(), "B/M1 system 1".to_owned()),
        ]
    );
    // Too many devices: refused.
    let too_many: Vec<DeviceKey> = (0..=factorydash_store::MAX_FILTER_DEVICES)
        .map(|i| DeviceKey::new(AGENT_A, format!("M{i}")))
        .collect();
    let err = store
        .latest(&only(too_many.clone()), &PageRequest::first(10))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    let err = store
        .as_of(&only(too_many), day, &PageRequest::first(10))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    // As many as allowed: taken.
    let most: Vec<DeviceKey> = (0..factorydash_store::MAX_FILTER_DEVICES)
        .map(|i| DeviceKey::new(AGENT_A, format!("M{}", i + 1)))
        .collect();
    assert_eq!(allowed_values(store, &only(most), None, 100).await.len(), 6);
}

/// `Store::conditions` of a list of devices: only theirs, told apart by agent.
pub async fn conditions_keep_to_a_list_of_devices(store: &dyn Store) {
    for b in allow_list_batches() {
        store.append(&b).await.unwrap();
    }
    let window = TimeWindow::new(
        Utc.with_ymd_and_hms(2024, 3, 4, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2024, 3, 5, 0, 0, 0).unwrap(),
    )
    .unwrap();
    let codes = |found: Vec<factorydash_store::AgentObservation>| -> Vec<(String, String)> {
        found
            .into_iter()
            .map(|o| {
                let code = o
                    .observation
                    .condition
                    .and_then(|c| c.native_code)
                    .unwrap_or_default();
                (o.agent, code)
            })
            .collect()
    };
    let all = codes(store.conditions(None, &window, None, 100).await.unwrap());
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(
        codes(
            store
                .conditions(Some(&[DeviceKey::new(AGENT_B, "M1")]), &window, None, 100)
                .await
                .unwrap()
        ),
        vec![(AGENT_B.to_owned(), "BM1".to_owned())]
    );
    let mut two = codes(
        store
            .conditions(
                Some(&[DeviceKey::new(AGENT_A, "M1"), DeviceKey::new(AGENT_B, "M1")]),
                &window,
                None,
                100,
            )
            .await
            .unwrap(),
    );
    two.sort();
    assert_eq!(
        two,
        vec![
            (AGENT_A.to_owned(), "AM1".to_owned()),
            (AGENT_B.to_owned(), "BM1".to_owned()),
        ]
    );
    // Read a chunk at a time with a list, as the alarms page does.
    let list = [DeviceKey::new(AGENT_A, "M2"), DeviceKey::new(AGENT_A, "M1")];
    let first = store
        .conditions(Some(&list), &window, None, 1)
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    let o = &first[0];
    let rest = store
        .conditions(
            Some(&list),
            &window,
            Some((o.observation.timestamp, o.observation.sequence, &o.agent)),
            100,
        )
        .await
        .unwrap();
    let mut chunked = codes(first);
    chunked.extend(codes(rest));
    chunked.sort();
    assert_eq!(
        chunked,
        vec![
            (AGENT_A.to_owned(), "AM1".to_owned()),
            (AGENT_A.to_owned(), "AM2".to_owned()),
        ]
    );
    assert!(store
        .conditions(Some(&[]), &window, None, 100)
        .await
        .unwrap()
        .is_empty());
    let too_many: Vec<DeviceKey> = (0..=factorydash_store::MAX_FILTER_DEVICES)
        .map(|i| DeviceKey::new(AGENT_A, format!("M{i}")))
        .collect();
    let err = store
        .conditions(Some(&too_many), &window, None, 100)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
}

// ---------------------------------------------------------------------------------------
// Accounts.

pub mod accounts_fixtures {
    use chrono::{DateTime, Duration, TimeZone, Utc};
    use factorydash_core::accounts::{Credential, CredentialKind, Group, Role, User};

    /// 2024-05-01 12:00 UTC plus `minutes`: whole microseconds, as every store keeps.
    pub fn t(minutes: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap() + Duration::minutes(minutes)
    }

    pub fn user(name: &str) -> User {
        User {
            name: name.into(),
            display_name: format!("{name} (display)"),
            password_hash: Some(format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA${name}")),
            disabled: false,
            created_at: t(0) + Duration::microseconds(123_456),
        }
    }

    pub fn group(name: &str, role: Role, scope: &[&str], members: &[&str]) -> Group {
        Group {
            name: name.into(),
            role,
            scope: scope.iter().map(|s| s.parse().unwrap()).collect(),
            members: members.iter().map(|m| (*m).to_owned()).collect(),
        }
    }

    /// A credential of `user` whose digest is `n` in 64 hexadecimal digits.
    pub fn credential(n: u32, user: &str, kind: CredentialKind, created: i64) -> Credential {
        Credential {
            digest: format!("{n:064x}"),
            kind,
            user: user.into(),
            name: format!("credential {n}"),
            created_at: t(created),
            expires_at: t(created + 60 * 24),
            last_used_at: t(created),
        }
    }
}

use accounts_fixtures::{credential, group, t, user};
use factorydash_core::accounts::{AuditEntry, AuditQuery, CredentialKind, Role};

pub async fn users_round_trip_and_are_replaced(store: &dyn Store) {
    assert_eq!(store.users().await.unwrap(), vec![]);
    assert_eq!(store.user("ada").await.unwrap(), None);
    let ada = user("ada");
    let mut proxy_only = user("bob@plant.example");
    proxy_only.password_hash = None;
    proxy_only.display_name = String::new();
    proxy_only.disabled = true;
    // Put out of order: listed by name (byte order: upper case first).
    for u in [&proxy_only, &ada, &user("Zed")] {
        store.put_user(u).await.unwrap();
    }
    assert_eq!(store.user("ada").await.unwrap().as_ref(), Some(&ada));
    assert_eq!(
        store.user("bob@plant.example").await.unwrap().as_ref(),
        Some(&proxy_only)
    );
    // Names are compared exactly.
    assert_eq!(store.user("Ada").await.unwrap(), None);
    let names: Vec<String> = store
        .users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["Zed", "ada", "bob@plant.example"]);
    // Replaced whole; the user's credentials and memberships stay.
    store
        .put_credential(&credential(1, "ada", CredentialKind::Token, 0))
        .await
        .unwrap();
    store
        .put_group(&group("cell-a", Role::Operator, &["*"], &["ada"]))
        .await
        .unwrap();
    let changed = factorydash_core::accounts::User {
        display_name: "Ada Lovelace".into(),
        password_hash: None,
        disabled: true,
        created_at: t(5),
        ..ada.clone()
    };
    store.put_user(&changed).await.unwrap();
    assert_eq!(store.user("ada").await.unwrap(), Some(changed));
    assert_eq!(store.users().await.unwrap().len(), 3);
    assert!(store
        .credential(&format!("{:064x}", 1))
        .await
        .unwrap()
        .is_some());
    assert_eq!(store.groups().await.unwrap()[0].members, ["ada"]);
    // A name that is not one: refused.
    for bad in ["", "a b", "x/y"] {
        let err = store.put_user(&user(bad)).await.unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{bad:?}: {err:?}");
    }
    let mut long = user("long");
    long.display_name = "x".repeat(factorydash_core::accounts::MAX_DISPLAY_NAME_LEN + 1);
    assert!(matches!(
        store.put_user(&long).await.unwrap_err(),
        StoreError::Invalid(_)
    ));
    assert_eq!(store.users().await.unwrap().len(), 3);
}

pub async fn removing_a_user_removes_their_credentials_and_memberships(store: &dyn Store) {
    for name in ["ada", "bob"] {
        store.put_user(&user(name)).await.unwrap();
    }
    store
        .put_credential(&credential(1, "ada", CredentialKind::Session, 0))
        .await
        .unwrap();
    store
        .put_credential(&credential(2, "ada", CredentialKind::Token, 1))
        .await
        .unwrap();
    store
        .put_credential(&credential(3, "bob", CredentialKind::Session, 2))
        .await
        .unwrap();
    store
        .put_group(&group("both", Role::Viewer, &["*"], &["ada", "bob"]))
        .await
        .unwrap();
    store
        .put_group(&group("ada-only", Role::Admin, &["*"], &["ada"]))
        .await
        .unwrap();

    assert!(store.remove_user("ada").await.unwrap());
    assert!(!store.remove_user("ada").await.unwrap());
    assert!(!store.remove_user("nobody").await.unwrap());
    assert_eq!(store.user("ada").await.unwrap(), None);
    for n in [1, 2] {
        assert_eq!(
            store.credential(&format!("{n:064x}")).await.unwrap(),
            None,
            "credential {n}"
        );
    }
    for kind in [CredentialKind::Session, CredentialKind::Token] {
        assert_eq!(store.credentials_of("ada", kind).await.unwrap(), vec![]);
    }
    assert_eq!(
        store.credential(&format!("{:064x}", 3)).await.unwrap(),
        Some(credential(3, "bob", CredentialKind::Session, 2))
    );
    // Out of every group; the groups stay, even one left without members.
    let groups = store.groups().await.unwrap();
    assert_eq!(
        groups,
        vec![
            group("ada-only", Role::Admin, &["*"], &[]),
            group("both", Role::Viewer, &["*"], &["bob"]),
        ]
    );
    // A user of that name again starts with nothing.
    store.put_user(&user("ada")).await.unwrap();
    assert_eq!(
        store
            .credentials_of("ada", CredentialKind::Token)
            .await
            .unwrap(),
        vec![]
    );
    assert!(store
        .groups()
        .await
        .unwrap()
        .iter()
        .all(|g| !g.members.contains(&"ada".to_owned())));
}

pub async fn groups_round_trip_and_are_replaced(store: &dyn Store) {
    for name in ["ada", "bob", "carol"] {
        store.put_user(&user(name)).await.unwrap();
    }
    assert_eq!(store.groups().await.unwrap(), vec![]);
    // Members given out of order and twice: kept once each, listed by name; scope rules
    // in the order given.
    let cell = group(
        "cell-a",
        Role::Operator,
        &[
            "Mazak*",
            "agent:http://10.0.0.5:5000",
            "cell:Cell 1",
            "line:A",
        ],
        &["carol", "ada", "carol"],
    );
    store.put_group(&cell).await.unwrap();
    let admins = group("admins", Role::Admin, &["*"], &["bob"]);
    store.put_group(&admins).await.unwrap();
    let none = group("nobody-yet", Role::Viewer, &[], &[]);
    store.put_group(&none).await.unwrap();
    let want_cell = group(
        "cell-a",
        Role::Operator,
        &[
            "device:Mazak*",
            "agent:http://10.0.0.5:5000",
            "cell:Cell 1",
            "line:A",
        ],
        &["ada", "carol"],
    );
    assert_eq!(
        store.groups().await.unwrap(),
        vec![admins.clone(), want_cell, none.clone()]
    );

    // Replaced: role, scope and members all at once.
    let replaced = group("cell-a", Role::Viewer, &["device:Hurco0?"], &["bob"]);
    store.put_group(&replaced).await.unwrap();
    assert_eq!(
        store.groups().await.unwrap(),
        vec![admins.clone(), replaced.clone(), none.clone()]
    );

    // A member who is not a user: refused, and nothing changes.
    let err = store
        .put_group(&group("cell-a", Role::Admin, &["*"], &["ada", "mallory"]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Invalid(why) if why.contains("mallory")),
        "{err:?}"
    );
    let err = store
        .put_group(&group("new", Role::Admin, &["*"], &["mallory"]))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    // A bad name: refused.
    let err = store
        .put_group(&group("a b", Role::Admin, &["*"], &[]))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert_eq!(
        store.groups().await.unwrap(),
        vec![admins.clone(), replaced.clone(), none.clone()]
    );

    // Removing a group leaves its members.
    assert!(store.remove_group("cell-a").await.unwrap());
    assert!(!store.remove_group("cell-a").await.unwrap());
    assert_eq!(store.groups().await.unwrap(), vec![admins, none]);
    assert!(store.user("bob").await.unwrap().is_some());
    assert_eq!(store.users().await.unwrap().len(), 3);
}

pub async fn credentials_are_kept_by_digest(store: &dyn Store) {
    use CredentialKind::{Session, Token};
    for name in ["ada", "bob"] {
        store.put_user(&user(name)).await.unwrap();
    }
    let s1 = credential(1, "ada", Session, 0);
    let s2 = credential(2, "ada", Session, 10);
    let s3 = credential(3, "ada", Session, 5);
    let t1 = credential(4, "ada", Token, 20);
    let b1 = credential(5, "bob", Session, 1);
    for c in [&s1, &s2, &s3, &t1, &b1] {
        store.put_credential(c).await.unwrap();
    }
    assert_eq!(
        store.credential(&s1.digest).await.unwrap().as_ref(),
        Some(&s1)
    );
    assert_eq!(
        store.credential(&format!("{:064x}", 99)).await.unwrap(),
        None
    );
    // By kind, newest first.
    assert_eq!(
        store.credentials_of("ada", Session).await.unwrap(),
        vec![s2.clone(), s3.clone(), s1.clone()]
    );
    assert_eq!(
        store.credentials_of("ada", Token).await.unwrap(),
        vec![t1.clone()]
    );
    assert_eq!(store.credentials_of("carol", Token).await.unwrap(), vec![]);
    // A digest kept already, or a user not kept: refused.
    let err = store
        .put_credential(&credential(1, "bob", Token, 30))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert_eq!(
        store.credential(&s1.digest).await.unwrap().as_ref(),
        Some(&s1)
    );
    let err = store
        .put_credential(&credential(6, "nobody", Token, 30))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert_eq!(
        store.credential(&format!("{:064x}", 6)).await.unwrap(),
        None
    );

    // Touched: last used then; nothing else changes. An unknown digest: nothing.
    store
        .touch_credential(&s1.digest, t(30) + Duration::microseconds(7))
        .await
        .unwrap();
    store
        .touch_credential(&format!("{:064x}", 99), t(30))
        .await
        .unwrap();
    let touched = store.credential(&s1.digest).await.unwrap().unwrap();
    assert_eq!(touched.last_used_at, t(30) + Duration::microseconds(7));
    assert_eq!(
        touched,
        factorydash_core::accounts::Credential {
            last_used_at: touched.last_used_at,
            ..s1.clone()
        }
    );

    // Removed only by its own user.
    assert!(!store.remove_credential("bob", &s3.digest).await.unwrap());
    assert!(store.credential(&s3.digest).await.unwrap().is_some());
    assert!(store.remove_credential("ada", &s3.digest).await.unwrap());
    assert!(!store.remove_credential("ada", &s3.digest).await.unwrap());
    assert_eq!(store.credential(&s3.digest).await.unwrap(), None);

    // Every session of one user: their tokens and others' sessions stay.
    assert_eq!(
        store.remove_credentials_of("ada", Session).await.unwrap(),
        2
    );
    assert_eq!(
        store.remove_credentials_of("ada", Session).await.unwrap(),
        0
    );
    assert_eq!(store.credentials_of("ada", Session).await.unwrap(), vec![]);
    assert_eq!(
        store.credentials_of("ada", Token).await.unwrap(),
        vec![t1.clone()]
    );
    assert_eq!(
        store.credentials_of("bob", Session).await.unwrap(),
        vec![b1.clone()]
    );
    assert_eq!(store.remove_credentials_of("ada", Token).await.unwrap(), 1);
    assert_eq!(store.credentials_of("ada", Token).await.unwrap(), vec![]);
}

pub async fn stale_credentials_are_removed(store: &dyn Store) {
    use CredentialKind::{Session, Token};
    store.put_user(&user("ada")).await.unwrap();
    let now = t(1000);
    let idle_before = t(900);
    let with = |n: u32, kind, expires: i64, last_used: i64| {
        let mut c = credential(n, "ada", kind, 0);
        c.expires_at = t(expires);
        c.last_used_at = t(last_used);
        c
    };
    // Expired (at or before now): gone, whatever the kind.
    let expired_session = with(1, Session, 1000, 999);
    let expired_token = with(2, Token, 999, 999);
    // A session idle since (at or before) idle_before: gone.
    let idle_session = with(3, Session, 2000, 900);
    // A token idle as long: stays (tokens have no idle limit).
    let idle_token = with(4, Token, 2000, 100);
    // In use and not expired: stay.
    let live_session = with(5, Session, 1001, 901);
    let live_token = with(6, Token, 3000, 999);
    for c in [
        &expired_session,
        &expired_token,
        &idle_session,
        &idle_token,
        &live_session,
        &live_token,
    ] {
        store.put_credential(c).await.unwrap();
    }
    assert_eq!(
        store
            .remove_stale_credentials(now, idle_before)
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        store.credentials_of("ada", Session).await.unwrap(),
        vec![live_session]
    );
    let mut tokens = store.credentials_of("ada", Token).await.unwrap();
    tokens.sort_by(|a, b| a.digest.cmp(&b.digest));
    assert_eq!(tokens, vec![idle_token, live_token]);
    assert_eq!(
        store
            .remove_stale_credentials(now, idle_before)
            .await
            .unwrap(),
        0
    );
}

fn audit_entry(minutes: i64, actor: &str, action: &str, n: usize) -> AuditEntry {
    AuditEntry {
        id: 0,
        at: t(minutes),
        actor: actor.into(),
        address: format!("10.0.0.{n}"),
        action: action.into(),
        target: format!("target {n}"),
        detail: format!("detail {n}"),
    }
}

pub async fn old_audit_entries_are_pruned(store: &dyn Store) {
    let mut ids = Vec::new();
    for (minutes, n) in [(0, 0), (10, 1), (20, 2), (30, 3)] {
        ids.push(
            store
                .append_audit(&audit_entry(minutes, "ada", "login", n))
                .await
                .unwrap(),
        );
    }
    // Before minute 20: the first two go; the entry at minute 20 stays.
    assert_eq!(store.prune_audit(t(20)).await.unwrap(), 2);
    let kept = store
        .audit(&AuditQuery {
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let kept: Vec<(i64, String)> = kept.into_iter().map(|e| (e.id, e.address)).collect();
    assert_eq!(
        kept,
        [
            (ids[3], "10.0.0.3".to_owned()),
            (ids[2], "10.0.0.2".to_owned())
        ]
    );
    assert_eq!(store.prune_audit(t(20)).await.unwrap(), 0);
    // A new entry's id is still above every id given.
    let next = store
        .append_audit(&audit_entry(40, "ada", "logout", 4))
        .await
        .unwrap();
    assert!(next > ids[3]);
}

pub async fn audit_entries_are_numbered_and_listed_newest_first(store: &dyn Store) {
    let everything = AuditQuery {
        limit: 100,
        ..AuditQuery::default()
    };
    assert_eq!(store.audit(&everything).await.unwrap(), vec![]);
    let entries = [
        audit_entry(0, "ada", "login", 0),
        audit_entry(1, "ada", "agent-added", 1),
        audit_entry(2, "bob", "login-failed", 2),
        audit_entry(3, "bob", "login", 3),
        audit_entry(4, "ada", "logout", 4),
    ];
    let mut ids = Vec::new();
    for e in &entries {
        // The id given is the store's, whatever the entry said.
        let mut e = e.clone();
        e.id = 12345;
        ids.push(store.append_audit(&e).await.unwrap());
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let stored: Vec<AuditEntry> = entries
        .iter()
        .zip(&ids)
        .map(|(e, id)| AuditEntry {
            id: *id,
            ..e.clone()
        })
        .collect();
    let newest_first: Vec<AuditEntry> = stored.iter().rev().cloned().collect();
    assert_eq!(store.audit(&everything).await.unwrap(), newest_first);

    let select = |q: AuditQuery| {
        let want: Vec<AuditEntry> = newest_first
            .iter()
            .filter(|e| q.matches(e))
            .take(q.limit)
            .cloned()
            .collect();
        (q, want)
    };
    let queries = [
        // Each filter alone…
        AuditQuery {
            actor: Some("ada".into()),
            ..everything.clone()
        },
        AuditQuery {
            action: Some("login".into()),
            ..everything.clone()
        },
        AuditQuery {
            since: Some(t(2)),
            ..everything.clone()
        },
        AuditQuery {
            before: Some(ids[3]),
            ..everything.clone()
        },
        // …together, and a limit.
        AuditQuery {
            actor: Some("bob".into()),
            action: Some("login".into()),
            since: Some(t(1)),
            before: Some(ids[4]),
            limit: 100,
        },
        AuditQuery {
            limit: 2,
            ..everything.clone()
        },
        AuditQuery {
            limit: 0,
            ..everything.clone()
        },
        AuditQuery {
            actor: Some("nobody".into()),
            ..everything.clone()
        },
    ];
    for q in queries {
        let (q, want) = select(q);
        assert_eq!(store.audit(&q).await.unwrap(), want, "{q:?}");
    }
    // Each filter did select something, and not everything.
    assert_eq!(
        store
            .audit(&AuditQuery {
                actor: Some("ada".into()),
                ..everything.clone()
            })
            .await
            .unwrap()
            .len(),
        3
    );
    // Keyset pages, two at a time: every entry once.
    let mut paged = Vec::new();
    let mut q = AuditQuery {
        limit: 2,
        ..AuditQuery::default()
    };
    loop {
        let page = store.audit(&q).await.unwrap();
        let Some(last) = page.last() else { break };
        q.before = Some(last.id);
        paged.extend(page);
    }
    assert_eq!(paged, newest_first);
}

pub async fn audit_pages_are_capped(store: &dyn Store) {
    let max = factorydash_store::MAX_AUDIT_PAGE;
    let mut last = 0;
    for n in 0..max + 5 {
        last = store
            .append_audit(&audit_entry(0, "ada", "login", n % 250))
            .await
            .unwrap();
    }
    let page = store
        .audit(&AuditQuery {
            limit: usize::MAX,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.len(), max);
    assert_eq!(page[0].id, last);
    assert!(page.windows(2).all(|w| w[0].id > w[1].id));
    let rest = store
        .audit(&AuditQuery {
            before: page.last().map(|e| e.id),
            limit: max + 1,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(rest.len(), 5);
}

// ---------------------------------------------------------------------------------------
// Device records.

use factorydash_core::records::{DeviceRecord, MAX_RECORDS};

/// A record of `device` at `agent` that says everything: every field set, a time of whole
/// microseconds (what every store keeps), an ideal cycle time with a fraction.
pub fn full_record(agent: &str, device: &str) -> DeviceRecord {
    DeviceRecord {
        agent: agent.into(),
        device: device.into(),
        display_name: Some(format!("{device} (bay 3, Ünterwerk)")),
        cell: Some("Cell A".into()),
        description: Some("Bay 3\nCall the line 2 lead\text. 214".into()),
        ideal_cycle_time: Some(92.5),
        updated_at: t(7) + Duration::microseconds(654_321),
        updated_by: "ada".into(),
    }
}

/// A record that says nothing ([`DeviceRecord::is_empty`]), with a time of whole
/// microseconds.
pub fn empty_record(agent: &str, device: &str) -> DeviceRecord {
    DeviceRecord {
        updated_at: t(1),
        updated_by: "token:admin".into(),
        ..DeviceRecord::new(agent, device)
    }
}

/// The (agent, device) of each record, in the order listed.
async fn record_keys(store: &dyn Store) -> Vec<(String, String)> {
    store
        .device_records()
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.agent, r.device))
        .collect()
}

/// Every field reads back as put: `Some` and `None` alike, 92.5 exactly, the time to the
/// microsecond; a record that says nothing is kept too.
pub async fn device_records_round_trip(store: &dyn Store) {
    assert_eq!(store.device_records().await.unwrap(), vec![]);
    let full = full_record(AGENT_A, "Mazak01");
    let empty = empty_record(AGENT_A, "Okuma02");
    assert!(empty.is_empty());
    // Some fields set, others not.
    let partial = DeviceRecord {
        cell: Some("Cell B".into()),
        ideal_cycle_time: Some(0.001),
        updated_by: "bob".into(),
        updated_at: t(3),
        ..DeviceRecord::new(AGENT_A, "Haas03")
    };
    for r in [&full, &empty, &partial] {
        store.put_device_record(r).await.unwrap();
    }
    assert_eq!(
        store.device_records().await.unwrap(),
        vec![partial, full.clone(), empty]
    );
    let read = &store.device_records().await.unwrap()[1];
    assert_eq!(read.ideal_cycle_time, Some(92.5));
    assert_eq!(read.updated_at, full.updated_at);
}

/// Putting a record of a device already kept replaces it whole: fields set before and not
/// now are gone.
pub async fn a_device_record_is_replaced(store: &dyn Store) {
    let first = full_record(AGENT_A, "Mazak01");
    store.put_device_record(&first).await.unwrap();
    let other = full_record(AGENT_A, "Okuma02");
    store.put_device_record(&other).await.unwrap();
    let second = DeviceRecord {
        display_name: Some("Mazak VTC 1".into()),
        cell: None,
        description: None,
        ideal_cycle_time: Some(30.25),
        updated_at: t(60),
        updated_by: "bob".into(),
        ..first.clone()
    };
    store.put_device_record(&second).await.unwrap();
    assert_eq!(
        store.device_records().await.unwrap(),
        vec![second.clone(), other.clone()]
    );
    // And replaced by one that says nothing: kept, saying nothing.
    let cleared = empty_record(AGENT_A, "Mazak01");
    store.put_device_record(&cleared).await.unwrap();
    assert_eq!(store.device_records().await.unwrap(), vec![cleared, other]);
}

/// Listed by agent, then by device name, both in byte order (upper case before lower, a
/// multi-byte letter after every ASCII one), whatever the order put.
pub async fn device_records_are_listed_by_agent_then_device(store: &dyn Store) {
    // "http://10.0.0.1:5000" < "http://10.0.0.2:5000"; within each, byte order.
    let names = ["mazak", "Ämco", "Mazak", "zeta", "Zeta", "mazak-2", "MAZAK"];
    for agent in [AGENT_B, AGENT_A] {
        for name in names {
            store
                .put_device_record(&full_record(agent, name))
                .await
                .unwrap();
        }
    }
    let mut by_bytes: Vec<&str> = names.to_vec();
    by_bytes.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    assert_eq!(
        by_bytes,
        ["MAZAK", "Mazak", "Zeta", "mazak", "mazak-2", "zeta", "Ämco"]
    );
    let expected: Vec<(String, String)> = [AGENT_A, AGENT_B]
        .iter()
        .flat_map(|a| by_bytes.iter().map(|d| ((*a).to_owned(), (*d).to_owned())))
        .collect();
    assert_eq!(record_keys(store).await, expected);
    // The agent comes first: agent A's last device ("ÿ", after "Ä" byte for byte)
    // before agent B's first ("AAA").
    store
        .put_device_record(&full_record(AGENT_B, "AAA"))
        .await
        .unwrap();
    store
        .put_device_record(&full_record(AGENT_A, "ÿ"))
        .await
        .unwrap();
    let keys = record_keys(store).await;
    let last_of_a = keys.iter().position(|(a, d)| a == AGENT_A && d == "ÿ");
    let first_of_b = keys.iter().position(|(a, d)| a == AGENT_B && d == "AAA");
    assert_eq!(last_of_a, Some(names.len()));
    assert_eq!(first_of_b, Some(names.len() + 1));
}

/// Removing a record says whether there was one; the device's name and agent are compared
/// exactly, and other records stay.
pub async fn removing_a_device_record(store: &dyn Store) {
    let mazak = full_record(AGENT_A, "Mazak01");
    let same_name = full_record(AGENT_B, "Mazak01");
    store.put_device_record(&mazak).await.unwrap();
    store.put_device_record(&same_name).await.unwrap();
    assert!(!store
        .remove_device_record(AGENT_A, "mazak01")
        .await
        .unwrap());
    assert!(!store
        .remove_device_record("http://10.0.0.9:5000", "Mazak01")
        .await
        .unwrap());
    assert_eq!(store.device_records().await.unwrap().len(), 2);
    assert!(store
        .remove_device_record(AGENT_A, "Mazak01")
        .await
        .unwrap());
    assert!(!store
        .remove_device_record(AGENT_A, "Mazak01")
        .await
        .unwrap());
    assert_eq!(store.device_records().await.unwrap(), vec![same_name]);
    // Put again after removal: kept again.
    store.put_device_record(&mazak).await.unwrap();
    assert_eq!(store.device_records().await.unwrap().len(), 2);
}

/// A record that fails [`DeviceRecord::check`] is refused with `Invalid`, nothing stored;
/// as a replacement, it leaves the record kept as it was.
pub async fn a_device_record_that_fails_its_checks_is_refused(store: &dyn Store) {
    let kept = full_record(AGENT_A, "Mazak01");
    store.put_device_record(&kept).await.unwrap();
    let bad: [fn(&mut DeviceRecord); 8] = [
        |r| r.agent = String::new(),
        |r| r.device = String::new(),
        |r| r.display_name = Some("  ".into()),
        |r| r.cell = Some(String::new()),
        |r| r.description = Some("a\u{0}b".into()),
        |r| r.ideal_cycle_time = Some(-1.0),
        |r| r.ideal_cycle_time = Some(f64::NAN),
        |r| r.ideal_cycle_time = Some(f64::INFINITY),
    ];
    for change in bad {
        for device in ["Mazak01", "New01"] {
            let mut r = full_record(AGENT_A, device);
            change(&mut r);
            assert!(r.check().is_err(), "{r:?}");
            let err = store.put_device_record(&r).await.unwrap_err();
            assert!(matches!(err, StoreError::Invalid(_)), "{r:?}: {err:?}");
        }
    }
    assert_eq!(store.device_records().await.unwrap(), vec![kept]);
}

/// Given a store that holds [`MAX_RECORDS`] records (of devices `M000000`… at
/// [`FILL_AGENT`]): a new one is refused with `Invalid` and not stored; a replacement is
/// taken; once one is removed, a new one is taken.
pub async fn a_new_device_record_beyond_the_cap_is_refused(store: &dyn Store) {
    assert_eq!(store.device_records().await.unwrap().len(), MAX_RECORDS);
    let new = full_record(AGENT_A, "Mazak01");
    let err = store.put_device_record(&new).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    let all = store.device_records().await.unwrap();
    assert_eq!(all.len(), MAX_RECORDS);
    assert!(all.iter().all(|r| r.agent == FILL_AGENT));
    // A replacement is no new record.
    let replaced = full_record(FILL_AGENT, &fill_device(0));
    store.put_device_record(&replaced).await.unwrap();
    let all = store.device_records().await.unwrap();
    assert_eq!(all.len(), MAX_RECORDS);
    assert_eq!(all[0], replaced);
    // Room for one.
    assert!(store
        .remove_device_record(FILL_AGENT, &fill_device(1))
        .await
        .unwrap());
    store.put_device_record(&new).await.unwrap();
    let all = store.device_records().await.unwrap();
    assert_eq!(all.len(), MAX_RECORDS);
    assert_eq!(all[0], new, "agent A sorts before the fill agent");
}

/// The agent of the records that fill a store to [`MAX_RECORDS`].
pub const FILL_AGENT: &str = "http://fill.example:5000";

/// The name of the `i`th device filling a store: `M000000`….
pub fn fill_device(i: usize) -> String {
    format!("M{i:06}")
}

// ----- Operators' reasons for stops -----

use factorydash_core::reasons::StopReason;

/// A reason for the stop of `device` at [`AGENT_A`] that `item` began `minutes` after
/// [`t`]'s origin, with a time to the microsecond.
fn stop_reason(device: &str, item: &str, minutes: i64, reason: &str) -> StopReason {
    let began = t(minutes) + Duration::microseconds(123_457);
    let mut r = StopReason::new(AGENT_A, device, item, began);
    r.reason = reason.into();
    r.given_at = t(minutes + 5) + Duration::microseconds(1);
    r.given_by = "ada".into();
    r
}

/// Reasons read back as put (the times to the microsecond), listed by start then item
/// for one device and the stops begun in `[from, to)`; a second reason for a stop
/// replaces the first; a reason that fails its checks is refused; retention drops the
/// reasons of stops begun before its cutoff and keeps the rest.
pub async fn stop_reasons_round_trip_and_are_replaced(store: &dyn Store) {
    let mut material = stop_reason("Mazak01", "exec", 10, "Waiting for material");
    material.comment = Some("forklift «late»".into());
    let tool = stop_reason("Mazak01", "exec", 20, "Tool change");
    let other_item = stop_reason("Mazak01", "exec2", 10, "Tool change");
    let other_device = stop_reason("Okuma02", "exec", 10, "Tool change");
    for r in [&tool, &other_device, &material, &other_item] {
        store.put_stop_reason(r).await.unwrap();
    }
    let list = |from: i64, to: i64| async move {
        store
            .stop_reasons(AGENT_A, "Mazak01", t(from), t(to))
            .await
            .unwrap()
    };
    assert_eq!(
        list(0, 60).await,
        vec![material.clone(), other_item.clone(), tool.clone()]
    );
    // [from, to): a stop begun at 20:00.123457 is in [20, 21) and not in [0, 20).
    assert_eq!(list(20, 21).await, vec![tool.clone()]);
    assert_eq!(
        list(0, 20).await,
        vec![material.clone(), other_item.clone()]
    );
    assert_eq!(list(30, 20).await, vec![]);
    assert_eq!(
        store
            .stop_reasons("http://elsewhere:5000", "Mazak01", t(0), t(60))
            .await
            .unwrap(),
        vec![]
    );

    // Given again: replaced, the comment gone.
    let mut again = stop_reason("Mazak01", "exec", 10, "Maintenance");
    again.given_by = "bob".into();
    store.put_stop_reason(&again).await.unwrap();
    assert_eq!(
        list(0, 60).await,
        vec![again.clone(), other_item.clone(), tool.clone()]
    );

    let mut bad = stop_reason("Mazak01", "exec", 30, "   ");
    assert!(matches!(
        store.put_stop_reason(&bad).await,
        Err(StoreError::Invalid(_))
    ));
    bad.reason = "ok".into();
    bad.comment = Some("two\nlines".into());
    assert!(matches!(
        store.put_stop_reason(&bad).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(list(0, 60).await.len(), 3);

    // Retention: the stops begun before minute 15 lose their reasons, whatever device.
    store.prune_summaries(t(15)).await.unwrap();
    assert_eq!(list(0, 60).await, vec![tool]);
    assert_eq!(
        store
            .stop_reasons(AGENT_A, "Okuma02", t(0), t(60))
            .await
            .unwrap(),
        vec![]
    );
}

/// A setting reads back as kept (its time to the microsecond), is replaced whole, is
/// removed by `None`, and a key or a value beyond the bounds is refused.
pub async fn settings_round_trip_and_are_removed(store: &dyn Store) {
    use factorydash_store::{Setting, MAX_SETTING_LEN};
    assert_eq!(store.setting("shift-calendar").await.unwrap(), None);
    let first = Setting {
        value: "[[shift]]\nname = \"Früh\"\n".into(),
        updated_at: t(1) + Duration::microseconds(7),
        updated_by: "ada".into(),
    };
    store
        .put_setting("shift-calendar", Some(&first))
        .await
        .unwrap();
    assert_eq!(
        store.setting("shift-calendar").await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(store.setting("other").await.unwrap(), None);
    let second = Setting {
        value: "holidays = []".into(),
        updated_at: t(2),
        updated_by: "bob".into(),
    };
    store
        .put_setting("shift-calendar", Some(&second))
        .await
        .unwrap();
    assert_eq!(
        store.setting("shift-calendar").await.unwrap(),
        Some(second.clone())
    );
    let long = Setting {
        value: "x".repeat(MAX_SETTING_LEN + 1),
        ..second.clone()
    };
    assert!(matches!(
        store.put_setting("shift-calendar", Some(&long)).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store.put_setting("", Some(&second)).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(store.setting("shift-calendar").await.unwrap(), Some(second));
    store.put_setting("shift-calendar", None).await.unwrap();
    assert_eq!(store.setting("shift-calendar").await.unwrap(), None);
}

/// The outbox keeps each receiver's entries in the order queued (ids increasing, times
/// to the microsecond) until each is confirmed; confirming twice is no error; another
/// receiver's entries are apart; bounds are refused.
pub async fn the_outbox_keeps_entries_in_order_until_confirmed(store: &dyn Store) {
    use factorydash_store::{OutboxEntry, MAX_OUTBOX_BODY};
    let entry = |receiver: &str, body: &str, s: i64| OutboxEntry {
        id: 0,
        receiver: receiver.into(),
        body: body.into(),
        queued_at: t(s) + Duration::microseconds(3),
    };
    assert!(store.pending_outbox("a", 10).await.unwrap().is_empty());
    let first = store
        .queue_outbox(&[
            entry("a", "one", 1),
            entry("b", "other", 2),
            entry("a", "two", 3),
        ])
        .await
        .unwrap();
    assert_eq!(first.len(), 3);
    assert!(first.windows(2).all(|w| w[0] < w[1]), "{first:?}");
    let more = store.queue_outbox(&[entry("a", "three", 4)]).await.unwrap();
    assert!(more[0] > first[2]);
    let a = store.pending_outbox("a", 10).await.unwrap();
    let bodies: Vec<&str> = a.iter().map(|e| e.body.as_str()).collect();
    assert_eq!(bodies, ["one", "two", "three"]);
    assert_eq!(a[0].id, first[0]);
    assert_eq!(a[0].queued_at, t(1) + Duration::microseconds(3));
    assert_eq!(store.pending_outbox("a", 2).await.unwrap().len(), 2);
    store.confirm_outbox(first[0]).await.unwrap();
    store.confirm_outbox(first[0]).await.unwrap();
    let a = store.pending_outbox("a", 10).await.unwrap();
    assert_eq!(
        a.iter().map(|e| e.body.as_str()).collect::<Vec<_>>(),
        ["two", "three"]
    );
    let b = store.pending_outbox("b", 10).await.unwrap();
    assert_eq!((b.len(), b[0].body.as_str()), (1, "other"));
    let long = entry("a", &"x".repeat(MAX_OUTBOX_BODY + 1), 5);
    assert!(matches!(
        store.queue_outbox(&[long]).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store.queue_outbox(&[entry("", "x", 5)]).await,
        Err(StoreError::Invalid(_))
    ));
}
