//! What a device is doing now, summarised from the latest value of each of its data items.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{Category, ConditionLevel, Observation, Value};

/// An active (Warning or Fault) condition of a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveCondition {
    /// The condition's `dataItemId`.
    pub data_item_id: String,
    /// Its type in element-name form, e.g. `System`; serialised as `type`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Warning or Fault.
    pub level: ConditionLevel,
    /// The controller's code, if given.
    pub native_code: Option<String>,
    /// The message text.
    pub message: String,
}

/// What a status tile shows a device doing, in order of precedence: no data at all, not
/// available, a Fault active, then by `Execution`: `ACTIVE` running, `STOPPED`,
/// `INTERRUPTED` or `FEED_HOLD` stopped, anything else (`READY`, `WAIT`, …) idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceState {
    /// No observation of the device yet.
    NoData,
    /// `Availability` is `UNAVAILABLE`, or nothing tells the state.
    Unavailable,
    /// A Condition is at `Fault`.
    Faulted,
    /// `Execution` is `ACTIVE`.
    Running,
    /// `Execution` is `STOPPED`, `INTERRUPTED` or `FEED_HOLD`.
    Stopped,
    /// Available and not running.
    Idle,
}

impl DeviceState {
    /// The snake_case name, as serialised (`no_data`, `running`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceState::NoData => "no_data",
            DeviceState::Unavailable => "unavailable",
            DeviceState::Faulted => "faulted",
            DeviceState::Running => "running",
            DeviceState::Stopped => "stopped",
            DeviceState::Idle => "idle",
        }
    }

    /// Where a board that orders machines by what needs attention puts this state: 0 first.
    /// Faulted, then stopped (a person stopped it or must restart it), then unavailable,
    /// no data, idle, and running last.
    pub fn attention_rank(self) -> u8 {
        match self {
            DeviceState::Faulted => 0,
            DeviceState::Stopped => 1,
            DeviceState::Unavailable => 2,
            DeviceState::NoData => 3,
            DeviceState::Idle => 4,
            DeviceState::Running => 5,
        }
    }

    /// Every state, in [`DeviceState::attention_rank`] order.
    pub const BY_ATTENTION: [DeviceState; 6] = [
        DeviceState::Faulted,
        DeviceState::Stopped,
        DeviceState::Unavailable,
        DeviceState::NoData,
        DeviceState::Idle,
        DeviceState::Running,
    ];

    /// How a page shows it: its JSON name with every `_` a space (`no data`, `running`).
    pub fn label(self) -> &'static str {
        match self {
            DeviceState::NoData => "no data",
            other => other.as_str(),
        }
    }
}

/// A device's state at a glance (MTConnect Part 3 Events `Availability`, `Execution`,
/// `ControllerMode`, `EmergencyStop`, and its Conditions).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceStatus {
    /// The device name.
    pub device: String,
    /// The agent that serves it, as the caller names it to its readers (the server gives
    /// the agent's base URL with any credentials redacted). With the name, the device's
    /// identity: two agents may each serve a device of the same name.
    pub agent: String,
    /// `AVAILABLE` / `UNAVAILABLE` (`None`: never observed).
    pub availability: Option<Value>,
    /// `ACTIVE`, `READY`, `STOPPED`, `INTERRUPTED`, … (`None`: never observed).
    pub execution: Option<Value>,
    /// `AUTOMATIC`, `MANUAL`, `MANUAL_DATA_INPUT`, … (`None`: never observed).
    pub controller_mode: Option<Value>,
    /// `ARMED` / `TRIGGERED` (`None`: never observed).
    pub emergency_stop: Option<Value>,
    /// The program running or selected (`Program`, MTConnect Part 3; `None`: never
    /// observed).
    pub program: Option<Value>,
    /// The parts counted (`PartCount`; `None`: never observed).
    pub part_count: Option<Value>,
    /// The state shown at a glance, from the values above; see [`DeviceState`].
    pub state: DeviceState,
    /// Conditions at Warning or Fault now.
    pub active_conditions: Vec<ActiveCondition>,
    /// The newest timestamp among the device's latest observations (UTC), if any.
    pub newest: Option<DateTime<Utc>>,
    /// How many data items have a latest value.
    pub observed_items: usize,
    /// The tools of the device near their life limit, by label (`T12`; see
    /// [`crate::tools::near_limit_labels`]). Empty from [`DeviceStatus::from_latest`]:
    /// tools are assets, not observations, and whoever holds them fills this in.
    pub tools_near_limit: Vec<String>,
    /// The name an admin gave the device to show ([`crate::records::DeviceRecord`]);
    /// `None` from [`DeviceStatus::from_latest`]: whoever holds the records fills it in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The current shift's figures, from the summaries ([`ShiftFigures`]); `None` from
    /// [`DeviceStatus::from_latest`]: whoever holds them fills this in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shift: Option<ShiftFigures>,
}

/// A device's figures over the current shift so far (ISO 22400-2 factors, see
/// [`crate::oee`]), for its tile: `None` where not reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShiftFigures {
    /// The shift's name (`Today` without a shift running: the local day).
    pub shift: String,
    /// OEE, 0 to 1.
    pub oee: Option<f64>,
    /// Availability, 0 to 1.
    pub availability: Option<f64>,
}

impl DeviceStatus {
    /// Summarises `latest`, the latest observation of each data item of `device`, served by
    /// `agent` (observations of other device names are ignored; the caller gives one
    /// agent's). When a device has several data items of one type (two `Execution`s of
    /// two paths), the first in the listing's order wins.
    pub fn from_latest<'o>(
        device: &str,
        agent: &str,
        latest: impl IntoIterator<Item = &'o Observation>,
    ) -> Self {
        let mut s = DeviceStatus {
            device: device.to_owned(),
            agent: agent.to_owned(),
            availability: None,
            execution: None,
            controller_mode: None,
            emergency_stop: None,
            program: None,
            part_count: None,
            state: DeviceState::NoData,
            active_conditions: Vec::new(),
            newest: None,
            observed_items: 0,
            tools_near_limit: Vec::new(),
            display_name: None,
            shift: None,
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
                "Program" => &mut s.program,
                "PartCount" => &mut s.part_count,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(o.value.clone());
            }
        }
        s.state = s.classify();
        s
    }

    /// The line a tile shows of [`DeviceStatus::tools_near_limit`]: `Tool T12 near life
    /// limit`, `2 tools near life limit`, or `None`.
    pub fn tools_line(&self) -> Option<String> {
        crate::tools::near_limit_line(&self.tools_near_limit)
    }

    fn classify(&self) -> DeviceState {
        let execution = self.execution.as_ref().and_then(Value::as_text);
        if self.observed_items == 0 {
            DeviceState::NoData
        } else if self.availability == Some(Value::Unavailable)
            || (self.availability.is_none() && self.execution.is_none())
        {
            DeviceState::Unavailable
        } else if self
            .active_conditions
            .iter()
            .any(|c| c.level == ConditionLevel::Fault)
        {
            DeviceState::Faulted
        } else {
            match execution {
                Some("ACTIVE") => DeviceState::Running,
                Some("STOPPED" | "INTERRUPTED" | "FEED_HOLD") => DeviceState::Stopped,
                _ => DeviceState::Idle,
            }
        }
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
        let s = DeviceStatus::from_latest("M", "a", &all);
        assert_eq!(s.availability, Some(Value::Text("AVAILABLE".into())));
        assert_eq!(s.execution, Some(Value::Text("ACTIVE".into())));
        assert_eq!(s.controller_mode, Some(Value::Unavailable));
        assert_eq!(s.emergency_stop, None);
        assert_eq!(s.active_conditions.len(), 1);
        assert_eq!(s.active_conditions[0].message, "Limit switch Y+");
        assert_eq!(s.observed_items, 6);
        assert_eq!(s.newest, Some(all[5].timestamp));
        assert_eq!(s.state, DeviceState::Faulted, "a Fault wins over ACTIVE");
    }

    #[test]
    fn the_state_at_a_glance() {
        let state = |items: &[Observation]| DeviceStatus::from_latest("M", "a", items).state;
        let avail = obs("Availability", Category::Event, "AVAILABLE", 1);
        let gone = obs("Availability", Category::Event, "UNAVAILABLE", 1);
        let exec = |v| obs("Execution", Category::Event, v, 2);
        assert_eq!(state(&[]), DeviceState::NoData);
        assert_eq!(state(&[gone, exec("ACTIVE")]), DeviceState::Unavailable);
        assert_eq!(
            state(&[obs("Position", Category::Sample, "1", 3)]),
            DeviceState::Unavailable
        );
        assert_eq!(
            state(&[avail.clone(), exec("ACTIVE")]),
            DeviceState::Running
        );
        assert_eq!(
            state(&[avail.clone(), exec("FEED_HOLD")]),
            DeviceState::Stopped
        );
        assert_eq!(state(&[avail.clone(), exec("READY")]), DeviceState::Idle);
        let program = obs("Program", Category::Event, "O1234", 4);
        let parts = obs("PartCount", Category::Event, "17", 5);
        let s = DeviceStatus::from_latest("M", "a", &[avail, program, parts]);
        assert_eq!(
            (s.program, s.part_count, s.state),
            (
                Some(Value::Text("O1234".into())),
                Some(Value::Text("17".into())),
                DeviceState::Idle
            )
        );
    }
}
