//! The binary tried as an adversary would (issue 20, part 4): files that never end given
//! as a token or configuration file, an agent counting past 2^64, database URLs of other
//! schemes with a password in them, another site's name in `Host` (DNS rebinding), a flood
//! of over-long URIs, and the agent's fault switches. Real processes over HTTP on
//! 127.0.0.1.

use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use warp::Filter;

use crate::support::{
    get_json, postgres_url, recording, replay_agent, simulate, start, start_logged, wait_for,
    FreshDb,
};

/// An agent that never answers (the discard port).
const DEAD: &str = "http://127.0.0.1:9";

/// `factorydash ARGS` run to its exit (at most `within`): its status, stdout and stderr.
async fn run_to_exit(args: &[&str], within: Duration) -> (std::process::ExitStatus, String) {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_factorydash"))
        .args(args)
        .env("FACTORYDASH_STORE", "memory")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the factorydash binary starts");
    let out = tokio::time::timeout(within, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("factorydash {args:?} did not exit within {within:?}"))
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status, text)
}

/// A file of `bytes` bytes of `line`s in a directory of its own.
fn big_file(name: &str, line: &str, bytes: usize) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("fd-hardening-{}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, line.repeat(bytes / line.len() + 1)).unwrap();
    path
}

/// `--token-file` and `--config` read at most their limit (64 KiB, 1 MiB): `/dev/zero`
/// (which grew the process to 8.6 GB) and a large file are refused at once, with the file
/// and the limit named.
#[tokio::test(flavor = "multi_thread")]
async fn token_and_config_files_are_read_up_to_a_limit() {
    let tokens = big_file("tokens", "viewer:0123456789abcdef0123\n", 1 << 20);
    let config = big_file(
        "config.toml",
        "# a comment line of a configuration file\n",
        8 << 20,
    );
    let cases: [(&[&str], &str); 4] = [
        (
            &["serve", "--token-file", "/dev/zero"],
            "the token file /dev/zero is larger than 64 KiB",
        ),
        (
            &["serve", "--token-file", tokens.to_str().unwrap()],
            "is larger than 64 KiB",
        ),
        (
            &["serve", "--config", "/dev/zero"],
            "the configuration file /dev/zero is larger than 1024 KiB",
        ),
        (
            &["--config", config.to_str().unwrap()],
            "is larger than 1024 KiB",
        ),
    ];
    for (args, expected) in cases {
        let mut args = args.to_vec();
        args.extend(["--agent", DEAD, "--listen", "127.0.0.1:0"]);
        let (status, out) = run_to_exit(&args, Duration::from_secs(20)).await;
        assert!(!status.success(), "{args:?}: {status}\n{out}");
        assert!(out.contains(expected), "{args:?}: {out}");
    }
    let _ = std::fs::remove_dir_all(tokens.parent().unwrap());
    let _ = std::fs::remove_dir_all(config.parent().unwrap());
}

/// An agent at 127.0.0.1 that answers `/probe` with the bundled recording's device model
/// and every other request with `streams`; it counts the `/sample` requests.
async fn agent_answering(streams: String) -> (String, Arc<AtomicU64>) {
    let probe =
        factorydash_mtconnect::recording::read_maybe_gzipped(&recording().join("probe.xml.gz"))
            .unwrap();
    let samples = Arc::new(AtomicU64::new(0));
    let counted = samples.clone();
    let xml = |body: Vec<u8>| {
        warp::http::Response::builder()
            .header("content-type", "text/xml")
            .body(body)
            .unwrap()
    };
    let routes = warp::path!("probe")
        .map(move || xml(probe.clone()))
        .or(warp::path!("sample").map(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            xml(streams.clone().into_bytes())
        }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(warp::serve(routes).incoming(listener).run());
    (format!("http://{address}"), samples)
}

/// A Streams document of GFAgie01 whose `name` (a Header attribute, or `sequence` of its
/// one observation) is 2^64.
fn streams_beyond_2_pow_64(name: &str) -> String {
    let mut attributes = [
        ("nextSequence", "3"),
        ("firstSequence", "1"),
        ("lastSequence", "2"),
        ("sequence", "2"),
    ];
    for (n, v) in &mut attributes {
        if *n == name {
            *v = "18446744073709551616";
        }
    }
    let [next, first, last, sequence] = attributes.map(|(_, v)| v);
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<MTConnectStreams xmlns="urn:mtconnect.org:MTConnectStreams:1.3"><Header creationTime="2026-12-05T10:00:00Z" sender="hostile" instanceId="7" version="1.3.0" bufferSize="1024" nextSequence="{next}" firstSequence="{first}" lastSequence="{last}"/><Streams><DeviceStream name="GFAgie01" uuid="mtc_adapter001"><ComponentStream component="Device" name="GFAgie01" componentId="dev"><Events><Availability dataItemId="avail" timestamp="2026-12-05T10:00:00Z" sequence="{sequence}">AVAILABLE</Availability></Events></ComponentStream></DeviceStream></Streams></MTConnectStreams>"#
    )
}

/// Sequences beyond 2^64 (in the Header or an observation) used to vanish as parse
/// problems: the answer looked empty, the source stayed "polling" in good health and was
/// asked again every poll interval. Now it is the answer's error, shown in `/healthz`,
/// and the requests back off.
#[tokio::test(flavor = "multi_thread")]
async fn sequences_beyond_2_pow_64_are_an_error_and_backed_off() {
    for name in ["nextSequence", "lastSequence", "sequence"] {
        let (agent, samples) = agent_answering(streams_beyond_2_pow_64(name)).await;
        let serve = start(&[
            "serve",
            "--agent",
            &agent,
            "--listen",
            "127.0.0.1:0",
            "--no-stream",
            "--poll-interval",
            "100ms",
        ])
        .await;
        let health = wait_for(&serve.base, Duration::from_secs(20), name, |h| {
            h["sources"][0]["lastError"].as_str().is_some_and(|e| {
                e.contains("18446744073709551616") && e.contains("beyond 2^64 - 1")
            })
        })
        .await;
        assert_eq!(
            health["sources"][0]["state"], "backing_off",
            "{name}: {health}"
        );
        let before = samples.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(10)).await;
        let during = samples.load(Ordering::SeqCst) - before;
        eprintln!("{name} at 2^64: {during} /sample requests in 10 s");
        // Polled every 100 ms that would be about 100.
        assert!(during <= 8, "{name}: {during} requests in 10 s");
        let (_, health) = get_json(&format!("{}/healthz", serve.base)).await;
        assert_eq!(health["observations"].as_u64(), Some(0), "{health}");
    }
}

/// Database URLs of other schemes, or with credentials where none belong, are refused at
/// start with a clear message that never shows the password; a `POSTGRES://` URL (schemes
/// are case-insensitive) is taken, and its password is in no log line either.
#[tokio::test(flavor = "multi_thread")]
async fn database_urls_are_refused_or_taken_without_showing_their_password() {
    const SECRET: &str = "S3cretPassw0rd";
    for url in [
        format!("mysql://u:{SECRET}@h/db"),
        format!("sqlite://u:{SECRET}@h/db"),
        format!("host=h user=u password={SECRET}"),
        format!("host=h user=u password = '{SECRET} x'"),
    ] {
        let (status, out) = run_to_exit(
            &[
                "serve",
                "--database-url",
                &url,
                "--agent",
                DEAD,
                "--listen",
                "127.0.0.1:0",
            ],
            Duration::from_secs(20),
        )
        .await;
        assert!(!status.success(), "{url}: {status}\n{out}");
        assert!(out.contains("--database-url"), "{url}: {out}");
        assert!(!out.contains(SECRET), "{url}: {out}");
    }
    // A value clap refuses is quoted in its message: redacted too.
    let agent = format!("ftp://u:{SECRET}@h/");
    let (status, out) = run_to_exit(&["serve", "--agent", &agent], Duration::from_secs(20)).await;
    assert!(!status.success(), "{status}\n{out}");
    assert!(out.contains("ftp://u:***@h/"), "{out}");
    assert!(!out.contains(SECRET), "{out}");

    let Some(server) = postgres_url("postgres_upper_case") else {
        return;
    };
    let db = FreshDb::create(&server, "upper_case").await;
    let url = db
        .url
        .replacen(
            "postgres://postgres@",
            &format!("POSTGRES://postgres:{SECRET}@"),
            1,
        )
        .replacen(
            "postgresql://postgres@",
            &format!("POSTGRES://postgres:{SECRET}@"),
            1,
        );
    assert!(url.contains(SECRET), "{url}");
    let (serve, log) = start_logged(
        &[
            "serve",
            "--database-url",
            &url,
            "--agent",
            DEAD,
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    )
    .await;
    let health = wait_for(&serve.base, Duration::from_secs(30), "the store", |h| {
        h["sources"][0]["lastError"].is_string()
    })
    .await;
    assert_eq!(health["store"], "postgresql", "{health}");
    drop(serve);
    let log = log.lock().unwrap().clone();
    assert!(log.contains("store=postgresql"), "{log}");
    assert!(!log.contains(SECRET), "{log}");
    db.drop().await;
}

/// The status and text of the answer to `request_line` (`GET /x`) written as is, with
/// `host` as its `Host` header and `headers` (lines ending in CRLF) over HTTP/1.1, or
/// without any over HTTP/1.0 (`None`).
async fn raw(base: &str, host: Option<&str>, request_line: &str, headers: &str) -> (u16, String) {
    let address = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = match host {
        Some(host) => {
            format!("{request_line} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{headers}\r\n")
        }
        None => format!("{request_line} HTTP/1.0\r\n\r\n"),
    };
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    // An upgraded connection stays open: what came within a second.
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    (status, text)
}

/// The headers of a WebSocket upgrade (RFC 6455 section 4.1).
const UPGRADE: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

/// DNS rebinding: an open dashboard (no tokens) answers nothing, WebSocket included, for a
/// `Host` that is not its own: 421 naming the flag. Addresses, `localhost`, names given
/// with `--allowed-host` (or in the configuration file, or `FACTORYDASH_ALLOWED_HOSTS`)
/// and a request without `Host` are served.
#[tokio::test(flavor = "multi_thread")]
async fn a_foreign_host_is_refused_before_any_route() {
    let dir = std::env::temp_dir().join(format!("fd-hosts-{}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("factorydash.toml");
    std::fs::write(&config, "allowed-hosts = [\"from-file.plant.example\"]\n").unwrap();
    let by_flag = start(&[
        "serve",
        "--agent",
        DEAD,
        "--listen",
        "127.0.0.1:0",
        "--allowed-host",
        "dash.plant.example",
    ])
    .await;
    let by_file = start(&[
        "serve",
        "--config",
        config.to_str().unwrap(),
        "--agent",
        DEAD,
        "--listen",
        "127.0.0.1:0",
    ])
    .await;
    let (by_env, _) = start_logged(
        &["serve", "--agent", DEAD, "--listen", "127.0.0.1:0"],
        &[(
            "FACTORYDASH_ALLOWED_HOSTS",
            "a.example,from-env.plant.example",
        )],
    )
    .await;
    for (base, name) in [
        (&by_flag.base, "dash.plant.example"),
        (&by_file.base, "from-file.plant.example"),
        (&by_env.base, "from-env.plant.example"),
    ] {
        let port = base.rsplit(':').next().unwrap();
        for path in ["/", "/api/devices", "/api/latest", "/healthz", "/metrics"] {
            let head = format!("GET {path}");
            let head = head.as_str();
            for evil in [
                "evil.example",
                &format!("evil.example:{port}"),
                "127.0.0.1.evil.example",
            ] {
                let (status, body) = raw(base, Some(evil), head, "").await;
                assert_eq!(status, 421, "{path} for {evil}: {body}");
                assert!(body.contains("--allowed-host"), "{body}");
            }
            for good in [
                format!("127.0.0.1:{port}"),
                format!("localhost:{port}"),
                format!("[::1]:{port}"),
                format!("{name}:{port}"),
                name.to_uppercase(),
            ] {
                let (status, body) = raw(base, Some(&good), head, "").await;
                assert_eq!(status, 200, "{path} for {good}: {body}");
            }
            let (status, body) = raw(base, None, head, "").await;
            assert_eq!(status, 200, "{path} without Host: {body}");
        }
        let (status, body) = raw(base, Some("evil.example"), "GET /ws", UPGRADE).await;
        assert_eq!(status, 421, "/ws for evil.example: {body}");
        let host = format!("{name}:{port}");
        let (status, body) = raw(base, Some(&host), "GET /ws", UPGRADE).await;
        assert_eq!(status, 101, "/ws for {name}: {body}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The lines of `log` at WARN or ERROR.
fn loud_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect()
}

/// Anyone who reaches the port, before any token is asked for, used to write an ERROR line
/// per request with a URI over hyper's 64 KiB limit. 200 such requests (and 200 of 10 KB)
/// now cost at most one WARN line.
#[tokio::test(flavor = "multi_thread")]
async fn over_long_uris_cannot_flood_the_log() {
    let (serve, log) = start_logged(
        &[
            "serve",
            "--replay",
            recording().to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--token",
            "viewer:0123456789abcdef0123",
        ],
        &[],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = log.lock().unwrap().len();
    let port = serve.base.rsplit(':').next().unwrap().to_owned();
    let host = format!("127.0.0.1:{port}");
    for (length, expected) in [(70 << 10, 414), (10 << 10, 401)] {
        for _ in 0..200 {
            let line = format!("GET /{}", "a".repeat(length));
            let (status, _) = raw(&serve.base, Some(&host), &line, "").await;
            assert_eq!(status, expected, "a URI of {length} bytes");
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let log = log.lock().unwrap()[before..].to_owned();
    let loud = loud_lines(&log);
    eprintln!(
        "{} WARN/ERROR lines for 400 long URIs: {loud:?}",
        loud.len()
    );
    assert!(loud.len() <= 1, "{loud:#?}");
    assert!(loud.iter().all(|l| l.len() < 1000), "{loud:#?}");
}

/// The fault switches take POST only (a GET, which any link or crawler sends, is a 405),
/// never from a page in a browser (any `Origin` or `Sec-Fetch-Site`: 403), and on an
/// address beyond loopback they are off (403) unless `--faults` is given, with a
/// warning then.
#[tokio::test(flavor = "multi_thread")]
async fn fault_switches_take_post_and_are_off_beyond_loopback() {
    let client = reqwest::Client::new();
    let local = replay_agent("1").await;
    let url = format!("{}/_factorydash/faults?stall=true", local.base);
    let r = client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "POST");
    // What a page of another origin sends with `fetch(url, {method: "POST", mode:
    // "no-cors"})`, or a page whose name was rebound to 127.0.0.1: refused.
    for (name, value) in [
        ("origin", "http://evil.example"),
        ("origin", "null"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-origin"),
    ] {
        let r = client.post(&url).header(name, value).send().await.unwrap();
        assert_eq!(r.status(), 403, "{name}: {value}");
        assert!(r.text().await.unwrap().contains("not for pages"));
    }
    let r = client.post(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let state: serde_json::Value = r.json().await.unwrap();
    assert_eq!(state["stall"], true, "{state}");

    let dir = recording();
    let recording = dir.to_str().unwrap();
    let (open, _) = start_logged(&["replay", recording, "--listen", "0.0.0.0:0"], &[]).await;
    let base = open.base.replace("0.0.0.0", "127.0.0.1");
    let r = client
        .post(format!("{base}/_factorydash/faults?stall=true"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("--faults"));
    let r = client.get(format!("{base}/probe")).send().await.unwrap();
    assert_eq!(r.status(), 200, "the agent itself answers");

    let (asked, log) = start_logged(
        &["replay", recording, "--listen", "0.0.0.0:0", "--faults"],
        &[],
    )
    .await;
    let base = asked.base.replace("0.0.0.0", "127.0.0.1");
    let r = client
        .post(format!("{base}/_factorydash/faults?stall=true"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let log = log.lock().unwrap().clone();
    assert!(log.contains("anyone who reaches"), "{log}");

    // The simulator's agents likewise.
    let sim = simulate(&["--agents", "2", "--machines-per-agent", "1"]).await;
    let url = format!("{}/agent-02/_factorydash/faults?slow_ms=1", sim.base);
    assert_eq!(client.get(&url).send().await.unwrap().status(), 405);
    assert_eq!(client.post(&url).send().await.unwrap().status(), 200);
}
