//! Several processes on one PostgreSQL database: one ingests each agent (advisory lock),
//! all hear of every batch stored (LISTEN/NOTIFY).

use std::time::Duration;

use chrono::Utc;
use factorydash_core::{Batch, Category, Observation, Value};
use factorydash_store::Store;

use crate::pg::TestDb;

const AGENT: &str = "http://127.0.0.1:5000";

fn observation(sequence: u64, item: &str, value: &str) -> Observation {
    Observation {
        sequence,
        timestamp: Utc::now(),
        device: "Mazak01".into(),
        component_id: "path1".into(),
        data_item_id: item.into(),
        name: None,
        category: Category::Event,
        kind: "Execution".into(),
        sub_type: None,
        value: Value::Text(value.into()),
        condition: None,
    }
}

#[tokio::test]
async fn one_process_holds_an_agent_until_it_lets_go_or_its_connection_dies() {
    let Some(db) = TestDb::create("agent_lock").await else {
        return;
    };
    let other = db.another().await;
    let mut held = db.store.try_lock_agent(AGENT).await.unwrap().unwrap();
    assert!(other.try_lock_agent(AGENT).await.unwrap().is_none());
    // Another agent is free.
    let elsewhere = other.try_lock_agent("http://elsewhere").await.unwrap();
    assert!(elsewhere.is_some());
    // Released when dropped.
    drop(held);
    held = other.try_lock_agent(AGENT).await.unwrap().unwrap();
    assert!(db.store.try_lock_agent(AGENT).await.unwrap().is_none());
    // Lost when its session is terminated: `lost` says so and the lock is free again.
    let pids: i64 = db
        .admin()
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_locks
             WHERE locktype = 'advisory' AND classid = 26212 AND objid = hashtext($1)::oid AND granted",
            &[&AGENT],
        )
        .await
        .unwrap()
        .get(0);
    assert!(pids >= 1);
    tokio::time::timeout(Duration::from_secs(10), held.lost())
        .await
        .expect("the lost lock is noticed");
    assert!(db.store.try_lock_agent(AGENT).await.unwrap().is_some());
    drop(other);
    db.drop().await;
}

#[tokio::test]
async fn every_process_hears_of_each_batch_and_reads_its_latest_values() {
    let Some(db) = TestDb::create("listen").await else {
        return;
    };
    let other = db.another().await;
    let mut heard = other.listen(16).await.unwrap();
    // LISTEN is issued in the background: append until the first announcement arrives.
    let mut sequence = 1;
    let first = loop {
        let batch = Batch {
            agent: AGENT.into(),
            instance_id: 7,
            next_sequence: sequence + 2,
            observations: vec![
                observation(sequence, "exec", "READY"),
                observation(sequence + 1, "exec", "ACTIVE"),
            ],
        };
        db.store.append(&batch).await.unwrap();
        sequence += 2;
        if let Ok(Some(a)) = tokio::time::timeout(Duration::from_millis(200), heard.recv()).await {
            break a;
        }
        assert!(sequence < 100, "no announcement heard");
    };
    assert_eq!(first.agent, AGENT);
    assert_eq!(first.instance_id, 7);
    assert_eq!(first.next_sequence, *first.sequences.end() + 1);
    assert_eq!(first.sequences.end() - first.sequences.start(), 1);
    let latest = other.latest_of(&first).await.unwrap();
    assert_eq!(latest.len(), 1);
    assert_eq!(latest[0].value, Value::Text("ACTIVE".into()));
    assert_eq!(latest[0].sequence, *first.sequences.end());
    drop(heard);
    drop(other);
    db.drop().await;
}
