//! Alarm e-mail end to end over real SMTP on 127.0.0.1: a minimal SMTP server started
//! here (RFC 5321 with STARTTLS, RFC 3207, on a certificate of a CA made here, and
//! `AUTH PLAIN`, RFC 4616), the first message refused with a transient 451 (retried);
//! `serve --replay` of the bundled 3-machine recording with a Fault rule and an
//! `[[alarm-email]]` digest: every change in exactly one accepted message, each message
//! `multipart/alternative` with a plain and an HTML part, sent only after STARTTLS and
//! AUTH with the password from its file; an acknowledgement on the API arrives too.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivateKeyDer;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::support::{get_json, start};
use crate::tls::Ca;

const USER: &str = "factorydash";
const PASSWORD: &str = "mail-password-from-a-file";

/// A message the server accepted: whether the session was TLS and authenticated when it
/// was sent, and the DATA as sent.
#[derive(Debug, Clone)]
struct Mail {
    tls: bool,
    authenticated: bool,
    recipients: Vec<String>,
    data: String,
}

#[derive(Default)]
struct Server {
    accepted: Vec<Mail>,
    /// DATA commands answered 451 (the first one).
    refused: usize,
}

type Shared = Arc<Mutex<Server>>;

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// One SMTP session: plain until STARTTLS, then TLS (the same commands again).
async fn session(
    stream: tokio::net::TcpStream,
    acceptor: tokio_rustls::TlsAcceptor,
    shared: Shared,
) {
    let mut io: BufReader<Box<dyn Stream>> = BufReader::new(Box::new(stream));
    let mut tls = false;
    let mut authenticated = false;
    let mut recipients = Vec::new();
    io.get_mut()
        .write_all(b"220 test.local ESMTP\r\n")
        .await
        .unwrap();
    let mut line = String::new();
    loop {
        line.clear();
        if io.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let command = line.trim_end().to_owned();
        let upper = command.to_ascii_uppercase();
        let answer: String = if upper.starts_with("EHLO") {
            if tls {
                "250-test.local\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n".into()
            } else {
                "250-test.local\r\n250-STARTTLS\r\n250 8BITMIME\r\n".into()
            }
        } else if upper == "STARTTLS" && !tls {
            io.get_mut().write_all(b"220 go ahead\r\n").await.unwrap();
            let plain = io.into_inner();
            // The only stream type before STARTTLS is the TCP one: take it back.
            let tcp: Box<dyn Stream> = plain;
            let Ok(secured) = acceptor.accept(Unboxed(tcp)).await else {
                return;
            };
            io = BufReader::new(Box::new(secured));
            tls = true;
            continue;
        } else if upper.starts_with("AUTH PLAIN ") {
            // The credentials compared exactly (base64 is case-sensitive).
            let b64 = &command["AUTH PLAIN ".len()..];
            let want =
                base64::engine::general_purpose::STANDARD.encode(format!("\0{USER}\0{PASSWORD}"));
            if tls && b64 == want {
                authenticated = true;
                "235 2.7.0 accepted\r\n".into()
            } else {
                "535 5.7.8 bad credentials\r\n".into()
            }
        } else if upper.starts_with("MAIL FROM:") {
            if authenticated {
                "250 ok\r\n".into()
            } else {
                "530 5.7.0 authentication required\r\n".into()
            }
        } else if upper.starts_with("RCPT TO:") {
            recipients.push(command[8..].trim().to_owned());
            "250 ok\r\n".into()
        } else if upper == "DATA" {
            io.get_mut().write_all(b"354 go on\r\n").await.unwrap();
            let mut data = String::new();
            loop {
                let mut l = String::new();
                if io.read_line(&mut l).await.unwrap_or(0) == 0 {
                    return;
                }
                if l == ".\r\n" {
                    break;
                }
                data.push_str(&l);
            }
            let mut s = shared.lock().unwrap();
            if s.refused == 0 {
                s.refused += 1;
                "451 4.3.0 try again later\r\n".into()
            } else {
                s.accepted.push(Mail {
                    tls,
                    authenticated,
                    recipients: std::mem::take(&mut recipients),
                    data: data.replace("\r\n", "\n"),
                });
                "250 2.0.0 queued\r\n".into()
            }
        } else if upper == "QUIT" {
            let _ = io.get_mut().write_all(b"221 bye\r\n").await;
            return;
        } else if upper == "RSET" || upper == "NOOP" {
            recipients.clear();
            "250 ok\r\n".into()
        } else {
            "502 5.5.1 not implemented\r\n".into()
        };
        if io.get_mut().write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// A boxed stream as a sized one, for the TLS acceptor.
struct Unboxed(Box<dyn Stream>);

impl AsyncRead for Unboxed {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Unboxed {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut *self.0).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut *self.0).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

/// Starts the SMTP server on a free port of 127.0.0.1 with a certificate of `ca` for
/// localhost: its port.
async fn smtp_server(ca: &Ca, shared: Shared) -> u16 {
    let leaf = ca.leaf("test SMTP server");
    let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![leaf.der.clone()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(session(stream, acceptor.clone(), shared.clone()));
        }
    });
    port
}

/// `text` undone from quoted-printable (RFC 2045 §6.7): soft line breaks and `=XX`.
fn quoted_printable(text: &str) -> String {
    let bytes = text.replace("=\n", "").into_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'=', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The body of `mail`'s part of content type `kind` (line ends made `\n`).
fn part<'a>(mail: &'a str, kind: &str) -> Option<&'a str> {
    let start = mail.find(&format!("Content-Type: {kind}"))?;
    let body = &mail[start..];
    let body = &body[body.find("\n\n")? + 2..];
    let end = body.find("\n--").unwrap_or(body.len());
    Some(&body[..end])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarm_changes_reach_an_smtp_server_over_starttls_once_each_with_plain_and_html_parts() {
    let ca = Ca::new();
    let shared: Shared = Arc::default();
    let port = smtp_server(&ca, shared.clone()).await;
    let dir = std::env::temp_dir().join(format!("fd-email-{}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("smtp-password"), format!("{PASSWORD}\n")).unwrap();
    let config = dir.join("factorydash.toml");
    std::fs::write(
        &config,
        format!(
            r#"time-zone = "UTC"

[[alarm]]
name = "Faults"
condition = "fault"
priority = "high"

[[alarm-email]]
server = "localhost"
port = {port}
tls = "starttls"
ca-file = "ca.pem"
username = "{USER}"
password-file = "smtp-password"
from = "factorydash <factorydash@plant.example>"
to = ["maintenance@plant.example", "Shift Lead <lead@plant.example>"]
digest = "2s"
retry-for = "10m"
link-base = "http://dash.example"
"#
        ),
    )
    .unwrap();
    let recording = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../recordings/nist-3-machines-shdr-2016");
    let fd = start(&[
        "serve",
        "--config",
        config.to_str().unwrap(),
        "--replay",
        recording.to_str().unwrap(),
        "--speed",
        "5000",
        "--listen",
        "127.0.0.1:0",
    ])
    .await;
    let base = fd.base.clone();

    // The flapping 3AA Fault is raised and delivered (after the first DATA's 451).
    let deadline = Instant::now() + Duration::from_secs(120);
    let alarm = loop {
        let (_, active) = get_json(&format!("{base}/api/alarms/active")).await;
        let flapping = active["alarms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["nativeCode"] == "3AA")
            .cloned();
        let delivered = !shared.lock().unwrap().accepted.is_empty();
        if let (Some(a), true) = (flapping, delivered) {
            break a;
        }
        assert!(Instant::now() < deadline, "no alarm e-mail: {active}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let id = alarm["id"].as_u64().unwrap();
    let client = reqwest::Client::new();
    let acked = client
        .post(format!("{base}/api/alarms/{id}/acknowledge"))
        .json(&json!({ "comment": "on it" }))
        .send()
        .await
        .unwrap();
    assert_eq!(acked.status(), 200);
    let marker = format!("alarm #{id}:");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let acknowledged = shared
            .lock()
            .unwrap()
            .accepted
            .iter()
            .map(|m| quoted_printable(&m.data))
            .any(|d| {
                d.split("\n\n").any(|p| {
                    p.starts_with("HIGH acknowledged Faults (")
                        && p.lines().nth(1).is_some_and(|l| l.contains(&marker))
                })
            });
        if acknowledged {
            break;
        }
        if Instant::now() > deadline {
            let all: Vec<String> = shared
                .lock()
                .unwrap()
                .accepted
                .iter()
                .map(|m| quoted_printable(&m.data))
                .collect();
            panic!("the acknowledgement was not e-mailed: {all:#?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // What is left of the replay's changes goes out in the next digest.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let accepted = {
        let server = shared.lock().unwrap();
        assert_eq!(server.refused, 1);
        server.accepted.clone()
    };
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    let mut changes: Vec<String> = Vec::new();
    for mail in &accepted {
        // (The server takes MAIL only after AUTH, and AUTH only over TLS.)
        assert!(mail.tls && mail.authenticated);
        assert_eq!(
            mail.recipients,
            ["<maintenance@plant.example>", "<lead@plant.example>"]
        );
        let data = &mail.data;
        assert!(
            data.contains("From: factorydash <factorydash@plant.example>"),
            "{data}"
        );
        assert!(data.contains("Subject: [HIGH] "), "{data}");
        assert!(data.contains("multipart/alternative"), "{data}");
        assert!(part(data, "text/html").is_some(), "{data}");
        let plain = quoted_printable(part(data, "text/plain").expect("a plain part"));
        assert!(
            plain.contains("http://dash.example/device?device="),
            "{plain}"
        );
        // Message-ID: <alarm-FIRST[-LAST].QUEUED@factorydash>, the outbox ids it carries.
        let id = data
            .lines()
            .find_map(|l| l.strip_prefix("Message-ID: <alarm-"))
            .expect("a Message-ID naming the delivery");
        let ids = &id[..id.find('.').unwrap()];
        let (first, last) = ids.split_once('-').unwrap_or((ids, ids));
        let range = (first.parse::<u64>().unwrap(), last.parse::<u64>().unwrap());
        // Each change is a paragraph: its kind, then its alarm.
        let here: Vec<String> = plain
            .split("\n\n")
            .filter(|p| p.lines().nth(1).is_some_and(|l| l.contains("alarm #")))
            .map(|p| p.lines().take(2).collect::<Vec<_>>().join(" "))
            .collect();
        assert_eq!(here.len() as u64, range.1 - range.0 + 1, "{plain}");
        changes.extend(here);
        ranges.push(range);
    }
    // Every change was delivered in exactly one accepted message, in order: the messages'
    // outbox ids follow each other without a repeat or a hole.
    assert_eq!(ranges.first().map(|r| r.0), Some(1), "{ranges:?}");
    for pair in ranges.windows(2) {
        assert_eq!(pair[1].0, pair[0].1 + 1, "{ranges:?}");
    }
    assert!(
        changes
            .iter()
            .any(|l| l.starts_with("HIGH raised") && l.contains(&marker)),
        "{changes:#?}"
    );
    let (status, log) = get_json(&format!("{base}/api/alarms/deliveries")).await;
    assert_eq!(status, 200);
    let attempts = log["attempts"].as_array().unwrap();
    assert!(
        attempts
            .iter()
            .any(|a| a["kind"] == "email" && a["outcome"] == "failed" && a["status"] == 451),
        "{log}"
    );
    assert!(
        attempts
            .iter()
            .any(|a| a["kind"] == "email" && a["outcome"] == "delivered" && a["status"] == 250),
        "{log}"
    );
    assert!(
        attempts
            .iter()
            .all(|a| a["receiver"] == "mailto:maintenance@plant.example,lead@plant.example"),
        "{log}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
