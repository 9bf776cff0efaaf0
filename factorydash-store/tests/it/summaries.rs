//! Summaries kept as data arrives: the same totals on every store, equal to what the
//! observations say, whatever the batches repeat.

use chrono::{DateTime, Utc};
use factorydash_core::states;
use factorydash_core::summary::{Measure, MinuteRange, SummaryTotal};
use factorydash_core::{
    Batch, Category, ConditionLevel, ConditionState, Observation, TimeWindow, Value,
};
use factorydash_store::{Store, SummaryQuery};

use crate::conformance::{at_agent, batch, recording, AGENT};

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn event(seq: u64, t: &str, item: &str, kind: &str, sub: Option<&str>, value: &str) -> Observation {
    Observation {
        sequence: seq,
        timestamp: at(t),
        device: "M".into(),
        component_id: "path".into(),
        data_item_id: item.into(),
        name: None,
        category: Category::Event,
        kind: kind.into(),
        sub_type: sub.map(str::to_owned),
        value: Value::from_text(value),
        condition: None,
    }
}

fn fault(seq: u64, t: &str, level: ConditionLevel) -> Observation {
    Observation {
        category: Category::Condition,
        kind: "System".into(),
        condition: Some(ConditionState {
            level,
            native_code: Some("E1".into()),
            native_severity: None,
            qualifier: None,
        }),
        ..event(seq, t, "sys", "System", None, "")
    }
}

fn value(totals: &[SummaryTotal], measure: Measure, state: &str) -> f64 {
    totals
        .iter()
        .filter(|t| t.measure == measure && t.state == state)
        .map(|t| t.value)
        .sum()
}

/// A day of one machine, in three batches, the second sent twice: every figure is
/// counted once, closed periods and the state still open alike.
pub async fn summaries_count_each_state_once(store: &dyn Store) {
    use ConditionLevel::*;
    let observations = vec![
        event(
            1,
            "2026-03-02T06:00:00Z",
            "exec",
            "Execution",
            None,
            "READY",
        ),
        event(
            2,
            "2026-03-02T06:00:00Z",
            "pc",
            "PartCount",
            Some("ALL"),
            "100",
        ),
        event(
            3,
            "2026-03-02T06:30:00Z",
            "exec",
            "Execution",
            None,
            "ACTIVE",
        ),
        event(
            4,
            "2026-03-02T07:15:30Z",
            "pc",
            "PartCount",
            Some("ALL"),
            "112",
        ),
        fault(5, "2026-03-02T07:20:00Z", Fault),
        event(
            6,
            "2026-03-02T07:20:00Z",
            "exec",
            "Execution",
            None,
            "STOPPED",
        ),
        fault(7, "2026-03-02T07:50:00Z", Normal),
        event(
            8,
            "2026-03-02T07:50:00Z",
            "exec",
            "Execution",
            None,
            "ACTIVE",
        ),
        // Reset to 0, then 3 more.
        event(
            9,
            "2026-03-02T09:00:00Z",
            "pc",
            "PartCount",
            Some("ALL"),
            "3",
        ),
        event(
            10,
            "2026-03-02T10:00:00Z",
            "exec",
            "Execution",
            None,
            "UNAVAILABLE",
        ),
    ];
    for chunk in [
        &observations[..3],
        &observations[3..8],
        &observations[3..8],
        &observations[8..],
    ] {
        let mut b: Batch = batch(chunk);
        b.next_sequence = chunk.last().unwrap().sequence + 1;
        store.append(&b).await.unwrap();
    }
    let ranges = vec![MinuteRange::new(
        at("2026-03-02T06:00:00Z"),
        at("2026-03-02T14:00:00Z"),
    )];
    let q = SummaryQuery::new(ranges, at("2026-03-02T12:00:00Z"));
    let totals = store.summary(&q).await.unwrap();
    assert!(totals.iter().all(|t| t.agent == AGENT && t.device == "M"));
    // READY 06:00–06:30; ACTIVE 06:30–07:20 and 07:50–10:00; STOPPED 07:20–07:50;
    // UNAVAILABLE 10:00 until the time given (12:00), still open.
    assert_eq!(value(&totals, Measure::Execution, "READY"), 1800.0);
    assert_eq!(
        value(&totals, Measure::Execution, "ACTIVE"),
        3000.0 + 7800.0
    );
    assert_eq!(value(&totals, Measure::Execution, "STOPPED"), 1800.0);
    assert_eq!(value(&totals, Measure::Execution, "UNAVAILABLE"), 7200.0);
    assert_eq!(value(&totals, Measure::Fault, ""), 1800.0);
    assert_eq!(value(&totals, Measure::PartCount, "ALL"), 12.0 + 3.0);
    // Downtime by cause: READY 06:00–06:30 (one stop); STOPPED 07:20–07:50 with Fault E1
    // active (one stop), each once though a batch came twice.
    assert_eq!(value(&totals, Measure::Downtime, "READY"), 1800.0);
    assert_eq!(value(&totals, Measure::Downtime, "FAULT E1"), 1800.0);
    assert_eq!(value(&totals, Measure::Stops, "READY"), 1.0);
    assert_eq!(value(&totals, Measure::Stops, "FAULT E1"), 1.0);
    // Parts per program: no Program reported, so all under the empty program.
    assert_eq!(value(&totals, Measure::ProgramParts, "ALL|"), 12.0 + 3.0);

    // A window cut at minutes inside hours: 07:10–07:40 holds 10 min ACTIVE, 20 STOPPED.
    let q = SummaryQuery::new(
        vec![MinuteRange::new(
            at("2026-03-02T07:10:00Z"),
            at("2026-03-02T07:40:00Z"),
        )],
        at("2026-03-02T12:00:00Z"),
    );
    let totals = store.summary(&q).await.unwrap();
    assert_eq!(value(&totals, Measure::Execution, "ACTIVE"), 600.0);
    assert_eq!(value(&totals, Measure::Execution, "STOPPED"), 1200.0);
    assert_eq!(value(&totals, Measure::PartCount, "ALL"), 12.0);

    // An agent last heard from at 11:00: its open state counts until then.
    let mut q = SummaryQuery::new(
        vec![MinuteRange::new(
            at("2026-03-02T06:00:00Z"),
            at("2026-03-02T14:00:00Z"),
        )],
        at("2026-03-02T12:00:00Z"),
    );
    q.agent_until
        .insert(AGENT.into(), at("2026-03-02T11:00:00Z"));
    let totals = store.summary(&q).await.unwrap();
    assert_eq!(value(&totals, Measure::Execution, "UNAVAILABLE"), 3600.0);

    // Another device asked for: nothing.
    q.devices = Some(vec![at_agent("other")]);
    assert!(store.summary(&q).await.unwrap().is_empty());

    // Refused: ranges out of order.
    let r = MinuteRange::new(at("2026-03-02T06:00:00Z"), at("2026-03-02T07:00:00Z"));
    let bad = SummaryQuery::new(vec![r, r], at("2026-03-02T12:00:00Z"));
    assert!(store.summary(&bad).await.is_err());

    // Rebuilt from the observations: the same figures.
    store
        .put_devices(
            AGENT,
            &[factorydash_core::DeviceInfo {
                agent: AGENT.into(),
                name: "M".into(),
                uuid: None,
                id: "M".into(),
                data_items: ["exec:EXECUTION", "pc:PART_COUNT", "sys:SYSTEM"]
                    .iter()
                    .map(|s| {
                        let (id, kind) = s.split_once(':').unwrap();
                        factorydash_core::DataItemInfo {
                            id: id.into(),
                            name: None,
                            category: if kind == "SYSTEM" {
                                Category::Condition
                            } else {
                                Category::Event
                            },
                            kind: kind.into(),
                            sub_type: (kind == "PART_COUNT").then(|| "ALL".into()),
                            units: None,
                            component: "Path".into(),
                            component_id: "path".into(),
                            component_name: None,
                        }
                    })
                    .collect(),
            }],
        )
        .await
        .unwrap();
    // The whole day, open states counted until noon.
    let day = || {
        SummaryQuery::new(
            vec![MinuteRange::new(
                at("2026-03-02T00:00:00Z"),
                at("2026-03-03T00:00:00Z"),
            )],
            at("2026-03-02T12:00:00Z"),
        )
    };
    let before = store.summary(&day()).await.unwrap();
    let outcome = store
        .rebuild_summaries(at("2026-03-02T05:00:00Z"))
        .await
        .unwrap();
    assert_eq!(outcome.devices, 1);
    assert_eq!(outcome.observations, observations.len() as u64);
    let after = store.summary(&day()).await.unwrap();
    assert_eq!(before, after);

    // Retention: periods that end before the cutoff go; the open state stays.
    assert!(
        store
            .prune_summaries(at("2026-03-03T00:00:00Z"))
            .await
            .unwrap()
            > 0
    );
    let left = store.summary(&day()).await.unwrap();
    assert_eq!(value(&left, Measure::Execution, "ACTIVE"), 0.0);
    assert_eq!(value(&left, Measure::Execution, "UNAVAILABLE"), 7200.0);
}

/// The NIST recording's Execution over its twelve pages: the summary gives the
/// seconds the observations give by core's own interval computation.
pub async fn summaries_agree_with_the_observations_of_a_real_agent(store: &dyn Store) {
    let mut observations = Vec::new();
    for page in 1..=12 {
        let bytes = recording(&format!("qdr_input{page:03}.xml.gz"));
        observations.extend(
            factorydash_mtconnect::parse_streams(&bytes)
                .unwrap()
                .value
                .to_observations(),
        );
    }
    observations.sort_by_key(|o| o.sequence);
    observations.dedup_by_key(|o| o.sequence);
    for chunk in observations.chunks(5000) {
        store.append(&batch(chunk)).await.unwrap();
    }
    let mut exec: Vec<(DateTime<Utc>, Value)> = observations
        .iter()
        .filter(|o| o.kind == "Execution")
        .map(|o| (o.timestamp, o.value.clone()))
        .collect();
    // The agent stamps its own UNAVAILABLEs with its start (2016-09-28) among adapter
    // data of 2016-05-02: in the stretch between two of them (sequences 70134 to 76691),
    // timestamps follow sequences, and the summary must give what the timestamps give.
    exec.retain(|(t, _)| *t < at("2016-06-01T00:00:00Z"));
    exec.sort_by_key(|(t, _)| *t);
    let range = MinuteRange::new(at("2016-05-02T20:31:00Z"), at("2016-05-02T21:01:00Z"));
    let last = at("2016-05-02T21:01:00Z");
    let window = TimeWindow::new(range.start(), range.end()).unwrap();
    let before = exec
        .iter()
        .rev()
        .find(|(t, _)| *t < window.from())
        .map(|(_, v)| v);
    let intervals = states::intervals(before, &exec, &window);
    assert!(
        intervals.len() > 20,
        "the stretch changes Execution often: {intervals:?}"
    );
    let q = SummaryQuery::new(vec![range], last);
    let totals = store.summary(&q).await.unwrap();
    for state in [
        "ACTIVE",
        "READY",
        "STOPPED",
        "INTERRUPTED",
        "FEED_HOLD",
        "UNAVAILABLE",
    ] {
        let expected: f64 = intervals
            .iter()
            .filter(|i| i.state == state)
            .map(|i| (i.to - i.from).num_milliseconds() as f64 / 1000.0)
            .sum();
        let got = value(&totals, Measure::Execution, state);
        assert!(
            (got - expected).abs() < 0.01,
            "{state}: {got} s, observations say {expected} s"
        );
    }
}

/// A stop under way at a stop list's start (`STOPPED`, then `READY`, then `ACTIVE`: one
/// stop) is listed with the time it began whatever the window, so that a reason given to
/// it is found from every window.
pub async fn a_stop_under_way_at_a_windows_start_keeps_when_it_began(store: &dyn Store) {
    let device = factorydash_core::DeviceInfo {
        agent: AGENT.into(),
        name: "M".into(),
        uuid: None,
        id: "M".into(),
        data_items: vec![factorydash_core::DataItemInfo {
            id: "exec".into(),
            name: None,
            category: Category::Event,
            kind: "EXECUTION".into(),
            sub_type: None,
            units: None,
            component: "Path".into(),
            component_id: "path".into(),
            component_name: None,
        }],
    };
    store
        .put_devices(AGENT, std::slice::from_ref(&device))
        .await
        .unwrap();
    let exec = |seq, t, v| event(seq, t, "exec", "Execution", None, v);
    store
        .append(&batch(&[
            exec(1, "2026-03-02T06:00:00Z", "ACTIVE"),
            exec(2, "2026-03-02T07:00:00Z", "STOPPED"),
            exec(3, "2026-03-02T07:30:00Z", "READY"),
            // Sent again after a reconnect: still the same stop.
            exec(4, "2026-03-02T07:40:00Z", "READY"),
            exec(5, "2026-03-02T08:00:00Z", "ACTIVE"),
        ]))
        .await
        .unwrap();
    for (from, to, ended) in [
        ("2026-03-02T06:00:00Z", "2026-03-02T09:00:00Z", true),
        ("2026-03-02T07:45:00Z", "2026-03-02T09:00:00Z", true),
        ("2026-03-02T07:35:00Z", "2026-03-02T07:50:00Z", false),
    ] {
        let list = factorydash_store::stops(store, &device, at(from), at(to))
            .await
            .unwrap();
        let began: Vec<_> = list.stops.iter().map(|s| (s.began, s.ended)).collect();
        let want = ended.then(|| at("2026-03-02T08:00:00Z"));
        assert_eq!(began, [(at("2026-03-02T07:00:00Z"), want)], "{from} – {to}");
    }
}
