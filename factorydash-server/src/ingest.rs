//! The ingest tasks: follow an agent, or play a recording, into the store.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use factorydash_mtconnect::client::{
    AgentClient, Backoff, ClientError, Follower, FollowerConfig, Step, KNOWN_INSTANCES,
};
use tokio::sync::mpsc;
use tokio::time::{sleep, sleep_until, Instant};

use crate::coordinator::Coordinator;
use crate::error_chain::error_chain;
use crate::health::SourceState;
use crate::replay::Replay;
use crate::state::App;
use crate::supervisor::identity;

/// How an agent is followed.
#[derive(Debug, Clone)]
pub struct FollowSettings {
    /// Observations per `/sample` request (and per streamed part).
    pub count: u64,
    /// The wait between requests once caught up, when polling.
    pub poll_interval: Duration,
    /// Stream (`/sample?interval=`) once caught up, instead of polling.
    pub stream: bool,
    /// The streaming `interval`.
    pub interval: Duration,
    /// The streaming `heartbeat`; a stream silent for about twice as long is reopened.
    pub heartbeat: Duration,
    /// Observations read but not yet stored that may wait for the store (at least one
    /// page is always held): the bound on memory while the database is down.
    pub buffer: u64,
    /// The largest answer taken from the agent, in bytes (`--max-document`).
    pub max_document: usize,
    /// What Streams documents are asked for in (`--format`): XML, or JSON where the
    /// agent offers it (what it answers is read either way).
    pub format: factorydash_mtconnect::client::Format,
}

/// What the reading half of an agent's ingest hands the writing half, in order.
enum Work {
    /// A device model read from `/probe`.
    Devices(Vec<factorydash_core::DeviceInfo>),
    /// A page read.
    Step(Box<Step>),
}

/// Follows the agent at `connect` (its URL to connect with, credentials and all) forever,
/// under its identity ([`identity`]: the URL without credentials, what it is stored,
/// shown and logged by): backfills what it holds by polling `/sample`, then
/// streams (`/sample?interval=&heartbeat=`), or polls `/sample?from=<nextSequence>` when
/// the agent does not stream. Errors are retried with backoff and shown in the source's
/// health.
///
/// Reading and storing overlap: the reader hands each page to a writer through a queue of
/// at most `settings.buffer` observations (at least one page). When the store is down, the
/// writer retries the page at the head of the queue with backoff; once the queue is full,
/// the reader stops reading, and the agent's own buffer holds the rest. Each page is
/// stored with its resume point, so a restart continues after the last stored page.
pub async fn follow_agent(app: Arc<App>, connect: String, settings: FollowSettings) {
    let client = match AgentClient::new(&connect) {
        Ok(c) => c
            .with_max_document(settings.max_document)
            .with_format(settings.format),
        Err(e) => {
            let url = identity(&connect);
            tracing::error!(agent = %url, error = %e, "not following this agent");
            app.health
                .update(&url, |h| h.last_error = Some(e.to_string()));
            return;
        }
    };
    // What the agent is stored, shown and logged by: what the batches read name.
    let url = client.base_url().to_owned();
    let mut follower = Follower::new(client, FollowerConfig::new().with_count(settings.count));
    let pages = (settings.buffer / settings.count.max(1)).max(1) as usize;
    let (queue, rx) = mpsc::channel(pages);
    // Tracked, and never aborted: when the reader stops (paused, removed, the process
    // stopping), the writer stores what waits in the queue, then ends.
    app.agents
        .writers
        .spawn(write(app.clone(), url.clone(), rx));
    let mut backoff = Backoff::default();
    // Streams that fail the same way (a part past the document limit, sequences that do
    // not follow) back off by their own delay, reset only by a part taken: the poll
    // between two attempts succeeds, and must not make the next attempt immediate.
    let mut stream_backoff = Backoff::default();
    let mut resumed = false;
    let mut probed = false;
    let mut streaming = settings.stream;
    // A stream whose first part did not continue what was read is opened again only after
    // a poll interval: an agent whose streams never continue (two instances behind a
    // balancer) must not make a loop of requests.
    let mut wait_before_stream = false;
    // Streams in a row whose first part did not continue: logged once, not at every one.
    let mut not_continuing = 0u64;
    loop {
        let polled: Result<bool, String> = async {
            if !resumed {
                if let Some(point) = app.store.resume_point(&url).await.map_err(|e| format!("store: {e}"))? {
                    tracing::info!(agent = %url, instance_id = point.instance_id, next_sequence = point.next_sequence, "resuming");
                    follower.resume_from(&point);
                }
                // Earlier instances, oldest first so that the newest are kept: an agent
                // that answers with one again is followed on from where it was left.
                let earlier = app.store.instances(&url, KNOWN_INSTANCES).await.map_err(|e| format!("store: {e}"))?;
                for point in earlier.iter().rev() {
                    follower.remember_instance(point);
                }
                resumed = true;
            }
            if !probed {
                let devices = follower.client().probe().await.map_err(|e| error_chain(&e))?;
                for p in &devices.problems {
                    tracing::warn!(agent = %url, problem = %p, "probe");
                }
                let limits = devices.value.limits();
                app.alarms.limits(&url, &limits);
                app.limits.set(&url, limits);
                enqueue(&app, &url, &queue, Work::Devices(devices.value.device_infos(&url))).await;
                probed = true;
            }
            let step = follower.step().await.map_err(|e| error_chain(&e))?;
            if step.restarted.is_some() || step.model_changed {
                probed = false;
            }
            let caught_up = step.caught_up;
            enqueue(&app, &url, &queue, Work::Step(Box::new(step))).await;
            Ok(caught_up)
        }
        .await;
        let caught_up = match polled {
            Ok(caught_up) => {
                backoff.reset();
                read_ok(
                    &app,
                    &url,
                    if caught_up {
                        SourceState::Polling
                    } else {
                        SourceState::Backfilling
                    },
                );
                caught_up
            }
            Err(error) => {
                back_off(&app, &url, &mut backoff, error).await;
                continue;
            }
        };
        if !caught_up {
            continue;
        }
        if !streaming || std::mem::take(&mut wait_before_stream) {
            sleep(settings.poll_interval).await;
            continue;
        }
        let mut stream = match follower
            .open_stream(settings.interval, settings.heartbeat)
            .await
        {
            Ok(stream) => stream,
            Err(e @ (ClientError::StreamingUnsupported { .. } | ClientError::Agent { .. })) => {
                tracing::warn!(agent = %url, error = %error_chain(&e), "the agent does not stream; polling it instead");
                streaming = false;
                continue;
            }
            Err(e) => {
                back_off(&app, &url, &mut backoff, error_chain(&e)).await;
                continue;
            }
        };
        // About twice the heartbeat without a part means the stream is dead.
        let silence = settings.heartbeat * 2 + Duration::from_secs(1);
        let mut parts = 0u64;
        loop {
            match stream.next_page(silence).await {
                Ok(Some(page)) => {
                    let Some(step) = follower.accept(page) else {
                        wait_before_stream = parts == 0;
                        not_continuing = if wait_before_stream {
                            not_continuing + 1
                        } else {
                            1
                        };
                        if not_continuing == 1 {
                            tracing::info!(agent = %url, "the stream no longer continues what was read; reopening");
                        } else {
                            tracing::debug!(agent = %url, in_a_row = not_continuing, "the stream no longer continues what was read; reopening after a poll interval");
                        }
                        break;
                    };
                    parts += 1;
                    not_continuing = 0;
                    let model_changed = step.model_changed;
                    stream_backoff.reset();
                    read_ok(&app, &url, SourceState::Streaming);
                    enqueue(&app, &url, &queue, Work::Step(Box::new(step))).await;
                    if model_changed {
                        tracing::info!(agent = %url, "the device model changed; reading /probe again");
                        probed = false;
                        break;
                    }
                }
                Ok(None) => {
                    tracing::info!(agent = %url, "the agent ended the stream; reopening");
                    app.health.update(&url, |h| h.reconnects += 1);
                    break;
                }
                Err(e) => {
                    let error = error_chain(&e);
                    app.health.update(&url, |h| h.reconnects += 1);
                    if matches!(
                        e,
                        ClientError::TooLarge { .. } | ClientError::Sequence { .. }
                    ) {
                        // Reconnecting at once would get the same answer: back off first.
                        back_off(&app, &url, &mut stream_backoff, error).await;
                        break;
                    }
                    tracing::warn!(agent = %url, %error, "stream lost; reconnecting from the last stored sequence");
                    app.health.update(&url, |h| h.last_error = Some(error));
                    break;
                }
            }
        }
    }
}

/// Makes `app`'s supervisor follow agents with `settings`: under each agent's advisory
/// lock when the store coordinates several processes (PostgreSQL), so that one process of
/// several ingests each agent; else each agent at once.
pub fn install<C: Coordinator>(
    app: &Arc<App>,
    settings: FollowSettings,
    coordinator: Option<Arc<C>>,
) {
    // Weak: the supervisor lives in the App the tasks hold.
    let weak = Arc::downgrade(app);
    app.agents.set_starter(Box::new(move |url: &str| {
        let Some(app) = weak.upgrade() else {
            return tokio::spawn(async {}).abort_handle();
        };
        let url = url.to_owned();
        let settings = settings.clone();
        // The agent's cutting tools are read by every process that follows it, even one
        // standing by, as each shows its own tiles.
        let tools =
            crate::tool_ingest::follow_tools(app.clone(), url.clone(), settings.max_document);
        let task = match &coordinator {
            Some(c) => tokio::spawn(beside(
                follow_agent_when_locked(app, c.clone(), url, settings),
                tools,
            )),
            None => tokio::spawn(beside(follow_agent(app, url, settings), tools)),
        };
        task.abort_handle()
    }));
}

/// Runs `ingest` and `tools` in one task, so that stopping the agent (its task aborted)
/// stops both.
async fn beside(
    ingest: impl std::future::Future<Output = ()>,
    tools: impl std::future::Future<Output = ()>,
) {
    tokio::join!(ingest, tools);
}

/// A task aborted when this is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How often a process in standby tries to take an agent's lock.
const STANDBY_RETRY: Duration = Duration::from_secs(2);

/// With a store shared by several `factorydash serve` processes (a [`Coordinator`]): follows
/// the agent at `connect` (as [`follow_agent`]) only while this process holds the agent's
/// advisory lock (taken by its identity), so that one process ingests each agent. The others stand by, try again every two seconds, and show
/// what the ingesting one stores (see [`relay_appended`]). When the lock's connection is
/// lost (the database went away), ingest goes on into its bounded queue while the lock is
/// taken again; if another process took it meanwhile, this one stops and stands by.
pub async fn follow_agent_when_locked<C: Coordinator>(
    app: Arc<App>,
    coordinator: Arc<C>,
    connect: String,
    settings: FollowSettings,
) {
    let url = identity(&connect);
    let mut backoff = Backoff::default();
    loop {
        match coordinator.try_lock_agent(&url).await {
            Ok(Some(mut lock)) => {
                backoff.reset();
                tracing::info!(agent = %url, "this process ingests the agent");
                // Aborted with this task too (an agent paused or removed).
                let task = AbortOnDrop(tokio::spawn(follow_agent(
                    app.clone(),
                    connect.clone(),
                    settings.clone(),
                )));
                // While the database is away nobody can take the lock: keep reading into
                // the bounded queue and take the lock again when the database is back.
                // If another process took it first, it ingests and this one stands by.
                'held: loop {
                    C::lost(&mut lock).await;
                    tracing::warn!(agent = %url, "lost the agent's lock with its database connection; taking it again");
                    loop {
                        match coordinator.try_lock_agent(&url).await {
                            Ok(Some(again)) => {
                                lock = again;
                                backoff.reset();
                                continue 'held;
                            }
                            Ok(None) => break 'held,
                            Err(_) => sleep(backoff.next_delay()).await,
                        }
                    }
                }
                drop(task);
                tracing::info!(agent = %url, "another process took the agent over");
                backoff.reset();
            }
            Ok(None) => {
                if app.health.state(&url) != Some(SourceState::Standby) {
                    tracing::info!(agent = %url, "another process ingests the agent; standing by");
                }
                app.health.update(&url, |h| {
                    h.state = SourceState::Standby;
                    h.store_unavailable_since = None;
                    h.store_error = None;
                });
                sleep(STANDBY_RETRY).await;
            }
            Err(e) => {
                let delay = backoff.next_delay();
                let error = format!("store: {}", error_chain(&e));
                tracing::warn!(agent = %url, %error, retry_in = ?delay, "cannot take the agent's lock; retrying");
                let now = Utc::now();
                app.health.update(&url, |h| {
                    h.store_unavailable_since.get_or_insert(now);
                    h.store_error = Some(error);
                });
                sleep(delay).await;
            }
        }
    }
}

/// Pushes to this process's browsers the batches that other processes store (heard over
/// PostgreSQL `LISTEN`), for the agents this process does not ingest itself. Listens again
/// with backoff when the connection is lost.
pub async fn relay_appended<C: Coordinator>(app: Arc<App>, coordinator: Arc<C>) {
    let mut backoff = Backoff::default();
    loop {
        let mut heard = match coordinator.listen(1024).await {
            Ok(rx) => rx,
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::warn!(error = %error_chain(&e), retry_in = ?delay, "cannot LISTEN for other processes' batches; retrying");
                sleep(delay).await;
                continue;
            }
        };
        backoff.reset();
        while let Some(appended) = heard.recv().await {
            match app.health.state(&appended.agent) {
                None | Some(SourceState::Standby) | Some(SourceState::Connecting) => {}
                Some(_) => continue, // this process stored it and has pushed it
            }
            match coordinator.latest_of(&appended).await {
                Ok(latest) => app.publish_relayed(&appended.agent, &latest),
                Err(e) => {
                    tracing::warn!(error = %error_chain(&e), "cannot read another process's batch")
                }
            }
            app.health.update(&appended.agent, |h| {
                h.state = SourceState::Standby;
                h.instance_id = Some(appended.instance_id);
                h.next_sequence = Some(appended.next_sequence);
                h.last_contact = Some(Utc::now());
            });
        }
    }
}

/// Shows a successful read from the agent in its health.
fn read_ok(app: &App, url: &str, state: SourceState) {
    app.health.update(url, |h| {
        h.state = state;
        h.unreachable_since = None;
        h.retry_at = None;
        h.last_error = None;
        h.last_contact = Some(Utc::now());
    });
}

/// Hands work to the writer, waiting while the queue is full.
async fn enqueue(app: &App, url: &str, queue: &mpsc::Sender<Work>, work: Work) {
    let n = match &work {
        Work::Step(step) => step.batch.observations.len() as u64,
        Work::Devices(_) => 0,
    };
    app.health.update(url, |h| h.buffered += n);
    if queue.send(work).await.is_err() {
        // The writer only ends when the runtime does.
        tracing::error!(agent = %url, "the store writer has stopped");
    }
}

/// The most observations the writer stores in one append when pages wait in its queue
/// (see [`write()`]).
const MERGED_PAGES_LIMIT: usize = 10_000;

/// Whether `next`, read after `step`, may be stored in one append with it: the same run
/// of the agent (`instanceId`), nothing lost or restarted in between, no device model to
/// store first.
fn continues(step: &Step, next: &Step) -> bool {
    next.gap.is_none()
        && next.restarted.is_none()
        && !step.model_changed
        && next.batch.instance_id == step.batch.instance_id
        && next.batch.agent == step.batch.agent
}

/// Adds `next` (which [`continues`] `step`) to `step`: its observations, its resume point.
fn absorb(step: &mut Step, next: Step) {
    step.batch.observations.extend(next.batch.observations);
    step.batch.next_sequence = next.batch.next_sequence;
    step.problems.extend(next.problems);
    step.caught_up = next.caught_up;
    step.model_changed = next.model_changed;
}

/// The writing half of an agent's ingest: stores each piece of work in order, retrying it
/// with backoff until the store takes it; nothing read is dropped.
///
/// Pages already waiting behind the one taken are stored with it in one append (up to
/// [`MERGED_PAGES_LIMIT`] observations, while they [`continue`](continues) it): a writer
/// that fell behind catches up with fewer, larger transactions rather than one per
/// streamed part, since every append of the process goes through one connection.
async fn write(app: Arc<App>, url: String, mut queue: mpsc::Receiver<Work>) {
    let mut backoff = Backoff::default();
    let mut held: Option<Work> = None;
    loop {
        let mut work = match held.take() {
            Some(work) => work,
            None => match queue.recv().await {
                Some(work) => work,
                None => break,
            },
        };
        if let Work::Step(step) = &mut work {
            while step.batch.observations.len() < MERGED_PAGES_LIMIT {
                match queue.try_recv() {
                    Ok(Work::Step(next)) if continues(step, &next) => absorb(step, *next),
                    Ok(other) => {
                        held = Some(other);
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
        let mut gap_recorded = false;
        loop {
            let stored = match &work {
                Work::Devices(devices) => {
                    let stored = app.store.put_devices(&url, devices).await;
                    app.devices_changed();
                    stored
                }
                Work::Step(step) => store_step(&app, &url, step, &mut gap_recorded).await,
            };
            match stored {
                Ok(()) => {
                    backoff.reset();
                    break;
                }
                Err(e) if e.is_permanent() => {
                    // The data itself is refused: retrying would stop everything behind
                    // it. Skipped, and recorded as a gap where its numbers can be kept.
                    skip_refused(&app, &url, &work, &error_chain(&e)).await;
                    break;
                }
                Err(e) => {
                    let delay = backoff.next_delay();
                    let error = format!("store: {}", error_chain(&e));
                    tracing::warn!(agent = %url, %error, retry_in = ?delay, "cannot store; keeping what was read and retrying");
                    let now = Utc::now();
                    app.health.update(&url, |h| {
                        h.store_unavailable_since.get_or_insert(now);
                        h.store_error = Some(error);
                    });
                    sleep(delay).await;
                }
            }
        }
    }
}

/// Skips work the store refuses for good (see `StoreError::is_permanent`): shown in the
/// health and the log, and, for a page, recorded as a gap over its sequences.
async fn skip_refused(app: &App, url: &str, work: &Work, error: &str) {
    let error = format!("store refused what the agent sent (skipped): {error}");
    tracing::error!(agent = %url, %error, "skipping");
    if let Work::Step(step) = work {
        let batch = &step.batch;
        if let Some(from) = batch.observations.iter().map(|o| o.sequence).min() {
            let gap = factorydash_core::Gap {
                agent: url.to_owned(),
                instance_id: batch.instance_id,
                from,
                to: Some(batch.next_sequence),
            };
            if let Err(e) = app.store.record_gap(&gap).await {
                tracing::warn!(agent = %url, error = %error_chain(&e), "cannot record the skipped page as a gap");
            }
        }
        let n = batch.observations.len() as u64;
        app.health.update(url, |h| {
            h.buffered = h.buffered.saturating_sub(n);
            h.gaps += 1;
            h.store_error = Some(error);
        });
    } else {
        app.health.update(url, |h| h.store_error = Some(error));
    }
}

/// Stores one step (its gap, its batch and resume point), publishes it and updates the
/// source's health. `gap_recorded` carries over retries, so a gap is recorded once.
async fn store_step(
    app: &App,
    url: &str,
    step: &Step,
    gap_recorded: &mut bool,
) -> Result<(), factorydash_store::StoreError> {
    if !*gap_recorded {
        for p in &step.problems {
            tracing::warn!(agent = %url, problem = %p, "skipped part of an answer");
        }
        if let Some(restart) = step.restarted {
            let (old, new) = (restart.previous_instance_id, restart.instance_id);
            tracing::warn!(agent = %url, old, new, "the agent restarted; reading its new buffer from the start");
        }
        if let Some(switch) = step.switched {
            let (old, new) = (switch.previous_instance_id, switch.instance_id);
            let next_sequence = step.batch.next_sequence;
            // Once at WARN: an agent that alternates does so all the time (counted in the
            // health), and the log must not grow with it.
            if app.health.instance_switches(url) == 0 {
                tracing::warn!(agent = %url, old, new, next_sequence, "the agent answers with an instanceId followed before (two agents behind one address?); going on with it where it was left, each instance from where it stopped");
            } else {
                tracing::debug!(agent = %url, old, new, next_sequence, "instance switched back");
            }
            // Taken up again: the gap of unknown end recorded when the agent first answered
            // with another instance (taken then for a restart) was no loss.
            let withdrawn = app.store.withdraw_open_gaps(&step.batch.agent, new).await?;
            if withdrawn > 0 {
                tracing::info!(agent = %url, instance_id = new, withdrawn, "the instance left is answered again: its gap of unknown end is withdrawn, and its restart taken back");
                app.health.update(url, |h| {
                    h.gaps = h.gaps.saturating_sub(withdrawn);
                    h.restarts = h.restarts.saturating_sub(1);
                });
            }
        }
        if let Some(gap) = &step.gap {
            tracing::warn!(agent = %url, from = gap.from, to = ?gap.to, "observations lost by the agent before they could be read");
            app.store.record_gap(gap).await?;
        }
        *gap_recorded = true;
    }
    let outcome = app.store.append(&step.batch).await?;
    app.publish(&step.batch.agent, &step.batch.observations);
    let now = Utc::now();
    app.health.update(url, |h| {
        h.record_rate(now, outcome.inserted);
        h.store_unavailable_since = None;
        h.store_error = None;
        h.buffered = h
            .buffered
            .saturating_sub(step.batch.observations.len() as u64);
        h.observations += outcome.inserted;
        h.gaps += u64::from(step.gap.is_some());
        h.restarts += u64::from(step.restarted.is_some());
        h.instance_switches += u64::from(step.switched.is_some());
        h.instance_id = Some(step.batch.instance_id);
        h.next_sequence = Some(step.batch.next_sequence);
    });
    Ok(())
}

async fn back_off(app: &App, url: &str, backoff: &mut Backoff, error: String) {
    let delay = backoff.next_delay();
    tracing::warn!(agent = %url, %error, retry_in = ?delay, "ingest failed; retrying");
    // Once a run: no agent answers yet (no network, a wrong URL): say how to see data.
    static HINTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let never_reached = app.health.all().iter().all(|h| h.last_contact.is_none());
    if never_reached && !HINTED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::info!("no agent has answered yet; to see the dashboard without a network or a machine, run `factorydash serve --demo` (a built-in recording of three NIST test bed machines) or `factorydash simulate` and `factorydash serve --agent http://127.0.0.1:5000`");
    }
    let now = Utc::now();
    app.health.update(url, |h| {
        h.state = SourceState::BackingOff;
        h.unreachable_since.get_or_insert(now);
        h.retry_at = Some(now + chrono::Duration::from_std(delay).unwrap_or_default());
        h.last_error = Some(error);
    });
    sleep(delay).await;
}

/// Plays `replay` into the store at its pace, in batches at most every 100 ms.
pub async fn play_recording(app: Arc<App>, source: String, replay: Arc<Replay>) {
    let devices = replay.recording.devices.device_infos(&source);
    let limits = replay.recording.devices.limits();
    app.alarms.limits(&source, &limits);
    app.limits.set(&source, limits);
    let mut backoff = Backoff::default();
    while let Err(e) = app.store.put_devices(&source, &devices).await {
        tracing::warn!(error = %e, "cannot store the device model; retrying");
        sleep(backoff.next_delay()).await;
    }
    app.devices_changed();
    let observations = replay.observations();
    let instance_id = replay.recording.header.instance_id;
    let mut done = 0;
    app.health
        .update(&source, |h| h.state = SourceState::Replaying);
    while done < observations.len() {
        let revealed = replay.revealed();
        if revealed > done {
            let batch = factorydash_core::Batch {
                agent: source.clone(),
                instance_id,
                next_sequence: observations[revealed - 1].sequence + 1,
                observations: observations[done..revealed].to_vec(),
            };
            match app.store.append(&batch).await {
                Ok(outcome) => {
                    backoff.reset();
                    app.publish(&batch.agent, &batch.observations);
                    done = revealed;
                    let now = Utc::now();
                    app.health.update(&source, |h| {
                        h.record_rate(now, outcome.inserted);
                        h.observations += outcome.inserted;
                        h.last_contact = Some(now);
                        h.next_sequence = Some(batch.next_sequence);
                        h.instance_id = Some(instance_id);
                        h.last_error = None;
                        h.unreachable_since = None;
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot store the replay's batch; retrying");
                    app.health
                        .update(&source, |h| h.last_error = Some(format!("store: {e}")));
                    sleep(backoff.next_delay()).await;
                    continue;
                }
            }
        }
        let next = replay.reveal_instant(done).unwrap_or_else(Instant::now);
        sleep_until(next.max(Instant::now() + Duration::from_millis(100))).await;
    }
    tracing::info!(%source, observations = observations.len(), "replay finished");
    app.health
        .update(&source, |h| h.state = SourceState::Finished);
}
