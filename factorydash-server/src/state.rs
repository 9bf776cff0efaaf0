//! [`App`]: what the ingest tasks and the web handlers share, as its parts: the live hub
//! ([`LiveHub`]), the health registry ([`HealthRegistry`]), the agent supervisor
//! ([`Supervisor`]) and the agents' cutting tools ([`ToolBoard`]), with the store.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use factorydash_core::DeviceInfo;
use factorydash_store::{Store, StoreError};

use crate::health::HealthRegistry;
use crate::limits::LimitBoard;
use crate::live::LiveHub;
use crate::records::RecordBoard;
use crate::supervisor::Supervisor;
use crate::tools::ToolBoard;

/// The shared state.
pub struct App {
    /// Where observations are kept.
    pub store: Arc<dyn Store>,
    /// Which store this is, for the page ("memory", "sqlite" or "postgresql").
    pub store_kind: &'static str,
    /// What the browsers are told as it happens.
    pub live: Arc<LiveHub>,
    /// How ingest from each source is going (changes are pushed to [`App::live`]).
    pub health: HealthRegistry,
    /// The agents followed now, the writers' tasks and the process's stop.
    pub agents: Supervisor,
    /// Each followed agent's cutting tools, read from its `/assets` (in memory only).
    pub tools: Arc<ToolBoard>,
    /// Each device model's limits on its data items, from the last probe (in memory
    /// only).
    pub limits: LimitBoard,
    /// The device models as last read ([`App::devices`]).
    devices: Mutex<DevicesCopy>,
    /// The device records (display names, cells, ideal cycle times) and the plant's
    /// cells and lines (the configuration file's `[[cell]]` tables, with the records'
    /// cells placed first), by which the board groups its tiles ([`App::layout`]).
    pub records: Arc<RecordBoard>,
    /// Each device's figures over the current shift, computed every minute.
    pub shift: Arc<crate::report::ShiftBoard>,
    /// The store being opened, when `serve` listens before it is open.
    pub pending: std::sync::OnceLock<Arc<crate::pending::PendingStore>>,
    /// The alarm rules, their alarms and their deliveries.
    pub alarms: Arc<crate::alarms::AlarmHub>,
}

/// How long a copy of the device models is used before it is read again.
const DEVICES_FRESH: Duration = Duration::from_secs(1);

/// The device models as last read, and which change of them this process last made.
#[derive(Default)]
struct DevicesCopy {
    read: Option<(Instant, Arc<Vec<DeviceInfo>>)>,
    /// Counts [`App::devices_changed`]: a read that began before a change is not kept.
    generation: u64,
}

impl App {
    /// Why the store cannot be read because it is not open yet (see
    /// [`crate::pending::PendingStore`]), if so.
    pub fn store_outage(&self) -> Option<String> {
        self.pending.get()?.outage()
    }

    /// The shared state over `store`, the board laid out by `layout`, alarms raised by
    /// `alarms`.
    pub fn new(
        store: Arc<dyn Store>,
        store_kind: &'static str,
        layout: factorydash_core::layout::Layout,
        alarms: Arc<crate::alarms::AlarmHub>,
    ) -> Arc<Self> {
        let live = Arc::new(LiveHub::new());
        let tools = Arc::new(ToolBoard::default());
        let records = Arc::new(RecordBoard::new(layout));
        let shift = Arc::new(crate::report::ShiftBoard::default());
        // Sends what ingest publishes, off the ingest path (see `LiveHub::publish`), each
        // tile with its line of tools near their life limit and its display name.
        tokio::spawn(live.clone().run_publisher(store.clone(), {
            let tools = tools.clone();
            let records = records.clone();
            let shift = shift.clone();
            move |device, status| {
                tools.annotate(device, status);
                records.annotate(device, status);
                shift.annotate(device, status);
            }
        }));
        let app = Arc::new(App {
            store,
            store_kind,
            health: HealthRegistry::new({
                let live = live.clone();
                Box::new(move || live.health_changed())
            }),
            live,
            agents: Supervisor::default(),
            tools,
            limits: LimitBoard::default(),
            devices: Mutex::default(),
            records,
            shift,
            pending: std::sync::OnceLock::new(),
            alarms,
        });
        // Sends the sources' health when it changed, at most once a second (ingest changes
        // it several times per page).
        let weak = Arc::downgrade(&app);
        tokio::spawn(app.live.clone().run_health_publisher(move || {
            weak.upgrade()
                .map(|app| (app.health.all(), app.store_outage()))
        }));
        app
    }

    /// The plant's layout, the device records' cells placed first.
    pub fn layout(&self) -> Arc<factorydash_core::layout::Layout> {
        self.records.layout()
    }

    /// Fills in what the store does not hold of each status of `devices` (in their
    /// order): tools near their life limit, display names.
    pub fn annotate_all(
        &self,
        devices: &[DeviceInfo],
        statuses: &mut [factorydash_core::DeviceStatus],
    ) {
        self.tools.annotate_all(devices, statuses);
        for (d, s) in devices.iter().zip(statuses) {
            self.records.annotate(&d.key(), s);
            self.shift.annotate(&d.key(), s);
        }
    }

    fn devices_copy(&self) -> std::sync::MutexGuard<'_, DevicesCopy> {
        self.devices.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every agent's device models ([`Store::devices`]), read from the store at most once a
    /// second: they change only when an agent is probed (this process then forgets its
    /// copy, [`App::devices_changed`]; another process's probe is seen within a second).
    /// Requests that name a device resolve it here, so they cost no read of every model.
    ///
    /// # Errors
    /// The store's.
    pub async fn devices(&self) -> Result<Arc<Vec<DeviceInfo>>, StoreError> {
        let generation = {
            let copy = self.devices_copy();
            if let Some((at, devices)) = &copy.read {
                if at.elapsed() < DEVICES_FRESH {
                    return Ok(devices.clone());
                }
            }
            copy.generation
        };
        let devices = Arc::new(self.store.devices().await?);
        let mut copy = self.devices_copy();
        if copy.generation == generation {
            copy.read = Some((Instant::now(), devices.clone()));
        }
        Ok(devices)
    }

    /// Whether `agent` (its base URL) is followed now: where several agents have a device
    /// of one name, a name alone means the followed one ([`crate::devices::resolve`]).
    pub fn is_followed(&self, agent: &str) -> bool {
        self.agents.followed().iter().any(|f| f == agent)
    }

    /// The device models in `scope` ([`App::devices`], filtered): what a request may see
    /// and name. A device out of scope is, to that request, a device that does not exist.
    ///
    /// # Errors
    /// The store's.
    pub async fn devices_for(
        &self,
        scope: &crate::accounts::Scope,
    ) -> Result<Arc<Vec<DeviceInfo>>, StoreError> {
        let all = self.devices().await?;
        if scope.sees_everything() {
            return Ok(all);
        }
        Ok(Arc::new(
            all.iter()
                .filter(|d| scope.sees(&d.agent, &d.name))
                .cloned()
                .collect(),
        ))
    }

    /// The sources' health that `scope` may see: every source when it sees every device,
    /// else the agents with a device in scope.
    pub async fn health_for(
        &self,
        scope: &crate::accounts::Scope,
    ) -> Vec<crate::health::SourceHealth> {
        let all = self.health.all();
        if scope.sees_everything() {
            return all;
        }
        let devices = self.devices().await.unwrap_or_default();
        all.into_iter()
            .filter(|h| scope.sees_agent(&h.source, &devices))
            .collect()
    }

    /// Forgets the copy of the device models: this process has just stored new ones.
    pub fn devices_changed(&self) {
        let mut copy = self.devices_copy();
        copy.generation += 1;
        copy.read = None;
    }

    /// Pushes the newest observation of each data item in `observations`, read from
    /// `agent` (its base URL), and the status of its device, to the browsers
    /// ([`LiveHub::publish`]), and feeds them to the alarm rules ([`crate::alarms`]).
    pub fn publish(&self, agent: &str, observations: &[factorydash_core::Observation]) {
        self.alarms.observe(agent, observations);
        self.publish_relayed(agent, observations);
    }

    /// [`App::publish`] of a batch another process stored and this one relays (it holds
    /// only each data item's newest): shown, but not fed to the alarm rules, which run
    /// in the process that ingests the agent (else each process would raise its own
    /// alarms and page every receiver once per process).
    pub fn publish_relayed(&self, agent: &str, observations: &[factorydash_core::Observation]) {
        // An AssetChanged or AssetRemoved among them: the agent's tools are read again.
        self.tools.observed(agent, observations);
        self.live.publish(agent, observations);
    }
}
