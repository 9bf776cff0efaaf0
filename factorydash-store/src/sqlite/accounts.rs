//! The SQLite store's accounts (`0004_accounts.sql`): reads on a pooled reader
//! connection, writes on the writer connection, each write one transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use factorydash_core::accounts::{AuditEntry, AuditQuery, Credential, CredentialKind, Group, User};
use rusqlite::{params, Connection, Row};

use super::{json_array, SqliteStore};
use crate::accounts::{
    audit_limit, check_group, check_user, credential_refused, kind_of, no_such_member, role_of,
    rule_of, sorted_members,
};
use crate::{AccountStore, StoreError};

/// A time from its column (microseconds since the Unix epoch, UTC).
fn time(what: &str, micros: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| StoreError::Corrupt(format!("{what}: time {micros} µs is out of range")))
}

const USER: &str = "SELECT name, display_name, password_hash, disabled, created_at FROM users";

fn user_from(r: &Row<'_>) -> Result<User, StoreError> {
    let name: String = r.get(0)?;
    Ok(User {
        created_at: time(&format!("user {name}"), r.get(4)?)?,
        display_name: r.get(1)?,
        password_hash: r.get(2)?,
        disabled: r.get(3)?,
        name,
    })
}

const CREDENTIAL: &str = "SELECT digest, kind, user_name, name, created_at, expires_at, \
                          last_used_at FROM credentials";

fn credential_from(r: &Row<'_>) -> Result<Credential, StoreError> {
    let user: String = r.get(2)?;
    let what = format!("a credential of {user}");
    Ok(Credential {
        digest: r.get(0)?,
        kind: kind_of(&r.get::<_, String>(1)?)?,
        name: r.get(3)?,
        created_at: time(&what, r.get(4)?)?,
        expires_at: time(&what, r.get(5)?)?,
        last_used_at: time(&what, r.get(6)?)?,
        user,
    })
}

fn audit_from(r: &Row<'_>) -> Result<AuditEntry, StoreError> {
    let id: i64 = r.get(0)?;
    Ok(AuditEntry {
        id,
        at: time(&format!("audit entry {id}"), r.get(1)?)?,
        actor: r.get(2)?,
        address: r.get(3)?,
        action: r.get(4)?,
        target: r.get(5)?,
        detail: r.get(6)?,
    })
}

/// Every row `sql` selects with `params`, each read by `from`.
fn all<T>(
    c: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    from: impl Fn(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = c.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(from(r)?);
    }
    Ok(out)
}

/// Every group, by name, with its scope and its members by name.
fn groups(c: &Connection) -> Result<Vec<Group>, StoreError> {
    let tx = c.unchecked_transaction()?;
    let mut groups = all(
        &tx,
        "SELECT name, role FROM groups ORDER BY name",
        [],
        |r| {
            let name: String = r.get(0)?;
            Ok(Group {
                role: role_of(&name, &r.get::<_, String>(1)?)?,
                name,
                scope: Vec::new(),
                members: Vec::new(),
            })
        },
    )?;
    // Both in the groups' order: each group's rows follow one another.
    let rules = all(
        &tx,
        "SELECT g.name, j.value FROM groups g, json_each(g.scope) j ORDER BY g.name, j.key",
        [],
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
    )?;
    let members = all(
        &tx,
        "SELECT group_name, user_name FROM group_members ORDER BY group_name, user_name",
        [],
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
    )?;
    let mut at = 0;
    for (group, rule) in rules {
        while groups.get(at).is_some_and(|g| g.name != group) {
            at += 1;
        }
        let Some(g) = groups.get_mut(at) else {
            break;
        };
        g.scope.push(rule_of(&g.name, &rule)?);
    }
    let mut at = 0;
    for (group, member) in members {
        while groups.get(at).is_some_and(|g| g.name != group) {
            at += 1;
        }
        let Some(g) = groups.get_mut(at) else {
            break;
        };
        g.members.push(member);
    }
    Ok(groups)
}

#[async_trait]
impl AccountStore for SqliteStore {
    async fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        let name = name.to_owned();
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&format!("{USER} WHERE name = ?1"))?;
            let mut rows = stmt.query([name])?;
            rows.next()?.map(user_from).transpose()
        })
        .await
    }

    async fn users(&self) -> Result<Vec<User>, StoreError> {
        self.read(|c| all(c, &format!("{USER} ORDER BY name"), [], user_from))
            .await
    }

    async fn put_user(&self, user: &User) -> Result<(), StoreError> {
        check_user(user)?;
        let user = user.clone();
        self.write(move |w| {
            // An upsert, not a replacement of the row: a delete would cascade to the
            // user's credentials and memberships.
            w.conn
                .prepare_cached(
                    "INSERT INTO users (name, display_name, password_hash, disabled, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (name) DO UPDATE SET display_name = excluded.display_name,
                         password_hash = excluded.password_hash,
                         disabled = excluded.disabled, created_at = excluded.created_at",
                )?
                .execute(params![
                    user.name,
                    user.display_name,
                    user.password_hash,
                    user.disabled,
                    user.created_at.timestamp_micros()
                ])?;
            Ok(())
        })
        .await
    }

    async fn remove_user(&self, name: &str) -> Result<bool, StoreError> {
        let name = name.to_owned();
        self.write(move |w| {
            let tx = w.conn.transaction()?;
            // The foreign keys cascade; said here too, so that it holds whatever the
            // connection's settings.
            tx.execute("DELETE FROM credentials WHERE user_name = ?1", [&name])?;
            tx.execute("DELETE FROM group_members WHERE user_name = ?1", [&name])?;
            let removed = tx.execute("DELETE FROM users WHERE name = ?1", [&name])?;
            tx.commit()?;
            Ok(removed > 0)
        })
        .await
    }

    async fn groups(&self) -> Result<Vec<Group>, StoreError> {
        self.read(groups).await
    }

    async fn put_group(&self, group: &Group) -> Result<(), StoreError> {
        check_group(group)?;
        let members = sorted_members(group);
        let scope = json_array(group.scope.iter().map(ToString::to_string));
        let (name, role) = (group.name.clone(), group.role.as_str());
        self.write(move |w| {
            let tx = w.conn.transaction()?;
            {
                let mut is_user = tx.prepare_cached("SELECT 1 FROM users WHERE name = ?1")?;
                for m in &members {
                    if !is_user.exists([m])? {
                        return Err(no_such_member(&name, m));
                    }
                }
            }
            tx.execute(
                "INSERT INTO groups (name, role, scope, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (name) DO UPDATE SET role = excluded.role, scope = excluded.scope",
                params![name, role, scope, Utc::now().timestamp_micros()],
            )?;
            tx.execute("DELETE FROM group_members WHERE group_name = ?1", [&name])?;
            {
                let mut add = tx.prepare_cached(
                    "INSERT INTO group_members (group_name, user_name) VALUES (?1, ?2)",
                )?;
                for m in &members {
                    add.execute([&name, m])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn remove_group(&self, name: &str) -> Result<bool, StoreError> {
        let name = name.to_owned();
        self.write(move |w| {
            let tx = w.conn.transaction()?;
            tx.execute("DELETE FROM group_members WHERE group_name = ?1", [&name])?;
            let removed = tx.execute("DELETE FROM groups WHERE name = ?1", [&name])?;
            tx.commit()?;
            Ok(removed > 0)
        })
        .await
    }

    async fn put_credential(&self, credential: &Credential) -> Result<(), StoreError> {
        let c = credential.clone();
        self.write(move |w| {
            let tx = w.conn.transaction()?;
            let user_missing = !tx
                .prepare_cached("SELECT 1 FROM users WHERE name = ?1")?
                .exists([&c.user])?;
            let taken = tx
                .prepare_cached("SELECT 1 FROM credentials WHERE digest = ?1")?
                .exists([&c.digest])?;
            if user_missing || taken {
                return Err(credential_refused(&c, user_missing));
            }
            tx.execute(
                "INSERT INTO credentials
                     (digest, kind, user_name, name, created_at, expires_at, last_used_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    c.digest,
                    c.kind.as_str(),
                    c.user,
                    c.name,
                    c.created_at.timestamp_micros(),
                    c.expires_at.timestamp_micros(),
                    c.last_used_at.timestamp_micros()
                ],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn credential(&self, digest: &str) -> Result<Option<Credential>, StoreError> {
        let digest = digest.to_owned();
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&format!("{CREDENTIAL} WHERE digest = ?1"))?;
            let mut rows = stmt.query([digest])?;
            rows.next()?.map(credential_from).transpose()
        })
        .await
    }

    async fn credentials_of(
        &self,
        user: &str,
        kind: CredentialKind,
    ) -> Result<Vec<Credential>, StoreError> {
        let user = user.to_owned();
        self.read(move |c| {
            all(
                c,
                &format!(
                    "{CREDENTIAL} WHERE user_name = ?1 AND kind = ?2
                     ORDER BY created_at DESC, digest"
                ),
                params![user, kind.as_str()],
                credential_from,
            )
        })
        .await
    }

    async fn touch_credential(&self, digest: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let digest = digest.to_owned();
        self.write(move |w| {
            w.conn
                .prepare_cached("UPDATE credentials SET last_used_at = ?2 WHERE digest = ?1")?
                .execute(params![digest, at.timestamp_micros()])?;
            Ok(())
        })
        .await
    }

    async fn remove_credential(&self, user: &str, digest: &str) -> Result<bool, StoreError> {
        let (user, digest) = (user.to_owned(), digest.to_owned());
        self.write(move |w| {
            let n = w
                .conn
                .prepare_cached("DELETE FROM credentials WHERE digest = ?1 AND user_name = ?2")?
                .execute([digest, user])?;
            Ok(n > 0)
        })
        .await
    }

    async fn remove_credentials_of(
        &self,
        user: &str,
        kind: CredentialKind,
    ) -> Result<u64, StoreError> {
        let user = user.to_owned();
        self.write(move |w| {
            let n = w
                .conn
                .prepare_cached("DELETE FROM credentials WHERE user_name = ?1 AND kind = ?2")?
                .execute([user.as_str(), kind.as_str()])?;
            Ok(n as u64)
        })
        .await
    }

    async fn remove_stale_credentials(
        &self,
        now: DateTime<Utc>,
        idle_before: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        self.write(move |w| {
            let n = w
                .conn
                .prepare_cached(
                    "DELETE FROM credentials WHERE expires_at <= ?1
                     OR (kind = ?3 AND last_used_at <= ?2)",
                )?
                .execute(params![
                    now.timestamp_micros(),
                    idle_before.timestamp_micros(),
                    CredentialKind::Session.as_str()
                ])?;
            Ok(n as u64)
        })
        .await
    }

    async fn prune_audit(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.write(move |w| {
            let n = w
                .conn
                .prepare_cached("DELETE FROM audit WHERE at < ?1")?
                .execute(params![before.timestamp_micros()])?;
            Ok(n as u64)
        })
        .await
    }

    async fn append_audit(&self, entry: &AuditEntry) -> Result<i64, StoreError> {
        let e = entry.clone();
        self.write(move |w| {
            let id = w
                .conn
                .prepare_cached(
                    "INSERT INTO audit (at, actor, address, action, target, detail)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
                )?
                .query_row(
                    params![
                        e.at.timestamp_micros(),
                        e.actor,
                        e.address,
                        e.action,
                        e.target,
                        e.detail
                    ],
                    |r| r.get(0),
                )?;
            Ok(id)
        })
        .await
    }

    async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let q = query.clone();
        let limit = audit_limit(query) as i64;
        self.read(move |c| {
            all(
                c,
                "SELECT id, at, actor, address, action, target, detail FROM audit
                 WHERE (?1 IS NULL OR id < ?1) AND (?2 IS NULL OR actor = ?2)
                   AND (?3 IS NULL OR action = ?3) AND (?4 IS NULL OR at >= ?4)
                 ORDER BY id DESC LIMIT ?5",
                params![
                    q.before,
                    q.actor,
                    q.action,
                    q.since.map(|t| t.timestamp_micros()),
                    limit
                ],
                audit_from,
            )
        })
        .await
    }
}
