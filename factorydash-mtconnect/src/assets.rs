//! MTConnectAssets documents, the answer to `/assets`: MTConnect Part 4, "Assets
//! Information Model" (CuttingTool, File, QIF documents, …).
//!
//! Each asset's identity (id, type, timestamp, device, removed) is read; the asset itself
//! is kept as its whole XML element, since its content depends on its type.

use chrono::{DateTime, Utc};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use serde::Serialize;

use crate::error::{parse_error_root, Error};
use crate::header::Header;
use crate::problem::{Parsed, Problem, ProblemKind};
use crate::time::parse_timestamp;
use crate::xml::{attr_value, element_name, problem};
use crate::ParseOptions;

/// A parsed MTConnectAssets document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Assets {
    /// The Header.
    pub header: Header,
    /// The assets, in document order.
    pub assets: Vec<Asset>,
}

/// One asset (MTConnect Part 4, "Asset").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Asset {
    /// The asset's type, its element name: `CuttingTool`, `File`, …
    pub kind: String,
    /// The `assetId`.
    pub asset_id: String,
    /// The `timestamp` (UTC), if valid.
    pub timestamp: Option<DateTime<Utc>>,
    /// The `deviceUuid`, if given.
    pub device_uuid: Option<String>,
    /// `removed="true"`: the asset was removed from the agent.
    pub removed: bool,
    /// The whole element, as written.
    pub xml: String,
}

/// Parses an MTConnectAssets document.
///
/// # Errors
/// [`Error::Agent`] for an MTConnectError; [`Error::UnexpectedRoot`] for another document;
/// [`Error::Syntax`], [`Error::IllFormed`] or
/// [`Error::NoRoot`] when no root element can be read; [`Error::TooLarge`].
pub fn parse_assets(input: &[u8]) -> Result<Parsed<Assets>, Error> {
    parse_assets_with(input, &ParseOptions::default())
}

/// Parses an MTConnectAssets document with explicit limits. See [`parse_assets`].
///
/// # Errors
/// As [`parse_assets`].
pub fn parse_assets_with(input: &[u8], options: &ParseOptions) -> Result<Parsed<Assets>, Error> {
    let input = crate::xml::document_input(input, options)?;
    let mut reader = Reader::from_reader(input);
    let mut doc = Assets::default();
    let mut problems = Vec::new();
    let mut depth = 0usize;
    let mut in_assets = None;
    loop {
        let offset = reader.buffer_position();
        let (e, empty) = match reader.read_event() {
            Ok(Event::Start(e)) => (e, false),
            Ok(Event::Empty(e)) => (e, true),
            Ok(Event::End(_)) => {
                if in_assets == Some(depth) {
                    in_assets = None;
                }
                depth = depth.saturating_sub(1);
                continue;
            }
            Ok(Event::Eof) => {
                if depth == 0 && offset == 0 {
                    return Err(Error::NoRoot);
                }
                if depth > 0 {
                    problems.push(problem(
                        ProblemKind::Syntax,
                        offset,
                        "document ends before its root element is closed",
                    ));
                }
                break;
            }
            Ok(_) => continue,
            Err(err) => {
                if depth == 0 {
                    return Err(Error::xml(err, reader.error_position(), Some(input)));
                }
                problems.push(problem(
                    ProblemKind::Syntax,
                    offset,
                    format!("XML error: {err}"),
                ));
                break;
            }
        };
        if depth == 0 {
            match e.local_name().as_ref() {
                b"MTConnectAssets" => {}
                b"MTConnectError" => return Err(parse_error_root(input)),
                other => {
                    return Err(Error::UnexpectedRoot {
                        expected: "MTConnectAssets",
                        found: String::from_utf8_lossy(other).into_owned(),
                    })
                }
            }
            if empty {
                break;
            }
            depth = 1;
            continue;
        }
        if in_assets.is_some() {
            // An asset: keep the whole element.
            let end = if empty {
                reader.buffer_position()
            } else {
                let end = e.to_end().into_owned();
                match reader.read_to_end(end.name()) {
                    Ok(_) => reader.buffer_position(),
                    Err(err) => {
                        problems.push(problem(
                            ProblemKind::Syntax,
                            offset,
                            format!("XML error: {err}"),
                        ));
                        break;
                    }
                }
            };
            let xml = String::from_utf8_lossy(&input[offset as usize..end as usize]).into_owned();
            doc.assets
                .push(asset(input, &e, xml, offset, &mut problems));
            continue;
        }
        match (depth, e.local_name().as_ref()) {
            (1, b"Header") => doc.header = Header::parse(input, &e, offset, &mut problems),
            (1, b"Assets") if !empty => in_assets = Some(depth + 1),
            _ => {}
        }
        if !empty {
            depth += 1;
        }
    }
    Ok(Parsed {
        value: doc,
        problems,
    })
}

fn asset(
    input: &[u8],
    e: &BytesStart<'_>,
    xml: String,
    offset: u64,
    problems: &mut Vec<Problem>,
) -> Asset {
    let mut a = Asset {
        kind: element_name(input, e).into_owned(),
        xml,
        ..Asset::default()
    };
    for attr in e.attributes().with_checks(false).flatten() {
        let Ok(value) = attr_value(input, &attr) else {
            continue;
        };
        match attr.key.local_name().as_ref() {
            b"assetId" => a.asset_id = value.into_owned(),
            b"deviceUuid" => a.device_uuid = Some(value.into_owned()),
            b"removed" => a.removed = value.trim() == "true",
            b"timestamp" => {
                a.timestamp = parse_timestamp(&value).map(|t| t.utc);
                if a.timestamp.is_none() {
                    problems.push(problem(
                        ProblemKind::InvalidAttribute,
                        offset,
                        format!("asset timestamp \"{value}\" is not an ISO 8601 time"),
                    ));
                }
            }
            _ => {}
        }
    }
    if a.asset_id.is_empty() {
        problems.push(problem(
            ProblemKind::MissingAttribute,
            offset,
            format!("<{}> asset without assetId", a.kind),
        ));
    }
    a
}
