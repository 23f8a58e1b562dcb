//! Issue 11, point 7: the memory capture bodies in flight may hold is bounded. Past
//! `LLMA_INGEST_MEMORY_LIMIT_MB` a batch gets 503 with `Retry-After` (the SDKs retry, and
//! nothing of it is stored); a body that does not arrive within
//! `LLMA_INGEST_BODY_TIMEOUT_SECS` gets 408 and gives its share back; a batch larger than
//! the whole budget is still stored when it is alone.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;
use crate::ingestion::{capture, sdk_event, stored_events};

fn batch(app: &TestApp, events: usize) -> Value {
    let padding = "x".repeat(800);
    let events: Vec<Value> = (0..events)
        .map(|n| sdk_event("$ai_generation", json!({"$ai_trace_id": format!("t-{n}"), "$ai_input": padding})))
        .collect();
    json!({"api_key": app.project_token, "batch": events})
}

#[tokio::test]
async fn past_the_budget_a_batch_is_503_with_retry_after_and_a_stalled_body_is_408() {
    let app = TestApp::spawn_with(&[
        ("LLMA_INGEST_MEMORY_LIMIT_MB", "1"),
        ("LLMA_INGEST_MEMORY_WAIT_SECS", "0"),
        ("LLMA_INGEST_BODY_TIMEOUT_SECS", "10"),
    ])
    .await;
    let address = app.base_url.trim_start_matches("http://").to_owned();

    // A sender that declares half a megabyte (its share is the whole budget) and stalls.
    let mut stalled = TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /batch/ HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: 524288\r\n\r\n{{\"api_key\":"
    );
    stalled.write_all(head.as_bytes()).await.unwrap();

    // While it holds the budget, another batch is refused with 503 and Retry-After.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut accepted_before = 0;
    let (refused, small) = loop {
        let small = batch(&app, 1);
        let reply = capture(&app, "/batch/", &small).await;
        if reply.status == 503 {
            break (reply, small);
        }
        // Until the stalled request has reserved its share, batches are stored.
        assert_eq!(reply.status, 200, "{}", reply.text);
        accepted_before += 1;
        // A stalled request that arrived while a batch held a share was refused at once (it
        // waits for nothing): it holds nothing, so stall another.
        if let Some(early) = crate::body_deadlines::early_answer(&mut stalled).await {
            assert!(early.starts_with("HTTP/1.1 503"), "{early}");
            stalled = TcpStream::connect(&address).await.unwrap();
            stalled.write_all(head.as_bytes()).await.unwrap();
        }
        assert!(Instant::now() < deadline, "no 503 while a request holds the whole budget");
    };
    assert_eq!(refused.headers["retry-after"], "1");
    let body: Value = serde_json::from_str(&refused.text).unwrap();
    assert_eq!(body["code"], "ingest_memory_busy", "{body}");
    assert_eq!(body["type"], "server_error", "{body}");
    assert_eq!(stored_events(&app).await, accepted_before, "nothing of a refused batch is stored");

    // The stalled body times out with 408, which gives its share back.
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(30), async {
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            match stalled.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the stalled request was never answered");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    // A batch larger than the whole budget (~350 KB, six times that in memory) is stored
    // when it is alone, and so is the batch refused before (as an SDK's retry).
    capture(&app, "/batch/", &batch(&app, 400)).await.expect(200);
    capture(&app, "/batch/", &small).await.expect(200);
    assert_eq!(stored_events(&app).await, accepted_before + 401);
}
