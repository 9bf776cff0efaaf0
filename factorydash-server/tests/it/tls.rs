//! HTTPS (`serve --tls-cert/--tls-key`, `--tls-self-signed`, `--hsts`, `--http-redirect`)
//! over real TLS on 127.0.0.1: a CA and server certificates made here with rcgen, clients
//! that trust that CA only and look at the certificate the server presents.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;

/// A test CA.
pub(crate) struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A server certificate and its key, PEM, and the certificate's DER.
pub(crate) struct Leaf {
    pub(crate) cert_pem: String,
    pub(crate) key_pem: String,
    pub(crate) der: CertificateDer<'static>,
}

impl Ca {
    pub(crate) fn new() -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "factorydash test CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Ca { issuer }
    }

    pub(crate) fn pem(&self) -> String {
        self.issuer.pem()
    }

    fn der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// A certificate for localhost and 127.0.0.1 named `cn`, with a new key.
    pub(crate) fn leaf(&self, cn: &str) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }
}

/// A new empty directory.
fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fd-tls-{what}-{}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `text` to `path` as a renewal tool does: a new file renamed over the old.
fn replace(path: &Path, text: &str) {
    let new = path.with_extension("new");
    std::fs::write(&new, text).unwrap();
    std::fs::rename(&new, path).unwrap();
}

/// Writes `leaf` to `dir`/cert.pem and key.pem; their paths.
fn write_leaf(dir: &Path, leaf: &Leaf) -> (String, String) {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    replace(&key, &leaf.key_pem);
    replace(&cert, &leaf.cert_pem);
    (
        cert.to_str().unwrap().to_owned(),
        key.to_str().unwrap().to_owned(),
    )
}

/// A running `factorydash`, killed when dropped, with what it printed first on stdout
/// and what it logs (at info).
struct Server {
    child: Child,
    /// `https://127.0.0.1:PORT`
    base: String,
    /// The lines printed on stdout, up to the one wanted.
    printed: Vec<String>,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// `factorydash ARGS`, its stdout read until a line holding `until`.
    async fn start(args: &[&str], until: &str) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_factorydash"))
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let mut errors = BufReader::new(child.stderr.take().unwrap()).lines();
        let keep = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = errors.next_line().await {
                eprintln!("{line}");
                let mut log = keep.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut printed = Vec::new();
        while !printed.iter().any(|l: &String| l.contains(until)) {
            let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
                .await
                .expect("factorydash prints within 60 s")
                .unwrap()
                .unwrap_or_else(|| panic!("stdout ended: {printed:?}; {}", log.lock().unwrap()));
            printed.push(line);
        }
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let base = printed
            .iter()
            .find_map(|l| l.split("dashboard at ").nth(1))
            .expect("the address")
            .trim_end_matches('/')
            .to_owned();
        Server {
            child,
            base,
            printed,
            log,
        }
    }

    /// `127.0.0.1:PORT`
    fn address(&self) -> &str {
        self.base.trim_start_matches("https://")
    }

    /// What follows `prefix` in a line printed on stdout.
    fn printed_after(&self, prefix: &str) -> String {
        self.printed
            .iter()
            .find_map(|l| l.split(prefix).nth(1))
            .unwrap_or_else(|| panic!("no {prefix:?} in {:?}", self.printed))
            .trim()
            .to_owned()
    }

    /// Waits until `text` is in the log, at most 20 s.
    async fn logged(&self, text: &str) {
        let since = Instant::now();
        while !self.log.lock().unwrap().contains(text) {
            assert!(
                since.elapsed() < Duration::from_secs(20),
                "{text:?} not logged: {}",
                self.log.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM, once the demo plays (`serve` does not see a SIGTERM that comes while it
    /// starts playing it), and the exit.
    async fn stop(mut self) {
        self.logged("playing a recording").await;
        let pid = self.child.id().unwrap().to_string();
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("stops")
            .unwrap();
    }
}

/// A reqwest client that trusts the CA `pem` only (not the web's roots).
fn client_trusting(pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A rustls client configuration that trusts `root` only, and makes a full handshake
/// each time (a resumed session would not show the certificate the server has now).
fn rustls_trusting(root: CertificateDer<'static>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

/// A new TLS connection to `address` (checked against `config`'s roots for 127.0.0.1).
async fn connect(
    address: &str,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let tcp = tokio::net::TcpStream::connect(address).await?;
    tokio_rustls::TlsConnector::from(config)
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
}

/// The certificate the server at `address` presents to a new connection.
async fn presented(address: &str, config: Arc<rustls::ClientConfig>) -> CertificateDer<'static> {
    let tls = connect(address, config).await.unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].clone()
}

/// The SHA-256 fingerprint as the server prints it.
fn fingerprint(der: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[tokio::test(flavor = "multi_thread")]
async fn https_with_a_certificate_that_is_replaced_without_a_restart() {
    let ca = Ca::new();
    let dir = temp_dir("reload");
    let first = ca.leaf("first");
    let (cert, key) = write_leaf(&dir, &first);
    let server = Server::start(
        &[
            "serve",
            "--demo",
            "--store",
            "memory",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
        ],
        "fingerprint",
    )
    .await;
    assert!(
        server.base.starts_with("https://127.0.0.1:"),
        "{}",
        server.base
    );
    assert_eq!(
        server.printed_after("SHA-256 fingerprint "),
        fingerprint(&first.der)
    );

    // A client that trusts the test CA only: the dashboard over HTTPS; no HSTS unless
    // asked.
    let client = client_trusting(&ca.pem());
    let health = client
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    assert!(health.headers().get("strict-transport-security").is_none());
    let page = client
        .get(format!("{}/", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(page.text().await.unwrap().contains("<html"));
    // One that trusts the web's roots (not the test CA) is refused.
    assert!(reqwest::get(format!("{}/healthz", server.base))
        .await
        .is_err());

    // Plain HTTP on the HTTPS port gets no HTTP answer.
    assert!(reqwest::get(format!("http://{}/healthz", server.address()))
        .await
        .is_err());
    let mut tcp = tokio::net::TcpStream::connect(server.address())
        .await
        .unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer)).await;
    assert!(!answer.starts_with(b"HTTP/"), "{answer:?}");

    let rustls = rustls_trusting(ca.der());
    assert_eq!(presented(server.address(), rustls.clone()).await, first.der);
    // A connection open before the renewal keeps working after it.
    let mut before = connect(server.address(), rustls.clone()).await.unwrap();

    // The files replaced (a renewal): new connections get the new certificate within the
    // poll (5 s), without a restart.
    let second = ca.leaf("second");
    write_leaf(&dir, &second);
    let renewed = Instant::now();
    loop {
        if presented(server.address(), rustls.clone()).await == second.der {
            break;
        }
        assert!(
            renewed.elapsed() < Duration::from_secs(10),
            "the new certificate within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    eprintln!("new certificate served after {:?}", renewed.elapsed());
    before
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), before.read_to_string(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // A renewal that goes wrong (a key that is not the certificate's, then a file that is
    // not PEM) keeps the certificate in use, with a warning.
    let third = ca.leaf("third");
    replace(&dir.join("key.pem"), &third.key_pem);
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(
        presented(server.address(), rustls.clone()).await,
        second.der
    );
    replace(&dir.join("cert.pem"), "not a certificate");
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(
        presented(server.address(), rustls.clone()).await,
        second.der
    );
    {
        let log = server.log.lock().unwrap();
        assert_eq!(
            log.matches("cannot reload the TLS certificate; keeping the one in use")
                .count(),
            2,
            "{log}"
        );
    }
    // The pair completed: taken.
    replace(&dir.join("cert.pem"), &third.cert_pem);
    let renewed = Instant::now();
    while presented(server.address(), rustls.clone()).await != third.der {
        assert!(renewed.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // SIGHUP reloads (and does not stop the server).
    let pid = server.child.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    server.logged("why=\"SIGHUP\"").await;
    let health = client
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_handshake_is_cut_off() {
    let ca = Ca::new();
    let dir = temp_dir("handshake");
    let (cert, key) = write_leaf(&dir, &ca.leaf("slow"));
    let server = Server::start(
        &[
            "serve",
            "--demo",
            "--store",
            "memory",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
        ],
        "fingerprint",
    )
    .await;
    // Connected, and nothing said: closed after the handshake's 10 s.
    let mut tcp = tokio::net::TcpStream::connect(server.address())
        .await
        .unwrap();
    let since = Instant::now();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(20), tcp.read(&mut buf))
        .await
        .expect("closed within 20 s");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let after = since.elapsed();
    assert!(
        after >= Duration::from_secs(9) && after < Duration::from_secs(15),
        "{after:?}"
    );
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn hsts_secure_cookies_redirect_and_websocket() {
    let ca = Ca::new();
    let dir = temp_dir("redirect");
    let (cert, key) = write_leaf(&dir, &ca.leaf("dash"));
    const VIEWER: &str = "viewer:0123456789abcdefv";
    let server = Server::start(
        &[
            "serve",
            "--demo",
            "--store",
            "memory",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--hsts",
            "--http-redirect",
            "127.0.0.1:0",
            "--allowed-host",
            "dash.plant.example",
            "--token",
            VIEWER,
        ],
        "redirecting",
    )
    .await;
    let port = server.address().rsplit_once(':').unwrap().1.to_owned();
    let client = client_trusting(&ca.pem());

    // HSTS on every HTTPS answer.
    let health = client
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    assert_eq!(
        health.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    let refused = client
        .get(format!("{}/", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    assert_eq!(
        refused.headers()["strict-transport-security"],
        "max-age=31536000"
    );

    // The token cookie is Secure over HTTPS.
    let secret = VIEWER.split_once(':').unwrap().1;
    let signed_in = client
        .get(format!("{}/?token={secret}", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status().as_u16(), 303);
    let cookie = signed_in.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.ends_with("; Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");

    // Plain HTTP on the redirect port: 308 to the same path and query on HTTPS, at the
    // host asked for when it is the dashboard's.
    let plain = server.printed_after("redirecting http://");
    let plain = plain.split('/').next().unwrap().to_owned();
    let plain_client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let ask = |host: Option<&'static str>, path: &'static str| {
        let mut r = plain_client.get(format!("http://{plain}{path}"));
        if let Some(h) = host {
            r = r.header("host", h);
        }
        async move { r.send().await.unwrap() }
    };
    let r = ask(None, "/device?device=Mazak01&x=%2F").await;
    assert_eq!(r.status().as_u16(), 308);
    assert_eq!(
        r.headers()["location"],
        format!("https://127.0.0.1:{port}/device?device=Mazak01&x=%2F").as_str()
    );
    let r = ask(Some("localhost:8080"), "/").await;
    assert_eq!(r.status().as_u16(), 308);
    assert_eq!(
        r.headers()["location"],
        format!("https://localhost:{port}/").as_str()
    );
    let r = ask(Some("dash.plant.example"), "/agents").await;
    assert_eq!(
        r.headers()["location"],
        format!("https://dash.plant.example:{port}/agents").as_str()
    );
    let r = ask(Some("[::1]:80"), "/").await;
    assert_eq!(
        r.headers()["location"],
        format!("https://[::1]:{port}/").as_str()
    );
    // Not to another site.
    for host in ["evil.example", "evil.example:80", "localhost.evil.example"] {
        let r = ask(Some(host), "/").await;
        assert_eq!(r.status().as_u16(), 421, "{host}");
        assert!(r.headers().get("location").is_none());
    }
    // The redirect is followed to the dashboard by a client that trusts the CA.
    let following = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let r = following
        .get(format!("http://{plain}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.url().scheme(), "https");

    // The live WebSocket over TLS (HTTP/1.1 upgrade), with the token.
    let tls = connect(server.address(), rustls_trusting(ca.der()))
        .await
        .unwrap();
    let request = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("wss://{}/ws", server.address()),
    )
    .map(|mut r| {
        r.headers_mut()
            .insert("authorization", format!("Bearer {secret}").parse().unwrap());
        r
    })
    .unwrap();
    let (mut ws, response) = tokio_tungstenite::client_async(request, tls).await.unwrap();
    assert_eq!(response.status().as_u16(), 101);
    let hello = loop {
        let m = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("a message within 20 s")
            .unwrap()
            .unwrap();
        if let Message::Text(t) = m {
            break serde_json::from_str::<serde_json::Value>(t.as_str()).unwrap();
        }
    };
    assert_eq!(hello["type"], "hello");
    drop(ws);

    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_self_signed_certificate_is_made_once_and_kept() {
    let data = temp_dir("self-signed");
    let args = [
        "serve",
        "--demo",
        "--store",
        "memory",
        "--listen",
        "127.0.0.1:0",
        "--tls-self-signed",
        "--data-dir",
        data.to_str().unwrap(),
    ];
    let server = Server::start(&args, "fingerprint").await;
    let cert_file = data.join("tls-cert.pem");
    let key_file = data.join("tls-key.pem");
    for file in [&cert_file, &key_file] {
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(file).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600, "{}", file.display());
    }
    let pem = std::fs::read_to_string(&cert_file).unwrap();
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
    let printed = server.printed_after("SHA-256 fingerprint ");
    assert_eq!(printed, fingerprint(&der));
    server.logged(&format!("fingerprint={printed}")).await;

    // The certificate is the one served, and is good for 127.0.0.1 to a client that
    // trusts it.
    assert_eq!(
        presented(server.address(), rustls_trusting(der.clone())).await,
        der
    );
    let health = client_trusting(&pem)
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    // `factorydash healthcheck` finds HTTPS on the port.
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_factorydash"))
        .args(["healthcheck", "--listen", server.address()])
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(String::from_utf8_lossy(&check.stdout).contains("200"));
    server.stop().await;

    // A second start keeps it.
    let key = std::fs::read_to_string(&key_file).unwrap();
    let again = Server::start(&args, "fingerprint").await;
    assert_eq!(again.printed_after("SHA-256 fingerprint "), printed);
    assert_eq!(std::fs::read_to_string(&cert_file).unwrap(), pem);
    assert_eq!(std::fs::read_to_string(&key_file).unwrap(), key);
    again.stop().await;
    let _ = std::fs::remove_dir_all(&data);
}

/// `factorydash ARGS` exits with an error; what it said.
async fn refused(args: &[&str]) -> String {
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        Command::new(env!("CARGO_BIN_EXE_factorydash"))
            .args(args)
            .env("FACTORYDASH_STORE", "memory")
            .output(),
    )
    .await
    .expect("exits within 30 s")
    .unwrap();
    assert!(!out.status.success(), "{args:?} was not refused");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn options_without_tls_and_bad_files_are_refused_at_start() {
    let base = ["serve", "--demo", "--listen", "127.0.0.1:0"];
    fn with<'a>(base: &[&'a str], more: &[&'a str]) -> Vec<&'a str> {
        base.iter().chain(more).copied().collect()
    }
    let said = refused(&with(&base, &["--hsts"])).await;
    assert!(said.contains("--hsts") && said.contains("HTTPS"), "{said}");
    let said = refused(&with(&base, &["--http-redirect", "127.0.0.1:0"])).await;
    assert!(said.contains("--http-redirect"), "{said}");

    let ca = Ca::new();
    let dir = temp_dir("refused");
    let (cert, key) = write_leaf(&dir, &ca.leaf("x"));
    let said = refused(&with(&base, &["--tls-cert", &cert])).await;
    assert!(said.contains("--tls-key"), "{said}");
    let said = refused(&with(
        &base,
        &["--tls-cert", &cert, "--tls-key", &key, "--tls-self-signed"],
    ))
    .await;
    assert!(said.contains("--tls-self-signed"), "{said}");
    // A key that is not the certificate's.
    let other = dir.join("other-key.pem");
    std::fs::write(&other, ca.leaf("y").key_pem).unwrap();
    let said = refused(&with(
        &base,
        &["--tls-cert", &cert, "--tls-key", other.to_str().unwrap()],
    ))
    .await;
    assert!(said.contains("cannot serve the certificate"), "{said}");
    // A file over 1 MiB is not read.
    let huge = dir.join("huge.pem");
    std::fs::write(&huge, "A".repeat((1 << 20) + 1)).unwrap();
    let said = refused(&with(
        &base,
        &["--tls-cert", huge.to_str().unwrap(), "--tls-key", &key],
    ))
    .await;
    assert!(said.contains("larger than"), "{said}");
    let _ = std::fs::remove_dir_all(&dir);
}
