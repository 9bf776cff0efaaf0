//! Problems met while parsing: what was wrong, where, and whether the rest survived.

use std::fmt;

use serde::Serialize;

/// What kind of problem a parser met.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProblemKind {
    /// The XML itself is broken (not well-formed, truncated). Parsing stopped here: the
    /// document is incomplete, and [`Parsed::is_complete`] is `false`.
    Syntax,
    /// A required attribute is missing or empty (e.g. an observation without `sequence`).
    /// The element was skipped.
    MissingAttribute,
    /// An attribute has a value that does not parse (a bad `sequence` or `timestamp`).
    /// The element was skipped, or the attribute ignored where it is optional.
    InvalidAttribute,
    /// A timestamp had no zone designator and was taken as UTC (MTConnect Part 1 requires
    /// UTC with `Z`; the NIST agent omits it). The observation was kept.
    MissingTimeZone,
    /// An element uses a namespace prefix the document never declares (the NIST 2021
    /// `/current` uses `x:` undeclared). The element was kept.
    UndeclaredPrefix,
    /// A Sample's value is not numeric (`381,6404`, `20014:23:40`). The observation was
    /// kept with its value as text.
    InvalidValue,
    /// An element nested deeper than the configured limit; it and its content were skipped.
    TooDeep,
    /// The document is larger than the configured limit; parsing stopped at the limit.
    TooLarge,
    /// Something the parser does not understand where a known element belongs. Skipped.
    Unexpected,
    /// A whole number beyond 2^64 − 1, which no 64-bit integer holds: an observation's
    /// `sequence` (the observation was skipped) or a Header number (`nextSequence`,
    /// `instanceId`, `bufferSize`, …; left unset). Unlike a malformed value, it is what a
    /// broken or hostile agent counts to: a client following the agent cannot go on from
    /// such an answer (`client::SequenceFault::OutOfRange`, feature `client`).
    OutOfRange,
}

/// Where in a document something was met: its byte offset, and its line and column when
/// the document's bytes were at hand (the slice parsers; a [`std::io::BufRead`] reader
/// knows only the offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
#[serde(rename_all = "camelCase")]
pub struct Position {
    /// Byte offset from the start of the document (after a byte order mark).
    pub offset: u64,
    /// The line, counted from 1 (lines end at `\n`).
    pub line: Option<u64>,
    /// The column in bytes, counted from 1.
    pub column: Option<u64>,
}

impl Position {
    /// The position at byte `offset`, line and column unknown.
    pub fn at(offset: u64) -> Self {
        Position {
            offset,
            line: None,
            column: None,
        }
    }

    /// The position at byte `offset` of `input`, with its line and column (an offset
    /// past the end is taken as the end).
    pub fn in_input(input: &[u8], offset: u64) -> Self {
        let end = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(input.len());
        let before = &input[..end];
        let line = memchr::memchr_iter(b'\n', before).count() as u64 + 1;
        let line_start = memchr::memrchr(b'\n', before).map_or(0, |i| i + 1);
        Position {
            offset,
            line: Some(line),
            column: Some((end - line_start) as u64 + 1),
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => {
                write!(f, "line {line}, column {column} (byte {})", self.offset)
            }
            _ => write!(f, "byte {}", self.offset),
        }
    }
}

/// One problem met while parsing, with the byte offset where it was noticed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// What kind of problem.
    pub kind: ProblemKind,
    /// Byte offset into the document where the problem was noticed.
    pub offset: u64,
    /// A human-readable description, naming the element and attribute.
    pub message: String,
}

impl Problem {
    /// Where the problem was noticed in `input` (the document it was met in): its byte
    /// offset, line and column. Problems keep only the offset, so that a document with many
    /// problems costs no line counting until one is shown.
    pub fn position_in(&self, input: &[u8]) -> Position {
        Position::in_input(crate::xml::strip_bom(input), self.offset)
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at byte {}: {}", self.offset, self.message)
    }
}

/// A parse result with the problems met on the way (rust-analyzer style: one bad element
/// never loses a whole document).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Parsed<T> {
    /// What could be parsed.
    pub value: T,
    /// The problems, in document order.
    pub problems: Vec<Problem>,
}

impl<T> Parsed<T> {
    /// Whether the document was read to its end: no [`ProblemKind::Syntax`] or
    /// [`ProblemKind::TooLarge`] problem stopped the parser. An incomplete `/sample`
    /// answer must not be used to advance a follower's `nextSequence`.
    pub fn is_complete(&self) -> bool {
        !self
            .problems
            .iter()
            .any(|p| matches!(p.kind, ProblemKind::Syntax | ProblemKind::TooLarge))
    }

    /// Maps the value, keeping the problems.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Parsed<U> {
        Parsed {
            value: f(self.value),
            problems: self.problems,
        }
    }
}
