//! Domain types shared by the factorydash crates.
//!
//! ```
//! use factorydash_core::{Category, Value, page::Cursor};
//!
//! // An observation value: `UNAVAILABLE` is its own value, not a string.
//! let v = Value::from_text("UNAVAILABLE");
//! assert!(v.is_unavailable());
//! assert_eq!(Value::from_text("12.5").as_f64(), Some(12.5));
//!
//! // Keyset cursors are opaque strings that round-trip their key.
//! let c = Cursor::from_key(&["GFAgie01", "GFAgie01-dtop_1"]);
//! assert_eq!(c.key().unwrap(), vec!["GFAgie01", "GFAgie01-dtop_1"]);
//! assert_eq!(Category::Sample.as_str(), "SAMPLE");
//! ```
//!
//! # What lives here
//! - [`Observation`], [`Value`], [`Category`], [`ConditionLevel`]: one MTConnect
//!   observation as every other crate passes it around (MTConnect Part 3, Streams).
//! - [`DeviceInfo`] and [`DataItemInfo`]: the flattened device model (MTConnect Part 2).
//! - [`Batch`] and [`ResumePoint`]: what an ingest hands the store in one transaction.
//! - [`page`]: keyset pagination (no `OFFSET` anywhere).
//! - [`window`]: time windows over UTC timestamps.
//! - [`pace`]: the schedule of a recording replayed at its own pace.
//! - [`episodes`]: Condition episodes (when each Warning or Fault began and ended);
//!   [`states`]: state intervals and utilization; [`downsample`]: LTTB and buckets.
//! - [`layout`]: the plant's cells and lines, and which cell a device belongs to.
//! - [`limits`]: the limits a device model sets on a data item's values (MTConnect
//!   Part 2, Constraints and Specifications), for charts.
//! - [`summary`]: summaries kept as data arrives (seconds per state, Fault and Warning
//!   seconds, parts, per minute, hour and day); [`shifts`]: the plant's shift calendar;
//!   [`oee`]: OEE and its factors by ISO 22400-2; [`downtime`]: the downtime Pareto;
//!   [`reasons`]: operators' reasons for stops.
//! - [`tools`]: cutting tools (MTConnect Part 4, CuttingTool assets) and when one is
//!   near its life limit.
//!
//! # Architecture invariant
//! This crate does no I/O, no async and knows no wire format: everything here is a
//! plain value that the parser, the stores and the server share.

pub mod accounts;
pub mod alarms;
pub mod downsample;
pub mod downtime;
pub mod episodes;
pub mod layout;
pub mod limits;
pub mod oee;
pub mod pace;
pub mod page;
pub mod reasons;
pub mod records;
pub mod shifts;
pub mod states;
pub mod status;
pub mod summary;
pub mod tools;
pub mod window;

mod model;
mod observation;

pub use model::{DataItemInfo, DeviceInfo, DeviceKey};
pub use observation::{
    data_item_type, element_name, Batch, Category, ConditionLevel, ConditionState, Gap,
    Observation, ParseEnumError, ResumePoint, Value,
};
pub use page::{Cursor, Page, PageRequest};
pub use status::{ActiveCondition, DeviceState, DeviceStatus, ShiftFigures};
pub use window::TimeWindow;
