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
    let kinds: Vec<_> = latest.items.iter().map(|o| o.kind.as_str()).collect();
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
    assert_eq!(version.get::<_, i32>(0), 3);
    db.drop().await;
}
