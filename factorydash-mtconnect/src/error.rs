//! MTConnectError documents (MTConnect Part 1, "MTConnectError") and this crate's error type.

use std::fmt;

use quick_xml::events::Event;
use quick_xml::Reader;
use serde::Serialize;

use crate::header::Header;
use crate::xml::{attr_value, strip_bom};

/// The error codes an agent answers with: MTConnect Part 1, "Error" (`errorCode`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "String")]
pub enum ErrorCode {
    /// The request was not authorised.
    Unauthorized,
    /// No device of the requested name or uuid.
    NoDevice,
    /// `from`/`to` lies outside the agent's buffer (before `firstSequence` or past
    /// `nextSequence`): a follower must start again from `firstSequence`.
    OutOfRange,
    /// `count` larger than the agent allows.
    TooMany,
    /// The URI is not valid.
    InvalidUri,
    /// The request is not valid (e.g. a bad parameter).
    InvalidRequest,
    /// The agent failed internally.
    InternalError,
    /// The XPath `path` is not valid.
    InvalidXpath,
    /// The request is not supported (e.g. streaming refused).
    Unsupported,
    /// The asset was not found.
    AssetNotFound,
    /// Any other code, as sent.
    Other(String),
}

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
            "INVALID_XPATH" => ErrorCode::InvalidXpath,
            "UNSUPPORTED" => ErrorCode::Unsupported,
            "ASSET_NOT_FOUND" => ErrorCode::AssetNotFound,
            other => ErrorCode::Other(other.to_owned()),
        }
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

/// One `Error` element: a code and the agent's text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentError {
    /// The `errorCode`.
    pub code: ErrorCode,
    /// The element's text, trimmed.
    pub text: String,
}

/// An MTConnectError document: the agent refused a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
}

impl fmt::Display for ErrorDocument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", e.code, e.text)?;
        }
        Ok(())
    }
}

/// The error of the parsers in this crate.
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
    /// No root element could be read.
    #[error("not an XML document: {0}")]
    NotMtconnect(String),
    /// The document is larger than the configured limit.
    #[error("document larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
}

/// Parses an MTConnectError document.
///
/// # Errors
/// [`Error::UnexpectedRoot`] when the root is not `MTConnectError`; [`Error::NotMtconnect`]
/// when the XML cannot be read.
pub fn parse_error(input: &[u8]) -> Result<ErrorDocument, Error> {
    match parse_error_root(input) {
        Error::Agent(doc) => Ok(*doc),
        other => Err(other),
    }
}

/// Reads an MTConnectError document, returning it inside [`Error::Agent`], or the error
/// that prevented reading it.
pub(crate) fn parse_error_root(input: &[u8]) -> Error {
    let input = strip_bom(input);
    let mut reader = Reader::from_reader(input);
    let mut header = Header::default();
    let mut errors = Vec::new();
    let mut current: Option<(ErrorCode, String)> = None;
    let mut root_seen = false;
    let mut sink = Vec::new();
    loop {
        let offset = reader.buffer_position();
        match reader.read_event() {
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) if !root_seen => {
                root_seen = true;
                if e.local_name().as_ref() != b"MTConnectError" {
                    return Error::UnexpectedRoot {
                        expected: "MTConnectError",
                        found: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                    };
                }
            }
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => match e.local_name().as_ref() {
                b"Header" => header = Header::parse(input, &e, offset, &mut sink),
                b"Error" => {
                    if let Some((code, text)) = current.take() {
                        errors.push(AgentError {
                            code,
                            text: text.trim().to_owned(),
                        });
                    }
                    let code = e
                        .attributes()
                        .flatten()
                        .find(|a| a.key.local_name().as_ref() == b"errorCode")
                        .and_then(|a| attr_value(input, &a).ok())
                        .map(|c| ErrorCode::from_code(c.trim()))
                        .unwrap_or_else(|| ErrorCode::Other(String::new()));
                    current = Some((code, String::new()));
                }
                _ => {}
            },
            Ok(Event::Text(t)) => {
                if let (Some((_, text)), Ok(s)) = (&mut current, t.decode()) {
                    text.push_str(&s);
                }
            }
            Ok(Event::GeneralRef(r)) => {
                if let (Some((_, text)), Some(c)) =
                    (&mut current, crate::xml::resolve_reference(&r))
                {
                    text.push(c);
                }
            }
            Ok(Event::End(e)) if e.local_name().as_ref() == b"Error" => {
                if let Some((code, text)) = current.take() {
                    errors.push(AgentError {
                        code,
                        text: text.trim().to_owned(),
                    });
                }
            }
            Ok(Event::Eof) => break,
            Err(e) if !root_seen => return Error::NotMtconnect(e.to_string()),
            Err(_) => break,
            Ok(_) => {}
        }
    }
    if let Some((code, text)) = current.take() {
        errors.push(AgentError {
            code,
            text: text.trim().to_owned(),
        });
    }
    if !root_seen {
        return Error::NotMtconnect("no root element".into());
    }
    Error::Agent(Box::new(ErrorDocument { header, errors }))
}
