//! MTConnectStreams documents, the answers to `/current` and `/sample`: MTConnect Part 3,
//! "Observation Information Model" (Streams, DeviceStream, ComponentStream, Samples,
//! Events, Condition), and Part 1, "Response Documents".
//!
//! Two ways to read one:
//! - [`parse_streams`] reads a whole document in one pass into [`Streams`], borrowing every
//!   string it can from the input (a `dataItemId`, a name, a value are slices of the
//!   document unless they contain entities).
//! - [`StreamsReader`] (over `&[u8]`) and [`StreamsBufReader`] (over any `BufRead`, for
//!   huge `/sample` answers read as they arrive) pull one [`StreamsItem`] at a time.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::io::{BufRead, Read};

use factorydash_core::{Category, ConditionLevel};
use quick_xml::errors::IllFormedError;
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use crate::error::{parse_error_root, Error};
use crate::header::Header;
use crate::problem::{Parsed, Problem, ProblemKind};
use crate::time::{parse_timestamp_cached, DateCache};
use crate::xml::{
    attr_text, attr_value, element_name, find_byte, local_part, parse_u64, prefix_part, problem,
    push_text, resolve_reference, text_of, RawAttributes,
};
use crate::ParseOptions;

mod model;
mod number;

use model::representation_of;
pub use model::{
    owned_observation, ComponentStream, DeviceStream, EntryRef, ObservationExtra, ObservationRef,
    Representation, Streams, StreamsItem, ValueRef,
};
use number::{all_numbers, plain_decimal, Decimal};

/// Parses an MTConnectStreams document with the default [`ParseOptions`].
///
/// One bad observation (missing `sequence`, unparsable `timestamp`, …) is reported in
/// [`Parsed::problems`] and skipped; the rest of the document is kept. Broken XML stops
/// the parser at that point: what came before is kept and [`Parsed::is_complete`] is false.
///
/// # Errors
/// - [`Error::Agent`] when the document is an MTConnectError (the agent refused the request).
/// - [`Error::UnexpectedRoot`] when it is another MTConnect document (Devices, Assets).
/// - [`Error::Syntax`], [`Error::IllFormed`] or [`Error::NoRoot`] when no root element
///   can be read at all.
/// - [`Error::TooLarge`] when it is larger than [`ParseOptions::max_document_bytes`].
///
/// ```
/// let xml = br#"<MTConnectStreams><Header instanceId="1" nextSequence="3" firstSequence="1" lastSequence="2"/>
/// <Streams><DeviceStream name="M1" uuid="m1"><ComponentStream component="Linear" componentId="x" name="X">
/// <Samples><Position dataItemId="xp" sequence="1" timestamp="2024-01-01T00:00:00Z" subType="ACTUAL"> 1.5 </Position></Samples>
/// <Events><Execution dataItemId="ex" sequence="2" timestamp="2024-01-01T00:00:01Z">UNAVAILABLE</Execution></Events>
/// </ComponentStream></DeviceStream></Streams></MTConnectStreams>"#;
/// let parsed = factorydash_mtconnect::parse_streams(xml)?;
/// assert!(parsed.problems.is_empty());
/// let doc = parsed.value;
/// assert_eq!(doc.header.next_sequence, Some(3));
/// assert_eq!(doc.observations[0].number, Some(1.5));
/// assert_eq!(doc.observations[1].value, factorydash_mtconnect::ValueRef::Unavailable);
/// # Ok::<(), factorydash_mtconnect::Error>(())
/// ```
pub fn parse_streams(input: &[u8]) -> Result<Parsed<Streams<'_>>, Error> {
    parse_streams_with(input, &ParseOptions::default())
}

/// Parses an MTConnectStreams document with explicit limits. See [`parse_streams`].
///
/// # Errors
/// As [`parse_streams`].
pub fn parse_streams_with<'a>(
    input: &'a [u8],
    options: &ParseOptions,
) -> Result<Parsed<Streams<'a>>, Error> {
    let mut reader = StreamsReader::with_options(input, options)?;
    // Collect straight into the document: no queue on the way. A NIST page holds one
    // observation per ~160 bytes.
    let mut doc = Streams {
        header: reader.header().clone(),
        ..Streams::default()
    };
    doc.observations.reserve(input.len() / 160);
    reader.machine.out = Out::Collect {
        doc,
        problems: Vec::new(),
    };
    while reader.next().is_some() {}
    match reader.machine.out {
        Out::Collect { doc, problems } => Ok(Parsed {
            value: doc,
            problems,
        }),
        Out::Queue(_) => unreachable!("set to Collect above"),
    }
}

/// Where the parser puts what it finds: a queue for the pull readers, or straight into a
/// document for [`parse_streams`].
// One per parser, never moved on the hot path: its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Out<'a> {
    Queue(VecDeque<StreamsItem<'a>>),
    Collect {
        doc: Streams<'a>,
        problems: Vec<Problem>,
    },
}

impl<'a> Out<'a> {
    fn push(&mut self, item: StreamsItem<'a>) {
        match self {
            Out::Queue(q) => q.push_back(item),
            Out::Collect { doc, problems } => match item {
                StreamsItem::Header(h) => doc.header = h,
                StreamsItem::DeviceStream(d) => doc.device_streams.push(d),
                StreamsItem::ComponentStream(c) => doc.component_streams.push(c),
                StreamsItem::Observation(o) => doc.observations.push(o),
                StreamsItem::Problem(p) => problems.push(p),
            },
        }
    }

    /// [`Out::push`] of an observation, without wrapping it in an item when collecting.
    fn push_observation(&mut self, obs: ObservationRef<'a>) {
        match self {
            Out::Queue(q) => q.push_back(StreamsItem::Observation(obs)),
            Out::Collect { doc, .. } => doc.observations.push(obs),
        }
    }

    fn pop(&mut self) -> Option<StreamsItem<'a>> {
        match self {
            Out::Queue(q) => q.pop_front(),
            Out::Collect { .. } => None,
        }
    }
}

/// A pull reader of an MTConnectStreams document in memory: yields [`StreamsItem`]s that
/// borrow from the input, one at a time (quick-xml style: no DOM, one pass).
///
/// ```
/// use factorydash_mtconnect::{StreamsItem, StreamsReader};
/// let xml = br#"<MTConnectStreams><Header instanceId="1"/><Streams><DeviceStream name="M">
/// <ComponentStream component="Path" componentId="p"><Events>
/// <Execution dataItemId="ex" sequence="9" timestamp="2024-01-01T00:00:00Z">ACTIVE</Execution>
/// </Events></ComponentStream></DeviceStream></Streams></MTConnectStreams>"#;
/// let mut seen = 0;
/// for item in StreamsReader::new(xml)? {
///     if let StreamsItem::Observation(o) = item {
///         assert_eq!((o.sequence, o.kind()), (9, "Execution"));
///         seen += 1;
///     }
/// }
/// assert_eq!(seen, 1);
/// # Ok::<(), factorydash_mtconnect::Error>(())
/// ```
pub struct StreamsReader<'a> {
    reader: Reader<&'a [u8]>,
    machine: Machine<'a>,
    finished: bool,
    /// Bytes consumed by [`StreamsReader::read_plain`] behind quick-xml's back: added to
    /// its `buffer_position` for the offsets of problems.
    skipped: u64,
    /// The last event ended markup (`>`): quick-xml expects text next, so the markup that
    /// follows may be read on the fast path.
    after_markup: bool,
}

impl<'a> StreamsReader<'a> {
    /// A reader of `input` with the default [`ParseOptions`]; reads up to the root element.
    ///
    /// # Errors
    /// As [`parse_streams`].
    pub fn new(input: &'a [u8]) -> Result<Self, Error> {
        Self::with_options(input, &ParseOptions::default())
    }

    /// A reader of `input` with explicit limits; reads up to the root element.
    ///
    /// # Errors
    /// As [`parse_streams`].
    pub fn with_options(input: &'a [u8], options: &ParseOptions) -> Result<Self, Error> {
        let input = crate::xml::document_input(input, options)?;
        let mut reader = Reader::from_reader(input);
        reader.config_mut().check_end_names = true;
        let mut machine = Machine::new(input, options);
        loop {
            match reader.read_event() {
                Ok(Event::Start(e)) => {
                    machine.root(&e, false).map_err(|r| r.into_error(input))?;
                    break;
                }
                Ok(Event::Empty(e)) => {
                    machine.root(&e, true).map_err(|r| r.into_error(input))?;
                    break;
                }
                Ok(Event::Eof) => return Err(Error::NoRoot),
                Err(e) => return Err(Error::xml(e, reader.error_position(), Some(input))),
                Ok(_) => {}
            }
        }
        let finished = machine.depth == 0;
        Ok(StreamsReader {
            reader,
            machine,
            finished,
            skipped: 0,
            after_markup: true,
        })
    }

    /// The Header, once it has been read (the default Header before).
    pub fn header(&self) -> &Header {
        &self.machine.header
    }

    /// Between elements, outside an observation: skips text (it means nothing there; a
    /// malformed reference in it is reported as quick-xml reports it), then
    /// reads the plain markup that follows without quick-xml ([`Machine::plain_markup`]),
    /// element after element while they are plain; into a queue, only until it holds an
    /// item, so that it stays short. Returns whether anything was read (`false`: quick-xml
    /// reads what comes next).
    ///
    /// quick-xml is left as if it had read the same bytes itself: it expects text next,
    /// and its stack of open names holds the elements it opened; the elements read here
    /// are closed here ([`Machine::open`]).
    fn read_plain(&mut self) -> bool {
        let all: &'a [u8] = self.reader.get_ref();
        let base = self.reader.buffer_position() + self.skipped;
        let mut rest = all;
        loop {
            let ws = skip_whitespace(rest).unwrap_or(rest.len());
            let lt = match rest.get(ws) {
                Some(b'<') | None => ws,
                Some(_) => memchr::memchr2(b'<', b'&', &rest[ws..]).map_or(rest.len(), |i| ws + i),
            };
            rest = &rest[lt..];
            let offset = base + (all.len() - rest.len()) as u64;
            if rest.first() == Some(&b'&') {
                // A reference in the text, read by quick-xml on its own (to be skipped, or
                // reported as quick-xml reports it): the reader itself must not read text,
                // which would leave it inside markup, unable to hand an end tag back here.
                let mut reference = Reader::from_reader(rest);
                match reference.read_event() {
                    Ok(Event::GeneralRef(_)) => {
                        rest = &rest[reference.buffer_position() as usize..];
                        continue;
                    }
                    Err(err) => self.finished = self.machine.syntax(offset, &err),
                    Ok(_) => {}
                }
                break;
            }
            match self.machine.plain_markup(rest, offset) {
                Plain::Read(consumed) => rest = &rest[consumed..],
                Plain::Other => break,
                Plain::Error(err) => {
                    self.finished = self.machine.syntax(offset, &err);
                    break;
                }
            }
            if matches!(&self.machine.out, Out::Queue(q) if !q.is_empty()) {
                break;
            }
        }
        let consumed = all.len() - rest.len();
        *self.reader.get_mut() = rest;
        self.skipped += consumed as u64;
        consumed > 0 || self.finished
    }
}

/// What [`Machine::plain_markup`] made of the markup at the reader's position.
enum Plain {
    /// An element (or an end tag) read: the bytes consumed.
    Read(usize),
    /// Not plain: quick-xml reads it.
    Other,
    /// An end tag that does not match the element it closes: the error quick-xml gives.
    Error(quick_xml::Error),
}

impl<'a> Iterator for StreamsReader<'a> {
    type Item = StreamsItem<'a>;

    fn next(&mut self) -> Option<StreamsItem<'a>> {
        loop {
            if let Some(item) = self.machine.out.pop() {
                return Some(item);
            }
            if self.finished {
                return None;
            }
            if self.after_markup && self.machine.pending.is_none() && self.read_plain() {
                continue;
            }
            let offset = self.reader.buffer_position() + self.skipped;
            let event = self.reader.read_event();
            // Every markup event leaves quick-xml expecting text; text and references leave
            // it inside markup.
            self.after_markup = !matches!(event, Ok(Event::Text(_) | Event::GeneralRef(_)));
            match event {
                Ok(Event::Start(e)) if self.machine.depth + 1 > self.machine.max_depth => {
                    self.machine.too_deep(offset);
                    let end = e.to_end().into_owned();
                    if let Err(err) = self.reader.read_to_end(end.name()) {
                        self.finished = self.machine.syntax(offset, &err);
                    }
                }
                Ok(event) => self.finished = self.machine.event(event, offset, |t| t),
                Err(err) => self.finished = self.machine.syntax(offset, &err),
            }
        }
    }
}

/// A pull reader of an MTConnectStreams document from any [`BufRead`] (a file, a socket):
/// memory stays bounded by the largest element, not the document. Items own their strings.
pub struct StreamsBufReader<R: BufRead> {
    reader: Reader<R>,
    buf: Vec<u8>,
    machine: Machine<'static>,
    finished: bool,
    max_bytes: u64,
}

impl<R: BufRead> StreamsBufReader<R> {
    /// A reader of `source` with the default [`ParseOptions`]; reads up to the root element.
    ///
    /// # Errors
    /// As [`parse_streams`]; an I/O error of `source` is [`Error::Io`].
    pub fn new(source: R) -> Result<Self, Error> {
        Self::with_options(source, &ParseOptions::default())
    }

    /// A reader of `source` with explicit limits; reads up to the root element.
    ///
    /// # Errors
    /// As [`StreamsBufReader::new`].
    pub fn with_options(source: R, options: &ParseOptions) -> Result<Self, Error> {
        let mut reader = Reader::from_reader(source);
        reader.config_mut().check_end_names = true;
        let mut machine = Machine::new(&[], options);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let (e, empty) = match reader.read_event_into(&mut buf) {
                Ok(Event::Start(e)) => (e, false),
                Ok(Event::Empty(e)) => (e, true),
                Ok(Event::Eof) => return Err(Error::NoRoot),
                Err(e) => return Err(Error::xml(e, reader.error_position(), None)),
                Ok(_) => continue,
            };
            match machine.root(&e, empty) {
                Ok(()) => break,
                Err(RootError::Error) => {
                    // Re-read the whole error document: it is small.
                    let mut doc = b"<".to_vec();
                    doc.extend_from_slice(&e);
                    doc.extend_from_slice(if empty { b"/>" } else { b">" });
                    let _ = reader.into_inner().take(1 << 20).read_to_end(&mut doc);
                    return Err(parse_error_root(&doc));
                }
                Err(other) => return Err(other.into_error(&[])),
            }
        }
        let finished = machine.depth == 0;
        Ok(StreamsBufReader {
            reader,
            buf,
            machine,
            finished,
            max_bytes: options.max_document_bytes as u64,
        })
    }
}

impl<R: BufRead> Iterator for StreamsBufReader<R> {
    type Item = StreamsItem<'static>;

    fn next(&mut self) -> Option<StreamsItem<'static>> {
        loop {
            if let Some(item) = self.machine.out.pop() {
                return Some(item);
            }
            if self.finished {
                return None;
            }
            let offset = self.reader.buffer_position();
            if offset > self.max_bytes {
                self.machine.out.push(StreamsItem::Problem(problem(
                    ProblemKind::TooLarge,
                    offset,
                    format!(
                        "document larger than the limit of {} bytes; stopped",
                        self.max_bytes
                    ),
                )));
                self.finished = true;
                continue;
            }
            self.buf.clear();
            match self.reader.read_event_into(&mut self.buf) {
                Ok(Event::Start(e)) if self.machine.depth + 1 > self.machine.max_depth => {
                    self.machine.too_deep(offset);
                    let end = e.to_end().into_owned();
                    let mut skip = Vec::new();
                    if let Err(err) = self.reader.read_to_end_into(end.name(), &mut skip) {
                        self.finished = self.machine.syntax(offset, &err);
                    }
                }
                Ok(event) => {
                    self.finished = self
                        .machine
                        .event(event, offset, |t| Cow::Owned(t.into_owned()));
                }
                Err(err) => self.finished = self.machine.syntax(offset, &err),
            }
        }
    }
}

/// Why a root element is not a Streams document.
enum RootError {
    Error,
    Other(String),
}

impl RootError {
    fn into_error(self, input: &[u8]) -> Error {
        match self {
            RootError::Error => parse_error_root(input),
            RootError::Other(found) => Error::UnexpectedRoot {
                expected: "MTConnectStreams",
                found,
            },
        }
    }
}

/// The parser's state between events, shared by the slice and the `BufRead` readers.
struct Machine<'a> {
    /// The whole input for the slice reader (to borrow from), empty for `BufRead`.
    input: &'a [u8],
    /// The whole input as text, when it is valid UTF-8: then every slice of it at ASCII
    /// boundaries is text, checked once rather than once per attribute.
    whole: Option<&'a str>,
    out: Out<'a>,
    header: Header,
    dates: DateCache,
    declared: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    reported_prefixes: Vec<String>,
    zone_reported: bool,
    depth: usize,
    max_depth: usize,
    device_depth: Option<usize>,
    component_depth: Option<usize>,
    device_streams: usize,
    component_streams: usize,
    /// The Samples/Events/Condition container we are in, with its depth.
    container: Option<(Category, usize)>,
    pending: Option<Pending<'a>>,
    /// The open elements whose start tags [`Machine::plain_start`] read, innermost last,
    /// with their names and depths: their end tags are read the same way (quick-xml never
    /// saw them open), and checked against these names as quick-xml checks its own.
    open: Vec<(&'a [u8], usize)>,
}

/// A start tag read by [`Machine::fast_observation`]: where it closes and whether it is
/// empty; its attributes are in the [`Attributes`] it was scanned into.
struct StartTag {
    /// The index of the closing `>`.
    close: usize,
    /// `/>`.
    empty: bool,
}

/// The attributes of an observation the parser reads: MTConnect Part 3, "Observation"
/// (`dataItemId`, `timestamp`, `sequence`, `name`, `subType`, a Condition's `type`,
/// `nativeCode`, `nativeSeverity`, `qualifier`), "DataItem" (`compositionId`), statistics
/// (`statistic`, `duration`), TIME_SERIES (`sampleCount`, `sampleRate`) and DataSet/Table
/// (`count`). Every other attribute is kept as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    DataItemId,
    Timestamp,
    Sequence,
    Name,
    SubType,
    Type,
    NativeCode,
    NativeSeverity,
    Qualifier,
    CompositionId,
    Statistic,
    Duration,
    SampleCount,
    SampleRate,
    Count,
}

impl Key {
    const COUNT: usize = Key::Count as usize + 1;

    /// The key named `name`. Dispatched on length and first byte, then compared whole: a
    /// comparison of a known length compiles to a few word compares.
    fn of(name: &[u8]) -> Option<Key> {
        let key = match (name.len(), name.first()?) {
            (10, b'd') if name == b"dataItemId" => Key::DataItemId,
            (9, b't') if name == b"timestamp" => Key::Timestamp,
            (8, b's') if name == b"sequence" => Key::Sequence,
            (4, b'n') if name == b"name" => Key::Name,
            (7, b's') if name == b"subType" => Key::SubType,
            (4, b't') if name == b"type" => Key::Type,
            (10, b'n') if name == b"nativeCode" => Key::NativeCode,
            (14, b'n') if name == b"nativeSeverity" => Key::NativeSeverity,
            (9, b'q') if name == b"qualifier" => Key::Qualifier,
            (13, b'c') if name == b"compositionId" => Key::CompositionId,
            (9, b's') if name == b"statistic" => Key::Statistic,
            (8, b'd') if name == b"duration" => Key::Duration,
            (11, b's') if name == b"sampleCount" => Key::SampleCount,
            (10, b's') if name == b"sampleRate" => Key::SampleRate,
            (5, b'c') if name == b"count" => Key::Count,
            _ => return None,
        };
        Some(key)
    }
}

impl Key {
    /// The key whose name, followed by `=`, starts `bytes`, and the name's length: what
    /// [`Key::of`] finds, without first searching for the `=`. Compares of known lengths
    /// compile to a few word compares.
    fn at(bytes: &[u8]) -> Option<(Key, usize)> {
        fn is<const N: usize>(bytes: &[u8], name: &[u8; N]) -> bool {
            bytes.get(..N) == Some(name)
        }
        let (key, name_and_eq) = match bytes.first()? {
            b'd' if is(bytes, b"dataItemId=") => (Key::DataItemId, 11),
            b'd' if is(bytes, b"duration=") => (Key::Duration, 9),
            b't' if is(bytes, b"timestamp=") => (Key::Timestamp, 10),
            b't' if is(bytes, b"type=") => (Key::Type, 5),
            b's' if is(bytes, b"sequence=") => (Key::Sequence, 9),
            b's' if is(bytes, b"subType=") => (Key::SubType, 8),
            b's' if is(bytes, b"statistic=") => (Key::Statistic, 10),
            b's' if is(bytes, b"sampleCount=") => (Key::SampleCount, 12),
            b's' if is(bytes, b"sampleRate=") => (Key::SampleRate, 11),
            b'n' if is(bytes, b"name=") => (Key::Name, 5),
            b'n' if is(bytes, b"nativeCode=") => (Key::NativeCode, 11),
            b'n' if is(bytes, b"nativeSeverity=") => (Key::NativeSeverity, 15),
            b'q' if is(bytes, b"qualifier=") => (Key::Qualifier, 10),
            b'c' if is(bytes, b"compositionId=") => (Key::CompositionId, 14),
            b'c' if is(bytes, b"count=") => (Key::Count, 6),
            _ => return None,
        };
        Some((key, name_and_eq - 1))
    }
}

/// The attributes of one start tag, sorted as they are read: the value's byte range (in the
/// tag's raw attribute bytes) of each [`Key`] present, the last one written winning as in
/// quick-xml, and every other attribute's name and value range in document order.
struct Attributes<'r> {
    known: [(usize, usize); Key::COUNT],
    others: Vec<(&'r [u8], std::ops::Range<usize>)>,
}

impl<'r> Attributes<'r> {
    /// An absent key: a value never ends at 0 (a name, `=` and a quote come before it), and
    /// all zeros is the cheapest value to fill the slots with.
    const ABSENT: (usize, usize) = (0, 0);

    fn new() -> Self {
        Attributes {
            known: [Self::ABSENT; Key::COUNT],
            others: Vec::new(),
        }
    }

    fn set(&mut self, name: &'r [u8], value: std::ops::Range<usize>) {
        match Key::of(name) {
            Some(key) => self.known[key as usize] = (value.start, value.end),
            None => self.others.push((name, value)),
        }
    }

    fn get(&self, key: Key) -> Option<std::ops::Range<usize>> {
        let (start, end) = self.known[key as usize];
        (end != 0).then_some(start..end)
    }

    /// Scans `tag` (the bytes after `<`) from the end of its name: `None` when it is not a
    /// well-formed tag with plain attribute names (quick-xml then reads it and reports).
    // Its own function: inlined into the reader's loop, its position lived on the stack.
    #[inline(never)]
    fn scan(&mut self, tag: &'r [u8], name_len: usize) -> Option<StartTag> {
        let mut pos = name_len;
        // The common shape first: one space, a known name, `="`, the value, `"`. The
        // general loop below goes on from wherever this stops, as if it had read these
        // attributes itself.
        while tag.get(pos) == Some(&b' ') {
            let Some((key, len)) = Key::at(&tag[pos + 1..]) else {
                break;
            };
            let value_start = pos + 1 + len + 2;
            if tag.get(value_start - 1) != Some(&b'"') {
                break;
            }
            let Some(value_len) = find_byte(&tag[value_start..], b'"') else {
                break;
            };
            self.known[key as usize] = (value_start, value_start + value_len);
            pos = value_start + value_len + 1;
        }
        loop {
            let after = pos;
            while tag.get(pos)?.is_ascii_whitespace() {
                pos += 1;
            }
            match tag[pos] {
                b'>' => {
                    return Some(StartTag {
                        close: pos,
                        empty: false,
                    })
                }
                b'/' if tag.get(pos + 1) == Some(&b'>') => {
                    return Some(StartTag {
                        close: pos + 1,
                        empty: true,
                    })
                }
                _ => {}
            }
            // After the name (or a value), whitespace must separate attributes.
            if pos == after {
                return None;
            }
            let start = pos;
            let (key, key_end) = match Key::at(&tag[start..]) {
                Some((key, len)) => (Some(key), start + len),
                None => {
                    // Not a known name directly followed by `=`: an other attribute.
                    let key_end = start + find_byte(&tag[start..], b'=')?;
                    let name = &tag[start..key_end];
                    if name.is_empty() || !name.iter().all(|&b| PLAIN_NAME[usize::from(b)]) {
                        return None;
                    }
                    (None, key_end)
                }
            };
            pos = key_end + 1;
            while tag.get(pos)?.is_ascii_whitespace() {
                pos += 1;
            }
            let quote = tag[pos];
            if quote != b'"' && quote != b'\'' {
                return None;
            }
            let value_start = pos + 1;
            let len = find_byte(&tag[value_start..], quote)?;
            pos = value_start + len + 1;
            match key {
                Some(key) => self.known[key as usize] = (value_start, value_start + len),
                None => self
                    .others
                    .push((&tag[start..key_end], value_start..value_start + len)),
            }
        }
    }
}

/// The bytes of the names the fast path reads: ASCII letters, digits, `:`, `_`, `-`, `.`.
/// Any other name goes to quick-xml.
const PLAIN_NAME: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || matches!(c, b':' | b'_' | b'-' | b'.');
        b += 1;
    }
    table
};

/// XML's whitespace (XML 1.0, production 3: space, tab, CR, LF), which is what quick-xml
/// ends names at; `u8::is_ascii_whitespace` also counts the form feed.
fn is_xml_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// The index of the `>` that closes a tag, in `bytes` (the tag after its name), outside
/// quoted attribute values: quick-xml's rule for start and end tags alike.
fn tag_close(bytes: &[u8]) -> Option<usize> {
    let mut i = 0;
    loop {
        i += bytes[i..]
            .iter()
            .position(|&b| matches!(b, b'>' | b'"' | b'\''))?;
        match bytes[i] {
            b'>' => return Some(i),
            // A quoted value, skipped whole.
            quote => i += 1 + find_byte(&bytes[i + 1..], quote)? + 1,
        }
    }
}

/// The index of the first byte of `bytes` that is not ASCII whitespace: runs of spaces (an
/// indented document's) are skipped eight at a time.
fn skip_whitespace(bytes: &[u8]) -> Option<usize> {
    let mut i = 0;
    loop {
        match *bytes.get(i)? {
            b' ' if bytes.get(i..i + 8) == Some(b"        ") => i += 8,
            b if b.is_ascii_whitespace() => i += 1,
            _ => return Some(i),
        }
    }
}

/// An observation element being read (its text and DataSet/Table entries may follow).
struct Pending<'a> {
    depth: usize,
    /// `None` when the element was rejected: its content is skipped.
    obs: Option<ObservationRef<'a>>,
    text: Option<Cow<'a, str>>,
    entry: Option<PendingEntry<'a>>,
    offset: u64,
}

struct PendingEntry<'a> {
    entry: EntryRef<'a>,
    text: Option<Cow<'a, str>>,
    cell_key: Option<Cow<'a, str>>,
}

fn trimmed(text: Option<Cow<'_, str>>) -> Cow<'_, str> {
    match text {
        None => Cow::Borrowed(""),
        Some(Cow::Borrowed(s)) => Cow::Borrowed(s.trim_ascii()),
        Some(Cow::Owned(s)) if s.trim_ascii().len() == s.len() => Cow::Owned(s),
        Some(Cow::Owned(s)) => Cow::Owned(s.trim_ascii().to_owned()),
    }
}

impl<'a> Machine<'a> {
    fn new(input: &'a [u8], options: &ParseOptions) -> Self {
        Machine {
            input,
            whole: std::str::from_utf8(input).ok(),
            out: Out::Queue(VecDeque::new()),
            dates: DateCache::default(),
            header: Header::default(),
            declared: Vec::new(),
            reported_prefixes: Vec::new(),
            zone_reported: false,
            depth: 0,
            max_depth: options.max_depth,
            device_depth: None,
            component_depth: None,
            device_streams: 0,
            component_streams: 0,
            container: None,
            pending: None,
            open: Vec::new(),
        }
    }

    /// `part` as text borrowed from the input, when it lies in the input (slice reader) and
    /// the input is UTF-8.
    fn sub_str(&self, part: &[u8]) -> Option<&'a str> {
        let whole = self.whole?;
        let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
        whole.get(start..start.checked_add(part.len())?)
    }

    /// [`Machine::attr`], with an error reported (as about an attribute on `<element>`).
    #[cold]
    #[inline(never)]
    fn unescaped_attribute(
        &mut self,
        raw: &[u8],
        range: std::ops::Range<usize>,
        element: &str,
        offset: u64,
    ) -> Option<Cow<'a, str>> {
        match self.attr(raw, range) {
            Ok(value) => Some(value),
            Err(err) => {
                self.report(
                    ProblemKind::InvalidAttribute,
                    offset,
                    format!("attribute on <{element}>: {err}"),
                );
                None
            }
        }
    }

    /// An attribute value (bytes `range` of the raw attributes), unescaped, borrowed when
    /// it can be.
    fn attr(&self, raw: &[u8], range: std::ops::Range<usize>) -> Result<Cow<'a, str>, String> {
        match self.sub_str(&raw[range.clone()]) {
            Some(s) if !s.as_bytes().contains(&b'&') => Ok(Cow::Borrowed(s)),
            Some(s) => quick_xml::escape::unescape(s).map_err(|e| e.to_string()),
            None => attr_text(None, raw, range),
        }
    }

    fn report(&mut self, kind: ProblemKind, offset: u64, message: impl Into<String>) {
        self.out
            .push(StreamsItem::Problem(problem(kind, offset, message)));
    }

    fn too_deep(&mut self, offset: u64) {
        let max = self.max_depth;
        self.report(
            ProblemKind::TooDeep,
            offset,
            format!("element nested deeper than {max} levels skipped"),
        );
    }

    /// Reports a syntax error; returns `true` (the reader is finished).
    fn syntax(&mut self, offset: u64, err: &quick_xml::Error) -> bool {
        self.report(ProblemKind::Syntax, offset, format!("XML error: {err}"));
        true
    }

    fn value(
        &self,
        attr: &quick_xml::events::attributes::Attribute<'_>,
    ) -> Result<Cow<'a, str>, String> {
        attr_value(self.input, attr)
    }

    /// The values of the attributes of `e` with the local names `names`, unescaped (the
    /// last one wins; a value that cannot be read counts as absent).
    fn named_attributes<const N: usize>(
        &self,
        e: &BytesStart<'_>,
        names: [&[u8]; N],
    ) -> [Option<Cow<'a, str>>; N] {
        let raw = e.attributes_raw();
        // Text of the input with no entity in the whole tag: every value is a slice of it.
        let plain = self
            .sub_str(raw)
            .filter(|text| memchr::memchr(b'&', text.as_bytes()).is_none());
        let mut values = [const { None }; N];
        for (key, range) in RawAttributes::new(raw).map_while(Result::ok) {
            let local = key
                .iter()
                .position(|&b| b == b':')
                .map_or(key, |colon| &key[colon + 1..]);
            if let Some(i) = names.iter().position(|name| *name == local) {
                values[i] = match plain {
                    Some(text) => text.get(range).map(Cow::Borrowed),
                    None => self.attr(raw, range).ok(),
                };
            }
        }
        values
    }

    fn root(&mut self, e: &BytesStart<'_>, empty: bool) -> Result<(), RootError> {
        match e.local_name().as_ref() {
            b"MTConnectStreams" => {}
            b"MTConnectError" => return Err(RootError::Error),
            other => {
                return Err(RootError::Other(
                    String::from_utf8_lossy(other).into_owned(),
                ))
            }
        }
        for attr in e.attributes().with_checks(false).flatten() {
            if let Some(p) = attr.key.as_ref().strip_prefix(b"xmlns:") {
                let prefix = text_of(self.input, p).unwrap_or(Cow::Borrowed(""));
                let uri = self.value(&attr).unwrap_or_default();
                self.declared.push((prefix, uri));
            }
        }
        self.depth = usize::from(!empty);
        Ok(())
    }

    /// Feeds one event; `own` turns text borrowed from the event into text that lives as
    /// long as `'a`. Returns `true` when the document has ended.
    fn event<'e>(
        &mut self,
        event: Event<'e>,
        offset: u64,
        own: impl Fn(Cow<'e, str>) -> Cow<'a, str>,
    ) -> bool {
        match event {
            Event::Start(e) => {
                self.depth += 1;
                self.start(&e, offset);
            }
            Event::Empty(e) => {
                self.depth += 1;
                self.start(&e, offset);
                self.end();
                self.depth -= 1;
            }
            Event::End(_) => {
                self.end();
                self.depth = self.depth.saturating_sub(1);
                return self.depth == 0;
            }
            Event::Text(t) => {
                if self.pending.is_some() {
                    if let Some(text) = self.sub_str(&t) {
                        self.push_text(Cow::Borrowed(text));
                        return false;
                    }
                    match t.decode() {
                        Ok(text) => self.push_text(own(text)),
                        Err(e) => self.report(
                            ProblemKind::Unexpected,
                            offset,
                            format!("text is not UTF-8: {e}"),
                        ),
                    }
                }
            }
            Event::CData(t) => {
                if self.pending.is_some() {
                    if let Ok(text) = t.decode() {
                        self.push_text(own(text));
                    }
                }
            }
            Event::GeneralRef(r) => {
                if self.pending.is_some() {
                    match resolve_reference(&r) {
                        Some(c) => self.push_text(Cow::Owned(c.to_string())),
                        None => {
                            let name = String::from_utf8_lossy(&r).into_owned();
                            self.report(
                                ProblemKind::Unexpected,
                                offset,
                                format!("unknown entity &{name};"),
                            );
                        }
                    }
                }
            }
            Event::Eof => {
                self.report(
                    ProblemKind::Syntax,
                    offset,
                    "document ends before its root element is closed",
                );
                return true;
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
        false
    }

    fn push_text(&mut self, text: Cow<'a, str>) {
        let Some(pending) = &mut self.pending else {
            return;
        };
        if pending.obs.is_none() {
            return;
        }
        match &mut pending.entry {
            Some(entry) => push_text(&mut entry.text, text),
            None => push_text(&mut pending.text, text),
        }
    }

    /// The namespace of a prefixed element; reports an undeclared prefix once.
    fn namespace(&mut self, name: &str, offset: u64) -> Option<Cow<'a, str>> {
        let prefix = prefix_part(name)?;
        if let Some((_, uri)) = self.declared.iter().find(|(p, _)| p == prefix) {
            return Some(uri.clone());
        }
        if !self.reported_prefixes.iter().any(|p| p == prefix) {
            self.reported_prefixes.push(prefix.to_owned());
            self.report(
                ProblemKind::UndeclaredPrefix,
                offset,
                format!(
                    "namespace prefix `{prefix}` is used (first by <{name}>) but never declared"
                ),
            );
        }
        None
    }

    fn start(&mut self, e: &BytesStart<'_>, offset: u64) {
        if let Some(pending) = &mut self.pending {
            if pending.obs.is_some() {
                start_nested(self.input, pending, e, self.depth);
            }
            return;
        }
        if let Some((category, _)) = self.container {
            self.start_observation(category, e, offset);
            return;
        }
        match e.local_name().as_ref() {
            b"Header" => {
                let mut problems = Vec::new();
                self.header = Header::parse(self.input, e, offset, &mut problems);
                for p in problems {
                    self.out.push(StreamsItem::Problem(p));
                }
                self.out.push(StreamsItem::Header(self.header.clone()));
            }
            b"DeviceStream" => {
                let [name, uuid] = self.named_attributes(e, [b"name", b"uuid"]);
                if name.is_none() {
                    self.report(
                        ProblemKind::MissingAttribute,
                        offset,
                        "DeviceStream without name",
                    );
                }
                self.device_streams += 1;
                self.device_depth = Some(self.depth);
                self.out.push(StreamsItem::DeviceStream(DeviceStream {
                    name: name.unwrap_or(Cow::Borrowed("")),
                    uuid,
                }));
            }
            b"ComponentStream" => {
                if self.device_depth.is_none() {
                    self.report(
                        ProblemKind::Unexpected,
                        offset,
                        "ComponentStream outside a DeviceStream skipped",
                    );
                    return;
                }
                let [component, component_id, name] =
                    self.named_attributes(e, [b"component", b"componentId", b"name"]);
                if component_id.is_none() {
                    self.report(
                        ProblemKind::MissingAttribute,
                        offset,
                        "ComponentStream without componentId",
                    );
                }
                self.component_streams += 1;
                self.component_depth = Some(self.depth);
                self.out.push(StreamsItem::ComponentStream(ComponentStream {
                    device_stream: self.device_streams - 1,
                    component: component.unwrap_or(Cow::Borrowed("")),
                    component_id: component_id.unwrap_or(Cow::Borrowed("")),
                    name,
                }));
            }
            local @ (b"Samples" | b"Events" | b"Condition") if self.component_depth.is_some() => {
                let category = match local {
                    b"Samples" => Category::Sample,
                    b"Events" => Category::Event,
                    _ => Category::Condition,
                };
                self.container = Some((category, self.depth));
            }
            _ => {}
        }
    }

    /// Reads the markup at the start of `rest` (`<`, or nothing at the end of the input)
    /// without quick-xml where it is plain: an observation ([`Machine::fast_observation`]),
    /// any other start tag with a plain name ([`Machine::plain_start`]), and the end tag of
    /// an element read that way ([`Machine::plain_end`]). The result is what quick-xml's
    /// events would give, with the same offsets and the same errors; anything else
    /// (comments, CDATA, processing instructions, odd names, an element beyond the depth
    /// limit, input that is not UTF-8) is left to quick-xml.
    ///
    /// `offset` is the offset of `rest` in the document; only called between elements and
    /// outside an observation.
    fn plain_markup(&mut self, rest: &'a [u8], offset: u64) -> Plain {
        if self.whole.is_none() {
            return Plain::Other;
        }
        let read = match rest.get(1) {
            Some(b'/') => return self.plain_end(rest),
            Some(b'!' | b'?') | None => None,
            Some(_) if self.depth >= self.max_depth => None,
            Some(_) if self.container.is_some() => self.fast_observation(rest, offset),
            Some(_) => self.plain_start(rest, offset),
        };
        read.map_or(Plain::Other, Plain::Read)
    }

    /// Reads a start tag with a plain name outside a container (not an observation's), as
    /// quick-xml's Start or Empty event would be read, into [`Machine::start`]. Returns the
    /// bytes consumed.
    fn plain_start(&mut self, rest: &'a [u8], offset: u64) -> Option<usize> {
        let tag = &rest[1..];
        let name_len = tag.iter().position(|&b| !PLAIN_NAME[usize::from(b)])?;
        let close = match tag[name_len] {
            // quick-xml's name runs to whitespace: `/` must end the tag (`<Name/>`).
            b'/' if tag.get(name_len + 1) == Some(&b'>') => name_len + 1,
            b if name_len > 0 && (is_xml_space(b) || b == b'>') => {
                name_len + tag_close(&tag[name_len..])?
            }
            _ => return None,
        };
        let (content, empty) = match tag[..close].strip_suffix(b"/") {
            Some(content) => (content, true),
            None => (&tag[..close], false),
        };
        let e = BytesStart::from_content(self.sub_str(content)?, name_len);
        self.depth += 1;
        self.start(&e, offset);
        if empty {
            self.end();
            self.depth -= 1;
        } else {
            self.open.push((&tag[..name_len], self.depth));
        }
        Some(1 + close + 1)
    }

    /// Reads the end tag at the start of `rest` when it closes an element that
    /// [`Machine::plain_start`] opened, checking its name as quick-xml does (trailing
    /// whitespace trimmed, the whole rest compared).
    fn plain_end(&mut self, rest: &'a [u8]) -> Plain {
        let Some(&(name, depth)) = self.open.last() else {
            return Plain::Other;
        };
        if depth != self.depth {
            return Plain::Other;
        }
        // Unclosed: quick-xml reports it, whoever opened the element.
        let Some(close) = tag_close(&rest[2..]) else {
            return Plain::Other;
        };
        let content = &rest[2..2 + close];
        let spaces = content
            .iter()
            .rev()
            .take_while(|&&b| is_xml_space(b))
            .count();
        let found = &content[..content.len() - spaces];
        // Closed either way, as quick-xml pops its name on a mismatch too.
        self.open.pop();
        if found != name {
            return Plain::Error(quick_xml::Error::IllFormed(
                IllFormedError::MismatchedEndTag {
                    expected: String::from_utf8_lossy(name).into_owned(),
                    found: String::from_utf8_lossy(found).into_owned(),
                },
            ));
        }
        self.end();
        self.depth -= 1;
        Plain::Read(2 + close + 1)
    }

    /// Reads the observation element at the start of `rest` (at its `<`)
    /// without quick-xml, when it has the shape nearly every observation has: `<Name
    /// attributes/>` or `<Name attributes>text</Name>`, with no entity, comment, CDATA or
    /// child element in it. Returns the bytes consumed, or `None` (nothing consumed) for any
    /// other shape, which quick-xml then reads. The result is the same either way: the same
    /// functions handle the element, its text and its end, with the same offsets.
    ///
    /// `base` is the offset of `rest` in the document.
    fn fast_observation(&mut self, rest: &'a [u8], base: u64) -> Option<usize> {
        let (category, _) = self.container?;
        let tag = &rest[1..];
        // The name, up to whitespace, `>` or `/`. Only plain names: quick-xml reads a name
        // up to whitespace, quotes and all.
        let mut name_len = 0;
        let mut prefixed = false;
        loop {
            let b = *tag.get(name_len)?;
            if PLAIN_NAME[usize::from(b)] {
                prefixed |= b == b':';
                name_len += 1;
            } else if name_len > 0 && (is_xml_space(b) || b == b'>' || b == b'/') {
                break;
            } else {
                return None;
            }
        }
        let mut attributes = Attributes::new();
        let start_tag = attributes.scan(tag, name_len)?;
        let name = &tag[..name_len];
        let after_start = 1 + start_tag.close + 1;
        let (text, consumed) = if start_tag.empty {
            (None, after_start)
        } else {
            let body = &rest[after_start..];
            let t = find_byte(body, b'<')?;
            let end = body[t + 1..].strip_prefix(b"/")?.strip_prefix(name)?;
            let ws = end.iter().position(|&b| !is_xml_space(b))?;
            if end[ws] != b'>' || find_byte(&body[..t], b'&').is_some() {
                return None;
            }
            let text = (t > 0).then(|| &body[..t]);
            (text, after_start + t + 2 + name_len + ws + 1)
        };
        let element = Cow::Borrowed(self.sub_str(name)?);
        let text = match text {
            Some(t) => Some(Cow::Borrowed(self.sub_str(t)?)),
            None => None,
        };
        // The offset of the element's `<`, as quick-xml gives it.
        let offset = base;
        // What `start`, a Text event and `end` would do, without the detour through
        // `pending`.
        let namespace = if prefixed {
            self.namespace(&element, offset)
        } else {
            None
        };
        let plain = memchr::memchr(b'&', &tag[..start_tag.close]).is_none();
        let content = Content::Text(text);
        if let Some(obs) = self.observation_attributes(
            category,
            element,
            namespace,
            tag,
            &attributes,
            plain,
            content,
            offset,
        ) {
            self.out.push_observation(obs);
        }
        Some(consumed)
    }

    fn start_observation(&mut self, category: Category, e: &BytesStart<'_>, offset: u64) {
        let element = element_name(self.input, e);
        let namespace = self.namespace(&element, offset);
        let raw = e.attributes_raw();
        let plain = memchr::memchr(b'&', raw).is_none();
        let mut attributes = Attributes::new();
        for attr in RawAttributes::new(raw) {
            let Ok((name, value)) = attr else {
                self.report(
                    ProblemKind::Syntax,
                    offset,
                    format!("malformed attribute on <{element}>; element skipped"),
                );
                self.pending = Some(Pending {
                    depth: self.depth,
                    obs: None,
                    text: None,
                    entry: None,
                    offset,
                });
                return;
            };
            attributes.set(name, value);
        }
        let obs = self.observation_attributes(
            category,
            element,
            namespace,
            raw,
            &attributes,
            plain,
            Content::Later,
            offset,
        );
        self.pending = Some(Pending {
            depth: self.depth,
            obs,
            text: None,
            entry: None,
            offset,
        });
    }

    /// The observation of an element named `element` whose attributes are `attributes`:
    /// names and value ranges in `raw`; `plain` when `raw` holds no `&` (no value needs
    /// unescaping). Its value is set from `content` when that is known (else by
    /// [`Machine::finish`] at the end tag). `None` when it is rejected (reported).
    #[allow(clippy::too_many_arguments)]
    fn observation_attributes<'r>(
        &mut self,
        category: Category,
        element: Cow<'a, str>,
        namespace: Option<Cow<'a, str>>,
        raw: &'r [u8],
        attributes: &Attributes<'r>,
        plain: bool,
        content: Content<'a>,
        offset: u64,
    ) -> Option<ObservationRef<'a>> {
        let level = if category == Category::Condition {
            let level = ConditionLevel::from_element(local_part(&element).as_bytes());
            if level.is_none() {
                self.report(
                    ProblemKind::Unexpected,
                    offset,
                    format!("<{element}> in a Condition is not Normal, Warning, Fault or Unavailable; skipped"),
                );
                return None;
            }
            level
        } else {
            None
        };
        // Without `&`, every value is a slice of the input's text (between ASCII quotes).
        let raw_text = if plain { self.sub_str(raw) } else { None };
        let mut text = |key: Key| -> Option<Cow<'a, str>> {
            let range = attributes.get(key)?;
            match raw_text.and_then(|t| t.get(range.clone())) {
                Some(value) => Some(Cow::Borrowed(value)),
                None => self.unescaped_attribute(raw, range, &element, offset),
            }
        };
        let data_item_id = text(Key::DataItemId);
        let name = text(Key::Name);
        let sub_type = text(Key::SubType);
        let type_attribute = text(Key::Type);
        let native_code = text(Key::NativeCode);
        let native_severity = text(Key::NativeSeverity);
        let qualifier = text(Key::Qualifier);
        let composition_id = text(Key::CompositionId);
        let statistic = text(Key::Statistic);
        let mut other_attributes = Vec::new();
        for (key, range) in &attributes.others {
            let value = self.attr(raw, range.clone());
            let key = match self.sub_str(key) {
                Some(k) => Ok(Cow::Borrowed(k)),
                None => std::str::from_utf8(key).map(|k| Cow::Owned(k.to_owned())),
            };
            match (key, value) {
                (Ok(k), Ok(v)) => other_attributes.push((k, v)),
                _ => self.report(
                    ProblemKind::InvalidAttribute,
                    offset,
                    format!("an attribute on <{element}> is not UTF-8 text; ignored"),
                ),
            }
        }
        let sequence = attributes.get(Key::Sequence).map(|r| &raw[r]);
        let timestamp = attributes.get(Key::Timestamp).map(|r| &raw[r]);
        let numbers = [Key::Duration, Key::SampleCount, Key::SampleRate, Key::Count]
            .map(|key| attributes.get(key));
        // Only on the way to a problem: the description of the element.
        let what = |seq: Option<&[u8]>, id: Option<&str>| {
            format!(
                "<{element}> (dataItemId {}, sequence {})",
                id.unwrap_or("?"),
                seq.map(String::from_utf8_lossy).as_deref().unwrap_or("?")
            )
        };
        let Some(data_item_id) = data_item_id.filter(|s| !s.is_empty()) else {
            let what = what(sequence, None);
            self.report(
                ProblemKind::MissingAttribute,
                offset,
                format!("{what} has no dataItemId; skipped"),
            );
            return None;
        };
        let Some(seq_bytes) = sequence else {
            let what = what(None, Some(&data_item_id));
            self.report(
                ProblemKind::MissingAttribute,
                offset,
                format!("{what} has no sequence; skipped"),
            );
            return None;
        };
        let Some(seq) = parse_u64(seq_bytes) else {
            let what = what(sequence, Some(&data_item_id));
            self.report(
                ProblemKind::InvalidAttribute,
                offset,
                format!("{what}: sequence is not a whole number; skipped"),
            );
            return None;
        };
        let Some(ts_bytes) = timestamp else {
            let what = what(sequence, Some(&data_item_id));
            self.report(
                ProblemKind::MissingAttribute,
                offset,
                format!("{what} has no timestamp; skipped"),
            );
            return None;
        };
        let Some(ts) = parse_timestamp_cached(ts_bytes, &mut self.dates) else {
            let what = what(sequence, Some(&data_item_id));
            let ts_text = String::from_utf8_lossy(ts_bytes);
            self.report(
                ProblemKind::InvalidAttribute,
                offset,
                format!("{what}: timestamp \"{ts_text}\" is not an ISO 8601 time; skipped"),
            );
            return None;
        };
        if ts.zone_missing && !self.zone_reported {
            // Reported once per document: the NIST agent omits the `Z` on most observations.
            self.zone_reported = true;
            let ts_text = String::from_utf8_lossy(ts_bytes);
            self.report(
                ProblemKind::MissingTimeZone,
                offset,
                format!("timestamp \"{ts_text}\" has no zone designator; taken as UTC (reported once per document)"),
            );
        }
        let [duration, sample_count, sample_rate, count] = numbers;
        let mut number_attr = |name: &str, range: Option<std::ops::Range<usize>>| -> Option<f64> {
            let bytes = &raw[range?];
            match std::str::from_utf8(bytes)
                .ok()
                .and_then(|t| t.trim().parse::<f64>().ok())
            {
                Some(n) if n.is_finite() => Some(n),
                _ => {
                    let what = what(sequence, Some(&data_item_id));
                    let text = String::from_utf8_lossy(bytes);
                    self.out.push(StreamsItem::Problem(problem(
                        ProblemKind::InvalidAttribute,
                        offset,
                        format!("{what}: {name}=\"{text}\" is not a number; ignored"),
                    )));
                    None
                }
            }
        };
        let (duration, sample_count, sample_rate, count) = if duration.is_none()
            && sample_count.is_none()
            && sample_rate.is_none()
            && count.is_none()
        {
            (None, None, None, None)
        } else {
            (
                number_attr("duration", duration),
                number_attr("sampleCount", sample_count).map(|n| n as u64),
                number_attr("sampleRate", sample_rate),
                number_attr("count", count).map(|n| n as u64),
            )
        };
        let reset_triggered = other_attributes
            .iter()
            .position(|(k, _)| k == "resetTriggered")
            .map(|i| other_attributes.remove(i).1);
        let rare = namespace.is_some()
            || native_severity.is_some()
            || composition_id.is_some()
            || statistic.is_some()
            || duration.is_some()
            || reset_triggered.is_some()
            || sample_count.is_some()
            || sample_rate.is_some()
            || count.is_some()
            || !other_attributes.is_empty();
        let extra = rare.then(|| {
            Box::new(ObservationExtra {
                namespace,
                native_severity,
                composition_id,
                statistic,
                duration,
                reset_triggered,
                sample_count,
                sample_rate,
                count,
                entries: Vec::new(),
                other_attributes,
            })
        });
        let (value, number) = match content {
            Content::Later => (ValueRef::Unavailable, None),
            Content::Text(text) => {
                self.value_of(category, level, &element, &data_item_id, seq, text, offset)
            }
        };
        Some(ObservationRef {
            component_stream: self.component_streams.saturating_sub(1),
            category,
            element,
            data_item_id,
            name,
            sub_type,
            type_attribute,
            timestamp: ts.utc,
            sequence: seq,
            value,
            number,
            level,
            native_code,
            qualifier,
            extra,
        })
    }

    fn end(&mut self) {
        if let Some(pending) = &mut self.pending {
            if self.depth > pending.depth {
                end_nested(pending, self.depth);
                return;
            }
            let pending = self.pending.take().expect("checked above");
            if let Some(mut obs) = pending.obs {
                self.finish(&mut obs, pending.text, pending.offset);
                self.out.push_observation(obs);
            }
            return;
        }
        if self.container.is_some_and(|(_, d)| d == self.depth) {
            self.container = None;
        } else if self.component_depth == Some(self.depth) {
            self.component_depth = None;
        } else if self.device_depth == Some(self.depth) {
            self.device_depth = None;
        }
    }

    /// Sets the value (and a Sample's number) from the collected text and entries.
    fn finish(&mut self, obs: &mut ObservationRef<'a>, text: Option<Cow<'a, str>>, offset: u64) {
        if obs.level == Some(ConditionLevel::Unavailable) {
            obs.value = ValueRef::Unavailable;
            return;
        }
        if !obs.extra().entries.is_empty() {
            obs.value = ValueRef::Text(Cow::Owned(entries_text(&obs.extra().entries)));
            return;
        }
        (obs.value, obs.number) = self.value_of(
            obs.category,
            obs.level,
            &obs.element,
            &obs.data_item_id,
            obs.sequence,
            text,
            offset,
        );
    }

    /// The value of an observation whose text is `text`, and a Sample's number: a Sample
    /// whose text is not numeric (one number, or a vector or time series of numbers) is
    /// reported and kept as text.
    #[allow(clippy::too_many_arguments)]
    fn value_of(
        &mut self,
        category: Category,
        level: Option<ConditionLevel>,
        element: &str,
        data_item_id: &str,
        sequence: u64,
        text: Option<Cow<'a, str>>,
        offset: u64,
    ) -> (ValueRef<'a>, Option<f64>) {
        if level == Some(ConditionLevel::Unavailable) {
            return (ValueRef::Unavailable, None);
        }
        let text = trimmed(text);
        if text == "UNAVAILABLE" {
            return (ValueRef::Unavailable, None);
        }
        let mut number = None;
        if category == Category::Sample && !text.is_empty() {
            let representation = representation_of(element);
            if representation == Representation::Value {
                // A plain decimal is read in one pass, and a vector (`x y z`) is told from
                // it at its first space.
                number = match plain_decimal(text.as_bytes()) {
                    Decimal::Number(n) => Some(n),
                    Decimal::Spaced => None,
                    Decimal::Unknown => text.parse::<f64>().ok(),
                }
                .filter(|n| n.is_finite());
            }
            let numeric = number.is_some()
                || (matches!(
                    representation,
                    Representation::Value | Representation::TimeSeries
                ) && all_numbers(&text));
            if !numeric
                && matches!(
                    representation,
                    Representation::Value | Representation::TimeSeries
                )
            {
                self.report(
                    ProblemKind::InvalidValue,
                    offset,
                    format!(
                        "<{element}> (dataItemId {data_item_id}, sequence {sequence}): Sample value \"{text}\" is not numeric; kept as text"
                    ),
                );
            }
        }
        (ValueRef::Text(text), number)
    }
}

/// What an observation element holds, when it is known at its start tag.
enum Content<'a> {
    /// Read later (text, entries and the end tag follow: quick-xml's path).
    Later,
    /// The whole text between the tags (the fast path), if any.
    Text(Option<Cow<'a, str>>),
}

fn entries_text(entries: &[EntryRef<'_>]) -> String {
    let mut out = String::new();
    for e in entries {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&e.key);
        if e.removed {
            continue;
        }
        out.push('=');
        if e.cells.is_empty() {
            out.push_str(&e.value);
        } else {
            out.push('{');
            for (i, (k, v)) in e.cells.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push('=');
                out.push_str(v);
            }
            out.push('}');
        }
    }
    out
}

/// An element inside an observation: a DataSet/Table `Entry` or a Table `Cell`.
fn start_nested<'a>(input: &'a [u8], pending: &mut Pending<'a>, e: &BytesStart<'_>, depth: usize) {
    let key_and_removed = || {
        let mut key = Cow::Borrowed("");
        let mut removed = false;
        for attr in e.attributes().with_checks(false).flatten() {
            match attr.key.local_name().as_ref() {
                b"key" => key = attr_value(input, &attr).unwrap_or_default(),
                b"removed" => removed = attr.value.as_ref() == b"true",
                _ => {}
            }
        }
        (key, removed)
    };
    match (depth - pending.depth, e.local_name().as_ref()) {
        (1, b"Entry") => {
            let (key, removed) = key_and_removed();
            pending.entry = Some(PendingEntry {
                entry: EntryRef {
                    key,
                    removed,
                    value: Cow::Borrowed(""),
                    cells: Vec::new(),
                },
                text: None,
                cell_key: None,
            });
        }
        (2, b"Cell") => {
            if let Some(entry) = &mut pending.entry {
                entry.cell_key = Some(key_and_removed().0);
                entry.text = None;
            }
        }
        _ => {}
    }
}

fn end_nested(pending: &mut Pending<'_>, depth: usize) {
    match depth - pending.depth {
        1 => {
            if let (Some(mut entry), Some(obs)) = (pending.entry.take(), &mut pending.obs) {
                if entry.entry.cells.is_empty() {
                    entry.entry.value = trimmed(entry.text);
                }
                obs.extra_mut().entries.push(entry.entry);
            }
        }
        2 => {
            if let Some(entry) = &mut pending.entry {
                if let Some(key) = entry.cell_key.take() {
                    let value = trimmed(entry.text.take());
                    entry.entry.cells.push((key, value));
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn all_numbers_agrees_with_f64_parsing() {
        let cases = [
            "1",
            "-0.0002",
            "1 2 3",
            "1.5  -2.25\t+3",
            ".5 5.",
            "-",
            ".",
            "+-1",
            "1.2.3",
            "1e5 2E-3",
            "inf NaN",
            "1,5",
            "20014:23:40",
            "381,6404",
            "1 x",
            "--1",
            "1-",
            "",
        ];
        for text in cases {
            let want = text
                .split_ascii_whitespace()
                .all(|t| t.parse::<f64>().is_ok());
            assert_eq!(super::all_numbers(text), want, "{text:?}");
        }
    }

    #[test]
    fn plain_decimal_reads_what_f64_reads() {
        use super::Decimal;
        let mut texts: Vec<String> = [
            "0",
            "-0",
            "-0.0",
            "+1",
            "12.3456780000",
            "-0.0000100000",
            ".5",
            "5.",
            "9007199254740992",
            "9007199254740993",
            "0.1",
            "0.3",
            "1.7976931348623157",
            "123456789012345678901",
            "1.00000000000000000000001",
            "1e5",
            "inf",
            "-",
            ".",
            "1.2.3",
            "1 2",
            "1,5",
            "",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // A pseudo-random spread of digit counts and point positions (xorshift).
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let digits = (x % 20) as usize + 1;
            let mut t: String = (0..digits)
                .map(|i| char::from(b'0' + ((x >> (i * 3)) % 10) as u8))
                .collect();
            let point = ((x >> 40) % (digits as u64 + 2)) as usize;
            if point <= digits {
                t.insert(point, '.');
            }
            if x & (1 << 63) != 0 {
                t.insert(0, '-');
            }
            texts.push(t);
        }
        let mut read = 0;
        for t in &texts {
            let std = t.parse::<f64>().ok();
            match super::plain_decimal(t.as_bytes()) {
                Decimal::Number(n) => {
                    read += 1;
                    assert_eq!(Some(n.to_bits()), std.map(f64::to_bits), "{t:?}");
                }
                Decimal::Spaced => assert_eq!(std, None, "{t:?}"),
                Decimal::Unknown => {}
            }
        }
        assert!(read > 10_000, "only {read} read on the fast path");
    }

    #[test]
    fn tag_close_skips_quoted_values() {
        use super::tag_close;
        assert_eq!(tag_close(b">"), Some(0));
        assert_eq!(tag_close(b" a=\"1\">"), Some(6));
        assert_eq!(tag_close(b" a=\"1>2\" b='>'>x>"), Some(14));
        assert_eq!(tag_close(b" a='\"'>"), Some(6));
        assert_eq!(tag_close(b" a=\"1>"), None);
        assert_eq!(tag_close(b" a=1"), None);
    }

    #[test]
    fn find_byte_finds_the_first() {
        for len in 0..40 {
            for at in 0..=len {
                let mut hay = vec![b'a'; len];
                if at < len {
                    hay[at] = b'"';
                    // A byte one below the needle and a later match change nothing.
                    if at + 1 < len {
                        hay[at + 1] = b'"' - 1;
                    }
                    if at + 3 < len {
                        hay[at + 3] = b'"';
                    }
                }
                if at > 0 {
                    hay[at - 1] = 0x80 | b'"';
                }
                let want = hay.iter().position(|&b| b == b'"');
                assert_eq!(super::find_byte(&hay, b'"'), want, "{len} {at}");
            }
        }
    }
}
