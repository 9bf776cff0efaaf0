//! The limits each device model sets on its data items (MTConnect Part 2, DataItem
//! `Constraints` and Component `Specifications`; read by
//! [`factorydash_mtconnect::Devices::limits`]), kept in memory for `/api/devices` and
//! the device page's chart.
//!
//! Like the cutting tools, they are not stored: the stores keep the flattened device
//! model ([`factorydash_core::DeviceInfo`]) whose schema did not change for them, and
//! every `/probe` (at each start of ingest, and again when the agent's model changes)
//! or recording sets an agent's limits anew. Until its first probe answers, an agent's
//! data items have none.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use factorydash_core::limits::Limit;
use factorydash_core::DeviceKey;

/// At most this many limits are kept per data item (a device model is bounded by the
/// document's size; this bounds what one data item's JSON may hold).
pub const MAX_LIMITS_PER_ITEM: usize = 32;

/// One device's data items with limits, by `dataItemId`.
pub type ItemLimits = HashMap<String, Vec<Limit>>;

/// Every agent's devices' limits.
#[derive(Default)]
pub struct LimitBoard {
    by_device: Mutex<HashMap<DeviceKey, Arc<ItemLimits>>>,
}

impl LimitBoard {
    /// Replaces what `agent`'s devices' limits are: `devices` as
    /// [`factorydash_mtconnect::Devices::limits`] gives them (device name, then each
    /// data item's `id` and limits).
    pub fn set(&self, agent: &str, devices: Vec<(String, Vec<factorydash_mtconnect::ItemLimits>)>) {
        let mut by_device = self.by_device.lock().unwrap_or_else(|e| e.into_inner());
        by_device.retain(|k, _| k.agent != agent);
        for (device, items) in devices {
            if items.is_empty() {
                continue;
            }
            let items = items
                .into_iter()
                .map(|(id, mut limits)| {
                    limits.truncate(MAX_LIMITS_PER_ITEM);
                    (id, limits)
                })
                .collect();
            by_device.insert(DeviceKey::new(agent, device), Arc::new(items));
        }
    }

    /// The limits of the data items of `device`, if it has any.
    pub fn of(&self, device: &DeviceKey) -> Option<Arc<ItemLimits>> {
        let by_device = self.by_device.lock().unwrap_or_else(|e| e.into_inner());
        by_device.get(device).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use factorydash_core::limits::{LimitKind, LimitSource};

    #[test]
    fn an_agent_s_limits_are_replaced_whole() {
        let board = LimitBoard::default();
        let max = Limit::new(LimitKind::Maximum, 1.0, LimitSource::Constraints);
        board.set(
            "http://a",
            vec![("M".into(), vec![("x".into(), vec![max.clone()])])],
        );
        board.set(
            "http://b",
            vec![("M".into(), vec![("y".into(), vec![max.clone()])])],
        );
        let a = DeviceKey::new("http://a", "M");
        assert_eq!(board.of(&a).unwrap()["x"], std::slice::from_ref(&max));
        board.set("http://a", vec![("M".into(), vec![])]);
        assert!(board.of(&a).is_none());
        assert!(board.of(&DeviceKey::new("http://b", "M")).is_some());
    }
}
