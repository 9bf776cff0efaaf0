//! parse → write → parse gives the same document.

use factorydash_mtconnect::{
    parse_devices, parse_document, parse_streams, recording::read_maybe_gzipped, write_devices,
    Document, ParseOptions, StreamsWriter,
};
use serde_json::Value;

/// Timestamps are written to the microsecond: drop the sub-microsecond digits.
pub(crate) fn micros(mut v: Value) -> Value {
    if let Some(items) = v.as_array_mut() {
        for o in items {
            if let Some(ts) = o.get("timestamp").and_then(Value::as_str) {
                let t: chrono::DateTime<chrono::Utc> = ts.parse().unwrap();
                let t =
                    t - chrono::Duration::nanoseconds(i64::from(t.timestamp_subsec_nanos() % 1000));
                o["timestamp"] = serde_json::to_value(t).unwrap();
            }
            // An undeclared prefix is declared by the writer with a placeholder URI.
            if let Some(extra) = o.get_mut("extra").filter(|e| e.is_object()) {
                let placeholder = extra
                    .get("namespace")
                    .and_then(Value::as_str)
                    .is_some_and(|n| n.starts_with("urn:factorydash:undeclared:"));
                if placeholder {
                    extra["namespace"] = Value::Null;
                }
                let empty = extra
                    .as_object()
                    .unwrap()
                    .values()
                    .all(|x| x.is_null() || x.as_array().is_some_and(Vec::is_empty));
                if empty {
                    *extra = Value::Null;
                }
            }
        }
    }
    v
}

#[test]
fn every_streams_fixture_round_trips_whole() {
    let mut n = 0;
    for (name, bytes) in crate::fixtures::all_fixtures() {
        let Ok(Document::Streams(first)) = parse_document(&bytes, &ParseOptions::default()) else {
            continue;
        };
        let written = StreamsWriter::default().write_document(&first.value);
        let second = parse_streams(written.as_bytes()).unwrap();
        assert!(second.is_complete(), "{name}: {:?}", second.problems);
        assert_eq!(
            second.value.header.next_sequence, first.value.header.next_sequence,
            "{name}"
        );
        assert_eq!(
            second.value.device_streams, first.value.device_streams,
            "{name}"
        );
        assert_eq!(
            second.value.component_streams, first.value.component_streams,
            "{name}"
        );
        let sorted = |doc: &factorydash_mtconnect::Streams<'_>| {
            let mut o: Vec<_> = doc.observations.iter().collect();
            o.sort_by_key(|o| o.sequence);
            micros(serde_json::to_value(o).unwrap())
        };
        let (a, b) = (sorted(&second.value), sorted(&first.value));
        let (a, b) = (a.as_array().unwrap(), b.as_array().unwrap());
        assert_eq!(a.len(), b.len(), "{name}");
        for (x, y) in a.iter().zip(b) {
            assert_eq!(x, y, "{name}");
        }
        n += 1;
    }
    assert!(n >= 12, "{n}");
}

#[test]
fn owned_observations_round_trip_through_the_agent_writer() {
    for page in ["qdr_input001.xml.gz", "qdr_input009.xml.gz"] {
        let bytes = read_maybe_gzipped(&crate::nist_recording().join(page)).unwrap();
        let first = parse_streams(&bytes).unwrap();
        let mut observations = first.value.to_observations();
        let written = StreamsWriter::default().write(&first.value.header, &observations);
        let mut again = parse_streams(written.as_bytes())
            .unwrap()
            .value
            .to_observations();
        observations.sort_by_key(|o| o.sequence);
        again.sort_by_key(|o| o.sequence);
        assert_eq!(
            micros(serde_json::to_value(&again).unwrap()),
            micros(serde_json::to_value(&observations).unwrap())
        );
    }
}

#[test]
fn every_devices_fixture_round_trips() {
    let mut n = 0;
    for (name, bytes) in crate::fixtures::all_fixtures() {
        let Ok(Document::Devices(first)) = parse_document(&bytes, &ParseOptions::default()) else {
            continue;
        };
        let written = write_devices(&first.value, "2.0");
        let second = parse_devices(written.as_bytes()).unwrap();
        assert!(second.problems.is_empty(), "{name}: {:?}", second.problems);
        assert_eq!(second.value, first.value, "{name}");
        n += 1;
    }
    assert!(n >= 10, "{n}");
}

#[test]
fn the_writer_uses_the_device_model() {
    let devices =
        parse_devices(&read_maybe_gzipped(&crate::nist_recording().join("probe.xml.gz")).unwrap())
            .unwrap()
            .value;
    let page = read_maybe_gzipped(&crate::nist_recording().join("qdr_input001.xml.gz")).unwrap();
    let doc = parse_streams(&page).unwrap().value;
    let writer = StreamsWriter {
        devices: Some(&devices),
        extension_namespaces: vec![("x".into(), "urn:nist.gov:NistStreams:1.3".into())],
        ..Default::default()
    };
    let out = writer.write(&doc.header, &doc.to_observations());
    assert!(
        out.contains(r#"<DeviceStream name="GFAgie01" uuid="mtc_adapter001">"#),
        "{}",
        &out[..600]
    );
    assert!(out.contains(r#"xmlns:x="urn:nist.gov:NistStreams:1.3""#));
    let again = parse_streams(out.as_bytes()).unwrap();
    assert!(again.problems.is_empty(), "{:?}", again.problems);
    let components: Vec<_> = again
        .value
        .component_streams
        .iter()
        .map(|c| c.component.as_ref())
        .collect();
    assert!(
        components.contains(&"Linear") && components.contains(&"Controller"),
        "{components:?}"
    );
}
