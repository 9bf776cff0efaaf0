//! An MTConnect agent over HTTP (`/probe`, `/current`, `/sample?from=&count=`, streaming
//! `/sample?interval=&heartbeat=`, and `/asset(s)` where the source has assets), serving
//! the observations of a [`Source`]: a recording replayed at its own pace (`factorydash
//! replay`, [`ReplaySource`]) or the simulator's ring buffers (`factorydash simulate`).
//! Documents are written by factorydash-mtconnect.
//!
//! It can misbehave on demand, as real agents do, for tests and for anyone testing their
//! own client: `POST /_factorydash/faults?…` (see [`FaultQuery`]); any other method is a
//! 405. The switches are on when the agent listens on a loopback address, and otherwise
//! only when asked for (`--faults`, see [`fault_switches`]): a 403 says so.

use std::borrow::Cow;
use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use factorydash_core::Observation;
use factorydash_mtconnect::{
    write_error_document, write_error_json, AgentError, Devices, ErrorCode, ErrorDocument,
    ErrorForm, Header, JsonVersion, QueryParameter, StreamsWriter,
};
use serde::{Deserialize, Serialize};
use warp::http::StatusCode;
use warp::reply::{Reply, Response};
use warp::{Filter, Rejection};

use crate::replay::Replay;

/// Where an agent's observations come from. Sequences only grow; a source may forget its
/// oldest observations (a ring buffer), never ones in the middle.
pub trait Source: Send + Sync + 'static {
    /// The `instanceId` at start (each `restart` fault adds one).
    fn instance_id(&self) -> u64;
    /// The Header's `sender`.
    fn sender(&self) -> &str;
    /// The Header's `version` (the MTConnect version the agent claims).
    fn version(&self) -> &str;
    /// The device model, for the Streams writer (DeviceStream `uuid`, component names).
    fn devices(&self) -> &Devices;
    /// The `/probe` answer.
    fn probe(&self) -> String;
    /// Namespaces of extension prefixes used in Streams documents.
    fn extension_namespaces(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    /// The `bufferSize` announced (unless the `buffer_size` fault sets another).
    fn buffer_size(&self) -> u64;
    /// `(firstSequence, lastSequence)` now, holding nothing below `floor` (a restart or a
    /// wrap moves it). With nothing held, `firstSequence` is `lastSequence + 1`.
    fn sequences(&self, floor: u64) -> (u64, u64);
    /// Up to `count` observations from sequence `from` on, in sequence order; `from` is at
    /// least the `firstSequence` of [`Source::sequences`].
    fn page(&self, from: u64, count: usize) -> Cow<'_, [Observation]>;
    /// The latest observation of each data item held at or above `floor`, in sequence
    /// order (`/current`).
    fn latest(&self, floor: u64) -> Vec<Observation>;
    /// The `/assets` answer (an MTConnectAssets document), or `None` when the source has
    /// none to serve (`/assets` is then an unknown URI).
    fn assets(&self) -> Option<String> {
        None
    }
    /// Told how many observations a `/sample` answer (polled or a streamed part) carried.
    fn served(&self, _observations: usize) {}
}

/// A recording being replayed, as a [`Source`]: observations appear as they are revealed.
pub struct ReplaySource(pub Arc<Replay>);

impl ReplaySource {
    /// The revealed observations, not below `floor`.
    fn held(&self, floor: u64) -> &[Observation] {
        let obs = &self.0.observations()[..self.0.revealed()];
        &obs[obs.partition_point(|o| o.sequence < floor)..]
    }
}

impl Source for ReplaySource {
    fn instance_id(&self) -> u64 {
        self.0.recording.header.instance_id
    }

    fn sender(&self) -> &str {
        "factorydash-replay"
    }

    fn version(&self) -> &str {
        &self.0.recording.header.version
    }

    fn devices(&self) -> &Devices {
        &self.0.recording.devices
    }

    fn probe(&self) -> String {
        String::from_utf8_lossy(&self.0.recording.probe).into_owned()
    }

    fn extension_namespaces(&self) -> Vec<(String, String)> {
        vec![("x".into(), "urn:nist.gov:NistStreams:1.3".into())]
    }

    /// The recording's size, rounded up to a power of two.
    fn buffer_size(&self) -> u64 {
        self.0.observations().len().max(1).next_power_of_two() as u64
    }

    fn sequences(&self, floor: u64) -> (u64, u64) {
        let recording_first = self.0.observations().first().map_or(1, |o| o.sequence);
        // One look at the clock for both: an observation revealed between two looks would
        // make firstSequence one past the buffer's real start after a restart.
        let revealed = &self.0.observations()[..self.0.revealed()];
        let held = &revealed[revealed.partition_point(|o| o.sequence < floor)..];
        let last = revealed
            .last()
            .map_or(recording_first.saturating_sub(1), |o| o.sequence);
        let first = held
            .first()
            .map_or(last + 1, |o| o.sequence)
            .max(recording_first);
        (first, last)
    }

    fn page(&self, from: u64, count: usize) -> Cow<'_, [Observation]> {
        let held = self.held(from);
        Cow::Borrowed(&held[..count.min(held.len())])
    }

    fn latest(&self, floor: u64) -> Vec<Observation> {
        let mut seen = HashSet::new();
        let mut latest: Vec<Observation> = self
            .held(floor)
            .iter()
            .rev()
            .filter(|o| seen.insert((&o.device, &o.data_item_id)))
            .cloned()
            .collect();
        latest.reverse();
        latest
    }
}

/// The most observations one `/sample` answers, as cppagent's default limit.
const MAX_COUNT: u64 = 10_000;

/// An agent: its source of observations and the faults switched on.
pub struct Agent {
    source: Arc<dyn Source>,
    /// What log lines call it, e.g. `replay agent` or `agent-01`.
    name: String,
    faults: Faults,
    started: chrono::DateTime<Utc>,
    /// Whether `POST /_factorydash/faults` may switch faults on ([`Agent::allow_faults`]).
    switches: AtomicBool,
    /// Held (shared) while the Header and the observations held are read (`slice`,
    /// `current`), and exclusively while a restart or a wrap moves the buffer's
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
    /// Streams documents answered in JSON (`/current`, `/sample` pages and parts).
    json_answers: AtomicU64,
    /// Errors in the MTConnect 2.6+ form.
    error_form_v26: AtomicBool,
    /// The `bufferSize` announced (0: the source's).
    buffer_size: AtomicU64,
    huge_body: AtomicBool,
    endless_body: AtomicBool,
    gzip_bomb: AtomicBool,
    endless_part: AtomicBool,
    duplicate_sequence: AtomicBool,
    next_sequence_backwards: AtomicBool,
    sequence_overflow: AtomicBool,
    stuck: AtomicBool,
    /// Alternate between two instanceIds every this many milliseconds (0: off).
    alternate_instance_ms: AtomicU64,
    /// Alternate between two instanceIds at every `/sample` request.
    alternate_instance_per_request: AtomicBool,
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
    /// Alternate between two `instanceId`s (the agent's and the next) every this many
    /// milliseconds, both serving the same buffer, and send every observation with a new
    /// timestamp each time it is sent, as two agents behind one address would (0: off).
    alternate_instance_ms: Option<u64>,
    /// Alternate between the two `instanceId`s at every `/sample` request, as two agents
    /// behind a round-robin balancer would (each observation with a new timestamp each
    /// time it is sent, as for `alternate_instance_ms`); a stream ends after its first
    /// part, as behind a balancer that ends each connection after one answer.
    alternate_instance_per_request: Option<bool>,
}

/// What the faults endpoint answers.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct FaultState {
    instance_id: u64,
    probes: u64,
    samples: u64,
    json_answers: u64,
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
    /// `json` or `xml`: see [`Form::asked`].
    format: Option<String>,
}

/// The `/current` query.
#[derive(Debug, Deserialize)]
struct CurrentQuery {
    /// `json` or `xml`: see [`Form::asked`].
    format: Option<String>,
}

/// The form an answer is written in: XML, or the reference agent's JSON (version 2, its
/// default; [`factorydash_mtconnect::json`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// MTConnect XML.
    Xml,
    /// JSON in the version given.
    Json(JsonVersion),
}

impl Form {
    /// The form a request asks for, as the reference agent reads it: `?format=json` or
    /// `?format=xml` first; else the first `Accept` entry whose media type ends in `json`
    /// (`application/json`, `application/mtconnect+json`) or `xml`, skipping those given
    /// `q=0` (not acceptable); else XML.
    pub fn asked(accept: Option<&str>, format: Option<&str>) -> Form {
        match format.map(str::trim) {
            Some(f) if f.eq_ignore_ascii_case("json") => return Form::Json(JsonVersion::V2),
            Some(f) if f.eq_ignore_ascii_case("xml") => return Form::Xml,
            _ => {}
        }
        for entry in accept.unwrap_or("").split(',') {
            let mut parts = entry.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            if refused {
                continue;
            }
            if media.ends_with("json") {
                return Form::Json(JsonVersion::V2);
            }
            if media.ends_with("xml") {
                return Form::Xml;
            }
        }
        Form::Xml
    }

    /// The `Content-Type` of a document in this form (JSON as `application/json`; the
    /// reference agent says `application/mtconnect+json`).
    fn content_type(self) -> &'static str {
        match self {
            Form::Xml => "text/xml; charset=utf-8",
            Form::Json(_) => "application/json",
        }
    }
}

impl Agent {
    /// An agent serving `replay`, behaving well.
    pub fn replay(replay: Arc<Replay>) -> Arc<Self> {
        Self::new(Arc::new(ReplaySource(replay)), "replay agent")
    }

    /// An agent serving `source`, behaving well; `name` is what log lines call it.
    pub fn new(source: Arc<dyn Source>, name: impl Into<String>) -> Arc<Self> {
        Arc::new(Agent {
            source,
            name: name.into(),
            faults: Faults::default(),
            started: Utc::now(),
            switches: AtomicBool::new(false),
            buffer: std::sync::RwLock::new(()),
        })
    }

    /// Lets `POST /_factorydash/faults` switch faults on (`true`), or answers it with a 403
    /// (`false`, the default: see [`fault_switches`]).
    pub fn allow_faults(&self, allowed: bool) {
        self.switches.store(allowed, Ordering::SeqCst);
    }

    fn instance_id(&self) -> u64 {
        let base = self.source.instance_id() + self.faults.restarts.load(Ordering::SeqCst);
        if self
            .faults
            .alternate_instance_per_request
            .load(Ordering::SeqCst)
        {
            // The other instance is far from the next restart's.
            return base + (self.faults.samples.load(Ordering::SeqCst) % 2) * 1_000_000;
        }
        match self.faults.alternate_instance_ms.load(Ordering::SeqCst) {
            0 => base,
            period => {
                let elapsed = (Utc::now() - self.started).num_milliseconds().max(0) as u64;
                // The other instance is far from the next restart's.
                base + ((elapsed / period) % 2) * 1_000_000
            }
        }
    }

    /// The oldest sequence a restart or a wrap left.
    fn floor(&self) -> u64 {
        self.faults.first_floor.load(Ordering::SeqCst)
    }

    /// The header now.
    fn header(&self) -> Header {
        let (first, last) = self.source.sequences(self.floor());
        Header::new(
            self.instance_id(),
            self.source.sender(),
            self.source.version(),
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
            devices: Some(self.source.devices()),
            extension_namespaces: self.source.extension_namespaces(),
            ..StreamsWriter::default()
        }
    }

    /// The `bufferSize` announced.
    fn buffer_size(&self) -> u64 {
        match self.faults.buffer_size.load(Ordering::SeqCst) {
            0 => self.source.buffer_size(),
            n => n,
        }
    }

    fn error(&self, form: Form, status: StatusCode, code: &ErrorCode, text: &str) -> Response {
        self.error_with(form, status, AgentError::new(code.clone(), text))
    }

    /// An error document in `form`; in XML, in the MTConnect form switched on
    /// (`error_form`).
    fn error_with(&self, form: Form, status: StatusCode, error: AgentError) -> Response {
        let doc = ErrorDocument {
            header: self.header(),
            errors: vec![error],
        };
        let body = match form {
            Form::Json(version) => write_error_json(&doc, version),
            Form::Xml if self.faults.error_form_v26.load(Ordering::SeqCst) => {
                write_error_document(&doc, ErrorForm::V2_6)
            }
            Form::Xml => write_error_document(&doc, ErrorForm::Legacy),
        };
        answer(form, status, body)
    }

    /// `observations` under `head`, written in `form`.
    fn write(&self, form: Form, head: &Header, observations: &[Observation]) -> String {
        match form {
            Form::Xml => self.writer().write(head, observations),
            Form::Json(version) => {
                self.faults.json_answers.fetch_add(1, Ordering::SeqCst);
                self.writer().write_json(head, observations, version)
            }
        }
    }

    fn current(&self, form: Form) -> Response {
        // The instance and the buffer's start of one instant (see `buffer`).
        let _buffer = self.buffer.read().unwrap_or_else(|p| p.into_inner());
        let head = self.header();
        let latest = self.source.latest(self.floor());
        answer(form, StatusCode::OK, self.write(form, &head, &latest))
    }

    /// The header and observations of a `/sample` page of up to `count` from `from` (from
    /// the oldest held when `None`), or the error to answer.
    fn slice(
        &self,
        from: Option<u64>,
        count: u64,
        form: Form,
    ) -> Result<(Header, Cow<'_, [Observation]>), Box<Response>> {
        // The instance and the buffer's start of one instant (see `buffer`): a page never
        // names one instance with the other's observations.
        let _buffer = self.buffer.read().unwrap_or_else(|p| p.into_inner());
        let mut head = self.header();
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
                    form,
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
                    form,
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
            return Ok((head, Cow::Borrowed(&[])));
        }
        let page = self.source.page(from, count as usize);
        head.next_sequence = Some(page.last().map_or(from, |o| o.sequence + 1));
        Ok((head, page))
    }

    /// A page written out, broken off in the middle when the `malformed` fault is on, and
    /// with the sequence faults switched on.
    fn write_page(&self, head: &Header, page: &[Observation], form: Form) -> String {
        self.source.served(page.len());
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
        let alternating = f.alternate_instance_ms.load(Ordering::SeqCst) > 0
            || f.alternate_instance_per_request.load(Ordering::SeqCst);
        if alternating && !page.is_empty() {
            // Each observation sent again has a timestamp it was never sent with.
            let shift = chrono::Duration::microseconds(
                (Utc::now() - self.started).num_microseconds().unwrap_or(0),
            );
            owned = page.to_vec();
            for o in &mut owned {
                o.timestamp += shift;
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
        let mut doc = self.write(form, &head, page);
        if self.faults.malformed.swap(false, Ordering::SeqCst) {
            doc.truncate(doc.len() / 2);
        }
        doc
    }

    async fn sample(self: Arc<Self>, q: SampleQuery, accept: Option<String>) -> Response {
        let form = Form::asked(accept.as_deref(), q.format.as_deref());
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
            Err(e) => {
                return self.error(
                    form,
                    StatusCode::BAD_REQUEST,
                    &ErrorCode::InvalidRequest,
                    &e,
                )
            }
        };
        self.faults.samples.fetch_add(1, Ordering::SeqCst);
        if let Some(body) = hostile_body(&self.faults) {
            return body;
        }
        let count = count.unwrap_or(100);
        let Some(interval) = interval else {
            return match self.slice(from, count, form) {
                Ok((head, page)) => {
                    answer(form, StatusCode::OK, self.write_page(&head, &page, form))
                }
                Err(e) => *e,
            };
        };
        if self.faults.refuse_streaming.load(Ordering::SeqCst) {
            return self.error(
                form,
                StatusCode::BAD_REQUEST,
                &ErrorCode::Unsupported,
                "streaming is not supported",
            );
        }
        // Answer a bad `from` before the stream starts, as the reference agent does.
        if let Err(e) = self.slice(from, 1, form) {
            return *e;
        }
        let interval = Duration::from_millis(interval.max(10));
        let heartbeat = Duration::from_millis(heartbeat.unwrap_or(10_000).max(10));
        stream(self, from, count, interval, heartbeat, form)
    }
}

fn xml(status: StatusCode, body: String) -> Response {
    answer(Form::Xml, status, body)
}

/// `body`, a document in `form`, with its status.
fn answer(form: Form, status: StatusCode, body: String) -> Response {
    warp::reply::with_status(
        warp::reply::with_header(body, "content-type", form.content_type()),
        status,
    )
    .into_response()
}

/// A streaming answer: one part per page while there is data, an empty document every
/// heartbeat while there is none (cppagent's `multipart/mixed` framing).
fn stream(
    agent: Arc<Agent>,
    from: Option<u64>,
    count: u64,
    interval: Duration,
    heartbeat: Duration,
    form: Form,
) -> Response {
    let boundary = format!("factorydash-{:016x}", rand_u64());
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(2);
    let part_boundary = boundary.clone();
    tokio::spawn(async move {
        let instance = agent.instance_id();
        let mut pos = from.unwrap_or_else(|| agent.header().first_sequence.unwrap_or(1));
        let mut last_part = tokio::time::Instant::now() - heartbeat;
        let mut answered = false;
        loop {
            let per_request = agent
                .faults
                .alternate_instance_per_request
                .load(Ordering::SeqCst);
            if agent.instance_id() != instance
                || agent.faults.first_floor.load(Ordering::SeqCst) > pos
                || agent.faults.hostile_body()
                || (per_request && answered)
            {
                // Restarted or wrapped past us, the next answer is to be a hostile body,
                // or a balancer in front that ends each connection after one answer: the
                // connection ends.
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
                let held_end = agent.source.sequences(agent.floor()).1 + 1;
                let mut sent = false;
                while pos < held_end {
                    let Ok((head, page)) = agent.slice(Some(pos), count, form) else {
                        return;
                    };
                    if head.instance_id != instance {
                        // Restarted since the check above: this connection ends.
                        return;
                    }
                    let next = head.next_sequence.unwrap_or(held_end);
                    let part = framed(&part_boundary, form, &agent.write_page(&head, &page, form));
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
                    answered = true;
                } else if last_part.elapsed() >= heartbeat {
                    let Ok((head, page)) = agent.slice(Some(pos), count, form) else {
                        return;
                    };
                    if head.instance_id != instance {
                        return;
                    }
                    if tx
                        .send(Ok(framed(
                            &part_boundary,
                            form,
                            &agent.write_page(&head, &page, form),
                        )))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    last_part = tokio::time::Instant::now();
                    answered = true;
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

fn framed(boundary: &str, form: Form, doc: &str) -> Vec<u8> {
    let mut part = format!(
        "--{boundary}\r\nContent-type: {}\r\nContent-length: {}\r\n\r\n",
        form.content_type(),
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

async fn slow(agent: &Agent) {
    let ms = agent.faults.slow_ms.load(Ordering::SeqCst);
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

/// A plain-text answer.
fn plain(status: StatusCode, text: &'static str) -> Response {
    warp::reply::with_status(text, status).into_response()
}

/// Whether an agent listening on `listen` takes fault switches: always on a loopback
/// address; beyond it only when `asked` (`--faults`), with a warning, since anyone who
/// reaches the port can then break the agent. Told in the log either way.
pub fn fault_switches(listen: std::net::SocketAddr, asked: bool) -> bool {
    if listen.ip().is_loopback() {
        return true;
    }
    if asked {
        tracing::warn!("--faults: the fault switches are on and {listen} is not a loopback address: anyone who reaches it can break this agent (POST /_factorydash/faults)");
    } else {
        tracing::info!("the fault switches are off ({listen} is not a loopback address); --faults switches them on");
    }
    asked
}

fn set_faults(agent: &Agent, q: FaultQuery) -> Response {
    warp::reply::json(&apply_faults(agent, q)).into_response()
}

/// Sets the faults of `q`, and tells the agent's state after.
fn apply_faults(agent: &Agent, q: FaultQuery) -> FaultState {
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
    if let Some(ms) = q.alternate_instance_ms {
        f.alternate_instance_ms.store(ms, Ordering::SeqCst);
    }
    if let Some(on) = q.alternate_instance_per_request {
        f.alternate_instance_per_request.store(on, Ordering::SeqCst);
    }
    let _buffer = agent.buffer.write().unwrap_or_else(|p| p.into_inner());
    let revealed_end = agent.source.sequences(0).1 + 1;
    if q.restart == Some(true) {
        f.restarts.fetch_add(1, Ordering::SeqCst);
        f.first_floor.fetch_max(revealed_end, Ordering::SeqCst);
        tracing::warn!(
            "{}: restarted (instanceId {})",
            agent.name,
            agent.instance_id()
        );
    }
    if q.model_change == Some(true) {
        f.model_changes.fetch_add(1, Ordering::SeqCst);
        tracing::warn!("{}: device model changed", agent.name);
    }
    if let Some(keep) = q.wrap {
        f.first_floor
            .fetch_max(revealed_end.saturating_sub(keep), Ordering::SeqCst);
        tracing::warn!("{}: buffer wrapped, keeping the newest {keep}", agent.name);
    }
    drop(_buffer);
    let head = agent.header();
    FaultState {
        instance_id: head.instance_id,
        probes: f.probes.load(Ordering::SeqCst),
        samples: f.samples.load(Ordering::SeqCst),
        json_answers: f.json_answers.load(Ordering::SeqCst),
        first_sequence: head.first_sequence.unwrap_or(0),
        last_sequence: head.last_sequence.unwrap_or(0),
        refuse_streaming: f.refuse_streaming.load(Ordering::SeqCst),
        stall: f.stall.load(Ordering::SeqCst),
        slow_ms: f.slow_ms.load(Ordering::SeqCst),
    }
}

/// The agent's routes, at the root (`/probe`, `/current`, …).
pub fn routes(agent: Arc<Agent>) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    let with = warp::any().and_then(move || {
        let agent = agent.clone();
        async move { Ok::<_, Rejection>(agent) }
    });
    routes_with(with).or(warp::any().map(unknown_uri)).unify()
}

/// An `INVALID_URI` answer for a URI no agent serves (no agent's header to give).
pub fn unknown_uri() -> Response {
    let doc = ErrorDocument {
        header: Header::new(0, "factorydash", "1.3").with_creation_time(Utc::now()),
        errors: vec![AgentError::new(
            ErrorCode::InvalidUri,
            "the URI is not one this agent serves",
        )],
    };
    xml(
        StatusCode::NOT_FOUND,
        write_error_document(&doc, ErrorForm::Legacy),
    )
}

/// The routes of the agent that `with` extracts (with its path prefix, if any, already
/// matched): `probe`, `current`, `sample`, `asset`/`assets` (when its source has assets),
/// `_factorydash/faults`, and an `INVALID_URI` error document for any other path. Rejects
/// only when `with` does.
pub fn routes_with<W>(with: W) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone
where
    W: Filter<Extract = (Arc<Agent>,), Error = Rejection> + Clone + Send + Sync + 'static,
{
    let probe = with
        .clone()
        .and(warp::path!("probe"))
        .and(warp::get())
        .then(|a: Arc<Agent>| async move {
            slow(&a).await;
            a.faults.probes.fetch_add(1, Ordering::SeqCst);
            xml(StatusCode::OK, a.source.probe())
        });
    let current = with
        .clone()
        .and(warp::path!("current"))
        .and(warp::get())
        .and(warp::header::optional::<String>("accept"))
        .and(warp::query::<CurrentQuery>())
        .then(
            |a: Arc<Agent>, accept: Option<String>, q: CurrentQuery| async move {
                slow(&a).await;
                a.current(Form::asked(accept.as_deref(), q.format.as_deref()))
            },
        );
    let sample = with
        .clone()
        .and(warp::path!("sample"))
        .and(warp::get())
        .and(warp::query::<SampleQuery>())
        .and(warp::header::optional::<String>("accept"))
        .then(
            |a: Arc<Agent>, q: SampleQuery, accept: Option<String>| async move {
                slow(&a).await;
                a.sample(q, accept).await
            },
        );
    let assets = with
        .clone()
        .and(warp::path!("assets").or(warp::path!("asset")).unify())
        .and(warp::get())
        .and_then(|a: Arc<Agent>| async move {
            match a.source.assets() {
                Some(doc) => {
                    slow(&a).await;
                    Ok(xml(StatusCode::OK, doc))
                }
                None => Ok::<_, Rejection>(a.error(
                    Form::Xml,
                    StatusCode::NOT_FOUND,
                    &ErrorCode::InvalidUri,
                    "the URI is not one this agent serves",
                )),
            }
        });
    let faults = with
        .clone()
        .and(warp::path!("_factorydash" / "faults"))
        .and(warp::post())
        .and(warp::header::optional::<String>("origin"))
        .and(warp::header::optional::<String>("sec-fetch-site"))
        .and(warp::query::<FaultQuery>())
        .map(|a: Arc<Agent>, origin: Option<String>, site: Option<String>, q: FaultQuery| {
            if origin.is_some() || site.is_some() {
                // A browser sends these on every POST: a page (of any origin, or one
                // whose name was rebound to this address) must not break the agent.
                plain(
                    StatusCode::FORBIDDEN,
                    "the fault switches are for scripts (curl -X POST), not for pages in a browser",
                )
            } else if a.switches.load(Ordering::SeqCst) {
                set_faults(&a, q)
            } else {
                plain(
                    StatusCode::FORBIDDEN,
                    "the fault switches are off: this agent listens beyond 127.0.0.1; start it with --faults to switch them on",
                )
            }
        });
    // A change is never a GET (a link, a crawler, an image on a page must not break the
    // agent); a POST whose query does not parse is a 400.
    let not_faults = with
        .clone()
        .and(warp::path!("_factorydash" / "faults"))
        .and(warp::method())
        .map(|_: Arc<Agent>, method: warp::http::Method| {
            if method == warp::http::Method::POST {
                plain(StatusCode::BAD_REQUEST, "unknown fault switch or bad value")
            } else {
                let mut r = plain(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "the fault switches take POST, e.g. curl -X POST 'HOST/_factorydash/faults?stall=true'",
                );
                r.headers_mut()
                    .insert(warp::http::header::ALLOW, "POST".parse().expect("a header"));
                r
            }
        });
    let other = with.map(|a: Arc<Agent>| {
        a.error(
            Form::Xml,
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
        .or(assets)
        .unify()
        .or(faults)
        .unify()
        .or(not_faults)
        .unify()
        .or(other)
        .unify()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test recording replayed so fast that it is all revealed in about `seconds`.
    #[test]
    fn the_form_asked_is_read_as_the_reference_agent_reads_it() {
        let json = Form::Json(JsonVersion::V2);
        for (accept, format, want) in [
            (None, None, Form::Xml),
            (Some("application/json"), None, json),
            (
                Some("text/html, application/mtconnect+json;q=0.9"),
                None,
                json,
            ),
            (Some("application/xml, application/json"), None, Form::Xml),
            (Some("application/json;q=0, text/xml"), None, Form::Xml),
            (Some("application/json"), Some("xml"), Form::Xml),
            (Some("text/xml"), Some("JSON"), json),
            (Some("*/*"), None, Form::Xml),
        ] {
            assert_eq!(Form::asked(accept, format), want, "{accept:?} {format:?}");
        }
    }

    fn fast_agent(seconds: f64) -> (Arc<Agent>, Arc<Replay>) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../recordings/nist-gfagie01-2016-05-02");
        let recording =
            factorydash_mtconnect::Recording::load(&dir).expect("the test recording loads");
        let length = Replay::start(recording.clone(), 1.0, Utc::now())
            .duration()
            .as_secs_f64();
        let speed = (length / seconds).max(1.0);
        let replay = Arc::new(Replay::start(recording, speed, Utc::now()));
        (Agent::replay(replay.clone()), replay)
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
        let (agent, replay) = fast_agent(0.3);
        let base = agent.instance_id();
        let recording_first = replay.observations()[0].sequence;
        let total = replay.observations().len();
        // The buffer's start of each instance (index: restarts so far).
        let floors = std::sync::Mutex::new(vec![0u64]);
        let done = AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let mut pages = 0u64;
                while !done.load(Ordering::SeqCst) {
                    let Ok((head, page)) = agent.slice(None, 1000, Form::Xml) else {
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
            while replay.revealed() < total {
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
