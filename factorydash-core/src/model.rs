use serde::{Deserialize, Serialize};

use crate::Category;

/// Which device: the agent that serves it (its base URL) and the device's `name` there.
///
/// MTConnect Part 2, "Device": a device's `name` (and its `uuid`) is unique within its
/// agent, but not across agents: two cells' agents often both name their machine after its
/// model (`Mazak`). factorydash keys every device, latest value and series by both parts.
/// The name rather than the `uuid` is the second part because every observation names its
/// device (a DeviceStream's `name`) while the `uuid` is optional in older agents; within
/// one agent the two identify the same device.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceKey {
    /// The agent's base URL, as ingest names it ([`crate::Batch::agent`]).
    pub agent: String,
    /// The device's `name` at that agent.
    pub device: String,
}

impl DeviceKey {
    /// The key of `device` at `agent`.
    pub fn new(agent: impl Into<String>, device: impl Into<String>) -> Self {
        DeviceKey {
            agent: agent.into(),
            device: device.into(),
        }
    }
}

/// A device as the dashboard and the stores see it: MTConnect Part 2, "Device", with
/// its data items flattened out of the component tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceInfo {
    /// The agent's base URL this device was probed from.
    pub agent: String,
    /// The device's `name` (what a DeviceStream's `name` refers to).
    pub name: String,
    /// The device's `uuid`, if given.
    pub uuid: Option<String>,
    /// The device's `id`.
    pub id: String,
    /// Every data item of the device and of its components, in document order.
    pub data_items: Vec<DataItemInfo>,
}

impl DeviceInfo {
    /// Its identity: its agent and its name.
    pub fn key(&self) -> DeviceKey {
        DeviceKey::new(&self.agent, &self.name)
    }
}

/// A data item with the component it belongs to: MTConnect Part 2, "DataItem".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataItemInfo {
    /// The data item's `id` (what observations carry as `dataItemId`).
    pub id: String,
    /// The data item's `name`, if any.
    pub name: Option<String>,
    /// `SAMPLE`, `EVENT` or `CONDITION`.
    pub category: Category,
    /// The data item's `type` as the Devices document writes it, e.g. `POSITION`,
    /// `EXECUTION`, `x:MOTION` (its observations' [`Observation::kind`](crate::Observation::kind)
    /// is [`element_name`](crate::element_name) of it). Serialised as `type`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The `subType`, if any.
    pub sub_type: Option<String>,
    /// The `units` (MTConnect units such as `MILLIMETER`), if any.
    pub units: Option<String>,
    /// The element name of the owning component, e.g. `Linear`, `Controller`, `Device`.
    pub component: String,
    /// The owning component's `id`.
    pub component_id: String,
    /// The owning component's `name`, if any.
    pub component_name: Option<String>,
}
