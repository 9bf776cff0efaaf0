//! Several processes on one database: one ingests each agent (a session-level advisory
//! lock per agent), all hear of every batch stored (`LISTEN`/`NOTIFY`) and read what it
//! set ([`PgStore::latest_of`]).

use factorydash_core::Observation;
use tokio_postgres::Client;

use super::columns::{observation_from_row, OBSERVATION_COLUMNS};
use super::connection::open_plain;
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
/// session-level advisory lock on a connection of its own (PostgreSQL, "Advisory Locks").
/// Released when dropped, or when the connection is lost (then [`AgentLock::lost`]
/// resolves and another process may take it).
pub struct AgentLock {
    _client: Client,
    closed: tokio::sync::watch::Receiver<bool>,
}

impl std::fmt::Debug for AgentLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentLock").finish_non_exhaustive()
    }
}

impl AgentLock {
    /// Resolves when the lock's connection is lost, and with it the lock.
    pub async fn lost(&mut self) {
        let _ = self.closed.wait_for(|closed| *closed).await;
    }
}

impl PgStore {
    /// Takes the right to ingest `agent` (its base URL) if no other session holds it.
    /// `Ok(None)`: another process ingests it.
    ///
    /// Each lock opens a connection of its own, outside the pool: a session-level
    /// advisory lock lives as long as its session.
    ///
    /// # Errors
    /// [`StoreError::Connect`] when the server cannot be reached.
    pub async fn try_lock_agent(&self, agent: &str) -> Result<Option<AgentLock>, StoreError> {
        let (client, closed) = open_plain(&self.connector, "the agent lock's connection").await?;
        let locked: bool = client
            .query_one(
                "SELECT pg_try_advisory_lock($1, hashtext($2))",
                &[&AGENT_LOCK_CLASS, &agent],
            )
            .await?
            .get(0);
        Ok(locked.then_some(AgentLock {
            _client: client,
            closed,
        }))
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
