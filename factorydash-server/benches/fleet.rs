//! The scale curve (issue 15): `factorydash simulate` and `factorydash serve` as separate
//! processes, swept over 1, 10, 100, 300 and 1,000 simulated machines (agents of 10
//! machines: 1,000 machines are 100 agents; `--max-agents N` caps the agents, making them
//! larger; 1 machine is one agent of one)
//! at 1 Hz and 10 Hz, on PostgreSQL. For each
//! size, over a measured window after a warm-up:
//!
//! - observations per second offered (the agents' sequences advanced, from each agent's
//!   `/current` Header `nextSequence`) and stored (`/healthz` `observations`), and after a
//!   drain, per agent, the observations of the window missing from the store (`lost`) or
//!   in it more than once (`doubled`);
//! - `serve`'s CPU seconds per million observations stored, its CPU share and resident
//!   memory, and the CPU shares of `simulate`, of the PostgreSQL backends serving the
//!   bench's database and of the bench itself (its WebSocket and HTTP clients);
//! - the delay from an observation's `timestamp` (the wall-clock time `simulate` made it)
//!   to its arrival at one of 100 WebSocket clients, p50 and p99, and the kilobytes per
//!   second each client received: clients that subscribe as the board does (`--view
//!   board`, the default: every tile, the rows of the first 50 latest values, as
//!   `board` messages) or that take every value (`--view latest`);
//! - the p95 of the latest-values page (`/api/latest?limit=50`), of the board page (`/`)
//!   and of one device's chart request (`/api/series?…&maxPoints=400` over the last 10
//!   minutes) while ingesting.
//!
//! The knee, the first size at which `serve` falls behind, is printed at the end; the table
//! goes to `target/fleet/fleet.csv` and a plot to `target/fleet/fleet.png`
//! (`docs/fleet.md` says how to read them).
//!
//! Run with: `cargo bench -p factorydash-server --bench fleet [-- --quick] [--rates 1,10]
//! [--store postgres|sqlite|memory] [--max-agents N] [--clients 100] [--view board|latest]
//! [--warm-up SECONDS] [--interval 100ms] [SIZES…]` (`--interval`: serve's streaming
//! interval) (a longer warm-up lets `serve` catch up with what the
//! agents held before it started, which otherwise reaches the clients late). PostgreSQL is `FLEET_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); each size gets a database of its own,
//! created and dropped by the bench. `-- --plot TABLE.csv` only redraws `TABLE.png` from a
//! table written before.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use futures_util::StreamExt;
use tokio::process::Child;
use tokio_tungstenite::tungstenite::Message;

mod common;

/// Requests of each kind (latest-values page, chart) spread over the window.
const REQUESTS: usize = 20;
/// The longest wait for `serve` to store what was offered in the window.
const DRAIN: Duration = Duration::from_secs(60);
/// Delay histogram buckets, of 1 ms each (the last holds everything longer).
const BUCKETS: usize = 120_000;

/// Where `serve` keeps observations: passed through as `serve` flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreKind {
    Postgres,
    Sqlite,
    Memory,
}

/// What the command line asks for.
struct Plan {
    sizes: Vec<u32>,
    rates: Vec<u32>,
    warm_up: Duration,
    window: Duration,
    store: StoreKind,
    database_url: String,
    /// WebSocket clients connected to `serve` during each size (`--clients`, 100).
    clients: usize,
    /// Whether the clients subscribe as the board does (`--view board`, the default) or
    /// take every value (`--view latest`).
    board: bool,
    /// The most agents simulated (`--max-agents`; no limit unless told). `serve` holds its
    /// agents' locks on one PostgreSQL connection, so the agents are not limited by
    /// PostgreSQL's `max_connections`.
    max_agents: u32,
    /// `serve`'s streaming interval (`--interval`, passed on; serve's own default unless
    /// told), e.g. `100ms`.
    interval: Option<String>,
}

fn plan() -> Plan {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let store = match value("--store").as_deref() {
        None | Some("postgres") => StoreKind::Postgres,
        Some("sqlite") => StoreKind::Sqlite,
        Some("memory") => StoreKind::Memory,
        Some(other) => panic!("--store {other}: postgres, sqlite or memory"),
    };
    let rates: Vec<u32> = value("--rates").map_or_else(
        || if quick { vec![1] } else { vec![1, 10] },
        |r| r.split(',').map(|r| r.trim().parse().unwrap()).collect(),
    );
    // Sizes are the bare numbers that are not an option's value.
    let mut sizes: Vec<u32> = args
        .iter()
        .enumerate()
        .filter(|(i, _)| {
            *i == 0
                || !matches!(
                    args[i - 1].as_str(),
                    "--store"
                        | "--rates"
                        | "--max-agents"
                        | "--clients"
                        | "--view"
                        | "--warm-up"
                        | "--interval"
                )
        })
        .filter_map(|(_, a)| a.parse().ok())
        .collect();
    if sizes.is_empty() {
        sizes = if quick {
            vec![1, 10, 100]
        } else {
            vec![1, 10, 100, 300, 1000]
        };
    }
    let (warm_up, window) = if quick { (3, 6) } else { (5, 20) };
    let warm_up = value("--warm-up").map_or(warm_up, |v| v.parse().unwrap());
    Plan {
        sizes,
        rates,
        warm_up: Duration::from_secs(warm_up),
        window: Duration::from_secs(window),
        store,
        clients: value("--clients").map_or(100, |v| v.parse().unwrap()),
        board: match value("--view").as_deref() {
            None | Some("board") => true,
            Some("latest") => false,
            Some(other) => panic!("--view {other}: board or latest"),
        },
        max_agents: value("--max-agents").map_or(u32::MAX, |v| v.parse().unwrap()),
        interval: value("--interval"),
        database_url: std::env::var("FLEET_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned()),
    }
}

/// One row of the table.
#[derive(Debug, Clone, Default)]
struct Row {
    machines: u32,
    rate_hz: u32,
    agents: u32,
    /// The measured window, in seconds.
    window_s: f64,
    offered_per_s: f64,
    stored_per_s: f64,
    /// Observations of the window that the store does not hold after the drain.
    lost: i64,
    /// Observations of the window the store holds more than once (`None`: not checked).
    doubled: Option<i64>,
    /// Seconds from the window's end until the store held everything offered in it.
    drain_s: f64,
    /// The most observations waiting for the store (`/healthz` `buffered`), and the last.
    buffered_max: u64,
    buffered_end: u64,
    serve_cpu_per_m: f64,
    serve_cpu_pct: f64,
    serve_rss_mb: f64,
    /// Its anonymous part (without the store's mapped file pages).
    serve_anon_mb: f64,
    sim_cpu_pct: f64,
    pg_cpu_pct: f64,
    bench_cpu_pct: f64,
    ws_connected: usize,
    ws_p50_ms: f64,
    ws_p99_ms: f64,
    /// Kilobytes per second received by each WebSocket client (mean over the clients).
    ws_kb_per_s: f64,
    latest_p95_ms: f64,
    board_p95_ms: f64,
    series_p95_ms: f64,
    http_errors: usize,
}

impl Row {
    /// Why `serve` is behind at this size, if it is.
    fn behind(&self) -> Option<String> {
        let mut why = Vec::new();
        // Stored and offered are counted at slightly different moments (serve stores a
        // stream's part every 500 ms): behind is more than 2 s of the window's offer
        // missing at its end, or a drain of more than 3 s.
        let missing_s =
            (self.offered_per_s - self.stored_per_s) / self.offered_per_s.max(1e-9) * self.window_s;
        if missing_s > 2.0 || self.drain_s > 3.0 {
            why.push(format!(
                "stored {:.0}/s of {:.0}/s offered, {:.1} s to drain",
                self.stored_per_s, self.offered_per_s, self.drain_s
            ));
        }
        if self.lost > 0 {
            why.push(format!("{} observations lost", self.lost));
        }
        if self.buffered_end as f64 > self.offered_per_s.max(1000.0) {
            why.push(format!("{} observations buffered", self.buffered_end));
        }
        if self.ws_p99_ms > 1000.0 || (self.ws_connected > 0 && self.ws_p99_ms.is_nan()) {
            why.push(format!("live p99 {:.0} ms", self.ws_p99_ms));
        }
        (!why.is_empty()).then(|| why.join(", "))
    }
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--plot") {
        // Redraw from a table written before (or put together from several runs).
        let csv = PathBuf::from(&args[i + 1]);
        let png = csv.with_extension("png");
        let rows = read_csv(&csv);
        match plot::draw(&png, &rows) {
            Ok(text) => println!(
                "plot: {}{}",
                png.display(),
                if text {
                    ""
                } else {
                    " (no font found: drawn without text)"
                }
            ),
            Err(e) => println!("plot: not drawn: {e}"),
        }
        return;
    }
    let plan = plan();
    let out_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
            PathBuf::from,
        )
        .join("fleet");
    std::fs::create_dir_all(&out_dir).unwrap();
    println!(
        "fleet: store {:?}, warm-up {:?}, window {:?}, {} WebSocket clients; load {}",
        plan.store,
        plan.warm_up,
        plan.window,
        plan.clients,
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    print_header();
    let mut rows = Vec::new();
    for &rate in &plan.rates {
        for &machines in &plan.sizes {
            let row = run(&plan, machines, rate).await;
            print_row(&row);
            rows.push(row);
            write_csv(&out_dir.join("fleet.csv"), &rows);
        }
    }
    for &rate in &plan.rates {
        println!("{}", knee(&rows, rate));
    }
    let png = out_dir.join("fleet.png");
    match plot::draw(&png, &rows) {
        Ok(true) => println!("plot: {}", png.display()),
        Ok(false) => println!(
            "plot: {} (no font found: drawn without text)",
            png.display()
        ),
        Err(e) => println!("plot: not drawn: {e}"),
    }
    println!("table: {}", out_dir.join("fleet.csv").display());
}

/// The sentence about the knee at `rate` Hz.
fn knee(rows: &[Row], rate: u32) -> String {
    let at_rate: Vec<&Row> = rows.iter().filter(|r| r.rate_hz == rate).collect();
    match at_rate
        .iter()
        .find_map(|r| r.behind().map(|why| (r, why)))
    {
        Some((r, why)) => {
            let before = at_rate
                .iter()
                .take_while(|x| x.machines != r.machines)
                .last();
            format!(
                "Knee at {rate} Hz: serve falls behind at {} machines ({why}){}.",
                r.machines,
                before.map_or(String::new(), |b| format!(
                    "; it kept up at {} machines ({:.0} observations/s)",
                    b.machines, b.stored_per_s
                ))
            )
        }
        None => format!(
            "No knee at {rate} Hz: serve kept up at every size measured (up to {} machines, {:.0} observations/s).",
            at_rate.last().map_or(0, |r| r.machines),
            at_rate.last().map_or(0.0, |r| r.stored_per_s)
        ),
    }
}

const COLUMNS: [&str; 25] = [
    "machines",
    "agents",
    "hz",
    "offered/s",
    "stored/s",
    "lost",
    "doubled",
    "drain s",
    "buf max",
    "buf end",
    "CPU s/M",
    "serve %",
    "RSS MB",
    "anon MB",
    "sim %",
    "pg %",
    "bench %",
    "ws",
    "p50 ms",
    "p99 ms",
    "KB/s/cl",
    "latest p95",
    "board p95",
    "chart p95",
    "errors",
];

fn print_header() {
    let widths = widths();
    let line: Vec<String> = COLUMNS
        .iter()
        .zip(widths)
        .map(|(c, w)| format!("{c:>w$}"))
        .collect();
    println!("{}", line.join(" "));
}

fn widths() -> [usize; 25] {
    COLUMNS.map(|c| c.len().max(6))
}

fn cells(r: &Row) -> [String; 25] {
    [
        r.machines.to_string(),
        r.agents.to_string(),
        r.rate_hz.to_string(),
        format!("{:.0}", r.offered_per_s),
        format!("{:.0}", r.stored_per_s),
        r.lost.to_string(),
        r.doubled.map_or("-".to_owned(), |d| d.to_string()),
        format!("{:.1}", r.drain_s),
        r.buffered_max.to_string(),
        r.buffered_end.to_string(),
        format!("{:.1}", r.serve_cpu_per_m),
        format!("{:.1}", r.serve_cpu_pct),
        format!("{:.0}", r.serve_rss_mb),
        format!("{:.0}", r.serve_anon_mb),
        format!("{:.1}", r.sim_cpu_pct),
        format!("{:.1}", r.pg_cpu_pct),
        format!("{:.1}", r.bench_cpu_pct),
        r.ws_connected.to_string(),
        format!("{:.0}", r.ws_p50_ms),
        format!("{:.0}", r.ws_p99_ms),
        format!("{:.1}", r.ws_kb_per_s),
        format!("{:.1}", r.latest_p95_ms),
        format!("{:.1}", r.board_p95_ms),
        format!("{:.1}", r.series_p95_ms),
        r.http_errors.to_string(),
    ]
}

fn print_row(r: &Row) {
    let line: Vec<String> = cells(r)
        .iter()
        .zip(widths())
        .map(|(c, w)| format!("{c:>w$}"))
        .collect();
    println!("{}", line.join(" "));
}

fn write_csv(path: &Path, rows: &[Row]) {
    let mut w = csv::Writer::from_path(path).unwrap();
    w.write_record(COLUMNS).unwrap();
    for r in rows {
        w.write_record(cells(r)).unwrap();
    }
    w.flush().unwrap();
}

/// The rows of a table [`write_csv`] wrote (what the plot needs, and the rest).
fn read_csv(path: &Path) -> Vec<Row> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let headers = r.headers().unwrap().clone();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            let get = |name: &str| {
                headers
                    .iter()
                    .position(|h| h == name)
                    .and_then(|i| rec.get(i))
                    .unwrap_or("")
                    .to_owned()
            };
            let num = |name: &str| get(name).parse::<f64>().unwrap_or(f64::NAN);
            let int = |name: &str| get(name).parse::<i64>().unwrap_or(0);
            Row {
                machines: int("machines") as u32,
                agents: int("agents") as u32,
                rate_hz: int("hz") as u32,
                offered_per_s: num("offered/s"),
                stored_per_s: num("stored/s"),
                lost: int("lost"),
                doubled: get("doubled").parse().ok(),
                drain_s: num("drain s"),
                buffered_max: int("buf max") as u64,
                buffered_end: int("buf end") as u64,
                serve_cpu_per_m: num("CPU s/M"),
                serve_cpu_pct: num("serve %"),
                serve_rss_mb: num("RSS MB"),
                serve_anon_mb: num("anon MB"),
                sim_cpu_pct: num("sim %"),
                pg_cpu_pct: num("pg %"),
                bench_cpu_pct: num("bench %"),
                ws_connected: int("ws") as usize,
                ws_p50_ms: num("p50 ms"),
                ws_p99_ms: num("p99 ms"),
                ws_kb_per_s: num("KB/s/cl"),
                latest_p95_ms: num("latest p95"),
                board_p95_ms: num("board p95"),
                series_p95_ms: num("chart p95"),
                http_errors: int("errors") as usize,
                ..Row::default()
            }
        })
        .collect()
}

/// One size at one rate: start both processes, measure, tear down.
async fn run(plan: &Plan, machines: u32, rate: u32) -> Row {
    // Agents of 10 machines, or of more when that would make more than --max-agents.
    let per_agent = if machines < 10 {
        machines
    } else {
        machines.div_ceil(plan.max_agents).max(10)
    };
    let agents = machines.div_ceil(per_agent);
    let mut row = Row {
        machines,
        rate_hz: rate,
        agents,
        ..Row::default()
    };
    let (simulate, sim_base) = common::start(&[
        "simulate",
        "--agents",
        &agents.to_string(),
        "--machines-per-agent",
        &per_agent.to_string(),
        "--rate",
        &format!("{rate}hz"),
        "--seed",
        "15",
        "--listen",
        "127.0.0.1:0",
    ])
    .await;
    let agent_urls: Vec<String> = (1..=agents)
        .map(|a| format!("{sim_base}/agent-{a:02}"))
        .collect();

    let db = Database::create(plan, machines, rate).await;
    let mut args: Vec<String> = vec!["serve".into(), "--listen".into(), "127.0.0.1:0".into()];
    for url in &agent_urls {
        args.push("--agent".into());
        args.push(url.clone());
    }
    args.extend(db.serve_flags());
    if let Some(interval) = &plan.interval {
        args.extend(["--interval".to_owned(), interval.clone()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (serve, base) = common::start(&args).await;
    let serve_pid = serve.id().unwrap();
    let sim_pid = simulate.id().unwrap();
    let http = reqwest::Client::new();

    // The WebSocket clients connect during the warm-up and measure over the window.
    let measure_from = Instant::now() + plan.warm_up;
    let measure_to = measure_from + plan.window;
    let connected = Arc::new(AtomicUsize::new(0));
    let ws_url = format!("{}/ws", base.replacen("http://", "ws://", 1));
    let clients: Vec<_> = (0..plan.clients)
        .map(|_| {
            tokio::spawn(ws_client(
                ws_url.clone(),
                plan.board.then(|| base.clone()),
                connected.clone(),
                measure_from,
                measure_to,
            ))
        })
        .collect();
    tokio::time::sleep_until(measure_from.into()).await;

    // The window opens.
    let pg_pids = db.backend_pids().await;
    let cpu0 = Cpu::read(serve_pid, sim_pid, &pg_pids);
    let (seq0, health0) = tokio::join!(next_sequences(&http, &agent_urls), healthz(&http, &base));
    let chart = chart_item(&http, &base).await;
    let requests = tokio::spawn(page_requests(
        http.clone(),
        base.clone(),
        chart,
        measure_to,
        plan.window,
    ));
    let mut buffered = Vec::new();
    while Instant::now() + Duration::from_secs(1) < measure_to {
        tokio::time::sleep(Duration::from_secs(1)).await;
        buffered.push(healthz(&http, &base).await.buffered);
    }
    tokio::time::sleep_until(measure_to.into()).await;
    // The window closes.
    let (seq1, health1) = tokio::join!(next_sequences(&http, &agent_urls), healthz(&http, &base));
    let cpu1 = Cpu::read(serve_pid, sim_pid, &pg_pids);
    row.serve_rss_mb = common::rss(serve_pid) as f64 / 1048576.0;
    row.serve_anon_mb = common::rss_anon(serve_pid) as f64 / 1048576.0;
    let closed = Instant::now();
    let window = plan.window.as_secs_f64();
    row.window_s = window;
    let offered: u64 = seq1.iter().zip(&seq0).map(|(b, a)| b - a).sum();
    let stored = health1.observations.saturating_sub(health0.observations);
    row.offered_per_s = offered as f64 / window;
    row.stored_per_s = stored as f64 / window;
    row.buffered_max = buffered.iter().copied().max().unwrap_or(0);
    row.buffered_end = health1.buffered;
    let serve_cpu = cpu1.serve - cpu0.serve;
    row.serve_cpu_per_m = serve_cpu / (stored.max(1) as f64 / 1e6);
    row.serve_cpu_pct = serve_cpu / window * 100.0;
    row.sim_cpu_pct = (cpu1.simulate - cpu0.simulate) / window * 100.0;
    row.pg_cpu_pct = (cpu1.postgres - cpu0.postgres) / window * 100.0;
    row.bench_cpu_pct = (cpu1.bench - cpu0.bench) / window * 100.0;

    let mut delays = vec![0u64; BUCKETS];
    let mut bytes = 0u64;
    for c in clients {
        if let Ok(Some((h, b))) = c.await {
            row.ws_connected += 1;
            bytes += b;
            for (d, n) in delays.iter_mut().zip(h) {
                *d += u64::from(n);
            }
        }
    }
    row.ws_kb_per_s = bytes as f64 / 1024.0 / window / row.ws_connected.max(1) as f64;
    row.ws_p50_ms = histogram_percentile(&delays, 0.50);
    row.ws_p99_ms = histogram_percentile(&delays, 0.99);
    let (mut latest, mut board, mut series, errors) = requests.await.unwrap();
    row.latest_p95_ms = percentile(&mut latest, 0.95);
    row.board_p95_ms = percentile(&mut board, 0.95);
    row.series_p95_ms = percentile(&mut series, 0.95);
    row.http_errors = errors;

    // The drain: until serve has read everything offered in the window, then until the
    // store holds all of it (or DRAIN has passed). The simulator goes on meanwhile, so
    // `buffered` need not reach 0; it is waited for only when no store can be counted.
    let counted = plan.store != StoreKind::Memory;
    loop {
        let h = healthz(&http, &base).await;
        let read_all = agent_urls.iter().zip(&seq1).all(|(url, s1)| {
            h.next_sequence
                .iter()
                .any(|(source, n)| source.trim_end_matches('/') == url && n >= s1)
        });
        if (read_all && (counted || h.buffered == 0)) || closed.elapsed() > DRAIN {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    loop {
        let (lost, doubled) = db.check(&agent_urls, &seq0, &seq1, stored, offered).await;
        row.lost = lost;
        row.doubled = doubled;
        if lost <= 0 || !counted || closed.elapsed() > DRAIN {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    row.drain_s = closed.elapsed().as_secs_f64();
    // The simulator first: serve then logs reconnects, not the agent's broken streams.
    stop(simulate).await;
    stop(serve).await;
    db.drop().await;
    row
}

async fn stop(mut child: Child) {
    let _ = child.kill().await;
}

/// `(lost, Some(0))` of each agent's window `(url, from, to)` in the SQLite store at
/// `path` (opened read-only beside `serve`, which keeps writing: WAL lets it read).
fn sqlite_lost(path: &Path, windows: &[(String, u64, u64)]) -> (i64, Option<i64>) {
    let db =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    db.busy_timeout(Duration::from_secs(30)).unwrap();
    let mut lost = 0;
    for (url, s0, s1) in windows {
        let window = (s1 - s0) as i64;
        let held: i64 = db
            .query_row(
                "SELECT count(*) FROM observations o JOIN runs r ON r.id = o.run \
                 JOIN agents a ON a.id = r.agent_id \
                 WHERE rtrim(a.url, '/') = ?1 AND o.sequence >= ?2 AND o.sequence < ?3",
                rusqlite::params![url, *s0 as i64, *s1 as i64],
                |r| r.get(0),
            )
            .unwrap();
        lost += window - held;
    }
    (lost, Some(0))
}

/// The bench's own database for one size (PostgreSQL), or the flags of another store.
///
/// Its PostgreSQL connections are opened before `serve` starts, so that a `serve` that
/// takes every connection the server allows cannot keep the bench from measuring.
struct Database {
    kind: StoreKind,
    admin_url: String,
    name: String,
    sqlite: PathBuf,
    /// To the server's own database, and to this one.
    clients: Option<(tokio_postgres::Client, tokio_postgres::Client)>,
}

impl Database {
    async fn create(plan: &Plan, machines: u32, rate: u32) -> Self {
        let name = format!("fleet_{}_{machines}_{rate}hz", std::process::id());
        let sqlite = std::env::temp_dir().join(format!("{name}.db"));
        let mut db = Database {
            kind: plan.store,
            admin_url: plan.database_url.clone(),
            name,
            sqlite,
            clients: None,
        };
        if db.kind == StoreKind::Postgres {
            let admin = connect(&db.admin_url).await;
            admin
                .batch_execute(&format!("CREATE DATABASE {}", db.name))
                .await
                .unwrap();
            let own = connect(&db.url()).await;
            db.clients = Some((admin, own));
        }
        db
    }

    fn url(&self) -> String {
        let (server, _) = self.admin_url.rsplit_once('/').unwrap();
        format!("{server}/{}", self.name)
    }

    /// What `serve` is given to use this store.
    fn serve_flags(&self) -> Vec<String> {
        match self.kind {
            StoreKind::Postgres => vec!["--database-url".into(), self.url()],
            StoreKind::Sqlite => vec![
                "--database-url".into(),
                format!("sqlite://{}", self.sqlite.display()),
            ],
            StoreKind::Memory => Vec::new(),
        }
    }

    /// The PostgreSQL backends connected to this database (serve's pool).
    async fn backend_pids(&self) -> Vec<u32> {
        let Some((admin, _)) = &self.clients else {
            return Vec::new();
        };
        admin
            .query(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1",
                &[&self.name],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<_, i32>(0) as u32)
            .collect()
    }

    /// `(lost, doubled)` of the window `[seq0, seq1)` of each agent: per agent, the
    /// sequences of the window the store does not hold, and the rows beyond one per
    /// sequence. On SQLite, read from its file (a sequence is held once by its primary
    /// key: `doubled` is 0); in memory, from serve's count (`stored` of `offered`) only.
    async fn check(
        &self,
        agent_urls: &[String],
        seq0: &[u64],
        seq1: &[u64],
        stored: u64,
        offered: u64,
    ) -> (i64, Option<i64>) {
        if self.kind == StoreKind::Sqlite {
            let path = self.sqlite.clone();
            let windows: Vec<(String, u64, u64)> = agent_urls
                .iter()
                .zip(seq0)
                .zip(seq1)
                .map(|((u, &a), &b)| (u.clone(), a, b))
                .collect();
            return tokio::task::spawn_blocking(move || sqlite_lost(&path, &windows))
                .await
                .unwrap();
        }
        let Some((_, client)) = &self.clients else {
            return (offered as i64 - stored as i64, None);
        };
        let ids: HashMap<String, i32> = client
            .query("SELECT url, id FROM agents", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r.get::<_, String>(0).trim_end_matches('/').to_owned(),
                    r.get(1),
                )
            })
            .collect();
        let (mut lost, mut doubled) = (0, 0);
        for ((url, &s0), &s1) in agent_urls.iter().zip(seq0).zip(seq1) {
            let window = (s1 - s0) as i64;
            let Some(id) = ids.get(url.as_str()) else {
                lost += window;
                continue;
            };
            let r = client
                .query_one(
                    "SELECT count(*), count(DISTINCT (instance_id, sequence)) FROM observations \
                     WHERE agent_id = $1 AND sequence >= $2 AND sequence < $3",
                    &[id, &(s0 as i64), &(s1 as i64)],
                )
                .await
                .unwrap();
            let (rows, distinct): (i64, i64) = (r.get(0), r.get(1));
            lost += window - distinct;
            doubled += rows - distinct;
        }
        (lost, Some(doubled))
    }

    async fn drop(self) {
        match self.kind {
            StoreKind::Postgres => {
                let (admin, own) = self.clients.expect("connected in create");
                drop(own);
                admin
                    .batch_execute(&format!(
                        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                        self.name
                    ))
                    .await
                    .unwrap();
            }
            StoreKind::Sqlite => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", self.sqlite.display()));
                }
            }
            StoreKind::Memory => {}
        }
    }
}

/// A connection to `url`, retried for 30 s (the server is shared: it may be full for a
/// moment).
async fn connect(url: &str) -> tokio_postgres::Client {
    let mut tries = 0;
    loop {
        match tokio_postgres::connect(url, tokio_postgres::NoTls).await {
            Ok((client, connection)) => {
                tokio::spawn(connection);
                return client;
            }
            Err(e) if tries < 60 => {
                tries += 1;
                eprintln!("fleet: cannot connect to PostgreSQL yet: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("cannot connect to PostgreSQL: {e}"),
        }
    }
}

/// Each agent's `nextSequence` (its `/current` Header), in `urls` order.
async fn next_sequences(http: &reqwest::Client, urls: &[String]) -> Vec<u64> {
    let answers = futures_util::future::join_all(urls.iter().map(|u| async move {
        let body = http
            .get(format!("{u}/current"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        attribute(&body, "nextSequence").unwrap()
    }));
    answers.await
}

/// The first `name="…"` attribute of `xml`, as a number.
fn attribute(xml: &str, name: &str) -> Option<u64> {
    let key = format!("{name}=\"");
    let rest = &xml[xml.find(&key)? + key.len()..];
    rest[..rest.find('"')?].parse().ok()
}

/// What the bench reads from `/healthz`.
#[derive(Default)]
struct Health {
    observations: u64,
    buffered: u64,
    /// Per source: its URL and the next sequence `serve` will read.
    next_sequence: Vec<(String, u64)>,
}

async fn healthz(http: &reqwest::Client, base: &str) -> Health {
    let Ok(answer) = http.get(format!("{base}/healthz")).send().await else {
        return Health::default();
    };
    let v: serde_json::Value = answer.json().await.unwrap_or_default();
    let sources = v["sources"].as_array().cloned().unwrap_or_default();
    Health {
        observations: v["observations"].as_u64().unwrap_or(0),
        buffered: sources.iter().filter_map(|s| s["buffered"].as_u64()).sum(),
        next_sequence: sources
            .iter()
            .filter_map(|s| {
                Some((
                    s["source"].as_str()?.to_owned(),
                    s["nextSequence"].as_u64()?,
                ))
            })
            .collect(),
    }
}

/// A device and data item for the chart request: a Sample of the latest-values page.
async fn chart_item(http: &reqwest::Client, base: &str) -> (String, String) {
    let v: serde_json::Value = http
        .get(format!("{base}/api/latest?limit=50"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = v["items"].as_array().cloned().unwrap_or_default();
    let pick = items
        .iter()
        .find(|i| i["category"] == "SAMPLE")
        .or(items.first())
        .expect("the latest-values page is empty after the warm-up");
    let field = |v: &serde_json::Value, key: &str| v[key].as_str().unwrap_or_default().to_owned();
    (field(pick, "device"), field(pick, "dataItemId"))
}

/// `REQUESTS` latest-value pages, board pages and chart requests, spread over the window:
/// their times in milliseconds, and how many failed.
async fn page_requests(
    http: reqwest::Client,
    base: String,
    (device, item): (String, String),
    until: Instant,
    window: Duration,
) -> (Vec<f64>, Vec<f64>, Vec<f64>, usize) {
    let every = window / REQUESTS as u32;
    let (mut latest, mut board, mut series, mut errors) = (Vec::new(), Vec::new(), Vec::new(), 0);
    let mut ticker = tokio::time::interval(every);
    for _ in 0..REQUESTS {
        ticker.tick().await;
        if Instant::now() > until {
            break;
        }
        let now = Utc::now();
        let from = (now - chrono::Duration::minutes(10)).to_rfc3339_opts(SecondsFormat::Secs, true);
        let to = now.to_rfc3339_opts(SecondsFormat::Secs, true);
        let series_url = format!(
            "{base}/api/series?{}",
            form_urlencoded::Serializer::new(String::new())
                .append_pair("device", &device)
                .append_pair("dataItemId", &item)
                .append_pair("maxPoints", "400")
                .append_pair("from", &from)
                .append_pair("to", &to)
                .finish()
        );
        for (url, times) in [
            (format!("{base}/api/latest?limit=50"), &mut latest),
            (format!("{base}/"), &mut board),
            (series_url, &mut series),
        ] {
            let started = Instant::now();
            let ok = match http.get(&url).send().await {
                Ok(a) if a.status().is_success() => a.bytes().await.is_ok(),
                _ => false,
            };
            if ok {
                times.push(started.elapsed().as_secs_f64() * 1e3);
            } else {
                errors += 1;
            }
        }
    }
    (latest, board, series, errors)
}

/// One WebSocket client: a histogram (1 ms buckets) of the delays from the `timestamp`
/// of every observation it received in `[from, to)` to its arrival, and the bytes it
/// received then. With `board` (the server's base URL), it subscribes as the board page
/// does: every tile, and the rows of the first 50 latest values (read once there are some).
async fn ws_client(
    url: String,
    board: Option<String>,
    connected: Arc<AtomicUsize>,
    from: Instant,
    to: Instant,
) -> Option<(Vec<u32>, u64)> {
    use futures_util::SinkExt;
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.ok()?;
    connected.fetch_add(1, Ordering::SeqCst);
    if let Some(base) = board {
        let rows = loop {
            let v: serde_json::Value = reqwest::get(format!("{base}/api/latest?limit=50"))
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            let rows: Vec<serde_json::Value> = v["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|o| serde_json::json!([o["agent"], o["device"], o["dataItemId"]]))
                .collect();
            if !rows.is_empty() || Instant::now() > from {
                break rows;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        let subscribe =
            serde_json::json!({"type": "subscribe", "view": "board", "tiles": true, "rows": rows});
        ws.send(Message::text(subscribe.to_string())).await.ok()?;
    }
    let mut hist = vec![0u32; BUCKETS];
    let mut bytes = 0u64;
    while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(to.into(), ws.next()).await {
        let now = Utc::now().timestamp_micros();
        let Message::Text(text) = msg else { continue };
        if Instant::now() < from {
            continue;
        }
        bytes += text.len() as u64;
        for at in item_timestamps(text.as_str()) {
            let ms = ((now - at).max(0) / 1000) as usize;
            hist[ms.min(BUCKETS - 1)] += 1;
        }
    }
    Some((hist, bytes))
}

/// The `timestamp`s (microseconds since the epoch) of the items of a `latest` or a `board`
/// message, found by text search (a whole parse per message would make the clients, not
/// the server, what is measured).
fn item_timestamps(text: &str) -> impl Iterator<Item = i64> + '_ {
    const ITEMS: &str = r#""items":["#;
    const KEY: &str = r#""timestamp":""#;
    let items = if text.starts_with(r#"{"type":"latest""#) {
        text.find(ITEMS).map_or("", |i| {
            let rest = &text[i + ITEMS.len()..];
            &rest[..rest.find(r#"],"devices":"#).unwrap_or(rest.len())]
        })
    } else if text.starts_with(r#"{"type":"board","id""#) {
        // `items` comes last; a tile's fields hold no `"items":[`.
        text.rfind(ITEMS).map_or("", |i| &text[i + ITEMS.len()..])
    } else {
        ""
    };
    items
        .match_indices(KEY)
        .filter_map(move |(i, _)| parse_micros(&items.as_bytes()[i + KEY.len()..]))
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (what chrono writes for a UTC time) as microseconds
/// since the epoch, without a general parser.
fn parse_micros(s: &[u8]) -> Option<i64> {
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let mut n = 0;
        for &b in s.get(r)? {
            if !b.is_ascii_digit() {
                return None;
            }
            n = n * 10 + i64::from(b - b'0');
        }
        Some(n)
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut micros = 0;
    if s.get(19) == Some(&b'.') {
        let digits = s[20..].iter().take_while(|b| b.is_ascii_digit()).count();
        let frac = num(20..20 + digits.min(6))?;
        micros = frac * 10i64.pow(6 - digits.min(6) as u32);
    }
    // Days from the civil date (Howard Hinnant, "chrono-Compatible Low-Level Date
    // Algorithms", days_from_civil).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1_000_000) + micros)
}

fn histogram_percentile(hist: &[u64], p: f64) -> f64 {
    let total: u64 = hist.iter().sum();
    if total == 0 {
        return f64::NAN;
    }
    let rank = ((total as f64 * p).ceil() as u64).max(1);
    let mut seen = 0;
    for (ms, n) in hist.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return ms as f64 + 0.5;
        }
    }
    f64::NAN
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1]
}

/// CPU seconds (user + system) of the processes measured, read together.
struct Cpu {
    serve: f64,
    simulate: f64,
    postgres: f64,
    bench: f64,
}

impl Cpu {
    fn read(serve: u32, simulate: u32, postgres: &[u32]) -> Self {
        Cpu {
            serve: common::cpu_seconds(Some(serve)),
            simulate: common::cpu_seconds(Some(simulate)),
            postgres: postgres.iter().map(|&p| common::cpu_seconds(Some(p))).sum(),
            bench: common::cpu_seconds(None),
        }
    }
}

mod plot {
    //! The PNG: observations per second offered and stored, serve's CPU and the live p99,
    //! each against machines (log scale).

    use std::path::Path;

    use plotters::prelude::*;

    use super::Row;

    /// Fonts looked for, in order; the first found is used for all text.
    const FONTS: &[&str] = &[
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
    ];

    /// Draws `rows` to `path`: `Ok(true)` with text, `Ok(false)` without (no font found).
    pub fn draw(path: &Path, rows: &[Row]) -> Result<bool, Box<dyn std::error::Error>> {
        let font = FONTS.iter().find_map(|f| std::fs::read(f).ok());
        let text = match font {
            Some(bytes) => {
                plotters::style::register_font(
                    "sans-serif",
                    FontStyle::Normal,
                    Box::leak(bytes.into_boxed_slice()),
                )
                .map_err(|_| "the font cannot be read")?;
                true
            }
            None => false,
        };
        let root = BitMapBackend::new(path, (900, 1200)).into_drawing_area();
        root.fill(&WHITE)?;
        let panels = root.split_evenly((3, 1));
        let rates: Vec<u32> = {
            let mut r: Vec<u32> = rows.iter().map(|r| r.rate_hz).collect();
            r.sort_unstable();
            r.dedup();
            r
        };
        let max_machines = rows.iter().map(|r| r.machines).max().unwrap_or(1).max(10) as f64;
        type Metric = (&'static str, fn(&Row) -> f64);
        let charts: [(&str, &str, Vec<Metric>); 3] = [
            (
                "observations/s: offered (line) and stored (dots)",
                "observations/s",
                vec![
                    ("offered", |r: &Row| r.offered_per_s),
                    ("stored", |r: &Row| r.stored_per_s),
                ],
            ),
            (
                "serve CPU (% of one core)",
                "serve CPU %",
                vec![("serve CPU", |r: &Row| r.serve_cpu_pct)],
            ),
            (
                "delay to a WebSocket client, p99 (ms)",
                "p99 ms",
                vec![("p99", |r: &Row| r.ws_p99_ms)],
            ),
        ];
        let colors = [BLUE, RED, GREEN, MAGENTA];
        for (panel, (caption, y_label, metrics)) in panels.iter().zip(charts) {
            let values: Vec<f64> = rows
                .iter()
                .flat_map(|r| metrics.iter().map(move |(_, f)| f(r)))
                .filter(|v| v.is_finite() && *v > 0.0)
                .collect();
            let y_max = values.iter().copied().fold(1.0, f64::max) * 2.0;
            let y_min = values.iter().copied().fold(y_max, f64::min).max(0.01) / 2.0;
            let mut builder = ChartBuilder::on(panel);
            builder.margin(15);
            if text {
                builder
                    .caption(caption, ("sans-serif", 20))
                    .x_label_area_size(40)
                    .y_label_area_size(70);
            }
            let mut chart = builder.build_cartesian_2d(
                (0.8f64..max_machines * 1.25).log_scale(),
                (y_min..y_max).log_scale(),
            )?;
            let mut mesh = chart.configure_mesh();
            if text {
                mesh.x_desc("machines").y_desc(y_label);
            } else {
                mesh.x_labels(0).y_labels(0);
            }
            mesh.draw()?;
            for (i, rate) in rates.iter().enumerate() {
                let color = colors[i % colors.len()];
                let at: Vec<&Row> = rows.iter().filter(|r| r.rate_hz == *rate).collect();
                for (m, (name, f)) in metrics.iter().enumerate() {
                    let points: Vec<(f64, f64)> = at
                        .iter()
                        .map(|r| (f64::from(r.machines), f(r)))
                        .filter(|(_, v)| v.is_finite() && *v > 0.0)
                        .collect();
                    let label = format!("{name}, {rate} Hz");
                    if m == 0 {
                        let series = chart
                            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?;
                        if text {
                            series.label(label).legend(move |(x, y)| {
                                PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2))
                            });
                        }
                    } else {
                        let series = chart.draw_series(
                            points.iter().map(|&p| Circle::new(p, 5, color.filled())),
                        )?;
                        if text {
                            series
                                .label(label)
                                .legend(move |(x, y)| Circle::new((x + 10, y), 5, color.filled()));
                        }
                    }
                }
            }
            if text {
                chart
                    .configure_series_labels()
                    .position(SeriesLabelPosition::UpperLeft)
                    .background_style(WHITE.mix(0.8))
                    .border_style(BLACK)
                    .label_font(("sans-serif", 16))
                    .draw()?;
            }
        }
        root.present()?;
        Ok(text)
    }
}
