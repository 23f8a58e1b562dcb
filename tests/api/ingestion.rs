//! Spec section 5: capture. Every path, every status, gzip, whole-batch rejection,
//! idempotency, clock skew, and the real posthog Python SDK as the client.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

use chrono::{DateTime, Duration, Utc};
use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

/// POSTs raw bytes to a capture path with extra headers.
pub async fn capture_raw(app: &TestApp, path: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> Reply {
    let mut request = app.client.post(format!("{}{path}", app.base_url)).body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("request reaches the server");
    Reply {
        status: response.status(),
        headers: response.headers().clone(),
        text: response.text().await.unwrap_or_default(),
    }
}

/// POSTs a JSON capture payload to `path`.
pub async fn capture(app: &TestApp, path: &str, payload: &Value) -> Reply {
    capture_raw(app, path, payload.to_string().into_bytes(), &[("content-type", "application/json")]).await
}

/// An event as the SDKs send it, with a fresh uuid.
pub fn sdk_event(name: &str, properties: Value) -> Value {
    json!({
        "event": name,
        "distinct_id": "user-1",
        "uuid": Uuid::now_v7().to_string(),
        "timestamp": Utc::now().to_rfc3339(),
        "properties": properties,
    })
}

fn generation() -> Value {
    sdk_event("$ai_generation", json!({"$ai_model": "gpt-5-mini", "$ai_provider": "openai", "$ai_trace_id": "t-1"}))
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// How many events the project has stored.
pub async fn stored_events(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM ai_events WHERE project_id = $1")
        .bind(app.project)
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

async fn stored_uuids(app: &TestApp) -> Vec<(Uuid, String)> {
    sqlx::query_as("SELECT uuid, event FROM ai_events WHERE project_id = $1 ORDER BY timestamp")
        .bind(app.project)
        .fetch_all(&app.db.pool)
        .await
        .unwrap()
}

fn uuid_of(event: &Value) -> Uuid {
    event["uuid"].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn every_capture_path_stores_events_with_and_without_the_slash() {
    let app = TestApp::spawn().await;
    let paths = ["/batch", "/e", "/capture", "/i/v0/e", "/i/v0/ai/batch"];
    for path in paths {
        for path in [path.to_owned(), format!("{path}/")] {
            let reply = capture(&app, &path, &json!({"api_key": app.project_token, "batch": [generation()]})).await;
            assert_eq!(reply.expect(200).json(), json!({"status": 1}), "{path}");
        }
    }
    assert_eq!(stored_events(&app).await, 2 * paths.len() as i64);
}

#[tokio::test]
async fn single_events_and_bare_arrays_carry_the_token_in_any_of_its_places() {
    let app = TestApp::spawn().await;
    let mut single = generation();
    single["token"] = json!(app.project_token);
    capture(&app, "/e/", &single).await.expect(200);

    let mut with_api_key = generation();
    with_api_key["api_key"] = json!(app.project_token);
    capture(&app, "/capture/", &with_api_key).await.expect(200);

    let mut in_properties = generation();
    in_properties["properties"]["token"] = json!(app.project_token);
    capture(&app, "/i/v0/e/", &json!([in_properties, generation()])).await.expect(200);

    assert_eq!(stored_events(&app).await, 4);
}

#[tokio::test]
async fn a_bad_token_is_401_and_stores_nothing() {
    let app = TestApp::spawn().await;
    let reply = capture(&app, "/batch/", &json!({"api_key": "phc_not_a_project", "batch": [generation()]})).await;
    let body = reply.expect(401).json();
    assert_eq!(body["type"], "authentication_error");
    assert_eq!(body["code"], "not_authenticated");
    assert!(body["detail"].as_str().unwrap().contains("invalid"), "{body}");
    assert_eq!(body["attr"], Value::Null);
    // a personal API key is not a project token either
    capture(&app, "/batch/", &json!({"api_key": app.admin_key, "batch": [generation()]})).await.expect(401);
    assert_eq!(stored_events(&app).await, 0);
}

#[tokio::test]
async fn a_missing_token_is_401() {
    let app = TestApp::spawn().await;
    let body = capture(&app, "/batch/", &json!({"batch": [generation()]})).await.expect(401).json();
    assert_eq!(body["code"], "not_authenticated");
    assert!(body["detail"].as_str().unwrap().contains("api_key"), "{body}");
    capture(&app, "/e/", &json!({"api_key": "", "event": "$ai_trace", "distinct_id": "u"})).await.expect(401);
}

#[tokio::test]
async fn malformed_json_is_400_with_a_clear_sentence() {
    let app = TestApp::spawn().await;
    let reply = capture_raw(&app, "/batch/", b"{\"api_key\": \"phc_x\", \"batch\": [".to_vec(), &[]).await;
    let body = reply.expect(400).json();
    assert_eq!(body["code"], "parse_error");
    assert!(body["detail"].as_str().unwrap().starts_with("Malformed JSON"), "{body}");

    let reply = capture(&app, "/batch/", &json!({"api_key": app.project_token, "batch": "nope"})).await;
    assert_eq!(reply.expect(400).json()["attr"], "batch");
    let reply = capture(&app, "/batch/", &json!("just a string")).await;
    assert_eq!(reply.expect(400).json()["type"], "validation_error");
}

#[tokio::test]
async fn gzip_bodies_are_accepted_by_header_query_or_magic_bytes() {
    let app = TestApp::spawn().await;
    let payload = || gzip(json!({"api_key": app.project_token, "batch": [generation()]}).to_string().as_bytes());

    capture_raw(&app, "/batch/", payload(), &[("content-encoding", "gzip")]).await.expect(200);
    capture_raw(&app, "/e/?compression=gzip-js&ver=1.200.0", payload(), &[("content-type", "text/plain")])
        .await
        .expect(200);
    capture_raw(&app, "/i/v0/e/", payload(), &[]).await.expect(200);

    assert_eq!(stored_events(&app).await, 3);
    let reply = capture_raw(&app, "/batch/", b"not gzip at all".to_vec(), &[("content-encoding", "gzip")]).await;
    assert_eq!(reply.expect(400).json()["code"], "parse_error");
    capture_raw(&app, "/batch/", payload(), &[("content-encoding", "br")]).await.expect(415);
}

#[tokio::test]
async fn a_gzip_bomb_is_413_without_inflating_it_all() {
    let app = TestApp::spawn().await;
    // 64 MiB of spaces (valid JSON whitespace) after a valid prefix compresses to ~64 KiB.
    let mut inflated = format!("{{\"api_key\": \"{}\", \"batch\": [", app.project_token).into_bytes();
    inflated.resize(inflated.len() + 64 * 1024 * 1024, b' ');
    let bomb = gzip(&inflated);
    assert!(bomb.len() < 1024 * 1024, "the bomb is small: {}", bomb.len());

    let reply = capture_raw(&app, "/batch/", bomb, &[("content-encoding", "gzip")]).await;

    let body = reply.expect(413).json();
    assert_eq!(body["code"], "payload_too_large");
    assert!(body["detail"].as_str().unwrap().contains("decompressed"), "{body}");
    // the server is fine afterwards
    capture(&app, "/batch/", &json!({"api_key": app.project_token, "batch": [generation()]})).await.expect(200);
}

/// Sends a capture request over a raw connection: the head, then `body_chunks` (chunked
/// when `content_length` is `None`), while reading the answer at the same time. A server
/// may answer 413 and close before the body is sent; an HTTP client library that insists
/// on sending it all first reports a broken pipe instead of the answer.
pub async fn raw_post(app: &TestApp, content_length: Option<usize>, body_chunks: usize) -> (u16, String) {
    raw_post_to(app, "/batch/", "Content-Type: application/json\r\n", content_length, body_chunks).await
}

/// As [`raw_post`], to `path` with `headers` (each line ending in CRLF).
pub async fn raw_post_to(
    app: &TestApp,
    path: &str,
    headers: &str,
    content_length: Option<usize>,
    body_chunks: usize,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let address = app.base_url.trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(&address).await.expect("connect to the server");
    let (mut reader, mut writer) = stream.into_split();
    let framing = match content_length {
        Some(length) => format!("Content-Length: {length}"),
        None => "Transfer-Encoding: chunked".to_owned(),
    };
    let head = format!("POST {path} HTTP/1.1\r\nHost: {address}\r\n{headers}{framing}\r\n\r\n");
    let chunked = content_length.is_none();
    let sender = tokio::spawn(async move {
        writer.write_all(head.as_bytes()).await?;
        let chunk = vec![b' '; 1024 * 1024];
        for _ in 0..body_chunks {
            if chunked {
                writer.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await?;
                writer.write_all(&chunk).await?;
                writer.write_all(b"\r\n").await?;
            } else {
                writer.write_all(&chunk).await?;
            }
        }
        std::io::Result::Ok(writer)
    });
    let mut answer = Vec::new();
    let mut buffer = [0u8; 8192];
    let read = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        // The head and a small JSON body; stop once the body has arrived (or on close).
        loop {
            let n = reader.read(&mut buffer).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buffer[..n]);
            let text = String::from_utf8_lossy(&answer);
            if text.split_once("\r\n\r\n").is_some_and(|(_, body)| body.trim_end().ends_with('}')) {
                break;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer within 30 s: {}", String::from_utf8_lossy(&answer));
    sender.abort();
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn an_oversized_body_is_413_while_large_batches_below_the_limit_pass() {
    let app = TestApp::spawn().await;
    // Declared too large: refused before the body is read.
    let (status, body) = raw_post(&app, Some(21 * 1024 * 1024), 1).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("payload_too_large"), "{body}");
    // Streamed without a length: refused once 20 MiB have arrived.
    let (status, body) = raw_post(&app, None, 25).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("payload_too_large"), "{body}");

    // 2 MiB: over the JSON API's 1 MiB limit, well under capture's 20 MiB
    let mut large = generation();
    large["properties"]["$ai_input"] = json!("y".repeat(2 * 1024 * 1024));
    capture(&app, "/batch/", &json!({"api_key": app.project_token, "batch": [large]})).await.expect(200);
    assert_eq!(stored_events(&app).await, 1);
}

#[tokio::test]
async fn a_batch_of_1000_with_one_malformed_event_is_rejected_whole() {
    let app = TestApp::spawn().await;
    let mut batch: Vec<Value> = (0..1000).map(|_| generation()).collect();
    batch[637].as_object_mut().unwrap().remove("event");

    let reply = capture(&app, "/batch/", &json!({"api_key": app.project_token, "batch": batch})).await;

    let body = reply.expect(400).json();
    assert_eq!(body["type"], "validation_error");
    assert_eq!(body["attr"], "batch[637].event");
    assert!(body["detail"].as_str().unwrap().contains("batch[637].event"), "{body}");
    assert_eq!(stored_events(&app).await, 0);

    // fixed, the same batch is stored whole
    batch[637]["event"] = json!("$ai_generation");
    capture(&app, "/batch/", &json!({"api_key": app.project_token, "batch": batch})).await.expect(200);
    assert_eq!(stored_events(&app).await, 1000);
}

#[tokio::test]
async fn each_kind_of_malformed_event_is_named() {
    let app = TestApp::spawn().await;
    let cases = [
        (json!({"event": "$ai_span", "distinct_id": "u", "uuid": "not-a-uuid"}), "batch[1].uuid"),
        (json!({"event": "$ai_span", "distinct_id": "u", "timestamp": "tomorrow"}), "batch[1].timestamp"),
        (json!({"event": "$ai_span", "distinct_id": "u", "properties": "x"}), "batch[1].properties"),
        (json!({"event": "$ai_span"}), "batch[1].distinct_id"),
        (json!(42), "batch[1]"),
    ];
    for (bad, attr) in cases {
        let reply =
            capture(&app, "/batch/", &json!({"api_key": app.project_token, "batch": [generation(), bad]})).await;
        assert_eq!(reply.expect(400).json()["attr"], attr);
    }
    assert_eq!(stored_events(&app).await, 0);
}

#[tokio::test]
async fn a_resent_batch_adds_nothing() {
    let app = TestApp::spawn().await;
    let batch: Vec<Value> = (0..25).map(|_| generation()).collect();
    let payload = json!({"api_key": app.project_token, "batch": batch});

    capture(&app, "/batch/", &payload).await.expect(200);
    capture(&app, "/batch/", &payload).await.expect(200);
    capture_raw(&app, "/e/", gzip(payload.to_string().as_bytes()), &[("content-encoding", "gzip")]).await.expect(200);

    assert_eq!(stored_events(&app).await, 25);
    // the same uuid twice in one batch is one event
    let event = generation();
    capture(&app, "/batch/", &json!({"api_key": app.project_token, "batch": [event, event]})).await.expect(200);
    assert_eq!(stored_events(&app).await, 26);
}

#[tokio::test]
async fn non_ai_events_are_dropped_and_counted_in_the_log() {
    let app = TestApp::spawn().await;
    let kept =
        ["$ai_generation", "$ai_trace", "$ai_span", "$ai_embedding", "$ai_evaluation", "$ai_metric", "$ai_feedback"]
            .map(|name| sdk_event(name, json!({})));
    let dropped =
        ["$pageview", "$identify", "signed_up"].map(|name| sdk_event(name, json!({"$current_url": "https://x"})));
    let batch: Vec<Value> = kept.iter().chain(dropped.iter()).cloned().collect();

    capture(&app, "/batch/", &json!({"api_key": app.project_token, "batch": batch})).await.expect(200);

    let stored = stored_uuids(&app).await;
    assert_eq!(stored.len(), 7);
    for event in &kept {
        assert!(stored.iter().any(|(uuid, name)| *uuid == uuid_of(event) && name == event["event"].as_str().unwrap()));
    }
    let logs = app.logs();
    assert!(logs.contains("dropped_non_ai=3"), "the drop count is logged:\n{logs}");
}

async fn stored_timestamp(app: &TestApp, uuid: Uuid) -> DateTime<Utc> {
    sqlx::query_scalar("SELECT timestamp FROM ai_events WHERE project_id = $1 AND uuid = $2")
        .bind(app.project)
        .bind(uuid)
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

fn close(a: DateTime<Utc>, b: DateTime<Utc>) -> bool {
    (a - b).num_seconds().abs() <= 60
}

#[tokio::test]
async fn sent_at_corrects_the_clients_clock_skew() {
    let app = TestApp::spawn().await;
    let now = Utc::now();
    // The client's clock is 3 hours fast; its event happened 10 minutes before sending.
    let client_now = now + Duration::hours(3);
    let mut skewed = generation();
    skewed["timestamp"] = json!((client_now - Duration::minutes(10)).to_rfc3339());
    // Without sent_at the timestamp is taken as given.
    let mut historical = generation();
    // microsecond precision, as PostgreSQL keeps it
    let three_days_ago = DateTime::from_timestamp_micros((now - Duration::days(3)).timestamp_micros()).unwrap();
    historical["timestamp"] = json!(three_days_ago.to_rfc3339());
    // An offset alone counts back from arrival.
    let mut offset = generation();
    offset.as_object_mut().unwrap().remove("timestamp");
    offset["offset"] = json!(120_000);

    capture(
        &app,
        "/batch/",
        &json!({"api_key": app.project_token, "sent_at": client_now.to_rfc3339(), "batch": [skewed]}),
    )
    .await
    .expect(200);
    capture(&app, "/batch/", &json!({"api_key": app.project_token, "batch": [historical, offset]})).await.expect(200);

    let corrected = stored_timestamp(&app, uuid_of(&skewed)).await;
    assert!(close(corrected, now - Duration::minutes(10)), "skew not corrected: {corrected}");
    assert_eq!(stored_timestamp(&app, uuid_of(&historical)).await, three_days_ago);
    let offset_time = stored_timestamp(&app, uuid_of(&offset)).await;
    assert!(close(offset_time, now - Duration::minutes(2)), "offset not applied: {offset_time}");
}

#[tokio::test]
async fn an_absurd_timestamp_is_clamped_to_the_arrival() {
    let app = TestApp::spawn().await;
    let mut future = generation();
    future["timestamp"] = json!("2999-01-01T00:00:00Z");
    let mut ancient = generation();
    ancient["timestamp"] = json!("1971-01-01T00:00:00Z");

    capture(&app, "/batch/", &json!({"api_key": app.project_token, "batch": [future, ancient]})).await.expect(200);

    let now = Utc::now();
    assert!(close(stored_timestamp(&app, uuid_of(&future)).await, now));
    assert!(close(stored_timestamp(&app, uuid_of(&ancient)).await, now));
}

#[tokio::test]
async fn the_openapi_document_lists_capture_and_offline_items() {
    let app = TestApp::spawn().await;
    let schema = app.request(reqwest::Method::GET, "/api/schema/", None, None).await.expect(200).json();
    let paths = schema["paths"].as_object().unwrap();
    for expected in [
        "/batch/",
        "/e/",
        "/capture/",
        "/i/v0/e/",
        "/i/v0/ai/batch/",
        "/api/environments/{project_id}/llm_analytics/offline_evaluations/experiment_items/",
    ] {
        assert!(paths.contains_key(expected), "missing {expected}");
    }
    let schemas = &schema["components"]["schemas"];
    assert!(schemas["CaptureBatchDoc"]["properties"].get("batch").is_some(), "{schemas}");
    assert!(schemas["ExperimentItemsBody"]["properties"].get("experiment_id").is_some(), "{schemas}");
}

// --- the real client: posthog's Python SDK ---

/// `target/` of this build (the test binary is `target/<profile>/deps/api-…`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.ancestors().nth(3).expect("target/<profile>/deps/<binary>").to_path_buf()
}

pub fn run(command: &mut Command, what: &str) -> String {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{what} failed ({}):\nstdout: {stdout}\nstderr: {stderr}", output.status);
    stdout
}

/// The Python with the pinned clients of `tests/python-requirements.txt` (the posthog SDK,
/// its OTel extra, the OTel SDK and instrumentations), which `cargo xtask test` made ready
/// before the tests started: a test never installs anything.
pub fn test_python() -> PathBuf {
    let python = std::env::var("LLMA_TEST_PYTHON").unwrap_or_else(|_| {
        panic!("LLMA_TEST_PYTHON is not set: run the tests with `cargo xtask test`, which installs the pinned Python clients")
    });
    PathBuf::from(python)
}

/// The Python with the `posthog` SDK.
pub fn posthog_python() -> PathBuf {
    test_python()
}

/// How every SDK script ends: flush, fail on an error the SDK reported, print `ids`.
const SDK_SCRIPT_END: &str = r#"
client.flush()
client.shutdown()
if errors:
    sys.exit("the SDK reported errors: " + "; ".join(errors))
print(json.dumps(ids))
"#;

/// Runs a posthog SDK script (`body`, which fills `ids`) with `args`; returns the ids it
/// printed.
pub fn run_sdk_script(body: &str, args: &[&str]) -> Value {
    let script = target_dir().join("tmp").join(format!("posthog-sdk-{}.py", Uuid::new_v4().simple()));
    std::fs::create_dir_all(script.parent().unwrap()).unwrap();
    std::fs::write(&script, format!("{body}{SDK_SCRIPT_END}")).unwrap();
    let stdout = run(
        Command::new(posthog_python()).arg(&script).args(args).env_remove("POSTHOG_CAPTURE_MODE"),
        "the posthog SDK script",
    );
    let _ = std::fs::remove_file(&script);
    serde_json::from_str(stdout.trim().lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("the script printed no ids ({e}): {stdout}"))
}

/// Captures with the SDK in sync mode (each call is one HTTP request, gzip on) and
/// prints the uuids it sent as JSON.
const SDK_SCRIPT: &str = r#"
import json, sys, uuid
from posthog import Posthog

host, token = sys.argv[1], sys.argv[2]
errors = []
client = Posthog(token, host=host, sync_mode=True, gzip=True, on_error=lambda e, batch: errors.append(str(e)))
ids = {name: str(uuid.uuid4()) for name in ("generation", "evaluation", "pageview", "span")}
client.capture(
    event="$ai_generation", distinct_id="sdk-user", uuid=ids["generation"],
    properties={"$ai_trace_id": "sdk-trace-1", "$ai_model": "gpt-5-mini", "$ai_provider": "openai",
                "$ai_input": [{"role": "user", "content": "What is 2+2?"}],
                "$ai_output_choices": [{"role": "assistant", "content": [{"type": "text", "text": "4"}]}]},
)
client.capture(
    event="$ai_evaluation", distinct_id="sdk-user", uuid=ids["evaluation"],
    properties={"$ai_experiment_id": "sdk-exp", "$ai_experiment_name": "SDK experiment",
                "$ai_experiment_item_id": "sdk-item-1", "$ai_experiment_item_name": "two plus two",
                "$ai_metric_name": "correctness", "$ai_metric_version": "1", "$ai_status": "ok",
                "$ai_result_type": "numeric", "$ai_score": 1, "$ai_score_min": 0, "$ai_score_max": 1,
                "$ai_trace_id": "sdk-trace-1", "$ai_target_event_id": ids["generation"],
                "$ai_input": "What is 2+2?", "$ai_output": "4", "$ai_expected": "4"},
)
client.capture(event="$pageview", distinct_id="sdk-user", uuid=ids["pageview"], properties={"$current_url": "https://example.com"})
if hasattr(client, "capture_ai"):
    client.capture_ai(event="$ai_span", distinct_id="sdk-user", uuid=ids["span"], properties={"$ai_trace_id": "sdk-trace-1"})
else:
    ids["span"] = None
"#;

#[tokio::test]
async fn the_posthog_python_sdk_captures_events_that_are_read_back() {
    let app = TestApp::spawn().await;
    let ids = run_sdk_script(SDK_SCRIPT, &[&app.base_url, &app.project_token]);

    // Through the database: the AI events, as the SDK sent them; the pageview dropped.
    let rows: Vec<(Uuid, String, String, Value)> = sqlx::query_as(
        "SELECT uuid, event, distinct_id, properties FROM ai_events WHERE project_id = $1 ORDER BY timestamp",
    )
    .bind(app.project)
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    let find = |key: &str| {
        let id: Uuid = ids[key].as_str().unwrap().parse().unwrap();
        rows.iter().find(|row| row.0 == id).unwrap_or_else(|| panic!("{key} {id} not stored: {rows:?}")).clone()
    };
    let generation = find("generation");
    assert_eq!(generation.1, "$ai_generation");
    assert_eq!(generation.2, "sdk-user");
    assert_eq!(generation.3["$lib"], "posthog-python", "the SDK's own properties are kept");
    assert_eq!(generation.3["$ai_input"][0]["content"], "What is 2+2?");
    let evaluation = find("evaluation");
    assert_eq!(evaluation.1, "$ai_evaluation");
    assert_eq!(evaluation.3["$ai_target_event_id"], ids["generation"]);
    let pageview: Uuid = ids["pageview"].as_str().unwrap().parse().unwrap();
    assert!(rows.iter().all(|row| row.0 != pageview), "the $pageview was dropped");
    let expected_rows = if ids["span"].is_null() { 2 } else { 3 };
    if !ids["span"].is_null() {
        assert_eq!(find("span").1, "$ai_span");
    }
    assert_eq!(rows.len(), expected_rows);

    // Through the API: the evaluation is an offline-experiment item.
    let reply = app
        .post(&app.llma("offline_evaluations/experiment_items/"), json!({"experiment_id": "sdk-exp"}))
        .await
        .expect(200)
        .json();
    let results = reply["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{reply}");
    let row = results[0].as_array().unwrap();
    assert_eq!(row.len(), 18);
    assert_eq!(row[0], "sdk-item-1");
    assert_eq!(row[1], "two plus two");
    assert_eq!(row[2], "SDK experiment");
    assert_eq!(row[3], "correctness");
    assert_eq!(row[4], "1");
    assert_eq!(row[6], 1);
    assert_eq!(row[11], "sdk-trace-1");
    assert_eq!((row[14].clone(), row[15].clone(), row[16].clone()), (json!("What is 2+2?"), json!("4"), json!("4")));
}
