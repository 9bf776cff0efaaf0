//! Schema migrations of the PostgreSQL store, from a database an earlier version made.

use chrono::Utc;
use factorydash_core::{Batch, Category, ConditionLevel, ConditionState, Observation, Value};
use factorydash_store::{LatestFilter, Store};

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
        .batch_execute("DELETE FROM factorydash_migrations WHERE version >= 3")
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
    assert_eq!(version.get::<_, i32>(0), 4);
    db.drop().await;
}

/// Takes a database back to the `latest` table of schema version 3 (keyed by device and
/// `dataItemId`): what version 4 migrates.
const VERSION_3_LATEST: &str = "
    ALTER TABLE latest DROP CONSTRAINT latest_pkey;
    ALTER TABLE latest ADD PRIMARY KEY (device, data_item_id);
    DELETE FROM factorydash_migrations WHERE version = 4;";

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
    assert_eq!(version.get::<_, i32>(0), 4);
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
