//! What the server's benches share.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Starts `factorydash ARGS` (quiet logs) and waits for the address it prints:
/// `(the process, "http://HOST:PORT")`. The process is killed when dropped.
pub async fn start(args: &[&str]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_factorydash"))
        .args(args)
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines.next_line().await.unwrap().unwrap();
    let base = format!(
        "http://{}",
        line.split("http://").nth(1).unwrap().trim_end_matches('/')
    );
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, base)
}

/// `factorydash replay` of the bundled NIST GFAgie01 recording (112,762 observations), all
/// revealed at once: `(the process, "http://HOST:PORT")`, killed when dropped.
#[allow(dead_code)] // not every bench uses it
pub async fn nist_replay_agent() -> (Child, String) {
    let recording = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../recordings/nist-gfagie01-2016-05-02"
    );
    start(&[
        "replay",
        recording,
        "--listen",
        "127.0.0.1:0",
        "--speed",
        "1000000",
    ])
    .await
}

/// Resident memory of process `pid` in bytes (Linux `/proc`, `VmRSS`); 0 when unknown.
#[allow(dead_code)] // not every bench reads it
pub fn rss(pid: u32) -> u64 {
    status_bytes(pid, "VmRSS:")
}

/// The anonymous part of process `pid`'s resident memory in bytes (`RssAnon`: its heap
/// and stacks, without the pages of files it maps, such as SQLite's memory-mapped
/// database), or 0 when unknown.
#[allow(dead_code)] // not every bench reads it
pub fn rss_anon(pid: u32) -> u64 {
    status_bytes(pid, "RssAnon:")
}

fn status_bytes(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// CPU seconds used so far by process `pid` (user + system, Linux `/proc`), or by this
/// process for `None`.
#[allow(dead_code)] // not every bench reads it
pub fn cpu_seconds(pid: Option<u32>) -> f64 {
    let path = pid.map_or("/proc/self/stat".to_owned(), |p| format!("/proc/{p}/stat"));
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // The fields after the command (which may hold spaces) start after its `)`.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat(5): 11 and 12 after the state.
    (ticks(11) + ticks(12)) / 100.0
}
