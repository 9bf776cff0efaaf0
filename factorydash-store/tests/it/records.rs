//! Device records where each store needs its own setup: the cap of
//! [`MAX_RECORDS`](factorydash_core::records::MAX_RECORDS) (a store filled by its own
//! means, then the same checks on every store) and stored values that do not read back.

use factorydash_core::records::MAX_RECORDS;
use factorydash_store::sqlite::SqliteStore;
use factorydash_store::{MemoryStore, Store, StoreError};

use crate::conformance::{
    a_new_device_record_beyond_the_cap_is_refused, fill_device, full_record, FILL_AGENT,
};

#[tokio::test]
async fn memory_refuses_a_new_device_record_beyond_the_cap() {
    let store = MemoryStore::new();
    for i in 0..MAX_RECORDS {
        let mut r = crate::conformance::empty_record(FILL_AGENT, &fill_device(i));
        r.updated_by = "fill".into();
        store.put_device_record(&r).await.unwrap();
    }
    a_new_device_record_beyond_the_cap_is_refused(&store).await;
}

/// Fills `device_records` of the SQLite file at `path` with [`MAX_RECORDS`] records of
/// [`FILL_AGENT`], as [`fill_device`] names them, in one statement.
fn fill_sqlite(path: &std::path::Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    let n = conn
        .execute(
            "INSERT INTO device_records (agent, device, updated_at, updated_by)
             WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?2)
             SELECT ?1, printf('M%06d', i), 0, 'fill' FROM n",
            rusqlite::params![FILL_AGENT, MAX_RECORDS as i64],
        )
        .unwrap();
    assert_eq!(n, MAX_RECORDS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_refuses_a_new_device_record_beyond_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.db");
    let store = SqliteStore::open(&path).await.unwrap();
    fill_sqlite(&path);
    assert_eq!(fill_device(7), "M000007");
    a_new_device_record_beyond_the_cap_is_refused(&store).await;
}

#[tokio::test]
async fn postgres_refuses_a_new_device_record_beyond_the_cap() {
    let Some(db) = crate::pg::TestDb::create("records_cap").await else {
        return;
    };
    let session = db.session().await;
    let n = session
        .execute(
            "INSERT INTO device_records (agent, device, updated_at, updated_by)
             SELECT $1, 'M' || lpad(i::text, 6, '0'), now(), 'fill'
             FROM generate_series(0, $2::bigint - 1) AS i",
            &[&FILL_AGENT, &(MAX_RECORDS as i64)],
        )
        .await
        .unwrap();
    assert_eq!(n, MAX_RECORDS as u64);
    a_new_device_record_beyond_the_cap_is_refused(&db.store).await;
    db.drop().await;
}

/// Rows of `device_records` that this build would never write: each makes the listing
/// `Corrupt` (never a panic, never a record that fails its checks), and once it is gone
/// the listing reads again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_device_records_that_do_not_read_back_are_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let good = full_record(FILL_AGENT, "Good");
    store.put_device_record(&good).await.unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    for (what, sql) in [
        (
            "a time out of range",
            "INSERT INTO device_records (agent, device, updated_at, updated_by)
             VALUES ('a', 'b', 9223372036854775807, 'x')",
        ),
        (
            "a time that is text",
            "INSERT INTO device_records (agent, device, updated_at, updated_by)
             VALUES ('a', 'b', 'yesterday', 'x')",
        ),
        (
            "an ideal cycle time that is text",
            "INSERT INTO device_records (agent, device, ideal_cycle_time, updated_at,
                 updated_by) VALUES ('a', 'b', 'fast', 0, 'x')",
        ),
        (
            "a negative ideal cycle time",
            "INSERT INTO device_records (agent, device, ideal_cycle_time, updated_at,
                 updated_by) VALUES ('a', 'b', -1.5, 0, 'x')",
        ),
        (
            "a display name that is a blob",
            "INSERT INTO device_records (agent, device, display_name, updated_at,
                 updated_by) VALUES ('a', 'b', X'4D617A616B', 0, 'x')",
        ),
        (
            "an empty device name",
            "INSERT INTO device_records (agent, device, updated_at, updated_by)
             VALUES ('a', '', 0, 'x')",
        ),
    ] {
        conn.execute_batch(sql).unwrap();
        let err = store.device_records().await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{what}: {err:?}");
        conn.execute_batch("DELETE FROM device_records WHERE agent = 'a'")
            .unwrap();
        assert_eq!(store.device_records().await.unwrap(), vec![good.clone()]);
    }
}

#[tokio::test]
async fn postgres_device_records_that_do_not_read_back_are_corrupt() {
    let Some(db) = crate::pg::TestDb::create("records_corrupt").await else {
        return;
    };
    let good = full_record(FILL_AGENT, "Good");
    db.store.put_device_record(&good).await.unwrap();
    let session = db.session().await;
    for (what, sql) in [
        (
            "an ideal cycle time that is not a number",
            "INSERT INTO device_records (agent, device, ideal_cycle_time, updated_at,
                 updated_by) VALUES ('a', 'b', 'NaN', now(), 'x')",
        ),
        (
            "a negative ideal cycle time",
            "INSERT INTO device_records (agent, device, ideal_cycle_time, updated_at,
                 updated_by) VALUES ('a', 'b', -1.5, now(), 'x')",
        ),
        (
            "a blank display name",
            "INSERT INTO device_records (agent, device, display_name, updated_at,
                 updated_by) VALUES ('a', 'b', ' ', now(), 'x')",
        ),
    ] {
        session.batch_execute(sql).await.unwrap();
        let err = db.store.device_records().await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{what}: {err:?}");
        session
            .batch_execute("DELETE FROM device_records WHERE agent = 'a'")
            .await
            .unwrap();
        assert_eq!(db.store.device_records().await.unwrap(), vec![good.clone()]);
    }
    db.drop().await;
}

/// The key's columns sort in byte order whatever the database's default collation (a
/// server made with `C.UTF-8` orders as "C" anyway, so the order test alone would not
/// tell): they are `COLLATE "C"`, as the accounts' names are.
#[tokio::test]
async fn postgres_device_record_keys_are_in_the_c_collation() {
    let Some(db) = crate::pg::TestDb::create("records_collation").await else {
        return;
    };
    let session = db.session().await;
    let rows = session
        .query(
            "SELECT column_name::text, collation_name::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = 'device_records'
               AND column_name IN ('agent', 'device')
             ORDER BY column_name",
            &[],
        )
        .await
        .unwrap();
    let collations: Vec<(String, Option<String>)> =
        rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        collations,
        [
            ("agent".to_owned(), Some("C".to_owned())),
            ("device".to_owned(), Some("C".to_owned()))
        ]
    );
    db.drop().await;
}
