//! Running the binary and talking to it.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The bundled NIST GFAgie01 recording.
pub fn recording() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../recordings/nist-gfagie01-2016-05-02")
}

/// `factorydash serve --replay DIR --speed SPEED` on a free port, with the in-memory store.
pub async fn serve_replay(dir: &std::path::Path, speed: &str) -> Running {
    start(&[
        "serve",
        "--replay",
        dir.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--speed",
        speed,
    ])
    .await
}

/// Waits until the replay served at `base` has been played to its end.
pub async fn replay_finished(base: &str) {
    wait_for(base, Duration::from_secs(120), "the whole replay", |h| {
        h["sources"][0]["state"] == "finished"
    })
    .await;
}

/// The body of `GET url` as text (any status).
pub async fn get_text(url: impl reqwest::IntoUrl) -> String {
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

/// A running `factorydash`, killed when dropped.
pub struct Running {
    _child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
}

impl Running {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self._child.id().expect("running")
    }

    /// Sends SIGTERM (what systemd, Docker and Kubernetes send) and waits for the exit, at
    /// most `within`.
    pub async fn terminate(mut self, within: Duration) -> std::process::ExitStatus {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        tokio::time::timeout(within, self._child.wait())
            .await
            .unwrap_or_else(|_| panic!("no exit within {within:?} of SIGTERM"))
            .unwrap()
    }

    /// The process's resident memory, in bytes (`VmRSS` of `/proc/PID/status`).
    pub fn rss(&self) -> u64 {
        rss_of(self.pid())
    }
}

/// The resident memory of process `pid`, in bytes (`VmRSS` of `/proc/PID/status`).
pub fn rss_of(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib * 1024
}

/// Starts `factorydash replay` of the bundled NIST recording on a free port, at `speed`.
pub async fn replay_agent(speed: &str) -> Running {
    let dir = recording();
    start(&[
        "replay",
        dir.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--speed",
        speed,
    ])
    .await
}

/// `FACTORYDASH_STORE=memory` unless `args` name a store or a database: `serve`'s
/// default store is an SQLite file in `./factorydash-data`, which tests running at once
/// must not share (the second would be refused), so they keep the memory store of old.
fn memory_unless_a_database(args: &[&str]) -> Option<(&'static str, &'static str)> {
    let named = args.iter().any(|a| {
        ["--database-url", "--store", "--data-dir"].contains(&a.split('=').next().unwrap_or(a))
    });
    (!named).then_some(("FACTORYDASH_STORE", "memory"))
}

/// Starts `factorydash ARGS` and waits for the address it prints.
pub async fn start(args: &[&str]) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_factorydash"))
        .args(args)
        .envs(memory_unless_a_database(args))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the factorydash binary starts");
    let base = address(&mut child, String::new).await;
    Running {
        _child: child,
        base,
    }
}

/// Starts `factorydash simulate --listen 127.0.0.1:0 ARGS`.
pub async fn simulate(args: &[&str]) -> Running {
    let mut all = vec!["simulate", "--listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    start(&all).await
}

/// The base URLs of the simulator `sim`'s agents 1 to `n` (`…/agent-01`, `…/agent-02`, …).
pub fn simulated_agents(sim: &Running, n: usize) -> Vec<String> {
    (1..=n)
        .map(|i| format!("{}/agent-{i:02}", sim.base))
        .collect()
}

/// Starts `serve` on 127.0.0.1 following `agents`, asking every 100 ms (polling and
/// streaming), with `extra` arguments after those.
pub async fn serve_following(agents: &[String], extra: &[&str]) -> Running {
    let agents = agents.join(",");
    let mut all = vec![
        "serve",
        "--agent",
        &agents,
        "--listen",
        "127.0.0.1:0",
        "--poll-interval",
        "100ms",
        "--interval",
        "100ms",
    ];
    all.extend_from_slice(extra);
    start(&all).await
}

/// Starts `serve --config FILE --listen 127.0.0.1:0`, FILE a new file in a directory of
/// its own holding `text`, removed once `serve` has started (it reads the file only then).
pub async fn serve_with_config(text: &str) -> Running {
    let dir = std::env::temp_dir().join(format!("fd-config-{}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("factorydash.toml");
    std::fs::write(&file, text).unwrap();
    let running = start(&[
        "serve",
        "--config",
        file.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ])
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    running
}

/// The address `child` prints first on stdout (`…http://HOST:PORT/`, or `https://` with
/// TLS), waited for at most 60 s; the rest of stdout is drained. `log` tells what the
/// process said when it printed none.
async fn address(child: &mut Child, log: impl Fn() -> String) -> String {
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("factorydash prints its address within 60 s")
        .unwrap()
        .unwrap_or_else(|| panic!("no address on stdout: {}", log()));
    let base = ["http://", "https://"]
        .iter()
        .find_map(|scheme| {
            let rest = line.split(scheme).nth(1)?;
            Some(format!("{scheme}{}", rest.trim_end_matches('/')))
        })
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    base
}

pub async fn get_json(url: &str) -> (u16, Value) {
    let r = reqwest::get(url)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// Polls `/healthz` until `done` holds for it, or panics after `limit`.
pub async fn wait_for(
    base: &str,
    limit: Duration,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        let (_, health) = get_json(&format!("{base}/healthz")).await;
        if done(&health) {
            return health;
        }
        assert!(
            start.elapsed() < limit,
            "{what} not reached in {limit:?}: {health}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every stored observation as (sequence, dataItemId, value, type), read back through
/// `/api/devices` and `/api/series`, and the number of rows read (to catch duplicates).
pub async fn stored(base: &str) -> (BTreeSet<(u64, String, String, String)>, usize) {
    let (_, latest) = get_json(&format!("{base}/api/latest?limit=1000")).await;
    let mut set = BTreeSet::new();
    let mut rows = 0;
    for item in latest["items"].as_array().unwrap() {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("device", item["device"].as_str().unwrap())
            .append_pair("agent", item["agent"].as_str().unwrap())
            .append_pair("dataItemId", item["dataItemId"].as_str().unwrap())
            .finish();
        let url = format!(
            "{base}/api/series?{query}&from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z&limit=100000"
        );
        let (status, series) = get_json(&url).await;
        assert_eq!(status, 200, "{series}");
        for o in series["series"][0]["items"].as_array().unwrap() {
            rows += 1;
            set.insert((
                o["sequence"].as_u64().unwrap(),
                o["dataItemId"].as_str().unwrap().to_owned(),
                o["value"].to_string(),
                o["type"].as_str().unwrap().to_owned(),
            ));
        }
    }
    (set, rows)
}

/// The PostgreSQL server for tests, or `None` (with a note) when none is configured and
/// none is required.
pub fn postgres_url(test: &str) -> Option<String> {
    match std::env::var("FACTORYDASH_TEST_DATABASE_URL") {
        Ok(url) => Some(url),
        Err(_) => {
            assert!(
                std::env::var("FACTORYDASH_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "FACTORYDASH_REQUIRE_POSTGRES=1 but FACTORYDASH_TEST_DATABASE_URL is not set"
            );
            eprintln!("SKIPPED: {test} on PostgreSQL: set FACTORYDASH_TEST_DATABASE_URL to run it");
            None
        }
    }
}

/// A fresh database on the test server, dropped by [`FreshDb::drop`].
pub struct FreshDb {
    admin: tokio_postgres::Client,
    pub name: String,
    pub url: String,
}

impl FreshDb {
    pub async fn create(server_url: &str, test: &str) -> FreshDb {
        let config: tokio_postgres::Config = server_url.parse().unwrap();
        let (admin, conn) = config
            .connect(tokio_postgres::NoTls)
            .await
            .expect("PostgreSQL is reachable");
        tokio::spawn(conn);
        let name = format!("fdtest_{test}_{}", rand::random::<u32>());
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let mut url = reqwest::Url::parse(server_url).unwrap();
        url.set_path(&name);
        FreshDb {
            admin,
            name,
            url: url.to_string(),
        }
    }

    pub async fn connect(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
    }

    /// Ends every session on this database (`pg_terminate_backend`); returns how many.
    pub async fn terminate_connections(&self) -> i64 {
        self.admin
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1",
                &[&self.name],
            )
            .await
            .unwrap()
            .get(0)
    }

    /// Lets new sessions in, or not (`ALTER DATABASE … ALLOW_CONNECTIONS`).
    pub async fn allow_connections(&self, allow: bool) {
        self.admin
            .batch_execute(&format!(
                "ALTER DATABASE {} ALLOW_CONNECTIONS {allow}",
                self.name
            ))
            .await
            .unwrap();
    }

    /// Asserts that `observations` holds sequences 1 to `total`, each once.
    pub async fn assert_every_observation_once(&self, total: u64) {
        assert_every_observation_once(&self.url, total).await;
    }

    pub async fn drop(self) {
        self.admin
            .batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", self.name))
            .await
            .unwrap();
    }
}

/// Asserts that the `observations` of the database at `url` holds sequences 1 to `total`,
/// each once.
pub async fn assert_every_observation_once(url: &str, total: u64) {
    {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        let row = client
            .query_one(
                "SELECT count(*), count(DISTINCT sequence), min(sequence), max(sequence) FROM observations",
                &[],
            )
            .await
            .unwrap();
        let (n, distinct, min, max): (i64, i64, i64, i64) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        assert_eq!(
            (n, distinct, min, max),
            (total as i64, total as i64, 1, total as i64),
            "every observation once"
        );
    }
}

/// A PostgreSQL server of one test's own, so that the test may stop it and start it again:
/// `initdb` into a temporary directory (as the `postgres` user when the tests run as root,
/// which PostgreSQL refuses to run as), listening on a free port of 127.0.0.1. Stopped and
/// removed when dropped.
pub struct PrivateServer {
    dir: std::path::PathBuf,
    bin: std::path::PathBuf,
    port: u16,
    /// `postgres://postgres@127.0.0.1:PORT/postgres`
    pub url: String,
}

impl PrivateServer {
    /// Creates and starts the server, or `None` (with a note) when PostgreSQL's programs
    /// are not installed and `FACTORYDASH_REQUIRE_POSTGRES` is not `1`.
    pub fn start(test: &str) -> Option<PrivateServer> {
        let bin = std::process::Command::new("pg_config")
            .arg("--bindir")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| std::path::PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
            .filter(|b| b.join("initdb").exists() && b.join("pg_ctl").exists());
        let Some(bin) = bin else {
            assert!(
                std::env::var("FACTORYDASH_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "FACTORYDASH_REQUIRE_POSTGRES=1 but initdb and pg_ctl are not found (pg_config --bindir)"
            );
            eprintln!("SKIPPED: {test}: PostgreSQL's initdb and pg_ctl are not installed");
            return None;
        };
        let dir =
            std::env::temp_dir().join(format!("factorydash-pg-{test}-{}", rand::random::<u32>()));
        std::fs::create_dir_all(&dir).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = PrivateServer {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            dir,
            bin,
            port,
        };
        if Self::as_root() {
            let status = std::process::Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&server.dir)
                .status()
                .unwrap();
            assert!(status.success(), "chown the server's directory to postgres");
        }
        let data = server.dir.join("data");
        server.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        server.resume();
        Some(server)
    }

    fn as_root() -> bool {
        std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
    }

    /// Runs one of PostgreSQL's programs (as `postgres` when root); panics when it fails.
    fn run(&self, program: &str, args: &[&str]) {
        let path = self.bin.join(program);
        let output = if Self::as_root() {
            std::process::Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&path)
                .args(args)
                .output()
        } else {
            std::process::Command::new(&path).args(args).output()
        }
        .unwrap();
        assert!(
            output.status.success(),
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn pg_ctl(&self, action: &[&str]) {
        let data = self.dir.join("data");
        let log = self.dir.join("log");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let mut args = vec![
            "-D",
            data.to_str().unwrap(),
            "-l",
            log.to_str().unwrap(),
            "-w",
            "-o",
            &options,
        ];
        args.extend_from_slice(action);
        self.run("pg_ctl", &args);
    }

    /// Stops the server (`pg_ctl stop -m fast`: sessions are ended, nothing is accepted).
    pub fn stop(&self) {
        self.pg_ctl(&["-m", "fast", "stop"]);
    }

    /// Starts the server (again).
    pub fn resume(&self) {
        self.pg_ctl(&["start"]);
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let path = self.bin.join("pg_ctl");
        let mut command = if Self::as_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            std::process::Command::new(path)
        };
        let _ = command
            .args(["-D", data.to_str().unwrap(), "-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The environment variable that makes a missing browser fail the browser tests (`.ci/run`
/// sets it after installing Chromium).
pub const REQUIRE_BROWSER_VAR: &str = "FACTORYDASH_REQUIRE_BROWSER";

/// The DOM of `url` as headless Chromium has it after running the page's scripts for
/// `millis` of virtual time (`--dump-dom`), or `None` (with a note) when Chromium is not
/// installed and not required.
pub async fn browser_dom(url: &str, millis: u32) -> Option<String> {
    chromium(url, millis, &["--dump-dom"]).await
}

/// Saves a screenshot of `url` (1280×1400, after `millis` of virtual time) as
/// `target/browser-screenshots/NAME.png`, for people to review; `false` without Chromium.
pub async fn browser_screenshot(url: &str, millis: u32, name: &str) -> bool {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/browser-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{name}.png"));
    let shot = format!("--screenshot={}", file.display());
    if chromium(url, millis, &["--window-size=1280,1400", &shot])
        .await
        .is_none()
    {
        return false;
    }
    assert!(file.exists(), "{} was written", file.display());
    true
}

async fn chromium(url: &str, millis: u32, what: &[&str]) -> Option<String> {
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(chromium) = chromium else {
        assert!(
            std::env::var(REQUIRE_BROWSER_VAR).as_deref() != Ok("1"),
            "{REQUIRE_BROWSER_VAR}=1 but Chromium is not installed"
        );
        eprintln!("SKIPPED: the browser part of this test: install chromium to run it");
        return None;
    };
    let profile = std::env::temp_dir().join(format!("fd-chromium-{}", rand::random::<u32>()));
    // The flags of this machine's notes: no sandbox as root, and no background networking
    // (the machine has no internet).
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--virtual-time-budget={millis}"))
        .args(what)
        .arg(url)
        .output()
        .await
        .expect("chromium runs");
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

/// A headless Chromium driven over the W3C WebDriver protocol (Debian's `chromedriver`,
/// spoken to with reqwest): pages stay open in real time, scripts read the live DOM, and
/// elements are clicked as a person would. Ended when dropped.
pub struct Browser {
    driver: tokio::process::Child,
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT/session/ID`
    session: String,
    profile: std::path::PathBuf,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session, or `None` (with a note) when
    /// they are not installed and not required (`FACTORYDASH_REQUIRE_BROWSER`).
    pub async fn start() -> Option<Browser> {
        let installed = ["/usr/bin/chromium", "/usr/bin/chromedriver"]
            .iter()
            .all(|p| std::path::Path::new(p).exists());
        if !installed {
            assert!(
                std::env::var(REQUIRE_BROWSER_VAR).as_deref() != Ok("1"),
                "{REQUIRE_BROWSER_VAR}=1 but chromium or chromedriver is not installed"
            );
            eprintln!(
                "SKIPPED: the WebDriver part of this test: install chromium and chromium-driver"
            );
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let ready = http.get(format!("{base}/status")).send().await;
            if let Ok(r) = ready {
                let status: serde_json::Value = r.json().await.unwrap_or_default();
                if status["value"]["ready"] == true {
                    break;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "chromedriver never became ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = std::env::temp_dir().join(format!("fd-webdriver-{}", rand::random::<u32>()));
        let capabilities = serde_json::json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                    "--window-size=1280,1400",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        }}});
        let answer: serde_json::Value = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {answer}"));
        Some(Browser {
            driver,
            http,
            session: format!("{base}/session/{id}"),
            profile,
        })
    }

    async fn command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: serde_json::Value,
    ) -> serde_json::Value {
        let request = self.http.request(method, format!("{}{path}", self.session));
        let request = if body.is_null() {
            request
        } else {
            request.json(&body)
        };
        let answer: serde_json::Value = request.send().await.unwrap().json().await.unwrap();
        assert!(
            answer["value"]["error"].is_null(),
            "WebDriver {path}: {answer}"
        );
        answer["value"].clone()
    }

    /// Runs a WebDriver command; its value, or the error WebDriver answered with.
    async fn try_command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: serde_json::Value,
    ) -> Result<serde_json::Value, serde_json::Value> {
        let request = self.http.request(method, format!("{}{path}", self.session));
        let request = if body.is_null() {
            request
        } else {
            request.json(&body)
        };
        let answer: serde_json::Value = request.send().await.unwrap().json().await.unwrap();
        if answer["value"]["error"].is_null() {
            Ok(answer["value"].clone())
        } else {
            Err(answer)
        }
    }

    /// Opens `url` and waits for it to load.
    pub async fn open(&self, url: &str) {
        self.command(
            reqwest::Method::POST,
            "/url",
            serde_json::json!({ "url": url }),
        )
        .await;
    }

    /// The value of a script's `return` (the script's body, run in the page).
    pub async fn eval(&self, script: &str) -> serde_json::Value {
        self.command(
            reqwest::Method::POST,
            "/execute/sync",
            serde_json::json!({ "script": script, "args": [] }),
        )
        .await
    }

    /// Waits (in real time, up to `timeout`) until `script` returns something truthy;
    /// returns it.
    pub async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        script: &str,
    ) -> serde_json::Value {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            // A script that throws (an element it reads re-rendered away by a live update
            // at that moment) counts as not yet.
            let value = self
                .try_command(
                    reqwest::Method::POST,
                    "/execute/sync",
                    serde_json::json!({ "script": script, "args": [] }),
                )
                .await;
            let truthy = value.as_ref().is_ok_and(|value| {
                !(value.is_null()
                    || value == false
                    || value == 0
                    || value.as_str() == Some("")
                    || value.as_array().is_some_and(|a| a.is_empty()))
            });
            if truthy {
                return value.unwrap();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "waited {timeout:?} for {what}; last: {value:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks the element that `css` selects, as a pointer would.
    ///
    /// A live page re-renders: an element found and replaced before the click lands is
    /// found again (up to five times).
    pub async fn click(&self, css: &str) {
        for attempt in 1.. {
            let id = self.element(css).await;
            let clicked = self
                .try_command(
                    reqwest::Method::POST,
                    &format!("/element/{id}/click"),
                    serde_json::json!({}),
                )
                .await;
            match clicked {
                Ok(_) => return,
                Err(answer)
                    if answer["value"]["error"] == "stale element reference" && attempt < 5 =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(answer) => panic!("WebDriver click on {css}: {answer}"),
            }
        }
    }

    /// Sets the size of the viewport, in CSS pixels: the window's, made taller by what
    /// the browser draws above the page (headless Chromium draws nothing beside it).
    pub async fn resize(&self, width: u64, height: u64) {
        let rect = |h: u64| serde_json::json!({ "width": width, "height": h });
        self.command(reqwest::Method::POST, "/window/rect", rect(height))
            .await;
        let inner = self.eval("return window.innerHeight").await;
        let above = height.saturating_sub(inner.as_u64().unwrap_or(height));
        if above > 0 {
            self.command(reqwest::Method::POST, "/window/rect", rect(height + above))
                .await;
        }
    }

    /// Types `text` into the element that `css` selects (after what it holds).
    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            serde_json::json!({ "text": text }),
        )
        .await;
    }

    /// The text of the open `alert`/`confirm` dialog.
    pub async fn dialog_text(&self) -> String {
        let text = self
            .command(reqwest::Method::GET, "/alert/text", serde_json::Value::Null)
            .await;
        text.as_str().unwrap_or_default().to_owned()
    }

    /// Answers the open `confirm` dialog: OK (`accept`) or Cancel.
    pub async fn answer_dialog(&self, accept: bool) {
        let path = if accept {
            "/alert/accept"
        } else {
            "/alert/dismiss"
        };
        self.command(reqwest::Method::POST, path, serde_json::json!({}))
            .await;
    }

    /// Types `text` into the open `prompt` dialog and accepts it.
    pub async fn answer_prompt(&self, text: &str) {
        self.command(
            reqwest::Method::POST,
            "/alert/text",
            serde_json::json!({ "text": text }),
        )
        .await;
        self.answer_dialog(true).await;
    }

    /// Saves what the window shows as `target/browser-screenshots/NAME.png`; returns its
    /// path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self
            .command(reqwest::Method::GET, "/screenshot", serde_json::Value::Null)
            .await;
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/browser-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(format!("{name}.png"));
        std::fs::write(&file, base64_decode(png.as_str().expect("base64 PNG"))).unwrap();
        file
    }

    /// The WebDriver id of the element that `css` selects.
    async fn element(&self, css: &str) -> String {
        let element = self
            .command(
                reqwest::Method::POST,
                "/element",
                serde_json::json!({ "using": "css selector", "value": css }),
            )
            .await;
        element
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(|v| v.as_str())
            .unwrap_or_else(|| panic!("no element {css}: {element}"))
            .to_owned()
    }

    /// Ends the session and the driver.
    pub async fn quit(mut self) {
        let _ = self.http.delete(&self.session).send().await;
        let _ = self.driver.kill().await;
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

impl Drop for Browser {
    /// A test that fails before [`Browser::quit`] leaves no Chromium behind: the driver is
    /// killed (`kill_on_drop`), and the browsers it started, which would outlive it, are
    /// found by their profile directory (unique to this session) and killed.
    fn drop(&mut self) {
        if self.profile.exists() {
            // `--`: the pattern begins with dashes, which pkill would take as an option.
            let _ = std::process::Command::new("pkill")
                .args(["-f", "--"])
                .arg(format!("--user-data-dir={}", self.profile.display()))
                .status();
            let _ = std::fs::remove_dir_all(&self.profile);
        }
    }
}

/// What a running `factorydash` wrote on standard error so far.
pub type Log = std::sync::Arc<std::sync::Mutex<String>>;

/// Starts `factorydash ARGS` with `env` added to its environment and `RUST_LOG=info`, and
/// keeps what it logs on standard error (as well as passing it on to the test's).
pub async fn start_logged(args: &[&str], env: &[(&str, &str)]) -> (Running, Log) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_factorydash"))
        .args(args)
        .envs(memory_unless_a_database(args))
        .envs(env.iter().copied())
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the factorydash binary starts");
    let log = Log::default();
    let mut errors = BufReader::new(child.stderr.take().unwrap()).lines();
    let keep = log.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = errors.next_line().await {
            eprintln!("{line}");
            let mut log = keep.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    let base = address(&mut child, || log.lock().unwrap().clone()).await;
    (
        Running {
            _child: child,
            base,
        },
        log,
    )
}

/// Standard base64 (RFC 4648 section 4, padded), as WebDriver sends screenshots.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let digits: Vec<u8> = text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .map(value)
        .collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, d)| n | u32::from(*d) << (18 - 6 * i));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}
