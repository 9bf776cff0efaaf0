//! What a device is doing now, summarised from the latest value of each of its data items.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{Category, ConditionLevel, Observation, Value};

/// An active (Warning or Fault) condition of a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActiveCondition {
    /// The condition's `dataItemId`.
    pub data_item_id: String,
    /// Its type, e.g. `SYSTEM`.
    pub kind: String,
    /// Warning or Fault.
    pub level: ConditionLevel,
    /// The controller's code, if given.
    pub native_code: Option<String>,
    /// The message text.
    pub message: String,
}

/// A device's state at a glance (MTConnect Part 3 Events `Availability`, `Execution`,
/// `ControllerMode`, `EmergencyStop`, and its Conditions).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceStatus {
    /// The device name.
    pub device: String,
    /// `AVAILABLE` / `UNAVAILABLE` (`None`: never observed).
    pub availability: Option<Value>,
    /// `ACTIVE`, `READY`, `STOPPED`, `INTERRUPTED`, … (`None`: never observed).
    pub execution: Option<Value>,
    /// `AUTOMATIC`, `MANUAL`, `MANUAL_DATA_INPUT`, … (`None`: never observed).
    pub controller_mode: Option<Value>,
    /// `ARMED` / `TRIGGERED` (`None`: never observed).
    pub emergency_stop: Option<Value>,
    /// Conditions at Warning or Fault now.
    pub active_conditions: Vec<ActiveCondition>,
    /// The newest timestamp among the device's latest observations (UTC), if any.
    pub newest: Option<DateTime<Utc>>,
    /// How many data items have a latest value.
    pub observed_items: usize,
}

impl DeviceStatus {
    /// Summarises `latest`, the latest observation of each data item of `device` (others
    /// are ignored). When a device has several data items of one type (two `Execution`s of
    /// two paths), the first in the listing's order wins.
    pub fn from_latest<'o>(
        device: &str,
        latest: impl IntoIterator<Item = &'o Observation>,
    ) -> Self {
        let mut s = DeviceStatus {
            device: device.to_owned(),
            availability: None,
            execution: None,
            controller_mode: None,
            emergency_stop: None,
            active_conditions: Vec::new(),
            newest: None,
            observed_items: 0,
        };
        for o in latest.into_iter().filter(|o| o.device == device) {
            s.observed_items += 1;
            s.newest = s.newest.max(Some(o.timestamp));
            if o.category == Category::Condition {
                if let Some(c) = o.condition.as_ref().filter(|c| c.level.is_active()) {
                    s.active_conditions.push(ActiveCondition {
                        data_item_id: o.data_item_id.clone(),
                        kind: o.kind.clone(),
                        level: c.level,
                        native_code: c.native_code.clone(),
                        message: o.value.as_text().unwrap_or("").to_owned(),
                    });
                }
                continue;
            }
            let slot = match o.kind.as_str() {
                "Availability" => &mut s.availability,
                "Execution" => &mut s.execution,
                "ControllerMode" => &mut s.controller_mode,
                "EmergencyStop" => &mut s.emergency_stop,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(o.value.clone());
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ConditionState;

    fn obs(kind: &str, category: Category, value: &str, seq: u64) -> Observation {
        Observation {
            sequence: seq,
            timestamp: DateTime::from_timestamp(1_462_200_000 + seq as i64, 0).unwrap(),
            device: "M".into(),
            component_id: "c".into(),
            data_item_id: format!("{kind}{seq}"),
            name: None,
            category,
            kind: kind.into(),
            sub_type: None,
            value: Value::from_text(value),
            condition: None,
        }
    }

    #[test]
    fn summarises_state_and_active_conditions() {
        let mut fault = obs("SYSTEM", Category::Condition, "Limit switch Y+", 5);
        fault.condition = Some(ConditionState {
            level: ConditionLevel::Fault,
            native_code: Some("1010".into()),
            native_severity: None,
            qualifier: None,
        });
        let mut normal = obs("LOGIC_PROGRAM", Category::Condition, "", 6);
        normal.condition = Some(ConditionState {
            level: ConditionLevel::Normal,
            native_code: None,
            native_severity: None,
            qualifier: None,
        });
        let mut other = obs("Execution", Category::Event, "READY", 9);
        other.device = "N".into();
        let all = [
            obs("Availability", Category::Event, "AVAILABLE", 1),
            obs("Execution", Category::Event, "ACTIVE", 2),
            obs("ControllerMode", Category::Event, "UNAVAILABLE", 3),
            obs("Position", Category::Sample, "1.0", 4),
            fault,
            normal,
            other,
        ];
        let s = DeviceStatus::from_latest("M", &all);
        assert_eq!(s.availability, Some(Value::Text("AVAILABLE".into())));
        assert_eq!(s.execution, Some(Value::Text("ACTIVE".into())));
        assert_eq!(s.controller_mode, Some(Value::Unavailable));
        assert_eq!(s.emergency_stop, None);
        assert_eq!(s.active_conditions.len(), 1);
        assert_eq!(s.active_conditions[0].message, "Limit switch Y+");
        assert_eq!(s.observed_items, 6);
        assert_eq!(s.newest, Some(all[5].timestamp));
    }
}
