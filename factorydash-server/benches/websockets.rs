//! Live updates under load: 1,000 and then 10,000 WebSocket clients on 127.0.0.1, all
//! subscribed to everything, while `factorydash serve` replays the bundled three-machine
//! NIST recording (GFAgie01, Mazak01, Hurco01) at 200 times its pace. For each count:
//! the clients connected and kept, the updates delivered per second, the latency from
//! publication (right after the store took the batch; the message's `publishedAt`) to
//! the client, p50 and p99, and the server's resident memory per client.
//!
//! Run with: `cargo bench -p factorydash-server --bench websockets [-- 1000 10000]`
//! (needs about two file descriptors per client: `ulimit -n` of 20,000 or more for 10,000).
//! Target on a 2-core machine: p99 under 100 ms at 1,000 clients.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use tokio::process::Child;
use tokio_tungstenite::tungstenite::Message;

mod common;

/// How long updates are counted, once every client is connected.
const MEASURE: Duration = Duration::from_secs(10);

/// How long the server runs before clients connect.
const WARM_UP: Duration = Duration::from_secs(10);

/// `factorydash serve` replaying the three-machine recording at 200 times its pace:
/// `(the process, "HOST:PORT")`.
async fn start() -> (Child, String) {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../recordings/nist-3-machines-shdr-2016");
    let (child, base) = common::start(&[
        "serve",
        "--replay",
        dir.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--speed",
        "200",
    ])
    .await;
    let address = base.trim_start_matches("http://").to_owned();
    (child, address)
}

/// What one client saw while measuring.
#[derive(Default)]
struct Seen {
    updates: u64,
    latencies_ms: Vec<f64>,
    closed_by_server: bool,
}

async fn client(
    address: String,
    connected: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    measure_from: Instant,
    measure_to: Instant,
) -> Option<Seen> {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{address}/ws"))
        .await
        .ok()?;
    connected.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let mut seen = Seen::default();
    loop {
        let next = tokio::time::timeout_at(measure_to.into(), ws.next()).await;
        let msg = match next {
            Err(_) => return Some(seen),
            Ok(None) | Ok(Some(Err(_))) => {
                seen.closed_by_server = true;
                return Some(seen);
            }
            Ok(Some(Ok(m))) => m,
        };
        let now = Utc::now();
        let Message::Text(text) = msg else { continue };
        if Instant::now() < measure_from {
            continue;
        }
        let text = text.as_str();
        if !text.starts_with(r#"{"#) || !text.contains(r#""type":"latest""#) {
            continue;
        }
        seen.updates += 1;
        // Only the timestamp is read (a whole parse per message would make the clients,
        // not the server, what is measured).
        const KEY: &str = r#""publishedAt":""#;
        let at = text.find(KEY).and_then(|i| {
            let rest = &text[i + KEY.len()..];
            rest[..rest.find('"')?].parse::<DateTime<Utc>>().ok()
        });
        if let Some(at) = at {
            seen.latencies_ms.push((now - at).as_seconds_f64() * 1e3);
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let mut counts: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    if counts.is_empty() {
        counts = vec![1_000, 10_000];
    }
    println!(
        "{:>8} {:>10} {:>8} {:>14} {:>9} {:>9} {:>12} {:>11} {:>12}",
        "clients",
        "connected",
        "dropped",
        "updates/s",
        "p50 ms",
        "p99 ms",
        "RSS/client",
        "server CPU",
        "clients CPU"
    );
    for n in counts {
        let (child, address) = start().await;
        let pid = child.id().unwrap();
        // The server's memory grows as it stores the replay: it warms up first, and the
        // clients' cost is what their connecting adds within a few seconds.
        tokio::time::sleep(WARM_UP).await;
        let before = common::rss(pid);
        let connected_now = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        // Connect every client (in waves, so the listen backlog keeps up), then measure.
        let connect_by = Instant::now() + Duration::from_secs(20);
        let measure_from = connect_by;
        let measure_to = measure_from + MEASURE;
        let mut tasks = Vec::with_capacity(n);
        for i in 0..n {
            tasks.push(tokio::spawn(client(
                address.clone(),
                connected_now.clone(),
                measure_from,
                measure_to,
            )));
            if i % 200 == 199 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        while connected_now.load(std::sync::atomic::Ordering::SeqCst) < n
            && Instant::now() < connect_by
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Every client has had its hello and first messages (the buffers are in use).
        tokio::time::sleep(Duration::from_secs(1)).await;
        let during = common::rss(pid);
        tokio::time::sleep_until(measure_from.into()).await;
        let (server_cpu, clients_cpu) = (common::cpu_seconds(Some(pid)), common::cpu_seconds(None));
        let mut latencies = Vec::new();
        let (mut connected, mut dropped, mut updates) = (0, 0, 0u64);
        for t in tasks {
            if let Ok(Some(seen)) = t.await {
                connected += 1;
                dropped += usize::from(seen.closed_by_server);
                updates += seen.updates;
                latencies.extend(seen.latencies_ms);
            }
        }
        let server_cpu = (common::cpu_seconds(Some(pid)) - server_cpu) / MEASURE.as_secs_f64();
        let clients_cpu = (common::cpu_seconds(None) - clients_cpu) / MEASURE.as_secs_f64();
        latencies.sort_by(f64::total_cmp);
        println!(
            "{:>8} {:>10} {:>8} {:>14.0} {:>9.1} {:>9.1} {:>9.1} KB {:>10.0}% {:>11.0}%",
            n,
            connected,
            dropped,
            updates as f64 / MEASURE.as_secs_f64(),
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.99),
            during.saturating_sub(before) as f64 / n as f64 / 1024.0,
            server_cpu * 100.0,
            clients_cpu * 100.0
        );
        drop(child);
    }
}
