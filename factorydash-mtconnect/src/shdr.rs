//! SHDR, the pipe-delimited protocol adapters speak to agents (MTConnect Part 1 leaves the
//! adapter protocol to the implementation; this is the reference agent's: "Adapter Agent
//! Protocol", cppagent `README` and `src/mtconnect/pipeline/shdr_tokenizer`).
//!
//! A line is `timestamp|key|value[|key|value…]`. What follows a key depends on its data
//! item, so decoding needs the device model ([`ShdrDecoder`]):
//! - a CONDITION: `level|nativeCode|nativeSeverity|qualifier|message`;
//! - a MESSAGE: `nativeCode|text`; a 1.x ALARM: `code|nativeCode|severity|state|text`;
//! - a TIME_SERIES: `sampleCount|sampleRate|values`;
//! - anything else: one value.
//!
//! Lines starting with `*` (protocol commands) and asset commands (`@ASSET@` …) are skipped.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use factorydash_core::{Category, ConditionLevel, ConditionState, Observation, Value};

use crate::devices::{Component, DataItem, Devices};
use crate::problem::{Problem, ProblemKind};
use crate::time::parse_timestamp;
use crate::xml::problem;

/// Maps one device's SHDR keys (data item names, ids, and `<Source>`-less names) to its data
/// items, and decodes lines into observations.
#[derive(Debug)]
pub struct ShdrDecoder<'d> {
    device: String,
    items: HashMap<&'d str, (&'d DataItem, &'d Component)>,
    /// Unknown keys already reported (each is reported once).
    unknown: std::collections::HashSet<String>,
}

/// One decoded line: its timestamp and observations (sequence 0: the caller numbers them).
#[derive(Debug, Clone, PartialEq)]
pub struct ShdrLine {
    /// The line's timestamp (UTC).
    pub timestamp: DateTime<Utc>,
    /// Its observations, in line order.
    pub observations: Vec<Observation>,
}

impl<'d> ShdrDecoder<'d> {
    /// A decoder for the device named `device` in `devices`, or `None` if there is none.
    pub fn new(devices: &'d Devices, device: &str) -> Option<Self> {
        let root = devices
            .devices
            .iter()
            .find(|d| d.name.as_deref() == Some(device) || d.id == device)?;
        let mut items = HashMap::new();
        for (_, component) in root.walk() {
            for item in &component.data_items {
                items.entry(item.id.as_str()).or_insert((item, component));
                if let Some(name) = &item.name {
                    items.insert(name.as_str(), (item, component));
                }
            }
        }
        Some(ShdrDecoder {
            device: root.name.clone().unwrap_or_else(|| root.id.clone()),
            items,
            unknown: Default::default(),
        })
    }

    /// Decodes one line. Unknown keys (reported once each) and bad fields are skipped;
    /// `None` for a line with no observation (a command, a blank line, a bad timestamp).
    pub fn decode_line(
        &mut self,
        line: &str,
        line_number: u64,
        problems: &mut Vec<Problem>,
    ) -> Option<ShdrLine> {
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() || line.starts_with('*') {
            return None;
        }
        let mut fields = line.split('|');
        let ts_text = fields.next()?;
        let Some(ts) = parse_timestamp(ts_text) else {
            problems.push(problem(
                ProblemKind::InvalidAttribute,
                line_number,
                format!("line {line_number}: timestamp \"{ts_text}\" is not an ISO 8601 time; line skipped"),
            ));
            return None;
        };
        let mut observations = Vec::new();
        while let Some(key) = fields.next() {
            if key.starts_with('@') {
                return None; // asset commands: not observations
            }
            let key = key.trim();
            let Some(&(item, component)) = self
                .items
                .get(key)
                .or_else(|| key.split_once(':').and_then(|(_, k)| self.items.get(k)))
            else {
                if self.unknown.insert(key.to_owned()) {
                    problems.push(problem(
                        ProblemKind::Unexpected,
                        line_number,
                        format!(
                            "line {line_number}: key `{key}` is no data item of {}; its values are skipped (reported once)",
                            self.device
                        ),
                    ));
                }
                fields.next();
                continue;
            };
            let Some(category) = item.category else {
                continue;
            };
            let mut take =
                |n: usize| -> Vec<&str> { (0..n).map(|_| fields.next().unwrap_or("")).collect() };
            let mut condition = None;
            let value = if category == Category::Condition {
                let f = take(5);
                let level = match f[0].to_ascii_lowercase().as_str() {
                    "normal" => ConditionLevel::Normal,
                    "warning" => ConditionLevel::Warning,
                    "fault" => ConditionLevel::Fault,
                    "unavailable" => ConditionLevel::Unavailable,
                    other => {
                        problems.push(problem(
                            ProblemKind::InvalidValue,
                            line_number,
                            format!("line {line_number}: condition level `{other}` of `{key}` is unknown; skipped"),
                        ));
                        continue;
                    }
                };
                let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
                condition = Some(ConditionState {
                    level,
                    native_code: opt(f[1]),
                    native_severity: opt(f[2]),
                    qualifier: opt(f[3]),
                });
                if level == ConditionLevel::Unavailable {
                    Value::Unavailable
                } else {
                    Value::Text(f[4].trim().to_owned())
                }
            } else {
                match item.kind.as_str() {
                    "MESSAGE" => Value::from_text(take(2)[1]),
                    "ALARM" => Value::from_text(take(5)[4]),
                    _ if item.representation.as_deref() == Some("TIME_SERIES") => {
                        Value::from_text(take(3)[2])
                    }
                    _ => Value::from_text(take(1)[0]),
                }
            };
            observations.push(Observation {
                sequence: 0,
                timestamp: ts.utc,
                device: self.device.clone(),
                component_id: component.id.clone(),
                data_item_id: item.id.clone(),
                name: item.name.clone(),
                category,
                kind: factorydash_core::element_name(&item.kind),
                sub_type: item.sub_type.clone(),
                value,
                condition,
            });
        }
        Some(ShdrLine {
            timestamp: ts.utc,
            observations,
        })
    }
}

/// Decodes a whole log for one device: every line's observations, in order.
pub fn decode_log(
    decoder: &mut ShdrDecoder<'_>,
    log: &str,
    problems: &mut Vec<Problem>,
) -> Vec<ShdrLine> {
    let mut out = Vec::new();
    let mut offset = 0u64;
    for (i, line) in log.split_inclusive('\n').enumerate() {
        let before = problems.len();
        if let Some(decoded) = decoder.decode_line(line, i as u64 + 1, problems) {
            if !decoded.observations.is_empty() {
                out.push(decoded);
            }
        }
        // Problems point at the line's first byte in the log.
        for p in &mut problems[before..] {
            p.offset = offset;
        }
        offset += line.len() as u64;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_by_the_device_model() {
        let probe = br#"<MTConnectDevices><Header instanceId="1"/><Devices><Device id="d" name="M1"><DataItems>
            <DataItem id="avail" name="avail" type="AVAILABILITY" category="EVENT"/>
            <DataItem id="sys" name="system" type="SYSTEM" category="CONDITION"/>
            <DataItem id="msg" type="MESSAGE" category="EVENT"/>
            <DataItem id="xp" name="Xabs" type="POSITION" subType="ACTUAL" category="SAMPLE"/>
            </DataItems></Device></Devices></MTConnectDevices>"#;
        let devices = crate::parse_devices(probe).unwrap().value;
        let mut d = ShdrDecoder::new(&devices, "M1").unwrap();
        let mut problems = Vec::new();
        let line = d
            .decode_line("2016-10-04T19:32:30.318Z|avail|AVAILABLE|Xabs|1.5|system|fault|1010||HIGH|Limit switch|msg|42|hello|nope|1", 1, &mut problems)
            .unwrap();
        let o = &line.observations;
        assert_eq!(o.len(), 4);
        assert_eq!(
            (o[0].kind.as_str(), &o[0].value),
            ("Availability", &Value::Text("AVAILABLE".into()))
        );
        assert_eq!(
            (o[1].kind.as_str(), o[1].sub_type.as_deref()),
            ("Position", Some("ACTUAL"))
        );
        let c = o[2].condition.as_ref().unwrap();
        assert_eq!(
            (c.level, c.native_code.as_deref(), c.qualifier.as_deref()),
            (ConditionLevel::Fault, Some("1010"), Some("HIGH"))
        );
        assert_eq!(o[2].value, Value::Text("Limit switch".into()));
        assert_eq!(o[3].value, Value::Text("hello".into()));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(d
            .decode_line("* shdrVersion: 2", 2, &mut problems)
            .is_none());
        let unavailable = d
            .decode_line(
                "2016-10-04T19:32:30Z|system|Unavailable||||",
                3,
                &mut problems,
            )
            .unwrap();
        assert_eq!(unavailable.observations[0].value, Value::Unavailable);
    }
}
