//! The plant's layout (`[[cell]]` tables in the configuration file) on the board and the
//! wall board: 128 simulated machines as four agents, followed by `serve`, looked at in
//! Chromium. The wall shows one box per cell with counts that agree with `/api/devices`,
//! fits a 1920×1080 screen without scrolling and drills down to a cell's tiles; the board
//! groups its tiles under the cells' headings and keeps them there as they change.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{
    get_json, serve_following, serve_with_config, simulate, simulated_agents, Browser,
};

/// The cells of the test's layout, in the order they are shown (by line, then as written):
/// Line A's two cells, Line B's, then the devices no cell takes.
const SHOWN: [&str; 4] = ["Mazaks", "Early", "Agent 2", "Unassigned"];

/// The layout, as the configuration file writes it, for the agents at `agents`.
fn config(agents: &[String]) -> String {
    let agents: Vec<String> = agents.iter().map(|a| format!("{a:?}")).collect();
    format!(
        r#"agents = [{}]
poll-interval = "200ms"

[[cell]]
name = "Mazaks"
line = "Line A"
devices = ["Mazak-*"]

[[cell]]
name = "Agent 2"
line = "Line B"
devices = ["*/agent-02|*"]

# Matches some Mazaks too: the first matching cell (Mazaks) takes them.
[[cell]]
name = "Early"
line = "Line A"
devices = ["*-001?", "*-000?"]
"#,
        agents.join(", ")
    )
}

/// The cell of a device by the layout's rules, written out by hand: the first that
/// matches, in the file's order.
fn cell_of(agent: &str, name: &str) -> String {
    // `*-001?` or `*-000?`: the fifth to second last characters.
    let early = name.len() >= 5
        && name.is_char_boundary(name.len() - 5)
        && ["-001", "-000"].contains(&&name[name.len() - 5..name.len() - 1]);
    if name.starts_with("Mazak-") {
        "Mazaks"
    } else if agent.trim_end_matches('/').ends_with("/agent-02") {
        "Agent 2"
    } else if early {
        "Early"
    } else {
        "Unassigned"
    }
    .to_owned()
}

/// A device's cell by a test's layout, from its agent and name.
type CellOf = fn(&str, &str) -> String;

/// Each cell's machines by state, from `/api/devices`, placed by `cell_of`.
async fn expected(base: &str, cell_of: CellOf) -> BTreeMap<String, BTreeMap<String, u64>> {
    let (status, devices) = get_json(&format!("{base}/api/devices")).await;
    assert_eq!(status, 200);
    let mut out: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for d in devices.as_array().unwrap() {
        let cell = cell_of(
            d["device"]["agent"].as_str().unwrap(),
            d["device"]["name"].as_str().unwrap(),
        );
        let state = d["status"]["state"].as_str().unwrap().to_owned();
        *out.entry(cell).or_default().entry(state).or_default() += 1;
    }
    out
}

/// What the page shows in each cell's overview box (`#overview .box`) or heading
/// (`.group`): its machines by state, read from the `.gc` counts shown.
const SHOWN_COUNTS: &str = r##"
    const out = {};
    const boxes = document.querySelector("body.wall") ? "#overview .box" : ".group";
    for (const box of document.querySelectorAll(boxes)) {
        if (box.hidden) continue;
        const counts = {};
        for (const gc of box.querySelectorAll(".gc")) {
            if (!gc.hidden) counts[gc.dataset.state] = Number(gc.querySelector(".n").textContent);
        }
        out[box.dataset.cell] = counts;
    }
    return out;
"##;

fn counts(v: &Value) -> BTreeMap<String, BTreeMap<String, u64>> {
    serde_json::from_value(v.clone()).unwrap()
}

/// Reads the page's counts and `/api/devices` (placed by `cell_of`) until they agree
/// (states change while the two are read), for at most `limit`; returns them.
async fn agreeing(
    browser: &Browser,
    base: &str,
    cell_of: CellOf,
    limit: Duration,
) -> BTreeMap<String, BTreeMap<String, u64>> {
    let started = Instant::now();
    loop {
        let before = expected(base, cell_of).await;
        let shown = counts(&browser.eval(SHOWN_COUNTS).await);
        let after = expected(base, cell_of).await;
        if shown == before || shown == after {
            return shown;
        }
        // The totals never change: only the states do.
        let total = |m: &BTreeMap<String, BTreeMap<String, u64>>| -> BTreeMap<String, u64> {
            m.iter()
                .map(|(k, v)| (k.clone(), v.values().sum()))
                .collect()
        };
        assert_eq!(total(&shown), total(&after), "each cell's machines");
        assert!(
            started.elapsed() < limit,
            "the page's counts {shown:?} never agreed with /api/devices {after:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

const NO_SCROLL: &str = "return document.documentElement.scrollHeight <= window.innerHeight \
    && document.documentElement.scrollWidth <= window.innerWidth";

#[tokio::test(flavor = "multi_thread")]
async fn the_wall_shows_each_cell_and_drills_down_and_the_board_groups_by_cell() {
    let sim = simulate(&[
        "--agents",
        "4",
        "--machines-per-agent",
        "32",
        "--rate",
        "1hz",
        "--fault-rate",
        "200",
        "--seed",
        "22",
    ])
    .await;
    let serve = serve_with_config(&config(&simulated_agents(&sim, 4))).await;
    let base = &serve.base;

    // Every machine known, each with data.
    let started = Instant::now();
    loop {
        let (_, devices) = get_json(&format!("{base}/api/devices")).await;
        let ready = devices
            .as_array()
            .is_some_and(|d| d.len() == 128 && d.iter().all(|d| d["status"]["state"] != "no_data"));
        if ready {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "128 machines with data: {}",
            devices.as_array().map_or(0, Vec::len)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let totals: BTreeMap<String, u64> = expected(base, cell_of)
        .await
        .into_iter()
        .map(|(k, v)| (k, v.values().sum()))
        .collect();
    assert_eq!(
        totals.keys().collect::<std::collections::BTreeSet<_>>(),
        SHOWN
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .iter()
            .collect(),
        "every cell holds machines"
    );
    assert_eq!(totals.values().sum::<u64>(), 128);

    // An unknown cell is refused, saying why.
    let (status, body) = get_json(&format!("{base}/?cell=Nowhere")).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "no cell is named 'Nowhere'");

    let Some(browser) = Browser::start().await else {
        return;
    };
    // The wall at 1920×1080: too many tiles to read, so one box per cell, in order.
    browser.resize(1920, 1080).await;
    for theme in ["light", "dark"] {
        browser.open(&format!("{base}/?wall=1&theme={theme}")).await;
        browser
            .wait_until(
                "the wall's cells",
                Duration::from_secs(20),
                "const o = document.getElementById('overview'); \
                 return o && !o.hidden && document.getElementById('devices').hidden \
                 && document.getElementById('live').textContent === 'live'",
            )
            .await;
        let order = browser
            .eval("return [...document.querySelectorAll('#overview .box:not([hidden])')].map(b => b.dataset.cell)")
            .await;
        assert_eq!(order, serde_json::json!(SHOWN), "the cells in order");
        assert_eq!(
            browser.eval(NO_SCROLL).await,
            true,
            "nothing scrolls ({theme})"
        );
        // Every box's text is inside the box: the cell's name and its worst state are
        // never cut.
        let cut = browser
            .eval(
                "return [...document.querySelectorAll('#overview .box')].filter(b => \
                 b.scrollHeight > b.clientHeight + 1 || b.querySelector('.box-title').scrollWidth > \
                 b.querySelector('.box-title').clientWidth + 1).map(b => b.dataset.cell)",
            )
            .await;
        assert_eq!(
            cut,
            serde_json::json!([]),
            "boxes whose text is cut ({theme})"
        );
        // Each box says its most urgent state, in words as well as colour.
        let said = browser
            .eval(
                "return [...document.querySelectorAll('#overview .box')].every(b => { \
                 const worst = [...b.classList].find(c => c !== 'box'); \
                 const first = b.querySelector('.gc:not([hidden])'); \
                 return first && first.dataset.state === worst \
                 && b.querySelector('.box-worst').textContent.length > 0; })",
            )
            .await;
        assert_eq!(said, true, "each box is its worst state, written");
        let shown = agreeing(&browser, base, cell_of, Duration::from_secs(30)).await;
        let shown_totals: BTreeMap<String, u64> = shown
            .iter()
            .map(|(k, v)| (k.clone(), v.values().sum()))
            .collect();
        assert_eq!(shown_totals, totals);
        browser
            .screenshot(&format!("layout-wall-1920-{theme}"))
            .await;
    }
    browser.open(&format!("{base}/?wall=1&theme=auto")).await;

    // A click on a cell: its tiles fill the screen.
    browser.click("#overview .box[data-cell=\"Mazaks\"]").await;
    browser
        .wait_until(
            "the Mazaks' tiles",
            Duration::from_secs(20),
            "return new URLSearchParams(location.search).get('cell') === 'Mazaks' \
             && !document.getElementById('devices').hidden",
        )
        .await;
    let names = browser
        .eval("return [...document.querySelectorAll('#devices .card:not([hidden])')].map(c => c.dataset.device)")
        .await;
    let names: Vec<String> = serde_json::from_value(names).unwrap();
    assert_eq!(names.len() as u64, totals["Mazaks"]);
    assert!(names.iter().all(|n| n.starts_with("Mazak-")), "{names:?}");
    assert_eq!(
        browser.eval(NO_SCROLL).await,
        true,
        "the cell's wall scrolls"
    );
    // Its tiles fill the screen: together they cover most of it.
    let covered = browser
        .eval(
            "return [...document.querySelectorAll('#devices .card')].reduce((a, c) => { \
             const r = c.getBoundingClientRect(); return a + r.width * r.height; }, 0) \
             / (innerWidth * innerHeight)",
        )
        .await;
    assert!(covered.as_f64().unwrap() > 0.5, "tiles cover {covered}");
    browser.screenshot("layout-wall-1920-cell").await;

    // The board at 1600×1000: the tiles under their cells' headings, in order, each
    // heading counting its tiles; as states change live, tiles stay in their cell.
    browser.resize(1600, 1000).await;
    browser.open(&format!("{base}/")).await;
    browser
        .wait_until(
            "the board live",
            Duration::from_secs(20),
            "return document.getElementById('live').textContent === 'live'",
        )
        .await;
    let order = browser
        .eval("return [...document.querySelectorAll('#devices .group')].map(g => g.dataset.cell)")
        .await;
    assert_eq!(order, serde_json::json!(SHOWN));
    browser.screenshot("layout-board-1600").await;
    let tiles = browser
        .eval("return document.querySelectorAll('.card').length")
        .await;
    assert_eq!(tiles, 128);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let misplaced = browser
        .eval(
            "return [...document.querySelectorAll('#devices .group')].flatMap(g => \
             [...g.querySelectorAll('.card')].map(c => [g.dataset.cell, c.dataset.agent, c.dataset.device]))",
        )
        .await;
    let misplaced: Vec<(String, String, String)> = serde_json::from_value(misplaced).unwrap();
    assert_eq!(misplaced.len(), 128);
    for (cell, agent, device) in &misplaced {
        assert_eq!(cell, &cell_of(agent, device), "{agent} {device}");
    }
    // Within a cell, what needs attention first.
    let sorted = browser
        .eval(
            "return [...document.querySelectorAll('#devices .group')].every(g => { \
             const r = [...g.querySelectorAll('.card')].map(c => Number(c.dataset.rank)); \
             return r.every((x, i) => i === 0 || r[i - 1] <= x); })",
        )
        .await;
    assert_eq!(sorted, true, "tiles by attention within each cell");
    let shown = agreeing(&browser, base, cell_of, Duration::from_secs(30)).await;
    assert_eq!(
        shown
            .iter()
            .map(|(k, v)| (k.clone(), v.values().sum()))
            .collect::<BTreeMap<String, u64>>(),
        totals
    );

    // A phone: the headings wrap, nothing is wider than the screen.
    browser.resize(390, 844).await;
    browser.open(&format!("{base}/")).await;
    browser
        .wait_until(
            "the board on a phone",
            Duration::from_secs(20),
            "return document.querySelectorAll('.group').length === 4",
        )
        .await;
    assert_eq!(
        browser
            .eval("return document.documentElement.scrollWidth <= window.innerWidth")
            .await,
        true,
        "nothing wider than a phone"
    );
    browser.screenshot("layout-board-390").await;
    browser.open(&format!("{base}/?wall=1")).await;
    browser
        .wait_until(
            "the wall on a phone",
            Duration::from_secs(20),
            "const o = document.getElementById('overview'); return o && !o.hidden",
        )
        .await;
    assert_eq!(browser.eval(NO_SCROLL).await, true, "the wall on a phone");
    browser.screenshot("layout-wall-390").await;
    browser.quit().await;
}

/// Waits until `/api/devices` at `base` lists `n` machines, each with data.
async fn machines_with_data(base: &str, n: usize) {
    let started = Instant::now();
    loop {
        let (_, devices) = get_json(&format!("{base}/api/devices")).await;
        let ready = devices
            .as_array()
            .is_some_and(|d| d.len() == n && d.iter().all(|d| d["status"]["state"] != "no_data"));
        if ready {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "{n} machines with data: {}",
            devices.as_array().map_or(0, Vec::len)
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_wall_fits_a_1920_by_1080_screen_at_1000_machines() {
    let sim = simulate(&[
        "--agents",
        "10",
        "--machines-per-agent",
        "100",
        "--rate",
        "0.2hz",
        // Quiet machines (no alarms, hour-long cycles): at 1,000 machines the page's counts
        // are compared with /api/devices once they stand still; the test above checks
        // them as they change.
        "--fault-rate",
        "0",
        "--cycle-time",
        "1h",
        "--seed",
        "1000",
    ])
    .await;
    // Without a layout: one box per state, which opens that state's tiles.
    let plain = serve_following(&simulated_agents(&sim, 10), &[]).await;
    machines_with_data(&plain.base, 1000).await;
    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.resize(1920, 1080).await;
    browser.open(&format!("{}/?wall=1", plain.base)).await;
    browser
        .wait_until(
            "the wall's states",
            Duration::from_secs(30),
            "const o = document.getElementById('overview'); return o && !o.hidden",
        )
        .await;
    assert_eq!(
        browser.eval(NO_SCROLL).await,
        true,
        "the wall by state scrolls"
    );
    let by_state = browser
        .eval(
            "const s = {}; for (const b of document.querySelectorAll('#overview .box:not([hidden])')) \
             s[b.dataset.state] = Number(b.querySelector('.gtotal .n').textContent); \
             const sum = {}; for (const a of document.querySelectorAll('#summary a.count:not([hidden])')) \
             sum[a.dataset.state] = Number(a.querySelector('.n').textContent); return [s, sum]",
        )
        .await;
    assert_eq!(
        by_state[0], by_state[1],
        "the boxes count what the summary does"
    );
    browser.screenshot("layout-wall-1920-1000-by-state").await;
    browser.quit().await;
    drop(plain);

    // Ten cells, one per agent, on two lines.
    let mut text = String::from("agents = [");
    for i in 1..=10 {
        text += &format!("{:?}, ", format!("{}/agent-{i:02}", sim.base));
    }
    text += "]\n";
    for i in 1..=10 {
        let line = if i <= 5 { "Line A" } else { "Line B" };
        text += &format!(
            "[[cell]]\nname = \"Cell {i}\"\nline = \"{line}\"\ndevices = [\"*/agent-{i:02}|*\"]\n"
        );
    }
    let serve = serve_with_config(&text).await;
    let base = &serve.base;
    machines_with_data(base, 1000).await;
    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.resize(1920, 1080).await;
    browser.open(&format!("{base}/?wall=1")).await;
    browser
        .wait_until(
            "the wall's cells",
            Duration::from_secs(30),
            "const o = document.getElementById('overview'); \
             return o && !o.hidden && document.getElementById('live').textContent === 'live'",
        )
        .await;
    assert_eq!(
        browser
            .eval("return document.querySelectorAll('#overview .box:not([hidden])').length")
            .await,
        10
    );
    assert_eq!(browser.eval(NO_SCROLL).await, true, "the wall scrolls");
    browser.screenshot("layout-wall-1920-1000-machines").await;
    // One cell of 100 tiles fills the screen without scrolling.
    browser.click("#overview .box[data-cell=\"Cell 7\"]").await;
    browser
        .wait_until(
            "Cell 7's tiles",
            Duration::from_secs(30),
            "return new URLSearchParams(location.search).get('cell') === 'Cell 7' \
             && !document.getElementById('devices').hidden \
             && document.querySelectorAll('#devices .card').length === 100",
        )
        .await;
    assert_eq!(browser.eval(NO_SCROLL).await, true, "a cell of 100 scrolls");
    browser.screenshot("layout-wall-1920-cell-of-100").await;

    // Cell N is agent-0N's.
    let by_agent: CellOf = |agent, _| {
        let n = agent.rsplit("/agent-").next().unwrap_or_default();
        format!("Cell {}", n.trim_start_matches('0'))
    };
    // Some machine of a thousand changes state every few seconds, and live updates reach
    // a page seconds behind the store on a loaded machine: the counts are compared once
    // the machines stop (the simulator ended), on a wall screen opened then. (A page that
    // followed the thousand machines live before they stopped was seen to keep counts
    // that differ from the store's: a live-path defect left for issue 26, see the
    // closing note of issue 22; the 128-machine test compares live counts as they
    // change.)
    drop(sim);
    browser.quit().await;
    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.resize(1920, 1080).await;
    browser.open(&format!("{base}/?wall=1")).await;
    let shown = agreeing(&browser, base, by_agent, Duration::from_secs(120)).await;
    assert!(
        shown.values().all(|c| c.values().sum::<u64>() == 100),
        "{shown:?}"
    );
    browser.quit().await;
    drop(serve);
}
