//! Accounts: users, the groups that give them a role over a scope of devices, the
//! credentials they sign in with (sessions and personal API tokens, kept hashed) and the
//! audit log of what they did. Plain data and the rules over it; the stores keep them
//! (`factorydash_store::AccountStore`), the server checks passwords and requests.
//!
//! ```
//! use factorydash_core::accounts::{Access, Group, Role, ScopeRule};
//! use factorydash_core::layout::Layout;
//!
//! let cell_a = Group {
//!     name: "cell-a".into(),
//!     role: Role::Operator,
//!     scope: vec!["Mazak*".parse()?],
//!     members: vec!["ada".into()],
//! };
//! let access = Access::of_groups([&cell_a]);
//! let layout = Layout::default();
//! assert_eq!(access.role_for("http://a:5000", "Mazak01", &layout), Some(Role::Operator));
//! assert_eq!(access.role_for("http://a:5000", "Hurco01", &layout), None);
//! assert!(!access.is_admin());
//! # Ok::<(), factorydash_core::accounts::AccountError>(())
//! ```

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use crate::layout::{glob_match, Layout, Placement};

/// The longest user, group or token name, in bytes.
pub const MAX_NAME_LEN: usize = 64;
/// The longest display name, in bytes.
pub const MAX_DISPLAY_NAME_LEN: usize = 128;
/// The most scope rules of one group.
pub const MAX_SCOPE_RULES: usize = 100;
/// The most members of one group.
pub const MAX_MEMBERS: usize = 10_000;

/// What is wrong with an account's fields.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// A name that is empty, too long, or holds other than letters, digits, `.`, `_`,
    /// `-` and `@`.
    #[error("a {what} name has 1 to {MAX_NAME_LEN} letters, digits, '.', '_', '-' or '@'")]
    Name {
        /// "user", "group" or "token".
        what: &'static str,
    },
    /// A scope rule that is not `*`, `device:GLOB`, `agent:GLOB`, `cell:NAME`,
    /// `line:NAME` or a bare device glob.
    #[error("a scope rule is '*', 'device:GLOB', 'agent:GLOB', 'cell:NAME' or 'line:NAME' (at most 200 bytes), got '{0}'")]
    Scope(String),
    /// A role other than `viewer`, `operator` or `admin`.
    #[error("a role is viewer, operator or admin, got '{0}'")]
    Role(String),
    /// Too many of something.
    #[error("{0}")]
    TooMany(String),
}

/// Checks a user, group or token name: 1 to [`MAX_NAME_LEN`] bytes of ASCII letters,
/// digits, `.`, `_`, `-` and `@` (an e-mail address fits, as single sign-on gives).
///
/// # Errors
/// [`AccountError::Name`] naming `what`.
pub fn check_name(what: &'static str, name: &str) -> Result<(), AccountError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(AccountError::Name { what })
    }
}

/// What a group's members may do with the devices of its scope. Ordered: each role may
/// do all that the ones before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads: the board, device pages, the API.
    Viewer,
    /// Also acknowledges alarms and annotates.
    Operator,
    /// Also administers: users, groups, agents, rules. Administration is not scoped: an
    /// admin of any group administers the whole server.
    Admin,
}

impl Role {
    /// `viewer`, `operator` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = AccountError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(AccountError::Role(other.chars().take(40).collect())),
        }
    }
}

/// One rule of a group's scope: which devices it takes. Written as text (`FromStr`,
/// `Display`): `*` (every device), `device:GLOB` or a bare `GLOB` (devices by name),
/// `agent:GLOB` (every device of the agents whose base URL matches, as the dashboard
/// shows it: without user and password nor a final `/`), `cell:NAME` and `line:NAME` (the
/// devices the plant's layout places in that cell, or in a cell of that line). Globs are
/// [`glob_match`]'s: `*` any run, `?` one character, case counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ScopeRule {
    /// Every device.
    All,
    /// Devices whose name matches.
    Device(String),
    /// Devices of agents whose base URL matches.
    Agent(String),
    /// Devices the layout places in the cell of this name.
    Cell(String),
    /// Devices the layout places in a cell of the line of this name.
    Line(String),
}

impl ScopeRule {
    /// Whether this rule takes device `device` of `agent`, placed by `layout`.
    pub fn takes(&self, agent: &str, device: &str, layout: &Layout) -> bool {
        let cell = || match layout.place(agent, device) {
            Placement::Cell(i) => layout.cells().get(i),
            Placement::Unassigned => None,
        };
        match self {
            ScopeRule::All => true,
            ScopeRule::Device(glob) => glob_match(glob, device),
            ScopeRule::Agent(glob) => glob_match(glob, agent.trim_end_matches('/')),
            ScopeRule::Cell(name) => cell().is_some_and(|c| c.name() == name),
            ScopeRule::Line(name) => cell().is_some_and(|c| c.line() == Some(name)),
        }
    }
}

impl FromStr for ScopeRule {
    type Err = AccountError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let bad = || AccountError::Scope(s.chars().take(60).collect());
        if s.is_empty()
            || s.len() > crate::layout::MAX_PATTERN_LEN
            || s.chars().any(char::is_control)
        {
            return Err(bad());
        }
        if s == "*" {
            return Ok(ScopeRule::All);
        }
        let rule = match s.split_once(':') {
            Some(("device", g)) => ScopeRule::Device(g.to_owned()),
            Some(("agent", g)) => ScopeRule::Agent(g.to_owned()),
            Some(("cell", n)) => ScopeRule::Cell(n.to_owned()),
            Some(("line", n)) => ScopeRule::Line(n.to_owned()),
            // A URL-like rule without its kind is a mistake, not a device name.
            Some((kind, _)) if kind.chars().all(|c| c.is_ascii_alphabetic()) => return Err(bad()),
            _ => ScopeRule::Device(s.to_owned()),
        };
        match &rule {
            ScopeRule::Device(x)
            | ScopeRule::Agent(x)
            | ScopeRule::Cell(x)
            | ScopeRule::Line(x)
                if x.is_empty() =>
            {
                Err(bad())
            }
            _ => Ok(rule),
        }
    }
}

impl fmt::Display for ScopeRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScopeRule::All => f.write_str("*"),
            ScopeRule::Device(g) => write!(f, "device:{g}"),
            ScopeRule::Agent(g) => write!(f, "agent:{g}"),
            ScopeRule::Cell(n) => write!(f, "cell:{n}"),
            ScopeRule::Line(n) => write!(f, "line:{n}"),
        }
    }
}

/// A user. Names are unique and never change (the audit log and groups refer to them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The name signed in with ([`check_name`]).
    pub name: String,
    /// The name shown; may be empty (the name is shown).
    pub display_name: String,
    /// The password's Argon2id hash in the PHC string format
    /// (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`); `None` for a user who signs in through
    /// the auth proxy only.
    pub password_hash: Option<String>,
    /// A disabled user cannot sign in, and their sessions and tokens are refused.
    pub disabled: bool,
    /// When the user was made (UTC).
    pub created_at: DateTime<Utc>,
}

/// A group: its members have its role over the devices of its scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Its name ([`check_name`]).
    pub name: String,
    /// What its members may do.
    pub role: Role,
    /// Which devices (a device in any rule is in scope; no rules: none).
    pub scope: Vec<ScopeRule>,
    /// The names of its members.
    pub members: Vec<String>,
}

impl Group {
    /// Checks the name, and bounds ([`MAX_SCOPE_RULES`], [`MAX_MEMBERS`]).
    ///
    /// # Errors
    /// The first thing wrong.
    pub fn check(&self) -> Result<(), AccountError> {
        check_name("group", &self.name)?;
        if self.scope.len() > MAX_SCOPE_RULES {
            return Err(AccountError::TooMany(format!(
                "a group has at most {MAX_SCOPE_RULES} scope rules"
            )));
        }
        if self.members.len() > MAX_MEMBERS {
            return Err(AccountError::TooMany(format!(
                "a group has at most {MAX_MEMBERS} members"
            )));
        }
        self.members.iter().try_for_each(|m| check_name("user", m))
    }
}

/// What a user may do: the union of their groups' roles and scopes. A device is in a
/// user's scope when any of their groups' scopes takes it, with the highest role of those
/// groups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    /// Each group's role and scope.
    grants: Vec<(Role, Vec<ScopeRule>)>,
}

impl Access {
    /// `role` over every device (a fixed token, an open dashboard).
    pub fn everything(role: Role) -> Self {
        Access {
            grants: vec![(role, vec![ScopeRule::All])],
        }
    }

    /// No access at all (a user in no group).
    pub fn nothing() -> Self {
        Access::default()
    }

    /// The union of `groups`.
    pub fn of_groups<'a>(groups: impl IntoIterator<Item = &'a Group>) -> Self {
        Access {
            grants: groups
                .into_iter()
                .map(|g| (g.role, g.scope.clone()))
                .collect(),
        }
    }

    /// The highest role this access gives over device `device` of `agent` (placed by
    /// `layout`), `None` when it is out of scope.
    pub fn role_for(&self, agent: &str, device: &str, layout: &Layout) -> Option<Role> {
        self.grants
            .iter()
            .filter(|(_, rules)| rules.iter().any(|r| r.takes(agent, device, layout)))
            .map(|(role, _)| *role)
            .max()
    }

    /// Whether device `device` of `agent` is in scope.
    pub fn sees(&self, agent: &str, device: &str, layout: &Layout) -> bool {
        self.role_for(agent, device, layout).is_some()
    }

    /// Whether every device is in scope (some grant has `*`).
    pub fn sees_everything(&self) -> bool {
        self.grants
            .iter()
            .any(|(_, rules)| rules.contains(&ScopeRule::All))
    }

    /// The highest role of any grant, whatever its scope (`None`: no group).
    pub fn highest(&self) -> Option<Role> {
        self.grants.iter().map(|(r, _)| *r).max()
    }

    /// Whether this access administers the server (a grant with [`Role::Admin`]).
    pub fn is_admin(&self) -> bool {
        self.highest() == Some(Role::Admin)
    }
}

/// What a stored credential is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CredentialKind {
    /// A browser's session (a cookie).
    Session,
    /// A personal API token (`Authorization: Bearer`).
    Token,
}

impl CredentialKind {
    /// `session` or `token`.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::Session => "session",
            CredentialKind::Token => "token",
        }
    }

    /// The kind written `s` ([`CredentialKind::as_str`]).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "session" => Some(CredentialKind::Session),
            "token" => Some(CredentialKind::Token),
            _ => None,
        }
    }
}

/// A session or a personal API token, as stored: never the secret itself, only its
/// SHA-256 digest (the secret is 32 random bytes: a fast digest is enough, no password
/// hash is needed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// SHA-256 of the secret, as 64 lower-case hexadecimal digits: its key.
    pub digest: String,
    /// A session or a token.
    pub kind: CredentialKind,
    /// Whose.
    pub user: String,
    /// A token's name, given by its user (a session's: where it signed in from).
    pub name: String,
    /// When it was made (UTC).
    pub created_at: DateTime<Utc>,
    /// When it stops being taken, whatever its use (UTC): a session's absolute lifetime,
    /// a token's expiry.
    pub expires_at: DateTime<Utc>,
    /// When it was last taken (UTC), written at most once a minute: a session idle longer
    /// than its idle lifetime is refused.
    pub last_used_at: DateTime<Utc>,
}

/// One line of the audit log: who did what, when and from where. Never a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Its number, given by the store in order (0 in an entry not yet stored).
    pub id: i64,
    /// When (UTC).
    pub at: DateTime<Utc>,
    /// Who: a user's name, `token:NAME` for a fixed token of the command line, `open`
    /// on a dashboard without accounts, or the name tried in a failed sign-in.
    pub actor: String,
    /// The client's address, as the server saw it.
    pub address: String,
    /// What, as a short word: `login`, `login-failed`, `logout`, `agent-added`,
    /// `user-changed`…
    pub action: String,
    /// On what: the user, group, agent or token name.
    pub target: String,
    /// More, in words (never a password, a token or a session id).
    pub detail: String,
}

impl AuditEntry {
    /// An entry from `address`, now, to fill in (`actor`, `action`, `target`, `detail`).
    pub fn new(address: &str) -> Self {
        AuditEntry {
            id: 0,
            at: Utc::now(),
            actor: String::new(),
            address: address.to_owned(),
            action: String::new(),
            target: String::new(),
            detail: String::new(),
        }
    }
}

/// Which audit entries to list, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only entries numbered below this (keyset paging: the last entry's id).
    pub before: Option<i64>,
    /// Only entries of this actor.
    pub actor: Option<String>,
    /// Only entries of this action.
    pub action: Option<String>,
    /// Only entries at or after this time (UTC).
    pub since: Option<DateTime<Utc>>,
    /// At most this many.
    pub limit: usize,
}

impl AuditQuery {
    /// Whether `e` passes this query's filters (not its limit).
    pub fn matches(&self, e: &AuditEntry) -> bool {
        self.before.is_none_or(|b| e.id < b)
            && self.actor.as_ref().is_none_or(|a| *a == e.actor)
            && self.action.as_ref().is_none_or(|a| *a == e.action)
            && self.since.is_none_or(|s| e.at >= s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::CellSpec;

    #[test]
    fn scope_rules_read_and_write_back() {
        for text in [
            "*",
            "device:Mazak*",
            "agent:http://10.0.0.5:5000",
            "cell:Cell 1",
            "line:A",
        ] {
            assert_eq!(text.parse::<ScopeRule>().unwrap().to_string(), text);
        }
        assert_eq!(
            "Hurco0?".parse::<ScopeRule>().unwrap(),
            ScopeRule::Device("Hurco0?".into())
        );
        assert!("room:x".parse::<ScopeRule>().is_err());
        assert!("device:".parse::<ScopeRule>().is_err());
        assert!("".parse::<ScopeRule>().is_err());
        assert!("a\nb".parse::<ScopeRule>().is_err());
    }

    #[test]
    fn access_is_the_union_of_groups_with_the_highest_role() {
        let layout = Layout::new(vec![CellSpec {
            name: "Cell 1".into(),
            line: Some("Line A".into()),
            devices: vec!["Hurco*".into()],
        }])
        .unwrap();
        let viewers = Group {
            name: "line-a".into(),
            role: Role::Viewer,
            scope: vec!["line:Line A".parse().unwrap()],
            members: vec![],
        };
        let operators = Group {
            name: "hurco01".into(),
            role: Role::Operator,
            scope: vec![
                "Hurco01".parse().unwrap(),
                "agent:http://b:5000".parse().unwrap(),
            ],
            members: vec![],
        };
        let a = Access::of_groups([&viewers, &operators]);
        assert_eq!(
            a.role_for("http://a:5000", "Hurco02", &layout),
            Some(Role::Viewer)
        );
        assert_eq!(
            a.role_for("http://a:5000", "Hurco01", &layout),
            Some(Role::Operator)
        );
        assert_eq!(
            a.role_for("http://b:5000/", "Mazak01", &layout),
            Some(Role::Operator)
        );
        assert_eq!(a.role_for("http://a:5000", "Mazak01", &layout), None);
        assert!(!a.sees_everything());
        assert!(!a.is_admin());
        assert!(Access::everything(Role::Admin).is_admin());
        assert!(!Access::nothing().sees("http://a:5000", "Mazak01", &layout));
    }

    #[test]
    fn names_are_bounded() {
        assert!(check_name("user", "ada.lovelace@plant.example").is_ok());
        assert!(check_name("user", "").is_err());
        assert!(check_name("user", "a b").is_err());
        assert!(check_name("user", &"a".repeat(65)).is_err());
        assert_eq!("operator".parse::<Role>().unwrap(), Role::Operator);
        assert!("root".parse::<Role>().is_err());
    }
}
