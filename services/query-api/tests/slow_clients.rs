//! Slow and heavy clients, with a raw socket: slow headers, a slow body, a chunked body that
//! never ends, and more connections than the API takes. Each holds nothing for long.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

const TIMEOUT: Duration = Duration::from_secs(1);

async fn stack(max_connections: usize) -> Stack {
    let mut options = relaxed();
    options.connections = rainlogs_query_api::ConnectionLimits {
        max_connections,
        header_timeout: TIMEOUT,
        body_timeout: TIMEOUT,
    };
    Stack::start_with(options, |_| {}).await
}

async fn connect(stack: &Stack) -> TcpStream {
    TcpStream::connect(stack.base.trim_start_matches("http://"))
        .await
        .expect("connect")
}

/// Reads until the server closes the connection; what it sent, and when it closed.
async fn until_closed(stream: &mut TcpStream, limit: Duration) -> (String, Duration) {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit, stream.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
            Err(_) => panic!("still open after {limit:?}"),
        }
    }
    (
        String::from_utf8_lossy(&received).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn headers_that_trickle_in_are_cut_off() {
    let stack = stack(64).await;
    let mut stream = connect(&stack).await;
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: a\r\n")
        .await
        .unwrap();
    let trickle = async {
        for n in 0..40 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            if stream
                .write_all(format!("X-{n}: y\r\n").as_bytes())
                .await
                .is_err()
            {
                return n;
            }
        }
        40
    };
    let sent = tokio::time::timeout(Duration::from_secs(8), trickle)
        .await
        .unwrap();
    assert!(sent < 40, "the server kept reading headers for 10 s");
    // An idle keep-alive connection is closed too.
    let mut idle = connect(&stack).await;
    let (_, after) = until_closed(&mut idle, Duration::from_secs(5)).await;
    assert!(
        after < Duration::from_secs(4),
        "idle connection open {after:?}"
    );
}

#[tokio::test]
async fn a_body_that_trickles_in_is_answered_408() {
    let stack = stack(64).await;
    let mut stream = connect(&stack).await;
    stream
        .write_all(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n\
              Content-Length: 200\r\n\r\n{\"email\":",
        )
        .await
        .unwrap();
    let (answer, after) = until_closed(&mut stream, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("REQUEST_TIMEOUT"), "{answer}");
    assert!(after < Duration::from_secs(4), "{after:?}");
}

#[tokio::test]
async fn a_chunked_body_that_never_ends_is_cut_off() {
    let stack = stack(64).await;
    let mut stream = connect(&stack).await;
    stream
        .write_all(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n\
              Transfer-Encoding: chunked\r\n\r\n",
        )
        .await
        .unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let feeder = tokio::spawn(async move {
        // Small chunks, slowly, forever: under the size limit, never finished.
        while writer.write_all(b"1\r\n \r\n").await.is_ok() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains("\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), reader.read(&mut buffer))
            .await
            .expect("answered within 5 s")
            .unwrap();
        assert!(n > 0, "closed without an answer");
        answer.extend_from_slice(&buffer[..n]);
    }
    feeder.abort();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn connections_over_the_cap_are_closed_and_the_api_recovers() {
    let stack = stack(4).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut stream = connect(&stack).await;
        // A request in flight keeps each connection busy enough to hold its slot.
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: a\r\n")
            .await
            .unwrap();
        held.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = connect(&stack).await;
    let (answer, after) = until_closed(&mut extra, Duration::from_secs(1)).await;
    assert!(answer.is_empty(), "{answer}");
    assert!(after < Duration::from_millis(900), "{after:?}");
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let health = stack.http.get(stack.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}
