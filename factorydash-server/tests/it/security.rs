//! Changes come only from this server's own pages and from admins: a page of another
//! origin cannot change anything (tried in headless Chromium), the `?token=` redirect stays
//! on this server, credentials in agent URLs and tokens are never shown, `/metrics` cannot
//! be injected into, every answer carries the security headers, and a NUL character in a
//! query is a 400.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use warp::Filter;

use crate::support::{start, start_logged, wait_for, Browser};

const VIEWER: &str = "viewer-0123456789abcdef";
const ADMIN: &str = "admin-0123456789abcdef";
/// An agent that never answers (the discard port).
const DEAD: &str = "http://127.0.0.1:9";

/// `factorydash serve` of the dead agent with the in-memory store, and `extra` arguments.
async fn serve(extra: &[&str]) -> crate::support::Running {
    let mut args = vec!["serve", "--agent", DEAD, "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    start(&args).await
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Status and JSON body of a request.
async fn answer(request: reqwest::RequestBuilder) -> (u16, Value) {
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The URLs of `GET /api/agents` and whether each is paused.
async fn agents(base: &str) -> Vec<(String, bool)> {
    let (status, list) = answer(
        client()
            .get(format!("{base}/api/agents"))
            .bearer_auth(ADMIN),
    )
    .await;
    assert_eq!(status, 200, "{list}");
    list.as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["url"].as_str().unwrap().to_owned(),
                a["paused"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// The head of the answer to a request written as is (no client normalises its path).
async fn raw_head(base: &str, request_line: &str) -> String {
    let address = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!("{request_line}\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    text.split("\r\n\r\n").next().unwrap().to_owned()
}

/// A page on another port of 127.0.0.1 that tries, once loaded, every way a page may
/// send a change to `target` without CORS: `fetch` in `no-cors` mode (with the
/// browser's cookies, with a JSON body, with headers the browser drops) and a form
/// posting JSON as `text/plain`; its title becomes `done` when all were sent.
async fn attacker(target: &str) -> String {
    let page = format!(
        r#"<!DOCTYPE html><title>attacker</title>
<iframe name="sink"></iframe>
<form id="form" method="post" enctype="text/plain" target="sink" action="{target}/api/agents"><input name='{{"url": "http://127.0.0.1:7/form", "x": "' value='"}}'></form>
<script>
(async () => {{
  const t = "{target}";
  const body = JSON.stringify({{ url: "http://127.0.0.1:7/fetch" }});
  await Promise.allSettled([
    fetch(t + "/api/agents", {{ method: "POST", mode: "no-cors", body }}),
    fetch(t + "/api/agents", {{ method: "POST", mode: "no-cors", credentials: "include", body,
      headers: {{ "Content-Type": "application/json", "Authorization": "Bearer {ADMIN}" }} }}),
    fetch(t + "/api/agents/pause?url=" + encodeURIComponent("{DEAD}"), {{ method: "POST", mode: "no-cors", credentials: "include" }}),
    fetch(t + "/api/agents?url=" + encodeURIComponent("{DEAD}"), {{ method: "DELETE", mode: "no-cors", credentials: "include" }}),
  ]);
  // Done when the form's answer is in the frame (or refused a frame), at most 3 s.
  const done = () => {{ document.title = "done"; }};
  document.querySelector("iframe").onload = done;
  setTimeout(done, 3000);
  document.getElementById("form").submit();
}})();
</script>"#
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let route = warp::any().map(move || warp::reply::html(page.clone()));
    tokio::spawn(warp::serve(route).incoming(listener).run());
    format!("http://{address}/")
}

/// Opens the attacker's page against `base` and waits until it has sent everything.
async fn attack(browser: &Browser, base: &str) {
    browser.open(&attacker(base).await).await;
    browser
        .wait_until(
            "the attacker's requests",
            Duration::from_secs(20),
            "return document.title === 'done'",
        )
        .await;
}

/// What a page of this server sends to `path` with `fetch` (same origin): its status.
async fn from_own_page(browser: &Browser, method: &str, path: &str, body: Option<Value>) -> u64 {
    let body = body.map_or("undefined".to_owned(), |b| format!("JSON.stringify({b})"));
    let status = browser
        .eval(&format!(
            r#"return fetch("{path}", {{ method: "{method}", headers: {{ "Content-Type": "application/json" }}, body: {body} }}).then((r) => r.status);"#
        ))
        .await;
    status
        .as_u64()
        .unwrap_or_else(|| panic!("{method} {path}: {status}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_of_another_origin_cannot_change_agents() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    // Open: no token at all.
    let open = serve(&[]).await;
    attack(&browser, &open.base).await;
    assert_eq!(
        agents(&open.base).await,
        [(DEAD.to_owned(), false)],
        "nothing added, paused or removed"
    );
    // The dashboard's own pages still change it (same origin).
    browser.open(&format!("{}/agents", open.base)).await;
    let added = json!({ "url": "http://127.0.0.1:7/own" });
    assert_eq!(
        from_own_page(&browser, "POST", "/api/agents", Some(added)).await,
        201
    );
    let pause = format!("/api/agents/pause?url={DEAD}");
    assert_eq!(from_own_page(&browser, "POST", &pause, None).await, 200);
    assert_eq!(
        agents(&open.base).await,
        [
            ("http://127.0.0.1:7/own".to_owned(), false),
            (DEAD.to_owned(), true)
        ]
    );

    // With tokens, and the admin's cookie in the browser (`/?token=` once): the cookie is
    // sent to the other port too (same site), and still nothing changes.
    let guarded = serve(&["--token", &format!("admin:{ADMIN}")]).await;
    browser
        .open(&format!("{}/?token={ADMIN}", guarded.base))
        .await;
    let own = browser.eval("return location.pathname").await;
    assert_eq!(own, "/", "the token's redirect");
    attack(&browser, &guarded.base).await;
    assert_eq!(
        agents(&guarded.base).await,
        [(DEAD.to_owned(), false)],
        "nothing added, paused or removed"
    );
    browser.open(&format!("{}/", guarded.base)).await;
    let added = json!({ "url": "http://127.0.0.1:7/own" });
    assert_eq!(
        from_own_page(&browser, "POST", "/api/agents", Some(added)).await,
        201
    );
    let remove = "/api/agents?url=http://127.0.0.1:7/own";
    assert_eq!(from_own_page(&browser, "DELETE", remove, None).await, 204);
    assert_eq!(agents(&guarded.base).await, [(DEAD.to_owned(), false)]);
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_need_a_same_origin_proof_or_a_bearer_token() {
    let fd = serve(&["--token", &format!("admin:{ADMIN}")]).await;
    let base = &fd.base;
    let port = base.rsplit(':').next().unwrap();
    let add = |url: &str| {
        client()
            .post(format!("{base}/api/agents"))
            .json(&json!({ "url": url }))
    };
    let cookie = format!("factorydash_token={ADMIN}");
    let refused = [
        // The browser's cookie without any proof of origin.
        add("http://127.0.0.1:7/a").header("cookie", &cookie),
        // Another port of the same host.
        add("http://127.0.0.1:7/b")
            .header("cookie", &cookie)
            .header("origin", "http://127.0.0.1:1"),
        add("http://127.0.0.1:7/c")
            .header("cookie", &cookie)
            .header("sec-fetch-site", "same-site"),
        add("http://127.0.0.1:7/d")
            .header("cookie", &cookie)
            .header("origin", "null"),
        // A browser's request is judged by its headers, bearer token or not.
        add("http://127.0.0.1:7/e")
            .bearer_auth(ADMIN)
            .header("sec-fetch-site", "cross-site"),
        client()
            .post(format!("{base}/api/agents/pause?url={DEAD}"))
            .header("cookie", &cookie),
        client()
            .delete(format!("{base}/api/agents?url={DEAD}"))
            .header("cookie", &cookie)
            .header("origin", "http://evil.example"),
    ];
    for request in refused {
        let (status, body) = answer(request).await;
        assert_eq!(status, 403, "{body}");
        assert!(
            body["error"].as_str().unwrap().contains("same-origin"),
            "{body}"
        );
    }
    // JSON only.
    let (status, body) = answer(
        client()
            .post(format!("{base}/api/agents"))
            .bearer_auth(ADMIN)
            .header("content-type", "text/plain")
            .body(r#"{"url": "http://127.0.0.1:7/f"}"#),
    )
    .await;
    assert_eq!(status, 415, "{body}");
    assert_eq!(agents(base).await, [(DEAD.to_owned(), false)]);

    // The page's own requests (proof by Origin or by Sec-Fetch-Site) and scripts.
    let ok = [
        add("http://127.0.0.1:7/g")
            .header("cookie", &cookie)
            .header("origin", format!("http://127.0.0.1:{port}")),
        add("http://127.0.0.1:7/h")
            .header("cookie", &cookie)
            .header("sec-fetch-site", "same-origin"),
        add("http://127.0.0.1:7/i").bearer_auth(ADMIN),
    ];
    for request in ok {
        let (status, body) = answer(request).await;
        assert_eq!(status, 201, "{body}");
    }
    assert_eq!(agents(base).await.len(), 4);

    // An open dashboard: scripts (no browser headers) still change it; browsers prove.
    let open = serve(&[]).await;
    let (status, body) = answer(
        client()
            .post(format!("{}/api/agents", open.base))
            .json(&json!({ "url": "http://127.0.0.1:7/j" })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = answer(
        client()
            .post(format!("{}/api/agents/pause?url={DEAD}", open.base))
            .header("origin", "http://127.0.0.1:1"),
    )
    .await;
    assert_eq!(status, 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_redirect_stays_on_this_server() {
    let fd = serve(&["--token", &format!("viewer:{VIEWER}")]).await;
    let base = &fd.base;
    for (path, location) in [
        (format!("//evil.example/path?token={VIEWER}"), "/"),
        (format!("/\\evil.example/path?token={VIEWER}"), "/"),
        (format!("//evil.example/path?token={VIEWER}&x=1"), "/?x=1"),
        (
            format!("/device?name=GFAgie01&token={VIEWER}"),
            "/device?name=GFAgie01",
        ),
        (format!("/?token={VIEWER}"), "/"),
    ] {
        let head = raw_head(base, &format!("GET {path} HTTP/1.1")).await;
        assert!(head.starts_with("HTTP/1.1 303"), "{path}: {head}");
        let to = head
            .lines()
            .find_map(|l| l.strip_prefix("location: "))
            .unwrap_or_else(|| panic!("{path}: {head}"));
        assert_eq!(to, location, "{path}");
    }
    // A link from another site does not sign the browser in (login CSRF); opened
    // directly, or from this server's pages, it does.
    for (site, signed_in) in [
        ("cross-site", false),
        ("same-site", false),
        ("none", true),
        ("same-origin", true),
    ] {
        let head = raw_head(
            base,
            &format!("GET /?token={VIEWER} HTTP/1.1\r\nSec-Fetch-Site: {site}"),
        )
        .await;
        assert_eq!(
            head.starts_with("HTTP/1.1 303"),
            signed_in,
            "{site}: {head}"
        );
        assert_eq!(head.contains("set-cookie"), signed_in, "{site}: {head}");
        if !signed_in {
            assert!(head.starts_with("HTTP/1.1 403"), "{site}: {head}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_in_agent_urls_and_tokens_are_never_shown() {
    const SECRET: &str = "s3cret-pass";
    let agent = format!("http://user:{SECRET}@127.0.0.1:9");
    // The agent is its URL without credentials: what is stored and shown.
    let shown = "http://127.0.0.1:9";
    let dir = std::env::temp_dir().join(format!("fd-tokens-{}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("tokens");
    std::fs::write(&file, format!("# admins\n\nadmin:{ADMIN}\n")).unwrap();
    let viewer = format!("viewer:{VIEWER}");
    let (fd, log) = start_logged(
        &[
            "serve",
            "--agent",
            &agent,
            "--listen",
            "127.0.0.1:0",
            "--token-file",
            file.to_str().unwrap(),
        ],
        &[("FACTORYDASH_TOKENS", &viewer)],
    )
    .await;
    let base = &fd.base;
    // No token on the command line, and both tokens work.
    let (status, _) = answer(
        client()
            .get(format!("{base}/api/devices"))
            .bearer_auth(VIEWER),
    )
    .await;
    assert_eq!(status, 200);
    let health = wait_for(base, Duration::from_secs(30), "the agent's failure", |h| {
        h["sources"][0]["lastError"].is_string()
    })
    .await;
    assert_eq!(health["sources"][0]["source"], shown, "{health}");
    for path in [
        "/healthz",
        "/metrics",
        "/api/agents",
        "/agents",
        "/",
        "/api/gaps",
    ] {
        let text = client()
            .get(format!("{base}{path}"))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!text.contains(SECRET), "{path}: {text}");
        assert!(
            text.contains("http://127.0.0.1:9") || path == "/api/gaps",
            "{path}: {text}"
        );
    }
    // The agent is named by its URL to pause and resume it, credentials in it (redacted as
    // an earlier version showed them, or as given) or not.
    let (status, body) = answer(
        client()
            .post(format!("{base}/api/agents/pause"))
            .query(&[("url", "http://user:***@127.0.0.1:9")])
            .bearer_auth(ADMIN),
    )
    .await;
    assert_eq!((status, &body["url"]), (200, &json!(shown)), "{body}");
    assert_eq!(agents(base).await, [(shown.to_owned(), true)]);
    let (status, _) = answer(
        client()
            .post(format!("{base}/api/agents/resume"))
            .query(&[("url", agent.as_str())])
            .bearer_auth(ADMIN),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(agents(base).await, [(shown.to_owned(), false)]);
    let log = log.lock().unwrap().clone();
    assert!(log.contains(shown), "{log}");
    assert!(!log.contains(SECRET), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_cannot_be_injected_into_and_routes_are_few() {
    let agent = "http://127.0.0.1:9/\"} 1\n# EOF\nfake_metric{a=\"\\";
    let (fd, log) =
        start_logged(&["serve", "--agent", agent, "--listen", "127.0.0.1:0"], &[]).await;
    let base = &fd.base;
    wait_for(base, Duration::from_secs(30), "the agent's failure", |h| {
        h["sources"][0]["lastError"].is_string()
    })
    .await;
    for name in ["zzz1", "zzz2", "zzz3"] {
        let r = reqwest::get(format!("{base}/api/{name}")).await.unwrap();
        assert_eq!(r.status().as_u16(), 404);
    }
    let text = crate::support::get_text(format!("{base}/metrics")).await;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.last(), Some(&"# EOF"), "{text}");
    assert_eq!(lines.iter().filter(|l| **l == "# EOF").count(), 1, "{text}");
    assert!(
        !lines.iter().any(|l| l.starts_with("fake_metric")),
        "{text}"
    );
    // Every sample line is `name{labels} value`: the label value stays one string. The
    // agent URL is taken in its one form (the WHATWG parse percent-encodes the quote and
    // the space, and drops the newlines), and what is left is escaped
    // (`metrics::tests::label_values_are_escaped`).
    let up = lines
        .iter()
        .find(|l| l.starts_with("factorydash_source_up{"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        up.starts_with(r#"factorydash_source_up{source="http://127.0.0.1:9/%22%7D%201#"#),
        "{up}"
    );
    assert!(!text.contains("zzz"), "{text}");
    assert!(text.contains(r#"route="other""#), "{text}");
    // Nor the log: the agent's URL stays on its event's line.
    let log = log.lock().unwrap().clone();
    assert!(log.contains("http://127.0.0.1:9/%22%7D%201#"), "{log}");
    assert!(
        !log.lines()
            .any(|l| l.starts_with("# EOF") || l.starts_with("fake_metric")),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_answer_carries_the_security_headers() {
    let fd = serve(&[]).await;
    let base = &fd.base;
    let page = crate::support::get_text(format!("{base}/")).await;
    for path in [
        "/",
        "/agents",
        "/device?name=none",
        "/api/latest",
        "/api/latest?limit=abc",
        "/healthz",
        "/metrics",
        "/no/such/page",
        "/assets/app.js",
    ] {
        let r = reqwest::get(format!("{base}{path}")).await.unwrap();
        let h = r.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("default-src 'none'"),
            "{path}"
        );
        let cache = h["cache-control"].to_str().unwrap();
        if path.starts_with("/assets/") {
            assert_eq!(cache, "no-cache", "{path}: not under its hashed URL");
        } else {
            assert_eq!(cache, "no-store", "{path}");
        }
    }
    // The page links its assets under their content hash: cached for a year, gzipped
    // when asked.
    let start = page
        .find("/assets/app.js?v=")
        .unwrap_or_else(|| panic!("{page}"));
    let hashed = &page[start..start + "/assets/app.js?v=".len() + 16];
    let plain = reqwest::get(format!("{base}/assets/app.js")).await.unwrap();
    let etag = plain.headers()["etag"].to_str().unwrap().to_owned();
    let plain = plain.bytes().await.unwrap();
    let r = client()
        .get(format!("{base}{hashed}"))
        .header("accept-encoding", "gzip, br")
        .send()
        .await
        .unwrap();
    let h = r.headers().clone();
    assert_eq!(h["cache-control"], "public, max-age=31536000, immutable");
    assert_eq!(h["content-encoding"], "gzip");
    assert_eq!(h["vary"], "accept-encoding");
    assert_eq!(h["x-content-type-options"], "nosniff");
    let gzipped = r.bytes().await.unwrap();
    assert!(
        gzipped.len() * 2 < plain.len(),
        "{} of {}",
        gzipped.len(),
        plain.len()
    );
    let mut unzipped = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&gzipped[..]),
        &mut unzipped,
    )
    .unwrap();
    assert_eq!(unzipped, plain);
    let r = client()
        .get(format!("{base}/assets/app.js"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 304);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_nul_character_in_a_query_is_a_bad_request() {
    let db = match crate::support::postgres_url("nul_in_queries") {
        Some(server) => Some(crate::support::FreshDb::create(&server, "nul").await),
        None => None,
    };
    let mut args = vec!["serve", "--agent", DEAD, "--listen", "127.0.0.1:0"];
    if let Some(db) = &db {
        args.extend(["--database-url", db.url.as_str()]);
    }
    let fd = start(&args).await;
    let base = &fd.base;
    // The key "a\0b" as a page cursor (hex of its UTF-8 bytes).
    let cursor = "610062";
    for path in [
        "/api/latest?device=GF%00".to_owned(),
        "/api/latest?q=%00".to_owned(),
        format!("/api/latest?cursor={cursor}"),
        format!("/?cursor={cursor}"),
        "/?device=a%00b".to_owned(),
        "/device?name=%00".to_owned(),
        "/api/series?device=%00&dataItemId=x".to_owned(),
        "/api/export?device=%00&dataItemId=x".to_owned(),
    ] {
        let (status, body) = answer(client().get(format!("{base}{path}"))).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("NUL"),
            "{path}: {body}"
        );
    }
    let (status, body) = answer(
        client()
            .post(format!("{base}/api/agents"))
            .json(&json!({ "url": "http://127.0.0.1:7/a\u{0}b" })),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    drop(fd);
    if let Some(db) = db {
        db.drop().await;
    }
}

/// An agent URL written the way browsers and reqwest still read as one with credentials
/// (`HTTP:/user:pass@host/`, one slash) is taken in its one form, so the credentials are
/// found and taken out of it: never shown, whether given on the command line or through
/// the API; a URL that is not http(s) is refused.
#[tokio::test(flavor = "multi_thread")]
async fn agent_urls_are_taken_in_one_form_and_their_credentials_never_shown() {
    const SECRET: &str = "0ne-slash-secret";
    let given = format!("HTTP:/user:{SECRET}@127.0.0.1:9/");
    let fd = start(&["serve", "--agent", &given, "--listen", "127.0.0.1:0"]).await;
    let base = &fd.base;
    let (status, body) = answer(
        client()
            .post(format!("{base}/api/agents"))
            .json(&json!({ "url": format!("http:/{SECRET}@127.0.0.1:7") })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["url"], "http://127.0.0.1:7", "{body}");
    let (status, body) = answer(
        client()
            .post(format!("{base}/api/agents"))
            .json(&json!({ "url": "ftp://127.0.0.1:9" })),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let health = wait_for(
        base,
        Duration::from_secs(30),
        "both agents' failures",
        |h| {
            h["sources"]
                .as_array()
                .is_some_and(|s| s.len() == 2 && s.iter().all(|s| s["lastError"].is_string()))
        },
    )
    .await;
    let text = health.to_string();
    assert!(!text.contains(SECRET), "{text}");
    assert!(text.contains("\"http://127.0.0.1:9\""), "{text}");
    assert!(text.contains("\"http://127.0.0.1:7\""), "{text}");
    for path in ["/", "/agents", "/api/agents", "/metrics"] {
        let page = client()
            .get(format!("{base}{path}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!page.contains(SECRET), "{path}: {page}");
    }
}

/// The status line of the answer to `head` (request line and headers, without the end of
/// the head) and `body`, written as bytes: headers that no HTTP client library would send.
async fn raw_status(base: &str, head: &[u8], body: &str) -> String {
    let address = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let mut request = head.to_vec();
    request.extend_from_slice(
        format!(
            "\r\nHost: {address}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    stream.write_all(&request).await.unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    text.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn headers_that_are_not_text_never_let_a_request_past_the_gate_or_the_guard() {
    // The gate and the guard once read these headers with filters that reject what is
    // not text, and a rejection there means "go on": a request with `Authorization:
    // Bearer \xff` read and changed everything without a token.
    let fd = serve(&[
        "--token",
        &format!("viewer:{VIEWER}"),
        "--token",
        &format!("admin:{ADMIN}"),
    ])
    .await;
    let base = &fd.base;
    let add = r#"{"url": "http://127.0.0.1:7/raw"}"#;
    let json = b"\r\nContent-Type: application/json";
    let cases: [(Vec<u8>, &str, &str); 6] = [
        (
            b"GET /api/agents HTTP/1.1\r\nAuthorization: Bearer \xff".to_vec(),
            "",
            "401",
        ),
        (
            [
                &b"POST /api/agents HTTP/1.1\r\nAuthorization: Bearer \xff\r\nSec-Fetch-Site: same-origin"[..],
                json,
            ]
            .concat(),
            add,
            "401",
        ),
        (
            b"GET /api/agents HTTP/1.1\r\nCookie: factorydash_token=\xff".to_vec(),
            "",
            "401",
        ),
        // A viewer's change, its origin header not text: still a viewer's.
        (
            [
                format!("POST /api/agents HTTP/1.1\r\nAuthorization: Bearer {VIEWER}\r\nSec-Fetch-Site: ").as_bytes(),
                b"\xff",
                json,
            ]
            .concat(),
            add,
            "403",
        ),
        // `?token=` from a page whose Sec-Fetch-Site is not text: not taken.
        (
            [
                format!("GET /?token={ADMIN} HTTP/1.1\r\nSec-Fetch-Site: ").as_bytes(),
                b"\xff",
            ]
            .concat(),
            "",
            "403",
        ),
        // The admin's cookie without a proof of origin, in a request whose target names
        // another authority than its Host (which warp's host filter rejects): refused.
        (
            [
                format!("POST http://127.0.0.1:1/api/agents HTTP/1.1\r\nCookie: factorydash_token={ADMIN}").as_bytes(),
                json,
            ]
            .concat(),
            add,
            "403",
        ),
    ];
    for (head, body, status) in cases {
        let line = raw_status(base, &head, body).await;
        assert!(
            line.starts_with(&format!("HTTP/1.1 {status}")),
            "{}: {line}",
            String::from_utf8_lossy(&head)
        );
    }
    assert_eq!(agents(base).await, [(DEAD.to_owned(), false)]);
}
