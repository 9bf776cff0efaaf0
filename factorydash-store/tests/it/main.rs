//! The store conformance suite, run against every store: the in-memory store, SQLite
//! (each test its own file in a temporary directory) and a real PostgreSQL server
//! (`FACTORYDASH_TEST_DATABASE_URL`, each test in its own schema); `cross_store` compares
//! the three stores' answers to the same observations with each other.

mod conformance;
mod connections;
mod coordination;
mod cross_store;
mod migrations;
mod pg;
mod records;
mod sqlite_file;
mod summaries;
mod tls;

/// Runs each conformance test against the memory store, SQLite and PostgreSQL.
macro_rules! conformance_tests {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $name() {
                    let store = factorydash_store::MemoryStore::new();
                    crate::conformance::$name(&store).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let store = factorydash_store::sqlite::SqliteStore::open(dir.path().join("test.db"))
                        .await
                        .unwrap();
                    crate::conformance::$name(&store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(db) = crate::pg::TestDb::create(stringify!($name)).await else { return };
                    crate::conformance::$name(&db.store).await;
                    db.drop().await;
                }
            )*
        }
    };
}

conformance_tests!(
    append_is_idempotent,
    a_sequence_is_stored_once_whatever_its_timestamp,
    sequences_beyond_i64_are_refused,
    an_instance_coming_back_is_not_stored_again,
    an_instance_read_again_from_its_start_is_stored_once,
    latest_pages_cover_every_data_item_once,
    latest_filters_by_component_category_type_and_text,
    latest_is_the_highest_sequence_whatever_the_order,
    series_is_the_window_in_time_order,
    series_after_reads_a_window_chunk_by_chunk_in_order,
    series_after_reads_rows_at_one_instant_once_each,
    buckets_summarise_a_window_as_core_does,
    resume_point_and_gaps_are_kept,
    prune_drops_whole_days_and_keeps_the_latest_values,
    last_before_is_the_value_as_of_an_instant,
    state_summary_is_what_core_computes,
    summaries_count_each_state_once,
    a_stop_under_way_at_a_windows_start_keeps_when_it_began,
    summaries_agree_with_the_observations_of_a_real_agent,
    as_of_gives_every_data_item_at_an_instant,
    conditions_of_a_window_give_the_real_fault_episodes,
    two_agents_serving_one_device_name_are_kept_apart,
    configured_agents_are_kept,
    configured_agents_keep_their_credentials_apart,
    devices_round_trip,
    a_forged_cursor_is_an_error,
    latest_and_as_of_keep_to_the_allowed_devices,
    conditions_keep_to_a_list_of_devices,
    users_round_trip_and_are_replaced,
    removing_a_user_removes_their_credentials_and_memberships,
    groups_round_trip_and_are_replaced,
    credentials_are_kept_by_digest,
    stale_credentials_are_removed,
    audit_entries_are_numbered_and_listed_newest_first,
    audit_pages_are_capped,
    old_audit_entries_are_pruned,
    device_records_round_trip,
    a_device_record_is_replaced,
    device_records_are_listed_by_agent_then_device,
    removing_a_device_record,
    a_device_record_that_fails_its_checks_is_refused,
    stop_reasons_round_trip_and_are_replaced,
    settings_round_trip_and_are_removed,
    the_outbox_keeps_entries_in_order_until_confirmed,
);

#[tokio::test]
async fn a_capped_memory_store_keeps_the_newest_and_every_latest_value() {
    conformance::a_capped_memory_store_keeps_the_newest_and_every_latest_value().await;
}
