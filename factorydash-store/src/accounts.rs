//! [`AccountStore`]: where users, groups, credentials (sessions and personal API tokens,
//! as digests) and the audit log are kept. Every [`crate::Store`] is one.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use factorydash_core::accounts::{AuditEntry, AuditQuery, Credential, CredentialKind, Group, User};

use crate::StoreError;

/// The most audit entries one [`AccountStore::audit`] call returns.
pub const MAX_AUDIT_PAGE: usize = 1_000;

/// Users, groups, credentials and the audit log (see [`factorydash_core::accounts`]).
///
/// # Behavior (every implementation; the conformance tests check it)
/// - Names are compared exactly. Putting a user or group of a name already kept replaces
///   it (a group's members with it).
/// - Removing a user removes their credentials and takes them out of every group.
///   Removing a group leaves its members.
/// - Credentials are keyed by their digest; nothing here ever sees a secret.
/// - Audit entries are numbered by the store in the order appended (ids increase) and
///   listed newest first.
#[async_trait]
#[allow(unused_variables)] // TEMPORARY: until every store implements it
pub trait AccountStore: Send + Sync {
    /// The user of this name, if any.
    ///
    /// # Errors
    /// A database error.
    async fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        Err(StoreError::Invalid(
            "accounts are not kept by this store yet".into(),
        ))
    }

    /// Every user, by name.
    ///
    /// # Errors
    /// A database error.
    async fn users(&self) -> Result<Vec<User>, StoreError> {
        Err(StoreError::Invalid(
            "accounts are not kept by this store yet".into(),
        ))
    }

    /// Adds `user`, or replaces the user of its name.
    ///
    /// # Errors
    /// A database error.
    async fn put_user(&self, user: &User) -> Result<(), StoreError> {
        Err(StoreError::Invalid(
            "accounts are not kept by this store yet".into(),
        ))
    }

    /// Removes the user of this name, their credentials and memberships; `false` when
    /// there was none.
    ///
    /// # Errors
    /// A database error.
    async fn remove_user(&self, name: &str) -> Result<bool, StoreError> {
        Err(StoreError::Invalid(
            "accounts are not kept by this store yet".into(),
        ))
    }

    /// Every group, by name, each with its members by name.
    ///
    /// # Errors
    /// A database error.
    async fn groups(&self) -> Result<Vec<Group>, StoreError> {
        Err(StoreError::Invalid(
            "accounts are not kept by this store yet".into(),
        ))
    }

    /// Adds `group`, or replaces the group of its name (role, scope and members).
    ///
    /// # Errors
    /// A database error.
    async fn put_group(&self, group: &Group) -> Result<(), StoreError> {
        Err(StoreError::Invalid(
            "accounts are not kept by this store yet".into(),
        ))
    }

    /// Removes the group of this name; `false` when there was none.
    ///
    /// # Errors
    /// A database error.
    async fn remove_group(&self, name: &str) -> Result<bool, StoreError> {
        Err(StoreError::Invalid(
            "accounts are not kept by this store yet".into(),
        ))
    }

    /// Adds a credential (its digest is new: 32 random bytes' SHA-256).
    ///
    /// # Errors
    /// A database error.
    async fn put_credential(&self, credential: &Credential) -> Result<(), StoreError> {
        Err(StoreError::Invalid(
            "accounts are not kept by this store yet".into(),
        ))
    }

    /// The credential of this digest, if any (expired ones too: the caller decides).
    ///
    /// # Errors
    /// A database error.
    async fn credential(&self, digest: &str) -> Result<Option<Credential>, StoreError> {
        Err(StoreError::Invalid(
            "accounts are not kept by this store yet".into(),
        ))
    }

    /// `user`'s credentials of `kind`, newest first.
    ///
    /// # Errors
    /// A database error.
    async fn credentials_of(
        &self,
        user: &str,
        kind: CredentialKind,
    ) -> Result<Vec<Credential>, StoreError> {
        Err(StoreError::Invalid(
            "accounts are not kept by this store yet".into(),
        ))
    }

    /// Sets when the credential of this digest was last used.
    ///
    /// # Errors
    /// A database error.
    async fn touch_credential(&self, digest: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        Err(StoreError::Invalid(
            "accounts are not kept by this store yet".into(),
        ))
    }

    /// Removes the credential of this digest if it is `user`'s; `false` when there was
    /// none.
    ///
    /// # Errors
    /// A database error.
    async fn remove_credential(&self, user: &str, digest: &str) -> Result<bool, StoreError> {
        Err(StoreError::Invalid(
            "accounts are not kept by this store yet".into(),
        ))
    }

    /// Removes every credential of `user` of `kind` (sign out everywhere); how many.
    ///
    /// # Errors
    /// A database error.
    async fn remove_credentials_of(
        &self,
        user: &str,
        kind: CredentialKind,
    ) -> Result<u64, StoreError> {
        Err(StoreError::Invalid(
            "accounts are not kept by this store yet".into(),
        ))
    }

    /// Removes every credential that expired at or before `now`, and every session last
    /// used at or before `idle_before`; how many.
    ///
    /// # Errors
    /// A database error.
    async fn remove_stale_credentials(
        &self,
        now: DateTime<Utc>,
        idle_before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        Err(StoreError::Invalid(
            "accounts are not kept by this store yet".into(),
        ))
    }

    /// Appends `entry` (its `id` is ignored) and returns the id given.
    ///
    /// # Errors
    /// A database error.
    async fn append_audit(&self, entry: &AuditEntry) -> Result<i64, StoreError> {
        Err(StoreError::Invalid(
            "accounts are not kept by this store yet".into(),
        ))
    }

    /// The audit entries that `query` selects, newest (highest id) first, at most
    /// `query.limit` (capped at [`MAX_AUDIT_PAGE`]).
    ///
    /// # Errors
    /// A database error.
    async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        Err(StoreError::Invalid(
            "accounts are not kept by this store yet".into(),
        ))
    }
}

// TEMPORARY, until each store keeps accounts: every method refuses.
#[async_trait]
impl AccountStore for crate::MemoryStore {}
#[cfg(feature = "sqlite")]
#[async_trait]
impl AccountStore for crate::sqlite::SqliteStore {}
#[cfg(feature = "postgres")]
#[async_trait]
impl AccountStore for crate::postgres::PgStore {}
