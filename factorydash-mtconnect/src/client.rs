//! An MTConnect agent client over HTTP (MTConnect Part 1, "REST Protocol"): `/probe`,
//! `/current`, `/sample?from=&count=`, and a [`Follower`] that reads an agent's whole
//! sequence without losing or repeating an observation.

use std::time::Duration;

use factorydash_core::{Batch, Gap, Observation, ResumePoint};
use rand::Rng;

use crate::devices::{parse_devices_with, Devices};
use crate::error::{ErrorCode, ErrorDocument};
use crate::header::Header;
use crate::problem::{Parsed, Problem};
use crate::streams::parse_streams_with;
use crate::ParseOptions;

/// What went wrong talking to an agent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The agent could not be reached, or the connection failed or timed out.
    #[error("cannot reach the agent at {url}")]
    Http {
        /// The request URL.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The agent answered with an HTTP error status and no MTConnectError document.
    #[error("the agent answered {url} with HTTP {status}")]
    Status {
        /// The request URL.
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The agent refused the request with an MTConnectError document.
    #[error("the agent refused {url}: {document}")]
    Agent {
        /// The request URL.
        url: String,
        /// The agent's error document.
        document: Box<ErrorDocument>,
    },
    /// The answer is not the MTConnect document expected.
    #[error("the agent's answer to {url} is not usable")]
    Document {
        /// The request URL.
        url: String,
        /// The parse error.
        #[source]
        source: crate::Error,
    },
    /// The answer broke off or is not well-formed XML, so its `nextSequence` cannot be
    /// trusted; the request should be repeated.
    #[error("the agent's answer to {url} is incomplete: {problem}")]
    Incomplete {
        /// The request URL.
        url: String,
        /// The problem that stopped the parser.
        problem: Problem,
    },
    /// The base URL is not usable.
    #[error("invalid agent URL `{0}`")]
    InvalidUrl(String),
    /// The agent answered a streaming request (`interval`) with a plain document: it does
    /// not stream (1.2-era agents); follow it by polling.
    #[error("the agent at {url} does not stream; poll it instead")]
    StreamingUnsupported {
        /// The request URL.
        url: String,
    },
    /// No part arrived on a stream for longer than the allowed silence (about twice the
    /// heartbeat): the stream is dead and must be reopened.
    #[error("the stream from {url} stalled: nothing for {after:?}")]
    Stalled {
        /// The request URL.
        url: String,
        /// The silence that was allowed.
        after: Duration,
    },
    /// A streamed part could not be framed.
    #[error("the stream from {url} is broken")]
    Multipart {
        /// The request URL.
        url: String,
        /// What is wrong.
        #[source]
        source: crate::multipart::MultipartError,
    },
}

impl ClientError {
    /// The MTConnect error code, when the agent answered with an MTConnectError.
    pub fn agent_code(&self) -> Option<&ErrorCode> {
        match self {
            ClientError::Agent { document, .. } => document.errors.first().map(|e| &e.code),
            _ => None,
        }
    }
}

/// The agent's refusal in an answer, if any: an MTConnectError document (whatever the
/// status), or an HTTP error status.
fn refused(url: &str, status: reqwest::StatusCode, body: &[u8]) -> Result<(), ClientError> {
    if let Ok(document) = crate::parse_error(body) {
        return Err(ClientError::Agent {
            url: url.to_owned(),
            document: Box::new(document),
        });
    }
    if !status.is_success() {
        return Err(ClientError::Status {
            url: url.to_owned(),
            status: status.as_u16(),
        });
    }
    Ok(())
}

/// One `/current` or `/sample` answer, owned.
#[derive(Debug, Clone)]
pub struct StreamsPage {
    /// The Header.
    pub header: Header,
    /// The observations in sequence order.
    pub observations: Vec<Observation>,
    /// Problems met while parsing (skipped observations and the like).
    pub problems: Vec<Problem>,
}

/// An open streaming `/sample` answer (see [`AgentClient::stream`]).
#[derive(Debug)]
pub struct SampleStream {
    client: AgentClient,
    url: String,
    response: reqwest::Response,
    parts: crate::multipart::MultipartParts,
}

impl SampleStream {
    /// The next document of the stream; `Ok(None)` when the agent ended it.
    ///
    /// # Errors
    /// [`ClientError::Stalled`] when nothing arrives for `silence` (pass about twice the
    /// heartbeat); [`ClientError::Http`] when the connection breaks (a part cut off in the
    /// middle is never returned); [`ClientError::Multipart`], [`ClientError::Incomplete`],
    /// [`ClientError::Agent`] for a bad part.
    pub async fn next_page(
        &mut self,
        silence: Duration,
    ) -> Result<Option<StreamsPage>, ClientError> {
        loop {
            let part = self
                .parts
                .next_part()
                .map_err(|source| ClientError::Multipart {
                    url: self.url.clone(),
                    source,
                })?;
            if let Some(part) = part {
                return self.client.page_of(&part, &self.url).map(Some);
            }
            if self.parts.is_closed() {
                return Ok(None);
            }
            match tokio::time::timeout(silence, self.response.chunk()).await {
                Err(_) => {
                    return Err(ClientError::Stalled {
                        url: self.url.clone(),
                        after: silence,
                    })
                }
                Ok(Err(source)) => {
                    return Err(ClientError::Http {
                        url: self.url.clone(),
                        source,
                    })
                }
                Ok(Ok(None)) => return Ok(None),
                Ok(Ok(Some(bytes))) => self.parts.push(&bytes),
            }
        }
    }
}

/// An HTTP client of one MTConnect agent.
///
/// ```no_run
/// # async fn demo() -> Result<(), factorydash_mtconnect::client::ClientError> {
/// use factorydash_mtconnect::client::AgentClient;
/// let agent = AgentClient::new("https://smstestbed.nist.gov/vds")?;
/// let devices = agent.probe().await?.value;
/// let page = agent.sample(None, 100).await?;
/// println!("{} devices, {} observations", devices.devices.len(), page.observations.len());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct AgentClient {
    base: String,
    http: reqwest::Client,
    /// For streams: no total timeout (a stream lasts); silence is caught per read.
    stream_http: reqwest::Client,
    options: ParseOptions,
}

impl AgentClient {
    /// A client for the agent at `base_url` (e.g. `https://smstestbed.nist.gov/vds`), with a
    /// 5 s connect timeout and a 30 s request timeout.
    ///
    /// # Errors
    /// [`ClientError::InvalidUrl`] when `base_url` is not an `http` or `https` URL.
    pub fn new(base_url: &str) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("factorydash/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|_| ClientError::InvalidUrl(base_url.to_owned()))?;
        Self::with_http(base_url, http)
    }

    /// A client that uses the given reqwest client (its timeouts, proxy, TLS settings).
    ///
    /// # Errors
    /// [`ClientError::InvalidUrl`] when `base_url` is not an `http` or `https` URL.
    pub fn with_http(base_url: &str, http: reqwest::Client) -> Result<Self, ClientError> {
        let base = base_url.trim().trim_end_matches('/').to_owned();
        let parsed =
            reqwest::Url::parse(&base).map_err(|_| ClientError::InvalidUrl(base_url.to_owned()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ClientError::InvalidUrl(base_url.to_owned()));
        }
        let stream_http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("factorydash/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|_| ClientError::InvalidUrl(base_url.to_owned()))?;
        Ok(AgentClient {
            base,
            http,
            stream_http,
            options: ParseOptions::default(),
        })
    }

    /// The agent's base URL, without a trailing `/`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// GETs `path` (e.g. `/probe` or `/sample?from=1&count=10`) and returns the body.
    /// An HTTP error status with an MTConnectError body becomes [`ClientError::Agent`].
    ///
    /// # Errors
    /// [`ClientError::Http`], [`ClientError::Status`], [`ClientError::Agent`].
    pub async fn get(&self, path: &str) -> Result<Vec<u8>, ClientError> {
        let url = format!("{}{}", self.base, path);
        let http_err = |source| ClientError::Http {
            url: url.clone(),
            source,
        };
        let response = self.http.get(&url).send().await.map_err(http_err)?;
        let status = response.status();
        let body = response.bytes().await.map_err(http_err)?.to_vec();
        refused(&url, status, &body)?;
        Ok(body)
    }

    /// `/probe`: the device model.
    ///
    /// # Errors
    /// As [`AgentClient::get`], and [`ClientError::Document`] when the answer is not an
    /// MTConnectDevices document.
    pub async fn probe(&self) -> Result<Parsed<Devices>, ClientError> {
        let body = self.get("/probe").await?;
        parse_devices_with(&body, &self.options).map_err(|source| ClientError::Document {
            url: format!("{}/probe", self.base),
            source,
        })
    }

    /// `/current`: the latest observation of every data item.
    ///
    /// # Errors
    /// As [`AgentClient::sample`].
    pub async fn current(&self) -> Result<StreamsPage, ClientError> {
        self.streams("/current").await
    }

    /// `/sample?from=&count=`: up to `count` observations from sequence `from` on (from the
    /// oldest the agent holds when `from` is `None`).
    ///
    /// # Errors
    /// As [`AgentClient::get`]; [`ClientError::Document`] when the answer is not an
    /// MTConnectStreams document; [`ClientError::Incomplete`] when it breaks off.
    pub async fn sample(&self, from: Option<u64>, count: u64) -> Result<StreamsPage, ClientError> {
        let path = match from {
            Some(from) => format!("/sample?from={from}&count={count}"),
            None => format!("/sample?count={count}"),
        };
        self.streams(&path).await
    }

    async fn streams(&self, path: &str) -> Result<StreamsPage, ClientError> {
        let body = self.get(path).await?;
        self.page_of(&body, &format!("{}{}", self.base, path))
    }

    /// `/sample?from=&count=&interval=&heartbeat=`: a stream of Streams documents, one every
    /// `interval` while there is data, an empty one every `heartbeat` while there is none.
    ///
    /// # Errors
    /// [`ClientError::StreamingUnsupported`] when the agent answers with a plain document;
    /// [`ClientError::Agent`] when it refuses; [`ClientError::Http`], [`ClientError::Status`].
    pub async fn stream(
        &self,
        from: Option<u64>,
        count: u64,
        interval: Duration,
        heartbeat: Duration,
    ) -> Result<SampleStream, ClientError> {
        let mut query = format!(
            "/sample?count={count}&interval={}&heartbeat={}",
            interval.as_millis(),
            heartbeat.as_millis()
        );
        if let Some(from) = from {
            query.push_str(&format!("&from={from}"));
        }
        let url = format!("{}{}", self.base, query);
        let http_err = |source| ClientError::Http {
            url: url.clone(),
            source,
        };
        let response = self.stream_http.get(&url).send().await.map_err(http_err)?;
        let status = response.status();
        let boundary = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(crate::multipart::boundary_of);
        let Some(boundary) = boundary else {
            let body = response.bytes().await.map_err(http_err)?;
            refused(&url, status, &body)?;
            return Err(ClientError::StreamingUnsupported { url });
        };
        Ok(SampleStream {
            parts: crate::multipart::MultipartParts::new(
                &boundary,
                self.options.max_document_bytes,
            ),
            client: self.clone(),
            url,
            response,
        })
    }

    fn page_of(&self, body: &[u8], url: &str) -> Result<StreamsPage, ClientError> {
        let url = || url.to_owned();
        let parsed = parse_streams_with(body, &self.options).map_err(|source| match source {
            crate::Error::Agent(document) => ClientError::Agent {
                url: url(),
                document,
            },
            source => ClientError::Document { url: url(), source },
        })?;
        if !parsed.is_complete() {
            let problem = parsed
                .problems
                .iter()
                .find(|p| {
                    matches!(
                        p.kind,
                        crate::ProblemKind::Syntax | crate::ProblemKind::TooLarge
                    )
                })
                .cloned()
                .expect("an incomplete parse has a stopping problem");
            return Err(ClientError::Incomplete {
                url: url(),
                problem,
            });
        }
        let mut observations = parsed.value.to_observations();
        observations.sort_by_key(|o| o.sequence);
        Ok(StreamsPage {
            header: parsed.value.header,
            observations,
            problems: parsed.problems,
        })
    }
}

/// How a [`Follower`] asks for observations.
#[derive(Debug, Clone)]
pub struct FollowerConfig {
    /// Observations per `/sample` request (`count`). Default 1,000.
    pub count: u64,
}

impl Default for FollowerConfig {
    fn default() -> Self {
        FollowerConfig { count: 1000 }
    }
}

/// The outcome of one [`Follower::step`].
#[derive(Debug, Clone)]
pub struct Step {
    /// The observations read, with the agent's `instanceId` and the `nextSequence` to
    /// resume from. May be empty (nothing new).
    pub batch: Batch,
    /// Whether the follower has read everything the agent holds (`nextSequence` is past
    /// `lastSequence`): wait before the next step.
    pub caught_up: bool,
    /// Observations the follower could not get, if any.
    pub gap: Option<Gap>,
    /// `(old, new)` `instanceId`s when the agent restarted since the last step.
    pub restarted: Option<(u64, u64)>,
    /// The agent's device model changed since the last step (MTConnect 2.x Header
    /// `deviceModelChangeTime` moved): read `/probe` again.
    pub model_changed: bool,
    /// Problems met parsing the answer (skipped observations).
    pub problems: Vec<Problem>,
}

/// Follows an agent's observation sequence with `/sample?from=<nextSequence>&count=<n>`:
/// every observation once, none missed between two requests.
///
/// On first contact (no resume point) it starts from the oldest observation the agent
/// still holds (`firstSequence`), so history is there at once. When the agent's buffer
/// has moved past the resume point (`OUT_OF_RANGE`, or `firstSequence` beyond it) it
/// continues from `firstSequence` and reports a [`Gap`]; when the agent restarted (a new
/// `instanceId`) it starts again from the new buffer's start and reports the restart.
#[derive(Debug, Clone)]
pub struct Follower {
    client: AgentClient,
    config: FollowerConfig,
    position: Option<(u64, u64)>,
    model_change_time: Option<chrono::DateTime<chrono::Utc>>,
}

impl Follower {
    /// A follower of `client`'s agent from its oldest buffered observation.
    pub fn new(client: AgentClient, config: FollowerConfig) -> Self {
        Follower {
            client,
            config,
            position: None,
            model_change_time: None,
        }
    }

    /// Continue from a saved resume point (its `instanceId` and `nextSequence`).
    pub fn resume_from(&mut self, point: &ResumePoint) {
        self.position = Some((point.instance_id, point.next_sequence));
    }

    /// Opens a stream from the current position (after a [`Follower::step`] has set it).
    ///
    /// # Errors
    /// As [`AgentClient::stream`].
    pub async fn open_stream(
        &self,
        interval: Duration,
        heartbeat: Duration,
    ) -> Result<SampleStream, ClientError> {
        let from = self.position.map(|(_, next)| next);
        self.client
            .stream(from, self.config.count, interval, heartbeat)
            .await
    }

    /// Takes a streamed page as the next step, or `None` when it does not continue the
    /// current position (the agent restarted, or observations are missing before it): then
    /// reopen the stream after a [`Follower::step`], which detects and reports either.
    pub fn accept(&mut self, page: StreamsPage) -> Option<Step> {
        let (instance, next) = self.position?;
        if page.header.instance_id != instance {
            return None;
        }
        let mut observations = page.observations;
        // A part never starts before `next`; drop anything already read, defensively.
        observations.retain(|o| o.sequence >= next);
        if observations.first().is_some_and(|o| o.sequence > next)
            && page.header.first_sequence.is_some_and(|f| f > next)
        {
            return None;
        }
        let next_sequence = page
            .header
            .next_sequence
            .or_else(|| observations.last().map(|o| o.sequence + 1))
            .unwrap_or(next)
            .max(next);
        let caught_up = page
            .header
            .last_sequence
            .is_none_or(|last| next_sequence > last);
        let model_changed = self.model_changed(page.header.device_model_change_time);
        self.position = Some((instance, next_sequence));
        Some(Step {
            batch: Batch {
                agent: self.client.base.clone(),
                instance_id: instance,
                next_sequence,
                observations,
            },
            caught_up,
            gap: None,
            restarted: None,
            model_changed,
            problems: page.problems,
        })
    }

    /// Sets the `(instanceId, nextSequence)` to continue from (`None`: the agent's oldest
    /// observation). Used to repeat a step whose batch could not be stored.
    pub fn set_position(&mut self, position: Option<(u64, u64)>) {
        self.position = position;
    }

    /// The agent's client.
    pub fn client(&self) -> &AgentClient {
        &self.client
    }

    /// The `(instanceId, nextSequence)` the next step asks for, if known.
    pub fn position(&self) -> Option<(u64, u64)> {
        self.position
    }

    /// Reads the next page of observations.
    ///
    /// # Errors
    /// Any [`ClientError`] of the request; the position is unchanged, so the same step can
    /// be retried (after a backoff).
    pub async fn step(&mut self) -> Result<Step, ClientError> {
        let count = self.config.count;
        let mut restarted = None;
        let mut gap = None;
        let page = match self.position {
            None => self.client.sample(None, count).await?,
            Some((instance, next)) => {
                let first_try = self.client.sample(Some(next), count).await;
                let out_of_range =
                    matches!(&first_try, Err(e) if e.agent_code() == Some(&ErrorCode::OutOfRange));
                let page = if out_of_range {
                    self.client.sample(None, count).await?
                } else {
                    first_try?
                };
                let header = &page.header;
                if header.instance_id != instance {
                    restarted = Some((instance, header.instance_id));
                    gap = Some(Gap {
                        agent: self.client.base.clone(),
                        instance_id: instance,
                        from: next,
                        to: None,
                    });
                    if out_of_range {
                        page
                    } else {
                        // `from` meant nothing to the new instance: start at its beginning.
                        self.client.sample(None, count).await?
                    }
                } else {
                    let first = header.first_sequence.unwrap_or(next);
                    if first > next {
                        gap = Some(Gap {
                            agent: self.client.base.clone(),
                            instance_id: instance,
                            from: next,
                            to: Some(first),
                        });
                    }
                    page
                }
            }
        };
        let header = page.header;
        let model_changed = self.model_changed(header.device_model_change_time);
        let next_sequence = match header.next_sequence {
            Some(n) => n,
            None => page.observations.last().map_or(0, |o| o.sequence + 1),
        };
        let caught_up = match header.last_sequence {
            Some(last) => next_sequence > last,
            None => page.observations.is_empty(),
        };
        self.position = Some((header.instance_id, next_sequence));
        Ok(Step {
            batch: Batch {
                agent: self.client.base.clone(),
                instance_id: header.instance_id,
                next_sequence,
                observations: page.observations,
            },
            caught_up,
            gap,
            restarted,
            model_changed,
            problems: page.problems,
        })
    }

    /// Whether `time` (a Header's `deviceModelChangeTime`) differs from the last one seen.
    fn model_changed(&mut self, time: Option<chrono::DateTime<chrono::Utc>>) -> bool {
        let changed =
            matches!((self.model_change_time, time), (Some(old), Some(new)) if old != new);
        if time.is_some() {
            self.model_change_time = time;
        }
        changed
    }
}

/// Exponential backoff with "equal jitter" (Brooker, "Exponential Backoff And Jitter", AWS
/// Architecture Blog, 2015): the n-th wait is uniform in `[c/2, c]` where
/// `c = min(max, base·2ⁿ)`, so retries of many clients spread out but never come at once.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// Waits starting around `base`, never longer than `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        Backoff {
            base,
            max,
            attempt: 0,
        }
    }

    /// The next wait; each call doubles the ceiling up to `max`.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let millis = ceiling.as_millis() as u64;
        Duration::from_millis(rand::rng().random_range(millis / 2..=millis.max(1)))
    }

    /// Back to the first wait, after a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

impl Default for Backoff {
    /// 500 ms doubling to at most 30 s.
    fn default() -> Self {
        Backoff::new(Duration::from_millis(500), Duration::from_secs(30))
    }
}
