//! The readers: [`StreamsReader`] over a slice (with the fast path of `fast.rs` between
//! quick-xml events) and [`StreamsBufReader`] over any [`BufRead`]; both drive the state
//! machine of `machine.rs`.

use std::borrow::Cow;
use std::io::{BufRead, Read};

use quick_xml::events::Event;
use quick_xml::Reader;

use crate::error::{parse_error_root, Error};
use crate::header::Header;
use crate::problem::ProblemKind;
use crate::xml::problem;
use crate::ParseOptions;

use super::fast::{skip_whitespace, Plain};
use super::machine::{Machine, Out, RootError};
use super::model::StreamsItem;

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
///         assert_eq!((o.sequence, o.kind().as_ref()), (9, "Execution"));
///         seen += 1;
///     }
/// }
/// assert_eq!(seen, 1);
/// # Ok::<(), factorydash_mtconnect::Error>(())
/// ```
pub struct StreamsReader<'a> {
    reader: Reader<&'a [u8]>,
    pub(super) machine: Machine<'a>,
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
    /// As [`parse_streams`](super::parse_streams).
    pub fn new(input: &'a [u8]) -> Result<Self, Error> {
        Self::with_options(input, &ParseOptions::default())
    }

    /// A reader of `input` with explicit limits; reads up to the root element.
    ///
    /// # Errors
    /// As [`parse_streams`](super::parse_streams).
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
    #[inline]
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

impl<'a> Iterator for StreamsReader<'a> {
    type Item = StreamsItem<'a>;

    #[inline]
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
    /// As [`parse_streams`](super::parse_streams); an I/O error of `source` is [`Error::Io`].
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

    #[inline]
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
