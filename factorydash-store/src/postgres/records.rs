//! The PostgreSQL store's device records (`0008_device_records.sql`), each call on a
//! pooled connection; a put is one transaction.

use factorydash_core::records::{DeviceRecord, MAX_RECORDS};
use tokio_postgres::{Client, Row};

use crate::StoreError;

fn from_row(r: &Row) -> Result<DeviceRecord, StoreError> {
    crate::record_read_back(DeviceRecord {
        agent: r.try_get(0)?,
        device: r.try_get(1)?,
        display_name: r.try_get(2)?,
        cell: r.try_get(3)?,
        description: r.try_get(4)?,
        ideal_cycle_time: r.try_get(5)?,
        updated_at: r.try_get(6)?,
        updated_by: r.try_get(7)?,
    })
}

/// Every record, by agent then device (byte order: the key's "C" collation).
pub(super) async fn all(c: &Client) -> Result<Vec<DeviceRecord>, StoreError> {
    let rows = c
        .query(
            "SELECT agent, device, display_name, cell, description, ideal_cycle_time,
                    updated_at, updated_by
             FROM device_records ORDER BY agent, device",
            &[],
        )
        .await?;
    rows.iter().map(from_row).collect()
}

/// Adds or replaces `record` (checked by the caller), unless it is new and
/// [`MAX_RECORDS`] are kept already. Puts are serialised by a table lock that readers do
/// not wait for (`SHARE ROW EXCLUSIVE` conflicts with itself and with writes only), so
/// that two new records at once cannot both pass the count.
pub(super) async fn put(client: &mut Client, record: &DeviceRecord) -> Result<(), StoreError> {
    let tx = client.transaction().await?;
    tx.batch_execute("LOCK TABLE device_records IN SHARE ROW EXCLUSIVE MODE")
        .await?;
    let kept = tx
        .query_opt(
            "SELECT 1 FROM device_records WHERE agent = $1 AND device = $2",
            &[&record.agent, &record.device],
        )
        .await?
        .is_some();
    if !kept {
        let n: i64 = tx
            .query_one("SELECT count(*) FROM device_records", &[])
            .await?
            .try_get(0)?;
        if n >= MAX_RECORDS as i64 {
            return Err(crate::too_many_records());
        }
    }
    tx.execute(
        "INSERT INTO device_records (agent, device, display_name, cell, description,
             ideal_cycle_time, updated_at, updated_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (agent, device) DO UPDATE SET display_name = EXCLUDED.display_name,
             cell = EXCLUDED.cell, description = EXCLUDED.description,
             ideal_cycle_time = EXCLUDED.ideal_cycle_time,
             updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by",
        &[
            &record.agent,
            &record.device,
            &record.display_name,
            &record.cell,
            &record.description,
            &record.ideal_cycle_time,
            &record.updated_at,
            &record.updated_by,
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Removes the record of `device` at `agent`; `false` when there was none.
pub(super) async fn remove(c: &Client, agent: &str, device: &str) -> Result<bool, StoreError> {
    let n = c
        .execute(
            "DELETE FROM device_records WHERE agent = $1 AND device = $2",
            &[&agent, &device],
        )
        .await?;
    Ok(n > 0)
}
