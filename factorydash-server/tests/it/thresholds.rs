//! Limits on the chart: a device model's Specifications and Constraints (MTConnect Part 2)
//! in `/api/devices` and drawn on the device page's chart, thresholds set by hand from
//! the address; and the Tools section's cutting items' life, changing live.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{get_json, serve_following, serve_replay, simulate, wait_for, Browser};

/// A recording of demo.mtconnect.org (agent 2.7, OKUMA and Mazak) made of real fixtures:
/// its `/probe` (whose Mazak axes have `Specification`s) and two of its `/sample` pages
/// of the same instance, copied into a fresh directory.
fn demo_recording() -> PathBuf {
    let fixtures =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../factorydash-mtconnect/tests/fixtures");
    let dir = std::env::temp_dir().join(format!("fd-demo-limits-{}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir).unwrap();
    for (from, to) in [
        (
            "demo-mtconnect-org-probe-2026-04-22-agent2.7.xml",
            "probe.xml",
        ),
        (
            "demo-mtconnect-org-sample-2026-04-22-1000obs-agent2.7.xml",
            "sample-1.xml",
        ),
        (
            "demo-mtconnect-org-sample-2026-04-22-chunk1-agent2.7.xml",
            "sample-2.xml",
        ),
    ] {
        std::fs::copy(fixtures.join(from), dir.join(to)).unwrap();
    }
    dir
}

/// The data item `id` of the device `name` in an `/api/devices` answer.
fn item<'a>(devices: &'a Value, name: &str, id: &str) -> &'a Value {
    devices
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["device"]["name"] == name)
        .unwrap_or_else(|| panic!("no device {name}"))["device"]["dataItems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id)
        .unwrap_or_else(|| panic!("no data item {id}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn api_devices_gives_each_data_item_its_limits_from_the_device_model() {
    let dir = demo_recording();
    let server = serve_replay(&dir, "300").await;
    let base = &server.base;
    wait_for(base, Duration::from_secs(30), "some data", |h| {
        h["observations"].as_u64().unwrap_or(0) > 100
    })
    .await;
    let (status, devices) = get_json(&format!("{base}/api/devices")).await;
    assert_eq!(status, 200);
    // Mazak's B axis: `<Specification id="spec027" type="ANGLE" units="DEGREE">` with
    // Maximum 120 and Minimum -30, on its two ANGLE samples.
    let spec = |kind: &str, value: f64| {
        json!({ "type": kind, "value": value, "source": "specification",
                "specificationId": "spec027", "units": "DEGREE" })
    };
    for id in ["Babs", "Bpos"] {
        assert_eq!(
            item(&devices, "Mazak", id)["limits"],
            json!([spec("Maximum", 120.0), spec("Minimum", -30.0)]),
            "{id}"
        );
    }
    assert_eq!(
        item(&devices, "Mazak", "Cabs")["limits"][0]["value"],
        360.0,
        "the C2 axis' own specification"
    );
    // Not on the ANGLE Condition; LENGTH, LINEAR_FORCE and VELOCITY specifications name
    // no data item type of the linear axes, so their positions have none.
    for (device, id) in [
        ("Mazak", "Btravel"),
        ("Mazak", "Xabs"),
        ("OKUMA", "LX1actm"),
    ] {
        assert_eq!(item(&devices, device, id)["limits"], json!([]), "{id}");
    }
    let with_limits = devices
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| d["device"]["dataItems"].as_array().unwrap())
        .filter(|i| !i["limits"].as_array().unwrap().is_empty())
        .count();
    assert_eq!(with_limits, 4, "Babs, Bpos, Cabs, Cpos");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_chart_draws_the_model_limits_and_thresholds_from_the_address() {
    let dir = demo_recording();
    let server = serve_replay(&dir, "300").await;
    let base = &server.base;
    wait_for(base, Duration::from_secs(60), "the whole replay", |h| {
        h["sources"][0]["state"] == "finished"
    })
    .await;
    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.resize(1600, 1000).await;
    // Xabs (MILLIMETER, the left axis: it has data, from -650 to -473 mm) and Babs
    // (DEGREE, the right axis, no observation in these pages: its limits make its scale);
    // two thresholds set by hand, one of them across the data, and two that are no
    // threshold (not a number, empty).
    let url = format!(
        "{base}/device?name=Mazak&item=Xabs&item=Babs&window=2m&th=-550%7Csetpoint&th=-700&th=abc&th="
    );
    browser.open(&url).await;
    let drawn = browser
        .wait_until(
            "the chart with its thresholds",
            Duration::from_secs(20),
            "const c = window.factorydashChart; return c && c.plot && c.points > 0 && c.thresholds.length && c.thresholds",
        )
        .await;
    let drawn = drawn.as_array().unwrap();
    let summary: Vec<(String, f64, String, String, bool)> = drawn
        .iter()
        .map(|t| {
            (
                t["label"].as_str().unwrap().to_owned(),
                t["value"].as_f64().unwrap(),
                t["source"].as_str().unwrap().to_owned(),
                t["scale"].as_str().unwrap().to_owned(),
                t["crossed"].as_bool().unwrap(),
            )
        })
        .collect();
    let s = |label: &str, value: f64, source: &str, scale: &str, crossed: bool| {
        (
            label.to_owned(),
            value,
            source.to_owned(),
            scale.to_owned(),
            crossed,
        )
    };
    assert_eq!(
        summary,
        [
            s("max 120 °", 120.0, "specification", "y2", false),
            s("min -30 °", -30.0, "specification", "y2", false),
            s("setpoint", -550.0, "hand", "y", true),
            s("threshold -700", -700.0, "hand", "y", false),
        ]
    );
    // Each on screen: the scales take them in.
    assert!(drawn.iter().all(|t| t["visible"] == true), "{drawn:?}");
    let scales = browser
        .eval("const p = window.factorydashChart.plot; return [p.scales.y.min, p.scales.y.max, p.scales.y2.min, p.scales.y2.max]")
        .await;
    let [y_min, y_max, y2_min, y2_max] = [0, 1, 2, 3].map(|i| scales[i].as_f64().unwrap());
    assert!(y_min <= -700.0 && y_max >= -473.0, "{scales}");
    assert!(y2_min <= -30.0 && y2_max >= 120.0, "{scales}");
    // The model's limits in Babs' colour, the hand-set ones in the text's.
    assert_eq!(drawn[0]["colour"], "#d1242f");
    assert_ne!(drawn[2]["colour"], drawn[0]["colour"]);
    browser.screenshot("chart-thresholds-1600").await;

    // Hidden: the model's limits leave the chart and the address says so; a threshold
    // added with the form joins the address.
    browser.click("#show-limits").await;
    browser.type_into("#th-value", "-600").await;
    browser.type_into("#th-label", "low").await;
    browser.click("#threshold-form button[type=submit]").await;
    let labels = browser
        .wait_until(
            "the limits hidden and the threshold added",
            Duration::from_secs(10),
            "const t = window.factorydashChart.thresholds; return t.length === 3 && t.map(t => t.label)",
        )
        .await;
    assert_eq!(labels, json!(["setpoint", "threshold -700", "low"]));
    let address = browser.eval("return location.search").await;
    let address = address.as_str().unwrap();
    assert!(address.contains("limits=off"), "{address}");
    assert!(address.contains("th=-600%7Clow"), "{address}");
    assert!(!address.contains("th=abc"), "{address}");
    browser.click("#show-limits").await;

    // Dark, as a bookmark of it opens.
    browser.open(&format!("{url}&theme=dark")).await;
    browser
        .wait_until(
            "the dark chart",
            Duration::from_secs(20),
            "const c = window.factorydashChart; return c && c.plot && c.thresholds.length === 4",
        )
        .await;
    browser.screenshot("chart-thresholds-1600-dark").await;
    browser.quit().await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_tools_section_shows_item_life_and_follows_it_live() {
    let sim = simulate(&[
        "--agents",
        "1",
        "--machines-per-agent",
        "3",
        "--rate",
        "10hz",
        "--seed",
        "7",
    ])
    .await;
    let agent = format!("{}/agent-01", sim.base);
    let serve = serve_following(std::slice::from_ref(&agent), &[]).await;
    // The simulated Hurco: of the three models, the one whose agent publishes
    // AssetChanged (MTConnect Part 2), after which the server reads the tools again.
    let (_, devices) = wait_for_devices(&serve.base).await;
    let name = devices
        .iter()
        .filter_map(|d| d["device"]["name"].as_str())
        .find(|n| n.starts_with("Hurco"))
        .unwrap()
        .to_owned();
    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.resize(1600, 1000).await;
    browser
        .open(&format!("{}/device?name={name}", serve.base))
        .await;
    // Every simulated tool has one cutting item (its inserts) with a MINUTES ItemLife.
    let items = browser
        .wait_until(
            "the tools' item lives",
            Duration::from_secs(40),
            "const rows = [...document.querySelectorAll('#tools tr[data-item]')];
             return rows.length && rows.map(r => r.querySelector('td').textContent + ' = ' + r.querySelector('.value').textContent)",
        )
        .await;
    let items = items.as_array().unwrap();
    assert_eq!(items.len(), 6, "{items:?}");
    assert!(
        items
            .iter()
            .all(|i| i.as_str().unwrap().starts_with("items 1-")
                && i.as_str().unwrap().contains("MINUTES")),
        "{items:?}"
    );
    // The section read again while the page stays open: an item's life moved on.
    browser
        .eval(
            "window.firstTools = document.getElementById('tools');
             window.firstLives = [...document.querySelectorAll('#tools tr[data-item] .value')].map(v => v.textContent).join(';');
             return true",
        )
        .await;
    browser
        .eval("document.getElementById('tools').scrollIntoView(); return true")
        .await;
    let changed = browser
        .wait_until(
            "an item life to change live",
            Duration::from_secs(90),
            "const now = document.getElementById('tools');
             const lives = [...document.querySelectorAll('#tools tr[data-item] .value')].map(v => v.textContent).join(';');
             return now !== window.firstTools && lives !== window.firstLives && lives",
        )
        .await;
    assert!(changed.as_str().unwrap().contains("minutes"), "{changed}");
    browser.screenshot("tools-item-life-1600").await;
    browser
        .open(&format!("{}/device?name={name}&theme=dark", serve.base))
        .await;
    browser
        .wait_until(
            "the dark page's tools",
            Duration::from_secs(20),
            "const t = document.getElementById('tools'); return t && t.querySelector('tr[data-item]') && (t.scrollIntoView(), true)",
        )
        .await;
    browser.screenshot("tools-item-life-1600-dark").await;
    browser.quit().await;
}

/// `/api/devices` once it lists the three simulated machines.
async fn wait_for_devices(base: &str) -> (u16, Vec<Value>) {
    let start = std::time::Instant::now();
    loop {
        let (status, devices) = get_json(&format!("{base}/api/devices")).await;
        if let Some(d) = devices.as_array().filter(|d| d.len() == 3) {
            return (status, d.clone());
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no device in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
