//! MTConnectDevices documents, the answer to `/probe`: MTConnect Part 2, "Device
//! Information Model".

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
                    Some(Frame::ConstraintText(_) | Frame::Description)
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
                    Some(Frame::ConstraintText(_) | Frame::Description)
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
