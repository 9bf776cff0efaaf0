//! MTConnectError documents (MTConnect Part 1, "MTConnectError") and this crate's error type.
//!
//! Two forms are in use, and both are read:
//! - MTConnect 1.x to 2.5: `<Errors><Error errorCode="OUT_OF_RANGE">text</Error></Errors>`
//!   (1.0.1 and earlier: one `<Error>` without `<Errors>`).
//! - MTConnect 2.6 and later (the reference agent's default since 2.6): one element per
//!   error kind, named for it, with the message and the request in child elements:
//!   `<Errors><OutOfRange errorCode="OUT_OF_RANGE"><ErrorMessage>…</ErrorMessage>
//!   <QueryParameter name="from"><Maximum>2107</Maximum><Minimum>1083</Minimum>
//!   <Value>518</Value></QueryParameter><Request>MTConnectStreams</Request>
//!   <URI>/sample?count=1000&amp;from=518</URI></OutOfRange></Errors>`
//!   (MTConnectError 2.6/2.7 schemas, `ErrorType` and its substitution group).

use std::fmt;

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use serde::Serialize;

use crate::header::Header;
use crate::problem::Position;
use crate::xml::{attr_value, strip_bom};

/// The longest text kept of one field of an error (message, URI, parameter value), in
/// bytes; longer text is cut at a character boundary. An error's text ends up in logs and
/// in the health answer: an agent cannot make it large.
pub const MAX_ERROR_TEXT: usize = 4096;

/// The error codes an agent answers with: MTConnect Part 1, "Error" (`errorCode`), and in
/// the 2.6+ form the error element's name (`OutOfRange` is `OUT_OF_RANGE`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "String")]
pub enum ErrorCode {
    /// The request was not authorised (`Unauthorized`).
    Unauthorized,
    /// No device of the requested name or uuid (`NoDevice`).
    NoDevice,
    /// A query parameter is outside what the agent accepts (`OutOfRange`): `from`/`to`
    /// outside the agent's buffer (before `firstSequence` or past `nextSequence`), or
    /// `count` above its `bufferSize`. The error's [`QueryParameter`] says which, in 2.6+.
    OutOfRange,
    /// `count` larger than the agent allows (`TooMany`).
    TooMany,
    /// The URI is not valid (`InvalidURI`).
    InvalidUri,
    /// The request is not valid (`InvalidRequest`).
    InvalidRequest,
    /// The agent failed internally (`InternalError`).
    InternalError,
    /// The XPath `path` is not valid (`InvalidXPath`; spelled `INVALID_XPATH` by agents and
    /// `INVALID_PATH` in the schemas' code list: both are read).
    InvalidXpath,
    /// The request is not supported, e.g. streaming refused (`Unsupported`).
    Unsupported,
    /// The asset was not found (`AssetNotFound`).
    AssetNotFound,
    /// MTConnect 2.6+: a query parameter's value is not valid (`InvalidParameterValue`).
    InvalidParameterValue,
    /// MTConnect 2.6+: a query parameter is not known (`InvalidQueryParameter`).
    InvalidQueryParameter,
    /// MTConnect 2.6+: the query failed (`QueryError`).
    QueryError,
    /// Any other code, as sent.
    Other(String),
}

/// The 2.6+ element name of each known code.
const ELEMENTS: [(ErrorCode, &str); 13] = [
    (ErrorCode::Unauthorized, "Unauthorized"),
    (ErrorCode::NoDevice, "NoDevice"),
    (ErrorCode::OutOfRange, "OutOfRange"),
    (ErrorCode::TooMany, "TooMany"),
    (ErrorCode::InvalidUri, "InvalidURI"),
    (ErrorCode::InvalidRequest, "InvalidRequest"),
    (ErrorCode::InternalError, "InternalError"),
    (ErrorCode::InvalidXpath, "InvalidXPath"),
    (ErrorCode::Unsupported, "Unsupported"),
    (ErrorCode::AssetNotFound, "AssetNotFound"),
    (ErrorCode::InvalidParameterValue, "InvalidParameterValue"),
    (ErrorCode::InvalidQueryParameter, "InvalidQueryParameter"),
    (ErrorCode::QueryError, "QueryError"),
];

impl ErrorCode {
    /// The code as the agent spells it, e.g. `OUT_OF_RANGE`.
    pub fn as_str(&self) -> &str {
        match self {
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::NoDevice => "NO_DEVICE",
            ErrorCode::OutOfRange => "OUT_OF_RANGE",
            ErrorCode::TooMany => "TOO_MANY",
            ErrorCode::InvalidUri => "INVALID_URI",
            ErrorCode::InvalidRequest => "INVALID_REQUEST",
            ErrorCode::InternalError => "INTERNAL_ERROR",
            ErrorCode::InvalidXpath => "INVALID_XPATH",
            ErrorCode::Unsupported => "UNSUPPORTED",
            ErrorCode::AssetNotFound => "ASSET_NOT_FOUND",
            ErrorCode::InvalidParameterValue => "INVALID_PARAMETER_VALUE",
            ErrorCode::InvalidQueryParameter => "INVALID_QUERY_PARAMETER",
            ErrorCode::QueryError => "QUERY_ERROR",
            ErrorCode::Other(s) => s,
        }
    }

    /// The code for its spelling; unknown codes are kept as [`ErrorCode::Other`].
    pub fn from_code(code: &str) -> Self {
        match code {
            "UNAUTHORIZED" => ErrorCode::Unauthorized,
            "NO_DEVICE" => ErrorCode::NoDevice,
            "OUT_OF_RANGE" => ErrorCode::OutOfRange,
            "TOO_MANY" => ErrorCode::TooMany,
            "INVALID_URI" => ErrorCode::InvalidUri,
            "INVALID_REQUEST" => ErrorCode::InvalidRequest,
            "INTERNAL_ERROR" => ErrorCode::InternalError,
            "INVALID_XPATH" | "INVALID_PATH" => ErrorCode::InvalidXpath,
            "UNSUPPORTED" => ErrorCode::Unsupported,
            "ASSET_NOT_FOUND" => ErrorCode::AssetNotFound,
            "INVALID_PARAMETER_VALUE" => ErrorCode::InvalidParameterValue,
            "INVALID_QUERY_PARAMETER" => ErrorCode::InvalidQueryParameter,
            "QUERY_ERROR" => ErrorCode::QueryError,
            other => ErrorCode::Other(other.to_owned()),
        }
    }

    /// The code of a 2.6+ error element (`OutOfRange` is [`ErrorCode::OutOfRange`]), for
    /// an element without an `errorCode` attribute (the schemas do not require one).
    /// Unknown names become [`ErrorCode::Other`] in the code spelling (`FooBar` is
    /// `FOO_BAR`).
    pub fn from_element(name: &str) -> Self {
        if let Some((code, _)) = ELEMENTS.iter().find(|(_, n)| *n == name) {
            return code.clone();
        }
        let mut code = String::with_capacity(name.len() + 4);
        for (i, c) in name.chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                code.push('_');
            }
            code.push(c.to_ascii_uppercase());
        }
        ErrorCode::Other(code)
    }

    /// The code's 2.6+ element name (`OutOfRange` for [`ErrorCode::OutOfRange`]); an
    /// [`ErrorCode::Other`] code in camel case (`FOO_BAR` is `FooBar`).
    pub fn element_name(&self) -> String {
        if let Some((_, name)) = ELEMENTS.iter().find(|(c, _)| c == self) {
            return (*name).to_owned();
        }
        self.as_str()
            .split('_')
            .filter(|w| !w.is_empty())
            .map(|w| {
                let lower = w.to_ascii_lowercase();
                let mut chars = lower.chars();
                chars.next().map_or(String::new(), |c| {
                    c.to_ascii_uppercase().to_string() + chars.as_str()
                })
            })
            .collect()
    }
}

impl From<ErrorCode> for String {
    fn from(c: ErrorCode) -> String {
        c.as_str().to_owned()
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The query parameter an MTConnect 2.6+ error is about (`QueryParameter`): its name, the
/// value given, and the range the agent accepts. The numbers are kept as the agent wrote
/// them (the schema's type is `float`; agents write integers for sequences and counts);
/// [`QueryParameter::minimum_integer`] and the like read them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
#[serde(rename_all = "camelCase")]
pub struct QueryParameter {
    /// The parameter's `name`: `from`, `to`, `count`, `interval`, `heartbeat`, `path`,
    /// `device`, …
    pub name: String,
    /// The value given (`Value`).
    pub value: Option<String>,
    /// The smallest value accepted (`Minimum`).
    pub minimum: Option<String>,
    /// The largest value accepted (`Maximum`).
    pub maximum: Option<String>,
    /// The expected data type (`Type`), when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The expected format (`Format`), when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

impl QueryParameter {
    /// A parameter named `name`, with nothing else known.
    pub fn new(name: impl Into<String>) -> Self {
        QueryParameter {
            name: name.into(),
            ..QueryParameter::default()
        }
    }

    /// With the value given.
    pub fn with_value(mut self, value: impl Into<String>) -> Self {
        self.value = Some(value.into());
        self
    }

    /// With the range accepted (`Minimum`, `Maximum`), each when known.
    pub fn with_range(mut self, minimum: Option<i64>, maximum: Option<i64>) -> Self {
        self.minimum = minimum.map(|m| m.to_string());
        self.maximum = maximum.map(|m| m.to_string());
        self
    }

    /// `Minimum` as a whole number, when it is one (`1083`, `1083.0`).
    pub fn minimum_integer(&self) -> Option<i64> {
        integer(self.minimum.as_deref())
    }

    /// `Maximum` as a whole number, when it is one.
    pub fn maximum_integer(&self) -> Option<i64> {
        integer(self.maximum.as_deref())
    }

    /// `Value` as a whole number, when it is one.
    pub fn value_integer(&self) -> Option<i64> {
        integer(self.value.as_deref())
    }
}

/// A whole number written as an integer or as a float without a fraction.
fn integer(text: Option<&str>) -> Option<i64> {
    let text = text?.trim();
    if let Ok(n) = text.parse::<i64>() {
        return Some(n);
    }
    let f = text.parse::<f64>().ok()?;
    (f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64)
}

/// One error of an MTConnectError document: its code, the agent's message and, in the
/// 2.6+ form, what the error is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
#[serde(rename_all = "camelCase")]
pub struct AgentError {
    /// The `errorCode` (in the 2.6+ form, from the element's name when the attribute is
    /// missing).
    pub code: ErrorCode,
    /// The message, trimmed: the `Error` element's text (1.x–2.5), or the `ErrorMessage`
    /// (2.6+). At most [`MAX_ERROR_TEXT`] bytes.
    pub text: String,
    /// 2.6+: the query parameter the error is about (`QueryParameter`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query_parameter: Option<QueryParameter>,
    /// 2.6+: the request refused (`Request`, e.g. `MTConnectStreams`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// 2.6+: the URI refused (`URI`, e.g. `/sample?count=1000&from=518`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// 2.6+ `AssetNotFound`: the asset asked for (`AssetId`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asset_id: Option<String>,
}

impl AgentError {
    /// An error with a code and a message, nothing else known.
    pub fn new(code: ErrorCode, text: impl Into<String>) -> Self {
        AgentError {
            code,
            text: text.into(),
            query_parameter: None,
            request: None,
            uri: None,
            asset_id: None,
        }
    }

    /// With the query parameter it is about.
    pub fn with_query_parameter(mut self, parameter: QueryParameter) -> Self {
        self.query_parameter = Some(parameter);
        self
    }

    /// With the request (`MTConnectStreams`, `MTConnectDevices`, …) and the URI refused.
    pub fn with_request(mut self, request: impl Into<String>, uri: impl Into<String>) -> Self {
        self.request = Some(request.into());
        self.uri = Some(uri.into());
        self
    }
}

impl fmt::Display for AgentError {
    /// `OUT_OF_RANGE: 'from' must be greater than 1082 (from=518, accepted 1083 to 2107)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if !self.text.is_empty() {
            write!(f, ": {}", self.text)?;
        }
        if let Some(p) = &self.query_parameter {
            write!(f, " ({}", p.name)?;
            if let Some(v) = &p.value {
                write!(f, "={v}")?;
            }
            match (&p.minimum, &p.maximum) {
                (Some(min), Some(max)) => write!(f, ", accepted {min} to {max}")?,
                (Some(min), None) => write!(f, ", at least {min}")?,
                (None, Some(max)) => write!(f, ", at most {max}")?,
                (None, None) => {}
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// An MTConnectError document: the agent refused a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDocument {
    /// The Header.
    pub header: Header,
    /// The errors, at least one in a well-formed document.
    pub errors: Vec<AgentError>,
}

impl ErrorDocument {
    /// Whether any error has this code.
    pub fn has(&self, code: &ErrorCode) -> bool {
        self.errors.iter().any(|e| &e.code == code)
    }

    /// The first error with this code.
    pub fn find(&self, code: &ErrorCode) -> Option<&AgentError> {
        self.errors.iter().find(|e| &e.code == code)
    }
}

impl fmt::Display for ErrorDocument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.errors.is_empty() {
            return f.write_str("an error document without errors");
        }
        // The first few, so that an agent's thousand errors make no thousand-line health.
        const SHOWN: usize = 3;
        for (i, e) in self.errors.iter().take(SHOWN).enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        if self.errors.len() > SHOWN {
            write!(f, "; and {} more", self.errors.len() - SHOWN)?;
        }
        Ok(())
    }
}

/// The error of the parsers in this crate.
///
/// The cases follow quick-xml's own (`Io`, `Syntax`, `IllFormed`): the input could not
/// be read, its XML is broken before the root element, or it holds no MTConnect document.
/// XML broken *after* the root element is no error: the parsers keep what they read and
/// report a [`ProblemKind::Syntax`](crate::ProblemKind::Syntax) problem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The document is an MTConnectError: the agent refused the request.
    #[error("the agent answered with an error: {0}")]
    Agent(Box<ErrorDocument>),
    /// The document is MTConnect, but not the kind asked for.
    #[error("expected an {expected} document, found <{found}>")]
    UnexpectedRoot {
        /// The root element expected.
        expected: &'static str,
        /// The root element found.
        found: String,
    },
    /// The input could not be read: an I/O error of a [`std::io::BufRead`] source, or a
    /// gzip body that cannot be inflated.
    #[error("the document could not be read")]
    Io(#[source] std::sync::Arc<std::io::Error>),
    /// The input is not XML: it is broken at the lexical level (an unclosed tag, comment
    /// or CDATA section) before its root element.
    #[error("not an XML document: syntax error at {position}")]
    Syntax {
        /// Where the broken markup starts.
        position: Position,
        /// What is wrong.
        #[source]
        source: XmlError,
    },
    /// The input is XML that is not well-formed (a mismatched end tag, a malformed
    /// attribute, an unknown entity, a bad encoding) before its root element.
    #[error("not a well-formed XML document: error at {position}")]
    IllFormed {
        /// Where the error was noticed.
        position: Position,
        /// What is wrong.
        #[source]
        source: XmlError,
    },
    /// The input holds no root element (it is empty, or only a prolog or comments).
    #[error("not an XML document: no root element")]
    NoRoot,
    /// The input is not JSON (a JSON reader was asked: [`crate::parse_streams_json`] and
    /// the like), or its top level is not an object.
    #[error("not a JSON document: error at {position}")]
    Json {
        /// Where serde_json noticed it (line and column as serde_json counts them).
        position: Position,
        /// What is wrong.
        #[source]
        source: crate::json::JsonError,
    },
    /// The document is larger than the configured limit.
    #[error("document larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
}

impl Error {
    /// The error for a quick-xml error met before the root element, at byte `offset` of
    /// `input` (the bytes the reader saw, when they are at hand, for the line and column).
    pub(crate) fn xml(err: quick_xml::Error, offset: u64, input: Option<&[u8]>) -> Self {
        let position = match input {
            Some(input) => Position::in_input(input, offset),
            None => Position::at(offset),
        };
        match err {
            quick_xml::Error::Io(e) => Error::Io(e),
            e @ quick_xml::Error::Syntax(_) => Error::Syntax {
                position,
                source: XmlError(e),
            },
            e => Error::IllFormed {
                position,
                source: XmlError(e),
            },
        }
    }
}

/// What is wrong with a document's XML: the XML reader's own error, kept as the
/// [`source`](std::error::Error::source) of [`Error::Syntax`] and [`Error::IllFormed`]
/// (opaque, so that this crate's API does not depend on the XML reader's version).
#[derive(Debug)]
pub struct XmlError(quick_xml::Error);

impl fmt::Display for XmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for XmlError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// Parses an MTConnectError document, in either form (see the [module docs](self)).
///
/// # Errors
/// [`Error::UnexpectedRoot`] when the root is not `MTConnectError`; [`Error::Syntax`],
/// [`Error::IllFormed`] or [`Error::NoRoot`] when no root element can be read.
pub fn parse_error(input: &[u8]) -> Result<ErrorDocument, Error> {
    match parse_error_root(input) {
        Error::Agent(doc) => Ok(*doc),
        other => Err(other),
    }
}

/// Which text of the error being read the current element holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    /// The old form's `Error` text, or the 2.6+ `ErrorMessage`.
    Text,
    Request,
    Uri,
    AssetId,
    Value,
    Minimum,
    Maximum,
    Kind,
    Format,
}

/// The error being read: the error, its element's depth, the field being read and its
/// depth, and the depth of an open `QueryParameter`.
struct Reading {
    error: AgentError,
    depth: usize,
    field: Option<(Field, usize)>,
    parameter_depth: Option<usize>,
}

impl Reading {
    fn field_text(&mut self, field: Field) -> &mut String {
        let e = &mut self.error;
        let slot = match field {
            Field::Text => return &mut e.text,
            Field::Request => &mut e.request,
            Field::Uri => &mut e.uri,
            Field::AssetId => &mut e.asset_id,
            Field::Value | Field::Minimum | Field::Maximum | Field::Kind | Field::Format => {
                let q = e
                    .query_parameter
                    .get_or_insert_with(QueryParameter::default);
                match field {
                    Field::Value => &mut q.value,
                    Field::Minimum => &mut q.minimum,
                    Field::Maximum => &mut q.maximum,
                    Field::Kind => &mut q.kind,
                    _ => &mut q.format,
                }
            }
        };
        slot.get_or_insert_with(String::new)
    }

    /// Appends text to the field being read, up to [`MAX_ERROR_TEXT`] bytes.
    fn push(&mut self, depth: usize, text: &str) {
        let Some((field, at)) = self.field else {
            return;
        };
        if at != depth {
            return;
        }
        let out = self.field_text(field);
        let room = MAX_ERROR_TEXT.saturating_sub(out.len());
        if text.len() <= room {
            out.push_str(text);
        } else {
            let mut cut = room;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            out.push_str(&text[..cut]);
        }
    }

    fn finish(mut self) -> AgentError {
        let trim = |s: &mut String| {
            let t = s.trim();
            if t.len() != s.len() {
                *s = t.to_owned();
            }
        };
        let e = &mut self.error;
        trim(&mut e.text);
        for s in [&mut e.request, &mut e.uri, &mut e.asset_id]
            .into_iter()
            .flatten()
        {
            trim(s);
        }
        if let Some(p) = &mut e.query_parameter {
            for s in [
                &mut p.value,
                &mut p.minimum,
                &mut p.maximum,
                &mut p.kind,
                &mut p.format,
            ]
            .into_iter()
            .flatten()
            {
                trim(s);
            }
        }
        self.error
    }
}

fn attribute(input: &[u8], e: &BytesStart<'_>, name: &[u8]) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == name)
        .and_then(|a| attr_value(input, &a).ok())
        .map(|v| v.trim().to_owned())
}

/// Reads an MTConnectError document, returning it inside [`Error::Agent`], or the error
/// that prevented reading it.
pub(crate) fn parse_error_root(input: &[u8]) -> Error {
    let input = strip_bom(input);
    let mut reader = Reader::from_reader(input);
    let mut header = Header::default();
    let mut errors = Vec::new();
    let mut reading: Option<Reading> = None;
    let mut root_seen = false;
    let mut errors_depth = None;
    let mut depth = 0usize;
    let mut sink = Vec::new();
    loop {
        let offset = reader.buffer_position();
        let (e, empty) = match reader.read_event() {
            Ok(Event::Start(e)) => (e, false),
            Ok(Event::Empty(e)) => (e, true),
            Ok(Event::Text(t)) => {
                if let (Some(r), Ok(s)) = (&mut reading, t.decode()) {
                    r.push(depth, &s);
                }
                continue;
            }
            Ok(Event::CData(t)) => {
                if let Some(r) = &mut reading {
                    r.push(depth, &String::from_utf8_lossy(&t));
                }
                continue;
            }
            Ok(Event::GeneralRef(g)) => {
                if let (Some(r), Some(c)) = (&mut reading, crate::xml::resolve_reference(&g)) {
                    r.push(depth, c.encode_utf8(&mut [0; 4]));
                }
                continue;
            }
            Ok(Event::End(_)) => {
                if let Some(r) = &mut reading {
                    if r.field.is_some_and(|(_, at)| at == depth) {
                        r.field = None;
                    }
                    if r.parameter_depth == Some(depth) {
                        r.parameter_depth = None;
                    }
                    if r.depth == depth {
                        errors.push(reading.take().expect("an error being read").finish());
                    }
                }
                if errors_depth == Some(depth) {
                    errors_depth = None;
                }
                depth = depth.saturating_sub(1);
                continue;
            }
            Ok(Event::Eof) => break,
            Err(e) if !root_seen => return Error::xml(e, reader.error_position(), Some(input)),
            Err(_) => break,
            Ok(_) => continue,
        };
        depth += 1;
        let name = e.local_name();
        let name = name.as_ref();
        if !root_seen {
            root_seen = true;
            if name != b"MTConnectError" {
                return Error::UnexpectedRoot {
                    expected: "MTConnectError",
                    found: String::from_utf8_lossy(name).into_owned(),
                };
            }
        } else if let Some(r) = &mut reading {
            if depth == r.depth + 1 {
                r.field = match name {
                    b"ErrorMessage" => Some((Field::Text, depth)),
                    b"Request" => Some((Field::Request, depth)),
                    b"URI" => Some((Field::Uri, depth)),
                    b"AssetId" => Some((Field::AssetId, depth)),
                    _ => None,
                };
                if name == b"QueryParameter" {
                    r.parameter_depth = Some(depth);
                    let p = r.error.query_parameter.get_or_insert_with(Default::default);
                    p.name = attribute(input, &e, b"name").unwrap_or_default();
                }
            } else if r.parameter_depth.is_some_and(|p| depth == p + 1) {
                r.field = match name {
                    b"Value" => Some((Field::Value, depth)),
                    b"Minimum" => Some((Field::Minimum, depth)),
                    b"Maximum" => Some((Field::Maximum, depth)),
                    b"Type" => Some((Field::Kind, depth)),
                    b"Format" => Some((Field::Format, depth)),
                    _ => None,
                };
            }
        } else if depth == 2 && name == b"Header" {
            header = Header::parse(input, &e, offset, &mut sink);
        } else if depth == 2 && name == b"Errors" {
            errors_depth = Some(depth);
        } else if (depth == 2 && name == b"Error") || errors_depth == Some(depth - 1) {
            let code = attribute(input, &e, b"errorCode").map(|c| ErrorCode::from_code(&c));
            let old_form = name == b"Error";
            let code = code.unwrap_or_else(|| {
                if old_form {
                    ErrorCode::Other(String::new())
                } else {
                    ErrorCode::from_element(&String::from_utf8_lossy(name))
                }
            });
            reading = Some(Reading {
                error: AgentError::new(code, String::new()),
                depth,
                // The old form's message is the element's own text.
                field: old_form.then_some((Field::Text, depth)),
                parameter_depth: None,
            });
        }
        if empty {
            // A self-closed element opens and closes at once.
            if let Some(r) = &mut reading {
                if r.field.is_some_and(|(_, at)| at == depth) {
                    r.field = None;
                }
                if r.parameter_depth == Some(depth) {
                    r.parameter_depth = None;
                }
                if r.depth == depth {
                    errors.push(reading.take().expect("an error being read").finish());
                }
            }
            depth -= 1;
        }
    }
    if let Some(r) = reading.take() {
        errors.push(r.finish());
    }
    if !root_seen {
        return Error::NoRoot;
    }
    Error::Agent(Box::new(ErrorDocument { header, errors }))
}
