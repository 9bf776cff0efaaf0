//! MTConnectAssets documents, the answer to `/assets`: MTConnect Part 4, "Assets
//! Information Model" (in MTConnect 1.x, Part 4 "Assets" and Part 4.1 "Cutting Tools").
//!
//! CuttingTool assets are read into [`CuttingTool`]s (Part 4, "CuttingTool": the
//! attributes `assetId`, `toolId`, `serialNumber`, `deviceUuid`, `timestamp`, `removed`;
//! of `CuttingToolLifeCycle`, `CutterStatus`/`Status`, `ToolLife`, `ProgramToolNumber`,
//! `ProgramToolGroup`, `Location`, how many `CuttingItems`, and each `CuttingItem`'s
//! `indices`, `itemId` and `ItemLife`s). Every other asset (File,
//! QIF documents, CuttingToolArchetype, …) is kept as its identity only ([`Asset`]: type,
//! `assetId`, `deviceUuid`, `timestamp`, `removed`).
//!
//! ```
//! use factorydash_mtconnect::parse_assets;
//!
//! let xml = br#"<MTConnectAssets xmlns="urn:mtconnect.org:MTConnectAssets:2.0">
//!   <Header creationTime="2025-04-13T00:08:14Z" sender="agent" instanceId="1" version="2.2"
//!           assetBufferSize="1024" assetCount="1"/>
//!   <Assets>
//!     <CuttingTool assetId="M1.T12" toolId="T12" serialNumber="1012" deviceUuid="m1"
//!                  timestamp="2025-04-13T00:07:56Z">
//!       <CuttingToolLifeCycle>
//!         <CutterStatus><Status>USED</Status></CutterStatus>
//!         <ToolLife type="PART_COUNT" countDirection="UP" initial="0" limit="200"
//!                   warning="180">185</ToolLife>
//!         <ProgramToolNumber>12</ProgramToolNumber>
//!       </CuttingToolLifeCycle>
//!     </CuttingTool>
//!   </Assets>
//! </MTConnectAssets>"#;
//! let parsed = parse_assets(xml)?;
//! let tool = &parsed.value.cutting_tools[0];
//! assert_eq!((tool.asset_id.as_str(), tool.label().as_str()), ("M1.T12", "T12"));
//! assert_eq!(tool.lives[0].remaining(), Some(15.0));
//! assert!(tool.near_life_limit());
//! assert!(parsed.problems.is_empty());
//! # Ok::<(), factorydash_mtconnect::Error>(())
//! ```
//!
//! # Bounds
//! As the other parsers: the document's size ([`ParseOptions::max_document_bytes`]) and
//! its depth ([`ParseOptions::max_depth`]; deeper elements are skipped and reported).
//! Within an asset, a kept text (an id, a status, a number) is at most
//! [`MAX_ASSET_TEXT`] bytes, and a tool keeps at most [`MAX_TOOL_ENTRIES`] `ToolLife`s,
//! as many `Status` values, as many `CuttingItem`s and as many `ItemLife`s of each.
//!
//! # Problems
//! A malformed asset (no `assetId`, a kept text over [`MAX_ASSET_TEXT`]) is reported and
//! skipped; the rest of the document is kept. A `ToolLife` (or `ItemLife`) without a valid `type` or
//! `countDirection` is reported and skipped, its tool kept; a number that does not parse
//! is reported and left `None`. The reference agent's 1.2 test documents write a
//! `ToolLife`'s `maximum`, which no schema has: it is read as the MTConnectAssets schemas'
//! `ToolLifeDirectionType` describes the count, up "from 0 to maximum" (`limit`), down
//! "from maximum to 0" (`initial`, and `limit` 0), where those are absent.

use chrono::{DateTime, Utc};
use factorydash_core::tools::{
    CountDirection, CuttingItem, CuttingTool, ToolLife, ToolLifeKind, ToolLocation,
};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use serde::Serialize;

use crate::error::{parse_error_root, Error};
use crate::header::Header;
use crate::problem::{Parsed, Problem, ProblemKind};
use crate::time::parse_timestamp;
use crate::xml::{attr_value, element_name, problem, resolve_reference};
use crate::ParseOptions;

/// The longest text kept of an asset (an id, a status, a number, a location), in bytes.
/// An asset with a longer one is malformed: reported and skipped.
pub const MAX_ASSET_TEXT: usize = 1024;

/// The most `ToolLife`s, and the most `CutterStatus` `Status` values, kept of one tool
/// (the standard has three life types; statuses combine a few). More are reported and
/// ignored.
pub const MAX_TOOL_ENTRIES: usize = 16;

/// A parsed MTConnectAssets document.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Assets {
    /// The Header.
    pub header: Header,
    /// The CuttingTool assets, in document order.
    pub cutting_tools: Vec<CuttingTool>,
    /// Every other asset, its identity only, in document order.
    pub other: Vec<Asset>,
}

/// An asset other than a CuttingTool: its identity (MTConnect Part 4, "Asset").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Asset {
    /// The asset's type, its element name (`File`, `CuttingToolArchetype`, …);
    /// serialised as `type`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The `assetId`.
    pub asset_id: String,
    /// The `deviceUuid`, if given.
    pub device_uuid: Option<String>,
    /// The `timestamp` (UTC), if valid.
    pub timestamp: Option<DateTime<Utc>>,
    /// `removed="true"`: the asset was removed from the agent.
    pub removed: bool,
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

/// What an open element is, for the elements the parser reads.
enum Frame {
    /// `MTConnectAssets`, and anything not read (skipped with its content).
    Other,
    /// `Assets`: its children are assets.
    AssetList,
    /// A `CuttingTool` (the one being built).
    Tool,
    /// Its `CuttingToolLifeCycle`.
    LifeCycle,
    /// `CutterStatus`: `Status` children.
    CutterStatus,
    /// `CuttingItems`: `CuttingItem` children are counted.
    CuttingItems,
    /// A `CuttingItem` that was kept: its `ItemLife`s are read.
    CuttingItem,
    /// An element whose text is kept.
    Text(Field),
}

/// The elements whose text is kept.
#[derive(Clone, Copy)]
enum Field {
    Status,
    ToolLife,
    ItemLife,
    ProgramToolNumber,
    ProgramToolGroup,
    Location,
}

/// A `ToolLife` while its text is read.
struct PendingLife {
    kind: Option<ToolLifeKind>,
    direction: Option<CountDirection>,
    limit: Option<f64>,
    warning: Option<f64>,
    initial: Option<f64>,
}

/// The CuttingTool being read.
struct ToolBuild {
    tool: CuttingTool,
    offset: u64,
    /// Why it will be skipped, if it will.
    malformed: Option<(ProblemKind, String)>,
    life: Option<PendingLife>,
    location_kind: String,
    /// `CuttingItems`' `count`, if given.
    items_count: Option<u32>,
    /// The `CuttingItem`s listed.
    items_listed: u32,
    /// Entries past [`MAX_TOOL_ENTRIES`] already reported.
    too_many_reported: bool,
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
    let mut stack: Vec<Frame> = Vec::new();
    let mut root_seen = false;
    let mut tool: Option<ToolBuild> = None;
    let mut text = String::new();
    loop {
        let offset = reader.buffer_position();
        let (e, empty) = match reader.read_event() {
            Ok(Event::Start(e)) => (e, false),
            Ok(Event::Empty(e)) => (e, true),
            Ok(Event::End(_)) => {
                if let Some(frame) = stack.pop() {
                    close(frame, &mut tool, &mut text, &mut doc, &mut problems);
                }
                continue;
            }
            Ok(Event::Text(t)) => {
                if matches!(stack.last(), Some(Frame::Text(_))) {
                    if let Ok(s) = t.decode() {
                        push_limited(&mut text, &s);
                    }
                }
                continue;
            }
            Ok(Event::CData(t)) => {
                if matches!(stack.last(), Some(Frame::Text(_))) {
                    push_limited(&mut text, &String::from_utf8_lossy(&t));
                }
                continue;
            }
            Ok(Event::GeneralRef(r)) => {
                if matches!(stack.last(), Some(Frame::Text(_))) {
                    if let Some(c) = resolve_reference(&r) {
                        push_limited(&mut text, c.encode_utf8(&mut [0; 4]));
                    }
                }
                continue;
            }
            Ok(Event::Eof) => {
                if !root_seen {
                    return Err(Error::NoRoot);
                }
                if !stack.is_empty() {
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
                if !root_seen {
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
        if !root_seen {
            root_seen = true;
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
            stack.push(Frame::Other);
            continue;
        }
        if stack.len() >= options.max_depth {
            problems.push(problem(
                ProblemKind::TooDeep,
                offset,
                format!(
                    "element nested deeper than {} levels skipped",
                    options.max_depth
                ),
            ));
            if !empty && !skip_content(&mut reader, &e, offset, &mut problems) {
                break;
            }
            continue;
        }
        let local = e.local_name();
        let frame = match (stack.last(), local.as_ref()) {
            (Some(Frame::Other), b"Header") if stack.len() == 1 => {
                doc.header = Header::parse(input, &e, offset, &mut problems);
                Frame::Other
            }
            (Some(Frame::Other), b"Assets") if stack.len() == 1 => Frame::AssetList,
            (Some(Frame::AssetList), b"CuttingTool") => {
                tool = Some(start_tool(input, &e, offset, &mut problems));
                Frame::Tool
            }
            (Some(Frame::AssetList), _) => {
                // Another type: its identity, and its content skipped unread.
                if let Some(asset) = other_asset(input, &e, offset, &mut problems) {
                    doc.other.push(asset);
                }
                if !empty && !skip_content(&mut reader, &e, offset, &mut problems) {
                    break;
                }
                continue;
            }
            (Some(Frame::Tool), b"CuttingToolLifeCycle") => Frame::LifeCycle,
            (Some(Frame::LifeCycle), b"CutterStatus") => Frame::CutterStatus,
            (Some(Frame::CutterStatus), b"Status") => Frame::Text(Field::Status),
            (Some(Frame::LifeCycle), b"ToolLife") => {
                if let Some(t) = tool.as_mut() {
                    t.life = Some(start_life(input, &e, offset, &mut problems));
                }
                Frame::Text(Field::ToolLife)
            }
            (Some(Frame::LifeCycle), b"ProgramToolNumber") => Frame::Text(Field::ProgramToolNumber),
            (Some(Frame::LifeCycle), b"ProgramToolGroup") => Frame::Text(Field::ProgramToolGroup),
            (Some(Frame::LifeCycle), b"Location") => {
                if let Some(t) = tool.as_mut() {
                    t.location_kind = attribute(input, &e, b"type").unwrap_or_default();
                }
                Frame::Text(Field::Location)
            }
            (Some(Frame::LifeCycle), b"CuttingItems") => {
                if let Some(t) = tool.as_mut() {
                    t.items_count = attribute(input, &e, b"count").and_then(|c| {
                        let n = c.trim().parse().ok();
                        if n.is_none() {
                            problems.push(problem(
                                ProblemKind::InvalidAttribute,
                                offset,
                                format!("CuttingItems count \"{c}\" is not a whole number"),
                            ));
                        }
                        n
                    });
                }
                Frame::CuttingItems
            }
            (Some(Frame::CuttingItems), b"CuttingItem") => match tool.as_mut() {
                Some(t) => {
                    t.items_listed = t.items_listed.saturating_add(1);
                    if t.tool.items.len() >= MAX_TOOL_ENTRIES {
                        too_many(t, "CuttingItem elements", &mut problems);
                        Frame::Other
                    } else {
                        let item = cutting_item(input, &e, offset, &mut problems);
                        t.tool.items.push(item);
                        Frame::CuttingItem
                    }
                }
                None => Frame::Other,
            },
            (Some(Frame::CuttingItem), b"ItemLife") => {
                if let Some(t) = tool.as_mut() {
                    t.life = Some(start_life(input, &e, offset, &mut problems));
                }
                Frame::Text(Field::ItemLife)
            }
            _ => Frame::Other,
        };
        if matches!(frame, Frame::Text(_)) {
            text.clear();
        }
        if empty {
            close(frame, &mut tool, &mut text, &mut doc, &mut problems);
        } else {
            stack.push(frame);
        }
    }
    Ok(Parsed {
        value: doc,
        problems,
    })
}

/// Appends `s` to `text`, keeping at most one byte more than [`MAX_ASSET_TEXT`]: enough
/// to tell that the text is too long, never more.
/// Reads past the content of the element `e` starts, unread; `false`, with the XML error
/// reported, when the document breaks before its end.
fn skip_content(
    reader: &mut Reader<&[u8]>,
    e: &BytesStart<'_>,
    offset: u64,
    problems: &mut Vec<Problem>,
) -> bool {
    let end = e.to_end().into_owned();
    match reader.read_to_end(end.name()) {
        Ok(_) => true,
        Err(err) => {
            problems.push(problem(
                ProblemKind::Syntax,
                offset,
                format!("XML error: {err}"),
            ));
            false
        }
    }
}

fn push_limited(text: &mut String, s: &str) {
    let room = (MAX_ASSET_TEXT + 1).saturating_sub(text.len());
    if room == 0 || s.is_empty() {
        return;
    }
    if s.len() <= room {
        text.push_str(s);
    } else {
        // Too long whatever comes: a filler past the limit says so.
        text.push_str(&"x".repeat(room));
    }
}

/// Ends the element of `frame`: a text field is stored in the tool being built, a tool is
/// finished (kept, or reported and skipped when malformed).
fn close(
    frame: Frame,
    tool: &mut Option<ToolBuild>,
    text: &mut String,
    doc: &mut Assets,
    problems: &mut Vec<Problem>,
) {
    match frame {
        Frame::Tool => {
            if let Some(t) = tool.take() {
                finish_tool(t, doc, problems);
            }
        }
        Frame::CuttingItems => {
            if let Some(t) = tool.as_mut() {
                t.tool.cutting_items = Some(t.items_count.unwrap_or(t.items_listed));
            }
        }
        Frame::Text(field) => {
            let value = std::mem::take(text);
            if let Some(t) = tool.as_mut() {
                set_field(t, field, value, problems);
            }
        }
        Frame::Other
        | Frame::AssetList
        | Frame::LifeCycle
        | Frame::CutterStatus
        | Frame::CuttingItem => {}
    }
}

/// Stores a text field's `value` in `t`.
fn set_field(t: &mut ToolBuild, field: Field, value: String, problems: &mut Vec<Problem>) {
    let trimmed = value.trim();
    if trimmed.len() > MAX_ASSET_TEXT {
        t.malformed.get_or_insert_with(|| {
            (
                ProblemKind::InvalidValue,
                format!("a text longer than {MAX_ASSET_TEXT} bytes in CuttingTool"),
            )
        });
        return;
    }
    let offset = t.offset;
    match field {
        Field::Status => {
            if trimmed.is_empty() {
                return;
            }
            if t.tool.status.len() >= MAX_TOOL_ENTRIES {
                too_many(t, "Status values", problems);
            } else {
                t.tool.status.push(trimmed.to_owned());
            }
        }
        Field::ProgramToolNumber => t.tool.program_tool_number = non_empty(trimmed),
        Field::ProgramToolGroup => t.tool.program_tool_group = non_empty(trimmed),
        Field::Location => {
            t.tool.location = Some(ToolLocation {
                kind: std::mem::take(&mut t.location_kind),
                value: trimmed.to_owned(),
            });
        }
        Field::ToolLife | Field::ItemLife => {
            let what = match field {
                Field::ItemLife => "ItemLife",
                _ => "ToolLife",
            };
            let Some(life) = t.life.take() else { return };
            let (Some(kind), Some(direction)) = (life.kind, life.direction) else {
                // Reported when its attributes were read.
                return;
            };
            let value = if trimmed.is_empty() || trimmed == "UNAVAILABLE" {
                None
            } else {
                let n = number(trimmed);
                if n.is_none() {
                    problems.push(problem(
                        ProblemKind::InvalidValue,
                        offset,
                        format!(
                            "CuttingTool {}: {what} value \"{trimmed}\" is not a number",
                            t.tool.asset_id
                        ),
                    ));
                }
                n
            };
            let life = ToolLife {
                kind,
                direction,
                value,
                limit: life.limit,
                warning: life.warning,
                initial: life.initial,
            };
            let lives = match field {
                Field::ItemLife => match t.tool.items.last_mut() {
                    Some(item) => &mut item.lives,
                    None => return,
                },
                _ => &mut t.tool.lives,
            };
            if lives.len() >= MAX_TOOL_ENTRIES {
                too_many(t, &format!("{what} elements"), problems);
                return;
            }
            lives.push(life);
        }
    }
}

/// Reports, once per tool, entries past [`MAX_TOOL_ENTRIES`].
fn too_many(t: &mut ToolBuild, what: &str, problems: &mut Vec<Problem>) {
    if !std::mem::replace(&mut t.too_many_reported, true) {
        problems.push(problem(
            ProblemKind::Unexpected,
            t.offset,
            format!(
                "CuttingTool {}: more than {MAX_TOOL_ENTRIES} {what}; the rest ignored",
                t.tool.asset_id
            ),
        ));
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// A finite number, or `None` (`f64::from_str` also reads `inf` and `NaN`).
fn number(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

/// Keeps the tool `t` in `doc`, or reports and skips it when it is malformed.
fn finish_tool(t: ToolBuild, doc: &mut Assets, problems: &mut Vec<Problem>) {
    let reason = t.malformed.or_else(|| {
        t.tool.asset_id.is_empty().then(|| {
            (
                ProblemKind::MissingAttribute,
                "CuttingTool without assetId".to_owned(),
            )
        })
    });
    match reason {
        Some((kind, reason)) => problems.push(problem(
            kind,
            t.offset,
            format!("{reason}; the asset was skipped"),
        )),
        None => doc.cutting_tools.push(t.tool),
    }
}

/// An attribute's value by local name, unescaped.
fn attribute(input: &[u8], e: &BytesStart<'_>, name: &[u8]) -> Option<String> {
    e.attributes()
        .with_checks(false)
        .flatten()
        .find(|a| a.key.local_name().as_ref() == name)
        .and_then(|a| attr_value(input, &a).ok())
        .map(|v| v.into_owned())
}

/// The identity every asset has: (`assetId`, `deviceUuid`, `timestamp`, `removed`), and a
/// CuttingTool's `toolId` and `serialNumber`; whether a kept attribute was too long.
struct Identity {
    asset_id: String,
    device_uuid: Option<String>,
    timestamp: Option<DateTime<Utc>>,
    removed: bool,
    tool_id: Option<String>,
    serial_number: Option<String>,
    too_long: bool,
}

fn identity(
    input: &[u8],
    e: &BytesStart<'_>,
    offset: u64,
    problems: &mut Vec<Problem>,
) -> Identity {
    let mut id = Identity {
        asset_id: String::new(),
        device_uuid: None,
        timestamp: None,
        removed: false,
        tool_id: None,
        serial_number: None,
        too_long: false,
    };
    for attr in e.attributes().with_checks(false).flatten() {
        let Ok(value) = attr_value(input, &attr) else {
            continue;
        };
        let key = attr.key.local_name();
        let kept = matches!(
            key.as_ref(),
            b"assetId" | b"deviceUuid" | b"toolId" | b"serialNumber"
        );
        if kept && value.len() > MAX_ASSET_TEXT {
            id.too_long = true;
            continue;
        }
        match key.as_ref() {
            b"assetId" => id.asset_id = value.trim().to_owned(),
            b"deviceUuid" => id.device_uuid = non_empty(value.trim()),
            b"toolId" => id.tool_id = non_empty(value.trim()),
            b"serialNumber" => id.serial_number = non_empty(value.trim()),
            b"removed" => id.removed = value.trim() == "true",
            b"timestamp" => {
                id.timestamp = parse_timestamp(&value).map(|t| t.utc);
                if id.timestamp.is_none() {
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
    id
}

/// The CuttingTool that `e` starts.
fn start_tool(
    input: &[u8],
    e: &BytesStart<'_>,
    offset: u64,
    problems: &mut Vec<Problem>,
) -> ToolBuild {
    let id = identity(input, e, offset, problems);
    ToolBuild {
        malformed: id.too_long.then(|| {
            (
                ProblemKind::InvalidAttribute,
                format!("an attribute longer than {MAX_ASSET_TEXT} bytes in CuttingTool"),
            )
        }),
        tool: CuttingTool {
            asset_id: id.asset_id,
            tool_id: id.tool_id,
            serial_number: id.serial_number,
            device_uuid: id.device_uuid,
            timestamp: id.timestamp,
            removed: id.removed,
            ..CuttingTool::default()
        },
        offset,
        life: None,
        location_kind: String::new(),
        items_count: None,
        items_listed: 0,
        too_many_reported: false,
    }
}

/// An asset of another type than CuttingTool, or `None` (reported) when it is malformed.
fn other_asset(
    input: &[u8],
    e: &BytesStart<'_>,
    offset: u64,
    problems: &mut Vec<Problem>,
) -> Option<Asset> {
    let kind = element_name(input, e).into_owned();
    let id = identity(input, e, offset, problems);
    let reason = if id.too_long {
        Some((
            ProblemKind::InvalidAttribute,
            format!("an attribute longer than {MAX_ASSET_TEXT} bytes in <{kind}>"),
        ))
    } else if id.asset_id.is_empty() {
        Some((
            ProblemKind::MissingAttribute,
            format!("<{kind}> asset without assetId"),
        ))
    } else {
        None
    };
    if let Some((problem_kind, reason)) = reason {
        problems.push(problem(
            problem_kind,
            offset,
            format!("{reason}; the asset was skipped"),
        ));
        return None;
    }
    Some(Asset {
        kind,
        asset_id: id.asset_id,
        device_uuid: id.device_uuid,
        timestamp: id.timestamp,
        removed: id.removed,
    })
}

/// A `CuttingItem`'s identity: `indices` (required; reported when missing) and `itemId`.
fn cutting_item(
    input: &[u8],
    e: &BytesStart<'_>,
    offset: u64,
    problems: &mut Vec<Problem>,
) -> CuttingItem {
    let limited = |v: Option<String>| v.filter(|v| v.len() <= MAX_ASSET_TEXT);
    let indices = limited(attribute(input, e, b"indices"));
    if indices.is_none() {
        problems.push(problem(
            ProblemKind::MissingAttribute,
            offset,
            format!("CuttingItem without indices (or longer than {MAX_ASSET_TEXT} bytes)"),
        ));
    }
    CuttingItem {
        indices: indices.unwrap_or_default(),
        item_id: limited(attribute(input, e, b"itemId")),
        lives: Vec::new(),
    }
}

/// A `ToolLife`'s (or `ItemLife`'s) attributes; a missing or unknown `type` or `countDirection`, or a number
/// that does not parse, is reported.
fn start_life(
    input: &[u8],
    e: &BytesStart<'_>,
    offset: u64,
    problems: &mut Vec<Problem>,
) -> PendingLife {
    let mut life = PendingLife {
        kind: None,
        direction: None,
        limit: None,
        warning: None,
        initial: None,
    };
    let mut maximum = None;
    let (mut kind_seen, mut direction_seen) = (false, false);
    for attr in e.attributes().with_checks(false).flatten() {
        let Ok(value) = attr_value(input, &attr) else {
            continue;
        };
        let key = attr.key.local_name();
        let name = String::from_utf8_lossy(key.as_ref());
        match key.as_ref() {
            b"type" => {
                kind_seen = true;
                life.kind = value.parse().ok();
                if life.kind.is_none() {
                    problems.push(problem(
                        ProblemKind::InvalidAttribute,
                        offset,
                        format!("ToolLife type \"{value}\" is not MINUTES, PART_COUNT or WEAR; the ToolLife was skipped"),
                    ));
                }
            }
            b"countDirection" => {
                direction_seen = true;
                life.direction = value.parse().ok();
                if life.direction.is_none() {
                    problems.push(problem(
                        ProblemKind::InvalidAttribute,
                        offset,
                        format!("ToolLife countDirection \"{value}\" is not UP or DOWN; the ToolLife was skipped"),
                    ));
                }
            }
            b"limit" | b"warning" | b"initial" | b"maximum" => {
                let n = number(&value);
                if n.is_none() && !value.trim().is_empty() {
                    problems.push(problem(
                        ProblemKind::InvalidAttribute,
                        offset,
                        format!("ToolLife {name} \"{value}\" is not a number"),
                    ));
                }
                match key.as_ref() {
                    b"limit" => life.limit = n,
                    b"warning" => life.warning = n,
                    b"initial" => life.initial = n,
                    _ => maximum = n,
                }
            }
            _ => {}
        }
    }
    // `maximum` (not in any schema; the reference agent's 1.2 test documents write it) is
    // read as `ToolLifeDirectionType` describes the count: up "from 0 to maximum", down
    // "from maximum to 0".
    if let Some(maximum) = maximum {
        match life.direction {
            Some(CountDirection::Up) if life.limit.is_none() => life.limit = Some(maximum),
            Some(CountDirection::Down) if life.initial.is_none() => {
                life.initial = Some(maximum);
                life.limit.get_or_insert(0.0);
            }
            _ => {}
        }
    }
    for (seen, name) in [(kind_seen, "type"), (direction_seen, "countDirection")] {
        if !seen {
            problems.push(problem(
                ProblemKind::MissingAttribute,
                offset,
                format!("ToolLife without {name}; the ToolLife was skipped"),
            ));
        }
    }
    life
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(assets: &str) -> Vec<u8> {
        format!(
            r#"<?xml version="1.0"?><MTConnectAssets xmlns="urn:mtconnect.org:MTConnectAssets:2.0"><Header creationTime="2025-04-13T00:08:14Z" sender="s" instanceId="1" version="2.2"/><Assets>{assets}</Assets></MTConnectAssets>"#
        )
        .into_bytes()
    }

    #[test]
    fn cutting_items_keep_their_item_lives() {
        let parsed = parse_assets(include_bytes!(
            "../tests/fixtures/factorydash-assets-cuttingtools-v2.0.xml"
        ))
        .unwrap();
        assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
        let tools = &parsed.value.cutting_tools;
        let face_mill = tools
            .iter()
            .find(|t| t.items.iter().any(|i| i.lives.len() == 2))
            .unwrap();
        let item = &face_mill.items[0];
        assert_eq!(
            (item.indices.as_str(), item.label()),
            ("1", "item 1".into())
        );
        assert_eq!(
            item.lives
                .iter()
                .map(|l| (l.kind, l.direction, l.value, l.limit, l.warning))
                .collect::<Vec<_>>(),
            [
                (
                    ToolLifeKind::Minutes,
                    CountDirection::Up,
                    Some(54.0),
                    Some(0.0),
                    Some(120.0)
                ),
                (
                    ToolLifeKind::PartCount,
                    CountDirection::Up,
                    Some(97.0),
                    Some(0.0),
                    Some(120.0)
                ),
            ]
        );
        assert!(face_mill.lives.is_empty(), "its life is its item's");
        // An item listed without ItemLife is kept, with its indices.
        let inserts = tools
            .iter()
            .find(|t| t.asset_id == "H6025R440ZN1.23")
            .unwrap();
        assert_eq!(inserts.items.len(), 1);
        assert_eq!(inserts.items[0].label(), "items 1-4");
        assert!(inserts.items[0].lives.is_empty());
        assert_eq!(inserts.cutting_items, Some(4));
    }

    #[test]
    fn item_lives_are_bounded_and_bad_ones_reported() {
        let mut items = String::new();
        for i in 0..MAX_TOOL_ENTRIES + 2 {
            items.push_str(&format!(r#"<CuttingItem indices="{i}"><ItemLife type="MINUTES" countDirection="UP" limit="10">{i}</ItemLife></CuttingItem>"#));
        }
        let input = doc(&format!(
            r#"<CuttingTool assetId="a"><CuttingToolLifeCycle><CuttingItems>
              <CuttingItem><ItemLife type="SECONDS" countDirection="UP">1</ItemLife><ItemLife type="WEAR" countDirection="DOWN">x</ItemLife></CuttingItem>
              {items}</CuttingItems></CuttingToolLifeCycle></CuttingTool>"#
        ));
        let parsed = parse_assets(&input).unwrap();
        let tool = &parsed.value.cutting_tools[0];
        assert_eq!(tool.items.len(), MAX_TOOL_ENTRIES);
        assert_eq!(tool.cutting_items, Some(MAX_TOOL_ENTRIES as u32 + 3));
        // The first: no indices, an unknown type skipped, a value that is no number kept as None.
        assert_eq!(tool.items[0].lives.len(), 1);
        assert_eq!(tool.items[0].lives[0].value, None);
        let messages: Vec<&str> = parsed.problems.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(messages.len(), 4, "{messages:?}");
        assert!(
            messages[0].starts_with("CuttingItem without indices"),
            "{messages:?}"
        );
        assert!(
            messages[1].starts_with("ToolLife type \"SECONDS\""),
            "{messages:?}"
        );
        assert_eq!(
            messages[2],
            "CuttingTool a: ItemLife value \"x\" is not a number"
        );
        assert_eq!(messages[3], format!("CuttingTool a: more than {MAX_TOOL_ENTRIES} CuttingItem elements; the rest ignored"));
    }

    #[test]
    fn a_malformed_asset_is_skipped_and_the_rest_kept() {
        let long = "x".repeat(MAX_ASSET_TEXT + 1);
        let input = doc(&format!(
            r#"<CuttingTool toolId="T1"><CuttingToolLifeCycle/></CuttingTool>
            <CuttingTool assetId="a2" toolId="T2"><CuttingToolLifeCycle><ProgramToolNumber>{long}</ProgramToolNumber></CuttingToolLifeCycle></CuttingTool>
            <CuttingTool assetId="{long}"/>
            <File assetId="f1" deviceUuid="d" timestamp="2025-04-13T00:00:00Z"><FileLocation href="x"/></File>
            <File/>
            <CuttingTool assetId="ok" toolId="T3"><CuttingToolLifeCycle><CutterStatus><Status>NEW</Status></CutterStatus></CuttingToolLifeCycle></CuttingTool>"#
        ));
        let parsed = parse_assets(&input).unwrap();
        let ids: Vec<_> = parsed
            .value
            .cutting_tools
            .iter()
            .map(|t| t.asset_id.as_str())
            .collect();
        assert_eq!(ids, ["ok"]);
        assert_eq!(parsed.value.cutting_tools[0].status, ["NEW"]);
        assert_eq!(parsed.value.other.len(), 1);
        assert_eq!(parsed.value.other[0].kind, "File");
        assert_eq!(parsed.value.other[0].device_uuid.as_deref(), Some("d"));
        assert_eq!(parsed.problems.len(), 4, "{:?}", parsed.problems);
        assert!(parsed
            .problems
            .iter()
            .all(|p| p.message.contains("was skipped")));
        assert!(parsed.is_complete());
    }

    #[test]
    fn tool_lives_are_read_and_bad_ones_reported() {
        let input = doc(
            r#"<CuttingTool assetId="a" toolId="T"><CuttingToolLifeCycle>
              <ToolLife type="PART_COUNT" countDirection="DOWN" initial="300" limit="0" warning="30">25</ToolLife>
              <ToolLife type="MINUTES" countDirection="UP" limit="x">12.5</ToolLife>
              <ToolLife type="FURLONGS" countDirection="UP">1</ToolLife>
              <ToolLife type="WEAR">1</ToolLife>
              <ToolLife type="WEAR" countDirection="UP" limit="2">lots</ToolLife>
              <ToolLife type="WEAR" countDirection="UP" limit="2"/>
              <Location type="POT" positiveOverlap="0">17</Location>
              <CuttingItems><CuttingItem indices="1"/><CuttingItem indices="2"><Measurements/></CuttingItem></CuttingItems>
            </CuttingToolLifeCycle></CuttingTool>"#,
        );
        let parsed = parse_assets(&input).unwrap();
        let t = &parsed.value.cutting_tools[0];
        assert_eq!(t.lives.len(), 4, "{:?}", t.lives);
        assert_eq!(t.lives[0].remaining(), Some(25.0));
        assert!(t.lives[0].near_limit());
        assert_eq!(
            (t.lives[1].value, t.lives[1].limit),
            (Some(12.5), None),
            "a bad limit is None"
        );
        assert_eq!(t.lives[2].value, None, "`lots` is no number");
        assert_eq!(t.lives[3].value, None, "an empty ToolLife");
        assert_eq!(
            t.location,
            Some(ToolLocation {
                kind: "POT".into(),
                value: "17".into()
            })
        );
        assert_eq!(t.cutting_items, Some(2), "counted without `count`");
        let kinds: Vec<_> = parsed.problems.iter().map(|p| p.kind).collect();
        assert_eq!(
            kinds,
            [
                ProblemKind::InvalidAttribute,
                ProblemKind::InvalidAttribute,
                ProblemKind::MissingAttribute,
                ProblemKind::InvalidValue
            ],
            "{:?}",
            parsed.problems
        );
    }

    #[test]
    fn too_many_lives_and_too_deep_elements_are_bounded() {
        let lives = r#"<ToolLife type="WEAR" countDirection="UP">1</ToolLife>"#.repeat(40);
        let input = doc(&format!(
            r#"<CuttingTool assetId="a"><CuttingToolLifeCycle>{lives}</CuttingToolLifeCycle></CuttingTool>"#
        ));
        let parsed = parse_assets(&input).unwrap();
        assert_eq!(parsed.value.cutting_tools[0].lives.len(), MAX_TOOL_ENTRIES);
        assert_eq!(parsed.problems.len(), 1, "reported once");

        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        let input = doc(&format!(
            r#"<CuttingTool assetId="d"><CuttingToolLifeCycle>{deep}<ProgramToolNumber>4</ProgramToolNumber></CuttingToolLifeCycle></CuttingTool>"#
        ));
        let parsed = parse_assets_with(&input, &ParseOptions::new().with_max_depth(10)).unwrap();
        assert_eq!(
            parsed.value.cutting_tools[0].program_tool_number.as_deref(),
            Some("4")
        );
        assert_eq!(parsed.problems[0].kind, ProblemKind::TooDeep);
        assert!(matches!(
            parse_assets_with(&input, &ParseOptions::new().with_max_document_bytes(100)),
            Err(Error::TooLarge { limit: 100 })
        ));
    }

    #[test]
    fn a_document_cut_short_keeps_the_tools_before() {
        let input =
            doc(r#"<CuttingTool assetId="a"/><CuttingTool assetId="b"><CuttingToolLifeCycle>"#);
        let cut = &input[..input.len() - "</Assets></MTConnectAssets>".len()];
        let parsed = parse_assets(cut).unwrap();
        assert_eq!(parsed.value.cutting_tools.len(), 1);
        assert!(!parsed.is_complete());
    }
}
