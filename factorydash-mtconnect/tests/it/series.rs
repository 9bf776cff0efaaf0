//! The twelve consecutive NIST `/sample` pages: one continuous stream of sequences.

use factorydash_mtconnect::{parse_streams, recording::read_maybe_gzipped, Recording};

#[test]
fn every_sequence_exactly_once_across_the_twelve_pages() {
    let dir = crate::nist_recording();
    let mut expected_from = 1u64;
    let mut total = 0usize;
    for k in 1..=12 {
        let path = dir.join(format!("qdr_input{k:03}.xml.gz"));
        let bytes = read_maybe_gzipped(&path).unwrap();
        let parsed = parse_streams(&bytes).unwrap();
        assert!(parsed.is_complete(), "page {k}: {:?}", parsed.problems);
        let doc = parsed.value;
        let next = doc.header.next_sequence.unwrap();
        let mut seqs: Vec<u64> = doc.observations.iter().map(|o| o.sequence).collect();
        seqs.sort_unstable();
        let want: Vec<u64> = (expected_from..next).collect();
        assert_eq!(seqs.len(), want.len(), "page {k}: count");
        assert_eq!(seqs, want, "page {k}: sequences {expected_from}..{next}");
        assert_eq!(doc.header.instance_id, 1_475_083_573);
        // Only the page boundary problems we expect: none for these documents.
        assert!(
            parsed.problems.is_empty(),
            "page {k}: {:?}",
            parsed.problems
        );
        total += seqs.len();
        expected_from = next;
    }
    assert_eq!(total, 112_762);
    assert_eq!(expected_from, 112_763);
}

#[test]
fn the_recording_loads_whole() {
    let rec = Recording::load(&crate::nist_recording()).unwrap();
    assert_eq!(rec.observations.len(), 112_762);
    assert_eq!(rec.observations.first().unwrap().sequence, 1);
    assert_eq!(rec.observations.last().unwrap().sequence, 112_762);
    assert!(rec.problems.is_empty(), "{:?}", rec.problems);
    let names: Vec<_> = rec
        .devices
        .devices
        .iter()
        .filter_map(|d| d.name.as_deref())
        .collect();
    assert_eq!(names, ["GFAgie01"]);
    assert!(rec.observations.iter().all(|o| o.device == "GFAgie01"));
    // The data items observed are in the device model, but for one the 2019 model dropped
    // (see the recording's README).
    let mut unknown: Vec<&str> = rec
        .observations
        .iter()
        .filter(|o| rec.devices.data_item(&o.data_item_id).is_none())
        .map(|o| o.data_item_id.as_str())
        .collect();
    unknown.dedup();
    assert_eq!(unknown, ["GFAgie01-path_basic_8"]);
}

#[test]
fn the_shdr_recording_of_three_machines_merges_into_one_sequence() {
    let dir = crate::fixtures_dir().join("recordings/nist-3-machines-shdr-2016");
    let rec = Recording::load(&dir).unwrap();
    let names: Vec<_> = rec
        .devices
        .devices
        .iter()
        .filter_map(|d| d.name.as_deref())
        .collect();
    assert_eq!(names, ["GFAgie01", "Mazak01", "Hurco01"]);
    let n = rec.observations.len() as u64;
    assert!(n > 70_000, "{n}");
    let seqs: Vec<u64> = rec.observations.iter().map(|o| o.sequence).collect();
    assert_eq!(seqs, (1..=n).collect::<Vec<_>>());
    assert!(
        rec.observations
            .windows(2)
            .all(|w| w[0].timestamp <= w[1].timestamp),
        "merged by time"
    );
    for device in names {
        let mine: Vec<_> = rec
            .observations
            .iter()
            .filter(|o| o.device == device)
            .collect();
        assert!(mine.len() > 1000, "{device}: {}", mine.len());
        assert!(mine
            .iter()
            .all(|o| rec.devices.data_item(&o.data_item_id).is_some()));
    }
    // The logs start together.
    let first = |d: &str| {
        rec.observations
            .iter()
            .find(|o| o.device == d)
            .unwrap()
            .timestamp
    };
    assert_eq!(first("GFAgie01"), first("Mazak01"));
    assert!(rec.observations.iter().any(|o| o
        .condition
        .as_ref()
        .is_some_and(|c| c.level == factorydash_core::ConditionLevel::Fault)));
    // Keys the 2016 model does not know are reported once each, not per line.
    assert!(rec.problems.len() < 20, "{:#?}", rec.problems);
}
