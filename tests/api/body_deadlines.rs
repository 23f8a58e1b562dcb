//! Every request body has a deadline (issue 17, points 5 and 8): a JSON API body that does
//! not arrive within `LLMA_API_BODY_TIMEOUT_SECS` is answered 408 and nothing is written;
//! the OTLP endpoint has the capture lane's memory budget (503 with `Retry-After`) and
//! body deadline (408) as `/batch/` has.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

/// Sends `head` (request line and headers, declaring more body than is sent) and the start
/// of a body, then stalls; returns the connection.
async fn stall(app: &TestApp, head: &str, start_of_body: &str) -> TcpStream {
    let address = app.base_url.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&address).await.unwrap();
    let request = format!("{head}Host: {address}\r\n\r\n{start_of_body}");
    stream.write_all(request.as_bytes()).await.unwrap();
    stream
}

/// The status line and headers the server answers on `stream`, within `limit`.
async fn answer(stream: &mut TcpStream, limit: Duration) -> String {
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    let read = tokio::time::timeout(limit, async {
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the stalled request was never answered");
    String::from_utf8_lossy(&answer).into_owned()
}

/// What the server already answered on `stream`, if anything (looked at without waiting
/// for more than a moment).
pub async fn early_answer(stream: &mut TcpStream) -> Option<String> {
    let mut buffer = [0u8; 4096];
    match tokio::time::timeout(Duration::from_millis(10), stream.read(&mut buffer)).await {
        Ok(Ok(n)) if n > 0 => Some(String::from_utf8_lossy(&buffer[..n]).into_owned()),
        _ => None,
    }
}

#[tokio::test]
async fn a_json_api_body_that_does_not_arrive_in_time_is_408_and_writes_nothing() {
    let app = TestApp::spawn_with(&[("LLMA_API_BODY_TIMEOUT_SECS", "2")]).await;
    let path = app.llma("evaluation_reports/");
    let head = format!(
        "POST {path} HTTP/1.1\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n",
        app.admin_key
    );
    let started = Instant::now();
    let mut stalled = stall(&app, &head, "{\"evaluation\": ").await;

    let answer = answer(&mut stalled, Duration::from_secs(30)).await;

    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() >= Duration::from_secs(2), "not before the deadline");
    assert!(started.elapsed() < Duration::from_secs(20), "answered at the deadline, not the header timeout's");
    assert_eq!(app.get(&path).await.expect(200).json()["count"], 0);
    // A body that arrives in time is read as before.
    let error = app.post(&path, json!({"evaluation": "not-a-uuid"})).await.expect(400).json();
    assert_eq!(error["attr"], "evaluation");
}

fn otlp_span_json() -> Value {
    json!({"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"spans": [{
        "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
        "name": "chat gpt-5-mini", "kind": 3,
        "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000001000000000",
        "attributes": [{"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                       {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-5-mini"}}]
    }]}]}]})
}

#[tokio::test]
async fn the_otlp_endpoint_has_the_memory_budget_and_the_body_deadline() {
    let app = TestApp::spawn_with(&[
        ("LLMA_INGEST_MEMORY_LIMIT_MB", "1"),
        ("LLMA_INGEST_MEMORY_WAIT_SECS", "0"),
        ("LLMA_INGEST_BODY_TIMEOUT_SECS", "10"),
    ])
    .await;
    let bearer = format!("Bearer {}", app.project_token);
    let export = || {
        app.client
            .post(format!("{}/i/v0/ai/otel", app.base_url))
            .header("content-type", "application/json")
            .header("authorization", &bearer)
            .body(otlp_span_json().to_string())
            .send()
    };
    // An export that declares half a megabyte (its share is the whole budget) and stalls.
    let head = format!(
        "POST /i/v0/ai/otel HTTP/1.1\r\nAuthorization: {bearer}\r\nContent-Type: application/json\r\nContent-Length: 524288\r\n"
    );
    let mut stalled = stall(&app, &head, "{\"resourceSpans\": ").await;

    let deadline = Instant::now() + Duration::from_secs(20);
    let refused = loop {
        let reply = export().await.unwrap();
        if reply.status() == 503 {
            break reply;
        }
        assert_eq!(reply.status(), 200, "until the stalled export holds the budget, exports are stored");
        // A stalled export that arrived while a small one held a share was refused at once
        // (it waits for nothing): it holds nothing, so stall another.
        if let Some(early) = early_answer(&mut stalled).await {
            assert!(early.starts_with("HTTP/1.1 503"), "{early}");
            stalled = stall(&app, &head, "{\"resourceSpans\": ").await;
        }
        assert!(Instant::now() < deadline, "no 503 while an export holds the whole budget");
    };
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "ingest_memory_busy", "{body}");

    let answer = answer(&mut stalled, Duration::from_secs(30)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let reply = export().await.unwrap();
    assert_eq!(reply.status(), 200, "the stalled export's share was given back");
}
