//! [`App`]: what the ingest tasks and the web handlers share, as its three parts: the live
//! hub ([`LiveHub`]), the health registry ([`HealthRegistry`]) and the agent supervisor
//! ([`Supervisor`]), with the store.

use std::sync::Arc;

use factorydash_store::Store;

use crate::health::HealthRegistry;
use crate::live::LiveHub;
use crate::supervisor::Supervisor;

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
}

impl App {
    /// The shared state over `store`.
    pub fn new(store: Arc<dyn Store>, store_kind: &'static str) -> Arc<Self> {
        let live = Arc::new(LiveHub::new());
        // Sends what ingest publishes, off the ingest path (see `LiveHub::publish`).
        tokio::spawn(live.clone().run_publisher(store.clone()));
        let app = Arc::new(App {
            store,
            store_kind,
            health: HealthRegistry::new({
                let live = live.clone();
                Box::new(move || live.health_changed())
            }),
            live,
            agents: Supervisor::default(),
        });
        // Sends the sources' health when it changed, at most once a second (ingest changes
        // it several times per page).
        let weak = Arc::downgrade(&app);
        tokio::spawn(
            app.live
                .clone()
                .run_health_publisher(move || weak.upgrade().map(|app| app.health.all())),
        );
        app
    }

    /// Pushes the newest observation of each data item in `observations`, and the status of
    /// its device, to the browsers ([`LiveHub::publish`]).
    pub fn publish(&self, observations: &[factorydash_core::Observation]) {
        self.live.publish(observations);
    }
}
