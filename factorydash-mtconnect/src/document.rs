//! Any MTConnect response document, recognised by its root element.

use quick_xml::events::Event;
use quick_xml::Reader;

use crate::assets::{parse_assets_with, Assets};
use crate::devices::{parse_devices_with, Devices};
use crate::error::{parse_error, Error, ErrorDocument};
use crate::problem::Parsed;
use crate::streams::{parse_streams_with, Streams};
use crate::xml::strip_bom;
use crate::ParseOptions;

/// A parsed MTConnect response document of any kind (MTConnect Part 1, "Response
/// Documents").
#[derive(Debug, Clone, PartialEq)]
pub enum Document<'a> {
    /// MTConnectStreams (`/current`, `/sample`).
    Streams(Parsed<Streams<'a>>),
    /// MTConnectDevices (`/probe`).
    Devices(Parsed<Devices>),
    /// MTConnectAssets (`/assets`).
    Assets(Parsed<Assets>),
    /// MTConnectError: the agent refused a request.
    Error(ErrorDocument),
}

/// Parses any MTConnect response document, choosing the parser by its root element.
///
/// # Errors
/// [`Error::UnexpectedRoot`] when the root is no MTConnect document; [`Error::Syntax`],
/// [`Error::IllFormed`] or [`Error::NoRoot`] when no root element can be read; [`Error::TooLarge`].
pub fn parse_document<'a>(input: &'a [u8], options: &ParseOptions) -> Result<Document<'a>, Error> {
    let stripped = strip_bom(input);
    let mut reader = Reader::from_reader(stripped);
    let root = loop {
        match reader.read_event() {
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => break e.local_name().as_ref().to_vec(),
            Ok(Event::Eof) => return Err(Error::NoRoot),
            Err(e) => return Err(Error::xml(e, reader.error_position(), Some(stripped))),
            Ok(_) => {}
        }
    };
    match root.as_slice() {
        b"MTConnectStreams" => parse_streams_with(input, options).map(Document::Streams),
        b"MTConnectDevices" => parse_devices_with(input, options).map(Document::Devices),
        b"MTConnectAssets" => parse_assets_with(input, options).map(Document::Assets),
        b"MTConnectError" => parse_error(input).map(Document::Error),
        other => Err(Error::UnexpectedRoot {
            expected: "an MTConnect document",
            found: String::from_utf8_lossy(other).into_owned(),
        }),
    }
}
