//! The columns of an observation row, written once: every column list and type list the
//! store's SQL needs (the `COPY` list, the staging table, the `UNNEST` arrays, the
//! `SELECT` lists) is built from [`COLUMNS`], and rows are read and written in its order.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use factorydash_core::{Category, ConditionLevel, ConditionState, Observation, Value};
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::Row;

/// The columns of `observations`, `latest` and the session's staging table, in order,
/// with their types (`Type::name` is also their SQL name: `int4`, `int8`, …). The first
/// two say which agent and instance stored the row; the rest are the observation's own
/// ([`OBSERVATION_COLUMNS`]).
const COLUMNS: [(&str, Type); 16] = [
    ("agent_id", Type::INT4),
    ("instance_id", Type::INT8),
    ("sequence", Type::INT8),
    ("ts", Type::TIMESTAMPTZ),
    ("device", Type::TEXT),
    ("component_id", Type::TEXT),
    ("data_item_id", Type::TEXT),
    ("name", Type::TEXT),
    ("category", Type::TEXT),
    ("kind", Type::TEXT),
    ("sub_type", Type::TEXT),
    ("value", Type::TEXT),
    ("level", Type::TEXT),
    ("native_code", Type::TEXT),
    ("native_severity", Type::TEXT),
    ("qualifier", Type::TEXT),
];

/// The observation's own columns: [`COLUMNS`] less `agent_id` and `instance_id`.
fn observation_columns() -> &'static [(&'static str, Type)] {
    &COLUMNS[2..]
}

/// Every column, comma-separated: the column list of a `COPY` or an `INSERT` of whole rows.
pub(super) static ALL_COLUMNS: LazyLock<String> = LazyLock::new(|| prefixed(&COLUMNS, ""));

/// The observation's columns, comma-separated, in the order [`observation_from_row`]
/// reads them.
pub(super) static OBSERVATION_COLUMNS: LazyLock<String> =
    LazyLock::new(|| prefixed(observation_columns(), ""));

/// The types of [`COLUMNS`], for a binary `COPY` of whole rows.
pub(super) static COLUMN_TYPES: LazyLock<Vec<Type>> =
    LazyLock::new(|| COLUMNS.iter().map(|(_, t)| t.clone()).collect());

/// The session's staging table: a batch that holds observations already stored is
/// copied here (binary `COPY`), then moved into `observations` with those dropped.
/// Emptied at every commit.
pub(super) static STAGING: LazyLock<String> = LazyLock::new(|| {
    let columns = COLUMNS
        .iter()
        .map(|(c, t)| format!("{c} {}", t.name()))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "CREATE TEMP TABLE IF NOT EXISTS staging_observations ({columns}) ON COMMIT DELETE ROWS"
    )
});

/// The observation's columns as a row source of arrays, parameters `$3` … `$16` (the
/// order of [`ObservationArrays::params`]): `UNNEST($3::int8[], …) AS u(sequence, …)`.
pub(super) static UNNEST: LazyLock<String> = LazyLock::new(|| {
    let arrays = observation_columns()
        .iter()
        .enumerate()
        .map(|(i, (_, t))| format!("${}::{}[]", i + 3, t.name()))
        .collect::<Vec<_>>()
        .join(", ");
    format!("UNNEST({arrays}) AS u({})", *OBSERVATION_COLUMNS)
});

/// `column = EXCLUDED.column` for every column but those of `key`: the `SET` list of an
/// `INSERT … ON CONFLICT (key) DO UPDATE` that replaces the whole row.
pub(super) fn set_excluded_except(key: &[&str]) -> String {
    COLUMNS
        .iter()
        .filter(|(c, _)| !key.contains(c))
        .map(|(c, _)| format!("{c} = EXCLUDED.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The observation's columns with each prefixed (`o.sequence, o.ts, …`).
pub(super) fn prefixed_columns(prefix: &str) -> String {
    prefixed(observation_columns(), prefix)
}

fn prefixed(columns: &[(&str, Type)], prefix: &str) -> String {
    columns
        .iter()
        .map(|(c, _)| format!("{prefix}{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One whole row, in the order of [`COLUMNS`], for a binary `COPY`.
pub(super) struct CopyRow<'a> {
    agent_id: i32,
    instance_id: i64,
    sequence: i64,
    observation: &'a Observation,
    category: &'static str,
    value: Option<&'a str>,
    condition: ConditionColumns<'a>,
}

impl<'a> CopyRow<'a> {
    pub(super) fn new(agent_id: i32, instance_id: i64, observation: &'a Observation) -> Self {
        CopyRow {
            agent_id,
            instance_id,
            sequence: observation.sequence as i64,
            observation,
            category: observation.category.as_str(),
            value: observation.value.as_text(),
            condition: ConditionColumns::of(observation),
        }
    }

    /// The row's values, in the order of [`COLUMNS`].
    pub(super) fn values(&self) -> [&(dyn ToSql + Sync); 16] {
        let o = self.observation;
        [
            &self.agent_id,
            &self.instance_id,
            &self.sequence,
            &o.timestamp,
            &o.device,
            &o.component_id,
            &o.data_item_id,
            &o.name,
            &self.category,
            &o.kind,
            &o.sub_type,
            &self.value,
            &self.condition.level,
            &self.condition.native_code,
            &self.condition.native_severity,
            &self.condition.qualifier,
        ]
    }
}

/// The four condition columns of an observation (all `NULL` for a Sample or an Event).
pub(super) struct ConditionColumns<'a> {
    level: Option<&'static str>,
    native_code: Option<&'a str>,
    native_severity: Option<&'a str>,
    qualifier: Option<&'a str>,
}

impl<'a> ConditionColumns<'a> {
    pub(super) fn of(o: &'a Observation) -> Self {
        let c = o.condition.as_ref();
        ConditionColumns {
            level: c.map(|c| c.level.as_str()),
            native_code: c.and_then(|c| c.native_code.as_deref()),
            native_severity: c.and_then(|c| c.native_severity.as_deref()),
            qualifier: c.and_then(|c| c.qualifier.as_deref()),
        }
    }
}

/// Reads an observation from a row selected with [`OBSERVATION_COLUMNS`] (or
/// [`prefixed_columns`]).
pub(super) fn observation_from_row(row: &Row) -> Observation {
    let category: &str = row.get(6);
    let level: Option<&str> = row.get(10);
    Observation {
        sequence: row.get::<_, i64>(0) as u64,
        timestamp: row.get(1),
        device: row.get(2),
        component_id: row.get(3),
        data_item_id: row.get(4),
        name: row.get(5),
        category: category.parse().unwrap_or(Category::Event),
        kind: row.get(7),
        sub_type: row.get(8),
        value: Value::from(row.get::<_, Option<String>>(9)),
        condition: level
            .and_then(|l| l.parse::<ConditionLevel>().ok())
            .map(|level| ConditionState {
                level,
                native_code: row.get(11),
                native_severity: row.get(12),
                qualifier: row.get(13),
            }),
    }
}

/// The observation columns of many observations as arrays, for one `INSERT … SELECT …
/// FROM` [`UNNEST`].
#[derive(Default)]
pub(super) struct ObservationArrays<'b> {
    sequence: Vec<i64>,
    ts: Vec<DateTime<Utc>>,
    device: Vec<&'b str>,
    component_id: Vec<&'b str>,
    data_item_id: Vec<&'b str>,
    name: Vec<Option<&'b str>>,
    category: Vec<&'static str>,
    kind: Vec<&'b str>,
    sub_type: Vec<Option<&'b str>>,
    value: Vec<Option<&'b str>>,
    level: Vec<Option<&'static str>>,
    native_code: Vec<Option<&'b str>>,
    native_severity: Vec<Option<&'b str>>,
    qualifier: Vec<Option<&'b str>>,
}

impl<'b> ObservationArrays<'b> {
    /// The arrays as query parameters `$3` … `$16` of [`UNNEST`].
    pub(super) fn params(&self) -> [&(dyn ToSql + Sync); 14] {
        [
            &self.sequence,
            &self.ts,
            &self.device,
            &self.component_id,
            &self.data_item_id,
            &self.name,
            &self.category,
            &self.kind,
            &self.sub_type,
            &self.value,
            &self.level,
            &self.native_code,
            &self.native_severity,
            &self.qualifier,
        ]
    }

    pub(super) fn push(&mut self, o: &'b Observation) {
        self.sequence.push(o.sequence as i64);
        self.ts.push(o.timestamp);
        self.device.push(&o.device);
        self.component_id.push(&o.component_id);
        self.data_item_id.push(&o.data_item_id);
        self.name.push(o.name.as_deref());
        self.category.push(o.category.as_str());
        self.kind.push(&o.kind);
        self.sub_type.push(o.sub_type.as_deref());
        self.value.push(o.value.as_text());
        let c = ConditionColumns::of(o);
        self.level.push(c.level);
        self.native_code.push(c.native_code);
        self.native_severity.push(c.native_severity);
        self.qualifier.push(c.qualifier);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The strings built from [`COLUMNS`] are those the store wrote by hand before.
    #[test]
    fn column_lists_are_built_from_the_one_table() {
        assert_eq!(
            *OBSERVATION_COLUMNS,
            "sequence, ts, device, component_id, data_item_id, name, category, kind, sub_type, value, level, native_code, native_severity, qualifier"
        );
        assert_eq!(
            *ALL_COLUMNS,
            format!("agent_id, instance_id, {}", *OBSERVATION_COLUMNS)
        );
        assert_eq!(
            *UNNEST,
            "UNNEST($3::int8[], $4::timestamptz[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[]) \
             AS u(sequence, ts, device, component_id, data_item_id, name, category, kind, sub_type, value, level, native_code, native_severity, qualifier)"
        );
        assert_eq!(
            *STAGING,
            "CREATE TEMP TABLE IF NOT EXISTS staging_observations (agent_id int4, instance_id int8, sequence int8, ts timestamptz, device text, \
             component_id text, data_item_id text, name text, category text, kind text, sub_type text, value text, level text, \
             native_code text, native_severity text, qualifier text) ON COMMIT DELETE ROWS"
        );
        assert_eq!(
            prefixed_columns("o.").split(", ").next(),
            Some("o.sequence")
        );
        assert_eq!(
            ObservationArrays::default().params().len(),
            COLUMNS.len() - 2
        );
    }
}
