//! A store being opened: `serve` listens at once, whatever the database does, and this
//! stands in for the store until it is open. Every call until then is
//! [`StoreError::Unavailable`], saying since when and why (the last connection error), so
//! the page's banner and `/healthz` tell the user; once [`PendingStore::open`] is called,
//! every call goes to the store.

use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use factorydash_core::accounts::{AuditEntry, AuditQuery, Credential, CredentialKind, Group, User};
use factorydash_core::states::StateSummary;
use factorydash_core::{
    Batch, DeviceInfo, DeviceKey, Gap, Observation, Page, PageRequest, ResumePoint, TimeWindow,
};
use factorydash_store::{
    AccountStore, AgentObservation, AppendOutcome, ConfiguredAgent, Credentials, LatestFilter,
    SeriesChunk, SeriesKey, Store, StoreError,
};

/// A store that is not open yet (see the module's docs).
pub struct PendingStore {
    store: OnceLock<Arc<dyn Store>>,
    /// What is being opened (e.g. `PostgreSQL at 127.0.0.1:5432`), shown in errors.
    what: String,
    since: DateTime<Utc>,
    /// The last error met while opening it.
    last_error: Mutex<Option<String>>,
}

impl PendingStore {
    /// A store not open yet; `what` names it in errors (no password).
    pub fn new(what: String) -> Self {
        PendingStore {
            store: OnceLock::new(),
            what,
            since: Utc::now(),
            last_error: Mutex::new(None),
        }
    }

    /// Notes why the store could not be opened (shown until it is).
    pub fn note(&self, error: String) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(error);
    }

    /// The store is open: every call goes to it from now on. A second call is ignored.
    pub fn open(&self, store: Arc<dyn Store>) {
        let _ = self.store.set(store);
    }

    /// Why the store cannot be used yet (since when, the last error), or `None` once open.
    pub fn outage(&self) -> Option<String> {
        self.store().err().map(|e| match e {
            StoreError::Unavailable(why) => why,
            other => other.to_string(),
        })
    }

    fn store(&self) -> Result<&Arc<dyn Store>, StoreError> {
        self.store.get().ok_or_else(|| {
            let why = self
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            StoreError::Unavailable(format!(
                "{} unavailable since {}{}; retrying",
                self.what,
                self.since.format("%Y-%m-%d %H:%M:%S UTC"),
                why.map_or(String::new(), |w| format!(" ({w})")),
            ))
        })
    }
}

#[async_trait]
impl Store for PendingStore {
    async fn put_devices(&self, agent: &str, devices: &[DeviceInfo]) -> Result<(), StoreError> {
        self.store()?.put_devices(agent, devices).await
    }

    async fn devices(&self) -> Result<Vec<DeviceInfo>, StoreError> {
        self.store()?.devices().await
    }

    async fn append(&self, batch: &Batch) -> Result<AppendOutcome, StoreError> {
        self.store()?.append(batch).await
    }

    async fn resume_point(&self, agent: &str) -> Result<Option<ResumePoint>, StoreError> {
        self.store()?.resume_point(agent).await
    }

    async fn instances(&self, agent: &str, limit: usize) -> Result<Vec<ResumePoint>, StoreError> {
        self.store()?.instances(agent, limit).await
    }

    async fn record_gap(&self, gap: &Gap) -> Result<(), StoreError> {
        self.store()?.record_gap(gap).await
    }

    async fn withdraw_open_gaps(&self, agent: &str, instance_id: u64) -> Result<u64, StoreError> {
        self.store()?.withdraw_open_gaps(agent, instance_id).await
    }

    async fn gaps(&self) -> Result<Vec<Gap>, StoreError> {
        self.store()?.gaps().await
    }

    async fn summary(
        &self,
        query: &factorydash_store::SummaryQuery,
    ) -> Result<Vec<factorydash_core::summary::SummaryTotal>, StoreError> {
        self.store()?.summary(query).await
    }

    async fn prune_summaries(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        self.store()?.prune_summaries(cutoff).await
    }

    async fn rebuild_summaries(
        &self,
        from: DateTime<Utc>,
    ) -> Result<factorydash_store::RebuildOutcome, StoreError> {
        self.store()?.rebuild_summaries(from).await
    }

    async fn latest(
        &self,
        filter: &LatestFilter,
        page: &PageRequest,
    ) -> Result<Page<AgentObservation>, StoreError> {
        self.store()?.latest(filter, page).await
    }

    async fn as_of(
        &self,
        filter: &LatestFilter,
        at: DateTime<Utc>,
        page: &PageRequest,
    ) -> Result<Page<AgentObservation>, StoreError> {
        self.store()?.as_of(filter, at, page).await
    }

    async fn series(
        &self,
        device: &DeviceKey,
        data_item_id: &str,
        window: &TimeWindow,
        limit: usize,
    ) -> Result<Vec<Observation>, StoreError> {
        self.store()?
            .series(device, data_item_id, window, limit)
            .await
    }

    async fn series_after(
        &self,
        device: &DeviceKey,
        data_item_id: &str,
        window: &TimeWindow,
        after: Option<SeriesKey>,
        limit: usize,
    ) -> Result<SeriesChunk, StoreError> {
        self.store()?
            .series_after(device, data_item_id, window, after, limit)
            .await
    }

    async fn buckets(
        &self,
        device: &DeviceKey,
        data_item_id: &str,
        window: &TimeWindow,
        n: usize,
    ) -> Result<Vec<factorydash_core::downsample::Bucket>, StoreError> {
        self.store()?.buckets(device, data_item_id, window, n).await
    }

    async fn last_before(
        &self,
        device: &DeviceKey,
        data_item_id: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<Observation>, StoreError> {
        self.store()?.last_before(device, data_item_id, at).await
    }

    async fn conditions(
        &self,
        devices: Option<&[DeviceKey]>,
        window: &TimeWindow,
        after: Option<(DateTime<Utc>, u64, &str)>,
        limit: usize,
    ) -> Result<Vec<AgentObservation>, StoreError> {
        self.store()?
            .conditions(devices, window, after, limit)
            .await
    }

    async fn state_summary(
        &self,
        device: &DeviceKey,
        data_item_id: &str,
        window: &TimeWindow,
        after: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<StateSummary, StoreError> {
        self.store()?
            .state_summary(device, data_item_id, window, after, limit)
            .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.store()?.ping().await
    }

    async fn configured_agents(&self) -> Result<Vec<ConfiguredAgent>, StoreError> {
        self.store()?.configured_agents().await
    }

    async fn device_records(
        &self,
    ) -> Result<Vec<factorydash_core::records::DeviceRecord>, StoreError> {
        self.store()?.device_records().await
    }

    async fn put_device_record(
        &self,
        record: &factorydash_core::records::DeviceRecord,
    ) -> Result<(), StoreError> {
        self.store()?.put_device_record(record).await
    }

    async fn setting(&self, key: &str) -> Result<Option<factorydash_store::Setting>, StoreError> {
        self.store()?.setting(key).await
    }

    async fn put_setting(
        &self,
        key: &str,
        setting: Option<&factorydash_store::Setting>,
    ) -> Result<(), StoreError> {
        self.store()?.put_setting(key, setting).await
    }

    async fn queue_outbox(
        &self,
        entries: &[factorydash_store::OutboxEntry],
    ) -> Result<Vec<i64>, StoreError> {
        self.store()?.queue_outbox(entries).await
    }

    async fn pending_outbox(
        &self,
        receiver: &str,
        limit: usize,
    ) -> Result<Vec<factorydash_store::OutboxEntry>, StoreError> {
        self.store()?.pending_outbox(receiver, limit).await
    }

    async fn confirm_outbox(&self, id: i64) -> Result<(), StoreError> {
        self.store()?.confirm_outbox(id).await
    }

    async fn put_stop_reason(
        &self,
        reason: &factorydash_core::reasons::StopReason,
    ) -> Result<(), StoreError> {
        self.store()?.put_stop_reason(reason).await
    }

    async fn stop_reasons(
        &self,
        agent: &str,
        device: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<factorydash_core::reasons::StopReason>, StoreError> {
        self.store()?.stop_reasons(agent, device, from, to).await
    }

    async fn remove_device_record(&self, agent: &str, device: &str) -> Result<bool, StoreError> {
        self.store()?.remove_device_record(agent, device).await
    }

    async fn put_configured_agent(&self, agent: &ConfiguredAgent) -> Result<(), StoreError> {
        self.store()?.put_configured_agent(agent).await
    }

    async fn remove_configured_agent(&self, url: &str) -> Result<bool, StoreError> {
        self.store()?.remove_configured_agent(url).await
    }

    async fn agent_credentials(&self, url: &str) -> Result<Option<Credentials>, StoreError> {
        self.store()?.agent_credentials(url).await
    }

    async fn observation_count(&self) -> Result<u64, StoreError> {
        self.store()?.observation_count().await
    }

    async fn prune(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        self.store()?.prune(cutoff).await
    }
}

#[async_trait]
impl AccountStore for PendingStore {
    async fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        self.store()?.user(name).await
    }

    async fn users(&self) -> Result<Vec<User>, StoreError> {
        self.store()?.users().await
    }

    async fn put_user(&self, user: &User) -> Result<(), StoreError> {
        self.store()?.put_user(user).await
    }

    async fn remove_user(&self, name: &str) -> Result<bool, StoreError> {
        self.store()?.remove_user(name).await
    }

    async fn groups(&self) -> Result<Vec<Group>, StoreError> {
        self.store()?.groups().await
    }

    async fn put_group(&self, group: &Group) -> Result<(), StoreError> {
        self.store()?.put_group(group).await
    }

    async fn remove_group(&self, name: &str) -> Result<bool, StoreError> {
        self.store()?.remove_group(name).await
    }

    async fn put_credential(&self, credential: &Credential) -> Result<(), StoreError> {
        self.store()?.put_credential(credential).await
    }

    async fn credential(&self, digest: &str) -> Result<Option<Credential>, StoreError> {
        self.store()?.credential(digest).await
    }

    async fn credentials_of(
        &self,
        user: &str,
        kind: CredentialKind,
    ) -> Result<Vec<Credential>, StoreError> {
        self.store()?.credentials_of(user, kind).await
    }

    async fn touch_credential(&self, digest: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.store()?.touch_credential(digest, at).await
    }

    async fn remove_credential(&self, user: &str, digest: &str) -> Result<bool, StoreError> {
        self.store()?.remove_credential(user, digest).await
    }

    async fn remove_credentials_of(
        &self,
        user: &str,
        kind: CredentialKind,
    ) -> Result<u64, StoreError> {
        self.store()?.remove_credentials_of(user, kind).await
    }

    async fn remove_stale_credentials(
        &self,
        now: DateTime<Utc>,
        idle_before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.store()?
            .remove_stale_credentials(now, idle_before)
            .await
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<i64, StoreError> {
        self.store()?.append_audit(entry).await
    }

    async fn prune_audit(&self, before: chrono::DateTime<chrono::Utc>) -> Result<u64, StoreError> {
        self.store()?.prune_audit(before).await
    }

    async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        self.store()?.audit(query).await
    }
}
