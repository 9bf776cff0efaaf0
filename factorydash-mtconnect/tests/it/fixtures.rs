//! Every real fixture parses; a summary of each (counts, header, problems, a few
//! observations) is snapshotted with insta and reviewed.

use std::collections::BTreeMap;

use factorydash_mtconnect::{
    parse_devices, parse_document, parse_error, parse_streams, Document, Error, ParseOptions,
};
use serde_json::{json, Value};

/// Every fixture: `*.xml` and gzipped `*.xml.gz`.
pub fn all_fixtures() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(crate::fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.ends_with(".xml") || name.ends_with(".xml.gz")
        })
        .map(|p| {
            let name = p.file_name().unwrap().to_str().unwrap().to_owned();
            (
                name,
                factorydash_mtconnect::recording::read_maybe_gzipped(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// The parse of a document, for a snapshot: everything for small documents; for large
/// ones the counts, the first 20 observations by sequence and every problem.
fn summarize(bytes: &[u8]) -> Value {
    match parse_document(bytes, &ParseOptions::default()) {
        Ok(Document::Streams(parsed)) => {
            let doc = &parsed.value;
            let mut by_category: BTreeMap<String, usize> = BTreeMap::new();
            let mut unavailable = 0;
            for o in &doc.observations {
                *by_category.entry(o.category.to_string()).or_default() += 1;
                if o.value == factorydash_mtconnect::ValueRef::Unavailable {
                    unavailable += 1;
                }
            }
            let mut sorted: Vec<_> = doc.observations.iter().collect();
            sorted.sort_by_key(|o| o.sequence);
            let shown = if sorted.len() <= 300 {
                sorted.len()
            } else {
                20
            };
            json!({
                "document": "MTConnectStreams",
                "header": doc.header,
                "device_streams": doc.device_streams,
                "component_streams": doc.component_streams.len(),
                "observations": doc.observations.len(),
                "by_category": by_category,
                "unavailable": unavailable,
                "observations_by_sequence": sorted[..shown],
                "problems": parsed.problems,
            })
        }
        Ok(Document::Devices(parsed)) => json!({
            "document": "MTConnectDevices",
            "devices": parsed.value,
            "problems": parsed.problems,
        }),
        Ok(Document::Assets(parsed)) => json!({
            "document": "MTConnectAssets",
            "header": parsed.value.header,
            "cutting_tools": parsed.value.cutting_tools.len(),
            "near_life_limit": parsed.value.cutting_tools.iter()
                .filter(|t| t.near_life_limit()).map(|t| &t.asset_id).collect::<Vec<_>>(),
            "tools": parsed.value.cutting_tools,
            "other": parsed.value.other,
            "problems": parsed.problems,
        }),
        Ok(Document::Error(doc)) => json!({ "document": "MTConnectError", "error": doc }),
        Err(e) => json!({ "error": e.to_string() }),
    }
}

#[test]
fn every_fixture_snapshot() {
    for (name, bytes) in all_fixtures() {
        insta::with_settings!({ snapshot_suffix => name.clone(), prepend_module_to_snapshot => false }, {
            insta::assert_json_snapshot!("fixture", summarize(&bytes));
        });
    }
}

#[test]
fn every_streams_fixture_is_within_its_sequence_range_each_sequence_once() {
    let mut checked = 0;
    for (name, bytes) in all_fixtures() {
        let Ok(Document::Streams(parsed)) = parse_document(&bytes, &ParseOptions::default()) else {
            continue;
        };
        let doc = parsed.value;
        assert!(
            parsed
                .problems
                .iter()
                .all(|p| p.kind != factorydash_mtconnect::ProblemKind::Syntax),
            "{name}"
        );
        let mut seqs: Vec<u64> = doc.observations.iter().map(|o| o.sequence).collect();
        seqs.sort_unstable();
        let n = seqs.len();
        seqs.dedup();
        assert_eq!(seqs.len(), n, "{name}: a sequence twice");
        let (first, next) = (
            doc.header.first_sequence.unwrap(),
            doc.header.next_sequence.unwrap(),
        );
        // `/current` keeps each data item's latest value even after the buffer moved past
        // it: only `/sample` answers lie within `firstSequence..nextSequence`.
        let lowest = if name.contains("sample") { first } else { 0 };
        assert!(
            seqs.iter().all(|s| (lowest..next).contains(s)),
            "{name}: sequences outside {lowest}..{next}"
        );
        checked += 1;
    }
    assert!(checked >= 12, "{checked}");
}

#[test]
fn nist_current_counts_match_the_sources_notes() {
    // SOURCES.md: 242 observations, 80 Samples / 108 Events / 54 Conditions, 92 UNAVAILABLE,
    // 199 of 242 timestamps without 'Z', `x:` used without a declaration.
    let bytes = crate::fixture("nist-smstestbed-current-2021-02-11.xml");
    let parsed = parse_streams(&bytes).unwrap();
    let doc = &parsed.value;
    assert_eq!(doc.observations.len(), 242);
    let count = |c| doc.observations.iter().filter(|o| o.category == c).count();
    use factorydash_core::Category::*;
    assert_eq!(
        (count(Sample), count(Event), count(Condition)),
        (80, 108, 54)
    );
    assert_eq!(doc.device_streams.len(), 8);
    let kinds: Vec<_> = parsed.problems.iter().map(|p| p.kind).collect();
    use factorydash_mtconnect::ProblemKind::*;
    assert!(
        kinds.contains(&MissingTimeZone) && kinds.contains(&UndeclaredPrefix),
        "{kinds:?}"
    );
    assert!(parsed.is_complete());
    let faults: Vec<_> = doc
        .observations
        .iter()
        .filter(|o| o.level == Some(factorydash_core::ConditionLevel::Fault))
        .collect();
    assert_eq!(faults.len(), 2);
    assert!(faults.iter().all(|f| f.native_code.is_some()));
}

#[test]
fn two_faults_on_one_data_item_are_both_kept() {
    let bytes = crate::fixture("nist-smstestbed-current-2025-02-28.xml");
    let doc = parse_streams(&bytes).unwrap().value;
    assert_eq!(doc.observations.len(), 243);
    let on_dtop3 = doc
        .observations
        .iter()
        .filter(|o| {
            o.data_item_id == "GFAgie01-dtop_3"
                && o.level == Some(factorydash_core::ConditionLevel::Fault)
        })
        .count();
    assert_eq!(on_dtop3, 2);
}

#[test]
fn nist_probe_has_eight_devices_and_242_data_items() {
    let parsed = parse_devices(&crate::fixture("nist-smstestbed-probe-2019-07-06.xml")).unwrap();
    let infos = parsed.value.device_infos("https://smstestbed.nist.gov/vds");
    let names: Vec<_> = infos.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        ["GFAgie01", "Mazak01", "Mazak03", "Hurco01", "Hurco02", "Hurco03", "Hurco04", "Hurco06"]
    );
    let total: usize = infos.iter().map(|d| d.data_items.len()).sum();
    assert_eq!(total, 242);
    let (path, item) = parsed.value.data_item("GFAgie01-dtop_1").unwrap();
    assert_eq!(item.kind, "AVAILABILITY");
    assert_eq!(path.first().copied(), Some("GFAgie01"));
}

#[test]
fn error_documents_are_typed() {
    let doc = parse_error(&crate::fixture("error-no-device.xml")).unwrap();
    assert_eq!(doc.errors.len(), 1);
    assert_eq!(
        doc.errors[0].code,
        factorydash_mtconnect::ErrorCode::NoDevice
    );
    assert_eq!(doc.errors[0].text, "Could not find the device 'foo'");
    assert_eq!(doc.header.instance_id, 1_744_514_291);
    assert!(doc.header.device_model_change_time.is_some());
    match parse_streams(&crate::fixture("error-no-device.xml")) {
        Err(Error::Agent(d)) => assert_eq!(*d, doc),
        other => panic!("expected the agent's error, got {other:?}"),
    }
}

#[test]
fn cutting_tools_of_the_reference_agent_and_of_a_demo_shaped_document() {
    use factorydash_mtconnect::{parse_assets, CountDirection, ToolLifeKind};
    // The reference agent's 1.2 test document: one tool, removed, counting down from its
    // `maximum` (read as `initial`), 24 cutting items.
    let parsed = parse_assets(&crate::fixture(
        "cppagent-sample-assets-cuttingtool-v1.2.xml",
    ))
    .unwrap();
    assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
    let [tool] = parsed.value.cutting_tools.as_slice() else {
        panic!("{:?}", parsed.value)
    };
    assert!(tool.removed);
    assert_eq!(tool.tool_id.as_deref(), Some("KSSP300R4SD43L240"));
    assert_eq!(tool.status, ["NEW"]);
    assert_eq!(tool.cutting_items, Some(24));
    let life = &tool.lives[0];
    assert_eq!(
        (life.kind, life.direction, life.value, life.initial),
        (
            ToolLifeKind::PartCount,
            CountDirection::Down,
            Some(200.0),
            Some(300.0)
        )
    );
    assert_eq!(life.remaining(), Some(200.0));
    assert!(!tool.near_life_limit());

    // demo.mtconnect.org's shape: Okuma tools with `limit="0"` (none set) are near only
    // when EXPIRED; Mazak tools keep their life in CuttingItem/ItemLife (not read).
    let parsed = parse_assets(&crate::fixture("factorydash-assets-cuttingtools-v2.0.xml")).unwrap();
    assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
    let tools = &parsed.value.cutting_tools;
    assert_eq!(tools.len(), 6);
    assert_eq!(
        tools
            .iter()
            .filter(|t| t.device_uuid.as_deref() == Some("OKUMA.778201"))
            .count(),
        3
    );
    let near: Vec<String> = tools
        .iter()
        .filter(|t| t.near_life_limit())
        .map(|t| t.label())
        .collect();
    assert_eq!(
        near,
        ["T27", "T23"],
        "EXPIRED; DOWN at 42 below its warning 50"
    );
    assert_eq!(tools[3].status, ["USED", "AVAILABLE", "ALLOCATED"]);
    assert_eq!(tools[3].label(), "0", "no ProgramToolNumber: the toolId");
    assert_eq!(
        tools[5].cutting_items,
        Some(4),
        "`count`, not the one listed"
    );
}
