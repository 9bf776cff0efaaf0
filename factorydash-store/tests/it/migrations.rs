//! Schema migrations of the PostgreSQL store, from a database an earlier version made.

use chrono::Utc;
use factorydash_core::{Batch, Category, ConditionLevel, ConditionState, Observation, Value};
use factorydash_store::postgres::SCHEMA_VERSION;
use factorydash_store::{ConfiguredAgent, Credentials, LatestFilter, Store};

/// The schema version this build migrates to.
const LATEST_VERSION: i32 = SCHEMA_VERSION;

/// A database at schema version 2 holds Conditions typed as their `type` attribute
/// (`LOGIC_PROGRAM`); version 3 gives them the element-name form of every other type.
#[tokio::test]
async fn version_3_gives_conditions_the_element_name_form() {
    let Some(db) = crate::pg::TestDb::create("migration_3").await else {
        return;
    };
    let condition = |sequence, kind: &str| Observation {
        sequence,
        timestamp: Utc::now(),
        device: "Mazak01".into(),
        component_id: "path".into(),
        data_item_id: format!("cond{sequence}"),
        name: None,
        category: Category::Condition,
        kind: kind.into(),
        sub_type: None,
        value: Value::Text("Program error".into()),
        condition: Some(ConditionState {
            level: ConditionLevel::Fault,
            native_code: Some("E12".into()),
            native_severity: None,
            qualifier: None,
        }),
    };
    let batch = Batch {
        agent: "http://agent".into(),
        instance_id: 1,
        next_sequence: 3,
        observations: vec![condition(1, "LOGIC_PROGRAM"), condition(2, "x:MyThing")],
    };
    db.store.append(&batch).await.unwrap();
    // The store keeps a type as given: the rows hold `LOGIC_PROGRAM` as version 2 wrote
    // them. Back to version 2, and open the database again.
    let session = db.session().await;
    session.batch_execute(VERSION_3_LATEST).await.unwrap();
    session
        .batch_execute("DELETE FROM factorydash_migrations WHERE version = 3")
        .await
        .unwrap();
    let migrated = db.another().await;
    let latest = migrated
        .latest(
            &LatestFilter::default(),
            &factorydash_core::PageRequest::first(10),
        )
        .await
        .unwrap();
    let kinds: Vec<_> = latest
        .items
        .iter()
        .map(|o| o.observation.kind.as_str())
        .collect();
    assert_eq!(kinds, ["LogicProgram", "x:MyThing"]);
    let row = session
        .query_one("SELECT kind FROM observations WHERE sequence = 1", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "LogicProgram");
    let version = session
        .query_one("SELECT max(version) FROM factorydash_migrations", &[])
        .await
        .unwrap();
    assert_eq!(version.get::<_, i32>(0), LATEST_VERSION);
    db.drop().await;
}

/// Takes a database back to the `latest` table of schema version 3 (keyed by device and
/// `dataItemId`): what version 4 migrates.
const VERSION_3_LATEST: &str = "
    ALTER TABLE latest DROP CONSTRAINT latest_pkey;
    ALTER TABLE latest ADD PRIMARY KEY (device, data_item_id);
    DROP TABLE stored_sequences;
    DELETE FROM factorydash_migrations WHERE version >= 4;";

/// A database at schema version 3 keys latest values by (device, `dataItemId`); version 4
/// by (device, `agent_id`, `dataItemId`), so that a second agent serving a device of the
/// same name is kept apart from then on.
#[tokio::test]
async fn version_4_keys_latest_values_by_agent_too() {
    let Some(db) = crate::pg::TestDb::create("migration_4").await else {
        return;
    };
    let event = |sequence, value: &str| Observation {
        sequence,
        timestamp: Utc::now(),
        device: "Mazak".into(),
        component_id: "path".into(),
        data_item_id: "execution".into(),
        name: None,
        category: Category::Event,
        kind: "Execution".into(),
        sub_type: None,
        value: Value::Text(value.into()),
        condition: None,
    };
    let batch = |agent: &str, value| Batch {
        agent: agent.into(),
        instance_id: 1,
        next_sequence: 2,
        observations: vec![event(1, value)],
    };
    db.store
        .append(&batch("http://cell-1:5000/", "ACTIVE"))
        .await
        .unwrap();
    let session = db.session().await;
    session.batch_execute(VERSION_3_LATEST).await.unwrap();
    let migrated = db.another().await;
    let version = session
        .query_one("SELECT max(version) FROM factorydash_migrations", &[])
        .await
        .unwrap();
    assert_eq!(version.get::<_, i32>(0), LATEST_VERSION);
    migrated
        .append(&batch("http://cell-2:5000/", "STOPPED"))
        .await
        .unwrap();
    let latest = migrated
        .latest(
            &LatestFilter::default(),
            &factorydash_core::PageRequest::first(10),
        )
        .await
        .unwrap();
    let rows: Vec<_> = latest
        .items
        .iter()
        .map(|o| (o.agent.as_str(), o.observation.value.as_text().unwrap()))
        .collect();
    assert_eq!(
        rows,
        [
            ("http://cell-1:5000/", "ACTIVE"),
            ("http://cell-2:5000/", "STOPPED")
        ]
    );
    db.drop().await;
}

/// A database at schema version 4 may hold one observation several times (an agent that
/// sent a sequence again with another timestamp got past a key that holds `ts`); version 5
/// keeps the first of each (agent, instanceId, sequence), records what is stored in
/// `stored_sequences`, and from then on the same observation with yet another timestamp,
/// in another partition, is not stored again.
#[tokio::test]
async fn version_5_removes_the_copies_and_stores_each_observation_once() {
    let Some(db) = crate::pg::TestDb::create("migration_5").await else {
        return;
    };
    let t0 = chrono::DateTime::parse_from_rfc3339("2026-11-30T23:59:59Z")
        .unwrap()
        .to_utc();
    let sample = |sequence: u64, seconds: i64| Observation {
        sequence,
        timestamp: t0 + chrono::Duration::seconds(seconds),
        device: "Mazak".into(),
        component_id: "x".into(),
        data_item_id: "Xact".into(),
        name: None,
        category: Category::Sample,
        kind: "Position".into(),
        sub_type: None,
        value: Value::Text(format!("{sequence}.5")),
        condition: None,
    };
    let batch = |instance_id, observations: Vec<Observation>| Batch {
        agent: "http://cell-1:5000/".into(),
        instance_id,
        next_sequence: observations.last().map_or(1, |o| o.sequence + 1),
        observations,
    };
    // Two runs: 1..=100 of instance 7 with a hole at 50, and 1..=10 of instance 8.
    db.store
        .append(&batch(
            7,
            (1..=100)
                .filter(|&s| s != 50)
                .map(|s| sample(s, 0))
                .collect(),
        ))
        .await
        .unwrap();
    db.store
        .append(&batch(8, (1..=10).map(|s| sample(s, 0)).collect()))
        .await
        .unwrap();
    // Back to version 4, and the copies version 4 let in: 1..=30 of instance 7 again, a
    // day later (another partition), twice.
    let session = db.session().await;
    session
        .batch_execute(
            "DROP TABLE stored_sequences;
             DELETE FROM factorydash_migrations WHERE version >= 5;
             SELECT factorydash_observation_partition('2026-12-01');
             SELECT factorydash_observation_partition('2026-12-02');
             INSERT INTO observations
                 SELECT agent_id, instance_id, sequence, ts + interval '1 day', device,
                        component_id, data_item_id, name, category, kind, sub_type, value,
                        level, native_code, native_severity, qualifier
                 FROM observations WHERE instance_id = 7 AND sequence <= 30;
             INSERT INTO observations
                 SELECT agent_id, instance_id, sequence, ts + interval '2 days', device,
                        component_id, data_item_id, name, category, kind, sub_type, value,
                        level, native_code, native_severity, qualifier
                 FROM observations WHERE instance_id = 7 AND sequence <= 30
                   AND ts < '2026-12-01';",
        )
        .await
        .unwrap();
    let count = |sql: &'static str| {
        let session = &session;
        async move { session.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    assert_eq!(
        count("SELECT count(*) FROM observations").await,
        99 + 10 + 60
    );
    let migrated = db.another().await;
    assert_eq!(
        count("SELECT max(version)::bigint FROM factorydash_migrations").await,
        LATEST_VERSION as i64
    );
    assert_eq!(count("SELECT count(*) FROM observations").await, 99 + 10);
    assert_eq!(
        count("SELECT count(*) FROM observations WHERE ts >= '2026-12-01'").await,
        0,
        "the first of each is kept"
    );
    let ranges = session
        .query(
            "SELECT instance_id, first_sequence, last_sequence FROM stored_sequences
             ORDER BY 1, 2",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1), r.get::<_, i64>(2)))
        .collect::<Vec<_>>();
    assert_eq!(ranges, [(7, 1, 49), (7, 51, 100), (8, 1, 10)]);
    // The same observations yet again, with another timestamp: nothing stored.
    let again = migrated
        .append(&batch(
            7,
            (1..=100).map(|s| sample(s, 3 * 86_400)).collect(),
        ))
        .await
        .unwrap();
    assert_eq!(again.inserted, 1, "only sequence 50, never stored before");
    assert_eq!(
        count("SELECT count(*) FROM observations").await,
        99 + 10 + 1
    );
    db.drop().await;
}

/// The URLs an earlier version stored, credentials and all: agents `one` and `two` of
/// host h differ only by their passwords (the same agent followed twice), `k` is alone.
pub const H_ONE: &str = "http://u:pw-one-7f3a@h:5000";
pub const H_TWO: &str = "http://u:pw-two-9c1e@h:5000";
pub const K: &str = "http://token-5d2b@k:5000";

/// A batch of one observation from `agent`.
pub fn one_from(agent: &str, sequence: u64) -> Batch {
    Batch {
        agent: agent.into(),
        instance_id: 1,
        next_sequence: sequence + 1,
        observations: vec![Observation {
            sequence,
            timestamp: Utc::now(),
            device: "Mazak".into(),
            component_id: "path".into(),
            data_item_id: "execution".into(),
            name: None,
            category: Category::Event,
            kind: "Execution".into(),
            sub_type: None,
            value: Value::Text("ACTIVE".into()),
            condition: None,
        }],
    }
}

/// What a store holds once the credentials of [`H_ONE`], [`H_TWO`] and [`K`] (stored
/// by an earlier version as agents, in that order, and as agents added at run time,
/// `H_TWO` last and paused) are moved out of their URLs: one agent per URL (the one added
/// last keeps its credentials, paused state and place in the order added); observations under URLs without
/// credentials, the second agent of h told apart by its number, nothing merged or lost.
pub async fn assert_credentials_moved(store: &dyn Store) {
    assert_eq!(
        store.configured_agents().await.unwrap(),
        [
            ConfiguredAgent {
                url: "http://k:5000".into(),
                paused: false
            },
            ConfiguredAgent {
                url: "http://h:5000".into(),
                paused: true
            },
        ]
    );
    assert_eq!(
        store.agent_credentials("http://h:5000").await.unwrap(),
        Some(Credentials::new("u", Some("pw-two-9c1e".into())))
    );
    assert_eq!(
        store.agent_credentials("http://k:5000").await.unwrap(),
        Some(Credentials::new("token-5d2b", None))
    );
    let latest = store
        .latest(
            &LatestFilter::default(),
            &factorydash_core::PageRequest::first(10),
        )
        .await
        .unwrap();
    let agents: Vec<_> = latest.items.iter().map(|o| o.agent.as_str()).collect();
    assert_eq!(
        agents,
        ["http://h:5000", "http://h:5000#agent-2", "http://k:5000"]
    );
    let resume = store.resume_point("http://h:5000").await.unwrap().unwrap();
    assert_eq!(resume.next_sequence, 2, "agent one's resume point");
}

/// Schema version 6 moves the credentials out of the URLs stored before it (agents and
/// agents added at run time), as [`assert_credentials_moved`] says.
#[tokio::test]
async fn version_6_moves_credentials_out_of_urls() {
    let Some(db) = crate::pg::TestDb::create("migration_6").await else {
        return;
    };
    for (i, agent) in [H_ONE, H_TWO, K].into_iter().enumerate() {
        db.store
            .append(&one_from(agent, 1 + i as u64))
            .await
            .unwrap();
    }
    // Back to version 5's tables, as an earlier version wrote them.
    let session = db.session().await;
    session
        .batch_execute(&format!(
            "DROP TABLE agent_credentials;
             DELETE FROM factorydash_migrations WHERE version = 6;
             INSERT INTO configured_agents (url, paused, added_at) VALUES
                 ('{H_ONE}', false, now() - interval '2 hours'),
                 ('{K}', false, now() - interval '1 hour'),
                 ('{H_TWO}', true, now());"
        ))
        .await
        .unwrap();
    let migrated = db.another().await;
    assert_credentials_moved(&migrated).await;
    for table in ["agents", "configured_agents"] {
        let rows = session
            .query(&format!("SELECT url FROM {table}"), &[])
            .await
            .unwrap();
        for row in rows {
            let url: String = row.get(0);
            assert!(!url.contains('@'), "{table}: {url}");
        }
    }
    db.drop().await;
}

/// A database at schema version 7 (accounts, no device records) migrates to version 8
/// with what it held (observations, a user), and keeps device records from then on.
/// Version 8 may be applied again: it changes nothing where the table is.
#[tokio::test]
async fn version_8_adds_device_records() {
    use factorydash_store::AccountStore;
    let Some(db) = crate::pg::TestDb::create("migration_8").await else {
        return;
    };
    db.store
        .append(&one_from("http://h:5000", 1))
        .await
        .unwrap();
    let ada = crate::conformance::accounts_fixtures::user("ada");
    db.store.put_user(&ada).await.unwrap();
    let session = db.session().await;
    session
        .batch_execute(
            "DROP TABLE device_records;
             DELETE FROM factorydash_migrations WHERE version = 8;",
        )
        .await
        .unwrap();
    let migrated = db.another().await;
    let version = session
        .query_one("SELECT max(version) FROM factorydash_migrations", &[])
        .await
        .unwrap();
    assert_eq!(version.get::<_, i32>(0), LATEST_VERSION);
    assert_eq!(migrated.observation_count().await.unwrap(), 1);
    assert_eq!(migrated.users().await.unwrap(), vec![ada]);
    assert_eq!(migrated.device_records().await.unwrap(), vec![]);
    let record = crate::conformance::full_record("http://h:5000", "Mazak");
    migrated.put_device_record(&record).await.unwrap();
    // Applied again over the table: nothing lost.
    session
        .batch_execute("DELETE FROM factorydash_migrations WHERE version = 8")
        .await
        .unwrap();
    let again = db.another().await;
    assert_eq!(again.device_records().await.unwrap(), vec![record]);
    db.drop().await;
}
