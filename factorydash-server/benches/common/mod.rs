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
