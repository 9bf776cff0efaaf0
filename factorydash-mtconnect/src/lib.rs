//! MTConnect for Rust: read what machine tools publish.
//!
//! MTConnect (ANSI/MTC1.4-2018, <https://www.mtconnect.org>) is the open standard through
//! which CNC machines publish their data. An *Agent* serves XML documents over HTTP:
//! `/probe` answers an **MTConnectDevices** document (the device model: Devices,
//! Components, DataItems; Part 2), `/current` and `/sample` answer **MTConnectStreams**
//! documents (Observations: Samples, Events, Conditions; Part 3), `/assets` answers an
//! **MTConnectAssets** document (cutting tools and other assets; Part 4, read by
//! [`parse_assets`] into [`CuttingTool`]s), and a refused request gets an
//! **MTConnectError** document (Part 1).
//!
//! ```
//! use factorydash_mtconnect::{parse_streams, ValueRef};
//!
//! let xml = br#"<?xml version="1.0"?>
//! <MTConnectStreams xmlns="urn:mtconnect.org:MTConnectStreams:1.3">
//!   <Header instanceId="1475083573" sender="agent" version="1.3.0.17" bufferSize="131072"
//!           nextSequence="62" firstSequence="1" lastSequence="61"/>
//!   <Streams><DeviceStream name="GFAgie01" uuid="mtc_adapter001">
//!     <ComponentStream component="Device" name="GFAgie01" componentId="GFAgie01">
//!       <Events>
//!         <Availability dataItemId="GFAgie01-dtop_1" timestamp="2016-05-02T14:43:13.544496Z"
//!                       name="avail" sequence="61">AVAILABLE</Availability>
//!       </Events>
//!       <Condition>
//!         <Normal dataItemId="GFAgie01-dtop_3" timestamp="2016-05-02T14:43:13.544449Z"
//!                 name="system" sequence="60" type="SYSTEM"/>
//!       </Condition>
//!     </ComponentStream>
//!   </DeviceStream></Streams>
//! </MTConnectStreams>"#;
//!
//! let parsed = parse_streams(xml)?;
//! let doc = &parsed.value;
//! assert_eq!(doc.header.next_sequence, Some(62));
//! let avail = &doc.observations[0];
//! assert_eq!((avail.sequence, avail.kind().as_ref()), (61, "Availability"));
//! assert_eq!(avail.value, ValueRef::Text("AVAILABLE".into()));
//! // A Condition's type, in the element-name form every observation's type has:
//! assert_eq!(doc.observations[1].kind(), "System");
//! # Ok::<(), factorydash_mtconnect::Error>(())
//! ```
//!
//! # Behavior
//! - **Lenient, never lossy.** Real agents send BOMs, stylesheet instructions, single-quoted
//!   attributes, timestamps without `Z`, undeclared namespace prefixes. All parse; what is
//!   off is listed in [`Parsed::problems`]. One bad observation is skipped and reported;
//!   it never loses the rest of the document.
//! - **Borrowing.** [`parse_streams`] returns [`Streams`] whose strings borrow from the
//!   input; [`Streams::to_observations`] gives owned [`factorydash_core::Observation`]s.
//! - **Bounded.** [`ParseOptions`] caps document size and element depth.
//! - **Fast.** The plain observation element and the DeviceStream/ComponentStream
//!   structure around it are read in one pass without quick-xml's event machinery (every
//!   other shape goes through quick-xml, with the same result): on one core, a 1.6 MB NIST
//!   `/sample` page parses at about two thirds of the speed of a bare quick-xml event loop
//!   over the same bytes (`benches/parse.rs`).
//!
//! # Errors
//! A document that cannot be read at all is an [`Error`], which keeps its source: `Io`
//! (the reader failed), `Syntax` and `IllFormed` (broken XML before the root element, with
//! its [`Position`]), `NoRoot`, `UnexpectedRoot`, `TooLarge`, and `Agent` (the agent's
//! MTConnectError document). Anything wrong *inside* a document is a [`Problem`] beside
//! the result ([`Problem::position_in`] gives its line and column).
//!
//! # Examples
//! The crate's `examples/` are recipes to run: `parse_file` (a Streams document's
//! observations), `device_tree` (a Devices document), `follow_agent` (follow a live agent;
//! feature `client`), e.g. `cargo run -p factorydash-mtconnect --example parse_file -- FILE`.
//!
//! # Features
//! | feature | default | what it adds |
//! |---|---|---|
//! | `client` | yes | [`client::AgentClient`] and [`client::Follower`] on reqwest and tokio |
//!
//! Parser-only users: `default-features = false`. On docs.rs, items that need a feature
//! say so.
//!
//! The owned types of [`factorydash_core`] that appear in this crate's signatures
//! ([`Observation`], [`Value`], [`Batch`], [`Gap`], [`ResumePoint`], [`DeviceInfo`],
//! [`CuttingTool`], …) are
//! re-exported here: this crate is the only dependency a user needs.

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod assets;
pub mod devices;
pub mod document;
pub mod error;
pub mod header;
pub mod json;
pub mod multipart;
pub mod problem;
pub mod recording;
pub mod shdr;
pub mod streams;
pub mod time;
pub mod write;

#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub mod client;

mod xml;

pub use assets::{parse_assets, parse_assets_with, Asset, Assets};
pub use devices::{
    parse_devices, parse_devices_with, Component, Composition, Constraints, DataItem, Description,
    Devices, ItemLimits, Specification, SpecificationLimit,
};
pub use document::{parse_document, Document};
pub use error::{
    parse_error, AgentError, Error, ErrorCode, ErrorDocument, QueryParameter, XmlError,
};
pub use factorydash_core::limits::{Limit, LimitKind, LimitSource};
pub use factorydash_core::tools::{
    CountDirection, CuttingItem, CuttingTool, ToolLife, ToolLifeKind, ToolLocation,
};
pub use factorydash_core::{
    Batch, Category, ConditionLevel, ConditionState, DataItemInfo, DeviceInfo, Gap, Observation,
    ResumePoint, Value,
};
pub use header::Header;
pub use json::{parse_error_json, write_error_json, JsonVersion};
pub use problem::{Parsed, Position, Problem, ProblemKind};
pub use recording::{Recording, RecordingError};
pub use streams::{
    owned_observation, parse_streams, parse_streams_json, parse_streams_json_with,
    parse_streams_with, ComponentStream, DeviceStream, EntryRef, ObservationExtra, ObservationRef,
    Representation, Streams, StreamsBufReader, StreamsItem, StreamsReader, ValueRef,
};
pub use write::{
    write_devices, write_error, write_error_document, write_streams, ErrorForm, StreamsWriter,
};

/// Limits the parsers apply, so that no input can make them allocate without bound.
///
/// ```
/// let options = factorydash_mtconnect::ParseOptions::new()
///     .with_max_document_bytes(16 << 20)
///     .with_max_depth(32);
/// assert_eq!(options.max_depth, 32);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParseOptions {
    /// The largest document accepted, in bytes. Default 256 MiB.
    pub max_document_bytes: usize,
    /// The deepest element nesting followed; deeper elements are skipped and reported.
    /// Default 64 (real documents nest under 15).
    pub max_depth: usize,
}

impl ParseOptions {
    /// The default limits (as [`ParseOptions::default`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the largest document accepted, in bytes.
    #[must_use]
    pub fn with_max_document_bytes(mut self, bytes: usize) -> Self {
        self.max_document_bytes = bytes;
        self
    }

    /// Sets the deepest element nesting followed.
    #[must_use]
    pub fn with_max_depth(mut self, depth: usize) -> Self {
        self.max_depth = depth;
        self
    }
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            max_document_bytes: 256 << 20,
            max_depth: 64,
        }
    }
}
