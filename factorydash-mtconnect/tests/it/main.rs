//! Integration tests of factorydash-mtconnect on real agent documents.

mod fixtures;
mod hostile;
mod json;
mod lenient;
mod roundtrip;
mod series;
mod streaming;

use std::path::{Path, PathBuf};

/// The crate's fixture directory.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The NIST GFAgie01 recording (12 consecutive `/sample` pages, gzipped): a copy of the
/// repository's `recordings/nist-gfagie01-2016-05-02`, so that the packaged crate's tests
/// read nothing outside the crate.
pub fn nist_recording() -> PathBuf {
    fixtures_dir().join("recordings/nist-gfagie01-2016-05-02")
}

/// A fixture's bytes.
pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}
