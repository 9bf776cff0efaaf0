//! [`AccountStore`]: where users, groups, credentials (sessions and personal API tokens,
//! as digests) and the audit log are kept. Every [`crate::Store`] is one.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use factorydash_core::accounts::{
    check_name, AuditEntry, AuditQuery, Credential, CredentialKind, Group, User,
    MAX_DISPLAY_NAME_LEN,
};

use crate::StoreError;

/// The most audit entries one [`AccountStore::audit`] call returns.
pub const MAX_AUDIT_PAGE: usize = 1_000;

/// Users, groups, credentials and the audit log (see [`factorydash_core::accounts`]).
///
/// # Behavior (every implementation; the conformance tests check it)
/// - Names are compared exactly (byte for byte; listings are in byte order of names, as
///   SQLite's `BINARY` and PostgreSQL's `"C"` collations order them). Putting a user or
///   group of a name already kept replaces it: a user's fields (their credentials and
///   memberships stay), a group's role, scope and members, all at once (one transaction).
/// - A user's name must pass [`check_name`], a group [`Group::check`]; every member of a
///   group must be a user kept: a group naming someone else is refused whole
///   ([`StoreError::Invalid`] naming the first one missing) and nothing changes. A member
///   named twice is kept once; members are listed by name, scope rules in the order
///   given.
/// - Removing a user removes their credentials and takes them out of every group.
///   Removing a group leaves its members.
/// - Credentials are keyed by their digest; nothing here ever sees a secret. A credential
///   is always some kept user's: one for a user not kept, or of a digest already kept, is
///   refused ([`StoreError::Invalid`]).
/// - Times are UTC, kept to the microsecond (what SQLite and PostgreSQL keep; the memory
///   store keeps them as given).
/// - Audit entries are numbered by the store in the order appended (ids increase, never
///   reused) and listed newest first.
/// - A stored value that does not read back (a role, a kind or a scope rule that does not
///   parse) is [`StoreError::Corrupt`], never a panic.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// The user of this name, if any.
    ///
    /// # Errors
    /// A database error.
    async fn user(&self, name: &str) -> Result<Option<User>, StoreError>;

    /// Every user, by name.
    ///
    /// # Errors
    /// A database error.
    async fn users(&self) -> Result<Vec<User>, StoreError>;

    /// Adds `user`, or replaces the user of its name (their credentials and memberships
    /// stay).
    ///
    /// # Errors
    /// [`StoreError::Invalid`] when the name fails [`check_name`] or the display name is
    /// longer than [`MAX_DISPLAY_NAME_LEN`]; a database error.
    async fn put_user(&self, user: &User) -> Result<(), StoreError>;

    /// Removes the user of this name, their credentials and memberships; `false` when
    /// there was none.
    ///
    /// # Errors
    /// A database error.
    async fn remove_user(&self, name: &str) -> Result<bool, StoreError>;

    /// Every group, by name, each with its members by name.
    ///
    /// # Errors
    /// A database error.
    async fn groups(&self) -> Result<Vec<Group>, StoreError>;

    /// Adds `group`, or replaces the group of its name (role, scope and members), in one
    /// transaction.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] when [`Group::check`] fails or a member is not a user kept
    /// (nothing is changed then); a database error.
    async fn put_group(&self, group: &Group) -> Result<(), StoreError>;

    /// Removes the group of this name; `false` when there was none.
    ///
    /// # Errors
    /// A database error.
    async fn remove_group(&self, name: &str) -> Result<bool, StoreError>;

    /// Adds a credential (its digest is new: 32 random bytes' SHA-256).
    ///
    /// # Errors
    /// [`StoreError::Invalid`] when its user is not kept or its digest is kept already; a
    /// database error.
    async fn put_credential(&self, credential: &Credential) -> Result<(), StoreError>;

    /// The credential of this digest, if any (expired ones too: the caller decides).
    ///
    /// # Errors
    /// A database error.
    async fn credential(&self, digest: &str) -> Result<Option<Credential>, StoreError>;

    /// `user`'s credentials of `kind`, newest (latest `created_at`) first, then by digest.
    ///
    /// # Errors
    /// A database error.
    async fn credentials_of(
        &self,
        user: &str,
        kind: CredentialKind,
    ) -> Result<Vec<Credential>, StoreError>;

    /// Sets when the credential of this digest was last used (nothing when there is
    /// none).
    ///
    /// # Errors
    /// A database error.
    async fn touch_credential(&self, digest: &str, at: DateTime<Utc>) -> Result<(), StoreError>;

    /// Removes the credential of this digest if it is `user`'s; `false` when there was
    /// none.
    ///
    /// # Errors
    /// A database error.
    async fn remove_credential(&self, user: &str, digest: &str) -> Result<bool, StoreError>;

    /// Removes every credential of `user` of `kind` (sign out everywhere); how many.
    ///
    /// # Errors
    /// A database error.
    async fn remove_credentials_of(
        &self,
        user: &str,
        kind: CredentialKind,
    ) -> Result<u64, StoreError>;

    /// Removes every credential (session or token) that expired at or before `now`, and
    /// every session last used at or before `idle_before` (tokens have no idle limit); how
    /// many.
    ///
    /// # Errors
    /// A database error.
    async fn remove_stale_credentials(
        &self,
        now: DateTime<Utc>,
        idle_before: DateTime<Utc>,
    ) -> Result<u64, StoreError>;

    /// Appends `entry` (its `id` is ignored) and returns the id given.
    ///
    /// # Errors
    /// A database error.
    async fn append_audit(&self, entry: &AuditEntry) -> Result<i64, StoreError>;

    /// The audit entries that `query` selects ([`AuditQuery::matches`]: every filter set
    /// must hold), newest (highest id) first, at most `query.limit` (capped at
    /// [`MAX_AUDIT_PAGE`]; 0 gives none). The next page: the same query with `before` the
    /// last entry's id.
    ///
    /// # Errors
    /// A database error.
    async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError>;

    /// Removes the audit entries written before `before` (UTC); how many. The ids of
    /// those kept do not change.
    ///
    /// # Errors
    /// A database error.
    async fn prune_audit(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// Refuses a user [`AccountStore::put_user`] does not keep (see its errors).
pub(crate) fn check_user(user: &User) -> Result<(), StoreError> {
    check_name("user", &user.name).map_err(|e| StoreError::Invalid(e.to_string()))?;
    if user.display_name.len() > MAX_DISPLAY_NAME_LEN {
        return Err(StoreError::Invalid(format!(
            "a display name has at most {MAX_DISPLAY_NAME_LEN} bytes"
        )));
    }
    Ok(())
}

/// Refuses a group [`AccountStore::put_group`] does not keep, members aside (see its
/// errors).
pub(crate) fn check_group(group: &Group) -> Result<(), StoreError> {
    group
        .check()
        .map_err(|e| StoreError::Invalid(e.to_string()))
}

/// The error of a group naming `member`, who is not a user.
pub(crate) fn no_such_member(group: &str, member: &str) -> StoreError {
    StoreError::Invalid(format!(
        "group {group}: no user is named '{member}' (make the user first)"
    ))
}

/// The error of a credential [`AccountStore::put_credential`] refuses: its user not kept
/// (`user_missing`) or its digest kept already.
pub(crate) fn credential_refused(credential: &Credential, user_missing: bool) -> StoreError {
    if user_missing {
        StoreError::Invalid(format!(
            "no user is named '{}' to hold a credential",
            credential.user
        ))
    } else {
        StoreError::Invalid("a credential of this digest is kept already".into())
    }
}

/// The members of `group`, by name, each once.
pub(crate) fn sorted_members(group: &Group) -> Vec<String> {
    let mut members = group.members.clone();
    members.sort_unstable();
    members.dedup();
    members
}

/// The kind stored as `s` ([`CredentialKind::as_str`]).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn kind_of(s: &str) -> Result<CredentialKind, StoreError> {
    CredentialKind::parse(s).ok_or_else(|| {
        StoreError::Corrupt(format!("credential kind '{s}' is not session or token"))
    })
}

/// The role stored as `s` of group `group`.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn role_of(
    group: &str,
    s: &str,
) -> Result<factorydash_core::accounts::Role, StoreError> {
    s.parse()
        .map_err(|e| StoreError::Corrupt(format!("group {group}: {e}")))
}

/// The scope rule stored as `s` of group `group`.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn rule_of(
    group: &str,
    s: &str,
) -> Result<factorydash_core::accounts::ScopeRule, StoreError> {
    s.parse()
        .map_err(|e| StoreError::Corrupt(format!("group {group}: {e}")))
}

/// At most [`MAX_AUDIT_PAGE`] of `query.limit`.
pub(crate) fn audit_limit(query: &AuditQuery) -> usize {
    query.limit.min(MAX_AUDIT_PAGE)
}
