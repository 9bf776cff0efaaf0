//! The log: standard error, redacted ([`crate::redact::RedactedStderr`]), filtered by
//! `RUST_LOG` (default `info,hyper=warn,warp=warn,tokio_postgres=warn`).
//!
//! One thing is held back whatever `RUST_LOG` says: warp logs every HTTP connection that
//! ends in an error at ERROR (`server connection error: …`), and anyone who can reach the
//! port can cause one per connection, before any token is asked for (a URI over hyper's
//! 64 KiB, a head too large, bytes that are not HTTP). Unchecked, that is a log flood at
//! will. Those events are counted instead, and told as one WARN line at most once a
//! minute: how many, and the first one's error (at most 200 bytes; hyper's errors quote
//! no part of the request).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// At most one line about connection errors per this long.
const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// The most of an error's text quoted, in bytes.
const QUOTED: usize = 200;

/// The default filter, when `RUST_LOG` is not set.
const DEFAULT_FILTER: &str = "info,hyper=warn,warp=warn,tokio_postgres=warn";

/// warp's "server connection error" events (warp 0.4, `src/server.rs`).
fn is_connection_error(meta: &Metadata<'_>) -> bool {
    *meta.level() == Level::ERROR && meta.target().starts_with("warp::server")
}

/// Connection errors since the last summary line.
#[derive(Default)]
struct ConnectionErrors {
    count: AtomicU64,
    /// The first one's text, at most [`QUOTED`] bytes.
    first: Mutex<String>,
    /// Woken by the first error after a summary.
    wake: tokio::sync::Notify,
}

/// Counts the connection errors (and keeps the first one's text) instead of showing them.
struct Counting(Arc<ConnectionErrors>);

impl<S: Subscriber> Layer<S> for Counting {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        if self.0.count.fetch_add(1, Ordering::SeqCst) == 0 {
            let mut text = Text(String::new());
            event.record(&mut text);
            let mut quoted = text.0;
            if quoted.len() > QUOTED {
                let mut end = QUOTED;
                while !quoted.is_char_boundary(end) {
                    end -= 1;
                }
                quoted.truncate(end);
                quoted.push('…');
            }
            *self.0.first.lock().unwrap_or_else(|p| p.into_inner()) = quoted;
            self.0.wake.notify_one();
        }
    }
}

/// An event's fields as text.
struct Text(String);

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, "{}={value:?}", field.name());
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Lines for people: coloured only when standard error is a terminal and `NO_COLOR`
    /// is unset (no escape codes in files and journals).
    #[default]
    Text,
    /// One JSON object a line (timestamp, level, target, fields), for journald and log
    /// shippers; never coloured.
    Json,
}

/// Installs the log (see the module's docs) in `format` and starts the task that tells of
/// connection errors. Call once, within the Tokio runtime.
pub fn init(format: LogFormat) {
    use std::io::IsTerminal;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let errors = Arc::new(ConnectionErrors::default());
    // Agent URLs may carry credentials: no log line shows them.
    let lines = tracing_subscriber::fmt::layer().with_writer(crate::redact::RedactedStderr);
    let lines = match format {
        LogFormat::Text => {
            let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            lines.with_ansi(colour).boxed()
        }
        LogFormat::Json => lines.json().with_ansi(false).boxed(),
    };
    tracing_subscriber::registry()
        .with(
            lines
                .with_filter(filter)
                .with_filter(filter_fn(|m| !is_connection_error(m))),
        )
        .with(Counting(errors.clone()).with_filter(filter_fn(is_connection_error)))
        .init();
    tokio::spawn(async move {
        loop {
            errors.wake.notified().await;
            // The text first: an error counted after it was taken writes none (the count
            // was not 0), so the text always goes with the count it opened.
            let first =
                std::mem::take(&mut *errors.first.lock().unwrap_or_else(|p| p.into_inner()));
            let count = errors.count.swap(0, Ordering::SeqCst);
            if count > 0 {
                tracing::warn!(
                    connections = count,
                    first = %first,
                    "HTTP connections ended in an error (a request HTTP refuses, such as a URI over 64 KiB, or a client gone); told at most once a minute"
                );
            }
            tokio::time::sleep(SUMMARY_EVERY).await;
        }
    });
}
