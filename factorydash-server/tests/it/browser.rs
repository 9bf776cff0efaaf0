//! The pages in a real browser (headless Chromium), and agent-supplied text that tries to
//! be markup or script: it must show as text, in the served HTML and in the live DOM.

use std::path::PathBuf;
use std::time::Duration;

use crate::support::{
    browser_dom, browser_screenshot, get_json, get_text, recording, serve_replay, wait_for, Browser,
};

fn hostile() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/xss-recording")
}

const DEVICE: &str = "Evil<img src=x onerror=alert(1)>";

/// Markup that would run or render if agent text were not escaped.
const INJECTED: [&str; 6] = [
    "<script>alert",
    "<img src=x",
    "<img src=\"x\"",
    "<svg onload",
    "<b onmouseover",
    "<i>",
];

fn assert_inert(html: &str, what: &str) {
    for bad in INJECTED {
        assert!(!html.contains(bad), "{what} holds live markup {bad:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_agent_text_is_shown_as_text_in_the_html_and_in_the_browser() {
    let server = serve_replay(&hostile(), "10").await;
    let base = &server.base;
    wait_for(base, Duration::from_secs(30), "some hostile data", |h| {
        h["observations"].as_u64().unwrap_or(0) > 30
    })
    .await;
    // The JSON carries the text as it was sent.
    let (_, latest) = get_json(&format!("{base}/api/latest?limit=100")).await;
    assert!(latest.to_string().contains("<script>alert("), "{latest}");

    let device_url = format!(
        "{base}/device?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("name", DEVICE)
            .finish()
    );
    for url in [format!("{base}/"), device_url.clone()] {
        let html = get_text(&url).await;
        assert_inert(&html, &url);
        assert!(
            html.contains("&lt;script&gt;alert("),
            "{url} shows the text"
        );
        assert!(
            html.contains("Evil&lt;img src=x onerror=alert(1)&gt;"),
            "{url}"
        );

        // In the browser, after the scripts ran and live updates arrived.
        let Some(dom) = browser_dom(&url, 5_000).await else {
            return;
        };
        assert_inert(&dom, &format!("the DOM of {url}"));
        let name = if url.contains("/device") {
            "hostile-device"
        } else {
            "hostile-board"
        };
        browser_screenshot(&url, 3_000, name).await;
        assert!(dom.contains("&lt;script&gt;alert("), "{url}: {dom}");
        assert!(dom.contains(r#"id="live""#));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pages_come_alive_in_a_browser_with_a_chart_and_live_values() {
    let server = serve_replay(&recording(), "300").await;
    let base = &server.base;
    wait_for(base, Duration::from_secs(30), "some data", |h| {
        h["observations"].as_u64().unwrap_or(0) > 1000
    })
    .await;
    let Some(dom) = browser_dom(&format!("{base}/"), 4_000).await else {
        return;
    };
    browser_screenshot(&format!("{base}/"), 4_000, "board").await;
    browser_screenshot(&format!("{base}/device?name=GFAgie01"), 6_000, "device").await;
    // The WebSocket connected and the tile shows a state.
    assert!(dom.contains(r#"id="live">live</span>"#), "{dom}");
    assert!(dom.contains(r#"data-device="GFAgie01""#));
    // The alarms table was filled in from /api/alarms.
    assert!(dom.contains(r#"id="alarm-count">("#), "{dom}");
    assert!(!dom.contains("Loading…"), "{dom}");
    // The device page drew its chart (uPlot's canvas) and sparklines from the series API.
    let dom = browser_dom(&format!("{base}/device?name=GFAgie01"), 6_000)
        .await
        .unwrap();
    assert!(dom.contains("class=\"uplot"), "uPlot drew the chart: {dom}");
    assert!(dom.contains("points drawn"), "{dom}");
    assert!(dom.contains(r#"class="spark" width="120" height="24" data-item="#));
    assert!(
        dom.contains("data-points=\""),
        "sparklines were drawn: {dom}"
    );
    // The utilization timeline and the shares of Execution states.
    assert!(
        dom.contains(r#"<li data-state=""#),
        "utilization shares: {dom}"
    );
}

/// The data items of the latest-values table's rows, in order (a script for
/// [`Browser::eval`]).
const TABLE_ITEMS: &str =
    "return [...document.querySelectorAll('#rows tr[data-item]')].map(tr => tr.dataset.item)";

fn strings(value: serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn in_a_driven_browser_values_change_live_filters_pages_exports_and_the_theme_work() {
    let server = serve_replay(&recording(), "300").await;
    let base = &server.base;
    wait_for(base, Duration::from_secs(30), "some data", |h| {
        h["observations"].as_u64().unwrap_or(0) > 500
    })
    .await;
    let Some(browser) = Browser::start().await else {
        return;
    };

    // Live: the times of the rows as served, then the same page, never reloaded, shows
    // newer ones (app.js also marks an updated row `changed`).
    browser.open(&format!("{base}/?limit=500")).await;
    let served = browser
        .eval(
            "window.served = new Map([...document.querySelectorAll('#rows tr[data-item]')]
               .map(tr => [tr.dataset.item, tr.querySelector('time').dataset.ts]));
             return window.served.size",
        )
        .await;
    assert!(served.as_u64().unwrap() > 10, "{served}");
    let newer = browser
        .wait_until(
            "a value to change live",
            Duration::from_secs(20),
            "return window.served && [...document.querySelectorAll('#rows tr.changed[data-item]')]
               .filter(tr => window.served.has(tr.dataset.item)
                 && Date.parse(tr.querySelector('time').dataset.ts) > Date.parse(window.served.get(tr.dataset.item)))
               .map(tr => tr.dataset.item)",
        )
        .await;
    // The device's tile is updated in place from the board rounds' changed fields (the
    // same element, its newest-data time advanced: the script sets text only); the
    // source list is the server's.
    let tile = browser
        .wait_until(
            "the tile to be updated live",
            Duration::from_secs(20),
            "const card = document.querySelector('.card');
             if (!window.firstCard) { window.firstCard = card; window.firstTs = card.querySelector('.newest time').dataset.ts; }
             const now = document.querySelector('.card[data-device=\"' + window.firstCard.dataset.device + '\"]');
             return now === window.firstCard && Date.parse(now.querySelector('.newest time').dataset.ts) > Date.parse(window.firstTs)
               && now.querySelector('.state').textContent",
        )
        .await;
    assert!(
        [
            "running",
            "idle",
            "stopped",
            "faulted",
            "unavailable",
            "no data"
        ]
        .contains(&tile.as_str().unwrap()),
        "{tile}"
    );
    let source = browser
        .eval("return document.querySelector('#sources .source .state').textContent")
        .await;
    assert_eq!(source, "replaying");
    // The new value is one the store held: newer than the served one, and not newer than
    // what the API answers afterwards.
    let item = newer[0].as_str().unwrap().to_owned();
    let shown = browser
        .eval(&format!(
            "return document.querySelector('#rows tr[data-item=\"{item}\"] time').dataset.ts"
        ))
        .await;
    let (_, latest) = get_json(&format!("{base}/api/latest?q={item}")).await;
    let api_ts = latest["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["dataItemId"] == item.as_str())
        .unwrap()["timestamp"]
        .as_str()
        .unwrap()
        .to_owned();
    let time = |t: &str| chrono::DateTime::parse_from_rfc3339(t).unwrap();
    assert!(
        time(shown.as_str().unwrap()) <= time(&api_ts),
        "{shown} vs {api_ts}"
    );
    assert_eq!(
        browser
            .eval("return document.getElementById('live').textContent")
            .await,
        "live"
    );

    // Filters: only Condition rows, also after live updates and refetches.
    let (_, conditions) =
        get_json(&format!("{base}/api/latest?category=CONDITION&limit=1000")).await;
    let condition_ids: Vec<&str> = conditions["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["dataItemId"].as_str().unwrap())
        .collect();
    assert!(!condition_ids.is_empty());
    browser.open(&format!("{base}/?category=CONDITION")).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let shown = strings(browser.eval(TABLE_ITEMS).await);
    assert!(!shown.is_empty());
    for item in &shown {
        assert!(
            condition_ids.contains(&item.as_str()),
            "{item} is not a Condition"
        );
    }

    // Pages: five rows, then the next five by clicking the page's own link.
    browser.open(&format!("{base}/?limit=5")).await;
    let first = strings(browser.eval(TABLE_ITEMS).await);
    assert_eq!(first.len(), 5);
    browser.click("a[href*='cursor=']").await;
    let second = strings(
        browser
            .wait_until(
                "the next page",
                Duration::from_secs(10),
                &format!(
                    "return location.search.includes('cursor=') && {}",
                    TABLE_ITEMS.trim_start_matches("return ")
                ),
            )
            .await,
    );
    assert_eq!(second.len(), 5);
    assert!(first.last() < second.first(), "{first:?} then {second:?}");

    // As of a past instant: GFAgie01 became AVAILABLE with sequence 61 (at the time the
    // replay revealed it); the table as of that instant says so, a nanosecond earlier it
    // does not, and live updates leave a past table alone.
    let (_, series) = get_json(&format!(
        "{base}/api/series?device=GFAgie01&dataItemId=GFAgie01-dtop_1&from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z"
    ))
    .await;
    let became = series["series"][0]["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["sequence"] == 61)
        .expect("sequence 61")["timestamp"]
        .as_str()
        .unwrap()
        .to_owned();
    let became = chrono::DateTime::parse_from_rfc3339(&became).unwrap();
    let avail_at = |at: chrono::DateTime<chrono::FixedOffset>| {
        let at = at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        format!("{base}/?type=Availability&at={}", at.replace(':', "%3A"))
    };
    let value = "return [...document.querySelectorAll('#rows tr[data-item=\"GFAgie01-dtop_1\"] td.value')].map(td => td.textContent)";
    browser.open(&avail_at(became)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(strings(browser.eval(value).await), ["AVAILABLE"]);
    assert!(browser
        .eval("return document.querySelector('#latest h2').textContent")
        .await
        .as_str()
        .unwrap()
        .starts_with("Values as of"));
    browser
        .open(&avail_at(became - chrono::Duration::nanoseconds(1)))
        .await;
    assert_eq!(strings(browser.eval(value).await), ["UNAVAILABLE"]);
    // The form: a local date and time goes to the address as UTC.
    let sent = browser
        .eval(
            "const d = new Date(Date.UTC(2026, 0, 2, 3, 4, 5)); const pad = (n) => String(n).padStart(2, '0');
             const f = document.getElementById('at-local');
             f.value = d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + 'T' + pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
             f.form.requestSubmit(); return true",
        )
        .await;
    assert_eq!(sent, true);
    let at = browser
        .wait_until(
            "the form's answer",
            Duration::from_secs(10),
            "return new URLSearchParams(location.search).get('at')",
        )
        .await;
    assert_eq!(at, "2026-01-02T03:04:05.000Z");

    // Exports: the device page's links, as the page set them for its chart's window,
    // download files.
    browser.open(&format!("{base}/device?name=GFAgie01")).await;
    let links = browser
        .wait_until(
            "the export links",
            Duration::from_secs(10),
            "const a = document.getElementById('export-csv'), b = document.getElementById('export-ndjson');
             return a.getAttribute('href') !== '#' && a.hasAttribute('download') && b.hasAttribute('download')
               && [a.getAttribute('href'), b.getAttribute('href')]",
        )
        .await;
    for (href, first_line) in strings(links).iter().zip(["timestamp,", "{"]) {
        assert!(href.starts_with("/api/export?"), "{href}");
        let response = reqwest::get(format!("{base}{href}")).await.unwrap();
        assert_eq!(response.status(), 200);
        let disposition = response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(disposition.starts_with("attachment"), "{disposition}");
        let body = response.text().await.unwrap();
        assert!(
            body.starts_with(first_line),
            "{href}: {}",
            &body[..body.len().min(200)]
        );
    }

    // The theme: the system's at first; the switch cycles dark, light, the system's, and
    // the choice outlives a reload; `?theme=` chooses it for a wall screen.
    let theme = "return [document.documentElement.dataset.theme || 'system', document.getElementById('theme').textContent, getComputedStyle(document.body).backgroundColor]";
    browser.open(&format!("{base}/")).await;
    let system = browser.eval(theme).await;
    assert_eq!(
        (system[0].clone(), system[1].clone()),
        ("system".into(), "theme: system".into())
    );
    browser.click("#theme").await;
    let dark = browser.eval(theme).await;
    assert_eq!(
        (dark[0].clone(), dark[1].clone()),
        ("dark".into(), "theme: dark".into())
    );
    assert_ne!(dark[2], system[2], "the background changed");
    browser.open(&format!("{base}/agents")).await;
    assert_eq!(
        browser.eval(theme).await[0],
        "dark",
        "remembered across pages"
    );
    browser.click("#theme").await;
    assert_eq!(browser.eval(theme).await[0], "light");
    browser.click("#theme").await;
    assert_eq!(browser.eval(theme).await[0], "system");
    browser.open(&format!("{base}/?theme=dark")).await;
    assert_eq!(browser.eval(theme).await[1], "theme: dark");
    // The chart is drawn again in the new colours when the theme switches.
    browser.open(&format!("{base}/device?name=GFAgie01")).await;
    browser
        .wait_until(
            "the chart",
            Duration::from_secs(10),
            "return document.querySelectorAll('.uplot').length",
        )
        .await;
    browser
        .eval("window.before = document.querySelector('.uplot'); return true")
        .await;
    browser.click("#theme").await;
    let redrawn = browser
        .wait_until(
            "the chart redrawn",
            Duration::from_secs(10),
            "const now = document.querySelector('.uplot'); return !!now && now !== window.before",
        )
        .await;
    assert_eq!(redrawn, true);
    assert_eq!(browser.eval(theme).await[0], "light");
    browser.quit().await;
    browser_screenshot(&format!("{base}/?theme=dark"), 3_000, "board-dark").await;
    browser_screenshot(
        &format!("{base}/device?name=GFAgie01&theme=dark"),
        6_000,
        "device-dark",
    )
    .await;
}
