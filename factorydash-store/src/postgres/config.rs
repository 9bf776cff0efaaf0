//! Where and how the store connects: a connection string and libpq's environment
//! variables resolved into a [`PgConfig`], and the TLS connector every connection of the
//! store goes through.
//!
//! # Connection strings
//! A URL (`postgres://user:password@host:port/dbname?param=value&…`) or libpq's
//! `key=value` form, as tokio-postgres reads them, plus two parameters tokio-postgres does
//! not know and that are read (and removed) here:
//! - `sslmode`: `disable`, `prefer` (the default), `require`, `verify-ca` or
//!   `verify-full` (see [`SslMode`]);
//! - `sslrootcert`: a PEM file of CA certificates, trusted in addition to the system's
//!   (unlike libpq, which then trusts that file only). `sslrootcert=system` means the
//!   system's certificates only, as in libpq 16.
//!
//! # Environment (libpq's variables)
//! [`PgConfig::resolve`] reads `PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`,
//! `PGSSLMODE`, `PGSSLROOTCERT` and `PGPASSFILE`. Without a connection string, any of the
//! first seven being set means PostgreSQL, configured from them. With one, each fills
//! only what the string leaves out, as in libpq: a URL without a user takes `PGUSER`, a
//! URL without host takes `PGHOST` and `PGPORT`, and so on (but a URL with a host and no
//! port means 5432: tokio-postgres's parser says so, and `PGPORT` is not used). What
//! neither gives defaults to: host `localhost` (libpq would try its Unix socket first),
//! port 5432, the user `USER` (or `LOGNAME`), the database named as the user,
//! `sslmode=prefer`.
//!
//! A password given nowhere is looked up in the password file, `PGPASSFILE` or
//! `~/.pgpass` (`hostname:port:database:username:password` lines, `*` matching anything,
//! `\:` and `\\` escaping), skipped with a warning when group or others may read it, as
//! libpq does. A host given as a Unix socket directory is matched as `localhost`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use tokio_postgres::config::Host;
use tokio_postgres::Config;
use tokio_postgres_rustls::MakeRustlsConnect;

/// The environment variables that, set without a connection string, select PostgreSQL.
pub const PG_ENV_VARS: [&str; 7] = [
    "PGHOST",
    "PGPORT",
    "PGUSER",
    "PGPASSWORD",
    "PGDATABASE",
    "PGSSLMODE",
    "PGSSLROOTCERT",
];

/// The variables [`PgConfig::resolve`] reads: [`PG_ENV_VARS`], `PGPASSFILE`, and `HOME`,
/// `USER`, `LOGNAME` for the defaults.
const READ_VARS: [&str; 4] = ["PGPASSFILE", "HOME", "USER", "LOGNAME"];

/// Whether and how a connection is encrypted, as libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    /// Plain connections only.
    Disable,
    /// TLS when the server offers it, plain when it does not (libpq's default). The
    /// certificate is not verified. A server that offers TLS but fails the handshake is an
    /// error (libpq would then try again in plain text).
    #[default]
    Prefer,
    /// TLS or nothing, without verifying the server's certificate: the handshake is a
    /// real one (the server proves it holds the key of the certificate it shows), but any
    /// certificate is accepted, so a machine in the middle can read everything. When
    /// `sslrootcert` is given, as in libpq, it behaves as [`SslMode::VerifyCa`].
    Require,
    /// TLS, the certificate chain verified against the trusted CAs; the host name is not
    /// checked against the certificate.
    VerifyCa,
    /// TLS, the chain verified and the host name checked against the certificate.
    VerifyFull,
}

impl SslMode {
    /// Its name in a connection string.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// The mode named `s` (as in a connection string), if any.
    pub fn parse(s: &str) -> Option<SslMode> {
        [
            SslMode::Disable,
            SslMode::Prefer,
            SslMode::Require,
            SslMode::VerifyCa,
            SslMode::VerifyFull,
        ]
        .into_iter()
        .find(|m| m.as_str() == s)
    }
}

impl std::fmt::Display for SslMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A PostgreSQL configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// tokio-postgres refused the connection string.
    #[error("invalid PostgreSQL connection string")]
    Parse(#[source] tokio_postgres::Error),
    /// A parameter or variable has a value that means nothing.
    #[error("invalid {what}: '{value}'")]
    Invalid {
        /// The parameter or variable.
        what: &'static str,
        /// Its value.
        value: String,
    },
    /// The trusted CA certificates could not be had.
    #[error("cannot use the CA certificates {what}: {reason}")]
    RootCert {
        /// Which certificates (the file, or the system's).
        what: String,
        /// Why.
        reason: String,
    },
}

/// Where and how to connect: the tokio-postgres configuration plus what it does not
/// know ([`SslMode::VerifyCa`], [`SslMode::VerifyFull`], the CA file). See the
/// [module docs](self) for what is read from where.
#[derive(Debug, Clone)]
pub struct PgConfig {
    config: Config,
    ssl_mode: SslMode,
    ssl_root_cert: Option<PathBuf>,
}

impl From<Config> for PgConfig {
    /// A tokio-postgres configuration as it is: its `sslmode` (disable, prefer or require),
    /// no CA file.
    fn from(config: Config) -> Self {
        let ssl_mode = match config.get_ssl_mode() {
            tokio_postgres::config::SslMode::Disable => SslMode::Disable,
            tokio_postgres::config::SslMode::Require => SslMode::Require,
            _ => SslMode::Prefer,
        };
        PgConfig {
            config,
            ssl_mode,
            ssl_root_cert: None,
        }
    }
}

impl PgConfig {
    /// The configuration of a connection string alone (no environment variables).
    ///
    /// # Errors
    /// [`ConfigError`] when the string is not a valid one.
    pub fn from_url(url: &str) -> Result<Self, ConfigError> {
        Self::build(Some(url), &HashMap::new())
    }

    /// The configuration of `url` and of libpq's variables in `env` (see the
    /// [module docs](self)); `None` when there is no `url` and none of [`PG_ENV_VARS`] is
    /// set (not empty) in `env`. A password file is read only when no password is given.
    ///
    /// # Errors
    /// [`ConfigError`] when the string or a variable is not valid.
    pub fn resolve(
        url: Option<&str>,
        env: &HashMap<String, String>,
    ) -> Result<Option<Self>, ConfigError> {
        let any = PG_ENV_VARS
            .iter()
            .any(|v| env.get(*v).is_some_and(|s| !s.is_empty()));
        if url.is_none() && !any {
            return Ok(None);
        }
        Self::build(url, env).map(Some)
    }

    /// The variables of this process that [`PgConfig::resolve`] reads.
    pub fn process_env() -> HashMap<String, String> {
        PG_ENV_VARS
            .iter()
            .chain(READ_VARS.iter())
            .filter_map(|v| Some((v.to_string(), std::env::var(v).ok()?)))
            .collect()
    }

    fn build(url: Option<&str>, env: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let var = |name: &str| env.get(name).filter(|s| !s.is_empty()).cloned();
        let (rest, params) = match url {
            Some(url) => take_tls_params(url)?,
            None => (String::new(), Vec::new()),
        };
        let mut config: Config = if rest.trim().is_empty() {
            Config::new()
        } else {
            rest.parse().map_err(ConfigError::Parse)?
        };
        let param = |key: &str| {
            params
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        };
        let ssl_mode = match param("sslmode").or_else(|| var("PGSSLMODE")) {
            Some(m) => SslMode::parse(&m).ok_or(ConfigError::Invalid {
                what: "sslmode (disable, prefer, require, verify-ca or verify-full)",
                value: m,
            })?,
            None => SslMode::Prefer,
        };
        let ssl_root_cert = param("sslrootcert")
            .or_else(|| var("PGSSLROOTCERT"))
            .map(PathBuf::from);
        if config.get_hosts().is_empty() && config.get_hostaddrs().is_empty() {
            for host in var("PGHOST").as_deref().unwrap_or("localhost").split(',') {
                if host.starts_with('/') {
                    config.host_path(host);
                } else {
                    config.host(host);
                }
            }
        }
        if config.get_ports().is_empty() {
            if let Some(ports) = var("PGPORT") {
                for port in ports.split(',') {
                    let port = port.trim().parse().map_err(|_| ConfigError::Invalid {
                        what: "PGPORT",
                        value: ports.clone(),
                    })?;
                    config.port(port);
                }
            }
        }
        if config.get_user().is_none() {
            if let Some(user) = var("PGUSER")
                .or_else(|| var("USER"))
                .or_else(|| var("LOGNAME"))
            {
                config.user(user);
            }
        }
        if config.get_dbname().is_none() {
            if let Some(db) = var("PGDATABASE") {
                config.dbname(db);
            }
        }
        if config.get_password().is_none() {
            if let Some(password) = var("PGPASSWORD") {
                config.password(password);
            } else if let Some(password) = password_from_file(&config, env) {
                config.password(password);
            }
        }
        config.ssl_mode(match ssl_mode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        });
        Ok(PgConfig {
            config,
            ssl_mode,
            ssl_root_cert,
        })
    }

    /// The tokio-postgres configuration (its `sslmode` is `require` for
    /// [`SslMode::VerifyCa`] and [`SslMode::VerifyFull`]: the verification is the
    /// connector's).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The tokio-postgres configuration, to change (e.g. `options` setting a
    /// `search_path`). Its `sslmode` is not read: set [`PgConfig::set_ssl_mode`].
    pub fn config_mut(&mut self) -> &mut Config {
        &mut self.config
    }

    /// The TLS mode.
    pub fn ssl_mode(&self) -> SslMode {
        self.ssl_mode
    }

    /// Sets the TLS mode.
    pub fn set_ssl_mode(&mut self, mode: SslMode) -> &mut Self {
        self.ssl_mode = mode;
        self.config.ssl_mode(match mode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        });
        self
    }

    /// The CA file trusted in addition to the system's certificates (`sslrootcert`).
    pub fn ssl_root_cert(&self) -> Option<&Path> {
        self.ssl_root_cert.as_deref()
    }

    /// Sets the CA file (`sslrootcert`).
    pub fn set_ssl_root_cert(&mut self, path: Option<PathBuf>) -> &mut Self {
        self.ssl_root_cert = path;
        self
    }

    /// The servers, `host:port` separated by commas (a Unix socket as its directory).
    pub fn server(&self) -> String {
        let ports = self.config.get_ports();
        let hosts: Vec<String> = if self.config.get_hosts().is_empty() {
            self.config
                .get_hostaddrs()
                .iter()
                .map(|a| a.to_string())
                .collect()
        } else {
            self.config
                .get_hosts()
                .iter()
                .map(|h| match h {
                    Host::Tcp(h) => h.clone(),
                    #[cfg(unix)]
                    Host::Unix(p) => p.display().to_string(),
                })
                .collect()
        };
        hosts
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
                format!("{h}:{port}")
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// One line for logs, without the password: `host=… db=… user=… tls=…`.
    pub fn summary(&self) -> String {
        let user = self.config.get_user().unwrap_or("?");
        format!(
            "host={} db={} user={} tls={}",
            self.server(),
            self.config.get_dbname().unwrap_or(user),
            user,
            self.ssl_mode
        )
    }

    /// The mode in effect: [`SslMode::Require`] with a CA file is [`SslMode::VerifyCa`].
    fn effective_mode(&self) -> SslMode {
        match self.ssl_mode {
            SslMode::Require if self.ssl_root_cert.is_some() => SslMode::VerifyCa,
            mode => mode,
        }
    }

    /// The TLS connector of every connection of the store (rustls on ring, the provider
    /// reqwest uses too), verifying as [`SslMode`] says.
    ///
    /// # Errors
    /// [`ConfigError::RootCert`] when verification is asked for and the CA file cannot be
    /// read or no CA certificate is found at all.
    pub fn tls_connector(&self) -> Result<MakeRustlsConnect, ConfigError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mode = self.effective_mode();
        let verifier: Arc<dyn ServerCertVerifier> = match mode {
            SslMode::Disable | SslMode::Prefer | SslMode::Require => {
                Arc::new(AnyCertificate(provider.clone()))
            }
            SslMode::VerifyCa | SslMode::VerifyFull => {
                let roots = self.roots()?;
                let webpki =
                    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                        .build()
                        .map_err(|e| ConfigError::RootCert {
                            what: self.roots_name(),
                            reason: e.to_string(),
                        })?;
                if mode == SslMode::VerifyCa {
                    Arc::new(ChainOnly(webpki))
                } else {
                    webpki
                }
            }
        };
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ConfigError::RootCert {
                what: self.roots_name(),
                reason: e.to_string(),
            })?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(MakeRustlsConnect::new(config))
    }

    fn roots_name(&self) -> String {
        match &self.ssl_root_cert {
            Some(p) => format!("of the system and of sslrootcert {}", p.display()),
            None => "of the system (give sslrootcert for a private CA)".into(),
        }
    }

    /// The system's CA certificates, and those of the CA file.
    fn roots(&self) -> Result<RootCertStore, ConfigError> {
        let mut roots = RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for e in &native.errors {
            tracing::debug!(error = %e, "a system CA certificate store could not be read");
        }
        let (added, ignored) = roots.add_parsable_certificates(native.certs);
        tracing::debug!(added, ignored, "system CA certificates");
        if let Some(path) = &self.ssl_root_cert {
            if path.as_os_str() == "system" {
                return Ok(roots);
            }
            let bad = |reason: String| ConfigError::RootCert {
                what: format!("of sslrootcert {}", path.display()),
                reason,
            };
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| bad(e.to_string()))?
                .collect::<Result<_, _>>()
                .map_err(|e| bad(e.to_string()))?;
            if certs.is_empty() {
                return Err(bad("no PEM certificate in it".into()));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| bad(e.to_string()))?;
            }
        }
        Ok(roots)
    }
}

/// Accepts any certificate, but still checks the handshake's signatures with it (the
/// server holds the key of what it shows): `sslmode=prefer` and `require`.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
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
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
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

/// WebPKI verification without the host name: `sslmode=verify-ca`. rustls checks the
/// chain first and the name last, so a name mismatch means the chain was valid.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Takes `sslmode` and `sslrootcert` out of a connection string (a URL's query or the
/// `key=value` form): the rest, for tokio-postgres, and the two (key, value) found.
fn take_tls_params(s: &str) -> Result<(String, Vec<(String, String)>), ConfigError> {
    const OURS: [&str; 2] = ["sslmode", "sslrootcert"];
    let mut taken = Vec::new();
    if s.starts_with("postgres://") || s.starts_with("postgresql://") {
        let Some((base, query)) = s.split_once('?') else {
            return Ok((s.to_owned(), taken));
        };
        let mut kept = Vec::new();
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let key_decoded = percent_decode(key);
            if OURS.contains(&key_decoded.as_str()) {
                taken.push((key_decoded, percent_decode(value)));
            } else {
                kept.push(pair);
            }
        }
        let rest = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return Ok((rest, taken));
    }
    let mut rest = String::new();
    for (key, value) in key_values(s)? {
        if OURS.contains(&key.as_str()) {
            taken.push((key, value));
        } else {
            let escaped = value.replace('\\', "\\\\").replace('\'', "\\'");
            rest.push_str(&format!("{key}='{escaped}' "));
        }
    }
    Ok((rest, taken))
}

/// `%XX` sequences decoded (invalid ones kept as they are).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The pairs of a `key=value` connection string (values bare or in single quotes, `\`
/// escaping the next character), as libpq and tokio-postgres read it.
fn key_values(s: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let invalid = || ConfigError::Invalid {
        what: "connection string",
        value: "(not shown: it may hold a password)".into(),
    };
    let mut pairs = Vec::new();
    let mut it = s.chars().peekable();
    loop {
        while it.next_if(|c| c.is_whitespace()).is_some() {}
        let mut key = String::new();
        while let Some(c) = it.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        if key.is_empty() {
            if it.peek().is_some() {
                return Err(invalid());
            }
            return Ok(pairs);
        }
        while it.next_if(|c| c.is_whitespace()).is_some() {}
        if it.next() != Some('=') {
            return Err(invalid());
        }
        while it.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if it.next_if_eq(&'\'').is_some() {
            loop {
                match it.next() {
                    Some('\'') => break,
                    Some('\\') => value.push(it.next().ok_or_else(invalid)?),
                    Some(c) => value.push(c),
                    None => return Err(invalid()),
                }
            }
        } else {
            while let Some(c) = it.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.push(it.next().ok_or_else(invalid)?);
                } else {
                    value.push(c);
                }
            }
        }
        pairs.push((key, value));
    }
}

/// The password of the password file (`PGPASSFILE`, else `$HOME/.pgpass`) for the first
/// host, port, database and user of `config`; `None` when there is no file, it may be read
/// by others (with a warning) or nothing matches.
fn password_from_file(config: &Config, env: &HashMap<String, String>) -> Option<String> {
    let path = match env.get("PGPASSFILE").filter(|s| !s.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => Path::new(env.get("HOME").filter(|s| !s.is_empty())?).join(".pgpass"),
    };
    let meta = std::fs::metadata(&path).ok()?;
    if !meta.is_file() {
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                file = %path.display(),
                "the password file is readable by group or others (chmod 0600 it); not used"
            );
            return None;
        }
    }
    // A password file is a few lines: one larger than 1 MiB is not read.
    const MAX_PASSFILE: u64 = 1 << 20;
    if meta.len() > MAX_PASSFILE {
        tracing::warn!(file = %path.display(), bytes = meta.len(), "the password file is larger than 1 MiB; not used");
        return None;
    }
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut std::io::Read::take(std::fs::File::open(&path).ok()?, MAX_PASSFILE),
        &mut text,
    )
    .ok()?;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(Host::Unix(_)) => "localhost".into(),
        None => config
            .get_hostaddrs()
            .first()
            .map(|a| a.to_string())
            .unwrap_or_else(|| "localhost".into()),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let user = config.get_user()?;
    let db = config.get_dbname().unwrap_or(user);
    pgpass_lookup(&text, &host, &port, db, user)
}

/// The password of the first line of a password file (`hostname:port:database:username:
/// password`) whose first four fields match (`*` matches anything; `\:` and `\\` stand
/// for `:` and `\`). Blank lines and lines starting with `#` are skipped.
pub fn pgpass_lookup(text: &str, host: &str, port: &str, db: &str, user: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() || line.starts_with('#') {
            return None;
        }
        let mut fields = Vec::with_capacity(5);
        let mut field = String::new();
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => field.push(chars.next().unwrap_or('\\')),
                ':' if fields.len() < 4 => fields.push(std::mem::take(&mut field)),
                c => field.push(c),
            }
        }
        fields.push(field);
        if fields.len() != 5 {
            return None;
        }
        let matches = |pattern: &str, value: &str| pattern == "*" || pattern == value;
        (matches(&fields[0], host)
            && matches(&fields[1], port)
            && matches(&fields[2], db)
            && matches(&fields[3], user))
        .then(|| fields.pop().unwrap_or_default())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn pgpass_lines_match_field_by_field() {
        let text = "# comment\n\
                    db.example.com:5432:factorydash:fd:s3cret\n\
                    *:*:*:admin:any\\:thing\n\
                    h\\:x:5433:*:u:colon-host\n\
                    short:line\n\
                    *:*:*:*:fallback\n";
        let p = |h, port, db, u| pgpass_lookup(text, h, port, db, u);
        assert_eq!(
            p("db.example.com", "5432", "factorydash", "fd").as_deref(),
            Some("s3cret")
        );
        assert_eq!(
            p("other", "1", "x", "admin").as_deref(),
            Some("any:thing"),
            "wildcards and an escaped colon"
        );
        assert_eq!(p("h:x", "5433", "d", "u").as_deref(), Some("colon-host"));
        assert_eq!(
            p("db.example.com", "5433", "factorydash", "fd").as_deref(),
            Some("fallback"),
            "the first matching line wins"
        );
        assert_eq!(pgpass_lookup("a:b:c:d:e\n", "a", "b", "c", "x"), None);
        assert_eq!(pgpass_lookup("", "a", "b", "c", "d"), None);
        assert_eq!(
            pgpass_lookup("a:b:c:d:pa:ss\r\n", "a", "b", "c", "d").as_deref(),
            Some("pa:ss"),
            "the password is the rest of the line"
        );
    }

    #[test]
    fn no_url_and_no_pg_variable_is_no_postgres() {
        assert!(
            PgConfig::resolve(None, &env(&[("HOME", "/x"), ("USER", "me")]))
                .unwrap()
                .is_none()
        );
        assert!(PgConfig::resolve(None, &env(&[("PGHOST", "")]))
            .unwrap()
            .is_none());
    }

    #[test]
    fn pg_variables_alone_configure_postgres() {
        let c = PgConfig::resolve(
            None,
            &env(&[
                ("PGHOST", "db.internal"),
                ("PGPORT", "6432"),
                ("PGUSER", "fd"),
                ("PGPASSWORD", "pw"),
                ("PGDATABASE", "factorydash"),
                ("PGSSLMODE", "verify-full"),
                ("PGSSLROOTCERT", "/etc/ca.pem"),
            ]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.config().get_user(), Some("fd"));
        assert_eq!(c.config().get_password(), Some(&b"pw"[..]));
        assert_eq!(c.config().get_dbname(), Some("factorydash"));
        assert_eq!(c.config().get_ports(), &[6432]);
        assert_eq!(c.ssl_mode(), SslMode::VerifyFull);
        assert_eq!(c.ssl_root_cert(), Some(Path::new("/etc/ca.pem")));
        assert_eq!(
            c.summary(),
            "host=db.internal:6432 db=factorydash user=fd tls=verify-full"
        );
        assert!(!c.summary().contains("pw"));
    }

    #[test]
    fn a_url_wins_and_variables_fill_what_it_leaves_out() {
        let vars = env(&[
            ("PGHOST", "ignored"),
            ("PGUSER", "envuser"),
            ("PGPASSWORD", "envpw"),
            ("PGSSLMODE", "require"),
        ]);
        let c = PgConfig::resolve(Some("postgres://db:5433/fd?sslmode=verify-ca"), &vars)
            .unwrap()
            .unwrap();
        assert_eq!(c.server(), "db:5433");
        assert_eq!(c.config().get_user(), Some("envuser"));
        assert_eq!(c.config().get_password(), Some(&b"envpw"[..]));
        assert_eq!(c.ssl_mode(), SslMode::VerifyCa);
        let c = PgConfig::resolve(Some("postgres://u:p@db/fd"), &vars)
            .unwrap()
            .unwrap();
        assert_eq!(c.config().get_user(), Some("u"));
        assert_eq!(c.config().get_password(), Some(&b"p"[..]));
        assert_eq!(
            c.ssl_mode(),
            SslMode::Require,
            "PGSSLMODE under a URL without one"
        );
        let c = PgConfig::resolve(Some("postgres:///fd"), &vars)
            .unwrap()
            .unwrap();
        assert_eq!(
            c.server(),
            "ignored:5432",
            "a URL without host takes PGHOST"
        );
    }

    #[test]
    fn tls_parameters_are_taken_out_of_both_forms() {
        let c = PgConfig::from_url(
            "postgresql://u@h/db?application_name=x&sslmode=verify-full&sslrootcert=%2Ftmp%2Fca.pem",
        )
        .unwrap();
        assert_eq!(c.ssl_mode(), SslMode::VerifyFull);
        assert_eq!(c.ssl_root_cert(), Some(Path::new("/tmp/ca.pem")));
        assert_eq!(c.config().get_application_name(), Some("x"));
        let c = PgConfig::from_url(
            "host=h user=u password='a b\\'c' sslmode=verify-ca sslrootcert='/tmp/my ca.pem'",
        )
        .unwrap();
        assert_eq!(c.ssl_mode(), SslMode::VerifyCa);
        assert_eq!(c.ssl_root_cert(), Some(Path::new("/tmp/my ca.pem")));
        assert_eq!(c.config().get_password(), Some(&b"a b'c"[..]));
        let c = PgConfig::from_url("postgres://u@h/db?sslmode=disable").unwrap();
        assert_eq!(
            c.config().get_ssl_mode(),
            tokio_postgres::config::SslMode::Disable
        );
        assert!(matches!(
            PgConfig::from_url("postgres://u@h/db?sslmode=bogus"),
            Err(ConfigError::Invalid { .. })
        ));
        assert!(matches!(
            PgConfig::from_url("postgres://u@h/db?nonsense=1"),
            Err(ConfigError::Parse(_))
        ));
    }

    #[test]
    fn the_password_file_fills_a_missing_password_unless_others_may_read_it() {
        let dir = std::env::temp_dir().join(format!("fd-pgpass-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pgpass");
        std::fs::write(&file, "db:5432:fd:u:from-file\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let vars = env(&[("PGPASSFILE", file.to_str().unwrap())]);
        let c = PgConfig::resolve(Some("postgres://u@db/fd"), &vars)
            .unwrap()
            .unwrap();
        assert_eq!(c.config().get_password(), Some(&b"from-file"[..]));
        let c = PgConfig::resolve(Some("postgres://u:given@db/fd"), &vars)
            .unwrap()
            .unwrap();
        assert_eq!(c.config().get_password(), Some(&b"given"[..]));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
            let c = PgConfig::resolve(Some("postgres://u@db/fd"), &vars)
                .unwrap()
                .unwrap();
            assert_eq!(
                c.config().get_password(),
                None,
                "a world-readable file is ignored"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn verification_without_any_ca_is_refused_early() {
        let mut c = PgConfig::from_url("postgres://u@h/db?sslmode=verify-full").unwrap();
        c.set_ssl_root_cert(Some("/nonexistent/ca.pem".into()));
        let e = c
            .tls_connector()
            .err()
            .expect("a missing CA file is an error");
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
        c.set_ssl_mode(SslMode::Disable);
        assert!(c.tls_connector().is_ok(), "no verification, no CA needed");
    }
}
