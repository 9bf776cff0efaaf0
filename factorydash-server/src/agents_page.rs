//! The agents page (`/agents`): every agent (and recording) as a card, its state in words
//! and in the board's colours, its health with the numbers formatted here (thousands
//! separators, rates with their unit), its gaps as a table, and for an admin the buttons
//! and the form that call `/api/agents` (`assets/agents.js`, styled by
//! `assets/agents.css`).
//!
//! Every agent-supplied string goes through maud's escaping. The script builds no markup:
//! after a change, and when the live health changes, it reads this page again and places
//! the parts of each card (`data-part`) that differ.

use factorydash_core::Gap;
use maud::{html, Markup, DOCTYPE};

use crate::health::{SourceHealth, SourceState};
use crate::page::{banner, footer, page_head_with, rfc3339, theme_button};
use crate::redact::{redacted, redacted_in};

/// What the reader of the page may do with the agents. Whatever the page shows, the API
/// checks again (the token gate, the CSRF guard, the handlers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Controls {
    /// Add, pause, resume and remove: an admin's token, or an open dashboard (no tokens)
    /// asked for at an IP address or `localhost`. The buttons and the form are shown.
    Change,
    /// Read only: a viewer's token. The page says how an admin signs in.
    ViewOnly,
    /// An open dashboard asked for by a DNS name: the CSRF guard refuses every change
    /// there ([`crate::csrf::takes_changes`], DNS rebinding); the page says so.
    OpenByName,
    /// This server plays a recording and follows no agents.
    Recording,
}

/// An agent as the page shows it, or a recording being played.
#[derive(Debug, Clone)]
pub struct AgentEntry {
    /// The agent's URL without credentials (its identity), or `replay:<dir>`.
    pub url: String,
    /// Added through `/api/agents` (then it may be removed), not given at start.
    pub added_at_run_time: bool,
    /// Known and not followed now.
    pub paused: bool,
    /// How its ingest goes, once this process started it.
    pub health: Option<SourceHealth>,
}

impl AgentEntry {
    /// Whether this is an agent (which may be paused or removed), not a recording.
    fn is_agent(&self) -> bool {
        !self.url.starts_with("replay:")
    }
}

/// What the agents page shows.
pub struct AgentsPage<'a> {
    /// Who reads it.
    pub who: crate::page::Who<'a>,
    /// The forms' token (the `factorydash_form` cookie's), for `POST /admin/agents`.
    pub csrf: &'a str,
    /// What the last form did, said over the list.
    pub done: Option<&'static str>,
    /// Every agent and recording, in the order shown.
    pub agents: &'a [AgentEntry],
    /// The recorded gaps, of every agent.
    pub gaps: &'a [Gap],
    /// Every source's health, for the banner.
    pub sources: &'a [SourceHealth],
    /// What the reader may do.
    pub controls: Controls,
}

/// `n` with a comma between each group of three digits: `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// A rate of observations per second, to a tenth, with its unit: `1,234.5 obs/s`.
pub fn per_second(rate: f64) -> String {
    let tenths = if rate.is_finite() && rate > 0.0 {
        // Rates are far below 2^64 / 10; `as` saturates anyway.
        (rate * 10.0).round() as u64
    } else {
        0
    };
    format!("{}.{} obs/s", thousands(tenths / 10), tenths % 10)
}

/// The board's colour of an agent's state: a class of `agents.css` naming one of
/// `app.css`'s variables (`--active`, `--idle`, `--stopped`, `--fault`, `--unavail`).
/// Reading and storing is `active`; waiting for contact or for another process `idle`;
/// paused `stopped`; failing (unreachable, backing off, the store refusing) `fault`; a
/// finished recording or an agent not started `unavail`.
fn tone(entry: &AgentEntry) -> &'static str {
    let Some(h) = &entry.health else {
        return if entry.paused { "stopped" } else { "unavail" };
    };
    if entry.paused {
        return "stopped";
    }
    if h.state == SourceState::Paused {
        // Resumed, and its task has not said anything yet.
        return "idle";
    }
    if h.store_unavailable_since.is_some() || h.unreachable_since.is_some() {
        return "fault";
    }
    match h.state {
        SourceState::Backfilling
        | SourceState::Polling
        | SourceState::Streaming
        | SourceState::Replaying => "active",
        SourceState::Connecting | SourceState::Standby => "idle",
        SourceState::BackingOff => "fault",
        SourceState::Paused => "stopped",
        SourceState::Finished => "unavail",
    }
}

/// The state in words (never by colour alone).
fn state_words(entry: &AgentEntry) -> String {
    let state = match &entry.health {
        _ if entry.paused => "paused",
        // Resumed, and its task has not said anything yet.
        Some(h) if h.state == SourceState::Paused => "resuming",
        Some(h) => h.state.label(),
        None => "not started",
    };
    let store = entry
        .health
        .as_ref()
        .is_some_and(|h| h.store_unavailable_since.is_some());
    if store {
        format!("{state} · store refusing")
    } else {
        state.to_owned()
    }
}

/// A `<time>` that `dom.js` shows as an age ("5 s ago"), or with `clock` as the local
/// date and time; `none` when there is no instant.
fn when(t: Option<chrono::DateTime<chrono::Utc>>, clock: bool, none: &str) -> Markup {
    html! {
        @match t {
            Some(t) => time data-ts=(rfc3339(t)) data-mode=[clock.then_some("clock")] { (rfc3339(t)) },
            None => (none),
        }
    }
}

/// The numbers and instants of an agent's health, and its errors.
fn health(entry: &AgentEntry) -> Markup {
    html! {
        div .agent-health data-part="health" {
            @match &entry.health {
                None => p .muted {
                    @if entry.paused { "Paused: not followed since this server started. Resume it to read what it buffered meanwhile." }
                    @else { "Not started yet." }
                },
                Some(h) => {
                    dl {
                        dt { "Observations stored" } dd .num { (thousands(h.observations)) }
                        dt { "Rate" } dd .num { (per_second(h.observations_per_second)) }
                        dt { "Waiting to be stored" } dd .num { (thousands(h.buffered)) }
                        dt { "instanceId" } dd .num { (h.instance_id.map_or("—".to_owned(), |i| i.to_string())) }
                        dt { "Next sequence" } dd .num { (h.next_sequence.map_or("—".to_owned(), thousands)) }
                        dt { "Last contact" } dd { (when(h.last_contact, false, "never")) }
                        @if h.unreachable_since.is_some() {
                            dt { "Unreachable since" } dd { (when(h.unreachable_since, true, "—")) }
                        }
                        @if h.retry_at.is_some() {
                            dt { "Next attempt" } dd { (when(h.retry_at, true, "—")) }
                        }
                        @if h.store_unavailable_since.is_some() {
                            dt { "Store refusing since" } dd { (when(h.store_unavailable_since, true, "—")) }
                        }
                        dt { "Agent restarts" } dd .num { (thousands(h.restarts)) }
                        dt { "Stream reconnects" } dd .num { (thousands(h.reconnects)) }
                        @if h.instance_switches > 0 {
                            dt { "Instance switches" }
                            dd {
                                span .num { (thousands(h.instance_switches)) }
                                " " span .muted { "(the agent alternates between instanceIds; each is followed on where it was left)" }
                            }
                        }
                    }
                    @if let Some(e) = &h.last_error {
                        div .agent-error { strong { "Last error" } p { (redacted_in(e)) } }
                    }
                    @if let Some(e) = &h.store_error {
                        div .agent-error { strong { "Store error" } p { (redacted_in(e)) } }
                    }
                }
            }
        }
    }
}

/// The gaps recorded for `url`: what the agent published and factorydash could not read.
fn gaps(url: &str, all: &[Gap]) -> Markup {
    let own: Vec<&Gap> = all.iter().filter(|g| g.agent == url).collect();
    html! {
        section .agent-gaps data-part="gaps" aria-label="Gaps" {
            h3 { "Gaps (" (thousands(own.len() as u64)) ")" }
            @if own.is_empty() {
                p .muted { "None: every observation the agent published was read." }
            } @else {
                table .gap-table {
                    thead { tr {
                        th scope="col" { "instanceId" }
                        th scope="col" .num { "From" }
                        th scope="col" .num { "To" }
                        th scope="col" .num { "Lost" }
                    } }
                    tbody {
                        @for g in own {
                            // `data-label`: a cell's column on a phone, where app.css
                            // stacks a row's cells.
                            tr {
                                td .num data-label="instanceId" { (g.instance_id) }
                                td .num data-label="From" { (thousands(g.from)) }
                                @match g.to {
                                    Some(to) => td .num data-label="To" { (thousands(to)) },
                                    None => td .unknown data-label="To" { "unknown (agent restarted)" },
                                }
                                @match g.len() {
                                    Some(n) => td .num data-label="Lost" { (thousands(n)) },
                                    None => td .unknown data-label="Lost" { "unknown" },
                                }
                            }
                        }
                    }
                }
                p .muted .gap-note { "From: the first sequence lost; To: one past the last." }
            }
        }
    }
}

/// What `?done=` says: the codes of `POST /admin/agents` only.
pub fn done_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "agent-added" => "Agent added: followed from now on.",
        "agent-paused" => "Paused: not followed, after restarts too, until resumed.",
        "agent-resumed" => "Resumed: followed again from where it stopped.",
        "agent-removed" => "Agent removed. What was stored from it stays.",
        _ => return None,
    })
}

/// The page of a refused form (`POST /admin/agents` without JavaScript): why, and the way
/// back.
pub fn render_refused(message: &str) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            (page_head_with("Agents · factorydash", false, &["agents.css"]))
            body .agents-page {
                header { h1 { a href="/" { "factorydash" } " › " a href="/agents" { "agents" } } }
                p .alert role="alert" { (message) }
                p { a href="/agents" { "Back to the agents" } }
            }
        }
    }
    .into_string()
}

/// One button of an admin's: a form of its own that works without JavaScript
/// (`POST /admin/agents`); agents.js takes the click and calls the JSON API instead.
fn action_form(csrf: &str, url: &str, action: &str, class: &str, label: &str) -> Markup {
    html! {
        form .inline method="post" action="/admin/agents" {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="url" value=(url);
            button type="submit" name="action" value=(action) class=(format!("action {class}").trim_end()) data-action=(action) { (label) }
        }
    }
}

/// An admin's buttons for an agent.
fn actions(entry: &AgentEntry, csrf: &str) -> Markup {
    let url = redacted(&entry.url);
    html! {
        div .agent-actions data-part="actions" {
            @if entry.paused {
                (action_form(csrf, &url, "resume", "primary", "Resume"))
            } @else {
                (action_form(csrf, &url, "pause", "", "Pause"))
            }
            @if entry.added_at_run_time {
                (action_form(csrf, &url, "remove", "danger", "Remove"))
            } @else {
                span .muted { "Given at start (command line or configuration): pause it rather than remove it." }
            }
        }
    }
}

fn card(entry: &AgentEntry, all_gaps: &[Gap], controls: Controls, csrf: &str) -> Markup {
    let shown = redacted(&entry.url);
    html! {
        article .agent-card .(tone(entry)) data-agent=(shown) {
            div .agent-head data-part="head" {
                h2 { (crate::page::breakable(&shown)) }
                span .agent-state { (state_words(entry)) }
            }
            (health(entry))
            @if entry.is_agent() { (gaps(&entry.url, all_gaps)) }
            @if controls == Controls::Change && entry.is_agent() {
                (actions(entry, csrf))
                p .message role="status" aria-live="polite" {}
            }
        }
    }
}

/// One line over the cards: how many agents, how many followed, what they stored.
fn summary(agents: &[AgentEntry]) -> Markup {
    let paused = agents.iter().filter(|a| a.paused).count() as u64;
    let failing = agents.iter().filter(|a| tone(a) == "fault").count() as u64;
    let stored: u64 = agents
        .iter()
        .filter_map(|a| a.health.as_ref())
        .map(|h| h.observations)
        .sum();
    let n = agents.len() as u64;
    html! {
        p #agents-summary .muted {
            span .num { (thousands(n)) } @if n == 1 { " source" } @else { " sources" }
            @if paused > 0 { " · " span .num { (thousands(paused)) } " paused" }
            @if failing > 0 { " · " span .num { (thousands(failing)) } " failing" }
            " · " span .num { (thousands(stored)) } " observations stored since start"
        }
    }
}

/// Why the reader sees no buttons, when they see none.
fn controls_note(controls: Controls) -> Markup {
    html! {
        @match controls {
            Controls::Change => {},
            Controls::ViewOnly => p .muted #controls-note {
                "Only an admin adds, pauses, resumes and removes agents. To sign in as one in this browser, open this page once as "
                code { "/agents?token=ADMIN-TOKEN" } "."
            },
            Controls::OpenByName => p .muted #controls-note {
                "This dashboard has no tokens, so it takes changes only at an IP address or localhost, never at a name like this one (DNS rebinding). Open it by address, or start it with "
                code { "--token admin:…" } ", to add, pause or remove agents here."
            },
            Controls::Recording => p .muted #controls-note {
                "This factorydash plays a recording: it follows no agents to add, pause or remove."
            },
        }
    }
}

/// The whole page.
pub fn render_agents(p: &AgentsPage<'_>) -> String {
    let change = p.controls == Controls::Change;
    html! {
        (DOCTYPE)
        html lang="en" {
            (page_head_with("Agents · factorydash", false, &["agents.css", "agents.js"]))
            body .agents-page data-device="" {
                header {
                    h1 { a href="/" { "factorydash" } " › agents" }
                    span #live .muted { "connecting…" }
                    (theme_button())
                    (crate::page::account_links(p.who))
                }
                (banner(p.sources, None))
                @if change {
                    section #add-agent aria-labelledby="add-title" {
                        h2 #add-title { "Add an agent" }
                        form #add-form method="post" action="/admin/agents" {
                            input type="hidden" name="csrf" value=(p.csrf);
                            input type="hidden" name="action" value="add";
                            label for="add-url" { "Agent URL" }
                            input #add-url name="url" type="text" inputmode="url" autocomplete="off" spellcheck="false" required placeholder="http://10.0.0.5:5000" aria-describedby="add-help";
                            button type="submit" .action .primary { "Add agent" }
                        }
                        p #add-help .muted { "Its base URL, as for " code { "--agent" } "; credentials in it are kept apart and never shown." }
                        p #add-message .message role="status" aria-live="polite" {}
                    }
                } @else {
                    (controls_note(p.controls))
                }
                (summary(p.agents))
                p #agents-message .message role="status" aria-live="polite" { @if let Some(done) = p.done { (done) } }
                p #no-agents .muted hidden[!p.agents.is_empty()] { "No agents or recordings." }
                section #agent-list aria-label="Agents" {
                    @for a in p.agents { (card(a, p.gaps, p.controls, p.csrf)) }
                }
                (footer("Numbers update live.", None))
            }
        }
    }
    .into_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_have_thousands_separators_and_rates_their_unit() {
        for (n, shown) in [
            (0, "0"),
            (7, "7"),
            (999, "999"),
            (1_000, "1,000"),
            (112_763, "112,763"),
            (1_234_567, "1,234,567"),
            (u64::MAX, "18,446,744,073,709,551,615"),
        ] {
            assert_eq!(thousands(n), shown);
        }
        assert_eq!(per_second(0.0), "0.0 obs/s");
        assert_eq!(per_second(0.04), "0.0 obs/s");
        assert_eq!(per_second(12.345), "12.3 obs/s");
        assert_eq!(per_second(1234.56), "1,234.6 obs/s");
        assert_eq!(per_second(f64::NAN), "0.0 obs/s");
        assert_eq!(per_second(-3.0), "0.0 obs/s");
    }
}
