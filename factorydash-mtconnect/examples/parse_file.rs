//! Print the observations of an MTConnectStreams document (a `/current` or `/sample`
//! answer) in sequence order, one per line, and its problems on stderr.
//!
//! Run with: `cargo run -p factorydash-mtconnect --example parse_file -- FILE`
//! (FILE may be gzipped, e.g. `recordings/nist-gfagie01-2016-05-02/qdr_input001.xml.gz`).

use factorydash_mtconnect::{parse_streams, recording::read_maybe_gzipped};

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: parse_file FILE"))?;
    let bytes = read_maybe_gzipped(path.as_ref())?;
    let parsed = parse_streams(&bytes)?;
    let doc = &parsed.value;
    let mut observations: Vec<_> = doc.observations.iter().collect();
    observations.sort_by_key(|o| o.sequence);
    for o in observations {
        let device =
            &doc.device_streams[doc.component_streams[o.component_stream].device_stream].name;
        let value = match &o.value {
            factorydash_mtconnect::ValueRef::Unavailable => "UNAVAILABLE",
            factorydash_mtconnect::ValueRef::Text(t) => t,
        };
        println!(
            "{:>8} {} {device} {} {} = {value}",
            o.sequence,
            o.timestamp.to_rfc3339(),
            o.data_item_id,
            o.kind()
        );
    }
    for problem in &parsed.problems {
        eprintln!("problem: {problem}");
    }
    eprintln!(
        "{} observations; instanceId {}, nextSequence {:?}",
        doc.observations.len(),
        doc.header.instance_id,
        doc.header.next_sequence
    );
    Ok(())
}
