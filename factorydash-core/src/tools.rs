//! Cutting tools and their life: the CuttingTool asset of MTConnect Part 4 ("Assets
//! Information Model"; in MTConnect 1.x, Part 4.1 "Cutting Tools"), as the parser gives
//! it and the dashboard shows it, and the rule that says a tool is near its life limit
//! ([`CuttingTool::near_life_limit`]).
//!
//! ```
//! use factorydash_core::tools::{CountDirection, CuttingTool, ToolLife, ToolLifeKind};
//!
//! // 185 parts of a 200-part life, counted up, warning at 180.
//! let life = ToolLife {
//!     warning: Some(180.0),
//!     ..ToolLife::new(ToolLifeKind::PartCount, CountDirection::Up, Some(185.0), Some(200.0))
//! };
//! assert_eq!(life.remaining(), Some(15.0));
//! assert!(life.near_limit());
//! let tool = CuttingTool {
//!     asset_id: "M1.T12".into(),
//!     program_tool_number: Some("12".into()),
//!     lives: vec![life],
//!     ..CuttingTool::default()
//! };
//! assert!(tool.near_life_limit());
//! assert_eq!(tool.label(), "T12");
//! ```

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ParseEnumError;

/// Without a `warning`, a tool is near its life limit when what is left of its life is at
/// most this share of the whole span from `initial` to `limit` (10 %).
pub const NEAR_LIMIT_SHARE: f64 = 0.1;

/// How a tool's life is counted (MTConnect Part 4, `ToolLife` attribute `type`;
/// `ToolLifeTypeType` in the MTConnectAssets schemas).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ToolLifeKind {
    /// `MINUTES`: time in use, in minutes.
    Minutes,
    /// `PART_COUNT`: parts made.
    PartCount,
    /// `WEAR`: wear, in the units the agent's tool data uses.
    Wear,
}

impl ToolLifeKind {
    /// The MTConnect spelling: `MINUTES`, `PART_COUNT` or `WEAR`.
    pub fn as_str(self) -> &'static str {
        match self {
            ToolLifeKind::Minutes => "MINUTES",
            ToolLifeKind::PartCount => "PART_COUNT",
            ToolLifeKind::Wear => "WEAR",
        }
    }

    /// How a page names it: `minutes`, `parts`, `wear`.
    pub fn label(self) -> &'static str {
        match self {
            ToolLifeKind::Minutes => "minutes",
            ToolLifeKind::PartCount => "parts",
            ToolLifeKind::Wear => "wear",
        }
    }
}

impl FromStr for ToolLifeKind {
    type Err = ParseEnumError;

    /// Parses `MINUTES`, `PART_COUNT` or `WEAR` (ASCII case-insensitive, trimmed).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "MINUTES" => Ok(ToolLifeKind::Minutes),
            "PART_COUNT" => Ok(ToolLifeKind::PartCount),
            "WEAR" => Ok(ToolLifeKind::Wear),
            _ => Err(ParseEnumError {
                what: "ToolLife type",
                found: s.to_owned(),
            }),
        }
    }
}

impl fmt::Display for ToolLifeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which way a tool's life is counted (MTConnect Part 4, `ToolLife` attribute
/// `countDirection`; `ToolLifeDirectionType`): up from `initial` (usually 0) to `limit`,
/// or down from `initial` to `limit` (usually 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CountDirection {
    /// `UP`: the value grows towards `limit`.
    Up,
    /// `DOWN`: the value falls towards `limit`.
    Down,
}

impl CountDirection {
    /// The MTConnect spelling: `UP` or `DOWN`.
    pub fn as_str(self) -> &'static str {
        match self {
            CountDirection::Up => "UP",
            CountDirection::Down => "DOWN",
        }
    }
}

impl FromStr for CountDirection {
    type Err = ParseEnumError;

    /// Parses `UP` or `DOWN` (ASCII case-insensitive, trimmed).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "UP" => Ok(CountDirection::Up),
            "DOWN" => Ok(CountDirection::Down),
            _ => Err(ParseEnumError {
                what: "countDirection",
                found: s.to_owned(),
            }),
        }
    }
}

impl fmt::Display for CountDirection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One life of a tool (MTConnect Part 4, `CuttingToolLifeCycle`/`ToolLife`): a tool may
/// have one of each [`ToolLifeKind`]. Numbers are in the kind's unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolLife {
    /// How it is counted; serialised as `type`.
    #[serde(rename = "type")]
    pub kind: ToolLifeKind,
    /// Which way.
    pub direction: CountDirection,
    /// The life used (`UP`) or left (`DOWN`) now: the element's text (`None` when it is
    /// empty or not a number).
    pub value: Option<f64>,
    /// Where the life ends (`limit`; MTConnect 1.2 test documents write `maximum`).
    pub limit: Option<f64>,
    /// Where a warning is due (`warning`).
    pub warning: Option<f64>,
    /// The value of a new tool (`initial`).
    pub initial: Option<f64>,
}

impl ToolLife {
    /// A life of `kind` counted in `direction`, at `value` of `limit`, without `warning`
    /// or `initial`.
    pub fn new(
        kind: ToolLifeKind,
        direction: CountDirection,
        value: Option<f64>,
        limit: Option<f64>,
    ) -> Self {
        ToolLife {
            kind,
            direction,
            value,
            limit,
            warning: None,
            initial: None,
        }
    }

    /// Where the life starts: `initial`, or 0 when counting up without one (MTConnect
    /// Part 4: `UP` counts "from 0 to maximum"). Counting down, a tool's start is known
    /// only from `initial`.
    fn start(&self) -> Option<f64> {
        match self.direction {
            CountDirection::Up => Some(self.initial.unwrap_or(0.0)),
            CountDirection::Down => self.initial,
        }
    }

    /// Whether `limit` ends a life at all: one that a new tool is already at or past
    /// (counting up, a `limit` of 0 from an agent that sets none) is no limit.
    fn has_limit(&self) -> bool {
        match (self.limit, self.start(), self.direction) {
            (None, ..) => false,
            (Some(limit), Some(start), CountDirection::Up) => limit > start,
            (Some(limit), Some(start), CountDirection::Down) => limit < start,
            // Counting down without `initial`: the limit (usually 0) is taken as given.
            (Some(_), None, _) => true,
        }
    }

    /// The life left before the limit, in the kind's unit: `limit - value` counting up,
    /// `value - limit` counting down; negative once past it. `None` without a value or
    /// a limit.
    pub fn remaining(&self) -> Option<f64> {
        if !self.has_limit() {
            return None;
        }
        let (value, limit) = (self.value?, self.limit?);
        Some(match self.direction {
            CountDirection::Up => limit - value,
            CountDirection::Down => value - limit,
        })
    }

    /// The whole life, from its start to the limit (`None` when either is unknown).
    pub fn span(&self) -> Option<f64> {
        if !self.has_limit() {
            return None;
        }
        let (start, limit) = (self.start()?, self.limit?);
        Some((limit - start).abs())
    }

    /// The share of the life left, from 1 (new) to 0 (at or past the limit): what a bar
    /// shows. `None` when [`ToolLife::remaining`] or [`ToolLife::span`] is.
    pub fn remaining_share(&self) -> Option<f64> {
        let (remaining, span) = (self.remaining()?, self.span()?);
        Some((remaining / span).clamp(0.0, 1.0))
    }

    /// The `warning` threshold, when it is one: a warning that a new tool would already
    /// have reached (counting up, at or below the start; counting down, at or above
    /// `initial`) is ignored, as agents that set no warning write 0.
    pub fn warning_threshold(&self) -> Option<f64> {
        let warning = self.warning?;
        match (self.direction, self.start()) {
            (CountDirection::Up, Some(start)) if warning <= start => None,
            (CountDirection::Down, Some(start)) if warning >= start => None,
            _ => Some(warning),
        }
    }

    /// Whether this life is near its limit: it has reached its warning threshold
    /// ([`ToolLife::warning_threshold`]; counting up `value >= warning`, counting down
    /// `value <= warning`); or, without one, what is left is at most
    /// [`NEAR_LIMIT_SHARE`] of the span ([`ToolLife::span`]), or, when the span is
    /// unknown (counting down without `initial`), the limit is reached. Never without a
    /// value.
    pub fn near_limit(&self) -> bool {
        let Some(value) = self.value else {
            return false;
        };
        if let Some(warning) = self.warning_threshold() {
            return match self.direction {
                CountDirection::Up => value >= warning,
                CountDirection::Down => value <= warning,
            };
        }
        match (self.remaining(), self.span()) {
            (Some(remaining), Some(span)) => remaining <= span * NEAR_LIMIT_SHARE,
            (Some(remaining), None) => remaining <= 0.0,
            _ => false,
        }
    }
}

/// Where a tool is kept (MTConnect Part 4, `CuttingToolLifeCycle`/`Location`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolLocation {
    /// `POT`, `STATION`, `CRIB`, `SPINDLE`, … (attribute `type`); serialised as `type`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The location's number or name (the element's text).
    pub value: String,
}

/// A cutting tool: the `CuttingTool` asset (MTConnect Part 4, "CuttingTool"), its
/// identity and what `CuttingToolLifeCycle` says of its life. Measurements, the
/// definition and each cutting item's details are not kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CuttingTool {
    /// The `assetId`: unique within the agent.
    pub asset_id: String,
    /// The `toolId`: the tool's identity in the shop (several assets may share it).
    pub tool_id: Option<String>,
    /// The `serialNumber`.
    pub serial_number: Option<String>,
    /// The `deviceUuid` of the device the tool belongs to, if given.
    pub device_uuid: Option<String>,
    /// The `timestamp` of its last change (UTC), if valid.
    pub timestamp: Option<DateTime<Utc>>,
    /// `removed="true"`: the agent removed the asset.
    pub removed: bool,
    /// `CutterStatus`: its `Status` values in order (`NEW`, `AVAILABLE`, `USED`,
    /// `EXPIRED`, `BROKEN`, …; the standard combines several).
    pub status: Vec<String>,
    /// Its `ToolLife`s, in document order.
    pub lives: Vec<ToolLife>,
    /// `ProgramToolNumber`: the number the part program calls it by (`T12`).
    pub program_tool_number: Option<String>,
    /// `ProgramToolGroup`.
    pub program_tool_group: Option<String>,
    /// `Location`.
    pub location: Option<ToolLocation>,
    /// How many cutting items (inserts, edges) it has: `CuttingItems`' `count`, or the
    /// `CuttingItem`s listed when `count` is missing.
    pub cutting_items: Option<u32>,
    /// Its `CuttingItem`s with their `ItemLife`s (MTConnect Part 4,
    /// `CuttingToolLifeCycle/CuttingItems/CuttingItem`), in document order; left out of
    /// the JSON when none is listed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<CuttingItem>,
}

/// One cutting item of a tool, an insert or an edge (MTConnect Part 4, "CuttingItem"),
/// and its lives. Its measurements and description are not kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CuttingItem {
    /// `indices`: which of the tool's items it describes, `1` or a range such as `1-4`.
    pub indices: String,
    /// `itemId`, if given.
    pub item_id: Option<String>,
    /// Its `ItemLife`s (a `LifeType` like [`ToolLife`]: at most one of each kind), in
    /// document order.
    pub lives: Vec<ToolLife>,
}

impl CuttingItem {
    /// How a page names the item: `item 1`, `items 1-4`.
    pub fn label(&self) -> String {
        if self.indices.contains(['-', ',', ' ']) {
            format!("items {}", self.indices)
        } else {
            format!("item {}", self.indices)
        }
    }
}

impl CuttingTool {
    /// Whether a `CutterStatus` says the tool is finished: `EXPIRED` or `BROKEN`.
    pub fn is_expired_or_broken(&self) -> bool {
        self.status
            .iter()
            .any(|s| s.eq_ignore_ascii_case("EXPIRED") || s.eq_ignore_ascii_case("BROKEN"))
    }

    /// Whether the tool is near its life limit: any of its lives or of its cutting
    /// items' lives is ([`ToolLife::near_limit`]), or its status is `EXPIRED` or `BROKEN`.
    pub fn near_life_limit(&self) -> bool {
        self.is_expired_or_broken()
            || self.lives.iter().any(ToolLife::near_limit)
            || self
                .items
                .iter()
                .any(|i| i.lives.iter().any(ToolLife::near_limit))
    }

    /// How a page names the tool in a line: `T` and its `ProgramToolNumber` (`T12`), else
    /// its `toolId`, else its `assetId`.
    pub fn label(&self) -> String {
        match (&self.program_tool_number, &self.tool_id) {
            (Some(n), _) if !n.is_empty() => format!("T{n}"),
            (_, Some(id)) if !id.is_empty() => id.clone(),
            _ => self.asset_id.clone(),
        }
    }
}

/// The labels ([`CuttingTool::label`]) of the tools in `tools` that are near their life
/// limit, in their order, each once.
pub fn near_limit_labels<'t>(tools: impl IntoIterator<Item = &'t CuttingTool>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in tools.into_iter().filter(|t| t.near_life_limit()) {
        let label = t.label();
        if !out.contains(&label) {
            out.push(label);
        }
    }
    out
}

/// The line a tile shows for `labels`, the tools near their life limit: `Tool T12 near
/// life limit`, `2 tools near life limit`, or `None` for none.
pub fn near_limit_line(labels: &[String]) -> Option<String> {
    match labels {
        [] => None,
        [one] => Some(format!("Tool {one} near life limit")),
        many => Some(format!("{} tools near life limit", many.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn life(direction: CountDirection, value: f64, limit: f64) -> ToolLife {
        ToolLife::new(ToolLifeKind::PartCount, direction, Some(value), Some(limit))
    }

    #[test]
    fn counting_up_the_warning_decides() {
        let at = |value| ToolLife {
            warning: Some(180.0),
            ..life(CountDirection::Up, value, 200.0)
        };
        assert!(!at(179.0).near_limit());
        assert!(at(180.0).near_limit(), "value >= warning");
        assert!(at(250.0).near_limit(), "past the limit");
        // The warning decides even where 10 % would not: warning at half the life.
        let early = ToolLife {
            warning: Some(100.0),
            ..life(CountDirection::Up, 120.0, 200.0)
        };
        assert!(early.near_limit());
    }

    #[test]
    fn counting_down_the_warning_decides() {
        let at = |value| ToolLife {
            warning: Some(20.0),
            initial: Some(300.0),
            ..life(CountDirection::Down, value, 0.0)
        };
        assert!(!at(21.0).near_limit());
        assert!(at(20.0).near_limit(), "value <= warning");
        assert!(at(0.0).near_limit());
        assert_eq!(at(21.0).remaining(), Some(21.0));
        assert_eq!(at(150.0).remaining_share(), Some(0.5));
    }

    #[test]
    fn without_a_warning_the_last_tenth_is_near() {
        // Up from 0 to 200: near from 180 on.
        assert!(!life(CountDirection::Up, 179.0, 200.0).near_limit());
        assert!(life(CountDirection::Up, 180.0, 200.0).near_limit());
        // Up from `initial` 100 to 200: near from 190 on.
        let from_100 = |value| ToolLife {
            initial: Some(100.0),
            ..life(CountDirection::Up, value, 200.0)
        };
        assert!(!from_100(189.0).near_limit());
        assert!(from_100(190.0).near_limit());
        // Down from 300 to 0: near at 30 and below.
        let down = |value| ToolLife {
            initial: Some(300.0),
            ..life(CountDirection::Down, value, 0.0)
        };
        assert!(!down(31.0).near_limit());
        assert!(down(30.0).near_limit());
        // Down without `initial`: the span is unknown, only the limit itself counts.
        assert!(!life(CountDirection::Down, 1.0, 0.0).near_limit());
        assert!(life(CountDirection::Down, 0.0, 0.0).near_limit());
    }

    #[test]
    fn a_limit_or_warning_a_new_tool_is_at_is_none() {
        // demo.mtconnect.org's Okuma: `initial="0" limit="0"` counting up, minutes used.
        let okuma = ToolLife {
            initial: Some(0.0),
            ..life(CountDirection::Up, 206.0, 0.0)
        };
        assert!(!okuma.near_limit());
        assert_eq!((okuma.remaining(), okuma.span()), (None, None));
        // A warning of 0 counting up would be reached by a new tool: ignored.
        let zero_warning = ToolLife {
            warning: Some(0.0),
            ..life(CountDirection::Up, 10.0, 200.0)
        };
        assert_eq!(zero_warning.warning_threshold(), None);
        assert!(!zero_warning.near_limit());
        // No value, no verdict.
        let unknown = ToolLife {
            value: None,
            ..life(CountDirection::Up, 0.0, 200.0)
        };
        assert!(!unknown.near_limit());
    }

    #[test]
    fn a_tool_is_near_when_a_life_is_or_it_is_expired_or_broken() {
        let mut tool = CuttingTool {
            asset_id: "M.T4".into(),
            tool_id: Some("T4".into()),
            status: vec!["USED".into()],
            lives: vec![
                life(CountDirection::Up, 10.0, 200.0),
                ToolLife {
                    kind: ToolLifeKind::Minutes,
                    ..life(CountDirection::Up, 58.0, 60.0)
                },
            ],
            ..CuttingTool::default()
        };
        assert!(tool.near_life_limit(), "the minutes are");
        tool.lives.pop();
        assert!(!tool.near_life_limit());
        for status in ["EXPIRED", "broken"] {
            tool.status = vec!["USED".into(), status.into()];
            assert!(tool.near_life_limit(), "{status}");
        }
        assert_eq!(tool.label(), "T4", "the toolId without a ProgramToolNumber");
        tool.program_tool_number = Some("12".into());
        assert_eq!(tool.label(), "T12");
    }

    #[test]
    fn the_tile_line() {
        let expired = |n: &str| CuttingTool {
            asset_id: format!("a{n}"),
            program_tool_number: Some(n.into()),
            status: vec!["EXPIRED".into()],
            ..CuttingTool::default()
        };
        let fine = CuttingTool {
            asset_id: "f".into(),
            ..CuttingTool::default()
        };
        let labels = near_limit_labels([&expired("12"), &fine, &expired("12")]);
        assert_eq!(labels, ["T12"]);
        assert_eq!(
            near_limit_line(&labels).as_deref(),
            Some("Tool T12 near life limit")
        );
        let labels = near_limit_labels([&expired("12"), &expired("3")]);
        assert_eq!(
            near_limit_line(&labels).as_deref(),
            Some("2 tools near life limit")
        );
        assert_eq!(near_limit_line(&[]), None);
    }

    #[test]
    fn enums_parse_their_mtconnect_spelling() {
        assert_eq!(
            "PART_COUNT".parse::<ToolLifeKind>(),
            Ok(ToolLifeKind::PartCount)
        );
        assert_eq!(" down ".parse::<CountDirection>(), Ok(CountDirection::Down));
        assert!("SIDEWAYS".parse::<CountDirection>().is_err());
    }
}
