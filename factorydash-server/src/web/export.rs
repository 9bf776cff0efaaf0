//! `/api/export`: one data item's observations in a window, streamed as CSV or NDJSON.

use std::sync::Arc;

use factorydash_core::{Observation, TimeWindow};
use serde::Deserialize;
use warp::reply::{self, Reply, Response};

use super::errors::ApiError;
use super::params::{self, FromQuery};
use crate::state::App;

/// What the client sent to `/api/export`.
#[derive(Debug, Deserialize)]
pub struct RawExportQuery {
    device: Option<String>,
    agent: Option<String>,
    #[serde(rename = "dataItemId")]
    data_item_id: Option<String>,
    format: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// `/api/export?device=&agent=&dataItemId=&from=&to=&format=csv|ndjson`.
#[derive(Debug)]
pub struct ExportQuery {
    device: String,
    /// The device's agent (as the server shows it), where several serve one of that name.
    agent: Option<String>,
    item: String,
    /// CSV (else NDJSON).
    csv: bool,
    window: TimeWindow,
}

impl FromQuery for ExportQuery {
    type Raw = RawExportQuery;

    fn validate(q: RawExportQuery) -> Result<Self, ApiError> {
        let device = params::required(q.device, "device")?;
        let item = params::required(q.data_item_id, "dataItemId")?;
        let csv = match q.format.as_deref().unwrap_or("csv") {
            "csv" => true,
            "ndjson" => false,
            other => {
                return Err(ApiError::bad_request(format!(
                    "format must be csv or ndjson, got '{other}'"
                )))
            }
        };
        let window = params::window(q.from, q.to, chrono::Duration::hours(24))?;
        Ok(ExportQuery {
            device,
            agent: params::text(q.agent),
            item,
            csv,
            window,
        })
    }
}

/// Observations read from the store per step of an export.
const EXPORT_CHUNK: usize = 10_000;

/// `/api/export?device=&agent=&dataItemId=&from=&to=&format=csv|ndjson`: every observation of one
/// data item in a window (default the last 24 hours), oldest first, streamed as CSV (with a
/// header row) or NDJSON (one JSON observation per line), whatever its size: read from the
/// store 10,000 at a time ([`factorydash_store::Store::series_after`], keyset by
/// (timestamp, sequence, `instanceId`)), each chunk sent before the next is read, at most
/// four chunks waiting for a slow client.
pub async fn export(app: Arc<App>, q: ExportQuery) -> Result<Response, ApiError> {
    let ExportQuery {
        device,
        agent,
        item,
        csv,
        window,
    } = q;
    let key = super::api::resolve_device(&app, &device, agent.as_deref())
        .await?
        .key();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let file: String = format!("{device}-{item}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    tokio::spawn(async move {
        if csv {
            let mut w = csv::Writer::from_writer(Vec::new());
            let _ = w.write_record(EXPORT_COLUMNS);
            let head = w.into_inner().unwrap_or_default();
            if tx.send(Ok(head)).await.is_err() {
                return;
            }
        }
        // One chunk read, turned into bytes and sent at a time: what the export holds is
        // bounded by the chunk (and the channel's four chunks of bytes), whatever the
        // window holds and however many observations share a timestamp.
        let mut after = None;
        loop {
            let chunk = match app
                .store
                .series_after(&key, &item, &window, after, EXPORT_CHUNK)
                .await
            {
                Ok(chunk) => chunk,
                Err(e) => {
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    return;
                }
            };
            let bytes = if csv {
                csv_rows(&chunk.observations)
            } else {
                ndjson_rows(&chunk.observations)
            };
            drop(chunk.observations);
            if tx.send(Ok(bytes)).await.is_err() {
                return;
            }
            match chunk.next {
                Some(next) => after = Some(next),
                None => return,
            }
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    let content_type = if csv {
        "text/csv; charset=utf-8"
    } else {
        "application/x-ndjson"
    };
    let extension = if csv { "csv" } else { "ndjson" };
    let reply = reply::with_header(warp::reply::stream(body), "content-type", content_type);
    let reply = reply::with_header(
        reply,
        "content-disposition",
        format!("attachment; filename=\"{file}.{extension}\""),
    );
    Ok(reply.into_response())
}

/// The CSV export's columns.
const EXPORT_COLUMNS: [&str; 12] = [
    "timestamp",
    "sequence",
    "device",
    "componentId",
    "dataItemId",
    "name",
    "category",
    "type",
    "subType",
    "value",
    "conditionLevel",
    "nativeCode",
];

/// `cell` as a spreadsheet will not run it: text an agent sent that begins with `=`, `+`,
/// `-`, `@`, a tab or a carriage return is a formula to Excel and LibreOffice (OWASP, "CSV
/// Injection"), so it gets a leading `'`; a number (`-0.5`) is left as it is.
fn spreadsheet_safe(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') if cell.parse::<f64>().is_err() => {
            format!("'{cell}").into()
        }
        _ => cell.into(),
    }
}

fn csv_rows(items: &[Observation]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::with_capacity(items.len() * 96));
    for o in items {
        let c = o.condition.as_ref();
        let _ = w.write_record([
            o.timestamp
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
                .as_str(),
            &o.sequence.to_string(),
            spreadsheet_safe(&o.device).as_ref(),
            spreadsheet_safe(&o.component_id).as_ref(),
            spreadsheet_safe(&o.data_item_id).as_ref(),
            spreadsheet_safe(o.name.as_deref().unwrap_or("")).as_ref(),
            o.category.as_str(),
            spreadsheet_safe(&o.kind).as_ref(),
            spreadsheet_safe(o.sub_type.as_deref().unwrap_or("")).as_ref(),
            spreadsheet_safe(o.value.as_text().unwrap_or("UNAVAILABLE")).as_ref(),
            c.map_or("", |c| c.level.as_str()),
            spreadsheet_safe(c.and_then(|c| c.native_code.as_deref()).unwrap_or("")).as_ref(),
        ]);
    }
    w.into_inner().unwrap_or_default()
}

fn ndjson_rows(items: &[Observation]) -> Vec<u8> {
    let mut out = Vec::with_capacity(items.len() * 200);
    for o in items {
        if serde_json::to_writer(&mut out, o).is_ok() {
            out.push(b'\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::spreadsheet_safe;

    #[test]
    fn formulas_are_defused_and_numbers_kept() {
        for (cell, shown) in [
            ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
            ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("-", "'-"),
            ("\tx", "'\tx"),
            ("-0.25", "-0.25"),
            ("+12", "+12"),
            ("ACTIVE", "ACTIVE"),
            ("", ""),
        ] {
            assert_eq!(spreadsheet_safe(cell), shown, "{cell}");
        }
    }
}
