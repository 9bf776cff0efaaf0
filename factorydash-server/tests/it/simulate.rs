//! `factorydash simulate` over real HTTP: the probe, `/sample` paging, determinism from the
//! seed, believable behaviour (cycles, part counts, alarms that clear), and `serve`
//! following a simulated agent. No timing assertions: every wait is a generous bound.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use factorydash_mtconnect::{parse_assets, parse_devices, parse_streams, Header, ValueRef};

use crate::support::{get_text, serve_following, simulate, stored, wait_for};

/// One observation as a test compares it (no timestamp).
#[derive(Debug, Clone, PartialEq)]
struct Obs {
    sequence: u64,
    device: String,
    data_item_id: String,
    /// The element: `Position`, `Execution`, or the level of a Condition.
    element: String,
    /// The value, `UNAVAILABLE` when unavailable.
    value: String,
    native_code: Option<String>,
}

/// A `/sample` or `/current` answer: its header and observations in sequence order.
async fn streams(url: &str) -> (Header, Vec<Obs>) {
    let text = get_text(url).await;
    let doc = parse_streams(text.as_bytes()).unwrap_or_else(|e| panic!("{url}: {e}: {text}"));
    let doc = doc.value;
    let mut obs: Vec<Obs> = doc
        .observations
        .iter()
        .map(|o| {
            let c = &doc.component_streams[o.component_stream];
            Obs {
                sequence: o.sequence,
                device: doc.device_streams[c.device_stream].name.to_string(),
                data_item_id: o.data_item_id.to_string(),
                element: o.element.to_string(),
                value: match &o.value {
                    ValueRef::Unavailable => "UNAVAILABLE".to_owned(),
                    ValueRef::Text(t) => t.to_string(),
                },
                native_code: o.native_code.as_ref().map(|c| c.to_string()),
            }
        })
        .collect();
    obs.sort_by_key(|o| o.sequence);
    (doc.header, obs)
}

/// Waits until the agent at `agent` (a base URL) holds observations up to `sequence`.
async fn wait_for_sequence(agent: &str, sequence: u64) -> Header {
    let start = Instant::now();
    loop {
        let (header, _) = streams(&format!("{agent}/sample?count=1")).await;
        if header.last_sequence.unwrap_or(0) >= sequence {
            return header;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "{agent} did not reach sequence {sequence} in 120 s: {header:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The first `n` observations of `agent`, read in pages of `page` from sequence 1.
async fn first(agent: &str, n: u64, page: u64) -> Vec<Obs> {
    wait_for_sequence(agent, n).await;
    let mut all = Vec::new();
    let mut from = 1;
    while from <= n {
        let (header, obs) = streams(&format!("{agent}/sample?from={from}&count={page}")).await;
        assert!(!obs.is_empty(), "a page from {from}");
        from = header.next_sequence.unwrap();
        all.extend(obs);
    }
    all.truncate(n as usize);
    all
}

#[tokio::test(flavor = "multi_thread")]
async fn the_probe_has_three_machines_per_agent_with_unique_names_and_ids() {
    let sim = simulate(&[
        "--agents",
        "2",
        "--machines-per-agent",
        "3",
        "--rate",
        "10hz",
        "--seed",
        "7",
    ])
    .await;
    let mut names = HashSet::new();
    let mut ids = HashSet::new();
    for agent in ["agent-01", "agent-02"] {
        let text = get_text(format!("{}/{agent}/probe", sim.base)).await;
        let devices = parse_devices(text.as_bytes()).unwrap().value;
        assert_eq!(devices.devices.len(), 3, "{agent}");
        for device in &devices.devices {
            let name = device.name.clone().unwrap();
            assert!(names.insert(name.clone()), "{name} twice");
            for (_, c) in device.walk() {
                assert!(ids.insert(c.id.clone()), "component id {} twice", c.id);
                for d in &c.data_items {
                    assert!(ids.insert(d.id.clone()), "data item id {} twice", d.id);
                }
            }
        }
        // The real models, renamed per instance.
        let models: Vec<String> = devices
            .devices
            .iter()
            .map(|d| d.name.clone().unwrap())
            .collect();
        assert!(models.iter().any(|n| n.starts_with("Mazak-")), "{models:?}");
        // Every data item of the probe is published: /current has one of each.
        let items: usize = devices
            .devices
            .iter()
            .flat_map(|d| d.walk())
            .map(|(_, c)| c.data_items.len())
            .sum();
        wait_for_sequence(&format!("{}/{agent}", sim.base), items as u64).await;
        let (_, current) = streams(&format!("{}/{agent}/current", sim.base)).await;
        assert_eq!(
            current.len(),
            items,
            "{agent}: one observation per data item"
        );
        // CuttingTool assets.
        let text = get_text(format!("{}/{agent}/assets", sim.base)).await;
        let assets = parse_assets(text.as_bytes()).unwrap().value;
        assert!(!assets.cutting_tools.is_empty());
        assert!(assets.other.is_empty());
    }
    assert_eq!(names.len(), 6);
    // With two agents nothing is served at the root.
    let root = reqwest::get(format!("{}/probe", sim.base)).await.unwrap();
    assert_eq!(root.status().as_u16(), 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn sample_pages_are_contiguous_and_the_buffer_drops_the_oldest() {
    let sim = simulate(&[
        "--agents",
        "2",
        "--machines-per-agent",
        "3",
        "--rate",
        "20hz",
        "--seed",
        "7",
        "--buffer",
        "4096",
    ])
    .await;
    let agent = format!("{}/agent-02", sim.base);
    let header = wait_for_sequence(&agent, 6000).await;
    assert_eq!(header.buffer_size, Some(4096));
    let (first, last) = (
        header.first_sequence.unwrap(),
        header.last_sequence.unwrap(),
    );
    assert_eq!(last + 1 - first, 4096, "a full buffer: {header:?}");
    // Read 400 from 500 behind the newest: the buffer drops about 3,600 first.
    let mut from = last - 500;
    for _ in 0..4 {
        let (header, obs) = streams(&format!("{agent}/sample?from={from}&count=100")).await;
        let sequences: Vec<u64> = obs.iter().map(|o| o.sequence).collect();
        assert_eq!(sequences, (from..from + 100).collect::<Vec<_>>());
        assert_eq!(header.next_sequence, Some(from + 100));
        let (first, last) = (
            header.first_sequence.unwrap(),
            header.last_sequence.unwrap(),
        );
        assert_eq!(last + 1 - first, 4096, "{header:?}");
        assert!(first <= from, "{header:?}");
        from += 100;
    }
    // What fell out is refused, as a real agent does.
    let old = reqwest::get(format!("{agent}/sample?from=1&count=10"))
        .await
        .unwrap();
    assert_eq!(old.status().as_u16(), 400);
    let e = factorydash_mtconnect::parse_error(old.text().await.unwrap().as_bytes()).unwrap();
    assert_eq!(
        e.errors[0].code,
        factorydash_mtconnect::ErrorCode::OutOfRange
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_seed_gives_the_same_observations() {
    let args = [
        "--agents",
        "2",
        "--machines-per-agent",
        "3",
        "--rate",
        "10hz",
        "--seed",
        "7",
    ];
    let one = simulate(&args).await;
    let two = simulate(&args).await;
    let mut other = args;
    other[7] = "8";
    let three = simulate(&other).await;
    const N: u64 = 1200;
    let a = first(&format!("{}/agent-02", one.base), N, 500).await;
    let b = first(&format!("{}/agent-02", two.base), N, 1000).await;
    let c = first(&format!("{}/agent-02", three.base), N, 1000).await;
    assert_eq!(a.len() as u64, N);
    assert_eq!(a, b, "seed 7 twice");
    assert_ne!(a, c, "seeds 7 and 8");
}

#[tokio::test(flavor = "multi_thread")]
async fn programs_run_in_cycles_and_the_part_count_rises() {
    let sim = simulate(&[
        "--agents",
        "1",
        "--machines-per-agent",
        "3",
        "--rate",
        "50hz",
        "--cycle-time",
        "2s",
        "--fault-rate",
        "0",
        "--seed",
        "7",
    ])
    .await;
    // One agent stands in for a plain agent at the root too.
    let probe = get_text(format!("{}/probe", sim.base)).await;
    assert_eq!(
        parse_devices(probe.as_bytes()).unwrap().value.devices.len(),
        3
    );

    let mut executions: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut parts: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut xs: BTreeMap<String, HashSet<String>> = BTreeMap::new();
    let mut from = 1;
    let start = Instant::now();
    let done = |executions: &BTreeMap<String, Vec<String>>, parts: &BTreeMap<String, Vec<i64>>| {
        executions.values().any(|e| {
            e.windows(2)
                .filter(|w| w[0] == "ACTIVE" && w[1] == "READY")
                .count()
                >= 2
        }) && parts
            .values()
            .any(|p| p.last().unwrap() - p.first().unwrap() >= 2)
    };
    while !done(&executions, &parts) {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no cycles in 120 s: executions {executions:?}, part counts {parts:?}"
        );
        let (header, obs) = streams(&format!("{}/sample?from={from}&count=5000", sim.base)).await;
        from = header.next_sequence.unwrap();
        for o in obs {
            match o.element.as_str() {
                "Execution" => executions.entry(o.device).or_default().push(o.value),
                "PartCount" => {
                    if let Ok(n) = o.value.parse() {
                        parts.entry(o.device).or_default().push(n);
                    }
                }
                "Position"
                    if o.data_item_id.ends_with("X_1") || o.data_item_id.ends_with("X_2") =>
                {
                    xs.entry(o.device).or_default().insert(o.value);
                }
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    for p in parts.values() {
        assert!(
            p.windows(2).all(|w| w[1] >= w[0]),
            "part counts only rise: {p:?}"
        );
    }
    // Axes move along a tool path: many positions, not one.
    assert!(xs.values().any(|x| x.len() > 20), "X positions: {xs:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_condition_goes_to_warning_or_fault_and_back_to_normal() {
    let sim = simulate(&[
        "--agents",
        "1",
        "--machines-per-agent",
        "3",
        "--rate",
        "10hz",
        "--fault-rate",
        "1800",
        "--seed",
        "7",
    ])
    .await;
    let agent = format!("{}/agent-01", sim.base);
    let mut active: BTreeMap<String, Obs> = BTreeMap::new();
    let mut from = 1;
    let start = Instant::now();
    let cleared = 'read: loop {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no alarm raised and cleared in 120 s; active: {active:?}"
        );
        let (header, obs) = streams(&format!("{agent}/sample?from={from}&count=5000")).await;
        from = header.next_sequence.unwrap();
        for o in obs {
            match o.element.as_str() {
                "Warning" | "Fault" => {
                    assert!(o.native_code.is_some(), "an alarm has a native code: {o:?}");
                    active.insert(o.data_item_id.clone(), o);
                }
                "Normal" => {
                    if let Some(raised) = active.remove(&o.data_item_id) {
                        break 'read (raised, o);
                    }
                }
                // The machine went away (availability dropped): not a clear.
                "Unavailable" => {
                    active.remove(&o.data_item_id);
                }
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(cleared.1.sequence > cleared.0.sequence);
    assert!(!cleared.0.value.is_empty(), "an alarm has a message");
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_follows_a_simulated_agent_and_stores_what_it_serves() {
    let sim = simulate(&[
        "--agents",
        "2",
        "--machines-per-agent",
        "3",
        "--rate",
        "10hz",
        "--seed",
        "7",
    ])
    .await;
    let agent = format!("{}/agent-01", sim.base);
    let follower = serve_following(std::slice::from_ref(&agent), &["--heartbeat", "1s"]).await;
    const N: u64 = 400;
    wait_for(
        &follower.base,
        Duration::from_secs(120),
        "the simulated agent followed",
        |h| h["sources"][0]["nextSequence"].as_u64().unwrap_or(0) > N,
    )
    .await;
    let served = first(&agent, N, 1000).await;
    let (set, rows) = stored(&follower.base).await;
    assert_eq!(rows, set.len(), "nothing stored twice");
    let stored_sequences: Vec<u64> = set.iter().map(|(s, ..)| *s).collect();
    assert_eq!(
        stored_sequences[..N as usize],
        (1..=N).collect::<Vec<_>>(),
        "every observation from the first, no gap"
    );
    let stored: BTreeMap<u64, (String, String)> = set
        .into_iter()
        .map(|(s, id, value, _)| (s, (id, value)))
        .collect();
    for o in served {
        let (id, value) = &stored[&o.sequence];
        assert_eq!(id, &o.data_item_id, "sequence {}", o.sequence);
        if !matches!(
            o.element.as_str(),
            "Normal" | "Warning" | "Fault" | "Unavailable"
        ) && o.value != "UNAVAILABLE"
        {
            assert_eq!(
                value,
                &serde_json::Value::String(o.value.clone()).to_string(),
                "sequence {}",
                o.sequence
            );
        }
    }
}
