//! HTTPS: `serve --tls-cert FILE --tls-key FILE` or `--tls-self-signed`, on rustls with
//! the ring provider (the TLS stack reqwest already brings).
//!
//! - The certificate is reloaded without a restart on SIGHUP and when either file changes
//!   (their modification time, size or inode, looked at every [`POLL`]), so a renewal
//!   (certbot, an ACME client, a PKI's agent) needs nothing more. New handshakes get the
//!   new certificate ([`Certificates`] is rustls' certificate resolver); connections open
//!   keep theirs. A reload that fails (a half-written file, a key that does not match)
//!   keeps the certificate in use and logs a warning; it is tried again when the files
//!   change again.
//! - A certificate or key file larger than [`MAX_PEM_FILE`] is refused, at start and on
//!   reload.
//! - A TLS handshake must end within [`HANDSHAKE_TIMEOUT`]: a client that connects and
//!   says nothing holds its connection that long at most.
//! - `--tls-self-signed`: a key (ECDSA P-256) and a self-signed certificate for
//!   `localhost`, `127.0.0.1`, `::1`, the machine's host name and the `--allowed-host`
//!   names, made on the first start in `--data-dir` (`tls-cert.pem`, `tls-key.pem`, mode
//!   0600) and kept; the SHA-256 fingerprint is printed, to compare with what the browser
//!   shows. It is valid for [`SELF_SIGNED_DAYS`] days (Apple's limit for any TLS server
//!   certificate) and made anew on a start within [`SELF_SIGNED_RENEW_DAYS`] days of its
//!   end.
//! - Over HTTPS every `Set-Cookie` gets `Secure`, and with `--hsts` every answer has
//!   `Strict-Transport-Security: max-age=31536000` ([`https_answers`]).
//! - `--http-redirect ADDR`: plain HTTP on ADDR, each request answered 308 to the same
//!   path on HTTPS at a host the dashboard answers for ([`redirect`]; 421 for any other
//!   `Host`, so it is not an open redirect).

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::{Reply, Response};
use warp::Filter;

use crate::host::AllowedHosts;

/// The largest certificate (chain) or key file taken, in bytes.
pub const MAX_PEM_FILE: usize = 1 << 20;

/// How long a client has for its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the certificate and key files are looked at for a change.
pub const POLL: Duration = Duration::from_secs(5);

/// `Strict-Transport-Security` with `--hsts`: a year.
pub const HSTS: &str = "max-age=31536000";

/// How long a self-signed certificate is valid.
pub const SELF_SIGNED_DAYS: i64 = 825;

/// A self-signed certificate this close to its end (its file's age says) is made anew at
/// start.
pub const SELF_SIGNED_RENEW_DAYS: i64 = 30;

/// The self-signed certificate's file in the data directory.
pub const SELF_SIGNED_CERT: &str = "tls-cert.pem";

/// The self-signed certificate's key in the data directory.
pub const SELF_SIGNED_KEY: &str = "tls-key.pem";

/// A certificate chain and its key, in PEM files.
#[derive(Debug, Clone)]
pub struct Files {
    /// The chain: the server's certificate first, then intermediates.
    pub cert: PathBuf,
    /// The private key: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
    pub key: PathBuf,
}

/// HTTPS as `serve`'s options ask, checked: the certificate's files, `--hsts`,
/// `--http-redirect`.
#[derive(Debug)]
pub struct Settings {
    /// The certificate's files.
    pub files: Files,
    /// Whether they were made here (`--tls-self-signed`).
    pub self_signed: bool,
    /// `--hsts`.
    pub hsts: bool,
    /// `--http-redirect`.
    pub redirect: Option<SocketAddr>,
}

/// What `serve`'s options say of HTTPS: `None` for plain HTTP. A certificate without its
/// key (or the reverse), `--tls-self-signed` with a certificate, and `--hsts` or
/// `--http-redirect` without TLS are refused. `--tls-self-signed` makes (or finds) its
/// files in `data_dir`, for the `names` the dashboard answers for.
///
/// # Errors
/// The options do not go together; the self-signed certificate cannot be made or kept.
pub fn settings(
    cert: Option<&Path>,
    key: Option<&Path>,
    self_signed: bool,
    hsts: bool,
    redirect: Option<SocketAddr>,
    data_dir: &Path,
    names: &[String],
) -> anyhow::Result<Option<Settings>> {
    let files = match (cert, key, self_signed) {
        (Some(_), _, true) | (_, Some(_), true) => anyhow::bail!(
            "--tls-self-signed (FACTORYDASH_TLS_SELF_SIGNED) makes its own certificate: give it or --tls-cert and --tls-key, not both"
        ),
        (Some(cert), Some(key), false) => Some(Files {
            cert: cert.to_owned(),
            key: key.to_owned(),
        }),
        (Some(_), None, false) => {
            anyhow::bail!("--tls-cert needs --tls-key (FACTORYDASH_TLS_KEY): the certificate's private key")
        }
        (None, Some(_), false) => {
            anyhow::bail!("--tls-key needs --tls-cert (FACTORYDASH_TLS_CERT): the certificate (chain) of the key")
        }
        (None, None, true) => Some(self_signed_files(data_dir, names)?),
        (None, None, false) => None,
    };
    let Some(files) = files else {
        if hsts {
            anyhow::bail!(
                "--hsts (FACTORYDASH_HSTS) is for HTTPS: give --tls-cert and --tls-key, or --tls-self-signed"
            );
        }
        if redirect.is_some() {
            anyhow::bail!(
                "--http-redirect (FACTORYDASH_HTTP_REDIRECT) redirects to HTTPS: give --tls-cert and --tls-key, or --tls-self-signed"
            );
        }
        return Ok(None);
    };
    Ok(Some(Settings {
        files,
        self_signed,
        hsts,
        redirect,
    }))
}

/// The ring provider, rustls' and reqwest's.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificate in use, read from [`Files`] and swapped by [`Certificates::reload`]:
/// rustls asks it for the certificate of each handshake.
#[derive(Debug)]
pub struct Certificates {
    files: Files,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

impl Certificates {
    /// Reads `files`.
    ///
    /// # Errors
    /// As [`load`].
    pub fn open(files: Files) -> anyhow::Result<Arc<Certificates>> {
        let provider = provider();
        let current = load(&files, &provider)?;
        Ok(Arc::new(Certificates {
            files,
            provider,
            current: RwLock::new(current),
        }))
    }

    /// The certificate in use.
    fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The SHA-256 fingerprint of the certificate in use ([`fingerprint`]).
    pub fn fingerprint(&self) -> String {
        fingerprint(self.current().cert[0].as_ref())
    }

    /// Reads the files again; the certificate in use stays when they cannot be read or
    /// do not hold a certificate and its key.
    ///
    /// # Errors
    /// As [`load`].
    pub fn reload(&self) -> anyhow::Result<()> {
        let loaded = load(&self.files, &self.provider)?;
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = loaded;
        Ok(())
    }

    /// Reloads on SIGHUP and when the files change, until `stopping`.
    pub fn watch(self: Arc<Self>, stopping: CancellationToken) {
        tokio::spawn(async move {
            let mut hangup = Hangup::new();
            let mut seen = self.stamps();
            let mut every = tokio::time::interval(POLL);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let why = tokio::select! {
                    () = stopping.cancelled() => return,
                    () = hangup.next() => "SIGHUP",
                    _ = every.tick() => {
                        if self.stamps() == seen {
                            continue;
                        }
                        "the files changed"
                    }
                };
                // Noted before reading: a reload that fails is not tried again (nor
                // warned about every few seconds) until the files change again.
                seen = self.stamps();
                match self.reload() {
                    Ok(()) => tracing::info!(
                        why,
                        fingerprint = %self.fingerprint(),
                        cert = %self.files.cert.display(),
                        "TLS certificate reloaded"
                    ),
                    Err(e) => tracing::warn!(
                        why,
                        error = format!("{e:#}"),
                        "cannot reload the TLS certificate; keeping the one in use"
                    ),
                }
            }
        });
    }

    /// What tells that the files changed.
    fn stamps(&self) -> (Option<Stamp>, Option<Stamp>) {
        (stamp(&self.files.cert), stamp(&self.files.key))
    }
}

/// SIGHUP, once listened for (it no longer ends the process then).
struct Hangup {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangup {
    fn new() -> Hangup {
        Hangup {
            #[cfg(unix)]
            signal: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
                .map_err(|e| tracing::warn!(error = %e, "cannot listen for SIGHUP; the TLS certificate is reloaded when its files change"))
                .ok(),
        }
    }

    /// The next SIGHUP (never, when it cannot be listened for).
    async fn next(&mut self) {
        #[cfg(unix)]
        if let Some(signal) = self.signal.as_mut() {
            if signal.recv().await.is_some() {
                return;
            }
        }
        std::future::pending().await
    }
}

/// A file's modification time, size and (on Unix) inode: a file replaced (renamed over,
/// a symbolic link pointed elsewhere) or rewritten changes one of them.
type Stamp = (Option<SystemTime>, u64, u64);

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let inode = 0;
    Some((m.modified().ok(), m.len(), inode))
}

/// Reads `files`: a PEM chain (at least one `CERTIFICATE`) and a PEM private key
/// (`PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY`) that is the first certificate's.
///
/// # Errors
/// A file cannot be read or is larger than [`MAX_PEM_FILE`]; no certificate or no key in
/// it; a key ring cannot use; a key that is not the certificate's.
pub fn load(files: &Files, provider: &CryptoProvider) -> anyhow::Result<Arc<CertifiedKey>> {
    let cert_pem = crate::config::read_bounded(&files.cert, MAX_PEM_FILE, "the TLS certificate")?;
    let key_pem = crate::config::read_bounded(&files.key, MAX_PEM_FILE, "the TLS key")?;
    let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("the TLS certificate {}", files.cert.display()))?;
    if chain.is_empty() {
        anyhow::bail!(
            "the TLS certificate {} holds no PEM CERTIFICATE",
            files.cert.display()
        );
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| {
        anyhow::anyhow!(
            "the TLS key {} holds no PEM private key (PKCS#8, RSA or EC): {e}",
            files.key.display()
        )
    })?;
    let certified = CertifiedKey::from_der(chain, key, provider).map_err(|e| {
        anyhow::anyhow!(
            "the TLS key {} cannot serve the certificate {}: {e}",
            files.key.display(),
            files.cert.display()
        )
    })?;
    Ok(Arc::new(certified))
}

/// The SHA-256 fingerprint of a DER certificate as browsers show it: upper-case hex
/// pairs joined by `:`.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// rustls' configuration: TLS 1.2 and 1.3, HTTP/2 and HTTP/1.1 (ALPN), the certificate
/// `certificates` holds at each handshake.
pub fn server_config(certificates: Arc<Certificates>) -> anyhow::Result<Arc<ServerConfig>> {
    let mut config = ServerConfig::builder_with_provider(certificates.provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_no_client_auth()
        .with_cert_resolver(certificates);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves `filter` over HTTPS on `listener` until `stopping`, then waits for the open
/// connections to end (as `warp::serve(…).graceful(…)` does): each connection's TLS
/// handshake within [`HANDSHAKE_TIMEOUT`], then HTTP/1.1 (with upgrades: `/ws`) or
/// HTTP/2; answers as [`https_answers`] makes them.
pub async fn serve<F, R>(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    hsts: bool,
    filter: F,
    stopping: CancellationToken,
) where
    F: Filter<Extract = (R,), Error = std::convert::Infallible> + Clone + Send + Sync + 'static,
    R: Reply + 'static,
{
    let filter = https_answers(filter, hsts);
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (tcp, peer) = tokio::select! {
            () = stopping.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let service = hyper_util::service::TowerToHyperService::new(WithPeer {
            inner: warp::service(filter.clone()),
            peer,
        });
        let watcher = graceful.watcher();
        let stopping = stopping.clone();
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
            let tls = tokio::select! {
                () = stopping.cancelled() => return,
                done = handshake => match done {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake not done in time; closed");
                        return;
                    }
                },
            };
            let http =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            let connection =
                http.serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(tls), service);
            if let Err(e) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(%peer, error = %e, "HTTPS connection error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// As warp's server: a connection error is the client's; anything else (out of file
/// descriptors) waits a second before accepting again.
async fn accept_error(e: std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept error");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// `filter`'s answers as sent over HTTPS: every `Set-Cookie` `Secure` (sent back over
/// HTTPS only), and with `hsts` [`HSTS`].
pub fn https_answers<F, R>(
    filter: F,
    hsts: bool,
) -> impl Filter<Extract = (Response,), Error = std::convert::Infallible> + Clone
where
    F: Filter<Extract = (R,), Error = std::convert::Infallible> + Clone + Send + Sync + 'static,
    R: Reply,
{
    filter.map(move |reply: R| {
        let mut r = reply.into_response();
        secure_cookies(r.headers_mut());
        if hsts {
            r.headers_mut().insert(
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static(HSTS),
            );
        }
        r
    })
}

/// Adds `; Secure` to each `Set-Cookie` without it.
fn secure_cookies(headers: &mut warp::http::HeaderMap) {
    if let header::Entry::Occupied(mut cookies) = headers.entry(header::SET_COOKIE) {
        for value in cookies.iter_mut() {
            let secure = value.to_str().is_ok_and(|v| {
                v.split(';')
                    .skip(1)
                    .any(|a| a.trim().eq_ignore_ascii_case("secure"))
            });
            if !secure {
                let mut with = value.as_bytes().to_vec();
                with.extend_from_slice(b"; Secure");
                if let Ok(v) = HeaderValue::from_bytes(&with) {
                    *value = v;
                }
            }
        }
    }
}

/// `--http-redirect`: every request answered `308 Permanent Redirect` to
/// `https://HOST[:https_port]/path?query`, HOST the request's `Host` without its port when
/// `allowed` (421 otherwise; 400 without a `Host`); the port is left out when 443.
pub fn redirect(
    allowed: Arc<AllowedHosts>,
    https_port: u16,
) -> impl Filter<Extract = (Response,), Error = std::convert::Infallible> + Clone {
    warp::header::headers_cloned()
        .and(warp::path::full())
        .and(
            warp::query::raw()
                .or(warp::any().map(String::new))
                .unify(),
        )
        .map(
            move |headers: warp::http::HeaderMap, path: warp::path::FullPath, query: String| {
                let mut hosts = headers.get_all(header::HOST).iter();
                let host = match (hosts.next().map(HeaderValue::to_str), hosts.next()) {
                    (Some(Ok(h)), None) => h,
                    _ => {
                        return warp::reply::with_status(
                            "one Host header is needed to redirect to HTTPS\n",
                            StatusCode::BAD_REQUEST,
                        )
                        .into_response()
                    }
                };
                if !allowed.allows(host) {
                    return warp::reply::with_status(
                        "this server does not answer for that Host; an address, localhost and this machine's name are allowed, other names with --allowed-host NAME\n",
                        StatusCode::MISDIRECTED_REQUEST,
                    )
                    .into_response();
                }
                let port = if https_port == 443 {
                    String::new()
                } else {
                    format!(":{https_port}")
                };
                let query = if query.is_empty() {
                    String::new()
                } else {
                    format!("?{query}")
                };
                let to = format!(
                    "https://{}{port}{}{query}",
                    without_port(host),
                    path.as_str()
                );
                match HeaderValue::from_str(&to) {
                    Ok(location) => {
                        let mut r = Response::new(format!("HTTPS: {to}\n").into());
                        *r.status_mut() = StatusCode::PERMANENT_REDIRECT;
                        r.headers_mut().insert(header::LOCATION, location);
                        r
                    }
                    Err(_) => {
                        warp::reply::with_status("bad request\n", StatusCode::BAD_REQUEST)
                            .into_response()
                    }
                }
            },
        )
}

/// A `Host` (`name[:port]`, `[v6][:port]`, already allowed) without its port.
fn without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host
            .split_once(']')
            .map_or(host, |(v6, _)| &host[..v6.len() + 1]);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

/// Serves [`redirect`] on `listener` until `stopping`.
pub async fn serve_redirect(
    listener: TcpListener,
    allowed: Arc<AllowedHosts>,
    https_port: u16,
    stopping: CancellationToken,
) {
    warp::serve(redirect(allowed, https_port))
        .incoming(listener)
        .graceful(async move { stopping.cancelled().await })
        .run()
        .await;
}

/// `factorydash healthcheck` over HTTPS: the status line of `GET /healthz` at `address`
/// (at most 1 KiB read), within 5 s. The certificate is not checked: the server asked
/// is this machine's own (a loopback address), and only its status is read.
///
/// # Errors
/// No TLS or no answer there in time.
pub async fn status_line(address: SocketAddr) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let provider = provider();
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let ask = async {
        let tcp = tokio::net::TcpStream::connect(address).await?;
        let name = rustls::pki_types::ServerName::IpAddress(address.ip().into());
        let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await?;
        let request =
            format!("GET /healthz HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
        tls.write_all(request.as_bytes()).await?;
        let mut head = vec![0u8; 1024];
        let mut read = 0;
        while read < head.len() && !head[..read].contains(&b'\n') {
            let n = tls.read(&mut head[read..]).await?;
            if n == 0 {
                break;
            }
            read += n;
        }
        Ok(String::from_utf8_lossy(&head[..read]).into_owned())
    };
    tokio::time::timeout(Duration::from_secs(5), ask)
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
}

/// A certificate verifier that takes any certificate (the handshake's signatures are
/// still checked): for [`status_line`] only.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The machine's host name, when it is one a certificate can name.
fn own_host_name() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .and_then(|n| crate::host::parse_name(n.trim()).ok())
}

/// `--tls-self-signed`: the files in `data_dir`, made now if missing (or near their end)
/// for `localhost`, `127.0.0.1`, `::1`, the machine's name and `names`.
///
/// # Errors
/// Only one of the two files is there; they cannot be written.
pub fn self_signed_files(data_dir: &Path, names: &[String]) -> anyhow::Result<Files> {
    let files = Files {
        cert: data_dir.join(SELF_SIGNED_CERT),
        key: data_dir.join(SELF_SIGNED_KEY),
    };
    let renew_after =
        Duration::from_secs(((SELF_SIGNED_DAYS - SELF_SIGNED_RENEW_DAYS) * 86_400) as u64);
    match (files.cert.exists(), files.key.exists()) {
        (true, true) => {
            let age = std::fs::metadata(&files.cert)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok());
            if age.is_some_and(|a| a < renew_after) {
                return Ok(files);
            }
            tracing::warn!(
                cert = %files.cert.display(),
                "the self-signed TLS certificate is near its end: making a new one (browsers will show a new fingerprint)"
            );
        }
        (false, false) => {}
        (cert, _) => anyhow::bail!(
            "--tls-self-signed: {} is there without {}; remove it to have a new pair made",
            if cert {
                files.cert.display()
            } else {
                files.key.display()
            },
            if cert {
                files.key.display()
            } else {
                files.cert.display()
            },
        ),
    }
    let mut sans = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let host = own_host_name();
    for name in host.iter().chain(names) {
        if !sans.contains(name) {
            sans.push(name.clone());
        }
    }
    let (cert_pem, key_pem) = make_self_signed(sans, host.as_deref().unwrap_or("localhost"))?;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
    write_private(&files.key, key_pem.as_bytes())?;
    write_private(&files.cert, cert_pem.as_bytes())?;
    tracing::info!(cert = %files.cert.display(), key = %files.key.display(), "made a self-signed TLS certificate");
    Ok(files)
}

/// A self-signed certificate for `sans` and its key, both PEM.
fn make_self_signed(sans: Vec<String>, host: &str) -> anyhow::Result<(String, String)> {
    let mut params = rcgen::CertificateParams::new(sans).context("the certificate's names")?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("factorydash on {host}"));
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "factorydash (self-signed)");
    let today = chrono::Utc::now().date_naive();
    let ymd = |d: chrono::NaiveDate| {
        use chrono::Datelike;
        rcgen::date_time_ymd(d.year(), d.month() as u8, d.day() as u8)
    };
    params.not_before = ymd(today - chrono::Days::new(1));
    params.not_after = ymd(today + chrono::Days::new(SELF_SIGNED_DAYS as u64));
    let mut serial = [0u8; 16];
    rand::Rng::fill(&mut rand::rng(), &mut serial);
    serial[0] &= 0x7f;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let key = rcgen::KeyPair::generate().context("cannot make a TLS key")?;
    let cert = params
        .self_signed(&key)
        .context("cannot make a self-signed certificate")?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Writes `bytes` to `path` readable by its owner only (0600), whole or not at all (a
/// temporary file renamed over it).
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let temporary = path.with_extension("pem.tmp");
    let _ = std::fs::remove_file(&temporary);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let write = || -> std::io::Result<()> {
        let mut file = options.open(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    };
    write().with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_without_their_port() {
        assert_eq!(without_port("dash.example:8080"), "dash.example");
        assert_eq!(without_port("dash.example"), "dash.example");
        assert_eq!(without_port("10.0.0.5:80"), "10.0.0.5");
        assert_eq!(without_port("[::1]:8080"), "[::1]");
        assert_eq!(without_port("[fe80::1]"), "[fe80::1]");
    }

    #[test]
    fn cookies_become_secure() {
        let mut h = warp::http::HeaderMap::new();
        h.append(
            header::SET_COOKIE,
            HeaderValue::from_static("a=1; Path=/; HttpOnly"),
        );
        h.append(header::SET_COOKIE, HeaderValue::from_static("b=2; secure"));
        secure_cookies(&mut h);
        let all: Vec<_> = h.get_all(header::SET_COOKIE).iter().collect();
        assert_eq!(all[0], "a=1; Path=/; HttpOnly; Secure");
        assert_eq!(all[1], "b=2; secure");
    }

    #[test]
    fn options_that_need_tls() {
        let dir = Path::new("/nonexistent");
        let s = |c: Option<&str>, k: Option<&str>, ss, hsts, r: Option<&str>| {
            settings(
                c.map(Path::new),
                k.map(Path::new),
                ss,
                hsts,
                r.map(|r| r.parse().unwrap()),
                dir,
                &[],
            )
            .map(|s| s.is_some())
            .map_err(|e| e.to_string())
        };
        assert_eq!(s(None, None, false, false, None), Ok(false));
        assert!(s(None, None, false, true, None)
            .unwrap_err()
            .contains("--hsts"));
        assert!(s(None, None, false, false, Some("127.0.0.1:80"))
            .unwrap_err()
            .contains("--http-redirect"));
        assert!(s(Some("c"), None, false, false, None)
            .unwrap_err()
            .contains("--tls-key"));
        assert!(s(None, Some("k"), false, false, None)
            .unwrap_err()
            .contains("--tls-cert"));
        assert!(s(Some("c"), Some("k"), true, false, None)
            .unwrap_err()
            .contains("--tls-self-signed"));
        assert_eq!(
            s(Some("c"), Some("k"), false, true, Some("127.0.0.1:80")),
            Ok(true)
        );
    }

    #[test]
    fn a_fingerprint_is_sha256_in_pairs() {
        let f = fingerprint(b"");
        assert_eq!(
            f,
            "E3:B0:C4:42:98:FC:1C:14:9A:FB:F4:C8:99:6F:B9:24:27:AE:41:E4:64:9B:93:4C:A4:95:99:1B:78:52:B8:55"
        );
    }
}

/// A service that puts the connection's peer in each request's extensions
/// ([`crate::accounts::Peer`]) before `inner` answers it: warp knows the peer only of the
/// connections it accepts itself.
#[derive(Clone)]
struct WithPeer<S> {
    inner: S,
    peer: std::net::SocketAddr,
}

impl<S, B> tower_service::Service<warp::http::Request<B>> for WithPeer<S>
where
    S: tower_service::Service<warp::http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: warp::http::Request<B>) -> Self::Future {
        req.extensions_mut()
            .insert(crate::accounts::Peer(self.peer));
        self.inner.call(req)
    }
}
