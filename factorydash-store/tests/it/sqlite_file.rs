//! What only the SQLite store does: a file kept across opens, one process at a time, and
//! clear refusals.

use factorydash_core::{Gap, PageRequest};
use factorydash_store::sqlite::{lock_path, SqliteStore, SCHEMA_VERSION};
use factorydash_store::{ConfiguredAgent, LatestFilter, Store, StoreError};

use crate::conformance::{at_agent, batch, empty_record, full_record, page_one, AGENT};

/// Held (written) by the test that starts a process, and (read) by every test that
/// closes a file and opens it again: a process started forks this one, and the child
/// holds a copy of every descriptor of this process (other tests' locked files included)
/// until it runs the new program, which on a loaded machine may take a while. A test that
/// reopened a file then would find it still locked (as `flock` says it is).
/// factorydash itself starts no process.
static SPAWNING: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reopened_file_holds_everything() {
    let _no_fork = SPAWNING.read().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("factorydash.db");
    let obs = page_one();
    let gap = Gap {
        agent: AGENT.into(),
        instance_id: 7,
        from: 10,
        to: Some(20),
    };
    let agent = ConfiguredAgent {
        url: "http://agent.example:5000".into(),
        paused: true,
    };
    let records = [
        full_record(AGENT, "GFAgie01"),
        empty_record(AGENT, "Mazak01"),
    ];
    let (latest, resume) = {
        let store = SqliteStore::open(&path).await.unwrap();
        store.append(&batch(&obs)).await.unwrap();
        store.record_gap(&gap).await.unwrap();
        store.put_configured_agent(&agent).await.unwrap();
        for r in &records {
            store.put_device_record(r).await.unwrap();
        }
        let latest = store
            .latest(&LatestFilter::default(), &PageRequest::first(1000))
            .await
            .unwrap();
        (latest, store.resume_point(AGENT).await.unwrap())
    };
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.observation_count().await.unwrap(), obs.len() as u64);
    assert_eq!(
        store
            .latest(&LatestFilter::default(), &PageRequest::first(1000))
            .await
            .unwrap(),
        latest
    );
    assert_eq!(store.resume_point(AGENT).await.unwrap(), resume);
    assert!(resume.is_some());
    assert_eq!(store.gaps().await.unwrap(), vec![gap]);
    assert_eq!(store.configured_agents().await.unwrap(), vec![agent]);
    assert_eq!(store.device_records().await.unwrap(), records);
    // Everything stored is found again, and stored once.
    let again = store.append(&batch(&obs)).await.unwrap();
    assert_eq!((again.inserted, again.duplicates), (0, obs.len() as u64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_open_of_one_file_is_refused() {
    let _no_fork = SPAWNING.read().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("factorydash.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let err = SqliteStore::open(&path).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Locked { path: p } if *p == path),
        "{err:?}"
    );
    assert!(err.to_string().contains("another factorydash"), "{err}");
    assert!(!err.is_permanent());
    drop(store);
    // Released with the store; the file itself is locked, no lock file beside it.
    SqliteStore::open(&path).await.unwrap();
    assert!(!lock_path(&path).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_cannot_be_written_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the file should be: the database does not open as a file,
    // whoever runs the test (root ignores permission bits, so a read-only file would not
    // do).
    let path = dir.path().join("factorydash.db");
    std::fs::create_dir(&path).unwrap();
    let err = SqliteStore::open(&path).await.unwrap_err();
    assert!(matches!(err, StoreError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("factorydash.db"), "{err}");
    assert!(!err.is_permanent());
}

/// A file that is not an SQLite database (or a damaged one) is refused when opened, with
/// SQLite's own word for it, and left as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_file_is_refused_and_left_alone() {
    let _no_fork = SPAWNING.read().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("factorydash.db");
    let garbage: Vec<u8> = (0..64 * 1024u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(&path, &garbage).unwrap();
    let err = SqliteStore::open(&path).await.unwrap_err();
    let chain = format!(
        "{err}: {}",
        std::error::Error::source(&err)
            .map(|s| s.to_string())
            .unwrap_or_default()
    );
    assert!(chain.contains("not a database"), "{chain}");
    assert_eq!(std::fs::read(&path).unwrap(), garbage, "left as it was");
    // The lock is released: a repaired file opens.
    std::fs::remove_file(&path).unwrap();
    SqliteStore::open(&path).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_is_refused() {
    let _no_fork = SPAWNING.read().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("factorydash.db");
    drop(SqliteStore::open(&path).await.unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(conn);
    let err = SqliteStore::open(&path).await.unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaTooNew { found, known } if found == SCHEMA_VERSION + 1 && known == SCHEMA_VERSION),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_read_back_as_the_text_stored() {
    use factorydash_core::{TimeWindow, Value};
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("factorydash.db"))
        .await
        .unwrap();
    let texts = [
        "12.5",
        "0.000",
        "-0",
        "0",
        "-0.0",
        "1e3",
        "007",
        "-42",
        "9223372036854775807",
        "100000000000000000000",
        "0.1",
        "381.6404",
        "NaN",
        "inf",
        "",
        " x ",
        "1,5",
        "3.",
        "1.0",
        "-1.25e-7",
        "0.00000125",
    ];
    let template = page_one().remove(0);
    let mut obs: Vec<_> = texts
        .iter()
        .map(|t| Value::Text((*t).into()))
        .chain([Value::Unavailable])
        .enumerate()
        .map(|(i, value)| {
            let mut o = template.clone();
            o.sequence = 1 + i as u64;
            o.timestamp += chrono::Duration::milliseconds(i as i64);
            o.value = value;
            o
        })
        .collect();
    store.append(&batch(&obs)).await.unwrap();
    let window = TimeWindow::new(
        template.timestamp,
        template.timestamp + chrono::Duration::seconds(1),
    )
    .unwrap();
    let read = store
        .series(
            &at_agent(&template.device),
            &template.data_item_id,
            &window,
            100,
        )
        .await
        .unwrap();
    let values =
        |o: &[factorydash_core::Observation]| o.iter().map(|o| o.value.clone()).collect::<Vec<_>>();
    obs.sort_by_key(|o| o.sequence);
    assert_eq!(values(&read), values(&obs));
}

/// A data item whose shape changes (here its name) has two series in SQLite; it reads as
/// one, as in the memory store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_item_whose_shape_changes_reads_as_one() {
    use factorydash_core::{TimeWindow, Value};
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(dir.path().join("factorydash.db"))
        .await
        .unwrap();
    let memory = factorydash_store::MemoryStore::new();
    let template = page_one().remove(0);
    let obs: Vec<_> = (0..40u64)
        .map(|i| {
            let mut o = template.clone();
            o.sequence = 1 + i;
            // Out of sequence order in time now and then, and two shapes interleaved.
            o.timestamp += chrono::Duration::seconds((i * 7 % 40) as i64);
            o.name = Some(if i % 3 == 0 { "a" } else { "b" }.into());
            o.value = Value::Text(format!("{}", (i * 13) % 17));
            o
        })
        .collect();
    let window = TimeWindow::new(
        template.timestamp + chrono::Duration::seconds(3),
        template.timestamp + chrono::Duration::seconds(33),
    )
    .unwrap();
    let (d, i) = (&at_agent(&template.device), template.data_item_id.as_str());
    let at = template.timestamp + chrono::Duration::seconds(20);
    for store in [&sqlite as &dyn Store, &memory] {
        store.append(&batch(&obs)).await.unwrap();
    }
    let mut answers = Vec::new();
    for store in [&sqlite as &dyn Store, &memory] {
        answers.push((
            store.series(d, i, &window, 100).await.unwrap(),
            store.buckets(d, i, &window, 7).await.unwrap(),
            store.last_before(d, i, at).await.unwrap(),
            store
                .as_of(&LatestFilter::default(), at, &PageRequest::first(100))
                .await
                .unwrap(),
            store.state_summary(d, i, &window, None, 100).await.unwrap(),
        ));
    }
    assert_eq!(answers[0].0.len(), 30);
    assert_eq!(answers[0], answers[1]);
}

/// A busy, full, read-only or failing file passes (ingest retries with backoff); a
/// constraint or a value too big is the batch's own fault.
#[test]
fn which_sqlite_errors_are_permanent() {
    use rusqlite::ffi;
    let error =
        |code| StoreError::Sqlite(rusqlite::Error::SqliteFailure(ffi::Error::new(code), None));
    for code in [
        ffi::SQLITE_BUSY,
        ffi::SQLITE_LOCKED,
        ffi::SQLITE_FULL,
        ffi::SQLITE_READONLY,
        ffi::SQLITE_IOERR,
        ffi::SQLITE_CANTOPEN,
    ] {
        assert!(!error(code).is_permanent(), "{code}");
    }
    for code in [
        ffi::SQLITE_CONSTRAINT,
        ffi::SQLITE_TOOBIG,
        ffi::SQLITE_MISMATCH,
    ] {
        assert!(error(code).is_permanent(), "{code}");
    }
}

/// A file made at schema version 1 (data items keyed by device and `dataItemId`, no agent)
/// opens at version 2: each data item is given the agent of its observations, and a second
/// agent serving a device of the same name is kept apart from then on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_file_gives_its_data_items_their_agent() {
    let _no_fork = SPAWNING.read().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("factorydash.db");
    let obs = page_one();
    {
        let store = SqliteStore::open(&path).await.unwrap();
        store.append(&batch(&obs[..500])).await.unwrap();
    }
    {
        // Back to version 1's items table.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(&format!(
            "CREATE TABLE items_v1 (id INTEGER PRIMARY KEY, device TEXT NOT NULL,
               data_item_id TEXT NOT NULL, UNIQUE (device, data_item_id));
             INSERT INTO items_v1 SELECT id, device, data_item_id FROM items;
             DROP TABLE items;
             ALTER TABLE items_v1 RENAME TO items;
             DROP TABLE agent_credentials;
             {DROP_ACCOUNTS}
             {DROP_RECORDS}
             PRAGMA user_version = 1;"
        ))
        .unwrap();
    }
    let store = SqliteStore::open(&path).await.unwrap();
    async fn all(store: &SqliteStore) -> Vec<factorydash_store::AgentObservation> {
        store
            .latest(&LatestFilter::default(), &PageRequest::first(1000))
            .await
            .unwrap()
            .items
    }
    let before = all(&store).await;
    assert!(!before.is_empty());
    assert!(before.iter().all(|o| o.agent == AGENT));
    let mut other = batch(&obs[..500]);
    other.agent = "http://127.0.0.2:5000".into();
    store.append(&other).await.unwrap();
    let after = all(&store).await;
    assert_eq!(after.len(), 2 * before.len());
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i32 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
}

/// What takes a file back from version 4 to version 3: the accounts' tables gone.
const DROP_ACCOUNTS: &str = "DROP TABLE group_members; DROP TABLE credentials;
    DROP TABLE groups; DROP TABLE users; DROP TABLE audit;";

/// What takes a file back from version 5 to version 4: the device records' table gone.
/// Drops what schema versions 5 (device records), 6 (summaries), 7 (stop reasons and
/// settings) and 8 (the alarm outbox) add.
const DROP_RECORDS: &str = "DROP TABLE device_records; DROP TABLE summary_held;
    DROP TABLE summary_cells; DROP TABLE summary_devices; DROP TABLE stop_reasons;
    DROP TABLE settings; DROP TABLE outbox;";

/// A file made at schema version 4 (accounts, no device records) opens at version 5 with
/// what it held (observations, a user) and keeps device records from then on, also
/// across another reopening.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_4_file_gains_device_records() {
    let _no_fork = SPAWNING.read().await;
    use factorydash_store::AccountStore;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("factorydash.db");
    let obs = page_one();
    let ada = crate::conformance::accounts_fixtures::user("ada");
    {
        let store = SqliteStore::open(&path).await.unwrap();
        store.append(&batch(&obs[..100])).await.unwrap();
        store.put_user(&ada).await.unwrap();
    }
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(&format!("{DROP_RECORDS} PRAGMA user_version = 4;"))
            .unwrap();
    }
    let record = full_record(AGENT, "GFAgie01");
    {
        let store = SqliteStore::open(&path).await.unwrap();
        assert_eq!(store.observation_count().await.unwrap(), 100);
        assert_eq!(store.users().await.unwrap(), vec![ada.clone()]);
        assert_eq!(store.device_records().await.unwrap(), vec![]);
        store.put_device_record(&record).await.unwrap();
    }
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.device_records().await.unwrap(), vec![record]);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i32 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
}

/// The permission bits of `path` (`0o600`, …).
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// `path` with `suffix` after its file name (`-wal`, `-shm`).
fn beside(path: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

/// The store's directory, database, `-wal` and `-shm` are their owner's only, whatever
/// the process's umask (a library user's is usually 022): agent data and the agents'
/// credentials are not for other users of the machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_files_are_their_owners_only() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let path = data.join("factorydash.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store.append(&batch(&page_one())).await.unwrap();
    store
        .put_configured_agent(&ConfiguredAgent {
            url: "http://agent.example:5000".into(),
            paused: false,
        })
        .await
        .unwrap();
    // While the store is open: the -wal and -shm exist (they go when the last connection
    // closes).
    let modes = [
        mode(&data),
        mode(&path),
        mode(&beside(&path, "-wal")),
        mode(&beside(&path, "-shm")),
    ];
    assert_eq!(modes, [0o700, 0o600, 0o600, 0o600], "{modes:?}");
}

/// Files an earlier version left readable by others (0644 beside a 0755 directory) are
/// taken back to their owner when the store opens them; the directory, which may be
/// anyone's (`/tmp`), is left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readable_files_left_by_an_earlier_version_are_taken_back() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.path().join("factorydash.db");
    // A plain SQLite connection keeps the -wal and -shm there while the store opens.
    let other = rusqlite::Connection::open(&path).unwrap();
    other.pragma_update(None, "journal_mode", "WAL").unwrap();
    other
        .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    let files = [path.clone(), beside(&path, "-wal"), beside(&path, "-shm")];
    for f in &files {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let store = SqliteStore::open(&path).await.unwrap();
    store.append(&batch(&page_one())).await.unwrap();
    let modes: Vec<u32> = files.iter().map(|f| mode(f)).collect();
    assert_eq!(modes, [0o600; 3], "{modes:?}");
    assert_eq!(mode(dir.path()), 0o755);
    drop(other);
}

/// The lock is on the file, not on a path: the same file by a hard link, a symbolic link
/// or a roundabout path is refused while a store has it, and opens once that store is
/// gone. No lock file is made beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_file_by_another_path_is_refused() {
    let _no_fork = SPAWNING.read().await;
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let path = sub.join("factorydash.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store.append(&batch(&page_one())).await.unwrap();
    let hard = dir.path().join("hard.db");
    std::fs::hard_link(&path, &hard).unwrap();
    let soft = dir.path().join("soft.db");
    std::os::unix::fs::symlink(&path, &soft).unwrap();
    let roundabout = sub.join("..").join("sub").join("factorydash.db");
    for other in [&hard, &soft, &roundabout] {
        let err = SqliteStore::open(other).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Locked { path: p } if p == other),
            "{}: {err:?}",
            other.display()
        );
        assert!(
            err.to_string().starts_with(&format!(
                "{} is in use by another factorydash",
                other.display()
            )),
            "{err}"
        );
    }
    // The refusals left the store whole.
    let count = store.observation_count().await.unwrap();
    assert_eq!(count, page_one().len() as u64);
    drop(store);
    for p in [&path, &hard, &soft, &roundabout] {
        assert!(!lock_path(p).exists(), "{}", p.display());
    }
    // The store's connections close on their own threads after the drop: the file is
    // free once the last one has (at once, or within a moment).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let again = loop {
        match SqliteStore::open(&hard).await {
            Ok(s) => break s,
            Err(StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => panic!("the file is never free again: {e}"),
        }
    };
    assert_eq!(again.observation_count().await.unwrap(), count);
}

/// The environment variable that makes [`open_in_a_child_process`] open a file: set only
/// by [`a_second_process_is_refused`] for the copy of this test binary it runs.
const CHILD_OPENS: &str = "FACTORYDASH_TEST_CHILD_OPENS";

/// In a child process (see [`a_second_process_is_refused`]): opens the file named by
/// [`CHILD_OPENS`] and prints what happened. Without it (a normal test run), nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_in_a_child_process() {
    let Some(path) = std::env::var_os(CHILD_OPENS) else {
        return;
    };
    match SqliteStore::open(&path).await {
        Ok(store) => println!(
            "child: opened, {}",
            store.observation_count().await.unwrap()
        ),
        Err(e) => println!("child: refused: {e}"),
    }
}

/// Another process (this test binary again) is refused the file a store holds, by its
/// path and by a hard link, and opens it once the store is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_is_refused() {
    let _forks = SPAWNING.write().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("factorydash.db");
    let hard = dir.path().join("hard.db");
    let child = |p: &std::path::Path| {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "sqlite_file::open_in_a_child_process",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_OPENS, p)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let stdout = String::from_utf8(out.stdout).unwrap();
        stdout
            .lines()
            .find_map(|l| l.find("child: ").map(|at| l[at..].to_owned()))
            .unwrap_or_else(|| panic!("the child said nothing: {stdout}"))
    };
    let store = SqliteStore::open(&path).await.unwrap();
    store.append(&batch(&page_one())).await.unwrap();
    std::fs::hard_link(&path, &hard).unwrap();
    for p in [&path, &hard] {
        assert_eq!(
            child(p),
            format!(
                "child: refused: {} is in use by another factorydash (the file is locked)",
                p.display()
            )
        );
    }
    drop(store);
    assert_eq!(child(&hard), format!("child: opened, {}", page_one().len()));
}

/// A lock file an older version made beside the database: removed when free, and a
/// refusal while held (that older version is using the file).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_versions_lock_file() {
    let _no_fork = SPAWNING.read().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("factorydash.db");
    let old = std::fs::File::create(lock_path(&path)).unwrap();
    old.try_lock().unwrap();
    let err = SqliteStore::open(&path).await.unwrap_err();
    assert!(matches!(&err, StoreError::Locked { .. }), "{err:?}");
    drop(old);
    let store = SqliteStore::open(&path).await.unwrap();
    assert!(!lock_path(&path).exists());
    drop(store);
}

/// A file made at schema version 2, whose agents' URLs hold their credentials, opens at
/// version 3 with the credentials moved out of every URL (as
/// [`assert_credentials_moved`](crate::migrations::assert_credentials_moved) says), and
/// the password dropped (the first of two agents that became one) is not left in the
/// file's bytes nor in its write-ahead log (deleted rows are overwritten, `secure_delete`,
/// and the log is checkpointed and emptied).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_2_file_moves_credentials_out_of_urls() {
    let _no_fork = SPAWNING.read().await;
    use crate::migrations::{assert_credentials_moved, one_from, H_ONE, H_TWO, K};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("factorydash.db");
    {
        let store = SqliteStore::open(&path).await.unwrap();
        for (i, agent) in [H_ONE, H_TWO, K].into_iter().enumerate() {
            store.append(&one_from(agent, 1 + i as u64)).await.unwrap();
        }
    }
    {
        // Back to version 2, as an earlier version wrote it.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(&format!(
            "DROP TABLE agent_credentials;
             {DROP_ACCOUNTS}
             {DROP_RECORDS}
             INSERT INTO configured_agents (url, paused) VALUES
                 ('{H_ONE}', 0), ('{K}', 0), ('{H_TWO}', 1);
             PRAGMA user_version = 2;"
        ))
        .unwrap();
    }
    let store = SqliteStore::open(&path).await.unwrap();
    assert_credentials_moved(&store).await;
    store.size_on_disk().await.unwrap();
    // The file and its write-ahead log (emptied once the move is written to the file).
    let mut bytes = std::fs::read(&path).unwrap();
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    bytes.extend(std::fs::read(wal).unwrap_or_default());
    let holds = |s: &str| bytes.windows(s.len()).any(|w| w == s.as_bytes());
    assert!(
        !holds("pw-one-7f3a"),
        "the dropped password is still in the file"
    );
    assert!(
        holds("pw-two-9c1e"),
        "the kept one is, in agent_credentials"
    );
}
