//! `/api/export`: the observations of one or several data items in a window, streamed as
//! CSV or NDJSON, long (a row per observation) or wide (a row per instant, a column per
//! data item); and what the other routes' `format=csv` answers share ([`csv_answer`],
//! [`file_name`], [`spreadsheet_safe`]).

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use factorydash_core::{ConditionLevel, Observation, TimeWindow, Value};
use factorydash_store::{SeriesKey, StoreError};
use serde::Serialize;
use warp::reply::{self, Reply, Response};

use super::api::{resolve_items, Item};
use super::errors::ApiError;
use super::params::{self, FromQuery};
use crate::state::App;

/// `/api/export?dataItemId=&device=&agent=&from=&to=&format=csv|ndjson&shape=long|wide`:
/// one or several data items ([`params::items`]: `dataItemId` repeated, `device` and
/// `agent` once or paired by position).
#[derive(Debug)]
pub struct ExportQuery {
    items: Vec<params::NamedItem>,
    /// CSV (else NDJSON).
    csv: bool,
    /// A row per instant and a column per data item (else a row per observation).
    wide: bool,
    window: TimeWindow,
}

impl FromQuery for ExportQuery {
    type Raw = params::QueryPairs;

    fn validate(q: params::QueryPairs) -> Result<Self, ApiError> {
        let items = params::items(&q)?;
        let csv = match q.one("format")?.as_deref().unwrap_or("csv") {
            "csv" => true,
            "ndjson" => false,
            other => {
                return Err(ApiError::bad_request(format!(
                    "format must be csv or ndjson, got '{other}'"
                )))
            }
        };
        let wide = match q.one("shape")?.as_deref().unwrap_or("long") {
            "long" => false,
            "wide" => true,
            other => {
                return Err(ApiError::bad_request(format!(
                    "shape must be long or wide, got '{other}'"
                )))
            }
        };
        let window = params::window(q.one("from")?, q.one("to")?, chrono::Duration::hours(24))?;
        Ok(ExportQuery {
            items,
            csv,
            wide,
            window,
        })
    }
}

/// Observations read from the store per step of an export, over all its data items: each
/// data item reads its share at a time (at least [`MIN_ITEM_CHUNK`]).
const EXPORT_CHUNK: usize = 10_000;
/// The fewest observations one data item reads at a time.
const MIN_ITEM_CHUNK: usize = 500;
/// Rows are sent once they make this many bytes.
const SEND_BYTES: usize = 256 * 1024;
/// The room a send's bytes are gathered in: [`SEND_BYTES`] and the most the CSV writer
/// adds at once (its 8 KiB buffer) or a row, so that it seldom grows.
const ROOM: usize = SEND_BYTES + 16 * 1024;

/// `/api/export`: every observation of one or several data items (of one or several
/// devices) in a window (UTC; default the last 24 hours), streamed whatever its size as
/// CSV (with a header row) or NDJSON (one JSON object per line):
///
/// - `shape=long` (the default): a row per observation, in time order across the data
///   items (timestamp, then `sequence`, then the data item's position in the request).
///   CSV columns: `timestamp` (RFC 3339, UTC), `sequence`, `agent` (as the server shows
///   it), `device`, `componentId`, `dataItemId`, `name`, `category`, `type`, `subType`,
///   `value` (`UNAVAILABLE` for UNAVAILABLE), `units` (the device model's),
///   `conditionLevel`, `nativeCode`. NDJSON: the observation as `/api/series` gives it,
///   with its `agent` and `units`.
/// - `shape=wide`: a row per distinct timestamp, a column per data item, named
///   `device:dataItemId` (` (agent)` added where two agents' devices share the name) and
///   ` [units]` where the model gives units; each cell is the value of the data item's last
///   observation at or before the row's time (one before the window included), empty
///   (`null` in NDJSON) before its first; `UNAVAILABLE` for UNAVAILABLE, and a Condition's
///   level. NDJSON: `{"timestamp": ..., "<column>": value, ...}` with the CSV's column
///   names.
///
/// Each data item is read from the store a chunk at a time
/// ([`factorydash_store::Store::series_after`], keyset by (timestamp, sequence,
/// `instanceId`); 10,000 observations a step shared among the data items) and the chunks
/// merged (a k-way merge: the earliest head first), the rows sent as they are made, at
/// most four sends waiting for a slow client: what an export holds is bounded by the
/// chunks, whatever the window holds. The file is named after the device (or
/// `several-devices`) and the window ([`file_name`]).
///
/// # Errors
/// As `/api/series`: 404 for a device or data item that does not exist, 409 for an
/// ambiguous device name, 503 when the store fails before the answer begins; a failure
/// after it began cuts the body short.
pub async fn export(
    app: Arc<App>,
    scope: crate::accounts::Scope,
    q: ExportQuery,
) -> Result<Response, ApiError> {
    let ExportQuery {
        items,
        csv,
        wide,
        window,
    } = q;
    let items = resolve_items(&app, &scope, &items).await?;
    let device = match items.as_slice() {
        [first, rest @ ..] if rest.iter().all(|i| i.key.device == first.key.device) => {
            first.key.device.as_str()
        }
        _ => "several-devices",
    };
    let extension = if csv { "csv" } else { "ndjson" };
    let file = file_name(device, &window, extension);
    // A wide export starts from the value each data item held when the window began.
    let mut held = Vec::with_capacity(items.len());
    if wide {
        for item in &items {
            let before = app
                .store
                .last_before(&item.key, &item.info.id, window.from())
                .await?;
            held.push(before.as_ref().map(|o| wide_cell(o).into_owned()));
        }
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    tokio::spawn(async move {
        let mut out = Rows::new(tx, csv);
        let written = if wide {
            write_wide(&app, &items, &window, held, &mut out).await
        } else {
            write_long(&app, &items, &window, &mut out).await
        };
        match written {
            Ok(()) => {
                out.send().await;
            }
            Err(Stop::Store(e)) => {
                let _ = out.tx.send(Err(std::io::Error::other(e.to_string()))).await;
            }
            Err(Stop::Gone) => {}
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
    Ok(attachment(warp::reply::stream(body), content_type, &file))
}

/// Why an export stopped before its end.
enum Stop {
    /// The client went away.
    Gone,
    /// The store failed.
    Store(StoreError),
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Self {
        Stop::Store(e)
    }
}

/// An export's rows, gathered into bytes and sent once they make [`SEND_BYTES`].
struct Rows {
    tx: tokio::sync::mpsc::Sender<Result<Vec<u8>, std::io::Error>>,
    /// CSV rows, or NDJSON lines in `ndjson`.
    csv: Option<csv::Writer<Vec<u8>>>,
    ndjson: Vec<u8>,
}

impl Rows {
    fn new(tx: tokio::sync::mpsc::Sender<Result<Vec<u8>, std::io::Error>>, csv: bool) -> Self {
        Rows {
            tx,
            csv: csv.then(|| csv::Writer::from_writer(Vec::with_capacity(ROOM))),
            ndjson: Vec::new(),
        }
    }

    /// Writes a CSV record (each cell [`spreadsheet_safe`]).
    fn record<'c>(&mut self, cells: impl IntoIterator<Item = &'c str>) {
        if let Some(w) = &mut self.csv {
            let _ = w.write_record(cells.into_iter().map(|c| bytes(spreadsheet_safe(c))));
        }
    }

    /// Writes an NDJSON line.
    fn line(&mut self, value: &impl Serialize) {
        if serde_json::to_writer(&mut self.ndjson, value).is_ok() {
            self.ndjson.push(b'\n');
        }
    }

    /// The bytes gathered, taken.
    fn take(&mut self) -> Vec<u8> {
        match &mut self.csv {
            Some(w) => {
                let full = std::mem::replace(w, csv::Writer::from_writer(Vec::with_capacity(ROOM)));
                full.into_inner().unwrap_or_default()
            }
            None => std::mem::take(&mut self.ndjson),
        }
    }

    fn held(&self) -> usize {
        self.csv
            .as_ref()
            .map_or(self.ndjson.len(), |w| w.get_ref().len())
    }

    /// Sends what was gathered; `false` when the client went away.
    async fn send(&mut self) -> bool {
        let bytes = self.take();
        bytes.is_empty() || self.tx.send(Ok(bytes)).await.is_ok()
    }

    /// Sends what was gathered once it makes [`SEND_BYTES`].
    async fn send_when_full(&mut self) -> Result<(), Stop> {
        if self.held() >= SEND_BYTES && !self.send().await {
            return Err(Stop::Gone);
        }
        Ok(())
    }
}

/// One data item's observations of a window, read a chunk at a time.
struct Reader {
    chunk: VecDeque<Observation>,
    after: Option<SeriesKey>,
    done: bool,
}

/// The observations of several data items of a window in time order: a k-way merge of each
/// one's chunks ([`factorydash_store::Store::series_after`]), holding one chunk of each at
/// most, and in a heap the key of each one's next observation.
struct Merge<'a> {
    app: &'a App,
    items: &'a [Item],
    window: &'a TimeWindow,
    /// Observations each data item reads at a time.
    limit: usize,
    readers: Vec<Reader>,
    /// (timestamp, sequence, position) of each data item's next observation, the earliest
    /// on top; within one data item the store's order is kept, since only its next
    /// observation is in the heap.
    heads: BinaryHeap<Reverse<(DateTime<Utc>, u64, usize)>>,
}

impl<'a> Merge<'a> {
    async fn new(
        app: &'a App,
        items: &'a [Item],
        window: &'a TimeWindow,
    ) -> Result<Merge<'a>, StoreError> {
        let mut merge = Merge {
            app,
            items,
            window,
            limit: (EXPORT_CHUNK / items.len().max(1)).max(MIN_ITEM_CHUNK),
            readers: (0..items.len())
                .map(|_| Reader {
                    chunk: VecDeque::new(),
                    after: None,
                    done: false,
                })
                .collect(),
            heads: BinaryHeap::with_capacity(items.len()),
        };
        for i in 0..items.len() {
            merge.read(i).await?;
        }
        Ok(merge)
    }

    /// Puts data item `i`'s next observation's key in the heap, reading its next chunk
    /// when the one held is used up.
    async fn read(&mut self, i: usize) -> Result<(), StoreError> {
        let item = &self.items[i];
        let reader = &mut self.readers[i];
        while reader.chunk.is_empty() && !reader.done {
            // The used chunk's room goes before the next chunk is read.
            reader.chunk = VecDeque::new();
            let chunk = self
                .app
                .store
                .series_after(
                    &item.key,
                    &item.info.id,
                    self.window,
                    reader.after,
                    self.limit,
                )
                .await?;
            reader.chunk = chunk.observations.into();
            match chunk.next {
                Some(next) => reader.after = Some(next),
                None => reader.done = true,
            }
        }
        if let Some(o) = reader.chunk.front() {
            self.heads.push(Reverse((o.timestamp, o.sequence, i)));
        }
        Ok(())
    }

    /// The next observation in time order, with its data item's position.
    async fn next(&mut self) -> Result<Option<(usize, Observation)>, StoreError> {
        let Some(Reverse((_, _, i))) = self.heads.pop() else {
            return Ok(None);
        };
        let Some(o) = self.readers[i].chunk.pop_front() else {
            return Ok(None);
        };
        self.read(i).await?;
        Ok(Some((i, o)))
    }
}

/// The long export's CSV columns.
const LONG_COLUMNS: [&str; 14] = [
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
    "nativeCode",
];

/// A line of the long NDJSON export: the observation with its agent and units.
#[derive(Serialize)]
struct LongLine<'a> {
    agent: &'a str,
    #[serde(flatten)]
    observation: &'a Observation,
    units: Option<&'a str>,
}

/// A row per observation of `items`, in time order.
async fn write_long(
    app: &App,
    items: &[Item],
    window: &TimeWindow,
    out: &mut Rows,
) -> Result<(), Stop> {
    out.record(LONG_COLUMNS);
    let mut merge = Merge::new(app, items, window).await?;
    while let Some((i, o)) = merge.next().await? {
        let item = &items[i];
        let units = item.info.units.as_deref();
        if out.csv.is_some() {
            let c = o.condition.as_ref();
            let timestamp = time(o.timestamp);
            let sequence = o.sequence.to_string();
            out.record([
                timestamp.as_str(),
                &sequence,
                &item.agent,
                &o.device,
                &o.component_id,
                &o.data_item_id,
                o.name.as_deref().unwrap_or(""),
                o.category.as_str(),
                &o.kind,
                o.sub_type.as_deref().unwrap_or(""),
                o.value.as_text().unwrap_or("UNAVAILABLE"),
                units.unwrap_or(""),
                c.map_or("", |c| c.level.as_str()),
                c.and_then(|c| c.native_code.as_deref()).unwrap_or(""),
            ]);
        } else {
            out.line(&LongLine {
                agent: &item.agent,
                observation: &o,
                units,
            });
        }
        out.send_when_full().await?;
    }
    Ok(())
}

/// What a wide export's cell shows of an observation: its value, `UNAVAILABLE`, or a
/// Condition's level.
fn wide_cell(o: &Observation) -> Cow<'_, str> {
    match (&o.condition, &o.value) {
        (Some(c), _) if c.level != ConditionLevel::Unavailable => c.level.as_str().into(),
        (Some(_), _) | (None, Value::Unavailable) => "UNAVAILABLE".into(),
        (None, Value::Text(t)) => t.as_str().into(),
    }
}

/// The wide export's column of each data item: `device:dataItemId`, with ` (agent)` where
/// another data item of the export has a device of the same name at another agent, and
/// ` [units]` where the model gives units.
fn wide_columns(items: &[Item]) -> Vec<String> {
    items
        .iter()
        .map(|item| {
            let mut name = format!("{}:{}", item.key.device, item.info.id);
            if items
                .iter()
                .any(|other| other.key.device == item.key.device && other.key != item.key)
            {
                name.push_str(&format!(" ({})", item.agent));
            }
            if let Some(units) = &item.info.units {
                name.push_str(&format!(" [{units}]"));
            }
            name
        })
        .collect()
}

/// A row per distinct timestamp of `items`' observations, each data item's cell held
/// from its last observation at or before it (`held`: the values before the window).
async fn write_wide(
    app: &App,
    items: &[Item],
    window: &TimeWindow,
    mut held: Vec<Option<String>>,
    out: &mut Rows,
) -> Result<(), Stop> {
    let columns = wide_columns(items);
    out.record(std::iter::once("timestamp").chain(columns.iter().map(String::as_str)));
    let mut merge = Merge::new(app, items, window).await?;
    let mut row_at: Option<DateTime<Utc>> = None;
    loop {
        let next = merge.next().await?;
        if let Some(at) = row_at {
            // Every observation of the row's instant is in: the row is done.
            if next.as_ref().is_none_or(|(_, o)| o.timestamp != at) {
                wide_row(out, at, &columns, &held);
                out.send_when_full().await?;
            }
        }
        let Some((i, o)) = next else {
            return Ok(());
        };
        row_at = Some(o.timestamp);
        held[i] = Some(wide_cell(&o).into_owned());
    }
}

/// Writes one wide row.
fn wide_row(out: &mut Rows, at: DateTime<Utc>, columns: &[String], held: &[Option<String>]) {
    let timestamp = time(at);
    if out.csv.is_some() {
        out.record(
            std::iter::once(timestamp.as_str())
                .chain(held.iter().map(|v| v.as_deref().unwrap_or(""))),
        );
    } else {
        let mut line = serde_json::Map::with_capacity(columns.len() + 1);
        line.insert("timestamp".into(), timestamp.into());
        for (column, value) in columns.iter().zip(held) {
            line.insert(column.clone(), value.clone().into());
        }
        out.line(&line);
    }
}

/// A time as the exports write it: RFC 3339, UTC, as precise as it is.
fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// `cell` as a spreadsheet will not run it: text an agent sent that begins with `=`, `+`,
/// `-`, `@`, a tab or a carriage return is a formula to Excel and LibreOffice (OWASP, "CSV
/// Injection"), so it gets a leading `'`; a number (`-0.5`) is left as it is.
pub(super) fn spreadsheet_safe(cell: &str) -> Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') if cell.parse::<f64>().is_err() => {
            format!("'{cell}").into()
        }
        _ => cell.into(),
    }
}

/// A cell's text as the CSV writer takes it.
fn bytes(cell: Cow<'_, str>) -> Cow<'_, [u8]> {
    match cell {
        Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
        Cow::Owned(s) => Cow::Owned(s.into_bytes()),
    }
}

/// The name of a download of `what` over `window`:
/// `factorydash_{what}_{from}_{to}.{extension}`, the times UTC to the second with `-` for
/// `:` (`2026-12-05T10-00-00Z`), every character outside `[A-Za-z0-9._-]` replaced by `_`.
pub(super) fn file_name(what: &str, window: &TimeWindow, extension: &str) -> String {
    let stamp = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H-%M-%SZ").to_string();
    format!(
        "factorydash_{what}_{}_{}.{extension}",
        stamp(window.from()),
        stamp(window.to())
    )
    .chars()
    .map(|c| {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            c
        } else {
            '_'
        }
    })
    .collect()
}

/// `reply` as a download named `file` (see [`file_name`]: nothing in it to quote).
fn attachment(reply: impl Reply, content_type: &str, file: &str) -> Response {
    let reply = reply::with_header(reply, "content-type", content_type);
    reply::with_header(
        reply,
        "content-disposition",
        format!("attachment; filename=\"{file}\""),
    )
    .into_response()
}

/// A CSV download of `rows` under `header`, each cell [`spreadsheet_safe`], named `file`:
/// for answers bounded by their own limits, made whole.
pub(super) fn csv_answer<'r>(
    header: &[&str],
    rows: impl IntoIterator<Item = Vec<Cow<'r, str>>>,
    file: &str,
) -> Response {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(header);
    for row in rows {
        let _ = w.write_record(row.iter().map(|cell| bytes(spreadsheet_safe(cell))));
    }
    let body = w.into_inner().unwrap_or_default();
    attachment(body, "text/csv; charset=utf-8", file)
}

#[cfg(test)]
mod tests {
    use super::{file_name, spreadsheet_safe};

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

    #[test]
    fn file_names_say_the_window_and_nothing_to_quote() {
        use chrono::TimeZone;
        let from = chrono::Utc.with_ymd_and_hms(2026, 12, 5, 10, 0, 0).unwrap();
        let window = factorydash_core::TimeWindow::new(
            from,
            from + chrono::Duration::hours(1) + chrono::Duration::milliseconds(500),
        )
        .unwrap();
        assert_eq!(
            file_name("Mazak01", &window, "csv"),
            "factorydash_Mazak01_2026-12-05T10-00-00Z_2026-12-05T11-00-00Z.csv"
        );
        assert_eq!(
            file_name("alarms_M\"a/z k\u{e9}", &window, "ndjson"),
            "factorydash_alarms_M_a_z_k__2026-12-05T10-00-00Z_2026-12-05T11-00-00Z.ndjson"
        );
    }
}
