//! Several processes on one database: one ingests each agent (a session-level advisory
//! lock per agent, all of a process's on one connection), all hear of every batch stored (`LISTEN`/`NOTIFY`) and read what it
//! set ([`PgStore::latest_of`]).

use std::collections::HashSet;

use factorydash_core::Observation;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::Client;

use super::columns::{observation_from_row, OBSERVATION_COLUMNS};
use super::connection::{open_plain, Connector};
use super::PgStore;
use crate::StoreError;

/// The `LISTEN` channel on which every append is announced (see [`PgStore::listen`]).
pub const APPENDED_CHANNEL: &str = "factorydash_appended";
const LISTEN_APPENDED: &str = "LISTEN factorydash_appended";

/// The first key of the agents' advisory locks ("fd"); the second is `hashtext(url)`.
const AGENT_LOCK_CLASS: i32 = 0x6664;

/// A batch another connection (or process) stored, as announced on [`APPENDED_CHANNEL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// The agent's base URL.
    pub agent: String,
    /// The agent's `instanceId`.
    pub instance_id: u64,
    /// The lowest and highest `sequence` in the batch.
    pub sequences: std::ops::RangeInclusive<u64>,
    /// The agent's resume point after the batch.
    pub next_sequence: u64,
}

/// The right to ingest one agent, held by one process among those sharing a database: a
/// session-level advisory lock (PostgreSQL, "Advisory Locks") on the connection that holds
/// every agent lock of this store (see [`PgStore::try_lock_agent`]). Released when
/// dropped, or when that connection is lost (then [`AgentLock::lost`] resolves, for every
/// lock it held, and another process may take it).
pub struct AgentLock {
    /// The agent's base URL.
    agent: String,
    /// The lock connection's session it is held on (its number in this store).
    session: u64,
    /// `true` once that session's connection is closed.
    closed: tokio::sync::watch::Receiver<bool>,
    /// To the lock holder, for the release on drop.
    holder: mpsc::UnboundedSender<LockRequest>,
}

impl std::fmt::Debug for AgentLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentLock")
            .field("agent", &self.agent)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl AgentLock {
    /// Resolves when the lock's connection is lost, and with it the lock (and every other
    /// lock of this store held on it).
    pub async fn lost(&mut self) {
        let _ = self.closed.wait_for(|closed| *closed).await;
    }
}

impl AgentLock {
    /// Releases the lock and returns once it is released (dropping it releases it too, in
    /// the background, shortly after).
    pub async fn release(mut self) {
        let (done, released) = oneshot::channel();
        let _ = self.holder.send(LockRequest::Unlock {
            agent: std::mem::take(&mut self.agent),
            session: self.session,
            done: Some(done),
        });
        let _ = released.await;
    }
}

impl Drop for AgentLock {
    fn drop(&mut self) {
        if self.agent.is_empty() {
            return; // released
        }
        let _ = self.holder.send(LockRequest::Unlock {
            agent: std::mem::take(&mut self.agent),
            session: self.session,
            done: None,
        });
    }
}

/// What the lock holder task is asked, in order.
pub(super) enum LockRequest {
    /// Take `agent`'s lock, if free, and answer.
    Lock {
        agent: String,
        reply: oneshot::Sender<Result<Option<AgentLock>, StoreError>>,
    },
    /// Release `agent`'s lock, taken on `session` (nothing if that session is gone), and
    /// say so on `done`.
    Unlock {
        agent: String,
        session: u64,
        done: Option<oneshot::Sender<()>>,
    },
}

/// The agent locks of one store: one connection of their own, opened on the first lock
/// and again after it is lost, owned by one task that takes and releases the locks on
/// request. So a process holds one connection for its agents' locks however many agents
/// it ingests (it held one per agent, and 100 agents passed PostgreSQL's default
/// `max_connections`).
#[derive(Default)]
pub(super) struct AgentLocks {
    /// To the holder task, started on the first request.
    holder: std::sync::OnceLock<mpsc::UnboundedSender<LockRequest>>,
}

impl AgentLocks {
    /// Takes `agent`'s lock through the holder task (started now if need be).
    async fn try_lock(
        &self,
        connector: &Connector,
        agent: &str,
    ) -> Result<Option<AgentLock>, StoreError> {
        let holder = self.holder.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(hold_locks(connector.clone(), rx, tx.downgrade()));
            tx
        });
        let (reply, answer) = oneshot::channel();
        let gone = || StoreError::Unavailable("the agent lock holder has stopped".into());
        holder
            .send(LockRequest::Lock {
                agent: agent.to_owned(),
                reply,
            })
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

/// The lock connection's session: the connection, whether it closed, and the agents whose
/// locks it holds.
struct LockSession {
    number: u64,
    client: Client,
    closed: tokio::sync::watch::Receiver<bool>,
    held: HashSet<String>,
}

/// The lock holder: answers `requests` in order on one connection, opened when a lock is
/// asked for and none is open (or the last one was lost: the locks it held went with it,
/// and their [`AgentLock::lost`] resolved). Ends when the store and every lock are gone.
async fn hold_locks(
    connector: Connector,
    mut requests: mpsc::UnboundedReceiver<LockRequest>,
    me: mpsc::WeakUnboundedSender<LockRequest>,
) {
    let mut session: Option<LockSession> = None;
    let mut sessions = 0;
    while let Some(request) = requests.recv().await {
        match request {
            LockRequest::Lock { agent, reply } => {
                let answer = async {
                    let lost = session
                        .as_ref()
                        .is_none_or(|s| *s.closed.borrow() || s.client.is_closed());
                    if lost {
                        let (client, closed) =
                            open_plain(&connector, "the agent locks' connection").await?;
                        sessions += 1;
                        session = Some(LockSession {
                            number: sessions,
                            client,
                            closed,
                            held: HashSet::new(),
                        });
                    }
                    let Some(s) = session.as_mut() else {
                        unreachable!("a session was just opened")
                    };
                    // Session locks nest: this session taking a lock it holds would
                    // succeed, so what it holds is refused here, as another session would.
                    if s.held.contains(&agent) {
                        return Ok(None);
                    }
                    let locked: bool = s
                        .client
                        .query_one(
                            "SELECT pg_try_advisory_lock($1, hashtext($2))",
                            &[&AGENT_LOCK_CLASS, &agent],
                        )
                        .await?
                        .get(0);
                    let Some(holder) = me.upgrade().filter(|_| locked) else {
                        return Ok(None);
                    };
                    s.held.insert(agent.clone());
                    Ok(Some(AgentLock {
                        agent,
                        session: s.number,
                        closed: s.closed.clone(),
                        holder,
                    }))
                }
                .await;
                // An asker that went away drops the lock, which asks for its release.
                let _ = reply.send(answer);
            }
            LockRequest::Unlock {
                agent,
                session: number,
                done,
            } => {
                let Some(s) = session.as_mut().filter(|s| s.number == number) else {
                    continue;
                };
                if s.held.remove(&agent) {
                    if let Err(e) = s
                        .client
                        .execute(
                            "SELECT pg_advisory_unlock($1, hashtext($2))",
                            &[&AGENT_LOCK_CLASS, &agent],
                        )
                        .await
                    {
                        // The connection is going: the lock goes with it.
                        tracing::warn!(agent = %agent, error = %e, "cannot release an agent's lock");
                    }
                }
                if let Some(done) = done {
                    let _ = done.send(());
                }
            }
        }
    }
}

impl PgStore {
    /// Takes the right to ingest `agent` (its base URL) if no other session holds it.
    /// `Ok(None)`: another process ingests it (or this store already holds it).
    ///
    /// Every lock of this store is held on one connection of its own, outside the pool
    /// (a session-level advisory lock lives as long as its session), opened on the first
    /// lock and again once it is lost: a process holds one connection for the locks of
    /// all its agents. Requests are answered in order, one at a time.
    ///
    /// # Errors
    /// [`StoreError::Connect`] when the server cannot be reached; [`StoreError::Database`]
    /// when the lock's connection fails while asking.
    pub async fn try_lock_agent(&self, agent: &str) -> Result<Option<AgentLock>, StoreError> {
        self.agent_locks.try_lock(&self.connector, agent).await
    }

    /// Listens, on a connection of its own, for the batches any process appends to this
    /// database, and sends each on the returned channel (at most `capacity` waiting; when
    /// the receiver is slower, announcements are dropped rather than queued). The channel
    /// closes when the connection is lost; call again to listen again.
    ///
    /// # Errors
    /// [`StoreError::Connect`] when the server cannot be reached.
    pub async fn listen(
        &self,
        capacity: usize,
    ) -> Result<tokio::sync::mpsc::Receiver<Appended>, StoreError> {
        let (client, mut connection) = self.connector.connect().await?;
        let (tx, rx) = tokio::sync::mpsc::channel(capacity.max(1));
        let listening = async move {
            use futures_util::StreamExt;
            let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            // LISTEN completes only while the connection is driven, below.
            let listen = client.batch_execute(LISTEN_APPENDED);
            futures_util::pin_mut!(listen);
            let mut listened = false;
            loop {
                tokio::select! {
                    r = &mut listen, if !listened => {
                        listened = true;
                        if let Err(e) = r {
                            tracing::warn!(error = %e, "LISTEN failed");
                            return;
                        }
                    }
                    m = messages.next() => match m {
                        Some(Ok(tokio_postgres::AsyncMessage::Notification(n))) => {
                            let Some(a) = parse_appended(n.payload()) else { continue };
                            if tx.try_send(a).is_err() && tx.is_closed() {
                                return;
                            }
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "the LISTEN connection closed");
                            return;
                        }
                        None => return,
                    }
                }
            }
        };
        tokio::spawn(listening);
        Ok(rx)
    }

    /// The latest values that the batch announced by `appended` set and that still hold:
    /// what a process that did not store the batch pushes to its browsers.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn latest_of(&self, appended: &Appended) -> Result<Vec<Observation>, StoreError> {
        let client = self.reader().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {} FROM latest l JOIN agents a ON a.id = l.agent_id
                     WHERE a.url = $1 AND l.instance_id = $2 AND l.sequence BETWEEN $3 AND $4
                     ORDER BY device, data_item_id",
                    *OBSERVATION_COLUMNS
                ),
                &[
                    &appended.agent,
                    &(appended.instance_id as i64),
                    &(*appended.sequences.start() as i64),
                    &(*appended.sequences.end() as i64),
                ],
            )
            .await?;
        Ok(rows.iter().map(observation_from_row).collect())
    }
}

/// Parses an [`APPENDED_CHANNEL`] payload: "instance_id first last next url".
fn parse_appended(payload: &str) -> Option<Appended> {
    let mut f = payload.splitn(5, ' ');
    let mut n = || f.next()?.parse::<u64>().ok();
    let (instance_id, first, last, next_sequence) = (n()?, n()?, n()?, n()?);
    Some(Appended {
        agent: f.next()?.to_owned(),
        instance_id,
        sequences: first..=last,
        next_sequence,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_reads_back() {
        assert_eq!(
            parse_appended("7 3 9 10 http://127.0.0.1:5000/a b"),
            Some(Appended {
                agent: "http://127.0.0.1:5000/a b".into(),
                instance_id: 7,
                sequences: 3..=9,
                next_sequence: 10,
            })
        );
        assert_eq!(parse_appended("7 3 9 http://127.0.0.1:5000"), None);
    }
}
