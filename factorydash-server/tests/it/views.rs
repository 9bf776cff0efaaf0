//! The board and the charts as people read them (issue 22), in a real browser driven over
//! WebDriver: the numbers on a chart's axes, steps, a bookmarked view, the summary line,
//! the wall board at 1920×1080 and the phone at 390×844, in light and dark, with no text
//! overlapping and nothing wider than the screen. Screenshots of each go to
//! `target/browser-screenshots/` for people to look at.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::support::{
    get_json, postgres_url, recording, replay_finished, serve_following, serve_replay, simulate,
    simulated_agents, start, wait_for, Browser, FreshDb,
};

/// A lathe recorded for these tests: X about 17.85184 mm, a spindle about 10,000 rpm and a
/// spindle load reported only when it changes (see its README).
fn chart_recording() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/chart-recording")
}

/// What is wrong with the page's layout as a person would see it (a script for
/// [`Browser::eval`]): `wide`, elements reaching past the right edge of the viewport;
/// `overlaps`, pairs of visible texts drawn over each other; `broken`, words or numbers
/// wrapped over two lines (other than after a hyphen, an underscore or a slash);
/// `contrast`, texts below WCAG AA contrast on their background.
const LAYOUT_PROBLEMS: &str = r#"
const visible = (el) => {
  for (let e = el; e; e = e.parentElement) {
    const cs = getComputedStyle(e);
    if (cs.display === 'none' || cs.visibility === 'hidden' || e.hidden) return false;
  }
  return true;
};
// A box cut by the scrolling or clipping ancestors of `el` (an element, or a text node cut
// by its own element's ellipsis).
const clipped = (el, r) => {
  let { left, top, right, bottom } = r;
  for (let e = el.parentElement; e && e !== document.body; e = e.parentElement) {
    const cs = getComputedStyle(e);
    if (cs.overflowX !== 'visible' || cs.overflowY !== 'visible') {
      const c = e.getBoundingClientRect();
      left = Math.max(left, c.left); right = Math.min(right, c.right);
      top = Math.max(top, c.top); bottom = Math.min(bottom, c.bottom);
    }
  }
  return { left, top, right, bottom };
};
const wide = [];
for (const el of document.body.querySelectorAll('*')) {
  if (!visible(el)) continue;
  const r = clipped(el, el.getBoundingClientRect());
  if (r.right > innerWidth + 1 && r.right > r.left) wide.push(el.tagName + '.' + el.className + ' ' + Math.round(r.right));
}
const texts = [], broken = [];
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
while (walker.nextNode()) {
  const node = walker.currentNode, text = node.textContent.trim();
  if (!text || !node.parentElement || !visible(node.parentElement)) continue;
  if (node.parentElement.closest('script, style, option, select, .u-legend')) continue;
  const range = document.createRange();
  range.selectNodeContents(node);
  const rects = [...range.getClientRects()].filter((r) => r.width > 1 && r.height > 1);
  const lines = new Set(rects.map((r) => Math.round(r.top)));
  // A word broken over lines, other than after a hyphen, an underscore or a slash (a
  // path or a URL broken between its parts).
  if (!/\s/.test(node.textContent) && lines.size > 1) {
    const top = (i) => { const r = document.createRange(); r.setStart(node, i); r.setEnd(node, i + 1); return Math.round(r.getBoundingClientRect().top); };
    const t = node.textContent;
    for (let i = 1; i < t.length; i++) {
      if (top(i) !== top(i - 1) && !'-_/'.includes(t[i - 1])) { broken.push(t); break; }
    }
  }
  for (const r of rects) {
    const c = clipped(node, r);
    if (c.right - c.left > 1 && c.bottom - c.top > 1) texts.push({ node, c, text: text.slice(0, 40) + ' (' + node.parentElement.tagName + '.' + node.parentElement.className + ' ' + Math.round(c.left) + ',' + Math.round(c.top) + ')' });
  }
}
// WCAG 2.1 contrast (1.4.3, AA): 4.5:1 for text, 3:1 for large text (24 px, or 18.66 px
// bold), of each text's colour on the first opaque background behind it.
const rgb = (c) => (c.match(/[\d.]+/g) || []).map(Number);
const luminance = ([r, g, b]) => {
  const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
};
const contrast = [];
const seen = new Set();
for (const { node } of texts) {
  const el = node.parentElement;
  if (seen.has(el)) continue;
  seen.add(el);
  let bg = null;
  for (let e = el; e; e = e.parentElement) {
    const c = rgb(getComputedStyle(e).backgroundColor);
    if (c.length === 3 || (c.length === 4 && c[3] > 0.9)) { bg = c; break; }
  }
  if (!bg) bg = [255, 255, 255];
  const cs = getComputedStyle(el), fg = rgb(cs.color);
  const [a, b] = [luminance(fg), luminance(bg)].sort((x, y) => y - x);
  const ratio = (a + 0.05) / (b + 0.05), size = parseFloat(cs.fontSize), bold = Number(cs.fontWeight) >= 700;
  const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
  if (ratio < needed) contrast.push(node.textContent.trim().slice(0, 30) + ' ' + ratio.toFixed(2) + ' < ' + needed + ' (' + el.tagName + '.' + el.className + ' ' + cs.color + ' on ' + bg + ')');
}
const overlaps = [];
for (let i = 0; i < texts.length; i++) {
  for (let j = i + 1; j < texts.length; j++) {
    if (texts[i].node === texts[j].node) continue;
    const a = texts[i].c, b = texts[j].c;
    const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
    const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
    if (w > 2 && h > 2) overlaps.push(texts[i].text + ' / ' + texts[j].text);
  }
}
return { wide, overlaps: overlaps.slice(0, 20), broken: broken.slice(0, 20), contrast: contrast.slice(0, 20),
  scrollWidth: document.documentElement.scrollWidth, innerWidth };
"#;

/// Asserts that the page in `browser` has none of [`LAYOUT_PROBLEMS`]; `what` names it.
async fn assert_laid_out(browser: &Browser, what: &str) {
    let problems = browser.eval(LAYOUT_PROBLEMS).await;
    for key in ["wide", "overlaps", "broken", "contrast"] {
        assert_eq!(
            problems[key].as_array().map(Vec::len),
            Some(0),
            "{what}: {key}: {problems}"
        );
    }
    assert!(
        problems["scrollWidth"].as_u64() <= problems["innerWidth"].as_u64(),
        "{what} scrolls sideways: {problems}"
    );
}

/// The chart of the page open in `browser` once it has drawn `series` series: its axes'
/// tick values (`splits`), their labels as drawn (`values`), each label's width in the
/// axis font and the axis' size (CSS pixels), its x scale (seconds) and series labels.
async fn chart(browser: &Browser, series: usize) -> Value {
    browser
        .wait_until(
            "the chart",
            Duration::from_secs(20),
            &format!(
                "const c = window.factorydashChart;
                 if (!c || !c.plot || c.plot.series.length - 1 !== {series}) return null;
                 const p = c.plot, ctx = document.createElement('canvas').getContext('2d');
                 return {{ drawnMs: c.drawnMs, points: c.points, numeric: c.numeric,
                   x: [p.scales.x.min, p.scales.x.max], series: p.series.slice(1).map((s) => s.label),
                   axes: p.axes.map((a) => {{
                     ctx.font = a.font[0];
                     const values = (a._values || []).map(String);
                     return {{ label: a.label || '', scale: a.scale, size: a._size, splits: a._splits || [], values,
                       widths: values.map((v) => ctx.measureText(v).width / devicePixelRatio) }};
                   }}) }}"
            ),
        )
        .await
}

/// Asserts that every label of the y axes reads its tick's number in full (thousands
/// separators aside), the labels differ, the axis is as wide as its widest label, and the
/// axis carries `units`; returns the labels.
fn assert_labels_read_the_ticks(chart: &Value, axis: usize, units: &str) -> Vec<String> {
    let a = &chart["axes"][axis];
    assert_eq!(a["label"], units, "{chart}");
    let splits: Vec<f64> = a["splits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let labels: Vec<String> = a["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert!(splits.len() >= 2, "{chart}");
    assert_eq!(splits.len(), labels.len(), "{chart}");
    let step = (splits[1] - splits[0]).abs();
    for (value, label) in splits.iter().zip(&labels) {
        let read: f64 = label
            .replace(',', "")
            .parse()
            .unwrap_or_else(|_| panic!("{label:?} is not a number: {chart}"));
        assert!(
            (read - value).abs() <= step / 2.0 + 1e-9 * value.abs(),
            "the label {label:?} reads {read}, its tick is {value}: {chart}"
        );
    }
    let distinct: std::collections::BTreeSet<&String> = labels.iter().collect();
    assert_eq!(distinct.len(), labels.len(), "labels repeat: {labels:?}");
    let widest = a["widths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_f64().unwrap())
        .fold(0.0, f64::max);
    assert!(
        a["size"].as_f64().unwrap() >= widest,
        "the axis ({}) is narrower than its widest label ({widest}): {chart}",
        a["size"]
    );
    labels
}

fn rfc3339(seconds: f64) -> String {
    let t = chrono::DateTime::from_timestamp_millis((seconds * 1000.0).round() as i64).unwrap();
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The observations of the lathe's `item` as stored: (seconds since the epoch, value).
async fn observations(base: &str, item: &str) -> Vec<(f64, String)> {
    let (status, body) = get_json(&format!(
        "{base}/api/series?device=Lathe1&dataItemId={item}&from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z"
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    body["series"][0]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let t = chrono::DateTime::parse_from_rfc3339(o["timestamp"].as_str().unwrap()).unwrap();
            let value = match &o["value"] {
                Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            (t.timestamp_millis() as f64 / 1000.0, value)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn chart_axes_read_every_number_samples_are_steps_and_a_bookmark_restores_the_view() {
    let server = serve_replay(&chart_recording(), "10").await;
    let base = &server.base;
    replay_finished(base).await;
    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.resize(1600, 1000).await;
    let load = observations(base, "Sload").await;
    let values: Vec<&str> = load.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(values, ["0", "80", "0", "80"], "{load:?}");
    let (from, to) = (load[0].0 - 1.0, load[3].0 + 1.0);
    let window = format!("from={}&to={}", rfc3339(from), rfc3339(to));

    // X about 17.85184 mm: every label reads 17.851…, none lost its leading digits.
    browser
        .open(&format!("{base}/device?name=Lathe1&item=Xpos&{window}"))
        .await;
    let x = chart(&browser, 1).await;
    let labels = assert_labels_read_the_ticks(&x, 1, "MILLIMETER");
    assert!(labels.iter().all(|l| l.starts_with("17.851")), "{labels:?}");
    browser.screenshot("chart-x-position").await;

    // The spindle about 10,000 rpm: "10,000", never "0,000".
    browser
        .open(&format!("{base}/device?name=Lathe1&item=Sspeed&{window}"))
        .await;
    let speed = chart(&browser, 1).await;
    let labels = assert_labels_read_the_ticks(&speed, 1, "REVOLUTION/MINUTE");
    assert!(labels.iter().any(|l| l == "10,000"), "{labels:?}");

    // The load, reported at 0, 80, 0, 80: halfway between two reports the line is at the
    // earlier value (a step), not halfway between the two (a ramp).
    browser
        .open(&format!("{base}/device?name=Lathe1&item=Sload&{window}"))
        .await;
    chart(&browser, 1).await;
    let columns = browser
        .eval(&format!(
            "const p = window.factorydashChart.plot, ctx = p.ctx;
             const column = (t) => {{
               const x = Math.round(p.valToPos(t, 'x', true));
               const {{ data }} = ctx.getImageData(x, 0, 1, ctx.canvas.height), ys = [];
               for (let y = 0; y < ctx.canvas.height; y++) {{
                 const [r, g, b, a] = data.slice(y * 4, y * 4 + 4);
                 if (a > 128 && Math.abs(r - 9) < 50 && Math.abs(g - 105) < 50 && Math.abs(b - 218) < 50) ys.push(y);
               }}
               return ys;
             }};
             return {{ at80: column({mid80}), at0: column({mid0}),
               y80: p.valToPos(80, 'y', true), y40: p.valToPos(40, 'y', true), y0: p.valToPos(0, 'y', true) }}",
            mid80 = (load[1].0 + load[2].0) / 2.0,
            mid0 = (load[2].0 + load[3].0) / 2.0,
        ))
        .await;
    let ys = |key: &str| -> Vec<f64> {
        columns[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    };
    let at = |key: &str| columns[key].as_f64().unwrap();
    for (key, level) in [("at80", at("y80")), ("at0", at("y0"))] {
        let drawn = ys(key);
        assert!(!drawn.is_empty(), "the line is drawn there: {columns}");
        assert!(
            drawn.iter().all(|y| (y - level).abs() <= 4.0),
            "{key}: the line is at {drawn:?}, the step at {level}: {columns}"
        );
        assert!(
            drawn.iter().all(|y| (y - at("y40")).abs() > 10.0),
            "{key}: a ramp through 40 %: {columns}"
        );
    }
    browser.screenshot("chart-steps").await;
    // A window of seconds has time ticks less than a second apart: each reads its own
    // time, with its fraction of a second.
    let times = browser
        .eval("return window.factorydashChart.plot.axes[0]._values")
        .await;
    let times: Vec<&str> = times
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let distinct: std::collections::BTreeSet<&&str> = times.iter().collect();
    assert_eq!(distinct.len(), times.len(), "time labels repeat: {times:?}");

    // Two series of different units: two y axes, each with its units. The address says
    // all of it, and opening it again restores the view.
    let view = format!("{base}/device?name=Lathe1&item=Xpos&item=Sspeed&{window}");
    browser.open(&view).await;
    let both = chart(&browser, 2).await;
    assert_eq!(both["series"], serde_json::json!(["Xact", "Sspeed"]));
    assert_labels_read_the_ticks(&both, 1, "MILLIMETER");
    assert_labels_read_the_ticks(&both, 2, "REVOLUTION/MINUTE");
    let x_scale = |c: &Value| [c["x"][0].as_f64().unwrap(), c["x"][1].as_f64().unwrap()];
    assert!((x_scale(&both)[0] - from).abs() < 0.01, "{both}");
    assert!((x_scale(&both)[1] - to).abs() < 0.01, "{both}");
    assert_laid_out(&browser, "the device page at 1600×1000").await;
    browser.screenshot("chart-two-axes-1600").await;
    let address = browser
        .eval("return location.href")
        .await
        .as_str()
        .unwrap()
        .to_owned();
    browser.open(&address).await;
    let again = chart(&browser, 2).await;
    assert_eq!(again["series"], both["series"]);
    assert_eq!(x_scale(&again), x_scale(&both));

    // A preset goes to the address too, and a wall screen opened on it follows live.
    browser.click("button.window[data-window='5m']").await;
    let address = browser
        .wait_until(
            "the preset in the address",
            Duration::from_secs(10),
            "return location.search.includes('window=5m') && !location.search.includes('from=') && location.href",
        )
        .await;
    browser.open(address.as_str().unwrap()).await;
    let live = chart(&browser, 2).await;
    let [min, max] = x_scale(&live);
    assert!((max - min - 300.0).abs() < 1.0, "a 5-minute window: {live}");
    let now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
    assert!((max - now).abs() < 30.0, "ending now: {live}");
    assert_eq!(
        browser
            .eval("return document.querySelector(\"button.window[data-window='5m']\").getAttribute('aria-pressed')")
            .await,
        "true"
    );

    // Dark, and the phone.
    browser.open(&format!("{view}&theme=dark")).await;
    chart(&browser, 2).await;
    browser.screenshot("chart-two-axes-1600-dark").await;
    browser.resize(390, 844).await;
    browser.open(&view).await;
    let phone = chart(&browser, 2).await;
    assert_labels_read_the_ticks(&phone, 1, "MILLIMETER");
    assert_laid_out(&browser, "the device page at 390×844").await;
    browser.screenshot("chart-phone").await;
    browser.quit().await;
}

/// The count of each state in the board's summary line (`#summary`), and the total.
const SUMMARY: &str = "const counts = {};
  for (const a of document.querySelectorAll('#summary a.count')) counts[a.dataset.state] = a.hidden ? 0 : Number(a.querySelector('.n').textContent);
  return { counts, total: Number(document.querySelector('#summary .total .n').textContent),
    tiles: document.querySelectorAll('.card').length }";

/// The machines of `/api/devices` counted by state.
async fn api_counts(base: &str) -> (serde_json::Map<String, Value>, usize) {
    let (status, devices) = get_json(&format!("{base}/api/devices")).await;
    assert_eq!(status, 200);
    let devices = devices.as_array().unwrap();
    let mut counts = serde_json::Map::new();
    for d in devices {
        let state = d["status"]["state"].as_str().unwrap().to_owned();
        let n = counts.get(&state).and_then(Value::as_u64).unwrap_or(0);
        counts.insert(state, Value::from(n + 1));
    }
    (counts, devices.len())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_summary_counts_what_the_api_says_and_the_board_reads_on_a_desktop_and_a_phone() {
    let server = serve_replay(&recording(), "300").await;
    let base = &server.base;
    replay_finished(base).await;
    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.resize(1600, 1000).await;
    for theme in ["light", "dark"] {
        browser.open(&format!("{base}/?theme={theme}")).await;
        browser
            .wait_until(
                "live",
                Duration::from_secs(20),
                "return document.getElementById('live').textContent === 'live'",
            )
            .await;
        // The page's counts, which app.js keeps current, and the API's.
        let (api, total) = api_counts(base).await;
        let shown = browser.eval(SUMMARY).await;
        assert_eq!(shown["total"], total, "{shown}");
        assert_eq!(shown["tiles"], total, "{shown}");
        for (state, n) in shown["counts"].as_object().unwrap() {
            assert_eq!(
                n.as_u64().unwrap(),
                api.get(state).and_then(Value::as_u64).unwrap_or(0),
                "{state}: {shown} vs {api:?}"
            );
        }
        assert_laid_out(&browser, &format!("the board at 1600×1000, {theme}")).await;
        // The states on a tile are read whole (UNAVAILABLE, not UNAVAILA…).
        let cut = browser
            .eval(
                "return [...document.querySelectorAll('.card dd.f-availability, .card dd.f-execution, .card dd.f-mode, .card dd.f-estop')]
                   .filter((dd) => dd.scrollWidth > dd.clientWidth + 1).map((dd) => dd.textContent)",
            )
            .await;
        assert_eq!(cut, serde_json::json!([]), "{theme}");
        browser.screenshot(&format!("board-1600-{theme}")).await;
    }

    // A count is a filter: only that state's tiles.
    let (api, _) = api_counts(base).await;
    let (state, n) = api.iter().next().unwrap();
    browser
        .click(&format!("#summary a.count[data-state='{state}']"))
        .await;
    let shown = browser
        .wait_until(
            "the filter",
            Duration::from_secs(10),
            "return location.search.includes('state=') && [...document.querySelectorAll('.card')].filter((c) => !c.hidden && getComputedStyle(c).display !== 'none').map((c) => c.dataset.state)",
        )
        .await;
    assert_eq!(shown.as_array().unwrap().len() as u64, n.as_u64().unwrap());
    assert!(shown
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s == state.as_str()));

    // The phone: every column kept (stacked, labelled), nothing wider than the screen, no
    // word or number broken, the alarms one tap away.
    browser.resize(390, 844).await;
    for theme in ["light", "dark"] {
        for page in ["/", "/device?name=GFAgie01", "/agents"] {
            let sep = if page.contains('?') { '&' } else { '?' };
            browser
                .open(&format!("{base}{page}{sep}theme={theme}"))
                .await;
            tokio::time::sleep(Duration::from_millis(1500)).await;
            assert_laid_out(&browser, &format!("{page} at 390×844, {theme}")).await;
            let name = match page {
                "/" => "board",
                "/agents" => "agents",
                _ => "device",
            };
            browser.screenshot(&format!("phone-{name}-{theme}")).await;
        }
    }
    browser.open(&format!("{base}/")).await;
    let unlabelled = browser
        .eval(
            "return [...document.querySelectorAll('#alarms td, #rows td')]
               .filter((td) => getComputedStyle(td).display !== 'none' && !td.dataset.label).length",
        )
        .await;
    assert_eq!(unlabelled, 0, "every stacked cell says what it is");
    let hidden = browser
        .eval(
            "return [...document.querySelectorAll('#alarms td, #alarms th, #rows td')]
               .filter((c) => getComputedStyle(c).display === 'none').length",
        )
        .await;
    assert_eq!(hidden, 0, "no column is hidden on a phone");
    browser.click("nav.jump a[href='#alarms']").await;
    let alarms_top = browser
        .wait_until(
            "the jump to the alarms",
            Duration::from_secs(5),
            "const r = document.getElementById('alarms').getBoundingClientRect();
             return location.hash === '#alarms' && r.top < innerHeight && r.bottom > 0 && String(r.top)",
        )
        .await;
    assert!(alarms_top.as_str().is_some());
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_wall_board_fits_fifty_machines_on_a_1080p_screen() {
    let sim = simulate(&[
        "--agents",
        "5",
        "--machines-per-agent",
        "10",
        "--rate",
        "1hz",
        "--seed",
        "22",
    ])
    .await;
    let server = serve_following(&simulated_agents(&sim, 5), &[]).await;
    let base = &server.base;
    wait_for(base, Duration::from_secs(60), "five agents followed", |h| {
        h["sources"].as_array().is_some_and(|s| {
            s.len() == 5
                && s.iter()
                    .all(|a| a["nextSequence"].as_u64().unwrap_or(0) > 100)
        })
    })
    .await;
    let (_, total) = api_counts(base).await;
    assert_eq!(total, 50);
    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.resize(1920, 1080).await;
    for theme in ["light", "dark"] {
        browser.open(&format!("{base}/?wall=1&theme={theme}")).await;
        let fit = browser
            .wait_until(
                "fifty tiles on the screen",
                Duration::from_secs(20),
                "const cards = [...document.querySelectorAll('.card')].filter((c) => getComputedStyle(c).display !== 'none');
                 const out = cards.filter((c) => { const r = c.getBoundingClientRect();
                   return r.top < 0 || r.left < 0 || r.bottom > innerHeight + 1 || r.right > innerWidth + 1; });
                 const spill = cards.filter((c) => c.scrollHeight > c.clientHeight + 1 || c.scrollWidth > c.clientWidth + 1);
                 const s = document.querySelector('.card .state');
                 return cards.length === 50 && document.getElementById('live').textContent === 'live' && {
                   cards: cards.length, out: out.length, spill: spill.map((c) => c.dataset.device),
                   scroll: document.documentElement.scrollHeight - innerHeight,
                   stateFont: parseFloat(getComputedStyle(s).fontSize), tileHeight: cards[0].getBoundingClientRect().height }",
            )
            .await;
        assert_eq!(fit["out"], 0, "every tile on the screen: {fit}");
        assert!(
            fit["scroll"].as_f64().unwrap() <= 1.0,
            "no scrolling: {fit}"
        );
        assert_eq!(fit["spill"], serde_json::json!([]), "{fit}");
        // Readable from across the room: the state in type at least 18 px on a 1080p wall.
        assert!(fit["stateFont"].as_f64().unwrap() >= 18.0, "{fit}");
        assert_laid_out(&browser, &format!("the wall at 1920×1080, {theme}")).await;
        // State never by colour alone: every tile writes it.
        let unwritten = browser
            .eval("return [...document.querySelectorAll('.card')].filter((c) => !c.querySelector('.state').textContent.trim()).length")
            .await;
        assert_eq!(unwritten, 0);
        browser.screenshot(&format!("wall-1920-{theme}")).await;
    }
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thirty_day_chart_of_a_1_hz_sample_is_drawn_from_m4_buckets_and_timed() {
    let Some(server_url) = postgres_url("views_30d") else {
        return;
    };
    let db = FreshDb::create(&server_url, "views_30d").await;
    let server = start(&[
        "serve",
        "--replay",
        chart_recording().to_str().unwrap(),
        "--speed",
        "50",
        "--database-url",
        &db.url,
        "--retention",
        "60d",
        "--listen",
        "127.0.0.1:0",
    ])
    .await;
    let base = &server.base;
    replay_finished(base).await;
    // 30 days of X at 1 Hz before the replay, 2,592,000 rows, as the follower writes them.
    let client = db.connect().await;
    client
        .batch_execute(
            "SELECT factorydash_observation_partition(d::date)
               FROM generate_series(now() - interval '31 days', now() + interval '1 day', interval '1 day') AS d",
        )
        .await
        .unwrap();
    const ROWS: i64 = 30 * 86_400;
    let loading = std::time::Instant::now();
    for chunk in 0..6 {
        let (a, b) = (chunk * ROWS / 6, (chunk + 1) * ROWS / 6);
        client
            .execute(
                "INSERT INTO observations (agent_id, instance_id, sequence, ts, device, component_id,
                     data_item_id, name, category, kind, sub_type, value)
                 SELECT l.agent_id, l.instance_id + 1, i, l.ts - interval '1 minute' - ($3::bigint - i) * interval '1 second',
                     l.device, l.component_id, l.data_item_id, l.name, l.category, l.kind, l.sub_type,
                     to_char(100 + 50 * sin(i / 3600.0), 'FM990.00000')
                 FROM latest AS l, generate_series($1::bigint, $2::bigint - 1) AS i
                 WHERE l.data_item_id = 'Xpos'",
                &[&a, &b, &ROWS],
            )
            .await
            .unwrap();
    }
    client.batch_execute("ANALYZE observations").await.unwrap();
    eprintln!(
        "loaded {ROWS} rows in {:.1} s",
        loading.elapsed().as_secs_f64()
    );
    let Some(browser) = Browser::start().await else {
        db.drop().await;
        return;
    };
    browser.resize(1600, 1000).await;
    let mut drawn = Vec::new();
    for _ in 0..3 {
        browser
            .open(&format!("{base}/device?name=Lathe1&item=Xpos&window=30d"))
            .await;
        let c = chart(&browser, 1).await;
        // The window ends now and the rows a minute before the replay: all but its first
        // seconds are in it.
        assert!(
            c["numeric"].as_u64().unwrap() >= ROWS as u64 - 600,
            "the window holds the 30 days: {c}"
        );
        assert!(c["points"].as_u64().unwrap() <= 2 * 1600 * 4, "{c}");
        drawn.push(c["drawnMs"].as_f64().unwrap());
    }
    browser.screenshot("chart-30-days").await;
    browser.quit().await;
    // The target (under a second) is reported, not asserted: a timed assertion would fail
    // on a busy machine for no fault of the page. The closing note of issue 22 gives it.
    drop(server);
    drawn.sort_by(f64::total_cmp);
    eprintln!(
        "a 30-day chart of {ROWS} observations: fetched (M4 on the server) and drawn in \
         {drawn:?} ms, median {:.0} ms (target: under 1,000 ms)",
        drawn[1]
    );
    db.drop().await;
}
