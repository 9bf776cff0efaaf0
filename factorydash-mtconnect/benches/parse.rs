//! Parse throughput on real NIST documents, with the floor (a bare quick-xml event loop
//! over the same bytes) and the old app's Python parse (`baseline/seed_parse.py`) beside it.
//!
//! Run with: `cargo bench -p factorydash-mtconnect --bench parse`
//!
//! Criterion measures each variant; then a side-by-side table (each variant's best run on
//! one core, the variants taking turns) prints observations/s, MB/s and the ratios the
//! targets are stated in: at least 60% of the bare tokenizer's throughput, at least 15
//! times the old app's. A second table sets the JSON reader (the same documents written as
//! the reference agent's JSON version 1 and 2) beside the XML reader, per observation.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use factorydash_mtconnect::{
    parse_streams, parse_streams_json, recording::read_maybe_gzipped, JsonVersion, StreamsItem,
    StreamsReader, StreamsWriter,
};
use quick_xml::events::Event;
use quick_xml::Reader;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// The inputs: two of the twelve NIST `/sample` pages (~1.6 MB, ~10,000 observations) and
/// the NIST `/current` (48 KB, 243 observations).
fn inputs() -> Vec<(&'static str, Vec<u8>)> {
    let rec = root().join("tests/fixtures/recordings/nist-gfagie01-2016-05-02");
    vec![
        (
            "nist-sample-page-001",
            read_maybe_gzipped(&rec.join("qdr_input001.xml.gz")).unwrap(),
        ),
        (
            "nist-sample-page-006",
            read_maybe_gzipped(&rec.join("qdr_input006.xml.gz")).unwrap(),
        ),
        (
            "nist-current-2025",
            std::fs::read(root().join("tests/fixtures/nist-smstestbed-current-2025-02-28.xml"))
                .unwrap(),
        ),
    ]
}

/// The floor: every event of the document, nothing done with it.
fn bare_quick_xml(input: &[u8]) -> usize {
    let mut reader = Reader::from_reader(input);
    let mut elements = 0;
    loop {
        match reader.read_event() {
            Ok(Event::Start(_) | Event::Empty(_)) => elements += 1,
            Ok(Event::Eof) | Err(_) => return elements,
            Ok(_) => {}
        }
    }
}

fn ours(input: &[u8]) -> usize {
    parse_streams(input).unwrap().value.observations.len()
}

/// The pull reader: each observation handed over and dropped, as a consumer that stores
/// them elsewhere (the ingest) sees it; no document built.
fn ours_pull(input: &[u8]) -> usize {
    StreamsReader::new(input)
        .unwrap()
        .filter(|item| matches!(item, StreamsItem::Observation(_)))
        .count()
}

fn json(input: &[u8]) -> usize {
    parse_streams_json(input).unwrap().value.observations.len()
}

/// `input` (XML) written as JSON `version`.
fn as_json(input: &[u8], version: JsonVersion) -> Vec<u8> {
    let doc = parse_streams(input).unwrap().value;
    StreamsWriter::default()
        .write_document_json(&doc, version)
        .into_bytes()
}

fn ours_owned(input: &[u8]) -> usize {
    parse_streams(input).unwrap().value.to_observations().len()
}

fn best_of(runs: usize, f: impl Fn() -> usize) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            black_box(f());
            t.elapsed()
        })
        .min()
        .unwrap()
}

/// The best single-run time of each variant, measured in turns: each round runs every
/// variant for a block of consecutive runs (~50 ms; warm in its own block), so that a noisy
/// spell on a shared machine touches all variants alike instead of the whole measurement
/// of one of them.
fn best_in_turns(rounds: usize, variants: &[&dyn Fn() -> usize]) -> Vec<Duration> {
    let runs: Vec<usize> = variants
        .iter()
        .map(|f| {
            let once = best_of(3, f).as_secs_f64().max(1e-7);
            ((0.05 / once) as usize).clamp(10, 2_000)
        })
        .collect();
    let mut best = vec![Duration::MAX; variants.len()];
    for _ in 0..rounds {
        for ((f, &n), best) in variants.iter().zip(&runs).zip(&mut best) {
            *best = (*best).min(best_of(n, f));
        }
    }
    best
}

/// The old app's parse, in Python: best seconds and observations, or `None` without python3.
fn python_baseline(name: &str, input: &[u8]) -> Option<(f64, usize)> {
    let path = std::env::temp_dir().join(format!("factorydash-bench-{name}.xml"));
    std::fs::write(&path, input).ok()?;
    let out = Command::new("python3")
        .arg(root().join("benches/baseline/seed_parse.py"))
        .args(["--mode", "orig", "--repeat", "5"])
        .arg(&path)
        .output()
        .ok()?;
    let line = String::from_utf8(out.stdout).ok()?;
    let fields: Vec<&str> = line.trim().split('\t').collect();
    Some((fields.get(3)?.parse().ok()?, fields.get(2)?.parse().ok()?))
}

/// Rounds of the side-by-side table's turns.
const ROUNDS: usize = 8;

fn main() {
    let inputs = inputs();
    let mut c = Criterion::default().configure_from_args();
    for (name, input) in &inputs {
        let mut group = c.benchmark_group(*name);
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_function("bare_quick_xml", |b| {
            b.iter(|| bare_quick_xml(black_box(input)))
        });
        group.bench_function("parse_streams", |b| b.iter(|| ours(black_box(input))));
        group.bench_function("streams_reader", |b| b.iter(|| ours_pull(black_box(input))));
        group.bench_function("parse_streams+to_observations", |b| {
            b.iter(|| ours_owned(black_box(input)))
        });
        let v2 = as_json(input, JsonVersion::V2);
        group.bench_function("parse_streams_json_v2", |b| b.iter(|| json(black_box(&v2))));
        group.finish();
    }
    c.final_summary();

    println!(
        "\nSide by side (one core; each variant's best run, the variants taking turns in blocks"
    );
    println!("of ~50 ms over {ROUNDS} rounds). ours = parse_streams, the whole document");
    println!(
        "built; pull = StreamsReader, each observation handed over; owned = parse_streams and"
    );
    println!("to_observations (owned Strings); python = the old app's parse, run now beside them.");
    println!(
        "{:<22} {:>7} | {:>9} {:>9} {:>9} {:>9} {:>9} | {:>9} {:>9} {:>8} {:>8}",
        "input MB/s",
        "obs",
        "bare",
        "ours",
        "pull",
        "owned",
        "python",
        "ours/bare",
        "pull/bare",
        "ours/py",
        "pull/py"
    );
    for (name, input) in &inputs {
        let n = ours(input);
        assert_eq!(ours_pull(input), n);
        let mb = input.len() as f64 / 1e6;
        let best = best_in_turns(
            ROUNDS,
            &[
                &|| bare_quick_xml(input),
                &|| ours(input),
                &|| ours_pull(input),
                &|| ours_owned(input),
            ],
        );
        let [bare, ours_t, pull_t, owned_t] = [0, 1, 2, 3].map(|i| best[i].as_secs_f64());
        let py = python_baseline(name, input);
        let (py_mbs, ours_py, pull_py) = match py {
            Some((secs, py_n)) => {
                assert_eq!(py_n, n, "the baseline parses the same observations");
                (
                    format!("{:.1}", mb / secs),
                    format!("{:.1}x", secs / ours_t),
                    format!("{:.1}x", secs / pull_t),
                )
            }
            None => ("n/a".into(), "n/a".into(), "n/a".into()),
        };
        println!(
            "{:<22} {:>7} | {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9} | {:>8.0}% {:>8.0}% {:>8} {:>8}",
            name,
            n,
            mb / bare,
            mb / ours_t,
            mb / pull_t,
            mb / owned_t,
            py_mbs,
            100.0 * bare / ours_t,
            100.0 * bare / pull_t,
            ours_py,
            pull_py
        );
        println!(
            "{:<22} {:>7} | observations/s: ours {:.0}, pull {:.0}, owned {:.0}{}",
            "",
            "",
            n as f64 / ours_t,
            n as f64 / pull_t,
            n as f64 / owned_t,
            py.map(|(s, _)| format!(", python {:.0}", n as f64 / s))
                .unwrap_or_default()
        );
    }

    println!("\nJSON beside XML (the same documents, written by StreamsWriter as the reference");
    println!("agent's JSON; same turns as above). obs/s of the whole document built.");
    println!(
        "{:<22} {:>7} | {:>10} {:>10} {:>10} | {:>8} {:>8} | {:>7} {:>7}",
        "input", "obs", "xml obs/s", "v1 obs/s", "v2 obs/s", "v1/xml", "v2/xml", "xml KB", "v2 KB"
    );
    for (name, input) in &inputs {
        let (v1, v2) = (
            as_json(input, JsonVersion::V1),
            as_json(input, JsonVersion::V2),
        );
        let n = ours(input);
        assert_eq!(
            (json(&v1), json(&v2)),
            (n, n),
            "{name}: the same observations"
        );
        let best = best_in_turns(ROUNDS, &[&|| ours(input), &|| json(&v1), &|| json(&v2)]);
        let [x, j1, j2] = [0, 1, 2].map(|i| best[i].as_secs_f64());
        println!(
            "{:<22} {:>7} | {:>10.0} {:>10.0} {:>10.0} | {:>7.2}x {:>7.2}x | {:>7} {:>7}",
            name,
            n,
            n as f64 / x,
            n as f64 / j1,
            n as f64 / j2,
            x / j1,
            x / j2,
            input.len() / 1024,
            v2.len() / 1024
        );
    }
}
