use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, Serializer};

/// The category of a data item and of its observations: MTConnect Part 2,
/// section "DataItem" (attribute `category`) and Part 3, the `Samples`, `Events`
/// and `Condition` containers of a ComponentStream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Category {
    /// A continuously variable or analog value (`<Samples>`), e.g. `Position`.
    Sample,
    /// A discrete state or message (`<Events>`), e.g. `Execution`.
    Event,
    /// The health of a component (`<Condition>`): Normal, Warning, Fault or Unavailable.
    Condition,
}

impl Category {
    /// The MTConnect spelling: `SAMPLE`, `EVENT` or `CONDITION`.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Sample => "SAMPLE",
            Category::Event => "EVENT",
            Category::Condition => "CONDITION",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing one of this crate's enums from its MTConnect spelling.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{found}`")]
pub struct ParseEnumError {
    pub(crate) what: &'static str,
    pub(crate) found: String,
}

impl FromStr for Category {
    type Err = ParseEnumError;

    /// Parses `SAMPLE`, `EVENT` or `CONDITION` (ASCII case-insensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "SAMPLE" => Ok(Category::Sample),
            "EVENT" => Ok(Category::Event),
            "CONDITION" => Ok(Category::Condition),
            _ => Err(ParseEnumError {
                what: "category",
                found: s.to_owned(),
            }),
        }
    }
}

/// The level of a Condition observation: MTConnect Part 3, section "Condition",
/// where the level is the element name (`<Normal/>`, `<Warning>`, `<Fault>`, `<Unavailable/>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ConditionLevel {
    /// The item is operating normally.
    Normal,
    /// Attention is needed, operation continues.
    Warning,
    /// Operation is compromised.
    Fault,
    /// The condition cannot be determined.
    Unavailable,
}

impl ConditionLevel {
    /// The element name: `Normal`, `Warning`, `Fault` or `Unavailable`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionLevel::Normal => "Normal",
            ConditionLevel::Warning => "Warning",
            ConditionLevel::Fault => "Fault",
            ConditionLevel::Unavailable => "Unavailable",
        }
    }

    /// The level for an element's local name, if it is one of the four.
    pub fn from_element(local_name: &[u8]) -> Option<Self> {
        match local_name {
            b"Normal" => Some(ConditionLevel::Normal),
            b"Warning" => Some(ConditionLevel::Warning),
            b"Fault" => Some(ConditionLevel::Fault),
            b"Unavailable" => Some(ConditionLevel::Unavailable),
            _ => None,
        }
    }

    /// Whether the condition needs attention (Warning or Fault).
    pub fn is_active(self) -> bool {
        matches!(self, ConditionLevel::Warning | ConditionLevel::Fault)
    }
}

impl FromStr for ConditionLevel {
    type Err = ParseEnumError;

    /// Parses the element name (`Normal`, `Warning`, `Fault`, `Unavailable`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_element(s.as_bytes()).ok_or_else(|| ParseEnumError {
            what: "condition level",
            found: s.to_owned(),
        })
    }
}

impl fmt::Display for ConditionLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The element name MTConnect Part 3 gives the observations of a DataItem `type`
/// ("Observation Information Model": the element is the type in Pascal case):
/// `PATH_FEEDRATE` → `PathFeedrate`, `SYSTEM` → `System`, `x:MOTION` → `x:Motion`.
///
/// A word already in mixed case is kept as written (`x:MyThing` stays `x:MyThing`);
/// a word of capitals and digits becomes one capital and the rest in lower case.
/// [`Observation::kind`] holds this form for every category.
pub fn element_name(data_item_type: &str) -> String {
    let (prefix, local) = match data_item_type.split_once(':') {
        Some((p, l)) => (Some(p), l),
        None => (None, data_item_type),
    };
    let mut out = String::with_capacity(data_item_type.len());
    if let Some(p) = prefix {
        out.push_str(p);
        out.push(':');
    }
    for word in local.split('_').filter(|w| !w.is_empty()) {
        let mut chars = word.chars();
        let Some(first) = chars.next() else { continue };
        out.extend(first.to_uppercase());
        if word.chars().any(char::is_lowercase) {
            out.extend(chars);
        } else {
            out.extend(chars.flat_map(char::to_lowercase));
        }
    }
    out
}

/// The DataItem `type` of an observation's element name, the inverse of [`element_name`]
/// for MTConnect's own types: `PathFeedrate` → `PATH_FEEDRATE`, `x:Motion` → `x:MOTION`.
/// Used where a document must say `type="..."` again (a Condition's `type` attribute).
/// A type whose words began with digits (`X_2_AXIS`) does not come back exactly.
pub fn data_item_type(element_name: &str) -> String {
    let (prefix, local) = match element_name.split_once(':') {
        Some((p, l)) => (Some(p), l),
        None => (None, element_name),
    };
    let mut out = String::with_capacity(element_name.len() + 4);
    if let Some(p) = prefix {
        out.push_str(p);
        out.push(':');
    }
    for (i, c) in local.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.extend(c.to_uppercase());
    }
    out
}

/// The value of an observation: MTConnect Part 3, "Observation" (the element's CDATA).
///
/// `UNAVAILABLE` is the standard's marker for "the agent cannot determine a value"; it is
/// its own variant here so that no code confuses it with a string or a number.
/// Serialised as JSON `null` for [`Value::Unavailable`] and as a string otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(from = "Option<String>")]
pub enum Value {
    /// The agent cannot determine the value (`UNAVAILABLE`).
    Unavailable,
    /// The value as the agent wrote it, surrounding whitespace trimmed. For a Condition this
    /// is its message text (often empty).
    Text(String),
}

impl Value {
    /// The value of an element's text: `UNAVAILABLE` (after trimming) becomes
    /// [`Value::Unavailable`], anything else is kept trimmed.
    pub fn from_text(text: &str) -> Self {
        let text = text.trim();
        if text == "UNAVAILABLE" {
            Value::Unavailable
        } else {
            Value::Text(text.to_owned())
        }
    }

    /// Whether this is `UNAVAILABLE`.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Value::Unavailable)
    }

    /// The text, or `None` when unavailable.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Unavailable => None,
            Value::Text(t) => Some(t),
        }
    }

    /// The value as a number, if it is one (a Sample's usual case). A value such as
    /// `381,6404` (decimal comma) or `1 2 3` (a vector) gives `None`.
    pub fn as_f64(&self) -> Option<f64> {
        self.as_text()?.parse().ok()
    }
}

impl From<Option<String>> for Value {
    fn from(v: Option<String>) -> Self {
        match v {
            None => Value::Unavailable,
            Some(t) => Value::Text(t),
        }
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Unavailable => s.serialize_none(),
            Value::Text(t) => s.serialize_str(t),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Unavailable => f.write_str("UNAVAILABLE"),
            Value::Text(t) => f.write_str(t),
        }
    }
}

/// The state a Condition observation reports, beside its message text (the [`Value`]):
/// MTConnect Part 3, section "Condition".
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionState {
    /// `Normal`, `Warning`, `Fault` or `Unavailable`.
    pub level: ConditionLevel,
    /// The controller's own code for the condition (`nativeCode`), if given.
    pub native_code: Option<String>,
    /// The controller's own severity (`nativeSeverity`), if given.
    pub native_severity: Option<String>,
    /// `HIGH` or `LOW` when a value is out of range (`qualifier`), if given.
    pub qualifier: Option<String>,
}

/// One observation of one data item, owned: MTConnect Part 3, "Observation".
///
/// Identified within an agent by its `instanceId` (carried by the [`Batch`]) and its
/// `sequence`. Timestamps are UTC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Observation {
    /// The agent's sequence number for this observation, unique within an `instanceId`.
    pub sequence: u64,
    /// When the value was observed (UTC; agents that omit the `Z` mean UTC).
    pub timestamp: DateTime<Utc>,
    /// The DeviceStream's `name`.
    pub device: String,
    /// The ComponentStream's `componentId` (the component's `id` in the device model).
    pub component_id: String,
    /// The observation's `dataItemId`.
    pub data_item_id: String,
    /// The data item's `name`, if the agent sends one.
    pub name: Option<String>,
    /// Sample, Event or Condition.
    pub category: Category,
    /// The observation's type in its element-name form (MTConnect Part 3: the DataItem
    /// `type` in Pascal case), for every category: `Position`, `Execution`, `x:Motion`
    /// for an extension element (prefix kept as written), and for a Condition, whose
    /// element name is its level, its `type` attribute in the same form (`SYSTEM` →
    /// `System`, see [`element_name`]). Serialised as `type`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The `subType`, e.g. `ACTUAL`, if any.
    pub sub_type: Option<String>,
    /// The value, or for a Condition its message text.
    pub value: Value,
    /// For a Condition: its level, native code and qualifier.
    pub condition: Option<ConditionState>,
}

/// What one ingest step hands a store: observations from one agent, of one `instanceId`,
/// and where to continue from afterwards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Batch {
    /// The agent's base URL (the key a store knows the agent by).
    pub agent: String,
    /// The agent's `instanceId` (MTConnect Part 1, Header): changes when the agent restarts.
    pub instance_id: u64,
    /// The Header `nextSequence` after these observations: where to resume.
    pub next_sequence: u64,
    /// The observations, in any order.
    pub observations: Vec<Observation>,
}

impl Batch {
    /// The resume point this batch leaves behind.
    pub fn resume_point(&self) -> ResumePoint {
        ResumePoint {
            agent: self.agent.clone(),
            instance_id: self.instance_id,
            next_sequence: self.next_sequence,
        }
    }
}

/// Where ingest from an agent continues: saved with each stored batch so that a restarted
/// factorydash continues where it stopped while the agent still holds the data.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResumePoint {
    /// The agent's base URL.
    pub agent: String,
    /// The agent's `instanceId` when the point was saved.
    pub instance_id: u64,
    /// The next sequence to ask for (`/sample?from=`).
    pub next_sequence: u64,
}

/// Observations an agent held that a follower could not get: its buffer wrapped past them
/// (`OUT_OF_RANGE`), or the agent restarted (a new `instanceId`) before they were read.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Gap {
    /// The agent's base URL.
    pub agent: String,
    /// The `instanceId` the lost sequences belong to.
    pub instance_id: u64,
    /// The first lost sequence.
    pub from: u64,
    /// One past the last lost sequence, or `None` when unknown (the agent restarted and
    /// its old buffer's end was never seen).
    pub to: Option<u64>,
}

impl Gap {
    /// How many sequences were lost, when known.
    pub fn len(&self) -> Option<u64> {
        self.to.map(|to| to.saturating_sub(self.from))
    }

    /// Whether the gap is known to be empty.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_names_and_types() {
        for (ty, element) in [
            ("PATH_FEEDRATE", "PathFeedrate"),
            ("AVAILABILITY", "Availability"),
            ("SYSTEM", "System"),
            ("LOGIC_PROGRAM", "LogicProgram"),
            ("x:MOTION", "x:Motion"),
            ("CO2", "Co2"),
        ] {
            assert_eq!(element_name(ty), element, "{ty}");
            assert_eq!(data_item_type(element), ty, "{element}");
        }
        // A word already in mixed case is kept.
        assert_eq!(element_name("x:MyThing"), "x:MyThing");
        assert_eq!(element_name("Temperature"), "Temperature");
    }

    #[test]
    fn unavailable_is_its_own_value() {
        assert_eq!(Value::from_text("  UNAVAILABLE\n"), Value::Unavailable);
        assert_eq!(
            Value::from_text(" unavailable "),
            Value::Text("unavailable".into())
        );
        assert_eq!(serde_json::to_string(&Value::Unavailable).unwrap(), "null");
        assert_eq!(
            serde_json::to_string(&Value::Text("ACTIVE".into())).unwrap(),
            "\"ACTIVE\""
        );
        let back: Value = serde_json::from_str("null").unwrap();
        assert_eq!(back, Value::Unavailable);
    }

    #[test]
    fn numbers_and_non_numbers() {
        assert_eq!(Value::from_text("-1.5e3").as_f64(), Some(-1500.0));
        assert_eq!(Value::from_text("381,6404").as_f64(), None);
        assert_eq!(Value::Unavailable.as_f64(), None);
    }

    #[test]
    fn enums_round_trip_their_spelling() {
        for c in [Category::Sample, Category::Event, Category::Condition] {
            assert_eq!(c.as_str().parse::<Category>().unwrap(), c);
        }
        for l in [
            ConditionLevel::Normal,
            ConditionLevel::Warning,
            ConditionLevel::Fault,
            ConditionLevel::Unavailable,
        ] {
            assert_eq!(l.as_str().parse::<ConditionLevel>().unwrap(), l);
        }
        assert!("BOGUS".parse::<Category>().is_err());
        assert!(ConditionLevel::Fault.is_active() && !ConditionLevel::Normal.is_active());
    }
}
