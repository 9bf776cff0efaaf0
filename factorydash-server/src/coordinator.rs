//! What ingest asks of a store shared by several `factorydash serve` processes: one
//! process ingests each agent (an exclusive lock per agent), and the others hear of what
//! it stores. Implemented for PostgreSQL ([`PgStore`]: advisory locks, `LISTEN`/`NOTIFY`);
//! a single-process store (the in-memory one) has none, and ingest then follows every
//! agent itself.

use std::future::Future;

use factorydash_core::Observation;
use factorydash_store::postgres::{AgentLock, Appended, PgStore};
use factorydash_store::StoreError;
use tokio::sync::mpsc;

/// Coordination between processes sharing one store.
pub trait Coordinator: Send + Sync + 'static {
    /// An agent's lock, held while it lives.
    type Lock: Send;

    /// Takes `agent`'s lock if no process holds it (`None`: another does).
    fn try_lock_agent(
        &self,
        agent: &str,
    ) -> impl Future<Output = Result<Option<Self::Lock>, StoreError>> + Send;

    /// Resolves when `lock` is lost (its connection gone), and with it the lock.
    fn lost(lock: &mut Self::Lock) -> impl Future<Output = ()> + Send;

    /// The batches stored by any process, as they are stored (at most `capacity` waiting).
    fn listen(
        &self,
        capacity: usize,
    ) -> impl Future<Output = Result<mpsc::Receiver<Appended>, StoreError>> + Send;

    /// The latest values a stored batch left.
    fn latest_of(
        &self,
        appended: &Appended,
    ) -> impl Future<Output = Result<Vec<Observation>, StoreError>> + Send;
}

impl Coordinator for PgStore {
    type Lock = AgentLock;

    fn try_lock_agent(
        &self,
        agent: &str,
    ) -> impl Future<Output = Result<Option<AgentLock>, StoreError>> + Send {
        PgStore::try_lock_agent(self, agent)
    }

    fn lost(lock: &mut AgentLock) -> impl Future<Output = ()> + Send {
        lock.lost()
    }

    fn listen(
        &self,
        capacity: usize,
    ) -> impl Future<Output = Result<mpsc::Receiver<Appended>, StoreError>> + Send {
        PgStore::listen(self, capacity)
    }

    fn latest_of(
        &self,
        appended: &Appended,
    ) -> impl Future<Output = Result<Vec<Observation>, StoreError>> + Send {
        PgStore::latest_of(self, appended)
    }
}
