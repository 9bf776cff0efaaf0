//! The PostgreSQL store's connections: reads do not queue behind ingest.

use std::time::Duration;

use chrono::Utc;
use factorydash_core::{Batch, Category, Observation, PageRequest, Value};
use factorydash_store::{LatestFilter, Store};

use crate::pg::TestDb;

const AGENT: &str = "http://127.0.0.1:5000";

fn batch(sequence: u64) -> Batch {
    Batch {
        agent: AGENT.into(),
        instance_id: 1,
        next_sequence: sequence + 1,
        observations: vec![Observation {
            sequence,
            timestamp: Utc::now(),
            device: "Mazak01".into(),
            component_id: "path1".into(),
            data_item_id: "exec".into(),
            name: None,
            category: Category::Event,
            kind: "Execution".into(),
            sub_type: None,
            value: Value::Text("ACTIVE".into()),
            condition: None,
        }],
    }
}

/// An append waiting on the database (here on the agent's row, locked by another
/// session) holds the ingest connection, not the connections that reads take: a
/// `/healthz` ping and the latest values answer meanwhile.
#[tokio::test]
async fn reads_answer_while_an_append_waits() {
    let Some(db) = TestDb::create("append_waits").await else {
        return;
    };
    db.store.append(&batch(1)).await.unwrap();
    let blocker = db.session().await;
    blocker
        .batch_execute("BEGIN; SELECT 1 FROM agents FOR UPDATE")
        .await
        .unwrap();
    let second = batch(2);
    let mut append = Box::pin(db.store.append(&second));
    assert!(
        tokio::time::timeout(Duration::from_millis(500), &mut append)
            .await
            .is_err(),
        "the append waits for the agent's row"
    );
    tokio::time::timeout(Duration::from_secs(2), db.store.ping())
        .await
        .expect("a ping does not wait behind the append")
        .unwrap();
    let latest = tokio::time::timeout(
        Duration::from_secs(2),
        db.store
            .latest(&LatestFilter::default(), &PageRequest::first(10)),
    )
    .await
    .expect("a read does not wait behind the append")
    .unwrap();
    assert_eq!(latest.items.len(), 1);
    assert_eq!(latest.items[0].observation.sequence, 1);
    blocker.batch_execute("COMMIT").await.unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(10), &mut append)
        .await
        .expect("the append goes on once the row is free")
        .unwrap();
    assert_eq!(outcome.inserted, 1);
    drop(append);
    drop(blocker);
    db.drop().await;
}
