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

/// Records until the duration is over or Ctrl-C. Returns the number of observations saved.
pub async fn run(settings: RecordSettings) -> anyhow::Result<u64> {
    std::fs::create_dir_all(&settings.out)
        .with_context(|| format!("cannot create {}", settings.out.display()))?;
    let client = AgentClient::new(&settings.url)?;
    let mut backoff = Backoff::default();
    let probe = loop {
        match client.get("/probe").await {
            Ok(p) => break p,
            Err(e) => {
                let wait = backoff.next_delay();
                tracing::warn!(error = %crate::ingest::error_chain(&e), retry_in = ?wait, "cannot read the probe");
                tokio::time::sleep(wait).await;
            }
        }
    };
    write_gz(&settings.out.join("probe.xml.gz"), &probe)?;
    let deadline = settings.duration.map(|d| Instant::now() + d);
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    let mut next: Option<(u64, u64)> = None;
    let (mut pages, mut saved) = (0u64, 0u64);
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let path = match next {
            Some((_, from)) => format!("/sample?from={from}&count={}", settings.count),
            None => format!("/sample?count={}", settings.count),
        };
        let answer = tokio::select! {
            a = client.get(&path) => a,
            _ = &mut stop => break,
        };
        let body = match answer {
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
                tracing::warn!(error = %crate::ingest::error_chain(&e), retry_in = ?wait, "request failed");
                tokio::time::sleep(wait).await;
                continue;
            }
        };
        backoff.reset();
        let parsed = match parse_streams(&body) {
            Ok(p) if p.is_complete() => p,
            _ => {
                tracing::warn!("an incomplete answer; asking again");
                continue;
            }
        };
        let header = &parsed.value.header;
        if next.is_some_and(|(instance, _)| instance != header.instance_id) {
            tracing::warn!("the agent restarted; the recording goes on with its new instance");
        }
        let n = parsed.value.observations.len() as u64;
        if n > 0 {
            pages += 1;
            write_gz(
                &settings.out.join(format!("sample-{pages:06}.xml.gz")),
                &body,
            )?;
            saved += n;
        }
        let next_sequence = header.next_sequence.unwrap_or(0);
        next = Some((header.instance_id, next_sequence));
        if header.last_sequence.is_none_or(|last| next_sequence > last) {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = &mut stop => break,
            }
        }
    }
    println!(
        "factorydash: recorded {saved} observations in {pages} pages to {}",
        settings.out.display()
    );
    Ok(saved)
}
