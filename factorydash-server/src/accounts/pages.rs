//! The account pages: sign-in, a user's own account (sessions, personal tokens, password)
//! and the administration (users, groups, the audit log). Plain HTML forms: they work
//! without JavaScript. Every form carries the form token (the `factorydash_form`
//! double-submit cookie's value).

use chrono::{DateTime, Utc};
use factorydash_core::accounts::{AuditEntry, Credential, Group, User};
use factorydash_core::records::DeviceRecord;
use maud::{html, Markup, DOCTYPE};

use crate::assets;

/// The head of an account page: the theme and the styles, no live scripts.
fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · factorydash" }
            script src=(assets::url("theme.js")) {}
            link rel="stylesheet" href=(assets::url("app.css"));
            link rel="stylesheet" href=(assets::url("accounts.css"));
        }
    }
}

fn when(t: DateTime<Utc>) -> Markup {
    html! { time datetime=(t.to_rfc3339()) { (t.format("%Y-%m-%d %H:%M UTC")) } }
}

fn csrf_field(csrf: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf); }
}

/// A message above a form: what went wrong (`error`) or what was done.
pub enum Notice<'a> {
    /// Nothing to say.
    None,
    /// What was done.
    Done(&'a str),
    /// What went wrong.
    Error(&'a str),
}

fn notice(n: &Notice<'_>) -> Markup {
    html! {
        @match n {
            Notice::None => {},
            Notice::Done(text) => p .notice .done role="status" { (text) },
            Notice::Error(text) => p .notice .error role="alert" { (text) },
        }
    }
}

/// The sign-in page: `next` is where to go after (a path of this server), `csrf` the form
/// token.
pub fn login(next: &str, csrf: &str, n: &Notice<'_>, proxy: bool) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head("Sign in"))
            body .account-page .login-page {
                main .login-box {
                    h1 { "factorydash" }
                    h2 { "Sign in" }
                    (notice(n))
                    form method="post" action="/login" {
                        (csrf_field(csrf))
                        input type="hidden" name="next" value=(next);
                        label for="user" { "Name" }
                        input #user name="user" type="text" autocomplete="username" autocapitalize="none" spellcheck="false" required autofocus maxlength="64";
                        label for="password" { "Password" }
                        input #password name="password" type="password" autocomplete="current-password" required maxlength="256";
                        button .action .primary type="submit" { "Sign in" }
                    }
                    @if proxy {
                        p .muted { "This plant's single sign-on signs you in when you come through it." }
                    }
                }
            }
        }
    }
    .into_string()
}

/// What the account page shows.
pub struct AccountPage<'a> {
    /// Who.
    pub user: &'a User,
    /// Their groups (name and role).
    pub groups: Vec<&'a Group>,
    /// Their personal tokens, newest first.
    pub tokens: &'a [Credential],
    /// How many sessions they have.
    pub sessions: usize,
    /// A token just made: shown once.
    pub new_token: Option<&'a str>,
    /// The form token.
    pub csrf: &'a str,
    /// Whether they administer (a link to the administration).
    pub admin: bool,
    /// What happened.
    pub notice: Notice<'a>,
}

fn top(title: &str, who: &str, admin: bool, csrf: &str) -> Markup {
    html! {
        header {
            h1 { a href="/" { "factorydash" } " › " (title) }
            nav .jump aria-label="Pages" {
                a href="/" { "Board" }
                a href="/account" { "Account" }
                @if admin {
                    a href="/admin" { "Administration" }
                    a href="/admin/devices" { "Machines" }
                    a href="/admin/shifts" { "Shifts" }
                    a href="/admin/alarms" { "Alarm rules" }
                }
            }
            span .who .muted { "signed in as " strong { (who) } }
            form .inline method="post" action="/logout" {
                (csrf_field(csrf))
                button .action type="submit" { "Sign out" }
            }
        }
    }
}

/// The account page.
pub fn account(p: &AccountPage<'_>) -> String {
    let u = p.user;
    html! {
        (DOCTYPE)
        html lang="en" {
            (head("Account"))
            body .account-page {
                (top("account", &u.name, p.admin, p.csrf))
                main {
                    (notice(&p.notice))
                    section aria-labelledby="me" {
                        h2 #me { (if u.display_name.is_empty() { &u.name } else { &u.display_name }) }
                        p { "Groups: "
                            @if p.groups.is_empty() { span .muted { "none: ask an admin to put you in one to see machines." } }
                            @for (i, g) in p.groups.iter().enumerate() {
                                @if i > 0 { ", " }
                                strong { (g.name) } " (" (g.role) ")"
                            }
                        }
                        p { (p.sessions) " signed-in session(s). "
                            form .inline method="post" action="/logout" {
                                (csrf_field(p.csrf))
                                input type="hidden" name="everywhere" value="1";
                                button .action type="submit" { "Sign out everywhere" }
                            }
                        }
                    }
                    section aria-labelledby="tokens-title" {
                        h2 #tokens-title { "Personal API tokens" }
                        @if let Some(token) = p.new_token {
                            div .notice .done role="status" {
                                p { "Your new token, shown this once: copy it now." }
                                code .secret { (token) }
                            }
                        }
                        p .muted { "Send one as " code { "Authorization: Bearer TOKEN" } " from scripts. It acts as you, with your groups' rights." }
                        @if !p.tokens.is_empty() {
                            table .accounts-table {
                                thead { tr { th { "Name" } th { "Made" } th { "Expires" } th { "Last used" } th {} } }
                                tbody {
                                    @for t in p.tokens {
                                        tr {
                                            td { (t.name) }
                                            td { (when(t.created_at)) }
                                            td { (when(t.expires_at)) }
                                            td { (when(t.last_used_at)) }
                                            td {
                                                form .inline method="post" action="/account/tokens/revoke" {
                                                    (csrf_field(p.csrf))
                                                    input type="hidden" name="id" value=(t.digest);
                                                    button .action type="submit" { "Revoke" }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                        form .stack method="post" action="/account/tokens" {
                            (csrf_field(p.csrf))
                            label for="token-name" { "Name" }
                            input #token-name name="name" type="text" required maxlength="64" placeholder="e.g. mes-export";
                            label for="token-days" { "Expires in (days)" }
                            input #token-days name="days" type="number" min="1" max="365" value="90" required;
                            button .action .primary type="submit" { "Make a token" }
                        }
                    }
                    @if u.password_hash.is_some() {
                        section aria-labelledby="password-title" {
                            h2 #password-title { "Password" }
                            form .stack method="post" action="/account/password" {
                                (csrf_field(p.csrf))
                                label for="current" { "Current password" }
                                input #current name="current" type="password" autocomplete="current-password" required maxlength="256";
                                label for="new" { "New password (10 characters or more, not a common one)" }
                                input #new name="new" type="password" autocomplete="new-password" required minlength="10" maxlength="256";
                                button .action .primary type="submit" { "Change password" }
                            }
                        }
                    }
                }
            }
        }
    }
    .into_string()
}

/// What the administration page shows.
pub struct AdminPage<'a> {
    /// Who looks.
    pub who: &'a str,
    /// Every user.
    pub users: &'a [User],
    /// Every group.
    pub groups: &'a [Group],
    /// The audit entries asked for, newest first.
    pub audit: &'a [AuditEntry],
    /// The audit filters: actor, action.
    pub audit_actor: &'a str,
    /// The audit filter on the action.
    pub audit_action: &'a str,
    /// The address of the next (older) audit page, if any.
    pub audit_next: Option<String>,
    /// The form token.
    pub csrf: &'a str,
    /// What happened.
    pub notice: Notice<'a>,
}

/// The administration page.
pub fn admin(p: &AdminPage<'_>) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head("Administration"))
            body .account-page {
                (top("administration", p.who, true, p.csrf))
                main {
                    (notice(&p.notice))
                    section #users aria-labelledby="users-title" {
                        h2 #users-title { "Users" }
                        table .accounts-table {
                            thead { tr { th { "Name" } th { "Shown as" } th { "Groups" } th { "Sign-in" } th { "State" } th {} } }
                            tbody {
                                @for u in p.users {
                                    tr {
                                        td { (u.name) }
                                        td { (u.display_name) }
                                        td { (p.groups.iter().filter(|g| g.members.contains(&u.name)).map(|g| g.name.as_str()).collect::<Vec<_>>().join(", ")) }
                                        td { (if u.password_hash.is_some() { "password" } else { "single sign-on" }) }
                                        td { (if u.disabled { "disabled" } else { "active" }) }
                                        td .actions {
                                            form .inline method="post" action="/admin/users/state" {
                                                (csrf_field(p.csrf))
                                                input type="hidden" name="name" value=(u.name);
                                                input type="hidden" name="disabled" value=(if u.disabled { "0" } else { "1" });
                                                button .action type="submit" { (if u.disabled { "Enable" } else { "Disable" }) }
                                            }
                                            form .inline method="post" action="/admin/users/remove" {
                                                (csrf_field(p.csrf))
                                                input type="hidden" name="name" value=(u.name);
                                                button .action .danger type="submit" { "Remove" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                        h3 { "Add or change a user" }
                        form .stack method="post" action="/admin/users" {
                            (csrf_field(p.csrf))
                            label for="u-name" { "Name" }
                            input #u-name name="name" type="text" required maxlength="64" autocapitalize="none" spellcheck="false";
                            label for="u-display" { "Shown as" }
                            input #u-display name="display_name" type="text" maxlength="128";
                            label for="u-password" { "Password (empty: unchanged; a new user without one signs in through single sign-on only)" }
                            input #u-password name="password" type="password" autocomplete="new-password" maxlength="256";
                            button .action .primary type="submit" { "Save user" }
                        }
                    }
                    section #groups aria-labelledby="groups-title" {
                        h2 #groups-title { "Groups" }
                        p .muted { "A group's members have its role over the devices of its scope: one rule a line, "
                            code { "*" } ", " code { "device:GLOB" } ", " code { "agent:GLOB" } ", " code { "cell:NAME" } " or " code { "line:NAME" } ". A user's rights are the union of their groups'." }
                        @for g in p.groups {
                            details .group {
                                summary { strong { (g.name) } " · " (g.role) " · " (g.members.len()) " member(s) · " (g.scope.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")) }
                                (group_form(Some(g), p.csrf))
                                form .inline method="post" action="/admin/groups/remove" {
                                    (csrf_field(p.csrf))
                                    input type="hidden" name="name" value=(g.name);
                                    button .action .danger type="submit" { "Remove group" }
                                }
                            }
                        }
                        h3 { "Add a group" }
                        (group_form(None, p.csrf))
                    }
                    section #audit aria-labelledby="audit-title" {
                        h2 #audit-title { "Audit log" }
                        form .filters method="get" action="/admin" {
                            label for="a-actor" { "Who" }
                            input #a-actor name="actor" type="text" value=(p.audit_actor) maxlength="80";
                            label for="a-action" { "What" }
                            input #a-action name="action" type="text" value=(p.audit_action) maxlength="40" placeholder="e.g. login-failed";
                            button .action type="submit" { "Filter" }
                            a href={ "/api/audit?format=csv&actor=" (urlenc(p.audit_actor)) "&action=" (urlenc(p.audit_action)) } { "Export CSV" }
                        }
                        table .accounts-table {
                            thead { tr { th { "When" } th { "Who" } th { "From" } th { "What" } th { "On" } th { "Detail" } } }
                            tbody {
                                @for e in p.audit {
                                    tr {
                                        td { (when(e.at)) }
                                        td { (e.actor) }
                                        td { (e.address) }
                                        td { (e.action) }
                                        td { (e.target) }
                                        td { (e.detail) }
                                    }
                                }
                            }
                        }
                        @if let Some(next) = &p.audit_next { p { a href=(next) { "Older entries" } } }
                    }
                }
            }
        }
    }
    .into_string()
}

fn urlenc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn group_form(g: Option<&Group>, csrf: &str) -> Markup {
    let id = g.map_or("new".to_owned(), |g| g.name.clone());
    html! {
        form .stack method="post" action="/admin/groups" {
            (csrf_field(csrf))
            @if let Some(g) = g {
                input type="hidden" name="name" value=(g.name);
            } @else {
                label for={ "g-name-" (id) } { "Name" }
                input id={ "g-name-" (id) } name="name" type="text" required maxlength="64";
            }
            label for={ "g-role-" (id) } { "Role" }
            select id={ "g-role-" (id) } name="role" {
                @for r in ["viewer", "operator", "admin"] {
                    option value=(r) selected[g.is_some_and(|g| g.role.as_str() == r)] { (r) }
                }
            }
            label for={ "g-scope-" (id) } { "Scope (one rule a line)" }
            textarea id={ "g-scope-" (id) } name="scope" rows="3" spellcheck="false" {
                (g.map(|g| g.scope.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")).unwrap_or_default())
            }
            label for={ "g-members-" (id) } { "Members (user names, one a line)" }
            textarea id={ "g-members-" (id) } name="members" rows="3" spellcheck="false" {
                (g.map(|g| g.members.join("\n")).unwrap_or_default())
            }
            button .action .primary type="submit" { (if g.is_some() { "Save group" } else { "Add group" }) }
        }
    }
}

/// One device on the machines page: its key and its record, if any.
pub struct DeviceEntry<'a> {
    /// Its agent's base URL, as shown.
    pub agent: &'a str,
    /// Its name in the agent's model.
    pub device: &'a str,
    /// What an admin said about it.
    pub record: Option<&'a DeviceRecord>,
    /// The cell the layout's patterns alone put it in, if any.
    pub pattern_cell: Option<&'a str>,
}

/// What the machines page shows.
pub struct DevicesPage<'a> {
    /// Who (as shown).
    pub who: &'a str,
    /// Every device, by agent then name.
    pub devices: &'a [DeviceEntry<'a>],
    /// The layout's cells (name, line), in the configuration's order.
    pub cells: &'a [(&'a str, Option<&'a str>)],
    /// The form token.
    pub csrf: &'a str,
    /// What happened.
    pub notice: Notice<'a>,
}

/// The machines page: each device's display name, cell, description and ideal cycle time,
/// a form each (`POST /admin/devices`).
pub fn devices(p: &DevicesPage<'_>) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head("Machines"))
            body .account-page {
                (top("machines", p.who, true, p.csrf))
                main {
                    (notice(&p.notice))
                    section #machines aria-labelledby="machines-title" {
                        h2 #machines-title { "Machines" }
                        p .muted {
                            "What the agents' models do not say: the name shown on the board, the cell it stands in (before the configuration's patterns), a description, and the ideal cycle time (seconds per part, for OEE's performance). Leave a field empty for none."
                        }
                        @if p.devices.is_empty() { p .muted { "No device is known yet: devices appear once an agent's model is read." } }
                        @for (i, d) in p.devices.iter().enumerate() {
                            (device_form(i, d, p.cells, p.csrf))
                        }
                    }
                }
            }
        }
    }
    .into_string()
}

fn device_form(
    i: usize,
    d: &DeviceEntry<'_>,
    cells: &[(&str, Option<&str>)],
    csrf: &str,
) -> Markup {
    let r = d.record;
    let shown = r.and_then(|r| r.display_name.as_deref());
    let cell = r.and_then(|r| r.cell.as_deref());
    let cycle = r.and_then(|r| r.ideal_cycle_time);
    html! {
        details .group id={ "device-" (i) } {
            summary {
                strong { (shown.unwrap_or(d.device)) }
                @if shown.is_some() { " (" (d.device) ")" }
                span .muted { " at " (crate::redact::redacted(d.agent)) }
                @if let Some(c) = cell.or(d.pattern_cell) { " · " (c) }
                @if let Some(t) = cycle { " · " (format!("{t} s")) " a part" }
            }
            form .stack method="post" action="/admin/devices" {
                (csrf_field(csrf))
                input type="hidden" name="agent" value=(d.agent);
                input type="hidden" name="device" value=(d.device);
                label for={ "d-name-" (i) } { "Shown as" }
                input id={ "d-name-" (i) } name="display_name" type="text" maxlength="128" value=(shown.unwrap_or("")) placeholder=(d.device);
                label for={ "d-cell-" (i) } { "Cell" }
                select id={ "d-cell-" (i) } name="cell" {
                    option value="" selected[cell.is_none()] {
                        "as the configuration's patterns say"
                        @if let Some(c) = d.pattern_cell { " (" (c) ")" } @else { " (none)" }
                    }
                    @for (name, line) in cells {
                        option value=(name) selected[cell == Some(*name)] { @if let Some(l) = line { (l) " › " } (name) }
                    }
                }
                label for={ "d-cycle-" (i) } { "Ideal cycle time (seconds per part)" }
                input id={ "d-cycle-" (i) } name="ideal_cycle_time" type="number" min="0.001" step="any" value=(cycle.map(|t| t.to_string()).unwrap_or_default());
                label for={ "d-desc-" (i) } { "Description" }
                textarea id={ "d-desc-" (i) } name="description" rows="2" maxlength="2000" {
                    (r.and_then(|r| r.description.as_deref()).unwrap_or(""))
                }
                @if let Some(r) = r {
                    p .muted { "Changed " (when(r.updated_at)) " by " (r.updated_by) }
                }
                button .action .primary type="submit" { "Save" }
            }
        }
    }
}

/// One shift of a day as planned: its name, local start and end (`HH:MM`), planned
/// minutes.
pub type PlannedShift = (String, String, String, i64);

/// What the shifts page shows.
pub struct ShiftsPage<'a> {
    /// Who is signed in, as shown.
    pub who: &'a str,
    /// The calendar's text in the form (the one in effect, or what was sent).
    pub text: &'a str,
    /// Where the calendar in effect came from, in words.
    pub source: &'a str,
    /// The plant's time zone.
    pub time_zone: &'a str,
    /// The next days as planned: each local date and its shifts.
    pub days: &'a [(String, Vec<PlannedShift>)],
    /// The form token.
    pub csrf: &'a str,
    /// What was done or went wrong.
    pub notice: Notice<'a>,
}

/// What the alarm rules page shows.
pub struct AlarmRulesPage<'a> {
    /// Who is signed in, as shown.
    pub who: &'a str,
    /// The configuration file's rules: name and what raises them.
    pub configured: &'a [(String, String)],
    /// The page's rules in effect: name and what raises them.
    pub page_rules: &'a [(String, String)],
    /// The page's rules as text in the form (saved, or what was sent).
    pub text: &'a str,
    /// Who saved them and when, in words.
    pub source: Option<&'a str>,
    /// The form token.
    pub csrf: &'a str,
    /// What was done or went wrong.
    pub notice: Notice<'a>,
}

/// The alarm rules page: the configuration file's rules, and the page's as text,
/// editable.
pub fn alarm_rules(p: &AlarmRulesPage<'_>) -> String {
    let list = |rules: &[(String, String)]| {
        html! {
            @if rules.is_empty() { p .muted { "none" } }
            @else {
                table {
                    thead { tr { th { "Rule" } th { "Raises an alarm on" } } }
                    tbody {
                        @for (name, what) in rules {
                            tr { th scope="row" { (name) } td data-label="Raises an alarm on" { (what) } }
                        }
                    }
                }
            }
        }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            (head("Alarm rules"))
            body .account-page {
                (top("alarm rules", p.who, true, p.csrf))
                main {
                    (notice(&p.notice))
                    section #alarm-rules aria-labelledby="alarm-rules-title" {
                        h2 #alarm-rules-title { "Alarm rules" }
                        h3 { "From the configuration file" }
                        (list(p.configured))
                        h3 { "From this page" }
                        (list(p.page_rules))
                        p .muted {
                            "Rules as in the configuration file: [[alarm]] tables with a name, one trigger (condition, state with states and for, sample with above or below, stale, tool-life, unreachable) and options (priority, devices, cells, dedup, message, planned). Saved rules are in effect at once; a rule removed or changed clears its alarms. Webhooks and e-mail stay in the configuration file. "
                            @if let Some(s) = p.source { "These were " (s) "." }
                        }
                        form method="post" action="/admin/alarms" {
                            (csrf_field(p.csrf))
                            label for="rules" { "Rules (TOML)" }
                            textarea #rules name="rules" rows="18" spellcheck="false" placeholder="[[alarm]]\nname = \"Stopped too long\"\nstate = \"Execution\"\nstates = [\"STOPPED\", \"INTERRUPTED\"]\nfor = \"10m\"\nplanned = true" { (p.text) }
                            p { button .action type="submit" { "Save the rules" } }
                        }
                    }
                }
            }
        }
    }
    .into_string()
}

/// The shifts page: the calendar in effect as text (the configuration file's
/// `[[shift]]` tables and `holidays`), editable, with the next days as planned.
pub fn shifts(p: &ShiftsPage<'_>) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head("Shifts"))
            body .account-page {
                (top("shifts", p.who, true, p.csrf))
                main {
                    (notice(&p.notice))
                    section #shifts aria-labelledby="shifts-title" {
                        h2 #shifts-title { "Shift calendar" }
                        p .muted {
                            "Planned time for OEE and the reports: shifts per weekday with local start and end (an end at or before the start is the next day) and breaks, and holidays, in the plant's time zone (" (p.time_zone) "), as in the configuration file. In effect: " (p.source) "."
                        }
                        form method="post" action="/admin/shifts" {
                            (csrf_field(p.csrf))
                            label for="calendar" { "Calendar (TOML)" }
                            textarea #calendar name="calendar" rows="18" spellcheck="false" { (p.text) }
                            p {
                                button .action type="submit" name="action" value="save" { "Save the calendar" }
                                " "
                                button .action type="submit" name="action" value="reset" { "Use the configuration file's" }
                            }
                        }
                        h3 { "The next days, as planned" }
                        table {
                            thead { tr { th { "Day" } th { "Shifts" } } }
                            tbody {
                                @for (day, shifts) in p.days {
                                    tr {
                                        th scope="row" { (day) }
                                        td {
                                            @if shifts.is_empty() { span .muted { "none" } }
                                            @for (name, from, to, minutes) in shifts {
                                                (name) " " (from) "–" (to) " (" (minutes / 60) " h " (format!("{:02}", minutes % 60)) " planned)" br;
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    .into_string()
}
