//! TLS against a real server: a private cluster of the test's own with `ssl = on`, a CA
//! and a server certificate made for the test (`openssl`), and a `pg_hba.conf` that
//! accepts TLS connections only (`hostssl`, password authentication).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

use factorydash_store::postgres::{PgConfig, PgStore, SslMode};
use factorydash_store::{Store, StoreError};

const PASSWORD: &str = "fd-tls-secret";

/// `e` and its sources, joined by `": "`.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// A minimal copy of factorydash-server's `PrivateServer` (test crates share no code),
/// with TLS: `initdb` into a temporary directory (as `postgres` when the tests run as
/// root), listening on a free port of 127.0.0.1. Stopped and removed when dropped.
struct TlsServer {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    /// `ssl = on`, and `hostssl` only in `pg_hba.conf`; else no TLS at all.
    tls: bool,
}

impl TlsServer {
    /// A server that accepts TLS connections only.
    fn start(test: &str) -> Option<TlsServer> {
        Self::start_with(test, true)
    }

    /// With `tls`, a server that accepts TLS connections only; without, one that has no
    /// TLS. `None` (with a note) when PostgreSQL's programs or `openssl` are missing and
    /// `FACTORYDASH_REQUIRE_POSTGRES` is not `1`.
    fn start_with(test: &str, tls: bool) -> Option<TlsServer> {
        let bin = Command::new("pg_config")
            .arg("--bindir")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
            .filter(|b| b.join("initdb").exists() && b.join("pg_ctl").exists());
        let openssl = Command::new("openssl")
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success());
        let (Some(bin), true) = (bin, openssl) else {
            assert!(
                std::env::var(crate::pg::REQUIRE_VAR).as_deref() != Ok("1"),
                "{}=1 but initdb and pg_ctl (pg_config --bindir) or openssl are not found",
                crate::pg::REQUIRE_VAR
            );
            eprintln!(
                "SKIPPED: {test}: PostgreSQL's initdb and pg_ctl, or openssl, are not installed"
            );
            return None;
        };
        let dir = std::env::temp_dir().join(format!(
            "factorydash-pgtls-{test}-{}",
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = TlsServer {
            dir,
            bin,
            port,
            tls,
        };
        server.make_certificates();
        std::fs::write(server.dir.join("pw"), PASSWORD).unwrap();
        server.chown();
        let data = server.dir.join("data");
        let pwfile = server.dir.join("pw");
        server.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--pwfile",
                pwfile.to_str().unwrap(),
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        // TLS connections only (or plain only), with a password; the Unix socket for
        // pg_ctl.
        let kind = if tls { "hostssl" } else { "host" };
        std::fs::write(
            data.join("pg_hba.conf"),
            format!(
                "local all all trust\n\
                 {kind} all all 127.0.0.1/32 scram-sha-256\n\
                 {kind} all all ::1/128 scram-sha-256\n"
            ),
        )
        .unwrap();
        server.chown();
        server.pg_ctl(&["start"]);
        Some(server)
    }

    /// The test CA (`ca.pem`) and a certificate it signs for `localhost` and 127.0.0.1.
    fn make_certificates(&self) {
        let d = &self.dir;
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(d)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let mut ca = vec!["req", "-x509"];
        ca.extend_from_slice(&ec);
        ca.extend_from_slice(&[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=factorydash test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(&ca);
        let mut csr = vec!["req"];
        csr.extend_from_slice(&ec);
        csr.extend_from_slice(&[
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ]);
        openssl(&csr);
        std::fs::write(
            d.join("ext.cnf"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n\
             basicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature\n\
             extendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(d.join("server.key"), std::fs::Permissions::from_mode(0o600))
                .unwrap();
        }
    }

    fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    fn as_root() -> bool {
        Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
    }

    fn chown(&self) {
        if Self::as_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&self.dir)
                .status()
                .unwrap();
            assert!(status.success(), "chown the server's directory to postgres");
        }
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if Self::as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    /// Runs one of PostgreSQL's programs; panics when it fails.
    fn run(&self, program: &str, args: &[&str]) {
        let output = self.command(program).args(args).output().unwrap();
        assert!(
            output.status.success(),
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn pg_ctl(&self, action: &[&str]) {
        let data = self.dir.join("data");
        let log = self.dir.join("log");
        let mut options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display(),
        );
        if self.tls {
            options.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                self.dir.join("server.crt").display(),
                self.dir.join("server.key").display(),
            ));
        } else {
            options.push_str(" -c ssl=off");
        }
        let mut args = vec![
            "-D",
            data.to_str().unwrap(),
            "-l",
            log.to_str().unwrap(),
            "-w",
            "-o",
            &options,
        ];
        args.extend_from_slice(action);
        self.run("pg_ctl", &args);
    }

    /// A URL to the server with `query` (e.g. `sslmode=require`): host `localhost`
    /// reached at 127.0.0.1 (`hostaddr`), so that the name checked is `localhost`.
    fn url(&self, host: &str, query: &str) -> String {
        format!(
            "postgres://postgres:{PASSWORD}@{host}:{}/postgres?hostaddr=127.0.0.1&{query}",
            self.port
        )
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = self
            .command("pg_ctl")
            .args(["-D", data.to_str().unwrap(), "-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether every client session of the server is encrypted, and how many there are.
async fn sessions_all_encrypted(server: &TlsServer) -> (bool, i64) {
    let config = PgConfig::from_url(&server.url("localhost", "sslmode=require")).unwrap();
    let (client, conn) = config
        .config()
        .connect(config.tls_connector().unwrap())
        .await
        .unwrap();
    tokio::spawn(conn);
    let row = client
        .query_one(
            "SELECT bool_and(s.ssl), count(*) FROM pg_stat_ssl s
             JOIN pg_stat_activity a USING (pid)
             WHERE a.backend_type = 'client backend'",
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

async fn connect(url: &str) -> Result<PgStore, StoreError> {
    PgStore::connect(url).await
}

/// Whether the session of a fresh connection made as `url` says is encrypted.
async fn session_is_encrypted(url: &str) -> Result<bool, String> {
    let config = PgConfig::from_url(url).map_err(|e| chain(&e))?;
    let tls = config.tls_connector().map_err(|e| chain(&e))?;
    let (client, conn) = config.config().connect(tls).await.map_err(|e| chain(&e))?;
    tokio::spawn(conn);
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .map_err(|e| chain(&e))?;
    Ok(row.get(0))
}

#[tokio::test]
async fn sslmodes_against_a_server_that_requires_tls() {
    let Some(server) = TlsServer::start("sslmodes") else {
        return;
    };
    let ca = server.ca();
    let ca = ca.to_str().unwrap();

    // require: encrypted, whatever the certificate.
    assert_eq!(
        session_is_encrypted(&server.url("localhost", "sslmode=require")).await,
        Ok(true)
    );
    let store = connect(&server.url("localhost", "sslmode=require"))
        .await
        .expect("a store with sslmode=require");
    store.ping().await.unwrap();
    // prefer (the default): the server offers TLS, so TLS.
    assert_eq!(
        session_is_encrypted(&server.url("localhost", "sslmode=prefer")).await,
        Ok(true)
    );
    // verify-full with the test CA, the certificate's name.
    assert_eq!(
        session_is_encrypted(&server.url(
            "localhost",
            &format!("sslmode=verify-full&sslrootcert={ca}")
        ))
        .await,
        Ok(true)
    );
    let verified = connect(&server.url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    ))
    .await
    .expect("a store with sslmode=verify-full");
    verified.ping().await.unwrap();

    // verify-full without the CA: the chain is not trusted.
    let e = connect(&server.url("localhost", "sslmode=verify-full"))
        .await
        .expect_err("an unknown CA is refused");
    let text = chain(&e);
    eprintln!("verify-full without the CA: {text}");
    assert!(matches!(e, StoreError::Connect { .. }), "{text}");
    assert!(
        text.contains("verify-full") && text.contains(&format!("localhost:{}", server.port)),
        "the mode and the server are named: {text}"
    );
    assert!(
        text.contains("TLS") && text.to_lowercase().contains("certificate"),
        "the cause is the certificate: {text}"
    );

    // A name the certificate does not hold: verify-full refuses, verify-ca accepts.
    let e = connect(&server.url(
        "not-the-name.invalid",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    ))
    .await
    .expect_err("a name mismatch is refused by verify-full");
    eprintln!("verify-full, another name: {}", chain(&e));
    assert!(chain(&e).contains("not-the-name.invalid"), "{}", chain(&e));
    assert_eq!(
        session_is_encrypted(&server.url(
            "not-the-name.invalid",
            &format!("sslmode=verify-ca&sslrootcert={ca}")
        ))
        .await,
        Ok(true),
        "verify-ca checks the chain only"
    );
    // require with a CA file is verify-ca, as in libpq: a foreign CA is refused.
    let foreign = server.dir.join("server.crt");
    let e = session_is_encrypted(&server.url(
        "localhost",
        &format!("sslmode=require&sslrootcert={}", foreign.display()),
    ))
    .await
    .expect_err("require with sslrootcert verifies the chain");
    assert!(e.contains("certificate"), "{e}");

    // disable against hostssl only: the server says no, clearly.
    let e = connect(&server.url("localhost", "sslmode=disable"))
        .await
        .expect_err("a plain connection is refused");
    let text = chain(&e);
    eprintln!("disable against hostssl: {text}");
    assert!(
        text.contains("sslmode=disable") && text.contains("pg_hba.conf"),
        "{text}"
    );
    drop(store);
    drop(verified);
}

/// The store from libpq's variables alone (given as a map): the password from a password
/// file, verify-full with the test CA; and every connection it opens (pool, ingest,
/// agent lock, `LISTEN`) is encrypted.
#[tokio::test]
async fn pg_variables_give_a_working_store_over_tls() {
    let Some(server) = TlsServer::start("pgenv") else {
        return;
    };
    let pgpass = server.dir.join("pgpass");
    std::fs::write(
        &pgpass,
        format!(
            "otherhost:*:*:*:wrong\nlocalhost:{}:*:postgres:{PASSWORD}\n",
            server.port
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let env: HashMap<String, String> = [
        ("PGHOST", "localhost".to_string()),
        ("PGPORT", server.port.to_string()),
        ("PGUSER", "postgres".into()),
        ("PGDATABASE", "postgres".into()),
        ("PGSSLMODE", "verify-full".into()),
        ("PGSSLROOTCERT", server.ca().display().to_string()),
        ("PGPASSFILE", pgpass.display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let config = PgConfig::resolve(None, &env)
        .unwrap()
        .expect("PG variables select PostgreSQL");
    assert_eq!(config.ssl_mode(), SslMode::VerifyFull);
    assert!(!config.summary().contains(PASSWORD));
    let store = PgStore::connect_config(&config)
        .await
        .unwrap_or_else(|e| panic!("{}", chain(&e)));
    store.ping().await.unwrap();
    assert!(store.devices().await.unwrap().is_empty());
    let lock = store
        .try_lock_agent("http://127.0.0.1:5000")
        .await
        .unwrap()
        .expect("the lock is free");
    let _listening = store.listen(4).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let (all, sessions) = sessions_all_encrypted(&server).await;
    assert!(all, "every session is encrypted");
    assert!(
        sessions >= 4,
        "ingest, a pooled reader, the lock, LISTEN and this one: {sessions}"
    );
    drop(lock);
}

/// `prefer` (the default) against a server without TLS: plain, as libpq; `require`
/// refuses it, saying so.
#[tokio::test]
async fn prefer_falls_back_to_plain_and_require_refuses_a_server_without_tls() {
    let Some(server) = TlsServer::start_with("notls", false) else {
        return;
    };
    assert_eq!(
        session_is_encrypted(&server.url("localhost", "sslmode=prefer")).await,
        Ok(false)
    );
    let store = connect(&server.url("localhost", "application_name=fd"))
        .await
        .expect("the default, prefer, connects in plain text");
    store.ping().await.unwrap();
    let e = connect(&server.url("localhost", "sslmode=require"))
        .await
        .expect_err("require needs TLS");
    let text = chain(&e);
    eprintln!("require against no TLS: {text}");
    assert!(
        text.contains("sslmode=require") && text.contains("TLS"),
        "{text}"
    );
}

#[test]
fn unknown_sslmode_is_refused_with_the_accepted_ones() {
    let e = PgConfig::from_url("postgres://u@h/db?sslmode=verify_full").unwrap_err();
    assert!(e.to_string().contains("verify-full"), "{e}");
}
