//! `factorydash`: a live web dashboard for MTConnect agents.
//!
//! Glue only: it composes factorydash-mtconnect (agents, recordings), factorydash-store
//! (memory or PostgreSQL) and warp (the page, the WebSocket, the JSON API).

mod accounts;
mod agent;
mod agents_page;
mod alarms;
mod assets;
mod auth;
mod config;
mod coordinator;
mod csrf;
mod devices;
mod error_chain;
mod health;
mod host;
mod ingest;
mod inspect;
mod limits;
mod live;
mod logging;
mod metrics;
mod page;
mod pending;
mod record;
mod records;
mod redact;
mod replay;
mod report;
mod simulate;
mod state;
mod store_env;
mod supervisor;
mod time_zone;
mod tls;
mod tool_ingest;
mod tools;
mod user_cli;
mod web;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use factorydash_mtconnect::Recording;
use factorydash_store::postgres::{PgConfig, PgStore};
use factorydash_store::{sqlite::SqliteStore, MemoryStore, Store};
use tokio::net::TcpListener;

use crate::ingest::FollowSettings;
use crate::pending::PendingStore;
use crate::replay::Replay;
use crate::state::App;

/// The NIST Smart Manufacturing Systems Test Bed's public agent.
const NIST_AGENT: &str = "https://smstestbed.nist.gov/vds";

#[derive(Debug, Parser)]
#[command(
    name = "factorydash",
    version,
    about = "A live web dashboard for MTConnect agents"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// `serve`'s options, when no subcommand is given.
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Follow agents (or play a recording) into a store and serve the live dashboard (the default).
    Serve(Box<ServeArgs>),
    /// Serve a recording as an MTConnect agent over HTTP, revealed at the recording's pace.
    Replay(ReplayArgs),
    /// Simulate machine tools and serve them as MTConnect agents on one listener, to try
    /// the dashboard without a shop floor. Agent N is at /agent-NN/: probe, current,
    /// sample?from=&count=, sample?interval=&heartbeat= (streaming, multipart/mixed),
    /// asset(s) (CuttingTool assets) and _factorydash/faults (misbehaviour switches, as
    /// `replay`); with --agents 1 also at the root (/probe, …).
    Simulate(SimulateArgs),
    /// Record an agent: its probe and the `/sample` answers that follow it, into a directory
    /// that `replay` and `serve --replay` play back.
    Record {
        /// The agent's base URL.
        url: String,
        /// The directory to write.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Stop after this long (e.g. 10m, 2h); without it, record until Ctrl-C.
        #[arg(long, value_parser = humantime::parse_duration)]
        duration: Option<Duration>,
        /// Observations per `/sample` request.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        count: u64,
    },
    /// Copy the SQLite store into a new file while `serve` runs (SQLite's online backup:
    /// the database as of one commit). PostgreSQL is backed up with pg_dump (see
    /// docs/install.md#backups).
    Backup {
        /// The file to write (refused if it exists).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        #[command(flatten)]
        store: StoreLocation,
    },
    /// Write a backup (from `factorydash backup`) into the SQLite store's file, which no
    /// `serve` may be running on; `serve` then continues each agent from where the backup
    /// was taken.
    Restore {
        /// The backup.
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
        /// Replace a store that is there already.
        #[arg(long)]
        replace: bool,
        #[command(flatten)]
        store: StoreLocation,
    },
    /// Bring the store's schema to this build's, as `serve` does when it starts; with
    /// --check, only say what that would change. A store written by a newer release is
    /// refused, never changed.
    Migrate {
        /// Say what would change, change nothing.
        #[arg(long)]
        check: bool,
        #[command(flatten)]
        store: StoreLocation,
    },
    /// Make and change users in the store `serve` uses (SQLite: while no `serve` runs on
    /// it, the file being locked; then use the administration page at /admin).
    User {
        #[command(subcommand)]
        action: user_cli::UserAction,
        #[command(flatten)]
        store: StoreLocation,
    },
    /// Rebuild the summaries (what OEE and the reports read) from the stored observations,
    /// from the start of the UTC day of --from: after a bug fix, or for observations
    /// stored before summaries existed. Run it while no `serve` writes to the store.
    Summaries {
        #[command(subcommand)]
        action: SummariesAction,
        #[command(flatten)]
        store: StoreLocation,
    },
    /// Ask a running `serve` whether it is healthy: GET /healthz on 127.0.0.1 at the port
    /// of --listen (FACTORYDASH_LISTEN); exit 0 when it answers 200 within 5 s, else 1.
    /// For container health checks, where no curl is at hand.
    Healthcheck {
        /// The address `serve` listens on (an unspecified address such as 0.0.0.0 is
        /// asked at 127.0.0.1).
        #[arg(
            long,
            value_name = "ADDR",
            default_value = "127.0.0.1:8080",
            env = "FACTORYDASH_LISTEN"
        )]
        listen: SocketAddr,
    },
    /// Print an MTConnect document's observations as NDJSON (one JSON object a line) and
    /// its problems on stderr: a debugging tool.
    Inspect {
        /// The document (`-` for standard input; `.gz` files are gunzipped).
        file: PathBuf,
        /// Refuse a document (or what a `.gz` inflates to) larger than this (e.g. 64MiB).
        #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = parse_size)]
        max_document: usize,
    },
}

/// What `factorydash summaries` does.
#[derive(Debug, Subcommand)]
enum SummariesAction {
    /// Drop the summaries from the start of the UTC day of --from and fold the stored
    /// observations again.
    Rebuild {
        /// Where to start (RFC 3339, e.g. 2026-12-01T00:00:00Z; a date such as 2026-12-01
        /// is read as its midnight, UTC).
        #[arg(long, value_parser = parse_instant)]
        from: chrono::DateTime<chrono::Utc>,
    },
}

/// An RFC 3339 time, or a date (its midnight, UTC).
fn parse_instant(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
        .map_err(|_| format!("'{text}' is neither an RFC 3339 time nor a date (YYYY-MM-DD)"))
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// A TOML file whose keys are these options' long names (see docs/configuration.md);
    /// its values are the defaults that environment variables and flags override.
    #[arg(long, value_name = "FILE", env = "FACTORYDASH_CONFIG")]
    config: Option<PathBuf>,
    /// An MTConnect agent's base URL; repeat for several agents.
    #[arg(long = "agent", value_name = "URL", default_value = NIST_AGENT, env = "FACTORYDASH_AGENTS", value_delimiter = ',', value_parser = parse_agent_url)]
    agents: Vec<String>,
    /// The database: a PostgreSQL URL
    /// (postgres://postgres@127.0.0.1:5432/factorydash?sslmode=verify-full; libpq's PG*
    /// variables fill what it leaves out) or an SQLite file (sqlite:///absolute/path.db,
    /// sqlite:relative/path.db). Without it: PostgreSQL as the PG* variables say if any is
    /// set, else the SQLite file factorydash.db in --data-dir.
    #[arg(long, value_name = "URL", env = "FACTORYDASH_DATABASE_URL")]
    database_url: Option<String>,
    /// Which store: `sqlite` (a file, the default), `postgres` (needs --database-url) or
    /// `memory` (nothing kept when factorydash stops; see --memory-limit). Without it, the
    /// --database-url's scheme tells, and without that too, SQLite in --data-dir.
    #[arg(long, value_enum, env = "FACTORYDASH_STORE")]
    store: Option<StoreKind>,
    /// Where the SQLite store keeps its file (factorydash.db) when no --database-url names
    /// one; created if missing.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "./factorydash-data",
        env = "FACTORYDASH_DATA_DIR"
    )]
    data_dir: PathBuf,
    /// Address to serve the dashboard on.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:8080",
        env = "FACTORYDASH_LISTEN"
    )]
    listen: SocketAddr,
    /// Play the recording in DIR instead of following agents.
    #[arg(long, value_name = "DIR", conflicts_with = "demo")]
    replay: Option<PathBuf>,
    /// Play the demo recording built into the binary (three NIST test bed machines,
    /// 2016: a GF Agie, a Mazak and a Hurco) instead of following agents: data without a
    /// network or a machine.
    #[arg(
        long,
        env = "FACTORYDASH_DEMO",
        value_parser = clap::builder::BoolishValueParser::new(),
        action = clap::ArgAction::SetTrue
    )]
    demo: bool,
    /// Replay speed: 1 is the recording's pace, 10 ten times faster.
    #[arg(long, default_value_t = 1.0, value_parser = parse_speed)]
    speed: f64,
    /// Keep observations this long (e.g. 24h, 30d); the latest value of every data item
    /// is kept whatever its age.
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration, env = "FACTORYDASH_RETENTION")]
    retention: Duration,
    /// Wait between `/sample` requests once caught up with an agent.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    poll_interval: Duration,
    /// With the in-memory store (--store memory), the most observations kept; the
    /// oldest go first (latest values always stay). About 170 bytes each.
    #[arg(long, default_value_t = 2_000_000, env = "FACTORYDASH_MEMORY_LIMIT")]
    memory_limit: usize,
    /// An API token, ROLE:SECRET (`viewer:…` reads, `admin:…` also adds, pauses and removes
    /// agents); repeat for several. Without tokens the dashboard is open. A flag is seen
    /// by anyone who lists processes (`ps`): prefer `FACTORYDASH_TOKENS` (comma-separated)
    /// or `--token-file`.
    #[arg(
        long = "token",
        value_name = "ROLE:SECRET",
        env = "FACTORYDASH_TOKENS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    tokens: Vec<String>,
    /// A file of API tokens, one ROLE:SECRET a line; blank lines and lines starting with
    /// `#` are skipped. Added to `--token`.
    #[arg(long, value_name = "FILE", env = "FACTORYDASH_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// A session unused this long ends (the user signs in again).
    #[arg(long, default_value = "12h", value_parser = humantime::parse_duration, env = "FACTORYDASH_SESSION_IDLE")]
    session_idle: Duration,
    /// A session ends this long after sign-in, however much it is used.
    #[arg(long, default_value = "30d", value_parser = humantime::parse_duration, env = "FACTORYDASH_SESSION_LIFETIME")]
    session_lifetime: Duration,
    /// Keep the summaries (seconds per state, parts, per minute, hour and day: what OEE
    /// and the reports read) this long, longer than the observations.
    #[arg(long, default_value = "730d", value_parser = humantime::parse_duration, env = "FACTORYDASH_SUMMARY_RETENTION")]
    summary_retention: Duration,
    /// Audit log entries older than this are removed (checked every hour).
    #[arg(long, default_value = "365d", value_parser = humantime::parse_duration, env = "FACTORYDASH_AUDIT_RETENTION")]
    audit_retention: Duration,
    /// Sign users in by this header, set by a reverse proxy that authenticates them
    /// (oauth2-proxy, Authelia, Keycloak…), e.g. X-Forwarded-User; taken only from
    /// --auth-proxy-from. A user is made on first sight, in --auth-proxy-group.
    #[arg(
        long,
        value_name = "HEADER",
        env = "FACTORYDASH_AUTH_PROXY_HEADER",
        requires = "auth_proxy_from"
    )]
    auth_proxy_header: Option<String>,
    /// The proxy's addresses or networks (10.0.0.5, 10.0.0.0/24, ::1); repeat for several.
    /// A request with the header from anywhere else is refused.
    #[arg(
        long = "auth-proxy-from",
        value_name = "ADDR[/PREFIX]",
        env = "FACTORYDASH_AUTH_PROXY_FROM",
        value_delimiter = ','
    )]
    auth_proxy_from: Vec<accounts::IpNet>,
    /// The group a user first seen through the auth proxy is put in.
    #[arg(long, value_name = "GROUP", env = "FACTORYDASH_AUTH_PROXY_GROUP")]
    auth_proxy_group: Option<String>,
    /// A host name the dashboard answers for (the `Host` a browser sends), besides IP
    /// addresses, `localhost` and this machine's name; repeat for several. Any other name
    /// is refused with 421 (a defence against DNS rebinding).
    #[arg(long = "allowed-host", value_name = "NAME", env = "FACTORYDASH_ALLOWED_HOSTS", value_delimiter = ',', value_parser = host::parse_name)]
    allowed_hosts: Vec<String>,
    /// Observations read from an agent that may wait for the store (e.g. while the
    /// database is down) before reading pauses.
    #[arg(long, default_value_t = 100_000, env = "FACTORYDASH_BUFFER")]
    buffer: u64,
    /// Observations asked for per `/sample` request (capped at the agent's `bufferSize`).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    count: u64,
    /// The largest answer taken from an agent (a document, a streamed part, or a gzip
    /// answer once inflated), e.g. 64MiB, 512KiB, 1GiB or a number of bytes. A larger
    /// answer is refused while it is read, so no agent can make `serve` hold more.
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = parse_size, env = "FACTORYDASH_MAX_DOCUMENT")]
    max_document: usize,
    /// What to ask agents for their observations in: `xml` (every agent) or `json` (the
    /// reference agent 2.x and MTConnect.NET; an agent that cannot answer JSON answers
    /// XML, which is read as well). The device model is read as XML.
    #[arg(long, value_enum, default_value = "xml", env = "FACTORYDASH_FORMAT")]
    format: WireFormat,
    /// Poll `/sample?from=` instead of streaming once caught up.
    #[arg(long)]
    no_stream: bool,
    /// The streaming interval: how often the agent sends what is new.
    #[arg(long, default_value = "500ms", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// The streaming heartbeat: the agent sends an empty document this often when nothing is
    /// new; a stream silent for about twice as long is reopened.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    heartbeat: Duration,
    /// On SIGTERM or Ctrl-C: how long to wait for what was read to be stored and for
    /// connections to close before exiting anyway.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration, env = "FACTORYDASH_SHUTDOWN_TIMEOUT")]
    shutdown_timeout: Duration,
    /// How log lines are written (on standard error): `text`, coloured only on a terminal
    /// (and without `NO_COLOR`), or `json`, one object a line for journald and log
    /// shippers. The other commands take FACTORYDASH_LOG_FORMAT.
    #[arg(
        long,
        value_enum,
        default_value = "text",
        env = "FACTORYDASH_LOG_FORMAT"
    )]
    log_format: logging::LogFormat,
    /// Serve HTTPS with this certificate: a PEM file, the server's certificate first, then
    /// its intermediates; needs --tls-key. Reloaded on SIGHUP and when the file changes
    /// (see docs/security.md).
    #[arg(long, value_name = "FILE", env = "FACTORYDASH_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert: a PEM file (PKCS#8, RSA or EC).
    #[arg(long, value_name = "FILE", env = "FACTORYDASH_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Serve HTTPS with a self-signed certificate made on the first start and kept in
    /// --data-dir (tls-cert.pem, tls-key.pem); its SHA-256 fingerprint is printed, to
    /// compare with what the browser shows.
    #[arg(
        long,
        env = "FACTORYDASH_TLS_SELF_SIGNED",
        value_parser = clap::builder::BoolishValueParser::new(),
        action = clap::ArgAction::SetTrue
    )]
    tls_self_signed: bool,
    /// Over HTTPS, send Strict-Transport-Security (a year): browsers then use HTTPS only
    /// for this host name.
    #[arg(
        long,
        env = "FACTORYDASH_HSTS",
        value_parser = clap::builder::BoolishValueParser::new(),
        action = clap::ArgAction::SetTrue
    )]
    hsts: bool,
    /// With HTTPS, also listen on ADDR for plain HTTP and redirect every request there
    /// (308) to HTTPS.
    #[arg(long, value_name = "ADDR", env = "FACTORYDASH_HTTP_REDIRECT")]
    http_redirect: Option<SocketAddr>,
    /// The plant's time zone, an IANA name (e.g. Europe/Berlin): the pages show times in
    /// it, labelled (a viewer may switch to the browser's own). Default: the server's.
    #[arg(long, value_name = "ZONE", env = "FACTORYDASH_TIME_ZONE")]
    time_zone: Option<time_zone::PlantTimeZone>,
}

/// Where the SQLite store is, as `serve` is told.
#[derive(Debug, Args)]
struct StoreLocation {
    /// The directory of the SQLite file factorydash.db.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "./factorydash-data",
        env = "FACTORYDASH_DATA_DIR",
        global = true
    )]
    data_dir: PathBuf,
    /// An SQLite file (sqlite:PATH) instead of the one in --data-dir.
    #[arg(
        long,
        value_name = "URL",
        env = "FACTORYDASH_DATABASE_URL",
        global = true
    )]
    database_url: Option<String>,
}

impl StoreLocation {
    /// The SQLite file; an error for PostgreSQL (named here, by `DATABASE_URL`, or by the
    /// `POSTGRES_*`/`PG*` variables a `serve` would follow).
    fn sqlite_file(&self) -> anyhow::Result<PathBuf> {
        match self.choose()?.spec {
            StoreSpec::Sqlite(path) => Ok(path),
            _ => anyhow::bail!("the store is PostgreSQL: back it up with pg_dump and restore it with pg_restore (docs/install.md#backups)"),
        }
    }

    /// The store as `serve` would choose it.
    fn choose(&self) -> anyhow::Result<StoreChoice> {
        choose_store(None, self.database_url.as_deref(), &self.data_dir)
    }
}

/// The store chosen from the options and the environment, and why.
struct StoreChoice {
    spec: StoreSpec,
    /// Why, for the log.
    why: String,
    /// The variables for libpq (`PG*`, with the `POSTGRES_*` ones added).
    pg: std::collections::HashMap<String, String>,
}

/// The store as `serve` chooses it: `--store` (`kind`), `--database-url` (`database_url`),
/// else `DATABASE_URL` (unless `--store memory`), else PostgreSQL as the `POSTGRES_*` or
/// `PG*` variables say if any is set, else the SQLite file in `data_dir`.
///
/// # Errors
/// A variable or URL set but unusable (see [`store_env`]), or `--store` at odds with the
/// URL.
fn choose_store(
    kind: Option<StoreKind>,
    database_url: Option<&str>,
    data_dir: &std::path::Path,
) -> anyhow::Result<StoreChoice> {
    let mut process_env = PgConfig::process_env();
    for name in store_env::READ_VARS {
        if let Ok(value) = std::env::var(name) {
            process_env.insert(name.to_owned(), value);
        }
    }
    let env = store_env::store_env(&process_env, store_env::read_small_file)?;
    let (database_url, url_from) = match (database_url, &env.database_url) {
        (Some(url), _) => (
            Some(url),
            "database-url (the flag, FACTORYDASH_DATABASE_URL or the configuration file)",
        ),
        (None, Some(url)) if kind != Some(StoreKind::Memory) => {
            (Some(url.as_str()), "DATABASE_URL")
        }
        _ => (None, ""),
    };
    let pg_env = PgConfig::resolve(None, &env.pg)
        .with_context(|| {
            if env.postgres_vars.is_empty() {
                "libpq's PG* variables".to_owned()
            } else {
                env.postgres_vars.join(", ")
            }
        })?
        .is_some();
    let spec = store_spec(kind, database_url, data_dir, pg_env)
        .with_context(|| format!("the store from {url_from}"))?;
    let why = match (&spec, database_url) {
        (StoreSpec::Memory, _) => "--store memory".to_owned(),
        (_, Some(_)) => format!("from {url_from}"),
        (StoreSpec::Postgres(None), None) if !env.postgres_vars.is_empty() => {
            format!("from {}", env.postgres_vars.join(", "))
        }
        (StoreSpec::Postgres(None), None) => "from libpq's PG* variables".to_owned(),
        (_, None) => format!(
            "no database configured (--database-url, DATABASE_URL, POSTGRES_* or PG* variables): the SQLite file in --data-dir {}",
            data_dir.display()
        ),
    };
    Ok(StoreChoice {
        spec,
        why,
        pg: env.pg,
    })
}

#[derive(Debug, Args)]
struct ReplayArgs {
    /// The recording: probe.xml(.gz) and Streams pages (*.xml, *.xml.gz).
    dir: PathBuf,
    /// Address to serve the agent on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:5000")]
    listen: SocketAddr,
    /// Replay speed: 1 is the recording's pace, 10 ten times faster.
    #[arg(long, default_value_t = 1.0, value_parser = parse_speed)]
    speed: f64,
    /// Refuse a file of the recording (or what a `.gz` inflates to) larger than this.
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = parse_size)]
    max_document: usize,
    /// Take the fault switches (`POST /_factorydash/faults`) although --listen is not a
    /// loopback address: anyone who reaches the port can then break the agent. On
    /// 127.0.0.1 and ::1 they are always on.
    #[arg(long)]
    faults: bool,
}

#[derive(Debug, Args)]
struct SimulateArgs {
    /// Agents to serve, each at /agent-NN/ (agent-01, agent-02, …).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=9999))]
    agents: u32,
    /// Machines (MTConnect devices) per agent, built in turn from the NIST test bed's GF
    /// Agie, Mazak and Hurco device models.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    machines_per_agent: u32,
    /// How often every Sample is computed (e.g. 10hz, 1hz, 0.5hz); a Sample is published
    /// when its value changes, so moving axes publish at this rate.
    #[arg(long, default_value = "10hz", value_parser = parse_rate)]
    rate: f64,
    /// Address to serve the agents on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:5000")]
    listen: SocketAddr,
    /// The seed: the same seed gives the same observations (values and sequences).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Stop after this long (e.g. 10m, 2h); without it, run until Ctrl-C.
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Observations each agent holds (its bufferSize); the oldest fall out.
    #[arg(long, default_value_t = 131_072, value_parser = clap::value_parser!(u64).range(16..=1 << 26))]
    buffer: u64,
    /// Warnings and Faults per machine per hour (they clear after 3 to 20 s); availability
    /// drops are a quarter as frequent (at most 6 an hour).
    #[arg(long, default_value_t = 2.0, value_parser = parse_fault_rate)]
    fault_rate: f64,
    /// The mean time of one program cycle (one part), e.g. 1m, 30s.
    #[arg(long, default_value = "1m", value_parser = humantime::parse_duration)]
    cycle_time: Duration,
    /// Take the fault switches (`POST /_factorydash/faults`) although --listen is not a
    /// loopback address: anyone who reaches the port can then break the agent. On
    /// 127.0.0.1 and ::1 they are always on.
    #[arg(long)]
    faults: bool,
}

/// A rate in Hz: `10hz`, `0.5Hz` or a number, above 0 and at most 1000.
fn parse_rate(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let number = t
        .strip_suffix("hz")
        .or_else(|| t.strip_suffix("Hz"))
        .or_else(|| t.strip_suffix("HZ"))
        .unwrap_or(t)
        .trim();
    match number.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 1000.0 => Ok(v),
        _ => Err(format!(
            "a rate is a number of Hz above 0 and at most 1000, e.g. 10hz; got '{s}'"
        )),
    }
}

fn parse_fault_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!(
            "the fault rate is a number of alarms per machine per hour, 0 or more; got '{s}'"
        )),
    }
}

/// A size in bytes: a whole number with an optional unit, `B`, `KiB`, `MiB`, `GiB` (powers
/// of 1024; `K`, `M`, `G`, `KB`, `MB`, `GB` are taken as the same), e.g. `64MiB`, `4 MiB`.
fn parse_size(s: &str) -> Result<usize, String> {
    let text = s.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let bad = || {
        format!("a size is a whole number of bytes with an optional unit (B, KiB, MiB, GiB), e.g. 64MiB; got '{s}'")
    };
    let number: u64 = number.parse().map_err(|_| bad())?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(bad()),
    };
    let bytes = number
        .checked_mul(1 << shift)
        .and_then(|b| usize::try_from(b).ok())
        .ok_or_else(bad)?;
    if bytes < 1024 {
        return Err(format!("the size must be at least 1KiB, got '{s}'"));
    }
    Ok(bytes)
}

/// `--format`: what agents are asked for their observations in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum WireFormat {
    /// MTConnect XML.
    Xml,
    /// The reference agent's JSON (version 1 or 2, whichever it answers).
    Json,
}

fn parse_speed(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("speed must be a number greater than 0, got '{s}'")),
    }
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        // Not `main`'s own report: a URL or connection string quoted in the error keeps no
        // password.
        redact::exit_with(&e);
    }
}

async fn run() -> anyhow::Result<()> {
    private_files();
    let args: Vec<String> = std::env::args().collect();
    let mut command = Cli::command();
    // The plant's cells and lines, from the file's `[[cell]]` tables (none without).
    let mut layout = factorydash_core::layout::Layout::default();
    let mut shifts = config::PlanSpec::default();
    if let Some(path) = config::config_path(&args) {
        (command, layout, shifts) = config::apply(command, &path)?;
    }
    let matches = command
        .try_get_matches_from(&args)
        .unwrap_or_else(|e| redact::exit_clap(e));
    let cli = Cli::from_arg_matches(&matches)?;
    logging::init(match &cli.command {
        Some(Command::Serve(args)) => args.log_format,
        None => cli.serve.log_format,
        Some(_) => match std::env::var("FACTORYDASH_LOG_FORMAT").as_deref() {
            Ok("json") => logging::LogFormat::Json,
            _ => logging::LogFormat::Text,
        },
    });
    match cli.command {
        Some(Command::Serve(args)) => serve(*args, layout, shifts).await,
        Some(Command::Replay(args)) => replay_agent(args).await,
        Some(Command::Simulate(args)) => {
            let listen = args.listen;
            simulate::run(
                simulate::SimSettings {
                    agents: args.agents,
                    machines_per_agent: args.machines_per_agent,
                    rate_hz: args.rate,
                    seed: args.seed,
                    duration: args.duration,
                    buffer: args.buffer as usize,
                    fault_rate: args.fault_rate,
                    cycle_time: args.cycle_time,
                    faults: agent::fault_switches(listen, args.faults),
                },
                listen,
            )
            .await
        }
        Some(Command::Inspect { file, max_document }) => {
            inspect::run(&file, max_document).map(|_| ())
        }
        Some(Command::Record {
            url,
            out,
            duration,
            count,
        }) => record::run(record::RecordSettings {
            url,
            out,
            duration,
            count,
        })
        .await
        .map(|_| ()),
        Some(Command::Healthcheck { listen }) => healthcheck(listen).await,
        Some(Command::Migrate { check, store }) => migrate(&store, check).await,
        Some(Command::Summaries { action, store }) => {
            let store = open_store(&store).await?;
            match action {
                SummariesAction::Rebuild { from } => {
                    let started = std::time::Instant::now();
                    let done = store
                        .rebuild_summaries(from)
                        .await
                        .context("cannot rebuild the summaries")?;
                    println!(
                        "rebuilt the summaries of {} devices from {}: {} observations read, {} rows written in {:.1} s",
                        done.devices,
                        from.date_naive(),
                        done.observations,
                        done.rows,
                        started.elapsed().as_secs_f64()
                    );
                    Ok(())
                }
            }
        }
        Some(Command::User { action, store }) => {
            let store = open_store(&store).await?;
            user_cli::run(store, action).await
        }
        Some(Command::Backup { out, store }) => {
            let source = store.sqlite_file()?;
            let copied = factorydash_store::sqlite::backup::backup(&source, &out)
                .await
                .with_context(|| format!("cannot back up {}", source.display()))?;
            println!(
                "backed up {} into {}: {} observations, {} bytes, schema version {}",
                source.display(),
                out.display(),
                copied.observations,
                copied.bytes,
                copied.schema_version
            );
            Ok(())
        }
        Some(Command::Restore {
            from,
            replace,
            store,
        }) => {
            let target = store.sqlite_file()?;
            let copied = factorydash_store::sqlite::backup::restore(&from, &target, replace)
                .await
                .with_context(|| {
                    format!(
                        "cannot restore {} into {}",
                        from.display(),
                        target.display()
                    )
                })?;
            println!(
                "restored {} into {}: {} observations, schema version {} (migrated when serve opens it)",
                from.display(),
                target.display(),
                copied.observations,
                copied.schema_version
            );
            Ok(())
        }
        None => serve(cli.serve, layout, shifts).await,
    }
}

/// The store `location` names, opened (and migrated) as `serve` opens it.
async fn open_store(location: &StoreLocation) -> anyhow::Result<Arc<dyn Store>> {
    let StoreChoice { spec, pg, .. } = location.choose()?;
    Ok(match &spec {
        StoreSpec::Sqlite(path) => open_sqlite(path).await.context(
            "cannot open the SQLite store: if `serve` is running on it, make users on its administration page (/admin) instead",
        )?,
        StoreSpec::Postgres(url) => Arc::new(
            PgStore::connect_config(&postgres_config(url.as_deref(), &pg)?)
                .await
                .context("cannot open the PostgreSQL store")?,
        ),
        StoreSpec::Memory => anyhow::bail!("users of an in-memory store live as long as its serve: make them on its administration page"),
    })
}

/// `factorydash migrate`: the store `location` names (as `serve` would choose it: a
/// database URL, `DATABASE_URL`, the `POSTGRES_*` or `PG*` variables, else the SQLite file
/// in the data directory) brought to this build's schema, or (`check`) what that would
/// change, printed.
async fn migrate(location: &StoreLocation, check: bool) -> anyhow::Result<()> {
    let StoreChoice { spec, pg, .. } = location.choose()?;
    let plan = match &spec {
        StoreSpec::Sqlite(path) if !path.exists() => {
            println!("no store at {} yet: `serve` makes one", path.display());
            return Ok(());
        }
        StoreSpec::Sqlite(path) => factorydash_store::sqlite::migration_plan(path).await,
        StoreSpec::Postgres(url) => {
            PgStore::migration_plan(&postgres_config(url.as_deref(), &pg)?).await
        }
        StoreSpec::Memory => unreachable!("store_spec without --store never chooses memory"),
    }
    .context("the store's schema")?;
    let what = match &spec {
        StoreSpec::Sqlite(path) => format!("the SQLite store {}", path.display()),
        _ => "the PostgreSQL store".to_owned(),
    };
    if plan.pending.is_empty() {
        println!(
            "{what} is at schema version {} (this build's is {}): nothing to change",
            plan.found, plan.known
        );
        return Ok(());
    }
    println!(
        "{what} is at schema version {} (this build's is {}); {} would apply: {}",
        plan.found,
        plan.known,
        if check { "migrating" } else { "migrating now" },
        plan.pending.join(", ")
    );
    if check {
        return Ok(());
    }
    match &spec {
        StoreSpec::Sqlite(path) => drop(open_sqlite(path).await?),
        StoreSpec::Postgres(url) => drop(
            PgStore::connect_config(&postgres_config(url.as_deref(), &pg)?)
                .await
                .context("cannot migrate the PostgreSQL store")?,
        ),
        StoreSpec::Memory => {}
    }
    println!("{what} is now at schema version {}", plan.known);
    Ok(())
}

/// `factorydash healthcheck`: GET /healthz at `listen` (loopback for an unspecified
/// address), at most 5 s; an error unless the answer is 200.
async fn healthcheck(listen: SocketAddr) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut address = listen;
    if address.ip().is_unspecified() {
        address.set_ip(match address {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let ask = async {
        let mut stream = tokio::net::TcpStream::connect(address).await?;
        let request =
            format!("GET /healthz HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        // The status line is all that is looked at: at most 1 KiB is read.
        let mut head = vec![0u8; 1024];
        let mut read = 0;
        while read < head.len() && !head[..read].contains(&b'\n') {
            let n = stream.read(&mut head[read..]).await?;
            if n == 0 {
                break;
            }
            read += n;
        }
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&head[..read]).into_owned())
    };
    let plain = tokio::time::timeout(Duration::from_secs(5), ask).await;
    // Not HTTP on that port: `serve` with HTTPS (--tls-cert, --tls-self-signed)?
    let https = match &plain {
        Ok(Ok(a)) if a.starts_with("HTTP/") => None,
        Err(_) => None,
        Ok(_) => tls::status_line(address).await.ok(),
    };
    let answer = match https {
        Some(answer) => answer,
        None => plain
            .map_err(|_| anyhow::anyhow!("http://{address}/healthz: no answer within 5 s"))?
            .with_context(|| format!("http://{address}/healthz"))?,
    };
    let status = answer.lines().next().unwrap_or("").trim();
    if status.split(' ').nth(1) == Some("200") {
        println!("healthy: http://{address}/healthz answered {status}");
        Ok(())
    } else {
        anyhow::bail!("http://{address}/healthz answered '{status}'")
    }
}

/// The demo recording built into the binary: three NIST test bed machines (see its
/// README.md in `demo/`).
const DEMO: [(&str, &[u8]); 4] = [
    (
        "probe.xml.gz",
        include_bytes!("../demo/nist-3-machines-shdr-2016/probe.xml.gz"),
    ),
    (
        "GFAgie01.shdr.txt.gz",
        include_bytes!("../demo/nist-3-machines-shdr-2016/GFAgie01.shdr.txt.gz"),
    ),
    (
        "Hurco01.shdr.txt.gz",
        include_bytes!("../demo/nist-3-machines-shdr-2016/Hurco01.shdr.txt.gz"),
    ),
    (
        "Mazak01.shdr.txt.gz",
        include_bytes!("../demo/nist-3-machines-shdr-2016/Mazak01.shdr.txt.gz"),
    ),
];

/// The demo recording, loaded.
fn demo_recording(max_document: usize) -> anyhow::Result<Recording> {
    let options = factorydash_mtconnect::ParseOptions::new().with_max_document_bytes(max_document);
    let recording = Recording::from_files(
        std::path::Path::new("demo:nist-3-machines-2016"),
        &DEMO,
        &options,
    )
    .context("cannot load the built-in demo recording")?;
    // Its logs hold keys of data items the probe lacks (reported once each): known, and
    // not the user's concern.
    tracing::debug!(problems = recording.problems.len(), "demo recording loaded");
    Ok(recording)
}

/// Every file and directory this process creates is its owner's only (umask 077): the
/// store's files, recordings, anything a library makes on our behalf.
fn private_files() {
    #[cfg(unix)]
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

/// An agent's base URL in its one form (`normalize_base_url`).
fn parse_agent_url(s: &str) -> Result<String, String> {
    factorydash_mtconnect::client::normalize_base_url(s)
        .map_err(|_| format!("'{s}' is not an http or https URL"))
}

fn load_recording(dir: &std::path::Path, max_document: usize) -> anyhow::Result<Recording> {
    let options = factorydash_mtconnect::ParseOptions::new().with_max_document_bytes(max_document);
    let recording = Recording::load_with(dir, &options)
        .with_context(|| format!("cannot load the recording in {}", dir.display()))?;
    for p in &recording.problems {
        tracing::warn!(problem = %p, "recording");
    }
    Ok(recording)
}

/// The store `serve` uses (see `--store`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum StoreKind {
    /// An SQLite file.
    Sqlite,
    /// PostgreSQL.
    Postgres,
    /// In memory, nothing kept.
    Memory,
}

/// Where the store is, from `--store`, `--database-url`, `--data-dir` and libpq's `PG*`
/// variables.
#[derive(Debug, PartialEq, Eq)]
enum StoreSpec {
    Memory,
    Sqlite(PathBuf),
    /// PostgreSQL at this URL, or (`None`) as the `PG*` variables say.
    Postgres(Option<String>),
}

/// The name of the store `spec` chooses, for the log.
fn spec_kind(spec: &StoreSpec) -> &'static str {
    match spec {
        StoreSpec::Memory => "memory",
        StoreSpec::Sqlite(_) => "sqlite",
        StoreSpec::Postgres(_) => "postgresql",
    }
}

/// The store chosen: `--store` if given; else the `--database-url`'s scheme; else
/// PostgreSQL when a `PG*` variable is set (`pg_env`); else SQLite in `data_dir`.
fn store_spec(
    kind: Option<StoreKind>,
    database_url: Option<&str>,
    data_dir: &std::path::Path,
    pg_env: bool,
) -> anyhow::Result<StoreSpec> {
    let from_url = database_url.map(store_of_url).transpose()?;
    Ok(match (kind, from_url) {
        (None, None) if pg_env => StoreSpec::Postgres(None),
        (None | Some(StoreKind::Sqlite), None) => {
            StoreSpec::Sqlite(data_dir.join("factorydash.db"))
        }
        (Some(StoreKind::Memory), None) => StoreSpec::Memory,
        (Some(StoreKind::Postgres), None) if pg_env => StoreSpec::Postgres(None),
        (Some(StoreKind::Postgres), None) => {
            anyhow::bail!(
                "--store postgres needs --database-url postgres://… or libpq's PG* variables"
            )
        }
        (None, Some(spec)) => spec,
        (Some(StoreKind::Sqlite), Some(spec @ StoreSpec::Sqlite(_)))
        | (Some(StoreKind::Postgres), Some(spec @ StoreSpec::Postgres(_))) => spec,
        (Some(kind), Some(_)) => {
            anyhow::bail!("--store {kind:?} does not go with that --database-url")
        }
    })
}

/// The store a `--database-url` names: `postgres://` or `postgresql://` (the scheme in any
/// case, RFC 3986 section 3.1; handed on in lower case), or an SQLite file,
/// `sqlite:///absolute/path.db` or `sqlite:relative/path.db`. Anything else is refused,
/// the URL quoted with its password hidden (`redact::redacted_in`).
fn store_of_url(url: &str) -> anyhow::Result<StoreSpec> {
    let shown = || redact::redacted_in(url).into_owned();
    let (scheme, rest) = url.split_once(':').unwrap_or(("", url));
    let scheme = scheme.to_ascii_lowercase();
    match scheme.as_str() {
        "postgres" | "postgresql" if rest.starts_with("//") => {
            Ok(StoreSpec::Postgres(Some(format!("{scheme}:{rest}"))))
        }
        "sqlite" => {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            let authority = path.split('/').next().unwrap_or("");
            if authority.contains('@') {
                anyhow::bail!(
                    "--database-url '{}': an SQLite file has no user or password (sqlite:///absolute/path.db or sqlite:relative/path.db)",
                    shown()
                );
            }
            if path.is_empty() {
                anyhow::bail!(
                    "--database-url '{}' names no file (sqlite:///absolute/path.db or sqlite:relative/path.db)",
                    shown()
                );
            }
            Ok(StoreSpec::Sqlite(PathBuf::from(path)))
        }
        _ => anyhow::bail!(
            "--database-url '{}' is neither postgres://… nor sqlite:PATH (sqlite:///absolute/path.db)",
            shown()
        ),
    }
}

/// Opens the SQLite file at `path` (the store creates its directory if missing, its
/// owner's only). A file held by another factorydash, unwritable or of a newer schema is
/// an error, not retried.
async fn open_sqlite(path: &std::path::Path) -> anyhow::Result<Arc<SqliteStore>> {
    let store = SqliteStore::open(path)
        .await
        .with_context(|| format!("cannot open the SQLite store {}", path.display()))?;
    Ok(Arc::new(store))
}

/// PostgreSQL at `url` (libpq's `PG*` variables fill what it leaves out) or as the
/// variables say, retried with backoff until it answers; a configuration error or a
/// newer schema is not retried.
/// The PostgreSQL configuration of `url` (libpq's variables in `env` fill what it leaves
/// out) or of the variables alone.
fn postgres_config(
    url: Option<&str>,
    env: &std::collections::HashMap<String, String>,
) -> anyhow::Result<PgConfig> {
    let config = PgConfig::resolve(url, env)
        .context("invalid PostgreSQL configuration")?
        .context("no PostgreSQL configured: give --database-url or libpq's PG* variables")?;
    tracing::info!("store=postgresql {}", config.summary());
    Ok(config)
}

/// Opens PostgreSQL as `config` says, retried with backoff until it answers (each error
/// noted in `pending`, which the page and `/healthz` show meanwhile); a configuration error
/// or a newer schema is not retried.
async fn open_postgres(config: &PgConfig, pending: &PendingStore) -> anyhow::Result<Arc<PgStore>> {
    let mut backoff = factorydash_mtconnect::client::Backoff::default();
    loop {
        match PgStore::connect_config(config).await {
            Ok(store) => return Ok(Arc::new(store)),
            Err(
                e @ (factorydash_store::StoreError::SchemaTooNew { .. }
                | factorydash_store::StoreError::Config(_)),
            ) => return Err(e.into()),
            Err(e) => {
                let delay = backoff.next_delay();
                let error = error_chain::error_chain(&e);
                tracing::warn!(%error, retry_in = ?delay, "cannot open the PostgreSQL store; retrying");
                pending.note(error);
                tokio::time::sleep(delay).await;
            }
        }
    }
}

async fn serve(
    args: ServeArgs,
    layout: factorydash_core::layout::Layout,
    shifts: config::PlanSpec,
) -> anyhow::Result<()> {
    // One agent per URL without credentials (`--agent`, FACTORYDASH_AGENTS, the file).
    supervisor::one_per_url(&args.agents).context("--agent")?;
    let mut tokens = auth::Tokens::parse(&args.tokens).map_err(anyhow::Error::msg)?;
    if let Some(path) = &args.token_file {
        let text = config::read_bounded(path, config::TOKEN_FILE_LIMIT, "the token file")?;
        tokens.extend(
            auth::Tokens::parse_file(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
        );
    }
    if !tokens.is_open() {
        tracing::info!("fixed API tokens configured (--token): they act over every device and are not users; prefer personal tokens for people");
    }
    let recording = match (&args.replay, args.demo) {
        (Some(dir), _) => Some((
            format!("replay:{}", dir.display()),
            load_recording(dir, args.max_document)?,
        )),
        (None, true) => Some((
            "demo:nist-3-machines-2016".to_owned(),
            demo_recording(args.max_document)?,
        )),
        (None, false) => None,
    };
    let StoreChoice {
        spec,
        why,
        pg: pg_env,
    } = choose_store(args.store, args.database_url.as_deref(), &args.data_dir)?;
    tracing::info!(store = ?spec_kind(&spec), why = %why, "store chosen");
    // PostgreSQL is tried once (at most 5 s) before the dashboard listens; if it does not
    // answer, it is opened once the dashboard listens: meanwhile the page and /healthz
    // say it is unavailable, and why.
    let mut opening = None;
    let (store, kind): (Arc<dyn Store>, _) = match &spec {
        StoreSpec::Postgres(url) => {
            let config = postgres_config(url.as_deref(), &pg_env)?;
            let pending = Arc::new(PendingStore::new(format!(
                "PostgreSQL ({})",
                config.summary()
            )));
            let first =
                tokio::time::timeout(Duration::from_secs(5), PgStore::connect_config(&config))
                    .await;
            let open = match first {
                Ok(Ok(store)) => {
                    let store = Arc::new(store);
                    pending.open(store.clone());
                    Some(store)
                }
                Ok(Err(
                    e @ (factorydash_store::StoreError::SchemaTooNew { .. }
                    | factorydash_store::StoreError::Config(_)),
                )) => return Err(e.into()),
                Ok(Err(e)) => {
                    let error = error_chain::error_chain(&e);
                    tracing::warn!(%error, "cannot open the PostgreSQL store yet: the dashboard listens meanwhile and says so; retrying");
                    pending.note(error);
                    None
                }
                Err(_) => {
                    let error = "no answer within 5 s".to_owned();
                    tracing::warn!(%error, "cannot open the PostgreSQL store yet: the dashboard listens meanwhile and says so; retrying");
                    pending.note(error);
                    None
                }
            };
            opening = Some((config, pending.clone(), open));
            (pending, "postgresql")
        }
        StoreSpec::Sqlite(path) => {
            tracing::info!(store = "sqlite", path = %path.display(), "opening the store");
            (open_sqlite(path).await?, "sqlite")
        }
        StoreSpec::Memory => {
            tracing::info!(
                store = "memory",
                limit = args.memory_limit,
                "observations kept in memory only"
            );
            (
                Arc::new(MemoryStore::with_limit(args.memory_limit)),
                "memory",
            )
        }
    };
    // One SIGTERM listener for the whole run, made before ingest starts and the address is
    // printed: a signal that comes while they start is neither lost nor fatal.
    let signal = stop_signal();
    let zone = args
        .time_zone
        .clone()
        .unwrap_or_else(time_zone::PlantTimeZone::system);
    tracing::info!(time_zone = %zone, "pages show times in the plant's time zone");
    let tz: chrono_tz::Tz = zone
        .name()
        .parse()
        .map_err(|e| anyhow::anyhow!("the time zone {zone}: {e}"))?;
    report::set_calendar(
        shifts.calendar(tz).context("the shift calendar")?,
        report::CalendarSource::Configuration,
    );
    report::set_ideal_cycle_times(shifts.ideal_cycle_times.clone());
    if let Some(reasons) = &shifts.stop_reasons {
        report::set_stop_reasons(reasons.clone());
    }
    time_zone::set_plant(zone);
    let alarm_engine =
        factorydash_core::alarms::AlarmEngine::new(shifts.alarms.clone(), layout.clone());
    let receivers = alarms::config::receivers(&shifts.webhooks, &shifts.emails)?;
    let alarm_hub = Arc::new(alarms::AlarmHub::new(alarm_engine, receivers));
    let app = App::new(store.clone(), kind, layout, alarm_hub);
    let weak = Arc::downgrade(&app);
    app.alarms.spawn(store.clone(), move || {
        let Some(app) = weak.upgrade() else {
            return Vec::new();
        };
        app.health
            .all()
            .into_iter()
            .map(|h| {
                let shown = redact::redacted(&h.source).into_owned();
                // A paused agent is not asked: not unreachable.
                let since = h
                    .unreachable_since
                    .filter(|_| h.state != health::SourceState::Paused);
                (h.source, shown, since)
            })
            .collect()
    });
    if let Some((_, pending, _)) = &opening {
        let _ = app.pending.set(pending.clone());
    }
    // With the store open, ingest starts before the dashboard listens (its first answer
    // shows the sources); else once the store opens.
    let ready = opening.as_ref().is_none_or(|(_, _, open)| open.is_some());
    let mut ingest = Some((store, opening, recording));
    if ready {
        if let Some((store, opening, recording)) = ingest.take() {
            start_ingest(&app, &args, store, opening, recording).await?;
        }
    }
    let https = tls::settings(
        args.tls_cert.as_deref(),
        args.tls_key.as_deref(),
        args.tls_self_signed,
        args.hsts,
        args.http_redirect,
        &args.data_dir,
        &args.allowed_hosts,
    )?;
    let certificates = https
        .as_ref()
        .map(|h| tls::Certificates::open(h.files.clone()))
        .transpose()?;
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    let scheme = if https.is_some() { "https" } else { "http" };
    tracing::info!("dashboard at {scheme}://{address}/ (store: {kind})");
    println!("factorydash: dashboard at {scheme}://{address}/");
    let stopping = app.agents.stopping.clone();
    let hosts = Arc::new(host::AllowedHosts::new(&args.allowed_hosts));
    let auth = accounts::Auth::new(
        tokens,
        app.store.clone(),
        app.records.clone(),
        accounts::AuthSettings {
            session_idle: args.session_idle,
            session_lifetime: args.session_lifetime,
            audit_retention: args.audit_retention,
            https: https.is_some(),
            proxy: args
                .auth_proxy_header
                .as_ref()
                .map(|h| accounts::ProxySettings {
                    header: h.to_ascii_lowercase(),
                    from: args.auth_proxy_from.clone(),
                    group: args.auth_proxy_group.clone(),
                }),
        },
    );
    if let Err(e) = auth.refresh().await {
        tracing::warn!(error = %e, "cannot read the users yet: until it can, only fixed tokens are taken");
    }
    // The device records (display names, cells): read now, then kept current.
    if let Err(e) = app.records.load(&*app.store).await {
        tracing::warn!(error = %e, "cannot read the device records yet");
    }
    tokio::spawn(app.records.clone().run(app.store.clone()));
    if auth.is_open() {
        if args.listen.ip().is_loopback() {
            tracing::info!(
                "no users and no API tokens: the dashboard is open to anyone who can reach {} (make the first admin with `factorydash user add --admin NAME`)",
                args.listen
            );
        } else {
            tracing::warn!("no users and no API tokens, listening on {}: anyone on the network can read and change this dashboard (make an admin with `factorydash user add --admin NAME`, or give --token)", args.listen);
        }
    }
    tokio::spawn(auth.clone().run());
    let routes = web::routes(app.clone(), auth, hosts.clone());
    let server = match (&https, certificates) {
        (Some(https), Some(certificates)) => {
            let fingerprint = certificates.fingerprint();
            tracing::info!(cert = %https.files.cert.display(), self_signed = https.self_signed, %fingerprint, "TLS certificate (SHA-256 fingerprint)");
            println!("factorydash: TLS certificate SHA-256 fingerprint {fingerprint}");
            if let Some(redirect) = https.redirect {
                let plain = TcpListener::bind(redirect)
                    .await
                    .with_context(|| format!("cannot listen on {redirect} (--http-redirect)"))?;
                let plain_address = plain.local_addr()?;
                tracing::info!("redirecting http://{plain_address}/ to HTTPS");
                println!("factorydash: redirecting http://{plain_address}/ to HTTPS");
                tokio::spawn(tls::serve_redirect(
                    plain,
                    hosts,
                    address.port(),
                    stopping.clone(),
                ));
            }
            certificates.clone().watch(stopping.clone());
            let config = tls::server_config(certificates)?;
            tokio::spawn(tls::serve(listener, config, https.hsts, routes, stopping))
        }
        _ => tokio::spawn(
            warp::serve(routes)
                .incoming(listener)
                .graceful(async move { stopping.cancelled().await })
                .run(),
        ),
    };
    tokio::pin!(signal);
    if let Some((store, opening, recording)) = ingest {
        let started = tokio::select! {
            started = start_ingest(&app, &args, store, opening, recording) => started,
            () = &mut signal => {
                stop(&app, server, args.shutdown_timeout).await;
                return Ok(());
            }
        };
        if let Err(e) = started {
            app.agents.stopping.cancel();
            let _ = tokio::time::timeout(args.shutdown_timeout, server).await;
            return Err(e);
        }
    }
    signal.await;
    stop(&app, server, args.shutdown_timeout).await;
    Ok(())
}

/// Once the store is open (PostgreSQL, `opening`, is waited for here): plays the
/// `recording`, or follows the agents given and those added at run time; and prunes.
async fn start_ingest(
    app: &Arc<App>,
    args: &ServeArgs,
    store: Arc<dyn Store>,
    opening: Option<(PgConfig, Arc<PendingStore>, Option<Arc<PgStore>>)>,
    recording: Option<(String, Recording)>,
) -> anyhow::Result<()> {
    let mut pg = None;
    if let Some((config, pending, open)) = opening {
        let store = match open {
            Some(store) => store,
            None => {
                let store = open_postgres(&config, &pending).await?;
                pending.open(store.clone());
                tracing::info!("the PostgreSQL store is open");
                // The banner of the pages open loses its outage.
                app.live.health_changed();
                store
            }
        };
        tokio::spawn(ingest::relay_appended(app.clone(), store.clone()));
        pg = Some(store);
    }
    // The page's alarm rules and the last run's alarms, before any observation is read.
    alarms::load_saved_rules(&*store, &app.alarms).await;

    match recording {
        Some((source, recording)) => {
            let replay = Arc::new(Replay::start(recording, args.speed, chrono::Utc::now()));
            tracing::info!(%source, observations = replay.observations().len(), duration = ?replay.duration(), "playing a recording");
            tokio::spawn(ingest::play_recording(app.clone(), source, replay));
        }
        None => {
            let settings = FollowSettings {
                count: args.count,
                poll_interval: args.poll_interval,
                stream: !args.no_stream,
                interval: args.interval,
                heartbeat: args.heartbeat,
                buffer: args.buffer,
                max_document: args.max_document,
                format: match args.format {
                    WireFormat::Xml => factorydash_mtconnect::client::Format::Xml,
                    WireFormat::Json => factorydash_mtconnect::client::Format::Json,
                },
            };
            ingest::install(app, settings, pg.clone());
            for url in &args.agents {
                app.agents.start(url)?;
            }
            // Agents added at run time (/api/agents) in an earlier run, with the
            // credentials kept for them; one given on the command line too is followed as
            // the command line says.
            match store.configured_agents().await {
                Ok(agents) => {
                    for agent in agents {
                        if agent.paused {
                            app.health
                                .update(&agent.url, |h| h.state = health::SourceState::Paused);
                        } else if !app.agents.followed().contains(&agent.url) {
                            let connect = match store.agent_credentials(&agent.url).await {
                                Ok(c) => c.map_or(agent.url.clone(), |c| c.in_url(&agent.url)),
                                Err(e) => {
                                    tracing::warn!(agent = %agent.url, error = %error_chain::error_chain(&e), "cannot read the agent's credentials");
                                    agent.url.clone()
                                }
                            };
                            if let Err(e) = app.agents.start(&connect) {
                                tracing::warn!(error = %e, "not following an agent added at run time");
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %error_chain::error_chain(&e), "cannot read the agents added at run time")
                }
            }
        }
    }
    // A calendar saved on the shifts page replaces the configuration file's.
    report::load_saved_calendar(&*store).await;
    tokio::spawn(report::ShiftBoard::run(app.clone()));
    tokio::spawn(report::LearnedCycles::run(app.clone()));
    tokio::spawn(prune_summaries(store.clone(), args.summary_retention));
    tokio::spawn(prune(store, args.retention));
    Ok(())
}

/// A clean stop, within `timeout`: reading from agents stops at once; what was read is
/// stored (each writer empties its queue; the resume point moves with each stored batch);
/// WebSocket clients get a close frame and the server stops accepting connections. What
/// could not be stored in time stays in the agents' buffers: the next start resumes from
/// the last stored batch.
async fn stop(app: &Arc<App>, server: tokio::task::JoinHandle<()>, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    let waiting: u64 = app.health.all().iter().map(|h| h.buffered).sum();
    tracing::info!(
        buffered = waiting,
        ?timeout,
        "stopping: no more reading; storing what was read"
    );
    app.agents.stop_all();
    app.agents.stopping.cancel();
    app.agents.writers.close();
    if tokio::time::timeout_at(deadline, app.agents.writers.wait())
        .await
        .is_err()
    {
        let left: u64 = app.health.all().iter().map(|h| h.buffered).sum();
        tracing::warn!(
            not_stored = left,
            "the store did not take everything in time; it will be read again from the agents on the next start"
        );
    } else {
        tracing::info!("everything read is stored");
    }
    if tokio::time::timeout_at(deadline, server).await.is_err() {
        tracing::warn!("connections still open at the deadline; closing them");
    }
    tracing::info!("stopped");
}
/// Now less `retention` (the earliest time when that reaches before it).
fn retention_cutoff(retention: chrono::Duration) -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
        .checked_sub_signed(retention)
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC)
}

/// Drops summary periods older than the summaries' retention period, every hour.
async fn prune_summaries(store: Arc<dyn Store>, retention: Duration) {
    let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    let mut every = tokio::time::interval(Duration::from_secs(3600));
    loop {
        every.tick().await;
        let cutoff = retention_cutoff(retention);
        match store.prune_summaries(cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(dropped = n, "summary retention"),
            Err(e) => tracing::warn!(error = %e, "summary retention failed; retrying in an hour"),
        }
    }
}

/// Drops observations older than the retention period, every minute.
async fn prune(store: Arc<dyn Store>, retention: Duration) {
    let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    let mut every = tokio::time::interval(Duration::from_secs(60));
    loop {
        every.tick().await;
        let cutoff = retention_cutoff(retention);
        match store.prune(cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(dropped = n, "retention"),
            Err(e) => tracing::warn!(error = %e, "retention failed; retrying in a minute"),
        }
    }
}

async fn replay_agent(args: ReplayArgs) -> anyhow::Result<()> {
    let recording = load_recording(&args.dir, args.max_document)?;
    let replay = Arc::new(Replay::start(recording, args.speed, chrono::Utc::now()));
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    tracing::info!(observations = replay.observations().len(), duration = ?replay.duration(), "replaying {}", args.dir.display());
    println!("factorydash: MTConnect agent at http://{address}/");
    let agent = agent::Agent::replay(replay);
    agent.allow_faults(agent::fault_switches(args.listen, args.faults));
    warp::serve(agent::routes(agent))
        .incoming(listener)
        .graceful(stop_signal())
        .run()
        .await;
    Ok(())
}

/// Waits for SIGTERM (what systemd, Docker and Kubernetes send) or SIGINT (Ctrl-C). The
/// SIGTERM listener is made when this is called, not when the future is first polled: a
/// signal that comes in between is not lost (nor does it kill the process).
pub(crate) fn stop_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    async move {
        #[cfg(unix)]
        match term {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM: stopping"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C: stopping"),
                }
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; stopping on Ctrl-C only")
            }
        }
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("Ctrl-C: stopping");
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_size, store_spec, StoreKind, StoreSpec};
    use std::path::{Path, PathBuf};

    #[test]
    fn the_store_from_store_database_url_and_data_dir() {
        let dir = Path::new("data");
        let spec = |kind, url| store_spec(kind, url, dir, false).map_err(|e| e.to_string());
        let sqlite = |p: &str| Ok(StoreSpec::Sqlite(PathBuf::from(p)));
        assert_eq!(spec(None, None), sqlite("data/factorydash.db"));
        assert_eq!(
            spec(Some(StoreKind::Sqlite), None),
            sqlite("data/factorydash.db")
        );
        assert_eq!(spec(Some(StoreKind::Memory), None), Ok(StoreSpec::Memory));
        assert_eq!(spec(None, Some("sqlite:///abs/f.db")), sqlite("/abs/f.db"));
        assert_eq!(spec(None, Some("sqlite:rel/f.db")), sqlite("rel/f.db"));
        let pg = "postgres://postgres@127.0.0.1:5432/factorydash";
        assert_eq!(
            spec(None, Some(pg)),
            Ok(StoreSpec::Postgres(Some(pg.into())))
        );
        assert_eq!(
            spec(Some(StoreKind::Postgres), Some(pg)),
            Ok(StoreSpec::Postgres(Some(pg.into())))
        );
        assert!(spec(Some(StoreKind::Postgres), None).is_err());
        assert!(spec(Some(StoreKind::Memory), Some(pg)).is_err());
        assert!(spec(None, Some("mysql://x")).is_err());
        assert!(spec(None, Some("sqlite:")).is_err());
        // Schemes in any case; an SQLite URL with credentials, or any other scheme, is
        // refused without showing the password.
        assert_eq!(
            spec(None, Some("POSTGRES://u:PW@h/db")),
            Ok(StoreSpec::Postgres(Some("postgres://u:PW@h/db".into())))
        );
        assert_eq!(spec(None, Some("SQLite:rel/f.db")), sqlite("rel/f.db"));
        for url in [
            "mysql://u:PW@h/db",
            "sqlite://u:PW@h/db",
            "host=h user=u password=PW",
        ] {
            let refused = spec(None, Some(url)).unwrap_err();
            assert!(!refused.contains("PW"), "{refused}");
            assert!(refused.contains("--database-url"), "{refused}");
        }
        // libpq's PG* variables: PostgreSQL unless the store or the URL says otherwise.
        let with_env = |kind, url| store_spec(kind, url, dir, true).map_err(|e| e.to_string());
        assert_eq!(with_env(None, None), Ok(StoreSpec::Postgres(None)));
        assert_eq!(
            with_env(Some(StoreKind::Postgres), None),
            Ok(StoreSpec::Postgres(None))
        );
        assert_eq!(
            with_env(Some(StoreKind::Memory), None),
            Ok(StoreSpec::Memory)
        );
        assert_eq!(
            with_env(Some(StoreKind::Sqlite), None),
            sqlite("data/factorydash.db")
        );
        assert_eq!(with_env(None, Some("sqlite:rel/f.db")), sqlite("rel/f.db"));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("4 MiB"), Ok(4 << 20));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("2048"), Ok(2048));
        assert!(parse_size("12").is_err(), "below 1 KiB");
        assert!(parse_size("4 furlongs").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999999999999GiB").is_err());
    }
}
