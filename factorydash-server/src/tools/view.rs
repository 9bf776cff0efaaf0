//! What the pages show of tools (rendered here, beside [`crate::page`], which calls these):
//! the device page's Tools section, a table per tool, and a tile's line of the tools near
//! their life limit. Every agent-supplied string goes through maud's escaping.

use factorydash_core::tools::{CuttingItem, CuttingTool, ToolLife};
use factorydash_core::DeviceStatus;
use maud::{html, Markup};

use super::{DeviceTools, ToolsState};
use crate::redact::redacted_in;

/// A tile's line of its device's tools near their life limit (`Tool T12 near life limit`,
/// `2 tools near life limit`, naming them in its title), or nothing.
pub fn card_line(status: &DeviceStatus) -> Markup {
    html! {
        @if let Some(line) = status.tools_line() {
            p .tools-near title=(status.tools_near_limit.join(", ")) { (line) }
        }
    }
}

/// A number as a page shows it: whole numbers without a fraction, others to three places
/// at most (`185`, `37.5`).
fn number(n: f64) -> String {
    let text = format!("{n:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

fn optional(n: Option<f64>) -> String {
    n.map_or_else(|| "—".to_owned(), number)
}

/// The device page's Tools section: a table per CuttingTool of the device, or why there
/// is none.
pub fn section(d: &DeviceTools) -> Markup {
    html! {
        section #tools aria-label="Tools" {
            h2 { "Tools " span .muted { "(CuttingTool assets" (state_note(&d.state)) ")" } }
            @if d.tools.is_empty() {
                p #no-tools .muted { "No CuttingTool assets" }
            }
            @for t in &d.tools { (tool_table(t)) }
        }
    }
}

fn state_note(state: &ToolsState) -> Markup {
    let when = |t: chrono::DateTime<chrono::Utc>| {
        let t = t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        html! { time data-ts=(t) data-mode="clock" { (t) } }
    };
    match state {
        ToolsState::NotRead => html! { ", not read yet" },
        ToolsState::Read(at) => html! { ", read " (when(*at)) },
        ToolsState::NotServed => html! { ": the agent serves none" },
        ToolsState::Failed { read, error } => html! {
            ", the last read failed: " (redacted_in(error))
            @if let Some(at) = read { "; shown as read " (when(*at)) }
        },
    }
}

fn tool_table(t: &CuttingTool) -> Markup {
    let near = t.near_life_limit();
    html! {
        table .tool .near[near] data-asset=(t.asset_id) {
            caption {
                strong { (t.label()) }
                " · toolId " (t.tool_id.as_deref().unwrap_or("—"))
                " · assetId " (t.asset_id)
                " · ProgramToolNumber " (t.program_tool_number.as_deref().unwrap_or("—"))
                " · CutterStatus " span .status { @if t.status.is_empty() { "—" } @else { (t.status.join(" ")) } }
                @if let Some(l) = &t.location { " · " (l.kind) " " (l.value) }
                @if near { " · " strong .near-label { "near its life limit" } }
            }
            thead { tr { th { "Life" } th { "Value / limit" } th { "Remaining" } th { "Warning at" } } }
            tbody {
                @if t.lives.is_empty() && t.items.iter().all(|i| i.lives.is_empty()) {
                    tr { td colspan="4" .muted { "No ToolLife" } }
                }
                @for life in &t.lives { (life_row(life, None)) }
                // Each cutting item's ItemLife (MTConnect Part 4, CuttingItem).
                @for item in &t.items {
                    @for life in &item.lives { (life_row(life, Some(item))) }
                }
            }
        }
    }
}

/// A row of a `ToolLife`, or of an `ItemLife` of `item`.
fn life_row(life: &ToolLife, item: Option<&CuttingItem>) -> Markup {
    let unit = life.kind.label();
    html! {
        tr class=[life.near_limit().then_some("near")] data-item=[item.map(|i| i.indices.as_str())] {
            td {
                @if let Some(item) = item { span .item { (item.label()) } " " }
                (life.kind.as_str()) " " span .muted { "counting " (life.direction.as_str()) }
            }
            td .value { (optional(life.value)) " / " (optional(life.limit)) " " (unit) }
            td .remaining {
                @match (life.remaining(), life.remaining_share()) {
                    (Some(left), Some(share)) => {
                        meter min="0" max="1" low="0.1" optimum="1" value=(format!("{share:.3}")) {}
                        " " (number(left)) " " (unit) " left (" (format!("{:.0}", share * 100.0)) " %)"
                    },
                    (Some(left), None) => { (number(left)) " " (unit) " left" },
                    _ => span .muted { "no limit set" },
                }
            }
            td { @match life.warning_threshold() { Some(w) => (number(w)), None => "—" } }
        }
    }
}

#[cfg(test)]
mod tests {
    use factorydash_core::tools::{CountDirection, ToolLifeKind};

    use super::*;

    #[test]
    fn numbers_are_shown_without_a_needless_fraction() {
        assert_eq!(number(185.0), "185");
        assert_eq!(number(37.5), "37.5");
        assert_eq!(number(0.1234), "0.123");
        assert_eq!(number(-0.0001), "0");
    }

    #[test]
    fn a_tool_near_its_limit_is_marked_and_its_remaining_life_written() {
        let tool = CuttingTool {
            asset_id: "M1.T12".into(),
            tool_id: Some("T12".into()),
            program_tool_number: Some("12".into()),
            status: vec!["USED".into()],
            lives: vec![ToolLife {
                warning: Some(180.0),
                initial: Some(0.0),
                ..ToolLife::new(
                    ToolLifeKind::PartCount,
                    CountDirection::Up,
                    Some(185.0),
                    Some(200.0),
                )
            }],
            ..CuttingTool::default()
        };
        let html = section(&DeviceTools {
            tools: vec![tool],
            state: ToolsState::NotServed,
        })
        .into_string();
        assert!(html.contains(r#"class="tool near""#), "{html}");
        assert!(html.contains("near its life limit"), "{html}");
        assert!(html.contains("185 / 200 parts"), "{html}");
        assert!(html.contains("15 parts left (8 %)"), "{html}");
        assert!(html.contains(r#"value="0.075""#), "{html}");
        assert!(html.contains("<td>180</td>"), "{html}");
        let empty = section(&DeviceTools {
            tools: Vec::new(),
            state: ToolsState::NotServed,
        })
        .into_string();
        assert!(empty.contains("No CuttingTool assets"), "{empty}");
        assert!(empty.contains("the agent serves none"), "{empty}");
    }
}
