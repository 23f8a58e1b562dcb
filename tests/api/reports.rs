//! Spec section 7: evaluation reports end to end — CRUD and every validation, manual
//! runs delivered by a real SMTP server, a Slack and a webhook receiver (signature
//! verified), the signed run page, the fallback, schedules / every N / alerts run by the
//! scheduler, three replicas and a replica killed mid-delivery.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use test_support::{SmtpSink, wait_until};
use uuid::Uuid;
use wiremock::matchers::{body_string_contains, method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::evaluations::{create_evaluation, create_key, evaluation_body, id_of, other_project};
use crate::helpers::*;
use crate::ingestion::{capture, sdk_event};

const COMPLETIONS: &str = "/openai/v1/chat/completions";
const DEADLINE: Duration = Duration::from_secs(60);
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

pub fn reports_path(app: &TestApp) -> String {
    app.llma("evaluation_reports/")
}

fn report_path(app: &TestApp, id: &str) -> String {
    format!("{}{id}/", reports_path(app))
}

async fn plain_evaluation(app: &TestApp, name: &str) -> String {
    id_of(&create_evaluation(app, evaluation_body(name)).await)
}

/// An evaluation whose model configuration names an OpenAI key of the project (so a
/// report's LLM is that key on the fake OpenAI).
async fn evaluation_with_key(app: &TestApp, name: &str) -> String {
    let key = create_key(app, "openai", "Reports key").await;
    let mut body = evaluation_body(name);
    body["model_configuration"] = json!({"provider": "openai", "model": "gpt-5-mini", "provider_key_id": key});
    id_of(&create_evaluation(app, body).await)
}

async fn create_report(app: &TestApp, body: Value) -> Value {
    app.post(&reports_path(app), body).await.expect(201).json()
}

/// `$ai_evaluation` results of `evaluation`: `pass` passes then `fail` failures then
/// `na` not applicable, each judging its own generation, timestamped now.
async fn send_results(app: &TestApp, evaluation: &str, pass: usize, fail: usize, na: usize) -> Vec<String> {
    let mut generations = Vec::new();
    let mut events = Vec::new();
    for (index, kind) in std::iter::repeat_n("pass", pass)
        .chain(std::iter::repeat_n("fail", fail))
        .chain(std::iter::repeat_n("na", na))
        .enumerate()
    {
        let generation = Uuid::now_v7().to_string();
        generations.push(generation.clone());
        events.push(sdk_event(
            "$ai_evaluation",
            json!({
                "$ai_evaluation_id": evaluation,
                "$ai_target_event_id": generation,
                "$ai_trace_id": format!("trace-{index}"),
                "$ai_evaluation_result": kind == "pass",
                "$ai_evaluation_applicable": kind != "na",
                "$ai_evaluation_reasoning": format!("Reason {index}: {kind}"),
            }),
        ));
    }
    capture(app, "/batch/", &json!({"api_key": app.project_token, "batch": events})).await.expect(200);
    generations
}

/// The fake OpenAI answers report calls with `draft`.
async fn report_answers(app: &TestApp, draft: &Value) {
    Mock::given(method("POST"))
        .and(path(COMPLETIONS))
        .and(body_string_contains("evaluation_report"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "chatcmpl-report",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": draft.to_string()}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 900, "completion_tokens": 200, "total_tokens": 1100}
        })))
        .mount(&app.providers)
        .await;
}

async fn runs(app: &TestApp, report: &str) -> Vec<Value> {
    let page = app.get(&format!("{}runs/", report_path(app, report))).await.expect(200).json();
    page["results"].as_array().cloned().unwrap_or_default()
}

/// Waits until the report has a run whose delivery is no longer pending; returns it.
async fn finished_run(app: &TestApp, report: &str) -> Value {
    wait_until(DEADLINE, || async {
        runs(app, report).await.first().is_some_and(|r| r["delivery_status"] != "pending")
    })
    .await;
    runs(app, report).await.remove(0)
}

async fn sql_count(app: &TestApp, sql: &'static str, id: &str) -> i64 {
    sqlx::query_scalar(sql).bind(Uuid::parse_str(id).unwrap()).fetch_one(&app.db.pool).await.unwrap()
}

async fn make_due(app: &TestApp, report: &str) {
    sqlx::query("UPDATE evaluation_reports SET next_delivery_date = now() - interval '1 second' WHERE id = $1")
        .bind(Uuid::parse_str(report).unwrap())
        .execute(&app.db.pool)
        .await
        .unwrap();
}

fn parse_time(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().unwrap()).unwrap().with_timezone(&Utc)
}

#[tokio::test]
async fn reports_are_created_validated_listed_soft_deleted_and_isolated() {
    let app = TestApp::spawn_with(&[("LLMA_ALLOW_PRIVATE_ENDPOINTS", "false")]).await;
    let evaluation = plain_evaluation(&app, "Tone").await;

    // Defaults of section 7.
    let every_n = create_report(&app, json!({"evaluation": evaluation})).await;
    assert_eq!(every_n["frequency"], "every_n");
    assert_eq!(every_n["rrule"], "");
    assert_eq!(every_n["timezone_name"], "UTC");
    assert_eq!(every_n["next_delivery_date"], Value::Null);
    assert_eq!(every_n["max_sample_size"], 200);
    assert_eq!(every_n["trigger_threshold"], 100);
    assert_eq!(every_n["cooldown_minutes"], 60);
    assert_eq!(every_n["daily_run_cap"], 10);
    assert_eq!(every_n["enabled"], true);
    assert_eq!(every_n["deleted"], false);
    assert_eq!(every_n["alert_condition"], Value::Null);
    assert_eq!(every_n["created_by"]["email"], "admin@example.com");

    // A schedule in a zone: 09:00 Berlin, first delivery ≥ 15 minutes away.
    let scheduled = create_report(
        &app,
        json!({
            "evaluation": evaluation, "frequency": "scheduled", "rrule": "FREQ=DAILY;BYHOUR=9;BYMINUTE=0;BYSECOND=0",
            "starts_at": "2026-01-01T00:00:00Z", "timezone_name": "Europe/Berlin",
            "delivery_targets": [
                {"type": "email", "value": "a@example.com, b@example.com"},
                {"type": "webhook", "url": "https://hooks.example.com/reports", "secret": SECRET}
            ]
        }),
    )
    .await;
    let next = parse_time(&scheduled["next_delivery_date"]);
    assert!(next > Utc::now() + chrono::Duration::minutes(15), "{next}");
    let berlin: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
    assert_eq!(next.with_timezone(&berlin).format("%H:%M").to_string(), "09:00");
    let webhook = &scheduled["delivery_targets"][1];
    assert_eq!(webhook["secret"], "whse...LaSw", "the secret is masked: {webhook}");
    assert!(!app.get(&report_path(&app, &id_of(&scheduled))).await.text.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2"));

    // A schedule change recomputes the date; PATCH keeps the masked secret.
    let id = id_of(&scheduled);
    let patched = app
        .patch(
            &report_path(&app, &id),
            json!({"timezone_name": "America/New_York", "delivery_targets": scheduled["delivery_targets"]}),
        )
        .await
        .expect(200)
        .json();
    let new_york: chrono_tz::Tz = "America/New_York".parse().unwrap();
    assert_eq!(
        parse_time(&patched["next_delivery_date"]).with_timezone(&new_york).format("%H:%M").to_string(),
        "09:00"
    );
    assert_eq!(patched["delivery_targets"][1]["secret"], "whse...LaSw");

    // Every validation names its field.
    let bad: Vec<(Value, &str, &str)> = vec![
        (json!({}), "evaluation", "This field is required."),
        (json!({"evaluation": Uuid::now_v7()}), "evaluation", "Enter the id of an evaluation of this project."),
        (json!({"evaluation": evaluation, "frequency": "hourly"}), "frequency", "\"hourly\" is not a valid choice."),
        (
            json!({"evaluation": evaluation, "frequency": "scheduled", "rrule": "DTSTART:20260101T000000Z\nRRULE:FREQ=DAILY", "starts_at": "2026-01-01T00:00:00Z"}),
            "rrule",
            "Invalid recurrence rule.",
        ),
        (
            json!({"evaluation": evaluation, "frequency": "scheduled", "rrule": "FREQ=FORTNIGHTLY", "starts_at": "2026-01-01T00:00:00Z"}),
            "rrule",
            "Invalid recurrence rule.",
        ),
        (
            json!({"evaluation": evaluation, "frequency": "scheduled", "rrule": "FREQ=DAILY"}),
            "starts_at",
            "This field is required.",
        ),
        (
            json!({"evaluation": evaluation, "timezone_name": "Mars/Olympus"}),
            "timezone_name",
            "Unknown time zone: Mars/Olympus",
        ),
        (
            json!({"evaluation": evaluation, "trigger_threshold": 5}),
            "trigger_threshold",
            "Ensure this value is between 10 and 10000.",
        ),
        (
            json!({"evaluation": evaluation, "cooldown_minutes": 30}),
            "cooldown_minutes",
            "Ensure this value is between 60 and 525600.",
        ),
        (
            json!({"evaluation": evaluation, "frequency": "alert"}),
            "alert_condition",
            "Alert reports need an alert_condition.",
        ),
        (
            json!({"evaluation": evaluation, "frequency": "alert", "alert_condition": {"operator": "lt", "pass_rate": 120}}),
            "alert_condition",
            "alert_condition.pass_rate must be a number from 0 to 100.",
        ),
        (
            json!({"evaluation": evaluation, "alert_condition": {"operator": "lt", "pass_rate": 50}}),
            "alert_condition",
            "alert_condition applies only to alert reports.",
        ),
        (
            json!({"evaluation": evaluation, "delivery_targets": [{"type": "pager"}]}),
            "delivery_targets[0].type",
            "Invalid delivery target type: pager",
        ),
        (
            json!({"evaluation": evaluation, "delivery_targets": [{"type": "email", "value": "not-an-address"}]}),
            "delivery_targets[0].value",
            "Invalid email address: not-an-address",
        ),
        (
            json!({"evaluation": evaluation, "delivery_targets": [{"type": "slack", "channel": "#x", "webhook_url": "https://evil.example/services/x"}]}),
            "delivery_targets[0].webhook_url",
            "Slack webhook URLs start with https://hooks.slack.com/",
        ),
        (
            json!({"evaluation": evaluation, "delivery_targets": [{"type": "slack", "channel": "#evals", "integration_id": 42}]}),
            "delivery_targets",
            "Slack integration(s) not found for this team: [42]. Send Slack reports through an incoming webhook: give the target a webhook_url.",
        ),
        (
            json!({"evaluation": evaluation, "delivery_targets": [{"type": "webhook", "url": "http://hooks.example.com/x", "secret": SECRET}]}),
            "delivery_targets[0].url",
            "Webhook URLs must use https.",
        ),
        (
            json!({"evaluation": evaluation, "delivery_targets": [{"type": "webhook", "url": "https://169.254.169.254/latest", "secret": SECRET}]}),
            "delivery_targets[0].url",
            "Webhook URLs may not point at private, loopback or link-local addresses.",
        ),
        (
            json!({"evaluation": evaluation, "delivery_targets": [{"type": "webhook", "url": "https://hooks.example.com/x", "secret": "short"}]}),
            "delivery_targets[0].secret",
            "The secret must be at least 24 characters.",
        ),
    ];
    for (body, attr, detail) in bad {
        let reply = app.post(&reports_path(&app), body.clone()).await.expect(400).json();
        assert_eq!(reply["type"], "validation_error", "{body}");
        assert_eq!(reply["attr"], attr, "{body}: {reply}");
        assert_eq!(reply["detail"], detail, "{body}: {reply}");
    }
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM evaluation_reports").fetch_one(&app.db.pool).await.unwrap();
    assert_eq!(count, 2, "no half-written report");

    // List, filter, soft delete and restore, DELETE 405.
    let other_evaluation = plain_evaluation(&app, "Other").await;
    create_report(&app, json!({"evaluation": other_evaluation})).await;
    let all = app.get(&reports_path(&app)).await.expect(200).json();
    assert_eq!(all["count"], 3);
    let filtered = app.get(&format!("{}?evaluation={evaluation}", reports_path(&app))).await.expect(200).json();
    assert_eq!(filtered["count"], 2);
    let reply = app.delete(&report_path(&app, &id)).await.expect(405).json();
    assert_eq!(
        reply["detail"],
        "Hard delete of this model is not allowed. Use a patch API call to set \"deleted\" to true"
    );
    app.patch(&report_path(&app, &id), json!({"deleted": true})).await.expect(200);
    app.get(&report_path(&app, &id)).await.expect(404);
    assert_eq!(app.get(&reports_path(&app)).await.json()["count"], 2);
    app.request(Method::POST, &format!("{}generate/", report_path(&app, &id)), Some(&app.admin_key), None)
        .await
        .expect(404);
    let restored = app.patch(&report_path(&app, &id), json!({"deleted": false})).await.expect(200).json();
    assert_eq!(restored["deleted"], false);
    app.get(&report_path(&app, &id)).await.expect(200);

    // Scopes and project isolation.
    let reader = app.user_with_key("reader@example.com", Some((app.project, "member")), "llm_analytics:read", None);
    app.request(Method::GET, &reports_path(&app), Some(&reader), None).await.expect(200);
    let denied =
        app.request(Method::POST, &reports_path(&app), Some(&reader), Some(json!({"evaluation": evaluation}))).await;
    assert_eq!(denied.expect(403).json()["code"], "permission_denied");
    let (other, other_key) = other_project(&app);
    let foreign = format!("/api/environments/{other}/llm_analytics/evaluation_reports/{id}/");
    app.request(Method::GET, &foreign, Some(&other_key), None).await.expect(404);
    app.request(Method::GET, &report_path(&app, &id), Some(&other_key), None).await.expect(404);
    let body = json!({"evaluation": evaluation});
    let reply = app
        .request(
            Method::POST,
            &format!("/api/environments/{other}/llm_analytics/evaluation_reports/"),
            Some(&other_key),
            Some(body),
        )
        .await;
    assert_eq!(reply.expect(400).json()["attr"], "evaluation", "an evaluation of another project is not found");
}

/// A Slack and a webhook receiver on one fake server.
async fn receivers(slack_status: u16) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex("^/services/.*"))
        .respond_with(ResponseTemplate::new(slack_status).set_body_string(if slack_status == 200 {
            "ok"
        } else {
            "no_service"
        }))
        .mount(&server)
        .await;
    Mock::given(method("POST")).and(path("/hook")).respond_with(ResponseTemplate::new(200)).mount(&server).await;
    server
}

async fn received(server: &MockServer, prefix: &str) -> Vec<wiremock::Request> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path().starts_with(prefix))
        .collect()
}

#[tokio::test]
async fn a_manual_run_is_written_by_the_llm_and_delivered_everywhere_with_hostile_text_escaped() {
    let smtp = SmtpSink::start(&["refused@example.com"]).await;
    let hooks = receivers(200).await;
    let slack_base = format!("{}/services/", hooks.uri());
    let app = TestApp::spawn_with(&[
        ("LLMA_SMTP_URL", &smtp.url()),
        ("LLMA_SMTP_FROM", "reports@llma.example"),
        ("LLMA_SLACK_WEBHOOK_BASE_URL", &slack_base),
        ("LLMA_DELIVERY_RETRY_BASE_SECS", "0"),
        ("LLMA_SCHEDULER_INTERVAL_SECS", "0"),
    ])
    .await;
    let evaluation = evaluation_with_key(&app, "Politeness").await;
    let generations = send_results(&app, &evaluation, 6, 3, 1).await;
    let cited = generations[7].clone();
    report_answers(
        &app,
        &json!({
            "title": "Rudeness <script>alert('t')</script> rising",
            "sections": [
                {"title": "What failed", "content": "Users wrote <script>alert(1)</script> and <img src=x onerror=alert(2)>; see [this](javascript:alert(3)) and [docs](https://docs.example/x)."},
                {"title": "Next", "content": "- Tighten the prompt\n- **Retry** failed cases"}
            ],
            "citations": [
                {"generation_id": cited, "reason": "a rude answer"},
                {"generation_id": "00000000-0000-0000-0000-000000000000", "reason": "invented"}
            ]
        }),
    )
    .await;
    let report = create_report(
        &app,
        json!({
            "evaluation": evaluation,
            "report_prompt_guidance": "Focus on tone.",
            "delivery_targets": [
                {"type": "email", "value": "team@example.com, refused@example.com"},
                {"type": "slack", "channel": "#evals", "webhook_url": format!("{slack_base}T0/B0/XYZ")},
                {"type": "webhook", "url": format!("{}/hook", hooks.uri()), "secret": SECRET}
            ]
        }),
    )
    .await;
    let id = id_of(&report);
    let generate = format!("{}generate/", report_path(&app, &id));
    for _ in 0..3 {
        let reply = app.request(Method::POST, &generate, Some(&app.admin_key), None).await;
        assert_eq!(reply.status.as_u16(), 202, "{}", reply.text);
    }

    let run = finished_run(&app, &id).await;
    assert_eq!(runs(&app, &id).await.len(), 1, "calls within a minute coalesce into one run");
    assert_eq!(run["metadata"]["trigger"], "manual");
    assert_eq!(run["delivery_status"], "partial_failure", "{run}");
    let errors = run["delivery_errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].as_str().unwrap().starts_with("Failed to send email to refused@example.com: "), "{errors:?}");

    // Content: metrics by SQL, sections from the LLM, citations only from the sample.
    let content = &run["content"];
    let metrics = &content["metrics"];
    assert_eq!((metrics["total_runs"].as_u64(), metrics["pass_count"].as_u64()), (Some(10), Some(6)));
    assert_eq!((metrics["fail_count"].as_u64(), metrics["na_count"].as_u64()), (Some(3), Some(1)));
    assert_eq!(metrics["pass_rate"].as_f64(), Some(66.67));
    assert_eq!(content["sections"].as_array().unwrap().len(), 2);
    let citations = content["citations"].as_array().unwrap();
    assert_eq!(citations.len(), 1, "{citations:?}");
    assert_eq!(citations[0]["generation_id"], cited.as_str());
    assert_eq!(citations[0]["trace_id"], "trace-7");

    // The LLM saw the guidance; the call is on record with purpose `report`.
    let calls = fake::requests_to(&app.providers, COMPLETIONS).await;
    let report_call = calls.iter().find(|r| String::from_utf8_lossy(&r.body).contains("evaluation_report")).unwrap();
    assert!(String::from_utf8_lossy(&report_call.body).contains("Focus on tone."));
    let purposes: Vec<String> =
        sqlx::query_scalar("SELECT purpose FROM llm_calls").fetch_all(&app.db.pool).await.unwrap();
    assert_eq!(purposes, vec!["report".to_owned()]);

    // E-mail: one per recipient that accepts, subject, HTML with the metrics and escaped
    // text, a plain-text part, the link to the page.
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let mail = &mails[0];
    assert_eq!(mail.to, vec!["team@example.com".to_owned()]);
    assert_eq!(mail.from, "reports@llma.example");
    let subject = mail.header("Subject").unwrap();
    assert!(subject.contains("Politeness") || subject.starts_with("=?utf-8?"), "{subject}");
    let html = mail.part("text/html").expect("an HTML part");
    assert!(html.contains("66.67%") && html.contains("Pass rate"), "{html}");
    assert!(!html.contains("<script") && !html.contains("<img") && !html.contains("javascript:"), "{html}");
    assert!(html.contains("&lt;script&gt;"), "{html}");
    assert!(html.contains(r#"<a href="https://docs.example/x">docs</a>"#), "{html}");
    let share_url = run["share_url"].as_str().unwrap();
    assert!(share_url.starts_with(&format!("{}/reports/runs/{}?expires=", app.base_url, run["id"].as_str().unwrap())));
    assert!(html.contains(&share_url.replace('&', "&amp;")), "the e-mail links to the page");
    let text = mail.part("text/plain").expect("a plain-text part");
    assert!(text.contains("Pass rate: 66.67%") && text.contains(share_url), "{text}");

    // Slack: header, pass rate, first section escaped, the link.
    let slack = received(&hooks, "/services/").await;
    assert_eq!(slack.len(), 1);
    let message: Value = serde_json::from_slice(&slack[0].body).unwrap();
    let blocks = message["blocks"].to_string();
    assert!(blocks.contains("66.67%") && blocks.contains("View the full report"), "{blocks}");
    assert!(!blocks.contains("javascript:"), "{blocks}");
    // mrkdwn is markup: the LLM's text is escaped there; the header is plain_text, which
    // Slack never interprets.
    for block in message["blocks"].as_array().unwrap() {
        let text = &block["text"];
        if text["type"] == "mrkdwn" {
            assert!(!text["text"].as_str().unwrap().contains("<script"), "{block}");
        }
    }
    assert!(blocks.contains("&lt;script&gt;alert(1)"), "{blocks}");

    // Webhook: signed the Standard Webhooks way, id = run + target index.
    let hooks_received = received(&hooks, "/hook").await;
    assert_eq!(hooks_received.len(), 1);
    let request = &hooks_received[0];
    let header = |name: &str| request.headers.get(name).unwrap().to_str().unwrap().to_owned();
    assert_eq!(header("webhook-id"), format!("{}_2", run["id"].as_str().unwrap()));
    let mut headers = http::HeaderMap::new();
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        headers.insert(name, header(name).parse().unwrap());
    }
    standardwebhooks::Webhook::new(SECRET).unwrap().verify(&request.body, &headers).expect("a valid signature");
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["run"]["id"], run["id"]);

    // The page: signed, with the security headers, the chart, no script; wrong or
    // expired links are a plain 404.
    let page = app.client.get(share_url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(
        page.headers()["content-security-policy"],
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    );
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    assert_eq!(page.headers()["cache-control"], "private");
    let page = page.text().await.unwrap();
    assert!(page.contains("<svg") && page.contains("66.67%"), "{page}");
    assert!(!page.contains("<script") && !page.contains("javascript:"), "{page}");
    let tampered = share_url.replace("signature=", "signature=00");
    let expired = share_url.replace("expires=", "expires=1");
    let unsigned = share_url.split('?').next().unwrap().to_owned();
    for url in [tampered, expired, unsigned] {
        let reply = app.client.get(&url).send().await.unwrap();
        assert_eq!(reply.status(), 404, "{url}");
        assert_eq!(reply.text().await.unwrap(), "Not found.");
    }
}

#[tokio::test]
async fn without_an_llm_the_fallback_is_sent_and_failing_targets_end_as_clear_errors() {
    let hooks = receivers(404).await;
    let slack_base = format!("{}/services/", hooks.uri());
    let closed_port = test_support::free_port();
    let app = TestApp::spawn_with(&[
        ("LLMA_SMTP_URL", &format!("smtp://127.0.0.1:{closed_port}")),
        ("LLMA_SLACK_WEBHOOK_BASE_URL", &slack_base),
        ("LLMA_DELIVERY_RETRY_BASE_SECS", "0"),
        ("LLMA_SCHEDULER_INTERVAL_SECS", "0"),
    ])
    .await;
    let evaluation = plain_evaluation(&app, "Helpfulness").await;
    send_results(&app, &evaluation, 1, 1, 0).await;
    let report = create_report(
        &app,
        json!({"evaluation": evaluation, "delivery_targets": [
            {"type": "email", "value": "team@example.com"},
            {"type": "slack", "channel": "#evals", "webhook_url": format!("{slack_base}T/B/C")}
        ]}),
    )
    .await;
    let id = id_of(&report);
    app.request(Method::POST, &format!("{}generate/", report_path(&app, &id)), Some(&app.admin_key), None)
        .await
        .expect(202);
    let run = finished_run(&app, &id).await;
    assert_eq!(run["content"]["title"], "Automated fallback report for Helpfulness");
    assert_eq!(run["metadata"]["fallback_reason"], "No LLM is configured for this project.");
    assert_eq!(run["content"]["metrics"]["pass_rate"].as_f64(), Some(50.0));
    assert_eq!(run["delivery_status"], "failed", "{run}");
    let errors: Vec<String> = serde_json::from_value(run["delivery_errors"].clone()).unwrap();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].starts_with("Failed to send email to team@example.com: "), "{errors:?}");
    assert!(errors[1].starts_with("Failed to send Slack message to #evals: Slack answered HTTP 404"), "{errors:?}");
    // The unreachable SMTP server was tried 4 times (1 + 3 retries); the Slack 4xx once.
    let attempts: Vec<i32> = sqlx::query_scalar(
        "SELECT attempts FROM jobs WHERE kind = 'report_delivery' ORDER BY payload ->> 'target_index'",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(attempts, vec![4, 1]);
    assert_eq!(received(&hooks, "/services/").await.len(), 1);
}

#[tokio::test]
async fn the_scheduler_runs_scheduled_every_n_and_alert_reports_once_per_period() {
    let hooks = receivers(200).await;
    let app =
        TestApp::spawn_with(&[("LLMA_SCHEDULER_INTERVAL_SECS", "1"), ("LLMA_DELIVERY_RETRY_BASE_SECS", "0")]).await;
    let evaluation = plain_evaluation(&app, "Accuracy").await;
    let counted = plain_evaluation(&app, "Counted").await;
    let watched = plain_evaluation(&app, "Watched").await;
    let target = json!([{"type": "webhook", "url": format!("{}/hook", hooks.uri()), "secret": SECRET}]);

    // Scheduled: due when its date passes; the run advances the schedule.
    let scheduled = create_report(
        &app,
        json!({"evaluation": evaluation, "frequency": "scheduled", "rrule": "FREQ=HOURLY",
               "starts_at": "2026-01-01T00:00:00Z", "delivery_targets": target}),
    )
    .await;
    let scheduled_id = id_of(&scheduled);
    make_due(&app, &scheduled_id).await;
    let run = finished_run(&app, &scheduled_id).await;
    assert_eq!(run["metadata"]["trigger"], "scheduled");
    assert_eq!(run["delivery_status"], "delivered");
    let period = parse_time(&run["period_end"]) - parse_time(&run["period_start"]);
    assert_eq!(period, chrono::Duration::hours(1), "a first hourly period is an hour");
    let after = app.get(&report_path(&app, &scheduled_id)).await.expect(200).json();
    assert_eq!(after["last_delivered_at"], run["period_end"]);
    assert!(parse_time(&after["next_delivery_date"]) > Utc::now() + chrono::Duration::minutes(14));

    // every_n: runs when N new results arrived, over the N newest.
    let every_n =
        create_report(&app, json!({"evaluation": counted, "trigger_threshold": 10, "delivery_targets": target})).await;
    let every_n_id = id_of(&every_n);
    send_results(&app, &counted, 9, 0, 0).await;
    send_results(&app, &counted, 2, 1, 0).await;
    // Alert: pass rate below 50 % over ≥ 5 runs in the last 15 minutes.
    let alert = create_report(
        &app,
        json!({"evaluation": watched, "frequency": "alert",
               "alert_condition": {"operator": "lt", "pass_rate": 50, "min_runs": 5, "window_minutes": 15},
               "delivery_targets": target}),
    )
    .await;
    let alert_id = id_of(&alert);
    send_results(&app, &watched, 2, 3, 4).await;
    let run = finished_run(&app, &every_n_id).await;
    assert_eq!(run["metadata"]["trigger"], "every_n");
    let total = run["content"]["metrics"]["total_runs"].as_u64().unwrap();
    assert!(total == 10 || total == 12, "the period starts at the 10th newest result when it ran: {run}");
    let alert_run = finished_run(&app, &alert_id).await;
    assert_eq!(alert_run["metadata"]["trigger"], "alert");
    assert!(alert_run["content"]["title"].as_str().unwrap().starts_with("Alert: "), "{alert_run}");
    assert_eq!(alert_run["metadata"]["operator"], "lt");
    assert_eq!(alert_run["metadata"]["threshold"].as_f64(), Some(50.0));
    assert_eq!(alert_run["metadata"]["observed_pass_rate"].as_f64(), Some(40.0));
    assert_eq!(alert_run["content"]["metrics"]["na_count"], 4);

    // More results and several ticks later: the cooldowns hold, the schedule is in the
    // future, so still one run each.
    send_results(&app, &counted, 0, 20, 0).await;
    send_results(&app, &watched, 0, 20, 0).await;
    let ticks = app.logs().matches("report scheduler tick").count();
    wait_until(DEADLINE, || async { app.logs().matches("report scheduler tick").count() >= ticks + 3 }).await;
    for id in [&scheduled_id, &every_n_id, &alert_id] {
        assert_eq!(sql_count(&app, "SELECT count(*) FROM evaluation_report_runs WHERE report_id = $1", id).await, 1);
    }

    // A manual run moves nothing.
    let before = app.get(&report_path(&app, &scheduled_id)).await.json();
    app.request(Method::POST, &format!("{}generate/", report_path(&app, &scheduled_id)), Some(&app.admin_key), None)
        .await
        .expect(202);
    wait_until(DEADLINE, || async { runs(&app, &scheduled_id).await.len() == 2 }).await;
    let after = app.get(&report_path(&app, &scheduled_id)).await.json();
    assert_eq!(after["last_delivered_at"], before["last_delivered_at"]);
    assert_eq!(after["next_delivery_date"], before["next_delivery_date"]);
}

/// A daily report of an evaluation with results, delivered to `hooks`' `/hook`; its id.
async fn daily_webhook_report(app: &TestApp, hooks: &MockServer) -> String {
    let evaluation = plain_evaluation(app, "Safety").await;
    send_results(app, &evaluation, 3, 1, 0).await;
    let report = create_report(
        app,
        json!({"evaluation": evaluation, "frequency": "scheduled", "rrule": "FREQ=DAILY", "starts_at": "2026-01-01T08:00:00Z",
               "delivery_targets": [{"type": "webhook", "url": format!("{}/hook", hooks.uri()), "secret": SECRET}]}),
    )
    .await;
    id_of(&report)
}

#[tokio::test]
async fn three_replicas_make_one_run_per_period_and_a_killed_replica_loses_no_delivery() {
    let hooks = MockServer::start().await;
    // The first delivery hangs (the replica holding it is killed meanwhile); later ones
    // are answered at once.
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(30)))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&hooks)
        .await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(200))
        .with_priority(2)
        .mount(&hooks)
        .await;
    let app = TestApp::spawn_api_only(&[("LLMA_SCHEDULER_INTERVAL_SECS", "1"), ("LLMA_JOB_LEASE_SECS", "3")]).await;
    let id = daily_webhook_report(&app, &hooks).await;

    // One worker takes the delivery and is killed while the receiver holds it.
    let mut doomed = app.spawn_replica(&["--worker-only"]);
    make_due(&app, &id).await;
    wait_until(DEADLINE, || async { !hooks.received_requests().await.unwrap_or_default().is_empty() }).await;
    doomed.kill();
    let mut replicas = vec![app.spawn_replica(&["--worker-only"]), app.spawn_replica(&["--worker-only"])];
    let run = finished_run(&app, &id).await;
    assert_eq!(run["delivery_status"], "delivered");
    let requests = hooks.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2, "sent again after the lease lapsed");
    let ids: Vec<&str> = requests.iter().map(|r| r.headers.get("webhook-id").unwrap().to_str().unwrap()).collect();
    assert_eq!(ids[0], ids[1], "the same webhook-id on the retry");

    // Next period: three processes tick every second, still one run and one delivery.
    replicas.push(app.spawn_replica(&["--worker-only"]));
    make_due(&app, &id).await;
    wait_until(DEADLINE, || async {
        runs(&app, &id).await.len() == 2 && runs(&app, &id).await[0]["delivery_status"] == "delivered"
    })
    .await;
    make_due(&app, &id).await;
    wait_until(DEADLINE, || async {
        runs(&app, &id).await.len() == 3 && runs(&app, &id).await[0]["delivery_status"] == "delivered"
    })
    .await;
    assert_eq!(sql_count(&app, "SELECT count(*) FROM evaluation_report_runs WHERE report_id = $1", &id).await, 3);
    assert_eq!(hooks.received_requests().await.unwrap().len(), 4, "one delivery per period (plus the crashed one)");
    for mut replica in replicas {
        replica.terminate();
    }
}

#[tokio::test]
async fn a_delivery_whose_worker_dies_at_every_attempt_ends_failed_and_so_does_its_run() {
    let hooks = MockServer::start().await;
    // Every delivery hangs: the worker holding it is killed meanwhile, each time.
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(60)))
        .mount(&hooks)
        .await;
    let app = TestApp::spawn_api_only(&[("LLMA_SCHEDULER_INTERVAL_SECS", "1"), ("LLMA_JOB_LEASE_SECS", "3")]).await;
    let id = daily_webhook_report(&app, &hooks).await;
    make_due(&app, &id).await;

    const ATTEMPTS: usize = 4;
    for attempt in 1..=ATTEMPTS {
        let mut doomed = app.spawn_replica(&["--worker-only"]);
        wait_until(DEADLINE, || async { hooks.received_requests().await.unwrap_or_default().len() >= attempt }).await;
        doomed.kill();
        let run = runs(&app, &id).await.remove(0);
        assert_eq!(run["delivery_status"], "pending", "attempt {attempt} is not the last");
    }
    // The next worker finds the attempts used up: the delivery ends failed, not pending forever.
    let mut last = app.spawn_replica(&["--worker-only"]);
    let run = finished_run(&app, &id).await;
    last.terminate();

    assert_eq!(run["delivery_status"], "failed");
    let errors = run["delivery_errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let line = errors[0].as_str().unwrap();
    assert!(line.starts_with("Failed to deliver to target 0: gave up after 4 attempts"), "{line}");
    assert_eq!(hooks.received_requests().await.unwrap().len(), ATTEMPTS, "no fifth send");
    let failed = sql_count(
        &app,
        "SELECT count(*) FROM jobs j JOIN evaluation_report_runs r ON r.id = (j.payload->>'run')::uuid \
         WHERE r.report_id = $1 AND j.kind = 'report_delivery' AND j.state = 'failed' AND j.last_error LIKE 'gave up%'",
        &id,
    )
    .await;
    assert_eq!(failed, 1, "the job itself ends failed with the reason");
}

#[tokio::test]
async fn put_replaces_a_report_and_what_get_returned_can_be_put_back() {
    let app = TestApp::spawn().await;
    let evaluation = plain_evaluation(&app, "Politeness").await;
    let report = create_report(
        &app,
        json!({"evaluation": evaluation, "frequency": "every_n", "trigger_threshold": 50,
               "delivery_targets": [{"type": "webhook", "url": "https://hooks.example.com/x", "secret": SECRET}]}),
    )
    .await;
    let id = id_of(&report);
    let path = report_path(&app, &id);
    let put = |body: Value, key: Option<String>| {
        let app = &app;
        let path = path.clone();
        async move { app.request(Method::PUT, &path, Some(&key.unwrap_or_else(|| app.admin_key.clone())), Some(body)).await }
    };

    // What GET returned, with the masked secret, goes back unchanged: nothing is lost.
    let unchanged = put(report.clone(), None).await.expect(200).json();
    assert_eq!(unchanged["delivery_targets"], report["delivery_targets"]);
    let stored: Value = sqlx::query_scalar("SELECT delivery_targets FROM evaluation_reports WHERE id = $1")
        .bind(Uuid::parse_str(&id).unwrap())
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert!(!stored.to_string().contains(SECRET), "the secret stays sealed");

    let mut replaced = report.clone();
    replaced["frequency"] = json!("scheduled");
    replaced["rrule"] = json!("FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0;BYSECOND=0");
    replaced["starts_at"] = json!("2026-12-01T00:00:00Z");
    replaced["timezone_name"] = json!("Europe/Berlin");
    replaced["report_prompt_guidance"] = json!("Focus on tone.");
    replaced["delivery_targets"] = json!([{"type": "email", "value": "ana@example.com"}]);
    let answer = put(replaced, None).await.expect(200).json();
    assert_eq!(answer["frequency"], "scheduled");
    assert_eq!(answer["timezone_name"], "Europe/Berlin");
    assert_eq!(answer["report_prompt_guidance"], "Focus on tone.");
    assert_eq!(answer["delivery_targets"], json!([{"type": "email", "value": "ana@example.com"}]));
    assert!(answer["next_delivery_date"].is_string(), "a scheduled report has its next delivery");
    assert_eq!(app.get(&path).await.expect(200).json(), answer);

    // Refusals change nothing.
    let mut without_evaluation = answer.clone();
    without_evaluation.as_object_mut().unwrap().remove("evaluation");
    assert_eq!(put(without_evaluation, None).await.expect(400).json()["attr"], "evaluation");
    let mut bad = answer.clone();
    bad["frequency"] = json!("hourly");
    assert_eq!(put(bad, None).await.expect(400).json()["attr"], "frequency");
    let reader = app.user_with_key("reader@example.com", Some((app.project, "admin")), "llm_analytics:read", None);
    put(answer.clone(), Some(reader)).await.expect(403);
    app.request(
        Method::PUT,
        &report_path(&app, &Uuid::new_v4().to_string()),
        Some(&app.admin_key),
        Some(answer.clone()),
    )
    .await
    .expect(404);
    let (other, other_admin) = other_project(&app);
    let theirs = format!("/api/environments/{other}/llm_analytics/evaluation_reports/{id}/");
    app.request(Method::PUT, &theirs, Some(&other_admin), Some(answer.clone())).await.expect(404);
    assert_eq!(app.get(&path).await.expect(200).json(), answer);
}

#[tokio::test]
async fn agent_tools_get_the_slim_report_list_and_the_full_report_on_retrieve() {
    let app = TestApp::spawn().await;
    let evaluation = plain_evaluation(&app, "Politeness").await;
    let report = create_report(
        &app,
        json!({"evaluation": evaluation, "frequency": "scheduled", "rrule": "FREQ=DAILY;BYHOUR=9;BYMINUTE=0;BYSECOND=0",
               "starts_at": "2026-12-01T00:00:00Z", "timezone_name": "UTC", "report_prompt_guidance": "Be brief.",
               "delivery_targets": [{"type": "email", "value": "test@example.com"}]}),
    )
    .await;

    let list = app.get_as_client(&reports_path(&app), "MCP").await;
    let item = list["results"][0].as_object().unwrap().clone();
    for dropped in [
        "rrule",
        "starts_at",
        "timezone_name",
        "delivery_targets",
        "max_sample_size",
        "deleted",
        "report_prompt_guidance",
        "cooldown_minutes",
        "daily_run_cap",
        "created_by",
    ] {
        assert!(!item.contains_key(dropped), "{dropped} is in the agent's list item: {item:?}");
    }
    for kept in ["id", "evaluation", "frequency", "next_delivery_date", "enabled", "trigger_threshold", "created_at"] {
        assert_eq!(item[kept], report[kept], "{kept}");
    }
    let full = app.get(&reports_path(&app)).await.expect(200).json();
    assert_eq!(full["results"][0], report, "other clients keep the whole item");
    let id = report["id"].as_str().unwrap();
    assert_eq!(app.get_as_client(&report_path(&app, id), "MCP").await, report, "retrieve stays whole");
}
