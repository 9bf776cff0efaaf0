//! The PostgreSQL store's reasons for stops and settings
//! (`0010_reasons_and_settings.sql`), each call on a pooled connection.

use chrono::{DateTime, Utc};
use factorydash_core::reasons::StopReason;
use tokio_postgres::{Client, GenericClient};

use crate::StoreError;

/// Adds or replaces `reason` (checked by the caller).
pub(super) async fn put(c: &Client, reason: &StopReason) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO stop_reasons (agent, device, began, item, reason, comment, given_at,
             given_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (agent, device, began, item) DO UPDATE SET reason = excluded.reason,
             comment = excluded.comment, given_at = excluded.given_at,
             given_by = excluded.given_by",
        &[
            &reason.agent,
            &reason.device,
            &reason.began,
            &reason.item,
            &reason.reason,
            &reason.comment,
            &reason.given_at,
            &reason.given_by,
        ],
    )
    .await?;
    Ok(())
}

/// The reasons of `device` at `agent` whose stops began in `[from, to)`, by start then
/// item, at most `limit`.
pub(super) async fn list(
    c: &Client,
    agent: &str,
    device: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<StopReason>, StoreError> {
    let rows = c
        .query(
            "SELECT agent, device, began, item, reason, comment, given_at, given_by
             FROM stop_reasons
             WHERE agent = $1 AND device = $2 AND began >= $3 AND began < $4
             ORDER BY began, item LIMIT $5",
            &[&agent, &device, &from, &to, &(limit as i64)],
        )
        .await?;
    rows.iter()
        .map(|r| {
            crate::reason_read_back(StopReason {
                agent: r.try_get(0)?,
                device: r.try_get(1)?,
                began: r.try_get(2)?,
                item: r.try_get(3)?,
                reason: r.try_get(4)?,
                comment: r.try_get(5)?,
                given_at: r.try_get(6)?,
                given_by: r.try_get(7)?,
            })
        })
        .collect()
}

/// Drops the reasons of stops begun before `cutoff`.
pub(super) async fn prune(
    c: &impl GenericClient,
    cutoff: DateTime<Utc>,
) -> Result<u64, StoreError> {
    Ok(
        c.execute("DELETE FROM stop_reasons WHERE began < $1", &[&cutoff])
            .await?,
    )
}

/// The setting under `key`, if any.
pub(super) async fn setting(c: &Client, key: &str) -> Result<Option<crate::Setting>, StoreError> {
    let row = c
        .query_opt(
            "SELECT value, updated_at, updated_by FROM settings WHERE key = $1",
            &[&key],
        )
        .await?;
    row.map(|r| {
        Ok(crate::Setting {
            value: r.try_get(0)?,
            updated_at: r.try_get(1)?,
            updated_by: r.try_get(2)?,
        })
    })
    .transpose()
}

/// Keeps `setting` under `key`, or removes it.
pub(super) async fn put_setting(
    c: &Client,
    key: &str,
    setting: Option<&crate::Setting>,
) -> Result<(), StoreError> {
    match setting {
        Some(s) => {
            c.execute(
                "INSERT INTO settings (key, value, updated_at, updated_by) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value,
                     updated_at = excluded.updated_at, updated_by = excluded.updated_by",
                &[&key, &s.value, &s.updated_at, &s.updated_by],
            )
            .await?;
        }
        None => {
            c.execute("DELETE FROM settings WHERE key = $1", &[&key])
                .await?;
        }
    }
    Ok(())
}
