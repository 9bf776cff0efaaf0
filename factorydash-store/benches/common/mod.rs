//! What the store's benches share.

/// A database of the bench's own on a PostgreSQL server, created by [`BenchDb::create`]
/// and dropped (with its connections) by [`BenchDb::drop`].
pub struct BenchDb {
    admin: tokio_postgres::Client,
    name: String,
    /// Connects to the bench's database.
    pub config: tokio_postgres::Config,
}

impl BenchDb {
    /// Creates `fdbench_<bench>_<pid>` on the server at `url`.
    ///
    /// # Panics
    /// When the server cannot be reached or the database cannot be made.
    pub async fn create(url: &str, bench: &str) -> Self {
        let (admin, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        let name = format!("fdbench_{bench}_{}", std::process::id());
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let mut config = url.parse::<tokio_postgres::Config>().unwrap();
        config.dbname(&name);
        BenchDb {
            admin,
            name,
            config,
        }
    }

    /// Drops the database, ending whatever is still connected to it.
    ///
    /// # Panics
    /// When the server refuses.
    pub async fn drop(self) {
        self.admin
            .batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", self.name))
            .await
            .unwrap();
    }
}
