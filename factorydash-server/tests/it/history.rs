//! History and export over real HTTP from a real `factorydash serve` on SQLite and on
//! PostgreSQL (issue 22): `/api/series` and `/api/export` of several data items of two
//! devices in one request (long and wide, CSV and NDJSON, the values checked against the
//! observations written, the wide form's step-filling), the refusals (a count of `device`
//! or `agent` that pairs with nothing, more than 16 data items, a data item the device's
//! model does not have), a data item named twice taken once, the file names, and
//! `/api/alarms` and `/api/utilization` as CSV.

use chrono::{DateTime, DurationRound, Utc};
use factorydash_core::{
    Batch, Category, ConditionLevel, ConditionState, DataItemInfo, DeviceInfo, Observation, Value,
};
use factorydash_store::Store;
use serde_json::{json, Value as Json};

use crate::support::{get_json, postgres_url, start, FreshDb};

/// An agent nobody serves (the discard port): `serve` follows it and fails to reach it,
/// so the store keeps what was written into it.
const AGENT: &str = "http://127.0.0.1:9";

fn data_item(id: &str, category: Category, kind: &str, units: Option<&str>) -> DataItemInfo {
    DataItemInfo {
        id: id.into(),
        name: None,
        category,
        kind: kind.into(),
        sub_type: None,
        units: units.map(str::to_owned),
        component: "Linear".into(),
        component_id: "c".into(),
        component_name: None,
    }
}

/// Two devices: Mazak01 with a position (mm), its execution and a Condition; Mazak02 with
/// a position (mm).
fn devices() -> Vec<DeviceInfo> {
    let device = |name: &str, data_items| DeviceInfo {
        agent: AGENT.into(),
        name: name.into(),
        uuid: None,
        id: name.to_lowercase(),
        data_items,
    };
    vec![
        device(
            "Mazak01",
            vec![
                data_item("m1-x", Category::Sample, "POSITION", Some("MILLIMETER")),
                data_item("m1-exec", Category::Event, "EXECUTION", None),
                data_item("m1-system", Category::Condition, "SYSTEM", None),
            ],
        ),
        device(
            "Mazak02",
            vec![data_item(
                "m2-x",
                Category::Sample,
                "POSITION",
                Some("MILLIMETER"),
            )],
        ),
    ]
}

/// What is written, as (seconds after `t0`, device, dataItemId, value): each data item's
/// history around the window `t0` .. `t0 + 60 s`, in time order (the sequence follows).
/// Mazak01's position goes UNAVAILABLE at 20 s; both positions move at 10 s.
const WRITTEN: [(i64, &str, &str, &str); 14] = [
    (-30, "Mazak01", "m1-exec", "READY"),
    (-5, "Mazak01", "m1-x", "0.5"),
    (0, "Mazak01", "m1-x", "1.5"),
    (5, "Mazak01", "m1-exec", "ACTIVE"),
    (10, "Mazak01", "m1-x", "2.5"),
    (10, "Mazak02", "m2-x", "7"),
    (12, "Mazak01", "m1-system", "FAULT"),
    (15, "Mazak02", "m2-x", "8"),
    (20, "Mazak01", "m1-x", "UNAVAILABLE"),
    (22, "Mazak01", "m1-system", "NORMAL"),
    (25, "Mazak01", "m1-exec", "STOPPED"),
    (30, "Mazak01", "m1-x", "4.0"),
    // After the window.
    (61, "Mazak01", "m1-x", "9.5"),
    (61, "Mazak02", "m2-x", "9"),
];

fn at(t0: DateTime<Utc>, seconds: i64) -> DateTime<Utc> {
    t0 + chrono::Duration::seconds(seconds)
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// The devices and [`WRITTEN`], through the store API.
async fn fill(store: &dyn Store, t0: DateTime<Utc>) {
    store.put_devices(AGENT, &devices()).await.unwrap();
    let observations = WRITTEN
        .iter()
        .enumerate()
        .map(|(i, &(seconds, device, item, value))| {
            let info = devices()
                .into_iter()
                .flat_map(|d| d.data_items)
                .find(|d| d.id == item)
                .unwrap();
            let (value, condition) = match (info.category, value) {
                (_, "UNAVAILABLE") => (Value::Unavailable, None),
                (Category::Condition, "FAULT") => (
                    Value::Text("Overheat".into()),
                    Some(ConditionState {
                        level: ConditionLevel::Fault,
                        native_code: Some("E1".into()),
                        native_severity: None,
                        qualifier: None,
                    }),
                ),
                (Category::Condition, _) => (
                    Value::Text(String::new()),
                    Some(ConditionState {
                        level: ConditionLevel::Normal,
                        native_code: None,
                        native_severity: None,
                        qualifier: None,
                    }),
                ),
                (_, text) => (Value::Text(text.into()), None),
            };
            Observation {
                sequence: i as u64 + 1,
                timestamp: at(t0, seconds),
                device: device.into(),
                component_id: "c".into(),
                data_item_id: item.into(),
                name: None,
                category: info.category,
                kind: factorydash_core::element_name(&info.kind),
                sub_type: None,
                value,
                condition,
            }
        })
        .collect::<Vec<_>>();
    let mut observations = observations;
    // A data item the device's model lacks (agents send some they never declared).
    observations.push(Observation {
        sequence: 15,
        timestamp: at(t0, 1),
        device: "Mazak01".into(),
        component_id: "c".into(),
        data_item_id: "m1-load".into(),
        name: Some("load".into()),
        category: Category::Sample,
        kind: "Load".into(),
        sub_type: None,
        value: Value::Text("42".into()),
        condition: None,
    });
    let batch = Batch {
        agent: AGENT.into(),
        instance_id: 1,
        next_sequence: observations.len() as u64 + 1,
        observations,
    };
    assert_eq!(store.append(&batch).await.unwrap().inserted, 15);
}

/// A whole second two hours ago: inside the retention `serve` prunes by.
fn two_hours_ago() -> DateTime<Utc> {
    (Utc::now() - chrono::Duration::hours(2))
        .duration_trunc(chrono::Duration::seconds(1))
        .unwrap()
}

/// A request refused: its parameters, its status and what its error must say.
type Refusal<'a> = (Vec<(&'a str, &'a str)>, u16, Vec<&'a str>);

/// `pairs` as a query string.
fn query(pairs: &[(&str, &str)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        q.append_pair(k, v);
    }
    q.finish()
}

async fn get(url: &str) -> reqwest::Response {
    reqwest::get(url)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"))
}

/// The `filename` of a download's `Content-Disposition`.
fn file_name(response: &reqwest::Response) -> String {
    let disposition = response.headers()["content-disposition"].to_str().unwrap();
    let name = disposition
        .strip_prefix("attachment; filename=\"")
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or_else(|| panic!("{disposition}"));
    name.to_owned()
}

/// A CSV body as its header and rows.
fn csv_rows(body: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    let header = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

/// Everything this file checks, against a `serve` at `base` over a store [`fill`]ed at
/// `t0`.
async fn history_over_http(base: &str, t0: DateTime<Utc>) {
    let (from, to) = (rfc3339(t0), rfc3339(at(t0, 60)));
    let window = [("from", from.as_str()), ("to", to.as_str())];
    let stamp = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H-%M-%SZ").to_string();
    let file_window = format!("{}_{}", stamp(t0), stamp(at(t0, 60)));
    // Three data items of two devices: the device given per data item, by position.
    let three: Vec<(&str, &str)> = [
        ("dataItemId", "m1-x"),
        ("device", "Mazak01"),
        ("dataItemId", "m1-exec"),
        ("device", "Mazak01"),
        ("dataItemId", "m2-x"),
        ("device", "Mazak02"),
    ]
    .into_iter()
    .chain(window)
    .collect();

    // /api/series: one object per data item, in the order named, with its model's units,
    // category and type, and its observations of the window.
    let (status, answer) = get_json(&format!("{base}/api/series?{}", query(&three))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (answer["from"].as_str(), answer["to"].as_str()),
        (Some(&*from), Some(&*to))
    );
    let series = answer["series"].as_array().unwrap();
    assert_eq!(series.len(), 3, "{answer}");
    let head = |s: &Json| {
        json!([
            s["device"],
            s["agent"],
            s["dataItemId"],
            s["units"],
            s["category"],
            s["type"]
        ])
    };
    assert_eq!(
        series.iter().map(head).collect::<Vec<_>>(),
        [
            json!(["Mazak01", AGENT, "m1-x", "MILLIMETER", "SAMPLE", "POSITION"]),
            json!(["Mazak01", AGENT, "m1-exec", null, "EVENT", "EXECUTION"]),
            json!(["Mazak02", AGENT, "m2-x", "MILLIMETER", "SAMPLE", "POSITION"]),
        ]
    );
    let values = |s: &Json| -> Vec<(String, Json)> {
        s["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    o["timestamp"].as_str().unwrap().to_owned(),
                    o["value"].clone(),
                )
            })
            .collect()
    };
    let want = |item: &str| -> Vec<(String, Json)> {
        WRITTEN
            .iter()
            .filter(|w| w.2 == item && (0..60).contains(&w.0))
            .map(|&(s, _, _, v)| {
                let v = if v == "UNAVAILABLE" {
                    Json::Null
                } else {
                    json!(v)
                };
                (rfc3339(at(t0, s)), v)
            })
            .collect()
    };
    for (s, item) in series.iter().zip(["m1-x", "m1-exec", "m2-x"]) {
        assert_eq!(values(s), want(item), "{item}");
    }

    // A data item the model lacks but the store holds is answered as its observations
    // describe it.
    let (status, load) = get_json(&format!(
        "{base}/api/series?{}",
        query(&[
            ("device", "Mazak01"),
            ("dataItemId", "m1-load"),
            ("from", &from),
            ("to", &to)
        ])
    ))
    .await;
    assert_eq!(status, 200, "{load}");
    assert_eq!(
        head(&load["series"][0]),
        json!(["Mazak01", AGENT, "m1-load", null, "SAMPLE", "Load"])
    );
    assert_eq!(
        values(&load["series"][0]),
        [(rfc3339(at(t0, 1)), json!("42"))]
    );

    // Downsampled for a chart: Mazak01's position breaks where it was UNAVAILABLE.
    let (status, chart) = get_json(&format!(
        "{base}/api/series?{}&maxPoints=400",
        query(&three)
    ))
    .await;
    assert_eq!(status, 200, "{chart}");
    let x = &chart["series"][0];
    assert_eq!(x["numeric"], 3, "{x}");
    assert_eq!(
        x["points"],
        json!([
            [rfc3339(t0), 1.5],
            [rfc3339(at(t0, 10)), 2.5],
            [rfc3339(at(t0, 20)), null],
            [rfc3339(at(t0, 30)), 4.0]
        ])
    );
    let buckets = x["buckets"].as_array().unwrap();
    let unavailable: Vec<&Json> = buckets.iter().filter(|b| b["unavailable"] == 1).collect();
    assert_eq!(unavailable.len(), 1, "{x}");
    assert_eq!(
        (
            &unavailable[0]["count"],
            &unavailable[0]["min"],
            &unavailable[0]["first"]
        ),
        (&json!(0), &Json::Null, &json!([rfc3339(at(t0, 20)), null]))
    );
    // The execution has no numbers: its buckets are empty, its line too.
    assert_eq!(chart["series"][1]["numeric"], 0);
    assert_eq!(chart["series"][1]["points"], json!([]));
    assert_eq!(chart["series"][2]["numeric"], 2);

    // One device given once for all its data items; a data item named twice (once with
    // its agent, once without) is answered once.
    let (status, once) = get_json(&format!(
        "{base}/api/series?{}",
        query(&[
            ("device", "Mazak01"),
            ("agent", ""),
            ("dataItemId", "m1-x"),
            ("dataItemId", "m1-exec"),
            ("dataItemId", "m1-x"),
            ("from", &from),
            ("to", &to),
        ])
    ))
    .await;
    assert_eq!(status, 200, "{once}");
    let ids: Vec<&Json> = once["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["dataItemId"])
        .collect();
    assert_eq!(ids, [&json!("m1-x"), &json!("m1-exec")]);
    let (status, once) = get_json(&format!(
        "{base}/api/series?{}",
        query(&[
            ("dataItemId", "m1-x"),
            ("device", "Mazak01"),
            ("agent", AGENT),
            ("dataItemId", "m1-x"),
            ("device", "Mazak01"),
            ("agent", ""),
        ])
    ))
    .await;
    assert_eq!(status, 200, "{once}");
    assert_eq!(once["series"].as_array().unwrap().len(), 1, "{once}");
    // Sixteen data items is the most: the same one sixteen times is one series.
    let mut sixteen = vec![("device", "Mazak01")];
    sixteen.extend(std::iter::repeat_n(("dataItemId", "m1-x"), 16));
    let (status, body) = get_json(&format!("{base}/api/series?{}", query(&sixteen))).await;
    assert_eq!(
        (status, body["series"].as_array().map(Vec::len)),
        (200, Some(1)),
        "{body}"
    );

    // Refusals, each saying what is wrong.
    let mut seventeen = sixteen.clone();
    seventeen.push(("dataItemId", "m1-exec"));
    let refused: Vec<Refusal<'_>> = vec![
        (seventeen, 400, vec!["at most 16", "17"]),
        (
            vec![
                ("device", "Mazak01"),
                ("device", "Mazak02"),
                ("dataItemId", "m1-x"),
                ("dataItemId", "m1-exec"),
                ("dataItemId", "m2-x"),
            ],
            400,
            vec!["device must be given once", "(3)", "got 2"],
        ),
        (
            vec![
                ("device", "Mazak01"),
                ("agent", AGENT),
                ("agent", AGENT),
                ("dataItemId", "m1-x"),
                ("dataItemId", "m1-exec"),
                ("dataItemId", "m1-x"),
            ],
            400,
            vec!["agent must be", "(3)", "got 2"],
        ),
        (
            vec![
                ("device", "Mazak01"),
                ("dataItemId", "m1-x"),
                ("dataItemId", "nope"),
            ],
            404,
            vec!["'nope'", "'Mazak01'"],
        ),
        (
            vec![
                ("device", "Mazak01"),
                ("device", "Mazak02"),
                ("dataItemId", "m1-x"),
                ("dataItemId", "m1-x"),
            ],
            404,
            vec!["'m1-x'", "'Mazak02'"],
        ),
        (
            vec![("device", "Mazak03"), ("dataItemId", "m1-x")],
            404,
            vec!["'Mazak03'"],
        ),
        (
            vec![
                ("device", "Mazak01"),
                ("dataItemId", "m1-x"),
                ("dataItemId", "m1-exec"),
                ("limit", "60000"),
            ],
            400,
            vec!["limit", "at most 50000"],
        ),
        (
            vec![
                ("device", "Mazak01"),
                ("dataItemId", "m1-x"),
                ("from", &from),
                ("from", &to),
            ],
            400,
            vec!["from must be given at most once"],
        ),
    ];
    for (pairs, code, needles) in &refused {
        // An export has no limit.
        let series_only = pairs.iter().any(|p| p.0 == "limit");
        for route in ["series", "export"] {
            if route == "export" && series_only {
                continue;
            }
            let url = format!("{base}/api/{route}?{}", query(pairs));
            let (status, body) = get_json(&url).await;
            assert_eq!(status, *code, "{url}: {body}");
            let error = body["error"].as_str().unwrap();
            for needle in needles {
                assert!(error.contains(needle), "{url}: {error}");
            }
        }
    }

    // /api/export, long: a row per observation of the three, in time order, with the
    // agent and the units.
    let export = |shape: &'static str, format: &'static str| {
        let mut q = three.clone();
        q.push(("shape", shape));
        q.push(("format", format));
        format!("{base}/api/export?{}", query(&q))
    };
    let response = get(&export("long", "csv")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    assert_eq!(
        file_name(&response),
        format!("factorydash_several-devices_{file_window}.csv")
    );
    let (header, rows) = csv_rows(&response.text().await.unwrap());
    assert_eq!(
        header,
        [
            "timestamp",
            "sequence",
            "agent",
            "device",
            "componentId",
            "dataItemId",
            "name",
            "category",
            "type",
            "subType",
            "value",
            "units",
            "conditionLevel",
            "nativeCode"
        ]
    );
    let chosen = ["m1-x", "m1-exec", "m2-x"];
    let long: Vec<(i64, &str, &str, &str)> = WRITTEN
        .iter()
        .filter(|w| chosen.contains(&w.2) && (0..60).contains(&w.0))
        .copied()
        .collect();
    assert_eq!(rows.len(), long.len(), "{rows:?}");
    for (row, &(seconds, device, item, value)) in rows.iter().zip(&long) {
        let units = if item == "m1-exec" { "" } else { "MILLIMETER" };
        assert_eq!(
            (&*row[0], &*row[2], &*row[3], &*row[5], &*row[10], &*row[11]),
            (
                &*rfc3339(at(t0, seconds)),
                AGENT,
                device,
                item,
                value,
                units
            ),
            "{row:?}"
        );
    }
    let sequences: Vec<u64> = rows.iter().map(|r| r[1].parse().unwrap()).collect();
    assert!(sequences.windows(2).all(|w| w[0] < w[1]), "{sequences:?}");
    // The same as NDJSON: the observations as /api/series gives them, with agent and units.
    let response = get(&export("long", "ndjson")).await;
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    assert_eq!(
        file_name(&response),
        format!("factorydash_several-devices_{file_window}.ndjson")
    );
    let lines: Vec<Json> = response
        .text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), long.len());
    for (line, &(seconds, device, item, value)) in lines.iter().zip(&long) {
        let value = if value == "UNAVAILABLE" {
            Json::Null
        } else {
            json!(value)
        };
        let units = if item == "m1-exec" {
            Json::Null
        } else {
            json!("MILLIMETER")
        };
        assert_eq!(
            json!([
                line["timestamp"],
                line["agent"],
                line["device"],
                line["dataItemId"],
                line["value"],
                line["units"]
            ]),
            json!([rfc3339(at(t0, seconds)), AGENT, device, item, value, units]),
        );
    }

    // Wide: a row per instant, each data item's value held from its last observation at
    // or before it (one before the window included), empty before its first.
    let response = get(&export("wide", "csv")).await;
    assert_eq!(response.status(), 200);
    let (header, rows) = csv_rows(&response.text().await.unwrap());
    let columns = [
        "timestamp",
        "Mazak01:m1-x [MILLIMETER]",
        "Mazak01:m1-exec",
        "Mazak02:m2-x [MILLIMETER]",
    ];
    assert_eq!(header, columns);
    let wide: Vec<(i64, [&str; 3])> = vec![
        (0, ["1.5", "READY", ""]),
        (5, ["1.5", "ACTIVE", ""]),
        (10, ["2.5", "ACTIVE", "7"]),
        (15, ["2.5", "ACTIVE", "8"]),
        (20, ["UNAVAILABLE", "ACTIVE", "8"]),
        (25, ["UNAVAILABLE", "STOPPED", "8"]),
        (30, ["4.0", "STOPPED", "8"]),
    ];
    let want: Vec<Vec<String>> = wide
        .iter()
        .map(|(s, cells)| {
            std::iter::once(rfc3339(at(t0, *s)))
                .chain(cells.iter().map(|c| c.to_string()))
                .collect()
        })
        .collect();
    assert_eq!(rows, want);
    let lines: Vec<Json> = get(&export("wide", "ndjson"))
        .await
        .text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let want: Vec<Json> = wide
        .iter()
        .map(|(s, cells)| {
            let mut line = serde_json::Map::new();
            line.insert(columns[0].into(), json!(rfc3339(at(t0, *s))));
            for (column, cell) in columns[1..].iter().zip(cells) {
                let cell = if cell.is_empty() {
                    Json::Null
                } else {
                    json!(cell)
                };
                line.insert(column.to_string(), cell);
            }
            Json::Object(line)
        })
        .collect();
    assert_eq!(lines, want);
    // One device's export is named after it.
    let response = get(&format!(
        "{base}/api/export?{}",
        query(&[
            ("device", "Mazak01"),
            ("dataItemId", "m1-x"),
            ("from", &from),
            ("to", &to),
            ("format", "ndjson")
        ])
    ))
    .await;
    assert_eq!(
        file_name(&response),
        format!("factorydash_Mazak01_{file_window}.ndjson")
    );
    let (status, body) = get_json(&format!("{}&shape=tall", export("long", "csv"))).await;
    assert_eq!(status, 400, "{body}");

    // /api/alarms and /api/utilization as CSV: the JSON answer's rows.
    let one = [
        ("device", "Mazak01"),
        ("from", from.as_str()),
        ("to", to.as_str()),
    ];
    let (_, alarms) = get_json(&format!("{base}/api/alarms?{}", query(&one))).await;
    let response = get(&format!("{base}/api/alarms?{}&format=csv", query(&one))).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    assert_eq!(response.headers()["x-omitted"], "0");
    assert_eq!(
        file_name(&response),
        format!("factorydash_alarms_Mazak01_{file_window}.csv")
    );
    let (header, rows) = csv_rows(&response.text().await.unwrap());
    assert_eq!(
        header[..5],
        ["device", "agent", "dataItemId", "type", "level"]
    );
    let episodes = alarms["episodes"].as_array().unwrap();
    assert_eq!((episodes.len(), rows.len()), (1, 1), "{alarms}");
    let e = &episodes[0];
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert_eq!(
        [
            &rows[0][column("device")],
            &rows[0][column("dataItemId")],
            &rows[0][column("level")],
            &rows[0][column("nativeCode")],
            &rows[0][column("message")],
            &rows[0][column("began")],
            &rows[0][column("ended")],
            &rows[0][column("durationSeconds")],
        ],
        [
            "Mazak01",
            "m1-system",
            "Fault",
            "E1",
            "Overheat",
            &rfc3339(at(t0, 12)),
            &rfc3339(at(t0, 22)),
            "10"
        ]
    );
    assert_eq!(e["began"], rfc3339(at(t0, 12)));
    assert_eq!(e["durationSeconds"], 10.0);
    let (status, body) = get_json(&format!("{base}/api/alarms?{}&format=xml", query(&one))).await;
    assert_eq!(status, 400, "{body}");

    let (_, utilization) = get_json(&format!("{base}/api/utilization?{}", query(&one))).await;
    let intervals = |rows: &[Vec<String>]| -> Vec<(String, String, String)> {
        rows.iter()
            .map(|r| (r[4].clone(), r[5].clone(), r[6].clone()))
            .collect()
    };
    let response = get(&format!(
        "{base}/api/utilization?{}&format=csv",
        query(&one)
    ))
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        file_name(&response),
        format!("factorydash_utilization_Mazak01_{file_window}.csv")
    );
    assert!(response.headers().get("x-next-cursor").is_none());
    let (header, rows) = csv_rows(&response.text().await.unwrap());
    assert_eq!(
        header,
        [
            "device",
            "agent",
            "dataItemId",
            "type",
            "state",
            "from",
            "to",
            "seconds"
        ]
    );
    let want: Vec<(String, String, String)> = utilization["intervals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let s = |k: &str| i[k].as_str().unwrap().to_owned();
            (s("state"), s("from"), s("to"))
        })
        .collect();
    assert_eq!(intervals(&rows), want, "{utilization}");
    assert_eq!(
        intervals(&rows),
        [
            ("READY".into(), rfc3339(t0), rfc3339(at(t0, 5))),
            ("ACTIVE".into(), rfc3339(at(t0, 5)), rfc3339(at(t0, 25))),
            ("STOPPED".into(), rfc3339(at(t0, 25)), rfc3339(at(t0, 60))),
        ]
    );
    assert_eq!(rows[1][7], "20");
    // A page at a time: the next page's cursor in a header.
    let response = get(&format!(
        "{base}/api/utilization?{}&format=csv&limit=2",
        query(&one)
    ))
    .await;
    let next = response.headers()["x-next-cursor"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(csv_rows(&response.text().await.unwrap()).1.len(), 2);
    let response = get(&format!(
        "{base}/api/utilization?{}&format=csv&limit=2&cursor={next}",
        query(&one)
    ))
    .await;
    assert!(response.headers().get("x-next-cursor").is_none());
    let (_, rest) = csv_rows(&response.text().await.unwrap());
    assert_eq!(intervals(&rest), want[2..]);
}

#[tokio::test(flavor = "multi_thread")]
async fn several_data_items_of_two_devices_in_one_series_and_export_on_sqlite() {
    let dir = tempfile_dir();
    let t0 = two_hours_ago();
    {
        let store = factorydash_store::sqlite::SqliteStore::open(dir.join("factorydash.db"))
            .await
            .unwrap();
        fill(&store, t0).await;
    }
    let serve = start(&[
        "serve",
        "--agent",
        AGENT,
        "--data-dir",
        dir.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ])
    .await;
    history_over_http(&serve.base, t0).await;
    drop(serve);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn several_data_items_of_two_devices_in_one_series_and_export_on_postgres() {
    let Some(server) = postgres_url("history") else {
        return;
    };
    let db = FreshDb::create(&server, "history").await;
    let t0 = two_hours_ago();
    {
        let store = factorydash_store::postgres::PgStore::connect(&db.url)
            .await
            .unwrap();
        fill(&store, t0).await;
    }
    let serve = start(&[
        "serve",
        "--agent",
        AGENT,
        "--database-url",
        &db.url,
        "--listen",
        "127.0.0.1:0",
    ])
    .await;
    history_over_http(&serve.base, t0).await;
    drop(serve);
    db.drop().await;
}

/// A directory of its own under the system's temporary directory.
fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("factorydash-history-{}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
