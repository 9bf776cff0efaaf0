//! Cutting tools: each followed agent's CuttingTool assets (MTConnect Part 4), kept in
//! memory (the latest set per agent, never stored) on the [`ToolBoard`], placed on their
//! devices ([`place`]), and what the pages show of them ([`view`]). They are read by
//! [`crate::tool_ingest`].
//!
//! A tile shows a line when a tool of its device is near its life limit
//! ([`factorydash_core::tools`] has the rule): [`ToolBoard::annotate`] fills in
//! [`DeviceStatus::tools_near_limit`] wherever a status is made for a page, the API or a
//! live message.

pub mod view;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use chrono::{DateTime, Utc};
use factorydash_core::tools::{near_limit_labels, CuttingTool};
use factorydash_core::{DeviceInfo, DeviceKey, DeviceStatus, Observation};
use tokio::sync::Notify;

/// What is known of an agent's tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolsState {
    /// Not read yet.
    NotRead,
    /// Read at this instant (UTC).
    Read(DateTime<Utc>),
    /// The agent refused `/assets` (404 or an MTConnectError): it serves none.
    NotServed,
    /// The last read failed (the tools shown, if any, are an earlier read's).
    Failed {
        /// When the tools shown were read, if ever.
        read: Option<DateTime<Utc>>,
        /// What went wrong, credentials redacted.
        error: String,
    },
}

/// One device's tools, for its page.
#[derive(Debug, Clone)]
pub struct DeviceTools {
    /// Its CuttingTool assets, in the agent's order (removed ones left out).
    pub tools: Vec<CuttingTool>,
    /// What is known of its agent's tools.
    pub state: ToolsState,
}

/// Wakes an agent's reader: something said its assets changed.
#[derive(Default)]
struct Signal {
    changed: AtomicBool,
    wake: Notify,
}

/// An agent's tools.
struct AgentTools {
    signal: Arc<Signal>,
    /// By device name.
    by_device: HashMap<String, Vec<CuttingTool>>,
    state: ToolsState,
    /// How many readers hold the agent (one; two while an agent is being restarted).
    readers: usize,
}

/// Every followed agent's tools, by agent (its URL without credentials).
#[derive(Default)]
pub struct ToolBoard {
    agents: Mutex<HashMap<String, AgentTools>>,
}

/// An agent's place on the board while its reader runs: taken away when dropped (the
/// agent paused, removed, or its task stopped).
pub struct Registration {
    board: Weak<ToolBoard>,
    agent: String,
    signal: Arc<Signal>,
}

impl Registration {
    /// Whether an asset changed since the last call (and forgets it).
    pub fn take_changed(&self) -> bool {
        self.signal.changed.swap(false, Ordering::AcqRel)
    }

    /// Waits until an asset changes (returns at once if one did since
    /// [`Registration::take_changed`]).
    pub async fn changed(&self) {
        loop {
            let notified = self.signal.wake.notified();
            if self.signal.changed.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(board) = self.board.upgrade() {
            let mut agents = board.lock();
            if let Some(a) = agents.get_mut(&self.agent) {
                a.readers -= 1;
                if a.readers == 0 {
                    agents.remove(&self.agent);
                }
            }
        }
    }
}

impl ToolBoard {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, AgentTools>> {
        self.agents.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Puts `agent` on the board, with no tools read yet, for as long as the registration
    /// lives.
    pub fn register(self: &Arc<Self>, agent: &str) -> Registration {
        let mut agents = self.lock();
        let entry = agents
            .entry(agent.to_owned())
            .or_insert_with(|| AgentTools {
                signal: Arc::default(),
                by_device: HashMap::new(),
                state: ToolsState::NotRead,
                readers: 0,
            });
        entry.readers += 1;
        Registration {
            board: Arc::downgrade(self),
            agent: agent.to_owned(),
            signal: entry.signal.clone(),
        }
    }

    /// Hears `observations` read from `agent`: an `AssetChanged` or `AssetRemoved` among
    /// them (MTConnect Part 3: its value is the id of the asset that changed or was
    /// removed; `UNAVAILABLE` says nothing of one) wakes the agent's reader. Cheap: called
    /// for every batch published.
    pub fn observed(&self, agent: &str, observations: &[Observation]) {
        if !observations.iter().any(|o| {
            (o.kind == "AssetChanged" || o.kind == "AssetRemoved") && !o.value.is_unavailable()
        }) {
            return;
        }
        if let Some(a) = self.lock().get(agent) {
            a.signal.changed.store(true, Ordering::Release);
            a.signal.wake.notify_one();
        }
    }

    /// The tools of `device`, for its page.
    pub fn device_tools(&self, device: &DeviceKey) -> DeviceTools {
        match self.lock().get(&device.agent) {
            Some(a) => DeviceTools {
                tools: a.by_device.get(&device.device).cloned().unwrap_or_default(),
                state: a.state.clone(),
            },
            None => DeviceTools {
                tools: Vec::new(),
                state: ToolsState::NotRead,
            },
        }
    }

    /// The labels of `device`'s tools near their life limit.
    pub fn near_limit(&self, device: &DeviceKey) -> Vec<String> {
        self.lock()
            .get(&device.agent)
            .and_then(|a| a.by_device.get(&device.device))
            .map(near_limit_labels)
            .unwrap_or_default()
    }

    /// Fills in `status`'s [`DeviceStatus::tools_near_limit`] for `device`.
    pub fn annotate(&self, device: &DeviceKey, status: &mut DeviceStatus) {
        status.tools_near_limit = self.near_limit(device);
    }

    /// Fills in the statuses of `devices` (in their order, as
    /// [`crate::devices::statuses`] gives them).
    pub fn annotate_all(&self, devices: &[DeviceInfo], statuses: &mut [DeviceStatus]) {
        for (d, s) in devices.iter().zip(statuses) {
            self.annotate(&d.key(), s);
        }
    }

    /// Keeps `by_device` as `agent`'s tools (when `by_device` is `Some`) and `state`;
    /// returns the devices whose line of tools near their limit changed.
    pub fn set(
        &self,
        agent: &str,
        by_device: Option<HashMap<String, Vec<CuttingTool>>>,
        state: ToolsState,
    ) -> Vec<String> {
        let mut agents = self.lock();
        let Some(a) = agents.get_mut(agent) else {
            return Vec::new();
        };
        a.state = state;
        let Some(by_device) = by_device else {
            return Vec::new();
        };
        let mut changed: Vec<String> = Vec::new();
        for name in a.by_device.keys().chain(by_device.keys()) {
            let before = a.by_device.get(name).map(near_limit_labels);
            let after = by_device.get(name).map(near_limit_labels);
            if before.unwrap_or_default() != after.unwrap_or_default() && !changed.contains(name) {
                changed.push(name.clone());
            }
        }
        a.by_device = by_device;
        changed
    }
}

/// Places `tools` on `devices` (one agent's device models): by `deviceUuid` (the device's
/// `uuid`, else its name); a tool without `deviceUuid` goes to the agent's only device,
/// if it has one. Removed tools, and those of no device here, are left out; returns how
/// many were placed nowhere.
pub fn place(
    tools: Vec<CuttingTool>,
    devices: &[&DeviceInfo],
) -> (HashMap<String, Vec<CuttingTool>>, usize) {
    let mut by_device: HashMap<String, Vec<CuttingTool>> = HashMap::new();
    let mut nowhere = 0;
    for tool in tools.into_iter().filter(|t| !t.removed) {
        let device = match &tool.device_uuid {
            Some(uuid) => devices
                .iter()
                .find(|d| d.uuid.as_deref() == Some(uuid.as_str()))
                .or_else(|| devices.iter().find(|d| d.name == *uuid)),
            None => match devices {
                [only] => Some(only),
                _ => None,
            },
        };
        match device {
            Some(d) => by_device.entry(d.name.clone()).or_default().push(tool),
            None => nowhere += 1,
        }
    }
    (by_device, nowhere)
}

#[cfg(test)]
mod tests {
    use factorydash_core::tools::{CountDirection, ToolLife, ToolLifeKind};

    use super::*;

    fn device(name: &str, uuid: Option<&str>) -> DeviceInfo {
        DeviceInfo {
            agent: "http://a:5000".into(),
            name: name.into(),
            uuid: uuid.map(str::to_owned),
            id: name.into(),
            data_items: Vec::new(),
        }
    }

    fn tool(id: &str, uuid: Option<&str>) -> CuttingTool {
        CuttingTool {
            asset_id: id.into(),
            device_uuid: uuid.map(str::to_owned),
            ..CuttingTool::default()
        }
    }

    #[test]
    fn tools_are_placed_by_uuid_then_name_and_without_one_on_an_only_device() {
        let (m1, m2) = (device("M1", Some("u1")), device("M2", None));
        let removed = CuttingTool {
            removed: true,
            ..tool("gone", Some("u1"))
        };
        let (placed, nowhere) = place(
            vec![
                tool("a", Some("u1")),
                tool("b", Some("M2")),
                tool("c", None),
                tool("d", Some("elsewhere")),
                removed,
            ],
            &[&m1, &m2],
        );
        let ids = |name: &str| -> Vec<&str> {
            placed[name].iter().map(|t| t.asset_id.as_str()).collect()
        };
        assert_eq!(ids("M1"), ["a"]);
        assert_eq!(ids("M2"), ["b"]);
        assert_eq!(nowhere, 2, "c (two devices) and d");
        let (placed, nowhere) = place(vec![tool("c", None)], &[&m1]);
        assert_eq!((placed["M1"].len(), nowhere), (1, 0));
    }

    #[tokio::test]
    async fn the_board_tells_which_tiles_changed_and_forgets_an_agent_unregistered() {
        let board = Arc::new(ToolBoard::default());
        let agent = "http://a:5000";
        let key = DeviceKey::new(agent, "M1");
        let registration = board.register(agent);
        let worn = CuttingTool {
            program_tool_number: Some("12".into()),
            lives: vec![ToolLife::new(
                ToolLifeKind::PartCount,
                CountDirection::Up,
                Some(195.0),
                Some(200.0),
            )],
            ..tool("M1.T12", Some("u1"))
        };
        let read = |tools: Vec<CuttingTool>| {
            let mut by_device = HashMap::new();
            by_device.insert("M1".to_owned(), tools);
            board.set(agent, Some(by_device), ToolsState::Read(Utc::now()))
        };
        assert_eq!(read(vec![tool("M1.T3", Some("u1"))]), Vec::<String>::new());
        assert_eq!(read(vec![worn.clone()]), ["M1"]);
        assert_eq!(board.near_limit(&key), ["T12"]);
        let mut status = DeviceStatus::from_latest("M1", agent, &[]);
        board.annotate(&key, &mut status);
        assert_eq!(
            status.tools_line().as_deref(),
            Some("Tool T12 near life limit")
        );
        assert_eq!(read(vec![worn]), Vec::<String>::new(), "the same line");
        assert_eq!(board.device_tools(&key).tools.len(), 1);

        // An AssetChanged naming an asset wakes the reader; UNAVAILABLE, and other
        // observations, do not.
        let observation = |kind: &str, value: &str| Observation {
            sequence: 1,
            timestamp: Utc::now(),
            device: "M1".into(),
            component_id: "M1".into(),
            data_item_id: "a".into(),
            name: None,
            category: factorydash_core::Category::Event,
            kind: kind.into(),
            sub_type: None,
            value: factorydash_core::Value::from_text(value),
            condition: None,
        };
        board.observed(
            agent,
            &[
                observation("AssetChanged", "UNAVAILABLE"),
                observation("Execution", "M1.T3"),
            ],
        );
        assert!(!registration.take_changed());
        board.observed(agent, &[observation("AssetChanged", "M1.T3")]);
        registration.changed().await;
        assert!(registration.take_changed());
        assert!(!registration.take_changed(), "taken");

        drop(registration);
        assert!(board.near_limit(&key).is_empty());
        assert_eq!(board.device_tools(&key).state, ToolsState::NotRead);
    }
}
