//! Writing MTConnect documents: Streams (MTConnect Part 1, "Response Documents"; Part 3,
//! "Observation Information Model"), as an agent answers `/current` and `/sample`; Devices
//! (Part 2), as it answers `/probe`; and Errors (Part 1, "MTConnectError").

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use factorydash_core::{Category, Observation, Value};
use quick_xml::escape::escape;

use crate::devices::{Component, DataItem, Devices, Specification};
use crate::header::Header;
use crate::json::{is_json_number, push_header, push_string, JsonVersion};
use crate::streams::{EntryRef, ObservationRef, Representation, Streams, ValueRef};
use crate::time::format_timestamp;
use crate::xml::prefix_part;

/// How [`StreamsWriter::write`] writes a document.
#[derive(Debug, Clone)]
pub struct StreamsWriter<'d> {
    /// The MTConnect schema version of the namespace, e.g. `1.3`.
    pub schema_version: String,
    /// The device model, to give each ComponentStream its `component` element name and
    /// `name`, and each DeviceStream its `uuid`. Without it, `component` is `Component`.
    pub devices: Option<&'d Devices>,
    /// Namespaces for extension prefixes (`x` → `urn:nist.gov:NistStreams:1.3`). A prefix
    /// used but not listed here is declared as `urn:factorydash:undeclared:<prefix>`.
    pub extension_namespaces: Vec<(String, String)>,
}

impl Default for StreamsWriter<'_> {
    fn default() -> Self {
        StreamsWriter {
            schema_version: "1.3".into(),
            devices: None,
            extension_namespaces: Vec::new(),
        }
    }
}

/// Writes an MTConnectStreams document of owned observations with the default
/// [`StreamsWriter`].
pub fn write_streams(header: &Header, observations: &[Observation]) -> String {
    StreamsWriter::default().write(header, observations)
}

/// A ComponentStream to write: its element name, `componentId`, `name`, observations.
type ComponentGroup<'s, 'o> = (&'s str, &'s str, Option<&'s str>, Vec<Obs<'o>>);
/// A DeviceStream to write: its `name`, `uuid` and ComponentStreams.
type DeviceGroup<'s, 'o> = (&'s str, Option<&'s str>, Vec<ComponentGroup<'s, 'o>>);

/// What the writer needs of an observation, owned or borrowed.
struct Obs<'o> {
    category: Category,
    element: &'o str,
    /// A Condition's `type` attribute (its DataItem type, `SYSTEM`).
    condition_type: Option<std::borrow::Cow<'o, str>>,
    data_item_id: &'o str,
    timestamp: DateTime<Utc>,
    sequence: u64,
    name: Option<&'o str>,
    sub_type: Option<&'o str>,
    native_code: Option<&'o str>,
    native_severity: Option<&'o str>,
    qualifier: Option<&'o str>,
    composition_id: Option<&'o str>,
    statistic: Option<&'o str>,
    reset_triggered: Option<&'o str>,
    numbers: [Option<f64>; 4],
    entries: &'o [EntryRef<'o>],
    other_attributes: &'o [(std::borrow::Cow<'o, str>, std::borrow::Cow<'o, str>)],
    /// `None`: UNAVAILABLE.
    value: Option<&'o str>,
}

impl<'o> Obs<'o> {
    fn owned(o: &'o Observation) -> Self {
        let c = o.condition.as_ref();
        Obs {
            category: o.category,
            element: c.map_or(o.kind.as_str(), |c| c.level.as_str()),
            condition_type: c.map(|_| factorydash_core::data_item_type(&o.kind).into()),
            data_item_id: &o.data_item_id,
            timestamp: o.timestamp,
            sequence: o.sequence,
            name: o.name.as_deref(),
            sub_type: o.sub_type.as_deref(),
            native_code: c.and_then(|c| c.native_code.as_deref()),
            native_severity: c.and_then(|c| c.native_severity.as_deref()),
            qualifier: c.and_then(|c| c.qualifier.as_deref()),
            composition_id: None,
            statistic: None,
            reset_triggered: None,
            numbers: [None; 4],
            entries: &[],
            other_attributes: &[],
            value: match &o.value {
                Value::Unavailable => None,
                Value::Text(t) => Some(t),
            },
        }
    }

    fn borrowed(o: &'o ObservationRef<'o>) -> Self {
        let x = o.extra();
        Obs {
            category: o.category,
            element: &o.element,
            condition_type: if o.category == Category::Condition {
                o.type_attribute.as_deref().map(std::borrow::Cow::Borrowed)
            } else {
                None
            },
            data_item_id: &o.data_item_id,
            timestamp: o.timestamp,
            sequence: o.sequence,
            name: o.name.as_deref(),
            sub_type: o.sub_type.as_deref(),
            native_code: o.native_code.as_deref(),
            native_severity: x.native_severity.as_deref(),
            qualifier: o.qualifier.as_deref(),
            composition_id: x.composition_id.as_deref(),
            statistic: x.statistic.as_deref(),
            reset_triggered: x.reset_triggered.as_deref(),
            numbers: [
                x.duration,
                x.sample_count.map(|n| n as f64),
                x.sample_rate,
                x.count.map(|n| n as f64),
            ],
            entries: &x.entries,
            other_attributes: &x.other_attributes,
            value: match &o.value {
                ValueRef::Unavailable => None,
                ValueRef::Text(t) => Some(t),
            },
        }
    }
}

impl StreamsWriter<'_> {
    /// Writes owned `observations` under `header`, grouped into DeviceStreams and
    /// ComponentStreams (by device name and `componentId`) and, within each, into
    /// Samples, Events and Condition in sequence order. Every string is XML-escaped.
    ///
    /// Parsing the result gives back the same observations (same sequence, timestamp to
    /// the microsecond, data item, value and condition).
    pub fn write(&self, header: &Header, observations: &[Observation]) -> String {
        self.write_groups(header, &self.owned_groups(observations), &[])
    }

    /// Writes a parsed document back, everything the parser kept: DeviceStreams and
    /// ComponentStreams in their order, every attribute (including unknown ones), DataSet
    /// and Table entries, extension elements with their namespaces.
    pub fn write_document(&self, doc: &Streams<'_>) -> String {
        let (groups, namespaces) = document_groups(doc);
        self.write_groups(&doc.header, &groups, &namespaces)
    }

    /// [`StreamsWriter::write`] in JSON, `version` 1 or 2 ([`crate::json`]), as the
    /// reference agent writes it: Sample values as JSON numbers (vectors and time series
    /// as arrays of them) where the text is one, everything else as strings, timestamps to
    /// the microsecond (as [`StreamsWriter::write`] and the agents write them). Owned
    /// observations hold a DataSet or Table as its text, so it is written as a string
    /// ([`StreamsWriter::write_document_json`] writes parsed entries as objects).
    /// [`crate::parse_streams_json`] reads it back to the same observations.
    pub fn write_json(
        &self,
        header: &Header,
        observations: &[Observation],
        version: JsonVersion,
    ) -> String {
        write_groups_json(
            &self.schema_version,
            header,
            &self.owned_groups(observations),
            version,
        )
    }

    /// [`StreamsWriter::write_document`] in JSON, `version` 1 or 2: every part of the
    /// model but the extension elements' namespace URIs, which JSON has no place for (the
    /// prefix stays in the element's name).
    pub fn write_document_json(&self, doc: &Streams<'_>, version: JsonVersion) -> String {
        let (groups, _) = document_groups(doc);
        write_groups_json(&self.schema_version, &doc.header, &groups, version)
    }

    /// Owned `observations` grouped into DeviceStreams and ComponentStreams (by device
    /// name and `componentId`), named from the device model where there is one.
    fn owned_groups<'s>(&'s self, observations: &'s [Observation]) -> Vec<DeviceGroup<'s, 's>> {
        let mut by_device: BTreeMap<&str, BTreeMap<&str, Vec<Obs<'_>>>> = BTreeMap::new();
        for o in observations {
            by_device
                .entry(&o.device)
                .or_default()
                .entry(&o.component_id)
                .or_default()
                .push(Obs::owned(o));
        }
        by_device
            .into_iter()
            .map(|(device, components)| {
                let uuid = self
                    .devices
                    .and_then(|d| d.devices.iter().find(|c| c.name.as_deref() == Some(device)))
                    .and_then(|c| c.uuid.as_deref());
                let components = components
                    .into_iter()
                    .map(|(id, list)| {
                        let model = self.devices.and_then(|d| d.component(id));
                        let element = model.map_or("Component", |c| c.element.as_str());
                        (element, id, model.and_then(|c| c.name.as_deref()), list)
                    })
                    .collect::<Vec<_>>();
                (device, uuid, components)
            })
            .collect()
    }

    #[allow(clippy::type_complexity)]
    fn write_groups(
        &self,
        header: &Header,
        groups: &[(
            &str,
            Option<&str>,
            Vec<(&str, &str, Option<&str>, Vec<Obs<'_>>)>,
        )],
        namespaces: &[(String, String)],
    ) -> String {
        let mut prefixes: Vec<&str> = Vec::new();
        let count: usize = groups.iter().flat_map(|g| &g.2).map(|c| c.3.len()).sum();
        for o in groups.iter().flat_map(|g| &g.2).flat_map(|c| &c.3) {
            if o.category != Category::Condition {
                if let Some(p) = prefix_part(o.element) {
                    if !prefixes.contains(&p) {
                        prefixes.push(p);
                    }
                }
            }
        }
        let mut out = String::with_capacity(512 + count * 160);
        let v = &self.schema_version;
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = write!(
            out,
            "<MTConnectStreams xmlns:m=\"urn:mtconnect.org:MTConnectStreams:{v}\" xmlns=\"urn:mtconnect.org:MTConnectStreams:{v}\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\""
        );
        for p in prefixes {
            let uri = namespaces
                .iter()
                .chain(&self.extension_namespaces)
                .find(|(prefix, _)| prefix == p)
                .map_or_else(
                    || format!("urn:factorydash:undeclared:{p}"),
                    |(_, u)| u.clone(),
                );
            let _ = write!(out, " xmlns:{}=\"{}\"", p, escape(&uri));
        }
        let _ = write!(
            out,
            " xsi:schemaLocation=\"urn:mtconnect.org:MTConnectStreams:{v} http://schemas.mtconnect.org/schemas/MTConnectStreams_{v}.xsd\">\n  "
        );
        write_header(&mut out, header);
        out.push_str("\n  <Streams>\n");
        for (device, uuid, components) in groups {
            let _ = write!(out, "    <DeviceStream name=\"{}\"", escape(*device));
            if let Some(u) = uuid {
                let _ = write!(out, " uuid=\"{}\"", escape(*u));
            }
            out.push_str(">\n");
            for (element, component_id, name, list) in components {
                let _ = write!(
                    out,
                    "      <ComponentStream component=\"{}\"",
                    escape(*element)
                );
                if let Some(name) = name {
                    let _ = write!(out, " name=\"{}\"", escape(*name));
                }
                let _ = writeln!(out, " componentId=\"{}\">", escape(*component_id));
                let mut order: Vec<&Obs<'_>> = list.iter().collect();
                order.sort_by_key(|o| o.sequence);
                for (category, container) in [
                    (Category::Sample, "Samples"),
                    (Category::Event, "Events"),
                    (Category::Condition, "Condition"),
                ] {
                    let mut items = order.iter().filter(|o| o.category == category).peekable();
                    if items.peek().is_none() {
                        continue;
                    }
                    let _ = writeln!(out, "        <{container}>");
                    for o in items {
                        write_observation(&mut out, o);
                    }
                    let _ = writeln!(out, "        </{container}>");
                }
                out.push_str("      </ComponentStream>\n");
            }
            out.push_str("    </DeviceStream>\n");
        }
        out.push_str("  </Streams>\n</MTConnectStreams>\n");
        out
    }
}

/// A parsed document's DeviceStreams and ComponentStreams in their order, and the
/// namespaces of its extension prefixes.
fn document_groups<'s>(doc: &'s Streams<'_>) -> (Vec<DeviceGroup<'s, 's>>, Vec<(String, String)>) {
    let mut per_component: Vec<Vec<Obs<'_>>> =
        doc.component_streams.iter().map(|_| Vec::new()).collect();
    let mut namespaces: Vec<(String, String)> = Vec::new();
    for o in &doc.observations {
        if let (Some(prefix), Some(uri)) = (prefix_part(&o.element), &o.extra().namespace) {
            if !namespaces.iter().any(|(p, _)| p == prefix) {
                namespaces.push((prefix.to_owned(), uri.to_string()));
            }
        }
        if let Some(list) = per_component.get_mut(o.component_stream) {
            list.push(Obs::borrowed(o));
        }
    }
    let mut groups: Vec<DeviceGroup<'_, '_>> = doc
        .device_streams
        .iter()
        .map(|d| (d.name.as_ref(), d.uuid.as_deref(), Vec::new()))
        .collect();
    for (c, list) in doc.component_streams.iter().zip(per_component) {
        if let Some(group) = groups.get_mut(c.device_stream) {
            group.2.push((
                c.component.as_ref(),
                c.component_id.as_ref(),
                c.name.as_deref(),
                list,
            ));
        }
    }
    (groups, namespaces)
}

/// The JSON document of `groups` (see [`StreamsWriter::write_json`]).
fn write_groups_json(
    schema_version: &str,
    header: &Header,
    groups: &[DeviceGroup<'_, '_>],
    version: JsonVersion,
) -> String {
    let v1 = version == JsonVersion::V1;
    let count: usize = groups.iter().flat_map(|g| &g.2).map(|c| c.3.len()).sum();
    let mut out = String::with_capacity(512 + count * 150);
    let _ = write!(
        out,
        "{{\"MTConnectStreams\":{{\"jsonVersion\":{},\"schemaVersion\":",
        version.number()
    );
    push_string(&mut out, schema_version);
    out.push_str(",\"Header\":");
    push_header(&mut out, header);
    out.push_str(",\"Streams\":");
    out.push(if v1 { '[' } else { '{' });
    if !v1 && !groups.is_empty() {
        out.push_str("\"DeviceStream\":[");
    }
    for (i, (device, uuid, components)) in groups.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if v1 {
            out.push_str("{\"DeviceStream\":");
        }
        out.push_str("{\"name\":");
        push_string(&mut out, device);
        if let Some(u) = uuid {
            out.push_str(",\"uuid\":");
            push_string(&mut out, u);
        }
        out.push_str(if v1 {
            ",\"ComponentStreams\":["
        } else {
            ",\"ComponentStream\":["
        });
        for (j, (element, component_id, name, list)) in components.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            if v1 {
                out.push_str("{\"ComponentStream\":");
            }
            out.push_str("{\"component\":");
            push_string(&mut out, element);
            out.push_str(",\"componentId\":");
            push_string(&mut out, component_id);
            if let Some(name) = name {
                out.push_str(",\"name\":");
                push_string(&mut out, name);
            }
            let mut order: Vec<&Obs<'_>> = list.iter().collect();
            order.sort_by_key(|o| o.sequence);
            for (category, container) in [
                (Category::Sample, "Samples"),
                (Category::Event, "Events"),
                (Category::Condition, "Condition"),
            ] {
                let items: Vec<&Obs<'_>> = order
                    .iter()
                    .copied()
                    .filter(|o| o.category == category)
                    .collect();
                if items.is_empty() {
                    continue;
                }
                let _ = write!(out, ",\"{container}\":");
                if v1 {
                    out.push('[');
                    for (k, o) in items.iter().enumerate() {
                        if k > 0 {
                            out.push(',');
                        }
                        out.push('{');
                        push_string(&mut out, o.element);
                        out.push(':');
                        write_observation_json(&mut out, o);
                        out.push('}');
                    }
                    out.push(']');
                } else {
                    // By element name, in the order each first appears.
                    let mut names: Vec<&str> = Vec::new();
                    for o in &items {
                        if !names.contains(&o.element) {
                            names.push(o.element);
                        }
                    }
                    out.push('{');
                    for (k, name) in names.iter().enumerate() {
                        if k > 0 {
                            out.push(',');
                        }
                        push_string(&mut out, name);
                        out.push_str(":[");
                        for (m, o) in items.iter().filter(|o| o.element == *name).enumerate() {
                            if m > 0 {
                                out.push(',');
                            }
                            write_observation_json(&mut out, o);
                        }
                        out.push(']');
                    }
                    out.push('}');
                }
            }
            out.push('}');
            if v1 {
                out.push('}');
            }
        }
        out.push_str("]}");
        if v1 {
            out.push('}');
        }
    }
    if !v1 && !groups.is_empty() {
        out.push(']');
    }
    out.push(if v1 { ']' } else { '}' });
    out.push_str("}}");
    out
}

/// Appends `text` as a JSON number where it is one as written, else as a string.
fn push_scalar(out: &mut String, text: &str) {
    if is_json_number(text) {
        out.push_str(text);
    } else {
        push_string(out, text);
    }
}

/// The members [`write_observation_json`] writes itself.
const JSON_MEMBERS: [&str; 17] = [
    "value",
    "dataItemId",
    "timestamp",
    "sequence",
    "name",
    "subType",
    "type",
    "nativeCode",
    "nativeSeverity",
    "qualifier",
    "compositionId",
    "statistic",
    "resetTriggered",
    "duration",
    "sampleCount",
    "sampleRate",
    "count",
];

fn write_observation_json(out: &mut String, o: &Obs<'_>) {
    out.push('{');
    let mut wrote = false;
    let mut key = |out: &mut String, name: &str| {
        if wrote {
            out.push(',');
        }
        wrote = true;
        push_string(out, name);
        out.push(':');
    };
    let representation = crate::streams::representation_of(o.element);
    if o.category == Category::Condition {
        if let Some(t) = o.value {
            key(out, "value");
            push_string(out, t);
        }
    } else if !o.entries.is_empty() {
        key(out, "value");
        out.push('{');
        for (i, e) in o.entries.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_string(out, &e.key);
            out.push(':');
            if e.removed {
                out.push_str("{\"removed\":true}");
            } else if !e.cells.is_empty() || representation == Representation::Table {
                out.push('{');
                for (j, (k, v)) in e.cells.iter().enumerate() {
                    if j > 0 {
                        out.push(',');
                    }
                    push_string(out, k);
                    out.push(':');
                    push_scalar(out, v);
                }
                out.push('}');
            } else {
                push_scalar(out, &e.value);
            }
        }
        out.push('}');
    } else {
        key(out, "value");
        match o.value {
            None => out.push_str("\"UNAVAILABLE\""),
            Some(t) if o.category == Category::Sample => {
                let tokens = || t.split(' ');
                if is_json_number(t) {
                    out.push_str(t);
                } else if t.contains(' ') && tokens().all(is_json_number) {
                    out.push('[');
                    for (i, n) in tokens().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        out.push_str(n);
                    }
                    out.push(']');
                } else {
                    push_string(out, t);
                }
            }
            Some(t) => push_string(out, t),
        }
    }
    key(out, "dataItemId");
    push_string(out, o.data_item_id);
    key(out, "timestamp");
    push_string(out, &format_timestamp(o.timestamp));
    key(out, "sequence");
    let _ = write!(out, "{}", o.sequence);
    for (name, value) in [
        ("name", o.name),
        ("subType", o.sub_type),
        ("type", o.condition_type.as_deref()),
        ("nativeCode", o.native_code),
        ("nativeSeverity", o.native_severity),
        ("qualifier", o.qualifier),
        ("compositionId", o.composition_id),
        ("statistic", o.statistic),
        ("resetTriggered", o.reset_triggered),
    ] {
        if let Some(v) = value {
            key(out, name);
            push_string(out, v);
        }
    }
    for (name, value) in ["duration", "sampleCount", "sampleRate", "count"]
        .iter()
        .zip(o.numbers)
    {
        // JSON has no NaN or infinity: such a number is left out.
        if let Some(n) = value.filter(|n| n.is_finite()) {
            key(out, name);
            let _ = write!(out, "{n}");
        }
    }
    for (k, v) in o.other_attributes {
        // A member written above already (an extension attribute named `value`, say)
        // is not written twice: a reader would keep only one of the two.
        if JSON_MEMBERS.contains(&k.as_ref()) {
            continue;
        }
        key(out, k);
        push_string(out, v);
    }
    out.push('}');
}

fn write_header(out: &mut String, header: &Header) {
    out.push_str("<Header");
    if let Some(t) = header.creation_time {
        let _ = write!(out, " creationTime=\"{}\"", format_timestamp(t));
    }
    let _ = write!(
        out,
        " sender=\"{}\" instanceId=\"{}\" version=\"{}\"",
        escape(&header.sender),
        header.instance_id,
        escape(&header.version)
    );
    for (name, value) in [
        ("bufferSize", header.buffer_size),
        ("nextSequence", header.next_sequence),
        ("firstSequence", header.first_sequence),
        ("lastSequence", header.last_sequence),
        ("assetBufferSize", header.asset_buffer_size),
        ("assetCount", header.asset_count),
    ] {
        if let Some(n) = value {
            let _ = write!(out, " {name}=\"{n}\"");
        }
    }
    if let Some(t) = header.device_model_change_time {
        let _ = write!(out, " deviceModelChangeTime=\"{}\"", format_timestamp(t));
    }
    out.push_str("/>");
}

fn write_observation(out: &mut String, o: &Obs<'_>) {
    let element = o.element;
    let _ = write!(
        out,
        "          <{element} dataItemId=\"{}\" timestamp=\"{}\" sequence=\"{}\"",
        escape(o.data_item_id),
        format_timestamp(o.timestamp),
        o.sequence
    );
    for (name, value) in [
        ("name", o.name),
        ("subType", o.sub_type),
        ("type", o.condition_type.as_deref()),
        ("nativeCode", o.native_code),
        ("nativeSeverity", o.native_severity),
        ("qualifier", o.qualifier),
        ("compositionId", o.composition_id),
        ("statistic", o.statistic),
        ("resetTriggered", o.reset_triggered),
    ] {
        if let Some(v) = value {
            let _ = write!(out, " {name}=\"{}\"", escape(v));
        }
    }
    for (name, value) in ["duration", "sampleCount", "sampleRate", "count"]
        .iter()
        .zip(o.numbers)
    {
        if let Some(n) = value {
            let _ = write!(out, " {name}=\"{n}\"");
        }
    }
    for (k, v) in o.other_attributes {
        let _ = write!(out, " {}=\"{}\"", k, escape(v.as_ref()));
    }
    if !o.entries.is_empty() {
        out.push('>');
        for e in o.entries {
            let _ = write!(out, "<Entry key=\"{}\"", escape(e.key.as_ref()));
            if e.removed {
                out.push_str(" removed=\"true\"");
            }
            if e.cells.is_empty() {
                let _ = write!(out, ">{}</Entry>", escape(e.value.as_ref()));
            } else {
                out.push('>');
                for (k, v) in &e.cells {
                    let _ = write!(
                        out,
                        "<Cell key=\"{}\">{}</Cell>",
                        escape(k.as_ref()),
                        escape(v.as_ref())
                    );
                }
                out.push_str("</Entry>");
            }
        }
        let _ = writeln!(out, "</{element}>");
        return;
    }
    match (o.value, o.category) {
        (None, Category::Condition) => out.push_str("/>\n"),
        (Some(""), Category::Condition) => out.push_str("/>\n"),
        (None, _) => {
            let _ = writeln!(out, ">UNAVAILABLE</{element}>");
        }
        (Some(t), _) => {
            let _ = writeln!(out, ">{}</{element}>", escape(t));
        }
    }
}

/// Writes an MTConnectDevices document (MTConnect Part 2): the Header, every device and
/// component with its Description, Specifications (in `Configuration`), Compositions and
/// DataItems (with Constraints).
/// Parsing the result gives back the same [`Devices`].
pub fn write_devices(devices: &Devices, schema_version: &str) -> String {
    let v = schema_version;
    let mut out = String::with_capacity(4096);
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<MTConnectDevices xmlns:m=\"urn:mtconnect.org:MTConnectDevices:{v}\" xmlns=\"urn:mtconnect.org:MTConnectDevices:{v}\">\n  "
    );
    write_header(&mut out, &devices.header);
    out.push_str("\n  <Devices>\n");
    for d in &devices.devices {
        write_component(&mut out, d, 2);
    }
    out.push_str("  </Devices>\n</MTConnectDevices>\n");
    out
}

fn write_component(out: &mut String, c: &Component, depth: usize) {
    let pad = "  ".repeat(depth);
    let _ = write!(out, "{pad}<{} id=\"{}\"", c.element, escape(&c.id));
    for (name, value) in [("name", &c.name), ("uuid", &c.uuid)] {
        if let Some(v) = value {
            let _ = write!(out, " {name}=\"{}\"", escape(v));
        }
    }
    out.push_str(">\n");
    if let Some(d) = &c.description {
        let _ = write!(out, "{pad}  <Description");
        for (name, value) in [
            ("manufacturer", &d.manufacturer),
            ("model", &d.model),
            ("serialNumber", &d.serial_number),
            ("station", &d.station),
        ] {
            if let Some(v) = value {
                let _ = write!(out, " {name}=\"{}\"", escape(v));
            }
        }
        let _ = writeln!(out, ">{}</Description>", escape(&d.text));
    }
    if !c.specifications.is_empty() {
        let _ = writeln!(out, "{pad}  <Configuration>\n{pad}    <Specifications>");
        for spec in &c.specifications {
            write_specification(out, spec, &pad);
        }
        let _ = writeln!(out, "{pad}    </Specifications>\n{pad}  </Configuration>");
    }
    if !c.data_items.is_empty() {
        let _ = writeln!(out, "{pad}  <DataItems>");
        for item in &c.data_items {
            write_data_item(out, item, &pad);
        }
        let _ = writeln!(out, "{pad}  </DataItems>");
    }
    if !c.compositions.is_empty() {
        let _ = writeln!(out, "{pad}  <Compositions>");
        for comp in &c.compositions {
            let _ = write!(
                out,
                "{pad}    <Composition id=\"{}\" type=\"{}\"",
                escape(&comp.id),
                escape(&comp.kind)
            );
            if let Some(n) = &comp.name {
                let _ = write!(out, " name=\"{}\"", escape(n));
            }
            out.push_str("/>\n");
        }
        let _ = writeln!(out, "{pad}  </Compositions>");
    }
    if !c.components.is_empty() {
        let _ = writeln!(out, "{pad}  <Components>");
        for child in &c.components {
            write_component(out, child, depth + 2);
        }
        let _ = writeln!(out, "{pad}  </Components>");
    }
    let _ = writeln!(out, "{pad}</{}>", c.element);
}

/// A `Specification` or `ProcessSpecification`, its limits in order (a
/// `ProcessSpecification`'s in their groups).
fn write_specification(out: &mut String, s: &Specification, pad: &str) {
    let _ = write!(
        out,
        "{pad}      <{} id=\"{}\" type=\"{}\"",
        s.element,
        escape(&s.id),
        escape(&s.kind)
    );
    for (name, value) in [
        ("subType", &s.sub_type),
        ("dataItemIdRef", &s.data_item_id_ref),
        ("compositionIdRef", &s.composition_id_ref),
        ("units", &s.units),
        ("name", &s.name),
        ("originator", &s.originator),
    ] {
        if let Some(v) = value {
            let _ = write!(out, " {name}=\"{}\"", escape(v));
        }
    }
    out.push('>');
    let mut open: Option<&str> = None;
    for l in &s.limits {
        if open != l.group {
            if let Some(g) = open {
                let _ = write!(out, "</{g}>");
            }
            if let Some(g) = l.group {
                let _ = write!(out, "<{g}>");
            }
            open = l.group;
        }
        let _ = write!(out, "<{0}>{1}</{0}>", l.kind.as_str(), l.value);
    }
    if let Some(g) = open {
        let _ = write!(out, "</{g}>");
    }
    let _ = writeln!(out, "</{}>", s.element);
}

fn write_data_item(out: &mut String, d: &DataItem, pad: &str) {
    let _ = write!(
        out,
        "{pad}    <DataItem id=\"{}\" type=\"{}\"",
        escape(&d.id),
        escape(&d.kind)
    );
    if let Some(c) = d.category {
        let _ = write!(out, " category=\"{}\"", c.as_str());
    }
    for (name, value) in [
        ("name", &d.name),
        ("subType", &d.sub_type),
        ("units", &d.units),
        ("nativeUnits", &d.native_units),
        ("representation", &d.representation),
        ("statistic", &d.statistic),
        ("coordinateSystem", &d.coordinate_system),
        ("compositionId", &d.composition_id),
    ] {
        if let Some(v) = value {
            let _ = write!(out, " {name}=\"{}\"", escape(v));
        }
    }
    if let Some(n) = d.significant_digits {
        let _ = write!(out, " significantDigits=\"{n}\"");
    }
    if let Some(r) = d.sample_rate {
        let _ = write!(out, " sampleRate=\"{r}\"");
    }
    if d.discrete {
        out.push_str(" discrete=\"true\"");
    }
    let Some(c) = &d.constraints else {
        out.push_str("/>\n");
        return;
    };
    out.push_str("><Constraints>");
    for v in &c.values {
        let _ = write!(out, "<Value>{}</Value>", escape(v));
    }
    for (name, value) in [
        ("Minimum", c.minimum),
        ("Maximum", c.maximum),
        ("Nominal", c.nominal),
    ] {
        if let Some(n) = value {
            let _ = write!(out, "<{name}>{n}</{name}>");
        }
    }
    out.push_str("</Constraints></DataItem>\n");
}

/// Writes an MTConnectError document (MTConnect Part 1, "MTConnectError") with one error,
/// in the 1.x–2.5 form (`<Error errorCode="…">text</Error>`).
pub fn write_error(header: &Header, code: &crate::ErrorCode, text: &str) -> String {
    let doc = crate::ErrorDocument {
        header: header.clone(),
        errors: vec![crate::AgentError::new(code.clone(), text)],
    };
    write_error_document(&doc, ErrorForm::Legacy)
}

/// The two forms of an MTConnectError document's errors (see [`crate::error`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ErrorForm {
    /// MTConnect 1.1 to 2.5: `<Errors><Error errorCode="OUT_OF_RANGE">text</Error></Errors>`,
    /// in the 1.3 namespace. Only the code and the text are written.
    #[default]
    Legacy,
    /// MTConnect 2.6 and later: one element per error, named for its kind, with
    /// `ErrorMessage`, `QueryParameter`, `Request`, `URI` (and `AssetId`) children and an
    /// `errorCode` attribute as the reference agent writes it; the 2.7 namespace.
    V2_6,
}

/// Writes an MTConnectError document with all of `doc`'s errors, in `form`.
///
/// ```
/// use factorydash_mtconnect::write::{write_error_document, ErrorForm};
/// use factorydash_mtconnect::{parse_error, AgentError, ErrorCode, ErrorDocument, Header};
/// use factorydash_mtconnect::error::QueryParameter;
///
/// let error = AgentError::new(ErrorCode::OutOfRange, "'from' must be greater than 1082")
///     .with_query_parameter(QueryParameter::new("from").with_value("518").with_range(Some(1083), Some(2107)))
///     .with_request("MTConnectStreams", "/sample?count=1000&from=518");
/// let doc = ErrorDocument { header: Header::default(), errors: vec![error] };
/// let xml = write_error_document(&doc, ErrorForm::V2_6);
/// assert!(xml.contains("<OutOfRange errorCode=\"OUT_OF_RANGE\">"));
/// assert_eq!(parse_error(xml.as_bytes()).unwrap(), doc);
/// ```
pub fn write_error_document(doc: &crate::ErrorDocument, form: ErrorForm) -> String {
    let mut out = String::with_capacity(512);
    let version = match form {
        ErrorForm::Legacy => "1.3",
        ErrorForm::V2_6 => "2.7",
    };
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<MTConnectError xmlns=\"urn:mtconnect.org:MTConnectError:{version}\">\n  "
    );
    write_header(&mut out, &doc.header);
    out.push_str("\n  <Errors>\n");
    for e in &doc.errors {
        let code = escape(e.code.as_str());
        match form {
            ErrorForm::Legacy => {
                let _ = writeln!(
                    out,
                    "    <Error errorCode=\"{code}\">{}</Error>",
                    escape(&e.text)
                );
            }
            ErrorForm::V2_6 => {
                let element = e.code.element_name();
                let _ = write!(out, "    <{element} errorCode=\"{code}\">");
                if !e.text.is_empty() {
                    let _ = write!(out, "<ErrorMessage>{}</ErrorMessage>", escape(&e.text));
                }
                if let Some(p) = &e.query_parameter {
                    let _ = write!(out, "<QueryParameter name=\"{}\">", escape(&p.name));
                    for (name, value) in [
                        ("Maximum", &p.maximum),
                        ("Minimum", &p.minimum),
                        ("Value", &p.value),
                        ("Type", &p.kind),
                        ("Format", &p.format),
                    ] {
                        if let Some(v) = value {
                            let _ = write!(out, "<{name}>{}</{name}>", escape(v));
                        }
                    }
                    out.push_str("</QueryParameter>");
                }
                for (name, value) in [
                    ("Request", &e.request),
                    ("URI", &e.uri),
                    ("AssetId", &e.asset_id),
                ] {
                    if let Some(v) = value {
                        let _ = write!(out, "<{name}>{}</{name}>", escape(v));
                    }
                }
                let _ = writeln!(out, "</{element}>");
            }
        }
    }
    out.push_str("  </Errors>\n</MTConnectError>\n");
    out
}
