//! Any bytes through every parser: no panic, no hang, bounded memory.
#![no_main]

use factorydash_mtconnect::{
    parse_assets_with, parse_devices_with, parse_document, parse_error, parse_streams_with,
    write_devices, ParseOptions, StreamsBufReader, StreamsReader,
    StreamsWriter,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let options = ParseOptions::new()
        .with_max_document_bytes(1 << 20)
        .with_max_depth(32);
    let _ = parse_document(data, &options);
    if let Ok(parsed) = parse_streams_with(data, &options) {
        // Whatever parsed can be written and read back.
        let written = StreamsWriter::default().write_document(&parsed.value);
        let again = parse_streams_with(written.as_bytes(), &ParseOptions::default())
            .expect("our own output parses");
        assert_eq!(
            again.value.observations.len(),
            parsed.value.observations.len()
        );
    }
    if let Ok(reader) = StreamsBufReader::with_options(data, &options) {
        let slow: Vec<_> = reader.collect();
        // The slice reader's fast path for plain observation elements gives exactly what
        // quick-xml gives (the BufRead reader never takes it). A BOM shifts the offsets.
        if !data.starts_with(b"\xEF\xBB\xBF") {
            if let Ok(reader) = StreamsReader::with_options(data, &options) {
                let fast: Vec<_> = reader.collect();
                assert_eq!(fast, slow);
            }
        }
    }
    if let Ok(parsed) = parse_devices_with(data, &options) {
        let _ = write_devices(&parsed.value, "2.0");
    }
    let _ = parse_assets_with(data, &options);
    let _ = parse_error(data);
});
