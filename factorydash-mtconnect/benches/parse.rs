//! Parse throughput on real NIST documents, with the floor (a bare quick-xml event loop
//! over the same bytes) and the old app's Python parse (`baseline/seed_parse.py`) beside it.
//!
//! Run with: `cargo bench -p factorydash-mtconnect --bench parse`
//!
//! Criterion measures each variant; then a side-by-side table (best of several runs on one
//! core) prints observations/s, MB/s and the ratios the targets are stated in: at least 60%
//! of the bare tokenizer's throughput, at least 15 times the old app's.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use factorydash_mtconnect::{
    parse_streams, recording::read_maybe_gzipped, StreamsItem, StreamsReader,
};
use quick_xml::events::Event;
use quick_xml::Reader;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// The inputs: two of the twelve NIST `/sample` pages (~1.6 MB, ~10,000 observations) and
/// the NIST `/current` (48 KB, 243 observations).
fn inputs() -> Vec<(&'static str, Vec<u8>)> {
    let rec = root().join("../recordings/nist-gfagie01-2016-05-02");
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
        group.finish();
    }
    c.final_summary();

    println!(
        "\nSide by side (best of 20 runs, one core). ours = parse_streams, the whole document"
    );
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
        let bare = best_of(20, || bare_quick_xml(input)).as_secs_f64();
        let ours_t = best_of(20, || ours(input)).as_secs_f64();
        let pull_t = best_of(20, || ours_pull(input)).as_secs_f64();
        let owned_t = best_of(20, || ours_owned(input)).as_secs_f64();
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
}
