//! `factorydash record URL --out DIR`: save an agent's probe and the `/sample` answers that
//! follow it, as a recording `replay` and `serve --replay` play back.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use factorydash_mtconnect::client::{AgentClient, Backoff};
use factorydash_mtconnect::{parse_streams, ErrorCode};
use flate2::write::GzEncoder;
use flate2::Compression;
use tokio::time::Instant;

/// What to record.
pub struct RecordSettings {
    /// The agent's base URL.
    pub url: String,
    /// The directory to write (created if missing).
    pub out: PathBuf,
    /// Stop after this long (`None`: until interrupted).
    pub duration: Option<Duration>,
    /// Observations per `/sample` request.
    pub count: u64,
}

fn write_gz(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut gz = GzEncoder::new(file, Compression::default());
    gz.write_all(bytes)?;
    gz.finish()?;
    Ok(())
}

/// What has been recorded so far.
#[derive(Debug, Default)]
struct Progress {
    probed: bool,
    pages: u64,
    saved: u64,
}

/// Records until the duration is over, or SIGTERM or Ctrl-C, whatever the agent does
/// (unreachable, slow, refusing): the duration bounds the whole run, the probe and every
/// retry included. Returns the number of observations saved.
///
/// # Errors
/// The directory or a file cannot be written; the agent's probe could not be read before
/// the recording stopped (nothing was recorded).
pub async fn run(settings: RecordSettings) -> anyhow::Result<u64> {
    std::fs::create_dir_all(&settings.out)
        .with_context(|| format!("cannot create {}", settings.out.display()))?;
    let client = AgentClient::new(&settings.url)?;
    let deadline = settings.duration.map(|d| Instant::now() + d);
    let mut progress = Progress::default();
    {
        // Files are written whole between awaits: stopping at any await leaves none cut.
        let work = record(&client, &settings, &mut progress);
        tokio::pin!(work);
        tokio::select! {
            done = &mut work => done?,
            () = until(deadline) => tracing::info!("the recording's duration is over"),
            () = crate::stop_signal() => {}
        }
    }
    if !progress.probed {
        anyhow::bail!(
            "nothing recorded: the probe of {} could not be read before the recording stopped",
            client.base_url()
        );
    }
    println!(
        "factorydash: recorded {} observations in {} pages to {}",
        progress.saved,
        progress.pages,
        settings.out.display()
    );
    Ok(progress.saved)
}

/// Waits until `deadline`, forever without one.
async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Reads the probe, then `/sample` pages, writing each, forever (the caller stops it).
async fn record(
    client: &AgentClient,
    settings: &RecordSettings,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    let mut backoff = Backoff::default();
    let probe = loop {
        match client.get("/probe").await {
            Ok(p) => break p,
            Err(e) => {
                let wait = backoff.next_delay();
                tracing::warn!(error = %crate::error_chain::error_chain(&e), retry_in = ?wait, "cannot read the probe");
                tokio::time::sleep(wait).await;
            }
        }
    };
    write_gz(&settings.out.join("probe.xml.gz"), &probe)?;
    progress.probed = true;
    let mut next: Option<(u64, u64)> = None;
    loop {
        let path = match next {
            Some((_, from)) => format!("/sample?from={from}&count={}", settings.count),
            None => format!("/sample?count={}", settings.count),
        };
        let body = match client.get(&path).await {
            Ok(b) => b,
            Err(e) => {
                if e.agent_code() == Some(&ErrorCode::OutOfRange) {
                    tracing::warn!(
                        "the agent's buffer moved past the recording; continuing from its oldest"
                    );
                    next = None;
                    continue;
                }
                let wait = backoff.next_delay();
                tracing::warn!(error = %crate::error_chain::error_chain(&e), retry_in = ?wait, "request failed");
                tokio::time::sleep(wait).await;
                continue;
            }
        };
        let parsed = match parse_streams(&body) {
            Ok(p) if p.is_complete() => p,
            _ => {
                let wait = backoff.next_delay();
                tracing::warn!(retry_in = ?wait, "an incomplete answer; asking again");
                tokio::time::sleep(wait).await;
                continue;
            }
        };
        backoff.reset();
        let header = &parsed.value.header;
        if next.is_some_and(|(instance, _)| instance != header.instance_id) {
            tracing::warn!("the agent restarted; the recording goes on with its new instance");
        }
        let n = parsed.value.observations.len() as u64;
        if n > 0 {
            progress.pages += 1;
            write_gz(
                &settings
                    .out
                    .join(format!("sample-{:06}.xml.gz", progress.pages)),
                &body,
            )?;
            progress.saved += n;
        }
        let next_sequence = header.next_sequence.unwrap_or(0);
        next = Some((header.instance_id, next_sequence));
        if header.last_sequence.is_none_or(|last| next_sequence > last) {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}
