//! `factorydash inspect FILE`: a document's observations as NDJSON, problems on stderr.

use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::Context;
use factorydash_mtconnect::{
    parse_document,
    recording::{read_limited, read_to_limit},
    Document, ObservationRef, ParseOptions,
};
use serde::Serialize;

/// One line of output: an observation with its device and component.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Line<'o> {
    device: &'o str,
    device_uuid: Option<&'o str>,
    component: &'o str,
    component_id: &'o str,
    component_name: Option<&'o str>,
    #[serde(flatten)]
    observation: &'o ObservationRef<'o>,
}

/// Prints the document in `path` (`-` for standard input; `.gz` is gunzipped): one JSON
/// object per observation (Streams), per data item (Devices), per asset (Assets), or the
/// error (Error). Problems go to stderr. Returns how many problems there were.
///
/// The file (or standard input, or what a `.gz` inflates to) is refused as soon as it
/// passes `max_document` bytes: `inspect /dev/zero` ends with an error, not out of memory.
pub fn run(path: &Path, max_document: usize) -> anyhow::Result<usize> {
    let bytes = if path == Path::new("-") {
        read_to_limit(std::io::stdin().lock(), max_document)
            .context("cannot read standard input")?
    } else {
        read_limited(path, max_document)
            .with_context(|| format!("cannot read {}", path.display()))?
    };
    let options = ParseOptions::new().with_max_document_bytes(max_document);
    let document = parse_document(&bytes, &options)
        .with_context(|| format!("{} is not a usable MTConnect document", path.display()))?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let problems = match &document {
        Document::Streams(parsed) => {
            let doc = &parsed.value;
            for o in &doc.observations {
                let component = &doc.component_streams[o.component_stream];
                let device = &doc.device_streams[component.device_stream];
                let line = Line {
                    device: &device.name,
                    device_uuid: device.uuid.as_deref(),
                    component: &component.component,
                    component_id: &component.component_id,
                    component_name: component.name.as_deref(),
                    observation: o,
                };
                serde_json::to_writer(&mut out, &line)?;
                out.write_all(b"\n")?;
            }
            &parsed.problems
        }
        Document::Devices(parsed) => {
            for d in &parsed.value.devices {
                for (path, c) in d.walk() {
                    for item in &c.data_items {
                        let line = serde_json::json!({ "device": d.name, "componentPath": path, "component": c.element, "dataItem": item });
                        serde_json::to_writer(&mut out, &line)?;
                        out.write_all(b"\n")?;
                    }
                }
            }
            &parsed.problems
        }
        Document::Assets(parsed) => {
            for t in &parsed.value.cutting_tools {
                let line = serde_json::json!({ "type": "CuttingTool", "cuttingTool": t });
                serde_json::to_writer(&mut out, &line)?;
                out.write_all(b"\n")?;
            }
            for a in &parsed.value.other {
                serde_json::to_writer(&mut out, a)?;
                out.write_all(b"\n")?;
            }
            &parsed.problems
        }
        Document::Error(e) => {
            serde_json::to_writer(&mut out, e)?;
            out.write_all(b"\n")?;
            return Ok(0);
        }
    };
    out.flush()?;
    for p in problems {
        eprintln!("problem: {p}");
    }
    Ok(problems.len())
}
