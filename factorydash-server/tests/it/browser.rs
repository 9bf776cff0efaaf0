//! The pages in a real browser (headless Chromium), and agent-supplied text that tries to
//! be markup or script: it must show as text, in the served HTML and in the live DOM.

use std::path::PathBuf;
use std::time::Duration;

use crate::support::{
    browser_dom, browser_screenshot, get_json, recording, serve_replay, wait_for,
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
        let html = reqwest::get(&url).await.unwrap().text().await.unwrap();
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
