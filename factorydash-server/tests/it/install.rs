//! Run the way a plant's IT runs services: the configuration containers and compose files
//! use (`DATABASE_URL`, `POSTGRES_*`), logs for files and journals, the built-in demo and
//! the health check a container runs.

use std::time::Duration;

use crate::support::{get_text, postgres_url, start_logged, wait_for, FreshDb};

/// `factorydash ARGS` with `env` added, run to its end (at most 30 s): (exit code, stderr).
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
        String::from_utf8_lossy(&out.stderr).into_owned(),
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
