//! Streaming `/sample?interval=` over a real socket: the reference agent's raw captures are
//! served byte for byte on 127.0.0.1, cut into reads of every size.

use std::time::Duration;

use factorydash_mtconnect::client::{AgentClient, ClientError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn capture(name: &str) -> Vec<u8> {
    let path = crate::fixtures_dir().join("streams").join(name);
    factorydash_mtconnect::recording::read_maybe_gzipped(&path).unwrap()
}

enum Ending {
    /// Close the connection after the bytes.
    Close,
    /// Keep it open, silent.
    Stall,
}

/// Serves `bytes` once, in writes of `piece` bytes, then ends as told. Returns the base URL.
async fn serve(bytes: Vec<u8>, piece: usize, ending: Ending) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = [0u8; 4096];
        let _ = socket.read(&mut request).await;
        for chunk in bytes.chunks(piece) {
            if socket.write_all(chunk).await.is_err() {
                return;
            }
            socket.flush().await.unwrap();
            tokio::task::yield_now().await;
        }
        match ending {
            Ending::Close => drop(socket),
            Ending::Stall => {
                tokio::time::sleep(Duration::from_secs(60)).await;
                drop(socket);
            }
        }
    });
    base
}

async fn read_all(
    base: &str,
    silence: Duration,
) -> (
    Vec<factorydash_mtconnect::client::StreamsPage>,
    Result<(), ClientError>,
) {
    let client = AgentClient::new(base).unwrap();
    let mut stream = client
        .stream(None, 10, Duration::from_secs(1), Duration::from_secs(10))
        .await
        .unwrap();
    let mut pages = Vec::new();
    loop {
        match stream.next_page(silence).await {
            Ok(Some(page)) => pages.push(page),
            Ok(None) => return (pages, Ok(())),
            Err(e) => return (pages, Err(e)),
        }
    }
}

fn parts_in(raw: &[u8]) -> usize {
    let text = String::from_utf8_lossy(raw);
    let boundary = text
        .split("boundary=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    text.matches(&format!("--{boundary}\r\n")).count()
}

#[tokio::test]
async fn every_part_of_a_real_stream_arrives_once_whatever_the_reads() {
    // `curl --raw` printed the body only (chunk-size lines included): give it its headers,
    // as recorded in the agent's own streaming answer.
    let mut raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nServer: MTConnectAgent\r\nConnection: close\r\nContent-Type: multipart/mixed;boundary=0a8e3055-4912-477d-b49c-d578df98a320\r\n\r\n".to_vec();
    raw.extend(capture(
        "stream_from_start_interval1000_count10.curl-raw.txt.gz",
    ));
    let expected = parts_in(&raw);
    assert!(expected >= 40, "{expected}");
    for piece in [1usize, 7, 333, 4096, 1 << 20] {
        let base = serve(raw.clone(), piece, Ending::Close).await;
        let (pages, end) = read_all(&base, Duration::from_secs(5)).await;
        // The capture stops where the capture stopped: the last chunk may be cut.
        assert!(
            end.is_ok() || matches!(end, Err(ClientError::Http { .. })),
            "{end:?}"
        );
        assert!(
            pages.len() + 1 >= expected && pages.len() <= expected,
            "piece {piece}: {} of {expected}",
            pages.len()
        );
        // Consecutive: each part starts where the previous one's nextSequence said.
        let mut next = pages[0].observations.first().unwrap().sequence;
        for page in &pages {
            if let Some(first) = page.observations.first() {
                assert_eq!(first.sequence, next, "piece {piece}");
            }
            next = page.header.next_sequence.unwrap();
        }
    }
}

#[tokio::test]
async fn heartbeats_are_empty_documents_whose_next_sequence_still_moves() {
    let raw = capture("stream_heartbeat2000_mazak.raw.txt");
    let base = serve(raw.clone(), 50, Ending::Close).await;
    let (pages, _) = read_all(&base, Duration::from_secs(5)).await;
    assert_eq!(pages.len(), parts_in(&raw));
    assert!(pages.iter().all(|p| p.observations.is_empty()));
    assert!(pages
        .windows(2)
        .all(|w| w[0].header.next_sequence <= w[1].header.next_sequence));
}

#[tokio::test]
async fn a_silent_stream_is_declared_stalled() {
    let raw = capture("stream_live_interval1000_count10.raw.txt");
    let base = serve(raw.clone(), 512, Ending::Stall).await;
    let started = std::time::Instant::now();
    let (pages, end) = read_all(&base, Duration::from_millis(400)).await;
    assert!(matches!(end, Err(ClientError::Stalled { .. })), "{end:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(pages.len() >= parts_in(&raw) - 1);
}

#[tokio::test]
async fn a_connection_dropped_mid_part_never_yields_the_partial_part() {
    let raw = capture("stream_live_interval1000_count10.raw.txt");
    let text = String::from_utf8_lossy(&raw).into_owned();
    // Cut in the middle of the fifth part's document.
    let cut = text.match_indices("<MTConnectStreams").nth(4).unwrap().0 + 300;
    let base = serve(raw[..cut].to_vec(), 256, Ending::Close).await;
    let (pages, end) = read_all(&base, Duration::from_secs(5)).await;
    assert_eq!(pages.len(), 4, "{end:?}");
}

#[tokio::test]
async fn an_agent_that_does_not_stream_says_so() {
    // A plain document where a stream was asked for, as 1.2-era agents answer.
    let doc = std::fs::read(crate::fixtures_dir().join("nist-smstestbed-current-2025-02-28.xml"))
        .unwrap();
    let mut raw = format!("HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", doc.len()).into_bytes();
    raw.extend_from_slice(&doc);
    let base = serve(raw, 4096, Ending::Close).await;
    let client = AgentClient::new(&base).unwrap();
    let result = client
        .stream(None, 10, Duration::from_secs(1), Duration::from_secs(10))
        .await;
    assert!(
        matches!(result, Err(ClientError::StreamingUnsupported { .. })),
        "{result:?}"
    );
}
