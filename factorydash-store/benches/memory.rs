//! Bytes per observation in the in-memory store, against the same observations held as
//! plain `Observation`s (what the store kept per observation before its compact layout).
//!
//! Run with: `cargo bench -p factorydash-store --bench memory`
//! (resident memory from /proc/self/statm, so Linux only; the bundled NIST recording).

use factorydash_core::Batch;
use factorydash_mtconnect::Recording;
use factorydash_store::{MemoryStore, Store};

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../recordings/nist-gfagie01-2016-05-02");
    let recording = Recording::load(&dir).unwrap();
    let n = recording.observations.len() as f64;

    let before = resident_bytes();
    let plain = recording.observations.clone();
    let plain_bytes = resident_bytes().saturating_sub(before);

    let before = resident_bytes();
    let store = MemoryStore::new();
    for chunk in recording.observations.chunks(1000) {
        let batch = Batch {
            agent: "bench".into(),
            instance_id: recording.header.instance_id,
            next_sequence: chunk.last().unwrap().sequence + 1,
            observations: chunk.to_vec(),
        };
        store.append(&batch).await.unwrap();
    }
    let store_bytes = resident_bytes().saturating_sub(before);
    assert_eq!(store.observation_count().await.unwrap() as f64, n);
    println!("{n} NIST observations in memory:");
    println!(
        "  as plain Observations:  {:>6.0} bytes each",
        plain_bytes as f64 / n
    );
    println!(
        "  in the MemoryStore:     {:>6.0} bytes each (with its dedup set and indexes)",
        store_bytes as f64 / n
    );
    drop(plain);
}
