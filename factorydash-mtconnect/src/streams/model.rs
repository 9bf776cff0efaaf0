//! The public model of an MTConnectStreams document: [`Streams`] and what it holds, each
//! borrowing from the input (MTConnect Part 3, "Observation Information Model").

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use factorydash_core::{Category, ConditionLevel, ConditionState, Observation, Value};
use serde::Serialize;

use crate::header::Header;
use crate::problem::Problem;
use crate::xml::local_part;

/// A parsed MTConnectStreams document, borrowing from its input.
///
/// Observations are in document order (grouped by device and component, as agents write
/// them), not in sequence order; sort by [`ObservationRef::sequence`] where order matters.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Streams<'a> {
    /// The Header: `instanceId`, sequence range, creation time.
    pub header: Header,
    /// Every DeviceStream, in document order.
    pub device_streams: Vec<DeviceStream<'a>>,
    /// Every ComponentStream, in document order; each names its DeviceStream by index.
    pub component_streams: Vec<ComponentStream<'a>>,
    /// Every observation that parsed; each names its ComponentStream by index.
    pub observations: Vec<ObservationRef<'a>>,
}

/// A `DeviceStream`: the observations of one device (MTConnect Part 3, "DeviceStream").
/// In MTConnect 2.x the agent itself is a device (`Agent`) with a stream of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceStream<'a> {
    /// The device's `name`.
    pub name: Cow<'a, str>,
    /// The device's `uuid`, if given.
    pub uuid: Option<Cow<'a, str>>,
}

/// A `ComponentStream`: the observations of one component (MTConnect Part 3, "ComponentStream").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentStream<'a> {
    /// Index of the owning DeviceStream, counted in document order from 0.
    pub device_stream: usize,
    /// The component's element name in the device model (`component`), e.g. `Linear`.
    pub component: Cow<'a, str>,
    /// The component's `id` (`componentId`).
    pub component_id: Cow<'a, str>,
    /// The component's `name`, if given.
    pub name: Option<Cow<'a, str>>,
}

/// An observation's value, borrowed: `UNAVAILABLE` is its own variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ValueRef<'a> {
    /// `UNAVAILABLE`.
    Unavailable,
    /// The value text, surrounding XML whitespace (space, tab, CR, LF) trimmed. A DataSet
    /// or Table is written as `key=value` pairs separated by spaces (Table cells as
    /// `key={cell=value …}`, a removed entry as its bare key), as the agents' SHDR input
    /// writes them; the structured form is in [`ObservationExtra::entries`].
    Text(Cow<'a, str>),
}

impl ValueRef<'_> {
    /// The owned [`Value`].
    #[inline]
    pub fn to_value(&self) -> Value {
        match self {
            ValueRef::Unavailable => Value::Unavailable,
            ValueRef::Text(t) => Value::Text(t.as_ref().to_owned()),
        }
    }

    /// The text, or `None` when unavailable.
    #[inline]
    pub fn as_text(&self) -> Option<&str> {
        match self {
            ValueRef::Unavailable => None,
            ValueRef::Text(t) => Some(t),
        }
    }
}

/// How an observation's value is represented: MTConnect Part 2, "DataItem" attribute
/// `representation`, which Part 3 reflects in the element name's suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum Representation {
    /// One value (a number, a vector such as `PathPosition`'s `x y z`, or a string).
    Value,
    /// `…TimeSeries`: `sampleCount` numbers separated by spaces, at `sampleRate` Hz.
    TimeSeries,
    /// `…DataSet`: key-value `Entry` elements.
    DataSet,
    /// `…Table`: `Entry` elements of key-value `Cell`s.
    Table,
}

/// A DataSet or Table `Entry` (MTConnect Part 3, "DataSet", "Table").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryRef<'a> {
    /// The entry's `key`.
    pub key: Cow<'a, str>,
    /// `removed="true"`: the key was removed from the set.
    pub removed: bool,
    /// The entry's value (a DataSet's; empty for a Table entry).
    pub value: Cow<'a, str>,
    /// A Table entry's cells: `(key, value)`.
    pub cells: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

/// One observation, borrowed from the document: MTConnect Part 3, "Observation" (Sample,
/// Event or Condition).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservationRef<'a> {
    /// Index of the ComponentStream, counted in document order from 0.
    pub component_stream: usize,
    /// Sample, Event or Condition (the container the element was found in).
    pub category: Category,
    /// The element name as written, e.g. `Position` or `x:Motion`. For a Condition it is
    /// the level (`Normal`, `Warning`, `Fault`, `Unavailable`).
    pub element: Cow<'a, str>,
    /// `dataItemId`.
    pub data_item_id: Cow<'a, str>,
    /// `name`, if given.
    pub name: Option<Cow<'a, str>>,
    /// `subType`, if given.
    pub sub_type: Option<Cow<'a, str>>,
    /// The `type` attribute (Conditions carry the data item's type here, e.g. `SYSTEM`).
    pub type_attribute: Option<Cow<'a, str>>,
    /// `timestamp`, converted to UTC.
    pub timestamp: DateTime<Utc>,
    /// `sequence`.
    pub sequence: u64,
    /// The value (a Condition's message text).
    pub value: ValueRef<'a>,
    /// A Sample's value as a number, when it is one number (`None` for vectors, time
    /// series, `UNAVAILABLE`, and values that do not parse, which are reported).
    pub number: Option<f64>,
    /// Conditions only: the level.
    pub level: Option<ConditionLevel>,
    /// `nativeCode`, if given.
    pub native_code: Option<Cow<'a, str>>,
    /// `qualifier`, if given (`HIGH`, `LOW`).
    pub qualifier: Option<Cow<'a, str>>,
    /// What few observations carry (extension namespace, statistics, TIME_SERIES,
    /// DataSet/Table entries, unknown attributes), out of line: `None` when there is none.
    /// Read it with [`ObservationRef::extra`].
    pub extra: Option<Box<ObservationExtra<'a>>>,
}

/// The rarely present parts of an observation (see [`ObservationRef::extra`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservationExtra<'a> {
    /// The namespace URI of a prefixed (extension) element, e.g.
    /// `urn:nist.gov:NistStreams:1.3` for `x:Motion`; `None` for MTConnect's own elements
    /// and for an undeclared prefix (reported as a problem).
    pub namespace: Option<Cow<'a, str>>,
    /// `nativeSeverity`, if given.
    pub native_severity: Option<Cow<'a, str>>,
    /// `compositionId`, if given.
    pub composition_id: Option<Cow<'a, str>>,
    /// `statistic` (`AVERAGE`, `MAXIMUM`, …), if given.
    pub statistic: Option<Cow<'a, str>>,
    /// `duration` of a statistic, in seconds, if given.
    pub duration: Option<f64>,
    /// `resetTriggered` (`ACTION_COMPLETE`, `DAY`, …), if given.
    pub reset_triggered: Option<Cow<'a, str>>,
    /// A TIME_SERIES' `sampleCount`, if given.
    pub sample_count: Option<u64>,
    /// A TIME_SERIES' `sampleRate` in Hz, if given.
    pub sample_rate: Option<f64>,
    /// A DataSet's or Table's `count`, if given.
    pub count: Option<u64>,
    /// A DataSet's or Table's entries, in document order (empty otherwise).
    pub entries: Vec<EntryRef<'a>>,
    /// Every other attribute, as written (e.g. an Alarm's `code`, `state`, `severity`, an
    /// `assetType`, vendor attributes): nothing the agent sent is dropped.
    pub other_attributes: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

static NO_EXTRA: ObservationExtra<'static> = ObservationExtra {
    namespace: None,
    native_severity: None,
    composition_id: None,
    statistic: None,
    duration: None,
    reset_triggered: None,
    sample_count: None,
    sample_rate: None,
    count: None,
    entries: Vec::new(),
    other_attributes: Vec::new(),
};

impl<'a> ObservationRef<'a> {
    /// The rarely present parts: extension namespace, `nativeSeverity`, `compositionId`,
    /// statistic and duration, `resetTriggered`, TIME_SERIES `sampleCount`/`sampleRate`,
    /// DataSet/Table `count` and entries, other attributes (all empty when absent).
    #[inline]
    pub fn extra(&self) -> &ObservationExtra<'a> {
        self.extra.as_deref().unwrap_or(&NO_EXTRA)
    }

    #[inline]
    pub(super) fn extra_mut(&mut self) -> &mut ObservationExtra<'a> {
        self.extra.get_or_insert_with(Default::default)
    }

    /// The observation's type in its element-name form, as
    /// [`Observation::kind`](factorydash_core::Observation::kind) holds it: the element's
    /// name for Samples and Events (prefix kept, e.g. `x:Motion`), borrowed; for a
    /// Condition its `type` attribute in the same form (`SYSTEM` → `System`,
    /// [`factorydash_core::element_name`]), made anew. The attribute as written is
    /// [`ObservationRef::type_attribute`].
    #[inline]
    pub fn kind(&self) -> Cow<'a, str> {
        match (&self.category, &self.type_attribute) {
            (Category::Condition, Some(t)) => Cow::Owned(factorydash_core::element_name(t)),
            _ => self.element.clone(),
        }
    }

    /// The element's local name, without a namespace prefix.
    #[inline]
    pub fn local_name(&self) -> &str {
        local_part(&self.element)
    }

    /// The representation, from the element name's suffix (MTConnect Part 3).
    #[inline]
    pub fn representation(&self) -> Representation {
        representation_of(self.local_name())
    }
}

/// The representation of an element named `name` (with or without its prefix): by its
/// suffix, looked at only when its last letter could end one.
#[inline]
pub(crate) fn representation_of(name: &str) -> Representation {
    match name.as_bytes().last() {
        Some(b's') if name.ends_with("TimeSeries") => Representation::TimeSeries,
        Some(b't') if name.ends_with("DataSet") => Representation::DataSet,
        Some(b'e') if name.ends_with("Table") => Representation::Table,
        _ => Representation::Value,
    }
}

impl<'a> Streams<'a> {
    /// The owned [`Observation`] of `obs`, with its device and component.
    ///
    /// # Panics
    /// When `obs` does not come from this document (its component index is out of range).
    pub fn to_observation(&self, obs: &ObservationRef<'a>) -> Observation {
        let component = &self.component_streams[obs.component_stream];
        let device = &self.device_streams[component.device_stream];
        owned_observation(&device.name, &component.component_id, obs)
    }

    /// Every observation, owned, in document order.
    pub fn to_observations(&self) -> Vec<Observation> {
        self.observations
            .iter()
            .map(|o| self.to_observation(o))
            .collect()
    }
}

/// The owned observation of `obs` from device `device`, component `component_id`.
pub fn owned_observation(
    device: &str,
    component_id: &str,
    obs: &ObservationRef<'_>,
) -> Observation {
    Observation {
        sequence: obs.sequence,
        timestamp: obs.timestamp,
        device: device.to_owned(),
        component_id: component_id.to_owned(),
        data_item_id: obs.data_item_id.as_ref().to_owned(),
        name: obs.name.as_deref().map(str::to_owned),
        category: obs.category,
        kind: obs.kind().into_owned(),
        sub_type: obs.sub_type.as_deref().map(str::to_owned),
        value: obs.value.to_value(),
        condition: obs.level.map(|level| ConditionState {
            level,
            native_code: obs.native_code.as_deref().map(str::to_owned),
            native_severity: obs.extra().native_severity.as_deref().map(str::to_owned),
            qualifier: obs.qualifier.as_deref().map(str::to_owned),
        }),
    }
}

/// One item of a Streams document, in document order.
// Observations are nearly every item: boxing them would allocate once per observation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub enum StreamsItem<'a> {
    /// The Header.
    Header(Header),
    /// A DeviceStream begins; the observations until the next one belong to it.
    DeviceStream(DeviceStream<'a>),
    /// A ComponentStream begins.
    ComponentStream(ComponentStream<'a>),
    /// An observation of the last ComponentStream.
    Observation(ObservationRef<'a>),
    /// A problem; after a [`ProblemKind::Syntax`](crate::ProblemKind::Syntax) problem nothing
    /// follows.
    Problem(Problem),
}
