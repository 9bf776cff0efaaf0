//! The agents page (`/agents`): every agent as a card with its state in words and in the
//! board's colours, numbers formatted by the server, its gaps as a table; for an admin,
//! buttons and a form that call `/api/agents` (driven in a real browser, signed in with
//! the token cookie), for anyone else none.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{recording, replay_agent, serve_replay, start, wait_for, Browser, Running};

const VIEWER: &str = "viewer-0123456789abcdef";
const ADMIN: &str = "admin-0123456789abcdef";
/// An agent that never answers (the discard port).
const DEAD: &str = "http://127.0.0.1:9";

/// `n` as the page shows it: `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// Status and body of `GET url` with `token` (and `host` as the `Host` header, if given).
async fn get(url: &str, token: Option<&str>, host: Option<&str>) -> (u16, String) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut r = client.get(url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(h) = host {
        r = r.header("host", h);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The JSON of `method url` sent with the admin's bearer token.
async fn admin(method: reqwest::Method, url: &str, body: Option<Value>) -> (u16, Value) {
    let mut r = reqwest::Client::new()
        .request(method, url)
        .bearer_auth(ADMIN);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// `GET /api/agents` as the admin: (url, paused, addedAtRunTime) of each agent.
async fn listed(base: &str) -> Vec<(String, bool, bool)> {
    let (status, list) = admin(reqwest::Method::GET, &format!("{base}/api/agents"), None).await;
    assert_eq!(status, 200, "{list}");
    list.as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["url"].as_str().unwrap().to_owned(),
                a["paused"].as_bool().unwrap(),
                a["addedAtRunTime"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// The card of `agent` in a page's HTML: from its `<article` to the next one's (or the
/// list's end).
fn card<'a>(page: &'a str, agent: &str) -> &'a str {
    let start = page
        .find(&format!(r#"data-agent="{agent}""#))
        .unwrap_or_else(|| panic!("no card of {agent}: {page}"));
    let start = page[..start].rfind("<article").unwrap();
    let end = page[start + 1..]
        .find("<article")
        .map_or(page.len(), |e| start + 1 + e);
    &page[start..end]
}

/// The text of every element of class `num` in `html` (`class="num"`, its only class)
/// but the column headers (`th`).
fn numbers(html: &str) -> Vec<&str> {
    html.match_indices(r#"class="num""#)
        .filter(|(at, _)| !html[..*at].ends_with("<th "))
        .map(|(at, _)| {
            let text = &html[at..];
            let text = &text[text.find('>').unwrap() + 1..];
            &text[..text.find('<').unwrap()]
        })
        .collect()
}

/// The text of the `<dd>` after `<dt>LABEL</dt>` in `html`.
fn dd<'a>(html: &'a str, label: &str) -> &'a str {
    let at = html
        .find(&format!("<dt>{label}</dt>"))
        .unwrap_or_else(|| panic!("no {label}: {html}"));
    let rest = &html[at..];
    let rest = &rest[rest.find("<dd").unwrap()..];
    let rest = &rest[rest.find('>').unwrap() + 1..];
    &rest[..rest.find("</dd>").unwrap()]
}

/// Whether `s` is a number as the page writes them: digits in groups of three after the
/// first, separated by commas (no group of four digits or more).
fn formatted(s: &str) -> bool {
    let mut groups = s.split(',');
    let first = groups.next().unwrap_or_default();
    (1..=3).contains(&first.len())
        && first.bytes().all(|b| b.is_ascii_digit())
        && groups.all(|g| g.len() == 3 && g.bytes().all(|b| b.is_ascii_digit()))
}

/// `factorydash serve` following `agents`, polling (1,000 observations a request), with a
/// viewer's and an admin's token.
async fn serve_with_tokens(agents: &[&str]) -> Running {
    let mut args = vec![
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--poll-interval",
        "100ms",
        "--count",
        "1000",
        "--no-stream",
    ];
    for a in agents {
        args.extend_from_slice(&["--agent", a]);
    }
    let viewer = format!("viewer:{VIEWER}");
    let admin = format!("admin:{ADMIN}");
    args.extend_from_slice(&["--token", &viewer, "--token", &admin]);
    start(&args).await
}

/// Sets the replay agent's fault switches of `query`.
async fn fault(agent: &Running, query: &str) -> Value {
    let r = reqwest::Client::new()
        .post(format!("{}/_factorydash/faults?{query}", agent.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// The health of source `url` in `/healthz`.
fn source<'a>(health: &'a Value, url: &str) -> Option<&'a Value> {
    health["sources"]
        .as_array()?
        .iter()
        .find(|s| s["source"] == url)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_agents_page_formats_numbers_colours_states_tables_gaps_and_offers_changes_to_admins_only(
) {
    let agent = replay_agent("1500").await;
    // Slow answers: the follower lags, and the agent's buffer wraps past it (a gap of
    // known end); then the agent restarts (a gap of unknown end).
    fault(&agent, "slow_ms=1500").await;
    let fd = serve_with_tokens(&[&agent.base, DEAD]).await;
    let base = &fd.base;
    wait_for(base, Duration::from_secs(60), "some data", |h| {
        source(h, &agent.base).is_some_and(|s| s["observations"].as_u64().unwrap_or(0) > 0)
    })
    .await;
    fault(&agent, "wrap=100").await;
    fault(&agent, "slow_ms=0").await;
    wait_for(base, Duration::from_secs(60), "the wrap's gap", |h| {
        source(h, &agent.base).is_some_and(|s| s["gaps"] == 1)
    })
    .await;
    wait_for(base, Duration::from_secs(60), "more data", |h| {
        source(h, &agent.base).is_some_and(|s| s["observations"].as_u64().unwrap_or(0) > 5_000)
    })
    .await;
    fault(&agent, "restart=true").await;
    wait_for(
        base,
        Duration::from_secs(60),
        "the restart, followed",
        |h| {
            source(h, &agent.base)
                .is_some_and(|s| s["gaps"] == 2 && s["restarts"] == 1 && s["state"] == "polling")
                && source(h, DEAD).is_some_and(|s| s["lastError"].is_string())
        },
    )
    .await;
    let (_, gaps) = admin(reqwest::Method::GET, &format!("{base}/api/gaps"), None).await;
    let gaps = gaps.as_array().unwrap().clone();
    assert_eq!(gaps.len(), 2, "{gaps:?}");
    let known = gaps
        .iter()
        .find(|g| g["to"].is_u64())
        .expect("the wrap's gap");
    let (from, to) = (
        known["from"].as_u64().unwrap(),
        known["to"].as_u64().unwrap(),
    );
    assert!(to - from >= 1_000, "a gap of thousands: {known}");
    // instanceIds are identifiers, shown as they are.
    let (_, health) = crate::support::get_json(&format!("{base}/healthz")).await;
    let instances: Vec<String> = gaps
        .iter()
        .chain(health["sources"].as_array().unwrap())
        .map(|g| g["instanceId"].to_string())
        .collect();

    // A viewer: the cards, no buttons.
    let (status, page) = get(&format!("{base}/agents"), Some(VIEWER), None).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("/assets/agents.css?v="), "its stylesheet");
    assert!(page.contains("/assets/agents.js?v="), "its script");
    let live = card(&page, &agent.base);
    let dead = card(&page, DEAD);
    // States: coloured (the class) and in words.
    assert!(
        live.starts_with(r#"<article class="agent-card active""#),
        "{live}"
    );
    assert!(
        live.contains(r#"<span class="agent-state">polling</span>"#),
        "{live}"
    );
    assert!(
        dead.starts_with(r#"<article class="agent-card fault""#),
        "{dead}"
    );
    assert!(
        dead.contains(r#"<span class="agent-state">backing off</span>"#),
        "{dead}"
    );
    // Numbers: thousands separators, rates with their unit; instanceIds as they are.
    let stored = dd(live, "Observations stored");
    assert!(
        formatted(stored) && stored.contains(','),
        "observations: {stored}"
    );
    let rate = dd(live, "Rate");
    assert!(rate.ends_with(" obs/s"), "{rate}");
    let (whole, tenths) = rate.trim_end_matches(" obs/s").split_once('.').unwrap();
    assert!(formatted(whole) && tenths.len() == 1, "{rate}");
    assert_eq!(dd(live, "Agent restarts"), "1");
    assert!(formatted(dd(live, "Next sequence")), "{live}");
    for n in numbers(&page) {
        let plain = n.trim_end_matches(" obs/s");
        let plain = plain.split_once('.').map_or(plain, |(w, _)| w);
        assert!(
            formatted(plain) || n == "—" || instances.iter().any(|i| i == n),
            "{n:?} is not formatted"
        );
    }
    // Times are <time data-ts> elements, which dom.js shows in the browser's zone.
    assert!(
        dd(live, "Last contact").starts_with("<time data-ts=\""),
        "{live}"
    );
    assert!(
        dd(dead, "Unreachable since").starts_with("<time data-ts=\""),
        "{dead}"
    );
    // The dead agent's error, as text in its own block.
    assert!(
        dead.contains(r#"<div class="agent-error"><strong>Last error</strong><p>cannot reach the agent at http://127.0.0.1:9/probe"#),
        "{dead}"
    );
    // The gaps, as a table.
    assert!(live.contains("Gaps (2)"), "{live}");
    assert!(live.contains(r#"<table class="gap-table">"#), "{live}");
    assert!(
        live.contains(&format!(
            r#"<td class="num" data-label="From">{}</td><td class="num" data-label="To">{}</td><td class="num" data-label="Lost">{}</td>"#,
            thousands(from),
            thousands(to),
            thousands(to - from)
        )),
        "the wrap's gap, formatted: {live}"
    );
    assert!(
        live.contains(
            r#"<td class="unknown" data-label="To">unknown (agent restarted)</td><td class="unknown" data-label="Lost">unknown</td>"#
        ),
        "{live}"
    );
    assert!(dead.contains("Gaps (0)"), "{dead}");
    // No buttons or form for a viewer, and a note on how an admin signs in.
    assert!(!page.contains("data-action="), "{page}");
    assert!(!page.contains(r#"id="add-form""#), "{page}");
    assert!(page.contains("/agents?token=ADMIN-TOKEN"), "{page}");

    // An admin: Pause on both; Remove only for an agent added at run time.
    let (_, page) = get(&format!("{base}/agents"), Some(ADMIN), None).await;
    assert!(
        page.contains(r#"<form id="add-form" method="post" action="/admin/agents">"#),
        "{page}"
    );
    for a in [agent.base.as_str(), DEAD] {
        let c = card(&page, a);
        assert!(c.contains(r#"data-action="pause">Pause</button>"#), "{c}");
        assert!(!c.contains(r#"data-action="remove""#), "{c}");
        assert!(c.contains("Given at start"), "{c}");
    }
    let added = "http://127.0.0.1:7/added";
    let api = format!("{base}/api/agents");
    let (status, _) = admin(reqwest::Method::POST, &api, Some(json!({ "url": added }))).await;
    assert_eq!(status, 201);
    let pause = format!("{base}/api/agents/pause?url={added}");
    assert_eq!(admin(reqwest::Method::POST, &pause, None).await.0, 200);
    let (_, page) = get(&format!("{base}/agents"), Some(ADMIN), None).await;
    let c = card(&page, added);
    assert!(
        c.starts_with(r#"<article class="agent-card stopped""#),
        "{c}"
    );
    assert!(
        c.contains(r#"<span class="agent-state">paused</span>"#),
        "{c}"
    );
    assert!(c.contains(r#"data-action="resume">Resume</button>"#), "{c}");
    assert!(c.contains(r#"data-action="remove">Remove</button>"#), "{c}");
    // …and still none for the viewer, whom the API refuses anyway.
    let (_, page) = get(&format!("{base}/agents"), Some(VIEWER), None).await;
    assert!(!page.contains("data-action="), "{page}");
    let refused = reqwest::Client::new()
        .post(format!("{base}/api/agents/resume?url={added}"))
        .bearer_auth(VIEWER)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    // Without a token: no page at all.
    assert_eq!(get(&format!("{base}/agents"), None, None).await.0, 401);
    drop(fd);

    // An open dashboard (no tokens) takes changes at an address, not at a DNS name: the
    // page offers buttons there only.
    let open = start(&[
        "serve",
        "--agent",
        DEAD,
        "--listen",
        "127.0.0.1:0",
        "--allowed-host",
        "dash.example",
    ])
    .await;
    let (_, page) = get(&format!("{}/agents", open.base), None, None).await;
    assert!(page.contains(r#"data-action="pause""#), "{page}");
    let port = open.base.rsplit(':').next().unwrap();
    let (status, page) = get(
        &format!("{}/agents", open.base),
        None,
        Some(&format!("dash.example:{port}")),
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(!page.contains("data-action="), "{page}");
    assert!(page.contains("DNS rebinding"), "{page}");
    drop(open);

    // A recording played: a source, no agents to change.
    let replay = serve_replay(&recording(), "10").await;
    let (_, page) = get(&format!("{}/agents", replay.base), None, None).await;
    assert!(!page.contains("data-action="), "{page}");
    assert!(page.contains("plays a recording"), "{page}");
    assert!(
        page.contains(r#"<article class="agent-card active" data-agent="replay:"#),
        "{page}"
    );
}

/// A script for [`Browser::eval`]: the elements wider than the viewport, or past its
/// edges (each as `tag.class: left..right`), the page's scroll width beyond the
/// viewport's, and the numbers (`.num`) whose text wraps onto more than one line.
const OVERFLOW: &str = r##"
const width = document.documentElement.clientWidth;
const name = (e) => e.tagName.toLowerCase() + (e.className && typeof e.className === "string" ? "." + e.className.trim().replace(/\s+/g, ".") : "") + (e.id ? "#" + e.id : "");
const wide = [...document.querySelectorAll("body *")].filter((e) => {
  const r = e.getBoundingClientRect();
  return r.width > 0 && (r.right > width + 0.5 || r.left < -0.5);
}).map((e) => { const r = e.getBoundingClientRect(); return name(e) + ": " + r.left + ".." + r.right; });
const wrapped = [...document.querySelectorAll(".num")].filter((e) => {
  const range = document.createRange();
  range.selectNodeContents(e);
  const tops = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
  return tops.size > 1;
}).map((e) => e.textContent);
return { width, innerWidth: window.innerWidth, innerHeight: window.innerHeight, scroll: document.documentElement.scrollWidth - width, wide, wrapped };
"##;

/// A script for [`Browser::eval`]: the text of the page whose contrast with its
/// background is below WCAG 2.x AA (4.5:1; 3:1 for large text), as `text: ratio`.
const LOW_CONTRAST: &str = r##"
const rgb = (c) => { const m = c.match(/[\d.]+/g).map(Number); return { r: m[0], g: m[1], b: m[2], a: m.length > 3 ? m[3] : 1 }; };
const lum = ({ r, g, b }) => [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); })
  .reduce((s, v, i) => s + v * [0.2126, 0.7152, 0.0722][i], 0);
const background = (e) => {
  for (; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor); if (c.a > 0.5) return c; }
  return rgb(getComputedStyle(document.documentElement).backgroundColor);
};
const low = [];
const seen = new Set();
for (const e of document.querySelectorAll("body *")) {
  const own = [...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
  if (!own || !e.getClientRects().length) continue;
  const style = getComputedStyle(e);
  const [a, b] = [lum(rgb(style.color)), lum(background(e))];
  const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  const large = parseFloat(style.fontSize) >= 24 || (parseFloat(style.fontSize) >= 18.66 && Number(style.fontWeight) >= 700);
  const key = e.tagName + e.className;
  if (ratio < (large ? 3 : 4.5) && !seen.has(key)) { seen.add(key); low.push(e.tagName.toLowerCase() + "." + e.className + " '" + e.textContent.trim().slice(0, 30) + "': " + ratio.toFixed(2)); }
}
return low;
"##;

#[tokio::test(flavor = "multi_thread")]
async fn in_a_browser_an_admin_adds_pauses_resumes_and_removes_an_agent_on_the_agents_page() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let agent = replay_agent("1500").await;
    let fd = serve_with_tokens(&[DEAD]).await;
    let base = &fd.base;
    let url = agent.base.as_str();
    let card = format!(r#"article[data-agent="{url}"]"#);

    // The admin signs in once with `?token=` (an HTTP-only cookie from then on).
    browser.resize(1600, 1000).await;
    browser.open(&format!("{base}/agents?token={ADMIN}")).await;
    assert_eq!(
        browser
            .eval("return location.pathname + location.search")
            .await,
        "/agents",
        "the token left the address"
    );
    assert_eq!(
        browser
            .eval("return document.cookie.includes('factorydash_token')")
            .await,
        false,
        "the cookie is HTTP-only"
    );

    // What the API refuses is told on the page, as text.
    browser.type_into("#add-url", "not a url").await;
    browser.click("#add-form button[type=submit]").await;
    let said = browser
        .wait_until(
            "the API's refusal",
            Duration::from_secs(30),
            "const m = document.getElementById('add-message'); return m.classList.contains('failed') && m.textContent",
        )
        .await;
    assert!(
        said.as_str()
            .unwrap()
            .contains("url must be an http or https URL"),
        "{said}"
    );
    assert_eq!(listed(base).await, [(DEAD.to_owned(), false, false)]);

    // Add.
    browser
        .eval("document.getElementById('add-url').value = ''; return true")
        .await;
    browser.type_into("#add-url", url).await;
    browser.click("#add-form button[type=submit]").await;
    browser
        .wait_until(
            "the added agent's card",
            Duration::from_secs(30),
            &format!("return !!document.querySelector('{card} button[data-action=pause]')"),
        )
        .await;
    let said = browser
        .eval("return document.getElementById('add-message').textContent")
        .await;
    assert_eq!(said, format!("Added {url}: followed from now on."));
    let mut want = vec![
        (url.to_owned(), false, true),
        (DEAD.to_owned(), false, false),
    ];
    want.sort();
    assert_eq!(listed(base).await, want);

    // Data, a restart of the agent (a gap), and the card follows live.
    wait_for(
        base,
        Duration::from_secs(60),
        "the added agent's data",
        |h| source(h, url).is_some_and(|s| s["observations"].as_u64().unwrap_or(0) > 5_000),
    )
    .await;
    fault(&agent, "restart=true").await;
    let gaps = browser
        .wait_until(
            "the gap, shown live",
            Duration::from_secs(60),
            &format!(
                "const c = document.querySelector('{card}'); return c && c.classList.contains('active')
                   && c.querySelector('.agent-gaps h3').textContent === 'Gaps (1)'
                   && c.querySelector('.gap-table td.unknown').textContent"
            ),
        )
        .await;
    assert_eq!(gaps, "unknown (agent restarted)");
    browser
        .wait_until(
            "times shown by dom.js",
            Duration::from_secs(30),
            &format!("return document.querySelector('{card} time').textContent.endsWith('ago')"),
        )
        .await;

    // Colours: AA contrast in the light and the dark theme; screenshots of both.
    assert_eq!(browser.eval(LOW_CONTRAST).await, json!([]), "light theme");
    assert_eq!(
        browser
            .eval("return [window.innerWidth, window.innerHeight]")
            .await,
        json!([1600, 1000])
    );
    let light = browser.screenshot("agents-1600").await;
    browser.click("#theme").await;
    assert_eq!(
        browser
            .eval("return document.documentElement.dataset.theme")
            .await,
        "dark"
    );
    assert_eq!(browser.eval(LOW_CONTRAST).await, json!([]), "dark theme");
    let dark = browser.screenshot("agents-1600-dark").await;
    browser.click("#theme").await;
    browser.click("#theme").await;

    // A phone: nothing wider than the viewport, no number broken over two lines.
    browser.resize(390, 844).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fit = browser.eval(OVERFLOW).await;
    // The viewport is 390 px; headless Chromium's scroll bar takes 15 of them (a phone's
    // overlays the page): the layout is checked at the narrower width.
    assert_eq!(
        (fit["innerWidth"].clone(), fit["innerHeight"].clone()),
        (json!(390), json!(844)),
        "{fit}"
    );
    assert_eq!(fit["scroll"], 0, "{fit}");
    assert_eq!(fit["wide"], json!([]), "{fit}");
    assert_eq!(fit["wrapped"], json!([]), "{fit}");
    let phone = browser.screenshot("agents-390").await;
    // The whole page too, for people to review.
    let height = browser
        .eval("return document.documentElement.scrollHeight")
        .await;
    browser.resize(390, height.as_u64().unwrap()).await;
    browser.screenshot("agents-390-full").await;
    browser.resize(390, 844).await;

    // Pause, on the phone.
    browser
        .click(&format!("{card} button[data-action=pause]"))
        .await;
    browser
        .wait_until(
            "the card paused",
            Duration::from_secs(30),
            &format!(
                "const c = document.querySelector('{card}'); return c.classList.contains('stopped')
                   && c.querySelector('.agent-state').textContent === 'paused'
                   && !!c.querySelector('button[data-action=resume]')"
            ),
        )
        .await;
    want = vec![
        (url.to_owned(), true, true),
        (DEAD.to_owned(), false, false),
    ];
    want.sort();
    assert_eq!(listed(base).await, want);

    // Resume.
    browser
        .click(&format!("{card} button[data-action=resume]"))
        .await;
    browser
        .wait_until(
            "the card resumed",
            Duration::from_secs(30),
            &format!("return !!document.querySelector('{card} button[data-action=pause]')"),
        )
        .await;
    want = vec![
        (url.to_owned(), false, true),
        (DEAD.to_owned(), false, false),
    ];
    want.sort();
    assert_eq!(listed(base).await, want);
    browser
        .wait_until(
            "it reads again",
            Duration::from_secs(60),
            &format!("return document.querySelector('{card}').classList.contains('active')"),
        )
        .await;

    // Remove: asked first; Cancel keeps it, OK removes it.
    browser
        .click(&format!("{card} button[data-action=remove]"))
        .await;
    let question = browser.dialog_text().await;
    assert!(
        question.starts_with(&format!("Remove the agent {url}?")),
        "{question}"
    );
    browser.answer_dialog(false).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(listed(base).await, want, "cancelled");
    browser
        .click(&format!("{card} button[data-action=remove]"))
        .await;
    browser.answer_dialog(true).await;
    browser
        .wait_until(
            "the card gone",
            Duration::from_secs(30),
            &format!("return !document.querySelector('{card}')"),
        )
        .await;
    assert_eq!(listed(base).await, [(DEAD.to_owned(), false, false)]);
    assert_eq!(
        browser
            .eval("return document.getElementById('agents-message').textContent")
            .await,
        format!("Removed {url}.")
    );
    // The command-line agent cannot be removed: no button for it.
    assert_eq!(
        browser
            .eval(&format!(
                r#"return document.querySelectorAll('article[data-agent="{DEAD}"] button[data-action=remove]').length"#
            ))
            .await,
        0
    );
    browser.quit().await;
    for shot in [light, dark, phone] {
        assert!(shot.exists(), "{}", shot.display());
    }
}
