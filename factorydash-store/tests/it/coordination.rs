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
    // Released (dropping it releases it too, shortly after: see the 150 agents' test).
    held.release().await;
    held = other.try_lock_agent(AGENT).await.unwrap().unwrap();
    assert!(db.store.try_lock_agent(AGENT).await.unwrap().is_none());
    // Lost when its session is terminated: `lost` says so and the lock is free again.
    // (Terminated and waited for, up to 5 s: the client may see its connection closed
    // before the server process has let go of its locks.)
    let pids: i64 = db
        .admin()
        .query_one(
            "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_locks
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

/// A process holds all its agents' locks on one connection: 150 agents do not take 150
/// of the server's connections; another process can take none of them until they are
/// released, and then every one.
#[tokio::test]
async fn the_locks_of_150_agents_take_one_connection() {
    let Some(db) = TestDb::create("agent_locks_150").await else {
        return;
    };
    let name = format!("fd_locks_{}", rand::random::<u32>());
    let store = db.another_named(&name).await;
    let other = db.another().await;
    let agents: Vec<String> = (0..150)
        .map(|i| format!("http://{name}.test/agent-{i}"))
        .collect();
    let mut held = Vec::new();
    for agent in &agents {
        held.push(store.try_lock_agent(agent).await.unwrap().expect("free"));
    }
    // Held once: this process asking again is refused, as another would be.
    assert!(store.try_lock_agent(&agents[0]).await.unwrap().is_none());
    let sessions: i64 = db
        .admin()
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
            &[&name],
        )
        .await
        .unwrap()
        .get(0);
    // The ingest connection and the locks' one (the pool opens readers only when asked).
    assert!(sessions <= 3, "{sessions} sessions for 150 agent locks");
    for agent in agents.iter().step_by(10) {
        assert!(other.try_lock_agent(agent).await.unwrap().is_none());
    }
    drop(held);
    // Released in the background, in order: the last one's release means all were.
    let last = agents.last().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut again = loop {
        if let Some(lock) = other.try_lock_agent(last).await.unwrap() {
            break vec![lock];
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the locks were not released"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for agent in &agents[..agents.len() - 1] {
        again.push(
            other
                .try_lock_agent(agent)
                .await
                .unwrap()
                .expect("released"),
        );
    }
    drop(again);
    drop(store);
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
