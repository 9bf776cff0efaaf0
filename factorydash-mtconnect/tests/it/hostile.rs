//! Agents that answer in the MTConnect 2.6+ error form, restart, refuse a count, send
//! sequences that cannot be followed, or send more than any document should be: a real HTTP
//! server on 127.0.0.1 answers as such an agent would, and the client and the follower are
//! asserted to recover, or to refuse with a typed error and without holding the body.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use factorydash_core::ResumePoint;
use factorydash_mtconnect::client::{
    AgentClient, ClientError, Follower, FollowerConfig, Restart, SequenceFault,
};
use factorydash_mtconnect::error::MAX_ERROR_TEXT;
use factorydash_mtconnect::{
    parse_error, write_error_document, AgentError, ErrorCode, ErrorDocument, ErrorForm, Header,
    ProblemKind, QueryParameter,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

// ---------------------------------------------------------------- parsing the error forms

#[test]
fn the_reference_agents_2_7_out_of_range_is_read_with_its_details() {
    let doc = parse_error(&crate::fixture(
        "cppagent-2.7-live-error-out-of-range-from.xml",
    ))
    .unwrap();
    assert_eq!(doc.errors.len(), 1);
    let e = &doc.errors[0];
    assert_eq!(e.code, ErrorCode::OutOfRange);
    assert_eq!(e.text, "'from' must be greater than 1082");
    let p = e.query_parameter.as_ref().unwrap();
    assert_eq!(p.name, "from");
    assert_eq!(
        (p.value_integer(), p.minimum_integer(), p.maximum_integer()),
        (Some(518), Some(1083), Some(2107))
    );
    assert_eq!(e.request.as_deref(), Some("MTConnectStreams"));
    assert_eq!(e.uri.as_deref(), Some("/sample?count=1000&from=518"));
    assert_eq!(doc.header.instance_id, 1_795_839_656);
    assert_eq!(doc.header.buffer_size, Some(1024));
    assert_eq!(
        doc.to_string(),
        "OUT_OF_RANGE: 'from' must be greater than 1082 (from=518, accepted 1083 to 2107)"
    );

    let count = parse_error(&crate::fixture(
        "cppagent-2.7-live-error-out-of-range-count.xml",
    ))
    .unwrap();
    let p = count.errors[0].query_parameter.as_ref().unwrap();
    assert_eq!(p.name, "count");
    assert_eq!(
        (p.value_integer(), p.minimum_integer(), p.maximum_integer()),
        (Some(100_000), Some(-1024), Some(1024))
    );
}

#[test]
fn the_old_forms_are_still_read() {
    // 1.1–2.5: Errors/Error with the text; 1.0.1 and earlier: one Error, no Errors.
    let header = r#"<Header creationTime="2026-11-28T04:22:46Z" sender="a" instanceId="7" version="1.8.0" bufferSize="131072"/>"#;
    let with_errors = format!(
        r#"<MTConnectError xmlns="urn:mtconnect.org:MTConnectError:1.3">{header}<Errors><Error errorCode="OUT_OF_RANGE">'from' must be greater than 1082</Error><Error errorCode="INVALID_PATH">bad &amp; worse</Error></Errors></MTConnectError>"#
    );
    let doc = parse_error(with_errors.as_bytes()).unwrap();
    assert_eq!(doc.errors.len(), 2);
    assert_eq!(doc.errors[0].code, ErrorCode::OutOfRange);
    assert_eq!(doc.errors[0].text, "'from' must be greater than 1082");
    assert_eq!(doc.errors[0].query_parameter, None);
    assert_eq!(doc.errors[1].code, ErrorCode::InvalidXpath);
    assert_eq!(doc.errors[1].text, "bad & worse");

    let single = format!(
        r#"<MTConnectError xmlns="urn:mtconnect.org:MTConnectError:1.0">{header}<Error errorCode="NO_DEVICE">no such device</Error></MTConnectError>"#
    );
    let doc = parse_error(single.as_bytes()).unwrap();
    assert_eq!(doc.errors.len(), 1);
    assert_eq!(doc.errors[0].code, ErrorCode::NoDevice);
    assert_eq!(doc.errors[0].text, "no such device");
}

#[test]
fn every_2_6_error_element_is_read_with_or_without_its_error_code() {
    let kinds = [
        ("InvalidRequest", ErrorCode::InvalidRequest),
        ("InvalidURI", ErrorCode::InvalidUri),
        ("InvalidXPath", ErrorCode::InvalidXpath),
        ("NoDevice", ErrorCode::NoDevice),
        ("OutOfRange", ErrorCode::OutOfRange),
        ("TooMany", ErrorCode::TooMany),
        ("Unsupported", ErrorCode::Unsupported),
        ("AssetNotFound", ErrorCode::AssetNotFound),
        ("InternalError", ErrorCode::InternalError),
        ("Unauthorized", ErrorCode::Unauthorized),
        ("InvalidParameterValue", ErrorCode::InvalidParameterValue),
        ("InvalidQueryParameter", ErrorCode::InvalidQueryParameter),
        ("QueryError", ErrorCode::QueryError),
        ("SomethingNew", ErrorCode::Other("SOMETHING_NEW".into())),
    ];
    for (element, code) in kinds {
        assert_eq!(code.element_name(), element);
        // The schemas require no errorCode attribute: the element names the kind.
        let xml = format!(
            r#"<MTConnectError xmlns="urn:mtconnect.org:MTConnectError:2.7"><Header instanceId="1" sender="a" version="2.7.0.9"/><Errors><{element}><ErrorMessage> the message </ErrorMessage><URI>/x</URI></{element}><{element}/></Errors></MTConnectError>"#
        );
        let doc = parse_error(xml.as_bytes()).unwrap();
        assert_eq!(doc.errors.len(), 2, "{element}");
        assert_eq!(doc.errors[0].code, code, "{element}");
        assert_eq!(doc.errors[0].text, "the message");
        assert_eq!(doc.errors[0].uri.as_deref(), Some("/x"));
        assert_eq!(doc.errors[1].code, code, "{element}: self-closed");

        // Written in the 2.6+ form and read back: the same document.
        let error = AgentError::new(code.clone(), format!("{element} <&> happened"))
            .with_query_parameter(
                QueryParameter::new("count")
                    .with_value("100000")
                    .with_range(Some(1), Some(1024)),
            )
            .with_request("MTConnectStreams", "/sample?count=100000&from=1");
        let doc = ErrorDocument {
            header: Header::new(1_795_839_656, "vm", "2.7.0.9").with_buffer_size(1024),
            errors: vec![error],
        };
        let written = write_error_document(&doc, ErrorForm::V2_6);
        assert!(written.contains(&format!("<{element} errorCode=\"{code}\">")));
        assert_eq!(parse_error(written.as_bytes()).unwrap(), doc, "{written}");
        // And in the old form: the code and the text survive.
        let old = parse_error(write_error_document(&doc, ErrorForm::Legacy).as_bytes()).unwrap();
        assert_eq!(
            (&old.errors[0].code, &old.errors[0].text),
            (&code, &doc.errors[0].text)
        );
    }
}

#[test]
fn an_agents_message_cannot_grow_without_bound() {
    let long = "x".repeat(10 * MAX_ERROR_TEXT);
    let xml = format!(
        r#"<MTConnectError><Errors><OutOfRange errorCode="OUT_OF_RANGE"><ErrorMessage>{long}</ErrorMessage></OutOfRange></Errors></MTConnectError>"#
    );
    let doc = parse_error(xml.as_bytes()).unwrap();
    assert_eq!(doc.errors[0].text.len(), MAX_ERROR_TEXT);
}

// ---------------------------------------------------------------- an agent on 127.0.0.1

/// A body an agent sends.
#[derive(Clone)]
enum Body {
    /// This document, with `Content-Length`.
    Doc(Vec<u8>),
    /// Chunked blanks that never end.
    Endless,
    /// `Content-Encoding: gzip`: these bytes, sent `n` times (gzip members), chunked.
    Gzip(Vec<u8>, usize),
    /// A `multipart/mixed` stream whose one part never reaches its boundary.
    EndlessPart,
}

/// The answer to one request.
#[derive(Clone)]
struct Answer {
    status: u16,
    body: Body,
}

fn ok(doc: String) -> Answer {
    Answer {
        status: 200,
        body: Body::Doc(doc.into_bytes()),
    }
}

fn refuse(doc: Vec<u8>) -> Answer {
    Answer {
        status: 400,
        body: Body::Doc(doc),
    }
}

type Handler = Arc<dyn Fn(&str) -> Answer + Send + Sync>;

/// A scripted agent: answers each request's path (`/sample?from=…`) as `handler` says.
/// Returns the base URL and the number of requests answered so far.
async fn agent(
    handler: impl Fn(&str) -> Answer + Send + Sync + 'static,
) -> (String, Arc<AtomicUsize>) {
    let handler: Handler = Arc::new(handler);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = requests.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let handler = handler.clone();
            let counted = counted.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                counted.fetch_add(1, Ordering::SeqCst);
                let line = String::from_utf8_lossy(&head);
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let answer = handler(&path);
                let _ = write_answer(&mut socket, answer).await;
            });
        }
    });
    (base, requests)
}

async fn write_answer(socket: &mut tokio::net::TcpStream, answer: Answer) -> std::io::Result<()> {
    let status = answer.status;
    let chunk = |data: &[u8]| {
        let mut c = format!("{:x}\r\n", data.len()).into_bytes();
        c.extend_from_slice(data);
        c.extend_from_slice(b"\r\n");
        c
    };
    match answer.body {
        Body::Doc(doc) => {
            let head = format!("HTTP/1.1 {status} X\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", doc.len());
            socket.write_all(head.as_bytes()).await?;
            socket.write_all(&doc).await
        }
        Body::Endless => {
            socket.write_all(format!("HTTP/1.1 {status} X\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n").as_bytes()).await?;
            socket
                .write_all(&chunk(b"<?xml version=\"1.0\"?><MTConnectStreams>"))
                .await?;
            let blanks = chunk(&[b' '; 64 << 10]);
            loop {
                socket.write_all(&blanks).await?;
            }
        }
        Body::Gzip(member, n) => {
            socket.write_all(format!("HTTP/1.1 {status} X\r\nContent-Type: text/xml\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n").as_bytes()).await?;
            for _ in 0..n {
                socket.write_all(&chunk(&member)).await?;
            }
            socket.write_all(b"0\r\n\r\n").await
        }
        Body::EndlessPart => {
            socket.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: multipart/mixed;boundary=b0b\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n").await?;
            socket.write_all(&chunk(b"--b0b\r\nContent-type: text/xml\r\n\r\n<?xml version=\"1.0\"?><MTConnectStreams>")).await?;
            let blanks = chunk(&[b' '; 64 << 10]);
            loop {
                socket.write_all(&blanks).await?;
            }
        }
    }
}

/// The value of `name` in a request path's query.
fn query(path: &str, name: &str) -> Option<u64> {
    path.split_once('?')?
        .1
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
}

/// A Streams document as a 2.7 agent writes it, with an Availability observation at each
/// of `sequences` (second `s % 60` of a minute, so repeated sequences may differ in time).
fn streams(instance: u64, first: u64, next: u64, last: u64, sequences: &[(u64, u32)]) -> String {
    let mut obs = String::new();
    for (s, second) in sequences {
        obs.push_str(&format!(
            r#"<Availability dataItemId="avail" timestamp="2026-11-28T04:22:{:02}.000000Z" sequence="{s}">AVAILABLE</Availability>"#,
            second % 60
        ));
    }
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<MTConnectStreams xmlns="urn:mtconnect.org:MTConnectStreams:2.7"><Header creationTime="2026-11-28T04:22:46Z" sender="vm" instanceId="{instance}" version="2.7.0.9" bufferSize="1024" nextSequence="{next}" firstSequence="{first}" lastSequence="{last}"/><Streams><DeviceStream name="OKUMA" uuid="OKUMA.123"><ComponentStream component="Device" name="OKUMA" componentId="d1"><Events>{obs}</Events></ComponentStream></DeviceStream></Streams></MTConnectStreams>"#
    )
}

/// `n` consecutive sequences from `from`, each at its own second.
fn run(from: u64, n: u64) -> Vec<(u64, u32)> {
    (from..from + n).map(|s| (s, s as u32)).collect()
}

/// The reference agent's capture, with its Header's instanceId replaced.
fn capture_with_instance(name: &str, instance: u64) -> Vec<u8> {
    String::from_utf8(crate::fixture(name))
        .unwrap()
        .replace(
            "instanceId=\"1795839656\"",
            &format!("instanceId=\"{instance}\""),
        )
        .into_bytes()
}

fn follower(base: &str, count: u64) -> Follower {
    Follower::new(
        AgentClient::new(base).unwrap(),
        FollowerConfig::new().with_count(count),
    )
}

fn resume(f: &mut Follower, instance_id: u64, next_sequence: u64) {
    f.resume_from(&ResumePoint {
        agent: f.client().base_url().to_owned(),
        instance_id,
        next_sequence,
    });
}

// ---------------------------------------------------------------- the follower recovers

#[tokio::test]
async fn out_of_range_in_the_2_6_form_continues_from_the_buffers_start_with_a_gap() {
    // The buffer (1,024) wrapped past our resume point 518 while we were away: the agent
    // answers as captured; its oldest observation is 1083.
    let (base, _) = agent(|path| match query(path, "from") {
        Some(518) => refuse(crate::fixture(
            "cppagent-2.7-live-error-out-of-range-from.xml",
        )),
        Some(from) => ok(streams(
            1_795_839_656,
            1083,
            from + 10,
            2106,
            &run(from, 10),
        )),
        None => ok(streams(1_795_839_656, 1083, 1093, 2106, &run(1083, 10))),
    })
    .await;
    let mut f = follower(&base, 1000);
    resume(&mut f, 1_795_839_656, 518);
    let step = f.step().await.expect("recovers from OUT_OF_RANGE");
    let gap = step.gap.expect("a gap");
    assert_eq!(
        (gap.instance_id, gap.from, gap.to),
        (1_795_839_656, 518, Some(1083))
    );
    assert_eq!(step.restarted, None);
    assert_eq!(step.batch.observations[0].sequence, 1083);
    assert_eq!(
        f.position().map(|p| (p.instance_id, p.next_sequence)),
        Some((1_795_839_656, 1093))
    );
    // And on from there.
    let step = f.step().await.unwrap();
    assert_eq!(step.gap, None);
    assert_eq!(step.batch.observations[0].sequence, 1093);
}

#[tokio::test]
async fn a_restarted_agent_is_read_from_its_new_start_at_once() {
    // We stopped at 5000 of instance 1; the agent restarted (instance 2) and holds 1..=39:
    // `from=5000` is past its end, refused in the 2.6 form with the new instanceId.
    let (base, _) = agent(|path| match query(path, "from") {
        Some(5000) => refuse(capture_with_instance(
            "cppagent-2.7-live-error-out-of-range-from.xml",
            2,
        )),
        Some(from) => ok(streams(2, 1, 40, 39, &run(from, 40 - from))),
        None => ok(streams(2, 1, 40, 39, &run(1, 39))),
    })
    .await;
    let mut f = follower(&base, 1000);
    resume(&mut f, 1, 5000);
    let step = f
        .step()
        .await
        .expect("no waiting for the new instance to pass 5000");
    assert_eq!(
        step.restarted,
        Some(Restart {
            previous_instance_id: 1,
            instance_id: 2
        })
    );
    let gap = step.gap.expect("a gap of unknown end");
    assert_eq!((gap.instance_id, gap.from, gap.to), (1, 5000, None));
    let sequences: Vec<u64> = step.batch.observations.iter().map(|o| o.sequence).collect();
    assert_eq!(sequences, (1..40).collect::<Vec<_>>());
    assert_eq!(step.batch.instance_id, 2);
    assert_eq!(
        f.position().map(|p| (p.instance_id, p.next_sequence)),
        Some((2, 40))
    );
}

#[tokio::test]
async fn the_instance_of_the_page_read_after_a_restart_is_the_one_followed() {
    // We stopped at 5000 of instance 1. The answer to `from=5000` comes from instance 2,
    // which means nothing by 5000; by the time its start is read, it restarted again
    // (instance 3, holding 1..=39): what is stored, and the restart told, are instance 3's.
    let (base, _) = agent(|path| match query(path, "from") {
        Some(from) => ok(streams(2, 1, 6001, 6000, &run(from, 10))),
        None => ok(streams(3, 1, 40, 39, &run(1, 39))),
    })
    .await;
    let mut f = follower(&base, 1000);
    resume(&mut f, 1, 5000);
    let step = f.step().await.unwrap();
    assert_eq!(
        step.restarted,
        Some(Restart {
            previous_instance_id: 1,
            instance_id: 3
        })
    );
    let gap = step.gap.expect("a gap of unknown end");
    assert_eq!((gap.instance_id, gap.from, gap.to), (1, 5000, None));
    assert_eq!(step.batch.instance_id, 3);
    assert_eq!(step.batch.observations.len(), 39);
    assert_eq!(
        f.position().map(|p| (p.instance_id, p.next_sequence)),
        Some((3, 40))
    );

    // Or the agent answers the followed instance again when the new one's start is read
    // (two agents behind one address, answering in turn): that page is not the new
    // instance's, and what was read of it already is not taken again. The new instance
    // is followed from its own first sequence (its first answer's Header), asked for at
    // the next step.
    let (base, _) = agent(|path| match query(path, "from") {
        Some(from) => ok(streams(2, 1, 6001, 6000, &run(from, 10))),
        None => ok(streams(1, 1, 1001, 9000, &run(1, 1000))),
    })
    .await;
    let mut f = follower(&base, 1000);
    resume(&mut f, 1, 5000);
    let step = f.step().await.unwrap();
    assert!(step.batch.observations.is_empty());
    assert_eq!(
        step.restarted,
        Some(Restart {
            previous_instance_id: 1,
            instance_id: 2
        })
    );
    assert_eq!(
        f.position().map(|p| (p.instance_id, p.next_sequence)),
        Some((2, 1))
    );
    let step = f.step().await.unwrap();
    assert_eq!(step.batch.instance_id, 2);
    let sequences: Vec<u64> = step.batch.observations.iter().map(|o| o.sequence).collect();
    assert_eq!(sequences, (1..11).collect::<Vec<_>>());
}

/// Two agents behind one round-robin address: every answer comes from the other instance
/// than the last. Both are followed to their ends, each observation once, without a
/// restart or a sequence error after the first sight of the second; no step says it is
/// caught up while the other instance holds more (a caller would wait a poll interval).
#[tokio::test]
async fn an_agent_alternating_at_every_request_is_followed_without_stalling() {
    let turn = Arc::new(AtomicUsize::new(0));
    let (base, requests) = agent(move |path| {
        // Instance 1 holds 1..=300 and instance 2 holds 1..=200.
        let instance = 1 + (turn.fetch_add(1, Ordering::SeqCst) % 2) as u64;
        let last = if instance == 1 { 300 } else { 200 };
        let from = query(path, "from").unwrap_or(1);
        if from > last + 1 {
            return refuse(capture_with_instance(
                "cppagent-2.7-live-error-out-of-range-from.xml",
                instance,
            ));
        }
        let n = 25.min(last + 1 - from);
        ok(streams(instance, 1, from + n, last, &run(from, n)))
    })
    .await;
    let mut f = follower(&base, 25);
    let mut seen = std::collections::BTreeMap::<u64, Vec<u64>>::new();
    let mut restarts = 0;
    let mut caught_up_early = 0;
    for _ in 0..200 {
        let step = f.step().await.expect("no sequence error");
        restarts += usize::from(step.restarted.is_some());
        let list = seen.entry(step.batch.instance_id).or_default();
        list.extend(step.batch.observations.iter().map(|o| o.sequence));
        if seen.get(&1).map(Vec::len) == Some(300) && seen.get(&2).map(Vec::len) == Some(200) {
            break;
        }
        caught_up_early += usize::from(step.caught_up);
    }
    assert_eq!(caught_up_early, 0, "caught up while an instance held more");
    assert_eq!(
        seen[&1],
        (1..=300).collect::<Vec<_>>(),
        "instance 1, each once"
    );
    assert_eq!(
        seen[&2],
        (1..=200).collect::<Vec<_>>(),
        "instance 2, each once"
    );
    assert_eq!(restarts, 1, "the first sight of the second instance");
    let asked = requests.load(Ordering::SeqCst);
    assert!(asked < 80, "{asked} requests for 20 pages");
}

#[tokio::test]
async fn a_count_above_the_buffer_size_is_capped() {
    // The reference agent refuses count > bufferSize (1,024) as captured.
    let (base, requests) = agent(|path| {
        let count = query(path, "count").unwrap();
        if count > 1024 {
            return refuse(crate::fixture(
                "cppagent-2.7-live-error-out-of-range-count.xml",
            ));
        }
        let from = query(path, "from").unwrap_or(1);
        ok(streams(1, 1, from + 5, 2000, &run(from, 5)))
    })
    .await;
    let mut f = follower(&base, 5000);
    let step = f.step().await.expect("the count is capped");
    assert_eq!(step.batch.observations.len(), 5);
    assert_eq!(f.count(), 1024);
    assert_eq!(
        requests.load(Ordering::SeqCst),
        2,
        "refused once, then asked with 1024"
    );
    f.step().await.unwrap();
    assert_eq!(
        requests.load(Ordering::SeqCst),
        3,
        "asked with 1024 from then on"
    );
}

// ---------------------------------------------------------------- the follower refuses

#[tokio::test]
async fn a_stuck_agent_is_refused_with_a_sequence_error() {
    // nextSequence stays at `from` while lastSequence says 2000 are there.
    let (base, _) = agent(|path| {
        let from = query(path, "from").unwrap_or(1);
        ok(streams(1, 1, from, 2000, &[]))
    })
    .await;
    let mut f = follower(&base, 100);
    resume(&mut f, 1, 500);
    let e = f.step().await.unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Sequence {
                kind: SequenceFault::Stuck {
                    next_sequence: 500,
                    last_sequence: 2000,
                    ..
                },
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("nextSequence stays at 500"), "{e}");
    assert_eq!(
        f.position().map(|p| (p.instance_id, p.next_sequence)),
        Some((1, 500)),
        "unchanged"
    );
}

#[tokio::test]
async fn next_sequence_going_back_is_refused() {
    let (base, _) = agent(|path| {
        let from = query(path, "from").unwrap_or(1);
        ok(streams(1, 1, from - 100, 2000, &run(from, 3)))
    })
    .await;
    let mut f = follower(&base, 100);
    resume(&mut f, 1, 500);
    let e = f.step().await.unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Sequence {
                kind: SequenceFault::Backwards {
                    expected: 500,
                    next_sequence: 400,
                    ..
                },
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(
        f.position().map(|p| (p.instance_id, p.next_sequence)),
        Some((1, 500))
    );
}

#[tokio::test]
async fn sequences_beyond_2_pow_63_are_refused() {
    const BIG: u64 = (1 << 63) + 5;
    let (base, _) = agent(|_| ok(streams(1, 1, BIG + 1, BIG, &[(3, 3), (BIG, 4)]))).await;
    let mut f = follower(&base, 100);
    let e = f.step().await.unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Sequence {
                kind: SequenceFault::Overflow { sequence },
                ..
            } if sequence > i64::MAX as u64
        ),
        "{e}"
    );
    assert_eq!(f.position(), None);
}

/// Numbers no 64-bit integer holds: each of the Header's sequences, and an observation's
/// sequence, at 2^64. They used to be left out as problems (the Header field absent, the
/// observation skipped), so the follower took the answer for one holding nothing and asked
/// again at once, for ever, in good health.
#[tokio::test]
async fn sequences_beyond_2_pow_64_are_refused() {
    const BEYOND: &str = "18446744073709551616";
    let cases = [
        ("nextSequence", r#"nextSequence="4""#),
        ("firstSequence", r#"firstSequence="1""#),
        ("lastSequence", r#"lastSequence="3""#),
        ("instanceId", r#"instanceId="1""#),
        ("sequence=", r#"sequence="3""#),
    ];
    for (name, attribute) in cases {
        let key = attribute.split('=').next().unwrap();
        let doc = streams(1, 1, 4, 3, &[(1, 1), (2, 2), (3, 3)]).replacen(
            attribute,
            &format!(r#"{key}="{BEYOND}""#),
            1,
        );
        assert!(doc.contains(BEYOND), "{name}");
        let (base, _) = agent(move |_| ok(doc.clone())).await;
        let mut f = follower(&base, 100);
        let e = f.step().await.unwrap_err();
        assert!(
            matches!(
                &e,
                ClientError::Sequence {
                    kind: SequenceFault::OutOfRange { problem },
                    ..
                } if problem.kind == ProblemKind::OutOfRange
            ),
            "{name}: {e}"
        );
        let text = e.to_string();
        assert!(
            text.contains(BEYOND) && text.contains("beyond 2^64 - 1"),
            "{name}: {text}"
        );
        assert_eq!(f.position(), None, "{name}: nothing taken");
    }
}

#[tokio::test]
async fn a_sequence_is_taken_once_whatever_its_timestamps() {
    // Sequence 11 twice in one page (another timestamp the second time), and a
    // nextSequence (12) that points back at 12 once the next page has sent it again.
    let (base, _) = agent(|path| match query(path, "from") {
        None | Some(10) => ok(streams(
            1,
            10,
            12,
            20,
            &[(10, 0), (11, 1), (11, 30), (12, 2)],
        )),
        Some(from) => ok(streams(1, 10, 21, 20, &run(from, 21 - from))),
    })
    .await;
    let mut f = follower(&base, 100);
    let step = f.step().await.unwrap();
    let got: Vec<(u64, u32)> = step
        .batch
        .observations
        .iter()
        .map(|o| (o.sequence, chrono::Timelike::second(&o.timestamp)))
        .collect();
    assert_eq!(
        got,
        vec![(10, 0), (11, 1), (12, 2)],
        "the first of each kept"
    );
    assert!(
        step.problems
            .iter()
            .any(|p| p.message.contains("repeat a sequence")),
        "{:?}",
        step.problems
    );
    // The header said nextSequence 12, but 12 was in the page: go on from 13.
    assert_eq!(
        f.position().map(|p| (p.instance_id, p.next_sequence)),
        Some((1, 13))
    );
    let step = f.step().await.unwrap();
    assert_eq!(step.batch.observations[0].sequence, 13);
}

#[tokio::test]
async fn an_answer_without_next_sequence_gives_no_bogus_gap() {
    let doc = streams(1, 1, 0, 0, &[])
        .replace(" nextSequence=\"0\"", "")
        .replace(" firstSequence=\"1\"", "");
    let (base, _) = agent(move |_| ok(doc.clone())).await;
    let mut f = follower(&base, 100);
    let e = f.step().await.unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::Sequence {
                kind: SequenceFault::Missing,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(f.position(), None, "not (instance, 0)");
}

// ---------------------------------------------------------------- bounded reading

const LIMIT: usize = 1 << 20;

async fn get_with_limit(answer: Answer) -> (Result<Vec<u8>, ClientError>, Duration) {
    let (base, _) = agent(move |_| answer.clone()).await;
    let client = AgentClient::new(&base).unwrap().with_max_document(LIMIT);
    assert_eq!(client.max_document(), LIMIT);
    let started = Instant::now();
    let result = client.get("/sample").await;
    (result, started.elapsed())
}

fn assert_too_large(result: &Result<Vec<u8>, ClientError>) {
    match result {
        Err(e @ ClientError::TooLarge { limit, .. }) => {
            assert_eq!(*limit, LIMIT);
            assert!(e.to_string().contains("document limit of 1 MiB"), "{e}");
        }
        other => panic!("expected TooLarge, got {:?}", other.as_ref().map(Vec::len)),
    }
}

#[tokio::test]
async fn a_body_that_never_ends_is_refused_at_the_limit() {
    let (result, took) = get_with_limit(Answer {
        status: 200,
        body: Body::Endless,
    })
    .await;
    assert_too_large(&result);
    assert!(
        took < Duration::from_secs(10),
        "refused while read: {took:?}"
    );
}

#[tokio::test]
async fn a_body_declared_larger_than_the_limit_is_refused_before_it_is_read() {
    let (result, _) = get_with_limit(Answer {
        status: 200,
        body: Body::Doc(vec![b' '; LIMIT + 1]),
    })
    .await;
    assert_too_large(&result);
    // Exactly the limit is taken.
    let (result, _) = get_with_limit(Answer {
        status: 200,
        body: Body::Doc(vec![b' '; LIMIT]),
    })
    .await;
    assert_eq!(result.unwrap().len(), LIMIT);
}

#[tokio::test]
async fn a_gzip_answer_is_inflated_and_refused_when_it_inflates_past_the_limit() {
    use std::io::Write;
    let gzip = |bytes: &[u8]| {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(bytes).unwrap();
        gz.finish().unwrap()
    };
    // 16 members of 1 MiB of zeros: 16 MiB inflated from about 16 KB.
    let member = gzip(&vec![0u8; 1 << 20]);
    assert!(member.len() < 8 << 10);
    let (result, _) = get_with_limit(Answer {
        status: 200,
        body: Body::Gzip(member, 16),
    })
    .await;
    assert_too_large(&result);
    // A small gzip answer is inflated and read as usual.
    let doc = streams(1, 1, 4, 3, &run(1, 3));
    let (base, _) = agent(move |_| Answer {
        status: 200,
        body: Body::Gzip(gzip(doc.as_bytes()), 1),
    })
    .await;
    let page = AgentClient::new(&base)
        .unwrap()
        .sample(None, 10)
        .await
        .unwrap();
    assert_eq!(page.observations.len(), 3);
}

#[tokio::test]
async fn a_streamed_part_that_never_reaches_its_boundary_is_refused_at_the_limit() {
    let (base, _) = agent(|_| Answer {
        status: 200,
        body: Body::EndlessPart,
    })
    .await;
    let client = AgentClient::new(&base).unwrap().with_max_document(LIMIT);
    let mut stream = client
        .stream(None, 10, Duration::from_secs(1), Duration::from_secs(10))
        .await
        .unwrap();
    let started = Instant::now();
    let result = stream.next_page(Duration::from_secs(5)).await;
    assert!(
        matches!(result, Err(ClientError::TooLarge { limit: LIMIT, .. })),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_part_that_never_ends_is_searched_once_and_refused_at_the_limit() {
    use factorydash_mtconnect::multipart::{MultipartError, MultipartParts};
    let mut parts = MultipartParts::new("b0b", 8 << 20);
    parts.push(b"--b0b\r\nContent-type: text/xml\r\n\r\n<MTConnectStreams>");
    let chunk = vec![b' '; 8 << 10];
    let started = Instant::now();
    let mut pushed = 0;
    let refused = loop {
        match parts.next_part() {
            Ok(None) => {}
            other => break other,
        }
        assert!(parts.pending() <= (8 << 20) + chunk.len());
        parts.push(&chunk);
        pushed += chunk.len();
    };
    assert_eq!(refused, Err(MultipartError::TooLarge { limit: 8 << 20 }));
    assert!(pushed <= (8 << 20) + chunk.len());
    // 1,024 reads of 8 KiB: each searches only what is new (quadratic would be ~4 GB of
    // searching and take seconds).
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------- credentials

/// Credentials in an agent URL go to the agent as basic authentication (decoded), and
/// nowhere else: not in the client's base URL (the agent's identity, what its batches are
/// stored under), not in the request line, not in the client's `Debug` form.
#[tokio::test]
async fn credentials_in_the_url_go_as_basic_auth_only() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = socket.read(&mut buf).await.unwrap();
            assert!(n > 0, "the request ended early");
            head.extend_from_slice(&buf[..n]);
        }
        socket
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            .await
            .unwrap();
        String::from_utf8(head).unwrap()
    });
    let client = AgentClient::new(&format!("http://us%40er:p%3Ass@127.0.0.1:{port}/vds/")).unwrap();
    assert_eq!(client.base_url(), format!("http://127.0.0.1:{port}/vds"));
    assert!(!format!("{client:?}").contains("p%3Ass"), "{client:?}");
    assert_eq!(client.get("/probe").await.unwrap(), b"ok");
    let head = server.await.unwrap();
    assert!(head.starts_with("GET /vds/probe HTTP/1.1\r\n"), "{head}");
    // base64 of "us@er:p:ss"
    assert!(
        head.to_ascii_lowercase()
            .contains("\r\nauthorization: basic dxnazxi6cdpzcw==\r\n"),
        "{head}"
    );
}

// ---------------------------------------------------------------- assets

#[tokio::test]
async fn assets_are_asked_by_type_and_count_bounded_and_refusals_told_apart() {
    let fixture = crate::fixture("factorydash-assets-cuttingtools-v2.0.xml");
    let (base, _) = agent(move |path| {
        if path == "/assets?type=CuttingTool&count=50" {
            Answer {
                status: 200,
                body: Body::Doc(fixture.clone()),
            }
        } else {
            Answer {
                status: 200,
                body: Body::Doc(format!("<MTConnectStreams>{path}</MTConnectStreams>").into()),
            }
        }
    })
    .await;
    let client = AgentClient::new(&base).unwrap();
    let parsed = client.assets("CuttingTool", 50).await.unwrap();
    assert_eq!(parsed.value.cutting_tools.len(), 6);
    // Another document than MTConnectAssets is no answer.
    let other = client.assets("File", 50).await.unwrap_err();
    assert!(
        matches!(other, ClientError::Document { .. }) && !other.is_refusal(),
        "{other:?}"
    );

    // An agent without assets: a 404, or an MTConnectError document.
    let (base, _) = agent(|_| Answer {
        status: 404,
        body: Body::Doc(b"not found".to_vec()),
    })
    .await;
    let e = AgentClient::new(&base)
        .unwrap()
        .assets("CuttingTool", 50)
        .await
        .unwrap_err();
    assert!(
        matches!(e, ClientError::Status { status: 404, .. }) && e.is_refusal(),
        "{e:?}"
    );
    let (base, _) = agent(|_| refuse(crate::fixture("error-no-device.xml"))).await;
    let e = AgentClient::new(&base)
        .unwrap()
        .assets("CuttingTool", 50)
        .await
        .unwrap_err();
    assert!(
        matches!(e, ClientError::Agent { .. }) && e.is_refusal(),
        "{e:?}"
    );

    // Bounded as every request: an answer that never ends is refused at the limit.
    let (base, _) = agent(|_| Answer {
        status: 200,
        body: Body::Endless,
    })
    .await;
    let e = AgentClient::new(&base)
        .unwrap()
        .with_max_document(LIMIT)
        .assets("CuttingTool", 50)
        .await
        .unwrap_err();
    assert!(
        matches!(e, ClientError::TooLarge { limit: LIMIT, .. }) && !e.is_refusal(),
        "{e:?}"
    );

    // An answer cut short is incomplete, not an empty set of tools.
    let cut = crate::fixture("factorydash-assets-cuttingtools-v2.0.xml");
    let (base, _) = agent(move |_| Answer {
        status: 200,
        body: Body::Doc(cut[..cut.len() / 2].to_vec()),
    })
    .await;
    let e = AgentClient::new(&base)
        .unwrap()
        .assets("CuttingTool", 50)
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Incomplete { .. }), "{e:?}");
}
