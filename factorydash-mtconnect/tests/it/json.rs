//! The JSON documents (the reference agent's JSON version 1 and 2): real ones, every XML
//! fixture through both versions and back, and broken ones.

use factorydash_mtconnect::Value as ObservedValue;
use factorydash_mtconnect::{
    parse_document, parse_streams, parse_streams_json, parse_streams_json_with,
    recording::read_maybe_gzipped, Document, Error, JsonVersion, ParseOptions, ProblemKind,
    Streams, StreamsWriter, ValueRef,
};
use serde_json::Value;

/// The observations of `doc` in sequence order, as JSON values, without what JSON has no
/// place for (an extension element's namespace URI) and to the microsecond (as
/// [`crate::roundtrip::micros`] compares XML round trips).
fn comparable(doc: &Streams<'_>) -> Vec<Value> {
    let mut o: Vec<_> = doc.observations.iter().collect();
    o.sort_by_key(|o| (o.sequence, o.data_item_id.clone()));
    let mut v = serde_json::to_value(o).unwrap();
    for o in v.as_array_mut().unwrap() {
        if let Some(extra) = o.get_mut("extra").filter(|e| e.is_object()) {
            extra["namespace"] = Value::Null;
        }
    }
    match crate::roundtrip::micros(v) {
        Value::Array(items) => items,
        other => panic!("{other}"),
    }
}

#[test]
fn every_streams_fixture_reads_the_same_through_json_version_1_and_2() {
    let mut n = 0;
    for (name, bytes) in crate::fixtures::all_fixtures() {
        let Ok(Document::Streams(first)) = parse_document(&bytes, &ParseOptions::default()) else {
            continue;
        };
        for version in [JsonVersion::V1, JsonVersion::V2] {
            let json = StreamsWriter::default().write_document_json(&first.value, version);
            let what = format!("{name} as JSON {version:?}");
            let second = parse_streams_json(json.as_bytes())
                .unwrap_or_else(|e| panic!("{what}: {e}: {}", &json[..json.len().min(2000)]));
            // What the XML had wrong (a Sample that is not numeric) is found again; nothing
            // else is.
            assert!(
                second
                    .problems
                    .iter()
                    .all(|p| p.kind == ProblemKind::InvalidValue),
                "{what}: {:?}",
                second.problems
            );
            assert_eq!(second.value.header, first.value.header, "{what}");
            assert_eq!(
                second.value.device_streams, first.value.device_streams,
                "{what}"
            );
            assert_eq!(
                second.value.component_streams, first.value.component_streams,
                "{what}"
            );
            let (a, b) = (comparable(&second.value), comparable(&first.value));
            assert_eq!(a.len(), b.len(), "{what}");
            for (x, y) in a.iter().zip(&b) {
                assert_eq!(x, y, "{what}");
            }
        }
        n += 1;
    }
    assert!(n >= 12, "{n}");
}

#[test]
fn owned_observations_round_trip_through_json() {
    let bytes = read_maybe_gzipped(&crate::nist_recording().join("qdr_input001.xml.gz")).unwrap();
    let first = parse_streams(&bytes).unwrap();
    let mut observations = first.value.to_observations();
    observations.sort_by_key(|o| o.sequence);
    for version in [JsonVersion::V1, JsonVersion::V2] {
        let json = StreamsWriter::default().write_json(&first.value.header, &observations, version);
        let mut again = parse_streams_json(json.as_bytes())
            .unwrap()
            .value
            .to_observations();
        again.sort_by_key(|o| o.sequence);
        assert_eq!(again, observations, "{version:?}");
    }
}

#[test]
fn the_reference_agents_json_current_agrees_with_its_xml_current() {
    let json = crate::fixture("cppagent-2.7-live-current.json");
    let xml = crate::fixture("cppagent-2.7-live-current.xml");
    let from_json = parse_streams_json(&json).unwrap();
    let from_xml = parse_streams(&xml).unwrap();
    assert!(from_json.problems.is_empty(), "{:?}", from_json.problems);
    let (j, x) = (&from_json.value, &from_xml.value);
    assert_eq!(j.header.instance_id, 1_795_239_438);
    assert_eq!(j.header.instance_id, x.header.instance_id);
    assert_eq!(
        (
            j.header.first_sequence,
            j.header.next_sequence,
            j.header.buffer_size
        ),
        (Some(1), Some(828), Some(131_072))
    );
    // The same devices and components, and a current value for the same data items.
    assert_eq!(j.device_streams, x.device_streams);
    assert_eq!(j.component_streams.len(), x.component_streams.len());
    let ids = |d: &Streams<'_>| {
        let mut ids: Vec<String> = d
            .observations
            .iter()
            .map(|o| o.data_item_id.to_string())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    };
    assert_eq!(ids(j), ids(x));
    // An observation the agent has not replaced since the XML was taken is the same in
    // both, field for field; a number is the same number, written as the agent's XML and
    // JSON printers write it (`0` in XML is `0.0` in JSON).
    let mut same = 0;
    for o in &x.observations {
        if let Some(k) = j
            .observations
            .iter()
            .find(|k| k.sequence == o.sequence && k.data_item_id == o.data_item_id)
        {
            let (mut a, mut b) = (j.to_observation(k), x.to_observation(o));
            assert_eq!(k.number, o.number, "sequence {}", o.sequence);
            let number = |v: &ObservedValue| match v {
                ObservedValue::Text(t) => t.parse::<f64>().ok(),
                ObservedValue::Unavailable => None,
            };
            if number(&a.value).is_some() && number(&a.value) == number(&b.value) {
                (a.value, b.value) = (ObservedValue::Unavailable, ObservedValue::Unavailable);
            }
            assert_eq!((a, k.extra()), (b, o.extra()), "sequence {}", o.sequence);
            same += 1;
        }
    }
    assert!(same > 50, "{same}");
    // Samples are JSON numbers; their text is what the agent wrote.
    let position = j
        .observations
        .iter()
        .find(|o| o.data_item_id == "LYI1actm")
        .unwrap();
    assert_eq!(position.value, ValueRef::Text("4662.0319".into()));
    assert_eq!(position.number, Some(4662.0319));
    // A DataSet: `{"CuttingTool":17}`.
    let assets = j
        .observations
        .iter()
        .find(|o| o.data_item_id == "OKUMA.123456_asset_count")
        .unwrap();
    assert_eq!(assets.value, ValueRef::Text("CuttingTool=17".into()));
    assert_eq!(assets.extra().count, Some(1));
}

#[test]
fn a_bad_observation_is_reported_and_skipped_and_the_rest_kept() {
    let doc = br#"{"MTConnectStreams":{"jsonVersion":1,"Header":{"instanceId":"7","nextSequence":12},
      "Streams":[{"DeviceStream":{"name":"M","ComponentStreams":[{"ComponentStream":{"component":"Path","componentId":"p",
        "Samples":[{"Load":{"value":1.5,"dataItemId":"l","sequence":9,"timestamp":"2026-01-01T00:00:00Z"}},
                   {"Load":{"value":2,"dataItemId":"l","sequence":"x","timestamp":"2026-01-01T00:00:00Z"}},
                   {"Load":{"value":2,"dataItemId":"l","sequence":99999999999999999999999,"timestamp":"2026-01-01T00:00:00Z"}},
                   {"Load":{"value":2,"sequence":3,"timestamp":"2026-01-01T00:00:00Z"}},
                   {"Load":{"value":2,"dataItemId":"l","sequence":4,"timestamp":"yesterday"}},
                   {"Load":{"value":[1,{"x":2}],"dataItemId":"l","sequence":5,"timestamp":"2026-01-01T00:00:00Z"}},
                   {"Load":{"value":"fast","dataItemId":"l","sequence":6,"timestamp":"2026-01-01T00:00:00"}},
                   "not an object",
                   {"Position":{"value":[1,2.5,-3],"dataItemId":"p","sequence":10,"timestamp":"2026-01-01T00:00:00Z"}}],
        "Condition":[{"Broken":{"dataItemId":"c","sequence":11,"timestamp":"2026-01-01T00:00:00Z"}},
                     {"Unavailable":{"dataItemId":"c","sequence":8,"timestamp":"2026-01-01T00:00:00Z","type":"SYSTEM"}}]}}]}}]}}"#;
    let parsed = parse_streams_json(doc).unwrap();
    let kinds: Vec<ProblemKind> = parsed.problems.iter().map(|p| p.kind).collect();
    assert_eq!(
        kinds,
        [
            ProblemKind::InvalidAttribute,
            ProblemKind::OutOfRange,
            ProblemKind::MissingAttribute,
            ProblemKind::InvalidAttribute,
            ProblemKind::InvalidValue,
            ProblemKind::MissingTimeZone,
            ProblemKind::InvalidValue,
            ProblemKind::Unexpected,
            ProblemKind::Unexpected,
        ],
        "{:#?}",
        parsed.problems
    );
    // Each problem points into the document at the element it is about.
    for p in &parsed.problems {
        assert!(p.offset > 0 && (p.offset as usize) < doc.len(), "{p}");
    }
    let kept: Vec<(u64, Option<&str>)> = parsed
        .value
        .observations
        .iter()
        .map(|o| (o.sequence, o.value.as_text()))
        .collect();
    assert_eq!(
        kept,
        [
            (9, Some("1.5")),
            (6, Some("fast")),
            (10, Some("1 2.5 -3")),
            (8, None)
        ]
    );
    assert_eq!(
        parsed.value.header.instance_id, 7,
        "a number as text is read too"
    );
    assert_eq!(parsed.value.observations[3].kind(), "System");
}

#[test]
fn broken_or_other_json_documents_are_clear_errors() {
    let broken = parse_streams_json(b"{\"MTConnectStreams\":{\"Header\":{").unwrap_err();
    assert!(matches!(broken, Error::Json { .. }), "{broken:?}");
    assert!(
        broken.to_string().starts_with("not a JSON document"),
        "{broken}"
    );
    let refused = br#"{"MTConnectError":{"jsonVersion":2,"Header":{"instanceId":1},
        "Errors":{"Error":[{"value":"'from' must be greater than 1082","errorCode":"OUT_OF_RANGE"}]}}}"#;
    match parse_streams_json(refused).unwrap_err() {
        Error::Agent(doc) => assert_eq!(doc.errors[0].text, "'from' must be greater than 1082"),
        other => panic!("{other:?}"),
    }
    let probe = br#"{"MTConnectDevices":{"Header":{},"Devices":{}}}"#;
    assert!(matches!(
        parse_streams_json(probe),
        Err(Error::UnexpectedRoot { .. })
    ));
    let big = vec![b' '; 1_000];
    assert!(matches!(
        parse_streams_json_with(&big, &ParseOptions::new().with_max_document_bytes(999)),
        Err(Error::TooLarge { limit: 999 })
    ));
    // Deeper than serde_json follows: an error, not a stack overflow.
    let deep = format!(
        "{{\"MTConnectStreams\":{}{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert!(parse_streams_json(deep.as_bytes()).is_err());
    // A byte order mark is skipped, as in XML.
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(br#"{"MTConnectStreams":{"Header":{"instanceId":3},"Streams":{}}}"#);
    assert_eq!(
        parse_streams_json(&bom).unwrap().value.header.instance_id,
        3
    );
}

#[test]
fn escaped_names_removed_table_cells_and_a_byte_order_mark_read_and_write_back() {
    let doc = br#"{"MTConnectStreams":{"jsonVersion":2,"Header":{"instanceId":1,"nextSequence":4},
      "Streams":{"DeviceStream":[{"name":"M","ComponentStream":[{"component":"Path","componentId":"p",
        "Events":{"WorkOffsetTable":[{"value":{"G54":{"X":1.5,"Y":{"removed":true}},"G55":{"removed":true}},
            "count":2,"dataItemId":"w","sequence":2,"timestamp":"2026-01-01T00:00:00Z","x\"y":"q","value2":"v"}],
          "Message":[{"value":"a \"quoted\"\nline","dataItemId":"m","sequence":3,"timestamp":"2026-01-01T00:00:00Z"}]}}]}]}}}"#;
    let parsed = parse_streams_json(doc).unwrap();
    assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
    let table = &parsed.value.observations[0];
    let entries = &table.extra().entries;
    assert_eq!(entries.len(), 2);
    assert_eq!(
        entries[0].cells,
        [("X".into(), "1.5".into()), ("Y".into(), "".into())]
    );
    assert!(entries[1].removed);
    for version in [JsonVersion::V1, JsonVersion::V2] {
        let json = StreamsWriter::default().write_document_json(&parsed.value, version);
        let again: Value = serde_json::from_str(&json).expect("valid JSON");
        assert!(again.is_object());
        let back = parse_streams_json(json.as_bytes()).unwrap();
        assert_eq!(comparable(&back.value), comparable(&parsed.value), "{json}");
    }
    // An error document with a byte order mark is an error document.
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(
        br#"{"MTConnectError":{"Errors":[{"Error":{"value":"no","errorCode":"INVALID_URI"}}]}}"#,
    );
    assert_eq!(
        factorydash_mtconnect::parse_error_json(&bom)
            .unwrap()
            .errors[0]
            .text,
        "no"
    );
    // Bytes that are not UTF-8: an error that says where.
    let err = parse_streams_json(b"{\"MTConnectStreams\":{\"Header\":{\"sender\":\"\xB0\"}}}")
        .unwrap_err();
    let Error::Json { position, .. } = err else {
        panic!("{err:?}")
    };
    assert_eq!(position.offset, 41);
    // A root that is not an object: the position is where its value is.
    let err = parse_streams_json(b"{\"MTConnectStreams\":\n  5}").unwrap_err();
    let Error::Json { position, .. } = err else {
        panic!("{err:?}")
    };
    assert_eq!(position.line, Some(2), "{position:?}");
}
