//! Configuration from a TOML file, beneath environment variables and flags.
//!
//! The file's keys are `serve`'s long options, with `-` or `_` (`listen`, `agent` or
//! `agents`, `database-url`, `store`, `data-dir`, `retention`, `buffer`, `memory-limit`, `count`,
//! `poll-interval`, `interval`, `heartbeat`, `no-stream`, `max-document`, `replay`, `speed`,
//! `allowed-host` or `allowed-hosts`, …); its values
//! become those options' defaults, so a flag beats an environment variable, which beats the
//! file, which beats the built-in default:
//!
//! ```toml
//! listen = "0.0.0.0:8080"
//! agents = ["https://smstestbed.nist.gov/vds", "http://10.0.0.5:5000"]
//! database-url = "postgres://postgres@127.0.0.1:5432/factorydash"
//! retention = "30d"
//! ```
//!
//! # The layout
//!
//! Beside the options, the file may lay out the plant: one `[[cell]]` table per cell,
//! each with a `name` (unique; not `Unassigned`), an optional `line`, and `devices`, the
//! glob patterns (`*` any run of characters, `?` one character, case-sensitive) of the
//! device names it holds; `AGENT|NAME` also asks the agent's base URL to match `AGENT`:
//!
//! ```toml
//! [[cell]]
//! name = "Cell 1"
//! line = "Line A"
//! devices = ["Mazak*", "Hurco0?", "http://10.0.0.5:5000|GFAgie01"]
//! ```
//!
//! A device goes to the **first** cell, in the file's order, with a pattern it matches;
//! one that matches none is shown under `Unassigned`. The board groups its tiles by line
//! and cell ([`factorydash_core::layout`] has the rules and the bounds: at most 1,000
//! cells of at most 1,000 patterns of at most 200 bytes).
//!
//! # Shifts
//!
//! The plant's shift calendar (planned time, for OEE and the reports): `[[shift]]` tables
//! with a `name`, the weekdays it starts on, its local `start` and `end` (an end at or
//! before the start is the next day) and its `breaks`; and `holidays`, local dates without
//! shifts. Times are in the plant's time zone (`--time-zone`). Without shifts, every
//! minute is planned.
//!
//! ```toml
//! holidays = ["2026-12-24", "2026-12-25"]
//!
//! [[shift]]
//! name = "Early"
//! days = ["Mon", "Tue", "Wed", "Thu", "Fri"]
//! start = "06:00"
//! end = "14:00"
//! breaks = ["10:00-10:30"]
//! ```
//!
//! # Ideal cycle times
//!
//! Seconds per part by program (the `Program` event's value, subType `MAIN` or none), for
//! OEE's performance: each program's parts are weighed by its own; parts of other
//! programs, or counted without one, by the device's (its record's).
//!
//! ```toml
//! [ideal-cycle-times]
//! "O1001" = 42.5
//! "BRACKET-A.NC" = 95
//! ```
//!
//! # Alarms
//!
//! `[[alarm]]` rules, `[[alarm-webhook]]` and `[[alarm-email]]` receivers: see
//! [`crate::alarms::config`].
//!
//! # Stop reasons
//!
//! What operators choose from when they say why a machine stopped, on the stop list
//! (`/stops`), in this order; without the key, [`DEFAULT_STOP_REASONS`].
//!
//! ```toml
//! stop-reasons = ["Waiting for material", "Tool change", "Breakdown", "No operator"]
//! ```

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use chrono::{NaiveDate, NaiveTime, Weekday};
use factorydash_core::layout::{CellSpec, Layout, LayoutError};
use factorydash_core::shifts::{Shift, ShiftCalendar};

/// The environment variable naming the configuration file (as `--config` does).
pub const CONFIG_VAR: &str = "FACTORYDASH_CONFIG";

/// The largest configuration file read: 1 MiB (a real one is a few hundred bytes).
pub const CONFIG_FILE_LIMIT: usize = 1 << 20;

/// The largest token file read (`--token-file`): 64 KiB, about a thousand tokens.
pub const TOKEN_FILE_LIMIT: usize = 64 << 10;

/// The text of the file at `path` (`what` names it in errors, e.g. `the token file`),
/// refused as soon as it passes `limit` bytes: never more than `limit` + 1 bytes are held,
/// so `/dev/zero`, a FIFO that never ends or a huge file cost no more memory than that.
///
/// # Errors
/// The file cannot be opened or read, is larger than `limit` bytes, or is not UTF-8; each
/// message names the file.
pub fn read_bounded(path: &Path, limit: usize, what: &str) -> anyhow::Result<String> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take((limit as u64).saturating_add(1))
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    if bytes.len() > limit {
        bail!(
            "{what} {} is larger than {} KiB; refused",
            path.display(),
            limit >> 10
        );
    }
    String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("{what} {} is not UTF-8 text", path.display()))
}

/// The configuration file named by `--config PATH` (or `--config=PATH`) among `args`, or
/// else by [`CONFIG_VAR`].
pub fn config_path(args: &[String]) -> Option<PathBuf> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--config" {
            return it.next().map(PathBuf::from);
        }
        if let Some(p) = a.strip_prefix("--config=") {
            return Some(PathBuf::from(p));
        }
    }
    std::env::var_os(CONFIG_VAR).map(PathBuf::from)
}

/// `cmd` with the values of the TOML file at `path` as the defaults of `serve`'s options,
/// both at the top level and under the `serve` subcommand, and the file's layout (its
/// `[[cell]]` tables; the empty layout without them).
///
/// # Errors
/// The file cannot be read, is larger than [`CONFIG_FILE_LIMIT`] or is not TOML; a key is not one of `serve`'s options; a value
/// is neither a string, a number, a boolean nor an array of strings; the layout is not
/// one ([`layout`]).
pub fn apply(cmd: clap::Command, path: &Path) -> anyhow::Result<(clap::Command, Layout, PlanSpec)> {
    let text = read_bounded(path, CONFIG_FILE_LIMIT, "the configuration file")?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("{} is not valid TOML", path.display()))?;
    let mut defaults: Vec<(String, Vec<String>)> = Vec::new();
    let serve = cmd
        .find_subcommand("serve")
        .context("the serve command")?
        .clone();
    let mut plant = Layout::default();
    let mut spec = PlanSpec::default();
    for (key, value) in &table {
        if key == "cell" {
            plant = layout(value).with_context(|| format!("{}: the layout", path.display()))?;
            continue;
        }
        if key == "shift" {
            spec.shifts =
                shifts(value).with_context(|| format!("{}: the shifts", path.display()))?;
            continue;
        }
        if key == "holidays" {
            spec.holidays =
                holidays(value).with_context(|| format!("{}: the holidays", path.display()))?;
            continue;
        }
        if key == "stop-reasons" {
            spec.stop_reasons = Some(
                stop_reasons(value)
                    .with_context(|| format!("{}: the stop reasons", path.display()))?,
            );
            continue;
        }
        if key == "alarm" {
            spec.alarms = crate::alarms::config::rules(value)
                .with_context(|| format!("{}: the alarm rules", path.display()))?;
            continue;
        }
        if key == "alarm-webhook" {
            let dir = path.parent().unwrap_or(Path::new("."));
            spec.webhooks = crate::alarms::config::webhooks(value, dir)
                .with_context(|| format!("{}: the alarm webhooks", path.display()))?;
            continue;
        }
        if key == "alarm-email" {
            let dir = path.parent().unwrap_or(Path::new("."));
            spec.emails = crate::alarms::config::emails(value, dir)
                .with_context(|| format!("{}: the alarm e-mail", path.display()))?;
            continue;
        }
        if key == "ideal-cycle-times" {
            spec.ideal_cycle_times = ideal_cycle_times(value)
                .with_context(|| format!("{}: the ideal cycle times", path.display()))?;
            continue;
        }
        let wanted = key.replace('_', "-");
        let Some(arg) = serve.get_arguments().find(|a| {
            a.get_long() == Some(wanted.as_str()) || a.get_id().as_str().replace('_', "-") == wanted
        }) else {
            let known: Vec<String> = serve
                .get_arguments()
                .filter_map(|a| a.get_long().map(str::to_owned))
                .filter(|l| l != "config" && l != "help")
                .collect();
            bail!(
                "{}: unknown key '{key}'; the keys are serve's options: {}; and [[cell]] tables lay out the plant",
                path.display(),
                known.join(", ")
            );
        };
        let values = match value {
            toml::Value::String(s) => vec![s.clone()],
            toml::Value::Integer(i) => vec![i.to_string()],
            toml::Value::Float(f) => vec![f.to_string()],
            toml::Value::Boolean(b) => vec![b.to_string()],
            toml::Value::Array(items) => items
                .iter()
                .map(|v| match v {
                    toml::Value::String(s) => Ok(s.clone()),
                    other => bail!(
                        "{}: '{key}' holds a {}, not a string",
                        path.display(),
                        other.type_str()
                    ),
                })
                .collect::<anyhow::Result<_>>()?,
            other => bail!(
                "{}: '{key}' cannot be a {}",
                path.display(),
                other.type_str()
            ),
        };
        defaults.push((arg.get_id().to_string(), values));
    }
    let set = move |mut c: clap::Command| {
        for (id, values) in &defaults {
            // Defaults live as long as the process: leaked once, at start.
            let values: Vec<&'static str> = values
                .iter()
                .map(|v| &*Box::leak(v.clone().into_boxed_str()))
                .collect();
            c = c.mut_arg(id.as_str(), |a| a.default_values(values));
        }
        c
    };
    let set_top = set.clone();
    Ok((set_top(cmd).mut_subcommand("serve", set), plant, spec))
}

/// The plant's plan from the configuration file: the shift calendar's `[[shift]]` tables
/// and `holidays` array of dates, in the plant's time zone (given later, by
/// `--time-zone`), and the `[ideal-cycle-times]` of programs.
#[derive(Debug, Clone, Default)]
pub struct PlanSpec {
    /// The shifts.
    pub shifts: Vec<Shift>,
    /// The holidays (local dates).
    pub holidays: Vec<NaiveDate>,
    /// Seconds per part, by program name (the `Program` event's value).
    pub ideal_cycle_times: std::collections::BTreeMap<String, f64>,
    /// The reasons operators choose from for a stop, in the order offered; `None`: not
    /// configured ([`DEFAULT_STOP_REASONS`]).
    pub stop_reasons: Option<Vec<String>>,
    /// The `[[alarm]]` rules ([`crate::alarms::config`]).
    pub alarms: Vec<factorydash_core::alarms::Rule>,
    /// The `[[alarm-webhook]]` receivers.
    pub webhooks: Vec<crate::alarms::WebhookSpec>,
    /// The `[[alarm-email]]` receivers.
    pub emails: Vec<crate::alarms::EmailSpec>,
}

/// The reasons offered for a stop when the configuration lists none: the losses a
/// plant's downtime codes usually begin with (TPM's six big losses' stops, split where
/// operators can tell them apart).
pub const DEFAULT_STOP_REASONS: [&str; 9] = [
    "Waiting for material",
    "Waiting for operator",
    "Setup / changeover",
    "Tool change",
    "Breakdown",
    "Maintenance",
    "Quality check",
    "Program / first part",
    "Planned break",
];

/// The `stop-reasons` array: 1 to [`factorydash_core::reasons::MAX_REASON_CHOICES`]
/// distinct reasons, each one [`factorydash_core::reasons::check_reason`] takes.
///
/// # Errors
/// Not an array of strings; none or too many; a reason refused (the message quotes it);
/// one listed twice.
pub fn stop_reasons(value: &toml::Value) -> anyhow::Result<Vec<String>> {
    use factorydash_core::reasons::{check_reason, MAX_REASON_CHOICES};
    let toml::Value::Array(items) = value else {
        bail!(
            "'stop-reasons' must be an array of texts, not a {}",
            value.type_str()
        );
    };
    if items.is_empty() || items.len() > MAX_REASON_CHOICES {
        bail!("{} reasons; list 1 to {MAX_REASON_CHOICES}", items.len());
    }
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for v in items {
        let toml::Value::String(reason) = v else {
            bail!("a reason is a text, not a {}", v.type_str());
        };
        check_reason(reason)?;
        if out.contains(reason) {
            bail!("'{reason}' is listed twice");
        }
        out.push(reason.clone());
    }
    Ok(out)
}

/// The most programs `[ideal-cycle-times]` may list.
pub const MAX_IDEAL_CYCLE_TIMES: usize = 10_000;

/// The `[ideal-cycle-times]` table: program name → seconds per part (a number greater
/// than 0, at most a day).
///
/// # Errors
/// Not a table; more than [`MAX_IDEAL_CYCLE_TIMES`] programs; a value that is not such a
/// number (the message names the program).
pub fn ideal_cycle_times(
    value: &toml::Value,
) -> anyhow::Result<std::collections::BTreeMap<String, f64>> {
    let toml::Value::Table(table) = value else {
        bail!(
            "'ideal-cycle-times' must be a table of program = seconds, not a {}",
            value.type_str()
        );
    };
    if table.len() > MAX_IDEAL_CYCLE_TIMES {
        bail!("{} programs; at most {MAX_IDEAL_CYCLE_TIMES}", table.len());
    }
    table
        .iter()
        .map(|(program, v)| {
            let seconds = match v {
                toml::Value::Integer(i) => *i as f64,
                toml::Value::Float(f) => *f,
                other => bail!(
                    "program '{program}': the ideal cycle time must be seconds (a number), not a {}",
                    other.type_str()
                ),
            };
            if program.is_empty() || program.trim() != program {
                bail!("program '{program}': a program's name is not empty and has no spaces around it");
            }
            if !(seconds.is_finite() && seconds > 0.0 && seconds <= 86_400.0) {
                bail!("program '{program}': {seconds} s is not an ideal cycle time (more than 0, at most a day)");
            }
            if program.chars().count() > factorydash_core::summary::MAX_PROGRAM_NAME {
                bail!(
                    "program '{program}': longer than the {} characters a program's parts are counted under",
                    factorydash_core::summary::MAX_PROGRAM_NAME
                );
            }
            Ok((program.clone(), seconds))
        })
        .collect()
}

impl PlanSpec {
    /// The calendar in `tz`.
    ///
    /// # Errors
    /// [`factorydash_core::shifts::CalendarError`]: too many shifts, breaks or holidays, a
    /// break outside its shift.
    pub fn calendar(&self, tz: chrono_tz::Tz) -> anyhow::Result<ShiftCalendar> {
        Ok(ShiftCalendar::new(
            tz,
            self.shifts.clone(),
            self.holidays.iter().copied(),
        )?)
    }
}

fn time_of(text: &str, what: &str) -> anyhow::Result<NaiveTime> {
    NaiveTime::parse_from_str(text, "%H:%M")
        .with_context(|| format!("{what} '{text}' is not a time as HH:MM (24-hour)"))
}

/// The shifts of the `shift` key's value (an array of tables: `[[shift]]`), each with
/// `name`, `days` (`Mon`…`Sun`), `start` and `end` (`HH:MM`, local; an end at or before
/// the start is the next day) and optionally `breaks` (an array of `"HH:MM-HH:MM"`).
///
/// # Errors
/// The value is not an array of tables; a key other than those; a value of the wrong
/// kind; a time, weekday or break that does not parse. Each message names the shift by
/// its place (from 1).
pub fn shifts(value: &toml::Value) -> anyhow::Result<Vec<Shift>> {
    let toml::Value::Array(items) = value else {
        bail!(
            "'shift' must be tables ([[shift]]), not a {}",
            value.type_str()
        );
    };
    if items.len() > factorydash_core::shifts::MAX_SHIFTS {
        bail!(
            "{} shifts; at most {}",
            items.len(),
            factorydash_core::shifts::MAX_SHIFTS
        );
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let index = i + 1;
        let toml::Value::Table(table) = item else {
            bail!("shift {index} must be a table ([[shift]])");
        };
        if let Some(key) = table
            .keys()
            .find(|k| !["name", "days", "start", "end", "breaks"].contains(&k.as_str()))
        {
            bail!(
                "shift {index}: unknown key '{key}'; a shift has name, days, start, end and breaks"
            );
        }
        let text = |key: &str| -> anyhow::Result<String> {
            match table.get(key) {
                Some(toml::Value::String(s)) => Ok(s.clone()),
                Some(other) => bail!(
                    "shift {index}: '{key}' must be a string, not a {}",
                    other.type_str()
                ),
                None => bail!("shift {index} has no '{key}'"),
            }
        };
        let strings = |key: &str| -> anyhow::Result<Vec<String>> {
            match table.get(key) {
                None => Ok(Vec::new()),
                Some(toml::Value::Array(a)) => a
                    .iter()
                    .map(|v| match v {
                        toml::Value::String(s) => Ok(s.clone()),
                        other => bail!(
                            "shift {index}: '{key}' holds a {}, not a string",
                            other.type_str()
                        ),
                    })
                    .collect(),
                Some(other) => bail!(
                    "shift {index}: '{key}' must be an array of strings, not a {}",
                    other.type_str()
                ),
            }
        };
        let name = text("name")?;
        let days = strings("days")?
            .iter()
            .map(|d| {
                d.parse::<Weekday>().map_err(|_| {
                    anyhow::anyhow!("shift {index} ('{name}'): '{d}' is not a weekday (Mon…Sun)")
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let breaks = strings("breaks")?
            .iter()
            .map(|b| {
                let (a, z) = b.split_once('-').with_context(|| {
                    format!("shift {index} ('{name}'): the break '{b}' is not HH:MM-HH:MM")
                })?;
                Ok((
                    time_of(a.trim(), "a break's start")?,
                    time_of(z.trim(), "a break's end")?,
                ))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        out.push(Shift {
            days,
            start: time_of(&text("start")?, "start")?,
            end: time_of(&text("end")?, "end")?,
            breaks,
            name,
        });
    }
    Ok(out)
}

/// The holidays of the `holidays` key's value: an array of dates (`2026-12-25`, TOML
/// dates or strings).
///
/// # Errors
/// Not an array, an item not a date, more than [`factorydash_core::shifts::MAX_HOLIDAYS`].
pub fn holidays(value: &toml::Value) -> anyhow::Result<Vec<NaiveDate>> {
    let toml::Value::Array(items) = value else {
        bail!("'holidays' must be an array of dates");
    };
    if items.len() > factorydash_core::shifts::MAX_HOLIDAYS {
        bail!(
            "{} holidays; at most {}",
            items.len(),
            factorydash_core::shifts::MAX_HOLIDAYS
        );
    }
    items
        .iter()
        .map(|v| {
            let text = match v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Datetime(d) => d.to_string(),
                other => bail!("a holiday must be a date, not a {}", other.type_str()),
            };
            NaiveDate::parse_from_str(&text, "%Y-%m-%d")
                .with_context(|| format!("the holiday '{text}' is not a date as YYYY-MM-DD"))
        })
        .collect()
}

/// A shift calendar's own text (the admin page's): `holidays` and `[[shift]]` tables
/// as in the configuration file, nothing else, at most
/// [`factorydash_store::MAX_SETTING_LEN`] bytes.
///
/// # Errors
/// Text that is too long or not TOML; another key; [`shifts`]' and [`holidays`]'
/// refusals.
pub fn calendar_text(text: &str) -> anyhow::Result<(Vec<Shift>, Vec<NaiveDate>)> {
    if text.len() > factorydash_store::MAX_SETTING_LEN {
        bail!(
            "the calendar has {} bytes; at most {}",
            text.len(),
            factorydash_store::MAX_SETTING_LEN
        );
    }
    let table: toml::Table = text.parse().context("the calendar is not TOML")?;
    let mut out = (Vec::new(), Vec::new());
    for (key, value) in &table {
        match key.as_str() {
            "shift" => out.0 = shifts(value).context("the shifts")?,
            "holidays" => out.1 = holidays(value).context("the holidays")?,
            other => bail!(
                "'{}': a calendar holds only [[shift]] tables and holidays",
                other.chars().take(40).collect::<String>()
            ),
        }
    }
    Ok(out)
}

/// `calendar`'s shifts and holidays as [`calendar_text`] reads them (TOML).
pub fn calendar_toml(calendar: &ShiftCalendar) -> String {
    // A TOML basic string.
    let quote = |s: &str| {
        let mut q = String::with_capacity(s.len() + 2);
        q.push('"');
        for c in s.chars() {
            match c {
                '"' => q.push_str("\\\""),
                '\\' => q.push_str("\\\\"),
                c if c.is_control() => q.push_str(&format!("\\u{:04X}", c as u32)),
                c => q.push(c),
            }
        }
        q.push('"');
        q
    };
    let mut out = String::new();
    let holidays: Vec<String> = calendar
        .holidays()
        .map(|d| quote(&d.format("%Y-%m-%d").to_string()))
        .collect();
    if !holidays.is_empty() {
        out.push_str(&format!("holidays = [{}]\n", holidays.join(", ")));
    }
    for s in calendar.shifts() {
        let days: Vec<String> = s.days.iter().map(|d| quote(&d.to_string())).collect();
        let breaks: Vec<String> = s
            .breaks
            .iter()
            .map(|(a, b)| quote(&format!("{}-{}", a.format("%H:%M"), b.format("%H:%M"))))
            .collect();
        out.push_str(&format!(
            "\n[[shift]]\nname = {}\ndays = [{}]\nstart = {}\nend = {}\n",
            quote(&s.name),
            days.join(", "),
            quote(&s.start.format("%H:%M").to_string()),
            quote(&s.end.format("%H:%M").to_string()),
        ));
        if !breaks.is_empty() {
            out.push_str(&format!("breaks = [{}]\n", breaks.join(", ")));
        }
    }
    out
}

/// The layout that the `cell` key's value (an array of tables: `[[cell]]`) gives.
///
/// # Errors
/// The value is not an array of tables; a table has a key other than `name`, `line` and
/// `devices`, lacks `name` or `devices`, or holds a value of the wrong kind (`name` and
/// `line` strings, `devices` an array of strings); more than
/// [`factorydash_core::layout::MAX_CELLS`] cells; [`Layout::new`]'s refusals. Each
/// message names the cell by its place (from 1).
pub fn layout(value: &toml::Value) -> anyhow::Result<Layout> {
    let toml::Value::Array(cells) = value else {
        bail!(
            "'cell' must be tables ([[cell]]), not a {}",
            value.type_str()
        );
    };
    if cells.len() > factorydash_core::layout::MAX_CELLS {
        return Err(LayoutError::TooManyCells(cells.len()).into());
    }
    let mut specs = Vec::with_capacity(cells.len());
    for (i, cell) in cells.iter().enumerate() {
        let index = i + 1;
        let toml::Value::Table(table) = cell else {
            bail!(
                "cell {index} must be a table ([[cell]]), not a {}",
                cell.type_str()
            );
        };
        let text = |key: &str| -> anyhow::Result<Option<String>> {
            match table.get(key) {
                None => Ok(None),
                Some(toml::Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => bail!(
                    "cell {index}: '{key}' must be a string, not a {}",
                    other.type_str()
                ),
            }
        };
        if let Some(key) = table
            .keys()
            .find(|k| !["name", "line", "devices"].contains(&k.as_str()))
        {
            bail!("cell {index}: unknown key '{key}'; a cell has name, line and devices");
        }
        let name = text("name")?.with_context(|| format!("cell {index} has no name"))?;
        let devices = match table.get("devices") {
            None => bail!("cell {index} ('{name}') has no devices"),
            Some(toml::Value::Array(items)) => {
                if items.len() > factorydash_core::layout::MAX_PATTERNS {
                    return Err(LayoutError::TooManyPatterns {
                        index,
                        name,
                        count: items.len(),
                    }
                    .into());
                }
                items
                    .iter()
                    .map(|v| match v {
                        toml::Value::String(s) => Ok(s.clone()),
                        other => bail!(
                            "cell {index} ('{name}'): devices holds a {}, not a string",
                            other.type_str()
                        ),
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?
            }
            Some(other) => bail!(
                "cell {index} ('{name}'): devices must be an array of strings, not a {}",
                other.type_str()
            ),
        };
        specs.push(CellSpec {
            name,
            line: text("line")?,
            devices,
        });
    }
    Ok(Layout::new(specs)?)
}

#[cfg(test)]
mod tests {
    use super::{config_path, layout};
    use factorydash_core::layout::Placement;

    fn parse(text: &str) -> anyhow::Result<factorydash_core::layout::Layout> {
        let table: toml::Table = text.parse()?;
        layout(table.get("cell").expect("a cell key"))
    }

    #[test]
    fn a_layout_from_cell_tables() {
        let plant = parse(
            r#"
            [[cell]]
            name = "Cell 1"
            line = "Line A"
            devices = ["Mazak*", "Hurco0?"]

            [[cell]]
            name = "Cell 2"
            devices = ["http://10.0.0.5:5000|GFAgie01", "*"]
            "#,
        )
        .unwrap();
        assert_eq!(plant.cells().len(), 2);
        assert_eq!(plant.cells()[0].line(), Some("Line A"));
        assert_eq!(plant.place("http://a", "Hurco01"), Placement::Cell(0));
        assert_eq!(
            plant.place("http://10.0.0.5:5000", "GFAgie01"),
            Placement::Cell(1)
        );
        assert_eq!(plant.place("http://a", "Okuma"), Placement::Cell(1));
    }

    #[test]
    fn a_bad_layout_is_named() {
        let err = |text: &str| format!("{:#}", parse(text).unwrap_err());
        assert_eq!(
            err("cell = 3"),
            "'cell' must be tables ([[cell]]), not a integer"
        );
        assert_eq!(err("[[cell]]\ndevices = [\"a\"]"), "cell 1 has no name");
        assert_eq!(
            err("[[cell]]\nname = \"A\"\ndevices = [\"a\"]\nmachines = 2"),
            "cell 1: unknown key 'machines'; a cell has name, line and devices"
        );
        assert_eq!(
            err("[[cell]]\nname = \"A\"\ndevices = [1]"),
            "cell 1 ('A'): devices holds a integer, not a string"
        );
        assert_eq!(
            err("[[cell]]\nname = \"A\"\ndevices = [\"a\"]\n[[cell]]\nname = \"A\"\ndevices = [\"b\"]"),
            "cell 2: another cell is already named 'A'"
        );
        assert_eq!(
            err("[[cell]]\nname = \"\"\ndevices = [\"a\"]"),
            "cell 1: its name is empty"
        );
    }

    #[test]
    fn a_calendar_text_reads_back_as_written() {
        let text = "holidays = [\"2026-12-24\"]\n[[shift]]\nname = \"Early\"\ndays = [\"Mon\", \"Tue\"]\nstart = \"06:00\"\nend = \"14:00\"\nbreaks = [\"10:00-10:30\"]\n[[shift]]\nname = \"Night \\\"N\\\"\"\ndays = [\"Sun\"]\nstart = \"22:00\"\nend = \"06:00\"\n";
        let (shifts, holidays) = super::calendar_text(text).unwrap();
        let calendar = factorydash_core::shifts::ShiftCalendar::new(
            chrono_tz::UTC,
            shifts.clone(),
            holidays.clone(),
        )
        .unwrap();
        let again = super::calendar_toml(&calendar);
        assert_eq!(
            super::calendar_text(&again).unwrap(),
            (shifts, holidays),
            "{again}"
        );
        for (bad, says) in [
            (
                "[[cell]]\nname = \"A\"",
                "only [[shift]] tables and holidays",
            ),
            ("[[shift]\n", "not TOML"),
            ("holidays = [\"24.12.2026\"]", "the holidays"),
        ] {
            let e = super::calendar_text(bad).unwrap_err();
            assert!(format!("{e:#}").contains(says), "{bad}: {e:#}");
        }
        assert!(super::calendar_text(&"#".repeat(70_000)).is_err());
    }

    #[test]
    fn stop_reasons_and_their_refusals() {
        let read = |text: &str| {
            let table: toml::Table = text.parse().unwrap();
            super::stop_reasons(table.get("stop-reasons").unwrap())
        };
        assert_eq!(
            read("stop-reasons = [\"Material\", \"Tool change\"]").unwrap(),
            ["Material", "Tool change"]
        );
        for (text, says) in [
            ("stop-reasons = \"Material\"", "must be an array"),
            ("stop-reasons = []", "list 1 to"),
            ("stop-reasons = [3]", "not a integer"),
            ("stop-reasons = [\" \"]", "a reason has"),
            (
                "stop-reasons = [\"(no reason given)\"]",
                "a row of the Pareto",
            ),
            ("stop-reasons = [\"OTHER\"]", "a row of the Pareto"),
            ("stop-reasons = [\"A\", \"A\"]", "listed twice"),
        ] {
            let e = read(text).unwrap_err();
            assert!(format!("{e:#}").contains(says), "{text}: {e:#}");
        }
        let many: Vec<String> = (0..101).map(|i| format!("\"R{i}\"")).collect();
        assert!(read(&format!("stop-reasons = [{}]", many.join(","))).is_err());
        assert!(super::DEFAULT_STOP_REASONS
            .iter()
            .all(|r| factorydash_core::reasons::check_reason(r).is_ok()));
    }

    #[test]
    fn ideal_cycle_times_by_program_and_their_refusals() {
        let read = |text: &str| {
            let table: toml::Table = text.parse().unwrap();
            super::ideal_cycle_times(table.get("ideal-cycle-times").unwrap())
        };
        let times = read("[ideal-cycle-times]\n\"O1001\" = 42.5\n\"BRACKET.NC\" = 95\n").unwrap();
        assert_eq!(times.get("O1001"), Some(&42.5));
        assert_eq!(times.get("BRACKET.NC"), Some(&95.0));
        for (text, said) in [
            ("ideal-cycle-times = 3", "must be a table"),
            ("[ideal-cycle-times]\nA = \"fast\"", "program 'A'"),
            ("[ideal-cycle-times]\nA = 0", "not an ideal cycle time"),
            ("[ideal-cycle-times]\nA = -3", "not an ideal cycle time"),
            ("[ideal-cycle-times]\nA = nan", "not an ideal cycle time"),
            ("[ideal-cycle-times]\nA = 100000", "not an ideal cycle time"),
        ] {
            let e = format!("{:#}", read(text).unwrap_err());
            assert!(e.contains(said), "{text}: {e}");
        }
        let long = format!("[ideal-cycle-times]\n\"{}\" = 3", "P".repeat(65));
        assert!(format!("{:#}", read(&long).unwrap_err()).contains("longer than"));
    }

    #[test]
    fn the_config_flag_in_both_spellings() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            config_path(&args(&["factorydash", "serve", "--config", "a.toml"])),
            Some("a.toml".into())
        );
        assert_eq!(
            config_path(&args(&["factorydash", "--config=b.toml"])),
            Some("b.toml".into())
        );
    }
}
