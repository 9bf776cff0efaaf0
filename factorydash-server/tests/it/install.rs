//! Run the way a plant's IT runs services: the configuration containers and compose files
//! use (`DATABASE_URL`, `POSTGRES_*`), logs for files and journals, the built-in demo and
//! the health check a container runs.

use std::time::Duration;

use crate::support::{get_text, postgres_url, start_logged, wait_for, FreshDb};

/// `factorydash ARGS` with `env` added, run to its end (at most 30 s): (exit code, what
/// it wrote on stdout then stderr).
async fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_factorydash"))
            .args(args)
            .envs(env.iter().copied())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("factorydash ends within 30 s")
    .expect("factorydash runs");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test]
async fn the_demo_plays_without_a_network_and_the_healthcheck_tells_it_is_up() {
    let (serve, log) = start_logged(
        &[
            "serve",
            "--demo",
            "--listen",
            "127.0.0.1:0",
            "--speed",
            "50",
        ],
        &[],
    )
    .await;
    let health = wait_for(&serve.base, Duration::from_secs(30), "demo data", |h| {
        h["observations"].as_u64().unwrap_or(0) > 100
    })
    .await;
    assert_eq!(
        health["sources"][0]["source"], "demo:nist-3-machines-2016",
        "{health}"
    );
    let page = get_text(format!("{}/", serve.base)).await;
    for device in ["GFAgie01", "Mazak01", "Hurco01"] {
        assert!(page.contains(device), "{device} on the page");
    }
    assert!(!page.contains("demo-hint"), "no hint once data comes");
    let port = serve.base.rsplit(':').next().unwrap().to_owned();
    let (code, _) = run(
        &["healthcheck", "--listen", &format!("0.0.0.0:{port}")],
        &[],
    )
    .await;
    assert_eq!(code, 0, "healthy");
    // Logs go to a pipe here: no escape codes.
    assert!(!log.lock().unwrap().contains('\u{1b}'), "no ANSI codes");
    drop(serve);
    let (code, stderr) = run(
        &["healthcheck", "--listen", &format!("127.0.0.1:{port}")],
        &[],
    )
    .await;
    assert_eq!(code, 1, "nothing listens any more: {stderr}");
}

#[tokio::test]
async fn json_logs_are_one_object_a_line() {
    let (serve, log) = start_logged(
        &[
            "serve",
            "--demo",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ],
        &[],
    )
    .await;
    wait_for(&serve.base, Duration::from_secs(30), "demo data", |h| {
        h["observations"].as_u64().unwrap_or(0) > 0
    })
    .await;
    drop(serve);
    let log = log.lock().unwrap().clone();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 2, "{log}");
    for line in lines {
        let object: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(object["level"].is_string() && object["timestamp"].is_string());
    }
    assert!(log.contains(r#""why":"--store memory""#), "{log}");
}

#[tokio::test]
async fn an_unreachable_agent_gets_a_page_that_says_how_to_see_a_demo() {
    // Port 9 (discard) on loopback: nothing listens.
    let (serve, log) = start_logged(
        &[
            "serve",
            "--agent",
            "http://127.0.0.1:9",
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    )
    .await;
    wait_for(&serve.base, Duration::from_secs(30), "backing off", |h| {
        !h["sources"][0]["unreachableSince"].is_null()
    })
    .await;
    let page = get_text(format!("{}/", serve.base)).await;
    assert!(page.contains("demo-hint"), "{page}");
    assert!(page.contains("factorydash serve --demo"));
    let said = log.lock().unwrap().clone();
    assert_eq!(
        said.matches("factorydash serve --demo").count(),
        1,
        "said once: {said}"
    );
}

#[tokio::test]
async fn database_variables_set_but_unusable_stop_the_start_without_quoting_a_password() {
    let cases: &[&[(&str, &str)]] = &[
        &[("DATABASE_URL", "mysql://u:hunter2@db/x")],
        &[
            ("POSTGRES_PORT", "not-a-port"),
            ("POSTGRES_PASSWORD", "hunter2"),
        ],
        &[
            ("POSTGRES_PASSWORD", "hunter2"),
            ("POSTGRES_PASSWORD_FILE", "/etc/hostname"),
        ],
        &[("POSTGRES_PASSWORD_FILE", "/nonexistent/secret")],
    ];
    for env in cases {
        let (code, stderr) = run(&["serve", "--listen", "127.0.0.1:0"], env).await;
        assert_ne!(code, 0, "{env:?} refused: {stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
        let named = env[0].0;
        assert!(
            stderr.contains(named) || stderr.contains(env[env.len() - 1].0),
            "the error names the variable: {stderr}"
        );
    }
}

/// `DATABASE_URL` and the official PostgreSQL image's `POSTGRES_*` variables choose
/// PostgreSQL, and the log says why.
#[tokio::test]
async fn database_url_and_postgres_variables_choose_postgresql() {
    let Some(server) = postgres_url("database_url_and_postgres_variables") else {
        return;
    };
    let db = FreshDb::create(&server, "dburl").await;
    // --data-dir, not the tests' memory store: the variables are to choose PostgreSQL
    // over it (the directory is never made).
    let unused = std::env::temp_dir().join(format!("factorydash-unused-{}", db.name));
    let demo = [
        "serve",
        "--demo",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        unused.to_str().unwrap(),
    ];
    let (serve, log) = start_logged(&demo, &[("DATABASE_URL", &db.url)]).await;
    let health = wait_for(&serve.base, Duration::from_secs(30), "stored", |h| {
        h["observations"].as_u64().unwrap_or(0) > 0
    })
    .await;
    assert_eq!(health["store"], "postgresql", "{health}");
    assert!(log.lock().unwrap().contains("why=from DATABASE_URL"));
    serve.terminate(Duration::from_secs(15)).await;

    let config: tokio_postgres::Config = db.url.parse().unwrap();
    let host = match &config.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(h) => h.clone(),
        #[allow(unreachable_patterns)]
        other => panic!("{other:?}"),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let user = config.get_user().unwrap_or("postgres").to_owned();
    let password = config
        .get_password()
        .map(|p| String::from_utf8_lossy(p).into_owned());
    let mut env = vec![
        ("POSTGRES_HOST", host.as_str()),
        ("POSTGRES_PORT", port.as_str()),
        ("POSTGRES_USER", user.as_str()),
        ("POSTGRES_DB", db.name.as_str()),
    ];
    if let Some(p) = &password {
        env.push(("POSTGRES_PASSWORD", p));
    }
    let (serve, log) = start_logged(&demo, &env).await;
    let health = wait_for(&serve.base, Duration::from_secs(30), "stored", |h| {
        h["observations"].as_u64().unwrap_or(0) > 0
    })
    .await;
    assert_eq!(health["store"], "postgresql", "{health}");
    assert!(
        log.lock().unwrap().contains("why=from POSTGRES_HOST"),
        "the log says why"
    );
    drop(serve);
    db.drop().await;
}

/// PostgreSQL unreachable when `serve` starts (its port closed; later opened onto the test
/// server): the dashboard listens at once, the page and `/healthz` say the store is
/// unavailable and why, and ingest begins when the database comes.
#[tokio::test]
async fn serve_listens_while_postgresql_is_down_and_ingests_once_it_comes() {
    let Some(server) = postgres_url("serve_listens_while_postgresql_is_down") else {
        return;
    };
    let db = FreshDb::create(&server, "late").await;
    let config: tokio_postgres::Config = db.url.parse().unwrap();
    let tokio_postgres::config::Host::Tcp(host) = config.get_hosts()[0].clone() else {
        panic!("a TCP host");
    };
    let real = format!(
        "{host}:{}",
        config.get_ports().first().copied().unwrap_or(5432)
    );
    // A port nothing listens on, for now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let password = config
        .get_password()
        .map(|p| format!(":{}", String::from_utf8_lossy(p)))
        .unwrap_or_default();
    let late = format!(
        "postgres://{}{password}@127.0.0.1:{port}/{}",
        config.get_user().unwrap_or("postgres"),
        db.name
    );
    let unused = std::env::temp_dir().join(format!("factorydash-unused-{}", db.name));
    let (serve, _log) = start_logged(
        &[
            "serve",
            "--demo",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            unused.to_str().unwrap(),
        ],
        &[("DATABASE_URL", &late)],
    )
    .await;
    let health = wait_for(&serve.base, Duration::from_secs(30), "degraded", |h| {
        h["status"] == "degraded"
    })
    .await;
    let why = health["storeError"].as_str().unwrap();
    assert!(
        why.contains("unavailable since") && why.contains("retrying"),
        "{why}"
    );
    let page = get_text(format!("{}/", serve.base)).await;
    assert!(page.contains("unavailable since"), "the page says so");

    // The database comes: a forwarder from the port to the real server.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            let real = real.clone();
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(real).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    let health = wait_for(&serve.base, Duration::from_secs(90), "ingest", |h| {
        h["status"] == "ok" && h["observations"].as_u64().unwrap_or(0) > 0
    })
    .await;
    assert_eq!(health["store"], "postgresql");
    drop(serve);
    db.drop().await;
}

/// `factorydash backup` while `serve` ingests (SQLite's online backup), then `restore`
/// into another data directory: a `serve` started there continues the agent from where the
/// backup was taken, and every observation is stored once, without a gap.
#[tokio::test(flavor = "multi_thread")]
async fn a_backup_taken_during_ingest_restores_to_a_store_serve_continues() {
    use factorydash_store::{sqlite::SqliteStore, Store};
    const TOTAL: u64 = 112_762;
    let root = std::env::temp_dir().join(format!("factorydash-backup-{}", rand::random::<u32>()));
    let (first, second) = (root.join("first"), root.join("second"));
    let copy = root.join("copy.db");
    // At 1000 times its pace the recording takes about 17 s to reveal.
    let agent = crate::support::replay_agent("1000").await;
    let serve_on = |dir: &std::path::Path| {
        vec![
            "serve".to_owned(),
            "--agent".to_owned(),
            agent.base.clone(),
            "--listen".to_owned(),
            "127.0.0.1:0".to_owned(),
            "--poll-interval".to_owned(),
            "100ms".to_owned(),
            "--data-dir".to_owned(),
            dir.to_str().unwrap().to_owned(),
        ]
    };
    let args = serve_on(&first);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (serve, _) = start_logged(&args, &[]).await;
    wait_for(&serve.base, Duration::from_secs(60), "some stored", |h| {
        h["observations"].as_u64().unwrap_or(0) > 5_000
    })
    .await;
    let (code, said) = run(
        &[
            "backup",
            "--data-dir",
            first.to_str().unwrap(),
            "--out",
            copy.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert_eq!(code, 0, "{said}");
    // "backed up … into …: N observations, …"
    let backed_up: u64 = said
        .split(": ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{said}"));
    let (code, stderr) = run(
        &[
            "backup",
            "--data-dir",
            first.to_str().unwrap(),
            "--out",
            copy.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert_ne!(code, 0, "an existing file is not overwritten: {stderr}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the copy is its owner's only");
    }
    let status = serve.terminate(Duration::from_secs(15)).await;
    assert!(status.success());
    assert!(
        backed_up > 0 && backed_up < TOTAL,
        "taken during ingest: {backed_up}"
    );

    let (code, stderr) = run(
        &[
            "restore",
            "--from",
            copy.to_str().unwrap(),
            "--data-dir",
            second.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let args = serve_on(&second);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (serve, _) = start_logged(&args, &[]).await;
    // A restore into a store in use is refused.
    let (code, stderr) = run(
        &[
            "restore",
            "--from",
            copy.to_str().unwrap(),
            "--data-dir",
            second.to_str().unwrap(),
            "--replace",
        ],
        &[],
    )
    .await;
    assert_ne!(code, 0, "{stderr}");
    assert!(stderr.contains("in use"), "{stderr}");
    wait_for(
        &serve.base,
        Duration::from_secs(120),
        "the rest stored",
        |h| {
            h["observations"].as_u64().unwrap_or(0) >= TOTAL - backed_up
                && h["sources"][0]["nextSequence"].as_u64() == Some(TOTAL + 1)
        },
    )
    .await;
    let status = serve.terminate(Duration::from_secs(15)).await;
    assert!(status.success());
    let store = SqliteStore::open(second.join("factorydash.db"))
        .await
        .unwrap();
    assert_eq!(store.observation_count().await.unwrap(), TOTAL, "each once");
    assert_eq!(store.gaps().await.unwrap(), vec![], "no gap");
    drop(store);
    drop(agent);
    let _ = std::fs::remove_dir_all(&root);
}

/// The observations of the database `client` is connected to.
async fn count(client: &tokio_postgres::Client) -> i64 {
    client
        .query_one("SELECT count(*) FROM public.observations", &[])
        .await
        .unwrap()
        .get(0)
}

/// The fixture at `tests/data/upgrade/NAME`, gunzipped.
fn upgrade_fixture(name: &str) -> Vec<u8> {
    use std::io::Read;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/upgrade")
        .join(name);
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap())
        .read_to_end(&mut bytes)
        .unwrap();
    bytes
}

/// An SQLite store made by the previous release: `migrate --check` changes nothing and
/// says what would change; `migrate` (as `serve` on start) keeps every observation and
/// resume point. The same store marked by a newer release is refused, byte for byte
/// unchanged.
#[tokio::test]
async fn an_sqlite_store_of_the_previous_release_is_migrated_and_a_newer_one_refused() {
    use factorydash_store::{sqlite::SqliteStore, Store};
    let dir = std::env::temp_dir().join(format!("factorydash-upgrade-{}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("factorydash.db");
    let fixture = upgrade_fixture("sqlite-schema-3.db.gz");
    std::fs::write(&file, &fixture).unwrap();
    let data_dir = dir.to_str().unwrap();

    let (code, said) = run(&["migrate", "--check", "--data-dir", data_dir], &[]).await;
    assert_eq!(code, 0, "{said}");
    assert!(said.contains("schema version 3"), "{said}");
    assert_eq!(
        std::fs::read(&file).unwrap(),
        fixture,
        "--check changes nothing"
    );
    // What the fixture holds, read by a backup (which writes nothing to its source).
    let copy = dir.join("before.db");
    let (code, said) = run(
        &[
            "backup",
            "--data-dir",
            data_dir,
            "--out",
            copy.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert_eq!(code, 0, "{said}");
    let held: u64 = said
        .split(": ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{said}"));
    assert!(held > 1000, "{said}");

    let (code, said) = run(&["migrate", "--data-dir", data_dir], &[]).await;
    assert_eq!(code, 0, "{said}");
    let store = SqliteStore::open(&file).await.unwrap();
    assert_eq!(store.observation_count().await.unwrap(), held);
    let agent = store.devices().await.unwrap()[0].agent.clone();
    assert!(store.resume_point(&agent).await.unwrap().is_some());
    drop(store);

    // A newer release's store: its user_version (bytes 60..64 of the header) is 99.
    let mut newer = fixture.clone();
    newer[60..64].copy_from_slice(&99u32.to_be_bytes());
    std::fs::remove_file(&file).unwrap();
    for side in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(dir.join(format!("factorydash.db{side}")));
    }
    std::fs::write(&file, &newer).unwrap();
    let (code, said) = run(&["migrate", "--check", "--data-dir", data_dir], &[]).await;
    assert_ne!(code, 0, "{said}");
    assert!(said.contains("newer"), "{said}");
    let (code, said) = run(
        &[
            "serve",
            "--data-dir",
            data_dir,
            "--listen",
            "127.0.0.1:0",
            "--demo",
        ],
        &[],
    )
    .await;
    assert_ne!(code, 0, "{said}");
    assert!(said.contains("version 99, newer than this build"), "{said}");
    assert_eq!(std::fs::read(&file).unwrap(), newer, "left as it was");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A PostgreSQL store made by the previous release (a `pg_dump` of it): `migrate --check`
/// changes nothing, `migrate` keeps every row; marked by a newer release, it is refused.
#[tokio::test]
async fn a_postgresql_store_of_the_previous_release_is_migrated_and_a_newer_one_refused() {
    let Some(server) = postgres_url("postgresql_store_of_the_previous_release") else {
        return;
    };
    let db = FreshDb::create(&server, "upgrade").await;
    let client = db.connect().await;
    let dump = String::from_utf8(upgrade_fixture("postgres-schema-6.sql.gz")).unwrap();
    client.batch_execute(&dump).await.unwrap();
    let held = count(&client).await;
    assert!(held > 1000);
    let url = db.url.as_str();
    let (code, said) = run(&["migrate", "--check", "--database-url", url], &[]).await;
    assert_eq!(code, 0, "{said}");
    assert!(said.contains("schema version 6"), "{said}");
    let (code, said) = run(&["migrate", "--database-url", url], &[]).await;
    assert_eq!(code, 0, "{said}");
    assert_eq!(count(&client).await, held, "every row kept");

    client
        .execute(
            "INSERT INTO public.factorydash_migrations (version) VALUES (99)",
            &[],
        )
        .await
        .unwrap();
    let (code, said) = run(&["migrate", "--check", "--database-url", url], &[]).await;
    assert_ne!(code, 0, "{said}");
    assert!(said.contains("newer"), "{said}");
    let (code, said) = run(
        &[
            "serve",
            "--database-url",
            url,
            "--listen",
            "127.0.0.1:0",
            "--demo",
        ],
        &[],
    )
    .await;
    assert_ne!(code, 0, "{said}");
    assert!(said.contains("version 99, newer than this build"), "{said}");
    assert_eq!(count(&client).await, held, "left as it was");
    drop(client);
    db.drop().await;
}
