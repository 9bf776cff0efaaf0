use serde::{Deserialize, Serialize};

use crate::Category;

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
