//! `factorydash replay`: a recording served as an MTConnect agent over HTTP (`/probe`,
//! `/current`, `/sample?from=&count=`, and streaming `/sample?interval=&heartbeat=`),
//! revealed at the recording's pace, with the recording's sequence numbers. Documents are
//! written by factorydash-mtconnect.
//!
//! It can misbehave on demand, as real agents do, for tests and for anyone testing their
//! own client: `POST /_factorydash/faults?…` (see [`FaultQuery`]).

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use factorydash_core::Observation;
use factorydash_mtconnect::{
    write_error_document, AgentError, ErrorCode, ErrorDocument, ErrorForm, Header, QueryParameter,
    StreamsWriter,
};
use serde::{Deserialize, Serialize};
use warp::http::StatusCode;
use warp::reply::{Reply, Response};
use warp::Filter;

use crate::replay::Replay;

/// The most observations one `/sample` answers, as cppagent's default limit.
const MAX_COUNT: u64 = 10_000;

/// A replay agent: the recording and the faults switched on.
pub struct ReplayAgent {
    replay: Arc<Replay>,
    faults: Faults,
    started: chrono::DateTime<Utc>,
    /// Held (shared) while the Header and the observations held are read
    /// ([`ReplayAgent::view`]), and exclusively while a restart or a wrap moves the buffer's
    /// start: no page of the old instance ever holds an observation the new buffer holds
    /// too, and no page of the new instance one of the old buffer.
    buffer: std::sync::RwLock<()>,
}

/// Misbehaviour switched on at run time.
#[derive(Default)]
struct Faults {
    refuse_streaming: AtomicBool,
    stall: AtomicBool,
    drop_mid_part: AtomicBool,
    malformed: AtomicBool,
    slow_ms: AtomicU64,
    /// Added to the recording's instanceId: each restart adds one.
    restarts: AtomicU64,
    /// The oldest sequence the agent still holds (a restart or a wrap moves it).
    first_floor: AtomicU64,
    /// Device model changes so far (each moves `deviceModelChangeTime` on a second).
    model_changes: AtomicU64,
    /// `/probe` requests answered.
    probes: AtomicU64,
    /// `/sample` requests answered (polled and streamed).
    samples: AtomicU64,
    /// Errors in the MTConnect 2.6+ form.
    error_form_v26: AtomicBool,
    /// The `bufferSize` announced (0: the recording's, rounded up to a power of two).
    buffer_size: AtomicU64,
    huge_body: AtomicBool,
    endless_body: AtomicBool,
    gzip_bomb: AtomicBool,
    endless_part: AtomicBool,
    duplicate_sequence: AtomicBool,
    next_sequence_backwards: AtomicBool,
    sequence_overflow: AtomicBool,
    stuck: AtomicBool,
}

impl Faults {
    /// Whether a `/sample` body is to be one that no client should hold.
    fn hostile_body(&self) -> bool {
        self.huge_body.load(Ordering::SeqCst)
            || self.endless_body.load(Ordering::SeqCst)
            || self.gzip_bomb.load(Ordering::SeqCst)
    }
}

/// `POST /_factorydash/faults` parameters; each given one is set.
#[derive(Debug, Default, Deserialize)]
pub struct FaultQuery {
    /// Answer streaming requests with an `UNSUPPORTED` error, as 1.2-era agents do.
    refuse_streaming: Option<bool>,
    /// Streams go silent (no parts, no heartbeats) but stay open.
    stall: Option<bool>,
    /// The next streamed part is cut in the middle and its connection dropped.
    drop_mid_part: Option<bool>,
    /// The next `/sample` answer (polled or streamed) is broken off mid-document.
    malformed: Option<bool>,
    /// Wait this long (milliseconds) before every answer.
    slow_ms: Option<u64>,
    /// Restart now: a new instanceId, an empty buffer (what was revealed is gone).
    restart: Option<bool>,
    /// Wrap the buffer now: keep only the newest N revealed observations.
    wrap: Option<u64>,
    /// Announce a device model change (MTConnect 2.x `deviceModelChangeTime` moves).
    model_change: Option<bool>,
    /// `2.6`: answer errors in the MTConnect 2.6+ form (`<OutOfRange errorCode=…>` with
    /// `ErrorMessage`, `QueryParameter`, `Request`, `URI`), as the reference agent does by
    /// default; anything else: the older `<Error errorCode=…>text</Error>`.
    error_form: Option<String>,
    /// Announce this `bufferSize` and refuse a larger `count` with `OUT_OF_RANGE`, as the
    /// reference agent does (0: back to the recording's size).
    buffer_size: Option<u64>,
    /// Every `/sample` answer is a 1 GiB body (an XML start, then blanks), made as it is
    /// sent, never held.
    huge_body: Option<bool>,
    /// Every `/sample` answer is a chunked body that never ends.
    endless_body: Option<bool>,
    /// Every `/sample` answer is `Content-Encoding: gzip` that inflates to 1 GiB of zeros
    /// (about 1 MB sent).
    gzip_bomb: Option<bool>,
    /// Streams send a part that never reaches its boundary (no `Content-length`, then
    /// blanks forever).
    endless_part: Option<bool>,
    /// Each page repeats its first observation with another timestamp, and points its
    /// `nextSequence` at its last observation so that it is sent again.
    duplicate_sequence: Option<bool>,
    /// `nextSequence` goes back: below the `from` asked.
    next_sequence_backwards: Option<bool>,
    /// Sequences beyond 2^63 (the observations' and the Header's).
    sequence_overflow: Option<bool>,
    /// `nextSequence` never advances (it answers the `from` asked, with no observations,
    /// while `lastSequence` says it holds more).
    stuck: Option<bool>,
}

/// What the faults endpoint answers.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct FaultState {
    instance_id: u64,
    probes: u64,
    samples: u64,
    first_sequence: u64,
    last_sequence: u64,
    refuse_streaming: bool,
    stall: bool,
    slow_ms: u64,
}

/// The `/sample` query.
#[derive(Debug, Deserialize)]
struct SampleQuery {
    from: Option<String>,
    count: Option<String>,
    interval: Option<String>,
    heartbeat: Option<String>,
}

impl ReplayAgent {
    /// An agent over `replay`, behaving well.
    pub fn new(replay: Arc<Replay>) -> Arc<Self> {
        Arc::new(ReplayAgent {
            replay,
            faults: Faults::default(),
            started: Utc::now(),
            buffer: std::sync::RwLock::new(()),
        })
    }

    fn instance_id(&self) -> u64 {
        self.replay.recording.header.instance_id + self.faults.restarts.load(Ordering::SeqCst)
    }

    /// The Header and the observations the agent holds now (revealed, and not before the
    /// buffer's start), from one look at the clock, and under the buffer lock so that the
    /// instanceId and the buffer's start are of one instance: a restart or a wrap never
    /// falls between them, and an observation revealed meanwhile is in both or in neither.
    fn view(&self) -> (Header, &[Observation]) {
        let _buffer = self.buffer.read().unwrap_or_else(|p| p.into_inner());
        let revealed = &self.replay.observations()[..self.replay.revealed()];
        let floor = self.faults.first_floor.load(Ordering::SeqCst);
        let held = &revealed[revealed.partition_point(|o| o.sequence < floor)..];
        (self.header(revealed, held), held)
    }

    /// The Header when `revealed` are revealed and the agent holds `held` of them.
    fn header(&self, revealed: &[Observation], held: &[Observation]) -> Header {
        let recording_first = self.replay.observations().first().map_or(1, |o| o.sequence);
        let last = revealed
            .last()
            .map_or(recording_first.saturating_sub(1), |o| o.sequence);
        let first = held
            .first()
            .map_or(last + 1, |o| o.sequence)
            .max(recording_first);
        Header::new(
            self.instance_id(),
            "factorydash-replay",
            self.replay.recording.header.version.clone(),
        )
        .with_buffer_size(self.buffer_size())
        .with_sequences(first, last, last + 1)
        .with_creation_time(Utc::now())
        .with_device_model_change_time(
            self.started
                + chrono::Duration::seconds(self.faults.model_changes.load(Ordering::SeqCst) as i64),
        )
    }

    fn writer(&self) -> StreamsWriter<'_> {
        StreamsWriter {
            devices: Some(&self.replay.recording.devices),
            extension_namespaces: vec![("x".into(), "urn:nist.gov:NistStreams:1.3".into())],
            ..StreamsWriter::default()
        }
    }

    /// The `bufferSize` announced.
    fn buffer_size(&self) -> u64 {
        match self.faults.buffer_size.load(Ordering::SeqCst) {
            0 => self.replay.observations().len().max(1).next_power_of_two() as u64,
            n => n,
        }
    }

    fn error(&self, status: StatusCode, code: &ErrorCode, text: &str) -> Response {
        self.error_with(status, AgentError::new(code.clone(), text))
    }

    /// An error document in the form switched on (`error_form`).
    fn error_with(&self, status: StatusCode, error: AgentError) -> Response {
        let form = if self.faults.error_form_v26.load(Ordering::SeqCst) {
            ErrorForm::V2_6
        } else {
            ErrorForm::Legacy
        };
        let doc = ErrorDocument {
            header: self.view().0,
            errors: vec![error],
        };
        xml(status, write_error_document(&doc, form))
    }

    fn current(&self) -> Response {
        let (head, held) = self.view();
        let mut seen = HashSet::new();
        let mut latest: Vec<Observation> = held
            .iter()
            .rev()
            .filter(|o| seen.insert((&o.device, &o.data_item_id)))
            .cloned()
            .collect();
        latest.reverse();
        xml(StatusCode::OK, self.writer().write(&head, &latest))
    }

    /// The header and observations of a `/sample` page of up to `count` from `from` (from
    /// the oldest held when `None`), or the error to answer.
    fn slice(
        &self,
        from: Option<u64>,
        count: u64,
    ) -> Result<(Header, &[Observation]), Box<Response>> {
        let (mut head, held) = self.view();
        let (first, next) = (
            head.first_sequence.unwrap_or(1),
            head.next_sequence.unwrap_or(1),
        );
        let uri = match from {
            Some(from) => format!("/sample?count={count}&from={from}"),
            None => format!("/sample?count={count}"),
        };
        let from = from.unwrap_or(first);
        let max_count = MAX_COUNT.min(self.buffer_size());
        if count == 0 || count > max_count {
            return Err(Box::new(
                self.error_with(
                    StatusCode::BAD_REQUEST,
                    AgentError::new(
                        ErrorCode::OutOfRange,
                        format!("'count' must be between 1 and {max_count}"),
                    )
                    .with_query_parameter(
                        QueryParameter::new("count")
                            .with_value(count.to_string())
                            .with_range(Some(1), Some(max_count as i64)),
                    )
                    .with_request("MTConnectStreams", uri),
                ),
            ));
        }
        if from < first || from > next {
            return Err(Box::new(
                self.error_with(
                    StatusCode::BAD_REQUEST,
                    AgentError::new(
                        ErrorCode::OutOfRange,
                        format!("'from' must be between {first} and {next}"),
                    )
                    .with_query_parameter(
                        QueryParameter::new("from")
                            .with_value(from.to_string())
                            .with_range(i64::try_from(first).ok(), i64::try_from(next).ok()),
                    )
                    .with_request("MTConnectStreams", uri),
                ),
            ));
        }
        if self.faults.stuck.load(Ordering::SeqCst) {
            // Nothing, and nextSequence where it was asked, while lastSequence says more.
            head.next_sequence = Some(from);
            return Ok((head, &held[..0]));
        }
        let start = held.partition_point(|o| o.sequence < from);
        let page = &held[start..(start + count as usize).min(held.len())];
        head.next_sequence = Some(page.last().map_or(from, |o| o.sequence + 1));
        Ok((head, page))
    }

    /// A page written out, broken off in the middle when the `malformed` fault is on, and
    /// with the sequence faults switched on.
    fn write_page(&self, head: &Header, page: &[Observation]) -> String {
        let f = &self.faults;
        let mut head = head.clone();
        let mut owned;
        let mut page = page;
        if f.duplicate_sequence.load(Ordering::SeqCst) && !page.is_empty() {
            owned = page.to_vec();
            // The first observation again, later in the page, with another timestamp.
            let mut again = owned[0].clone();
            again.timestamp += chrono::Duration::seconds(1);
            owned.push(again);
            // The last one is asked for, and sent, again (with another timestamp).
            owned[0].timestamp += chrono::Duration::milliseconds(1);
            if page.len() > 1 {
                head.next_sequence = page.last().map(|o| o.sequence);
            }
            page = &owned;
        }
        if f.next_sequence_backwards.load(Ordering::SeqCst) {
            let from = page
                .first()
                .map_or(head.next_sequence.unwrap_or(1), |o| o.sequence);
            head.next_sequence = Some(from.saturating_sub(1000));
        }
        if f.sequence_overflow.load(Ordering::SeqCst) {
            const SHIFT: u64 = 1 << 63;
            owned = page.to_vec();
            for o in &mut owned {
                o.sequence = o.sequence.wrapping_add(SHIFT);
            }
            for s in [
                &mut head.next_sequence,
                &mut head.first_sequence,
                &mut head.last_sequence,
            ] {
                *s = s.map(|s| s.wrapping_add(SHIFT));
            }
            page = &owned;
        }
        let mut doc = self.writer().write(&head, page);
        if self.faults.malformed.swap(false, Ordering::SeqCst) {
            doc.truncate(doc.len() / 2);
        }
        doc
    }

    async fn sample(self: Arc<Self>, q: SampleQuery) -> Response {
        let parse = |name: &str, v: &Option<String>| -> Result<Option<u64>, String> {
            v.as_deref()
                .map(|s| {
                    s.parse::<u64>()
                        .map_err(|_| format!("'{name}' must be a positive integer, got '{s}'"))
                })
                .transpose()
        };
        let parsed = (|| {
            Ok::<_, String>((
                parse("from", &q.from)?,
                parse("count", &q.count)?,
                parse("interval", &q.interval)?,
                parse("heartbeat", &q.heartbeat)?,
            ))
        })();
        let (from, count, interval, heartbeat) = match parsed {
            Ok(p) => p,
            Err(e) => return self.error(StatusCode::BAD_REQUEST, &ErrorCode::InvalidRequest, &e),
        };
        self.faults.samples.fetch_add(1, Ordering::SeqCst);
        if let Some(body) = hostile_body(&self.faults) {
            return body;
        }
        let count = count.unwrap_or(100);
        let Some(interval) = interval else {
            return match self.slice(from, count) {
                Ok((head, page)) => xml(StatusCode::OK, self.write_page(&head, page)),
                Err(e) => *e,
            };
        };
        if self.faults.refuse_streaming.load(Ordering::SeqCst) {
            return self.error(
                StatusCode::BAD_REQUEST,
                &ErrorCode::Unsupported,
                "streaming is not supported",
            );
        }
        // Answer a bad `from` before the stream starts, as the reference agent does.
        if let Err(e) = self.slice(from, 1) {
            return *e;
        }
        let interval = Duration::from_millis(interval.max(10));
        let heartbeat = Duration::from_millis(heartbeat.unwrap_or(10_000).max(10));
        stream(self, from, count, interval, heartbeat)
    }
}

fn xml(status: StatusCode, body: String) -> Response {
    warp::reply::with_status(
        warp::reply::with_header(body, "content-type", "text/xml; charset=utf-8"),
        status,
    )
    .into_response()
}

/// A streaming answer: one part per page while there is data, an empty document every
/// heartbeat while there is none (cppagent's `multipart/mixed` framing).
fn stream(
    agent: Arc<ReplayAgent>,
    from: Option<u64>,
    count: u64,
    interval: Duration,
    heartbeat: Duration,
) -> Response {
    let boundary = format!("factorydash-{:016x}", rand_u64());
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(2);
    let part_boundary = boundary.clone();
    tokio::spawn(async move {
        let instance = agent.instance_id();
        let mut pos = from.unwrap_or_else(|| agent.view().0.first_sequence.unwrap_or(1));
        let mut last_part = tokio::time::Instant::now() - heartbeat;
        loop {
            if agent.instance_id() != instance
                || agent.faults.first_floor.load(Ordering::SeqCst) > pos
                || agent.faults.hostile_body()
            {
                // Restarted or wrapped past us, or the next answer is to be a hostile
                // body: the connection ends.
                return;
            }
            if agent.faults.endless_part.load(Ordering::SeqCst) {
                let head = format!("--{part_boundary}\r\nContent-type: text/xml\r\n\r\n<?xml version=\"1.0\"?>\n<MTConnectStreams>");
                if tx.send(Ok(head.into_bytes())).await.is_err() {
                    return;
                }
                // Blanks forever, never the boundary: until the client hangs up.
                while tx.send(Ok(vec![b' '; FILLER])).await.is_ok() {}
                return;
            }
            if !agent.faults.stall.load(Ordering::SeqCst) {
                let held_end = agent.view().1.last().map_or(0, |o| o.sequence + 1);
                let mut sent = false;
                while pos < held_end {
                    let Ok((head, page)) = agent.slice(Some(pos), count) else {
                        return;
                    };
                    if head.instance_id != instance {
                        // Restarted since the check above: this connection ends.
                        return;
                    }
                    let next = head.next_sequence.unwrap_or(held_end);
                    let part = framed(&part_boundary, &agent.write_page(&head, page));
                    if agent.faults.drop_mid_part.swap(false, Ordering::SeqCst) {
                        let _ = tx.send(Ok(part[..part.len() / 2].to_vec())).await;
                        let _ = tx
                            .send(Err(std::io::Error::other("dropped mid-part on purpose")))
                            .await;
                        return;
                    }
                    if tx.send(Ok(part)).await.is_err() {
                        return;
                    }
                    sent = true;
                    if next <= pos {
                        break;
                    }
                    pos = next;
                }
                if sent {
                    last_part = tokio::time::Instant::now();
                } else if last_part.elapsed() >= heartbeat {
                    let Ok((head, page)) = agent.slice(Some(pos), count) else {
                        return;
                    };
                    if head.instance_id != instance {
                        return;
                    }
                    if tx
                        .send(Ok(framed(&part_boundary, &agent.write_page(&head, page))))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    last_part = tokio::time::Instant::now();
                }
            }
            tokio::time::sleep(interval).await;
        }
    });
    let body = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    warp::reply::with_header(
        warp::reply::stream(body),
        "content-type",
        format!("multipart/mixed;boundary={boundary}"),
    )
    .into_response()
}

/// The size of each chunk of a hostile body.
const FILLER: usize = 64 << 10;

/// What `huge_body` sends: 1 GiB.
const HUGE: u64 = 1 << 30;

/// The answer of the body faults, if one is on: made chunk by chunk as it is sent, so the
/// agent never holds more than a chunk.
fn hostile_body(f: &Faults) -> Option<Response> {
    let start = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<MTConnectStreams xmlns=\"urn:mtconnect.org:MTConnectStreams:1.3\"><Streams>".to_vec();
    let body: Box<
        dyn futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + Sync + Unpin,
    > = if f.gzip_bomb.load(Ordering::SeqCst) {
        // One gzip member of 16 MiB of zeros (about 16 KB), sent 64 times: a client
        // that inflates the concatenated members gets 1 GiB.
        static MEMBER: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        let member = MEMBER.get_or_init(|| {
            use std::io::Write;
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            let zeros = vec![0u8; 1 << 20];
            for _ in 0..16 {
                gz.write_all(&zeros).expect("writing to memory");
            }
            gz.finish().expect("writing to memory")
        });
        Box::new(futures_util::stream::iter(
            (0..64).map(move |_| Ok::<_, std::io::Error>(member.clone())),
        ))
    } else if f.huge_body.load(Ordering::SeqCst) {
        let mut sent = 0u64;
        let mut first = Some(start);
        Box::new(futures_util::stream::poll_fn(move |_| {
            if let Some(start) = first.take() {
                sent += start.len() as u64;
                return std::task::Poll::Ready(Some(Ok(start)));
            }
            if sent >= HUGE {
                return std::task::Poll::Ready(None);
            }
            let n = FILLER.min((HUGE - sent) as usize);
            sent += n as u64;
            std::task::Poll::Ready(Some(Ok(vec![b' '; n])))
        }))
    } else if f.endless_body.load(Ordering::SeqCst) {
        let mut first = Some(start);
        Box::new(futures_util::stream::poll_fn(move |_| {
            std::task::Poll::Ready(Some(Ok(first.take().unwrap_or_else(|| vec![b' '; FILLER]))))
        }))
    } else {
        return None;
    };
    let mut response = warp::reply::with_header(
        warp::reply::stream(body),
        "content-type",
        "text/xml; charset=utf-8",
    )
    .into_response();
    if f.gzip_bomb.load(Ordering::SeqCst) {
        response.headers_mut().insert(
            "content-encoding",
            warp::http::HeaderValue::from_static("gzip"),
        );
    }
    Some(response)
}

fn framed(boundary: &str, doc: &str) -> Vec<u8> {
    let mut part = format!(
        "--{boundary}\r\nContent-type: text/xml\r\nContent-length: {}\r\n\r\n",
        doc.len()
    )
    .into_bytes();
    part.extend_from_slice(doc.as_bytes());
    part.extend_from_slice(b"\r\n");
    part
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.finish()
}

async fn slow(agent: &ReplayAgent) {
    let ms = agent.faults.slow_ms.load(Ordering::SeqCst);
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

fn set_faults(agent: &ReplayAgent, q: FaultQuery) -> Response {
    warp::reply::json(&apply_faults(agent, q)).into_response()
}

/// Sets the faults of `q`, and tells the agent's state after.
fn apply_faults(agent: &ReplayAgent, q: FaultQuery) -> FaultState {
    let f = &agent.faults;
    for (flag, value) in [
        (&f.refuse_streaming, q.refuse_streaming),
        (&f.stall, q.stall),
        (&f.drop_mid_part, q.drop_mid_part),
        (&f.malformed, q.malformed),
        (&f.huge_body, q.huge_body),
        (&f.endless_body, q.endless_body),
        (&f.gzip_bomb, q.gzip_bomb),
        (&f.endless_part, q.endless_part),
        (&f.duplicate_sequence, q.duplicate_sequence),
        (&f.next_sequence_backwards, q.next_sequence_backwards),
        (&f.sequence_overflow, q.sequence_overflow),
        (&f.stuck, q.stuck),
    ] {
        if let Some(v) = value {
            flag.store(v, Ordering::SeqCst);
        }
    }
    if let Some(ms) = q.slow_ms {
        f.slow_ms.store(ms, Ordering::SeqCst);
    }
    if let Some(form) = &q.error_form {
        f.error_form_v26
            .store(form.trim() == "2.6", Ordering::SeqCst);
    }
    if let Some(size) = q.buffer_size {
        f.buffer_size.store(size, Ordering::SeqCst);
    }
    let _buffer = agent.buffer.write().unwrap_or_else(|p| p.into_inner());
    let revealed_end = agent.replay.observations()[..agent.replay.revealed()]
        .last()
        .map_or(0, |o| o.sequence + 1);
    if q.restart == Some(true) {
        f.restarts.fetch_add(1, Ordering::SeqCst);
        f.first_floor.fetch_max(revealed_end, Ordering::SeqCst);
        tracing::warn!(
            "replay agent: restarted (instanceId {})",
            agent.instance_id()
        );
    }
    if q.model_change == Some(true) {
        f.model_changes.fetch_add(1, Ordering::SeqCst);
        tracing::warn!("replay agent: device model changed");
    }
    if let Some(keep) = q.wrap {
        f.first_floor
            .fetch_max(revealed_end.saturating_sub(keep), Ordering::SeqCst);
        tracing::warn!("replay agent: buffer wrapped, keeping the newest {keep}");
    }
    drop(_buffer);
    let (head, _) = agent.view();
    FaultState {
        instance_id: head.instance_id,
        probes: f.probes.load(Ordering::SeqCst),
        samples: f.samples.load(Ordering::SeqCst),
        first_sequence: head.first_sequence.unwrap_or(0),
        last_sequence: head.last_sequence.unwrap_or(0),
        refuse_streaming: f.refuse_streaming.load(Ordering::SeqCst),
        stall: f.stall.load(Ordering::SeqCst),
        slow_ms: f.slow_ms.load(Ordering::SeqCst),
    }
}

/// The agent's routes.
pub fn routes(
    agent: Arc<ReplayAgent>,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    let with = warp::any().map(move || agent.clone());
    let probe = warp::path!("probe")
        .and(warp::get())
        .and(with.clone())
        .then(|a: Arc<ReplayAgent>| async move {
            slow(&a).await;
            a.faults.probes.fetch_add(1, Ordering::SeqCst);
            xml(
                StatusCode::OK,
                String::from_utf8_lossy(&a.replay.recording.probe).into_owned(),
            )
        });
    let current = warp::path!("current")
        .and(warp::get())
        .and(with.clone())
        .then(|a: Arc<ReplayAgent>| async move {
            slow(&a).await;
            a.current()
        });
    let sample = warp::path!("sample")
        .and(warp::get())
        .and(warp::query::<SampleQuery>())
        .and(with.clone())
        .then(|q: SampleQuery, a: Arc<ReplayAgent>| async move {
            slow(&a).await;
            a.sample(q).await
        });
    let faults = warp::path!("_factorydash" / "faults")
        .and(warp::query::<FaultQuery>())
        .and(with.clone())
        .map(|q: FaultQuery, a: Arc<ReplayAgent>| set_faults(&a, q));
    let other = warp::any().and(with).map(|a: Arc<ReplayAgent>| {
        a.error(
            StatusCode::NOT_FOUND,
            &ErrorCode::InvalidUri,
            "the URI is not one this agent serves",
        )
    });
    probe
        .or(current)
        .unify()
        .or(sample)
        .unify()
        .or(faults)
        .unify()
        .or(other)
        .unify()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test recording replayed so fast that it is all revealed in about `seconds`.
    fn fast_agent(seconds: f64) -> Arc<ReplayAgent> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../recordings/nist-gfagie01-2016-05-02");
        let recording =
            factorydash_mtconnect::Recording::load(&dir).expect("the test recording loads");
        let length = Replay::start(recording.clone(), 1.0, Utc::now())
            .duration()
            .as_secs_f64();
        let speed = (length / seconds).max(1.0);
        ReplayAgent::new(Arc::new(Replay::start(recording, speed, Utc::now())))
    }

    /// While observations are revealed every few microseconds, restart after restart: each
    /// answer names where the new buffer starts (the first sequence the new instance
    /// serves), and every page cut meanwhile holds only observations of the instance it
    /// names. Before, the agent looked at the clock twice (what it holds, then its
    /// lastSequence) and at the instance apart from the buffer's start, so an observation
    /// revealed in between made it answer one past the new buffer's start, and a page cut
    /// across a restart named the new instance with the old buffer's observations.
    #[test]
    fn a_restart_answers_where_the_new_buffer_starts_and_pages_never_mix_instances() {
        let agent = fast_agent(0.3);
        let base = agent.instance_id();
        let recording_first = agent.replay.observations()[0].sequence;
        let total = agent.replay.observations().len();
        // The buffer's start of each instance (index: restarts so far).
        let floors = std::sync::Mutex::new(vec![0u64]);
        let done = AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let mut pages = 0u64;
                while !done.load(Ordering::SeqCst) {
                    let Ok((head, page)) = agent.slice(None, 1000) else {
                        continue;
                    };
                    pages += 1;
                    let k = (head.instance_id - base) as usize;
                    let floor = loop {
                        if let Some(&f) = floors.lock().unwrap().get(k) {
                            break f;
                        }
                        std::thread::yield_now();
                    };
                    if let Some(o) = page.first() {
                        assert!(
                            o.sequence >= floor,
                            "a page of instance {} holds {} of the buffer before its start {floor}",
                            head.instance_id,
                            o.sequence
                        );
                        assert_eq!(head.first_sequence, Some(o.sequence));
                    }
                }
                assert!(pages > 0);
            });
            let mut restarts = 0;
            let mut wrong = Vec::new();
            while agent.replay.revealed() < total {
                let state = apply_faults(
                    &agent,
                    FaultQuery {
                        restart: Some(true),
                        ..FaultQuery::default()
                    },
                );
                let floor = agent.faults.first_floor.load(Ordering::SeqCst);
                floors.lock().unwrap().push(floor);
                restarts += 1;
                if state.first_sequence != floor.max(recording_first) {
                    wrong.push((floor, state.first_sequence));
                }
            }
            done.store(true, Ordering::SeqCst);
            assert!(restarts > 100, "{restarts} restarts");
            assert!(
                wrong.is_empty(),
                "{} of {restarts} restarts answered another firstSequence than the new buffer's start (start, answered): {:?}",
                wrong.len(),
                &wrong[..wrong.len().min(10)]
            );
        });
    }
}
