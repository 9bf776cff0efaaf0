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

use crate::error::Error;
use crate::problem::Parsed;
use crate::ParseOptions;

mod fast;
mod json;
mod machine;
mod model;
mod number;
mod reader;

pub use json::{parse_streams_json, parse_streams_json_with};
use machine::Out;
pub(crate) use model::representation_of;
pub use model::{
    owned_observation, ComponentStream, DeviceStream, EntryRef, ObservationExtra, ObservationRef,
    Representation, Streams, StreamsItem, ValueRef,
};
pub use reader::{StreamsBufReader, StreamsReader};

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

#[cfg(test)]
mod tests {
    #[test]
    fn every_key_is_found_by_its_one_name() {
        use super::fast::Key;
        for (i, name) in Key::NAMES.iter().enumerate() {
            let key = Key::of(name.as_bytes()).expect("a key");
            assert_eq!(key as usize, i);
            let mut tag = name.as_bytes().to_vec();
            tag.extend_from_slice(b"=\"1\"");
            assert_eq!(Key::at(&tag), Some((key, name.len())));
            assert_eq!(Key::at(name.as_bytes()), None, "no `=`");
        }
        assert_eq!(Key::of(b"dataItemID"), None);
        assert_eq!(Key::at(b"names=\"x\""), None);
    }

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
            assert_eq!(super::number::all_numbers(text), want, "{text:?}");
        }
    }

    #[test]
    fn plain_decimal_reads_what_f64_reads() {
        use super::number::Decimal;
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
            match super::number::plain_decimal(t.as_bytes()) {
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
        use super::fast::tag_close;
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
                assert_eq!(crate::xml::find_byte(&hay, b'"'), want, "{len} {at}");
            }
        }
    }
}
