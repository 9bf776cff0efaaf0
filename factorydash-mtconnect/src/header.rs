//! The Header every MTConnect response document starts with: MTConnect Part 1,
//! "Header" (section 6 in 1.x, "Response Documents" in 2.x).

use chrono::{DateTime, Utc};
use quick_xml::events::BytesStart;
use serde::Serialize;

use crate::problem::{Problem, ProblemKind};
use crate::time::parse_timestamp;
use crate::xml::{attr_value, problem};

/// A response document's Header. Sequence fields are present in Streams headers
/// (`nextSequence`, `firstSequence`, `lastSequence`) and absent from Devices and Error
/// headers; `None` where the agent did not send them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
#[serde(rename_all = "camelCase")]
pub struct Header {
    /// The agent's `instanceId`: changes on every agent restart (cppagent uses its start
    /// time in Unix seconds). Sequences are only comparable within one instanceId.
    pub instance_id: u64,
    /// The `sender`: the agent's host name.
    pub sender: String,
    /// The agent's software `version`, e.g. `1.3.0.17`.
    pub version: String,
    /// How many observations the agent's buffer holds (`bufferSize`).
    pub buffer_size: Option<u64>,
    /// The sequence the next observation will get; ask `/sample?from=` this next.
    pub next_sequence: Option<u64>,
    /// The oldest sequence still in the agent's buffer.
    pub first_sequence: Option<u64>,
    /// The newest sequence in the agent's buffer.
    pub last_sequence: Option<u64>,
    /// When the agent wrote the document (UTC).
    pub creation_time: Option<DateTime<Utc>>,
    /// MTConnect 2.x: when the device model last changed (UTC).
    pub device_model_change_time: Option<DateTime<Utc>>,
    /// Devices documents: how many assets the agent holds (`assetBufferSize`).
    pub asset_buffer_size: Option<u64>,
    /// Devices documents: how many assets it holds now (`assetCount`).
    pub asset_count: Option<u64>,
}

impl Header {
    /// A Header with the agent's `instanceId`, `sender` and `version`, every other field
    /// `None` (set them with the `with_` methods), e.g. to write a document.
    ///
    /// ```
    /// use factorydash_mtconnect::Header;
    /// let header = Header::new(1_795_839_656, "vm", "2.7.0.9")
    ///     .with_buffer_size(1024)
    ///     .with_sequences(1, 1083, 1084);
    /// assert_eq!(header.next_sequence, Some(1084));
    /// ```
    pub fn new(instance_id: u64, sender: impl Into<String>, version: impl Into<String>) -> Self {
        Header {
            instance_id,
            sender: sender.into(),
            version: version.into(),
            ..Header::default()
        }
    }

    /// Sets `bufferSize`.
    #[must_use]
    pub fn with_buffer_size(mut self, buffer_size: u64) -> Self {
        self.buffer_size = Some(buffer_size);
        self
    }

    /// Sets `firstSequence`, `lastSequence` and `nextSequence`.
    #[must_use]
    pub fn with_sequences(mut self, first: u64, last: u64, next: u64) -> Self {
        self.first_sequence = Some(first);
        self.last_sequence = Some(last);
        self.next_sequence = Some(next);
        self
    }

    /// Sets `creationTime`.
    #[must_use]
    pub fn with_creation_time(mut self, time: DateTime<Utc>) -> Self {
        self.creation_time = Some(time);
        self
    }

    /// Sets `deviceModelChangeTime` (MTConnect 2.x).
    #[must_use]
    pub fn with_device_model_change_time(mut self, time: DateTime<Utc>) -> Self {
        self.device_model_change_time = Some(time);
        self
    }

    /// Reads the Header element's attributes. Bad numbers and times are reported and left
    /// `None` (a whole number beyond 2^64 − 1 as [`ProblemKind::OutOfRange`], which a
    /// client must take as an error of the answer); unknown attributes are ignored.
    pub(crate) fn parse(
        input: &[u8],
        e: &BytesStart<'_>,
        offset: u64,
        problems: &mut Vec<Problem>,
    ) -> Self {
        let mut h = Header::default();
        for attr in e.attributes().with_checks(false) {
            let Ok(attr) = attr else {
                problems.push(problem(
                    ProblemKind::Syntax,
                    offset,
                    "malformed attribute in Header",
                ));
                continue;
            };
            let key = attr.key.local_name();
            let Ok(value) = attr_value(input, &attr) else {
                problems.push(problem(
                    ProblemKind::InvalidAttribute,
                    offset,
                    "Header attribute is not UTF-8 text",
                ));
                continue;
            };
            h.set(key.as_ref(), &value, offset, problems);
        }
        h
    }

    /// Sets the Header attribute `key` from its text `value` (XML attributes, JSON members
    /// as text): bad numbers and times reported and left `None`, unknown keys ignored.
    pub(crate) fn set(
        &mut self,
        key: &[u8],
        value: &str,
        offset: u64,
        problems: &mut Vec<Problem>,
    ) {
        let h = self;
        let name = String::from_utf8_lossy(key);
        let number = |problems: &mut Vec<Problem>| match value.trim().parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) if crate::xml::is_whole_number(value.as_bytes()) => {
                problems.push(problem(
                    ProblemKind::OutOfRange,
                    offset,
                    format!("Header {name}=\"{value}\" is beyond 2^64 - 1"),
                ));
                None
            }
            Err(_) => {
                problems.push(problem(
                    ProblemKind::InvalidAttribute,
                    offset,
                    format!("Header {name}=\"{value}\" is not a whole number"),
                ));
                None
            }
        };
        let time = |problems: &mut Vec<Problem>| match parse_timestamp(value) {
            Some(t) => Some(t.utc),
            None => {
                problems.push(problem(
                    ProblemKind::InvalidAttribute,
                    offset,
                    format!("Header {name}=\"{value}\" is not a timestamp"),
                ));
                None
            }
        };
        match key {
            b"instanceId" => h.instance_id = number(problems).unwrap_or(0),
            b"sender" => value.clone_into(&mut h.sender),
            b"version" => value.clone_into(&mut h.version),
            b"bufferSize" => h.buffer_size = number(problems),
            b"nextSequence" => h.next_sequence = number(problems),
            b"firstSequence" => h.first_sequence = number(problems),
            b"lastSequence" => h.last_sequence = number(problems),
            b"assetBufferSize" => h.asset_buffer_size = number(problems),
            b"assetCount" => h.asset_count = number(problems),
            b"creationTime" => h.creation_time = time(problems),
            b"deviceModelChangeTime" => h.device_model_change_time = time(problems),
            _ => {}
        }
    }
}
