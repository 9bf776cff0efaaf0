//! MTConnectStreams documents in JSON (the reference agent's version 1 and version 2,
//! [`crate::json`]) read into the same [`Streams`] model as the XML reader, with the same
//! problems for bad parts: a bad observation is reported and skipped, never the document.
//!
//! The shapes read (cppagent 2.7, `printSampleVersion1` and `printSampleVersion2` in
//! `src/mtconnect/printer/json_printer.cpp`):
//!
//! - version 1: `"Streams":[{"DeviceStream":{"name":…,"uuid":…,"ComponentStreams":
//!   [{"ComponentStream":{"component":…,"componentId":…,"Samples":[{"Position":{…}}],
//!   "Events":[…],"Condition":[{"Fault":{…}}]}}]}}]`;
//! - version 2: `"Streams":{"DeviceStream":[{"name":…,"ComponentStream":[{"component":…,
//!   "Samples":{"Position":[{…},{…}]},"Condition":{"Normal":[{…}]}}]}]}`.
//!
//! An observation is an object of its attributes with its text as `"value"`: a string, a
//! number (a Sample's; kept as the text the agent wrote), an array of numbers (a vector or
//! a time series; its elements joined by spaces, as the XML text writes them), an object
//! (a DataSet's entries `{"key":value}` or a Table's `{"key":{"cell":value}}`, a removed
//! entry `{"removed":true}`), or absent (an `Unavailable` Condition). `"UNAVAILABLE"` is
//! UNAVAILABLE whatever the kind.

use std::borrow::Cow;
use std::fmt;

use factorydash_core::{Category, ConditionLevel};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::machine::entries_text;
use super::model::{
    representation_of, ComponentStream, DeviceStream, EntryRef, ObservationExtra, ObservationRef,
    Representation, Streams, ValueRef,
};
use super::number::{all_numbers, plain_decimal, Decimal};
use crate::error::Error;
use crate::json::{self, offset_in, scalar, shape, Scalar, Shape, Str};
use crate::problem::{Parsed, Problem, ProblemKind};
use crate::time::{parse_timestamp_cached, DateCache};
use crate::xml::{is_whole_number, parse_u64, problem};
use crate::ParseOptions;

/// Parses an MTConnectStreams document in JSON, version 1 or 2 (read alike: see
/// [`crate::json`]), with the default [`ParseOptions`].
///
/// ```
/// use factorydash_mtconnect::{parse_streams_json, ValueRef};
///
/// let json = br#"{"MTConnectStreams":{"jsonVersion":2,"schemaVersion":"2.7",
///   "Header":{"instanceId":1795239438,"sender":"vm","version":"2.7.0.9","bufferSize":131072,
///             "nextSequence":828,"lastSequence":827,"firstSequence":1},
///   "Streams":{"DeviceStream":[{"name":"Mazak","uuid":"Mazak","ComponentStream":[
///     {"component":"Rotary","componentId":"c","name":"C1",
///      "Samples":{"Load":[{"value":12.5,"dataItemId":"Sload","sequence":199,
///                          "timestamp":"2026-11-21T05:37:18.367281Z"}]}}]}]}}}"#;
/// let parsed = parse_streams_json(json)?;
/// let load = &parsed.value.observations[0];
/// assert_eq!(parsed.value.header.next_sequence, Some(828));
/// assert_eq!((load.sequence, load.value.as_text(), load.number), (199, Some("12.5"), Some(12.5)));
/// # Ok::<(), factorydash_mtconnect::Error>(())
/// ```
///
/// # Errors
/// - [`Error::Agent`] when the document is an MTConnectError (the agent refused);
/// - [`Error::UnexpectedRoot`] when it is another MTConnect document;
/// - [`Error::Json`] when the input is not JSON (broken anywhere: unlike XML, a JSON
///   document is read whole before its parts);
/// - [`Error::TooLarge`] when it is larger than the limit.
pub fn parse_streams_json(input: &[u8]) -> Result<Parsed<Streams<'_>>, Error> {
    parse_streams_json_with(input, &ParseOptions::default())
}

/// [`parse_streams_json`] with `options` (the document's size limit; serde_json bounds
/// the nesting at 128 levels itself).
///
/// # Errors
/// As [`parse_streams_json`].
pub fn parse_streams_json_with<'a>(
    input: &'a [u8],
    options: &ParseOptions,
) -> Result<Parsed<Streams<'a>>, Error> {
    if input.len() > options.max_document_bytes {
        return Err(Error::TooLarge {
            limit: options.max_document_bytes,
        });
    }
    let input = crate::xml::strip_bom(input);
    let (name, raw) = json::root(input)?;
    match name.as_ref() {
        "MTConnectStreams" => {}
        "MTConnectError" => return Err(Error::Agent(Box::new(json::error_document(input, raw)))),
        _ => {
            return Err(Error::UnexpectedRoot {
                expected: "MTConnectStreams",
                found: name.into_owned(),
            })
        }
    }
    let mut reader = Reader {
        input,
        doc: Streams::default(),
        problems: Vec::new(),
        dates: DateCache::default(),
        zone_reported: false,
    };
    let members = json::members(raw).map_err(|e| json::json_error_in(input, raw.get(), e))?;
    for (key, value) in members {
        match key.as_ref() {
            "Header" => reader.doc.header = json::header(input, value, &mut reader.problems),
            "Streams" => reader.streams(value),
            _ => {}
        }
    }
    // In document order: a list's own problems are met before its elements'.
    reader.problems.sort_by_key(|p| p.offset);
    Ok(Parsed {
        value: reader.doc,
        problems: reader.problems,
    })
}

struct Reader<'a> {
    input: &'a [u8],
    doc: Streams<'a>,
    problems: Vec<Problem>,
    dates: DateCache,
    zone_reported: bool,
}

impl<'a> Reader<'a> {
    fn report(&mut self, kind: ProblemKind, at: &str, message: impl Into<String>) {
        let offset = offset_in(self.input, at);
        self.problems.push(problem(kind, offset, message));
    }

    fn streams(&mut self, raw: &'a RawValue) {
        for (element, device) in json::entities(self.input, raw, "Streams", &mut self.problems) {
            if element == "DeviceStream" {
                self.device_stream(device);
            } else {
                self.report(
                    ProblemKind::Unexpected,
                    device.get(),
                    format!("{element} in Streams is not a DeviceStream; skipped"),
                );
            }
        }
    }

    fn device_stream(&mut self, raw: &'a RawValue) {
        let Ok(members) = json::members(raw) else {
            self.report(
                ProblemKind::Unexpected,
                raw.get(),
                "a DeviceStream is not an object; skipped",
            );
            return;
        };
        let mut stream = DeviceStream {
            name: Cow::Borrowed(""),
            uuid: None,
        };
        let mut components = Vec::new();
        for (key, value) in members {
            match key.as_ref() {
                "name" => stream.name = scalar(value).unwrap_or_default(),
                "uuid" => stream.uuid = scalar(value),
                // Version 1: a list of `{"ComponentStream":{…}}`.
                "ComponentStreams" => {
                    for (element, c) in
                        json::entities(self.input, value, "ComponentStreams", &mut self.problems)
                    {
                        if element == "ComponentStream" {
                            components.push(c);
                        }
                    }
                }
                // Version 2: an array of ComponentStream objects (or one).
                "ComponentStream" => match shape(value) {
                    Shape::Array => match json::elements(value) {
                        Ok(list) => components.extend(list),
                        Err(e) => self.report(
                            ProblemKind::Unexpected,
                            value.get(),
                            format!("ComponentStream: {e}; skipped"),
                        ),
                    },
                    _ => components.push(value),
                },
                _ => {}
            }
        }
        self.doc.device_streams.push(stream);
        let device = self.doc.device_streams.len() - 1;
        for c in components {
            self.component_stream(device, c);
        }
    }

    fn component_stream(&mut self, device: usize, raw: &'a RawValue) {
        let Ok(members) = json::members(raw) else {
            self.report(
                ProblemKind::Unexpected,
                raw.get(),
                "a ComponentStream is not an object; skipped",
            );
            return;
        };
        let mut stream = ComponentStream {
            device_stream: device,
            component: Cow::Borrowed(""),
            component_id: Cow::Borrowed(""),
            name: None,
        };
        let mut containers = Vec::with_capacity(3);
        for (key, value) in members {
            match key.as_ref() {
                "component" => stream.component = scalar(value).unwrap_or_default(),
                "componentId" => stream.component_id = scalar(value).unwrap_or_default(),
                "name" => stream.name = scalar(value),
                "Samples" => containers.push((Category::Sample, value)),
                "Events" => containers.push((Category::Event, value)),
                "Condition" => containers.push((Category::Condition, value)),
                _ => {}
            }
        }
        self.doc.component_streams.push(stream);
        let index = self.doc.component_streams.len() - 1;
        for (category, list) in containers {
            let what = match category {
                Category::Sample => "Samples",
                Category::Event => "Events",
                Category::Condition => "Condition",
            };
            for (element, o) in json::entities(self.input, list, what, &mut self.problems) {
                if let Some(obs) = self.observation(index, category, element, o) {
                    self.doc.observations.push(obs);
                }
            }
        }
    }

    /// The observation of element `element` whose object is `raw`; `None` when it is
    /// rejected (reported), as the XML reader rejects it.
    fn observation(
        &mut self,
        component_stream: usize,
        category: Category,
        element: Cow<'a, str>,
        raw: &'a RawValue,
    ) -> Option<ObservationRef<'a>> {
        let at = raw.get();
        let level = if category == Category::Condition {
            let level = ConditionLevel::from_element(crate::xml::local_part(&element).as_bytes());
            if level.is_none() {
                self.report(
                    ProblemKind::Unexpected,
                    at,
                    format!("{element} in a Condition is not Normal, Warning, Fault or Unavailable; skipped"),
                );
                return None;
            }
            level
        } else {
            None
        };
        let fields = match serde_json::from_str::<Fields<'a>>(at) {
            Ok(f) => f,
            Err(e) => {
                self.report(
                    ProblemKind::Unexpected,
                    at,
                    format!("{element} is not an observation object: {e}; skipped"),
                );
                return None;
            }
        };
        let what = |id: Option<&str>, seq: Option<&str>| {
            format!(
                "{element} (dataItemId {}, sequence {})",
                id.unwrap_or("?"),
                seq.unwrap_or("?")
            )
        };
        let Some(data_item_id) = fields.data_item_id.filter(|s| !s.is_empty()) else {
            let what = what(None, fields.sequence.as_deref());
            self.report(
                ProblemKind::MissingAttribute,
                at,
                format!("{what} has no dataItemId; skipped"),
            );
            return None;
        };
        let Some(seq_text) = fields.sequence.as_deref() else {
            let what = what(Some(&data_item_id), None);
            self.report(
                ProblemKind::MissingAttribute,
                at,
                format!("{what} has no sequence; skipped"),
            );
            return None;
        };
        let Some(sequence) = parse_u64(seq_text.as_bytes()) else {
            let what = what(Some(&data_item_id), Some(seq_text));
            if is_whole_number(seq_text.as_bytes()) {
                self.report(
                    ProblemKind::OutOfRange,
                    at,
                    format!("{what}: sequence is beyond 2^64 - 1; skipped"),
                );
            } else {
                self.report(
                    ProblemKind::InvalidAttribute,
                    at,
                    format!("{what}: sequence is not a whole number; skipped"),
                );
            }
            return None;
        };
        let Some(ts_text) = fields.timestamp.as_deref() else {
            let what = what(Some(&data_item_id), Some(seq_text));
            self.report(
                ProblemKind::MissingAttribute,
                at,
                format!("{what} has no timestamp; skipped"),
            );
            return None;
        };
        let Some(ts) = parse_timestamp_cached(ts_text.as_bytes(), &mut self.dates) else {
            let what = what(Some(&data_item_id), Some(seq_text));
            self.report(
                ProblemKind::InvalidAttribute,
                at,
                format!("{what}: timestamp \"{ts_text}\" is not an ISO 8601 time; skipped"),
            );
            return None;
        };
        if ts.zone_missing && !self.zone_reported {
            self.zone_reported = true;
            self.report(
                ProblemKind::MissingTimeZone,
                at,
                format!("timestamp \"{ts_text}\" has no zone designator; taken as UTC (reported once per document)"),
            );
        }
        let number_attr =
            |this: &mut Self, name: &str, text: Option<Cow<'a, str>>| -> Option<f64> {
                let text = text?;
                match text.trim().parse::<f64>() {
                    Ok(n) if n.is_finite() => Some(n),
                    _ => {
                        let what = what(Some(&data_item_id), Some(seq_text));
                        this.report(
                            ProblemKind::InvalidAttribute,
                            at,
                            format!("{what}: {name}=\"{text}\" is not a number; ignored"),
                        );
                        None
                    }
                }
            };
        let duration = number_attr(self, "duration", fields.duration);
        let sample_count = number_attr(self, "sampleCount", fields.sample_count).map(|n| n as u64);
        let sample_rate = number_attr(self, "sampleRate", fields.sample_rate);
        let count = number_attr(self, "count", fields.count).map(|n| n as u64);
        let representation = representation_of(&element);
        let (value, entries) = match fields.value {
            _ if level == Some(ConditionLevel::Unavailable) => (ValueRef::Unavailable, Vec::new()),
            None => (ValueRef::Text(Cow::Borrowed("")), Vec::new()),
            Some(v) => match Self::value(v, representation) {
                Ok(pair) => pair,
                Err(message) => {
                    let what = what(Some(&data_item_id), Some(seq_text));
                    self.report(
                        ProblemKind::InvalidValue,
                        at,
                        format!("{what}: {message}; skipped"),
                    );
                    return None;
                }
            },
        };
        let number = match (&value, category, representation) {
            (ValueRef::Text(text), Category::Sample, _) if !text.is_empty() => {
                let number = if representation == Representation::Value {
                    match plain_decimal(text.as_bytes()) {
                        Decimal::Number(n) => Some(n),
                        Decimal::Spaced => None,
                        Decimal::Unknown => text.parse::<f64>().ok(),
                    }
                    .filter(|n| n.is_finite())
                } else {
                    None
                };
                let numeric = number.is_some()
                    || (matches!(
                        representation,
                        Representation::Value | Representation::TimeSeries
                    ) && all_numbers(text));
                if !numeric
                    && matches!(
                        representation,
                        Representation::Value | Representation::TimeSeries
                    )
                {
                    let what = what(Some(&data_item_id), Some(seq_text));
                    self.report(
                        ProblemKind::InvalidValue,
                        at,
                        format!("{what}: Sample value \"{text}\" is not numeric; kept as text"),
                    );
                }
                number
            }
            _ => None,
        };
        let mut other_attributes = fields.others;
        let reset_triggered = fields.reset_triggered;
        let rare = fields.native_severity.is_some()
            || fields.composition_id.is_some()
            || fields.statistic.is_some()
            || duration.is_some()
            || reset_triggered.is_some()
            || sample_count.is_some()
            || sample_rate.is_some()
            || count.is_some()
            || !entries.is_empty()
            || !other_attributes.is_empty();
        let extra = rare.then(|| {
            Box::new(ObservationExtra {
                namespace: None,
                native_severity: fields.native_severity,
                composition_id: fields.composition_id,
                statistic: fields.statistic,
                duration,
                reset_triggered,
                sample_count,
                sample_rate,
                count,
                entries,
                other_attributes: std::mem::take(&mut other_attributes),
            })
        });
        Some(ObservationRef {
            component_stream,
            category,
            element,
            data_item_id,
            name: fields.name,
            sub_type: fields.sub_type,
            type_attribute: fields.type_attribute,
            timestamp: ts.utc,
            sequence,
            value,
            number,
            level,
            native_code: fields.native_code,
            qualifier: fields.qualifier,
            extra,
        })
    }

    /// The value and entries of `"value"` (see the module's docs); an error message when
    /// it has no reading.
    fn value(
        raw: &'a RawValue,
        representation: Representation,
    ) -> Result<(ValueRef<'a>, Vec<EntryRef<'a>>), String> {
        match shape(raw) {
            Shape::String | Shape::Scalar => Ok(match scalar(raw) {
                None => (ValueRef::Text(Cow::Borrowed("")), Vec::new()),
                Some(t) if t == "UNAVAILABLE" => (ValueRef::Unavailable, Vec::new()),
                Some(t) => (ValueRef::Text(t), Vec::new()),
            }),
            Shape::Array => {
                let items = json::elements(raw).map_err(|e| format!("value: {e}"))?;
                let mut text = String::with_capacity(raw.get().len());
                for (i, item) in items.iter().enumerate() {
                    let Some(t) = scalar(item) else {
                        return Err("value is an array of something other than numbers".into());
                    };
                    if i > 0 {
                        text.push(' ');
                    }
                    text.push_str(&t);
                }
                Ok((ValueRef::Text(Cow::Owned(text)), Vec::new()))
            }
            Shape::Object => {
                let members = json::members(raw).map_err(|e| format!("value: {e}"))?;
                let mut entries = Vec::with_capacity(members.len());
                for (key, v) in members {
                    let mut entry = EntryRef {
                        key,
                        removed: false,
                        value: Cow::Borrowed(""),
                        cells: Vec::new(),
                    };
                    match shape(v) {
                        Shape::Object => {
                            let cells = json::members(v).map_err(|e| format!("value: {e}"))?;
                            if let [(k, r)] = cells.as_slice() {
                                if k == "removed" && r.get() == "true" {
                                    entry.removed = true;
                                    entries.push(entry);
                                    continue;
                                }
                            }
                            if representation != Representation::Table {
                                return Err(format!(
                                    "entry {} of a DataSet is an object",
                                    entry.key
                                ));
                            }
                            for (k, c) in cells {
                                // A removed cell (`{"removed":true}`): kept without a value,
                                // as the XML reader keeps an empty cell.
                                if shape(c) == Shape::Object {
                                    let removed = json::members(c).is_ok_and(|m| {
                                        matches!(m.as_slice(), [(k, v)] if k == "removed" && v.get() == "true")
                                    });
                                    if removed {
                                        entry.cells.push((k, Cow::Borrowed("")));
                                        continue;
                                    }
                                }
                                let Some(t) = scalar(c) else {
                                    return Err(format!(
                                        "cell {k} of entry {} is not a value",
                                        entry.key
                                    ));
                                };
                                entry.cells.push((k, t));
                            }
                        }
                        Shape::Array => return Err(format!("entry {} is an array", entry.key)),
                        _ => entry.value = scalar(v).unwrap_or_default(),
                    }
                    entries.push(entry);
                }
                let text = entries_text(&entries);
                Ok((ValueRef::Text(Cow::Owned(text)), entries))
            }
        }
    }
}

/// An observation object's members: the attributes the XML reader knows by name, the
/// value left raw, every other member kept as text. Read without a `Vec` of members or a
/// `Value` tree: this is the hot path.
#[derive(Default)]
struct Fields<'a> {
    data_item_id: Option<Cow<'a, str>>,
    name: Option<Cow<'a, str>>,
    sub_type: Option<Cow<'a, str>>,
    type_attribute: Option<Cow<'a, str>>,
    native_code: Option<Cow<'a, str>>,
    native_severity: Option<Cow<'a, str>>,
    qualifier: Option<Cow<'a, str>>,
    composition_id: Option<Cow<'a, str>>,
    statistic: Option<Cow<'a, str>>,
    reset_triggered: Option<Cow<'a, str>>,
    timestamp: Option<Cow<'a, str>>,
    sequence: Option<Cow<'a, str>>,
    duration: Option<Cow<'a, str>>,
    sample_count: Option<Cow<'a, str>>,
    sample_rate: Option<Cow<'a, str>>,
    count: Option<Cow<'a, str>>,
    value: Option<&'a RawValue>,
    others: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an observation object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut f = Fields::default();
                while let Some(Str(key)) = map.next_key::<Str<'de>>()? {
                    let slot = match key.as_ref() {
                        "value" => {
                            f.value = Some(map.next_value()?);
                            continue;
                        }
                        "dataItemId" => &mut f.data_item_id,
                        "name" => &mut f.name,
                        "subType" => &mut f.sub_type,
                        "type" => &mut f.type_attribute,
                        "nativeCode" => &mut f.native_code,
                        "nativeSeverity" => &mut f.native_severity,
                        "qualifier" => &mut f.qualifier,
                        "compositionId" => &mut f.composition_id,
                        "statistic" => &mut f.statistic,
                        "resetTriggered" => &mut f.reset_triggered,
                        "timestamp" => &mut f.timestamp,
                        "sequence" => &mut f.sequence,
                        "duration" => &mut f.duration,
                        "sampleCount" => &mut f.sample_count,
                        "sampleRate" => &mut f.sample_rate,
                        "count" => &mut f.count,
                        _ => {
                            let raw: &'de RawValue = map.next_value()?;
                            let text = scalar(raw).unwrap_or(Cow::Borrowed(raw.get()));
                            f.others.push((key, text));
                            continue;
                        }
                    };
                    *slot = map.next_value::<Scalar<'de>>()?.0;
                }
                Ok(f)
            }
        }
        d.deserialize_map(V)
    }
}
