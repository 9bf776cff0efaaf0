//! The PostgreSQL store's accounts (`0007_accounts.sql`), each call on a pooled
//! connection; a group's replacement is one transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use factorydash_core::accounts::{AuditEntry, AuditQuery, Credential, CredentialKind, Group, User};
use tokio_postgres::Row;

use super::PgStore;
use crate::accounts::{
    audit_limit, check_group, check_user, credential_refused, kind_of, no_such_member, role_of,
    rule_of, sorted_members,
};
use crate::{AccountStore, StoreError};

const USER: &str = "SELECT name, display_name, password_hash, disabled, created_at FROM users";

fn user_from(r: &Row) -> Result<User, StoreError> {
    Ok(User {
        name: r.try_get(0)?,
        display_name: r.try_get(1)?,
        password_hash: r.try_get(2)?,
        disabled: r.try_get(3)?,
        created_at: r.try_get(4)?,
    })
}

const CREDENTIAL: &str = "SELECT digest, kind, user_name, name, created_at, expires_at, \
                          last_used_at FROM credentials";

fn credential_from(r: &Row) -> Result<Credential, StoreError> {
    Ok(Credential {
        digest: r.try_get(0)?,
        kind: kind_of(r.try_get(1)?)?,
        user: r.try_get(2)?,
        name: r.try_get(3)?,
        created_at: r.try_get(4)?,
        expires_at: r.try_get(5)?,
        last_used_at: r.try_get(6)?,
    })
}

fn audit_from(r: &Row) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        id: r.try_get(0)?,
        at: r.try_get(1)?,
        actor: r.try_get(2)?,
        address: r.try_get(3)?,
        action: r.try_get(4)?,
        target: r.try_get(5)?,
        detail: r.try_get(6)?,
    })
}

fn group_from(r: &Row) -> Result<Group, StoreError> {
    let name: String = r.try_get(0)?;
    let role = role_of(&name, r.try_get(1)?)?;
    let rules: Vec<&str> = r.try_get(2)?;
    let scope = rules
        .into_iter()
        .map(|rule| rule_of(&name, rule))
        .collect::<Result<_, _>>()?;
    Ok(Group {
        role,
        scope,
        members: r.try_get(3)?,
        name,
    })
}

#[async_trait]
impl AccountStore for PgStore {
    async fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        let row = self
            .reader()
            .await?
            .query_opt(&format!("{USER} WHERE name = $1"), &[&name])
            .await?;
        row.as_ref().map(user_from).transpose()
    }

    async fn users(&self) -> Result<Vec<User>, StoreError> {
        let rows = self
            .reader()
            .await?
            .query(&format!("{USER} ORDER BY name"), &[])
            .await?;
        rows.iter().map(user_from).collect()
    }

    async fn put_user(&self, user: &User) -> Result<(), StoreError> {
        check_user(user)?;
        // An upsert, not a delete and insert: a delete would cascade to the user's
        // credentials and memberships.
        self.reader()
            .await?
            .execute(
                "INSERT INTO users (name, display_name, password_hash, disabled, created_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (name) DO UPDATE SET display_name = EXCLUDED.display_name,
                     password_hash = EXCLUDED.password_hash, disabled = EXCLUDED.disabled,
                     created_at = EXCLUDED.created_at",
                &[
                    &user.name,
                    &user.display_name,
                    &user.password_hash,
                    &user.disabled,
                    &user.created_at,
                ],
            )
            .await?;
        Ok(())
    }

    async fn remove_user(&self, name: &str) -> Result<bool, StoreError> {
        // Credentials and memberships go with it (ON DELETE CASCADE).
        let n = self
            .reader()
            .await?
            .execute("DELETE FROM users WHERE name = $1", &[&name])
            .await?;
        Ok(n > 0)
    }

    async fn groups(&self) -> Result<Vec<Group>, StoreError> {
        let rows = self
            .reader()
            .await?
            .query(
                "SELECT g.name, g.role, g.scope,
                        ARRAY(SELECT m.user_name FROM group_members m
                              WHERE m.group_name = g.name ORDER BY m.user_name)
                 FROM groups g ORDER BY g.name",
                &[],
            )
            .await?;
        rows.iter().map(group_from).collect()
    }

    async fn put_group(&self, group: &Group) -> Result<(), StoreError> {
        check_group(group)?;
        let members = sorted_members(group);
        let scope: Vec<String> = group.scope.iter().map(ToString::to_string).collect();
        let mut client = self.reader().await?;
        let tx = client.transaction().await?;
        let missing = tx
            .query_opt(
                "SELECT m FROM unnest($1::text[]) AS m
                 WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.name = m) LIMIT 1",
                &[&members],
            )
            .await?;
        if let Some(row) = missing {
            let member: &str = row.try_get(0)?;
            return Err(no_such_member(&group.name, member));
        }
        tx.execute(
            "INSERT INTO groups (name, role, scope) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET role = EXCLUDED.role, scope = EXCLUDED.scope",
            &[&group.name, &group.role.as_str(), &scope],
        )
        .await?;
        tx.execute(
            "DELETE FROM group_members WHERE group_name = $1",
            &[&group.name],
        )
        .await?;
        tx.execute(
            "INSERT INTO group_members (group_name, user_name)
             SELECT $1, m FROM unnest($2::text[]) AS m",
            &[&group.name, &members],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn remove_group(&self, name: &str) -> Result<bool, StoreError> {
        // Its memberships go with it (ON DELETE CASCADE); its members stay.
        let n = self
            .reader()
            .await?
            .execute("DELETE FROM groups WHERE name = $1", &[&name])
            .await?;
        Ok(n > 0)
    }

    async fn put_credential(&self, credential: &Credential) -> Result<(), StoreError> {
        let c = credential;
        let client = self.reader().await?;
        // One statement: stored only for a user kept, and only where the digest is new.
        let n = client
            .execute(
                "INSERT INTO credentials
                     (digest, kind, user_name, name, created_at, expires_at, last_used_at)
                 SELECT $1, $2, $3, $4, $5, $6, $7
                 WHERE EXISTS (SELECT 1 FROM users WHERE name = $3)
                 ON CONFLICT (digest) DO NOTHING",
                &[
                    &c.digest,
                    &c.kind.as_str(),
                    &c.user,
                    &c.name,
                    &c.created_at,
                    &c.expires_at,
                    &c.last_used_at,
                ],
            )
            .await?;
        if n == 0 {
            let user_missing = client
                .query_opt("SELECT 1 FROM users WHERE name = $1", &[&c.user])
                .await?
                .is_none();
            return Err(credential_refused(c, user_missing));
        }
        Ok(())
    }

    async fn credential(&self, digest: &str) -> Result<Option<Credential>, StoreError> {
        let row = self
            .reader()
            .await?
            .query_opt(&format!("{CREDENTIAL} WHERE digest = $1"), &[&digest])
            .await?;
        row.as_ref().map(credential_from).transpose()
    }

    async fn credentials_of(
        &self,
        user: &str,
        kind: CredentialKind,
    ) -> Result<Vec<Credential>, StoreError> {
        let rows = self
            .reader()
            .await?
            .query(
                &format!(
                    "{CREDENTIAL} WHERE user_name = $1 AND kind = $2
                     ORDER BY created_at DESC, digest"
                ),
                &[&user, &kind.as_str()],
            )
            .await?;
        rows.iter().map(credential_from).collect()
    }

    async fn touch_credential(&self, digest: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.reader()
            .await?
            .execute(
                "UPDATE credentials SET last_used_at = $2 WHERE digest = $1",
                &[&digest, &at],
            )
            .await?;
        Ok(())
    }

    async fn remove_credential(&self, user: &str, digest: &str) -> Result<bool, StoreError> {
        let n = self
            .reader()
            .await?
            .execute(
                "DELETE FROM credentials WHERE digest = $1 AND user_name = $2",
                &[&digest, &user],
            )
            .await?;
        Ok(n > 0)
    }

    async fn remove_credentials_of(
        &self,
        user: &str,
        kind: CredentialKind,
    ) -> Result<u64, StoreError> {
        Ok(self
            .reader()
            .await?
            .execute(
                "DELETE FROM credentials WHERE user_name = $1 AND kind = $2",
                &[&user, &kind.as_str()],
            )
            .await?)
    }

    async fn remove_stale_credentials(
        &self,
        now: DateTime<Utc>,
        idle_before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        Ok(self
            .reader()
            .await?
            .execute(
                "DELETE FROM credentials
                 WHERE expires_at <= $1 OR (kind = $3 AND last_used_at <= $2)",
                &[&now, &idle_before, &CredentialKind::Session.as_str()],
            )
            .await?)
    }

    async fn prune_audit(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(self
            .reader()
            .await?
            .execute("DELETE FROM audit WHERE at < $1", &[&before])
            .await?)
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<i64, StoreError> {
        let e = entry;
        let row = self
            .reader()
            .await?
            .query_one(
                "INSERT INTO audit (at, actor, address, action, target, detail)
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                &[&e.at, &e.actor, &e.address, &e.action, &e.target, &e.detail],
            )
            .await?;
        Ok(row.try_get(0)?)
    }

    async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let limit = audit_limit(query) as i64;
        let rows = self
            .reader()
            .await?
            .query(
                "SELECT id, at, actor, address, action, target, detail FROM audit
                 WHERE ($1::bigint IS NULL OR id < $1) AND ($2::text IS NULL OR actor = $2)
                   AND ($3::text IS NULL OR action = $3)
                   AND ($4::timestamptz IS NULL OR at >= $4)
                 ORDER BY id DESC LIMIT $5",
                &[
                    &query.before,
                    &query.actor,
                    &query.action,
                    &query.since,
                    &limit,
                ],
            )
            .await?;
        rows.iter().map(audit_from).collect()
    }
}
