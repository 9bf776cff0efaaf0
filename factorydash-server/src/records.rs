//! [`RecordBoard`]: the device records an admin keeps ([`DeviceRecord`]: display name,
//! cell, description, ideal cycle time), read from the store at start, every
//! [`RELOAD_EVERY`] (another process on the same PostgreSQL may change them) and after
//! each change here; and the plant's layout with the records' cells placed first
//! ([`Layout::with_assignments`]), which the board and the `cell:` and `line:` scope
//! rules read.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use factorydash_core::layout::Layout;
use factorydash_core::records::DeviceRecord;
use factorydash_core::{DeviceKey, DeviceStatus};
use factorydash_store::{Store, StoreError};

/// How often the records are read again from the store.
pub const RELOAD_EVERY: Duration = Duration::from_secs(30);

/// Records by agent, then device name.
pub type Records = BTreeMap<String, BTreeMap<String, DeviceRecord>>;

/// The records and the layout they place devices in.
pub struct RecordBoard {
    /// The configuration's layout, before any record.
    base: Layout,
    now: RwLock<(Arc<Records>, Arc<Layout>)>,
}

impl RecordBoard {
    /// No records yet, over the configuration's `layout`.
    pub fn new(layout: Layout) -> Self {
        let placed = Arc::new(layout.clone());
        RecordBoard {
            base: layout,
            now: RwLock::new((Arc::default(), placed)),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, (Arc<Records>, Arc<Layout>)> {
        self.now.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The configuration's layout, before any record (where its patterns alone put a
    /// device).
    pub fn base_layout(&self) -> &Layout {
        &self.base
    }

    /// The layout with the records' cells placed first.
    pub fn layout(&self) -> Arc<Layout> {
        self.read().1.clone()
    }

    /// Every record.
    pub fn all(&self) -> Arc<Records> {
        self.read().0.clone()
    }

    /// The record of `device` at `agent` (its base URL as shown), if any.
    pub fn get(&self, agent: &str, device: &str) -> Option<DeviceRecord> {
        self.read().0.get(agent)?.get(device).cloned()
    }

    /// Takes `records` as the whole set.
    pub fn set(&self, records: Vec<DeviceRecord>) {
        let mut by: Records = BTreeMap::new();
        for r in records {
            by.entry(r.agent.clone())
                .or_default()
                .insert(r.device.clone(), r);
        }
        let layout = self.base.with_assignments(by.values().flat_map(|d| {
            d.values()
                .filter_map(|r| Some((r.agent.as_str(), r.device.as_str(), r.cell.as_deref()?)))
        }));
        *self.now.write().unwrap_or_else(|p| p.into_inner()) = (Arc::new(by), Arc::new(layout));
    }

    /// Reads the records from `store`.
    ///
    /// # Errors
    /// The store's.
    pub async fn load(&self, store: &dyn Store) -> Result<(), StoreError> {
        self.set(store.device_records().await?);
        Ok(())
    }

    /// Keeps the records current, read again every [`RELOAD_EVERY`] (the caller reads them
    /// at start, [`RecordBoard::load`]), for as long as the process runs.
    pub async fn run(self: Arc<Self>, store: Arc<dyn Store>) {
        // Read at start by the caller: the first reload comes after one period.
        let mut tick =
            tokio::time::interval_at(tokio::time::Instant::now() + RELOAD_EVERY, RELOAD_EVERY);
        let mut told = false;
        loop {
            tick.tick().await;
            match self.load(&*store).await {
                Ok(()) => told = false,
                Err(e) if !told => {
                    told = true;
                    tracing::warn!(error = %e, "cannot read the device records: the board shows the last ones read");
                }
                Err(_) => {}
            }
        }
    }

    /// Fills in `status`'s display name from `device`'s record.
    pub fn annotate(&self, device: &DeviceKey, status: &mut DeviceStatus) {
        status.display_name = self
            .read()
            .0
            .get(&device.agent)
            .and_then(|d| d.get(&device.device))
            .and_then(|r| r.display_name.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use factorydash_core::layout::{CellSpec, Placement};

    #[test]
    fn a_record_places_its_device_and_names_it() {
        let layout = Layout::new(vec![
            CellSpec {
                name: "Cell A".into(),
                line: Some("Line 1".into()),
                devices: vec!["Mazak*".into()],
            },
            CellSpec {
                name: "Cell B".into(),
                line: None,
                devices: vec!["Hurco*".into()],
            },
        ])
        .unwrap();
        let board = RecordBoard::new(layout);
        assert_eq!(
            board.layout().place("http://a", "Mazak01"),
            Placement::Cell(0)
        );
        let mut r = DeviceRecord::new("http://a", "Mazak01");
        r.cell = Some("Cell B".into());
        r.display_name = Some("VTC bay 3".into());
        board.set(vec![r]);
        assert_eq!(
            board.layout().place("http://a", "Mazak01"),
            Placement::Cell(1)
        );
        assert_eq!(
            board.layout().place("http://b", "Mazak01"),
            Placement::Cell(0)
        );
        let key = DeviceKey::new("http://a", "Mazak01");
        let mut status = DeviceStatus::from_latest("Mazak01", "http://a", []);
        board.annotate(&key, &mut status);
        assert_eq!(status.display_name.as_deref(), Some("VTC bay 3"));
        board.set(vec![]);
        board.annotate(&key, &mut status);
        assert_eq!(status.display_name, None);
        assert_eq!(
            board.layout().place("http://a", "Mazak01"),
            Placement::Cell(0)
        );
    }
}
