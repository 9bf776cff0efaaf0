//! MTConnectDevices documents, the answer to `/probe`: MTConnect Part 2, "Device
//! Information Model".

use std::collections::HashMap;

use factorydash_core::limits::{Limit, LimitKind, LimitSource};
use factorydash_core::{Category, DataItemInfo, DeviceInfo};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use serde::Serialize;

use crate::error::{parse_error_root, Error};
use crate::header::Header;
use crate::problem::{Parsed, Problem, ProblemKind};
use crate::xml::{attr_value, element_name, problem};
use crate::ParseOptions;

/// A parsed MTConnectDevices document (owned: probes are small).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Devices {
    /// The Header.
    pub header: Header,
    /// The devices, including the MTConnect 2.x `Agent` device, in document order.
    pub devices: Vec<Component>,
}

/// A Device or Component: MTConnect Part 2, "Component" (a Device is the top component).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    /// The element name: `Device`, `Agent`, `Linear`, `Controller`, `Path`, or an
    /// extension element as written (`x:Pump`).
    pub element: String,
    /// The `id`.
    pub id: String,
    /// The `name`, if any.
    pub name: Option<String>,
    /// The `uuid` (devices), if any.
    pub uuid: Option<String>,
    /// The `Description`, if any (Part 2, "Description").
    pub description: Option<Description>,
    /// The `Compositions` (Part 2, "Composition"): the parts of the component that data
    /// items refer to with `compositionId`.
    pub compositions: Vec<Composition>,
    /// The data items directly under this component (`DataItems`).
    pub data_items: Vec<DataItem>,
    /// The components directly under this component (`Components`).
    pub components: Vec<Component>,
    /// Its `Configuration/Specifications` (Part 2, "Specifications"), in document
    /// order, at most [`MAX_SPECIFICATIONS`] (the rest reported and ignored). Left out
    /// of the JSON when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub specifications: Vec<Specification>,
}

/// A data item's limits, for charts: its `id` and its limits from the top down (see
/// [`Component::data_item_limits`]).
pub type ItemLimits = (String, Vec<Limit>);

/// How many `Specification`s and `ProcessSpecification`s of one component are kept.
pub const MAX_SPECIFICATIONS: usize = 256;

/// How many limits of one specification are kept (the rest reported and ignored): a
/// `ProcessSpecification` has at most seven limits in each of its three groups.
pub const MAX_SPECIFICATION_LIMITS: usize = 24;

/// The longest attribute of a specification (`id`, `name`, `units`, …), in bytes: a
/// specification with a longer one is reported and skipped (each of its limits copies
/// some of them onto every data item it applies to).
pub const MAX_SPECIFICATION_TEXT: usize = 256;

/// The most limits [`Component::data_item_limits`] gives one data item, and the most
/// specifications it considers for one (whatever a hostile device model holds).
pub const MAX_LIMITS_PER_ITEM: usize = 32;

/// A component's `Specification` or, since MTConnect 1.8, `ProcessSpecification`
/// (MTConnect Part 2, "Specifications"): the design limits of a kind of value of the
/// component (`type`, `subType`, as a DataItem's), or of one data item (`dataItemIdRef`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Specification {
    /// The element name: `Specification` or `ProcessSpecification`.
    pub element: String,
    /// The `id`.
    pub id: String,
    /// The `type`, a DataItem type (`LENGTH`, `ANGLE`, `TEMPERATURE`, …).
    pub kind: String,
    /// The `subType`, if any.
    pub sub_type: Option<String>,
    /// The `dataItemIdRef`: the data item it is about, if it names one.
    pub data_item_id_ref: Option<String>,
    /// The `compositionIdRef`: the composition it is about, if any.
    pub composition_id_ref: Option<String>,
    /// The `units` of its values (MTConnect units), if given.
    pub units: Option<String>,
    /// The `name`, if any.
    pub name: Option<String>,
    /// The `originator` (`MANUFACTURER` or `USER`), if given.
    pub originator: Option<String>,
    /// Its limits in document order: a `Specification`'s own children, or a
    /// `ProcessSpecification`'s, each with its group. A value that is not a number is
    /// reported and left out.
    pub limits: Vec<SpecificationLimit>,
}

/// One value of a [`Specification`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpecificationLimit {
    /// Which limit (the element's name); serialised as `type`.
    #[serde(rename = "type")]
    pub kind: LimitKind,
    /// Its value, finite, in the specification's `units`.
    pub value: f64,
    /// A `ProcessSpecification`'s group: `ControlLimits`, `SpecificationLimits` or
    /// `AlarmLimits`; `None` in a `Specification`.
    pub group: Option<&'static str>,
}

/// A component's `Description` (MTConnect Part 2, "Description").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Description {
    /// `manufacturer`, if given.
    pub manufacturer: Option<String>,
    /// `model`, if given.
    pub model: Option<String>,
    /// `serialNumber`, if given.
    pub serial_number: Option<String>,
    /// `station`, if given.
    pub station: Option<String>,
    /// The free text, trimmed (empty if none).
    pub text: String,
}

/// A `Composition` of a component (MTConnect Part 2, "Composition"), e.g. a motor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Composition {
    /// The `id`.
    pub id: String,
    /// The `type`, e.g. `MOTOR`.
    pub kind: String,
    /// The `name`, if any.
    pub name: Option<String>,
}

/// A DataItem's `Constraints` (MTConnect Part 2, "Constraints").
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Constraints {
    /// The allowed values (`Value` elements), if listed.
    pub values: Vec<String>,
    /// `Minimum`, if given.
    pub minimum: Option<f64>,
    /// `Maximum`, if given.
    pub maximum: Option<f64>,
    /// `Nominal`, if given.
    pub nominal: Option<f64>,
}

/// A DataItem: MTConnect Part 2, "DataItem".
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DataItem {
    /// The `id`, unique within the agent; observations refer to it as `dataItemId`.
    pub id: String,
    /// The `name`, if any.
    pub name: Option<String>,
    /// The `type`, e.g. `POSITION` (or `x:MOTION` for an extension).
    pub kind: String,
    /// The `subType`, if any.
    pub sub_type: Option<String>,
    /// The `category`: `SAMPLE`, `EVENT` or `CONDITION`. `None` if missing or unknown
    /// (reported as a problem).
    pub category: Option<Category>,
    /// The `units`, if any (MTConnect units, e.g. `MILLIMETER`).
    pub units: Option<String>,
    /// The `nativeUnits`, if any.
    pub native_units: Option<String>,
    /// The `representation` (`VALUE`, `TIME_SERIES`, `DATA_SET`, `TABLE`), if given.
    pub representation: Option<String>,
    /// The `statistic`, if any.
    pub statistic: Option<String>,
    /// The `coordinateSystem`, if any.
    pub coordinate_system: Option<String>,
    /// The `compositionId`, if any.
    pub composition_id: Option<String>,
    /// The `significantDigits`, if given.
    pub significant_digits: Option<u32>,
    /// The `sampleRate` in Hz (TIME_SERIES), if given.
    pub sample_rate: Option<f64>,
    /// `discrete="true"`: every observation is a new event even when the value repeats.
    pub discrete: bool,
    /// The `Constraints`, if any.
    pub constraints: Option<Constraints>,
}

impl Component {
    /// This component and all below it, depth first, each with its path of ancestors'
    /// ids (this component's own id last).
    pub fn walk(&self) -> Vec<(Vec<&str>, &Component)> {
        let mut out = Vec::new();
        fn go<'c>(
            c: &'c Component,
            path: &mut Vec<&'c str>,
            out: &mut Vec<(Vec<&'c str>, &'c Component)>,
        ) {
            path.push(&c.id);
            out.push((path.clone(), c));
            for child in &c.components {
                go(child, path, out);
            }
            path.pop();
        }
        go(self, &mut Vec::new(), &mut out);
        out
    }

    /// The limits of the data items of this component and all below it, for charts:
    /// each data item with limits, by `id`, in document order, with its limits from
    /// the top down ([`LimitKind`]'s order).
    ///
    /// A data item's own `Constraints` (`Minimum`, `Maximum`, `Nominal`) are
    /// [`LimitSource::Constraints`]. A component's specification applies
    /// ([`LimitSource::Specification`]) to the data item its `dataItemIdRef` names
    /// (anywhere below this component), else to the component's own data items of its
    /// `type`, of its `subType` when it gives one and of its `compositionIdRef` when it
    /// gives one; never to a CONDITION (MTConnect Part 2, "Specification": "`type`: same
    /// as DataItem `type`"). Only numbers are limits: a Constraints' `Value` list is not.
    ///
    /// Bounded whatever the document: the specifications that name a data item are found
    /// by its id (not by trying each on every data item), at most
    /// [`MAX_SPECIFICATIONS`] are considered for one data item, and it gets at most
    /// [`MAX_LIMITS_PER_ITEM`] limits.
    pub fn data_item_limits(&self) -> Vec<ItemLimits> {
        let all = self.walk();
        let mut by_ref: HashMap<&str, Vec<&Specification>> = HashMap::new();
        for (_, owner) in &all {
            for spec in &owner.specifications {
                if let Some(r) = &spec.data_item_id_ref {
                    by_ref.entry(r.as_str()).or_default().push(spec);
                }
            }
        }
        let mut out: Vec<ItemLimits> = Vec::new();
        for (_, c) in &all {
            for d in &c.data_items {
                let mut limits = Vec::new();
                if let Some(k) = &d.constraints {
                    for (kind, value) in [
                        (LimitKind::Maximum, k.maximum),
                        (LimitKind::Nominal, k.nominal),
                        (LimitKind::Minimum, k.minimum),
                    ] {
                        if let Some(v) = value.filter(|v| v.is_finite()) {
                            limits.push(Limit::new(kind, v, LimitSource::Constraints));
                        }
                    }
                }
                let named = by_ref.get(d.id.as_str()).into_iter().flatten().copied();
                let own = c
                    .specifications
                    .iter()
                    .filter(|s| s.data_item_id_ref.is_none() && s.applies_to(c, c, d));
                let limits_of_specs = named.chain(own).take(MAX_SPECIFICATIONS).flat_map(|spec| {
                    spec.limits.iter().map(move |l| Limit {
                        specification_id: Some(spec.id.clone()),
                        name: spec.name.clone(),
                        group: l.group.map(str::to_owned),
                        units: spec.units.clone(),
                        ..Limit::new(l.kind, l.value, LimitSource::Specification)
                    })
                });
                let room = MAX_LIMITS_PER_ITEM.saturating_sub(limits.len());
                limits.extend(limits_of_specs.take(room));
                if !limits.is_empty() {
                    limits.sort_by_key(|l| l.kind);
                    out.push((d.id.clone(), limits));
                }
            }
        }
        out
    }
}

impl Specification {
    /// Whether this specification of component `owner` is about data item `d` of
    /// component `c` (see [`Component::data_item_limits`]).
    fn applies_to(&self, owner: &Component, c: &Component, d: &DataItem) -> bool {
        if let Some(r) = &self.data_item_id_ref {
            return *r == d.id;
        }
        std::ptr::eq(owner, c)
            && d.category != Some(Category::Condition)
            && d.kind == self.kind
            && self
                .sub_type
                .as_ref()
                .is_none_or(|s| d.sub_type.as_ref() == Some(s))
            && self
                .composition_id_ref
                .as_ref()
                .is_none_or(|s| d.composition_id.as_ref() == Some(s))
    }
}

impl Devices {
    /// The devices flattened for the stores and the dashboard, tagged with `agent` (the
    /// agent's base URL). Data items without a known category are left out.
    pub fn device_infos(&self, agent: &str) -> Vec<DeviceInfo> {
        self.devices
            .iter()
            .map(|device| DeviceInfo {
                agent: agent.to_owned(),
                name: device.name.clone().unwrap_or_else(|| device.id.clone()),
                uuid: device.uuid.clone(),
                id: device.id.clone(),
                data_items: device
                    .walk()
                    .into_iter()
                    .flat_map(|(_, c)| {
                        c.data_items.iter().filter_map(move |d| {
                            Some(DataItemInfo {
                                id: d.id.clone(),
                                name: d.name.clone(),
                                category: d.category?,
                                kind: d.kind.clone(),
                                sub_type: d.sub_type.clone(),
                                units: d.units.clone(),
                                component: c.element.clone(),
                                component_id: c.id.clone(),
                                component_name: c.name.clone(),
                            })
                        })
                    })
                    .collect(),
            })
            .collect()
    }

    /// The data item with this `id` and the path of component ids to it, if any.
    pub fn data_item(&self, id: &str) -> Option<(Vec<&str>, &DataItem)> {
        self.devices
            .iter()
            .flat_map(Component::walk)
            .find_map(|(path, c)| c.data_items.iter().find(|d| d.id == id).map(|d| (path, d)))
    }

    /// Each device's data items with limits ([`Component::data_item_limits`]), by the
    /// device's name (its `id` when it has none, as in [`Devices::device_infos`]).
    pub fn limits(&self) -> Vec<(String, Vec<ItemLimits>)> {
        self.devices
            .iter()
            .map(|d| {
                (
                    d.name.clone().unwrap_or_else(|| d.id.clone()),
                    d.data_item_limits(),
                )
            })
            .collect()
    }

    /// The component with this `id`, if any.
    pub fn component(&self, id: &str) -> Option<&Component> {
        self.devices
            .iter()
            .flat_map(Component::walk)
            .find_map(|(_, c)| (c.id == id).then_some(c))
    }
}

#[derive(Clone, Copy)]
enum ConstraintField {
    Value,
    Minimum,
    Maximum,
    Nominal,
}

enum Frame {
    /// `Devices`, or a component's `Components`: children are components.
    ComponentList,
    /// A component; its index path is the stack of Component frames.
    Component,
    /// `DataItems`: children are data items.
    DataItemList,
    /// A DataItem: `Constraints` may follow.
    DataItem,
    /// A DataItem's `Constraints`.
    Constraints,
    /// A `Value`, `Minimum`, `Maximum` or `Nominal` of Constraints: text follows.
    ConstraintText(ConstraintField),
    /// A component's `Description`: text follows.
    Description,
    /// A component's `Compositions`.
    CompositionList,
    /// A component's `Configuration`.
    Configuration,
    /// Its `Specifications`.
    Specifications,
    /// A `Specification` or `ProcessSpecification` that was kept.
    Specification,
    /// A `ProcessSpecification`'s `ControlLimits`, `SpecificationLimits` or `AlarmLimits`.
    LimitGroup(&'static str),
    /// A limit of a specification: text follows.
    LimitText(LimitKind, Option<&'static str>),
    /// Anything else (Description, Configuration, DataItem content, …): skipped.
    Other,
}

/// Parses an MTConnectDevices document.
///
/// # Errors
/// [`Error::Agent`] for an MTConnectError; [`Error::UnexpectedRoot`] for another
/// document; [`Error::Syntax`], [`Error::IllFormed`] or [`Error::NoRoot`] when no root element can be read;
/// [`Error::TooLarge`] past [`ParseOptions::max_document_bytes`].
pub fn parse_devices(input: &[u8]) -> Result<Parsed<Devices>, Error> {
    parse_devices_with(input, &ParseOptions::default())
}

/// Parses an MTConnectDevices document with explicit limits. See [`parse_devices`].
///
/// # Errors
/// As [`parse_devices`].
pub fn parse_devices_with(input: &[u8], options: &ParseOptions) -> Result<Parsed<Devices>, Error> {
    let input = crate::xml::document_input(input, options)?;
    let mut reader = Reader::from_reader(input);
    let mut doc = Devices::default();
    let mut problems = Vec::new();
    // Whether the open specification's limits past MAX_SPECIFICATION_LIMITS were reported.
    let mut limits_full = false;
    let mut stack: Vec<Frame> = Vec::new();
    // The components being built, outermost first, parallel to the Component frames.
    let mut open: Vec<Component> = Vec::new();
    let mut root_seen = false;
    let mut text = String::new();
    loop {
        let offset = reader.buffer_position();
        let (e, empty) = match reader.read_event() {
            Ok(Event::Start(e)) => (e, false),
            Ok(Event::Empty(e)) => (e, true),
            Ok(Event::End(_)) => {
                match stack.pop() {
                    Some(Frame::Component) => close_component(&mut open, &mut doc),
                    Some(Frame::ConstraintText(field)) => {
                        let value = std::mem::take(&mut text);
                        if let Some(item) = open.last_mut().and_then(|c| c.data_items.last_mut()) {
                            set_constraint(item, field, value.trim(), offset, &mut problems);
                        }
                    }
                    Some(Frame::LimitText(kind, group)) => {
                        let value = std::mem::take(&mut text);
                        if let Some(spec) =
                            open.last_mut().and_then(|c| c.specifications.last_mut())
                        {
                            match value.trim().parse::<f64>().ok().filter(|v| v.is_finite()) {
                                Some(_) if spec.limits.len() >= MAX_SPECIFICATION_LIMITS => {
                                    // Reported once per specification.
                                    if !limits_full {
                                        limits_full = true;
                                        problems.push(problem(
                                            ProblemKind::Unexpected,
                                            offset,
                                            format!(
                                                "{} {}: more than {MAX_SPECIFICATION_LIMITS} limits; the rest ignored",
                                                spec.element, spec.id
                                            ),
                                        ));
                                    }
                                }
                                Some(value) => {
                                    spec.limits.push(SpecificationLimit { kind, value, group })
                                }
                                None => problems.push(problem(
                                    ProblemKind::InvalidValue,
                                    offset,
                                    format!(
                                        "{} {}: {} \"{}\" is not a number; ignored",
                                        spec.element,
                                        spec.id,
                                        kind.as_str(),
                                        value.trim()
                                    ),
                                )),
                            }
                        }
                    }
                    Some(Frame::Description) => {
                        let value = std::mem::take(&mut text);
                        if let Some(d) = open.last_mut().and_then(|c| c.description.as_mut()) {
                            d.text = value.trim().to_owned();
                        }
                    }
                    _ => {}
                }
                continue;
            }
            Ok(Event::Text(t)) => {
                if matches!(
                    stack.last(),
                    Some(Frame::ConstraintText(_) | Frame::Description | Frame::LimitText(..))
                ) {
                    if let Ok(s) = t.decode() {
                        text.push_str(&s);
                    }
                }
                continue;
            }
            Ok(Event::GeneralRef(r)) => {
                if matches!(
                    stack.last(),
                    Some(Frame::ConstraintText(_) | Frame::Description | Frame::LimitText(..))
                ) {
                    if let Some(c) = crate::xml::resolve_reference(&r) {
                        text.push(c);
                    }
                }
                continue;
            }
            Ok(Event::Eof) => {
                if !root_seen {
                    return Err(Error::NoRoot);
                }
                if !stack.is_empty() {
                    problems.push(problem(
                        ProblemKind::Syntax,
                        offset,
                        "document ends before its root element is closed",
                    ));
                }
                break;
            }
            Ok(_) => continue,
            Err(err) => {
                if !root_seen {
                    return Err(Error::xml(err, reader.error_position(), Some(input)));
                }
                problems.push(problem(
                    ProblemKind::Syntax,
                    offset,
                    format!("XML error: {err}"),
                ));
                break;
            }
        };
        if !root_seen {
            root_seen = true;
            match e.local_name().as_ref() {
                b"MTConnectDevices" => {}
                b"MTConnectError" => return Err(parse_error_root(input)),
                other => {
                    return Err(Error::UnexpectedRoot {
                        expected: "MTConnectDevices",
                        found: String::from_utf8_lossy(other).into_owned(),
                    })
                }
            }
            if !empty {
                stack.push(Frame::Other);
            }
            continue;
        }
        if stack.len() >= options.max_depth {
            problems.push(problem(
                ProblemKind::TooDeep,
                offset,
                format!(
                    "element nested deeper than {} levels skipped",
                    options.max_depth
                ),
            ));
            if !empty {
                let end = e.to_end().into_owned();
                if reader.read_to_end(end.name()).is_err() {
                    break;
                }
            }
            continue;
        }
        let local = e.local_name();
        let frame = match (stack.last(), local.as_ref()) {
            (Some(Frame::Other), b"Header") if stack.len() == 1 => {
                doc.header = Header::parse(input, &e, offset, &mut problems);
                Frame::Other
            }
            (Some(Frame::Other), b"Devices") if stack.len() == 1 => Frame::ComponentList,
            (Some(Frame::ComponentList), _) => {
                open.push(component(input, &e, offset, &mut problems));
                Frame::Component
            }
            (Some(Frame::Component), b"Components") => Frame::ComponentList,
            (Some(Frame::Component), b"DataItems") => Frame::DataItemList,
            (Some(Frame::DataItemList), b"DataItem") => {
                let item = data_item(input, &e, offset, &mut problems);
                match (item, open.last_mut()) {
                    (Some(item), Some(owner)) => {
                        owner.data_items.push(item);
                        Frame::DataItem
                    }
                    _ => Frame::Other,
                }
            }
            (Some(Frame::DataItem), b"Constraints") => {
                if let Some(item) = open.last_mut().and_then(|c| c.data_items.last_mut()) {
                    item.constraints.get_or_insert_with(Constraints::default);
                }
                Frame::Constraints
            }
            (
                Some(Frame::Constraints),
                field @ (b"Value" | b"Minimum" | b"Maximum" | b"Nominal"),
            ) => {
                text.clear();
                Frame::ConstraintText(match field {
                    b"Value" => ConstraintField::Value,
                    b"Minimum" => ConstraintField::Minimum,
                    b"Maximum" => ConstraintField::Maximum,
                    _ => ConstraintField::Nominal,
                })
            }
            (Some(Frame::Component), b"Description") => {
                if let Some(owner) = open.last_mut() {
                    owner.description = Some(description(input, &e));
                }
                text.clear();
                Frame::Description
            }
            (Some(Frame::Component), b"Compositions") => Frame::CompositionList,
            (Some(Frame::Component), b"Configuration") => Frame::Configuration,
            (Some(Frame::Configuration), b"Specifications") => Frame::Specifications,
            (
                Some(Frame::Specifications),
                element @ (b"Specification" | b"ProcessSpecification"),
            ) => match open.last_mut() {
                Some(owner) if owner.specifications.len() < MAX_SPECIFICATIONS => {
                    let spec = specification(input, &e, element, offset, &mut problems);
                    match spec {
                        Some(spec) => {
                            owner.specifications.push(spec);
                            limits_full = false;
                            Frame::Specification
                        }
                        None => Frame::Other,
                    }
                }
                Some(owner) => {
                    problems.push(problem(
                        ProblemKind::Unexpected,
                        offset,
                        format!(
                            "{}: more than {MAX_SPECIFICATIONS} specifications; the rest ignored",
                            owner.id
                        ),
                    ));
                    Frame::Other
                }
                None => Frame::Other,
            },
            (
                Some(Frame::Specification),
                group @ (b"ControlLimits" | b"SpecificationLimits" | b"AlarmLimits"),
            ) => Frame::LimitGroup(match group {
                b"ControlLimits" => "ControlLimits",
                b"SpecificationLimits" => "SpecificationLimits",
                _ => "AlarmLimits",
            }),
            (Some(Frame::Specification), name) if LimitKind::from_element(name).is_some() => {
                text.clear();
                Frame::LimitText(
                    LimitKind::from_element(name).unwrap_or(LimitKind::Nominal),
                    None,
                )
            }
            (Some(Frame::LimitGroup(group)), name) if LimitKind::from_element(name).is_some() => {
                text.clear();
                let group = *group;
                Frame::LimitText(
                    LimitKind::from_element(name).unwrap_or(LimitKind::Nominal),
                    Some(group),
                )
            }
            (Some(Frame::CompositionList), b"Composition") => {
                if let Some(owner) = open.last_mut() {
                    owner.compositions.push(composition(input, &e));
                }
                Frame::Other
            }
            _ => Frame::Other,
        };
        if empty {
            if let Frame::Component = frame {
                close_component(&mut open, &mut doc);
            }
        } else {
            stack.push(frame);
        }
    }
    Ok(Parsed {
        value: doc,
        problems,
    })
}

fn close_component(open: &mut Vec<Component>, doc: &mut Devices) {
    if let Some(done) = open.pop() {
        match open.last_mut() {
            Some(parent) => parent.components.push(done),
            None => doc.devices.push(done),
        }
    }
}

fn component(
    input: &[u8],
    e: &BytesStart<'_>,
    offset: u64,
    problems: &mut Vec<Problem>,
) -> Component {
    let mut c = Component {
        element: element_name(input, e).into_owned(),
        ..Component::default()
    };
    for attr in e.attributes().with_checks(false).flatten() {
        let Ok(value) = attr_value(input, &attr) else {
            continue;
        };
        match attr.key.local_name().as_ref() {
            b"id" => c.id = value.into_owned(),
            b"name" => c.name = Some(value.into_owned()),
            b"uuid" => c.uuid = Some(value.into_owned()),
            _ => {}
        }
    }
    if c.id.is_empty() {
        problems.push(problem(
            ProblemKind::MissingAttribute,
            offset,
            format!("<{}> without id", c.element),
        ));
    }
    c
}

fn data_item(
    input: &[u8],
    e: &BytesStart<'_>,
    offset: u64,
    problems: &mut Vec<Problem>,
) -> Option<DataItem> {
    let mut d = DataItem::default();
    let mut category_text = None;
    for attr in e.attributes().with_checks(false).flatten() {
        let Ok(value) = attr_value(input, &attr) else {
            continue;
        };
        let value = value.into_owned();
        match attr.key.local_name().as_ref() {
            b"id" => d.id = value,
            b"name" => d.name = Some(value),
            b"type" => d.kind = value,
            b"subType" => d.sub_type = Some(value),
            b"category" => category_text = Some(value),
            b"units" => d.units = Some(value),
            b"nativeUnits" => d.native_units = Some(value),
            b"representation" => d.representation = Some(value),
            b"statistic" => d.statistic = Some(value),
            b"coordinateSystem" => d.coordinate_system = Some(value),
            b"compositionId" => d.composition_id = Some(value),
            b"significantDigits" => d.significant_digits = value.trim().parse().ok(),
            b"sampleRate" => d.sample_rate = value.trim().parse().ok(),
            b"discrete" => d.discrete = value.trim() == "true",
            _ => {}
        }
    }
    if d.id.is_empty() {
        problems.push(problem(
            ProblemKind::MissingAttribute,
            offset,
            "DataItem without id; skipped",
        ));
        return None;
    }
    d.category = match category_text.as_deref().map(str::parse::<Category>) {
        Some(Ok(c)) => Some(c),
        Some(Err(_)) | None => {
            problems.push(problem(
                ProblemKind::InvalidAttribute,
                offset,
                format!(
                    "DataItem {} has no valid category ({:?})",
                    d.id, category_text
                ),
            ));
            None
        }
    };
    Some(d)
}

/// A `Specification`'s or `ProcessSpecification`'s attributes; one without `id` or
/// `type` is reported and skipped.
fn specification(
    input: &[u8],
    e: &BytesStart<'_>,
    element: &[u8],
    offset: u64,
    problems: &mut Vec<Problem>,
) -> Option<Specification> {
    let mut s = Specification {
        element: String::from_utf8_lossy(element).into_owned(),
        ..Specification::default()
    };
    for attr in e.attributes().with_checks(false).flatten() {
        let Ok(value) = attr_value(input, &attr) else {
            continue;
        };
        if value.len() > MAX_SPECIFICATION_TEXT {
            problems.push(problem(
                ProblemKind::InvalidValue,
                offset,
                format!(
                    "<{}> with an attribute longer than {MAX_SPECIFICATION_TEXT} bytes; skipped",
                    s.element
                ),
            ));
            return None;
        }
        let value = value.into_owned();
        match attr.key.local_name().as_ref() {
            b"id" => s.id = value,
            b"type" => s.kind = value,
            b"subType" => s.sub_type = Some(value),
            b"dataItemIdRef" => s.data_item_id_ref = Some(value),
            b"compositionIdRef" => s.composition_id_ref = Some(value),
            b"units" => s.units = Some(value),
            b"name" => s.name = Some(value),
            b"originator" => s.originator = Some(value),
            _ => {}
        }
    }
    let missing = match (s.id.is_empty(), s.kind.is_empty()) {
        (true, _) => "id",
        (false, true) => "type",
        (false, false) => return Some(s),
    };
    problems.push(problem(
        ProblemKind::MissingAttribute,
        offset,
        format!("<{}> without {missing}; skipped", s.element),
    ));
    None
}

fn description(input: &[u8], e: &BytesStart<'_>) -> Description {
    let mut d = Description::default();
    for attr in e.attributes().with_checks(false).flatten() {
        let Ok(value) = attr_value(input, &attr) else {
            continue;
        };
        let value = Some(value.into_owned());
        match attr.key.local_name().as_ref() {
            b"manufacturer" => d.manufacturer = value,
            b"model" => d.model = value,
            b"serialNumber" => d.serial_number = value,
            b"station" => d.station = value,
            _ => {}
        }
    }
    d
}

fn composition(input: &[u8], e: &BytesStart<'_>) -> Composition {
    let mut c = Composition::default();
    for attr in e.attributes().with_checks(false).flatten() {
        let Ok(value) = attr_value(input, &attr) else {
            continue;
        };
        match attr.key.local_name().as_ref() {
            b"id" => c.id = value.into_owned(),
            b"type" => c.kind = value.into_owned(),
            b"name" => c.name = Some(value.into_owned()),
            _ => {}
        }
    }
    c
}

fn set_constraint(
    item: &mut DataItem,
    field: ConstraintField,
    value: &str,
    offset: u64,
    problems: &mut Vec<Problem>,
) {
    let Some(c) = item.constraints.as_mut() else {
        return;
    };
    let number = |problems: &mut Vec<Problem>| match value.parse::<f64>() {
        Ok(n) => Some(n),
        Err(_) => {
            problems.push(problem(
                ProblemKind::InvalidValue,
                offset,
                format!(
                    "DataItem {}: constraint \"{value}\" is not a number; ignored",
                    item.id
                ),
            ));
            None
        }
    };
    match field {
        ConstraintField::Value => c.values.push(value.to_owned()),
        ConstraintField::Minimum => c.minimum = number(problems),
        ConstraintField::Maximum => c.maximum = number(problems),
        ConstraintField::Nominal => c.nominal = number(problems),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OKUMA_MAZAK: &[u8] =
        include_bytes!("../tests/fixtures/cppagent-demo-devices-okuma-mazak-v2.7.xml");
    const SIMPLE_CNC: &[u8] =
        include_bytes!("../tests/fixtures/cppagent-sample-devices-simplecnc-v1.4.xml");

    fn limits_of<'d>(
        devices: &'d [(String, Vec<ItemLimits>)],
        device: &str,
        item: &str,
    ) -> Option<&'d [Limit]> {
        let (_, items) = devices.iter().find(|(d, _)| d == device)?;
        items
            .iter()
            .find(|(i, _)| i == item)
            .map(|(_, l)| l.as_slice())
    }

    #[test]
    fn specifications_are_read_from_the_reference_demo_devices() {
        let parsed = parse_devices(OKUMA_MAZAK).unwrap();
        assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
        let doc = &parsed.value;
        let x = doc.component("Lx1").unwrap();
        let ids: Vec<&str> = x.specifications.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "x1LengthSpec",
                "x1LinearForceSpec",
                "x1RapidVelSpec",
                "x1ProgrammedVelSpec"
            ]
        );
        let length = &x.specifications[0];
        assert_eq!(
            (
                length.element.as_str(),
                length.kind.as_str(),
                length.units.as_deref()
            ),
            ("Specification", "LENGTH", Some("MILLIMETER"))
        );
        assert_eq!(
            length.limits,
            [SpecificationLimit {
                kind: LimitKind::Nominal,
                value: 650.0,
                group: None
            }]
        );
        let rapid = &x.specifications[2];
        assert_eq!(rapid.sub_type.as_deref(), Some("RAPID"));
        assert_eq!(
            rapid
                .limits
                .iter()
                .map(|l| (l.kind, l.value))
                .collect::<Vec<_>>(),
            [(LimitKind::Maximum, 7000.0), (LimitKind::Minimum, 1.0)]
        );
        // MTConnect 1.8's ProcessSpecification, here without limits.
        let z = doc.component("z").unwrap();
        let proc = z.specifications.iter().find(|s| s.id == "proc").unwrap();
        assert_eq!(
            (proc.element.as_str(), proc.kind.as_str(), proc.limits.len()),
            ("ProcessSpecification", "TEMPERATURE", 0)
        );
        let count: usize = doc
            .devices
            .iter()
            .flat_map(Component::walk)
            .map(|(_, c)| c.specifications.len())
            .sum();
        assert_eq!(count, 34, "every Specification of the file");
    }

    #[test]
    fn a_specification_applies_to_the_data_items_of_its_type_in_its_component() {
        let doc = parse_devices(OKUMA_MAZAK).unwrap().value;
        let limits = doc.limits();
        // Mazak's B axis: ANGLE, -30 to 120 degrees, on both ANGLE samples, not on the
        // ANGLE condition.
        for item in ["Babs", "Bpos"] {
            let l = limits_of(&limits, "Mazak", item).unwrap();
            assert_eq!(
                l.iter()
                    .map(|l| (l.kind, l.value, l.source))
                    .collect::<Vec<_>>(),
                [
                    (LimitKind::Maximum, 120.0, LimitSource::Specification),
                    (LimitKind::Minimum, -30.0, LimitSource::Specification)
                ],
                "{item}"
            );
            assert_eq!(l[0].specification_id.as_deref(), Some("spec027"));
            assert_eq!(l[0].units.as_deref(), Some("DEGREE"));
        }
        assert_eq!(limits_of(&limits, "Mazak", "Btravel"), None);
        // LENGTH, LINEAR_FORCE and VELOCITY name no data item type of the axes: no limit
        // is guessed onto POSITION or LOAD.
        assert_eq!(limits_of(&limits, "OKUMA", "LX1actm"), None);
        assert_eq!(limits_of(&limits, "Mazak", "Xabs"), None);
    }

    #[test]
    fn constraints_are_limits_and_a_data_item_id_ref_is_followed() {
        let doc = parse_devices(SIMPLE_CNC).unwrap().value;
        let limits = doc.limits();
        let name = doc.devices[0].name.clone().unwrap();
        let l = limits_of(&limits, &name, "vee9c2d0").unwrap();
        assert_eq!(
            l.iter()
                .map(|l| (l.kind, l.value, l.source))
                .collect::<Vec<_>>(),
            [
                (LimitKind::Maximum, 7000.0, LimitSource::Constraints),
                (LimitKind::Minimum, 0.0, LimitSource::Constraints)
            ]
        );
        // A Value list is no limit.
        assert_eq!(limits_of(&limits, &name, "bbe3f010"), None);

        // Written here: `dataItemIdRef` (a data item of a child component), a
        // ProcessSpecification's groups, and a value that is not a number.
        let xml = br#"<MTConnectDevices><Header/><Devices><Device id="d" name="M"><Configuration><Specifications>
            <ProcessSpecification id="p" type="TEMPERATURE" dataItemIdRef="t" units="CELSIUS">
              <ControlLimits><UpperLimit>60</UpperLimit><UpperWarning>55</UpperWarning><LowerLimit>x</LowerLimit></ControlLimits>
              <AlarmLimits><UpperLimit>70</UpperLimit></AlarmLimits>
            </ProcessSpecification>
            <Specification type="LOAD"><Maximum>1</Maximum></Specification>
          </Specifications></Configuration>
          <Components><Axes id="a"><DataItems><DataItem id="t" type="TEMPERATURE" category="SAMPLE" units="CELSIUS"/></DataItems></Axes></Components>
        </Device></Devices></MTConnectDevices>"#;
        let parsed = parse_devices(xml).unwrap();
        let messages: Vec<&str> = parsed.problems.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "ProcessSpecification p: LowerLimit \"x\" is not a number; ignored",
                "<Specification> without id; skipped"
            ]
        );
        let limits = parsed.value.limits();
        let l = limits_of(&limits, "M", "t").unwrap();
        assert_eq!(
            l.iter()
                .map(|l| (l.kind, l.value, l.group.as_deref()))
                .collect::<Vec<_>>(),
            [
                (LimitKind::UpperLimit, 60.0, Some("ControlLimits")),
                (LimitKind::UpperLimit, 70.0, Some("AlarmLimits")),
                (LimitKind::UpperWarning, 55.0, Some("ControlLimits")),
            ]
        );
    }

    #[test]
    fn specifications_are_bounded() {
        let mut xml = String::from(
            r#"<MTConnectDevices><Devices><Device id="d" name="M"><Configuration><Specifications>"#,
        );
        for i in 0..MAX_SPECIFICATIONS + 5 {
            xml.push_str(&format!(
                r#"<Specification id="s{i}" type="LOAD"><Maximum>{i}</Maximum></Specification>"#
            ));
        }
        xml.push_str("</Specifications></Configuration></Device></Devices></MTConnectDevices>");
        let parsed = parse_devices(xml.as_bytes()).unwrap();
        assert_eq!(
            parsed.value.devices[0].specifications.len(),
            MAX_SPECIFICATIONS
        );
        assert_eq!(parsed.problems.len(), 5);
    }

    /// A hostile device model: thousands of data items of one type, a specification of
    /// that type with thousands of limits, another naming one data item thousands of
    /// times, and one with an enormous name. What it costs is bounded by the caps, not
    /// by the product of the counts (10⁸ limits before them).
    #[test]
    fn a_hostile_model_gives_each_data_item_a_bounded_number_of_limits() {
        const ITEMS: usize = 5_000;
        let mut xml =
            String::from(r#"<MTConnectDevices><Devices><Device id="d" name="M"><DataItems>"#);
        for i in 0..ITEMS {
            xml.push_str(&format!(
                r#"<DataItem id="x{i}" type="LOAD" category="SAMPLE"/>"#
            ));
        }
        xml.push_str(
            r#"</DataItems><Configuration><Specifications><Specification id="many" type="LOAD">"#,
        );
        for i in 0..5_000 {
            xml.push_str(&format!("<Maximum>{i}</Maximum>"));
        }
        xml.push_str("</Specification>");
        for _ in 0..100 {
            xml.push_str(r#"<Specification id="ref" type="LOAD" dataItemIdRef="x7"><Minimum>1</Minimum><Maximum>2</Maximum></Specification>"#);
        }
        xml.push_str(&format!(
            r#"<Specification id="long" type="LOAD" name="{}"><Maximum>1</Maximum></Specification>"#,
            "n".repeat(MAX_SPECIFICATION_TEXT + 1)
        ));
        xml.push_str("</Specifications></Configuration></Device></Devices></MTConnectDevices>");
        let parsed = parse_devices(xml.as_bytes()).unwrap();
        let specs = &parsed.value.devices[0].specifications;
        assert_eq!(specs.len(), 101, "the long one is skipped");
        assert_eq!(specs[0].limits.len(), MAX_SPECIFICATION_LIMITS);
        let messages: Vec<&str> = parsed.problems.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                format!("Specification many: more than {MAX_SPECIFICATION_LIMITS} limits; the rest ignored"),
                format!("<Specification> with an attribute longer than {MAX_SPECIFICATION_TEXT} bytes; skipped"),
            ]
        );
        let limits = parsed.value.limits();
        let items = &limits[0].1;
        assert_eq!(items.len(), ITEMS);
        assert!(items.iter().all(|(_, l)| l.len() <= MAX_LIMITS_PER_ITEM));
        assert_eq!(
            items.iter().find(|(id, _)| id == "x0").unwrap().1.len(),
            MAX_SPECIFICATION_LIMITS
        );
        // x7: its own specifications first (by id), then the component's, to the cap.
        let x7 = &items.iter().find(|(id, _)| id == "x7").unwrap().1;
        assert_eq!(x7.len(), MAX_LIMITS_PER_ITEM);
        assert!(x7
            .iter()
            .all(|l| l.specification_id.as_deref() == Some("ref")));
    }
}
