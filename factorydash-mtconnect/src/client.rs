//! An MTConnect agent client over HTTP (MTConnect Part 1, "REST Protocol"): `/probe`,
//! `/current`, `/sample?from=&count=`, `/assets?type=&count=`, and a [`Follower`] that
//! reads an agent's whole sequence without losing or repeating an observation.

use std::collections::VecDeque;
use std::time::Duration;

use factorydash_core::{Batch, Gap, Observation, ResumePoint};
use rand::Rng;

use crate::assets::{parse_assets_with, Assets};
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
    /// The HTTP client could not be built (its TLS backend could not be initialised, or
    /// the system's configuration could not be read).
    #[error("the HTTP client could not be built")]
    Build(#[source] reqwest::Error),
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
    /// The answer (a whole body, a streamed part, or a gzip body once inflated) passed the
    /// document limit ([`AgentClient::with_max_document`]); it was refused while it was
    /// read, with at most the limit held in memory.
    #[error("the agent's answer to {url} passed the document limit of {} and was refused", size_text(*.limit))]
    TooLarge {
        /// The request URL.
        url: String,
        /// The limit, in bytes.
        limit: usize,
    },
    /// The agent's sequence numbers cannot be followed (MTConnect Part 1, "Header":
    /// `nextSequence`, `firstSequence`, `lastSequence`; sequences only grow within one
    /// `instanceId`): nothing of the answer was taken, and asking again at once would get the
    /// same answer, so back off.
    #[error("the agent at {url} sent unusable sequence numbers: {kind}")]
    Sequence {
        /// The request URL.
        url: String,
        /// What is wrong with them.
        kind: SequenceFault,
    },
}

/// What is wrong with an agent's sequence numbers (see [`ClientError::Sequence`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SequenceFault {
    /// `nextSequence` does not advance although `lastSequence` says the agent holds more:
    /// the agent is stuck, and following it would ask for the same page forever.
    #[error("nextSequence stays at {next_sequence} although the agent holds up to {last_sequence} (instanceId {instance_id})")]
    Stuck {
        /// The agent's `instanceId`.
        instance_id: u64,
        /// The `nextSequence` answered, the same as asked for.
        next_sequence: u64,
        /// The `lastSequence` answered.
        last_sequence: u64,
    },
    /// `nextSequence` went backwards within one `instanceId`: below a sequence the agent
    /// already gave.
    #[error(
        "nextSequence went back from {expected} to {next_sequence} within instanceId {instance_id}"
    )]
    Backwards {
        /// The agent's `instanceId`.
        instance_id: u64,
        /// The sequence asked for (`from`): the agent gave everything before it already.
        expected: u64,
        /// The `nextSequence` answered.
        next_sequence: u64,
    },
    /// A sequence (of an observation, or `nextSequence`, `firstSequence`, `lastSequence`)
    /// is above 2^63 − 1, the largest a store's signed 64-bit integer (PostgreSQL `bigint`)
    /// holds.
    #[error("sequence {sequence} is beyond 2^63 - 1, the largest that can be stored")]
    Overflow {
        /// The sequence.
        sequence: u64,
    },
    /// The answer has neither `nextSequence` nor observations: where to go on is unknown.
    #[error("the answer has no nextSequence")]
    Missing,
    /// A sequence (of an observation, or `nextSequence`, `firstSequence`, `lastSequence`)
    /// or another Header number is a whole number beyond 2^64 − 1: the parser left it
    /// out ([`crate::ProblemKind::OutOfRange`]), and going on without it would take the
    /// answer for one that holds nothing.
    #[error("{}", .problem.message)]
    OutOfRange {
        /// The parser's problem: where, and which number.
        problem: Problem,
    },
}

/// The largest sequence accepted: 2^63 − 1 (`i64::MAX`, PostgreSQL `bigint`).
pub const MAX_SEQUENCE: u64 = i64::MAX as u64;

/// How many instances a [`Follower`] remembers besides the one it follows (where each was
/// left), to take one up again where it stopped when the agent answers with it.
pub const KNOWN_INSTANCES: usize = 16;

/// The default document limit of an [`AgentClient`]: 64 MiB. The largest real answers
/// seen are a few MB (a 1,000-observation NIST `/sample` page is about 1.6 MB).
pub const DEFAULT_MAX_DOCUMENT: usize = 64 << 20;

/// `4194304` as `4 MiB (4194304 bytes)`.
fn size_text(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes % (1 << 20) == 0 {
        format!("{} MiB ({bytes} bytes)", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes % (1 << 10) == 0 {
        format!("{} KiB ({bytes} bytes)", bytes >> 10)
    } else {
        format!("{bytes} bytes")
    }
}

impl ClientError {
    /// Whether the agent refused the request itself: an MTConnectError document
    /// ([`ClientError::Agent`]) or an HTTP 4xx status ([`ClientError::Status`]), as an
    /// agent that does not serve a request (`/assets` on an agent without assets) answers.
    /// Asking again at once gets the same answer.
    pub fn is_refusal(&self) -> bool {
        match self {
            ClientError::Agent { .. } => true,
            ClientError::Status { status, .. } => (400..500).contains(status),
            _ => false,
        }
    }

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
    let document = if is_json(body) {
        // Only a document whose root is MTConnectError is read whole here: a page is
        // not scanned twice.
        if !crate::json::starts_with_root(body, "MTConnectError") {
            return refused_status(url, status);
        }
        crate::parse_error_json(body)
    } else {
        crate::parse_error(body)
    };
    if let Ok(document) = document {
        return Err(ClientError::Agent {
            url: url.to_owned(),
            document: Box::new(document),
        });
    }
    refused_status(url, status)
}

/// [`ClientError::Status`] for an HTTP error status.
fn refused_status(url: &str, status: reqwest::StatusCode) -> Result<(), ClientError> {
    if !status.is_success() {
        return Err(ClientError::Status {
            url: url.to_owned(),
            status: status.as_u16(),
        });
    }
    Ok(())
}

/// Whether `body` is a JSON document (its first byte past white space and a byte order
/// mark is `{`): agents answer JSON to `Accept: application/json` only if they can, so
/// every answer is read by what it is, not by what was asked.
fn is_json(body: &[u8]) -> bool {
    crate::xml::strip_bom(body)
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'{')
}

/// The form of MTConnectStreams documents an [`AgentClient`] asks the agent for
/// ([`AgentClient::with_format`]). Whatever it asks, it reads what the agent answers (XML
/// or JSON, version 1 or 2, told by the body itself): an agent that cannot answer JSON
/// answers XML.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Format {
    /// XML (MTConnect Part 1, every agent), the default.
    #[default]
    Xml,
    /// JSON (`Accept: application/json`): the reference agent 2.x and MTConnect.NET
    /// answer it ([`crate::json`]). The device model (`/probe`) and assets are still asked
    /// for in XML.
    Json,
}

/// A sink for an answer's body that refuses to grow past the limit.
struct Limited {
    bytes: Vec<u8>,
    limit: usize,
    hit: bool,
}

impl Limited {
    fn push(&mut self, chunk: &[u8]) -> bool {
        if self.bytes.len() + chunk.len() > self.limit {
            self.hit = true;
            return false;
        }
        self.bytes.extend_from_slice(chunk);
        true
    }
}

impl std::io::Write for Limited {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.push(buf) {
            Ok(buf.len())
        } else {
            Err(std::io::Error::other("the document limit"))
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Reads a whole answer's body chunk by chunk, refusing it as soon as it passes `limit`
/// bytes (after inflating, for `Content-Encoding: gzip`): at most `limit` bytes (and one
/// chunk) are ever held.
async fn read_body(
    url: &str,
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, ClientError> {
    let too_large = || ClientError::TooLarge {
        url: url.to_owned(),
        limit,
    };
    let http_err = |source| ClientError::Http {
        url: url.to_owned(),
        source,
    };
    let gzip = response
        .headers()
        .get(reqwest::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let v = v.trim();
            v.eq_ignore_ascii_case("gzip") || v.eq_ignore_ascii_case("x-gzip")
        });
    let declared = response.content_length();
    if !gzip && declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let capacity = declared.map_or(64 << 10, |n| n as usize).min(limit);
    let sink = Limited {
        bytes: Vec::with_capacity(if gzip { 64 << 10 } else { capacity }.min(limit)),
        limit,
        hit: false,
    };
    if gzip {
        let mut inflate = flate2::write::MultiGzDecoder::new(sink);
        while let Some(chunk) = response.chunk().await.map_err(http_err)? {
            if let Err(e) = std::io::Write::write_all(&mut inflate, &chunk) {
                return Err(gzip_error(url, &inflate, limit, e));
            }
        }
        match inflate.try_finish() {
            Ok(()) => Ok(inflate
                .finish()
                .map_err(|e| ClientError::Document {
                    url: url.to_owned(),
                    source: crate::Error::Io(std::sync::Arc::new(e)),
                })?
                .bytes),
            Err(e) => Err(gzip_error(url, &inflate, limit, e)),
        }
    } else {
        let mut sink = sink;
        while let Some(chunk) = response.chunk().await.map_err(http_err)? {
            if !sink.push(&chunk) {
                return Err(too_large());
            }
        }
        Ok(sink.bytes)
    }
}

fn gzip_error(
    url: &str,
    inflate: &flate2::write::MultiGzDecoder<Limited>,
    limit: usize,
    e: std::io::Error,
) -> ClientError {
    if inflate.get_ref().hit {
        ClientError::TooLarge {
            url: url.to_owned(),
            limit,
        }
    } else {
        ClientError::Document {
            url: url.to_owned(),
            source: crate::Error::Io(std::sync::Arc::new(e)),
        }
    }
}

/// One `/current` or `/sample` answer, owned.
#[derive(Debug, Clone)]
#[non_exhaustive]
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
    /// middle is never returned); [`ClientError::TooLarge`] when a part (or what waits for
    /// the next boundary) passes the document limit; [`ClientError::Multipart`],
    /// [`ClientError::Incomplete`], [`ClientError::Agent`], [`ClientError::Sequence`] for a
    /// bad part.
    pub async fn next_page(
        &mut self,
        silence: Duration,
    ) -> Result<Option<StreamsPage>, ClientError> {
        loop {
            let part = self.parts.next_part().map_err(|source| match source {
                crate::multipart::MultipartError::TooLarge { limit } => ClientError::TooLarge {
                    url: self.url.clone(),
                    limit,
                },
                source => ClientError::Multipart {
                    url: self.url.clone(),
                    source,
                },
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

/// An agent's base URL in the one form it is known by: parsed as reqwest and browsers
/// parse it (the WHATWG URL Standard: scheme and host in lower case, a default port
/// dropped, `http:/user:pw@host` read as `http://user:pw@host`), without a trailing `/`.
/// Credentials (`user:password@`) are kept, percent-encoded, where redaction looks for
/// them; [`AgentClient`]s, the batches they read ([`Batch::agent`](factorydash_core::Batch))
/// and the stores know an agent by this string without them
/// ([`AgentClient::base_url`]), so that one agent written two ways is one.
///
/// ```
/// use factorydash_mtconnect::client::normalize_base_url;
/// assert_eq!(normalize_base_url(" HTTP://Agent.Local:80/vds/ ").unwrap(), "http://agent.local/vds");
/// assert_eq!(normalize_base_url("http:/user:pw@host:5000").unwrap(), "http://user:pw@host:5000");
/// assert!(normalize_base_url("ftp://host").is_err());
/// ```
///
/// # Errors
/// [`ClientError::InvalidUrl`] when `base_url` is not an `http` or `https` URL with a host.
pub fn normalize_base_url(base_url: &str) -> Result<String, ClientError> {
    let invalid = || ClientError::InvalidUrl(redact_userinfo(base_url));
    let parsed = reqwest::Url::parse(base_url.trim()).map_err(|_| invalid())?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(invalid());
    }
    Ok(parsed.as_str().trim_end_matches('/').to_owned())
}

/// `url` with what stands before an `@` in its authority (a user and password) replaced by
/// `***`, read as text: for URLs that do not parse, so that an error never quotes a
/// password.
fn redact_userinfo(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let authority_end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    match url[start..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &url[..start], &url[start + at..]),
        None => url.to_owned(),
    }
}

/// The user and password of an agent URL (`http://user:password@host`), percent-decoded,
/// sent as HTTP basic authentication (RFC 7617) with every request. Its `Debug` form
/// hides the password.
#[derive(Clone)]
struct BasicAuth {
    user: String,
    password: Option<String>,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuth")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

/// `url` without its user information, and that information decoded.
fn take_credentials(url: &mut reqwest::Url) -> Option<BasicAuth> {
    if url.username().is_empty() && url.password().is_none() {
        return None;
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let auth = BasicAuth {
        user: decode(url.username()),
        password: url.password().map(decode),
    };
    // An http(s) URL with a host can always lose its user information.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    Some(auth)
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
    /// The base URL without user information: the agent's identity.
    base: String,
    /// The user information of the URL given, sent as basic authentication.
    auth: Option<BasicAuth>,
    http: reqwest::Client,
    /// For streams: no total timeout (a stream lasts); silence is caught per read.
    stream_http: reqwest::Client,
    options: ParseOptions,
    /// What `/current` and `/sample` are asked for in.
    format: Format,
}

impl AgentClient {
    /// A client for the agent at `base_url` (e.g. `https://smstestbed.nist.gov/vds`), with a
    /// 5 s connect timeout, a 30 s timeout for a whole (non-streaming) request, and a
    /// document limit of [`DEFAULT_MAX_DOCUMENT`].
    ///
    /// Credentials in the URL (`http://user:password@host:5000`) are taken out of it and
    /// sent as HTTP basic authentication (RFC 7617) with every request: the client's
    /// [`base_url`](AgentClient::base_url), the URLs in its errors and the
    /// [`Batch::agent`](factorydash_core::Batch) of what it reads hold none.
    ///
    /// # Errors
    /// [`ClientError::InvalidUrl`] when `base_url` is not an `http` or `https` URL;
    /// [`ClientError::Build`] when the HTTP client cannot be built.
    pub fn new(base_url: &str) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("factorydash/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ClientError::Build)?;
        Self::with_http(base_url, http)
    }

    /// A client that uses the given reqwest client (its timeouts, proxy, TLS settings).
    ///
    /// # Errors
    /// [`ClientError::InvalidUrl`] when `base_url` is not an `http` or `https` URL;
    /// [`ClientError::Build`] when the HTTP client cannot be built.
    pub fn with_http(base_url: &str, http: reqwest::Client) -> Result<Self, ClientError> {
        let normal = normalize_base_url(base_url)?;
        let mut url = reqwest::Url::parse(&normal)
            .map_err(|_| ClientError::InvalidUrl(redact_userinfo(base_url)))?;
        let auth = take_credentials(&mut url);
        let base = url.as_str().trim_end_matches('/').to_owned();
        let stream_http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("factorydash/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ClientError::Build)?;
        Ok(AgentClient {
            base,
            auth,
            http,
            stream_http,
            options: ParseOptions {
                max_document_bytes: DEFAULT_MAX_DOCUMENT,
                ..ParseOptions::default()
            },
            format: Format::Xml,
        })
    }

    /// This client asking for Streams documents in `format` ([`Format`]; XML unless told).
    pub fn with_format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// The form Streams documents are asked for in.
    pub fn format(&self) -> Format {
        self.format
    }

    /// This client with a document limit of `bytes`: an answer, a streamed part, or a
    /// gzip answer once inflated, larger than this is refused with
    /// [`ClientError::TooLarge`] as soon as it passes the limit, while it is read; no more
    /// than the limit (and one network read) is held for it. Default
    /// [`DEFAULT_MAX_DOCUMENT`].
    pub fn with_max_document(mut self, bytes: usize) -> Self {
        self.options.max_document_bytes = bytes;
        self
    }

    /// The document limit, in bytes (see [`AgentClient::with_max_document`]).
    pub fn max_document(&self) -> usize {
        self.options.max_document_bytes
    }

    /// The agent's base URL, without a trailing `/` and without credentials (the agent as
    /// it is known: [`Batch::agent`](factorydash_core::Batch) of what this client reads).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// A GET of `url` by `http`, with this client's basic authentication if any.
    fn request(&self, http: &reqwest::Client, url: &str) -> reqwest::RequestBuilder {
        let request = http.get(url);
        match &self.auth {
            Some(a) => request.basic_auth(&a.user, a.password.as_ref()),
            None => request,
        }
    }

    /// GETs `path` (e.g. `/probe` or `/sample?from=1&count=10`) and returns the body,
    /// read chunk by chunk up to the document limit (`Content-Encoding: gzip` is inflated
    /// as it is read, and the limit applies to the inflated bytes). An MTConnectError body
    /// (in either form, see [`crate::error`]) becomes [`ClientError::Agent`].
    ///
    /// # Errors
    /// [`ClientError::Http`] (including the 30 s total timeout), [`ClientError::Status`],
    /// [`ClientError::Agent`], [`ClientError::TooLarge`] as soon as the body passes the
    /// limit; [`ClientError::Document`] for a gzip body that cannot be inflated.
    pub async fn get(&self, path: &str) -> Result<Vec<u8>, ClientError> {
        self.get_as(path, Format::Xml).await
    }

    /// [`AgentClient::get`] asking for `format`.
    async fn get_as(&self, path: &str, format: Format) -> Result<Vec<u8>, ClientError> {
        let url = format!("{}{}", self.base, path);
        let mut request = self.request(&self.http, &url);
        if format == Format::Json {
            request = request.header(reqwest::header::ACCEPT, "application/json");
        }
        let response = request.send().await.map_err(|source| ClientError::Http {
            url: url.clone(),
            source,
        })?;
        let status = response.status();
        let body = read_body(&url, response, self.options.max_document_bytes).await?;
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

    /// `/assets?type=<kind>&count=<count>`: at most `count` of the agent's assets of type
    /// `kind` (e.g. `CuttingTool`; MTConnect Part 1, "Asset" requests, answered with an
    /// MTConnectAssets document, Part 4), parsed ([`crate::assets`]). Bounded as every
    /// request: the 30 s timeout and the document limit
    /// ([`AgentClient::with_max_document`]), applied as the answer is read.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), factorydash_mtconnect::client::ClientError> {
    /// let agent = factorydash_mtconnect::client::AgentClient::new("http://127.0.0.1:5000")?;
    /// match agent.assets("CuttingTool", 100).await {
    ///     Ok(parsed) => {
    ///         for tool in &parsed.value.cutting_tools {
    ///             println!("{} near its life limit: {}", tool.label(), tool.near_life_limit());
    ///         }
    ///     }
    ///     // An agent that serves no assets: 404, or an MTConnectError.
    ///     Err(e) if e.is_refusal() => println!("no assets here"),
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`AgentClient::get`] (an agent without `/assets` answers [`ClientError::Status`]
    /// 404 or [`ClientError::Agent`]: see [`ClientError::is_refusal`]);
    /// [`ClientError::Document`] when the answer is not an MTConnectAssets document;
    /// [`ClientError::Incomplete`] when it breaks off.
    pub async fn assets(&self, kind: &str, count: u32) -> Result<Parsed<Assets>, ClientError> {
        let path = format!(
            "/assets?type={}&count={count}",
            percent_encoding::utf8_percent_encode(kind, percent_encoding::NON_ALPHANUMERIC)
        );
        let url = format!("{}{}", self.base, path);
        let body = self.get(&path).await?;
        let parsed = parse_assets_with(&body, &self.options).map_err(|source| match source {
            crate::Error::Agent(document) => ClientError::Agent {
                url: url.clone(),
                document,
            },
            crate::Error::TooLarge { limit } => ClientError::TooLarge {
                url: url.clone(),
                limit,
            },
            source => ClientError::Document {
                url: url.clone(),
                source,
            },
        })?;
        if let Some(problem) = parsed.problems.iter().find(|p| {
            matches!(
                p.kind,
                crate::ProblemKind::Syntax | crate::ProblemKind::TooLarge
            )
        }) {
            return Err(ClientError::Incomplete {
                url,
                problem: problem.clone(),
            });
        }
        Ok(parsed)
    }

    async fn streams(&self, path: &str) -> Result<StreamsPage, ClientError> {
        let body = self.get_as(path, self.format).await?;
        self.page_of(&body, &format!("{}{}", self.base, path))
    }

    /// `/sample?from=&count=&interval=&heartbeat=`: a stream of Streams documents, one every
    /// `interval` while there is data, an empty one every `heartbeat` while there is none.
    ///
    /// # Errors
    /// [`ClientError::StreamingUnsupported`] when the agent answers with a plain document;
    /// [`ClientError::Agent`] when it refuses; [`ClientError::Http`], [`ClientError::Status`],
    /// [`ClientError::TooLarge`].
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
        let mut request = self.request(&self.stream_http, &url);
        if self.format == Format::Json {
            request = request.header(reqwest::header::ACCEPT, "application/json");
        }
        let response = request.send().await.map_err(http_err)?;
        let status = response.status();
        let boundary = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(crate::multipart::boundary_of);
        let Some(boundary) = boundary else {
            let body = read_body(&url, response, self.options.max_document_bytes).await?;
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
        // A JSON page with bytes that are not UTF-8 (an adapter's Latin-1 `°C` written
        // through as is) is read with them replaced (U+FFFD), and says so: JSON cannot be
        // read around them as XML is, and asking again would give the same bytes.
        let lossy;
        let mut not_utf8 = None;
        let json = is_json(body);
        let text = if json {
            if let Err(e) = std::str::from_utf8(body) {
                not_utf8 = Some(e.valid_up_to());
                lossy = String::from_utf8_lossy(body).into_owned();
                lossy.as_bytes()
            } else {
                body
            }
        } else {
            body
        };
        let parsed = if json {
            crate::parse_streams_json_with(text, &self.options)
        } else {
            parse_streams_with(text, &self.options)
        };
        let parsed = parsed.map(|mut p| {
            if let Some(at) = not_utf8 {
                p.problems.insert(
                    0,
                    crate::Problem {
                        kind: crate::ProblemKind::InvalidValue,
                        offset: at as u64,
                        message: "the JSON document is not UTF-8 from here on; bytes that are not were replaced by U+FFFD".into(),
                    },
                );
            }
            p
        });
        let parsed = parsed.map_err(|source| match source {
            crate::Error::Agent(document) => ClientError::Agent {
                url: url(),
                document,
            },
            crate::Error::TooLarge { limit } => ClientError::TooLarge { url: url(), limit },
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
        if let Some(problem) = parsed
            .problems
            .iter()
            .find(|p| p.kind == crate::ProblemKind::OutOfRange)
        {
            return Err(ClientError::Sequence {
                url: url(),
                kind: SequenceFault::OutOfRange {
                    problem: problem.clone(),
                },
            });
        }
        let header = parsed.value.header.clone();
        let overflow = [
            header.next_sequence,
            header.first_sequence,
            header.last_sequence,
        ]
        .into_iter()
        .flatten()
        .find(|&s| s > MAX_SEQUENCE)
        // An observation's sequence must leave room for the `nextSequence` after it.
        .or_else(|| {
            parsed
                .value
                .observations
                .iter()
                .map(|o| o.sequence)
                .find(|&s| s >= MAX_SEQUENCE)
        });
        if let Some(sequence) = overflow {
            return Err(ClientError::Sequence {
                url: url(),
                kind: SequenceFault::Overflow { sequence },
            });
        }
        let mut problems = parsed.problems;
        let mut observations = parsed.value.to_observations();
        // Stable: of observations with the same sequence, the first in the document stays.
        observations.sort_by_key(|o| o.sequence);
        let before = observations.len();
        let mut repeated = Vec::new();
        observations.dedup_by(|later, first| {
            let same = later.sequence == first.sequence;
            if same && repeated.len() < 10 {
                repeated.push(later.sequence);
            }
            same
        });
        // A NUL character is no text a store can keep (PostgreSQL refuses the whole batch):
        // such an observation is reported and skipped, never the page.
        let with_nul = observations.len();
        observations.retain(|o| !has_nul(o));
        if observations.len() < with_nul {
            problems.push(Problem {
                kind: crate::ProblemKind::InvalidValue,
                offset: 0,
                message: format!(
                    "{} observations hold a NUL character in their text; skipped",
                    with_nul - observations.len()
                ),
            });
        }
        if observations.len() < before - (with_nul - observations.len()) {
            problems.push(Problem {
                kind: crate::ProblemKind::Unexpected,
                offset: 0,
                message: format!(
                    "{} observations repeat a sequence of the same answer (e.g. {repeated:?}); the first of each was kept (an observation is identified by instanceId and sequence)",
                    before - observations.len()
                ),
            });
        }
        Ok(StreamsPage {
            header,
            observations,
            problems,
        })
    }
}

/// How a [`Follower`] asks for observations: `FollowerConfig::new().with_count(500)`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FollowerConfig {
    /// Observations per `/sample` request (`count`). Default 1,000.
    pub count: u64,
}

impl FollowerConfig {
    /// The default configuration (as [`FollowerConfig::default`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the observations asked for per `/sample` request (`count`).
    #[must_use]
    pub fn with_count(mut self, count: u64) -> Self {
        self.count = count;
        self
    }
}

impl Default for FollowerConfig {
    fn default() -> Self {
        FollowerConfig { count: 1000 }
    }
}

/// An agent's restart, seen by a [`Follower`]: its `instanceId` changed (MTConnect Part 1,
/// "Header": sequences are only comparable within one `instanceId`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Restart {
    /// The `instanceId` followed until the restart.
    pub previous_instance_id: u64,
    /// The new `instanceId`.
    pub instance_id: u64,
}

/// The outcome of one [`Follower::step`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Step {
    /// The observations read, with the agent's `instanceId` and the `nextSequence` to
    /// resume from. May be empty (nothing new).
    pub batch: Batch,
    /// Whether the follower has read everything the agent holds (`nextSequence` is past
    /// `lastSequence`): wait before the next step.
    pub caught_up: bool,
    /// Observations the follower could not get, if any.
    pub gap: Option<Gap>,
    /// The old and new `instanceId`s when the agent restarted since the last step.
    pub restarted: Option<Restart>,
    /// The `instanceId` left and the one taken up again when the agent answered with an
    /// `instanceId` followed before (an agent that alternates between instances, such as
    /// two agents behind one address): not a restart, and no gap; the batch is empty and
    /// the follower continues that instance where it stopped (the batch's
    /// `nextSequence`).
    pub switched: Option<Restart>,
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
/// has moved past the resume point (`OUT_OF_RANGE` in either error form, or
/// `firstSequence` beyond it) it continues from `firstSequence` and reports a [`Gap`];
/// when the agent restarted (a new `instanceId`, told by an answer or by an error
/// document's Header) it starts again from the new buffer's start at once and reports the
/// restart and a gap of unknown end.
///
/// It remembers where it stopped in the last [`KNOWN_INSTANCES`] `instanceId`s it
/// followed: an agent that answers with one of them again (one that alternates between
/// two instances, or two agents behind one address) is followed on from where that
/// instance was left, reported as [`Step::switched`], not as a restart, and without a gap
/// or a second read of what it held.
///
/// # Behavior with agents that misbehave
/// - `count` is capped at the agent's `bufferSize` (the reference agent refuses a larger
///   `count` with `OUT_OF_RANGE`): from the Header of every answer, and from the refusal
///   itself (its `QueryParameter name="count"` `Maximum`, or its Header's `bufferSize`).
/// - An observation is identified by (agent, `instanceId`, `sequence`), never by its
///   timestamp: a sequence repeated within one answer is kept once (the first) and
///   reported among the step's problems; a sequence already read (below the position) is
///   dropped and reported; the position never goes back.
/// - An answer whose `nextSequence` does not advance while `lastSequence` says there is
///   more (stuck), goes backwards within one `instanceId`, holds a sequence above
///   2^63 − 1, or a sequence or Header number beyond 2^64 − 1 (which the parser cannot
///   read: [`SequenceFault::OutOfRange`]) is refused with [`ClientError::Sequence`]: nothing of it is taken, and the
///   caller should back off as for any other error.
#[derive(Debug, Clone)]
pub struct Follower {
    client: AgentClient,
    config: FollowerConfig,
    position: Option<(u64, u64)>,
    /// (`instanceId`, `nextSequence`) of the instances followed before the current one,
    /// the most recently left last; at most [`KNOWN_INSTANCES`].
    left: VecDeque<(u64, u64)>,
    model_change_time: Option<chrono::DateTime<chrono::Utc>>,
    /// The agent's `bufferSize`, when smaller than `config.count`.
    count_cap: Option<u64>,
    /// Answers in a row from instances followed before that did not hold where each was
    /// left (see [`Follower::pass_over`]).
    passed_over: u32,
    /// Answers read so far (steps and streamed parts).
    answers: u64,
    /// The answer at which an instance followed before was last seen holding more than
    /// where it was left: until a few answers later, no step is caught up, so that an
    /// agent alternating instances gets both read without waiting for a poll interval.
    other_behind_at: Option<u64>,
}

/// For how many answers an instance seen behind keeps the steps from being caught up.
const BEHIND_ANSWERS: u64 = 4;

/// What a step tells besides its page.
#[derive(Debug, Default)]
struct Taken {
    gap: Option<Gap>,
    restarted: Option<Restart>,
    switched: Option<Restart>,
}

impl Follower {
    /// A follower of `client`'s agent from its oldest buffered observation.
    pub fn new(client: AgentClient, config: FollowerConfig) -> Self {
        Follower {
            client,
            config,
            position: None,
            left: VecDeque::new(),
            model_change_time: None,
            count_cap: None,
            passed_over: 0,
            answers: 0,
            other_behind_at: None,
        }
    }

    /// Continue from a saved resume point (its `instanceId` and `nextSequence`).
    pub fn resume_from(&mut self, point: &ResumePoint) {
        self.position = Some((point.instance_id, point.next_sequence));
    }

    /// Remembers where an instance other than the current one was left (e.g. the resume
    /// points a store kept for the agent's earlier instances): if the
    /// agent answers with that `instanceId` again, the follower continues it from
    /// `point.next_sequence` instead of reading it from its oldest observation. The
    /// current instance (see [`Follower::resume_from`]) is not taken here; at most
    /// [`KNOWN_INSTANCES`] are kept (the oldest given is forgotten first).
    pub fn remember_instance(&mut self, point: &ResumePoint) {
        if self.position.is_some_and(|(i, _)| i == point.instance_id) {
            return;
        }
        self.leave(point.instance_id, point.next_sequence);
    }

    /// Notes that `instance` was left at `next`.
    fn leave(&mut self, instance: u64, next: u64) {
        self.left.retain(|&(i, _)| i != instance);
        if self.left.len() == KNOWN_INSTANCES {
            self.left.pop_front();
        }
        self.left.push_back((instance, next));
    }

    /// Notes `header` of an instance other than the current one: if it was followed before
    /// and holds more than where it was left, the steps are not caught up for a while.
    fn note_other(&mut self, header: &Header) {
        let behind = self
            .left_at(header.instance_id)
            .is_some_and(|left| header.last_sequence.is_some_and(|last| last >= left));
        if behind {
            self.other_behind_at = Some(self.answers);
        }
    }

    /// Where `instance` was left, if it was followed before.
    fn left_at(&self, instance: u64) -> Option<u64> {
        self.left
            .iter()
            .find(|&&(i, _)| i == instance)
            .map(|&(_, next)| next)
    }

    /// Where `instance` was left, if it was followed before; forgotten here (it becomes the
    /// current one).
    fn take_left(&mut self, instance: u64) -> Option<u64> {
        let at = self.left.iter().position(|&(i, _)| i == instance)?;
        self.left.remove(at).map(|(_, next)| next)
    }

    /// The `count` asked for: the configured one, capped at the agent's `bufferSize` once
    /// known.
    pub fn count(&self) -> u64 {
        self.count_cap
            .map_or(self.config.count, |cap| cap.min(self.config.count))
            .max(1)
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
            .stream(from, self.count(), interval, heartbeat)
            .await
    }

    /// Takes a streamed page as the next step, or `None` when it does not continue the
    /// current position (the agent restarted, its first observation is beyond the
    /// `nextSequence` followed, or its `nextSequence` is stuck or went back): then reopen
    /// the stream after a [`Follower::step`], which detects and reports each (what the
    /// agent still holds from the position on is read by polling; what it no longer holds
    /// is a [`Gap`]).
    pub fn accept(&mut self, mut page: StreamsPage) -> Option<Step> {
        let (instance, next) = self.position?;
        self.answers += 1;
        if page.header.instance_id != instance {
            self.note_other(&page.header);
            return None;
        }
        let mut problems = Vec::new();
        distrust_far_next(&mut page, &mut problems);
        if sequence_fault(&page.header, instance, next).is_some() {
            return None;
        }
        // A part larger than `count` is read again by polling, a page at a time.
        if page.observations.len() as u64 > self.config.count.max(1) {
            return None;
        }
        problems.extend(page.problems);
        let mut observations = page.observations;
        // A part never starts before `next`; drop anything already read, defensively.
        drop_already_read(&mut observations, next, &mut problems);
        // Nor after it: an agent's sequences follow one another within an instance, and a
        // stream (without a `path`) sends every one. A part that starts beyond `next` skips
        // observations, whether the agent still holds them or its buffer moved on: the
        // polled step from `next` reads them, or records what is gone as a gap.
        if observations.first().is_some_and(|o| o.sequence > next) {
            return None;
        }
        let next_sequence = next_of(&page.header, &observations)
            .unwrap_or(next)
            .max(next);
        let caught_up = page
            .header
            .last_sequence
            .is_none_or(|last| next_sequence > last)
            && !self.other_behind();
        let model_changed = self.model_changed(page.header.device_model_change_time);
        self.note_buffer_size(&page.header);
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
            switched: None,
            model_changed,
            problems,
        })
    }

    /// Sets the `instanceId` and `nextSequence` to continue from (`None`: the agent's
    /// oldest observation); the point's `agent` is not looked at. Used to repeat a step
    /// whose batch could not be stored.
    pub fn set_position(&mut self, position: Option<&ResumePoint>) {
        self.position = position.map(|p| (p.instance_id, p.next_sequence));
    }

    /// The agent's client.
    pub fn client(&self) -> &AgentClient {
        &self.client
    }

    /// Where the next step continues (this agent's base URL, the `instanceId` and the
    /// `nextSequence` it asks for), if known.
    pub fn position(&self) -> Option<ResumePoint> {
        self.position
            .map(|(instance_id, next_sequence)| ResumePoint {
                agent: self.client.base.clone(),
                instance_id,
                next_sequence,
            })
    }

    /// `/sample` from `from` with the current count; when the agent refuses the count
    /// (above its `bufferSize`), the count is capped and the request made once more.
    async fn sample(&mut self, from: Option<u64>) -> Result<StreamsPage, ClientError> {
        let count = self.count();
        let answer = self.client.sample(from, count).await;
        let page = match answer {
            Err(ClientError::Agent { ref document, .. }) => match count_cap(document, count) {
                Some(cap) => {
                    tracing::warn!(agent = %self.client.base, count, cap, "the agent refuses this count (its buffer is smaller); asking for fewer");
                    self.count_cap = Some(cap);
                    self.client.sample(from, self.count()).await?
                }
                None => answer?,
            },
            other => other?,
        };
        self.note_buffer_size(&page.header);
        Ok(page)
    }

    fn note_buffer_size(&mut self, header: &Header) {
        if let Some(size) = header.buffer_size.filter(|&s| s >= 1) {
            if size < self.config.count {
                self.count_cap = Some(size);
            }
        }
    }

    /// Reads the next page of observations.
    ///
    /// # Errors
    /// Any [`ClientError`] of the request, and [`ClientError::Sequence`] for an answer
    /// whose sequences cannot be followed (see [the type's docs](Follower)); the position
    /// is unchanged, so the same step can be retried (after a backoff).
    pub async fn step(&mut self) -> Result<Step, ClientError> {
        self.answers += 1;
        let Some((instance, next)) = self.position else {
            // First contact: from the oldest observation the agent holds.
            let page = self.sample(None).await?;
            let from = page.header.first_sequence;
            return self.take(page, from, Vec::new(), Taken::default());
        };
        let first_try = self.sample(Some(next)).await;
        let (page, asked, refused_by) = match first_try {
            Err(ClientError::Agent { ref document, .. })
                if document.has(&ErrorCode::OutOfRange) =>
            {
                let told = document.header.instance_id;
                if told != instance && self.left_at(told).is_some() {
                    self.note_other(&document.header);
                    // Another instance followed before, which does not hold `next`.
                    let time = document.header.device_model_change_time;
                    return Ok(self.pass_over(instance, next, told, time));
                }
                // `from` is outside the buffer: read the oldest the agent holds.
                (self.sample(None).await?, None, Some(told))
            }
            other => (other?, Some(next), None),
        };
        let answered = page.header.instance_id;
        if answered == instance {
            if asked.is_none() && refused_by != Some(instance) {
                // Refused by another instance, then answered by this one from its oldest:
                // nothing learnt; ask for `next` again.
                let time = page.header.device_model_change_time;
                return Ok(self.empty_step(time, None, None));
            }
            return self.continue_instance(page, instance, next);
        }
        if self.left_at(answered).is_some() {
            return self.take_up(page, asked, instance, next);
        }
        // An instance never followed: the agent restarted (or a second agent answers at
        // this address). Read it from its start.
        let (first_time, first_sequence) = (
            page.header.device_model_change_time,
            page.header.first_sequence,
        );
        let page = match asked {
            Some(_) => self.sample(None).await?,
            None => page,
        };
        let taken_up = page.header.instance_id;
        if taken_up == instance {
            // Its start was answered by the followed instance (two agents behind one
            // address, answering in turn): follow the new one from its first sequence,
            // told by its own answer; the next step asks for it.
            let Some(first) = first_sequence else {
                return Ok(self.empty_step(first_time, None, None));
            };
            self.leave(instance, next);
            self.position = Some((answered, first));
            let restarted = Restart {
                previous_instance_id: instance,
                instance_id: answered,
            };
            let gap = self.open_gap(instance, next);
            return Ok(self.empty_step(first_time, Some(restarted), Some(gap)));
        }
        if self.left_at(taken_up).is_some() {
            return self.take_up(page, None, instance, next);
        }
        // The instance of the page read decides: the agent may have restarted again since
        // it told of the restart.
        self.leave(instance, next);
        let from = page.header.first_sequence;
        let taken = Taken {
            restarted: Some(Restart {
                previous_instance_id: instance,
                instance_id: taken_up,
            }),
            gap: Some(self.open_gap(instance, next)),
            switched: None,
        };
        self.take(page, from, Vec::new(), taken)
    }

    /// The page of the followed instance asked from `next` (or read from its oldest after
    /// it refused `next`): what is new in it, and the gap when its buffer moved past
    /// `next`.
    fn continue_instance(
        &mut self,
        mut page: StreamsPage,
        instance: u64,
        next: u64,
    ) -> Result<Step, ClientError> {
        let mut problems = Vec::new();
        let first = page.header.first_sequence.unwrap_or(next);
        let gap = (first > next).then(|| Gap {
            agent: self.client.base.clone(),
            instance_id: instance,
            from: next,
            to: Some(first),
        });
        if let Some(kind) = sequence_fault(&page.header, instance, next.max(first)) {
            return Err(self.sequence_error(next, kind));
        }
        drop_already_read(&mut page.observations, next, &mut problems);
        let taken = Taken {
            gap,
            ..Taken::default()
        };
        self.take(page, Some(next.max(first)), problems, taken)
    }

    /// A page of an instance followed before (`page.header.instance_id`), answered to a
    /// request for `from=asked` (`None`: its oldest) while `instance` was followed at
    /// `next`: taken up from where it was left when the page holds that point, else the
    /// follower passes over to it (see [`Follower::pass_over`]).
    fn take_up(
        &mut self,
        mut page: StreamsPage,
        asked: Option<u64>,
        instance: u64,
        next: u64,
    ) -> Result<Step, ClientError> {
        let taken_up = page.header.instance_id;
        let Some(left_at) = self.left_at(taken_up) else {
            unreachable!("take_up is called for an instance followed before");
        };
        self.note_other(&page.header);
        let header = &page.header;
        let start = asked.or(header.first_sequence);
        let holds = start.is_some_and(|s| s <= left_at)
            && header.first_sequence.is_none_or(|f| f <= left_at)
            && next_of(header, &page.observations).is_some_and(|n| n >= left_at)
            && sequence_fault(header, taken_up, left_at).is_none();
        // Holding nothing new, it is passed over too: an agent alternating at every request
        // answers the request after a pass-over with the instance left, and taking that up
        // would keep the two in step, each request answered by the other instance.
        let new = page.observations.iter().any(|o| o.sequence >= left_at);
        if !holds || !new {
            let time = header.device_model_change_time;
            return Ok(self.pass_over(instance, next, taken_up, time));
        }
        self.leave(instance, next);
        self.take_left(taken_up);
        // Read already when that instance was followed: not a problem of the answer.
        page.observations.retain(|o| o.sequence >= left_at);
        let taken = Taken {
            switched: Some(Restart {
                previous_instance_id: instance,
                instance_id: taken_up,
            }),
            ..Taken::default()
        };
        self.take(page, Some(left_at), Vec::new(), taken)
    }

    /// The agent answered with `other`, an instance followed before, but not with the
    /// observations where it was left. An agent that alternates in time answers with it
    /// for a while: the follower switches to it (the next step asks for its `nextSequence`).
    /// One that alternates at every request answers that with the instance just left: the
    /// second such answer in a row is passed over, so the next step asks again and the
    /// instance followed is answered. Either way the step is empty.
    fn pass_over(
        &mut self,
        instance: u64,
        next: u64,
        other: u64,
        time: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Step {
        self.passed_over += 1;
        if self.passed_over % 2 == 0 {
            return self.empty_step(time, None, None);
        }
        self.leave(instance, next);
        let left_at = self.take_left(other).unwrap_or(1);
        self.position = Some((other, left_at));
        let mut step = self.empty_step(time, None, None);
        step.switched = Some(Restart {
            previous_instance_id: instance,
            instance_id: other,
        });
        step
    }

    /// A step that reads nothing, at the current position.
    fn empty_step(
        &mut self,
        time: Option<chrono::DateTime<chrono::Utc>>,
        restarted: Option<Restart>,
        gap: Option<Gap>,
    ) -> Step {
        let (instance_id, next_sequence) = self.position.unwrap_or((0, 1));
        Step {
            batch: Batch {
                agent: self.client.base.clone(),
                instance_id,
                next_sequence,
                observations: Vec::new(),
            },
            caught_up: false,
            gap,
            restarted,
            switched: None,
            model_changed: self.model_changed(time),
            problems: Vec::new(),
        }
    }

    /// The gap left in `instance` from `next` when another instance is taken up: of
    /// unknown end (withdrawn if the agent answers with `instance` again).
    fn open_gap(&self, instance: u64, next: u64) -> Gap {
        Gap {
            agent: self.client.base.clone(),
            instance_id: instance,
            from: next,
            to: None,
        }
    }

    /// Takes `page` as the step, read from `from` within its instance: checks its
    /// sequences and moves the position to its `nextSequence`.
    fn take(
        &mut self,
        mut page: StreamsPage,
        from: Option<u64>,
        mut problems: Vec<Problem>,
        taken: Taken,
    ) -> Result<Step, ClientError> {
        distrust_far_next(&mut page, &mut problems);
        cap_page(&mut page, self.config.count, &mut problems);
        let header = &page.header;
        if let Some(from) = from {
            // Within a new instance (or on first contact) too: stuck or backwards.
            if let Some(kind) = sequence_fault(header, header.instance_id, from) {
                return Err(self.sequence_error(from, kind));
            }
        }
        let next_sequence = match next_of(header, &page.observations).or(from) {
            Some(n) => n,
            None => return Err(self.sequence_error(0, SequenceFault::Missing)),
        };
        let instance_id = header.instance_id;
        let caught_up = match header.last_sequence {
            Some(last) => next_sequence > last,
            None => page.observations.is_empty(),
        } && !self.other_behind();
        let model_changed = self.model_changed(header.device_model_change_time);
        self.position = Some((instance_id, next_sequence));
        self.passed_over = 0;
        problems.extend(page.problems);
        Ok(Step {
            batch: Batch {
                agent: self.client.base.clone(),
                instance_id,
                next_sequence,
                observations: page.observations,
            },
            caught_up,
            gap: taken.gap,
            restarted: taken.restarted,
            switched: taken.switched,
            model_changed,
            problems,
        })
    }

    /// Whether an instance followed before was seen holding more than where it was left,
    /// within the last [`BEHIND_ANSWERS`] answers.
    fn other_behind(&self) -> bool {
        self.other_behind_at
            .is_some_and(|at| self.answers - at <= BEHIND_ANSWERS)
    }

    fn sequence_error(&self, from: u64, kind: SequenceFault) -> ClientError {
        ClientError::Sequence {
            url: format!(
                "{}/sample?from={from}&count={}",
                self.client.base,
                self.count()
            ),
            kind,
        }
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

/// The count to ask for instead of `count` when `document` refuses it: the `Maximum` of
/// its `count` QueryParameter (2.6+), or its Header's `bufferSize` when that is smaller
/// than `count` (the older form names no parameter).
fn count_cap(document: &ErrorDocument, count: u64) -> Option<u64> {
    let error = document
        .errors
        .iter()
        .find(|e| matches!(e.code, ErrorCode::OutOfRange | ErrorCode::TooMany))?;
    let cap = match &error.query_parameter {
        Some(p) if p.name == "count" => p
            .maximum_integer()
            .and_then(|m| u64::try_from(m).ok())
            .or(document.header.buffer_size),
        Some(_) => None,
        None => document.header.buffer_size,
    }?;
    (1..count).contains(&cap).then_some(cap)
}

/// Whether any text of `o` holds a NUL character.
fn has_nul(o: &Observation) -> bool {
    let nul = |t: &str| t.contains('\0');
    nul(&o.device)
        || nul(&o.component_id)
        || nul(&o.data_item_id)
        || nul(&o.kind)
        || o.name.as_deref().is_some_and(nul)
        || o.sub_type.as_deref().is_some_and(nul)
        || o.value.as_text().is_some_and(nul)
        || o.condition.as_ref().is_some_and(|c| {
            c.native_code.as_deref().is_some_and(nul)
                || c.native_severity.as_deref().is_some_and(nul)
                || c.qualifier.as_deref().is_some_and(nul)
        })
}

/// Keeps at most `count` observations of a page (an agent that ignores `count` could
/// otherwise make each queued page as large as the document limit allows); what is cut is
/// asked for again from the `nextSequence` returned.
/// Forgets a `nextSequence` beyond the agent's own `lastSequence + 1` (and beyond the
/// page's last observation + 1), reported as a problem: the next request then goes on
/// after the last observation taken. An agent holds nothing beyond its `lastSequence`
/// (MTConnect Part 1, Header): following such a number would jump past everything the
/// agent will send next, and ask beyond its buffer ever after. (Observations are kept
/// whatever their sequence: an agent may make its Header a moment before its body.)
fn distrust_far_next(page: &mut StreamsPage, problems: &mut Vec<Problem>) {
    let Some(last) = page.header.last_sequence else {
        return;
    };
    let last = page
        .observations
        .last()
        .map_or(last, |o| o.sequence.max(last));
    if let Some(next) = page
        .header
        .next_sequence
        .filter(|&n| n > last.saturating_add(1))
    {
        problems.push(Problem {
            kind: crate::ProblemKind::Unexpected,
            offset: 0,
            message: format!(
                "nextSequence {next} is beyond the agent's lastSequence {last} + 1; going on after the last observation read"
            ),
        });
        page.header.next_sequence = None;
    }
}

fn cap_page(page: &mut StreamsPage, count: u64, problems: &mut Vec<Problem>) {
    let count = usize::try_from(count).unwrap_or(usize::MAX).max(1);
    if page.observations.len() <= count {
        return;
    }
    problems.push(Problem {
        kind: crate::ProblemKind::Unexpected,
        offset: 0,
        message: format!(
            "the agent sent {} observations for count={count}; the rest are asked for again",
            page.observations.len()
        ),
    });
    page.observations.truncate(count);
    let next = page.observations.last().map(|o| o.sequence + 1);
    page.header.next_sequence = next;
}

/// The `nextSequence` of an answer: its Header's, never below the sequence after its last
/// observation (an agent that points back into its own answer would make the next request
/// read observations again).
fn next_of(header: &Header, observations: &[Observation]) -> Option<u64> {
    let after_last = observations.last().map(|o| o.sequence + 1);
    match (header.next_sequence, after_last) {
        (Some(n), Some(a)) => Some(n.max(a)),
        (n, a) => n.or(a),
    }
}

/// What is wrong with an answer to `from=<from>` within `instance`, if anything: its
/// `nextSequence` went back below `from`, or stayed at `from` although `lastSequence` says
/// the agent holds more.
fn sequence_fault(header: &Header, instance: u64, from: u64) -> Option<SequenceFault> {
    let next = header.next_sequence?;
    if next < from {
        return Some(SequenceFault::Backwards {
            instance_id: instance,
            expected: from,
            next_sequence: next,
        });
    }
    match header.last_sequence {
        Some(last) if next == from && last >= from => Some(SequenceFault::Stuck {
            instance_id: instance,
            next_sequence: next,
            last_sequence: last,
        }),
        _ => None,
    }
}

/// Drops the observations before `next` (read already), reporting them.
fn drop_already_read(observations: &mut Vec<Observation>, next: u64, problems: &mut Vec<Problem>) {
    let before = observations.len();
    observations.retain(|o| o.sequence >= next);
    if observations.len() < before {
        problems.push(Problem {
            kind: crate::ProblemKind::Unexpected,
            offset: 0,
            message: format!(
                "{} observations before nextSequence {next} were sent again; they were read already and are dropped",
                before - observations.len()
            ),
        });
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

#[cfg(test)]
mod tests {
    use super::*;

    fn page(sequences: std::ops::Range<u64>, value: &str) -> StreamsPage {
        let observations = sequences
            .map(|sequence| Observation {
                sequence,
                timestamp: chrono::DateTime::from_timestamp(1_475_600_000, 0).unwrap(),
                device: "d".into(),
                component_id: "c".into(),
                data_item_id: "i".into(),
                name: None,
                category: factorydash_core::Category::Event,
                kind: "Program".into(),
                sub_type: None,
                value: factorydash_core::Value::Text(value.into()),
                condition: None,
            })
            .collect();
        StreamsPage {
            header: Header::new(1, "agent", "2.7").with_sequences(1, 1000, 2000),
            observations,
            problems: Vec::new(),
        }
    }

    #[test]
    fn a_page_past_count_is_cut_and_asked_again_from_the_cut() {
        let mut p = page(1..501, "x");
        let mut problems = Vec::new();
        cap_page(&mut p, 100, &mut problems);
        assert_eq!(p.observations.len(), 100);
        assert_eq!(p.header.next_sequence, Some(101));
        assert_eq!(problems.len(), 1);
        let mut small = page(1..51, "x");
        cap_page(&mut small, 100, &mut problems);
        assert_eq!((small.observations.len(), problems.len()), (50, 1));
    }

    #[test]
    fn numbers_beyond_the_agents_last_sequence_are_not_followed() {
        let client = AgentClient::new("http://127.0.0.1:9").unwrap();
        let mut follower = Follower::new(client, FollowerConfig::new().with_count(1000));
        follower.resume_from(&ResumePoint {
            agent: "http://127.0.0.1:9".into(),
            instance_id: 1,
            next_sequence: 501,
        });
        // nextSequence far beyond lastSequence (1000).
        let mut p = page(501..601, "x");
        p.header = Header::new(1, "agent", "2.7").with_sequences(1, 1000, 1 << 40);
        let step = follower.accept(p).expect("the part continues the position");
        assert_eq!(step.batch.observations.len(), 100);
        assert_eq!(step.batch.next_sequence, 601);
        assert_eq!(step.problems.len(), 1, "{:?}", step.problems);
        assert_eq!(follower.position().unwrap().next_sequence, 601);
    }

    #[test]
    fn a_streamed_part_that_skips_sequences_is_not_taken() {
        let client = AgentClient::new("http://127.0.0.1:9").unwrap();
        let mut follower = Follower::new(client, FollowerConfig::new().with_count(1000));
        let at = |next_sequence| ResumePoint {
            agent: "http://127.0.0.1:9".into(),
            instance_id: 1,
            next_sequence,
        };
        follower.resume_from(&at(501));
        // The agent holds 1 … 1000 (firstSequence 1), but the part starts at 601: 501 … 600
        // would be lost without a word.
        let mut p = page(601..701, "x");
        p.header = Header::new(1, "agent", "2.7").with_sequences(1, 1000, 701);
        assert!(
            follower.accept(p).is_none(),
            "a part that skips is not taken"
        );
        assert_eq!(follower.position(), Some(at(501)), "the position stays");
        // Nor when the agent's buffer moved past the position (the polled step tells the gap).
        let mut p = page(601..701, "x");
        p.header = Header::new(1, "agent", "2.7").with_sequences(550, 1000, 701);
        assert!(follower.accept(p).is_none());
        // The part that continues the position is taken.
        let mut p = page(501..601, "x");
        p.header = Header::new(1, "agent", "2.7").with_sequences(1, 1000, 601);
        let step = follower.accept(p).expect("the part continues the position");
        assert_eq!(step.batch.observations.len(), 100);
        assert!(step.gap.is_none());
        assert_eq!(follower.position(), Some(at(601)));
    }

    #[test]
    fn an_invalid_url_is_quoted_without_its_password() {
        for (url, shown) in [
            ("ftp://user:secret@host/x", "ftp://***@host/x"),
            ("http://u:p@ss@ho st", "http://***@ho st"),
            ("user:secret@host", "***@host"),
            ("nonsense", "nonsense"),
        ] {
            let e = normalize_base_url(url).unwrap_err();
            assert_eq!(e.to_string(), format!("invalid agent URL `{shown}`"));
            assert!(!e.to_string().contains("secret"));
        }
    }

    #[test]
    fn text_with_a_nul_is_told() {
        assert!(has_nul(&page(1..2, "a\0b").observations[0]));
        assert!(!has_nul(&page(1..2, "ab").observations[0]));
    }
}
