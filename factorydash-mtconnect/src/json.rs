//! MTConnect documents in JSON, as the reference agent (cppagent 2.x) writes them: its
//! JSON "version 1" and "version 2" (`JsonVersion` in its configuration, 2 by default
//! since 2.0.0.12; the document says which in its `jsonVersion` member). Sources: the
//! reference agent's JSON printer (`src/mtconnect/printer/json_printer.cpp`,
//! `src/mtconnect/entity/json_printer.hpp`, cppagent 2.7, Apache-2.0) and MTConnect Part 1
//! ("Fundamentals", the JSON representation of the information model).
//!
//! Both versions carry the same information model as the XML documents, with elements
//! as objects, attributes and child elements as members, and an element's text as
//! `"value"`. They differ only in how a list of elements is written:
//!
//! - **version 1**: an array of one-member objects, `[{"Position":{…}},{"Load":{…}}]`;
//! - **version 2**: an object keyed by element name, each holding an array,
//!   `{"Position":[{…},{…}],"Load":[{…}]}`.
//!
//! The readers here accept both (and a bare object where version 2 would have an array
//! of one), whatever `jsonVersion` says, and read the same model as the XML readers
//! ([`crate::Streams`], [`crate::ErrorDocument`]), with the same problems for bad parts.
//! They borrow from the input and build no `serde_json::Value` tree: lists are read as
//! borrowed [`RawValue`]s and each element from its own text.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::{AgentError, Error, ErrorCode, ErrorDocument, QueryParameter};
use crate::header::Header;
use crate::problem::{Position, Problem, ProblemKind};
use crate::xml::problem;

/// Which of the reference agent's JSON forms a document is written in (see the module's
/// docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum JsonVersion {
    /// Lists as arrays of one-member objects (cppagent 1.x and `JsonVersion = 1`).
    V1,
    /// Lists as objects keyed by element name, each an array (cppagent 2.x's default).
    #[default]
    V2,
}

impl JsonVersion {
    /// The number the documents' `jsonVersion` member holds.
    pub fn number(self) -> u8 {
        match self {
            JsonVersion::V1 => 1,
            JsonVersion::V2 => 2,
        }
    }
}

/// What is wrong with a JSON document: serde_json's own error, kept as the
/// [`source`](std::error::Error::source) of [`Error::Json`] (opaque, so that this crate's
/// API does not depend on serde_json's version).
#[derive(Debug)]
pub struct JsonError(serde_json::Error);

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for JsonError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// The [`Error::Json`] of a serde_json error met in `input`.
pub(crate) fn json_error(input: &[u8], err: serde_json::Error) -> Error {
    // serde_json counts lines and columns (of characters) from 1; 0 for I/O errors.
    let (line, column) = (err.line() as u64, err.column() as u64);
    let offset = offset_of_line_column(input, line, column);
    Error::Json {
        position: Position {
            offset,
            line: (line > 0).then_some(line),
            column: (line > 0).then_some(column),
        },
        source: JsonError(err),
    }
}

/// The byte offset of 1-based `line` and `column` (in bytes: close enough for a
/// position in an error message) in `input`.
fn offset_of_line_column(input: &[u8], line: u64, column: u64) -> u64 {
    if line == 0 {
        return 0;
    }
    let mut start = 0usize;
    for _ in 1..line {
        match memchr::memchr(b'\n', &input[start..]) {
            Some(i) => start += i + 1,
            None => break,
        }
    }
    (start as u64 + column.saturating_sub(1)).min(input.len() as u64)
}

/// Where `part` (a slice of `input`) starts in `input`, in bytes.
pub(crate) fn offset_in(input: &[u8], part: &str) -> u64 {
    (part.as_ptr() as usize).saturating_sub(input.as_ptr() as usize) as u64
}

/// A string borrowed from the input where it holds no escape, else unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Str<'a>(pub Cow<'a, str>);

impl<'de> Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// A member read as text: a string (borrowed where it holds no escape), a number or a
/// boolean as text; `None` for `null`, objects and arrays (their text is dropped).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scalar<'a>(pub Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, a number or a boolean")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Scalar(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Scalar(Some(Cow::Owned(v))))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Scalar(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Scalar(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                // A whole number beyond 2^64 - 1 arrives as a float: written whole, so
                // that it is told from a fraction (and found out of range).
                let text = if v.fract() == 0.0 && v.abs() < 1e300 {
                    format!("{v:.0}")
                } else {
                    v.to_string()
                };
                Ok(Scalar(Some(Cow::Owned(text))))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Scalar(Some(Cow::Borrowed(if v {
                    "true"
                } else {
                    "false"
                }))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Scalar(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map
                    .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Scalar(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(Scalar(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// A JSON object's members in order, each value left as its raw text.
pub(crate) struct Members<'a>(pub Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(8).min(64));
                while let Some(Str(k)) = map.next_key::<Str<'de>>()? {
                    out.push((k, map.next_value::<&'de RawValue>()?));
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// A JSON array's elements, each left as its raw text.
pub(crate) struct Elements<'a>(pub Vec<&'a RawValue>);

impl<'de> Deserialize<'de> for Elements<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Elements<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(8).min(1024));
                while let Some(e) = seq.next_element::<&'de RawValue>()? {
                    out.push(e);
                }
                Ok(Elements(out))
            }
        }
        d.deserialize_seq(V)
    }
}

/// The kind of JSON value `raw` holds, from its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    Object,
    Array,
    String,
    /// A number, `true`, `false` or `null`.
    Scalar,
}

pub(crate) fn shape(raw: &RawValue) -> Shape {
    match raw.get().as_bytes().first() {
        Some(b'{') => Shape::Object,
        Some(b'[') => Shape::Array,
        Some(b'"') => Shape::String,
        _ => Shape::Scalar,
    }
}

/// The members of object `raw` (an error for any other value).
pub(crate) fn members(raw: &RawValue) -> Result<Vec<(Cow<'_, str>, &RawValue)>, serde_json::Error> {
    serde_json::from_str::<Members<'_>>(raw.get()).map(|m| m.0)
}

/// The elements of array `raw`.
pub(crate) fn elements(raw: &RawValue) -> Result<Vec<&RawValue>, serde_json::Error> {
    serde_json::from_str::<Elements<'_>>(raw.get()).map(|e| e.0)
}

/// A scalar's text: a string's (unescaped), a number's or a boolean's as written; `None`
/// for `null`, objects and arrays.
pub(crate) fn scalar(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    match shape(raw) {
        // A raw string without a backslash has no escape: its text between the quotes.
        Shape::String if !text.contains('\\') => text.get(1..text.len() - 1).map(Cow::Borrowed),
        Shape::String => serde_json::from_str::<Str<'_>>(text).ok().map(|s| s.0),
        Shape::Scalar if text != "null" => Some(Cow::Borrowed(text)),
        _ => None,
    }
}

/// The elements of a list of MTConnect elements in either version (see the module's
/// docs), as (element name, element): version 1's array of one-member objects, version
/// 2's object of arrays (or of single objects). Anything else is reported against
/// `what` and gives nothing.
pub(crate) fn entities<'a>(
    input: &[u8],
    raw: &'a RawValue,
    what: &str,
    problems: &mut Vec<Problem>,
) -> Vec<(Cow<'a, str>, &'a RawValue)> {
    let mut out = Vec::new();
    let bad = |problems: &mut Vec<Problem>, at: &RawValue, message: String| {
        problems.push(problem(
            ProblemKind::Unexpected,
            offset_in(input, at.get()),
            message,
        ));
    };
    match shape(raw) {
        Shape::Array => match elements(raw) {
            Ok(items) => {
                for item in items {
                    match members(item) {
                        Ok(m) if m.len() == 1 => out.extend(m),
                        _ => bad(
                            problems,
                            item,
                            format!("an entry of {what} is not an object of one element; skipped"),
                        ),
                    }
                }
            }
            Err(e) => bad(
                problems,
                raw,
                format!("{what} is not a JSON array: {e}; skipped"),
            ),
        },
        Shape::Object => match members(raw) {
            Ok(groups) => {
                for (name, group) in groups {
                    match shape(group) {
                        Shape::Array => match elements(group) {
                            Ok(items) => out.extend(items.into_iter().map(|i| (name.clone(), i))),
                            Err(e) => bad(problems, group, format!("{what}: {name}: {e}; skipped")),
                        },
                        Shape::Object => out.push((name, group)),
                        _ => {
                            bad(
                                problems,
                                group,
                                format!(
                                    "{what}: {name} is neither an object nor an array; skipped"
                                ),
                            );
                        }
                    }
                }
            }
            Err(e) => bad(
                problems,
                raw,
                format!("{what} is not a JSON object: {e}; skipped"),
            ),
        },
        _ => bad(
            problems,
            raw,
            format!("{what} is neither a list nor an object; skipped"),
        ),
    }
    out
}

/// Reads a Header object's members into a [`Header`] (numbers as JSON numbers, or as
/// text as the XML attributes are; bad ones reported and left unset).
pub(crate) fn header(input: &[u8], raw: &RawValue, problems: &mut Vec<Problem>) -> Header {
    let mut h = Header::default();
    let offset = offset_in(input, raw.get());
    let Ok(members) = members(raw) else {
        problems.push(problem(
            ProblemKind::Unexpected,
            offset,
            "the Header is not a JSON object; ignored",
        ));
        return h;
    };
    for (key, value) in members {
        if let Some(text) = scalar(value) {
            h.set(
                key.as_bytes(),
                &text,
                offset_in(input, value.get()),
                problems,
            );
        }
    }
    h
}

/// Appends `s` to `out` as a JSON string.
pub(crate) fn push_string(out: &mut String, s: &str) {
    let needs_escape = s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\');
    if needs_escape {
        // serde_json escapes exactly as JSON requires; it cannot fail on a `str`.
        out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned()));
    } else {
        out.push('"');
        out.push_str(s);
        out.push('"');
    }
}

/// Whether `text` is a number exactly as JSON writes one (RFC 8259, section 6): `-`?,
/// `0` or a digit run not starting with 0, an optional fraction, an optional exponent.
pub(crate) fn is_json_number(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    if b.first() == Some(&b'-') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Appends a Header as a JSON object (numbers as JSON numbers, as the reference agent
/// writes them).
pub(crate) fn push_header(out: &mut String, h: &Header) {
    use std::fmt::Write as _;
    out.push_str("{\"version\":");
    push_string(out, &h.version);
    if let Some(t) = h.creation_time {
        out.push_str(",\"creationTime\":");
        push_string(out, &crate::time::format_timestamp(t));
    }
    let _ = write!(out, ",\"instanceId\":{}", h.instance_id);
    out.push_str(",\"sender\":");
    push_string(out, &h.sender);
    if let Some(t) = h.device_model_change_time {
        out.push_str(",\"deviceModelChangeTime\":");
        push_string(out, &crate::time::format_timestamp(t));
    }
    for (name, v) in [
        ("bufferSize", h.buffer_size),
        ("assetBufferSize", h.asset_buffer_size),
        ("assetCount", h.asset_count),
        ("nextSequence", h.next_sequence),
        ("lastSequence", h.last_sequence),
        ("firstSequence", h.first_sequence),
    ] {
        if let Some(v) = v {
            let _ = write!(out, ",\"{name}\":{v}");
        }
    }
    out.push('}');
}

/// The root of a JSON document: its one member's name and value.
pub(crate) fn root(input: &[u8]) -> Result<(Cow<'_, str>, &RawValue), Error> {
    let input_text = std::str::from_utf8(input).map_err(|e| {
        let at = e.valid_up_to();
        Error::Json {
            position: Position::in_input(input, at as u64),
            source: JsonError(<serde_json::Error as de::Error>::custom(format!(
                "not UTF-8 text at byte {at}"
            ))),
        }
    })?;
    let members = serde_json::from_str::<Members<'_>>(input_text)
        .map_err(|e| json_error(input, e))?
        .0;
    members.into_iter().next().ok_or_else(|| {
        json_error(
            input,
            <serde_json::Error as de::Error>::custom("an empty object: no MTConnect document"),
        )
    })
}

/// Whether JSON document `input` begins `{"NAME"` (after a byte order mark and white
/// space): its root, seen without reading the rest.
pub(crate) fn starts_with_root(input: &[u8], name: &str) -> bool {
    let rest = crate::xml::strip_bom(input);
    let skip = |b: &[u8]| -> usize { b.iter().take_while(|c| c.is_ascii_whitespace()).count() };
    let rest = &rest[skip(rest)..];
    let Some(rest) = rest.strip_prefix(b"{") else {
        return false;
    };
    let rest = &rest[skip(rest)..];
    rest.strip_prefix(b"\"")
        .and_then(|r| r.strip_prefix(name.as_bytes()))
        .is_some_and(|r| r.first() == Some(&b'"'))
}

/// The [`Error::Json`] of a serde_json error met reading `part`, a slice of `input` (its
/// line and column are counted from `part`'s start: the position is `part`'s offset plus
/// theirs, counted again in `input`).
pub(crate) fn json_error_in(input: &[u8], part: &str, err: serde_json::Error) -> Error {
    let start = offset_in(input, part) as usize;
    let within = offset_of_line_column(part.as_bytes(), err.line() as u64, err.column() as u64);
    Error::Json {
        position: Position::in_input(input, start as u64 + within),
        source: JsonError(err),
    }
}

/// Reads an MTConnectError document's errors (the root's value, `raw`): version 1's
/// `[{"Error":{…}}]` or version 2's `{"Error":[…]}`, in the 1.x–2.5 form (`Error` with
/// `errorCode` and `value`) or the 2.6+ form (the element named by the error, with
/// `errorCode`, `ErrorMessage`, `Request`, `URI`, `QueryParameter`).
pub(crate) fn error_document(input: &[u8], raw: &RawValue) -> ErrorDocument {
    let mut problems = Vec::new();
    let mut doc = ErrorDocument {
        header: Header::default(),
        errors: Vec::new(),
    };
    let Ok(top) = members(raw) else {
        return doc;
    };
    for (key, value) in top {
        match key.as_ref() {
            "Header" => doc.header = header(input, value, &mut problems),
            "Errors" => {
                for (element, e) in entities(input, value, "Errors", &mut problems) {
                    doc.errors.push(agent_error(&element, e));
                }
            }
            _ => {}
        }
    }
    doc
}

fn agent_error(element: &str, raw: &RawValue) -> AgentError {
    let mut code = None;
    let mut text = String::new();
    let mut error = AgentError::new(ErrorCode::from_element(element), "");
    for (key, value) in members(raw).unwrap_or_default() {
        match key.as_ref() {
            "errorCode" => code = scalar(value).map(|c| ErrorCode::from_code(&c)),
            "value" | "ErrorMessage" => {
                if let Some(t) = scalar(value) {
                    t.trim().clone_into(&mut text);
                }
            }
            "Request" => error.request = scalar(value).map(Cow::into_owned),
            "URI" => error.uri = scalar(value).map(Cow::into_owned),
            "AssetId" => error.asset_id = scalar(value).map(Cow::into_owned),
            "QueryParameter" => {
                let mut p = QueryParameter::default();
                for (k, v) in members(value).unwrap_or_default() {
                    let v = scalar(v).map(Cow::into_owned);
                    match k.as_ref() {
                        "name" => p.name = v.unwrap_or_default(),
                        "Value" => p.value = v,
                        "Minimum" => p.minimum = v,
                        "Maximum" => p.maximum = v,
                        "Type" => p.kind = v,
                        "Format" => p.format = v,
                        _ => {}
                    }
                }
                error.query_parameter = Some(p);
            }
            _ => {}
        }
    }
    if let Some(code) = code {
        error.code = code;
    }
    text.truncate(floor_char_boundary(&text, crate::error::MAX_ERROR_TEXT));
    error.text = text;
    error
}

/// The largest char boundary of `s` at or below `at`.
fn floor_char_boundary(s: &str, at: usize) -> usize {
    if at >= s.len() {
        return s.len();
    }
    (0..=at).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0)
}

/// Parses an MTConnectError document in JSON (either version).
///
/// # Errors
/// [`Error::Json`] when the input is not JSON, [`Error::UnexpectedRoot`] when it is
/// another MTConnect document.
pub fn parse_error_json(input: &[u8]) -> Result<ErrorDocument, Error> {
    let input = crate::xml::strip_bom(input);
    let (name, raw) = root(input)?;
    if name != "MTConnectError" {
        return Err(Error::UnexpectedRoot {
            expected: "MTConnectError",
            found: name.into_owned(),
        });
    }
    Ok(error_document(input, raw))
}

/// Writes an MTConnectError document in JSON, `version` 1 or 2, in the 1.x–2.5 form
/// (`Error` elements with `errorCode` and `value`), which every reader understands.
pub fn write_error_json(doc: &ErrorDocument, version: JsonVersion) -> String {
    let mut out = String::with_capacity(256);
    out.push_str("{\"MTConnectError\":{\"jsonVersion\":");
    out.push_str(&version.number().to_string());
    out.push_str(",\"Header\":");
    push_header(&mut out, &doc.header);
    let error = |out: &mut String, e: &AgentError| {
        out.push_str("{\"value\":");
        push_string(out, &e.text);
        out.push_str(",\"errorCode\":");
        push_string(out, e.code.as_str());
        out.push('}');
    };
    match version {
        JsonVersion::V1 => {
            out.push_str(",\"Errors\":[");
            for (i, e) in doc.errors.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"Error\":");
                error(&mut out, e);
                out.push('}');
            }
            out.push(']');
        }
        JsonVersion::V2 => {
            out.push_str(",\"Errors\":{\"Error\":[");
            for (i, e) in doc.errors.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                error(&mut out, e);
            }
            out.push_str("]}");
        }
    }
    out.push_str("}}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_numbers_are_told_from_other_text() {
        for yes in ["0", "-0", "12", "-1.5", "1e5", "1.25E-3", "4662.0319"] {
            assert!(is_json_number(yes), "{yes}");
        }
        for no in [
            "", "+1", "01", "1.", ".5", "1e", "NaN", "Infinity", "1 2", "0x1", "-",
        ] {
            assert!(!is_json_number(no), "{no}");
        }
    }

    #[test]
    fn an_error_document_reads_in_both_versions_and_both_forms() {
        let v1 = br#"{"MTConnectError":{"jsonVersion":1,"Header":{"instanceId":1,"sender":"a","version":"2.7"},
            "Errors":[{"Error":{"value":"ERROR TEXT!","errorCode":"INVALID_REQUEST"}}]}}"#;
        let doc = parse_error_json(v1).unwrap();
        assert_eq!(doc.errors.len(), 1);
        assert_eq!(doc.errors[0].code, ErrorCode::InvalidRequest);
        assert_eq!(doc.errors[0].text, "ERROR TEXT!");
        let v2 = br#"{"MTConnectError":{"jsonVersion":2,"Header":{"instanceId":1},
            "Errors":{"OutOfRange":[{"errorCode":"OUT_OF_RANGE","ErrorMessage":"'from' must be less than 10904772",
              "URI":"/sample?from=99","Request":"MTConnectStreams",
              "QueryParameter":{"name":"from","Value":99,"Minimum":10904772,"Maximum":10904800}}]}}}"#;
        let doc = parse_error_json(v2).unwrap();
        let e = &doc.errors[0];
        assert_eq!(e.code, ErrorCode::OutOfRange);
        assert_eq!(e.uri.as_deref(), Some("/sample?from=99"));
        let p = e.query_parameter.as_ref().unwrap();
        assert_eq!(
            (p.minimum_integer(), p.maximum_integer()),
            (Some(10904772), Some(10904800))
        );
        for version in [JsonVersion::V1, JsonVersion::V2] {
            let again = parse_error_json(write_error_json(&doc, version).as_bytes()).unwrap();
            assert_eq!(again.errors[0].code, ErrorCode::OutOfRange);
            assert_eq!(again.errors[0].text, e.text);
        }
    }

    #[test]
    fn broken_json_is_an_error_with_its_line_and_column() {
        let err = parse_error_json(b"{\"MTConnectError\":\n  {\"Header\": }").unwrap_err();
        let Error::Json { position, .. } = err else {
            panic!("{err:?}")
        };
        assert_eq!(position.line, Some(2));
        assert!(matches!(parse_error_json(b"{}"), Err(Error::Json { .. })));
    }
}
