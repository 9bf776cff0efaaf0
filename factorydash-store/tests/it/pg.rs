//! A PostgreSQL schema of its own for each test.

use factorydash_store::postgres::PgStore;

/// The environment variable naming the test server.
pub const URL_VAR: &str = "FACTORYDASH_TEST_DATABASE_URL";
/// When set to 1 (as `.ci/run` does), a missing or unreachable server fails the tests.
pub const REQUIRE_VAR: &str = "FACTORYDASH_REQUIRE_POSTGRES";

pub struct TestDb {
    pub store: PgStore,
    admin: tokio_postgres::Client,
    schema: String,
    config: tokio_postgres::Config,
}

impl TestDb {
    /// A store in a fresh schema, or `None` (with a note) when no server is configured
    /// and none is required.
    pub async fn create(test: &str) -> Option<TestDb> {
        let url = match std::env::var(URL_VAR) {
            Ok(url) => url,
            Err(_) => {
                assert!(
                    std::env::var(REQUIRE_VAR).as_deref() != Ok("1"),
                    "{REQUIRE_VAR}=1 but {URL_VAR} is not set"
                );
                eprintln!("SKIPPED: {test} on PostgreSQL: set {URL_VAR} to run it");
                return None;
            }
        };
        let config: tokio_postgres::Config = url.parse().expect("a valid PostgreSQL URL");
        let (admin, conn) = config
            .connect(tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {URL_VAR} is unreachable: {e}"));
        tokio::spawn(conn);
        let schema = format!("fdtest_{}_{}", test, rand::random::<u32>());
        admin
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .await
            .unwrap();
        let mut config = config;
        config.options(format!("-c search_path={schema}"));
        let store = PgStore::connect_with(config.clone()).await.unwrap();
        Some(TestDb {
            store,
            admin,
            schema,
            config,
        })
    }

    /// Another store on the same schema, its sessions named `application_name` (to count
    /// them in `pg_stat_activity`).
    pub async fn another_named(&self, application_name: &str) -> PgStore {
        let mut config = self.config.clone();
        config.application_name(application_name);
        PgStore::connect_with(config).await.unwrap()
    }

    /// Another store on the same schema, as another process would open.
    pub async fn another(&self) -> PgStore {
        PgStore::connect_with(self.config.clone()).await.unwrap()
    }

    /// A session of its own in the test's schema, as another client of the database.
    pub async fn session(&self) -> tokio_postgres::Client {
        let (client, conn) = self.config.connect(tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        client
    }

    /// A connection to the server, outside the test's schema.
    pub fn admin(&self) -> &tokio_postgres::Client {
        &self.admin
    }

    pub async fn drop(self) {
        self.admin
            .batch_execute(&format!("DROP SCHEMA {} CASCADE", self.schema))
            .await
            .unwrap();
    }
}
