//! Messy real-world input: one bad observation never loses the document.

use factorydash_core::Category;
use factorydash_mtconnect::{parse_streams, ProblemKind, ValueRef};

const GOOD: &str = r#"<Samples><Position dataItemId="xp" sequence="10" timestamp="2024-01-01T00:00:00Z">1.5</Position>"#;

fn doc(body: &str) -> String {
    format!(
        r#"<?xml-stylesheet type="text/xsl" href="/styles/Streams.xsl"?>
<!-- a comment -->
<m:MTConnectStreams xmlns:m="urn:mtconnect.org:MTConnectStreams:1.3"><m:Header instanceId='7' nextSequence='13' firstSequence='1' lastSequence='12'/>
<m:Streams><m:DeviceStream name="M" uuid="u"><m:ComponentStream component="Linear" componentId="x">{body}</m:ComponentStream></m:DeviceStream></m:Streams></m:MTConnectStreams>"#
    )
}

#[test]
fn a_bad_observation_is_reported_and_skipped() {
    let xml = doc(&format!(
        r#"{GOOD}<Position dataItemId="xp" timestamp="2024-01-01T00:00:01Z">2</Position>
<Position dataItemId="xp" sequence="12" timestamp="yesterday">3</Position>
<Position dataItemId="xp" sequence="x" timestamp="2024-01-01T00:00:01Z">4</Position>
<Position sequence="11" timestamp="2024-01-01T00:00:01Z">5</Position>
<Position dataItemId="xp" sequence="12" timestamp="2024-01-01T00:00:02Z">6</Position></Samples>"#
    ));
    let parsed = parse_streams(xml.as_bytes()).unwrap();
    let values: Vec<_> = parsed
        .value
        .observations
        .iter()
        .map(|o| (o.sequence, o.value.clone()))
        .collect();
    assert_eq!(
        values,
        vec![
            (10, ValueRef::Text("1.5".into())),
            (12, ValueRef::Text("6".into()))
        ]
    );
    let kinds: Vec<_> = parsed.problems.iter().map(|p| p.kind).collect();
    assert_eq!(
        kinds,
        [
            ProblemKind::MissingAttribute,
            ProblemKind::InvalidAttribute,
            ProblemKind::InvalidAttribute,
            ProblemKind::MissingAttribute
        ]
    );
    assert!(parsed.is_complete());
    assert_eq!(parsed.value.header.instance_id, 7);
}

#[test]
fn bom_prefix_entities_and_whitespace() {
    let xml = doc(
        r#"<Events><x:Motion dataItemId="m" sequence="1" timestamp="2024-01-01T00:00:00"> A &amp; B&#x21; </x:Motion><Message dataItemId="msg" sequence="2" timestamp="2024-01-01T00:00:00Z" nativeCode=""/></Events>"#,
    );
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend_from_slice(xml.as_bytes());
    let parsed = parse_streams(&bytes).unwrap();
    let o = &parsed.value.observations;
    assert_eq!(o.len(), 2);
    assert_eq!(o[0].element, "x:Motion");
    assert_eq!(o[0].local_name(), "Motion");
    assert_eq!(o[0].value, ValueRef::Text("A & B!".into()));
    assert_eq!(o[0].category, Category::Event);
    assert_eq!(o[1].value, ValueRef::Text("".into()));
    let kinds: Vec<_> = parsed.problems.iter().map(|p| p.kind).collect();
    assert_eq!(
        kinds,
        [ProblemKind::UndeclaredPrefix, ProblemKind::MissingTimeZone]
    );
}

#[test]
fn a_truncated_document_keeps_what_came_before_and_says_so() {
    let xml = doc(&format!("{GOOD}</Samples>"));
    let cut = &xml.as_bytes()[..xml.find("</m:ComponentStream>").unwrap() + 5];
    let parsed = parse_streams(cut).unwrap();
    assert_eq!(parsed.value.observations.len(), 1);
    assert!(!parsed.is_complete());
}

#[test]
fn dataset_and_table_entries_become_key_value_text() {
    let xml = doc(
        r#"<Events><VariableDataSet dataItemId="v" sequence="1" timestamp="2024-01-01T00:00:00Z" count="2"><Entry key="a">1</Entry><Entry key="b" removed="true"/></VariableDataSet><WorkOffsetTable dataItemId="t" sequence="2" timestamp="2024-01-01T00:00:00Z"><Entry key="G54"><Cell key="X">1</Cell><Cell key="Y">2</Cell></Entry></WorkOffsetTable></Events>"#,
    );
    let parsed = parse_streams(xml.as_bytes()).unwrap();
    let v: Vec<_> = parsed
        .value
        .observations
        .iter()
        .map(|o| o.value.clone())
        .collect();
    assert_eq!(
        v,
        [
            ValueRef::Text("a=1 b".into()),
            ValueRef::Text("G54={X=1 Y=2}".into())
        ]
    );
}

#[test]
fn depth_and_size_are_bounded() {
    let deep = format!("{}{}", "<a>".repeat(10_000), "</a>".repeat(10_000));
    let xml = doc(&format!("<Samples>{deep}</Samples>"));
    let parsed = parse_streams(xml.as_bytes()).unwrap();
    assert!(parsed.value.observations.is_empty());
    let opts = factorydash_mtconnect::ParseOptions::new().with_max_document_bytes(10);
    assert!(matches!(
        factorydash_mtconnect::parse_streams_with(xml.as_bytes(), &opts),
        Err(factorydash_mtconnect::Error::TooLarge { limit: 10 })
    ));
}

#[test]
fn the_bufread_reader_yields_what_the_slice_parser_does() {
    use factorydash_mtconnect::{StreamsBufReader, StreamsItem};
    use std::io::BufReader;
    let path = crate::nist_recording().join("qdr_input001.xml.gz");
    let bytes = factorydash_mtconnect::recording::read_maybe_gzipped(&path).unwrap();
    let whole = parse_streams(&bytes).unwrap();
    // Straight from the gzip stream, with a small buffer: nothing held but the current element.
    let file = std::fs::File::open(&path).unwrap();
    let source = BufReader::with_capacity(512, flate2::read::GzDecoder::new(file));
    let mut observations = Vec::new();
    let mut problems = Vec::new();
    for item in StreamsBufReader::new(source).unwrap() {
        match item {
            StreamsItem::Observation(o) => observations.push(o),
            StreamsItem::Problem(p) => problems.push(p),
            _ => {}
        }
    }
    assert_eq!(observations, whole.value.observations);
    assert_eq!(problems.len(), whole.problems.len());

    let error = std::fs::read(crate::fixtures_dir().join("error-no-device.xml")).unwrap();
    match StreamsBufReader::new(error.as_slice()) {
        Err(factorydash_mtconnect::Error::Agent(doc)) => {
            assert_eq!(
                doc.errors[0].code,
                factorydash_mtconnect::ErrorCode::NoDevice
            )
        }
        Err(other) => panic!("expected the agent's error, got {other}"),
        Ok(_) => panic!("expected the agent's error"),
    }
}

/// The slice reader reads the common observation shape without quick-xml (a fast path);
/// the `BufRead` reader always goes through quick-xml. On every real fixture, and on the
/// shapes the fast path must hand back to quick-xml, both give the same items: the same
/// observations, the same problems at the same offsets.
#[test]
fn the_fast_path_gives_what_quick_xml_gives() {
    use factorydash_mtconnect::{StreamsBufReader, StreamsItem, StreamsReader};
    fn both(bytes: &[u8]) -> Option<(Vec<StreamsItem<'_>>, Vec<StreamsItem<'static>>)> {
        let fast: Vec<_> = StreamsReader::new(bytes).ok()?.collect();
        let slow: Vec<_> = StreamsBufReader::new(bytes).ok()?.collect();
        Some((fast, slow))
    }
    let mut compared = 0;
    for (name, bytes) in crate::fixtures::all_fixtures() {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
        if let Some((fast, slow)) = both(bytes) {
            assert_eq!(fast.len(), slow.len(), "{name}");
            for (f, s) in fast.iter().zip(&slow) {
                assert_eq!(f, s, "{name}");
            }
            compared += 1;
        }
    }
    assert!(compared >= 10, "only {compared} Streams fixtures compared");
    let head = r#"<MTConnectStreams><Header instanceId="1"/><Streams><DeviceStream name="M">
<ComponentStream component="Path" componentId="p"><Samples>"#;
    let tail = "</Samples></ComponentStream></DeviceStream></Streams></MTConnectStreams>";
    let a = r#"dataItemId="a" timestamp="2024-01-01T00:00:00Z""#;
    for body in [
        format!(r#"<Position {a} sequence="1">1.5</Position>"#),
        format!(r#"<Position {a} sequence="1"/><Position {a} sequence="2" />"#),
        format!(r#"<Position {a} sequence="1">1&amp;5</Position>"#),
        format!(r#"<Position {a} sequence="1"><![CDATA[2]]></Position>"#),
        format!(r#"<Position {a} sequence="1">2<!-- c --></Position>"#),
        format!(r#"<Position {a} sequence="1" x="a>b">2</Position >"#),
        format!(r#"<Position {a} sequence="1">2</Positio>"#),
        format!(r#"<Position {a} sequence="1">2</PositionX>"#),
        format!(r#"<Position {a} sequence="x">2</Position>"#),
        format!(r#"<Position {a} sequence="1"/x>2</Position>"#),
        format!(r#"<Position {a} sequence="1" y=>2</Position>"#),
        format!(r#"<x:Position {a} sequence="1">2</x:Position><!-- c -->"#),
        format!(r#"junk<Position {a} sequence="1">2</Position>"#),
        // Found by the fuzzer: quick-xml's name runs to whitespace, quotes and all.
        format!(r#"<Posi="1="x"/><Position {a} sequence="1">3</Position>"#),
        format!(r#"<Position {a} sequence="1">2"#),
        format!(r#"<PositionDataSet {a} sequence="1"><Entry key="k">1</Entry></PositionDataSet>"#),
    ] {
        let doc = format!("{head}{body}{tail}");
        let (fast, slow) = both(doc.as_bytes()).unwrap();
        assert_eq!(fast, slow, "{body}");
    }
    // The structure around the observations (DeviceStream, ComponentStream, the
    // containers) is read without quick-xml too: its end tags are checked by name as
    // quick-xml checks them, and anything odd is left to quick-xml.
    let obs = format!(r#"<Position {a} sequence="1">2</Position>"#);
    let component = r#"<ComponentStream component="Path" componentId="p">"#;
    for doc in [
        format!("{head}{obs}</Samples ></ComponentStream\n></DeviceStream></Streams></MTConnectStreams>"),
        format!("{head}{obs}</Events></ComponentStream></DeviceStream></Streams></MTConnectStreams>"),
        format!("{head}{obs}</Samples></DeviceStream></Streams></MTConnectStreams>"),
        format!("{head}{obs}</Samples x=\">\"></ComponentStream></DeviceStream></Streams></MTConnectStreams>"),
        format!("{head}{obs}</Samples"),
        format!("{head}{obs}<!-- c --></Samples><!-- d --></ComponentStream></DeviceStream></Streams></MTConnectStreams>"),
        format!("{head}{obs}</Samples>junk &amp; more</ComponentStream>{tail}"),
        // Found by the fuzzer: a malformed reference between elements is quick-xml's error.
        format!("{head}{obs}\n  &{obs}{tail}"),
        format!("{head}{obs}\n  &amp{obs}{tail}"),
        format!("{head}{obs}</Samples> & </ComponentStream>{tail}"),
        format!("{head}{obs}</Samples></ComponentStream>{component}<Events/><Samples>{obs}{tail}"),
        format!("{head}{obs}</Samples></ComponentStream><ComponentStream component=\"a&amp;b\" componentId=\"q\"><Samples>{obs}{tail}"),
        format!("{head}{obs}</Samples></ComponentStream><ComponentStream componentId='q' x=\"a>b\"><Samples>{obs}{tail}"),
        format!("{head}{obs}</Samples></ComponentStream><ComponentStream/ componentId='q'><Samples>{obs}{tail}"),
        format!("{head}{obs}</Samples></ComponentStream><ComponentStream\x0ccomponentId='q'><Samples>{obs}{tail}"),
        format!("{head}{obs}</Samples></ComponentStream\x0c><DeviceStream/></Streams></MTConnectStreams>"),
        format!("{head}{obs}</Samples></ComponentStream><Other><Deeper><Samples>{obs}</Samples></Deeper></Other></DeviceStream></Streams></MTConnectStreams>"),
        format!("{head}<Position {a} sequence=\"1\">2</Position\x0c>{tail}"),
        format!("{head}<Position\x0c{a} sequence=\"1\">2</Position>{tail}"),
    ] {
        let (fast, slow) = both(doc.as_bytes()).unwrap();
        assert_eq!(fast, slow, "{doc}");
    }
    // Deeper than the limit: skipped by quick-xml, reported the same way.
    let options = factorydash_mtconnect::ParseOptions::new().with_max_depth(6);
    let doc = format!("{head}{obs}</Samples></ComponentStream>{component}<Samples><Position {a} sequence=\"2\"><x>1</x></Position>{obs}{tail}");
    let fast: Vec<_> = StreamsReader::with_options(doc.as_bytes(), &options)
        .unwrap()
        .collect();
    let slow: Vec<_> = StreamsBufReader::with_options(doc.as_bytes(), &options)
        .unwrap()
        .collect();
    assert_eq!(fast, slow);
    assert!(fast.iter().any(|i| matches!(i, StreamsItem::Problem(p) if p.kind == factorydash_mtconnect::ProblemKind::TooDeep)));
}

#[test]
fn input_that_is_not_xml_says_why_with_its_source() {
    use factorydash_mtconnect::{parse_streams, Error};
    use std::error::Error as _;

    assert!(matches!(parse_streams(b""), Err(Error::NoRoot)));
    assert!(matches!(
        parse_streams(b"<?xml version=\"1.0\"?>\n<!-- c -->\n"),
        Err(Error::NoRoot)
    ));
    // Lexically broken before the root: a syntax error, with its line and column.
    let err = parse_streams(b"<?xml version=\"1.0\"?>\n  <!-- never closed").unwrap_err();
    let Error::Syntax { position, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!((position.line, position.column), (Some(2), Some(3)));
    assert!(
        err.source().is_some(),
        "the XML reader's error is the source"
    );
    // Well-formedness broken before the root: an end tag that closes nothing.
    let err = parse_streams(b"</MTConnectStreams>").unwrap_err();
    assert!(matches!(err, Error::IllFormed { .. }), "{err:?}");
    assert!(err.source().is_some());
    // An I/O error of a BufRead source is an I/O error, with its source.
    struct Failing;
    impl std::io::Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk gone"))
        }
    }
    let err = factorydash_mtconnect::StreamsBufReader::new(std::io::BufReader::new(Failing))
        .err()
        .expect("an error");
    assert!(matches!(err, Error::Io(_)), "{err:?}");
    assert_eq!(err.source().unwrap().to_string(), "disk gone");
}

#[test]
fn a_problem_tells_its_line_and_column_on_request() {
    let xml = "\u{feff}<MTConnectStreams><Header instanceId=\"1\"/><Streams>\n<DeviceStream name=\"M\"><ComponentStream component=\"Linear\" componentId=\"x\"><Samples>\n  <Position dataItemId=\"xp\" timestamp=\"2024-01-01T00:00:00Z\">1</Position>\n</Samples></ComponentStream></DeviceStream></Streams></MTConnectStreams>";
    let parsed = parse_streams(xml.as_bytes()).unwrap();
    let problem = &parsed.problems[0];
    assert_eq!(problem.kind, ProblemKind::MissingAttribute, "{problem}");
    let position = problem.position_in(xml.as_bytes());
    assert_eq!(position.offset, problem.offset);
    assert_eq!((position.line, position.column), (Some(3), Some(3)));
    assert_eq!(
        position.to_string(),
        format!("line 3, column 3 (byte {})", problem.offset)
    );
}
