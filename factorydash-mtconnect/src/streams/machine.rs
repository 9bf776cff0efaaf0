//! The state machine shared by the slice and the `BufRead` readers: quick-xml events in,
//! [`StreamsItem`]s out (into a queue, or straight into a [`Streams`]).

use std::borrow::Cow;
use std::collections::VecDeque;

use factorydash_core::{Category, ConditionLevel};
use quick_xml::events::{BytesStart, Event};

use crate::error::{parse_error_root, Error};
use crate::header::Header;
use crate::problem::{Problem, ProblemKind};
use crate::time::{parse_timestamp_cached, DateCache};
use crate::xml::{
    attr_text, attr_value, element_name, local_part, parse_u64, prefix_part, problem, push_text,
    resolve_reference, text_of, RawAttributes,
};
use crate::ParseOptions;

use super::fast::{Attributes, Key};
use super::model::{
    representation_of, ComponentStream, DeviceStream, EntryRef, ObservationExtra, ObservationRef,
    Representation, Streams, StreamsItem, ValueRef,
};
use super::number::{all_numbers, plain_decimal, Decimal};

/// Where the parser puts what it finds: a queue for the pull readers, or straight into a
/// document for [`parse_streams`].
// One per parser, never moved on the hot path: its size does not matter.
#[allow(clippy::large_enum_variant)]
pub(super) enum Out<'a> {
    Queue(VecDeque<StreamsItem<'a>>),
    Collect {
        doc: Streams<'a>,
        problems: Vec<Problem>,
    },
}

impl<'a> Out<'a> {
    #[inline]
    pub(super) fn push(&mut self, item: StreamsItem<'a>) {
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
    #[inline]
    pub(super) fn push_observation(&mut self, obs: ObservationRef<'a>) {
        match self {
            Out::Queue(q) => q.push_back(StreamsItem::Observation(obs)),
            Out::Collect { doc, .. } => doc.observations.push(obs),
        }
    }

    #[inline]
    pub(super) fn pop(&mut self) -> Option<StreamsItem<'a>> {
        match self {
            Out::Queue(q) => q.pop_front(),
            Out::Collect { .. } => None,
        }
    }
}

/// Why a root element is not a Streams document.
pub(super) enum RootError {
    Error,
    Other(String),
}

impl RootError {
    #[inline]
    pub(super) fn into_error(self, input: &[u8]) -> Error {
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
pub(super) struct Machine<'a> {
    /// The whole input for the slice reader (to borrow from), empty for `BufRead`.
    pub(super) input: &'a [u8],
    /// The whole input as text, when it is valid UTF-8: then every slice of it at ASCII
    /// boundaries is text, checked once rather than once per attribute.
    pub(super) whole: Option<&'a str>,
    pub(super) out: Out<'a>,
    pub(super) header: Header,
    pub(super) dates: DateCache,
    pub(super) declared: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    pub(super) reported_prefixes: Vec<String>,
    pub(super) zone_reported: bool,
    pub(super) depth: usize,
    pub(super) max_depth: usize,
    pub(super) device_depth: Option<usize>,
    pub(super) component_depth: Option<usize>,
    pub(super) device_streams: usize,
    pub(super) component_streams: usize,
    /// The Samples/Events/Condition container we are in, with its depth.
    pub(super) container: Option<(Category, usize)>,
    pub(super) pending: Option<Pending<'a>>,
    /// The open elements whose start tags [`Machine::plain_start`] read, innermost last,
    /// with their names and depths: their end tags are read the same way (quick-xml never
    /// saw them open), and checked against these names as quick-xml checks its own.
    pub(super) open: Vec<(&'a [u8], usize)>,
}

/// An observation element being read (its text and DataSet/Table entries may follow).
pub(super) struct Pending<'a> {
    pub(super) depth: usize,
    /// `None` when the element was rejected: its content is skipped.
    pub(super) obs: Option<ObservationRef<'a>>,
    pub(super) text: Option<Cow<'a, str>>,
    pub(super) entry: Option<PendingEntry<'a>>,
    pub(super) offset: u64,
}

pub(super) struct PendingEntry<'a> {
    pub(super) entry: EntryRef<'a>,
    pub(super) text: Option<Cow<'a, str>>,
    pub(super) cell_key: Option<Cow<'a, str>>,
}

#[inline]
pub(super) fn trimmed(text: Option<Cow<'_, str>>) -> Cow<'_, str> {
    match text {
        None => Cow::Borrowed(""),
        Some(Cow::Borrowed(s)) => Cow::Borrowed(s.trim_ascii()),
        Some(Cow::Owned(s)) if s.trim_ascii().len() == s.len() => Cow::Owned(s),
        Some(Cow::Owned(s)) => Cow::Owned(s.trim_ascii().to_owned()),
    }
}

impl<'a> Machine<'a> {
    #[inline]
    pub(super) fn new(input: &'a [u8], options: &ParseOptions) -> Self {
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
    #[inline]
    pub(super) fn sub_str(&self, part: &[u8]) -> Option<&'a str> {
        let whole = self.whole?;
        let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
        whole.get(start..start.checked_add(part.len())?)
    }

    /// [`Machine::attr`], with an error reported (as about an attribute on `<element>`).
    #[cold]
    #[inline(never)]
    pub(super) fn unescaped_attribute(
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
    #[inline]
    pub(super) fn attr(
        &self,
        raw: &[u8],
        range: std::ops::Range<usize>,
    ) -> Result<Cow<'a, str>, String> {
        match self.sub_str(&raw[range.clone()]) {
            Some(s) if !s.as_bytes().contains(&b'&') => Ok(Cow::Borrowed(s)),
            Some(s) => quick_xml::escape::unescape(s).map_err(|e| e.to_string()),
            None => attr_text(None, raw, range),
        }
    }

    #[inline]
    pub(super) fn report(&mut self, kind: ProblemKind, offset: u64, message: impl Into<String>) {
        self.out
            .push(StreamsItem::Problem(problem(kind, offset, message)));
    }

    #[inline]
    pub(super) fn too_deep(&mut self, offset: u64) {
        let max = self.max_depth;
        self.report(
            ProblemKind::TooDeep,
            offset,
            format!("element nested deeper than {max} levels skipped"),
        );
    }

    /// Reports a syntax error; returns `true` (the reader is finished).
    #[inline]
    pub(super) fn syntax(&mut self, offset: u64, err: &quick_xml::Error) -> bool {
        self.report(ProblemKind::Syntax, offset, format!("XML error: {err}"));
        true
    }

    #[inline]
    pub(super) fn value(
        &self,
        attr: &quick_xml::events::attributes::Attribute<'_>,
    ) -> Result<Cow<'a, str>, String> {
        attr_value(self.input, attr)
    }

    /// The values of the attributes of `e` with the local names `names`, unescaped (the
    /// last one wins; a value that cannot be read counts as absent).
    #[inline]
    pub(super) fn named_attributes<const N: usize>(
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

    #[inline]
    pub(super) fn root(&mut self, e: &BytesStart<'_>, empty: bool) -> Result<(), RootError> {
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
    #[inline]
    pub(super) fn event<'e>(
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

    #[inline]
    pub(super) fn push_text(&mut self, text: Cow<'a, str>) {
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
    #[inline]
    pub(super) fn namespace(&mut self, name: &str, offset: u64) -> Option<Cow<'a, str>> {
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

    #[inline]
    pub(super) fn start(&mut self, e: &BytesStart<'_>, offset: u64) {
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

    #[inline]
    pub(super) fn start_observation(
        &mut self,
        category: Category,
        e: &BytesStart<'_>,
        offset: u64,
    ) {
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
    #[inline]
    pub(super) fn observation_attributes<'r>(
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
            if crate::xml::is_whole_number(seq_bytes) {
                self.report(
                    ProblemKind::OutOfRange,
                    offset,
                    format!("{what}: sequence is beyond 2^64 - 1; skipped"),
                );
            } else {
                self.report(
                    ProblemKind::InvalidAttribute,
                    offset,
                    format!("{what}: sequence is not a whole number; skipped"),
                );
            }
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

    #[inline]
    pub(super) fn end(&mut self) {
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
    #[inline]
    pub(super) fn finish(
        &mut self,
        obs: &mut ObservationRef<'a>,
        text: Option<Cow<'a, str>>,
        offset: u64,
    ) {
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
    #[inline]
    pub(super) fn value_of(
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
pub(super) enum Content<'a> {
    /// Read later (text, entries and the end tag follow: quick-xml's path).
    Later,
    /// The whole text between the tags (the fast path), if any.
    Text(Option<Cow<'a, str>>),
}

#[inline]
pub(super) fn entries_text(entries: &[EntryRef<'_>]) -> String {
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
#[inline]
pub(super) fn start_nested<'a>(
    input: &'a [u8],
    pending: &mut Pending<'a>,
    e: &BytesStart<'_>,
    depth: usize,
) {
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

#[inline]
pub(super) fn end_nested(pending: &mut Pending<'_>, depth: usize) {
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
