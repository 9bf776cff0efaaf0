//! The memory store's accounts: maps in the store's lock, lost with the process.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use factorydash_core::accounts::{AuditEntry, AuditQuery, Credential, CredentialKind, Group, User};

use super::MemoryStore;
use crate::accounts::{
    audit_limit, check_group, check_user, credential_refused, no_such_member, sorted_members,
};
use crate::{AccountStore, StoreError};

/// Users, groups, credentials and the audit log of a [`MemoryStore`].
#[derive(Debug, Default)]
pub(super) struct Accounts {
    /// By name.
    users: BTreeMap<String, User>,
    /// By name, each with its members by name, each once.
    groups: BTreeMap<String, Group>,
    /// By digest.
    credentials: HashMap<String, Credential>,
    /// In the order appended: ids increase.
    audit: Vec<AuditEntry>,
    /// The last id given (pruning never gives one again).
    last_audit_id: i64,
}

#[async_trait]
impl AccountStore for MemoryStore {
    async fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        Ok(self.read().accounts.users.get(name).cloned())
    }

    async fn users(&self) -> Result<Vec<User>, StoreError> {
        Ok(self.read().accounts.users.values().cloned().collect())
    }

    async fn put_user(&self, user: &User) -> Result<(), StoreError> {
        check_user(user)?;
        self.write()
            .accounts
            .users
            .insert(user.name.clone(), user.clone());
        Ok(())
    }

    async fn remove_user(&self, name: &str) -> Result<bool, StoreError> {
        let mut inner = self.write();
        let accounts = &mut inner.accounts;
        if accounts.users.remove(name).is_none() {
            return Ok(false);
        }
        accounts.credentials.retain(|_, c| c.user != name);
        for g in accounts.groups.values_mut() {
            g.members.retain(|m| m != name);
        }
        Ok(true)
    }

    async fn groups(&self) -> Result<Vec<Group>, StoreError> {
        Ok(self.read().accounts.groups.values().cloned().collect())
    }

    async fn put_group(&self, group: &Group) -> Result<(), StoreError> {
        check_group(group)?;
        let members = sorted_members(group);
        let mut inner = self.write();
        let accounts = &mut inner.accounts;
        if let Some(missing) = members.iter().find(|m| !accounts.users.contains_key(*m)) {
            return Err(no_such_member(&group.name, missing));
        }
        accounts.groups.insert(
            group.name.clone(),
            Group {
                members,
                ..group.clone()
            },
        );
        Ok(())
    }

    async fn remove_group(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.write().accounts.groups.remove(name).is_some())
    }

    async fn put_credential(&self, credential: &Credential) -> Result<(), StoreError> {
        let mut inner = self.write();
        let accounts = &mut inner.accounts;
        if !accounts.users.contains_key(&credential.user) {
            return Err(credential_refused(credential, true));
        }
        if accounts.credentials.contains_key(&credential.digest) {
            return Err(credential_refused(credential, false));
        }
        accounts
            .credentials
            .insert(credential.digest.clone(), credential.clone());
        Ok(())
    }

    async fn credential(&self, digest: &str) -> Result<Option<Credential>, StoreError> {
        Ok(self.read().accounts.credentials.get(digest).cloned())
    }

    async fn credentials_of(
        &self,
        user: &str,
        kind: CredentialKind,
    ) -> Result<Vec<Credential>, StoreError> {
        let inner = self.read();
        let mut found: Vec<Credential> = inner
            .accounts
            .credentials
            .values()
            .filter(|c| c.user == user && c.kind == kind)
            .cloned()
            .collect();
        found.sort_unstable_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| a.digest.cmp(&b.digest))
        });
        Ok(found)
    }

    async fn touch_credential(&self, digest: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        if let Some(c) = self.write().accounts.credentials.get_mut(digest) {
            c.last_used_at = at;
        }
        Ok(())
    }

    async fn remove_credential(&self, user: &str, digest: &str) -> Result<bool, StoreError> {
        let mut inner = self.write();
        let credentials = &mut inner.accounts.credentials;
        if credentials.get(digest).is_some_and(|c| c.user == user) {
            credentials.remove(digest);
            Ok(true)
        } else {
            Ok(false)
        }
    }

    async fn remove_credentials_of(
        &self,
        user: &str,
        kind: CredentialKind,
    ) -> Result<u64, StoreError> {
        let mut inner = self.write();
        let credentials = &mut inner.accounts.credentials;
        let before = credentials.len();
        credentials.retain(|_, c| !(c.user == user && c.kind == kind));
        Ok((before - credentials.len()) as u64)
    }

    async fn remove_stale_credentials(
        &self,
        now: DateTime<Utc>,
        idle_before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut inner = self.write();
        let credentials = &mut inner.accounts.credentials;
        let before = credentials.len();
        credentials.retain(|_, c| {
            let expired = c.expires_at <= now;
            let idle = c.kind == CredentialKind::Session && c.last_used_at <= idle_before;
            !(expired || idle)
        });
        Ok((before - credentials.len()) as u64)
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<i64, StoreError> {
        let mut inner = self.write();
        inner.accounts.last_audit_id += 1;
        let id = inner.accounts.last_audit_id;
        inner.accounts.audit.push(AuditEntry {
            id,
            ..entry.clone()
        });
        Ok(id)
    }

    async fn prune_audit(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut inner = self.write();
        let audit = &mut inner.accounts.audit;
        let n = audit.len();
        audit.retain(|e| e.at >= before);
        Ok((n - audit.len()) as u64)
    }

    async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let inner = self.read();
        let audit = &inner.accounts.audit;
        // Ids increase with the position: start below `before`.
        let end = match query.before {
            Some(before) => audit.partition_point(|e| e.id < before),
            None => audit.len(),
        };
        Ok(audit[..end]
            .iter()
            .rev()
            .filter(|e| query.matches(e))
            .take(audit_limit(query))
            .cloned()
            .collect())
    }
}
